//! The audit log: who changed what, when, from where. Identity's own
//! changes are written in the same transaction as the change; other
//! services' come as `audit.recorded` events from their outboxes
//! ([`AuditIntake`]), so no other service writes `audit_events`.

use std::sync::Arc;

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use switchboard_events::proto::envelope::Payload;
use switchboard_events::{AuditEntry, Event, EventHandler, HandlerError};
use switchboard_tenancy::{ClientId, ClientScope, TenantId};
use uuid::Uuid;

use crate::domain::Permission;
use crate::store::entities::audit_event;
use crate::{AuditEventView, Identity, Principal, RequestOrigin, Result, now};

/// One change to record.
pub(crate) struct AuditRecord<'a> {
    pub actor: (&'static str, Option<Uuid>),
    pub action: &'a str,
    pub target: (&'static str, Option<Uuid>),
    /// The clients the change concerns (empty: tenant-wide).
    pub clients: &'a [ClientId],
    pub details: serde_json::Value,
}

impl<'a> AuditRecord<'a> {
    pub fn by(
        principal: &Principal,
        action: &'a str,
        target: (&'static str, Option<Uuid>),
    ) -> Self {
        let (kind, id) = principal.audit_actor();
        Self {
            actor: (kind, Some(id)),
            action,
            target,
            clients: &[],
            details: serde_json::Value::Null,
        }
    }

    pub fn clients(mut self, clients: &'a [ClientId]) -> Self {
        self.clients = clients;
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

pub(crate) async fn record(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    origin: &RequestOrigin,
    record: AuditRecord<'_>,
) -> Result<()> {
    audit_event::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.as_uuid()),
        actor_type: Set(record.actor.0.to_owned()),
        actor_id: Set(record.actor.1),
        action: Set(record.action.to_owned()),
        target_type: Set(record.target.0.to_owned()),
        target_id: Set(record.target.1),
        client_address: Set(origin.address.clone()),
        client_ids: Set(record
            .clients
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")),
        details: Set(record.details.to_string()),
        occurred_at: Set(now()),
    }
    .insert(transaction)
    .await?;
    Ok(())
}

impl Identity {
    /// Audit events, newest last, after `after` (a cursor), at most `limit`.
    /// A client-scoped caller sees only events about its clients.
    pub async fn list_audit_events(
        &self,
        principal: &Principal,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<AuditEventView>> {
        principal.require(Permission::ReadAudit)?;
        let tenant = principal.tenant.id();
        let transaction = self.store().begin(tenant).await?;
        let query = audit_event::Entity::find()
            .filter(audit_event::Column::TenantId.eq(tenant.as_uuid()))
            .order_by_asc(audit_event::Column::Id);
        let scope = principal.tenant.clients().clone();
        let mut events = Vec::new();
        // Client-scoped callers filter in memory; page through until full.
        let batch = limit.max(1);
        let mut cursor = after;
        loop {
            let mut page_query = query.clone();
            if let Some(cursor) = cursor {
                page_query = page_query.filter(audit_event::Column::Id.gt(cursor));
            }
            let rows = page_query.limit(batch).all(&transaction).await?;
            let exhausted = (rows.len() as u64) < batch;
            for row in rows {
                cursor = Some(row.id);
                if visible(&scope, &row.client_ids) {
                    events.push(view(row));
                    if events.len() as u64 == limit {
                        transaction.commit().await?;
                        return Ok(events);
                    }
                }
            }
            if exhausted {
                break;
            }
        }
        transaction.commit().await?;
        Ok(events)
    }
}

fn visible(scope: &ClientScope, client_ids: &str) -> bool {
    match scope {
        ClientScope::All => true,
        ClientScope::Only(allowed) => client_ids
            .split(',')
            .filter_map(|id| id.parse::<ClientId>().ok())
            .any(|id| allowed.contains(&id)),
    }
}

fn view(row: audit_event::Model) -> AuditEventView {
    AuditEventView {
        id: row.id,
        actor_type: row.actor_type,
        actor_id: row.actor_id,
        action: row.action,
        target_type: row.target_type,
        target_id: row.target_id,
        client_address: row.client_address,
        details: serde_json::from_str(&row.details).unwrap_or(serde_json::Value::Null),
        occurred_at: row.occurred_at,
    }
}

/// The name of identity's audit consumer (its queue).
pub const AUDIT_CONSUMER_NAME: &str = "identity-audit";

/// What the audit consumer is bound to: `audit.recorded` events of every
/// tenant and source.
pub const AUDIT_BINDINGS: &[&str] = &["*.*.audit.recorded"];

/// The handler of the [`AUDIT_CONSUMER_NAME`] consumer: inserts each
/// `audit.recorded` event of another service into the audit log, as the
/// row whose id is the event's id, at the event's time. A redelivered or
/// replayed event inserts nothing (the consumer's processed mark, and the
/// primary key besides). Other events are ignored.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditIntake;

impl Identity {
    /// The handler to run in the [`AUDIT_CONSUMER_NAME`] consumer.
    pub fn audit_intake(&self) -> Arc<dyn EventHandler> {
        Arc::new(AuditIntake)
    }
}

#[async_trait::async_trait]
impl EventHandler for AuditIntake {
    async fn handle(
        &self,
        transaction: &DatabaseTransaction,
        event: &Event,
    ) -> std::result::Result<(), HandlerError> {
        let Payload::AuditRecorded(message) = &event.payload else {
            return Ok(());
        };
        let entry = AuditEntry::from_proto(message)
            .map_err(|problem| HandlerError::new(format!("event {}: {problem}", event.id)))?;
        let row = audit_event::ActiveModel {
            id: Set(event.id),
            tenant_id: Set(event.tenant.as_uuid()),
            actor_type: Set(entry.actor_type),
            actor_id: Set(entry.actor_id),
            action: Set(entry.action),
            target_type: Set(entry.target_type),
            target_id: Set(entry.target_id),
            client_address: Set(entry.client_address),
            client_ids: Set(entry
                .client_ids
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")),
            details: Set(entry.details.to_string()),
            occurred_at: Set(event.occurred_at),
        };
        audit_event::Entity::insert(row)
            .on_conflict(
                OnConflict::column(audit_event::Column::Id)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(transaction)
            .await?;
        Ok(())
    }
}
