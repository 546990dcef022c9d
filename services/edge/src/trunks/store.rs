//! The tenants' trunks on `edge_trunks` (migration 12), in each tenant's
//! own scope: create, list, get, replace and delete, each change written
//! with its `trunk.*` event in one transaction (the outbox), the event
//! without secrets. The inbound password is kept only as its two digest
//! HA1s under the edge's realm (as agents' SIP accounts keep theirs); the
//! outbound password as given, since the edge answers the carrier's
//! challenges with it and learns their realm only then (webhook signing
//! secrets are kept the same way). Neither is ever answered.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query, SimpleExpr};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, QueryResult};
use switchboard_edge_api::{OutboundView, TrunkSpec, TrunkView};
use switchboard_events::proto::{self, envelope::Payload};
use switchboard_events::{Event, outbox};
use switchboard_platform::Database;
use switchboard_rpc::ServiceError;
use switchboard_tenancy::{ClientScope, Tenant, TenantId, TrunkId};
use uuid::Uuid;

use super::spec::{Checked, OutboundTransport, Previous, check};
use crate::sip::digest::Algorithm;

pub(crate) const TRUNKS: &str = "edge_trunks";

/// The source of the edge's events.
const SOURCE: &str = "edge";

type Result<T> = std::result::Result<T, ServiceError>;

pub(crate) fn col(name: &str) -> Alias {
    Alias::new(name)
}

/// Trunks, as their tenants manage them. Cheap to clone.
#[derive(Clone)]
pub struct TrunkStore {
    db: Database,
    /// The realm inbound digest credentials are hashed under.
    realm: String,
    /// Bumped after each committed change, so this process's admission
    /// index reloads at its next use.
    generation: Arc<AtomicU64>,
}

fn database_error(error: DbErr) -> ServiceError {
    tracing::error!(%error, "the edge's database failed");
    ServiceError::unavailable("the edge's database is unavailable; try again")
}

/// Trunks belong to the whole tenant: a context limited to some client
/// organizations is refused.
fn whole(tenant: &Tenant) -> Result<TenantId> {
    if *tenant.clients() != ClientScope::All {
        return Err(ServiceError::forbidden(
            "client_scope",
            "trunks belong to the whole tenant; a credential limited to some client \
             organizations may not manage them",
        ));
    }
    Ok(tenant.id())
}

fn not_found() -> ServiceError {
    ServiceError::not_found("trunk")
}

/// A unique index's violation as the conflict it means, else the error.
fn unique_or_error(error: DbErr) -> ServiceError {
    if !matches!(
        error.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    ) {
        return database_error(error);
    }
    if error.to_string().contains("username") {
        ServiceError::conflict(
            "trunk_username_taken",
            "this inbound username is taken (it must be unique across the platform): choose another",
        )
    } else {
        ServiceError::conflict(
            "trunk_name_taken",
            "the tenant has a trunk of this name already",
        )
    }
}

/// Where and how the edge places a call through a trunk.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboundTarget {
    /// The trunk's name.
    pub trunk: String,
    pub host: String,
    pub port: u16,
    pub transport: OutboundTransport,
    /// Digest credentials for the carrier's challenges, if it sets any.
    pub username: Option<String>,
    pub password: Option<String>,
    /// The caller id used when the call names none.
    pub caller_id: Option<String>,
}

impl std::fmt::Debug for OutboundTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundTarget")
            .field("trunk", &self.trunk)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("transport", &self.transport)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The columns of an [`OutboundTarget`], outbound password included.
const TARGET_COLUMNS: [&str; 7] = [
    "name",
    "outbound_host",
    "outbound_port",
    "outbound_transport",
    "outbound_username",
    "outbound_password",
    "caller_id",
];

/// The outbound target a row of [`TARGET_COLUMNS`] describes; `None` for
/// a transport the edge does not know.
fn target_of(row: &QueryResult) -> std::result::Result<Option<OutboundTarget>, DbErr> {
    let transport: String = row.try_get("", "outbound_transport")?;
    let Some(transport) = OutboundTransport::from_name(&transport) else {
        return Ok(None);
    };
    let port: i32 = row.try_get("", "outbound_port")?;
    Ok(Some(OutboundTarget {
        trunk: row.try_get("", "name")?,
        host: row.try_get("", "outbound_host")?,
        port: u16::try_from(port).unwrap_or(5060),
        transport,
        username: row.try_get("", "outbound_username")?,
        password: row.try_get("", "outbound_password")?,
        caller_id: row.try_get("", "caller_id")?,
    }))
}

/// The outbound settings of `tenant`'s trunk `id` if it is enabled and
/// registers, with the expiry it asks for: read in the tenant's own scope,
/// since they hold the outbound password.
pub(crate) async fn registration_settings(
    db: &Database,
    tenant: TenantId,
    id: TrunkId,
) -> std::result::Result<Option<(OutboundTarget, u32)>, DbErr> {
    let query = Query::select()
        .columns(TARGET_COLUMNS.map(col))
        .column(col("register_expires"))
        .from(col(TRUNKS))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
        .and_where(Expr::col(col("id")).eq(id.as_uuid()))
        .and_where(Expr::col(col("enabled")).eq(true))
        .and_where(Expr::col(col("register")).eq(true))
        .and_where(Expr::col(col("outbound_host")).is_not_null())
        .to_owned();
    let transaction = db.begin_tenant(tenant.as_uuid()).await?;
    let row = transaction.query_one(&query).await?;
    transaction.commit().await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let Some(target) = target_of(&row)? else {
        return Ok(None);
    };
    let expires: i32 = row.try_get("", "register_expires")?;
    Ok(Some((target, u32::try_from(expires).unwrap_or_default())))
}

/// The columns a read answers (never a password or a hash).
const VIEW_COLUMNS: [&str; 16] = [
    "id",
    "name",
    "enabled",
    "inbound_sources",
    "inbound_username",
    "inbound_ha1_sha256",
    "outbound_host",
    "outbound_port",
    "outbound_transport",
    "outbound_username",
    "register",
    "register_expires",
    "caller_id",
    "priority",
    "created_at",
    "updated_at",
];

impl TrunkStore {
    pub(crate) fn new(db: Database, realm: String, generation: Arc<AtomicU64>) -> Self {
        Self {
            db,
            realm,
            generation,
        }
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    async fn begin(&self, tenant: TenantId) -> Result<DatabaseTransaction> {
        self.db
            .begin_tenant(tenant.as_uuid())
            .await
            .map_err(database_error)
    }

    /// Adds a trunk.
    pub async fn create(&self, tenant: &Tenant, spec: TrunkSpec) -> Result<TrunkView> {
        let tenant = whole(tenant)?;
        let checked = check(spec, None).map_err(ServiceError::validation)?;
        let id = TrunkId::new();
        let now = Utc::now();
        let transaction = self.begin(tenant).await?;
        let mut values = self.values(&checked, None);
        values.extend([
            ("id", id.as_uuid().into()),
            ("tenant_id", tenant.as_uuid().into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ]);
        let (columns, values): (Vec<_>, Vec<_>) = values.into_iter().unzip();
        let insert = Query::insert()
            .into_table(col(TRUNKS))
            .columns(columns.into_iter().map(col))
            .values_panic(values)
            .to_owned();
        transaction
            .execute(&insert)
            .await
            .map_err(unique_or_error)?;
        let trunk = read(&transaction, tenant, id)
            .await?
            .ok_or_else(not_found)?;
        let event = Event::new(
            tenant,
            SOURCE,
            Payload::TrunkCreated(proto::TrunkCreated {
                trunk: Some(event_trunk(&trunk)),
            }),
        );
        self.commit(transaction, event).await?;
        Ok(trunk)
    }

    /// At most `limit` trunks, oldest first (ids are time-ordered), after
    /// `after`.
    pub async fn list(
        &self,
        tenant: &Tenant,
        after: Option<TrunkId>,
        limit: u64,
    ) -> Result<Vec<TrunkView>> {
        let tenant = whole(tenant)?;
        let mut query = Query::select()
            .columns(VIEW_COLUMNS.map(col))
            .from(col(TRUNKS))
            .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
            .order_by(col("id"), Order::Asc)
            .limit(limit)
            .to_owned();
        if let Some(after) = after {
            query.and_where(Expr::col(col("id")).gt(after.as_uuid()));
        }
        let rows = self
            .db
            .read_tenant(tenant.as_uuid(), &query)
            .await
            .map_err(database_error)?;
        rows.iter()
            .map(|row| view_of(row).map_err(database_error))
            .collect()
    }

    /// The outbound settings of the tenant's enabled trunks named
    /// `names`, in that order: what the edge dials an outbound call
    /// through, with the outbound password. A name with no such trunk,
    /// disabled or without outbound settings, is left out.
    pub async fn outbound_targets(
        &self,
        tenant: TenantId,
        names: &[String],
    ) -> Result<Vec<OutboundTarget>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let query = Query::select()
            .columns(TARGET_COLUMNS.map(col))
            .from(col(TRUNKS))
            .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
            .and_where(Expr::col(col("enabled")).eq(true))
            .and_where(Expr::col(col("outbound_host")).is_not_null())
            .and_where(Expr::col(col("name")).is_in(names.iter().map(String::as_str)))
            .to_owned();
        // Names are text: bound in a transaction of the tenant, never
        // written inline (`read_tenant` takes ids and numbers only).
        let transaction = self.begin(tenant).await?;
        let rows = transaction
            .query_all(&query)
            .await
            .map_err(database_error)?;
        transaction.commit().await.map_err(database_error)?;
        let mut targets = Vec::new();
        for row in &rows {
            targets.extend(target_of(row).map_err(database_error)?);
        }
        targets.sort_by_key(|target| names.iter().position(|name| *name == target.trunk));
        Ok(targets)
    }

    /// One trunk of the tenant.
    pub async fn get(&self, tenant: &Tenant, id: TrunkId) -> Result<TrunkView> {
        let tenant = whole(tenant)?;
        let transaction = self.begin(tenant).await?;
        let trunk = read(&transaction, tenant, id).await?;
        transaction.commit().await.map_err(database_error)?;
        trunk.ok_or_else(not_found)
    }

    /// Replaces a trunk whole (an absent password stays while its username
    /// does).
    pub async fn replace(
        &self,
        tenant: &Tenant,
        id: TrunkId,
        spec: TrunkSpec,
    ) -> Result<TrunkView> {
        let tenant = whole(tenant)?;
        let transaction = self.begin(tenant).await?;
        let previous = transaction
            .query_one(
                &Query::select()
                    .columns([col("inbound_username"), col("outbound_username")])
                    .from(col(TRUNKS))
                    .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
                    .and_where(Expr::col(col("id")).eq(id.as_uuid()))
                    .to_owned(),
            )
            .await
            .map_err(database_error)?
            .ok_or_else(not_found)?;
        let previous = Previous {
            inbound_username: previous
                .try_get("", "inbound_username")
                .map_err(database_error)?,
            outbound_username: previous
                .try_get("", "outbound_username")
                .map_err(database_error)?,
        };
        let checked = check(spec, Some(&previous)).map_err(ServiceError::validation)?;
        let mut values = self.values(&checked, Some(&previous));
        values.push(("updated_at", Utc::now().into()));
        let update = Query::update()
            .table(col(TRUNKS))
            .values(
                values
                    .into_iter()
                    .map(|(column, value)| (col(column), value)),
            )
            .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
            .and_where(Expr::col(col("id")).eq(id.as_uuid()))
            .to_owned();
        transaction
            .execute(&update)
            .await
            .map_err(unique_or_error)?;
        let trunk = read(&transaction, tenant, id)
            .await?
            .ok_or_else(not_found)?;
        let event = Event::new(
            tenant,
            SOURCE,
            Payload::TrunkUpdated(proto::TrunkUpdated {
                trunk: Some(event_trunk(&trunk)),
            }),
        );
        self.commit(transaction, event).await?;
        Ok(trunk)
    }

    /// Removes a trunk.
    pub async fn delete(&self, tenant: &Tenant, id: TrunkId) -> Result<()> {
        let tenant = whole(tenant)?;
        let transaction = self.begin(tenant).await?;
        let trunk = read(&transaction, tenant, id)
            .await?
            .ok_or_else(not_found)?;
        let delete = Query::delete()
            .from_table(col(TRUNKS))
            .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
            .and_where(Expr::col(col("id")).eq(id.as_uuid()))
            .to_owned();
        transaction.execute(&delete).await.map_err(database_error)?;
        let event = Event::new(
            tenant,
            SOURCE,
            Payload::TrunkDeleted(proto::TrunkDeleted {
                trunk_id: id.to_string(),
                name: trunk.name,
            }),
        );
        self.commit(transaction, event).await
    }

    async fn commit(&self, transaction: DatabaseTransaction, event: Event) -> Result<()> {
        outbox::append(&transaction, &[event])
            .await
            .map_err(|error| {
                tracing::error!(%error, "a trunk's event could not be written");
                ServiceError::unavailable("the edge's database is unavailable; try again")
            })?;
        transaction.commit().await.map_err(database_error)?;
        self.changed();
        Ok(())
    }

    /// The columns `checked` sets. A password left out (`None`) with the
    /// same username as `previous` keeps its stored secret: its columns are
    /// not written.
    fn values(
        &self,
        checked: &Checked,
        previous: Option<&Previous>,
    ) -> Vec<(&'static str, SimpleExpr)> {
        let sources: Vec<String> = checked.sources.iter().map(IpNet::to_string).collect();
        let sources = serde_json::to_string(&sources).expect("strings serialize");
        let mut values: Vec<(&'static str, SimpleExpr)> = vec![
            ("name", checked.name.clone().into()),
            ("enabled", checked.enabled.into()),
            ("inbound_sources", sources.into()),
            ("inbound_username", checked.inbound_username.clone().into()),
            ("priority", checked.priority.into()),
        ];
        let kept_inbound = previous.is_some_and(|previous| {
            checked.inbound_password.is_none()
                && checked.inbound_username.is_some()
                && previous.inbound_username == checked.inbound_username
        });
        if !kept_inbound {
            let hashes = match (&checked.inbound_username, &checked.inbound_password) {
                (Some(username), Some(password)) => Some((
                    Algorithm::Sha256.ha1(username, &self.realm, password),
                    Algorithm::Md5.ha1(username, &self.realm, password),
                )),
                _ => None,
            };
            let (sha256, md5) = hashes.unzip();
            values.push(("inbound_ha1_sha256", sha256.into()));
            values.push(("inbound_ha1_md5", md5.into()));
        }
        let outbound = checked.outbound.as_ref();
        values.extend([
            ("outbound_host", outbound.map(|o| o.host.clone()).into()),
            ("outbound_port", outbound.map(|o| i32::from(o.port)).into()),
            (
                "outbound_transport",
                outbound.map(|o| o.transport.as_str().to_owned()).into(),
            ),
            (
                "outbound_username",
                outbound.and_then(|o| o.username.clone()).into(),
            ),
            ("register", outbound.is_some_and(|o| o.register).into()),
            (
                "register_expires",
                outbound.map_or(0, |o| o.register_expires).into(),
            ),
            (
                "caller_id",
                outbound.and_then(|o| o.caller_id.clone()).into(),
            ),
        ]);
        let kept_outbound = previous.is_some_and(|previous| {
            outbound.is_some_and(|o| {
                o.password.is_none()
                    && o.username.is_some()
                    && previous.outbound_username == o.username
            })
        });
        if !kept_outbound {
            values.push((
                "outbound_password",
                outbound.and_then(|o| o.password.clone()).into(),
            ));
        }
        values
    }
}

/// One trunk of `tenant`, in its transaction.
async fn read(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    id: TrunkId,
) -> Result<Option<TrunkView>> {
    let query = Query::select()
        .columns(VIEW_COLUMNS.map(col))
        .from(col(TRUNKS))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
        .and_where(Expr::col(col("id")).eq(id.as_uuid()))
        .to_owned();
    let row = transaction
        .query_one(&query)
        .await
        .map_err(database_error)?;
    row.as_ref()
        .map(view_of)
        .transpose()
        .map_err(database_error)
}

fn view_of(row: &QueryResult) -> std::result::Result<TrunkView, DbErr> {
    let sources: String = row.try_get("", "inbound_sources")?;
    let allowed_sources: Vec<String> = serde_json::from_str(&sources)
        .map_err(|error| DbErr::Custom(format!("a trunk's sources are not JSON: {error}")))?;
    let host: Option<String> = row.try_get("", "outbound_host")?;
    let outbound = match host {
        None => None,
        Some(host) => {
            let port: i32 = row.try_get("", "outbound_port")?;
            let expires: i32 = row.try_get("", "register_expires")?;
            let username: Option<String> = row.try_get("", "outbound_username")?;
            Some(OutboundView {
                host,
                port: u16::try_from(port)
                    .map_err(|_| DbErr::Custom(format!("a trunk's port is {port}")))?,
                transport: row.try_get("", "outbound_transport")?,
                // Only with a username can a password be set.
                password_set: username.is_some(),
                username,
                register: row.try_get("", "register")?,
                register_expires: u32::try_from(expires).unwrap_or_default(),
                caller_id: row.try_get("", "caller_id")?,
                // Filled by the API from the registrations' state.
                registration: None,
            })
        }
    };
    let inbound_ha1: Option<String> = row.try_get("", "inbound_ha1_sha256")?;
    Ok(TrunkView {
        id: TrunkId::from_uuid(row.try_get::<Uuid>("", "id")?),
        name: row.try_get("", "name")?,
        enabled: row.try_get("", "enabled")?,
        allowed_sources,
        inbound_username: row.try_get("", "inbound_username")?,
        inbound_password_set: inbound_ha1.is_some(),
        outbound,
        priority: row.try_get("", "priority")?,
        created_at: row.try_get::<DateTime<Utc>>("", "created_at")?,
        updated_at: row.try_get::<DateTime<Utc>>("", "updated_at")?,
    })
}

/// A trunk as its events carry it: no password, no hash.
fn event_trunk(trunk: &TrunkView) -> proto::Trunk {
    let outbound = trunk.outbound.as_ref();
    proto::Trunk {
        trunk_id: trunk.id.to_string(),
        name: trunk.name.clone(),
        enabled: trunk.enabled,
        inbound_sources: trunk.allowed_sources.clone(),
        inbound_username: trunk.inbound_username.clone().unwrap_or_default(),
        outbound_host: outbound.map(|o| o.host.clone()).unwrap_or_default(),
        outbound_port: outbound.map_or(0, |o| u32::from(o.port)),
        outbound_transport: outbound.map(|o| o.transport.clone()).unwrap_or_default(),
        outbound_username: outbound
            .and_then(|o| o.username.clone())
            .unwrap_or_default(),
        register: outbound.is_some_and(|o| o.register),
        register_expires: outbound.map_or(0, |o| o.register_expires),
        caller_id: outbound
            .and_then(|o| o.caller_id.clone())
            .unwrap_or_default(),
        priority: trunk.priority,
    }
}
