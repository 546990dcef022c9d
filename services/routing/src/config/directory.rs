//! What routing asks identity synchronously, as a port: identity owns
//! users and client organizations, and a configuration write that names
//! one must not wait for identity's events to reach routing's projection
//! (a user created a moment ago gets its agent profile at once). The
//! binary implements it over identity's service API (in process or
//! remote); tests implement it over what they created.

use switchboard_tenancy::{ClientId, ClientScope, Tenant, UserId};

use super::error::Result;

/// Identity, as routing's configuration writes see it.
#[async_trait::async_trait]
pub trait IdentityDirectory: Send + Sync {
    /// The client scope of user `user` of the tenant, or `None` when the
    /// tenant has no such user. Fails with
    /// [`ConfigError::Unavailable`](super::ConfigError::Unavailable) when
    /// identity cannot be reached.
    async fn user_scope(&self, tenant: &Tenant, user: UserId) -> Result<Option<ClientScope>>;

    /// Whether `client` is a client organization of the tenant.
    async fn client_exists(&self, tenant: &Tenant, client: ClientId) -> Result<bool>;
}
