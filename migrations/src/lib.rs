//! Schema migrations of Switchboard, one module per migration, applied in
//! name order by [`Migrator`] on PostgreSQL and SQLite alike.
//!
//! Migrations run as the database owner (`switchboard migrate up`, or
//! `switchboard dev` at start); services connect as a role that does not
//! own the tables (see ARCHITECTURE.md, tenancy).

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_create_installation;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261123_000001_create_installation::Migration)]
    }
}
