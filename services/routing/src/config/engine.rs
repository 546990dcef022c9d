//! What the runtime loads an ACD engine with: a tenant's queues and agent
//! profiles in the engine's types.

use switchboard_acd::{AgentProfile, QueueConfig};
use switchboard_tenancy::{AgentId, ClientScope, QueueId, TenantId};

use super::RoutingConfig;
use super::domain::{AgentProfileSpec, Kind, QueueSpec};
use super::error::Result;
use super::items::item;
use super::projection::{time_zone as tenant_time_zone, user_clients};
use super::store;

impl RoutingConfig {
    /// Every queue of the tenant, as the engine takes them.
    pub async fn queue_configs(&self, tenant: TenantId) -> Result<Vec<QueueConfig>> {
        let transaction = self.store().read(tenant).await?;
        let rows = store::list(
            &transaction,
            Kind::Queue,
            tenant,
            &ClientScope::All,
            None,
            None,
        )
        .await?;
        let time_zone = tenant_time_zone(&transaction, tenant).await?;
        transaction.commit().await?;
        rows.into_iter()
            .map(|row| {
                let queue = item::<QueueSpec>(row)?;
                let mut config = queue.spec.to_acd(QueueId::from_uuid(queue.id));
                config.time_zone = time_zone.clone();
                Ok(config)
            })
            .collect()
    }

    /// Every agent profile of the tenant, as the engine takes them, each
    /// with its user's client scope.
    pub async fn agent_profiles(&self, tenant: TenantId) -> Result<Vec<AgentProfile>> {
        let transaction = self.store().read(tenant).await?;
        let rows = store::list(
            &transaction,
            Kind::AgentProfile,
            tenant,
            &ClientScope::All,
            None,
            None,
        )
        .await?;
        let ids: Vec<_> = rows.iter().map(|row| row.id).collect();
        let mut scopes = user_clients(&transaction, tenant, &ids).await?;
        transaction.commit().await?;
        rows.into_iter()
            .map(|row| {
                let profile = item::<AgentProfileSpec>(row)?;
                let clients = scopes.remove(&profile.id).flatten();
                Ok(profile.spec.to_acd(AgentId::from_uuid(profile.id), clients))
            })
            .collect()
    }

    /// The agent profile of user `user`, as the engine takes it, if there
    /// is one.
    pub async fn agent_profile(
        &self,
        tenant: TenantId,
        user: uuid::Uuid,
    ) -> Result<Option<AgentProfile>> {
        let transaction = self.store().read(tenant).await?;
        let Some(row) = store::find(
            &transaction,
            Kind::AgentProfile,
            tenant,
            &ClientScope::All,
            user,
        )
        .await?
        else {
            transaction.commit().await?;
            return Ok(None);
        };
        let mut scopes = user_clients(&transaction, tenant, &[user]).await?;
        transaction.commit().await?;
        let profile = item::<AgentProfileSpec>(row)?;
        let clients = scopes.remove(&user).flatten();
        Ok(Some(profile.spec.to_acd(AgentId::from_uuid(user), clients)))
    }

    /// Whether the tenant defines the not-ready reason code `name`.
    pub async fn has_reason_code(&self, tenant: TenantId, name: &str) -> Result<bool> {
        let transaction = self.store().read(tenant).await?;
        let found = store::named(&transaction, Kind::ReasonCode, tenant, name, None)
            .await?
            .is_some();
        transaction.commit().await?;
        Ok(found)
    }
}
