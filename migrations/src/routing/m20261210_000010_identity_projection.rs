//! Routing's own copy of what it needs of identity (issue 20, "each
//! service owns its tables"), fed by identity's events
//! (`switchboard-routing`'s `config::projection`):
//!
//! - `routing_directory_tenants`: each tenant's time zone (where its
//!   queues' days start);
//! - `routing_directory_clients`: the tenant's client organizations, kept
//!   as tombstones once deleted (a deleted client leaves every user's
//!   scope, and an older event naming it cannot bring it back);
//! - `routing_directory_users`: each user's roles, status and client scope
//!   (`all_clients`, else the comma-separated `client_ids`), the scope an
//!   agent takes contacts in; deleted users stay as tombstones.
//!
//! Each row carries the `version` it was written at: the time of the
//! identity event (microseconds since the epoch) it comes from. An event
//! older than the row is ignored, so a redelivered or replayed event never
//! undoes a newer one.
//!
//! The tables are filled from identity's tables as they are now, each row
//! at the version of its source row's last change (events of those changes
//! still in flight then apply the same values again). On PostgreSQL the
//! copy runs tenant by tenant, as row-level security reads and writes one
//! tenant's rows at a time (tenants are listed from the global
//! `tenant_slugs`), and the tables get the forced tenant policy.
//!
//! On PostgreSQL the foreign key from `routing_agent_profiles` to `users`
//! (migrations 5 and 8) goes: a profile goes with its user when routing
//! applies the user's `user.deleted` event. SQLite keeps its single-column
//! keys (migration 8 explains why); there the key still removes the
//! profile with the user, and the event finds it gone.

use std::collections::BTreeMap;

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::shared::{Visibility, execute, tenant_isolation, text, uuid_col, uuid_pk};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RoutingDirectoryTenants {
    Table,
    TenantId,
    TimeZone,
    Version,
}

#[derive(DeriveIden)]
enum RoutingDirectoryClients {
    Table,
    Id,
    TenantId,
    Deleted,
    Version,
}

#[derive(DeriveIden)]
enum RoutingDirectoryUsers {
    Table,
    Id,
    TenantId,
    Roles,
    Status,
    AllClients,
    ClientIds,
    Deleted,
    Version,
}

const TABLES: [&str; 3] = [
    "routing_directory_tenants",
    "routing_directory_clients",
    "routing_directory_users",
];

/// Migrations 5 and 8 named it so (`{table}_{column}_tenant_fkey`).
const PROFILE_USER_FK: &str = "routing_agent_profiles_id_tenant_fkey";

fn version() -> ColumnDef {
    ColumnDef::new(Alias::new("version"))
        .big_integer()
        .not_null()
        .to_owned()
}

fn flag<T: IntoIden>(column: T) -> ColumnDef {
    ColumnDef::new(column)
        .boolean()
        .not_null()
        .default(false)
        .to_owned()
}

fn micros(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp_micros()
}

/// Copies one tenant's rows (all of them on SQLite, `tenant = None`).
async fn backfill(manager: &SchemaManager<'_>, tenant: Option<uuid::Uuid>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let only = |query: &mut SelectStatement, column: &str| {
        if let Some(tenant) = tenant {
            query.and_where(Expr::col(Alias::new(column)).eq(tenant));
        }
    };
    let mut tenants = Query::select()
        .columns([
            Alias::new("id"),
            Alias::new("time_zone"),
            Alias::new("updated_at"),
        ])
        .from(Alias::new("tenants"))
        .to_owned();
    only(&mut tenants, "id");
    for row in db.query_all(&tenants).await? {
        let at: chrono::DateTime<chrono::Utc> = row.try_get("", "updated_at")?;
        let insert = Query::insert()
            .into_table(RoutingDirectoryTenants::Table)
            .columns([
                RoutingDirectoryTenants::TenantId,
                RoutingDirectoryTenants::TimeZone,
                RoutingDirectoryTenants::Version,
            ])
            .values_panic([
                row.try_get::<uuid::Uuid>("", "id")?.into(),
                row.try_get::<String>("", "time_zone")?.into(),
                micros(at).into(),
            ])
            .to_owned();
        db.execute(&insert).await?;
    }
    let mut clients = Query::select()
        .columns([
            Alias::new("id"),
            Alias::new("tenant_id"),
            Alias::new("created_at"),
        ])
        .from(Alias::new("client_orgs"))
        .to_owned();
    only(&mut clients, "tenant_id");
    for row in db.query_all(&clients).await? {
        let at: chrono::DateTime<chrono::Utc> = row.try_get("", "created_at")?;
        let insert = Query::insert()
            .into_table(RoutingDirectoryClients::Table)
            .columns([
                RoutingDirectoryClients::Id,
                RoutingDirectoryClients::TenantId,
                RoutingDirectoryClients::Deleted,
                RoutingDirectoryClients::Version,
            ])
            .values_panic([
                row.try_get::<uuid::Uuid>("", "id")?.into(),
                row.try_get::<uuid::Uuid>("", "tenant_id")?.into(),
                false.into(),
                micros(at).into(),
            ])
            .to_owned();
        db.execute(&insert).await?;
    }
    let mut links = Query::select()
        .columns([Alias::new("user_id"), Alias::new("client_id")])
        .from(Alias::new("user_clients"))
        .to_owned();
    only(&mut links, "tenant_id");
    let mut scopes: BTreeMap<uuid::Uuid, Vec<uuid::Uuid>> = BTreeMap::new();
    for row in db.query_all(&links).await? {
        scopes
            .entry(row.try_get("", "user_id")?)
            .or_default()
            .push(row.try_get("", "client_id")?);
    }
    let mut users = Query::select()
        .columns([
            Alias::new("id"),
            Alias::new("tenant_id"),
            Alias::new("roles"),
            Alias::new("status"),
            Alias::new("all_clients"),
            Alias::new("updated_at"),
        ])
        .from(Alias::new("users"))
        .to_owned();
    only(&mut users, "tenant_id");
    for row in db.query_all(&users).await? {
        let id: uuid::Uuid = row.try_get("", "id")?;
        let at: chrono::DateTime<chrono::Utc> = row.try_get("", "updated_at")?;
        let all_clients: bool = row.try_get("", "all_clients")?;
        let mut clients = scopes.remove(&id).unwrap_or_default();
        clients.sort_unstable();
        let client_ids = if all_clients {
            String::new()
        } else {
            clients
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let insert = Query::insert()
            .into_table(RoutingDirectoryUsers::Table)
            .columns([
                RoutingDirectoryUsers::Id,
                RoutingDirectoryUsers::TenantId,
                RoutingDirectoryUsers::Roles,
                RoutingDirectoryUsers::Status,
                RoutingDirectoryUsers::AllClients,
                RoutingDirectoryUsers::ClientIds,
                RoutingDirectoryUsers::Deleted,
                RoutingDirectoryUsers::Version,
            ])
            .values_panic([
                id.into(),
                row.try_get::<uuid::Uuid>("", "tenant_id")?.into(),
                row.try_get::<String>("", "roles")?.into(),
                row.try_get::<String>("", "status")?.into(),
                all_clients.into(),
                client_ids.into(),
                false.into(),
                micros(at).into(),
            ])
            .to_owned();
        db.execute(&insert).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RoutingDirectoryTenants::Table)
                    .col(uuid_pk(RoutingDirectoryTenants::TenantId))
                    .col(text(RoutingDirectoryTenants::TimeZone))
                    .col(version())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RoutingDirectoryClients::Table)
                    .col(uuid_pk(RoutingDirectoryClients::Id))
                    .col(uuid_col(RoutingDirectoryClients::TenantId))
                    .col(flag(RoutingDirectoryClients::Deleted))
                    .col(version())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RoutingDirectoryUsers::Table)
                    .col(uuid_pk(RoutingDirectoryUsers::Id))
                    .col(uuid_col(RoutingDirectoryUsers::TenantId))
                    .col(text(RoutingDirectoryUsers::Roles))
                    .col(text(RoutingDirectoryUsers::Status))
                    .col(flag(RoutingDirectoryUsers::AllClients))
                    .col(
                        ColumnDef::new(RoutingDirectoryUsers::ClientIds)
                            .text()
                            .not_null()
                            .default(""),
                    )
                    .col(flag(RoutingDirectoryUsers::Deleted))
                    .col(version())
                    .to_owned(),
            )
            .await?;
        for (name, table) in [
            (
                "routing_directory_clients_tenant_id",
                "routing_directory_clients",
            ),
            (
                "routing_directory_users_tenant_id",
                "routing_directory_users",
            ),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Alias::new(table))
                        .col(Alias::new("tenant_id"))
                        .col(Alias::new("id"))
                        .to_owned(),
                )
                .await?;
        }
        if manager.get_database_backend() != DbBackend::Postgres {
            return backfill(manager, None).await;
        }
        for table in TABLES {
            for statement in tenant_isolation(table, "tenant_id", Visibility::Tenant) {
                execute(manager, &statement).await?;
            }
        }
        execute(
            manager,
            &format!("ALTER TABLE routing_agent_profiles DROP CONSTRAINT {PROFILE_USER_FK}"),
        )
        .await?;
        let query = Query::select()
            .column(Alias::new("tenant_id"))
            .from(Alias::new("tenant_slugs"))
            .to_owned();
        let tenants: Vec<uuid::Uuid> = manager
            .get_connection()
            .query_all(&query)
            .await?
            .iter()
            .map(|row| row.try_get("", "tenant_id"))
            .collect::<Result<_, _>>()?;
        for tenant in tenants {
            execute(
                manager,
                &format!("SELECT set_config('app.tenant_id', '{tenant}', true)"),
            )
            .await?;
            backfill(manager, Some(tenant)).await?;
        }
        execute(manager, "SELECT set_config('app.tenant_id', '', true)").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            // Profiles of users deleted meanwhile go first, or the key
            // cannot hold.
            execute(
                manager,
                "DELETE FROM routing_agent_profiles p WHERE NOT EXISTS \
                 (SELECT 1 FROM users u WHERE u.tenant_id = p.tenant_id AND u.id = p.id)",
            )
            .await?;
            execute(
                manager,
                &format!(
                    "ALTER TABLE routing_agent_profiles ADD CONSTRAINT {PROFILE_USER_FK} \
                     FOREIGN KEY (tenant_id, id) REFERENCES users (tenant_id, id) \
                     ON DELETE CASCADE"
                ),
            )
            .await?;
        }
        for table in TABLES.iter().rev() {
            manager
                .drop_table(Table::drop().table(Alias::new(*table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
