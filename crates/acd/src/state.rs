//! Agent states as the rest of the platform sees them, and their changes.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, ReasonCode};
use crate::model::Presence;

/// An agent's state, derived from its presence and its contacts: any
/// pending offer → `Reserved`; else any connected contact → `Busy`; else
/// `AfterCallWork` while wrapping up; else the presence.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AgentState {
    Offline,
    Available,
    NotReady {
        reason: ReasonCode,
    },
    /// Has at least one offer ringing.
    Reserved,
    /// Has at least one connected contact (and no offer).
    Busy,
    /// Wrapping up the last contact until `until`.
    AfterCallWork {
        until: DateTime<Utc>,
    },
}

impl AgentState {
    /// The state without its data.
    pub fn kind(&self) -> AgentStateKind {
        match self {
            AgentState::Offline => AgentStateKind::Offline,
            AgentState::Available => AgentStateKind::Available,
            AgentState::NotReady { .. } => AgentStateKind::NotReady,
            AgentState::Reserved => AgentStateKind::Reserved,
            AgentState::Busy => AgentStateKind::Busy,
            AgentState::AfterCallWork { .. } => AgentStateKind::AfterCallWork,
        }
    }
}

impl From<Presence> for AgentState {
    fn from(presence: Presence) -> Self {
        match presence {
            Presence::Offline => AgentState::Offline,
            Presence::Available => AgentState::Available,
            Presence::NotReady { reason } => AgentState::NotReady { reason },
        }
    }
}

impl fmt::Display for AgentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentState::Offline => f.write_str("offline"),
            AgentState::Available => f.write_str("available"),
            AgentState::NotReady { reason } => write!(f, "not ready ({reason})"),
            AgentState::Reserved => f.write_str("reserved"),
            AgentState::Busy => f.write_str("busy"),
            AgentState::AfterCallWork { until } => {
                write!(f, "after-call work until {}", until.to_rfc3339())
            }
        }
    }
}

/// [`AgentState`] without its data, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStateKind {
    Offline,
    Available,
    NotReady,
    Reserved,
    Busy,
    AfterCallWork,
}

/// What caused an agent's state to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionReason {
    /// The agent or a supervisor set the presence.
    PresenceSet,
    /// A contact was offered to the agent.
    Offered,
    /// The agent accepted an offer.
    Accepted,
    /// The agent declined an offer.
    Declined,
    /// An offer rang out (ring-no-answer).
    Missed,
    /// An offer was withdrawn because the customer abandoned.
    OfferWithdrawn,
    /// A connected contact ended.
    ContactEnded,
    /// After-call work was extended.
    WrapUpExtended,
    /// After-call work was ended by the agent.
    WrapUpEnded,
    /// After-call work ran out.
    WrapUpExpired,
    /// A contact the agent was on was put back after the state was lost.
    Reinstated,
    /// The agent placed an outbound contact (or it was re-asserted).
    OutboundConnected,
    /// The agent answered a contact put through to it without a queue
    /// (or it was re-asserted).
    DirectAnswered,
}

impl TransitionReason {
    /// The cause as events and agents' desktops name it (its serde name).
    pub fn name(self) -> &'static str {
        match self {
            TransitionReason::PresenceSet => "presence_set",
            TransitionReason::Offered => "offered",
            TransitionReason::Accepted => "accepted",
            TransitionReason::Declined => "declined",
            TransitionReason::Missed => "missed",
            TransitionReason::OfferWithdrawn => "offer_withdrawn",
            TransitionReason::ContactEnded => "contact_ended",
            TransitionReason::WrapUpExtended => "wrap_up_extended",
            TransitionReason::WrapUpEnded => "wrap_up_ended",
            TransitionReason::WrapUpExpired => "wrap_up_expired",
            TransitionReason::Reinstated => "reinstated",
            TransitionReason::OutboundConnected => "outbound_connected",
            TransitionReason::DirectAnswered => "direct_answered",
        }
    }
}

/// One change of an agent's [`AgentState`]. Per agent, each event's
/// `from` is the previous event's `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentEvent {
    pub agent: AgentId,
    pub from: AgentState,
    pub to: AgentState,
    pub at: DateTime<Utc>,
    pub reason: TransitionReason,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transition_reason_is_named_as_it_serialises() {
        for reason in [
            TransitionReason::PresenceSet,
            TransitionReason::Offered,
            TransitionReason::Accepted,
            TransitionReason::Declined,
            TransitionReason::Missed,
            TransitionReason::OfferWithdrawn,
            TransitionReason::ContactEnded,
            TransitionReason::WrapUpExtended,
            TransitionReason::WrapUpEnded,
            TransitionReason::WrapUpExpired,
            TransitionReason::Reinstated,
            TransitionReason::OutboundConnected,
            TransitionReason::DirectAnswered,
        ] {
            assert_eq!(
                serde_json::to_value(reason).unwrap(),
                serde_json::Value::from(reason.name())
            );
        }
    }
}
