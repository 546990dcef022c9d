//! The message bus: publish to a topic exchange, consume from durable
//! queues with manual acknowledgement (AMQP 0-9-1 semantics, which the
//! in-process implementation reproduces).
//!
//! Routing keys are dot-separated words (`<tenant>.<source>.<type>`);
//! queue bindings are AMQP topic patterns, where `*` matches exactly one word
//! and `#` matches zero or more. The transactional outbox, retries and
//! dead-lettering build on this trait.

mod memory;
mod rabbitmq;
mod topic;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub use self::memory::MemoryBus;
pub use self::rabbitmq::{RabbitMqBus, broker_queue_name};
pub use self::topic::topic_matches;
use crate::Result;

/// A durable queue and the patterns that route messages into it. Several
/// subscriptions to one queue share its messages (competing consumers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// The queue's name, unique per consuming service (`analytics.events`).
    pub name: String,
    /// Topic patterns (`*.identity.#`).
    pub bindings: Vec<String>,
    /// Unacknowledged deliveries one subscription may hold.
    pub prefetch: u16,
    /// When set, [`Delivery::retry_later`] offers a message to the queue
    /// again after this delay (through a `<name>.retry` queue on RabbitMQ,
    /// where it is each message's TTL: a later declaration may change it,
    /// and a message parked with a longer delay holds back those parked
    /// after it until it expires).
    pub retry_delay: Option<Duration>,
}

/// The queue that [`Delivery::dead_letter`] moves messages of `queue` to.
pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}.dead")
}

/// The queue holding messages of `queue` while they wait for a retry.
pub fn retry_queue(queue: &str) -> String {
    format!("{queue}.retry")
}

/// Longest error text kept with a retried or dead-lettered message.
pub const MAX_ERROR_LEN: usize = 4096;

/// One message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub routing_key: String,
    pub payload: Bytes,
}

impl Message {
    pub fn new(routing_key: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Self {
            routing_key: routing_key.into(),
            payload: payload.into(),
        }
    }
}

/// `error` cut to [`MAX_ERROR_LEN`] bytes on a character boundary.
pub(crate) fn truncate_error(error: &str) -> &str {
    if error.len() <= MAX_ERROR_LEN {
        return error;
    }
    let mut end = MAX_ERROR_LEN;
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    &error[..end]
}

impl QueueSpec {
    pub fn new(
        name: impl Into<String>,
        bindings: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            name: name.into(),
            bindings: bindings.into_iter().map(Into::into).collect(),
            prefetch: 64,
            retry_delay: None,
        }
    }

    pub fn with_retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = Some(delay);
        self
    }

    pub fn with_prefetch(mut self, prefetch: u16) -> Self {
        self.prefetch = prefetch;
        self
    }
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes a persistent message; returns once the broker has taken
    /// responsibility for it (publisher confirm).
    async fn publish(&self, routing_key: &str, payload: Bytes) -> Result<()>;

    /// Publishes messages in order and returns once the broker confirmed
    /// all of them. On an error some may have been stored: publishing the
    /// batch again may duplicate them (at-least-once).
    async fn publish_batch(&self, messages: &[Message]) -> Result<()>;

    /// Puts one message straight into `queue` (declared before), keeping
    /// `routing_key` as the key its consumer sees: for re-delivering an
    /// event to one consumer (replay, catch-up) without the others. Fails
    /// with `NotFound` when no such queue exists.
    async fn send_to_queue(&self, queue: &str, routing_key: &str, payload: Bytes) -> Result<()>;

    /// Declares the queue (durable, idempotent) with its bindings. Messages
    /// published after this are kept for the queue even with no subscriber.
    async fn declare_queue(&self, spec: &QueueSpec) -> Result<()>;

    /// Declares the queue and starts consuming from it.
    async fn subscribe(&self, spec: &QueueSpec) -> Result<Box<dyn Subscription>>;

    /// Answers when the backend is reachable (`/readyz`).
    async fn ping(&self) -> Result<()>;

    /// Whether queued messages survive a restart of this process (false
    /// for the in-process bus: consumers then catch up from the event log).
    fn durable(&self) -> bool {
        true
    }

    /// Waits for publishes in flight to be confirmed and closes connections;
    /// later calls fail. Called on graceful shutdown.
    async fn close(&self) -> Result<()>;
}

/// A stream of deliveries from one queue.
#[async_trait]
pub trait Subscription: Send {
    /// The next delivery; `None` once the bus is closed. Survives broker
    /// reconnects: unacknowledged deliveries are redelivered.
    async fn next(&mut self) -> Result<Option<Delivery>>;
}

/// One message handed to a consumer. Dropping it without [`Delivery::ack`]
/// or [`Delivery::nack`] leaves it unacknowledged until the subscription
/// ends, when it is redelivered.
pub struct Delivery {
    pub routing_key: String,
    pub payload: Bytes,
    /// True when this message was delivered before and not acknowledged.
    pub redelivered: bool,
    /// 1 on the first delivery; one more after each [`Delivery::retry_later`].
    pub attempt: u32,
    /// The error given to the last [`Delivery::retry_later`] or
    /// [`Delivery::dead_letter`] of this message.
    pub last_error: Option<String>,
    acker: Box<dyn Acker>,
}

/// Where a message is moved to when its consumer gives it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Park {
    /// The queue's retry queue, for another attempt after the delay.
    Retry,
    /// The queue's dead-letter queue, for good.
    DeadLetter,
}

impl Delivery {
    pub(crate) fn new(
        routing_key: String,
        payload: Bytes,
        redelivered: bool,
        attempt: u32,
        last_error: Option<String>,
        acker: Box<dyn Acker>,
    ) -> Self {
        Self {
            routing_key,
            payload,
            redelivered,
            attempt,
            last_error,
            acker,
        }
    }

    /// Handling failed: the message is offered again after the queue's
    /// `retry_delay` with `attempt` one higher and `error` kept. The copy is
    /// confirmed before the original is acknowledged, so a crash in between
    /// duplicates it rather than losing it. Fails with `InvalidArgument`
    /// when the queue has no retry delay.
    pub async fn retry_later(self, error: &str) -> Result<()> {
        self.acker
            .park(Park::Retry, self.attempt, truncate_error(error))
            .await
    }

    /// Handling failed for good: the message moves to the queue's
    /// dead-letter queue ([`dead_letter_queue`]) with `error` kept, and no
    /// longer holds up the messages behind it.
    pub async fn dead_letter(self, error: &str) -> Result<()> {
        self.acker
            .park(Park::DeadLetter, self.attempt, truncate_error(error))
            .await
    }

    /// The message is handled: the queue forgets it.
    pub async fn ack(self) -> Result<()> {
        self.acker.ack().await
    }

    /// The message was not handled: back to the queue if `requeue`, else
    /// dropped (or dead-lettered where the queue has a dead-letter target).
    pub async fn nack(self, requeue: bool) -> Result<()> {
        self.acker.nack(requeue).await
    }

    /// Acknowledges several deliveries at once. On RabbitMQ, deliveries of
    /// one channel that are its oldest unsettled ones go as a single
    /// `basic.ack` with `multiple` set (AMQP 0-9-1, basic.ack), which
    /// spares the broker one acknowledgement per message; the rest are
    /// acknowledged one by one. The first error is returned, after every
    /// acknowledgement was attempted.
    pub async fn ack_all(deliveries: impl IntoIterator<Item = Delivery>) -> Result<()> {
        let mut ackers = deliveries.into_iter().map(|delivery| delivery.acker);
        match ackers.next() {
            Some(first) => first.ack_together(ackers.collect()).await,
            None => Ok(()),
        }
    }
}

/// Acknowledges `ackers` one by one, concurrently; the first error wins.
pub(crate) async fn ack_each(ackers: Vec<Box<dyn Acker>>) -> Result<()> {
    let results = futures::future::join_all(ackers.into_iter().map(|acker| acker.ack())).await;
    results.into_iter().collect()
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("routing_key", &self.routing_key)
            .field("payload_len", &self.payload.len())
            .field("redelivered", &self.redelivered)
            .field("attempt", &self.attempt)
            .finish()
    }
}

/// Settles one delivery with the backend it came from.
#[async_trait]
pub(crate) trait Acker: Send + Sync {
    async fn ack(self: Box<Self>) -> Result<()>;
    async fn nack(self: Box<Self>, requeue: bool) -> Result<()>;
    /// Moves the message (a copy with `attempt` and `error`) to its retry
    /// or dead-letter queue, then acknowledges the original.
    async fn park(self: Box<Self>, park: Park, attempt: u32, error: &str) -> Result<()>;
    /// Acknowledges this delivery and `others`, as few round trips as the
    /// backend allows.
    async fn ack_together(self: Box<Self>, others: Vec<Box<dyn Acker>>) -> Result<()>;
    /// For backends that batch acknowledgements: the concrete acker.
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send>;
}
