//! The edge's own tables (`migrations/src/edge/`): the SIP account of each
//! agent who has one, and each tenant's slug, which names its SIP domain
//! (`<slug>.<edge.sip_domain>`).
//!
//! [`Accounts`] issues an account's password (shown once, kept only as
//! the two digest HA1s of RFC 7616/8760), rotates and revokes it, and is
//! the registrar's [`SipDirectory`]: a domain's tenant is read in system
//! scope (no tenant is known yet when a REGISTER arrives), everything else
//! in the tenant's own scope. [`IdentityProjection`] keeps the tables in
//! step with identity's events: a tenant's slug when it signs up, an
//! account switched off while its user is not active, and gone with its
//! user; each row carries the version (event time, µs) it was written at,
//! so a late or replayed event never undoes a newer one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rand::distr::{Alphanumeric, SampleString};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, QueryResult};
use switchboard_events::proto::{self, envelope::Payload};
use switchboard_events::{Event, EventHandler, HandlerError};
use switchboard_platform::Database;
use switchboard_tenancy::{TenantId, UserId};
use uuid::Uuid;

use crate::registrar::{Bindings, SipAccount, SipDirectory};
use crate::sip::digest::Algorithm;

const TENANTS: &str = "edge_directory_tenants";

/// What a tenant's plan allows of phone calls, as identity's events said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// Calls in progress at once.
    pub max_concurrent_calls: u32,
    /// New inbound calls per second.
    pub calls_per_second: u32,
}

impl From<&proto::CallLimits> for CallLimits {
    fn from(limits: &proto::CallLimits) -> Self {
        Self {
            max_concurrent_calls: limits.max_concurrent_calls,
            calls_per_second: limits.calls_per_second,
        }
    }
}
const ACCOUNTS: &str = "edge_sip_accounts";

/// The name of the edge's consumer of identity's events (its queue).
pub const PROJECTION_CONSUMER_NAME: &str = "edge-directory";

/// What that consumer is bound to.
pub const PROJECTION_BINDINGS: &[&str] = &[
    "*.identity.tenant.created",
    "*.identity.tenant.plan_changed",
    "*.identity.user.*",
];

/// Characters in a generated password: 24 alphanumerics, ~143 bits.
const PASSWORD_LENGTH: usize = 24;

/// A SIP account's credentials as issued: the password is never stored
/// and never shown again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCredentials {
    pub username: String,
    pub password: String,
    /// The tenant's SIP domain, which is also the digest realm.
    pub domain: String,
}

/// Why an account could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The tenant's slug has not reached the edge yet (identity's event
    /// is on its way): try again shortly.
    #[error("the tenant's SIP domain is not known to the edge yet; try again in a few seconds")]
    DomainUnknown,
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// SIP accounts and domains on the edge's tables.
#[derive(Clone)]
pub struct Accounts {
    db: Database,
    sip_domain: String,
    /// The phones' registrations, dropped with the account (revoked, its
    /// user disabled or deleted); `None` where nothing registers.
    bindings: Option<Bindings>,
}

fn col(name: &str) -> Alias {
    Alias::new(name)
}

impl Accounts {
    /// `sip_domain`: the parent of every tenant's domain (`edge.sip_domain`).
    pub fn new(db: Database, sip_domain: impl Into<String>) -> Self {
        Self {
            db,
            sip_domain: sip_domain.into().to_ascii_lowercase(),
            bindings: None,
        }
    }

    /// Drops the phones' registrations in `bindings` whenever an account
    /// stops working: revoked, or its user disabled or deleted in identity.
    pub fn with_registrations(mut self, bindings: Bindings) -> Self {
        self.bindings = Some(bindings);
        self
    }

    async fn forget_registrations(&self, tenant: TenantId, user: UserId) {
        if let Some(bindings) = &self.bindings
            && let Err(error) = bindings.forget(tenant, user).await
        {
            // They expire on their own (an hour at most), and a REGISTER
            // is refused meanwhile.
            tracing::warn!(tenant_id = %tenant, %error, "a revoked account's registrations could not be dropped");
        }
    }

    /// The SIP domain of the tenant with `slug`.
    pub fn domain_of(&self, slug: &str) -> String {
        format!("{slug}.{}", self.sip_domain)
    }

    /// A transaction confined to `tenant`.
    pub(crate) async fn begin(&self, tenant: TenantId) -> Result<DatabaseTransaction, DbErr> {
        self.db.begin_tenant(tenant.as_uuid()).await
    }

    /// The tenant's slug, as the edge knows it.
    pub(crate) async fn slug_of(
        &self,
        transaction: &DatabaseTransaction,
        tenant: TenantId,
    ) -> Result<Option<String>, DbErr> {
        let query = Query::select()
            .column(col("slug"))
            .from(col(TENANTS))
            .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
            .to_owned();
        let row = transaction.query_one(&query).await?;
        row.map(|row| row.try_get::<String>("", "slug")).transpose()
    }

    /// Creates `user`'s SIP account, or gives it a new password (its
    /// username stays): the phone's old password stops working at once.
    pub async fn issue(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<IssuedCredentials, AccountError> {
        let transaction = self.db.begin_tenant(tenant.as_uuid()).await?;
        let slug = self
            .slug_of(&transaction, tenant)
            .await?
            .ok_or(AccountError::DomainUnknown)?;
        let domain = self.domain_of(&slug);
        let existing = transaction
            .query_one(
                &Query::select()
                    .column(col("username"))
                    .from(col(ACCOUNTS))
                    .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
                    .and_where(Expr::col(col("user_id")).eq(user.as_uuid()))
                    .to_owned(),
            )
            .await?
            .map(|row| row.try_get::<String>("", "username"))
            .transpose()?;
        // A new account's username: the user id's last 12 hex digits (its
        // random part), longer in the unlikely case it is taken.
        let username = match existing {
            Some(username) => username,
            None => {
                let hex = user.as_uuid().simple().to_string();
                let mut length = 12;
                loop {
                    let candidate = format!("a{}", &hex[hex.len() - length..]);
                    let taken = transaction
                        .query_one(
                            &Query::select()
                                .column(col("user_id"))
                                .from(col(ACCOUNTS))
                                .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
                                .and_where(Expr::col(col("username")).eq(candidate.clone()))
                                .to_owned(),
                        )
                        .await?
                        .is_some();
                    if !taken || length == hex.len() {
                        break candidate;
                    }
                    length += 4;
                }
            }
        };
        let password = Alphanumeric.sample_string(&mut rand::rng(), PASSWORD_LENGTH);
        let now = chrono::Utc::now();
        let insert = Query::insert()
            .into_table(col(ACCOUNTS))
            .columns([
                col("user_id"),
                col("tenant_id"),
                col("username"),
                col("ha1_sha256"),
                col("ha1_md5"),
                col("active"),
                col("version"),
                col("created_at"),
                col("updated_at"),
            ])
            .values_panic([
                user.as_uuid().into(),
                tenant.as_uuid().into(),
                username.clone().into(),
                Algorithm::Sha256.ha1(&username, &domain, &password).into(),
                Algorithm::Md5.ha1(&username, &domain, &password).into(),
                true.into(),
                0i64.into(),
                now.into(),
                now.into(),
            ])
            .on_conflict(
                OnConflict::column(col("user_id"))
                    .update_columns([col("ha1_sha256"), col("ha1_md5"), col("updated_at")])
                    .to_owned(),
            )
            .to_owned();
        transaction.execute(&insert).await?;
        transaction.commit().await?;
        Ok(IssuedCredentials {
            username,
            password,
            domain,
        })
    }

    /// Records the slug of `tenant` as its `tenant.created` event carries it
    /// (idempotent), for a caller that has it before the event arrives
    /// (the `dev --demo` seed).
    pub async fn record_tenant(&self, tenant: TenantId, slug: &str) -> Result<(), DbErr> {
        let transaction = self.db.begin_tenant(tenant.as_uuid()).await?;
        insert_tenant(&transaction, tenant, slug, None, 0).await?;
        transaction.commit().await
    }

    /// `tenant`'s call limits; `None` while unknown (no limit applies).
    pub async fn call_limits(&self, tenant: TenantId) -> Result<Option<CallLimits>, DbErr> {
        let query = Query::select()
            .columns([col("max_concurrent_calls"), col("calls_per_second")])
            .from(col(TENANTS))
            .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
            .to_owned();
        let system = self.db.system();
        let Some(row) = system.connection().query_one(&query).await? else {
            return Ok(None);
        };
        let concurrent: Option<i32> = row.try_get("", "max_concurrent_calls")?;
        let per_second: Option<i32> = row.try_get("", "calls_per_second")?;
        Ok(concurrent
            .zip(per_second)
            .map(|(concurrent, per_second)| CallLimits {
                max_concurrent_calls: u32::try_from(concurrent).unwrap_or(0),
                calls_per_second: u32::try_from(per_second).unwrap_or(0),
            }))
    }

    /// Removes `user`'s SIP account; whether there was one.
    pub async fn revoke(&self, tenant: TenantId, user: UserId) -> Result<bool, DbErr> {
        let transaction = self.db.begin_tenant(tenant.as_uuid()).await?;
        let removed = delete_account(&transaction, tenant, user.as_uuid()).await?;
        transaction.commit().await?;
        if removed {
            self.forget_registrations(tenant, user).await;
        }
        Ok(removed)
    }

    /// The projection of identity's events onto these tables.
    pub fn identity_projection(&self) -> Arc<dyn EventHandler> {
        Arc::new(IdentityProjection {
            accounts: self.clone(),
            pending: Mutex::new(HashMap::new()),
        })
    }
}

/// A tenant's slug, unless the edge knows it already (slugs never change).
async fn insert_tenant(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    slug: &str,
    limits: Option<CallLimits>,
    version: i64,
) -> Result<(), DbErr> {
    let insert = Query::insert()
        .into_table(col(TENANTS))
        .columns([
            col("tenant_id"),
            col("slug"),
            col("max_concurrent_calls"),
            col("calls_per_second"),
            col("version"),
        ])
        .values_panic([
            tenant.as_uuid().into(),
            slug.into(),
            limits.map(|limits| limits.max_concurrent_calls).into(),
            limits.map(|limits| limits.calls_per_second).into(),
            version.into(),
        ])
        .on_conflict(OnConflict::column(col("tenant_id")).do_nothing().to_owned())
        .to_owned();
    transaction.execute(&insert).await?;
    if let Some(limits) = limits {
        // A row written before (the demo seed, at version 0) learns them.
        set_limits(transaction, tenant, limits, version).await?;
    }
    Ok(())
}

/// Sets `tenant`'s call limits unless a newer event set them.
async fn set_limits(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    limits: CallLimits,
    version: i64,
) -> Result<(), DbErr> {
    let update = Query::update()
        .table(col(TENANTS))
        .values([
            (
                col("max_concurrent_calls"),
                limits.max_concurrent_calls.into(),
            ),
            (col("calls_per_second"), limits.calls_per_second.into()),
            (col("version"), version.into()),
        ])
        .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
        .and_where(Expr::col(col("version")).lt(version))
        .to_owned();
    transaction.execute(&update).await?;
    Ok(())
}

async fn delete_account(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    user: Uuid,
) -> Result<bool, DbErr> {
    let delete = Query::delete()
        .from_table(col(ACCOUNTS))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
        .and_where(Expr::col(col("user_id")).eq(user))
        .to_owned();
    Ok(transaction.execute(&delete).await?.rows_affected() > 0)
}

fn account_of(row: &QueryResult) -> Result<SipAccount, DbErr> {
    Ok(SipAccount {
        user: UserId::from_uuid(row.try_get("", "user_id")?),
        ha1_sha256: row.try_get("", "ha1_sha256")?,
        ha1_md5: row.try_get("", "ha1_md5")?,
    })
}

#[async_trait::async_trait]
impl SipDirectory for Accounts {
    async fn tenant_of_domain(&self, domain: &str) -> anyhow::Result<Option<TenantId>> {
        let Some(slug) = domain
            .strip_suffix(&self.sip_domain)
            .and_then(|head| head.strip_suffix('.'))
            .filter(|slug| !slug.is_empty() && !slug.contains('.'))
        else {
            return Ok(None);
        };
        let query = Query::select()
            .column(col("tenant_id"))
            .from(col(TENANTS))
            .and_where(Expr::col(col("slug")).eq(slug))
            .to_owned();
        let system = self.db.system();
        let row = system.connection().query_one(&query).await?;
        Ok(row
            .map(|row| row.try_get::<Uuid>("", "tenant_id"))
            .transpose()?
            .map(TenantId::from_uuid))
    }

    async fn account(
        &self,
        tenant: TenantId,
        username: &str,
    ) -> anyhow::Result<Option<SipAccount>> {
        let query = Query::select()
            .columns([col("user_id"), col("ha1_sha256"), col("ha1_md5")])
            .from(col(ACCOUNTS))
            .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
            .and_where(Expr::col(col("username")).eq(username))
            .and_where(Expr::col(col("active")).eq(true))
            .to_owned();
        let transaction = self.db.begin_tenant(tenant.as_uuid()).await?;
        let row = transaction.query_one(&query).await?;
        transaction.commit().await?;
        Ok(row.as_ref().map(account_of).transpose()?)
    }
}

/// The handler of the [`PROJECTION_CONSUMER_NAME`] consumer. An event
/// that switched an account off (its user disabled or deleted) drops the
/// account's registrations once its transaction committed.
pub struct IdentityProjection {
    accounts: Accounts,
    /// Accounts switched off by events not committed yet, by event.
    pending: Mutex<HashMap<Uuid, (TenantId, UserId)>>,
}

/// Held switch-offs of transactions that never committed are dropped past
/// this many (their events are retried and hold them again).
const MAX_PENDING: usize = 100_000;

impl IdentityProjection {
    fn hold(&self, event: &Event, user: Uuid) {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pending.len() >= MAX_PENDING {
            pending.clear();
        }
        pending.insert(event.id, (event.tenant, UserId::from_uuid(user)));
    }
}

fn handler_error(error: DbErr) -> HandlerError {
    HandlerError::new(error)
}

fn parse_id(text: &str) -> Result<Uuid, HandlerError> {
    Uuid::parse_str(text).map_err(|_| {
        HandlerError::new(std::io::Error::other(format!(
            "identity event: {text:?} is not a UUID"
        )))
    })
}

#[async_trait::async_trait]
impl EventHandler for IdentityProjection {
    async fn handle(
        &self,
        transaction: &DatabaseTransaction,
        event: &Event,
    ) -> Result<(), HandlerError> {
        let tenant = event.tenant;
        let version = event.occurred_at.timestamp_micros();
        match &event.payload {
            Payload::TenantCreated(proto::TenantCreated {
                slug, call_limits, ..
            }) => {
                let limits = call_limits.as_ref().map(CallLimits::from);
                insert_tenant(transaction, tenant, slug, limits, version)
                    .await
                    .map_err(handler_error)?;
            }
            Payload::TenantPlanChanged(proto::TenantPlanChanged {
                call_limits: Some(limits),
                ..
            }) => {
                set_limits(transaction, tenant, CallLimits::from(limits), version)
                    .await
                    .map_err(handler_error)?;
            }
            Payload::UserCreated(proto::UserCreated { user: Some(user) })
            | Payload::UserUpdated(proto::UserUpdated { user: Some(user) }) => {
                let id = parse_id(&user.user_id)?;
                let update = Query::update()
                    .table(col(ACCOUNTS))
                    .values([
                        (col("active"), (user.status == "active").into()),
                        (col("version"), version.into()),
                    ])
                    .and_where(Expr::col(col("tenant_id")).eq(tenant.as_uuid()))
                    .and_where(Expr::col(col("user_id")).eq(id))
                    .and_where(Expr::col(col("version")).lt(version))
                    .to_owned();
                let changed = transaction.execute(&update).await.map_err(handler_error)?;
                if changed.rows_affected() > 0 && user.status != "active" {
                    self.hold(event, id);
                }
            }
            Payload::UserDeleted(proto::UserDeleted { user_id }) => {
                let id = parse_id(user_id)?;
                if delete_account(transaction, tenant, id)
                    .await
                    .map_err(handler_error)?
                {
                    self.hold(event, id);
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn committed(&self, events: &[Event]) {
        let switched_off: Vec<(TenantId, UserId)> = {
            let mut pending = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            events
                .iter()
                .filter_map(|event| pending.remove(&event.id))
                .collect()
        };
        for (tenant, user) in switched_off {
            self.accounts.forget_registrations(tenant, user).await;
        }
    }
}
