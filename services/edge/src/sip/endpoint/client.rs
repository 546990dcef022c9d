//! The client side of the transaction layer (RFC 3261 §17.1): requests
//! the edge sends (ringing a phone, a carrier leg, a trunk's REGISTER),
//! retransmitted over UDP until answered, their responses matched by
//! branch and CSeq method (§17.1.3) and handed to whoever sent them, the
//! failures of an INVITE ACKed by the transaction itself (§17.1.1.3), and
//! CANCEL (§9.1), held back until the INVITE got a provisional response.

use std::sync::Arc;

use bytes::Bytes;
use switchboard_sip::build::{ack_for_failure, cancel_for};
use switchboard_sip::matching::{MAGIC_COOKIE, client_key};
use switchboard_sip::transaction::{Action, InviteClient, NonInviteClient, State};
use switchboard_sip::{Message, Method, StartLine};
use tokio::sync::{Notify, mpsc};

use super::{Endpoint, Gone, Peer, TransactionId, Transactions, now, parse_again};

/// What a client transaction reports to whoever sent its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// A response, exactly as received: provisional ones, the final one,
    /// and for an INVITE every retransmitted 2xx (RFC 6026: the dialog
    /// ACKs each).
    Response(Bytes),
    /// No final response in time (Timer B or F): as a 408.
    TimedOut,
}

/// A request on its way: its transaction, and what it reports. Dropping
/// it does not stop the transaction (its retransmissions and ACKs go on).
pub struct OutgoingRequest {
    pub id: TransactionId,
    events: mpsc::UnboundedReceiver<ClientEvent>,
}

impl OutgoingRequest {
    /// The next event; `None` once the transaction is over and everything
    /// was read.
    pub async fn next(&mut self) -> Option<ClientEvent> {
        self.events.recv().await
    }
}

/// Why a request cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// It does not parse, is not a request, or has no branch of RFC 3261
    /// (a fresh `z9hG4bK…` per transaction, §8.1.1.7) in its top Via.
    Malformed(String),
    /// An ACK has no transaction: send it with [`Peer::send`].
    Ack,
    /// A transaction with the same branch and method is under way.
    Duplicate,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Malformed(why) => write!(f, "the request cannot be sent: {why}"),
            SendError::Ack => f.write_str("an ACK has no transaction; send it on the peer"),
            SendError::Duplicate => f.write_str("a transaction with this branch is under way"),
        }
    }
}

impl std::error::Error for SendError {}

pub(super) struct ClientTransaction {
    key: switchboard_sip::matching::ClientKey,
    machine: Machine,
    peer: Peer,
    request: Bytes,
    events: mpsc::UnboundedSender<ClientEvent>,
    /// A CANCEL asked for before any provisional response (§9.1): sent
    /// with the first one.
    cancel_pending: bool,
    timers: switchboard_sip::transaction::Timers,
}

enum Machine {
    Invite(InviteClient),
    NonInvite(NonInviteClient),
}

impl Machine {
    fn state(&self) -> State {
        match self {
            Machine::Invite(client) => client.state(),
            Machine::NonInvite(client) => client.state(),
        }
    }

    fn next_deadline(&self) -> Option<std::time::Instant> {
        match self {
            Machine::Invite(client) => client.next_deadline(),
            Machine::NonInvite(client) => client.next_deadline(),
        }
    }
}

impl Endpoint {
    /// Where requests to `remote` over UDP go out from: the socket the
    /// transports bound ([`Endpoint::attach_udp`]), so replies and NAT
    /// bindings match; `None` before one is attached.
    pub fn udp_peer(&self, remote: std::net::SocketAddr) -> Option<Peer> {
        self.shared.udp.get().map(|socket| Peer::Udp {
            socket: socket.clone(),
            remote,
        })
    }

    /// Makes `socket` the one requests over UDP go out from (the first
    /// one attached stays).
    pub fn attach_udp(&self, socket: Arc<std::net::UdpSocket>) {
        let _ = self.shared.udp.set(socket);
    }

    /// Sends `request` to `peer` in a new client transaction: an INVITE's
    /// (§17.1.1) or a non-INVITE one (§17.1.2).
    pub fn send_request(&self, request: Bytes, peer: Peer) -> Result<OutgoingRequest, SendError> {
        let message =
            parse_again(&request, switchboard_sip::Transport::Stream).ok_or_else(|| {
                SendError::Malformed("it does not parse (with a Content-Length)".into())
            })?;
        let method = message
            .method()
            .ok_or_else(|| SendError::Malformed("a response is not a request".into()))?;
        if method == Method::Ack {
            return Err(SendError::Ack);
        }
        let invite = method == Method::Invite;
        let key = client_key(&message).map_err(|why| SendError::Malformed(why.into()))?;
        if !key.branch.starts_with(MAGIC_COOKIE) || key.branch.len() == MAGIC_COOKIE.len() {
            return Err(SendError::Malformed(
                "the top Via needs a branch of its own starting with z9hG4bK".into(),
            ));
        }
        let (sender, events) = mpsc::unbounded_channel();
        let mut state = self.lock();
        if state.client_by_key.contains_key(&key) {
            return Err(SendError::Duplicate);
        }
        let id = state.open_client(
            NewClient {
                key,
                invite,
                request,
                peer,
                events: sender,
                timers: self.shared.options.timers,
            },
            &self.shared.wake,
        );
        drop(state);
        Ok(OutgoingRequest { id, events })
    }

    /// Cancels the INVITE of client transaction `id` (§9.1): at once if it
    /// got a provisional response, else with the first one; nothing once
    /// it has a final response. Its final response (487, or the 200 that
    /// raced the CANCEL) still comes through its [`OutgoingRequest`].
    pub fn cancel(&self, id: TransactionId) -> Result<(), Gone> {
        let mut state = self.lock();
        let transaction = state.clients.get_mut(&id).ok_or(Gone)?;
        match transaction.machine.state() {
            State::Calling => transaction.cancel_pending = true,
            State::Proceeding => state.send_cancel(id, &self.shared.wake),
            _ => {}
        }
        Ok(())
    }

    /// A response: to its client transaction, if one is waiting for it.
    pub(super) fn on_response(&self, message: &Message<'_>, bytes: &Bytes, peer: &Peer) {
        let StartLine::Response { code, .. } = message.start else {
            return;
        };
        let Ok(key) = client_key(message) else {
            tracing::debug!(
                ?peer,
                "a SIP response without a usable Via or CSeq; dropped"
            );
            return;
        };
        let mut state = self.lock();
        let Some(&id) = state.client_by_key.get(&key) else {
            tracing::debug!(
                ?peer,
                code,
                "a SIP response matched no transaction; dropped"
            );
            return;
        };
        let transaction = state
            .clients
            .get_mut(&id)
            .expect("keyed transactions are live");
        let actions = match &mut transaction.machine {
            Machine::Invite(client) => {
                let invite = transaction.request.clone();
                client.on_response(code, now(), || {
                    parse_again(&invite, switchboard_sip::Transport::Stream)
                        .and_then(|invite| ack_for_failure(&invite, message))
                        .unwrap_or_default()
                })
            }
            Machine::NonInvite(client) => client.on_response(code, now()),
        };
        let cancel_now = (100..=199).contains(&code) && transaction.cancel_pending;
        if cancel_now {
            transaction.cancel_pending = false;
        }
        state.apply_client(id, actions, Some(bytes), &self.shared.wake);
        if cancel_now {
            state.send_cancel(id, &self.shared.wake);
        }
    }
}

/// What a new client transaction starts from.
struct NewClient {
    key: switchboard_sip::matching::ClientKey,
    invite: bool,
    request: Bytes,
    peer: Peer,
    events: mpsc::UnboundedSender<ClientEvent>,
    timers: switchboard_sip::transaction::Timers,
}

impl Transactions {
    fn open_client(&mut self, new: NewClient, wake: &Notify) -> TransactionId {
        self.next_id += 1;
        let id = TransactionId(self.next_id);
        let reliability = new.peer.reliability();
        let (machine, actions) = if new.invite {
            let (client, actions) =
                InviteClient::start(new.request.to_vec(), reliability, new.timers, now());
            (Machine::Invite(client), actions)
        } else {
            let (client, actions) =
                NonInviteClient::start(new.request.to_vec(), reliability, new.timers, now());
            (Machine::NonInvite(client), actions)
        };
        self.client_by_key.insert(new.key.clone(), id);
        self.clients.insert(
            id,
            ClientTransaction {
                key: new.key,
                machine,
                peer: new.peer,
                request: new.request,
                events: new.events,
                cancel_pending: false,
                timers: new.timers,
            },
        );
        // The first send, and its first deadline.
        self.apply_client(id, actions, None, wake);
        id
    }

    /// The CANCEL of client INVITE `id`, in a transaction of its own whose
    /// answer nobody waits for (the INVITE's final response tells).
    fn send_cancel(&mut self, id: TransactionId, wake: &Notify) {
        let Some(transaction) = self.clients.get(&id) else {
            return;
        };
        let Some(cancel) = parse_again(&transaction.request, switchboard_sip::Transport::Stream)
            .and_then(|invite| cancel_for(&invite))
        else {
            return;
        };
        let cancel = Bytes::from(cancel);
        // The CANCEL carries the INVITE's branch (§9.1).
        let key = switchboard_sip::matching::ClientKey {
            branch: transaction.key.branch.clone(),
            method: "CANCEL".to_owned(),
        };
        if self.client_by_key.contains_key(&key) {
            return;
        }
        let peer = transaction.peer.clone();
        let timers = transaction.timers;
        let (sender, _unread) = mpsc::unbounded_channel();
        self.open_client(
            NewClient {
                key,
                invite: false,
                request: cancel,
                peer,
                events: sender,
                timers,
            },
            wake,
        );
    }

    /// Carries out client transaction `id`'s actions (`response`: the
    /// bytes of the response that caused them); schedules its next
    /// deadline.
    fn apply_client(
        &mut self,
        id: TransactionId,
        actions: Vec<Action>,
        response: Option<&Bytes>,
        wake: &Notify,
    ) {
        let mut terminated = false;
        if let Some(transaction) = self.clients.get(&id) {
            for action in actions {
                match action {
                    Action::Send(bytes) if !bytes.is_empty() => {
                        transaction.peer.send(Bytes::from(bytes))
                    }
                    Action::Send(_) => {}
                    Action::Deliver(_) => {
                        if let Some(response) = response {
                            let _ = transaction
                                .events
                                .send(ClientEvent::Response(response.clone()));
                        }
                    }
                    Action::TimedOut => {
                        let _ = transaction.events.send(ClientEvent::TimedOut);
                    }
                    Action::Terminated => terminated = true,
                }
            }
        }
        if terminated {
            if let Some(transaction) = self.clients.remove(&id) {
                self.client_by_key.remove(&transaction.key);
            }
        } else {
            self.schedule(id, wake);
        }
    }

    fn schedule(&mut self, id: TransactionId, wake: &Notify) {
        let Some(deadline) = self
            .clients
            .get(&id)
            .and_then(|t| t.machine.next_deadline())
        else {
            return;
        };
        let sooner = self
            .deadlines
            .peek()
            .is_none_or(|std::cmp::Reverse((first, _))| deadline < *first);
        self.deadlines.push(std::cmp::Reverse((deadline, id)));
        if sooner {
            wake.notify_one();
        }
    }

    /// Client transaction `id`'s deadline `at` has come.
    pub(super) fn fire_client(
        &mut self,
        id: TransactionId,
        at: std::time::Instant,
        now: std::time::Instant,
        wake: &Notify,
    ) {
        let Some(transaction) = self.clients.get_mut(&id) else {
            return;
        };
        if transaction.machine.next_deadline() != Some(at) {
            return;
        }
        let actions = match &mut transaction.machine {
            Machine::Invite(client) => client.on_timer(now),
            Machine::NonInvite(client) => client.on_timer(now),
        };
        self.apply_client(id, actions, None, wake);
    }
}
