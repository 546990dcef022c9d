//! In-process bus for `switchboard dev` and tests: one topic exchange and
//! named queues with the delivery semantics of AMQP 0-9-1 as RabbitMQ
//! implements them: competing consumers, a per-consumer prefetch limit,
//! manual acknowledgement, requeue to the message's original place in the
//! queue with `redelivered` set. Nothing survives the process.
//!
//! Hot path: a publish looks its routing key up in a route cache (a read
//! lock, no topic matching, no allocation) and appends to each matching
//! queue under that queue's own mutex; consumers wait on a `Notify`, never
//! poll, and no lock is held across an `.await`.

use std::collections::{HashMap, VecDeque};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{
    Acker, Bus, Delivery, Message as Outgoing, Park, QueueSpec, Subscription, dead_letter_queue,
    topic_matches,
};
use crate::{BackendKind, Error, Result};

/// Routing keys whose queue set is remembered; past this the cache starts
/// over, so arbitrary keys cannot grow it without bound.
const ROUTE_CACHE_CAPACITY: usize = 4096;

/// AMQP short strings (routing keys, queue names) are at most 255 bytes.
const MAX_NAME_LEN: usize = 255;

/// The in-process bus. Clones share the same exchange and queues.
#[derive(Clone, Default)]
pub struct MemoryBus {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    topology: RwLock<Topology>,
    closed: CancellationToken,
    next_consumer_id: AtomicU64,
}

#[derive(Default)]
struct Topology {
    queues: HashMap<String, DeclaredQueue>,
    /// Routing key → the queues it reaches; cleared whenever bindings change.
    routes: HashMap<Box<str>, Route>,
}

struct DeclaredQueue {
    queue: Arc<Queue>,
    bindings: Vec<String>,
}

struct Route {
    /// Shared by every copy of every message published with this key.
    routing_key: Arc<str>,
    queues: Vec<Arc<Queue>>,
}

struct Queue {
    name: String,
    /// Set by a declaration with a retry delay.
    retry_delay: Mutex<Option<Duration>>,
    state: Mutex<QueueState>,
    /// Woken once per message made ready (`notify_one`), so each new
    /// message wakes one waiting consumer.
    ready: Notify,
}

#[derive(Default)]
struct QueueState {
    /// In `position` order.
    ready: VecDeque<Message>,
    /// Unacknowledged messages of each live consumer, by delivery tag.
    unacked: HashMap<u64, HashMap<u64, Message>>,
    next_tag: u64,
    next_position: u64,
}

impl QueueState {
    /// Puts a message given back (nack, ended subscription) where it was
    /// in the queue, ahead of everything enqueued after it, as RabbitMQ
    /// does; so several given back keep their order.
    fn requeue(&mut self, mut message: Message) {
        message.redelivered = true;
        let at = self
            .ready
            .partition_point(|ready| ready.position < message.position);
        self.ready.insert(at, message);
    }
}

#[derive(Clone)]
struct Message {
    routing_key: Arc<str>,
    payload: Bytes,
    redelivered: bool,
    attempt: u32,
    last_error: Option<Arc<str>>,
    /// Its place in the queue, set when enqueued.
    position: u64,
}

impl Message {
    fn new(routing_key: Arc<str>, payload: Bytes) -> Self {
        Self {
            routing_key,
            payload,
            redelivered: false,
            attempt: 1,
            last_error: None,
            position: 0,
        }
    }
}

/// One consumer of one queue, shared by its subscription and the ackers of
/// its deliveries.
struct Consumer {
    id: u64,
    queue: Arc<Queue>,
    /// For moving messages to the retry and dead-letter queues.
    bus: MemoryBus,
    /// Woken when one of this consumer's deliveries is settled.
    settled: Notify,
}

/// What a consumer that got no message waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// The queue is empty.
    Message,
    /// The consumer holds `prefetch` unacknowledged deliveries.
    Settlement,
}

enum Take {
    Delivery(Delivery),
    Closed,
    Wait(Wait),
}

/// A poisoned lock means a panic while holding it; every critical section
/// here leaves the state consistent, so carry on with it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn closed(operation: &str) -> Error {
    Error::unavailable(
        BackendKind::Bus,
        format!("in-process bus {operation}: the bus is closed"),
    )
}

fn check_name(what: &str, name: &str) -> Result<()> {
    if name.len() > MAX_NAME_LEN {
        return Err(Error::InvalidArgument(format!(
            "{what} is {} bytes long; at most {MAX_NAME_LEN} are allowed",
            name.len()
        )));
    }
    Ok(())
}

impl MemoryBus {
    pub fn new() -> Self {
        Self::default()
    }

    fn ensure_open(&self, operation: &str) -> Result<()> {
        if self.shared.closed.is_cancelled() {
            Err(closed(operation))
        } else {
            Ok(())
        }
    }

    fn topology_read(&self) -> std::sync::RwLockReadGuard<'_, Topology> {
        self.shared
            .topology
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn topology_write(&self) -> std::sync::RwLockWriteGuard<'_, Topology> {
        self.shared
            .topology
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates the queue if needed and adds the bindings it lacks.
    fn declare(&self, spec: &QueueSpec) -> Result<Arc<Queue>> {
        if spec.name.is_empty() {
            return Err(Error::InvalidArgument(
                "queue name must not be empty".into(),
            ));
        }
        check_name("queue name", &spec.name)?;
        for binding in &spec.bindings {
            check_name("binding pattern", binding)?;
        }
        let mut topology = self.topology_write();
        let declared = topology
            .queues
            .entry(spec.name.clone())
            .or_insert_with(|| DeclaredQueue {
                queue: Arc::new(Queue {
                    name: spec.name.clone(),
                    retry_delay: Mutex::new(None),
                    state: Mutex::default(),
                    ready: Notify::new(),
                }),
                bindings: Vec::new(),
            });
        let queue = declared.queue.clone();
        if spec.retry_delay.is_some() {
            *lock(&queue.retry_delay) = spec.retry_delay;
        }
        let mut changed = false;
        for binding in &spec.bindings {
            if !declared.bindings.contains(binding) {
                declared.bindings.push(binding.clone());
                changed = true;
            }
        }
        if changed {
            topology.routes.clear();
        }
        Ok(queue)
    }

    fn queue(&self, name: &str) -> Result<Arc<Queue>> {
        self.topology_read()
            .queues
            .get(name)
            .map(|declared| declared.queue.clone())
            .ok_or_else(|| Error::NotFound(format!("in-process bus: no queue named {name}")))
    }

    fn publish_one(&self, routing_key: &str, payload: &Bytes) -> Result<()> {
        check_name("routing key", routing_key)?;
        {
            let topology = self.topology_read();
            if let Some(route) = topology.routes.get(routing_key) {
                route.deliver(payload);
                return Ok(());
            }
        }
        // A key not seen since the bindings last changed: match it once.
        self.topology_write().route(routing_key).deliver(payload);
        Ok(())
    }
}

impl Queue {
    /// Enqueues at the tail.
    fn push(&self, mut message: Message) {
        {
            let mut state = lock(&self.state);
            message.position = state.next_position;
            state.next_position += 1;
            state.ready.push_back(message);
        }
        self.ready.notify_one();
    }
}

impl Topology {
    fn route(&mut self, routing_key: &str) -> &Route {
        if self.routes.len() >= ROUTE_CACHE_CAPACITY && !self.routes.contains_key(routing_key) {
            self.routes.clear();
        }
        let queues = &self.queues;
        self.routes
            .entry(routing_key.into())
            .or_insert_with(|| Route {
                routing_key: routing_key.into(),
                queues: queues
                    .values()
                    .filter(|declared| {
                        declared
                            .bindings
                            .iter()
                            .any(|pattern| topic_matches(pattern, routing_key))
                    })
                    .map(|declared| declared.queue.clone())
                    .collect(),
            })
    }
}

impl Route {
    fn deliver(&self, payload: &Bytes) {
        for queue in &self.queues {
            queue.push(Message::new(self.routing_key.clone(), payload.clone()));
        }
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, routing_key: &str, payload: Bytes) -> Result<()> {
        self.ensure_open("publish")?;
        self.publish_one(routing_key, &payload)
    }

    async fn publish_batch(&self, messages: &[Outgoing]) -> Result<()> {
        self.ensure_open("publish")?;
        for message in messages {
            check_name("routing key", &message.routing_key)?;
        }
        for message in messages {
            self.publish_one(&message.routing_key, &message.payload)?;
        }
        Ok(())
    }

    async fn send_to_queue(&self, queue: &str, routing_key: &str, payload: Bytes) -> Result<()> {
        self.ensure_open("send to queue")?;
        check_name("routing key", routing_key)?;
        self.queue(queue)?
            .push(Message::new(routing_key.into(), payload));
        Ok(())
    }

    async fn declare_queue(&self, spec: &QueueSpec) -> Result<()> {
        self.ensure_open("declare queue")?;
        self.declare(spec).map(drop)
    }

    async fn subscribe(&self, spec: &QueueSpec) -> Result<Box<dyn Subscription>> {
        self.ensure_open("subscribe")?;
        let queue = self.declare(spec)?;
        let id = self.shared.next_consumer_id.fetch_add(1, Ordering::Relaxed);
        lock(&queue.state).unacked.insert(id, HashMap::new());
        Ok(Box::new(MemorySubscription {
            consumer: Arc::new(Consumer {
                id,
                queue,
                bus: self.clone(),
                settled: Notify::new(),
            }),
            prefetch: usize::from(spec.prefetch),
            closed: self.shared.closed.clone(),
        }))
    }

    async fn ping(&self) -> Result<()> {
        self.ensure_open("ping")
    }

    fn durable(&self) -> bool {
        false
    }

    async fn close(&self) -> Result<()> {
        // Nothing is in flight: a publish is complete when it returns.
        self.shared.closed.cancel();
        Ok(())
    }
}

struct MemorySubscription {
    consumer: Arc<Consumer>,
    /// 0: unlimited, as in AMQP.
    prefetch: usize,
    closed: CancellationToken,
}

impl MemorySubscription {
    fn try_take(&self) -> Take {
        if self.closed.is_cancelled() {
            return Take::Closed;
        }
        let consumer = &self.consumer;
        let (tag, message) = {
            let mut state = lock(&consumer.queue.state);
            let state = &mut *state;
            let Some(unacked) = state.unacked.get_mut(&consumer.id) else {
                return Take::Closed;
            };
            if self.prefetch != 0 && unacked.len() >= self.prefetch {
                return Take::Wait(Wait::Settlement);
            }
            let Some(message) = state.ready.pop_front() else {
                return Take::Wait(Wait::Message);
            };
            let tag = state.next_tag;
            state.next_tag += 1;
            unacked.insert(tag, message.clone());
            (tag, message)
        };
        let acker = MemoryAcker {
            consumer: consumer.clone(),
            tag,
        };
        Take::Delivery(Delivery::new(
            message.routing_key.to_string(),
            message.payload,
            message.redelivered,
            message.attempt,
            message.last_error.as_deref().map(str::to_owned),
            Box::new(acker),
        ))
    }
}

#[async_trait]
impl Subscription for MemorySubscription {
    async fn next(&mut self) -> Result<Option<Delivery>> {
        loop {
            let wait = match self.try_take() {
                Take::Delivery(delivery) => return Ok(Some(delivery)),
                Take::Closed => return Ok(None),
                Take::Wait(wait) => wait,
            };
            let notify = match wait {
                Wait::Message => &self.consumer.queue.ready,
                Wait::Settlement => &self.consumer.settled,
            };
            // Register before looking again, so a wake-up between the look
            // and the wait is not lost. A `notify_one` this future got but
            // did not consume is passed on to another waiter when dropped.
            let mut notified = pin!(notify.notified());
            notified.as_mut().enable();
            match self.try_take() {
                Take::Delivery(delivery) => return Ok(Some(delivery)),
                Take::Closed => return Ok(None),
                Take::Wait(again) if again == wait => {}
                Take::Wait(_) => continue,
            }
            tokio::select! {
                () = self.closed.cancelled() => return Ok(None),
                () = notified => {}
            }
        }
    }
}

impl Drop for MemorySubscription {
    /// Like a closed AMQP channel: unacknowledged deliveries go back to
    /// their places in the queue, marked redelivered.
    fn drop(&mut self) {
        let queue = &self.consumer.queue;
        let requeued = {
            let mut state = lock(&queue.state);
            let Some(unacked) = state.unacked.remove(&self.consumer.id) else {
                return;
            };
            let requeued = unacked.len();
            for message in unacked.into_values() {
                state.requeue(message);
            }
            requeued
        };
        for _ in 0..requeued {
            queue.ready.notify_one();
        }
    }
}

struct MemoryAcker {
    consumer: Arc<Consumer>,
    tag: u64,
}

impl MemoryAcker {
    /// The unacknowledged message this acker settles (a copy).
    fn message(&self) -> Result<Message> {
        let queue = &self.consumer.queue;
        let state = lock(&queue.state);
        state
            .unacked
            .get(&self.consumer.id)
            .and_then(|unacked| unacked.get(&self.tag))
            .cloned()
            .ok_or_else(|| {
                Error::unavailable(
                    BackendKind::Bus,
                    format!(
                        "in-process bus settle delivery from queue {}: its subscription has ended and the message was requeued",
                        queue.name
                    ),
                )
            })
    }

    /// `None`: ack; `Some(requeue)`: nack.
    fn settle(&self, nack: Option<bool>) -> Result<()> {
        let queue = &self.consumer.queue;
        let requeued = {
            let mut state = lock(&queue.state);
            let state = &mut *state;
            let Some(unacked) = state.unacked.get_mut(&self.consumer.id) else {
                return Err(Error::unavailable(
                    BackendKind::Bus,
                    format!(
                        "in-process bus settle delivery from queue {}: its subscription has ended and the message was requeued",
                        queue.name
                    ),
                ));
            };
            // Each acker settles once (it is consumed), so the tag is present.
            let Some(message) = unacked.remove(&self.tag) else {
                return Ok(());
            };
            let requeue = nack == Some(true);
            if requeue {
                state.requeue(message);
            }
            requeue
        };
        self.consumer.settled.notify_one();
        if requeued {
            queue.ready.notify_one();
        }
        Ok(())
    }
}

#[async_trait]
impl Acker for MemoryAcker {
    async fn ack(self: Box<Self>) -> Result<()> {
        self.settle(None)
    }

    /// In process an acknowledgement is a lock and a removal: one each.
    async fn ack_together(self: Box<Self>, others: Vec<Box<dyn Acker>>) -> Result<()> {
        let mut all = others;
        all.push(self);
        super::ack_each(all).await
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }

    async fn nack(self: Box<Self>, requeue: bool) -> Result<()> {
        self.settle(Some(requeue))
    }

    async fn park(self: Box<Self>, park: Park, attempt: u32, error: &str) -> Result<()> {
        let consumer = &self.consumer;
        let queue = consumer.queue.clone();
        let mut message = self.message()?;
        message.redelivered = false;
        message.last_error = Some(error.into());
        match park {
            Park::Retry => {
                let Some(delay) = *lock(&queue.retry_delay) else {
                    return Err(Error::InvalidArgument(format!(
                        "queue {} was declared without a retry delay",
                        queue.name
                    )));
                };
                message.attempt = attempt.saturating_add(1);
                let closed = consumer.bus.shared.closed.clone();
                let target = queue.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = closed.cancelled() => {}
                        () = tokio::time::sleep(delay) => target.push(message),
                    }
                });
            }
            Park::DeadLetter => {
                message.attempt = attempt;
                let spec = QueueSpec::new(dead_letter_queue(&queue.name), Vec::<String>::new());
                consumer.bus.declare(&spec)?.push(message);
            }
        }
        self.settle(None)
    }
}
