//! What the configuration API fails with; each kind maps to one HTTP
//! status in the gateway.

use std::fmt;

use switchboard_flows::FlowError;

/// One invalid input field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// A path into the JSON body: `number`, `hours.weekly[1]`,
    /// `required_skills[0].min_proficiency`.
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
pub enum ConfigError {
    /// Input failed validation, or refers to something the tenant does not
    /// have; nothing was written. 400.
    #[error("invalid input: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Validation(Vec<FieldError>),
    /// A flow does not hold, or one of its nodes refers to something the
    /// tenant does not have; names the node. 400.
    #[error("invalid flow: {0}")]
    InvalidFlow(FlowError),
    /// No such item in this tenant (or not visible to the caller's client
    /// scope): another tenant's ids are not found alike. 404.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with what is stored (`name_taken`,
    /// `number_unavailable`, `in_use`). 409.
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// The caller's credential may not do this (a credential limited to
    /// some client organizations managing tenant-wide settings). 403.
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },
    /// A backend is unavailable; retry later. 503.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected backend answer; logged, not shown. 500.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

impl ConfigError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            detail: detail.into(),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Validation(_) | Self::InvalidFlow(_) => 400,
            Self::Forbidden { .. } => 403,
            Self::NotFound(_) => 404,
            Self::Conflict { .. } => 409,
            Self::Unavailable(_) => 503,
            Self::Internal(_) => 500,
        }
    }
}

impl From<FieldError> for ConfigError {
    fn from(error: FieldError) -> Self {
        Self::Validation(vec![error])
    }
}

impl From<FlowError> for ConfigError {
    fn from(error: FlowError) -> Self {
        Self::InvalidFlow(error)
    }
}

impl From<sea_orm::DbErr> for ConfigError {
    fn from(error: sea_orm::DbErr) -> Self {
        switchboard_platform::database::map_db_error(error).into()
    }
}

impl From<switchboard_events::EventsError> for ConfigError {
    fn from(error: switchboard_events::EventsError) -> Self {
        match error {
            switchboard_events::EventsError::Database(error) => error.into(),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<switchboard_platform::Error> for ConfigError {
    fn from(error: switchboard_platform::Error) -> Self {
        if error.is_unavailable() {
            Self::Unavailable(error.to_string())
        } else {
            Self::Internal(error.to_string())
        }
    }
}
