//! What validating a configured item fails with. The routing service
//! turns it into its `ConfigError`; callers see it as a
//! [`ServiceError`] (see the `From` impl for the field paths).

use switchboard_flows::FlowError;
use switchboard_rpc::ServiceError;

pub use switchboard_rpc::FieldError;

/// Why an item's settings do not hold on their own.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SpecError {
    /// Fields are invalid, each named by its path in the JSON body.
    #[error("invalid input: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Validation(Vec<FieldError>),
    /// A flow does not hold, or one of its nodes refers to something the
    /// tenant does not have; names the node.
    #[error("invalid flow: {0}")]
    InvalidFlow(FlowError),
    /// A bug (a value that does not serialise).
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = SpecError> = std::result::Result<T, E>;

impl From<FieldError> for SpecError {
    fn from(error: FieldError) -> Self {
        Self::Validation(vec![error])
    }
}

impl From<FlowError> for SpecError {
    fn from(error: FlowError) -> Self {
        Self::InvalidFlow(error)
    }
}

/// The field path of a flow's fault: `definition.nodes.<node>.<field>`.
pub fn flow_field(error: &FlowError) -> String {
    match (&error.node, &error.field) {
        (Some(node), Some(field)) => format!("definition.nodes.{node}.{field}"),
        (Some(node), None) => format!("definition.nodes.{node}"),
        (None, Some(field)) => format!("definition.{field}"),
        (None, None) => "definition".to_owned(),
    }
}

impl From<SpecError> for ServiceError {
    fn from(error: SpecError) -> Self {
        match error {
            SpecError::Validation(errors) => ServiceError::validation(errors),
            SpecError::InvalidFlow(error) => ServiceError::validation(vec![FieldError::new(
                flow_field(&error),
                error.to_string(),
            )]),
            SpecError::Internal(detail) => ServiceError::internal(detail),
        }
    }
}
