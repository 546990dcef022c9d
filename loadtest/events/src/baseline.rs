//! RabbitMQ's own speed on this machine, in this run: a bare lapin loop
//! with what the backbone asks of the broker and nothing else.
//!
//! One connection publishes persistent messages (the same envelopes and
//! routing keys as the pipeline's events) to a fresh durable topic
//! exchange with publisher confirms, a window at a time: publish the
//! window, then wait for all its confirms (what the relay does per round).
//! Another connection consumes from a fresh durable queue bound like the
//! pipeline's consumer, with a prefetch limit and manual acks. The
//! publisher keeps at most `--max-backlog` messages unconsumed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties, ExchangeKind};
use switchboard_events::Event;
use switchboard_tenancy::TenantId;
use tokio_util::sync::CancellationToken;

use crate::pipeline::{bench_event, delete_rabbitmq_names, short_id};
use crate::probe::Counter;
use crate::report::{self, Recorder};

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    #[arg(
        long,
        env = "BENCH_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp_url: String,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    #[arg(long, default_value_t = 5)]
    pub warmup: u64,
    /// Messages published before waiting for their confirms.
    #[arg(long, default_value_t = 500)]
    pub window: usize,
    /// Unacknowledged deliveries the consumer holds.
    #[arg(long, default_value_t = 256)]
    pub prefetch: u16,
    /// Messages published but not yet consumed, at most.
    #[arg(long, default_value_t = 20_000)]
    pub max_backlog: u64,
    /// Tenants the routing keys spread over.
    #[arg(long, default_value_t = 8)]
    pub tenants: usize,
    /// Acknowledge every Nth delivery, with `multiple` (1: each delivery,
    /// as the backbone's consumer does).
    #[arg(long, default_value_t = 1)]
    pub ack_every: u64,
    /// Acknowledge without waiting for each ack to be written (spawned).
    #[arg(long)]
    pub ack_detached: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.amqp_url.contains("@127.0.0.1:") || args.amqp_url.contains("@localhost:"),
        "--amqp-url must be on loopback"
    );
    anyhow::ensure!(args.window > 0 && args.ack_every > 0 && args.tenants > 0);
    let name = format!("sb_bench_baseline_{}", short_id());
    let outcome = measure(&args, &name).await;
    delete_rabbitmq_names(&args.amqp_url, &name, &name).await;
    outcome
}

async fn measure(args: &Args, name: &str) -> anyhow::Result<()> {
    let properties = || ConnectionProperties::default();
    let publishing = Connection::connect(&args.amqp_url, properties())
        .await
        .context("connecting to RabbitMQ")?;
    let consuming = Connection::connect(&args.amqp_url, properties()).await?;
    let publisher = publishing.create_channel().await?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    publisher
        .exchange_declare(
            name.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    let channel = consuming.create_channel().await?;
    channel
        .basic_qos(args.prefetch, BasicQosOptions::default())
        .await?;
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            name.into(),
            name.into(),
            "*.bench.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut consumer = channel
        .basic_consume(
            name.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let stop = CancellationToken::new();
    let published = Arc::new(Counter::default());
    let consumed = Arc::new(Counter::default());
    let recorder = Arc::new(Recorder::default());

    let publish = {
        let (stop, published, consumed) = (stop.clone(), published.clone(), consumed.clone());
        let (window, max_backlog) = (args.window, args.max_backlog);
        let tenants: Vec<TenantId> = (0..args.tenants).map(|_| TenantId::new()).collect();
        let exchange = name.to_owned();
        tokio::spawn(async move {
            let mut n = 0_u64;
            let persistent = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/octet-stream".into());
            while !stop.is_cancelled() {
                while published.get().saturating_sub(consumed.get()) + window as u64 > max_backlog {
                    tokio::select! {
                        () = stop.cancelled() => return anyhow::Ok(()),
                        () = tokio::time::sleep(Duration::from_millis(1)) => {}
                    }
                }
                let mut confirms = Vec::with_capacity(window);
                for _ in 0..window {
                    n += 1;
                    let tenant = tenants[(n / 50) as usize % tenants.len()];
                    let event: Event = bench_event(tenant, n);
                    let confirm = publisher
                        .basic_publish(
                            exchange.as_str().into(),
                            event.routing_key().into(),
                            BasicPublishOptions::default(),
                            &event.encode(),
                            persistent.clone(),
                        )
                        .await?;
                    confirms.push(confirm);
                }
                for confirm in confirms {
                    match confirm.await? {
                        Confirmation::Ack(_) => {}
                        Confirmation::Nack(_) => bail!("RabbitMQ refused a message (nack)"),
                        Confirmation::NotRequested => bail!("the channel is not in confirm mode"),
                    }
                }
                published.add(window as u64);
            }
            anyhow::Ok(())
        })
    };

    let consume = {
        let (stop, consumed, recorder) = (stop.clone(), consumed.clone(), recorder.clone());
        let ack_every = args.ack_every;
        let detached = args.ack_detached;
        tokio::spawn(async move {
            let mut unacked = 0_u64;
            loop {
                let delivery = tokio::select! {
                    () = stop.cancelled() => break,
                    delivery = consumer.next() => delivery,
                };
                let Some(delivery) = delivery else { break };
                let delivery = delivery?;
                let event = Event::decode(&delivery.data)?;
                recorder.record(report::now_us(), [event.occurred_at.timestamp_micros()]);
                unacked += 1;
                if unacked >= ack_every {
                    let options = BasicAckOptions {
                        multiple: ack_every > 1,
                    };
                    if detached {
                        let acker = delivery.acker;
                        tokio::spawn(async move { acker.ack(options).await });
                    } else {
                        delivery.acker.ack(options).await?;
                    }
                    unacked = 0;
                }
                consumed.add(1);
            }
            anyhow::Ok(())
        })
    };

    eprintln!(
        "baseline: bare lapin, persistent messages with confirms in windows of {}, consumer prefetch {} acking every {}; {} s warm-up, {} s measured",
        args.window, args.prefetch, args.ack_every, args.warmup, args.duration
    );
    let progress = {
        let consumed = consumed.clone();
        tokio::spawn(async move {
            let mut last = 0;
            let mut ticker = tokio::time::interval(Duration::from_secs(5));
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let now = consumed.get();
                eprintln!("  baseline: consumed {:>7.0}/s", (now - last) as f64 / 5.0);
                last = now;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let published_before = published.get();
    let from_us = report::now_us();
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    let to_us = report::now_us();
    let published_after = published.get();
    stop.cancel();
    progress.abort();
    for (what, task) in [("publisher", publish), ("consumer", consume)] {
        match tokio::time::timeout(Duration::from_secs(15), task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => bail!("the baseline {what} failed: {error:#}"),
            Ok(Err(error)) => bail!("the baseline {what} panicked: {error}"),
            Err(_) => bail!("the baseline {what} did not stop"),
        }
    }
    let _ = publishing.close(200, "OK".into()).await;
    let _ = consuming.close(200, "OK".into()).await;

    let window = recorder.window(from_us, to_us);
    let seconds = (to_us - from_us) as f64 / 1e6;
    let mut fields = window.fields();
    fields.push((
        "published_per_s",
        format!(
            "{:.0}",
            (published_after - published_before) as f64 / seconds
        ),
    ));
    report::result("baseline", &fields);
    eprintln!(
        "baseline: {:.0} events/s consumed (slowest second {}), latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        window.rate(),
        window.min_second(),
        window.percentile_ms(50.0),
        window.percentile_ms(99.0),
        window.max_ms()
    );
    Ok(())
}
