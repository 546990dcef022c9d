//! The outbox relay: publishes `event_log` rows in `seq` order per
//! partition, with publisher confirms, and moves the partition's cursor
//! (`relay_cursors`, migration 6) past them only once every confirm is in.
//! A crash (of the relay, the database or the broker) between publishing
//! and moving the cursor publishes those rows again: at-least-once, and
//! consumers drop the duplicates.
//!
//! A round is one transaction and one publish: the transaction moves the
//! cursors past what the previous round published (one small update) and
//! reads the next batch, committing asynchronously on PostgreSQL (a lost
//! update is only ever lost to a database crash, and then its rows go out
//! once more). Rounds overlap: while one batch is published, the
//! transaction of the next round runs.
//!
//! ## Rows that commit out of `seq` order
//! A row's `seq` is taken at insert, not at commit, so with concurrent
//! writers a lower `seq` can become visible after a higher one was read:
//! "seq > cursor" alone would skip it forever. The relay keeps, in memory,
//! a high-water mark (every row of its partitions at or below it that was
//! visible when its range was read has been read) and, on PostgreSQL, the
//! transactions that were in progress while it read (the `xid8` snapshot
//! technique; migration 6 makes a row's `xid` be taken before its `seq`):
//! - each round runs in a `REPEATABLE READ` transaction and reads its
//!   snapshot (`pg_current_snapshot()`);
//! - after reading new rows, it notes every transaction that may own an
//!   invisible row among them: those the snapshot lists in progress, and
//!   those it counts as not yet started (ids from its `xmax`, which is
//!   only the latest completed id + 1) up to the relay transaction's own
//!   id, taken after the read (a transaction with a later id took its
//!   `seq`s after the read, above them);
//! - a transaction noted for the first time can only own `seq`s above
//!   the high-water mark before that read (else an earlier round would
//!   have noted it);
//! - once a snapshot shows it finished, its rows between that mark and
//!   the current one are read by `xid` ("late rows", ahead of the new
//!   ones), and it is forgotten;
//! - a batch's cursor is the high-water mark, but never past the lowest
//!   mark of a transaction still in progress: everything at or below it is
//!   then in this or an earlier batch, and is published once the batch is
//!   confirmed. A long transaction holds the cursor back, not publishing.
//!
//! SQLite has one writer at a time, which takes and commits its `seq`s
//! before the next writer takes any: rows become visible in `seq` order
//! and the cursor is the high-water mark.
//!
//! The in-memory state is rebuilt from the cursors after an error or when
//! the set of partitions held changes: rows above a cursor that were
//! already published then go out once more.
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
//! within the lease TTL. Cursors only move forward, so a relay that lost a
//! lease and moves a cursor late still states a fact.
//!
//! The holder of partition 0 also sends replay requests
//! (`event_redeliveries`) and sweeps the log past its retention.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, ExprTrait, IsolationLevel, Order,
    QueryResult, Statement, TransactionTrait,
};
use switchboard_config::EventsConfig;
use switchboard_platform::{Bus, Database, Message};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::pack::{self, Limits};
use crate::schema::{EventLog, EventRedeliveries, ProcessedEvents, RelayCursors, RelayLeases};
use crate::{EventsError, Result};

/// Longest wait, at a graceful stop, for transactions still open.
const SETTLE: Duration = Duration::from_secs(1);

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
            pack_events: usize::try_from(config.relay_pack_events)
                .unwrap_or(pack::MAX_EVENTS)
                .clamp(1, usize::from(u16::MAX)),
            pack_bytes: usize::try_from(config.relay_pack_bytes).unwrap_or(pack::MAX_BYTES),
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
    routing_key: String,
    payload: Bytes,
}

impl Pending {
    fn from_row(row: &QueryResult) -> Result<Self> {
        Ok(Self {
            seq: row.try_get("", "seq")?,
            routing_key: row.try_get("", "routing_key")?,
            payload: row.try_get::<Vec<u8>>("", "payload")?.into(),
        })
    }
}

/// One replay request on its way to its consumer.
struct Request {
    seq: i64,
    consumer: String,
    routing_key: String,
    payload: Bytes,
}

/// How far a batch lets its partitions' cursors move once it (and every
/// batch before it) is confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    partitions: Vec<i16>,
    seq: i64,
}

/// What rounds published and the broker confirmed, not recorded yet: how
/// far the cursors may move, and the replay requests done with.
#[derive(Debug, Default)]
struct Confirmed {
    published: usize,
    cursor: Option<Cursor>,
    requests: Vec<i64>,
}

impl Confirmed {
    fn is_empty(&self) -> bool {
        self.cursor.is_none() && self.requests.is_empty()
    }

    fn round(&self) -> Round {
        Round {
            published: self.published,
            redelivered: self.requests.len(),
        }
    }

    /// Takes the cursor of a later confirmed batch.
    fn advance(&mut self, cursor: Option<Cursor>) {
        if cursor.is_some() {
            self.cursor = cursor;
        }
    }
}

/// What a round's transaction read: rows to publish (late rows first,
/// then new ones, see the module documentation), replay requests, and the
/// cursor the batch allows.
#[derive(Default)]
struct Batch {
    pending: Vec<Pending>,
    requests: Vec<Request>,
    cursor: Option<Cursor>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.requests.is_empty()
    }
}

/// The relay loop's state between rounds.
#[derive(Default)]
struct Pipeline {
    /// The partitions the batch ahead was read for.
    held: Vec<i16>,
    /// Read, not yet sent.
    ahead: Batch,
    /// Sent and confirmed, not yet recorded.
    confirmed: Confirmed,
}

/// Where a relay's reading stands (see the module documentation). Rebuilt
/// from `relay_cursors` when `partitions` is `None` or differs.
#[derive(Debug, Default)]
struct Tracker {
    partitions: Option<Vec<i16>>,
    /// The cursors read at the rebuild: rows at or below are published.
    floors: Vec<(i16, i64)>,
    /// The high-water mark: every row of `partitions` at or below it that
    /// was visible when its range was read has been read.
    high: i64,
    /// PostgreSQL: transactions seen in progress while reading, each with
    /// the high-water mark before the round that first saw it (its rows
    /// can only lie above that).
    open: HashMap<u64, i64>,
    /// The cursor last written.
    written: Option<Cursor>,
    /// Stopping: late rows only, no new ones.
    settling: bool,
}

impl Tracker {
    /// The cursor everything read so far allows: the high-water mark, but
    /// not past a transaction still in progress.
    fn cursor(&self) -> i64 {
        self.open.values().copied().fold(self.high, Ord::min)
    }

    /// `AND seq > <the partition's cursor>`, while the high-water mark is
    /// below some partition's cursor (after a rebuild), so that rows a
    /// cursor covers are not read again.
    fn floor_condition(&self) -> String {
        if self.floors.iter().all(|(_, floor)| *floor <= self.high) {
            return String::new();
        }
        let mut condition = String::from(" AND seq > CASE partition");
        for (partition, floor) in &self.floors {
            condition.push_str(&format!(" WHEN {partition} THEN {floor}"));
        }
        condition.push_str(" ELSE 0 END");
        condition
    }
}

/// A PostgreSQL snapshot (`pg_current_snapshot()`, text `xmin:xmax:xip,…`).
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    xmin: u64,
    xmax: u64,
    in_progress: HashSet<u64>,
}

impl Snapshot {
    fn parse(text: &str) -> Result<Self> {
        let malformed = || EventsError::Invalid(format!("unexpected snapshot {text:?}"));
        let mut parts = text.split(':');
        let number = |part: Option<&str>| -> Result<u64> {
            part.and_then(|part| part.parse().ok())
                .ok_or_else(malformed)
        };
        let xmin = number(parts.next())?;
        let xmax = number(parts.next())?;
        let list = parts.next().ok_or_else(malformed)?;
        let in_progress = list
            .split(',')
            .filter(|xid| !xid.is_empty())
            .map(|xid| xid.parse().map_err(|_| malformed()))
            .collect::<Result<HashSet<u64>>>()?;
        if parts.next().is_some() {
            return Err(malformed());
        }
        Ok(Self {
            xmin,
            xmax,
            in_progress,
        })
    }

    /// Whether transaction `xid`, seen in progress in an earlier
    /// snapshot, had finished (committed or aborted) in this one.
    fn finished(&self, xid: u64) -> bool {
        xid < self.xmin || (xid < self.xmax && !self.in_progress.contains(&xid))
    }
}

/// `0, 3, 7`: partitions for an `IN` list.
fn list<T: ToString>(values: impl IntoIterator<Item = T>) -> String {
    values
        .into_iter()
        .map(|value| value.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

pub struct Relay {
    /// The system pool: the relay reads every tenant's outbox rows.
    db: Database,
    bus: Arc<dyn Bus>,
    options: RelayOptions,
    last_sweep: tokio::sync::Mutex<Option<tokio::time::Instant>>,
    /// The partitions held at the last renewal, and when that was.
    held: tokio::sync::Mutex<Option<(Vec<i16>, tokio::time::Instant)>>,
    tracker: tokio::sync::Mutex<Tracker>,
}

impl Relay {
    /// A relay working in system scope: on `db`'s system pool
    /// ([`Database::system`]), whose role sees every tenant's events.
    pub fn new(db: Database, bus: Arc<dyn Bus>, options: RelayOptions) -> Self {
        Self {
            db: db.system(),
            bus,
            options,
            last_sweep: tokio::sync::Mutex::new(None),
            held: tokio::sync::Mutex::new(None),
            tracker: tokio::sync::Mutex::new(Tracker::default()),
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

    /// Rows read but not published (a failed send): read them again,
    /// from the cursors.
    async fn forget_reading(&self) {
        *self.tracker.lock().await = Tracker::default();
    }

    /// Runs rounds until `cancel`, then records what it published last and
    /// hands its leases back so another replica takes over at once.
    ///
    /// Rounds overlap: while one batch is published, one transaction
    /// records the batch before it and reads the one after it.
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
                        // What it published and did not record goes out again.
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
            if let Err(error) = self.settle(&mut state).await {
                warn!(holder = %self.options.holder, error = %error, "event relay could not settle its last rounds; some rows will be published again");
            }
            if let Err(error) = self.mark_and_read(&state.confirmed, &[], false).await {
                warn!(holder = %self.options.holder, error = %error, "event relay could not record its last round; it will be published again");
            }
            if let Err(error) = self.release().await {
                warn!(holder = %self.options.holder, error = %error, "event relay could not release its leases");
            }
            info!(holder = %self.options.holder, "event relay stopped");
        })
    }

    /// A graceful stop hands exact cursors over: the batch read ahead
    /// goes out, then, reading no new rows, the late rows of transactions
    /// still open are waited for (for [`SETTLE`] at most), so the next
    /// holder starts where this relay ended instead of publishing again
    /// what lies between its cursor and its high-water mark.
    async fn settle(&self, state: &mut Pipeline) -> Result<()> {
        if state.held.is_empty() {
            return Ok(());
        }
        self.tracker.lock().await.settling = true;
        let deadline = tokio::time::Instant::now() + SETTLE;
        let mut batch = std::mem::take(&mut state.ahead);
        loop {
            self.send(&batch, &mut state.confirmed).await?;
            if self.tracker.lock().await.open.is_empty() || tokio::time::Instant::now() >= deadline
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            let confirmed = std::mem::take(&mut state.confirmed);
            batch = self.mark_and_read(&confirmed, &state.held, false).await?;
        }
    }

    /// One round: renew leases, publish and record one batch, send replay
    /// requests and sweep (holder of partition 0).
    pub async fn run_once(&self) -> Result<Round> {
        let partitions = self.partitions().await?;
        if partitions.is_empty() {
            return Ok(Round::default());
        }
        let replays = partitions.contains(&0);
        let batch = self
            .mark_and_read(&Confirmed::default(), &partitions, replays)
            .await?;
        let mut confirmed = Confirmed::default();
        let sent = self.send(&batch, &mut confirmed).await;
        if sent.is_err() {
            self.forget_reading().await;
        }
        self.mark_and_read(&confirmed, &[], false).await?;
        sent?;
        if replays {
            self.sweep_if_due().await?;
        }
        Ok(confirmed.round())
    }

    /// One round of the loop: publishes the batch read ahead (reading one
    /// first if there is none) while recording what the last round
    /// published and reading the next batch, in one transaction.
    async fn pipelined_round(&self, state: &mut Pipeline) -> Result<Round> {
        let partitions = self.partitions().await?;
        let replays = partitions.contains(&0);
        // What was read ahead for other partitions is dropped: the
        // reading starts again from the cursors of those held now.
        if state.held != partitions {
            state.ahead = Batch::default();
            state.held = partitions.clone();
        }
        // Replay requests belong to the holder of 0.
        if !replays {
            state.ahead.requests.clear();
        }
        if state.ahead.is_empty() {
            // Nothing to send: its cursor holds once the batch before it
            // is confirmed, which it is.
            state.confirmed.advance(state.ahead.cursor.take());
            let confirmed = std::mem::take(&mut state.confirmed);
            state.ahead = self.mark_and_read(&confirmed, &partitions, replays).await?;
            if state.ahead.is_empty() {
                if replays {
                    self.sweep_if_due().await?;
                }
                return Ok(Round::default());
            }
        }
        let batch = std::mem::take(&mut state.ahead);
        let marking = std::mem::take(&mut state.confirmed);
        let mut sent = Confirmed::default();
        // Replay requests are read only when none are on their way.
        let (sending, next) = tokio::join!(
            self.send(&batch, &mut sent),
            self.mark_and_read(&marking, &partitions, replays && batch.requests.is_empty()),
        );
        let round = sent.round();
        state.confirmed = sent;
        // A failed send drops the batch read meanwhile: both are read
        // again, from the cursors.
        if sending.is_err() {
            self.forget_reading().await;
        }
        sending?;
        state.ahead = next?;
        if replays {
            self.sweep_if_due().await?;
        }
        Ok(round)
    }

    /// Publishes what is pending in this relay's partitions without
    /// recording it: what a relay killed between the two steps leaves
    /// behind. For fault tests only.
    #[doc(hidden)]
    pub async fn publish_without_marking(&self) -> Result<usize> {
        let partitions = self.lease().await?;
        let batch = self
            .mark_and_read(&Confirmed::default(), &partitions, false)
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
        let transaction = self.db.begin().await?;
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
    /// One transaction: moves the cursors to what `confirmed` allows (and
    /// deletes its sent replay requests), then reads the next batch of
    /// `partitions` (late rows, then up to a batch of new ones in `seq`
    /// order) and with `replays` a batch of replay requests. On PostgreSQL
    /// it runs in `REPEATABLE READ` (one snapshot for every read) and
    /// commits asynchronously (`synchronous_commit = off`): a cursor lost
    /// in a database crash only publishes its rows again, which consumers
    /// drop as duplicates. On an error the reading starts again from the
    /// cursors.
    async fn mark_and_read(
        &self,
        confirmed: &Confirmed,
        partitions: &[i16],
        replays: bool,
    ) -> Result<Batch> {
        if confirmed.is_empty() && partitions.is_empty() && !replays {
            return Ok(Batch::default());
        }
        let mut tracker = self.tracker.lock().await;
        let result = self
            .transact(&mut tracker, confirmed, partitions, replays)
            .await;
        if result.is_err() {
            *tracker = Tracker::default();
        }
        result
    }

    async fn transact(
        &self,
        tracker: &mut Tracker,
        confirmed: &Confirmed,
        partitions: &[i16],
        replays: bool,
    ) -> Result<Batch> {
        let backend = self.db.backend();
        let postgres = backend == DbBackend::Postgres;
        let transaction = if postgres {
            self.db
                .connection()
                .begin_with_config(Some(IsolationLevel::RepeatableRead), None)
                .await?
        } else {
            self.db.connection().begin().await?
        };
        let snapshot = if postgres {
            // No waiting for the WAL flush; the snapshot
            // every read of this transaction uses; and: the
            // row-level-security predicate makes the planner misjudge
            // `seq > $1`, so it bitmap- or sequentially scans the whole
            // log and sorts, where an ordered scan of the primary key
            // stops at the batch size (a whole-log scan took ~40 ms a
            // round in loadtest/events). One round trip.
            let row = transaction
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT set_config('synchronous_commit', 'off', true) AS commit, \
                     set_config('enable_bitmapscan', 'off', true) AS scan, \
                     set_config('enable_seqscan', 'off', true) AS seqscan, \
                     pg_current_snapshot()::text AS snapshot",
                ))
                .await?
                .ok_or_else(|| EventsError::Invalid("no snapshot".into()))?;
            Some(Snapshot::parse(&row.try_get::<String>("", "snapshot")?)?)
        } else {
            None
        };
        if let Some(cursor) = &confirmed.cursor
            && tracker.written.as_ref() != Some(cursor)
        {
            // Forward only: a relay that lost a lease never moves a
            // cursor back.
            let update = Query::update()
                .table(RelayCursors::Table)
                .value(RelayCursors::Seq, cursor.seq)
                .and_where(Expr::col(RelayCursors::Seq).lt(cursor.seq))
                .and_where(
                    Expr::col(RelayCursors::Partition).is_in(cursor.partitions.iter().copied()),
                )
                .to_owned();
            transaction.execute(&update).await?;
            tracker.written = Some(cursor.clone());
            debug!(seq = cursor.seq, "relay cursor moved");
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
        let mut cursor = None;
        if !partitions.is_empty() {
            if tracker.partitions.as_deref() != Some(partitions) {
                self.rebuild(&transaction, tracker, partitions).await?;
            }
            let within = list(partitions.iter());
            if let Some(snapshot) = &snapshot {
                let due: Vec<(u64, i64)> = tracker
                    .open
                    .iter()
                    .filter(|(xid, _)| snapshot.finished(**xid))
                    .map(|(xid, low)| (*xid, *low))
                    .collect();
                for (xid, _) in &due {
                    tracker.open.remove(xid);
                }
                let low = due
                    .iter()
                    .map(|(_, low)| *low)
                    .min()
                    .unwrap_or(tracker.high);
                if low < tracker.high {
                    // Late rows: those of finished transactions that were
                    // in progress while their range was read.
                    let query = format!(
                        "SELECT seq, routing_key, payload FROM event_log \
                         WHERE partition IN ({within}) AND seq > {low} AND seq <= {high} \
                         AND xid = ANY('{{{xids}}}'::xid8[]) ORDER BY seq",
                        high = tracker.high,
                        xids = list(due.iter().map(|(xid, _)| xid)),
                    );
                    let rows = transaction
                        .query_all_raw(Statement::from_string(DbBackend::Postgres, query))
                        .await?;
                    if !rows.is_empty() {
                        debug!(count = rows.len(), "late outbox rows");
                    }
                    pending.extend(
                        rows.iter()
                            .map(Pending::from_row)
                            .collect::<Result<Vec<_>>>()?,
                    );
                }
            }
            // New rows. Partitions and limit inline: constant per relay,
            // so the text is prepared once and planned with the real
            // limit; the floor condition only right after a rebuild.
            let query = format!(
                "SELECT seq, routing_key, payload FROM event_log \
                 WHERE partition IN ({within}) AND seq > {param}{floor} ORDER BY seq LIMIT {limit}",
                param = if postgres { "$1" } else { "?" },
                floor = tracker.floor_condition(),
                limit = self.options.batch_size,
            );
            let rows = if tracker.settling {
                Vec::new()
            } else {
                transaction
                    .query_all_raw(Statement::from_sql_and_values(
                        backend,
                        query,
                        [tracker.high.into()],
                    ))
                    .await?
            };
            let before = tracker.high;
            for row in &rows {
                let row = Pending::from_row(row)?;
                tracker.high = Ord::max(tracker.high, row.seq);
                pending.push(row);
            }
            if let Some(snapshot) = &snapshot
                && !rows.is_empty()
            {
                // The transactions that may hold rows in the range just
                // read without being visible: those in progress, and those
                // the snapshot counts as not started (at or above its
                // `xmax`) but whose id came before this transaction's own,
                // taken now (a later one takes its `seq`s later).
                let own = transaction
                    .query_one_raw(Statement::from_string(
                        DbBackend::Postgres,
                        "SELECT pg_current_xact_id()::text AS xid",
                    ))
                    .await?
                    .ok_or_else(|| EventsError::Invalid("no transaction id".into()))?
                    .try_get::<String>("", "xid")?;
                let own: u64 = own
                    .parse()
                    .map_err(|_| EventsError::Invalid(format!("unexpected xid {own:?}")))?;
                for xid in snapshot
                    .in_progress
                    .iter()
                    .copied()
                    .chain(snapshot.xmax..own)
                {
                    tracker.open.entry(xid).or_insert(before);
                }
            }
            cursor = Some(Cursor {
                partitions: partitions.to_vec(),
                seq: tracker.cursor(),
            });
        }
        let requests = if replays {
            self.read_requests(&transaction).await?
        } else {
            Vec::new()
        };
        transaction.commit().await?;
        Ok(Batch {
            pending,
            requests,
            cursor,
        })
    }

    /// Starts reading `partitions` from their cursors.
    async fn rebuild(
        &self,
        transaction: &DatabaseTransaction,
        tracker: &mut Tracker,
        partitions: &[i16],
    ) -> Result<()> {
        let query = Query::select()
            .columns([RelayCursors::Partition, RelayCursors::Seq])
            .from(RelayCursors::Table)
            .and_where(Expr::col(RelayCursors::Partition).is_in(partitions.iter().copied()))
            .to_owned();
        let mut floors = Vec::with_capacity(partitions.len());
        for row in transaction.query_all(&query).await? {
            floors.push((
                row.try_get::<i16>("", "partition")?,
                row.try_get::<i64>("", "seq")?,
            ));
        }
        let high = if floors.len() == partitions.len() {
            floors.iter().map(|(_, floor)| *floor).min().unwrap_or(0)
        } else {
            0
        };
        *tracker = Tracker {
            partitions: Some(partitions.to_vec()),
            floors,
            high,
            open: HashMap::new(),
            written: tracker.written.take(),
            settling: tracker.settling,
        };
        debug!(holder = %self.options.holder, high, "relay reading from its cursors");
        Ok(())
    }

    /// Up to a batch of replay requests, oldest first.
    async fn read_requests(&self, transaction: &DatabaseTransaction) -> Result<Vec<Request>> {
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
        let mut requests = Vec::new();
        for row in transaction.query_all(&query).await? {
            requests.push(Request {
                seq: row.try_get("", "request_seq")?,
                consumer: row.try_get("", "consumer")?,
                routing_key: row.try_get("", "routing_key")?,
                payload: row.try_get::<Vec<u8>>("", "payload")?.into(),
            });
        }
        Ok(requests)
    }

    /// Publishes a batch's rows and sends its replay requests, adding
    /// what is done to `confirmed` as it goes (kept on an error too); the
    /// batch's cursor only once all of it is done.
    async fn send(&self, batch: &Batch, confirmed: &mut Confirmed) -> Result<()> {
        if !batch.pending.is_empty() {
            self.publish(&batch.pending).await?;
            confirmed.published += batch.pending.len();
        }
        if !batch.requests.is_empty() {
            confirmed.requests = self.redeliver(&batch.requests).await?;
        }
        confirmed.advance(batch.cursor.clone());
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

/// Published: at or below its partition's cursor.
pub(crate) fn published() -> Expr {
    Expr::col((EventLog::Table, EventLog::Seq)).lte(Expr::cust(
        "(SELECT relay_cursors.seq FROM relay_cursors \
         WHERE relay_cursors.partition = event_log.partition)",
    ))
}

/// Deletes published events, processed marks and replay requests older
/// than `retention`; returns the number of events deleted.
pub(crate) async fn sweep(db: &Database, retention: Duration) -> Result<u64> {
    let cutoff =
        Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(30));
    let transaction = db.begin_system().await?;
    let events = Query::delete()
        .from_table(EventLog::Table)
        .and_where(published())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_limits_come_from_the_config_with_the_framing_defaults() {
        let options = RelayOptions::default();
        assert_eq!(options.pack_events, pack::MAX_EVENTS);
        assert_eq!(options.pack_bytes, pack::MAX_BYTES);
        let config = EventsConfig {
            relay_pack_events: 0,
            relay_pack_bytes: 4096,
            ..EventsConfig::default()
        };
        let options = RelayOptions::from_config(&config);
        assert_eq!((options.pack_events, options.pack_bytes), (1, 4096));
        let config = EventsConfig {
            relay_pack_events: 1_000_000,
            ..EventsConfig::default()
        };
        assert_eq!(RelayOptions::from_config(&config).pack_events, 65_535);
    }

    #[test]
    fn a_snapshot_tells_finished_transactions_from_running_ones() {
        let snapshot = Snapshot::parse("100:110:100,104").unwrap();
        assert!(snapshot.finished(99), "below xmin");
        assert!(!snapshot.finished(100), "listed in progress");
        assert!(snapshot.finished(103), "between xmin and xmax, not listed");
        assert!(!snapshot.finished(104));
        assert!(!snapshot.finished(110), "not started at xmax");
        let empty = Snapshot::parse("7:7:").unwrap();
        assert!(empty.in_progress.is_empty());
        assert!(empty.finished(6));
        for bad in ["", "1:2", "1:x:", "1:2:3:4", "1:2:a"] {
            assert!(Snapshot::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_cursor_stays_below_transactions_in_progress() {
        let mut tracker = Tracker {
            high: 50,
            ..Tracker::default()
        };
        assert_eq!(tracker.cursor(), 50);
        tracker.open.insert(9, 40);
        tracker.open.insert(8, 45);
        assert_eq!(tracker.cursor(), 40);
        tracker.open.remove(&9);
        assert_eq!(tracker.cursor(), 45);
    }

    #[test]
    fn after_a_rebuild_rows_a_cursor_covers_are_left_out() {
        let mut tracker = Tracker {
            floors: vec![(0, 10), (3, 30)],
            high: 10,
            ..Tracker::default()
        };
        assert_eq!(
            tracker.floor_condition(),
            " AND seq > CASE partition WHEN 0 THEN 10 WHEN 3 THEN 30 ELSE 0 END"
        );
        tracker.high = 30;
        assert_eq!(tracker.floor_condition(), "");
    }
}
