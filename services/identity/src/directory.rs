//! What other services ask identity about a tenant's users and client
//! organizations, as a service (not on behalf of a caller's credential):
//! routing checks that an agent profile's user and an item's client
//! organization exist when they are written, without reading identity's
//! tables and without waiting for identity's events to reach it.

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use switchboard_tenancy::{ClientId, ClientScope, Tenant, UserId};

use crate::Identity;
use crate::error::Result;
use crate::sessions::user_clients;
use crate::store::entities::{client_org, user};

impl Identity {
    /// Whether `user` is a user of the tenant (in any status).
    pub async fn user_exists(&self, tenant: &Tenant, user: UserId) -> Result<bool> {
        Ok(self.user_scope(tenant, user).await?.is_some())
    }

    /// The client scope of user `user` of the tenant (the clients it
    /// serves), or `None` when the tenant has no such user.
    pub async fn user_scope(&self, tenant: &Tenant, user: UserId) -> Result<Option<ClientScope>> {
        let transaction = self.store().begin(tenant.id()).await?;
        let Some(row) = user::Entity::find_by_id(user.as_uuid())
            .filter(user::Column::TenantId.eq(tenant.id().as_uuid()))
            .one(&transaction)
            .await?
        else {
            transaction.commit().await?;
            return Ok(None);
        };
        let clients = user_clients(&transaction, tenant.id(), &row).await?;
        transaction.commit().await?;
        Ok(Some(ClientScope::from_list(clients)))
    }

    /// Whether `client` is a client organization of the tenant.
    pub async fn client_exists(&self, tenant: &Tenant, client: ClientId) -> Result<bool> {
        let transaction = self.store().begin(tenant.id()).await?;
        let found = client_org::Entity::find_by_id(client.as_uuid())
            .filter(client_org::Column::TenantId.eq(tenant.id().as_uuid()))
            .count(&transaction)
            .await?;
        transaction.commit().await?;
        Ok(found > 0)
    }
}
