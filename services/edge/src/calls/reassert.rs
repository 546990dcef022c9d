//! Calls routing forgot, put back. Routing's live state lives in the cache
//! and can be lost (a failover to a lagging replica, a restart without
//! persistence) while the edge still holds the calls. Every
//! [`CallOptions::audit_every`](super::CallOptions::audit_every) the edge
//! looks up each of its calls that went through a queue and is waiting,
//! ringing at an agent or connected; one routing no longer knows is
//! re-asserted with `Operation::Reinstate`: waiting in its queue with its
//! original arrival time and priority (so it keeps its place), or connected
//! to its agent since the answer (so the agent stays busy with it and its
//! end is counted). A call whose offer was lost with the state stops
//! ringing and waits again; routing offers it anew. An agent's outbound
//! call is connected to its agent again (`Operation::ConnectDirect`,
//! since it was dialed), and so is a call rung to an agent directly that
//! it answered (since the answer), so the agent stays busy with it.
//!
//! The same audit renews the places of the edge's calls among their
//! tenants' calls in progress ([`crate::limits`]).

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use chrono::{DateTime, Utc};
use switchboard_acd::{AgentId, Channel, Contact, ContactId, DirectOrigin, QueueId};
use switchboard_routing_api::acd::{Connection, Operation, Query, RefusalKind, RoutingError};
use switchboard_tenancy::{Tenant, TenantId};
use uuid::Uuid;

use super::{B2bua, Inner, Phase, RingMode, stop_ringing};

/// Calls the edge put back at routing after routing lost them, by what
/// they were (`waiting`, `connected`) and how it went (`reinstated`,
/// `failed`).
pub const REASSERTED_METRIC: &str = "switchboard_edge_calls_reasserted_total";

/// Where a queued call waits, as routing placed it: what the edge
/// re-asserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Placement {
    pub queue: QueueId,
    pub priority: Option<u8>,
    pub enqueued_at: DateTime<Utc>,
}

impl B2bua {
    /// Starts the periodic audit; it ends when the B2BUA is dropped.
    pub(super) fn start_audit(&self) {
        let every = self.inner.options.audit_every;
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                B2bua { inner }.audit().await;
            }
        });
    }

    /// Looks up every audited call once; re-asserts those routing does
    /// not know.
    async fn audit(&self) {
        self.end_silent_calls().await;
        if let Some(limits) = &self.inner.limits {
            // The places of the calls this edge holds stay counted.
            let mut slots: HashMap<TenantId, Vec<Uuid>> = HashMap::new();
            for call in self.lock().calls.values() {
                if let Some(slot) = call.slot {
                    slots.entry(call.tenant.id()).or_default().push(slot);
                }
            }
            for (tenant, slots) in slots {
                limits.keep(tenant, &slots).await;
            }
        }
        let audited: Vec<(ContactId, Tenant)> = self
            .lock()
            .calls
            .iter()
            .filter(|(_, call)| {
                (call.outbound.is_some() && call.phase != Phase::Ended)
                    || (call.connected_directly && matches!(call.phase, Phase::Connected { .. }))
                    || call.placement.is_some()
                        && matches!(
                            call.phase,
                            Phase::Waiting
                                | Phase::Ringing {
                                    mode: RingMode::Offer | RingMode::Accepted,
                                    ..
                                }
                                | Phase::Connected { .. }
                        )
            })
            .map(|(id, call)| (*id, call.tenant.clone()))
            .collect();
        for (call, tenant) in audited {
            match self
                .inner
                .acd
                .query(&tenant, Query::Contact { contact: call })
                .await
            {
                Err(RoutingError::Refused(refusal)) if refusal.kind == RefusalKind::NotFound => {
                    self.reassert(call, &tenant).await;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(%call, %error, "routing could not say whether it knows a call");
                }
            }
        }
    }

    /// Puts `call` back at routing as the edge holds it now.
    async fn reassert(&self, call: ContactId, tenant: &Tenant) {
        let (operation, kind) = if let Some((agent, origin, since)) = self.direct_of(call) {
            // An agent's outbound call, or a direct ring it answered: the
            // agent is busy with it again since it was dialed or answered.
            let operation = Operation::ConnectDirect {
                contact: call,
                agent,
                origin,
                channel: Channel::Voice,
                since,
                wrap_up_ms: 0,
            };
            let kind = match origin {
                DirectOrigin::PlacedByAgent => "outbound",
                DirectOrigin::RungToAgent => "direct",
            };
            (operation, kind)
        } else {
            let Some((contact, connected, cancel)) = self.to_reassert(call) else {
                return;
            };
            if let Some(endpoint) = self.endpoint() {
                for leg in cancel {
                    let _ = endpoint.cancel(leg);
                }
            }
            let kind = if connected.is_some() {
                "connected"
            } else {
                "waiting"
            };
            (Operation::Reinstate { contact, connected }, kind)
        };
        let result = self.inner.acd.execute(tenant, operation).await;
        let outcome = match &result {
            Ok(_) => "reinstated",
            // Put back meanwhile (another audit, or routing found it).
            Err(RoutingError::Refused(refusal)) if refusal.kind == RefusalKind::Conflict => {
                "reinstated"
            }
            Err(_) => "failed",
        };
        metrics::counter!(REASSERTED_METRIC, "call" => kind, "outcome" => outcome).increment(1);
        match result {
            Ok(_) => tracing::info!(%call, kind, "routing had lost the call; re-asserted it"),
            Err(error) => {
                tracing::warn!(%call, kind, %error, "routing lost the call and refused it back; the next audit tries again");
                return;
            }
        }
        // The call may have ended while it was put back: its end reaches
        // routing again, so the contact does not outlive it.
        if !self.lock().calls.contains_key(&call) {
            let routing = &self.inner.call_routing;
            let reported = match kind {
                "waiting" => routing.abandoned(tenant, call).await,
                _ => routing.ended(tenant, call).await,
            };
            if let Err(error) = reported {
                tracing::warn!(%call, %error, "the end of a re-asserted call did not reach routing");
            }
        }
    }

    /// The agent of `call`, how it reached the agent and since when, if
    /// it is a call outside every queue still going on: an outbound call
    /// the agent placed (since it was dialed) or a direct ring the agent
    /// answered (since the answer).
    fn direct_of(&self, call: ContactId) -> Option<(AgentId, DirectOrigin, DateTime<Utc>)> {
        let table = self.lock();
        let entry = table.calls.get(&call)?;
        if entry.phase == Phase::Ended {
            return None;
        }
        if let Some(agent) = entry.facts.placed_by {
            return Some((agent, DirectOrigin::PlacedByAgent, entry.facts.started_at));
        }
        if entry.connected_directly {
            let (agent, since) = entry.facts.answered?;
            return Some((agent, DirectOrigin::RungToAgent, since));
        }
        None
    }

    /// What to re-assert of `call` (its contact, its agent if connected)
    /// and the legs to stop ringing; `None` once it is gone or between
    /// states worth asserting.
    #[allow(clippy::type_complexity)]
    fn to_reassert(
        &self,
        call: ContactId,
    ) -> Option<(Contact, Option<Connection>, Vec<crate::sip::TransactionId>)> {
        let mut table = self.lock();
        let entry = table.calls.get_mut(&call)?;
        let placement = entry.placement?;
        let mut contact =
            Contact::new(call, placement.queue, Channel::Voice, placement.enqueued_at);
        contact.priority = placement.priority;
        let (connected, cancel) = match entry.phase {
            Phase::Connected { .. } => {
                let (agent, since) = entry.facts.answered?;
                (Some(Connection { agent, since }), Vec::new())
            }
            // Accepted on the desktop: connected at routing, ringing here
            // with auto-answer.
            Phase::Ringing {
                agent,
                mode: RingMode::Accepted,
            } => (Some(accepted_now(agent)), Vec::new()),
            // The offer went with the state: the phones stop ringing and
            // the call waits for routing's next offer.
            Phase::Ringing {
                agent,
                mode: RingMode::Offer,
            } => {
                entry.phase = Phase::Waiting;
                (None, stop_ringing(&mut entry.legs, Some(agent)))
            }
            Phase::Waiting => (None, Vec::new()),
            Phase::Ringing {
                mode: RingMode::Direct | RingMode::Outbound,
                ..
            }
            | Phase::Ended => return None,
        };
        Some((contact, connected, cancel))
    }
}

fn accepted_now(agent: AgentId) -> Connection {
    Connection {
        agent,
        since: Utc::now(),
    }
}
