//! The transactional outbox: events are written to `event_log` in the
//! transaction of the state change they describe, so both commit or
//! neither does. The [`Relay`](crate::Relay) publishes them afterwards.

use std::collections::HashSet;

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use switchboard_tenancy::TenantId;
use uuid::Uuid;

use crate::event::check_source;
use crate::schema::EventLog;
use crate::{Event, EventsError, Result};

/// Relay partitions (the rows of `relay_leases`, see migration 3). A
/// tenant's events all go to one partition, which keeps them in order.
pub const PARTITIONS: i16 = 16;

/// The partition of `tenant`'s events.
pub fn partition_of(tenant: TenantId) -> i16 {
    // The low bits of a UUIDv7 are random, so tenants spread evenly.
    let low = tenant.as_uuid().as_u128() as u64;
    i16::try_from(low % PARTITIONS as u64).unwrap_or(0)
}

/// Writes `events` to the outbox inside `transaction` (which must be
/// confined to each event's tenant on PostgreSQL: the system workers' role
/// may read the log, not write it).
/// Refuses an event its consumers could not decode (a source that is not
/// one word), so it fails the writer's transaction instead of being
/// dead-lettered by every consumer.
pub async fn append(transaction: &impl ConnectionTrait, events: &[Event]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    for event in events {
        check_source(&event.source)
            .map_err(|problem| EventsError::Invalid(format!("event {}: {problem}", event.id)))?;
    }
    let mut insert = Query::insert();
    insert.into_table(EventLog::Table).columns([
        EventLog::Id,
        EventLog::TenantId,
        EventLog::Partition,
        EventLog::Source,
        EventLog::EventType,
        EventLog::RoutingKey,
        EventLog::OccurredAt,
        EventLog::Payload,
    ]);
    for event in events {
        insert.values_panic([
            event.id.into(),
            event.tenant.as_uuid().into(),
            partition_of(event.tenant).into(),
            event.source.clone().into(),
            event.event_type.clone().into(),
            event.routing_key().into(),
            event.occurred_at.into(),
            event.encode().into(),
        ]);
    }
    transaction.execute(&insert).await?;
    metrics::counter!("switchboard_events_appended_total").increment(events.len() as u64);
    Ok(())
}

/// Appends the `events` the log does not hold yet (by id), for a writer
/// that may hand the same events over again (the routing runtime after an
/// engine's state was persisted, but maybe not its events). Answers how
/// many were appended.
pub async fn append_absent(transaction: &impl ConnectionTrait, events: &[Event]) -> Result<usize> {
    if events.is_empty() {
        return Ok(0);
    }
    let select = Query::select()
        .column(EventLog::Id)
        .from(EventLog::Table)
        .and_where(Expr::col(EventLog::Id).is_in(events.iter().map(|event| event.id)))
        .to_owned();
    let mut present = HashSet::new();
    for row in transaction.query_all(&select).await? {
        present.insert(row.try_get::<Uuid>("", "id")?);
    }
    let fresh: Vec<Event> = events
        .iter()
        .filter(|event| !present.contains(&event.id))
        .cloned()
        .collect();
    append(transaction, &fresh).await?;
    Ok(fresh.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_cover_the_range() {
        let mut seen = [false; PARTITIONS as usize];
        for _ in 0..2000 {
            let partition = partition_of(TenantId::new());
            assert!((0..PARTITIONS).contains(&partition));
            seen[partition as usize] = true;
        }
        assert!(seen.iter().all(|seen| *seen));
    }
}
