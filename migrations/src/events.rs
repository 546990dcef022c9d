//! Migrations of the event backbone's tables (`crates/events`: outbox and
//! event log, relay leases and cursors, processed marks, replays).

pub mod m20261123_000003_create_events;
pub mod m20261204_000006_relay_cursor;
pub mod m20261206_000007_brin_time_indexes;

pub use m20261123_000003_create_events::EVENT_PARTITIONS;
