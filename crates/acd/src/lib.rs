//! Automatic call distribution (ACD): agent states, queues of waiting
//! contacts, and matching contacts to agents — the core of the routing
//! service.
//!
//! One [`Engine`] holds one tenant's queues, agents and contacts. It is
//! pure and synchronous: no clock, no I/O, no randomness. Every operation
//! takes the current time `at`, validates its input first (a refused
//! operation changes nothing) and returns an [`Outcome`]: the new offers
//! to push to agents, offers withdrawn, agent and contact events in order,
//! and the ids whose records changed, so a host can persist only those.
//! The whole state serialises ([`Engine::snapshot`], or serde on
//! [`Engine`] itself) so that another process can take the tenant over.
//! The host calls [`Engine::tick`] at [`Engine::next_deadline`] to expire
//! offers and end after-call work.
//!
//! # Agent states
//!
//! An agent asks for a [`Presence`]: offline, available or not ready
//! (with a reason). Its [`AgentState`] is derived: any pending offer →
//! reserved; else any connected contact → busy; else after-call work
//! while wrapping up; else its presence. Every change of the derived
//! state is an [`AgentEvent`] (`from`, `to`, `reason`), and per agent the
//! events chain. The rules:
//!
//! - Offline is refused while the agent has offers or contacts.
//! - Not ready (or available) while reserved or busy is remembered: no
//!   new offers while not ready; the agent is not ready once its last
//!   contact and that contact's after-call work are over.
//! - Any presence set during after-call work ends it.
//! - A missed offer (ring-no-answer) or a declined one sends the contact
//!   back to its place in the queue and the agent, if it was available,
//!   to not ready with reason `"missed"` or `"declined"`.
//! - A contact abandoned while offered frees the agent without resetting
//!   its idle time.
//! - When a connected contact ends and it was the agent's last (none
//!   connected, none offered), the agent enters after-call work for the
//!   queue's wrap-up time, if any (for an outbound contact, the time
//!   given when it connected).
//!
//! # Contacts outside every queue
//!
//! An agent may place a contact itself (an outbound call dialed from its
//! phone, or click-to-call), or answer one put through to it without a
//! queue (a flow's `ring_agent` step): [`Engine::connect_direct`] connects
//! it to the agent at once, in no queue. It loads the agent like an accepted
//! contact, so the agent is busy and is offered no more of that channel
//! than its capacity allows. One the agent places is refused while the
//! agent has an offer ringing or no room on the channel, whatever the
//! agent's presence (an agent who is not ready or offline may still place
//! one); one the agent answered is never refused: the offers ringing at
//! the agent go back to their queues. No queue
//! counts it and no contact event announces it: only the agent's state
//! changes. [`Engine::end`] ends it like any connected contact.
//!
//! # Matching
//!
//! An agent qualifies for a queue when it has every required skill at the
//! minimum proficiency, a capacity on the queue's channel, and its client
//! scope allows the queue's client. It can take a contact when it is
//! available (presence available and not wrapping up) and has room on the
//! channel: offers and connected contacts count against the capacity, and
//! with `voice_blocks_others` a call needs the agent free of all contacts
//! and a call blocks every other channel.
//!
//! When a contact arrives, its queue's [`Strategy`] picks among the
//! agents that can take it: longest idle (fewest active contacts, then
//! earliest idle), least occupied, or round robin. When an agent frees
//! up it gets the best waiting contact among its queues: highest
//! priority (the contact's own, else its queue's), then earliest
//! `enqueued_at`, then first queued. Matching goes on until no queue has
//! both a waiting contact and an agent able to take it.
//!
//! # Why our own code
//!
//! ACD matching is the core of the product and its rules (states,
//! strategies, outsourcer client scopes, multi-chat capacity) are ours;
//! no crate implements them. The agent states follow the usual
//! contact-center model (as in the ECMA-269 CSTA agent states: logged
//! out, ready, not ready with a reason, working after call), and
//! occupancy is the standard handle time over staffed time, with
//! after-call work counted as handle time.
//!
//! # Performance
//!
//! Each queue keeps its qualified agents (recomputed only when a queue or
//! profile changes), its available agents in longest-idle and id order,
//! and its waiting contacts in service order, all in B-trees; so queuing
//! a contact or freeing an agent costs O(log n) per queue the agent
//! qualifies for, never a scan of all agents. The exception is
//! least-occupied, whose order moves with time: it scans the queue's
//! available agents.
//!
//! # Example
//!
//! ```
//! use chrono::{DateTime, Utc};
//! use switchboard_acd::{
//!     AgentId, AgentProfile, AgentState, Channel, Contact, ContactId, Engine, Presence,
//!     QueueConfig, QueueId,
//! };
//!
//! let at: DateTime<Utc> = "2025-01-06T09:00:00Z".parse()?;
//! let mut engine = Engine::new();
//! let sales = QueueId::from_u128(1);
//! let ann = AgentId::from_u128(10);
//! engine.upsert_queue(QueueConfig::new(sales, Channel::Voice), at)?;
//! engine.upsert_agent_profile(AgentProfile::new(ann), at)?;
//! engine.set_presence(ann, Presence::Available, at)?;
//!
//! let call = ContactId::from_u128(100);
//! let outcome = engine.enqueue(Contact::new(call, sales, Channel::Voice, at), at)?;
//! assert_eq!(outcome.offers[0].agent, ann);
//! assert_eq!(engine.agent_state(ann)?, AgentState::Reserved);
//!
//! engine.accept(call, ann, at)?;
//! assert_eq!(engine.agent_state(ann)?, AgentState::Busy);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod engine;
mod error;
mod ids;
mod model;
mod outcome;
mod state;

pub use engine::{
    AgentCounts, AgentView, ContactState, ContactView, DayTally, DirectOrigin, Engine, META_FIELD,
    QueueStats, RecordChange, Snapshot,
};
pub use error::{AcdError, ErrorKind};
pub use ids::{AgentId, ContactId, QueueId, ReasonCode, SkillId};
pub use model::{
    AgentProfile, Capacity, Channel, Contact, MAX_DURATION, MAX_PRIORITY, PROFICIENCY, Presence,
    QueueConfig, Strategy,
};
pub use outcome::{Changed, ContactEvent, ContactEventKind, Offer, Outcome};
pub use state::{AgentEvent, AgentState, AgentStateKind, TransitionReason};
