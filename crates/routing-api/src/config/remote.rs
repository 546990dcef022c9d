//! [`RemoteRoutingConfig`]: the configuration API over gRPC to a routing
//! service on another node.

use std::sync::Arc;

use switchboard_proto::routing::v1 as pb;
use switchboard_proto::routing::v1::routing_configuration_client::RoutingConfigurationClient;
use switchboard_rpc::{CallContext, Credentials, ServiceError};
use switchboard_tenancy::Tenant;
use tonic::transport::Channel;
use uuid::Uuid;

use super::wire::{self, kind};
use super::{
    AgentProfileSpec, ChangedBy, FlowSpec, FlowVersionView, FlowView, ForcedModeSpec,
    InboundRuleSpec, Item, Kind, Result, RoutingConfigApi, RuleView, Spec,
};

/// The routing configuration on another node. Every call carries a fresh
/// service credential naming its tenant and, once [`RoutingConfigApi::acting`]
/// set one, the actor of its writes. Cheap to clone.
#[derive(Clone)]
pub struct RemoteRoutingConfig {
    client: RoutingConfigurationClient<Channel>,
    credentials: Credentials,
    actor: Option<ChangedBy>,
}

impl RemoteRoutingConfig {
    /// Calls the service over `channel`, signing with `credentials`.
    pub fn new(channel: Channel, credentials: Credentials) -> Self {
        Self {
            client: RoutingConfigurationClient::new(channel),
            credentials,
            actor: None,
        }
    }

    fn request<T>(&self, tenant: &Tenant, message: T) -> Result<tonic::Request<T>> {
        let mut context = CallContext::tenant(tenant.clone());
        if let Some(actor) = &self.actor {
            context = context.with_principal(wire::principal(actor));
        }
        self.credentials
            .request(message, &context)
            .map_err(|status| ServiceError::from_status(&status))
    }

    fn client(&self) -> RoutingConfigurationClient<Channel> {
        self.client.clone()
    }
}

fn list_request(of: Kind, after: Option<Uuid>, limit: u64) -> pb::ListItemsRequest {
    pb::ListItemsRequest {
        kind: kind(of).into(),
        after: after.map(|id| id.to_string()).unwrap_or_default(),
        limit,
    }
}

fn item_ref(of: Kind, id: Uuid) -> pb::ItemRef {
    pb::ItemRef {
        kind: kind(of).into(),
        id: id.to_string(),
    }
}

#[async_trait::async_trait]
impl RoutingConfigApi for RemoteRoutingConfig {
    fn acting(&self, by: ChangedBy) -> Arc<dyn RoutingConfigApi> {
        Arc::new(Self {
            actor: Some(by),
            ..self.clone()
        })
    }

    async fn create_item(&self, tenant: &Tenant, spec: Spec) -> Result<Item<Spec>> {
        let request = self.request(tenant, wire::save_request(None, &spec)?)?;
        wire::any_item_of(self.client().create_item(request).await?.into_inner())
    }

    async fn replace_item(&self, tenant: &Tenant, id: Uuid, spec: Spec) -> Result<Item<Spec>> {
        let request = self.request(tenant, wire::save_request(Some(id), &spec)?)?;
        wire::any_item_of(self.client().replace_item(request).await?.into_inner())
    }

    async fn list_items(
        &self,
        tenant: &Tenant,
        of: Kind,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Item<Spec>>> {
        let request = self.request(tenant, list_request(of, after, limit))?;
        let answer = self.client().list_items(request).await?.into_inner();
        answer.items.into_iter().map(wire::any_item_of).collect()
    }

    async fn get_item(&self, tenant: &Tenant, of: Kind, id: Uuid) -> Result<Item<Spec>> {
        let request = self.request(tenant, item_ref(of, id))?;
        wire::any_item_of(self.client().get_item(request).await?.into_inner())
    }

    async fn delete_item(&self, tenant: &Tenant, of: Kind, id: Uuid) -> Result<()> {
        let request = self.request(tenant, item_ref(of, id))?;
        self.client().delete_item(request).await?;
        Ok(())
    }

    async fn put_agent_profile(
        &self,
        tenant: &Tenant,
        user: Uuid,
        spec: AgentProfileSpec,
    ) -> Result<(Item<AgentProfileSpec>, bool)> {
        let request = self.request(tenant, wire::save_request(Some(user), &spec.into())?)?;
        let answer = self.client().put_agent_profile(request).await?.into_inner();
        Ok((wire::item_of(answer.item)?, answer.created))
    }

    async fn create_rule(&self, tenant: &Tenant, spec: InboundRuleSpec) -> Result<RuleView> {
        let request = self.request(tenant, wire::save_request(None, &spec.into())?)?;
        wire::rule_of(self.client().create_rule(request).await?.into_inner())
    }

    async fn replace_rule(
        &self,
        tenant: &Tenant,
        id: Uuid,
        spec: InboundRuleSpec,
    ) -> Result<RuleView> {
        let request = self.request(tenant, wire::save_request(Some(id), &spec.into())?)?;
        wire::rule_of(self.client().replace_rule(request).await?.into_inner())
    }

    async fn rule(&self, tenant: &Tenant, id: Uuid) -> Result<RuleView> {
        let request = self.request(tenant, item_ref(Kind::InboundRule, id))?;
        wire::rule_of(self.client().get_rule(request).await?.into_inner())
    }

    async fn list_rules(
        &self,
        tenant: &Tenant,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<RuleView>> {
        let request = self.request(tenant, list_request(Kind::InboundRule, after, limit))?;
        let answer = self.client().list_rules(request).await?.into_inner();
        answer.rules.into_iter().map(wire::rule_of).collect()
    }

    async fn set_forced_mode(
        &self,
        tenant: &Tenant,
        rule: Uuid,
        spec: ForcedModeSpec,
        by: &ChangedBy,
    ) -> Result<RuleView> {
        let message = pb::SetForcedModeRequest {
            rule_id: rule.to_string(),
            spec_json: wire::json(&spec)?,
            by: Some(wire::actor(by)),
        };
        let request = self.request(tenant, message)?;
        wire::rule_of(self.client().set_forced_mode(request).await?.into_inner())
    }

    async fn create_flow(&self, tenant: &Tenant, spec: FlowSpec) -> Result<FlowView> {
        let request = self.request(tenant, wire::save_request(None, &spec.into())?)?;
        wire::flow_of(self.client().create_flow(request).await?.into_inner())
    }

    async fn replace_flow(&self, tenant: &Tenant, id: Uuid, spec: FlowSpec) -> Result<FlowView> {
        let request = self.request(tenant, wire::save_request(Some(id), &spec.into())?)?;
        wire::flow_of(self.client().replace_flow(request).await?.into_inner())
    }

    async fn flow(&self, tenant: &Tenant, id: Uuid) -> Result<FlowView> {
        let request = self.request(tenant, item_ref(Kind::Flow, id))?;
        wire::flow_of(self.client().get_flow(request).await?.into_inner())
    }

    async fn list_flows(
        &self,
        tenant: &Tenant,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<FlowView>> {
        let request = self.request(tenant, list_request(Kind::Flow, after, limit))?;
        let answer = self.client().list_flows(request).await?.into_inner();
        answer.flows.into_iter().map(wire::flow_of).collect()
    }

    async fn publish_flow(
        &self,
        tenant: &Tenant,
        id: Uuid,
        by: &ChangedBy,
    ) -> Result<FlowVersionView> {
        let message = pb::PublishFlowRequest {
            flow_id: id.to_string(),
            by: Some(wire::actor(by)),
        };
        let request = self.request(tenant, message)?;
        wire::flow_version_of(self.client().publish_flow(request).await?.into_inner())
    }

    async fn list_flow_versions(
        &self,
        tenant: &Tenant,
        flow: Uuid,
        after: Option<i32>,
        limit: u64,
    ) -> Result<Vec<FlowVersionView>> {
        let message = pb::ListFlowVersionsRequest {
            flow_id: flow.to_string(),
            after,
            limit,
        };
        let request = self.request(tenant, message)?;
        let answer = self
            .client()
            .list_flow_versions(request)
            .await?
            .into_inner();
        answer
            .versions
            .into_iter()
            .map(wire::flow_version_of)
            .collect()
    }

    async fn flow_version(
        &self,
        tenant: &Tenant,
        flow: Uuid,
        version: i32,
    ) -> Result<FlowVersionView> {
        let message = pb::FlowVersionRef {
            flow_id: flow.to_string(),
            version,
        };
        let request = self.request(tenant, message)?;
        wire::flow_version_of(self.client().get_flow_version(request).await?.into_inner())
    }

    async fn has_reason_code(&self, tenant: &Tenant, name: &str) -> Result<bool> {
        let message = pb::HasReasonCodeRequest {
            name: name.to_owned(),
        };
        let request = self.request(tenant, message)?;
        Ok(self
            .client()
            .has_reason_code(request)
            .await?
            .into_inner()
            .found)
    }
}
