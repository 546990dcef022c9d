//! The key-value cache: values with TTLs, atomic counters and leases, shared
//! by every replica of a service (Redis) or by one process (in-process map).
//!
//! Keys are plain strings; callers put the tenant first
//! (`<tenant>:<area>:<id>`), and the Redis implementation prepends the
//! configured `key_prefix`.
//!
//! Rate limiting ([`Cache::take_tokens`]) is a token bucket computed with the
//! Generic Cell Rate Algorithm (GCRA, ITU-T I.371 / ATM Forum TM 4.1): a
//! bucket is one number, its *theoretical arrival time* (TAT), so taking
//! tokens is one read and one write that the backend does atomically (a Lua
//! script in Redis, the map's mutex in process). [`gcra`] is the algorithm;
//! the Redis script is the same arithmetic, line for line.
//!
//! Leases and fencing: an instance that owns some state takes a lease with
//! [`Cache::set_if_absent`] (a random token of its own as the value), keeps
//! it with [`Cache::renew_lease`] and gives it up with
//! [`Cache::release_lease`]. It persists its state as the fields of a hash
//! with [`Cache::fenced_write`], which writes only while the lease still
//! holds its token, so a paused or killed former owner can never overwrite
//! what the new owner wrote. [`Cache::hash_get_all`] reads the state back.
//!
//! Notifications between replicas go through [`Cache::publish`] and
//! [`Cache::subscribe`] (see [`ChannelMessages`]).
//!
//! A key holds either a value or a hash. Value operations (`get`,
//! `increment`, `take_tokens`, the lease operations) on a hash, and hash
//! operations on a value, are [`Error::InvalidArgument`](crate::Error)
//! (Redis's `WRONGTYPE`); `set`, `delete` and `ttl` work on either.

mod memory;
mod pubsub;
mod redis;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub use self::memory::MemoryCache;
pub use self::pubsub::{ChannelEvent, ChannelMessages};
pub use self::redis::RedisCache;
use crate::{Error, Result};

#[async_trait]
pub trait Cache: Send + Sync + 'static {
    /// The value under `key`, if present and not expired.
    /// [`Error::InvalidArgument`](crate::Error) if `key` holds a hash.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;

    /// The values under `keys`, in their order, as [`Cache::get`] would
    /// answer each, in one round trip (Redis `MGET`), for a caller that
    /// needs several independent values at once. A key holding a hash is
    /// [`Error::InvalidArgument`](crate::Error) in memory and absent in
    /// Redis (`MGET` answers nil for it). On Redis Cluster the keys must
    /// share one slot (one hash tag).
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(self.get(key).await?);
        }
        Ok(values)
    }

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

    /// Takes `cost` tokens from the bucket `key`, which holds at most
    /// `capacity` tokens and refills at `per_second` tokens per second
    /// (GCRA). Shared by every replica through the backend; atomic. A refused
    /// take changes nothing; a `cost` of 0 only reads the bucket. The bucket
    /// disappears by itself once it is full again.
    ///
    /// `capacity` 0, a `per_second` that is not a positive finite number (or
    /// so small the bucket would take centuries to refill), and a `cost`
    /// above `capacity` are [`Error::InvalidArgument`](crate::Error), and so
    /// is a `key` that holds something other than a bucket.
    async fn take_tokens(
        &self,
        key: &str,
        capacity: u32,
        per_second: f64,
        cost: u32,
    ) -> Result<RateDecision>;

    /// [`Cache::take_tokens`] on each of `takes` in turn, stopping at the
    /// first refusal, atomically and in one round trip (one Lua script in
    /// Redis): the answer holds the decisions up to and including the first
    /// refused one, and the buckets after it are left untouched, exactly as
    /// if each had been taken by its own call until one was refused. Every
    /// take's arguments, and every bucket's stored state, are checked before
    /// anything changes, so an [`Error::InvalidArgument`](crate::Error)
    /// changes nothing. On Redis Cluster the keys must share one slot.
    ///
    /// The default takes one bucket per call, not atomically; both
    /// backends override it.
    async fn take_tokens_many(&self, takes: &[TokenTake<'_>]) -> Result<Vec<RateDecision>> {
        for take in takes {
            Bucket::new(take.key, take.capacity, take.per_second, take.cost)?;
        }
        let mut decisions = Vec::with_capacity(takes.len());
        for take in takes {
            let decision = self
                .take_tokens(take.key, take.capacity, take.per_second, take.cost)
                .await?;
            decisions.push(decision);
            if !decision.allowed {
                break;
            }
        }
        Ok(decisions)
    }

    /// Extends the lease `key` to expire `ttl` from now, only if it holds
    /// exactly `token` (a lease taken with [`Cache::set_if_absent`]).
    /// Returns false, changing nothing, if the lease expired or is held by
    /// someone else. Atomic.
    async fn renew_lease(&self, key: &str, token: &[u8], ttl: Duration) -> Result<bool>;

    /// Deletes the lease `key` only if it holds exactly `token`; returns
    /// whether it did. Atomic.
    async fn release_lease(&self, key: &str, token: &[u8]) -> Result<bool>;

    /// Atomically, if the lease `lease_key` holds exactly `token`: sets the
    /// fields `puts` of the hash `hash_key` (creating it), then removes the
    /// fields `deletes`, and returns true. Otherwise changes nothing and
    /// returns false. Empty `puts` and `deletes` only check the fence. A
    /// hash left without fields disappears; the hash never expires.
    ///
    /// On Redis Cluster both keys must be in one slot: give them the same
    /// hash tag, e.g. `routing:{<tenant>}:lease` and
    /// `routing:{<tenant>}:state`.
    async fn fenced_write(
        &self,
        lease_key: &str,
        token: &[u8],
        hash_key: &str,
        puts: &[(String, Bytes)],
        deletes: &[String],
    ) -> Result<bool>;

    /// Every field of the hash `hash_key` (empty if absent), in no
    /// particular order.
    async fn hash_get_all(&self, hash_key: &str) -> Result<Vec<(String, Bytes)>>;

    /// Sets one field of the hash `hash_key` (creating it); the hash never
    /// expires.
    async fn hash_set(&self, hash_key: &str, field: &str, value: &[u8]) -> Result<()>;

    /// Removes one field of the hash `hash_key`; whether it was there. A
    /// hash left without fields disappears.
    async fn hash_delete(&self, hash_key: &str, field: &str) -> Result<bool>;

    /// Sends `payload` to the current subscribers of `channel` (Redis
    /// `PUBLISH`): at most once, lost if nobody listens. For notifications
    /// whose loss a reader repairs from the state (see [`ChannelEvent::Gap`]).
    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<()>;

    /// Messages of every channel matching `pattern` (`*` any run of
    /// characters, `?` one; Redis `PSUBSCRIBE`), from when this returns.
    async fn subscribe(&self, pattern: &str) -> Result<ChannelMessages>;

    /// Time left before `key` expires: `None` if absent or without expiry.
    async fn ttl(&self, key: &str) -> Result<Option<Duration>>;

    /// Answers when the backend is reachable (`/readyz`).
    async fn ping(&self) -> Result<()>;
}

/// One bucket of [`Cache::take_tokens_many`]: the arguments of one
/// [`Cache::take_tokens`] call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenTake<'a> {
    pub key: &'a str,
    pub capacity: u32,
    pub per_second: f64,
    pub cost: u32,
}

/// The answer of [`Cache::take_tokens`], with what a caller needs for the
/// `RateLimit-*` and `Retry-After` response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the tokens were taken.
    pub allowed: bool,
    /// The bucket's capacity.
    pub limit: u32,
    /// Whole tokens left in the bucket after this call.
    pub remaining: u32,
    /// How long until the same take would be allowed; zero when allowed.
    pub retry_after: Duration,
    /// How long until the bucket is full again (zero when it is full).
    pub reset_after: Duration,
}

/// Seconds between the Unix epoch and 2024-01-01T00:00:00Z. Times are kept
/// as microseconds in an `f64`; counting from 2024 instead of 1970 keeps
/// them small enough (about 2^46 in 2026) that their rounding step stays
/// below a hundredth of a microsecond. The Redis script uses the same epoch.
pub(crate) const GCRA_EPOCH_UNIX_SECONDS: u64 = 1_704_067_200;

/// The longest a bucket may take to refill, in microseconds (about 142
/// years): beyond it, `f64` microseconds lose whole-microsecond precision.
const MAX_REFILL_MICROS: f64 = 4_503_599_627_370_496.0; // 2^52

/// The checked arguments of a `take_tokens` call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    pub(crate) capacity: u32,
    pub(crate) per_second: f64,
    pub(crate) cost: u32,
}

impl Bucket {
    /// Checks the arguments of [`Cache::take_tokens`].
    pub(crate) fn new(key: &str, capacity: u32, per_second: f64, cost: u32) -> Result<Self> {
        if capacity == 0 {
            return Err(Error::InvalidArgument(format!(
                "rate-limit bucket {key:?} needs a capacity of at least 1"
            )));
        }
        if !per_second.is_finite() || per_second <= 0.0 {
            return Err(Error::InvalidArgument(format!(
                "rate-limit bucket {key:?} needs a positive finite refill rate, not {per_second}"
            )));
        }
        if f64::from(capacity) * 1e6 / per_second > MAX_REFILL_MICROS {
            return Err(Error::InvalidArgument(format!(
                "rate-limit bucket {key:?} would take too long to refill ({capacity} tokens at {per_second}/s)"
            )));
        }
        if cost > capacity {
            return Err(Error::InvalidArgument(format!(
                "cannot take {cost} tokens from rate-limit bucket {key:?} of capacity {capacity}"
            )));
        }
        Ok(Self {
            capacity,
            per_second,
            cost,
        })
    }
}

/// What one GCRA step decided, and the TAT to store (`None`: store
/// nothing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct GcraStep {
    pub(crate) decision: RateDecision,
    /// The new theoretical arrival time, and how long to keep it (until the
    /// bucket is full again).
    pub(crate) store: Option<(f64, Duration)>,
}

/// One step of GCRA: at `now` (microseconds since [`GCRA_EPOCH_UNIX_SECONDS`],
/// or any fixed origin the stored TAT shares), with the bucket's stored
/// theoretical arrival time `tat` (`None`: a full bucket).
///
/// The TAT is when the bucket would be full again; a bucket with `c` tokens
/// missing has `tat = now + c × interval`. Taking `n` tokens pushes it by
/// `n × interval`, which is allowed while it stays within `capacity ×
/// interval` of now. Float rounding is absorbed by a slack of one
/// microsecond (half an interval for rates above 500 000/s).
pub(crate) fn gcra(bucket: Bucket, now: f64, tat: Option<f64>) -> GcraStep {
    let interval = 1e6 / bucket.per_second;
    let burst = f64::from(bucket.capacity) * interval;
    let slack = (interval / 2.0).min(1.0);
    let tat = tat.map_or(now, |tat| tat.max(now));
    let new_tat = tat + f64::from(bucket.cost) * interval;
    let allow_at = new_tat - burst;
    let allowed = now - allow_at >= -slack;
    let kept_tat = if allowed { new_tat } else { tat };
    let remaining = ((burst - (kept_tat - now) + slack) / interval)
        .floor()
        .clamp(0.0, f64::from(bucket.capacity));
    let reset_after = (kept_tat - now).max(0.0);
    let decision = RateDecision {
        allowed,
        limit: bucket.capacity,
        // In range: clamped to 0..=capacity above.
        remaining: remaining as u32,
        retry_after: if allowed {
            Duration::ZERO
        } else {
            micros(allow_at - now)
        },
        reset_after: micros(reset_after),
    };
    let store = (allowed && bucket.cost > 0).then(|| (new_tat, micros(reset_after)));
    GcraStep { decision, store }
}

/// Whole microseconds, rounded up (a wait is never reported shorter than it
/// is). Negative and NaN become zero.
fn micros(value: f64) -> Duration {
    // `as` saturates: NaN and negatives to 0, huge values to u64::MAX.
    Duration::from_micros(value.ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(capacity: u32, per_second: f64, cost: u32) -> Bucket {
        Bucket::new("test", capacity, per_second, cost).unwrap()
    }

    /// Takes from `tat` at `now`, storing like a backend would.
    fn take(bucket: Bucket, now: f64, tat: &mut Option<f64>) -> RateDecision {
        let step = gcra(bucket, now, *tat);
        if let Some((new_tat, _)) = step.store {
            *tat = Some(new_tat);
        }
        step.decision
    }

    #[test]
    fn a_full_bucket_allows_exactly_its_capacity_at_once() {
        let now = 1.0e14 + 0.37;
        for (capacity, per_second) in [(1, 1.0), (10, 3.0), (7, 0.1), (1000, 1000.0), (3, 7e5)] {
            let mut tat = None;
            for expected_remaining in (0..capacity).rev() {
                let decision = take(bucket(capacity, per_second, 1), now, &mut tat);
                assert!(decision.allowed, "{capacity} at {per_second}/s");
                assert_eq!(decision.remaining, expected_remaining);
            }
            let refused = take(bucket(capacity, per_second, 1), now, &mut tat);
            assert!(!refused.allowed, "{capacity} at {per_second}/s");
            assert_eq!(refused.remaining, 0);
            let interval = Duration::from_secs_f64(1.0 / per_second);
            assert!(
                refused.retry_after.abs_diff(interval) <= Duration::from_micros(1),
                "{:?} vs {interval:?}",
                refused.retry_after
            );
        }
    }

    #[test]
    fn tokens_come_back_at_the_refill_rate() {
        let b = bucket(4, 2.0, 1);
        let mut tat = None;
        for _ in 0..4 {
            assert!(take(b, 0.0, &mut tat).allowed);
        }
        assert!(!take(b, 400_000.0, &mut tat).allowed);
        let back = take(b, 500_000.0, &mut tat);
        assert!(back.allowed);
        assert_eq!(back.remaining, 0);
        let peek = gcra(bucket(4, 2.0, 0), 2_500_000.0, tat).decision;
        assert_eq!(peek.remaining, 4);
        assert_eq!(peek.reset_after, Duration::ZERO);
    }

    #[test]
    fn a_refused_take_changes_nothing_and_says_what_is_left() {
        let mut tat = None;
        assert_eq!(take(bucket(10, 1.0, 4), 0.0, &mut tat).remaining, 6);
        assert_eq!(take(bucket(10, 1.0, 4), 0.0, &mut tat).remaining, 2);
        let step = gcra(bucket(10, 1.0, 4), 0.0, tat);
        assert!(!step.decision.allowed);
        assert_eq!(step.store, None);
        assert_eq!(step.decision.remaining, 2);
        assert_eq!(step.decision.retry_after, Duration::from_secs(2));
        assert_eq!(step.decision.reset_after, Duration::from_secs(8));
    }

    #[test]
    fn the_stored_tat_expires_when_the_bucket_is_full_again() {
        let step = gcra(bucket(5, 10.0, 2), 0.0, None);
        assert_eq!(step.store, Some((200_000.0, Duration::from_millis(200))));
        assert_eq!(step.decision.reset_after, Duration::from_millis(200));
    }

    #[test]
    fn invalid_buckets_are_refused() {
        for (capacity, per_second, cost) in [
            (0, 1.0, 0),
            (1, 0.0, 1),
            (1, -1.0, 1),
            (1, f64::NAN, 1),
            (1, f64::INFINITY, 1),
            (1, 1e-300, 1),
            (5, 1.0, 6),
        ] {
            assert!(
                matches!(
                    Bucket::new("k", capacity, per_second, cost),
                    Err(Error::InvalidArgument(_))
                ),
                "{capacity} {per_second} {cost}"
            );
        }
    }
}
