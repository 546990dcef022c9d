//! What every migration builds tables with: common column shapes, and the
//! PostgreSQL statements that put a tenant-owned table under row-level
//! security (ARCHITECTURE.md, tenancy).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::Statement;

use crate::APP_ROLE;

pub(crate) fn uuid_pk<T: IntoIden>(column: T) -> ColumnDef {
    ColumnDef::new(column)
        .uuid()
        .not_null()
        .primary_key()
        .to_owned()
}

pub(crate) fn uuid_col<T: IntoIden>(column: T) -> ColumnDef {
    ColumnDef::new(column).uuid().not_null().to_owned()
}

pub(crate) fn text<T: IntoIden>(column: T) -> ColumnDef {
    ColumnDef::new(column).string().not_null().to_owned()
}

pub(crate) fn text_null<T: IntoIden>(column: T) -> ColumnDef {
    ColumnDef::new(column).string().null().to_owned()
}

pub(crate) fn time<T: IntoIden>(column: T) -> ColumnDef {
    ColumnDef::new(column)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

pub(crate) fn time_null<T: IntoIden>(column: T) -> ColumnDef {
    ColumnDef::new(column)
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

/// PostgreSQL: creates the cluster-wide group role `role` (no login, no
/// RLS bypass) unless it exists. The lookup comes first because `CREATE
/// ROLE` checks the CREATEROLE privilege before it checks for a duplicate:
/// an owner role without CREATEROLE migrating a second database must not
/// fail on a role that is already there. The handler covers a concurrent
/// creation by another database's migration.
pub(crate) fn create_group_role(role: &str) -> String {
    format!(
        "DO $$ BEGIN \
         IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN \
         CREATE ROLE {role} NOLOGIN NOBYPASSRLS; END IF; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    )
}

/// Who a tenant-owned table's rows are visible to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visibility {
    /// Only a transaction confined to the row's tenant (`app.tenant_id`).
    Tenant,
    /// Also a transaction in system scope (`app.scope = 'system'`): tables
    /// that workers serving every tenant read (event log, deliveries), as
    /// migrations 3–5 created them. Migration 8 narrows these policies to
    /// the tenant and gives the workers a role of their own.
    TenantOrSystem,
}

/// PostgreSQL: DML rights for the service role, and a forced RLS policy
/// comparing `column` with the transaction's tenant.
pub(crate) fn tenant_isolation(table: &str, column: &str, visibility: Visibility) -> [String; 4] {
    let tenant = format!("{column} = NULLIF(current_setting('app.tenant_id', true), '')::uuid");
    let predicate = match visibility {
        Visibility::Tenant => tenant,
        Visibility::TenantOrSystem => {
            format!("{tenant} OR current_setting('app.scope', true) = 'system'")
        }
    };
    [
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}"),
        format!("ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"),
        format!("ALTER TABLE {table} FORCE ROW LEVEL SECURITY"),
        format!(
            "CREATE POLICY tenant_isolation ON {table} USING ({predicate}) WITH CHECK ({predicate})"
        ),
    ]
}

/// Runs one SQL statement of the migration's engine.
pub(crate) async fn execute(manager: &SchemaManager<'_>, statement: &str) -> Result<(), DbErr> {
    manager
        .get_connection()
        .execute_raw(Statement::from_string(
            manager.get_database_backend(),
            statement.to_owned(),
        ))
        .await?;
    Ok(())
}
