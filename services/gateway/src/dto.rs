//! The JSON bodies of `/v1`: requests refuse unknown fields; responses
//! never carry a password hash or a stored token hash.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use switchboard_identity::{ApiKeyView, AuditEventView, ClientView, TenantView, Tokens, UserView};
use uuid::Uuid;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupBody {
    pub company: String,
    pub email: String,
    pub password: String,
    #[serde(default = "default_plan")]
    pub plan: String,
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    pub display_name: Option<String>,
}

fn default_plan() -> String {
    "trial".into()
}

fn default_time_zone() -> String {
    "UTC".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// The tenant's handle (its slug).
    pub tenant: String,
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    pub refresh_token: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    pub token: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitationBody {
    pub token: String,
    pub password: String,
    pub display_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantPatchBody {
    pub name: Option<String>,
    pub time_zone: Option<String>,
    pub plan: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserCreateBody {
    pub email: String,
    pub display_name: Option<String>,
    pub roles: Vec<String>,
    /// Absent or `null`: every client.
    pub clients: Option<Vec<Uuid>>,
    pub password: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    pub email: String,
    pub display_name: Option<String>,
    pub roles: Vec<String>,
    pub clients: Option<Vec<Uuid>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatchBody {
    pub display_name: Option<String>,
    pub roles: Option<Vec<String>>,
    pub status: Option<String>,
    /// Absent: unchanged; `null`: every client; a list: those clients.
    #[serde(default, deserialize_with = "present")]
    pub clients: Option<Option<Vec<Uuid>>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCreateBody {
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyCreateBody {
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
pub struct TokensDto {
    pub token_type: &'static str,
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
}

impl From<Tokens> for TokensDto {
    fn from(tokens: Tokens) -> Self {
        Self {
            token_type: "Bearer",
            expires_in: (tokens.access_expires_at - Utc::now()).num_seconds().max(0),
            access_token: tokens.access_token,
            access_expires_at: tokens.access_expires_at,
            refresh_token: tokens.refresh_token,
            refresh_expires_at: tokens.refresh_expires_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TenantDto {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub time_zone: String,
    pub status: &'static str,
    pub plan: String,
    pub seat_limit: u32,
    pub seats_used: u32,
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
}

impl From<TenantView> for TenantDto {
    fn from(view: TenantView) -> Self {
        Self {
            id: view.id.as_uuid(),
            name: view.name,
            slug: view.slug,
            time_zone: view.time_zone,
            status: view.status.as_str(),
            plan: view.plan,
            seat_limit: view.seat_limit,
            seats_used: view.seats_used,
            email_verified: view.email_verified,
            created_at: view.created_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct UserDto {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub roles: Vec<&'static str>,
    /// `null`: every client of the tenant.
    pub clients: Option<Vec<Uuid>>,
    pub status: &'static str,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<UserView> for UserDto {
    fn from(view: UserView) -> Self {
        Self {
            id: view.id.as_uuid(),
            email: view.email,
            display_name: view.display_name,
            roles: view.roles.iter().map(|role| role.as_str()).collect(),
            clients: view
                .clients
                .map(|clients| clients.into_iter().map(|client| client.as_uuid()).collect()),
            status: view.status.as_str(),
            created_at: view.created_at,
            updated_at: view.updated_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ClientDto {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<ClientView> for ClientDto {
    fn from(view: ClientView) -> Self {
        Self {
            id: view.id.as_uuid(),
            name: view.name,
            created_at: view.created_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ApiKeyDto {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyView> for ApiKeyDto {
    fn from(view: ApiKeyView) -> Self {
        Self {
            id: view.id.as_uuid(),
            name: view.name,
            prefix: view.prefix,
            scopes: view.scopes.iter().map(ToString::to_string).collect(),
            created_at: view.created_at,
            expires_at: view.expires_at,
            revoked_at: view.revoked_at,
            last_used_at: view.last_used_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AuditEventDto {
    pub id: Uuid,
    pub actor_type: String,
    pub actor_id: Option<Uuid>,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<Uuid>,
    pub client_address: Option<String>,
    pub details: serde_json::Value,
    pub occurred_at: DateTime<Utc>,
}

impl From<AuditEventView> for AuditEventDto {
    fn from(view: AuditEventView) -> Self {
        Self {
            id: view.id,
            actor_type: view.actor_type,
            actor_id: view.actor_id,
            action: view.action,
            target_type: view.target_type,
            target_id: view.target_id,
            client_address: view.client_address,
            details: view.details,
            occurred_at: view.occurred_at,
        }
    }
}
