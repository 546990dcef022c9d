//! The protobuf form of the API's types (`switchboard.webhooks.v1`), both
//! ways: the server encodes answers and decodes requests, the client the
//! reverse. Ids that do not parse in a request are not found, like another
//! tenant's; an answer that does not decode is an internal error.

use std::str::FromStr;

use switchboard_proto::time::{datetime, timestamp};
use switchboard_proto::webhooks::v1 as pb;
use switchboard_rpc::ServiceError;
use uuid::Uuid;

use crate::{
    AttemptView, DeliveryId, DeliveryStatus, DeliveryView, EndpointId, EndpointPatch,
    EndpointStatus, EndpointView, EndpointWithSecret, NewEndpoint, Result,
};

/// An id from a request: not found when it does not parse.
pub fn request_id<T: FromStr>(text: &str, what: &str) -> Result<T> {
    text.parse().map_err(|_| ServiceError::not_found(what))
}

/// An optional cursor from a request: empty is none.
pub fn cursor<T: FromStr>(text: &str, what: &str) -> Result<Option<T>> {
    if text.is_empty() {
        Ok(None)
    } else {
        text.parse()
            .map(Some)
            .map_err(|_| ServiceError::field("cursor", format!("not a {what} id")))
    }
}

fn answer_id<T: FromStr>(text: &str, what: &str) -> Result<T> {
    text.parse()
        .map_err(|_| ServiceError::internal(format!("the answer's {what} {text:?} is not an id")))
}

fn time(at: Option<&prost_types::Timestamp>, what: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    at.and_then(datetime)
        .ok_or_else(|| ServiceError::internal(format!("the answer's {what} is missing")))
}

fn status_code(code: Option<u16>) -> Option<u32> {
    code.map(u32::from)
}

fn status_code_of(code: Option<u32>) -> Option<u16> {
    code.and_then(|code| u16::try_from(code).ok())
}

pub fn endpoint_status(status: EndpointStatus) -> pb::EndpointStatus {
    match status {
        EndpointStatus::Active => pb::EndpointStatus::Active,
        EndpointStatus::Disabled => pb::EndpointStatus::Disabled,
    }
}

pub fn delivery_status(status: DeliveryStatus) -> pb::DeliveryStatus {
    match status {
        DeliveryStatus::Pending => pb::DeliveryStatus::Pending,
        DeliveryStatus::Succeeded => pb::DeliveryStatus::Succeeded,
        DeliveryStatus::Failed => pb::DeliveryStatus::Failed,
    }
}

impl From<NewEndpoint> for pb::CreateEndpointRequest {
    fn from(new: NewEndpoint) -> Self {
        Self {
            url: new.url,
            description: new.description,
            event_types: new.event_types,
        }
    }
}

impl From<pb::CreateEndpointRequest> for NewEndpoint {
    fn from(request: pb::CreateEndpointRequest) -> Self {
        Self {
            url: request.url,
            description: request.description,
            event_types: request.event_types,
        }
    }
}

/// The request changing endpoint `id` by `patch`.
pub fn update_request(id: EndpointId, patch: EndpointPatch) -> pb::UpdateEndpointRequest {
    pb::UpdateEndpointRequest {
        endpoint_id: id.to_string(),
        url: patch.url,
        description: patch.description,
        event_types: patch.event_types.map(|names| pb::EventTypes { names }),
        status: patch.status,
    }
}

/// The patch a request carries.
pub fn patch_of(request: pb::UpdateEndpointRequest) -> EndpointPatch {
    EndpointPatch {
        url: request.url,
        description: request.description,
        event_types: request.event_types.map(|types| types.names),
        status: request.status,
    }
}

impl From<EndpointView> for pb::Endpoint {
    fn from(view: EndpointView) -> Self {
        Self {
            id: view.id.to_string(),
            url: view.url,
            description: view.description,
            event_types: view.event_types,
            key_id: view.key_id,
            status: endpoint_status(view.status).into(),
            disabled_reason: view.disabled_reason,
            created_at: Some(timestamp(view.created_at)),
            updated_at: Some(timestamp(view.updated_at)),
        }
    }
}

impl TryFrom<pb::Endpoint> for EndpointView {
    type Error = ServiceError;

    fn try_from(endpoint: pb::Endpoint) -> Result<Self> {
        let status = match endpoint.status() {
            pb::EndpointStatus::Active => EndpointStatus::Active,
            pb::EndpointStatus::Disabled => EndpointStatus::Disabled,
            pb::EndpointStatus::Unspecified => {
                return Err(ServiceError::internal(
                    "the answer's endpoint has no status",
                ));
            }
        };
        Ok(Self {
            id: answer_id(&endpoint.id, "endpoint id")?,
            url: endpoint.url,
            description: endpoint.description,
            event_types: endpoint.event_types,
            key_id: endpoint.key_id,
            status,
            disabled_reason: endpoint.disabled_reason,
            created_at: time(endpoint.created_at.as_ref(), "created_at")?,
            updated_at: time(endpoint.updated_at.as_ref(), "updated_at")?,
        })
    }
}

impl From<EndpointWithSecret> for pb::EndpointWithSecret {
    fn from(created: EndpointWithSecret) -> Self {
        Self {
            endpoint: Some(created.endpoint.into()),
            secret: created.secret,
        }
    }
}

impl TryFrom<pb::EndpointWithSecret> for EndpointWithSecret {
    type Error = ServiceError;

    fn try_from(created: pb::EndpointWithSecret) -> Result<Self> {
        let endpoint = created
            .endpoint
            .ok_or_else(|| ServiceError::internal("the answer has no endpoint"))?;
        Ok(Self {
            endpoint: endpoint.try_into()?,
            secret: created.secret,
        })
    }
}

impl TryFrom<DeliveryView> for pb::Delivery {
    type Error = ServiceError;

    fn try_from(view: DeliveryView) -> Result<Self> {
        let payload_json = serde_json::to_string(&view.payload)
            .map_err(|error| ServiceError::internal(format!("payload not encoded: {error}")))?;
        Ok(Self {
            id: view.id.to_string(),
            endpoint_id: view.endpoint_id.to_string(),
            event_id: view.event_id.to_string(),
            event_type: view.event_type,
            payload_json,
            status: delivery_status(view.status).into(),
            next_attempt_at: view.next_attempt_at.map(timestamp),
            last_status_code: status_code(view.last_status_code),
            last_error: view.last_error,
            created_at: Some(timestamp(view.created_at)),
            delivered_at: view.delivered_at.map(timestamp),
            attempts: view
                .attempts
                .into_iter()
                .map(|attempt| pb::Attempt {
                    id: attempt.id.to_string(),
                    attempted_at: Some(timestamp(attempt.attempted_at)),
                    status_code: status_code(attempt.status_code),
                    error: attempt.error,
                    duration_ms: attempt.duration_ms,
                })
                .collect(),
        })
    }
}

impl TryFrom<pb::Delivery> for DeliveryView {
    type Error = ServiceError;

    fn try_from(delivery: pb::Delivery) -> Result<Self> {
        let status = match delivery.status() {
            pb::DeliveryStatus::Pending => DeliveryStatus::Pending,
            pb::DeliveryStatus::Succeeded => DeliveryStatus::Succeeded,
            pb::DeliveryStatus::Failed => DeliveryStatus::Failed,
            pb::DeliveryStatus::Unspecified => {
                return Err(ServiceError::internal(
                    "the answer's delivery has no status",
                ));
            }
        };
        let payload = serde_json::from_str(&delivery.payload_json).map_err(|error| {
            ServiceError::internal(format!("the answer's payload is not JSON: {error}"))
        })?;
        let attempts = delivery
            .attempts
            .into_iter()
            .map(|attempt| {
                Ok(AttemptView {
                    id: answer_id::<Uuid>(&attempt.id, "attempt id")?,
                    attempted_at: time(attempt.attempted_at.as_ref(), "attempted_at")?,
                    status_code: status_code_of(attempt.status_code),
                    error: attempt.error,
                    duration_ms: attempt.duration_ms,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            id: answer_id::<DeliveryId>(&delivery.id, "delivery id")?,
            endpoint_id: answer_id(&delivery.endpoint_id, "endpoint id")?,
            event_id: answer_id(&delivery.event_id, "event id")?,
            event_type: delivery.event_type,
            payload,
            status,
            next_attempt_at: delivery.next_attempt_at.as_ref().and_then(datetime),
            last_status_code: status_code_of(delivery.last_status_code),
            last_error: delivery.last_error,
            created_at: time(delivery.created_at.as_ref(), "created_at")?,
            delivered_at: delivery.delivered_at.as_ref().and_then(datetime),
            attempts,
        })
    }
}
