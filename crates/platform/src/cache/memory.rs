//! In-process cache for `switchboard dev` and single-process sites: a map
//! behind one mutex, with Redis's semantics (integers stored as decimal
//! text, TTLs in milliseconds, lazy expiry plus a periodic sweep).
//! Rate-limit buckets are entries too: their value is the theoretical
//! arrival time, in microseconds since the cache was created, as text.
//! A hash (the state of [`Cache::fenced_write`]) is an entry of its own
//! kind, so value operations on it fail like Redis's `WRONGTYPE`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use super::{Bucket, Cache, ChannelMessages, RateDecision, TokenTake, gcra};
use crate::{Error, Result};

/// Sweep expired entries every this many writes, so keys that are never
/// read again do not accumulate.
const SWEEP_EVERY_WRITES: u64 = 4096;

pub struct MemoryCache {
    entries: Mutex<HashMap<String, Entry>>,
    writes: AtomicU64,
    /// The origin of rate-limit buckets' theoretical arrival times.
    epoch: Instant,
    /// Published messages, to every subscription (each filters its pattern).
    published: tokio::sync::broadcast::Sender<(String, Bytes)>,
}

/// Messages a slow subscriber may fall behind by before it gets a gap.
const PUBLISH_BACKLOG: usize = 16_384;

impl Default for MemoryCache {
    fn default() -> Self {
        Self {
            entries: Mutex::default(),
            writes: AtomicU64::default(),
            epoch: Instant::now(),
            published: tokio::sync::broadcast::channel(PUBLISH_BACKLOG).0,
        }
    }
}

struct Entry {
    value: Value,
    expires_at: Option<Instant>,
}

/// What a key holds, like Redis's key types.
enum Value {
    Bytes(Bytes),
    Hash(HashMap<String, Bytes>),
}

impl Entry {
    fn bytes(value: Bytes, expires_at: Option<Instant>) -> Self {
        Self {
            value: Value::Bytes(value),
            expires_at,
        }
    }

    fn is_live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }

    /// The value, or `InvalidArgument` if this entry is a hash.
    fn as_bytes(&self, key: &str) -> Result<&Bytes> {
        match &self.value {
            Value::Bytes(bytes) => Ok(bytes),
            Value::Hash(_) => Err(wrong_type(key, "a value")),
        }
    }
}

fn wrong_type(key: &str, expected: &str) -> Error {
    Error::InvalidArgument(format!(
        "cache key {key:?} holds the wrong kind of value (expected {expected})"
    ))
}

/// Whether the lease `key` holds exactly `token`.
fn holds(entries: &HashMap<String, Entry>, key: &str, token: &[u8]) -> Result<bool> {
    match entries.get(key) {
        Some(entry) => Ok(entry.as_bytes(key)? == token),
        None => Ok(false),
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
        self.with_entries_of(&[key], write, f)
    }

    /// Runs `f` on the map with expired entries of `keys` removed.
    fn with_entries_of<T>(
        &self,
        keys: &[&str],
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
        for key in keys {
            if entries.get(*key).is_some_and(|entry| !entry.is_live(now)) {
                entries.remove(*key);
            }
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
        self.with_entries(key, false, |entries, _| {
            entries
                .get(key)
                .map(|entry| entry.as_bytes(key).cloned())
                .transpose()
        })
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.with_entries_of(keys, false, |entries, _| {
            keys.iter()
                .map(|key| {
                    entries
                        .get(*key)
                        .map(|entry| entry.as_bytes(key).cloned())
                        .transpose()
                })
                .collect()
        })
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<()> {
        self.with_entries(key, true, |entries, now| {
            entries.insert(
                key.to_owned(),
                Entry::bytes(Bytes::copy_from_slice(value), ttl.map(|ttl| now + ttl)),
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
                Entry::bytes(Bytes::copy_from_slice(value), Some(now + ttl)),
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
                Some(entry) => (parse_integer(key, entry.as_bytes(key)?)?, entry.expires_at),
                None => (0, ttl.map(|ttl| now + ttl)),
            };
            let next = current.checked_add(delta).ok_or_else(|| {
                Error::InvalidArgument(format!("increment of cache key {key:?} would overflow"))
            })?;
            entries.insert(
                key.to_owned(),
                Entry::bytes(Bytes::from(next.to_string()), expires_at),
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
                Some(entry) => Some(parse_tat(key, entry.as_bytes(key)?)?),
                None => None,
            };
            let now_micros = now.saturating_duration_since(self.epoch).as_nanos() as f64 / 1e3;
            let step = gcra(bucket, now_micros, tat);
            if let Some((tat, keep)) = step.store {
                entries.insert(
                    key.to_owned(),
                    Entry::bytes(Bytes::from(tat.to_string()), Some(now + keep)),
                );
            }
            Ok(step.decision)
        })
    }

    async fn take_tokens_many(&self, takes: &[TokenTake<'_>]) -> Result<Vec<RateDecision>> {
        let buckets = takes
            .iter()
            .map(|take| Bucket::new(take.key, take.capacity, take.per_second, take.cost))
            .collect::<Result<Vec<_>>>()?;
        let keys: Vec<&str> = takes.iter().map(|take| take.key).collect();
        self.with_entries_of(&keys, true, |entries, now| {
            // Every bucket's state is read and checked before any changes.
            let mut tats: HashMap<&str, Option<f64>> = HashMap::new();
            for key in &keys {
                let tat = match entries.get(*key) {
                    Some(entry) => Some(parse_tat(key, entry.as_bytes(key)?)?),
                    None => None,
                };
                tats.insert(key, tat);
            }
            let now_micros = now.saturating_duration_since(self.epoch).as_nanos() as f64 / 1e3;
            let mut decisions = Vec::with_capacity(takes.len());
            for (key, bucket) in keys.iter().zip(buckets) {
                let step = gcra(bucket, now_micros, tats[key]);
                if let Some((tat, keep)) = step.store {
                    tats.insert(key, Some(tat));
                    entries.insert(
                        (*key).to_owned(),
                        Entry::bytes(Bytes::from(tat.to_string()), Some(now + keep)),
                    );
                }
                decisions.push(step.decision);
                if !step.decision.allowed {
                    break;
                }
            }
            Ok(decisions)
        })
    }

    async fn renew_lease(&self, key: &str, token: &[u8], ttl: Duration) -> Result<bool> {
        self.with_entries(key, true, |entries, now| {
            if !holds(entries, key, token)? {
                return Ok(false);
            }
            if let Some(entry) = entries.get_mut(key) {
                entry.expires_at = Some(now + ttl);
            }
            Ok(true)
        })
    }

    async fn release_lease(&self, key: &str, token: &[u8]) -> Result<bool> {
        self.with_entries(key, true, |entries, _| {
            if !holds(entries, key, token)? {
                return Ok(false);
            }
            entries.remove(key);
            Ok(true)
        })
    }

    async fn fenced_write(
        &self,
        lease_key: &str,
        token: &[u8],
        hash_key: &str,
        puts: &[(String, Bytes)],
        deletes: &[String],
    ) -> Result<bool> {
        self.with_entries_of(&[lease_key, hash_key], true, |entries, _| {
            if !holds(entries, lease_key, token)? {
                return Ok(false);
            }
            let existing = entries.remove(hash_key);
            let mut fields = match existing {
                None => HashMap::new(),
                Some(Entry {
                    value: Value::Hash(fields),
                    ..
                }) => fields,
                Some(entry) => {
                    // Put back what was there: a refused write changes nothing.
                    entries.insert(hash_key.to_owned(), entry);
                    return Err(wrong_type(hash_key, "a hash"));
                }
            };
            for (field, value) in puts {
                fields.insert(field.clone(), value.clone());
            }
            for field in deletes {
                fields.remove(field);
            }
            if !fields.is_empty() {
                entries.insert(
                    hash_key.to_owned(),
                    Entry {
                        value: Value::Hash(fields),
                        expires_at: None,
                    },
                );
            }
            Ok(true)
        })
    }

    async fn hash_get_all(&self, hash_key: &str) -> Result<Vec<(String, Bytes)>> {
        self.with_entries(hash_key, false, |entries, _| match entries.get(hash_key) {
            None => Ok(Vec::new()),
            Some(Entry {
                value: Value::Hash(fields),
                ..
            }) => Ok(fields
                .iter()
                .map(|(field, value)| (field.clone(), value.clone()))
                .collect()),
            Some(_) => Err(wrong_type(hash_key, "a hash")),
        })
    }

    async fn hash_set(&self, hash_key: &str, field: &str, value: &[u8]) -> Result<()> {
        self.with_entries(hash_key, true, |entries, _| {
            match entries.get_mut(hash_key) {
                Some(Entry {
                    value: Value::Hash(fields),
                    ..
                }) => {
                    fields.insert(field.to_owned(), Bytes::copy_from_slice(value));
                }
                Some(_) => return Err(wrong_type(hash_key, "a hash")),
                None => {
                    let mut fields = HashMap::new();
                    fields.insert(field.to_owned(), Bytes::copy_from_slice(value));
                    entries.insert(
                        hash_key.to_owned(),
                        Entry {
                            value: Value::Hash(fields),
                            expires_at: None,
                        },
                    );
                }
            }
            Ok(())
        })
    }

    async fn hash_delete(&self, hash_key: &str, field: &str) -> Result<bool> {
        self.with_entries(hash_key, true, |entries, _| {
            let Some(entry) = entries.get_mut(hash_key) else {
                return Ok(false);
            };
            let Value::Hash(fields) = &mut entry.value else {
                return Err(wrong_type(hash_key, "a hash"));
            };
            let removed = fields.remove(field).is_some();
            if fields.is_empty() {
                entries.remove(hash_key);
            }
            Ok(removed)
        })
    }

    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<()> {
        // No subscriber is not an error (Redis answers 0 receivers).
        let _ = self
            .published
            .send((channel.to_owned(), Bytes::copy_from_slice(payload)));
        Ok(())
    }

    async fn subscribe(&self, pattern: &str) -> Result<ChannelMessages> {
        Ok(ChannelMessages::local(self.published.subscribe(), pattern))
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
