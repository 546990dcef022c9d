//! Error responses as RFC 9457 problem details (`application/problem+json`).
//!
//! Every error the public API returns is a [`Problem`]: a stable `type` URI
//! (`https://switchboard.dev/problems/<slug>`) that clients switch on, the
//! status code's reason phrase as `title` (RFC 9110 §15), the `status`, a
//! human-readable `detail`, and for validation failures an `errors` list
//! naming each offending field. Headers that belong with the status ride
//! along (`WWW-Authenticate` on 401, `Retry-After` on 429 and 503).

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The media type of a problem document (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Where problem types live; a type URI is this plus the slug.
pub const PROBLEM_TYPE_BASE: &str = "https://switchboard.dev/problems/";

/// An RFC 9457 problem: what every failed API request answers. Build one
/// with a constructor named after the case (`Problem::not_found(…)`), add
/// headers with [`Problem::with_header`], and return it from a handler.
#[derive(Debug, Clone)]
pub struct Problem(Box<Parts>);

/// Boxed, so that `Result<T, Problem>` stays one pointer wide on the error
/// side.
#[derive(Debug, Clone)]
struct Parts {
    status: StatusCode,
    slug: Cow<'static, str>,
    detail: String,
    errors: Vec<FieldError>,
    /// Extension members (RFC 9457 §3.2), e.g. an agent's `current_state`.
    extensions: serde_json::Map<String, serde_json::Value>,
    headers: HeaderMap,
}

pub use switchboard_rpc::FieldError;

/// The JSON body of a problem (RFC 9457 §3.1), with our `errors` extension
/// member (§3.2).
#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    type_uri: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
    #[serde(flatten)]
    extensions: &'a serde_json::Map<String, serde_json::Value>,
}

impl Problem {
    /// A problem of any status; prefer the named constructors. `slug` names
    /// the problem type and must stay stable: clients match on it.
    pub fn new(
        status: StatusCode,
        slug: impl Into<Cow<'static, str>>,
        detail: impl Into<String>,
    ) -> Self {
        Self(Box::new(Parts {
            status,
            slug: slug.into(),
            detail: detail.into(),
            errors: Vec::new(),
            extensions: serde_json::Map::new(),
            headers: HeaderMap::new(),
        }))
    }

    /// 400 `bad_request`: the request is wrong in a way no other case names.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    /// 400 `validation_failed`: fields of the body, query or headers are
    /// invalid; `errors` says which and why.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [] => "the request is invalid".to_owned(),
            [one] => format!("invalid field `{}`: {}", one.field, one.message),
            many => {
                let fields: Vec<String> = many
                    .iter()
                    .map(|error| format!("`{}`", error.field))
                    .collect();
                format!("invalid fields: {}", fields.join(", "))
            }
        };
        Self::new(StatusCode::BAD_REQUEST, "validation_failed", detail).with_errors(errors)
    }

    /// 400 `malformed_json`: the body is not JSON at all.
    pub fn malformed_json(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_json", detail)
    }

    /// 401 `unauthorized`, challenging for a bearer token (RFC 9110 §11.6.1,
    /// RFC 6750 §3).
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    /// 403: authenticated, but not allowed; `slug` says why
    /// (`missing_permission`, `tenant_suspended`, …).
    pub fn forbidden(slug: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, slug, detail)
    }

    /// 404 `not_found`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 409: the request conflicts with the resource's current state; `slug`
    /// says how (`seat_limit_reached`, `already_exists`, …).
    pub fn conflict(slug: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, slug, detail)
    }

    /// 413 `payload_too_large`: the body is over `limit` bytes.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than the limit of {limit} bytes"),
        )
    }

    /// 415 `unsupported_media_type`.
    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            detail,
        )
    }

    /// 422: well-formed and valid, but the operation cannot apply; `slug`
    /// says why (`idempotency_key_reused`, …).
    pub fn unprocessable(slug: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, slug, detail)
    }

    /// 429 `rate_limited`, with `Retry-After` in whole seconds, rounded up,
    /// at least 1 (RFC 9110 §10.2.3 has no fractions, and 0 would invite an
    /// immediate retry that fails again).
    pub fn too_many_requests(retry_after: Duration) -> Self {
        let seconds = retry_after_seconds(retry_after);
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("rate limit exceeded; retry in {seconds} s"),
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from(seconds))
    }

    /// 503 `unavailable`, with `Retry-After: 5`: a dependency is down and
    /// the same request may succeed shortly.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("5"))
    }

    /// 500 `internal`, with a generic detail: what went wrong goes to the
    /// log, never to the client.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred; it has been logged",
        )
    }

    /// Adds (or replaces) a response header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.headers.insert(name, value);
        self
    }

    /// Adds (or replaces) every header of `headers`.
    pub fn with_headers(mut self, headers: HeaderMap) -> Self {
        for (name, value) in headers {
            if let Some(name) = name {
                self.0.headers.insert(name, value);
            }
        }
        self
    }

    /// Sets the per-field errors.
    /// Adds an extension member (RFC 9457 §3.2). The standard members
    /// (`type`, `title`, `status`, `detail`, `errors`) cannot be replaced.
    pub fn with_extension(mut self, name: &str, value: serde_json::Value) -> Self {
        if !matches!(name, "type" | "title" | "status" | "detail" | "errors") {
            self.0.extensions.insert(name.to_owned(), value);
        }
        self
    }

    /// The extension members.
    pub fn extensions(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.0.extensions
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.0.errors = errors;
        self
    }

    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The last segment of the type URI (`validation_failed`).
    pub fn slug(&self) -> &str {
        &self.0.slug
    }

    /// The type URI (`https://switchboard.dev/problems/validation_failed`).
    pub fn type_uri(&self) -> String {
        format!("{PROBLEM_TYPE_BASE}{}", self.0.slug)
    }

    pub fn detail(&self) -> &str {
        &self.0.detail
    }

    pub fn errors(&self) -> &[FieldError] {
        &self.0.errors
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.0.headers
    }
}

impl From<switchboard_rpc::ServiceError> for Problem {
    /// A service's error as the public API answers it: the status from
    /// [`switchboard_rpc::ERROR_TABLE`], the error's problem code and
    /// detail, its field errors and extension members. Internal and
    /// unavailable details go to the log, and the client gets the generic
    /// problem with its headers (`Retry-After`).
    fn from(error: switchboard_rpc::ServiceError) -> Self {
        use switchboard_rpc::ErrorKind;
        let problem = match error.kind {
            ErrorKind::Validation => Self::validation(error.fields),
            ErrorKind::Unauthenticated => Self::unauthorized(error.detail),
            ErrorKind::Throttled => {
                Self::too_many_requests(error.retry_after.unwrap_or(Duration::from_secs(1)))
            }
            ErrorKind::Unavailable => {
                tracing::warn!(error = %error.detail, "backend unavailable");
                Self::unavailable("a backend is unavailable; retry later")
            }
            ErrorKind::Internal => {
                tracing::error!(error = %error.detail, "internal error");
                Self::internal()
            }
            ErrorKind::BadRequest
            | ErrorKind::Forbidden
            | ErrorKind::NotFound
            | ErrorKind::Conflict => Self::new(error.kind.http_status(), error.code, error.detail)
                .with_errors(error.fields),
        };
        error
            .extensions
            .into_iter()
            .fold(problem, |problem, (name, value)| {
                problem.with_extension(&name, value)
            })
    }
}

/// Whole seconds for `Retry-After`: rounded up, at least 1.
pub(crate) fn retry_after_seconds(wait: Duration) -> u64 {
    ceil_seconds(wait).max(1)
}

/// Whole seconds, rounded up.
pub(crate) fn ceil_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.0.status.as_u16(),
            self.0.slug,
            self.0.detail
        )
    }
}

impl std::error::Error for Problem {}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let type_uri = self.type_uri();
        let Parts {
            status,
            detail,
            errors,
            extensions,
            headers: extra_headers,
            ..
        } = *self.0;
        let body = Body {
            type_uri,
            title: status.canonical_reason().unwrap_or_default(),
            status: status.as_u16(),
            detail: &detail,
            errors: &errors,
            extensions: &extensions,
        };
        let bytes = match serde_json::to_vec(&body) {
            Ok(bytes) => bytes,
            Err(error) => {
                // Strings and integers always serialize; this cannot happen.
                tracing::error!(%error, "cannot serialize a problem document");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        };
        let mut response = (status, bytes).into_response();
        let headers = response.headers_mut();
        headers.extend(extra_headers);
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;
    use serde_json::{Value, json};

    use super::*;

    async fn render(problem: Problem) -> (StatusCode, HeaderMap, Value) {
        let response = problem.into_response();
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, headers, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_problem_is_an_rfc_9457_document_served_as_problem_json() {
        let (status, headers, body) = render(Problem::not_found("no agent 42")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(
            body,
            json!({
                "type": "https://switchboard.dev/problems/not_found",
                "title": "Not Found",
                "status": 404,
                "detail": "no agent 42",
            })
        );
    }

    #[tokio::test]
    async fn extension_members_sit_beside_the_standard_ones_and_cannot_replace_them() {
        let problem = Problem::conflict("illegal_transition", "agent is busy")
            .with_extension("current_state", json!({"state": "busy"}))
            .with_extension("status", json!(200));
        let (status, _, body) = render(problem).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            body,
            json!({
                "type": "https://switchboard.dev/problems/illegal_transition",
                "title": "Conflict",
                "status": 409,
                "detail": "agent is busy",
                "current_state": {"state": "busy"},
            })
        );
    }

    #[tokio::test]
    async fn validation_lists_each_field_and_summarises_them_in_the_detail() {
        let (status, _, body) = render(Problem::validation(vec![
            FieldError::new("email", "must be an email address"),
            FieldError::new("seats", "must be at least 1"),
        ]))
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body["type"],
            "https://switchboard.dev/problems/validation_failed"
        );
        assert_eq!(body["title"], "Bad Request");
        assert_eq!(body["detail"], "invalid fields: `email`, `seats`");
        assert_eq!(
            body["errors"],
            json!([
                { "field": "email", "message": "must be an email address" },
                { "field": "seats", "message": "must be at least 1" },
            ])
        );

        let (_, _, one) = render(Problem::validation(vec![FieldError::new(
            "limit", "too big",
        )]))
        .await;
        assert_eq!(one["detail"], "invalid field `limit`: too big");
    }

    #[tokio::test]
    async fn unauthorized_challenges_for_a_bearer_token() {
        let (status, headers, body) = render(Problem::unauthorized("token expired")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(
            body["type"],
            "https://switchboard.dev/problems/unauthorized"
        );
    }

    #[tokio::test]
    async fn too_many_requests_says_when_to_retry_in_whole_seconds_rounded_up() {
        for (wait, expected) in [
            (Duration::from_millis(1), "1"),
            (Duration::ZERO, "1"),
            (Duration::from_secs(2), "2"),
            (Duration::from_millis(2001), "3"),
        ] {
            let (status, headers, body) = render(Problem::too_many_requests(wait)).await;
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(headers[header::RETRY_AFTER], expected, "{wait:?}");
            assert_eq!(
                body["type"],
                "https://switchboard.dev/problems/rate_limited"
            );
        }
    }

    #[tokio::test]
    async fn unavailable_asks_to_retry_after_five_seconds() {
        let (status, headers, _) = render(Problem::unavailable("database is down")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::RETRY_AFTER], "5");
    }

    #[tokio::test]
    async fn internal_errors_say_nothing_about_the_cause() {
        let (status, _, body) = render(Problem::internal()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["type"], "https://switchboard.dev/problems/internal");
        assert_eq!(body["title"], "Internal Server Error");
        assert!(body.get("errors").is_none());
    }

    #[tokio::test]
    async fn each_constructor_has_its_status_and_type() {
        let cases = [
            (Problem::bad_request("x"), 400, "bad_request"),
            (Problem::malformed_json("x"), 400, "malformed_json"),
            (
                Problem::forbidden("tenant_suspended", "x"),
                403,
                "tenant_suspended",
            ),
            (
                Problem::conflict("seat_limit_reached", "x"),
                409,
                "seat_limit_reached",
            ),
            (Problem::payload_too_large(10), 413, "payload_too_large"),
            (
                Problem::unsupported_media_type("x"),
                415,
                "unsupported_media_type",
            ),
            (
                Problem::unprocessable("idempotency_key_reused", "x"),
                422,
                "idempotency_key_reused",
            ),
        ];
        for (problem, status, slug) in cases {
            let (actual, headers, body) = render(problem).await;
            assert_eq!(actual.as_u16(), status, "{slug}");
            assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON);
            assert_eq!(body["type"], format!("{PROBLEM_TYPE_BASE}{slug}"));
            assert_eq!(body["status"], status);
        }
    }

    #[tokio::test]
    async fn extra_headers_are_sent_and_a_later_one_replaces_an_earlier_one() {
        let problem = Problem::conflict("busy", "x")
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("2"));
        let (_, headers, _) = render(problem).await;
        assert_eq!(headers.get_all(header::RETRY_AFTER).iter().count(), 1);
        assert_eq!(headers[header::RETRY_AFTER], "2");
    }
}
