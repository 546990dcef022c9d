//! The identity service as a node hosts it: options from the config →
//! [`IdentityService`] (the service, with its in-process API for the
//! node's other services) → [`IdentityService::serve`], the
//! [`ServiceParts`] the node runs (its gRPC API behind service
//! credentials, and the consumer of other services' audit entries) and
//! stops through its handle.

use std::sync::Arc;

use switchboard_auth::{LoginThrottle, ServiceKeys, ThrottlePolicy, TokenKeys};
use switchboard_config::{Config, EventsConfig};
use switchboard_events::{Consumer, ConsumerOptions};
use switchboard_identity_api::IdentityApi;
use switchboard_platform::Backends;
use switchboard_rpc::Authenticated;
use switchboard_runtime::ServiceParts;
use tonic::service::Routes;

use crate::{AUDIT_BINDINGS, AUDIT_CONSUMER_NAME, Identity, IdentityOptions};

/// The name in `--services`.
pub const NAME: &str = "identity";

/// What the service is built from.
pub struct IdentityServiceOptions {
    pub identity: IdentityOptions,
    pub throttle: ThrottlePolicy,
    /// The access-token signing keys (`[auth] signing_keys`).
    pub token_keys: TokenKeys,
    /// The audit consumer's retries.
    pub events: EventsConfig,
}

impl IdentityServiceOptions {
    /// The `[auth]` and `[events]` settings; verification tokens are
    /// logged only where `log_verification_tokens` (`dev`).
    pub fn from_config(
        config: &Config,
        token_keys: TokenKeys,
        log_verification_tokens: bool,
    ) -> Self {
        let limits = &config.auth.login_throttle;
        Self {
            identity: IdentityOptions {
                access_token_ttl: config.auth.access_token_ttl,
                refresh_token_ttl: config.auth.refresh_token_ttl,
                invitation_ttl: config.auth.invitation_ttl,
                log_verification_tokens,
                ..IdentityOptions::default()
            },
            throttle: ThrottlePolicy {
                per_account_address: limits.per_account_address,
                per_account: limits.per_account,
                per_address: limits.per_address,
                window: limits.window,
            },
            token_keys,
            events: config.events.clone(),
        }
    }
}

/// The identity service of a node.
pub struct IdentityService {
    identity: Identity,
    backends: Backends,
    service_keys: Arc<ServiceKeys>,
    events: EventsConfig,
}

impl IdentityService {
    /// Identity on the node's backends (its tables in the database, the
    /// credential cache and login throttle in the cache); its gRPC API
    /// verifies callers with `service_keys`.
    pub fn new(
        options: IdentityServiceOptions,
        backends: &Backends,
        service_keys: Arc<ServiceKeys>,
    ) -> Self {
        let throttle = LoginThrottle::new(backends.cache.clone(), options.throttle);
        let identity = Identity::new(
            backends.database.clone(),
            options.token_keys,
            throttle,
            options.identity,
        )
        .with_credential_cache(backends.cache.clone());
        Self {
            identity,
            backends: backends.clone(),
            service_keys,
            events: options.events,
        }
    }

    /// The service itself, for operator actions and the demo seed.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The API in process, for the node's other services.
    pub fn api(&self) -> Arc<dyn IdentityApi> {
        Arc::new(self.identity.clone())
    }

    /// What the node runs: the gRPC API (`switchboard.identity.v1`)
    /// behind service credentials, and the consumer that writes other
    /// services' audit entries (`audit.recorded` events) to the audit log.
    pub fn serve(&self) -> ServiceParts {
        let audit = Consumer::new(
            self.backends.database.clone(),
            self.backends.bus.clone(),
            ConsumerOptions::new(AUDIT_CONSUMER_NAME, AUDIT_BINDINGS.iter().copied())
                .with_config(&self.events),
            self.identity.audit_intake(),
        );
        let server = Authenticated::new(
            crate::grpc::server(Arc::new(self.identity.clone())),
            self.service_keys.clone(),
        );
        ServiceParts {
            name: NAME,
            grpc_service_names: vec![crate::grpc::SERVICE_NAME],
            grpc: Some(Box::new(move |routes: Routes| routes.add_service(server))),
            http: None,
            workers: vec![Box::new(move |stop| audit.spawn(stop))],
            draining: None,
        }
    }
}
