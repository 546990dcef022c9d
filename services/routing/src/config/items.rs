//! Creating, listing, reading, replacing and deleting items of any kind,
//! and the checks every write makes inside the tenant: the caller's client
//! scope, unique names, references, and deletes of items in use.

use std::any::Any;

use sea_orm::DatabaseTransaction;
use serde_json::{Value, json};
use switchboard_events::{AuditEntry, outbox};
use switchboard_tenancy::{AgentId, ClientId, ClientScope, QueueId, Tenant, TenantId, UserId};
use uuid::Uuid;

use super::Item;
use super::domain::{AgentProfileSpec, ConfigKind, ForcedMode, Kind, QueueSpec, Ref};
use super::error::{ConfigError, Result};
use super::store::{self, Row};
use super::{RoutingConfig, flows, projection};

/// Where a save goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    New,
    Replace(Uuid),
    /// Agent profiles: create or replace the item with this id.
    Upsert(Uuid),
}

/// What the engine is told after a commit.
pub(crate) enum EngineChange {
    QueueSaved(switchboard_acd::QueueConfig),
    QueueDeleted(QueueId),
    AgentSaved(AgentId, switchboard_acd::AgentProfile),
    AgentDeleted(AgentId),
}

impl RoutingConfig {
    /// Creates an item (not agent profiles: see
    /// [`RoutingConfig::put_agent_profile`]).
    pub async fn create<S: ConfigKind>(&self, tenant: &Tenant, spec: S) -> Result<Item<S>> {
        if S::KIND == Kind::AgentProfile {
            return Err(ConfigError::Internal(
                "agent profiles are put by user id".into(),
            ));
        }
        let (row, _) = self.save(tenant, Target::New, spec).await?;
        item(row)
    }

    /// Replaces an item's settings.
    pub async fn replace<S: ConfigKind>(
        &self,
        tenant: &Tenant,
        id: Uuid,
        spec: S,
    ) -> Result<Item<S>> {
        let (row, _) = self.save(tenant, Target::Replace(id), spec).await?;
        item(row)
    }

    /// Creates or replaces the agent profile of user `user`, which must be
    /// a user of the tenant (404 otherwise). Returns whether it was created.
    pub async fn put_agent_profile(
        &self,
        tenant: &Tenant,
        user: Uuid,
        spec: AgentProfileSpec,
    ) -> Result<(Item<AgentProfileSpec>, bool)> {
        let (row, created) = self.save(tenant, Target::Upsert(user), spec).await?;
        Ok((item(row)?, created))
    }

    /// Items in creation order after `after`, at most `limit`; for a
    /// client-scoped caller only its clients' numbers, flows and queues.
    pub async fn list<S: ConfigKind>(
        &self,
        tenant: &Tenant,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Item<S>>> {
        check_scope(S::KIND, tenant)?;
        let transaction = self.store().read(tenant.id()).await?;
        let rows = store::list(
            &transaction,
            S::KIND,
            tenant.id(),
            tenant.clients(),
            after,
            Some(limit),
        )
        .await?;
        transaction.commit().await?;
        rows.into_iter().map(item).collect()
    }

    pub async fn get<S: ConfigKind>(&self, tenant: &Tenant, id: Uuid) -> Result<Item<S>> {
        item(self.get_row(tenant, S::KIND, id).await?)
    }

    pub(crate) async fn get_row(&self, tenant: &Tenant, kind: Kind, id: Uuid) -> Result<Row> {
        check_scope(kind, tenant)?;
        let transaction = self.store().read(tenant.id()).await?;
        let row = store::get(&transaction, kind, tenant.id(), tenant.clients(), id).await?;
        transaction.commit().await?;
        Ok(row)
    }

    /// Deletes an item; 409 `in_use` while another item refers to it.
    pub async fn delete<S: ConfigKind>(&self, tenant: &Tenant, id: Uuid) -> Result<()> {
        let kind = S::KIND;
        check_scope(kind, tenant)?;
        let transaction = self.store().write(tenant.id()).await?;
        store::get(&transaction, kind, tenant.id(), tenant.clients(), id).await?;
        for (from_kind, from_id) in store::referrers(&transaction, tenant.id(), kind, id).await? {
            if from_id == id {
                continue;
            }
            let from = Kind::parse(&from_kind);
            let live = match from {
                Some(from) => {
                    store::exists(&transaction, from, tenant.id(), &ClientScope::All, from_id)
                        .await?
                }
                None => true,
            };
            if !live {
                // Its item went without this store (an agent profile goes
                // with its user): what it referred to is free.
                store::clear_references(&transaction, tenant.id(), from_id).await?;
                continue;
            }
            let user = from.map_or(from_kind.clone(), |kind| kind.noun().to_owned());
            return Err(ConfigError::conflict(
                "in_use",
                format!("the {} is used by {user} {from_id}", kind.noun()),
            ));
        }
        store::clear_references(&transaction, tenant.id(), id).await?;
        if kind == Kind::Flow {
            flows::delete_versions(&transaction, tenant.id(), id).await?;
        }
        store::delete(&transaction, kind, tenant.id(), id).await?;
        self.audit(&transaction, tenant.id(), kind, id, "deleted", json!({}))
            .await?;
        transaction.commit().await?;
        let change = match kind {
            Kind::Queue => Some(EngineChange::QueueDeleted(QueueId::from_uuid(id))),
            Kind::AgentProfile => Some(EngineChange::AgentDeleted(AgentId::from_uuid(id))),
            _ => None,
        };
        self.notify(tenant.id(), change).await;
        Ok(())
    }

    /// Validates and writes an item, with every check inside the tenant.
    pub(crate) async fn save<S: ConfigKind>(
        &self,
        tenant: &Tenant,
        target: Target,
        spec: S,
    ) -> Result<(Row, bool)> {
        let kind = S::KIND;
        check_scope(kind, tenant)?;
        let spec = spec.validate()?;
        let client = spec.client();
        if kind.client_scoped() {
            check_client_scope(tenant, client)?;
        }
        // Identity answers these itself: its events may not have reached
        // routing's copy yet.
        let user_scope = match target {
            Target::Upsert(id) if kind == Kind::AgentProfile => {
                Some(self.check_user(tenant, id).await?)
            }
            _ => None,
        };
        if let Some(client) = client {
            self.check_client_exists(tenant, client).await?;
        }
        let tenant_id = tenant.id();
        let transaction = self.store().write(tenant_id).await?;
        let existing = match target {
            Target::New => None,
            Target::Replace(id) => {
                Some(store::get(&transaction, kind, tenant_id, tenant.clients(), id).await?)
            }
            Target::Upsert(id) => {
                if let Some(scope) = &user_scope {
                    if projection::user_deleted(&transaction, tenant_id, id).await? {
                        return Err(ConfigError::NotFound("user"));
                    }
                    projection::seed_user(&transaction, tenant_id, id, scope).await?;
                }
                store::find(&transaction, kind, tenant_id, tenant.clients(), id).await?
            }
        };
        let id = match target {
            Target::New => Uuid::now_v7(),
            Target::Replace(id) | Target::Upsert(id) => id,
        };
        let name = spec.name();
        if (kind.unique_name() || kind == Kind::Number)
            && store::named(&transaction, kind, tenant_id, &name, Some(id))
                .await?
                .is_some()
        {
            return Err(name_conflict(kind, &name));
        }
        let mut refs = spec.references();
        if let Some(own) = refs
            .iter()
            .find(|reference| reference.kind == kind && reference.id == id)
        {
            return Err(own.missing("is this item itself").into());
        }
        check_references(&transaction, tenant, &refs).await?;
        // What the item holds besides its settings keeps holding.
        match kind {
            Kind::Flow => refs.extend(flows::latest_references(&transaction, tenant_id, id).await?),
            Kind::InboundRule => {
                if let Some(forced) = existing.as_ref().and_then(|row| row.forced.as_deref()) {
                    let forced: ForcedMode = parse(forced)?;
                    refs.extend(
                        forced
                            .destination
                            .iter()
                            .filter_map(|step| super::domain::step_reference(step, "destination")),
                    );
                }
            }
            _ => {}
        }
        let definition = serde_json::to_string(&spec)
            .map_err(|error| ConfigError::Internal(format!("cannot serialise: {error}")))?;
        let at = store::now();
        let row = Row {
            id,
            name: name.clone(),
            client_id: client,
            definition,
            created_at: existing.as_ref().map_or(at, |row| row.created_at),
            updated_at: at,
            forced: existing.as_ref().and_then(|row| row.forced.clone()),
        };
        let written = if existing.is_some() {
            store::update(&transaction, kind, tenant_id, &row).await
        } else {
            store::insert(&transaction, kind, tenant_id, &row).await
        };
        written.map_err(|error| store::unique_or(error, name_conflict_global(kind, &name)))?;
        store::set_references(&transaction, tenant_id, kind, id, &refs).await?;
        let change = engine_change(&transaction, tenant_id, id, &spec).await?;
        let verb = if existing.is_some() {
            "updated"
        } else {
            "created"
        };
        let definition = serde_json::to_value(&spec)
            .map_err(|error| ConfigError::Internal(format!("cannot serialise: {error}")))?;
        let details = json!({ "definition": definition });
        self.audit(&transaction, tenant_id, kind, id, verb, details)
            .await?;
        transaction.commit().await?;
        self.notify(tenant_id, change).await;
        Ok((row, existing.is_none()))
    }

    /// Records a write of `kind` item `id` in the tenant's audit log, in
    /// the write's transaction: `routing.<kind>_<verb>` by this handle's
    /// actor, with `details`, as an `audit.recorded` event in routing's
    /// outbox (identity owns the audit log and writes it from the event).
    pub(crate) async fn audit(
        &self,
        transaction: &DatabaseTransaction,
        tenant: TenantId,
        kind: Kind,
        id: Uuid,
        verb: &str,
        details: Value,
    ) -> Result<()> {
        record_audit(
            transaction,
            tenant,
            AuditEntry {
                actor_type: self.actor.actor_type.to_owned(),
                actor_id: self.actor.actor_id,
                action: format!("routing.{}_{verb}", kind.as_str()),
                target_type: kind.as_str().to_owned(),
                target_id: Some(id),
                client_address: None,
                client_ids: Vec::new(),
                details,
            },
        )
        .await
    }

    /// The scope of the agent profile's user, a user of the tenant
    /// (identity says; 404 otherwise).
    async fn check_user(&self, tenant: &Tenant, id: Uuid) -> Result<ClientScope> {
        self.directory
            .user_scope(tenant, UserId::from_uuid(id))
            .await?
            .ok_or(ConfigError::NotFound("user"))
    }

    async fn check_client_exists(&self, tenant: &Tenant, client: Uuid) -> Result<()> {
        if self
            .directory
            .client_exists(tenant, ClientId::from_uuid(client))
            .await?
        {
            Ok(())
        } else {
            Err(ConfigError::field(
                "client_id",
                format!("unknown client organization {client}"),
            ))
        }
    }

    pub(crate) async fn notify(&self, tenant: TenantId, change: Option<EngineChange>) {
        let (Some(observer), Some(change)) = (&self.observer, change) else {
            return;
        };
        match change {
            EngineChange::QueueSaved(queue) => observer.queue_saved(tenant, queue).await,
            EngineChange::QueueDeleted(queue) => observer.queue_deleted(tenant, queue).await,
            EngineChange::AgentSaved(agent, profile) => {
                observer.agent_profile_saved(tenant, agent, profile).await
            }
            EngineChange::AgentDeleted(agent) => {
                observer.agent_profile_deleted(tenant, agent).await
            }
        }
    }
}

/// The engine's form of a saved queue or agent profile.
async fn engine_change<S: ConfigKind>(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    id: Uuid,
    spec: &S,
) -> Result<Option<EngineChange>> {
    let any = spec as &dyn Any;
    if let Some(queue) = any.downcast_ref::<QueueSpec>() {
        let mut config = queue.to_acd(QueueId::from_uuid(id));
        config.time_zone = projection::time_zone(transaction, tenant).await?;
        return Ok(Some(EngineChange::QueueSaved(config)));
    }
    if let Some(profile) = any.downcast_ref::<AgentProfileSpec>() {
        let clients = projection::user_clients(transaction, tenant, &[id])
            .await?
            .remove(&id)
            .flatten();
        let agent = AgentId::from_uuid(id);
        return Ok(Some(EngineChange::AgentSaved(
            agent,
            profile.to_acd(agent, clients),
        )));
    }
    Ok(None)
}

/// Appends `entry` to routing's outbox as an `audit.recorded` event of
/// `tenant`, in the change's transaction.
pub(crate) async fn record_audit(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    entry: AuditEntry,
) -> Result<()> {
    let event = entry.event(tenant, crate::events::SOURCE);
    outbox::append(transaction, &[event]).await?;
    Ok(())
}

pub(crate) fn item<S: ConfigKind>(row: Row) -> Result<Item<S>> {
    Ok(Item {
        id: row.id,
        spec: parse(&row.definition)?,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|error| ConfigError::Internal(format!("stored definition: {error}")))
}

/// Tenant-wide kinds need a caller that sees every client.
pub(crate) fn check_scope(kind: Kind, tenant: &Tenant) -> Result<()> {
    if kind.client_scoped() || *tenant.clients() == ClientScope::All {
        Ok(())
    } else {
        Err(ConfigError::Forbidden {
            code: "client_scope",
            detail: format!(
                "{}s are settings of the whole tenant; a credential limited to some client \
                 organizations may not read or change them",
                kind.noun()
            ),
        })
    }
}

/// A client-scoped caller's items belong to one of its clients.
fn check_client_scope(tenant: &Tenant, client: Option<Uuid>) -> Result<()> {
    match (tenant.clients(), client) {
        (ClientScope::All, _) => Ok(()),
        (ClientScope::Only(_), None) => Err(ConfigError::field(
            "client_id",
            "required for a credential limited to some client organizations",
        )),
        (scope, Some(client)) => {
            if scope.allows(Some(switchboard_tenancy::ClientId::from_uuid(client))) {
                Ok(())
            } else {
                Err(ConfigError::field(
                    "client_id",
                    format!("unknown client organization {client}"),
                ))
            }
        }
    }
}

/// Every reference names an item of the tenant the caller sees; a flow
/// referred to from a rule or a queue must have a published version.
pub(crate) async fn check_references(
    transaction: &DatabaseTransaction,
    tenant: &Tenant,
    refs: &[Ref],
) -> Result<()> {
    for reference in refs {
        let found = store::exists(
            transaction,
            reference.kind,
            tenant.id(),
            tenant.clients(),
            reference.id,
        )
        .await?;
        if !found {
            return Err(reference.missing("does not exist").into());
        }
        if reference.kind == Kind::Flow
            && flows::latest_version(transaction, tenant.id(), reference.id)
                .await?
                .is_none()
        {
            return Err(reference.missing("has no published version").into());
        }
    }
    Ok(())
}

fn name_conflict(kind: Kind, name: &str) -> ConfigError {
    if kind == Kind::Number {
        ConfigError::conflict(
            "number_taken",
            format!("the number {name} is configured in this tenant already"),
        )
    } else {
        ConfigError::conflict(
            "name_taken",
            format!("a {} named {name:?} exists already", kind.noun()),
        )
    }
}

/// A unique violation at insert: for numbers, a number another tenant
/// holds (not said which).
fn name_conflict_global(kind: Kind, name: &str) -> ConfigError {
    if kind == Kind::Number {
        ConfigError::conflict(
            "number_unavailable",
            format!("the number {name} is not available"),
        )
    } else {
        name_conflict(kind, name)
    }
}
