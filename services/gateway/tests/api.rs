//! The public REST API end to end over real HTTP, on both backends:
//! PostgreSQL (connected as a role that neither owns the tables nor
//! bypasses row-level security) with Redis, and SQLite with the
//! in-process cache.

use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use serde_json::{Value, json};
use switchboard_auth::{AccessSubject, SigningKey, TokenKeys};
use switchboard_http::Limit;
use switchboard_identity_api::credential_cache::tenant_key;
use switchboard_platform::database::DatabaseKind;

use common::{Mode, SECRET, Site as Api, SiteOptions};

mod common;

const PASSWORD: &str = "correct horse battery staple";

impl Api {
    /// With a 64 KiB body limit (the oversized-body cases).
    async fn start(mode: impl Into<Mode>) -> Self {
        Self::start_limited(mode, Limit::per_second(1000)).await
    }

    async fn start_limited(mode: impl Into<Mode>, signup_limit: Limit) -> Self {
        Self::start_with(Self::options(SiteOptions::new(mode), signup_limit)).await
    }

    /// Every service the gateway calls over gRPC: identity, webhooks, the
    /// ACD and the routing configuration, as in a split deployment.
    async fn start_split() -> Self {
        let options = SiteOptions {
            remote: true,
            ..SiteOptions::new(Mode::IDENTITY_OVER_GRPC)
        };
        Self::start_with(Self::options(options, Limit::per_second(1000))).await
    }

    fn options(mut options: SiteOptions, signup_limit: Limit) -> SiteOptions {
        options.gateway.body_limit = 64 * 1024;
        options.gateway.signup_limit = signup_limit;
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

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Signs a company up and verifies its email; returns (slug, owner token).
    async fn tenant(&self, company: &str, plan: &str) -> (String, String) {
        let email = format!(
            "owner@{}.example.com",
            company.to_lowercase().replace(' ', "-")
        );
        let (status, body) = self
            .post(
                "/v1/signup",
                None,
                json!({ "company": company, "email": email, "password": PASSWORD, "time_zone": "Europe/Paris" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let token = body["email_verification_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, _) = self
            .post("/v1/auth/verify-email", None, json!({ "token": token }))
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let slug = body["tenant"]["slug"].as_str().unwrap().to_owned();
        if plan != "trial" {
            self.on_plan(&slug, plan).await;
        }
        (
            slug,
            body["tokens"]["access_token"].as_str().unwrap().to_owned(),
        )
    }

    async fn count(&self, table: &str) -> i64 {
        let row = self
            .admin
            .connection()
            .query_one_raw(Statement::from_string(
                self.admin.backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    }
}

async fn signup_verify_login_invite_up_to_the_seat_limit_and_use_an_api_key(api: Api) {
    let email = "founder@acme.example.com";
    let (status, body) = api
        .post(
            "/v1/signup",
            None,
            json!({ "company": "Acme Support", "email": email, "password": PASSWORD, "plan": "trial", "time_zone": "America/New_York" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["tenant"]["slug"], "acme-support");
    assert_eq!(body["tenant"]["status"], "trial");
    assert_eq!(body["tenant"]["email_verified"], false);
    assert_eq!(body["user"]["roles"], json!(["owner"]));
    assert!(body["user"].get("password_hash").is_none());
    let signup_token = body["tokens"]["access_token"].as_str().unwrap().to_owned();
    let verification = body["email_verification_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, tenant) = api.get("/v1/tenant", &signup_token).await;
    assert_eq!(tenant["time_zone"], "America/New_York");

    // Unverified tenants cannot invite yet.
    let (status, body) = api
        .post(
            "/v1/users/invite",
            Some(&signup_token),
            json!({ "email": "a1@acme.example.com", "roles": ["agent"] }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["type"],
        "https://switchboard.dev/problems/email_unverified"
    );

    // Verify: a forged token is refused, the real one works once.
    let (status, _) = api
        .post(
            "/v1/auth/verify-email",
            None,
            json!({ "token": "ver_forged" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = api
        .post(
            "/v1/auth/verify-email",
            None,
            json!({ "token": verification }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api
        .post(
            "/v1/auth/verify-email",
            None,
            json!({ "token": verification }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a verification token works once"
    );

    // Log in; the answer never tells which part was wrong.
    let (status, body) = api
        .post(
            "/v1/auth/login",
            None,
            json!({ "tenant": "acme-support", "email": email, "password": "wrong password!" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["detail"], "invalid tenant, email or password");
    let (status, body) = api
        .post(
            "/v1/auth/login",
            None,
            json!({ "tenant": "no-such-tenant", "email": email, "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["detail"], "invalid tenant, email or password");
    let (status, tokens) = api.post("/v1/auth/login", None, json!({ "tenant": "acme-support", "email": "FOUNDER@acme.example.com", "password": PASSWORD })).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "emails are case-insensitive: {tokens}"
    );
    let owner = tokens["access_token"].as_str().unwrap().to_owned();
    let slug = "acme-support";
    let (_, tenant) = api.get("/v1/tenant", &owner).await;
    assert_eq!(tenant["email_verified"], true);
    assert_eq!(tenant["seat_limit"], 3);

    // A second company with the same name gets a suffixed handle.
    let (status, body) = api.post("/v1/signup", None, json!({ "company": "Acme Support", "email": "other@acme.example.com", "password": PASSWORD })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["tenant"]["slug"], "acme-support-2");

    // Invite agents up to the seat limit (trial: 3 seats).
    let mut invitations = Vec::new();
    for n in 1..=3 {
        let (status, body) = api
            .post(
                "/v1/users/invite",
                Some(&owner),
                json!({ "email": format!("agent{n}@acme.example.com"), "roles": ["agent"] }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["status"], "invited");
        invitations.push(body["invitation"]["token"].as_str().unwrap().to_owned());
    }
    let users_before = api.count("users").await;
    let seat_changes_before = api.count("seat_changes").await;
    let audit_before = api.count("audit_events").await;
    let (status, body) = api
        .post(
            "/v1/users/invite",
            Some(&owner),
            json!({ "email": "agent4@acme.example.com", "roles": ["agent"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["type"],
        "https://switchboard.dev/problems/seat_limit_reached"
    );
    assert_eq!(api.count("users").await, users_before, "nothing written");
    assert_eq!(
        api.count("seat_changes").await,
        seat_changes_before,
        "nothing written"
    );
    assert_eq!(
        api.count("audit_events").await,
        audit_before,
        "nothing written"
    );
    // Promoting a non-seat user into a seat is refused the same way.
    let (status, qa) = api
        .post(
            "/v1/users/invite",
            Some(&owner),
            json!({ "email": "qa@acme.example.com", "roles": ["quality_analyst"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{qa}");
    let qa_id = qa["id"].as_str().unwrap();
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/v1/users/{qa_id}"),
            Some(&owner),
            Some(json!({ "roles": ["supervisor"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(api.count("seat_changes").await, seat_changes_before);

    // An invited agent sets a password and logs in.
    let (status, tokens) = api
        .post(
            "/v1/auth/accept-invitation",
            None,
            json!({ "token": invitations[0], "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let (status, _) = api
        .post(
            "/v1/auth/accept-invitation",
            None,
            json!({ "token": invitations[0], "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an invitation works once");
    let (status, _) = api
        .post(
            "/v1/auth/login",
            None,
            json!({ "tenant": slug, "email": "agent1@acme.example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let agent = tokens["access_token"].as_str().unwrap();
    let (status, body) = api.get("/v1/users", agent).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "agents do not manage users: {body}"
    );

    // Create an API key, use it, revoke it.
    let (status, key) = api
        .post(
            "/v1/api-keys",
            Some(&owner),
            json!({ "name": "CRM sync", "scopes": ["read"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let secret = key["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sk_live_"));
    assert!(secret.starts_with(key["prefix"].as_str().unwrap()));
    let (status, users) = api.get("/v1/users?limit=2", &secret).await;
    assert_eq!(status, StatusCode::OK, "{users}");
    assert_eq!(users["data"].as_array().unwrap().len(), 2);
    let cursor = users["next_cursor"].as_str().unwrap();
    let (_, next) = api
        .get(&format!("/v1/users?limit=200&cursor={cursor}"), &secret)
        .await;
    assert_eq!(
        next["data"].as_array().unwrap().len(),
        3,
        "5 users in all, 2 on the first page"
    );
    assert!(next["next_cursor"].is_null());
    let (status, _) = api
        .post(
            "/v1/clients",
            Some(&secret),
            json!({ "name": "Not allowed" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a read key cannot write");
    let (_, keys) = api.get("/v1/api-keys", &owner).await;
    assert!(keys["data"][0]["last_used_at"].is_string(), "{keys}");
    assert!(keys["data"][0].get("secret").is_none());
    let key_id = key["id"].as_str().unwrap();
    let (status, revoked) = api
        .call(
            Method::DELETE,
            &format!("/v1/api-keys/{key_id}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(revoked["revoked_at"].is_string());
    let (status, body) = api.get("/v1/users", &secret).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // The audit log recorded all of it.
    let (status, events) = api.get("/v1/audit-events?limit=200", &owner).await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "tenant.created",
        "user.created",
        "tenant.email_verified",
        "user.invited",
        "user.invitation_accepted",
        "api_key.created",
        "api_key.revoked",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
}

async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_session(api: Api) {
    let (slug, _) = api.tenant("Rotate Inc", "starter").await;
    let login =
        json!({ "tenant": slug, "email": "owner@rotate-inc.example.com", "password": PASSWORD });
    let (_, first) = api.post("/v1/auth/login", None, login.clone()).await;
    let refresh = first["refresh_token"].as_str().unwrap();
    let (status, second) = api
        .post(
            "/v1/auth/refresh",
            None,
            json!({ "refresh_token": refresh }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let access = second["access_token"].as_str().unwrap();
    assert_eq!(api.get("/v1/tenant", access).await.0, StatusCode::OK);
    // Reusing the first refresh token: stolen; the whole family goes.
    let (status, _) = api
        .post(
            "/v1/auth/refresh",
            None,
            json!({ "refresh_token": refresh }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = api
        .post(
            "/v1/auth/refresh",
            None,
            json!({ "refresh_token": second["refresh_token"] }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the rotated token died with its family"
    );
    assert_eq!(
        api.get("/v1/tenant", access).await.0,
        StatusCode::UNAUTHORIZED,
        "so did its access tokens"
    );
    // Logout ends a session.
    let (_, third) = api.post("/v1/auth/login", None, login).await;
    let (status, _) = api
        .post(
            "/v1/auth/logout",
            None,
            json!({ "refresh_token": third["refresh_token"] }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.get("/v1/tenant", third["access_token"].as_str().unwrap())
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

async fn another_tenants_ids_are_not_found_and_its_data_unchanged(api: Api) {
    let (_, a) = api.tenant("Tenant A", "starter").await;
    let (_, b) = api.tenant("Tenant B", "starter").await;
    let (_, b_user) = api
        .post(
            "/v1/users",
            Some(&b),
            json!({ "email": "agent@b.example.com", "roles": ["agent"], "password": PASSWORD }),
        )
        .await;
    let (_, b_client) = api
        .post("/v1/clients", Some(&b), json!({ "name": "B's client" }))
        .await;
    let (_, b_key) = api
        .post(
            "/v1/api-keys",
            Some(&b),
            json!({ "name": "B key", "scopes": ["full"] }),
        )
        .await;
    let b_user_id = b_user["id"].as_str().unwrap();
    let b_client_id = b_client["id"].as_str().unwrap();
    let b_key_id = b_key["id"].as_str().unwrap();
    let (_, b_users_before) = api.get("/v1/users", &b).await;

    for (method, path, body) in [
        (Method::GET, format!("/v1/users/{b_user_id}"), None),
        (
            Method::PATCH,
            format!("/v1/users/{b_user_id}"),
            Some(json!({ "display_name": "hijacked" })),
        ),
        (Method::DELETE, format!("/v1/users/{b_user_id}"), None),
        (Method::GET, format!("/v1/clients/{b_client_id}"), None),
        (Method::DELETE, format!("/v1/clients/{b_client_id}"), None),
        (Method::DELETE, format!("/v1/api-keys/{b_key_id}"), None),
        (Method::GET, "/v1/users/not-a-uuid".to_owned(), None),
    ] {
        let (status, problem) = api.call(method.clone(), &path, Some(&a), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {problem}");
        assert_eq!(
            problem["type"],
            "https://switchboard.dev/problems/not_found"
        );
    }
    // B's ids in a body and a query string.
    let (status, problem) = api
        .post("/v1/users", Some(&a), json!({ "email": "x@a.example.com", "roles": ["admin"], "password": PASSWORD, "clients": [b_client_id] }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let cursor = switchboard_http::pagination::encode_cursor(&b_user_id).unwrap();
    let (status, page) = api.get(&format!("/v1/users?cursor={cursor}"), &a).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|user| user["email"]
                .as_str()
                .unwrap()
                .ends_with("tenant-a.example.com")),
        "{page}"
    );
    // A's lists never show B.
    for path in [
        "/v1/users",
        "/v1/clients",
        "/v1/api-keys",
        "/v1/audit-events",
    ] {
        let (_, page) = api.get(path, &a).await;
        let text = page.to_string();
        assert!(
            !text.contains(b_user_id) && !text.contains(b_client_id) && !text.contains(b_key_id),
            "{path}: {text}"
        );
    }
    // B is unchanged.
    let (_, b_users_after) = api.get("/v1/users", &b).await;
    assert_eq!(b_users_before, b_users_after);
    assert_eq!(
        api.get(&format!("/v1/clients/{b_client_id}"), &b).await.0,
        StatusCode::OK
    );
    assert_eq!(
        api.get("/v1/tenant", b_key["secret"].as_str().unwrap())
            .await
            .0,
        StatusCode::OK,
        "B's key still works"
    );
}

async fn a_client_scoped_user_sees_only_its_clients(api: Api) {
    let (slug, owner) = api.tenant("Outsourcer", "pro").await;
    let (_, x) = api
        .post("/v1/clients", Some(&owner), json!({ "name": "Client X" }))
        .await;
    let (_, y) = api
        .post("/v1/clients", Some(&owner), json!({ "name": "Client Y" }))
        .await;
    let (status, x_admin) = api
        .post(
            "/v1/users",
            Some(&owner),
            json!({ "email": "boss@x.example.com", "roles": ["admin"], "clients": [x["id"]], "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{x_admin}");
    let (_, x_agent) = api
        .post("/v1/users", Some(&owner), json!({ "email": "agent@x.example.com", "roles": ["agent"], "clients": [x["id"]], "password": PASSWORD }))
        .await;
    let (_, y_agent) = api
        .post("/v1/users", Some(&owner), json!({ "email": "agent@y.example.com", "roles": ["agent"], "clients": [y["id"]], "password": PASSWORD }))
        .await;
    let (status, tokens) = api
        .post(
            "/v1/auth/login",
            None,
            json!({ "tenant": slug, "email": "boss@x.example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let boss = tokens["access_token"].as_str().unwrap();

    let (_, users) = api.get("/v1/users", boss).await;
    let emails: Vec<&str> = users["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["boss@x.example.com", "agent@x.example.com"]);
    let y_agent_id = y_agent["id"].as_str().unwrap();
    assert_eq!(
        api.get(&format!("/v1/users/{y_agent_id}"), boss).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get(
            &format!("/v1/users/{}", x_agent["id"].as_str().unwrap()),
            boss
        )
        .await
        .0,
        StatusCode::OK
    );
    let (_, clients) = api.get("/v1/clients", boss).await;
    assert_eq!(clients["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        api.get(&format!("/v1/clients/{}", y["id"].as_str().unwrap()), boss)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, events) = api.get("/v1/audit-events", boss).await;
    assert_eq!(status, StatusCode::OK, "{events}");
    let text = events.to_string();
    assert!(
        !text.contains(y_agent_id) && !text.contains(y["id"].as_str().unwrap()),
        "{text}"
    );
    assert!(
        text.contains(x_agent["id"].as_str().unwrap()),
        "its own client's events are visible: {text}"
    );
    // It cannot give itself Y.
    let (status, _) = api
        .post("/v1/users", Some(boss), json!({ "email": "spy@x.example.com", "roles": ["agent"], "clients": [y["id"]], "password": PASSWORD }))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn bad_input_gets_a_precise_problem_and_writes_nothing(api: Api) {
    let (_, owner) = api.tenant("Strict Co", "starter").await;
    let users_before = api.count("users").await;
    let tenants_before = api.count("tenants").await;
    let url = format!("{}/v1/users", api.base);
    let send = |body: &'static str, content_type: &'static str| {
        api.client
            .post(url.clone())
            .bearer_auth(&owner)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let response = send(
        "{\"email\": \"a@b.example.com\",\n \"roles\": [\"agent\"",
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(
        problem["type"],
        "https://switchboard.dev/problems/malformed_json"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("line 2"),
        "{problem}"
    );
    let problem: Value = send(
        "{\"email\": \"a@b.example.com\", \"roles\": [\"agent\"], \"admin\": true}",
        "application/json",
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(problem["errors"][0]["field"], "admin", "{problem}");
    let response = send("email=a", "application/x-www-form-urlencoded")
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = format!(
        "{{\"email\": \"{}\", \"roles\": [\"agent\"]}}",
        "a".repeat(70 * 1024)
    );
    // Its own connection: the server answers 413 without reading the body
    // and closes the connection, which a pooled client would try to reuse.
    let response = Client::new()
        .post(url.clone())
        .bearer_auth(&owner)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    for (body, field) in [
        (
            json!({ "email": "not-an-email", "roles": ["agent"] }),
            "email",
        ),
        (
            json!({ "email": "ok@b.example.com", "roles": ["root"] }),
            "roles",
        ),
        (
            json!({ "email": "ok@b.example.com", "roles": ["agent"], "password": "short" }),
            "password",
        ),
        (
            json!({ "email": "ok@b.example.com", "roles": ["agent"], "display_name": "x".repeat(101) }),
            "display_name",
        ),
        (
            json!({ "email": format!("{}@b.example.com", "x".repeat(300)), "roles": ["agent"] }),
            "email",
        ),
    ] {
        let (status, problem) = api.post("/v1/users", Some(&owner), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let (status, problem) = api.post("/v1/signup", None, json!({ "company": "TZ", "email": "tz@tz.example.com", "password": PASSWORD, "time_zone": "Mars/Olympus" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["errors"][0]["field"], "time_zone");
    let (status, _) = api.get("/v1/users?limit=500", &owner).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api.get("/v1/users?cursor=%%%garbage", &owner).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(api.count("users").await, users_before);
    assert_eq!(api.count("tenants").await, tenants_before);

    // Credentials: missing, forged, expired, signed with another key.
    let (status, problem) = api.call(Method::GET, "/v1/tenant", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("Authorization")
    );
    let mut forged = owner.clone();
    forged.pop();
    forged.push(if owner.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(
        api.get("/v1/tenant", &forged).await.0,
        StatusCode::UNAUTHORIZED
    );
    let claims = decode_claims(&owner);
    let subject = AccessSubject {
        user_id: claims["sub"].as_str().unwrap().parse().unwrap(),
        tenant_id: claims["tid"].as_str().unwrap().parse().unwrap(),
        roles: vec!["owner".into()],
        clients: None,
        session_id: claims["sid"].as_str().unwrap().parse().unwrap(),
        rights_version: claims["ver"].as_i64().unwrap(),
    };
    let keys = TokenKeys::new(vec![SigningKey::new("test", SECRET).unwrap()]).unwrap();
    let (expired, _) = keys
        .issue(
            subject.clone(),
            Duration::from_secs(60),
            chrono::Utc::now() - chrono::Duration::hours(1),
        )
        .unwrap();
    let (status, problem) = api.get("/v1/tenant", &expired).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        problem["detail"].as_str().unwrap().contains("expired"),
        "{problem}"
    );
    let other = TokenKeys::new(vec![
        SigningKey::new("test", b"another-secret-of-at-least-32-bytes!!!!".to_vec()).unwrap(),
    ])
    .unwrap();
    let (wrong_key, _) = other
        .issue(subject, Duration::from_secs(600), chrono::Utc::now())
        .unwrap();
    assert_eq!(
        api.get("/v1/tenant", &wrong_key).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.get(
            "/v1/tenant",
            "sk_live_0000000000000000000000000000000000000000"
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
}

async fn a_retried_post_with_an_idempotency_key_creates_once(api: Api) {
    let (_, owner) = api.tenant("Retry Ltd", "starter").await;
    let users_before = api.count("users").await;
    let request = || {
        api.client
            .post(format!("{}/v1/users", api.base))
            .bearer_auth(&owner)
            .header("Idempotency-Key", "create-agent-42")
            .json(&json!({ "email": "agent42@retry.example.com", "roles": ["agent"], "password": PASSWORD }))
            .send()
    };
    let first = request().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let second = request().await.unwrap();
    assert_eq!(second.status(), StatusCode::CREATED);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let second: Value = second.json().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(api.count("users").await, users_before + 1);
}

async fn rls_confines_an_unfiltered_query_to_the_transaction_tenant(api: Api) {
    let (_, a) = api.tenant("Rls A", "starter").await;
    let (_, b) = api.tenant("Rls B", "starter").await;
    for (token, n) in [(&a, 3), (&b, 2)] {
        for i in 0..n {
            let (status, body) = api
                .post("/v1/users", Some(token), json!({ "email": format!("u{i}@x.example.com"), "roles": ["admin"], "password": PASSWORD }))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    }
    let (_, a_tenant) = api.get("/v1/tenant", &a).await;
    let a_id = a_tenant["id"].as_str().unwrap();
    assert_eq!(api.database.kind(), DatabaseKind::Postgres);
    let connection = api.database.connection();
    let transaction = connection.begin().await.unwrap();
    transaction
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT set_config('app.tenant_id', $1, true)",
            [a_id.into()],
        ))
        .await
        .unwrap();
    // Deliberately unfiltered.
    let row = transaction
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT COUNT(*) AS n FROM users",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.try_get::<i64>("", "n").unwrap(),
        4,
        "A's owner and 3 users only"
    );
    let row = transaction
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT COUNT(*) AS n FROM tenants",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<i64>("", "n").unwrap(), 1);
    // Writing into another tenant is refused by the policy.
    let (_, b_tenant) = api.get("/v1/tenant", &b).await;
    let insert = transaction
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO client_orgs (id, tenant_id, name, created_at) VALUES ($1, $2, 'sneaky', now())",
            [uuid::Uuid::now_v7().into(), b_tenant["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap().into()],
        ))
        .await;
    assert!(
        insert.is_err(),
        "RLS WITH CHECK refuses rows of another tenant"
    );
    drop(transaction);
    // Without a tenant, nothing is visible.
    let row = connection
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT COUNT(*) AS n FROM users",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<i64>("", "n").unwrap(), 0);
    // The service role neither owns the tables nor bypasses RLS.
    let row = connection
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT rolbypassrls AS bypass, rolsuper AS superuser, (SELECT tableowner FROM pg_tables WHERE tablename = 'users') = current_user AS owns FROM pg_roles WHERE rolname = current_user",
        ))
        .await
        .unwrap()
        .unwrap();
    assert!(!row.try_get::<bool>("", "bypass").unwrap());
    assert!(!row.try_get::<bool>("", "superuser").unwrap());
    assert!(!row.try_get::<bool>("", "owns").unwrap());
}

async fn requests_past_the_plans_rate_get_429_with_retry_after(api: Api) {
    // Plans are data: a tiny one for this test.
    api.admin
        .connection()
        .execute_raw(Statement::from_string(
            api.admin.backend(),
            "INSERT INTO plans (code, name, seat_limit, api_requests_per_second, api_burst, features, created_at) \
             VALUES ('tiny', 'Tiny', 1, 0.01, 4, '', '2026-01-01T00:00:00Z')",
        ))
        .await
        .unwrap();
    let (_, owner) = api.tenant("Tiny Co", "tiny").await;
    // The signup's verification and the helper's calls used no API budget;
    // this credential may use half the tenant's burst: 2 requests.
    let first = api
        .client
        .get(format!("{}/v1/tenant", api.base))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()["ratelimit-limit"], "2");
    assert_eq!(first.headers()["ratelimit-remaining"], "1");
    assert_eq!(api.get("/v1/tenant", &owner).await.0, StatusCode::OK);
    let refused = api
        .client
        .get(format!("{}/v1/tenant", api.base))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1, "{retry_after}");
    assert_eq!(refused.headers()["ratelimit-remaining"], "0");
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(
        problem["type"],
        "https://switchboard.dev/problems/rate_limited"
    );
}

async fn a_suspended_tenant_is_refused_and_its_data_kept(api: Api) {
    let (slug, owner) = api.tenant("Paused Co", "starter").await;
    let (_, key) = api
        .post(
            "/v1/api-keys",
            Some(&owner),
            json!({ "name": "k", "scopes": ["read"] }),
        )
        .await;
    let (_, tenant) = api.get("/v1/tenant", &owner).await;
    let id = tenant["id"].as_str().unwrap();
    let id: uuid::Uuid = id.parse().unwrap();
    let suspend = |status: &'static str| {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        use switchboard_identity::store::entities::tenant;
        let admin = api.admin.clone();
        let cache = api.cache.clone();
        async move {
            let updated = tenant::Entity::update_many()
                .col_expr(
                    tenant::Column::Status,
                    sea_orm::sea_query::Expr::value(status),
                )
                .filter(tenant::Column::Id.eq(id))
                .exec(admin.connection())
                .await
                .unwrap();
            assert_eq!(updated.rows_affected, 1);
            // Identity drops a tenant's cached facts when it changes the
            // tenant; a status has no operation of its own yet, so do it
            // here (otherwise the facts expire within 30 s).
            let tenant = switchboard_tenancy::TenantId::from_uuid(id);
            cache.delete(&tenant_key(tenant)).await.unwrap();
        }
    };
    suspend("suspended").await;
    let (status, problem) = api.get("/v1/users", &owner).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        problem["type"],
        "https://switchboard.dev/problems/tenant_suspended"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("suspended"),
        "{problem}"
    );
    assert_eq!(
        api.get("/v1/users", key["secret"].as_str().unwrap())
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, _) = api
        .post(
            "/v1/auth/login",
            None,
            json!({ "tenant": slug, "email": "owner@paused-co.example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    suspend("active").await;
    let (status, users) = api.get("/v1/users", &owner).await;
    assert_eq!(status, StatusCode::OK, "data kept: {users}");
    assert_eq!(users["data"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signups_are_rate_limited_per_client_address() {
    let api = Api::start_limited(
        false,
        Limit {
            capacity: 2,
            per_second: 2.0 / 3600.0,
        },
    )
    .await;
    let tenants_before = api.count("tenants").await;
    for n in 0..2 {
        let (status, body) = api
            .post("/v1/signup", None, json!({ "company": format!("Flood {n}"), "email": format!("f{n}@flood.example.com"), "password": PASSWORD }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let refused = api
        .client
        .post(format!("{}/v1/signup", api.base))
        .json(
            &json!({ "company": "Flood 3", "email": "f3@flood.example.com", "password": PASSWORD }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(
        api.count("tenants").await,
        tenants_before + 2,
        "the refused signup wrote nothing"
    );
}

fn decode_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

type AgentSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Api {
    /// Opens a WebSocket with the token in the query (RFC 6750 §2.3).
    async fn socket(&self, path: &str, token: &str) -> AgentSocket {
        let url = format!(
            "{}{path}?access_token={token}",
            self.base.replacen("http://", "ws://", 1)
        );
        let (socket, response) = tokio_tungstenite::connect_async(url)
            .await
            .expect("WebSocket handshake");
        assert_eq!(response.status(), 101);
        socket
    }

    /// A new user of the tenant with `roles`, logged in: (user id, token).
    async fn user(&self, owner: &str, slug: &str, email: &str, roles: &[&str]) -> (String, String) {
        let (status, body) = self
            .post(
                "/v1/users",
                Some(owner),
                json!({ "email": email, "roles": roles, "password": PASSWORD }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_str().unwrap().to_owned();
        let (status, body) = self
            .post(
                "/v1/auth/login",
                None,
                json!({ "tenant": slug, "email": email, "password": PASSWORD }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (id, body["access_token"].as_str().unwrap().to_owned())
    }

    async fn put(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }
}

/// The next JSON text frame (pings skipped), within 5 s.
async fn next_frame(socket: &mut AgentSocket) -> Value {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message as Frame;
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.next().await.expect("socket open").expect("frame") {
                Frame::Text(text) => return serde_json::from_str(&text).unwrap(),
                Frame::Ping(_) | Frame::Pong(_) => {}
                other => panic!("unexpected frame {other:?}"),
            }
        }
    })
    .await
    .expect("a frame arrives")
}

/// The agent desktop over REST and its WebSocket: presence, an offer
/// pushed, accepted, the call ended into after-call work, extended and
/// ended; refusals with the current state; live queue figures for
/// supervisors only; another tenant sees none of it.
async fn an_agent_takes_a_call_on_the_desktop_and_supervisors_watch_the_queue(api: Api) {
    use switchboard_acd::{
        AgentId, AgentProfile, Channel, Contact, ContactId, QueueConfig, QueueId,
    };
    use switchboard_routing::Operation;

    let (slug, owner) = api.tenant("Desk Co", "starter").await;
    let (agent_id, agent) = api
        .user(&owner, &slug, "ann@desk-co.example.com", &["agent"])
        .await;
    let tenant = {
        let (_, tenant) = api.get("/v1/tenant", &owner).await;
        tenant["id"].as_str().unwrap().parse().unwrap()
    };

    // Not an agent of the ACD yet: the problem names what is missing and
    // how to create it, for reading and for going available alike.
    let (status, problem) = api.get("/v1/agents/me", &agent).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    let (status, refused) = api
        .put(
            "/v1/agents/me/presence",
            &agent,
            json!({"presence": "available"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{refused}");
    for problem in [&problem, &refused] {
        assert!(
            problem["type"]
                .as_str()
                .is_some_and(|kind| kind.ends_with("agent_profile_missing")),
            "{problem}"
        );
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("no agent profile")
                && detail.contains(&format!("PUT /v1/agent-profiles/{agent_id}")),
            "{detail}"
        );
    }

    let queue = QueueId::new();
    let mut config = QueueConfig::new(queue, Channel::Voice);
    config.wrap_up = Duration::from_secs(60);
    api.routing
        .execute(tenant, Operation::UpsertQueue { config })
        .await
        .unwrap();
    let agent_uuid: uuid::Uuid = agent_id.parse().unwrap();
    api.routing
        .execute(
            tenant,
            Operation::UpsertAgent {
                profile: AgentProfile::new(AgentId::from_uuid(agent_uuid)),
            },
        )
        .await
        .unwrap();
    let (status, me) = api.get("/v1/agents/me", &agent).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["agent_id"], agent_id);
    assert_eq!(me["state"], json!({ "state": "offline" }));
    assert_eq!(me["queues"], json!([queue.to_string()]));

    // Bad presence bodies: precise 400s, nothing changes.
    for (body, field) in [
        (json!({ "presence": "not_ready" }), "reason"),
        (
            json!({ "presence": "available", "reason": "lunch" }),
            "reason",
        ),
        (json!({ "presence": "sleepy" }), "presence"),
        (json!({ "presence": "available", "extra": 1 }), "extra"),
    ] {
        let (status, problem) = api
            .put("/v1/agents/me/presence", &agent, body.clone())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
        assert!(problem.to_string().contains(field), "{body}: {problem}");
    }
    let (_, me) = api.get("/v1/agents/me", &agent).await;
    assert_eq!(me["state"]["state"], "offline");

    // The desktop's stream: a snapshot first.
    let mut desk = api.socket("/v1/agents/me/stream", &agent).await;
    let first = next_frame(&mut desk).await;
    assert_eq!(first["type"], "snapshot");
    assert_eq!(first["agent"]["state"]["state"], "offline");

    let (status, me) = api
        .put(
            "/v1/agents/me/presence",
            &agent,
            json!({ "presence": "available" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["state"]["state"], "available");
    let change = next_frame(&mut desk).await;
    assert_eq!(change["type"], "state");
    assert_eq!(change["from"]["state"], "offline");
    assert_eq!(change["to"]["state"], "available");
    assert_eq!(change["cause"], "presence_set");

    // A call comes in: offered on the socket.
    let call = ContactId::new();
    api.routing
        .execute(
            tenant,
            Operation::Enqueue {
                contact: Contact::new(call, queue, Channel::Voice, chrono::Utc::now()),
            },
        )
        .await
        .unwrap();
    let offer = next_frame(&mut desk).await;
    assert_eq!(offer["type"], "offer", "{offer}");
    assert_eq!(offer["offer"]["contact_id"], call.to_string());
    assert_eq!(offer["offer"]["queue_id"], queue.to_string());
    let reserved = next_frame(&mut desk).await;
    assert_eq!(reserved["to"]["state"], "reserved");

    // Going offline with a call ringing: 409 with the current state.
    let (status, problem) = api
        .put(
            "/v1/agents/me/presence",
            &agent,
            json!({ "presence": "offline" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["current_state"], json!({ "state": "reserved" }));
    // Accepting an unknown call, or a malformed id: not found.
    let (status, problem) = api
        .post(
            &format!("/v1/agents/me/offers/{}/accept", ContactId::new()),
            Some(&agent),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    let (status, _) = api
        .post(
            "/v1/agents/me/offers/not-a-uuid/accept",
            Some(&agent),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, me) = api
        .post(
            &format!("/v1/agents/me/offers/{call}/accept"),
            Some(&agent),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["state"]["state"], "busy");
    assert_eq!(me["contacts"], json!([call.to_string()]));
    assert_eq!(next_frame(&mut desk).await["to"]["state"], "busy");

    // Supervisors watch the queue; agents may not.
    let (status, _) = api.get("/v1/queues/stats", &agent).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, stats) = api.get("/v1/queues/stats", &owner).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["queues"][0]["queue_id"], queue.to_string());
    assert_eq!(stats["queues"][0]["connected"], 1);
    assert_eq!(stats["queues"][0]["agents"]["busy"], 1);
    let mut wallboard = api.socket("/v1/queues/stats/stream", &owner).await;
    let board = next_frame(&mut wallboard).await;
    assert_eq!(board["type"], "queue_stats");
    assert_eq!(board["queues"][0]["connected"], 1);

    // The call ends: after-call work, extended, then ended early.
    api.routing
        .execute(tenant, Operation::End { contact: call })
        .await
        .unwrap();
    let acw = next_frame(&mut desk).await;
    assert_eq!(acw["to"]["state"], "after_call_work", "{acw}");
    assert!(acw["to"]["until"].is_string());
    let board = next_frame(&mut wallboard).await;
    assert_eq!(board["queues"][0]["connected"], 0, "{board}");
    let (status, problem) = api
        .post(
            "/v1/agents/me/wrap-up/extend",
            Some(&agent),
            json!({ "seconds": 0 }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let (status, me) = api
        .post(
            "/v1/agents/me/wrap-up/extend",
            Some(&agent),
            json!({ "seconds": 30 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(next_frame(&mut desk).await["cause"], "wrap_up_extended");
    let (status, me) = api
        .post("/v1/agents/me/wrap-up/end", Some(&agent), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["state"]["state"], "available");
    let (status, problem) = api
        .post("/v1/agents/me/wrap-up/end", Some(&agent), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["current_state"], json!({ "state": "available" }));

    // Without a credential the handshake is refused.
    let url = format!(
        "{}/v1/agents/me/stream",
        api.base.replacen("http://", "ws://", 1)
    );
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401);
        }
        other => panic!("expected 401, got {other:?}"),
    }
    // An API key is not an agent.
    let (_, key) = api
        .post(
            "/v1/api-keys",
            Some(&owner),
            json!({ "name": "wallboard", "scopes": ["read"] }),
        )
        .await;
    let key = key["secret"].as_str().unwrap().to_owned();
    let (status, problem) = api.get("/v1/agents/me", &key).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");

    // Another tenant sees none of it.
    let (_, other_owner) = api.tenant("Other Desk", "starter").await;
    let (status, stats) = api.get("/v1/queues/stats", &other_owner).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["queues"], json!([]));
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
        mod identity_over_grpc {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    tokio::time::timeout(Duration::from_secs(120), super::$name(Api::start(Mode::IDENTITY_OVER_GRPC).await)).await.expect("timed out");
                }
            )*
        }
        /// Every service the gateway calls over gRPC.
        mod split {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    tokio::time::timeout(Duration::from_secs(120), super::$name(Api::start_split().await)).await.expect("timed out");
                }
            )*
        }
    };
}

on_both_backends!(
    signup_verify_login_invite_up_to_the_seat_limit_and_use_an_api_key,
    refresh_tokens_rotate_and_a_reused_one_revokes_the_session,
    another_tenants_ids_are_not_found_and_its_data_unchanged,
    a_client_scoped_user_sees_only_its_clients,
    bad_input_gets_a_precise_problem_and_writes_nothing,
    a_retried_post_with_an_idempotency_key_creates_once,
    requests_past_the_plans_rate_get_429_with_retry_after,
    a_suspended_tenant_is_refused_and_its_data_kept,
    an_agent_takes_a_call_on_the_desktop_and_supervisors_watch_the_queue,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rls_confines_an_unfiltered_query_to_the_transaction_tenant() {
    tokio::time::timeout(
        Duration::from_secs(120),
        rls_confines_an_unfiltered_query_to_the_transaction_tenant(Api::start(true).await),
    )
    .await
    .expect("timed out");
}
