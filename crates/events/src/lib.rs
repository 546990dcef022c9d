//! The event backbone every service uses (see ARCHITECTURE.md, Events).
//!
//! - [`Event`]: one domain event in its protobuf envelope
//!   (`switchboard.events.v1.Envelope`), routed on the bus as
//!   `<tenant>.<source>.<type>`.
//! - [`outbox::append`]: a service writes its events in the transaction of
//!   its state change (the transactional outbox pattern), on PostgreSQL and
//!   SQLite alike.
//! - [`Relay`]: publishes the outbox in order per partition of tenants,
//!   with publisher confirms, holding a lease per partition so replicas
//!   never publish the same row at the same time; moves the partition's
//!   cursor past rows only after their confirms (and never past a row a
//!   transaction still in progress may commit), so a crash duplicates and
//!   never loses.
//! - [`Consumer`]: applies each event at most once by recording its id in
//!   the same transaction as the effect; failures are retried after a
//!   delay and dead-lettered after N attempts with the error kept.
//! - [`AuditEntry`]: a change another service records in identity's audit
//!   log, as an `audit.recorded` event.
//! - [`replay`]: re-delivers stored events to one consumer.
//! - [`pack`]: the framing of a packed message (several envelopes of one
//!   routing key in one bus message), which relays write and consumers
//!   read.

pub mod audit;
mod error;
mod event;
pub mod outbox;
pub mod pack;
pub mod replay;
pub mod service;

mod consumer;
mod relay;
mod schema;

pub use audit::AuditEntry;
pub use consumer::{Consumer, ConsumerOptions, EventHandler, HandlerError};
pub use error::{EventsError, Result};
pub use event::{EVENT_TYPES, Event, INTERNAL_EVENT_TYPES, event_type, is_public};
pub use relay::{Relay, RelayOptions};
pub use switchboard_proto::events::v1 as proto;
