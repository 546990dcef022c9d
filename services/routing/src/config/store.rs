//! Storage of the routing configuration: one table per kind, all of the
//! same shape (`id`, `tenant_id`, `name`, `client_id`, `definition`,
//! timestamps; see `migrations/src/m20261204_000005_create_routing.rs`),
//! read and written with sea-query through sea-orm's connection, plus the
//! references table and the per-tenant revision.
//!
//! Transactions are confined to one tenant ([`Store::read`],
//! [`Store::write`]): on PostgreSQL row-level security then limits every
//! statement to that tenant; queries filter by tenant anyway, which is what
//! isolates tenants on SQLite. A write transaction's first statement bumps
//! the tenant's revision, which serialises a tenant's configuration writes
//! (so "is the name free", "does the queue exist" and "is it in use" hold
//! until commit) and, on SQLite, takes the write lock before any read.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Asterisk, Expr, ExprTrait, OnConflict, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseTransaction, QueryResult};
use switchboard_platform::Database;
use switchboard_tenancy::{ClientScope, TenantId};
use uuid::Uuid;

use super::domain::{Kind, Ref};
use super::error::{ConfigError, Result};

pub(crate) const REVISIONS: &str = "routing_config_revisions";
pub(crate) const REFERENCES: &str = "routing_references";
pub(crate) const FLOW_VERSIONS: &str = "routing_flow_versions";

/// Now, to the microsecond: what PostgreSQL keeps, so an answer equals
/// what is read back later.
pub(crate) fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

pub(crate) fn col(name: &str) -> Alias {
    Alias::new(name)
}

/// One stored item of any kind.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub id: Uuid,
    pub name: String,
    pub client_id: Option<Uuid>,
    pub definition: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Inbound rules only.
    pub forced: Option<String>,
}

impl Row {
    fn from_result(row: &QueryResult, kind: Kind) -> Result<Row> {
        Ok(Row {
            id: row.try_get("", "id")?,
            name: row.try_get("", "name")?,
            client_id: row.try_get("", "client_id")?,
            definition: row.try_get("", "definition")?,
            created_at: row.try_get("", "created_at")?,
            updated_at: row.try_get("", "updated_at")?,
            forced: if kind == Kind::InboundRule {
                row.try_get("", "forced")?
            } else {
                None
            },
        })
    }
}

#[derive(Clone)]
pub(crate) struct Store {
    db: Database,
}

impl Store {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// A transaction confined to `tenant`, for reads.
    pub async fn read(&self, tenant: TenantId) -> Result<DatabaseTransaction> {
        Ok(self.db.begin_tenant(tenant.as_uuid()).await?)
    }

    /// A transaction confined to `tenant` that has bumped the tenant's
    /// configuration revision (its first statement, a write).
    pub async fn write(&self, tenant: TenantId) -> Result<DatabaseTransaction> {
        let transaction = self.db.begin_tenant(tenant.as_uuid()).await?;
        bump_revision(&transaction, tenant).await?;
        Ok(transaction)
    }

    /// A transaction in system scope, on the database's system pool (whose
    /// role sees every tenant's numbers, and no other routing table).
    pub async fn system(&self) -> Result<DatabaseTransaction> {
        Ok(self.db.begin_system().await?)
    }
}

/// Bumps the tenant's configuration revision, which holds the tenant's
/// other configuration writes until `transaction` ends.
pub(crate) async fn bump_revision(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
) -> Result<()> {
    let insert = Query::insert()
        .into_table(col(REVISIONS))
        .columns([col("tenant_id"), col("revision"), col("updated_at")])
        .values_panic([tenant.as_uuid().into(), 1i64.into(), now().into()])
        .on_conflict(
            OnConflict::column(col("tenant_id"))
                .value(
                    col("revision"),
                    Expr::col((col(REVISIONS), col("revision"))).add(1),
                )
                .update_column(col("updated_at"))
                .to_owned(),
        )
        .to_owned();
    transaction.execute(&insert).await?;
    Ok(())
}

/// The tenant's configuration revision (0 before any write).
pub(crate) async fn revision(transaction: &DatabaseTransaction, tenant: TenantId) -> Result<i64> {
    let query = Query::select()
        .column(col("revision"))
        .from(col(REVISIONS))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
        .to_owned();
    Ok(match transaction.query_one(&query).await? {
        Some(row) => row.try_get("", "revision")?,
        None => 0,
    })
}

fn select(kind: Kind, tenant: TenantId) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(Asterisk)
        .from(col(kind.table()))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
        .to_owned()
}

/// Limits a query to the items `scope` sees (client-scoped kinds).
fn scoped(query: &mut sea_orm::sea_query::SelectStatement, kind: Kind, scope: &ClientScope) {
    if let (true, Some(clients)) = (kind.client_scoped(), scope.as_list()) {
        let ids: Vec<Uuid> = clients.iter().map(|client| client.as_uuid()).collect();
        query.and_where(Expr::col(col("client_id")).is_in(ids));
    }
}

/// The item `id` of `kind` in the tenant, if `scope` sees it.
pub(crate) async fn find(
    transaction: &DatabaseTransaction,
    kind: Kind,
    tenant: TenantId,
    scope: &ClientScope,
    id: Uuid,
) -> Result<Option<Row>> {
    let mut query = select(kind, tenant);
    query.and_where(Expr::col(col("id")).eq(id));
    scoped(&mut query, kind, scope);
    match transaction.query_one(&query).await? {
        Some(row) => Ok(Some(Row::from_result(&row, kind)?)),
        None => Ok(None),
    }
}

/// Like [`find`], or not found.
pub(crate) async fn get(
    transaction: &DatabaseTransaction,
    kind: Kind,
    tenant: TenantId,
    scope: &ClientScope,
    id: Uuid,
) -> Result<Row> {
    find(transaction, kind, tenant, scope, id)
        .await?
        .ok_or(ConfigError::NotFound(kind.noun()))
}

/// Items in id order after `after`, at most `limit` (all with `None`).
pub(crate) async fn list(
    transaction: &DatabaseTransaction,
    kind: Kind,
    tenant: TenantId,
    scope: &ClientScope,
    after: Option<Uuid>,
    limit: Option<u64>,
) -> Result<Vec<Row>> {
    let mut query = select(kind, tenant);
    scoped(&mut query, kind, scope);
    if let Some(after) = after {
        query.and_where(Expr::col(col("id")).gt(after));
    }
    query.order_by(col("id"), Order::Asc);
    if let Some(limit) = limit {
        query.limit(limit);
    }
    transaction
        .query_all(&query)
        .await?
        .iter()
        .map(|row| Row::from_result(row, kind))
        .collect()
}

/// The id of the tenant's item of `kind` named `name`, other than
/// `except`.
pub(crate) async fn named(
    transaction: &DatabaseTransaction,
    kind: Kind,
    tenant: TenantId,
    name: &str,
    except: Option<Uuid>,
) -> Result<Option<Uuid>> {
    let mut query = Query::select()
        .column(col("id"))
        .from(col(kind.table()))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
        .and_where(Expr::col(col("name")).eq(name))
        .to_owned();
    if let Some(except) = except {
        query.and_where(Expr::col(col("id")).ne(except));
    }
    Ok(match transaction.query_one(&query).await? {
        Some(row) => Some(row.try_get("", "id")?),
        None => None,
    })
}

pub(crate) async fn insert(
    transaction: &DatabaseTransaction,
    kind: Kind,
    tenant: TenantId,
    row: &Row,
) -> Result<(), sea_orm::DbErr> {
    let insert = Query::insert()
        .into_table(col(kind.table()))
        .columns([
            col("id"),
            col("tenant_id"),
            col("name"),
            col("client_id"),
            col("definition"),
            col("created_at"),
            col("updated_at"),
        ])
        .values_panic([
            row.id.into(),
            tenant.as_uuid().into(),
            row.name.clone().into(),
            row.client_id.into(),
            row.definition.clone().into(),
            row.created_at.into(),
            row.updated_at.into(),
        ])
        .to_owned();
    transaction.execute(&insert).await?;
    Ok(())
}

pub(crate) async fn update(
    transaction: &DatabaseTransaction,
    kind: Kind,
    tenant: TenantId,
    row: &Row,
) -> Result<(), sea_orm::DbErr> {
    let update = Query::update()
        .table(col(kind.table()))
        .value(col("name"), row.name.clone())
        .value(col("client_id"), row.client_id)
        .value(col("definition"), row.definition.clone())
        .value(col("updated_at"), row.updated_at)
        .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
        .and_where(Expr::col(col("id")).eq(row.id))
        .to_owned();
    transaction.execute(&update).await?;
    Ok(())
}

pub(crate) async fn set_forced(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    rule: Uuid,
    forced: Option<String>,
    at: DateTime<Utc>,
) -> Result<()> {
    let update = Query::update()
        .table(col(Kind::InboundRule.table()))
        .value(col("forced"), forced)
        .value(col("updated_at"), at)
        .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
        .and_where(Expr::col(col("id")).eq(rule))
        .to_owned();
    transaction.execute(&update).await?;
    Ok(())
}

pub(crate) async fn delete(
    transaction: &DatabaseTransaction,
    kind: Kind,
    tenant: TenantId,
    id: Uuid,
) -> Result<()> {
    let delete = Query::delete()
        .from_table(col(kind.table()))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
        .and_where(Expr::col(col("id")).eq(id))
        .to_owned();
    transaction.execute(&delete).await?;
    Ok(())
}

/// Whether the tenant has item `id` of `kind` that `scope` sees.
pub(crate) async fn exists(
    transaction: &DatabaseTransaction,
    kind: Kind,
    tenant: TenantId,
    scope: &ClientScope,
    id: Uuid,
) -> Result<bool> {
    let mut query = Query::select()
        .column(col("id"))
        .from(col(kind.table()))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
        .and_where(Expr::col(col("id")).eq(id))
        .to_owned();
    scoped(&mut query, kind, scope);
    Ok(transaction.query_one(&query).await?.is_some())
}

/// Replaces what item `from` of `kind` refers to.
pub(crate) async fn set_references(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    kind: Kind,
    from: Uuid,
    refs: &[Ref],
) -> Result<()> {
    clear_references(transaction, tenant, from).await?;
    let mut seen = std::collections::BTreeSet::new();
    for reference in refs {
        let field = reference.stored_field();
        if !seen.insert((reference.id, field.clone())) {
            continue;
        }
        let insert = Query::insert()
            .into_table(col(REFERENCES))
            .columns([
                col("tenant_id"),
                col("from_kind"),
                col("from_id"),
                col("to_kind"),
                col("to_id"),
                col("field"),
            ])
            .values_panic([
                tenant.as_uuid().into(),
                kind.as_str().into(),
                from.into(),
                reference.kind.as_str().into(),
                reference.id.into(),
                field.into(),
            ])
            .to_owned();
        transaction.execute(&insert).await?;
    }
    Ok(())
}

pub(crate) async fn clear_references(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    from: Uuid,
) -> Result<()> {
    let delete = Query::delete()
        .from_table(col(REFERENCES))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
        .and_where(Expr::col(col("from_id")).eq(from))
        .to_owned();
    transaction.execute(&delete).await?;
    Ok(())
}

/// The items that refer to item `id` of `kind`: their kinds and ids.
pub(crate) async fn referrers(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    kind: Kind,
    id: Uuid,
) -> Result<Vec<(String, Uuid)>> {
    let query = Query::select()
        .distinct()
        .columns([col("from_kind"), col("from_id")])
        .from(col(REFERENCES))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
        .and_where(Expr::col(col("to_kind")).eq(kind.as_str()))
        .and_where(Expr::col(col("to_id")).eq(id))
        .to_owned();
    transaction
        .query_all(&query)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("", "from_kind")?, row.try_get("", "from_id")?)))
        .collect()
}

/// `conflict` for a unique-constraint violation, else the error.
pub(crate) fn unique_or(error: sea_orm::DbErr, conflict: ConfigError) -> ConfigError {
    if matches!(
        error.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    ) {
        conflict
    } else {
        error.into()
    }
}
