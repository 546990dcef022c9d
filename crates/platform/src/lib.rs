//! The backends every Switchboard service runs on, behind small traits:
//!
//! | trait | production | embedded (`switchboard dev`) |
//! |---|---|---|
//! | [`Database`] (a struct: sea-orm covers both) | PostgreSQL | SQLite file |
//! | [`Cache`] | Redis | in-process map |
//! | [`Bus`] | RabbitMQ (lapin) | in-process queues |
//! | [`ObjectStore`] | S3-compatible (aws-sdk-s3) | local directory |
//!
//! Both implementations of each trait pass one conformance suite
//! (`tests/conformance_*.rs`). [`Backends::connect`] builds the set the
//! configuration asks for.

pub mod backends;
pub mod bus;
pub mod cache;
pub mod database;
mod error;
pub mod objects;

pub use backends::{BackendStatus, Backends};
pub use bus::{Bus, Delivery, Message, QueueSpec, Subscription, dead_letter_queue, retry_queue};
pub use cache::{Cache, RateDecision};
pub use database::Database;
pub use error::{BackendKind, Error, Result};
pub use objects::{ObjectMeta, ObjectStore};
