//! Authentication and rate limiting of `/v1` requests: `Authorization:
//! Bearer <access token | API key>` (or, on a WebSocket handshake only,
//! `?access_token=`) → a [`Principal`] in the request
//! extensions (with the idempotency scope), then the tenant's and the
//! credential's token buckets.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use switchboard_auth::looks_like_api_key;
use switchboard_http::{IdempotencyScope, Limit, Problem, RateDecision, RateLimiter};
use switchboard_identity::{Principal, RequestOrigin};

use crate::Gateway;
use crate::error::ApiError;

/// The middleware in front of every authenticated route.
pub(crate) async fn authenticate(
    State(gateway): State<Gateway>,
    mut request: Request,
    next: Next,
) -> Response {
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .map(|value| value.to_str().map(str::to_owned))
        .or_else(|| websocket_query_token(&request).map(|token| Ok(format!("Bearer {token}"))));
    let (principal, credential) = match principal_of(&gateway, header).await {
        Ok(found) => found,
        Err(error) => return error.into_response(),
    };
    let decisions = match rate_limit(&gateway.limiter, &principal).await {
        Ok(decisions) => decisions,
        Err(problem) => return problem.into_response(),
    };
    request
        .extensions_mut()
        .insert(IdempotencyScope(principal.key()));
    request.extensions_mut().insert(principal);
    request.extensions_mut().insert(Credential(credential));
    let mut response = next.run(request).await;
    // Report the bucket closest to empty.
    if let Some(tightest) = decisions.iter().min_by_key(|decision| decision.remaining) {
        response
            .headers_mut()
            .extend(RateLimiter::headers(tightest));
    }
    response
}

/// The `access_token` query parameter of a WebSocket handshake (RFC 6750
/// §2.3), for browsers, which cannot set `Authorization` on one. Other
/// requests must use the header, so tokens stay out of ordinary URLs.
fn websocket_query_token(request: &Request) -> Option<String> {
    let upgrade = request.headers().get(axum::http::header::UPGRADE)?;
    if !upgrade.as_bytes().eq_ignore_ascii_case(b"websocket") {
        return None;
    }
    url::form_urlencoded::parse(request.uri().query()?.as_bytes())
        .find(|(name, _)| name == "access_token")
        .map(|(_, token)| token.into_owned())
}

/// The bearer credential a request was authenticated with, for the
/// streams that check it again while they are open.
#[derive(Clone)]
pub(crate) struct Credential(pub String);

/// The caller behind a bearer credential (access token or API key).
pub(crate) async fn authenticate_credential(
    gateway: &Gateway,
    credential: &str,
) -> Result<Principal, ApiError> {
    let principal = if looks_like_api_key(credential) {
        gateway.identity.authenticate_api_key(credential).await?
    } else {
        gateway
            .identity
            .authenticate_access_token(credential)
            .await?
    };
    Ok(principal)
}

async fn principal_of(
    gateway: &Gateway,
    header: Option<Result<String, axum::http::header::ToStrError>>,
) -> Result<(Principal, String), ApiError> {
    let header = header.ok_or_else(|| {
        Problem::unauthorized(
            "missing Authorization header: send `Bearer <access token or API key>`",
        )
    })?;
    let credential = header
        .ok()
        .as_deref()
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|credential| !credential.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            Problem::unauthorized(
                "the Authorization header must be `Bearer <access token or API key>`",
            )
        })?;
    let principal = authenticate_credential(gateway, &credential).await?;
    Ok((principal, credential))
}

/// The tenant's bucket (the plan's rate) and the credential's (half of
/// it, so one runaway integration cannot starve the tenant's others).
async fn rate_limit(
    limiter: &RateLimiter,
    principal: &Principal,
) -> Result<Vec<RateDecision>, Problem> {
    let tenant_limit = Limit {
        capacity: principal.limits.burst.max(1),
        per_second: principal.limits.requests_per_second,
    };
    let credential_limit = Limit {
        capacity: (principal.limits.burst / 2).max(1),
        per_second: principal.limits.requests_per_second / 2.0,
    };
    let tenant = limiter
        .check(&format!("tenant:{}", principal.tenant.id()), &tenant_limit)
        .await?;
    let credential = limiter
        .check(
            &format!("credential:{}", principal.key()),
            &credential_limit,
        )
        .await?;
    Ok(vec![tenant, credential])
}

/// The request's origin, for the audit log and login throttling: the peer
/// address of the connection (when the server records it).
pub(crate) struct Origin(pub RequestOrigin);

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip().to_string());
        Ok(Origin(RequestOrigin { address }))
    }
}

/// Completes, with the reason, once an open stream's credential no longer
/// admits it: checked again every `GatewayOptions::stream_recheck_every`
/// (through identity's credential cache, so a disabled user, a changed
/// role or client scope, an ended session or a revoked key closes the
/// stream within that time) and at the credential's own expiry.
/// `still_admits` says whether the re-authenticated caller may still have
/// this very stream (same agent; same tenant and client scope).
pub(crate) async fn stream_credential_lapsed(
    gateway: &Gateway,
    credential: &str,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    still_admits: impl Fn(&Principal) -> bool,
) -> String {
    let every = gateway.options.stream_recheck_every;
    loop {
        let until_expiry = expires_at.map(|at| {
            (at - chrono::Utc::now())
                .to_std()
                .unwrap_or(std::time::Duration::ZERO)
        });
        match until_expiry {
            Some(left) if left <= every => {
                tokio::time::sleep(left).await;
                return "the credential has expired; open the stream again with a fresh one".into();
            }
            _ => tokio::time::sleep(every).await,
        }
        match authenticate_credential(gateway, credential).await {
            Ok(principal) if still_admits(&principal) => {}
            Ok(_) => return "the credential no longer allows this stream".into(),
            // A backend that cannot answer now is asked again next time.
            Err(ApiError(problem)) if problem.status().is_server_error() => {}
            Err(ApiError(problem)) => return problem.detail().to_owned(),
        }
    }
}
