use thiserror::Error;

use crate::ids::{AgentId, ContactId, QueueId};
use crate::model::{Channel, Presence};
use crate::state::AgentState;

/// Why an ACD operation was refused. A refused operation changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AcdError {
    #[error("unknown agent {0}")]
    UnknownAgent(AgentId),
    #[error("unknown queue {0}")]
    UnknownQueue(QueueId),
    #[error("unknown contact {0}")]
    UnknownContact(ContactId),
    #[error("contact {0} already exists")]
    DuplicateContact(ContactId),
    #[error("contact {contact} is {contact_channel} but queue {queue} takes {queue_channel}")]
    ChannelMismatch {
        contact: ContactId,
        queue: QueueId,
        contact_channel: Channel,
        queue_channel: Channel,
    },
    #[error("queue {queue} is full ({max} contacts waiting)")]
    QueueFull { queue: QueueId, max: u32 },
    #[error("agent {agent} cannot go {requested} while {current}")]
    IllegalTransition {
        agent: AgentId,
        current: AgentState,
        requested: Presence,
    },
    #[error("contact {contact} is not offered to agent {agent}")]
    NoSuchOffer { contact: ContactId, agent: AgentId },
    #[error("agent {agent} is not in after-call work (it is {current})")]
    NotInWrapUp { agent: AgentId, current: AgentState },
    #[error("queue {queue} still has {contacts} contacts")]
    QueueBusy { queue: QueueId, contacts: u32 },
    #[error(
        "agent {agent} cannot do that while {current} (removal needs it offline; an outbound contact, no offer ringing and room on its channel)"
    )]
    AgentBusy { agent: AgentId, current: AgentState },
    #[error("contact {0} is connected to an agent; end it instead")]
    ContactConnected(ContactId),
    #[error("contact {0} is not connected to an agent")]
    NotConnected(ContactId),
    #[error("contact {0} is not waiting in its queue (it rings at an agent or is connected)")]
    NotQueued(ContactId),
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
}

/// How a caller should treat an [`AcdError`]: one place maps each kind to
/// a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// HTTP 404, gRPC `NOT_FOUND`.
    NotFound,
    /// HTTP 409, gRPC `FAILED_PRECONDITION`: refused in the current state.
    Conflict,
    /// The queue is full: run the overflow step (HTTP 429/503 if none).
    Overflow,
    /// HTTP 400, gRPC `INVALID_ARGUMENT`.
    InvalidArgument,
}

impl AcdError {
    /// The kind of failure, for mapping to a status code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AcdError::UnknownAgent(_) | AcdError::UnknownQueue(_) | AcdError::UnknownContact(_) => {
                ErrorKind::NotFound
            }
            AcdError::DuplicateContact(_)
            | AcdError::IllegalTransition { .. }
            | AcdError::NoSuchOffer { .. }
            | AcdError::NotInWrapUp { .. }
            | AcdError::QueueBusy { .. }
            | AcdError::AgentBusy { .. }
            | AcdError::ContactConnected(_)
            | AcdError::NotConnected(_)
            | AcdError::NotQueued(_) => ErrorKind::Conflict,
            AcdError::QueueFull { .. } => ErrorKind::Overflow,
            AcdError::ChannelMismatch { .. } | AcdError::InvalidConfig(_) => {
                ErrorKind::InvalidArgument
            }
        }
    }
}
