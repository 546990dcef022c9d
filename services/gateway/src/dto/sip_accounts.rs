//! The JSON bodies of `/v1/users/{id}/sip-account`. The password is
//! answered only when it is issued.

use chrono::{DateTime, Utc};
use serde::Serialize;
use switchboard_edge_api::{SipAccountView, SipCredentials};
use utoipa::ToSchema;
use uuid::Uuid;

/// A user's SIP account, for a desk phone or a softphone.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SipAccount)]
pub struct SipAccountDto {
    pub user_id: Uuid,
    /// The digest username the phone registers with.
    #[schema(example = "a3f9c2e81b07d")]
    pub username: String,
    /// The tenant's SIP domain: where the phone registers (the digest realm).
    #[schema(example = "acme.sip.example.com")]
    pub domain: String,
    /// False while the user is not active: the phone cannot register.
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<SipAccountView> for SipAccountDto {
    fn from(account: SipAccountView) -> Self {
        Self {
            user_id: account.user_id.as_uuid(),
            username: account.username,
            domain: account.domain,
            active: account.active,
            created_at: account.created_at,
            updated_at: account.updated_at,
        }
    }
}

/// A SIP account's credentials: the password is shown this once, and only
/// its digest hashes are kept.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SipCredentials)]
pub struct SipCredentialsDto {
    pub username: String,
    pub password: String,
    pub domain: String,
}

impl From<SipCredentials> for SipCredentialsDto {
    fn from(credentials: SipCredentials) -> Self {
        Self {
            username: credentials.username,
            password: credentials.password,
            domain: credentials.domain,
        }
    }
}
