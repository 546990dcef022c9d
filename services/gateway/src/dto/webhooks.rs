//! The JSON bodies of `/v1/webhooks`. An endpoint's secret is answered
//! only at creation and rotation.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_events::EVENT_TYPES;
use switchboard_webhooks_api::{
    AttemptView, DeliveryStatus, DeliveryView, EndpointStatus, EndpointView, EndpointWithSecret,
};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

/// A new webhook endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewWebhook)]
pub struct WebhookCreateBody {
    /// Where deliveries are POSTed: `https://`, on a public address.
    #[schema(example = "https://crm.example.com/hooks/switchboard")]
    pub url: String,
    /// What the endpoint is for (at most 500 characters).
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// The event types to receive, or `["*"]` for all.
    #[schema(value_type = Vec<EventTypeSchema>, example = json!(["user.created", "user.deleted"]))]
    pub event_types: Vec<String>,
}

/// The fields to change; absent ones are unchanged. Setting `status` to
/// `active` re-enables an endpoint disabled after failures: its pending
/// deliveries are due at once, with a new retry period.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WebhookPatch)]
pub struct WebhookPatchBody {
    pub url: Option<String>,
    /// At most 500 characters.
    #[schema(max_length = 500)]
    pub description: Option<String>,
    #[schema(value_type = Option<Vec<EventTypeSchema>>)]
    pub event_types: Option<Vec<String>>,
    #[schema(value_type = Option<WebhookStatusSchema>)]
    pub status: Option<String>,
}

/// A webhook endpoint, without its secret.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Webhook)]
pub struct WebhookDto {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    #[schema(value_type = Vec<EventTypeSchema>)]
    pub event_types: Vec<String>,
    /// Names the current secret; sent as `webhook-key-id`.
    #[schema(example = "whk_3f9a0c1b2d4e5f60")]
    pub key_id: String,
    #[schema(value_type = WebhookStatusSchema)]
    pub status: &'static str,
    /// Why the endpoint is disabled, while it is.
    #[schema(required = true)]
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<EndpointView> for WebhookDto {
    fn from(view: EndpointView) -> Self {
        Self {
            id: view.id.as_uuid(),
            url: view.url,
            description: view.description,
            event_types: view.event_types,
            key_id: view.key_id,
            status: view.status.as_str(),
            disabled_reason: view.disabled_reason,
            created_at: view.created_at,
            updated_at: view.updated_at,
        }
    }
}

/// A webhook endpoint with its signing secret.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookWithSecret)]
pub struct WebhookWithSecretDto {
    #[serde(flatten)]
    pub webhook: WebhookDto,
    /// The signing secret, shown this once: the base64 after `whsec_` is
    /// the HMAC-SHA256 key.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

impl From<EndpointWithSecret> for WebhookWithSecretDto {
    fn from(created: EndpointWithSecret) -> Self {
        Self {
            webhook: created.endpoint.into(),
            secret: created.secret,
        }
    }
}

/// One event to one endpoint, with every attempt to send it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct DeliveryDto {
    pub id: Uuid,
    pub webhook_id: Uuid,
    /// Sent as `webhook-id`, the same on every attempt.
    pub event_id: Uuid,
    #[schema(value_type = EventTypeSchema)]
    pub event_type: String,
    /// The body sent: the event as JSON.
    pub payload: serde_json::Value,
    #[schema(value_type = WebhookDeliveryStatusSchema)]
    pub status: &'static str,
    /// When the next attempt is due (pending deliveries).
    #[schema(required = true)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub last_status_code: Option<u16>,
    #[schema(required = true)]
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When an attempt last succeeded.
    #[schema(required = true)]
    pub delivered_at: Option<DateTime<Utc>>,
    /// Oldest first.
    pub attempts: Vec<AttemptDto>,
}

impl From<DeliveryView> for DeliveryDto {
    fn from(view: DeliveryView) -> Self {
        Self {
            id: view.id.as_uuid(),
            webhook_id: view.endpoint_id.as_uuid(),
            event_id: view.event_id,
            event_type: view.event_type,
            payload: view.payload,
            status: view.status.as_str(),
            next_attempt_at: view.next_attempt_at,
            last_status_code: view.last_status_code,
            last_error: view.last_error,
            created_at: view.created_at,
            delivered_at: view.delivered_at,
            attempts: view.attempts.into_iter().map(Into::into).collect(),
        }
    }
}

/// One try at sending a delivery.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookAttempt)]
pub struct AttemptDto {
    pub id: Uuid,
    pub attempted_at: DateTime<Utc>,
    /// The answer's status, when one came.
    #[schema(required = true)]
    pub status_code: Option<u16>,
    /// Why the attempt failed: a status that is not 2xx, a timeout, a
    /// refused, reset or closed connection, a non-public address.
    #[schema(required = true)]
    pub error: Option<String>,
    pub duration_ms: u64,
}

impl From<AttemptView> for AttemptDto {
    fn from(view: AttemptView) -> Self {
        Self {
            id: view.id,
            attempted_at: view.attempted_at,
            status_code: view.status_code,
            error: view.error,
            duration_ms: view.duration_ms,
        }
    }
}

fn string_enum(description: &str, values: impl IntoIterator<Item = &'static str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(values))
        .into()
}

/// An event type a webhook can subscribe to, or `*` for all.
pub(crate) struct EventTypeSchema;

impl PartialSchema for EventTypeSchema {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "An event type, or `*` (in a subscription) for every type.",
            EVENT_TYPES.iter().copied().chain(["*"]),
        )
    }
}

impl ToSchema for EventTypeSchema {
    fn name() -> Cow<'static, str> {
        "EventType".into()
    }
}

/// From [`EndpointStatus`].
pub(crate) struct WebhookStatusSchema;

impl PartialSchema for WebhookStatusSchema {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "`active` endpoints get deliveries; `disabled` ones (by the tenant, or after \
             deliveries failed for the retry period) do not, and their pending deliveries wait.",
            EndpointStatus::ALL.iter().map(|status| status.as_str()),
        )
    }
}

impl ToSchema for WebhookStatusSchema {
    fn name() -> Cow<'static, str> {
        "WebhookStatus".into()
    }
}

/// From [`DeliveryStatus`].
pub(crate) struct WebhookDeliveryStatusSchema;

impl PartialSchema for WebhookDeliveryStatusSchema {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "`pending` (waiting for its next attempt), `succeeded` (an attempt got a 2xx), \
             `failed` (given up after the retry period, or on 410 Gone).",
            DeliveryStatus::ALL.iter().map(|status| status.as_str()),
        )
    }
}

impl ToSchema for WebhookDeliveryStatusSchema {
    fn name() -> Cow<'static, str> {
        "WebhookDeliveryStatus".into()
    }
}
