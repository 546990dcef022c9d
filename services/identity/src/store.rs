//! Storage of identity: transactions scoped to one tenant, and the
//! queries the service composes inside them.
//!
//! Every transaction on tenant data starts with [`Store::begin`], which on
//! PostgreSQL sets `app.tenant_id` for the transaction (`set_config(…,
//! true)` = `SET LOCAL`), so row-level security confines every statement
//! to that tenant even if a query forgot its filter. Queries filter by
//! tenant anyway: that is what isolates tenants on SQLite.

pub mod entities;

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, TransactionTrait};
use switchboard_platform::Database;
use switchboard_platform::database::DatabaseKind;
use switchboard_tenancy::TenantId;

use crate::error::Result;

#[derive(Clone)]
pub struct Store {
    db: Database,
}

impl Store {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// A transaction confined to `tenant`.
    pub async fn begin(&self, tenant: TenantId) -> Result<DatabaseTransaction> {
        let transaction = self.db.connection().begin().await?;
        self.enter_tenant(&transaction, tenant).await?;
        Ok(transaction)
    }

    /// Confines the rest of `transaction` to `tenant` (after global work,
    /// e.g. reserving a new tenant's slug at signup).
    pub async fn enter_tenant(
        &self,
        transaction: &DatabaseTransaction,
        tenant: TenantId,
    ) -> Result<()> {
        if self.db.kind() == DatabaseKind::Postgres {
            transaction
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT set_config('app.tenant_id', $1, true)",
                    [tenant.to_string().into()],
                ))
                .await?;
        }
        Ok(())
    }

    /// A transaction with no tenant: it sees only the global tables
    /// (plans, tenant slugs, credential lookup).
    pub async fn begin_global(&self) -> Result<DatabaseTransaction> {
        Ok(self.db.connection().begin().await?)
    }
}
