//! Watching the backbone from outside, without changing it: a [`Bus`]
//! wrapper that times the relay's publishes and, together with the effect
//! handler, the phases of a consumer's rounds, and tells when an event's
//! effect is committed.
//!
//! A consumer ([`switchboard_events::Consumer`]) works one delivery batch
//! at a time: it pulls deliveries with `Subscription::next`, applies the
//! batch (its tenant groups dealt into shares, each share one transaction:
//! marks, then per group the handler; the shares at once), commits,
//! acknowledges, and only then pulls again. So when `next` is called
//! again, everything the handler wrote before is committed and
//! acknowledged: that instant is an event's "effect committed" time. With
//! more than one share the phases below overlap, and their shares of the
//! consumer's time are approximate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use switchboard_events::pack;
use switchboard_platform::{Bus, Delivery, Message, QueueSpec, Result, Subscription};

use crate::report::{Recorder, now_us};

/// Microseconds since `since`.
fn micros(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Counters that only grow; read twice to get what happened in between.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What the relays' publishes took.
pub struct RelayProbe {
    /// A round that publishes this many rows (events, however packed) is
    /// full (the relay's batch size): the relay starts the next one at once.
    full_at: u64,
    /// `publish_batch` calls (one per relay round that found rows).
    pub rounds: Counter,
    /// Outbox rows (events) published, packed or not.
    pub rows: Counter,
    /// Bus messages published (a packed one carries several rows).
    pub messages: Counter,
    /// Inside `publish_batch`: publishing and waiting for every confirm.
    pub publish_us: Counter,
    /// From the end of one publish to the start of the next, after a full
    /// batch: marking, lease renewal, replay check, the next select.
    pub between_full_us: Counter,
    pub between_full: Counter,
    /// The same after a partial batch (includes the poll interval).
    pub between_partial_us: Counter,
    pub between_partial: Counter,
    last_end: Mutex<Option<(Instant, bool)>>,
}

impl RelayProbe {
    pub fn new(batch_size: u32) -> Self {
        Self {
            full_at: u64::from(batch_size),
            rounds: Counter::default(),
            rows: Counter::default(),
            messages: Counter::default(),
            publish_us: Counter::default(),
            between_full_us: Counter::default(),
            between_full: Counter::default(),
            between_partial_us: Counter::default(),
            between_partial: Counter::default(),
            last_end: Mutex::new(None),
        }
    }
}

/// What one consumer's rounds took, by phase (see the module doc).
#[derive(Default)]
pub struct ConsumerProbe {
    /// Waiting in `next` for a delivery.
    pub idle_us: Counter,
    /// From the delivery batch to the handler: decoding, `BEGIN`, the
    /// tenant setting, the processed-marks insert.
    pub before_handler_us: Counter,
    /// The handler: the effects insert.
    pub handler_us: Counter,
    pub handler_calls: Counter,
    pub handled_events: Counter,
    /// From the handler to the next `next`: `COMMIT`, the acks.
    pub after_handler_us: Counter,
    /// From one handler to the next in the same delivery batch (several
    /// tenants): the first group's commit and acks, the second's begin and
    /// marks.
    pub between_handlers_us: Counter,
    /// Delivery batches (rounds of the consumer).
    pub batches: Counter,
    state: Mutex<ConsumerState>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stamp {
    NextEntered,
    NextReturned,
    HandlerEntered,
    HandlerLeft,
}

#[derive(Default)]
struct ConsumerState {
    last: Option<(Stamp, Instant)>,
    /// Occurrence times of events written by the handler whose
    /// transaction is not known to be committed yet.
    uncommitted: Vec<i64>,
}

impl ConsumerProbe {
    /// Accounts the time since the previous stamp to its phase, and when
    /// `committed` records the handler's earlier writes as committed now.
    fn stamp(&self, stamp: Stamp, recorder: &Recorder) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        if stamp == Stamp::NextEntered && !state.uncommitted.is_empty() {
            recorder.record(now_us(), state.uncommitted.drain(..));
        }
        if let Some((last, at)) = state.last {
            let spent = u64::try_from(now.duration_since(at).as_micros()).unwrap_or(u64::MAX);
            match (last, stamp) {
                (Stamp::NextEntered, Stamp::NextReturned) => self.idle_us.add(spent),
                (Stamp::NextReturned | Stamp::NextEntered, Stamp::HandlerEntered) => {
                    self.batches.add(1);
                    self.before_handler_us.add(spent);
                }
                (Stamp::HandlerEntered, Stamp::HandlerLeft) => self.handler_us.add(spent),
                (Stamp::HandlerLeft, Stamp::NextEntered) => self.after_handler_us.add(spent),
                (Stamp::HandlerLeft, Stamp::HandlerEntered) => self.between_handlers_us.add(spent),
                // Between two pulls of one batch (a pull that found nothing
                // ready is dropped unfinished): nothing worth a phase.
                _ => {}
            }
        }
        state.last = Some((stamp, now));
    }

    pub fn handler_entered(&self, recorder: &Recorder) {
        self.stamp(Stamp::HandlerEntered, recorder);
    }

    /// The handler wrote the effects of events that occurred at `occurred_us`.
    pub fn handler_left(&self, recorder: &Recorder, occurred_us: impl IntoIterator<Item = i64>) {
        {
            let mut state = self
                .state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            state.uncommitted.extend(occurred_us);
        }
        self.stamp(Stamp::HandlerLeft, recorder);
    }
}

/// What the bus wrapper watches.
#[derive(Clone)]
pub enum Watch {
    Relay(Arc<RelayProbe>),
    Consumer(Arc<ConsumerProbe>, Arc<Recorder>),
}

/// A bus that delegates everything to `inner` and times what `watch` asks.
pub struct ProbeBus {
    inner: Arc<dyn Bus>,
    watch: Watch,
}

impl ProbeBus {
    pub fn new(inner: Arc<dyn Bus>, watch: Watch) -> Self {
        Self { inner, watch }
    }
}

#[async_trait]
impl Bus for ProbeBus {
    async fn publish(&self, routing_key: &str, payload: Bytes) -> Result<()> {
        self.inner.publish(routing_key, payload).await
    }

    async fn publish_batch(&self, messages: &[Message]) -> Result<()> {
        let Watch::Relay(probe) = &self.watch else {
            return self.inner.publish_batch(messages).await;
        };
        let start = Instant::now();
        if let Some((end, full)) = *probe.last_end.lock().unwrap_or_else(|p| p.into_inner()) {
            let gap = u64::try_from(start.duration_since(end).as_micros()).unwrap_or(u64::MAX);
            if full {
                probe.between_full_us.add(gap);
                probe.between_full.add(1);
            } else {
                probe.between_partial_us.add(gap);
                probe.between_partial.add(1);
            }
        }
        let result = self.inner.publish_batch(messages).await;
        probe.publish_us.add(micros(start));
        let rows: u64 = messages
            .iter()
            .map(|message| pack::count(&message.payload) as u64)
            .sum();
        probe.rounds.add(1);
        probe.rows.add(rows);
        probe.messages.add(messages.len() as u64);
        let full = rows >= probe.full_at;
        *probe.last_end.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), full));
        result
    }

    async fn send_to_queue(&self, queue: &str, routing_key: &str, payload: Bytes) -> Result<()> {
        self.inner.send_to_queue(queue, routing_key, payload).await
    }

    async fn declare_queue(&self, spec: &QueueSpec) -> Result<()> {
        self.inner.declare_queue(spec).await
    }

    async fn subscribe(&self, spec: &QueueSpec) -> Result<Box<dyn Subscription>> {
        let subscription = self.inner.subscribe(spec).await?;
        match &self.watch {
            Watch::Consumer(probe, recorder) => Ok(Box::new(ProbeSubscription {
                inner: subscription,
                probe: probe.clone(),
                recorder: recorder.clone(),
            })),
            Watch::Relay(_) => Ok(subscription),
        }
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }

    fn durable(&self) -> bool {
        self.inner.durable()
    }

    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}

struct ProbeSubscription {
    inner: Box<dyn Subscription>,
    probe: Arc<ConsumerProbe>,
    recorder: Arc<Recorder>,
}

#[async_trait]
impl Subscription for ProbeSubscription {
    async fn next(&mut self) -> Result<Option<Delivery>> {
        self.probe.stamp(Stamp::NextEntered, &self.recorder);
        let delivery = self.inner.next().await;
        self.probe.stamp(Stamp::NextReturned, &self.recorder);
        delivery
    }
}
