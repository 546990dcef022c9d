//! The service credential on the wire: a calling service signs one for each
//! call context ([`Credentials::request`]), reusing it for the same context
//! for [`CREDENTIAL_REUSE`], well inside its 60-s life; a serving service
//! wraps each gRPC service in
//! [`Authenticated`], which refuses a call without a valid one
//! (`UNAUTHENTICATED`, before any handler runs), puts the verified
//! [`Caller`] in the request's extensions and runs the handler in a span
//! carrying `tenant_id`.
//!
//! The token travels as `authorization: Bearer <jwt>` (RFC 6750 §2.1 over
//! gRPC metadata); see `switchboard_auth::service` for what it holds.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::future::BoxFuture;
use switchboard_auth::{AuthError, ServiceClaims, ServiceKeys};
use switchboard_tenancy::{ClientId, ClientScope, Tenant, TenantId};
use tonic::Status;
use tonic::server::NamedService;
use tracing::Instrument;

/// The metadata key of the credential.
pub const METADATA_KEY: &str = "authorization";

/// Who a call is made for, as the caller knows it: the tenant context and
/// the end user's principal (a JSON value the callee's API defines).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallContext {
    pub tenant: Option<Tenant>,
    pub principal: Option<serde_json::Value>,
}

impl CallContext {
    /// A call for the whole installation (no tenant).
    pub fn system() -> Self {
        Self::default()
    }

    /// A call for `tenant`, with no end-user principal.
    pub fn tenant(tenant: Tenant) -> Self {
        Self {
            tenant: Some(tenant),
            principal: None,
        }
    }

    pub fn with_principal(mut self, principal: serde_json::Value) -> Self {
        self.principal = Some(principal);
        self
    }
}

/// A verified caller, found in the extensions of every request an
/// [`Authenticated`] service hands on.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The calling service (`gateway`, `edge`, …).
    pub service: String,
    pub context: CallContext,
}

impl Caller {
    /// The caller from a request's extensions. `UNAUTHENTICATED` when the
    /// service was not wrapped in [`Authenticated`] (a wiring bug: better
    /// refused than served unchecked).
    pub fn of<T>(request: &tonic::Request<T>) -> Result<&Caller, Status> {
        request
            .extensions()
            .get::<Caller>()
            .ok_or_else(|| Status::unauthenticated("no verified service credential"))
    }

    /// The tenant the call is for; `UNAUTHENTICATED` when the credential
    /// names none (a tenant-scoped call needs one).
    pub fn tenant(&self) -> Result<&Tenant, Status> {
        self.context.tenant.as_ref().ok_or_else(|| {
            Status::unauthenticated("the service credential names no tenant; this call needs one")
        })
    }

    /// The end user's principal; `UNAUTHENTICATED` when the credential
    /// carries none.
    pub fn principal(&self) -> Result<&serde_json::Value, Status> {
        self.context.principal.as_ref().ok_or_else(|| {
            Status::unauthenticated(
                "the service credential carries no principal; this call acts for a user or API key",
            )
        })
    }

    fn from_claims(claims: ServiceClaims) -> Self {
        let tenant = claims.tid.map(|id| {
            let clients = ClientScope::from_list(
                claims
                    .clients
                    .map(|clients| clients.into_iter().map(ClientId::from_uuid).collect()),
            );
            Tenant::scoped(TenantId::from_uuid(id), clients)
        });
        Self {
            service: claims.iss,
            context: CallContext {
                tenant,
                principal: claims.prn,
            },
        }
    }
}

/// How long a signed credential is reused for calls with the same
/// context (tenant, clients, principal): a sixth of its life
/// (`switchboard_auth::SERVICE_TOKEN_TTL`, 60 s), so a reused one still has
/// 50 s to go when it arrives. Reuse saves signing on every call; it grants
/// nothing more, since a credential says only who the call is for, and the
/// callee decides on every call what that allows.
pub const CREDENTIAL_REUSE: Duration = Duration::from_secs(10);

/// Contexts whose signed credentials are kept at most; past it they are
/// all dropped (and signed again as they come).
const REUSE_CAPACITY: usize = 4096;

/// What a node signs its outgoing calls with. Cheap to clone (clones share
/// the signed credentials they reuse).
#[derive(Clone)]
pub struct Credentials {
    keys: Arc<ServiceKeys>,
    service: Arc<str>,
    signed: Arc<Mutex<HashMap<String, Signed>>>,
}

/// A credential signed for one context, as a metadata value.
struct Signed {
    value: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
    until: Instant,
}

impl Credentials {
    /// Credentials of the service named `service` on this node.
    pub fn new(keys: Arc<ServiceKeys>, service: &str) -> Self {
        Self {
            keys,
            service: service.into(),
            signed: Arc::default(),
        }
    }

    /// A fresh credential for `context`, as the metadata value.
    pub fn token(&self, context: &CallContext) -> Result<String, Status> {
        let mut claims = ServiceClaims::new(&*self.service, Utc::now());
        if let Some(tenant) = &context.tenant {
            claims.tid = Some(tenant.id().as_uuid());
            claims.clients = tenant
                .clients()
                .as_list()
                .map(|clients| clients.into_iter().map(|client| client.as_uuid()).collect());
        }
        claims.prn = context.principal.clone();
        self.keys
            .sign(&claims)
            .map(|token| format!("Bearer {token}"))
            .map_err(|error| {
                Status::internal(format!("cannot sign the service credential: {error}"))
            })
    }

    /// `message` as a request carrying a credential for `context`: the one
    /// signed for the same context less than [`CREDENTIAL_REUSE`] ago, else
    /// a fresh one.
    pub fn request<T>(
        &self,
        message: T,
        context: &CallContext,
    ) -> Result<tonic::Request<T>, Status> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert(METADATA_KEY, self.signed_for(context)?);
        Ok(request)
    }

    fn signed_for(
        &self,
        context: &CallContext,
    ) -> Result<tonic::metadata::MetadataValue<tonic::metadata::Ascii>, Status> {
        let fresh = || -> Result<tonic::metadata::MetadataValue<_>, Status> {
            self.token(context)?
                .parse()
                .map_err(|_| Status::internal("service credential is not valid metadata"))
        };
        let Some(key) = context_key(context) else {
            return fresh();
        };
        let now = Instant::now();
        {
            let signed = self
                .signed
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(found) = signed.get(&key)
                && now < found.until
            {
                return Ok(found.value.clone());
            }
        }
        let value = fresh()?;
        let mut signed = self
            .signed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if signed.len() >= REUSE_CAPACITY {
            signed.retain(|_, found| now < found.until);
            if signed.len() >= REUSE_CAPACITY {
                signed.clear();
            }
        }
        signed.insert(
            key,
            Signed {
                value: value.clone(),
                until: now + CREDENTIAL_REUSE,
            },
        );
        Ok(value)
    }
}

/// What tells two call contexts apart: equal keys, equal claims (`None`:
/// not reusable).
fn context_key(context: &CallContext) -> Option<String> {
    let tenant = context.tenant.as_ref().map(|tenant| {
        (
            tenant.id().as_uuid(),
            tenant.clients().as_list().map(|clients| {
                let mut clients: Vec<uuid::Uuid> =
                    clients.into_iter().map(|client| client.as_uuid()).collect();
                clients.sort_unstable();
                clients
            }),
        )
    });
    serde_json::to_string(&(tenant, &context.principal)).ok()
}

/// Checks a request's credential against `keys`.
pub fn verify(keys: &ServiceKeys, headers: &http::HeaderMap) -> Result<Caller, Status> {
    let token = bearer(headers)?;
    verify_token(keys, token).map(|(caller, _)| caller)
}

/// The credential of a request's metadata.
fn bearer(headers: &http::HeaderMap) -> Result<&str, Status> {
    headers
        .get(METADATA_KEY)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            Status::unauthenticated(
                "missing service credential: internal gRPC APIs take `authorization: Bearer <service credential>`, signed with the cluster's internal key",
            )
        })
}

/// The caller of a verified `token`, and the Unix time from which the
/// token is refused as expired.
fn verify_token(keys: &ServiceKeys, token: &str) -> Result<(Caller, i64), Status> {
    let claims = keys.verify(token, Utc::now()).map_err(|error| {
        Status::unauthenticated(match error {
            AuthError::ExpiredToken => "service credential expired".to_owned(),
            AuthError::UnknownKey(kid) => {
                format!("service credential signed with unknown internal key {kid:?}")
            }
            AuthError::InvalidToken(why) => format!("invalid service credential: {why}"),
            other => format!("invalid service credential: {other}"),
        })
    })?;
    let leeway = i64::try_from(switchboard_auth::jwt::LEEWAY.as_secs()).unwrap_or(0);
    let expires = claims.exp.saturating_add(leeway);
    Ok((Caller::from_claims(claims), expires))
}

/// Credentials a service has verified, by their exact text, until they
/// expire: a caller reuses one for [`CREDENTIAL_REUSE`], so most calls
/// carry a credential already checked. The text was signed as a whole, so
/// the same text always says the same thing; only its expiry is checked
/// again on each call.
#[derive(Default)]
struct Verified {
    callers: Mutex<HashMap<String, (Caller, i64)>>,
}

impl Verified {
    fn caller(&self, keys: &ServiceKeys, headers: &http::HeaderMap) -> Result<Caller, Status> {
        let token = bearer(headers)?;
        let now = Utc::now().timestamp();
        {
            let callers = self
                .callers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some((caller, expires)) = callers.get(token)
                && now < *expires
            {
                return Ok(caller.clone());
            }
        }
        let (caller, expires) = verify_token(keys, token)?;
        let mut callers = self
            .callers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if callers.len() >= REUSE_CAPACITY {
            callers.retain(|_, (_, expires)| now < *expires);
            if callers.len() >= REUSE_CAPACITY {
                callers.clear();
            }
        }
        callers.insert(token.to_owned(), (caller.clone(), expires));
        Ok(caller)
    }
}

/// A gRPC service that takes only calls with a valid service credential.
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    keys: Arc<ServiceKeys>,
    verified: Arc<Verified>,
}

impl<S> Authenticated<S> {
    pub fn new(inner: S, keys: Arc<ServiceKeys>) -> Self {
        Self {
            inner,
            keys,
            verified: Arc::default(),
        }
    }
}

impl<S: NamedService> NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower::Service<http::Request<B>> for Authenticated<S>
where
    S: tower::Service<
            http::Request<B>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + NamedService
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let caller = match self.verified.caller(&self.keys, request.headers()) {
            Ok(caller) => caller,
            Err(status) => {
                tracing::debug!(service = S::NAME, path = %request.uri().path(), reason = %status.message(), "gRPC call refused");
                return Box::pin(async move { Ok(status.into_http()) });
            }
        };
        let span = tracing::info_span!(
            "grpc",
            rpc.method = %request.uri().path(),
            caller = %caller.service,
            tenant_id = tracing::field::Empty,
        );
        if let Some(tenant) = &caller.context.tenant {
            span.record("tenant_id", tracing::field::display(tenant.id()));
        }
        request.extensions_mut().insert(caller);
        // The ready service answers this call; a fresh clone waits for the
        // next poll_ready (tower's documented pattern).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move { inner.call(request).await }.instrument(span))
    }
}

#[cfg(test)]
mod tests {
    use switchboard_auth::SigningKey;
    use uuid::Uuid;

    use super::*;

    fn keys(kid: &str) -> Arc<ServiceKeys> {
        Arc::new(ServiceKeys::new(vec![SigningKey::generate(kid).unwrap()]).unwrap())
    }

    fn headers_of<T>(request: &tonic::Request<T>) -> http::HeaderMap {
        request.metadata().clone().into_headers()
    }

    #[test]
    fn the_context_survives_signing_and_verifying() {
        let keys = keys("internal-1");
        let credentials = Credentials::new(keys.clone(), "gateway");
        let client = ClientId::from_uuid(Uuid::new_v4());
        let tenant = Tenant::scoped(
            TenantId::from_uuid(Uuid::new_v4()),
            ClientScope::Only([client].into()),
        );
        let context =
            CallContext::tenant(tenant.clone()).with_principal(serde_json::json!({"user": "u1"}));
        let request = credentials.request((), &context).unwrap();
        let caller = verify(&keys, &headers_of(&request)).unwrap();
        assert_eq!(caller.service, "gateway");
        assert_eq!(caller.context, context);
        assert_eq!(caller.tenant().unwrap(), &tenant);
    }

    #[test]
    fn a_credential_is_reused_for_its_context_only() {
        let keys = keys("internal-1");
        let credentials = Credentials::new(keys.clone(), "gateway");
        let tenant = Tenant::scoped(TenantId::from_uuid(Uuid::new_v4()), ClientScope::All);
        let alice = CallContext::tenant(tenant.clone())
            .with_principal(serde_json::json!({"user": "alice", "roles": ["admin"]}));
        let alice_agent = CallContext::tenant(tenant.clone())
            .with_principal(serde_json::json!({"user": "alice", "roles": ["agent"]}));
        let other_tenant = CallContext::tenant(Tenant::scoped(
            TenantId::from_uuid(Uuid::new_v4()),
            ClientScope::All,
        ))
        .with_principal(serde_json::json!({"user": "alice", "roles": ["admin"]}));
        let header = |context: &CallContext| {
            headers_of(&credentials.clone().request((), context).unwrap())[METADATA_KEY].clone()
        };
        let first = header(&alice);
        assert_eq!(first, header(&alice), "reused within the window");
        // Any difference in what the credential says is another credential,
        // which says exactly that.
        for (context, different) in [
            (&alice_agent, header(&alice_agent)),
            (&other_tenant, header(&other_tenant)),
            (&CallContext::system(), header(&CallContext::system())),
        ] {
            assert_ne!(first, different);
            let mut headers = http::HeaderMap::new();
            headers.insert(METADATA_KEY, different);
            assert_eq!(&verify(&keys, &headers).unwrap().context, context);
        }
        let mut headers = http::HeaderMap::new();
        headers.insert(METADATA_KEY, first);
        assert_eq!(verify(&keys, &headers).unwrap().context, alice);
    }

    #[test]
    fn a_verified_credential_is_remembered_and_an_expired_one_refused() {
        let keys = keys("internal-1");
        let verified = Verified::default();
        let context = CallContext::tenant(Tenant::scoped(
            TenantId::from_uuid(Uuid::new_v4()),
            ClientScope::All,
        ));
        let request = Credentials::new(keys.clone(), "gateway")
            .request((), &context)
            .unwrap();
        let headers = headers_of(&request);
        assert_eq!(verified.caller(&keys, &headers).unwrap().context, context);
        assert_eq!(verified.caller(&keys, &headers).unwrap().context, context);
        assert_eq!(verified.callers.lock().unwrap().len(), 1, "checked once");
        // Past its expiry a remembered credential is checked again, and an
        // expired one is refused and not remembered.
        let token = bearer(&headers).unwrap().to_owned();
        verified.callers.lock().unwrap().get_mut(&token).unwrap().1 = 0;
        assert_eq!(verified.caller(&keys, &headers).unwrap().context, context);
        let mut old = ServiceClaims::new("gateway", Utc::now() - chrono::TimeDelta::minutes(2));
        old.tid = Some(Uuid::new_v4());
        let mut expired = http::HeaderMap::new();
        expired.insert(
            METADATA_KEY,
            format!("Bearer {}", keys.sign(&old).unwrap())
                .parse()
                .unwrap(),
        );
        let refused = verified.caller(&keys, &expired).unwrap_err();
        assert!(refused.message().contains("expired"), "{refused:?}");
        assert_eq!(verified.callers.lock().unwrap().len(), 1);
        // Anything but the exact text of a remembered credential is checked.
        let mut tampered = http::HeaderMap::new();
        tampered.insert(METADATA_KEY, format!("Bearer {token}x").parse().unwrap());
        assert!(verified.caller(&keys, &tampered).is_err());
        let foreign = Credentials::new(self::keys("internal-1"), "gateway")
            .request((), &context)
            .unwrap();
        assert!(verified.caller(&keys, &headers_of(&foreign)).is_err());
    }

    #[test]
    fn a_system_call_has_no_tenant_and_says_so() {
        let keys = keys("internal-1");
        let request = Credentials::new(keys.clone(), "edge")
            .request((), &CallContext::system())
            .unwrap();
        let caller = verify(&keys, &headers_of(&request)).unwrap();
        let refused = caller.tenant().unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        assert!(refused.message().contains("names no tenant"));
    }

    #[test]
    fn missing_foreign_and_end_user_credentials_are_unauthenticated() {
        let keys = keys("internal-1");
        let missing = verify(&keys, &http::HeaderMap::new()).unwrap_err();
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);
        assert!(missing.message().contains("missing service credential"));

        let foreign = Credentials::new(self::keys("internal-1"), "gateway")
            .request((), &CallContext::system())
            .unwrap();
        let refused = verify(&keys, &headers_of(&foreign)).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        assert!(refused.message().contains("bad signature"), "{refused:?}");

        let mut headers = http::HeaderMap::new();
        headers.insert(METADATA_KEY, "Bearer sk_live_abc".parse().unwrap());
        assert_eq!(
            verify(&keys, &headers).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
    }
}
