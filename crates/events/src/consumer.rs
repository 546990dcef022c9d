//! Idempotent consumers: a durable queue per consuming service, manual
//! acknowledgement, and each event applied at most once.
//!
//! Deliveries are taken in batches (what the queue has ready, up to
//! `batch_size` events) and grouped by tenant; the groups are dealt out
//! into `concurrency` shares applied at once, each in one transaction: the
//! consumer's processed marks of the share are inserted first (`ON
//! CONFLICT DO NOTHING`; on PostgreSQL a plain insert first, redone that
//! way only when an event was marked already), then per group the
//! transaction is confined to the group's tenant and only the events
//! whose mark is new reach the handler. The marks and the handler's
//! effects commit together, then the deliveries are acknowledged; a crash
//! before the ack redelivers, and the mark makes the redelivery a no-op. A
//! tenant's events stay in one share, and the next batch starts once every
//! share is done, so each tenant's events apply in order.
//!
//! A message is a single envelope or a packed one ([`crate::pack`]); a
//! packed message's events join the batch like single ones, and its
//! delivery is acknowledged once all of them are applied. The batch size
//! counts events.
//!
//! A group whose handler fails is retried event by event, so one poison
//! event does not hold up the others: a failing event goes to the retry
//! queue (offered again after `retry_delay`) until `max_attempts`, then to
//! the dead-letter queue `<name>.dead` with its error. An event of a packed
//! message that fails alone is handed on: put back into this consumer's
//! queue as a single message (confirmed before the pack is acknowledged),
//! where it gets its own attempts, retries and dead-lettering, while the
//! pack's other events stay applied once. Undecodable messages are
//! dead-lettered at once; an undecodable envelope inside a packed message
//! is handed on and then dead-lettered alone. Database outages (including
//! a handler's statement failing on a broken connection) are not counted
//! as attempts: the rest of the batch goes back to the queue after a
//! pause.
//!
//! On a bus that does not survive a restart (the in-process bus of `dev`)
//! a consumer first catches up from the event log: every retained event
//! matching its bindings that it has no mark for is offered again, so a
//! crash of `dev` loses nothing either. That includes events still above
//! the relay's cursor: the relay, started alongside, may have published
//! them before this consumer's queue existed and move its cursor past them
//! only after the catch-up has looked.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use futures::FutureExt;
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, ExprTrait, Order, RuntimeErr, SqlErr,
    Statement,
};
use switchboard_config::EventsConfig;
use switchboard_platform::bus::topic_matches;
use switchboard_platform::{Bus, Database, Delivery, QueueSpec, Subscription};
use switchboard_tenancy::TenantId;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};
use uuid::Uuid;

use crate::pack::{self, Limits};
use crate::schema::{EventLog, ProcessedEvents};
use crate::{Event, EventsError, Result};

/// Pause before deliveries go back to the queue after a database error.
const INFRASTRUCTURE_PAUSE: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Events read from the log per query while catching up.
const CATCH_UP_PAGE: u64 = 1000;
/// Processed marks per insert statement on SQLite at most (it takes
/// 32,766 parameters per statement, four per mark).
const MARKS_PER_STATEMENT: usize = 1000;
/// Processed marks per insert statement on PostgreSQL at most: ~36 bytes
/// each, so a statement stays within one 16 KiB TLS record. sqlx does not
/// set `TCP_NODELAY`, and a statement spanning two records waits for the
/// server's delayed ACK (~40 ms) before its second half leaves.
const MARKS_PER_PG_STATEMENT: usize = 300;
/// Batches a consumer on PostgreSQL marks with `ON CONFLICT DO NOTHING`
/// after a plain insert of marks met one that existed: duplicates come in
/// runs (a relay that crashed, redeliveries after a consumer's crash).
const CAREFUL_BATCHES: u32 = 32;

/// Why a handler could not apply an event. The event is retried, and
/// dead-lettered with this message after the last attempt; unless the
/// handler could not reach the database ([`HandlerError::is_unavailable`]),
/// which is not the event's fault and does not use up an attempt.
#[derive(Debug, Clone)]
pub struct HandlerError {
    message: String,
    unavailable: bool,
}

impl HandlerError {
    /// The handler refused the event.
    pub fn new(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            unavailable: false,
        }
    }

    /// A backend the handler needs is unreachable: the event is offered
    /// again after a pause, without counting an attempt.
    pub fn unavailable(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            unavailable: true,
        }
    }

    pub fn is_unavailable(&self) -> bool {
        self.unavailable
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HandlerError {}

impl From<DbErr> for HandlerError {
    fn from(error: DbErr) -> Self {
        Self {
            unavailable: is_unavailable(&error),
            message: format!("database: {error}"),
        }
    }
}

/// Whether `error` says the database could not be reached or the
/// connection broke (or, on SQLite, stayed locked), rather than that it
/// refused the statement.
fn is_unavailable(error: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    match error {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(error)) | DbErr::Query(RuntimeErr::SqlxError(error)) => {
            match error.as_ref() {
                Sqlx::Io(_)
                | Sqlx::Tls(_)
                | Sqlx::Protocol(_)
                | Sqlx::PoolTimedOut
                | Sqlx::PoolClosed
                | Sqlx::WorkerCrashed => true,
                Sqlx::Database(error) => error.code().is_some_and(|code| {
                    // PostgreSQL: connection exception, server shutting
                    // down or starting up. SQLite: SQLITE_BUSY or
                    // SQLITE_LOCKED (any extended code).
                    code.starts_with("08")
                        || code.starts_with("57P")
                        || code
                            .parse::<i32>()
                            .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
                }),
                _ => false,
            }
        }
        _ => false,
    }
}

/// What a consuming service does with events.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// Applies one event inside `transaction`, which is confined to the
    /// event's tenant and already holds this consumer's processed mark for
    /// it. An error rolls back the whole transaction.
    async fn handle(
        &self,
        transaction: &DatabaseTransaction,
        event: &Event,
    ) -> Result<(), HandlerError>;

    /// Applies several events of one tenant, in order, in one transaction.
    /// Override to batch statements; the default calls [`Self::handle`].
    /// There may be about as many as the consumer's batch size: on
    /// PostgreSQL over TLS keep each statement under 16 KiB (sqlx 0.9.0
    /// sets no `TCP_NODELAY` and cannot be told to, see
    /// `switchboard_platform::Database::connect`; a longer one waits ~40 ms
    /// for a delayed ACK).
    async fn handle_batch(
        &self,
        transaction: &DatabaseTransaction,
        events: &[Event],
    ) -> Result<(), HandlerError> {
        for event in events {
            self.handle(transaction, event).await?;
        }
        Ok(())
    }

    /// Called after the transaction that applied `events` (one tenant's,
    /// in order) committed: for effects outside the database that must
    /// follow only what is stored, such as telling a running engine. It
    /// cannot fail the events (they are applied); a handler that misses
    /// one must recover on its own. The default does nothing.
    async fn committed(&self, events: &[Event]) {
        let _ = events;
    }
}

/// A consumer's queue and policies.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// The consuming service's name; also its queue's name.
    pub name: String,
    /// Topic patterns over `<tenant>.<source>.<type>`.
    pub bindings: Vec<String>,
    /// Unacknowledged deliveries held at once.
    pub prefetch: u16,
    /// Events applied per batch, about: deliveries are taken until their
    /// events reach this (a packed delivery counts its events).
    pub batch_size: usize,
    /// Transactions a batch is applied in at once, each with a share of
    /// its tenants (a tenant's events stay in one); 1 on SQLite.
    pub concurrency: usize,
    /// Attempts before an event is dead-lettered.
    pub max_attempts: u32,
    /// Delay before a failed event is offered again.
    pub retry_delay: Duration,
    /// How far back a consumer on a non-durable bus catches up.
    pub catch_up_window: Duration,
}

impl ConsumerOptions {
    pub fn new(
        name: impl Into<String>,
        bindings: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        let config = EventsConfig::default();
        Self {
            name: name.into(),
            bindings: bindings.into_iter().map(Into::into).collect(),
            prefetch: 256,
            // Events, in packs of up to 64: a commit (and its WAL flush)
            // per ~512 events, not per 128.
            batch_size: 512,
            concurrency: 2,
            max_attempts: config.consumer_max_attempts,
            retry_delay: config.consumer_retry_delay,
            catch_up_window: config.retention,
        }
    }

    /// Takes attempts, retry delay and retention from the configuration.
    pub fn with_config(mut self, config: &EventsConfig) -> Self {
        self.max_attempts = Ord::max(config.consumer_max_attempts, 1);
        self.retry_delay = config.consumer_retry_delay;
        self.catch_up_window = config.retention;
        self
    }

    fn queue(&self) -> QueueSpec {
        QueueSpec::new(self.name.clone(), self.bindings.clone())
            .with_prefetch(self.prefetch)
            .with_retry_delay(self.retry_delay)
    }

    fn wants(&self, routing_key: &str) -> bool {
        self.bindings
            .iter()
            .any(|pattern| topic_matches(pattern, routing_key))
    }
}

/// A running consumer's parts.
pub struct Consumer {
    db: Database,
    bus: Arc<dyn Bus>,
    options: ConsumerOptions,
    handler: Arc<dyn EventHandler>,
    /// Batches left to mark with `ON CONFLICT` (see [`Consumer::apply`]).
    careful: AtomicU32,
}

/// How [`Consumer::apply`] inserts processed marks.
#[derive(Clone, Copy)]
enum Marking {
    /// A plain insert (PostgreSQL): fails if one exists.
    Plain,
    /// `ON CONFLICT DO NOTHING`: the marked events are skipped.
    SkipMarked,
}

/// What became of a batch applied with [`Marking::Plain`].
enum Applied {
    Committed,
    /// One of its events was marked already: nothing was applied.
    AlreadyMarked,
}

/// Why a group of events was not applied.
enum Failure {
    /// The database failed: not the events' fault.
    Infrastructure(String),
    /// The handler refused.
    Handler(HandlerError),
}

impl From<DbErr> for Failure {
    fn from(error: DbErr) -> Self {
        Self::Infrastructure(EventsError::from(error).to_string())
    }
}

impl From<EventsError> for Failure {
    fn from(error: EventsError) -> Self {
        Self::Infrastructure(error.to_string())
    }
}

impl From<HandlerError> for Failure {
    fn from(error: HandlerError) -> Self {
        if error.is_unavailable() {
            Self::Infrastructure(format!("handler: {error}"))
        } else {
            Self::Handler(error)
        }
    }
}

/// Deliveries to give back to the queue because the database failed.
struct Requeue {
    error: String,
    deliveries: Vec<Delivery>,
}

/// A tenant's items of a batch.
type Group = (TenantId, Vec<Item>);

/// One delivery and the events it carries: one for a single envelope, all
/// of a packed message's (in order, all with the message's routing key).
struct Item {
    delivery: Delivery,
    events: Vec<Event>,
    /// The encoded envelopes of `events`, for handing one on alone.
    envelopes: Vec<Bytes>,
    packed: bool,
}

impl Consumer {
    pub fn new(
        db: Database,
        bus: Arc<dyn Bus>,
        options: ConsumerOptions,
        handler: Arc<dyn EventHandler>,
    ) -> Self {
        Self {
            db,
            bus,
            options,
            handler,
            careful: AtomicU32::new(0),
        }
    }

    /// Declares the consumer's queues (so events published from now on are
    /// kept for it) without consuming.
    pub async fn declare(&self) -> Result<()> {
        self.bus.declare_queue(&self.options.queue()).await?;
        Ok(())
    }

    /// Consumes until `cancel`.
    pub fn spawn(self, cancel: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move { self.run(cancel).await })
    }

    async fn run(self, cancel: CancellationToken) {
        let name = self.options.name.clone();
        let Some(mut subscription) = self.subscribe(&cancel).await else {
            return;
        };
        info!(consumer = %name, "event consumer started");
        if !self.bus.durable() {
            // Until it succeeds: the log is the only copy of what the bus
            // lost. Deliveries wait in the queue meanwhile.
            let mut backoff = INFRASTRUCTURE_PAUSE;
            loop {
                match self.catch_up().await {
                    Ok(0) => break,
                    Ok(count) => {
                        info!(consumer = %name, count, "event consumer catching up from the log");
                        break;
                    }
                    Err(error) => {
                        warn!(consumer = %name, error = %error, retry_in = ?backoff, "event consumer could not catch up from the log");
                    }
                }
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        let mut backoff = INFRASTRUCTURE_PAUSE;
        loop {
            let next = tokio::select! {
                () = cancel.cancelled() => break,
                next = subscription.next() => next,
            };
            let first = match next {
                Ok(Some(delivery)) => delivery,
                Ok(None) => break,
                Err(error) => {
                    warn!(consumer = %name, error = %error, "event consumer could not receive");
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            backoff = INFRASTRUCTURE_PAUSE;
            let mut events = pack::count(&first.payload);
            let mut batch = vec![first];
            while events < self.options.batch_size {
                match subscription.next().now_or_never() {
                    Some(Ok(Some(delivery))) => {
                        events += pack::count(&delivery.payload);
                        batch.push(delivery);
                    }
                    _ => break,
                }
            }
            self.process(batch).await;
        }
        info!(consumer = %name, "event consumer stopped");
    }

    async fn subscribe(&self, cancel: &CancellationToken) -> Option<Box<dyn Subscription>> {
        let mut backoff = INFRASTRUCTURE_PAUSE;
        loop {
            match self.bus.subscribe(&self.options.queue()).await {
                Ok(subscription) => return Some(subscription),
                Err(error) => {
                    warn!(consumer = %self.options.name, error = %error, retry_in = ?backoff, "event consumer could not subscribe");
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return None,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn process(&self, batch: Vec<Delivery>) {
        let mut groups: Vec<Group> = Vec::new();
        for delivery in batch {
            if !self.options.wants(&delivery.routing_key) {
                // A replay or catch-up of an event this consumer does not
                // bind: nothing to do.
                self.settle(delivery.ack().await);
                continue;
            }
            let Some(item) = self.open(delivery).await else {
                continue;
            };
            let tenant = item.events[0].tenant;
            match groups.iter_mut().find(|(group, _)| *group == tenant) {
                Some((_, group)) => group.push(item),
                None => groups.push((tenant, vec![item])),
            }
        }
        // Tenants are independent: a share of them per transaction, the
        // shares at once; the acks sent together at the end.
        let shares = self.share_out(groups);
        let outcomes =
            futures::future::join_all(shares.into_iter().map(|share| self.apply_share(share)))
                .await;
        let mut applied = Vec::new();
        let mut failed: Option<Requeue> = None;
        for (items, requeue) in outcomes {
            applied.extend(items);
            if let Some(requeue) = requeue {
                match failed.as_mut() {
                    Some(failed) => failed.deliveries.extend(requeue.deliveries),
                    None => failed = Some(requeue),
                }
            }
        }
        if !applied.is_empty() {
            self.ack_all(applied).await;
        }
        if let Some(requeue) = failed {
            self.requeue(requeue).await;
        }
    }

    /// Deals tenant groups out into at most `concurrency` shares of about
    /// as many events each (one share on SQLite, which has one writer).
    fn share_out(&self, mut groups: Vec<Group>) -> Vec<Vec<Group>> {
        let concurrency = match self.db.backend() {
            DbBackend::Sqlite => 1,
            _ => self.options.concurrency.max(1),
        };
        let count = concurrency.min(groups.len());
        if count <= 1 {
            return vec![groups];
        }
        let events = |group: &[Item]| group.iter().map(|item| item.events.len()).sum::<usize>();
        groups.sort_by_key(|(_, group)| std::cmp::Reverse(events(group)));
        let mut shares: Vec<(usize, Vec<Group>)> = (0..count).map(|_| (0, Vec::new())).collect();
        for group in groups {
            if let Some(lightest) = shares.iter_mut().min_by_key(|(weight, _)| *weight) {
                lightest.0 += events(&group.1);
                lightest.1.push(group);
            }
        }
        shares.into_iter().map(|(_, share)| share).collect()
    }

    /// Applies a share of a batch's tenant groups in one transaction (on a
    /// handler failure, group by group). Returns the items applied and not
    /// acknowledged yet, and, when the database failed, what to hand back.
    async fn apply_share(&self, groups: Vec<Group>) -> (Vec<Item>, Option<Requeue>) {
        if groups.len() > 1 {
            let events: Vec<Vec<&Event>> = groups
                .iter()
                .map(|(_, group)| group.iter().flat_map(|item| &item.events).collect())
                .collect();
            match self.apply(&events).await {
                Ok(()) => {
                    return (
                        groups.into_iter().flat_map(|(_, group)| group).collect(),
                        None,
                    );
                }
                Err(Failure::Infrastructure(error)) => {
                    let deliveries = groups
                        .into_iter()
                        .flat_map(|(_, group)| group)
                        .map(|item| item.delivery)
                        .collect();
                    return (Vec::new(), Some(Requeue { error, deliveries }));
                }
                // Find the culprit group by group, below.
                Err(Failure::Handler(_)) => {}
            }
        }
        let mut applied = Vec::new();
        let mut groups = groups.into_iter();
        while let Some((_, group)) = groups.next() {
            match self.apply_group(group).await {
                Ok(items) => applied.extend(items),
                Err(Requeue {
                    error,
                    mut deliveries,
                }) => {
                    // The database is failing: give back the rest of the
                    // share too, rather than failing once per tenant.
                    deliveries.extend(
                        groups
                            .flat_map(|(_, group)| group)
                            .map(|item| item.delivery),
                    );
                    return (applied, Some(Requeue { error, deliveries }));
                }
            }
        }
        (applied, None)
    }

    /// Decodes a delivery. Settles it and returns `None` when nothing of
    /// it is left to apply: undecodable (dead-lettered), or a packed
    /// message none of whose envelopes belongs to it.
    async fn open(&self, delivery: Delivery) -> Option<Item> {
        let consumer = self.options.name.as_str();
        let decoded = pack::envelopes(&delivery.payload).and_then(|envelopes| {
            if pack::is_packed(&delivery.payload) {
                return Ok((envelopes, None));
            }
            let event = Event::decode(&delivery.payload)?;
            Ok((envelopes, Some(event)))
        });
        let envelopes = match decoded {
            Ok((envelopes, Some(event))) => {
                return Some(Item {
                    delivery,
                    events: vec![event],
                    envelopes,
                    packed: false,
                });
            }
            Ok((envelopes, None)) => envelopes,
            Err(error) => {
                error!(consumer, routing_key = %delivery.routing_key, error = %error, "undecodable message dead-lettered");
                metrics::counter!("switchboard_events_dead_lettered_total", "consumer" => consumer.to_owned()).increment(1);
                self.settle(delivery.dead_letter(&error.to_string()).await);
                return None;
            }
        };
        let mut events = Vec::with_capacity(envelopes.len());
        let mut kept = Vec::with_capacity(envelopes.len());
        let mut strays = Vec::new();
        for envelope in envelopes {
            match Event::decode(&envelope) {
                Ok(event) => {
                    let routing_key = event.routing_key();
                    if routing_key == delivery.routing_key {
                        events.push(event);
                        kept.push(envelope);
                    } else {
                        // Not what the message's key says: alone, under its
                        // own key, it meets this consumer's bindings.
                        warn!(consumer, event_id = %event.id, routing_key = %delivery.routing_key, "packed event of another routing key handed on alone");
                        strays.push((routing_key, envelope));
                    }
                }
                Err(error) => {
                    warn!(consumer, routing_key = %delivery.routing_key, error = %error, "undecodable envelope in a packed message handed on alone");
                    strays.push((delivery.routing_key.clone(), envelope));
                }
            }
        }
        if let Err(error) = self.hand_on(strays).await {
            let deliveries = vec![delivery];
            self.requeue(Requeue { error, deliveries }).await;
            return None;
        }
        if events.is_empty() {
            self.settle(delivery.ack().await);
            return None;
        }
        Some(Item {
            delivery,
            events,
            envelopes: kept,
            packed: true,
        })
    }

    /// Puts envelopes (routing key, bytes) into this consumer's queue as
    /// single messages, each confirmed: they then get their own attempts.
    async fn hand_on(&self, envelopes: Vec<(String, Bytes)>) -> Result<(), String> {
        for (routing_key, envelope) in envelopes {
            self.bus
                .send_to_queue(&self.options.name, &routing_key, envelope)
                .await
                .map_err(|error| format!("handing an event on alone: {error}"))?;
            metrics::counter!("switchboard_events_handed_on_total", "consumer" => self.options.name.clone()).increment(1);
        }
        Ok(())
    }

    /// Acknowledges deliveries whose effects committed, all at once.
    async fn ack_all(&self, applied: impl IntoIterator<Item = Item>) {
        let deliveries = applied.into_iter().map(|item| item.delivery);
        self.settle(Delivery::ack_all(deliveries).await);
    }

    /// Hands deliveries back to the queue after a pause: the database
    /// failed, not the events.
    async fn requeue(&self, requeue: Requeue) {
        let Requeue { error, deliveries } = requeue;
        warn!(consumer = %self.options.name, error = %error, count = deliveries.len(), "event consumer could not apply events, requeueing");
        tokio::time::sleep(INFRASTRUCTURE_PAUSE).await;
        for delivery in deliveries {
            self.settle(delivery.nack(true).await);
        }
    }

    /// Applies one tenant's events together, and returns its items to
    /// acknowledge; on a handler failure, one by one, settling each. When
    /// the database fails, those not settled yet are handed back.
    async fn apply_group(&self, group: Vec<Item>) -> Result<Vec<Item>, Requeue> {
        let events: Vec<&Event> = group.iter().flat_map(|item| &item.events).collect();
        match self.apply(std::slice::from_ref(&events)).await {
            Ok(()) => return Ok(group),
            Err(Failure::Infrastructure(error)) => {
                let deliveries = group.into_iter().map(|item| item.delivery).collect();
                return Err(Requeue { error, deliveries });
            }
            Err(Failure::Handler(error)) if events.len() == 1 && !group[0].packed => {
                if let Some(Item {
                    delivery, events, ..
                }) = group.into_iter().next()
                {
                    self.give_back(delivery, &events[0], &error).await;
                }
            }
            Err(Failure::Handler(_)) => {
                let mut items = group.into_iter();
                while let Some(item) = items.next() {
                    if let Err(mut requeue) = self.apply_alone(item).await {
                        requeue.deliveries.extend(items.map(|item| item.delivery));
                        return Err(requeue);
                    }
                }
            }
        }
        Ok(Vec::new())
    }

    /// Applies a delivery's events each in its own transaction, and
    /// settles it: a single event that fails is given back; a packed
    /// message is acknowledged once those of its events that failed are
    /// handed on. When the database fails, the delivery is returned.
    async fn apply_alone(&self, item: Item) -> Result<(), Requeue> {
        let Item {
            delivery,
            events,
            envelopes,
            packed,
        } = item;
        let mut failed = Vec::new();
        for (event, envelope) in events.iter().zip(envelopes) {
            match self.apply(&[vec![event]]).await {
                Ok(()) => {}
                Err(Failure::Handler(error)) if !packed => {
                    self.give_back(delivery, event, &error).await;
                    return Ok(());
                }
                Err(Failure::Handler(error)) => {
                    warn!(consumer = %self.options.name, event_id = %event.id, event_type = %event.event_type, error = %error, "event of a packed message failed, handed on alone");
                    failed.push((delivery.routing_key.clone(), envelope));
                }
                Err(Failure::Infrastructure(error)) => {
                    let deliveries = vec![delivery];
                    return Err(Requeue { error, deliveries });
                }
            }
        }
        if let Err(error) = self.hand_on(failed).await {
            let deliveries = vec![delivery];
            return Err(Requeue { error, deliveries });
        }
        self.settle(delivery.ack().await);
        Ok(())
    }

    /// Sends a failed event to the retry queue, or to the dead-letter
    /// queue after its last attempt.
    async fn give_back(&self, delivery: Delivery, event: &Event, error: &HandlerError) {
        let consumer = self.options.name.as_str();
        if delivery.attempt >= self.options.max_attempts {
            error!(consumer, event_id = %event.id, event_type = %event.event_type, attempt = delivery.attempt, error = %error, "event dead-lettered");
            metrics::counter!("switchboard_events_dead_lettered_total", "consumer" => consumer.to_owned()).increment(1);
            self.settle(delivery.dead_letter(&error.to_string()).await);
        } else {
            warn!(consumer, event_id = %event.id, event_type = %event.event_type, attempt = delivery.attempt, error = %error, "event failed, retrying later");
            metrics::counter!("switchboard_events_retried_total", "consumer" => consumer.to_owned()).increment(1);
            self.settle(delivery.retry_later(&error.to_string()).await);
        }
    }

    fn settle(&self, result: switchboard_platform::Result<()>) {
        if let Err(error) = result {
            // The message stays unacknowledged and comes back; its mark
            // makes that harmless.
            warn!(consumer = %self.options.name, error = %error, "event consumer could not settle a delivery");
        }
    }

    /// One transaction for groups of events, each group of one tenant: the
    /// processed marks of every event first (on PostgreSQL one statement
    /// per group, in its tenant's scope: the services' role has no scope
    /// that spans tenants; on SQLite one for all), then per group the
    /// tenant entered and the handler run on its new events; one commit.
    ///
    /// On PostgreSQL the marks are first inserted plainly, which costs
    /// about half of `ON CONFLICT DO NOTHING … RETURNING` (no speculative
    /// insertion, nothing sent back): nearly every event is new. When one
    /// was marked already, the insert fails on the primary key before
    /// anything else ran; the transaction is rolled back and the batch
    /// applied again with `ON CONFLICT`, which skips the marked ones, as
    /// are the next [`CAREFUL_BATCHES`] batches.
    async fn apply(&self, groups: &[Vec<&Event>]) -> Result<(), Failure> {
        let groups: Vec<&[&Event]> = groups
            .iter()
            .filter(|events| !events.is_empty())
            .map(Vec::as_slice)
            .collect();
        if groups.is_empty() {
            return Ok(());
        }
        // On PostgreSQL, unless a recent batch met a marked event.
        let plain = self.db.backend() == DbBackend::Postgres
            && self
                .careful
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(1)
                })
                .is_err();
        if plain {
            match self.apply_marking(&groups, Marking::Plain).await? {
                Applied::Committed => return Ok(()),
                Applied::AlreadyMarked => {
                    debug!(consumer = %self.options.name, "an event of the batch was marked already, marking with ON CONFLICT");
                    metrics::counter!("switchboard_events_mark_conflicts_total", "consumer" => self.options.name.clone()).increment(1);
                    self.careful.store(CAREFUL_BATCHES, Ordering::Relaxed);
                }
            }
        }
        self.apply_marking(&groups, Marking::SkipMarked).await?;
        Ok(())
    }

    /// [`Consumer::apply`] with one way of inserting the marks.
    async fn apply_marking(
        &self,
        groups: &[&[&Event]],
        marking: Marking,
    ) -> Result<Applied, Failure> {
        let postgres = self.db.backend() == DbBackend::Postgres;
        let several = groups.len() > 1;
        let transaction = self.db.begin().await?;
        // PostgreSQL: row-level security lets the services' role see and
        // write one tenant's rows at a time, marks included, so each
        // group's marks go in in its tenant's scope. SQLite: all in one go.
        let rounds: Vec<&[&[&Event]]> = if postgres {
            groups.chunks(1).collect()
        } else {
            vec![groups]
        };
        let mut fresh = HashSet::new();
        let mut applied: Vec<Vec<Event>> = Vec::new();
        for round in rounds {
            self.db
                .enter_tenant(&transaction, round[0][0].tenant.as_uuid())
                .await?;
            let all: Vec<&Event> = round
                .iter()
                .flat_map(|events| events.iter().copied())
                .collect();
            fresh.extend(match marking {
                Marking::SkipMarked => self.mark(&transaction, &all).await?,
                Marking::Plain => match self.mark_plainly(&transaction, &all).await {
                    Ok(fresh) => fresh,
                    Err(error)
                        if matches!(
                            error.sql_err(),
                            Some(SqlErr::UniqueConstraintViolation(_))
                        ) =>
                    {
                        transaction.rollback().await?;
                        return Ok(Applied::AlreadyMarked);
                    }
                    Err(error) => return Err(error.into()),
                },
            });
        }
        for events in groups {
            // `remove`: an event delivered twice in the batch applies once.
            let new: Vec<Event> = events
                .iter()
                .filter(|event| fresh.remove(&event.id))
                .map(|event| (*event).clone())
                .collect();
            let duplicates = events.len() - new.len();
            if duplicates > 0 {
                debug!(consumer = %self.options.name, duplicates, "duplicate events skipped");
                metrics::counter!("switchboard_events_duplicates_total", "consumer" => self.options.name.clone()).increment(duplicates as u64);
            }
            if new.is_empty() {
                continue;
            }
            if several && postgres {
                // Back into the group's tenant after the others' marks.
                self.db
                    .enter_tenant(&transaction, new[0].tenant.as_uuid())
                    .await?;
            }
            self.handler.handle_batch(&transaction, &new).await?;
            metrics::counter!("switchboard_events_consumed_total", "consumer" => self.options.name.clone()).increment(new.len() as u64);
            applied.push(new);
        }
        transaction.commit().await?;
        for events in &applied {
            self.handler.committed(events).await;
        }
        Ok(Applied::Committed)
    }

    /// Inserts this consumer's processed marks for `events` on PostgreSQL
    /// without `ON CONFLICT`: fails with a unique violation when one of
    /// them is marked already. Returns the ids, each once.
    async fn mark_plainly(
        &self,
        transaction: &DatabaseTransaction,
        events: &[&Event],
    ) -> Result<HashSet<Uuid>, DbErr> {
        let insert = "INSERT INTO processed_events (consumer, event_id, tenant_id, processed_at) \
             SELECT $1, mark.id, ($3::uuid[])[mark.tenant], $2 \
             FROM unnest($4::uuid[], $5::int[]) AS mark(id, tenant)";
        let mut fresh = HashSet::with_capacity(events.len());
        // An event delivered twice in the batch is marked once.
        let unique: Vec<&Event> = events
            .iter()
            .copied()
            .filter(|event| fresh.insert(event.id))
            .collect();
        for chunk in unique.chunks(MARKS_PER_PG_STATEMENT) {
            transaction
                .execute_raw(self.marks_statement(insert, chunk))
                .await?;
        }
        Ok(fresh)
    }

    /// `insert` with its parameters for `events`: the consumer, the time,
    /// then array literals: each tenant once, each id once (32 hex
    /// digits), and per event an index into the tenants.
    fn marks_statement(&self, insert: &str, events: &[&Event]) -> Statement {
        let mut tenants: Vec<Uuid> = Vec::new();
        let mut ids = String::with_capacity(events.len() * 33 + 2);
        let mut indexes = String::with_capacity(events.len() * 3 + 2);
        for (n, event) in events.iter().enumerate() {
            let tenant = event.tenant.as_uuid();
            let index = match tenants.iter().position(|known| *known == tenant) {
                Some(index) => index,
                None => {
                    tenants.push(tenant);
                    tenants.len() - 1
                }
            };
            let separator = if n == 0 { '{' } else { ',' };
            ids.push(separator);
            ids.push_str(event.id.simple().encode_lower(&mut Uuid::encode_buffer()));
            indexes.push(separator);
            indexes.push_str(&(index + 1).to_string());
        }
        ids.push('}');
        indexes.push('}');
        let tenants = format!(
            "{{{}}}",
            tenants
                .iter()
                .map(|tenant| tenant.simple().to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        Statement::from_sql_and_values(
            DbBackend::Postgres,
            insert,
            [
                self.options.name.clone().into(),
                Utc::now().into(),
                tenants.into(),
                ids.into(),
                indexes.into(),
            ],
        )
    }

    /// Inserts this consumer's processed marks for `events` (`ON CONFLICT
    /// DO NOTHING`); returns the ids whose mark is new. On PostgreSQL one
    /// statement of constant text (arrays, so it is prepared once).
    async fn mark(
        &self,
        transaction: &DatabaseTransaction,
        events: &[&Event],
    ) -> Result<HashSet<Uuid>, Failure> {
        let now = Utc::now();
        let mut fresh = HashSet::with_capacity(events.len());
        if self.db.backend() == DbBackend::Postgres {
            let insert = "INSERT INTO processed_events (consumer, event_id, tenant_id, processed_at) \
                 SELECT $1, mark.id, ($3::uuid[])[mark.tenant], $2 \
                 FROM unnest($4::uuid[], $5::int[]) AS mark(id, tenant) \
                 ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id";
            for chunk in events.chunks(MARKS_PER_PG_STATEMENT) {
                let statement = self.marks_statement(insert, chunk);
                for row in transaction.query_all_raw(statement).await? {
                    fresh.insert(row.try_get::<Uuid>("", "event_id")?);
                }
            }
            return Ok(fresh);
        }
        for chunk in events.chunks(MARKS_PER_STATEMENT) {
            let mut insert = Query::insert();
            insert
                .into_table(ProcessedEvents::Table)
                .columns([
                    ProcessedEvents::Consumer,
                    ProcessedEvents::EventId,
                    ProcessedEvents::TenantId,
                    ProcessedEvents::ProcessedAt,
                ])
                .on_conflict(
                    OnConflict::columns([ProcessedEvents::Consumer, ProcessedEvents::EventId])
                        .do_nothing()
                        .to_owned(),
                )
                .returning_col(ProcessedEvents::EventId);
            for event in chunk {
                insert.values_panic([
                    self.options.name.clone().into(),
                    event.id.into(),
                    event.tenant.as_uuid().into(),
                    now.into(),
                ]);
            }
            for row in transaction.query_all(&insert).await? {
                fresh.insert(row.try_get::<Uuid>("", "event_id")?);
            }
        }
        Ok(fresh)
    }

    /// Offers again every retained event this consumer binds and has no
    /// mark for, published or not yet (see the module documentation).
    /// Returns how many.
    async fn catch_up(&self) -> Result<usize> {
        let cutoff = Utc::now()
            - chrono::Duration::from_std(self.options.catch_up_window)
                .unwrap_or(chrono::Duration::days(30));
        let mut after = 0_i64;
        let mut offered = 0;
        loop {
            let processed = Query::select()
                .expr(Expr::val(1))
                .from(ProcessedEvents::Table)
                .and_where(Expr::col(ProcessedEvents::Consumer).eq(self.options.name.as_str()))
                .and_where(
                    Expr::col((ProcessedEvents::Table, ProcessedEvents::EventId))
                        .equals((EventLog::Table, EventLog::Id)),
                )
                .to_owned();
            let query = Query::select()
                .columns([EventLog::Seq, EventLog::RoutingKey, EventLog::Payload])
                .from(EventLog::Table)
                .and_where(Expr::col(EventLog::Seq).gt(after))
                .and_where(Expr::col(EventLog::OccurredAt).gte(cutoff))
                .and_where(Expr::exists(processed).not())
                .order_by(EventLog::Seq, Order::Asc)
                .limit(CATCH_UP_PAGE)
                .to_owned();
            let transaction = self.db.begin_system().await?;
            let rows = transaction.query_all(&query).await?;
            transaction.commit().await?;
            let Some(last) = rows.last() else {
                return Ok(offered);
            };
            after = last.try_get("", "seq")?;
            let mut wanted: Vec<(String, Bytes)> = Vec::with_capacity(rows.len());
            for row in &rows {
                let routing_key: String = row.try_get("", "routing_key")?;
                if self.options.wants(&routing_key) {
                    let payload: Vec<u8> = row.try_get("", "payload")?;
                    wanted.push((routing_key, payload.into()));
                }
            }
            let plan = pack::plan(
                wanted
                    .iter()
                    .map(|(key, payload)| (pack::tenant_of(key), key.as_str(), payload.len())),
                Limits {
                    events: pack::MAX_EVENTS,
                    bytes: pack::MAX_BYTES,
                },
            );
            for rows in plan {
                let payload = pack::body(&rows, |row| wanted[row].1.clone())?;
                self.bus
                    .send_to_queue(&self.options.name, &wanted[rows[0]].0, payload)
                    .await?;
            }
            offered += wanted.len();
        }
    }
}
