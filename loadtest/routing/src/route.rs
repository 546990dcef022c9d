//! The routing scenarios: the tenant set up through a host on Redis, then
//! client tasks enqueueing contacts and freeing the agents they get.
//!
//! - `--mode burst`: rounds of `--clients` tasks each enqueueing `--burst`
//!   contacts back to back (timed), then every offer accepted and ended
//!   (not timed): contacts routed per second of enqueueing, like the
//!   criterion bench's `enqueue_offer`.
//! - `--mode cycle`: each task enqueues a contact, then accepts and ends
//!   every offer it got (its own, and any a freed agent made for a contact
//!   that had waited), and again; `--rate` contacts/s in all (0: as fast
//!   as it goes).
//!
//! Operations go through the service's `switchboard_routing::EngineHost`
//! (group commit: applied in memory, written in batches, one fenced write
//! per Redis round trip). A contact's latency is from the call to
//! `execute(enqueue)` to the `Outcome` carrying its offer; a contact no agent could take at once
//! (all its queue's qualified agents busy) is counted apart and has no
//! latency (it is offered later, in another operation's outcome).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;

use anyhow::Context as _;
use switchboard_acd::{AcdError, AgentStateKind, ContactId, Engine, Offer, Outcome};
use switchboard_platform::Cache;
use switchboard_platform::cache::RedisCache;
use switchboard_routing::{EngineHost, HostError, HostOptions, HostStats};
use switchboard_tenancy::TenantId;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::report::{Cpu, RedisStats, Samples, result};
use crate::scenario::{self, Rng, Scenario};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Burst,
    Cycle,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    #[arg(long, value_enum, default_value = "cycle")]
    mode: Mode,
    /// Concurrent client tasks.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Contacts per second in all (`cycle` only); 0 = as fast as it goes.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Contacts each client enqueues per round (`burst` only).
    #[arg(long, default_value_t = 16)]
    burst: usize,
    /// Seconds before measuring.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Name of the `RESULT` line (default: `host-<mode>`).
    #[arg(long)]
    label: Option<String>,
}

/// The service's host and the benchmark's tenant in it.
struct Driver {
    host: EngineHost,
    tenant: TenantId,
}

/// The host's keys of a tenant (`switchboard_routing::host`: the lease, and
/// the state hash with the engine's records and the `j:<seq>` journal).
fn lease_key(tenant: TenantId) -> String {
    format!("routing:{{{tenant}}}:lease")
}

fn state_key(tenant: TenantId) -> String {
    format!("routing:{{{tenant}}}:state")
}

/// Events the journal trimmer takes per call (the runtime's
/// `journal_batch`).
const JOURNAL_BATCH: usize = 500;

/// How often the journal is trimmed: the runtime's mover moves the
/// journal to the outbox (a PostgreSQL transaction, not part of this
/// benchmark) and trims it, continuously under load.
const JOURNAL_EVERY: Duration = Duration::from_millis(10);

impl Driver {
    /// Trims the whole journal as the runtime's mover does after moving
    /// the events to the outbox; returns how many events it trimmed.
    async fn trim_journal(&self) -> Result<u64, HostError> {
        let mut trimmed = 0;
        loop {
            let seqs: Vec<u64> = self
                .host
                .journal(self.tenant, JOURNAL_BATCH)
                .await
                .into_iter()
                .map(|(seq, _)| seq)
                .collect();
            if seqs.is_empty() {
                return Ok(trimmed);
            }
            let count = seqs.len();
            self.host.journal_done(self.tenant, &seqs).await?;
            trimmed += count as u64;
            if count < JOURNAL_BATCH {
                return Ok(trimmed);
            }
        }
    }

    async fn execute(
        &self,
        operation: impl FnOnce(&mut Engine) -> Result<Outcome, AcdError> + Send + 'static,
    ) -> Result<Outcome, HostError> {
        self.host.execute(self.tenant, operation).await
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Enqueue = 0,
    Accept = 1,
    End = 2,
}

/// When each operation ran on the tenant's engine and how long it took
/// (operations of a tenant run one at a time, under the host's short lock).
struct Probe {
    origin: std::time::Instant,
    /// (start ns since origin, engine ns, kind).
    ops: SyncMutex<Vec<(u64, u32, u8)>>,
}

impl Probe {
    fn wrap(
        self: &Arc<Self>,
        kind: Kind,
        operation: impl FnOnce(&mut Engine) -> Result<Outcome, AcdError> + Send + 'static,
    ) -> impl FnOnce(&mut Engine) -> Result<Outcome, AcdError> + Send + 'static {
        let probe = self.clone();
        move |engine: &mut Engine| {
            let start = std::time::Instant::now();
            let outcome = operation(engine);
            let took = start.elapsed().as_nanos() as u32;
            let at = start.duration_since(probe.origin).as_nanos() as u64;
            probe
                .ops
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((at, took, kind as u8));
            outcome
        }
    }

    /// `ops_per_s`, `engine_busy`, `engine_us_<kind>` (medians) over the
    /// operations that started in `[from, to)`.
    fn fields(&self, from: Duration, to: Duration) -> Vec<(String, String)> {
        let (from, to) = (from.as_nanos() as u64, to.as_nanos() as u64);
        let ops: Vec<(u64, u32, u8)> = self
            .ops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .filter(|&(at, _, _)| at >= from && at < to)
            .collect();
        let seconds = (to - from) as f64 / 1e9;
        let engine_ns: u64 = ops.iter().map(|op| u64::from(op.1)).sum();
        let mut fields = vec![
            (
                "ops_per_s".to_owned(),
                format!("{:.0}", ops.len() as f64 / seconds),
            ),
            // The share of the time the tenant's engine was running.
            (
                "engine_busy".to_owned(),
                format!("{:.3}", engine_ns as f64 / 1e9 / seconds),
            ),
        ];
        for (kind, name) in [(0, "enqueue"), (1, "accept"), (2, "end")] {
            let mut took: Vec<u32> = ops
                .iter()
                .filter(|op| op.2 == kind)
                .map(|op| op.1)
                .collect();
            took.sort_unstable();
            fields.push((
                format!("engine_us_{name}"),
                format!("{:.1}", crate::report::percentile(&took, 50.0) / 1000.0),
            ));
        }
        fields
    }
}

struct Ctx {
    driver: Driver,
    scenario: Scenario,
    probe: Arc<Probe>,
    next_contact: AtomicU64,
    start: Instant,
}

/// What one client saw.
#[derive(Default)]
struct Log {
    /// Contacts offered in their enqueue's outcome: when, and the latency.
    offered: Samples,
    /// Contacts enqueued (done at, and the latency whether offered or not).
    enqueued: Samples,
    /// Contacts no agent could take at once (done at, latency).
    waited: Samples,
    /// Contacts ended (the agent free again): when (latency unused).
    cycles: Samples,
}

impl Log {
    fn merge(&mut self, other: Log) {
        self.offered.extend(other.offered);
        self.enqueued.extend(other.enqueued);
        self.waited.extend(other.waited);
        self.cycles.extend(other.cycles);
    }
}

impl Ctx {
    fn since_start(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    fn contact_id(&self) -> ContactId {
        ContactId::from_u128(
            0x5000_0000_0000 + u128::from(self.next_contact.fetch_add(1, Ordering::Relaxed)),
        )
    }

    /// Enqueues one contact on a random staffed queue; returns the offers
    /// its outcome carried.
    async fn enqueue(&self, rng: &mut Rng, log: &mut Log) -> anyhow::Result<Vec<Offer>> {
        let id = self.contact_id();
        let queue = self.scenario.queue(rng);
        let operation = self.probe.wrap(Kind::Enqueue, scenario::enqueue(id, queue));
        let called = Instant::now();
        let outcome = self.driver.execute(operation).await.context("enqueue")?;
        let latency = called.elapsed();
        let done = self.since_start();
        log.enqueued.push(done, latency);
        if outcome.offers.iter().any(|offer| offer.contact == id) {
            log.offered.push(done, latency);
        } else {
            log.waited.push(done, latency);
        }
        Ok(outcome.offers)
    }

    /// Accepts and ends every offer, and those that freeing the agents
    /// makes, until none is pending.
    async fn settle(&self, mut pending: Vec<Offer>, log: &mut Log) -> anyhow::Result<()> {
        while let Some(offer) = pending.pop() {
            let accept = self
                .probe
                .wrap(Kind::Accept, scenario::accept(offer.contact, offer.agent));
            let accepted = self.driver.execute(accept).await.context("accept")?;
            pending.extend(accepted.offers);
            let end = self.probe.wrap(Kind::End, scenario::end(offer.contact));
            let ended = self.driver.execute(end).await.context("end")?;
            pending.extend(ended.offers);
            log.cycles.push(self.since_start(), Duration::ZERO);
        }
        Ok(())
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.clients > 0, "--clients must be positive");
    let label = args
        .label
        .clone()
        .unwrap_or_else(|| format!("host-{}", format!("{:?}", args.mode).to_lowercase()));
    let scenario = Scenario::new();
    let prefix = format!("sbbench-routing-{}", uuid::Uuid::new_v4().simple());
    let cache: Arc<dyn Cache> = Arc::new(
        RedisCache::connect(&args.redis_url, &prefix)
            .await
            .context("connecting to Redis")?,
    );
    let mut stats = RedisStats::connect(&args.redis_url).await?;
    let tenant = TenantId::new();
    let driver = Driver {
        host: EngineHost::new(
            cache.clone(),
            HostOptions {
                holder: "loadtest-routing".into(),
                lease_ttl: Duration::from_secs(10),
            },
        ),
        tenant,
    };

    let set_up = Instant::now();
    for operation in scenario.setup_operations() {
        driver.execute(operation).await.context("setting up")?;
    }
    eprintln!(
        "{label}: tenant set up through the host in {:.1} s ({} queues, {} agents, {} staffed queues)",
        set_up.elapsed().as_secs_f64(),
        scenario.queues.len(),
        scenario.agents.len(),
        scenario.staffed.len()
    );

    let start = Instant::now();
    let ctx = Arc::new(Ctx {
        driver,
        scenario,
        probe: Arc::new(Probe {
            origin: start.into_std(),
            ops: SyncMutex::new(Vec::new()),
        }),
        next_contact: AtomicU64::new(0),
        start,
    });
    let warm = Duration::from_secs(args.warmup);
    let measured = Duration::from_secs(args.duration);
    let (from_us, to_us) = (
        warm.as_micros() as u64,
        (warm + measured).as_micros() as u64,
    );

    // CPU, Redis's script time and the host's writes over the window.
    let watcher = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(start + warm).await;
            let (cpu, scripts) = (Cpu::now(), stats.scripts().await);
            let host = ctx.driver.host.stats();
            tokio::time::sleep_until(start + warm + measured).await;
            let (cpu_end, scripts_end) = (Cpu::now(), stats.scripts().await);
            let host_end = ctx.driver.host.stats();
            let mut fields = cpu.fields(&cpu_end);
            fields.extend(scripts.fields(&scripts_end, measured.as_secs_f64()));
            fields.extend(write_fields(host, host_end, measured));
            fields
        })
    };

    // The journal trimmer, as the runtime's mover (without the outbox).
    let trimmer_stop = Arc::new(tokio::sync::Notify::new());
    let trimmer = {
        let (ctx, stop) = (ctx.clone(), trimmer_stop.clone());
        tokio::spawn(async move {
            let mut trims = Samples::default();
            loop {
                let count = ctx
                    .driver
                    .trim_journal()
                    .await
                    .context("trimming the journal")?;
                for _ in 0..count {
                    trims.push(ctx.since_start(), Duration::ZERO);
                }
                tokio::select! {
                    _ = stop.notified() => return anyhow::Ok(trims),
                    _ = tokio::time::sleep(JOURNAL_EVERY) => {}
                }
            }
        })
    };

    let mut log = Log::default();
    let mut timed = Duration::ZERO;
    match args.mode {
        Mode::Cycle => {
            let mut clients = JoinSet::new();
            for index in 0..args.clients {
                let ctx = ctx.clone();
                let (rate, count) = (args.rate, args.clients);
                clients.spawn(async move {
                    let mut rng = Rng(0x00c0_ffee_0000_0001 + index as u64 * 0x9e37_79b9);
                    let mut log = Log::default();
                    let end = start + warm + measured;
                    let interval =
                        (rate > 0).then(|| Duration::from_secs_f64(count as f64 / rate as f64));
                    let mut next = start
                        + interval.map_or(Duration::ZERO, |i| i * index as u32 / count as u32);
                    loop {
                        if let Some(interval) = interval {
                            if next >= end {
                                break;
                            }
                            tokio::time::sleep_until(next).await;
                            next += interval;
                        } else if Instant::now() >= end {
                            break;
                        }
                        let offers = ctx.enqueue(&mut rng, &mut log).await?;
                        ctx.settle(offers, &mut log).await?;
                    }
                    anyhow::Ok(log)
                });
            }
            while let Some(client) = clients.join_next().await {
                log.merge(client??);
            }
        }
        Mode::Burst => {
            let end = start + warm + measured;
            let mut round = 0_u64;
            while Instant::now() < end {
                round += 1;
                let began = Instant::now();
                let mut clients = JoinSet::new();
                for index in 0..args.clients {
                    let ctx = ctx.clone();
                    let burst = args.burst;
                    clients.spawn(async move {
                        let mut rng = Rng(0xb0b0_0000_0000_0001 ^ (round << 20) ^ index as u64);
                        let mut log = Log::default();
                        let mut offers = Vec::new();
                        for _ in 0..burst {
                            offers.extend(ctx.enqueue(&mut rng, &mut log).await?);
                        }
                        anyhow::Ok((log, offers))
                    });
                }
                let mut offers = Vec::new();
                let mut round_log = Log::default();
                while let Some(client) = clients.join_next().await {
                    let (client_log, client_offers) = client??;
                    round_log.merge(client_log);
                    offers.extend(client_offers);
                }
                let ended = Instant::now();
                // Only rounds wholly inside the window count.
                if began >= start + warm && ended <= end {
                    timed += ended - began;
                    log.merge(round_log);
                }
                // Free the agents, not timed.
                let mut settlers = JoinSet::new();
                let share = offers.len().div_ceil(args.clients).max(1);
                while !offers.is_empty() {
                    let chunk: Vec<Offer> = offers.drain(..share.min(offers.len())).collect();
                    let ctx = ctx.clone();
                    settlers.spawn(async move {
                        let mut log = Log::default();
                        ctx.settle(chunk, &mut log).await?;
                        anyhow::Ok(log)
                    });
                }
                while let Some(settler) = settlers.join_next().await {
                    settler??;
                }
            }
        }
    }
    let window_fields = watcher.await?;
    trimmer_stop.notify_one();
    let trims = trimmer.await??.window(from_us, to_us);
    ctx.driver
        .trim_journal()
        .await
        .context("trimming the journal")?;

    // Report.
    let offered = log.offered.window(from_us, to_us);
    let enqueued = log.enqueued.window(from_us, to_us);
    let waited = log.waited.window(from_us, to_us);
    let cycles = log.cycles.window(from_us, to_us);
    let mut fields = vec![
        ("mode".to_owned(), format!("{:?}", args.mode).to_lowercase()),
        ("clients".to_owned(), args.clients.to_string()),
        ("rate".to_owned(), args.rate.to_string()),
        ("seconds".to_owned(), args.duration.to_string()),
    ];
    match args.mode {
        Mode::Burst => {
            let seconds = timed.as_secs_f64().max(1e-6);
            fields.push((
                "routed_per_s".into(),
                format!("{:.0}", offered.count() as f64 / seconds),
            ));
            fields.push(("timed_s".into(), format!("{seconds:.2}")));
        }
        Mode::Cycle => {
            fields.push(("routed_per_s".into(), format!("{:.0}", offered.rate())));
        }
    }
    fields.extend(offered.fields("offered_"));
    fields.push(("enqueued_count".into(), enqueued.count().to_string()));
    fields.push(("enqueued_per_s".into(), format!("{:.0}", enqueued.rate())));
    fields.push(("waited_count".into(), waited.count().to_string()));
    fields.push(("cycles_per_s".into(), format!("{:.0}", cycles.rate())));
    fields.push((
        "cycles_min_1s_per_s".into(),
        cycles.min_second().to_string(),
    ));
    fields.push((
        "journal_events_per_s".into(),
        format!("{:.0}", trims.rate()),
    ));
    fields.extend(ctx.probe.fields(warm, warm + measured));
    fields.extend(window_fields);

    // The state in Redis must be the engine's: every agent available
    // again, no contact left, records equal to the memory's.
    let ctx = Arc::into_inner(ctx).context("clients still hold the context")?;
    let Driver { host, tenant } = ctx.driver;
    let memory = host.read(tenant, |e| e.records()).await?;
    host.release_all().await;
    let verified = verify(&cache, tenant, memory, &ctx.scenario).await;
    if let Err(error) = &verified {
        eprintln!("{label}: verification failed: {error:#}");
    }
    fields.push((
        "verified".into(),
        match &verified {
            Ok(()) => "yes".into(),
            Err(_) => "no".into(),
        },
    ));
    let _ = cache.delete(&state_key(tenant)).await;
    let _ = cache.delete(&lease_key(tenant)).await;
    // The list of tenants a host may keep (under this run's prefix).
    let _ = cache.delete("routing:tenants").await;
    result(&label, &fields);
    eprintln!(
        "{label}: {:.0} contacts routed/s (offered at enqueue), p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; {:.0} full cycles/s; {} contacts waited for an agent",
        match args.mode {
            Mode::Burst => offered.count() as f64 / timed.as_secs_f64().max(1e-6),
            Mode::Cycle => offered.rate(),
        },
        offered.percentile_ms(50.0),
        offered.percentile_ms(99.0),
        offered.max_ms(),
        cycles.rate(),
        waited.count()
    );
    verified
}

/// The host's group commit over the window: `writes_per_s`,
/// `answered_per_write` (callers one write answered: operations, and the
/// trimmer's `journal_done`) and `us_per_write` (wall time between writes,
/// the writer's round trip when it never idles).
fn write_fields(from: HostStats, to: HostStats, window: Duration) -> Vec<(String, String)> {
    let writes = to.writes.saturating_sub(from.writes) as f64;
    let answered = to.answered.saturating_sub(from.answered) as f64;
    let per_write = |x: f64| if writes > 0.0 { x / writes } else { 0.0 };
    vec![
        (
            "writes_per_s".into(),
            format!("{:.0}", writes / window.as_secs_f64()),
        ),
        (
            "answered_per_write".into(),
            format!("{:.2}", per_write(answered)),
        ),
        (
            "us_per_write".into(),
            format!("{:.1}", per_write(window.as_secs_f64() * 1e6)),
        ),
    ]
}

async fn verify(
    cache: &Arc<dyn Cache>,
    tenant: TenantId,
    mut memory: Vec<(String, Vec<u8>)>,
    scenario: &Scenario,
) -> anyhow::Result<()> {
    // Everything but the host's events journal (`j:<seq>` fields, see
    // `switchboard_routing::host`) is the engine's.
    let engine_field = |field: &str| !field.starts_with("j:");
    let stored = cache.hash_get_all(&state_key(tenant)).await?;
    let mut stored: Vec<(String, Vec<u8>)> = stored
        .into_iter()
        .filter(|(field, _)| engine_field(field))
        .map(|(field, value)| (field, value.to_vec()))
        .collect();
    stored.sort();
    memory.sort();
    anyhow::ensure!(
        stored == memory,
        "the records in Redis ({}) differ from the engine's ({})",
        stored.len(),
        memory.len()
    );
    let engine = Engine::from_records(stored)?;
    engine
        .check_consistency()
        .map_err(|e| anyhow::anyhow!("inconsistent state: {e}"))?;
    anyhow::ensure!(engine.offers().is_empty(), "offers left");
    for queue in &scenario.staffed {
        anyhow::ensure!(engine.waiting(*queue)?.is_empty(), "contacts left waiting");
    }
    for profile in &scenario.agents {
        let state = engine.agent_state(profile.id)?;
        anyhow::ensure!(
            state.kind() == AgentStateKind::Available,
            "agent {} is {:?}, not available",
            profile.id,
            state.kind()
        );
    }
    Ok(())
}
