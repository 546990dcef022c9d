//! Every answer the site gives is checked against the OpenAPI document it
//! serves: the (method, path template, status) must be declared, the
//! `Content-Type` must be one the response declares, and a JSON body must
//! validate against the declared schema (JSON Schema 2020-12, as OpenAPI
//! 3.1 says; formats such as `uuid` and `date-time` checked). A layer
//! around the router records each violation; the site fails its test when
//! dropped with any (see [`Site`](super::Site)).
//!
//! Requests to paths the document does not have, or with a method a path
//! does not have, are not checked here: the route-coverage test
//! (`tests/openapi.rs`) finds those.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::Response;
use jsonschema::Validator;
use serde_json::{Value, json};

/// The document, its compiled response schemas, and what failed so far.
#[derive(Default)]
pub struct Conformance {
    document: OnceLock<Value>,
    validators: Mutex<HashMap<String, Arc<Validator>>>,
    violations: Mutex<Vec<String>>,
    checked: AtomicUsize,
}

impl Conformance {
    /// Sets the document to check against (once, when the site is up).
    pub fn set_document(&self, document: Value) {
        self.document
            .set(document)
            .expect("the document is set once");
    }

    /// The violations recorded so far.
    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().unwrap().clone()
    }

    /// How many answers the layer checked.
    pub fn checked(&self) -> usize {
        self.checked.load(Ordering::Relaxed)
    }

    /// Checks one answer to `method path`: `Ok` when it is what the
    /// document declares (or the document does not have the operation),
    /// else what is wrong.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(), String> {
        let document = self
            .document
            .get()
            .ok_or("the document is not loaded yet")?;
        let Some(template) = template_of(document, path) else {
            return Ok(());
        };
        let method = method.to_lowercase();
        let Some(operation) = document["paths"][&template].get(&method) else {
            return Ok(());
        };
        let at = format!("{} {template} → {status}", method.to_uppercase());
        let Some(response) = operation["responses"].get(status.to_string()) else {
            return Err(format!("{at}: the status is not declared"));
        };
        let response = resolve(document, response);
        let content = response["content"].as_object();
        if body.is_empty() {
            return match content {
                Some(content) if !content.is_empty() => {
                    Err(format!("{at}: no body, but the document declares one"))
                }
                _ => Ok(()),
            };
        }
        let Some(content) = content.filter(|content| !content.is_empty()) else {
            return Err(format!("{at}: a body, but the document declares none"));
        };
        let media_type = content_type
            .map(|value| value.split(';').next().unwrap_or_default().trim())
            .ok_or_else(|| format!("{at}: a body without a Content-Type"))?;
        let Some(media) = content.get(media_type) else {
            return Err(format!(
                "{at}: the body is {media_type}, which the response does not declare"
            ));
        };
        let Some(schema) = media.get("schema") else {
            return Ok(());
        };
        if !media_type.ends_with("json") {
            return Ok(());
        }
        let instance: Value = serde_json::from_slice(body)
            .map_err(|error| format!("{at}: the {media_type} body is not JSON: {error}"))?;
        let key = format!("{at} {media_type}");
        let validator = self.validator(&key, document, schema)?;
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|error| format!("{} at `{}`", error, error.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{at}: the body does not validate against its schema {schema}: {}\nbody: {instance}",
                errors.join("; ")
            ))
        }
    }

    /// The compiled schema of one response, cached by `key`. The schema is
    /// compiled inside a wrapper that holds the document's components, so
    /// its `#/components/schemas/…` references resolve.
    fn validator(
        &self,
        key: &str,
        document: &Value,
        schema: &Value,
    ) -> Result<Arc<Validator>, String> {
        if let Some(validator) = self.validators.lock().unwrap().get(key) {
            return Ok(validator.clone());
        }
        let validator = Arc::new(validator_for(document, schema)?);
        self.validators
            .lock()
            .unwrap()
            .insert(key.to_owned(), validator.clone());
        Ok(validator)
    }

    fn record(&self, violation: String) {
        tracing::error!(%violation, "an answer the OpenAPI document does not declare");
        self.violations.lock().unwrap().push(violation);
    }
}

/// A validator of `schema`, a schema of the document `document` (its
/// `$ref`s point into `#/components`): JSON Schema 2020-12, with formats.
pub fn validator_for(document: &Value, schema: &Value) -> Result<Validator, String> {
    let wrapper = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": document["components"],
        "allOf": [schema],
    });
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&wrapper)
        .map_err(|error| format!("the schema {schema} does not compile: {error}"))
}

/// The document's path template that `path` is an instance of, the most
/// literal one when several are (`/v1/users/invite` before
/// `/v1/users/{id}`, as the router picks).
fn template_of(document: &Value, path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    document["paths"]
        .as_object()?
        .keys()
        .filter_map(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (part, segment) in parts.iter().zip(&segments) {
                if part.starts_with('{') && part.ends_with('}') {
                    if segment.is_empty() {
                        return None;
                    }
                } else if part == segment {
                    literal += 1;
                } else {
                    return None;
                }
            }
            Some((literal, template))
        })
        .max_by_key(|(literal, _)| *literal)
        .map(|(_, template)| template.clone())
}

/// Follows a local `$ref` (`#/components/…`), or answers `value` itself.
fn resolve<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
    value["$ref"]
        .as_str()
        .and_then(|reference| document.pointer(reference.strip_prefix('#')?))
        .unwrap_or(value)
}

/// The middleware: passes the request on, checks the answer, records a
/// violation, and answers unchanged.
pub async fn check_answers(
    State(conformance): State<Arc<Conformance>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if !path.starts_with("/v1/") || path == switchboard_gateway::OPENAPI_PATH {
        return response;
    }
    conformance.checked.fetch_add(1, Ordering::Relaxed);
    let status = response.status();
    if status == StatusCode::SWITCHING_PROTOCOLS {
        if let Err(violation) = conformance.check(&method, &path, status.as_u16(), None, b"") {
            conformance.record(violation);
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(error) => {
            conformance.record(format!("{method} {path}: the body cannot be read: {error}"));
            return Response::from_parts(parts, Body::empty());
        }
    };
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    if let Err(violation) = conformance.check(&method, &path, status.as_u16(), content_type, &bytes)
    {
        conformance.record(violation);
    }
    Response::from_parts(parts, Body::from(bytes))
}
