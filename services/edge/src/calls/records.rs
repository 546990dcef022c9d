//! The call detail record: `call.started`, `call.answered` and
//! `call.ended` (`proto/switchboard/events/v1/calls.proto`), each written
//! to the outbox of the call's tenant in a transaction of its own. A
//! call's state lives in the edge's memory, so the event is the record
//! itself: nothing else commits with it. A database that is briefly down
//! delays the record (retried with backoff for about two minutes); only
//! past that is it lost, logged and counted in [`LOST_METRIC`].

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

/// Writes call records. Cheap to clone.
#[derive(Clone)]
pub struct CallLog {
    database: Database,
}

impl CallLog {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Records `payload` for `tenant` as of `at`, in the background.
    pub fn record(&self, tenant: TenantId, at: DateTime<Utc>, payload: Payload) {
        let database = self.database.clone();
        let event = Event::at(tenant, SOURCE, at, payload);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            for attempt in 1..=12 {
                match write(&database, &event).await {
                    Ok(()) => return,
                    Err(error) if attempt == 12 => {
                        tracing::error!(%tenant, event = %event.event_type, %error, "a call record is lost");
                        metrics::counter!(LOST_METRIC).increment(1);
                    }
                    Err(error) => {
                        tracing::warn!(%tenant, event = %event.event_type, %error, "a call record waits for the database");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(15));
                    }
                }
            }
        });
    }
}

async fn write(database: &Database, event: &Event) -> anyhow::Result<()> {
    let transaction = database.begin_tenant(event.tenant.as_uuid()).await?;
    outbox::append(&transaction, std::slice::from_ref(event)).await?;
    transaction.commit().await?;
    Ok(())
}
