//! Routing's own copy of what it needs of identity, fed by identity's
//! events (ARCHITECTURE.md: a service reads and writes only its own
//! tables; tables in `migrations/src/routing/m20261210_000010_identity_projection.rs`):
//! each tenant's time zone (where its queues' days start), its client
//! organizations, and its users' client scopes (the queues an agent may
//! serve).
//!
//! [`IdentityProjection`] is the handler of the [`PROJECTION_CONSUMER_NAME`]
//! consumer. Every row carries the version it was written at — the time of
//! its event, in microseconds — and an event no newer than the row is
//! ignored, so a redelivered, replayed or late event never undoes a newer
//! one. Deleted users and clients stay as tombstones for the same reason.
//! After a commit, a change the running ACD must know of reaches it
//! through the configuration's [`ConfigObserver`](super::ConfigObserver),
//! as a configuration write does: a user's new client scope (the agent
//! profile again), a deleted user's profile (removed, as its agent), a
//! deleted client (every profile again), a new time zone (every queue).
//!
//! Writes that name a user or a client check them with identity itself
//! ([`IdentityDirectory`](super::IdentityDirectory)), never against this
//! copy, which may lag; an agent profile's write also seeds its user's
//! scope here (at version 0, which any event overrides) when identity's
//! event has not arrived yet. A user this copy does not know serves no
//! queue.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr};
use switchboard_events::proto::{self, envelope::Payload};
use switchboard_events::{Event, EventHandler, HandlerError};
use switchboard_tenancy::{AgentId, ClientScope, TenantId};
use uuid::Uuid;

use super::RoutingConfig;
use super::domain::Kind;
use super::error::{ConfigError, Result};
use super::items::EngineChange;
use super::store::{self, col};

pub(crate) const TENANTS: &str = "routing_directory_tenants";
pub(crate) const CLIENTS: &str = "routing_directory_clients";
pub(crate) const USERS: &str = "routing_directory_users";

/// The name of routing's consumer of identity's events (its queue).
pub const PROJECTION_CONSUMER_NAME: &str = "routing-directory";

/// What that consumer is bound to: identity's tenant, client and user
/// events of every tenant.
pub const PROJECTION_BINDINGS: &[&str] = &[
    "*.identity.tenant.*",
    "*.identity.client.*",
    "*.identity.user.*",
];

/// What the ACD is told once an applied event committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// The user's agent profile, with its new client scope.
    Agent(Uuid),
    /// The user's agent profile went with the user.
    AgentRemoved(Uuid),
    /// Every agent profile of the tenant (a client is gone).
    Agents,
    /// Every queue of the tenant (its time zone changed).
    Queues,
}

/// The handler of the [`PROJECTION_CONSUMER_NAME`] consumer (see the
/// module documentation).
pub struct IdentityProjection {
    config: RoutingConfig,
    /// Changes of events applied in a transaction not committed yet.
    pending: Mutex<HashMap<Uuid, (TenantId, Vec<Change>)>>,
}

/// Changes held for transactions that never committed (their events are
/// retried and hold new ones) are dropped past this many.
const MAX_PENDING: usize = 100_000;

impl RoutingConfig {
    /// The handler to run in the [`PROJECTION_CONSUMER_NAME`] consumer; it
    /// tells this configuration's observer what the ACD must know.
    pub fn identity_projection(&self) -> Arc<dyn EventHandler> {
        Arc::new(IdentityProjection {
            config: self.clone(),
            pending: Mutex::new(HashMap::new()),
        })
    }

    async fn tell(&self, tenant: TenantId, change: Change) -> Result<()> {
        match change {
            Change::Agent(user) => {
                if let Some(profile) = self.agent_profile(tenant, user).await? {
                    let agent = AgentId::from_uuid(user);
                    self.notify(tenant, Some(EngineChange::AgentSaved(agent, profile)))
                        .await;
                }
            }
            Change::AgentRemoved(user) => {
                let agent = AgentId::from_uuid(user);
                self.notify(tenant, Some(EngineChange::AgentDeleted(agent)))
                    .await;
            }
            Change::Agents => {
                for profile in self.agent_profiles(tenant).await? {
                    let agent = profile.id;
                    self.notify(tenant, Some(EngineChange::AgentSaved(agent, profile)))
                        .await;
                }
            }
            Change::Queues => {
                for queue in self.queue_configs(tenant).await? {
                    self.notify(tenant, Some(EngineChange::QueueSaved(queue)))
                        .await;
                }
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl EventHandler for IdentityProjection {
    async fn handle(
        &self,
        transaction: &DatabaseTransaction,
        event: &Event,
    ) -> std::result::Result<(), HandlerError> {
        let changes = apply(transaction, event).await.map_err(handler_error)?;
        if !changes.is_empty() && self.config.observer.is_some() {
            let mut pending = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if pending.len() >= MAX_PENDING {
                pending.clear();
            }
            pending.insert(event.id, (event.tenant, changes));
        }
        Ok(())
    }

    async fn committed(&self, events: &[Event]) {
        let mut changes = Vec::new();
        {
            let mut pending = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for event in events {
                if let Some(held) = pending.remove(&event.id) {
                    changes.push(held);
                }
            }
        }
        for (tenant, list) in changes {
            let mut told = Vec::new();
            for change in list {
                // A batch may repeat a change; once is enough.
                if told.contains(&change) {
                    continue;
                }
                told.push(change.clone());
                if let Err(error) = self.config.tell(tenant, change).await {
                    tracing::warn!(tenant_id = %tenant, %error, "an identity change was not told to the ACD; it applies when the tenant's state is next loaded");
                }
            }
        }
    }
}

fn handler_error(error: ConfigError) -> HandlerError {
    match error {
        ConfigError::Unavailable(detail) => HandlerError::unavailable(detail),
        other => HandlerError::new(other),
    }
}

fn parse_id(field: &str, text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|_| {
        ConfigError::Internal(format!("identity event: {field} {text:?} is not a UUID"))
    })
}

/// An event's version: its time in microseconds.
fn version_of(event: &Event) -> i64 {
    event.occurred_at.timestamp_micros()
}

/// Applies one of identity's events inside `transaction` (confined to its
/// tenant); answers what the ACD must be told after commit.
pub(crate) async fn apply(transaction: &DatabaseTransaction, event: &Event) -> Result<Vec<Change>> {
    let tenant = event.tenant;
    let version = version_of(event);
    let mut changes = Vec::new();
    match &event.payload {
        Payload::TenantCreated(proto::TenantCreated { time_zone, .. })
        | Payload::TenantUpdated(proto::TenantUpdated { time_zone, .. }) => {
            let applied = put_tenant(transaction, tenant, time_zone, version).await?;
            if applied {
                changes.push(Change::Queues);
            }
        }
        Payload::ClientCreated(created) => {
            let id = parse_id("client_id", &created.client_id)?;
            put(
                transaction,
                CLIENTS,
                ("id", id),
                tenant,
                vec![("deleted", false.into())],
                version,
            )
            .await?;
        }
        Payload::ClientDeleted(deleted) => {
            let id = parse_id("client_id", &deleted.client_id)?;
            if put(
                transaction,
                CLIENTS,
                ("id", id),
                tenant,
                vec![("deleted", true.into())],
                version,
            )
            .await?
            {
                drop_client_from_users(transaction, tenant, id, version).await?;
                changes.push(Change::Agents);
            }
        }
        Payload::UserCreated(proto::UserCreated { user })
        | Payload::UserUpdated(proto::UserUpdated { user }) => {
            let Some(user) = user else {
                return Err(ConfigError::Internal("identity event: no user".into()));
            };
            let id = parse_id("user_id", &user.user_id)?;
            let client_ids = if user.all_clients {
                String::new()
            } else {
                let mut clients = BTreeSet::new();
                for client in &user.client_ids {
                    clients.insert(parse_id("client_ids", client)?);
                }
                let gone = deleted_clients(transaction, tenant, &clients).await?;
                join(clients.difference(&gone))
            };
            let applied = put(
                transaction,
                USERS,
                ("id", id),
                tenant,
                vec![
                    ("roles", user.roles.join(",").into()),
                    ("status", user.status.clone().into()),
                    ("all_clients", user.all_clients.into()),
                    ("client_ids", client_ids.into()),
                    ("deleted", false.into()),
                ],
                version,
            )
            .await?;
            if applied
                && store::exists(
                    transaction,
                    Kind::AgentProfile,
                    tenant,
                    &ClientScope::All,
                    id,
                )
                .await?
            {
                changes.push(Change::Agent(id));
            }
        }
        Payload::UserDeleted(deleted) => {
            let id = parse_id("user_id", &deleted.user_id)?;
            // Serialises with configuration writes: a profile written for
            // this user either committed before (and goes now) or sees the
            // tombstone (and is refused).
            store::bump_revision(transaction, tenant).await?;
            let applied = put(
                transaction,
                USERS,
                ("id", id),
                tenant,
                vec![
                    ("roles", String::new().into()),
                    ("status", "deleted".into()),
                    ("all_clients", false.into()),
                    ("client_ids", String::new().into()),
                    ("deleted", true.into()),
                ],
                version,
            )
            .await?;
            if applied
                && store::exists(
                    transaction,
                    Kind::AgentProfile,
                    tenant,
                    &ClientScope::All,
                    id,
                )
                .await?
            {
                store::clear_references(transaction, tenant, id).await?;
                store::delete(transaction, Kind::AgentProfile, tenant, id).await?;
                changes.push(Change::AgentRemoved(id));
            } else if applied && transaction.get_database_backend() == DbBackend::Sqlite {
                // SQLite keeps the foreign key to identity's users, which
                // took the profile with the user: the ACD may still hold
                // the agent.
                changes.push(Change::AgentRemoved(id));
            }
        }
        _ => {}
    }
    Ok(changes)
}

fn join<'a>(ids: impl Iterator<Item = &'a Uuid>) -> String {
    ids.map(ToString::to_string).collect::<Vec<_>>().join(",")
}

fn split(text: &str) -> Vec<Uuid> {
    text.split(',')
        .filter_map(|id| Uuid::parse_str(id).ok())
        .collect()
}

/// Writes row `key` of `table` at `version`, unless one at this version or
/// later is stored; answers whether it wrote.
async fn put(
    transaction: &DatabaseTransaction,
    table: &str,
    (key, id): (&str, Uuid),
    tenant: TenantId,
    values: Vec<(&str, sea_orm::Value)>,
    version: i64,
) -> Result<bool, DbErr> {
    let mut columns = vec![col(key), col("version")];
    let mut row: Vec<sea_orm::Value> = vec![id.into(), version.into()];
    if key != "tenant_id" {
        columns.push(col("tenant_id"));
        row.push(tenant.as_uuid().into());
    }
    for (column, value) in &values {
        columns.push(col(column));
        row.push(value.clone());
    }
    let insert = Query::insert()
        .into_table(col(table))
        .columns(columns)
        .values_panic(row.into_iter().map(Into::into))
        .on_conflict(OnConflict::column(col(key)).do_nothing().to_owned())
        .to_owned();
    if transaction.execute(&insert).await?.rows_affected() > 0 {
        return Ok(true);
    }
    let mut update = Query::update()
        .table(col(table))
        .value(col("version"), version)
        .and_where(Expr::col(col(key)).eq(id))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
        .and_where(Expr::col(col("version")).lt(version))
        .to_owned();
    for (column, value) in values {
        update.value(col(column), value);
    }
    Ok(transaction.execute(&update).await?.rows_affected() > 0)
}

async fn put_tenant(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    time_zone: &str,
    version: i64,
) -> Result<bool, DbErr> {
    put(
        transaction,
        TENANTS,
        ("tenant_id", tenant.as_uuid()),
        tenant,
        vec![("time_zone", time_zone.into())],
        version,
    )
    .await
}

/// Which of `clients` are known deleted.
async fn deleted_clients(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    clients: &BTreeSet<Uuid>,
) -> Result<BTreeSet<Uuid>> {
    if clients.is_empty() {
        return Ok(BTreeSet::new());
    }
    let query = Query::select()
        .column(col("id"))
        .from(col(CLIENTS))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
        .and_where(Expr::col(col("deleted")).eq(true))
        .and_where(Expr::col(col("id")).is_in(clients.iter().copied()))
        .to_owned();
    transaction
        .query_all(&query)
        .await?
        .iter()
        .map(|row| Ok(row.try_get("", "id")?))
        .collect()
}

/// Identity drops a deleted client from its users' scopes without a
/// `user.updated`: so does this copy, moving each such user to the
/// deletion's version (an older event naming the client stays ignored).
async fn drop_client_from_users(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    client: Uuid,
    version: i64,
) -> Result<()> {
    let query = Query::select()
        .columns([col("id"), col("client_ids"), col("version")])
        .from(col(USERS))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
        .and_where(Expr::col(col("client_ids")).like(format!("%{client}%")))
        .to_owned();
    for row in transaction.query_all(&query).await? {
        let id: Uuid = row.try_get("", "id")?;
        let clients: String = row.try_get("", "client_ids")?;
        let stored: i64 = row.try_get("", "version")?;
        let kept: Vec<Uuid> = split(&clients)
            .into_iter()
            .filter(|id| *id != client)
            .collect();
        let update = Query::update()
            .table(col(USERS))
            .value(col("client_ids"), join(kept.iter()))
            .value(col("version"), Ord::max(stored, version))
            .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
            .and_where(Expr::col(col("id")).eq(id))
            .to_owned();
        transaction.execute(&update).await?;
    }
    Ok(())
}

/// The tenant's IANA time zone, once identity told it.
pub(crate) async fn time_zone(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
) -> Result<Option<String>> {
    let query = Query::select()
        .column(col("time_zone"))
        .from(col(TENANTS))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
        .to_owned();
    Ok(match transaction.query_one(&query).await? {
        Some(row) => Some(row.try_get("", "time_zone")?),
        None => None,
    })
}

/// Each user's client scope, as the ACD takes it: `None` for every client,
/// else its clients. A user this copy does not know (or knows deleted)
/// serves none.
pub(crate) async fn user_clients(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    users: &[Uuid],
) -> Result<BTreeMap<Uuid, Option<Vec<Uuid>>>> {
    let mut scopes: BTreeMap<Uuid, Option<Vec<Uuid>>> =
        users.iter().map(|id| (*id, Some(Vec::new()))).collect();
    if users.is_empty() {
        return Ok(scopes);
    }
    let query = Query::select()
        .columns([col("id"), col("all_clients"), col("client_ids")])
        .from(col(USERS))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
        .and_where(Expr::col(col("deleted")).eq(false))
        .and_where(Expr::col(col("id")).is_in(users.iter().copied()))
        .to_owned();
    for row in transaction.query_all(&query).await? {
        let id: Uuid = row.try_get("", "id")?;
        let all: bool = row.try_get("", "all_clients")?;
        let clients: String = row.try_get("", "client_ids")?;
        scopes.insert(id, (!all).then(|| split(&clients)));
    }
    Ok(scopes)
}

/// Whether `user` may act as an agent by this copy of identity: `Some`
/// (active with the agent role, or not) once identity's events told of
/// the user, `None` while they have not (a user seeded from identity's
/// answer alone).
pub(crate) async fn user_is_active_agent(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    user: Uuid,
) -> Result<Option<bool>> {
    let query = Query::select()
        .columns([col("roles"), col("status"), col("deleted")])
        .from(col(USERS))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
        .and_where(Expr::col(col("id")).eq(user))
        .and_where(Expr::col(col("version")).gt(0i64))
        .to_owned();
    let Some(row) = transaction.query_one(&query).await? else {
        return Ok(None);
    };
    let roles: String = row.try_get("", "roles")?;
    let status: String = row.try_get("", "status")?;
    let deleted: bool = row.try_get("", "deleted")?;
    Ok(Some(
        !deleted && status == "active" && roles.split(',').any(|role| role == "agent"),
    ))
}

/// Whether identity told that user `user` is deleted.
pub(crate) async fn user_deleted(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    user: Uuid,
) -> Result<bool> {
    let query = Query::select()
        .column(col("id"))
        .from(col(USERS))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
        .and_where(Expr::col(col("id")).eq(user))
        .and_where(Expr::col(col("deleted")).eq(true))
        .to_owned();
    Ok(transaction.query_one(&query).await?.is_some())
}

/// Records the scope identity answered for `user` at version 0, unless
/// this copy knows the user already: identity's event then overrides it.
pub(crate) async fn seed_user(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    user: Uuid,
    scope: &ClientScope,
) -> Result<()> {
    let clients = scope
        .as_list()
        .map(|list| {
            let ids: BTreeSet<Uuid> = list.iter().map(|client| client.as_uuid()).collect();
            join(ids.iter())
        })
        .unwrap_or_default();
    let insert = Query::insert()
        .into_table(col(USERS))
        .columns([
            col("id"),
            col("tenant_id"),
            col("roles"),
            col("status"),
            col("all_clients"),
            col("client_ids"),
            col("deleted"),
            col("version"),
        ])
        .values_panic([
            user.into(),
            tenant.as_uuid().into(),
            String::new().into(),
            String::new().into(),
            (*scope == ClientScope::All).into(),
            clients.into(),
            false.into(),
            0i64.into(),
        ])
        .on_conflict(OnConflict::column(col("id")).do_nothing().to_owned())
        .to_owned();
    transaction.execute(&insert).await?;
    Ok(())
}
