//! Starting a node: `switchboard dev` and `switchboard serve`.

use std::sync::Arc;

use anyhow::{Context, bail};
use switchboard_auth::ServiceKeys;
use switchboard_config::{BusBackend, CacheBackend, Config, ObjectsBackend};
use switchboard_edge::service::{self as edge, EdgeService, EdgeServiceOptions, RoutingPeers};
use switchboard_edge_api::{EdgeApi, RemoteEdge};
use switchboard_events::RelayOptions;
use switchboard_events::service::{self as events, EventsService};
use switchboard_gateway::GatewayOptions;
use switchboard_gateway::service::{self as gateway, GatewayPeers, GatewayService};
use switchboard_identity::Identity;
use switchboard_identity::service::{self as identity, IdentityService, IdentityServiceOptions};
use switchboard_identity_api::{IdentityApi, RemoteIdentity};
use switchboard_migrations::{Migrator, MigratorTrait, SYSTEM_ROLE};
use switchboard_platform::Backends;
use switchboard_routing::calls::RemoteCallRouting;
use switchboard_routing::config::{RemoteRoutingConfig, RoutingConfig, RoutingConfigApi};
use switchboard_routing::service::{self as routing, RoutingService, RoutingServiceOptions};
use switchboard_routing::{RemoteRouting, RoutingApi};
use switchboard_rpc::Credentials;
use switchboard_runtime::{Node, NodeOptions, ServiceParts};
use switchboard_webhooks::service::{self as webhooks, WebhooksService, WebhooksServiceOptions};
use switchboard_webhooks::{RemoteWebhooks, WebhooksApi};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::composition::{Peer, Plan};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Embedded backends; migrations applied at start; with `demo`, a demo
    /// tenant to log in to.
    Dev { demo: bool },
    /// Configured backends; the schema must be migrated already.
    Serve,
}

pub async fn run(config: Config, services: Vec<&'static str>, mode: Mode) -> anyhow::Result<()> {
    // A set of services that cannot work fails before anything starts.
    let plan = crate::composition::plan(&services, &config.peers)?;
    let mut telemetry = switchboard_runtime::telemetry::init(&config.telemetry)?;
    if mode == Mode::Serve {
        warn_about_embedded_backends(&config);
    }
    let backends = Backends::connect(&config).await.context("cannot start")?;
    let connection = backends.database.connection();
    match mode {
        Mode::Dev { .. } => Migrator::up(connection, None)
            .await
            .context("cannot apply database migrations")?,
        Mode::Serve => {
            let pending = Migrator::get_pending_migrations_read_only(connection)
                .await
                .context("cannot read migration status")?;
            if !pending.is_empty() {
                bail!(
                    "the database schema is behind: {} pending migration(s), first {}; run `switchboard migrate up`",
                    pending.len(),
                    pending[0].name()
                );
            }
        }
    }
    let privileged = match mode {
        Mode::Serve => check_least_privilege(&config, &backends, &services).await?,
        Mode::Dev { .. } => Vec::new(),
    };
    let installation_id = switchboard_migrations::installation_id(connection)
        .await
        .context("cannot read the installation id")?
        .to_string();

    let service_keys = Arc::new(
        crate::keys::service_keys(&config).context("cannot load the internal service keys")?,
    );
    let parts = compose(
        &config,
        &backends,
        (&services, &plan),
        &service_keys,
        mode,
        &installation_id,
    )
    .await?;
    let demo = match (mode, &parts.demo) {
        (Mode::Dev { demo: true }, Some((identity, routing_config))) => Some(
            crate::demo::seed(
                identity,
                routing_config,
                parts
                    .edge
                    .as_ref()
                    .map(|edge| (edge.accounts(), edge.trunks().store())),
            )
            .await?,
        ),
        _ => None,
    };
    let sip = parts.edge.as_ref().map(|edge| crate::demo::SipListeners {
        listening: edge.listening().to_vec(),
        domain: edge.sip_domain().to_owned(),
    });
    let node = Node::build(
        NodeOptions {
            config: config.clone(),
            services: parts.services,
            installation_id: installation_id.clone(),
            service_keys: service_keys.clone(),
        },
        backends.clone(),
    )
    .await?;
    // Listen for stop signals before the banner says the node is up: a
    // SIGTERM sent as soon as the banner is read must stop it gracefully,
    // not kill it with the signal's default action.
    let signals = StopSignals::listen();
    print_banner(
        &config,
        &backends,
        &node,
        (&services, &plan),
        mode,
        &installation_id,
    );
    if let Some(sip) = &sip {
        println!("{}", sip.banner_line());
    }
    for problem in &privileged {
        println!("  WARNING   {problem}");
    }
    if let Some(demo) = demo {
        demo.print(node.http_addr(), node.grpc_addr(), sip.as_ref());
    }
    println!("Press Ctrl-C to stop.");
    let handle = node.start();
    let stop = handle.stop_token();
    tokio::spawn(signals.stop(stop));
    let result = handle.wait().await;
    // Flushing the trace exporter blocks; keep it off the async workers.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    result.map_err(Into::into)
}

/// The services a node hosts, built in dependency order, each given its
/// peers: in process when hosted here, else their tonic clients at the
/// addresses from `[peers]`, signing as this node.
struct Composed {
    /// What each hosted service adds to the node, in `--services` order.
    services: Vec<ServiceParts>,
    /// Identity and the routing configuration, when both are hosted (the
    /// demo seed).
    demo: Option<(Identity, RoutingConfig)>,
    /// The edge, when hosted (its listeners, the demo's SIP accounts).
    edge: Option<Arc<EdgeService>>,
}

async fn compose(
    config: &Config,
    backends: &Backends,
    (services, plan): (&[&'static str], &Plan),
    service_keys: &Arc<ServiceKeys>,
    mode: Mode,
    installation_id: &str,
) -> anyhow::Result<Composed> {
    let hosts = |name: &str| services.contains(&name);
    let credentials = Credentials::new(service_keys.clone(), &services.join("+"));
    let remote = |name: &str| -> anyhow::Result<Option<Channel>> {
        match plan.peer(name) {
            Some(Peer::Remote(addresses)) => switchboard_rpc::connect_balanced(addresses)
                .map(Some)
                .map_err(|error| anyhow::anyhow!("config key `peers.{name}`: {error}")),
            _ => Ok(None),
        }
    };
    // A peer the plan gave this node: hosted here, or remote.
    let missing = |name: &str| anyhow::anyhow!("no {name} peer (the plan should have refused)");

    let identity = if hosts(identity::NAME) {
        let token_keys = crate::keys::token_keys(config)?;
        let options = IdentityServiceOptions::from_config(
            config,
            token_keys,
            matches!(mode, Mode::Dev { .. }),
        );
        Some(IdentityService::new(
            options,
            backends,
            service_keys.clone(),
        ))
    } else {
        None
    };
    let identity_api: Option<Arc<dyn IdentityApi>> = match remote(identity::NAME)? {
        Some(channel) => Some(Arc::new(RemoteIdentity::new(channel, credentials.clone()))),
        None => identity.as_ref().map(IdentityService::api),
    };
    let webhooks = if hosts(webhooks::NAME) {
        let options = WebhooksServiceOptions::from_config(config);
        Some(
            WebhooksService::new(options, backends, service_keys.clone())
                .context("cannot set up webhooks")?,
        )
    } else {
        None
    };
    let routing = if hosts(routing::NAME) {
        let identity = identity_api
            .clone()
            .ok_or_else(|| missing(identity::NAME))?;
        let options = RoutingServiceOptions::from_config(config);
        Some(RoutingService::new(
            options,
            backends,
            service_keys.clone(),
            identity,
        ))
    } else {
        None
    };
    let edge = if hosts(edge::NAME) {
        let digest_keys =
            crate::keys::digest_keys(config).context("cannot load the edge's digest keys")?;
        let options = EdgeServiceOptions::from_config(config, digest_keys).context(
            "cannot set up the edge's TLS (edge.tls_certificate_file, edge.tls_key_file, edge.trunk_ca_file)",
        )?;
        let edge_config = &config.edge;
        let listening = [
            ("udp", edge_config.sip_udp),
            ("tcp", edge_config.sip_tcp),
            ("tls", edge_config.sip_tls),
            ("ws", edge_config.sip_ws),
            ("wss", edge_config.sip_wss),
        ]
        .into_iter()
        .filter_map(|(transport, address)| address.map(|address| format!("{transport} {address}")))
        .collect::<Vec<_>>()
        .join(", ");
        let routing_peers = match (remote(routing::NAME)?, &routing) {
            (Some(channel), _) => RoutingPeers {
                calls: Arc::new(RemoteCallRouting::new(channel.clone(), credentials.clone())),
                acd: Arc::new(RemoteRouting::new(channel, credentials.clone())),
            },
            (None, Some(local)) => RoutingPeers {
                calls: local.calls_api(),
                acd: local.api(),
            },
            (None, None) => return Err(missing(routing::NAME)),
        };
        Some(Arc::new(
            EdgeService::bind(options, backends, service_keys.clone(), routing_peers)
                .await
                .with_context(|| format!("the edge cannot listen for SIP on {listening} (config keys edge.sip_udp, sip_tcp, sip_tls, sip_ws, sip_wss)"))?,
        ))
    } else {
        None
    };
    let gateway = if hosts(gateway::NAME) {
        let webhooks: Arc<dyn WebhooksApi> = match remote(webhooks::NAME)? {
            Some(channel) => Arc::new(RemoteWebhooks::new(channel, credentials.clone())),
            None => webhooks
                .as_ref()
                .map(WebhooksService::api)
                .ok_or_else(|| missing(webhooks::NAME))?,
        };
        let (routing, routing_config): (Arc<dyn RoutingApi>, Arc<dyn RoutingConfigApi>) =
            match (remote(routing::NAME)?, &routing) {
                (Some(channel), _) => (
                    Arc::new(RemoteRouting::new(channel.clone(), credentials.clone())),
                    Arc::new(RemoteRoutingConfig::new(channel, credentials.clone())),
                ),
                (None, Some(local)) => (local.api(), local.config_api()),
                (None, None) => return Err(missing(routing::NAME)),
            };
        let edge_api: Arc<dyn EdgeApi> = match remote(edge::NAME)? {
            Some(channel) => Arc::new(RemoteEdge::new(channel, credentials.clone())),
            None => edge
                .as_ref()
                .map(|edge| edge.api())
                .ok_or_else(|| missing(edge::NAME))?,
        };
        let peers = GatewayPeers {
            identity: identity_api
                .clone()
                .ok_or_else(|| missing(identity::NAME))?,
            webhooks,
            routing,
            routing_config,
            edge: edge_api,
        };
        let options = GatewayOptions::from_config(&config.gateway);
        Some(GatewayService::new(options, backends.cache.clone(), peers))
    } else {
        None
    };
    let mut events = hosts(events::NAME).then(|| {
        let options = RelayOptions {
            holder: relay_holder(mode, installation_id),
            ..RelayOptions::from_config(&config.events)
        };
        EventsService::new(options, backends)
    });

    let mut parts = Vec::new();
    for name in services {
        let part = match *name {
            identity::NAME => identity.as_ref().map(IdentityService::serve),
            webhooks::NAME => webhooks.as_ref().map(WebhooksService::serve),
            routing::NAME => routing.as_ref().map(RoutingService::serve),
            gateway::NAME => gateway.as_ref().map(GatewayService::serve),
            events::NAME => events.take().map(EventsService::serve),
            edge::NAME => edge.as_ref().map(|edge| edge.serve()),
            // Served by every node itself (health, readiness, reflection).
            "system" => Some(ServiceParts {
                name: "system",
                grpc_service_names: Vec::new(),
                grpc: None,
                http: None,
                workers: Vec::new(),
                draining: None,
            }),
            other => anyhow::bail!("unknown service `{other}`"),
        };
        parts.push(part.ok_or_else(|| missing(name))?);
    }
    let demo = match (&identity, &routing) {
        (Some(identity), Some(routing)) => {
            Some((identity.identity().clone(), routing.config().clone()))
        }
        _ => None,
    };
    Ok(Composed {
        services: parts,
        demo,
        edge,
    })
}

/// The relay's name in its leases. `dev` is the only process on its
/// database, so a fixed name lets a restarted `dev` resume its leases at
/// once instead of waiting for them to expire; `serve` replicas each get a
/// unique one.
fn relay_holder(mode: Mode, installation_id: &str) -> String {
    match mode {
        Mode::Dev { .. } => format!("dev-{installation_id}"),
        Mode::Serve => format!("relay-{}", uuid::Uuid::now_v7()),
    }
}

/// The services whose workers serve every tenant, in system scope: the
/// events relay, the webhook dispatcher, the edge's number lookup.
const SYSTEM_WORKERS: &[&str] = &["events", "webhooks", "routing", "edge"];

/// `serve` on PostgreSQL: the services' role (`database.url`) and, on a
/// node hosting system workers, the workers' role (`database.system_url`,
/// else `database.url`) must stay inside row-level security — no
/// superuser, no BYPASSRLS, not the tables' owner — and only the workers'
/// role may be a member of `switchboard_system`. A role too powerful is an
/// error naming it and the fix, or with `database.allow_privileged_role`
/// a loud warning (returned for the banner); a workers' role that is not
/// a member of `switchboard_system` is always an error (they would see no
/// rows). SQLite has no roles: nothing to check.
async fn check_least_privilege(
    config: &Config,
    backends: &Backends,
    services: &[&str],
) -> anyhow::Result<Vec<String>> {
    let database = &backends.database;
    let Some(service) = database
        .login_role(SYSTEM_ROLE)
        .await
        .context("cannot read the database role")?
    else {
        return Ok(Vec::new());
    };
    let mut privileged = Vec::new();
    privileged.extend(service.excess_for_service("database.url", SYSTEM_ROLE));
    if services.iter().any(|name| SYSTEM_WORKERS.contains(name)) {
        let key = if config.database.system_url.is_some() {
            "database.system_url"
        } else {
            "database.url (database.system_url is unset)"
        };
        let system = match database
            .system()
            .login_role(SYSTEM_ROLE)
            .await
            .context("cannot read the database role of database.system_url")?
        {
            Some(role) => role,
            None => bail!("database.system_url is for PostgreSQL"),
        };
        if system.superuser || system.bypass_rls || !system.owned_tables.is_empty() {
            privileged.extend(system.excess_or_lack_for_system(key, SYSTEM_ROLE));
        } else if let Some(lack) = system.excess_or_lack_for_system(key, SYSTEM_ROLE) {
            bail!("{lack}");
        }
    }
    match privileged.first() {
        Some(first) if !config.database.allow_privileged_role => bail!("{first}"),
        _ => {
            for problem in &privileged {
                tracing::warn!(
                    problem = %problem,
                    "serve is running with a privileged database role (database.allow_privileged_role = true): row-level security does not hold tenants apart"
                );
            }
            Ok(privileged)
        }
    }
}

fn warn_about_embedded_backends(config: &Config) {
    let mut embedded = Vec::new();
    if config.database_url().starts_with("sqlite:") {
        embedded.push("database (SQLite)");
    }
    if config.cache.backend == CacheBackend::Memory {
        embedded.push("cache (in-process)");
    }
    if config.bus.backend == BusBackend::Memory {
        embedded.push("bus (in-process)");
    }
    if config.objects.backend == ObjectsBackend::Local {
        embedded.push("objects (local files)");
    }
    if !embedded.is_empty() {
        tracing::warn!(
            backends = %embedded.join(", "),
            "serve is using embedded backends; replicas will not share them"
        );
    }
}

fn print_banner(
    config: &Config,
    backends: &Backends,
    node: &Node,
    (services, plan): (&[&str], &Plan),
    mode: Mode,
    installation_id: &str,
) {
    let http = node.http_addr();
    let grpc = node.grpc_addr();
    let implementations = backends.implementations;
    let mode = match mode {
        Mode::Dev { .. } => "dev, embedded backends",
        Mode::Serve => "serve",
    };
    println!("Switchboard {} is up ({mode})", env!("CARGO_PKG_VERSION"));
    println!("  HTTP      http://{http}   (/healthz, /readyz)");
    let reflection = if config.internal.grpc_reflection {
        ", reflection"
    } else {
        ""
    };
    if services.contains(&"routing") {
        println!(
            "  gRPC      http://{grpc}   (health{reflection}; internal calls need a service credential; try: switchboard contacts simulate --to NUMBER)"
        );
    } else {
        println!(
            "  gRPC      http://{grpc}   (health{reflection}; internal calls need a service credential)"
        );
    }
    println!("  metrics   http://{}/metrics", node.metrics_addr());
    println!("  services  {}", services.join(", "));
    let remote: Vec<String> = plan
        .peers
        .iter()
        .filter_map(|(name, peer)| match peer {
            Peer::Local => None,
            Peer::Remote(addresses) => Some(format!("{name}={}", addresses.join(","))),
        })
        .collect();
    if !remote.is_empty() {
        println!("  peers     {}", remote.join(" "));
    }
    println!(
        "  backends  database={} cache={} bus={} objects={}",
        implementations.database,
        implementations.cache,
        implementations.bus,
        implementations.objects
    );
    if implementations.database == "sqlite" || implementations.objects == "local" {
        println!(
            "  data      {} (database {}, objects {})",
            config.data_dir.display(),
            switchboard_config::SecretUrl::new(config.database_url()).masked(),
            config.local_objects_dir().display()
        );
    }
    println!("  install   {installation_id}");
}

/// Ctrl-C or SIGTERM starts a graceful shutdown. The handlers are
/// installed by [`StopSignals::listen`], before the node says it is up.
struct StopSignals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn stop(self, stop: CancellationToken) {
        #[cfg(unix)]
        {
            async fn received(signal: Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = received(self.interrupt) => {}
                _ = received(self.terminate) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("stop signal received");
        stop.cancel();
    }
}
