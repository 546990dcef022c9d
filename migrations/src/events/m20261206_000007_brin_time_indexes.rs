//! Time indexes that cost next to nothing to keep up: on PostgreSQL the
//! B-tree indexes on `processed_events.processed_at` and
//! `event_log.occurred_at` become BRIN indexes (block range summaries).
//!
//! Both columns grow with insertion order, so a range of heap blocks
//! holds a narrow span of times and a BRIN index answers the retention
//! sweep's and replay's `< / >= time` conditions by skipping whole block
//! ranges. A B-tree took an index entry per row written: one of the three
//! index insertions of every processed mark, on the consumers' hot path.
//! Rows written into space freed by the sweep widen a range's summary:
//! those ranges are then read and filtered, which costs the sweep time,
//! never a wrong answer. SQLite keeps its B-trees (it has no BRIN).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DbBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `(index, table, column)`.
const TIME_INDEXES: [(&str, &str, &str); 2] = [
    (
        "processed_events_processed_at",
        "processed_events",
        "processed_at",
    ),
    ("event_log_occurred_at", "event_log", "occurred_at"),
];

async fn rebuild(manager: &SchemaManager<'_>, method: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    for (index, table, column) in TIME_INDEXES {
        for statement in [
            format!("DROP INDEX {index}"),
            format!("CREATE INDEX {index} ON {table} USING {method} ({column})"),
        ] {
            manager
                .get_connection()
                .execute_raw(Statement::from_string(DbBackend::Postgres, statement))
                .await?;
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rebuild(manager, "brin").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rebuild(manager, "btree").await
    }
}
