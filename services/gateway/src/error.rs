//! Turning service errors into RFC 9457 problems, in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use switchboard_http::Problem;
use switchboard_identity_api::Denied;
use switchboard_routing_api::acd::{RefusalKind, RoutingError};
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

impl From<RoutingError> for ApiError {
    fn from(error: RoutingError) -> Self {
        Self(match error {
            RoutingError::Refused(refusal) => {
                let problem = match (refusal.kind, refusal.unknown_agent) {
                    // The user exists but routing has no agent for it: say
                    // what is missing and how to create it.
                    (RefusalKind::NotFound, Some(agent)) => Problem::new(
                        StatusCode::NOT_FOUND,
                        "agent_profile_missing",
                        format!(
                            "user {agent} has no agent profile, so it cannot take contacts yet; an owner or admin creates one with PUT /v1/agent-profiles/{agent}"
                        ),
                    ),
                    (RefusalKind::NotFound, None) => Problem::not_found(refusal.message),
                    (RefusalKind::Conflict, _) => {
                        Problem::conflict("illegal_state", refusal.message)
                    }
                    (RefusalKind::Overflow, _) => Problem::conflict("queue_full", refusal.message),
                    (RefusalKind::InvalidArgument, _) => Problem::bad_request(refusal.message),
                };
                match refusal.current_state.as_ref() {
                    Some(state) => problem.with_extension(
                        "current_state",
                        serde_json::to_value(crate::dto::agents::AgentStateDto::from(state))
                            .unwrap_or_default(),
                    ),
                    None => problem,
                }
            }
            RoutingError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "routing unavailable");
                Problem::unavailable("routing is unavailable; retry later")
            }
            RoutingError::Internal(detail) => {
                tracing::error!(error = %detail, "routing failed");
                Problem::internal()
            }
        })
    }
}
