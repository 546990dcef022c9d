//! Per-tenant call limits from the tenant's plan (identity's events, kept
//! in the edge's directory by [`crate::accounts`]): calls in progress at
//! once, and new inbound calls per second. Counted in the cache, so every
//! edge replica sees the same figures:
//! - calls in progress: a counter per tenant (`edge:{<tenant>}:in_progress`),
//!   read and changed in one round trip per call, and one hash per tenant
//!   (`edge:{<tenant>}:calls`), one field per call (its slot) holding when
//!   it lapses (Unix seconds). The counter moves only with the hash: up
//!   with a place taken, down with a place some edge actually removed. The
//!   edge holding a call keeps its place fresh ([`CallLimits::keep`], every
//!   audit), and the audit removes lapsed places (a crashed edge's, within
//!   [`SLOT_LIFETIME`]); so does a call refused at the limit, so places
//!   left by a crash never lock a tenant out;
//! - calls per second: a counter per tenant and second
//!   (`edge:{<tenant>}:cps:<Unix second>`), the fixed window carriers count
//!   CPS in.
//!
//! A call that one tenant's trunks alone admit takes its places before
//! routing is asked ([`CallLimits::reserve`], exact). A call several
//! tenants' trunks admit (a carrier's shared addresses) is checked against
//! each without taking anything ([`CallLimits::over`]); routing says whose
//! number it is, refusing it if that tenant is over, and that tenant's
//! places are taken then ([`CallLimits::occupy`]): calls crossing the check
//! at the same instant may then exceed a limit by their number.
//!
//! A tenant whose limits the edge does not know yet (its `tenant.created`
//! is on its way) is not limited.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_platform::Cache;
use switchboard_tenancy::TenantId;
use uuid::Uuid;

use crate::accounts::{Accounts, CallLimits as PlanLimits};

/// How long a call's place lasts unless its edge renews it.
pub const SLOT_LIFETIME: Duration = Duration::from_secs(30);
/// How long a tenant's limits are kept in memory before reading them
/// again (a plan change applies within it).
const LIMITS_KEPT: Duration = Duration::from_secs(5);

/// New calls refused for a tenant's plan, by tenant and `limit`
/// (`concurrent_calls`, `calls_per_second`).
pub const OVER_LIMIT_METRIC: &str = "switchboard_edge_calls_over_limit_total";

/// Which limit a call would exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    ConcurrentCalls(u32),
    CallsPerSecond(u32),
}

impl Limit {
    /// Its name in events and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Limit::ConcurrentCalls(_) => "concurrent_calls",
            Limit::CallsPerSecond(_) => "calls_per_second",
        }
    }

    /// The plan's figure.
    pub fn value(self) -> u32 {
        match self {
            Limit::ConcurrentCalls(value) | Limit::CallsPerSecond(value) => value,
        }
    }

    /// The `Retry-After` of its 503, in seconds (RFC 3261 §20.33): the
    /// next second for a rate, a few seconds for calls to end.
    pub fn retry_after(self) -> u32 {
        match self {
            Limit::ConcurrentCalls(_) => 10,
            Limit::CallsPerSecond(_) => 1,
        }
    }
}

/// Where a tenant's limits come from.
#[async_trait::async_trait]
pub trait LimitSource: Send + Sync + 'static {
    async fn limits(&self, tenant: TenantId) -> anyhow::Result<Option<PlanLimits>>;
}

#[async_trait::async_trait]
impl LimitSource for Accounts {
    async fn limits(&self, tenant: TenantId) -> anyhow::Result<Option<PlanLimits>> {
        Ok(self.call_limits(tenant).await?)
    }
}

/// The edge's counts of calls against their tenants' limits. Cheap to
/// clone.
#[derive(Clone)]
pub struct CallLimits {
    source: Arc<dyn LimitSource>,
    cache: Arc<dyn Cache>,
    known: Arc<Mutex<HashMap<TenantId, KnownLimits>>>,
}

/// A tenant's limits as last read, and when.
type KnownLimits = (Option<PlanLimits>, Instant);

fn calls_key(tenant: TenantId) -> String {
    format!("edge:{{{tenant}}}:calls")
}

fn count_key(tenant: TenantId) -> String {
    format!("edge:{{{tenant}}}:in_progress")
}

fn rate_key(tenant: TenantId, second: u64) -> String {
    format!("edge:{{{tenant}}}:cps:{second}")
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

impl CallLimits {
    pub fn new(source: Arc<dyn LimitSource>, cache: Arc<dyn Cache>) -> Self {
        Self {
            source,
            cache,
            known: Arc::default(),
        }
    }

    /// `tenant`'s limits, read again every [`LIMITS_KEPT`]. A tenant whose
    /// limits cannot be read is not limited (and the error logged): a
    /// database hiccup must not refuse calls.
    async fn limits_of(&self, tenant: TenantId) -> Option<PlanLimits> {
        if let Some((limits, read_at)) = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&tenant)
            && read_at.elapsed() < LIMITS_KEPT
        {
            return *limits;
        }
        let limits = match self.source.limits(tenant).await {
            Ok(limits) => limits,
            Err(error) => {
                tracing::warn!(%tenant, %error, "call limits unreadable; not limiting");
                return None;
            }
        };
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.len() > 100_000 {
            known.clear();
        }
        known.insert(tenant, (limits, Instant::now()));
        limits
    }

    /// Takes a place for a new call of `tenant` (`slot` names it): one of
    /// this second's calls and one call in progress. Over either limit
    /// nothing is kept and the limit is returned.
    pub async fn reserve(&self, tenant: TenantId, slot: Uuid) -> Option<Limit> {
        let limits = self.limits_of(tenant).await?;
        let second = unix_now();
        match self
            .cache
            .increment(&rate_key(tenant, second), 1, Some(Duration::from_secs(2)))
            .await
        {
            Ok(count) if count > i64::from(limits.calls_per_second) => {
                return Some(Limit::CallsPerSecond(limits.calls_per_second));
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%tenant, %error, "calls per second not counted"),
        }
        for attempt in 0..2 {
            let in_progress = self.occupy(tenant, slot).await;
            if in_progress <= i64::from(limits.max_concurrent_calls) {
                return None;
            }
            self.release(tenant, slot).await;
            // At the limit: places a crashed edge left may be what fills
            // it; clear them once and try again.
            if attempt == 0 && self.remove_lapsed(tenant).await == 0 {
                break;
            }
        }
        Some(Limit::ConcurrentCalls(limits.max_concurrent_calls))
    }

    /// The limit `tenant` is at now, if any, taking nothing.
    pub async fn over(&self, tenant: TenantId) -> Option<Limit> {
        let limits = self.limits_of(tenant).await?;
        let this_second = self
            .cache
            .get(&rate_key(tenant, unix_now()))
            .await
            .ok()
            .flatten()
            .and_then(|count| String::from_utf8_lossy(&count).trim().parse::<i64>().ok())
            .unwrap_or(0);
        if this_second >= i64::from(limits.calls_per_second) {
            return Some(Limit::CallsPerSecond(limits.calls_per_second));
        }
        if self.in_progress(tenant).await >= i64::from(limits.max_concurrent_calls) {
            return Some(Limit::ConcurrentCalls(limits.max_concurrent_calls));
        }
        None
    }

    /// Counts a call of `tenant` in progress without checking, until
    /// [`CallLimits::release`]; the calls in progress now (0 when the
    /// cache cannot count).
    pub async fn occupy(&self, tenant: TenantId, slot: Uuid) -> i64 {
        if let Err(error) = self.renew(tenant, slot).await {
            tracing::warn!(%tenant, %error, "a call in progress was not counted");
            return 0;
        }
        match self.cache.increment(&count_key(tenant), 1, None).await {
            Ok(count) => count,
            Err(error) => {
                tracing::warn!(%tenant, %error, "a call in progress was not counted");
                0
            }
        }
    }

    /// Writes `slot`'s lapse time, [`SLOT_LIFETIME`] from now.
    async fn renew(&self, tenant: TenantId, slot: Uuid) -> switchboard_platform::Result<()> {
        let lapses = (unix_now() + SLOT_LIFETIME.as_secs()).to_string();
        self.cache
            .hash_set(&calls_key(tenant), &slot.to_string(), lapses.as_bytes())
            .await
    }

    /// Counts `tenant`'s new call in this second (after routing chose it
    /// among several tenants).
    pub async fn count_arrival(&self, tenant: TenantId) {
        let _ = self
            .cache
            .increment(
                &rate_key(tenant, unix_now()),
                1,
                Some(Duration::from_secs(2)),
            )
            .await;
    }

    /// The call in `slot` ended.
    pub async fn release(&self, tenant: TenantId, slot: Uuid) {
        self.remove(tenant, &slot.to_string()).await;
    }

    /// Removes a place; the counter goes down only when this call removed
    /// it (another edge's audit may have been first).
    async fn remove(&self, tenant: TenantId, slot: &str) -> bool {
        match self.cache.hash_delete(&calls_key(tenant), slot).await {
            Ok(true) => {
                if let Err(error) = self.cache.increment(&count_key(tenant), -1, None).await {
                    tracing::warn!(%tenant, %error, "an ended call stays counted");
                }
                true
            }
            Ok(false) => false,
            Err(error) => {
                tracing::warn!(%tenant, %error, "an ended call stays counted until it lapses");
                false
            }
        }
    }

    /// Renews the places of `tenant`'s calls this edge still holds, and
    /// removes the tenant's lapsed ones.
    pub async fn keep(&self, tenant: TenantId, slots: &[Uuid]) {
        for slot in slots {
            if let Err(error) = self.renew(tenant, *slot).await {
                tracing::warn!(%tenant, %error, "a call's place was not renewed");
            }
        }
        self.remove_lapsed(tenant).await;
    }

    /// Removes `tenant`'s places that lapsed (their edge stopped renewing
    /// them); how many this call removed.
    async fn remove_lapsed(&self, tenant: TenantId) -> usize {
        let entries = match self.cache.hash_get_all(&calls_key(tenant)).await {
            Ok(entries) => entries,
            Err(error) => {
                tracing::warn!(%tenant, %error, "lapsed calls not cleared");
                return 0;
            }
        };
        let now = unix_now();
        let mut removed = 0;
        for (slot, lapses) in entries {
            let lapses = std::str::from_utf8(&lapses)
                .ok()
                .and_then(|text| text.parse::<u64>().ok())
                .unwrap_or(0);
            if lapses <= now && self.remove(tenant, &slot).await {
                removed += 1;
            }
        }
        removed
    }

    /// `tenant`'s calls in progress on every edge.
    async fn in_progress(&self, tenant: TenantId) -> i64 {
        self.cache
            .get(&count_key(tenant))
            .await
            .ok()
            .flatten()
            .and_then(|count| std::str::from_utf8(&count).ok()?.trim().parse().ok())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use switchboard_platform::cache::MemoryCache;

    use super::*;

    struct Fixed(Option<PlanLimits>);

    #[async_trait::async_trait]
    impl LimitSource for Fixed {
        async fn limits(&self, _: TenantId) -> anyhow::Result<Option<PlanLimits>> {
            Ok(self.0)
        }
    }

    fn limits(concurrent: u32, per_second: u32) -> CallLimits {
        CallLimits::new(
            Arc::new(Fixed(Some(PlanLimits {
                max_concurrent_calls: concurrent,
                calls_per_second: per_second,
            }))),
            Arc::new(MemoryCache::new()),
        )
    }

    /// Runs `check` until it ran within one second of the clock (the
    /// per-second window must not turn over in the middle).
    async fn within_one_second<F, Fut>(mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        for _ in 0..5 {
            let second = unix_now();
            let passed = check().await;
            if unix_now() == second {
                assert!(passed);
                return;
            }
        }
        panic!("the clock kept turning over");
    }

    #[tokio::test]
    async fn calls_in_progress_are_counted_until_they_end() {
        let limits = limits(2, 100);
        let tenant = TenantId::new();
        let other = TenantId::new();
        let (one, two, three) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(limits.reserve(tenant, one).await, None);
        assert_eq!(limits.over(tenant).await, None);
        assert_eq!(limits.reserve(tenant, two).await, None);
        assert_eq!(limits.over(tenant).await, Some(Limit::ConcurrentCalls(2)));
        assert_eq!(
            limits.reserve(tenant, three).await,
            Some(Limit::ConcurrentCalls(2))
        );
        // Another tenant has room of its own.
        assert_eq!(limits.reserve(other, three).await, None);
        limits.release(tenant, one).await;
        assert_eq!(limits.reserve(tenant, three).await, None);
        assert_eq!(limits.in_progress(tenant).await, 2);
    }

    #[tokio::test]
    async fn a_lapsed_place_no_longer_counts() {
        let limits = limits(1, 100);
        let tenant = TenantId::new();
        // A place its crashed edge stopped renewing, still counted.
        let gone = Uuid::new_v4();
        limits.occupy(tenant, gone).await;
        limits
            .cache
            .hash_set(
                &calls_key(tenant),
                &gone.to_string(),
                (unix_now() - 1).to_string().as_bytes(),
            )
            .await
            .unwrap();
        // At the limit, the lapsed place is cleared and the call taken.
        assert_eq!(limits.reserve(tenant, Uuid::new_v4()).await, None);
        assert_eq!(
            limits
                .cache
                .hash_get_all(&calls_key(tenant))
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(limits.in_progress(tenant).await, 1);
        // A live place is not cleared: the next call is refused.
        assert_eq!(
            limits.reserve(tenant, Uuid::new_v4()).await,
            Some(Limit::ConcurrentCalls(1))
        );
        // The audit renews this edge's places and clears lapsed ones.
        let other = TenantId::new();
        let (mine, lapsed) = (Uuid::new_v4(), Uuid::new_v4());
        limits.occupy(other, mine).await;
        limits.occupy(other, lapsed).await;
        limits
            .cache
            .hash_set(&calls_key(other), &lapsed.to_string(), b"1")
            .await
            .unwrap();
        limits.keep(other, &[mine]).await;
        assert_eq!(limits.in_progress(other).await, 1);
    }

    #[tokio::test]
    async fn new_calls_per_second_are_counted_per_tenant() {
        within_one_second(|| async {
            let limits = limits(100, 2);
            let tenant = TenantId::new();
            limits.reserve(tenant, Uuid::new_v4()).await.is_none()
                && limits.over(tenant).await.is_none()
                && limits.reserve(tenant, Uuid::new_v4()).await.is_none()
                && limits.over(tenant).await == Some(Limit::CallsPerSecond(2))
                && limits.reserve(tenant, Uuid::new_v4()).await == Some(Limit::CallsPerSecond(2))
                && limits
                    .reserve(TenantId::new(), Uuid::new_v4())
                    .await
                    .is_none()
        })
        .await;
    }

    #[tokio::test]
    async fn a_tenant_without_known_limits_is_not_limited() {
        let limits = CallLimits::new(Arc::new(Fixed(None)), Arc::new(MemoryCache::new()));
        let tenant = TenantId::new();
        for _ in 0..5 {
            assert_eq!(limits.reserve(tenant, Uuid::new_v4()).await, None);
        }
        assert_eq!(limits.over(tenant).await, None);
    }
}
