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

use async_trait::async_trait;
use bytes::Bytes;

pub use self::memory::MemoryBus;
pub use self::rabbitmq::RabbitMqBus;
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
        }
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

    /// Declares the queue (durable, idempotent) with its bindings. Messages
    /// published after this are kept for the queue even with no subscriber.
    async fn declare_queue(&self, spec: &QueueSpec) -> Result<()>;

    /// Declares the queue and starts consuming from it.
    async fn subscribe(&self, spec: &QueueSpec) -> Result<Box<dyn Subscription>>;

    /// Answers when the backend is reachable (`/readyz`).
    async fn ping(&self) -> Result<()>;

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
    acker: Box<dyn Acker>,
}

impl Delivery {
    pub(crate) fn new(
        routing_key: String,
        payload: Bytes,
        redelivered: bool,
        acker: Box<dyn Acker>,
    ) -> Self {
        Self {
            routing_key,
            payload,
            redelivered,
            acker,
        }
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
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("routing_key", &self.routing_key)
            .field("payload_len", &self.payload.len())
            .field("redelivered", &self.redelivered)
            .finish()
    }
}

/// Settles one delivery with the backend it came from.
#[async_trait]
pub(crate) trait Acker: Send + Sync {
    async fn ack(self: Box<Self>) -> Result<()>;
    async fn nack(self: Box<Self>, requeue: bool) -> Result<()>;
}
