//! Outgoing webhooks: tenants register HTTPS endpoints per event type;
//! every event of a tenant is delivered to that tenant's subscribed
//! endpoints only, signed, and retried until it succeeds or the retry
//! period runs out.
//!
//! - [`Webhooks`]: the service; it implements [`WebhooksApi`] in process
//!   for the gateway (`/v1/webhooks`), and [`grpc::server`] serves it to
//!   other nodes. Every method takes the caller's [`Tenant`] first;
//!   another tenant's ids are not found.
//! - [`Intake`] (from [`Webhooks::intake`]): the event consumer's handler
//!   (consumer [`CONSUMER_NAME`]); turns each event into one pending
//!   delivery per subscribed active endpoint, in the consumer's
//!   transaction, at most once per (endpoint, event).
//! - The dispatcher ([`Webhooks::spawn_dispatcher`]): claims due
//!   deliveries across tenants (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so
//!   replicas never send one delivery at once), sends them, records every
//!   attempt.
//!
//! **Signing** follows the Standard Webhooks specification
//! (<https://www.standardwebhooks.com/>). Each request is a `POST` of the
//! event's JSON (`{"id","type","tenant_id","source","occurred_at",
//! "schema_version","data"}`) with `content-type: application/json`,
//! `user-agent: Switchboard-Webhooks/1` and:
//!
//! | header | value |
//! |---|---|
//! | `webhook-id` | the event id: the same on every retry, for deduplication |
//! | `webhook-timestamp` | Unix seconds of the attempt |
//! | `webhook-signature` | `v1,` + base64 of HMAC-SHA256 (RFC 2104) of `{webhook-id}.{webhook-timestamp}.{body}` |
//! | `webhook-key-id` | which secret signed (`whk_…`), changed by a rotation |
//!
//! The key is the base64 after `whsec_` in the endpoint's secret.
//!
//! **Retries.** A `2xx` answer succeeds. Anything else (another status, a
//! redirect, a timeout, a refused, reset or closed connection) is retried
//! after `retry_initial_delay × 2^(n-1)` (capped at `retry_max_delay`, less
//! up to 20 % jitter). A delivery still failing `give_up_after` (24 h by
//! default) after its first attempt fails, its endpoint is disabled, and
//! the tenant is told by a system audit entry (an `audit.recorded` event
//! that identity writes to its audit log) and a `webhook.endpoint_disabled`
//! event. `410 Gone` gives up at once.
//!
//! **SSRF guard.** Endpoints whose host resolves to a loopback, private,
//! link-local or otherwise non-public address are refused at registration,
//! and such addresses are never connected to (the client's resolver drops
//! them), unless `allow_private_targets` is set.

pub mod domain;
mod error;
pub mod grpc;
pub mod service;
mod store;
mod targets;

mod deliveries;
mod dispatch;
mod endpoints;
mod intake;
mod local;

use std::sync::Arc;
use std::time::Duration;

use switchboard_config::WebhooksConfig;
use switchboard_platform::Database;

pub use error::{FieldError, Result, WebhooksError};
pub use intake::Intake;
pub use switchboard_events::EVENT_TYPES;
#[doc(no_inline)]
pub use switchboard_tenancy::Tenant;
pub use switchboard_webhooks_api::{
    AttemptView, DeliveryId, DeliveryStatus, DeliveryView, EndpointId, EndpointPatch,
    EndpointStatus, EndpointView, EndpointWithSecret, NewEndpoint, RemoteWebhooks, WebhooksApi,
};
pub use targets::USER_AGENT;

/// The name of the event consumer that feeds [`Intake`].
pub const CONSUMER_NAME: &str = "webhooks";
/// The `source` of the events this service emits.
pub const EVENT_SOURCE: &str = "webhooks";

/// Settings of the webhooks service (see [`WebhooksConfig`]).
#[derive(Debug, Clone)]
pub struct WebhooksOptions {
    /// Accept endpoints on loopback, private and other non-public
    /// addresses (tests and closed networks only).
    pub allow_private_targets: bool,
    /// Accept `http://` endpoints (tests only).
    pub allow_http: bool,
    /// Time limit of one attempt: connect, send, answer.
    pub request_timeout: Duration,
    pub retry_initial_delay: Duration,
    pub retry_max_delay: Duration,
    /// A delivery failing this long after its first attempt is given up
    /// and its endpoint disabled.
    pub give_up_after: Duration,
    /// How often the dispatcher looks for due deliveries.
    pub dispatch_interval: Duration,
    /// Deliveries one dispatcher sends at once.
    pub max_in_flight: usize,
}

impl WebhooksOptions {
    pub fn from_config(config: &WebhooksConfig) -> Self {
        Self {
            allow_private_targets: config.allow_private_targets,
            allow_http: config.allow_http,
            request_timeout: config.request_timeout,
            retry_initial_delay: config.retry_initial_delay,
            retry_max_delay: config.retry_max_delay,
            give_up_after: config.give_up_after,
            dispatch_interval: config.dispatch_interval,
            max_in_flight: 16,
        }
    }

    fn backoff(&self) -> domain::Backoff {
        domain::Backoff {
            initial: self.retry_initial_delay,
            max: self.retry_max_delay,
        }
    }

    /// How long a dispatcher holds a claimed delivery: longer than any
    /// attempt, so two dispatchers never send it at once.
    fn claim_duration(&self) -> Duration {
        self.request_timeout + Duration::from_secs(30)
    }
}

impl Default for WebhooksOptions {
    fn default() -> Self {
        Self::from_config(&WebhooksConfig::default())
    }
}

/// The webhooks service. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    inner: Arc<Inner>,
}

struct Inner {
    store: store::Store,
    options: WebhooksOptions,
    client: reqwest::Client,
}

impl Webhooks {
    /// Builds the service and its HTTP client; fails only if the client's
    /// TLS backend cannot be set up.
    pub fn new(database: Database, options: WebhooksOptions) -> Result<Self> {
        let client = targets::http_client(&options).map_err(|error| {
            WebhooksError::Internal(format!("cannot build the HTTP client: {error}"))
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                store: store::Store::new(database),
                options,
                client,
            }),
        })
    }

    pub fn options(&self) -> &WebhooksOptions {
        &self.inner.options
    }

    fn store(&self) -> &store::Store {
        &self.inner.store
    }
}

pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}
