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
