//! The site every gateway test starts: migrated storage on one backend
//! (PostgreSQL as a role that neither owns the tables nor bypasses
//! row-level security, with Redis; or SQLite with the in-process cache),
//! identity, webhooks, the routing runtime with its configuration loader
//! and observer, running, the event path between services (the outbox
//! relay on the in-process bus or RabbitMQ; identity's audit consumer and
//! routing's projection of identity's events), and the gateway serving
//! HTTP on a loopback port — wired as `switchboard dev` and `serve` wire
//! them (`services/switchboard/src/run.rs`). With [`SiteOptions::remote`]
//! the gateway reaches webhooks, the ACD and the routing configuration through
//! their tonic clients, over loopback gRPC servers wrapped in
//! `Authenticated`, as a split deployment does. Each test file adds the
//! request helpers it needs as methods of [`Site`].
//!
//! In [`Mode::IDENTITY_OVER_GRPC`] the gateway reaches identity only
//! through `RemoteIdentity`, over a loopback gRPC server wrapped as a node
//! wraps it (service credentials checked), as when the gateway and
//! identity run on separate nodes: the suites that run in both modes prove
//! the REST API the same either way.
//!
//! Every answer of the site is checked against the OpenAPI document it
//! serves ([`conformance`]); a test whose requests got an answer the
//! document does not declare fails when its site is dropped.

#![allow(dead_code)]

pub mod conformance;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Client;
use serde_json::Value;
use switchboard_auth::{LoginThrottle, SigningKey, ThrottlePolicy, TokenKeys};
use switchboard_edge::accounts::Accounts;
use switchboard_edge::api::LocalEdge;
use switchboard_edge::sip::digest::Nonces;
use switchboard_edge::trunks::{Trunks, TrunksOptions};
use switchboard_edge_api::{EdgeApi, RemoteEdge};
use switchboard_events::{Consumer, ConsumerOptions, Relay, RelayOptions};
use switchboard_gateway::{Gateway, GatewayOptions, GatewayPeers};
use switchboard_http::Limit;
use switchboard_identity::IdentityError;
use switchboard_identity::{Identity, IdentityOptions};
use switchboard_identity_api::{IdentityApi, RemoteIdentity};
use switchboard_migrations::{Migrator, MigratorTrait};
use switchboard_platform::bus::{MemoryBus, RabbitMqBus};
use switchboard_platform::cache::{MemoryCache, RedisCache};
use switchboard_platform::database::DatabaseOptions;
use switchboard_platform::{Bus, Cache, Database};
use switchboard_routing::calls::Calls;
use switchboard_routing::config::{ConfigError, IdentityDirectory, RoutingConfig};
use switchboard_routing::{RemoteRouting, Routing, RoutingApi, RoutingOptions, Running};
use switchboard_routing_api::config::{RemoteRoutingConfig, RoutingConfigApi};
use switchboard_rpc::{Authenticated, Credentials};
use switchboard_tenancy::{ClientId, ClientScope, Tenant, UserId};
use switchboard_test_utils::{
    amqp_url, fresh_postgres_database, fresh_sqlite_database, init_tracing, postgres_app_role_url,
    postgres_system_role_url, redis_url, serve_grpc, unique_name,
};
use switchboard_webhooks::{RemoteWebhooks, Webhooks, WebhooksApi, WebhooksOptions};
use tokio_util::sync::{CancellationToken, DropGuard};
use tonic::service::Routes;

use conformance::Conformance;

/// The key the site's tokens are signed with.
pub const SECRET: &[u8] = b"a-gateway-test-signing-secret-32-bytes!!";

/// Routing's checks of users and clients, answered by identity, as the
/// binary wires them (`services/switchboard/src/directory.rs`).
pub struct IdentityAsDirectory(pub Identity);

fn config_error(error: IdentityError) -> ConfigError {
    match error {
        IdentityError::Unavailable(detail) => ConfigError::Unavailable(detail),
        other => ConfigError::Internal(format!("identity: {other}")),
    }
}

#[async_trait::async_trait]
impl IdentityDirectory for IdentityAsDirectory {
    async fn user_scope(
        &self,
        tenant: &Tenant,
        user: UserId,
    ) -> Result<Option<ClientScope>, ConfigError> {
        self.0.user_scope(tenant, user).await.map_err(config_error)
    }

    async fn client_exists(&self, tenant: &Tenant, client: ClientId) -> Result<bool, ConfigError> {
        self.0
            .client_exists(tenant, client)
            .await
            .map_err(config_error)
    }
}

/// Where a site's storage is and how the gateway reaches identity. A
/// `bool` is the backend with identity in process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// PostgreSQL and Redis; else SQLite and the in-process cache.
    pub production: bool,
    /// The gateway calls identity over gRPC (`RemoteIdentity`).
    pub identity_over_grpc: bool,
}

impl Mode {
    /// SQLite, and identity behind a loopback gRPC server.
    pub const IDENTITY_OVER_GRPC: Mode = Mode {
        production: false,
        identity_over_grpc: true,
    };
}

impl From<bool> for Mode {
    fn from(production: bool) -> Self {
        Self {
            production,
            identity_over_grpc: false,
        }
    }
}

/// How a [`Site`] starts.
pub struct SiteOptions {
    /// PostgreSQL and Redis; else SQLite and the in-process cache.
    pub production: bool,
    /// The gateway calls identity over gRPC (see [`Mode`]).
    pub identity_over_grpc: bool,
    pub gateway: GatewayOptions,
    pub webhooks: WebhooksOptions,
    pub routing: RoutingOptions,
    pub throttle: ThrottlePolicy,
    /// The gateway calls webhooks, the ACD and the routing configuration
    /// over gRPC (their remote clients), not in process.
    pub remote: bool,
}

impl SiteOptions {
    /// Signups at 1,000/s (tests sign many companies up), verification
    /// tokens in the signup answer, the routing upkeep every 50 ms.
    pub fn new(mode: impl Into<Mode>) -> Self {
        let Mode {
            production,
            identity_over_grpc,
        } = mode.into();
        Self {
            production,
            identity_over_grpc,
            gateway: GatewayOptions {
                signup_limit: Limit::per_second(1000),
                expose_verification_token: true,
                ..GatewayOptions::default()
            },
            webhooks: WebhooksOptions::default(),
            routing: RoutingOptions {
                upkeep_every: Duration::from_millis(50),
                ..RoutingOptions::default()
            },
            throttle: ThrottlePolicy::default(),
            remote: false,
        }
    }

    /// Like [`SiteOptions::new`] on SQLite, with the gateway's webhooks
    /// and routing configuration over gRPC.
    pub fn remote() -> Self {
        Self {
            remote: true,
            ..Self::new(false)
        }
    }
}

/// A running site (see the module documentation).
pub struct Site {
    pub base: String,
    pub client: Client,
    /// As the services connect.
    pub database: Database,
    /// The tables' owner (PostgreSQL: a superuser; SQLite: the same file).
    pub admin: Database,
    pub production: bool,
    /// The cache every service of the site shares (identity's credential
    /// cache included).
    pub cache: Arc<dyn Cache>,
    /// Identity in process (for operator actions such as plans); the
    /// gateway calls it directly or over gRPC (see [`Mode`]).
    pub identity: Identity,
    pub routing: Routing,
    /// The call API the edge uses.
    pub calls: Calls,
    pub webhooks: Webhooks,
    /// What the answers were checked against, and what failed.
    pub conformance: Arc<Conformance>,
    /// Stops the relay and the consumers.
    _events: DropGuard,
    _running: Running,
    _dir: Option<tempfile::TempDir>,
}

impl Site {
    pub async fn start_with(options: SiteOptions) -> Self {
        init_tracing();
        let (admin_url, service_url, cache, dir): (String, String, Arc<dyn Cache>, _) =
            if options.production {
                let url = fresh_postgres_database().await;
                let cache = RedisCache::connect(&redis_url(), &unique_name("site"))
                    .await
                    .expect("Redis is reachable (./scripts/test starts it)");
                (url, String::new(), Arc::new(cache), None)
            } else {
                let (url, dir) = fresh_sqlite_database();
                (url.clone(), url, Arc::new(MemoryCache::new()), Some(dir))
            };
        let admin = Database::connect(&admin_url, &DatabaseOptions::default())
            .await
            .unwrap();
        Migrator::up(admin.connection(), None).await.unwrap();
        let (service_url, system_url) = if options.production {
            (
                postgres_app_role_url(&admin_url).await,
                postgres_system_role_url(&admin_url).await,
            )
        } else {
            (service_url.clone(), service_url)
        };
        // The system workers (webhook dispatcher, number lookup) on a role
        // of their own, as `serve` runs them with `database.system_url`.
        let database = Database::connect(&service_url, &DatabaseOptions::default())
            .await
            .unwrap()
            .with_system(
                Database::connect(&system_url, &DatabaseOptions::default())
                    .await
                    .unwrap(),
            )
            .unwrap();
        let keys = TokenKeys::new(vec![SigningKey::new("test", SECRET).unwrap()]).unwrap();
        let throttle = LoginThrottle::new(cache.clone(), options.throttle);
        // With its credential cache, as `serve` runs it: the gateway
        // authenticates API keys from it when every entry is there.
        let identity = Identity::new(database.clone(), keys, throttle, IdentityOptions::default())
            .with_credential_cache(cache.clone());
        let webhooks = Webhooks::new(database.clone(), options.webhooks).unwrap();
        let config = RoutingConfig::new(
            database.clone(),
            Arc::new(IdentityAsDirectory(identity.clone())),
        );
        let routing = Routing::new(cache.clone(), database.clone(), options.routing)
            .with_config(config.clone());
        let config = config.with_observer(Arc::new(routing.clone()));
        let running = routing.start().await.unwrap();
        // Between services: the outbox relay, identity's audit log and
        // routing's copy of identity's data fed by events.
        let bus: Arc<dyn Bus> = if options.production {
            Arc::new(
                RabbitMqBus::connect(&amqp_url(), &unique_name("site"), 256)
                    .await
                    .expect("RabbitMQ is reachable (./scripts/test starts it)"),
            )
        } else {
            Arc::new(MemoryBus::new())
        };
        let events = CancellationToken::new();
        // The edge's SIP accounts and its copy of tenants' domains.
        let accounts = Accounts::new(database.clone(), "sip.example.com");
        let trunks = Trunks::new(
            database.clone(),
            cache.clone(),
            Nonces::new(b"site", Duration::from_secs(300)),
            TrunksOptions::new("sip.example.com"),
        );
        let edge = LocalEdge::new(accounts.clone(), trunks.store());
        let consumers = [
            (
                switchboard_identity::AUDIT_CONSUMER_NAME,
                switchboard_identity::AUDIT_BINDINGS,
                identity.audit_intake(),
            ),
            (
                switchboard_routing::config::PROJECTION_CONSUMER_NAME,
                switchboard_routing::config::PROJECTION_BINDINGS,
                config.identity_projection(),
            ),
            (
                switchboard_edge::accounts::PROJECTION_CONSUMER_NAME,
                switchboard_edge::accounts::PROJECTION_BINDINGS,
                accounts.identity_projection(),
            ),
        ];
        for (name, bindings, handler) in consumers {
            let consumer = Consumer::new(
                database.clone(),
                bus.clone(),
                ConsumerOptions::new(name, bindings.iter().copied()),
                handler,
            );
            consumer.declare().await.unwrap();
            consumer.spawn(events.clone());
        }
        Relay::new(
            database.clone(),
            bus,
            RelayOptions {
                holder: unique_name("relay"),
                poll_interval: Duration::from_millis(20),
                ..RelayOptions::default()
            },
        )
        .spawn(events.clone());
        let calls = Calls::new(routing.clone(), config.clone(), cache.clone());
        let gateway_identity: Arc<dyn IdentityApi> = if options.identity_over_grpc {
            Arc::new(identity_over_grpc(&identity).await)
        } else {
            Arc::new(identity.clone())
        };
        let (webhooks_api, routing_api, config_api, edge_api) = if options.remote {
            remote_clients(webhooks.clone(), routing.clone(), config, edge).await
        } else {
            let routing_api: Arc<dyn RoutingApi> = Arc::new(routing.clone());
            let webhooks_api: Arc<dyn WebhooksApi> = Arc::new(webhooks.clone());
            let config_api: Arc<dyn RoutingConfigApi> = Arc::new(config);
            let edge_api: Arc<dyn EdgeApi> = Arc::new(edge);
            (webhooks_api, routing_api, config_api, edge_api)
        };
        let router = Gateway::new(
            GatewayPeers {
                identity: gateway_identity,
                webhooks: webhooks_api,
                routing: routing_api,
                routing_config: config_api,
                edge: edge_api,
            },
            cache.clone(),
            options.gateway,
        )
        .router();
        let conformance = Arc::new(Conformance::default());
        let router = router.layer(axum::middleware::from_fn_with_state(
            conformance.clone(),
            conformance::check_answers,
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        let base = format!("http://{addr}");
        let client = Client::new();
        let document: Value = client
            .get(format!("{base}{}", switchboard_gateway::OPENAPI_PATH))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        conformance.set_document(document);
        Self {
            base,
            client,
            database,
            admin,
            production: options.production,
            cache,
            identity,
            routing,
            calls,
            webhooks,
            conformance,
            _events: events.drop_guard(),
            _running: running,
            _dir: dir,
        }
    }

    /// Puts the tenant with handle `slug` on `plan`, as an operator does
    /// (`switchboard tenants set-plan`): tenants sign up on the trial.
    pub async fn on_plan(&self, slug: &str, plan: &str) {
        self.identity
            .set_plan(slug, plan)
            .await
            .unwrap_or_else(|error| panic!("cannot put {slug} on {plan}: {error}"));
    }
}

/// The webhooks service, the ACD and the routing configuration on a
/// loopback gRPC server, each wrapped in `Authenticated`, and their remote
/// clients signing as the gateway.
async fn remote_clients(
    webhooks: Webhooks,
    routing: Routing,
    config: RoutingConfig,
    edge: LocalEdge,
) -> (
    Arc<dyn WebhooksApi>,
    Arc<dyn RoutingApi>,
    Arc<dyn RoutingConfigApi>,
    Arc<dyn EdgeApi>,
) {
    let keys = switchboard_test_utils::service_keys("internal-test");
    let channel = serve_grpc(
        Routes::new(Authenticated::new(
            switchboard_webhooks::grpc::server(Arc::new(webhooks)),
            keys.clone(),
        ))
        .add_service(Authenticated::new(
            switchboard_routing::grpc_acd::server(
                Arc::new(routing),
                tokio_util::sync::CancellationToken::new(),
            ),
            keys.clone(),
        ))
        .add_service(Authenticated::new(
            switchboard_routing::grpc_config::server(Arc::new(config)),
            keys.clone(),
        ))
        .add_service(Authenticated::new(
            switchboard_edge::api::server(Arc::new(edge)),
            keys.clone(),
        )),
    )
    .await;
    let credentials = Credentials::new(keys, "gateway");
    (
        Arc::new(RemoteWebhooks::new(channel.clone(), credentials.clone())),
        Arc::new(RemoteRouting::new(channel.clone(), credentials.clone())),
        Arc::new(RemoteRoutingConfig::new(
            channel.clone(),
            credentials.clone(),
        )),
        Arc::new(RemoteEdge::new(channel, credentials)),
    )
}

/// `identity` served on a loopback port behind service-credential checks,
/// and the client the gateway of a separate node would hold.
async fn identity_over_grpc(identity: &Identity) -> RemoteIdentity {
    let keys = switchboard_test_utils::service_keys("internal-test");
    let channel = serve_grpc(Routes::new(Authenticated::new(
        switchboard_identity::grpc::server(Arc::new(identity.clone())),
        keys.clone(),
    )))
    .await;
    RemoteIdentity::new(channel, Credentials::new(keys, "gateway"))
}

impl Drop for Site {
    /// Fails the test if any answer did not match the document (unless it
    /// fails already).
    fn drop(&mut self) {
        let violations = self.conformance.violations();
        if !violations.is_empty() && !std::thread::panicking() {
            panic!(
                "{} answer(s) do not match the OpenAPI document:\n{}",
                violations.len(),
                violations.join("\n")
            );
        }
    }
}
