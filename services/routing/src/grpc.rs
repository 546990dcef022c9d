//! The edge's gRPC API (`switchboard.routing.v1.CallRouting`, see
//! `proto/switchboard/routing/v1/calls.proto`) over [`Calls`].
//!
//! Wrapped in `switchboard_rpc::Authenticated` by the node: every call has
//! a verified service credential. The edge serves every tenant; a new
//! call's tenant comes from the owner of the dialed number, and each later
//! call takes its tenant from the credential. Ids that do not parse, or
//! name another tenant's call, are `NOT_FOUND` like unknown ones.

use switchboard_acd::ContactId;
use switchboard_flows::Input;
use switchboard_proto::routing::v1 as pb;
use switchboard_rpc::Caller;
use switchboard_tenancy::TenantId;
use tonic::{Request, Response, Status};

pub use switchboard_routing_api::calls::step_message;
use switchboard_routing_api::calls::{OutboundCall, outbound_decision_message};

use crate::calls::{CallDecision, CallError, Calls, InboundCall};

/// The fully-qualified service name, for gRPC health.
pub const SERVICE_NAME: &str = "switchboard.routing.v1.CallRouting";

/// The service, ready for `tonic`'s router.
pub fn server(calls: Calls) -> pb::call_routing_server::CallRoutingServer<CallRoutingGrpc> {
    pb::call_routing_server::CallRoutingServer::new(CallRoutingGrpc { calls })
}

pub struct CallRoutingGrpc {
    calls: Calls,
}

/// The call a request is about: its tenant from the verified service
/// credential, its id from the request.
fn call_of(caller: &Caller, call: Option<&pb::CallRef>) -> Result<(TenantId, ContactId), Status> {
    let tenant = caller.tenant()?.id();
    let call = call.ok_or_else(|| Status::invalid_argument("`call` is required"))?;
    let contact = call
        .call_id
        .parse()
        .map_err(|_| Status::not_found(format!("unknown call {}", call.call_id)))?;
    Ok((tenant, contact))
}

fn status_of(error: CallError) -> Status {
    match error {
        CallError::UnknownCall(call) => Status::not_found(format!("unknown call {call}")),
        CallError::Invalid(message) => Status::failed_precondition(message),
        CallError::Routing(error) => error.to_status(),
        CallError::Cache(error) => Status::unavailable(error.to_string()),
        CallError::Config(error) => switchboard_rpc::ServiceError::from(error).to_status(),
    }
}

#[tonic::async_trait]
impl pb::call_routing_server::CallRouting for CallRoutingGrpc {
    async fn new_call(
        &self,
        request: Request<pb::NewCallRequest>,
    ) -> Result<Response<pb::NewCallResponse>, Status> {
        Caller::of(&request)?;
        let request = request.into_inner();
        let attributes = if request.attributes_json.trim().is_empty() {
            serde_json::Map::new()
        } else {
            serde_json::from_str(&request.attributes_json).map_err(|error| {
                Status::invalid_argument(format!("attributes_json is not a JSON object: {error}"))
            })?
        };
        let decision = self
            .calls
            .new_call(InboundCall {
                number: request.number,
                caller: request.caller,
                trunk: request.trunk,
                attributes,
                admitted_tenants: tenant_ids("admitted_tenant_ids", &request.admitted_tenant_ids)?,
                over_limit: tenant_ids("over_limit_tenant_ids", &request.over_limit_tenant_ids)?,
            })
            .await;
        let decision = match decision {
            CallDecision::Reject { sip_status, reason } => {
                pb::new_call_response::Decision::Reject(pb::Reject {
                    sip_status: u32::from(sip_status),
                    reason,
                })
            }
            CallDecision::Accept { tenant, call, step } => {
                pb::new_call_response::Decision::Accepted(pb::Accepted {
                    tenant_id: tenant.to_string(),
                    call_id: call.to_string(),
                    step: Some(step_message(step)),
                })
            }
            CallDecision::OverLimit { tenant } => {
                pb::new_call_response::Decision::OverLimit(pb::OverLimit {
                    tenant_id: tenant.to_string(),
                })
            }
        };
        Ok(Response::new(pb::NewCallResponse {
            decision: Some(decision),
        }))
    }

    async fn report_result(
        &self,
        request: Request<pb::ReportResultRequest>,
    ) -> Result<Response<pb::StepResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let request = request.into_inner();
        let (tenant, call) = call_of(&caller, request.call.as_ref())?;
        let input = match request.result {
            Some(pb::report_result_request::Result::PromptPlayed(_)) => Input::PromptPlayed,
            Some(pb::report_result_request::Result::Digits(digits)) => {
                if !digits
                    .chars()
                    .all(|key| key.is_ascii_digit() || key == '*' || key == '#')
                    || digits.len() > 64
                {
                    return Err(Status::invalid_argument(
                        "digits are DTMF keys (0-9, *, #), at most 64",
                    ));
                }
                Input::Digits(digits)
            }
            Some(pb::report_result_request::Result::NoInput(_)) => Input::NoInput,
            None => return Err(Status::invalid_argument("`result` is required")),
        };
        let step = self
            .calls
            .report(tenant, call, input)
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::StepResponse {
            step: Some(step_message(step)),
        }))
    }

    async fn queue_status(
        &self,
        request: Request<pb::CallRef>,
    ) -> Result<Response<pb::QueueStatusResponse>, Status> {
        let (tenant, call) = call_of(Caller::of(&request)?, Some(request.get_ref()))?;
        let status = self
            .calls
            .queue_status(tenant, call)
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::QueueStatusResponse {
            queue_id: status.queue_id.to_string(),
            position: status
                .position
                .map_or(0, |p| u32::try_from(p).unwrap_or(u32::MAX)),
            expected_wait_seconds: status
                .expected_wait
                .map(|wait| u32::try_from(wait.as_secs()).unwrap_or(u32::MAX)),
            ringing: status.ringing,
            next_step: status.next_step.map(step_message),
        }))
    }

    async fn request_callback(
        &self,
        request: Request<pb::RequestCallbackRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = Caller::of(&request)?.clone();
        let request = request.into_inner();
        let (tenant, call) = call_of(&caller, request.call.as_ref())?;
        self.calls
            .request_callback(tenant, call, &request.number)
            .await
            .map_err(status_of)?;
        Ok(Response::new(()))
    }

    async fn call_abandoned(&self, request: Request<pb::CallRef>) -> Result<Response<()>, Status> {
        let (tenant, call) = call_of(Caller::of(&request)?, Some(request.get_ref()))?;
        self.calls
            .abandoned(tenant, call)
            .await
            .map_err(status_of)?;
        Ok(Response::new(()))
    }

    async fn call_ended(&self, request: Request<pb::CallRef>) -> Result<Response<()>, Status> {
        let (tenant, call) = call_of(Caller::of(&request)?, Some(request.get_ref()))?;
        self.calls.ended(tenant, call).await.map_err(status_of)?;
        Ok(Response::new(()))
    }

    async fn outbound_call(
        &self,
        request: Request<pb::OutboundCallRequest>,
    ) -> Result<Response<pb::OutboundCallResponse>, Status> {
        let tenant = Caller::of(&request)?.tenant()?.id();
        let request = request.into_inner();
        let agent = request.agent_id.parse().map_err(|_| {
            Status::invalid_argument(format!("agent_id: {:?} is not a user id", request.agent_id))
        })?;
        let concerning_number =
            (!request.concerning_number.is_empty()).then_some(request.concerning_number);
        let decision = self
            .calls
            .outbound_call(
                tenant,
                OutboundCall {
                    agent,
                    number: request.number,
                    concerning_number,
                },
            )
            .await;
        Ok(Response::new(pb::OutboundCallResponse {
            decision: Some(outbound_decision_message(decision)),
        }))
    }
}

/// The tenant ids of a request's repeated `field`; one that is not a
/// tenant id is INVALID_ARGUMENT.
fn tenant_ids(field: &str, ids: &[String]) -> Result<Vec<TenantId>, Status> {
    ids.iter()
        .map(|id| {
            id.parse().map_err(|_| {
                Status::invalid_argument(format!("{field}: {id:?} is not a tenant id"))
            })
        })
        .collect()
}
