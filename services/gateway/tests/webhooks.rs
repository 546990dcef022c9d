//! `/v1/webhooks` end to end over real HTTP, on both backends (PostgreSQL
//! as the non-owner role with Redis, SQLite with the in-process cache),
//! with a local HTTP receiver. Events are fed to the webhooks intake as
//! the `webhooks` consumer does; the dispatcher is driven by the test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard_events::Event;
use switchboard_events::proto::{self, envelope::Payload};
use switchboard_tenancy::TenantId;
use switchboard_test_utils::eventually;
use switchboard_webhooks::WebhooksOptions;

use common::{Site as Api, SiteOptions};

mod common;

const PASSWORD: &str = "correct horse battery staple";

impl Api {
    async fn start(postgres: bool) -> Self {
        Self::start_with(Self::options(SiteOptions::new(postgres))).await
    }

    /// The gateway reaching webhooks over gRPC (SQLite).
    async fn start_remote() -> Self {
        Self::start_with(Self::options(SiteOptions::remote())).await
    }

    fn options(mut options: SiteOptions) -> SiteOptions {
        options.gateway.body_limit = 64 * 1024;
        options.webhooks = WebhooksOptions {
            // The receiver is on 127.0.0.1, over plain HTTP.
            allow_private_targets: true,
            allow_http: true,
            retry_initial_delay: Duration::from_millis(5),
            retry_max_delay: Duration::from_millis(20),
            ..WebhooksOptions::default()
        };
        options
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    async fn patch(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Signs a company up and verifies it; answers its id and the owner's
    /// token.
    async fn tenant(&self, company: &str) -> (TenantId, String) {
        let email = format!("owner@{}.example.com", company.to_lowercase());
        let (status, body) = self
            .call(
                Method::POST,
                "/v1/signup",
                None,
                Some(json!({ "company": company, "email": email, "password": PASSWORD })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let verification = body["email_verification_token"].as_str().unwrap();
        let (status, _) = self
            .call(
                Method::POST,
                "/v1/auth/verify-email",
                None,
                Some(json!({ "token": verification })),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        self.on_plan(body["tenant"]["slug"].as_str().unwrap(), "pro")
            .await;
        (
            body["tenant"]["id"].as_str().unwrap().parse().unwrap(),
            body["tokens"]["access_token"].as_str().unwrap().to_owned(),
        )
    }

    /// Feeds `event` to the webhooks intake in a transaction confined to
    /// its tenant, as the consumer does.
    async fn feed(&self, event: &Event) {
        let transaction = self.database.begin().await.unwrap();
        if self.production {
            transaction
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT set_config('app.tenant_id', $1, true)",
                    [event.tenant.to_string().into()],
                ))
                .await
                .unwrap();
        }
        self.webhooks
            .intake()
            .handle(&transaction, event)
            .await
            .unwrap();
        transaction.commit().await.unwrap();
    }

    async fn dispatch_until_received(&self, receiver: &Receiver, count: usize) {
        assert!(
            eventually(Duration::from_secs(20), || async {
                self.webhooks.dispatch_due().await.unwrap();
                receiver.received().len() >= count
            })
            .await,
            "the receiver never got {count} requests"
        );
    }
}

/// The requests a receiver got: headers and body.
type Log = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A local HTTP server that records requests and answers 200.
#[derive(Clone, Default)]
struct Receiver {
    url: String,
    received: Log,
}

impl Receiver {
    async fn start() -> Self {
        let received: Log = Arc::default();
        let app = axum::Router::new()
            .fallback(
                |State(received): State<Log>, headers: HeaderMap, body: String| async move {
                    received.lock().unwrap().push((headers, body));
                    StatusCode::OK
                },
            )
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url: format!("http://{addr}/hooks"),
            received,
        }
    }

    fn received(&self) -> Vec<(HeaderMap, String)> {
        self.received.lock().unwrap().clone()
    }
}

fn user_created(tenant: TenantId) -> Event {
    Event::new(
        tenant,
        "identity",
        Payload::UserCreated(proto::UserCreated {
            user: Some(proto::User {
                user_id: uuid::Uuid::now_v7().to_string(),
                email: "new@example.com".into(),
                display_name: "New Agent".into(),
                roles: vec!["agent".into()],
                status: "active".into(),
                all_clients: true,
                client_ids: Vec::new(),
            }),
        }),
    )
}

/// Checks the Standard Webhooks signature with `secret`.
fn assert_signed(headers: &HeaderMap, body: &str, secret: &str) {
    let header = |name: &str| headers[name].to_str().unwrap().to_owned();
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(
        format!(
            "{}.{}.{body}",
            header("webhook-id"),
            header("webhook-timestamp")
        )
        .as_bytes(),
    );
    assert_eq!(
        header("webhook-signature"),
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    );
}

async fn webhooks_are_registered_delivered_listed_and_resent(api: Api) {
    let (tenant, token) = api.tenant("Acme").await;
    let receiver = Receiver::start().await;

    let (status, created) = api
        .post(
            "/v1/webhooks",
            &token,
            json!({ "url": receiver.url, "description": "CRM", "event_types": ["user.created"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(created["status"], "active");
    assert_eq!(created["event_types"], json!(["user.created"]));
    assert!(created["key_id"].as_str().unwrap().starts_with("whk_"));
    let id = created["id"].as_str().unwrap().to_owned();

    // The secret is never shown again.
    let (status, page) = api.get("/v1/webhooks", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert!(page["data"][0].get("secret").is_none());
    assert_eq!(page["next_cursor"], Value::Null);
    let (status, one) = api.get(&format!("/v1/webhooks/{id}"), &token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(one.get("secret").is_none());
    assert_eq!(one["url"], receiver.url);

    // An event of the tenant is delivered, signed with that secret.
    let event = user_created(tenant);
    api.feed(&event).await;
    api.dispatch_until_received(&receiver, 1).await;
    let (headers, body) = &receiver.received()[0];
    assert_signed(headers, body, &secret);
    assert_eq!(headers["webhook-id"], event.id.to_string().as_str());
    assert_eq!(
        headers["webhook-key-id"],
        created["key_id"].as_str().unwrap()
    );
    assert_eq!(
        serde_json::from_str::<Value>(body).unwrap(),
        event.to_json()
    );

    // Listed with its attempt.
    let (status, deliveries) = api
        .get(&format!("/v1/webhooks/{id}/deliveries"), &token)
        .await;
    assert_eq!(status, StatusCode::OK, "{deliveries}");
    let delivery = &deliveries["data"][0];
    assert_eq!(delivery["status"], "succeeded");
    assert_eq!(delivery["event_type"], "user.created");
    assert_eq!(delivery["event_id"], event.id.to_string());
    assert_eq!(delivery["webhook_id"], id);
    assert_eq!(delivery["payload"], event.to_json());
    assert_eq!(delivery["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(delivery["attempts"][0]["status_code"], 200);
    let delivery_id = delivery["id"].as_str().unwrap().to_owned();

    // Resent: pending again, then delivered again with the same id.
    let (status, resent) = api
        .post(
            &format!("/v1/webhooks/{id}/deliveries/{delivery_id}/resend"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{resent}");
    assert_eq!(resent["status"], "pending");
    api.dispatch_until_received(&receiver, 2).await;
    let (second_headers, second_body) = &receiver.received()[1];
    assert_eq!(second_headers["webhook-id"], headers["webhook-id"]);
    assert_eq!(second_body, body);
    let (_, deliveries) = api
        .get(&format!("/v1/webhooks/{id}/deliveries"), &token)
        .await;
    assert_eq!(deliveries["data"][0]["status"], "succeeded");
    assert_eq!(
        deliveries["data"][0]["attempts"].as_array().unwrap().len(),
        2
    );

    // Disabled: no resend; enabled again.
    let (status, disabled) = api
        .patch(
            &format!("/v1/webhooks/{id}"),
            &token,
            json!({ "status": "disabled" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{disabled}");
    assert_eq!(disabled["status"], "disabled");
    let (status, problem) = api
        .post(
            &format!("/v1/webhooks/{id}/deliveries/{delivery_id}/resend"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        problem["type"],
        "https://switchboard.dev/problems/endpoint_disabled"
    );
    let (status, enabled) = api
        .patch(
            &format!("/v1/webhooks/{id}"),
            &token,
            json!({ "status": "active", "event_types": ["*"], "description": "all" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    assert_eq!(enabled["status"], "active");
    assert_eq!(enabled["disabled_reason"], Value::Null);
    assert_eq!(enabled["event_types"], json!(["*"]));

    // Rotated: a new secret, once.
    let (status, rotated) = api
        .post(
            &format!("/v1/webhooks/{id}/rotate-secret"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_ne!(rotated["secret"], secret);
    assert_ne!(rotated["key_id"], created["key_id"]);

    // Deleted.
    let (status, _) = api.delete(&format!("/v1/webhooks/{id}"), &token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api.get(&format!("/v1/webhooks/{id}"), &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn another_tenants_webhooks_are_not_found(api: Api) {
    let (acme, acme_token) = api.tenant("Acme").await;
    let (_, globex_token) = api.tenant("Globex").await;
    let receiver = Receiver::start().await;
    let (status, created) = api
        .post(
            "/v1/webhooks",
            &acme_token,
            json!({ "url": receiver.url, "event_types": ["*"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_str().unwrap().to_owned();
    api.feed(&user_created(acme)).await;
    let (_, deliveries) = api
        .get(&format!("/v1/webhooks/{id}/deliveries"), &acme_token)
        .await;
    let delivery_id = deliveries["data"][0]["id"].as_str().unwrap().to_owned();

    for (method, path, body) in [
        (Method::GET, format!("/v1/webhooks/{id}"), None),
        (
            Method::PATCH,
            format!("/v1/webhooks/{id}"),
            Some(json!({ "url": "http://127.0.0.1:9/stolen" })),
        ),
        (Method::DELETE, format!("/v1/webhooks/{id}"), None),
        (Method::GET, format!("/v1/webhooks/{id}/deliveries"), None),
        (
            Method::POST,
            format!("/v1/webhooks/{id}/deliveries/{delivery_id}/resend"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/v1/webhooks/{id}/rotate-secret"),
            Some(json!({})),
        ),
    ] {
        let (status, problem) = api
            .call(method.clone(), &path, Some(&globex_token), body)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {problem}");
        assert_eq!(
            problem["type"],
            "https://switchboard.dev/problems/not_found"
        );
    }
    let (_, page) = api.get("/v1/webhooks", &globex_token).await;
    assert_eq!(page["data"], json!([]));
    // Untouched for its tenant.
    let (status, still) = api.get(&format!("/v1/webhooks/{id}"), &acme_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(still["url"], receiver.url);
}

async fn bad_webhook_input_is_a_problem_naming_the_field(api: Api) {
    let (_, token) = api.tenant("Acme").await;
    for (body, field) in [
        (
            json!({ "url": "ftp://example.com/x", "event_types": ["*"] }),
            "url",
        ),
        (json!({ "url": "not a url", "event_types": ["*"] }), "url"),
        (
            json!({ "url": "http://127.0.0.1:9/", "event_types": ["user.exploded"] }),
            "event_types",
        ),
        (
            json!({ "url": "http://127.0.0.1:9/", "event_types": [] }),
            "event_types",
        ),
        (
            json!({ "url": "http://127.0.0.1:9/", "event_types": ["*"], "secret": "mine" }),
            "secret",
        ),
    ] {
        let (status, problem) = api.post("/v1/webhooks", &token, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
        assert_eq!(
            problem["type"], "https://switchboard.dev/problems/validation_failed",
            "{body}: {problem}"
        );
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|error| error["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{body}: {problem}");
    }
    let (status, problem) = api
        .patch(
            &format!("/v1/webhooks/{}", uuid::Uuid::now_v7()),
            &token,
            json!({ "status": "paused" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "status");
    let (_, page) = api.get("/v1/webhooks", &token).await;
    assert_eq!(page["data"], json!([]));

    // A key without the tenant-management permission may not see them.
    let (status, key) = api
        .post(
            "/v1/api-keys",
            &token,
            json!({ "name": "reader", "scopes": ["users:read"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let (status, problem) = api
        .get("/v1/webhooks", key["secret"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    tokio::time::timeout(Duration::from_secs(120), super::$name(Api::start(true).await)).await.expect("timed out");
                }
            )*
        }
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    tokio::time::timeout(Duration::from_secs(120), super::$name(Api::start(false).await)).await.expect("timed out");
                }
            )*
        }
        /// The same REST API with webhooks reached over gRPC.
        mod grpc {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    tokio::time::timeout(Duration::from_secs(120), super::$name(Api::start_remote().await)).await.expect("timed out");
                }
            )*
        }
    };
}

on_both_backends!(
    webhooks_are_registered_delivered_listed_and_resent,
    another_tenants_webhooks_are_not_found,
    bad_webhook_input_is_a_problem_naming_the_field,
);
