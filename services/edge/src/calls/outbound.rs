//! Agents' outbound calls, dialed from their phones: an INVITE whose From
//! names an account at a tenant's SIP domain, proved by digest credentials
//! ([`PhoneCallers`]), is the agent's call to the number its Request-URI
//! dials. Routing decides it by the tenant's outbound rules
//! ([`CallRoutingApi::outbound_call`]: the trunks in order and the caller
//! id, the agent busy with it from now on); the edge then places it
//! through the first trunk, as a B2BUA like an inbound call (the phone's
//! leg is the call's "caller" leg, each attempt through a trunk one of its
//! other legs).
//!
//! - A trunk that challenges (401/407) gets the INVITE again, once, with
//!   the trunk's outbound credentials (RFC 3261 §22.2; CSeq + 1, the same
//!   Call-ID and From tag).
//! - Failover: a trunk's server that answers 503 or times out (nothing
//!   at all within [`CallOptions::trunk_response_timeout`], or Timer B)
//!   is left for the trunk's next server over UDP (RFC 3263 §4.3); a
//!   trunk that answers another 5xx, has no server left, cannot be
//!   reached, or refuses the edge's credentials (a second challenge) is
//!   left for the next trunk; once none is left, the phone gets 503. Any
//!   other final answer (busy, not found, declined) is the called
//!   party's, and goes to the phone as it is.
//! - The tenant's plan limits count outbound calls as they count inbound
//!   ones (503 with Retry-After over them).
//!
//! Trunks are reached over UDP, or over a TCP or TLS connection the edge
//! opens and reuses ([`Connector`]; a TLS server is checked against the
//! trunk's host name), at the servers RFC 3263 finds for their host
//! ([`crate::trunks::reach`]: SRV records when the port is 0, else the
//! host's addresses).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use switchboard_routing_api::calls::{OutboundCall, OutboundDecision};

use super::legs::sip_user;
use super::*;
use crate::trunks::reach::{authority, reach_with_spares, transport_param, udp_peer};

/// An outbound call's way out: its trunks and where it stands among
/// them.
#[derive(Debug, Clone)]
pub(super) struct Dialing {
    targets: Vec<OutboundTarget>,
    /// The index of the next trunk to try.
    next: usize,
    /// The attempt in progress.
    attempt: Option<Attempt>,
    /// The current trunk's other servers over UDP, in the order to try
    /// them when one times out or answers 503 (RFC 3263 §4.3).
    spare_servers: Vec<SocketAddr>,
}

#[derive(Debug, Clone)]
struct Attempt {
    target: OutboundTarget,
    peer: Peer,
    request_uri: String,
    from: String,
    to: String,
    call_id: String,
    tag: String,
    /// The INVITE was sent again with credentials already.
    authenticated: bool,
}

/// Whether a trunk's final answer `code` leaves the call for the next
/// trunk: the trunk failed (or refused the edge's credentials), not the
/// called party.
fn fails_over(code: u16) -> bool {
    matches!(code, 401 | 407 | 408) || (500..600).contains(&code)
}

impl B2bua {
    /// Places `user`'s call, whose phone sent `request`.
    pub(super) async fn place_outbound(
        &self,
        request: IncomingRequest,
        tenant: TenantId,
        user: UserId,
        max_forwards: u32,
        session: Option<SessionTimer>,
    ) {
        let Some(trunks) = self.inner.trunks.clone() else {
            let _ = request.respond(OutgoingResponse::new(503).header("Retry-After", "5"));
            return;
        };
        let number = dialed_number(&request.message());
        let Some(number) = number.filter(|number| number.starts_with('+')) else {
            let _ = request
                .respond(OutgoingResponse::new(484).reason("Dial an E.164 number (+ and digits)"));
            return;
        };
        let media = match self.anchor_media(&request.message()) {
            Ok(media) => media,
            Err(error) => {
                tracing::debug!(%tenant, %number, %error, "the phone's media cannot be anchored");
                let _ = request
                    .respond(OutgoingResponse::new(error.status()).reason(error.to_string()));
                return;
            }
        };
        let agent = AgentId::from_uuid(user.as_uuid());
        let slot = Uuid::new_v4();
        if let Some(limits) = &self.inner.limits
            && let Some(limit) = limits.reserve(tenant, slot).await
        {
            self.refuse_over_limit(&request, tenant, limit, &number, "", "");
            return;
        }
        let release = || {
            if let Some(limits) = self.inner.limits.clone() {
                tokio::spawn(async move { limits.release(tenant, slot).await });
            }
        };
        let whole = Tenant::whole(tenant);
        let decision = self
            .inner
            .call_routing
            .outbound_call(
                &whole,
                OutboundCall {
                    agent,
                    number: number.clone(),
                    concerning_number: None,
                },
            )
            .await;
        let (call, names, caller_id) = match decision {
            Ok(OutboundDecision::Place {
                call,
                trunks,
                caller_id,
                ..
            }) => (call, trunks, caller_id),
            Ok(OutboundDecision::Reject { sip_status, reason }) => {
                release();
                tracing::debug!(%tenant, %agent, %number, sip_status, %reason, "outbound call refused by routing");
                metrics::counter!(CALLS_METRIC, "outcome" => "rejected").increment(1);
                let _ = request.respond(OutgoingResponse::new(sip_status).reason(reason));
                return;
            }
            Err(error) => {
                release();
                tracing::warn!(%tenant, %agent, %error, "routing could not take an outbound call");
                metrics::counter!(CALLS_METRIC, "outcome" => "failed").increment(1);
                let _ = request.respond(OutgoingResponse::new(503).header("Retry-After", "5"));
                return;
            }
        };
        let targets = match trunks.targets(tenant, &names).await {
            Ok(targets) => targets,
            Err(error) => {
                tracing::warn!(%tenant, %error, "the trunks of an outbound call could not be read");
                Vec::new()
            }
        };
        let started_at = Utc::now();
        let caller_id = if caller_id.is_empty() {
            targets
                .iter()
                .find_map(|target| target.caller_id.clone())
                .unwrap_or_else(|| "anonymous".to_owned())
        } else {
            caller_id
        };
        let facts = Facts {
            tenant,
            number: number.clone(),
            caller: caller_id.clone(),
            trunk: targets
                .first()
                .map(|target| target.trunk.clone())
                .unwrap_or_default(),
            started_at,
            answered: None,
            placed_by: Some(agent),
            media: (None, None),
        };
        let dialing = Dialing {
            targets,
            next: 0,
            attempt: None,
            spare_servers: Vec::new(),
        };
        let cancelled = self.take_call(
            &request,
            call,
            facts.clone(),
            max_forwards,
            Phase::Ringing {
                agent,
                mode: RingMode::Outbound,
            },
            self.inner.limits.as_ref().map(|_| slot),
            session,
            Some(dialing),
            media,
        );
        if cancelled {
            release();
            self.record_end(call, &facts, Outcome::Unanswered, EndedBy::Agent, 487);
            self.report_ended_in(whole, call);
            return;
        }
        self.dial_next_trunk(call, 503).await;
    }

    /// Tries the call's next trunk; with none left, the phone gets `code`
    /// (503 after trunks that failed).
    async fn dial_next_trunk(&self, call: ContactId, code: u16) {
        loop {
            let next = {
                let mut table = self.lock();
                let Some(entry) = table.calls.get_mut(&call) else {
                    return;
                };
                let Some(dialing) = entry.outbound.as_mut() else {
                    return;
                };
                let target = dialing.targets.get(dialing.next).cloned();
                dialing.next += 1;
                if let Some(target) = &target {
                    entry.facts.trunk = target.trunk.clone();
                }
                target
            };
            let Some(target) = next else {
                tracing::debug!(%call, "no trunk could place the outbound call");
                metrics::counter!(CALLS_METRIC, "outcome" => "failed").increment(1);
                self.end_before_answer(call, code, Outcome::Failed, EndedBy::Edge);
                return;
            };
            match self.start_attempt(call, target).await {
                Ok(()) => return,
                Err(why) => {
                    tracing::warn!(%call, why, "a trunk could not be tried; the next one is")
                }
            }
        }
    }

    /// Sends the call's INVITE to `target`'s first server; over UDP its
    /// other servers are kept for [`B2bua::attempt_failed`].
    async fn start_attempt(&self, call: ContactId, target: OutboundTarget) -> Result<(), String> {
        let Some(endpoint) = self.endpoint().cloned() else {
            return Err("the edge has no endpoint".into());
        };
        let (peer, spares) =
            reach_with_spares(&endpoint, self.inner.connector.get(), &target).await?;
        {
            let mut table = self.lock();
            let dialing = table
                .calls
                .get_mut(&call)
                .and_then(|entry| entry.outbound.as_mut())
                .ok_or("the call is over")?;
            dialing.spare_servers = spares;
        }
        self.attempt_at(call, target, peer).await
    }

    /// The current trunk's server timed out or answered 503: its next
    /// server over UDP gets the call, if it has one that can be tried
    /// (RFC 3263 §4.3). False when none is left.
    async fn next_server(&self, call: ContactId) -> bool {
        let Some(endpoint) = self.endpoint().cloned() else {
            return false;
        };
        loop {
            let next = {
                let mut table = self.lock();
                let Some(dialing) = table
                    .calls
                    .get_mut(&call)
                    .and_then(|entry| entry.outbound.as_mut())
                else {
                    return false;
                };
                let Some(target) = dialing
                    .attempt
                    .as_ref()
                    .map(|attempt| attempt.target.clone())
                else {
                    return false;
                };
                if dialing.spare_servers.is_empty() {
                    return false;
                }
                (target, dialing.spare_servers.remove(0))
            };
            let (target, address) = next;
            let attempt = match udp_peer(&endpoint, address) {
                Ok(peer) => self.attempt_at(call, target, peer).await,
                Err(why) => Err(why),
            };
            match attempt {
                Ok(()) => {
                    tracing::debug!(%call, %address, "the trunk's next server has the call");
                    return true;
                }
                Err(why) => {
                    tracing::warn!(%call, %address, why, "a trunk's server could not be tried")
                }
            }
        }
    }

    /// Sends the call's INVITE to `target` at `peer`, a new transaction
    /// and dialog (a server failed over to gets a request of its own).
    async fn attempt_at(
        &self,
        call: ContactId,
        target: OutboundTarget,
        peer: Peer,
    ) -> Result<(), String> {
        let Some(local) = self.local().cloned() else {
            return Err("the edge has no endpoint".into());
        };
        let local = local_for(&local, &peer);
        // The number dialed and the caller id presented, as the call's
        // record holds them.
        let (number, caller_id) = {
            let table = self.lock();
            let entry = table.calls.get(&call).ok_or("the call is over")?;
            (entry.facts.number.clone(), entry.facts.caller.clone())
        };
        let host = authority(&target);
        let transport = transport_param(target.transport);
        let attempt = Attempt {
            request_uri: format!("sip:{}@{host}{transport}", sip_user(&number)),
            from: format!("<sip:{}@{}>", sip_user(&caller_id), local.sent_by),
            to: format!("<sip:{}@{host}>", sip_user(&number)),
            call_id: requests::call_id(),
            tag: requests::tag(),
            target,
            peer,
            authenticated: false,
        };
        self.send_attempt(call, attempt, 1, None).await
    }

    /// Sends `attempt`'s INVITE (CSeq `seq`, with an authorization header
    /// after a challenge) and follows its answers on a new leg.
    ///
    /// Boxed: its answers lead back to it (a challenge, the next trunk),
    /// and a recursive future needs a named type to be `Send`.
    fn send_attempt(
        &self,
        call: ContactId,
        attempt: Attempt,
        seq: u32,
        authorization: Option<(&'static str, String)>,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            let (Some(endpoint), Some(local)) = (self.endpoint().cloned(), self.local().cloned())
            else {
                return Err("the edge has no endpoint".into());
            };
            let local = local_for(&local, &attempt.peer);
            let (agent, sdp, max_forwards) = {
                let table = self.lock();
                let entry = table.calls.get(&call).ok_or("the call is over")?;
                let Phase::Ringing { agent, .. } = entry.phase else {
                    return Err("the call is no longer dialing".into());
                };
                let sdp = B2bua::offer_for_callee(entry);
                (agent, sdp, entry.caller.max_forwards)
            };
            let identity = attempt.from.clone();
            let mut extra: Vec<(&str, &str)> = vec![("P-Asserted-Identity", identity.as_str())];
            if let Some((name, value)) = &authorization {
                extra.push((name, value.as_str()));
            }
            let invite = Bytes::from(requests::invite_numbered(
                &local,
                &attempt.request_uri,
                &attempt.from,
                &attempt.tag,
                &attempt.to,
                &attempt.call_id,
                seq,
                max_forwards,
                &extra,
                &sdp,
            ));
            let outgoing = endpoint
                .send_request(invite.clone(), attempt.peer.clone())
                .map_err(|_| "the INVITE could not be sent".to_owned())?;
            let leg_id = {
                let mut table = self.lock();
                let Some(entry) = table.calls.get_mut(&call) else {
                    let _ = endpoint.cancel(outgoing.id);
                    return Ok(());
                };
                let id = entry.next_leg;
                entry.next_leg += 1;
                entry.legs.push(AgentLeg {
                    id,
                    agent,
                    tx: outgoing.id,
                    peer: attempt.peer.clone(),
                    invite,
                    dialog: None,
                    state: LegState::Ringing,
                });
                let key = dialog_key(&attempt.call_id, &attempt.tag);
                if let Some(dialing) = entry.outbound.as_mut() {
                    dialing.attempt = Some(attempt);
                }
                table.by_dialog.insert(key, (call, Side::Agent(id)));
                id
            };
            self.follow_leg_within(
                call,
                leg_id,
                outgoing,
                Some(self.inner.options.trunk_response_timeout),
            );
            Ok(())
        })
    }

    /// A trunk's 401/407 to the call's first INVITE on it: sent again with
    /// the trunk's credentials, once. False when the response is not such
    /// a challenge (or cannot be answered), so it is handled as any other.
    pub(super) async fn answered_challenge(
        &self,
        call: ContactId,
        leg_id: u64,
        bytes: &Bytes,
    ) -> bool {
        // Most answers are no challenge: known without parsing them.
        if !(bytes.starts_with(b"SIP/2.0 401") || bytes.starts_with(b"SIP/2.0 407")) {
            return false;
        }
        // What the response says, read before anything waits.
        let (code, answer, challenge, seq) = {
            let Some(response) = parse_bytes(bytes) else {
                return false;
            };
            let code = status_of(&response);
            let (ask, answer) = match code {
                401 => ("WWW-Authenticate", "Authorization"),
                407 => ("Proxy-Authenticate", "Proxy-Authorization"),
                _ => return false,
            };
            let challenge = crate::sip::digest::pick_challenge(
                response.headers_named(ask).map(|header| &*header.value),
            );
            let seq = response.cseq().map_or(1, |(seq, _)| seq) + 1;
            (code, answer, challenge, seq)
        };
        let attempt = {
            let mut table = self.lock();
            let Some(entry) = table.calls.get_mut(&call) else {
                return false;
            };
            let Some(attempt) = entry
                .outbound
                .as_ref()
                .and_then(|dialing| dialing.attempt.clone())
            else {
                return false;
            };
            if attempt.authenticated {
                return false;
            }
            let Some(leg) = entry
                .legs
                .iter_mut()
                .find(|leg| leg.id == leg_id && leg.state == LegState::Ringing)
            else {
                return false;
            };
            leg.state = LegState::Done;
            attempt
        };
        let (Some(username), Some(password)) = (
            attempt.target.username.clone(),
            attempt.target.password.clone(),
        ) else {
            tracing::warn!(%call, trunk = %attempt.target.trunk, "the trunk challenged, and has no outbound credentials");
            self.attempt_failed(call, code).await;
            return true;
        };
        let Some(challenge) = challenge else {
            tracing::warn!(%call, trunk = %attempt.target.trunk, "the trunk's challenge is not a Digest one the edge knows");
            self.attempt_failed(call, code).await;
            return true;
        };
        let credentials = challenge.answer(
            &username,
            &password,
            "INVITE",
            &attempt.request_uri,
            &requests::tag(),
        );
        let retry = Attempt {
            authenticated: true,
            ..attempt
        };
        if let Err(why) = self
            .send_attempt(call, retry, seq, Some((answer, credentials)))
            .await
        {
            tracing::warn!(%call, why, "the INVITE with credentials could not be sent");
            self.attempt_failed(call, 503).await;
        }
        true
    }

    /// The call's attempt through a trunk ended with `code` and no leg of
    /// it rings any more: the next trunk, or the end.
    pub(super) async fn attempt_failed(&self, call: ContactId, code: u16) {
        let still_dialing = self.lock().calls.get(&call).is_some_and(|entry| {
            entry.outbound.is_some()
                && matches!(
                    entry.phase,
                    Phase::Ringing {
                        mode: RingMode::Outbound,
                        ..
                    }
                )
                && entry.legs.iter().all(|leg| leg.state != LegState::Ringing)
        });
        if !still_dialing {
            return;
        }
        if matches!(code, 408 | 503) && self.next_server(call).await {
            return;
        }
        if fails_over(code) {
            self.dial_next_trunk(call, 503).await;
            return;
        }
        // The called party's answer: busy, declined, not there.
        let outcome = match code {
            480 | 486 | 487 | 600 | 603 => Outcome::Unanswered,
            _ => Outcome::Failed,
        };
        metrics::counter!(CALLS_METRIC, "outcome" => outcome.as_str()).increment(1);
        self.end_before_answer(call, code, outcome, EndedBy::Callee);
    }
}
