//! The routing service as a node hosts it: options from the config →
//! [`RoutingService`] (the ACD runtime and the routing configuration, with
//! their in-process APIs for the node's other services) →
//! [`RoutingService::serve`], the [`ServiceParts`] the node runs (the
//! edge's `CallRouting`, the ACD and the configuration over gRPC behind
//! service credentials; the runtime's tasks; routing's projection of
//! identity's events) and stops through its handle.

use std::sync::Arc;

use switchboard_config::{Config, EventsConfig};
use switchboard_events::{Consumer, ConsumerOptions};
use switchboard_identity_api::IdentityApi;
use switchboard_platform::Backends;
use switchboard_routing_api::acd::RoutingApi;
use switchboard_routing_api::calls::CallRoutingApi;
use switchboard_routing_api::config::RoutingConfigApi;
use switchboard_rpc::{Authenticated, ServiceKeys};
use switchboard_runtime::ServiceParts;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::calls::Calls;
use crate::config::{
    IdentityAsDirectory, PROJECTION_BINDINGS, PROJECTION_CONSUMER_NAME, RoutingConfig,
};
use crate::{Routing, RoutingOptions};

/// The name in `--services`.
pub const NAME: &str = "routing";

/// What the service is built from.
pub struct RoutingServiceOptions {
    pub routing: RoutingOptions,
    /// The projection consumer's retries.
    pub events: EventsConfig,
}

impl RoutingServiceOptions {
    /// The `[routing]` and `[events]` settings.
    pub fn from_config(config: &Config) -> Self {
        Self {
            routing: RoutingOptions::from_config(&config.routing),
            events: config.events.clone(),
        }
    }
}

/// The routing service of a node.
pub struct RoutingService {
    routing: Routing,
    /// Inbound calls: one for the in-process API and the gRPC server, so
    /// both read one cached configuration.
    calls: Calls,
    config: RoutingConfig,
    backends: Backends,
    service_keys: Arc<ServiceKeys>,
    events: EventsConfig,
}

impl RoutingService {
    /// Routing on the node's backends (the ACD's state in the cache, the
    /// configuration and the outbox in the database), asking `identity`
    /// (its only peer) about users and client organizations; its gRPC
    /// APIs verify callers with `service_keys`. The configuration tells
    /// the ACD of queue and agent-profile changes; the ACD loads a
    /// tenant's configuration when its state starts empty.
    pub fn new(
        options: RoutingServiceOptions,
        backends: &Backends,
        service_keys: Arc<ServiceKeys>,
        identity: Arc<dyn IdentityApi>,
    ) -> Self {
        let config = RoutingConfig::new(
            backends.database.clone(),
            Arc::new(IdentityAsDirectory(identity)),
        );
        let routing = Routing::new(
            backends.cache.clone(),
            backends.database.clone(),
            options.routing,
        )
        .with_config(config.clone());
        let config = config.with_observer(Arc::new(routing.clone()));
        let calls = Calls::new(routing.clone(), config.clone(), backends.cache.clone());
        Self {
            routing,
            calls,
            config,
            backends: backends.clone(),
            service_keys,
            events: options.events,
        }
    }

    /// The configuration itself, for the demo seed.
    pub fn config(&self) -> &RoutingConfig {
        &self.config
    }

    /// The ACD in process, for the node's other services.
    pub fn api(&self) -> Arc<dyn RoutingApi> {
        Arc::new(self.routing.clone())
    }

    /// Inbound calls in process, for the node's edge.
    pub fn calls_api(&self) -> Arc<dyn CallRoutingApi> {
        Arc::new(self.calls())
    }

    fn calls(&self) -> Calls {
        self.calls.clone()
    }

    /// The configuration in process, for the node's other services.
    pub fn config_api(&self) -> Arc<dyn RoutingConfigApi> {
        Arc::new(self.config.clone())
    }

    /// What the node runs: routing's copy of identity's tenants, clients
    /// and users (fed by identity's events; it tells the ACD of
    /// client-scope changes), the runtime (owning tenants, ticking offers
    /// and wrap-ups, moving events to the outbox), and the three gRPC APIs.
    pub fn serve(&self) -> ServiceParts {
        let projection = Consumer::new(
            self.backends.database.clone(),
            self.backends.bus.clone(),
            ConsumerOptions::new(
                PROJECTION_CONSUMER_NAME,
                PROJECTION_BINDINGS.iter().copied(),
            )
            .with_config(&self.events),
            self.config.identity_projection(),
        );
        let runtime = self.routing.clone();
        let calls = self.calls();
        let draining = CancellationToken::new();
        let keys = &self.service_keys;
        let call_routing = Authenticated::new(crate::grpc::server(calls), keys.clone());
        let acd = Authenticated::new(
            crate::grpc_acd::server(Arc::new(self.routing.clone()), draining.clone()),
            keys.clone(),
        );
        let configuration = Authenticated::new(
            crate::grpc_config::server(Arc::new(self.config.clone())),
            keys.clone(),
        );
        ServiceParts {
            name: NAME,
            grpc_service_names: vec![
                crate::grpc::SERVICE_NAME,
                crate::grpc_acd::SERVICE_NAME,
                crate::grpc_config::SERVICE_NAME,
            ],
            grpc: Some(Box::new(move |routes: Routes| {
                routes
                    .add_service(call_routing)
                    .add_service(acd)
                    .add_service(configuration)
            })),
            http: None,
            workers: vec![
                Box::new(move |stop| projection.spawn(stop)),
                Box::new(move |stop| {
                    tokio::spawn(async move {
                        match runtime.start().await {
                            Ok(running) => {
                                stop.cancelled().await;
                                running.stop().await;
                            }
                            Err(error) => tracing::error!(%error, "routing did not start"),
                        }
                    })
                }),
            ],
            draining: Some(draining),
        }
    }
}
