//! One behaviour suite for every `Bus` implementation: in-process and real
//! RabbitMQ (`SB_TEST_AMQP_URL`, default 127.0.0.1:5672).
//!
//! Each test uses its own exchange and queues (unique names), so tests can
//! run in parallel; RabbitMQ tests delete what they declared when done,
//! whether they passed or not.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};
use switchboard_platform::bus::{MemoryBus, RabbitMqBus, broker_queue_name};
use switchboard_platform::{
    Bus, Delivery, Message, QueueSpec, Subscription, dead_letter_queue, retry_queue,
};
use switchboard_test_utils::{
    ClosedPort, TcpProxy, amqp_url, eventually, init_tracing, unique_name,
};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Long enough for anything that should arrive, including a RabbitMQ
/// resubscribe after a reconnect.
const WAIT: Duration = Duration::from_secs(10);
/// How long we watch for something that should not arrive.
const QUIET: Duration = Duration::from_millis(300);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Memory,
    RabbitMq,
}

/// A bus for one test and the names it declared, for cleanup.
struct Harness {
    bus: Arc<dyn Bus>,
    backend: Backend,
    exchange: String,
    queues: Mutex<Vec<String>>,
}

impl Harness {
    async fn start(backend: Backend) -> Arc<Self> {
        let exchange = unique_name("sbt_x");
        let bus: Arc<dyn Bus> = match backend {
            Backend::Memory => Arc::new(MemoryBus::new()),
            Backend::RabbitMq => Arc::new(
                RabbitMqBus::connect(&amqp_url(), &exchange, 64)
                    .await
                    .expect("RabbitMQ is reachable (./scripts/test starts it)"),
            ),
        };
        Arc::new(Self {
            bus,
            backend,
            exchange,
            queues: Mutex::new(Vec::new()),
        })
    }

    /// A spec for a fresh, uniquely named queue.
    fn queue(&self, bindings: &[&str]) -> QueueSpec {
        let name = unique_name("sbt_q");
        self.queues.lock().unwrap().push(name.clone());
        QueueSpec::new(name, bindings.iter().copied())
    }

    /// Deletes this test's queues and exchange from RabbitMQ (best effort).
    async fn cleanup(&self) {
        if self.backend != Backend::RabbitMq {
            return;
        }
        let _ = timeout(Duration::from_secs(5), self.bus.close()).await;
        let queues = self.queues.lock().unwrap().clone();
        let delete = async {
            let connection =
                Connection::connect(&amqp_url(), ConnectionProperties::default()).await?;
            // Every queue comes with its dead-letter queue, and maybe a retry
            // queue; one channel per delete, as deleting a missing queue may
            // close the channel.
            for queue in queues {
                for name in [retry_queue(&queue), dead_letter_queue(&queue), queue] {
                    let name = broker_queue_name(&self.exchange, &name);
                    let channel = connection.create_channel().await?;
                    let _ = channel
                        .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                        .await;
                    let _ = channel.close(200, "OK".into()).await;
                }
            }
            let channel = connection.create_channel().await?;
            channel
                .exchange_delete(
                    self.exchange.as_str().into(),
                    ExchangeDeleteOptions::default(),
                )
                .await?;
            connection.close(200, "OK".into()).await
        };
        match timeout(Duration::from_secs(10), delete).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(error = %error, "test cleanup failed"),
            Err(_) => tracing::warn!("test cleanup timed out"),
        }
    }
}

/// Runs `body` with a time limit, then cleans up even if it panicked.
async fn run<F, Fut>(harness: Arc<Harness>, limit: Duration, body: F)
where
    F: FnOnce(Arc<Harness>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::spawn(timeout(limit, body(harness.clone()))).await;
    harness.cleanup().await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(_)) => panic!("test timed out after {limit:?}"),
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

/// The next delivery, which must come within [`WAIT`].
async fn next(subscription: &mut Box<dyn Subscription>) -> Delivery {
    timeout(WAIT, subscription.next())
        .await
        .expect("no delivery within the wait")
        .expect("next() failed")
        .expect("subscription ended")
}

/// Nothing arrives within [`QUIET`].
async fn assert_quiet(subscription: &mut Box<dyn Subscription>) {
    if let Ok(unexpected) = timeout(QUIET, subscription.next()).await {
        panic!("expected no delivery, got {unexpected:?}");
    }
}

fn text(delivery: &Delivery) -> String {
    String::from_utf8(delivery.payload.to_vec()).expect("test payloads are UTF-8")
}

async fn published_message_reaches_subscriber_and_ack_removes_it(h: Arc<Harness>) {
    let spec = h.queue(&["t1.orders.created"]);
    let mut subscription = h.bus.subscribe(&spec).await.unwrap();
    let payload = Bytes::from_static(b"\x00order\xff\n{\"id\":1}");
    h.bus
        .publish("t1.orders.created", payload.clone())
        .await
        .unwrap();

    let delivery = next(&mut subscription).await;
    assert_eq!(delivery.routing_key, "t1.orders.created");
    assert_eq!(delivery.payload, payload);
    assert!(!delivery.redelivered);
    delivery.ack().await.unwrap();
    drop(subscription);

    let mut again = h.bus.subscribe(&spec).await.unwrap();
    assert_quiet(&mut again).await;
}

async fn ack_all_removes_every_delivery_it_is_given(h: Arc<Harness>) {
    let spec = h.queue(&["t1.batch"]);
    let mut subscription = h.bus.subscribe(&spec).await.unwrap();
    for n in 0..5 {
        h.bus
            .publish("t1.batch", Bytes::from(format!("m{n}")))
            .await
            .unwrap();
    }
    let mut deliveries = Vec::new();
    for _ in 0..5 {
        deliveries.push(next(&mut subscription).await);
    }
    Delivery::ack_all(deliveries).await.unwrap();
    Delivery::ack_all(Vec::new()).await.unwrap();
    drop(subscription);

    let mut again = h.bus.subscribe(&spec).await.unwrap();
    assert_quiet(&mut again).await;
}

/// Acknowledging newer deliveries together must not acknowledge an older
/// one still held (a careless `multiple` ack would).
async fn ack_all_leaves_an_older_unsettled_delivery_alone(h: Arc<Harness>) {
    let spec = h.queue(&["t1.batch"]);
    let mut subscription = h.bus.subscribe(&spec).await.unwrap();
    for n in 0..4 {
        h.bus
            .publish("t1.batch", Bytes::from(format!("m{n}")))
            .await
            .unwrap();
    }
    let oldest = next(&mut subscription).await;
    let second = next(&mut subscription).await;
    let mut newer = vec![next(&mut subscription).await];
    newer.push(next(&mut subscription).await);
    assert_eq!(text(&oldest), "m0");
    Delivery::ack_all(newer).await.unwrap();
    // Settled on its own, the second no longer holds the multiple ack back,
    // but the oldest still does.
    second.ack().await.unwrap();
    drop(oldest);
    drop(subscription);

    let mut successor = h.bus.subscribe(&spec).await.unwrap();
    let again = next(&mut successor).await;
    assert_eq!(text(&again), "m0");
    assert!(again.redelivered);
    Delivery::ack_all([again]).await.unwrap();
    assert_quiet(&mut successor).await;
}

async fn topic_patterns_route_each_key_to_the_matching_queues(h: Arc<Harness>) {
    let keys = [
        "t1.orders.created",
        "t2.orders.created",
        "t1.billing.invoice.paid",
        "t1",
        "t2.orders",
        "t1.orders.created.late",
    ];
    let cases = [
        (
            h.queue(&["*.orders.created"]),
            vec!["t1.orders.created", "t2.orders.created"],
        ),
        (
            h.queue(&["t1.#"]),
            vec![
                "t1.orders.created",
                "t1.billing.invoice.paid",
                "t1",
                "t1.orders.created.late",
            ],
        ),
        (h.queue(&["#.late"]), vec!["t1.orders.created.late"]),
        // Two queues bound to the same key each get a copy.
        (h.queue(&["t1.orders.created"]), vec!["t1.orders.created"]),
        (h.queue(&["t1.orders.created"]), vec!["t1.orders.created"]),
        // A message matching two bindings of one queue arrives once.
        (
            h.queue(&["t1.orders.*", "*.orders.created"]),
            vec!["t1.orders.created", "t2.orders.created"],
        ),
        (h.queue(&["t3.*"]), vec![]),
    ];
    let mut subscriptions = Vec::new();
    for (spec, _) in &cases {
        subscriptions.push(h.bus.subscribe(spec).await.unwrap());
    }
    for key in keys {
        h.bus.publish(key, Bytes::from(key)).await.unwrap();
    }
    for ((spec, expected), subscription) in cases.iter().zip(&mut subscriptions) {
        let mut received = Vec::new();
        for _ in expected {
            let delivery = next(subscription).await;
            assert_eq!(
                text(&delivery),
                delivery.routing_key,
                "payload and key travel together"
            );
            received.push(delivery.routing_key.clone());
            delivery.ack().await.unwrap();
        }
        assert_eq!(&received, expected, "queue bound to {:?}", spec.bindings);
        assert_quiet(subscription).await;
    }
}

async fn messages_published_before_any_subscriber_are_kept(h: Arc<Harness>) {
    let spec = h.queue(&["t1.calls.#"]);
    h.bus.declare_queue(&spec).await.unwrap();
    h.bus.declare_queue(&spec).await.unwrap(); // idempotent
    for i in 0..3 {
        h.bus
            .publish("t1.calls.ended", Bytes::from(format!("call-{i}")))
            .await
            .unwrap();
    }
    let mut subscription = h.bus.subscribe(&spec).await.unwrap();
    for i in 0..3 {
        let delivery = next(&mut subscription).await;
        assert_eq!(text(&delivery), format!("call-{i}"));
        delivery.ack().await.unwrap();
    }
    assert_quiet(&mut subscription).await;
}

async fn redeclaring_a_queue_adds_its_new_bindings(h: Arc<Harness>) {
    let first = h.queue(&["t1.a"]);
    h.bus.declare_queue(&first).await.unwrap();
    let second = QueueSpec::new(first.name.clone(), ["t1.b"]);
    h.bus.declare_queue(&second).await.unwrap();
    h.bus
        .publish("t1.a", Bytes::from_static(b"a"))
        .await
        .unwrap();
    h.bus
        .publish("t1.b", Bytes::from_static(b"b"))
        .await
        .unwrap();
    h.bus
        .publish("t1.c", Bytes::from_static(b"c"))
        .await
        .unwrap();

    let mut subscription = h.bus.subscribe(&first).await.unwrap();
    for expected in ["a", "b"] {
        let delivery = next(&mut subscription).await;
        assert_eq!(text(&delivery), expected);
        delivery.ack().await.unwrap();
    }
    assert_quiet(&mut subscription).await;
}

async fn nack_with_requeue_redelivers_and_without_drops(h: Arc<Harness>) {
    let spec = h.queue(&["t1.retry.#"]);
    let mut subscription = h.bus.subscribe(&spec).await.unwrap();

    h.bus
        .publish("t1.retry.x", Bytes::from_static(b"again"))
        .await
        .unwrap();
    let first = next(&mut subscription).await;
    assert!(!first.redelivered);
    first.nack(true).await.unwrap();
    let second = next(&mut subscription).await;
    assert_eq!(text(&second), "again");
    assert!(
        second.redelivered,
        "a requeued message is marked redelivered"
    );
    second.ack().await.unwrap();

    h.bus
        .publish("t1.retry.x", Bytes::from_static(b"poison"))
        .await
        .unwrap();
    let poison = next(&mut subscription).await;
    assert_eq!(text(&poison), "poison");
    poison.nack(false).await.unwrap();
    assert_quiet(&mut subscription).await;
    drop(subscription);
    let mut fresh = h.bus.subscribe(&spec).await.unwrap();
    assert_quiet(&mut fresh).await;
}

async fn unacked_delivery_is_redelivered_after_its_subscription_drops(h: Arc<Harness>) {
    let spec = h.queue(&["t1.jobs"]);
    let mut subscription = h.bus.subscribe(&spec).await.unwrap();
    h.bus
        .publish("t1.jobs", Bytes::from_static(b"job-1"))
        .await
        .unwrap();
    h.bus
        .publish("t1.jobs", Bytes::from_static(b"job-2"))
        .await
        .unwrap();
    let held = next(&mut subscription).await;
    let dropped = next(&mut subscription).await;
    assert!(!held.redelivered && !dropped.redelivered);
    // A delivery dropped unsettled stays unacked until its subscription ends.
    drop(dropped);
    drop(subscription);

    let mut successor = h.bus.subscribe(&spec).await.unwrap();
    for expected in ["job-1", "job-2"] {
        let delivery = next(&mut successor).await;
        assert_eq!(text(&delivery), expected);
        assert!(delivery.redelivered, "{expected} was delivered before");
        delivery.ack().await.unwrap();
    }
    assert_quiet(&mut successor).await;
    // The old delivery's subscription is gone: settling it is refused.
    assert!(held.ack().await.is_err());
}

async fn competing_consumers_each_get_a_share_exactly_once(h: Arc<Harness>) {
    const MESSAGES: usize = 200;
    let spec = h.queue(&["t1.work"]).with_prefetch(10);
    let (sender, mut received) = mpsc::unbounded_channel();
    let mut consumers = Vec::new();
    for consumer in 0..2 {
        let mut subscription = h.bus.subscribe(&spec).await.unwrap();
        let sender = sender.clone();
        consumers.push(tokio::spawn(async move {
            while let Ok(Ok(Some(delivery))) = timeout(WAIT, subscription.next()).await {
                let payload = text(&delivery);
                delivery.ack().await.unwrap();
                if sender.send((consumer, payload)).is_err() {
                    return;
                }
            }
        }));
    }
    drop(sender);
    for i in 0..MESSAGES {
        h.bus
            .publish("t1.work", Bytes::from(format!("work-{i}")))
            .await
            .unwrap();
    }

    let mut seen = HashMap::new();
    for _ in 0..MESSAGES {
        let (consumer, payload) = timeout(WAIT, received.recv())
            .await
            .expect("all messages delivered")
            .expect("consumers alive");
        assert!(
            seen.insert(payload.clone(), consumer).is_none(),
            "{payload} delivered twice"
        );
    }
    if let Ok(Some(extra)) = timeout(QUIET, received.recv()).await {
        panic!("delivered more than once: {extra:?}");
    }
    let expected: HashSet<String> = (0..MESSAGES).map(|i| format!("work-{i}")).collect();
    assert_eq!(seen.keys().cloned().collect::<HashSet<_>>(), expected);
    for consumer in consumers {
        consumer.abort();
    }
}

async fn prefetch_holds_back_deliveries_until_one_is_acked(h: Arc<Harness>) {
    let spec = h.queue(&["t1.slow"]).with_prefetch(2);
    let mut subscription = h.bus.subscribe(&spec).await.unwrap();
    for i in 0..3 {
        h.bus
            .publish("t1.slow", Bytes::from(format!("slow-{i}")))
            .await
            .unwrap();
    }
    let first = next(&mut subscription).await;
    let second = next(&mut subscription).await;
    assert_eq!(
        (text(&first).as_str(), text(&second).as_str()),
        ("slow-0", "slow-1")
    );
    assert_quiet(&mut subscription).await;
    first.ack().await.unwrap();
    let third = next(&mut subscription).await;
    assert_eq!(text(&third), "slow-2");
    second.ack().await.unwrap();
    third.ack().await.unwrap();
}

async fn single_consumer_receives_messages_in_publish_order(h: Arc<Harness>) {
    const MESSAGES: usize = 1000;
    let spec = h.queue(&["t1.seq"]);
    let mut subscription = h.bus.subscribe(&spec).await.unwrap();
    let bus = h.bus.clone();
    let publisher = tokio::spawn(async move {
        for i in 0..MESSAGES {
            bus.publish("t1.seq", Bytes::from(i.to_string()))
                .await
                .unwrap();
        }
    });
    for i in 0..MESSAGES {
        let delivery = next(&mut subscription).await;
        assert_eq!(text(&delivery), i.to_string(), "out of order");
        delivery.ack().await.unwrap();
    }
    publisher.await.unwrap();
    assert_quiet(&mut subscription).await;
}

async fn overlong_names_are_refused_as_invalid(h: Arc<Harness>) {
    let long = "k".repeat(256);
    let error = h
        .bus
        .publish(&long, Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, switchboard_platform::Error::InvalidArgument(_)),
        "{error:?}"
    );
    let error = h
        .bus
        .declare_queue(&QueueSpec::new(long, ["t1.x"]))
        .await
        .unwrap_err();
    assert!(
        matches!(error, switchboard_platform::Error::InvalidArgument(_)),
        "{error:?}"
    );
}

async fn ping_answers_until_closed(h: Arc<Harness>) {
    h.bus.ping().await.unwrap();
    h.bus.close().await.unwrap();
    assert!(h.bus.ping().await.unwrap_err().is_unavailable());
}

async fn close_fails_later_calls_and_ends_pending_next(h: Arc<Harness>) {
    let spec = h.queue(&["t1.close.#"]);
    let mut subscription = h.bus.subscribe(&spec).await.unwrap();
    h.bus
        .publish("t1.close.a", Bytes::from_static(b"before close"))
        .await
        .unwrap();
    let delivery = next(&mut subscription).await;
    delivery.ack().await.unwrap();
    let pending = tokio::spawn(async move { subscription.next().await });

    h.bus.close().await.unwrap();
    let ended = timeout(WAIT, pending)
        .await
        .expect("pending next() ends on close")
        .unwrap();
    assert!(ended.unwrap().is_none(), "next() after close returns None");

    let error = h
        .bus
        .publish("t1.close.a", Bytes::from_static(b"after close"))
        .await
        .unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    let error = h
        .bus
        .subscribe(&spec)
        .await
        .err()
        .expect("subscribe after close fails");
    assert!(error.is_unavailable(), "{error:?}");
    h.bus.close().await.unwrap(); // idempotent
}

async fn publish_batch_delivers_every_message_in_order(h: Arc<Harness>) {
    const MESSAGES: usize = 300;
    let spec = h.queue(&["t1.batch.#"]);
    let other = h.queue(&["t2.#"]);
    let mut subscription = h.bus.subscribe(&spec).await.unwrap();
    let mut others = h.bus.subscribe(&other).await.unwrap();
    h.bus.publish_batch(&[]).await.unwrap();
    let messages: Vec<Message> = (0..MESSAGES)
        .map(|i| {
            let key = match i % 3 {
                0 => "t1.batch.a",
                1 => "t1.batch.b.c",
                _ => "t2.batch.a",
            };
            Message::new(key, format!("{key}/{i}"))
        })
        .collect();
    h.bus.publish_batch(&messages).await.unwrap();

    for message in messages.iter().filter(|m| m.routing_key.starts_with("t1.")) {
        let delivery = next(&mut subscription).await;
        assert_eq!(delivery.routing_key, message.routing_key);
        assert_eq!(delivery.payload, message.payload, "out of order or lost");
        assert_eq!(delivery.attempt, 1);
        delivery.ack().await.unwrap();
    }
    for message in messages.iter().filter(|m| m.routing_key.starts_with("t2.")) {
        let delivery = next(&mut others).await;
        assert_eq!(delivery.payload, message.payload, "out of order or lost");
        delivery.ack().await.unwrap();
    }
    assert_quiet(&mut subscription).await;
    assert_quiet(&mut others).await;

    // One bad key refuses the batch.
    let error = h
        .bus
        .publish_batch(&[Message::new("k".repeat(256), "x")])
        .await
        .unwrap_err();
    assert!(
        matches!(error, switchboard_platform::Error::InvalidArgument(_)),
        "{error:?}"
    );
}

async fn send_to_queue_reaches_only_that_queue_with_its_routing_key(h: Arc<Harness>) {
    let target = h.queue(&["t1.direct.#"]);
    let bystander = h.queue(&["t1.direct.#", "#"]);
    let mut subscription = h.bus.subscribe(&target).await.unwrap();
    let mut bystanders = h.bus.subscribe(&bystander).await.unwrap();

    h.bus
        .send_to_queue(
            &target.name,
            "t1.direct.replayed",
            Bytes::from_static(b"one"),
        )
        .await
        .unwrap();
    // A key the queue's bindings do not match still reaches it.
    h.bus
        .send_to_queue(&target.name, "t9.other.key", Bytes::from_static(b"two"))
        .await
        .unwrap();
    for (key, payload) in [("t1.direct.replayed", "one"), ("t9.other.key", "two")] {
        let delivery = next(&mut subscription).await;
        assert_eq!(delivery.routing_key, key);
        assert_eq!(text(&delivery), payload);
        assert_eq!(delivery.attempt, 1);
        assert_eq!(delivery.last_error, None);
        assert!(!delivery.redelivered);
        delivery.ack().await.unwrap();
    }
    assert_quiet(&mut subscription).await;
    assert_quiet(&mut bystanders).await;

    let error = h
        .bus
        .send_to_queue(
            &unique_name("sbt_missing"),
            "t1.direct.x",
            Bytes::from_static(b"x"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, switchboard_platform::Error::NotFound(_)),
        "{error:?}"
    );
}

async fn retry_later_redelivers_after_the_delay_with_the_next_attempt(h: Arc<Harness>) {
    let delay = Duration::from_millis(300);
    let spec = h.queue(&["t1.flaky.#"]).with_retry_delay(delay);
    let mut subscription = h.bus.subscribe(&spec).await.unwrap();
    h.bus
        .publish("t1.flaky.x", Bytes::from_static(b"flaky"))
        .await
        .unwrap();
    let first = next(&mut subscription).await;
    assert_eq!((first.attempt, first.last_error.as_deref()), (1, None));

    let retried_at = tokio::time::Instant::now();
    first.retry_later("boom: the first try").await.unwrap();
    // The retried message does not hold up the ones behind it.
    h.bus
        .publish("t1.flaky.y", Bytes::from_static(b"behind"))
        .await
        .unwrap();
    let behind = next(&mut subscription).await;
    assert_eq!(text(&behind), "behind");
    behind.ack().await.unwrap();

    let second = next(&mut subscription).await;
    assert!(
        retried_at.elapsed() >= delay.mul_f32(0.9),
        "offered again after {:?}, before the retry delay",
        retried_at.elapsed()
    );
    assert_eq!(second.routing_key, "t1.flaky.x");
    assert_eq!(text(&second), "flaky");
    assert_eq!(second.attempt, 2);
    assert_eq!(second.last_error.as_deref(), Some("boom: the first try"));
    assert!(!second.redelivered);
    second.retry_later("boom again").await.unwrap();

    let third = next(&mut subscription).await;
    assert_eq!(third.attempt, 3);
    assert_eq!(third.last_error.as_deref(), Some("boom again"));
    third.ack().await.unwrap();
    assert_quiet(&mut subscription).await;
}

async fn retry_later_on_a_queue_without_retry_delay_is_invalid(h: Arc<Harness>) {
    let spec = h.queue(&["t1.noretry"]);
    let mut subscription = h.bus.subscribe(&spec).await.unwrap();
    h.bus
        .publish("t1.noretry", Bytes::from_static(b"kept"))
        .await
        .unwrap();
    let delivery = next(&mut subscription).await;
    let error = delivery.retry_later("boom").await.unwrap_err();
    assert!(
        matches!(error, switchboard_platform::Error::InvalidArgument(_)),
        "{error:?}"
    );
    // The refused message is not lost: it is still unacknowledged and comes
    // back once its subscription ends.
    drop(subscription);
    let mut again = h.bus.subscribe(&spec).await.unwrap();
    let delivery = next(&mut again).await;
    assert_eq!(text(&delivery), "kept");
    assert!(delivery.redelivered);
    assert_eq!(delivery.attempt, 1);
    delivery.ack().await.unwrap();
}

async fn dead_letter_moves_the_message_and_the_rest_still_flow(h: Arc<Harness>) {
    let spec = h
        .queue(&["t1.poison.#"])
        .with_retry_delay(Duration::from_millis(50))
        .with_prefetch(1);
    let dead = QueueSpec::new(dead_letter_queue(&spec.name), Vec::<String>::new());
    h.queues.lock().unwrap().push(dead.name.clone());
    let mut subscription = h.bus.subscribe(&spec).await.unwrap();
    for payload in ["poison", "after-1", "after-2"] {
        h.bus
            .publish("t1.poison.event", Bytes::from(payload))
            .await
            .unwrap();
    }
    let poison = next(&mut subscription).await;
    assert_eq!(text(&poison), "poison");
    poison.retry_later("first failure").await.unwrap();
    for expected in ["after-1", "after-2"] {
        let delivery = next(&mut subscription).await;
        assert_eq!(text(&delivery), expected);
        delivery.ack().await.unwrap();
    }
    let poison = next(&mut subscription).await;
    assert_eq!((text(&poison).as_str(), poison.attempt), ("poison", 2));
    poison.dead_letter("final failure").await.unwrap();
    // With prefetch 1, a message still held would block this one.
    h.bus
        .publish("t1.poison.event", Bytes::from_static(b"after-3"))
        .await
        .unwrap();
    let delivery = next(&mut subscription).await;
    assert_eq!(text(&delivery), "after-3");
    delivery.ack().await.unwrap();
    assert_quiet(&mut subscription).await;

    let mut dead_letters = h.bus.subscribe(&dead).await.unwrap();
    let parked = next(&mut dead_letters).await;
    assert_eq!(text(&parked), "poison");
    assert_eq!(parked.routing_key, "t1.poison.event");
    assert_eq!(parked.attempt, 2);
    assert_eq!(parked.last_error.as_deref(), Some("final failure"));
    parked.ack().await.unwrap();
    assert_quiet(&mut dead_letters).await;
    // Published messages never reach the dead-letter queue directly.
    h.bus
        .publish("t1.poison.event", Bytes::from_static(b"after-4"))
        .await
        .unwrap();
    assert_quiet(&mut dead_letters).await;
    next(&mut subscription).await.ack().await.unwrap();
}

async fn nacked_deliveries_come_back_in_their_order(h: Arc<Harness>) {
    let spec = h.queue(&["t1.order"]);
    let mut subscription = h.bus.subscribe(&spec).await.unwrap();
    for i in 0..3 {
        h.bus
            .publish("t1.order", Bytes::from(format!("m{i}")))
            .await
            .unwrap();
    }
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(next(&mut subscription).await);
    }
    // What a consumer that could not apply a batch does.
    for delivery in held {
        delivery.nack(true).await.unwrap();
    }
    for expected in ["m0", "m1", "m2"] {
        let delivery = next(&mut subscription).await;
        assert_eq!(text(&delivery), expected, "requeue changed the order");
        assert!(delivery.redelivered);
        delivery.ack().await.unwrap();
    }
    assert_quiet(&mut subscription).await;
}

async fn a_queue_can_be_redeclared_with_another_retry_delay(h: Arc<Harness>) {
    let slow = h
        .queue(&["t1.redelay"])
        .with_retry_delay(Duration::from_secs(60));
    h.bus.declare_queue(&slow).await.unwrap();
    // A new release configured with a shorter delay.
    let fast = slow.clone().with_retry_delay(Duration::from_millis(100));
    let mut subscription = h.bus.subscribe(&fast).await.unwrap();
    h.bus
        .publish("t1.redelay", Bytes::from_static(b"again"))
        .await
        .unwrap();
    let delivery = next(&mut subscription).await;
    delivery.retry_later("boom").await.unwrap();
    let delivery = next(&mut subscription).await;
    assert_eq!((text(&delivery).as_str(), delivery.attempt), ("again", 2));
    delivery.ack().await.unwrap();
}

async fn durable_is_false_only_in_memory(h: Arc<Harness>) {
    assert_eq!(h.bus.durable(), h.backend == Backend::RabbitMq);
}

macro_rules! conformance {
    ($module:ident, $backend:expr) => {
        mod $module {
            use super::*;

            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        init_tracing();
                        let harness = Harness::start($backend).await;
                        run(harness, Duration::from_secs(60), super::$name).await;
                    }
                };
            }

            case!(published_message_reaches_subscriber_and_ack_removes_it);
            case!(ack_all_removes_every_delivery_it_is_given);
            case!(ack_all_leaves_an_older_unsettled_delivery_alone);
            case!(topic_patterns_route_each_key_to_the_matching_queues);
            case!(messages_published_before_any_subscriber_are_kept);
            case!(redeclaring_a_queue_adds_its_new_bindings);
            case!(nack_with_requeue_redelivers_and_without_drops);
            case!(unacked_delivery_is_redelivered_after_its_subscription_drops);
            case!(competing_consumers_each_get_a_share_exactly_once);
            case!(prefetch_holds_back_deliveries_until_one_is_acked);
            case!(single_consumer_receives_messages_in_publish_order);
            case!(overlong_names_are_refused_as_invalid);
            case!(ping_answers_until_closed);
            case!(close_fails_later_calls_and_ends_pending_next);
            case!(publish_batch_delivers_every_message_in_order);
            case!(send_to_queue_reaches_only_that_queue_with_its_routing_key);
            case!(retry_later_redelivers_after_the_delay_with_the_next_attempt);
            case!(retry_later_on_a_queue_without_retry_delay_is_invalid);
            case!(dead_letter_moves_the_message_and_the_rest_still_flow);
            case!(durable_is_false_only_in_memory);
            case!(nacked_deliveries_come_back_in_their_order);
            case!(a_queue_can_be_redeclared_with_another_retry_delay);
        }
    };
}

conformance!(memory, Backend::Memory);
conformance!(rabbitmq, Backend::RabbitMq);

/// Two installations on one vhost, each with its own exchange, both with a
/// `webhooks` consumer: each consumes its own queue, so neither takes the
/// other's messages (with fixed queue names they shared one queue and
/// each got about half of both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_queues_of_two_exchanges_on_one_vhost_are_apart() {
    init_tracing();
    let first = Harness::start(Backend::RabbitMq).await;
    let second = Harness::start(Backend::RabbitMq).await;
    let name = unique_name("sbt_q");
    for harness in [&first, &second] {
        harness.queues.lock().unwrap().push(name.clone());
    }
    let spec = QueueSpec::new(name.clone(), ["#"]);
    let mut first_queue = first.bus.subscribe(&spec).await.unwrap();
    let mut second_queue = second.bus.subscribe(&spec).await.unwrap();
    for n in 0..10 {
        first
            .bus
            .publish("t1.first.event", Bytes::from(format!("first-{n}")))
            .await
            .unwrap();
    }
    second
        .bus
        .publish("t1.second.event", Bytes::from_static(b"second"))
        .await
        .unwrap();
    let delivery = next(&mut second_queue).await;
    assert_eq!(
        text(&delivery),
        "second",
        "the second got the first's message"
    );
    delivery.ack().await.unwrap();
    for n in 0..10 {
        let delivery = next(&mut first_queue).await;
        assert_eq!(text(&delivery), format!("first-{n}"));
        delivery.ack().await.unwrap();
    }
    assert_eq!(
        broker_queue_name(&first.exchange, &name),
        format!("{}.{name}", first.exchange)
    );
    drop((first_queue, second_queue));
    first.cleanup().await;
    second.cleanup().await;
}

/// The broker's address, from the test AMQP URL.
async fn broker_addr() -> SocketAddr {
    let url = url::Url::parse(&amqp_url()).expect("test AMQP URL parses");
    let host = url.host_str().expect("test AMQP URL has a host").to_owned();
    let port = url.port().unwrap_or(5672);
    tokio::net::lookup_host((host.as_str(), port))
        .await
        .expect("broker host resolves")
        .next()
        .expect("broker host has an address")
}

/// The test AMQP URL, pointed at `addr` instead.
fn amqp_url_via(addr: SocketAddr) -> String {
    let mut url = url::Url::parse(&amqp_url()).expect("test AMQP URL parses");
    url.set_host(Some(&addr.ip().to_string()))
        .expect("host can be set");
    url.set_port(Some(addr.port())).expect("port can be set");
    url.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_reconnects_and_delivers_every_message_after_an_outage() {
    init_tracing();
    let harness = Harness::start(Backend::RabbitMq).await;
    run(harness, Duration::from_secs(120), |h| async move {
        let proxy = TcpProxy::start(broker_addr().await).await.unwrap();
        let bus = RabbitMqBus::connect(&amqp_url_via(proxy.addr()), &h.exchange, 64)
            .await
            .unwrap();
        let spec = h.queue(&["t1.outage.#"]);
        let mut subscription = bus.subscribe(&spec).await.unwrap();
        // The consumer stays blocked in next() through the outage.
        let (sender, mut deliveries) = mpsc::unbounded_channel();
        let consumer = tokio::spawn(async move {
            while let Some(delivery) = subscription
                .next()
                .await
                .expect("next() survives the outage")
            {
                if sender.send(delivery).is_err() {
                    break;
                }
            }
        });
        let mut receive = async || {
            timeout(WAIT, deliveries.recv())
                .await
                .expect("no delivery within the wait")
                .expect("consumer ended")
        };

        let before: Vec<String> = (0..10).map(|i| format!("before-{i}")).collect();
        for payload in &before {
            bus.publish("t1.outage.event", Bytes::from(payload.clone()))
                .await
                .unwrap();
        }
        let mut held = Vec::new();
        for (i, expected) in before.iter().enumerate() {
            let delivery = receive().await;
            assert_eq!(&text(&delivery), expected);
            if i < 6 {
                delivery.ack().await.unwrap();
            } else {
                held.push(delivery);
            }
        }
        let unacked_at_cut: HashSet<String> = held.iter().map(text).collect();
        // A round trip on the consuming connection: the acks sent before it
        // have reached the broker, so only `held` is unacked at the cut.
        bus.declare_queue(&spec).await.unwrap();

        proxy.close();
        assert!(
            eventually(WAIT, || async { bus.ping().await.is_err() }).await,
            "ping kept answering with RabbitMQ gone"
        );
        let started = tokio::time::Instant::now();
        let error = bus
            .publish("t1.outage.event", Bytes::from_static(b"lost"))
            .await
            .unwrap_err();
        assert!(error.is_unavailable(), "{error:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "publish gave up after {:?}",
            started.elapsed()
        );

        proxy.reopen();
        assert!(
            eventually(WAIT, || async { bus.ping().await.is_ok() }).await,
            "bus did not recover after RabbitMQ came back"
        );
        let after: Vec<String> = (0..10).map(|i| format!("after-{i}")).collect();
        for payload in &after {
            bus.publish("t1.outage.event", Bytes::from(payload.clone()))
                .await
                .unwrap();
        }

        // At least once: every payload arrives; only those unacked at the
        // cut come again, marked redelivered.
        let mut seen: HashSet<String> = before[..6].iter().cloned().collect();
        let mut redelivered = HashSet::new();
        let expected: HashSet<String> = before.iter().chain(&after).cloned().collect();
        while seen != expected || redelivered != unacked_at_cut {
            let delivery = receive().await;
            let payload = text(&delivery);
            assert!(expected.contains(&payload), "unexpected payload {payload}");
            if unacked_at_cut.contains(&payload) && delivery.redelivered {
                redelivered.insert(payload.clone());
            } else {
                assert!(
                    seen.insert(payload.clone()),
                    "{payload} delivered twice but was acked before the cut"
                );
            }
            seen.insert(payload);
            delivery.ack().await.unwrap();
        }
        if let Ok(extra) = timeout(QUIET, deliveries.recv()).await {
            panic!("unexpected extra delivery {extra:?}");
        }

        // Deliveries from the channel that died cannot be settled any more.
        for stale in held {
            let error = stale.ack().await.unwrap_err();
            assert!(error.is_unavailable(), "{error:?}");
        }
        bus.close().await.unwrap();
        timeout(WAIT, consumer)
            .await
            .expect("next() ends on close")
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn rabbitmq_connect_to_a_closed_port_fails_fast_as_unavailable() {
    init_tracing();
    let closed = ClosedPort::new().unwrap();
    let port = closed.port();
    let started = std::time::Instant::now();
    let url = format!("amqp://someone:s3cr3t@127.0.0.1:{port}/%2f");
    let error = RabbitMqBus::connect(&url, &unique_name("sbt_x"), 64)
        .await
        .err()
        .expect("must fail");
    assert!(error.is_unavailable(), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("cannot connect to RabbitMQ"), "{message}");
    assert!(
        message.to_lowercase().contains("connection refused"),
        "names the cause: {message}"
    );
    assert!(!message.contains("s3cr3t"), "leaks the password: {message}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}
