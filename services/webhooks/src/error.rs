//! The webhooks service's errors; each maps to one [`ErrorKind`] (and so
//! to one HTTP status and one gRPC code, in `switchboard_rpc::ERROR_TABLE`).

use switchboard_rpc::{ErrorKind, ServiceError};

pub use switchboard_rpc::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum WebhooksError {
    /// Input failed validation (a bad or forbidden URL, an unknown event
    /// type, …); nothing was written.
    #[error("invalid input: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Validation(Vec<FieldError>),
    /// No such endpoint or delivery in this tenant (another tenant's ids
    /// are not found alike).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state
    /// (`endpoint_limit_reached`, `endpoint_disabled`).
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// A backend is unavailable; retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected backend answer; logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = WebhooksError> = std::result::Result<T, E>;

impl WebhooksError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            detail: detail.into(),
        }
    }
}

impl From<WebhooksError> for ServiceError {
    fn from(error: WebhooksError) -> Self {
        match error {
            WebhooksError::Validation(errors) => ServiceError::validation(errors),
            WebhooksError::NotFound(what) => ServiceError::not_found(what),
            WebhooksError::Conflict { code, detail } => ServiceError::conflict(code, detail),
            WebhooksError::Unavailable(detail) => ServiceError::new(ErrorKind::Unavailable, detail),
            WebhooksError::Internal(detail) => ServiceError::new(ErrorKind::Internal, detail),
        }
    }
}

impl From<FieldError> for WebhooksError {
    fn from(error: FieldError) -> Self {
        Self::Validation(vec![error])
    }
}

impl From<sea_orm::DbErr> for WebhooksError {
    fn from(error: sea_orm::DbErr) -> Self {
        switchboard_platform::database::map_db_error(error).into()
    }
}

impl From<switchboard_platform::Error> for WebhooksError {
    fn from(error: switchboard_platform::Error) -> Self {
        if error.is_unavailable() {
            Self::Unavailable(error.to_string())
        } else {
            Self::Internal(error.to_string())
        }
    }
}

impl From<switchboard_events::EventsError> for WebhooksError {
    fn from(error: switchboard_events::EventsError) -> Self {
        match error {
            switchboard_events::EventsError::Database(error) => error.into(),
            other => Self::Internal(other.to_string()),
        }
    }
}
