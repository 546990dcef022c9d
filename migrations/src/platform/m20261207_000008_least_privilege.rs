//! Least privilege on PostgreSQL (issue 19, item 4).
//!
//! - **No escape from tenant scope.** Until now the policies of the tables
//!   that cross-tenant workers read let a transaction that set
//!   `app.scope = 'system'` see every tenant's rows — and any statement the
//!   service role runs can set that variable. Their `tenant_isolation`
//!   policy now compares `tenant_id` with `app.tenant_id` only, and the
//!   cross-tenant access belongs to a group role of its own,
//!   `switchboard_system` (no login, no RLS bypass), granted to the login
//!   role of `database.system_url`: a `system_workers` policy lets it see
//!   every tenant's rows of exactly the tables the relay, the retention
//!   sweep, the replay request, the webhook dispatcher and the edge's
//!   number lookup work on, with the rights each of them needs and no more.
//!   The relay's own tables (`relay_leases`, `relay_cursors`) move from the
//!   service role to it.
//! - **An audit log nobody can edit.** The service role keeps INSERT and
//!   SELECT on `audit_events` and loses UPDATE and DELETE (rows still go
//!   with their tenant: foreign-key cascades run as the owner).
//! - **No row points at another tenant's row.** Every foreign key from a
//!   tenant-owned row to another tenant-owned row becomes composite,
//!   `(tenant_id, x_id) REFERENCES t (tenant_id, id)`, on a new
//!   `UNIQUE (tenant_id, id)` of the target. Existing rows are checked when
//!   the key is added: a row pointing across tenants stops the migration.
//!
//! SQLite has no roles and no policies; its foreign keys stay on one
//! column, since changing them needs every table rebuilt, and the embedded
//! backend serves one installation in one process whose queries all filter
//! by tenant. This migration changes nothing there.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DbBackend, Statement};

use crate::APP_ROLE;
use crate::shared::create_group_role;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The group role of the workers that serve every tenant: the events relay
/// (with its retention sweep), replay requests, the webhook dispatcher and
/// the edge's number lookup.
pub const SYSTEM_ROLE: &str = "switchboard_system";

/// Tables whose policy honoured `app.scope = 'system'` (migrations 3, 4, 5).
const WIDENED_TABLES: &[&str] = &[
    "event_log",
    "processed_events",
    "event_redeliveries",
    "webhook_endpoints",
    "webhook_deliveries",
    "webhook_attempts",
    "routing_numbers",
];

/// What the system role may do, table by table. Tables under row-level
/// security (all but the relay's two) get a `system_workers` policy.
const SYSTEM_GRANTS: &[(&str, &str, bool)] = &[
    // Relay: reads the outbox; retention sweep: deletes published rows.
    ("event_log", "SELECT, DELETE", true),
    // Consumers' catch-up reads marks; sweep and replay delete them.
    ("processed_events", "SELECT, DELETE", true),
    // Replay requests insert; the relay reads and deletes.
    ("event_redeliveries", "SELECT, INSERT, DELETE", true),
    ("relay_leases", "SELECT, UPDATE", false),
    ("relay_cursors", "SELECT, UPDATE", false),
    // Dispatcher: claims due deliveries of active endpoints.
    ("webhook_endpoints", "SELECT", true),
    ("webhook_deliveries", "SELECT, UPDATE", true),
    // The edge: which tenant holds a dialed number.
    ("routing_numbers", "SELECT", true),
];

/// `(table, column, referenced table)`: single-column references between
/// tenant-owned rows (migrations 2, 4, 5), all `ON DELETE CASCADE`.
const REFERENCES: &[(&str, &str, &str)] = &[
    ("user_clients", "user_id", "users"),
    ("user_clients", "client_id", "client_orgs"),
    ("sessions", "user_id", "users"),
    ("refresh_tokens", "session_id", "sessions"),
    ("webhook_deliveries", "endpoint_id", "webhook_endpoints"),
    ("webhook_attempts", "delivery_id", "webhook_deliveries"),
    ("routing_agent_profiles", "id", "users"),
    ("routing_flow_versions", "flow_id", "routing_flows"),
];

const TENANT: &str = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid";

fn referenced_tables() -> Vec<&'static str> {
    let mut tables: Vec<&str> = REFERENCES.iter().map(|(_, _, to)| *to).collect();
    tables.sort_unstable();
    tables.dedup();
    tables
}

fn unique_name(table: &str) -> String {
    format!("{table}_tenant_id_id_key")
}

fn composite_name(table: &str, column: &str) -> String {
    format!("{table}_{column}_tenant_fkey")
}

/// Drops the single-column foreign key `table (column) → to`, whatever
/// name it was created with.
fn drop_single_fk(table: &str, column: &str, to: &str) -> String {
    format!(
        "DO $$ DECLARE name text; BEGIN \
         SELECT c.conname INTO name FROM pg_constraint c \
         WHERE c.contype = 'f' AND c.conrelid = '{table}'::regclass \
         AND c.confrelid = '{to}'::regclass \
         AND c.conkey = ARRAY[(SELECT a.attnum FROM pg_attribute a \
         WHERE a.attrelid = '{table}'::regclass AND a.attname = '{column}')]; \
         EXECUTE format('ALTER TABLE {table} DROP CONSTRAINT %I', name); END $$"
    )
}

fn up_statements() -> Vec<String> {
    let mut statements = vec![
        create_group_role(SYSTEM_ROLE),
        format!("GRANT USAGE ON SCHEMA public TO {SYSTEM_ROLE}"),
    ];
    for table in WIDENED_TABLES {
        statements.push(format!(
            "ALTER POLICY tenant_isolation ON {table} USING ({TENANT}) WITH CHECK ({TENANT})"
        ));
    }
    for (table, rights, policy) in SYSTEM_GRANTS {
        statements.push(format!("GRANT {rights} ON {table} TO {SYSTEM_ROLE}"));
        if *policy {
            statements.push(format!(
                "CREATE POLICY system_workers ON {table} TO {SYSTEM_ROLE} \
                 USING (true) WITH CHECK (true)"
            ));
        }
    }
    statements.extend([
        format!(
            "DO $$ BEGIN EXECUTE format('GRANT USAGE ON SEQUENCE %s TO {SYSTEM_ROLE}', \
             pg_get_serial_sequence('event_redeliveries', 'seq')); END $$"
        ),
        format!("REVOKE SELECT, UPDATE ON relay_leases, relay_cursors FROM {APP_ROLE}"),
        format!("REVOKE UPDATE, DELETE ON audit_events FROM {APP_ROLE}"),
    ]);
    for table in referenced_tables() {
        statements.push(format!(
            "ALTER TABLE {table} ADD CONSTRAINT {} UNIQUE (tenant_id, id)",
            unique_name(table)
        ));
    }
    for (table, column, to) in REFERENCES {
        statements.push(drop_single_fk(table, column, to));
        statements.push(format!(
            "ALTER TABLE {table} ADD CONSTRAINT {} FOREIGN KEY (tenant_id, {column}) \
             REFERENCES {to} (tenant_id, id) ON DELETE CASCADE",
            composite_name(table, column)
        ));
    }
    statements
}

fn down_statements() -> Vec<String> {
    let mut statements = Vec::new();
    for (table, column, to) in REFERENCES {
        statements.push(format!(
            "ALTER TABLE {table} DROP CONSTRAINT {}",
            composite_name(table, column)
        ));
        statements.push(format!(
            "ALTER TABLE {table} ADD FOREIGN KEY ({column}) REFERENCES {to} (id) \
             ON DELETE CASCADE"
        ));
    }
    for table in referenced_tables() {
        statements.push(format!(
            "ALTER TABLE {table} DROP CONSTRAINT {}",
            unique_name(table)
        ));
    }
    statements.extend([
        format!("GRANT UPDATE, DELETE ON audit_events TO {APP_ROLE}"),
        format!("GRANT SELECT, UPDATE ON relay_leases, relay_cursors TO {APP_ROLE}"),
        format!(
            "DO $$ BEGIN EXECUTE format('REVOKE USAGE ON SEQUENCE %s FROM {SYSTEM_ROLE}', \
             pg_get_serial_sequence('event_redeliveries', 'seq')); END $$"
        ),
    ]);
    for (table, rights, policy) in SYSTEM_GRANTS {
        if *policy {
            statements.push(format!("DROP POLICY system_workers ON {table}"));
        }
        statements.push(format!("REVOKE {rights} ON {table} FROM {SYSTEM_ROLE}"));
    }
    let widened = format!("{TENANT} OR current_setting('app.scope', true) = 'system'");
    for table in WIDENED_TABLES {
        statements.push(format!(
            "ALTER POLICY tenant_isolation ON {table} USING ({widened}) WITH CHECK ({widened})"
        ));
    }
    // The role is cluster-wide (other databases may use it): it stays.
    statements.push(format!("REVOKE USAGE ON SCHEMA public FROM {SYSTEM_ROLE}"));
    statements
}

async fn run(manager: &SchemaManager<'_>, statements: Vec<String>) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    for statement in statements {
        manager
            .get_connection()
            .execute_raw(Statement::from_string(DbBackend::Postgres, statement))
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, up_statements()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, down_statements()).await
    }
}
