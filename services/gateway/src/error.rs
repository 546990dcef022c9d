//! Turning service errors into RFC 9457 problems, in one place.

use axum::response::{IntoResponse, Response};
use switchboard_http::Problem;
use switchboard_identity_api::Denied;
use switchboard_routing_api::acd::RoutingError;
use switchboard_rpc::ServiceError;

/// What a handler fails with: always rendered as a problem document.
#[derive(Debug)]
pub struct ApiError(pub Problem);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        Self(problem)
    }
}

/// A service's error through the one table (`switchboard_rpc::ERROR_TABLE`).
impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        Self(Problem::from(error))
    }
}

/// A refused permission check of the caller's principal (403).
impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        ServiceError::from(denied).into()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Routing's error through routing-api's mapping (`RoutingError::
/// to_service_error`: `agent_profile_missing`, `illegal_state`,
/// `queue_full`, …), with what the public API adds: how to create a
/// missing agent profile, and the agent's current state as the API shows
/// states. The refusal's wire form is not shown.
impl From<RoutingError> for ApiError {
    fn from(error: RoutingError) -> Self {
        let mut service = error.to_service_error();
        service.extensions.clear();
        if let RoutingError::Refused(refusal) = &error {
            if let Some(agent) = refusal.unknown_agent {
                service.detail = format!(
                    "user {agent} has no agent profile, so it cannot take contacts yet; an owner or admin creates one with PUT /v1/agent-profiles/{agent}"
                );
            }
            if let Some(state) = &refusal.current_state {
                service = service.with_extension(
                    "current_state",
                    serde_json::to_value(crate::dto::agents::AgentStateDto::from(state))
                        .unwrap_or_default(),
                );
            }
        }
        service.into()
    }
}
