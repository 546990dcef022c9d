//! Transactions of the backbone: confined to one tenant, or in system
//! scope (across tenants) for the relay and the retention sweep.

use sea_orm::DatabaseTransaction;
use switchboard_platform::Database;
use switchboard_tenancy::TenantId;

use crate::Result;

/// A transaction whose row-level security lets it see every tenant's
/// event rows (`app.scope = 'system'`, see migration 3).
pub(crate) async fn begin_system(db: &Database) -> Result<DatabaseTransaction> {
    Ok(db.begin_system().await?)
}

/// A transaction confined to `tenant` (`app.tenant_id` on PostgreSQL).
pub(crate) async fn begin_tenant(db: &Database, tenant: TenantId) -> Result<DatabaseTransaction> {
    Ok(db.begin_tenant(tenant.as_uuid()).await?)
}
