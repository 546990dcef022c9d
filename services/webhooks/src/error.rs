//! The webhooks service's errors; each maps to one HTTP status in the
//! gateway.

use std::fmt;

/// One invalid input field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebhooksError {
    /// Input failed validation (a bad or forbidden URL, an unknown event
    /// type, …); nothing was written. 400.
    #[error("invalid input: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Validation(Vec<FieldError>),
    /// No such endpoint or delivery in this tenant (another tenant's ids
    /// are not found alike). 404.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state
    /// (`endpoint_limit_reached`, `endpoint_disabled`). 409.
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// A backend is unavailable; retry later. 503.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected backend answer; logged, not shown. 500.
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
