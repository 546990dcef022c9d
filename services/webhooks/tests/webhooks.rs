//! Webhooks end to end against local HTTP receivers, on both backends:
//! PostgreSQL (as a role that neither owns the tables nor bypasses
//! row-level security) and SQLite. Events are fed to the intake handler
//! in a tenant transaction, as the `webhooks` consumer does, or through
//! the outbox, the relay and a consumer on the in-process bus.

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sea_orm::sea_query::{Alias, Asterisk, Expr, ExprTrait, Func, Query};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, TransactionTrait};
use serde_json::Value;
use sha2::Sha256;
use switchboard_events::proto::{self, envelope::Payload};
use switchboard_events::{Consumer, ConsumerOptions, Event, Relay, RelayOptions};
use switchboard_migrations::{Migrator, MigratorTrait};
use switchboard_platform::Database;
use switchboard_platform::bus::MemoryBus;
use switchboard_platform::database::DatabaseOptions;
use switchboard_tenancy::{Tenant, TenantId};
use switchboard_test_utils::{
    eventually, fresh_postgres_database, fresh_sqlite_database, init_tracing,
    postgres_app_role_url, postgres_system_role_url, unique_name,
};
use switchboard_webhooks::{
    DeliveryStatus, DeliveryView, EndpointId, EndpointPatch, EndpointStatus, EndpointWithSecret,
    NewEndpoint, Webhooks, WebhooksError, WebhooksOptions,
};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

/// Options for tests: local HTTP receivers allowed, retries in
/// milliseconds, no giving up.
fn options() -> WebhooksOptions {
    WebhooksOptions {
        allow_private_targets: true,
        allow_http: true,
        request_timeout: Duration::from_secs(5),
        retry_initial_delay: Duration::from_millis(5),
        retry_max_delay: Duration::from_millis(20),
        give_up_after: Duration::from_secs(3600),
        dispatch_interval: Duration::from_millis(20),
        max_in_flight: 16,
    }
}

/// The service on one backend, with the owner's connection for checks.
struct Harness {
    postgres: bool,
    webhooks: Webhooks,
    /// The service's connection (PostgreSQL: the non-owner app role).
    database: Database,
    /// The owner's connection.
    admin: Database,
    service_url: String,
    /// The system workers' role on PostgreSQL (the dispatcher's claims).
    system_url: String,
    _dir: Option<tempfile::TempDir>,
}

/// The services' pool at `service_url` with its system pool at
/// `system_url` (the same URL on SQLite).
async fn connect(service_url: &str, system_url: &str) -> Database {
    let options = DatabaseOptions::default();
    Database::connect(service_url, &options)
        .await
        .unwrap()
        .with_system(Database::connect(system_url, &options).await.unwrap())
        .unwrap()
}

impl Harness {
    async fn start(postgres: bool, options: WebhooksOptions) -> Self {
        init_tracing();
        let (admin_url, service_url, system_url, dir) = if postgres {
            let url = fresh_postgres_database().await;
            let admin = Database::connect(&url, &DatabaseOptions::default())
                .await
                .unwrap();
            Migrator::up(admin.connection(), None).await.unwrap();
            admin.close().await;
            let service = postgres_app_role_url(&url).await;
            let system = postgres_system_role_url(&url).await;
            (url, service, system, None)
        } else {
            let (url, dir) = fresh_sqlite_database();
            let admin = Database::connect(&url, &DatabaseOptions::default())
                .await
                .unwrap();
            Migrator::up(admin.connection(), None).await.unwrap();
            admin.close().await;
            (url.clone(), url.clone(), url, Some(dir))
        };
        let database = connect(&service_url, &system_url).await;
        let admin = Database::connect(&admin_url, &DatabaseOptions::default())
            .await
            .unwrap();
        let webhooks = Webhooks::new(database.clone(), options).unwrap();
        Self {
            postgres,
            webhooks,
            database,
            admin,
            service_url,
            system_url,
            _dir: dir,
        }
    }

    /// Another service instance on the same database (another replica).
    async fn replica(&self, options: WebhooksOptions) -> Webhooks {
        let database = connect(&self.service_url, &self.system_url).await;
        Webhooks::new(database, options).unwrap()
    }

    /// A tenant row (as signup makes one), written by the owner.
    async fn tenant(&self) -> TenantId {
        let id = TenantId::new();
        let now = chrono::Utc::now();
        let insert = Query::insert()
            .into_table(Alias::new("tenants"))
            .columns(
                [
                    "id",
                    "name",
                    "slug",
                    "time_zone",
                    "status",
                    "plan_code",
                    "created_at",
                    "updated_at",
                ]
                .map(Alias::new),
            )
            .values_panic([
                id.as_uuid().into(),
                "Test tenant".into(),
                unique_name("t").into(),
                "UTC".into(),
                "active".into(),
                "trial".into(),
                now.into(),
                now.into(),
            ])
            .to_owned();
        self.admin.connection().execute(&insert).await.unwrap();
        id
    }

    /// A transaction of the service confined to `tenant`, as a consumer
    /// opens one.
    async fn begin(&self, tenant: TenantId) -> DatabaseTransaction {
        let transaction = self.database.begin().await.unwrap();
        if self.postgres {
            transaction
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT set_config('app.tenant_id', $1, true)",
                    [tenant.to_string().into()],
                ))
                .await
                .unwrap();
        }
        transaction
    }

    /// Feeds `event` to the intake handler, as the consumer does.
    async fn feed(&self, event: &Event) {
        let transaction = self.begin(event.tenant).await;
        self.webhooks
            .intake()
            .handle(&transaction, event)
            .await
            .unwrap();
        transaction.commit().await.unwrap();
    }

    async fn endpoint(&self, tenant: TenantId, url: &str, types: &[&str]) -> EndpointWithSecret {
        self.webhooks
            .create_endpoint(
                &Tenant::whole(tenant),
                NewEndpoint {
                    url: url.to_owned(),
                    description: Some("test receiver".into()),
                    event_types: types.iter().map(|t| t.to_string()).collect(),
                },
            )
            .await
            .unwrap()
    }

    async fn deliveries(&self, tenant: TenantId, endpoint: EndpointId) -> Vec<DeliveryView> {
        self.webhooks
            .list_deliveries(&Tenant::whole(tenant), endpoint, None, 100)
            .await
            .unwrap()
    }

    /// Dispatches until `condition` holds.
    async fn dispatch_until<F, Fut>(&self, condition: F) -> bool
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        eventually(WAIT, || async {
            self.webhooks.dispatch_due().await.unwrap();
            condition().await
        })
        .await
    }

    /// Rows of `table` matching `column = value` for each pair, counted
    /// by the owner.
    async fn count(&self, table: &str, filters: &[(&str, sea_orm::Value)]) -> i64 {
        let mut select = Query::select();
        select
            .expr_as(Func::count(Expr::col(Asterisk)), Alias::new("n"))
            .from(Alias::new(table));
        for (column, value) in filters {
            select.and_where(Expr::col(Alias::new(*column)).eq(value.clone()));
        }
        let row = self
            .admin
            .connection()
            .query_one(&select)
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    }
}

fn user_created(tenant: TenantId, email: &str) -> Event {
    Event::new(
        tenant,
        "identity",
        Payload::UserCreated(proto::UserCreated {
            user: Some(proto::User {
                user_id: uuid::Uuid::now_v7().to_string(),
                email: email.to_owned(),
                display_name: "Someone".into(),
                roles: vec!["agent".into()],
                status: "active".into(),
                all_clients: true,
                client_ids: Vec::new(),
            }),
        }),
    )
}

fn user_deleted(tenant: TenantId) -> Event {
    Event::new(
        tenant,
        "identity",
        Payload::UserDeleted(proto::UserDeleted {
            user_id: uuid::Uuid::now_v7().to_string(),
        }),
    )
}

// ---- local receivers ----

/// What a receiver answers to its next request.
#[derive(Debug, Clone, Copy)]
enum Reply {
    Status(u16),
    /// Answers 200 after this long (past the client's timeout).
    Stall(Duration),
}

#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: String,
}

#[derive(Default)]
struct Script {
    received: Vec<Received>,
    replies: VecDeque<Reply>,
    /// Once `replies` is used up.
    otherwise: Option<u16>,
}

/// An HTTP server on an ephemeral port that records every request and
/// answers from a script.
#[derive(Clone)]
struct Receiver {
    url: String,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    async fn start(replies: &[Reply], otherwise: u16) -> Self {
        let script = Arc::new(Mutex::new(Script {
            received: Vec::new(),
            replies: replies.iter().copied().collect(),
            otherwise: Some(otherwise),
        }));
        let router = Router::new().fallback(receive).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self {
            url: format!("http://{addr}/hooks/switchboard"),
            script,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }

    fn count(&self) -> usize {
        self.script.lock().unwrap().received.len()
    }
}

async fn receive(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let reply = {
        let mut script = script.lock().unwrap();
        script.received.push(Received { headers, body });
        script
            .replies
            .pop_front()
            .unwrap_or(Reply::Status(script.otherwise.unwrap_or(200)))
    };
    match reply {
        Reply::Status(code) => StatusCode::from_u16(code).unwrap(),
        Reply::Stall(delay) => {
            tokio::time::sleep(delay).await;
            StatusCode::OK
        }
    }
}

/// A TCP server that accepts connections and closes them at once.
async fn closing_server() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (format!("http://{addr}/hook"), accepted)
}

fn header<'a>(received: &'a Received, name: &str) -> &'a str {
    received
        .headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// Checks a request as a Standard Webhooks receiver would.
fn verify(received: &Received, secret: &str) {
    let id = header(received, "webhook-id");
    let timestamp = header(received, "webhook-timestamp");
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{}", received.body).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    assert_eq!(header(received, "webhook-signature"), expected);
    let sent_at: i64 = timestamp.parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - sent_at).abs() < 60);
}

// ---- the tests ----

async fn deliveries_are_signed_and_each_tenant_gets_only_its_own_events(h: Harness) {
    let (acme, globex) = (h.tenant().await, h.tenant().await);
    let acme_receiver = Receiver::start(&[], 204).await;
    let globex_receiver = Receiver::start(&[], 200).await;
    let acme_endpoint = h
        .endpoint(acme, &acme_receiver.url, &["user.created"])
        .await;
    let globex_endpoint = h.endpoint(globex, &globex_receiver.url, &["*"]).await;
    assert!(acme_endpoint.secret.starts_with("whsec_"));
    assert_ne!(acme_endpoint.secret, globex_endpoint.secret);

    let acme_created = user_created(acme, "ada@acme.example.com");
    let globex_created = user_created(globex, "grace@globex.example.com");
    let globex_deleted = user_deleted(globex);
    h.feed(&acme_created).await;
    h.feed(&user_deleted(acme)).await; // not subscribed
    h.feed(&globex_created).await;
    h.feed(&globex_deleted).await;

    // The dispatcher as the binary runs it.
    let cancel = CancellationToken::new();
    let dispatcher = h.webhooks.spawn_dispatcher(cancel.clone());
    assert!(
        eventually(WAIT, || async {
            acme_receiver.count() >= 1 && globex_receiver.count() >= 2
        })
        .await
    );
    assert!(
        eventually(WAIT, || async {
            h.deliveries(globex, globex_endpoint.endpoint.id)
                .await
                .iter()
                .all(|d| d.status == DeliveryStatus::Succeeded)
        })
        .await
    );
    cancel.cancel();
    dispatcher.await.unwrap();

    let acme_requests = acme_receiver.received();
    assert_eq!(acme_requests.len(), 1, "only acme's user.created");
    let request = &acme_requests[0];
    verify(request, &acme_endpoint.secret);
    assert_eq!(header(request, "webhook-id"), acme_created.id.to_string());
    assert_eq!(
        header(request, "webhook-key-id"),
        acme_endpoint.endpoint.key_id
    );
    assert!(header(request, "webhook-key-id").starts_with("whk_"));
    assert_eq!(header(request, "content-type"), "application/json");
    assert_eq!(header(request, "user-agent"), "Switchboard-Webhooks/1");
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body, acme_created.to_json());
    assert_eq!(body["type"], "user.created");
    assert_eq!(body["tenant_id"], acme.to_string());
    assert_eq!(body["data"]["user"]["email"], "ada@acme.example.com");

    let globex_requests = globex_receiver.received();
    assert_eq!(globex_requests.len(), 2);
    let ids: BTreeSet<_> = globex_requests
        .iter()
        .map(|request| {
            verify(request, &globex_endpoint.secret);
            let body: Value = serde_json::from_str(&request.body).unwrap();
            assert_eq!(body["tenant_id"], globex.to_string());
            header(request, "webhook-id").to_owned()
        })
        .collect();
    assert_eq!(
        ids,
        BTreeSet::from([globex_created.id.to_string(), globex_deleted.id.to_string()])
    );

    // The delivery as listed: succeeded, one 2xx attempt, the body sent.
    let deliveries = h.deliveries(acme, acme_endpoint.endpoint.id).await;
    assert_eq!(deliveries.len(), 1);
    let delivery = &deliveries[0];
    assert_eq!(delivery.status, DeliveryStatus::Succeeded);
    assert_eq!(delivery.event_id, acme_created.id);
    assert_eq!(delivery.payload, acme_created.to_json());
    assert_eq!(delivery.attempts.len(), 1);
    assert_eq!(delivery.attempts[0].status_code, Some(204));
    assert!(delivery.delivered_at.is_some());
}

async fn another_tenants_endpoints_and_deliveries_are_not_found(h: Harness) {
    let (acme, globex) = (h.tenant().await, h.tenant().await);
    let receiver = Receiver::start(&[], 200).await;
    let endpoint = h.endpoint(acme, &receiver.url, &["*"]).await.endpoint;
    h.feed(&user_created(acme, "a@acme.example.com")).await;
    let delivery = h.deliveries(acme, endpoint.id).await[0].id;

    let not_found = |result: Result<(), WebhooksError>| {
        assert!(
            matches!(result, Err(WebhooksError::NotFound(_))),
            "{result:?}"
        );
    };
    let w = &h.webhooks;
    not_found(
        w.get_endpoint(&Tenant::whole(globex), endpoint.id)
            .await
            .map(drop),
    );
    not_found(
        w.update_endpoint(
            &Tenant::whole(globex),
            endpoint.id,
            EndpointPatch {
                description: Some("mine now".into()),
                ..EndpointPatch::default()
            },
        )
        .await
        .map(drop),
    );
    not_found(
        w.list_deliveries(&Tenant::whole(globex), endpoint.id, None, 10)
            .await
            .map(drop),
    );
    not_found(
        w.resend_delivery(&Tenant::whole(globex), endpoint.id, delivery)
            .await
            .map(drop),
    );
    not_found(
        w.rotate_secret(&Tenant::whole(globex), endpoint.id)
            .await
            .map(drop),
    );
    not_found(w.delete_endpoint(&Tenant::whole(globex), endpoint.id).await);
    assert!(
        w.list_endpoints(&Tenant::whole(globex), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Still there, unchanged, for its own tenant.
    let unchanged = w
        .get_endpoint(&Tenant::whole(acme), endpoint.id)
        .await
        .unwrap();
    assert_eq!(unchanged.description, "test receiver");
    assert_eq!(h.deliveries(acme, endpoint.id).await.len(), 1);
}

async fn a_500_is_retried_until_a_2xx_and_both_attempts_are_listed(h: Harness) {
    let tenant = h.tenant().await;
    let receiver = Receiver::start(&[Reply::Status(500)], 200).await;
    let endpoint = h.endpoint(tenant, &receiver.url, &["user.created"]).await;
    let event = user_created(tenant, "a@example.com");
    h.feed(&event).await;
    assert!(h.dispatch_until(|| async { receiver.count() >= 2 }).await);

    let deliveries = h.deliveries(tenant, endpoint.endpoint.id).await;
    assert_eq!(deliveries.len(), 1);
    let delivery = &deliveries[0];
    assert_eq!(delivery.status, DeliveryStatus::Succeeded);
    let codes: Vec<_> = delivery.attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, vec![Some(500), Some(200)]);
    assert_eq!(
        delivery.attempts[0].error.as_deref(),
        Some("answered HTTP 500")
    );
    assert_eq!(delivery.attempts[1].error, None);
    // Both attempts carried the same id and body, each signed.
    let requests = receiver.received();
    for request in &requests {
        verify(request, &endpoint.secret);
        assert_eq!(header(request, "webhook-id"), event.id.to_string());
        assert_eq!(request.body, requests[0].body);
    }

    // A 2xx is final: more rounds send nothing.
    for _ in 0..3 {
        assert_eq!(h.webhooks.dispatch_due().await.unwrap(), 0);
    }
    assert_eq!(receiver.count(), 2);
}

async fn an_endpoint_that_times_out_is_retried(h: Harness) {
    let tenant = h.tenant().await;
    let receiver = Receiver::start(&[Reply::Stall(Duration::from_secs(10))], 200).await;
    let endpoint = h.endpoint(tenant, &receiver.url, &["*"]).await.endpoint;
    h.feed(&user_deleted(tenant)).await;
    assert!(
        h.dispatch_until(|| async {
            h.deliveries(tenant, endpoint.id).await[0].status == DeliveryStatus::Succeeded
        })
        .await
    );
    let delivery = &h.deliveries(tenant, endpoint.id).await[0];
    assert_eq!(delivery.attempts.len(), 2);
    let first = &delivery.attempts[0];
    assert_eq!(first.status_code, None);
    assert!(
        first.error.as_deref().unwrap().contains("timed out"),
        "{first:?}"
    );
    assert!(first.duration_ms >= 250, "{first:?}");
    assert_eq!(delivery.attempts[1].status_code, Some(200));
    assert_eq!(receiver.count(), 2);
}

async fn an_endpoint_that_closes_the_connection_is_retried(h: Harness) {
    let tenant = h.tenant().await;
    let (url, accepted) = closing_server().await;
    let endpoint = h.endpoint(tenant, &url, &["*"]).await.endpoint;
    h.feed(&user_deleted(tenant)).await;
    assert!(
        h.dispatch_until(|| async {
            h.deliveries(tenant, endpoint.id).await[0].attempts.len() >= 3
        })
        .await
    );
    let delivery = &h.deliveries(tenant, endpoint.id).await[0];
    assert_eq!(delivery.status, DeliveryStatus::Pending);
    assert!(delivery.next_attempt_at.is_some());
    for attempt in &delivery.attempts {
        assert_eq!(attempt.status_code, None);
        assert!(attempt.error.is_some(), "{attempt:?}");
    }
    assert!(accepted.load(Ordering::SeqCst) >= 3);
    assert!(delivery.last_error.is_some());
}

async fn an_audit_entry_between_services_is_never_delivered(h: Harness) {
    let tenant = h.tenant().await;
    let receiver = Receiver::start(&[], 200).await;
    let endpoint = h.endpoint(tenant, &receiver.url, &["*"]).await.endpoint;
    let audit = switchboard_events::AuditEntry::system(
        "routing.queue_created",
        "queue",
        Some(uuid::Uuid::now_v7()),
        serde_json::json!({}),
    )
    .event(tenant, "routing");
    h.feed(&audit).await;
    assert!(h.deliveries(tenant, endpoint.id).await.is_empty());
    // Nor can it be subscribed to.
    assert!(!switchboard_webhooks::EVENT_TYPES.contains(&"audit.recorded"));
    h.feed(&user_created(tenant, "public@example.com")).await;
    assert_eq!(h.deliveries(tenant, endpoint.id).await.len(), 1);
}

async fn a_redelivered_event_makes_no_second_delivery(h: Harness) {
    let tenant = h.tenant().await;
    let receiver = Receiver::start(&[], 200).await;
    let endpoint = h.endpoint(tenant, &receiver.url, &["*"]).await.endpoint;
    let event = user_created(tenant, "twice@example.com");
    h.feed(&event).await;
    h.feed(&event).await;
    assert_eq!(h.deliveries(tenant, endpoint.id).await.len(), 1);
    assert!(h.dispatch_until(|| async { receiver.count() >= 1 }).await);
    h.feed(&event).await;
    for _ in 0..3 {
        h.webhooks.dispatch_due().await.unwrap();
    }
    assert_eq!(receiver.count(), 1);
}

async fn persistent_failure_fails_the_delivery_disables_the_endpoint_and_tells_the_tenant(
    h: Harness,
) {
    let tenant = h.tenant().await;
    let receiver = Receiver::start(&[], 503).await;
    let endpoint = h.endpoint(tenant, &receiver.url, &["*"]).await.endpoint;
    h.feed(&user_created(tenant, "x@example.com")).await;
    assert!(
        h.dispatch_until(|| async {
            h.webhooks
                .get_endpoint(&Tenant::whole(tenant), endpoint.id)
                .await
                .unwrap()
                .status
                == EndpointStatus::Disabled
        })
        .await
    );
    let disabled = h
        .webhooks
        .get_endpoint(&Tenant::whole(tenant), endpoint.id)
        .await
        .unwrap();
    let reason = disabled.disabled_reason.unwrap();
    assert!(reason.contains("answered HTTP 503"), "{reason}");
    let delivery = &h.deliveries(tenant, endpoint.id).await[0];
    assert_eq!(delivery.status, DeliveryStatus::Failed);
    assert!(delivery.attempts.len() >= 2, "{delivery:?}");
    assert_eq!(delivery.next_attempt_at, None);

    // The tenant is told: a system audit entry for identity's audit log
    // and an event, both in the webhooks service's outbox (it writes no
    // other service's table).
    let select = Query::select()
        .column(Alias::new("payload"))
        .from(Alias::new("event_log"))
        .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant.as_uuid()))
        .and_where(Expr::col(Alias::new("event_type")).eq("audit.recorded"))
        .and_where(Expr::col(Alias::new("source")).eq("webhooks"))
        .to_owned();
    let rows = h.admin.connection().query_all(&select).await.unwrap();
    assert_eq!(rows.len(), 1);
    let bytes: Vec<u8> = rows[0].try_get("", "payload").unwrap();
    let Payload::AuditRecorded(message) = Event::decode(&bytes).unwrap().payload else {
        panic!("not an audit entry");
    };
    let entry = switchboard_events::AuditEntry::from_proto(&message).unwrap();
    assert_eq!(entry.action, "webhook.endpoint_disabled");
    assert_eq!(entry.actor_type, "system");
    assert_eq!(entry.actor_id, None);
    assert_eq!(entry.target_type, "webhook_endpoint");
    assert_eq!(entry.target_id, Some(endpoint.id.as_uuid()));
    assert!(
        entry.details["reason"]
            .as_str()
            .unwrap()
            .contains("answered HTTP 503"),
        "{entry:?}"
    );
    assert_eq!(
        h.count("audit_events", &[("tenant_id", tenant.as_uuid().into())])
            .await,
        0
    );
    assert_eq!(
        h.count(
            "event_log",
            &[
                ("tenant_id", tenant.as_uuid().into()),
                ("event_type", "webhook.endpoint_disabled".into()),
                ("source", "webhooks".into()),
            ]
        )
        .await,
        1
    );

    // A disabled endpoint gets no new deliveries, and no more attempts.
    let attempts = receiver.count();
    h.feed(&user_deleted(tenant)).await;
    for _ in 0..3 {
        h.webhooks.dispatch_due().await.unwrap();
    }
    assert_eq!(receiver.count(), attempts);
    assert_eq!(h.deliveries(tenant, endpoint.id).await.len(), 1);
    let resend = h
        .webhooks
        .resend_delivery(&Tenant::whole(tenant), endpoint.id, delivery.id)
        .await;
    assert!(
        matches!(
            resend,
            Err(WebhooksError::Conflict {
                code: "endpoint_disabled",
                ..
            })
        ),
        "{resend:?}"
    );

    // Re-enabled, it clears the failure; a resend then gets through.
    let enabled = h
        .webhooks
        .update_endpoint(
            &Tenant::whole(tenant),
            endpoint.id,
            EndpointPatch {
                status: Some("active".into()),
                ..EndpointPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(enabled.status, EndpointStatus::Active);
    assert_eq!(enabled.disabled_reason, None);
    receiver.script.lock().unwrap().otherwise = Some(200);
    let resent = h
        .webhooks
        .resend_delivery(&Tenant::whole(tenant), endpoint.id, delivery.id)
        .await
        .unwrap();
    assert_eq!(resent.status, DeliveryStatus::Pending);
    assert!(
        h.dispatch_until(|| async {
            h.deliveries(tenant, endpoint.id).await[0].status == DeliveryStatus::Succeeded
        })
        .await
    );
}

async fn a_410_gone_disables_the_endpoint_at_once(h: Harness) {
    let tenant = h.tenant().await;
    let receiver = Receiver::start(&[], 410).await;
    let endpoint = h.endpoint(tenant, &receiver.url, &["*"]).await.endpoint;
    h.feed(&user_deleted(tenant)).await;
    assert_eq!(h.webhooks.dispatch_due().await.unwrap(), 1);
    let disabled = h
        .webhooks
        .get_endpoint(&Tenant::whole(tenant), endpoint.id)
        .await
        .unwrap();
    assert_eq!(disabled.status, EndpointStatus::Disabled);
    assert!(disabled.disabled_reason.unwrap().contains("410 Gone"));
    let delivery = &h.deliveries(tenant, endpoint.id).await[0];
    assert_eq!(delivery.status, DeliveryStatus::Failed);
    assert_eq!(delivery.attempts.len(), 1);
    assert_eq!(receiver.count(), 1);
}

async fn a_resend_delivers_a_succeeded_delivery_again_with_the_same_id(h: Harness) {
    let tenant = h.tenant().await;
    let receiver = Receiver::start(&[], 200).await;
    let endpoint = h.endpoint(tenant, &receiver.url, &["*"]).await.endpoint;
    let event = user_created(tenant, "again@example.com");
    h.feed(&event).await;
    assert!(h.dispatch_until(|| async { receiver.count() == 1 }).await);
    let delivery = h.deliveries(tenant, endpoint.id).await[0].id;
    let resent = h
        .webhooks
        .resend_delivery(&Tenant::whole(tenant), endpoint.id, delivery)
        .await
        .unwrap();
    assert_eq!(resent.status, DeliveryStatus::Pending);
    assert_eq!(resent.delivered_at, None);
    assert!(h.dispatch_until(|| async { receiver.count() == 2 }).await);
    let requests = receiver.received();
    assert_eq!(
        header(&requests[1], "webhook-id"),
        header(&requests[0], "webhook-id")
    );
    let listed = &h.deliveries(tenant, endpoint.id).await[0];
    assert_eq!(listed.status, DeliveryStatus::Succeeded);
    assert_eq!(listed.attempts.len(), 2);
}

async fn two_dispatchers_never_send_a_delivery_twice(h: Harness) {
    let tenant = h.tenant().await;
    let receiver = Receiver::start(&[], 200).await;
    h.endpoint(tenant, &receiver.url, &["*"]).await;
    let mut options = options();
    options.max_in_flight = 4;
    let (first, second) = (
        h.replica(options.clone()).await,
        h.replica(options.clone()).await,
    );
    const EVENTS: usize = 30;
    for n in 0..EVENTS {
        h.feed(&user_created(tenant, &format!("u{n}@example.com")))
            .await;
    }
    let (a, b) = tokio::join!(first.dispatch_due(), second.dispatch_due());
    assert_eq!(a.unwrap() + b.unwrap(), EVENTS);
    let ids: BTreeSet<_> = receiver
        .received()
        .iter()
        .map(|request| header(request, "webhook-id").to_owned())
        .collect();
    assert_eq!(ids.len(), EVENTS);
    assert_eq!(receiver.count(), EVENTS);
}

async fn a_rotated_secret_signs_the_next_attempts(h: Harness) {
    let tenant = h.tenant().await;
    let receiver = Receiver::start(&[], 200).await;
    let created = h.endpoint(tenant, &receiver.url, &["*"]).await;
    let rotated = h
        .webhooks
        .rotate_secret(&Tenant::whole(tenant), created.endpoint.id)
        .await
        .unwrap();
    assert_ne!(rotated.secret, created.secret);
    assert_ne!(rotated.endpoint.key_id, created.endpoint.key_id);
    h.feed(&user_deleted(tenant)).await;
    assert!(h.dispatch_until(|| async { receiver.count() == 1 }).await);
    let request = &receiver.received()[0];
    verify(request, &rotated.secret);
    assert_eq!(header(request, "webhook-key-id"), rotated.endpoint.key_id);
}

/// The event path of the binary: an event appended to the outbox with a
/// state change, published by the relay on the in-process bus, applied by
/// the `webhooks` consumer, sent by the dispatcher.
async fn an_event_from_the_outbox_reaches_the_endpoint_through_the_bus(h: Harness) {
    let tenant = h.tenant().await;
    let receiver = Receiver::start(&[], 200).await;
    let endpoint = h.endpoint(tenant, &receiver.url, &["user.created"]).await;
    let bus = Arc::new(MemoryBus::new());
    let cancel = CancellationToken::new();
    let consumer = Consumer::new(
        h.database.clone(),
        bus.clone(),
        ConsumerOptions::new(switchboard_webhooks::CONSUMER_NAME, ["#"]),
        h.webhooks.intake(),
    );
    consumer.declare().await.unwrap();
    let consuming = consumer.spawn(cancel.clone());
    let relay = Relay::new(h.database.clone(), bus, RelayOptions::default());
    let dispatching = h.webhooks.spawn_dispatcher(cancel.clone());

    let event = user_created(tenant, "bus@example.com");
    let transaction = h.begin(tenant).await;
    switchboard_events::outbox::append(&transaction, std::slice::from_ref(&event))
        .await
        .unwrap();
    transaction.commit().await.unwrap();
    assert!(
        eventually(WAIT, || async {
            relay.run_once().await.unwrap();
            receiver.count() >= 1
        })
        .await
    );
    cancel.cancel();
    consuming.await.unwrap();
    dispatching.await.unwrap();
    let request = &receiver.received()[0];
    verify(request, &endpoint.secret);
    assert_eq!(header(request, "webhook-id"), event.id.to_string());
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body, event.to_json());
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    tokio::time::timeout(Duration::from_secs(120), super::$name(Harness::start(true, options()).await)).await.expect("timed out");
                }
            )*
        }
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    tokio::time::timeout(Duration::from_secs(120), super::$name(Harness::start(false, options()).await)).await.expect("timed out");
                }
            )*
        }
    };
}

on_both_backends!(
    deliveries_are_signed_and_each_tenant_gets_only_its_own_events,
    another_tenants_endpoints_and_deliveries_are_not_found,
    a_500_is_retried_until_a_2xx_and_both_attempts_are_listed,
    an_endpoint_that_closes_the_connection_is_retried,
    a_redelivered_event_makes_no_second_delivery,
    an_audit_entry_between_services_is_never_delivered,
    a_410_gone_disables_the_endpoint_at_once,
    a_resend_delivers_a_succeeded_delivery_again_with_the_same_id,
    two_dispatchers_never_send_a_delivery_twice,
    a_rotated_secret_signs_the_next_attempts,
    an_event_from_the_outbox_reaches_the_endpoint_through_the_bus,
);

/// Tests that need other options, on both backends.
macro_rules! on_both_backends_with {
    ($($name:ident => $options:expr),* $(,)?) => {
        mod postgres_with_options {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    tokio::time::timeout(Duration::from_secs(120), super::$name(Harness::start(true, $options).await)).await.expect("timed out");
                }
            )*
        }
        mod sqlite_with_options {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    tokio::time::timeout(Duration::from_secs(120), super::$name(Harness::start(false, $options).await)).await.expect("timed out");
                }
            )*
        }
    };
}

on_both_backends_with!(
    an_endpoint_that_times_out_is_retried => WebhooksOptions {
        request_timeout: Duration::from_millis(300),
        ..options()
    },
    persistent_failure_fails_the_delivery_disables_the_endpoint_and_tells_the_tenant => WebhooksOptions {
        give_up_after: Duration::from_millis(150),
        ..options()
    },
);

// ---- the SSRF guard ----

fn strict() -> WebhooksOptions {
    WebhooksOptions {
        allow_private_targets: false,
        allow_http: false,
        ..options()
    }
}

async fn refusal(webhooks: &Webhooks, tenant: TenantId, url: &str) -> String {
    let result = webhooks
        .create_endpoint(
            &Tenant::whole(tenant),
            NewEndpoint {
                url: url.to_owned(),
                description: None,
                event_types: vec!["*".into()],
            },
        )
        .await;
    match result {
        Err(WebhooksError::Validation(errors)) => {
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(errors[0].field, "url");
            errors[0].message.clone()
        }
        other => panic!("{url} should be refused, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_private_and_plain_http_targets_are_refused_unless_allowed() {
    let h = Harness::start(false, strict()).await;
    let tenant = h.tenant().await;
    for url in [
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://192.168.1.10/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://localhost/hook",
        // Local-use NAT64 (RFC 8215) and Teredo (RFC 4380), even when the
        // IPv4 address they carry is public.
        "https://[64:ff9b:1::808:808]/hook",
        "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",
    ] {
        let message = refusal(&h.webhooks, tenant, url).await;
        assert!(
            message.contains("public addresses only"),
            "{url}: {message}"
        );
    }
    assert_eq!(
        refusal(&h.webhooks, tenant, "http://10.0.0.1/hook").await,
        "must use https"
    );
    assert_eq!(
        refusal(&h.webhooks, tenant, "http://hooks.example.com/").await,
        "must use https"
    );
    assert!(
        h.webhooks
            .list_endpoints(&Tenant::whole(tenant), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // With the flags (as in the other tests), the same targets are fine.
    let lax = h.replica(options()).await;
    for url in ["http://127.0.0.1:9/hook", "https://localhost/hook"] {
        lax.create_endpoint(
            &Tenant::whole(tenant),
            NewEndpoint {
                url: url.into(),
                description: None,
                event_types: vec!["*".into()],
            },
        )
        .await
        .unwrap();
    }
}

/// A name that resolves to a private address at send time (DNS
/// rebinding, or a target registered while private targets were allowed)
/// is not connected to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_resolving_to_a_private_address_is_not_reached_at_send_time() {
    let h = Harness::start(false, options()).await;
    let tenant = h.tenant().await;
    let receiver = Receiver::start(&[], 200).await;
    let port = receiver.url.split(':').nth(2).unwrap();
    let by_name = format!("http://localhost:{port}");
    let endpoint = h.endpoint(tenant, &by_name, &["*"]).await.endpoint;
    h.feed(&user_deleted(tenant)).await;
    let guarded = h
        .replica(WebhooksOptions {
            allow_private_targets: false,
            ..options()
        })
        .await;
    assert_eq!(guarded.dispatch_due().await.unwrap(), 1);
    let delivery = &h.deliveries(tenant, endpoint.id).await[0];
    let error = delivery.attempts[0].error.as_deref().unwrap();
    assert!(error.contains("non-public"), "{error}");
    assert_eq!(receiver.count(), 0);
    assert_eq!(delivery.status, DeliveryStatus::Pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_event_types_and_bad_fields_are_named() {
    let h = Harness::start(false, options()).await;
    let tenant = h.tenant().await;
    let result = h
        .webhooks
        .create_endpoint(
            &Tenant::whole(tenant),
            NewEndpoint {
                url: "not a url".into(),
                description: Some("x".repeat(600)),
                event_types: vec!["user.exploded".into()],
            },
        )
        .await;
    let Err(WebhooksError::Validation(errors)) = result else {
        panic!("{result:?}")
    };
    let fields: BTreeSet<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        BTreeSet::from(["url", "description", "event_types"])
    );
    let result = h
        .webhooks
        .create_endpoint(
            &Tenant::whole(tenant),
            NewEndpoint {
                url: "http://127.0.0.1:9/".into(),
                description: None,
                event_types: vec![],
            },
        )
        .await;
    assert!(
        matches!(&result, Err(WebhooksError::Validation(errors)) if errors[0].field == "event_types"),
        "{result:?}"
    );
}

/// On PostgreSQL, row-level security confines a query that forgets its
/// tenant filter to the transaction's tenant, and setting `app.scope =
/// 'system'` widens nothing; only the system workers' role (the
/// dispatcher's claim) sees every tenant's rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rls_confines_webhook_rows_to_the_transaction_tenant() {
    let h = Harness::start(true, options()).await;
    let (acme, globex) = (h.tenant().await, h.tenant().await);
    for tenant in [acme, globex, globex] {
        h.endpoint(tenant, "http://127.0.0.1:9/hook", &["*"]).await;
        h.feed(&user_deleted(tenant)).await;
    }
    async fn unfiltered(transaction: &DatabaseTransaction) -> Vec<i64> {
        let mut counts = Vec::new();
        for table in ["webhook_endpoints", "webhook_deliveries"] {
            let row = transaction
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    format!("SELECT COUNT(*) AS n FROM {table}"),
                ))
                .await
                .unwrap()
                .unwrap();
            counts.push(row.try_get::<i64>("", "n").unwrap());
        }
        counts
    }
    let confined = h.begin(acme).await;
    assert_eq!(unfiltered(&confined).await, vec![1, 1]);
    // Writing another tenant's row is refused.
    let sneaky = confined
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE webhook_endpoints SET url = 'http://127.0.0.1:9/x' WHERE tenant_id = $1",
            [globex.as_uuid().into()],
        ))
        .await
        .unwrap();
    assert_eq!(sneaky.rows_affected(), 0);
    confined.rollback().await.unwrap();

    let nobody = h.database.connection().begin().await.unwrap();
    assert_eq!(unfiltered(&nobody).await, vec![0, 0]);
    nobody.rollback().await.unwrap();

    let escape = h.database.connection().begin().await.unwrap();
    escape
        .execute_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT set_config('app.scope', 'system', true)",
        ))
        .await
        .unwrap();
    assert_eq!(unfiltered(&escape).await, vec![0, 0]);
    escape.rollback().await.unwrap();

    let system = h.database.begin_system().await.unwrap();
    assert_eq!(unfiltered(&system).await, vec![3, 4]);
    system.rollback().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_may_register_at_most_50_endpoints() {
    let h = Harness::start(false, options()).await;
    let (tenant, other) = (h.tenant().await, h.tenant().await);
    for n in 0..switchboard_webhooks::domain::MAX_ENDPOINTS_PER_TENANT {
        h.endpoint(tenant, &format!("http://127.0.0.1:9/{n}"), &["*"])
            .await;
    }
    let refused = h
        .webhooks
        .create_endpoint(
            &Tenant::whole(tenant),
            NewEndpoint {
                url: "http://127.0.0.1:9/one-too-many".into(),
                description: None,
                event_types: vec!["*".into()],
            },
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(WebhooksError::Conflict {
                code: "endpoint_limit_reached",
                ..
            })
        ),
        "{refused:?}"
    );
    let listed = h
        .webhooks
        .list_endpoints(&Tenant::whole(tenant), None, 100)
        .await
        .unwrap();
    assert_eq!(listed.len(), 50);
    // Pages follow creation order.
    let second = h
        .webhooks
        .list_endpoints(&Tenant::whole(tenant), Some(listed[9].id), 10)
        .await
        .unwrap();
    assert_eq!(second[0].id, listed[10].id);
    h.endpoint(other, "http://127.0.0.1:9/other", &["*"]).await;
}
