//! Registrations with carriers (issue 21): the edge finds the trunks it
//! must register in system scope, before any tenant is known, so the
//! system workers' role may read whether a trunk registers. The outbound
//! settings themselves, password included, are read in the trunk's own
//! tenant scope, never in system scope.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::SYSTEM_ROLE;
use crate::shared::execute;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        execute(
            manager,
            &format!("GRANT SELECT (register) ON edge_trunks TO {SYSTEM_ROLE}"),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        execute(
            manager,
            &format!("REVOKE SELECT (register) ON edge_trunks FROM {SYSTEM_ROLE}"),
        )
        .await
    }
}
