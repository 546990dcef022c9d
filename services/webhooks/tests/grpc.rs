//! The webhooks API over gRPC: [`RemoteWebhooks`] against a loopback
//! tonic server wrapped in `Authenticated`, compared with the service in
//! process on the same SQLite database.

use std::sync::Arc;

use chrono::Utc;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Query};
use switchboard_auth::ServiceKeys;
use switchboard_events::Event;
use switchboard_events::proto::{self, envelope::Payload};
use switchboard_migrations::{Migrator, MigratorTrait};
use switchboard_platform::Database;
use switchboard_platform::database::DatabaseOptions;
use switchboard_proto::webhooks::v1 as pb;
use switchboard_proto::webhooks::v1::webhooks_client::WebhooksClient;
use switchboard_rpc::{Authenticated, Credentials, ErrorKind, ServiceError};
use switchboard_tenancy::{ClientId, ClientScope, Tenant, TenantId};
use switchboard_test_utils::{
    fresh_sqlite_database, init_tracing, refused_credentials, serve_grpc, service_keys, unique_name,
};
use switchboard_webhooks::{
    DeliveryId, EndpointId, EndpointPatch, NewEndpoint, RemoteWebhooks, Webhooks, WebhooksApi,
    WebhooksOptions, grpc,
};
use tonic::service::Routes;
use tonic::transport::Channel;
use tonic::{Code, Status};

struct Harness {
    local: Webhooks,
    remote: RemoteWebhooks,
    keys: Arc<ServiceKeys>,
    channel: Channel,
    admin: Database,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start() -> Self {
        init_tracing();
        let (url, dir) = fresh_sqlite_database();
        let admin = Database::connect(&url, &DatabaseOptions::default())
            .await
            .unwrap();
        Migrator::up(admin.connection(), None).await.unwrap();
        let options = WebhooksOptions {
            allow_private_targets: true,
            allow_http: true,
            ..WebhooksOptions::default()
        };
        let local = Webhooks::new(admin.clone(), options).unwrap();
        let keys = service_keys("internal-1");
        let channel = serve_grpc(Routes::new(Authenticated::new(
            grpc::server(Arc::new(local.clone())),
            keys.clone(),
        )))
        .await;
        let remote =
            RemoteWebhooks::new(channel.clone(), Credentials::new(keys.clone(), "gateway"));
        Self {
            local,
            remote,
            keys,
            channel,
            admin,
            _dir: dir,
        }
    }

    /// A tenant row, as signup makes one.
    async fn tenant(&self) -> Tenant {
        let id = TenantId::new();
        let now = Utc::now();
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
        Tenant::whole(id)
    }

    /// One pending delivery to each of the tenant's endpoints, as the
    /// event consumer makes them.
    async fn feed(&self, tenant: &Tenant) {
        let event = Event::new(
            tenant.id(),
            "identity",
            Payload::UserDeleted(proto::UserDeleted {
                user_id: uuid::Uuid::now_v7().to_string(),
            }),
        );
        let transaction = self.admin.begin().await.unwrap();
        self.local
            .intake()
            .handle(&transaction, &event)
            .await
            .unwrap();
        transaction.commit().await.unwrap();
    }
}

fn new_endpoint(url: &str) -> NewEndpoint {
    NewEndpoint {
        url: url.to_owned(),
        description: Some("CRM sync".into()),
        event_types: vec!["user.deleted".into()],
    }
}

#[tokio::test]
async fn every_method_answers_over_grpc_as_in_process() {
    let h = Harness::start().await;
    let tenant = h.tenant().await;
    let remote: &dyn WebhooksApi = &h.remote;
    let local: &dyn WebhooksApi = &h.local;

    let created = remote
        .create_endpoint(&tenant, new_endpoint("http://127.0.0.1:9/hook"))
        .await
        .unwrap();
    assert!(created.secret.starts_with("whsec_"));
    let id = created.endpoint.id;
    assert_eq!(
        local.get_endpoint(&tenant, id).await.unwrap(),
        created.endpoint
    );
    assert_eq!(
        remote.get_endpoint(&tenant, id).await.unwrap(),
        created.endpoint
    );
    assert_eq!(
        remote.list_endpoints(&tenant, None, 10).await.unwrap(),
        local.list_endpoints(&tenant, None, 10).await.unwrap()
    );
    assert!(
        remote
            .list_endpoints(&tenant, Some(id), 10)
            .await
            .unwrap()
            .is_empty()
    );

    let patch = EndpointPatch {
        description: Some("ticket sync".into()),
        event_types: Some(vec!["*".into()]),
        status: Some("disabled".into()),
        ..EndpointPatch::default()
    };
    let updated = remote.update_endpoint(&tenant, id, patch).await.unwrap();
    assert_eq!(updated.description, "ticket sync");
    assert_eq!(updated.event_types, ["*"]);
    assert_eq!(updated, local.get_endpoint(&tenant, id).await.unwrap());
    let enabled = EndpointPatch {
        status: Some("active".into()),
        ..EndpointPatch::default()
    };
    remote.update_endpoint(&tenant, id, enabled).await.unwrap();

    let rotated = remote.rotate_secret(&tenant, id).await.unwrap();
    assert_ne!(rotated.secret, created.secret);
    assert_ne!(rotated.endpoint.key_id, created.endpoint.key_id);

    h.feed(&tenant).await;
    let deliveries = remote.list_deliveries(&tenant, id, None, 10).await.unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(
        deliveries,
        local.list_deliveries(&tenant, id, None, 10).await.unwrap()
    );
    assert_eq!(deliveries[0].event_type, "user.deleted");
    assert!(deliveries[0].payload.is_object());
    let resent = remote
        .resend_delivery(&tenant, id, deliveries[0].id)
        .await
        .unwrap();
    assert_eq!(resent.id, deliveries[0].id);

    remote.delete_endpoint(&tenant, id).await.unwrap();
    let gone = local.get_endpoint(&tenant, id).await.unwrap_err();
    assert_eq!(gone.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn errors_cross_the_wire_with_their_kind_code_and_fields() {
    let h = Harness::start().await;
    let tenant = h.tenant().await;
    let invalid = NewEndpoint {
        url: "ftp://example.com/hook".into(),
        description: Some("x".repeat(501)),
        event_types: vec!["user.exploded".into()],
    };
    let local = WebhooksApi::create_endpoint(&h.local, &tenant, invalid.clone())
        .await
        .unwrap_err();
    let remote = h
        .remote
        .create_endpoint(&tenant, invalid)
        .await
        .unwrap_err();
    assert_eq!(remote.kind, ErrorKind::Validation);
    let fields: Vec<_> = remote.fields.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["event_types", "description", "url"]);
    assert_eq!(remote, local);

    // A conflict with its code: resending to a disabled endpoint.
    let endpoint = h
        .remote
        .create_endpoint(&tenant, new_endpoint("http://127.0.0.1:9/hook"))
        .await
        .unwrap()
        .endpoint;
    h.feed(&tenant).await;
    let delivery = h
        .remote
        .list_deliveries(&tenant, endpoint.id, None, 1)
        .await
        .unwrap()[0]
        .id;
    let disable = EndpointPatch {
        status: Some("disabled".into()),
        ..EndpointPatch::default()
    };
    h.remote
        .update_endpoint(&tenant, endpoint.id, disable)
        .await
        .unwrap();
    let local = WebhooksApi::resend_delivery(&h.local, &tenant, endpoint.id, delivery)
        .await
        .unwrap_err();
    let remote = h
        .remote
        .resend_delivery(&tenant, endpoint.id, delivery)
        .await
        .unwrap_err();
    assert_eq!(remote.kind, ErrorKind::Conflict);
    assert_eq!(remote.code, "endpoint_disabled");
    assert_eq!(remote, local);

    let missing = EndpointId::new();
    let local = WebhooksApi::get_endpoint(&h.local, &tenant, missing)
        .await
        .unwrap_err();
    let remote = h.remote.get_endpoint(&tenant, missing).await.unwrap_err();
    assert_eq!(
        (remote.kind, remote.code.as_ref()),
        (ErrorKind::NotFound, "not_found")
    );
    assert_eq!(remote, local);
}

#[tokio::test]
async fn another_tenants_ids_are_not_found_and_nothing_changes() {
    let h = Harness::start().await;
    let (acme, globex) = (h.tenant().await, h.tenant().await);
    let created = h
        .remote
        .create_endpoint(&acme, new_endpoint("http://127.0.0.1:9/hook"))
        .await
        .unwrap();
    let id = created.endpoint.id;
    h.feed(&acme).await;
    let delivery = h.remote.list_deliveries(&acme, id, None, 1).await.unwrap()[0].id;
    let remote = &h.remote;
    let patch = EndpointPatch {
        url: Some("http://127.0.0.1:9/other".into()),
        status: Some("disabled".into()),
        ..EndpointPatch::default()
    };
    let refused: Vec<ServiceError> = vec![
        remote.get_endpoint(&globex, id).await.unwrap_err(),
        remote
            .update_endpoint(&globex, id, patch)
            .await
            .unwrap_err(),
        remote.rotate_secret(&globex, id).await.unwrap_err(),
        remote
            .list_deliveries(&globex, id, None, 10)
            .await
            .unwrap_err(),
        remote
            .resend_delivery(&globex, id, delivery)
            .await
            .unwrap_err(),
        remote.delete_endpoint(&globex, id).await.unwrap_err(),
    ];
    for error in refused {
        assert_eq!(error.kind, ErrorKind::NotFound, "{error:?}");
    }
    assert!(
        remote
            .list_endpoints(&globex, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        remote.get_endpoint(&acme, id).await.unwrap(),
        created.endpoint,
        "unchanged"
    );
    let deliveries = remote.list_deliveries(&acme, id, None, 10).await.unwrap();
    assert_eq!(deliveries.len(), 1);
    assert!(deliveries[0].attempts.is_empty());
}

/// Every RPC of the service with `authorization` set to `token` (none
/// for `None`), and its status.
async fn every_rpc(channel: &Channel, token: Option<&str>) -> Vec<(&'static str, Status)> {
    fn request<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", token.parse().unwrap());
        }
        request
    }
    let mut client = WebhooksClient::new(channel.clone());
    let id = EndpointId::new().to_string();
    let endpoint = || pb::EndpointRef {
        endpoint_id: id.clone(),
    };
    let mut statuses = Vec::new();
    let mut record = |name, result: Result<(), Status>| {
        statuses.push((name, result.expect_err(name)));
    };
    record(
        "CreateEndpoint",
        client
            .create_endpoint(request(pb::CreateEndpointRequest::default(), token))
            .await
            .map(drop),
    );
    record(
        "ListEndpoints",
        client
            .list_endpoints(request(pb::ListEndpointsRequest::default(), token))
            .await
            .map(drop),
    );
    record(
        "GetEndpoint",
        client
            .get_endpoint(request(endpoint(), token))
            .await
            .map(drop),
    );
    record(
        "UpdateEndpoint",
        client
            .update_endpoint(request(
                pb::UpdateEndpointRequest {
                    endpoint_id: id.clone(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(drop),
    );
    record(
        "DeleteEndpoint",
        client
            .delete_endpoint(request(endpoint(), token))
            .await
            .map(drop),
    );
    record(
        "RotateSecret",
        client
            .rotate_secret(request(endpoint(), token))
            .await
            .map(drop),
    );
    record(
        "ListDeliveries",
        client
            .list_deliveries(request(
                pb::ListDeliveriesRequest {
                    endpoint_id: id.clone(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(drop),
    );
    record(
        "ResendDelivery",
        client
            .resend_delivery(request(
                pb::ResendDeliveryRequest {
                    endpoint_id: id.clone(),
                    delivery_id: DeliveryId::new().to_string(),
                },
                token,
            ))
            .await
            .map(drop),
    );
    statuses
}

#[tokio::test]
async fn calls_without_a_valid_service_credential_are_unauthenticated() {
    let h = Harness::start().await;
    let tenant = h.tenant().await;
    for (case, token) in refused_credentials(&h.keys, &tenant) {
        let statuses = every_rpc(&h.channel, token.as_deref()).await;
        assert_eq!(statuses.len(), 8);
        for (rpc, status) in statuses {
            assert_eq!(
                status.code(),
                Code::Unauthenticated,
                "{rpc} with {case}: {status:?}"
            );
        }
    }
    // Nothing was written by any of them.
    assert!(
        h.local
            .list_endpoints(&tenant, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Webhooks carry the whole tenant's events: a credential limited to some
/// client organizations is refused by the service itself (over gRPC and in
/// process), not only by the gateway, and nothing is created.
#[tokio::test]
async fn a_client_scoped_caller_may_not_manage_webhooks() {
    let h = Harness::start().await;
    let tenant = h.tenant().await;
    let scoped = Tenant::scoped(
        tenant.id(),
        ClientScope::Only([ClientId::new()].into_iter().collect()),
    );
    for api in [&h.remote as &dyn WebhooksApi, &h.local] {
        let refused = api
            .create_endpoint(&scoped, new_endpoint("http://127.0.0.1:9/hook"))
            .await
            .unwrap_err();
        assert_eq!(refused.kind, ErrorKind::Forbidden, "{refused:?}");
        assert_eq!(refused.code, "client_scope");
        let refused = api.list_endpoints(&scoped, None, 10).await.unwrap_err();
        assert_eq!(refused.kind, ErrorKind::Forbidden, "{refused:?}");
    }
    assert!(
        h.local
            .list_endpoints(&tenant, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
