//! IVR flows: the draft (a configured item of kind flow, validated at
//! every save) and its published versions, immutable rows numbered 1, 2, …
//! per flow. A call runs the version it started on; new calls start on
//! the latest.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait, Func, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseTransaction, QueryResult};
use switchboard_tenancy::{Tenant, TenantId};
use uuid::Uuid;

use super::domain::{FlowSpec, Kind, Ref, flow_references};
use super::error::{ConfigError, Result};
use super::items::{check_references, item, parse};
use super::store::{self, FLOW_VERSIONS, col};
use super::views::{FlowVersionView, FlowView, Item};
use super::{ChangedBy, RoutingConfig};

impl RoutingConfig {
    /// Saves a new flow's draft (validated; what it refers to must exist).
    pub async fn create_flow(&self, tenant: &Tenant, spec: FlowSpec) -> Result<FlowView> {
        let item = self.create(tenant, spec).await?;
        self.flow_view(tenant.id(), item).await
    }

    /// Replaces a flow's draft; its published versions do not change.
    pub async fn replace_flow(
        &self,
        tenant: &Tenant,
        id: Uuid,
        spec: FlowSpec,
    ) -> Result<FlowView> {
        let item = self.replace(tenant, id, spec).await?;
        self.flow_view(tenant.id(), item).await
    }

    pub async fn flow(&self, tenant: &Tenant, id: Uuid) -> Result<FlowView> {
        let item = self.get::<FlowSpec>(tenant, id).await?;
        self.flow_view(tenant.id(), item).await
    }

    pub async fn list_flows(
        &self,
        tenant: &Tenant,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<FlowView>> {
        let items = self.list::<FlowSpec>(tenant, after, limit).await?;
        let ids: Vec<Uuid> = items.iter().map(|item| item.id).collect();
        let latest = self.latest_version_numbers(tenant.id(), &ids).await?;
        items
            .into_iter()
            .map(|item| {
                let latest = latest.get(&item.id).copied();
                view_of(item, latest)
            })
            .collect()
    }

    async fn flow_view(&self, tenant: TenantId, item: Item<FlowSpec>) -> Result<FlowView> {
        let latest = self.latest_version_numbers(tenant, &[item.id]).await?;
        let latest = latest.get(&item.id).copied();
        view_of(item, latest)
    }

    /// The latest published version's number of each of `flows` that has
    /// one, in one query.
    async fn latest_version_numbers(
        &self,
        tenant: TenantId,
        flows: &[Uuid],
    ) -> Result<HashMap<Uuid, i32>> {
        if flows.is_empty() {
            return Ok(HashMap::new());
        }
        let query = Query::select()
            .column(col("flow_id"))
            .expr_as(Func::max(Expr::col(col("version"))), col("latest"))
            .from(col(FLOW_VERSIONS))
            .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
            .and_where(Expr::col(col("flow_id")).is_in(flows.iter().copied()))
            .group_by_col(col("flow_id"))
            .to_owned();
        let transaction = self.store().read(tenant).await?;
        let rows = transaction.query_all(&query).await?;
        transaction.commit().await?;
        rows.iter()
            .map(|row| Ok((row.try_get("", "flow_id")?, row.try_get("", "latest")?)))
            .collect()
    }

    /// Publishes the flow's draft as its next version (checked again: what
    /// it refers to must still exist).
    pub async fn publish_flow(
        &self,
        tenant: &Tenant,
        id: Uuid,
        by: &ChangedBy,
    ) -> Result<FlowVersionView> {
        let tenant_id = tenant.id();
        let transaction = self.store().write(tenant_id).await?;
        let row = store::get(&transaction, Kind::Flow, tenant_id, tenant.clients(), id).await?;
        let draft: Item<FlowSpec> = item(row)?;
        let flow = draft.spec.flow()?;
        let refs = flow_references(&flow);
        check_references(&transaction, tenant, &refs).await?;
        let version = latest_version(&transaction, tenant_id, id)
            .await?
            .map_or(1, |latest| latest.version + 1);
        let view = FlowVersionView {
            flow_id: id,
            version,
            definition: draft.spec.definition.clone(),
            fingerprint: flow.fingerprint().to_owned(),
            published_at: store::now(),
            published_by_type: Some(by.actor_type.to_owned()),
            published_by: by.actor_id,
        };
        let insert = Query::insert()
            .into_table(col(FLOW_VERSIONS))
            .columns([
                col("id"),
                col("tenant_id"),
                col("flow_id"),
                col("version"),
                col("definition"),
                col("fingerprint"),
                col("published_at"),
                col("published_by_type"),
                col("published_by"),
            ])
            .values_panic([
                Uuid::now_v7().into(),
                tenant_id.as_uuid().into(),
                id.into(),
                version.into(),
                view.definition.to_string().into(),
                view.fingerprint.clone().into(),
                view.published_at.into(),
                view.published_by_type.clone().into(),
                view.published_by.into(),
            ])
            .to_owned();
        transaction.execute(&insert).await?;
        // The draft is what was published: its references are the flow's.
        store::set_references(&transaction, tenant_id, Kind::Flow, id, &refs).await?;
        let details = serde_json::json!({ "version": version, "fingerprint": view.fingerprint });
        self.acting(by.clone())
            .audit(
                &transaction,
                tenant_id,
                Kind::Flow,
                id,
                "published",
                details,
            )
            .await?;
        transaction.commit().await?;
        Ok(view)
    }

    /// A flow's versions, oldest first, after version `after`.
    pub async fn list_flow_versions(
        &self,
        tenant: &Tenant,
        flow: Uuid,
        after: Option<i32>,
        limit: u64,
    ) -> Result<Vec<FlowVersionView>> {
        let transaction = self.store().read(tenant.id()).await?;
        store::get(
            &transaction,
            Kind::Flow,
            tenant.id(),
            tenant.clients(),
            flow,
        )
        .await?;
        let mut query = versions_of(tenant.id(), flow);
        if let Some(after) = after {
            query.and_where(Expr::col(col("version")).gt(after));
        }
        query.order_by(col("version"), Order::Asc).limit(limit);
        let rows = transaction.query_all(&query).await?;
        transaction.commit().await?;
        rows.iter().map(version_view).collect()
    }

    /// One published version of a flow.
    pub async fn flow_version(
        &self,
        tenant: &Tenant,
        flow: Uuid,
        version: i32,
    ) -> Result<FlowVersionView> {
        let transaction = self.store().read(tenant.id()).await?;
        let view = version_of(&transaction, tenant, flow, version).await?;
        transaction.commit().await?;
        Ok(view)
    }

    /// For the runtime: the version new calls of `flow` start on.
    pub async fn published_flow(&self, tenant: TenantId, flow: Uuid) -> Result<FlowVersionView> {
        let transaction = self.store().read(tenant).await?;
        let latest = latest_version(&transaction, tenant, flow).await?;
        transaction.commit().await?;
        latest.ok_or(ConfigError::NotFound("published flow"))
    }

    /// For the runtime: the version a call in progress runs.
    pub async fn published_flow_version(
        &self,
        tenant: TenantId,
        flow: Uuid,
        version: i32,
    ) -> Result<FlowVersionView> {
        self.flow_version(&Tenant::whole(tenant), flow, version)
            .await
    }
}

/// A flow's draft with its fingerprint and latest version number.
fn view_of(item: Item<FlowSpec>, latest_version: Option<i32>) -> Result<FlowView> {
    let fingerprint = item
        .spec
        .flow()
        .map(|flow| flow.fingerprint().to_owned())
        .map_err(|error| ConfigError::Internal(format!("stored flow draft: {error}")))?;
    Ok(FlowView {
        item,
        fingerprint,
        latest_version,
    })
}

fn versions_of(tenant: TenantId, flow: Uuid) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .columns([
            col("flow_id"),
            col("version"),
            col("definition"),
            col("fingerprint"),
            col("published_at"),
            col("published_by_type"),
            col("published_by"),
        ])
        .from(col(FLOW_VERSIONS))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
        .and_where(Expr::col(col("flow_id")).eq(flow))
        .to_owned()
}

fn version_view(row: &QueryResult) -> Result<FlowVersionView> {
    let definition: String = row.try_get("", "definition")?;
    Ok(FlowVersionView {
        flow_id: row.try_get("", "flow_id")?,
        version: row.try_get("", "version")?,
        definition: parse(&definition)?,
        fingerprint: row.try_get("", "fingerprint")?,
        published_at: row.try_get("", "published_at")?,
        published_by_type: row.try_get("", "published_by_type")?,
        published_by: row.try_get("", "published_by")?,
    })
}

/// Published version `version` of `flow`, if `tenant` sees the flow.
pub(crate) async fn version_of(
    transaction: &DatabaseTransaction,
    tenant: &Tenant,
    flow: Uuid,
    version: i32,
) -> Result<FlowVersionView> {
    store::get(transaction, Kind::Flow, tenant.id(), tenant.clients(), flow).await?;
    let mut query = versions_of(tenant.id(), flow);
    query.and_where(Expr::col(col("version")).eq(version));
    let row = transaction
        .query_one(&query)
        .await?
        .ok_or(ConfigError::NotFound("flow version"))?;
    version_view(&row)
}

/// The latest published version of `flow`, if any.
pub(crate) async fn latest_version(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    flow: Uuid,
) -> Result<Option<FlowVersionView>> {
    let max = Query::select()
        .expr_as(Func::max(Expr::col(col("version"))), col("latest"))
        .from(col(FLOW_VERSIONS))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
        .and_where(Expr::col(col("flow_id")).eq(flow))
        .to_owned();
    let latest: Option<i32> = match transaction.query_one(&max).await? {
        Some(row) => row.try_get("", "latest")?,
        None => None,
    };
    let Some(latest) = latest else {
        return Ok(None);
    };
    let mut query = versions_of(tenant, flow);
    query.and_where(Expr::col(col("version")).eq(latest));
    match transaction.query_one(&query).await? {
        Some(row) => Ok(Some(version_view(&row)?)),
        None => Ok(None),
    }
}

/// What the latest published version of `flow` refers to.
pub(crate) async fn latest_references(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    flow: Uuid,
) -> Result<Vec<Ref>> {
    Ok(match latest_version(transaction, tenant, flow).await? {
        Some(version) => flow_references(&version.flow()?),
        None => Vec::new(),
    })
}

pub(crate) async fn delete_versions(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    flow: Uuid,
) -> Result<()> {
    let delete = Query::delete()
        .from_table(col(FLOW_VERSIONS))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
        .and_where(Expr::col(col("flow_id")).eq(flow))
        .to_owned();
    transaction.execute(&delete).await?;
    Ok(())
}
