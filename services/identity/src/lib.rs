//! The identity service: tenants that sign themselves up, their client
//! organizations, users and roles, plans and seats, API keys, login
//! sessions and the audit log.
//!
//! [`Identity`] is the service; it implements
//! [`IdentityApi`](switchboard_identity_api::IdentityApi) in process (the
//! API crate holds the trait, its types and the gRPC client; [`grpc`]
//! serves the trait to other nodes). Every method that touches tenant
//! data takes the caller's [`Principal`] (built only from a verified
//! credential) and runs in a transaction confined to that tenant (see
//! [`store`]). Rules without I/O live in [`domain`].

mod api;
mod api_keys;
mod audit;
mod clients;
mod credentials;
mod directory;
pub mod domain;
mod error;
mod events;
pub mod grpc;
mod seats;
pub mod service;
mod sessions;
mod signup;
pub mod store;
mod tenant;
mod users;

use std::sync::Arc;
use std::time::Duration;

use switchboard_auth::{LoginThrottle, TokenKeys};
use switchboard_platform::{Cache, Database};

pub use audit::{AUDIT_BINDINGS, AUDIT_CONSUMER_NAME, AuditIntake};
pub use domain::{ApiScope, FieldError, Permission, Role, TenantStatus, UserStatus};
pub use error::{IdentityError, Result};
pub use switchboard_identity_api::{
    Actor, ApiKeyView, AuditEventView, ClientView, CreatedApiKey, IdentityApi, Invitation,
    NewApiKey, NewClient, NewUser, Principal, RateLimits, RequestOrigin, SignupOutcome,
    SignupRequest, TenantPatch, TenantView, Tokens, UserPatch, UserView,
};
pub use tenant::TRIAL_PLAN;

/// Lifetimes of what identity hands out.
#[derive(Debug, Clone)]
pub struct IdentityOptions {
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub invitation_ttl: Duration,
    pub verification_ttl: Duration,
    /// API keys are `sk_live_…` when true, `sk_test_…` otherwise.
    pub live_keys: bool,
    /// Log the email-verification token and the address it is for, as no
    /// email goes out yet. Only `switchboard dev`: elsewhere logs hold no
    /// email address and no token.
    pub log_verification_tokens: bool,
}

impl Default for IdentityOptions {
    fn default() -> Self {
        Self {
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            invitation_ttl: Duration::from_secs(7 * 24 * 3600),
            verification_ttl: Duration::from_secs(3 * 24 * 3600),
            live_keys: true,
            log_verification_tokens: false,
        }
    }
}

/// The identity service. Cheap to clone.
#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

struct Inner {
    store: store::Store,
    keys: TokenKeys,
    throttle: LoginThrottle,
    options: IdentityOptions,
    credentials: credentials::CredentialCache,
}

impl Identity {
    pub fn new(
        database: Database,
        keys: TokenKeys,
        throttle: LoginThrottle,
        options: IdentityOptions,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store: store::Store::new(database),
                keys,
                throttle,
                options,
                credentials: credentials::CredentialCache::default(),
            }),
        }
    }

    /// Caches credential checks in `cache` (shared by replicas), so a
    /// request authenticates in a few cache reads instead of several
    /// database round trips. Revocations stay immediate.
    pub fn with_credential_cache(mut self, cache: Arc<dyn Cache>) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.credentials = credentials::CredentialCache::new(Some(cache)),
            None => tracing::warn!("identity is shared already; its credential cache stays off"),
        }
        self
    }

    fn credentials(&self) -> &credentials::CredentialCache {
        &self.inner.credentials
    }

    fn store(&self) -> &store::Store {
        &self.inner.store
    }
}

pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}
