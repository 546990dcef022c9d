//! The B2BUA (RFC 3261 §6, "back-to-back user agent"): every inbound call
//! is two independent dialogs, the caller's leg (from a carrier trunk)
//! and an agent's leg (to the agent's registered phones), joined by the
//! edge. Only the session description and the caller's number cross
//! between them; Call-IDs, tags, Via, Record-Route and Contact are each
//! leg's own (topology hiding).
//!
//! The life of a call:
//! 1. An INVITE from outside is admitted ([`InboundAdmission`]: a trunk
//!    of some tenants), checked for loops (§16.3) and hop count, and
//!    handed to routing ([`CallRoutingApi::new_call`]): a rejection is
//!    answered with routing's SIP status; otherwise the call is routing's
//!    contact of one tenant and the edge carries out its steps.
//! 2. `queued`: the caller hears ringing (180) while the ACD finds an
//!    agent. The edge watches the tenant's ACD notices (pushed by routing,
//!    not polled): an offer of the call to an agent rings every device the
//!    agent registered; the first to answer wins and the others get
//!    CANCEL; the answer is reported to routing (`Accept`) and the caller
//!    gets the agent's 200. Busy, no device, or all devices failing is
//!    reported (`Decline`) and routing decides (the next agent, back in
//!    line); an offer that expires (the queue's ring timeout) is withdrawn
//!    by routing and the edge cancels the ringing. An agent who accepts on
//!    the desktop instead gets the call with auto-answer (`Call-Info:
//!    answer-after=0`).
//! 3. `ring_agent`: the agent's devices ring directly, for
//!    [`CallOptions::ring_timeout`].
//! 4. A BYE from either side ends both legs and the call at routing; a
//!    CANCEL before the answer abandons it. Re-INVITE, UPDATE and INFO
//!    pass across to the other leg with their session descriptions.
//!
//! Prompts and digit collection need the edge's media (issue 22): until
//! then a `play` step counts as played and a `collect` step as no input,
//! so a flow takes its default path; voicemail, ring groups, transfers
//! and callbacks end the call with 480. Calls live in this edge's memory:
//! a restarted edge loses its calls (their carriers' session timers end
//! them). Routing's state may be lost instead: the edge then puts its
//! queued and connected calls back ([`reassert`]).

mod dialogs;
mod legs;
mod media;
mod notices;
mod outbound;
pub mod reassert;
pub mod records;
pub mod requests;
pub mod session_timer;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use switchboard_acd::{AgentId, Channel, ContactEventKind, ContactId, ContactState, DirectOrigin};
use switchboard_events::proto::{self as events, envelope::Payload};
use switchboard_flows::Input;
use switchboard_routing_api::acd::{Answer, NoticeEvent, Operation, Query, RoutingApi};
use switchboard_routing_api::calls::{CallDecision, CallRoutingApi, InboundCall, Step};
use switchboard_sip::dialog::Dialog;
use switchboard_sip::uri::parse_sip_uri;
use switchboard_sip::values::{parse_name_addr, parse_via, split_list};
use switchboard_sip::{Limits, Message, Method, StartLine, Transport, parse};
use switchboard_tenancy::{Tenant, TenantId, UserId};
use uuid::Uuid;

use crate::limits::{CallLimits, Limit, OVER_LIMIT_METRIC};
use crate::registrar::Bindings;
use crate::sip::transport::Connector;
use crate::sip::{
    ClientEvent, Endpoint, IncomingRequest, OutgoingRequest, OutgoingResponse, Peer, TransactionId,
};
use crate::trunks::OutboundTarget;
use legs::stop_ringing;
pub use media::MediaOptions;
use media::{AnchorError, CallMedia, MediaSide};
use reassert::Placement;
use records::CallLog;
use requests::{LegDialog, Local};
use session_timer::{Negotiation, SessionTimer};

/// Calls routed, by how they ended (`answered`, `abandoned`, `rejected`,
/// `failed`).
pub const CALLS_METRIC: &str = "switchboard_edge_calls_total";

/// Whether an INVITE from outside may place a call, and into which
/// tenants.
#[async_trait::async_trait]
pub trait InboundAdmission: Send + Sync + 'static {
    async fn admit(&self, source: IpAddr, request: &Message<'_>) -> Admission;
}

/// The answer of an [`InboundAdmission`].
#[derive(Debug, Clone)]
pub enum Admission {
    /// Admitted by these trunks: (tenant, trunk name), one or more (a
    /// carrier's addresses may serve several tenants).
    Admitted { trunks: Vec<(TenantId, String)> },
    /// Refused with this response (407 challenge, 403).
    Refused(OutgoingResponse),
}

#[async_trait::async_trait]
impl InboundAdmission for crate::trunks::Trunks {
    async fn admit(&self, source: IpAddr, request: &Message<'_>) -> Admission {
        match crate::trunks::Trunks::admit(self, source, request).await {
            crate::trunks::Admission::Admitted(matches) => Admission::Admitted {
                trunks: matches
                    .into_iter()
                    .map(|found| (found.tenant, found.name))
                    .collect(),
            },
            crate::trunks::Admission::Challenge(response)
            | crate::trunks::Admission::Refused(response) => Admission::Refused(response),
        }
    }
}

/// Who places a call from an agent's phone (an INVITE whose From names an
/// account at a tenant's SIP domain).
#[async_trait::async_trait]
pub trait PhoneCallers: Send + Sync + 'static {
    /// `None` when the INVITE is not a phone's (a carrier's call);
    /// otherwise the authenticated tenant and user, or the answer to send
    /// instead (407 challenge, 403, 400, 503).
    async fn caller_of(
        &self,
        request: &Message<'_>,
    ) -> Option<Result<(TenantId, UserId), OutgoingResponse>>;
}

#[async_trait::async_trait]
impl PhoneCallers for crate::registrar::Registrar {
    async fn caller_of(
        &self,
        request: &Message<'_>,
    ) -> Option<Result<(TenantId, UserId), OutgoingResponse>> {
        crate::registrar::Registrar::caller_of(self, request).await
    }
}

/// The tenants' trunks an outbound call is placed through.
#[async_trait::async_trait]
pub trait OutboundTrunks: Send + Sync + 'static {
    /// The usable trunks of `tenant` among `names`, in that order.
    async fn targets(
        &self,
        tenant: TenantId,
        names: &[String],
    ) -> anyhow::Result<Vec<OutboundTarget>>;
}

#[async_trait::async_trait]
impl OutboundTrunks for crate::trunks::Trunks {
    async fn targets(
        &self,
        tenant: TenantId,
        names: &[String],
    ) -> anyhow::Result<Vec<OutboundTarget>> {
        Ok(self.store().outbound_targets(tenant, names).await?)
    }
}

/// Settings of the B2BUA.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// How long a `ring_agent` step rings before the caller gets 480.
    pub ring_timeout: Duration,
    /// Max-Forwards of a leg the edge starts when the caller's INVITE had
    /// more (RFC 3261 §8.1.1.6 recommends 70).
    pub max_forwards: u8,
    /// The retransmission interval T1 of a 2xx until its ACK (§13.3.1.4).
    pub t1: Duration,
    /// How often the edge checks that routing still knows its queued
    /// and connected calls, and re-asserts those it lost ([`reassert`]).
    pub audit_every: Duration,
    /// The longest session interval the edge grants a carrier's leg
    /// (RFC 4028 Session-Expires; [`session_timer`]).
    pub session_expires: Duration,
    /// The shortest it accepts (Min-SE; RFC 4028 sets 90 s as the floor
    /// of any deployment).
    pub min_se: Duration,
    /// How long a trunk's server may leave an outbound INVITE without any
    /// answer before its next server, or the next trunk, is tried.
    pub trunk_response_timeout: Duration,
}

impl Default for CallOptions {
    fn default() -> Self {
        Self {
            ring_timeout: Duration::from_secs(30),
            max_forwards: 70,
            t1: Duration::from_millis(500),
            audit_every: Duration::from_secs(5),
            session_expires: Duration::from_secs(1800),
            min_se: Duration::from_secs(90),
            trunk_response_timeout: Duration::from_secs(5),
        }
    }
}

/// The edge's calls. Cheap to clone.
#[derive(Clone)]
pub struct B2bua {
    inner: Arc<Inner>,
}

struct Inner {
    call_routing: Arc<dyn CallRoutingApi>,
    acd: Arc<dyn RoutingApi>,
    bindings: Bindings,
    admission: Arc<dyn InboundAdmission>,
    log: CallLog,
    endpoint: OnceLock<Endpoint>,
    /// Opens connections to trunks reached over TCP or TLS.
    connector: OnceLock<Connector>,
    /// The relay calls' media is anchored at, when set.
    media: OnceLock<MediaOptions>,
    local: OnceLock<Local>,
    options: CallOptions,
    limits: Option<CallLimits>,
    /// Agents' outbound calls, when set ([`B2bua::with_outbound`]).
    phones: Option<Arc<dyn PhoneCallers>>,
    trunks: Option<Arc<dyn OutboundTrunks>>,
    state: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    calls: HashMap<ContactId, Call>,
    /// The caller's INVITE transaction → its call.
    by_invite: HashMap<TransactionId, ContactId>,
    /// Both legs' dialogs, by Call-ID and the edge's tag.
    by_dialog: HashMap<String, (ContactId, Side)>,
    /// INVITEs cancelled before routing decided.
    cancelled: HashSet<TransactionId>,
    /// Tenants whose ACD notices are watched.
    watched: HashSet<TenantId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Caller,
    Agent(u64),
}

fn dialog_key(call_id: &str, local_tag: &str) -> String {
    format!("{call_id};{local_tag}")
}

/// What the call's record says of it.
#[derive(Debug, Clone)]
struct Facts {
    tenant: TenantId,
    number: String,
    caller: String,
    trunk: String,
    started_at: DateTime<Utc>,
    /// Who answered, and when (for an outbound call: the agent who
    /// placed it, when the called party answered).
    answered: Option<(AgentId, DateTime<Utc>)>,
    /// The agent who placed an outbound call; `None` for an inbound one.
    placed_by: Option<AgentId>,
    /// What the media relay received from the caller's side and the
    /// callee's, read as an answered call ends.
    media: (Option<events::MediaQuality>, Option<events::MediaQuality>),
}

impl Facts {
    /// `inbound` or `outbound`, as the call's events say.
    fn direction(&self) -> &'static str {
        if self.placed_by.is_some() {
            "outbound"
        } else {
            "inbound"
        }
    }
}

/// How a call ended, as `call.ended` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Answered,
    Abandoned,
    Unanswered,
    EndedByFlow,
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Abandoned => "abandoned",
            Outcome::Unanswered => "unanswered",
            Outcome::EndedByFlow => "ended_by_flow",
            Outcome::Failed => "failed",
        }
    }
}

/// Who ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndedBy {
    Caller,
    Agent,
    /// The party an agent's outbound call rang.
    Callee,
    Edge,
}

impl EndedBy {
    fn as_str(self) -> &'static str {
        match self {
            EndedBy::Caller => "caller",
            EndedBy::Agent => "agent",
            EndedBy::Callee => "callee",
            EndedBy::Edge => "edge",
        }
    }
}

struct Call {
    tenant: Tenant,
    facts: Facts,
    caller: CallerLeg,
    phase: Phase,
    legs: Vec<AgentLeg>,
    next_leg: u64,
    /// 180 (or 183) was sent to the caller.
    alerting: bool,
    /// Its queue, arrival and priority once routing queued it.
    placement: Option<Placement>,
    /// Its place among its tenant's calls in progress ([`CallLimits`]).
    slot: Option<Uuid>,
    /// The caller's leg's session timer, once negotiated.
    session: Option<SessionTimer>,
    /// An agent's outbound call: the caller's leg is the agent's phone,
    /// the other legs are attempts through trunks.
    outbound: Option<outbound::Dialing>,
    /// Rung to its agent directly and answered: routing's ACD holds it as
    /// the agent's contact, to end when the call ends.
    connected_directly: bool,
    /// Its media, anchored at the edge's relay ([`media`]); `None` when
    /// the edge relays no media or the caller sent no offer.
    media: Option<CallMedia>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// In routing's flow, or waiting in a queue.
    Waiting,
    /// Ringing `agent`: for an ACD offer (`report` the answer), directly
    /// (a `ring_agent` step), or after the agent accepted on the desktop.
    Ringing {
        agent: AgentId,
        mode: RingMode,
    },
    Connected {
        leg: u64,
    },
    Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RingMode {
    Offer,
    Direct,
    Accepted,
    /// An agent's outbound call, ringing the called party through a trunk.
    Outbound,
}

struct CallerLeg {
    invite_tx: TransactionId,
    peer: Peer,
    invite: Bytes,
    local_tag: String,
    /// The caller's number, as agents' phones show it.
    number: String,
    max_forwards: u8,
    dialog: Option<LegDialog>,
    acked: Arc<AtomicBool>,
}

struct AgentLeg {
    id: u64,
    agent: AgentId,
    tx: TransactionId,
    peer: Peer,
    invite: Bytes,
    dialog: Option<LegDialog>,
    state: LegState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LegState {
    Ringing,
    Answered,
    Done,
}

fn parse_bytes(bytes: &[u8]) -> Option<Message<'_>> {
    parse(bytes, Transport::Datagram, &Limits::default())
        .ok()
        .flatten()
        .map(|(message, _)| message)
}

fn status_of(message: &Message<'_>) -> u16 {
    match message.start {
        StartLine::Response { code, .. } => code,
        StartLine::Request { .. } => 0,
    }
}

/// A name-addr's URI part alone, without parameters (tags).
fn party(value: &str) -> Option<String> {
    parse_name_addr(value)
        .ok()
        .map(|name_addr| format!("<{}>", name_addr.uri))
}

/// The number dialed: the Request-URI's user part without visual
/// separators, `+` added to bare digits (carriers often leave it out).
/// A carrier that delivers calls to the binding a trunk registered sends
/// them to the edge's Contact (the trunk's username), with the number in
/// the To header: when the Request-URI's user is no number, the To's is
/// taken.
pub fn dialed_number(request: &Message<'_>) -> Option<String> {
    let StartLine::Request { uri, .. } = request.start else {
        return None;
    };
    let number_of = |uri: &str| {
        let user = parse_sip_uri(uri).ok()?.user?;
        let user = user.split(';').next().unwrap_or(user);
        let digits: String = user
            .chars()
            .filter(|c| !matches!(c, '-' | '.' | '(' | ')' | ' '))
            .collect();
        let bare = digits.strip_prefix('+').unwrap_or(&digits);
        let number = !bare.is_empty() && bare.chars().all(|c| c.is_ascii_digit());
        Some((format!("+{bare}"), number, digits))
    };
    let (normalized, number, as_written) = number_of(uri)?;
    if number {
        return Some(normalized);
    }
    let to = request
        .header("To")
        .and_then(|to| parse_name_addr(&to.value).ok())
        .and_then(|to| number_of(to.uri));
    match to {
        Some((normalized, true, _)) => Some(normalized),
        _ => Some(as_written),
    }
}

/// The caller's number: the P-Asserted-Identity's (RFC 3325) when the
/// trunk sent one, else the From's user part; `anonymous` when withheld.
pub fn caller_number(request: &Message<'_>) -> String {
    let from_header = |name: &str| {
        let header = request.header(name)?;
        let first = split_list(&header.value).ok()?.into_iter().next()?;
        let uri = parse_name_addr(first).ok()?.uri;
        if let Some(tel) = uri.strip_prefix("tel:") {
            return Some(tel.split(';').next().unwrap_or(tel).to_owned());
        }
        parse_sip_uri(uri).ok()?.user.map(str::to_owned)
    };
    from_header("P-Asserted-Identity")
        .or_else(|| from_header("From"))
        .filter(|user| !user.is_empty())
        .unwrap_or_else(|| "anonymous".to_owned())
}

impl B2bua {
    pub fn new(
        call_routing: Arc<dyn CallRoutingApi>,
        acd: Arc<dyn RoutingApi>,
        bindings: Bindings,
        admission: Arc<dyn InboundAdmission>,
        log: CallLog,
        options: CallOptions,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                call_routing,
                acd,
                bindings,
                admission,
                log,
                endpoint: OnceLock::new(),
                connector: OnceLock::new(),
                media: OnceLock::new(),
                local: OnceLock::new(),
                options,
                limits: None,
                phones: None,
                trunks: None,
                state: Mutex::new(Table::default()),
            }),
        }
    }

    /// Holds new calls to their tenants' plan limits ([`CallLimits`]).
    /// Call before sharing the B2BUA.
    pub fn with_limits(mut self, limits: CallLimits) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.limits = Some(limits),
            None => tracing::warn!("the B2BUA is shared already; call limits stay off"),
        }
        self
    }

    /// Places agents' outbound calls: an INVITE from a phone (`phones`
    /// says whose) goes out through the trunks routing's outbound rules
    /// name (`trunks` has their settings). Call before sharing the B2BUA.
    pub fn with_outbound(
        mut self,
        phones: Arc<dyn PhoneCallers>,
        trunks: Arc<dyn OutboundTrunks>,
    ) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => {
                inner.phones = Some(phones);
                inner.trunks = Some(trunks);
            }
            None => tracing::warn!("the B2BUA is shared already; outbound calls stay off"),
        }
        self
    }

    /// Gives the B2BUA the endpoint it sends on and where it is reached
    /// over UDP (`host:port`, written in its Via and Contact). Until then
    /// INVITEs are answered 503.
    pub fn attach(&self, endpoint: Endpoint, sent_by: String) {
        if self.inner.endpoint.set(endpoint).is_ok() {
            self.start_audit();
        }
        let _ = self.inner.local.set(Local {
            sent_by,
            transport: "UDP",
        });
    }

    /// Gives the B2BUA the connector it reaches trunks over TCP and TLS
    /// with; until then such trunks are skipped.
    pub fn attach_connector(&self, connector: Connector) {
        let _ = self.inner.connector.set(connector);
    }

    /// Anchors the media of the calls that start from now on at
    /// `options.relay` ([`media`]); until then SDP passes unchanged.
    pub fn attach_media(&self, options: MediaOptions) {
        let _ = self.inner.media.set(options);
    }

    /// Calls in progress on this edge.
    pub fn calls(&self) -> usize {
        self.lock().calls.len()
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn endpoint(&self) -> Option<&Endpoint> {
        self.inner.endpoint.get()
    }

    fn local(&self) -> Option<&Local> {
        self.inner.local.get()
    }

    /// A request the B2BUA answers: a new INVITE, or one inside a call's
    /// dialog.
    pub fn on_request(&self, request: IncomingRequest) {
        let this = self.clone();
        tokio::spawn(async move {
            let in_dialog = {
                let message = request.message();
                message
                    .header("To")
                    .and_then(|to| parse_name_addr(&to.value).ok()?.tag().map(str::to_owned))
            };
            match in_dialog {
                Some(tag) => this.in_dialog(request, &tag).await,
                None => this.new_invite(request).await,
            }
        });
    }

    /// The caller's INVITE `invite` was cancelled.
    pub fn on_cancelled(&self, invite: TransactionId) {
        let call = {
            let mut table = self.lock();
            match table.by_invite.get(&invite).copied() {
                Some(call) => Some(call),
                None => {
                    table.cancelled.insert(invite);
                    None
                }
            }
        };
        let Some(endpoint) = self.endpoint() else {
            return;
        };
        match call {
            Some(call) => {
                let (tenant, outbound) = {
                    let table = self.lock();
                    let entry = table.calls.get(&call);
                    (
                        entry.map(|entry| entry.tenant.clone()),
                        entry.is_some_and(|entry| entry.outbound.is_some()),
                    )
                };
                if outbound {
                    // The agent gave up dialing: routing hears the end
                    // from `end_before_answer`.
                    self.end_before_answer(call, 487, Outcome::Unanswered, EndedBy::Agent);
                } else if self.end_before_answer(call, 487, Outcome::Abandoned, EndedBy::Caller)
                    && let Some(tenant) = tenant
                {
                    metrics::counter!(CALLS_METRIC, "outcome" => "abandoned").increment(1);
                    self.report_abandoned_in(tenant, call);
                }
            }
            None => {
                let _ = endpoint.respond(invite, OutgoingResponse::new(487));
            }
        }
    }

    /// An ACK outside a transaction: the caller's ACK of our 2xx.
    pub fn on_ack(&self, ack: Bytes) {
        let Some(message) = parse_bytes(&ack) else {
            return;
        };
        let Some(key) = dialog_key_of(&message) else {
            return;
        };
        let table = self.lock();
        if let Some((call, Side::Caller)) = table.by_dialog.get(&key)
            && let Some(call) = table.calls.get(call)
        {
            call.caller.acked.store(true, Ordering::Relaxed);
        }
    }

    async fn new_invite(&self, request: IncomingRequest) {
        let Some(local) = self.local().cloned() else {
            let _ = request.respond(OutgoingResponse::new(503).header("Retry-After", "5"));
            return;
        };
        let message = request.message();
        if message.method() != Some(Method::Invite) {
            let _ = request.respond(OutgoingResponse::new(481));
            return;
        }
        let max_forwards = message
            .header("Max-Forwards")
            .and_then(|value| value.value.trim().parse::<u32>().ok())
            .unwrap_or(70);
        if max_forwards == 0 {
            let _ = request.respond(OutgoingResponse::new(483));
            return;
        }
        if looped(&message, &local) {
            let _ = request.respond(OutgoingResponse::new(482));
            return;
        }
        let session = match session_timer::negotiate(&message, &self.inner.options) {
            Negotiation::TooSmall => {
                let _ = request.respond(session_timer::too_small(self.inner.options.min_se));
                return;
            }
            Negotiation::None => None,
            Negotiation::Timer {
                interval,
                refresher,
                required,
            } => Some(SessionTimer {
                interval,
                refresher,
                required,
                refreshed_at: std::time::Instant::now(),
            }),
        };
        if let Some(phones) = &self.inner.phones {
            match phones.caller_of(&message).await {
                None => {}
                Some(Ok((tenant, user))) => {
                    drop(message);
                    self.place_outbound(request, tenant, user, max_forwards, session)
                        .await;
                    return;
                }
                Some(Err(response)) => {
                    let _ = request.respond(response);
                    return;
                }
            }
        }
        let trunks = match self
            .inner
            .admission
            .admit(request.peer.remote().ip(), &message)
            .await
        {
            Admission::Admitted { trunks } => trunks,
            Admission::Refused(response) => {
                let _ = request.respond(response);
                return;
            }
        };
        let Some(number) = dialed_number(&message) else {
            let _ = request.respond(OutgoingResponse::new(404));
            return;
        };
        let media = match self.anchor_media(&message) {
            Ok(media) => media,
            Err(error) => {
                tracing::debug!(%number, %error, "the caller's media cannot be anchored");
                let _ = request
                    .respond(OutgoingResponse::new(error.status()).reason(error.to_string()));
                return;
            }
        };
        let caller = caller_number(&message);
        let started_at = Utc::now();
        let mut tenants: Vec<TenantId> = trunks.iter().map(|(tenant, _)| *tenant).collect();
        tenants.sort_unstable();
        tenants.dedup();
        let names: Vec<&str> = trunks.iter().map(|(_, name)| name.as_str()).collect();
        let trunk_of = |tenant: TenantId| {
            trunks
                .iter()
                .find(|(owner, _)| *owner == tenant)
                .map(|(_, name)| name.clone())
                .unwrap_or_default()
        };
        // The call's place among its tenant's calls: taken now when one
        // tenant's trunks alone admitted it, else once routing says whose
        // number it is (tenants at a limit are named to routing).
        let slot = Uuid::new_v4();
        let mut reserved = None;
        let mut over_limit = Vec::new();
        if let Some(limits) = &self.inner.limits {
            if let [only] = tenants.as_slice() {
                if let Some(limit) = limits.reserve(*only, slot).await {
                    self.refuse_over_limit(
                        &request,
                        *only,
                        limit,
                        &number,
                        &caller,
                        &trunk_of(*only),
                    );
                    return;
                }
                reserved = Some(*only);
            } else {
                for tenant in &tenants {
                    if let Some(limit) = limits.over(*tenant).await {
                        over_limit.push((*tenant, limit));
                    }
                }
            }
        }
        let release_reserved = || {
            if let (Some(limits), Some(tenant)) = (self.inner.limits.clone(), reserved) {
                tokio::spawn(async move { limits.release(tenant, slot).await });
            }
        };
        let inbound = InboundCall {
            number: number.clone(),
            caller: caller.clone(),
            trunk: names.join(", "),
            attributes: serde_json::Map::new(),
            admitted_tenants: tenants,
            over_limit: over_limit.iter().map(|(tenant, _)| *tenant).collect(),
        };
        // Routing unreachable (a replica just lost, a tenant moving to
        // another replica): asked again twice, a moment apart, before the
        // carrier hears 503. A refusal is a decision, never asked again.
        let mut decision = self.inner.call_routing.new_call(inbound.clone()).await;
        for _ in 0..2 {
            match &decision {
                Err(error) if error.kind == switchboard_rpc::ErrorKind::Unavailable => {
                    tracing::debug!(%number, %error, "routing unavailable; asking again");
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    decision = self.inner.call_routing.new_call(inbound.clone()).await;
                }
                _ => break,
            }
        }
        let (tenant, call, step) = match decision {
            Ok(CallDecision::Accept { tenant, call, step }) => (tenant, call, step),
            Ok(CallDecision::OverLimit { tenant }) => {
                release_reserved();
                // The limit the edge found the tenant at, as it told routing.
                let Some(&(_, limit)) = over_limit.iter().find(|(at, _)| *at == tenant) else {
                    tracing::warn!(%tenant, "routing named a tenant the edge did not say is at a limit");
                    let _ = request.respond(OutgoingResponse::new(500));
                    return;
                };
                self.refuse_over_limit(
                    &request,
                    tenant,
                    limit,
                    &number,
                    &caller,
                    &trunk_of(tenant),
                );
                return;
            }
            Ok(CallDecision::Reject { sip_status, reason }) => {
                release_reserved();
                tracing::debug!(%number, sip_status, %reason, "call rejected by routing");
                metrics::counter!(CALLS_METRIC, "outcome" => "rejected").increment(1);
                let _ = request.respond(OutgoingResponse::new(sip_status));
                return;
            }
            Err(error) => {
                release_reserved();
                tracing::warn!(%number, %error, "routing could not take a call");
                metrics::counter!(CALLS_METRIC, "outcome" => "failed").increment(1);
                let _ = request.respond(OutgoingResponse::new(503).header("Retry-After", "5"));
                return;
            }
        };
        // The trunk of the tenant that took the call.
        let trunk_name = trunk_of(tenant);
        let slot = match &self.inner.limits {
            Some(limits) => {
                if reserved.is_none() {
                    limits.occupy(tenant, slot).await;
                    limits.count_arrival(tenant).await;
                }
                Some(slot)
            }
            None => None,
        };
        let facts = Facts {
            tenant,
            number: number.clone(),
            caller: caller.clone(),
            trunk: trunk_name.clone(),
            started_at,
            answered: None,
            placed_by: None,
            media: (None, None),
        };
        let cancelled = self.take_call(
            &request,
            call,
            facts.clone(),
            max_forwards,
            Phase::Waiting,
            slot,
            session,
            None,
            media,
        );
        if cancelled {
            if let (Some(limits), Some(slot)) = (&self.inner.limits, slot) {
                limits.release(tenant, slot).await;
            }
            // The 487 went out with the CANCEL; routing forgets the call.
            self.record_end(call, &facts, Outcome::Abandoned, EndedBy::Caller, 487);
            self.report_abandoned_in(Tenant::whole(tenant), call);
            return;
        }
        self.watch(tenant);
        self.run_step(call, step).await;
    }

    /// Holds the new call `call` (its caller's INVITE `request`) from now
    /// on and records its `call.started`, unless the INVITE was cancelled
    /// while routing decided: then true, and nothing is held.
    #[allow(clippy::too_many_arguments)]
    fn take_call(
        &self,
        request: &IncomingRequest,
        call: ContactId,
        facts: Facts,
        max_forwards: u32,
        phase: Phase,
        slot: Option<Uuid>,
        session: Option<SessionTimer>,
        outbound: Option<outbound::Dialing>,
        media: Option<CallMedia>,
    ) -> bool {
        let cancelled = {
            let mut table = self.lock();
            if table.cancelled.remove(&request.id) {
                true
            } else {
                table.by_invite.insert(request.id, call);
                table.calls.insert(
                    call,
                    Call {
                        tenant: Tenant::whole(facts.tenant),
                        facts: facts.clone(),
                        caller: CallerLeg {
                            invite_tx: request.id,
                            peer: request.peer.clone(),
                            invite: request.bytes.clone(),
                            local_tag: request.to_tag.clone(),
                            number: facts.caller.clone(),
                            max_forwards: u8::try_from(max_forwards.saturating_sub(1))
                                .unwrap_or(u8::MAX)
                                .min(self.inner.options.max_forwards),
                            dialog: None,
                            acked: Arc::new(AtomicBool::new(false)),
                        },
                        phase,
                        legs: Vec::new(),
                        next_leg: 0,
                        alerting: false,
                        placement: None,
                        slot,
                        session,
                        outbound,
                        connected_directly: false,
                        media,
                    },
                );
                false
            }
        };
        self.inner.log.record(
            facts.tenant,
            facts.started_at,
            Payload::CallStarted(events::CallStarted {
                call_id: call.to_string(),
                number: facts.number.clone(),
                caller: facts.caller.clone(),
                trunk: facts.trunk.clone(),
                direction: facts.direction().to_owned(),
                agent_id: facts
                    .placed_by
                    .map(|agent| agent.to_string())
                    .unwrap_or_default(),
            }),
        );
        cancelled
    }

    /// Carries out routing's steps until the call waits or ends.
    async fn run_step(&self, call: ContactId, mut step: Step) {
        // A flow that loops on prompts alone ends here.
        for _ in 0..64 {
            let Some(tenant) = self.tenant_of(call) else {
                return;
            };
            let input = match &step {
                Step::Play { .. } => Input::PromptPlayed,
                Step::Collect { .. } => Input::NoInput,
                Step::Queued {
                    queue_id,
                    position,
                    status_every_seconds,
                    priority,
                    enqueued_at,
                    ..
                } => {
                    if let Some(entry) = self.lock().calls.get_mut(&call) {
                        entry.placement = Some(Placement {
                            queue: *queue_id,
                            priority: *priority,
                            enqueued_at: *enqueued_at,
                        });
                    }
                    self.alert_caller(call);
                    if position.is_none() {
                        // Already offered when it was queued: the notice
                        // may have gone out before the edge watched.
                        self.ring_current_offer(call).await;
                    }
                    if let Some(seconds) = status_every_seconds {
                        self.poll_queue_status(call, Duration::from_secs(u64::from(*seconds)));
                    }
                    return;
                }
                Step::RingAgent { agent_id } => {
                    self.alert_caller(call);
                    let agent = AgentId::from_uuid(*agent_id);
                    self.ring(call, agent, RingMode::Direct).await;
                    let this = self.clone();
                    let timeout = self.inner.options.ring_timeout;
                    tokio::spawn(async move {
                        tokio::time::sleep(timeout).await;
                        let still_ringing = this.lock().calls.get(&call).is_some_and(|call| {
                            matches!(
                                call.phase,
                                Phase::Ringing {
                                    mode: RingMode::Direct,
                                    ..
                                }
                            )
                        });
                        if still_ringing
                            && this.end_before_answer(call, 480, Outcome::Unanswered, EndedBy::Edge)
                        {
                            metrics::counter!(CALLS_METRIC, "outcome" => "unanswered").increment(1);
                        }
                    });
                    return;
                }
                Step::Voicemail { .. }
                | Step::RingGroup { .. }
                | Step::Transfer { .. }
                | Step::Callback { .. }
                | Step::Hangup { .. } => {
                    tracing::debug!(%call, ?step, "the flow ends the call before an agent");
                    metrics::counter!(CALLS_METRIC, "outcome" => "ended_by_flow").increment(1);
                    self.end_before_answer(call, 480, Outcome::EndedByFlow, EndedBy::Edge);
                    return;
                }
            };
            match self.inner.call_routing.report(&tenant, call, input).await {
                Ok(next) => step = next,
                Err(error) => {
                    tracing::warn!(%call, %error, "routing lost the call's flow");
                    self.end_before_answer(call, 500, Outcome::Failed, EndedBy::Edge);
                    return;
                }
            }
        }
        self.end_before_answer(call, 500, Outcome::Failed, EndedBy::Edge);
    }

    /// Anchors the media `invite` offers at the relay, if the edge has
    /// one and the INVITE carries a session description.
    fn anchor_media(&self, invite: &Message<'_>) -> Result<Option<CallMedia>, AnchorError> {
        let Some(options) = self.inner.media.get() else {
            return Ok(None);
        };
        let sdp = invite
            .header("Content-Type")
            .is_none_or(|kind| kind.value.trim().eq_ignore_ascii_case("application/sdp"));
        if invite.body.is_empty() || !sdp {
            return Ok(None);
        }
        CallMedia::anchor(&options.relay, invite.body).map(Some)
    }

    /// A session description from `from`'s side of `call`, as the other
    /// side gets it: anchored at the relay, or `body` as it is when the
    /// call's media is not anchored.
    fn media_for_other_side(
        &self,
        call: ContactId,
        from: MediaSide,
        body: &[u8],
    ) -> Result<Bytes, AnchorError> {
        if body.is_empty() {
            return Ok(Bytes::new());
        }
        let mut table = self.lock();
        match table
            .calls
            .get_mut(&call)
            .and_then(|entry| entry.media.as_mut())
        {
            Some(media) => media.pass(from, body),
            None => Ok(Bytes::copy_from_slice(body)),
        }
    }

    /// The offer the callee's side of `call` gets: the caller's, anchored
    /// at the relay when the call's media is.
    fn offer_for_callee(entry: &Call) -> Bytes {
        match &entry.media {
            Some(media) => media.offer_for_callee(),
            None => parse_bytes(&entry.caller.invite)
                .map(|invite| Bytes::copy_from_slice(invite.body))
                .unwrap_or_default(),
        }
    }

    fn tenant_of(&self, call: ContactId) -> Option<Tenant> {
        self.lock().calls.get(&call).map(|call| call.tenant.clone())
    }

    /// Sends the caller 180 once.
    fn alert_caller(&self, call: ContactId) {
        let Some(endpoint) = self.endpoint() else {
            return;
        };
        let tx = {
            let mut table = self.lock();
            let Some(call) = table.calls.get_mut(&call) else {
                return;
            };
            if call.alerting {
                return;
            }
            call.alerting = true;
            call.caller.invite_tx
        };
        let _ = endpoint.respond(tx, OutgoingResponse::new(180));
    }

    /// Asks routing where a waiting call stands every `every`, for its
    /// queue's maximum wait: past it, routing answers the overflow step.
    fn poll_queue_status(&self, call: ContactId, every: Duration) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(tenant) = this.tenant_of(call) else {
                    return;
                };
                if !matches!(this.phase_of(call), Some(Phase::Waiting)) {
                    continue;
                }
                match this.inner.call_routing.queue_status(&tenant, call).await {
                    Ok(status) => {
                        if let Some(next) = status.next_step {
                            this.run_step(call, next).await;
                            return;
                        }
                    }
                    Err(error) => tracing::debug!(%call, %error, "queue status unavailable"),
                }
            }
        });
    }

    fn phase_of(&self, call: ContactId) -> Option<Phase> {
        self.lock().calls.get(&call).map(|call| call.phase)
    }

    /// Ends a call not answered yet: the caller gets `code`, ringing legs
    /// are cancelled. False when it was answered or gone.
    fn end_before_answer(
        &self,
        call: ContactId,
        code: u16,
        outcome: Outcome,
        ended_by: EndedBy,
    ) -> bool {
        let Some(endpoint) = self.endpoint() else {
            return false;
        };
        let (tx, ringing, facts, tenant) = {
            let mut table = self.lock();
            let Some(entry) = table.calls.get_mut(&call) else {
                return false;
            };
            if matches!(entry.phase, Phase::Connected { .. } | Phase::Ended) {
                return false;
            }
            entry.phase = Phase::Ended;
            let ringing = stop_ringing(&mut entry.legs, None);
            let tx = entry.caller.invite_tx;
            let facts = entry.facts.clone();
            let tenant = entry.tenant.clone();
            self.forget(&mut table, call);
            (tx, ringing, facts, tenant)
        };
        for leg in ringing {
            let _ = endpoint.cancel(leg);
        }
        let _ = endpoint.respond(tx, OutgoingResponse::new(code));
        self.record_end(call, &facts, outcome, ended_by, code);
        if facts.placed_by.is_some() {
            // The agent was busy with the outbound call from its dial.
            self.report_ended_in(tenant, call);
        }
        true
    }

    fn report_ended_in(&self, tenant: Tenant, call: ContactId) {
        let routing = self.inner.call_routing.clone();
        tokio::spawn(async move {
            if let Err(error) = routing.ended(&tenant, call).await {
                tracing::warn!(%call, %error, "routing did not hear of a call's end");
            }
        });
    }

    /// Drops `call` from the table; its place among its tenant's calls is
    /// given back.
    fn forget(&self, table: &mut Table, call: ContactId) {
        if let Some(entry) = table.calls.get(&call)
            && let (Some(limits), Some(slot)) = (self.inner.limits.clone(), entry.slot)
        {
            let tenant = entry.tenant.id();
            tokio::spawn(async move { limits.release(tenant, slot).await });
        }
        table.calls.remove(&call);
        table.by_invite.retain(|_, id| *id != call);
        table.by_dialog.retain(|_, (id, _)| *id != call);
    }

    /// Answers a new call 503 with Retry-After: `tenant` is at `limit`
    /// (RFC 3261 §21.5.4); `call.refused` says so in its events.
    fn refuse_over_limit(
        &self,
        request: &IncomingRequest,
        tenant: TenantId,
        limit: Limit,
        number: &str,
        caller: &str,
        trunk: &str,
    ) {
        let retry_after = limit.retry_after();
        let _ = request.respond(
            OutgoingResponse::new(503)
                .header("Retry-After", retry_after.to_string())
                .header(
                    "Reason",
                    format!("SIP;cause=503;text=\"{} limit reached\"", limit.name()),
                ),
        );
        tracing::debug!(%tenant, %number, limit = limit.name(), "call over its tenant's limit");
        metrics::counter!(OVER_LIMIT_METRIC, "tenant" => tenant.to_string(), "limit" => limit.name())
            .increment(1);
        metrics::counter!(CALLS_METRIC, "outcome" => "over_limit").increment(1);
        self.inner.log.record(
            tenant,
            Utc::now(),
            Payload::CallRefused(events::CallRefused {
                number: number.to_owned(),
                caller: caller.to_owned(),
                trunk: trunk.to_owned(),
                limit: limit.name().to_owned(),
                limit_value: limit.value(),
                retry_after_seconds: retry_after,
            }),
        );
    }

    fn report_abandoned_in(&self, tenant: Tenant, call: ContactId) {
        let routing = self.inner.call_routing.clone();
        tokio::spawn(async move {
            if let Err(error) = routing.abandoned(&tenant, call).await {
                tracing::warn!(%call, %error, "routing did not hear of an abandoned call");
            }
        });
    }

    /// Writes the call's `call.ended`.
    fn record_end(
        &self,
        call: ContactId,
        facts: &Facts,
        outcome: Outcome,
        ended_by: EndedBy,
        sip_status: u16,
    ) {
        let now = Utc::now();
        let millis = |from: DateTime<Utc>, to: DateTime<Utc>| {
            u64::try_from((to - from).num_milliseconds()).unwrap_or(0)
        };
        let answered_at = facts.answered.map(|(_, at)| at);
        self.inner.log.record(
            facts.tenant,
            now,
            Payload::CallEnded(events::CallEnded {
                call_id: call.to_string(),
                number: facts.number.clone(),
                caller: facts.caller.clone(),
                trunk: facts.trunk.clone(),
                agent_id: facts
                    .answered
                    .map(|(agent, _)| agent.to_string())
                    .unwrap_or_default(),
                outcome: outcome.as_str().to_owned(),
                ended_by: ended_by.as_str().to_owned(),
                sip_status: u32::from(sip_status),
                started_at: Some(switchboard_proto::time::timestamp(facts.started_at)),
                answered_at: answered_at.map(switchboard_proto::time::timestamp),
                wait_ms: millis(facts.started_at, answered_at.unwrap_or(now)),
                talk_ms: answered_at.map_or(0, |at| millis(at, now)),
                duration_ms: millis(facts.started_at, now),
                direction: facts.direction().to_owned(),
                caller_media: facts.media.0,
                callee_media: facts.media.1,
            }),
        );
    }

    /// Ends a connected call from `by`'s side (`None`: the edge's own
    /// decision): BYE to every other leg, and the end reported to routing.
    async fn hang_up(&self, call: ContactId, by: Option<Side>) {
        let Some(local) = self.local().cloned() else {
            return;
        };
        let (tenant, byes, connected, facts, in_acd) = {
            let mut table = self.lock();
            let Some(entry) = table.calls.get_mut(&call) else {
                return;
            };
            let connected = matches!(entry.phase, Phase::Connected { .. });
            // Routing holds an ACD contact only for a call that was queued,
            // an agent's outbound call, or a direct ring the agent answered.
            let in_acd = entry.placement.is_some()
                || entry.facts.placed_by.is_some()
                || entry.connected_directly;
            entry.phase = Phase::Ended;
            let mut byes = Vec::new();
            if by != Some(Side::Caller)
                && let Some(dialog) = entry.caller.dialog.as_mut()
            {
                byes.push((
                    entry.caller.peer.clone(),
                    requests::in_dialog(
                        &local_for(&local, &entry.caller.peer),
                        dialog,
                        "BYE",
                        &[],
                        b"",
                    ),
                ));
            }
            for leg in &mut entry.legs {
                if leg.state == LegState::Answered
                    && by != Some(Side::Agent(leg.id))
                    && let Some(dialog) = leg.dialog.as_mut()
                {
                    byes.push((
                        leg.peer.clone(),
                        requests::in_dialog(&local_for(&local, &leg.peer), dialog, "BYE", &[], b""),
                    ));
                }
            }
            let tenant = entry.tenant.clone();
            let mut facts = entry.facts.clone();
            if connected && let Some(media) = &entry.media {
                facts.media = media.quality();
            }
            self.forget(&mut table, call);
            (tenant, byes, connected, facts, in_acd)
        };
        let outbound = facts.placed_by.is_some();
        let ended_by = match by {
            // The caller's leg of an outbound call is the agent's phone.
            Some(Side::Caller) if outbound => EndedBy::Agent,
            Some(Side::Caller) => EndedBy::Caller,
            Some(Side::Agent(_)) if outbound => EndedBy::Callee,
            Some(Side::Agent(_)) => EndedBy::Agent,
            None => EndedBy::Edge,
        };
        let outcome = if connected {
            Outcome::Answered
        } else {
            Outcome::Failed
        };
        self.record_end(call, &facts, outcome, ended_by, 200);
        if let Some(endpoint) = self.endpoint() {
            for (peer, bye) in byes {
                // The BYE's own transaction retransmits it; its answer
                // matters to nobody.
                let _ = endpoint.send_request(Bytes::from(bye), peer);
            }
        }
        if in_acd
            && (connected || outbound)
            && let Err(error) = self.inner.call_routing.ended(&tenant, call).await
        {
            tracing::warn!(%call, %error, "routing did not hear of a call's end");
        }
    }
}

/// The key of the dialog an in-dialog message names: its Call-ID and the
/// edge's tag (the To tag of a request sent to the edge).
fn dialog_key_of(message: &Message<'_>) -> Option<String> {
    let call_id = message.header("Call-ID")?;
    let to = parse_name_addr(&message.header("To")?.value).ok()?;
    Some(dialog_key(&call_id.value, to.tag()?))
}

/// Whether `request` already passed through this edge: a Via of ours
/// (our sent-by with our branch prefix) is in it (RFC 3261 §16.3).
fn looped(request: &Message<'_>, local: &Local) -> bool {
    request.headers_named("Via").any(|header| {
        parse_via(&header.value).is_ok_and(|vias| {
            vias.iter().any(|via| {
                let sent_by = match via.port {
                    Some(port) => format!("{}:{port}", via.host),
                    None => via.host.to_owned(),
                };
                sent_by == local.sent_by
                    && via
                        .branch()
                        .is_some_and(|branch| branch.starts_with(requests::BRANCH_PREFIX))
            })
        })
    })
}

/// The edge as a leg over `peer` names itself: the Via transport (and
/// Contact parameter) of that leg's own transport.
fn local_for(local: &Local, peer: &Peer) -> Local {
    Local {
        sent_by: local.sent_by.clone(),
        transport: peer.via_transport(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> Vec<u8> {
        text.replace('\n', "\r\n").into_bytes()
    }

    #[test]
    fn the_dialed_number_is_e164_and_the_caller_prefers_the_asserted_identity() {
        let bytes = request(
            "INVITE sip:4420-7946-0000;npdi@carrier.example SIP/2.0\n\
             Via: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bKa\n\
             From: <sip:+15550001@carrier.example>;tag=1\n\
             To: <sip:442079460000@carrier.example>\n\
             P-Asserted-Identity: <tel:+15559999;cpc=ordinary>\n\
             Call-ID: x\nCSeq: 1 INVITE\nMax-Forwards: 70\nContent-Length: 0\n\n",
        );
        let message = parse_bytes(&bytes).unwrap();
        assert_eq!(dialed_number(&message).as_deref(), Some("+442079460000"));
        assert_eq!(caller_number(&message), "+15559999");
    }

    #[test]
    fn a_call_to_a_registered_binding_dials_the_number_in_to() {
        let bytes = request(
            "INVITE sip:trunkuser@192.0.2.1:5060 SIP/2.0\n\
             Via: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bKa\n\
             From: <sip:+15550001@carrier.example>;tag=1\n\
             To: <sip:1-212-555-0199@carrier.example>\n\
             Call-ID: x\nCSeq: 1 INVITE\nMax-Forwards: 70\nContent-Length: 0\n\n",
        );
        let message = parse_bytes(&bytes).unwrap();
        assert_eq!(dialed_number(&message).as_deref(), Some("+12125550199"));
        // Neither is a number: the Request-URI's user as written.
        let bytes = request(
            "INVITE sip:sales@192.0.2.1 SIP/2.0\n\
             Via: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bKa\n\
             From: <sip:+15550001@carrier.example>;tag=1\n\
             To: <sip:support@carrier.example>\n\
             Call-ID: x\nCSeq: 1 INVITE\nMax-Forwards: 70\nContent-Length: 0\n\n",
        );
        let message = parse_bytes(&bytes).unwrap();
        assert_eq!(dialed_number(&message).as_deref(), Some("sales"));
    }

    #[test]
    fn a_withheld_caller_is_anonymous() {
        let bytes = request(
            "INVITE sip:+442079460000@edge SIP/2.0\n\
             Via: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bKa\n\
             From: \"Anonymous\" <sip:@anonymous.invalid>;tag=1\n\
             To: <sip:+442079460000@edge>\n\
             Call-ID: x\nCSeq: 1 INVITE\nMax-Forwards: 70\nContent-Length: 0\n\n",
        );
        let message = parse_bytes(&bytes).unwrap();
        assert_eq!(caller_number(&message), "anonymous");
        assert_eq!(dialed_number(&message).as_deref(), Some("+442079460000"));
    }

    #[test]
    fn a_request_that_passed_through_the_edge_is_a_loop() {
        let local = Local {
            sent_by: "192.0.2.1:5060".into(),
            transport: "UDP",
        };
        let ours = format!(
            "INVITE sip:+1@edge SIP/2.0\n\
             Via: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bKa\n\
             Via: SIP/2.0/UDP 192.0.2.1:5060;branch={}1;rport\n\
             From: <sip:a@b>;tag=1\nTo: <sip:+1@edge>\n\
             Call-ID: x\nCSeq: 1 INVITE\nMax-Forwards: 70\nContent-Length: 0\n\n",
            requests::BRANCH_PREFIX
        );
        let bytes = request(&ours);
        assert!(looped(&parse_bytes(&bytes).unwrap(), &local));
        let theirs = ours.replace(requests::BRANCH_PREFIX, "z9hG4bKother");
        let bytes = request(&theirs);
        assert!(!looped(&parse_bytes(&bytes).unwrap(), &local));
    }
}
