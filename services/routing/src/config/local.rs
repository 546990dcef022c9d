//! [`RoutingConfigApi`] in process: the configuration's own methods, their
//! errors as [`ServiceError`]s.

use std::sync::Arc;

use switchboard_routing_api::config::{
    AgentGroupSpec, AgentProfileSpec, ChangedBy, FlowSpec, FlowVersionView, FlowView,
    ForcedModeSpec, InboundRuleSpec, Item, Kind, NumberSpec, OutboundRuleSpec, QueueSpec,
    ReasonCodeSpec, RingGroupSpec, RoutingConfigApi, RuleView, ScheduleSpec, SkillSpec, Spec,
    VoicemailBoxSpec,
};
use switchboard_rpc::ServiceError;
use switchboard_tenancy::Tenant;
use uuid::Uuid;

use super::{ConfigError, RoutingConfig};

type Result<T> = std::result::Result<T, ServiceError>;

fn any(item: Item<impl Into<Spec>>) -> Item<Spec> {
    Item {
        id: item.id,
        spec: item.spec.into(),
        created_at: item.created_at,
        updated_at: item.updated_at,
    }
}

/// Runs `$call` with the settings type of `$kind` as `$spec`.
macro_rules! by_kind {
    ($kind:expr, $spec:ident => $call:expr) => {
        match $kind {
            Kind::Skill => {
                type $spec = SkillSpec;
                $call
            }
            Kind::ReasonCode => {
                type $spec = ReasonCodeSpec;
                $call
            }
            Kind::AgentGroup => {
                type $spec = AgentGroupSpec;
                $call
            }
            Kind::Schedule => {
                type $spec = ScheduleSpec;
                $call
            }
            Kind::Queue => {
                type $spec = QueueSpec;
                $call
            }
            Kind::AgentProfile => {
                type $spec = AgentProfileSpec;
                $call
            }
            Kind::RingGroup => {
                type $spec = RingGroupSpec;
                $call
            }
            Kind::VoicemailBox => {
                type $spec = VoicemailBoxSpec;
                $call
            }
            Kind::Flow => {
                type $spec = FlowSpec;
                $call
            }
            Kind::InboundRule => {
                type $spec = InboundRuleSpec;
                $call
            }
            Kind::Number => {
                type $spec = NumberSpec;
                $call
            }
            Kind::OutboundRule => {
                type $spec = OutboundRuleSpec;
                $call
            }
        }
    };
}

/// Runs `$call` with `$value` bound to the settings inside `$spec`.
macro_rules! with_spec {
    ($spec:expr, $value:ident => $call:expr) => {
        match $spec {
            Spec::Skill($value) => $call,
            Spec::ReasonCode($value) => $call,
            Spec::AgentGroup($value) => $call,
            Spec::Schedule($value) => $call,
            Spec::Queue($value) => $call,
            Spec::AgentProfile($value) => $call,
            Spec::RingGroup($value) => $call,
            Spec::VoicemailBox($value) => $call,
            Spec::Flow($value) => $call,
            Spec::InboundRule($value) => $call,
            Spec::Number($value) => $call,
            Spec::OutboundRule($value) => $call,
        }
    };
}

fn served<T>(result: std::result::Result<T, ConfigError>) -> Result<T> {
    result.map_err(Into::into)
}

#[async_trait::async_trait]
impl RoutingConfigApi for RoutingConfig {
    fn acting(&self, by: ChangedBy) -> Arc<dyn RoutingConfigApi> {
        Arc::new(RoutingConfig::acting(self, by))
    }

    async fn create_item(&self, tenant: &Tenant, spec: Spec) -> Result<Item<Spec>> {
        with_spec!(spec, spec => served(RoutingConfig::create(self, tenant, spec).await).map(any))
    }

    async fn replace_item(&self, tenant: &Tenant, id: Uuid, spec: Spec) -> Result<Item<Spec>> {
        with_spec!(spec, spec => served(RoutingConfig::replace(self, tenant, id, spec).await).map(any))
    }

    async fn list_items(
        &self,
        tenant: &Tenant,
        kind: Kind,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Item<Spec>>> {
        by_kind!(kind, S => {
            let items = served(RoutingConfig::list::<S>(self, tenant, after, limit).await)?;
            Ok(items.into_iter().map(any).collect())
        })
    }

    async fn get_item(&self, tenant: &Tenant, kind: Kind, id: Uuid) -> Result<Item<Spec>> {
        by_kind!(kind, S => served(RoutingConfig::get::<S>(self, tenant, id).await).map(any))
    }

    async fn delete_item(&self, tenant: &Tenant, kind: Kind, id: Uuid) -> Result<()> {
        by_kind!(kind, S => served(RoutingConfig::delete::<S>(self, tenant, id).await))
    }

    async fn put_agent_profile(
        &self,
        tenant: &Tenant,
        user: Uuid,
        spec: AgentProfileSpec,
    ) -> Result<(Item<AgentProfileSpec>, bool)> {
        served(RoutingConfig::put_agent_profile(self, tenant, user, spec).await)
    }

    async fn create_rule(&self, tenant: &Tenant, spec: InboundRuleSpec) -> Result<RuleView> {
        served(RoutingConfig::create_rule(self, tenant, spec).await)
    }

    async fn replace_rule(
        &self,
        tenant: &Tenant,
        id: Uuid,
        spec: InboundRuleSpec,
    ) -> Result<RuleView> {
        served(RoutingConfig::replace_rule(self, tenant, id, spec).await)
    }

    async fn rule(&self, tenant: &Tenant, id: Uuid) -> Result<RuleView> {
        served(RoutingConfig::rule(self, tenant, id).await)
    }

    async fn list_rules(
        &self,
        tenant: &Tenant,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<RuleView>> {
        served(RoutingConfig::list_rules(self, tenant, after, limit).await)
    }

    async fn set_forced_mode(
        &self,
        tenant: &Tenant,
        rule: Uuid,
        spec: ForcedModeSpec,
        by: &ChangedBy,
    ) -> Result<RuleView> {
        served(RoutingConfig::set_forced_mode(self, tenant, rule, spec, by).await)
    }

    async fn create_flow(&self, tenant: &Tenant, spec: FlowSpec) -> Result<FlowView> {
        served(RoutingConfig::create_flow(self, tenant, spec).await)
    }

    async fn replace_flow(&self, tenant: &Tenant, id: Uuid, spec: FlowSpec) -> Result<FlowView> {
        served(RoutingConfig::replace_flow(self, tenant, id, spec).await)
    }

    async fn flow(&self, tenant: &Tenant, id: Uuid) -> Result<FlowView> {
        served(RoutingConfig::flow(self, tenant, id).await)
    }

    async fn list_flows(
        &self,
        tenant: &Tenant,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<FlowView>> {
        served(RoutingConfig::list_flows(self, tenant, after, limit).await)
    }

    async fn publish_flow(
        &self,
        tenant: &Tenant,
        id: Uuid,
        by: &ChangedBy,
    ) -> Result<FlowVersionView> {
        served(RoutingConfig::publish_flow(self, tenant, id, by).await)
    }

    async fn list_flow_versions(
        &self,
        tenant: &Tenant,
        flow: Uuid,
        after: Option<i32>,
        limit: u64,
    ) -> Result<Vec<FlowVersionView>> {
        served(RoutingConfig::list_flow_versions(self, tenant, flow, after, limit).await)
    }

    async fn flow_version(
        &self,
        tenant: &Tenant,
        flow: Uuid,
        version: i32,
    ) -> Result<FlowVersionView> {
        served(RoutingConfig::flow_version(self, tenant, flow, version).await)
    }

    async fn has_reason_code(&self, tenant: &Tenant, name: &str) -> Result<bool> {
        served(RoutingConfig::has_reason_code(self, tenant.id(), name).await)
    }
}
