//! A contact center end to end, without the edge yet, on both backends
//! (PostgreSQL under row-level security with Redis; SQLite with the
//! in-process cache): a number with business hours and a menu flow, two
//! skill-based queues and agents, all configured over REST; agents on the
//! desktop WebSocket; simulated calls through the routing service's call
//! API (what the edge will call) — menu choice, offer, accept, decline and
//! re-offer, abandon, wrap-up, a forced closed mode, unknown numbers; the
//! routing events in the outbox at the end. And two tenants on one site,
//! whose calls, offers and figures never cross.

use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_acd::{ContactId, QueueId};
use switchboard_events::Event;
use switchboard_proto::routing::v1 as pb;
use switchboard_routing::calls::{CallDecision, InboundCall, Step};
use switchboard_rpc::{Authenticated, CallContext, Credentials};
use switchboard_tenancy::{Tenant, TenantId};
use switchboard_test_utils::eventually;
use tokio_tungstenite::tungstenite::Message as Frame;

use common::{Site, SiteOptions};

mod common;

const PASSWORD: &str = "correct horse battery staple";
const NUMBER: &str = "+33140000123";

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Site {
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
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    async fn create(&self, path: &str, token: &str, body: Value) -> String {
        let (status, created) = self.post(path, Some(token), body).await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {created}");
        created["id"].as_str().unwrap().to_owned()
    }

    /// A tenant signed up with its e-mail verified, in the Paris zone.
    async fn company(&self, name: &str, domain: &str) -> Company {
        let (status, signup) = self
            .post(
                "/v1/signup",
                None,
                json!({"company": name, "email": format!("owner@{domain}"),
                       "password": PASSWORD, "time_zone": "Europe/Paris"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{signup}");
        let (status, _) = self
            .post(
                "/v1/auth/verify-email",
                None,
                json!({"token": signup["email_verification_token"]}),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        self.on_plan(signup["tenant"]["slug"].as_str().unwrap(), "pro")
            .await;
        Company {
            owner: signup["tokens"]["access_token"]
                .as_str()
                .unwrap()
                .to_owned(),
            slug: signup["tenant"]["slug"].as_str().unwrap().to_owned(),
            tenant: signup["tenant"]["id"].as_str().unwrap().parse().unwrap(),
            domain: domain.to_owned(),
        }
    }

    /// A user with the agent role, signed in: (user id, access token).
    async fn agent(&self, company: &Company, name: &str) -> (String, String) {
        let email = format!("{name}@{}", company.domain);
        let id = self
            .create(
                "/v1/users",
                &company.owner,
                json!({"email": email, "roles": ["agent"], "password": PASSWORD}),
            )
            .await;
        let (status, login) = self
            .post(
                "/v1/auth/login",
                None,
                json!({"tenant": company.slug, "email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{login}");
        (id, login["access_token"].as_str().unwrap().to_owned())
    }

    async fn presence(&self, token: &str, body: Value) -> Value {
        let (status, agent) = self
            .call(
                Method::PUT,
                "/v1/agents/me/presence",
                Some(token),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{agent}");
        agent
    }

    async fn socket(&self, token: &str) -> Socket {
        self.stream("/v1/agents/me/stream", token).await
    }

    /// A WebSocket on `path`, signed in by the query (RFC 6750 §2.3).
    async fn stream(&self, path: &str, token: &str) -> Socket {
        let url = format!(
            "{}{path}?access_token={token}",
            self.base.replacen("http://", "ws://", 1)
        );
        tokio_tungstenite::connect_async(url).await.unwrap().0
    }

    async fn dial(&self, number: &str) -> CallDecision {
        self.calls
            .new_call(InboundCall {
                number: number.into(),
                caller: "+33612345678".into(),
                trunk: "carrier-1".into(),
                attributes: Default::default(),
                admitted_tenants: Vec::new(),
                over_limit: Vec::new(),
            })
            .await
    }

    /// A client of the edge's gRPC API, served on a port of its own as a
    /// node serves it (only calls with a service credential), and the
    /// edge's credentials.
    async fn edge(
        &self,
    ) -> (
        pb::call_routing_client::CallRoutingClient<tonic::transport::Channel>,
        Credentials,
    ) {
        let keys = switchboard_test_utils::service_keys("internal-test");
        let channel =
            switchboard_test_utils::serve_grpc(tonic::service::Routes::new(Authenticated::new(
                switchboard_routing::grpc::server(self.calls.clone()),
                keys.clone(),
            )))
            .await;
        (
            pb::call_routing_client::CallRoutingClient::new(channel),
            Credentials::new(keys, "edge"),
        )
    }

    async fn routing_events(&self, tenant: TenantId) -> Vec<Event> {
        use sea_orm::ConnectionTrait;
        use sea_orm::sea_query::{Alias, Expr, ExprTrait as _, Order, Query};
        let transaction = self.database.begin_tenant(tenant.as_uuid()).await.unwrap();
        let select = Query::select()
            .column(Alias::new("payload"))
            .from(Alias::new("event_log"))
            .and_where(Expr::col(Alias::new("source")).eq("routing"))
            .order_by(Alias::new("seq"), Order::Asc)
            .to_owned();
        let rows = transaction.query_all(&select).await.unwrap();
        transaction.commit().await.unwrap();
        rows.into_iter()
            .map(|row| Event::decode(&row.try_get::<Vec<u8>>("", "payload").unwrap()).unwrap())
            .collect()
    }
}

/// A tenant as its owner sees it.
struct Company {
    owner: String,
    slug: String,
    tenant: TenantId,
    domain: String,
}

/// The next JSON frame of a desktop (pings skipped), within 5 s.
async fn frame(socket: &mut Socket) -> Value {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.next().await.expect("open").expect("frame") {
                Frame::Text(text) => return serde_json::from_str(&text).unwrap(),
                Frame::Ping(_) | Frame::Pong(_) => {}
                other => panic!("unexpected frame {other:?}"),
            }
        }
    })
    .await
    .expect("a frame arrives")
}

/// Frames until one of `kind` (`offer`, `state`, …), which it returns.
async fn frame_of(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let next = frame(socket).await;
        if next["type"] == kind {
            return next;
        }
    }
}

/// State frames until the agent is in `state`; returns that frame.
async fn state_becomes(socket: &mut Socket, state: &str) -> Value {
    loop {
        let next = frame_of(socket, "state").await;
        if next["to"]["state"] == state {
            return next;
        }
    }
}

fn accepted(decision: CallDecision) -> (TenantId, ContactId, Step) {
    match decision {
        CallDecision::Accept { tenant, call, step } => (tenant, call, step),
        other => panic!("the call was refused: {other:?}"),
    }
}

async fn a_contact_center_routes_calls_end_to_end(site: Site) {
    // The tenant and its people.
    let company = site.company("Hotline", "hotline.example.com").await;
    let (owner, tenant) = (company.owner.clone(), company.tenant);
    let mut agents = Vec::new();
    for name in ["ann", "bob"] {
        agents.push(site.agent(&company, name).await);
    }
    let [(ann_id, ann), (bob_id, bob)] = <[(String, String); 2]>::try_from(agents).unwrap();

    // Skills, two queues, the agents' profiles.
    let sales_skill = site
        .create("/v1/skills", &owner, json!({"name": "sales"}))
        .await;
    let support_skill = site
        .create("/v1/skills", &owner, json!({"name": "support"}))
        .await;
    let sales = site
        .create(
            "/v1/queues",
            &owner,
            json!({"name": "Sales", "channel": "voice",
                   "required_skills": [{"skill_id": sales_skill, "min_proficiency": 3}],
                   "service_level": {"percent": 80, "seconds": 20},
                   "wrap_up_seconds": 30, "ring_timeout_seconds": 20,
                   "announcements": {"every_seconds": 30, "position": true, "expected_wait": true},
                   "callback": {"enabled": true, "after_seconds": 60}}),
        )
        .await;
    let support = site
        .create(
            "/v1/queues",
            &owner,
            json!({"name": "Support", "channel": "voice",
                   "required_skills": [{"skill_id": support_skill, "min_proficiency": 3}],
                   "service_level": {"percent": 80, "seconds": 20},
                   "ring_timeout_seconds": 20}),
        )
        .await;
    for (id, skill) in [(&ann_id, &sales_skill), (&bob_id, &support_skill)] {
        let (status, body) = site
            .call(
                Method::PUT,
                &format!("/v1/agent-profiles/{id}"),
                Some(&owner),
                Some(json!({"skills": [{"skill_id": skill, "proficiency": 7}],
                            "capacity": {"voice": 1}})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    // Open around the clock; a menu; after hours, voicemail.
    let week: Vec<Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|day| json!({"day": day, "open": "00:00", "close": "24:00"}))
        .collect();
    let schedule = site
        .create(
            "/v1/schedules",
            &owner,
            json!({"name": "Always", "hours": {"time_zone": "Europe/Paris", "weekly": week}}),
        )
        .await;
    let flow = site
        .create(
            "/v1/flows",
            &owner,
            json!({"name": "Main menu", "definition": {"start": "menu", "nodes": {
                "menu": {"type": "menu",
                         "prompt": {"tts": "Press 1 for sales, 2 for support."},
                         "options": {"1": "sales", "2": "support"},
                         "on_failure": "support"},
                "sales": {"type": "enqueue", "queue_id": sales},
                "support": {"type": "enqueue", "queue_id": support}
            }}}),
        )
        .await;
    let (status, version) = site
        .post(
            &format!("/v1/flows/{flow}/versions"),
            Some(&owner),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{version}");
    let voicemail = site
        .create(
            "/v1/voicemail-boxes",
            &owner,
            json!({"name": "After hours"}),
        )
        .await;
    let rule = site
        .create(
            "/v1/inbound-rules",
            &owner,
            json!({"name": "Main line", "schedule_id": schedule,
                   "open": {"type": "flow", "flow_id": flow},
                   "closed": {"type": "voicemail", "box_id": voicemail}}),
        )
        .await;
    site.create(
        "/v1/numbers",
        &owner,
        json!({"number": NUMBER, "inbound_rule_id": rule}),
    )
    .await;

    // Agents sign in on the desktop and go available.
    let mut ann_desk = site.socket(&ann).await;
    let mut bob_desk = site.socket(&bob).await;
    assert_eq!(
        frame(&mut ann_desk).await["agent"]["state"]["state"],
        "offline"
    );
    assert_eq!(
        frame(&mut bob_desk).await["agent"]["queues"],
        json!([support])
    );
    site.presence(&ann, json!({"presence": "available"})).await;
    site.presence(&bob, json!({"presence": "available"})).await;
    state_becomes(&mut ann_desk, "available").await;
    state_becomes(&mut bob_desk, "available").await;

    // Call 1: the menu, "1" → sales → Ann.
    let (call_tenant, first, step) = accepted(site.dial(NUMBER).await);
    assert_eq!(call_tenant, tenant);
    assert!(
        matches!(&step, Step::Collect { max_length: 1, .. }),
        "{step:?}"
    );
    let step = site
        .calls
        .report(tenant, first, switchboard_flows::Input::Digits("1".into()))
        .await
        .unwrap();
    let sales_queue: QueueId = sales.parse().unwrap();
    let Step::Queued { enqueued_at, .. } = step else {
        panic!("not queued: {step:?}")
    };
    assert!((chrono::Utc::now() - enqueued_at).num_seconds() < 60);
    assert_eq!(
        step,
        Step::Queued {
            queue_id: sales_queue,
            position: None,
            music_on_hold: None,
            announcements: Some(switchboard_routing::config::Announcements {
                every_seconds: 30,
                position: true,
                expected_wait: true
            }),
            callback_offer_after_seconds: Some(60),
            status_every_seconds: None,
            priority: None,
            enqueued_at,
        },
        "an agent is free: it rings at once"
    );
    let offer = frame_of(&mut ann_desk, "offer").await;
    assert_eq!(offer["offer"]["contact_id"], first.to_string());
    assert_eq!(offer["offer"]["queue_id"], sales);
    let (status, me) = site
        .post(
            &format!("/v1/agents/me/offers/{first}/accept"),
            Some(&ann),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["state"]["state"], "busy");
    // Bob cannot take Ann's call.
    let (status, _) = site
        .post(
            &format!("/v1/agents/me/offers/{first}/accept"),
            Some(&bob),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    site.calls.ended(tenant, first).await.unwrap();
    let acw = state_becomes(&mut ann_desk, "after_call_work").await;
    assert!(acw["to"]["until"].is_string(), "{acw}");

    // Call 2: "2" → support → Bob declines; it waits first in line, and
    // is offered again when Bob is back.
    let (_, second, _) = accepted(site.dial(NUMBER).await);
    let step = site
        .calls
        .report(tenant, second, switchboard_flows::Input::Digits("2".into()))
        .await
        .unwrap();
    assert!(
        matches!(step, Step::Queued { position: None, .. }),
        "{step:?}"
    );
    let offer = frame_of(&mut bob_desk, "offer").await;
    assert_eq!(offer["offer"]["contact_id"], second.to_string());
    let (status, me) = site
        .post(
            &format!("/v1/agents/me/offers/{second}/decline"),
            Some(&bob),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        me["state"],
        json!({"state": "not_ready", "reason": "declined"})
    );
    let (status, stats) = site
        .call(Method::GET, "/v1/queues/stats", Some(&owner), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    let support_stats = stats["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|queue| queue["queue_id"] == support)
        .unwrap()
        .clone();
    assert_eq!(support_stats["waiting"], 1, "{support_stats}");
    assert_eq!(support_stats["agents"]["not_ready"], 1, "{support_stats}");
    site.presence(&bob, json!({"presence": "available"})).await;
    let offer = frame_of(&mut bob_desk, "offer").await;
    assert_eq!(offer["offer"]["contact_id"], second.to_string());
    let (status, _) = site
        .post(
            &format!("/v1/agents/me/offers/{second}/accept"),
            Some(&bob),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    site.calls.ended(tenant, second).await.unwrap();

    // Call 3: nobody for sales (Ann at lunch); the caller waits first in
    // line, then hangs up.
    let (status, problem) = site
        .call(
            Method::PUT,
            "/v1/agents/me/presence",
            Some(&ann),
            Some(json!({"presence": "not_ready", "reason": "lunch"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "not a reason code yet: {problem}"
    );
    assert_eq!(problem["errors"][0]["field"], "reason");
    site.create("/v1/reason-codes", &owner, json!({"name": "lunch"}))
        .await;
    site.presence(&ann, json!({"presence": "not_ready", "reason": "lunch"}))
        .await;
    let (_, third, _) = accepted(site.dial(NUMBER).await);
    let step = site
        .calls
        .report(tenant, third, switchboard_flows::Input::Digits("1".into()))
        .await
        .unwrap();
    assert!(
        matches!(
            step,
            Step::Queued {
                position: Some(1),
                ..
            }
        ),
        "{step:?}"
    );
    site.calls.abandoned(tenant, third).await.unwrap();
    // A report on a finished call: unknown.
    assert!(
        site.calls
            .report(tenant, third, switchboard_flows::Input::NoInput)
            .await
            .is_err()
    );

    // Call 4: still nobody for sales. The caller hears its place, then
    // takes a callback, keeping it; Ann, back from lunch, gets it with the
    // number to call.
    let (_, fourth, _) = accepted(site.dial(NUMBER).await);
    let step = site
        .calls
        .report(tenant, fourth, switchboard_flows::Input::Digits("1".into()))
        .await
        .unwrap();
    assert!(
        matches!(
            step,
            Step::Queued {
                position: Some(1),
                ..
            }
        ),
        "{step:?}"
    );
    let status = site.calls.queue_status(tenant, fourth).await.unwrap();
    assert_eq!((status.position, status.ringing), (Some(1), false));
    assert!(
        site.calls
            .request_callback(tenant, fourth, "06 12 34 56 78")
            .await
            .is_err(),
        "not E.164"
    );
    site.calls
        .request_callback(tenant, fourth, "+33612345678")
        .await
        .unwrap();
    site.presence(&ann, json!({"presence": "available"})).await;
    let offer = frame_of(&mut ann_desk, "offer").await;
    assert_eq!(offer["offer"]["contact_id"], fourth.to_string());
    assert_eq!(offer["offer"]["callback_number"], "+33612345678");
    let (status, _) = site
        .post(
            &format!("/v1/agents/me/offers/{fourth}/accept"),
            Some(&ann),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        site.calls
            .request_callback(tenant, fourth, "+33612345678")
            .await
            .is_err(),
        "too late: an agent has it"
    );
    site.calls.ended(tenant, fourth).await.unwrap();

    // The same through the edge's gRPC API: "2" → support → Bob's phone
    // rings; the caller hangs up first.
    let (mut edge, credentials) = site.edge().await;
    let system = CallContext::system();
    let ours = CallContext::tenant(Tenant::whole(tenant));
    let theirs = CallContext::tenant(Tenant::whole(TenantId::new()));

    // Without a service credential, or with one of another key, nothing
    // is routed.
    let stranger = Credentials::new(
        switchboard_test_utils::service_keys("internal-test"),
        "edge",
    );
    for request in [
        tonic::Request::new(pb::NewCallRequest {
            number: NUMBER.into(),
            ..Default::default()
        }),
        stranger
            .request(
                pb::NewCallRequest {
                    number: NUMBER.into(),
                    ..Default::default()
                },
                &system,
            )
            .unwrap(),
    ] {
        let refused = edge.new_call(request).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    }

    let decision = edge
        .new_call(signed(
            &credentials,
            &system,
            pb::NewCallRequest {
                number: NUMBER.into(),
                caller: "+33698765432".into(),
                trunk: "carrier-1".into(),
                attributes_json: r#"{"vip": true}"#.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let Some(pb::new_call_response::Decision::Accepted(taken)) = decision.decision else {
        panic!("{decision:?}")
    };
    assert_eq!(taken.tenant_id, tenant.to_string());
    assert!(matches!(
        taken.step.unwrap().action,
        Some(pb::step::Action::Collect(pb::Collect { max_length: 1, .. }))
    ));
    let call = pb::CallRef {
        call_id: taken.call_id.clone(),
    };
    let report = |digits: &str| pb::ReportResultRequest {
        call: Some(call.clone()),
        result: Some(pb::report_result_request::Result::Digits(digits.into())),
    };
    let bad = edge
        .report_result(signed(&credentials, &ours, report("1; DROP")))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");
    // The call's tenant is the credential's: without one, unauthenticated;
    // with another tenant's, not found; either way the call stays where
    // it is.
    let refused = edge
        .report_result(signed(&credentials, &system, report("2")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    let refused = edge
        .report_result(tonic::Request::new(report("2")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    let refused = edge
        .report_result(signed(&credentials, &theirs, report("2")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
    // Abandoning a call the tenant does not have is a no-op there (the
    // edge may repeat it); the call below goes on untouched.
    edge.call_abandoned(signed(&credentials, &theirs, call.clone()))
        .await
        .unwrap();
    let step = edge
        .report_result(signed(&credentials, &ours, report("2")))
        .await
        .unwrap()
        .into_inner();
    let Some(pb::step::Action::Queued(queued)) = step.step.unwrap().action else {
        panic!("not queued")
    };
    assert_eq!(queued.queue_id, support);
    assert_eq!(queued.position, 0, "it rings at once");
    assert_eq!(
        frame_of(&mut bob_desk, "offer").await["offer"]["contact_id"],
        taken.call_id
    );
    for refused in [
        edge.queue_status(signed(&credentials, &theirs, call.clone()))
            .await
            .unwrap_err(),
        edge.request_callback(signed(
            &credentials,
            &theirs,
            pb::RequestCallbackRequest {
                call: Some(call.clone()),
                number: "+33612345678".into(),
            },
        ))
        .await
        .unwrap_err(),
        edge.call_ended(signed(&credentials, &theirs, call.clone()))
            .await
            .unwrap_err(),
    ] {
        assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
    }
    let still = edge
        .queue_status(signed(&credentials, &ours, call.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(still.ringing, "another tenant's calls changed nothing");
    edge.call_abandoned(signed(&credentials, &ours, call.clone()))
        .await
        .unwrap();
    assert_eq!(
        frame_of(&mut bob_desk, "offer_withdrawn").await["offer"]["contact_id"],
        taken.call_id
    );
    // Gone from the queue: no status, no callback.
    let status = edge
        .queue_status(signed(&credentials, &ours, call.clone()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    let status = edge
        .request_callback(signed(
            &credentials,
            &ours,
            pb::RequestCallbackRequest {
                call: Some(call.clone()),
                number: "not a number".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    // Unknown or another tenant's calls, garbage ids: not found.
    for (context, call_id) in [
        (&ours, ContactId::new().to_string()),
        (&theirs, taken.call_id.clone()),
        (&ours, "garbage".to_owned()),
    ] {
        let status = edge
            .report_result(signed(
                &credentials,
                context,
                pb::ReportResultRequest {
                    call: Some(pb::CallRef { call_id }),
                    result: Some(pb::report_result_request::Result::NoInput(())),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    }
    let rejected = edge
        .new_call(signed(
            &credentials,
            &system,
            pb::NewCallRequest {
                number: "+33199999999".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        matches!(
            rejected.decision,
            Some(pb::new_call_response::Decision::Reject(pb::Reject {
                sip_status: 404,
                ..
            }))
        ),
        "{rejected:?}"
    );
    // A trunk of another tenant cannot reach this tenant's number: it is
    // as unknown as a number nobody holds.
    let foreign = edge
        .new_call(signed(
            &credentials,
            &system,
            pb::NewCallRequest {
                number: NUMBER.into(),
                admitted_tenant_ids: vec![TenantId::new().to_string()],
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        matches!(
            foreign.decision,
            Some(pb::new_call_response::Decision::Reject(pb::Reject {
                sip_status: 404,
                ..
            }))
        ),
        "{foreign:?}"
    );
    // The edge says the tenant is at a call limit: nothing starts, and the
    // answer names the tenant (the edge answers the carrier 503).
    let waiting = || async {
        let (status, body) = site
            .call(Method::GET, "/v1/queues/stats", Some(&owner), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        waiting_counts(&body)
    };
    let before = waiting().await;
    assert!(
        !before.is_empty(),
        "the stats name each queue's waiting calls"
    );
    let limited = edge
        .new_call(signed(
            &credentials,
            &system,
            pb::NewCallRequest {
                number: NUMBER.into(),
                admitted_tenant_ids: vec![tenant.to_string(), TenantId::new().to_string()],
                over_limit_tenant_ids: vec![tenant.to_string()],
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        limited.decision,
        Some(pb::new_call_response::Decision::OverLimit(pb::OverLimit {
            tenant_id: tenant.to_string()
        }))
    );
    assert_eq!(waiting().await, before, "nothing was queued");
    let status = edge
        .new_call(signed(
            &credentials,
            &system,
            pb::NewCallRequest {
                number: NUMBER.into(),
                over_limit_tenant_ids: vec!["not-a-tenant".into()],
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let status = edge
        .new_call(signed(
            &credentials,
            &system,
            pb::NewCallRequest {
                number: "+33199999999".into(),
                admitted_tenant_ids: vec!["not-a-tenant".into()],
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let status = edge
        .new_call(signed(
            &credentials,
            &system,
            pb::NewCallRequest {
                number: NUMBER.into(),
                attributes_json: "[not an object".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);

    // Support gets a maximum wait of 1 s, then voicemail; Bob is away.
    let (status, body) = site
        .call(
            Method::PUT,
            &format!("/v1/queues/{support}"),
            Some(&owner),
            Some(json!({"name": "Support", "channel": "voice",
                   "required_skills": [{"skill_id": support_skill, "min_proficiency": 3}],
                   "max_wait": {"seconds": 1, "overflow": {"type": "voicemail", "box_id": voicemail}}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    site.presence(&bob, json!({"presence": "not_ready", "reason": "lunch"}))
        .await;
    let (_, waiting, _) = accepted(site.dial(NUMBER).await);
    let step = site
        .calls
        .report(
            tenant,
            waiting,
            switchboard_flows::Input::Digits("2".into()),
        )
        .await
        .unwrap();
    assert!(
        matches!(
            step,
            Step::Queued {
                position: Some(1),
                status_every_seconds: Some(1),
                ..
            }
        ),
        "{step:?}"
    );
    let status = site.calls.queue_status(tenant, waiting).await.unwrap();
    assert_eq!((status.position, status.next_step), (Some(1), None));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let status = site.calls.queue_status(tenant, waiting).await.unwrap();
    assert_eq!(
        status.next_step,
        Some(Step::Voicemail {
            box_id: voicemail.parse().unwrap(),
            prompt: None
        })
    );
    assert!(
        site.calls.queue_status(tenant, waiting).await.is_err(),
        "it left the queue"
    );

    // A supervisor closes the line: calls go to voicemail until reopened.
    let (status, body) = site
        .post(
            &format!("/v1/inbound-rules/{rule}/forced-mode"),
            Some(&owner),
            json!({"mode": "closed", "reason": "storm"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, _, step) = accepted(site.dial(NUMBER).await);
    assert_eq!(
        step,
        Step::Voicemail {
            box_id: voicemail.parse().unwrap(),
            prompt: None
        }
    );

    // Numbers nobody holds, or not numbers: SIP rejections, not crashes.
    assert!(matches!(
        site.dial("+33199999999").await,
        CallDecision::Reject {
            sip_status: 404,
            ..
        }
    ));
    assert!(matches!(
        site.dial("0140000123").await,
        CallDecision::Reject {
            sip_status: 484,
            ..
        }
    ));

    // Today's figures per queue: sales answered two calls (within 20 s)
    // and lost one short abandon, which does not count against it.
    let (_, stats) = site
        .call(Method::GET, "/v1/queues/stats", Some(&owner), None)
        .await;
    let sales_stats = stats["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|queue| queue["queue_id"] == sales)
        .unwrap()
        .clone();
    assert_eq!(sales_stats["today"]["entered"], 3, "{sales_stats}");
    assert_eq!(sales_stats["today"]["answered"], 2, "{sales_stats}");
    assert_eq!(sales_stats["today"]["abandoned_within_threshold"], 1);
    assert_eq!(sales_stats["today"]["handled"], 2);
    assert_eq!(sales_stats["service_level"], 1.0);
    assert!(
        sales_stats["today"]["average_handle_time_seconds"]
            .as_f64()
            .unwrap()
            >= 30.0
    );

    // An outsourcer's client sees its own queue's figures only.
    let client = site
        .create("/v1/clients", &owner, json!({"name": "Globex"}))
        .await;
    let globex = site
        .create(
            "/v1/queues",
            &owner,
            json!({"name": "Globex line", "channel": "voice", "client_id": client}),
        )
        .await;
    site.create(
        "/v1/users",
        &owner,
        json!({"email": "lead@globex.example.com", "roles": ["supervisor"],
               "password": PASSWORD, "clients": [client]}),
    )
    .await;
    let (status, login) = site
        .post(
            "/v1/auth/login",
            None,
            json!({"tenant": company.slug, "email": "lead@globex.example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let lead = login["access_token"].as_str().unwrap();
    let (status, theirs) = site
        .call(Method::GET, "/v1/queues/stats", Some(lead), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{theirs}");
    let ids: Vec<&str> = theirs["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|queue| queue["queue_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [globex.as_str()]);
    let (_, all) = site
        .call(Method::GET, "/v1/queues/stats", Some(&owner), None)
        .await;
    assert_eq!(all["queues"].as_array().unwrap().len(), 3);

    // Every step is in the outbox, once.
    let wanted = |events: &[Event]| {
        let count = |kind: &str| events.iter().filter(|e| e.event_type == kind).count();
        (
            count("contact.queued"),
            count("contact.offered"),
            count("contact.requeued"),
            count("contact.connected"),
            count("contact.abandoned"),
            count("contact.ended"),
            count("contact.overflowed"),
        )
    };
    assert!(
        eventually(Duration::from_secs(5), || async {
            wanted(&site.routing_events(tenant).await) == (6, 5, 1, 3, 2, 3, 1)
        })
        .await,
        "routing events: {:?}",
        wanted(&site.routing_events(tenant).await)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_a_contact_center_routes_calls_end_to_end() {
    tokio::time::timeout(
        Duration::from_secs(120),
        a_contact_center_routes_calls_end_to_end(Site::start(false).await),
    )
    .await
    .expect("timed out");
}

/// The same, with the gateway reaching the routing configuration over gRPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_a_contact_center_routes_calls_end_to_end() {
    tokio::time::timeout(
        Duration::from_secs(120),
        a_contact_center_routes_calls_end_to_end(Site::start_with(SiteOptions::remote()).await),
    )
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_a_contact_center_routes_calls_end_to_end() {
    tokio::time::timeout(
        Duration::from_secs(120),
        a_contact_center_routes_calls_end_to_end(Site::start(true).await),
    )
    .await
    .expect("timed out");
}

/// One queue open around the clock, one agent on the desktop, a number:
/// (queue id, agent token, desktop).
async fn one_line(site: &Site, company: &Company, number: &str) -> (String, String, Socket) {
    let owner = &company.owner;
    let queue = site
        .create(
            "/v1/queues",
            owner,
            json!({"name": "Line", "channel": "voice", "ring_timeout_seconds": 20}),
        )
        .await;
    let rule = site
        .create(
            "/v1/inbound-rules",
            owner,
            json!({"name": "Line", "open": {"type": "queue", "queue_id": queue},
                   "closed": {"type": "hangup"}}),
        )
        .await;
    site.create(
        "/v1/numbers",
        owner,
        json!({"number": number, "inbound_rule_id": rule}),
    )
    .await;
    let (agent_id, agent) = site.agent(company, "agent").await;
    let (status, body) = site
        .call(
            Method::PUT,
            &format!("/v1/agent-profiles/{agent_id}"),
            Some(owner),
            Some(json!({"capacity": {"voice": 1}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut desk = site.socket(&agent).await;
    assert_eq!(frame(&mut desk).await["type"], "snapshot");
    site.presence(&agent, json!({"presence": "available"}))
        .await;
    state_becomes(&mut desk, "available").await;
    (queue, agent, desk)
}

/// Queue ids of a `/v1/queues/stats` body or stream frame.
fn queue_ids(stats: &Value) -> Vec<String> {
    stats["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|queue| queue["queue_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Two tenants on one site: one's calls, offers and figures never reach
/// the other's desktops and supervisors, and its call ids mean nothing
/// there.
async fn tenants_never_see_each_others_calls(site: Site) {
    let acme = site.company("Acme", "acme.example.com").await;
    let globex = site.company("Globex", "globex.example.com").await;
    let (acme_queue, acme_agent, mut acme_desk) = one_line(&site, &acme, "+33140000201").await;
    let (globex_queue, globex_agent, mut globex_desk) =
        one_line(&site, &globex, "+33140000202").await;
    let mut globex_figures = site.stream("/v1/queues/stats/stream", &globex.owner).await;
    let first = frame(&mut globex_figures).await;
    assert_eq!(queue_ids(&first), [globex_queue.as_str()], "{first}");

    // A call to Acme rings Acme's agent.
    let (tenant, call, step) = accepted(site.dial("+33140000201").await);
    assert_eq!(tenant, acme.tenant);
    assert!(matches!(step, Step::Queued { .. }), "{step:?}");
    let offer = frame_of(&mut acme_desk, "offer").await;
    assert_eq!(offer["offer"]["contact_id"], call.to_string());

    // Globex's agent cannot touch it, nor can Globex's side of the call API.
    for action in ["accept", "decline"] {
        let (status, problem) = site
            .post(
                &format!("/v1/agents/me/offers/{call}/{action}"),
                Some(&globex_agent),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{action}: {problem}");
    }
    assert!(
        site.calls
            .report(globex.tenant, call, switchboard_flows::Input::NoInput)
            .await
            .is_err()
    );
    assert!(site.calls.ended(globex.tenant, call).await.is_err());
    let (status, problem) = site
        .call(
            Method::GET,
            &format!("/v1/queues/{acme_queue}"),
            Some(&globex.owner),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");

    // Globex's desktop and figures only ever carry Globex: its agent's own
    // state changes come through, and nothing of Acme's before them.
    site.presence(&globex_agent, json!({"presence": "offline"}))
        .await;
    site.presence(&globex_agent, json!({"presence": "available"}))
        .await;
    let mut seen = Vec::new();
    loop {
        let next = frame(&mut globex_desk).await;
        seen.push(next.clone());
        if next["type"] == "state" && next["to"]["state"] == "available" {
            break;
        }
    }
    for frame in &seen {
        assert_ne!(frame["type"], "offer", "{frame}");
        let text = frame.to_string();
        assert!(!text.contains(&call.to_string()), "{text}");
        assert!(!text.contains(&acme_queue), "{text}");
    }
    let (status, stats) = site
        .call(Method::GET, "/v1/queues/stats", Some(&globex.owner), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(queue_ids(&stats), [globex_queue.as_str()]);
    assert_eq!(stats["queues"][0]["today"]["entered"], 0, "{stats}");
    // The figures stream pushes Globex's change, and only Globex's queue.
    let next = frame(&mut globex_figures).await;
    assert_eq!(queue_ids(&next), [globex_queue.as_str()], "{next}");

    // Acme's agent takes the call; Acme's figures count it.
    let (status, me) = site
        .post(
            &format!("/v1/agents/me/offers/{call}/accept"),
            Some(&acme_agent),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let (_, stats) = site
        .call(Method::GET, "/v1/queues/stats", Some(&acme.owner), None)
        .await;
    assert_eq!(queue_ids(&stats), [acme_queue]);
    assert_eq!(stats["queues"][0]["today"]["entered"], 1, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_tenants_never_see_each_others_calls() {
    tokio::time::timeout(
        Duration::from_secs(60),
        tenants_never_see_each_others_calls(Site::start(false).await),
    )
    .await
    .expect("timed out");
}

/// The same, with the gateway reaching the routing configuration over gRPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_tenants_never_see_each_others_calls() {
    tokio::time::timeout(
        Duration::from_secs(60),
        tenants_never_see_each_others_calls(Site::start_with(SiteOptions::remote()).await),
    )
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_tenants_never_see_each_others_calls() {
    tokio::time::timeout(
        Duration::from_secs(60),
        tenants_never_see_each_others_calls(Site::start(true).await),
    )
    .await
    .expect("timed out");
}

/// `message` with the edge's credential for `context`.
fn signed<T>(credentials: &Credentials, context: &CallContext, message: T) -> tonic::Request<T> {
    credentials.request(message, context).unwrap()
}

/// Every `waiting` figure in a JSON document, in document order.
fn waiting_counts(value: &serde_json::Value) -> Vec<serde_json::Value> {
    match value {
        serde_json::Value::Object(fields) => fields
            .iter()
            .flat_map(|(name, field)| {
                if name == "waiting" {
                    vec![field.clone()]
                } else {
                    waiting_counts(field)
                }
            })
            .collect(),
        serde_json::Value::Array(items) => items.iter().flat_map(waiting_counts).collect(),
        _ => Vec::new(),
    }
}

/// Agents' outbound calls by the tenant's outbound rules, as the edge asks
/// routing (in process and over the edge's gRPC API): the rule of the
/// agent's group picks the trunks (round robin turns them) and the caller
/// id; the agent is busy with the call until it ends, so a second one is
/// refused busy; a user without a rule, a user who is not an agent, a
/// number that is not E.164, and another tenant's credential are refused;
/// so is the agent once demoted or disabled.
async fn outbound_calls_follow_the_tenants_rules(site: Site) {
    use switchboard_routing::calls::{OutboundCall, OutboundDecision};
    let company = site.company("Dialers", "dialers.example.com").await;
    let (owner, tenant) = (company.owner.clone(), company.tenant);
    let (ann_id, ann) = site.agent(&company, "ann").await;
    let (bob_id, _) = site.agent(&company, "bob").await;
    let (carol_id, _) = site.agent(&company, "carol").await;
    let group = site
        .create("/v1/agent-groups", &owner, json!({"name": "Outbound"}))
        .await;
    for (id, groups) in [(&ann_id, json!([group])), (&bob_id, json!([]))] {
        let (status, body) = site
            .call(
                Method::PUT,
                &format!("/v1/agent-profiles/{id}"),
                Some(&owner),
                Some(json!({"capacity": {"voice": 1}, "agent_group_ids": groups})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let rule = site
        .create(
            "/v1/inbound-rules",
            &owner,
            json!({"name": "Closed", "open": {"type": "hangup"}, "closed": {"type": "hangup"}}),
        )
        .await;
    let number = site
        .create(
            "/v1/numbers",
            &owner,
            json!({"number": NUMBER, "inbound_rule_id": rule}),
        )
        .await;
    site.create(
        "/v1/outbound-rules",
        &owner,
        json!({"name": "Dial out", "agent_group_id": group, "trunks": ["first", "second"],
               "strategy": "round_robin", "caller_id": {"type": "group", "number_id": number}}),
    )
    .await;
    let mut desk = site.stream("/v1/agents/me/stream", &ann).await;
    site.presence(&ann, json!({"presence": "available"})).await;
    state_becomes(&mut desk, "available").await;

    let dial = |agent: &str, number: &str| OutboundCall {
        agent: agent.parse().unwrap(),
        number: number.into(),
        concerning_number: None,
    };
    let placed = |decision: OutboundDecision| match decision {
        OutboundDecision::Place {
            call,
            trunks,
            caller_id,
            ..
        } => (call, trunks, caller_id),
        other => panic!("refused: {other:?}"),
    };
    let refused = |decision: OutboundDecision| match decision {
        OutboundDecision::Reject { sip_status, reason } => (sip_status, reason),
        other => panic!("placed: {other:?}"),
    };
    let (call, trunks, caller_id) = placed(
        site.calls
            .outbound_call(tenant, dial(&ann_id, "+15550100"))
            .await,
    );
    assert_eq!(
        (trunks, caller_id.as_str()),
        (vec!["first".to_owned(), "second".to_owned()], NUMBER)
    );
    state_becomes(&mut desk, "busy").await;
    let (status, reason) = refused(
        site.calls
            .outbound_call(tenant, dial(&ann_id, "+15550101"))
            .await,
    );
    assert_eq!(status, 486, "{reason}");
    site.calls.ended(tenant, call).await.unwrap();
    state_becomes(&mut desk, "available").await;

    // The next call takes the rule's next turn.
    let (call, trunks, _) = placed(
        site.calls
            .outbound_call(tenant, dial(&ann_id, "+15550100"))
            .await,
    );
    assert_eq!(trunks, vec!["second".to_owned(), "first".to_owned()]);
    site.calls.ended(tenant, call).await.unwrap();

    for (agent, number, wanted) in [
        (&bob_id, "+15550100", 403),
        (&carol_id, "+15550100", 403),
        (&ann_id, "15550100-x", 484),
    ] {
        let (status, reason) = refused(site.calls.outbound_call(tenant, dial(agent, number)).await);
        assert_eq!(status, wanted, "{agent} dialing {number}: {reason}");
    }

    // Over the edge's gRPC API: the tenant is the credential's.
    let (mut edge, credentials) = site.edge().await;
    let request = pb::OutboundCallRequest {
        agent_id: ann_id.clone(),
        number: "+15550100".into(),
        concerning_number: String::new(),
    };
    let ours = CallContext::tenant(Tenant::whole(tenant));
    let theirs = CallContext::tenant(Tenant::whole(TenantId::new()));
    let unsigned = edge
        .outbound_call(tonic::Request::new(request.clone()))
        .await
        .unwrap_err();
    assert_eq!(unsigned.code(), tonic::Code::Unauthenticated);
    let bad = edge
        .outbound_call(signed(
            &credentials,
            &ours,
            pb::OutboundCallRequest {
                agent_id: "ann".into(),
                ..request.clone()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    let elsewhere = edge
        .outbound_call(signed(&credentials, &theirs, request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(
        matches!(
            elsewhere.decision,
            Some(pb::outbound_call_response::Decision::Reject(pb::Reject {
                sip_status: 403,
                ..
            }))
        ),
        "another tenant's credential finds no such agent: {elsewhere:?}"
    );
    let decision = edge
        .outbound_call(signed(&credentials, &ours, request))
        .await
        .unwrap()
        .into_inner();
    let Some(pb::outbound_call_response::Decision::Place(plan)) = decision.decision else {
        panic!("{decision:?}")
    };
    assert_eq!(plan.trunks, ["first", "second"]);
    assert_eq!(plan.caller_id, NUMBER);
    state_becomes(&mut desk, "busy").await;
    edge.call_ended(signed(
        &credentials,
        &ours,
        pb::CallRef {
            call_id: plan.call_id,
        },
    ))
    .await
    .unwrap();
    state_becomes(&mut desk, "available").await;

    // Rights follow the user: without the agent role, or disabled, the
    // phone's call is refused as soon as routing hears of the change.
    for (change, wanted) in [
        (json!({"roles": ["supervisor"]}), "no longer an agent"),
        (
            json!({"roles": ["agent"], "status": "disabled"}),
            "disabled",
        ),
    ] {
        let (status, body) = site
            .call(
                Method::PATCH,
                &format!("/v1/users/{ann_id}"),
                Some(&owner),
                Some(change.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{change}: {body}");
        let refused = eventually(Duration::from_secs(10), || async {
            matches!(
                site.calls
                    .outbound_call(tenant, dial(&ann_id, "+15550100"))
                    .await,
                OutboundDecision::Reject {
                    sip_status: 403,
                    ..
                }
            )
        })
        .await;
        assert!(refused, "an agent {wanted} still dials out");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_outbound_calls_follow_the_tenants_rules() {
    tokio::time::timeout(
        Duration::from_secs(120),
        outbound_calls_follow_the_tenants_rules(Site::start(false).await),
    )
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_outbound_calls_follow_the_tenants_rules() {
    tokio::time::timeout(
        Duration::from_secs(120),
        outbound_calls_follow_the_tenants_rules(Site::start(true).await),
    )
    .await
    .expect("timed out");
}
