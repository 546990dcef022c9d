//! Brute-force protection for logins, counted in the shared cache so every
//! replica sees the same numbers. It follows OWASP's Authentication Cheat
//! Sheet (account lockout with a threshold, an observation window and a
//! bounded lockout duration) and its warning that a lockout keyed on the
//! account alone lets anyone lock a known account out: the tight limit is
//! per account *and* client address, so a guesser at one address spends
//! only its own budget.
//!
//! Every attempt is counted **before** the password is verified (atomic
//! increments), so concurrent guesses cannot all pass a check made before
//! any of them is recorded; a successful login gives its attempt back.
//! Three fixed windows of [`ThrottlePolicy::window`], each starting at its
//! first attempt, bound the attempts:
//!
//! - per account and client address: [`ThrottlePolicy::per_account_address`]
//!   (5): a guesser gets that many tries at one account; a success clears it.
//! - per account, from all addresses: [`ThrottlePolicy::per_account`]:
//!   bounds distributed guessing at one account. Others can exhaust it, so
//!   it is well above the per-address budget, and the refusal ends with the
//!   window: locking a known account out is bounded to one window.
//! - per client address, across accounts: [`ThrottlePolicy::per_address`]
//!   (password spraying).
//!
//! An attempt past any limit is refused (429) without verifying the
//! password, with the time left in that window as `Retry-After`.
//!
//! Keys hold SHA-256 hex digests, never the email or address in clear:
//! `login:pair:<sha256(account, address)>`, `login:acct:<sha256(account)>`
//! and `login:addr:<sha256(address)>`, each an attempt count.
//!
//! When the cache is unreachable the throttle fails **open**: it logs a
//! warning and lets the attempt through, so a cache outage degrades
//! brute-force protection instead of locking every user out. Passwords are
//! still Argon2-hashed, which bounds how fast guessing can go meanwhile.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use switchboard_platform::Cache;

use crate::error::AuthError;

/// How many login attempts are allowed, and for how long they are counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Attempts at one account from one client address per window.
    pub per_account_address: u32,
    /// Attempts at one account from all addresses together per window.
    pub per_account: u32,
    /// Attempts from one client address, at any accounts, per window.
    pub per_address: u32,
    /// How long attempts are counted, from the first one; also the longest
    /// a refusal lasts.
    pub window: Duration,
}

impl Default for ThrottlePolicy {
    /// 5 attempts per account and address, 50 per account, 50 per address,
    /// in 15-minute windows.
    fn default() -> Self {
        Self {
            per_account_address: 5,
            per_account: 50,
            per_address: 50,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Counts login attempts per account and address, per account and per
/// client address and refuses attempts past the [`ThrottlePolicy`]. All
/// its state is in the cache, so one per process (behind an `Arc`) serves
/// every request.
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

    /// Call before verifying a password: counts the attempt and refuses it
    /// with [`AuthError::Throttled`] when it is past a limit. `account`
    /// identifies the login (tenant and email; compared
    /// case-insensitively), `address` the client (its IP address). Lets
    /// the attempt through if the cache fails.
    pub async fn attempt(&self, account: &str, address: &str) -> Result<(), AuthError> {
        let keys = Keys::new(account, address);
        // The cheapest refusal first: a spraying address touches no
        // account's counts.
        for (key, limit, what) in [
            (&keys.address, self.policy.per_address, "address"),
            (
                &keys.pair,
                self.policy.per_account_address,
                "account and address",
            ),
            (&keys.account, self.policy.per_account, "account"),
        ] {
            let attempts = match self.cache.increment(key, 1, Some(self.policy.window)).await {
                Ok(attempts) => attempts,
                Err(error) => {
                    tracing::warn!(%error, "login throttle cannot count an attempt; allowing it");
                    return Ok(());
                }
            };
            if attempts > i64::from(limit) {
                let retry_after = match self.cache.ttl(key).await {
                    Ok(Some(left)) if !left.is_zero() => left,
                    // Expired in between: the next attempt opens a window.
                    Ok(_) => Duration::from_secs(1),
                    Err(error) => {
                        tracing::warn!(%error, "login throttle cannot read the cache; allowing the attempt");
                        return Ok(());
                    }
                };
                tracing::info!(attempts, per = what, "login refused: too many attempts");
                return Err(AuthError::Throttled { retry_after });
            }
        }
        Ok(())
    }

    /// Call after a successful login (an attempt let through by
    /// [`attempt`](Self::attempt)): clears the account's count at this
    /// address and gives the attempt back to the account's and the
    /// address's counts (it does not clear them, or a guesser could reset
    /// them with an account of their own). Cache errors are logged.
    pub async fn succeeded(&self, account: &str, address: &str) {
        let keys = Keys::new(account, address);
        if let Err(error) = self.cache.delete(&keys.pair).await {
            tracing::warn!(%error, "login throttle cannot clear an account's attempts");
        }
        for key in [&keys.account, &keys.address] {
            if let Err(error) = self
                .cache
                .increment(key, -1, Some(self.policy.window))
                .await
            {
                tracing::warn!(%error, "login throttle cannot give an attempt back");
            }
        }
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
    pair: String,
    account: String,
    address: String,
}

impl Keys {
    fn new(account: &str, address: &str) -> Self {
        let account = account.trim().to_lowercase();
        let address = address.trim();
        Self {
            pair: format!(
                "login:pair:{}",
                sha256_hex(&format!("{account}\u{1f}{address}"))
            ),
            account: format!("login:acct:{}", sha256_hex(&account)),
            address: format!("login:addr:{}", sha256_hex(address)),
        }
    }
}

fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
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
    const OTHER_IP: &str = "198.51.100.1";
    const JANE: &str = "acme\u{1f}jane@example.com";

    fn memory() -> Arc<dyn Cache> {
        Arc::new(MemoryCache::new())
    }

    async fn redis() -> Arc<dyn Cache> {
        let url = switchboard_test_utils::redis_url();
        let prefix = switchboard_test_utils::unique_name("sbt_auth");
        let cache = RedisCache::connect(&url, &prefix)
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "Redis at {url} is not reachable ({error}); run ./scripts/test, which starts it"
                )
            });
        Arc::new(cache)
    }

    fn policy() -> ThrottlePolicy {
        ThrottlePolicy {
            per_account_address: 5,
            per_account: 8,
            per_address: 12,
            window: Duration::from_secs(15 * 60),
        }
    }

    fn retry_after(result: Result<(), AuthError>) -> Duration {
        match result {
            Err(AuthError::Throttled { retry_after }) => retry_after,
            other => panic!("expected Throttled, got {other:?}"),
        }
    }

    /// `times` attempts that are let through (and then fail).
    async fn fail(throttle: &LoginThrottle, account: &str, address: &str, times: u32) {
        for n in 0..times {
            assert!(
                throttle.attempt(account, address).await.is_ok(),
                "attempt {n} of {times} was refused"
            );
        }
    }

    /// Each scenario, run on the in-process cache and on Redis.
    macro_rules! on_both_caches {
        ($($name:ident),* $(,)?) => {
            mod memory {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        super::$name(super::memory()).await;
                    }
                )*
            }
            mod redis {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        super::$name(super::redis().await).await;
                    }
                )*
            }
        };
    }

    on_both_caches!(
        concurrent_attempts_past_the_limit_are_refused_before_verifying,
        the_sixth_attempt_from_one_address_is_refused_for_the_rest_of_the_window,
        another_address_has_its_own_budget_up_to_the_account_cap,
        the_address_limit_applies_across_accounts,
        a_success_clears_the_count_at_its_address_and_gives_its_attempt_back,
        accounts_are_compared_case_insensitively,
    );

    async fn concurrent_attempts_past_the_limit_are_refused_before_verifying(
        cache: Arc<dyn Cache>,
    ) {
        let throttle = Arc::new(LoginThrottle::new(cache, ThrottlePolicy::default()));
        let attempts: Vec<_> = (0..30)
            .map(|_| {
                let throttle = throttle.clone();
                tokio::spawn(async move { throttle.attempt(JANE, IP).await })
            })
            .collect();
        let mut allowed = 0;
        for attempt in attempts {
            match attempt.await.unwrap() {
                Ok(()) => allowed += 1,
                Err(AuthError::Throttled { retry_after }) => {
                    assert!(
                        retry_after > Duration::ZERO && retry_after <= Duration::from_secs(900)
                    );
                }
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(allowed, 5);
    }

    async fn the_sixth_attempt_from_one_address_is_refused_for_the_rest_of_the_window(
        cache: Arc<dyn Cache>,
    ) {
        let throttle = LoginThrottle::new(cache, policy());
        fail(&throttle, JANE, IP, 5).await;
        let wait = retry_after(throttle.attempt(JANE, IP).await);
        assert!(
            wait > Duration::from_secs(14 * 60) && wait <= Duration::from_secs(15 * 60),
            "{wait:?}"
        );
        // Refused attempts stay refused.
        assert!(throttle.attempt(JANE, IP).await.is_err());
    }

    async fn another_address_has_its_own_budget_up_to_the_account_cap(cache: Arc<dyn Cache>) {
        let throttle = LoginThrottle::new(cache, policy());
        fail(&throttle, JANE, IP, 5).await;
        assert!(throttle.attempt(JANE, IP).await.is_err());
        // The owner, elsewhere, is not locked out by the guesser at IP...
        fail(&throttle, JANE, OTHER_IP, 3).await;
        // ...until the account's cap (8) across addresses is reached.
        let wait = retry_after(throttle.attempt(JANE, OTHER_IP).await);
        assert!(wait <= Duration::from_secs(15 * 60), "{wait:?}");
        assert!(throttle.attempt(JANE, "192.0.2.55").await.is_err());
        // Other accounts are untouched.
        assert!(
            throttle
                .attempt("acme\u{1f}john@example.com", OTHER_IP)
                .await
                .is_ok()
        );
    }

    async fn the_address_limit_applies_across_accounts(cache: Arc<dyn Cache>) {
        let throttle = LoginThrottle::new(cache, policy());
        for n in 0..12 {
            fail(&throttle, &format!("acme\u{1f}user{n}@example.com"), IP, 1).await;
        }
        let wait = retry_after(throttle.attempt("acme\u{1f}fresh@example.com", IP).await);
        assert!(wait > Duration::from_secs(14 * 60) && wait <= Duration::from_secs(15 * 60));
        // Another address may still try the same account.
        assert!(
            throttle
                .attempt("acme\u{1f}fresh@example.com", OTHER_IP)
                .await
                .is_ok()
        );
    }

    async fn a_success_clears_the_count_at_its_address_and_gives_its_attempt_back(
        cache: Arc<dyn Cache>,
    ) {
        let throttle = LoginThrottle::new(cache, policy());
        fail(&throttle, JANE, IP, 4).await;
        throttle.attempt(JANE, IP).await.unwrap();
        throttle.succeeded(JANE, IP).await;
        // The count at this address restarted (else the 6th attempt here
        // would be refused), and the success went back to the account's
        // count (else the 4th would pass its cap of 8).
        fail(&throttle, JANE, IP, 4).await;
        // 8 failures: the account's cap is reached, from any address.
        assert!(throttle.attempt(JANE, OTHER_IP).await.is_err());
    }

    async fn accounts_are_compared_case_insensitively(cache: Arc<dyn Cache>) {
        let throttle = LoginThrottle::new(cache, policy());
        fail(&throttle, "Acme\u{1f}Jane@Example.com", IP, 5).await;
        assert!(throttle.attempt(JANE, IP).await.is_err());
        assert!(
            throttle
                .attempt(" ACME\u{1f}JANE@EXAMPLE.COM ", IP)
                .await
                .is_err()
        );
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
        async fn hash_delete(&self, key: &str, field: &str) -> switchboard_platform::Result<bool> {
            self.record(key);
            self.inner.hash_delete(key, field).await
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
        let throttle = LoginThrottle::new(cache.clone(), policy());
        let account = "acme\u{1f}jane.doe@example.com";
        fail(&throttle, account, IP, 5).await;
        let _ = throttle.attempt(account, IP).await;
        throttle.succeeded(account, IP).await;

        let keys = cache
            .keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let pair_digest = sha256_hex(&format!("{account}\u{1f}{IP}"));
        assert!(keys.contains(&format!("login:pair:{pair_digest}")));
        assert!(keys.contains(&format!("login:acct:{}", sha256_hex(account))));
        assert!(keys.contains(&format!("login:addr:{}", sha256_hex(IP))));
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
        async fn hash_delete(&self, _: &str, _: &str) -> switchboard_platform::Result<bool> {
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
        let throttle = LoginThrottle::new(Arc::new(DownCache), policy());
        for _ in 0..10 {
            assert!(throttle.attempt(JANE, IP).await.is_ok());
        }
        throttle.succeeded(JANE, IP).await;
        assert!(throttle.attempt(JANE, IP).await.is_ok());
    }
}
