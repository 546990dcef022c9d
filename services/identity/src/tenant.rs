//! The caller's own tenant: read it, rename it, change its time zone or
//! plan (never below the seats in use).

use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel};
use switchboard_tenancy::TenantId;

use crate::audit::{self, AuditRecord};
use crate::domain::{self, FieldError, Permission, TenantStatus};
use crate::error::{IdentityError, Result};
use crate::seats;
use crate::sessions::load_tenant;
use crate::store::entities::{plan, tenant};
use crate::views::TenantView;
use crate::{Identity, Principal, RequestOrigin, now};

/// Changes to the tenant; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TenantPatch {
    pub name: Option<String>,
    pub time_zone: Option<String>,
    pub plan: Option<String>,
}

impl Identity {
    pub async fn get_tenant(&self, principal: &Principal) -> Result<TenantView> {
        principal.require(Permission::ReadTenant)?;
        self.load_tenant_view(principal.tenant.id()).await
    }

    pub async fn update_tenant(
        &self,
        principal: &Principal,
        patch: TenantPatch,
        origin: &RequestOrigin,
    ) -> Result<TenantView> {
        principal.require(Permission::ManageTenant)?;
        if patch.plan.is_some() {
            principal.require(Permission::ManageBilling)?;
        }
        let mut errors: Vec<FieldError> = Vec::new();
        let name = patch
            .name
            .as_deref()
            .map(|name| domain::validate_name("name", name, 100))
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        let time_zone = patch
            .time_zone
            .as_deref()
            .map(|zone| domain::validate_time_zone("time_zone", zone))
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        if !errors.is_empty() {
            return Err(IdentityError::Validation(errors));
        }
        let tenant_id = principal.tenant.id();
        let transaction = self.store().begin(tenant_id).await?;
        seats::lock_tenant(&transaction, tenant_id).await?;
        let row = load_tenant(&transaction, tenant_id).await?;
        if let Some(code) = &patch.plan {
            let Some(new_plan) = plan::Entity::find_by_id(code.clone())
                .one(&transaction)
                .await?
            else {
                return Err(IdentityError::field(
                    "plan",
                    format!("unknown plan {code:?}"),
                ));
            };
            let used = seats::count(&transaction, tenant_id).await?;
            if i64::from(used) > i64::from(new_plan.seat_limit) {
                return Err(IdentityError::conflict(
                    "seat_limit_reached",
                    format!(
                        "{used} seats are in use and plan {code} allows {}; free seats first",
                        new_plan.seat_limit
                    ),
                ));
            }
        }
        let mut active = row.into_active_model();
        if let Some(name) = &name {
            active.name = Set(name.clone());
        }
        if let Some(zone) = &time_zone {
            active.time_zone = Set(zone.clone());
        }
        if let Some(code) = &patch.plan {
            active.plan_code = Set(code.clone());
        }
        active.updated_at = Set(now());
        active.update(&transaction).await?;
        audit::record(
            &transaction,
            tenant_id,
            origin,
            AuditRecord::by(
                principal,
                "tenant.updated",
                ("tenant", Some(tenant_id.as_uuid())),
            )
            .details(
                serde_json::json!({ "name": name, "time_zone": time_zone, "plan": patch.plan }),
            ),
        )
        .await?;
        transaction.commit().await?;
        self.credentials().forget_tenant(tenant_id).await;
        self.load_tenant_view(tenant_id).await
    }

    pub(crate) async fn load_tenant_view(&self, tenant_id: TenantId) -> Result<TenantView> {
        let transaction = self.store().begin(tenant_id).await?;
        let row: tenant::Model = load_tenant(&transaction, tenant_id).await?;
        let seat_limit = seats::limit(&transaction, tenant_id).await?;
        let seats_used = seats::count(&transaction, tenant_id).await?;
        transaction.commit().await?;
        Ok(TenantView {
            id: tenant_id,
            name: row.name,
            slug: row.slug,
            time_zone: row.time_zone,
            status: row
                .status
                .parse::<TenantStatus>()
                .map_err(IdentityError::Internal)?,
            plan: row.plan_code,
            seat_limit,
            seats_used,
            email_verified: row.email_verified_at.is_some(),
            created_at: row.created_at,
        })
    }
}
