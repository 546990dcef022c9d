//! The routing configuration store on both backends: PostgreSQL (as a
//! role that neither owns the tables nor bypasses row-level security) and
//! SQLite. Tenants and users are written by the owner's connection as
//! identity would (routing's tables refer to them), identity answers the
//! write checks through a test [`IdentityDirectory`], and identity's
//! events are applied to routing's projection by its own handler.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use serde_json::{Value, json};
use switchboard_acd::{AgentProfile, Channel, QueueConfig};
use switchboard_events::proto::{self, envelope::Payload};
use switchboard_events::{AuditEntry, Event, EventHandler};
use switchboard_flows::PromptSource;
use switchboard_migrations::{Migrator, MigratorTrait};
use switchboard_platform::Cache;
use switchboard_platform::Database;
use switchboard_platform::cache::{MemoryCache, RedisCache};
use switchboard_platform::database::DatabaseOptions;
use switchboard_routing::calls::{CallDecision, Calls, InboundCall, Step};
use switchboard_routing::config::{
    AgentGroupSpec, AgentProfileSpec, Basis, CachedConfig, CallerId, ChangedBy, ConfigError,
    ConfigKind, ConfigObserver, FlowSpec, ForcedKind, ForcedModeSpec, IdentityDirectory,
    InboundRuleSpec, Kind, NextStep, NumberSpec, OutboundRuleSpec, QueueSpec, ReasonCodeSpec,
    RingGroupSpec, RingStrategy, RoutingConfig, ScheduleSpec, SkillSpec, TenantConfig,
    TrunkStrategy, VoicemailBoxSpec,
};
use switchboard_routing::{Routing, RoutingOptions};
use switchboard_tenancy::{AgentId, ClientId, ClientScope, QueueId, Tenant, TenantId, UserId};
use switchboard_test_utils::{
    fresh_postgres_database, fresh_sqlite_database, init_tracing, postgres_app_role_url,
    postgres_system_role_url, redis_url, unique_name,
};
use uuid::Uuid;

/// Identity as the tests made it: the users and client organizations
/// they created.
#[derive(Default)]
struct Directory {
    users: Mutex<HashMap<(TenantId, UserId), ClientScope>>,
    clients: Mutex<HashSet<(TenantId, ClientId)>>,
}

#[async_trait::async_trait]
impl IdentityDirectory for Directory {
    async fn user_scope(
        &self,
        tenant: &Tenant,
        user: UserId,
    ) -> Result<Option<ClientScope>, ConfigError> {
        Ok(self
            .users
            .lock()
            .unwrap()
            .get(&(tenant.id(), user))
            .cloned())
    }

    async fn client_exists(&self, tenant: &Tenant, client: ClientId) -> Result<bool, ConfigError> {
        Ok(self
            .clients
            .lock()
            .unwrap()
            .contains(&(tenant.id(), client)))
    }
}

struct Harness {
    postgres: bool,
    config: RoutingConfig,
    directory: Arc<Directory>,
    /// Routing's handler of identity's events.
    projection: Arc<dyn EventHandler>,
    /// The service's connection (PostgreSQL: the non-owner app role).
    database: Database,
    /// The owner's connection.
    admin: Database,
    _dir: Option<tempfile::TempDir>,
}

impl Harness {
    async fn start(postgres: bool) -> Self {
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
        // The edge's number lookup runs on the system workers' pool.
        let database = Database::connect(&service_url, &DatabaseOptions::default())
            .await
            .unwrap()
            .with_system(
                Database::connect(&system_url, &DatabaseOptions::default())
                    .await
                    .unwrap(),
            )
            .unwrap();
        let admin = Database::connect(&admin_url, &DatabaseOptions::default())
            .await
            .unwrap();
        let directory = Arc::new(Directory::default());
        let config = RoutingConfig::new(database.clone(), directory.clone());
        Self {
            postgres,
            projection: config.identity_projection(),
            config,
            directory,
            database,
            admin,
            _dir: dir,
        }
    }

    /// Applies one of identity's events as routing's consumer does: in a
    /// transaction confined to its tenant, then told after commit.
    async fn feed(&self, event: Event) {
        let transaction = self
            .database
            .begin_tenant(event.tenant.as_uuid())
            .await
            .unwrap();
        self.projection.handle(&transaction, &event).await.unwrap();
        transaction.commit().await.unwrap();
        self.projection.committed(&[event]).await;
    }

    /// Identity's event for user `id` as it is now.
    fn user_event(tenant: &Tenant, id: Uuid, clients: Option<&[ClientId]>, created: bool) -> Event {
        let user = proto::User {
            user_id: id.to_string(),
            email: format!("{id}@example.com"),
            display_name: "Agent".into(),
            roles: vec!["agent".into()],
            status: "active".into(),
            all_clients: clients.is_none(),
            client_ids: clients
                .unwrap_or_default()
                .iter()
                .map(ToString::to_string)
                .collect(),
        };
        let payload = if created {
            Payload::UserCreated(proto::UserCreated { user: Some(user) })
        } else {
            Payload::UserUpdated(proto::UserUpdated { user: Some(user) })
        };
        Event::new(tenant.id(), "identity", payload)
    }

    /// Identity changes user `id`'s clients.
    async fn rescope(&self, tenant: &Tenant, id: Uuid, clients: Option<&[ClientId]>) {
        self.directory.users.lock().unwrap().insert(
            (tenant.id(), UserId::from_uuid(id)),
            ClientScope::from_list(clients.map(<[ClientId]>::to_vec)),
        );
        self.feed(Self::user_event(tenant, id, clients, false))
            .await;
    }

    /// Identity deletes user `id`: its row (and on SQLite, by the foreign
    /// key, its agent profile), then its event.
    async fn delete_user(&self, tenant: &Tenant, id: Uuid) {
        let delete = Query::delete()
            .from_table(Alias::new("users"))
            .and_where(Expr::col(Alias::new("id")).eq(id))
            .to_owned();
        self.admin.connection().execute(&delete).await.unwrap();
        self.directory
            .users
            .lock()
            .unwrap()
            .remove(&(tenant.id(), UserId::from_uuid(id)));
        self.feed(Event::new(
            tenant.id(),
            "identity",
            Payload::UserDeleted(proto::UserDeleted {
                user_id: id.to_string(),
            }),
        ))
        .await;
    }

    /// The audit entries routing's outbox holds for the tenant, in order.
    async fn audit_entries(&self, tenant: &Tenant) -> Vec<AuditEntry> {
        let transaction = self
            .admin
            .begin_tenant(tenant.id().as_uuid())
            .await
            .unwrap();
        let query = Query::select()
            .column(Alias::new("payload"))
            .from(Alias::new("event_log"))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant.id().as_uuid()))
            .and_where(Expr::col(Alias::new("event_type")).eq("audit.recorded"))
            .and_where(Expr::col(Alias::new("source")).eq("routing"))
            .order_by(Alias::new("seq"), Order::Asc)
            .to_owned();
        let rows = transaction.query_all(&query).await.unwrap();
        transaction.commit().await.unwrap();
        rows.iter()
            .map(|row| {
                let bytes: Vec<u8> = row.try_get("", "payload").unwrap();
                let Payload::AuditRecorded(message) = Event::decode(&bytes).unwrap().payload else {
                    panic!("not an audit entry");
                };
                AuditEntry::from_proto(&message).unwrap()
            })
            .collect()
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

    /// A tenant (as signup makes one), seen as a whole.
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
        self.feed(Event::new(
            id,
            "identity",
            Payload::TenantCreated(proto::TenantCreated {
                tenant_id: id.to_string(),
                time_zone: "UTC".into(),
                ..proto::TenantCreated::default()
            }),
        ))
        .await;
        Tenant::whole(id)
    }

    /// A client organization of `tenant`, as identity creates one.
    async fn client(&self, tenant: &Tenant) -> ClientId {
        let id = ClientId::new();
        self.directory
            .clients
            .lock()
            .unwrap()
            .insert((tenant.id(), id));
        self.feed(Event::new(
            tenant.id(),
            "identity",
            Payload::ClientCreated(proto::ClientCreated {
                client_id: id.to_string(),
                name: unique_name("client"),
            }),
        ))
        .await;
        id
    }

    /// A user of `tenant`, limited to `clients` if given.
    async fn user(&self, tenant: &Tenant, clients: Option<&[ClientId]>) -> Uuid {
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
                ("all_clients", clients.is_none().into()),
                ("status", "active".into()),
                ("created_at", now.into()),
                ("updated_at", now.into()),
            ],
        )
        .await;
        self.directory.users.lock().unwrap().insert(
            (tenant.id(), UserId::from_uuid(id)),
            ClientScope::from_list(clients.map(<[ClientId]>::to_vec)),
        );
        self.feed(Self::user_event(tenant, id, clients, true)).await;
        id
    }

    async fn skill(&self, tenant: &Tenant, name: &str) -> Uuid {
        self.config
            .create(
                tenant,
                SkillSpec {
                    name: name.into(),
                    description: String::new(),
                },
            )
            .await
            .unwrap()
            .id
    }

    async fn queue(&self, tenant: &Tenant, name: &str, client: Option<ClientId>) -> Uuid {
        self.config
            .create(tenant, queue_spec(name, client))
            .await
            .unwrap()
            .id
    }

    async fn voicemail(&self, tenant: &Tenant, name: &str) -> Uuid {
        self.config
            .create(
                tenant,
                VoicemailBoxSpec {
                    name: name.into(),
                    greeting: None,
                    max_message_seconds: 60,
                },
            )
            .await
            .unwrap()
            .id
    }

    /// A published flow that queues every call to `queue`.
    async fn flow(
        &self,
        tenant: &Tenant,
        name: &str,
        queue: Uuid,
        client: Option<ClientId>,
    ) -> Uuid {
        let flow = self
            .config
            .create_flow(tenant, flow_spec(name, queue, client))
            .await
            .unwrap();
        self.config
            .publish_flow(tenant, flow.item.id, &ChangedBy::system())
            .await
            .unwrap();
        flow.item.id
    }

    async fn rule(
        &self,
        tenant: &Tenant,
        name: &str,
        schedule: Option<Uuid>,
        open: NextStep,
    ) -> Uuid {
        self.config
            .create_rule(
                tenant,
                InboundRuleSpec {
                    name: name.into(),
                    schedule_id: schedule,
                    open,
                    closed: NextStep::Hangup { message: None },
                    holiday: None,
                },
            )
            .await
            .unwrap()
            .item
            .id
    }

    async fn number(
        &self,
        tenant: &Tenant,
        number: &str,
        rule: Uuid,
        client: Option<ClientId>,
    ) -> Result<Uuid, ConfigError> {
        self.config
            .create(
                tenant,
                NumberSpec {
                    number: number.into(),
                    inbound_rule_id: rule,
                    client_id: client.map(|client| client.as_uuid()),
                    description: String::new(),
                },
            )
            .await
            .map(|item| item.id)
    }
}

fn queue_spec(name: &str, client: Option<ClientId>) -> QueueSpec {
    serde_json::from_value(json!({
        "name": name,
        "channel": "voice",
        "client_id": client.map(|client| client.as_uuid()),
    }))
    .unwrap()
}

fn flow_spec(name: &str, queue: Uuid, client: Option<ClientId>) -> FlowSpec {
    FlowSpec {
        name: name.into(),
        client_id: client.map(|client| client.as_uuid()),
        definition: json!({"start": "hello", "nodes": {
            "hello": {"type": "play", "prompt": {"tts": "Hello"}, "next": "queue"},
            "queue": {"type": "enqueue", "queue_id": queue}
        }}),
    }
}

fn schedule_spec(name: &str, weekly: serde_json::Value) -> ScheduleSpec {
    serde_json::from_value(json!({
        "name": name,
        "hours": {"time_zone": "UTC", "weekly": weekly}
    }))
    .unwrap()
}

/// Open Monday 09:00–17:00 UTC.
fn office_hours() -> ScheduleSpec {
    schedule_spec(
        "office",
        json!([{"day": "mon", "open": "09:00", "close": "17:00"}]),
    )
}

fn field_of(error: ConfigError) -> String {
    match error {
        ConfigError::Validation(errors) => errors[0].field.clone(),
        other => panic!("not a validation error: {other:?}"),
    }
}

fn flow_node_of(error: ConfigError) -> (Option<String>, String) {
    match error {
        ConfigError::InvalidFlow(error) => (error.node, error.message),
        other => panic!("not a flow error: {other:?}"),
    }
}

fn conflict_code(error: ConfigError) -> (&'static str, String) {
    match error {
        ConfigError::Conflict { code, detail } => (code, detail),
        other => panic!("not a conflict: {other:?}"),
    }
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, ConfigError>) {
    match result {
        Err(ConfigError::NotFound(_)) => {}
        other => panic!("expected not found, got {other:?}"),
    }
}

/// Runs each test on SQLite and on PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Harness::start(false).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Harness::start(true).await).await;
                }
            )*
        }
    };
}

on_both_backends!(
    every_kind_round_trips,
    invalid_input_is_refused_naming_the_field_or_node,
    another_tenants_ids_are_not_found,
    names_and_numbers_conflict,
    deleting_what_is_in_use_conflicts,
    published_flow_versions_are_immutable,
    a_forced_mode_overrides_the_schedule_until_cleared,
    every_change_is_audited_with_its_actor,
    a_client_scoped_caller_sees_only_its_clients,
    the_engine_is_told_and_loads_queues_and_agent_profiles,
    numbers_resolve_to_their_tenant_and_rule_in_system_scope,
    each_call_reads_the_configuration_as_changed_through_any_instance,
    a_tenants_cached_configuration_is_never_anothers,
    a_transaction_confined_to_a_tenant_sees_none_of_anothers_rows,
    a_deleted_users_profile_frees_what_it_used,
    the_routing_migration_goes_down_and_up_again,
    a_users_new_client_scope_reaches_the_running_acd,
    an_identity_event_older_than_the_stored_row_changes_nothing,
    a_profile_written_before_identitys_event_arrives_has_its_users_scope,
    a_tenant_never_sees_anothers_projected_rows,
    a_new_time_zone_reaches_every_queue,
);

async fn every_kind_round_trips(h: Harness) {
    let tenant = h.tenant().await;
    let config = &h.config;

    let billing = h.skill(&tenant, "billing").await;
    let renamed = config
        .replace(
            &tenant,
            billing,
            SkillSpec {
                name: "  invoices ".into(),
                description: "Bills".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.spec.name, "invoices");
    assert_eq!(
        config.get::<SkillSpec>(&tenant, billing).await.unwrap(),
        renamed
    );

    let lunch = config
        .create(
            &tenant,
            ReasonCodeSpec {
                name: "lunch".into(),
                description: "Lunch break".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        config
            .list::<ReasonCodeSpec>(&tenant, None, 10)
            .await
            .unwrap(),
        vec![lunch.clone()]
    );

    let queue_spec: QueueSpec = serde_json::from_value(json!({
        "name": "Billing",
        "channel": "voice",
        "required_skills": [{"skill_id": billing, "min_proficiency": 4}],
        "priority": 10,
        "service_level": {"percent": 90, "seconds": 30},
        "max_waiting": {"count": 20, "overflow": {"type": "hangup", "message": {"tts": "Busy"}}},
        "max_wait": {"seconds": 600, "overflow": {"type": "external", "number": "+15551234567"}},
        "ring_timeout_seconds": 15,
        "wrap_up_seconds": 30,
        "strategy": "least_occupied",
        "announcements": {"every_seconds": 60, "position": true, "expected_wait": true},
        "music_on_hold": {"file": "moh/jazz.wav"},
        "callback": {"enabled": true, "after_seconds": 120}
    }))
    .unwrap();
    let queue = config.create(&tenant, queue_spec.clone()).await.unwrap();
    assert_eq!(queue.spec, queue_spec);
    assert_eq!(
        config.get::<QueueSpec>(&tenant, queue.id).await.unwrap(),
        queue
    );

    let group = config
        .create(
            &tenant,
            AgentGroupSpec {
                name: "Tier 1".into(),
                description: String::new(),
            },
        )
        .await
        .unwrap();
    let user = h.user(&tenant, None).await;
    let profile: AgentProfileSpec = serde_json::from_value(json!({
        "skills": [{"skill_id": billing, "proficiency": 7}],
        "capacity": {"voice": 1, "chat": 3},
        "voice_blocks_others": false,
        "agent_group_ids": [group.id]
    }))
    .unwrap();
    let (put, created) = config
        .put_agent_profile(&tenant, user, profile.clone())
        .await
        .unwrap();
    assert!(created);
    assert_eq!(put.id, user);
    let (_, created) = config
        .put_agent_profile(&tenant, user, profile.clone())
        .await
        .unwrap();
    assert!(!created, "the second put replaces");
    assert_eq!(
        config
            .get::<AgentProfileSpec>(&tenant, user)
            .await
            .unwrap()
            .spec,
        profile
    );
    assert_not_found(
        config
            .put_agent_profile(&tenant, Uuid::now_v7(), profile.clone())
            .await,
    );

    let ring = config
        .create(
            &tenant,
            RingGroupSpec {
                name: "Sales desk".into(),
                members: vec![user],
                strategy: RingStrategy::Sequential,
                timeout_seconds: 15,
            },
        )
        .await
        .unwrap();
    assert_eq!(ring.spec.members, vec![user]);
    let voicemail = h.voicemail(&tenant, "After hours").await;

    let schedule = config.create(&tenant, office_hours()).await.unwrap();
    assert_eq!(schedule.spec, office_hours());

    let flow = h.flow(&tenant, "Main menu", queue.id, None).await;
    let rule = config
        .create_rule(
            &tenant,
            InboundRuleSpec {
                name: "Main line".into(),
                schedule_id: Some(schedule.id),
                open: NextStep::Flow { flow_id: flow },
                closed: NextStep::Voicemail { box_id: voicemail },
                holiday: Some(NextStep::RingGroup {
                    ring_group_id: ring.id,
                }),
            },
        )
        .await
        .unwrap();
    assert_eq!(rule.forced, None);
    assert_eq!(config.rule(&tenant, rule.item.id).await.unwrap(), rule);

    let number = h
        .number(&tenant, "+33140000001", rule.item.id, None)
        .await
        .unwrap();
    let stored = config.get::<NumberSpec>(&tenant, number).await.unwrap();
    assert_eq!(stored.spec.number, "+33140000001");

    let outbound = config
        .create(
            &tenant,
            OutboundRuleSpec {
                name: "Tier 1 out".into(),
                agent_group_id: group.id,
                trunks: vec!["carrier-a".into(), "carrier-b".into()],
                strategy: TrunkStrategy::RoundRobin,
                caller_id: CallerId::Group { number_id: number },
            },
        )
        .await
        .unwrap();
    assert_eq!(
        config
            .get::<OutboundRuleSpec>(&tenant, outbound.id)
            .await
            .unwrap()
            .spec
            .trunks,
        ["carrier-a", "carrier-b"]
    );

    // Deleting in dependency order empties the tenant.
    config
        .delete::<OutboundRuleSpec>(&tenant, outbound.id)
        .await
        .unwrap();
    config.delete::<NumberSpec>(&tenant, number).await.unwrap();
    config
        .delete::<InboundRuleSpec>(&tenant, rule.item.id)
        .await
        .unwrap();
    config.delete::<FlowSpec>(&tenant, flow).await.unwrap();
    config
        .delete::<ScheduleSpec>(&tenant, schedule.id)
        .await
        .unwrap();
    config
        .delete::<RingGroupSpec>(&tenant, ring.id)
        .await
        .unwrap();
    config
        .delete::<VoicemailBoxSpec>(&tenant, voicemail)
        .await
        .unwrap();
    config
        .delete::<AgentProfileSpec>(&tenant, user)
        .await
        .unwrap();
    config
        .delete::<AgentGroupSpec>(&tenant, group.id)
        .await
        .unwrap();
    config.delete::<QueueSpec>(&tenant, queue.id).await.unwrap();
    config.delete::<SkillSpec>(&tenant, billing).await.unwrap();
    config
        .delete::<ReasonCodeSpec>(&tenant, lunch.id)
        .await
        .unwrap();
    assert_not_found(config.get::<QueueSpec>(&tenant, queue.id).await);
    assert!(
        config
            .list::<SkillSpec>(&tenant, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(config.revision(tenant.id()).await.unwrap() > 20);
}

async fn invalid_input_is_refused_naming_the_field_or_node(h: Harness) {
    let tenant = h.tenant().await;
    let other = h.tenant().await;
    let config = &h.config;
    let rule = h
        .rule(&tenant, "main", None, NextStep::Hangup { message: None })
        .await;

    let error = h
        .number(&tenant, "0140000000", rule, None)
        .await
        .unwrap_err();
    assert_eq!(field_of(error), "number");

    let overlapping = schedule_spec(
        "overlap",
        json!([
            {"day": "mon", "open": "09:00", "close": "12:00"},
            {"day": "mon", "open": "11:00", "close": "14:00"}
        ]),
    );
    let error = config.create(&tenant, overlapping).await.unwrap_err();
    assert_eq!(field_of(error), "hours.weekly[1]");
    let inverted = schedule_spec(
        "inverted",
        json!([{"day": "tue", "open": "18:00", "close": "08:00"}]),
    );
    let error = config.create(&tenant, inverted).await.unwrap_err();
    assert_eq!(field_of(error), "hours.weekly[0]");

    let dangling = FlowSpec {
        name: "broken".into(),
        client_id: None,
        definition: json!({"start": "hello", "nodes": {
            "hello": {"type": "play", "prompt": {"tts": "Hi"}, "next": "gone"}
        }}),
    };
    let (node, _) = flow_node_of(config.create_flow(&tenant, dangling).await.unwrap_err());
    assert_eq!(node.as_deref(), Some("hello"));

    let theirs = h.queue(&other, "Theirs", None).await;
    let (node, message) = flow_node_of(
        config
            .create_flow(&tenant, flow_spec("sneaky", theirs, None))
            .await
            .unwrap_err(),
    );
    assert_eq!(node.as_deref(), Some("queue"));
    assert!(message.contains("does not exist"), "{message}");

    let skill = h.skill(&tenant, "billing").await;
    let mut queue = queue_spec("q", None);
    queue.required_skills = vec![switchboard_routing::config::RequiredSkill {
        skill_id: skill,
        min_proficiency: 0,
    }];
    let error = config.create(&tenant, queue).await.unwrap_err();
    assert_eq!(field_of(error), "required_skills[0].min_proficiency");
    let user = h.user(&tenant, None).await;
    let profile: AgentProfileSpec =
        serde_json::from_value(json!({"skills": [{"skill_id": skill, "proficiency": 11}]}))
            .unwrap();
    let error = config
        .put_agent_profile(&tenant, user, profile)
        .await
        .unwrap_err();
    assert_eq!(field_of(error), "skills[0].proficiency");

    let error = config
        .create_rule(
            &tenant,
            InboundRuleSpec {
                name: "dangling".into(),
                schedule_id: Some(Uuid::now_v7()),
                open: NextStep::Hangup { message: None },
                closed: NextStep::Hangup { message: None },
                holiday: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(field_of(error), "schedule_id");
    // An unpublished flow cannot take calls.
    let queue = h.queue(&tenant, "Support", None).await;
    let draft = config
        .create_flow(&tenant, flow_spec("draft", queue, None))
        .await
        .unwrap();
    let error = config
        .create_rule(
            &tenant,
            InboundRuleSpec {
                name: "to a draft".into(),
                schedule_id: None,
                open: NextStep::Flow {
                    flow_id: draft.item.id,
                },
                closed: NextStep::Hangup { message: None },
                holiday: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(field_of(error), "open.flow_id");
    assert!(h.config.list_rules(&tenant, None, 10).await.unwrap().len() == 1);
}

async fn another_tenants_ids_are_not_found(h: Harness) {
    let a = h.tenant().await;
    let b = h.tenant().await;
    let config = &h.config;
    let skill = h.skill(&a, "billing").await;
    let reason = config
        .create(
            &a,
            ReasonCodeSpec {
                name: "lunch".into(),
                description: String::new(),
            },
        )
        .await
        .unwrap()
        .id;
    let group = config
        .create(
            &a,
            AgentGroupSpec {
                name: "g".into(),
                description: String::new(),
            },
        )
        .await
        .unwrap()
        .id;
    let schedule = config.create(&a, office_hours()).await.unwrap().id;
    let queue = h.queue(&a, "q", None).await;
    let user = h.user(&a, None).await;
    config
        .put_agent_profile(&a, user, serde_json::from_value(json!({})).unwrap())
        .await
        .unwrap();
    let ring = config
        .create(
            &a,
            RingGroupSpec {
                name: "r".into(),
                members: vec![user],
                strategy: RingStrategy::RingAll,
                timeout_seconds: 20,
            },
        )
        .await
        .unwrap()
        .id;
    let voicemail = h.voicemail(&a, "vm").await;
    let flow = h.flow(&a, "f", queue, None).await;
    let rule = h
        .rule(&a, "r", Some(schedule), NextStep::Flow { flow_id: flow })
        .await;
    let number = h.number(&a, "+33140000002", rule, None).await.unwrap();
    let outbound = config
        .create(
            &a,
            OutboundRuleSpec {
                name: "o".into(),
                agent_group_id: group,
                trunks: vec!["t".into()],
                strategy: TrunkStrategy::Sequential,
                caller_id: CallerId::PerNumber {
                    fallback_number_id: number,
                },
            },
        )
        .await
        .unwrap()
        .id;

    async fn hidden<S: ConfigKind>(config: &RoutingConfig, b: &Tenant, id: Uuid, spec: S) {
        assert_not_found(config.get::<S>(b, id).await);
        assert_not_found(config.delete::<S>(b, id).await);
        match config.replace(b, id, spec).await {
            Err(ConfigError::NotFound(_)) => {}
            // A replacement may fail validation first (its references
            // are B's to check): never succeed, never conflict.
            Err(ConfigError::Validation(_)) | Err(ConfigError::InvalidFlow(_)) => {}
            other => panic!("replacing another tenant's {:?}: {other:?}", S::KIND),
        }
        assert!(config.list::<S>(b, None, 100).await.unwrap().is_empty());
    }
    let a_get = |kind: Kind| kind;
    let _ = a_get;
    let skill_spec = config.get::<SkillSpec>(&a, skill).await.unwrap().spec;
    hidden(config, &b, skill, skill_spec).await;
    let spec = config.get::<ReasonCodeSpec>(&a, reason).await.unwrap().spec;
    hidden(config, &b, reason, spec).await;
    let spec = config.get::<AgentGroupSpec>(&a, group).await.unwrap().spec;
    hidden(config, &b, group, spec).await;
    let spec = config.get::<ScheduleSpec>(&a, schedule).await.unwrap().spec;
    hidden(config, &b, schedule, spec).await;
    let spec = config.get::<QueueSpec>(&a, queue).await.unwrap().spec;
    hidden(config, &b, queue, spec).await;
    let spec = config.get::<RingGroupSpec>(&a, ring).await.unwrap().spec;
    hidden(config, &b, ring, spec).await;
    let spec = config
        .get::<VoicemailBoxSpec>(&a, voicemail)
        .await
        .unwrap()
        .spec;
    hidden(config, &b, voicemail, spec).await;
    let spec = config.get::<FlowSpec>(&a, flow).await.unwrap().spec;
    hidden(config, &b, flow, spec).await;
    let spec = config.get::<InboundRuleSpec>(&a, rule).await.unwrap().spec;
    hidden(config, &b, rule, spec).await;
    let spec = config.get::<NumberSpec>(&a, number).await.unwrap().spec;
    hidden(config, &b, number, spec).await;
    let spec = config
        .get::<OutboundRuleSpec>(&a, outbound)
        .await
        .unwrap()
        .spec;
    hidden(config, &b, outbound, spec).await;
    // Agent profiles: the user is A's.
    assert_not_found(config.get::<AgentProfileSpec>(&b, user).await);
    assert_not_found(config.delete::<AgentProfileSpec>(&b, user).await);
    assert_not_found(
        config
            .put_agent_profile(&b, user, serde_json::from_value(json!({})).unwrap())
            .await,
    );
    // Flow versions and forced modes.
    assert_not_found(config.publish_flow(&b, flow, &ChangedBy::system()).await);
    assert_not_found(config.flow_version(&b, flow, 1).await);
    assert_not_found(config.list_flow_versions(&b, flow, None, 10).await);
    assert_not_found(
        config
            .set_forced_mode(
                &b,
                rule,
                ForcedModeSpec {
                    mode: ForcedKind::Closed,
                    destination: None,
                    reason: None,
                },
                &ChangedBy::system(),
            )
            .await,
    );
    assert_not_found(config.evaluate_rule(b.id(), rule, Utc::now()).await);
    // A's items are all still there.
    assert!(config.get::<QueueSpec>(&a, queue).await.is_ok());
    assert!(config.rule(&a, rule).await.unwrap().forced.is_none());
}

async fn names_and_numbers_conflict(h: Harness) {
    let a = h.tenant().await;
    let b = h.tenant().await;
    h.skill(&a, "billing").await;
    let error = h
        .config
        .create(
            &a,
            SkillSpec {
                name: " billing".into(),
                description: String::new(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(conflict_code(error).0, "name_taken");
    // Another tenant may use the name.
    h.skill(&b, "billing").await;
    h.queue(&a, "Support", None).await;
    let other = h.queue(&a, "Sales", None).await;
    let error = h
        .config
        .replace(&a, other, queue_spec("Support", None))
        .await
        .unwrap_err();
    assert_eq!(conflict_code(error).0, "name_taken");

    let rule_a = h
        .rule(&a, "main", None, NextStep::Hangup { message: None })
        .await;
    let rule_b = h
        .rule(&b, "main", None, NextStep::Hangup { message: None })
        .await;
    h.number(&a, "+33140000003", rule_a, None).await.unwrap();
    let error = h
        .number(&a, "+33140000003", rule_a, None)
        .await
        .unwrap_err();
    assert_eq!(conflict_code(error).0, "number_taken");
    let error = h
        .number(&b, "+33140000003", rule_b, None)
        .await
        .unwrap_err();
    let (code, detail) = conflict_code(error);
    assert_eq!(code, "number_unavailable");
    assert!(
        !detail.contains(&a.id().to_string()),
        "who holds it is not said: {detail}"
    );
    // B's failed attempt left nothing behind.
    assert!(
        h.config
            .list::<NumberSpec>(&b, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn deleting_what_is_in_use_conflicts(h: Harness) {
    let tenant = h.tenant().await;
    let config = &h.config;
    let skill = h.skill(&tenant, "billing").await;
    let mut spec = queue_spec("Billing", None);
    spec.required_skills = vec![switchboard_routing::config::RequiredSkill {
        skill_id: skill,
        min_proficiency: 3,
    }];
    let queue = config.create(&tenant, spec).await.unwrap().id;
    let (code, detail) = conflict_code(
        config
            .delete::<SkillSpec>(&tenant, skill)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "in_use");
    assert!(detail.contains(&queue.to_string()), "{detail}");

    let flow = h.flow(&tenant, "main", queue, None).await;
    assert_eq!(
        conflict_code(
            config
                .delete::<QueueSpec>(&tenant, queue)
                .await
                .unwrap_err()
        )
        .0,
        "in_use"
    );
    // A draft that no longer queues there still has a published version
    // that does.
    let other = h.queue(&tenant, "Other", None).await;
    config
        .replace_flow(&tenant, flow, flow_spec("main", other, None))
        .await
        .unwrap();
    assert_eq!(
        conflict_code(
            config
                .delete::<QueueSpec>(&tenant, queue)
                .await
                .unwrap_err()
        )
        .0,
        "in_use"
    );
    config
        .publish_flow(&tenant, flow, &ChangedBy::system())
        .await
        .unwrap();
    let rule = h
        .rule(&tenant, "main", None, NextStep::Flow { flow_id: flow })
        .await;
    assert_eq!(
        conflict_code(config.delete::<FlowSpec>(&tenant, flow).await.unwrap_err()).0,
        "in_use"
    );
    h.number(&tenant, "+33140000004", rule, None).await.unwrap();
    assert_eq!(
        conflict_code(
            config
                .delete::<InboundRuleSpec>(&tenant, rule)
                .await
                .unwrap_err()
        )
        .0,
        "in_use"
    );
    // A queue cannot overflow to itself.
    let mut looping = queue_spec("Other", None);
    looping.max_waiting = Some(switchboard_routing::config::MaxWaiting {
        count: 5,
        overflow: NextStep::Queue {
            queue_id: other,
            priority: None,
        },
    });
    let error = config.replace(&tenant, other, looping).await.unwrap_err();
    assert_eq!(field_of(error), "max_waiting.overflow.queue_id");
    // The first queue is free once the latest version moved on; the skill
    // once the queue is gone.
    config.delete::<QueueSpec>(&tenant, queue).await.unwrap();
    config.delete::<SkillSpec>(&tenant, skill).await.unwrap();
}

async fn published_flow_versions_are_immutable(h: Harness) {
    let tenant = h.tenant().await;
    let config = &h.config;
    let first_queue = h.queue(&tenant, "First", None).await;
    let second_queue = h.queue(&tenant, "Second", None).await;
    let draft = config
        .create_flow(&tenant, flow_spec("main", first_queue, None))
        .await
        .unwrap();
    assert_eq!(draft.latest_version, None);
    let user = Uuid::now_v7();
    let v1 = config
        .publish_flow(&tenant, draft.item.id, &ChangedBy::user(user))
        .await
        .unwrap();
    assert_eq!(v1.version, 1);
    assert_eq!(v1.fingerprint, draft.fingerprint);
    assert_eq!(v1.published_by, Some(user));

    let edited = config
        .replace_flow(
            &tenant,
            draft.item.id,
            flow_spec("main", second_queue, None),
        )
        .await
        .unwrap();
    assert_ne!(edited.fingerprint, v1.fingerprint);
    assert_eq!(
        edited.latest_version,
        Some(1),
        "editing the draft publishes nothing"
    );
    assert_eq!(
        config
            .flow_version(&tenant, draft.item.id, 1)
            .await
            .unwrap(),
        v1
    );
    let v2 = config
        .publish_flow(&tenant, draft.item.id, &ChangedBy::system())
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(v2.fingerprint, edited.fingerprint);
    // Version 1 is unchanged; calls in progress keep it.
    let again = config
        .flow_version(&tenant, draft.item.id, 1)
        .await
        .unwrap();
    assert_eq!(again, v1);
    assert_eq!(
        again.definition["nodes"]["queue"]["queue_id"],
        json!(first_queue)
    );
    assert_eq!(
        again.flow().unwrap().fingerprint(),
        v1.fingerprint,
        "a stored version parses back to the same flow"
    );
    let versions = config
        .list_flow_versions(&tenant, draft.item.id, None, 10)
        .await
        .unwrap();
    assert_eq!(versions, vec![v1.clone(), v2.clone()]);
    // The list tells each flow's latest version (none yet for a draft).
    let unpublished = config
        .create_flow(&tenant, flow_spec("other", first_queue, None))
        .await
        .unwrap();
    let listed: HashMap<Uuid, Option<i32>> = config
        .list_flows(&tenant, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|flow| (flow.item.id, flow.latest_version))
        .collect();
    assert_eq!(
        listed,
        HashMap::from([(draft.item.id, Some(2)), (unpublished.item.id, None)])
    );
    config
        .delete::<FlowSpec>(&tenant, unpublished.item.id)
        .await
        .unwrap();
    assert_eq!(
        config
            .list_flow_versions(&tenant, draft.item.id, Some(1), 10)
            .await
            .unwrap(),
        vec![v2.clone()]
    );
    assert_eq!(
        config
            .published_flow(tenant.id(), draft.item.id)
            .await
            .unwrap(),
        v2
    );
    assert_eq!(
        config
            .published_flow_version(tenant.id(), draft.item.id, 1)
            .await
            .unwrap(),
        v1
    );
    assert_not_found(config.flow_version(&tenant, draft.item.id, 3).await);
}

async fn a_forced_mode_overrides_the_schedule_until_cleared(h: Harness) {
    let tenant = h.tenant().await;
    let config = &h.config;
    let queue = h.queue(&tenant, "Support", None).await;
    let voicemail = h.voicemail(&tenant, "After hours").await;
    let schedule = config.create(&tenant, office_hours()).await.unwrap().id;
    let rule = config
        .create_rule(
            &tenant,
            InboundRuleSpec {
                name: "main".into(),
                schedule_id: Some(schedule),
                open: NextStep::Queue {
                    queue_id: queue,
                    priority: None,
                },
                closed: NextStep::Voicemail { box_id: voicemail },
                holiday: None,
            },
        )
        .await
        .unwrap()
        .item
        .id;
    let monday_noon: DateTime<Utc> = "2025-01-06T12:00:00Z".parse().unwrap();
    let open = config
        .evaluate_rule(tenant.id(), rule, monday_noon)
        .await
        .unwrap();
    assert_eq!(
        open.step,
        NextStep::Queue {
            queue_id: queue,
            priority: None
        }
    );
    assert!(matches!(open.basis, Basis::Schedule { .. }));

    let supervisor = h.user(&tenant, None).await;
    let forced = config
        .set_forced_mode(
            &tenant,
            rule,
            ForcedModeSpec {
                mode: ForcedKind::Closed,
                destination: None,
                reason: Some("fire drill".into()),
            },
            &ChangedBy::user(supervisor),
        )
        .await
        .unwrap();
    let mode = forced.forced.clone().unwrap();
    assert_eq!(mode.mode, ForcedKind::Closed);
    assert_eq!(mode.set_by, Some(supervisor));
    assert_eq!(mode.reason.as_deref(), Some("fire drill"));
    // The answer is the rule as stored now: changed when the mode was set.
    assert_eq!(forced.item.updated_at, mode.set_at);
    assert_eq!(config.rule(&tenant, rule).await.unwrap(), forced);
    let closed = config
        .evaluate_rule(tenant.id(), rule, monday_noon)
        .await
        .unwrap();
    assert_eq!(closed.step, NextStep::Voicemail { box_id: voicemail });
    assert_eq!(
        closed.basis,
        Basis::Forced {
            mode: ForcedKind::Closed
        }
    );
    // Replacing the rule keeps its forced mode.
    let replaced = config
        .replace_rule(
            &tenant,
            rule,
            config.rule(&tenant, rule).await.unwrap().item.spec,
        )
        .await
        .unwrap();
    assert_eq!(replaced.forced, Some(mode));

    // Forced to a destination: its target is in use while it holds.
    let other = h.queue(&tenant, "Emergency", None).await;
    config
        .set_forced_mode(
            &tenant,
            rule,
            ForcedModeSpec {
                mode: ForcedKind::Destination,
                destination: Some(NextStep::Queue {
                    queue_id: other,
                    priority: Some(90),
                }),
                reason: None,
            },
            &ChangedBy::user(supervisor),
        )
        .await
        .unwrap();
    let sunday: DateTime<Utc> = "2025-01-05T12:00:00Z".parse().unwrap();
    assert_eq!(
        config
            .evaluate_rule(tenant.id(), rule, sunday)
            .await
            .unwrap()
            .step,
        NextStep::Queue {
            queue_id: other,
            priority: Some(90)
        }
    );
    assert_eq!(
        conflict_code(
            config
                .delete::<QueueSpec>(&tenant, other)
                .await
                .unwrap_err()
        )
        .0,
        "in_use"
    );
    let error = config
        .set_forced_mode(
            &tenant,
            rule,
            ForcedModeSpec {
                mode: ForcedKind::Destination,
                destination: Some(NextStep::Queue {
                    queue_id: Uuid::now_v7(),
                    priority: None,
                }),
                reason: None,
            },
            &ChangedBy::user(supervisor),
        )
        .await
        .unwrap_err();
    assert_eq!(field_of(error), "destination.queue_id");

    let cleared = config
        .set_forced_mode(
            &tenant,
            rule,
            ForcedModeSpec {
                mode: ForcedKind::None,
                destination: None,
                reason: None,
            },
            &ChangedBy::user(supervisor),
        )
        .await
        .unwrap();
    assert_eq!(cleared.forced, None);
    assert_eq!(
        config
            .evaluate_rule(tenant.id(), rule, sunday)
            .await
            .unwrap()
            .step,
        NextStep::Voicemail { box_id: voicemail },
        "Sunday is closed by the schedule"
    );
    config.delete::<QueueSpec>(&tenant, other).await.unwrap();

    // Every change is in the audit log, by the supervisor: as entries in
    // routing's outbox, which identity writes to the log.
    let entries: Vec<AuditEntry> = h
        .audit_entries(&tenant)
        .await
        .into_iter()
        .filter(|entry| {
            entry.target_id == Some(rule) && entry.action.starts_with("routing.forced_mode")
        })
        .collect();
    let actions: Vec<&str> = entries.iter().map(|entry| entry.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "routing.forced_mode_set",
            "routing.forced_mode_set",
            "routing.forced_mode_cleared"
        ]
    );
    for entry in &entries {
        assert_eq!(entry.actor_id, Some(supervisor));
        assert_eq!(entry.target_type, "inbound_rule");
    }
}

async fn every_change_is_audited_with_its_actor(h: Harness) {
    let tenant = h.tenant().await;
    let user = Uuid::now_v7();
    let admin = h.config.acting(ChangedBy::user(user));
    let skill = |name: &str| SkillSpec {
        name: name.into(),
        description: String::new(),
    };
    let billing = admin.create(&tenant, skill("billing")).await.unwrap();
    admin
        .replace(&tenant, billing.id, skill("invoices"))
        .await
        .unwrap();
    let sales = admin.create(&tenant, skill("sales")).await.unwrap();
    // Refused writes record nothing.
    assert!(
        admin
            .replace(&tenant, sales.id, skill("invoices"))
            .await
            .is_err()
    );
    assert!(admin.create(&tenant, skill("")).await.is_err());
    admin
        .delete::<SkillSpec>(&tenant, billing.id)
        .await
        .unwrap();
    // Without an actor, the system made it.
    let system = h.config.create(&tenant, skill("support")).await.unwrap();
    let flow = h
        .flow(&tenant, "Main", h.queue(&tenant, "Queue", None).await, None)
        .await;
    admin
        .publish_flow(&tenant, flow, &ChangedBy::user(user))
        .await
        .unwrap();

    // In routing's outbox, for identity's audit log.
    let rows: Vec<AuditEntry> = h
        .audit_entries(&tenant)
        .await
        .into_iter()
        .filter(|entry| entry.action.starts_with("routing."))
        .collect();
    let of = |target: Uuid| -> Vec<(String, String, Option<Uuid>, Value)> {
        rows.iter()
            .filter(|entry| entry.target_id == Some(target))
            .map(|entry| {
                (
                    entry.action.clone(),
                    entry.actor_type.clone(),
                    entry.actor_id,
                    entry.details.clone(),
                )
            })
            .collect()
    };
    let by_user =
        |action: &str, details: Value| (action.to_owned(), "user".to_owned(), Some(user), details);
    assert_eq!(
        of(billing.id),
        [
            by_user(
                "routing.skill_created",
                json!({ "definition": { "name": "billing", "description": "" } })
            ),
            by_user(
                "routing.skill_updated",
                json!({ "definition": { "name": "invoices", "description": "" } })
            ),
            by_user("routing.skill_deleted", json!({})),
        ]
    );
    assert_eq!(
        of(sales.id),
        [by_user(
            "routing.skill_created",
            json!({ "definition": { "name": "sales", "description": "" } })
        )]
    );
    assert_eq!(of(system.id)[0].1, "system");
    assert_eq!(of(system.id)[0].2, None);
    // The helper published version 1 as the system; the user version 2.
    let published: Vec<(String, Option<Uuid>, Value)> = of(flow)
        .into_iter()
        .filter(|(action, ..)| action == "routing.flow_published")
        .map(|(_, actor_type, actor, details)| (actor_type, actor, details["version"].clone()))
        .collect();
    assert_eq!(
        published,
        [
            ("system".to_owned(), None, json!(1)),
            ("user".to_owned(), Some(user), json!(2))
        ]
    );
    assert!(
        rows.iter().all(|entry| !entry.target_type.is_empty()),
        "every entry names what it is about"
    );
}

async fn a_client_scoped_caller_sees_only_its_clients(h: Harness) {
    let whole = h.tenant().await;
    let acme = h.client(&whole).await;
    let globex = h.client(&whole).await;
    let scoped = Tenant::scoped(whole.id(), ClientScope::Only([acme].into()));
    let config = &h.config;

    let acme_queue = h.queue(&whole, "Acme", Some(acme)).await;
    let globex_queue = h.queue(&whole, "Globex", Some(globex)).await;
    let own_queue = h.queue(&whole, "Own", None).await;
    let acme_flow = h.flow(&whole, "Acme flow", acme_queue, Some(acme)).await;
    let globex_flow = h
        .flow(&whole, "Globex flow", globex_queue, Some(globex))
        .await;
    let rule = h
        .rule(&whole, "main", None, NextStep::Hangup { message: None })
        .await;
    let acme_number = h
        .number(&whole, "+33140000010", rule, Some(acme))
        .await
        .unwrap();
    let globex_number = h
        .number(&whole, "+33140000011", rule, Some(globex))
        .await
        .unwrap();

    let ids = |items: Vec<Uuid>| items.into_iter().collect::<BTreeSet<_>>();
    let queues = config.list::<QueueSpec>(&scoped, None, 10).await.unwrap();
    assert_eq!(
        ids(queues.iter().map(|q| q.id).collect()),
        ids(vec![acme_queue])
    );
    let flows = config.list_flows(&scoped, None, 10).await.unwrap();
    assert_eq!(
        ids(flows.iter().map(|f| f.item.id).collect()),
        ids(vec![acme_flow])
    );
    let numbers = config.list::<NumberSpec>(&scoped, None, 10).await.unwrap();
    assert_eq!(
        ids(numbers.iter().map(|n| n.id).collect()),
        ids(vec![acme_number])
    );
    assert_not_found(config.get::<QueueSpec>(&scoped, globex_queue).await);
    assert_not_found(config.get::<QueueSpec>(&scoped, own_queue).await);
    assert_not_found(config.flow(&scoped, globex_flow).await);
    assert_not_found(config.get::<NumberSpec>(&scoped, globex_number).await);
    assert_not_found(config.delete::<QueueSpec>(&scoped, globex_queue).await);
    assert_not_found(config.flow_version(&scoped, globex_flow, 1).await);
    // The whole tenant sees everything.
    assert_eq!(
        config
            .list::<QueueSpec>(&whole, None, 10)
            .await
            .unwrap()
            .len(),
        3
    );

    // A scoped caller creates for its clients only, referring to what it
    // sees.
    let error = config
        .create(&scoped, queue_spec("Mine", None))
        .await
        .unwrap_err();
    assert_eq!(field_of(error), "client_id");
    let error = config
        .create(&scoped, queue_spec("Theirs", Some(globex)))
        .await
        .unwrap_err();
    assert_eq!(field_of(error), "client_id");
    config
        .create(&scoped, queue_spec("Mine", Some(acme)))
        .await
        .unwrap();
    let (node, _) = flow_node_of(
        config
            .create_flow(&scoped, flow_spec("peek", globex_queue, Some(acme)))
            .await
            .unwrap_err(),
    );
    assert_eq!(node.as_deref(), Some("queue"));
    // Tenant-wide settings are not a client's.
    assert!(matches!(
        config.list::<SkillSpec>(&scoped, None, 10).await,
        Err(ConfigError::Forbidden { .. })
    ));
    assert!(matches!(
        config.rule(&scoped, rule).await,
        Err(ConfigError::Forbidden { .. })
    ));
}

#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<String>>,
    queues: Mutex<Vec<QueueConfig>>,
    agents: Mutex<Vec<AgentProfile>>,
}

#[async_trait::async_trait]
impl ConfigObserver for Recorder {
    async fn queue_saved(&self, _tenant: TenantId, queue: QueueConfig) {
        self.seen
            .lock()
            .unwrap()
            .push(format!("queue saved {}", queue.id));
        self.queues.lock().unwrap().push(queue);
    }
    async fn queue_deleted(&self, _tenant: TenantId, queue: QueueId) {
        self.seen
            .lock()
            .unwrap()
            .push(format!("queue deleted {queue}"));
    }
    async fn agent_profile_saved(&self, _tenant: TenantId, agent: AgentId, profile: AgentProfile) {
        self.seen
            .lock()
            .unwrap()
            .push(format!("agent saved {agent}"));
        self.agents.lock().unwrap().push(profile);
    }
    async fn agent_profile_deleted(&self, _tenant: TenantId, agent: AgentId) {
        self.seen
            .lock()
            .unwrap()
            .push(format!("agent deleted {agent}"));
    }
}

async fn the_engine_is_told_and_loads_queues_and_agent_profiles(h: Harness) {
    let recorder = Arc::new(Recorder::default());
    let config =
        RoutingConfig::new(h.database.clone(), h.directory.clone()).with_observer(recorder.clone());
    let tenant = h.tenant().await;
    let acme = h.client(&tenant).await;
    let skill = h.skill(&tenant, "billing").await;
    let mut spec = queue_spec("Billing", Some(acme));
    spec.required_skills = vec![switchboard_routing::config::RequiredSkill {
        skill_id: skill,
        min_proficiency: 5,
    }];
    spec.wrap_up_seconds = 10;
    let queue = config.create(&tenant, spec).await.unwrap().id;
    let agent = h.user(&tenant, Some(&[acme])).await;
    config
        .put_agent_profile(
            &tenant,
            agent,
            serde_json::from_value(json!({
                "skills": [{"skill_id": skill, "proficiency": 6}],
                "capacity": {"voice": 1, "chat": 2}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    // A failed save tells nothing.
    assert!(
        config
            .create(&tenant, queue_spec("Billing", None))
            .await
            .is_err()
    );

    let loaded_queues = config.queue_configs(tenant.id()).await.unwrap();
    assert_eq!(loaded_queues, recorder.queues.lock().unwrap().clone());
    assert_eq!(loaded_queues[0].channel, Channel::Voice);
    assert_eq!(loaded_queues[0].client, Some(acme.as_uuid()));
    let loaded_agents = config.agent_profiles(tenant.id()).await.unwrap();
    assert_eq!(loaded_agents, recorder.agents.lock().unwrap().clone());
    assert_eq!(
        loaded_agents[0].clients,
        Some(vec![acme.as_uuid()]),
        "an agent serves its user's clients"
    );
    assert!(loaded_agents[0].qualifies_for(&loaded_queues[0]));

    config
        .delete::<AgentProfileSpec>(&tenant, agent)
        .await
        .unwrap();
    config.delete::<QueueSpec>(&tenant, queue).await.unwrap();
    assert_eq!(
        recorder.seen.lock().unwrap().clone(),
        [
            format!("queue saved {queue}"),
            format!("agent saved {agent}"),
            format!("agent deleted {agent}"),
            format!("queue deleted {queue}"),
        ]
    );
    assert!(config.agent_profiles(tenant.id()).await.unwrap().is_empty());
}

async fn numbers_resolve_to_their_tenant_and_rule_in_system_scope(h: Harness) {
    let a = h.tenant().await;
    let b = h.tenant().await;
    let acme = h.client(&b).await;
    let rule_a = h
        .rule(&a, "main", None, NextStep::Hangup { message: None })
        .await;
    let rule_b = h
        .rule(&b, "main", None, NextStep::Hangup { message: None })
        .await;
    let number_a = h.number(&a, "+33140000020", rule_a, None).await.unwrap();
    h.number(&b, "+33140000021", rule_b, Some(acme))
        .await
        .unwrap();

    let route = h.config.resolve_number("+33140000020").await.unwrap();
    assert_eq!(route.tenant, a.id());
    assert_eq!(route.inbound_rule_id, rule_a);
    assert_eq!(route.number_id, number_a);
    let route = h.config.resolve_number("+33140000021").await.unwrap();
    assert_eq!((route.tenant, route.inbound_rule_id), (b.id(), rule_b));
    assert_eq!(route.client_id, Some(acme.as_uuid()));
    assert_not_found(h.config.resolve_number("+33140000099").await);
    assert!(matches!(
        h.config.resolve_number("not a number").await,
        Err(ConfigError::Validation(_))
    ));
    let decision = h
        .config
        .evaluate_rule(route.tenant, route.inbound_rule_id, Utc::now())
        .await
        .unwrap();
    assert_eq!(decision.step, NextStep::Hangup { message: None });
}

/// A call-path instance over the harness's database, with a
/// configuration (and so a cache) of its own, on the one routing runtime.
fn calls(h: &Harness, routing: &Routing, state: &Arc<dyn Cache>) -> Calls {
    Calls::new(
        routing.clone(),
        RoutingConfig::new(h.database.clone(), h.directory.clone()),
        state.clone(),
    )
}

/// The routing runtime the instances share, its state in Redis
/// (PostgreSQL) or in process (SQLite).
fn routing(h: &Harness, state: &Arc<dyn Cache>) -> Routing {
    Routing::new(state.clone(), h.database.clone(), RoutingOptions::default())
        .with_config(RoutingConfig::new(h.database.clone(), h.directory.clone()))
}

async fn routing_state(h: &Harness) -> Arc<dyn Cache> {
    if h.postgres {
        Arc::new(
            RedisCache::connect(&redis_url(), &unique_name("calls"))
                .await
                .expect("Redis is reachable (./scripts/test starts it)"),
        )
    } else {
        Arc::new(MemoryCache::new())
    }
}

/// The tenant and first step a new call to `number` gets.
async fn first_step(calls: &Calls, number: &str) -> (TenantId, Step) {
    let decision = calls
        .new_call(InboundCall {
            number: number.into(),
            caller: "+15550000001".into(),
            trunk: "carrier".into(),
            attributes: Default::default(),
            admitted_tenants: Vec::new(),
            over_limit: Vec::new(),
        })
        .await;
    match decision {
        CallDecision::Accept { tenant, step, .. } => (tenant, step),
        other => panic!("the call was not taken: {other:?}"),
    }
}

fn greeting(name: &str, queue: Uuid, says: &str) -> FlowSpec {
    FlowSpec {
        name: name.into(),
        client_id: None,
        definition: json!({"start": "hello", "nodes": {
            "hello": {"type": "play", "prompt": {"tts": says}, "next": "queue"},
            "queue": {"type": "enqueue", "queue_id": queue}
        }}),
    }
}

fn says(step: &Step) -> &str {
    match step {
        Step::Play {
            prompt: PromptSource::Tts(text),
            ..
        } => text,
        other => panic!("not a spoken prompt: {other:?}"),
    }
}

async fn each_call_reads_the_configuration_as_changed_through_any_instance(h: Harness) {
    const NUMBER: &str = "+33140000030";
    let a = h.tenant().await;
    let b = h.tenant().await;
    let queue = h.queue(&a, "Sales", None).await;
    let flow = h
        .config
        .create_flow(&a, greeting("Welcome", queue, "One"))
        .await
        .unwrap()
        .item
        .id;
    h.config
        .publish_flow(&a, flow, &ChangedBy::system())
        .await
        .unwrap();
    let rule = h
        .rule(&a, "main", None, NextStep::Flow { flow_id: flow })
        .await;
    let number = h.number(&a, NUMBER, rule, None).await.unwrap();
    let state = routing_state(&h).await;
    // Two instances, each with its cache; the changes come through a
    // third (the harness's configuration API), as from another replica.
    let routing = routing(&h, &state);
    let instances = [calls(&h, &routing, &state), calls(&h, &routing, &state)];
    for calls in &instances {
        let (tenant, step) = first_step(calls, NUMBER).await;
        assert_eq!((tenant, says(&step)), (a.id(), "One"));
        // Asked again, from the cache.
        assert_eq!(says(&first_step(calls, NUMBER).await.1), "One");
    }

    // A new version of the flow: the next call starts on it.
    h.config
        .replace_flow(&a, flow, greeting("Welcome", queue, "Two"))
        .await
        .unwrap();
    for calls in &instances {
        assert_eq!(
            says(&first_step(calls, NUMBER).await.1),
            "One",
            "a draft is not published"
        );
    }
    h.config
        .publish_flow(&a, flow, &ChangedBy::system())
        .await
        .unwrap();
    for calls in &instances {
        assert_eq!(says(&first_step(calls, NUMBER).await.1), "Two");
    }

    // The rule changes its step.
    let closed = NextStep::Hangup {
        message: Some(serde_json::from_value(json!({"tts": "Closed today"})).unwrap()),
    };
    h.config
        .replace_rule(
            &a,
            rule,
            InboundRuleSpec {
                name: "main".into(),
                schedule_id: None,
                open: closed.clone(),
                closed: closed.clone(),
                holiday: None,
            },
        )
        .await
        .unwrap();
    for calls in &instances {
        assert_eq!(
            first_step(calls, NUMBER).await.1,
            Step::Hangup {
                prompt: Some(PromptSource::Tts("Closed today".into()))
            }
        );
    }

    // A supervisor forces the rule to a destination.
    h.config
        .set_forced_mode(
            &a,
            rule,
            ForcedModeSpec {
                mode: ForcedKind::Destination,
                destination: Some(NextStep::External {
                    number: "+15551230000".into(),
                }),
                reason: None,
            },
            &ChangedBy::system(),
        )
        .await
        .unwrap();
    for calls in &instances {
        assert_eq!(
            first_step(calls, NUMBER).await.1,
            Step::Transfer {
                number: "+15551230000".into()
            }
        );
    }

    // The number goes to another rule, which queues the call; then the
    // queue's music on hold changes.
    let queued = h
        .rule(
            &a,
            "queue",
            None,
            NextStep::Queue {
                queue_id: queue,
                priority: None,
            },
        )
        .await;
    h.config
        .replace(
            &a,
            number,
            NumberSpec {
                number: NUMBER.into(),
                inbound_rule_id: queued,
                client_id: None,
                description: String::new(),
            },
        )
        .await
        .unwrap();
    let music = |step: Step| match step {
        Step::Queued { music_on_hold, .. } => music_on_hold,
        other => panic!("not queued: {other:?}"),
    };
    for calls in &instances {
        assert_eq!(music(first_step(calls, NUMBER).await.1), None);
    }
    let mut spec = queue_spec("Sales", None);
    spec.music_on_hold = Some(serde_json::from_value(json!({"tts": "Music"})).unwrap());
    h.config.replace(&a, queue, spec).await.unwrap();
    for calls in &instances {
        assert_eq!(
            music(first_step(calls, NUMBER).await.1),
            Some(PromptSource::Tts("Music".into()))
        );
    }

    // The number leaves the tenant, then another tenant takes it: calls
    // are refused in between, and go to the new holder's rule after.
    h.config.delete::<NumberSpec>(&a, number).await.unwrap();
    for calls in &instances {
        let refused = calls
            .new_call(InboundCall {
                number: NUMBER.into(),
                caller: "+15550000001".into(),
                trunk: "carrier".into(),
                attributes: Default::default(),
                admitted_tenants: Vec::new(),
                over_limit: Vec::new(),
            })
            .await;
        assert!(
            matches!(
                refused,
                CallDecision::Reject {
                    sip_status: 404,
                    ..
                }
            ),
            "{refused:?}"
        );
    }
    let rule_b = h
        .rule(
            &b,
            "main",
            None,
            NextStep::External {
                number: "+15559870000".into(),
            },
        )
        .await;
    h.number(&b, NUMBER, rule_b, None).await.unwrap();
    for calls in &instances {
        assert_eq!(
            first_step(calls, NUMBER).await,
            (
                b.id(),
                Step::Transfer {
                    number: "+15559870000".into()
                }
            )
        );
    }
}

async fn a_tenants_cached_configuration_is_never_anothers(h: Harness) {
    let a = h.tenant().await;
    let b = h.tenant().await;
    let queue = h.queue(&a, "Sales", None).await;
    let flow = h.flow(&a, "Welcome", queue, None).await;
    let rule = h
        .rule(&a, "main", None, NextStep::Flow { flow_id: flow })
        .await;
    let cached = CachedConfig::new(RoutingConfig::new(h.database.clone(), h.directory.clone()));
    // Cached for a: the queue, the flow, the rule.
    let of_a = cached.tenant(a.id()).await.unwrap();
    assert_eq!(
        of_a.queue(QueueId::from_uuid(queue)).await.unwrap().name,
        "Sales"
    );
    assert_eq!(of_a.published_flow(flow).await.unwrap().view.flow_id, flow);
    assert_eq!(of_a.flow_version(flow, 1).await.unwrap().view.version, 1);
    of_a.decide(rule, Utc::now()).await.unwrap();
    // b asks for a's ids: not found, cached or not.
    let of_b = cached.tenant(b.id()).await.unwrap();
    assert_not_found(of_b.queue(QueueId::from_uuid(queue)).await);
    assert_not_found(of_b.published_flow(flow).await);
    assert_not_found(of_b.flow_version(flow, 1).await);
    assert_not_found(of_b.decide(rule, Utc::now()).await);
    // And a still has them (b's misses changed nothing of a's).
    let of_a = cached.tenant(a.id()).await.unwrap();
    assert_eq!(
        of_a.queue(QueueId::from_uuid(queue)).await.unwrap().name,
        "Sales"
    );
    // What is cached is served while the revision holds: a rule changed
    // behind the API's back (no revision bump) is not seen until the next
    // write of the tenant's configuration, whatever it changes.
    let hangup = InboundRuleSpec {
        name: "main".into(),
        schedule_id: None,
        open: NextStep::Hangup { message: None },
        closed: NextStep::Hangup { message: None },
        holiday: None,
    };
    let transaction = h.admin.begin_tenant(a.id().as_uuid()).await.unwrap();
    let update = Query::update()
        .table(Alias::new("routing_inbound_rules"))
        .value(
            Alias::new("definition"),
            serde_json::to_string(&hangup).unwrap(),
        )
        .and_where(Expr::col(Alias::new("id")).eq(rule))
        .to_owned();
    transaction.execute(&update).await.unwrap();
    transaction.commit().await.unwrap();
    let step =
        |config: TenantConfig| async move { config.decide(rule, Utc::now()).await.unwrap().step };
    let cached_step = step(cached.tenant(a.id()).await.unwrap()).await;
    assert_eq!(cached_step, NextStep::Flow { flow_id: flow });
    h.skill(&a, "unrelated").await;
    let fresh_step = step(cached.tenant(a.id()).await.unwrap()).await;
    assert_eq!(fresh_step, NextStep::Hangup { message: None });

    // A number is a's alone too.
    h.number(&a, "+33140000031", rule, None).await.unwrap();
    let (route, config) = cached.number("+33140000031").await.unwrap();
    assert_eq!((route.tenant, config.tenant()), (a.id(), a.id()));
    assert_not_found(cached.number("+33140000032").await);
}

async fn a_transaction_confined_to_a_tenant_sees_none_of_anothers_rows(h: Harness) {
    let a = h.tenant().await;
    let b = h.tenant().await;
    for tenant in [&a, &b] {
        let queue = h.queue(tenant, "Support", None).await;
        let flow = h.flow(tenant, "main", queue, None).await;
        let rule = h
            .rule(tenant, "main", None, NextStep::Flow { flow_id: flow })
            .await;
        let number = if tenant == &a {
            "+33140000030"
        } else {
            "+33140000031"
        };
        h.number(tenant, number, rule, None).await.unwrap();
    }
    if !h.postgres {
        // SQLite has no row-level security: the store's filters are what
        // isolate tenants there (checked by the tests above).
        return;
    }
    let transaction = h.database.begin_tenant(a.id().as_uuid()).await.unwrap();
    for table in [
        "routing_queues",
        "routing_flows",
        "routing_flow_versions",
        "routing_inbound_rules",
        "routing_numbers",
        "routing_references",
        "routing_config_revisions",
    ] {
        // No tenant filter: row-level security alone confines the query.
        let rows = transaction
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT tenant_id FROM {table}"),
            ))
            .await
            .unwrap();
        assert!(!rows.is_empty(), "{table} has A's rows");
        for row in rows {
            let tenant: Uuid = row.try_get("", "tenant_id").unwrap();
            assert_eq!(
                tenant,
                a.id().as_uuid(),
                "{table} shows another tenant's row"
            );
        }
    }
    // Writing B's rows from A's transaction is refused too.
    let insert = transaction
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO routing_skills (id, tenant_id, name, definition, created_at, updated_at) \
             VALUES ($1, $2, 'x', '{}', now(), now())",
            [Uuid::now_v7().into(), b.id().as_uuid().into()],
        ))
        .await;
    assert!(insert.is_err(), "RLS refuses another tenant's row");
    drop(transaction);
    // A transaction with no tenant sees nothing at all.
    let plain = h.database.connection().begin().await.unwrap();
    let rows = plain
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT id FROM routing_queues".to_owned(),
        ))
        .await
        .unwrap();
    assert!(rows.is_empty());
}

async fn a_deleted_users_profile_frees_what_it_used(h: Harness) {
    let tenant = h.tenant().await;
    let skill = h.skill(&tenant, "billing").await;
    let user = h.user(&tenant, None).await;
    let profile: AgentProfileSpec =
        serde_json::from_value(json!({"skills": [{"skill_id": skill, "proficiency": 5}]})).unwrap();
    h.config
        .put_agent_profile(&tenant, user, profile)
        .await
        .unwrap();
    assert_eq!(
        conflict_code(
            h.config
                .delete::<SkillSpec>(&tenant, skill)
                .await
                .unwrap_err()
        )
        .0,
        "in_use"
    );
    // Identity deletes the user; its profile goes with it.
    h.delete_user(&tenant, user).await;
    assert_not_found(h.config.get::<AgentProfileSpec>(&tenant, user).await);
    h.config.delete::<SkillSpec>(&tenant, skill).await.unwrap();
}

async fn the_routing_migration_goes_down_and_up_again(h: Harness) {
    use switchboard_migrations::SchemaManager;
    let tenant = h.tenant().await;
    h.skill(&tenant, "billing").await;
    let connection = h.admin.connection();
    let names: Vec<String> = Migrator::migrations()
        .iter()
        .map(|migration| migration.name().to_owned())
        .collect();
    let mine = names
        .iter()
        .position(|name| name == "m20261204_000005_create_routing")
        .unwrap();
    let steps = u32::try_from(names.len() - mine).unwrap();
    Migrator::down(connection, Some(steps)).await.unwrap();
    let manager = SchemaManager::new(connection);
    for kind in Kind::ALL {
        assert!(
            !manager.has_table(kind.table()).await.unwrap(),
            "{} is dropped",
            kind.table()
        );
    }
    for table in [
        "routing_flow_versions",
        "routing_references",
        "routing_config_revisions",
    ] {
        assert!(
            !manager.has_table(table).await.unwrap(),
            "{table} is dropped"
        );
    }
    Migrator::up(connection, None).await.unwrap();
    assert!(
        h.config
            .list::<SkillSpec>(&tenant, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    h.skill(&tenant, "billing").await;
}

impl Harness {
    /// Applies `event` with `handler` (a configuration with an observer).
    async fn feed_to(&self, handler: &Arc<dyn EventHandler>, event: Event) {
        let transaction = self
            .database
            .begin_tenant(event.tenant.as_uuid())
            .await
            .unwrap();
        handler.handle(&transaction, &event).await.unwrap();
        transaction.commit().await.unwrap();
        handler.committed(&[event]).await;
    }
}

fn agent_profile_spec(skill: Uuid) -> AgentProfileSpec {
    serde_json::from_value(json!({"skills": [{"skill_id": skill, "proficiency": 5}]})).unwrap()
}

async fn a_users_new_client_scope_reaches_the_running_acd(h: Harness) {
    let recorder = Arc::new(Recorder::default());
    let config =
        RoutingConfig::new(h.database.clone(), h.directory.clone()).with_observer(recorder.clone());
    let projection = config.identity_projection();
    let tenant = h.tenant().await;
    let acme = h.client(&tenant).await;
    let globex = h.client(&tenant).await;
    let skill = h.skill(&tenant, "billing").await;
    let user = h.user(&tenant, Some(&[acme])).await;
    config
        .put_agent_profile(&tenant, user, agent_profile_spec(skill))
        .await
        .unwrap();
    assert_eq!(
        recorder.agents.lock().unwrap().last().unwrap().clients,
        Some(vec![acme.as_uuid()])
    );

    // Identity moves the user to Globex: the ACD is told, in its types.
    h.feed_to(
        &projection,
        Harness::user_event(&tenant, user, Some(&[globex]), false),
    )
    .await;
    assert_eq!(
        recorder.agents.lock().unwrap().last().unwrap().clients,
        Some(vec![globex.as_uuid()])
    );
    assert_eq!(
        config.agent_profiles(tenant.id()).await.unwrap()[0].clients,
        Some(vec![globex.as_uuid()])
    );
    // A user without a profile tells the ACD nothing.
    let told = recorder.seen.lock().unwrap().len();
    let other = h.user(&tenant, None).await;
    h.feed_to(
        &projection,
        Harness::user_event(&tenant, other, None, false),
    )
    .await;
    assert_eq!(recorder.seen.lock().unwrap().len(), told);

    // Globex goes: identity drops it from its users without a user event.
    h.feed_to(
        &projection,
        Event::new(
            tenant.id(),
            "identity",
            Payload::ClientDeleted(proto::ClientDeleted {
                client_id: globex.to_string(),
            }),
        ),
    )
    .await;
    assert_eq!(
        recorder.agents.lock().unwrap().last().unwrap().clients,
        Some(vec![]),
        "an agent whose only client went serves no queue"
    );

    // The user goes: so do its profile and its agent.
    h.feed_to(
        &projection,
        Event::new(
            tenant.id(),
            "identity",
            Payload::UserDeleted(proto::UserDeleted {
                user_id: user.to_string(),
            }),
        ),
    )
    .await;
    assert_eq!(
        recorder.seen.lock().unwrap().last().unwrap(),
        &format!("agent deleted {user}")
    );
    assert_not_found(config.get::<AgentProfileSpec>(&tenant, user).await);
    // And a profile for it is refused from now on.
    assert_not_found(
        config
            .put_agent_profile(&tenant, user, agent_profile_spec(skill))
            .await,
    );
}

async fn an_identity_event_older_than_the_stored_row_changes_nothing(h: Harness) {
    let tenant = h.tenant().await;
    let acme = h.client(&tenant).await;
    let skill = h.skill(&tenant, "billing").await;
    let user = h.user(&tenant, None).await;
    h.config
        .put_agent_profile(&tenant, user, agent_profile_spec(skill))
        .await
        .unwrap();
    let scope = || async {
        h.config.agent_profiles(tenant.id()).await.unwrap()[0]
            .clients
            .clone()
    };
    let newer = Harness::user_event(&tenant, user, Some(&[acme]), false);
    let mut older = Harness::user_event(&tenant, user, None, false);
    older.occurred_at = newer.occurred_at - chrono::Duration::seconds(5);
    h.feed(newer.clone()).await;
    assert_eq!(scope().await, Some(vec![acme.as_uuid()]));
    // Late, replayed or redelivered: nothing changes.
    h.feed(older).await;
    h.feed(newer.clone()).await;
    assert_eq!(scope().await, Some(vec![acme.as_uuid()]));

    // A deleted client stays gone from an older event naming it.
    let gone = Event::new(
        tenant.id(),
        "identity",
        Payload::ClientDeleted(proto::ClientDeleted {
            client_id: acme.to_string(),
        }),
    );
    h.feed(gone.clone()).await;
    assert_eq!(scope().await, Some(vec![]));
    let mut stale = Harness::user_event(&tenant, user, Some(&[acme]), false);
    stale.occurred_at = gone.occurred_at - chrono::Duration::milliseconds(1);
    h.feed(stale).await;
    assert_eq!(scope().await, Some(vec![]));
    // A newer event naming it anyway keeps it out.
    h.feed(Harness::user_event(&tenant, user, Some(&[acme]), false))
        .await;
    assert_eq!(scope().await, Some(vec![]));

    // A deleted user is not brought back by an older update.
    let deleted = Event::new(
        tenant.id(),
        "identity",
        Payload::UserDeleted(proto::UserDeleted {
            user_id: user.to_string(),
        }),
    );
    let mut before = Harness::user_event(&tenant, user, None, false);
    before.occurred_at = deleted.occurred_at - chrono::Duration::seconds(1);
    h.feed(deleted).await;
    h.feed(before).await;
    assert!(
        h.config
            .agent_profiles(tenant.id())
            .await
            .unwrap()
            .is_empty()
    );
    assert_not_found(
        h.config
            .put_agent_profile(&tenant, user, agent_profile_spec(skill))
            .await,
    );
}

async fn a_profile_written_before_identitys_event_arrives_has_its_users_scope(h: Harness) {
    let tenant = h.tenant().await;
    let acme = h.client(&tenant).await;
    let skill = h.skill(&tenant, "billing").await;
    // Identity created the user; its event has not reached routing yet.
    let user = Uuid::now_v7();
    h.insert(
        "users",
        vec![
            ("id", user.into()),
            ("tenant_id", tenant.id().as_uuid().into()),
            ("email", format!("{}@example.com", unique_name("u")).into()),
            ("display_name", "Agent".into()),
            ("roles", "agent".into()),
            ("all_clients", false.into()),
            ("status", "active".into()),
            ("created_at", Utc::now().into()),
            ("updated_at", Utc::now().into()),
        ],
    )
    .await;
    h.directory.users.lock().unwrap().insert(
        (tenant.id(), UserId::from_uuid(user)),
        ClientScope::Only([acme].into()),
    );
    h.config
        .put_agent_profile(&tenant, user, agent_profile_spec(skill))
        .await
        .unwrap();
    let scope = || async {
        h.config.agent_profiles(tenant.id()).await.unwrap()[0]
            .clients
            .clone()
    };
    assert_eq!(scope().await, Some(vec![acme.as_uuid()]));
    // The event, when it comes, is what routing keeps.
    h.rescope(&tenant, user, None).await;
    assert_eq!(scope().await, None);
    // A user identity does not know is refused, as a client it does not.
    assert_not_found(
        h.config
            .put_agent_profile(&tenant, Uuid::now_v7(), agent_profile_spec(skill))
            .await,
    );
    assert_eq!(
        field_of(
            h.config
                .create(&tenant, queue_spec("Ghost", Some(ClientId::new())))
                .await
                .unwrap_err()
        ),
        "client_id"
    );
}

async fn a_tenant_never_sees_anothers_projected_rows(h: Harness) {
    let a = h.tenant().await;
    let b = h.tenant().await;
    for tenant in [&a, &b] {
        let client = h.client(tenant).await;
        h.user(tenant, Some(&[client])).await;
    }
    if !h.postgres {
        // No row-level security on SQLite: every read filters by tenant.
        return;
    }
    let transaction = h.database.begin_tenant(a.id().as_uuid()).await.unwrap();
    for table in [
        "routing_directory_tenants",
        "routing_directory_clients",
        "routing_directory_users",
    ] {
        // No tenant filter: row-level security alone confines the query.
        let rows = transaction
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT tenant_id FROM {table}"),
            ))
            .await
            .unwrap();
        assert!(!rows.is_empty(), "{table} has A's rows");
        for row in rows {
            let tenant: Uuid = row.try_get("", "tenant_id").unwrap();
            assert_eq!(
                tenant,
                a.id().as_uuid(),
                "{table} shows another tenant's row"
            );
        }
    }
    let insert = transaction
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO routing_directory_clients (id, tenant_id, deleted, version) \
             VALUES ($1, $2, false, 1)",
            [Uuid::now_v7().into(), b.id().as_uuid().into()],
        ))
        .await;
    assert!(insert.is_err(), "RLS refuses another tenant's row");
    drop(transaction);
    // An event of B applied in A's scope finds and changes none of B's rows.
    let transaction = h.database.begin_tenant(b.id().as_uuid()).await.unwrap();
    let count = transaction
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM routing_directory_users".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(count, 1, "B sees its one user");
}

async fn a_new_time_zone_reaches_every_queue(h: Harness) {
    let recorder = Arc::new(Recorder::default());
    let config =
        RoutingConfig::new(h.database.clone(), h.directory.clone()).with_observer(recorder.clone());
    let projection = config.identity_projection();
    let tenant = h.tenant().await;
    let queue = config
        .create(&tenant, queue_spec("Billing", None))
        .await
        .unwrap()
        .id;
    assert_eq!(
        recorder
            .queues
            .lock()
            .unwrap()
            .last()
            .unwrap()
            .time_zone
            .as_deref(),
        Some("UTC")
    );
    h.feed_to(
        &projection,
        Event::new(
            tenant.id(),
            "identity",
            Payload::TenantUpdated(proto::TenantUpdated {
                tenant_id: tenant.id().to_string(),
                name: "Renamed".into(),
                time_zone: "Europe/Paris".into(),
            }),
        ),
    )
    .await;
    let told = recorder.queues.lock().unwrap().last().unwrap().clone();
    assert_eq!(told.id, QueueId::from_uuid(queue));
    assert_eq!(told.time_zone.as_deref(), Some("Europe/Paris"));
    assert_eq!(
        config.queue_configs(tenant.id()).await.unwrap()[0]
            .time_zone
            .as_deref(),
        Some("Europe/Paris")
    );
}
