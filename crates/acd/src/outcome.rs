//! What a mutating operation changed.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, ContactId, QueueId};
use crate::state::AgentEvent;

/// A contact ringing at an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub contact: ContactId,
    pub agent: AgentId,
    pub queue: QueueId,
    pub offered_at: DateTime<Utc>,
    /// `offered_at` plus the queue's ring timeout.
    pub expires_at: DateTime<Utc>,
}

/// What happened to a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ContactEventKind {
    /// Joined its queue.
    Queued,
    /// Offered to `agent`.
    Offered { agent: AgentId },
    /// Back in its queue, in its original place, after `agent` declined
    /// or missed it.
    Requeued { agent: AgentId },
    /// `agent` accepted it.
    Connected { agent: AgentId },
    /// The customer left while it was queued or offered.
    Abandoned,
    /// It waited past its queue's maximum wait and left the queue for the
    /// overflow step, after waiting `waited_ms`.
    Overflowed { waited_ms: u64 },
    /// Finished after being connected.
    Ended,
}

/// One change of a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactEvent {
    pub contact: ContactId,
    pub queue: QueueId,
    pub kind: ContactEventKind,
    pub at: DateTime<Utc>,
}

/// Ids whose records changed (or were removed): a persistence layer
/// writes (or deletes, when the engine no longer knows them) only these.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changed {
    pub agents: BTreeSet<AgentId>,
    pub contacts: BTreeSet<ContactId>,
    pub queues: BTreeSet<QueueId>,
}

impl Changed {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty() && self.contacts.is_empty() && self.queues.is_empty()
    }

    /// Adds what `other` changed (the union of two operations' changes).
    pub fn merge(&mut self, other: &Changed) {
        self.agents.extend(other.agents.iter().copied());
        self.contacts.extend(other.contacts.iter().copied());
        self.queues.extend(other.queues.iter().copied());
    }
}

/// The result of a successful mutating operation, in the order things
/// happened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// New offers, to push to the agents' desktops or phones.
    pub offers: Vec<Offer>,
    /// Offers that ended without being accepted (declined, rang out, or
    /// the customer abandoned): stop ringing.
    pub withdrawn: Vec<Offer>,
    pub agent_events: Vec<AgentEvent>,
    pub contact_events: Vec<ContactEvent>,
    pub changed: Changed,
}

impl Outcome {
    /// Whether the operation changed nothing.
    pub fn is_empty(&self) -> bool {
        self.offers.is_empty()
            && self.withdrawn.is_empty()
            && self.agent_events.is_empty()
            && self.contact_events.is_empty()
            && self.changed.is_empty()
    }
}
