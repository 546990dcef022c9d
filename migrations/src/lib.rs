//! Schema migrations of Switchboard, one module per migration, applied in
//! name order by [`Migrator`] on PostgreSQL and SQLite alike.
//!
//! Migrations are grouped by the service that owns their tables
//! ([`identity`], [`events`], [`webhooks`], [`routing`], [`edge`]; [`platform`] for
//! the node's own table and those that span every service), and
//! [`ownership`] maps every table to its owner. A migration is known to a
//! database by its name, its file's stem (`DeriveMigrationName`), never by
//! its module path: moving a file into its group changes nothing for a
//! database migrated before (the names and their order are pinned by a
//! test). A new migration goes into its owner's group, named after the
//! last one, and into [`Migrator::migrations`] at the end.
//!
//! Migrations run as the database owner (`switchboard migrate up`, or
//! `switchboard dev` at start), which needs no CREATEROLE once the group
//! roles exist; services connect as a member of [`APP_ROLE`] that does not
//! own the tables, and the workers that serve every tenant as a member of
//! [`SYSTEM_ROLE`] (see ARCHITECTURE.md, tenancy, and migration 8).

pub use sea_orm_migration::prelude::*;

pub mod edge;
pub mod events;
pub mod identity;
pub mod ownership;
pub mod platform;
pub mod routing;
mod shared;
pub mod webhooks;

pub use events::EVENT_PARTITIONS;
pub use identity::m20261123_000002_create_identity::APP_ROLE;
pub use platform::m20261123_000001_create_installation::Installation;
pub use platform::m20261207_000008_least_privilege::SYSTEM_ROLE;

pub struct Migrator;

/// The names of every migration, in the order they apply.
pub fn migration_names() -> Vec<String> {
    Migrator::migrations()
        .iter()
        .map(|migration| migration.name().to_owned())
        .collect()
}

/// The id minted when this database was first migrated.
pub async fn installation_id<C: ConnectionTrait>(db: &C) -> Result<uuid::Uuid, DbErr> {
    let query = Query::select()
        .column(Installation::Id)
        .from(Installation::Table)
        .limit(1)
        .to_owned();
    let row = db
        .query_one(&query)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the installation row is missing".into()))?;
    row.try_get::<uuid::Uuid>("", "id")
}

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        // In name order, whatever their group: the order every database
        // was migrated in.
        vec![
            Box::new(platform::m20261123_000001_create_installation::Migration),
            Box::new(identity::m20261123_000002_create_identity::Migration),
            Box::new(events::m20261123_000003_create_events::Migration),
            Box::new(webhooks::m20261123_000004_create_webhooks::Migration),
            Box::new(routing::m20261204_000005_create_routing::Migration),
            Box::new(events::m20261204_000006_relay_cursor::Migration),
            Box::new(events::m20261206_000007_brin_time_indexes::Migration),
            Box::new(platform::m20261207_000008_least_privilege::Migration),
            Box::new(identity::m20261207_000009_credential_rights::Migration),
            Box::new(routing::m20261210_000010_identity_projection::Migration),
            Box::new(edge::m20261214_000011_create_edge::Migration),
            Box::new(edge::m20261215_000012_create_edge_trunks::Migration),
            Box::new(identity::m20261216_000013_plan_call_limits::Migration),
            Box::new(edge::m20261216_000014_edge_call_limits::Migration),
            Box::new(edge::m20261217_000015_edge_trunk_registrations::Migration),
        ]
    }
}
