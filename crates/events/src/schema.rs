//! Table and column names of migrations 3 and 6, for sea-query.

use sea_orm::DeriveIden;

#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum EventLog {
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
}

#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum RelayLeases {
    Table,
    Partition,
    Holder,
    ExpiresAt,
}

#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum RelayCursors {
    Table,
    Partition,
    Seq,
}

#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum ProcessedEvents {
    Table,
    Consumer,
    EventId,
    TenantId,
    ProcessedAt,
}

#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum EventRedeliveries {
    Table,
    Seq,
    Consumer,
    EventSeq,
    TenantId,
    RequestedAt,
}
