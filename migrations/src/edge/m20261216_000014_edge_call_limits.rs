//! Each tenant's call limits in the edge's directory
//! (`edge_directory_tenants.max_concurrent_calls`, `calls_per_second`),
//! from identity's `tenant.created` and `tenant.plan_changed` events and
//! filled here from the tenants' plans (migration 13). `NULL` while
//! unknown: no limit is enforced then.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DbBackend, Statement};

use crate::shared::execute;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EdgeDirectoryTenants {
    Table,
    MaxConcurrentCalls,
    CallsPerSecond,
}

/// Sets the limits of the directory's tenants (all of them, or the one in
/// `only`) from their plans.
fn fill(only: Option<&str>) -> String {
    let limit = |column: &str| {
        format!(
            "{column} = (SELECT p.{column} FROM tenants t JOIN plans p ON p.code = t.plan_code \
             WHERE t.id = edge_directory_tenants.tenant_id)"
        )
    };
    let mut statement = format!(
        "UPDATE edge_directory_tenants SET {}, {}",
        limit("max_concurrent_calls"),
        limit("calls_per_second")
    );
    if let Some(tenant) = only {
        statement.push_str(&format!(" WHERE tenant_id = '{tenant}'"));
    }
    statement
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            EdgeDirectoryTenants::MaxConcurrentCalls,
            EdgeDirectoryTenants::CallsPerSecond,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(EdgeDirectoryTenants::Table)
                        .add_column(ColumnDef::new(column).integer().null())
                        .to_owned(),
                )
                .await?;
        }
        if manager.get_database_backend() != DbBackend::Postgres {
            return execute(manager, &fill(None)).await;
        }
        // Both tables are under forced row-level security, even for the
        // owner: one tenant at a time, in its scope. The tenant list is
        // the global slug table.
        let connection = manager.get_connection();
        let tenants = connection
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT tenant_id::text AS tenant_id FROM tenant_slugs".to_owned(),
            ))
            .await?;
        for row in tenants {
            let tenant: String = row.try_get("", "tenant_id")?;
            let tenant = uuid::Uuid::parse_str(&tenant)
                .map_err(|error| DbErr::Custom(format!("tenant_slugs: {error}")))?;
            execute(
                manager,
                &format!("SELECT set_config('app.tenant_id', '{tenant}', true)"),
            )
            .await?;
            execute(manager, &fill(Some(&tenant.to_string()))).await?;
        }
        execute(manager, "SELECT set_config('app.tenant_id', '', true)").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            EdgeDirectoryTenants::CallsPerSecond,
            EdgeDirectoryTenants::MaxConcurrentCalls,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(EdgeDirectoryTenants::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
