//! The whole backbone under load: writers append events to the outbox,
//! relays publish them, consumers apply them with one row per event.
//!
//! - Writers: `--writers` tasks, each committing transactions of
//!   `--writer-batch` events of one tenant (round robin over `--tenants`),
//!   paced to `--rate` events/s in all, or as fast as possible with at most
//!   `--max-backlog` events appended but not yet applied (`--rate 0`).
//! - Relays: `--relays` [`Relay`]s; with more than one, the 16 partitions
//!   are split between them up front (partition p to relay p mod N).
//! - Consumers: `--consumers` competing [`Consumer`]s on one queue, each
//!   with its own bus connection; the handler inserts the effects of a
//!   whole tenant group in one multi-row `INSERT` into `bench_effects`.
//!
//! An event is done when its effect is committed (see [`crate::probe`]):
//! the figures are events done per second over the measured window, and
//! done time − `occurred_at` (set by the writer just before its
//! transaction) as the end-to-end latency. After the window the writers
//! stop, the backlog drains, and the database is checked: one effect per
//! appended event, no duplicates, nothing left unpublished.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use async_trait::async_trait;
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};
use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, ExprTrait, Statement};
use switchboard_events::proto::envelope::Payload;
use switchboard_events::proto::{User, UserUpdated};
use switchboard_events::{
    Consumer, ConsumerOptions, Event, EventHandler, HandlerError, Relay, RelayOptions, outbox,
};
use switchboard_migrations::{APP_ROLE, EVENT_PARTITIONS, Migrator, MigratorTrait, SYSTEM_ROLE};
use switchboard_platform::bus::{MemoryBus, RabbitMqBus};
use switchboard_platform::database::DatabaseOptions;
use switchboard_platform::{Bus, Database, dead_letter_queue, retry_queue};
use switchboard_tenancy::TenantId;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;
use uuid::Uuid;

use crate::probe::{ConsumerProbe, Counter, ProbeBus, RelayProbe, Watch};
use crate::report::{self, Recorder, Window};

/// The source of the benchmark's events (`<tenant>.bench.user.updated`).
const SOURCE: &str = "bench";
/// The login role the services' connections use (a member of `switchboard_app`).
const SERVICE_ROLE: &str = "sb_bench_events_app";
/// The login role the relay uses (a member of `switchboard_system`).
const SYSTEM_LOGIN_ROLE: &str = "sb_bench_events_sys";

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// A PostgreSQL superuser URL on loopback: creates a fresh database
    /// (migrated) and the non-owner service role there.
    #[arg(
        long,
        env = "BENCH_ADMIN_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub admin_url: String,
    /// Use this existing, migrated database (its owner's URL) instead of a
    /// fresh one; needs `--service-url`.
    #[arg(long, requires = "service_url")]
    pub database_url: Option<String>,
    /// The services' URL for `--database-url`: a role that owns nothing
    /// and is a member of `switchboard_app`.
    #[arg(long, requires = "database_url")]
    pub service_url: Option<String>,
    /// The relay's URL for `--database-url`: a role that owns nothing and
    /// is a member of `switchboard_system`.
    #[arg(long, requires = "database_url")]
    pub system_url: Option<String>,
    #[arg(
        long,
        env = "BENCH_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp_url: String,
    #[command(flatten)]
    pub load: Load,
    /// Keep the database (and print its name) instead of dropping it.
    #[arg(long)]
    pub keep: bool,
    /// SQL run as the database owner after the migrations, before the
    /// load (to try a schema change, e.g. another index).
    #[arg(long)]
    pub owner_sql: Option<String>,
}

/// The shape of the load, shared with the SQLite run of `memory`.
#[derive(clap::Args, Clone, Debug)]
pub struct Load {
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 10)]
    pub warmup: u64,
    /// Events appended per second in all; 0: as fast as possible.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// With `--rate 0`: events appended but not yet applied, at most
    /// (the end-to-end latency at saturation is about this over the rate).
    #[arg(long, default_value_t = 5_000)]
    pub max_backlog: u64,
    /// Concurrent writer tasks.
    #[arg(long, default_value_t = 8)]
    pub writers: usize,
    /// Events per writer transaction (all of one tenant).
    #[arg(long, default_value_t = 20)]
    pub writer_batch: usize,
    #[arg(long, default_value_t = 8)]
    pub tenants: usize,
    #[arg(long, default_value_t = 1)]
    pub relays: usize,
    /// Rows a relay publishes per round.
    #[arg(long, default_value_t = 500)]
    pub relay_batch: u32,
    /// Events a relay packs into one message at most (1: none packed).
    #[arg(long, default_value_t = switchboard_events::pack::MAX_EVENTS)]
    pub pack_events: usize,
    /// A relay's pause after a round that was not full, in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub relay_poll_ms: u64,
    /// Competing consumers on the queue.
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Events a consumer applies per round, about (deliveries are taken
    /// until their events reach it).
    #[arg(long, default_value_t = 512)]
    pub consumer_batch: usize,
    /// Transactions a consumer applies a batch in at once (tenants shared
    /// out between them).
    #[arg(long, default_value_t = 2)]
    pub consumer_concurrency: usize,
    /// Unacknowledged deliveries per consumer.
    #[arg(long, default_value_t = 256)]
    pub prefetch: u16,
    /// Seconds to wait for the backlog to drain after the window.
    #[arg(long, default_value_t = 300)]
    pub drain_timeout: u64,
    /// Print where the time went (relay and consumer phases) as a
    /// `PROFILE` line too.
    #[arg(long)]
    pub profile: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    ensure!(
        args.amqp_url.contains("@127.0.0.1:") || args.amqp_url.contains("@localhost:"),
        "--amqp-url must be on loopback"
    );
    let (stores, dropper) = match (&args.database_url, &args.service_url, &args.system_url) {
        (Some(owner), Some(service), Some(system)) => {
            let owner_db = connect(owner, 2).await?;
            Migrator::up(owner_db.connection(), None)
                .await
                .context("migrating the database")?;
            create_effects_table(&owner_db).await?;
            (
                Stores {
                    owner: owner_db,
                    service_url: service.clone(),
                    system_url: system.clone(),
                },
                None,
            )
        }
        _ => {
            let (stores, name) = fresh_postgres(&args.admin_url).await?;
            (stores, Some(name))
        }
    };
    if let Some(sql) = &args.owner_sql {
        stores
            .owner
            .connection()
            .execute_unprepared(sql)
            .await
            .context("running --owner-sql")?;
    }
    let exchange = format!("sb_bench_events_{}", short_id());
    let bus = BusKind::RabbitMq {
        url: args.amqp_url.clone(),
        exchange: exchange.clone(),
    };
    let queue = exchange.clone();
    let outcome = run_pipeline("pipeline", &stores, &bus, &queue, &args.load).await;
    delete_rabbitmq_names(&args.amqp_url, &exchange, &queue).await;
    stores.owner.close().await;
    if let Some(name) = dropper {
        if args.keep {
            eprintln!("kept database {name}");
        } else {
            drop_database(&args.admin_url, &name).await;
        }
    }
    outcome
}

/// The databases of a run: the owner's pool (setup, checks) and the URLs
/// the services and the relay connect with.
pub struct Stores {
    pub owner: Database,
    pub service_url: String,
    pub system_url: String,
}

pub enum BusKind {
    RabbitMq { url: String, exchange: String },
    Memory(MemoryBus),
}

impl BusKind {
    /// A bus for one relay or consumer: its own connections on RabbitMQ,
    /// the shared in-process bus otherwise.
    async fn connect(&self) -> anyhow::Result<Arc<dyn Bus>> {
        Ok(match self {
            Self::RabbitMq { url, exchange } => Arc::new(
                RabbitMqBus::connect(url, exchange, 0)
                    .await
                    .context("connecting to RabbitMQ")?,
            ),
            Self::Memory(bus) => Arc::new(bus.clone()),
        })
    }
}

pub fn short_id() -> String {
    Uuid::new_v4().simple().to_string()[..12].to_owned()
}

pub async fn connect(url: &str, connections: u32) -> anyhow::Result<Database> {
    let options = DatabaseOptions {
        max_connections: connections,
        ..DatabaseOptions::default()
    };
    Database::connect(url, &options)
        .await
        .with_context(|| format!("connecting to {}", masked(url)))
}

/// `url` without its password.
fn masked(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// `url` (`scheme://auth@host:port/db?query`) on database `name`, with
/// `auth` replaced when given.
fn on_database(url: &str, name: &str, auth: Option<&str>) -> anyhow::Result<String> {
    let (scheme, rest) = url.split_once("://").context("a URL with a scheme")?;
    let (old_auth, location) = rest.rsplit_once('@').context("a URL with user@host")?;
    let (host, path) = location.split_once('/').unwrap_or((location, ""));
    let query = path.split_once('?').map(|(_, query)| query);
    let auth = auth.unwrap_or(old_auth);
    Ok(match query {
        Some(query) => format!("{scheme}://{auth}@{host}/{name}?{query}"),
        None => format!("{scheme}://{auth}@{host}/{name}"),
    })
}

/// A fresh database on the admin URL's server, migrated as its owner (the
/// admin), with the effects table and the service role.
async fn fresh_postgres(admin_url: &str) -> anyhow::Result<(Stores, String)> {
    ensure!(
        admin_url.contains("@127.0.0.1:") || admin_url.contains("@localhost:"),
        "--admin-url must be on loopback"
    );
    let admin = connect(admin_url, 1).await?;
    let name = format!("sb_bench_events_{}", short_id());
    admin
        .connection()
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .with_context(|| format!("creating database {name}"))?;
    let password = Uuid::new_v4().simple().to_string();
    // Roles are per server: one service role and one relay role, their
    // password set anew.
    admin
        .connection()
        .execute_unprepared(&format!(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{SERVICE_ROLE}') THEN
                 CREATE ROLE {SERVICE_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS;
               END IF;
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{SYSTEM_LOGIN_ROLE}') THEN
                 CREATE ROLE {SYSTEM_LOGIN_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS;
               END IF;
             END $$"
        ))
        .await
        .context("creating the service role")?;
    admin.close().await;
    let owner_url = on_database(admin_url, &name, None)?;
    let owner = connect(&owner_url, 2).await?;
    Migrator::up(owner.connection(), None)
        .await
        .context("migrating the database")?;
    owner
        .connection()
        .execute_unprepared(&format!(
            "ALTER ROLE {SERVICE_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '{password}';
             GRANT {APP_ROLE} TO {SERVICE_ROLE};
             ALTER ROLE {SYSTEM_LOGIN_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '{password}';
             GRANT {SYSTEM_ROLE} TO {SYSTEM_LOGIN_ROLE}"
        ))
        .await
        .context("setting up the service role")?;
    create_effects_table(&owner).await?;
    let service_url = on_database(
        admin_url,
        &name,
        Some(&format!("{SERVICE_ROLE}:{password}")),
    )?;
    let system_url = on_database(
        admin_url,
        &name,
        Some(&format!("{SYSTEM_LOGIN_ROLE}:{password}")),
    )?;
    Ok((
        Stores {
            owner,
            service_url,
            system_url,
        },
        name,
    ))
}

/// The consumer's effects: one row per applied event, no unique key (so a
/// duplicate shows), under the same tenant policy as the service tables.
pub async fn create_effects_table(owner: &Database) -> anyhow::Result<()> {
    let db = owner.connection();
    db.execute_unprepared(
        "CREATE TABLE IF NOT EXISTS bench_effects (
           event_id uuid NOT NULL,
           tenant_id uuid NOT NULL,
           event_type text NOT NULL,
           occurred_us bigint NOT NULL,
           handled_us bigint NOT NULL
         )",
    )
    .await
    .context("creating bench_effects")?;
    if owner.backend() == DbBackend::Postgres {
        db.execute_unprepared(&format!(
            "DELETE FROM bench_effects;
             ALTER TABLE bench_effects ENABLE ROW LEVEL SECURITY;
             ALTER TABLE bench_effects FORCE ROW LEVEL SECURITY;
             DROP POLICY IF EXISTS tenant_isolation ON bench_effects;
             CREATE POLICY tenant_isolation ON bench_effects
               USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
               WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
             GRANT SELECT, INSERT ON bench_effects TO {APP_ROLE};
             DROP POLICY IF EXISTS system_workers ON bench_effects;
             CREATE POLICY system_workers ON bench_effects TO {SYSTEM_ROLE} USING (true);
             GRANT SELECT ON bench_effects TO {SYSTEM_ROLE}"
        ))
        .await
        .context("securing bench_effects")?;
    }
    Ok(())
}

async fn drop_database(admin_url: &str, name: &str) {
    let dropped = async {
        let admin = connect(admin_url, 1).await?;
        admin
            .connection()
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
        admin.close().await;
        anyhow::Ok(())
    };
    if let Err(error) = dropped.await {
        warn!(error = %error, database = name, "could not drop the benchmark database");
    }
}

/// Deletes the run's queues and exchange (best effort).
pub async fn delete_rabbitmq_names(url: &str, exchange: &str, queue: &str) {
    let delete = async {
        let connection = Connection::connect(url, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        for name in [
            retry_queue(queue),
            dead_letter_queue(queue),
            queue.to_owned(),
        ] {
            channel
                .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                .await?;
        }
        channel
            .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
            .await?;
        connection.close(200, "OK".into()).await
    };
    match tokio::time::timeout(Duration::from_secs(10), delete).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => warn!(error = %error, "could not delete the benchmark's queues"),
        Err(_) => warn!("deleting the benchmark's queues timed out"),
    }
}

/// An event as a service would write it: a user updated, ~250 bytes.
pub fn bench_event(tenant: TenantId, n: u64) -> Event {
    Event::new(
        tenant,
        SOURCE,
        Payload::UserUpdated(UserUpdated {
            user: Some(User {
                user_id: Uuid::now_v7().to_string(),
                email: format!("agent{n}@tenant.example.com"),
                display_name: format!("Agent {n}"),
                roles: vec!["agent".into()],
                status: "active".into(),
                all_clients: true,
                client_ids: vec![],
            }),
        }),
    )
}

/// The consumer's handler: the effects of a tenant group in one insert
/// (per 128 events).
struct EffectWriter {
    probe: Arc<ConsumerProbe>,
    recorder: Arc<Recorder>,
}

#[async_trait]
impl EventHandler for EffectWriter {
    async fn handle(
        &self,
        transaction: &DatabaseTransaction,
        event: &Event,
    ) -> Result<(), HandlerError> {
        self.handle_batch(transaction, std::slice::from_ref(event))
            .await
    }

    async fn handle_batch(
        &self,
        transaction: &DatabaseTransaction,
        events: &[Event],
    ) -> Result<(), HandlerError> {
        self.probe.handler_entered(&self.recorder);
        let handled = report::now_us();
        // Statements within one 16 KiB TLS record (see the README's note
        // on TCP_NODELAY): ~80 bytes of parameters per row.
        for chunk in events.chunks(128) {
            let mut insert = Query::insert();
            insert.into_table(Alias::new("bench_effects")).columns([
                Alias::new("event_id"),
                Alias::new("tenant_id"),
                Alias::new("event_type"),
                Alias::new("occurred_us"),
                Alias::new("handled_us"),
            ]);
            for event in chunk {
                insert.values_panic([
                    event.id.into(),
                    event.tenant.as_uuid().into(),
                    event.event_type.clone().into(),
                    event.occurred_at.timestamp_micros().into(),
                    handled.into(),
                ]);
            }
            transaction.execute(&insert).await?;
        }
        self.probe.handled_events.add(events.len() as u64);
        self.probe.handler_calls.add(1);
        self.probe.handler_left(
            &self.recorder,
            events
                .iter()
                .map(|event| event.occurred_at.timestamp_micros()),
        );
        Ok(())
    }
}

/// What the writers did.
#[derive(Default)]
struct WriterStats {
    appended: Counter,
    transactions: Counter,
    transaction_us: Counter,
    errors: Counter,
}

/// Appends `events` (all of `tenant`) in one transaction confined to it.
async fn append(db: &Database, tenant: TenantId, events: &[Event]) -> anyhow::Result<()> {
    let transaction = db.begin_tenant(tenant.as_uuid()).await?;
    outbox::append(&transaction, events).await?;
    transaction.commit().await?;
    Ok(())
}

struct Writer {
    db: Database,
    tenants: Vec<TenantId>,
    /// Index of this writer's first tenant.
    first: usize,
    load: Load,
    stats: Arc<WriterStats>,
    recorder: Arc<Recorder>,
    stop: CancellationToken,
}

impl Writer {
    async fn run(self) {
        let Load {
            rate,
            writers,
            writer_batch,
            max_backlog,
            ..
        } = self.load;
        let mut ticker = (rate > 0).then(|| {
            let period = Duration::from_secs_f64((writer_batch * writers) as f64 / rate as f64);
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            ticker
        });
        let mut turn = self.first;
        let mut n = 0_u64;
        loop {
            match ticker.as_mut() {
                Some(ticker) => {
                    tokio::select! {
                        () = self.stop.cancelled() => return,
                        _ = ticker.tick() => {}
                    }
                }
                None => {
                    while self
                        .stats
                        .appended
                        .get()
                        .saturating_sub(self.recorder.count())
                        >= max_backlog
                    {
                        tokio::select! {
                            () = self.stop.cancelled() => return,
                            () = tokio::time::sleep(Duration::from_millis(1)) => {}
                        }
                    }
                    if self.stop.is_cancelled() {
                        return;
                    }
                }
            }
            let tenant = self.tenants[turn % self.tenants.len()];
            turn += writers;
            let events: Vec<Event> = (0..writer_batch)
                .map(|_| {
                    n += 1;
                    bench_event(tenant, n)
                })
                .collect();
            let start = Instant::now();
            match append(&self.db, tenant, &events).await {
                Ok(()) => {
                    self.stats.appended.add(events.len() as u64);
                    self.stats.transactions.add(1);
                    self.stats
                        .transaction_us
                        .add(u64::try_from(start.elapsed().as_micros()).unwrap_or(0));
                }
                Err(error) => {
                    self.stats.errors.add(1);
                    warn!(error = %error, "writer transaction failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// The probes' counters at one instant.
#[derive(Clone, Copy, Default)]
struct Snapshot {
    at: Option<Instant>,
    cpu_s: f64,
    appended: u64,
    writer_transactions: u64,
    writer_transaction_us: u64,
    relay_rounds: u64,
    relay_rows: u64,
    relay_messages: u64,
    relay_publish_us: u64,
    relay_between_full_us: u64,
    relay_between_full: u64,
    relay_between_partial_us: u64,
    relay_between_partial: u64,
    consumer_batches: u64,
    consumer_idle_us: u64,
    consumer_before_us: u64,
    consumer_handler_us: u64,
    consumer_after_us: u64,
    consumer_between_us: u64,
    handler_calls: u64,
    handled_events: u64,
}

struct Probes {
    writers: Arc<WriterStats>,
    relays: Vec<Arc<RelayProbe>>,
    consumers: Vec<Arc<ConsumerProbe>>,
}

impl Probes {
    fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot {
            at: Some(Instant::now()),
            cpu_s: report::process_cpu_seconds().unwrap_or(0.0),
            appended: self.writers.appended.get(),
            writer_transactions: self.writers.transactions.get(),
            writer_transaction_us: self.writers.transaction_us.get(),
            ..Snapshot::default()
        };
        for relay in &self.relays {
            snapshot.relay_rounds += relay.rounds.get();
            snapshot.relay_rows += relay.rows.get();
            snapshot.relay_messages += relay.messages.get();
            snapshot.relay_publish_us += relay.publish_us.get();
            snapshot.relay_between_full_us += relay.between_full_us.get();
            snapshot.relay_between_full += relay.between_full.get();
            snapshot.relay_between_partial_us += relay.between_partial_us.get();
            snapshot.relay_between_partial += relay.between_partial.get();
        }
        for consumer in &self.consumers {
            snapshot.consumer_batches += consumer.batches.get();
            snapshot.consumer_idle_us += consumer.idle_us.get();
            snapshot.consumer_before_us += consumer.before_handler_us.get();
            snapshot.consumer_handler_us += consumer.handler_us.get();
            snapshot.consumer_after_us += consumer.after_handler_us.get();
            snapshot.consumer_between_us += consumer.between_handlers_us.get();
            snapshot.handler_calls += consumer.handler_calls.get();
            snapshot.handled_events += consumer.handled_events.get();
        }
        snapshot
    }
}

/// The profile of the window between two snapshots.
fn profile(before: &Snapshot, after: &Snapshot, load: &Load) -> Vec<(&'static str, String)> {
    let seconds = match (before.at, after.at) {
        (Some(from), Some(to)) => to.duration_since(from).as_secs_f64().max(1e-3),
        _ => 1.0,
    };
    let d = |f: fn(&Snapshot) -> u64| f(after).saturating_sub(f(before)) as f64;
    let per = |total: f64, count: f64| if count > 0.0 { total / count } else { 0.0 };
    let rounds = d(|s| s.relay_rounds);
    let batches = d(|s| s.consumer_batches);
    let calls = d(|s| s.handler_calls);
    let consumers = load.consumers.max(1) as f64;
    let busy = |total_us: f64| total_us / 1e6 / seconds / consumers;
    vec![
        (
            "cpu_cores",
            format!("{:.2}", (after.cpu_s - before.cpu_s) / seconds),
        ),
        (
            "writer_tx_per_s",
            format!("{:.0}", d(|s| s.writer_transactions) / seconds),
        ),
        (
            "writer_tx_ms",
            format!(
                "{:.2}",
                per(d(|s| s.writer_transaction_us), d(|s| s.writer_transactions)) / 1000.0
            ),
        ),
        ("relay_rounds_per_s", format!("{:.1}", rounds / seconds)),
        (
            "relay_rows_per_round",
            format!("{:.0}", per(d(|s| s.relay_rows), rounds)),
        ),
        (
            "relay_messages_per_round",
            format!("{:.1}", per(d(|s| s.relay_messages), rounds)),
        ),
        (
            "relay_publish_ms",
            format!("{:.2}", per(d(|s| s.relay_publish_us), rounds) / 1000.0),
        ),
        (
            "relay_db_ms",
            format!(
                "{:.2}",
                per(d(|s| s.relay_between_full_us), d(|s| s.relay_between_full)) / 1000.0
            ),
        ),
        (
            "relay_full_rounds",
            format!("{:.0}", d(|s| s.relay_between_full)),
        ),
        (
            "relay_partial_gap_ms",
            format!(
                "{:.2}",
                per(
                    d(|s| s.relay_between_partial_us),
                    d(|s| s.relay_between_partial)
                ) / 1000.0
            ),
        ),
        (
            "consumer_batches_per_s",
            format!("{:.1}", batches / seconds),
        ),
        (
            "consumer_groups_per_batch",
            format!("{:.2}", per(calls, batches)),
        ),
        (
            "consumer_events_per_group",
            format!("{:.1}", per(d(|s| s.handled_events), calls)),
        ),
        (
            "consumer_idle",
            format!("{:.2}", busy(d(|s| s.consumer_idle_us))),
        ),
        (
            "consumer_marks",
            format!("{:.2}", busy(d(|s| s.consumer_before_us))),
        ),
        (
            "consumer_effects",
            format!("{:.2}", busy(d(|s| s.consumer_handler_us))),
        ),
        (
            "consumer_commit_ack",
            format!("{:.2}", busy(d(|s| s.consumer_after_us))),
        ),
        (
            "consumer_between_groups",
            format!("{:.2}", busy(d(|s| s.consumer_between_us))),
        ),
        (
            "consumer_marks_ms",
            format!("{:.2}", per(d(|s| s.consumer_before_us), batches) / 1000.0),
        ),
        (
            "consumer_effects_ms",
            format!("{:.2}", per(d(|s| s.consumer_handler_us), calls) / 1000.0),
        ),
        (
            "consumer_commit_ack_ms",
            format!("{:.2}", per(d(|s| s.consumer_after_us), batches) / 1000.0),
        ),
    ]
}

struct Running {
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    async fn stop(self) {
        self.cancel.cancel();
        for task in self.tasks {
            if tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .is_err()
            {
                warn!("a task did not stop within 15 s");
            }
        }
    }
}

/// Runs the load on `stores` and `bus`, prints the figures, checks the
/// database. `label` names the scenario in the `RESULT` line.
pub async fn run_pipeline(
    label: &str,
    stores: &Stores,
    bus: &BusKind,
    queue: &str,
    load: &Load,
) -> anyhow::Result<()> {
    ensure!(
        load.writers > 0 && load.writer_batch > 0 && load.tenants > 0,
        "writers, batches and tenants must be positive"
    );
    ensure!(
        load.relays > 0 && load.consumers > 0,
        "at least one relay and one consumer"
    );
    ensure!(
        load.relays <= EVENT_PARTITIONS as usize,
        "at most {EVENT_PARTITIONS} relays"
    );
    let url = stores.service_url.as_str();
    let writer_db = connect(url, u32::try_from(load.writers).unwrap_or(64) + 1).await?;
    // The relay reads every tenant's outbox: the system workers' role.
    let relay_db = connect(
        &stores.system_url,
        u32::try_from(load.relays).unwrap_or(16) + 1,
    )
    .await?;
    let consumer_db = connect(
        url,
        u32::try_from(load.consumers * load.consumer_concurrency.max(1)).unwrap_or(64) + 1,
    )
    .await?;
    let recorder = Arc::new(Recorder::default());

    // Consumers first: the queue must exist before anything is published.
    let consumer_run = CancellationToken::new();
    let mut consumer_probes = Vec::new();
    let mut consumer_tasks = Vec::new();
    let mut consumer_buses = Vec::new();
    for _ in 0..load.consumers {
        let probe = Arc::new(ConsumerProbe::default());
        let inner = bus.connect().await?;
        consumer_buses.push(inner.clone());
        let probed: Arc<dyn Bus> = Arc::new(ProbeBus::new(
            inner,
            Watch::Consumer(probe.clone(), recorder.clone()),
        ));
        let mut options = ConsumerOptions::new(queue, [format!("*.{SOURCE}.#")]);
        options.prefetch = load.prefetch;
        options.batch_size = load.consumer_batch;
        options.concurrency = load.consumer_concurrency;
        let handler = Arc::new(EffectWriter {
            probe: probe.clone(),
            recorder: recorder.clone(),
        });
        let consumer = Consumer::new(consumer_db.clone(), probed, options, handler);
        consumer
            .declare()
            .await
            .context("declaring the consumer's queue")?;
        consumer_tasks.push(consumer.spawn(consumer_run.child_token()));
        consumer_probes.push(probe);
    }

    // Relays: with several, the partitions are dealt out up front.
    if load.relays > 1 {
        let until = chrono::Utc::now() + chrono::Duration::hours(1);
        for partition in 0..EVENT_PARTITIONS {
            let holder = format!("bench-relay-{}", partition as usize % load.relays);
            let update = Query::update()
                .table(Alias::new("relay_leases"))
                .value(Alias::new("holder"), holder)
                .value(Alias::new("expires_at"), until)
                .and_where(Expr::col(Alias::new("partition")).eq(partition))
                .to_owned();
            stores.owner.connection().execute(&update).await?;
        }
    }
    let relay_run = CancellationToken::new();
    let mut relay_probes = Vec::new();
    let mut relay_tasks = Vec::new();
    let mut relay_buses = Vec::new();
    for k in 0..load.relays {
        let probe = Arc::new(RelayProbe::new(load.relay_batch));
        let inner = bus.connect().await?;
        relay_buses.push(inner.clone());
        let probed: Arc<dyn Bus> = Arc::new(ProbeBus::new(inner, Watch::Relay(probe.clone())));
        let options = RelayOptions {
            holder: format!("bench-relay-{k}"),
            poll_interval: Duration::from_millis(load.relay_poll_ms),
            batch_size: load.relay_batch,
            pack_events: load.pack_events,
            ..RelayOptions::default()
        };
        relay_tasks
            .push(Relay::new(relay_db.clone(), probed, options).spawn(relay_run.child_token()));
        relay_probes.push(probe);
    }

    // Writers.
    let tenants: Vec<TenantId> = (0..load.tenants).map(|_| TenantId::new()).collect();
    let writer_stats = Arc::new(WriterStats::default());
    let writer_run = CancellationToken::new();
    let mut writer_tasks = Vec::new();
    for first in 0..load.writers {
        let writer = Writer {
            db: writer_db.clone(),
            tenants: tenants.clone(),
            first,
            load: load.clone(),
            stats: writer_stats.clone(),
            recorder: recorder.clone(),
            stop: writer_run.clone(),
        };
        writer_tasks.push(tokio::spawn(writer.run()));
    }
    let writers = Running {
        cancel: writer_run,
        tasks: writer_tasks,
    };
    let relays = Running {
        cancel: relay_run,
        tasks: relay_tasks,
    };
    let consumers = Running {
        cancel: consumer_run,
        tasks: consumer_tasks,
    };
    let probes = Probes {
        writers: writer_stats.clone(),
        relays: relay_probes,
        consumers: consumer_probes,
    };

    let offered = if load.rate == 0 {
        format!(
            "as fast as possible, at most {} in flight",
            load.max_backlog
        )
    } else {
        format!("{} events/s", load.rate)
    };
    eprintln!(
        "{label}: {} writers × {} events/tx over {} tenants ({offered}), {} relay(s) × {} rows packed ≤ {} per message, {} consumer(s) × batch {} in {} transactions / prefetch {}; {} s warm-up, {} s measured",
        load.writers,
        load.writer_batch,
        load.tenants,
        load.relays,
        load.relay_batch,
        load.pack_events,
        load.consumers,
        load.consumer_batch,
        load.consumer_concurrency,
        load.prefetch,
        load.warmup,
        load.duration
    );
    let progress = {
        let recorder = recorder.clone();
        let stats = writer_stats.clone();
        let label = label.to_owned();
        tokio::spawn(async move {
            let start = Instant::now();
            let mut last = (0, 0);
            let mut ticker = tokio::time::interval(Duration::from_secs(5));
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let (appended, done) = (stats.appended.get(), recorder.count());
                eprintln!(
                    "  {label} {:>4.0}s: appended {:>7.0}/s, applied {:>7.0}/s, backlog {}",
                    start.elapsed().as_secs_f64(),
                    (appended - last.0) as f64 / 5.0,
                    (done - last.1) as f64 / 5.0,
                    appended.saturating_sub(done)
                );
                last = (appended, done);
            }
        })
    };

    tokio::time::sleep(Duration::from_secs(load.warmup)).await;
    let before = probes.snapshot();
    let from_us = report::now_us();
    tokio::time::sleep(Duration::from_secs(load.duration)).await;
    let to_us = report::now_us();
    let after = probes.snapshot();
    writers.stop().await;

    // Drain: everything appended gets applied.
    let appended = writer_stats.appended.get();
    let drain_start = Instant::now();
    while recorder.count() < appended
        && drain_start.elapsed() < Duration::from_secs(load.drain_timeout)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained_in = drain_start.elapsed().as_secs_f64();
    // A moment more, so a duplicate delivery would show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    progress.abort();
    relays.stop().await;
    consumers.stop().await;
    for bus in relay_buses.iter().chain(&consumer_buses) {
        let _ = bus.close().await;
    }

    let window: Window = recorder.window(from_us, to_us);
    let seconds = (to_us - from_us) as f64 / 1e6;
    let appended_per_s = (after.appended - before.appended) as f64 / seconds;
    let check = check(stores, appended).await?;
    let mut fields = window.fields();
    fields.extend([
        ("appended_per_s", format!("{appended_per_s:.0}")),
        ("target_rate", load.rate.to_string()),
        ("appended", appended.to_string()),
        ("effects", check.effects.to_string()),
        ("distinct_effects", check.distinct.to_string()),
        ("unpublished", check.unpublished.to_string()),
        ("recorded", recorder.count().to_string()),
        ("writer_errors", writer_stats.errors.get().to_string()),
        ("drain_s", format!("{drained_in:.1}")),
        (
            "verified",
            if check.ok(appended) { "yes" } else { "no" }.to_owned(),
        ),
    ]);
    report::result(label, &fields);
    eprintln!(
        "{label}: {:.0} events/s applied (appended {:.0}/s; slowest second {}), latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; drained in {:.1} s; {} appended, {} effects, {} distinct, {} unpublished: {}",
        window.rate(),
        appended_per_s,
        window.min_second(),
        window.percentile_ms(50.0),
        window.percentile_ms(99.0),
        window.max_ms(),
        drained_in,
        appended,
        check.effects,
        check.distinct,
        check.unpublished,
        if check.ok(appended) {
            "verified"
        } else {
            "MISMATCH"
        }
    );
    if load.profile {
        let profile = profile(&before, &after, load);
        report::result(&format!("{label}-profile"), &profile);
        let text: Vec<String> = profile
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        eprintln!("{label} profile: {}", text.join(" "));
    }
    writer_db.close().await;
    relay_db.close().await;
    consumer_db.close().await;
    if !check.ok(appended) {
        bail!("{label}: the effects do not match the appended events");
    }
    Ok(())
}

struct Check {
    logged: i64,
    unpublished: i64,
    effects: i64,
    distinct: i64,
    matched: i64,
}

impl Check {
    fn ok(&self, appended: u64) -> bool {
        let appended = i64::try_from(appended).unwrap_or(i64::MAX);
        self.logged == appended
            && self.unpublished == 0
            && self.effects == appended
            && self.distinct == appended
            && self.matched == appended
    }
}

/// Counts, as the system workers' role (which sees every tenant's rows;
/// the owner is held to the tenant policies like everyone): the log, what
/// is unpublished, the effects, distinct effects and effects of logged
/// events.
async fn check(stores: &Stores, appended: u64) -> anyhow::Result<Check> {
    let db = &connect(&stores.system_url, 1).await?;
    let transaction = db.begin_system().await?;
    let count = async |sql: &str| -> anyhow::Result<i64> {
        let row = transaction
            .query_one_raw(Statement::from_string(db.backend(), sql))
            .await?
            .context("a count")?;
        Ok(row.try_get::<i64>("", "n")?)
    };
    let check = Check {
        logged: count("SELECT count(*) AS n FROM event_log").await?,
        unpublished: count(
            "SELECT count(*) AS n FROM event_log WHERE seq > \
             (SELECT c.seq FROM relay_cursors c WHERE c.partition = event_log.partition)",
        )
        .await?,
        effects: count("SELECT count(*) AS n FROM bench_effects").await?,
        distinct: count("SELECT count(DISTINCT event_id) AS n FROM bench_effects").await?,
        matched: count(
            "SELECT count(*) AS n FROM bench_effects e JOIN event_log l ON l.id = e.event_id",
        )
        .await?,
    };
    transaction.commit().await?;
    db.close().await;
    if !check.ok(appended) {
        eprintln!(
            "check: appended {appended}, logged {}, unpublished {}, effects {}, distinct {}, of logged events {}",
            check.logged, check.unpublished, check.effects, check.distinct, check.matched
        );
    }
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_rewritten_and_masked() {
        assert_eq!(
            on_database(
                "postgres://a:b@127.0.0.1:5432/postgres?sslmode=disable",
                "x",
                None
            )
            .unwrap(),
            "postgres://a:b@127.0.0.1:5432/x?sslmode=disable"
        );
        assert_eq!(
            on_database("postgres://a@127.0.0.1:5432/postgres", "x", Some("r:p")).unwrap(),
            "postgres://r:p@127.0.0.1:5432/x"
        );
        assert_eq!(
            masked("postgres://a:secret@h:1/d"),
            "postgres://a:***@h:1/d"
        );
        assert_eq!(masked("postgres://a@h:1/d"), "postgres://a@h:1/d");
    }

    #[test]
    fn a_bench_event_is_a_few_hundred_bytes() {
        let size = bench_event(TenantId::new(), 12345).encode().len();
        assert!((150..400).contains(&size), "{size} bytes");
    }
}
