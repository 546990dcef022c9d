//! Audit entries of services other than identity. Identity owns the audit
//! log (`audit_events`); another service records a change there by
//! appending an `audit.recorded` event to its own outbox, in the
//! transaction of the change, and identity's audit consumer inserts it.
//! The entry's id is the event's id, so a redelivery inserts nothing twice.

use switchboard_proto::events::v1::{AuditRecorded, envelope::Payload};
use switchboard_tenancy::TenantId;
use uuid::Uuid;

use crate::Event;

/// One change to record in the tenant's audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// `user`, `api_key` or `system`.
    pub actor_type: String,
    pub actor_id: Option<Uuid>,
    /// `routing.queue_created`, `webhook.endpoint_disabled`, …
    pub action: String,
    pub target_type: String,
    pub target_id: Option<Uuid>,
    pub client_address: Option<String>,
    /// The client organizations the change concerns (empty: tenant-wide).
    pub client_ids: Vec<Uuid>,
    pub details: serde_json::Value,
}

impl AuditEntry {
    /// A change made by the platform itself (no actor id, no address).
    pub fn system(
        action: impl Into<String>,
        target_type: impl Into<String>,
        target_id: Option<Uuid>,
        details: serde_json::Value,
    ) -> Self {
        Self {
            actor_type: "system".to_owned(),
            actor_id: None,
            action: action.into(),
            target_type: target_type.into(),
            target_id,
            client_address: None,
            client_ids: Vec::new(),
            details,
        }
    }

    /// The `audit.recorded` event of `tenant` carrying this entry, from
    /// service `source`; append it to the outbox in the change's
    /// transaction.
    pub fn event(&self, tenant: TenantId, source: &str) -> Event {
        Event::new(tenant, source, Payload::AuditRecorded(self.to_proto()))
    }

    pub fn to_proto(&self) -> AuditRecorded {
        let id = |id: Option<Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
        AuditRecorded {
            actor_type: self.actor_type.clone(),
            actor_id: id(self.actor_id),
            action: self.action.clone(),
            target_type: self.target_type.clone(),
            target_id: id(self.target_id),
            client_address: self.client_address.clone().unwrap_or_default(),
            client_ids: self.client_ids.iter().map(ToString::to_string).collect(),
            details_json: self.details.to_string(),
        }
    }

    /// Reads an entry back; names the first field that does not hold.
    pub fn from_proto(message: &AuditRecorded) -> Result<Self, String> {
        let id = |field: &str, text: &str| -> Result<Option<Uuid>, String> {
            if text.is_empty() {
                return Ok(None);
            }
            Uuid::parse_str(text)
                .map(Some)
                .map_err(|_| format!("{field} {text:?} is not a UUID"))
        };
        if message.action.is_empty() || message.actor_type.is_empty() {
            return Err("an audit entry needs an action and an actor type".to_owned());
        }
        let client_ids = message
            .client_ids
            .iter()
            .map(|text| {
                Uuid::parse_str(text).map_err(|_| format!("client id {text:?} is not a UUID"))
            })
            .collect::<Result<_, _>>()?;
        let details = if message.details_json.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&message.details_json)
                .map_err(|error| format!("details are not JSON: {error}"))?
        };
        Ok(Self {
            actor_type: message.actor_type.clone(),
            actor_id: id("actor_id", &message.actor_id)?,
            action: message.action.clone(),
            target_type: message.target_type.clone(),
            target_id: id("target_id", &message.target_id)?,
            client_address: (!message.client_address.is_empty())
                .then(|| message.client_address.clone()),
            client_ids,
            details,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_round_trips_through_its_event() {
        let entry = AuditEntry {
            actor_type: "user".into(),
            actor_id: Some(Uuid::now_v7()),
            action: "routing.queue_created".into(),
            target_type: "queue".into(),
            target_id: Some(Uuid::now_v7()),
            client_address: None,
            client_ids: vec![Uuid::now_v7()],
            details: serde_json::json!({"definition": {"name": "Billing"}}),
        };
        let tenant = TenantId::new();
        let event = entry.event(tenant, "routing");
        assert_eq!(event.event_type, "audit.recorded");
        assert_eq!(
            event.routing_key(),
            format!("{tenant}.routing.audit.recorded")
        );
        let decoded = Event::decode(&event.encode()).unwrap();
        let Payload::AuditRecorded(message) = decoded.payload else {
            panic!("not an audit entry");
        };
        assert_eq!(AuditEntry::from_proto(&message).unwrap(), entry);
        let system = AuditEntry::system(
            "webhook.endpoint_disabled",
            "webhook_endpoint",
            None,
            serde_json::Value::Null,
        );
        assert_eq!(AuditEntry::from_proto(&system.to_proto()).unwrap(), system);
    }

    #[test]
    fn a_malformed_entry_is_refused() {
        let mut message = AuditEntry::system("a.b", "x", None, serde_json::Value::Null).to_proto();
        message.target_id = "not-a-uuid".into();
        assert!(
            AuditEntry::from_proto(&message)
                .unwrap_err()
                .contains("target_id")
        );
        message.target_id.clear();
        message.action.clear();
        assert!(AuditEntry::from_proto(&message).is_err());
    }
}
