//! The call detail record: `call.started`, `call.answered` and
//! `call.ended` (`proto/switchboard/events/v1/calls.proto`), written to
//! the outbox of the call's tenant. A call's state lives in the edge's
//! memory, so the event is the record itself: nothing else commits with
//! it. One writer task takes the records in the order they were made and
//! writes what has gathered while the last write ran in one transaction
//! per tenant (at most [`BATCH`] records), so a busy edge spends one
//! commit on many calls' records instead of one on each. A database that
//! is briefly down delays the records (retried with backoff for about two
//! minutes); only past that are they lost, logged and counted in
//! [`LOST_METRIC`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use switchboard_events::proto::envelope::Payload;
use switchboard_events::{Event, outbox};
use switchboard_platform::Database;
use switchboard_tenancy::TenantId;

/// The source of the edge's events.
pub const SOURCE: &str = "edge";

/// Call records that could not be written.
pub const LOST_METRIC: &str = "switchboard_edge_call_records_lost_total";

/// Records written in one transaction at most.
pub const BATCH: usize = 256;

/// Writes call records. Cheap to clone.
#[derive(Clone)]
pub struct CallLog {
    records: tokio::sync::mpsc::UnboundedSender<Event>,
}

impl CallLog {
    /// Starts the writer (on the current tokio runtime); it stops once
    /// every clone is dropped and what was recorded is written.
    pub fn new(database: Database) -> Self {
        let (records, pending) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(write_all(database, pending));
        Self { records }
    }

    /// Records `payload` for `tenant` as of `at`, in the background.
    pub fn record(&self, tenant: TenantId, at: DateTime<Utc>, payload: Payload) {
        let event = Event::at(tenant, SOURCE, at, payload);
        if self.records.send(event).is_err() {
            tracing::error!(%tenant, "the call records' writer is gone; a record is lost");
            metrics::counter!(LOST_METRIC).increment(1);
        }
    }
}

/// The writer: what has gathered, grouped by tenant in the order made.
async fn write_all(database: Database, mut pending: tokio::sync::mpsc::UnboundedReceiver<Event>) {
    let mut batch = Vec::with_capacity(BATCH);
    while pending.recv_many(&mut batch, BATCH).await > 0 {
        let mut by_tenant: Vec<(TenantId, Vec<Event>)> = Vec::new();
        for event in batch.drain(..) {
            match by_tenant
                .iter_mut()
                .find(|(tenant, _)| *tenant == event.tenant)
            {
                Some((_, events)) => events.push(event),
                None => by_tenant.push((event.tenant, vec![event])),
            }
        }
        for (tenant, events) in by_tenant {
            write_with_retries(&database, tenant, &events).await;
        }
    }
}

async fn write_with_retries(database: &Database, tenant: TenantId, events: &[Event]) {
    let mut backoff = Duration::from_millis(100);
    for attempt in 1..=12 {
        match write(database, tenant, events).await {
            Ok(()) => return,
            Err(error) if attempt == 12 => {
                tracing::error!(%tenant, records = events.len(), %error, "call records are lost");
                metrics::counter!(LOST_METRIC).increment(events.len() as u64);
            }
            Err(error) => {
                tracing::warn!(%tenant, records = events.len(), %error, "call records wait for the database");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(15));
            }
        }
    }
}

async fn write(database: &Database, tenant: TenantId, events: &[Event]) -> anyhow::Result<()> {
    let transaction = database.begin_tenant(tenant.as_uuid()).await?;
    outbox::append(&transaction, events).await?;
    transaction.commit().await?;
    Ok(())
}
