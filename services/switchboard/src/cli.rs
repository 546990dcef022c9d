//! The command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use switchboard_config::{CONFIG_FILE_ENV, Config};

use crate::{contacts, events, migrate, run, services, tenants};

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Switchboard: a multi-tenant contact-center platform"
)]
pub struct Cli {
    /// Config file (default: ./switchboard.toml when present).
    #[arg(long, global = true, env = CONFIG_FILE_ENV, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every service in one process on embedded backends (SQLite under the
    /// data directory, in-process cache and bus, local objects).
    Dev(DevArgs),
    /// The named services against the backends in the config.
    Serve(ServeArgs),
    /// Database schema migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// The event backbone: replay events to a consumer.
    Events {
        #[command(subcommand)]
        action: EventsAction,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Operator actions on tenants.
    Tenants {
        #[command(subcommand)]
        action: TenantsAction,
    },
    /// Contacts without a phone system: simulate a call.
    Contacts {
        #[command(subcommand)]
        action: ContactsAction,
    },
}

#[derive(Args)]
struct DevArgs {
    /// Where the embedded backends keep their files (overrides `data_dir`).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Also create a demo tenant (owner, supervisor, agents) and print how
    /// to log in.
    #[arg(long)]
    demo: bool,
}

#[derive(Args)]
struct ServeArgs {
    /// Comma-separated services to run, or `all`.
    #[arg(
        long,
        value_delimiter = ',',
        required = true,
        value_name = "NAMES",
        long_help = services::help()
    )]
    services: Vec<String>,
}

#[derive(Subcommand)]
pub enum MigrateAction {
    /// Apply pending migrations (all, or `--steps N`).
    Up {
        #[arg(long)]
        steps: Option<u32>,
    },
    /// Roll back applied migrations (the last one, or `--steps N`).
    Down {
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List migrations and whether each is applied.
    Status,
}

#[derive(Subcommand)]
pub enum EventsAction {
    /// Re-deliver stored events to one consumer (e.g. to rebuild a
    /// projection): the running relay sends them to that consumer's queue
    /// only, and the consumer applies them again.
    Replay {
        /// The consumer (its queue name), e.g. `webhooks`.
        #[arg(long, value_name = "NAME")]
        consumer: String,
        /// Events that occurred at or after this time: RFC 3339
        /// (`2026-11-23T08:00:00Z`) or a duration ago (`2h`, `3days`).
        #[arg(long, value_name = "TIME")]
        since: String,
        /// Only this tenant's events.
        #[arg(long, value_name = "TENANT_ID")]
        tenant: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum TenantsAction {
    /// Put a tenant on a plan (tenants start on `trial` and cannot change
    /// plans themselves until billing does); refused if the plan has fewer
    /// seats than are in use.
    SetPlan {
        /// The tenant's handle (`slug`), as used to log in.
        tenant: String,
        /// The plan's code, e.g. `starter` or `pro`.
        plan: String,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Validate a config file (or the layered config) and print the
    /// effective configuration with secrets masked.
    Check {
        /// The file to check (default: the layered config).
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ContactsAction {
    /// Call a number as a carrier call would arrive at the edge: through
    /// the routing service's gRPC API (`CallRouting`), its inbound rule
    /// and flow, into a queue and on to an agent. Prints the contact id
    /// and what happened.
    Simulate {
        /// The dialed number, E.164 (e.g. the demo's +12125550100).
        #[arg(long, value_name = "NUMBER")]
        to: String,
        /// The caller's number, E.164, or `anonymous`.
        #[arg(long, value_name = "NUMBER", default_value = "+12125550199")]
        from: String,
        /// The keys pressed at the flow's next menu; repeat for later
        /// menus (`--digits 1 --digits 42#`). Without: no input.
        #[arg(long, value_name = "KEYS")]
        digits: Vec<String>,
        /// The gRPC address of a node running the routing service (the
        /// `gRPC` line of its banner); default: `server.grpc_addr`.
        #[arg(long, value_name = "URL")]
        grpc: Option<String>,
    },
}

pub async fn execute(cli: Cli) -> anyhow::Result<()> {
    let load = |file: Option<&PathBuf>| {
        Config::load(file.map(PathBuf::as_path)).context("invalid configuration")
    };
    match cli.command {
        Command::Dev(args) => {
            let mut config = load(cli.config.as_ref())?.embedded();
            if let Some(data_dir) = args.data_dir {
                config.data_dir = data_dir;
            }
            run::run(config, services::all(), run::Mode::Dev { demo: args.demo }).await
        }
        Command::Serve(args) => {
            let config = load(cli.config.as_ref())?;
            let selected = services::select(&args.services)?;
            run::run(config, selected, run::Mode::Serve).await
        }
        Command::Migrate { action } => {
            let config = load(cli.config.as_ref())?;
            migrate::execute(&config, action).await
        }
        Command::Events { action } => {
            let config = load(cli.config.as_ref())?;
            events::execute(&config, action).await
        }
        Command::Tenants { action } => {
            let config = load(cli.config.as_ref())?;
            tenants::execute(&config, action).await
        }
        Command::Config {
            action: ConfigAction::Check { file },
        } => {
            let config = load(file.as_ref().or(cli.config.as_ref()))?;
            print!("{}", config.to_masked_toml());
            eprintln!("config is valid");
            Ok(())
        }
        Command::Contacts {
            action:
                ContactsAction::Simulate {
                    to,
                    from,
                    digits,
                    grpc,
                },
        } => {
            let config = load(cli.config.as_ref())?;
            let grpc = match grpc {
                Some(grpc) => grpc,
                None => local_url(config.server.grpc_addr),
            };
            // It plays the edge: it signs its calls with the deployment's
            // internal key, as the edge does.
            let keys = crate::keys::service_keys(&config)?;
            contacts::simulate(contacts::Simulation {
                credentials: switchboard_rpc::Credentials::new(std::sync::Arc::new(keys), "edge"),
                grpc,
                to,
                from,
                digits,
            })
            .await
        }
    }
}

/// `http://addr`, with an unspecified address (`0.0.0.0`, `[::]`) taken
/// as this machine.
fn local_url(mut addr: std::net::SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}")
}
