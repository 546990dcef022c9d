//! The OpenAPI 3.1 document of `/v1`, generated from the code with utoipa:
//! each handler's `#[utoipa::path]` says what it answers, the route table
//! (`routes.rs`, built with `utoipa_axum`) registers a handler and its
//! documentation in one step, and what the middleware does (authentication,
//! rate limits, idempotency) is added here, by the same grouping that
//! layers the middleware. Served at `GET /v1/openapi.json`, browsable at
//! `GET /docs` (Scalar, served from the binary: the page fetches nothing
//! from outside the node).
//!
//! The problem schema is a documentation-only mirror of
//! [`switchboard_http::Problem`] (that crate has no utoipa dependency); a
//! unit test keeps the two shapes equal.

use std::borrow::Cow;

use axum::Router;
use axum::body::Bytes;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::routing::get;
use serde::Serialize;
use switchboard_identity_api::domain::SCOPE_AREAS;
use switchboard_identity_api::{Role, TenantStatus, UserStatus};
use switchboard_routing_api::config::openapi::{CLOSED_ENUMS, close_variants};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{HttpMethod, OpenApi, Ref, RefOr, Required, Schema};
use utoipa::{IntoParams, Modify, PartialSchema, ToResponse, ToSchema};

use crate::dto::trunks::TrunkDto;
use crate::dto::webhooks::{DeliveryDto, WebhookDto};
use crate::dto::{ApiKeyDto, AuditEventDto, ClientDto, UserDto};

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/v1/openapi.json";
/// Where the API reference (Scalar) is served.
pub const DOCS_PATH: &str = "/docs";
/// Where the API reference's script is served: Scalar's standalone bundle,
/// vendored unmodified under `assets/scalar/` (see its README), versioned
/// in the path so it may be cached for good.
pub const DOCS_SCRIPT_PATH: &str = "/docs/scalar-api-reference-1.76.4.js";

/// `@scalar/api-reference` 1.76.4, `dist/browser/standalone.js` (MIT).
const DOCS_SCRIPT: &[u8] = include_bytes!("../assets/scalar/api-reference-1.76.4.js");

/// The Subresource Integrity value (W3C SRI, SHA-384) of [`DOCS_SCRIPT`],
/// so a browser runs the script only if it is exactly these bytes.
const DOCS_SCRIPT_INTEGRITY: &str =
    "sha384-hwB9WroDTpZaI38gr+u9CXA6ksz5gUYgD2GxXazKl/agT1L2GWUiRFWGJYNiFu4Q";

/// The name of the one security scheme: `Authorization: Bearer <access
/// token or API key>`.
const BEARER: &str = "bearer";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Switchboard API",
        version = env!("CARGO_PKG_VERSION"),
        description = include_str!("openapi/description.md"),
        license(name = "Apache-2.0", url = "https://www.apache.org/licenses/LICENSE-2.0"),
    ),
    tags(
        (name = "auth", description = "Signup, login, tokens and sessions."),
        (name = "tenant", description = "The caller's own tenant."),
        (name = "clients", description = "Client organizations of an outsourcer tenant."),
        (name = "users", description = "Users, invitations, roles and client scopes."),
        (name = "api-keys", description = "Keys for integrations."),
        (name = "audit", description = "The tenant's audit log."),
        (name = "webhooks", description = "Endpoints that receive the tenant's events, signed (Standard Webhooks), with their deliveries and attempts."),
        (name = "routing", description = "The routing configuration: numbers, schedules, inbound rules with forced modes, IVR flows and their published versions, queues, skills, agent profiles and groups, ring groups, voicemail boxes, outbound rules, not-ready reason codes."),
        (name = "agents", description = "The agent desktop: the signed-in agent's state, presence, offers and after-call work, and its live WebSocket."),
        (name = "queues", description = "Live queue figures for supervisors and wallboards, by REST and WebSocket."),
        (name = "trunks", description = "Carrier trunks: where the tenant's calls come from (source addresses, digest credentials) and how they go out (host, transport, credentials, registration, caller ID, priority). Passwords are write-only."),
    ),
    components(
        schemas(ProblemDoc, FieldErrorDoc),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            Conflict,
            PayloadTooLarge,
            UnsupportedMediaType,
            UnprocessableEntity,
            TooManyRequests,
            InternalError,
            Unavailable,
        ),
    ),
    modifiers(&BearerScheme),
)]
struct ApiDoc;

/// The document before any route is added: info, tags, the security
/// scheme and the shared problem responses.
pub(crate) fn base() -> OpenApi {
    <ApiDoc as utoipa::OpenApi>::openapi()
}

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An access token (from signup, login, refresh or an accepted \
                         invitation) or an API key (`POST /v1/api-keys`): both are sent as \
                         `Authorization: Bearer <credential>`. The tenant is the \
                         credential's; no request names it.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Serves the document as JSON and as an API reference page with its
/// script; all public.
pub(crate) fn serve(document: OpenApi) -> Router {
    // Serialized once: the document does not change while the node runs.
    let json = match document.to_json() {
        Ok(json) => json,
        Err(error) => {
            // Our own types; cannot fail short of a bug.
            tracing::error!(%error, "cannot serialize the OpenAPI document");
            "{}".to_owned()
        }
    };
    let page = Bytes::from(docs_page(&json));
    let json = Bytes::from(json);
    Router::new()
        .route(
            OPENAPI_PATH,
            get(move || {
                let json = json.clone();
                async move { ([(CONTENT_TYPE, "application/json")], json) }
            }),
        )
        .route(
            DOCS_PATH,
            get(move || {
                let page = page.clone();
                async move { ([(CONTENT_TYPE, "text/html; charset=utf-8")], page) }
            }),
        )
        .route(
            DOCS_SCRIPT_PATH,
            get(|| async {
                (
                    [
                        (CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (CACHE_CONTROL, "public, max-age=31536000, immutable"),
                    ],
                    Bytes::from_static(DOCS_SCRIPT),
                )
            }),
        )
}

/// The API reference page: the document embedded as JSON (with `</`
/// written `<\/`, still the same JSON, so no text in it can end the
/// `<script>` element), Scalar's script from [`DOCS_SCRIPT_PATH`] with
/// its integrity, and Scalar's default fonts off (they come from a CDN).
fn docs_page(json: &str) -> String {
    let document = json.replace("</", "<\\/");
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<title>Switchboard API reference</title>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1"/>
</head>
<body>
<div id="app"></div>
<script id="api-document" type="application/json">{document}</script>
<script src="{DOCS_SCRIPT_PATH}" integrity="{DOCS_SCRIPT_INTEGRITY}"></script>
<script>
Scalar.createApiReference("#app", {{
  content: JSON.parse(document.getElementById("api-document").textContent),
  withDefaultFonts: false,
}});
</script>
</body>
</html>
"##
    )
}

// ---- what the middleware adds to the operations of its group ----

/// Every operation of `openapi`, with its method.
fn operations(openapi: &mut OpenApi) -> impl Iterator<Item = (HttpMethod, &mut Operation)> {
    openapi.paths.paths.values_mut().flat_map(|item| {
        [
            (HttpMethod::Get, &mut item.get),
            (HttpMethod::Put, &mut item.put),
            (HttpMethod::Post, &mut item.post),
            (HttpMethod::Delete, &mut item.delete),
            (HttpMethod::Options, &mut item.options),
            (HttpMethod::Head, &mut item.head),
            (HttpMethod::Patch, &mut item.patch),
            (HttpMethod::Trace, &mut item.trace),
        ]
        .into_iter()
        .filter_map(|(method, operation)| operation.as_mut().map(|operation| (method, operation)))
    })
}

/// Adds a shared response (`#/components/responses/<R>`) for `status`
/// unless the handler documents that status itself.
fn add_response<R: for<'r> ToResponse<'r>>(operation: &mut Operation, status: &str) {
    let (name, _) = R::response();
    operation
        .responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
}

/// The routes behind `authenticate`: they need the bearer credential, may
/// answer 401, 403 (`tenant_suspended`) and 429, and every answer carries
/// the `RateLimit-*` headers (documented on the success responses).
pub(crate) fn authenticated(openapi: &mut OpenApi) {
    for (_, operation) in operations(openapi) {
        operation.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
        add_response::<Unauthorized>(operation, "401");
        add_response::<Forbidden>(operation, "403");
        add_response::<TooManyRequests>(operation, "429");
        for (status, response) in operation.responses.responses.iter_mut() {
            if let (true, RefOr::T(response)) = (status.starts_with('2'), response) {
                for (name, description) in RATE_LIMIT_HEADERS {
                    response.headers.insert(
                        name.to_owned(),
                        HeaderBuilder::new()
                            .schema(u64::schema())
                            .description(Some(description))
                            .build(),
                    );
                }
            }
        }
    }
}

const RATE_LIMIT_HEADERS: [(&str, &str); 3] = [
    (
        "RateLimit-Limit",
        "The capacity of the tightest bucket (the tenant's or the credential's).",
    ),
    ("RateLimit-Remaining", "Requests left in that bucket now."),
    (
        "RateLimit-Reset",
        "Seconds until that bucket is full again.",
    ),
];

/// The routes anyone may call: no credential.
pub(crate) fn public(openapi: &mut OpenApi) {
    for (_, operation) in operations(openapi) {
        operation.security = Some(vec![SecurityRequirement::default()]);
    }
}

/// The routes behind the idempotency middleware: every `POST` takes an
/// `Idempotency-Key` header and may answer 400 (a malformed key), 409 (the
/// first request with the key is still running, or its answer held a
/// secret that is not kept) or 422 (the key was used for another request).
pub(crate) fn idempotent(openapi: &mut OpenApi) {
    for (method, operation) in operations(openapi) {
        if method == HttpMethod::Post {
            operation
                .parameters
                .get_or_insert_with(Vec::new)
                .push(idempotency_key());
            add_response::<BadRequest>(operation, "400");
            add_response::<Conflict>(operation, "409");
            add_response::<UnprocessableEntity>(operation, "422");
        }
    }
}

/// Any operation may fail with 500 or 503. Also closes the tagged enums'
/// variants ([`close_enums`]).
pub(crate) fn common(openapi: &mut OpenApi) {
    if let Some(components) = openapi.components.as_mut() {
        close_enums(&mut components.schemas);
    }
    for (_, operation) in operations(openapi) {
        add_response::<InternalError>(operation, "500");
        add_response::<Unavailable>(operation, "503");
    }
}

/// Closes the variants of the tagged enums that refuse unknown fields
/// (see [`CLOSED_ENUMS`]), among the named `schemas`.
pub(crate) fn close_enums(schemas: &mut std::collections::BTreeMap<String, RefOr<Schema>>) {
    for name in CLOSED_ENUMS {
        if let Some(schema) = schemas.get_mut(name) {
            close_variants(schema);
        }
    }
}

fn idempotency_key() -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Makes a retry safe: 1 to 255 visible ASCII characters (a UUID is a good choice), \
             unique per request. A retry with the same key, method, path and body within 24 \
             hours gets the first answer again (with `Idempotent-Replayed: true`) instead of \
             running twice; an answer that shows a secret once (an API key, a webhook secret, \
             an invitation) is not kept, and its retry is refused (409 \
             `idempotency_response_withheld`). Keys are per route.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(255)),
        ))
        .build()
}

// ---- schemas that exist only in the document ----

/// An RFC 9457 problem: what every failed request answers, as
/// `application/problem+json`. Clients switch on `type`.
#[derive(Serialize, ToSchema)]
#[schema(
    as = Problem,
    example = json!({
        "type": "https://switchboard.dev/problems/validation_failed",
        "title": "Bad Request",
        "status": 400,
        "detail": "invalid field `email`: is not an email address",
        "errors": [{ "field": "email", "message": "is not an email address" }]
    })
)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) struct ProblemDoc {
    /// `https://switchboard.dev/problems/<slug>`: stable, what clients
    /// match on (`validation_failed`, `not_found`, `seat_limit_reached`, …).
    #[serde(rename = "type")]
    #[schema(format = "uri")]
    pub type_uri: String,
    /// The status code's reason phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong, for humans.
    pub detail: String,
    /// For `validation_failed`: each invalid field of the body, the query
    /// or the headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldErrorDoc>,
}

/// One invalid field.
#[derive(Serialize, ToSchema)]
#[schema(as = FieldError)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) struct FieldErrorDoc {
    /// Its path in the body (`contact.email`, `items[2].quantity`), the
    /// query (`limit`) or the header's name (`Idempotency-Key`).
    pub field: String,
    pub message: String,
}

/// The pagination parameters of every list (mirrors
/// [`switchboard_http::PageQuery`]).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct PageParams {
    /// How many items to return.
    #[param(minimum = 1, maximum = 200, default = 50)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page, unchanged; absent for the first
    /// page. Opaque: base64url without padding (RFC 4648 §5).
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    cursor: Option<String>,
}

macro_rules! page {
    ($name:ident, $item:ty, $what:literal) => {
        #[doc = concat!("One page of ", $what, ". `next_cursor` is `null` on the last page.")]
        #[derive(ToSchema)]
        #[allow(dead_code)]
        pub(crate) struct $name {
            data: Vec<$item>,
            /// Pass as `cursor` to get the next page.
            #[schema(required = true, pattern = "^[A-Za-z0-9_-]+$")]
            next_cursor: Option<String>,
        }
    };
}

page!(ClientPage, ClientDto, "client organizations");
page!(UserPage, UserDto, "users");
page!(ApiKeyPage, ApiKeyDto, "API keys");
page!(AuditEventPage, AuditEventDto, "audit events, oldest first");
page!(WebhookPage, WebhookDto, "webhook endpoints");
page!(TrunkPage, TrunkDto, "carrier trunks, oldest first");
page!(
    WebhookDeliveryPage,
    DeliveryDto,
    "webhook deliveries, newest first"
);

/// A string schema listing `values`.
pub(crate) fn string_enum(
    description: &str,
    values: impl IntoIterator<Item = &'static str>,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(values))
        .into()
}

/// The roles a user may hold (several at once), from
/// [`switchboard_identity_api::Role`].
pub(crate) struct RoleSchema;

impl PartialSchema for RoleSchema {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "What a user is to its tenant; several may be held at once.",
            Role::ALL.map(Role::as_str),
        )
    }
}

impl ToSchema for RoleSchema {
    fn name() -> Cow<'static, str> {
        "Role".into()
    }
}

/// The scopes an API key may hold, from the rules of
/// [`ApiScope`](switchboard_identity_api::ApiScope): `read`,
/// `full`, and `<area>:read` / `<area>:write` for each of
/// [`SCOPE_AREAS`].
pub(crate) struct ApiScopeSchema;

impl ApiScopeSchema {
    /// Every scope, as written.
    pub(crate) fn all() -> Vec<String> {
        let areas = SCOPE_AREAS
            .iter()
            .flat_map(|area| [format!("{area}:read"), format!("{area}:write")]);
        ["read".to_owned(), "full".to_owned()]
            .into_iter()
            .chain(areas)
            .collect()
    }
}

impl PartialSchema for ApiScopeSchema {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "What an API key may do: `read` (every read), `full` (everything but managing \
                 API keys and billing), or one area's `<area>:read` / `<area>:write` (write \
                 implies read).",
            ))
            .enum_values(Some(Self::all()))
            .into()
    }
}

impl ToSchema for ApiScopeSchema {
    fn name() -> Cow<'static, str> {
        "ApiScope".into()
    }
}

/// A tenant's lifecycle, from [`TenantStatus`].
pub(crate) struct TenantStatusSchema;

impl TenantStatusSchema {
    /// Every status; the match breaks the build when one is added.
    fn all() -> [TenantStatus; 4] {
        match TenantStatus::Trial {
            TenantStatus::Trial
            | TenantStatus::Active
            | TenantStatus::Suspended
            | TenantStatus::Closed => {}
        }
        [
            TenantStatus::Trial,
            TenantStatus::Active,
            TenantStatus::Suspended,
            TenantStatus::Closed,
        ]
    }
}

impl PartialSchema for TenantStatusSchema {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "A tenant's lifecycle: `trial` and `active` tenants are served; `suspended` and \
             `closed` ones are refused (403 `tenant_suspended`), their data kept.",
            Self::all().map(TenantStatus::as_str),
        )
    }
}

impl ToSchema for TenantStatusSchema {
    fn name() -> Cow<'static, str> {
        "TenantStatus".into()
    }
}

/// A user's lifecycle, from [`UserStatus`].
pub(crate) struct UserStatusSchema;

impl UserStatusSchema {
    /// Every status; the match breaks the build when one is added.
    fn all() -> [UserStatus; 3] {
        match UserStatus::Invited {
            UserStatus::Invited | UserStatus::Active | UserStatus::Disabled => {}
        }
        [
            UserStatus::Invited,
            UserStatus::Active,
            UserStatus::Disabled,
        ]
    }
}

impl PartialSchema for UserStatusSchema {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "A user's lifecycle: `invited` (no password yet), `active`, `disabled`. Invited \
             and active users hold their seat.",
            Self::all().map(UserStatus::as_str),
        )
    }
}

impl ToSchema for UserStatusSchema {
    fn name() -> Cow<'static, str> {
        "UserStatus".into()
    }
}

// ---- the shared problem responses, `#/components/responses/<name>` ----

/// The request is invalid: `validation_failed` (`errors` names each field
/// of the body, the query or a header such as `Idempotency-Key`),
/// `malformed_json` (the body is not JSON; `detail` gives the line and
/// column) or `bad_request`.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub(crate) struct BadRequest(ProblemDoc);

/// No valid credential: the `Authorization` header is missing or not
/// `Bearer <credential>`, or the token or key is invalid, expired or
/// revoked (`unauthorized`).
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("WWW-Authenticate" = String, description = "`Bearer`"))
)]
#[allow(dead_code)]
pub(crate) struct Unauthorized(ProblemDoc);

/// Authenticated, but not allowed: `permission_denied` (the role or the
/// API key's scopes do not allow it), `email_unverified`, `client_scope`,
/// or `tenant_suspended`.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub(crate) struct Forbidden(ProblemDoc);

/// No such resource in the caller's tenant (`not_found`). Another
/// tenant's ids and malformed ids are not found alike.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub(crate) struct NotFound(ProblemDoc);

/// The request conflicts with the current state; `type` says how
/// (`email_taken`, `client_exists`, `seat_limit_reached`, `last_owner`,
/// `slug_taken`, `invitation_pending`, `endpoint_limit_reached`,
/// `endpoint_disabled`, `user_not_active`, `idempotency_in_progress` with `Retry-After`, or
/// `idempotency_response_withheld`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub(crate) struct Conflict(ProblemDoc);

/// The body is larger than the node's limit (`payload_too_large`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub(crate) struct PayloadTooLarge(ProblemDoc);

/// The body is not declared JSON: send `Content-Type: application/json`
/// (`unsupported_media_type`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub(crate) struct UnsupportedMediaType(ProblemDoc);

/// The `Idempotency-Key` was used for a different request
/// (`idempotency_key_reused`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub(crate) struct UnprocessableEntity(ProblemDoc);

/// Too many requests (`rate_limited`): the plan's rate for the tenant or
/// the credential, the signup rate per address, or failed logins. Retry
/// after `Retry-After` seconds.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("Retry-After" = u64, description = "Seconds to wait before retrying."))
)]
#[allow(dead_code)]
pub(crate) struct TooManyRequests(ProblemDoc);

/// An internal error (`internal`); it has been logged.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub(crate) struct InternalError(ProblemDoc);

/// A backend is unavailable (`unavailable`); retry after `Retry-After`
/// seconds, with the same `Idempotency-Key`.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("Retry-After" = u64, description = "Seconds to wait before retrying."))
)]
#[allow(dead_code)]
pub(crate) struct Unavailable(ProblemDoc);

#[cfg(test)]
mod constraints;

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;
    use switchboard_http::{FieldError, PageRequest, Problem};

    use super::*;

    async fn json_of(problem: Problem) -> serde_json::Value {
        let response = problem.into_response();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    fn mirror(problem: &Problem) -> serde_json::Value {
        serde_json::to_value(ProblemDoc {
            type_uri: problem.type_uri(),
            title: problem
                .status()
                .canonical_reason()
                .unwrap_or_default()
                .to_owned(),
            status: problem.status().as_u16(),
            detail: problem.detail().to_owned(),
            errors: problem
                .errors()
                .iter()
                .map(|error| FieldErrorDoc {
                    field: error.field.clone(),
                    message: error.message.clone(),
                })
                .collect(),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn the_problem_schema_has_the_shape_of_a_problem() {
        for problem in [
            Problem::not_found("user not found"),
            Problem::validation(vec![FieldError::new("email", "is not an email address")]),
        ] {
            assert_eq!(json_of(problem.clone()).await, mirror(&problem));
        }
    }

    #[test]
    fn the_page_parameters_have_the_bounds_of_a_page_request() {
        let parameters = PageParams::into_params(|| None);
        let limit = serde_json::to_value(&parameters[0]).unwrap();
        assert_eq!(limit["name"], "limit");
        assert_eq!(limit["schema"]["minimum"], 1);
        assert_eq!(limit["schema"]["maximum"], PageRequest::MAX_LIMIT);
        assert_eq!(limit["schema"]["default"], PageRequest::DEFAULT_LIMIT);
        assert_eq!(
            serde_json::to_value(&parameters[1]).unwrap()["name"],
            "cursor"
        );
    }
}
