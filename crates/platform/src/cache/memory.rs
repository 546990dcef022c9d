//! In-process cache for `switchboard dev` and single-process sites: a map
//! behind one mutex, with Redis's semantics (integers stored as decimal
//! text, TTLs in milliseconds, lazy expiry plus a periodic sweep).
//! Rate-limit buckets are entries too: their value is the theoretical
//! arrival time, in microseconds since the cache was created, as text.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use super::{Bucket, Cache, RateDecision, gcra};
use crate::{Error, Result};

/// Sweep expired entries every this many writes, so keys that are never
/// read again do not accumulate.
const SWEEP_EVERY_WRITES: u64 = 4096;

pub struct MemoryCache {
    entries: Mutex<HashMap<String, Entry>>,
    writes: AtomicU64,
    /// The origin of rate-limit buckets' theoretical arrival times.
    epoch: Instant,
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self {
            entries: Mutex::default(),
            writes: AtomicU64::default(),
            epoch: Instant::now(),
        }
    }
}

struct Entry {
    value: Bytes,
    expires_at: Option<Instant>,
}

impl Entry {
    fn is_live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

impl MemoryCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on the map with expired entries of `key` removed.
    fn with_entries<T>(
        &self,
        key: &str,
        write: bool,
        f: impl FnOnce(&mut HashMap<String, Entry>, Instant) -> T,
    ) -> T {
        let now = Instant::now();
        // A poisoned lock means a panic while holding it; the map itself is
        // still consistent (every mutation is a single insert/remove).
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.get(key).is_some_and(|entry| !entry.is_live(now)) {
            entries.remove(key);
        }
        if write
            && self
                .writes
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(SWEEP_EVERY_WRITES)
        {
            entries.retain(|_, entry| entry.is_live(now));
        }
        f(&mut entries, now)
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.with_entries(key, false, |entries, _| {
            entries.get(key).map(|entry| entry.value.clone())
        }))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<()> {
        self.with_entries(key, true, |entries, now| {
            entries.insert(
                key.to_owned(),
                Entry {
                    value: Bytes::copy_from_slice(value),
                    expires_at: ttl.map(|ttl| now + ttl),
                },
            );
        });
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        Ok(self.with_entries(key, true, |entries, now| {
            if entries.contains_key(key) {
                return false;
            }
            entries.insert(
                key.to_owned(),
                Entry {
                    value: Bytes::copy_from_slice(value),
                    expires_at: Some(now + ttl),
                },
            );
            true
        }))
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        Ok(self.with_entries(key, true, |entries, _| entries.remove(key).is_some()))
    }

    async fn increment(&self, key: &str, delta: i64, ttl: Option<Duration>) -> Result<i64> {
        self.with_entries(key, true, |entries, now| {
            let (current, expires_at) = match entries.get(key) {
                Some(entry) => (parse_integer(key, &entry.value)?, entry.expires_at),
                None => (0, ttl.map(|ttl| now + ttl)),
            };
            let next = current.checked_add(delta).ok_or_else(|| {
                Error::InvalidArgument(format!("increment of cache key {key:?} would overflow"))
            })?;
            entries.insert(
                key.to_owned(),
                Entry {
                    value: Bytes::from(next.to_string()),
                    expires_at,
                },
            );
            Ok(next)
        })
    }

    async fn take_tokens(
        &self,
        key: &str,
        capacity: u32,
        per_second: f64,
        cost: u32,
    ) -> Result<RateDecision> {
        let bucket = Bucket::new(key, capacity, per_second, cost)?;
        self.with_entries(key, true, |entries, now| {
            let tat = match entries.get(key) {
                Some(entry) => Some(parse_tat(key, &entry.value)?),
                None => None,
            };
            let now_micros = now.saturating_duration_since(self.epoch).as_nanos() as f64 / 1e3;
            let step = gcra(bucket, now_micros, tat);
            if let Some((tat, keep)) = step.store {
                entries.insert(
                    key.to_owned(),
                    Entry {
                        value: Bytes::from(tat.to_string()),
                        expires_at: Some(now + keep),
                    },
                );
            }
            Ok(step.decision)
        })
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>> {
        Ok(self.with_entries(key, false, |entries, now| {
            entries
                .get(key)
                .and_then(|entry| entry.expires_at)
                .map(|at| at.saturating_duration_since(now))
        }))
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

fn parse_integer(key: &str, value: &[u8]) -> Result<i64> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| {
            Error::InvalidArgument(format!("cache key {key:?} does not hold an integer"))
        })
}

fn parse_tat(key: &str, value: &[u8]) -> Result<f64> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse::<f64>().ok())
        .filter(|tat| tat.is_finite())
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "cache key {key:?} does not hold a rate-limit bucket"
            ))
        })
}
