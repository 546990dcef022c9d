//! What callers of the identity service need, and nothing of its
//! storage: the [`IdentityApi`] trait, its request and response types
//! (principals, roles and permissions, views, inputs), and
//! [`RemoteIdentity`], the trait over gRPC (`switchboard.identity.v1`) to
//! a node that hosts identity. The identity crate implements the trait in
//! process; a caller holds an `Arc<dyn IdentityApi>` and never knows which
//! one it has. [`credential_cache`] is identity's credential cache, which
//! identity writes and both identity and the gateway read.

pub mod credential_cache;
pub mod domain;
mod inputs;
mod principal;
mod remote;
mod views;
pub mod wire;

use async_trait::async_trait;
use switchboard_rpc::ServiceError;
use switchboard_tenancy::{ApiKeyId, ClientId, ClientScope, Tenant, UserId};

pub use domain::{ApiScope, FieldError, Permission, Role, TenantStatus, UserStatus};
pub use inputs::{
    NewApiKey, NewClient, NewUser, RequestOrigin, SignupRequest, TenantPatch, UserPatch,
};
pub use principal::{Actor, Denied, Principal, RateLimits};
pub use remote::RemoteIdentity;
pub use views::{
    ApiKeyView, AuditEventView, ClientView, CreatedApiKey, Invitation, SignupOutcome, TenantView,
    Tokens, UserView,
};

/// What a call to identity returns.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// The identity service as its callers see it: tenants, users, client
/// organizations, API keys, sessions and the audit log. Methods acting for
/// an end user take the [`Principal`] the gateway authenticated first;
/// methods for services take the [`Tenant`] first; the rest take the end
/// user's own credential (a password, a refresh or one-time token).
#[async_trait]
pub trait IdentityApi: Send + Sync {
    /// The caller behind a bearer credential: an access token or an API
    /// key (`sk_…`). One call, so a request authenticates in one hop.
    async fn authenticate(&self, credential: &str) -> Result<Principal>;

    /// A company signs up: its tenant (on the trial plan), its owner, the
    /// owner's first tokens and the email-verification token.
    async fn signup(&self, request: SignupRequest, origin: &RequestOrigin)
    -> Result<SignupOutcome>;

    /// Logs a user in with their tenant's handle, email and password;
    /// repeated failures are throttled.
    async fn login(
        &self,
        tenant_slug: &str,
        email: &str,
        password: &str,
        origin: &RequestOrigin,
    ) -> Result<Tokens>;

    /// Trades a refresh token for new tokens; reusing a spent one ends the
    /// session.
    async fn refresh(&self, refresh_token: &str) -> Result<Tokens>;

    /// Ends the session a refresh token belongs to (idempotent).
    async fn logout(&self, refresh_token: &str) -> Result<()>;

    /// Marks the tenant's signup email verified (one-time token).
    async fn verify_email(&self, token: &str, origin: &RequestOrigin) -> Result<()>;

    /// An invited user sets their password with the invitation token and
    /// is logged in.
    async fn accept_invitation(
        &self,
        token: &str,
        password: &str,
        display_name: Option<&str>,
        origin: &RequestOrigin,
    ) -> Result<Tokens>;

    /// Ends the caller's own session (access-token logout; a no-op for an
    /// API key).
    async fn logout_session(&self, principal: &Principal) -> Result<()>;

    async fn get_tenant(&self, principal: &Principal) -> Result<TenantView>;

    async fn update_tenant(
        &self,
        principal: &Principal,
        patch: TenantPatch,
        origin: &RequestOrigin,
    ) -> Result<TenantView>;

    /// Users visible to the caller, in id (creation) order, after `after`.
    async fn list_users(
        &self,
        principal: &Principal,
        after: Option<UserId>,
        limit: u64,
    ) -> Result<Vec<UserView>>;

    async fn get_user(&self, principal: &Principal, id: UserId) -> Result<UserView>;

    /// Creates a user with a password (active) or without (invited, with
    /// the invitation).
    async fn create_user(
        &self,
        principal: &Principal,
        new: NewUser,
        origin: &RequestOrigin,
    ) -> Result<(UserView, Option<Invitation>)>;

    async fn update_user(
        &self,
        principal: &Principal,
        id: UserId,
        patch: UserPatch,
        origin: &RequestOrigin,
    ) -> Result<UserView>;

    async fn delete_user(
        &self,
        principal: &Principal,
        id: UserId,
        origin: &RequestOrigin,
    ) -> Result<()>;

    /// Client organizations the caller may see, in creation order.
    async fn list_clients(
        &self,
        principal: &Principal,
        after: Option<ClientId>,
        limit: u64,
    ) -> Result<Vec<ClientView>>;

    async fn create_client(
        &self,
        principal: &Principal,
        new: NewClient,
        origin: &RequestOrigin,
    ) -> Result<ClientView>;

    async fn get_client(&self, principal: &Principal, id: ClientId) -> Result<ClientView>;

    async fn delete_client(
        &self,
        principal: &Principal,
        id: ClientId,
        origin: &RequestOrigin,
    ) -> Result<()>;

    /// Creates an API key; its secret is in the answer and nowhere else.
    async fn create_api_key(
        &self,
        principal: &Principal,
        new: NewApiKey,
        origin: &RequestOrigin,
    ) -> Result<CreatedApiKey>;

    async fn list_api_keys(
        &self,
        principal: &Principal,
        after: Option<ApiKeyId>,
        limit: u64,
    ) -> Result<Vec<ApiKeyView>>;

    /// Revokes a key: it stops working at once. Revoking twice is a no-op.
    async fn revoke_api_key(
        &self,
        principal: &Principal,
        id: ApiKeyId,
        origin: &RequestOrigin,
    ) -> Result<ApiKeyView>;

    /// Audit events, oldest first, after `after`, at most `limit`.
    async fn list_audit_events(
        &self,
        principal: &Principal,
        after: Option<uuid::Uuid>,
        limit: u64,
    ) -> Result<Vec<AuditEventView>>;

    /// Whether `user` exists in `tenant` (for services that refer to
    /// users, such as routing's agent profiles).
    async fn user_exists(&self, tenant: &Tenant, user: UserId) -> Result<bool>;

    /// Whether client organization `client` exists in `tenant`.
    async fn client_exists(&self, tenant: &Tenant, client: ClientId) -> Result<bool>;

    /// The client organizations `user` of `tenant` serves; `None` when
    /// there is no such user (routing keeps agents to their clients).
    async fn user_scope(&self, tenant: &Tenant, user: UserId) -> Result<Option<ClientScope>>;
}
