//! Storage of webhooks: transactions confined to one tenant, or in system
//! scope for the dispatcher, which finds due deliveries across tenants.
//!
//! [`Store::begin`] sets `app.tenant_id` for the transaction on PostgreSQL
//! (row-level security then confines every statement to that tenant);
//! [`Store::begin_system`] sets `app.scope = 'system'`, which the policies
//! of migration 4 let see every tenant's rows. Queries filter by tenant
//! anyway: that is what isolates tenants on SQLite.

pub mod entities;

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, TransactionTrait};
use switchboard_platform::Database;
use switchboard_tenancy::TenantId;

use crate::error::Result;

#[derive(Clone)]
pub(crate) struct Store {
    db: Database,
}

impl Store {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    pub fn backend(&self) -> DbBackend {
        self.db.backend()
    }

    /// A transaction confined to `tenant`.
    pub async fn begin(&self, tenant: TenantId) -> Result<DatabaseTransaction> {
        let transaction = self.db.connection().begin().await?;
        if self.backend() == DbBackend::Postgres {
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

    /// A transaction that sees every tenant's webhook rows.
    pub async fn begin_system(&self) -> Result<DatabaseTransaction> {
        let transaction = self.db.connection().begin().await?;
        if self.backend() == DbBackend::Postgres {
            transaction
                .execute_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT set_config('app.scope', 'system', true)",
                ))
                .await?;
        }
        Ok(transaction)
    }
}
