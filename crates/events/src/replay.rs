//! Replay: re-delivering stored events to one consumer, so a projection
//! (analytics, billing) can be rebuilt from the event log.
//!
//! A replay request is written to the database: one `event_redeliveries`
//! row per event, and the consumer's processed marks for those events are
//! removed in the same transaction, so the consumer applies them again.
//! The running relay sends the requests to the consumer's queue only
//! (not to the other consumers), which works the same whether the bus is
//! RabbitMQ or the in-process bus of a running `dev`. The consumer ignores
//! replayed events its bindings do not match.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ConnectionTrait, ExprTrait, Order};
use switchboard_platform::Database;
use switchboard_tenancy::TenantId;

use crate::schema::{EventLog, EventRedeliveries, ProcessedEvents};
use crate::{EventsError, Result};

/// Queues re-delivery to `consumer` of every published event (at or below
/// its partition's relay cursor) since
/// `since` (of `tenant` only, when given). Returns how many events.
pub async fn request(
    db: &Database,
    consumer: &str,
    since: DateTime<Utc>,
    tenant: Option<TenantId>,
) -> Result<u64> {
    if consumer.is_empty() || consumer.len() > 200 {
        return Err(EventsError::Invalid(
            "the consumer name must be 1 to 200 characters".into(),
        ));
    }
    if since > Utc::now() {
        return Err(EventsError::Invalid(format!(
            "--since {since} is in the future"
        )));
    }
    let mut selection = Query::select();
    selection
        .expr(Expr::val(consumer))
        .column(EventLog::Seq)
        .column(EventLog::TenantId)
        .expr(Expr::val(Utc::now()))
        .from(EventLog::Table)
        .and_where(Expr::col(EventLog::OccurredAt).gte(since))
        .and_where(crate::relay::published())
        .order_by(EventLog::Seq, Order::Asc);
    let mut replayed_ids = Query::select();
    replayed_ids
        .column(EventLog::Id)
        .from(EventLog::Table)
        .and_where(Expr::col(EventLog::OccurredAt).gte(since));
    if let Some(tenant) = tenant {
        selection.and_where(Expr::col(EventLog::TenantId).eq(tenant.as_uuid()));
        replayed_ids.and_where(Expr::col(EventLog::TenantId).eq(tenant.as_uuid()));
    }
    let insert = Query::insert()
        .into_table(EventRedeliveries::Table)
        .columns([
            EventRedeliveries::Consumer,
            EventRedeliveries::EventSeq,
            EventRedeliveries::TenantId,
            EventRedeliveries::RequestedAt,
        ])
        .select_from(selection)
        .map_err(|error| EventsError::Invalid(error.to_string()))?
        .to_owned();
    let forget = Query::delete()
        .from_table(ProcessedEvents::Table)
        .and_where(Expr::col(ProcessedEvents::Consumer).eq(consumer))
        .and_where(Expr::col(ProcessedEvents::EventId).in_subquery(replayed_ids))
        .to_owned();
    let transaction = db.begin_system().await?;
    let requested = transaction.execute(&insert).await?.rows_affected();
    transaction.execute(&forget).await?;
    transaction.commit().await?;
    Ok(requested)
}
