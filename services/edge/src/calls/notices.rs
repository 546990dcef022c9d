//! The ACD's notices of a tenant, pushed by routing: an offer rings the
//! agent's devices, a withdrawn one stops them, a desktop's accept rings
//! them again with auto-answer; after a gap, whatever is offered now.

use super::*;

impl B2bua {
    /// Starts watching `tenant`'s ACD notices, once per tenant.
    pub(super) fn watch(&self, tenant: TenantId) {
        if !self.lock().watched.insert(tenant) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let scope = Tenant::whole(tenant);
            loop {
                match this.inner.acd.notices(&scope).await {
                    Ok(mut notices) => {
                        // Whatever was offered before (or while) the watch
                        // started.
                        this.resync(tenant).await;
                        while let Some(event) = notices.next().await {
                            match event {
                                NoticeEvent::Notice(notice) => this.on_notice(&notice).await,
                                NoticeEvent::Gap => this.resync(tenant).await,
                            }
                        }
                    }
                    Err(error) => {
                        tracing::debug!(%tenant, %error, "ACD notices unavailable; retrying");
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    pub(super) async fn on_notice(&self, notice: &switchboard_routing_api::acd::Notice) {
        for withdrawn in &notice.withdrawn {
            self.withdraw(withdrawn.contact, withdrawn.agent);
        }
        for offer in &notice.offers {
            if self.lock().calls.contains_key(&offer.contact) {
                self.ring(offer.contact, offer.agent, RingMode::Offer).await;
            }
        }
        for event in &notice.contact_events {
            if let ContactEventKind::Connected { agent } = event.kind {
                self.accepted_elsewhere(event.contact, agent).await;
            }
        }
    }

    /// The offer of `call` to `agent` is gone (expired, or the agent
    /// declined on the desktop): its ringing stops.
    pub(super) fn withdraw(&self, call: ContactId, agent: AgentId) {
        let Some(endpoint) = self.endpoint() else {
            return;
        };
        let ringing = {
            let mut table = self.lock();
            let Some(entry) = table.calls.get_mut(&call) else {
                return;
            };
            if entry.phase
                != (Phase::Ringing {
                    agent,
                    mode: RingMode::Offer,
                })
            {
                return;
            }
            entry.phase = Phase::Waiting;
            stop_ringing(&mut entry.legs, Some(agent))
        };
        for leg in ringing {
            let _ = endpoint.cancel(leg);
        }
    }

    /// The agent accepted the call on the desktop (or the edge's own
    /// Accept): unless a phone already answered, the agent's devices ring
    /// again with auto-answer.
    pub(super) async fn accepted_elsewhere(&self, call: ContactId, agent: AgentId) {
        let Some(endpoint) = self.endpoint() else {
            return;
        };
        let cancel = {
            let mut table = self.lock();
            let Some(entry) = table.calls.get_mut(&call) else {
                return;
            };
            if entry
                .legs
                .iter()
                .any(|leg| leg.agent == agent && leg.state == LegState::Answered)
            {
                return;
            }
            if !matches!(entry.phase, Phase::Waiting | Phase::Ringing { .. }) {
                return;
            }
            entry.phase = Phase::Waiting;
            stop_ringing(&mut entry.legs, None)
        };
        for leg in cancel {
            let _ = endpoint.cancel(leg);
        }
        self.ring(call, agent, RingMode::Accepted).await;
    }

    /// After a gap in the notices: rings whatever routing offers now.
    pub(super) async fn resync(&self, tenant: TenantId) {
        let waiting: Vec<ContactId> = self
            .lock()
            .calls
            .iter()
            .filter(|(_, call)| call.tenant.id() == tenant && call.phase == Phase::Waiting)
            .map(|(id, _)| *id)
            .collect();
        for call in waiting {
            self.ring_current_offer(call).await;
        }
    }
}
