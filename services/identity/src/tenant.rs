//! The caller's own tenant: read it, rename it, change its time zone or
//! plan (never below the seats in use).

use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel};
use switchboard_events::proto::{self, envelope::Payload};
use switchboard_tenancy::TenantId;

use crate::audit::{self, AuditRecord};
use crate::domain::{self, FieldError, Permission, TenantStatus};
use crate::error::{IdentityError, Result};
use crate::events;
use crate::seats;
use crate::sessions::load_tenant;
use crate::store::entities::{plan, tenant, tenant_slug};
use crate::{Identity, Principal, RequestOrigin, TenantPatch, TenantView, now};

/// The plan a new tenant starts on; the only one a tenant picks itself.
pub const TRIAL_PLAN: &str = "trial";

/// Why a tenant cannot pick a plan other than the trial.
pub(crate) const PLAN_CHOSEN_THROUGH_BILLING: &str = "new tenants start on the `trial` plan; \
     other plans are chosen through billing (until then, an operator sets them)";

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
        // The tenant is the outsourcer's: a client's own staff, admins
        // included, see only their client and change nothing tenant-wide.
        if principal.tenant.clients().as_list().is_some() {
            return Err(IdentityError::forbidden(
                "client_scope",
                "a client-scoped user cannot change the tenant",
            ));
        }
        let mut errors: Vec<FieldError> = Vec::new();
        if patch.plan.is_some() {
            errors.push(FieldError::new("plan", PLAN_CHOSEN_THROUGH_BILLING));
        }
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
        let row = load_tenant(&transaction, tenant_id).await?;
        let mut active = row.into_active_model();
        if let Some(name) = &name {
            active.name = Set(name.clone());
        }
        if let Some(zone) = &time_zone {
            active.time_zone = Set(zone.clone());
        }
        active.updated_at = Set(now());
        let updated = active.update(&transaction).await?;
        events::emit(
            &transaction,
            tenant_id,
            [Payload::TenantUpdated(proto::TenantUpdated {
                tenant_id: tenant_id.to_string(),
                name: updated.name.clone(),
                time_zone: updated.time_zone.clone(),
            })],
        )
        .await?;
        audit::record(
            &transaction,
            tenant_id,
            origin,
            AuditRecord::by(
                principal,
                "tenant.updated",
                ("tenant", Some(tenant_id.as_uuid())),
            )
            .details(serde_json::json!({ "name": name, "time_zone": time_zone })),
        )
        .await?;
        transaction.commit().await?;
        self.credentials().forget_tenant(tenant_id).await;
        self.load_tenant_view(tenant_id).await
    }

    /// Puts the tenant with handle `slug` on plan `code`: for operators
    /// (`switchboard tenants set-plan`), as tenants do not choose plans
    /// themselves until billing does. A plan with fewer seats than are in
    /// use is refused (`seat_limit_reached`). Audited as the system.
    pub async fn set_plan(&self, slug: &str, code: &str) -> Result<TenantView> {
        let slug = slug.trim().to_lowercase();
        let global = self.store().begin_global().await?;
        let directory = tenant_slug::Entity::find_by_id(slug.clone())
            .one(&global)
            .await?
            .ok_or(IdentityError::NotFound("tenant"))?;
        let new_plan = plan::Entity::find_by_id(code.to_owned())
            .one(&global)
            .await?
            .ok_or_else(|| IdentityError::field("plan", format!("unknown plan {code:?}")))?;
        drop(global);
        let tenant_id = TenantId::from_uuid(directory.tenant_id);
        let transaction = self.store().begin(tenant_id).await?;
        seats::lock_tenant(&transaction, tenant_id).await?;
        let row = load_tenant(&transaction, tenant_id).await?;
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
        let previous = row.plan_code.clone();
        let mut active = row.into_active_model();
        active.plan_code = Set(code.to_owned());
        active.updated_at = Set(now());
        active.update(&transaction).await?;
        audit::record(
            &transaction,
            tenant_id,
            &RequestOrigin::default(),
            AuditRecord {
                actor: ("system", None),
                action: "tenant.plan_changed",
                target: ("tenant", Some(tenant_id.as_uuid())),
                clients: &[],
                details: serde_json::json!({ "from": previous, "to": code }),
            },
        )
        .await?;
        events::emit(
            &transaction,
            tenant_id,
            [Payload::TenantPlanChanged(proto::TenantPlanChanged {
                plan_code: code.to_owned(),
                seat_limit: u32::try_from(new_plan.seat_limit).unwrap_or(0),
                call_limits: Some(events::call_limits(&new_plan)),
            })],
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
