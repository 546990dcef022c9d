//! Routing's [`IdentityDirectory`] port over identity's service API: the
//! checks a routing configuration write makes of users and client
//! organizations, answered by identity itself (routing reads none of
//! identity's tables).

use switchboard_identity::{Identity, IdentityError};
use switchboard_routing::config::{ConfigError, IdentityDirectory};
use switchboard_tenancy::{ClientId, ClientScope, Tenant, UserId};

/// Identity, as routing's configuration asks it.
pub struct IdentityAsDirectory(pub Identity);

fn config_error(error: IdentityError) -> ConfigError {
    match error {
        IdentityError::Unavailable(detail) => ConfigError::Unavailable(detail),
        other => ConfigError::Internal(format!("identity: {other}")),
    }
}

#[async_trait::async_trait]
impl IdentityDirectory for IdentityAsDirectory {
    async fn user_scope(
        &self,
        tenant: &Tenant,
        user: UserId,
    ) -> Result<Option<ClientScope>, ConfigError> {
        self.0.user_scope(tenant, user).await.map_err(config_error)
    }

    async fn client_exists(&self, tenant: &Tenant, client: ClientId) -> Result<bool, ConfigError> {
        self.0
            .client_exists(tenant, client)
            .await
            .map_err(config_error)
    }
}
