//! The public REST API, `/v1`: authentication by bearer access token or
//! API key (the tenant comes from the credential only), per-tenant and
//! per-credential rate limits from the plan, `Idempotency-Key` on POST,
//! RFC 9457 problems for every error, and the routes of each service,
//! documented by an OpenAPI 3.1 document generated from the code.

mod auth;
mod dto;
mod error;
mod openapi;
mod routes;
pub mod service;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use ipnet::IpNet;
use switchboard_edge_api::EdgeApi;
use switchboard_http::{IdempotencyStore, Limit, RateLimiter};
use switchboard_identity_api::IdentityApi;
use switchboard_identity_api::credential_cache::CachedApiKeys;
use switchboard_platform::Cache;
use switchboard_routing_api::acd::RoutingApi;
use switchboard_routing_api::config::RoutingConfigApi;
use switchboard_webhooks_api::WebhooksApi;

pub use error::ApiError;
pub use openapi::{DOCS_PATH, DOCS_SCRIPT_PATH, OPENAPI_PATH};
pub use service::GatewayPeers;

/// Settings of the gateway.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// Largest request body accepted (413 above).
    pub body_limit: usize,
    /// Signups allowed per client address (token bucket).
    pub signup_limit: Limit,
    /// How long a response to an idempotent POST is replayed.
    pub idempotency_ttl: Duration,
    /// Put the email-verification token in the signup response. Only for
    /// `dev` and tests, where no email goes out.
    pub expose_verification_token: bool,
    /// How often an open WebSocket stream checks its credential again.
    pub stream_recheck_every: Duration,
    /// Reverse proxies whose `X-Forwarded-For` names the client (for
    /// login throttling, signup limits and the audit log); from any other
    /// peer the header is ignored.
    pub trusted_proxies: Vec<IpNet>,
}

impl GatewayOptions {
    /// The `[gateway]` settings (the idempotency window keeps its default).
    pub fn from_config(config: &switchboard_config::GatewayConfig) -> Self {
        Self {
            body_limit: config.body_limit_bytes,
            signup_limit: Limit {
                capacity: config.signups_per_hour,
                per_second: f64::from(config.signups_per_hour) / 3600.0,
            },
            expose_verification_token: config.expose_verification_token,
            stream_recheck_every: config.stream_recheck_every,
            trusted_proxies: config.trusted_proxies.clone(),
            ..Self::default()
        }
    }
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            body_limit: 1024 * 1024,
            signup_limit: Limit {
                capacity: 10,
                per_second: 10.0 / 3600.0,
            },
            idempotency_ttl: IdempotencyStore::DEFAULT_TTL,
            expose_verification_token: false,
            stream_recheck_every: Duration::from_secs(5),
            trusted_proxies: Vec::new(),
        }
    }
}

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) identity: Arc<dyn IdentityApi>,
    /// API keys authenticated from identity's credential cache, without a
    /// call to identity when its entries allow.
    pub(crate) api_keys: Arc<CachedApiKeys>,
    pub(crate) webhooks: Arc<dyn WebhooksApi>,
    pub(crate) routing: Arc<dyn RoutingApi>,
    pub(crate) routing_config: Arc<dyn RoutingConfigApi>,
    pub(crate) edge: Arc<dyn EdgeApi>,
    pub(crate) limiter: RateLimiter,
    pub(crate) idempotency: IdempotencyStore,
    pub(crate) options: Arc<GatewayOptions>,
}

impl Gateway {
    /// The gateway over `peers`, with its rate limits and idempotency
    /// records in `cache`, where it also reads identity's credential cache
    /// (when identity shares the backend; otherwise it finds nothing there
    /// and asks identity).
    pub fn new(peers: GatewayPeers, cache: Arc<dyn Cache>, options: GatewayOptions) -> Self {
        Self {
            identity: peers.identity,
            api_keys: Arc::new(CachedApiKeys::new(cache.clone())),
            webhooks: peers.webhooks,
            routing: peers.routing,
            routing_config: peers.routing_config,
            edge: peers.edge,
            limiter: RateLimiter::new(cache.clone()),
            idempotency: IdempotencyStore::new(cache, options.idempotency_ttl),
            options: Arc::new(options),
        }
    }

    /// The `/v1` routes, to merge into the node's HTTP router, with their
    /// OpenAPI document at [`OPENAPI_PATH`] and the API reference at
    /// [`DOCS_PATH`] (both public).
    pub fn router(&self) -> Router {
        let (api, document) = routes::router(self.clone());
        api.merge(openapi::serve(document))
    }
}
