//! Requests inside a call's dialogs: BYE from either side, OPTIONS, and
//! re-INVITE, UPDATE and INFO passed across to the other leg with their
//! bodies (a session refresh of the caller's is the edge's own).

use super::*;

impl B2bua {
    pub(super) async fn in_dialog(&self, request: IncomingRequest, local_tag: &str) {
        let message = request.message();
        let key = message
            .header("Call-ID")
            .map(|id| dialog_key(&id.value, local_tag));
        let found = key.and_then(|key| self.lock().by_dialog.get(&key).copied());
        let Some((call, side)) = found else {
            let _ = request.respond(OutgoingResponse::new(481));
            return;
        };
        match message.method() {
            Some(Method::Bye) => {
                let _ = request.respond(OutgoingResponse::new(200));
                let connected = matches!(self.phase_of(call), Some(Phase::Connected { .. }));
                match side {
                    // A phone leaving its early dialog (§15): that leg
                    // failed; the caller still waits.
                    Side::Agent(leg) if !connected => self.on_leg_failed(call, leg, 487).await,
                    _ => self.hang_up(call, Some(side)).await,
                }
            }
            Some(Method::Options) => {
                let _ = request.respond(OutgoingResponse::new(200));
            }
            Some(Method::Invite | Method::Update | Method::Info) => {
                self.relay(request, call, side).await;
            }
            _ => {
                let _ = request.respond(OutgoingResponse::new(405));
            }
        }
    }

    /// Passes a re-INVITE, UPDATE or INFO to the other leg and its final
    /// answer back, with the body either way.
    pub(super) async fn relay(&self, request: IncomingRequest, call: ContactId, side: Side) {
        let (Some(endpoint), Some(local)) = (self.endpoint().cloned(), self.local().cloned())
        else {
            return;
        };
        let message = request.message();
        let method = message
            .method()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default();
        let content_type = message
            .header("Content-Type")
            .map(|value| value.value.to_string());
        let refused = |code| {
            let _ = request.respond(OutgoingResponse::new(code));
        };
        let refresh = session_timer::is_refresh(side, &method);
        if refresh {
            self.session_refreshed(call);
            // A bare refresh (an UPDATE without a body) is the edge's to
            // answer; the agent's phone need not hear of it.
            if method == "UPDATE" && message.body.is_empty() {
                let mut answer = OutgoingResponse::new(200);
                for (name, value) in self.session_headers(call) {
                    answer = answer.header(name, value);
                }
                let _ = request.respond(answer);
                return;
            }
        }
        // A session description goes across anchored at the relay (an
        // INFO's body, DTMF and the like, as it is).
        let (from_side, to_side) = match side {
            Side::Caller => (MediaSide::Caller, MediaSide::Callee),
            Side::Agent(_) => (MediaSide::Callee, MediaSide::Caller),
        };
        let carries_sdp = |kind: Option<&str>| {
            method != "INFO"
                && kind.is_none_or(|kind| kind.trim().eq_ignore_ascii_case("application/sdp"))
        };
        let body = if carries_sdp(content_type.as_deref()) {
            match self.media_for_other_side(call, from_side, message.body) {
                Ok(body) => body,
                Err(error) => {
                    let _ = request
                        .respond(OutgoingResponse::new(error.status()).reason(error.to_string()));
                    return;
                }
            }
        } else {
            Bytes::copy_from_slice(message.body)
        };
        let (peer, bytes) = {
            let mut table = self.lock();
            let Some(entry) = table.calls.get_mut(&call) else {
                drop(table);
                return refused(481);
            };
            let Phase::Connected { leg } = entry.phase else {
                drop(table);
                return refused(491);
            };
            let Some(agent) = entry.legs.iter_mut().find(|l| l.id == leg) else {
                drop(table);
                return refused(481);
            };
            let (from, to, peer) = match side {
                Side::Caller => (
                    entry.caller.dialog.as_mut(),
                    agent.dialog.as_mut(),
                    agent.peer.clone(),
                ),
                Side::Agent(_) => (
                    agent.dialog.as_mut(),
                    entry.caller.dialog.as_mut(),
                    entry.caller.peer.clone(),
                ),
            };
            let (Some(from), Some(to)) = (from, to) else {
                drop(table);
                return refused(481);
            };
            if from.dialog.on_request(&message).is_err() {
                drop(table);
                return refused(500);
            }
            let extra: Vec<(&str, &str)> = content_type
                .as_deref()
                .map(|kind| vec![("Content-Type", kind)])
                .unwrap_or_default();
            (
                peer.clone(),
                requests::in_dialog(&local_for(&local, &peer), to, &method, &extra, &body),
            )
        };
        let invite = method == "INVITE";
        let Ok(mut outgoing) = endpoint.send_request(Bytes::from(bytes), peer.clone()) else {
            return refused(500);
        };
        while let Some(event) = outgoing.next().await {
            match event {
                ClientEvent::Response(bytes) => {
                    let Some(response) = parse_bytes(&bytes) else {
                        continue;
                    };
                    let code = status_of(&response);
                    if code < 200 {
                        continue;
                    }
                    if invite && (200..300).contains(&code) {
                        let dialog = self.other_dialog(call, side);
                        if let (Some(dialog), Some((seq, _))) = (dialog, response.cseq()) {
                            peer.send(Bytes::from(requests::ack(
                                &local_for(&local, &peer),
                                &dialog,
                                seq,
                            )));
                        }
                    }
                    let mut answer = OutgoingResponse::new(code);
                    if invite && (200..300).contains(&code) {
                        answer =
                            answer.header("Contact", local_for(&local, &request.peer).contact());
                    }
                    if refresh && (200..300).contains(&code) {
                        for (name, value) in self.session_headers(call) {
                            answer = answer.header(name, value);
                        }
                    }
                    if !response.body.is_empty() {
                        let kind = response
                            .header("Content-Type")
                            .map_or("application/sdp".to_owned(), |kind| kind.value.to_string());
                        let body = if carries_sdp(Some(&kind)) {
                            self.media_for_other_side(call, to_side, response.body)
                                .unwrap_or_else(|error| {
                                    tracing::warn!(%call, %error, "an answer across the call is passed on as it is");
                                    Bytes::copy_from_slice(response.body)
                                })
                        } else {
                            Bytes::copy_from_slice(response.body)
                        };
                        answer = answer.body(&kind, body);
                    }
                    let _ = request.respond(answer);
                    return;
                }
                ClientEvent::TimedOut => return refused(408),
            }
        }
    }

    pub(super) fn other_dialog(&self, call: ContactId, side: Side) -> Option<LegDialog> {
        let table = self.lock();
        let entry = table.calls.get(&call)?;
        let Phase::Connected { leg } = entry.phase else {
            return None;
        };
        match side {
            Side::Caller => entry
                .legs
                .iter()
                .find(|l| l.id == leg)
                .and_then(|l| l.dialog.clone()),
            Side::Agent(_) => entry.caller.dialog.clone(),
        }
    }
}
