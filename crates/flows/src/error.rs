//! What can go wrong: a flow an admin saves that does not hold
//! ([`FlowError`]), and an edge report a session cannot take
//! ([`SessionError`]).

use std::fmt;

/// Why a flow was rejected, naming the node and field at fault.
///
/// Displays as `node "menu": option "1" leads to unknown node "sales"`, or
/// the bare message for faults of the flow as a whole (no `start`, too many
/// nodes, malformed JSON). `field` is a path inside the node (or the flow)
/// such as `timeout_seconds`, `options.1` or `conditions[0].when`, for a
/// UI to highlight; the message already says it in words.
///
/// The routing service answers it with 400 (422 for a well-formed body
/// whose flow does not hold, as its API conventions say); it also builds one
/// with [`FlowError::at`] when a [`Reference`](crate::Reference) does not
/// exist in the tenant, so both read alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowError {
    /// The node at fault, if the fault is in one node.
    pub node: Option<String>,
    /// The field at fault, as a path inside the node or the flow.
    pub field: Option<String>,
    /// What is wrong, in words, without the node.
    pub message: String,
}

impl FlowError {
    /// A fault of node `node`, in `field` if given.
    pub fn at(node: &str, field: Option<&str>, message: impl Into<String>) -> Self {
        FlowError {
            node: Some(node.to_owned()),
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }

    /// A fault of the flow as a whole, in `field` if given.
    pub fn flow(field: Option<&str>, message: impl Into<String>) -> Self {
        FlowError {
            node: None,
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Some(node) => write!(f, "node {node:?}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for FlowError {}

/// An edge report a [`Session`](crate::Session) cannot take. The session is
/// left as it was.
///
/// For the routing service: `Finished`, `UnexpectedInput` and
/// `FlowMismatch` are the edge's (or routing's) mistake about the call's
/// state (409 Conflict / `FAILED_PRECONDITION`); `Corrupt` means a stored
/// session does not belong to its flow (500 / `INTERNAL`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The call already left the flow with a terminal instruction.
    #[error("the call has already left the flow")]
    Finished,
    /// The input does not answer the instruction the session last gave.
    #[error("unexpected input {got}: the session is waiting for {expected}")]
    UnexpectedInput {
        /// What the session waits for: `begin`, `prompt_played`, or
        /// `digits or no_input`.
        expected: &'static str,
        /// The input that came: `begin`, `prompt_played`, `digits` or
        /// `no_input`.
        got: &'static str,
    },
    /// The session was started on another version of the flow.
    #[error("the session belongs to flow version {session}, not {flow}")]
    FlowMismatch {
        /// The fingerprint stored in the session.
        session: String,
        /// The fingerprint of the flow it was advanced with.
        flow: String,
    },
    /// The session names a node its flow does not have, or one of another
    /// type (a tampered or mixed-up stored session).
    #[error("corrupt session: {0}")]
    Corrupt(String),
}
