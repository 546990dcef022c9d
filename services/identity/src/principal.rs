//! Who is calling: a user (by access token) or an API key, within one
//! tenant and client scope.

use chrono::{DateTime, Utc};
use switchboard_tenancy::{ApiKeyId, SessionId, Tenant, UserId};

use crate::domain::{ApiScope, Permission, Role, roles_grant};
use crate::error::{IdentityError, Result};

/// The API rate a tenant's plan allows (token bucket).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    pub requests_per_second: f64,
    pub burst: u32,
}

/// What acts.
#[derive(Debug, Clone, PartialEq)]
pub enum Actor {
    User {
        id: UserId,
        roles: Vec<Role>,
        session: SessionId,
    },
    /// A key acts within its scopes and, at every use, within its
    /// creator's current roles (a demoted creator's keys shrink with them).
    ApiKey {
        id: ApiKeyId,
        scopes: Vec<ApiScope>,
        creator_roles: Vec<Role>,
    },
}

/// An authenticated caller: built only from a verified credential.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub tenant: Tenant,
    pub actor: Actor,
    pub limits: RateLimits,
    /// Whether the tenant's owner has verified the signup email.
    pub tenant_verified: bool,
    /// When the credential stops working by itself (an access token's
    /// `exp`, an API key's expiry); `None` for a key that never expires.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Principal {
    /// Fails with 403 `permission_denied` unless the caller may `permission`.
    pub fn require(&self, permission: Permission) -> Result<()> {
        let allowed = match &self.actor {
            Actor::User { roles, .. } => roles_grant(roles, permission),
            Actor::ApiKey {
                scopes,
                creator_roles,
                ..
            } => {
                scopes.iter().any(|scope| scope.grants(permission))
                    && roles_grant(creator_roles, permission)
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(IdentityError::forbidden(
                "permission_denied",
                format!("this credential may not {}", describe(permission)),
            ))
        }
    }

    /// Fails with 403 `email_unverified` until the signup email is verified.
    pub fn require_verified(&self, what: &str) -> Result<()> {
        if self.tenant_verified {
            Ok(())
        } else {
            Err(IdentityError::forbidden(
                "email_unverified",
                format!("verify the signup email address before you {what}"),
            ))
        }
    }

    /// Roles of a user caller (empty for API keys).
    pub fn roles(&self) -> &[Role] {
        match &self.actor {
            Actor::User { roles, .. } => roles,
            Actor::ApiKey { .. } => &[],
        }
    }

    /// `("user", id)` or `("api_key", id)`, for the audit log.
    pub fn audit_actor(&self) -> (&'static str, uuid::Uuid) {
        match &self.actor {
            Actor::User { id, .. } => ("user", id.as_uuid()),
            Actor::ApiKey { id, .. } => ("api_key", id.as_uuid()),
        }
    }

    /// A stable identity for rate limits and idempotency keys.
    pub fn key(&self) -> String {
        let (kind, id) = self.audit_actor();
        format!("{}:{kind}:{id}", self.tenant.id())
    }
}

/// What a permission lets one do, for error messages.
pub(crate) fn describe(permission: Permission) -> &'static str {
    match permission {
        Permission::ReadTenant => "read the tenant",
        Permission::ManageTenant => "change the tenant",
        Permission::ManageBilling => "change the plan",
        Permission::ReadUsers => "read users",
        Permission::ManageUsers => "manage users",
        Permission::ReadClients => "read client organizations",
        Permission::ManageClients => "manage client organizations",
        Permission::ManageApiKeys => "manage API keys",
        Permission::ReadAudit => "read the audit log",
        Permission::ReadRouting => "read the routing configuration",
        Permission::ManageRouting => "change the routing configuration",
        Permission::ForceRoutingMode => "force an inbound rule's mode",
    }
}
