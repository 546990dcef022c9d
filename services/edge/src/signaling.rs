//! What the edge answers over SIP (the transaction user of its
//! [`Endpoint`](crate::sip::Endpoint)): OPTIONS, which carriers and
//! phones send to see that we are up, and REGISTER, for the
//! [`Registrar`]. Calls (INVITE, BYE) come with the B2BUA.

use std::sync::Arc;

use switchboard_sip::Method;

use crate::registrar::Registrar;
use crate::sip::{IncomingRequest, OutgoingResponse, TransactionUser, allow_header};

pub struct Signaling {
    registrar: Arc<Registrar>,
}

impl Signaling {
    pub fn new(registrar: Arc<Registrar>) -> Self {
        Self { registrar }
    }
}

impl TransactionUser for Signaling {
    fn allows(&self, method: Method<'_>) -> bool {
        matches!(method, Method::Options | Method::Register)
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
            _ => {
                let _ =
                    request.respond(OutgoingResponse::new(405).header("Allow", allow_header(self)));
            }
        }
    }
}
