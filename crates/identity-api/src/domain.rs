//! Identity's vocabulary, without I/O: roles and what they may do, API
//! key scopes, tenant and user statuses, and the validation of what users
//! type (callers use it to document and pre-check their inputs).

mod validate;

use std::fmt;
use std::str::FromStr;

pub use switchboard_rpc::FieldError;
pub use validate::{
    normalize_email, slugify, validate_display_name, validate_name, validate_time_zone,
};

/// What a user is to its tenant. Several roles may be held at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Owner,
    Admin,
    Supervisor,
    Agent,
    QualityAnalyst,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Supervisor,
        Role::Agent,
        Role::QualityAnalyst,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Agent => "agent",
            Role::QualityAnalyst => "quality_analyst",
        }
    }

    /// Whether holding this role takes a paid seat.
    pub fn takes_seat(self) -> bool {
        matches!(self, Role::Agent | Role::Supervisor)
    }

    fn grants(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Owner => true,
            Role::Admin => permission != ManageBilling,
            Role::Supervisor => matches!(
                permission,
                ReadTenant | ReadUsers | ReadClients | ReadRouting | ForceRoutingMode
            ),
            Role::QualityAnalyst => {
                matches!(permission, ReadTenant | ReadUsers | ReadClients)
            }
            Role::Agent => matches!(permission, ReadTenant),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| format!("unknown role {text:?}; roles are owner, admin, supervisor, agent, quality_analyst"))
    }
}

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    ReadTenant,
    ManageTenant,
    ManageBilling,
    ReadUsers,
    ManageUsers,
    ReadClients,
    ManageClients,
    ManageApiKeys,
    ReadAudit,
    /// Read the routing configuration (numbers, queues, flows, …).
    ReadRouting,
    /// Change the routing configuration.
    ManageRouting,
    /// Set or clear an inbound rule's forced mode (supervisors too).
    ForceRoutingMode,
}

impl Permission {
    pub const ALL: [Permission; 12] = [
        Permission::ReadTenant,
        Permission::ManageTenant,
        Permission::ManageBilling,
        Permission::ReadUsers,
        Permission::ManageUsers,
        Permission::ReadClients,
        Permission::ManageClients,
        Permission::ManageApiKeys,
        Permission::ReadAudit,
        Permission::ReadRouting,
        Permission::ManageRouting,
        Permission::ForceRoutingMode,
    ];

    /// The API key scope area and whether it writes.
    fn area(self) -> (&'static str, bool) {
        use Permission::*;
        match self {
            ReadTenant => ("tenant", false),
            ManageTenant | ManageBilling => ("tenant", true),
            ReadUsers => ("users", false),
            ManageUsers => ("users", true),
            ReadClients => ("clients", false),
            ManageClients => ("clients", true),
            ManageApiKeys => ("api_keys", true),
            ReadAudit => ("audit", false),
            ReadRouting => ("routing", false),
            ManageRouting | ForceRoutingMode => ("routing", true),
        }
    }
}

/// A set of roles as stored (comma-separated names); unknown names are
/// skipped.
pub fn roles_from_text(text: &str) -> Vec<Role> {
    text.split(',')
        .filter_map(|name| name.parse().ok())
        .collect()
}

/// A set of API scopes as stored (comma-separated); unknown ones are
/// skipped.
pub fn scopes_from_text(text: &str) -> Vec<ApiScope> {
    text.split(',')
        .filter_map(|scope| scope.parse().ok())
        .collect()
}

/// Whether any of `roles` grants `permission`.
pub fn roles_grant(roles: &[Role], permission: Permission) -> bool {
    roles.iter().any(|role| role.grants(permission))
}

/// An API key's scope: `read` (every read), `full` (everything but
/// managing API keys and billing), or one area (`users:read`,
/// `users:write`, …; write implies read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiScope {
    Read,
    Full,
    Area { area: String, write: bool },
}

pub const SCOPE_AREAS: &[&str] = &["tenant", "users", "clients", "audit", "routing"];

impl ApiScope {
    pub fn grants(&self, permission: Permission) -> bool {
        let (area, writes) = permission.area();
        match self {
            ApiScope::Read => !writes,
            ApiScope::Full => !matches!(
                permission,
                Permission::ManageApiKeys | Permission::ManageBilling
            ),
            ApiScope::Area {
                area: scope_area,
                write,
            } => scope_area == area && (*write || !writes),
        }
    }
}

impl fmt::Display for ApiScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiScope::Read => f.write_str("read"),
            ApiScope::Full => f.write_str("full"),
            ApiScope::Area { area, write } => {
                write!(f, "{area}:{}", if *write { "write" } else { "read" })
            }
        }
    }
}

impl FromStr for ApiScope {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "read" => Ok(ApiScope::Read),
            "full" => Ok(ApiScope::Full),
            _ => {
                let invalid = || {
                    format!(
                        "unknown scope {text:?}; scopes are read, full, or <area>:read|write with area one of {}",
                        SCOPE_AREAS.join(", ")
                    )
                };
                let (area, access) = text.split_once(':').ok_or_else(invalid)?;
                if !SCOPE_AREAS.contains(&area) {
                    return Err(invalid());
                }
                let write = match access {
                    "read" => false,
                    "write" => true,
                    _ => return Err(invalid()),
                };
                Ok(ApiScope::Area {
                    area: area.to_owned(),
                    write,
                })
            }
        }
    }
}

/// A tenant's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantStatus {
    Trial,
    Active,
    Suspended,
    Closed,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Trial => "trial",
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
            TenantStatus::Closed => "closed",
        }
    }

    /// Whether requests of this tenant are served.
    pub fn may_use_api(self) -> bool {
        matches!(self, TenantStatus::Trial | TenantStatus::Active)
    }
}

impl FromStr for TenantStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "trial" => Ok(TenantStatus::Trial),
            "active" => Ok(TenantStatus::Active),
            "suspended" => Ok(TenantStatus::Suspended),
            "closed" => Ok(TenantStatus::Closed),
            _ => Err(format!(
                "unknown tenant status {text:?}; statuses are trial, active, suspended, closed"
            )),
        }
    }
}

/// A user's lifecycle: invited (no password yet), active, disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Invited,
    Active,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Invited => "invited",
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
        }
    }

    /// Invited and active users hold their seat; disabled ones free it.
    pub fn holds_seat(self) -> bool {
        !matches!(self, UserStatus::Disabled)
    }
}

impl FromStr for UserStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "invited" => Ok(UserStatus::Invited),
            "active" => Ok(UserStatus::Active),
            "disabled" => Ok(UserStatus::Disabled),
            _ => Err(format!(
                "unknown user status {text:?}; statuses are invited, active, disabled"
            )),
        }
    }
}

/// What a permission lets one do, for error messages.
pub fn describe(permission: Permission) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_what_their_job_needs() {
        assert!(roles_grant(&[Role::Owner], Permission::ManageBilling));
        assert!(roles_grant(&[Role::Admin], Permission::ManageUsers));
        assert!(!roles_grant(&[Role::Admin], Permission::ManageBilling));
        assert!(roles_grant(&[Role::Supervisor], Permission::ReadUsers));
        assert!(!roles_grant(&[Role::Supervisor], Permission::ManageUsers));
        assert!(!roles_grant(&[Role::Agent], Permission::ReadUsers));
        assert!(!roles_grant(&[Role::Agent], Permission::ReadAudit));
        assert!(roles_grant(&[Role::Admin], Permission::ManageRouting));
        assert!(roles_grant(&[Role::Supervisor], Permission::ReadRouting));
        assert!(roles_grant(
            &[Role::Supervisor],
            Permission::ForceRoutingMode
        ));
        assert!(!roles_grant(&[Role::Supervisor], Permission::ManageRouting));
        assert!(!roles_grant(&[Role::Agent], Permission::ReadRouting));
    }

    #[test]
    fn api_scopes_limit_keys() {
        let read: ApiScope = "read".parse().unwrap();
        assert!(read.grants(Permission::ReadUsers) && !read.grants(Permission::ManageUsers));
        let full: ApiScope = "full".parse().unwrap();
        assert!(full.grants(Permission::ManageUsers) && !full.grants(Permission::ManageApiKeys));
        let users_write: ApiScope = "users:write".parse().unwrap();
        assert!(
            users_write.grants(Permission::ReadUsers)
                && users_write.grants(Permission::ManageUsers)
        );
        assert!(!users_write.grants(Permission::ReadAudit));
        assert!("users:delete".parse::<ApiScope>().is_err());
        assert!("billing:read".parse::<ApiScope>().is_err());
        assert_eq!(users_write.to_string().parse::<ApiScope>(), Ok(users_write));
    }

    #[test]
    fn roles_and_statuses_parse_their_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
        assert_eq!(
            "suspended".parse::<TenantStatus>(),
            Ok(TenantStatus::Suspended)
        );
        assert_eq!("invited".parse::<UserStatus>(), Ok(UserStatus::Invited));
    }
}
