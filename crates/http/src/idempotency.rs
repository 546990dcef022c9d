//! Safe retries of `POST` requests with an `Idempotency-Key` header
//! (draft-ietf-httpapi-idempotency-key-header).
//!
//! A client that sends `Idempotency-Key: <unique value>` may retry the same
//! request after a timeout or a dropped connection without creating the
//! thing twice: the first request runs, its response is kept in the shared
//! cache for 24 hours, and a retry gets that response again (with
//! `Idempotent-Replayed: true`) instead of running again.
//!
//! The flow, per key, in the cache under
//! `idem:<scope>:<sha256 of the method, path and key>`:
//!
//! 1. Mark the key in progress (`set_if_absent`, 60 s) — one replica wins.
//! 2. The winner runs the request and stores the response (2xx and 4xx
//!    other than 409 and 429, which depend on the moment) in place of the
//!    marker. Any other answer, 5xx included, clears the marker, so a retry
//!    runs the request again.
//! 3. A loser finds either the stored response — replayed when the retry
//!    is the same request (same method, path and body), 422
//!    `idempotency_key_reused` when it is not — or the marker: 409
//!    `idempotency_in_progress` with `Retry-After: 1`.
//!
//! A response that hands out a secret (an API key, a webhook signing
//! secret, an invitation token) is marked by its handler with
//! [`RevealsSecret`]: it is never kept. The cache records only that the
//! request ran and its status, and a retry gets 409
//! `idempotency_response_withheld` (the request does not run twice, and
//! the secret is not replayed to whoever holds the key for a day).
//!
//! Keys are scoped by [`IdempotencyScope`] (the tenant and principal, set by
//! the auth layer), so two clients can never see each other's responses,
//! and by route (method and path), so one key on two routes is two keys.
//! Routes open to anonymous callers (signup, login, token refresh) do not
//! take part: anonymous callers would share one scope, and their answers
//! are credentials.
//!
//! Unlike rate limits, this fails closed: with the cache down the request is
//! refused with 503 rather than run unguarded, because a duplicate side
//! effect cannot be undone and the client retries a 503 with the same key.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchboard_platform::Cache;

use crate::json::{BodyLimit, read_body};
use crate::problem::{FieldError, Problem};

/// The request header carrying the client's key.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Set to `true` on a response that is a replay of an earlier one.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// How long a key stays "in progress" if the replica running the request
/// dies before storing its response.
const IN_PROGRESS_TTL: Duration = Duration::from_secs(60);

/// The longest key accepted, in bytes.
const MAX_KEY_LENGTH: usize = 255;

/// Where responses to idempotent requests are kept, and for how long.
#[derive(Clone)]
pub struct IdempotencyStore {
    cache: Arc<dyn Cache>,
    ttl: Duration,
}

impl IdempotencyStore {
    /// How long a response is replayed unless configured otherwise.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

    /// Keeps responses in `cache` for `ttl` ([`Self::DEFAULT_TTL`] is 24 h).
    pub fn new(cache: Arc<dyn Cache>, ttl: Duration) -> Self {
        Self { cache, ttl }
    }
}

/// Whose keys these are: the authenticated tenant and principal, put in the
/// request extensions by the auth layer (which runs before
/// [`idempotency`]). Without it, keys are scoped to `anonymous`; do not
/// layer [`idempotency`] on routes anonymous callers use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyScope(pub String);

/// Put in a response's extensions (`(Extension(RevealsSecret), …)`) by a
/// handler whose answer carries a secret shown once: [`idempotency`] keeps
/// only that the request ran, never the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevealsSecret;

/// What the cache holds under a key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Record {
    InProgress {
        fingerprint: String,
    },
    Completed {
        fingerprint: String,
        status: u16,
        content_type: Option<String>,
        location: Option<String>,
        /// Base64 of the response body.
        body: String,
    },
    /// The request ran and answered `status` with a secret, which is not
    /// kept ([`RevealsSecret`]).
    Withheld {
        fingerprint: String,
        status: u16,
    },
}

/// The middleware: `axum::middleware::from_fn_with_state(store, idempotency)`.
/// Requests that are not `POST` or carry no `Idempotency-Key` pass through
/// untouched.
pub async fn idempotency(
    State(store): State<IdempotencyStore>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    match client_key(request.headers()) {
        Ok(None) => next.run(request).await,
        Ok(Some(key)) => match store.handle(&key, request, next).await {
            Ok(response) => response,
            Err(problem) => problem.into_response(),
        },
        Err(problem) => problem.into_response(),
    }
}

/// The client's key: 1 to 255 visible ASCII characters, optionally in
/// double quotes (the draft's structured-field string form).
fn client_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let invalid =
        |message: &str| Problem::validation(vec![FieldError::new("Idempotency-Key", message)]);
    let mut values = headers.get_all(&IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(invalid("must be sent once"));
    }
    let bytes = value.as_bytes();
    let bytes = match bytes {
        [b'"', inner @ .., b'"'] => inner,
        bytes => bytes,
    };
    if bytes.is_empty()
        || bytes.len() > MAX_KEY_LENGTH
        || !bytes.iter().all(|byte| byte.is_ascii_graphic())
    {
        return Err(invalid(
            "must be 1 to 255 visible ASCII characters (a UUID is a good choice)",
        ));
    }
    // Visible ASCII is UTF-8.
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

impl IdempotencyStore {
    async fn handle(&self, key: &str, request: Request, next: Next) -> Result<Response, Problem> {
        let (parts, body) = request.into_parts();
        let scope = match parts.extensions.get::<IdempotencyScope>() {
            Some(IdempotencyScope(scope)) => scope.as_str(),
            None => "anonymous",
        };
        let cache_key = cache_key(scope, &parts.method, parts.uri.path(), key);
        let body = read_body(&parts.headers, body, BodyLimit::of(&parts.extensions)).await?;
        let fingerprint = fingerprint(&parts.method, &parts.uri, &body);

        let marker = encode(&Record::InProgress {
            fingerprint: fingerprint.clone(),
        })?;
        let taken = self
            .cache
            .set_if_absent(&cache_key, &marker, IN_PROGRESS_TTL)
            .await
            .map_err(cache_down)?;
        if !taken {
            return self.answer_again(&cache_key, &fingerprint).await;
        }

        let response = next.run(Request::from_parts(parts, Body::from(body))).await;
        let status = response.status();
        let keep = status.is_success()
            || (status.is_client_error()
                && status != StatusCode::CONFLICT
                && status != StatusCode::TOO_MANY_REQUESTS);
        if !keep {
            self.forget(&cache_key).await;
            return Ok(response);
        }
        if response.extensions().get::<RevealsSecret>().is_some() {
            let record = Record::Withheld {
                fingerprint,
                status: status.as_u16(),
            };
            self.keep(&cache_key, &record).await;
            return Ok(response);
        }
        let (parts, body) = response.into_parts();
        let body = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(%error, "cannot read a response body to keep for idempotency");
                self.forget(&cache_key).await;
                return Err(Problem::internal());
            }
        };
        let header_text = |name: header::HeaderName| {
            parts
                .headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let record = Record::Completed {
            fingerprint,
            status: status.as_u16(),
            content_type: header_text(header::CONTENT_TYPE),
            location: header_text(header::LOCATION),
            body: STANDARD.encode(&body),
        };
        self.keep(&cache_key, &record).await;
        Ok(Response::from_parts(parts, Body::from(body)))
    }

    /// Stores `record` in place of the marker, for the TTL.
    async fn keep(&self, cache_key: &str, record: &Record) {
        match encode(record) {
            Ok(record) => {
                if let Err(error) = self.cache.set(cache_key, &record, Some(self.ttl)).await {
                    // The marker stays until it expires: retries get 409
                    // for up to a minute, then run again.
                    tracing::warn!(%error, "cannot keep a response for idempotency");
                }
            }
            Err(_) => self.forget(cache_key).await,
        }
    }

    /// The answer to a request whose key is already taken.
    async fn answer_again(&self, cache_key: &str, fingerprint: &str) -> Result<Response, Problem> {
        let in_progress = || {
            Problem::conflict(
                "idempotency_in_progress",
                "a request with this Idempotency-Key is still being processed; retry shortly",
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
        };
        let Some(stored) = self.cache.get(cache_key).await.map_err(cache_down)? else {
            // Gone since we tried: the first attempt has just failed and
            // cleared its marker. A retry will run the request.
            return Err(in_progress());
        };
        let record: Record = serde_json::from_slice(&stored).map_err(|error| {
            tracing::error!(%error, cache_key, "unreadable idempotency record");
            Problem::internal()
        })?;
        let stored_fingerprint = match &record {
            Record::InProgress { fingerprint }
            | Record::Completed { fingerprint, .. }
            | Record::Withheld { fingerprint, .. } => fingerprint,
        };
        if stored_fingerprint != fingerprint {
            return Err(Problem::unprocessable(
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request; use a new key for a new request",
            ));
        }
        match record {
            Record::InProgress { .. } => Err(in_progress()),
            Record::Withheld { status, .. } => Err(Problem::conflict(
                "idempotency_response_withheld",
                format!(
                    "the request with this Idempotency-Key already ran (status {status}); its \
                     answer held a secret that is shown once and not kept, so look the result \
                     up instead of retrying"
                ),
            )),
            Record::Completed {
                status,
                content_type,
                location,
                body,
                ..
            } => replay(status, content_type, location, &body),
        }
    }

    /// Clears the marker so that a retry runs the request again.
    async fn forget(&self, cache_key: &str) {
        if let Err(error) = self.cache.delete(cache_key).await {
            tracing::warn!(%error, "cannot clear an idempotency marker; it expires within a minute");
        }
    }
}

/// Where a key's record is kept: per scope, and per route (method and
/// path), hashed with the client's key (which the cache never holds).
fn cache_key(scope: &str, method: &Method, path: &str, key: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_str());
    hash.update(b" ");
    hash.update(path);
    hash.update(b"\n");
    hash.update(key);
    format!("idem:{scope}:{}", hex::encode(hash.finalize()))
}

/// What makes two requests "the same": method, path and query, body.
fn fingerprint(method: &Method, uri: &axum::http::Uri, body: &[u8]) -> String {
    let target = uri.path_and_query().map_or("/", |target| target.as_str());
    let mut hash = Sha256::new();
    hash.update(method.as_str());
    hash.update(b" ");
    hash.update(target);
    hash.update(b"\n");
    hash.update(body);
    hex::encode(hash.finalize())
}

fn encode(record: &Record) -> Result<Vec<u8>, Problem> {
    serde_json::to_vec(record).map_err(|error| {
        tracing::error!(%error, "cannot serialize an idempotency record");
        Problem::internal()
    })
}

fn replay(
    status: u16,
    content_type: Option<String>,
    location: Option<String>,
    body: &str,
) -> Result<Response, Problem> {
    let corrupt = |what: &str| {
        tracing::error!(what, "unreadable idempotency record");
        Problem::internal()
    };
    let status = StatusCode::from_u16(status).map_err(|_| corrupt("status"))?;
    let body = STANDARD.decode(body).map_err(|_| corrupt("body"))?;
    let mut response = (status, Bytes::from(body)).into_response();
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    for (name, value) in [
        (header::CONTENT_TYPE, content_type),
        (header::LOCATION, location),
    ] {
        if let Some(value) = value {
            let value = HeaderValue::from_str(&value).map_err(|_| corrupt("header"))?;
            headers.insert(name, value);
        }
    }
    headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    Ok(response)
}

fn cache_down(error: switchboard_platform::Error) -> Problem {
    tracing::warn!(%error, "idempotency keys cannot be checked: the cache did not answer");
    Problem::unavailable("idempotency keys cannot be checked right now")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::middleware::from_fn_with_state;
    use axum::routing::post;
    use serde_json::{Value, json};
    use switchboard_platform::cache::MemoryCache;
    use switchboard_test_utils::eventually;
    use tokio::sync::Notify;
    use tower::ServiceExt;

    use super::*;
    use crate::json::ApiJson;

    /// What the test handler does after counting the call.
    #[derive(Clone, Copy)]
    enum Answer {
        Created,
        Fail,
        Conflict,
        BadRequest,
        /// 201 with a secret, marked [`RevealsSecret`].
        Secret,
        /// Waits for the test's go-ahead, then answers 201.
        Wait,
    }

    #[derive(Clone)]
    struct Harness {
        app: Router,
        calls: Arc<AtomicUsize>,
        go: Arc<Notify>,
        cache: Arc<MemoryCache>,
    }

    fn harness(answers: Vec<Answer>) -> Harness {
        let calls = Arc::new(AtomicUsize::new(0));
        let go = Arc::new(Notify::new());
        let cache = Arc::new(MemoryCache::new());
        let store = IdempotencyStore::new(cache.clone(), IdempotencyStore::DEFAULT_TTL);
        let handler = {
            let calls = calls.clone();
            let go = go.clone();
            move |body: Bytes| async move {
                let call = calls.fetch_add(1, Ordering::SeqCst);
                let answer = answers
                    .get(call)
                    .or(answers.last())
                    .copied()
                    .unwrap_or(Answer::Created);
                let echo: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let created = (
                    StatusCode::CREATED,
                    [(header::LOCATION, format!("/contacts/{call}"))],
                    ApiJson(json!({ "call": call, "echo": echo })),
                );
                match answer {
                    Answer::Created => created.into_response(),
                    Answer::Wait => {
                        go.notified().await;
                        created.into_response()
                    }
                    Answer::Fail => Problem::internal().into_response(),
                    Answer::Conflict => Problem::conflict("busy", "try later").into_response(),
                    Answer::BadRequest => Problem::bad_request("no").into_response(),
                    Answer::Secret => (
                        StatusCode::CREATED,
                        axum::Extension(RevealsSecret),
                        ApiJson(json!({ "call": call, "secret": format!("sk_live_secret{call}") })),
                    )
                        .into_response(),
                }
            }
        };
        let app = Router::new()
            .route("/contacts", post(handler.clone()).get(handler.clone()))
            .route("/other", post(handler))
            .layer(from_fn_with_state(store, idempotency));
        Harness {
            app,
            calls,
            go,
            cache,
        }
    }

    fn request(method: Method, key: Option<&str>, body: &str) -> Request {
        let mut builder = Request::builder()
            .method(method)
            .uri("/contacts")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(key) = key {
            builder = builder.header(&IDEMPOTENCY_KEY, key);
        }
        builder.body(Body::from(body.to_owned())).unwrap()
    }

    fn post_with_key(key: &str, body: &str) -> Request {
        request(Method::POST, Some(key), body)
    }

    fn in_scope(mut request: Request, scope: &str) -> Request {
        request
            .extensions_mut()
            .insert(IdempotencyScope(scope.to_owned()));
        request
    }

    struct Answered {
        status: StatusCode,
        headers: HeaderMap,
        body: Value,
    }

    async fn send(app: &Router, request: Request) -> Answered {
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Answered {
            status,
            headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        }
    }

    #[tokio::test]
    async fn a_retried_post_gets_the_first_response_and_runs_once() {
        let h = harness(vec![Answer::Created]);
        let first = send(&h.app, post_with_key("key-1", r#"{"name":"Ada"}"#)).await;
        let retry = send(&h.app, post_with_key("key-1", r#"{"name":"Ada"}"#)).await;
        assert_eq!(h.calls.load(Ordering::SeqCst), 1);
        assert_eq!(first.status, StatusCode::CREATED);
        assert!(first.headers.get(&IDEMPOTENT_REPLAYED).is_none());
        assert_eq!(retry.status, StatusCode::CREATED);
        assert_eq!(retry.body, first.body);
        assert_eq!(retry.headers[&IDEMPOTENT_REPLAYED], "true");
        assert_eq!(retry.headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(retry.headers[header::LOCATION], "/contacts/0");
    }

    #[tokio::test]
    async fn a_duplicate_while_the_first_runs_is_told_to_retry_then_gets_the_replay() {
        let h = harness(vec![Answer::Wait]);
        let first = tokio::spawn({
            let app = h.app.clone();
            async move { send(&app, post_with_key("key-1", "{}")).await }
        });
        assert!(
            eventually(Duration::from_secs(5), || async {
                h.calls.load(Ordering::SeqCst) == 1
            })
            .await
        );
        let duplicate = send(&h.app, post_with_key("key-1", "{}")).await;
        assert_eq!(duplicate.status, StatusCode::CONFLICT);
        assert_eq!(
            duplicate.body["type"],
            "https://switchboard.dev/problems/idempotency_in_progress"
        );
        assert_eq!(duplicate.headers[header::RETRY_AFTER], "1");

        h.go.notify_one();
        let first = first.await.unwrap();
        assert_eq!(first.status, StatusCode::CREATED);
        let later = send(&h.app, post_with_key("key-1", "{}")).await;
        assert_eq!(later.status, StatusCode::CREATED);
        assert_eq!(later.body, first.body);
        assert_eq!(h.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_duplicates_run_the_request_once() {
        let h = harness(vec![Answer::Created]);
        let sends = (0..10).map(|_| {
            let app = h.app.clone();
            tokio::spawn(async move { send(&app, post_with_key("key-1", "{}")).await })
        });
        let mut created = 0;
        for answer in sends {
            let answer = answer.await.unwrap();
            match answer.status {
                StatusCode::CREATED => created += 1,
                StatusCode::CONFLICT => {
                    assert_eq!(answer.headers[header::RETRY_AFTER], "1");
                }
                other => panic!("unexpected {other}: {}", answer.body),
            }
        }
        assert!(created >= 1);
        assert_eq!(h.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_same_key_with_a_different_body_is_refused_as_reused() {
        let h = harness(vec![Answer::Created]);
        send(&h.app, post_with_key("key-1", r#"{"name":"Ada"}"#)).await;
        let other = send(&h.app, post_with_key("key-1", r#"{"name":"Bob"}"#)).await;
        assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            other.body["type"],
            "https://switchboard.dev/problems/idempotency_key_reused"
        );
        assert_eq!(h.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_server_error_is_not_kept_so_a_retry_runs_again() {
        let h = harness(vec![Answer::Fail, Answer::Created]);
        let first = send(&h.app, post_with_key("key-1", "{}")).await;
        assert_eq!(first.status, StatusCode::INTERNAL_SERVER_ERROR);
        let retry = send(&h.app, post_with_key("key-1", "{}")).await;
        assert_eq!(retry.status, StatusCode::CREATED);
        assert!(retry.headers.get(&IDEMPOTENT_REPLAYED).is_none());
        assert_eq!(h.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_conflict_is_not_kept_but_a_client_error_is() {
        let h = harness(vec![Answer::Conflict, Answer::BadRequest, Answer::Created]);
        assert_eq!(
            send(&h.app, post_with_key("key-1", "{}")).await.status,
            StatusCode::CONFLICT
        );
        let bad = send(&h.app, post_with_key("key-1", "{}")).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let replayed = send(&h.app, post_with_key("key-1", "{}")).await;
        assert_eq!(replayed.status, StatusCode::BAD_REQUEST);
        assert_eq!(replayed.headers[&IDEMPOTENT_REPLAYED], "true");
        assert_eq!(
            replayed.headers[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(replayed.body, bad.body);
        assert_eq!(h.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn scopes_are_isolated() {
        let h = harness(vec![Answer::Created]);
        let a = send(&h.app, in_scope(post_with_key("key-1", "{}"), "t1:u1")).await;
        let b = send(&h.app, in_scope(post_with_key("key-1", "{}"), "t2:u2")).await;
        let anonymous = send(&h.app, post_with_key("key-1", "{}")).await;
        assert_eq!(h.calls.load(Ordering::SeqCst), 3);
        assert_eq!(a.body["call"], 0);
        assert_eq!(b.body["call"], 1);
        assert_eq!(anonymous.body["call"], 2);
        let a_again = send(&h.app, in_scope(post_with_key("key-1", "{}"), "t1:u1")).await;
        assert_eq!(a_again.body["call"], 0);
        assert_eq!(h.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_response_revealing_a_secret_is_not_kept_and_its_retry_is_refused() {
        let h = harness(vec![Answer::Secret]);
        let first = send(&h.app, in_scope(post_with_key("key-1", "{}"), "t1:u1")).await;
        assert_eq!(first.status, StatusCode::CREATED);
        assert_eq!(first.body["secret"], "sk_live_secret0");

        let kept = h
            .cache
            .get(&cache_key("t1:u1", &Method::POST, "/contacts", "key-1"))
            .await
            .unwrap()
            .expect("the key is taken");
        let kept = String::from_utf8(kept.to_vec()).unwrap();
        assert!(kept.contains("withheld"), "{kept}");
        let secret_base64 = STANDARD.encode(b"sk_live_secret0");
        for leaked in ["sk_live", "secret0", secret_base64.as_str()] {
            assert!(!kept.contains(leaked), "{kept}");
        }

        let retry = send(&h.app, in_scope(post_with_key("key-1", "{}"), "t1:u1")).await;
        assert_eq!(retry.status, StatusCode::CONFLICT);
        assert_eq!(
            retry.body["type"],
            "https://switchboard.dev/problems/idempotency_response_withheld"
        );
        assert!(!retry.body.to_string().contains("sk_live"));
        assert_eq!(h.calls.load(Ordering::SeqCst), 1, "the retry did not run");
        // Another body with the key is still a reused key.
        let other = send(
            &h.app,
            in_scope(post_with_key("key-1", r#"{"a":1}"#), "t1:u1"),
        )
        .await;
        assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[tokio::test]
    async fn one_key_on_two_routes_is_two_keys() {
        let h = harness(vec![Answer::Created]);
        let contacts = send(&h.app, in_scope(post_with_key("key-1", "{}"), "t1:u1")).await;
        let mut other = post_with_key("key-1", "{}");
        *other.uri_mut() = "/other".parse().unwrap();
        let other = send(&h.app, in_scope(other, "t1:u1")).await;
        assert_eq!(contacts.status, StatusCode::CREATED);
        assert_eq!(other.status, StatusCode::CREATED, "{}", other.body);
        assert!(other.headers.get(&IDEMPOTENT_REPLAYED).is_none());
        assert_eq!(h.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn requests_without_a_key_or_not_post_pass_through() {
        let h = harness(vec![Answer::Created]);
        for _ in 0..2 {
            send(&h.app, request(Method::POST, None, "{}")).await;
            send(&h.app, request(Method::GET, Some("key-1"), "")).await;
        }
        assert_eq!(h.calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_quoted_key_is_the_same_key_unquoted() {
        let h = harness(vec![Answer::Created]);
        send(&h.app, post_with_key("\"key-1\"", "{}")).await;
        let retry = send(&h.app, post_with_key("key-1", "{}")).await;
        assert_eq!(retry.headers[&IDEMPOTENT_REPLAYED], "true");
        assert_eq!(h.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_invalid_key_is_a_validation_error_naming_the_header() {
        let h = harness(vec![Answer::Created]);
        let too_long = "k".repeat(256);
        for key in ["", "\"\"", "has space", "tab\tkey", too_long.as_str()] {
            let answer = send(&h.app, post_with_key(key, "{}")).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{key:?}");
            assert_eq!(answer.body["errors"][0]["field"], "Idempotency-Key");
        }
        let longest = "k".repeat(255);
        assert_eq!(
            send(&h.app, post_with_key(&longest, "{}")).await.status,
            StatusCode::CREATED
        );
        let twice = Request::builder()
            .method(Method::POST)
            .uri("/contacts")
            .header(&IDEMPOTENCY_KEY, "a")
            .header(&IDEMPOTENCY_KEY, "b")
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(&h.app, twice).await.status, StatusCode::BAD_REQUEST);
        assert_eq!(h.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_before_running() {
        let h = harness(vec![Answer::Created]);
        let mut request = post_with_key("key-1", r#"{"name":"a long enough body"}"#);
        request.extensions_mut().insert(BodyLimit(8));
        let answer = send(&h.app, request).await;
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(h.calls.load(Ordering::SeqCst), 0);
        // Nothing was marked: the same key with a body that fits runs.
        let fits = send(&h.app, post_with_key("key-1", "{}")).await;
        assert_eq!(fits.status, StatusCode::CREATED);
    }
}
