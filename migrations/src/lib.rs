//! Schema migrations of Switchboard, one module per migration, applied in
//! name order by [`Migrator`] on PostgreSQL and SQLite alike.
//!
//! Migrations run as the database owner (`switchboard migrate up`, or
//! `switchboard dev` at start), which needs no CREATEROLE once the group
//! roles exist; services connect as a member of [`APP_ROLE`] that does not
//! own the tables, and the workers that serve every tenant as a member of
//! [`SYSTEM_ROLE`] (see ARCHITECTURE.md, tenancy, and migration 8).

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_create_installation;
mod m20261123_000002_create_identity;
mod m20261123_000003_create_events;
mod m20261123_000004_create_webhooks;
mod m20261204_000005_create_routing;
mod m20261204_000006_relay_cursor;
mod m20261206_000007_brin_time_indexes;
mod m20261207_000008_least_privilege;
mod m20261207_000009_credential_rights;
mod shared;

pub use m20261123_000001_create_installation::Installation;
pub use m20261123_000002_create_identity::APP_ROLE;
pub use m20261123_000003_create_events::EVENT_PARTITIONS;
pub use m20261207_000008_least_privilege::SYSTEM_ROLE;

pub struct Migrator;

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
        vec![
            Box::new(m20261123_000001_create_installation::Migration),
            Box::new(m20261123_000002_create_identity::Migration),
            Box::new(m20261123_000003_create_events::Migration),
            Box::new(m20261123_000004_create_webhooks::Migration),
            Box::new(m20261204_000005_create_routing::Migration),
            Box::new(m20261204_000006_relay_cursor::Migration),
            Box::new(m20261206_000007_brin_time_indexes::Migration),
            Box::new(m20261207_000008_least_privilege::Migration),
            Box::new(m20261207_000009_credential_rights::Migration),
        ]
    }
}
