//! Indexes derived from the engine state, kept in step by every
//! operation and rebuilt from scratch on restore.
//!
//! Per queue: the agents that qualify for it (skills, client scope,
//! channel), the subset able to take a contact now ordered for
//! longest-idle order (and by id, for round robin), and the waiting contacts in
//! service order. Globally: offer and wrap-up deadlines, for `tick`.
//! Agents' outbound contacts need no index: `Index::build` only checks
//! that they agree with their agents' loads and contact lists.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::{ContactStatus, Ctx, Engine, State};
use crate::ids::{AgentId, ContactId, QueueId};
use crate::model::{Channel, QueueConfig, Strategy};

/// Service order of a waiting contact: highest priority, then earliest
/// `enqueued_at`, then first queued.
pub(crate) type WaitKey = (Reverse<u8>, DateTime<Utc>, u64, ContactId);

/// An agent's place in the longest-idle order: fewest active contacts,
/// then earliest idle, then id.
pub(crate) type IdleKey = (u8, DateTime<Utc>, AgentId);

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Index {
    pub(crate) queues: BTreeMap<QueueId, QueueIndex>,
    /// The queues each agent qualifies for.
    pub(crate) agent_queues: BTreeMap<AgentId, BTreeSet<QueueId>>,
    /// The key each available agent is filed under.
    pub(crate) agent_key: BTreeMap<AgentId, (u8, DateTime<Utc>)>,
    pub(crate) offer_deadlines: BTreeSet<(DateTime<Utc>, ContactId)>,
    pub(crate) acw_deadlines: BTreeSet<(DateTime<Utc>, AgentId)>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueueIndex {
    pub(crate) channel: Channel,
    /// Whether `by_id` is kept (only round robin needs it).
    pub(crate) round_robin: bool,
    pub(crate) eligible: BTreeSet<AgentId>,
    pub(crate) by_idle: BTreeSet<IdleKey>,
    pub(crate) by_id: BTreeSet<AgentId>,
    pub(crate) waiting: BTreeSet<WaitKey>,
    pub(crate) offered: u32,
    pub(crate) connected: u32,
}

impl QueueIndex {
    fn new(config: &QueueConfig) -> Self {
        QueueIndex {
            channel: config.channel,
            round_robin: config.strategy == Strategy::RoundRobin,
            eligible: BTreeSet::new(),
            by_idle: BTreeSet::new(),
            by_id: BTreeSet::new(),
            waiting: BTreeSet::new(),
            offered: 0,
            connected: 0,
        }
    }
}

impl Index {
    /// Builds the index of `state`, checking its references.
    pub(crate) fn build(state: &State) -> Result<Index, String> {
        let mut index = Index::default();
        for (id, queue) in &state.queues {
            if *id != queue.config.id {
                return Err(format!("queue {id} is filed under another id"));
            }
            index.queues.insert(*id, QueueIndex::new(&queue.config));
        }
        for (id, agent) in &state.agents {
            if *id != agent.profile.id {
                return Err(format!("agent {id} is filed under another id"));
            }
            index.agent_queues.insert(*id, BTreeSet::new());
        }
        let mut load: BTreeMap<AgentId, [u8; 4]> = BTreeMap::new();
        let mut offers: BTreeMap<AgentId, BTreeSet<ContactId>> = BTreeMap::new();
        let mut connected: BTreeMap<AgentId, BTreeSet<ContactId>> = BTreeMap::new();
        for (id, record) in &state.contacts {
            let contact = &record.contact;
            if *id != contact.id {
                return Err(format!("contact {id} is filed under another id"));
            }
            if record.seq >= state.next_seq {
                return Err(format!(
                    "contact {id} has sequence {} beyond the next",
                    record.seq
                ));
            }
            let qi = index
                .queues
                .get_mut(&contact.queue)
                .ok_or_else(|| format!("contact {id} is in unknown queue {}", contact.queue))?;
            if qi.channel != contact.channel {
                return Err(format!("contact {id} is not on its queue's channel"));
            }
            let agent = match record.status {
                ContactStatus::Queued => {
                    qi.waiting.insert(record.wait_key());
                    None
                }
                ContactStatus::Offered {
                    agent, expires_at, ..
                } => {
                    qi.offered += 1;
                    index.offer_deadlines.insert((expires_at, *id));
                    offers.entry(agent).or_default().insert(*id);
                    Some(agent)
                }
                ContactStatus::Connected { agent, .. } => {
                    qi.connected += 1;
                    connected.entry(agent).or_default().insert(*id);
                    Some(agent)
                }
            };
            if let Some(agent) = agent {
                add_load(state, &mut load, *id, agent, contact.channel)?;
            }
        }
        for (id, record) in &state.outbound {
            if state.contacts.contains_key(id) {
                return Err(format!("contact {id} is both a queue's and outbound"));
            }
            add_load(state, &mut load, *id, record.agent, record.channel)?;
            connected.entry(record.agent).or_default().insert(*id);
        }
        for (id, agent) in &state.agents {
            if agent.load != load.get(id).copied().unwrap_or_default() {
                return Err(format!(
                    "agent {id} has a load that does not match its contacts"
                ));
            }
            let listed: BTreeSet<ContactId> = agent.offers.iter().copied().collect();
            if listed.len() != agent.offers.len() || listed != offers.remove(id).unwrap_or_default()
            {
                return Err(format!(
                    "agent {id} lists offers that do not match the contacts"
                ));
            }
            let listed: BTreeSet<ContactId> = agent.contacts.iter().copied().collect();
            if listed.len() != agent.contacts.len()
                || listed != connected.remove(id).unwrap_or_default()
            {
                return Err(format!(
                    "agent {id} lists contacts that do not match the contacts"
                ));
            }
            if agent.state != agent.derived_state() {
                return Err(format!(
                    "agent {id} reported state {} is stale",
                    agent.state
                ));
            }
            if let Some(until) = agent.wrap_up_until {
                if !agent.offers.is_empty() || !agent.contacts.is_empty() {
                    return Err(format!("agent {id} wraps up while it has contacts"));
                }
                index.acw_deadlines.insert((until, *id));
            }
            for (queue_id, queue) in &state.queues {
                if agent.profile.qualifies_for(&queue.config) {
                    index.attach(*id, *queue_id);
                }
            }
            if let Some(key) = agent.available_key() {
                index.agent_key.insert(*id, key);
                index.file_available(state, *id);
            }
        }
        Ok(index)
    }

    pub(crate) fn queue_mut(&mut self, queue: QueueId) -> &mut QueueIndex {
        self.queues
            .get_mut(&queue)
            .expect("queue referenced by the engine state is indexed")
    }

    /// Contacts waiting, offered or connected in `queue`.
    pub(crate) fn contacts_in(&self, queue: QueueId) -> u32 {
        self.queues.get(&queue).map_or(0, |qi| {
            u32::try_from(qi.waiting.len()).unwrap_or(u32::MAX) + qi.offered + qi.connected
        })
    }

    pub(crate) fn waiting_len(&self, queue: QueueId) -> usize {
        self.queues.get(&queue).map_or(0, |qi| qi.waiting.len())
    }

    /// Records that `agent` qualifies for `queue` (not its availability).
    fn attach(&mut self, agent: AgentId, queue: QueueId) {
        if let Some(qi) = self.queues.get_mut(&queue)
            && qi.eligible.insert(agent)
        {
            self.agent_queues.entry(agent).or_default().insert(queue);
        }
    }

    /// Files an agent (whose key is in `agent_key`) in the available sets
    /// of those of its queues whose channel it has room for.
    fn file_available(&mut self, state: &State, agent: AgentId) {
        let (Some(&(load, idle)), Some(record), Some(queues)) = (
            self.agent_key.get(&agent),
            state.agents.get(&agent),
            self.agent_queues.get(&agent),
        ) else {
            return;
        };
        for queue in queues {
            if let Some(qi) = self.queues.get_mut(queue)
                && record.has_room(qi.channel)
            {
                qi.by_idle.insert((load, idle, agent));
                if qi.round_robin {
                    qi.by_id.insert(agent);
                }
            }
        }
    }

    /// Takes an agent out of every available set.
    fn unfile_available(&mut self, agent: AgentId) {
        let (Some((load, idle)), Some(queues)) =
            (self.agent_key.remove(&agent), self.agent_queues.get(&agent))
        else {
            return;
        };
        for queue in queues {
            if let Some(qi) = self.queues.get_mut(queue)
                && qi.by_idle.remove(&(load, idle, agent))
                && qi.round_robin
            {
                qi.by_id.remove(&agent);
            }
        }
    }

    /// Recomputes which agents qualify for `queue` after its config
    /// changed (or it was created), and files the available ones.
    pub(crate) fn reindex_queue(&mut self, state: &State, queue: QueueId) {
        let Some(config) = state.queues.get(&queue).map(|q| &q.config) else {
            return;
        };
        let qi = self
            .queues
            .entry(queue)
            .or_insert_with(|| QueueIndex::new(config));
        qi.channel = config.channel;
        qi.round_robin = config.strategy == Strategy::RoundRobin;
        qi.by_idle.clear();
        qi.by_id.clear();
        let old = std::mem::take(&mut qi.eligible);
        for agent in old {
            if let Some(queues) = self.agent_queues.get_mut(&agent) {
                queues.remove(&queue);
            }
        }
        for (id, record) in &state.agents {
            if record.profile.qualifies_for(config) {
                self.attach(*id, queue);
                if let Some(&(load, idle)) = self.agent_key.get(id)
                    && let Some(qi) = self.queues.get_mut(&queue)
                    && record.has_room(qi.channel)
                {
                    qi.by_idle.insert((load, idle, *id));
                    if qi.round_robin {
                        qi.by_id.insert(*id);
                    }
                }
            }
        }
    }

    /// Recomputes the queues `agent` qualifies for after its profile
    /// changed (or it was created); [`Engine::refresh`] files it.
    pub(crate) fn reindex_agent(&mut self, state: &State, agent: AgentId) {
        self.unfile_available(agent);
        for queue in self.agent_queues.remove(&agent).unwrap_or_default() {
            if let Some(qi) = self.queues.get_mut(&queue) {
                qi.eligible.remove(&agent);
            }
        }
        self.agent_queues.insert(agent, BTreeSet::new());
        let Some(record) = state.agents.get(&agent) else {
            return;
        };
        for (id, queue) in &state.queues {
            if record.profile.qualifies_for(&queue.config) {
                self.attach(agent, *id);
            }
        }
    }

    pub(crate) fn remove_queue(&mut self, queue: QueueId) {
        if let Some(qi) = self.queues.remove(&queue) {
            for agent in qi.eligible {
                if let Some(queues) = self.agent_queues.get_mut(&agent) {
                    queues.remove(&queue);
                }
            }
        }
    }

    pub(crate) fn remove_agent(&mut self, agent: AgentId) {
        self.unfile_available(agent);
        for queue in self.agent_queues.remove(&agent).unwrap_or_default() {
            if let Some(qi) = self.queues.get_mut(&queue) {
                qi.eligible.remove(&agent);
            }
        }
    }
}

/// Counts `contact`, offered or connected to `agent`, in the agent's load.
fn add_load(
    state: &State,
    load: &mut BTreeMap<AgentId, [u8; 4]>,
    contact: ContactId,
    agent: AgentId,
    channel: Channel,
) -> Result<(), String> {
    if !state.agents.contains_key(&agent) {
        return Err(format!("contact {contact} is with unknown agent {agent}"));
    }
    let slot = &mut load.entry(agent).or_default()[channel.index()];
    *slot = slot
        .checked_add(1)
        .ok_or_else(|| format!("agent {agent} has too many contacts"))?;
    Ok(())
}

impl Engine {
    /// Refiles an agent in its queues' available sets after its presence,
    /// load, wrap-up or idle time changed, and marks the queues where it
    /// can now take a waiting contact.
    pub(super) fn refresh(&mut self, agent: AgentId, ctx: &mut Ctx) {
        let Some(record) = self.state.agents.get(&agent) else {
            return;
        };
        let key = record.available_key();
        // Every change of load changes the key's total, and a profile
        // change unfiles the agent first: an unchanged key means the agent
        // is filed right already.
        if key == self.index.agent_key.get(&agent).copied() {
            return;
        }
        self.index.unfile_available(agent);
        if let Some(key) = key {
            self.index.agent_key.insert(agent, key);
            self.index.file_available(&self.state, agent);
            if let Some(queues) = self.index.agent_queues.get(&agent) {
                for queue in queues {
                    if let Some(qi) = self.index.queues.get(queue)
                        && !qi.waiting.is_empty()
                        && record.has_room(qi.channel)
                    {
                        ctx.dirty.push(*queue);
                    }
                }
            }
        }
    }
}

/// A short description of where two indexes differ.
pub(crate) fn describe_mismatch(expected: &Index, actual: &Index) -> String {
    if expected.offer_deadlines != actual.offer_deadlines {
        return "offer deadlines differ".into();
    }
    if expected.acw_deadlines != actual.acw_deadlines {
        return "wrap-up deadlines differ".into();
    }
    if expected.agent_key != actual.agent_key {
        return "available agents' keys differ".into();
    }
    for (id, qi) in &expected.queues {
        match actual.queues.get(id) {
            None => return format!("queue {id} is not indexed"),
            Some(other) if other != qi => {
                let what = if qi.eligible != other.eligible {
                    "eligible agents"
                } else if qi.by_idle != other.by_idle || qi.by_id != other.by_id {
                    "available agents"
                } else if qi.waiting != other.waiting {
                    "waiting contacts"
                } else {
                    "offered/connected counts or channel"
                };
                return format!("queue {id}: {what} differ");
            }
            Some(_) => {}
        }
    }
    if expected.queues.len() != actual.queues.len() {
        return "a removed queue is still indexed".into();
    }
    "agent queue sets differ".into()
}
