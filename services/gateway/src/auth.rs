//! Authentication and rate limiting of `/v1` requests: `Authorization:
//! Bearer <access token | API key>` (or, on the WebSocket handshake of a
//! stream route only, `?access_token=`) → a [`Principal`] in the request
//! extensions (with the idempotency scope), then the tenant's and the
//! credential's token buckets.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use switchboard_http::{IdempotencyScope, Limit, Problem, RateDecision, RateLimiter};
use switchboard_identity_api::{Principal, RequestOrigin};

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
    // Every log line of the request from here on names its tenant.
    tracing::Span::current().record("tenant_id", tracing::field::display(principal.tenant.id()));
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

/// The routes that take `?access_token=` on their WebSocket handshake.
const STREAM_PATHS: [&str; 2] = ["/v1/queues/stats/stream", "/v1/agents/me/stream"];

/// The `access_token` query parameter of a WebSocket handshake to one of
/// the [`STREAM_PATHS`] (RFC 6750 §2.3), for browsers, which cannot set
/// `Authorization` on one. Every other request must use the header, so
/// tokens stay out of ordinary URLs (and the logs that keep them), even
/// when a client sends `Upgrade: websocket` to another route.
fn websocket_query_token(request: &Request) -> Option<String> {
    if !STREAM_PATHS.contains(&request.uri().path()) {
        return None;
    }
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

/// The caller behind a bearer credential (access token or API key): an
/// API key from identity's credential cache when its entries are there
/// (one cache round trip), else one call to identity (one gRPC round trip
/// when it runs on another node).
pub(crate) async fn authenticate_credential(
    gateway: &Gateway,
    credential: &str,
) -> Result<Principal, ApiError> {
    if let Some(principal) = gateway.api_keys.principal(credential).await {
        return Ok(principal);
    }
    Ok(gateway.identity.authenticate(credential).await?)
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
/// it, so one runaway integration cannot starve the tenant's others), in
/// that order, in one call to the cache.
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
    let tenant = format!("tenant:{}", principal.tenant.id());
    let credential = format!("credential:{}", principal.key());
    limiter
        .check_all(&[(&tenant, &tenant_limit), (&credential, &credential_limit)])
        .await
}

/// The request's origin, for the audit log, signup limits and login
/// throttling: the client address (see [`client_address`]; when the
/// server records the peer).
pub(crate) struct Origin(pub RequestOrigin);

impl FromRequestParts<Gateway> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        gateway: &Gateway,
    ) -> Result<Self, Self::Rejection> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| {
                client_address(peer.ip(), &parts.headers, &gateway.options.trusted_proxies)
                    .to_string()
            });
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

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The client's address. A peer that is not a trusted proxy is the client,
/// whatever it sends in `X-Forwarded-For` (anyone can write the header).
/// Behind trusted proxies, each appends the address it received from, so
/// the client is the right-most address of the header (all its lines, in
/// order) that is not a trusted proxy: addresses left of it were written
/// by the client itself and prove nothing. An entry that is not an address
/// ends the walk at the last trusted hop.
pub(crate) fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |address: &IpAddr| trusted.iter().any(|net| net.contains(address));
    let peer = peer.to_canonical();
    if !is_trusted(&peer) {
        return peer;
    }
    let mut hops = Vec::new();
    for value in headers.get_all(&X_FORWARDED_FOR) {
        let Ok(value) = value.to_str() else {
            return peer;
        };
        hops.extend(value.split(',').map(str::trim));
    }
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        let Some(address) = hop_address(hop) else {
            return client;
        };
        client = address;
        if !is_trusted(&address) {
            return address;
        }
    }
    client
}

/// An `X-Forwarded-For` entry: an address, or an address with a port
/// (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn hop_address(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|address| address.ip()))
        .ok()
        .map(|address| address.to_canonical())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(&X_FORWARDED_FOR, HeaderValue::from_str(line).unwrap());
        }
        headers
    }

    fn client(peer: &str, lines: &[&str], trusted: &[&str]) -> String {
        let trusted: Vec<IpNet> = trusted.iter().map(|net| net.parse().unwrap()).collect();
        client_address(peer.parse().unwrap(), &headers(lines), &trusted).to_string()
    }

    #[test]
    fn the_header_is_ignored_unless_the_peer_is_a_trusted_proxy() {
        assert_eq!(client("203.0.113.9", &["198.51.100.1"], &[]), "203.0.113.9");
        assert_eq!(
            client("203.0.113.9", &["198.51.100.1"], &["10.0.0.0/8"]),
            "203.0.113.9"
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_address_is_the_client() {
        let trusted = ["10.0.0.0/8", "192.0.2.7/32"];
        assert_eq!(
            client("10.1.2.3", &["198.51.100.1"], &trusted),
            "198.51.100.1"
        );
        // The client wrote the left-most entries itself.
        assert_eq!(
            client("10.1.2.3", &["1.2.3.4, 198.51.100.1, 192.0.2.7"], &trusted),
            "198.51.100.1"
        );
        // Several header lines are one list, in order.
        assert_eq!(
            client("10.1.2.3", &["1.2.3.4, 198.51.100.1", "10.9.9.9"], &trusted),
            "198.51.100.1"
        );
        // With ports, and IPv6.
        assert_eq!(
            client("10.1.2.3", &["[2001:db8::5]:4711"], &trusted),
            "2001:db8::5"
        );
        assert_eq!(
            client("10.1.2.3", &["198.51.100.1:80"], &trusted),
            "198.51.100.1"
        );
        // An IPv4-mapped peer is its IPv4 address.
        assert_eq!(
            client("::ffff:10.1.2.3", &["198.51.100.1"], &trusted),
            "198.51.100.1"
        );
    }

    #[test]
    fn without_a_usable_header_the_last_trusted_hop_is_the_client() {
        let trusted = ["10.0.0.0/8"];
        assert_eq!(client("10.1.2.3", &[], &trusted), "10.1.2.3");
        assert_eq!(client("10.1.2.3", &["10.4.4.4"], &trusted), "10.4.4.4");
        assert_eq!(
            client("10.1.2.3", &["198.51.100.1, garbage, 10.4.4.4"], &trusted),
            "10.4.4.4"
        );
        assert_eq!(client("10.1.2.3", &["unknown"], &trusted), "10.1.2.3");
    }
}
