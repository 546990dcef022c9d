//! Turning events into deliveries: the handler of the `webhooks` event
//! consumer.

use std::sync::Arc;

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter};
use switchboard_events::{Event, EventHandler, HandlerError};

use crate::domain::{self, DeliveryStatus, EndpointStatus};
use crate::endpoints::types_from_text;
use crate::store::entities::{delivery, endpoint};
use crate::{Webhooks, now};
use switchboard_webhooks_api::DeliveryId;

/// For each event: one pending delivery, due now, per active endpoint of
/// the event's tenant subscribed to its type and registered by the time
/// the event occurred (an endpoint never receives the past, replays
/// included). The body is the event's
/// public JSON, serialized once and sent byte for byte on every attempt.
/// An event seen twice makes no second delivery (unique per endpoint and
/// event). Internal events (`audit.recorded`) are never delivered.
#[derive(Debug, Clone, Copy, Default)]
pub struct Intake;

impl Webhooks {
    /// The handler to run in the [`crate::CONSUMER_NAME`] consumer.
    pub fn intake(&self) -> Arc<dyn EventHandler> {
        Arc::new(Intake)
    }
}

#[async_trait::async_trait]
impl EventHandler for Intake {
    async fn handle(
        &self,
        transaction: &DatabaseTransaction,
        event: &Event,
    ) -> Result<(), HandlerError> {
        enqueue(transaction, event).await
    }
}

/// Adds the deliveries of `event` inside `transaction`, which is confined
/// to the event's tenant.
pub(crate) async fn enqueue(
    transaction: &DatabaseTransaction,
    event: &Event,
) -> Result<(), HandlerError> {
    if !switchboard_events::is_public(&event.event_type) {
        // Between services only (audit entries for identity).
        return Ok(());
    }
    let endpoints = endpoint::Entity::find()
        .filter(endpoint::Column::TenantId.eq(event.tenant.as_uuid()))
        .filter(endpoint::Column::Status.eq(EndpointStatus::Active.as_str()))
        .filter(endpoint::Column::CreatedAt.lte(event.occurred_at))
        .all(transaction)
        .await?;
    let mut subscribed = Vec::new();
    for row in endpoints {
        let types = types_from_text(&row.event_types).map_err(HandlerError::new)?;
        if domain::subscribed(&types, &event.event_type) {
            subscribed.push(row.id);
        }
    }
    if subscribed.is_empty() {
        return Ok(());
    }
    let payload = serde_json::to_string(&event.to_json()).map_err(HandlerError::new)?;
    let at = now();
    let rows = subscribed
        .into_iter()
        .map(|endpoint_id| delivery::ActiveModel {
            id: Set(DeliveryId::new().as_uuid()),
            tenant_id: Set(event.tenant.as_uuid()),
            endpoint_id: Set(endpoint_id),
            event_id: Set(event.id),
            event_type: Set(event.event_type.clone()),
            payload: Set(payload.clone()),
            status: Set(DeliveryStatus::Pending.as_str().to_owned()),
            attempts: Set(0),
            next_attempt_at: Set(Some(at)),
            claimed_until: Set(None),
            first_attempt_at: Set(None),
            last_status_code: Set(None),
            last_error: Set(None),
            created_at: Set(at),
            delivered_at: Set(None),
        });
    delivery::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([delivery::Column::EndpointId, delivery::Column::EventId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(transaction)
        .await?;
    Ok(())
}
