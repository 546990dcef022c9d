//! Load test of routing with Redis (see `loadtest/routing/README.md`):
//! one tenant with 2,000 agents, 100 queues and 20 skills, run by the
//! engine host on a real Redis.
//!
//! - `baseline`: the engine and its record encoding in memory, then raw
//!   Redis round trips (PING, and a fenced write of one enqueue's records,
//!   one at a time and concurrently) through the same `RedisCache`.
//! - `route`: contacts enqueued by concurrent clients through
//!   `EngineHost::execute`, offered to free agents, who are freed again;
//!   contacts/s, the enqueue → offer latency and the host's writes.
//!
//! Each scenario prints `RESULT scenario=… key=value …` lines on stdout
//! (what `run.sh` reads) and a readable account on stderr.

mod baseline;
mod report;
mod route;
mod scenario;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "switchboard-loadtest-routing",
    about = "Routing with Redis: contacts/s and enqueue → offer latency of the engine host for one large tenant, against raw Redis round trips."
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// The engine and its encoding in memory, then PING and fenced writes.
    Baseline(baseline::Args),
    /// Contacts through the engine host on Redis.
    Route(route::Args),
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
            Scenario::Route(args) => route::run(args).await,
        }
    })
}
