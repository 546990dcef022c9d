//! The routing configuration as callers see it: what a tenant's admins
//! set up (numbers, schedules, inbound rules, flows, queues, skills, agent
//! profiles, agent and ring groups, voicemail boxes, outbound rules,
//! reason codes).
//!
//! - [`domain`]: each kind's settings (`…Spec`), their validation on their
//!   own and what they refer to, the inbound-rule decision, and the
//!   conversion of queues and agent profiles to the ACD engine's types.
//!   Pure, unit-tested; the routing service checks references inside the
//!   tenant on every write.
//! - [`RoutingConfigApi`]: the API, object-safe: items travel as [`Spec`]
//!   (one variant per kind). [`RoutingConfigExt`] adds the typed calls
//!   (`config.create(&tenant, QueueSpec { … })`, `config.get::<QueueSpec>(…)`).
//! - [`RemoteRoutingConfig`]: the API over gRPC.

pub mod domain;
mod error;
#[cfg(feature = "openapi")]
pub mod openapi;
mod remote;
mod views;
pub mod wire;

use std::sync::Arc;

use switchboard_rpc::ServiceError;
use uuid::Uuid;

pub use domain::{
    AgentGroupSpec, AgentProfileSpec, AgentSkill, Announcements, Basis, CallbackOffer, CallerId,
    ChannelCapacity, ConfigKind, FlowSpec, ForcedKind, ForcedMode, ForcedModeSpec, InboundRuleSpec,
    Kind, MaxWait, MaxWaiting, NextStep, NumberSpec, OutboundRuleSpec, QueueSpec, ReasonCodeSpec,
    RequiredSkill, RingGroupSpec, RingStrategy, ScheduleSpec, ServiceLevel, SkillSpec,
    TrunkStrategy, VoicemailBoxSpec, check_e164,
};
pub use error::{FieldError, SpecError, flow_field};
pub use remote::RemoteRoutingConfig;
pub use switchboard_tenancy::Tenant;
pub use views::{FlowVersionView, FlowView, Item, NumberRoute, RuleDecision, RuleView};

/// What a configuration call answers.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Who makes a change, as recorded with forced modes, published flow
/// versions and the audit log. Over gRPC it is the principal of the
/// service credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedBy {
    /// `user`, `api_key` or `system`.
    pub actor_type: &'static str,
    pub actor_id: Option<Uuid>,
}

impl ChangedBy {
    pub fn user(id: Uuid) -> Self {
        Self {
            actor_type: "user",
            actor_id: Some(id),
        }
    }

    pub fn system() -> Self {
        Self {
            actor_type: "system",
            actor_id: None,
        }
    }

    /// The actor named `actor_type` (`user`, `api_key`, `system`), if it
    /// is one of those.
    pub fn parse(actor_type: &str, actor_id: Option<Uuid>) -> Option<Self> {
        let actor_type = ["user", "api_key", "system"]
            .into_iter()
            .find(|known| *known == actor_type)?;
        Some(Self {
            actor_type,
            actor_id,
        })
    }
}

macro_rules! specs {
    ($($variant:ident($spec:ident)),* $(,)?) => {
        /// An item's settings, of any kind.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Spec {
            $($variant($spec),)*
        }

        impl Spec {
            pub fn kind(&self) -> Kind {
                match self {
                    $(Spec::$variant(_) => Kind::$variant,)*
                }
            }

            /// The settings as their canonical JSON document (what the
            /// store keeps).
            pub fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
                match self {
                    $(Spec::$variant(spec) => serde_json::to_value(spec),)*
                }
            }

            /// Settings of `kind` from their JSON document.
            pub fn from_json(kind: Kind, json: serde_json::Value) -> Result<Self, serde_json::Error> {
                Ok(match kind {
                    $(Kind::$variant => Spec::$variant(serde_json::from_value(json)?),)*
                })
            }
        }

        $(
            impl From<$spec> for Spec {
                fn from(spec: $spec) -> Self {
                    Spec::$variant(spec)
                }
            }

            impl TryFrom<Spec> for $spec {
                type Error = Spec;

                fn try_from(spec: Spec) -> Result<Self, Spec> {
                    match spec {
                        Spec::$variant(spec) => Ok(spec),
                        other => Err(other),
                    }
                }
            }
        )*
    };
}

specs!(
    Skill(SkillSpec),
    ReasonCode(ReasonCodeSpec),
    AgentGroup(AgentGroupSpec),
    Schedule(ScheduleSpec),
    Queue(QueueSpec),
    AgentProfile(AgentProfileSpec),
    RingGroup(RingGroupSpec),
    VoicemailBox(VoicemailBoxSpec),
    Flow(FlowSpec),
    InboundRule(InboundRuleSpec),
    Number(NumberSpec),
    OutboundRule(OutboundRuleSpec),
);

/// The routing configuration API.
///
/// Admin methods take the caller's [`Tenant`] (tenant id and client scope)
/// first: another tenant's ids, and a client-scoped caller's view of other
/// clients' numbers, flows and queues, are not found (never forbidden).
/// Tenant-wide kinds (everything but numbers, flows and queues) need a
/// caller that sees every client (forbidden `client_scope` otherwise).
/// Every write is audited as made by the actor of
/// [`RoutingConfigApi::acting`] (the system otherwise). Inbound rules and
/// flows have their own views ([`RuleView`], [`FlowView`]): create,
/// replace, get and list them with their own methods.
#[async_trait::async_trait]
pub trait RoutingConfigApi: Send + Sync {
    /// The same API, with writes audited as made by `by`.
    fn acting(&self, by: ChangedBy) -> Arc<dyn RoutingConfigApi>;

    /// Creates an item (not agent profiles: see
    /// [`RoutingConfigApi::put_agent_profile`]).
    async fn create_item(&self, tenant: &Tenant, spec: Spec) -> Result<Item<Spec>>;

    /// Replaces an item's settings.
    async fn replace_item(&self, tenant: &Tenant, id: Uuid, spec: Spec) -> Result<Item<Spec>>;

    /// Items of `kind` in creation order after `after`, at most `limit`.
    async fn list_items(
        &self,
        tenant: &Tenant,
        kind: Kind,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Item<Spec>>>;

    async fn get_item(&self, tenant: &Tenant, kind: Kind, id: Uuid) -> Result<Item<Spec>>;

    /// Deletes an item; a conflict `in_use` while another item refers to it.
    async fn delete_item(&self, tenant: &Tenant, kind: Kind, id: Uuid) -> Result<()>;

    /// Creates or replaces the agent profile of user `user` (not found
    /// unless a user of the tenant). Answers whether it was created.
    async fn put_agent_profile(
        &self,
        tenant: &Tenant,
        user: Uuid,
        spec: AgentProfileSpec,
    ) -> Result<(Item<AgentProfileSpec>, bool)>;

    async fn create_rule(&self, tenant: &Tenant, spec: InboundRuleSpec) -> Result<RuleView>;

    /// Replaces a rule's settings; its forced mode stays.
    async fn replace_rule(
        &self,
        tenant: &Tenant,
        id: Uuid,
        spec: InboundRuleSpec,
    ) -> Result<RuleView>;

    async fn rule(&self, tenant: &Tenant, id: Uuid) -> Result<RuleView>;

    async fn list_rules(
        &self,
        tenant: &Tenant,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<RuleView>>;

    /// Sets or clears (mode `none`) an inbound rule's forced mode, recorded
    /// as set by `by`.
    async fn set_forced_mode(
        &self,
        tenant: &Tenant,
        rule: Uuid,
        spec: ForcedModeSpec,
        by: &ChangedBy,
    ) -> Result<RuleView>;

    /// Saves a flow's draft, validated (faults name the node).
    async fn create_flow(&self, tenant: &Tenant, spec: FlowSpec) -> Result<FlowView>;

    async fn replace_flow(&self, tenant: &Tenant, id: Uuid, spec: FlowSpec) -> Result<FlowView>;

    async fn flow(&self, tenant: &Tenant, id: Uuid) -> Result<FlowView>;

    async fn list_flows(
        &self,
        tenant: &Tenant,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<FlowView>>;

    /// Publishes a flow's draft as its next immutable version, by `by`.
    async fn publish_flow(
        &self,
        tenant: &Tenant,
        id: Uuid,
        by: &ChangedBy,
    ) -> Result<FlowVersionView>;

    /// A flow's published versions, oldest first, after version `after`.
    async fn list_flow_versions(
        &self,
        tenant: &Tenant,
        flow: Uuid,
        after: Option<i32>,
        limit: u64,
    ) -> Result<Vec<FlowVersionView>>;

    async fn flow_version(
        &self,
        tenant: &Tenant,
        flow: Uuid,
        version: i32,
    ) -> Result<FlowVersionView>;

    /// Whether the tenant defines the not-ready reason code `name`.
    async fn has_reason_code(&self, tenant: &Tenant, name: &str) -> Result<bool>;
}

/// A kind's settings type, for the typed calls of [`RoutingConfigExt`].
pub trait KindSpec: ConfigKind + Into<Spec> + TryFrom<Spec, Error = Spec> {}

impl<S: ConfigKind + Into<Spec> + TryFrom<Spec, Error = Spec>> KindSpec for S {}

fn typed<S: KindSpec>(item: Item<Spec>) -> Result<Item<S>> {
    let spec = S::try_from(item.spec).map_err(|other| {
        ServiceError::internal(format!(
            "asked for a {}, answered a {}",
            S::KIND.noun(),
            other.kind().noun()
        ))
    })?;
    Ok(Item {
        id: item.id,
        spec,
        created_at: item.created_at,
        updated_at: item.updated_at,
    })
}

/// The typed calls over [`RoutingConfigApi`], for every implementation.
#[async_trait::async_trait]
pub trait RoutingConfigExt: RoutingConfigApi {
    async fn create<S: KindSpec>(&self, tenant: &Tenant, spec: S) -> Result<Item<S>> {
        typed(self.create_item(tenant, spec.into()).await?)
    }

    async fn replace<S: KindSpec>(&self, tenant: &Tenant, id: Uuid, spec: S) -> Result<Item<S>> {
        typed(self.replace_item(tenant, id, spec.into()).await?)
    }

    async fn list<S: KindSpec>(
        &self,
        tenant: &Tenant,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Item<S>>> {
        self.list_items(tenant, S::KIND, after, limit)
            .await?
            .into_iter()
            .map(typed)
            .collect()
    }

    async fn get<S: KindSpec>(&self, tenant: &Tenant, id: Uuid) -> Result<Item<S>> {
        typed(self.get_item(tenant, S::KIND, id).await?)
    }

    async fn delete<S: KindSpec>(&self, tenant: &Tenant, id: Uuid) -> Result<()> {
        self.delete_item(tenant, S::KIND, id).await
    }
}

impl<T: RoutingConfigApi + ?Sized> RoutingConfigExt for T {}
