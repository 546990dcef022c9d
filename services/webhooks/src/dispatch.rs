//! The dispatcher: claims due deliveries across tenants, sends them
//! (signed, a bounded number at once), and records each attempt with what
//! follows from it: success, a retry on the backoff schedule, or giving up
//! (the delivery fails, the endpoint is disabled, the tenant is told).
//!
//! A claim sets `claimed_until` (the attempt timeout plus a margin) on the
//! rows it takes, in one statement that skips rows another dispatcher has
//! locked (PostgreSQL `FOR UPDATE SKIP LOCKED`; SQLite serializes writers),
//! so no delivery is sent by two dispatchers at once. A dispatcher that
//! dies mid-attempt leaves its claims to expire; the deliveries are then
//! sent again (at least once, never lost).

use std::time::{Duration, Instant};

use futures::StreamExt;
use sea_orm::sea_query::{Expr, LockBehavior, LockType, Order, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, DbBackend, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter,
};
use switchboard_events::proto::{WebhookEndpointDisabled, envelope::Payload};
use switchboard_events::{AuditEntry, Event, outbox};
use switchboard_tenancy::TenantId;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::domain::{self, AfterFailure, DeliveryStatus, EndpointStatus, signature};
use crate::error::Result;
use crate::store::entities::{attempt, delivery, endpoint};
use crate::targets::{check_literal_host, describe};
use crate::{EVENT_SOURCE, Webhooks, now};

/// A claimed delivery and where it goes.
struct Job {
    delivery: delivery::Model,
    endpoint: endpoint::Model,
}

/// What one attempt came to.
struct Outcome {
    attempted_at: chrono::DateTime<chrono::Utc>,
    duration: Duration,
    status_code: Option<u16>,
    /// `None` on success.
    error: Option<String>,
}

impl Webhooks {
    /// Runs the dispatcher until `cancel`: every `dispatch_interval`, sends
    /// what is due. A batch in flight is finished before it stops.
    pub fn spawn_dispatcher(&self, cancel: CancellationToken) -> JoinHandle<()> {
        let webhooks = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(webhooks.options().dispatch_interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = ticks.tick() => {}
                }
                if let Err(error) = webhooks.dispatch_due().await {
                    tracing::warn!(%error, "webhook dispatch failed; retrying next tick");
                }
            }
            tracing::debug!("webhook dispatcher stopped");
        })
    }

    /// Sends every delivery due now, `max_in_flight` at a time; answers how
    /// many attempts were made.
    pub async fn dispatch_due(&self) -> Result<usize> {
        let batch = self.options().max_in_flight.max(1);
        let mut total = 0;
        loop {
            let jobs = self.claim(batch as u64).await?;
            let claimed = jobs.len();
            total += claimed;
            futures::stream::iter(jobs)
                .for_each_concurrent(batch, |job| async move {
                    let outcome = self.attempt(&job).await;
                    let delivery_id = job.delivery.id;
                    let tenant_id = job.delivery.tenant_id;
                    if let Err(error) = self.record(job, outcome).await {
                        tracing::warn!(%error, %delivery_id, %tenant_id, "cannot record a webhook attempt; the delivery is retried when its claim expires");
                    }
                })
                .await;
            if claimed < batch {
                return Ok(total);
            }
        }
    }

    /// Takes up to `limit` due deliveries of active endpoints.
    async fn claim(&self, limit: u64) -> Result<Vec<Job>> {
        let at = now();
        let until = at + self.options().claim_duration();
        let transaction = self.store().begin_system().await?;
        let mut due = Query::select();
        due.column(delivery::Column::Id)
            .from(delivery::Entity)
            .and_where(delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
            .and_where(delivery::Column::NextAttemptAt.lte(at))
            .cond_where(
                Condition::any()
                    .add(delivery::Column::ClaimedUntil.is_null())
                    .add(delivery::Column::ClaimedUntil.lte(at)),
            )
            .and_where(
                delivery::Column::EndpointId.in_subquery(
                    Query::select()
                        .column(endpoint::Column::Id)
                        .from(endpoint::Entity)
                        .and_where(endpoint::Column::Status.eq(EndpointStatus::Active.as_str()))
                        .to_owned(),
                ),
            )
            .order_by(delivery::Column::NextAttemptAt, Order::Asc)
            .limit(limit);
        if self.store().backend() == DbBackend::Postgres {
            due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let claimed = delivery::Entity::update_many()
            .col_expr(delivery::Column::ClaimedUntil, Expr::value(until))
            .filter(delivery::Column::Id.in_subquery(due))
            .exec_with_returning(&transaction)
            .await?;
        if claimed.is_empty() {
            transaction.commit().await?;
            return Ok(Vec::new());
        }
        let endpoints = endpoint::Entity::find()
            .filter(endpoint::Column::Id.is_in(claimed.iter().map(|row| row.endpoint_id)))
            .all(&transaction)
            .await?;
        transaction.commit().await?;
        Ok(claimed
            .into_iter()
            .filter_map(|delivery| {
                let endpoint = endpoints
                    .iter()
                    .find(|endpoint| endpoint.id == delivery.endpoint_id)?
                    .clone();
                Some(Job { delivery, endpoint })
            })
            .collect())
    }

    /// Sends one delivery.
    async fn attempt(&self, job: &Job) -> Outcome {
        let attempted_at = now();
        let started = Instant::now();
        let result = self.send(job, attempted_at.timestamp()).await;
        let duration = started.elapsed();
        match result {
            Ok(status) if (200..300).contains(&status) => Outcome {
                attempted_at,
                duration,
                status_code: Some(status),
                error: None,
            },
            Ok(status) => Outcome {
                attempted_at,
                duration,
                status_code: Some(status),
                error: Some(format!("answered HTTP {status}")),
            },
            Err(error) => Outcome {
                attempted_at,
                duration,
                status_code: None,
                error: Some(error),
            },
        }
    }

    /// POSTs the payload with the Standard Webhooks headers; answers the
    /// response status, or why none came.
    async fn send(&self, job: &Job, timestamp: i64) -> std::result::Result<u16, String> {
        let options = self.options();
        let url = Url::parse(&job.endpoint.url)
            .map_err(|error| format!("the endpoint URL is invalid: {error}"))?;
        check_literal_host(&url, options.allow_private_targets)?;
        let key = signature::key_of(&job.endpoint.secret)
            .ok_or_else(|| "the endpoint's secret is malformed".to_owned())?;
        let id = job.delivery.event_id.to_string();
        let body = job.delivery.payload.clone();
        let signature = signature::sign(&key, &id, timestamp, body.as_bytes());
        let response = self
            .inner
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header("webhook-key-id", job.endpoint.key_id.as_str())
            .body(body)
            .send()
            .await
            .map_err(|error| describe(&error, options.request_timeout))?;
        Ok(response.status().as_u16())
    }

    /// Records an attempt and its consequences in one transaction confined
    /// to the delivery's tenant.
    async fn record(&self, job: Job, outcome: Outcome) -> Result<()> {
        let tenant = TenantId::from_uuid(job.delivery.tenant_id);
        let transaction = self.store().begin(tenant).await?;
        // Releases the claim and re-reads the row (a resend may have
        // restarted the retry period meanwhile, or the endpoint may be
        // gone). A write first: on SQLite a transaction that reads first
        // cannot write once another writer has committed.
        let Some(current) = delivery::Entity::update_many()
            .col_expr(
                delivery::Column::ClaimedUntil,
                Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
            )
            .filter(delivery::Column::TenantId.eq(tenant.as_uuid()))
            .filter(delivery::Column::Id.eq(job.delivery.id))
            .exec_with_returning(&transaction)
            .await?
            .into_iter()
            .next()
        else {
            transaction.commit().await?;
            return Ok(());
        };
        attempt::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            tenant_id: Set(tenant.as_uuid()),
            delivery_id: Set(current.id),
            attempted_at: Set(outcome.attempted_at),
            status_code: Set(outcome.status_code.map(i32::from)),
            error: Set(outcome.error.clone()),
            duration_ms: Set(i64::try_from(outcome.duration.as_millis()).unwrap_or(i64::MAX)),
        }
        .insert(&transaction)
        .await?;
        let window_start = current.first_attempt_at.unwrap_or(outcome.attempted_at);
        let mut row = current.clone().into_active_model();
        row.attempts = Set(current.attempts.saturating_add(1));
        row.first_attempt_at = Set(Some(window_start));
        row.last_status_code = Set(outcome.status_code.map(i32::from));
        row.last_error = Set(outcome.error.clone());
        let Some(error) = outcome.error else {
            row.status = Set(DeliveryStatus::Succeeded.as_str().to_owned());
            row.next_attempt_at = Set(None);
            row.delivered_at = Set(Some(now()));
            row.update(&transaction).await?;
            transaction.commit().await?;
            metrics::counter!("switchboard_webhooks_attempts_total", "outcome" => "succeeded")
                .increment(1);
            tracing::debug!(tenant_id = %tenant, delivery_id = %current.id, "webhook delivered");
            return Ok(());
        };
        let failures = attempt::Entity::find()
            .filter(attempt::Column::TenantId.eq(tenant.as_uuid()))
            .filter(attempt::Column::DeliveryId.eq(current.id))
            .filter(attempt::Column::AttemptedAt.gte(window_start))
            .count(&transaction)
            .await?;
        let options = self.options();
        let in_window = (now() - window_start).to_std().unwrap_or_default();
        let decision = domain::after_failure(
            outcome.status_code,
            in_window,
            options.give_up_after,
            u32::try_from(failures).unwrap_or(u32::MAX),
            &options.backoff(),
            rand::random::<f64>(),
        );
        match decision {
            AfterFailure::Retry(delay) => {
                let delay =
                    chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::days(365));
                row.next_attempt_at = Set(Some(now() + delay));
                row.update(&transaction).await?;
                transaction.commit().await?;
                metrics::counter!("switchboard_webhooks_attempts_total", "outcome" => "retried")
                    .increment(1);
                tracing::debug!(tenant_id = %tenant, delivery_id = %current.id, %error, "webhook attempt failed; retrying");
            }
            AfterFailure::GiveUp => {
                row.status = Set(DeliveryStatus::Failed.as_str().to_owned());
                row.next_attempt_at = Set(None);
                row.update(&transaction).await?;
                let reason = if outcome.status_code == Some(410) {
                    "the endpoint answered 410 Gone".to_owned()
                } else {
                    format!(
                        "deliveries kept failing for {}; last error: {error}",
                        humantime::format_duration(options.give_up_after)
                    )
                };
                disable(
                    &transaction,
                    tenant,
                    &job.endpoint,
                    &current,
                    &reason,
                    &error,
                )
                .await?;
                transaction.commit().await?;
                metrics::counter!("switchboard_webhooks_attempts_total", "outcome" => "failed")
                    .increment(1);
                tracing::info!(tenant_id = %tenant, delivery_id = %current.id, endpoint_id = %job.endpoint.id, %error, "webhook delivery given up");
            }
        }
        Ok(())
    }
}

/// Disables `endpoint` after persistent failure, unless it is disabled
/// already, and tells the tenant: a system audit event and a
/// `webhook.endpoint_disabled` event in the outbox (the audit entry as an
/// `audit.recorded` event, which identity writes to the audit log).
async fn disable(
    transaction: &sea_orm::DatabaseTransaction,
    tenant: TenantId,
    endpoint: &endpoint::Model,
    delivery: &delivery::Model,
    reason: &str,
    last_error: &str,
) -> Result<()> {
    let changed = endpoint::Entity::update_many()
        .col_expr(
            endpoint::Column::Status,
            Expr::value(EndpointStatus::Disabled.as_str()),
        )
        .col_expr(endpoint::Column::DisabledReason, Expr::value(reason))
        .col_expr(endpoint::Column::UpdatedAt, Expr::value(now()))
        .filter(endpoint::Column::TenantId.eq(tenant.as_uuid()))
        .filter(endpoint::Column::Id.eq(endpoint.id))
        .filter(endpoint::Column::Status.eq(EndpointStatus::Active.as_str()))
        .exec(transaction)
        .await?;
    if changed.rows_affected == 0 {
        return Ok(());
    }
    // Identity owns the audit log: the entry goes through the outbox too.
    let audit = AuditEntry::system(
        "webhook.endpoint_disabled",
        "webhook_endpoint",
        Some(endpoint.id),
        serde_json::json!({
            "url": endpoint.url,
            "reason": reason,
            "last_error": last_error,
            "delivery_id": delivery.id,
            "event_id": delivery.event_id,
        }),
    )
    .event(tenant, EVENT_SOURCE);
    let event = Event::new(
        tenant,
        EVENT_SOURCE,
        Payload::WebhookEndpointDisabled(WebhookEndpointDisabled {
            endpoint_id: endpoint.id.to_string(),
            url: endpoint.url.clone(),
            last_error: last_error.to_owned(),
        }),
    );
    outbox::append(transaction, &[audit, event]).await?;
    Ok(())
}
