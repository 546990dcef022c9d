//! RabbitMQ bus (lapin): persistent messages on a durable topic exchange,
//! publisher confirms, durable queues consumed with manual acknowledgement.
//!
//! Queues live on the broker under the exchange's name
//! ([`broker_queue_name`]: queue `webhooks` of exchange `switchboard` is
//! `switchboard.webhooks`, with `switchboard.webhooks.retry` and
//! `switchboard.webhooks.dead`), so two installations sharing a vhost with
//! their own exchanges never consume each other's queues.
//!
//! Publishing and consuming use separate connections, as RabbitMQ
//! recommends (flow control on a publishing connection must not stall
//! consumers). Each connection is re-opened by whoever needs it next after
//! it drops; lapin's own auto-recovery is not used, so every reconnect
//! attempt is bounded and visible here:
//!
//! - `publish` retries with backoff for about [`PUBLISH_RECONNECT_WINDOW`],
//!   then fails with [`Error::Unavailable`]. A publish retried after its
//!   connection dropped may be stored twice (at-least-once).
//! - `ping` checks the connection status and tries one reconnect.
//! - a [`Subscription`] re-opens its channel and consumer with exponential
//!   backoff (100 ms doubling to 5 s) until it succeeds or the bus is
//!   closed; RabbitMQ redelivers what was unacknowledged, marked
//!   `redelivered`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPHardError};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::uri::AMQPUri;
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer, ErrorKind,
    ExchangeKind,
};
use tokio::time::{Instant, sleep, timeout, timeout_at};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{
    Acker, Bus, Delivery, Message, Park, QueueSpec, Subscription, dead_letter_queue, retry_queue,
};
use crate::{BackendKind, Error, Result};

/// One attempt at opening a connection (TCP + AMQP handshake).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A broker round trip: channel setup, declarations, one confirm.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a publish keeps retrying while the broker is unreachable.
const PUBLISH_RECONNECT_WINDOW: Duration = Duration::from_secs(2);
/// How long `ping` may take, reconnect attempt included.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// How long `close` waits for publishes in flight and for the broker.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Heartbeat asked of the broker when the URL names none, so a peer that
/// vanished without closing TCP is noticed within about 20 s.
const DEFAULT_HEARTBEAT_SECS: u16 = 10;
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Header carrying the original routing key of a message put straight
/// into a queue (the default exchange routes by queue name).
const ROUTING_KEY_HEADER: &str = "x-switchboard-routing-key";
/// Header carrying the attempt number of a retried message.
const ATTEMPT_HEADER: &str = "x-switchboard-attempt";
/// Header carrying the error a message was retried or dead-lettered with.
const ERROR_HEADER: &str = "x-switchboard-error";

/// One message on its way to an exchange.
struct Outgoing<'a> {
    /// Empty: the default exchange, which routes to the queue so named.
    exchange: ShortString,
    routing_key: ShortString,
    payload: &'a [u8],
    headers: Option<FieldTable>,
    /// Per-message TTL (milliseconds), for messages waiting out a retry.
    expiration: Option<ShortString>,
}

/// Headers of a message sent straight to a queue.
fn direct_headers(routing_key: &str, attempt: u32, error: Option<&str>) -> FieldTable {
    let mut headers = FieldTable::default();
    headers.insert(
        ROUTING_KEY_HEADER.into(),
        AMQPValue::LongString(LongString::from(routing_key)),
    );
    headers.insert(
        ATTEMPT_HEADER.into(),
        AMQPValue::LongLongInt(i64::from(attempt)),
    );
    if let Some(error) = error {
        headers.insert(
            ERROR_HEADER.into(),
            AMQPValue::LongString(LongString::from(error)),
        );
    }
    headers
}

fn header_string(headers: Option<&FieldTable>, name: &str) -> Option<String> {
    match headers?.inner().get(name)? {
        AMQPValue::LongString(value) => {
            Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
        }
        AMQPValue::ShortString(value) => Some(value.as_str().to_owned()),
        _ => None,
    }
}

fn header_attempt(headers: Option<&FieldTable>) -> u32 {
    let value = headers.and_then(|headers| headers.inner().get(ATTEMPT_HEADER));
    let attempt = match value {
        Some(AMQPValue::LongLongInt(value)) => u32::try_from(*value).ok(),
        Some(AMQPValue::LongInt(value)) => u32::try_from(*value).ok(),
        Some(AMQPValue::LongUInt(value)) => Some(*value),
        _ => None,
    };
    attempt.unwrap_or(1).max(1)
}

/// The RabbitMQ bus. Clones share connections.
#[derive(Clone)]
pub struct RabbitMqBus {
    inner: Arc<Inner>,
}

struct Inner {
    exchange: ShortString,
    /// Upper bound on any subscription's prefetch (0: none).
    prefetch: u16,
    publishing: Link,
    consuming: Link,
    /// The publishing channel, in confirm mode.
    publisher: Mutex<Option<Channel>>,
    publisher_setup: tokio::sync::Mutex<()>,
    /// Held shared by each publish, exclusively by `close` to wait for them.
    in_flight: tokio::sync::RwLock<()>,
    closed: CancellationToken,
}

/// One connection, re-opened on demand after it drops.
struct Link {
    role: &'static str,
    uri: AMQPUri,
    /// `host:port`, for messages (the URL may carry a password).
    endpoint: String,
    current: Mutex<Option<Arc<Connection>>>,
    /// Set once a connection was opened: from then on `ping` checks it.
    opened: AtomicBool,
    /// One connection attempt at a time.
    connecting: tokio::sync::Mutex<()>,
    closed: CancellationToken,
}

/// A poisoned lock means a panic while holding it; the guarded values are
/// replaced whole, so they are still consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An AMQP short string (at most 255 bytes), refused as invalid otherwise.
fn short_string(what: &str, value: &str) -> Result<ShortString> {
    ShortString::try_new(value)
        .map_err(|error| Error::InvalidArgument(format!("{what} {value:?}: {error}")))
}

/// Maps a lapin error, prefixed with what failed.
fn lapin_error(context: &str, error: &lapin::Error) -> Error {
    let retryable = match error.kind() {
        ErrorKind::IOError(_)
        | ErrorKind::RuntimeShutdownError(_)
        | ErrorKind::InvalidConnectionState(_)
        | ErrorKind::InvalidChannelState(..)
        | ErrorKind::InvalidChannel(_)
        | ErrorKind::ChannelsLimitReached
        | ErrorKind::MissingHeartbeatError => true,
        // The broker is shutting down or restarting.
        ErrorKind::ProtocolError(amqp) => matches!(
            amqp.kind(),
            AMQPErrorKind::Hard(AMQPHardError::CONNECTIONFORCED)
        ),
        _ => false,
    };
    if retryable {
        Error::unavailable(BackendKind::Bus, format!("{context}: {error}"))
    } else {
        Error::backend(BackendKind::Bus, format!("{context}: {error}"))
    }
}

/// Runs one broker operation with a time limit.
async fn bounded<T>(context: &str, operation: impl Future<Output = lapin::Result<T>>) -> Result<T> {
    match timeout(OPERATION_TIMEOUT, operation).await {
        Ok(result) => result.map_err(|error| lapin_error(context, &error)),
        Err(_) => Err(Error::unavailable(
            BackendKind::Bus,
            format!("{context}: no answer from RabbitMQ within {OPERATION_TIMEOUT:?}"),
        )),
    }
}

/// The same error, its detail prefixed with what was being done.
fn prefixed(context: &str, error: Error) -> Error {
    match error {
        Error::Unavailable { backend, detail } => {
            Error::unavailable(backend, format!("{context}: {detail}"))
        }
        Error::Backend { backend, detail } => {
            Error::backend(backend, format!("{context}: {detail}"))
        }
        Error::NotFound(detail) => Error::NotFound(format!("{context}: {detail}")),
        Error::InvalidArgument(detail) => Error::InvalidArgument(format!("{context}: {detail}")),
    }
}

fn bus_closed(context: &str) -> Error {
    Error::unavailable(BackendKind::Bus, format!("{context}: the bus is closed"))
}

/// Exponential backoff between reconnect attempts.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self {
            next: BACKOFF_FIRST,
        }
    }

    fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (delay * 2).min(BACKOFF_MAX);
        delay
    }

    fn reset(&mut self) {
        self.next = BACKOFF_FIRST;
    }
}

impl Link {
    fn new(role: &'static str, uri: &AMQPUri, closed: &CancellationToken) -> Self {
        Self {
            role,
            endpoint: format!("{}:{}", uri.authority.host, uri.authority.port),
            uri: uri.clone(),
            current: Mutex::new(None),
            opened: AtomicBool::new(false),
            connecting: tokio::sync::Mutex::new(()),
            closed: closed.clone(),
        }
    }

    fn live(&self) -> Option<Arc<Connection>> {
        lock(&self.current)
            .as_ref()
            .filter(|connection| connection.status().connected())
            .cloned()
    }

    /// Whether this link was ever opened.
    fn in_use(&self) -> bool {
        self.opened.load(Ordering::Relaxed)
    }

    /// The open connection, or one attempt at opening a new one.
    async fn connection(&self) -> Result<Arc<Connection>> {
        if let Some(connection) = self.live() {
            return Ok(connection);
        }
        let _turn = self.connecting.lock().await;
        if let Some(connection) = self.live() {
            return Ok(connection);
        }
        let context = format!("cannot connect to RabbitMQ at {}", self.endpoint);
        if self.closed.is_cancelled() {
            return Err(bus_closed(&context));
        }
        if lock(&self.current).take().is_some() {
            warn!(role = self.role, endpoint = %self.endpoint, "rabbitmq connection lost, reconnecting");
        }
        let properties = ConnectionProperties::default()
            .with_connection_name(format!("switchboard {}", self.role).into());
        let connection = match timeout(
            CONNECT_TIMEOUT,
            Connection::connect_uri(self.uri.clone(), properties),
        )
        .await
        {
            Ok(Ok(connection)) => Arc::new(connection),
            // A refusal by the broker (credentials, vhost) is a backend
            // error; anything on the way there is unavailability.
            Ok(Err(error)) => return Err(lapin_error(&context, &error)),
            Err(_) => {
                return Err(Error::unavailable(
                    BackendKind::Bus,
                    format!("{context}: timed out after {CONNECT_TIMEOUT:?}"),
                ));
            }
        };
        {
            // Checked under the lock `close` takes the connection with, so a
            // connection opened while closing is never left behind.
            let mut current = lock(&self.current);
            if !self.closed.is_cancelled() {
                *current = Some(connection.clone());
                drop(current);
                self.opened.store(true, Ordering::Relaxed);
                info!(role = self.role, endpoint = %self.endpoint, "rabbitmq connected");
                return Ok(connection);
            }
        }
        let _ = timeout(CLOSE_TIMEOUT, connection.close(200, "bus closed".into())).await;
        Err(bus_closed(&context))
    }

    async fn close(&self) {
        let Some(connection) = lock(&self.current).take() else {
            return;
        };
        if !connection.status().connected() {
            return;
        }
        match timeout(CLOSE_TIMEOUT, connection.close(200, "OK".into())).await {
            Ok(Ok(())) => debug!(role = self.role, "rabbitmq connection closed"),
            Ok(Err(error)) => {
                warn!(role = self.role, error = %error, "rabbitmq connection close failed")
            }
            Err(_) => warn!(role = self.role, "rabbitmq connection close timed out"),
        }
    }
}

impl RabbitMqBus {
    /// Connects now, so a wrong URL or an unreachable broker fails at start,
    /// and declares `exchange` (a durable topic exchange). `prefetch` caps
    /// the prefetch of every subscription (`QueueSpec::prefetch`); it is
    /// also used for a spec that asks for 0 (unlimited).
    pub async fn connect(url: &str, exchange: &str, prefetch: u16) -> Result<Self> {
        let mut uri: AMQPUri = url
            .parse()
            .map_err(|error| Error::InvalidArgument(format!("invalid RabbitMQ URL: {error}")))?;
        if exchange.is_empty() {
            return Err(Error::InvalidArgument(
                "RabbitMQ exchange name must not be empty".into(),
            ));
        }
        if uri.query.heartbeat.is_none() {
            uri.query.heartbeat = Some(DEFAULT_HEARTBEAT_SECS);
        }
        let closed = CancellationToken::new();
        let inner = Arc::new(Inner {
            exchange: short_string("exchange name", exchange)?,
            prefetch,
            publishing: Link::new("publishing", &uri, &closed),
            consuming: Link::new("consuming", &uri, &closed),
            publisher: Mutex::new(None),
            publisher_setup: tokio::sync::Mutex::new(()),
            in_flight: tokio::sync::RwLock::new(()),
            closed,
        });
        inner.publisher().await?;
        Ok(Self { inner })
    }
}

impl Inner {
    fn ensure_open(&self, context: &str) -> Result<()> {
        if self.closed.is_cancelled() {
            Err(bus_closed(context))
        } else {
            Ok(())
        }
    }

    fn effective_prefetch(&self, requested: u16) -> u16 {
        match (requested, self.prefetch) {
            (0, cap) => cap,
            (requested, 0) => requested,
            (requested, cap) => requested.min(cap),
        }
    }

    async fn declare_exchange(&self, channel: &Channel) -> Result<()> {
        let options = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        let declare = channel.exchange_declare(
            self.exchange.clone(),
            ExchangeKind::Topic,
            options,
            FieldTable::default(),
        );
        bounded(
            &format!("RabbitMQ declare exchange {}", self.exchange),
            declare,
        )
        .await
    }

    /// Declares the exchange, the durable queue and its bindings.
    async fn declare_topology(&self, channel: &Channel, spec: &QueueSpec) -> Result<()> {
        let queue = self.queue_name(&spec.name)?;
        self.declare_exchange(channel).await?;
        let declare = channel.queue_declare(
            queue.clone(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        );
        bounded(&format!("RabbitMQ declare queue {queue}"), declare).await?;
        let dead = self.queue_name(&dead_letter_queue(&spec.name))?;
        let declare = channel.queue_declare(
            dead.clone(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        );
        bounded(&format!("RabbitMQ declare queue {dead}"), declare).await?;
        if spec.retry_delay.is_some() {
            // Messages wait out the delay in the retry queue, then expire
            // back into the main queue through the default exchange. The
            // delay is each message's own TTL, not an argument of the
            // queue: a queue argument could never change (redeclaring with
            // another one fails), so neither could the configured delay.
            let retry = self.queue_name(&retry_queue(&spec.name))?;
            let mut arguments = FieldTable::default();
            arguments.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString(LongString::from("")),
            );
            arguments.insert(
                "x-dead-letter-routing-key".into(),
                AMQPValue::LongString(LongString::from(queue.as_str())),
            );
            let declare =
                channel.queue_declare(retry.clone(), QueueDeclareOptions::durable(), arguments);
            bounded(&format!("RabbitMQ declare queue {retry}"), declare).await?;
        }
        for binding in &spec.bindings {
            let context = format!(
                "RabbitMQ bind queue {queue} to exchange {} with {binding:?}",
                self.exchange
            );
            let pattern = short_string("binding pattern", binding)?;
            let bind = channel.queue_bind(
                queue.clone(),
                self.exchange.clone(),
                pattern,
                QueueBindOptions::default(),
                FieldTable::default(),
            );
            bounded(&context, bind).await?;
        }
        Ok(())
    }

    /// The publishing channel, re-opened (with its connection if needed)
    /// once if it is gone.
    async fn publisher(&self) -> Result<Channel> {
        let usable = |slot: &Option<Channel>| {
            slot.as_ref()
                .filter(|channel| channel.status().connected())
                .cloned()
        };
        if let Some(channel) = usable(&lock(&self.publisher)) {
            return Ok(channel);
        }
        let _turn = self.publisher_setup.lock().await;
        if let Some(channel) = usable(&lock(&self.publisher)) {
            return Ok(channel);
        }
        let connection = self.publishing.connection().await?;
        let channel = bounded(
            "RabbitMQ open publishing channel",
            connection.create_channel(),
        )
        .await?;
        bounded(
            "RabbitMQ enable publisher confirms",
            channel.confirm_select(ConfirmSelectOptions::default()),
        )
        .await?;
        self.declare_exchange(&channel).await?;
        let mut slot = lock(&self.publisher);
        if self.closed.is_cancelled() {
            return Err(bus_closed("RabbitMQ open publishing channel"));
        }
        *slot = Some(channel.clone());
        Ok(channel)
    }

    /// Publishes `messages` in order on the confirming channel, then waits
    /// for every confirm (pipelined: one round trip for the batch).
    async fn publish_once(&self, messages: &[Outgoing<'_>], deadline: Instant) -> Result<()> {
        let context = format!("RabbitMQ publish to exchange {}", self.exchange);
        let channel = match timeout_at(deadline, self.publisher()).await {
            Ok(Ok(channel)) => channel,
            Ok(Err(error)) => return Err(prefixed(&context, error)),
            Err(_) => {
                return Err(Error::unavailable(
                    BackendKind::Bus,
                    format!("{context}: not connected within {PUBLISH_RECONNECT_WINDOW:?}"),
                ));
            }
        };
        let publishes = messages.iter().map(|message| {
            let mut properties = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/octet-stream".into());
            if let Some(headers) = &message.headers {
                properties = properties.with_headers(headers.clone());
            }
            if let Some(expiration) = &message.expiration {
                properties = properties.with_expiration(expiration.clone());
            }
            // A message sent straight to a queue is mandatory: if the queue
            // does not exist the broker returns it instead of dropping it.
            let direct = message.exchange.as_str().is_empty();
            let options = BasicPublishOptions {
                mandatory: direct,
                ..BasicPublishOptions::default()
            };
            bounded(
                &context,
                channel.basic_publish(
                    message.exchange.clone(),
                    message.routing_key.clone(),
                    options,
                    message.payload,
                    properties,
                ),
            )
        });
        // `join_all` polls every publish once, in order, before waiting on
        // any: lapin's `basic_publish` queues its frames before its first
        // await (and `timeout` polls it before its timer), so the frames go
        // out in message order without a round trip per message (a
        // 500-message batch: ~45 ms awaited one by one, ~25 ms together,
        // measured in loadtest/events).
        let confirms = futures::future::join_all(publishes)
            .await
            .into_iter()
            .collect::<Result<Vec<_>>>()?;
        for (confirm, message) in confirms.into_iter().zip(messages) {
            match bounded(&context, confirm).await? {
                Confirmation::Ack(None) | Confirmation::NotRequested => {}
                Confirmation::Ack(Some(_)) => {
                    return Err(Error::NotFound(format!(
                        "{context}: no queue named {}",
                        message.routing_key
                    )));
                }
                Confirmation::Nack(_) => {
                    return Err(Error::backend(
                        BackendKind::Bus,
                        format!("{context}: the broker refused a message (nack)"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// [`Self::publish_once`], retried with backoff while the broker is
    /// unreachable, for about [`PUBLISH_RECONNECT_WINDOW`].
    async fn publish_all(&self, messages: &[Outgoing<'_>]) -> Result<()> {
        let context = format!("RabbitMQ publish to exchange {}", self.exchange);
        self.ensure_open(&context)?;
        let _in_flight = self.in_flight.read().await;
        self.ensure_open(&context)?;
        let deadline = Instant::now() + PUBLISH_RECONNECT_WINDOW;
        let mut backoff = Backoff::new();
        loop {
            let error = match self.publish_once(messages, deadline).await {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            let delay = backoff.next_delay();
            if !error.is_unavailable()
                || self.closed.is_cancelled()
                || Instant::now() + delay >= deadline
            {
                return Err(error);
            }
            warn!(exchange = %self.exchange, error = %error, ?delay, "rabbitmq publish failed, retrying");
            sleep(delay).await;
        }
    }

    /// Opens a channel on the consuming connection and starts consuming.
    async fn consume(&self, spec: &QueueSpec) -> Result<(Channel, Consumer)> {
        let queue = self.queue_name(&spec.name)?;
        let connection = self.consuming.connection().await?;
        let channel = bounded(
            &format!("RabbitMQ open channel for queue {queue}"),
            connection.create_channel(),
        )
        .await?;
        let prefetch = self.effective_prefetch(spec.prefetch);
        let qos = channel.basic_qos(prefetch, BasicQosOptions::default());
        bounded(
            &format!("RabbitMQ set prefetch {prefetch} for queue {queue}"),
            qos,
        )
        .await?;
        self.declare_topology(&channel, spec).await?;
        let consume = channel.basic_consume(
            queue.clone(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        );
        let consumer = bounded(&format!("RabbitMQ consume from queue {queue}"), consume).await?;
        debug!(queue = %queue, prefetch, "rabbitmq consumer started");
        Ok((channel, consumer))
    }
}

/// The name on the broker of queue `queue` of the bus on `exchange`:
/// `<exchange>.<queue>` (retry and dead-letter queues alike, as
/// `<exchange>.<queue>.retry` and `<exchange>.<queue>.dead`).
pub fn broker_queue_name(exchange: &str, queue: &str) -> String {
    format!("{exchange}.{queue}")
}

impl Inner {
    /// [`broker_queue_name`] of `queue`, checked.
    fn queue_name(&self, queue: &str) -> Result<ShortString> {
        if queue.is_empty() {
            return Err(Error::InvalidArgument(
                "queue name must not be empty".into(),
            ));
        }
        short_string(
            "queue name",
            &broker_queue_name(self.exchange.as_str(), queue),
        )
    }
}

#[async_trait]
impl Bus for RabbitMqBus {
    async fn publish(&self, routing_key: &str, payload: Bytes) -> Result<()> {
        let inner = &*self.inner;
        let message = Outgoing {
            exchange: inner.exchange.clone(),
            routing_key: short_string("routing key", routing_key)?,
            payload: &payload,
            headers: None,
            expiration: None,
        };
        inner.publish_all(std::slice::from_ref(&message)).await
    }

    async fn publish_batch(&self, messages: &[Message]) -> Result<()> {
        let inner = &*self.inner;
        let outgoing = messages
            .iter()
            .map(|message| {
                Ok(Outgoing {
                    exchange: inner.exchange.clone(),
                    routing_key: short_string("routing key", &message.routing_key)?,
                    payload: &message.payload,
                    headers: None,
                    expiration: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if outgoing.is_empty() {
            return Ok(());
        }
        inner.publish_all(&outgoing).await
    }

    async fn send_to_queue(&self, queue: &str, routing_key: &str, payload: Bytes) -> Result<()> {
        let inner = &*self.inner;
        let message = Outgoing {
            exchange: ShortString::default(),
            routing_key: inner.queue_name(queue)?,
            payload: &payload,
            headers: Some(direct_headers(routing_key, 1, None)),
            expiration: None,
        };
        inner.publish_all(std::slice::from_ref(&message)).await
    }

    async fn declare_queue(&self, spec: &QueueSpec) -> Result<()> {
        let inner = &*self.inner;
        inner.ensure_open(&format!("RabbitMQ declare queue {}", spec.name))?;
        inner.queue_name(&spec.name)?;
        let connection = inner.consuming.connection().await?;
        let channel = bounded(
            &format!("RabbitMQ open channel to declare queue {}", spec.name),
            connection.create_channel(),
        )
        .await?;
        let declared = inner.declare_topology(&channel, spec).await;
        if channel.status().connected() {
            let _ = timeout(OPERATION_TIMEOUT, channel.close(200, "OK".into())).await;
        }
        declared
    }

    async fn subscribe(&self, spec: &QueueSpec) -> Result<Box<dyn Subscription>> {
        let inner = &self.inner;
        inner.ensure_open(&format!("RabbitMQ subscribe to queue {}", spec.name))?;
        let queue = inner.queue_name(&spec.name)?;
        let current = inner.consume(spec).await?;
        Ok(Box::new(RabbitMqSubscription {
            inner: inner.clone(),
            spec: spec.clone(),
            queue: queue.as_str().into(),
            current: Some(current),
            unsettled: Unsettled::default(),
            backoff: Backoff::new(),
        }))
    }

    async fn ping(&self) -> Result<()> {
        let inner = &*self.inner;
        inner.ensure_open("RabbitMQ ping")?;
        let check = async {
            inner.publisher().await?;
            if inner.consuming.in_use() {
                inner.consuming.connection().await?;
            }
            Ok(())
        };
        match timeout(PING_TIMEOUT, check).await {
            Ok(result) => result,
            Err(_) => Err(Error::unavailable(
                BackendKind::Bus,
                format!(
                    "RabbitMQ ping {}: no answer within {PING_TIMEOUT:?}",
                    inner.publishing.endpoint
                ),
            )),
        }
    }

    async fn close(&self) -> Result<()> {
        let inner = &*self.inner;
        if inner.closed.is_cancelled() {
            return Ok(());
        }
        // New publishes and subscriptions fail from here; pending `next()`
        // calls return `None`.
        inner.closed.cancel();
        if timeout(CLOSE_TIMEOUT, inner.in_flight.write())
            .await
            .is_err()
        {
            warn!(exchange = %inner.exchange, "rabbitmq close: publishes still unconfirmed, closing anyway");
        }
        let publisher = lock(&inner.publisher).take();
        if let Some(channel) = publisher.filter(|channel| channel.status().connected()) {
            if let Err(error) = bounded(
                "RabbitMQ wait for publisher confirms",
                channel.wait_for_confirms(),
            )
            .await
            {
                warn!(error = %error, "rabbitmq close: waiting for publisher confirms failed");
            }
            let _ = timeout(CLOSE_TIMEOUT, channel.close(200, "OK".into())).await;
        }
        inner.publishing.close().await;
        inner.consuming.close().await;
        info!(exchange = %inner.exchange, "rabbitmq bus closed");
        Ok(())
    }
}

struct RabbitMqSubscription {
    inner: Arc<Inner>,
    spec: QueueSpec,
    queue: Arc<str>,
    /// The channel and consumer deliveries come from; `None` between a
    /// lost connection and the next successful re-subscribe.
    current: Option<(Channel, Consumer)>,
    /// Delivery tags of `current` not settled yet.
    unsettled: Unsettled,
    backoff: Backoff,
}

/// The delivery tags of one consumer channel that are handed out and not
/// settled yet, so that several acknowledgements can go as one
/// `basic.ack` with `multiple` only when that acknowledges nothing else.
/// A tag leaves the set once its own settlement was sent.
type Unsettled = Arc<Mutex<std::collections::BTreeSet<u64>>>;

impl RabbitMqSubscription {
    fn delivery(&self, delivery: lapin::message::Delivery) -> Delivery {
        let headers = delivery.properties.headers().as_ref();
        let routing_key = header_string(headers, ROUTING_KEY_HEADER)
            .unwrap_or_else(|| delivery.routing_key.as_str().to_owned());
        let attempt = header_attempt(headers);
        let last_error = header_string(headers, ERROR_HEADER);
        let payload = Bytes::from(delivery.data);
        let tag = delivery.delivery_tag;
        lock(&self.unsettled).insert(tag);
        let acker = RabbitMqAcker {
            acker: delivery.acker,
            tag,
            unsettled: self.unsettled.clone(),
            queue: self.queue.clone(),
            inner: self.inner.clone(),
            retry_delay: self.spec.retry_delay,
            routing_key: routing_key.clone(),
            payload: payload.clone(),
        };
        Delivery::new(
            routing_key,
            payload,
            delivery.redelivered,
            attempt,
            last_error,
            Box::new(acker),
        )
    }

    /// Re-opens the channel and consumer, waiting out the backoff first.
    /// `Ok(false)`: the bus was closed meanwhile.
    async fn resubscribe(&mut self) -> Result<bool> {
        let delay = self.backoff.next_delay();
        tokio::select! {
            () = self.inner.closed.cancelled() => return Ok(false),
            () = sleep(delay) => {}
        }
        let consume = self.inner.consume(&self.spec);
        let result = tokio::select! {
            () = self.inner.closed.cancelled() => return Ok(false),
            result = consume => result,
        };
        match result {
            Ok(current) => {
                info!(queue = %self.queue, "rabbitmq consumer resubscribed");
                self.current = Some(current);
                // Tags start again at 1 on the new channel.
                self.unsettled = Unsettled::default();
                Ok(true)
            }
            Err(error) if error.is_unavailable() => {
                warn!(queue = %self.queue, error = %error, retry_in = ?self.backoff.next, "rabbitmq resubscribe failed");
                Ok(true)
            }
            Err(error) => Err(error),
        }
    }
}

#[async_trait]
impl Subscription for RabbitMqSubscription {
    async fn next(&mut self) -> Result<Option<Delivery>> {
        loop {
            if self.inner.closed.is_cancelled() {
                return Ok(None);
            }
            let Some((_, consumer)) = self.current.as_mut() else {
                if !self.resubscribe().await? {
                    return Ok(None);
                }
                continue;
            };
            let item = tokio::select! {
                () = self.inner.closed.cancelled() => return Ok(None),
                item = consumer.next() => item,
            };
            match item {
                Some(Ok(delivery)) => {
                    self.backoff.reset();
                    return Ok(Some(self.delivery(delivery)));
                }
                Some(Err(error)) => {
                    warn!(queue = %self.queue, error = %error, "rabbitmq consumer interrupted, resubscribing");
                }
                None => {
                    warn!(queue = %self.queue, "rabbitmq consumer cancelled by the broker, resubscribing");
                }
            }
            self.current = None;
        }
    }
}

impl Drop for RabbitMqSubscription {
    /// Closing the channel makes RabbitMQ requeue what this subscription
    /// left unacknowledged. (lapin would also close it once the consumer
    /// is cancelled; this does not wait for that round trip.)
    fn drop(&mut self) {
        let Some((channel, consumer)) = self.current.take() else {
            return;
        };
        drop(consumer);
        if !channel.status().connected() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = timeout(CLOSE_TIMEOUT, channel.close(200, "OK".into())).await;
            });
        }
    }
}

struct RabbitMqAcker {
    acker: lapin::Acker,
    tag: u64,
    unsettled: Unsettled,
    queue: Arc<str>,
    inner: Arc<Inner>,
    retry_delay: Option<Duration>,
    routing_key: String,
    payload: Bytes,
}

impl RabbitMqAcker {
    async fn settle(
        &self,
        operation: &str,
        result: impl Future<Output = lapin::Result<bool>>,
    ) -> Result<()> {
        let context = format!("RabbitMQ {operation} on queue {}", self.queue);
        let settled = bounded(&context, result).await;
        lock(&self.unsettled).remove(&self.tag);
        match settled? {
            true => Ok(()),
            false => Err(Error::unavailable(
                BackendKind::Bus,
                format!(
                    "{context}: the channel the message came on is closed; RabbitMQ will redeliver it"
                ),
            )),
        }
    }
}

#[async_trait]
impl Acker for RabbitMqAcker {
    async fn ack(self: Box<Self>) -> Result<()> {
        self.settle("ack", self.acker.ack(BasicAckOptions::default()))
            .await
    }

    /// One `basic.ack` with `multiple` for the deliveries of a channel
    /// when no older delivery of that channel is unsettled (or being
    /// settled); otherwise one acknowledgement each.
    async fn ack_together(self: Box<Self>, others: Vec<Box<dyn Acker>>) -> Result<()> {
        let mut groups: Vec<Vec<RabbitMqAcker>> = Vec::new();
        let mut foreign: Vec<Box<dyn Acker>> = Vec::new();
        let mut mixed = false;
        let own = std::iter::once(*self).chain(others.into_iter().filter_map(|other| {
            // Another bus's delivery cannot be settled here; it stays
            // unacknowledged and is redelivered when its subscription ends.
            let acker = other.into_any().downcast::<RabbitMqAcker>().ok();
            mixed |= acker.is_none();
            acker.map(|acker| *acker)
        }));
        let own: Vec<RabbitMqAcker> = own.collect();
        let mut outcomes = Vec::new();
        if mixed {
            outcomes.push(Err(Error::InvalidArgument(
                "deliveries of different buses cannot be acknowledged together".into(),
            )));
        }
        for acker in own {
            match groups
                .iter_mut()
                .find(|group| Arc::ptr_eq(&group[0].unsettled, &acker.unsettled))
            {
                Some(group) => group.push(acker),
                None => groups.push(vec![acker]),
            }
        }
        for mut group in groups {
            group.sort_by_key(|acker| acker.tag);
            let newest = group.last().map_or(0, |acker| acker.tag);
            let covered = {
                let unsettled = lock(&group[0].unsettled);
                // Every unsettled tag up to the newest must be one of ours.
                unsettled.range(..=newest).count() == group.len()
            };
            if covered && group.len() > 1 {
                let newest = group.pop().expect("group is not empty");
                {
                    let mut unsettled = lock(&newest.unsettled);
                    for acker in &group {
                        unsettled.remove(&acker.tag);
                    }
                }
                let options = BasicAckOptions { multiple: true };
                outcomes.push(newest.settle("ack", newest.acker.ack(options)).await);
            } else {
                foreign.extend(
                    group
                        .into_iter()
                        .map(|acker| Box::new(acker) as Box<dyn Acker>),
                );
            }
        }
        outcomes.push(super::ack_each(foreign).await);
        outcomes.into_iter().collect()
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }

    async fn nack(self: Box<Self>, requeue: bool) -> Result<()> {
        let options = BasicNackOptions {
            requeue,
            ..BasicNackOptions::default()
        };
        self.settle("nack", self.acker.nack(options)).await
    }

    async fn park(self: Box<Self>, park: Park, attempt: u32, error: &str) -> Result<()> {
        let (target, attempt, expiration) = match (park, self.retry_delay) {
            (Park::Retry, None) => {
                return Err(Error::InvalidArgument(format!(
                    "queue {} was declared without a retry delay",
                    self.queue
                )));
            }
            (Park::Retry, Some(delay)) => (
                retry_queue(&self.queue),
                attempt.saturating_add(1),
                Some(ShortString::from(delay.as_millis().to_string())),
            ),
            (Park::DeadLetter, _) => (dead_letter_queue(&self.queue), attempt, None),
        };
        let message = Outgoing {
            exchange: ShortString::default(),
            routing_key: short_string("queue name", &target)?,
            payload: &self.payload,
            headers: Some(direct_headers(&self.routing_key, attempt, Some(error))),
            expiration,
        };
        // Confirmed first: a crash before the ack duplicates, never loses.
        self.inner
            .publish_all(std::slice::from_ref(&message))
            .await?;
        self.settle("ack", self.acker.ack(BasicAckOptions::default()))
            .await
    }
}
