//! The edge's gRPC API (`switchboard.edge.v1.Edge`) behind service
//! credentials: RemoteEdge answers as the edge in process does, each call
//! acts for the tenant of its credential only, and callers without a valid
//! credential are refused with nothing changed.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use switchboard_edge::accounts::Accounts;
use switchboard_edge::api;
use switchboard_edge::sip::digest::Nonces;
use switchboard_edge::trunks::{Trunks, TrunksOptions};
use switchboard_edge_api::{EdgeApi, InboundSpec, OutboundSpec, RemoteEdge, TrunkSpec};
use switchboard_events::Event;
use switchboard_events::proto::{self, envelope::Payload};
use switchboard_migrations::{Migrator, MigratorTrait};
use switchboard_platform::Database;
use switchboard_platform::cache::MemoryCache;
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
    local: api::LocalEdge,
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
        let trunks = Trunks::new(
            database.clone(),
            Arc::new(MemoryCache::new()),
            Nonces::new(b"edge-test", Duration::from_secs(300)),
            TrunksOptions::new("sip.example.com"),
        );
        let edge = api::LocalEdge::new(accounts.clone(), trunks.store());
        let server = Authenticated::new(api::server(Arc::new(edge.clone())), keys.clone());
        let channel = serve_grpc(Routes::new(server)).await;
        let remote = RemoteEdge::new(channel.clone(), Credentials::new(keys.clone(), "gateway"));
        Self {
            accounts,
            local: edge,
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
    let local_view = h.local.get_sip_account(&acme, agent).await.unwrap();
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

/// Trunks over gRPC: the same answers as in process, field errors named
/// across the wire, another tenant's not found.
#[tokio::test]
async fn remote_trunks_answer_as_the_edge_in_process() {
    let h = Harness::start().await;
    let acme = Tenant::whole(TenantId::new());
    let spec = TrunkSpec {
        name: "Carrier".into(),
        enabled: true,
        inbound: InboundSpec {
            allowed_sources: vec!["192.0.2.10".into()],
            username: Some("acme-in".into()),
            password: Some("inbound secret".into()),
        },
        outbound: Some(OutboundSpec {
            host: "sip.carrier.example".into(),
            port: 5060,
            transport: "tcp".into(),
            ..OutboundSpec::default()
        }),
        priority: 2,
    };
    let created = h.remote.create_trunk(&acme, spec.clone()).await.unwrap();
    assert_eq!(h.local.get_trunk(&acme, created.id).await.unwrap(), created);
    assert_eq!(
        h.remote.get_trunk(&acme, created.id).await.unwrap(),
        created
    );
    assert_eq!(
        h.remote.list_trunks(&acme, None, 10).await.unwrap(),
        std::slice::from_ref(&created)
    );
    assert!(
        h.remote
            .list_trunks(&acme, Some(created.id), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let mut renamed = spec.clone();
    renamed.name = "Carrier (main)".into();
    renamed.inbound.password = None;
    let replaced = h
        .remote
        .replace_trunk(&acme, created.id, renamed)
        .await
        .unwrap();
    assert_eq!(replaced.name, "Carrier (main)");
    assert!(replaced.inbound_password_set);

    let mut bad = spec.clone();
    bad.name = String::new();
    bad.outbound.as_mut().unwrap().transport = "sctp".into();
    let invalid = h.remote.create_trunk(&acme, bad).await.unwrap_err();
    assert_eq!(invalid.kind, ErrorKind::Validation);
    let fields: Vec<&str> = invalid.fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["name", "outbound.transport"]);

    let other = Tenant::whole(TenantId::new());
    let error = h.remote.get_trunk(&other, created.id).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound);
    h.remote.delete_trunk(&acme, created.id).await.unwrap();
    let error = h.remote.get_trunk(&acme, created.id).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound);
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
    let error = h.local.get_sip_account(&acme, agent).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound, "nothing was issued");
}
