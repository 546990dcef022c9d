//! Strict JSON request and response bodies.
//!
//! [`ApiJson`] is axum's `Json` with the API's rules: the body must be
//! declared JSON (`application/json` or any `application/*+json`, RFC 6839
//! §3.1), it is read up to a size limit ([`BodyLimit`]), and every failure
//! is a [`Problem`] that says where it is: a syntax error names the line and
//! column, a type error, a missing field or an unknown field (DTOs use
//! `#[serde(deny_unknown_fields)]`) names the field's path.

use std::future::poll_fn;
use std::pin::pin;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::problem::{FieldError, Problem};

/// The largest request body read, in bytes. Put a `BodyLimit` in the
/// request extensions (a layer per route or router) to change it for the
/// request; [`BodyLimit::DEFAULT`] (1 MiB) applies otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

impl BodyLimit {
    pub const DEFAULT: BodyLimit = BodyLimit(1_048_576);

    /// The limit for the request with these extensions.
    pub fn of(extensions: &axum::http::Extensions) -> usize {
        extensions
            .get::<BodyLimit>()
            .copied()
            .unwrap_or(Self::DEFAULT)
            .0
    }
}

impl Default for BodyLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A JSON request body (an extractor) or response body. As an extractor it
/// rejects with a [`Problem`]: 415 when the body is not declared JSON, 413
/// over the [`BodyLimit`], 400 `malformed_json` when it does not parse, 400
/// `validation_failed` when it does not fit `T`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Problem> {
        check_content_type(request.headers())?;
        let limit = BodyLimit::of(request.extensions());
        let (parts, body) = request.into_parts();
        let body = read_body(&parts.headers, body, limit).await?;
        parse(&body).map(ApiJson)
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(bytes) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(mime::APPLICATION_JSON.as_ref()),
                )],
                bytes,
            )
                .into_response(),
            Err(error) => {
                tracing::error!(%error, "cannot serialize a response body");
                Problem::internal().into_response()
            }
        }
    }
}

/// Accepts `application/json` and `application/<anything>+json`, with any
/// parameters (`; charset=utf-8`).
fn check_content_type(headers: &HeaderMap) -> Result<(), Problem> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(Problem::unsupported_media_type(
            "expected a JSON body (`Content-Type: application/json`), but the request has no Content-Type",
        ));
    };
    let sent = String::from_utf8_lossy(value.as_bytes());
    let is_json = sent.parse::<mime::Mime>().is_ok_and(|mime| {
        mime.type_() == mime::APPLICATION
            && (mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON))
    });
    if is_json {
        Ok(())
    } else {
        Err(Problem::unsupported_media_type(format!(
            "expected a JSON body (`Content-Type: application/json`), not `{sent}`"
        )))
    }
}

/// Reads the whole body, refusing with 413 as soon as it is known to be
/// over `limit` bytes: up front from `Content-Length`, or while reading.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, Problem> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(Problem::payload_too_large(limit));
    }
    let mut body = pin!(body);
    let mut bytes = Vec::new();
    while let Some(frame) = poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|error| {
            tracing::debug!(%error, "cannot read a request body");
            Problem::bad_request("the request body could not be read")
        })?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limit {
                return Err(Problem::payload_too_large(limit));
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(bytes))
}

/// Parses `body` as a `T`, naming the place of any failure.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    if body.trim_ascii().is_empty() {
        return Err(Problem::malformed_json("request body is empty"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        into_problem(error.into_inner(), &path)
    })?;
    // Trailing characters after the value.
    deserializer
        .end()
        .map_err(|error| into_problem(error, "."))?;
    Ok(value)
}

/// Syntax and end-of-input errors are malformed JSON; data errors (wrong
/// type, missing or unknown field, bad value) are validation errors on the
/// field at `path` (`.` is the whole body).
fn into_problem(error: serde_json::Error, path: &str) -> Problem {
    let message = without_position(&error);
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => Problem::malformed_json(format!(
            "malformed JSON at line {}, column {}: {message}",
            error.line(),
            error.column()
        )),
        Category::Data => {
            // serde reports a missing field on the object that should hold
            // it (an unknown one is already in the path); name the field.
            let field = quoted_field(&message, "missing field `");
            let path = match (path, field) {
                (".", Some(field)) => field.to_owned(),
                (".", None) => BODY_FIELD.to_owned(),
                (path, Some(field)) => format!("{path}.{field}"),
                (path, None) => path.to_owned(),
            };
            Problem::validation(vec![FieldError::new(path, message)])
        }
    }
}

/// The `field` named in a validation error about the body as a whole (a
/// JSON array where an object was expected, …).
pub const BODY_FIELD: &str = "(body)";

/// serde_json's message without its " at line L column C" suffix.
fn without_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    match message.strip_suffix(&suffix) {
        Some(message) => message.to_owned(),
        None => message,
    }
}

/// The name in serde's "missing field `x`" / "unknown field `x`, expected …".
fn quoted_field<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split_once('`').map(|(field, _)| field)
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::http::{Method, StatusCode};
    use axum::routing::post;
    use serde::Deserialize;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use super::*;

    #[derive(Debug, Deserialize, Serialize)]
    #[serde(deny_unknown_fields)]
    struct NewContact {
        name: String,
        email: String,
        address: Option<Address>,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[derive(Debug, Deserialize, Serialize)]
    #[serde(deny_unknown_fields)]
    struct Address {
        city: String,
        zip: u32,
    }

    fn app() -> Router {
        Router::new().route(
            "/contacts",
            post(|ApiJson(contact): ApiJson<NewContact>| async move { ApiJson(contact) }),
        )
    }

    fn request(content_type: Option<&str>, body: impl Into<Body>) -> Request {
        let mut builder = Request::builder().method(Method::POST).uri("/contacts");
        if let Some(content_type) = content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        builder.body(body.into()).unwrap()
    }

    async fn send(app: Router, request: Request) -> (StatusCode, HeaderMap, Value) {
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (status, headers, body)
    }

    async fn post_json(body: &str) -> (StatusCode, Value) {
        let (status, _, body) =
            send(app(), request(Some("application/json"), body.to_owned())).await;
        (status, body)
    }

    #[tokio::test]
    async fn a_valid_body_is_parsed_and_echoed_as_json() {
        let (status, headers, body) = send(
            app(),
            request(
                Some("application/json; charset=utf-8"),
                r#"{"name":"Ada","email":"ada@example.com","tags":["vip"]}"#,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(
            body,
            json!({"name": "Ada", "email": "ada@example.com", "address": null, "tags": ["vip"]})
        );
    }

    #[tokio::test]
    async fn a_structured_json_media_type_is_accepted() {
        let (status, _, _) = send(
            app(),
            request(
                Some("application/merge-patch+json"),
                r#"{"name":"Ada","email":"a@b.c"}"#,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_body_not_declared_json_is_refused_naming_what_was_sent() {
        let (status, headers, body) = send(
            app(),
            request(Some("text/plain"), r#"{"name":"Ada","email":"a@b.c"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
        assert_eq!(
            body["type"],
            "https://switchboard.dev/problems/unsupported_media_type"
        );
        assert!(
            body["detail"].as_str().unwrap().contains("`text/plain`"),
            "{body}"
        );

        let (status, _, body) = send(app(), request(None, "{}")).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(
            body["detail"].as_str().unwrap().contains("no Content-Type"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn a_syntax_error_is_malformed_json_naming_line_and_column() {
        let (status, body) = post_json("{\n  \"name\": \"Ada\",\n  \"email\" \"x\"\n}").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body["type"],
            "https://switchboard.dev/problems/malformed_json"
        );
        assert_eq!(
            body["detail"],
            "malformed JSON at line 3, column 11: expected `:`"
        );
    }

    #[tokio::test]
    async fn a_truncated_body_is_malformed_json() {
        let (status, body) = post_json(r#"{"name": "Ada""#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body["type"],
            "https://switchboard.dev/problems/malformed_json"
        );
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .starts_with("malformed JSON at line 1, column 14: EOF"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn trailing_characters_after_the_value_are_malformed_json() {
        let (status, body) = post_json(r#"{"name":"Ada","email":"a@b.c"} x"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body["type"],
            "https://switchboard.dev/problems/malformed_json"
        );
    }

    #[tokio::test]
    async fn an_empty_body_is_malformed_json() {
        for empty in ["", "  \n"] {
            let (status, body) = post_json(empty).await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(
                body["type"],
                "https://switchboard.dev/problems/malformed_json"
            );
            assert_eq!(body["detail"], "request body is empty");
        }
    }

    #[tokio::test]
    async fn an_unknown_field_is_a_validation_error_naming_its_path() {
        let (status, body) = post_json(
            r#"{"name":"Ada","email":"a@b.c","address":{"city":"Paris","zip":75001,"floor":3}}"#,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body["type"],
            "https://switchboard.dev/problems/validation_failed"
        );
        assert_eq!(body["errors"][0]["field"], "address.floor");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with("unknown field `floor`"),
            "{body}"
        );

        let (_, body) = post_json(r#"{"name":"Ada","email":"a@b.c","admin":true}"#).await;
        assert_eq!(body["errors"][0]["field"], "admin");
    }

    #[tokio::test]
    async fn a_wrong_type_is_a_validation_error_naming_its_path() {
        let (status, body) =
            post_json(r#"{"name":"Ada","email":"a@b.c","address":{"city":"Paris","zip":"75001"}}"#)
                .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body["type"],
            "https://switchboard.dev/problems/validation_failed"
        );
        assert_eq!(
            body["errors"],
            json!([{
                "field": "address.zip",
                "message": "invalid type: string \"75001\", expected u32",
            }])
        );
        assert_eq!(
            body["detail"],
            "invalid field `address.zip`: invalid type: string \"75001\", expected u32"
        );

        let (_, body) = post_json(r#"{"name":"Ada","email":"a@b.c","tags":["a",2]}"#).await;
        assert_eq!(body["errors"][0]["field"], "tags[1]");

        let (_, body) = post_json(r#""just a string""#).await;
        assert_eq!(body["errors"][0]["field"], BODY_FIELD);
    }

    #[tokio::test]
    async fn a_missing_field_is_a_validation_error_naming_it() {
        let (status, body) = post_json(r#"{"name":"Ada"}"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["errors"][0]["field"], "email");
        assert_eq!(body["errors"][0]["message"], "missing field `email`");

        let (_, body) = post_json(r#"{"name":"Ada","email":"a@b.c","address":{"zip":1}}"#).await;
        assert_eq!(body["errors"][0]["field"], "address.city");
    }

    fn too_big() -> String {
        format!(
            r#"{{"name":"{}","email":"a@b.c"}}"#,
            "a".repeat(BodyLimit::DEFAULT.0)
        )
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_when_content_length_says_so() {
        let body = too_big();
        let request = Request::builder()
            .method(Method::POST)
            .uri("/contacts")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, body.len())
            .body(Body::from(body))
            .unwrap();
        let (status, _, body) = send(app(), request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            body["type"],
            "https://switchboard.dev/problems/payload_too_large"
        );
        assert_eq!(
            body["detail"],
            "request body is larger than the limit of 1048576 bytes"
        );
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_while_reading_without_content_length() {
        // Nothing declares the length: the limit is found while reading.
        let request = request(Some("application/json"), too_big());
        assert!(request.headers().get(header::CONTENT_LENGTH).is_none());
        let (status, _, body) = send(app(), request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            body["type"],
            "https://switchboard.dev/problems/payload_too_large"
        );
    }

    #[tokio::test]
    async fn the_limit_comes_from_the_body_limit_extension() {
        let app = app().layer(axum::Extension(BodyLimit(16)));
        let (status, _, _) = send(
            app.clone(),
            request(
                Some("application/json"),
                r#"{"name":"Ada","email":"a@b.c"}"#,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let (status, _, body) = send(app, request(Some("application/json"), "{}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "16 bytes fit: {body}");
    }
}
