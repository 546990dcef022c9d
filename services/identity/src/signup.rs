//! Self-service signup: a company creates its tenant and owner account in
//! one transaction, and gets tokens and an email-verification token.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait,
};
use switchboard_auth::secrets::VERIFICATION_TOKEN_PREFIX;
use switchboard_auth::{OpaqueToken, check_password_strength, hash_password_async};
use switchboard_tenancy::{TenantId, UserId};

use switchboard_events::proto::{self, envelope::Payload};

use crate::audit::{self, AuditRecord};
use crate::domain::{self, FieldError, Role, TenantStatus, UserStatus};
use crate::error::{IdentityError, Result};
use crate::events;
use crate::sessions::{UserRights, spend_one_time_token};
use crate::store::entities::{one_time_token, plan, tenant, tenant_slug, user};
use crate::tenant::{PLAN_CHOSEN_THROUGH_BILLING, TRIAL_PLAN};
use crate::{Identity, RequestOrigin, SignupOutcome, SignupRequest, now};

/// Extra slugs tried when a company's slug is taken (`acme-2`, …).
const SLUG_ATTEMPTS: u32 = 20;

impl Identity {
    pub async fn signup(
        &self,
        request: SignupRequest,
        origin: &RequestOrigin,
    ) -> Result<SignupOutcome> {
        let mut errors = Vec::new();
        let company = domain::validate_name("company", &request.company, 100)
            .map_err(|e| errors.push(e))
            .ok();
        let email = domain::normalize_email("email", &request.email)
            .map_err(|e| errors.push(e))
            .ok();
        let time_zone = domain::validate_time_zone("time_zone", &request.time_zone)
            .map_err(|e| errors.push(e))
            .ok();
        let display_name = match &request.display_name {
            Some(name) => domain::validate_display_name("display_name", name)
                .map_err(|e| errors.push(e))
                .ok(),
            None => email
                .as_ref()
                .map(|email| email.split('@').next().unwrap_or_default().to_owned()),
        };
        if let Err(error) =
            check_password_strength(&request.password, email.as_deref().unwrap_or_default())
        {
            errors.push(FieldError::new("password", error.to_string()));
        }
        let global = self.store().begin_global().await?;
        let chosen_plan = plan::Entity::find_by_id(request.plan.clone())
            .one(&global)
            .await?;
        if chosen_plan.is_none() {
            errors.push(FieldError::new(
                "plan",
                format!("unknown plan {:?}", request.plan),
            ));
        } else if request.plan != TRIAL_PLAN {
            errors.push(FieldError::new("plan", PLAN_CHOSEN_THROUGH_BILLING));
        }
        let (
            Some(company),
            Some(email),
            Some(time_zone),
            Some(display_name),
            Some(chosen_plan),
            true,
        ) = (
            company,
            email,
            time_zone,
            display_name,
            chosen_plan,
            errors.is_empty(),
        )
        else {
            return Err(IdentityError::Validation(errors));
        };
        drop(global);

        let password_hash = hash_password_async(request.password)
            .await
            .map_err(|error| IdentityError::Internal(error.to_string()))?;
        let owner_time_zone = time_zone.clone();
        let tenant_id = TenantId::new();
        let owner_id = UserId::new();
        let at = now();
        let transaction = self.store().begin_global().await?;
        let slug = reserve_slug(&transaction, &company, tenant_id).await?;
        self.store().enter_tenant(&transaction, tenant_id).await?;
        tenant::ActiveModel {
            id: Set(tenant_id.as_uuid()),
            name: Set(company.clone()),
            slug: Set(slug.clone()),
            time_zone: Set(time_zone.clone()),
            status: Set(TenantStatus::Trial.as_str().to_owned()),
            plan_code: Set(request.plan.clone()),
            email_verified_at: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
        }
        .insert(&transaction)
        .await?;
        let owner_row = user::ActiveModel {
            id: Set(owner_id.as_uuid()),
            tenant_id: Set(tenant_id.as_uuid()),
            email: Set(email.clone()),
            display_name: Set(display_name),
            password_hash: Set(Some(password_hash)),
            roles: Set(domain::roles_to_text(&[Role::Owner])),
            all_clients: Set(true),
            status: Set(UserStatus::Active.as_str().to_owned()),
            created_at: Set(at),
            updated_at: Set(at),
            rights_version: Set(1),
        }
        .insert(&transaction)
        .await?;
        let verification = OpaqueToken::generate(VERIFICATION_TOKEN_PREFIX);
        one_time_token::ActiveModel {
            hash: Set(verification.hash.clone()),
            tenant_id: Set(tenant_id.as_uuid()),
            user_id: Set(Some(owner_id.as_uuid())),
            purpose: Set(PURPOSE_VERIFY_EMAIL.to_owned()),
            expires_at: Set(at + self.inner.options.verification_ttl),
            used_at: Set(None),
        }
        .insert(&transaction)
        .await?;
        self.register_lookup(&transaction, &verification.hash, "verify_email", tenant_id)
            .await?;
        let owner = ("user", Some(owner_id.as_uuid()));
        audit::record(
            &transaction,
            tenant_id,
            origin,
            AuditRecord {
                actor: owner,
                action: "tenant.created",
                target: ("tenant", Some(tenant_id.as_uuid())),
                clients: &[],
                details: serde_json::json!({ "name": company, "slug": slug, "plan": request.plan }),
            },
        )
        .await?;
        audit::record(
            &transaction,
            tenant_id,
            origin,
            AuditRecord {
                actor: owner,
                action: "user.created",
                target: ("user", Some(owner_id.as_uuid())),
                clients: &[],
                details: serde_json::json!({ "email": email, "roles": ["owner"] }),
            },
        )
        .await?;
        events::emit(
            &transaction,
            tenant_id,
            [
                Payload::TenantCreated(proto::TenantCreated {
                    tenant_id: tenant_id.to_string(),
                    name: company.clone(),
                    slug: slug.clone(),
                    plan_code: request.plan.clone(),
                    time_zone: owner_time_zone,
                    owner_user_id: owner_id.to_string(),
                    call_limits: Some(events::call_limits(&chosen_plan)),
                }),
                Payload::UserCreated(proto::UserCreated {
                    user: Some(events::user(&owner_row, None)),
                }),
            ],
        )
        .await?;
        let tokens = self
            .open_session(
                &transaction,
                tenant_id,
                owner_id,
                UserRights {
                    roles: &[Role::Owner],
                    clients: None,
                    version: 1,
                },
            )
            .await?;
        transaction.commit().await?;

        if self.inner.options.log_verification_tokens {
            // `dev`: no email goes out, so the token goes to the log.
            tracing::info!(
                tenant_id = %tenant_id,
                email = %email,
                verification_token = %verification.plaintext,
                "signup email verification token (deliver with POST /v1/auth/verify-email)"
            );
        } else {
            tracing::info!(tenant_id = %tenant_id, "signup: email verification token issued");
        }
        let tenant = self.load_tenant_view(tenant_id).await?;
        let owner = self.load_user_view(tenant_id, owner_id).await?;
        Ok(SignupOutcome {
            tenant,
            owner,
            tokens,
            verification_token: verification.plaintext,
        })
    }

    /// Marks the tenant's email as verified (one-time token from signup).
    pub async fn verify_email(&self, token: &str, origin: &RequestOrigin) -> Result<()> {
        let (tenant_id, row) = self
            .take_one_time_token(token, PURPOSE_VERIFY_EMAIL)
            .await?;
        let transaction = self.store().begin(tenant_id).await?;
        spend_one_time_token(&transaction, &row.hash, PURPOSE_VERIFY_EMAIL).await?;
        tenant::Entity::update_many()
            .col_expr(
                tenant::Column::EmailVerifiedAt,
                sea_orm::sea_query::Expr::value(now()),
            )
            .filter(tenant::Column::Id.eq(tenant_id.as_uuid()))
            .exec(&transaction)
            .await?;
        audit::record(
            &transaction,
            tenant_id,
            origin,
            AuditRecord {
                actor: ("user", row.user_id),
                action: "tenant.email_verified",
                target: ("tenant", Some(tenant_id.as_uuid())),
                clients: &[],
                details: serde_json::Value::Null,
            },
        )
        .await?;
        transaction.commit().await?;
        self.credentials().forget_tenant(tenant_id).await;
        Ok(())
    }
}

pub(crate) const PURPOSE_VERIFY_EMAIL: &str = "verify_email";

/// Reserves the company's slug, or `slug-2`, `slug-3`, … if taken.
async fn reserve_slug(
    transaction: &sea_orm::DatabaseTransaction,
    company: &str,
    tenant: TenantId,
) -> Result<String> {
    let base = domain::slugify(company);
    for attempt in 1..=SLUG_ATTEMPTS {
        let slug = if attempt == 1 {
            base.clone()
        } else {
            format!("{base}-{attempt}")
        };
        let taken = tenant_slug::Entity::find_by_id(slug.clone())
            .one(transaction)
            .await?
            .is_some();
        if taken {
            continue;
        }
        // Savepoint: a concurrent signup may take the slug between the
        // check and the insert; then try the next one.
        let savepoint = transaction.begin().await?;
        let inserted = tenant_slug::ActiveModel {
            slug: Set(slug.clone()),
            tenant_id: Set(tenant.as_uuid()),
        }
        .insert(&savepoint)
        .await;
        match inserted {
            Ok(_) => {
                savepoint.commit().await?;
                return Ok(slug);
            }
            Err(_) => {
                savepoint.rollback().await?;
            }
        }
    }
    Err(IdentityError::conflict(
        "slug_taken",
        format!("no free handle for {company:?}; choose a more distinctive company name"),
    ))
}
