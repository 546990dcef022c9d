//! The JSON bodies of `/v1`: requests refuse unknown fields; responses
//! never carry a password hash or a stored token hash. Each derives
//! [`ToSchema`] under the name the OpenAPI document shows (`as = …`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use switchboard_identity_api::{
    ApiKeyView, AuditEventView, ClientView, CreatedApiKey, Invitation, SignupOutcome, TenantView,
    Tokens, UserView,
};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::openapi::{ApiScopeSchema, RoleSchema, TenantStatusSchema, UserStatusSchema};

pub(crate) mod agents;
pub(crate) mod routing_config;
pub(crate) mod sip_accounts;
pub(crate) mod trunks;
pub(crate) mod webhooks;

/// A new tenant and its owner.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SignupRequest)]
pub struct SignupBody {
    /// The company's name (1 to 100 characters); the tenant's handle
    /// (`slug`) is made from it.
    #[schema(
        example = "Acme Support",
        min_length = 1,
        max_length = 100,
        pattern = r"\S"
    )]
    pub company: String,
    /// The owner's email address, which signs in.
    #[schema(example = "founder@acme.example.com", format = Email, max_length = 254)]
    pub email: String,
    /// 10 to 256 characters, not a common password, and (under 16
    /// characters) of more than one kind of character.
    #[schema(format = Password, min_length = 10, max_length = 256)]
    pub password: String,
    /// The plan's code: only `trial` (other plans come through billing).
    #[serde(default = "default_plan")]
    #[schema(default = "trial", example = "starter")]
    pub plan: String,
    /// An IANA time zone.
    #[serde(default = "default_time_zone")]
    #[schema(default = "UTC", example = "Europe/Paris")]
    pub time_zone: String,
    /// The owner's name as shown to others (default: from the email).
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub display_name: Option<String>,
}

fn default_plan() -> String {
    "trial".into()
}

fn default_time_zone() -> String {
    "UTC".into()
}

/// A user's credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = LoginRequest)]
pub struct LoginBody {
    /// The tenant's handle (its slug).
    #[schema(example = "acme-support")]
    pub tenant: String,
    #[schema(example = "founder@acme.example.com")]
    pub email: String,
    #[schema(format = Password)]
    pub password: String,
}

/// A refresh token from a login, signup, refresh or accepted invitation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RefreshRequest)]
pub struct RefreshBody {
    pub refresh_token: String,
}

/// The one-time email-verification token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = VerifyEmailRequest)]
pub struct TokenBody {
    pub token: String,
}

/// The invitation token, and the password the invited user chooses.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AcceptInvitationRequest)]
pub struct AcceptInvitationBody {
    pub token: String,
    /// 10 to 256 characters (the rules of signup).
    #[schema(format = Password, min_length = 10, max_length = 256)]
    pub password: String,
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub display_name: Option<String>,
}

/// The fields to change; absent ones are unchanged.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TenantPatch)]
pub struct TenantPatchBody {
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: Option<String>,
    /// An IANA time zone.
    pub time_zone: Option<String>,
    /// Refused (400): plans are not chosen here, but through billing
    /// (until then, an operator sets them).
    pub plan: Option<String>,
}

/// A new user: with a `password`, active at once; without, invited (the
/// answer carries the invitation).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewUser)]
pub struct UserCreateBody {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub display_name: Option<String>,
    #[schema(value_type = Vec<RoleSchema>)]
    pub roles: Vec<String>,
    /// Absent or `null`: every client.
    pub clients: Option<Vec<Uuid>>,
    /// 10 to 256 characters (the rules of signup).
    #[schema(format = Password, min_length = 10, max_length = 256)]
    pub password: Option<String>,
}

/// A user to invite: created without a password, active once they accept.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewInvitation)]
pub struct InviteBody {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub display_name: Option<String>,
    #[schema(value_type = Vec<RoleSchema>)]
    pub roles: Vec<String>,
    /// Absent or `null`: every client.
    pub clients: Option<Vec<Uuid>>,
}

/// The fields to change; absent ones are unchanged.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UserPatch)]
pub struct UserPatchBody {
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub display_name: Option<String>,
    #[schema(value_type = Option<Vec<RoleSchema>>)]
    pub roles: Option<Vec<String>>,
    #[schema(value_type = Option<UserStatusSchema>)]
    pub status: Option<String>,
    /// Absent: unchanged; `null`: every client; a list: those clients.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<Uuid>>)]
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

/// A new client organization.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewClient)]
pub struct ClientCreateBody {
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
}

/// A new API key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewApiKey)]
pub struct ApiKeyCreateBody {
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    /// `read` (every read), `full` (everything but managing API keys and
    /// billing), or one area's `<area>:read` / `<area>:write` (write implies
    /// read); at least one.
    #[schema(value_type = Vec<ApiScopeSchema>, min_items = 1, example = json!(["users:read", "clients:write"]))]
    pub scopes: Vec<String>,
    /// When the key stops working; absent: never.
    pub expires_at: Option<DateTime<Utc>>,
}

/// An access token (for `Authorization: Bearer`) and the refresh token
/// that gets the next one.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Tokens)]
pub struct TokensDto {
    /// Always `Bearer`.
    #[schema(value_type = String, example = "Bearer")]
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

/// The caller's tenant.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Tenant)]
pub struct TenantDto {
    pub id: Uuid,
    pub name: String,
    /// The handle users sign in with.
    pub slug: String,
    pub time_zone: String,
    #[schema(value_type = TenantStatusSchema)]
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

/// A user of the tenant.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserDto {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    #[schema(value_type = Vec<RoleSchema>)]
    pub roles: Vec<&'static str>,
    /// `null`: every client of the tenant.
    #[schema(required = true)]
    pub clients: Option<Vec<Uuid>>,
    #[schema(value_type = UserStatusSchema)]
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

/// A client organization of an outsourcer tenant.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Client)]
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

/// An API key, without its secret.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ApiKey)]
pub struct ApiKeyDto {
    pub id: Uuid,
    pub name: String,
    /// The first characters of the secret, to recognize the key by.
    pub prefix: String,
    #[schema(value_type = Vec<ApiScopeSchema>)]
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// `null`: never expires.
    #[schema(required = true)]
    pub expires_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub revoked_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
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

/// One entry of the tenant's audit log.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditEvent)]
pub struct AuditEventDto {
    pub id: Uuid,
    pub actor_type: String,
    #[schema(required = true)]
    pub actor_id: Option<Uuid>,
    pub action: String,
    pub target_type: String,
    #[schema(required = true)]
    pub target_id: Option<Uuid>,
    #[schema(required = true)]
    pub client_address: Option<String>,
    /// What changed, by action; any JSON value.
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

/// The answer to a signup: the tenant, its owner, and the owner's tokens.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Signup)]
pub struct SignupDto {
    pub tenant: TenantDto,
    pub user: UserDto,
    pub tokens: TokensDto,
    /// The email-verification token; only where the node is set to expose
    /// it (development), since it is otherwise mailed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub email_verification_token: Option<String>,
}

impl SignupDto {
    pub fn new(outcome: SignupOutcome, expose_verification_token: bool) -> Self {
        Self {
            tenant: outcome.tenant.into(),
            user: outcome.owner.into(),
            tokens: outcome.tokens.into(),
            email_verification_token: expose_verification_token
                .then_some(outcome.verification_token),
        }
    }
}

/// A one-time invitation token: the invited user sets a password with it
/// (`POST /v1/auth/accept-invitation`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Invitation)]
pub struct InvitationDto {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl From<Invitation> for InvitationDto {
    fn from(invitation: Invitation) -> Self {
        Self {
            token: invitation.token,
            expires_at: invitation.expires_at,
        }
    }
}

/// A created user, with the invitation when they were invited.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CreatedUser)]
pub struct CreatedUserDto {
    #[serde(flatten)]
    pub user: UserDto,
    /// Present when the user was invited (created without a password).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = InvitationDto, required = false)]
    pub invitation: Option<InvitationDto>,
}

/// A created API key, with its secret.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CreatedApiKey)]
pub struct CreatedApiKeyDto {
    #[serde(flatten)]
    pub key: ApiKeyDto,
    /// The key itself, for `Authorization: Bearer`: shown this once, never
    /// stored.
    pub secret: String,
}

impl From<CreatedApiKey> for CreatedApiKeyDto {
    fn from(created: CreatedApiKey) -> Self {
        Self {
            key: created.key.into(),
            secret: created.secret,
        }
    }
}
