//! Transactions of the backbone: confined to one tenant, or in system
//! scope (across tenants) for the relay and the retention sweep.

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, TransactionTrait};
use switchboard_platform::Database;
use switchboard_tenancy::TenantId;

use crate::Result;

/// A transaction whose row-level security lets it see every tenant's
/// event rows (`app.scope = 'system'`, see migration 3).
pub(crate) async fn begin_system(db: &Database) -> Result<DatabaseTransaction> {
    let transaction = db.connection().begin().await?;
    if db.backend() == DbBackend::Postgres {
        transaction
            .execute_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT set_config('app.scope', 'system', true)",
            ))
            .await?;
    }
    Ok(transaction)
}

/// A transaction confined to `tenant` (`app.tenant_id` on PostgreSQL).
pub(crate) async fn begin_tenant(db: &Database, tenant: TenantId) -> Result<DatabaseTransaction> {
    let transaction = db.connection().begin().await?;
    if db.backend() == DbBackend::Postgres {
        transaction
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT set_config('app.tenant_id', $1, true)",
                [tenant.to_string().into()],
            ))
            .await?;
    }
    Ok(transaction)
}
