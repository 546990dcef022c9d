//! The webhooks service as a node hosts it: options from the config →
//! [`WebhooksService`] (the service, with its in-process API for the
//! node's other services) → [`WebhooksService::serve`], the
//! [`ServiceParts`] the node runs (its gRPC API behind service
//! credentials, the consumer turning events into deliveries, and the
//! dispatcher) and stops through its handle.

use std::sync::Arc;

use switchboard_config::{Config, EventsConfig};
use switchboard_events::{Consumer, ConsumerOptions};
use switchboard_platform::Backends;
use switchboard_rpc::{Authenticated, ServiceKeys};
use switchboard_runtime::ServiceParts;
use switchboard_webhooks_api::WebhooksApi;
use tonic::service::Routes;

use crate::{CONSUMER_NAME, Result, Webhooks, WebhooksOptions};

/// The name in `--services`.
pub const NAME: &str = "webhooks";

/// What the service is built from.
pub struct WebhooksServiceOptions {
    pub webhooks: WebhooksOptions,
    /// The intake consumer's retries.
    pub events: EventsConfig,
}

impl WebhooksServiceOptions {
    /// The `[webhooks]` and `[events]` settings.
    pub fn from_config(config: &Config) -> Self {
        Self {
            webhooks: WebhooksOptions::from_config(&config.webhooks),
            events: config.events.clone(),
        }
    }
}

/// The webhooks service of a node.
pub struct WebhooksService {
    webhooks: Webhooks,
    backends: Backends,
    service_keys: Arc<ServiceKeys>,
    events: EventsConfig,
}

impl WebhooksService {
    /// Webhooks on the node's database; its gRPC API verifies callers
    /// with `service_keys`. Fails on invalid options.
    pub fn new(
        options: WebhooksServiceOptions,
        backends: &Backends,
        service_keys: Arc<ServiceKeys>,
    ) -> Result<Self> {
        Ok(Self {
            webhooks: Webhooks::new(backends.database.clone(), options.webhooks)?,
            backends: backends.clone(),
            service_keys,
            events: options.events,
        })
    }

    /// The API in process, for the node's other services.
    pub fn api(&self) -> Arc<dyn WebhooksApi> {
        Arc::new(self.webhooks.clone())
    }

    /// What the node runs: the gRPC API (`switchboard.webhooks.v1`)
    /// behind service credentials, the consumer of every event (one
    /// pending delivery per subscribed endpoint), and the dispatcher.
    pub fn serve(&self) -> ServiceParts {
        let consumer = Consumer::new(
            self.backends.database.clone(),
            self.backends.bus.clone(),
            ConsumerOptions::new(CONSUMER_NAME, ["#"]).with_config(&self.events),
            self.webhooks.intake(),
        );
        let dispatcher = self.webhooks.clone();
        let server = Authenticated::new(
            crate::grpc::server(Arc::new(self.webhooks.clone())),
            self.service_keys.clone(),
        );
        ServiceParts {
            name: NAME,
            grpc_service_names: vec![crate::grpc::SERVICE_NAME],
            grpc: Some(Box::new(move |routes: Routes| routes.add_service(server))),
            http: None,
            workers: vec![
                Box::new(move |stop| consumer.spawn(stop)),
                Box::new(move |stop| dispatcher.spawn_dispatcher(stop)),
            ],
            draining: None,
        }
    }
}
