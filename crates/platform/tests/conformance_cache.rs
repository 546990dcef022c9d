//! One behaviour suite for every `Cache` implementation: in-process and
//! real Redis (`SB_TEST_REDIS_URL`, default 127.0.0.1:6379).

use std::sync::Arc;
use std::time::Duration;

use switchboard_platform::cache::{MemoryCache, RedisCache};
use switchboard_platform::{Cache, Error};
use switchboard_test_utils::{TcpProxy, eventually, init_tracing, redis_url, unique_name};

async fn set_then_get_returns_the_value(cache: Arc<dyn Cache>) {
    assert_eq!(cache.get("absent").await.unwrap(), None);
    cache.set("k", b"\x00binary\xff", None).await.unwrap();
    assert_eq!(
        cache.get("k").await.unwrap().as_deref(),
        Some(&b"\x00binary\xff"[..])
    );
    cache.set("k", b"replaced", None).await.unwrap();
    assert_eq!(
        cache.get("k").await.unwrap().as_deref(),
        Some(&b"replaced"[..])
    );
    assert_eq!(cache.ttl("k").await.unwrap(), None, "no expiry was set");
}

async fn values_expire_after_their_ttl(cache: Arc<dyn Cache>) {
    cache
        .set("short", b"v", Some(Duration::from_millis(150)))
        .await
        .unwrap();
    let ttl = cache.ttl("short").await.unwrap().expect("has a ttl");
    assert!(
        ttl <= Duration::from_millis(150) && ttl > Duration::ZERO,
        "{ttl:?}"
    );
    assert!(cache.get("short").await.unwrap().is_some());
    assert!(
        eventually(Duration::from_secs(3), || async {
            cache.get("short").await.unwrap().is_none()
        })
        .await,
        "value did not expire"
    );
    assert_eq!(cache.ttl("short").await.unwrap(), None);
    // Setting without a ttl clears a previous expiry.
    cache
        .set("kept", b"v", Some(Duration::from_millis(100)))
        .await
        .unwrap();
    cache.set("kept", b"v", None).await.unwrap();
    assert_eq!(cache.ttl("kept").await.unwrap(), None);
}

async fn set_if_absent_takes_a_lease_once(cache: Arc<dyn Cache>) {
    assert!(
        cache
            .set_if_absent("lease", b"owner-a", Duration::from_secs(10))
            .await
            .unwrap()
    );
    assert!(
        !cache
            .set_if_absent("lease", b"owner-b", Duration::from_secs(10))
            .await
            .unwrap()
    );
    assert_eq!(
        cache.get("lease").await.unwrap().as_deref(),
        Some(&b"owner-a"[..])
    );
    // An expired lease can be taken again.
    assert!(
        cache
            .set_if_absent("short-lease", b"a", Duration::from_millis(100))
            .await
            .unwrap()
    );
    assert!(
        eventually(Duration::from_secs(3), || async {
            cache
                .set_if_absent("short-lease", b"b", Duration::from_secs(10))
                .await
                .unwrap()
        })
        .await
    );
    assert_eq!(
        cache.get("short-lease").await.unwrap().as_deref(),
        Some(&b"b"[..])
    );
}

async fn concurrent_takers_get_one_lease(cache: Arc<dyn Cache>) {
    let takers = (0..50).map(|i| {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .set_if_absent(
                    "contended",
                    format!("{i}").as_bytes(),
                    Duration::from_secs(10),
                )
                .await
                .unwrap()
        })
    });
    let won = futures::future::join_all(takers)
        .await
        .into_iter()
        .filter(|taken| *taken.as_ref().unwrap())
        .count();
    assert_eq!(won, 1);
}

async fn delete_reports_whether_the_key_existed(cache: Arc<dyn Cache>) {
    cache.set("gone", b"v", None).await.unwrap();
    assert!(cache.delete("gone").await.unwrap());
    assert!(!cache.delete("gone").await.unwrap());
    assert_eq!(cache.get("gone").await.unwrap(), None);
}

async fn concurrent_increments_are_atomic(cache: Arc<dyn Cache>) {
    let tasks = (0..20).map(|_| {
        let cache = cache.clone();
        tokio::spawn(async move {
            for _ in 0..50 {
                cache.increment("counter", 1, None).await.unwrap();
            }
        })
    });
    for task in futures::future::join_all(tasks).await {
        task.unwrap();
    }
    assert_eq!(cache.increment("counter", 0, None).await.unwrap(), 1000);
    assert_eq!(cache.increment("counter", -1000, None).await.unwrap(), 0);
    assert_eq!(
        cache.get("counter").await.unwrap().as_deref(),
        Some(&b"0"[..])
    );
}

async fn counter_ttl_is_set_when_created_only(cache: Arc<dyn Cache>) {
    let window = Some(Duration::from_millis(300));
    assert_eq!(cache.increment("window", 1, window).await.unwrap(), 1);
    let first_ttl = cache
        .ttl("window")
        .await
        .unwrap()
        .expect("ttl set on creation");
    // Later increments in the window do not push the expiry back.
    assert_eq!(
        cache
            .increment("window", 1, Some(Duration::from_secs(60)))
            .await
            .unwrap(),
        2
    );
    let second_ttl = cache.ttl("window").await.unwrap().expect("ttl kept");
    assert!(second_ttl <= first_ttl, "{second_ttl:?} > {first_ttl:?}");
    assert!(
        eventually(Duration::from_secs(3), || async {
            cache.get("window").await.unwrap().is_none()
        })
        .await,
        "window did not expire"
    );
    assert_eq!(
        cache.increment("window", 5, window).await.unwrap(),
        5,
        "a new window starts at 0"
    );
}

async fn incrementing_a_non_integer_is_refused_and_changes_nothing(cache: Arc<dyn Cache>) {
    cache.set("text", b"hello", None).await.unwrap();
    let error = cache.increment("text", 1, None).await.unwrap_err();
    assert!(matches!(error, Error::InvalidArgument(_)), "{error:?}");
    assert_eq!(
        cache.get("text").await.unwrap().as_deref(),
        Some(&b"hello"[..])
    );
}

async fn a_burst_of_capacity_is_allowed_then_refused_until_a_token_is_back(cache: Arc<dyn Cache>) {
    // 0.1 token/s: one token every 10 s, so none comes back during the burst.
    for _ in 0..5 {
        let decision = cache.take_tokens("burst", 5, 0.1, 1).await.unwrap();
        assert!(decision.allowed, "{decision:?}");
        assert_eq!(decision.retry_after, Duration::ZERO);
    }
    let refused = cache.take_tokens("burst", 5, 0.1, 1).await.unwrap();
    assert!(!refused.allowed, "{refused:?}");
    assert_eq!((refused.limit, refused.remaining), (5, 0));
    assert!(
        refused.retry_after > Duration::from_secs(8)
            && refused.retry_after <= Duration::from_secs(10),
        "retry_after should be about 1/per_second: {refused:?}"
    );
    assert!(
        refused.reset_after > Duration::from_secs(48)
            && refused.reset_after <= Duration::from_secs(50),
        "reset_after should be about capacity/per_second: {refused:?}"
    );
    // Refusals take nothing: still refused, no further away.
    let again = cache.take_tokens("burst", 5, 0.1, 1).await.unwrap();
    assert!(!again.allowed);
    assert!(again.retry_after <= refused.retry_after, "{again:?}");
}

async fn tokens_refill_at_the_given_rate(cache: Arc<dyn Cache>) {
    // 20 tokens/s: one every 50 ms.
    for _ in 0..2 {
        assert!(
            cache
                .take_tokens("refill", 2, 20.0, 1)
                .await
                .unwrap()
                .allowed
        );
    }
    let refused = cache.take_tokens("refill", 2, 20.0, 1).await.unwrap();
    assert!(!refused.allowed);
    assert!(
        refused.retry_after <= Duration::from_millis(50),
        "{refused:?}"
    );
    assert!(
        eventually(Duration::from_secs(3), || async {
            cache
                .take_tokens("refill", 2, 20.0, 1)
                .await
                .unwrap()
                .allowed
        })
        .await,
        "no token came back"
    );
    // Left alone, the bucket fills up completely (cost 0 only looks).
    assert!(
        eventually(Duration::from_secs(3), || async {
            let peek = cache.take_tokens("refill", 2, 20.0, 0).await.unwrap();
            peek.allowed && peek.remaining == 2 && peek.reset_after == Duration::ZERO
        })
        .await,
        "the bucket did not fill up again"
    );
}

async fn remaining_counts_down_by_the_cost(cache: Arc<dyn Cache>) {
    let remaining = |cost| {
        let cache = cache.clone();
        async move {
            let decision = cache
                .take_tokens("countdown", 10, 0.001, cost)
                .await
                .unwrap();
            assert_eq!(decision.limit, 10);
            (decision.allowed, decision.remaining)
        }
    };
    assert_eq!(remaining(0).await, (true, 10), "a fresh bucket is full");
    assert_eq!(remaining(1).await, (true, 9));
    assert_eq!(remaining(1).await, (true, 8));
    assert_eq!(remaining(4).await, (true, 4));
    assert_eq!(remaining(3).await, (true, 1));
    assert_eq!(remaining(2).await, (false, 1), "not enough for 2");
    assert_eq!(remaining(1).await, (true, 0));
    assert_eq!(remaining(1).await, (false, 0));
}

async fn idle_buckets_vanish_once_full(cache: Arc<dyn Cache>) {
    let decision = cache.take_tokens("idle", 3, 10.0, 2).await.unwrap();
    assert!(decision.allowed);
    let ttl = cache
        .ttl("idle")
        .await
        .unwrap()
        .expect("the bucket expires");
    assert!(ttl <= Duration::from_millis(200), "{ttl:?}");
    assert!(
        eventually(Duration::from_secs(3), || async {
            cache.get("idle").await.unwrap().is_none()
        })
        .await,
        "the full bucket was not removed"
    );
}

async fn rate_limit_buckets_are_independent(cache: Arc<dyn Cache>) {
    assert!(
        cache
            .take_tokens("bucket-a", 1, 0.001, 1)
            .await
            .unwrap()
            .allowed
    );
    assert!(
        !cache
            .take_tokens("bucket-a", 1, 0.001, 1)
            .await
            .unwrap()
            .allowed
    );
    let other = cache.take_tokens("bucket-b", 1, 0.001, 1).await.unwrap();
    assert!(other.allowed, "{other:?}");
}

async fn concurrent_takers_share_one_bucket(cache: Arc<dyn Cache>) {
    let takers = (0..20).map(|_| {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .take_tokens("shared", 10, 0.001, 1)
                .await
                .unwrap()
                .allowed
        })
    });
    let allowed = futures::future::join_all(takers)
        .await
        .into_iter()
        .filter(|allowed| *allowed.as_ref().unwrap())
        .count();
    assert_eq!(allowed, 10);
}

async fn invalid_rate_limits_are_refused(cache: Arc<dyn Cache>) {
    for (capacity, per_second, cost) in [
        (0, 1.0, 0),
        (10, 0.0, 1),
        (10, -1.0, 1),
        (10, f64::NAN, 1),
        (10, f64::INFINITY, 1),
        (10, 1.0, 11),
    ] {
        let error = cache
            .take_tokens("invalid", capacity, per_second, cost)
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::InvalidArgument(_)),
            "{capacity} {per_second} {cost}: {error:?}"
        );
    }
    assert_eq!(cache.get("invalid").await.unwrap(), None);
    // A key holding something else is not a bucket, and is left alone.
    cache.set("not-a-bucket", b"hello", None).await.unwrap();
    let error = cache
        .take_tokens("not-a-bucket", 10, 1.0, 1)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidArgument(_)), "{error:?}");
    assert_eq!(
        cache.get("not-a-bucket").await.unwrap().as_deref(),
        Some(&b"hello"[..])
    );
}

async fn ping_answers(cache: Arc<dyn Cache>) {
    cache.ping().await.unwrap();
}

macro_rules! conformance {
    ($module:ident, $make:expr) => {
        mod $module {
            use super::*;

            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        init_tracing();
                        let cache: Arc<dyn Cache> = $make;
                        tokio::time::timeout(Duration::from_secs(30), super::$name(cache))
                            .await
                            .expect("test timed out");
                    }
                };
            }

            case!(set_then_get_returns_the_value);
            case!(values_expire_after_their_ttl);
            case!(set_if_absent_takes_a_lease_once);
            case!(concurrent_takers_get_one_lease);
            case!(delete_reports_whether_the_key_existed);
            case!(concurrent_increments_are_atomic);
            case!(counter_ttl_is_set_when_created_only);
            case!(incrementing_a_non_integer_is_refused_and_changes_nothing);
            case!(a_burst_of_capacity_is_allowed_then_refused_until_a_token_is_back);
            case!(tokens_refill_at_the_given_rate);
            case!(remaining_counts_down_by_the_cost);
            case!(idle_buckets_vanish_once_full);
            case!(rate_limit_buckets_are_independent);
            case!(concurrent_takers_share_one_bucket);
            case!(invalid_rate_limits_are_refused);
            case!(ping_answers);
        }
    };
}

conformance!(memory, Arc::new(MemoryCache::new()));
conformance!(
    redis,
    Arc::new(
        RedisCache::connect(&redis_url(), &unique_name("sbtest"))
            .await
            .expect("Redis is reachable (./scripts/test starts it)")
    )
);

#[tokio::test]
async fn redis_keys_carry_the_prefix_so_two_prefixes_never_collide() {
    init_tracing();
    let a = RedisCache::connect(&redis_url(), &unique_name("a"))
        .await
        .unwrap();
    let b = RedisCache::connect(&redis_url(), &unique_name("b"))
        .await
        .unwrap();
    a.set("same-key", b"from-a", None).await.unwrap();
    assert_eq!(b.get("same-key").await.unwrap(), None);
    b.set("same-key", b"from-b", None).await.unwrap();
    assert_eq!(
        a.get("same-key").await.unwrap().as_deref(),
        Some(&b"from-a"[..])
    );
}

#[tokio::test]
async fn redis_connect_to_a_closed_port_fails_fast_as_unavailable() {
    init_tracing();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let started = std::time::Instant::now();
    let error = RedisCache::connect(&format!("redis://127.0.0.1:{port}"), "x")
        .await
        .err()
        .expect("must fail");
    assert!(error.is_unavailable(), "{error:?}");
    assert!(
        error.to_string().contains("cannot connect to Redis"),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_fails_calls_then_recovers_by_itself() {
    init_tracing();
    let target = redis_url()
        .trim_start_matches("redis://")
        .parse()
        .expect("redis url is host:port");
    let proxy = TcpProxy::start(target).await.unwrap();
    let cache = RedisCache::connect(&format!("redis://{}", proxy.addr()), &unique_name("outage"))
        .await
        .unwrap();
    cache.set("k", b"v", None).await.unwrap();

    proxy.close();
    assert!(
        eventually(Duration::from_secs(10), || async {
            cache.ping().await.is_err()
        })
        .await,
        "ping kept answering with Redis gone"
    );
    let error = cache.get("k").await.unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");

    proxy.reopen().await.unwrap();
    assert!(
        eventually(Duration::from_secs(15), || async {
            cache.ping().await.is_ok()
        })
        .await,
        "cache did not recover after Redis came back"
    );
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
}
