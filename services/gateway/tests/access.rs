//! Credentials inside a tenant, over real HTTP and WebSockets, on both
//! backends: an API key never acts beyond its creator (client scope at
//! creation and at every use, roles at every use); a change of a user's
//! roles, clients or status ends their access tokens, sessions and keys at
//! once; an open stream closes when its credential lapses.

use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_auth::{AccessSubject, SigningKey, TokenKeys};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use common::{Mode, SECRET, Site, SiteOptions};

mod common;

const PASSWORD: &str = "correct horse battery staple";

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Site {
    /// Streams re-check their credential every 100 ms here.
    async fn start(mode: impl Into<Mode>) -> Self {
        let mut options = SiteOptions::new(mode);
        options.gateway.stream_recheck_every = Duration::from_millis(100);
        Self::start_with(options).await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, None).await
    }

    async fn create(&self, path: &str, token: &str, body: Value) -> Value {
        let (status, created) = self.call(Method::POST, path, token, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {created}");
        created
    }

    async fn patch_user(&self, owner: &str, id: &str, body: Value) {
        let (status, body) = self
            .call(Method::PATCH, &format!("/v1/users/{id}"), owner, Some(body))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Signs a company up, verified: (slug, owner's access token).
    async fn company(&self, name: &str) -> (String, String) {
        let response = self
            .client
            .post(format!("{}/v1/signup", self.base))
            .json(&json!({"company": name, "email": "owner@access.example",
                          "password": PASSWORD, "plan": "trial", "time_zone": "UTC"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let signup: Value = response.json().await.unwrap();
        let response = self
            .client
            .post(format!("{}/v1/auth/verify-email", self.base))
            .json(&json!({"token": signup["email_verification_token"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        (
            signup["tenant"]["slug"].as_str().unwrap().to_owned(),
            signup["tokens"]["access_token"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    }

    /// A user created by the owner and signed in: (id, access token).
    async fn user(&self, slug: &str, owner: &str, email: &str, extra: Value) -> (String, String) {
        let mut body = json!({"email": email, "password": PASSWORD});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let id = self.create("/v1/users", owner, body).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let response = self
            .client
            .post(format!("{}/v1/auth/login", self.base))
            .json(&json!({"tenant": slug, "email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let tokens: Value = response.json().await.unwrap();
        (id, tokens["access_token"].as_str().unwrap().to_owned())
    }

    async fn key(&self, creator: &str, scopes: &[&str]) -> String {
        self.create(
            "/v1/api-keys",
            creator,
            json!({"name": "integration", "scopes": scopes}),
        )
        .await["secret"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A WebSocket on `path` opened with `Authorization: Bearer`.
    async fn stream(&self, path: &str, credential: &str) -> Socket {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("{}{path}", self.base.replacen("http://", "ws://", 1))
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {credential}").parse().unwrap(),
        );
        tokio_tungstenite::connect_async(request).await.unwrap().0
    }
}

/// Reads a stream until the server closes it (within 5 s); returns the
/// close frame's code and reason.
async fn closed_by_server(socket: &mut Socket) -> (CloseCode, String) {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.next().await {
                Some(Ok(Frame::Close(Some(frame)))) => {
                    return (frame.code, frame.reason.to_string());
                }
                Some(Ok(Frame::Close(None))) | None | Some(Err(_)) => {
                    panic!("the stream ended without a close frame")
                }
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .expect("the server closes the stream")
}

/// Reads the stream's first frame: it is open and serving.
async fn serving(socket: &mut Socket) {
    let first = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("a first frame")
        .expect("open")
        .expect("a frame");
    assert!(matches!(first, Frame::Text(_)), "{first:?}");
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The review's finding: an admin scoped to client One made a `full` key
/// and with it listed every client's queues, read client Two's agent and
/// deleted client Two's queue.
async fn a_client_scoped_admins_key_stays_within_their_clients(site: Site) {
    let (slug, owner) = site.company("Outsourcer").await;
    let one = site
        .create("/v1/clients", &owner, json!({"name": "One"}))
        .await["id"]
        .clone();
    let two = site
        .create("/v1/clients", &owner, json!({"name": "Two"}))
        .await["id"]
        .clone();
    let one_queue = site
        .create(
            "/v1/queues",
            &owner,
            json!({"name": "One's line", "channel": "voice", "client_id": one}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let two_queue = site
        .create(
            "/v1/queues",
            &owner,
            json!({"name": "Two's line", "channel": "voice", "client_id": two}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let owners_key = site.key(&owner, &["full"]).await;
    let (two_agent, _) = site
        .user(
            &slug,
            &owner,
            "agent@two.example",
            json!({"roles": ["agent"], "clients": [two]}),
        )
        .await;
    let (_, admin) = site
        .user(
            &slug,
            &owner,
            "admin@one.example",
            json!({"roles": ["admin"], "clients": [one]}),
        )
        .await;

    let key = site.key(&admin, &["full"]).await;
    let (status, queues) = site.get("/v1/queues", &key).await;
    assert_eq!(status, StatusCode::OK, "{queues}");
    assert_eq!(ids(&queues), vec![one_queue.clone()]);
    assert_eq!(
        site.get(&format!("/v1/users/{two_agent}"), &key).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        site.call(
            Method::DELETE,
            &format!("/v1/queues/{two_queue}"),
            &key,
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let (_, queues) = site.get("/v1/queues", &owner).await;
    assert_eq!(
        ids(&queues).len(),
        2,
        "client Two's queue is still there: {queues}"
    );
    // Nor does the key reach the tenant itself or other clients' keys.
    let (status, keys) = site.get("/v1/api-keys", &admin).await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    assert_eq!(keys["data"].as_array().unwrap().len(), 1, "{keys}");
    let (_, all_keys) = site.get("/v1/api-keys", &owner).await;
    let owners_key_id = all_keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|listed| owners_key.starts_with(listed["prefix"].as_str().unwrap()))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        site.call(
            Method::DELETE,
            &format!("/v1/api-keys/{owners_key_id}"),
            &admin,
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(site.get("/v1/tenant", &owners_key).await.0, StatusCode::OK);
    // The owner's key still sees both clients' queues.
    let (_, queues) = site.get("/v1/queues", &owners_key).await;
    assert_eq!(ids(&queues).len(), 2);
}

/// Demoted, moved to another client, disabled: every credential of the
/// user follows at once, whatever the caches held.
async fn a_users_credentials_follow_their_rights_at_once(site: Site) {
    let (slug, owner) = site.company("Rights").await;
    let (admin_id, admin) = site
        .user(
            &slug,
            &owner,
            "admin@rights.example",
            json!({"roles": ["admin"]}),
        )
        .await;
    let key = site.key(&admin, &["full"]).await;
    assert_eq!(site.get("/v1/users", &admin).await.0, StatusCode::OK);
    assert_eq!(site.get("/v1/users", &key).await.0, StatusCode::OK);

    site.patch_user(&owner, &admin_id, json!({"roles": ["agent"]}))
        .await;
    let (status, problem) = site
        .call(
            Method::POST,
            "/v1/users",
            &admin,
            Some(json!({"email": "second-admin@rights.example", "roles": ["admin"], "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
    let (status, problem) = site
        .call(
            Method::POST,
            "/v1/users",
            &key,
            Some(json!({"email": "second-admin@rights.example", "roles": ["admin"], "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(site.get("/v1/users", &key).await.0, StatusCode::FORBIDDEN);
    let (_, users) = site.get("/v1/users", &owner).await;
    assert_eq!(ids(&users).len(), 2, "nobody was created: {users}");

    site.patch_user(&owner, &admin_id, json!({"status": "disabled"}))
        .await;
    let (status, problem) = site.get("/v1/tenant", &key).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("creator"),
        "{problem}"
    );
}

/// Open streams close (1008, with the reason) when their credential
/// lapses: the user disabled, the role taken away, the key revoked, the
/// access token expired.
async fn open_streams_close_when_their_credential_lapses(site: Site) {
    let (slug, owner) = site.company("Streams").await;
    let (supervisor_id, supervisor) = site
        .user(
            &slug,
            &owner,
            "supervisor@streams.example",
            json!({"roles": ["supervisor"]}),
        )
        .await;
    let (agent_id, agent) = site
        .user(
            &slug,
            &owner,
            "agent@streams.example",
            json!({"roles": ["agent"]}),
        )
        .await;
    let (status, body) = site
        .call(
            Method::PUT,
            &format!("/v1/agent-profiles/{agent_id}"),
            &owner,
            Some(json!({"capacity": {"voice": 1}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let key = site.key(&owner, &["read"]).await;

    let mut wallboard = site.stream("/v1/queues/stats/stream", &supervisor).await;
    let mut desktop = site.stream("/v1/agents/me/stream", &agent).await;
    let mut integration = site.stream("/v1/queues/stats/stream", &key).await;
    for socket in [&mut wallboard, &mut desktop, &mut integration] {
        serving(socket).await;
    }

    site.patch_user(&owner, &supervisor_id, json!({"status": "disabled"}))
        .await;
    let (code, reason) = closed_by_server(&mut wallboard).await;
    assert_eq!(code, CloseCode::Policy);
    assert!(reason.contains("ended"), "{reason}");

    site.patch_user(&owner, &agent_id, json!({"roles": ["quality_analyst"]}))
        .await;
    let (code, reason) = closed_by_server(&mut desktop).await;
    assert_eq!(code, CloseCode::Policy);
    assert!(reason.contains("log in again"), "{reason}");

    let (_, keys) = site.get("/v1/api-keys", &owner).await;
    let key_id = keys["data"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = site
        .call(
            Method::DELETE,
            &format!("/v1/api-keys/{key_id}"),
            &owner,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (code, _) = closed_by_server(&mut integration).await;
    assert_eq!(code, CloseCode::Policy);

    // A token that expires while its stream is open: the stream ends then.
    let claims = decode_claims(&owner);
    let keys = TokenKeys::new(vec![SigningKey::new("test", SECRET).unwrap()]).unwrap();
    let (short_lived, _) = keys
        .issue(
            AccessSubject {
                user_id: claims["sub"].as_str().unwrap().parse().unwrap(),
                tenant_id: claims["tid"].as_str().unwrap().parse().unwrap(),
                roles: vec!["owner".into()],
                clients: None,
                session_id: claims["sid"].as_str().unwrap().parse().unwrap(),
                rights_version: claims["ver"].as_i64().unwrap(),
            },
            Duration::from_secs(1),
            chrono::Utc::now(),
        )
        .unwrap();
    let mut expiring = site.stream("/v1/queues/stats/stream", &short_lived).await;
    serving(&mut expiring).await;
    let (code, reason) = closed_by_server(&mut expiring).await;
    assert_eq!(code, CloseCode::Policy);
    assert!(reason.contains("expired"), "{reason}");
    // The owner's own stream, meanwhile, stays open.
    let mut still = site.stream("/v1/queues/stats/stream", &owner).await;
    serving(&mut still).await;
}

/// The claims of a JWT, unverified (the test only reads its own tokens).
fn decode_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// SIP accounts (`/v1/users/{id}/sip-account`, kept by the edge): a user
/// manages their own; an admin those of the users they can see; the
/// password is shown only when issued; another tenant's or another
/// client's users are not found; a disabled user gets none.
async fn sip_accounts_follow_who_may_manage_whom(site: Site) {
    let (slug, owner) = site.company("Phones").await;
    let (agent, agent_token) = site
        .user(
            &slug,
            &owner,
            "agent@phones.example",
            json!({"roles": ["agent"]}),
        )
        .await;
    let (other_agent, _) = site
        .user(
            &slug,
            &owner,
            "other@phones.example",
            json!({"roles": ["agent"]}),
        )
        .await;
    let path = |id: &str| format!("/v1/users/{id}/sip-account");

    // The edge learns the tenant's domain from identity's event: until
    // then an issue is refused with 503 and Retry-After.
    let mut issued = Value::Null;
    for _ in 0..100 {
        let (status, body) = site.call(Method::POST, &path(&agent), &owner, None).await;
        if status == StatusCode::OK {
            issued = body;
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let username = issued["username"].as_str().expect("issued").to_owned();
    assert_eq!(issued["domain"], format!("{slug}.sip.example.com"));
    assert_eq!(issued["password"].as_str().unwrap().len(), 24);

    let (status, account) = site.get(&path(&agent), &owner).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(account["username"], username.as_str());
    assert_eq!(account["active"], true);
    assert!(account.get("password").is_none(), "{account}");

    // Their own: the agent rotates it (same username, new password).
    let (status, rotated) = site
        .call(Method::POST, &path(&agent), &agent_token, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["username"], username.as_str());
    assert_ne!(rotated["password"], issued["password"]);
    // Not someone else's.
    for method in [Method::GET, Method::POST, Method::DELETE] {
        let (status, body) = site
            .call(method.clone(), &path(&other_agent), &agent_token, None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {body}");
    }
    // A key that may only read cannot issue one.
    let reader = site.key(&owner, &["read"]).await;
    let (status, _) = site
        .call(Method::POST, &path(&other_agent), &reader, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Another tenant's admin finds no such user.
    let (_, stranger) = site.company("Elsewhere").await;
    for method in [Method::GET, Method::POST, Method::DELETE] {
        let (status, body) = site
            .call(method.clone(), &path(&agent), &stranger, None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {body}");
    }

    // A client-scoped admin reaches the users of their clients only.
    let one = site
        .create("/v1/clients", &owner, json!({"name": "One"}))
        .await["id"]
        .clone();
    let two = site
        .create("/v1/clients", &owner, json!({"name": "Two"}))
        .await["id"]
        .clone();
    let (_, scoped_admin) = site
        .user(
            &slug,
            &owner,
            "admin1@phones.example",
            json!({"roles": ["admin"], "clients": [one]}),
        )
        .await;
    let (two_agent, _) = site
        .user(
            &slug,
            &owner,
            "agent2@phones.example",
            json!({"roles": ["agent"], "clients": [two]}),
        )
        .await;
    let (status, _) = site
        .call(Method::POST, &path(&two_agent), &scoped_admin, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = site.get(&path(&two_agent), &owner).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was issued");

    // A disabled user gets no account.
    site.patch_user(&owner, &other_agent, json!({"status": "disabled"}))
        .await;
    let (status, body) = site
        .call(Method::POST, &path(&other_agent), &owner, None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["type"].as_str().unwrap().ends_with("user_not_active"),
        "{body}"
    );

    // Revoked: gone.
    let (status, _) = site.call(Method::DELETE, &path(&agent), &owner, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = site.get(&path(&agent), &owner).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = site.call(Method::DELETE, &path(&agent), &owner, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Trunks (`/v1/trunks`, kept by the edge): the tenant's admins manage
/// them; agents, read-only keys and client-scoped admins may not; another
/// tenant's are not found; each bad field is named; passwords are never
/// answered.
async fn trunks_are_managed_by_the_tenants_admins_only(site: Site) {
    let (slug, owner) = site.company("Trunks").await;
    let body = json!({
        "name": "Carrier A",
        "inbound": {
            "allowed_sources": ["192.0.2.10", "2001:db8::/48"],
            "username": format!("{slug}-in"),
            "password": "inbound secret 1",
        },
        "outbound": {
            "host": "sip.carrier.example",
            "port": 5060,
            "transport": "udp",
            "username": "out",
            "password": "outbound secret 1",
            "register": true,
        },
        "priority": 1,
    });
    let no_secret = |value: &Value| {
        let text = value.to_string();
        assert!(
            !text.contains("secret 1"),
            "a password was answered: {text}"
        );
    };
    let created = site.create("/v1/trunks", &owner, body.clone()).await;
    no_secret(&created);
    assert_eq!(created["enabled"], true);
    assert_eq!(
        created["inbound"]["allowed_sources"],
        json!(["192.0.2.10/32", "2001:db8::/48"])
    );
    assert_eq!(created["inbound"]["password_set"], true);
    assert_eq!(created["outbound"]["password_set"], true);
    assert_eq!(created["outbound"]["register_expires"], 3600);
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/trunks/{id}");

    let (status, got) = site.get(&path, &owner).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, created);
    let (status, page) = site.get("/v1/trunks", &owner).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["data"], json!([created]));
    // Replaced without its passwords: they stay.
    let mut replacement = body.clone();
    replacement["name"] = json!("Carrier A (main)");
    replacement["inbound"]
        .as_object_mut()
        .unwrap()
        .remove("password");
    replacement["outbound"]
        .as_object_mut()
        .unwrap()
        .remove("password");
    let (status, replaced) = site
        .call(Method::PUT, &path, &owner, Some(replacement))
        .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["name"], "Carrier A (main)");
    assert_eq!(replaced["inbound"]["password_set"], true);
    assert_eq!(replaced["outbound"]["password_set"], true);

    // An admin may; a key with `full` may.
    let (_, admin) = site
        .user(
            &slug,
            &owner,
            "admin@trunks.example",
            json!({"roles": ["admin"]}),
        )
        .await;
    let (status, _) = site.get(&path, &admin).await;
    assert_eq!(status, StatusCode::OK);
    let full = site.key(&owner, &["full"]).await;
    let (status, _) = site.get("/v1/trunks", &full).await;
    assert_eq!(status, StatusCode::OK);
    // Agents, supervisors and read-only keys may not, not even read.
    let (_, agent) = site
        .user(
            &slug,
            &owner,
            "agent@trunks.example",
            json!({"roles": ["agent"]}),
        )
        .await;
    let (_, supervisor) = site
        .user(
            &slug,
            &owner,
            "supervisor@trunks.example",
            json!({"roles": ["supervisor"]}),
        )
        .await;
    let reader = site.key(&owner, &["read"]).await;
    for token in [&agent, &supervisor, &reader] {
        for (method, target, body) in [
            (Method::GET, "/v1/trunks", None),
            (Method::POST, "/v1/trunks", Some(body.clone())),
            (Method::GET, path.as_str(), None),
            (Method::PUT, path.as_str(), Some(body.clone())),
            (Method::DELETE, path.as_str(), None),
        ] {
            let (status, answer) = site.call(method.clone(), target, token, body).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {target}: {answer}");
        }
    }
    // An admin limited to some client organizations may not either.
    let client = site
        .create("/v1/clients", &owner, json!({"name": "One"}))
        .await["id"]
        .clone();
    let (_, scoped_admin) = site
        .user(
            &slug,
            &owner,
            "scoped@trunks.example",
            json!({"roles": ["admin"], "clients": [client]}),
        )
        .await;
    let (status, answer) = site.get("/v1/trunks", &scoped_admin).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        answer["type"].as_str().unwrap().ends_with("client_scope"),
        "{answer}"
    );

    // Another tenant's admin: not found, and its own list is empty.
    let (_, stranger) = site.company("Elsewhere").await;
    for (method, body) in [
        (Method::GET, None),
        (Method::PUT, Some(body.clone())),
        (Method::DELETE, None),
    ] {
        let (status, answer) = site.call(method.clone(), &path, &stranger, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}: {answer}");
    }
    let (_, page) = site.get("/v1/trunks", &stranger).await;
    assert_eq!(page["data"], json!([]));
    // The inbound username is the platform's: taken.
    let (status, answer) = site
        .call(Method::POST, "/v1/trunks", &stranger, Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(
        answer["type"]
            .as_str()
            .unwrap()
            .ends_with("trunk_username_taken"),
        "{answer}"
    );

    // Each bad field is named.
    let (status, problem) = site
        .call(
            Method::POST,
            "/v1/trunks",
            &owner,
            Some(json!({
                "name": "",
                "inbound": {"allowed_sources": ["192.0.2.1", "10.0.0.0/33"]},
                "outbound": {"host": "sip.carrier.example", "port": 70000, "transport": "sctp"},
            })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "name",
            "inbound.allowed_sources[1]",
            "outbound.port",
            "outbound.transport"
        ],
        "{problem}"
    );

    let (status, _) = site.call(Method::DELETE, &path, &owner, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = site.get(&path, &owner).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The same, with the gateway calling the edge over gRPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunks_are_managed_by_the_tenants_admins_only_over_grpc() {
    trunks_are_managed_by_the_tenants_admins_only(Site::start_with(SiteOptions::remote()).await)
        .await;
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Site::start(false).await).await;
                }
            )*
        }
        mod production {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Site::start(true).await).await;
                }
            )*
        }
        mod identity_over_grpc {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Site::start(super::Mode::IDENTITY_OVER_GRPC).await).await;
                }
            )*
        }
    };
}

on_both_backends!(
    a_client_scoped_admins_key_stays_within_their_clients,
    a_users_credentials_follow_their_rights_at_once,
    open_streams_close_when_their_credential_lapses,
    sip_accounts_follow_who_may_manage_whom,
    trunks_are_managed_by_the_tenants_admins_only,
);
