//! What Redis and the engine cost on their own, in the same run:
//!
//! - `encode`: the tenant in memory; per operation kind (enqueue, accept,
//!   end), the engine's time, the time to turn its changed records and its
//!   routing events into what the host writes, and how many fields and
//!   bytes that is.
//! - `ping`: `--clients` tasks sending PING through one `RedisCache`
//!   (one multiplexed connection, as the host has): Redis's round trip.
//! - `write-serial`: one task calling `Cache::fenced_write` with what the
//!   host writes for one enqueue (records and journaled events), one at a
//!   time: the most a host writing one operation per round trip can do.
//! - `write-concurrent`: `--clients` tasks doing the same at once (they
//!   share the connection, so their commands are pipelined).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use switchboard_acd::{Engine, Outcome};
use switchboard_platform::Cache;
use switchboard_platform::cache::RedisCache;
use switchboard_routing::events::events_of;
use switchboard_tenancy::TenantId;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::report::{Cpu, RedisStats, Samples, result};
use crate::scenario::{self, Rng, Scenario};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Concurrent tasks of `ping` and `write-concurrent`.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Contact cycles of the in-memory `encode` measure.
    #[arg(long, default_value_t = 20_000)]
    encode_cycles: u64,
}

type Puts = Vec<(String, Bytes)>;

/// The host's encoding of an outcome: its changed records as puts and
/// deletes, then its routing events as journal fields (what
/// `EngineHost::execute` writes).
fn encode(
    tenant: TenantId,
    engine: &Engine,
    outcome: &Outcome,
    seq: &mut u64,
) -> (Puts, Vec<String>) {
    let mut puts = Vec::new();
    let mut deletes = Vec::new();
    for (field, value) in engine.changed_records(&outcome.changed) {
        match value {
            Some(value) => puts.push((field, Bytes::from(value))),
            None => deletes.push(field),
        }
    }
    for event in events_of(tenant, outcome, engine) {
        puts.push((format!("j:{:020}", *seq), Bytes::from(event.encode())));
        *seq += 1;
    }
    (puts, deletes)
}

#[derive(Default)]
struct KindCost {
    engine_ns: u64,
    encode_ns: u64,
    fields: u64,
    bytes: u64,
    count: u64,
}

impl KindCost {
    fn add(&mut self, engine: Duration, encode: Duration, puts: &Puts, deletes: &[String]) {
        self.engine_ns += engine.as_nanos() as u64;
        self.encode_ns += encode.as_nanos() as u64;
        self.fields += (puts.len() + deletes.len()) as u64;
        self.bytes += puts
            .iter()
            .map(|(f, v)| (f.len() + v.len()) as u64)
            .sum::<u64>()
            + deletes.iter().map(|f| f.len() as u64).sum::<u64>();
        self.count += 1;
    }

    fn fields(&self, name: &str) -> Vec<(String, String)> {
        let n = self.count.max(1) as f64;
        vec![
            (
                format!("engine_us_{name}"),
                format!("{:.2}", self.engine_ns as f64 / n / 1000.0),
            ),
            (
                format!("encode_us_{name}"),
                format!("{:.2}", self.encode_ns as f64 / n / 1000.0),
            ),
            (
                format!("fields_{name}"),
                format!("{:.1}", self.fields as f64 / n),
            ),
            (
                format!("bytes_{name}"),
                format!("{:.0}", self.bytes as f64 / n),
            ),
        ]
    }
}

/// The in-memory measure; returns one enqueue's records (the payload of
/// the write baselines).
fn measure_encoding(cycles: u64) -> Puts {
    let scenario = Scenario::new();
    let mut engine = scenario.engine();
    let mut rng = Rng(0x0e0c_0de0_0000_0001);
    let (mut enq, mut acc, mut end) = (
        KindCost::default(),
        KindCost::default(),
        KindCost::default(),
    );
    let mut sample = None;
    let tenant = TenantId::new();
    let mut seq = 0_u64;
    for n in 0..cycles {
        let id = switchboard_acd::ContactId::from_u128(0x7000_0000 + u128::from(n));
        let queue = scenario.queue(&mut rng);
        let mut timed = |engine: &mut Engine,
                         cost: &mut KindCost,
                         operation: scenario::Operation|
         -> (Outcome, Puts) {
            let started = std::time::Instant::now();
            let outcome = operation(engine).expect("the operation runs");
            let ran = std::time::Instant::now();
            let (puts, deletes) = encode(tenant, engine, &outcome, &mut seq);
            cost.add(ran - started, ran.elapsed(), &puts, &deletes);
            (outcome, puts)
        };
        let (queued, puts) = timed(
            &mut engine,
            &mut enq,
            Box::new(scenario::enqueue(id, queue)),
        );
        if sample.is_none() {
            sample = Some(puts);
        }
        let mut pending = queued.offers;
        while let Some(offer) = pending.pop() {
            let (accepted, _) = timed(
                &mut engine,
                &mut acc,
                Box::new(scenario::accept(offer.contact, offer.agent)),
            );
            pending.extend(accepted.offers);
            let (ended, _) = timed(
                &mut engine,
                &mut end,
                Box::new(scenario::end(offer.contact)),
            );
            pending.extend(ended.offers);
        }
    }
    let mut fields = vec![("cycles".to_owned(), cycles.to_string())];
    fields.extend(enq.fields("enqueue"));
    fields.extend(acc.fields("accept"));
    fields.extend(end.fields("end"));
    result("encode", &fields);
    sample.unwrap_or_default()
}

/// Runs `clients` tasks looping `call` for warm-up + duration; reports
/// calls/s and latency over the measured window.
async fn measure<F, Fut>(
    label: &str,
    clients: usize,
    warm: Duration,
    measured: Duration,
    stats: &mut RedisStats,
    call: F,
) -> anyhow::Result<()>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let start = Instant::now();
    let end = start + warm + measured;
    let mut tasks = JoinSet::new();
    for _ in 0..clients {
        let call = call.clone();
        tasks.spawn(async move {
            let mut samples = Samples::default();
            while Instant::now() < end {
                let called = Instant::now();
                call().await?;
                samples.push(start.elapsed().as_micros() as u64, called.elapsed());
            }
            anyhow::Ok(samples)
        });
    }
    tokio::time::sleep_until(start + warm).await;
    let (cpu, scripts) = (Cpu::now(), stats.scripts().await);
    tokio::time::sleep_until(end).await;
    let (cpu_end, scripts_end) = (Cpu::now(), stats.scripts().await);
    let mut samples = Samples::default();
    while let Some(task) = tasks.join_next().await {
        samples.extend(task??);
    }
    let window = samples.window(
        warm.as_micros() as u64,
        (warm + measured).as_micros() as u64,
    );
    let mut fields = vec![
        ("clients".to_owned(), clients.to_string()),
        ("seconds".to_owned(), measured.as_secs().to_string()),
    ];
    fields.extend(window.fields(""));
    fields.extend(cpu.fields(&cpu_end));
    fields.extend(scripts.fields(&scripts_end, measured.as_secs_f64()));
    result(label, &fields);
    eprintln!(
        "{label}: {:.0}/s with {clients} task(s), p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        window.rate(),
        window.percentile_ms(50.0),
        window.percentile_ms(99.0),
        window.max_ms()
    );
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.clients > 0, "--clients must be positive");
    let puts = Arc::new(measure_encoding(args.encode_cycles));
    let prefix = format!("sbbench-routing-{}", uuid::Uuid::new_v4().simple());
    let cache: Arc<dyn Cache> = Arc::new(
        RedisCache::connect(&args.redis_url, &prefix)
            .await
            .context("connecting to Redis")?,
    );
    let mut stats = RedisStats::connect(&args.redis_url).await?;
    let (lease, state) = ("bench:{baseline}:lease", "bench:{baseline}:state");
    let token: Arc<[u8]> = Arc::from(&b"baseline-token"[..]);
    let ttl = Duration::from_secs(args.warmup + args.duration) * 3 + Duration::from_secs(30);
    anyhow::ensure!(
        cache.set_if_absent(lease, &token, ttl).await?,
        "the baseline's lease key exists"
    );
    let (warm, measured) = (
        Duration::from_secs(args.warmup),
        Duration::from_secs(args.duration),
    );

    let ping = {
        let cache = cache.clone();
        move || {
            let cache = cache.clone();
            async move { Ok::<(), anyhow::Error>(cache.ping().await?) }
        }
    };
    measure("ping", args.clients, warm, measured, &mut stats, ping).await?;

    let write = {
        let (cache, token, puts) = (cache.clone(), token.clone(), puts.clone());
        move || {
            let (cache, token, puts) = (cache.clone(), token.clone(), puts.clone());
            async move {
                let written = cache.fenced_write(lease, &token, state, &puts, &[]).await?;
                anyhow::ensure!(written, "the baseline's lease was lost");
                Ok::<(), anyhow::Error>(())
            }
        }
    };
    measure("write-serial", 1, warm, measured, &mut stats, write.clone()).await?;
    measure(
        "write-concurrent",
        args.clients,
        warm,
        measured,
        &mut stats,
        write,
    )
    .await?;

    let _ = cache.delete(state).await;
    let _ = cache.delete(lease).await;
    Ok(())
}
