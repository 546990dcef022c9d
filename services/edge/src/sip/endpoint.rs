//! The server side of the transaction layer (RFC 3261 §17.2) on tokio:
//! every received message is parsed, matched to its transaction (§17.2.3)
//! or starts one, and the transactions' timers run on one task.
//!
//! What the layer answers by itself, so the transaction user never sees it:
//! - malformed requests: the parser's 400, 413 or 505 (or a silent drop,
//!   RFC 4475), each counted in [`MALFORMED_METRIC`] by reason;
//! - retransmitted requests: the last response again (§17.2.1, §17.2.2);
//! - INVITE: 100 (Trying) at once (§17.2.1), so the caller stops
//!   retransmitting while the user decides;
//! - CANCEL (§9.2): 200 and a notice to the user, who answers the INVITE
//!   (487), or 481 when no INVITE transaction is pending;
//! - the ACK of a failure: absorbed by its INVITE transaction;
//! - requests the user cannot take (§8.2, in the RFC's order): an
//!   unknown method 501, a known one it does not implement 405 with
//!   Allow, a Request-URI that is not SIP or SIPS 416, an extension in
//!   Require it does not support 420 with Unsupported.
//!
//! Responses to requests go back where the request came from: on the same
//! connection for TCP, TLS and WebSocket, to the source address and port
//! for UDP (the symmetric response routing of RFC 3581, which NATed phones
//! need).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Instant;

use bytes::Bytes;
use switchboard_sip::build::{received_via, response_to, response_with};
use switchboard_sip::matching::{ClientKey, ServerKey, server_key};
use switchboard_sip::transaction::{
    Action, InviteServer, NonInviteServer, Reliability, State, Timers,
};
use switchboard_sip::uri::parse_sip_uri;
use switchboard_sip::values::split_list;
use switchboard_sip::{Limits, Malformed, Message, Method, Refusal, StartLine, Transport, parse};
use tokio::sync::{Notify, mpsc};

mod client;

pub use client::{ClientEvent, OutgoingRequest, SendError};

/// Malformed messages refused, by reason (the parser's stable labels,
/// plus `bad_via` for a Via no transaction can be keyed by).
pub const MALFORMED_METRIC: &str = "switchboard_edge_sip_malformed_total";

/// Settings of an [`Endpoint`].
#[derive(Debug, Clone, Default)]
pub struct EndpointOptions {
    pub limits: Limits,
    pub timers: Timers,
    /// Requests per source address ([`super::flood`]); `None` for no limit.
    pub per_source: Option<super::flood::SourceLimit>,
}

/// One server transaction, as the transaction user refers to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TransactionId(u64);

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tx-{}", self.0)
    }
}

/// Where a message came from, and how to send back to it.
#[derive(Clone)]
pub enum Peer {
    /// A datagram: answered from the socket it arrived on (a non-blocking
    /// `std` handle of it: a send needs no readiness from the reactor), to
    /// its source.
    Udp {
        socket: Arc<std::net::UdpSocket>,
        remote: SocketAddr,
    },
    /// A byte-stream connection (TCP, or TLS when `tls`): answered on it.
    Stream {
        remote: SocketAddr,
        writer: mpsc::Sender<Bytes>,
        tls: bool,
    },
    /// A WebSocket connection (RFC 7118; secure when `tls`): each message
    /// sent is one WebSocket message.
    WebSocket {
        remote: SocketAddr,
        writer: mpsc::Sender<Bytes>,
        tls: bool,
    },
}

/// `udp:`, `tcp:`, `tls:`, `ws:` or `wss:`, then the remote address.
impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Udp { remote, .. } => write!(f, "udp:{remote}"),
            Peer::Stream {
                remote, tls: false, ..
            } => write!(f, "tcp:{remote}"),
            Peer::Stream {
                remote, tls: true, ..
            } => write!(f, "tls:{remote}"),
            Peer::WebSocket {
                remote, tls: false, ..
            } => write!(f, "ws:{remote}"),
            Peer::WebSocket {
                remote, tls: true, ..
            } => write!(f, "wss:{remote}"),
        }
    }
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Peer {
    pub fn remote(&self) -> SocketAddr {
        match self {
            Peer::Udp { remote, .. }
            | Peer::Stream { remote, .. }
            | Peer::WebSocket { remote, .. } => *remote,
        }
    }

    /// Its transport as a Via header names it (RFC 3261 §20.42, RFC 7118
    /// §5.2).
    pub fn via_transport(&self) -> &'static str {
        match self {
            Peer::Udp { .. } => "UDP",
            Peer::Stream { tls: false, .. } => "TCP",
            Peer::Stream { tls: true, .. } => "TLS",
            Peer::WebSocket { tls: false, .. } => "WS",
            Peer::WebSocket { tls: true, .. } => "WSS",
        }
    }

    /// The framing the parser needs: a datagram, like a WebSocket message,
    /// holds one whole message (RFC 7118 §4.2); a stream is framed by
    /// Content-Length.
    pub fn transport(&self) -> Transport {
        match self {
            Peer::Udp { .. } | Peer::WebSocket { .. } => Transport::Datagram,
            Peer::Stream { .. } => Transport::Stream,
        }
    }

    /// Whether transactions retransmit (RFC 3261 §17): only over UDP.
    fn reliability(&self) -> Reliability {
        match self {
            Peer::Udp { .. } => Reliability::Unreliable,
            Peer::Stream { .. } | Peer::WebSocket { .. } => Reliability::Reliable,
        }
    }

    /// Sends without waiting: a full socket buffer or connection queue
    /// loses the message as the network would, and the transaction's
    /// retransmissions (or the peer's) recover it.
    pub fn send(&self, bytes: Bytes) {
        let sent = match self {
            Peer::Udp { socket, remote } => socket.send_to(&bytes, *remote).is_ok(),
            Peer::Stream { writer, .. } | Peer::WebSocket { writer, .. } => {
                writer.try_send(bytes).is_ok()
            }
        };
        if !sent {
            tracing::debug!(peer = ?self, "a SIP message could not be sent at once; dropped");
        }
    }
}

/// A response the transaction user sends through
/// [`Endpoint::respond`]: the status, and what it adds to the headers
/// copied from the request (RFC 3261 §8.2.6.2).
#[derive(Debug, Clone, Default)]
pub struct OutgoingResponse {
    pub code: u16,
    /// Empty for the standard reason phrase.
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl OutgoingResponse {
    pub fn new(code: u16) -> Self {
        Self {
            code,
            ..Self::default()
        }
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, content_type: &str, body: Bytes) -> Self {
        self.headers
            .push(("Content-Type".to_owned(), content_type.to_owned()));
        self.body = body;
        self
    }
}

/// A new request, given to the transaction user once; its transaction
/// absorbs the retransmissions.
pub struct IncomingRequest {
    pub id: TransactionId,
    /// The message's bytes, exactly as received.
    pub bytes: Bytes,
    pub peer: Peer,
    /// The To tag of its responses (but 100): the local tag of a dialog
    /// an INVITE creates.
    pub to_tag: String,
    endpoint: Endpoint,
}

impl IncomingRequest {
    /// The request, parsed again from its bytes (they parsed once).
    pub fn message(&self) -> Message<'_> {
        parse_again(&self.bytes, self.peer.transport())
            .expect("a request the endpoint parsed parses again")
    }

    /// Answers it ([`Endpoint::respond`]).
    pub fn respond(&self, response: OutgoingResponse) -> Result<(), Gone> {
        self.endpoint.respond(self.id, response)
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}

/// What the endpoint asks of the layer above it: the UAS core of a
/// registrar, a B2BUA or a proxy.
pub trait TransactionUser: Send + Sync + 'static {
    /// Whether it implements `method`; for the others the endpoint
    /// answers 405 (with Allow) or, for a method no RFC of ours defines,
    /// 501. ACK and CANCEL are the endpoint's own.
    fn allows(&self, method: Method<'_>) -> bool;

    /// Whether it supports the option tag (RFC 3261 §19.2) a request
    /// requires; the endpoint answers 420 for one it does not.
    fn supports(&self, _option_tag: &str) -> bool {
        false
    }

    /// A new request (not ACK, not CANCEL) it must answer through
    /// [`IncomingRequest::respond`].
    fn on_request(&self, request: IncomingRequest);

    /// The INVITE `invite` was cancelled; the CANCEL has its 200. The
    /// user answers the INVITE (487) unless it already sent a final
    /// response.
    fn on_cancelled(&self, _invite: TransactionId) {}

    /// An ACK outside any transaction: the ACK of a 2xx (§13.3.1.4,
    /// the dialog's), or a stray one.
    fn on_ack(&self, _ack: Bytes, _peer: Peer) {}

    /// The INVITE `invite` got no ACK for its final failure (Timer H).
    fn on_timeout(&self, _invite: TransactionId) {}
}

/// The transaction is over (terminated, or never existed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

impl fmt::Display for Gone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the transaction is over")
    }
}

impl std::error::Error for Gone {}

/// The server transactions of one SIP element, shared by its transports;
/// cheap to clone. Create it inside a tokio runtime: it spawns the task
/// that runs the transactions' timers, which ends with the last clone.
#[derive(Clone)]
pub struct Endpoint {
    shared: Arc<Shared>,
}

struct Shared {
    options: EndpointOptions,
    flood: Option<super::flood::Flood>,
    user: Arc<dyn TransactionUser>,
    state: Mutex<Transactions>,
    wake: Arc<Notify>,
    /// The UDP socket requests go out from ([`Endpoint::udp_peer`]).
    udp: OnceLock<Arc<std::net::UdpSocket>>,
    /// Open connections (TCP, TLS, WebSocket) by their peer's name
    /// (`tcp:192.0.2.7:50611`): a device registered over one is reached
    /// over it ([`Endpoint::connection_peer`]).
    connections: Mutex<HashMap<String, Peer>>,
}

impl Endpoint {
    /// A connection opened: requests to its peer's name go over it until
    /// [`Endpoint::connection_closed`].
    pub(crate) fn connection_opened(&self, peer: &Peer) {
        self.shared
            .connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(peer.to_string(), peer.clone());
    }

    pub(crate) fn connection_closed(&self, peer: &Peer) {
        self.shared
            .connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&peer.to_string());
    }

    /// The open connection named `name` (`tcp:`, `tls:`, `ws:` or `wss:`,
    /// then the remote address, as [`Peer`] displays it), if this endpoint
    /// holds it: where a device that registered over it is reached (RFC
    /// 5626 §5.3: requests to a connection-oriented flow go over it).
    pub fn connection_peer(&self, name: &str) -> Option<Peer> {
        self.shared
            .connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Lets the timer task see that the endpoint is gone.
        self.wake.notify_one();
    }
}

#[derive(Default)]
struct Transactions {
    next_id: u64,
    by_key: HashMap<ServerKey, TransactionId>,
    live: HashMap<TransactionId, ServerTransaction>,
    /// Every deadline set, soonest first; an entry whose transaction is
    /// gone or has moved on is skipped when it comes up.
    deadlines: BinaryHeap<Reverse<(Instant, TransactionId)>>,
    /// Client transactions ([`client`]), in the same id space.
    client_by_key: HashMap<ClientKey, TransactionId>,
    clients: HashMap<TransactionId, client::ClientTransaction>,
}

struct ServerTransaction {
    key: ServerKey,
    machine: Machine,
    peer: Peer,
    request: Bytes,
    /// The To tag of every response but 100 (§8.2.6.2).
    to_tag: String,
    /// The top Via as responses carry it: with `received` and `rport`
    /// (RFC 3581), when they differ from what the request says.
    top_via: Option<String>,
}

enum Machine {
    Invite(InviteServer),
    NonInvite(NonInviteServer),
}

impl Machine {
    fn state(&self) -> State {
        match self {
            Machine::Invite(server) => server.state(),
            Machine::NonInvite(server) => server.state(),
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        match self {
            Machine::Invite(server) => server.next_deadline(),
            Machine::NonInvite(server) => server.next_deadline(),
        }
    }

    fn on_request(&mut self) -> Vec<Action> {
        match self {
            Machine::Invite(server) => server.on_request(),
            Machine::NonInvite(server) => server.on_request(),
        }
    }

    fn respond(&mut self, code: u16, response: Vec<u8>, now: Instant) -> Vec<Action> {
        match self {
            Machine::Invite(server) => server.respond(code, response, now),
            Machine::NonInvite(server) => server.respond(code, response, now),
        }
    }

    fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        match self {
            Machine::Invite(server) => server.on_timer(now),
            Machine::NonInvite(server) => server.on_timer(now),
        }
    }
}

/// What must reach the transaction user once the lock is released.
enum Notice {
    Request(IncomingRequest),
    Cancelled(TransactionId),
    Ack(Bytes, Peer),
    TimedOut(TransactionId),
}

/// The current time of tokio's clock (paused and advanced in tests) as
/// the `std` instant the sans-IO transactions take.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

fn parse_again(bytes: &[u8], transport: Transport) -> Option<Message<'_>> {
    parse(bytes, transport, &Limits::default())
        .ok()
        .flatten()
        .map(|(message, _)| message)
}

/// A fresh To tag.
fn new_tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl Endpoint {
    pub fn new(options: EndpointOptions, user: Arc<dyn TransactionUser>) -> Self {
        let wake = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            flood: options.per_source.map(super::flood::Flood::new),
            options,
            user,
            state: Mutex::new(Transactions::default()),
            wake: wake.clone(),
            udp: OnceLock::new(),
            connections: Mutex::new(HashMap::new()),
        });
        tokio::spawn(run_timers(Arc::downgrade(&shared), wake));
        Self { shared }
    }

    pub fn options(&self) -> &EndpointOptions {
        &self.shared.options
    }

    /// How many server transactions are alive.
    pub fn transactions(&self) -> usize {
        self.lock().live.len()
    }

    fn lock(&self) -> MutexGuard<'_, Transactions> {
        // A panic while holding the lock leaves maps that are still
        // consistent entry by entry; keep serving.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One message as framed by a transport: for a datagram the whole
    /// datagram, for a stream exactly one message. A bug that panics on
    /// one message loses that message only (logged, and counted as
    /// `internal_error`), never the transport's receive loop.
    pub fn receive(&self, bytes: Bytes, peer: Peer) {
        let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.receive_one(bytes, peer)
        }));
        if handled.is_err() {
            count_malformed("internal_error");
            tracing::error!("a SIP message made the endpoint panic; it was dropped");
        }
    }

    fn receive_one(&self, bytes: Bytes, peer: Peer) {
        if let Some(flood) = &self.shared.flood
            && !bytes.starts_with(b"SIP/")
            && !flood.admit(peer.remote().ip(), now())
        {
            metrics::counter!(super::flood::THROTTLED_METRIC).increment(1);
            return;
        }
        let message = match parse(&bytes, peer.transport(), &self.shared.options.limits) {
            Ok(Some((message, _))) => message,
            Ok(None) => {
                count_malformed("incomplete");
                return;
            }
            Err(malformed) => {
                self.refuse(&malformed, &peer);
                return;
            }
        };
        if !message.is_request() {
            self.on_response(&message, &bytes, &peer);
            return;
        }
        let notices = self.on_request(&message, &bytes, peer);
        self.deliver(notices);
    }

    /// Answers (or silently drops) a message the parser refused, and
    /// counts it.
    pub fn refuse(&self, malformed: &Malformed<'_>, peer: &Peer) {
        count_malformed(malformed.reason);
        tracing::debug!(?peer, reason = malformed.reason, detail = %malformed.detail, "malformed SIP message");
        if let (Refusal::Respond(code), Some(request)) = (malformed.refusal, &malformed.request)
            && request.method() != Some(Method::Ack)
        {
            let response = response_to(request, code, &malformed.detail, Some(&new_tag()));
            peer.send(Bytes::from(response));
        }
    }

    /// Sends `response` on transaction `id` (the transaction sends it
    /// again when the request is retransmitted, and over UDP retransmits a
    /// final failure of an INVITE until its ACK).
    pub fn respond(&self, id: TransactionId, response: OutgoingResponse) -> Result<(), Gone> {
        let notices = {
            let mut state = self.lock();
            let transaction = state.live.get(&id).ok_or(Gone)?;
            let request = transaction.request.clone();
            let message = parse_again(&request, transaction.peer.transport()).ok_or(Gone)?;
            state.respond_with(id, &message, &response, &self.shared.wake)
        };
        self.deliver(notices);
        Ok(())
    }

    fn on_request(&self, message: &Message<'_>, bytes: &Bytes, peer: Peer) -> Vec<Notice> {
        let method = message.method().expect("a request");
        let key = match server_key(message) {
            Ok(key) => key,
            Err(why) => {
                count_malformed("bad_via");
                if method != Method::Ack {
                    peer.send(Bytes::from(response_to(
                        message,
                        400,
                        why,
                        Some(&new_tag()),
                    )));
                }
                return Vec::new();
            }
        };
        let mut state = self.lock();
        if let Some(&id) = state.by_key.get(&key) {
            return state.on_retransmission(id, method, bytes, &peer, &self.shared.wake);
        }
        match method {
            Method::Ack => return vec![Notice::Ack(bytes.clone(), peer)],
            Method::Cancel => {
                let invite = with_method(key.clone(), "INVITE");
                let pending = state
                    .by_key
                    .get(&invite)
                    .copied()
                    .filter(|id| state.live[id].machine.state() == State::Proceeding);
                let id = state.open(key, message, bytes, &peer, self.shared.options.timers);
                let code = if pending.is_some() { 200 } else { 481 };
                let mut notices = state.respond_with(
                    id,
                    message,
                    &OutgoingResponse::new(code),
                    &self.shared.wake,
                );
                notices.extend(pending.map(Notice::Cancelled));
                return notices;
            }
            _ => {}
        }
        let refusal = self.refusal_before_user(message, method);
        let id = state.open(key, message, bytes, &peer, self.shared.options.timers);
        if let Some(response) = refusal {
            return state.respond_with(id, message, &response, &self.shared.wake);
        }
        let mut notices = Vec::new();
        if method == Method::Invite {
            notices.extend(state.respond_with(
                id,
                message,
                &OutgoingResponse::new(100),
                &self.shared.wake,
            ));
        }
        let to_tag = state
            .live
            .get(&id)
            .map(|transaction| transaction.to_tag.clone())
            .unwrap_or_default();
        notices.push(Notice::Request(IncomingRequest {
            id,
            bytes: bytes.clone(),
            peer,
            to_tag,
            endpoint: self.clone(),
        }));
        notices
    }

    /// The answer RFC 3261 §8.2 gives before the user sees the request,
    /// in its order: method (405/501), Request-URI scheme (416),
    /// required extensions (420).
    fn refusal_before_user(
        &self,
        message: &Message<'_>,
        method: Method<'_>,
    ) -> Option<OutgoingResponse> {
        let user = &self.shared.user;
        if !user.allows(method) {
            return Some(match method {
                Method::Extension(_) => OutgoingResponse::new(501),
                _ => OutgoingResponse::new(405).header("Allow", allow_header(user.as_ref())),
            });
        }
        let StartLine::Request { uri, .. } = &message.start else {
            return None;
        };
        if parse_sip_uri(uri).is_err() {
            let scheme = uri.split(':').next().unwrap_or_default();
            return Some(
                if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
                    OutgoingResponse::new(400).reason("Malformed Request-URI")
                } else {
                    OutgoingResponse::new(416)
                },
            );
        }
        let unsupported: Vec<&str> = message
            .headers_named("Require")
            .filter_map(|header| split_list(&header.value).ok())
            .flatten()
            .map(str::trim)
            .filter(|tag| !tag.is_empty() && !user.supports(tag))
            .collect();
        if !unsupported.is_empty() {
            return Some(OutgoingResponse::new(420).header("Unsupported", unsupported.join(", ")));
        }
        None
    }

    fn deliver(&self, notices: Vec<Notice>) {
        let user = &self.shared.user;
        for notice in notices {
            match notice {
                Notice::Request(request) => user.on_request(request),
                Notice::Cancelled(id) => user.on_cancelled(id),
                Notice::Ack(bytes, peer) => user.on_ack(bytes, peer),
                Notice::TimedOut(id) => user.on_timeout(id),
            }
        }
    }
}

/// The methods `user` implements, for Allow: the ones RFC 3261 and its
/// extensions define (ACK and CANCEL always).
pub fn allow_header(user: &dyn TransactionUser) -> String {
    const KNOWN: [Method<'static>; 12] = [
        Method::Invite,
        Method::Bye,
        Method::Register,
        Method::Options,
        Method::Info,
        Method::Prack,
        Method::Update,
        Method::Subscribe,
        Method::Notify,
        Method::Refer,
        Method::Message,
        Method::Publish,
    ];
    let mut allowed = vec!["ACK", "CANCEL"];
    allowed.extend(
        KNOWN
            .into_iter()
            .filter(|method| user.allows(*method))
            .map(|method| method.as_str()),
    );
    allowed.join(", ")
}

fn with_method(key: ServerKey, method: &str) -> ServerKey {
    match key {
        ServerKey::Branch {
            branch, sent_by, ..
        } => ServerKey::Branch {
            branch,
            sent_by,
            method: method.to_owned(),
        },
        ServerKey::Legacy {
            request_uri,
            from_tag,
            call_id,
            cseq,
            top_via,
            ..
        } => ServerKey::Legacy {
            request_uri,
            from_tag,
            call_id,
            cseq,
            method: method.to_owned(),
            top_via,
        },
    }
}

fn count_malformed(reason: &'static str) {
    metrics::counter!(MALFORMED_METRIC, "reason" => reason).increment(1);
}

impl Transactions {
    /// A new server transaction for `message`.
    fn open(
        &mut self,
        key: ServerKey,
        message: &Message<'_>,
        bytes: &Bytes,
        peer: &Peer,
        timers: Timers,
    ) -> TransactionId {
        self.next_id += 1;
        let id = TransactionId(self.next_id);
        let machine = match message.method() {
            Some(Method::Invite) => Machine::Invite(InviteServer::new(peer.reliability(), timers)),
            _ => Machine::NonInvite(NonInviteServer::new(peer.reliability(), timers)),
        };
        self.by_key.insert(key.clone(), id);
        self.live.insert(
            id,
            ServerTransaction {
                key,
                machine,
                peer: peer.clone(),
                request: bytes.clone(),
                to_tag: new_tag(),
                top_via: received_via(message, peer.remote()),
            },
        );
        id
    }

    /// Sends `response` to `message` on transaction `id`: the request's
    /// headers (its top Via as [`ServerTransaction::top_via`] says), the
    /// transaction's To tag on all but 100, then the response's own.
    fn respond_with(
        &mut self,
        id: TransactionId,
        message: &Message<'_>,
        response: &OutgoingResponse,
        wake: &Notify,
    ) -> Vec<Notice> {
        let Some(transaction) = self.live.get_mut(&id) else {
            return Vec::new();
        };
        let to_tag = (response.code > 100).then_some(transaction.to_tag.as_str());
        let headers: Vec<(&str, &str)> = response
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let bytes = response_with(
            message,
            transaction.top_via.as_deref(),
            response.code,
            &response.reason,
            to_tag,
            &headers,
            &response.body,
        );
        let actions = transaction.machine.respond(response.code, bytes, now());
        self.apply(id, actions, wake)
    }

    fn on_retransmission(
        &mut self,
        id: TransactionId,
        method: Method<'_>,
        bytes: &Bytes,
        peer: &Peer,
        wake: &Notify,
    ) -> Vec<Notice> {
        let transaction = self.live.get_mut(&id).expect("keyed transactions are live");
        let (actions, ack_of_2xx) = match (&mut transaction.machine, method) {
            (Machine::Invite(server), Method::Ack) => {
                // In Accepted the ACK is the 2xx's: the dialog's.
                let accepted = server.state() == State::Accepted;
                (server.on_ack(now()), accepted)
            }
            // An ACK whose INVITE was answered by a non-INVITE machine
            // cannot happen: keys of ACKs carry INVITE.
            (machine, _) => (machine.on_request(), false),
        };
        let mut notices = self.apply(id, actions, wake);
        if ack_of_2xx {
            notices.push(Notice::Ack(bytes.clone(), peer.clone()));
        }
        notices
    }

    /// Carries out a transaction's actions; schedules its next deadline.
    fn apply(&mut self, id: TransactionId, actions: Vec<Action>, wake: &Notify) -> Vec<Notice> {
        let mut notices = Vec::new();
        let mut terminated = false;
        if let Some(transaction) = self.live.get(&id) {
            for action in actions {
                match action {
                    Action::Send(bytes) => transaction.peer.send(Bytes::from(bytes)),
                    Action::TimedOut => notices.push(Notice::TimedOut(id)),
                    Action::Terminated => terminated = true,
                    Action::Deliver(_) => {}
                }
            }
        }
        if terminated {
            if let Some(transaction) = self.live.remove(&id) {
                self.by_key.remove(&transaction.key);
            }
        } else if let Some(deadline) = self.live.get(&id).and_then(|t| t.machine.next_deadline()) {
            let sooner = self
                .deadlines
                .peek()
                .is_none_or(|Reverse((first, _))| deadline < *first);
            self.deadlines.push(Reverse((deadline, id)));
            if sooner {
                wake.notify_one();
            }
        }
        notices
    }

    /// Runs every transaction whose deadline has come; returns the
    /// notices and the next deadline.
    fn fire(&mut self, now: Instant, wake: &Notify) -> (Vec<Notice>, Option<Instant>) {
        let mut notices = Vec::new();
        while let Some(&Reverse((at, id))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if self.clients.contains_key(&id) {
                self.fire_client(id, at, now, wake);
                continue;
            }
            let Some(transaction) = self.live.get_mut(&id) else {
                continue;
            };
            if transaction.machine.next_deadline() != Some(at) {
                continue;
            }
            let actions = transaction.machine.on_timer(now);
            notices.extend(self.apply(id, actions, wake));
        }
        (notices, self.deadlines.peek().map(|Reverse((at, _))| *at))
    }
}

/// The transactions' timers: sleeps until the soonest deadline (or a
/// sooner one is set), then runs what is due. Ends with the endpoint.
async fn run_timers(shared: Weak<Shared>, wake: Arc<Notify>) {
    let mut next: Option<Instant> = None;
    loop {
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {}
                    () = wake.notified() => {}
                }
            }
            None => wake.notified().await,
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let endpoint = Endpoint { shared };
        let (notices, upcoming) = {
            let mut state = endpoint.lock();
            state.fire(now(), &endpoint.shared.wake)
        };
        endpoint.deliver(notices);
        next = upcoming;
    }
}
