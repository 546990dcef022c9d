//! The operations and reads of a tenant's ACD as data, so that an
//! instance that does not own the tenant can send them to the one that
//! does, a caller on another node can send them over gRPC, and every
//! adapter (REST, WebSockets, the edge's gRPC) speaks one vocabulary.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_acd::{
    AcdError, AgentId, AgentProfile, AgentState, AgentView, Channel, Contact, ContactId,
    ContactView, DirectOrigin, Engine, ErrorKind, Offer, Outcome, Presence, QueueConfig, QueueId,
    QueueStats,
};

/// A change to a tenant's ACD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    UpsertQueue {
        config: QueueConfig,
    },
    RemoveQueue {
        queue: QueueId,
    },
    UpsertAgent {
        profile: AgentProfile,
    },
    RemoveAgent {
        agent: AgentId,
    },
    SetPresence {
        agent: AgentId,
        presence: Presence,
    },
    Accept {
        agent: AgentId,
        contact: ContactId,
    },
    Decline {
        agent: AgentId,
        contact: ContactId,
    },
    ExtendWrapUp {
        agent: AgentId,
        by_ms: u64,
    },
    EndWrapUp {
        agent: AgentId,
    },
    Enqueue {
        contact: Contact,
    },
    Abandon {
        contact: ContactId,
    },
    /// Take a waiting contact out of its queue for the overflow step.
    Overflow {
        contact: ContactId,
    },
    End {
        contact: ContactId,
    },
    /// Put back a contact lost with the tenant's state while its call
    /// goes on: the edge re-asserts what it still holds
    /// ([`Engine::reinstate`]).
    Reinstate {
        contact: Contact,
        /// The agent it is connected to, and since when; absent while it
        /// waits in its queue.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        connected: Option<Connection>,
    },
    /// A contact outside every queue is connected to its agent: one the
    /// agent placed (dialed from its phone, or click-to-call), or one rung
    /// to the agent directly that it answered. The agent is busy with it,
    /// in no queue, until it ends ([`Engine::connect_direct`]). The edge
    /// re-asserts one the engine lost with its original `since`;
    /// replaying one the engine knows, with the same agent, changes
    /// nothing.
    #[serde(alias = "connect_outbound")]
    ConnectDirect {
        contact: ContactId,
        agent: AgentId,
        /// Placed by the agent (the default) or rung to it.
        #[serde(default)]
        origin: DirectOrigin,
        channel: Channel,
        /// When it connected.
        since: DateTime<Utc>,
        /// The agent's after-contact work once it ends; 0 for none.
        wrap_up_ms: u64,
    },
    /// Expire offers and wrap-ups due by the operation's time.
    Tick,
}

impl Operation {
    /// The operation's kind, as metrics label it (`set_presence`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Operation::UpsertQueue { .. } => "upsert_queue",
            Operation::RemoveQueue { .. } => "remove_queue",
            Operation::UpsertAgent { .. } => "upsert_agent",
            Operation::RemoveAgent { .. } => "remove_agent",
            Operation::SetPresence { .. } => "set_presence",
            Operation::Accept { .. } => "accept",
            Operation::Decline { .. } => "decline",
            Operation::ExtendWrapUp { .. } => "extend_wrap_up",
            Operation::EndWrapUp { .. } => "end_wrap_up",
            Operation::Enqueue { .. } => "enqueue",
            Operation::Abandon { .. } => "abandon",
            Operation::Overflow { .. } => "overflow",
            Operation::End { .. } => "end",
            Operation::Reinstate { .. } => "reinstate",
            Operation::ConnectDirect { .. } => "connect_direct",
            Operation::Tick => "tick",
        }
    }

    /// The contact whose wait in its queue this operation may end (by an
    /// answer or an abandon), to measure that wait.
    pub fn ends_wait_of(&self) -> Option<ContactId> {
        match self {
            Operation::Accept { contact, .. } | Operation::Abandon { contact } => Some(*contact),
            _ => None,
        }
    }

    /// Runs the operation on `engine` at `at`.
    pub fn apply(self, engine: &mut Engine, at: DateTime<Utc>) -> Result<Outcome, AcdError> {
        match self {
            Operation::UpsertQueue { config } => engine.upsert_queue(config, at),
            Operation::RemoveQueue { queue } => engine.remove_queue(queue, at),
            Operation::UpsertAgent { profile } => engine.upsert_agent_profile(profile, at),
            Operation::RemoveAgent { agent } => engine.remove_agent(agent, at),
            Operation::SetPresence { agent, presence } => engine.set_presence(agent, presence, at),
            Operation::Accept { agent, contact } => engine.accept(contact, agent, at),
            Operation::Decline { agent, contact } => engine.decline(contact, agent, at),
            Operation::ExtendWrapUp { agent, by_ms } => {
                engine.extend_wrap_up(agent, Duration::from_millis(by_ms), at)
            }
            Operation::EndWrapUp { agent } => engine.end_wrap_up(agent, at),
            Operation::Enqueue { contact } => engine.enqueue(contact, at),
            Operation::Abandon { contact } => engine.abandon(contact, at),
            Operation::Overflow { contact } => engine.overflow(contact, at),
            Operation::End { contact } => engine.end(contact, at),
            Operation::Reinstate { contact, connected } => engine.reinstate(
                contact,
                connected.map(|connection| (connection.agent, connection.since)),
                at,
            ),
            Operation::ConnectDirect {
                contact,
                agent,
                origin,
                channel,
                since,
                wrap_up_ms,
            } => engine.connect_direct(
                contact,
                agent,
                origin,
                channel,
                since,
                Duration::from_millis(wrap_up_ms),
                at,
            ),
            Operation::Tick => engine.tick(at),
        }
    }
}

/// A contact's agent and since when it is connected to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub agent: AgentId,
    pub since: DateTime<Utc>,
}

/// A read of a tenant's ACD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "query", rename_all = "snake_case")]
pub enum Query {
    Agent {
        agent: AgentId,
    },
    Contact {
        contact: ContactId,
    },
    /// Every queue's live figures.
    QueueStats,
    /// One queue's live figures (answered as a one-queue `QueueStats`).
    QueueStatsOf {
        queue: QueueId,
    },
    /// Offers ringing at one agent.
    OffersOf {
        agent: AgentId,
    },
}

/// One queue's live figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueFigures {
    pub queue: QueueId,
    /// The queue's client organisation (`None`: the tenant's own).
    #[serde(default)]
    pub client: Option<uuid::Uuid>,
    #[serde(flatten)]
    pub stats: QueueStats,
}

/// The answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    Agent { view: Box<AgentView> },
    Contact { view: ContactView },
    QueueStats { queues: Vec<QueueFigures> },
    Offers { offers: Vec<Offer> },
}

impl Query {
    /// Reads `engine` at `at`.
    pub fn answer(&self, engine: &Engine, at: DateTime<Utc>) -> Result<Answer, AcdError> {
        Ok(match self {
            Query::Agent { agent } => Answer::Agent {
                view: Box::new(engine.agent(*agent)?),
            },
            Query::Contact { contact } => Answer::Contact {
                view: engine.contact(*contact)?,
            },
            Query::QueueStats => Answer::QueueStats {
                queues: engine
                    .queues()
                    .map(|queue| figures(engine, queue, at))
                    .collect::<Result<_, AcdError>>()?,
            },
            Query::QueueStatsOf { queue } => Answer::QueueStats {
                queues: vec![figures(engine, engine.queue(*queue)?, at)?],
            },
            Query::OffersOf { agent } => {
                engine.agent(*agent)?;
                Answer::Offers {
                    offers: engine
                        .offers()
                        .into_iter()
                        .filter(|offer| offer.agent == *agent)
                        .collect(),
                }
            }
        })
    }
}

fn figures(
    engine: &Engine,
    queue: &QueueConfig,
    at: DateTime<Utc>,
) -> Result<QueueFigures, AcdError> {
    Ok(QueueFigures {
        queue: queue.id,
        client: queue.client,
        stats: engine.queue_stats(queue.id, at)?,
    })
}

/// Why the ACD refused an operation, as it travels between instances: the
/// kind (→ status code), the message, for an illegal state change the
/// agent's current state, and for an agent the ACD does not know (a user
/// without an agent profile) that agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub kind: RefusalKind,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_state: Option<AgentState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_agent: Option<AgentId>,
}

/// [`ErrorKind`] on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    NotFound,
    Conflict,
    Overflow,
    InvalidArgument,
}

impl From<AcdError> for Refusal {
    fn from(error: AcdError) -> Self {
        let kind = match error.kind() {
            ErrorKind::NotFound => RefusalKind::NotFound,
            ErrorKind::Conflict => RefusalKind::Conflict,
            ErrorKind::Overflow => RefusalKind::Overflow,
            ErrorKind::InvalidArgument => RefusalKind::InvalidArgument,
        };
        let current_state = match &error {
            AcdError::IllegalTransition { current, .. }
            | AcdError::NotInWrapUp { current, .. }
            | AcdError::AgentBusy { current, .. } => Some(current.clone()),
            _ => None,
        };
        let unknown_agent = match &error {
            AcdError::UnknownAgent(agent) => Some(*agent),
            _ => None,
        };
        Refusal {
            kind,
            message: error.to_string(),
            current_state,
            unknown_agent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_acd::ContactState;

    #[test]
    fn operations_round_trip_as_json() {
        let agent = AgentId::new();
        let operations = vec![
            Operation::SetPresence {
                agent,
                presence: Presence::not_ready("lunch"),
            },
            Operation::Enqueue {
                contact: Contact::new(ContactId::new(), QueueId::new(), Channel::Chat, Utc::now())
                    .with_priority(7),
            },
            Operation::ExtendWrapUp {
                agent,
                by_ms: 30_000,
            },
            Operation::ConnectDirect {
                contact: ContactId::new(),
                agent,
                origin: DirectOrigin::RungToAgent,
                channel: Channel::Voice,
                since: Utc::now(),
                wrap_up_ms: 15_000,
            },
            Operation::Tick,
        ];
        for operation in operations {
            let json = serde_json::to_string(&operation).unwrap();
            let back: Operation = serde_json::from_str(&json).unwrap();
            assert_eq!(back, operation, "{json}");
        }
    }

    /// A node of the previous release names the operation
    /// `connect_outbound` and sends no origin: during a rolling upgrade it
    /// still reads as an outbound contact the agent placed.
    #[test]
    fn the_previous_releases_connect_outbound_reads_as_placed_by_the_agent() {
        let (agent, contact) = (AgentId::new(), ContactId::new());
        let json = serde_json::json!({
            "op": "connect_outbound",
            "contact": contact,
            "agent": agent,
            "channel": "voice",
            "since": "2026-12-08T09:00:00Z",
            "wrap_up_ms": 0,
        });
        let operation: Operation = serde_json::from_value(json).unwrap();
        assert_eq!(
            operation,
            Operation::ConnectDirect {
                contact,
                agent,
                origin: DirectOrigin::PlacedByAgent,
                channel: Channel::Voice,
                since: "2026-12-08T09:00:00Z".parse().unwrap(),
                wrap_up_ms: 0,
            }
        );
    }

    /// The edge asks for a call the engine may have forgotten: an outbound
    /// one answers as connected to its agent, in no queue, across JSON.
    #[test]
    fn an_outbound_contact_reads_as_connected_to_its_agent() {
        let mut engine = Engine::new();
        let (agent, contact, at) = (AgentId::new(), ContactId::new(), Utc::now());
        engine
            .upsert_agent_profile(AgentProfile::new(agent), at)
            .unwrap();
        let operation = Operation::ConnectDirect {
            contact,
            agent,
            origin: DirectOrigin::PlacedByAgent,
            channel: Channel::Voice,
            since: at - chrono::TimeDelta::seconds(40),
            wrap_up_ms: 0,
        };
        assert_eq!(operation.name(), "connect_direct");
        let outcome = operation.clone().apply(&mut engine, at).unwrap();
        assert_eq!(outcome.agent_events[0].to, AgentState::Busy);
        assert!(operation.apply(&mut engine, at).unwrap().is_empty());

        let answer = Query::Contact { contact }.answer(&engine, at).unwrap();
        let json = serde_json::to_string(&answer).unwrap();
        let Answer::Contact { view } = serde_json::from_str(&json).unwrap() else {
            panic!("not a contact answer: {json}");
        };
        assert_eq!(view.queue, None);
        assert_eq!(view.state, ContactState::Connected { agent });
        assert_eq!(view.enqueued_at, at - chrono::TimeDelta::seconds(40));
    }

    #[test]
    fn an_illegal_transition_keeps_the_current_state() {
        let mut engine = Engine::new();
        let agent = AgentId::new();
        let at = Utc::now();
        engine
            .upsert_agent_profile(AgentProfile::new(agent), at)
            .unwrap();
        let error = Operation::ExtendWrapUp { agent, by_ms: 1000 }
            .apply(&mut engine, at)
            .unwrap_err();
        let refusal = Refusal::from(error);
        assert_eq!(refusal.kind, RefusalKind::Conflict);
        assert_eq!(refusal.current_state, Some(AgentState::Offline));
        assert!(refusal.message.contains("offline"), "{}", refusal.message);
    }
}
