//! Who is calling: a user (by access token) or an API key, within one
//! tenant and client scope.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_tenancy::{ApiKeyId, SessionId, Tenant, UserId};

use switchboard_rpc::ServiceError;

use crate::domain::{ApiScope, Permission, Role, describe, roles_grant};

/// A check of a [`Principal`] that failed: 403 with the problem `code`
/// (`permission_denied`, `email_unverified`) and what was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct Denied {
    pub code: &'static str,
    pub detail: String,
}

impl From<Denied> for ServiceError {
    fn from(denied: Denied) -> Self {
        ServiceError::forbidden(denied.code, denied.detail)
    }
}

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
    pub fn require(&self, permission: Permission) -> Result<(), Denied> {
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
            Err(Denied {
                code: "permission_denied",
                detail: format!("this credential may not {}", describe(permission)),
            })
        }
    }

    /// Fails with 403 `email_unverified` until the signup email is verified.
    pub fn require_verified(&self, what: &str) -> Result<(), Denied> {
        if self.tenant_verified {
            Ok(())
        } else {
            Err(Denied {
                code: "email_unverified",
                detail: format!("verify the signup email address before you {what}"),
            })
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

/// A principal as it travels in a service credential's `prn` claim (the
/// tenant and its clients travel in the credential's own claims).
#[derive(Serialize, Deserialize)]
#[serde(tag = "actor", rename_all = "snake_case", deny_unknown_fields)]
enum PrincipalClaim {
    User {
        id: UserId,
        roles: Vec<String>,
        session: SessionId,
        #[serde(flatten)]
        common: ClaimCommon,
    },
    ApiKey {
        id: ApiKeyId,
        scopes: Vec<String>,
        creator_roles: Vec<String>,
        #[serde(flatten)]
        common: ClaimCommon,
    },
}

#[derive(Serialize, Deserialize)]
struct ClaimCommon {
    rps: f64,
    burst: u32,
    verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
}

impl Principal {
    /// This principal as the `prn` claim of a service credential.
    pub fn to_claim(&self) -> serde_json::Value {
        let common = ClaimCommon {
            rps: self.limits.requests_per_second,
            burst: self.limits.burst,
            verified: self.tenant_verified,
            expires_at: self.expires_at,
        };
        let names = |roles: &[Role]| roles.iter().map(|role| role.as_str().to_owned()).collect();
        let claim = match &self.actor {
            Actor::User { id, roles, session } => PrincipalClaim::User {
                id: *id,
                roles: names(roles),
                session: *session,
                common,
            },
            Actor::ApiKey {
                id,
                scopes,
                creator_roles,
            } => PrincipalClaim::ApiKey {
                id: *id,
                scopes: scopes.iter().map(ToString::to_string).collect(),
                creator_roles: names(creator_roles),
                common,
            },
        };
        serde_json::to_value(claim).unwrap_or_default()
    }

    /// The principal a verified service credential carries for `tenant`.
    /// A claim that does not parse is `Unauthenticated`: the caller is a
    /// service of another version or a bug, and is not trusted further.
    pub fn from_claim(tenant: Tenant, claim: &serde_json::Value) -> Result<Self, ServiceError> {
        let invalid = |why: String| {
            ServiceError::unauthenticated(format!(
                "invalid principal in the service credential: {why}"
            ))
        };
        let claim =
            PrincipalClaim::deserialize(claim).map_err(|error| invalid(error.to_string()))?;
        let roles = |names: Vec<String>| {
            names
                .iter()
                .map(|name| {
                    name.parse::<Role>()
                        .map_err(|_| invalid(format!("unknown role {name:?}")))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let (actor, common) = match claim {
            PrincipalClaim::User {
                id,
                roles: names,
                session,
                common,
            } => (
                Actor::User {
                    id,
                    roles: roles(names)?,
                    session,
                },
                common,
            ),
            PrincipalClaim::ApiKey {
                id,
                scopes,
                creator_roles,
                common,
            } => (
                Actor::ApiKey {
                    id,
                    scopes: scopes
                        .iter()
                        .map(|scope| {
                            scope
                                .parse::<ApiScope>()
                                .map_err(|_| invalid(format!("unknown scope {scope:?}")))
                        })
                        .collect::<Result<_, _>>()?,
                    creator_roles: roles(creator_roles)?,
                },
                common,
            ),
        };
        Ok(Self {
            tenant,
            actor,
            limits: RateLimits {
                requests_per_second: common.rps,
                burst: common.burst,
            },
            tenant_verified: common.verified,
            expires_at: common.expires_at,
        })
    }
}
