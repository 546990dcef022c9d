//! The relay's cursor: `relay_cursors` holds, per relay partition, the
//! `seq` up to which every outbox row of the partition is published (or
//! will never exist), replacing the per-row `event_log.published_at` and
//! its partial index `event_log_pending`. Marking a round published is
//! then one small update per round instead of one (non-HOT) row update per
//! event; "published" is derived as `seq <= cursor of its partition`
//! (replay, retention).
//!
//! A sequence hands out `seq` when a row is inserted, not when it commits:
//! with concurrent writers a lower `seq` can become visible after a higher
//! one. On PostgreSQL the relay tells such late rows apart by the writing
//! transaction (the transactional-outbox "xid8 snapshot" technique):
//! - `event_log.xid` (`xid8`) records the inserting top-level transaction;
//! - `seq`'s default `event_log_next_seq()` takes the transaction id before
//!   it takes the next value, so a transaction whose id comes after a
//!   given one takes all its `seq`s after that id was handed out;
//! - the sequence hands values out one at a time (`CACHE 1`), so they
//!   increase in the order they are taken across sessions.
//!
//! `crates/events/src/relay.rs` explains how the relay uses them. SQLite
//! has one writer at a time, which allocates and commits its rows before
//! the next one allocates: there, rows become visible in `seq` order.
//!
//! The cursors start where the published rows end: just below each
//! partition's first unpublished row (rows above it that were published
//! already go out once more, which consumers drop as duplicates).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DbBackend, Statement};

use crate::APP_ROLE;
use crate::events::EVENT_PARTITIONS;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RelayCursors {
    Table,
    Partition,
    Seq,
}

#[derive(DeriveIden)]
enum EventLog {
    Table,
    Seq,
    PublishedAt,
}

async fn run(manager: &SchemaManager<'_>, statements: &[String]) -> Result<(), DbErr> {
    let backend = manager.get_database_backend();
    for statement in statements {
        manager
            .get_connection()
            .execute_raw(Statement::from_string(backend, statement.clone()))
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RelayCursors::Table)
                    .col(
                        ColumnDef::new(RelayCursors::Partition)
                            .small_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(RelayCursors::Seq)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        let mut statements: Vec<String> = (0..EVENT_PARTITIONS)
            .map(|partition| {
                format!(
                    "INSERT INTO relay_cursors (partition, seq) VALUES ({partition}, COALESCE(\
                     (SELECT MIN(seq) - 1 FROM event_log \
                      WHERE partition = {partition} AND published_at IS NULL), \
                     (SELECT MAX(seq) FROM event_log), 0))"
                )
            })
            .collect();
        statements.push("DROP INDEX event_log_pending".to_owned());
        statements.push("ALTER TABLE event_log DROP COLUMN published_at".to_owned());
        if manager.get_database_backend() == DbBackend::Postgres {
            statements.extend([
                // Nullable: no table rewrite; rows older than this
                // migration are below or read past the cursors anyway.
                "ALTER TABLE event_log ADD COLUMN xid xid8".to_owned(),
                "ALTER TABLE event_log ALTER COLUMN xid SET DEFAULT pg_current_xact_id()"
                    .to_owned(),
                // An identity column takes no other default: the
                // identity becomes a plain sequence going on from the
                // identity's next value (CACHE 1, the default).
                "DO $$ DECLARE next bigint := \
                 nextval(pg_get_serial_sequence('event_log', 'seq')); BEGIN \
                 ALTER TABLE event_log ALTER COLUMN seq DROP IDENTITY; \
                 EXECUTE format('CREATE SEQUENCE event_log_seq_seq START WITH %s \
                 OWNED BY event_log.seq', next); END $$"
                    .to_owned(),
                format!("GRANT USAGE, SELECT ON SEQUENCE event_log_seq_seq TO {APP_ROLE}"),
                // CASE evaluates its condition first: the transaction id
                // is assigned before the sequence value is taken. A plain
                // SQL function, inlined into the insert.
                "CREATE FUNCTION event_log_next_seq() RETURNS bigint LANGUAGE sql VOLATILE AS \
                 $$ SELECT CASE WHEN pg_current_xact_id() IS NOT NULL \
                 THEN nextval('event_log_seq_seq'::regclass) END $$"
                    .to_owned(),
                "ALTER TABLE event_log ALTER COLUMN seq SET DEFAULT event_log_next_seq()"
                    .to_owned(),
                format!("GRANT SELECT, UPDATE ON relay_cursors TO {APP_ROLE}"),
            ]);
        }
        run(manager, &statements).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            run(
                manager,
                &[
                    "DO $$ DECLARE next bigint := nextval('event_log_seq_seq'::regclass); BEGIN \
                     ALTER TABLE event_log ALTER COLUMN seq DROP DEFAULT; \
                     DROP FUNCTION event_log_next_seq(); \
                     DROP SEQUENCE event_log_seq_seq; \
                     EXECUTE format('ALTER TABLE event_log ALTER COLUMN seq ADD GENERATED \
                     BY DEFAULT AS IDENTITY (START WITH %s)', next); END $$"
                        .to_owned(),
                    "ALTER TABLE event_log DROP COLUMN xid".to_owned(),
                ],
            )
            .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(EventLog::Table)
                    .add_column(
                        ColumnDef::new(EventLog::PublishedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        let published = Query::update()
            .table(EventLog::Table)
            .value(EventLog::PublishedAt, chrono::Utc::now())
            .and_where(Expr::col(EventLog::Seq).lte(Expr::cust(
                "(SELECT c.seq FROM relay_cursors c WHERE c.partition = event_log.partition)",
            )))
            .to_owned();
        manager.exec_stmt(published).await?;
        run(
            manager,
            &["CREATE INDEX event_log_pending ON event_log (seq) \
               WHERE published_at IS NULL"
                .to_owned()],
        )
        .await?;
        manager
            .drop_table(Table::drop().table(RelayCursors::Table).to_owned())
            .await
    }
}
