//! The read side: states, positions and queue statistics.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::tally::DayTally;
use super::{ContactStatus, Engine};
use crate::error::AcdError;
use crate::ids::{AgentId, ContactId, QueueId};
use crate::model::{AgentProfile, Channel, Presence, QueueConfig};
use crate::outcome::Offer;
use crate::state::{AgentState, AgentStateKind};

/// An agent as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentView {
    pub profile: AgentProfile,
    pub state: AgentState,
    /// The presence the agent asked for (it returns to it once free).
    pub presence: Presence,
    pub idle_since: DateTime<Utc>,
    pub wrap_up_until: Option<DateTime<Utc>>,
    /// Contacts offered to the agent, in offer order.
    pub offers: Vec<ContactId>,
    /// Contacts connected to the agent (outbound ones included), in the
    /// order they connected.
    pub contacts: Vec<ContactId>,
    /// The queues the agent qualifies for.
    pub queues: Vec<QueueId>,
}

/// Where a contact is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ContactState {
    /// Waiting; `position` 1 is next.
    Queued { position: usize },
    Offered {
        agent: AgentId,
        expires_at: DateTime<Utc>,
    },
    /// Connected to `agent`: accepted, or placed by it (outbound).
    Connected { agent: AgentId },
}

/// A contact as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactView {
    pub id: ContactId,
    /// Its queue; `None` for an agent's outbound contact.
    pub queue: Option<QueueId>,
    pub channel: Channel,
    /// The contact's own priority, or its queue's (0 when outbound).
    pub priority: u8,
    /// When it joined its first queue; when outbound, when it connected.
    pub enqueued_at: DateTime<Utc>,
    pub state: ContactState,
}

/// Qualified agents of a queue by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCounts {
    pub offline: u32,
    pub available: u32,
    pub not_ready: u32,
    pub reserved: u32,
    pub busy: u32,
    pub after_call_work: u32,
}

/// A queue's real-time figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    pub waiting: u32,
    /// How long the contact waiting longest has waited (zero if none).
    #[serde(rename = "oldest_wait_ms", with = "crate::model::duration_ms")]
    pub oldest_wait: Duration,
    /// The queue's qualified agents by state.
    pub agents: AgentCounts,
    /// Contacts ringing at an agent.
    pub offered: u32,
    /// Contacts connected to an agent.
    pub connected: u32,
    /// What a contact entering now may expect to wait: zero while an agent
    /// is available and nobody waits; otherwise (waiting + 1) × today's
    /// average handle time ÷ the agents working the queue (available,
    /// reserved, busy or in after-contact work). `None` when unknown (no
    /// contact handled today, or nobody working).
    #[serde(rename = "expected_wait_ms", with = "crate::model::duration_ms_option")]
    pub expected_wait: Option<Duration>,
    /// Today's counts (in the queue's time zone).
    pub today: DayTally,
    /// Today's service level so far, 0 to 1 (see [`DayTally::service_level`]).
    pub service_level: Option<f64>,
}

impl Engine {
    /// An agent's state.
    pub fn agent_state(&self, agent: AgentId) -> Result<AgentState, AcdError> {
        Ok(self.agent_record(agent)?.state.clone())
    }

    /// An agent in full.
    pub fn agent(&self, agent: AgentId) -> Result<AgentView, AcdError> {
        let record = self.agent_record(agent)?;
        Ok(AgentView {
            profile: record.profile.clone(),
            state: record.state.clone(),
            presence: record.presence.clone(),
            idle_since: record.idle_since,
            wrap_up_until: record.wrap_up_until,
            offers: record.offers.clone(),
            contacts: record.contacts.clone(),
            queues: self
                .index
                .agent_queues
                .get(&agent)
                .map(|queues| queues.iter().copied().collect())
                .unwrap_or_default(),
        })
    }

    /// The agents, in id order.
    pub fn agents(&self) -> impl Iterator<Item = AgentId> + '_ {
        self.state.agents.keys().copied()
    }

    /// The queues' configurations, in id order.
    pub fn queues(&self) -> impl Iterator<Item = &QueueConfig> + '_ {
        self.state.queues.values().map(|q| &q.config)
    }

    /// A queue's configuration.
    pub fn queue(&self, queue: QueueId) -> Result<&QueueConfig, AcdError> {
        Ok(&self.queue_record(queue)?.config)
    }

    /// The agents qualified for a queue, in id order.
    pub fn eligible_agents(&self, queue: QueueId) -> Result<Vec<AgentId>, AcdError> {
        self.queue_record(queue)?;
        Ok(self
            .index
            .queues
            .get(&queue)
            .map(|qi| qi.eligible.iter().copied().collect())
            .unwrap_or_default())
    }

    /// A queue's waiting contacts, next first.
    pub fn waiting(&self, queue: QueueId) -> Result<Vec<ContactId>, AcdError> {
        self.queue_record(queue)?;
        Ok(self
            .index
            .queues
            .get(&queue)
            .map(|qi| qi.waiting.iter().map(|key| key.3).collect())
            .unwrap_or_default())
    }

    /// A contact, with its position if waiting.
    pub fn contact(&self, contact: ContactId) -> Result<ContactView, AcdError> {
        if let Some(record) = self.state.outbound.get(&contact) {
            return Ok(ContactView {
                id: contact,
                queue: None,
                channel: record.channel,
                priority: 0,
                enqueued_at: record.since,
                state: ContactState::Connected {
                    agent: record.agent,
                },
            });
        }
        let record = self.contact_record(contact)?;
        let state = match record.status {
            ContactStatus::Queued => ContactState::Queued {
                position: self.position(contact).unwrap_or(0),
            },
            ContactStatus::Offered {
                agent, expires_at, ..
            } => ContactState::Offered { agent, expires_at },
            ContactStatus::Connected { agent, .. } => ContactState::Connected { agent },
        };
        Ok(ContactView {
            id: contact,
            queue: Some(record.contact.queue),
            channel: record.contact.channel,
            priority: record.priority,
            enqueued_at: record.contact.enqueued_at,
            state,
        })
    }

    /// A waiting contact's position (1 = next); `None` if it is offered
    /// or connected (or outbound). Costs O(position).
    pub fn waiting_position(&self, contact: ContactId) -> Result<Option<usize>, AcdError> {
        if self.state.outbound.contains_key(&contact) {
            return Ok(None);
        }
        self.contact_record(contact)?;
        Ok(self.position(contact))
    }

    fn position(&self, contact: ContactId) -> Option<usize> {
        let record = self.state.contacts.get(&contact)?;
        if record.status != ContactStatus::Queued {
            return None;
        }
        let qi = self.index.queues.get(&record.contact.queue)?;
        Some(qi.waiting.range(..record.wait_key()).count() + 1)
    }

    /// Every pending offer, soonest expiry first.
    pub fn offers(&self) -> Vec<Offer> {
        self.index
            .offer_deadlines
            .iter()
            .filter_map(|&(_, contact)| self.current_offer(contact))
            .collect()
    }

    /// An agent's occupancy since it last came online: time reserved,
    /// busy or in after-call work over that time plus time available
    /// (0 when it has not been staffed yet).
    pub fn occupancy(&self, agent: AgentId, at: DateTime<Utc>) -> Result<f64, AcdError> {
        let (busy, staffed) = self.agent_record(agent)?.occupancy_at(at);
        Ok(if staffed <= 0 {
            0.0
        } else {
            busy as f64 / staffed as f64
        })
    }

    /// A queue's real-time figures at `at`. Costs O(waiting + qualified
    /// agents).
    pub fn queue_stats(&self, queue: QueueId, at: DateTime<Utc>) -> Result<QueueStats, AcdError> {
        self.queue_record(queue)?;
        let Some(qi) = self.index.queues.get(&queue) else {
            return Err(AcdError::UnknownQueue(queue));
        };
        let oldest = qi
            .waiting
            .iter()
            .map(|&(_, enqueued_at, _, _)| enqueued_at)
            .min();
        let oldest_wait = oldest
            .and_then(|since| (at - since).to_std().ok())
            .map_or(Duration::ZERO, crate::model::whole_millis);
        let mut agents = AgentCounts::default();
        for agent in &qi.eligible {
            let Some(record) = self.state.agents.get(agent) else {
                continue;
            };
            let slot = match record.state.kind() {
                AgentStateKind::Offline => &mut agents.offline,
                AgentStateKind::Available => &mut agents.available,
                AgentStateKind::NotReady => &mut agents.not_ready,
                AgentStateKind::Reserved => &mut agents.reserved,
                AgentStateKind::Busy => &mut agents.busy,
                AgentStateKind::AfterCallWork => &mut agents.after_call_work,
            };
            *slot += 1;
        }
        let waiting = u32::try_from(qi.waiting.len()).unwrap_or(u32::MAX);
        let today = self.today(queue, at);
        let working = agents.available + agents.reserved + agents.busy + agents.after_call_work;
        let expected_wait = if waiting == 0 && agents.available > 0 {
            Some(Duration::ZERO)
        } else {
            today
                .average_handle_time()
                .filter(|_| working > 0)
                .map(|aht| aht * (waiting + 1) / working)
                .map(crate::model::whole_millis)
        };
        Ok(QueueStats {
            waiting,
            oldest_wait,
            agents,
            offered: qi.offered,
            connected: qi.connected,
            expected_wait,
            service_level: today.service_level(),
            today,
        })
    }
}
