//! The service credential on the wire: a calling service signs one per call
//! ([`Credentials::request`]); a serving service wraps each gRPC service in
//! [`Authenticated`], which refuses a call without a valid one
//! (`UNAUTHENTICATED`, before any handler runs), puts the verified
//! [`Caller`] in the request's extensions and runs the handler in a span
//! carrying `tenant_id`.
//!
//! The token travels as `authorization: Bearer <jwt>` (RFC 6750 §2.1 over
//! gRPC metadata); see `switchboard_auth::service` for what it holds.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

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

/// What a node signs its outgoing calls with. Cheap to clone.
#[derive(Clone)]
pub struct Credentials {
    keys: Arc<ServiceKeys>,
    service: Arc<str>,
}

impl Credentials {
    /// Credentials of the service named `service` on this node.
    pub fn new(keys: Arc<ServiceKeys>, service: &str) -> Self {
        Self {
            keys,
            service: service.into(),
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

    /// `message` as a request carrying a credential for `context`.
    pub fn request<T>(
        &self,
        message: T,
        context: &CallContext,
    ) -> Result<tonic::Request<T>, Status> {
        let mut request = tonic::Request::new(message);
        let token = self.token(context)?;
        let value = token
            .parse()
            .map_err(|_| Status::internal("service credential is not valid metadata"))?;
        request.metadata_mut().insert(METADATA_KEY, value);
        Ok(request)
    }
}

/// Checks a request's credential against `keys`.
pub fn verify(keys: &ServiceKeys, headers: &http::HeaderMap) -> Result<Caller, Status> {
    let token = headers
        .get(METADATA_KEY)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            Status::unauthenticated(
                "missing service credential: internal gRPC APIs take `authorization: Bearer <service credential>`, signed with the cluster's internal key",
            )
        })?;
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
    Ok(Caller::from_claims(claims))
}

/// A gRPC service that takes only calls with a valid service credential.
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    keys: Arc<ServiceKeys>,
}

impl<S> Authenticated<S> {
    pub fn new(inner: S, keys: Arc<ServiceKeys>) -> Self {
        Self { inner, keys }
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
        let caller = match verify(&self.keys, request.headers()) {
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
