//! The in-process bus (`switchboard dev`, tests): raw publish →
//! subscribe/ack throughput, then, for information, the whole pipeline on
//! SQLite with the in-process bus.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use switchboard_migrations::{Migrator, MigratorTrait};
use switchboard_platform::bus::MemoryBus;
use switchboard_platform::{Bus, Message, QueueSpec};
use switchboard_tenancy::TenantId;
use tokio_util::sync::CancellationToken;

use crate::pipeline::{self, BusKind, Load, Stores, bench_event};
use crate::probe::Counter;
use crate::report;

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Measured seconds of the raw bus test (after the warm-up).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Messages per `publish_batch` call.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Competing subscriptions on the queue.
    #[arg(long, default_value_t = 1)]
    pub subscribers: usize,
    /// Unacknowledged deliveries per subscription.
    #[arg(long, default_value_t = 256)]
    pub prefetch: u16,
    /// Messages published but not yet acknowledged, at most.
    #[arg(long, default_value_t = 20_000)]
    pub max_backlog: u64,
    /// Measured seconds of the SQLite + in-process bus pipeline (0: skip it).
    #[arg(long, default_value_t = 20)]
    pub pipeline_duration: u64,
    /// Events/s the SQLite pipeline's writers append (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub pipeline_rate: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    raw_bus(&args).await?;
    if args.pipeline_duration > 0 {
        sqlite_pipeline(&args).await?;
    }
    Ok(())
}

/// One publisher task calling `publish_batch`, `--subscribers` tasks each
/// taking deliveries with `next` and acknowledging them one by one.
async fn raw_bus(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.batch > 0 && args.subscribers > 0);
    let bus = MemoryBus::new();
    let spec = QueueSpec::new("bench", ["*.bench.#"]).with_prefetch(args.prefetch);
    bus.declare_queue(&spec).await?;
    let tenants: Vec<TenantId> = (0..8).map(|_| TenantId::new()).collect();
    // Real envelopes, encoded once: this measures the bus, not protobuf.
    let messages: Vec<Message> = (0..args.batch as u64)
        .map(|n| {
            let event = bench_event(tenants[(n / 50) as usize % tenants.len()], n);
            Message::new(event.routing_key(), Bytes::from(event.encode()))
        })
        .collect();
    let stop = CancellationToken::new();
    let published = Arc::new(Counter::default());
    let acked = Arc::new(Counter::default());

    let mut subscribers = Vec::new();
    for _ in 0..args.subscribers {
        let mut subscription = bus.subscribe(&spec).await?;
        let (stop, acked) = (stop.clone(), acked.clone());
        subscribers.push(tokio::spawn(async move {
            loop {
                let delivery = tokio::select! {
                    () = stop.cancelled() => break,
                    delivery = subscription.next() => delivery?,
                };
                let Some(delivery) = delivery else { break };
                delivery.ack().await?;
                acked.add(1);
            }
            anyhow::Ok(())
        }));
    }
    let publisher = {
        let (bus, stop, published, acked) =
            (bus.clone(), stop.clone(), published.clone(), acked.clone());
        let max_backlog = args.max_backlog;
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                if published.get().saturating_sub(acked.get()) + messages.len() as u64 > max_backlog
                {
                    tokio::task::yield_now().await;
                    continue;
                }
                bus.publish_batch(&messages).await?;
                published.add(messages.len() as u64);
            }
            anyhow::Ok(())
        })
    };

    eprintln!(
        "memory bus: publish_batch of {} → {} subscription(s), prefetch {}, ack each; {} s warm-up, {} s measured",
        args.batch, args.subscribers, args.prefetch, args.warmup, args.duration
    );
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let (start, acked_before) = (std::time::Instant::now(), acked.get());
    let cpu_before = report::process_cpu_seconds().unwrap_or(0.0);
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    let (seconds, count) = (start.elapsed().as_secs_f64(), acked.get() - acked_before);
    let cpu = (report::process_cpu_seconds().unwrap_or(0.0) - cpu_before) / seconds;
    stop.cancel();
    for task in subscribers.into_iter().chain([publisher]) {
        match tokio::time::timeout(Duration::from_secs(10), task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => bail!("the memory bus test failed: {error:#}"),
            Ok(Err(error)) => bail!("a memory bus task panicked: {error}"),
            Err(_) => bail!("a memory bus task did not stop"),
        }
    }
    bus.close().await?;
    let rate = count as f64 / seconds;
    report::result(
        "memory-bus",
        &[
            ("events_per_s", format!("{rate:.0}")),
            ("measured_events", count.to_string()),
            ("seconds", format!("{seconds:.1}")),
            ("cpu_cores", format!("{cpu:.2}")),
        ],
    );
    eprintln!(
        "memory bus: {rate:.0} events/s published, delivered and acknowledged ({cpu:.2} cores)"
    );
    Ok(())
}

/// The pipeline of `pipeline`, on a SQLite file and the in-process bus
/// (what `switchboard dev` runs).
async fn sqlite_pipeline(args: &Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("a temporary directory")?;
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let owner = pipeline::connect(&url, 2).await?;
    Migrator::up(owner.connection(), None)
        .await
        .context("migrating the SQLite database")?;
    pipeline::create_effects_table(&owner).await?;
    let stores = Stores {
        owner,
        service_url: url.clone(),
        system_url: url,
    };
    let load = Load {
        duration: args.pipeline_duration,
        warmup: 5,
        rate: args.pipeline_rate,
        max_backlog: 5_000,
        writers: 8,
        writer_batch: 20,
        tenants: 8,
        relays: 1,
        relay_batch: 500,
        pack_events: switchboard_events::pack::MAX_EVENTS,
        relay_poll_ms: 50,
        consumers: 1,
        consumer_batch: 512,
        consumer_concurrency: 1,
        prefetch: 256,
        drain_timeout: 120,
        profile: false,
    };
    let outcome = pipeline::run_pipeline(
        "memory-pipeline",
        &stores,
        &BusKind::Memory(MemoryBus::new()),
        "bench",
        &load,
    )
    .await;
    stores.owner.close().await;
    outcome
}
