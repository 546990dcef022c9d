//! Registering, listing, changing and removing a tenant's endpoints, and
//! rotating their secrets.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use switchboard_events::EVENT_TYPES;
use switchboard_tenancy::{Tenant, TenantId};
use switchboard_webhooks_api::{
    EndpointId, EndpointPatch, EndpointView, EndpointWithSecret, NewEndpoint,
};

use crate::domain::{self, DeliveryStatus, EndpointStatus, signature};
use crate::error::{FieldError, Result, WebhooksError};
use crate::store::entities::{delivery, endpoint};
use crate::targets::{TargetPolicy, check_url};
use crate::{Webhooks, now};

impl Webhooks {
    /// Registers an endpoint; its signing secret is in the answer and
    /// never shown again (rotate it to get a new one).
    pub async fn create_endpoint(
        &self,
        tenant: &Tenant,
        new: NewEndpoint,
    ) -> Result<EndpointWithSecret> {
        let tenant = tenant.id();
        let mut errors = Vec::new();
        let event_types = domain::validate_event_types(&new.event_types, EVENT_TYPES)
            .map_err(|e| errors.push(e))
            .ok();
        let description = domain::validate_description(new.description.as_deref().unwrap_or(""))
            .map_err(|e| errors.push(e))
            .ok();
        let url = check_url(&new.url, self.policy())
            .await
            .map_err(|e| errors.push(e))
            .ok();
        let (Some(url), Some(event_types), Some(description)) = (url, event_types, description)
        else {
            return Err(WebhooksError::Validation(errors));
        };
        let secret = signature::generate_secret();
        let at = now();
        let transaction = self.store().begin(tenant).await?;
        let row = endpoint::ActiveModel {
            id: Set(EndpointId::new().as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            url: Set(url),
            description: Set(description),
            event_types: Set(types_to_text(&event_types)),
            secret: Set(secret.clone()),
            key_id: Set(signature::generate_key_id()),
            status: Set(EndpointStatus::Active.as_str().to_owned()),
            disabled_reason: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
        }
        .insert(&transaction)
        .await?;
        // Counted after the insert (which rolls back past the limit): on
        // SQLite a transaction that reads first cannot write once another
        // writer has committed.
        let count = endpoint::Entity::find()
            .filter(endpoint::Column::TenantId.eq(tenant.as_uuid()))
            .count(&transaction)
            .await?;
        if count > domain::MAX_ENDPOINTS_PER_TENANT {
            return Err(WebhooksError::conflict(
                "endpoint_limit_reached",
                format!(
                    "a tenant may register at most {} webhook endpoints",
                    domain::MAX_ENDPOINTS_PER_TENANT
                ),
            ));
        }
        transaction.commit().await?;
        Ok(EndpointWithSecret {
            endpoint: view(row)?,
            secret,
        })
    }

    /// Endpoints in creation order, after `after`, at most `limit`.
    pub async fn list_endpoints(
        &self,
        tenant: &Tenant,
        after: Option<EndpointId>,
        limit: u64,
    ) -> Result<Vec<EndpointView>> {
        let tenant = tenant.id();
        let transaction = self.store().begin(tenant).await?;
        let mut query = endpoint::Entity::find()
            .filter(endpoint::Column::TenantId.eq(tenant.as_uuid()))
            .order_by_asc(endpoint::Column::Id)
            .limit(limit);
        if let Some(after) = after {
            query = query.filter(endpoint::Column::Id.gt(after.as_uuid()));
        }
        let rows = query.all(&transaction).await?;
        transaction.commit().await?;
        rows.into_iter().map(view).collect()
    }

    pub async fn get_endpoint(&self, tenant: &Tenant, id: EndpointId) -> Result<EndpointView> {
        let tenant = tenant.id();
        let transaction = self.store().begin(tenant).await?;
        let row = find(&transaction, tenant, id).await?;
        transaction.commit().await?;
        view(row)
    }

    pub async fn update_endpoint(
        &self,
        tenant: &Tenant,
        id: EndpointId,
        patch: EndpointPatch,
    ) -> Result<EndpointView> {
        let tenant = tenant.id();
        let mut errors = Vec::new();
        let event_types = patch
            .event_types
            .as_deref()
            .map(|types| domain::validate_event_types(types, EVENT_TYPES))
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        let description = patch
            .description
            .as_deref()
            .map(domain::validate_description)
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        let status = patch
            .status
            .as_deref()
            .map(|status| {
                status
                    .parse::<EndpointStatus>()
                    .map_err(|message| FieldError::new("status", message))
            })
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        let url = match &patch.url {
            Some(url) => check_url(url, self.policy())
                .await
                .map_err(|e| errors.push(e))
                .ok(),
            None => None,
        };
        if !errors.is_empty() {
            return Err(WebhooksError::Validation(errors));
        }
        let transaction = self.store().begin(tenant).await?;
        let row = lock(&transaction, tenant, id).await?;
        let was_disabled = row.status == EndpointStatus::Disabled.as_str();
        let at = now();
        let mut active = row.into_active_model();
        if let Some(url) = url {
            active.url = Set(url);
        }
        if let Some(description) = description {
            active.description = Set(description);
        }
        if let Some(event_types) = &event_types {
            active.event_types = Set(types_to_text(event_types));
        }
        match status {
            Some(EndpointStatus::Active) => {
                active.status = Set(EndpointStatus::Active.as_str().to_owned());
                active.disabled_reason = Set(None);
                if was_disabled {
                    restart_pending(&transaction, tenant, id).await?;
                }
            }
            Some(EndpointStatus::Disabled) if !was_disabled => {
                active.status = Set(EndpointStatus::Disabled.as_str().to_owned());
                active.disabled_reason = Set(Some("disabled by the tenant".to_owned()));
            }
            _ => {}
        }
        active.updated_at = Set(at);
        let updated = active.update(&transaction).await?;
        transaction.commit().await?;
        view(updated)
    }

    /// Removes an endpoint with its deliveries and their attempts.
    pub async fn delete_endpoint(&self, tenant: &Tenant, id: EndpointId) -> Result<()> {
        let tenant = tenant.id();
        let transaction = self.store().begin(tenant).await?;
        let deleted = endpoint::Entity::delete_many()
            .filter(endpoint::Column::TenantId.eq(tenant.as_uuid()))
            .filter(endpoint::Column::Id.eq(id.as_uuid()))
            .exec(&transaction)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(WebhooksError::NotFound("webhook endpoint"));
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Replaces an endpoint's secret (and key id) at once; the new secret
    /// is in the answer and never shown again. Attempts from now on are
    /// signed with it.
    pub async fn rotate_secret(
        &self,
        tenant: &Tenant,
        id: EndpointId,
    ) -> Result<EndpointWithSecret> {
        let tenant = tenant.id();
        let transaction = self.store().begin(tenant).await?;
        let row = lock(&transaction, tenant, id).await?;
        let secret = signature::generate_secret();
        let mut active = row.into_active_model();
        active.secret = Set(secret.clone());
        active.key_id = Set(signature::generate_key_id());
        active.updated_at = Set(now());
        let updated = active.update(&transaction).await?;
        transaction.commit().await?;
        Ok(EndpointWithSecret {
            endpoint: view(updated)?,
            secret,
        })
    }

    fn policy(&self) -> TargetPolicy {
        TargetPolicy::of(self.options())
    }
}

/// The tenant's endpoint `id`, or not found.
pub(crate) async fn find(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    id: EndpointId,
) -> Result<endpoint::Model> {
    endpoint::Entity::find_by_id(id.as_uuid())
        .filter(endpoint::Column::TenantId.eq(tenant.as_uuid()))
        .one(transaction)
        .await?
        .ok_or(WebhooksError::NotFound("webhook endpoint"))
}

/// The tenant's endpoint `id`, or not found, taken for writing: the first
/// statement of a transaction that writes is a write (see
/// [`Webhooks::create_endpoint`]).
async fn lock(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    id: EndpointId,
) -> Result<endpoint::Model> {
    endpoint::Entity::update_many()
        .col_expr(endpoint::Column::UpdatedAt, Expr::value(now()))
        .filter(endpoint::Column::TenantId.eq(tenant.as_uuid()))
        .filter(endpoint::Column::Id.eq(id.as_uuid()))
        .exec_with_returning(transaction)
        .await?
        .into_iter()
        .next()
        .ok_or(WebhooksError::NotFound("webhook endpoint"))
}

/// Makes the pending deliveries of a re-enabled endpoint due now, each
/// with a new retry period.
async fn restart_pending(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    id: EndpointId,
) -> Result<()> {
    delivery::Entity::update_many()
        .col_expr(delivery::Column::NextAttemptAt, Expr::value(now()))
        .col_expr(
            delivery::Column::FirstAttemptAt,
            Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
        )
        .filter(delivery::Column::TenantId.eq(tenant.as_uuid()))
        .filter(delivery::Column::EndpointId.eq(id.as_uuid()))
        .filter(delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .exec(transaction)
        .await?;
    Ok(())
}

pub(crate) fn types_to_text(types: &[String]) -> String {
    serde_json::Value::from(types.to_vec()).to_string()
}

pub(crate) fn types_from_text(text: &str) -> Result<Vec<String>> {
    serde_json::from_str(text).map_err(|error| {
        WebhooksError::Internal(format!(
            "stored event types {text:?} are not a JSON list: {error}"
        ))
    })
}

pub(crate) fn view(row: endpoint::Model) -> Result<EndpointView> {
    Ok(EndpointView {
        id: EndpointId::from_uuid(row.id),
        url: row.url,
        description: row.description,
        event_types: types_from_text(&row.event_types)?,
        key_id: row.key_id,
        status: row.status.parse().map_err(WebhooksError::Internal)?,
        disabled_reason: row.disabled_reason,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}
