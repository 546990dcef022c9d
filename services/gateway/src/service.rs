//! The gateway as a node hosts it: options from the config →
//! [`GatewayService`] over its peers' APIs (in process or over gRPC; it
//! never knows which) → [`GatewayService::serve`], the [`ServiceParts`]
//! the node runs: the public REST API, served on the node's HTTP listener.

use std::sync::Arc;

use switchboard_edge_api::EdgeApi;
use switchboard_identity_api::IdentityApi;
use switchboard_platform::Cache;
use switchboard_routing_api::acd::RoutingApi;
use switchboard_routing_api::config::RoutingConfigApi;
use switchboard_runtime::ServiceParts;
use switchboard_webhooks_api::WebhooksApi;

use crate::{Gateway, GatewayOptions};

/// The name in `--services`.
pub const NAME: &str = "gateway";

/// The services the gateway calls.
pub struct GatewayPeers {
    pub identity: Arc<dyn IdentityApi>,
    pub webhooks: Arc<dyn WebhooksApi>,
    pub routing: Arc<dyn RoutingApi>,
    pub routing_config: Arc<dyn RoutingConfigApi>,
    /// Agents' SIP accounts.
    pub edge: Arc<dyn EdgeApi>,
}

/// The gateway of a node.
pub struct GatewayService {
    gateway: Gateway,
}

impl GatewayService {
    /// The gateway over `peers`, with its rate limits and idempotency
    /// records in `cache`.
    pub fn new(options: GatewayOptions, cache: Arc<dyn Cache>, peers: GatewayPeers) -> Self {
        Self {
            gateway: Gateway::new(peers, cache, options),
        }
    }

    /// What the node runs: the `/v1` routes, the OpenAPI document and the
    /// API reference.
    pub fn serve(&self) -> ServiceParts {
        ServiceParts {
            name: NAME,
            grpc_service_names: Vec::new(),
            grpc: None,
            http: Some(self.gateway.router()),
            workers: Vec::new(),
            draining: None,
        }
    }
}
