//! The identity service's errors. Each becomes one [`ServiceError`] (its
//! kind and problem code), which `switchboard_rpc::ERROR_TABLE` maps to one
//! HTTP status and one gRPC code.

use std::time::Duration;

use switchboard_identity_api::Denied;
use switchboard_rpc::ServiceError;

use crate::domain::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Input failed validation; nothing was written.
    #[error("invalid input: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Validation(Vec<FieldError>),
    /// No such resource for this tenant (whether it exists elsewhere is
    /// never revealed).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state (`seat_limit_reached`,
    /// `email_taken`, …).
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// Missing, wrong, expired or revoked credentials. The detail never says
    /// whether an account exists.
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated, but not allowed (`permission_denied`,
    /// `tenant_suspended`, `email_unverified`, `client_scope`).
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },
    /// Too many attempts; retry after the delay.
    #[error("too many attempts; retry in {} s", retry_after.as_secs().max(1))]
    Throttled { retry_after: Duration },
    /// A backend is unavailable; retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected backend answer; details are logged, not shown.
    #[error("internal error")]
    Internal(String),
}

pub type Result<T, E = IdentityError> = std::result::Result<T, E>;

impl IdentityError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Forbidden {
            code,
            detail: detail.into(),
        }
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            detail: detail.into(),
        }
    }
}

impl From<Denied> for IdentityError {
    fn from(denied: Denied) -> Self {
        Self::Forbidden {
            code: denied.code,
            detail: denied.detail,
        }
    }
}

/// The error as callers of `IdentityApi` see it, in process or over gRPC:
/// the kinds and problem codes the public API has always answered with.
impl From<IdentityError> for ServiceError {
    fn from(error: IdentityError) -> Self {
        match error {
            IdentityError::Validation(errors) => ServiceError::validation(errors),
            IdentityError::NotFound(what) => ServiceError::not_found(what),
            IdentityError::Conflict { code, detail } => ServiceError::conflict(code, detail),
            IdentityError::Unauthenticated(detail) => ServiceError::unauthenticated(detail),
            IdentityError::Forbidden { code, detail } => ServiceError::forbidden(code, detail),
            IdentityError::Throttled { retry_after } => ServiceError::throttled(retry_after),
            IdentityError::Unavailable(detail) => ServiceError::unavailable(detail),
            IdentityError::Internal(detail) => ServiceError::internal(detail),
        }
    }
}

impl From<FieldError> for IdentityError {
    fn from(error: FieldError) -> Self {
        Self::Validation(vec![error])
    }
}

impl From<sea_orm::DbErr> for IdentityError {
    fn from(error: sea_orm::DbErr) -> Self {
        match switchboard_platform::database::map_db_error(error) {
            switchboard_platform::Error::Unavailable { detail, .. } => Self::Unavailable(detail),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<switchboard_platform::Error> for IdentityError {
    fn from(error: switchboard_platform::Error) -> Self {
        if error.is_unavailable() {
            Self::Unavailable(error.to_string())
        } else {
            Self::Internal(error.to_string())
        }
    }
}

impl From<switchboard_events::EventsError> for IdentityError {
    fn from(error: switchboard_events::EventsError) -> Self {
        match error {
            switchboard_events::EventsError::Database(error) => error.into(),
            switchboard_events::EventsError::Bus(error) => error.into(),
            other => Self::Internal(other.to_string()),
        }
    }
}
