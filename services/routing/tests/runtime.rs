//! The routing runtime on both backends (in-process cache + SQLite, Redis +
//! PostgreSQL): offers, notices, ring-no-answer by the upkeep, events in
//! the outbox exactly once; and two instances on one cache and database
//! under load, one crashing mid-way: calls forwarded to the owner, no agent
//! reserved twice, no contact offered twice, nothing lost.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait as _, Order, Query as SqlQuery};
use switchboard_acd::{
    AgentId, AgentProfile, AgentState, Channel, Contact, ContactEventKind, ContactId, Presence,
    QueueConfig, QueueId, SkillId,
};
use switchboard_events::Event;
use switchboard_events::proto::envelope::Payload;
use switchboard_migrations::{Migrator, MigratorTrait};
use switchboard_platform::Cache;
use switchboard_platform::Database;
use switchboard_platform::cache::{MemoryCache, RedisCache};
use switchboard_platform::database::DatabaseOptions;
use switchboard_routing::{
    Answer, HostOptions, NoticeEvent, Notices, Operation, Query, RefusalKind, Routing,
    RoutingError, RoutingOptions,
};
use switchboard_tenancy::TenantId;
use switchboard_test_utils::{
    eventually, fresh_postgres_database, fresh_sqlite_database, init_tracing,
    postgres_app_role_url, postgres_system_role_url, redis_url, unique_name,
};

struct Backends {
    cache: Arc<dyn Cache>,
    database: Database,
    _dir: Option<tempfile::TempDir>,
}

async fn backends(production: bool) -> Backends {
    init_tracing();
    if production {
        let url = fresh_postgres_database().await;
        let admin = Database::connect(&url, &DatabaseOptions::default())
            .await
            .unwrap();
        Migrator::up(admin.connection(), None).await.unwrap();
        admin.close().await;
        let service = postgres_app_role_url(&url).await;
        let system = postgres_system_role_url(&url).await;
        Backends {
            cache: Arc::new(
                RedisCache::connect(&redis_url(), &unique_name("routing"))
                    .await
                    .expect("Redis is reachable (./scripts/test starts it)"),
            ),
            // The edge's number lookup runs on the system workers' pool.
            database: Database::connect(&service, &DatabaseOptions::default())
                .await
                .unwrap()
                .with_system(
                    Database::connect(&system, &DatabaseOptions::default())
                        .await
                        .unwrap(),
                )
                .unwrap(),
            _dir: None,
        }
    } else {
        let (url, dir) = fresh_sqlite_database();
        let database = Database::connect(&url, &DatabaseOptions::default())
            .await
            .unwrap();
        Migrator::up(database.connection(), None).await.unwrap();
        Backends {
            cache: Arc::new(MemoryCache::new()),
            database,
            _dir: Some(dir),
        }
    }
}

fn routing(backends: &Backends, name: &str, lease: Duration) -> Routing {
    routing_waiting(backends, name, lease, Duration::from_secs(1))
}

/// [`routing`] waiting `forward_timeout` for the owner's answers.
fn routing_waiting(
    backends: &Backends,
    name: &str,
    lease: Duration,
    forward_timeout: Duration,
) -> Routing {
    Routing::new(
        backends.cache.clone(),
        backends.database.clone(),
        RoutingOptions {
            host: HostOptions {
                holder: name.into(),
                lease_ttl: lease,
            },
            upkeep_every: Duration::from_millis(50),
            forward_timeout,
            journal_batch: 200,
        },
    )
}

/// The tenant's routing events in the outbox, in the order written.
async fn events_of(database: &Database, tenant: TenantId) -> Vec<Event> {
    let transaction = database.begin_tenant(tenant.as_uuid()).await.unwrap();
    let select = SqlQuery::select()
        .column(Alias::new("payload"))
        .from(Alias::new("event_log"))
        .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant.as_uuid()))
        .and_where(Expr::col(Alias::new("source")).eq("routing"))
        .order_by(Alias::new("seq"), Order::Asc)
        .to_owned();
    let rows = transaction.query_all(&select).await.unwrap();
    transaction.commit().await.unwrap();
    rows.into_iter()
        .map(|row| {
            let payload: Vec<u8> = row.try_get("", "payload").unwrap();
            Event::decode(&payload).unwrap()
        })
        .collect()
}

fn types(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event.event_type.as_str())
        .collect()
}

async fn next_notice(notices: &mut Notices) -> Arc<switchboard_routing::Notice> {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let NoticeEvent::Notice(notice) = notices.next().await.unwrap() {
                return notice;
            }
        }
    })
    .await
    .expect("a notice arrives")
}

async fn offers_ring_out_and_every_step_is_an_event(production: bool) {
    let backends = backends(production).await;
    let routing = routing(&backends, "solo", Duration::from_secs(2));
    let running = routing.start().await.unwrap();
    let tenant = TenantId::new();
    let mut notices = routing.notices_of(tenant);
    // Another tenant's listener hears nothing of this tenant.
    let mut other_tenants = routing.notices_of(TenantId::new());
    let queue = QueueId::new();
    let agent = AgentId::new();
    let mut config = QueueConfig::new(queue, Channel::Voice);
    config.ring_timeout = Duration::from_millis(300);
    routing
        .execute(tenant, Operation::UpsertQueue { config })
        .await
        .unwrap();
    routing
        .execute(
            tenant,
            Operation::UpsertAgent {
                profile: AgentProfile::new(agent),
            },
        )
        .await
        .unwrap();
    routing
        .execute(
            tenant,
            Operation::SetPresence {
                agent,
                presence: Presence::Available,
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        next_notice(&mut notices).await.agent_events[0].to,
        AgentState::Available
    ));
    let contact = ContactId::new();
    let outcome = routing
        .execute(
            tenant,
            Operation::Enqueue {
                contact: Contact::new(contact, queue, Channel::Voice, Utc::now()),
            },
        )
        .await
        .unwrap();
    assert_eq!(outcome.offers.len(), 1);
    assert_eq!(outcome.offers[0].agent, agent);
    let notice = next_notice(&mut notices).await;
    assert_eq!(notice.tenant, tenant);
    assert_eq!(notice.offers, outcome.offers);

    // Nobody answers: the upkeep rings it out and the agent goes not ready.
    let notice = next_notice(&mut notices).await;
    assert_eq!(notice.withdrawn.len(), 1, "{notice:?}");
    let Answer::Agent { view } = routing.query(tenant, Query::Agent { agent }).await.unwrap()
    else {
        panic!("not an agent answer")
    };
    assert_eq!(
        view.state,
        AgentState::NotReady {
            reason: "missed".into()
        }
    );

    // A refused operation: 409 with the current state, nothing changes.
    let error = routing
        .execute(tenant, Operation::EndWrapUp { agent })
        .await
        .unwrap_err();
    let RoutingError::Refused(refusal) = error else {
        panic!("{error:?}")
    };
    assert_eq!(refusal.kind, RefusalKind::Conflict);
    assert_eq!(
        refusal.current_state,
        Some(AgentState::NotReady {
            reason: "missed".into()
        })
    );

    let expected = [
        "agent.state_changed", // offline → available
        "agent.state_changed", // available → reserved
        "contact.queued",
        "contact.offered",
        "agent.state_changed", // reserved → not ready (missed)
        "contact.requeued",
    ];
    assert!(
        eventually(Duration::from_secs(5), || async {
            events_of(&backends.database, tenant).await.len() >= expected.len()
        })
        .await,
        "events did not reach the outbox"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(200), other_tenants.next())
            .await
            .is_err(),
        "another tenant's listener heard this tenant's notices"
    );
    running.stop().await;
    let events = events_of(&backends.database, tenant).await;
    assert_eq!(types(&events), expected);
    let Payload::ContactRequeued(requeued) = &events[5].payload else {
        panic!("{:?}", events[5])
    };
    assert_eq!(requeued.reason, "missed");
    assert_eq!(requeued.agent_id, agent.to_string());

    // Another tenant's ids are unknown to this one.
    let other = TenantId::new();
    let error = routing
        .query(other, Query::Agent { agent })
        .await
        .unwrap_err();
    assert!(
        matches!(&error, RoutingError::Refused(refusal) if refusal.kind == RefusalKind::NotFound),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_offers_ring_out_and_every_step_is_an_event() {
    offers_ring_out_and_every_step_is_an_event(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_offers_ring_out_and_every_step_is_an_event() {
    offers_ring_out_and_every_step_is_an_event(true).await;
}

/// Two instances, 200 agents in 4 skill groups, 4 queues, 2,000 calls sent
/// through either instance; the owner crashes half-way. Checked on the
/// outbox's history afterwards: every call queued once, ended once; an
/// agent never holds two calls or two offers; a call is never offered
/// while already offered or connected.
/// An instance that gives up waiting for the owner's answer asks again
/// with the same request id: the owner extends the wrap-up once, not once
/// per attempt, and answers a later attempt with the first one's outcome
/// (or none comes in time).
/// A `[routing]` section's lease reaches the runtime: the tenant's lease
/// in the cache is taken for the configured time, not the default 10 s.
async fn the_configured_lease_is_the_one_taken(production: bool) {
    let backends = backends(production).await;
    let config = switchboard_config::Config::from_toml_str(
        "[routing]\nlease_ttl = \"47s\"\nupkeep_every = \"100ms\"\ninstance_name = \"configured\"\n",
    )
    .unwrap();
    let options = RoutingOptions::from_config(&config.routing);
    assert_eq!(options.host.holder, "configured");
    assert_eq!(options.upkeep_every, Duration::from_millis(100));
    let routing = Routing::new(backends.cache.clone(), backends.database.clone(), options);
    let tenant = TenantId::new();
    routing
        .execute(
            tenant,
            Operation::UpsertQueue {
                config: QueueConfig::new(QueueId::new(), Channel::Voice),
            },
        )
        .await
        .unwrap();
    let left = backends
        .cache
        .ttl(&format!("routing:{{{tenant}}}:lease"))
        .await
        .unwrap()
        .expect("the tenant's lease is taken, with a time to live");
    assert!(
        left > Duration::from_secs(40) && left <= Duration::from_secs(47),
        "{left:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_the_configured_lease_is_the_one_taken() {
    the_configured_lease_is_the_one_taken(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_the_configured_lease_is_the_one_taken() {
    the_configured_lease_is_the_one_taken(true).await;
}

/// What the routing metrics recorded since the last look: counters by
/// `name{label=value,…}`, and each histogram's samples.
#[derive(Debug, Default)]
struct Recorded {
    counters: BTreeMap<String, u64>,
    histograms: BTreeMap<String, Vec<f64>>,
}

impl Recorded {
    fn since_last(snapshotter: &Snapshotter) -> Self {
        let mut recorded = Recorded::default();
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|label| format!("{}={}", label.key(), label.value()))
                .collect();
            labels.sort();
            let series = format!("{}{{{}}}", key.name(), labels.join(","));
            match value {
                DebugValue::Counter(count) if count > 0 => {
                    recorded.counters.insert(series, count);
                }
                DebugValue::Histogram(samples) if !samples.is_empty() => {
                    recorded
                        .histograms
                        .insert(series, samples.into_iter().map(f64::from).collect());
                }
                _ => {}
            }
        }
        recorded
    }

    fn offers(&self, outcome: &str) -> u64 {
        self.count(&format!(
            "switchboard_routing_offers_total{{outcome={outcome}}}"
        ))
    }

    fn operations(&self, operation: &str, result: &str) -> u64 {
        self.count(&format!(
            "switchboard_routing_operations_total{{operation={operation},result={result}}}"
        ))
    }

    fn count(&self, series: &str) -> u64 {
        self.counters.get(series).copied().unwrap_or(0)
    }

    fn waits(&self, outcome: &str) -> Vec<f64> {
        self.samples(&format!(
            "switchboard_routing_queue_wait_seconds{{outcome={outcome}}}"
        ))
    }

    fn samples(&self, series: &str) -> Vec<f64> {
        self.histograms.get(series).cloned().unwrap_or_default()
    }
}

/// Drives one agent through every way an offer ends, looking at what the
/// metrics recorded after each step (a recorder of this test's own).
async fn metrics_follow_offers_waits_and_operations(production: bool, snapshotter: Snapshotter) {
    let backends = backends(production).await;
    let routing = routing(&backends, "metrics", Duration::from_secs(2));
    let running = routing.start().await.unwrap();
    let tenant = TenantId::new();
    let queue = QueueId::new();
    let agent = AgentId::new();
    let execute = |operation: Operation| {
        let routing = routing.clone();
        async move { routing.execute(tenant, operation).await.unwrap() }
    };
    let available = || {
        execute(Operation::SetPresence {
            agent,
            presence: Presence::Available,
        })
    };
    let enqueue = |contact: ContactId| {
        execute(Operation::Enqueue {
            contact: Contact::new(contact, queue, Channel::Voice, Utc::now()),
        })
    };
    let mut config = QueueConfig::new(queue, Channel::Voice);
    config.ring_timeout = Duration::from_secs(3);
    execute(Operation::UpsertQueue { config }).await;
    execute(Operation::UpsertAgent {
        profile: AgentProfile::new(agent),
    })
    .await;
    available().await;
    let setup = Recorded::since_last(&snapshotter);
    assert_eq!(setup.operations("upsert_queue", "ok"), 1, "{setup:?}");
    assert_eq!(setup.operations("set_presence", "ok"), 1, "{setup:?}");
    assert_eq!(setup.offers("offered"), 0, "{setup:?}");

    // The agent gets an offer, and declines it.
    let first = ContactId::new();
    assert_eq!(enqueue(first).await.offers.len(), 1);
    let offered = Recorded::since_last(&snapshotter);
    assert_eq!(offered.offers("offered"), 1, "{offered:?}");
    assert_eq!(offered.operations("enqueue", "ok"), 1, "{offered:?}");
    execute(Operation::Decline {
        agent,
        contact: first,
    })
    .await;
    let declined = Recorded::since_last(&snapshotter);
    assert_eq!(declined.offers("declined"), 1, "{declined:?}");
    assert_eq!(declined.offers("missed"), 0, "{declined:?}");

    // Offered again, accepted: the contact's wait ends, answered.
    assert_eq!(available().await.offers.len(), 1);
    execute(Operation::Accept {
        agent,
        contact: first,
    })
    .await;
    let accepted = Recorded::since_last(&snapshotter);
    assert_eq!(accepted.offers("offered"), 1, "{accepted:?}");
    assert_eq!(accepted.offers("accepted"), 1, "{accepted:?}");
    let answered = accepted.waits("answered");
    assert_eq!(answered.len(), 1, "{accepted:?}");
    assert!((0.0..30.0).contains(&answered[0]), "{answered:?}");

    // The agent is busy: the next contact waits, and its caller hangs up.
    let second = ContactId::new();
    assert!(enqueue(second).await.offers.is_empty());
    execute(Operation::Abandon { contact: second }).await;
    let left = Recorded::since_last(&snapshotter);
    assert_eq!(left.waits("abandoned").len(), 1, "{left:?}");
    assert_eq!(left.offers("abandoned"), 0, "not offered: {left:?}");
    assert_eq!(left.offers("offered"), 0, "{left:?}");

    // Free again, the agent lets the next offer ring out (the upkeep's tick).
    execute(Operation::End { contact: first }).await;
    let third = ContactId::new();
    assert_eq!(enqueue(third).await.offers.len(), 1);
    let ringing = Recorded::since_last(&snapshotter);
    assert_eq!(ringing.offers("offered"), 1, "{ringing:?}");
    assert!(
        eventually(Duration::from_secs(10), || {
            let routing = routing.clone();
            async move {
                let answer = routing.query(tenant, Query::Agent { agent }).await.unwrap();
                matches!(answer, Answer::Agent { view } if matches!(view.state, AgentState::NotReady { .. }))
            }
        })
        .await,
        "the offer rang out"
    );
    let ticked = Recorded::since_last(&snapshotter);
    assert_eq!(
        ringing.offers("missed") + ticked.offers("missed"),
        1,
        "{ringing:?} {ticked:?}"
    );
    assert!(
        ringing.operations("tick", "ok") + ticked.operations("tick", "ok") >= 1,
        "{ringing:?} {ticked:?}"
    );

    // The requeued contact waits past its queue's limit: overflowed.
    execute(Operation::Overflow { contact: third }).await;
    let overflowed = Recorded::since_last(&snapshotter);
    assert_eq!(overflowed.waits("overflowed").len(), 1, "{overflowed:?}");

    // A caller hangs up while the offer rings: the offer ends abandoned.
    available().await;
    let fourth = ContactId::new();
    assert_eq!(enqueue(fourth).await.offers.len(), 1);
    execute(Operation::Abandon { contact: fourth }).await;
    let withdrawn = Recorded::since_last(&snapshotter);
    assert_eq!(withdrawn.offers("offered"), 1, "{withdrawn:?}");
    assert_eq!(withdrawn.offers("abandoned"), 1, "{withdrawn:?}");
    assert_eq!(withdrawn.waits("abandoned").len(), 1, "{withdrawn:?}");

    // A refusal is counted as one, and changes nothing.
    routing
        .execute(tenant, Operation::EndWrapUp { agent })
        .await
        .unwrap_err();
    let refused = Recorded::since_last(&snapshotter);
    assert_eq!(
        refused.operations("end_wrap_up", "refused"),
        1,
        "{refused:?}"
    );
    assert_eq!(refused.operations("end_wrap_up", "ok"), 0, "{refused:?}");

    // Every state write and outbox move was timed.
    running.stop().await;
    let stopped = Recorded::since_last(&snapshotter);
    let writes = |write: &str| {
        [
            &setup,
            &offered,
            &declined,
            &accepted,
            &left,
            &ringing,
            &ticked,
            &overflowed,
            &withdrawn,
            &refused,
            &stopped,
        ]
        .iter()
        .map(|recorded| {
            recorded
                .samples(&format!(
                    "switchboard_routing_write_duration_seconds{{write={write}}}"
                ))
                .len()
        })
        .sum::<usize>()
    };
    assert!(
        writes("state") >= 10,
        "one per operation that changed something"
    );
    assert!(writes("outbox") >= 1, "the journal reached the outbox");
}

/// Runs the metrics test on a current-thread runtime under a recorder of
/// its own, so that every task it spawns records there and other tests'
/// metrics do not.
fn with_own_recorder(production: bool) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(metrics_follow_offers_waits_and_operations(
            production,
            snapshotter,
        ))
    });
}

#[test]
fn embedded_metrics_follow_offers_waits_and_operations() {
    with_own_recorder(false);
}

#[test]
fn production_metrics_follow_offers_waits_and_operations() {
    with_own_recorder(true);
}

async fn an_operation_asked_again_runs_once(production: bool) {
    let backends = backends(production).await;
    let lease = Duration::from_secs(5);
    let owner = routing(&backends, "owner", lease);
    // Never waits: every attempt's answer comes too late.
    let impatient = routing_waiting(&backends, "impatient", lease, Duration::ZERO);
    let running_owner = owner.start().await.unwrap();
    let running_impatient = impatient.start().await.unwrap();
    let tenant = TenantId::new();
    let queue = QueueId::new();
    let agent = AgentId::new();
    let mut config = QueueConfig::new(queue, Channel::Voice);
    config.wrap_up = Duration::from_secs(600);
    let contact = ContactId::new();
    for operation in [
        Operation::UpsertQueue { config },
        Operation::UpsertAgent {
            profile: AgentProfile::new(agent),
        },
        Operation::SetPresence {
            agent,
            presence: Presence::Available,
        },
        Operation::Enqueue {
            contact: Contact::new(contact, queue, Channel::Voice, Utc::now()),
        },
        Operation::Accept { agent, contact },
        Operation::End { contact },
    ] {
        owner.execute(tenant, operation).await.unwrap();
    }
    assert!(owner.host().owns(tenant).await);
    let wrap_up_until = || async {
        match owner.query(tenant, Query::Agent { agent }).await.unwrap() {
            Answer::Agent { view } => view.wrap_up_until.expect("in wrap-up"),
            other => panic!("not an agent answer: {other:?}"),
        }
    };
    let before = wrap_up_until().await;

    let extended = before + chrono::Duration::seconds(30);
    let asked = impatient
        .execute(
            tenant,
            Operation::ExtendWrapUp {
                agent,
                by_ms: 30_000,
            },
        )
        .await;
    match asked {
        // A later attempt was answered with the first one's outcome.
        Ok(outcome) => assert_eq!(
            outcome.agent_events[0].to,
            AgentState::AfterCallWork { until: extended },
            "{outcome:?}"
        ),
        Err(RoutingError::Unavailable(_)) => {}
        Err(other) => panic!("{other:?}"),
    }
    assert!(
        eventually(Duration::from_secs(5), || async {
            wrap_up_until().await != before
        })
        .await
    );
    // Late attempts would have landed by now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(wrap_up_until().await, extended, "extended once");

    running_impatient.stop().await;
    running_owner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_an_operation_asked_again_runs_once() {
    an_operation_asked_again_runs_once(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_an_operation_asked_again_runs_once() {
    an_operation_asked_again_runs_once(true).await;
}

async fn two_instances_one_crashing(production: bool) {
    const AGENTS: usize = 200;
    const CALLS: usize = 2_000;
    let backends = backends(production).await;
    let lease = Duration::from_millis(800);
    let first = routing(&backends, "first", lease);
    let second = routing(&backends, "second", lease);
    let running_first = first.start().await.unwrap();
    let running_second = second.start().await.unwrap();
    let tenant = TenantId::new();

    let skills: Vec<SkillId> = (0..4).map(|_| SkillId::new()).collect();
    let queues: Vec<QueueId> = (0..4).map(|_| QueueId::new()).collect();
    // `first` takes the tenant with its first operation.
    for (queue, skill) in queues.iter().zip(&skills) {
        let mut config = QueueConfig::new(*queue, Channel::Voice);
        config.required_skills.push((*skill, 3));
        config.ring_timeout = Duration::from_millis(600);
        first
            .execute(tenant, Operation::UpsertQueue { config })
            .await
            .unwrap();
    }
    assert!(first.host().owns(tenant).await);
    let agents: Vec<AgentId> = (0..AGENTS).map(|_| AgentId::new()).collect();
    for (n, agent) in agents.iter().enumerate() {
        let profile = AgentProfile::new(*agent)
            .with_skill(skills[n % 4], 5)
            .with_skill(skills[(n + 1) % 4], 3);
        // Through the non-owner: forwarded.
        second
            .execute(tenant, Operation::UpsertAgent { profile })
            .await
            .unwrap();
        second
            .execute(
                tenant,
                Operation::SetPresence {
                    agent: *agent,
                    presence: Presence::Available,
                },
            )
            .await
            .unwrap();
    }

    // Agents: answer every offer, end the call, come back after a miss.
    let ended = Arc::new(std::sync::Mutex::new(HashSet::<ContactId>::new()));
    let alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let desk = {
        let mut notices = second.notices_of(tenant);
        let instances = [first.clone(), second.clone()];
        let ended = ended.clone();
        let alive = alive.clone();
        tokio::spawn(async move {
            let mut turn = 0usize;
            loop {
                let notice = match notices.next().await {
                    Some(NoticeEvent::Notice(notice)) => notice,
                    Some(NoticeEvent::Gap) => continue,
                    None => return,
                };
                assert_eq!(notice.tenant, tenant, "only the tenant's notices");
                for event in &notice.contact_events {
                    if event.kind == ContactEventKind::Ended {
                        ended.lock().unwrap().insert(event.contact);
                    }
                }
                // While `first` lives, alternate; afterwards `second` only.
                turn += 1;
                let via = if alive.load(std::sync::atomic::Ordering::SeqCst) {
                    instances[turn % 2].clone()
                } else {
                    instances[1].clone()
                };
                for offer in notice.offers.clone() {
                    let via = via.clone();
                    tokio::spawn(async move {
                        let accepted = via
                            .execute(
                                tenant,
                                Operation::Accept {
                                    agent: offer.agent,
                                    contact: offer.contact,
                                },
                            )
                            .await;
                        if accepted.is_ok() {
                            let _ = via
                                .execute(
                                    tenant,
                                    Operation::End {
                                        contact: offer.contact,
                                    },
                                )
                                .await;
                        }
                        // Refused (it rang out meanwhile) or unavailable
                        // (the owner died): it rings out and is re-offered.
                    });
                }
                for change in &notice.agent_events {
                    if matches!(change.to, AgentState::NotReady { .. }) {
                        let via = via.clone();
                        let agent = change.agent;
                        tokio::spawn(async move {
                            let _ = via
                                .execute(
                                    tenant,
                                    Operation::SetPresence {
                                        agent,
                                        presence: Presence::Available,
                                    },
                                )
                                .await;
                        });
                    }
                }
            }
        })
    };

    // Callers: 2,000 calls, the first half through both instances, then
    // the owner crashes and the rest go through the survivor.
    let mut calls = Vec::with_capacity(CALLS);
    let mut running_first = Some(running_first);
    for n in 0..CALLS {
        if n == CALLS / 2 {
            alive.store(false, std::sync::atomic::Ordering::SeqCst);
            running_first.take().unwrap().abort();
        }
        let via = if n < CALLS / 2 && n % 2 == 0 {
            &first
        } else {
            &second
        };
        let contact = ContactId::new();
        let call = Contact::new(contact, queues[n % 4], Channel::Voice, Utc::now());
        let mut attempts = 0;
        loop {
            match via
                .execute(
                    tenant,
                    Operation::Enqueue {
                        contact: call.clone(),
                    },
                )
                .await
            {
                Ok(_) => break,
                // Unavailable while the tenant moves; a duplicate means the
                // previous attempt did land.
                Err(RoutingError::Refused(refusal)) if refusal.kind == RefusalKind::Conflict => {
                    break;
                }
                Err(error) => {
                    attempts += 1;
                    assert!(attempts < 20, "call {n} never queued: {error:?}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        calls.push(contact);
        if n % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(
        eventually(Duration::from_secs(90), || async {
            ended.lock().unwrap().len() == CALLS
        })
        .await,
        "only {} of {CALLS} calls ended",
        ended.lock().unwrap().len()
    );
    desk.abort();
    running_second.stop().await;

    // The history, from the outbox.
    let events = events_of(&backends.database, tenant).await;
    let ids: HashSet<_> = events.iter().map(|event| event.id).collect();
    assert_eq!(ids.len(), events.len(), "an event is in the outbox twice");
    let mut queued: HashMap<String, u32> = HashMap::new();
    let mut ended_events: HashMap<String, u32> = HashMap::new();
    // Per agent: the calls offered to or connected at it now.
    let mut holding: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    // Per call: the agent it is offered to or connected at now.
    let mut at_agent: HashMap<String, String> = HashMap::new();
    let mut last_state: HashMap<String, i32> = HashMap::new();
    for event in &events {
        match &event.payload {
            Payload::ContactQueued(queued_event) => {
                *queued.entry(queued_event.contact_id.clone()).or_default() += 1;
            }
            Payload::ContactOffered(offered) => {
                assert!(
                    !at_agent.contains_key(&offered.contact_id),
                    "call {} offered while already at {}",
                    offered.contact_id,
                    at_agent[&offered.contact_id]
                );
                let held = holding.entry(offered.agent_id.clone()).or_default();
                assert!(
                    held.is_empty(),
                    "agent {} reserved for {} while holding {held:?}",
                    offered.agent_id,
                    offered.contact_id
                );
                held.insert(offered.contact_id.clone());
                at_agent.insert(offered.contact_id.clone(), offered.agent_id.clone());
            }
            Payload::ContactRequeued(requeued) => {
                assert_eq!(
                    at_agent.remove(&requeued.contact_id),
                    Some(requeued.agent_id.clone())
                );
                holding
                    .get_mut(&requeued.agent_id)
                    .unwrap()
                    .remove(&requeued.contact_id);
            }
            Payload::ContactConnected(connected) => {
                assert_eq!(
                    at_agent.get(&connected.contact_id),
                    Some(&connected.agent_id)
                );
            }
            Payload::ContactEnded(ended_event) => {
                *ended_events
                    .entry(ended_event.contact_id.clone())
                    .or_default() += 1;
                let agent = at_agent.remove(&ended_event.contact_id).unwrap();
                holding
                    .get_mut(&agent)
                    .unwrap()
                    .remove(&ended_event.contact_id);
            }
            Payload::ContactAbandoned(abandoned) => {
                panic!("nobody abandons here: {abandoned:?}")
            }
            Payload::AgentStateChanged(change) => {
                let from = change.from.as_ref().unwrap().kind;
                if let Some(previous) = last_state.get(&change.agent_id) {
                    assert_eq!(
                        *previous, from,
                        "agent {} state chain broken",
                        change.agent_id
                    );
                }
                last_state.insert(change.agent_id.clone(), change.to.as_ref().unwrap().kind);
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert_eq!(queued.len(), CALLS, "every call queued");
    assert!(queued.values().all(|n| *n == 1), "a call queued twice");
    assert_eq!(ended_events.len(), CALLS, "every call ended");
    assert!(ended_events.values().all(|n| *n == 1), "a call ended twice");
    for call in &calls {
        assert_eq!(queued.get(&call.to_string()), Some(&1));
    }
    assert!(at_agent.is_empty(), "calls left at agents: {at_agent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_two_instances_one_crashing() {
    two_instances_one_crashing(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_two_instances_one_crashing() {
    two_instances_one_crashing(true).await;
}
