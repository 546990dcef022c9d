//! The key-value cache: values with TTLs, atomic counters and leases, shared
//! by every replica of a service (Redis) or by one process (in-process map).
//!
//! Keys are plain strings; callers put the tenant first
//! (`<tenant>:<area>:<id>`), and the Redis implementation prepends the
//! configured `key_prefix`.

mod memory;
mod redis;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub use self::memory::MemoryCache;
pub use self::redis::RedisCache;
use crate::Result;

#[async_trait]
pub trait Cache: Send + Sync + 'static {
    /// The value under `key`, if present and not expired.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;

    /// Stores `value`, replacing any previous one; it expires after `ttl`
    /// (never, if `None`).
    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<()>;

    /// Stores `value` only if `key` is absent (a lease, an idempotency
    /// marker). Returns whether it was stored.
    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool>;

    /// Removes `key`; returns whether it existed.
    async fn delete(&self, key: &str) -> Result<bool>;

    /// Adds `delta` to the integer under `key` atomically (a missing key
    /// counts as 0) and returns the new value. `ttl` is applied when this
    /// call creates the key, so a fixed window expires as a whole.
    async fn increment(&self, key: &str, delta: i64, ttl: Option<Duration>) -> Result<i64>;

    /// Time left before `key` expires: `None` if absent or without expiry.
    async fn ttl(&self, key: &str) -> Result<Option<Duration>>;

    /// Answers when the backend is reachable (`/readyz`).
    async fn ping(&self) -> Result<()>;
}
