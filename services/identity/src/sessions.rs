//! Logging in and staying logged in: short-lived JWT access tokens, and
//! rotating refresh tokens in families (one family = one session). A
//! refresh token is good once; presenting a used one again means it was
//! stolen, and the whole family is revoked (OAuth 2.0 Security BCP,
//! refresh token rotation). Also: turning a presented credential (access
//! token or API key) into a [`Principal`].

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter,
};
use switchboard_auth::secrets::REFRESH_TOKEN_PREFIX;
use switchboard_auth::{
    AccessSubject, AuthError, OpaqueToken, hash_secret, verify_against_dummy_async,
    verify_password_async,
};
use switchboard_tenancy::{ClientId, ClientScope, SessionId, Tenant, TenantId, UserId};

use crate::domain::{self, Role, TenantStatus, UserStatus};
use crate::error::{IdentityError, Result};
use crate::store::entities::{
    api_key, credential_lookup, one_time_token, plan, refresh_token, session, tenant, tenant_slug,
    user,
};
use crate::{Actor, Principal, RateLimits};
use crate::{Identity, RequestOrigin, Tokens, now};
use switchboard_identity_api::credential_cache::{
    ApiKeyFacts, Cached, TenantFacts, UserFacts, api_key_principal,
};

const INVALID_CREDENTIALS: &str = "invalid tenant, email or password";
const INVALID_REFRESH: &str = "the refresh token is invalid, expired or revoked; log in again";

impl Identity {
    /// Logs a user in with their tenant's handle, email and password. The
    /// answer never tells which of the three was wrong; repeated failures
    /// are throttled per account and per client address.
    pub async fn login(
        &self,
        tenant_slug: &str,
        email: &str,
        password: &str,
        origin: &RequestOrigin,
    ) -> Result<Tokens> {
        let email = email.trim().to_lowercase();
        let slug = tenant_slug.trim().to_lowercase();
        let account = format!("{slug}\u{1f}{email}");
        let address = origin.address.clone().unwrap_or_default();
        // Counted before verifying, so concurrent guesses cannot all pass.
        self.inner
            .throttle
            .attempt(&account, &address)
            .await
            .map_err(throttled)?;

        let found = self.find_login(&slug, &email).await?;
        let verified = match &found {
            Some((_, row)) => match &row.password_hash {
                Some(hash) => verify_password_async(password.to_owned(), hash.clone()).await,
                None => verify_against_dummy_async(password.to_owned()).await,
            },
            None => verify_against_dummy_async(password.to_owned()).await,
        };
        let Some((tenant_id, row)) =
            found.filter(|(_, row)| verified && row.status == UserStatus::Active.as_str())
        else {
            return Err(IdentityError::Unauthenticated(INVALID_CREDENTIALS.into()));
        };
        self.inner.throttle.succeeded(&account, &address).await;
        let transaction = self.store().begin(tenant_id).await?;
        let tenant_row = load_tenant(&transaction, tenant_id).await?;
        check_tenant_status(&tenant_row)?;
        let user_id = UserId::from_uuid(row.id);
        let clients = user_clients(&transaction, tenant_id, &row).await?;
        let tokens = self
            .open_session(
                &transaction,
                tenant_id,
                user_id,
                UserRights {
                    roles: &domain::roles_from_text(&row.roles),
                    clients,
                    version: row.rights_version,
                },
            )
            .await?;
        transaction.commit().await?;
        Ok(tokens)
    }

    async fn find_login(&self, slug: &str, email: &str) -> Result<Option<(TenantId, user::Model)>> {
        let global = self.store().begin_global().await?;
        let Some(directory) = tenant_slug::Entity::find_by_id(slug.to_owned())
            .one(&global)
            .await?
        else {
            return Ok(None);
        };
        drop(global);
        let tenant_id = TenantId::from_uuid(directory.tenant_id);
        let transaction = self.store().begin(tenant_id).await?;
        let row = user::Entity::find()
            .filter(user::Column::TenantId.eq(tenant_id.as_uuid()))
            .filter(user::Column::Email.eq(email))
            .one(&transaction)
            .await?;
        transaction.commit().await?;
        Ok(row.map(|row| (tenant_id, row)))
    }

    /// Trades a refresh token for new tokens. The old refresh token is
    /// spent; presenting it again revokes the whole session.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens> {
        let hash = hash_secret(refresh_token);
        let tenant_id = self
            .lookup(&hash, "refresh")
            .await?
            .ok_or_else(invalid_refresh)?;
        let transaction = self.store().begin(tenant_id).await?;
        let token = refresh_token::Entity::find_by_id(hash.clone())
            .filter(refresh_token::Column::TenantId.eq(tenant_id.as_uuid()))
            .one(&transaction)
            .await?
            .ok_or_else(invalid_refresh)?;
        let session_row = session::Entity::find_by_id(token.session_id)
            .filter(session::Column::TenantId.eq(tenant_id.as_uuid()))
            .one(&transaction)
            .await?
            .ok_or_else(invalid_refresh)?;
        let at = now();
        if session_row.revoked_at.is_some() || session_row.expires_at <= at {
            return Err(invalid_refresh());
        }
        // Spend the token; zero rows means it was spent before: reuse.
        let spent = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::UsedAt, Expr::value(at))
            .filter(refresh_token::Column::Hash.eq(hash))
            .filter(refresh_token::Column::UsedAt.is_null())
            .exec(&transaction)
            .await?;
        if spent.rows_affected != 1 {
            revoke_session(&transaction, session_row.id, "refresh_token_reused").await?;
            transaction.commit().await?;
            self.credentials().end_session(session_row.id).await;
            tracing::warn!(tenant_id = %tenant_id, session_id = %session_row.id, "refresh token reused; session revoked");
            return Err(invalid_refresh());
        }
        let user_row = user::Entity::find_by_id(session_row.user_id)
            .filter(user::Column::TenantId.eq(tenant_id.as_uuid()))
            .one(&transaction)
            .await?
            .filter(|row| row.status == UserStatus::Active.as_str())
            .ok_or_else(invalid_refresh)?;
        check_tenant_status(&load_tenant(&transaction, tenant_id).await?)?;
        let clients = user_clients(&transaction, tenant_id, &user_row).await?;
        let tokens = self
            .issue_tokens(
                &transaction,
                tenant_id,
                UserId::from_uuid(user_row.id),
                SessionId::from_uuid(session_row.id),
                session_row.expires_at,
                UserRights {
                    roles: &domain::roles_from_text(&user_row.roles),
                    clients,
                    version: user_row.rights_version,
                },
            )
            .await?;
        transaction.commit().await?;
        Ok(tokens)
    }

    /// Ends the session a refresh token belongs to (idempotent).
    pub async fn logout(&self, refresh_token: &str) -> Result<()> {
        let hash = hash_secret(refresh_token);
        let Some(tenant_id) = self.lookup(&hash, "refresh").await? else {
            return Ok(());
        };
        let transaction = self.store().begin(tenant_id).await?;
        let token = refresh_token::Entity::find_by_id(hash)
            .one(&transaction)
            .await?;
        if let Some(token) = &token {
            revoke_session(&transaction, token.session_id, "logout").await?;
        }
        transaction.commit().await?;
        if let Some(token) = token {
            self.credentials().end_session(token.session_id).await;
        }
        Ok(())
    }

    /// Ends the caller's own session (access-token logout).
    pub async fn logout_session(&self, principal: &Principal) -> Result<()> {
        if let Actor::User { session, .. } = &principal.actor {
            let transaction = self.store().begin(principal.tenant.id()).await?;
            revoke_session(&transaction, session.as_uuid(), "logout").await?;
            transaction.commit().await?;
            self.credentials().end_session(session.as_uuid()).await;
        }
        Ok(())
    }

    /// The caller behind a bearer access token: signature, expiry, session
    /// not revoked, tenant in service.
    pub async fn authenticate_access_token(&self, token: &str) -> Result<Principal> {
        let claims = self
            .inner
            .keys
            .verify(token, now())
            .map_err(|error| match error {
                AuthError::ExpiredToken => IdentityError::Unauthenticated(
                    "the access token has expired; refresh it".into(),
                ),
                _ => IdentityError::Unauthenticated("the access token is invalid".into()),
            })?;
        let tenant_id = TenantId::from_uuid(claims.tid);
        let ended = || IdentityError::Unauthenticated("the session has ended; log in again".into());
        let (session, rights, tenant) = self
            .credentials()
            .session_user_and_tenant(claims.sid, tenant_id, claims.sub)
            .await;
        match session {
            Cached::Hit(_) => {}
            Cached::Revoked => return Err(ended()),
            Cached::Miss => {
                let transaction = self.store().begin(tenant_id).await?;
                let session_row = session::Entity::find_by_id(claims.sid)
                    .filter(session::Column::TenantId.eq(tenant_id.as_uuid()))
                    .one(&transaction)
                    .await?;
                transaction.commit().await?;
                if session_row.is_none_or(|row| row.revoked_at.is_some()) {
                    return Err(ended());
                }
                self.credentials().remember_session(claims.sid).await;
            }
        }
        let rights = self
            .user_facts_from(rights, tenant_id, claims.sub)
            .await?
            .filter(|rights| rights.active)
            .ok_or_else(|| {
                IdentityError::Unauthenticated(
                    "the user is disabled or deleted; the session has ended".into(),
                )
            })?;
        if rights.rights_version != claims.ver {
            return Err(IdentityError::Unauthenticated(
                "the user's roles, clients or status changed since this token was issued; log in again".into(),
            ));
        }
        let facts = self.tenant_facts_from(tenant, tenant_id).await?;
        let roles = claims
            .roles
            .iter()
            .filter_map(|role| role.parse::<Role>().ok())
            .collect();
        let clients = ClientScope::from_list(
            claims
                .clients
                .map(|list| list.into_iter().map(ClientId::from_uuid).collect()),
        );
        Ok(Principal {
            tenant: Tenant::scoped(tenant_id, clients),
            actor: Actor::User {
                id: UserId::from_uuid(claims.sub),
                roles,
                session: SessionId::from_uuid(claims.sid),
            },
            limits: RateLimits {
                requests_per_second: facts.requests_per_second,
                burst: facts.burst,
            },
            tenant_verified: facts.verified,
            expires_at: DateTime::from_timestamp(claims.exp, 0),
        })
    }

    /// The caller behind an API key: known, not revoked, not expired,
    /// tenant in service.
    pub async fn authenticate_api_key(&self, key: &str) -> Result<Principal> {
        let invalid =
            || IdentityError::Unauthenticated("the API key is invalid, expired or revoked".into());
        let hash = hash_secret(key);
        let facts = match self.credentials().api_key(&hash).await {
            Cached::Hit(facts) => facts,
            Cached::Revoked => return Err(invalid()),
            Cached::Miss => {
                let tenant_id = self.lookup(&hash, "api_key").await?.ok_or_else(invalid)?;
                let transaction = self.store().begin(tenant_id).await?;
                let row = api_key::Entity::find()
                    .filter(api_key::Column::TenantId.eq(tenant_id.as_uuid()))
                    .filter(api_key::Column::Hash.eq(hash.clone()))
                    .one(&transaction)
                    .await?
                    .ok_or_else(invalid)?;
                transaction.commit().await?;
                if row.revoked_at.is_some() {
                    return Err(invalid());
                }
                let facts = ApiKeyFacts {
                    tenant_id: row.tenant_id,
                    key_id: row.id,
                    scopes: row.scopes,
                    expires_at: row.expires_at,
                    created_by: row.created_by,
                    client_ids: row.client_ids.as_deref().map(domain::client_ids_from_text),
                };
                self.credentials().remember_api_key(&hash, &facts).await;
                facts
            }
        };
        let at = now();
        if facts.expired_at(at) {
            return Err(invalid());
        }
        let tenant_id = TenantId::from_uuid(facts.tenant_id);
        // Its creator's rights and its tenant's facts in one cache round
        // trip, alongside the claim on this minute's `last_used_at` write
        // (a use refused below is not recorded; its claim only delays the
        // next record, by a minute at most).
        let ((cached_creator, cached_tenant), claimed) = tokio::join!(
            self.credentials()
                .user_and_tenant(tenant_id, facts.created_by),
            self.credentials().claim_last_used_write(facts.key_id),
        );
        // The key acts within its creator's rights as they are now.
        let creator = match facts.created_by {
            Some(creator) => {
                self.user_facts_from(cached_creator, tenant_id, creator)
                    .await?
            }
            None => None,
        }
        .filter(|creator| creator.active)
        .ok_or_else(|| {
            IdentityError::Unauthenticated(
                "the API key's creator is disabled or deleted, so the key no longer works; create a new one".into(),
            )
        })?;
        if claimed {
            self.record_key_use(tenant_id, facts.key_id, at).await?;
        }
        let tenant = self.tenant_facts_from(cached_tenant, tenant_id).await?;
        Ok(api_key_principal(&facts, &creator, &tenant))
    }

    async fn record_key_use(
        &self,
        tenant: TenantId,
        key: uuid::Uuid,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let transaction = self.store().begin(tenant).await?;
        api_key::Entity::update_many()
            .col_expr(api_key::Column::LastUsedAt, Expr::value(at))
            .filter(api_key::Column::Id.eq(key))
            .filter(api_key::Column::TenantId.eq(tenant.as_uuid()))
            .exec(&transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// What a user's credentials may do now (`None`: no such user),
    /// given what the credential cache said of them: read from the
    /// database unless it was a hit, and remembered unless a tombstone
    /// forbids it.
    async fn user_facts_from(
        &self,
        cached: Cached<UserFacts>,
        tenant: TenantId,
        user: uuid::Uuid,
    ) -> Result<Option<UserFacts>> {
        let remember = match cached {
            Cached::Hit(facts) => return Ok(Some(facts)),
            Cached::Revoked => false,
            Cached::Miss => true,
        };
        let transaction = self.store().begin(tenant).await?;
        let Some(row) = user::Entity::find_by_id(user)
            .filter(user::Column::TenantId.eq(tenant.as_uuid()))
            .one(&transaction)
            .await?
        else {
            transaction.commit().await?;
            return Ok(None);
        };
        let clients = user_clients(&transaction, tenant, &row).await?;
        transaction.commit().await?;
        let facts = UserFacts {
            rights_version: row.rights_version,
            active: row.status == UserStatus::Active.as_str(),
            roles: row.roles,
            clients: clients.map(|list| list.into_iter().map(|id| id.as_uuid()).collect()),
        };
        if remember {
            self.credentials().remember_user(tenant, user, &facts).await;
        }
        Ok(Some(facts))
    }

    /// Status, verification and rate limits of a tenant, given what the
    /// credential cache said of them; refuses tenants that are not in
    /// service.
    async fn tenant_facts_from(
        &self,
        cached: Cached<TenantFacts>,
        tenant: TenantId,
    ) -> Result<TenantFacts> {
        let facts = match cached {
            Cached::Hit(facts) => facts,
            Cached::Revoked | Cached::Miss => {
                let transaction = self.store().begin(tenant).await?;
                let (row, limits) = load_tenant_and_limits(&transaction, tenant).await?;
                transaction.commit().await?;
                let facts = TenantFacts {
                    status: row.status,
                    verified: row.email_verified_at.is_some(),
                    requests_per_second: limits.requests_per_second,
                    burst: limits.burst,
                };
                self.credentials().remember_tenant(tenant, &facts).await;
                facts
            }
        };
        check_status(&facts.status)?;
        Ok(facts)
    }

    /// Opens a session for `user` and hands out its first tokens.
    pub(crate) async fn open_session(
        &self,
        transaction: &DatabaseTransaction,
        tenant: TenantId,
        user: UserId,
        rights: UserRights<'_>,
    ) -> Result<Tokens> {
        let session_id = SessionId::new();
        let at = now();
        let expires_at = at + self.inner.options.refresh_token_ttl;
        session::ActiveModel {
            id: Set(session_id.as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            user_id: Set(user.as_uuid()),
            created_at: Set(at),
            expires_at: Set(expires_at),
            revoked_at: Set(None),
            revoked_reason: Set(None),
        }
        .insert(transaction)
        .await?;
        self.issue_tokens(transaction, tenant, user, session_id, expires_at, rights)
            .await
    }

    /// A new access token and the session's next refresh token.
    async fn issue_tokens(
        &self,
        transaction: &DatabaseTransaction,
        tenant: TenantId,
        user: UserId,
        session: SessionId,
        session_expires_at: DateTime<Utc>,
        rights: UserRights<'_>,
    ) -> Result<Tokens> {
        let at = now();
        let refresh = OpaqueToken::generate(REFRESH_TOKEN_PREFIX);
        refresh_token::ActiveModel {
            hash: Set(refresh.hash.clone()),
            tenant_id: Set(tenant.as_uuid()),
            session_id: Set(session.as_uuid()),
            issued_at: Set(at),
            used_at: Set(None),
        }
        .insert(transaction)
        .await?;
        self.register_lookup(transaction, &refresh.hash, "refresh", tenant)
            .await?;
        let subject = AccessSubject {
            user_id: user.as_uuid(),
            tenant_id: tenant.as_uuid(),
            roles: rights
                .roles
                .iter()
                .map(|role| role.as_str().to_owned())
                .collect(),
            clients: rights
                .clients
                .map(|list| list.into_iter().map(|client| client.as_uuid()).collect()),
            session_id: session.as_uuid(),
            rights_version: rights.version,
        };
        let (access_token, claims) = self
            .inner
            .keys
            .issue(subject, self.inner.options.access_token_ttl, at)
            .map_err(|error| IdentityError::Internal(error.to_string()))?;
        Ok(Tokens {
            access_token,
            access_expires_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or(at),
            refresh_token: refresh.plaintext,
            refresh_expires_at: session_expires_at,
        })
    }

    /// Records which tenant a hashed credential belongs to (global table).
    pub(crate) async fn register_lookup(
        &self,
        transaction: &DatabaseTransaction,
        hash: &str,
        kind: &str,
        tenant: TenantId,
    ) -> Result<()> {
        credential_lookup::ActiveModel {
            hash: Set(hash.to_owned()),
            kind: Set(kind.to_owned()),
            tenant_id: Set(tenant.as_uuid()),
            created_at: Set(now()),
        }
        .insert(transaction)
        .await?;
        Ok(())
    }

    /// The tenant a hashed credential of `kind` belongs to.
    pub(crate) async fn lookup(&self, hash: &str, kind: &str) -> Result<Option<TenantId>> {
        let global = self.store().begin_global().await?;
        let row = credential_lookup::Entity::find_by_id(hash.to_owned())
            .filter(credential_lookup::Column::Kind.eq(kind))
            .one(&global)
            .await?;
        global.commit().await?;
        Ok(row.map(|row| TenantId::from_uuid(row.tenant_id)))
    }

    /// A valid, unused one-time token of `purpose` (not yet marked used).
    pub(crate) async fn take_one_time_token(
        &self,
        token: &str,
        purpose: &str,
    ) -> Result<(TenantId, one_time_token::Model)> {
        let invalid = || one_time_token_invalid(purpose);
        let hash = hash_secret(token);
        let tenant_id = self.lookup(&hash, purpose).await?.ok_or_else(invalid)?;
        let transaction = self.store().begin(tenant_id).await?;
        let row = one_time_token::Entity::find_by_id(hash)
            .filter(one_time_token::Column::TenantId.eq(tenant_id.as_uuid()))
            .filter(one_time_token::Column::Purpose.eq(purpose))
            .one(&transaction)
            .await?
            .filter(|row| row.used_at.is_none() && row.expires_at > now())
            .ok_or_else(invalid)?;
        transaction.commit().await?;
        Ok((tenant_id, row))
    }
}

/// What an access token says the user may do, read from the user's row in
/// the transaction that issues it.
pub(crate) struct UserRights<'a> {
    pub roles: &'a [Role],
    pub clients: Option<Vec<ClientId>>,
    pub version: i64,
}

/// Marks a one-time token used; fails if it was used meanwhile (two
/// requests racing with the same token: one wins).
pub(crate) async fn spend_one_time_token(
    transaction: &DatabaseTransaction,
    hash: &str,
    purpose: &str,
) -> Result<()> {
    let spent = one_time_token::Entity::update_many()
        .col_expr(one_time_token::Column::UsedAt, Expr::value(now()))
        .filter(one_time_token::Column::Hash.eq(hash))
        .filter(one_time_token::Column::UsedAt.is_null())
        .exec(transaction)
        .await?;
    if spent.rows_affected == 1 {
        Ok(())
    } else {
        Err(one_time_token_invalid(purpose))
    }
}

fn one_time_token_invalid(purpose: &str) -> IdentityError {
    IdentityError::Unauthenticated(format!(
        "the {} token is invalid, expired or used",
        purpose.replace('_', " ")
    ))
}

fn invalid_refresh() -> IdentityError {
    IdentityError::Unauthenticated(INVALID_REFRESH.into())
}

fn throttled(error: AuthError) -> IdentityError {
    match error {
        AuthError::Throttled { retry_after } => IdentityError::Throttled { retry_after },
        other => IdentityError::Internal(other.to_string()),
    }
}

pub(crate) async fn revoke_session(
    transaction: &DatabaseTransaction,
    session: uuid::Uuid,
    reason: &str,
) -> Result<()> {
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now()))
        .col_expr(session::Column::RevokedReason, Expr::value(reason))
        .filter(session::Column::Id.eq(session))
        .filter(session::Column::RevokedAt.is_null())
        .exec(transaction)
        .await?;
    Ok(())
}

pub(crate) async fn load_tenant(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
) -> Result<tenant::Model> {
    tenant::Entity::find_by_id(tenant.as_uuid())
        .one(transaction)
        .await?
        .ok_or(IdentityError::NotFound("tenant"))
}

async fn load_tenant_and_limits(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
) -> Result<(tenant::Model, RateLimits)> {
    let row = load_tenant(transaction, tenant).await?;
    let plan = plan::Entity::find_by_id(row.plan_code.clone())
        .one(transaction)
        .await?
        .ok_or_else(|| IdentityError::Internal(format!("plan {} is missing", row.plan_code)))?;
    let limits = RateLimits {
        requests_per_second: plan.api_requests_per_second,
        burst: u32::try_from(plan.api_burst).unwrap_or(1),
    };
    Ok((row, limits))
}

/// Refuses tenants that are suspended or closed (their data is kept).
pub(crate) fn check_tenant_status(row: &tenant::Model) -> Result<()> {
    check_status(&row.status)
}

fn check_status(status: &str) -> Result<()> {
    let status: TenantStatus = status.parse().map_err(IdentityError::Internal)?;
    if status.may_use_api() {
        Ok(())
    } else {
        Err(IdentityError::forbidden(
            "tenant_suspended",
            format!(
                "the tenant is {}; its data is kept, contact support to restore access",
                status.as_str()
            ),
        ))
    }
}

/// The user's client scope: `None` for every client.
pub(crate) async fn user_clients(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    row: &user::Model,
) -> Result<Option<Vec<ClientId>>> {
    if row.all_clients {
        return Ok(None);
    }
    let links = crate::store::entities::user_client::Entity::find()
        .filter(crate::store::entities::user_client::Column::TenantId.eq(tenant.as_uuid()))
        .filter(crate::store::entities::user_client::Column::UserId.eq(row.id))
        .all(transaction)
        .await?;
    Ok(Some(
        links
            .into_iter()
            .map(|link| ClientId::from_uuid(link.client_id))
            .collect(),
    ))
}
