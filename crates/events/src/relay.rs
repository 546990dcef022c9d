//! The outbox relay: publishes `event_log` rows that have no
//! `published_at` yet, in `seq` order, with publisher confirms, and marks
//! them published only once every confirm is in. A crash (of the relay,
//! the database or the broker) between publishing and marking publishes
//! those rows again: at-least-once, and consumers drop the duplicates.
//!
//! A round is one transaction and one publish: the transaction marks what
//! the previous round published and reads the next batch, committing
//! asynchronously on PostgreSQL (a mark is only ever lost to a database
//! crash, and then its rows go out once more).
//!
//! Within a round, a tenant's consecutive rows of one routing key travel
//! in one packed message ([`crate::pack`]), up to
//! [`RelayOptions::pack_events`] and [`RelayOptions::pack_bytes`]; a row
//! with no such neighbour goes alone, as a plain envelope. A tenant's
//! messages go out in the order of its rows. Replays are packed the same
//! way, per consumer.
//!
//! Replicas coordinate through `relay_leases`: a relay publishes only the
//! partitions whose lease it holds (renewed every round, taken over by
//! another replica once it expires), so no two relays publish the same row
//! at the same time and each partition's rows go out in order. Lease
//! times come from the relays' clocks; keep them synchronised (NTP) well
//! within the lease TTL.
//!
//! The holder of partition 0 also sends replay requests
//! (`event_redeliveries`) and sweeps the log past its retention.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, ExprTrait, Order, Statement, TransactionTrait};
use switchboard_config::EventsConfig;
use switchboard_platform::{Bus, Database, Message};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::Result;
use crate::pack::{self, Limits};
use crate::schema::{EventLog, EventRedeliveries, ProcessedEvents, RelayLeases};

/// Longest pause between rounds after errors.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How a relay runs.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// This relay's name in `relay_leases` (unique per replica).
    pub holder: String,
    /// Pause after a round that found nothing to publish.
    pub poll_interval: Duration,
    /// Rows published per round (one confirm round trip).
    pub batch_size: u32,
    /// How long a lease lasts without renewal.
    pub lease_ttl: Duration,
    /// How long published events stay in the log.
    pub retention: Duration,
    /// How often the retention sweep runs.
    pub sweep_interval: Duration,
    /// Events packed into one message at most (1: every event alone).
    pub pack_events: usize,
    /// Bytes of one packed message at most.
    pub pack_bytes: usize,
}

impl RelayOptions {
    pub fn from_config(config: &EventsConfig) -> Self {
        Self {
            holder: format!("relay-{}", Uuid::now_v7()),
            poll_interval: config.relay_poll_interval,
            batch_size: Ord::max(config.relay_batch_size, 1),
            lease_ttl: config.relay_lease_ttl,
            retention: config.retention,
            sweep_interval: Duration::from_secs(60),
            pack_events: pack::MAX_EVENTS,
            pack_bytes: pack::MAX_BYTES,
        }
    }

    fn limits(&self) -> Limits {
        Limits {
            events: self.pack_events.max(1),
            bytes: self.pack_bytes,
        }
    }
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self::from_config(&EventsConfig::default())
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Outbox rows published and marked.
    pub published: usize,
    /// Replay requests sent.
    pub redelivered: usize,
}

/// One outbox row on its way out.
struct Pending {
    seq: i64,
    partition: i16,
    routing_key: String,
    payload: Bytes,
}

/// One replay request on its way to its consumer.
struct Request {
    seq: i64,
    consumer: String,
    routing_key: String,
    payload: Bytes,
}

/// What a round published and the broker confirmed, not marked yet: the
/// outbox rows' `seq`s and the replay requests'.
#[derive(Debug, Default)]
struct Confirmed {
    seqs: Vec<i64>,
    requests: Vec<i64>,
}

impl Confirmed {
    fn is_empty(&self) -> bool {
        self.seqs.is_empty() && self.requests.is_empty()
    }

    fn round(&self) -> Round {
        Round {
            published: self.seqs.len(),
            redelivered: self.requests.len(),
        }
    }
}

/// What a round's transaction read: pending rows and replay requests.
#[derive(Default)]
struct Batch {
    pending: Vec<Pending>,
    requests: Vec<Request>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.requests.is_empty()
    }
}

/// The relay loop's state between rounds.
#[derive(Default)]
struct Pipeline {
    /// Read, not yet sent.
    ahead: Batch,
    /// Sent and confirmed, not yet marked.
    confirmed: Confirmed,
}

/// A PostgreSQL array literal (`{1,2,3}`).
fn array_literal(values: &[i64]) -> String {
    let mut text = String::with_capacity(values.len() * 8 + 2);
    text.push('{');
    for (n, value) in values.iter().enumerate() {
        if n > 0 {
            text.push(',');
        }
        text.push_str(&value.to_string());
    }
    text.push('}');
    text
}

pub struct Relay {
    db: Database,
    bus: Arc<dyn Bus>,
    options: RelayOptions,
    last_sweep: tokio::sync::Mutex<Option<tokio::time::Instant>>,
    /// The partitions held at the last renewal, and when that was.
    held: tokio::sync::Mutex<Option<(Vec<i16>, tokio::time::Instant)>>,
}

impl Relay {
    pub fn new(db: Database, bus: Arc<dyn Bus>, options: RelayOptions) -> Self {
        Self {
            db,
            bus,
            options,
            last_sweep: tokio::sync::Mutex::new(None),
            held: tokio::sync::Mutex::new(None),
        }
    }

    /// The partitions this relay holds. Leases are renewed (and free ones
    /// taken) once a third of the TTL has passed since the last renewal,
    /// not every round: an idle relay writes to the database a few times
    /// per TTL, not every poll. Held partitions are used only within that
    /// third, so they never outlive their lease.
    async fn partitions(&self) -> Result<Vec<i16>> {
        let mut held = self.held.lock().await;
        if let Some((partitions, renewed_at)) = held.as_ref()
            && renewed_at.elapsed() < self.options.lease_ttl / 3
        {
            return Ok(partitions.clone());
        }
        *held = None;
        let started = tokio::time::Instant::now();
        let partitions = self.lease().await?;
        *held = Some((partitions.clone(), started));
        Ok(partitions)
    }

    /// Runs rounds until `cancel`, then marks what it published last and
    /// hands its leases back so another replica takes over at once.
    ///
    /// Rounds overlap: while one batch is published, one transaction
    /// marks the batch before it and reads the one after it (leaving out
    /// the rows on their way out).
    pub fn spawn(self, cancel: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            info!(holder = %self.options.holder, "event relay started");
            let mut backoff = self.options.poll_interval;
            let mut state = Pipeline::default();
            loop {
                let pause = match self.pipelined_round(&mut state).await {
                    Ok(round) => {
                        backoff = self.options.poll_interval;
                        // Pause only when there was nothing to do: under
                        // load the next round starts at once, which keeps
                        // latency at the round time, not the poll interval.
                        let busy = round.published > 0 || round.redelivered > 0;
                        if busy {
                            Duration::ZERO
                        } else {
                            self.options.poll_interval
                        }
                    }
                    Err(error) => {
                        // What it published and did not mark goes out again.
                        warn!(holder = %self.options.holder, error = %error, retry_in = ?backoff, "event relay round failed");
                        let pause = backoff;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        pause
                    }
                };
                if pause.is_zero() {
                    if cancel.is_cancelled() {
                        break;
                    }
                    tokio::task::yield_now().await;
                    continue;
                }
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(pause) => {}
                }
            }
            if let Err(error) = self.mark_and_read(&state.confirmed, &[], false, &[]).await {
                warn!(holder = %self.options.holder, error = %error, "event relay could not mark its last round; it will be published again");
            }
            if let Err(error) = self.release().await {
                warn!(holder = %self.options.holder, error = %error, "event relay could not release its leases");
            }
            info!(holder = %self.options.holder, "event relay stopped");
        })
    }

    /// One round: renew leases, publish and mark one batch, send replay
    /// requests and sweep (holder of partition 0).
    pub async fn run_once(&self) -> Result<Round> {
        let partitions = self.partitions().await?;
        if partitions.is_empty() {
            return Ok(Round::default());
        }
        let replays = partitions.contains(&0);
        let batch = self
            .mark_and_read(&Confirmed::default(), &partitions, replays, &[])
            .await?;
        let mut confirmed = Confirmed::default();
        let sent = self.send(&batch, &mut confirmed).await;
        self.mark_and_read(&confirmed, &[], false, &[]).await?;
        sent?;
        if replays {
            self.sweep_if_due().await?;
        }
        Ok(confirmed.round())
    }

    /// One round of the loop: publishes the batch read ahead (reading one
    /// first if there is none) while marking what the last round
    /// published and reading the next batch, in one transaction.
    async fn pipelined_round(&self, state: &mut Pipeline) -> Result<Round> {
        let partitions = self.partitions().await?;
        let replays = partitions.contains(&0);
        // Rows read ahead of a partition whose lease is gone are another
        // relay's now; replay requests belong to the holder of 0.
        state
            .ahead
            .pending
            .retain(|row| partitions.contains(&row.partition));
        if !replays {
            state.ahead.requests.clear();
        }
        if state.ahead.is_empty() {
            let confirmed = std::mem::take(&mut state.confirmed);
            state.ahead = self
                .mark_and_read(&confirmed, &partitions, replays, &[])
                .await?;
            if state.ahead.is_empty() {
                if replays {
                    self.sweep_if_due().await?;
                }
                return Ok(Round::default());
            }
        }
        let batch = std::mem::take(&mut state.ahead);
        let marking = std::mem::take(&mut state.confirmed);
        let in_flight: Vec<i64> = batch.pending.iter().map(|row| row.seq).collect();
        let mut sent = Confirmed::default();
        // Replay requests are read only when none are on their way.
        let (sending, next) = tokio::join!(
            self.send(&batch, &mut sent),
            self.mark_and_read(
                &marking,
                &partitions,
                replays && batch.requests.is_empty(),
                &in_flight
            ),
        );
        let round = sent.round();
        state.confirmed = sent;
        // A failed send drops the batch read meanwhile: the rows it left
        // out are read again first, in order.
        sending?;
        state.ahead = next?;
        if replays {
            self.sweep_if_due().await?;
        }
        Ok(round)
    }

    /// Publishes what is pending in this relay's partitions without
    /// marking it: what a relay killed between the two steps leaves
    /// behind. For fault tests only.
    #[doc(hidden)]
    pub async fn publish_without_marking(&self) -> Result<usize> {
        let partitions = self.lease().await?;
        let batch = self
            .mark_and_read(&Confirmed::default(), &partitions, false, &[])
            .await?;
        self.publish(&batch.pending).await?;
        Ok(batch.pending.len())
    }

    /// Renews this relay's leases and takes free or expired ones; returns
    /// the partitions it holds.
    async fn lease(&self) -> Result<Vec<i16>> {
        let now = Utc::now();
        let expires_at = now
            + chrono::Duration::from_std(self.options.lease_ttl)
                .unwrap_or(chrono::Duration::seconds(15));
        let holder = self.options.holder.as_str();
        let transaction = self.db.connection().begin().await?;
        let take = Query::update()
            .table(RelayLeases::Table)
            .value(RelayLeases::Holder, holder)
            .value(RelayLeases::ExpiresAt, expires_at)
            .cond_where(
                Expr::col(RelayLeases::Holder)
                    .eq(holder)
                    .or(Expr::col(RelayLeases::Holder).is_null())
                    .or(Expr::col(RelayLeases::ExpiresAt).lt(now)),
            )
            .to_owned();
        transaction.execute(&take).await?;
        let held = Query::select()
            .column(RelayLeases::Partition)
            .from(RelayLeases::Table)
            .and_where(Expr::col(RelayLeases::Holder).eq(holder))
            .order_by(RelayLeases::Partition, Order::Asc)
            .to_owned();
        let rows = transaction.query_all(&held).await?;
        transaction.commit().await?;
        rows.iter()
            .map(|row| row.try_get::<i16>("", "partition"))
            .collect::<Result<Vec<_>, DbErr>>()
            .map_err(Into::into)
    }

    /// Gives this relay's leases up.
    pub async fn release(&self) -> Result<()> {
        *self.held.lock().await = None;
        let release = Query::update()
            .table(RelayLeases::Table)
            .value(RelayLeases::Holder, Option::<String>::None)
            .value(RelayLeases::ExpiresAt, Option::<DateTime<Utc>>::None)
            .and_where(Expr::col(RelayLeases::Holder).eq(self.options.holder.as_str()))
            .to_owned();
        self.db.connection().execute(&release).await?;
        Ok(())
    }

    /// One transaction: marks `confirmed` published (and deletes its sent
    /// replay requests), then reads up to a batch of pending rows of
    /// `partitions` in `seq` order but those `in_flight`, and with
    /// `replays` a batch of replay requests. On PostgreSQL it commits
    /// asynchronously
    /// (`synchronous_commit = off`): a mark lost in a database crash only
    /// publishes its rows again, which consumers drop as duplicates.
    async fn mark_and_read(
        &self,
        confirmed: &Confirmed,
        partitions: &[i16],
        replays: bool,
        in_flight: &[i64],
    ) -> Result<Batch> {
        if confirmed.is_empty() && partitions.is_empty() && !replays {
            return Ok(Batch::default());
        }
        let postgres = self.db.backend() == DbBackend::Postgres;
        let transaction = self.db.connection().begin().await?;
        if postgres {
            // System scope; no waiting for the WAL flush; and: the
            // row-level-security predicate makes the planner expect one
            // row, so it bitmap-scans every pending entry and sorts, where
            // an ordered scan of `event_log_pending` stops at the batch
            // size (22–44 ms down to ~12 ms per round with a backlog,
            // measured in loadtest/events). One round trip.
            transaction
                .execute_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT set_config('app.scope', 'system', true), \
                     set_config('synchronous_commit', 'off', true), \
                     set_config('enable_bitmapscan', 'off', true)",
                ))
                .await?;
        }
        if !confirmed.seqs.is_empty() {
            let now = Utc::now();
            if postgres {
                // Constant text, so it is prepared once (an `IN` list of
                // each length would be parsed and planned anew).
                transaction
                    .execute_raw(Statement::from_sql_and_values(
                        DbBackend::Postgres,
                        "UPDATE event_log SET published_at = $1 WHERE seq = ANY($2::bigint[])",
                        [now.into(), array_literal(&confirmed.seqs).into()],
                    ))
                    .await?;
            } else {
                let update = Query::update()
                    .table(EventLog::Table)
                    .value(EventLog::PublishedAt, now)
                    .and_where(Expr::col(EventLog::Seq).is_in(confirmed.seqs.iter().copied()))
                    .to_owned();
                transaction.execute(&update).await?;
            }
            debug!(count = confirmed.seqs.len(), "events published");
        }
        if !confirmed.requests.is_empty() {
            let delete = Query::delete()
                .from_table(EventRedeliveries::Table)
                .and_where(
                    Expr::col(EventRedeliveries::Seq).is_in(confirmed.requests.iter().copied()),
                )
                .to_owned();
            transaction.execute(&delete).await?;
        }
        let mut pending = Vec::new();
        if !partitions.is_empty() {
            let rows = if postgres {
                // Partitions and limit inline: constant per relay, so the
                // text is prepared once and planned with the real limit.
                // The rows in flight are the head of the pending ones when
                // they were read: leaving out their range costs two
                // comparisons a row (`<> ALL` would compare each with all).
                // A row committed late into that range is read next round.
                let partitions: Vec<String> = partitions.iter().map(i16::to_string).collect();
                let query = format!(
                    "SELECT seq, partition, routing_key, payload FROM event_log \
                     WHERE published_at IS NULL AND partition IN ({}) AND (seq < $1 OR seq > $2) \
                     ORDER BY seq LIMIT {}",
                    partitions.join(", "),
                    self.options.batch_size
                );
                let first = in_flight.iter().min().copied().unwrap_or(0);
                let last = in_flight.iter().max().copied().unwrap_or(0);
                transaction
                    .query_all_raw(Statement::from_sql_and_values(
                        DbBackend::Postgres,
                        query,
                        [first.into(), last.into()],
                    ))
                    .await?
            } else {
                let mut query = Query::select();
                query
                    .columns([
                        EventLog::Seq,
                        EventLog::Partition,
                        EventLog::RoutingKey,
                        EventLog::Payload,
                    ])
                    .from(EventLog::Table)
                    .and_where(Expr::col(EventLog::PublishedAt).is_null())
                    .and_where(Expr::col(EventLog::Partition).is_in(partitions.iter().copied()))
                    .order_by(EventLog::Seq, Order::Asc)
                    .limit(u64::from(self.options.batch_size));
                if !in_flight.is_empty() {
                    query.and_where(Expr::col(EventLog::Seq).is_not_in(in_flight.iter().copied()));
                }
                transaction.query_all(&query).await?
            };
            for row in rows {
                pending.push(Pending {
                    seq: row.try_get("", "seq")?,
                    partition: row.try_get("", "partition")?,
                    routing_key: row.try_get("", "routing_key")?,
                    payload: row.try_get::<Vec<u8>>("", "payload")?.into(),
                });
            }
        }
        let mut requests = Vec::new();
        if replays {
            let query = Query::select()
                .expr_as(
                    Expr::col((EventRedeliveries::Table, EventRedeliveries::Seq)),
                    "request_seq",
                )
                .column((EventRedeliveries::Table, EventRedeliveries::Consumer))
                .column((EventLog::Table, EventLog::RoutingKey))
                .column((EventLog::Table, EventLog::Payload))
                .from(EventRedeliveries::Table)
                .inner_join(
                    EventLog::Table,
                    Expr::col((EventLog::Table, EventLog::Seq))
                        .equals((EventRedeliveries::Table, EventRedeliveries::EventSeq)),
                )
                .order_by(
                    (EventRedeliveries::Table, EventRedeliveries::Seq),
                    Order::Asc,
                )
                .limit(u64::from(self.options.batch_size))
                .to_owned();
            for row in transaction.query_all(&query).await? {
                requests.push(Request {
                    seq: row.try_get("", "request_seq")?,
                    consumer: row.try_get("", "consumer")?,
                    routing_key: row.try_get("", "routing_key")?,
                    payload: row.try_get::<Vec<u8>>("", "payload")?.into(),
                });
            }
        }
        transaction.commit().await?;
        Ok(Batch { pending, requests })
    }

    /// Publishes a batch's rows and sends its replay requests, adding
    /// what is done to `confirmed` as it goes (kept on an error too).
    async fn send(&self, batch: &Batch, confirmed: &mut Confirmed) -> Result<()> {
        if !batch.pending.is_empty() {
            self.publish(&batch.pending).await?;
            confirmed
                .seqs
                .extend(batch.pending.iter().map(|row| row.seq));
        }
        if !batch.requests.is_empty() {
            confirmed.requests = self.redeliver(&batch.requests).await?;
        }
        Ok(())
    }

    async fn publish(&self, pending: &[Pending]) -> Result<()> {
        let plan = pack::plan(
            pending.iter().map(|row| {
                let key = row.routing_key.as_str();
                (pack::tenant_of(key), key, row.payload.len())
            }),
            self.options.limits(),
        );
        let messages = plan
            .iter()
            .map(|rows| {
                let key = pending[rows[0]].routing_key.clone();
                Ok(Message::new(
                    key,
                    pack::body(rows, |row| pending[row].payload.clone())?,
                ))
            })
            .collect::<Result<Vec<Message>>>()?;
        self.bus.publish_batch(&messages).await?;
        metrics::counter!("switchboard_events_published_total").increment(pending.len() as u64);
        metrics::counter!("switchboard_events_published_messages_total")
            .increment(messages.len() as u64);
        Ok(())
    }

    /// Sends replay requests to their consumers' queues, packed per
    /// consumer and tenant; returns the requests done with (sent, or for
    /// a consumer whose queue does not exist).
    async fn redeliver(&self, requests: &[Request]) -> Result<Vec<i64>> {
        let plan = pack::plan(
            requests.iter().map(|request| {
                let key = request.routing_key.as_str();
                (
                    (request.consumer.as_str(), pack::tenant_of(key)),
                    key,
                    request.payload.len(),
                )
            }),
            self.options.limits(),
        );
        let mut sent = Vec::with_capacity(requests.len());
        for rows in plan {
            let first = &requests[rows[0]];
            let payload = pack::body(&rows, |row| requests[row].payload.clone())?;
            match self
                .bus
                .send_to_queue(&first.consumer, &first.routing_key, payload)
                .await
            {
                Ok(()) => {}
                Err(switchboard_platform::Error::NotFound(detail)) => {
                    warn!(consumer = %first.consumer, detail = %detail, "replay for a consumer whose queue does not exist, dropped");
                }
                Err(error) => return Err(error.into()),
            }
            sent.extend(rows.iter().map(|row| requests[*row].seq));
        }
        metrics::counter!("switchboard_events_redelivered_total").increment(sent.len() as u64);
        Ok(sent)
    }

    async fn sweep_if_due(&self) -> Result<()> {
        let mut last = self.last_sweep.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.options.sweep_interval) {
            return Ok(());
        }
        *last = Some(tokio::time::Instant::now());
        drop(last);
        let removed = sweep(&self.db, self.options.retention).await?;
        if removed > 0 {
            info!(removed, "event log swept past its retention");
        }
        Ok(())
    }
}

/// Deletes published events, processed marks and replay requests older
/// than `retention`; returns the number of events deleted.
pub(crate) async fn sweep(db: &Database, retention: Duration) -> Result<u64> {
    let cutoff =
        Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(30));
    let transaction = db.begin_system().await?;
    let events = Query::delete()
        .from_table(EventLog::Table)
        .and_where(Expr::col(EventLog::PublishedAt).is_not_null())
        .and_where(Expr::col(EventLog::OccurredAt).lt(cutoff))
        .to_owned();
    let removed = transaction.execute(&events).await?.rows_affected();
    let marks = Query::delete()
        .from_table(ProcessedEvents::Table)
        .and_where(Expr::col(ProcessedEvents::ProcessedAt).lt(cutoff))
        .to_owned();
    transaction.execute(&marks).await?;
    let requests = Query::delete()
        .from_table(EventRedeliveries::Table)
        .and_where(Expr::col(EventRedeliveries::RequestedAt).lt(cutoff))
        .to_owned();
    transaction.execute(&requests).await?;
    transaction.commit().await?;
    Ok(removed)
}
