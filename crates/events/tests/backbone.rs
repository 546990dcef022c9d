//! The event backbone end to end: outbox, relay, consumers, replay and
//! retention, on PostgreSQL (as the non-owner service role, under
//! row-level security) with RabbitMQ, and on SQLite with the in-process
//! bus (`switchboard dev`), including broker, database and process
//! failures.
//!
//! A consumer's effect is a row in `test_effects` (no unique constraint)
//! written by its handler in the transaction it is given: "exactly once"
//! means as many rows as events, and as many distinct event ids.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use futures::FutureExt;
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};
use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, ExprTrait, RuntimeErr, Statement,
    TransactionTrait,
};
use switchboard_events::outbox::{self, partition_of};
use switchboard_events::pack;
use switchboard_events::proto::envelope::Payload;
use switchboard_events::proto::{SeatCountChanged, TenantCreated, UserDeleted};
use switchboard_events::{
    Consumer, ConsumerOptions, Event, EventHandler, HandlerError, Relay, RelayOptions, replay,
};
use switchboard_migrations::{Migrator, MigratorTrait};
use switchboard_platform::bus::{MemoryBus, RabbitMqBus, broker_queue_name};
use switchboard_platform::database::DatabaseOptions;
use switchboard_platform::{Bus, Database, QueueSpec, dead_letter_queue, retry_queue};
use switchboard_tenancy::TenantId;
use switchboard_test_utils::{
    TcpProxy, amqp_url, eventually, fresh_postgres_database, fresh_sqlite_database, init_tracing,
    postgres_app_role_url, postgres_system_role_url, unique_name,
};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Long enough for anything that should happen, outages included.
const WAIT: Duration = Duration::from_secs(30);

/// Events above their partition's relay cursor: not (known to be) published.
const UNPUBLISHED: &str = "SELECT COUNT(*) AS n FROM event_log WHERE seq > \
    (SELECT c.seq FROM relay_cursors c WHERE c.partition = event_log.partition)";
/// Events at or below their partition's relay cursor.
const PUBLISHED: &str = "SELECT COUNT(*) AS n FROM event_log WHERE seq <= \
    (SELECT c.seq FROM relay_cursors c WHERE c.partition = event_log.partition)";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    /// PostgreSQL as the service role, RabbitMQ.
    Production,
    /// SQLite and the in-process bus.
    Embedded,
}

/// One test's database, bus and the names it declared.
struct Harness {
    backend: Backend,
    /// The tables' owner: creates `test_effects`, counts, edits leases.
    admin: Database,
    /// What services use (the non-owner role on PostgreSQL).
    db: Database,
    /// The URL of `db`, for connecting through a proxy.
    service_url: String,
    /// The URL of `db`'s system pool (the system workers' role on
    /// PostgreSQL).
    system_url: String,
    bus: Arc<dyn Bus>,
    exchange: String,
    queues: Mutex<Vec<String>>,
    /// Cancelled at the end: stops every relay and consumer.
    shutdown: CancellationToken,
    _dir: Option<tempfile::TempDir>,
}

impl Harness {
    async fn start(backend: Backend) -> Arc<Self> {
        init_tracing();
        let options = DatabaseOptions {
            max_connections: 16,
            ..DatabaseOptions::default()
        };
        let (admin_url, service_url, system_url, dir) = match backend {
            Backend::Production => {
                let url = fresh_postgres_database().await;
                let admin = Database::connect(&url, &DatabaseOptions::default())
                    .await
                    .unwrap();
                Migrator::up(admin.connection(), None).await.unwrap();
                admin.close().await;
                let service = postgres_app_role_url(&url).await;
                let system = postgres_system_role_url(&url).await;
                (url, service, system, None)
            }
            Backend::Embedded => {
                let (url, dir) = fresh_sqlite_database();
                (url.clone(), url.clone(), url, Some(dir))
            }
        };
        let admin = Database::connect(&admin_url, &options).await.unwrap();
        if backend == Backend::Embedded {
            Migrator::up(admin.connection(), None).await.unwrap();
        }
        admin
            .connection()
            .execute_unprepared(
                "CREATE TABLE test_effects (consumer text NOT NULL, event_id uuid NOT NULL, tenant_id uuid NOT NULL)",
            )
            .await
            .unwrap();
        if backend == Backend::Production {
            admin
                .connection()
                .execute_unprepared("GRANT ALL ON test_effects TO switchboard_app")
                .await
                .unwrap();
        }
        let db = Database::connect(&service_url, &options)
            .await
            .unwrap()
            .with_system(Database::connect(&system_url, &options).await.unwrap())
            .unwrap();
        let exchange = unique_name("ex");
        let bus: Arc<dyn Bus> = match backend {
            Backend::Production => Arc::new(
                RabbitMqBus::connect(&amqp_url(), &exchange, 0)
                    .await
                    .expect("RabbitMQ is reachable (./scripts/test starts it)"),
            ),
            Backend::Embedded => Arc::new(MemoryBus::new()),
        };
        Arc::new(Self {
            backend,
            admin,
            db,
            service_url,
            system_url,
            bus,
            exchange,
            queues: Mutex::new(Vec::new()),
            shutdown: CancellationToken::new(),
            _dir: dir,
        })
    }

    fn backend(&self) -> DbBackend {
        self.admin.backend()
    }

    /// Remembers a queue (and its retry and dead-letter queues) for cleanup.
    fn track(&self, queue: &str) {
        self.queues.lock().unwrap().push(queue.to_owned());
    }

    /// Stops relays and consumers; on RabbitMQ deletes what the test
    /// declared (best effort).
    async fn cleanup(&self) {
        self.shutdown.cancel();
        if self.backend != Backend::Production {
            return;
        }
        let _ = timeout(Duration::from_secs(5), self.bus.close()).await;
        let queues = self.queues.lock().unwrap().clone();
        let delete = async {
            let connection =
                Connection::connect(&amqp_url(), ConnectionProperties::default()).await?;
            for queue in queues {
                for name in [retry_queue(&queue), dead_letter_queue(&queue), queue] {
                    let name = broker_queue_name(&self.exchange, &name);
                    let channel = connection.create_channel().await?;
                    let _ = channel
                        .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                        .await;
                    let _ = channel.close(200, "OK".into()).await;
                }
            }
            let channel = connection.create_channel().await?;
            channel
                .exchange_delete(
                    self.exchange.as_str().into(),
                    ExchangeDeleteOptions::default(),
                )
                .await?;
            connection.close(200, "OK".into()).await
        };
        match timeout(Duration::from_secs(10), delete).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(error = %error, "test cleanup failed"),
            Err(_) => tracing::warn!("test cleanup timed out"),
        }
    }

    /// Relay options for tests: quick rounds, long leases, no sweeping.
    fn relay_options(&self) -> RelayOptions {
        RelayOptions {
            holder: unique_name("relay"),
            poll_interval: Duration::from_millis(10),
            batch_size: 500,
            lease_ttl: Duration::from_secs(10),
            retention: Duration::from_secs(24 * 3600),
            sweep_interval: Duration::from_secs(3600),
            ..RelayOptions::default()
        }
    }

    fn start_relay(&self, bus: Arc<dyn Bus>, db: Database, options: RelayOptions) -> Running {
        let cancel = self.shutdown.child_token();
        let task = Relay::new(db, bus, options).spawn(cancel.clone());
        Running { cancel, task }
    }

    /// The usual relay, on the harness's database and bus.
    fn relay(&self) -> Running {
        self.start_relay(self.bus.clone(), self.db.clone(), self.relay_options())
    }

    /// Options of a consumer bound to everything, with quick retries.
    fn consumer_options(&self, name: &str) -> ConsumerOptions {
        let mut options = ConsumerOptions::new(name, ["#"]);
        options.retry_delay = Duration::from_millis(100);
        options.max_attempts = 3;
        options
    }

    /// Declares the consumer's queue (so nothing published from now on is
    /// missed), then starts it.
    async fn start_consumer(
        &self,
        bus: Arc<dyn Bus>,
        db: Database,
        options: ConsumerOptions,
        handler: Arc<Recorder>,
    ) -> Running {
        self.track(&options.name);
        let consumer = Consumer::new(db, bus, options, handler);
        consumer.declare().await.unwrap();
        let cancel = self.shutdown.child_token();
        let task = consumer.spawn(cancel.clone());
        Running { cancel, task }
    }

    /// A consumer on the harness's database and bus, recording into
    /// `test_effects`.
    async fn consumer(&self, name: &str) -> (Arc<Recorder>, Running) {
        let recorder = Recorder::new(name);
        let running = self
            .start_consumer(
                self.bus.clone(),
                self.db.clone(),
                self.consumer_options(name),
                recorder.clone(),
            )
            .await;
        (recorder, running)
    }

    /// Appends `count` events of `tenant` in committed transactions of up
    /// to 500; returns their ids.
    async fn append(&self, tenant: TenantId, count: usize) -> Vec<Uuid> {
        let mut ids = Vec::with_capacity(count);
        let mut start = 0;
        while start < count {
            let events: Vec<Event> = (start..count.min(start + 500))
                .map(|n| seat_event(tenant, n))
                .collect();
            let transaction = begin_tenant(&self.db, tenant).await;
            outbox::append(&transaction, &events).await.unwrap();
            transaction.commit().await.unwrap();
            ids.extend(events.iter().map(|event| event.id));
            start += events.len();
        }
        ids
    }

    /// Appends a marker event (which recorders keep in memory, not in
    /// `test_effects`); returns its id.
    async fn append_marker(&self) -> Uuid {
        let tenant = TenantId::new();
        let marker = Event::new(
            tenant,
            "test",
            Payload::TenantCreated(TenantCreated {
                tenant_id: tenant.to_string(),
                name: "marker".into(),
                ..TenantCreated::default()
            }),
        );
        let transaction = begin_tenant(&self.db, tenant).await;
        outbox::append(&transaction, std::slice::from_ref(&marker))
            .await
            .unwrap();
        transaction.commit().await.unwrap();
        marker.id
    }

    /// Appends a marker event and waits until every recorder has handled
    /// it: they have then handled everything published before it.
    async fn barrier(&self, recorders: &[&Recorder]) {
        let marker = self.append_marker().await;
        let reached = eventually(WAIT, || async {
            recorders
                .iter()
                .all(|recorder| recorder.markers.lock().unwrap().contains(&marker))
        })
        .await;
        assert!(reached, "the barrier event did not reach every consumer");
    }

    /// `(rows, distinct event ids)` in `test_effects` for `consumer`.
    async fn effects(&self, consumer: &str) -> (i64, i64) {
        let query = Query::select()
            .expr_as(Expr::col(Alias::new("event_id")).count(), "n")
            .expr_as(Expr::col(Alias::new("event_id")).count_distinct(), "d")
            .from(Alias::new("test_effects"))
            .and_where(Expr::col(Alias::new("consumer")).eq(consumer))
            .to_owned();
        let row = self
            .admin
            .connection()
            .query_one(&query)
            .await
            .unwrap()
            .unwrap();
        (row.try_get("", "n").unwrap(), row.try_get("", "d").unwrap())
    }

    /// Rows in `test_effects` for `consumer` and `tenant`.
    async fn effects_of(&self, consumer: &str, tenant: TenantId) -> i64 {
        let query = Query::select()
            .expr_as(Expr::col(Alias::new("event_id")).count(), "n")
            .from(Alias::new("test_effects"))
            .and_where(Expr::col(Alias::new("consumer")).eq(consumer))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant.as_uuid()))
            .to_owned();
        let row = self
            .admin
            .connection()
            .query_one(&query)
            .await
            .unwrap()
            .unwrap();
        row.try_get("", "n").unwrap()
    }

    /// The event ids in `test_effects` for `consumer`.
    async fn effect_ids(&self, consumer: &str) -> HashSet<Uuid> {
        let query = Query::select()
            .column(Alias::new("event_id"))
            .from(Alias::new("test_effects"))
            .and_where(Expr::col(Alias::new("consumer")).eq(consumer))
            .to_owned();
        self.admin
            .connection()
            .query_all(&query)
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get("", "event_id").unwrap())
            .collect()
    }

    /// Waits until `consumer` has exactly one effect per id in `expected`.
    async fn wait_exactly_once(&self, consumer: &str, expected: &HashSet<Uuid>) {
        let n = i64::try_from(expected.len()).unwrap();
        let reached = eventually(WAIT, || async { self.effects(consumer).await.1 >= n }).await;
        let (rows, distinct) = self.effects(consumer).await;
        assert!(
            reached,
            "{consumer}: {distinct} of {n} events applied ({rows} effect rows)"
        );
        assert_eq!(
            &self.effect_ids(consumer).await,
            expected,
            "{consumer}: applied other events"
        );
        assert_eq!(rows, n, "{consumer}: applied twice");
    }

    /// Marks events published as the relay does, by moving cursors: every
    /// partition's past the last event, or (`only`) the event's partition
    /// up to it.
    async fn mark_published(&self, only: Option<Uuid>) {
        let sql = match only {
            Some(id) => format!(
                "UPDATE relay_cursors SET seq = (SELECT seq FROM event_log WHERE id = '{id}') \
                 WHERE partition = (SELECT partition FROM event_log WHERE id = '{id}') \
                 AND seq < (SELECT seq FROM event_log WHERE id = '{id}')"
            ),
            None => "UPDATE relay_cursors SET seq = (SELECT MAX(seq) FROM event_log)".to_owned(),
        };
        self.admin
            .connection()
            .execute_raw(Statement::from_string(self.backend(), sql))
            .await
            .unwrap();
    }

    /// `consumer`'s processed marks.
    async fn marks(&self, consumer: &str) -> i64 {
        self.count(&format!(
            "SELECT COUNT(*) AS n FROM processed_events WHERE consumer = '{consumer}'"
        ))
        .await
    }

    /// `SELECT COUNT(*) AS n …` as the owner.
    async fn count(&self, sql: &str) -> i64 {
        let row = self
            .admin
            .connection()
            .query_one_raw(Statement::from_string(self.backend(), sql.to_owned()))
            .await
            .unwrap()
            .unwrap();
        row.try_get("", "n").unwrap()
    }

    /// A queue bound to `#` that counts every event the bus carries.
    async fn tally(&self) -> Tally {
        let spec = QueueSpec::new(unique_name("raw"), ["#"]).with_prefetch(500);
        self.track(&spec.name);
        let mut subscription = self.bus.subscribe(&spec).await.unwrap();
        let tally = Tally::default();
        let (counts, packed, others) = (
            tally.counts.clone(),
            tally.packed.clone(),
            tally.others.clone(),
        );
        let cancel = self.shutdown.child_token();
        tokio::spawn(async move {
            loop {
                let delivery = tokio::select! {
                    () = cancel.cancelled() => return,
                    next = subscription.next() => match next {
                        Ok(Some(delivery)) => delivery,
                        _ => return,
                    },
                };
                match decode_all(&delivery.payload) {
                    Ok(events) => {
                        let is_packed = pack::is_packed(&delivery.payload);
                        for event in events {
                            *counts.lock().unwrap().entry(event.id).or_default() += 1;
                            if is_packed {
                                packed.lock().unwrap().insert(event.id);
                            }
                        }
                    }
                    Err(_) => others
                        .lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&delivery.payload).into_owned()),
                }
                let _ = delivery.ack().await;
            }
        });
        tally
    }
}

/// A running relay or consumer.
struct Running {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    /// A graceful stop (a relay hands its leases back).
    async fn stop(self) {
        self.cancel.cancel();
        timeout(WAIT, self.task)
            .await
            .expect("stops when cancelled")
            .unwrap();
    }

    /// A crash: the task is gone mid-work, nothing is handed back.
    async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// How often each event went over the bus, and which went packed.
#[derive(Default, Clone)]
struct Tally {
    counts: Arc<Mutex<HashMap<Uuid, u32>>>,
    /// Events seen in a packed message.
    packed: Arc<Mutex<HashSet<Uuid>>>,
    /// Payloads that are not events (markers published by the test).
    others: Arc<Mutex<Vec<String>>>,
}

impl Tally {
    fn counts(&self) -> HashMap<Uuid, u32> {
        self.counts.lock().unwrap().clone()
    }

    fn packed(&self) -> HashSet<Uuid> {
        self.packed.lock().unwrap().clone()
    }

    /// Publishes a marker straight on the bus and waits for it: everything
    /// published before it has been counted.
    async fn drain(&self, bus: &dyn Bus) {
        let marker = unique_name("marker");
        bus.publish("marker.test.drain", marker.clone().into())
            .await
            .unwrap();
        let seen = eventually(WAIT, || async {
            self.others.lock().unwrap().contains(&marker)
        })
        .await;
        assert!(seen, "the raw queue did not drain");
    }
}

/// The test consumer: records each event in `test_effects` in the given
/// transaction; refuses `poison`; keeps barrier markers in memory.
struct Recorder {
    consumer: String,
    poison: HashSet<Uuid>,
    poison_attempts: AtomicU32,
    /// Each tenant's events in the order the handler applied them (rolled
    /// back ones included: meaningful only where nothing fails).
    order: Mutex<HashMap<TenantId, Vec<Uuid>>>,
    /// Events whose handling fails that many more times as if the
    /// database connection broke.
    unreachable: Mutex<HashMap<Uuid, u32>>,
    markers: Mutex<HashSet<Uuid>>,
}

impl Recorder {
    fn new(consumer: &str) -> Arc<Self> {
        Self::refusing(consumer, [])
    }

    fn refusing(consumer: &str, poison: impl IntoIterator<Item = Uuid>) -> Arc<Self> {
        Arc::new(Self {
            consumer: consumer.to_owned(),
            poison: poison.into_iter().collect(),
            poison_attempts: AtomicU32::new(0),
            order: Mutex::new(HashMap::new()),
            unreachable: Mutex::new(HashMap::new()),
            markers: Mutex::new(HashSet::new()),
        })
    }
}

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(
        &self,
        transaction: &DatabaseTransaction,
        event: &Event,
    ) -> Result<(), HandlerError> {
        if matches!(event.payload, Payload::TenantCreated(_)) {
            self.markers.lock().unwrap().insert(event.id);
            return Ok(());
        }
        if let Some(left) = self.unreachable.lock().unwrap().get_mut(&event.id)
            && *left > 0
        {
            *left -= 1;
            let reset = std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection reset by peer",
            );
            let error = DbErr::Exec(RuntimeErr::SqlxError(Arc::new(sea_orm::sqlx::Error::Io(
                reset,
            ))));
            return Err(error.into());
        }
        if self.poison.contains(&event.id) {
            self.poison_attempts.fetch_add(1, Ordering::SeqCst);
            return Err(HandlerError::new(format!(
                "poison event {} refused",
                event.id
            )));
        }
        let insert = Query::insert()
            .into_table(Alias::new("test_effects"))
            .columns([
                Alias::new("consumer"),
                Alias::new("event_id"),
                Alias::new("tenant_id"),
            ])
            .values_panic([
                self.consumer.clone().into(),
                event.id.into(),
                event.tenant.as_uuid().into(),
            ])
            .to_owned();
        transaction.execute(&insert).await?;
        self.order
            .lock()
            .unwrap()
            .entry(event.tenant)
            .or_default()
            .push(event.id);
        Ok(())
    }
}

/// The events of a message body, packed or single.
fn decode_all(payload: &bytes::Bytes) -> switchboard_events::Result<Vec<Event>> {
    pack::envelopes(payload)?
        .iter()
        .map(|envelope| Event::decode(envelope))
        .collect()
}

fn user_deleted_event(tenant: TenantId) -> Event {
    Event::new(
        tenant,
        "test",
        Payload::UserDeleted(UserDeleted {
            user_id: Uuid::now_v7().to_string(),
        }),
    )
}

fn seat_event(tenant: TenantId, n: usize) -> Event {
    Event::new(
        tenant,
        "test",
        Payload::SeatCountChanged(SeatCountChanged {
            seats: u32::try_from(n).unwrap_or(u32::MAX),
            delta: 1,
            user_id: String::new(),
        }),
    )
}

/// A transaction confined to `tenant`, as a service opens it.
async fn begin_tenant(db: &Database, tenant: TenantId) -> DatabaseTransaction {
    let transaction = db.begin().await.unwrap();
    set_scope(&transaction, "app.tenant_id", &tenant.to_string()).await;
    transaction
}

async fn set_scope(transaction: &DatabaseTransaction, setting: &str, value: &str) {
    if transaction.get_database_backend() == DbBackend::Postgres {
        transaction
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT set_config($1, $2, true)",
                [setting.into(), value.into()],
            ))
            .await
            .unwrap();
    }
}

/// Tenants whose events go to different relay partitions than `avoid`.
fn tenant_outside(avoid: &[i16]) -> TenantId {
    loop {
        let tenant = TenantId::new();
        if !avoid.contains(&partition_of(tenant)) {
            return tenant;
        }
    }
}

/// The address behind a URL's host and port.
async fn resolve(url: &str, default_port: u16) -> SocketAddr {
    let url = url::Url::parse(url).expect("URL parses");
    let host = url.host_str().expect("URL has a host").to_owned();
    let port = url.port().unwrap_or(default_port);
    tokio::net::lookup_host((host.as_str(), port))
        .await
        .expect("host resolves")
        .next()
        .expect("host has an address")
}

/// `url` pointed at `addr` instead.
fn url_via(url: &str, addr: SocketAddr) -> String {
    let mut url = url::Url::parse(url).expect("URL parses");
    url.set_host(Some(&addr.ip().to_string()))
        .expect("host can be set");
    url.set_port(Some(addr.port())).expect("port can be set");
    url.to_string()
}

// ---------------------------------------------------------------------------

async fn committed_events_reach_a_consumer_exactly_once_and_rolled_back_ones_never(
    h: Arc<Harness>,
) {
    let name = unique_name("c");
    let (_recorder, _consumer) = h.consumer(&name).await;
    let tenants: Vec<TenantId> = (0..3).map(|_| TenantId::new()).collect();
    let mut committed = HashSet::new();
    let mut rolled_back = HashSet::new();
    for round in 0..4 {
        for &tenant in &tenants {
            committed.extend(h.append(tenant, 5).await);
            if round == 1 {
                let events: Vec<Event> = (0..5).map(|n| seat_event(tenant, n)).collect();
                let transaction = begin_tenant(&h.db, tenant).await;
                outbox::append(&transaction, &events).await.unwrap();
                transaction.rollback().await.unwrap();
                rolled_back.extend(events.iter().map(|event| event.id));
            }
        }
    }
    let _relay = h.relay();

    h.wait_exactly_once(&name, &committed).await;
    for &tenant in &tenants {
        assert_eq!(h.effects_of(&name, tenant).await, 20);
    }
    assert!(h.effect_ids(&name).await.is_disjoint(&rolled_back));
    assert_eq!(h.count("SELECT COUNT(*) AS n FROM event_log").await, 60);
    assert!(eventually(WAIT, || async { h.count(UNPUBLISHED).await == 0 }).await);
    // An event its consumers could not decode is refused when written.
    let mut bad = seat_event(tenants[0], 0);
    bad.source = "not.one.word".into();
    let transaction = begin_tenant(&h.db, tenants[0]).await;
    let error = outbox::append(&transaction, &[bad]).await.unwrap_err();
    assert!(error.to_string().contains("one non-empty word"), "{error}");
    drop(transaction);

    // More events later are applied once too, the earlier ones not again.
    let later = h.append(tenants[0], 7).await;
    committed.extend(later);
    h.wait_exactly_once(&name, &committed).await;
}

/// 10,000 events, each its own message, through a failure of the bus: on
/// RabbitMQ its connection is cut and restored mid-way; in memory `dev`
/// "crashes" (relay and consumer killed, the bus with everything queued
/// thrown away) and a new process starts on the same database.
async fn ten_thousand_events_survive_a_bus_failure_exactly_once(h: Arc<Harness>) {
    survive_a_bus_failure(h, false).await;
}

/// The same with the relay packing events (up to 64 per message).
async fn ten_thousand_packed_events_survive_a_bus_failure_exactly_once(h: Arc<Harness>) {
    survive_a_bus_failure(h, true).await;
}

async fn survive_a_bus_failure(h: Arc<Harness>, packed: bool) {
    const EVENTS: usize = 10_000;
    let tenants: Vec<TenantId> = (0..4).map(|_| TenantId::new()).collect();
    let mut expected = HashSet::new();
    for &tenant in &tenants {
        expected.extend(h.append(tenant, EVENTS / tenants.len()).await);
    }
    let name = unique_name("c");
    let recorder = Recorder::new(&name);
    let mut options = h.relay_options();
    options.lease_ttl = Duration::from_millis(500);
    // Small batches: the relay is still at work when the failure comes.
    if packed {
        // A round is one or two packed messages.
        options.batch_size = 64;
    } else {
        options.pack_events = 1;
        options.batch_size = 200;
    }
    if h.backend == Backend::Embedded {
        // The in-process bus takes a round in microseconds: only the
        // database's commits pace the relay, so rounds must be many.
        options.batch_size = 20;
    }
    let unpublished = UNPUBLISHED;
    // The cut comes once the relay has published a fifth and the consumer
    // applied some. In memory the relay can publish everything while the
    // consumer applies its first thousand (a fresh clone's run saw the
    // crash come after the relay was done), so there the consumer's first
    // effect is enough; the unpublished count, read last, is the one the
    // cut races.
    let applied_before_cut = match h.backend {
        Backend::Embedded => 1,
        Backend::Production => 1_000,
    };
    let halfway = || async {
        h.effects(&name).await.1 >= applied_before_cut && h.count(unpublished).await <= 8_000
    };
    match h.backend {
        Backend::Production => {
            let tally = h.tally().await;
            let proxy = TcpProxy::start(resolve(&amqp_url(), 5672).await)
                .await
                .unwrap();
            let bus: Arc<dyn Bus> = Arc::new(
                RabbitMqBus::connect(&url_via(&amqp_url(), proxy.addr()), &h.exchange, 0)
                    .await
                    .unwrap(),
            );
            let _consumer = h
                .start_consumer(
                    bus.clone(),
                    h.db.clone(),
                    h.consumer_options(&name),
                    recorder.clone(),
                )
                .await;
            let _relay = h.start_relay(bus.clone(), h.db.clone(), options);
            assert!(
                eventually(WAIT, halfway).await,
                "no progress before the cut"
            );
            let left = h.count(unpublished).await;
            proxy.close();
            assert!(
                eventually(WAIT, || async { bus.ping().await.is_err() }).await,
                "the bus did not notice the cut"
            );
            proxy.reopen();
            h.wait_exactly_once(&name, &expected).await;
            assert!(left > 0, "the cut came after the relay was done");
            tally.drain(h.bus.as_ref()).await;
            let went_packed = tally.packed().len();
            if packed {
                assert!(
                    went_packed >= EVENTS / 2,
                    "{went_packed} events went packed"
                );
            } else {
                assert_eq!(went_packed, 0, "events went packed");
            }
        }
        Backend::Embedded => {
            let first: Arc<dyn Bus> = Arc::new(MemoryBus::new());
            let consumer = h
                .start_consumer(
                    first.clone(),
                    h.db.clone(),
                    h.consumer_options(&name),
                    recorder.clone(),
                )
                .await;
            let relay = h.start_relay(first.clone(), h.db.clone(), options.clone());
            assert!(
                eventually(WAIT, halfway).await,
                "no progress before the crash"
            );
            relay.kill().await;
            consumer.kill().await;
            drop(first);
            assert!(
                h.count(unpublished).await > 0,
                "the crash came after the relay was done"
            );

            let second: Arc<dyn Bus> = Arc::new(MemoryBus::new());
            options.holder = unique_name("relay");
            let _relay = h.start_relay(second.clone(), h.db.clone(), options);
            let _consumer = h
                .start_consumer(
                    second.clone(),
                    h.db.clone(),
                    h.consumer_options(&name),
                    Recorder::new(&name),
                )
                .await;
            h.wait_exactly_once(&name, &expected).await;
        }
    }
}

/// PostgreSQL goes away (the service's connections are cut and new ones
/// refused) while the relay and a consumer are busy, then comes back.
async fn database_outage_while_relaying_and_consuming_loses_nothing(h: Arc<Harness>) {
    const EVENTS: usize = 3_000;
    let tenants: Vec<TenantId> = (0..3).map(|_| TenantId::new()).collect();
    let mut expected = HashSet::new();
    for &tenant in &tenants {
        expected.extend(h.append(tenant, EVENTS / tenants.len()).await);
    }
    let proxy = TcpProxy::start(resolve(&h.service_url, 5432).await)
        .await
        .unwrap();
    let options = DatabaseOptions {
        max_connections: 8,
        connect_timeout: Duration::from_secs(1),
    };
    let db = Database::connect(&url_via(&h.service_url, proxy.addr()), &options)
        .await
        .unwrap()
        .with_system(
            Database::connect(&url_via(&h.system_url, proxy.addr()), &options)
                .await
                .unwrap(),
        )
        .unwrap();
    let name = unique_name("c");
    let mut consumer_options = h.consumer_options(&name);
    consumer_options.batch_size = 32;
    let _consumer = h
        .start_consumer(
            h.bus.clone(),
            db.clone(),
            consumer_options,
            Recorder::new(&name),
        )
        .await;
    let mut relay_options = h.relay_options();
    relay_options.batch_size = 100;
    let _relay = h.start_relay(h.bus.clone(), db.clone(), relay_options);

    assert!(
        eventually(WAIT, || async { h.effects(&name).await.1 >= 300 }).await,
        "no progress before the outage"
    );
    proxy.close();
    assert!(
        eventually(WAIT, || async { db.ping().await.is_err() }).await,
        "the database stayed reachable"
    );
    let during = h.effects(&name).await.1;
    tokio::time::sleep(Duration::from_millis(300)).await; // the outage lasts a moment
    proxy.reopen();
    h.wait_exactly_once(&name, &expected).await;
    assert!(during < 3_000, "the outage came after the end");
    assert!(eventually(WAIT, || async { h.count(UNPUBLISHED).await == 0 }).await);
}

async fn a_relay_killed_between_publish_and_mark_duplicates_but_applies_once(h: Arc<Harness>) {
    let tally = h.tally().await;
    let name = unique_name("c");
    let (recorder, _consumer) = h.consumer(&name).await;
    let tenants = [TenantId::new(), TenantId::new()];
    let mut expected = HashSet::new();
    for tenant in tenants {
        expected.extend(h.append(tenant, 25).await);
    }

    let mut options = h.relay_options();
    options.lease_ttl = Duration::from_millis(300);
    let killed = Relay::new(h.db.clone(), h.bus.clone(), options);
    assert_eq!(killed.publish_without_marking().await.unwrap(), 50);
    drop(killed);
    // A replica takes over once the dead relay's leases expire.
    let _relay = h.relay();

    assert!(
        eventually(WAIT, || async {
            let counts = tally.counts();
            expected.iter().all(|id| counts.get(id) == Some(&2))
        })
        .await,
        "every event published twice: {:?}",
        tally.counts().values().collect::<Vec<_>>()
    );
    h.barrier(&[&recorder]).await;
    tally.drain(h.bus.as_ref()).await;
    assert!(
        tally
            .counts()
            .iter()
            .all(|(id, count)| !expected.contains(id) || *count == 2),
        "published more than twice"
    );
    h.wait_exactly_once(&name, &expected).await;
    let marks = h.marks(&name).await;
    assert_eq!(marks, 51, "one mark per event and the barrier");
}

async fn applied_events_delivered_again_among_new_ones_apply_once(h: Arc<Harness>) {
    let tenants = [TenantId::new(), TenantId::new()];
    let first: Vec<Event> = (0..20).map(|n| seat_event(tenants[n % 2], n)).collect();
    let second: Vec<Event> = (20..40).map(|n| seat_event(tenants[n % 2], n)).collect();
    let publish = |events: Vec<Event>| {
        let bus = h.bus.clone();
        async move {
            for event in events {
                bus.publish(&event.routing_key(), event.encode().into())
                    .await
                    .unwrap();
            }
        }
    };
    let name = unique_name("c");
    let (_, consumer) = h.consumer(&name).await;
    publish(first.clone()).await;
    let mut expected: HashSet<Uuid> = first.iter().map(|event| event.id).collect();
    h.wait_exactly_once(&name, &expected).await;
    consumer.stop().await;

    // While it is stopped, the applied events come again, interleaved with
    // new ones: its next batches mix marked and unmarked events.
    let mixed: Vec<Event> = first
        .iter()
        .zip(&second)
        .flat_map(|(old, new)| [old.clone(), new.clone()])
        .collect();
    publish(mixed).await;
    let (recorder, _consumer) = h.consumer(&name).await;
    expected.extend(second.iter().map(|event| event.id));
    h.wait_exactly_once(&name, &expected).await;

    // And the new ones once more, alone: all marked, nothing applied.
    publish(second).await;
    let _relay = h.relay();
    h.barrier(&[&recorder]).await;
    h.wait_exactly_once(&name, &expected).await;
    let marks = h.marks(&name).await;
    assert_eq!(marks, 41, "one mark per event and the barrier");
}

async fn a_poison_event_is_retried_then_dead_lettered_without_holding_up_the_rest(h: Arc<Harness>) {
    const MAX_ATTEMPTS: u32 = 3;
    let tenant = TenantId::new();
    let ids = h.append(tenant, 20).await;
    let poison = ids[2];
    let name = unique_name("c");
    let recorder = Recorder::refusing(&name, [poison]);
    let mut options = h.consumer_options(&name);
    options.max_attempts = MAX_ATTEMPTS;
    options.retry_delay = Duration::from_millis(400);
    let _consumer = h
        .start_consumer(h.bus.clone(), h.db.clone(), options, recorder.clone())
        .await;
    let dead = QueueSpec::new(dead_letter_queue(&name), Vec::<String>::new());
    h.track(&dead.name);
    let mut dead_letters = h.bus.subscribe(&dead).await.unwrap();
    let _relay = h.relay();

    let healthy: HashSet<Uuid> = ids.iter().copied().filter(|id| *id != poison).collect();
    h.wait_exactly_once(&name, &healthy).await;
    // Its retries take at least twice the retry delay; the others did not
    // wait for them.
    if let Some(early) = dead_letters.next().now_or_never() {
        panic!("the other events waited for the poison event: {early:?}");
    }

    let parked = timeout(WAIT, dead_letters.next())
        .await
        .expect("dead-lettered in time")
        .unwrap()
        .unwrap();
    let event = Event::decode(&parked.payload).unwrap();
    assert_eq!(event.id, poison);
    assert_eq!(parked.routing_key, event.routing_key());
    assert_eq!(
        parked.attempt, MAX_ATTEMPTS,
        "dead-lettered after the last attempt"
    );
    let error = parked.last_error.clone().unwrap_or_default();
    assert!(error.contains("poison event"), "{error:?}");
    parked.ack().await.unwrap();
    // The first attempt may have run the handler twice (in a batch with
    // other events, then alone); on the in-process bus a consumer that
    // starts before the relay may also get an event twice (from its
    // catch-up and from the relay), each copy with its own attempts.
    let calls = recorder.poison_attempts.load(Ordering::SeqCst);
    assert!(
        calls >= MAX_ATTEMPTS,
        "the handler saw the poison event {calls} times"
    );

    h.barrier(&[&recorder]).await;
    h.wait_exactly_once(&name, &healthy).await;
    let marks = h.marks(&name).await;
    assert_eq!(marks, 20, "no mark for the poison event");
}

async fn a_malformed_message_is_dead_lettered_at_once_and_changes_nothing(h: Arc<Harness>) {
    let tenant = TenantId::new();
    let name = unique_name("c");
    let recorder = Recorder::new(&name);
    let _consumer = h
        .start_consumer(
            h.bus.clone(),
            h.db.clone(),
            h.consumer_options(&name),
            recorder.clone(),
        )
        .await;
    let dead = QueueSpec::new(dead_letter_queue(&name), Vec::<String>::new());
    h.track(&dead.name);
    let mut dead_letters = h.bus.subscribe(&dead).await.unwrap();
    // Not an envelope, under a key the consumer binds.
    let key = format!("{tenant}.test.seat.count_changed");
    h.bus
        .publish(&key, bytes::Bytes::from_static(b"\xff\x00 not protobuf"))
        .await
        .unwrap();
    let ids = h.append(tenant, 5).await;
    let _relay = h.relay();

    let parked = timeout(WAIT, dead_letters.next())
        .await
        .expect("dead-lettered in time")
        .unwrap()
        .unwrap();
    assert_eq!(parked.routing_key, key);
    assert_eq!(parked.attempt, 1, "no retry for what cannot be decoded");
    let error = parked.last_error.clone().unwrap_or_default();
    assert!(error.contains("malformed event"), "{error:?}");
    parked.ack().await.unwrap();

    let healthy: HashSet<Uuid> = ids.into_iter().collect();
    h.wait_exactly_once(&name, &healthy).await;
    let marks = h.marks(&name).await;
    assert_eq!(marks, 5, "nothing recorded for the malformed message");
}

async fn two_relays_publish_every_row_exactly_once(h: Arc<Harness>) {
    let tally = h.tally().await;
    let mut expected = HashSet::new();
    for _ in 0..8 {
        expected.extend(h.append(TenantId::new(), 150).await);
    }
    let mut options = h.relay_options();
    options.batch_size = 50;
    let first = h.start_relay(h.bus.clone(), h.db.clone(), options.clone());
    options.holder = unique_name("relay");
    let second = h.start_relay(h.bus.clone(), h.db.clone(), options);

    assert!(
        eventually(WAIT, || async { tally.counts().len() >= 300 }).await,
        "no progress"
    );
    // The first hands its partitions over mid-way.
    first.stop().await;
    assert!(
        eventually(WAIT, || async { h.count(UNPUBLISHED).await == 0 }).await,
        "the second relay did not take over"
    );
    second.stop().await;
    tally.drain(h.bus.as_ref()).await;
    let counts = tally.counts();
    assert_eq!(counts.keys().copied().collect::<HashSet<_>>(), expected);
    let twice: Vec<_> = counts.iter().filter(|(_, count)| **count != 1).collect();
    assert!(twice.is_empty(), "published more than once: {twice:?}");
}

async fn replay_reapplies_for_one_consumer_only(h: Arc<Harness>) {
    let since = Utc::now() - chrono::Duration::seconds(1);
    let (a, b) = (unique_name("a"), unique_name("b"));
    let (recorder_a, _consumer_a) = h.consumer(&a).await;
    let (recorder_b, _consumer_b) = h.consumer(&b).await;
    let _relay = h.relay();
    let (x, y) = (TenantId::new(), TenantId::new());
    let mut expected: HashSet<Uuid> = h.append(x, 10).await.into_iter().collect();
    expected.extend(h.append(y, 10).await);
    h.wait_exactly_once(&a, &expected).await;
    h.wait_exactly_once(&b, &expected).await;
    // Replay covers published events: the relay moves its cursor past a
    // batch in its next round, which may come after the consumers applied
    // the batch (under load it did, and the replay found nothing).
    assert!(eventually(WAIT, || async { h.count(UNPUBLISHED).await == 0 }).await);

    let published = h.count("SELECT COUNT(*) AS n FROM event_log").await;
    let requested = replay::request(&h.db, &a, since, None).await.unwrap();
    assert_eq!(i64::try_from(requested).unwrap(), published);
    assert!(
        eventually(WAIT, || async { h.effects(&a).await == (40, 20) }).await,
        "A did not apply the replay: {:?}",
        h.effects(&a).await
    );
    h.barrier(&[&recorder_a, &recorder_b]).await;
    assert_eq!(h.effects(&a).await, (40, 20));
    assert_eq!(h.effects(&b).await, (20, 20), "B got the replay too");

    let requested = replay::request(&h.db, &a, since, Some(x)).await.unwrap();
    assert_eq!(requested, 10);
    assert!(
        eventually(WAIT, || async { h.effects_of(&a, x).await == 30 }).await,
        "A did not apply the tenant's replay"
    );
    h.barrier(&[&recorder_a, &recorder_b]).await;
    assert_eq!(h.effects_of(&a, x).await, 30);
    assert_eq!(h.effects_of(&a, y).await, 20);
    assert_eq!(h.effects(&b).await, (20, 20));
    let requests = h
        .count("SELECT COUNT(*) AS n FROM event_redeliveries")
        .await;
    assert_eq!(requests, 0, "sent requests are removed");

    let future = Utc::now() + chrono::Duration::hours(1);
    assert!(replay::request(&h.db, &a, future, None).await.is_err());
}

async fn retention_sweep_removes_published_events_and_keeps_the_outbox(h: Arc<Harness>) {
    // Another (live) relay holds the partition of `held`: its events stay
    // unpublished. Ours gets partition 0, so it sweeps.
    let held = tenant_outside(&[0]);
    let published = tenant_outside(&[0, partition_of(held)]);
    let expires = Utc::now() + chrono::Duration::hours(1);
    let lease = Query::update()
        .table(Alias::new("relay_leases"))
        .value(Alias::new("holder"), "elsewhere")
        .value(Alias::new("expires_at"), expires)
        .and_where(Expr::col(Alias::new("partition")).eq(partition_of(held)))
        .to_owned();
    h.admin.connection().execute(&lease).await.unwrap();
    let name = unique_name("c");
    let options = ConsumerOptions::new(&name, [format!("{published}.#")]);
    let _consumer = h
        .start_consumer(h.bus.clone(), h.db.clone(), options, Recorder::new(&name))
        .await;
    let expected: HashSet<Uuid> = h.append(published, 10).await.into_iter().collect();
    h.append(held, 5).await;

    let mut options = h.relay_options();
    options.retention = Duration::from_millis(300);
    options.sweep_interval = Duration::from_millis(50);
    let _relay = h.start_relay(h.bus.clone(), h.db.clone(), options);
    h.wait_exactly_once(&name, &expected).await;

    let in_log = |tenant: TenantId| {
        let h = h.clone();
        async move {
            let query = Query::select()
                .expr_as(Expr::col(Alias::new("seq")).count(), "n")
                .from(Alias::new("event_log"))
                .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant.as_uuid()))
                .to_owned();
            let row = h
                .admin
                .connection()
                .query_one(&query)
                .await
                .unwrap()
                .unwrap();
            row.try_get::<i64>("", "n").unwrap()
        }
    };
    assert!(
        eventually(WAIT, || async { in_log(published).await == 0 }).await,
        "published events were not swept"
    );
    assert!(
        eventually(WAIT, || async { h.marks(&name).await == 0 }).await,
        "processed marks were not swept"
    );
    assert_eq!(in_log(held).await, 5, "unpublished events were swept");
    assert_eq!(h.count(PUBLISHED).await, 0);
}

/// With concurrent writers a lower `seq` can commit after a higher one
/// was read. The relay publishes the higher one without waiting, keeps
/// the cursor below the open transactions' rows (across a relay restart
/// too), publishes the lower one once it commits, exactly once, and moves
/// the cursor past one that is rolled back.
async fn a_lower_seq_committing_after_a_higher_one_is_still_published_once(h: Arc<Harness>) {
    let tenant = TenantId::new();
    let partition = partition_of(tenant);
    let name = unique_name("c");
    let (recorder, _consumer) = h.consumer(&name).await;
    let seq_in = async |transaction: &DatabaseTransaction, id: Uuid| -> i64 {
        transaction
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT seq FROM event_log WHERE id = '{id}'"),
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get("", "seq")
            .unwrap()
    };
    // Two transactions take their seqs and stay open ...
    let late = seat_event(tenant, 0);
    let late_transaction = begin_tenant(&h.db, tenant).await;
    outbox::append(&late_transaction, std::slice::from_ref(&late))
        .await
        .unwrap();
    let late_seq = seq_in(&late_transaction, late.id).await;
    let aborted = seat_event(tenant, 1);
    let aborted_transaction = begin_tenant(&h.db, tenant).await;
    outbox::append(&aborted_transaction, std::slice::from_ref(&aborted))
        .await
        .unwrap();
    let aborted_seq = seq_in(&aborted_transaction, aborted.id).await;
    // ... while later ones commit higher seqs, which go out at once.
    let mut expected: HashSet<Uuid> = h.append(tenant, 3).await.into_iter().collect();
    let cursor = format!("SELECT seq AS n FROM relay_cursors WHERE partition = {partition}");
    let relay = h.relay();
    h.wait_exactly_once(&name, &expected).await;
    h.barrier(&[&recorder]).await;
    assert!(
        h.count(&cursor).await < Ord::min(late_seq, aborted_seq),
        "the cursor passed rows of open transactions"
    );
    // A new relay starts from the cursor and waits for them the same way.
    relay.stop().await;
    let _relay = h.relay();
    expected.extend(h.append(tenant, 2).await);
    h.wait_exactly_once(&name, &expected).await;
    assert!(h.count(&cursor).await < Ord::min(late_seq, aborted_seq));

    late_transaction.commit().await.unwrap();
    aborted_transaction.rollback().await.unwrap();
    expected.insert(late.id);
    h.wait_exactly_once(&name, &expected).await;
    h.barrier(&[&recorder]).await;
    h.wait_exactly_once(&name, &expected).await;
    assert!(
        eventually(WAIT, || async { h.count(UNPUBLISHED).await == 0 }).await,
        "the cursor did not move past the late and the rolled-back row"
    );
    assert!(h.count(&cursor).await > Ord::max(late_seq, aborted_seq));
}

/// Many writers committing concurrently while the relay reads: their
/// `seq`s commit out of order all the time, and every event still reaches
/// the consumer exactly once, with the cursors past all of them at the end.
async fn concurrent_writers_lose_nothing_to_out_of_order_commits(h: Arc<Harness>) {
    const WRITERS: usize = 8;
    const TRANSACTIONS: usize = 150;
    let name = unique_name("c");
    let (_recorder, _consumer) = h.consumer(&name).await;
    let _relay = h.relay();
    let tenants: Vec<TenantId> = (0..8).map(|_| TenantId::new()).collect();
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let (db, tenants) = (h.db.clone(), tenants.clone());
        writers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..TRANSACTIONS {
                let tenant = tenants[(writer + n) % tenants.len()];
                let events: Vec<Event> = (0..20).map(|k| seat_event(tenant, k)).collect();
                let transaction = begin_tenant(&db, tenant).await;
                outbox::append(&transaction, &events).await.unwrap();
                if n % 7 == 3 {
                    transaction.rollback().await.unwrap();
                } else {
                    tokio::task::yield_now().await;
                    transaction.commit().await.unwrap();
                    ids.extend(events.iter().map(|event| event.id));
                }
            }
            ids
        }));
    }
    let mut expected = HashSet::new();
    for writer in writers {
        expected.extend(writer.await.unwrap());
    }
    h.wait_exactly_once(&name, &expected).await;
    assert!(
        eventually(WAIT, || async { h.count(UNPUBLISHED).await == 0 }).await,
        "the cursors did not move past every event"
    );
}

/// As the service role, a transaction sees the event rows of the tenant it
/// is confined to and none otherwise — setting `app.scope = 'system'`
/// widens nothing; the system workers' role sees every tenant's.
async fn row_level_security_confines_event_rows_to_their_tenant(h: Arc<Harness>) {
    let name = unique_name("c");
    let (_recorder, _consumer) = h.consumer(&name).await;
    let _relay = h.relay();
    let (x, y) = (TenantId::new(), TenantId::new());
    let mut expected: HashSet<Uuid> = h.append(x, 4).await.into_iter().collect();
    expected.extend(h.append(y, 6).await);
    h.wait_exactly_once(&name, &expected).await;

    let visible = |scope: Option<(&'static str, String)>, system: bool| {
        let h = h.clone();
        async move {
            let transaction = if system {
                h.db.begin_system().await.unwrap()
            } else {
                h.db.connection().begin().await.unwrap()
            };
            if let Some((setting, value)) = &scope {
                set_scope(&transaction, setting, value).await;
            }
            let mut seen = Vec::new();
            for table in ["event_log", "processed_events"] {
                let row = transaction
                    .query_one_raw(Statement::from_string(
                        DbBackend::Postgres,
                        format!(
                            "SELECT COUNT(*) AS n, COUNT(DISTINCT tenant_id) AS tenants, \
                             COALESCE(MIN(tenant_id::text), '') AS tenant FROM {table}"
                        ),
                    ))
                    .await
                    .unwrap()
                    .unwrap();
                seen.push((
                    row.try_get::<i64>("", "n").unwrap(),
                    row.try_get::<i64>("", "tenants").unwrap(),
                    row.try_get::<String>("", "tenant").unwrap(),
                ));
            }
            transaction.commit().await.unwrap();
            seen
        }
    };
    let x_only = (4, 1, x.to_string());
    assert_eq!(
        visible(Some(("app.tenant_id", x.to_string())), false).await,
        vec![x_only.clone(), x_only]
    );
    let none = (0, 0, String::new());
    assert_eq!(visible(None, false).await, vec![none.clone(), none.clone()]);
    assert_eq!(
        visible(Some(("app.scope", "system".to_owned())), false).await,
        vec![none.clone(), none]
    );
    let all = visible(None, true).await;
    assert_eq!(
        all.iter()
            .map(|(n, tenants, _)| (*n, *tenants))
            .collect::<Vec<_>>(),
        vec![(10, 2), (10, 2)]
    );

    // Writing another tenant's event is refused.
    let transaction = begin_tenant(&h.db, x).await;
    let error = outbox::append(&transaction, &[seat_event(y, 0)])
        .await
        .unwrap_err();
    assert!(error.to_string().contains("row-level security"), "{error}");
}

/// A handler whose database connection breaks is not at fault: however
/// often that happens, the event is not spent on attempts and
/// dead-lettered, but applied once the database answers again.
async fn a_handler_losing_its_database_connection_does_not_use_up_attempts(h: Arc<Harness>) {
    let tenant = TenantId::new();
    let ids = h.append(tenant, 5).await;
    let name = unique_name("c");
    let recorder = Recorder::new(&name);
    let options = h.consumer_options(&name);
    recorder
        .unreachable
        .lock()
        .unwrap()
        .insert(ids[1], options.max_attempts + 3);
    let _consumer = h
        .start_consumer(h.bus.clone(), h.db.clone(), options, recorder.clone())
        .await;
    let _relay = h.relay();
    h.wait_exactly_once(&name, &ids.iter().copied().collect())
        .await;
    assert_eq!(recorder.unreachable.lock().unwrap()[&ids[1]], 0);
}

/// `dev` starts the relay and the consumers together. The relay may
/// publish a batch before a consumer's queue exists (the in-process bus
/// drops it) and mark it published after the consumer caught up from the
/// log: the consumer must still get those events.
async fn a_dev_consumer_starting_while_the_relay_publishes_misses_nothing(h: Arc<Harness>) {
    let tenant = TenantId::new();
    let expected: HashSet<Uuid> = h.append(tenant, 20).await.into_iter().collect();
    // The relay publishes, to no queue yet...
    let early = Relay::new(h.db.clone(), h.bus.clone(), h.relay_options());
    assert_eq!(early.publish_without_marking().await.unwrap(), 20);
    early.release().await.unwrap();
    // ... the consumer starts and catches up from the log (an event
    // published earlier shows when it has) ...
    let published_earlier = h.append_marker().await;
    h.mark_published(Some(published_earlier)).await;
    let name = unique_name("c");
    let (recorder, _consumer) = h.consumer(&name).await;
    assert!(
        eventually(WAIT, || async {
            recorder
                .markers
                .lock()
                .unwrap()
                .contains(&published_earlier)
        })
        .await,
        "the consumer did not catch up"
    );
    // ... and only then does the relay mark its batch published.
    h.mark_published(None).await;

    let _relay = h.relay();
    h.barrier(&[&recorder]).await;
    h.wait_exactly_once(&name, &expected).await;
}

/// A `dev` consumer whose catch-up from the log fails at start (the
/// database is not answering yet) tries again rather than giving up on
/// what the log holds for it.
async fn a_dev_consumer_retries_its_catch_up(h: Arc<Harness>) {
    let tenant = TenantId::new();
    let expected: HashSet<Uuid> = h.append(tenant, 10).await.into_iter().collect();
    // Published before the consumer's queue existed: only the log has them.
    let relay = Relay::new(h.db.clone(), h.bus.clone(), h.relay_options());
    assert_eq!(relay.run_once().await.unwrap().published, 10);
    relay.release().await.unwrap();

    let rename = |from: &str, to: &str| {
        let h = h.clone();
        let sql = format!("ALTER TABLE {from} RENAME TO {to}");
        async move { h.admin.connection().execute_unprepared(&sql).await.unwrap() }
    };
    rename("processed_events", "processed_events_away").await;
    let name = unique_name("c");
    let (_recorder, _consumer) = h.consumer(&name).await;
    // Let the first catch-up fail (not waiting for a result: if it ran
    // later, the test would prove less, not fail).
    tokio::time::sleep(Duration::from_millis(200)).await;
    rename("processed_events_away", "processed_events").await;
    h.wait_exactly_once(&name, &expected).await;
}

/// A packed message holding two poison events among good ones: the good
/// ones are applied once, and so are the events published after it,
/// without waiting; each poison event is handed on alone and dead-lettered
/// after its own attempts, with its own error.
async fn a_poison_event_in_a_packed_message_is_dead_lettered_alone_and_the_rest_applied_once(
    h: Arc<Harness>,
) {
    const MAX_ATTEMPTS: u32 = 3;
    let tally = h.tally().await;
    let tenant = TenantId::new();
    let ids = h.append(tenant, 30).await;
    let poison: HashSet<Uuid> = [ids[3], ids[17]].into();
    let name = unique_name("c");
    let recorder = Recorder::refusing(&name, poison.iter().copied());
    let mut options = h.consumer_options(&name);
    options.max_attempts = MAX_ATTEMPTS;
    options.retry_delay = Duration::from_millis(400);
    let _consumer = h
        .start_consumer(h.bus.clone(), h.db.clone(), options, recorder.clone())
        .await;
    let dead = QueueSpec::new(dead_letter_queue(&name), Vec::<String>::new());
    h.track(&dead.name);
    let mut dead_letters = h.bus.subscribe(&dead).await.unwrap();
    let _relay = h.relay();
    let behind = h.append(tenant, 10).await;

    let healthy: HashSet<Uuid> = ids
        .iter()
        .chain(&behind)
        .copied()
        .filter(|id| !poison.contains(id))
        .collect();
    h.wait_exactly_once(&name, &healthy).await;
    if let Some(early) = dead_letters.next().now_or_never() {
        panic!("the other events waited for the poison events: {early:?}");
    }
    assert!(
        eventually(WAIT, || async { tally.packed().is_superset(&poison) }).await,
        "the poison events did not travel packed"
    );

    // On the in-process bus the consumer's catch-up may offer a second
    // copy, dead-lettered as well: collect until both were seen.
    let mut parked = HashSet::new();
    while parked.len() < poison.len() {
        let delivery = timeout(WAIT, dead_letters.next())
            .await
            .expect("dead-lettered in time")
            .unwrap()
            .unwrap();
        assert!(
            !pack::is_packed(&delivery.payload),
            "a pack was dead-lettered"
        );
        let event = Event::decode(&delivery.payload).unwrap();
        assert!(poison.contains(&event.id), "{} dead-lettered", event.id);
        assert_eq!(delivery.routing_key, event.routing_key());
        assert_eq!(
            delivery.attempt, MAX_ATTEMPTS,
            "dead-lettered after its last attempt"
        );
        let error = delivery.last_error.clone().unwrap_or_default();
        assert!(
            error.contains(&format!("poison event {} refused", event.id)),
            "{error:?}"
        );
        delivery.ack().await.unwrap();
        parked.insert(event.id);
    }

    h.barrier(&[&recorder]).await;
    h.wait_exactly_once(&name, &healthy).await;
    let marks = h.marks(&name).await;
    assert_eq!(
        marks,
        i64::try_from(healthy.len() + 1).unwrap(),
        "a mark per applied event and the barrier, none for the poison"
    );
}

/// Single and packed messages in one stream: a tenant with one event, one
/// with a run of one type (several packs of 8), and one whose types
/// alternate (packs and singles). Each event is applied once, and each
/// tenant's events in the order they were written.
async fn single_and_packed_messages_mix_and_keep_each_tenants_order(h: Arc<Harness>) {
    let tally = h.tally().await;
    let name = unique_name("c");
    let (recorder, _consumer) = h.consumer(&name).await;
    let mut options = h.relay_options();
    options.pack_events = 8;
    let _relay = h.start_relay(h.bus.clone(), h.db.clone(), options);
    // The consumer is past its catch-up: one copy of each event from here.
    h.barrier(&[&recorder]).await;

    let (lone, steady, mixed) = (TenantId::new(), TenantId::new(), TenantId::new());
    let mut written: HashMap<TenantId, Vec<Event>> = HashMap::new();
    written.insert(lone, vec![seat_event(lone, 0)]);
    written.insert(steady, (0..30).map(|n| seat_event(steady, n)).collect());
    written.insert(
        mixed,
        (0..30)
            .map(|n| {
                if n % 4 == 3 {
                    user_deleted_event(mixed)
                } else {
                    seat_event(mixed, n)
                }
            })
            .collect(),
    );
    for (tenant, events) in &written {
        let transaction = begin_tenant(&h.db, *tenant).await;
        outbox::append(&transaction, events).await.unwrap();
        transaction.commit().await.unwrap();
    }

    let expected: HashSet<Uuid> = written.values().flatten().map(|event| event.id).collect();
    h.wait_exactly_once(&name, &expected).await;
    let order = recorder.order.lock().unwrap().clone();
    for (tenant, events) in &written {
        let ids: Vec<Uuid> = events.iter().map(|event| event.id).collect();
        assert_eq!(
            order.get(tenant),
            Some(&ids),
            "tenant {tenant} out of order"
        );
    }
    tally.drain(h.bus.as_ref()).await;
    let packed = tally.packed();
    let went_packed = |tenant: TenantId| {
        written[&tenant]
            .iter()
            .filter(|event| packed.contains(&event.id))
            .count()
    };
    assert_eq!(went_packed(lone), 0, "a lone event goes unpacked");
    assert_eq!(went_packed(steady), 30, "a run of one type goes packed");
    // Runs of three seat events packed, each user.deleted alone.
    assert_eq!(went_packed(mixed), 23, "packed and single messages mixed");
    assert!(tally.counts().values().all(|count| *count == 1));
}

/// A packed message cut short is dead-lettered whole on its first
/// delivery with the framing error; a well-framed one holding an envelope
/// that does not decode applies its good event and dead-letters that
/// envelope alone; the events behind both apply.
async fn a_malformed_packed_message_is_dead_lettered_and_changes_nothing_else(h: Arc<Harness>) {
    let tenant = TenantId::new();
    let name = unique_name("c");
    let recorder = Recorder::new(&name);
    let _consumer = h
        .start_consumer(
            h.bus.clone(),
            h.db.clone(),
            h.consumer_options(&name),
            recorder.clone(),
        )
        .await;
    let dead = QueueSpec::new(dead_letter_queue(&name), Vec::<String>::new());
    h.track(&dead.name);
    let mut dead_letters = h.bus.subscribe(&dead).await.unwrap();
    let key = format!("{tenant}.test.seat.count_changed");
    let good = seat_event(tenant, 0);
    let envelope = good.encode();
    let mut truncated = pack::encode([envelope.as_slice(), envelope.as_slice()]).unwrap();
    truncated.truncate(truncated.len() - 10);
    h.bus.publish(&key, truncated.clone().into()).await.unwrap();
    let garbage: &[u8] = b"\x07 not an envelope";
    let framed = pack::encode([garbage, envelope.as_slice()]).unwrap();
    h.bus.publish(&key, framed.into()).await.unwrap();
    let ids = h.append(tenant, 5).await;
    let _relay = h.relay();

    let mut seen = Vec::new();
    for _ in 0..2 {
        let parked = timeout(WAIT, dead_letters.next())
            .await
            .expect("dead-lettered in time")
            .unwrap()
            .unwrap();
        assert_eq!(parked.routing_key, key);
        assert_eq!(parked.attempt, 1, "no retry for what cannot be decoded");
        let error = parked.last_error.clone().unwrap_or_default();
        if parked.payload.as_ref() == truncated.as_slice() {
            assert!(
                error.contains("malformed event: packed message: truncated"),
                "{error:?}"
            );
        } else {
            assert_eq!(parked.payload.as_ref(), garbage, "dead-lettered alone");
            assert!(
                error.contains("malformed event: not an envelope"),
                "{error:?}"
            );
        }
        seen.push(parked.payload.clone());
        parked.ack().await.unwrap();
    }
    assert_ne!(seen[0], seen[1], "both dead-lettered");

    let mut healthy: HashSet<Uuid> = ids.into_iter().collect();
    healthy.insert(good.id);
    h.wait_exactly_once(&name, &healthy).await;
    let marks = h.marks(&name).await;
    assert_eq!(marks, 6, "nothing recorded for what did not decode");
}

// ---------------------------------------------------------------------------

/// Runs `body` with a time limit, then cleans up even if it panicked.
async fn run<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(Arc<Harness>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let limit = Duration::from_secs(90);
    let harness = Harness::start(backend).await;
    let outcome = tokio::spawn(timeout(limit, body(harness.clone()))).await;
    harness.cleanup().await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(_)) => panic!("test timed out after {limit:?}"),
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

macro_rules! case {
    ($backend:expr, $name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            super::run($backend, super::$name).await;
        }
    };
}

macro_rules! backbone {
    ($module:ident, $backend:expr) => {
        mod $module {
            use super::Backend;

            case!(
                $backend,
                committed_events_reach_a_consumer_exactly_once_and_rolled_back_ones_never
            );
            case!(
                $backend,
                ten_thousand_events_survive_a_bus_failure_exactly_once
            );
            case!(
                $backend,
                ten_thousand_packed_events_survive_a_bus_failure_exactly_once
            );
            case!(
                $backend,
                a_poison_event_in_a_packed_message_is_dead_lettered_alone_and_the_rest_applied_once
            );
            case!(
                $backend,
                single_and_packed_messages_mix_and_keep_each_tenants_order
            );
            case!(
                $backend,
                a_malformed_packed_message_is_dead_lettered_and_changes_nothing_else
            );
            case!(
                $backend,
                a_relay_killed_between_publish_and_mark_duplicates_but_applies_once
            );
            case!(
                $backend,
                applied_events_delivered_again_among_new_ones_apply_once
            );
            case!(
                $backend,
                a_poison_event_is_retried_then_dead_lettered_without_holding_up_the_rest
            );
            case!(
                $backend,
                a_malformed_message_is_dead_lettered_at_once_and_changes_nothing
            );
            case!($backend, two_relays_publish_every_row_exactly_once);
            case!($backend, replay_reapplies_for_one_consumer_only);
            case!(
                $backend,
                retention_sweep_removes_published_events_and_keeps_the_outbox
            );
            case!(
                $backend,
                a_handler_losing_its_database_connection_does_not_use_up_attempts
            );
        }
    };
}

backbone!(postgres_rabbitmq, Backend::Production);
backbone!(sqlite_memory, Backend::Embedded);

mod sqlite_only {
    use super::Backend;

    case!(
        Backend::Embedded,
        a_dev_consumer_starting_while_the_relay_publishes_misses_nothing
    );
    case!(Backend::Embedded, a_dev_consumer_retries_its_catch_up);
}

mod postgres_only {
    use super::Backend;

    case!(
        Backend::Production,
        database_outage_while_relaying_and_consuming_loses_nothing
    );
    case!(
        Backend::Production,
        row_level_security_confines_event_rows_to_their_tenant
    );
    case!(
        Backend::Production,
        a_lower_seq_committing_after_a_higher_one_is_still_published_once
    );
    case!(
        Backend::Production,
        concurrent_writers_lose_nothing_to_out_of_order_commits
    );
}
