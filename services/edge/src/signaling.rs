//! What the edge answers over SIP (the transaction user of its
//! [`Endpoint`](crate::sip::Endpoint)): OPTIONS, which carriers and
//! phones send to see that we are up; REGISTER, for the [`Registrar`];
//! and calls (INVITE and what follows in their dialogs: BYE, re-INVITE,
//! UPDATE, INFO), for the [`B2bua`] when the edge routes calls.

use std::sync::Arc;

use bytes::Bytes;
use switchboard_sip::Method;

use crate::calls::B2bua;
use crate::registrar::Registrar;
use crate::sip::{
    IncomingRequest, OutgoingResponse, Peer, TransactionId, TransactionUser, allow_header,
};

pub struct Signaling {
    registrar: Arc<Registrar>,
    calls: Option<B2bua>,
}

impl Signaling {
    /// Answers OPTIONS and REGISTER, and calls when `calls` is given.
    pub fn new(registrar: Arc<Registrar>, calls: Option<B2bua>) -> Self {
        Self { registrar, calls }
    }
}

impl TransactionUser for Signaling {
    fn allows(&self, method: Method<'_>) -> bool {
        match method {
            Method::Options | Method::Register => true,
            Method::Invite | Method::Bye | Method::Update | Method::Info => self.calls.is_some(),
            _ => false,
        }
    }

    fn on_request(&self, request: IncomingRequest) {
        match request.message().method() {
            Some(Method::Options) => {
                let response = OutgoingResponse::new(200)
                    .header("Allow", allow_header(self))
                    .header("Accept", "application/sdp");
                // The transaction was just opened: it cannot be over yet.
                let _ = request.respond(response);
            }
            Some(Method::Register) => {
                let registrar = self.registrar.clone();
                tokio::spawn(async move {
                    let message = request.message();
                    let response = registrar
                        .register(&message, &request.peer.to_string())
                        .await;
                    // Over if the phone gave up meanwhile (Timer J is far).
                    let _ = request.respond(response);
                });
            }
            Some(Method::Invite | Method::Bye | Method::Update | Method::Info)
                if self.calls.is_some() =>
            {
                if let Some(calls) = &self.calls {
                    calls.on_request(request);
                }
            }
            _ => {
                let _ =
                    request.respond(OutgoingResponse::new(405).header("Allow", allow_header(self)));
            }
        }
    }

    fn on_cancelled(&self, invite: TransactionId) {
        if let Some(calls) = &self.calls {
            calls.on_cancelled(invite);
        }
    }

    fn on_ack(&self, ack: Bytes, _peer: Peer) {
        if let Some(calls) = &self.calls {
            calls.on_ack(ack);
        }
    }
}
