//! The routing configuration over gRPC: [`RemoteRoutingConfig`] against a
//! loopback tonic server wrapped in `Authenticated`, compared with the
//! configuration in process on the same SQLite database.

use std::sync::Arc;

use chrono::Utc;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Query};
use serde_json::json;
use switchboard_auth::ServiceKeys;
use switchboard_migrations::{Migrator, MigratorTrait};
use switchboard_platform::Database;
use switchboard_platform::database::DatabaseOptions;
use switchboard_proto::routing::v1 as pb;
use switchboard_proto::routing::v1::routing_configuration_client::RoutingConfigurationClient;
use switchboard_routing::config::{
    AgentProfileSpec, ChangedBy, ConfigError, FlowSpec, ForcedKind, ForcedModeSpec,
    IdentityDirectory, InboundRuleSpec, NextStep, QueueSpec, ReasonCodeSpec, RemoteRoutingConfig,
    RoutingConfig, RoutingConfigApi, RoutingConfigExt, SkillSpec,
};
use switchboard_routing::grpc_config;
use switchboard_rpc::{Authenticated, CallContext, Credentials, ErrorKind, ServiceError};
use switchboard_tenancy::{ClientId, ClientScope, Tenant, TenantId, UserId};
use switchboard_test_utils::{
    fresh_sqlite_database, init_tracing, refused_credentials, serve_grpc, service_keys, unique_name,
};
use tonic::service::Routes;
use tonic::transport::Channel;
use tonic::{Code, Status};
use uuid::Uuid;

/// Identity as the tests made it: the users they inserted.
#[derive(Default)]
struct Directory {
    users: std::sync::Mutex<std::collections::HashSet<(TenantId, UserId)>>,
}

#[async_trait::async_trait]
impl IdentityDirectory for Directory {
    async fn user_scope(
        &self,
        tenant: &Tenant,
        user: UserId,
    ) -> Result<Option<ClientScope>, ConfigError> {
        let known = self.users.lock().unwrap().contains(&(tenant.id(), user));
        Ok(known.then_some(ClientScope::All))
    }

    async fn client_exists(
        &self,
        _tenant: &Tenant,
        _client: ClientId,
    ) -> Result<bool, ConfigError> {
        Ok(false)
    }
}

struct Harness {
    directory: Arc<Directory>,
    local: RoutingConfig,
    remote: RemoteRoutingConfig,
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
        let directory = Arc::new(Directory::default());
        let local = RoutingConfig::new(admin.clone(), directory.clone());
        let keys = service_keys("internal-1");
        let channel = serve_grpc(Routes::new(Authenticated::new(
            grpc_config::server(Arc::new(local.clone())),
            keys.clone(),
        )))
        .await;
        let remote =
            RemoteRoutingConfig::new(channel.clone(), Credentials::new(keys.clone(), "gateway"));
        Self {
            directory,
            local,
            remote,
            keys,
            channel,
            admin,
            _dir: dir,
        }
    }

    async fn insert(&self, table: &str, values: Vec<(&str, sea_orm::Value)>) {
        let (columns, values): (Vec<_>, Vec<_>) = values.into_iter().unzip();
        let insert = Query::insert()
            .into_table(Alias::new(table))
            .columns(columns.into_iter().map(Alias::new))
            .values_panic(values.into_iter().map(Into::into))
            .to_owned();
        self.admin.connection().execute(&insert).await.unwrap();
    }

    async fn tenant(&self) -> Tenant {
        let id = TenantId::new();
        let now = Utc::now();
        self.insert(
            "tenants",
            vec![
                ("id", id.as_uuid().into()),
                ("name", "Test tenant".into()),
                ("slug", unique_name("t").into()),
                ("time_zone", "UTC".into()),
                ("status", "active".into()),
                ("plan_code", "trial".into()),
                ("created_at", now.into()),
                ("updated_at", now.into()),
            ],
        )
        .await;
        Tenant::whole(id)
    }

    async fn user(&self, tenant: &Tenant) -> Uuid {
        let id = Uuid::now_v7();
        let now = Utc::now();
        self.insert(
            "users",
            vec![
                ("id", id.into()),
                ("tenant_id", tenant.id().as_uuid().into()),
                ("email", format!("{}@example.com", unique_name("u")).into()),
                ("display_name", "Agent".into()),
                ("roles", "agent".into()),
                ("all_clients", true.into()),
                ("status", "active".into()),
                ("created_at", now.into()),
                ("updated_at", now.into()),
            ],
        )
        .await;
        self.directory
            .users
            .lock()
            .unwrap()
            .insert((tenant.id(), UserId::from_uuid(id)));
        id
    }
}

fn queue_spec(name: &str) -> QueueSpec {
    serde_json::from_value(json!({"name": name, "channel": "voice"})).unwrap()
}

fn flow_spec(name: &str, queue: Uuid) -> FlowSpec {
    FlowSpec {
        name: name.into(),
        client_id: None,
        definition: json!({"start": "hello", "nodes": {
            "hello": {"type": "play", "prompt": {"tts": "Hello"}, "next": "queue"},
            "queue": {"type": "enqueue", "queue_id": queue}
        }}),
    }
}

fn rule_spec(name: &str, flow: Uuid) -> InboundRuleSpec {
    InboundRuleSpec {
        name: name.into(),
        schedule_id: None,
        open: NextStep::Flow { flow_id: flow },
        closed: NextStep::Hangup { message: None },
        holiday: None,
    }
}

#[tokio::test]
async fn every_method_answers_over_grpc_as_in_process() {
    let h = Harness::start().await;
    let tenant = h.tenant().await;
    let admin = h.user(&tenant).await;
    let by = ChangedBy::user(admin);
    let remote = h.remote.acting(by.clone());
    let local: &dyn RoutingConfigApi = &h.local;

    let skill = remote
        .create(
            &tenant,
            SkillSpec {
                name: "billing".into(),
                description: String::new(),
            },
        )
        .await
        .unwrap();
    let skill = remote
        .replace(
            &tenant,
            skill.id,
            SkillSpec {
                name: "billing".into(),
                description: "Invoices".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        local.get::<SkillSpec>(&tenant, skill.id).await.unwrap(),
        skill
    );
    assert_eq!(
        remote.get::<SkillSpec>(&tenant, skill.id).await.unwrap(),
        skill
    );
    assert_eq!(
        remote.list::<SkillSpec>(&tenant, None, 10).await.unwrap(),
        local.list::<SkillSpec>(&tenant, None, 10).await.unwrap()
    );
    let queue = remote.create(&tenant, queue_spec("Billing")).await.unwrap();
    assert_eq!(queue.spec.ring_timeout_seconds, 20, "defaults travel");

    let agent = h.user(&tenant).await;
    let profile: AgentProfileSpec = serde_json::from_value(json!({
        "skills": [{"skill_id": skill.id, "proficiency": 7}]
    }))
    .unwrap();
    let (created, was_new) = remote
        .put_agent_profile(&tenant, agent, profile.clone())
        .await
        .unwrap();
    assert!(was_new);
    let (replaced, was_new) = remote
        .put_agent_profile(&tenant, agent, profile)
        .await
        .unwrap();
    assert!(!was_new);
    assert_eq!(replaced.spec, created.spec);

    let flow = remote
        .create_flow(&tenant, flow_spec("Menu", queue.id))
        .await
        .unwrap();
    assert_eq!(flow.latest_version, None);
    let flow = remote
        .replace_flow(&tenant, flow.item.id, flow_spec("Main menu", queue.id))
        .await
        .unwrap();
    assert_eq!(local.flow(&tenant, flow.item.id).await.unwrap(), flow);
    assert_eq!(remote.flow(&tenant, flow.item.id).await.unwrap(), flow);
    assert_eq!(
        remote.list_flows(&tenant, None, 10).await.unwrap(),
        std::slice::from_ref(&flow)
    );
    let version = remote
        .publish_flow(&tenant, flow.item.id, &by)
        .await
        .unwrap();
    assert_eq!((version.version, version.published_by), (1, Some(admin)));
    assert_eq!(version.published_by_type.as_deref(), Some("user"));
    assert_eq!(
        remote
            .list_flow_versions(&tenant, flow.item.id, None, 10)
            .await
            .unwrap(),
        std::slice::from_ref(&version)
    );
    assert_eq!(
        remote.flow_version(&tenant, flow.item.id, 1).await.unwrap(),
        version
    );

    let rule = remote
        .create_rule(&tenant, rule_spec("Main", flow.item.id))
        .await
        .unwrap();
    let rule = remote
        .replace_rule(&tenant, rule.item.id, rule_spec("Main line", flow.item.id))
        .await
        .unwrap();
    let forced = ForcedModeSpec {
        mode: ForcedKind::Destination,
        destination: Some(NextStep::Queue {
            queue_id: queue.id,
            priority: Some(5),
        }),
        reason: Some("storm".into()),
    };
    let forced = remote
        .set_forced_mode(&tenant, rule.item.id, forced, &by)
        .await
        .unwrap();
    let mode = forced.forced.clone().unwrap();
    assert_eq!(
        (mode.mode, mode.set_by),
        (ForcedKind::Destination, Some(admin))
    );
    // (The answer of set_forced_mode keeps the rule's previous
    // `updated_at`; compare what is stored.)
    let stored = local.rule(&tenant, rule.item.id).await.unwrap();
    assert_eq!(stored.forced, forced.forced);
    assert_eq!(remote.rule(&tenant, rule.item.id).await.unwrap(), stored);
    assert_eq!(
        remote.list_rules(&tenant, None, 10).await.unwrap(),
        [stored]
    );

    remote
        .create(
            &tenant,
            ReasonCodeSpec {
                name: "lunch".into(),
                description: String::new(),
            },
        )
        .await
        .unwrap();
    assert!(remote.has_reason_code(&tenant, "lunch").await.unwrap());
    assert!(!remote.has_reason_code(&tenant, "nap").await.unwrap());

    remote
        .delete::<InboundRuleSpec>(&tenant, rule.item.id)
        .await
        .unwrap();
    remote
        .delete::<AgentProfileSpec>(&tenant, agent)
        .await
        .unwrap();
    let gone = local
        .get::<AgentProfileSpec>(&tenant, agent)
        .await
        .unwrap_err();
    assert_eq!(gone.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn errors_cross_the_wire_with_their_kind_code_and_fields() {
    let h = Harness::start().await;
    let tenant = h.tenant().await;
    let local: &dyn RoutingConfigApi = &h.local;
    let remote: &dyn RoutingConfigApi = &h.remote;

    let mut dangling = flow_spec("Broken", Uuid::now_v7());
    dangling.definition["nodes"]["hello"]["next"] = json!("nowhere");
    let here = local
        .create_flow(&tenant, dangling.clone())
        .await
        .unwrap_err();
    let there = remote.create_flow(&tenant, dangling).await.unwrap_err();
    assert_eq!(there.kind, ErrorKind::Validation);
    assert!(
        there.fields[0].field.starts_with("definition.nodes.hello"),
        "{there:?}"
    );
    assert_eq!(there, here);

    let queue = remote.create(&tenant, queue_spec("Billing")).await.unwrap();
    let here = local
        .create(&tenant, queue_spec("Billing"))
        .await
        .unwrap_err();
    let there = remote
        .create(&tenant, queue_spec("Billing"))
        .await
        .unwrap_err();
    assert_eq!(
        (there.kind, there.code.as_ref()),
        (ErrorKind::Conflict, "name_taken")
    );
    assert_eq!(there, here);

    let flow = remote
        .create_flow(&tenant, flow_spec("Menu", queue.id))
        .await
        .unwrap();
    let here = local
        .delete::<QueueSpec>(&tenant, queue.id)
        .await
        .unwrap_err();
    let there = remote
        .delete::<QueueSpec>(&tenant, queue.id)
        .await
        .unwrap_err();
    assert_eq!(
        (there.kind, there.code.as_ref()),
        (ErrorKind::Conflict, "in_use")
    );
    assert_eq!(there, here);

    let missing = Uuid::now_v7();
    let here = local.flow(&tenant, missing).await.unwrap_err();
    let there = remote.flow(&tenant, missing).await.unwrap_err();
    assert_eq!(there.kind, ErrorKind::NotFound);
    assert_eq!(there, here);
    let here = local
        .publish_flow(&tenant, missing, &ChangedBy::system())
        .await
        .unwrap_err();
    let there = remote
        .publish_flow(&tenant, missing, &ChangedBy::system())
        .await
        .unwrap_err();
    assert_eq!(there, here);
    assert!(remote.flow(&tenant, flow.item.id).await.is_ok());
}

#[tokio::test]
async fn another_tenants_ids_are_not_found_and_nothing_changes() {
    let h = Harness::start().await;
    let (acme, globex) = (h.tenant().await, h.tenant().await);
    let remote = &h.remote;
    let queue = remote.create(&acme, queue_spec("Billing")).await.unwrap();
    let flow = remote
        .create_flow(&acme, flow_spec("Menu", queue.id))
        .await
        .unwrap();
    remote
        .publish_flow(&acme, flow.item.id, &ChangedBy::system())
        .await
        .unwrap();
    let rule = remote
        .create_rule(&acme, rule_spec("Main", flow.item.id))
        .await
        .unwrap();
    let agent = h.user(&acme).await;
    let forced = ForcedModeSpec {
        mode: ForcedKind::Closed,
        destination: None,
        reason: None,
    };
    let refused: Vec<ServiceError> = vec![
        remote
            .get::<QueueSpec>(&globex, queue.id)
            .await
            .unwrap_err(),
        remote
            .replace(&globex, queue.id, queue_spec("Mine"))
            .await
            .unwrap_err(),
        remote
            .delete::<QueueSpec>(&globex, queue.id)
            .await
            .unwrap_err(),
        remote.flow(&globex, flow.item.id).await.unwrap_err(),
        remote
            .replace_flow(&globex, flow.item.id, flow_spec("Mine", queue.id))
            .await
            .unwrap_err(),
        remote
            .publish_flow(&globex, flow.item.id, &ChangedBy::system())
            .await
            .unwrap_err(),
        remote
            .list_flow_versions(&globex, flow.item.id, None, 10)
            .await
            .unwrap_err(),
        remote
            .flow_version(&globex, flow.item.id, 1)
            .await
            .unwrap_err(),
        remote.rule(&globex, rule.item.id).await.unwrap_err(),
        remote
            .set_forced_mode(&globex, rule.item.id, forced, &ChangedBy::system())
            .await
            .unwrap_err(),
        remote
            .delete::<InboundRuleSpec>(&globex, rule.item.id)
            .await
            .unwrap_err(),
        remote
            .put_agent_profile(&globex, agent, serde_json::from_value(json!({})).unwrap())
            .await
            .unwrap_err(),
    ];
    for error in refused {
        assert_eq!(error.kind, ErrorKind::NotFound, "{error:?}");
    }
    assert!(
        remote
            .list::<QueueSpec>(&globex, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        remote
            .list_flows(&globex, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        remote.get::<QueueSpec>(&acme, queue.id).await.unwrap(),
        queue
    );
    assert_eq!(remote.rule(&acme, rule.item.id).await.unwrap(), rule);
    let versions = remote
        .list_flow_versions(&acme, flow.item.id, None, 10)
        .await
        .unwrap();
    assert_eq!(versions.len(), 1);
    assert!(remote.get::<AgentProfileSpec>(&acme, agent).await.is_err());
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
    let mut client = RoutingConfigurationClient::new(channel.clone());
    let id = Uuid::now_v7().to_string();
    let save = || pb::SaveItemRequest {
        kind: pb::ItemKind::Skill.into(),
        id: id.clone(),
        definition_json: r#"{"name":"x"}"#.into(),
    };
    let item = || pb::ItemRef {
        kind: pb::ItemKind::Skill.into(),
        id: id.clone(),
    };
    let list = pb::ListItemsRequest::default;
    let mut statuses = Vec::new();
    macro_rules! call {
        ($name:literal, $method:ident, $message:expr) => {
            statuses.push((
                $name,
                client
                    .$method(request($message, token))
                    .await
                    .map(drop)
                    .expect_err($name),
            ));
        };
    }
    call!("CreateItem", create_item, save());
    call!("ReplaceItem", replace_item, save());
    call!("ListItems", list_items, list());
    call!("GetItem", get_item, item());
    call!("DeleteItem", delete_item, item());
    call!("PutAgentProfile", put_agent_profile, save());
    call!("CreateRule", create_rule, save());
    call!("ReplaceRule", replace_rule, save());
    call!("GetRule", get_rule, item());
    call!("ListRules", list_rules, list());
    call!(
        "SetForcedMode",
        set_forced_mode,
        pb::SetForcedModeRequest {
            rule_id: id.clone(),
            spec_json: r#"{"mode":"closed"}"#.into(),
            by: None,
        }
    );
    call!("CreateFlow", create_flow, save());
    call!("ReplaceFlow", replace_flow, save());
    call!("GetFlow", get_flow, item());
    call!("ListFlows", list_flows, list());
    call!(
        "PublishFlow",
        publish_flow,
        pb::PublishFlowRequest {
            flow_id: id.clone(),
            by: None,
        }
    );
    call!(
        "ListFlowVersions",
        list_flow_versions,
        pb::ListFlowVersionsRequest {
            flow_id: id.clone(),
            ..Default::default()
        }
    );
    call!(
        "GetFlowVersion",
        get_flow_version,
        pb::FlowVersionRef {
            flow_id: id.clone(),
            version: 1,
        }
    );
    call!(
        "HasReasonCode",
        has_reason_code,
        pb::HasReasonCodeRequest {
            name: "lunch".into()
        }
    );
    statuses
}

#[tokio::test]
async fn calls_without_a_valid_service_credential_are_unauthenticated() {
    let h = Harness::start().await;
    let tenant = h.tenant().await;
    let not_an_actor = Credentials::new(h.keys.clone(), "gateway")
        .token(&CallContext::tenant(tenant.clone()).with_principal(json!({"user": "u1"})))
        .unwrap();
    let mut cases = refused_credentials(&h.keys, &tenant);
    cases.push(("a principal that is no routing actor", Some(not_an_actor)));
    for (case, token) in cases {
        let statuses = every_rpc(&h.channel, token.as_deref()).await;
        assert_eq!(statuses.len(), 19);
        for (rpc, status) in statuses {
            assert_eq!(
                status.code(),
                Code::Unauthenticated,
                "{rpc} with {case}: {status:?}"
            );
        }
    }
    assert!(
        h.local
            .list::<SkillSpec>(&tenant, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
