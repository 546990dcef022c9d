//! What the configuration API fails with; each variant maps to one
//! [`ErrorKind`] (and so to one HTTP status and one gRPC code, in
//! `switchboard_rpc::ERROR_TABLE`).

use switchboard_flows::FlowError;
use switchboard_routing_api::config::{SpecError, flow_field};
use switchboard_rpc::{ErrorKind, ServiceError};

pub use switchboard_rpc::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Input failed validation, or refers to something the tenant does not
    /// have; nothing was written.
    #[error("invalid input: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Validation(Vec<FieldError>),
    /// A flow does not hold, or one of its nodes refers to something the
    /// tenant does not have; names the node.
    #[error("invalid flow: {0}")]
    InvalidFlow(FlowError),
    /// No such item in this tenant (or not visible to the caller's client
    /// scope): another tenant's ids are not found alike.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with what is stored (`name_taken`,
    /// `number_unavailable`, `in_use`).
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// The caller's credential may not do this (a credential limited to
    /// some client organizations managing tenant-wide settings).
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },
    /// A backend is unavailable; retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected backend answer; logged, not shown.
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
}

impl From<ConfigError> for ServiceError {
    fn from(error: ConfigError) -> Self {
        match error {
            ConfigError::Validation(errors) => ServiceError::validation(errors),
            // A flow's fault names its node: `definition.nodes.<node>.<field>`.
            ConfigError::InvalidFlow(error) => ServiceError::validation(vec![FieldError::new(
                flow_field(&error),
                error.to_string(),
            )]),
            ConfigError::NotFound(what) => ServiceError::not_found(what),
            ConfigError::Conflict { code, detail } => ServiceError::conflict(code, detail),
            ConfigError::Forbidden { code, detail } => ServiceError::forbidden(code, detail),
            ConfigError::Unavailable(detail) => ServiceError::new(ErrorKind::Unavailable, detail),
            ConfigError::Internal(detail) => ServiceError::new(ErrorKind::Internal, detail),
        }
    }
}

impl From<SpecError> for ConfigError {
    fn from(error: SpecError) -> Self {
        match error {
            SpecError::Validation(errors) => Self::Validation(errors),
            SpecError::InvalidFlow(error) => Self::InvalidFlow(error),
            SpecError::Internal(detail) => Self::Internal(detail),
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
