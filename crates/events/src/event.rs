//! One domain event, its envelope encoding, routing key and public JSON.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};
use switchboard_proto::events::v1::{Envelope, envelope::Payload};
use switchboard_tenancy::TenantId;
use uuid::Uuid;

use crate::error::{EventsError, Result};

/// The schema version events are written with.
const SCHEMA_VERSION: u32 = 1;

/// Every public event type, as carried in the envelope and matched by
/// webhook subscriptions. [`INTERNAL_EVENT_TYPES`] are the others.
pub const EVENT_TYPES: &[&str] = &[
    "tenant.created",
    "tenant.updated",
    "tenant.plan_changed",
    "client.created",
    "client.deleted",
    "user.created",
    "user.updated",
    "user.deleted",
    "seat.count_changed",
    "api_key.created",
    "api_key.revoked",
    "webhook.endpoint_disabled",
    "agent.state_changed",
    "contact.queued",
    "contact.offered",
    "contact.requeued",
    "contact.connected",
    "contact.abandoned",
    "contact.ended",
    "contact.overflowed",
    "trunk.created",
    "trunk.updated",
    "trunk.deleted",
    "call.started",
    "call.answered",
    "call.ended",
    "call.refused",
];

/// Event types that travel between services only: never delivered to
/// webhooks, nor offered as a subscription.
pub const INTERNAL_EVENT_TYPES: &[&str] = &["audit.recorded"];

/// Whether events of `event_type` may leave the platform (webhooks).
pub fn is_public(event_type: &str) -> bool {
    !INTERNAL_EVENT_TYPES.contains(&event_type)
}

/// The type name of a payload (one of [`EVENT_TYPES`] or
/// [`INTERNAL_EVENT_TYPES`]).
pub fn event_type(payload: &Payload) -> &'static str {
    match payload {
        Payload::TenantCreated(_) => "tenant.created",
        Payload::UserCreated(_) => "user.created",
        Payload::UserUpdated(_) => "user.updated",
        Payload::UserDeleted(_) => "user.deleted",
        Payload::SeatCountChanged(_) => "seat.count_changed",
        Payload::ApiKeyCreated(_) => "api_key.created",
        Payload::ApiKeyRevoked(_) => "api_key.revoked",
        Payload::WebhookEndpointDisabled(_) => "webhook.endpoint_disabled",
        Payload::AgentStateChanged(_) => "agent.state_changed",
        Payload::ContactQueued(_) => "contact.queued",
        Payload::ContactOffered(_) => "contact.offered",
        Payload::ContactRequeued(_) => "contact.requeued",
        Payload::ContactConnected(_) => "contact.connected",
        Payload::ContactAbandoned(_) => "contact.abandoned",
        Payload::ContactEnded(_) => "contact.ended",
        Payload::ContactOverflowed(_) => "contact.overflowed",
        Payload::TenantUpdated(_) => "tenant.updated",
        Payload::TenantPlanChanged(_) => "tenant.plan_changed",
        Payload::ClientCreated(_) => "client.created",
        Payload::ClientDeleted(_) => "client.deleted",
        Payload::AuditRecorded(_) => "audit.recorded",
        Payload::TrunkCreated(_) => "trunk.created",
        Payload::TrunkUpdated(_) => "trunk.updated",
        Payload::TrunkDeleted(_) => "trunk.deleted",
        Payload::CallStarted(_) => "call.started",
        Payload::CallAnswered(_) => "call.answered",
        Payload::CallEnded(_) => "call.ended",
        Payload::CallRefused(_) => "call.refused",
    }
}

/// A domain event: what happened, to which tenant, when.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// UUIDv7; consumers apply an event at most once by this id.
    pub id: Uuid,
    pub tenant: TenantId,
    /// The emitting service (`identity`).
    pub source: String,
    /// One of [`EVENT_TYPES`], named by the payload.
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub schema_version: u32,
    pub payload: Payload,
}

impl Event {
    /// A new event of `tenant`, happening now.
    pub fn new(tenant: TenantId, source: &str, payload: Payload) -> Self {
        Self::at(tenant, source, Utc::now(), payload)
    }

    /// A new event of `tenant` that happened at `occurred_at`.
    pub fn at(
        tenant: TenantId,
        source: &str,
        occurred_at: DateTime<Utc>,
        payload: Payload,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            tenant,
            source: source.to_owned(),
            event_type: event_type(&payload).to_owned(),
            occurred_at,
            schema_version: SCHEMA_VERSION,
            payload,
        }
    }

    /// `<tenant>.<source>.<type>`: the AMQP topic routing key.
    pub fn routing_key(&self) -> String {
        format!("{}.{}.{}", self.tenant, self.source, self.event_type)
    }

    pub fn to_envelope(&self) -> Envelope {
        Envelope {
            event_id: self.id.to_string(),
            tenant_id: self.tenant.to_string(),
            r#type: self.event_type.clone(),
            source: self.source.clone(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: self.occurred_at.timestamp(),
                nanos: i32::try_from(self.occurred_at.timestamp_subsec_nanos()).unwrap_or(0),
            }),
            schema_version: self.schema_version,
            payload: Some(self.payload.clone()),
        }
    }

    /// The envelope's protobuf encoding (what the bus and the log carry).
    pub fn encode(&self) -> Vec<u8> {
        self.to_envelope().encode_to_vec()
    }

    /// Decodes and checks an envelope.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let envelope = Envelope::decode(bytes)
            .map_err(|error| EventsError::Malformed(format!("not an envelope: {error}")))?;
        Self::from_envelope(envelope)
    }

    pub fn from_envelope(envelope: Envelope) -> Result<Self> {
        let malformed = |what: &str| EventsError::Malformed(what.to_owned());
        let id = Uuid::parse_str(&envelope.event_id)
            .map_err(|_| malformed(&format!("event_id {:?} is not a UUID", envelope.event_id)))?;
        let tenant = envelope.tenant_id.parse::<TenantId>().map_err(|_| {
            malformed(&format!(
                "event {id}: tenant_id {:?} is not a UUID",
                envelope.tenant_id
            ))
        })?;
        let payload = envelope
            .payload
            .ok_or_else(|| malformed(&format!("event {id} has no payload")))?;
        let occurred_at = envelope
            .occurred_at
            .and_then(|at| DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).ok()?))
            .ok_or_else(|| malformed(&format!("event {id} has no valid occurred_at")))?;
        check_source(&envelope.source)
            .map_err(|problem| malformed(&format!("event {id}: {problem}")))?;
        let expected = event_type(&payload);
        if envelope.r#type != expected {
            return Err(malformed(&format!(
                "event {id}: type {:?} does not name its payload ({expected})",
                envelope.r#type
            )));
        }
        Ok(Self {
            id,
            tenant,
            source: envelope.source,
            event_type: envelope.r#type,
            occurred_at,
            schema_version: envelope.schema_version,
            payload,
        })
    }

    /// The public JSON form (webhooks, API): the envelope's fields and the
    /// payload as `data`, in the protobuf JSON mapping with the proto's
    /// snake_case field names.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "type": self.event_type,
            "tenant_id": self.tenant,
            "source": self.source,
            "occurred_at": self.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "schema_version": self.schema_version,
            "data": payload_json(&self.payload),
        })
    }
}

/// A source is one word of the routing key `<tenant>.<source>.<type>`.
pub(crate) fn check_source(source: &str) -> Result<(), String> {
    if source.is_empty() || source.contains('.') {
        return Err(format!("source {source:?} must be one non-empty word"));
    }
    Ok(())
}

static ENVELOPE: LazyLock<MessageDescriptor> = LazyLock::new(|| {
    // The descriptor set is compiled into the binary from our own protos;
    // failing to read it is a build defect, caught by every test.
    DescriptorPool::decode(switchboard_proto::FILE_DESCRIPTOR_SET)
        .expect("the compiled descriptor set decodes")
        .get_message_by_name("switchboard.events.v1.Envelope")
        .expect("the descriptor set holds switchboard.events.v1.Envelope")
});

/// The payload message in the protobuf JSON mapping.
fn payload_json(payload: &Payload) -> serde_json::Value {
    let envelope = Envelope {
        payload: Some(payload.clone()),
        ..Envelope::default()
    };
    let Ok(dynamic) = DynamicMessage::decode(ENVELOPE.clone(), envelope.encode_to_vec().as_slice())
    else {
        return serde_json::Value::Null;
    };
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false);
    let Some(oneof) = ENVELOPE.oneofs().find(|oneof| oneof.name() == "payload") else {
        return serde_json::Value::Null;
    };
    for field in oneof.fields() {
        if dynamic.has_field(&field) {
            let value = dynamic.get_field(&field);
            if let Some(message) = value.as_message() {
                let mut serializer = serde_json::Serializer::new(Vec::new());
                if message
                    .serialize_with_options(&mut serializer, &options)
                    .is_ok()
                {
                    return serde_json::from_slice(&serializer.into_inner())
                        .unwrap_or(serde_json::Value::Null);
                }
            }
        }
    }
    serde_json::Value::Null
}

#[cfg(test)]
mod tests {
    use switchboard_proto::events::v1::{SeatCountChanged, User, UserCreated};

    use super::*;

    fn user_created() -> Event {
        Event::new(
            TenantId::new(),
            "identity",
            Payload::UserCreated(UserCreated {
                user: Some(User {
                    user_id: Uuid::now_v7().to_string(),
                    email: "ada@example.com".into(),
                    display_name: "Ada".into(),
                    roles: vec!["agent".into()],
                    status: "active".into(),
                    all_clients: true,
                    client_ids: vec![],
                }),
            }),
        )
    }

    #[test]
    fn envelope_round_trips() {
        let event = user_created();
        let decoded = Event::decode(&event.encode()).unwrap();
        assert_eq!(decoded.id, event.id);
        assert_eq!(decoded.tenant, event.tenant);
        assert_eq!(decoded.payload, event.payload);
        assert_eq!(
            decoded.occurred_at.timestamp_micros(),
            event.occurred_at.timestamp_micros()
        );
    }

    #[test]
    fn routing_key_is_tenant_source_type() {
        let event = user_created();
        assert_eq!(
            event.routing_key(),
            format!("{}.identity.user.created", event.tenant)
        );
    }

    #[test]
    fn every_payload_type_is_listed() {
        let payload = Payload::SeatCountChanged(SeatCountChanged::default());
        assert!(EVENT_TYPES.contains(&event_type(&payload)));
        assert_eq!(
            EVENT_TYPES.len() + INTERNAL_EVENT_TYPES.len(),
            ENVELOPE.oneofs().next().unwrap().fields().count()
        );
        let audit = Payload::AuditRecorded(Default::default());
        assert!(!is_public(event_type(&audit)));
        assert!(!EVENT_TYPES.contains(&event_type(&audit)));
        assert!(is_public(event_type(&payload)));
    }

    #[test]
    fn a_type_that_does_not_name_the_payload_is_malformed() {
        let mut envelope = user_created().to_envelope();
        envelope.r#type = "user.deleted".into();
        let error = Event::from_envelope(envelope).unwrap_err().to_string();
        assert!(error.contains("does not name its payload"), "{error}");
        assert!(Event::decode(b"\xff\xff").is_err());
    }

    #[test]
    fn json_has_the_payload_as_data_with_snake_case_fields() {
        let event = user_created();
        let json = event.to_json();
        assert_eq!(json["type"], "user.created");
        assert_eq!(json["tenant_id"], event.tenant.to_string());
        assert_eq!(json["data"]["user"]["email"], "ada@example.com");
        assert_eq!(json["data"]["user"]["all_clients"], true);
        assert_eq!(json["data"]["user"]["roles"][0], "agent");
    }

    #[test]
    fn routing_events_render_enums_by_name_and_times_as_rfc3339() {
        use switchboard_proto::events::v1::{AgentState, AgentStateChanged, agent_state::Kind};

        let until = prost_types::Timestamp {
            seconds: 1_764_842_400,
            nanos: 0,
        };
        let event = Event::new(
            TenantId::new(),
            "routing",
            Payload::AgentStateChanged(AgentStateChanged {
                agent_id: "a1".into(),
                from: Some(AgentState {
                    kind: Kind::Busy as i32,
                    ..AgentState::default()
                }),
                to: Some(AgentState {
                    kind: Kind::AfterCallWork as i32,
                    reason: String::new(),
                    wrap_up_until: Some(until),
                }),
                cause: "ended".into(),
            }),
        );
        assert_eq!(
            event.routing_key(),
            format!("{}.routing.agent.state_changed", event.tenant)
        );
        let decoded = Event::decode(&event.encode()).unwrap();
        assert_eq!(decoded.payload, event.payload);
        let json = event.to_json();
        assert_eq!(json["type"], "agent.state_changed");
        assert_eq!(json["data"]["from"]["kind"], "KIND_BUSY");
        assert_eq!(json["data"]["to"]["kind"], "KIND_AFTER_CALL_WORK");
        assert_eq!(json["data"]["to"]["wrap_up_until"], "2025-12-04T10:00:00Z");
        assert_eq!(json["data"]["cause"], "ended");
    }
}
