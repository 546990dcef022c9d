//! Routing's [`IdentityDirectory`] port over identity's client: the
//! checks a routing configuration write makes of users and client
//! organizations, answered by identity itself, in process or over gRPC
//! (routing reads none of identity's tables).

use std::sync::Arc;

use super::{ConfigError, IdentityDirectory};
use switchboard_identity_api::IdentityApi;
use switchboard_rpc::{ErrorKind, ServiceError};
use switchboard_tenancy::{ClientId, ClientScope, Tenant, UserId};

/// Identity, as routing's configuration asks it.
pub struct IdentityAsDirectory(pub Arc<dyn IdentityApi>);

fn config_error(error: ServiceError) -> ConfigError {
    match error.kind {
        ErrorKind::Unavailable => ConfigError::Unavailable(error.detail),
        _ => ConfigError::Internal(format!("identity: {}", error.detail)),
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
