//! The agent's legs: ringing every device an agent registered, the
//! first answer winning (the others cancelled), the answer reported to
//! routing and passed to the caller, and legs that fail.

use super::*;

impl B2bua {
    /// Rings the agent the ACD offers the call to now, if any.
    pub(super) async fn ring_current_offer(&self, call: ContactId) {
        let Some(tenant) = self.tenant_of(call) else {
            return;
        };
        if let Ok(Answer::Contact { view }) = self
            .inner
            .acd
            .query(&tenant, Query::Contact { contact: call })
            .await
            && let ContactState::Offered { agent, .. } = view.state
        {
            self.ring(call, agent, RingMode::Offer).await;
        }
    }

    /// Rings every device `agent` registered; with no device, the ACD
    /// hears a decline (or a direct ring fails at once).
    pub(super) async fn ring(&self, call: ContactId, agent: AgentId, mode: RingMode) {
        let (Some(endpoint), Some(local)) = (self.endpoint().cloned(), self.local().cloned())
        else {
            return;
        };
        let (tenant, caller_number, max_forwards, sdp) = {
            let mut table = self.lock();
            let Some(entry) = table.calls.get_mut(&call) else {
                return;
            };
            match entry.phase {
                Phase::Waiting => {}
                // Already ringing this agent (a notice and a read raced).
                Phase::Ringing { agent: ringing, .. } if ringing == agent => {
                    if mode == RingMode::Accepted {
                        entry.phase = Phase::Ringing { agent, mode };
                    }
                    return;
                }
                _ => return,
            }
            entry.phase = Phase::Ringing { agent, mode };
            let sdp = B2bua::offer_for_callee(entry);
            (
                entry.tenant.clone(),
                entry.caller.number.clone(),
                entry.caller.max_forwards,
                sdp,
            )
        };
        let devices = self
            .inner
            .bindings
            .of(
                tenant.id(),
                UserId::from_uuid(agent.as_uuid()),
                SystemTime::now(),
            )
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%call, %error, "the agent's devices could not be read");
                Vec::new()
            });
        let mut started = 0;
        for device in devices {
            let Some(peer) = device_peer(&endpoint, &device.source) else {
                tracing::debug!(source = %device.source, "a device's connection is not held by this edge; not rung");
                continue;
            };
            let local = local_for(&local, &peer);
            let call_id = requests::call_id();
            let tag = requests::tag();
            let from = format!(
                "\"{caller_number}\" <sip:{}@{}>",
                sip_user(&caller_number),
                local.sent_by
            );
            let to = format!("<{}>", device.contact);
            let call_info = "<sip:edge>;answer-after=0".to_owned();
            let extra: Vec<(&str, &str)> = if mode == RingMode::Accepted {
                vec![("Call-Info", call_info.as_str())]
            } else {
                Vec::new()
            };
            let invite = Bytes::from(requests::invite(
                &local,
                &device.contact,
                &from,
                &tag,
                &to,
                &call_id,
                max_forwards,
                &extra,
                &sdp,
            ));
            let Ok(outgoing) = endpoint.send_request(invite.clone(), peer.clone()) else {
                continue;
            };
            let leg_id = {
                let mut table = self.lock();
                let Some(entry) = table.calls.get_mut(&call) else {
                    let _ = endpoint.cancel(outgoing.id);
                    return;
                };
                let id = entry.next_leg;
                entry.next_leg += 1;
                entry.legs.push(AgentLeg {
                    id,
                    agent,
                    tx: outgoing.id,
                    peer,
                    invite,
                    dialog: None,
                    state: LegState::Ringing,
                });
                table
                    .by_dialog
                    .insert(dialog_key(&call_id, &tag), (call, Side::Agent(id)));
                id
            };
            started += 1;
            self.follow_leg(call, leg_id, outgoing);
        }
        if started == 0 {
            tracing::debug!(%call, %agent, "the agent has no device to ring");
            self.after_legs_failed(call, agent, mode, 480).await;
        }
    }

    /// Follows the answers to leg `leg_id`'s INVITE until its
    /// transaction ends: a trunk's challenge is answered (outbound calls),
    /// anything else handled as the leg's response; no final answer in
    /// time fails the leg (408).
    pub(super) fn follow_leg(&self, call: ContactId, leg_id: u64, outgoing: OutgoingRequest) {
        self.follow_leg_within(call, leg_id, outgoing, None);
    }

    /// As [`B2bua::follow_leg`]; a leg that hears nothing at all within
    /// `first_answer_within` fails as timed out (408) at once, and what
    /// it may still answer later is handled as a late answer.
    pub(super) fn follow_leg_within(
        &self,
        call: ContactId,
        leg_id: u64,
        mut outgoing: OutgoingRequest,
        first_answer_within: Option<Duration>,
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            if let Some(within) = first_answer_within {
                match tokio::time::timeout(within, outgoing.next()).await {
                    Ok(Some(event)) => this.on_leg_event(call, leg_id, event).await,
                    Ok(None) => return,
                    Err(_) => {
                        tracing::debug!(%call, ?within, "no answer from the server at all");
                        this.on_leg_failed(call, leg_id, 408).await;
                    }
                }
            }
            while let Some(event) = outgoing.next().await {
                this.on_leg_event(call, leg_id, event).await;
            }
        });
    }

    async fn on_leg_event(&self, call: ContactId, leg_id: u64, event: ClientEvent) {
        match event {
            ClientEvent::Response(bytes) => {
                if !self.answered_challenge(call, leg_id, &bytes).await {
                    self.on_leg_response(call, leg_id, bytes).await;
                }
            }
            ClientEvent::TimedOut => self.on_leg_failed(call, leg_id, 408).await,
        }
    }

    pub(super) async fn on_leg_response(&self, call: ContactId, leg: u64, bytes: Bytes) {
        let Some(response) = parse_bytes(&bytes) else {
            return;
        };
        let code = status_of(&response);
        match code {
            101..=199 => self.on_leg_provisional(call, code, &response),
            200..=299 => self.on_leg_answered(call, leg, &response).await,
            300.. => self.on_leg_failed(call, leg, code).await,
            _ => {}
        }
    }

    /// The agent's phone rings: the caller hears it (once), with the
    /// phone's early media when it sends a session description.
    pub(super) fn on_leg_provisional(&self, call: ContactId, code: u16, response: &Message<'_>) {
        let Some(endpoint) = self.endpoint() else {
            return;
        };
        let early_media = code == 183 && !response.body.is_empty();
        // The phone's early media, anchored for the caller; one the edge
        // cannot read is not passed on (the caller hears ringing).
        let early_sdp = if early_media {
            match self.media_for_other_side(call, MediaSide::Callee, response.body) {
                Ok(sdp) => Some(sdp),
                Err(error) => {
                    tracing::debug!(%call, %error, "a phone's early media is not passed on");
                    None
                }
            }
        } else {
            None
        };
        let early_media = early_sdp.is_some();
        let tx = {
            let mut table = self.lock();
            let Some(call) = table.calls.get_mut(&call) else {
                return;
            };
            if call.alerting && !early_media {
                return;
            }
            call.alerting = true;
            call.caller.invite_tx
        };
        let mut answer = OutgoingResponse::new(if early_media { 183 } else { 180 });
        if let Some(sdp) = early_sdp {
            answer = answer.body("application/sdp", sdp);
        }
        let _ = endpoint.respond(tx, answer);
    }

    pub(super) async fn on_leg_answered(
        &self,
        call: ContactId,
        leg_id: u64,
        response: &Message<'_>,
    ) {
        let (Some(endpoint), Some(local)) = (self.endpoint().cloned(), self.local().cloned())
        else {
            return;
        };
        enum Then {
            /// This leg won: cancel the others, report, answer the caller.
            Won {
                agent: AgentId,
                mode: RingMode,
                others: Vec<TransactionId>,
            },
            /// A late answer (another device or the caller was first).
            Late,
            /// A retransmitted 2xx of the winner: ACKed again only.
            Again,
        }
        let (then, peer, leg_dialog, tenant) = {
            let mut table = self.lock();
            let Some(entry) = table.calls.get_mut(&call) else {
                return;
            };
            let phase = entry.phase;
            let tenant = entry.tenant.clone();
            let Some(leg) = entry.legs.iter_mut().find(|leg| leg.id == leg_id) else {
                return;
            };
            if leg.dialog.is_none() {
                let Some(invite) = parse_bytes(&leg.invite) else {
                    return;
                };
                let Ok(mut dialog) = Dialog::as_uac(&invite, response) else {
                    return;
                };
                dialog.confirm();
                let local_party = invite
                    .header("From")
                    .and_then(|from| party(&from.value))
                    .unwrap_or_default();
                let remote_party = response
                    .header("To")
                    .and_then(|to| party(&to.value))
                    .unwrap_or_default();
                leg.dialog = Some(LegDialog {
                    dialog,
                    local_party,
                    remote_party,
                });
            }
            let then = match (leg.state, phase) {
                (LegState::Answered, _) => Then::Again,
                (LegState::Ringing, Phase::Ringing { agent, mode }) if agent == leg.agent => {
                    leg.state = LegState::Answered;
                    let others = entry
                        .legs
                        .iter_mut()
                        .filter(|other| other.id != leg_id && other.state == LegState::Ringing)
                        .map(|other| {
                            other.state = LegState::Done;
                            other.tx
                        })
                        .collect();
                    Then::Won {
                        agent,
                        mode,
                        others,
                    }
                }
                _ => {
                    leg.state = LegState::Done;
                    Then::Late
                }
            };
            let leg = entry
                .legs
                .iter()
                .find(|leg| leg.id == leg_id)
                .expect("found above");
            (then, leg.peer.clone(), leg.dialog.clone(), tenant)
        };
        let Some(mut leg_dialog) = leg_dialog else {
            return;
        };
        let local = local_for(&local, &peer);
        let (seq, _) = response.cseq().unwrap_or((1, "INVITE"));
        peer.send(Bytes::from(requests::ack(&local, &leg_dialog, seq)));
        match then {
            Then::Again => {}
            Then::Late => {
                peer.send(Bytes::from(requests::in_dialog(
                    &local,
                    &mut leg_dialog,
                    "BYE",
                    &[],
                    b"",
                )));
            }
            Then::Won {
                agent,
                mode,
                others,
            } => {
                for other in others {
                    let _ = endpoint.cancel(other);
                }
                if mode == RingMode::Offer
                    && let Err(error) = self
                        .inner
                        .acd
                        .execute(
                            &tenant,
                            Operation::Accept {
                                agent,
                                contact: call,
                            },
                        )
                        .await
                {
                    // The offer expired or was withdrawn meanwhile: the
                    // agent's phone hangs up; the caller waits on.
                    tracing::debug!(%call, %agent, %error, "the answer came too late for the offer");
                    peer.send(Bytes::from(requests::in_dialog(
                        &local,
                        &mut leg_dialog,
                        "BYE",
                        &[],
                        b"",
                    )));
                    let mut table = self.lock();
                    if let Some(entry) = table.calls.get_mut(&call) {
                        entry.phase = Phase::Waiting;
                        if let Some(leg) = entry.legs.iter_mut().find(|leg| leg.id == leg_id) {
                            leg.state = LegState::Done;
                        }
                    }
                    return;
                }
                let sdp = self
                    .media_for_other_side(call, MediaSide::Callee, response.body)
                    .unwrap_or_else(|error| {
                        // The phone answered: the call goes on, with its
                        // media unanchored (the caller gets its answer).
                        tracing::warn!(%call, %error, "the phone's answer is passed on as it is");
                        Bytes::copy_from_slice(response.body)
                    });
                self.answer_caller(call, leg_id, sdp);
                if mode == RingMode::Direct {
                    self.connect_direct(call, agent, &tenant).await;
                }
            }
        }
    }

    /// A call rung to `agent` directly was answered: routing's ACD holds
    /// it as the agent's contact, in no queue, so the agent is busy with it
    /// (and offered nothing more) until it ends.
    async fn connect_direct(&self, call: ContactId, agent: AgentId, tenant: &Tenant) {
        let Some(since) = self
            .lock()
            .calls
            .get(&call)
            .and_then(|entry| entry.facts.answered)
            .map(|(_, at)| at)
        else {
            return;
        };
        let operation = Operation::ConnectDirect {
            contact: call,
            agent,
            origin: DirectOrigin::RungToAgent,
            channel: Channel::Voice,
            since,
            wrap_up_ms: 0,
        };
        if let Err(error) = self.inner.acd.execute(tenant, operation).await {
            // The call goes on; the agent's state does not show it (an
            // agent without an agent profile, routing unavailable).
            tracing::warn!(%call, %agent, %error, "routing did not take the direct call as the agent's contact");
            return;
        }
        let ended = {
            let mut table = self.lock();
            match table.calls.get_mut(&call) {
                Some(entry) => {
                    entry.connected_directly = true;
                    false
                }
                None => true,
            }
        };
        // Hung up meanwhile: its end did not reach routing yet.
        if ended && let Err(error) = self.inner.call_routing.ended(tenant, call).await {
            tracing::warn!(%call, %error, "routing did not hear of a direct call's end");
        }
    }

    /// The caller gets the agent's 200 (with the agent's session
    /// description), retransmitted until its ACK (§13.3.1.4).
    pub(super) fn answer_caller(&self, call: ContactId, leg: u64, sdp: Bytes) {
        let (Some(endpoint), Some(local)) = (self.endpoint().cloned(), self.local().cloned())
        else {
            return;
        };
        let (tx, acked, local) = {
            let mut table = self.lock();
            let Some(entry) = table.calls.get_mut(&call) else {
                return;
            };
            entry.phase = Phase::Connected { leg };
            let agent = entry.legs.iter().find(|l| l.id == leg).map(|l| l.agent);
            if let Some(agent) = agent {
                let now = Utc::now();
                entry.facts.answered = Some((agent, now));
                self.inner.log.record(
                    entry.facts.tenant,
                    now,
                    Payload::CallAnswered(events::CallAnswered {
                        call_id: call.to_string(),
                        agent_id: agent.to_string(),
                        wait_ms: u64::try_from((now - entry.facts.started_at).num_milliseconds())
                            .unwrap_or(0),
                    }),
                );
            }
            let caller = &mut entry.caller;
            let Some(invite) = parse_bytes(&caller.invite) else {
                return;
            };
            let Ok(dialog) = Dialog::as_uas(&invite, &caller.local_tag, false) else {
                return;
            };
            caller.dialog = Some(LegDialog {
                dialog,
                local_party: invite
                    .header("To")
                    .and_then(|to| party(&to.value))
                    .unwrap_or_default(),
                remote_party: invite
                    .header("From")
                    .and_then(|from| party(&from.value))
                    .unwrap_or_default(),
            });
            let key = invite
                .header("Call-ID")
                .map(|id| dialog_key(&id.value, &caller.local_tag));
            let tx = caller.invite_tx;
            let acked = caller.acked.clone();
            let local = local_for(&local, &caller.peer);
            if let Some(key) = key {
                table.by_dialog.insert(key, (call, Side::Caller));
            }
            (tx, acked, local)
        };
        metrics::counter!(CALLS_METRIC, "outcome" => "answered").increment(1);
        self.session_refreshed(call);
        let mut answer = OutgoingResponse::new(200)
            .header("Contact", local.contact())
            .header("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO");
        for (name, value) in self.session_headers(call) {
            answer = answer.header(name, value);
        }
        if !sdp.is_empty() {
            answer = answer.body("application/sdp", sdp);
        }
        let _ = endpoint.respond(tx, answer.clone());
        self.watch_session(call);
        let this = self.clone();
        let t1 = self.inner.options.t1;
        tokio::spawn(async move {
            let mut interval = t1;
            let mut waited = Duration::ZERO;
            while waited < t1 * 64 {
                tokio::time::sleep(interval).await;
                waited += interval;
                if acked.load(Ordering::Relaxed) {
                    return;
                }
                if endpoint.respond(tx, answer.clone()).is_err() {
                    break;
                }
                interval = (interval * 2).min(Duration::from_secs(4));
            }
            if !acked.load(Ordering::Relaxed) && this.lock().calls.contains_key(&call) {
                tracing::debug!(%call, "the caller never ACKed the answer; hanging up");
                this.hang_up(call, None).await;
            }
        });
    }

    pub(super) async fn on_leg_failed(&self, call: ContactId, leg_id: u64, code: u16) {
        let ringing = {
            let mut table = self.lock();
            let Some(entry) = table.calls.get_mut(&call) else {
                return;
            };
            let Some(leg) = entry.legs.iter_mut().find(|leg| leg.id == leg_id) else {
                return;
            };
            if leg.state != LegState::Ringing {
                return;
            }
            leg.state = LegState::Done;
            let agent = leg.agent;
            let all_failed = entry
                .legs
                .iter()
                .filter(|leg| leg.agent == agent)
                .all(|leg| leg.state == LegState::Done);
            match entry.phase {
                Phase::Ringing {
                    agent: ringing,
                    mode,
                } if ringing == agent && all_failed => Some((agent, mode)),
                _ => None,
            }
        };
        if let Some((agent, mode)) = ringing {
            self.after_legs_failed(call, agent, mode, code).await;
        }
    }

    /// No device of `agent` answered: the ACD hears a decline (it decides
    /// what comes next), a direct ring ends the call.
    pub(super) async fn after_legs_failed(
        &self,
        call: ContactId,
        agent: AgentId,
        mode: RingMode,
        code: u16,
    ) {
        if mode == RingMode::Outbound {
            self.attempt_failed(call, code).await;
            return;
        }
        let tenant = {
            let mut table = self.lock();
            let Some(entry) = table.calls.get_mut(&call) else {
                return;
            };
            if entry.phase != (Phase::Ringing { agent, mode }) {
                return;
            }
            entry.phase = Phase::Waiting;
            entry.tenant.clone()
        };
        match mode {
            RingMode::Direct => {
                let code = if code == 486 || code == 600 { 486 } else { 480 };
                self.end_before_answer(call, code, Outcome::Unanswered, EndedBy::Edge);
            }
            RingMode::Outbound => {}
            RingMode::Offer | RingMode::Accepted => {
                if let Err(error) = self
                    .inner
                    .acd
                    .execute(
                        &tenant,
                        Operation::Decline {
                            agent,
                            contact: call,
                        },
                    )
                    .await
                {
                    tracing::debug!(%call, %agent, %error, "the decline found no offer");
                }
            }
        }
    }
}

/// Marks the legs still ringing (of `agent`, or all) as done; their
/// INVITE transactions, to cancel.
pub(super) fn stop_ringing(legs: &mut [AgentLeg], agent: Option<AgentId>) -> Vec<TransactionId> {
    legs.iter_mut()
        .filter(|leg| {
            leg.state == LegState::Ringing && agent.is_none_or(|agent| leg.agent == agent)
        })
        .map(|leg| {
            leg.state = LegState::Done;
            leg.tx
        })
        .collect()
}

/// Where a device registered from (`udp:1.2.3.4:5060`) is rung: over UDP
/// from the edge's socket. A device registered over a connection is
/// reached on that connection only, which this edge does not index yet.
/// Where a device that registered from `source` is reached: its address
/// over UDP, or the connection it registered over (TCP, TLS, WebSocket),
/// while this edge holds it open.
pub(super) fn device_peer(endpoint: &Endpoint, source: &str) -> Option<Peer> {
    match source.strip_prefix("udp:") {
        Some(address) => endpoint.udp_peer(address.parse().ok()?),
        None => endpoint.connection_peer(source),
    }
}

/// A caller's number as a SIP user part (RFC 3261 §25.1 `user`).
pub(super) fn sip_user(number: &str) -> String {
    let user: String = number
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '_' | '.' | '*' | '#'))
        .collect();
    if user.is_empty() {
        "anonymous".to_owned()
    } else {
        user
    }
}
