//! The routing configuration over real HTTP on both backends: PostgreSQL
//! (as a role that neither owns the tables nor bypasses row-level
//! security) and SQLite, with the in-process cache. Credentials, problem
//! bodies (400 naming the field or flow node, 404, 409), and a number
//! configured end to end with a schedule, a published flow, a queue and a
//! forced mode.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::{Site as Api, SiteOptions};

mod common;

const PASSWORD: &str = "correct horse battery staple";

impl Api {
    async fn start(production: bool) -> Self {
        Self::start_with(SiteOptions::new(production)).await
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
        let problem = response
            .headers()
            .get("content-type")
            .is_some_and(|value| value == "application/problem+json");
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_client_error() {
            assert!(problem, "{status} is not a problem: {text}");
        }
        (status, body)
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    async fn put(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }

    async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Signs a company up; returns the owner's access token and user id.
    async fn owner(&self, company: &str) -> (String, String) {
        let (status, body) = self
            .call(
                Method::POST,
                "/v1/signup",
                None,
                Some(json!({
                    "company": company,
                    "email": format!("owner@{}.example.com", company.to_lowercase()),
                    "password": PASSWORD,
                })),
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
            body["tokens"]["access_token"].as_str().unwrap().to_owned(),
            body["user"]["id"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates an item and answers its id.
    async fn create(&self, path: &str, token: &str, body: Value) -> String {
        let (status, created) = self.post(path, token, body).await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {created}");
        created["id"].as_str().unwrap().to_owned()
    }
}

fn problem_type(body: &Value) -> &str {
    body["type"].as_str().unwrap().rsplit('/').next().unwrap()
}

fn first_field(body: &Value) -> &str {
    body["errors"][0]["field"].as_str().unwrap()
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Api::start(false).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Api::start(true).await).await;
                }
            )*
        }
        /// The same REST API with the configuration reached over gRPC.
        mod grpc {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Api::start_with(super::SiteOptions::remote()).await).await;
                }
            )*
        }
    };
}

on_both_backends!(
    routing_routes_need_a_credential_that_may_use_them,
    a_number_is_configured_end_to_end,
    bad_input_answers_problems_naming_the_field,
    lists_are_paged_with_a_cursor,
);

async fn routing_routes_need_a_credential_that_may_use_them(api: Api) {
    let (status, body) = api.call(Method::GET, "/v1/queues", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (owner, _) = api.owner("Acme").await;
    // An API key for users only may not read the routing configuration.
    let (status, key) = api
        .post(
            "/v1/api-keys",
            &owner,
            json!({"name": "users only", "scopes": ["users:read"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let users_only = key["secret"].as_str().unwrap().to_owned();
    let (status, body) = api.get("/v1/queues", &users_only).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // A read key reads but does not change.
    let (_, key) = api
        .post(
            "/v1/api-keys",
            &owner,
            json!({"name": "routing reader", "scopes": ["routing:read"]}),
        )
        .await;
    let reader = key["secret"].as_str().unwrap().to_owned();
    let (status, body) = api.get("/v1/skills", &reader).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"data": [], "next_cursor": null}));
    let (status, body) = api
        .post("/v1/skills", &reader, json!({"name": "billing"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = api
        .post("/v1/skills", &owner, json!({"name": "billing"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

async fn a_number_is_configured_end_to_end(api: Api) {
    let (owner, owner_id) = api.owner("Acme").await;
    let skill = api
        .create("/v1/skills", &owner, json!({"name": "billing"}))
        .await;
    let queue = api
        .create(
            "/v1/queues",
            &owner,
            json!({
                "name": "Billing",
                "channel": "voice",
                "required_skills": [{"skill_id": skill, "min_proficiency": 5}],
                "service_level": {"percent": 80, "seconds": 20},
                "wrap_up_seconds": 30,
                "callback": {"enabled": true, "after_seconds": 60}
            }),
        )
        .await;
    let (status, profile) = api
        .put(
            &format!("/v1/agent-profiles/{owner_id}"),
            &owner,
            json!({"skills": [{"skill_id": skill, "proficiency": 8}], "capacity": {"voice": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{profile}");
    assert_eq!(profile["id"], json!(owner_id));
    let flow = api
        .create(
            "/v1/flows",
            &owner,
            json!({
                "name": "Main",
                "definition": {"start": "menu", "nodes": {
                    "menu": {"type": "menu", "prompt": {"tts": "Press 1 for billing"},
                             "options": {"1": "billing"}, "on_failure": "billing"},
                    "billing": {"type": "enqueue", "queue_id": queue}
                }}
            }),
        )
        .await;
    let (status, version) = api
        .post(&format!("/v1/flows/{flow}/versions"), &owner, json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{version}");
    assert_eq!(version["version"], 1);
    assert_eq!(version["published_by"], json!(owner_id));
    let (_, flow_view) = api.get(&format!("/v1/flows/{flow}"), &owner).await;
    assert_eq!(flow_view["latest_version"], 1);
    let (status, versions) = api.get(&format!("/v1/flows/{flow}/versions"), &owner).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(versions["data"][0], version);

    let schedule = api
        .create(
            "/v1/schedules",
            &owner,
            json!({"name": "Office", "hours": {"time_zone": "Europe/Paris", "weekly": [
                {"day": "mon", "open": "09:00", "close": "17:00"}
            ]}}),
        )
        .await;
    let voicemail = api
        .create(
            "/v1/voicemail-boxes",
            &owner,
            json!({"name": "After hours"}),
        )
        .await;
    let rule = api
        .create(
            "/v1/inbound-rules",
            &owner,
            json!({
                "name": "Main line",
                "schedule_id": schedule,
                "open": {"type": "flow", "flow_id": flow},
                "closed": {"type": "voicemail", "box_id": voicemail}
            }),
        )
        .await;
    let number = api
        .create(
            "/v1/numbers",
            &owner,
            json!({"number": "+33140000000", "inbound_rule_id": rule}),
        )
        .await;
    let (_, numbers) = api.get("/v1/numbers", &owner).await;
    assert_eq!(numbers["data"][0]["id"], json!(number));

    let (status, forced) = api
        .post(
            &format!("/v1/inbound-rules/{rule}/forced-mode"),
            &owner,
            json!({"mode": "destination", "destination": {"type": "queue", "queue_id": queue},
                   "reason": "storm"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{forced}");
    assert_eq!(forced["forced"]["mode"], "destination");
    assert_eq!(forced["forced"]["set_by"], json!(owner_id));
    // Routing's audit entries reach identity's log through the event bus:
    // wait for them (the assertions below are unchanged).
    let expected = [
        "routing.forced_mode_set",
        "routing.number_created",
        "routing.queue_created",
        "routing.flow_created",
        "routing.flow_published",
        "routing.inbound_rule_created",
    ];
    let audit_has_all = || async {
        let (_, audit) = api.get("/v1/audit-events?limit=200", &owner).await;
        expected.iter().all(|action| {
            audit["data"]
                .as_array()
                .is_some_and(|events| events.iter().any(|event| event["action"] == *action))
        })
    };
    assert!(
        switchboard_test_utils::eventually(std::time::Duration::from_secs(20), audit_has_all).await,
        "routing's audit entries did not reach the audit log"
    );
    let (_, audit) = api.get("/v1/audit-events?limit=200", &owner).await;
    assert!(
        audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|event| event["action"] == "routing.forced_mode_set"),
        "{audit}"
    );
    // Every configuration write is audited with who made it.
    for action in [
        "routing.number_created",
        "routing.queue_created",
        "routing.flow_created",
        "routing.flow_published",
        "routing.inbound_rule_created",
    ] {
        assert!(
            audit["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|event| { event["action"] == action && event["actor_id"] == json!(owner_id) }),
            "{action} by the owner: {audit}"
        );
    }
    // Another tenant's audit log holds none of it.
    let (stranger, _) = api.owner("Globex").await;
    let (status, theirs) = api.get("/v1/audit-events", &stranger).await;
    assert_eq!(status, StatusCode::OK, "{theirs}");
    assert!(
        theirs["data"].as_array().unwrap().iter().all(|event| {
            !event["action"]
                .as_str()
                .unwrap_or("")
                .starts_with("routing.")
                && event["actor_id"] != json!(owner_id)
        }),
        "{theirs}"
    );
    let (status, _) = api
        .post(
            &format!("/v1/inbound-rules/{rule}/forced-mode"),
            &owner,
            json!({"mode": "none"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // In use: the rule holds the flow, the number the rule.
    let (status, body) = api
        .delete(&format!("/v1/inbound-rules/{rule}"), &owner)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(problem_type(&body), "in_use");
    let (status, _) = api.delete(&format!("/v1/numbers/{number}"), &owner).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api
        .delete(&format!("/v1/inbound-rules/{rule}"), &owner)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Another tenant: A's ids are not found, A's number is not available.
    let (other, _) = api.owner("Globex").await;
    for path in [
        format!("/v1/queues/{queue}"),
        format!("/v1/flows/{flow}"),
        format!("/v1/flows/{flow}/versions/1"),
        format!("/v1/skills/{skill}"),
        format!("/v1/schedules/{schedule}"),
        format!("/v1/agent-profiles/{owner_id}"),
    ] {
        let (status, body) = api.get(&path, &other).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(problem_type(&body), "not_found");
    }
    let acme_rule = api
        .create(
            "/v1/inbound-rules",
            &owner,
            json!({"name": "Again", "open": {"type": "queue", "queue_id": queue},
                   "closed": {"type": "hangup"}}),
        )
        .await;
    api.create(
        "/v1/numbers",
        &owner,
        json!({"number": "+33140000001", "inbound_rule_id": acme_rule}),
    )
    .await;
    let other_rule = api
        .create(
            "/v1/inbound-rules",
            &other,
            json!({"name": "Main", "open": {"type": "hangup"}, "closed": {"type": "hangup"}}),
        )
        .await;
    let (status, body) = api
        .post(
            "/v1/numbers",
            &other,
            json!({"number": "+33140000001", "inbound_rule_id": other_rule}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(problem_type(&body), "number_unavailable");
}

async fn bad_input_answers_problems_naming_the_field(api: Api) {
    let (owner, _) = api.owner("Acme").await;
    let rule = api
        .create(
            "/v1/inbound-rules",
            &owner,
            json!({"name": "Main", "open": {"type": "hangup"}, "closed": {"type": "hangup"}}),
        )
        .await;
    let (status, body) = api
        .post(
            "/v1/numbers",
            &owner,
            json!({"number": "01 40 00 00 00", "inbound_rule_id": rule}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(first_field(&body), "number");

    let (status, body) = api
        .post(
            "/v1/schedules",
            &owner,
            json!({"name": "Office", "hours": {"time_zone": "UTC", "weekly": [
                {"day": "mon", "open": "09:00", "close": "13:00"},
                {"day": "mon", "open": "12:00", "close": "18:00"}
            ]}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(first_field(&body), "hours.weekly[1]");

    let (status, body) = api
        .post(
            "/v1/flows",
            &owner,
            json!({"name": "Broken", "definition": {"start": "hello", "nodes": {
                "hello": {"type": "play", "prompt": {"tts": "Hi"}, "next": "nowhere"}
            }}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        first_field(&body).starts_with("definition.nodes.hello"),
        "{body}"
    );

    let (status, body) = api
        .post(
            "/v1/queues",
            &owner,
            json!({"name": "Q", "channel": "voice",
                   "required_skills": [{"skill_id": uuid::Uuid::now_v7(), "min_proficiency": 12}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(first_field(&body), "required_skills[0].min_proficiency");

    let (status, body) = api
        .post("/v1/queues", &owner, json!({"name": "Q", "channel": "fax"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    api.create("/v1/skills", &owner, json!({"name": "billing"}))
        .await;
    let (status, body) = api
        .post("/v1/skills", &owner, json!({"name": "billing"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(problem_type(&body), "name_taken");

    let (status, body) = api
        .get(&format!("/v1/queues/{}", uuid::Uuid::now_v7()), &owner)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = api.get("/v1/queues/not-an-id", &owner).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = api
        .put(
            &format!("/v1/agent-profiles/{}", uuid::Uuid::now_v7()),
            &owner,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an unknown user: {body}");
}

async fn lists_are_paged_with_a_cursor(api: Api) {
    let (owner, _) = api.owner("Acme").await;
    let mut skills = Vec::new();
    for name in ["a", "b", "c"] {
        skills.push(
            api.create("/v1/skills", &owner, json!({"name": name}))
                .await,
        );
    }
    let (status, first) = api.get("/v1/skills?limit=2", &owner).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["data"][0]["id"], json!(skills[0]));
    assert_eq!(first["data"][1]["id"], json!(skills[1]));
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = api
        .get(&format!("/v1/skills?limit=2&cursor={cursor}"), &owner)
        .await;
    assert_eq!(second["data"].as_array().unwrap().len(), 1);
    assert_eq!(second["data"][0]["id"], json!(skills[2]));
    assert!(second["next_cursor"].is_null());

    let queue = api
        .create(
            "/v1/queues",
            &owner,
            json!({"name": "Q", "channel": "chat"}),
        )
        .await;
    let flow = api
        .create(
            "/v1/flows",
            &owner,
            json!({"name": "F", "definition": {"start": "q", "nodes": {
                "q": {"type": "enqueue", "queue_id": queue}
            }}}),
        )
        .await;
    for _ in 0..3 {
        let (status, _) = api
            .post(&format!("/v1/flows/{flow}/versions"), &owner, json!({}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (_, first) = api
        .get(&format!("/v1/flows/{flow}/versions?limit=2"), &owner)
        .await;
    let versions: Vec<i64> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|version| version["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = api
        .get(
            &format!("/v1/flows/{flow}/versions?limit=2&cursor={cursor}"),
            &owner,
        )
        .await;
    assert_eq!(second["data"][0]["version"], 3);
    assert!(second["next_cursor"].is_null());
    let (status, body) = api.get("/v1/skills?cursor=not-a-cursor", &owner).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
