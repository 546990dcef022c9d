//! The configuration's gRPC API
//! (`switchboard.routing.v1.RoutingConfiguration`, see
//! `proto/switchboard/routing/v1/config.proto`) over any
//! [`RoutingConfigApi`]. Serve it wrapped in `switchboard_rpc::Authenticated`:
//! each call acts for the tenant of its service credential, never one
//! named in a message, and writes as the credential's principal.

use std::sync::Arc;

use switchboard_proto::routing::v1 as pb;
use switchboard_proto::routing::v1::routing_configuration_server::{
    RoutingConfiguration, RoutingConfigurationServer,
};
use switchboard_routing_api::config::wire::{self, kind_of, request_id, settings, spec_of};
use switchboard_routing_api::config::{Kind, RoutingConfigApi, Spec};
use switchboard_rpc::{Caller, ServiceError};
use switchboard_tenancy::Tenant;
use tonic::{Request, Response, Status};

/// The fully-qualified service name, for gRPC health.
pub const SERVICE_NAME: &str = "switchboard.routing.v1.RoutingConfiguration";

/// The service over `api`, ready for tonic's router (wrap it in
/// `Authenticated`).
pub fn server(api: Arc<dyn RoutingConfigApi>) -> RoutingConfigurationServer<RoutingConfigGrpc> {
    RoutingConfigurationServer::new(RoutingConfigGrpc { api })
}

pub struct RoutingConfigGrpc {
    api: Arc<dyn RoutingConfigApi>,
}

type Answer<T> = Result<Response<T>, Status>;

impl RoutingConfigGrpc {
    /// The call's tenant, and the API acting as its principal (the system
    /// without one).
    fn context<T>(
        &self,
        request: &Request<T>,
    ) -> Result<(Tenant, Arc<dyn RoutingConfigApi>), Status> {
        let caller = Caller::of(request)?;
        let tenant = caller.tenant()?.clone();
        let api = match &caller.context.principal {
            Some(principal) => self
                .api
                .acting(wire::principal_of(principal).map_err(status)?),
            None => self
                .api
                .acting(switchboard_routing_api::config::ChangedBy::system()),
        };
        Ok((tenant, api))
    }
}

fn status(error: ServiceError) -> Status {
    error.to_status()
}

fn ok<T>(result: Result<T, ServiceError>) -> Answer<T> {
    result.map(Response::new).map_err(status)
}

/// A save request's settings, which must be of `expected` when given.
fn spec_in(message: &pb::SaveItemRequest, expected: Option<Kind>) -> Result<Spec, ServiceError> {
    let kind = kind_of(message.kind())?;
    if expected.is_some_and(|expected| expected != kind) {
        return Err(ServiceError::bad_request(format!(
            "this call saves a {}, not a {}",
            expected.map_or("", |kind| kind.noun()),
            kind.noun()
        )));
    }
    spec_of(kind, &message.definition_json)
}

fn typed<S: TryFrom<Spec, Error = Spec>>(spec: Spec) -> Result<S, ServiceError> {
    S::try_from(spec).map_err(|other| {
        ServiceError::bad_request(format!("unexpected settings of a {}", other.kind().noun()))
    })
}

#[tonic::async_trait]
impl RoutingConfiguration for RoutingConfigGrpc {
    async fn create_item(&self, request: Request<pb::SaveItemRequest>) -> Answer<pb::Item> {
        let (tenant, api) = self.context(&request)?;
        ok(async {
            let spec = spec_in(request.get_ref(), None)?;
            wire::any_item(&api.create_item(&tenant, spec).await?)
        }
        .await)
    }

    async fn replace_item(&self, request: Request<pb::SaveItemRequest>) -> Answer<pb::Item> {
        let (tenant, api) = self.context(&request)?;
        ok(async {
            let message = request.get_ref();
            let spec = spec_in(message, None)?;
            let id = request_id(&message.id, spec.kind().noun())?;
            wire::any_item(&api.replace_item(&tenant, id, spec).await?)
        }
        .await)
    }

    async fn list_items(
        &self,
        request: Request<pb::ListItemsRequest>,
    ) -> Answer<pb::ListItemsResponse> {
        let (tenant, api) = self.context(&request)?;
        ok(async {
            let message = request.get_ref();
            let kind = kind_of(message.kind())?;
            let after = wire::cursor(&message.after)?;
            let items = api.list_items(&tenant, kind, after, message.limit).await?;
            Ok(pb::ListItemsResponse {
                items: items.iter().map(wire::any_item).collect::<Result<_, _>>()?,
            })
        }
        .await)
    }

    async fn get_item(&self, request: Request<pb::ItemRef>) -> Answer<pb::Item> {
        let (tenant, api) = self.context(&request)?;
        ok(async {
            let kind = kind_of(request.get_ref().kind())?;
            let id = request_id(&request.get_ref().id, kind.noun())?;
            wire::any_item(&api.get_item(&tenant, kind, id).await?)
        }
        .await)
    }

    async fn delete_item(&self, request: Request<pb::ItemRef>) -> Answer<()> {
        let (tenant, api) = self.context(&request)?;
        ok(async {
            let kind = kind_of(request.get_ref().kind())?;
            let id = request_id(&request.get_ref().id, kind.noun())?;
            api.delete_item(&tenant, kind, id).await
        }
        .await)
    }

    async fn put_agent_profile(
        &self,
        request: Request<pb::SaveItemRequest>,
    ) -> Answer<pb::PutAgentProfileResponse> {
        let (tenant, api) = self.context(&request)?;
        ok(async {
            let message = request.get_ref();
            let spec = typed(spec_in(message, Some(Kind::AgentProfile))?)?;
            let user = request_id(&message.id, "user")?;
            let (item, created) = api.put_agent_profile(&tenant, user, spec).await?;
            Ok(pb::PutAgentProfileResponse {
                item: Some(wire::item(&item, Kind::AgentProfile)?),
                created,
            })
        }
        .await)
    }

    async fn create_rule(&self, request: Request<pb::SaveItemRequest>) -> Answer<pb::Rule> {
        let (tenant, api) = self.context(&request)?;
        ok(async {
            let spec = typed(spec_in(request.get_ref(), Some(Kind::InboundRule))?)?;
            wire::rule(&api.create_rule(&tenant, spec).await?)
        }
        .await)
    }

    async fn replace_rule(&self, request: Request<pb::SaveItemRequest>) -> Answer<pb::Rule> {
        let (tenant, api) = self.context(&request)?;
        ok(async {
            let message = request.get_ref();
            let spec = typed(spec_in(message, Some(Kind::InboundRule))?)?;
            let id = request_id(&message.id, "inbound rule")?;
            wire::rule(&api.replace_rule(&tenant, id, spec).await?)
        }
        .await)
    }

    async fn get_rule(&self, request: Request<pb::ItemRef>) -> Answer<pb::Rule> {
        let (tenant, api) = self.context(&request)?;
        ok(async {
            let id = request_id(&request.get_ref().id, "inbound rule")?;
            wire::rule(&api.rule(&tenant, id).await?)
        }
        .await)
    }

    async fn list_rules(
        &self,
        request: Request<pb::ListItemsRequest>,
    ) -> Answer<pb::ListRulesResponse> {
        let (tenant, api) = self.context(&request)?;
        ok(async {
            let message = request.get_ref();
            let after = wire::cursor(&message.after)?;
            let rules = api.list_rules(&tenant, after, message.limit).await?;
            Ok(pb::ListRulesResponse {
                rules: rules.iter().map(wire::rule).collect::<Result<_, _>>()?,
            })
        }
        .await)
    }

    async fn set_forced_mode(
        &self,
        request: Request<pb::SetForcedModeRequest>,
    ) -> Answer<pb::Rule> {
        let (tenant, api) = self.context(&request)?;
        ok(async {
            let message = request.get_ref();
            let rule = request_id(&message.rule_id, "inbound rule")?;
            let spec = settings(&message.spec_json)?;
            let by = wire::actor_of(message.by.as_ref())?;
            wire::rule(&api.set_forced_mode(&tenant, rule, spec, &by).await?)
        }
        .await)
    }

    async fn create_flow(&self, request: Request<pb::SaveItemRequest>) -> Answer<pb::Flow> {
        let (tenant, api) = self.context(&request)?;
        ok(async {
            let spec = typed(spec_in(request.get_ref(), Some(Kind::Flow))?)?;
            wire::flow(&api.create_flow(&tenant, spec).await?)
        }
        .await)
    }

    async fn replace_flow(&self, request: Request<pb::SaveItemRequest>) -> Answer<pb::Flow> {
        let (tenant, api) = self.context(&request)?;
        ok(async {
            let message = request.get_ref();
            let spec = typed(spec_in(message, Some(Kind::Flow))?)?;
            let id = request_id(&message.id, "flow")?;
            wire::flow(&api.replace_flow(&tenant, id, spec).await?)
        }
        .await)
    }

    async fn get_flow(&self, request: Request<pb::ItemRef>) -> Answer<pb::Flow> {
        let (tenant, api) = self.context(&request)?;
        ok(async {
            let id = request_id(&request.get_ref().id, "flow")?;
            wire::flow(&api.flow(&tenant, id).await?)
        }
        .await)
    }

    async fn list_flows(
        &self,
        request: Request<pb::ListItemsRequest>,
    ) -> Answer<pb::ListFlowsResponse> {
        let (tenant, api) = self.context(&request)?;
        ok(async {
            let message = request.get_ref();
            let after = wire::cursor(&message.after)?;
            let flows = api.list_flows(&tenant, after, message.limit).await?;
            Ok(pb::ListFlowsResponse {
                flows: flows.iter().map(wire::flow).collect::<Result<_, _>>()?,
            })
        }
        .await)
    }

    async fn publish_flow(
        &self,
        request: Request<pb::PublishFlowRequest>,
    ) -> Answer<pb::FlowVersion> {
        let (tenant, api) = self.context(&request)?;
        ok(async {
            let message = request.get_ref();
            let id = request_id(&message.flow_id, "flow")?;
            let by = wire::actor_of(message.by.as_ref())?;
            wire::flow_version(&api.publish_flow(&tenant, id, &by).await?)
        }
        .await)
    }

    async fn list_flow_versions(
        &self,
        request: Request<pb::ListFlowVersionsRequest>,
    ) -> Answer<pb::ListFlowVersionsResponse> {
        let (tenant, api) = self.context(&request)?;
        ok(async {
            let message = request.get_ref();
            let id = request_id(&message.flow_id, "flow")?;
            let versions = api
                .list_flow_versions(&tenant, id, message.after, message.limit)
                .await?;
            Ok(pb::ListFlowVersionsResponse {
                versions: versions
                    .iter()
                    .map(wire::flow_version)
                    .collect::<Result<_, _>>()?,
            })
        }
        .await)
    }

    async fn get_flow_version(
        &self,
        request: Request<pb::FlowVersionRef>,
    ) -> Answer<pb::FlowVersion> {
        let (tenant, api) = self.context(&request)?;
        ok(async {
            let message = request.get_ref();
            let id = request_id(&message.flow_id, "flow")?;
            wire::flow_version(&api.flow_version(&tenant, id, message.version).await?)
        }
        .await)
    }

    async fn has_reason_code(
        &self,
        request: Request<pb::HasReasonCodeRequest>,
    ) -> Answer<pb::HasReasonCodeResponse> {
        let (tenant, api) = self.context(&request)?;
        ok(async {
            let found = api
                .has_reason_code(&tenant, &request.get_ref().name)
                .await?;
            Ok(pb::HasReasonCodeResponse { found })
        }
        .await)
    }
}
