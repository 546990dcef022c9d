//! The OpenAPI document (`GET /v1/openapi.json`) against the router that
//! serves it, over real HTTP (SQLite and the in-process cache): every
//! route is documented, every documented operation is served, security
//! and errors are declared as the middleware behaves, every answer is
//! the one its operation declares (status, media type, schema), and the
//! reference page (`GET /docs`) is up.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::{Site as Api, SiteOptions};

mod common;

/// The routes anyone may call, as routed in `routes.rs`.
const PUBLIC: [(&str, &str); 6] = [
    ("POST", "/v1/signup"),
    ("POST", "/v1/auth/login"),
    ("POST", "/v1/auth/refresh"),
    ("POST", "/v1/auth/logout"),
    ("POST", "/v1/auth/verify-email"),
    ("POST", "/v1/auth/accept-invitation"),
];

/// The routes behind authentication, as routed in `routes.rs`.
const AUTHENTICATED: &[(&str, &str)] = &[
    ("GET", "/v1/tenant"),
    ("PATCH", "/v1/tenant"),
    ("GET", "/v1/clients"),
    ("POST", "/v1/clients"),
    ("GET", "/v1/clients/{id}"),
    ("DELETE", "/v1/clients/{id}"),
    ("GET", "/v1/users"),
    ("POST", "/v1/users"),
    ("POST", "/v1/users/invite"),
    ("GET", "/v1/users/{id}"),
    ("PATCH", "/v1/users/{id}"),
    ("DELETE", "/v1/users/{id}"),
    ("GET", "/v1/users/{id}/sip-account"),
    ("POST", "/v1/users/{id}/sip-account"),
    ("DELETE", "/v1/users/{id}/sip-account"),
    ("GET", "/v1/api-keys"),
    ("POST", "/v1/api-keys"),
    ("DELETE", "/v1/api-keys/{id}"),
    ("GET", "/v1/audit-events"),
    ("DELETE", "/v1/auth/session"),
    ("GET", "/v1/webhooks"),
    ("POST", "/v1/webhooks"),
    ("GET", "/v1/webhooks/{id}"),
    ("PATCH", "/v1/webhooks/{id}"),
    ("DELETE", "/v1/webhooks/{id}"),
    ("POST", "/v1/webhooks/{id}/rotate-secret"),
    ("GET", "/v1/webhooks/{id}/deliveries"),
    ("POST", "/v1/webhooks/{id}/deliveries/{delivery_id}/resend"),
    ("GET", "/v1/trunks"),
    ("POST", "/v1/trunks"),
    ("GET", "/v1/trunks/{id}"),
    ("PUT", "/v1/trunks/{id}"),
    ("DELETE", "/v1/trunks/{id}"),
    ("GET", "/v1/agents/me"),
    ("PUT", "/v1/agents/me/presence"),
    ("POST", "/v1/agents/me/offers/{contact_id}/accept"),
    ("POST", "/v1/agents/me/offers/{contact_id}/decline"),
    ("POST", "/v1/agents/me/wrap-up/extend"),
    ("POST", "/v1/agents/me/wrap-up/end"),
    ("GET", "/v1/agents/me/stream"),
    ("GET", "/v1/queues/stats"),
    ("GET", "/v1/queues/stats/stream"),
    ("GET", "/v1/numbers"),
    ("POST", "/v1/numbers"),
    ("GET", "/v1/numbers/{id}"),
    ("PUT", "/v1/numbers/{id}"),
    ("DELETE", "/v1/numbers/{id}"),
    ("GET", "/v1/schedules"),
    ("POST", "/v1/schedules"),
    ("GET", "/v1/schedules/{id}"),
    ("PUT", "/v1/schedules/{id}"),
    ("DELETE", "/v1/schedules/{id}"),
    ("GET", "/v1/inbound-rules"),
    ("POST", "/v1/inbound-rules"),
    ("GET", "/v1/inbound-rules/{id}"),
    ("PUT", "/v1/inbound-rules/{id}"),
    ("DELETE", "/v1/inbound-rules/{id}"),
    ("POST", "/v1/inbound-rules/{id}/forced-mode"),
    ("GET", "/v1/flows"),
    ("POST", "/v1/flows"),
    ("GET", "/v1/flows/{id}"),
    ("PUT", "/v1/flows/{id}"),
    ("DELETE", "/v1/flows/{id}"),
    ("GET", "/v1/flows/{id}/versions"),
    ("POST", "/v1/flows/{id}/versions"),
    ("GET", "/v1/flows/{id}/versions/{version}"),
    ("GET", "/v1/queues"),
    ("POST", "/v1/queues"),
    ("GET", "/v1/queues/{id}"),
    ("PUT", "/v1/queues/{id}"),
    ("DELETE", "/v1/queues/{id}"),
    ("GET", "/v1/skills"),
    ("POST", "/v1/skills"),
    ("GET", "/v1/skills/{id}"),
    ("PUT", "/v1/skills/{id}"),
    ("DELETE", "/v1/skills/{id}"),
    ("GET", "/v1/agent-profiles"),
    ("GET", "/v1/agent-profiles/{id}"),
    ("PUT", "/v1/agent-profiles/{id}"),
    ("DELETE", "/v1/agent-profiles/{id}"),
    ("GET", "/v1/agent-groups"),
    ("POST", "/v1/agent-groups"),
    ("GET", "/v1/agent-groups/{id}"),
    ("PUT", "/v1/agent-groups/{id}"),
    ("DELETE", "/v1/agent-groups/{id}"),
    ("GET", "/v1/ring-groups"),
    ("POST", "/v1/ring-groups"),
    ("GET", "/v1/ring-groups/{id}"),
    ("PUT", "/v1/ring-groups/{id}"),
    ("DELETE", "/v1/ring-groups/{id}"),
    ("GET", "/v1/voicemail-boxes"),
    ("POST", "/v1/voicemail-boxes"),
    ("GET", "/v1/voicemail-boxes/{id}"),
    ("PUT", "/v1/voicemail-boxes/{id}"),
    ("DELETE", "/v1/voicemail-boxes/{id}"),
    ("GET", "/v1/outbound-rules"),
    ("POST", "/v1/outbound-rules"),
    ("GET", "/v1/outbound-rules/{id}"),
    ("PUT", "/v1/outbound-rules/{id}"),
    ("DELETE", "/v1/outbound-rules/{id}"),
    ("GET", "/v1/reason-codes"),
    ("POST", "/v1/reason-codes"),
    ("GET", "/v1/reason-codes/{id}"),
    ("PUT", "/v1/reason-codes/{id}"),
    ("DELETE", "/v1/reason-codes/{id}"),
];

/// The methods probed on every documented path.
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

const TAGS: &[&str] = &[
    "auth", "tenant", "clients", "users", "api-keys", "audit", "webhooks", "agents", "queues",
    "routing", "trunks",
];

impl Api {
    async fn start() -> Self {
        let mut options = SiteOptions::new(false);
        options.gateway.body_limit = 64 * 1024;
        Self::start_with(options).await
    }

    async fn document(&self) -> Value {
        let response = self
            .client
            .get(format!("{}/v1/openapi.json", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        serde_json::from_str(&response.text().await.unwrap()).unwrap()
    }

    /// Sends `method path` (`{id}` filled with a fresh id) with a body that
    /// is not JSON but declared so; answers the status, whether the answer
    /// is a problem document, and the body.
    /// One request with a malformed body; waits out the plan's rate limit
    /// (the probes outnumber its burst).
    async fn probe(&self, method: &str, path: &str, token: &str) -> (StatusCode, bool, Value) {
        loop {
            let answer = self.probe_once(method, path, token).await;
            if answer.0 != StatusCode::TOO_MANY_REQUESTS {
                return answer;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }

    async fn probe_once(&self, method: &str, path: &str, token: &str) -> (StatusCode, bool, Value) {
        let path = path.replace("{id}", &uuid::Uuid::new_v4().to_string());
        let response = self
            .client
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", self.base),
            )
            .bearer_auth(token)
            .header(CONTENT_TYPE, "application/json")
            .body("{")
            .send()
            .await
            .unwrap();
        let status = response.status();
        let problem = response
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|value| value == "application/problem+json");
        let body = serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null);
        (status, problem, body)
    }

    /// Signs a company up on a plan with room for many requests; answers
    /// the owner's access token.
    async fn owner_token(&self) -> String {
        let response = self
            .client
            .post(format!("{}/v1/signup", self.base))
            .json(&json!({
                "company": "Probe Co",
                "email": "owner@probe.example.com",
                "password": "correct horse battery staple",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        self.on_plan(body["tenant"]["slug"].as_str().unwrap(), "pro")
            .await;
        body["tokens"]["access_token"].as_str().unwrap().to_owned()
    }
}

/// Every (method, path) of the document's operations, with the operation.
fn operations(document: &Value) -> Vec<(String, String, &Value)> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if [
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ]
            .contains(&method.as_str())
            {
                found.push((method.to_uppercase(), path.clone(), operation));
            }
        }
    }
    found
}

fn routed() -> BTreeSet<(String, String)> {
    PUBLIC
        .iter()
        .chain(AUTHENTICATED.iter())
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect()
}

/// Follows a local `$ref` (`#/components/…`), or answers `value` itself.
fn resolve<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(reference) => document
            .pointer(reference.strip_prefix('#').unwrap())
            .unwrap_or_else(|| panic!("dangling reference {reference}")),
        None => value,
    }
}

/// The status codes an operation documents.
fn statuses(operation: &Value) -> BTreeSet<u16> {
    operation["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(|status| status.parse().unwrap())
        .collect()
}

fn is_bearer(operation: &Value) -> bool {
    operation["security"] == json!([{ "bearer": [] }])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_openapi_3_1_json_served_without_credentials() {
    let api = Api::start().await;
    let document = api.document().await;
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        document["openapi"]
    );
    assert_eq!(document["info"]["title"], "Switchboard API");
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    let description = document["info"]["description"].as_str().unwrap();
    for topic in [
        "Authorization: Bearer",
        "RFC 9457",
        "next_cursor",
        "RateLimit-Remaining",
        "Idempotency-Key",
    ] {
        assert!(
            description.contains(topic),
            "the description covers {topic}"
        );
    }
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"],
        json!({
            "type": "http",
            "scheme": "bearer",
            "description": document["components"]["securitySchemes"]["bearer"]["description"],
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_is_html() {
    let api = Api::start().await;
    let response = api
        .client
        .get(format!("{}/docs", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{:?}",
        response.headers()[CONTENT_TYPE]
    );
    let page = response.text().await.unwrap();
    assert!(
        page.contains("Switchboard API"),
        "the page embeds the document"
    );
}

/// The document is built from the route table (`routes!` registers a
/// handler and its documentation in one step); this checks it against
/// the table as written and against what the running router answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_exactly_the_routes_the_router_serves() {
    let api = Api::start().await;
    let document = api.document().await;
    let documented: BTreeSet<(String, String)> = operations(&document)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    // `/v1/openapi.json` itself is the one route under /v1 that is not
    // part of the API it documents.
    assert_eq!(documented, routed(), "documented vs routed (method, path)");

    // With a credential that is no credential: the authenticated routes
    // answer 401, the public ones take none and refuse the body (400): a
    // routing 404 or a 405 would prove a documented route is not served.
    for (method, path, operation) in operations(&document) {
        let (status, problem, body) = api.probe(&method, &path, "not-a-credential").await;
        assert!(problem, "{method} {path}: {status} is not a problem");
        let expected = if is_bearer(operation) {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        assert_eq!(status, expected, "{method} {path}: {body}");
        assert!(
            statuses(operation).contains(&status.as_u16()),
            "{method} {path} answered {status}, which it does not document"
        );
    }

    // With a real credential, every method on every documented path: the
    // documented ones reach their handler (which refuses the body, or
    // answers), the others are 405. Ending the session goes last.
    let token = api.owner_token().await;
    let paths: BTreeSet<String> = documented.iter().map(|(_, path)| path.clone()).collect();
    let mut probes: Vec<(&str, &str)> = paths
        .iter()
        .flat_map(|path| METHODS.iter().map(move |method| (*method, path.as_str())))
        .collect();
    probes.sort_by_key(|(method, path)| (*method, *path) == ("DELETE", "/v1/auth/session"));
    for (method, path) in probes {
        let (status, problem, body) = api.probe(method, path, &token).await;
        let routing_miss = status == StatusCode::METHOD_NOT_ALLOWED
            || (status == StatusCode::NOT_FOUND && !problem);
        if documented.contains(&(method.to_owned(), path.to_owned())) {
            assert!(
                !routing_miss,
                "{method} {path} is documented but not served: {status}"
            );
            assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
            let operation = &document["paths"][path][method.to_lowercase()];
            assert!(
                statuses(operation).contains(&status.as_u16()),
                "{method} {path} answered {status}, which it does not document: {body}"
            );
        } else {
            assert_eq!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is served but not documented: {body}"
            );
        }
    }
    // Every answer above had the status, media type and body schema the
    // document declares for its operation.
    assert!(
        api.conformance.checked() > 2 * documented.len(),
        "the site checked the answers: {}",
        api.conformance.checked()
    );
    let violations = api.conformance.violations();
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

/// The site checks every answer against the document (`common::conformance`);
/// this proves the check refuses what the document does not declare.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_the_document_does_not_declare_are_refused() {
    let api = Api::start().await;
    let skill = format!("/v1/skills/{}", uuid::Uuid::new_v4());
    let json = Some("application/json");
    let check = |path: &str, status: u16, content_type: Option<&str>, body: Value| {
        api.conformance.check(
            "GET",
            path,
            status,
            content_type,
            body.to_string().as_bytes(),
        )
    };
    let found = json!({
        "id": uuid::Uuid::new_v4(),
        "name": "billing",
        "description": "",
        "created_at": "2026-12-07T04:00:00Z",
        "updated_at": "2026-12-07T04:00:00Z",
    });
    check(&skill, 200, json, found.clone()).unwrap();
    let mut extra = found.clone();
    extra["color"] = json!("red");
    assert!(
        check(&skill, 200, json, extra).is_err(),
        "an undeclared field"
    );
    let mut untimed = found.clone();
    untimed.as_object_mut().unwrap().remove("updated_at");
    assert!(
        check(&skill, 200, json, untimed).is_err(),
        "a missing field"
    );
    let mut bad_id = found.clone();
    bad_id["id"] = json!("42");
    assert!(check(&skill, 200, json, bad_id).is_err(), "a format");
    assert!(check(&skill, 418, json, found.clone()).is_err(), "a status");
    let problem = json!({
        "type": "https://switchboard.dev/problems/not_found",
        "title": "Not Found",
        "status": 404,
        "detail": "skill not found",
    });
    check(
        &skill,
        404,
        Some("application/problem+json"),
        problem.clone(),
    )
    .unwrap();
    assert!(check(&skill, 404, json, problem).is_err(), "a media type");
    let page = |cursor: Value| json!({ "data": [found.clone()], "next_cursor": cursor });
    check("/v1/skills", 200, json, page(Value::Null)).unwrap();
    check("/v1/skills", 200, json, page(json!("AAECAw"))).unwrap();
    assert!(
        check("/v1/skills", 200, json, page(json!("%%"))).is_err(),
        "a cursor"
    );
    assert!(
        api.conformance
            .check("DELETE", &skill, 204, None, b"{}")
            .is_err(),
        "a body where none is declared"
    );
    assert!(api.conformance.violations().is_empty());
}

/// The probes above find an undocumented method on a documented path; a
/// new path can only be found in the source: routes reach `/v1` through
/// `routes!(…)` in `routes.rs`, which documents them, and through no axum
/// routing call (`openapi.rs` serves the document and the docs page).
#[test]
fn no_route_is_added_around_the_documented_table() {
    fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, found);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                found.push(path);
            }
        }
    }
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.iter().any(|file| file.ends_with("src/routes.rs")));
    for file in files
        .iter()
        .filter(|file| !file.ends_with("src/openapi.rs"))
    {
        // Our own crate's paths (`switchboard_routing::…`) are not axum's.
        let text = std::fs::read_to_string(file)
            .unwrap()
            .replace("switchboard_routing::", "");
        let code = text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim_start().starts_with("//"));
        for (number, line) in code {
            for call in [
                ".route(",
                ".route_service(",
                ".nest(",
                ".nest_service(",
                ".fallback(",
                ".fallback_service(",
                "routing::",
            ] {
                assert!(
                    !line.contains(call),
                    "{}:{}: `{call}` adds a route the OpenAPI document does not show; \
                     add it with `routes!(handler)` in routes.rs instead",
                    file.display(),
                    number + 1
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_is_tagged_named_secured_and_documents_its_errors() {
    let api = Api::start().await;
    let document = api.document().await;
    let public: BTreeSet<(String, String)> = PUBLIC
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    let mut operation_ids = BTreeSet::new();
    for (method, path, operation) in operations(&document) {
        let at = format!("{method} {path}");
        let tags = operation["tags"]
            .as_array()
            .unwrap_or_else(|| panic!("{at}: no tags"));
        assert!(!tags.is_empty(), "{at}: no tags");
        for tag in tags {
            assert!(TAGS.contains(&tag.as_str().unwrap()), "{at}: tag {tag}");
        }
        let id = operation["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{at}: no operationId"));
        assert!(
            operation_ids.insert(id.to_owned()),
            "{at}: operationId {id} twice"
        );
        assert!(operation["summary"].is_string(), "{at}: no summary");

        let statuses = statuses(operation);
        assert!(
            statuses.iter().any(|status| (400..500).contains(status)),
            "{at}: no 4xx response"
        );
        // A WebSocket route succeeds with 101 Switching Protocols.
        assert!(
            statuses
                .iter()
                .any(|status| (200..300).contains(status) || *status == 101),
            "{at}: no 2xx (or 101)"
        );
        for (status, response) in operation["responses"].as_object().unwrap() {
            let response = resolve(&document, response);
            assert!(
                response["description"].is_string(),
                "{at} {status}: no description"
            );
            if !status.starts_with('2') && status != "101" {
                let schema = &response["content"]["application/problem+json"]["schema"];
                assert_eq!(
                    schema["$ref"], "#/components/schemas/Problem",
                    "{at} {status} is not a problem"
                );
            }
        }

        if public.contains(&(method.clone(), path.clone())) {
            assert_eq!(
                operation["security"],
                json!([{}]),
                "{at} needs no credential"
            );
        } else {
            assert!(is_bearer(operation), "{at} needs the bearer credential");
            assert!(statuses.contains(&401) && statuses.contains(&429), "{at}");
        }
        let idempotency_key = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|parameter| parameter["in"] == "header" && parameter["name"] == "Idempotency-Key");
        // Public routes (signup, `/v1/auth/*`) take no Idempotency-Key.
        let idempotent = method == "POST" && !public.contains(&(method.clone(), path.clone()));
        assert_eq!(idempotency_key, idempotent, "{at}: Idempotency-Key");
        if operation.get("requestBody").is_some() {
            assert!(
                statuses.contains(&413) && statuses.contains(&415),
                "{at} takes a body: 413 and 415"
            );
        }
        if path.contains("{id}") {
            assert!(statuses.contains(&404), "{at}: 404");
        }
    }
    assert_eq!(operation_ids.len(), routed().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reference_in_the_document_resolves() {
    fn walk(document: &Value, value: &Value, references: &mut usize) {
        match value {
            Value::Object(map) => {
                if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                    let target = reference.strip_prefix('#').unwrap_or_else(|| {
                        panic!("{reference} is not a reference inside the document")
                    });
                    assert!(document.pointer(target).is_some(), "dangling {reference}");
                    *references += 1;
                }
                map.values()
                    .for_each(|value| walk(document, value, references));
            }
            Value::Array(items) => items
                .iter()
                .for_each(|value| walk(document, value, references)),
            _ => {}
        }
    }
    let api = Api::start().await;
    let document = api.document().await;
    let mut references = 0;
    walk(&document, &document, &mut references);
    assert!(references > 0);
    // The answers built by hand before now have schemas of their own.
    for (path, method, field) in [
        ("/v1/signup", "post", "email_verification_token"),
        ("/v1/users", "post", "invitation"),
        ("/v1/users/invite", "post", "invitation"),
        ("/v1/api-keys", "post", "secret"),
    ] {
        let created = &document["paths"][path][method]["responses"]["201"];
        let schema = resolve(&document, &created["content"]["application/json"]["schema"]);
        assert!(
            serde_json::to_string(schema)
                .unwrap()
                .contains(&format!("\"{field}\"")),
            "{method} {path}: 201 documents `{field}`: {schema}"
        );
    }
}
