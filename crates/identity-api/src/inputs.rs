//! What callers give identity: signups, new users and clients, API keys,
//! changes, and where a request came from. Passwords are never in a
//! `Debug` output.

use std::fmt;

use chrono::{DateTime, Utc};
use switchboard_tenancy::ClientId;

/// What a company gives to sign up.
#[derive(Clone, PartialEq)]
pub struct SignupRequest {
    pub company: String,
    pub email: String,
    pub password: String,
    pub display_name: Option<String>,
    pub plan: String,
    pub time_zone: String,
}

impl fmt::Debug for SignupRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignupRequest")
            .field("company", &self.company)
            .field("email", &self.email)
            .field("display_name", &self.display_name)
            .field("plan", &self.plan)
            .field("time_zone", &self.time_zone)
            .finish_non_exhaustive()
    }
}

/// A user to create. Without a password the user is invited: they set one
/// with the returned one-time token.
#[derive(Clone, PartialEq)]
pub struct NewUser {
    pub email: String,
    pub display_name: Option<String>,
    pub roles: Vec<String>,
    /// `None`: every client of the tenant.
    pub clients: Option<Vec<ClientId>>,
    pub password: Option<String>,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("display_name", &self.display_name)
            .field("roles", &self.roles)
            .field("clients", &self.clients)
            .field("with_password", &self.password.is_some())
            .finish()
    }
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserPatch {
    pub display_name: Option<String>,
    pub roles: Option<Vec<String>>,
    pub status: Option<String>,
    /// `Some(None)`: every client; `Some(Some(list))`: those clients.
    pub clients: Option<Option<Vec<ClientId>>>,
}

/// A client organization to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewClient {
    pub name: String,
}

/// An API key to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApiKey {
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Changes to the tenant; `None` leaves a field as it is. A `plan` is
/// refused: plans are set by operators.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantPatch {
    pub name: Option<String>,
    pub time_zone: Option<String>,
    pub plan: Option<String>,
}

/// Where a request came from, for the audit log and login throttling.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestOrigin {
    pub address: Option<String>,
}
