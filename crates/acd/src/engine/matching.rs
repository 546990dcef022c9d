//! Matching waiting contacts to agents.
//!
//! The engine keeps one invariant between operations: no queue has both
//! a waiting contact and an agent able to take it (work conservation).
//! An operation that may break it (a contact queued or requeued, an agent
//! freed, a configuration change) marks the queues concerned "dirty", and
//! [`Engine::rebalance`] restores it: while some dirty queue has both, it
//! takes the dirty queue whose head contact comes first (highest
//! priority, then longest waiting, then first queued), lets that queue's
//! strategy pick one of its available agents, and offers.
//!
//! When one agent frees up this is the same as the agent choosing the
//! best head among the queues it can serve, because by the invariant it
//! is the only agent available in any queue that has contacts waiting;
//! when one contact arrives it is the queue's strategy choosing among its
//! available agents. Each offer costs O(log n) per queue the agent
//! qualifies for (to refile it) plus a scan of the dirty queues' heads.

use std::cmp::Ordering;
use std::ops::Bound;

use super::{ContactStatus, Ctx, Engine, add};
use crate::ids::{AgentId, ContactId, QueueId};
use crate::model::Strategy;
use crate::outcome::{ContactEventKind, Offer};
use crate::state::TransitionReason;

impl Engine {
    /// Offers waiting contacts of the dirty queues to available agents
    /// until no dirty queue has both.
    pub(super) fn rebalance(&mut self, ctx: &mut Ctx) {
        let mut dirty: Vec<QueueId> = Vec::new();
        loop {
            if !ctx.dirty.is_empty() {
                dirty.append(&mut ctx.dirty);
                dirty.sort_unstable();
                dirty.dedup();
            }
            dirty.retain(|queue| {
                self.index
                    .queues
                    .get(queue)
                    .is_some_and(|qi| !qi.waiting.is_empty() && !qi.by_idle.is_empty())
            });
            let best = dirty
                .iter()
                .filter_map(|queue| {
                    let head = self.index.queues.get(queue)?.waiting.first()?;
                    Some((*head, *queue))
                })
                .min();
            let Some((head, queue)) = best else {
                break;
            };
            let Some(agent) = self.pick_agent(queue, ctx) else {
                break;
            };
            self.offer(head.3, agent, queue, ctx);
        }
    }

    /// The agent `queue`'s strategy picks among its available agents.
    fn pick_agent(&self, queue: QueueId, ctx: &Ctx) -> Option<AgentId> {
        let qi = self.index.queues.get(&queue)?;
        let record = self.state.queues.get(&queue)?;
        match record.config.strategy {
            Strategy::LongestIdle => qi.by_idle.first().map(|&(_, _, agent)| agent),
            Strategy::RoundRobin => {
                let after = record
                    .last_offered
                    .map_or(Bound::Unbounded, Bound::Excluded);
                qi.by_id
                    .range((after, Bound::Unbounded))
                    .next()
                    .or_else(|| qi.by_id.first())
                    .copied()
            }
            Strategy::LeastOccupied => {
                // Occupancy moves with time, so it cannot be kept sorted:
                // scan the available agents in longest-idle order and keep
                // the first with the lowest busy/staffed ratio.
                let mut best: Option<(AgentId, i64, i64)> = None;
                for &(_, _, agent) in &qi.by_idle {
                    let Some(record) = self.state.agents.get(&agent) else {
                        continue;
                    };
                    let (busy, staffed) = record.occupancy_at(ctx.at);
                    let staffed = staffed.max(1);
                    let lower = match best {
                        None => true,
                        Some((_, best_busy, best_staffed)) => {
                            compare_ratio(busy, staffed, best_busy, best_staffed) == Ordering::Less
                        }
                    };
                    if lower {
                        best = Some((agent, busy, staffed));
                    }
                }
                best.map(|(agent, _, _)| agent)
            }
        }
    }

    /// Offers a waiting contact of `queue` to `agent`.
    fn offer(&mut self, contact: ContactId, agent: AgentId, queue: QueueId, ctx: &mut Ctx) {
        let at = ctx.at;
        let Some(queue_record) = self.state.queues.get_mut(&queue) else {
            return;
        };
        queue_record.last_offered = Some(agent);
        let expires_at = add(at, queue_record.config.ring_timeout);
        let Some(record) = self.state.contacts.get_mut(&contact) else {
            return;
        };
        let channel = record.contact.channel;
        let qi = self.index.queue_mut(queue);
        qi.waiting.remove(&record.wait_key());
        qi.offered += 1;
        record.status = ContactStatus::Offered {
            agent,
            offered_at: at,
            expires_at,
        };
        self.index.offer_deadlines.insert((expires_at, contact));
        let agent_record = self.agent_mut(agent);
        agent_record.offers.push(contact);
        agent_record.load[channel.index()] += 1;
        ctx.out.offers.push(Offer {
            contact,
            agent,
            queue,
            offered_at: at,
            expires_at,
        });
        ctx.contact_event(contact, queue, ContactEventKind::Offered { agent });
        ctx.out.changed.agents.insert(agent);
        self.touch(agent, TransitionReason::Offered, ctx);
    }
}

/// Compares a/b with c/d for positive b and d, exactly.
fn compare_ratio(a: i64, b: i64, c: i64, d: i64) -> Ordering {
    (i128::from(a) * i128::from(d)).cmp(&(i128::from(c) * i128::from(b)))
}
