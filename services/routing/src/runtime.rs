//! The routing runtime every adapter calls: [`Routing`] runs a tenant's
//! [`Operation`]s and [`Query`]s on whichever instance owns the tenant,
//! tells every instance what happened ([`Notice`]s, which the agents'
//! WebSockets forward), moves the routing events to the outbox, ticks
//! offers and wrap-ups when they are due, and takes over tenants whose
//! owner died.
//!
//! Instances talk through the cache's publish/subscribe, so they need no
//! address of each other:
//! - `routing:{<tenant>}:ops`: a [`Request`] from an instance that does
//!   not own the tenant; only the owner answers (silence otherwise), on
//! - `routing:reply:<instance>`: the [`Reply`];
//! - `routing:{<tenant>}:notify`: the [`Notice`] of each operation that
//!   offered, withdrew or changed something.
//!
//! A call whose answer does not come in time is asked again with the same
//! request id. The owner remembers the operations it ran for others (by
//! id, for [`SERVED_MEMORY`]): an operation still running is not started
//! twice, and one that ran is answered again with its first answer, so a
//! slow or lost reply never applies an operation twice (an extension of
//! wrap-up added twice) nor turns its success into a refusal (an accept
//! refused as already accepted). Only if the tenant moved to another
//! instance between the attempts can the new owner run it again.
//!
//! In `dev` the cache is in process and one instance owns every tenant.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_acd::Outcome;
use switchboard_events::{Event, outbox};
use switchboard_platform::cache::ChannelEvent;
use switchboard_platform::{Cache, Database};
use switchboard_tenancy::{ClientId, Tenant, TenantId};
use tokio::sync::{Notify, broadcast, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use uuid::Uuid;

use crate::host::{EngineHost, HostError, HostOptions};
use crate::metrics;
use switchboard_routing_api::acd::{
    Answer, Notice, NoticeEvent, Notices, Operation, Query, Refusal, RefusalKind, RoutingApi,
    RoutingError,
};

/// Settings of the runtime, from the `[routing]` config section
/// ([`RoutingOptions::from_config`]).
#[derive(Debug, Clone)]
pub struct RoutingOptions {
    pub host: HostOptions,
    /// How often due deadlines are ticked: the resolution of ring timeouts
    /// and wrap-ups. Leases are renewed and free tenants taken over every
    /// quarter of the lease TTL (or this, if longer).
    pub upkeep_every: Duration,
    /// How long a forwarded request waits for the owner's answer.
    pub forward_timeout: Duration,
    /// Events moved to the outbox per transaction.
    pub journal_batch: usize,
}

impl RoutingOptions {
    /// The options a `[routing]` section sets (which the config crate has
    /// validated: the upkeep fits the lease, the batch one statement).
    pub fn from_config(config: &switchboard_config::RoutingConfig) -> Self {
        Self {
            host: HostOptions {
                holder: config
                    .instance_name
                    .clone()
                    .unwrap_or_else(|| HostOptions::default().holder),
                lease_ttl: config.lease_ttl,
            },
            upkeep_every: config.upkeep_every,
            forward_timeout: config.forward_timeout,
            journal_batch: config.journal_batch as usize,
        }
    }
}

impl Default for RoutingOptions {
    /// The defaults of the `[routing]` section.
    fn default() -> Self {
        Self::from_config(&switchboard_config::RoutingConfig::default())
    }
}

/// The notices this instance hears, on one channel per tenant that has
/// listeners: a tenant's notices reach its own listeners only, and a
/// tenant nobody listens to costs nothing.
#[derive(Default)]
struct NoticeHub {
    tenants: SyncMutex<HashMap<TenantId, broadcast::Sender<NoticeEvent>>>,
}

/// Notices a listener may fall behind by before it hears a gap.
const NOTICES_PER_LISTENER: usize = 1024;

impl NoticeHub {
    fn tenants(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<TenantId, broadcast::Sender<NoticeEvent>>> {
        self.tenants
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new listener of `tenant`; forgets the tenants whose listeners all
    /// left meanwhile.
    fn subscribe(&self, tenant: TenantId) -> broadcast::Receiver<NoticeEvent> {
        let mut tenants = self.tenants();
        tenants.retain(|_, sender| sender.receiver_count() > 0);
        tenants
            .entry(tenant)
            .or_insert_with(|| broadcast::channel(NOTICES_PER_LISTENER).0)
            .subscribe()
    }

    /// Sends `notice` to its tenant's listeners; forgets a tenant whose
    /// listeners all left.
    fn publish(&self, notice: Notice) {
        let tenant = notice.tenant;
        let mut tenants = self.tenants();
        if let Some(sender) = tenants.get(&tenant)
            && sender.send(NoticeEvent::Notice(Arc::new(notice))).is_err()
        {
            tenants.remove(&tenant);
        }
    }

    /// Tells every listener that notices may have been lost.
    fn gap(&self) {
        self.tenants()
            .retain(|_, sender| sender.send(NoticeEvent::Gap).is_ok());
    }
}

/// A forwarded call.
#[derive(Debug, Serialize, Deserialize)]
struct Request<Body = RequestBody> {
    id: Uuid,
    reply_to: Uuid,
    tenant: TenantId,
    at: DateTime<Utc>,
    body: Body,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RequestBody {
    Execute(Operation),
    Query(Query),
}

#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    id: Uuid,
    result: Result<ReplyBody, WireError>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ReplyBody {
    Outcome(Outcome),
    Answer(Answer),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireError {
    Refused(Refusal),
    /// The instance lost the tenant before it could answer: try again.
    Moved,
    Failed(String),
}

fn ops_channel(tenant: TenantId) -> String {
    format!("routing:{{{tenant}}}:ops")
}

fn notify_channel(tenant: TenantId) -> String {
    format!("routing:{{{tenant}}}:notify")
}

fn callback_key(tenant: TenantId, contact: switchboard_acd::ContactId) -> String {
    format!("routing:{{{tenant}}}:callback:{contact}")
}

/// How long a callback waits for an agent at most.
const CALLBACK_TTL: Duration = Duration::from_secs(24 * 3600);

fn reply_channel(instance: Uuid) -> String {
    format!("routing:reply:{instance}")
}

/// Attempts of one call while the tenant's owner changes.
const ATTEMPTS: u32 = 4;

/// How long an owner remembers an operation it ran for another instance:
/// well beyond the attempts of a call at the longest forward timeouts.
const SERVED_MEMORY: Duration = Duration::from_secs(120);

/// Operations this instance ran for other instances, by request id (see
/// the module documentation).
#[derive(Default)]
struct Served {
    /// When it came, and `None` while it runs, then the reply sent.
    replies: HashMap<Uuid, (Instant, Option<Vec<u8>>)>,
    /// Ids in the order they came, to forget them (an id run again after
    /// it did not run is forgotten by its latest arrival).
    arrivals: VecDeque<(Instant, Uuid)>,
}

/// What to do with a forwarded operation.
enum Serve {
    Run,
    /// It is running: its reply will answer this attempt too.
    Running,
    /// It ran: send this reply again.
    Ran(Vec<u8>),
}

impl Served {
    fn begin(&mut self, id: Uuid, now: Instant) -> Serve {
        while let Some((arrived, old)) = self.arrivals.front().copied() {
            if now.duration_since(arrived) < SERVED_MEMORY {
                break;
            }
            self.arrivals.pop_front();
            if self.replies.get(&old).is_some_and(|(at, _)| *at == arrived) {
                self.replies.remove(&old);
            }
        }
        match self.replies.get(&id) {
            Some((_, Some(reply))) => Serve::Ran(reply.clone()),
            Some((_, None)) => Serve::Running,
            None => {
                self.replies.insert(id, (now, None));
                self.arrivals.push_back((now, id));
                Serve::Run
            }
        }
    }

    /// Keeps `reply` for attempts to come, or (`None`: the operation did
    /// not run, the tenant moved or the cache failed) forgets the id so a
    /// later attempt runs it.
    fn finish(&mut self, id: Uuid, reply: Option<Vec<u8>>) {
        match reply {
            Some(reply) => {
                if let Some((_, slot)) = self.replies.get_mut(&id) {
                    *slot = Some(reply);
                }
            }
            None => {
                self.replies.remove(&id);
            }
        }
    }
}

/// The routing runtime. Cheap to clone.
#[derive(Clone)]
pub struct Routing {
    inner: Arc<Inner>,
}

struct Inner {
    host: EngineHost,
    /// Where a tenant's queues and agent profiles come from when its state
    /// is empty (first use, or the cache lost it).
    config: Option<crate::config::RoutingConfig>,
    cache: Arc<dyn Cache>,
    database: Database,
    options: RoutingOptions,
    instance: Uuid,
    waiting: SyncMutex<HashMap<Uuid, oneshot::Sender<Result<ReplyBody, WireError>>>>,
    served: SyncMutex<Served>,
    notices: NoticeHub,
    journal_wake: Notify,
}

impl Routing {
    /// A runtime on `cache` (routing state, leases, messages between
    /// instances) and `database` (the outbox of its events). Call
    /// [`Routing::start`] to run its background tasks.
    pub fn new(cache: Arc<dyn Cache>, database: Database, options: RoutingOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                host: EngineHost::new(cache.clone(), options.host.clone()),
                config: None,
                cache,
                database,
                options,
                instance: Uuid::new_v4(),
                waiting: SyncMutex::new(HashMap::new()),
                served: SyncMutex::new(Served::default()),
                notices: NoticeHub::default(),
                journal_wake: Notify::new(),
            }),
        }
    }

    /// Loads a tenant's queues and agent profiles from `config` whenever its
    /// routing state starts empty. Call before sharing the runtime.
    pub fn with_config(mut self, config: crate::config::RoutingConfig) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.config = Some(config),
            None => warn!("routing is shared already; its configuration loader stays off"),
        }
        self
    }

    /// Loads the configuration into a tenant whose state this instance
    /// just loaded empty.
    async fn sync_if_fresh(&self, tenant: TenantId) {
        let Some(config) = &self.inner.config else {
            return;
        };
        match self.inner.host.claim_fresh(tenant).await {
            Ok(true) => {}
            // Not fresh, or not ours: the owner does it.
            Ok(false) | Err(_) => return,
        }
        let at = Utc::now();
        let queues = config.queue_configs(tenant).await;
        let profiles = config.agent_profiles(tenant).await;
        let (queues, profiles) = match (queues, profiles) {
            (Ok(queues), Ok(profiles)) => (queues, profiles),
            (Err(error), _) | (_, Err(error)) => {
                warn!(%tenant, %error, "routing configuration not loaded");
                return;
            }
        };
        let count = (queues.len(), profiles.len());
        let result = self
            .inner
            .host
            .execute(tenant, move |engine| {
                let mut outcome = Outcome::default();
                for config in queues {
                    merge(&mut outcome, engine.upsert_queue(config, at)?);
                }
                for profile in profiles {
                    merge(&mut outcome, engine.upsert_agent_profile(profile, at)?);
                }
                Ok(outcome)
            })
            .await;
        count_operation("sync_config", &result);
        match result {
            Ok(outcome) => {
                debug!(%tenant, queues = count.0, agents = count.1, "routing configuration loaded");
                metrics::outcome(&outcome, metrics::Cause::Other, None);
                self.after(tenant, &outcome).await;
            }
            Err(error) => warn!(%tenant, %error, "routing configuration not loaded"),
        }
    }

    /// Marks a queued contact as a callback to `number` (virtual hold).
    pub async fn set_callback_number(
        &self,
        tenant: TenantId,
        contact: switchboard_acd::ContactId,
        number: &str,
    ) -> Result<(), RoutingError> {
        self.inner
            .cache
            .set(
                &callback_key(tenant, contact),
                number.as_bytes(),
                Some(CALLBACK_TTL),
            )
            .await
            .map_err(|error| RoutingError::Unavailable(error.to_string()))
    }

    /// The number to call back, if the contact is a callback.
    pub async fn callback_number(
        &self,
        tenant: TenantId,
        contact: switchboard_acd::ContactId,
    ) -> Result<Option<String>, RoutingError> {
        let value = self
            .inner
            .cache
            .get(&callback_key(tenant, contact))
            .await
            .map_err(|error| RoutingError::Unavailable(error.to_string()))?;
        Ok(value.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    pub(crate) async fn clear_callback_number(
        &self,
        tenant: TenantId,
        contact: switchboard_acd::ContactId,
    ) -> Result<(), RoutingError> {
        self.inner
            .cache
            .delete(&callback_key(tenant, contact))
            .await
            .map(|_| ())
            .map_err(|error| RoutingError::Unavailable(error.to_string()))
    }

    /// The engine host (tests, benchmarks).
    pub fn host(&self) -> &EngineHost {
        &self.inner.host
    }

    /// The notices of `tenant` heard by this instance from now on, and
    /// no other tenant's. Every instance hears every tenant's notices, so
    /// any instance serves them, whichever owns the tenant.
    pub fn notices_of(&self, tenant: TenantId) -> Notices {
        Notices::local(self.inner.notices.subscribe(tenant))
    }

    /// Runs `operation` on the tenant's ACD, wherever its owner is.
    pub async fn execute(
        &self,
        tenant: TenantId,
        operation: Operation,
    ) -> Result<Outcome, RoutingError> {
        match self.call(tenant, RequestBody::Execute(operation)).await? {
            ReplyBody::Outcome(outcome) => Ok(outcome),
            ReplyBody::Answer(_) => Err(RoutingError::Internal("answer to an operation".into())),
        }
    }

    /// Reads the tenant's ACD, wherever its owner is.
    pub async fn query(&self, tenant: TenantId, query: Query) -> Result<Answer, RoutingError> {
        match self.call(tenant, RequestBody::Query(query)).await? {
            ReplyBody::Answer(answer) => Ok(answer),
            ReplyBody::Outcome(_) => Err(RoutingError::Internal("outcome of a query".into())),
        }
    }

    /// Runs a call here if this instance owns the tenant (or can take
    /// it), else at the owner; retries while the tenant moves.
    async fn call(&self, tenant: TenantId, body: RequestBody) -> Result<ReplyBody, RoutingError> {
        self.sync_if_fresh(tenant).await;
        let at = Utc::now();
        // One id for every attempt: the owner runs the call once.
        let id = Uuid::new_v4();
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            match self.run_here(tenant, at, &body).await {
                Ok(reply) => return Ok(reply),
                Err(HostError::NotOwner(_)) => match self.forward(id, tenant, at, &body).await {
                    Ok(reply) => return Ok(reply),
                    Err(WireError::Refused(refusal)) => return Err(refusal.into()),
                    Err(WireError::Moved) => last = "the tenant moved".into(),
                    Err(WireError::Failed(error)) => last = error,
                },
                Err(error) => match classify(error) {
                    Retry::Again(error) => last = error,
                    Retry::Stop(error) => return Err(error),
                },
            }
        }
        Err(RoutingError::Unavailable(last))
    }

    /// Runs a call on this instance's engine (taking the tenant if its
    /// lease is free); an operation's outcome is announced.
    async fn run_here(
        &self,
        tenant: TenantId,
        at: DateTime<Utc>,
        body: &RequestBody,
    ) -> Result<ReplyBody, HostError> {
        match body {
            RequestBody::Execute(operation) => {
                let operation = operation.clone();
                let name = operation.name();
                let cause = match operation {
                    Operation::Decline { .. } => metrics::Cause::Decline,
                    _ => metrics::Cause::Other,
                };
                // When the contact joined its queue, read before the
                // operation ends its wait (an abandon removes it).
                let mut waited = None;
                let result = self
                    .inner
                    .host
                    .execute(tenant, |engine| {
                        waited = operation.ends_wait_of().and_then(|contact| {
                            let view = engine.contact(contact).ok()?;
                            Some((contact, view.enqueued_at))
                        });
                        operation.apply(engine, at)
                    })
                    .await;
                count_operation(name, &result);
                let outcome = result?;
                metrics::outcome(&outcome, cause, waited);
                self.after(tenant, &outcome).await;
                Ok(ReplyBody::Outcome(outcome))
            }
            RequestBody::Query(query) => Ok(ReplyBody::Answer(
                self.inner
                    .host
                    .read(tenant, |engine| query.answer(engine, at))
                    .await??,
            )),
        }
    }

    /// Tells every instance what an operation did, and wakes the journal
    /// mover.
    async fn after(&self, tenant: TenantId, outcome: &Outcome) {
        if !outcome.agent_events.is_empty() || !outcome.contact_events.is_empty() {
            self.inner.journal_wake.notify_one();
        }
        if let Some(notice) = Notice::of(tenant, outcome) {
            match serde_json::to_vec(&notice) {
                Ok(payload) => {
                    if let Err(error) = self
                        .inner
                        .cache
                        .publish(&notify_channel(tenant), &payload)
                        .await
                    {
                        // Desktops re-read their state after a gap; the
                        // state itself is safe.
                        warn!(%tenant, %error, "routing notice not published");
                    }
                }
                Err(error) => warn!(%tenant, %error, "routing notice not encoded"),
            }
        }
    }

    /// Sends a call to the tenant's owner and waits for its answer.
    async fn forward(
        &self,
        id: Uuid,
        tenant: TenantId,
        at: DateTime<Utc>,
        body: &RequestBody,
    ) -> Result<ReplyBody, WireError> {
        let request = Request {
            id,
            reply_to: self.inner.instance,
            tenant,
            at,
            body,
        };
        let payload =
            serde_json::to_vec(&request).map_err(|error| WireError::Failed(error.to_string()))?;
        let (sender, receiver) = oneshot::channel();
        self.waiting().insert(id, sender);
        let published = self
            .inner
            .cache
            .publish(&ops_channel(tenant), &payload)
            .await;
        let result = match published {
            Ok(()) => {
                match tokio::time::timeout(self.inner.options.forward_timeout, receiver).await {
                    Ok(Ok(result)) => result,
                    Ok(Err(_)) => Err(WireError::Failed("routing stopped".into())),
                    Err(_) => Err(WireError::Failed(format!(
                        "the instance owning tenant {tenant} did not answer within {:?}",
                        self.inner.options.forward_timeout
                    ))),
                }
            }
            Err(error) => Err(WireError::Failed(error.to_string())),
        };
        self.waiting().remove(&id);
        result
    }

    fn waiting(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Uuid, oneshot::Sender<Result<ReplyBody, WireError>>>>
    {
        self.inner
            .waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Answers a forwarded call if this instance owns its tenant; an
    /// operation asked again is answered from [`Served`].
    async fn serve_request(&self, request: Request) {
        let tenant = request.tenant;
        let operation = matches!(request.body, RequestBody::Execute(_));
        if operation {
            let begun = self.served().begin(request.id, Instant::now());
            match begun {
                Serve::Run => {}
                Serve::Running => return,
                Serve::Ran(payload) => {
                    debug!(%tenant, id = %request.id, "routing request asked again, answered again");
                    self.send_reply(tenant, request.reply_to, &payload).await;
                    return;
                }
            }
        }
        if !self.inner.host.owns(tenant).await {
            if operation {
                self.served().finish(request.id, None);
            }
            return;
        }
        let result = self
            .run_here(tenant, request.at, &request.body)
            .await
            .map_err(wire_error);
        // Final answers are kept; a call that did not run is not.
        let ran = matches!(result, Ok(_) | Err(WireError::Refused(_)));
        let reply = Reply {
            id: request.id,
            result,
        };
        match serde_json::to_vec(&reply) {
            Ok(payload) => {
                if operation {
                    self.served()
                        .finish(request.id, ran.then(|| payload.clone()));
                }
                self.send_reply(tenant, request.reply_to, &payload).await;
            }
            Err(error) => {
                if operation {
                    self.served().finish(request.id, None);
                }
                warn!(%tenant, %error, "routing reply not encoded");
            }
        }
    }

    async fn send_reply(&self, tenant: TenantId, reply_to: Uuid, payload: &[u8]) {
        if let Err(error) = self
            .inner
            .cache
            .publish(&reply_channel(reply_to), payload)
            .await
        {
            warn!(%tenant, %error, "routing reply not published");
        }
    }

    fn served(&self) -> std::sync::MutexGuard<'_, Served> {
        self.inner
            .served
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts the background tasks (message listener, upkeep, journal
    /// mover).
    pub async fn start(&self) -> Result<Running, RoutingError> {
        let stop = CancellationToken::new();
        let cache = &self.inner.cache;
        let unavailable = |error: switchboard_platform::Error| {
            RoutingError::Unavailable(format!("cannot subscribe: {error}"))
        };
        let mut ops = cache
            .subscribe("routing:*:ops")
            .await
            .map_err(unavailable)?;
        let mut notify = cache
            .subscribe("routing:*:notify")
            .await
            .map_err(unavailable)?;
        let mut replies = cache
            .subscribe(&reply_channel(self.inner.instance))
            .await
            .map_err(unavailable)?;
        let listener = {
            let routing = self.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        Some(event) = ops.next() => {
                            if let ChannelEvent::Message { payload, .. } = event {
                                match serde_json::from_slice::<Request>(&payload) {
                                    Ok(request) => {
                                        let routing = routing.clone();
                                        tokio::spawn(async move { routing.serve_request(request).await });
                                    }
                                    Err(error) => warn!(%error, "malformed routing request ignored"),
                                }
                            }
                        }
                        Some(event) = replies.next() => {
                            if let ChannelEvent::Message { payload, .. } = event {
                                match serde_json::from_slice::<Reply>(&payload) {
                                    Ok(reply) => {
                                        if let Some(sender) = routing.waiting().remove(&reply.id) {
                                            let _ = sender.send(reply.result);
                                        }
                                    }
                                    Err(error) => warn!(%error, "malformed routing reply ignored"),
                                }
                            }
                        }
                        Some(event) = notify.next() => match event {
                            ChannelEvent::Message { payload, .. } => {
                                match serde_json::from_slice::<Notice>(&payload) {
                                    Ok(notice) => routing.inner.notices.publish(notice),
                                    Err(error) => warn!(%error, "malformed routing notice ignored"),
                                }
                            }
                            ChannelEvent::Gap => routing.inner.notices.gap(),
                        },
                        else => return,
                    }
                }
            })
        };
        let upkeep = {
            let routing = self.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(routing.inner.options.upkeep_every);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                // Leases are renewed and free tenants looked for a few times
                // per lease; due deadlines are ticked on every beat.
                let maintain_every = (routing.inner.options.host.lease_ttl / 4)
                    .max(routing.inner.options.upkeep_every);
                let mut maintained_at: Option<tokio::time::Instant> = None;
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = interval.tick() => {
                            let maintain = maintained_at
                                .is_none_or(|at| at.elapsed() >= maintain_every);
                            if maintain {
                                maintained_at = Some(tokio::time::Instant::now());
                            }
                            routing.upkeep(maintain).await;
                        }
                    }
                }
            })
        };
        let mover = {
            let routing = self.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = routing.inner.journal_wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    routing.move_journals().await;
                }
            })
        };
        Ok(Running {
            routing: self.clone(),
            stop,
            tasks: vec![listener, upkeep, mover],
        })
    }

    /// Renews leases, takes free tenants over, ticks due deadlines.
    async fn upkeep(&self, maintain: bool) {
        let host = &self.inner.host;
        let taken = if maintain {
            match host.maintain().await {
                Ok(taken) => taken,
                Err(error) => {
                    warn!(%error, "routing upkeep failed");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        let now = Utc::now();
        for tenant in host.owned_tenants() {
            let due = taken.contains(&tenant)
                || host
                    .next_deadline(tenant)
                    .await
                    .is_some_and(|deadline| deadline <= now);
            if due {
                let result = host.tick(tenant, now).await;
                count_operation(Operation::Tick.name(), &result);
                match result {
                    Ok(outcome) => {
                        metrics::outcome(&outcome, metrics::Cause::Other, None);
                        self.after(tenant, &outcome).await;
                    }
                    Err(error) => debug!(%tenant, %error, "routing tick skipped"),
                }
            }
        }
        if !taken.is_empty() {
            self.inner.journal_wake.notify_one();
        }
    }

    /// Moves every owned tenant's journaled events to the outbox.
    async fn move_journals(&self) {
        for tenant in self.inner.host.owned_tenants() {
            loop {
                let batch = self
                    .inner
                    .host
                    .journal(tenant, self.inner.options.journal_batch)
                    .await;
                if batch.is_empty() {
                    break;
                }
                let events: Vec<Event> =
                    batch.iter().map(|(_, event)| Event::clone(event)).collect();
                if let Err(error) = self.append_once(tenant, &events).await {
                    warn!(%tenant, %error, "routing events not moved to the outbox yet");
                    break;
                }
                let seqs: Vec<u64> = batch.iter().map(|(seq, _)| *seq).collect();
                if let Err(error) = self.inner.host.journal_done(tenant, &seqs).await {
                    warn!(%tenant, %error, "routing journal not trimmed");
                    break;
                }
                if batch.len() < self.inner.options.journal_batch {
                    break;
                }
            }
        }
    }

    /// Appends the events the outbox does not hold yet (by id), in one
    /// transaction of the tenant.
    async fn append_once(&self, tenant: TenantId, events: &[Event]) -> Result<(), String> {
        let started = Instant::now();
        let appended = self.append_once_untimed(tenant, events).await;
        metrics::write("outbox", started.elapsed());
        appended
    }

    async fn append_once_untimed(&self, tenant: TenantId, events: &[Event]) -> Result<(), String> {
        let database = &self.inner.database;
        let transaction = database
            .begin_tenant(tenant.as_uuid())
            .await
            .map_err(|error| error.to_string())?;
        outbox::append_absent(&transaction, events)
            .await
            .map_err(|error| error.to_string())?;
        transaction
            .commit()
            .await
            .map_err(|error| error.to_string())?;
        Ok(())
    }
}

/// The background tasks of a started [`Routing`].
pub struct Running {
    routing: Routing,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops the tasks, moves what is journaled to the outbox and gives
    /// the leases back, so successors take over at once.
    pub async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        self.routing.move_journals().await;
        self.routing.inner.host.release_all().await;
    }

    /// Stops the tasks at once, keeping the leases until they expire: what
    /// the other instances see when this one crashes (tests).
    pub fn abort(self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn merge(into: &mut Outcome, outcome: Outcome) {
    into.offers.extend(outcome.offers);
    into.withdrawn.extend(outcome.withdrawn);
    into.agent_events.extend(outcome.agent_events);
    into.contact_events.extend(outcome.contact_events);
    into.changed.agents.extend(outcome.changed.agents);
    into.changed.contacts.extend(outcome.changed.contacts);
    into.changed.queues.extend(outcome.changed.queues);
}

/// The ACD in process, for the tenant of each call: what the routing
/// service serves over gRPC ([`crate::grpc_acd`]) and what a node that
/// hosts routing hands its other services.
#[async_trait::async_trait]
impl RoutingApi for Routing {
    async fn execute(
        &self,
        tenant: &Tenant,
        operation: Operation,
    ) -> Result<Outcome, RoutingError> {
        Routing::execute(self, tenant.id(), operation).await
    }

    async fn query(&self, tenant: &Tenant, query: Query) -> Result<Answer, RoutingError> {
        let one_queue = matches!(query, Query::QueueStatsOf { .. });
        match Routing::query(self, tenant.id(), query).await? {
            Answer::QueueStats { queues } => {
                let queues: Vec<_> = queues
                    .into_iter()
                    .filter(|figures| {
                        tenant
                            .clients()
                            .allows(figures.client.map(ClientId::from_uuid))
                    })
                    .collect();
                if one_queue && queues.is_empty() {
                    return Err(RoutingError::Refused(Refusal {
                        kind: RefusalKind::NotFound,
                        message: "queue not found".into(),
                        current_state: None,
                        unknown_agent: None,
                    }));
                }
                Ok(Answer::QueueStats { queues })
            }
            other => Ok(other),
        }
    }

    async fn callback_number(
        &self,
        tenant: &Tenant,
        contact: switchboard_acd::ContactId,
    ) -> Result<Option<String>, RoutingError> {
        Routing::callback_number(self, tenant.id(), contact).await
    }

    async fn notices(&self, tenant: &Tenant) -> Result<Notices, RoutingError> {
        Ok(self.notices_of(tenant.id()))
    }
}

/// Keeps the ACD in step with the configuration: queue and agent-profile
/// changes, told by [`crate::config::RoutingConfig`] after commit, go to
/// the tenant's owner. A change the ACD refuses for now (a queue with
/// contacts, an agent on a call) is logged; the configuration stays as
/// saved and applies to the ACD when the tenant's state is next loaded.
#[async_trait::async_trait]
impl crate::config::ConfigObserver for Routing {
    async fn queue_saved(&self, tenant: TenantId, queue: switchboard_acd::QueueConfig) {
        if let Err(error) = self
            .execute(tenant, Operation::UpsertQueue { config: queue })
            .await
        {
            warn!(%tenant, %error, "queue change not applied to the ACD");
        }
    }

    async fn queue_deleted(&self, tenant: TenantId, queue: switchboard_acd::QueueId) {
        if let Err(error) = self.execute(tenant, Operation::RemoveQueue { queue }).await {
            warn!(%tenant, %error, "queue removal not applied to the ACD");
        }
    }

    async fn agent_profile_saved(
        &self,
        tenant: TenantId,
        _agent: switchboard_acd::AgentId,
        profile: switchboard_acd::AgentProfile,
    ) {
        if let Err(error) = self
            .execute(tenant, Operation::UpsertAgent { profile })
            .await
        {
            warn!(%tenant, %error, "agent profile change not applied to the ACD");
        }
    }

    async fn agent_profile_deleted(&self, tenant: TenantId, agent: switchboard_acd::AgentId) {
        if let Err(error) = self.execute(tenant, Operation::RemoveAgent { agent }).await {
            warn!(%tenant, %error, "agent removal not applied to the ACD");
        }
    }
}

enum Retry {
    Again(String),
    Stop(RoutingError),
}

/// Counts an operation this instance ran on a tenant's ACD (not one it
/// forwards: its owner counts that).
fn count_operation(name: &'static str, result: &Result<Outcome, HostError>) {
    let result = match result {
        Ok(_) => "ok",
        Err(HostError::Refused(_)) => "refused",
        Err(HostError::NotOwner(_)) => return,
        Err(HostError::LeaseLost(_) | HostError::Cache(_) | HostError::Corrupt { .. }) => "failed",
    };
    metrics::operation(name, result);
}

fn classify(error: HostError) -> Retry {
    match error {
        HostError::Refused(error) => Retry::Stop(Refusal::from(error).into()),
        // The operation did not happen; the tenant moved: try again.
        HostError::LeaseLost(_) | HostError::NotOwner(_) => Retry::Again(error.to_string()),
        HostError::Cache(error) => Retry::Stop(RoutingError::Unavailable(error.to_string())),
        HostError::Corrupt { .. } => Retry::Stop(RoutingError::Internal(error.to_string())),
    }
}

fn wire_error(error: HostError) -> WireError {
    match error {
        HostError::Refused(error) => WireError::Refused(error.into()),
        HostError::LeaseLost(_) | HostError::NotOwner(_) => WireError::Moved,
        other => WireError::Failed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice_of(tenant: TenantId) -> Notice {
        Notice {
            tenant,
            offers: Vec::new(),
            withdrawn: Vec::new(),
            agent_events: Vec::new(),
            contact_events: Vec::new(),
        }
    }

    #[test]
    fn notices_reach_their_tenants_listeners_only_and_left_tenants_are_forgotten() {
        let hub = NoticeHub::default();
        let (one, two) = (TenantId::new(), TenantId::new());
        let mut of_one = hub.subscribe(one);
        let mut of_two = hub.subscribe(two);
        hub.publish(notice_of(one));
        assert!(
            matches!(of_one.try_recv(), Ok(NoticeEvent::Notice(notice)) if notice.tenant == one)
        );
        assert!(of_two.try_recv().is_err(), "another tenant's notice");
        hub.gap();
        assert!(matches!(of_one.try_recv(), Ok(NoticeEvent::Gap)));
        assert!(matches!(of_two.try_recv(), Ok(NoticeEvent::Gap)));
        // Tenant one's listener leaves; the next subscription forgets it.
        drop(of_one);
        let _again = hub.subscribe(two);
        assert_eq!(hub.tenants().len(), 1);
        assert!(hub.tenants().contains_key(&two));
    }

    #[test]
    fn an_operation_asked_again_is_not_run_again() {
        let mut served = Served::default();
        let start = Instant::now();
        let id = Uuid::new_v4();
        assert!(matches!(served.begin(id, start), Serve::Run));
        assert!(matches!(served.begin(id, start), Serve::Running));
        served.finish(id, Some(b"reply".to_vec()));
        match served.begin(id, start + Duration::from_secs(1)) {
            Serve::Ran(reply) => assert_eq!(reply, b"reply"),
            _ => panic!("answered from memory"),
        }
        let other = Uuid::new_v4();
        assert!(matches!(served.begin(other, start), Serve::Run));
    }

    #[test]
    fn an_operation_that_did_not_run_runs_when_asked_again() {
        let mut served = Served::default();
        let now = Instant::now();
        let id = Uuid::new_v4();
        assert!(matches!(served.begin(id, now), Serve::Run));
        served.finish(id, None);
        assert!(matches!(served.begin(id, now), Serve::Run));
    }

    #[test]
    fn answers_are_forgotten_after_a_while() {
        let mut served = Served::default();
        let start = Instant::now();
        let old = Uuid::new_v4();
        assert!(matches!(served.begin(old, start), Serve::Run));
        served.finish(old, Some(Vec::new()));
        let later = start + SERVED_MEMORY;
        assert!(matches!(served.begin(Uuid::new_v4(), later), Serve::Run));
        assert!(!served.replies.contains_key(&old));
        assert_eq!(served.arrivals.len(), 1);
        assert!(matches!(served.begin(old, later), Serve::Run));
    }

    #[test]
    fn an_id_run_again_is_remembered_from_its_latest_arrival() {
        let mut served = Served::default();
        let start = Instant::now();
        let id = Uuid::new_v4();
        assert!(matches!(served.begin(id, start), Serve::Run));
        served.finish(id, None);
        let again = start + Duration::from_secs(60);
        assert!(matches!(served.begin(id, again), Serve::Run));
        served.finish(id, Some(b"reply".to_vec()));
        // The first arrival expires; the second still answers.
        let later = start + SERVED_MEMORY;
        assert!(matches!(served.begin(id, later), Serve::Ran(_)));
    }
}
