use thiserror::Error;

/// An input a queueing calculation is not defined for.
///
/// Every fallible function of this crate checks its inputs before computing
/// anything and names the offending argument; none of them panics.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum WfmError {
    /// `argument` was `value`, which is outside what the model accepts.
    /// Durations are reported in seconds.
    #[error("invalid {argument}: {value} (must be {expected})")]
    InvalidArgument {
        argument: &'static str,
        value: f64,
        expected: &'static str,
    },
}

pub(crate) fn invalid(argument: &'static str, value: f64, expected: &'static str) -> WfmError {
    WfmError::InvalidArgument {
        argument,
        value,
        expected,
    }
}
