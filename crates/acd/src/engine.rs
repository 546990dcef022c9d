//! The per-tenant engine: its state, and the operations that change it.
//!
//! Each operation validates everything first and only then mutates, so a
//! refused operation leaves the engine exactly as it was. Mutations go
//! through a few helpers that keep the derived [`Index`] in step and
//! record what changed in the [`Outcome`]; operations that may free an
//! agent or queue a contact end with [`Engine::rebalance`].

mod index;
mod matching;
mod read;
mod records;
mod tally;

pub use records::{META_FIELD, RecordChange};
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::AcdError;
use crate::ids::{AgentId, ContactId, QueueId};
use crate::model::{
    AgentProfile, Channel, Contact, MAX_DURATION, MAX_PRIORITY, Presence, QueueConfig,
};
use crate::outcome::{ContactEvent, ContactEventKind, Offer, Outcome};
use crate::state::{AgentEvent, AgentState, TransitionReason};

use index::Index;

pub use read::{AgentCounts, AgentView, ContactState, ContactView, QueueStats};
pub use tally::DayTally;

/// The ACD of one tenant. See the [crate documentation](crate).
///
/// Serialises as its [`Snapshot`]; deserialising rebuilds (and checks) the
/// derived indexes.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    state: State,
    index: Index,
}

impl PartialEq for Engine {
    fn eq(&self, other: &Self) -> bool {
        self.state == other.state
    }
}

/// Everything an [`Engine`] needs to carry on where another left off:
/// configuration, agents' presence and history, contacts and offers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Snapshot(State);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct State {
    queues: BTreeMap<QueueId, QueueRecord>,
    agents: BTreeMap<AgentId, AgentRecord>,
    contacts: BTreeMap<ContactId, ContactRecord>,
    /// Contacts agents placed themselves, in no queue; their ids are
    /// distinct from `contacts`' ids.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    outbound: BTreeMap<ContactId, OutboundRecord>,
    /// Sequence number of the next contact queued (FIFO tie-break).
    next_seq: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct QueueRecord {
    config: QueueConfig,
    /// The agent this queue offered a contact to last (round robin).
    last_offered: Option<AgentId>,
    /// Today's figures.
    #[serde(default)]
    today: tally::DayTally,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AgentRecord {
    profile: AgentProfile,
    presence: Presence,
    wrap_up_until: Option<DateTime<Utc>>,
    /// Since when the agent has been idle: set when it becomes available
    /// other than by an offer being withdrawn.
    idle_since: DateTime<Utc>,
    /// Contacts offered to the agent, in offer order.
    offers: Vec<ContactId>,
    /// Contacts connected to the agent (outbound ones included), in the
    /// order they connected.
    contacts: Vec<ContactId>,
    /// Offers plus connected contacts, per channel.
    load: [u8; 4],
    /// The state last reported in an [`AgentEvent`].
    state: AgentState,
    occupancy: Occupancy,
}

/// Time accounting since the agent last came online, in milliseconds:
/// `busy` counts reserved, busy and after-call work; `staffed` counts
/// those plus available. Not ready and offline count in neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Occupancy {
    busy_ms: i64,
    staffed_ms: i64,
    since: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ContactRecord {
    contact: Contact,
    /// The contact's own priority, or its queue's.
    priority: u8,
    seq: u64,
    status: ContactStatus,
}

/// How a contact outside every queue reached its agent
/// ([`Engine::connect_direct`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectOrigin {
    /// The agent placed it: an outbound call dialed from its phone, or
    /// click-to-call.
    #[default]
    PlacedByAgent,
    /// It was put through to the agent without a queue (a flow's
    /// `ring_agent` step, a direct extension) and the agent answered.
    RungToAgent,
}

impl DirectOrigin {
    /// The agent's transition when such a contact connects.
    fn reason(self) -> TransitionReason {
        match self {
            DirectOrigin::PlacedByAgent => TransitionReason::OutboundConnected,
            DirectOrigin::RungToAgent => TransitionReason::DirectAnswered,
        }
    }
}

fn is_placed_by_agent(origin: &DirectOrigin) -> bool {
    *origin == DirectOrigin::PlacedByAgent
}

/// A contact outside every queue (placed by its agent, or rung to it
/// directly): connected to the agent from the start and counted in no
/// queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OutboundRecord {
    agent: AgentId,
    #[serde(default, skip_serializing_if = "is_placed_by_agent")]
    origin: DirectOrigin,
    channel: Channel,
    /// When it connected.
    since: DateTime<Utc>,
    /// The agent's after-contact work once it ends; zero for none.
    #[serde(rename = "wrap_up_ms", with = "crate::model::duration_ms")]
    wrap_up: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum ContactStatus {
    Queued,
    Offered {
        agent: AgentId,
        offered_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    },
    Connected {
        agent: AgentId,
        since: DateTime<Utc>,
    },
}

impl AgentRecord {
    fn new(profile: AgentProfile, at: DateTime<Utc>) -> Self {
        AgentRecord {
            profile,
            presence: Presence::Offline,
            wrap_up_until: None,
            idle_since: at,
            offers: Vec::new(),
            contacts: Vec::new(),
            load: [0; 4],
            state: AgentState::Offline,
            occupancy: Occupancy {
                busy_ms: 0,
                staffed_ms: 0,
                since: at,
            },
        }
    }

    fn derived_state(&self) -> AgentState {
        if !self.offers.is_empty() {
            AgentState::Reserved
        } else if !self.contacts.is_empty() {
            AgentState::Busy
        } else if let Some(until) = self.wrap_up_until {
            AgentState::AfterCallWork { until }
        } else {
            self.presence.clone().into()
        }
    }

    /// The key under which the agent sits in its queues' available sets,
    /// if it is taking contacts at all: fewest active contacts first,
    /// then longest idle.
    fn available_key(&self) -> Option<(u8, DateTime<Utc>)> {
        (self.presence == Presence::Available && self.wrap_up_until.is_none())
            .then(|| (self.load.iter().sum(), self.idle_since))
    }

    /// Whether one more contact of `channel` fits (presence aside).
    fn has_room(&self, channel: Channel) -> bool {
        let capacity = &self.profile.capacity;
        if self.load[channel.index()] >= capacity.get(channel) {
            return false;
        }
        if !self.profile.voice_blocks_others {
            return true;
        }
        if channel == Channel::Voice {
            self.load.iter().all(|&n| n == 0)
        } else {
            self.load[Channel::Voice.index()] == 0
        }
    }

    /// Adds the time since the last accounting point to the buckets of
    /// the state the agent was in.
    fn account(&mut self, at: DateTime<Utc>) {
        let (busy, staffed) = self.occupancy_at(at);
        self.occupancy.busy_ms = busy;
        self.occupancy.staffed_ms = staffed;
        self.occupancy.since = self.occupancy.since.max(at);
    }

    /// (busy, staffed) milliseconds up to `at`.
    fn occupancy_at(&self, at: DateTime<Utc>) -> (i64, i64) {
        let elapsed = (at - self.occupancy.since).num_milliseconds().max(0);
        let o = &self.occupancy;
        match self.state {
            AgentState::Reserved | AgentState::Busy | AgentState::AfterCallWork { .. } => {
                (o.busy_ms + elapsed, o.staffed_ms + elapsed)
            }
            AgentState::Available => (o.busy_ms, o.staffed_ms + elapsed),
            AgentState::Offline | AgentState::NotReady { .. } => (o.busy_ms, o.staffed_ms),
        }
    }
}

impl ContactRecord {
    fn wait_key(&self) -> index::WaitKey {
        (
            std::cmp::Reverse(self.priority),
            self.contact.enqueued_at,
            self.seq,
            self.contact.id,
        )
    }
}

/// What an operation collects while it runs.
struct Ctx {
    at: DateTime<Utc>,
    out: Outcome,
    /// Queues that may have both a waiting contact and an agent to take it.
    dirty: Vec<QueueId>,
}

impl Ctx {
    fn new(at: DateTime<Utc>) -> Self {
        Ctx {
            at,
            out: Outcome::default(),
            dirty: Vec::new(),
        }
    }

    fn contact_event(&mut self, contact: ContactId, queue: QueueId, kind: ContactEventKind) {
        self.out.contact_events.push(ContactEvent {
            contact,
            queue,
            kind,
            at: self.at,
        });
        self.out.changed.contacts.insert(contact);
        self.out.changed.queues.insert(queue);
    }
}

pub(crate) fn add(at: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(by)
        .ok()
        .and_then(|delta| at.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl Engine {
    /// An engine with no queues and no agents.
    pub fn new() -> Self {
        Engine::default()
    }

    /// A copy of the whole state, for persisting.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot(self.state.clone())
    }

    /// An engine carrying on from `snapshot`. Fails with
    /// [`AcdError::InvalidConfig`] if the snapshot is inconsistent.
    pub fn restore(snapshot: Snapshot) -> Result<Engine, AcdError> {
        let index = Index::build(&snapshot.0)
            .map_err(|e| AcdError::InvalidConfig(format!("snapshot: {e}")))?;
        Ok(Engine {
            state: snapshot.0,
            index,
        })
    }

    /// Checks that the derived indexes match the state and that every
    /// record is consistent; `Err` describes the first mismatch. Costs a
    /// full rebuild: for tests and after loading foreign state.
    pub fn check_consistency(&self) -> Result<(), String> {
        let rebuilt = Index::build(&self.state)?;
        if rebuilt != self.index {
            return Err(index::describe_mismatch(&rebuilt, &self.index));
        }
        Ok(())
    }

    // ----- configuration -------------------------------------------------

    /// Creates or replaces a queue, recomputes which agents qualify for
    /// it, and matches. Changing the channel of a queue that has contacts
    /// is refused ([`AcdError::QueueBusy`]); a new base priority applies
    /// to its waiting contacts that have none of their own.
    pub fn upsert_queue(
        &mut self,
        config: QueueConfig,
        at: DateTime<Utc>,
    ) -> Result<Outcome, AcdError> {
        config.validate()?;
        let config = config.normalised();
        let id = config.id;
        if let Some(existing) = self.state.queues.get(&id) {
            let contacts = self.index.contacts_in(id);
            if existing.config.channel != config.channel && contacts > 0 {
                return Err(AcdError::QueueBusy {
                    queue: id,
                    contacts,
                });
            }
        }
        let mut ctx = Ctx::new(at);
        let old_priority = self.state.queues.get(&id).map(|q| q.config.priority);
        let new_priority = config.priority;
        match self.state.queues.get_mut(&id) {
            Some(record) => record.config = config,
            None => {
                self.state.queues.insert(
                    id,
                    QueueRecord {
                        config,
                        last_offered: None,
                        today: tally::DayTally::default(),
                    },
                );
            }
        }
        if old_priority.is_some_and(|p| p != new_priority) {
            self.reprioritise(id, new_priority, &mut ctx);
        }
        self.index.reindex_queue(&self.state, id);
        ctx.out.changed.queues.insert(id);
        ctx.dirty.push(id);
        self.rebalance(&mut ctx);
        Ok(ctx.out)
    }

    fn reprioritise(&mut self, queue: QueueId, priority: u8, ctx: &mut Ctx) {
        let Some(qi) = self.index.queues.get_mut(&queue) else {
            return;
        };
        let waiting: Vec<_> = qi.waiting.iter().map(|key| key.3).collect();
        for contact in waiting {
            let Some(record) = self.state.contacts.get_mut(&contact) else {
                continue;
            };
            if record.contact.priority.is_none() && record.priority != priority {
                qi.waiting.remove(&record.wait_key());
                record.priority = priority;
                qi.waiting.insert(record.wait_key());
                ctx.out.changed.contacts.insert(contact);
            }
        }
        // Offered and connected contacts take the new priority too, so a
        // requeue sorts them with their peers.
        for record in self.state.contacts.values_mut() {
            if record.contact.queue == queue
                && record.contact.priority.is_none()
                && record.priority != priority
            {
                record.priority = priority;
                ctx.out.changed.contacts.insert(record.contact.id);
            }
        }
    }

    /// Removes a queue; refused while any contact is in it (waiting,
    /// offered or connected).
    pub fn remove_queue(
        &mut self,
        queue: QueueId,
        _at: DateTime<Utc>,
    ) -> Result<Outcome, AcdError> {
        if !self.state.queues.contains_key(&queue) {
            return Err(AcdError::UnknownQueue(queue));
        }
        let contacts = self.index.contacts_in(queue);
        if contacts > 0 {
            return Err(AcdError::QueueBusy { queue, contacts });
        }
        self.state.queues.remove(&queue);
        self.index.remove_queue(queue);
        let mut out = Outcome::default();
        out.changed.queues.insert(queue);
        Ok(out)
    }

    /// Creates an agent (offline) or replaces its profile, recomputes the
    /// queues it qualifies for, and matches. Lowering a capacity below the
    /// agent's current load withdraws nothing; it just gets no more.
    pub fn upsert_agent_profile(
        &mut self,
        profile: AgentProfile,
        at: DateTime<Utc>,
    ) -> Result<Outcome, AcdError> {
        profile.validate()?;
        let id = profile.id;
        let mut ctx = Ctx::new(at);
        match self.state.agents.get_mut(&id) {
            Some(record) => record.profile = profile,
            None => {
                self.state.agents.insert(id, AgentRecord::new(profile, at));
            }
        }
        self.index.reindex_agent(&self.state, id);
        ctx.out.changed.agents.insert(id);
        self.refresh(id, &mut ctx);
        self.rebalance(&mut ctx);
        Ok(ctx.out)
    }

    /// Removes an agent; refused unless it is offline.
    pub fn remove_agent(
        &mut self,
        agent: AgentId,
        _at: DateTime<Utc>,
    ) -> Result<Outcome, AcdError> {
        let record = self.agent_record(agent)?;
        let current = record.derived_state();
        if current != AgentState::Offline {
            return Err(AcdError::AgentBusy { agent, current });
        }
        self.state.agents.remove(&agent);
        self.index.remove_agent(agent);
        let mut out = Outcome::default();
        out.changed.agents.insert(agent);
        Ok(out)
    }

    // ----- agent state ---------------------------------------------------

    /// Sets an agent's presence.
    ///
    /// - `Offline` is refused while the agent has offers or contacts.
    /// - Any presence set during after-call work ends it at once.
    /// - `NotReady` (or `Available`) while reserved or busy is kept as the
    ///   presence to return to: the agent gets no new offers while not
    ///   ready, its offers keep ringing and its contacts go on, and once
    ///   the last one ends (and its after-call work, if any) it is not
    ///   ready.
    pub fn set_presence(
        &mut self,
        agent: AgentId,
        presence: Presence,
        at: DateTime<Utc>,
    ) -> Result<Outcome, AcdError> {
        let record = self.agent_record(agent)?;
        if presence == Presence::Offline
            && (!record.offers.is_empty() || !record.contacts.is_empty())
        {
            return Err(AcdError::IllegalTransition {
                agent,
                current: record.derived_state(),
                requested: presence,
            });
        }
        let mut ctx = Ctx::new(at);
        let record = self.agent_mut(agent);
        if let Some(until) = record.wrap_up_until.take() {
            self.index.acw_deadlines.remove(&(until, agent));
        }
        let record = self.agent_mut(agent);
        if record.presence != presence {
            record.presence = presence;
            ctx.out.changed.agents.insert(agent);
        }
        self.touch(agent, TransitionReason::PresenceSet, &mut ctx);
        self.rebalance(&mut ctx);
        Ok(ctx.out)
    }

    /// Extends an agent's after-call work by `by` (at most 24 h).
    pub fn extend_wrap_up(
        &mut self,
        agent: AgentId,
        by: Duration,
        at: DateTime<Utc>,
    ) -> Result<Outcome, AcdError> {
        if by > MAX_DURATION {
            return Err(AcdError::InvalidConfig(format!(
                "wrap-up extension of {} ms is above 24 h",
                by.as_millis()
            )));
        }
        let record = self.agent_record(agent)?;
        let Some(until) = record.wrap_up_until else {
            return Err(AcdError::NotInWrapUp {
                agent,
                current: record.derived_state(),
            });
        };
        let mut ctx = Ctx::new(at);
        let new_until = add(until, crate::model::whole_millis(by));
        self.index.acw_deadlines.remove(&(until, agent));
        self.index.acw_deadlines.insert((new_until, agent));
        self.agent_mut(agent).wrap_up_until = Some(new_until);
        self.touch(agent, TransitionReason::WrapUpExtended, &mut ctx);
        Ok(ctx.out)
    }

    /// Ends an agent's after-call work now; it returns to its presence.
    pub fn end_wrap_up(&mut self, agent: AgentId, at: DateTime<Utc>) -> Result<Outcome, AcdError> {
        let record = self.agent_record(agent)?;
        if record.wrap_up_until.is_none() {
            return Err(AcdError::NotInWrapUp {
                agent,
                current: record.derived_state(),
            });
        }
        let mut ctx = Ctx::new(at);
        self.finish_wrap_up(agent, TransitionReason::WrapUpEnded, &mut ctx);
        self.rebalance(&mut ctx);
        Ok(ctx.out)
    }

    fn finish_wrap_up(&mut self, agent: AgentId, reason: TransitionReason, ctx: &mut Ctx) {
        if let Some(until) = self.agent_mut(agent).wrap_up_until.take() {
            self.index.acw_deadlines.remove(&(until, agent));
        }
        self.touch(agent, reason, ctx);
    }

    // ----- contacts --------------------------------------------------------

    /// Queues a contact and matches it at once if an agent can take it.
    /// Refused if the queue is unknown or full, the id is taken, the
    /// channel is not the queue's, or the priority is above 100.
    pub fn enqueue(&mut self, contact: Contact, at: DateTime<Utc>) -> Result<Outcome, AcdError> {
        let priority = self.check_new_contact(&contact)?;
        let queue = self.queue_record(contact.queue)?;
        if let Some(max) = queue.config.max_waiting
            && self.index.waiting_len(contact.queue) >= max as usize
        {
            return Err(AcdError::QueueFull {
                queue: contact.queue,
                max,
            });
        }
        let mut ctx = Ctx::new(at);
        let seq = self.state.next_seq;
        self.state.next_seq += 1;
        let (id, queue) = (contact.id, contact.queue);
        let record = ContactRecord {
            contact,
            priority,
            seq,
            status: ContactStatus::Queued,
        };
        self.index
            .queue_mut(queue)
            .waiting
            .insert(record.wait_key());
        self.state.contacts.insert(id, record);
        self.count(queue, &mut ctx, |tally, _| tally.entered += 1);
        ctx.contact_event(id, queue, ContactEventKind::Queued);
        ctx.dirty.push(queue);
        self.rebalance(&mut ctx);
        Ok(ctx.out)
    }

    /// Puts back a contact the engine no longer knows although its call
    /// goes on (the tenant's state was lost and reloaded empty): waiting
    /// in its queue with its original arrival time and priority, so it
    /// keeps its place, or connected to `connected`'s agent since its
    /// time, so that agent is busy with it and [`Engine::end`] works.
    /// Unlike [`Engine::enqueue`] nothing is counted and no contact event
    /// is emitted (the arrival and the answer were, before the loss), and
    /// a full queue does not refuse a caller who was already in it.
    pub fn reinstate(
        &mut self,
        contact: Contact,
        connected: Option<(AgentId, DateTime<Utc>)>,
        at: DateTime<Utc>,
    ) -> Result<Outcome, AcdError> {
        let priority = self.check_new_contact(&contact)?;
        if let Some((agent, _)) = connected {
            self.agent_record(agent)?;
        }
        let mut ctx = Ctx::new(at);
        let seq = self.state.next_seq;
        self.state.next_seq += 1;
        let (id, queue, channel) = (contact.id, contact.queue, contact.channel);
        let mut record = ContactRecord {
            contact,
            priority,
            seq,
            status: ContactStatus::Queued,
        };
        match connected {
            None => {
                self.index
                    .queue_mut(queue)
                    .waiting
                    .insert(record.wait_key());
                self.state.contacts.insert(id, record);
                ctx.dirty.push(queue);
            }
            Some((agent, since)) => {
                record.status = ContactStatus::Connected { agent, since };
                self.state.contacts.insert(id, record);
                self.index.queue_mut(queue).connected += 1;
                let agent_record = self.agent_mut(agent);
                agent_record.contacts.push(id);
                agent_record.load[channel.index()] += 1;
                self.touch(agent, TransitionReason::Reinstated, &mut ctx);
            }
        }
        self.rebalance(&mut ctx);
        Ok(ctx.out)
    }

    /// Checks a contact about to join `contact.queue`: the queue exists,
    /// the id is free, the channel is the queue's and the priority in
    /// range. Returns the contact's effective priority.
    fn check_new_contact(&self, contact: &Contact) -> Result<u8, AcdError> {
        let queue = self.queue_record(contact.queue)?;
        if self.state.contacts.contains_key(&contact.id)
            || self.state.outbound.contains_key(&contact.id)
        {
            return Err(AcdError::DuplicateContact(contact.id));
        }
        if contact.channel != queue.config.channel {
            return Err(AcdError::ChannelMismatch {
                contact: contact.id,
                queue: contact.queue,
                contact_channel: contact.channel,
                queue_channel: queue.config.channel,
            });
        }
        if let Some(priority) = contact.priority
            && priority > MAX_PRIORITY
        {
            return Err(AcdError::InvalidConfig(format!(
                "contact {}: priority {priority} is above {MAX_PRIORITY}",
                contact.id
            )));
        }
        Ok(contact.priority.unwrap_or(queue.config.priority))
    }

    /// The agent answers an offer: the contact is connected.
    pub fn accept(
        &mut self,
        contact: ContactId,
        agent: AgentId,
        at: DateTime<Utc>,
    ) -> Result<Outcome, AcdError> {
        let offer = self.offer_of(contact, agent)?;
        let mut ctx = Ctx::new(at);
        self.index
            .offer_deadlines
            .remove(&(offer.expires_at, contact));
        let qi = self.index.queue_mut(offer.queue);
        qi.offered -= 1;
        qi.connected += 1;
        let mut waited = Duration::ZERO;
        if let Some(record) = self.state.contacts.get_mut(&contact) {
            record.status = ContactStatus::Connected { agent, since: at };
            waited = (at - record.contact.enqueued_at)
                .to_std()
                .unwrap_or_default();
        }
        self.count(offer.queue, &mut ctx, |today, threshold| {
            tally::answered(today, threshold, waited);
        });
        let record = self.agent_mut(agent);
        record.offers.retain(|&c| c != contact);
        record.contacts.push(contact);
        ctx.contact_event(contact, offer.queue, ContactEventKind::Connected { agent });
        self.touch(agent, TransitionReason::Accepted, &mut ctx);
        self.rebalance(&mut ctx);
        Ok(ctx.out)
    }

    /// The agent turns an offer down. Treated like a missed offer: the
    /// contact goes back to its place in the queue, and the agent (if it
    /// was available) goes not ready with reason `"declined"`.
    pub fn decline(
        &mut self,
        contact: ContactId,
        agent: AgentId,
        at: DateTime<Utc>,
    ) -> Result<Outcome, AcdError> {
        let offer = self.offer_of(contact, agent)?;
        let mut ctx = Ctx::new(at);
        self.requeue(offer, TransitionReason::Declined, &mut ctx);
        self.rebalance(&mut ctx);
        Ok(ctx.out)
    }

    /// The customer left while queued or offered: the contact is dropped,
    /// an offer is withdrawn and its agent keeps its idle time. Refused
    /// for a connected contact (use [`Engine::end`]).
    pub fn abandon(&mut self, contact: ContactId, at: DateTime<Utc>) -> Result<Outcome, AcdError> {
        if self.state.outbound.contains_key(&contact) {
            return Err(AcdError::ContactConnected(contact));
        }
        let record = self.contact_record(contact)?;
        let queue = record.contact.queue;
        let waited = (at - record.contact.enqueued_at)
            .to_std()
            .unwrap_or_default();
        let mut ctx = Ctx::new(at);
        match record.status {
            ContactStatus::Connected { .. } => return Err(AcdError::ContactConnected(contact)),
            ContactStatus::Queued => {
                let key = record.wait_key();
                self.index.queue_mut(queue).waiting.remove(&key);
            }
            ContactStatus::Offered { agent, .. } => {
                let offer = self.offer_of(contact, agent)?;
                self.withdraw(&offer, &mut ctx);
                self.touch(agent, TransitionReason::OfferWithdrawn, &mut ctx);
            }
        }
        self.state.contacts.remove(&contact);
        self.count(queue, &mut ctx, |today, threshold| {
            tally::abandoned(today, threshold, waited);
        });
        ctx.contact_event(contact, queue, ContactEventKind::Abandoned);
        self.rebalance(&mut ctx);
        Ok(ctx.out)
    }

    /// A queued contact leaves its queue for the queue's overflow step
    /// (it waited too long): like an abandon for the queue, but counted
    /// apart. Refused while it rings at an agent or is connected.
    pub fn overflow(&mut self, contact: ContactId, at: DateTime<Utc>) -> Result<Outcome, AcdError> {
        if self.state.outbound.contains_key(&contact) {
            return Err(AcdError::NotQueued(contact));
        }
        let record = self.contact_record(contact)?;
        let queue = record.contact.queue;
        if !matches!(record.status, ContactStatus::Queued) {
            return Err(AcdError::NotQueued(contact));
        }
        let key = record.wait_key();
        let waited_ms = (at - record.contact.enqueued_at).num_milliseconds().max(0) as u64;
        let mut ctx = Ctx::new(at);
        self.index.queue_mut(queue).waiting.remove(&key);
        self.state.contacts.remove(&contact);
        self.count(queue, &mut ctx, |today, _| today.overflowed += 1);
        ctx.contact_event(contact, queue, ContactEventKind::Overflowed { waited_ms });
        self.rebalance(&mut ctx);
        Ok(ctx.out)
    }

    /// A connected contact finished, or an outbound one. If it was the
    /// agent's last contact (no other connected, none offered) and its
    /// queue has a wrap-up time (an outbound contact: the one given when
    /// it connected), the agent enters after-call work until
    /// `at + wrap_up`. An outbound contact is counted in no queue.
    pub fn end(&mut self, contact: ContactId, at: DateTime<Utc>) -> Result<Outcome, AcdError> {
        if let Some(outbound) = self.state.outbound.get(&contact) {
            let (agent, channel, wrap_up) = (outbound.agent, outbound.channel, outbound.wrap_up);
            let mut ctx = Ctx::new(at);
            self.state.outbound.remove(&contact);
            ctx.out.changed.contacts.insert(contact);
            self.release(agent, contact, channel, wrap_up, &mut ctx);
            self.rebalance(&mut ctx);
            return Ok(ctx.out);
        }
        let record = self.contact_record(contact)?;
        let ContactStatus::Connected { agent, since } = record.status else {
            return Err(AcdError::NotConnected(contact));
        };
        let (queue, channel) = (record.contact.queue, record.contact.channel);
        let wrap_up = self.queue_record(queue)?.config.wrap_up;
        let mut ctx = Ctx::new(at);
        self.state.contacts.remove(&contact);
        self.index.queue_mut(queue).connected -= 1;
        let talk = (at - since).to_std().unwrap_or_default();
        self.count(queue, &mut ctx, |today, _| {
            tally::handled(today, talk + wrap_up)
        });
        ctx.contact_event(contact, queue, ContactEventKind::Ended);
        self.release(agent, contact, channel, wrap_up, &mut ctx);
        self.rebalance(&mut ctx);
        Ok(ctx.out)
    }

    /// Takes an ended contact off its agent, who enters after-call work
    /// for `wrap_up` (unless zero) if it was its last contact (none
    /// connected, none offered).
    fn release(
        &mut self,
        agent: AgentId,
        contact: ContactId,
        channel: Channel,
        wrap_up: Duration,
        ctx: &mut Ctx,
    ) {
        let at = ctx.at;
        let record = self.agent_mut(agent);
        record.contacts.retain(|&c| c != contact);
        record.load[channel.index()] -= 1;
        if record.contacts.is_empty() && record.offers.is_empty() && !wrap_up.is_zero() {
            let until = add(at, wrap_up);
            record.wrap_up_until = Some(until);
            self.index.acw_deadlines.insert((until, agent));
        }
        self.touch(agent, TransitionReason::ContactEnded, ctx);
    }

    /// A contact outside every queue is connected to `agent`: one the
    /// agent placed (an outbound call dialed from its phone, or
    /// click-to-call), or one rung to the agent directly that it answered
    /// (see [`DirectOrigin`]). It belongs to no queue. The agent is busy
    /// with it as with an accepted contact (it counts against the agent's
    /// capacity on `channel`), any after-call work ends, and no queue
    /// counts it or hears of it. Presence does not matter: an agent who is
    /// not ready or offline may place or answer one. When it ends
    /// ([`Engine::end`]) the agent wraps up for `wrap_up` (zero for none,
    /// at most 24 h).
    ///
    /// `since` is when it connected: earlier than `at` when the edge
    /// re-asserts a call the engine lost. Re-asserting one the engine still
    /// knows, with the same agent, changes nothing (an empty outcome).
    ///
    /// Refused if the agent is unknown or the id is another contact's
    /// ([`AcdError::DuplicateContact`]). One the agent places is refused
    /// while the agent has an offer ringing or no room for one more
    /// contact on `channel` (a channel it has no capacity on has none):
    /// [`AcdError::AgentBusy`]. One rung to the agent is never refused for
    /// that, since the agent's phone already answered it: the offers
    /// ringing at the agent go back to their places in their queues (the
    /// agent keeps its presence), and the contact loads the agent even
    /// beyond its capacity, so nothing more is offered until it ends.
    #[allow(clippy::too_many_arguments)]
    pub fn connect_direct(
        &mut self,
        contact: ContactId,
        agent: AgentId,
        origin: DirectOrigin,
        channel: Channel,
        since: DateTime<Utc>,
        wrap_up: Duration,
        at: DateTime<Utc>,
    ) -> Result<Outcome, AcdError> {
        if wrap_up > MAX_DURATION {
            return Err(AcdError::InvalidConfig(format!(
                "contact {contact}: wrap-up of {} ms is above 24 h",
                wrap_up.as_millis()
            )));
        }
        let record = self.agent_record(agent)?;
        if let Some(existing) = self.state.outbound.get(&contact) {
            if existing.agent == agent {
                return Ok(Outcome::default());
            }
            return Err(AcdError::DuplicateContact(contact));
        }
        if self.state.contacts.contains_key(&contact) {
            return Err(AcdError::DuplicateContact(contact));
        }
        if origin == DirectOrigin::PlacedByAgent
            && (!record.offers.is_empty()
                || record.load[channel.index()] >= record.profile.capacity.get(channel))
        {
            return Err(AcdError::AgentBusy {
                agent,
                current: record.derived_state(),
            });
        }
        let ringing: Vec<ContactId> = record.offers.clone();
        let mut ctx = Ctx::new(at);
        for offered in ringing {
            if let Some(offer) = self.current_offer(offered) {
                self.requeue(offer, TransitionReason::OfferWithdrawn, &mut ctx);
            }
        }
        self.state.outbound.insert(
            contact,
            OutboundRecord {
                agent,
                origin,
                channel,
                since,
                wrap_up: crate::model::whole_millis(wrap_up),
            },
        );
        ctx.out.changed.contacts.insert(contact);
        let record = self.agent_mut(agent);
        if let Some(until) = record.wrap_up_until.take() {
            self.index.acw_deadlines.remove(&(until, agent));
        }
        let record = self.agent_mut(agent);
        record.contacts.push(contact);
        record.load[channel.index()] = record.load[channel.index()].saturating_add(1);
        self.touch(agent, origin.reason(), &mut ctx);
        // Out of after-call work, the agent may have room on another
        // channel whose contacts wait.
        self.rebalance(&mut ctx);
        Ok(ctx.out)
    }

    // ----- time ------------------------------------------------------------

    /// Expires every offer whose `expires_at` is at or before `at`
    /// (ring-no-answer): the contact goes back to its place in the queue
    /// and the agent (if it was available) goes not ready with reason
    /// `"missed"`. Then matches.
    pub fn expire_offers(&mut self, at: DateTime<Utc>) -> Result<Outcome, AcdError> {
        let mut ctx = Ctx::new(at);
        self.expire_offers_into(&mut ctx);
        self.rebalance(&mut ctx);
        Ok(ctx.out)
    }

    /// Ends after-call work due at or before `at`, expires due offers,
    /// then matches. Call it at [`Engine::next_deadline`].
    pub fn tick(&mut self, at: DateTime<Utc>) -> Result<Outcome, AcdError> {
        let mut ctx = Ctx::new(at);
        let due: Vec<AgentId> = self
            .index
            .acw_deadlines
            .iter()
            .take_while(|(until, _)| *until <= at)
            .map(|&(_, agent)| agent)
            .collect();
        for agent in due {
            self.finish_wrap_up(agent, TransitionReason::WrapUpExpired, &mut ctx);
        }
        self.expire_offers_into(&mut ctx);
        self.rebalance(&mut ctx);
        Ok(ctx.out)
    }

    fn expire_offers_into(&mut self, ctx: &mut Ctx) {
        let due: Vec<ContactId> = self
            .index
            .offer_deadlines
            .iter()
            .take_while(|(expires, _)| *expires <= ctx.at)
            .map(|&(_, contact)| contact)
            .collect();
        for contact in due {
            if let Some(offer) = self.current_offer(contact) {
                self.requeue(offer, TransitionReason::Missed, ctx);
            }
        }
    }

    /// The earliest offer expiry or end of after-call work: when the host
    /// should call [`Engine::tick`] next.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        let offer = self.index.offer_deadlines.first().map(|&(at, _)| at);
        let acw = self.index.acw_deadlines.first().map(|&(at, _)| at);
        match (offer, acw) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ----- helpers -----------------------------------------------------------

    fn agent_record(&self, agent: AgentId) -> Result<&AgentRecord, AcdError> {
        self.state
            .agents
            .get(&agent)
            .ok_or(AcdError::UnknownAgent(agent))
    }

    fn queue_record(&self, queue: QueueId) -> Result<&QueueRecord, AcdError> {
        self.state
            .queues
            .get(&queue)
            .ok_or(AcdError::UnknownQueue(queue))
    }

    fn contact_record(&self, contact: ContactId) -> Result<&ContactRecord, AcdError> {
        self.state
            .contacts
            .get(&contact)
            .ok_or(AcdError::UnknownContact(contact))
    }

    /// An agent known to exist (validated, or referenced by the state).
    fn agent_mut(&mut self, agent: AgentId) -> &mut AgentRecord {
        self.state
            .agents
            .get_mut(&agent)
            .expect("agent referenced by the engine state exists")
    }

    fn current_offer(&self, contact: ContactId) -> Option<Offer> {
        let record = self.state.contacts.get(&contact)?;
        match record.status {
            ContactStatus::Offered {
                agent,
                offered_at,
                expires_at,
            } => Some(Offer {
                contact,
                agent,
                queue: record.contact.queue,
                offered_at,
                expires_at,
            }),
            _ => None,
        }
    }

    /// The pending offer of `contact` to `agent`, or the error to return.
    fn offer_of(&self, contact: ContactId, agent: AgentId) -> Result<Offer, AcdError> {
        if !self.state.outbound.contains_key(&contact) {
            self.contact_record(contact)?;
        }
        self.agent_record(agent)?;
        self.current_offer(contact)
            .filter(|offer| offer.agent == agent)
            .ok_or(AcdError::NoSuchOffer { contact, agent })
    }

    /// Takes a pending offer off its agent (load, offer list, deadline,
    /// counts); the caller decides what becomes of the contact and calls
    /// [`Engine::touch`] for the agent.
    fn withdraw(&mut self, offer: &Offer, ctx: &mut Ctx) {
        self.index
            .offer_deadlines
            .remove(&(offer.expires_at, offer.contact));
        self.index.queue_mut(offer.queue).offered -= 1;
        let channel = self.index.queue_mut(offer.queue).channel;
        let record = self.agent_mut(offer.agent);
        record.offers.retain(|&c| c != offer.contact);
        record.load[channel.index()] -= 1;
        ctx.out.withdrawn.push(offer.clone());
        ctx.out.changed.agents.insert(offer.agent);
    }

    /// Puts an offered contact back in its place in the queue; the agent
    /// goes not ready if it was available and declined or missed it.
    fn requeue(&mut self, offer: Offer, reason: TransitionReason, ctx: &mut Ctx) {
        self.withdraw(&offer, ctx);
        if let Some(record) = self.state.contacts.get_mut(&offer.contact) {
            record.status = ContactStatus::Queued;
            let key = record.wait_key();
            self.index.queue_mut(offer.queue).waiting.insert(key);
        }
        let record = self.agent_mut(offer.agent);
        let not_ready = match reason {
            TransitionReason::Declined => Some("declined"),
            TransitionReason::Missed => Some("missed"),
            // Taken off an agent who answered a call put through to it.
            _ => None,
        };
        if let Some(why) = not_ready
            && record.presence == Presence::Available
        {
            record.presence = Presence::not_ready(why);
        }
        ctx.contact_event(
            offer.contact,
            offer.queue,
            ContactEventKind::Requeued { agent: offer.agent },
        );
        ctx.dirty.push(offer.queue);
        self.touch(offer.agent, reason, ctx);
    }

    /// After an agent record changed: reports a state change, if any, and
    /// updates the agent's place in its queues' available sets.
    fn touch(&mut self, agent: AgentId, reason: TransitionReason, ctx: &mut Ctx) {
        let at = ctx.at;
        let record = self.agent_mut(agent);
        let to = record.derived_state();
        if to != record.state {
            record.account(at);
            let from = std::mem::replace(&mut record.state, to.clone());
            if from == AgentState::Offline {
                record.occupancy = Occupancy {
                    busy_ms: 0,
                    staffed_ms: 0,
                    since: at,
                };
            }
            if to == AgentState::Available && from != AgentState::Reserved {
                record.idle_since = at;
            }
            ctx.out.agent_events.push(AgentEvent {
                agent,
                from,
                to,
                at,
                reason,
            });
        }
        // The record changed (offers, contacts, load) even when the
        // derived state did not.
        ctx.out.changed.agents.insert(agent);
        self.refresh(agent, ctx);
    }
}

impl Serialize for Engine {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.state.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Engine {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let snapshot = Snapshot::deserialize(deserializer)?;
        Engine::restore(snapshot).map_err(serde::de::Error::custom)
    }
}
