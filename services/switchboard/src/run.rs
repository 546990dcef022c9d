//! Starting a node: `switchboard dev` and `switchboard serve`.

use std::sync::Arc;

use anyhow::{Context, bail};
use switchboard_auth::{LoginThrottle, ServiceKeys, ThrottlePolicy};
use switchboard_config::{BusBackend, CacheBackend, Config, ObjectsBackend};
use switchboard_events::{Consumer, ConsumerOptions, Relay, RelayOptions};
use switchboard_gateway::{Gateway, GatewayOptions};
use switchboard_http::Limit;
use switchboard_identity::{Identity, IdentityOptions};
use switchboard_identity_api::{IdentityApi, RemoteIdentity};
use switchboard_migrations::{Migrator, MigratorTrait, SYSTEM_ROLE};
use switchboard_platform::Backends;
use switchboard_routing::config::RoutingConfig;
use switchboard_routing::config::{RemoteRoutingConfig, RoutingConfigApi};
use switchboard_routing::{RemoteRouting, Routing, RoutingApi, RoutingOptions};
use switchboard_rpc::{Authenticated, Credentials};
use switchboard_runtime::{Node, NodeOptions, ServiceParts};
use switchboard_webhooks::{RemoteWebhooks, WebhooksApi};
use switchboard_webhooks::{Webhooks, WebhooksOptions};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
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
    let identity = identity(&config, &backends, mode)?;
    let webhooks = Webhooks::new(
        backends.database.clone(),
        WebhooksOptions::from_config(&config.webhooks),
    )
    .context("cannot set up webhooks")?;
    // Each peer a hosted service needs: in process when hosted here, else
    // its tonic client at the address from [peers], signing as this node.
    let peers = Peers::connect(&plan, &services, &service_keys, &identity, &webhooks)?;
    let routing_config = RoutingConfig::new(
        backends.database.clone(),
        Arc::new(crate::directory::IdentityAsDirectory(
            peers.identity.clone(),
        )),
    );
    let routing = Routing::new(
        backends.cache.clone(),
        backends.database.clone(),
        RoutingOptions::from_config(&config.routing),
    )
    .with_config(routing_config.clone());
    // The configuration tells the ACD of queue and agent-profile changes;
    // the ACD loads a tenant's configuration when its state starts empty.
    // The runtime runs (owns tenants, ticks, moves events) only where the
    // routing service is hosted; other services reach it through
    // `RoutingApi`.
    let routing_config = routing_config.with_observer(Arc::new(routing.clone()));
    let demo = match mode {
        Mode::Dev { demo: true } => Some(crate::demo::seed(&identity, &routing_config).await?),
        _ => None,
    };
    let (routing_api, routing_config_api): (Arc<dyn RoutingApi>, Arc<dyn RoutingConfigApi>) =
        match &peers.routing {
            Some(channel) => (
                Arc::new(RemoteRouting::new(
                    channel.clone(),
                    peers.credentials.clone(),
                )),
                Arc::new(RemoteRoutingConfig::new(
                    channel.clone(),
                    peers.credentials.clone(),
                )),
            ),
            None => (Arc::new(routing.clone()), Arc::new(routing_config.clone())),
        };
    let shared = Shared {
        config: &config,
        backends: &backends,
        identity: &identity,
        webhooks: &webhooks,
        routing: &routing,
        routing_config: &routing_config,
        service_keys: &service_keys,
        peers: &peers,
        routing_api: &routing_api,
        routing_config_api: &routing_config_api,
    };
    let parts = services
        .iter()
        .map(|name| service_parts(name, &shared, relay_holder(mode, &installation_id)))
        .collect();
    let node = Node::build(
        NodeOptions {
            config: config.clone(),
            services: parts,
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
    for problem in &privileged {
        println!("  WARNING   {problem}");
    }
    if let Some(demo) = demo {
        demo.print(node.http_addr(), node.grpc_addr());
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

/// What the services of a node are built from.
#[derive(Clone, Copy)]
struct Shared<'a> {
    config: &'a Config,
    backends: &'a Backends,
    identity: &'a Identity,
    webhooks: &'a Webhooks,
    routing: &'a Routing,
    routing_config: &'a RoutingConfig,
    service_keys: &'a Arc<ServiceKeys>,
    peers: &'a Peers,
    /// The ACD as the gateway reaches it.
    routing_api: &'a Arc<dyn RoutingApi>,
    /// The routing configuration as the gateway reaches it.
    routing_config_api: &'a Arc<dyn RoutingConfigApi>,
}

/// The clients of a node's peers: in process for what it hosts, over gRPC
/// for the rest.
struct Peers {
    identity: Arc<dyn IdentityApi>,
    webhooks: Arc<dyn WebhooksApi>,
    /// The channel to routing's replicas when routing is remote.
    routing: Option<Channel>,
    /// What this node's calls to its peers are signed with.
    credentials: Credentials,
}

impl Peers {
    fn connect(
        plan: &Plan,
        services: &[&str],
        service_keys: &Arc<ServiceKeys>,
        identity: &Identity,
        webhooks: &Webhooks,
    ) -> anyhow::Result<Self> {
        let credentials = Credentials::new(service_keys.clone(), &services.join("+"));
        let remote = |name: &str| -> anyhow::Result<Option<Channel>> {
            match plan.peer(name) {
                Some(Peer::Remote(addresses)) => switchboard_rpc::connect_balanced(addresses)
                    .map(Some)
                    .map_err(|error| anyhow::anyhow!("config key `peers.{name}`: {error}")),
                _ => Ok(None),
            }
        };
        let identity: Arc<dyn IdentityApi> = match remote("identity")? {
            Some(channel) => Arc::new(RemoteIdentity::new(channel, credentials.clone())),
            None => Arc::new(identity.clone()),
        };
        let webhooks: Arc<dyn WebhooksApi> = match remote("webhooks")? {
            Some(channel) => Arc::new(RemoteWebhooks::new(channel, credentials.clone())),
            None => Arc::new(webhooks.clone()),
        };
        Ok(Self {
            identity,
            webhooks,
            routing: remote("routing")?,
            credentials,
        })
    }
}

/// What each hosted service adds to the node. `system` is served by every
/// node itself.
fn service_parts(name: &'static str, shared: &Shared<'_>, relay_holder: String) -> ServiceParts {
    let Shared {
        config,
        backends,
        identity,
        webhooks,
        routing,
        routing_config,
        service_keys,
        peers,
        routing_api,
        routing_config_api,
    } = *shared;
    let mut parts = ServiceParts {
        name,
        grpc_service_names: Vec::new(),
        grpc: None,
        http: None,
        workers: Vec::new(),
    };
    if name == "events" {
        let relay = Relay::new(
            backends.database.clone(),
            backends.bus.clone(),
            RelayOptions {
                holder: relay_holder,
                ..RelayOptions::from_config(&config.events)
            },
        );
        parts.workers.push(Box::new(move |stop| relay.spawn(stop)));
    }
    if name == "webhooks" {
        let consumer = Consumer::new(
            backends.database.clone(),
            backends.bus.clone(),
            ConsumerOptions::new(switchboard_webhooks::CONSUMER_NAME, ["#"])
                .with_config(&config.events),
            webhooks.intake(),
        );
        parts
            .workers
            .push(Box::new(move |stop| consumer.spawn(stop)));
        let dispatcher = webhooks.clone();
        parts
            .workers
            .push(Box::new(move |stop| dispatcher.spawn_dispatcher(stop)));
        parts.grpc_service_names = vec![switchboard_webhooks::grpc::SERVICE_NAME];
        let server = Authenticated::new(
            switchboard_webhooks::grpc::server(Arc::new(webhooks.clone())),
            service_keys.clone(),
        );
        parts.grpc = Some(Box::new(move |routes: Routes| routes.add_service(server)));
    }
    if name == "routing" {
        // Routing's copy of identity's tenants, clients and users, kept
        // where the ACD runs: it tells the ACD of client-scope changes.
        let projection = Consumer::new(
            backends.database.clone(),
            backends.bus.clone(),
            ConsumerOptions::new(
                switchboard_routing::config::PROJECTION_CONSUMER_NAME,
                switchboard_routing::config::PROJECTION_BINDINGS
                    .iter()
                    .copied(),
            )
            .with_config(&config.events),
            routing_config.identity_projection(),
        );
        parts
            .workers
            .push(Box::new(move |stop| projection.spawn(stop)));
        let routing = routing.clone();
        parts.workers.push(Box::new(move |stop| {
            tokio::spawn(async move {
                match routing.start().await {
                    Ok(running) => {
                        stop.cancelled().await;
                        running.stop().await;
                    }
                    Err(error) => tracing::error!(%error, "routing did not start"),
                }
            })
        }));
    }
    if name == "routing" {
        parts.grpc_service_names = vec![
            switchboard_routing::grpc::SERVICE_NAME,
            switchboard_routing::grpc_acd::SERVICE_NAME,
            switchboard_routing::grpc_config::SERVICE_NAME,
        ];
        let calls = switchboard_routing::calls::Calls::new(
            routing.clone(),
            routing_config.clone(),
            backends.cache.clone(),
        );
        let server = Authenticated::new(
            switchboard_routing::grpc::server(calls),
            service_keys.clone(),
        );
        let acd = Authenticated::new(
            switchboard_routing::grpc_acd::server(Arc::new(routing.clone())),
            service_keys.clone(),
        );
        let configuration = Authenticated::new(
            switchboard_routing::grpc_config::server(Arc::new(routing_config.clone())),
            service_keys.clone(),
        );
        parts.grpc = Some(Box::new(move |routes: Routes| {
            routes
                .add_service(server)
                .add_service(acd)
                .add_service(configuration)
        }));
    }
    if name == "identity" {
        // Other services' audit entries, from their outboxes.
        let audit = Consumer::new(
            backends.database.clone(),
            backends.bus.clone(),
            ConsumerOptions::new(
                switchboard_identity::AUDIT_CONSUMER_NAME,
                switchboard_identity::AUDIT_BINDINGS.iter().copied(),
            )
            .with_config(&config.events),
            identity.audit_intake(),
        );
        parts.workers.push(Box::new(move |stop| audit.spawn(stop)));
        parts.grpc_service_names = vec![switchboard_identity::grpc::SERVICE_NAME];
        let server = Authenticated::new(
            switchboard_identity::grpc::server(Arc::new(identity.clone())),
            service_keys.clone(),
        );
        parts.grpc = Some(Box::new(move |routes: Routes| routes.add_service(server)));
    }
    if name == "gateway" {
        let options = GatewayOptions {
            body_limit: config.gateway.body_limit_bytes,
            signup_limit: Limit {
                capacity: config.gateway.signups_per_hour,
                per_second: f64::from(config.gateway.signups_per_hour) / 3600.0,
            },
            expose_verification_token: config.gateway.expose_verification_token,
            stream_recheck_every: config.gateway.stream_recheck_every,
            trusted_proxies: config.gateway.trusted_proxies.clone(),
            ..GatewayOptions::default()
        };
        parts.http = Some(
            Gateway::new(
                peers.identity.clone(),
                peers.webhooks.clone(),
                routing_api.clone(),
                routing_config_api.clone(),
                backends.cache.clone(),
                options,
            )
            .router(),
        );
    }
    parts
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

fn identity(config: &Config, backends: &Backends, mode: Mode) -> anyhow::Result<Identity> {
    let keys = crate::keys::token_keys(config)?;
    let limits = &config.auth.login_throttle;
    let throttle = LoginThrottle::new(
        backends.cache.clone(),
        ThrottlePolicy {
            per_account_address: limits.per_account_address,
            per_account: limits.per_account,
            per_address: limits.per_address,
            window: limits.window,
        },
    );
    let options = IdentityOptions {
        access_token_ttl: config.auth.access_token_ttl,
        refresh_token_ttl: config.auth.refresh_token_ttl,
        invitation_ttl: config.auth.invitation_ttl,
        log_verification_tokens: matches!(mode, Mode::Dev { .. }),
        ..IdentityOptions::default()
    };
    Ok(
        Identity::new(backends.database.clone(), keys, throttle, options)
            .with_credential_cache(backends.cache.clone()),
    )
}

/// The services whose workers serve every tenant, in system scope: the
/// events relay, the webhook dispatcher, the edge's number lookup.
const SYSTEM_WORKERS: &[&str] = &["events", "webhooks", "routing"];

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
