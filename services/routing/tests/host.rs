//! The engine host on both caches: one owner per tenant, takeover after
//! the owner dies, offers of the dead owner re-offered, tenants apart;
//! concurrent operations grouped into few writes that land whole; a
//! failed write fails its batch and everything applied after it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures::future::join_all;
use switchboard_acd::{
    AgentId, AgentProfile, AgentState, Channel, Contact, ContactId, ContactState, Presence,
    QueueConfig, QueueId,
};
use switchboard_platform::Cache;
use switchboard_platform::cache::{MemoryCache, RedisCache};
use switchboard_routing::{EngineHost, HostError, HostOptions};
use switchboard_tenancy::TenantId;
use switchboard_test_utils::{eventually, init_tracing, redis_url, unique_name};

const QUEUE: QueueId = QueueId::from_u128(1);
const ANN: AgentId = AgentId::from_u128(10);
const BOB: AgentId = AgentId::from_u128(11);
const CALL: ContactId = ContactId::from_u128(100);
const LEASE: Duration = Duration::from_millis(300);

fn start() -> DateTime<Utc> {
    "2025-01-06T09:00:00Z".parse().unwrap()
}

fn host(cache: &Arc<dyn Cache>, name: &str) -> EngineHost {
    EngineHost::new(
        cache.clone(),
        HostOptions {
            holder: name.into(),
            lease_ttl: LEASE,
        },
    )
}

/// A queue and Ann available, then Bob: the call goes to Ann.
async fn staff_and_call(host: &EngineHost, tenant: TenantId) {
    let at = start();
    host.execute(tenant, |e| {
        e.upsert_queue(QueueConfig::new(QUEUE, Channel::Voice), at)
    })
    .await
    .unwrap();
    for agent in [ANN, BOB] {
        host.execute(tenant, |e| {
            e.upsert_agent_profile(AgentProfile::new(agent), at)
        })
        .await
        .unwrap();
    }
    host.execute(tenant, |e| e.set_presence(ANN, Presence::Available, at))
        .await
        .unwrap();
    let later = at + TimeDelta::seconds(1);
    host.execute(tenant, |e| e.set_presence(BOB, Presence::Available, later))
        .await
        .unwrap();
    let outcome = host
        .execute(tenant, |e| {
            e.enqueue(Contact::new(CALL, QUEUE, Channel::Voice, later), later)
        })
        .await
        .unwrap();
    assert_eq!(outcome.offers.len(), 1);
    assert_eq!(outcome.offers[0].agent, ANN);
}

async fn one_owner_and_takeover_after_it_dies(cache: Arc<dyn Cache>) {
    let tenant = TenantId::new();
    let first = host(&cache, "first");
    staff_and_call(&first, tenant).await;

    // A second instance cannot touch the tenant while the first holds it.
    let second = host(&cache, "second");
    let refused = second
        .execute(tenant, |e| e.set_presence(BOB, Presence::Offline, start()))
        .await;
    assert!(
        matches!(refused, Err(HostError::NotOwner(t)) if t == tenant),
        "{refused:?}"
    );

    // The first dies (no release): once its lease runs out the second takes
    // over with the persisted state, and Ann's unanswered offer goes to Bob.
    drop(first);
    let taken = eventually(Duration::from_secs(5), || async {
        second.read(tenant, |_| ()).await.is_ok()
    })
    .await;
    assert!(taken, "the second instance never took the tenant over");
    let state = second
        .read(tenant, |e| e.contact(CALL).map(|c| c.state))
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(state, ContactState::Offered { agent, .. } if agent == ANN),
        "{state:?}"
    );

    let past_ring = start() + TimeDelta::seconds(60);
    let outcome = second.tick(tenant, past_ring).await.unwrap();
    assert_eq!(outcome.offers.len(), 1, "{outcome:?}");
    assert_eq!(outcome.offers[0].agent, BOB);
    let ann = second
        .read(tenant, |e| e.agent_state(ANN))
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(ann, AgentState::NotReady { ref reason } if reason == "missed"),
        "{ann:?}"
    );

    // What the second wrote is what a third instance loads.
    second.release_all().await;
    let third = host(&cache, "third");
    let state = third
        .read(tenant, |e| e.contact(CALL).map(|c| c.state))
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(state, ContactState::Offered { agent, .. } if agent == BOB),
        "{state:?}"
    );
    third.release_all().await;
}

async fn a_refused_operation_writes_nothing_and_tenants_are_apart(cache: Arc<dyn Cache>) {
    let (tenant, other) = (TenantId::new(), TenantId::new());
    let host = host(&cache, "only");
    staff_and_call(&host, tenant).await;
    let refused = host
        .execute(tenant, |e| e.set_presence(ANN, Presence::Offline, start()))
        .await;
    assert!(matches!(refused, Err(HostError::Refused(_))), "{refused:?}");

    // Another tenant's engine knows nothing of this one's ids.
    let unknown = host.read(other, |e| e.agent_state(ANN)).await.unwrap();
    assert!(unknown.is_err());
    let crossing = host.execute(other, |e| e.accept(CALL, ANN, start())).await;
    assert!(
        matches!(crossing, Err(HostError::Refused(_))),
        "{crossing:?}"
    );
    host.release_all().await;

    // Reloaded from the cache: Ann is still reserved for the call.
    let again = self::host(&cache, "again");
    let ann = again
        .read(tenant, |e| e.agent_state(ANN))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ann, AgentState::Reserved);
    again.release_all().await;
}

/// `count` agents with profiles, each available one second after the
/// previous, and one queue.
async fn staff(host: &EngineHost, tenant: TenantId, count: u128) -> Vec<AgentId> {
    let at = start();
    host.execute(tenant, |e| {
        e.upsert_queue(QueueConfig::new(QUEUE, Channel::Voice), at)
    })
    .await
    .unwrap();
    let agents: Vec<AgentId> = (0..count).map(|n| AgentId::from_u128(1_000 + n)).collect();
    for (n, agent) in agents.iter().enumerate() {
        let agent = *agent;
        let at = at + TimeDelta::seconds(n as i64);
        host.execute(tenant, |e| {
            e.upsert_agent_profile(AgentProfile::new(agent), at)
        })
        .await
        .unwrap();
        host.execute(tenant, |e| e.set_presence(agent, Presence::Available, at))
            .await
            .unwrap();
    }
    agents
}

fn calls(count: u128) -> Vec<ContactId> {
    (0..count)
        .map(|n| ContactId::from_u128(50_000 + n))
        .collect()
}

async fn concurrent_operations_share_writes_and_all_land(cache: Arc<dyn Cache>) {
    let tenant = TenantId::new();
    let first = EngineHost::new(
        cache.clone(),
        HostOptions {
            holder: "first".into(),
            lease_ttl: Duration::from_secs(30),
        },
    );
    let agents = staff(&first, tenant, 150).await;
    let before = first.stats();

    // 150 calls at once: each caller hears of its offer only once written,
    // and the writes carry many operations each.
    let at = start() + TimeDelta::minutes(10);
    let calls = calls(150);
    let outcomes = join_all(calls.iter().map(|call| {
        let call = *call;
        first.execute(tenant, move |e| {
            e.enqueue(Contact::new(call, QUEUE, Channel::Voice, at), at)
        })
    }))
    .await;
    let mut offered = std::collections::BTreeMap::new();
    for outcome in outcomes {
        let outcome = outcome.unwrap();
        assert_eq!(outcome.offers.len(), 1, "{outcome:?}");
        let offer = &outcome.offers[0];
        assert!(
            offered.insert(offer.agent, offer.contact).is_none(),
            "{:?} offered twice",
            offer.agent
        );
    }
    assert_eq!(offered.len(), agents.len());
    let after = first.stats();
    let writes = after.writes - before.writes;
    assert_eq!(after.answered - before.answered, 150);
    assert!(
        (1..=10).contains(&writes),
        "150 concurrent operations took {writes} writes"
    );
    let journaled = first.journal(tenant, usize::MAX).await.len();
    first.release_all().await;

    // What a successor loads is exactly what the callers were told, events
    // included.
    let second = host(&cache, "second");
    for (agent, call) in &offered {
        let state = second
            .read(tenant, |e| e.contact(*call).map(|c| c.state))
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(state, ContactState::Offered { agent: a, .. } if a == *agent),
            "{call:?}: {state:?}"
        );
        let agent_state = second.read(tenant, |e| e.agent_state(*agent)).await;
        assert_eq!(agent_state.unwrap().unwrap(), AgentState::Reserved);
    }
    assert_eq!(second.journal(tenant, usize::MAX).await.len(), journaled);
    assert!(journaled >= 150 * 2, "only {journaled} events journaled");
    second.release_all().await;
}

async fn a_failed_write_fails_its_batch_and_what_came_after(cache: Arc<dyn Cache>) {
    let tenant = TenantId::new();
    let owner = EngineHost::new(
        cache.clone(),
        HostOptions {
            holder: "owner".into(),
            lease_ttl: Duration::from_secs(30),
        },
    );
    staff(&owner, tenant, 20).await;

    // Someone else holds the lease now (the owner was cut off past its
    // TTL and a successor took it): the owner's next write is refused.
    let lease = format!("routing:{{{tenant}}}:lease");
    cache
        .set(&lease, b"successor", Some(Duration::from_secs(30)))
        .await
        .unwrap();
    let at = start() + TimeDelta::minutes(10);
    let calls = calls(20);
    // Half the calls come while the first write is in flight (the writer
    // runs between yields), applied on top of what it fails to write.
    let half = calls.len() / 2;
    let outcomes = join_all(calls.iter().enumerate().map(|(n, call)| {
        let (call, owner) = (*call, &owner);
        async move {
            if n >= half {
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
            }
            owner
                .execute(tenant, move |e| {
                    e.enqueue(Contact::new(call, QUEUE, Channel::Voice, at), at)
                })
                .await
        }
    }))
    .await;
    for outcome in outcomes {
        assert!(
            matches!(
                outcome,
                Err(HostError::LeaseLost(t) | HostError::NotOwner(t)) if t == tenant
            ),
            "{outcome:?}"
        );
    }
    assert!(
        !owner.owns(tenant).await,
        "the owner kept a state it could not write"
    );

    // Once the lease is free again, a reload knows none of those calls and
    // every agent is still available.
    cache.delete(&lease).await.unwrap();
    for call in &calls {
        let known = owner.read(tenant, |e| e.contact(*call).is_ok()).await;
        assert!(!known.unwrap(), "{call:?} was written although it failed");
    }
    let reserved = owner
        .read(tenant, |e| {
            e.agents()
                .filter(|agent| e.agent_state(*agent) != Ok(AgentState::Available))
                .count()
        })
        .await
        .unwrap();
    assert_eq!(reserved, 0);
    owner.release_all().await;
}

async fn memory() -> Arc<dyn Cache> {
    Arc::new(MemoryCache::new())
}

async fn redis() -> Arc<dyn Cache> {
    Arc::new(
        RedisCache::connect(&redis_url(), &unique_name("sbtest_routing"))
            .await
            .expect("Redis at SB_TEST_REDIS_URL"),
    )
}

#[tokio::test]
async fn memory_one_owner_and_takeover_after_it_dies() {
    init_tracing();
    one_owner_and_takeover_after_it_dies(memory().await).await;
}

#[tokio::test]
async fn redis_one_owner_and_takeover_after_it_dies() {
    init_tracing();
    one_owner_and_takeover_after_it_dies(redis().await).await;
}

#[tokio::test]
async fn memory_a_refused_operation_writes_nothing_and_tenants_are_apart() {
    init_tracing();
    a_refused_operation_writes_nothing_and_tenants_are_apart(memory().await).await;
}

#[tokio::test]
async fn redis_a_refused_operation_writes_nothing_and_tenants_are_apart() {
    init_tracing();
    a_refused_operation_writes_nothing_and_tenants_are_apart(redis().await).await;
}

#[tokio::test]
async fn memory_concurrent_operations_share_writes_and_all_land() {
    init_tracing();
    concurrent_operations_share_writes_and_all_land(memory().await).await;
}

#[tokio::test]
async fn redis_concurrent_operations_share_writes_and_all_land() {
    init_tracing();
    concurrent_operations_share_writes_and_all_land(redis().await).await;
}

#[tokio::test]
async fn memory_a_failed_write_fails_its_batch_and_what_came_after() {
    init_tracing();
    a_failed_write_fails_its_batch_and_what_came_after(memory().await).await;
}

#[tokio::test]
async fn redis_a_failed_write_fails_its_batch_and_what_came_after() {
    init_tracing();
    a_failed_write_fails_its_batch_and_what_came_after(redis().await).await;
}
