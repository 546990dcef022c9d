//! The ACD over gRPC: [`RemoteRouting`] against a loopback tonic server
//! wrapped in `Authenticated`, compared with the runtime in process on the
//! same cache and database.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use switchboard_acd::{
    AgentId, AgentProfile, AgentState, Channel, Contact, ContactId, Presence, QueueConfig, QueueId,
};
use switchboard_auth::ServiceKeys;
use switchboard_migrations::{Migrator, MigratorTrait};
use switchboard_platform::Database;
use switchboard_platform::cache::MemoryCache;
use switchboard_platform::database::DatabaseOptions;
use switchboard_proto::routing::v1 as pb;
use switchboard_proto::routing::v1::acd_client::AcdClient;
use switchboard_routing::{
    Answer, HostOptions, NoticeEvent, Notices, Operation, Query, RefusalKind, RemoteRouting,
    Routing, RoutingApi, RoutingError, RoutingOptions, Running, grpc_acd,
};
use switchboard_rpc::{Authenticated, CallContext, Credentials};
use switchboard_tenancy::{ClientId, ClientScope, Tenant, TenantId};
use switchboard_test_utils::{
    fresh_sqlite_database, init_tracing, refused_credentials, serve_grpc, service_keys,
};
use tonic::service::Routes;
use tonic::transport::Channel as GrpcChannel;
use tonic::{Code, Status};

struct Harness {
    local: Routing,
    remote: RemoteRouting,
    keys: Arc<ServiceKeys>,
    channel: GrpcChannel,
    running: Option<Running>,
    /// Ends the server's notice streams, as a stopping node does.
    draining: tokio_util::sync::CancellationToken,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start() -> Self {
        init_tracing();
        let (url, dir) = fresh_sqlite_database();
        let database = Database::connect(&url, &DatabaseOptions::default())
            .await
            .unwrap();
        Migrator::up(database.connection(), None).await.unwrap();
        let local = Routing::new(
            Arc::new(MemoryCache::new()),
            database,
            RoutingOptions {
                host: HostOptions {
                    holder: "acd-grpc".into(),
                    lease_ttl: Duration::from_secs(10),
                },
                upkeep_every: Duration::from_millis(50),
                ..RoutingOptions::default()
            },
        );
        let running = local.start().await.unwrap();
        let keys = service_keys("internal-0");
        let draining = tokio_util::sync::CancellationToken::new();
        let channel = serve_grpc(Routes::new(Authenticated::new(
            grpc_acd::server(Arc::new(local.clone()), draining.clone()),
            keys.clone(),
        )))
        .await;
        let remote = RemoteRouting::new(channel.clone(), Credentials::new(keys.clone(), "gateway"));
        Self {
            local,
            remote,
            keys,
            channel,
            running: Some(running),
            draining,
            _dir: dir,
        }
    }

    async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }

    /// A queue (of `client`, if any) and an available agent qualified for it.
    async fn staffed_queue(&self, tenant: &Tenant, client: Option<ClientId>) -> (QueueId, AgentId) {
        let queue = QueueId::new();
        let mut config = QueueConfig::new(queue, Channel::Voice);
        config.client = client.map(|client| client.as_uuid());
        let agent = AgentId::new();
        for operation in [
            Operation::UpsertQueue { config },
            Operation::UpsertAgent {
                profile: AgentProfile::new(agent),
            },
        ] {
            self.remote.execute(tenant, operation).await.unwrap();
        }
        (queue, agent)
    }
}

/// The next notice (not a gap), within 5 s.
async fn next_notice(notices: &mut Notices) -> Arc<switchboard_routing::Notice> {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match notices.next().await {
                Some(NoticeEvent::Notice(notice)) => return notice,
                Some(NoticeEvent::Gap) => continue,
                None => panic!("the notice stream ended"),
            }
        }
    })
    .await
    .expect("a notice arrives")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acd_answers_over_grpc_as_in_process() {
    let h = Harness::start().await;
    let tenant = Tenant::whole(TenantId::new());
    let (queue, agent) = h.staffed_queue(&tenant, None).await;
    let mut notices = h.remote.notices(&tenant).await.unwrap();
    let mut other_tenants = h
        .remote
        .notices(&Tenant::whole(TenantId::new()))
        .await
        .unwrap();

    let outcome = h
        .remote
        .execute(
            &tenant,
            Operation::SetPresence {
                agent,
                presence: Presence::Available,
            },
        )
        .await
        .unwrap();
    assert_eq!(outcome.agent_events[0].to, AgentState::Available);
    let notice = next_notice(&mut notices).await;
    assert_eq!(notice.tenant, tenant.id());
    assert_eq!(notice.agent_events, outcome.agent_events);

    let contact = ContactId::new();
    let outcome = h
        .remote
        .execute(
            &tenant,
            Operation::Enqueue {
                contact: Contact::new(contact, queue, Channel::Voice, Utc::now()),
            },
        )
        .await
        .unwrap();
    assert_eq!(outcome.offers.len(), 1);
    assert_eq!(next_notice(&mut notices).await.offers, outcome.offers);

    // Reads answer as in process.
    for query in [
        Query::Agent { agent },
        Query::Contact { contact },
        Query::OffersOf { agent },
    ] {
        assert_eq!(
            h.remote.query(&tenant, query.clone()).await.unwrap(),
            h.local.query(tenant.id(), query.clone()).await.unwrap(),
            "{query:?}"
        );
    }

    // A callback's number, and none for a plain contact.
    assert_eq!(
        h.remote.callback_number(&tenant, contact).await.unwrap(),
        None
    );
    h.local
        .set_callback_number(tenant.id(), contact, "+12125550123")
        .await
        .unwrap();
    assert_eq!(
        h.remote.callback_number(&tenant, contact).await.unwrap(),
        Some("+12125550123".to_owned())
    );

    // Refusals cross whole: the kind, the message, the agent's state.
    let refused = h
        .remote
        .execute(&tenant, Operation::EndWrapUp { agent })
        .await
        .unwrap_err();
    let in_process = h
        .local
        .execute(tenant.id(), Operation::EndWrapUp { agent })
        .await
        .unwrap_err();
    assert_eq!(refused, in_process);
    let RoutingError::Refused(refusal) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(refusal.kind, RefusalKind::Conflict);
    assert_eq!(refusal.current_state, Some(AgentState::Reserved));
    let stranger = AgentId::new();
    let RoutingError::Refused(refusal) = h
        .remote
        .query(&tenant, Query::Agent { agent: stranger })
        .await
        .unwrap_err()
    else {
        panic!("not a refusal")
    };
    assert_eq!(refusal.kind, RefusalKind::NotFound);
    assert_eq!(refusal.unknown_agent, Some(stranger));

    // A malformed operation is a bad request.
    let mut client = AcdClient::new(h.channel.clone());
    let token = Credentials::new(h.keys.clone(), "gateway")
        .token(&CallContext::tenant(tenant.clone()))
        .unwrap();
    let status = client
        .execute(request(
            pb::OperationRequest {
                operation_json: r#"{"op":"teleport"}"#.into(),
            },
            Some(&token),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // Nothing of this tenant reached another tenant's listener.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), other_tenants.next())
            .await
            .is_err(),
        "another tenant's listener heard this tenant's notices"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_figures_follow_the_client_scope_of_the_credential() {
    let h = Harness::start().await;
    let id = TenantId::new();
    let whole = Tenant::whole(id);
    let (one, two) = (ClientId::new(), ClientId::new());
    let (queue_one, _) = h.staffed_queue(&whole, Some(one)).await;
    let (queue_two, _) = h.staffed_queue(&whole, Some(two)).await;
    h.staffed_queue(&whole, None).await;
    let queues_of = |answer: Answer| match answer {
        Answer::QueueStats { queues } => {
            let mut ids: Vec<QueueId> = queues.iter().map(|figures| figures.queue).collect();
            ids.sort();
            ids
        }
        other => panic!("{other:?}"),
    };
    let all = queues_of(h.remote.query(&whole, Query::QueueStats).await.unwrap());
    assert_eq!(all.len(), 3);
    let scoped = Tenant::scoped(id, ClientScope::Only([one].into_iter().collect()));
    assert_eq!(
        queues_of(h.remote.query(&scoped, Query::QueueStats).await.unwrap()),
        vec![queue_one]
    );
    assert_eq!(
        queues_of(
            h.remote
                .query(&scoped, Query::QueueStatsOf { queue: queue_one })
                .await
                .unwrap()
        ),
        vec![queue_one]
    );
    let hidden = h
        .remote
        .query(&scoped, Query::QueueStatsOf { queue: queue_two })
        .await
        .unwrap_err();
    assert!(
        matches!(&hidden, RoutingError::Refused(refusal) if refusal.kind == RefusalKind::NotFound),
        "{hidden:?}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_agents_and_contacts_are_not_found_and_unchanged() {
    let h = Harness::start().await;
    let tenant = Tenant::whole(TenantId::new());
    let (_, agent) = h.staffed_queue(&tenant, None).await;
    let intruder = Tenant::whole(TenantId::new());
    for operation in [
        Operation::SetPresence {
            agent,
            presence: Presence::Available,
        },
        Operation::EndWrapUp { agent },
    ] {
        let error = h.remote.execute(&intruder, operation).await.unwrap_err();
        assert!(
            matches!(&error, RoutingError::Refused(refusal) if refusal.kind == RefusalKind::NotFound),
            "{error:?}"
        );
    }
    let error = h
        .remote
        .query(&intruder, Query::Agent { agent })
        .await
        .unwrap_err();
    assert!(matches!(error, RoutingError::Refused(_)), "{error:?}");
    let Answer::Agent { view } = h
        .local
        .query(tenant.id(), Query::Agent { agent })
        .await
        .unwrap()
    else {
        panic!("not an agent")
    };
    assert_eq!(view.state, AgentState::Offline, "unchanged");
    h.stop().await;
}

fn request<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", token.parse().unwrap());
    }
    request
}

/// Every RPC of the service called with `token` as its credential.
async fn every_rpc(
    channel: &GrpcChannel,
    token: Option<&str>,
    agent: AgentId,
) -> Vec<(&'static str, Status)> {
    let mut client = AcdClient::new(channel.clone());
    let operation = serde_json::to_string(&Operation::SetPresence {
        agent,
        presence: Presence::Available,
    })
    .unwrap();
    let query = serde_json::to_string(&Query::Agent { agent }).unwrap();
    vec![
        (
            "Execute",
            client
                .execute(request(
                    pb::OperationRequest {
                        operation_json: operation,
                    },
                    token,
                ))
                .await
                .unwrap_err(),
        ),
        (
            "Query",
            client
                .query(request(pb::QueryRequest { query_json: query }, token))
                .await
                .unwrap_err(),
        ),
        (
            "CallbackNumber",
            client
                .callback_number(request(
                    pb::ContactRef {
                        contact_id: ContactId::new().to_string(),
                    },
                    token,
                ))
                .await
                .unwrap_err(),
        ),
        (
            "Notices",
            client.notices(request((), token)).await.err().unwrap(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_a_valid_service_credential_are_unauthenticated() {
    let h = Harness::start().await;
    let tenant = Tenant::whole(TenantId::new());
    let (_, agent) = h.staffed_queue(&tenant, None).await;
    for (case, token) in refused_credentials(&h.keys, &tenant) {
        let statuses = every_rpc(&h.channel, token.as_deref(), agent).await;
        assert_eq!(statuses.len(), 4);
        for (rpc, status) in statuses {
            assert_eq!(
                status.code(),
                Code::Unauthenticated,
                "{rpc} with {case}: {status:?}"
            );
        }
    }
    let Answer::Agent { view } = h
        .local
        .query(tenant.id(), Query::Agent { agent })
        .await
        .unwrap()
    else {
        panic!("not an agent")
    };
    assert_eq!(view.state, AgentState::Offline, "nothing changed");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_stream_ends_when_its_node_starts_draining() {
    let h = Harness::start().await;
    let tenant = Tenant::whole(TenantId::new());
    let mut notices = h.remote.notices(&tenant).await.unwrap();
    h.draining.cancel();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match notices.next().await {
                None => return,
                Some(_) => continue,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived the drain");
    h.stop().await;
}
