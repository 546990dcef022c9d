//! What the service answers: endpoints (never with their secret, except
//! once at creation or rotation), deliveries with their attempts.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{DeliveryStatus, EndpointStatus};
use crate::ids::{DeliveryId, EndpointId};

/// A registered endpoint, without its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointView {
    pub id: EndpointId,
    pub url: String,
    pub description: String,
    /// Event type names, or `["*"]`.
    pub event_types: Vec<String>,
    /// Names the current secret (`webhook-key-id` header).
    pub key_id: String,
    pub status: EndpointStatus,
    /// Why it was disabled, while it is.
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An endpoint and its signing secret, answered only at creation and
/// rotation.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointWithSecret {
    pub endpoint: EndpointView,
    /// `whsec_…`: the base64 after the prefix is the HMAC key.
    pub secret: String,
}

/// One event to one endpoint, with every attempt to send it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryView {
    pub id: DeliveryId,
    pub endpoint_id: EndpointId,
    /// Sent as `webhook-id`; the same on every attempt.
    pub event_id: Uuid,
    pub event_type: String,
    /// The body, as sent.
    pub payload: serde_json::Value,
    pub status: DeliveryStatus,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When an attempt last succeeded.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Oldest first.
    pub attempts: Vec<AttemptView>,
}

/// One try at sending a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptView {
    pub id: Uuid,
    pub attempted_at: DateTime<Utc>,
    /// The answer's status, if one came.
    pub status_code: Option<u16>,
    /// Why it failed without an answer (timeout, connection refused or
    /// closed, forbidden address, …), or which status failed it.
    pub error: Option<String>,
    pub duration_ms: u64,
}
