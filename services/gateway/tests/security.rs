//! The security review's fixes, end to end over real HTTP on both backends
//! (PostgreSQL as the non-owner role with Redis, SQLite with the
//! in-process cache): what the idempotency cache keeps, the login
//! throttle under concurrency and behind proxies, where a query-string
//! token is taken, the API reference's assets, and what a client-scoped
//! admin may change.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha384};
use switchboard_auth::ThrottlePolicy;
use switchboard_gateway::{DOCS_PATH, DOCS_SCRIPT_PATH};

use common::{Mode, Site, SiteOptions};

mod common;

const PASSWORD: &str = "correct horse battery staple";
const WRONG: &str = "not the password at all";

/// An answer: status, headers, JSON body (`Null` if none).
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Site {
    async fn start(mode: impl Into<Mode>) -> Self {
        Self::start_with(SiteOptions::new(mode)).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    /// Signs a company up (on the trial plan) and verifies its email:
    /// (slug, owner's access token).
    async fn tenant(&self, company: &str) -> (String, String) {
        let email = format!(
            "owner@{}.example.com",
            company.to_lowercase().replace(' ', "-")
        );
        let signup = self
            .send(
                Method::POST,
                "/v1/signup",
                None,
                &[],
                Some(json!({ "company": company, "email": email, "password": PASSWORD })),
            )
            .await;
        assert_eq!(signup.status, StatusCode::CREATED, "{}", signup.body);
        let token = signup.body["email_verification_token"].as_str().unwrap();
        let verified = self
            .send(
                Method::POST,
                "/v1/auth/verify-email",
                None,
                &[],
                Some(json!({ "token": token })),
            )
            .await;
        assert_eq!(verified.status, StatusCode::NO_CONTENT);
        (
            signup.body["tenant"]["slug"].as_str().unwrap().to_owned(),
            signup.body["tokens"]["access_token"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    }

    /// A user with a password; answers the id.
    async fn user(&self, owner: &str, email: &str, roles: Value, clients: Value) -> String {
        let created = self
            .send(
                Method::POST,
                "/v1/users",
                Some(owner),
                &[],
                Some(json!({ "email": email, "roles": roles, "clients": clients, "password": PASSWORD })),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        created.body["id"].as_str().unwrap().to_owned()
    }

    async fn login(
        &self,
        slug: &str,
        email: &str,
        password: &str,
        headers: &[(&str, &str)],
    ) -> Answer {
        self.send(
            Method::POST,
            "/v1/auth/login",
            None,
            headers,
            Some(json!({ "tenant": slug, "email": email, "password": password })),
        )
        .await
    }
}

fn owner_email(slug: &str) -> String {
    format!("owner@{slug}.example.com")
}

fn problem_type(answer: &Answer) -> &str {
    answer.body["type"]
        .as_str()
        .and_then(|kind| kind.strip_prefix("https://switchboard.dev/problems/"))
        .unwrap_or_default()
}

// ---- what the idempotency cache keeps ----

async fn two_people_logging_in_with_one_idempotency_key_each_get_their_own_tokens(site: Site) {
    let (slug, owner) = site.tenant("Idem Login").await;
    site.user(
        &owner,
        "ann@idem.example.com",
        json!(["agent"]),
        Value::Null,
    )
    .await;
    let key = [("Idempotency-Key", "login-1")];
    let first = site.login(&slug, &owner_email(&slug), PASSWORD, &key).await;
    let second = site
        .login(&slug, "ann@idem.example.com", PASSWORD, &key)
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert!(second.headers.get("idempotent-replayed").is_none());
    assert_ne!(first.body["access_token"], second.body["access_token"]);
}

async fn a_replayed_refresh_after_reuse_detection_gets_no_tokens(site: Site) {
    let (slug, _) = site.tenant("Idem Refresh").await;
    let login = site.login(&slug, &owner_email(&slug), PASSWORD, &[]).await;
    let refresh_token = login.body["refresh_token"].as_str().unwrap();
    let site = &site;
    let refresh = |key: &'static str| async move {
        site.send(
            Method::POST,
            "/v1/auth/refresh",
            None,
            &[("Idempotency-Key", key)],
            Some(json!({ "refresh_token": refresh_token })),
        )
        .await
    };
    let first = refresh("refresh-1").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    // The same request again: reuse of a spent token, never a replay.
    let again = refresh("refresh-1").await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.body);
    assert!(again.body.get("access_token").is_none());
    // Reuse detection revoked the session: the rotated token is dead too.
    let rotated = site
        .send(
            Method::POST,
            "/v1/auth/refresh",
            None,
            &[],
            Some(json!({ "refresh_token": first.body["refresh_token"] })),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::UNAUTHORIZED);
}

async fn answers_showing_a_secret_once_are_not_replayed(site: Site) {
    let (_, owner) = site.tenant("Idem Secret").await;
    let key = [("Idempotency-Key", "key-create-1")];
    let body = json!({ "name": "ci", "scopes": ["read"] });
    let created = site
        .send(
            Method::POST,
            "/v1/api-keys",
            Some(&owner),
            &key,
            Some(body.clone()),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let secret = created.body["secret"].as_str().unwrap().to_owned();

    let retry = site
        .send(Method::POST, "/v1/api-keys", Some(&owner), &key, Some(body))
        .await;
    assert_eq!(retry.status, StatusCode::CONFLICT, "{}", retry.body);
    assert_eq!(problem_type(&retry), "idempotency_response_withheld");
    assert!(!retry.body.to_string().contains(&secret));
    let keys = site
        .send(Method::GET, "/v1/api-keys", Some(&owner), &[], None)
        .await;
    assert_eq!(
        keys.body["data"].as_array().unwrap().len(),
        1,
        "created once"
    );

    let invite = json!({ "email": "inv@idem.example.com", "roles": ["agent"] });
    let key = [("Idempotency-Key", "invite-1")];
    let invited = site
        .send(
            Method::POST,
            "/v1/users/invite",
            Some(&owner),
            &key,
            Some(invite.clone()),
        )
        .await;
    assert_eq!(invited.status, StatusCode::CREATED, "{}", invited.body);
    let token = invited.body["invitation"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let retry = site
        .send(
            Method::POST,
            "/v1/users/invite",
            Some(&owner),
            &key,
            Some(invite),
        )
        .await;
    assert_eq!(problem_type(&retry), "idempotency_response_withheld");
    assert!(!retry.body.to_string().contains(&token));
}

async fn one_idempotency_key_on_two_routes_is_two_keys(site: Site) {
    let (_, owner) = site.tenant("Idem Routes").await;
    let key = [("Idempotency-Key", "shared-key")];
    let client = site
        .send(
            Method::POST,
            "/v1/clients",
            Some(&owner),
            &key,
            Some(json!({ "name": "Globex" })),
        )
        .await;
    assert_eq!(client.status, StatusCode::CREATED, "{}", client.body);
    let user = site
        .send(
            Method::POST,
            "/v1/users",
            Some(&owner),
            &key,
            Some(
                json!({ "email": "bo@idem.example.com", "roles": ["agent"], "password": PASSWORD }),
            ),
        )
        .await;
    assert_eq!(user.status, StatusCode::CREATED, "{}", user.body);
    assert!(user.headers.get("idempotent-replayed").is_none());
}

// ---- the login throttle ----

async fn thirty_concurrent_wrong_passwords_get_at_most_the_allowed_401s(site: Site) {
    let (slug, _) = site.tenant("Throttle Burst").await;
    let site = std::sync::Arc::new(site);
    let guesses: Vec<_> = (0..30)
        .map(|_| {
            let site = site.clone();
            let slug = slug.clone();
            tokio::spawn(async move {
                site.login(&slug, &owner_email(&slug), WRONG, &[])
                    .await
                    .status
            })
        })
        .collect();
    let (mut unauthorized, mut throttled) = (0, 0);
    for guess in guesses {
        match guess.await.unwrap() {
            StatusCode::UNAUTHORIZED => unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => throttled += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((unauthorized, throttled), (5, 25));
    // The right password from the same address waits for the window too.
    let right = site.login(&slug, &owner_email(&slug), PASSWORD, &[]).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = right.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
}

async fn x_forwarded_for_from_an_untrusted_peer_is_ignored(site: Site) {
    let (slug, _) = site.tenant("Throttle Spoof").await;
    for n in 0..5 {
        let forwarded = format!("198.51.100.{n}");
        let guess = site
            .login(
                &slug,
                &owner_email(&slug),
                WRONG,
                &[("X-Forwarded-For", forwarded.as_str())],
            )
            .await;
        assert_eq!(guess.status, StatusCode::UNAUTHORIZED);
    }
    let guess = site
        .login(
            &slug,
            &owner_email(&slug),
            WRONG,
            &[("X-Forwarded-For", "198.51.100.77")],
        )
        .await;
    assert_eq!(
        guess.status,
        StatusCode::TOO_MANY_REQUESTS,
        "one peer, one budget"
    );
}

async fn behind_a_trusted_proxy_each_client_has_its_own_budget_up_to_the_account_cap(site: Site) {
    let (slug, _) = site.tenant("Throttle Proxy").await;
    let email = owner_email(&slug);
    let from = |address: &'static str| [("X-Forwarded-For", address)];
    for _ in 0..5 {
        let guess = site
            .login(&slug, &email, WRONG, &from("198.51.100.1"))
            .await;
        assert_eq!(guess.status, StatusCode::UNAUTHORIZED);
    }
    let guess = site
        .login(&slug, &email, WRONG, &from("198.51.100.1"))
        .await;
    assert_eq!(guess.status, StatusCode::TOO_MANY_REQUESTS);
    // What the client writes left of the proxy's entry changes nothing.
    let spoofed = site
        .login(&slug, &email, WRONG, &from("203.0.113.9, 198.51.100.1"))
        .await;
    assert_eq!(spoofed.status, StatusCode::TOO_MANY_REQUESTS);
    // The owner, elsewhere, is not locked out by the guesser...
    let owner = site
        .login(&slug, &email, PASSWORD, &from("198.51.100.2"))
        .await;
    assert_eq!(owner.status, StatusCode::OK, "{}", owner.body);
    // ...but the account's cap (8 here) across addresses holds, for a
    // bounded time: 5 failures from the guesser, the success given back,
    // 3 more failures make 8, and the 9th attempt is refused.
    for _ in 0..3 {
        let guess = site
            .login(&slug, &email, WRONG, &from("198.51.100.3"))
            .await;
        assert_eq!(guess.status, StatusCode::UNAUTHORIZED);
    }
    let capped = site
        .login(&slug, &email, WRONG, &from("198.51.100.4"))
        .await;
    assert_eq!(capped.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = capped.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
}

fn behind_a_proxy(mode: impl Into<Mode>) -> SiteOptions {
    let mut options = SiteOptions::new(mode);
    options.gateway.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    options.throttle = ThrottlePolicy {
        per_account: 8,
        ..ThrottlePolicy::default()
    };
    options
}

// ---- where a token in the query is taken ----

async fn a_query_token_is_refused_outside_the_stream_routes(site: Site) {
    let (_, owner) = site.tenant("Query Token").await;
    let handshake = [
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    for path in ["/v1/tenant", "/v1/users", "/v1/api-keys"] {
        let answer = site
            .send(
                Method::GET,
                &format!("{path}?access_token={owner}"),
                None,
                &handshake,
                None,
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "{path}: {}",
            answer.body
        );
    }
    // The same token in the header works there.
    let answer = site
        .send(Method::GET, "/v1/tenant", Some(&owner), &[], None)
        .await;
    assert_eq!(answer.status, StatusCode::OK);
}

// ---- the API reference ----

async fn the_api_reference_loads_nothing_from_outside_the_node(site: Site) {
    let page = site
        .client
        .get(format!("{}{DOCS_PATH}", site.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = page.text().await.unwrap();
    // Every resource the page loads is a path on this node.
    let mut loads = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for (at, _) in page.match_indices(attribute) {
            let rest = &page[at + attribute.len()..];
            loads.push(rest[..rest.find('"').unwrap()].to_owned());
        }
    }
    assert_eq!(loads, [DOCS_SCRIPT_PATH], "{page}");
    assert!(!page.contains("cdn.jsdelivr"));
    assert!(
        page.contains("withDefaultFonts: false"),
        "no fonts from a CDN"
    );

    let script = site
        .client
        .get(format!("{}{DOCS_SCRIPT_PATH}", site.base))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(
        script.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let bytes = script.bytes().await.unwrap();
    assert_eq!(
        &bytes[..],
        include_bytes!("../assets/scalar/api-reference-1.76.4.js")
    );
    // The page pins those bytes with Subresource Integrity.
    let integrity = format!("sha384-{}", STANDARD.encode(Sha384::digest(&bytes)));
    assert!(
        page.contains(&format!("integrity=\"{integrity}\"")),
        "{integrity}"
    );
}

// ---- what a client-scoped admin may change ----

async fn a_client_scoped_admin_cannot_change_the_tenant(site: Site) {
    let (slug, owner) = site.tenant("Outsourcer").await;
    let client = site
        .send(
            Method::POST,
            "/v1/clients",
            Some(&owner),
            &[],
            Some(json!({ "name": "Initech" })),
        )
        .await;
    assert_eq!(client.status, StatusCode::CREATED, "{}", client.body);
    site.user(
        &owner,
        "lead@initech.example.com",
        json!(["admin"]),
        json!([client.body["id"]]),
    )
    .await;
    let login = site
        .login(&slug, "lead@initech.example.com", PASSWORD, &[])
        .await;
    let scoped = login.body["access_token"].as_str().unwrap();

    for patch in [
        json!({ "name": "Initech Inc" }),
        json!({ "time_zone": "Europe/Berlin" }),
    ] {
        let refused = site
            .send(Method::PATCH, "/v1/tenant", Some(scoped), &[], Some(patch))
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
        assert_eq!(problem_type(&refused), "client_scope");
    }
    let tenant = site
        .send(Method::GET, "/v1/tenant", Some(&owner), &[], None)
        .await;
    assert_eq!(tenant.body["name"], "Outsourcer");
    assert_eq!(tenant.body["time_zone"], "UTC");
    // The tenant's own admin (every client) still may.
    let renamed = site
        .send(
            Method::PATCH,
            "/v1/tenant",
            Some(&owner),
            &[],
            Some(json!({ "name": "Outsourcer Group" })),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
}

// ---- plans ----

async fn a_tenant_cannot_pick_its_plan_but_an_operator_can(site: Site) {
    let refused = site
        .send(
            Method::POST,
            "/v1/signup",
            None,
            &[],
            Some(json!({
                "company": "Plan Picker",
                "email": "owner@plan-picker.example.com",
                "password": PASSWORD,
                "plan": "pro",
            })),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.body["errors"][0]["field"], "plan");
    // Nothing was created: the same company signs up on the trial, with
    // its own handle.
    let (slug, owner) = site.tenant("Plan Picker").await;
    assert_eq!(slug, "plan-picker");

    let patched = site
        .send(
            Method::PATCH,
            "/v1/tenant",
            Some(&owner),
            &[],
            Some(json!({ "plan": "pro", "name": "Plan Picker Ltd" })),
        )
        .await;
    assert_eq!(patched.status, StatusCode::BAD_REQUEST, "{}", patched.body);
    assert_eq!(patched.body["errors"][0]["field"], "plan");
    let tenant = site
        .send(Method::GET, "/v1/tenant", Some(&owner), &[], None)
        .await;
    assert_eq!(tenant.body["plan"], "trial");
    assert_eq!(
        tenant.body["name"], "Plan Picker",
        "a refused patch changes nothing"
    );
    let trial_seats = tenant.body["seat_limit"].as_u64().unwrap();

    site.on_plan(&slug, "pro").await;
    let tenant = site
        .send(Method::GET, "/v1/tenant", Some(&owner), &[], None)
        .await;
    assert_eq!(tenant.body["plan"], "pro");
    assert!(tenant.body["seat_limit"].as_u64().unwrap() > trial_seats);
    assert!(site.identity.set_plan(&slug, "platinum").await.is_err());
}

macro_rules! on_both_backends {
    ($($name:ident $(=> $options:ident)?),* $(,)?) => {
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let site = on_both_backends!(@start true $(, $options)?);
                    tokio::time::timeout(Duration::from_secs(120), super::$name(site))
                        .await
                        .expect("timed out");
                }
            )*
        }
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let site = on_both_backends!(@start false $(, $options)?);
                    tokio::time::timeout(Duration::from_secs(120), super::$name(site))
                        .await
                        .expect("timed out");
                }
            )*
        }
        mod identity_over_grpc {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let site = on_both_backends!(@start Mode::IDENTITY_OVER_GRPC $(, $options)?);
                    tokio::time::timeout(Duration::from_secs(120), super::$name(site))
                        .await
                        .expect("timed out");
                }
            )*
        }
    };
    (@start $production:expr) => {
        Site::start($production).await
    };
    (@start $production:expr, $options:ident) => {
        Site::start_with($options($production)).await
    };
}

on_both_backends!(
    two_people_logging_in_with_one_idempotency_key_each_get_their_own_tokens,
    a_replayed_refresh_after_reuse_detection_gets_no_tokens,
    answers_showing_a_secret_once_are_not_replayed,
    one_idempotency_key_on_two_routes_is_two_keys,
    thirty_concurrent_wrong_passwords_get_at_most_the_allowed_401s,
    x_forwarded_for_from_an_untrusted_peer_is_ignored,
    behind_a_trusted_proxy_each_client_has_its_own_budget_up_to_the_account_cap => behind_a_proxy,
    a_query_token_is_refused_outside_the_stream_routes,
    the_api_reference_loads_nothing_from_outside_the_node,
    a_client_scoped_admin_cannot_change_the_tenant,
    a_tenant_cannot_pick_its_plan_but_an_operator_can,
);
