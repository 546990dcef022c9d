//! [`IdentityApi`] in process: each method is a direct call of the
//! service's own, with its error as the [`ServiceError`] callers see.

use async_trait::async_trait;
use switchboard_auth::looks_like_api_key;
use switchboard_identity_api::{
    ApiKeyView, AuditEventView, ClientView, CreatedApiKey, IdentityApi, Invitation, NewApiKey,
    NewClient, NewUser, Principal, RequestOrigin, SignupOutcome, SignupRequest, TenantPatch,
    TenantView, Tokens, UserPatch, UserView,
};
use switchboard_rpc::ServiceError;
use switchboard_tenancy::{ApiKeyId, ClientId, ClientScope, Tenant, UserId};

use crate::Identity;

type Result<T> = std::result::Result<T, ServiceError>;

#[async_trait]
impl IdentityApi for Identity {
    async fn authenticate(&self, credential: &str) -> Result<Principal> {
        Ok(self.authenticate_credential(credential).await?)
    }

    async fn signup(
        &self,
        request: SignupRequest,
        origin: &RequestOrigin,
    ) -> Result<SignupOutcome> {
        Ok(Identity::signup(self, request, origin).await?)
    }

    async fn login(
        &self,
        tenant_slug: &str,
        email: &str,
        password: &str,
        origin: &RequestOrigin,
    ) -> Result<Tokens> {
        Ok(Identity::login(self, tenant_slug, email, password, origin).await?)
    }

    async fn refresh(&self, refresh_token: &str) -> Result<Tokens> {
        Ok(Identity::refresh(self, refresh_token).await?)
    }

    async fn logout(&self, refresh_token: &str) -> Result<()> {
        Ok(Identity::logout(self, refresh_token).await?)
    }

    async fn verify_email(&self, token: &str, origin: &RequestOrigin) -> Result<()> {
        Ok(Identity::verify_email(self, token, origin).await?)
    }

    async fn accept_invitation(
        &self,
        token: &str,
        password: &str,
        display_name: Option<&str>,
        origin: &RequestOrigin,
    ) -> Result<Tokens> {
        Ok(Identity::accept_invitation(self, token, password, display_name, origin).await?)
    }

    async fn logout_session(&self, principal: &Principal) -> Result<()> {
        Ok(Identity::logout_session(self, principal).await?)
    }

    async fn get_tenant(&self, principal: &Principal) -> Result<TenantView> {
        Ok(Identity::get_tenant(self, principal).await?)
    }

    async fn update_tenant(
        &self,
        principal: &Principal,
        patch: TenantPatch,
        origin: &RequestOrigin,
    ) -> Result<TenantView> {
        Ok(Identity::update_tenant(self, principal, patch, origin).await?)
    }

    async fn list_users(
        &self,
        principal: &Principal,
        after: Option<UserId>,
        limit: u64,
    ) -> Result<Vec<UserView>> {
        Ok(Identity::list_users(self, principal, after, limit).await?)
    }

    async fn get_user(&self, principal: &Principal, id: UserId) -> Result<UserView> {
        Ok(Identity::get_user(self, principal, id).await?)
    }

    async fn create_user(
        &self,
        principal: &Principal,
        new: NewUser,
        origin: &RequestOrigin,
    ) -> Result<(UserView, Option<Invitation>)> {
        Ok(Identity::create_user(self, principal, new, origin).await?)
    }

    async fn update_user(
        &self,
        principal: &Principal,
        id: UserId,
        patch: UserPatch,
        origin: &RequestOrigin,
    ) -> Result<UserView> {
        Ok(Identity::update_user(self, principal, id, patch, origin).await?)
    }

    async fn delete_user(
        &self,
        principal: &Principal,
        id: UserId,
        origin: &RequestOrigin,
    ) -> Result<()> {
        Ok(Identity::delete_user(self, principal, id, origin).await?)
    }

    async fn list_clients(
        &self,
        principal: &Principal,
        after: Option<ClientId>,
        limit: u64,
    ) -> Result<Vec<ClientView>> {
        Ok(Identity::list_clients(self, principal, after, limit).await?)
    }

    async fn create_client(
        &self,
        principal: &Principal,
        new: NewClient,
        origin: &RequestOrigin,
    ) -> Result<ClientView> {
        Ok(Identity::create_client(self, principal, new, origin).await?)
    }

    async fn get_client(&self, principal: &Principal, id: ClientId) -> Result<ClientView> {
        Ok(Identity::get_client(self, principal, id).await?)
    }

    async fn delete_client(
        &self,
        principal: &Principal,
        id: ClientId,
        origin: &RequestOrigin,
    ) -> Result<()> {
        Ok(Identity::delete_client(self, principal, id, origin).await?)
    }

    async fn create_api_key(
        &self,
        principal: &Principal,
        new: NewApiKey,
        origin: &RequestOrigin,
    ) -> Result<CreatedApiKey> {
        Ok(Identity::create_api_key(self, principal, new, origin).await?)
    }

    async fn list_api_keys(
        &self,
        principal: &Principal,
        after: Option<ApiKeyId>,
        limit: u64,
    ) -> Result<Vec<ApiKeyView>> {
        Ok(Identity::list_api_keys(self, principal, after, limit).await?)
    }

    async fn revoke_api_key(
        &self,
        principal: &Principal,
        id: ApiKeyId,
        origin: &RequestOrigin,
    ) -> Result<ApiKeyView> {
        Ok(Identity::revoke_api_key(self, principal, id, origin).await?)
    }

    async fn list_audit_events(
        &self,
        principal: &Principal,
        after: Option<uuid::Uuid>,
        limit: u64,
    ) -> Result<Vec<AuditEventView>> {
        Ok(Identity::list_audit_events(self, principal, after, limit).await?)
    }

    async fn user_exists(&self, tenant: &Tenant, user: UserId) -> Result<bool> {
        Ok(Identity::user_exists(self, tenant, user).await?)
    }

    async fn client_exists(&self, tenant: &Tenant, client: ClientId) -> Result<bool> {
        Ok(Identity::client_exists(self, tenant, client).await?)
    }

    async fn user_scope(&self, tenant: &Tenant, user: UserId) -> Result<Option<ClientScope>> {
        Ok(Identity::user_scope(self, tenant, user).await?)
    }
}

impl Identity {
    /// The caller behind a bearer credential: an API key when it looks
    /// like one, else an access token.
    pub async fn authenticate_credential(&self, credential: &str) -> crate::Result<Principal> {
        if looks_like_api_key(credential) {
            self.authenticate_api_key(credential).await
        } else {
            self.authenticate_access_token(credential).await
        }
    }
}
