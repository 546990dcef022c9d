//! One behaviour suite for every `Cache` implementation: in-process and
//! real Redis (`SB_TEST_REDIS_URL`, default 127.0.0.1:6379).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use switchboard_platform::cache::{
    ChannelEvent, ChannelMessages, MemoryCache, RedisCache, TokenTake,
};
use switchboard_platform::{Cache, Error};
use switchboard_test_utils::{
    ClosedPort, TcpProxy, eventually, init_tracing, redis_url, unique_name,
};

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

fn take(key: &str, capacity: u32, per_second: f64, cost: u32) -> TokenTake<'_> {
    TokenTake {
        key,
        capacity,
        per_second,
        cost,
    }
}

/// Two buckets in one call, as the gateway charges a tenant's and a
/// credential's: each is charged while both allow; a refusal of the first
/// leaves the second untouched; a refusal of the second keeps the first's
/// charge, exactly as two calls in turn would.
async fn take_tokens_many_charges_each_bucket_in_turn(cache: Arc<dyn Cache>) {
    // The tenant's bucket holds 3, the credential's 2; no refill to speak of.
    let both = |cost| {
        [
            take("many-tenant", 3, 0.001, cost),
            take("many-key", 2, 0.001, cost),
        ]
    };
    let decisions = cache.take_tokens_many(&both(1)).await.unwrap();
    assert_eq!(decisions.len(), 2);
    assert!(decisions.iter().all(|decision| decision.allowed));
    assert_eq!((decisions[0].limit, decisions[0].remaining), (3, 2));
    assert_eq!((decisions[1].limit, decisions[1].remaining), (2, 1));
    cache.take_tokens_many(&both(1)).await.unwrap();
    // The credential's bucket is empty now: refused by the second, after
    // the first was charged (its last token).
    let decisions = cache.take_tokens_many(&both(1)).await.unwrap();
    assert_eq!(decisions.len(), 2, "{decisions:?}");
    assert!(decisions[0].allowed);
    assert_eq!(decisions[0].remaining, 0);
    assert!(!decisions[1].allowed);
    assert_eq!(decisions[1].remaining, 0);
    assert!(
        decisions[1].retry_after > Duration::from_secs(900),
        "{decisions:?}"
    );
    // Now the tenant's bucket refuses first: the answer stops there, and
    // the credential's bucket is not charged (a peek shows it unchanged).
    let before = cache.take_tokens("many-key", 2, 0.001, 0).await.unwrap();
    let decisions = cache.take_tokens_many(&both(1)).await.unwrap();
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert!(!decisions[0].allowed);
    let after = cache.take_tokens("many-key", 2, 0.001, 0).await.unwrap();
    assert_eq!(before.remaining, after.remaining);
    assert!(after.reset_after <= before.reset_after);
    // Another credential of the same tenant is refused by the tenant's
    // bucket and keeps its own tokens.
    let decisions = cache
        .take_tokens_many(&[
            take("many-tenant", 3, 0.001, 1),
            take("many-key-2", 2, 0.001, 1),
        ])
        .await
        .unwrap();
    assert_eq!(decisions.len(), 1);
    assert!(!decisions[0].allowed);
    assert_eq!(
        cache.get("many-key-2").await.unwrap(),
        None,
        "never charged"
    );
    // One call of many is the same arithmetic as one of take_tokens.
    let single = cache.take_tokens("many-single", 5, 0.5, 2).await.unwrap();
    let many = cache
        .take_tokens_many(&[take("many-single-2", 5, 0.5, 2)])
        .await
        .unwrap();
    assert_eq!(many.len(), 1);
    assert_eq!(
        (many[0].allowed, many[0].remaining),
        (single.allowed, single.remaining)
    );
    assert!(cache.take_tokens_many(&[]).await.unwrap().is_empty());
}

/// The same bucket twice in one call is charged twice, the second take
/// seeing the first.
async fn take_tokens_many_sees_its_own_earlier_takes(cache: Arc<dyn Cache>) {
    let decisions = cache
        .take_tokens_many(&[
            take("many-same", 2, 0.001, 1),
            take("many-same", 2, 0.001, 1),
        ])
        .await
        .unwrap();
    assert_eq!(
        decisions
            .iter()
            .map(|d| (d.allowed, d.remaining))
            .collect::<Vec<_>>(),
        [(true, 1), (true, 0)]
    );
    let decisions = cache
        .take_tokens_many(&[take("many-same", 2, 0.001, 1)])
        .await
        .unwrap();
    assert!(!decisions[0].allowed);
}

/// An invalid take, or a key that is not a bucket, anywhere in the call
/// fails it before any bucket is charged.
async fn take_tokens_many_refuses_invalid_takes_and_changes_nothing(cache: Arc<dyn Cache>) {
    let error = cache
        .take_tokens_many(&[take("many-first", 3, 1.0, 1), take("many-bad", 0, 1.0, 1)])
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidArgument(_)), "{error:?}");
    assert_eq!(cache.get("many-first").await.unwrap(), None);
    cache
        .set("many-not-a-bucket", b"hello", None)
        .await
        .unwrap();
    let error = cache
        .take_tokens_many(&[
            take("many-first", 3, 1.0, 1),
            take("many-not-a-bucket", 3, 1.0, 1),
        ])
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidArgument(_)), "{error:?}");
    assert_eq!(cache.get("many-first").await.unwrap(), None, "not charged");
    assert_eq!(
        cache.get("many-not-a-bucket").await.unwrap().as_deref(),
        Some(&b"hello"[..])
    );
}

async fn get_many_answers_each_key_in_order(cache: Arc<dyn Cache>) {
    cache.set("gm-a", b"alpha", None).await.unwrap();
    cache
        .set("gm-c", b"\x00gamma\xff", Some(Duration::from_secs(30)))
        .await
        .unwrap();
    cache
        .set("gm-gone", b"expired", Some(Duration::from_millis(1)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let values = cache
        .get_many(&["gm-c", "gm-absent", "gm-a", "gm-gone", "gm-a"])
        .await
        .unwrap();
    let values: Vec<Option<&[u8]>> = values.iter().map(|value| value.as_deref()).collect();
    assert_eq!(
        values,
        [
            Some(&b"\x00gamma\xff"[..]),
            None,
            Some(&b"alpha"[..]),
            None,
            Some(&b"alpha"[..])
        ]
    );
    assert!(cache.get_many(&[]).await.unwrap().is_empty());
}

const SHORT_LEASE: Duration = Duration::from_millis(200);
const LONG_LEASE: Duration = Duration::from_secs(30);

/// The fields of `hash_key`, sorted, as plain vectors.
async fn fields_of(cache: &Arc<dyn Cache>, hash_key: &str) -> Vec<(String, Vec<u8>)> {
    let mut fields: Vec<(String, Vec<u8>)> = cache
        .hash_get_all(hash_key)
        .await
        .unwrap()
        .into_iter()
        .map(|(field, value)| (field, value.to_vec()))
        .collect();
    fields.sort();
    fields
}

fn puts(fields: &[(&str, &[u8])]) -> Vec<(String, Bytes)> {
    fields
        .iter()
        .map(|(field, value)| ((*field).to_owned(), Bytes::copy_from_slice(value)))
        .collect()
}

fn expected(fields: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
    let mut fields: Vec<(String, Vec<u8>)> = fields
        .iter()
        .map(|(field, value)| ((*field).to_owned(), value.to_vec()))
        .collect();
    fields.sort();
    fields
}

/// Waits (polling, no fixed sleep) until `key` has expired.
async fn wait_until_gone(cache: &Arc<dyn Cache>, key: &str) {
    assert!(
        eventually(Duration::from_secs(3), || async {
            cache.get(key).await.unwrap().is_none()
        })
        .await,
        "{key} did not expire"
    );
}

async fn renew_lease_extends_the_ttl_only_for_the_holder(cache: Arc<dyn Cache>) {
    assert!(
        cache
            .set_if_absent("lease", b"owner-a", SHORT_LEASE)
            .await
            .unwrap()
    );
    assert!(
        cache
            .renew_lease("lease", b"owner-a", LONG_LEASE)
            .await
            .unwrap()
    );
    let ttl = cache.ttl("lease").await.unwrap().expect("lease has a ttl");
    assert!(
        ttl > Duration::from_secs(20) && ttl <= LONG_LEASE,
        "{ttl:?}"
    );

    // Someone else's token, or one that only starts like the holder's,
    // renews nothing and leaves value and TTL alone.
    assert!(
        cache
            .set_if_absent("other", b"owner-a", SHORT_LEASE)
            .await
            .unwrap()
    );
    for wrong in [&b"owner-b"[..], b"owner-a-longer", b"owner", b""] {
        assert!(!cache.renew_lease("other", wrong, LONG_LEASE).await.unwrap());
    }
    let ttl = cache
        .ttl("other")
        .await
        .unwrap()
        .expect("lease still has a ttl");
    assert!(
        ttl <= SHORT_LEASE,
        "a wrong token extended the lease: {ttl:?}"
    );
    assert_eq!(
        cache.get("other").await.unwrap().as_deref(),
        Some(&b"owner-a"[..])
    );
    assert!(
        !cache
            .renew_lease("never-taken", b"owner-a", LONG_LEASE)
            .await
            .unwrap()
    );
    assert_eq!(cache.get("never-taken").await.unwrap(), None);
}

async fn renew_lease_after_expiry_returns_false(cache: Arc<dyn Cache>) {
    assert!(
        cache
            .set_if_absent("lapsed", b"owner-a", SHORT_LEASE)
            .await
            .unwrap()
    );
    wait_until_gone(&cache, "lapsed").await;
    assert!(
        !cache
            .renew_lease("lapsed", b"owner-a", LONG_LEASE)
            .await
            .unwrap()
    );
    assert_eq!(
        cache.get("lapsed").await.unwrap(),
        None,
        "renew recreated it"
    );
    assert_eq!(cache.ttl("lapsed").await.unwrap(), None);
}

async fn release_lease_deletes_only_with_the_right_token(cache: Arc<dyn Cache>) {
    assert!(
        cache
            .set_if_absent("lease", b"owner-a", LONG_LEASE)
            .await
            .unwrap()
    );
    assert!(!cache.release_lease("lease", b"owner-b").await.unwrap());
    assert!(
        !cache
            .release_lease("lease", b"owner-a-longer")
            .await
            .unwrap()
    );
    assert_eq!(
        cache.get("lease").await.unwrap().as_deref(),
        Some(&b"owner-a"[..])
    );
    assert!(cache.release_lease("lease", b"owner-a").await.unwrap());
    assert_eq!(cache.get("lease").await.unwrap(), None);
    assert!(!cache.release_lease("lease", b"owner-a").await.unwrap());
    // Released, the lease can be taken by the next owner at once.
    assert!(
        cache
            .set_if_absent("lease", b"owner-b", LONG_LEASE)
            .await
            .unwrap()
    );
}

async fn fenced_write_with_the_lease_sets_and_deletes_fields(cache: Arc<dyn Cache>) {
    assert!(
        cache
            .set_if_absent("t1:lease", b"owner-a", LONG_LEASE)
            .await
            .unwrap()
    );
    let written = cache
        .fenced_write(
            "t1:lease",
            b"owner-a",
            "t1:state",
            &puts(&[
                ("agent:1", b"ready"),
                ("agent:2", b"busy"),
                ("call:9", b"queued"),
            ]),
            &[],
        )
        .await
        .unwrap();
    assert!(written);
    assert_eq!(
        fields_of(&cache, "t1:state").await,
        expected(&[
            ("agent:1", b"ready"),
            ("agent:2", b"busy"),
            ("call:9", b"queued")
        ])
    );
    // Replace one field, delete another (and one that does not exist).
    assert!(
        cache
            .fenced_write(
                "t1:lease",
                b"owner-a",
                "t1:state",
                &puts(&[("agent:1", b"on-call")]),
                &["call:9".to_owned(), "call:absent".to_owned()],
            )
            .await
            .unwrap()
    );
    let after = expected(&[("agent:1", b"on-call"), ("agent:2", b"busy")]);
    assert_eq!(fields_of(&cache, "t1:state").await, after);
    // Nothing to write: a pure fence check, which changes nothing.
    assert!(
        cache
            .fenced_write("t1:lease", b"owner-a", "t1:state", &[], &[])
            .await
            .unwrap()
    );
    assert_eq!(fields_of(&cache, "t1:state").await, after);
    // The lease itself is untouched by writes.
    assert_eq!(
        cache.get("t1:lease").await.unwrap().as_deref(),
        Some(&b"owner-a"[..])
    );
    // Deleting every field leaves no hash behind.
    assert!(
        cache
            .fenced_write(
                "t1:lease",
                b"owner-a",
                "t1:state",
                &[],
                &["agent:1".to_owned(), "agent:2".to_owned()],
            )
            .await
            .unwrap()
    );
    assert!(fields_of(&cache, "t1:state").await.is_empty());
    assert!(
        !cache.delete("t1:state").await.unwrap(),
        "an empty hash remained"
    );
}

async fn fenced_write_without_the_lease_changes_nothing(cache: Arc<dyn Cache>) {
    assert!(
        cache
            .set_if_absent("lease", b"owner-a", LONG_LEASE)
            .await
            .unwrap()
    );
    let initial = [("agent:1", &b"ready"[..]), ("agent:2", b"busy")];
    assert!(
        cache
            .fenced_write("lease", b"owner-a", "state", &puts(&initial), &[])
            .await
            .unwrap()
    );
    for (lease, token) in [
        ("lease", &b"owner-b"[..]),
        ("lease", b"owner-a-longer"),
        ("lease", b""),
        ("never-taken", b"owner-a"),
    ] {
        let written = cache
            .fenced_write(
                lease,
                token,
                "state",
                &puts(&[("agent:1", b"stolen"), ("agent:3", b"new")]),
                &["agent:2".to_owned()],
            )
            .await
            .unwrap();
        assert!(!written, "{lease} / {token:?}");
        assert!(
            !cache
                .fenced_write(lease, token, "state", &[], &[])
                .await
                .unwrap(),
            "fence check passed for {lease} / {token:?}"
        );
        assert_eq!(fields_of(&cache, "state").await, expected(&initial));
    }
    assert_eq!(cache.get("never-taken").await.unwrap(), None);

    // An expired lease fences its former holder out too.
    assert!(
        cache
            .set_if_absent("short", b"owner-a", SHORT_LEASE)
            .await
            .unwrap()
    );
    assert!(
        cache
            .fenced_write("short", b"owner-a", "short-state", &puts(&initial), &[])
            .await
            .unwrap()
    );
    wait_until_gone(&cache, "short").await;
    assert!(
        !cache
            .fenced_write(
                "short",
                b"owner-a",
                "short-state",
                &puts(&[("agent:1", b"late")]),
                &["agent:2".to_owned()],
            )
            .await
            .unwrap()
    );
    assert_eq!(fields_of(&cache, "short-state").await, expected(&initial));
}

async fn a_former_owner_cannot_overwrite_the_new_owner(cache: Arc<dyn Cache>) {
    let lease = "routing:{t1}:lease";
    let state = "routing:{t1}:state";
    // A owns the tenant and persists its state.
    assert!(
        cache
            .set_if_absent(lease, b"instance-a", SHORT_LEASE)
            .await
            .unwrap()
    );
    assert!(
        cache
            .fenced_write(
                lease,
                b"instance-a",
                state,
                &puts(&[("queue:sales", b"a-1"), ("agent:7", b"a-ready")]),
                &[],
            )
            .await
            .unwrap()
    );
    // A pauses; its lease lapses and B takes over.
    assert!(
        eventually(Duration::from_secs(3), || async {
            cache
                .set_if_absent(lease, b"instance-b", LONG_LEASE)
                .await
                .unwrap()
        })
        .await,
        "B never got the lease"
    );
    assert!(
        cache
            .fenced_write(
                lease,
                b"instance-b",
                state,
                &puts(&[("queue:sales", b"b-1"), ("queue:support", b"b-2")]),
                &["agent:7".to_owned()],
            )
            .await
            .unwrap()
    );
    let b_state = expected(&[("queue:sales", b"b-1"), ("queue:support", b"b-2")]);
    assert_eq!(fields_of(&cache, state).await, b_state);
    // A wakes up and tries to persist, renew and release: all refused.
    assert!(
        !cache
            .fenced_write(
                lease,
                b"instance-a",
                state,
                &puts(&[("queue:sales", b"a-2"), ("agent:7", b"a-busy")]),
                &["queue:support".to_owned()],
            )
            .await
            .unwrap()
    );
    assert!(
        !cache
            .renew_lease(lease, b"instance-a", LONG_LEASE)
            .await
            .unwrap()
    );
    assert!(!cache.release_lease(lease, b"instance-a").await.unwrap());
    assert_eq!(fields_of(&cache, state).await, b_state);
    assert_eq!(
        cache.get(lease).await.unwrap().as_deref(),
        Some(&b"instance-b"[..])
    );
}

async fn hash_get_all_of_a_missing_key_is_empty(cache: Arc<dyn Cache>) {
    assert!(cache.hash_get_all("no-such-hash").await.unwrap().is_empty());
}

async fn binary_tokens_and_values_round_trip(cache: Arc<dyn Cache>) {
    let token = b"\x00tok\xff\r\n";
    let every_byte: Vec<u8> = (0..=255).collect();
    assert!(
        cache
            .set_if_absent("bin-lease", token, LONG_LEASE)
            .await
            .unwrap()
    );
    assert!(
        cache
            .renew_lease("bin-lease", token, LONG_LEASE)
            .await
            .unwrap()
    );
    assert!(
        !cache
            .renew_lease("bin-lease", b"\x00tok\xfe\r\n", LONG_LEASE)
            .await
            .unwrap()
    );
    let written = cache
        .fenced_write(
            "bin-lease",
            token,
            "bin-state",
            &puts(&[
                ("bytes", &every_byte),
                ("empty", b""),
                ("ünïcode field", b"\xff\x00"),
            ]),
            &[],
        )
        .await
        .unwrap();
    assert!(written);
    assert_eq!(
        fields_of(&cache, "bin-state").await,
        expected(&[
            ("bytes", &every_byte),
            ("empty", b""),
            ("ünïcode field", b"\xff\x00")
        ])
    );
    assert!(cache.release_lease("bin-lease", token).await.unwrap());
}

async fn value_operations_on_a_hash_are_invalid_argument(cache: Arc<dyn Cache>) {
    assert!(
        cache
            .set_if_absent("lease", b"owner-a", LONG_LEASE)
            .await
            .unwrap()
    );
    let state = expected(&[("field", b"v")]);
    assert!(
        cache
            .fenced_write("lease", b"owner-a", "hash", &puts(&[("field", b"v")]), &[])
            .await
            .unwrap()
    );
    let invalid = |result: Result<(), Error>, what: &str| {
        let error = result.expect_err(what);
        assert!(
            matches!(error, Error::InvalidArgument(_)),
            "{what}: {error:?}"
        );
    };
    invalid(cache.get("hash").await.map(drop), "get on a hash");
    invalid(
        cache.increment("hash", 1, None).await.map(drop),
        "increment on a hash",
    );
    invalid(
        cache.take_tokens("hash", 5, 1.0, 1).await.map(drop),
        "take_tokens on a hash",
    );
    invalid(
        cache.renew_lease("hash", b"v", LONG_LEASE).await.map(drop),
        "renew_lease on a hash",
    );
    invalid(
        cache.release_lease("hash", b"v").await.map(drop),
        "release_lease on a hash",
    );
    assert_eq!(
        fields_of(&cache, "hash").await,
        state,
        "the hash was changed"
    );
    assert_eq!(
        cache.ttl("hash").await.unwrap(),
        None,
        "a hash never expires"
    );

    // Hash operations on a plain value are refused too, and change nothing.
    cache.set("plain", b"hello", None).await.unwrap();
    invalid(
        cache.hash_get_all("plain").await.map(drop),
        "hash_get_all on a value",
    );
    invalid(
        cache
            .fenced_write("lease", b"owner-a", "plain", &puts(&[("f", b"v")]), &[])
            .await
            .map(drop),
        "fenced_write to a value",
    );
    invalid(
        cache
            .fenced_write("lease", b"owner-a", "plain", &[], &["f".to_owned()])
            .await
            .map(drop),
        "fenced delete from a value",
    );
    assert_eq!(
        cache.get("plain").await.unwrap().as_deref(),
        Some(&b"hello"[..])
    );

    // delete removes a hash like any key.
    assert!(cache.delete("hash").await.unwrap());
    assert!(cache.hash_get_all("hash").await.unwrap().is_empty());
}

async fn hash_set_adds_and_replaces_fields(cache: Arc<dyn Cache>) {
    cache.hash_set("h", "a", b"1").await.unwrap();
    cache.hash_set("h", "b", b"\x00two").await.unwrap();
    cache.hash_set("h", "a", b"one").await.unwrap();
    assert_eq!(
        fields_of(&cache, "h").await,
        expected(&[("a", b"one"), ("b", b"\x00two")])
    );
    assert_eq!(cache.ttl("h").await.unwrap(), None, "hashes never expire");
    cache.set("value", b"v", None).await.unwrap();
    let error = cache.hash_set("value", "a", b"1").await.unwrap_err();
    assert!(matches!(error, Error::InvalidArgument(_)), "{error:?}");
    assert_eq!(
        cache.get("value").await.unwrap().as_deref(),
        Some(&b"v"[..])
    );
}

async fn hash_delete_removes_one_field_and_an_emptied_hash(cache: Arc<dyn Cache>) {
    cache.hash_set("h", "a", b"1").await.unwrap();
    cache.hash_set("h", "b", b"2").await.unwrap();
    assert!(cache.hash_delete("h", "a").await.unwrap());
    assert!(!cache.hash_delete("h", "a").await.unwrap(), "already gone");
    assert!(!cache.hash_delete("no-such-hash", "a").await.unwrap());
    assert_eq!(fields_of(&cache, "h").await, expected(&[("b", b"2")]));
    assert!(cache.hash_delete("h", "b").await.unwrap());
    assert!(cache.hash_get_all("h").await.unwrap().is_empty());
    assert!(
        cache.get("h").await.unwrap().is_none(),
        "the emptied hash is gone"
    );
    cache.set("value", b"v", None).await.unwrap();
    let error = cache.hash_delete("value", "a").await.unwrap_err();
    assert!(matches!(error, Error::InvalidArgument(_)), "{error:?}");
}

/// The next message of `messages`, skipping gaps; fails after 5 s.
async fn next_message(messages: &mut ChannelMessages) -> (String, Vec<u8>) {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match messages.next().await.expect("subscription open") {
                ChannelEvent::Message { channel, payload } => return (channel, payload.to_vec()),
                ChannelEvent::Gap => {}
            }
        }
    })
    .await
    .expect("a message arrives")
}

async fn subscribers_get_messages_of_matching_channels_in_order(cache: Arc<dyn Cache>) {
    let mut notify = cache.subscribe("routing:*:notify").await.unwrap();
    let mut everything = cache.subscribe("*").await.unwrap();
    cache
        .publish("routing:{t1}:ops", b"not for notify")
        .await
        .unwrap();
    for n in 0..50u32 {
        cache
            .publish("routing:{t1}:notify", &n.to_be_bytes())
            .await
            .unwrap();
    }
    cache
        .publish("routing:{t2}:notify", b"\x00\xff")
        .await
        .unwrap();
    for n in 0..50u32 {
        assert_eq!(
            next_message(&mut notify).await,
            ("routing:{t1}:notify".to_owned(), n.to_be_bytes().to_vec())
        );
    }
    assert_eq!(
        next_message(&mut notify).await,
        ("routing:{t2}:notify".to_owned(), b"\x00\xff".to_vec())
    );
    assert_eq!(
        next_message(&mut everything).await,
        ("routing:{t1}:ops".to_owned(), b"not for notify".to_vec())
    );
}

async fn publishing_without_subscribers_is_fine_and_late_subscribers_miss_it(
    cache: Arc<dyn Cache>,
) {
    cache.publish("lonely", b"nobody hears").await.unwrap();
    let mut late = cache.subscribe("lonely").await.unwrap();
    cache.publish("lonely", b"heard").await.unwrap();
    assert_eq!(
        next_message(&mut late).await,
        ("lonely".to_owned(), b"heard".to_vec())
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
            case!(take_tokens_many_charges_each_bucket_in_turn);
            case!(take_tokens_many_sees_its_own_earlier_takes);
            case!(take_tokens_many_refuses_invalid_takes_and_changes_nothing);
            case!(get_many_answers_each_key_in_order);
            case!(renew_lease_extends_the_ttl_only_for_the_holder);
            case!(renew_lease_after_expiry_returns_false);
            case!(release_lease_deletes_only_with_the_right_token);
            case!(fenced_write_with_the_lease_sets_and_deletes_fields);
            case!(fenced_write_without_the_lease_changes_nothing);
            case!(a_former_owner_cannot_overwrite_the_new_owner);
            case!(hash_get_all_of_a_missing_key_is_empty);
            case!(binary_tokens_and_values_round_trip);
            case!(value_operations_on_a_hash_are_invalid_argument);
            case!(hash_set_adds_and_replaces_fields);
            case!(hash_delete_removes_one_field_and_an_emptied_hash);
            case!(subscribers_get_messages_of_matching_channels_in_order);
            case!(publishing_without_subscribers_is_fine_and_late_subscribers_miss_it);
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
    let closed = ClosedPort::new().unwrap();
    let port = closed.port();
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

    proxy.reopen();
    assert!(
        eventually(Duration::from_secs(15), || async {
            cache.ping().await.is_ok()
        })
        .await,
        "cache did not recover after Redis came back"
    );
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
}

#[tokio::test]
async fn redis_channels_carry_the_prefix_so_two_prefixes_never_hear_each_other() {
    init_tracing();
    let a = RedisCache::connect(&redis_url(), &unique_name("a"))
        .await
        .unwrap();
    let b = RedisCache::connect(&redis_url(), &unique_name("b"))
        .await
        .unwrap();
    let mut heard_by_b = b.subscribe("*").await.unwrap();
    a.publish("same", b"from-a").await.unwrap();
    b.publish("same", b"from-b").await.unwrap();
    assert_eq!(
        next_message(&mut heard_by_b).await,
        ("same".to_owned(), b"from-b".to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_subscription_reports_a_gap_after_an_outage_and_resumes() {
    init_tracing();
    let target = redis_url()
        .trim_start_matches("redis://")
        .parse()
        .expect("redis url is host:port");
    let proxy = TcpProxy::start(target).await.unwrap();
    let prefix = unique_name("pubsub-outage");
    let subscriber = RedisCache::connect(&format!("redis://{}", proxy.addr()), &prefix)
        .await
        .unwrap();
    let publisher = RedisCache::connect(&redis_url(), &prefix).await.unwrap();
    let mut messages = subscriber.subscribe("ch").await.unwrap();
    publisher.publish("ch", b"before").await.unwrap();
    assert_eq!(next_message(&mut messages).await.1, b"before");

    proxy.close();
    let gap = tokio::time::timeout(Duration::from_secs(10), messages.next())
        .await
        .expect("the outage is reported");
    assert_eq!(gap, Some(ChannelEvent::Gap));
    proxy.reopen();
    // Resubscribed in the background: publish until one is heard.
    let mut heard = false;
    for _ in 0..100 {
        publisher.publish("ch", b"after").await.unwrap();
        if let Ok(Some(ChannelEvent::Message { payload, .. })) =
            tokio::time::timeout(Duration::from_millis(100), messages.next()).await
        {
            assert_eq!(&payload[..], b"after");
            heard = true;
            break;
        }
    }
    assert!(
        heard,
        "the subscription did not resume after Redis came back"
    );
}
