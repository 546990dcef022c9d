//! Load test of the event backbone (see `loadtest/events/README.md`).
//!
//! - `baseline`: a bare lapin publish (persistent, publisher confirms, in
//!   windows) and consume (manual ack, prefetch) loop on a fresh durable
//!   queue: what RabbitMQ itself does on this machine, in this run.
//! - `pipeline`: writers append events to the outbox on PostgreSQL, relays
//!   publish them to RabbitMQ, consumers apply them with one row per event
//!   in PostgreSQL; sustained end-to-end events/s and latency.
//! - `memory`: the in-process bus alone, and the same pipeline on SQLite
//!   with the in-process bus (for information).
//!
//! Each scenario prints one `RESULT scenario=… key=value …` line per figure
//! on stdout (what `run.sh` reads) and a readable account on stderr.

mod baseline;
mod memory;
mod pipeline;
mod probe;
mod report;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "switchboard-loadtest-events",
    about = "Event backbone throughput and latency: outbox → relay → RabbitMQ → consumer, the in-process bus, and a bare lapin baseline."
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Bare lapin publish (persistent, confirms) + consume (manual ack) loop.
    Baseline(baseline::Args),
    /// Outbox on PostgreSQL → relay → RabbitMQ → consumer with effects in PostgreSQL.
    Pipeline(pipeline::Args),
    /// The in-process bus raw, then the pipeline on SQLite + the in-process bus.
    Memory(memory::Args),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.scenario {
            Scenario::Baseline(args) => baseline::run(args).await,
            Scenario::Pipeline(args) => pipeline::run(args).await,
            Scenario::Memory(args) => memory::run(args).await,
        }
    })
}
