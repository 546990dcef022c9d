//! Turning service errors into RFC 9457 problems, in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use switchboard_http::{FieldError, Problem};
use switchboard_identity_api::Denied;
use switchboard_routing::config::ConfigError;
use switchboard_routing::{RefusalKind, RoutingError};
use switchboard_rpc::ServiceError;
use switchboard_webhooks::WebhooksError;

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

impl From<WebhooksError> for ApiError {
    fn from(error: WebhooksError) -> Self {
        Self(match error {
            WebhooksError::Validation(errors) => Problem::validation(
                errors
                    .into_iter()
                    .map(|error| FieldError::new(error.field, error.message))
                    .collect(),
            ),
            WebhooksError::NotFound(what) => Problem::not_found(format!("{what} not found")),
            WebhooksError::Conflict { code, detail } => Problem::conflict(code, detail),
            WebhooksError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "backend unavailable");
                Problem::unavailable("a backend is unavailable; retry later")
            }
            WebhooksError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                Problem::internal()
            }
        })
    }
}

impl From<ConfigError> for ApiError {
    fn from(error: ConfigError) -> Self {
        Self(match error {
            ConfigError::Validation(errors) => Problem::validation(
                errors
                    .into_iter()
                    .map(|error| FieldError::new(error.field, error.message))
                    .collect(),
            ),
            // A flow's fault names its node: `definition.nodes.<node>.<field>`.
            ConfigError::InvalidFlow(error) => {
                let field = match (&error.node, &error.field) {
                    (Some(node), Some(field)) => format!("definition.nodes.{node}.{field}"),
                    (Some(node), None) => format!("definition.nodes.{node}"),
                    (None, Some(field)) => format!("definition.{field}"),
                    (None, None) => "definition".to_owned(),
                };
                Problem::validation(vec![FieldError::new(field, error.to_string())])
            }
            ConfigError::NotFound(what) => Problem::not_found(format!("{what} not found")),
            ConfigError::Conflict { code, detail } => Problem::conflict(code, detail),
            ConfigError::Forbidden { code, detail } => Problem::forbidden(code, detail),
            ConfigError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "backend unavailable");
                Problem::unavailable("a backend is unavailable; retry later")
            }
            ConfigError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                Problem::internal()
            }
        })
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
