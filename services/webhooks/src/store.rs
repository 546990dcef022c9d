//! Storage of webhooks: transactions confined to one tenant, or in system
//! scope for the dispatcher, which finds due deliveries across tenants.
//!
//! [`Store::begin`] sets `app.tenant_id` for the transaction on PostgreSQL
//! (row-level security then confines every statement to that tenant);
//! [`Store::begin_system`] takes the database's system pool, whose role
//! (`switchboard_system`, migration 8) the policies let see every tenant's
//! endpoints and deliveries. Queries filter by tenant anyway: that is what
//! isolates tenants on SQLite.

pub mod entities;

use sea_orm::{DatabaseTransaction, DbBackend};
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
        Ok(self.db.begin_tenant(tenant.as_uuid()).await?)
    }

    /// A transaction that sees every tenant's webhook rows.
    pub async fn begin_system(&self) -> Result<DatabaseTransaction> {
        Ok(self.db.begin_system().await?)
    }
}
