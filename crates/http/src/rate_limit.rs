//! Rate limits per key, shared by every replica through the cache, and the
//! headers that tell clients where they stand.
//!
//! The limiter is a token bucket (GCRA, [`Cache::take_tokens`]): `capacity`
//! requests at once, refilled at `per_second`. Every answer carries the
//! `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers of
//! draft-ietf-httpapi-ratelimit-headers (the three-field form of drafts
//! 00–06, which clients and gateways implement today); a refusal is a 429
//! problem with `Retry-After` (RFC 9110 §10.2.3, RFC 6585 §4).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use switchboard_platform::Cache;
pub use switchboard_platform::cache::RateDecision;
use switchboard_platform::cache::TokenTake;

use crate::problem::{Problem, ceil_seconds, retry_after_seconds};

/// `RateLimit-Limit`: the bucket's capacity.
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`: requests left right now.
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`: seconds until the bucket is full again.
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// A token bucket: at most `capacity` requests at once, refilled at
/// `per_second` requests per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub capacity: u32,
    pub per_second: f64,
}

impl Limit {
    /// `capacity` requests per minute, all of which may come at once.
    pub fn per_minute(capacity: u32) -> Self {
        Self {
            capacity,
            per_second: f64::from(capacity) / 60.0,
        }
    }

    /// `capacity` requests per second, all of which may come at once.
    pub fn per_second(capacity: u32) -> Self {
        Self {
            capacity,
            per_second: f64::from(capacity),
        }
    }
}

/// Checks requests against [`Limit`]s kept in the shared cache, under
/// `rate:<key>`.
#[derive(Clone)]
pub struct RateLimiter {
    cache: Arc<dyn Cache>,
}

impl RateLimiter {
    pub fn new(cache: Arc<dyn Cache>) -> Self {
        Self { cache }
    }

    /// Takes one request from the bucket `key` (put the tenant in it:
    /// `<tenant>:api`, `<tenant>:<principal>:login`). `Ok` carries the
    /// decision to turn into [`RateLimiter::headers`]; a refusal is a 429
    /// [`Problem`] that already carries them.
    ///
    /// Fails open: when the cache cannot answer, the request is allowed and
    /// a warning logged. A cache outage must not take the whole API down
    /// with it, and it does not go unnoticed: `/readyz` reports the cache.
    /// An invalid `limit` is a bug and answers 500.
    pub async fn check(&self, key: &str, limit: &Limit) -> Result<RateDecision, Problem> {
        let bucket = format!("rate:{key}");
        match self
            .cache
            .take_tokens(&bucket, limit.capacity, limit.per_second, 1)
            .await
        {
            Ok(decision) if decision.allowed => Ok(decision),
            Ok(decision) => Err(Problem::too_many_requests(decision.retry_after)
                .with_headers(Self::headers(&decision))),
            Err(error @ switchboard_platform::Error::InvalidArgument(_)) => {
                tracing::error!(%error, key, "invalid rate limit");
                Err(Problem::internal())
            }
            Err(error) => {
                tracing::warn!(%error, key, "rate limit not checked: the cache did not answer; allowing the request");
                Ok(RateDecision {
                    allowed: true,
                    limit: limit.capacity,
                    remaining: limit.capacity.saturating_sub(1),
                    retry_after: Duration::ZERO,
                    reset_after: Duration::ZERO,
                })
            }
        }
    }

    /// [`RateLimiter::check`] of each `(key, limit)` in turn, in one call
    /// to the cache (one round trip, atomic: [`Cache::take_tokens_many`]):
    /// each bucket is charged while all allow; at the first refusal the
    /// buckets after it are left untouched and the answer is that
    /// bucket's 429. `Ok` carries one decision per bucket.
    ///
    /// Fails open like [`RateLimiter::check`]: when the cache cannot
    /// answer, every bucket allows and a warning is logged. An invalid
    /// limit is a bug and answers 500, charging no bucket.
    pub async fn check_all(&self, checks: &[(&str, &Limit)]) -> Result<Vec<RateDecision>, Problem> {
        let buckets: Vec<String> = checks
            .iter()
            .map(|(key, _)| format!("rate:{key}"))
            .collect();
        let takes: Vec<TokenTake<'_>> = buckets
            .iter()
            .zip(checks)
            .map(|(bucket, (_, limit))| TokenTake {
                key: bucket,
                capacity: limit.capacity,
                per_second: limit.per_second,
                cost: 1,
            })
            .collect();
        match self.cache.take_tokens_many(&takes).await {
            Ok(decisions) => match decisions.last() {
                Some(refused) if !refused.allowed => {
                    Err(Problem::too_many_requests(refused.retry_after)
                        .with_headers(Self::headers(refused)))
                }
                _ => Ok(decisions),
            },
            Err(error @ switchboard_platform::Error::InvalidArgument(_)) => {
                tracing::error!(%error, keys = ?buckets, "invalid rate limit");
                Err(Problem::internal())
            }
            Err(error) => {
                tracing::warn!(%error, keys = ?buckets, "rate limits not checked: the cache did not answer; allowing the request");
                Ok(checks
                    .iter()
                    .map(|(_, limit)| RateDecision {
                        allowed: true,
                        limit: limit.capacity,
                        remaining: limit.capacity.saturating_sub(1),
                        retry_after: Duration::ZERO,
                        reset_after: Duration::ZERO,
                    })
                    .collect())
            }
        }
    }

    /// The `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`
    /// headers for `decision` (seconds rounded up), plus `Retry-After` when
    /// it was refused.
    pub fn headers(decision: &RateDecision) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RATELIMIT_LIMIT, HeaderValue::from(decision.limit));
        headers.insert(RATELIMIT_REMAINING, HeaderValue::from(decision.remaining));
        headers.insert(
            RATELIMIT_RESET,
            HeaderValue::from(ceil_seconds(decision.reset_after)),
        );
        if !decision.allowed {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_seconds(decision.retry_after)),
            );
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use switchboard_platform::cache::MemoryCache;
    use switchboard_platform::{BackendKind, Error, Result};

    use super::*;

    fn limiter() -> RateLimiter {
        RateLimiter::new(Arc::new(MemoryCache::new()))
    }

    /// A cache that is down.
    struct DownCache;

    #[async_trait::async_trait]
    impl Cache for DownCache {
        async fn get(&self, _: &str) -> Result<Option<bytes::Bytes>> {
            Err(Error::unavailable(BackendKind::Cache, "down"))
        }
        async fn set(&self, _: &str, _: &[u8], _: Option<Duration>) -> Result<()> {
            Err(Error::unavailable(BackendKind::Cache, "down"))
        }
        async fn set_if_absent(&self, _: &str, _: &[u8], _: Duration) -> Result<bool> {
            Err(Error::unavailable(BackendKind::Cache, "down"))
        }
        async fn delete(&self, _: &str) -> Result<bool> {
            Err(Error::unavailable(BackendKind::Cache, "down"))
        }
        async fn increment(&self, _: &str, _: i64, _: Option<Duration>) -> Result<i64> {
            Err(Error::unavailable(BackendKind::Cache, "down"))
        }
        async fn take_tokens(&self, _: &str, _: u32, _: f64, _: u32) -> Result<RateDecision> {
            Err(Error::unavailable(BackendKind::Cache, "down"))
        }
        async fn renew_lease(&self, _: &str, _: &[u8], _: Duration) -> Result<bool> {
            Err(Error::unavailable(BackendKind::Cache, "down"))
        }
        async fn release_lease(&self, _: &str, _: &[u8]) -> Result<bool> {
            Err(Error::unavailable(BackendKind::Cache, "down"))
        }
        async fn fenced_write(
            &self,
            _: &str,
            _: &[u8],
            _: &str,
            _: &[(String, bytes::Bytes)],
            _: &[String],
        ) -> Result<bool> {
            Err(Error::unavailable(BackendKind::Cache, "down"))
        }
        async fn hash_get_all(&self, _: &str) -> Result<Vec<(String, bytes::Bytes)>> {
            Err(Error::unavailable(BackendKind::Cache, "down"))
        }
        async fn hash_set(&self, _: &str, _: &str, _: &[u8]) -> Result<()> {
            Err(Error::unavailable(BackendKind::Cache, "down"))
        }
        async fn hash_delete(&self, _: &str, _: &str) -> Result<bool> {
            Err(Error::unavailable(BackendKind::Cache, "down"))
        }
        async fn publish(&self, _: &str, _: &[u8]) -> Result<()> {
            Err(Error::unavailable(BackendKind::Cache, "down"))
        }
        async fn subscribe(&self, _: &str) -> Result<switchboard_platform::cache::ChannelMessages> {
            Err(Error::unavailable(BackendKind::Cache, "down"))
        }
        async fn ttl(&self, _: &str) -> Result<Option<Duration>> {
            Err(Error::unavailable(BackendKind::Cache, "down"))
        }
        async fn ping(&self) -> Result<()> {
            Err(Error::unavailable(BackendKind::Cache, "down"))
        }
    }

    #[tokio::test]
    async fn requests_within_the_limit_pass_with_their_headers() {
        let limiter = limiter();
        let limit = Limit {
            capacity: 3,
            per_second: 0.5,
        };
        let decision = limiter.check("t1:api", &limit).await.unwrap();
        let headers = RateLimiter::headers(&decision);
        assert_eq!(headers[RATELIMIT_LIMIT], "3");
        assert_eq!(headers[RATELIMIT_REMAINING], "2");
        // One token missing, back in 2 s.
        assert_eq!(headers[RATELIMIT_RESET], "2");
        assert!(headers.get(header::RETRY_AFTER).is_none());
    }

    #[tokio::test]
    async fn a_request_over_the_limit_is_a_429_problem_with_retry_after() {
        let limiter = limiter();
        let limit = Limit::per_minute(2);
        for _ in 0..2 {
            limiter.check("t1:api", &limit).await.unwrap();
        }
        let problem = limiter.check("t1:api", &limit).await.unwrap_err();
        assert_eq!(problem.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(problem.slug(), "rate_limited");
        let response = problem.into_response();
        let headers = response.headers();
        // A token every 30 s; the bucket is full 60 s from now.
        assert_eq!(headers[header::RETRY_AFTER], "30");
        assert_eq!(headers[RATELIMIT_LIMIT], "2");
        assert_eq!(headers[RATELIMIT_REMAINING], "0");
        assert_eq!(headers[RATELIMIT_RESET], "60");
    }

    #[tokio::test]
    async fn keys_are_limited_separately() {
        let limiter = limiter();
        let limit = Limit::per_minute(1);
        limiter.check("t1:api", &limit).await.unwrap();
        assert!(limiter.check("t1:api", &limit).await.is_err());
        limiter.check("t2:api", &limit).await.unwrap();
    }

    #[tokio::test]
    async fn a_cache_outage_lets_requests_through() {
        let limiter = RateLimiter::new(Arc::new(DownCache));
        let limit = Limit::per_second(5);
        for _ in 0..10 {
            let decision = limiter.check("t1:api", &limit).await.unwrap();
            assert!(decision.allowed);
        }
    }

    #[tokio::test]
    async fn check_all_charges_every_bucket_until_one_refuses() {
        let limiter = limiter();
        let tenant = Limit::per_minute(3);
        let credential = Limit::per_minute(2);
        let checks = [("t1:api", &tenant), ("t1:key-a", &credential)];
        for expected in [(2, 1), (1, 0)] {
            let decisions = limiter.check_all(&checks).await.unwrap();
            assert_eq!(
                (decisions[0].remaining, decisions[1].remaining),
                expected,
                "{decisions:?}"
            );
        }
        // The credential's bucket refuses: a 429 carrying its headers,
        // after the tenant's bucket was charged (as two checks in turn).
        let problem = limiter.check_all(&checks).await.unwrap_err();
        assert_eq!(problem.status(), StatusCode::TOO_MANY_REQUESTS);
        let response = problem.into_response();
        assert_eq!(response.headers()[RATELIMIT_LIMIT], "2");
        assert_eq!(response.headers()[header::RETRY_AFTER], "30");
        // The tenant's bucket is empty now: another credential is refused
        // by it, with its headers, and its own bucket is never charged.
        let other = [("t1:api", &tenant), ("t1:key-b", &credential)];
        let response = limiter.check_all(&other).await.unwrap_err().into_response();
        assert_eq!(response.headers()[RATELIMIT_LIMIT], "3");
        let decision = limiter.check("t1:key-b", &credential).await.unwrap();
        assert_eq!(decision.remaining, 1, "key-b still had both tokens");
    }

    #[tokio::test]
    async fn check_all_fails_open_and_refuses_invalid_limits() {
        let down = RateLimiter::new(Arc::new(DownCache));
        let limit = Limit::per_second(5);
        let decisions = down
            .check_all(&[("t1:api", &limit), ("t1:key", &limit)])
            .await
            .unwrap();
        assert_eq!(decisions.len(), 2);
        assert!(decisions.iter().all(|decision| decision.allowed));
        let limiter = limiter();
        let problem = limiter
            .check_all(&[("t1:api", &limit), ("t1:key", &Limit::per_minute(0))])
            .await
            .unwrap_err();
        assert_eq!(problem.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let untouched = limiter.check("t1:api", &limit).await.unwrap();
        assert_eq!(untouched.remaining, 4, "nothing was charged");
    }

    #[tokio::test]
    async fn an_invalid_limit_is_an_internal_error() {
        let problem = limiter()
            .check("t1:api", &Limit::per_minute(0))
            .await
            .unwrap_err();
        assert_eq!(problem.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn a_refused_decision_rounds_its_waits_up_to_whole_seconds() {
        let headers = RateLimiter::headers(&RateDecision {
            allowed: false,
            limit: 10,
            remaining: 0,
            retry_after: Duration::from_millis(100),
            reset_after: Duration::from_millis(9_100),
        });
        assert_eq!(headers[header::RETRY_AFTER], "1");
        assert_eq!(headers[RATELIMIT_RESET], "10");
    }
}
