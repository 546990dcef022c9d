//! The edge's tables (issue 21):
//!
//! - `edge_directory_tenants`: each tenant's slug, which names its SIP
//!   domain (`<slug>.<edge.sip_domain>`), fed by identity's
//!   `tenant.created` events and filled here from `tenant_slugs`. A
//!   REGISTER names a domain before any tenant is known, so the system
//!   workers' role may read it (like `routing_numbers`, migration 8).
//! - `edge_sip_accounts`: one SIP account per user (its username, unique in
//!   the tenant, and the two digest HA1s of its password: never the
//!   password), `active` following the user's status from identity's
//!   events, each change at the `version` (event time, µs) it came from.
//!
//! Both under the forced tenant policy on PostgreSQL.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::SYSTEM_ROLE;
use crate::shared::{Visibility, execute, tenant_isolation, text, time, uuid_col, uuid_pk};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EdgeDirectoryTenants {
    Table,
    TenantId,
    Slug,
    Version,
}

#[derive(DeriveIden)]
enum EdgeSipAccounts {
    Table,
    UserId,
    TenantId,
    Username,
    Ha1Sha256,
    Ha1Md5,
    Active,
    Version,
    CreatedAt,
    UpdatedAt,
}

fn version<T: IntoIden>(column: T) -> ColumnDef {
    ColumnDef::new(column)
        .big_integer()
        .not_null()
        .default(0)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EdgeDirectoryTenants::Table)
                    .col(uuid_pk(EdgeDirectoryTenants::TenantId))
                    .col(text(EdgeDirectoryTenants::Slug).unique_key())
                    .col(version(EdgeDirectoryTenants::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EdgeSipAccounts::Table)
                    .col(uuid_pk(EdgeSipAccounts::UserId))
                    .col(uuid_col(EdgeSipAccounts::TenantId))
                    .col(text(EdgeSipAccounts::Username))
                    .col(text(EdgeSipAccounts::Ha1Sha256))
                    .col(text(EdgeSipAccounts::Ha1Md5))
                    .col(
                        ColumnDef::new(EdgeSipAccounts::Active)
                            .boolean()
                            .not_null()
                            .default(true),
                    )
                    .col(version(EdgeSipAccounts::Version))
                    .col(time(EdgeSipAccounts::CreatedAt))
                    .col(time(EdgeSipAccounts::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("edge_sip_accounts_tenant_username")
                    .table(EdgeSipAccounts::Table)
                    .col(EdgeSipAccounts::TenantId)
                    .col(EdgeSipAccounts::Username)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Every tenant there is, from identity's global slug table (the
        // migration runs as the owner, under no policy).
        execute(
            manager,
            "INSERT INTO edge_directory_tenants (tenant_id, slug, version) \
             SELECT tenant_id, slug, 0 FROM tenant_slugs",
        )
        .await?;
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        for table in ["edge_directory_tenants", "edge_sip_accounts"] {
            for statement in tenant_isolation(table, "tenant_id", Visibility::Tenant) {
                execute(manager, &statement).await?;
            }
        }
        execute(
            manager,
            &format!("GRANT SELECT ON edge_directory_tenants TO {SYSTEM_ROLE}"),
        )
        .await?;
        execute(
            manager,
            &format!(
                "CREATE POLICY system_workers ON edge_directory_tenants TO {SYSTEM_ROLE} USING (true)"
            ),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EdgeSipAccounts::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(EdgeDirectoryTenants::Table).to_owned())
            .await?;
        Ok(())
    }
}
