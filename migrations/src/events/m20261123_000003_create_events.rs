//! The event backbone: the event log (which is also the outbox), relay
//! leases, consumers' processed-event marks, and replay requests.
//!
//! A service appends its events to `event_log` in the transaction of the
//! state change; rows with no `published_at` are the outbox, which the
//! relay publishes partition by partition (`partition` is derived from the
//! tenant, so one tenant's events stay in order) while it holds the
//! partition's lease in `relay_leases`. Published rows stay for replay
//! until the retention period passes.
//!
//! On PostgreSQL the tenant-owned tables get the usual forced RLS policy,
//! widened by one clause: a transaction that sets `app.scope = 'system'`
//! (the relay and the retention sweep, which work across tenants) sees
//! every tenant's rows.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DbBackend, Statement};

use crate::APP_ROLE;
use crate::shared::{Visibility, tenant_isolation, time};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Relay partitions: outbox rows are spread over this many, by tenant.
pub const EVENT_PARTITIONS: i16 = 16;

/// Tables with a `tenant_id` and the tenant-or-system policy.
const TENANT_OR_SYSTEM_TABLES: &[&str] = &["event_log", "processed_events", "event_redeliveries"];

#[derive(DeriveIden)]
enum EventLog {
    Table,
    Seq,
    Id,
    TenantId,
    Partition,
    Source,
    EventType,
    RoutingKey,
    OccurredAt,
    Payload,
    PublishedAt,
}

#[derive(DeriveIden)]
enum RelayLeases {
    Table,
    Partition,
    Holder,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum ProcessedEvents {
    Table,
    Consumer,
    EventId,
    TenantId,
    ProcessedAt,
}

#[derive(DeriveIden)]
enum EventRedeliveries {
    Table,
    Seq,
    Consumer,
    EventSeq,
    TenantId,
    RequestedAt,
}

fn seq<T: IntoIden>(column: T) -> ColumnDef {
    ColumnDef::new(column)
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EventLog::Table)
                    .col(seq(EventLog::Seq))
                    .col(ColumnDef::new(EventLog::Id).uuid().not_null().unique_key())
                    .col(ColumnDef::new(EventLog::TenantId).uuid().not_null())
                    .col(
                        ColumnDef::new(EventLog::Partition)
                            .small_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(EventLog::Source).string().not_null())
                    .col(ColumnDef::new(EventLog::EventType).string().not_null())
                    .col(ColumnDef::new(EventLog::RoutingKey).string().not_null())
                    .col(time(EventLog::OccurredAt))
                    .col(ColumnDef::new(EventLog::Payload).blob().not_null())
                    .col(
                        ColumnDef::new(EventLog::PublishedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RelayLeases::Table)
                    .col(
                        ColumnDef::new(RelayLeases::Partition)
                            .small_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(RelayLeases::Holder).string().null())
                    .col(
                        ColumnDef::new(RelayLeases::ExpiresAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        for partition in 0..EVENT_PARTITIONS {
            manager
                .exec_stmt(
                    Query::insert()
                        .into_table(RelayLeases::Table)
                        .columns([RelayLeases::Partition])
                        .values_panic([partition.into()])
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(ProcessedEvents::Table)
                    .col(
                        ColumnDef::new(ProcessedEvents::Consumer)
                            .string()
                            .not_null(),
                    )
                    .col(ColumnDef::new(ProcessedEvents::EventId).uuid().not_null())
                    .col(ColumnDef::new(ProcessedEvents::TenantId).uuid().not_null())
                    .col(time(ProcessedEvents::ProcessedAt))
                    .primary_key(
                        Index::create()
                            .col(ProcessedEvents::Consumer)
                            .col(ProcessedEvents::EventId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EventRedeliveries::Table)
                    .col(seq(EventRedeliveries::Seq))
                    .col(
                        ColumnDef::new(EventRedeliveries::Consumer)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(EventRedeliveries::EventSeq)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(EventRedeliveries::TenantId)
                            .uuid()
                            .not_null(),
                    )
                    .col(time(EventRedeliveries::RequestedAt))
                    .to_owned(),
            )
            .await?;

        let backend = manager.get_database_backend();
        let connection = manager.get_connection();
        let mut statements = vec![
            // The outbox: what the relay reads, in seq order (filtering
            // its partitions on the way, and stopping at its batch size).
            "CREATE INDEX event_log_pending ON event_log (seq) \
             WHERE published_at IS NULL"
                .to_owned(),
            "CREATE INDEX event_log_occurred_at ON event_log (occurred_at)".to_owned(),
            "CREATE INDEX processed_events_processed_at ON processed_events (processed_at)"
                .to_owned(),
        ];
        if backend == DbBackend::Postgres {
            statements.push(format!(
                "GRANT SELECT, UPDATE ON relay_leases TO {APP_ROLE}"
            ));
            for table in TENANT_OR_SYSTEM_TABLES {
                statements.extend(tenant_isolation(
                    table,
                    "tenant_id",
                    Visibility::TenantOrSystem,
                ));
            }
            statements.push(format!(
                "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}"
            ));
        }
        for statement in statements {
            connection
                .execute_raw(Statement::from_string(backend, statement))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "event_redeliveries",
            "processed_events",
            "relay_leases",
            "event_log",
        ] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
