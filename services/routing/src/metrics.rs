//! The routing service's Prometheus metrics, recorded through the
//! `metrics` facade (the node renders them at `/metrics`, see
//! `switchboard-runtime`).
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `switchboard_routing_offers_total` | counter | `outcome`: `offered`, `accepted`, `declined`, `missed`, `abandoned` | contacts offered to agents, and how each offer ended: the agent accepted or declined it, it rang out (ring-no-answer), or the customer left while it rang |
//! | `switchboard_routing_queue_wait_seconds` | histogram | `outcome`: `answered`, `abandoned`, `overflowed` | how long a contact waited, from joining its queue to an agent accepting it, the customer leaving, or its queue's maximum wait sending it to the overflow step |
//! | `switchboard_routing_operations_total` | counter | `operation`: the [`Operation`](crate::Operation) (`enqueue`, `set_presence`, `accept`, …, `tick`) or `sync_config`; `result`: `ok`, `refused` (the ACD said no; nothing changed), `failed` (the lease was lost or the cache failed; nothing changed, the call is retried) | operations run on a tenant's ACD by the instance owning it, counted once however many instances forwarded them |
//! | `switchboard_routing_write_duration_seconds` | histogram | `write`: `state` (one fenced cache write of the ACD's changed records and its event journal), `outbox` (one transaction moving journaled events to the outbox) | how long the routing state's writes take |
//!
//! Every series is recorded by the instance owning the tenant, where the
//! operation runs, so a cluster's sum counts each event once.
//!
//! **No tenant label.** Like the node's other metrics (HTTP requests,
//! events, webhooks), these are the installation's totals: a tenant label
//! would multiply every series by the number of tenants, and contact or
//! agent ids never appear as labels. Per-tenant and per-queue figures are
//! the queue statistics (`GET /v1/queues/stats`) and the routing events.

use std::time::Duration;

use chrono::{DateTime, Utc};
use switchboard_acd::{ContactEventKind, ContactId, Outcome};

pub const OFFERS: &str = "switchboard_routing_offers_total";
pub const QUEUE_WAIT: &str = "switchboard_routing_queue_wait_seconds";
pub const OPERATIONS: &str = "switchboard_routing_operations_total";
pub const WRITE_DURATION: &str = "switchboard_routing_write_duration_seconds";

/// Why an outcome came about, for what its requeued offers mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    /// The agent declined the offer (`Operation::Decline`): its requeue is
    /// a decline.
    Decline,
    /// Anything else: the only other requeue is an offer ringing out.
    Other,
}

/// The contact whose wait an operation ended, and since when it waited.
pub(crate) type Waited = Option<(ContactId, DateTime<Utc>)>;

/// Records what an outcome did to offers and queue waits.
pub(crate) fn outcome(outcome: &Outcome, cause: Cause, waited: Waited) {
    let offered = outcome.offers.len() as u64;
    if offered > 0 {
        metrics::counter!(OFFERS, "outcome" => "offered").increment(offered);
    }
    for event in &outcome.contact_events {
        match event.kind {
            ContactEventKind::Connected { .. } => {
                metrics::counter!(OFFERS, "outcome" => "accepted").increment(1);
                record_wait(waited, event.contact, event.at, "answered");
            }
            ContactEventKind::Requeued { .. } => {
                let ended = match cause {
                    Cause::Decline => "declined",
                    Cause::Other => "missed",
                };
                metrics::counter!(OFFERS, "outcome" => ended).increment(1);
            }
            ContactEventKind::Abandoned => {
                if outcome
                    .withdrawn
                    .iter()
                    .any(|offer| offer.contact == event.contact)
                {
                    metrics::counter!(OFFERS, "outcome" => "abandoned").increment(1);
                }
                record_wait(waited, event.contact, event.at, "abandoned");
            }
            ContactEventKind::Overflowed { waited_ms } => {
                metrics::histogram!(QUEUE_WAIT, "outcome" => "overflowed")
                    .record(Duration::from_millis(waited_ms).as_secs_f64());
            }
            ContactEventKind::Queued
            | ContactEventKind::Offered { .. }
            | ContactEventKind::Ended => {}
        }
    }
}

fn record_wait(waited: Waited, contact: ContactId, at: DateTime<Utc>, ended: &'static str) {
    if let Some((_, since)) = waited.filter(|(waiting, _)| *waiting == contact) {
        let seconds = (at - since).to_std().unwrap_or_default().as_secs_f64();
        metrics::histogram!(QUEUE_WAIT, "outcome" => ended).record(seconds);
    }
}

/// Counts one operation run on a tenant's ACD.
pub(crate) fn operation(name: &'static str, result: &'static str) {
    metrics::counter!(OPERATIONS, "operation" => name, "result" => result).increment(1);
}

/// Records how long one write of the routing state took.
pub(crate) fn write(write: &'static str, took: Duration) {
    metrics::histogram!(WRITE_DURATION, "write" => write).record(took.as_secs_f64());
}
