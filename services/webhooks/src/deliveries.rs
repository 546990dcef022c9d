//! An endpoint's deliveries with their attempts, and re-sending one.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use switchboard_tenancy::{Tenant, TenantId};
use switchboard_webhooks_api::{AttemptView, DeliveryId, DeliveryView, EndpointId};
use uuid::Uuid;

use crate::domain::{DeliveryStatus, EndpointStatus};
use crate::endpoints::find;
use crate::error::{Result, WebhooksError};
use crate::store::entities::{attempt, delivery, endpoint};
use crate::{Webhooks, now};

const NO_TIME: Option<chrono::DateTime<chrono::Utc>> = None;

impl Webhooks {
    /// The deliveries of endpoint `id`, newest first, older than `before`
    /// (a cursor), at most `limit`, each with its attempts (oldest first).
    pub async fn list_deliveries(
        &self,
        tenant: &Tenant,
        id: EndpointId,
        before: Option<DeliveryId>,
        limit: u64,
    ) -> Result<Vec<DeliveryView>> {
        let tenant = tenant.id();
        let transaction = self.store().begin(tenant).await?;
        find(&transaction, tenant, id).await?;
        let mut query = delivery::Entity::find()
            .filter(delivery::Column::TenantId.eq(tenant.as_uuid()))
            .filter(delivery::Column::EndpointId.eq(id.as_uuid()))
            .order_by_desc(delivery::Column::Id)
            .limit(limit);
        if let Some(before) = before {
            query = query.filter(delivery::Column::Id.lt(before.as_uuid()));
        }
        let rows = query.all(&transaction).await?;
        let mut attempts = attempts_of(&transaction, tenant, rows.iter().map(|row| row.id)).await?;
        transaction.commit().await?;
        rows.into_iter()
            .map(|row| {
                let attempts = attempts.remove(&row.id).unwrap_or_default();
                view(row, attempts)
            })
            .collect()
    }

    /// Sends a delivery again: it becomes pending and due now, with a new
    /// retry period, whatever its state (an attempt already in flight is
    /// not doubled). The same row is reused, so the receiver sees the same
    /// `webhook-id` and the new attempts join the old ones. Refused with
    /// 409 `endpoint_disabled` while the endpoint is disabled.
    pub async fn resend_delivery(
        &self,
        tenant: &Tenant,
        endpoint: EndpointId,
        id: DeliveryId,
    ) -> Result<DeliveryView> {
        let tenant = tenant.id();
        let transaction = self.store().begin(tenant).await?;
        // The write first (see `dispatch::record`), limited to deliveries
        // of this tenant's endpoint while it is active.
        let updated = delivery::Entity::update_many()
            .col_expr(
                delivery::Column::Status,
                Expr::value(DeliveryStatus::Pending.as_str()),
            )
            .col_expr(delivery::Column::NextAttemptAt, Expr::value(now()))
            .col_expr(delivery::Column::FirstAttemptAt, Expr::value(NO_TIME))
            .col_expr(delivery::Column::DeliveredAt, Expr::value(NO_TIME))
            .filter(delivery::Column::TenantId.eq(tenant.as_uuid()))
            .filter(delivery::Column::EndpointId.eq(endpoint.as_uuid()))
            .filter(delivery::Column::Id.eq(id.as_uuid()))
            .filter(
                delivery::Column::EndpointId.in_subquery(
                    Query::select()
                        .column(endpoint::Column::Id)
                        .from(endpoint::Entity)
                        .and_where(endpoint::Column::Id.eq(endpoint.as_uuid()))
                        .and_where(endpoint::Column::Status.eq(EndpointStatus::Active.as_str()))
                        .to_owned(),
                ),
            )
            .exec_with_returning(&transaction)
            .await?
            .into_iter()
            .next();
        let Some(updated) = updated else {
            let endpoint_row = find(&transaction, tenant, endpoint).await?;
            if endpoint_row.status != EndpointStatus::Active.as_str() {
                return Err(WebhooksError::conflict(
                    "endpoint_disabled",
                    "the webhook endpoint is disabled; enable it (PATCH status \"active\") first",
                ));
            }
            return Err(WebhooksError::NotFound("webhook delivery"));
        };
        let mut attempts = attempts_of(&transaction, tenant, [updated.id]).await?;
        transaction.commit().await?;
        let attempts = attempts.remove(&updated.id).unwrap_or_default();
        view(updated, attempts)
    }
}

/// The attempts of `deliveries`, oldest first, by delivery.
async fn attempts_of(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    deliveries: impl IntoIterator<Item = Uuid>,
) -> Result<HashMap<Uuid, Vec<attempt::Model>>> {
    let ids: Vec<Uuid> = deliveries.into_iter().collect();
    let mut by_delivery: HashMap<Uuid, Vec<attempt::Model>> = HashMap::new();
    if ids.is_empty() {
        return Ok(by_delivery);
    }
    let rows = attempt::Entity::find()
        .filter(attempt::Column::TenantId.eq(tenant.as_uuid()))
        .filter(attempt::Column::DeliveryId.is_in(ids))
        .order_by_asc(attempt::Column::AttemptedAt)
        .order_by_asc(attempt::Column::Id)
        .all(transaction)
        .await?;
    for row in rows {
        by_delivery.entry(row.delivery_id).or_default().push(row);
    }
    Ok(by_delivery)
}

fn view(row: delivery::Model, attempts: Vec<attempt::Model>) -> Result<DeliveryView> {
    let payload = serde_json::from_str(&row.payload).map_err(|error| {
        WebhooksError::Internal(format!(
            "stored payload of delivery {} is not JSON: {error}",
            row.id
        ))
    })?;
    Ok(DeliveryView {
        id: DeliveryId::from_uuid(row.id),
        endpoint_id: EndpointId::from_uuid(row.endpoint_id),
        event_id: row.event_id,
        event_type: row.event_type,
        payload,
        status: row.status.parse().map_err(WebhooksError::Internal)?,
        next_attempt_at: row.next_attempt_at,
        last_status_code: row
            .last_status_code
            .and_then(|code| u16::try_from(code).ok()),
        last_error: row.last_error,
        created_at: row.created_at,
        delivered_at: row.delivered_at,
        attempts: attempts
            .into_iter()
            .map(|attempt| AttemptView {
                id: attempt.id,
                attempted_at: attempt.attempted_at,
                status_code: attempt
                    .status_code
                    .and_then(|code| u16::try_from(code).ok()),
                error: attempt.error,
                duration_ms: u64::try_from(attempt.duration_ms).unwrap_or(0),
            })
            .collect(),
    })
}
