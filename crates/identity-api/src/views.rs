//! What identity returns: plain values, never a password hash or a stored
//! token hash.

use chrono::{DateTime, Utc};
use switchboard_tenancy::{ApiKeyId, ClientId, TenantId, UserId};

use crate::domain::{ApiScope, Role, TenantStatus, UserStatus};

#[derive(Debug, Clone, PartialEq)]
pub struct TenantView {
    pub id: TenantId,
    pub name: String,
    pub slug: String,
    pub time_zone: String,
    pub status: TenantStatus,
    pub plan: String,
    pub seat_limit: u32,
    pub seats_used: u32,
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserView {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    /// `None`: every client of the tenant.
    pub clients: Option<Vec<ClientId>>,
    pub status: UserStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClientView {
    pub id: ClientId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyView {
    pub id: ApiKeyId,
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub scopes: Vec<ApiScope>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A new API key: `secret` is shown this once and never stored.
#[derive(Clone, PartialEq)]
pub struct CreatedApiKey {
    pub key: ApiKeyView,
    pub secret: String,
}

impl std::fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApiKey")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEventView {
    pub id: uuid::Uuid,
    pub actor_type: String,
    pub actor_id: Option<uuid::Uuid>,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<uuid::Uuid>,
    pub client_address: Option<String>,
    pub details: serde_json::Value,
    pub occurred_at: DateTime<Utc>,
}

/// What a login, refresh or signup hands out.
#[derive(Clone, PartialEq)]
pub struct Tokens {
    pub access_token: String,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish_non_exhaustive()
    }
}

/// An invited user and the one-time token that lets them set a password
/// (sent by email; returned so the inviter's tooling can deliver it).
#[derive(Clone, PartialEq)]
pub struct Invitation {
    pub user: UserView,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for Invitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invitation")
            .field("user", &self.user)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, PartialEq)]
pub struct SignupOutcome {
    pub tenant: TenantView,
    pub owner: UserView,
    pub tokens: Tokens,
    /// The email-verification token (mailed when outbound email exists;
    /// until then logged).
    pub verification_token: String,
}

impl std::fmt::Debug for SignupOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignupOutcome")
            .field("tenant", &self.tenant)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}
