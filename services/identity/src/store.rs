//! Storage of identity: transactions scoped to one tenant, and the
//! queries the service composes inside them.
//!
//! Every transaction on tenant data starts with [`Store::begin`], which on
//! PostgreSQL sets `app.tenant_id` for the transaction (`set_config(…,
//! true)` = `SET LOCAL`), so row-level security confines every statement
//! to that tenant even if a query forgot its filter. Queries filter by
//! tenant anyway: that is what isolates tenants on SQLite.

pub mod entities;

use sea_orm::sea_query::SelectStatement;
use sea_orm::{DatabaseTransaction, QueryResult};
use switchboard_platform::Database;
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

    /// A transaction confined to `tenant`, taking SQLite's write lock at
    /// once ([`switchboard_platform::Database::begin`]): many of identity's
    /// transactions read, then write (a login reads the user, then opens a
    /// session).
    pub async fn begin(&self, tenant: TenantId) -> Result<DatabaseTransaction> {
        Ok(self.db.begin_tenant(tenant.as_uuid()).await?)
    }

    /// Confines the rest of `transaction` to `tenant` (after global work,
    /// e.g. reserving a new tenant's slug at signup).
    pub async fn enter_tenant(
        &self,
        transaction: &DatabaseTransaction,
        tenant: TenantId,
    ) -> Result<()> {
        Ok(self.db.enter_tenant(transaction, tenant.as_uuid()).await?)
    }

    /// One read-only query confined to `tenant`, in one round trip on
    /// PostgreSQL ([`switchboard_platform::Database::read_tenant`]): for the
    /// hot reads that need no transaction.
    pub async fn read(
        &self,
        tenant: TenantId,
        select: &SelectStatement,
    ) -> Result<Vec<QueryResult>> {
        Ok(self.db.read_tenant(tenant.as_uuid(), select).await?)
    }

    /// A transaction with no tenant: it sees only the global tables
    /// (plans, tenant slugs, credential lookup).
    pub async fn begin_global(&self) -> Result<DatabaseTransaction> {
        Ok(self.db.begin().await?)
    }
}
