//! What the service takes and answers: new endpoints and changes to them,
//! endpoints (never with their secret, except once at creation or
//! rotation), deliveries with their attempts.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::ids::{DeliveryId, EndpointId};

/// A new endpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewEndpoint {
    /// `https://…` (or `http://` when allowed).
    pub url: String,
    pub description: Option<String>,
    /// Event type names, or `["*"]` for all.
    pub event_types: Vec<String>,
}

/// The fields to change; absent ones are unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// `active` or `disabled`, as the caller sent it (the service checks
    /// it). Re-enabling clears the failure that disabled the endpoint and
    /// makes its pending deliveries due now, each with a new retry period.
    pub status: Option<String>,
}

/// Whether an endpoint receives deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointStatus {
    Active,
    /// By the tenant, or by the dispatcher after persistent failure; its
    /// pending deliveries wait until it is active again.
    Disabled,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// An attempt got a 2xx answer.
    Succeeded,
    /// Given up: failing for longer than the retry period, or 410 Gone.
    Failed,
}

macro_rules! text_enum {
    ($name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $name {
            pub const ALL: &[$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                match text {
                    $($text => Ok($name::$variant),)*
                    _ => Err(format!(
                        "must be one of: {}",
                        [$($text),*].join(", ")
                    )),
                }
            }
        }
    };
}

text_enum!(EndpointStatus { Active => "active", Disabled => "disabled" });
text_enum!(DeliveryStatus { Pending => "pending", Succeeded => "succeeded", Failed => "failed" });

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
