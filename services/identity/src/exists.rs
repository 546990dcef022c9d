//! Questions other services ask about identity's data, so they never read
//! its tables: does this user, or this client organization, exist in the
//! tenant. No principal: the caller is a service acting for the tenant.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use switchboard_tenancy::{ClientId, Tenant, UserId};

use crate::store::entities::{client_org, user};
use crate::{Identity, Result};

impl Identity {
    /// Whether `id` is a user of `tenant` (any status).
    pub async fn user_exists(&self, tenant: &Tenant, id: UserId) -> Result<bool> {
        let transaction = self.store().begin(tenant.id()).await?;
        let found = user::Entity::find_by_id(id.as_uuid())
            .filter(user::Column::TenantId.eq(tenant.id().as_uuid()))
            .one(&transaction)
            .await?
            .is_some();
        transaction.commit().await?;
        Ok(found)
    }

    /// Whether `id` is a client organization of `tenant` that the
    /// tenant context may see (a client-scoped context sees only its own).
    pub async fn client_exists(&self, tenant: &Tenant, id: ClientId) -> Result<bool> {
        if !tenant.clients().allows(Some(id)) {
            return Ok(false);
        }
        let transaction = self.store().begin(tenant.id()).await?;
        let found = client_org::Entity::find_by_id(id.as_uuid())
            .filter(client_org::Column::TenantId.eq(tenant.id().as_uuid()))
            .one(&transaction)
            .await?
            .is_some();
        transaction.commit().await?;
        Ok(found)
    }
}
