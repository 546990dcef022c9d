//! The edge's gRPC API (`switchboard.edge.v1.Edge`) behind service
//! credentials: RemoteEdge answers as the edge in process does, each call
//! acts for the tenant of its credential only, and callers without a valid
//! credential are refused with nothing changed.

use std::sync::Arc;

use chrono::Utc;
use switchboard_edge::accounts::Accounts;
use switchboard_edge::api;
use switchboard_edge_api::{EdgeApi, RemoteEdge};
use switchboard_events::Event;
use switchboard_events::proto::{self, envelope::Payload};
use switchboard_migrations::{Migrator, MigratorTrait};
use switchboard_platform::Database;
use switchboard_platform::database::DatabaseOptions;
use switchboard_proto::edge::v1 as pb;
use switchboard_proto::edge::v1::edge_client::EdgeClient;
use switchboard_rpc::{Authenticated, Credentials, ErrorKind};
use switchboard_tenancy::{Tenant, TenantId, UserId};
use switchboard_test_utils::{
    fresh_sqlite_database, init_tracing, refused_credentials, serve_grpc, service_keys,
};
use tonic::Code;
use tonic::service::Routes;

struct Harness {
    accounts: Accounts,
    database: Database,
    remote: RemoteEdge,
    keys: Arc<switchboard_rpc::ServiceKeys>,
    channel: tonic::transport::Channel,
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
        let accounts = Accounts::new(database.clone(), "sip.example.com");
        let keys = service_keys("edge-test");
        let server = Authenticated::new(api::server(Arc::new(accounts.clone())), keys.clone());
        let channel = serve_grpc(Routes::new(server)).await;
        let remote = RemoteEdge::new(channel.clone(), Credentials::new(keys.clone(), "gateway"));
        Self {
            accounts,
            database,
            remote,
            keys,
            channel,
            _dir: dir,
        }
    }

    async fn tenant(&self, slug: &str) -> Tenant {
        let tenant = TenantId::new();
        let event = Event::at(
            tenant,
            "identity",
            Utc::now(),
            Payload::TenantCreated(proto::TenantCreated {
                tenant_id: tenant.to_string(),
                slug: slug.to_owned(),
                ..Default::default()
            }),
        );
        let transaction = self.database.begin_tenant(tenant.as_uuid()).await.unwrap();
        self.accounts
            .identity_projection()
            .handle(&transaction, &event)
            .await
            .unwrap();
        transaction.commit().await.unwrap();
        Tenant::whole(tenant)
    }
}

#[tokio::test]
async fn remote_calls_answer_as_the_edge_in_process() {
    let h = Harness::start().await;
    let acme = h.tenant("acme").await;
    let agent = UserId::new();

    let issued = h.remote.issue_sip_account(&acme, agent).await.unwrap();
    assert_eq!(issued.domain, "acme.sip.example.com");
    assert_eq!(issued.password.len(), 24);
    let remote_view = h.remote.get_sip_account(&acme, agent).await.unwrap();
    let local_view = h.accounts.get_sip_account(&acme, agent).await.unwrap();
    assert_eq!(remote_view, local_view);
    assert_eq!(remote_view.username, issued.username);
    assert!(remote_view.active);

    let rotated = h.remote.issue_sip_account(&acme, agent).await.unwrap();
    assert_eq!(rotated.username, issued.username);
    assert_ne!(rotated.password, issued.password);

    h.remote.revoke_sip_account(&acme, agent).await.unwrap();
    let gone = h.remote.get_sip_account(&acme, agent).await.unwrap_err();
    assert_eq!(gone.kind, ErrorKind::NotFound, "{gone:?}");
    let again = h.remote.revoke_sip_account(&acme, agent).await.unwrap_err();
    assert_eq!(again.kind, ErrorKind::NotFound);

    // A tenant the edge does not know yet: retry later, not an error of
    // the caller's.
    let early = Tenant::whole(TenantId::new());
    let unavailable = h.remote.issue_sip_account(&early, agent).await.unwrap_err();
    assert_eq!(unavailable.kind, ErrorKind::Unavailable, "{unavailable:?}");
}

#[tokio::test]
async fn a_credential_reaches_its_own_tenants_accounts_only() {
    let h = Harness::start().await;
    let acme = h.tenant("acme").await;
    let globex = h.tenant("globex").await;
    let agent = UserId::new();
    h.remote.issue_sip_account(&acme, agent).await.unwrap();
    let error = h.remote.get_sip_account(&globex, agent).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound);
    let error = h
        .remote
        .revoke_sip_account(&globex, agent)
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound);
    assert!(
        h.remote.get_sip_account(&acme, agent).await.is_ok(),
        "still there"
    );
}

#[tokio::test]
async fn callers_without_a_valid_credential_are_refused_and_change_nothing() {
    let h = Harness::start().await;
    let acme = h.tenant("acme").await;
    let agent = UserId::new();
    for (case, token) in refused_credentials(&h.keys, &acme) {
        let mut client = EdgeClient::new(h.channel.clone());
        let request = || {
            let mut request = tonic::Request::new(pb::UserRef {
                user_id: agent.to_string(),
            });
            if let Some(token) = &token {
                request
                    .metadata_mut()
                    .insert("authorization", token.parse().unwrap());
            }
            request
        };
        let statuses = [
            client.issue_sip_account(request()).await.map(drop),
            client.get_sip_account(request()).await.map(drop),
            client.revoke_sip_account(request()).await.map(drop),
        ];
        for status in statuses {
            assert_eq!(status.unwrap_err().code(), Code::Unauthenticated, "{case}");
        }
    }
    let error = h.accounts.get_sip_account(&acme, agent).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound, "nothing was issued");
}
