//! Brute-force protection for logins, counted in the shared cache so every
//! replica sees the same numbers (the approach of OWASP's Authentication
//! Cheat Sheet: per-account exponential lockout plus a per-address limit).
//!
//! - Per account: the first [`ThrottlePolicy::free_attempts`] failures in a
//!   [`ThrottlePolicy::window`] cost nothing; each failure from then on
//!   locks the account for 1 s, 2 s, 4 s … (capped at
//!   [`ThrottlePolicy::max_lockout`]) counted from that failure. A
//!   successful login clears the account's count. The window is fixed: it
//!   starts at the first failure and the count expires with it.
//! - Per client address: more than [`ThrottlePolicy::per_address_limit`]
//!   failures in a window, across any accounts, refuse that address until
//!   the window ends (password spraying). A success does not clear it, or
//!   an attacker could reset it with an account of their own.
//!
//! Keys hold SHA-256 hex digests, never the email or address in clear:
//! `login:acct:<sha256(account)>` (failure count),
//! `login:acct:<sha256(account)>:lock` (present while locked; its TTL is
//! the time left) and `login:addr:<sha256(address)>` (failure count).
//!
//! When the cache is unreachable the throttle fails **open**: [`check`]
//! logs a warning and lets the attempt through, so a cache outage degrades
//! brute-force protection instead of locking every user out. Passwords are
//! still Argon2-hashed, which bounds how fast guessing can go meanwhile.
//!
//! [`check`]: LoginThrottle::check

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use switchboard_platform::Cache;

use crate::error::AuthError;

/// How many failures are tolerated, and for how long they are remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures per account and window before lockouts start.
    pub free_attempts: u32,
    /// How long failures are counted, from the first one.
    pub window: Duration,
    /// The longest a single lockout lasts.
    pub max_lockout: Duration,
    /// Failures per client address and window before the address is
    /// refused.
    pub per_address_limit: u32,
}

impl Default for ThrottlePolicy {
    /// 5 free attempts, a 15-minute window, lockouts of at most 15 minutes,
    /// 50 failures per address.
    fn default() -> Self {
        Self {
            free_attempts: 5,
            window: Duration::from_secs(15 * 60),
            max_lockout: Duration::from_secs(15 * 60),
            per_address_limit: 50,
        }
    }
}

/// Counts failed logins per account and per client address and refuses
/// attempts past the [`ThrottlePolicy`]. All its state is in the cache, so
/// one per process (behind an `Arc`) serves every request.
pub struct LoginThrottle {
    cache: Arc<dyn Cache>,
    policy: ThrottlePolicy,
}

impl LoginThrottle {
    pub fn new(cache: Arc<dyn Cache>, policy: ThrottlePolicy) -> Self {
        Self { cache, policy }
    }

    pub fn policy(&self) -> &ThrottlePolicy {
        &self.policy
    }

    /// Call before verifying a password. `account` identifies the login
    /// (the email, or tenant and email; compared case-insensitively),
    /// `address` the client (its IP address). Refuses with
    /// [`AuthError::Throttled`] while the account is locked or the address
    /// is over its limit; lets the attempt through if the cache fails.
    pub async fn check(&self, account: &str, address: &str) -> Result<(), AuthError> {
        let keys = Keys::new(account, address);
        match self.cache.ttl(&keys.lock).await {
            Ok(Some(left)) if !left.is_zero() => {
                return Err(AuthError::Throttled { retry_after: left });
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "login throttle cannot read the cache; allowing the attempt");
                return Ok(());
            }
        }

        let failures = match self.cache.get(&keys.address).await {
            Ok(value) => value.as_deref().and_then(parse_count).unwrap_or(0),
            Err(error) => {
                tracing::warn!(%error, "login throttle cannot read the cache; allowing the attempt");
                return Ok(());
            }
        };
        if failures >= i64::from(self.policy.per_address_limit) {
            let retry_after = match self.cache.ttl(&keys.address).await {
                Ok(Some(left)) if !left.is_zero() => left,
                Ok(_) => return Ok(()),
                Err(error) => {
                    tracing::warn!(%error, "login throttle cannot read the cache; allowing the attempt");
                    return Ok(());
                }
            };
            tracing::info!(
                failures,
                "login refused: too many failures from this address"
            );
            return Err(AuthError::Throttled { retry_after });
        }
        Ok(())
    }

    /// Call after a wrong password (or unknown account): counts the failure
    /// against the account and the address and, past the free attempts,
    /// locks the account. Cache errors are logged, not returned: the login
    /// answer does not depend on them.
    pub async fn record_failure(&self, account: &str, address: &str) {
        let keys = Keys::new(account, address);
        match self
            .cache
            .increment(&keys.account, 1, Some(self.policy.window))
            .await
        {
            Ok(failures) => {
                if let Some(lockout) = self.lockout_after(failures) {
                    let value = failures.to_string();
                    if let Err(error) = self
                        .cache
                        .set(&keys.lock, value.as_bytes(), Some(lockout))
                        .await
                    {
                        tracing::warn!(%error, "login throttle cannot lock an account");
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "login throttle cannot count a failure"),
        }
        if let Err(error) = self
            .cache
            .increment(&keys.address, 1, Some(self.policy.window))
            .await
        {
            tracing::warn!(%error, "login throttle cannot count a failure");
        }
    }

    /// Call after a successful login: forgets the account's failures (not
    /// the address's). Cache errors are logged.
    pub async fn record_success(&self, account: &str) {
        let keys = Keys::new(account, "");
        for key in [&keys.lock, &keys.account] {
            if let Err(error) = self.cache.delete(key).await {
                tracing::warn!(%error, "login throttle cannot clear an account's failures");
            }
        }
    }

    /// How long the account is locked after its `failures`-th failure:
    /// nothing for the free attempts, then 1 s, 2 s, 4 s … up to
    /// `max_lockout`.
    fn lockout_after(&self, failures: i64) -> Option<Duration> {
        let beyond_free = failures.checked_sub(i64::from(self.policy.free_attempts))?;
        let doublings = u32::try_from(beyond_free).ok()?.min(63);
        let lockout = Duration::from_secs(1u64 << doublings).min(self.policy.max_lockout);
        (!lockout.is_zero()).then_some(lockout)
    }
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginThrottle")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The cache keys of one account and address.
struct Keys {
    account: String,
    lock: String,
    address: String,
}

impl Keys {
    fn new(account: &str, address: &str) -> Self {
        let account = sha256_hex(&account.trim().to_lowercase());
        Self {
            lock: format!("login:acct:{account}:lock"),
            account: format!("login:acct:{account}"),
            address: format!("login:addr:{}", sha256_hex(address.trim())),
        }
    }
}

fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn parse_count(value: &[u8]) -> Option<i64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use bytes::Bytes;
    use switchboard_platform::cache::{MemoryCache, RateDecision, RedisCache};
    use switchboard_platform::{BackendKind, Error};

    use super::*;

    const IP: &str = "203.0.113.7";

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(Arc::new(MemoryCache::new()), ThrottlePolicy::default())
    }

    fn retry_after(result: Result<(), AuthError>) -> Duration {
        match result {
            Err(AuthError::Throttled { retry_after }) => retry_after,
            other => panic!("expected Throttled, got {other:?}"),
        }
    }

    async fn fail(throttle: &LoginThrottle, account: &str, times: u32) {
        for _ in 0..times {
            throttle.record_failure(account, IP).await;
        }
    }

    #[tokio::test]
    async fn five_failures_lock_the_account() {
        let throttle = throttle();
        fail(&throttle, "jane@example.com", 4).await;
        assert!(throttle.check("jane@example.com", IP).await.is_ok());

        fail(&throttle, "jane@example.com", 1).await;
        let wait = retry_after(throttle.check("jane@example.com", IP).await);
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
    }

    #[tokio::test]
    async fn each_further_failure_doubles_the_lockout_up_to_the_cap() {
        let throttle = throttle();
        fail(&throttle, "jane@example.com", 6).await;
        let wait = retry_after(throttle.check("jane@example.com", IP).await);
        assert!(
            wait > Duration::from_secs(1) && wait <= Duration::from_secs(2),
            "{wait:?}"
        );

        fail(&throttle, "jane@example.com", 1).await;
        let wait = retry_after(throttle.check("jane@example.com", IP).await);
        assert!(
            wait > Duration::from_secs(2) && wait <= Duration::from_secs(4),
            "{wait:?}"
        );

        fail(&throttle, "jane@example.com", 40).await;
        let wait = retry_after(throttle.check("jane@example.com", IP).await);
        assert!(
            wait > Duration::from_secs(14 * 60) && wait <= Duration::from_secs(15 * 60),
            "{wait:?}"
        );
    }

    #[tokio::test]
    async fn lockout_lifts_once_retry_after_has_passed() {
        let throttle = throttle();
        fail(&throttle, "jane@example.com", 5).await;
        assert!(throttle.check("jane@example.com", IP).await.is_err());
        let lifted = switchboard_test_utils::eventually(Duration::from_secs(3), || async {
            throttle.check("jane@example.com", IP).await.is_ok()
        })
        .await;
        assert!(lifted);
    }

    #[tokio::test]
    async fn success_clears_the_account_failures() {
        let throttle = throttle();
        fail(&throttle, "jane@example.com", 5).await;
        assert!(throttle.check("jane@example.com", IP).await.is_err());

        throttle.record_success("jane@example.com").await;
        assert!(throttle.check("jane@example.com", IP).await.is_ok());
        // The count restarted: four more failures are still free.
        fail(&throttle, "jane@example.com", 4).await;
        assert!(throttle.check("jane@example.com", IP).await.is_ok());
    }

    #[tokio::test]
    async fn another_account_is_unaffected() {
        let throttle = throttle();
        fail(&throttle, "jane@example.com", 10).await;
        assert!(throttle.check("jane@example.com", IP).await.is_err());
        assert!(throttle.check("john@example.com", IP).await.is_ok());
    }

    #[tokio::test]
    async fn account_is_compared_case_insensitively() {
        let throttle = throttle();
        fail(&throttle, "Jane@Example.com", 5).await;
        assert!(throttle.check("jane@example.com", IP).await.is_err());
        assert!(throttle.check(" JANE@EXAMPLE.COM ", IP).await.is_err());
    }

    #[tokio::test]
    async fn address_limit_applies_across_accounts() {
        let throttle = throttle();
        for n in 0..49 {
            throttle
                .record_failure(&format!("user{n}@example.com"), IP)
                .await;
        }
        assert!(throttle.check("fresh@example.com", IP).await.is_ok());

        throttle.record_failure("user49@example.com", IP).await;
        let wait = retry_after(throttle.check("fresh@example.com", IP).await);
        assert!(wait > Duration::from_secs(14 * 60) && wait <= Duration::from_secs(15 * 60));
        // Another address may still try the same account.
        assert!(
            throttle
                .check("fresh@example.com", "198.51.100.1")
                .await
                .is_ok()
        );
        // A success does not reset the address.
        throttle.record_success("user49@example.com").await;
        assert!(throttle.check("fresh@example.com", IP).await.is_err());
    }

    /// A memory cache that remembers every key it was asked about.
    #[derive(Default)]
    struct RecordingCache {
        inner: MemoryCache,
        keys: Mutex<Vec<String>>,
    }

    impl RecordingCache {
        fn record(&self, key: &str) {
            self.keys
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(key.to_owned());
        }
    }

    #[async_trait]
    impl Cache for RecordingCache {
        async fn get(&self, key: &str) -> switchboard_platform::Result<Option<Bytes>> {
            self.record(key);
            self.inner.get(key).await
        }
        async fn set(
            &self,
            key: &str,
            value: &[u8],
            ttl: Option<Duration>,
        ) -> switchboard_platform::Result<()> {
            self.record(key);
            self.inner.set(key, value, ttl).await
        }
        async fn set_if_absent(
            &self,
            key: &str,
            value: &[u8],
            ttl: Duration,
        ) -> switchboard_platform::Result<bool> {
            self.record(key);
            self.inner.set_if_absent(key, value, ttl).await
        }
        async fn delete(&self, key: &str) -> switchboard_platform::Result<bool> {
            self.record(key);
            self.inner.delete(key).await
        }
        async fn increment(
            &self,
            key: &str,
            delta: i64,
            ttl: Option<Duration>,
        ) -> switchboard_platform::Result<i64> {
            self.record(key);
            self.inner.increment(key, delta, ttl).await
        }
        async fn take_tokens(
            &self,
            key: &str,
            capacity: u32,
            per_second: f64,
            cost: u32,
        ) -> switchboard_platform::Result<RateDecision> {
            self.record(key);
            self.inner
                .take_tokens(key, capacity, per_second, cost)
                .await
        }
        async fn renew_lease(
            &self,
            key: &str,
            token: &[u8],
            ttl: Duration,
        ) -> switchboard_platform::Result<bool> {
            self.record(key);
            self.inner.renew_lease(key, token, ttl).await
        }
        async fn release_lease(
            &self,
            key: &str,
            token: &[u8],
        ) -> switchboard_platform::Result<bool> {
            self.record(key);
            self.inner.release_lease(key, token).await
        }
        async fn fenced_write(
            &self,
            lease_key: &str,
            token: &[u8],
            hash_key: &str,
            puts: &[(String, Bytes)],
            deletes: &[String],
        ) -> switchboard_platform::Result<bool> {
            self.record(lease_key);
            self.record(hash_key);
            self.inner
                .fenced_write(lease_key, token, hash_key, puts, deletes)
                .await
        }
        async fn hash_get_all(
            &self,
            hash_key: &str,
        ) -> switchboard_platform::Result<Vec<(String, Bytes)>> {
            self.record(hash_key);
            self.inner.hash_get_all(hash_key).await
        }
        async fn hash_set(
            &self,
            key: &str,
            field: &str,
            value: &[u8],
        ) -> switchboard_platform::Result<()> {
            self.record(key);
            self.inner.hash_set(key, field, value).await
        }
        async fn publish(&self, channel: &str, payload: &[u8]) -> switchboard_platform::Result<()> {
            self.inner.publish(channel, payload).await
        }
        async fn subscribe(
            &self,
            pattern: &str,
        ) -> switchboard_platform::Result<switchboard_platform::cache::ChannelMessages> {
            self.inner.subscribe(pattern).await
        }
        async fn ttl(&self, key: &str) -> switchboard_platform::Result<Option<Duration>> {
            self.record(key);
            self.inner.ttl(key).await
        }
        async fn ping(&self) -> switchboard_platform::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn cache_keys_hold_digests_never_the_email_or_address() {
        let cache = Arc::new(RecordingCache::default());
        let throttle = LoginThrottle::new(cache.clone(), ThrottlePolicy::default());
        fail(&throttle, "jane.doe@example.com", 6).await;
        let _ = throttle.check("jane.doe@example.com", IP).await;
        throttle.record_success("jane.doe@example.com").await;

        let keys = cache
            .keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let account_digest = sha256_hex("jane.doe@example.com");
        let address_digest = sha256_hex(IP);
        assert!(keys.contains(&format!("login:acct:{account_digest}")));
        assert!(keys.contains(&format!("login:acct:{account_digest}:lock")));
        assert!(keys.contains(&format!("login:addr:{address_digest}")));
        for key in &keys {
            assert!(!key.contains("jane"), "{key}");
            assert!(!key.contains("example"), "{key}");
            assert!(!key.contains("203.0"), "{key}");
        }
    }

    /// A cache that is always down.
    struct DownCache;

    fn down() -> Error {
        Error::unavailable(BackendKind::Cache, "connection refused")
    }

    #[async_trait]
    impl Cache for DownCache {
        async fn get(&self, _: &str) -> switchboard_platform::Result<Option<Bytes>> {
            Err(down())
        }
        async fn set(
            &self,
            _: &str,
            _: &[u8],
            _: Option<Duration>,
        ) -> switchboard_platform::Result<()> {
            Err(down())
        }
        async fn set_if_absent(
            &self,
            _: &str,
            _: &[u8],
            _: Duration,
        ) -> switchboard_platform::Result<bool> {
            Err(down())
        }
        async fn delete(&self, _: &str) -> switchboard_platform::Result<bool> {
            Err(down())
        }
        async fn increment(
            &self,
            _: &str,
            _: i64,
            _: Option<Duration>,
        ) -> switchboard_platform::Result<i64> {
            Err(down())
        }
        async fn take_tokens(
            &self,
            _: &str,
            _: u32,
            _: f64,
            _: u32,
        ) -> switchboard_platform::Result<RateDecision> {
            Err(down())
        }
        async fn renew_lease(
            &self,
            _: &str,
            _: &[u8],
            _: Duration,
        ) -> switchboard_platform::Result<bool> {
            Err(down())
        }
        async fn release_lease(&self, _: &str, _: &[u8]) -> switchboard_platform::Result<bool> {
            Err(down())
        }
        async fn fenced_write(
            &self,
            _: &str,
            _: &[u8],
            _: &str,
            _: &[(String, Bytes)],
            _: &[String],
        ) -> switchboard_platform::Result<bool> {
            Err(down())
        }
        async fn hash_get_all(
            &self,
            _: &str,
        ) -> switchboard_platform::Result<Vec<(String, Bytes)>> {
            Err(down())
        }
        async fn hash_set(&self, _: &str, _: &str, _: &[u8]) -> switchboard_platform::Result<()> {
            Err(down())
        }
        async fn publish(&self, _: &str, _: &[u8]) -> switchboard_platform::Result<()> {
            Err(down())
        }
        async fn subscribe(
            &self,
            _: &str,
        ) -> switchboard_platform::Result<switchboard_platform::cache::ChannelMessages> {
            Err(down())
        }
        async fn ttl(&self, _: &str) -> switchboard_platform::Result<Option<Duration>> {
            Err(down())
        }
        async fn ping(&self) -> switchboard_platform::Result<()> {
            Err(down())
        }
    }

    #[tokio::test]
    async fn cache_outage_lets_attempts_through() {
        let throttle = LoginThrottle::new(Arc::new(DownCache), ThrottlePolicy::default());
        fail(&throttle, "jane@example.com", 10).await;
        throttle.record_success("jane@example.com").await;
        assert!(throttle.check("jane@example.com", IP).await.is_ok());
    }

    #[tokio::test]
    async fn throttle_works_on_redis() {
        let url = switchboard_test_utils::redis_url();
        let prefix = switchboard_test_utils::unique_name("sbt_auth");
        let cache = RedisCache::connect(&url, &prefix)
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "Redis at {url} is not reachable ({error}); run ./scripts/test, which starts it"
                )
            });
        let throttle = LoginThrottle::new(Arc::new(cache), ThrottlePolicy::default());

        fail(&throttle, "jane@example.com", 4).await;
        assert!(throttle.check("jane@example.com", IP).await.is_ok());
        fail(&throttle, "jane@example.com", 2).await;
        let wait = retry_after(throttle.check("jane@example.com", IP).await);
        assert!(
            wait > Duration::from_secs(1) && wait <= Duration::from_secs(2),
            "{wait:?}"
        );
        assert!(throttle.check("john@example.com", IP).await.is_ok());

        throttle.record_success("jane@example.com").await;
        assert!(throttle.check("jane@example.com", IP).await.is_ok());
    }
}
