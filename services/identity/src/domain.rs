//! The rules of identity, without I/O: roles and what they may do, seats,
//! statuses, API key scopes, and validation of what users type.

mod validate;

use std::fmt;
use std::str::FromStr;

pub use validate::{
    FieldError, normalize_email, slugify, validate_display_name, validate_name, validate_time_zone,
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

/// A set of roles, stored as comma-separated names.
pub fn roles_to_text(roles: &[Role]) -> String {
    let mut sorted = roles.to_vec();
    sorted.sort();
    sorted.dedup();
    sorted
        .iter()
        .map(|role| role.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub fn roles_from_text(text: &str) -> Vec<Role> {
    text.split(',')
        .filter_map(|name| name.parse().ok())
        .collect()
}

/// Whether a user with these roles takes a seat.
pub fn takes_seat(roles: &[Role]) -> bool {
    roles.iter().any(|role| role.takes_seat())
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

pub fn scopes_to_text(scopes: &[ApiScope]) -> String {
    scopes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

pub fn scopes_from_text(text: &str) -> Vec<ApiScope> {
    text.split(',')
        .filter_map(|scope| scope.parse().ok())
        .collect()
}

/// A permission `scope` grants that `roles` do not: a key with that scope
/// would give its creator more than they hold.
pub fn scope_beyond_roles(scope: &ApiScope, roles: &[Role]) -> Option<Permission> {
    Permission::ALL
        .into_iter()
        .find(|permission| scope.grants(*permission) && !roles_grant(roles, *permission))
}

/// A client list as stored (comma-separated ids).
pub fn client_ids_to_text(clients: &[uuid::Uuid]) -> String {
    clients
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

pub fn client_ids_from_text(text: &str) -> Vec<uuid::Uuid> {
    text.split(',').filter_map(|id| id.parse().ok()).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_never_reaches_beyond_its_creators_roles() {
        let full = ApiScope::Full;
        assert_eq!(scope_beyond_roles(&full, &[Role::Owner]), None);
        assert_eq!(scope_beyond_roles(&full, &[Role::Admin]), None);
        assert!(scope_beyond_roles(&full, &[Role::Supervisor]).is_some());
        let read = ApiScope::Read;
        assert_eq!(
            scope_beyond_roles(&read, &[Role::Supervisor]),
            Some(Permission::ReadAudit)
        );
        let routing_read: ApiScope = "routing:read".parse().unwrap();
        assert_eq!(scope_beyond_roles(&routing_read, &[Role::Supervisor]), None);
        assert_eq!(
            scope_beyond_roles(&routing_read, &[Role::Agent]),
            Some(Permission::ReadRouting)
        );
    }

    #[test]
    fn only_agents_and_supervisors_take_seats() {
        assert!(takes_seat(&[Role::Agent]));
        assert!(takes_seat(&[Role::Admin, Role::Supervisor]));
        assert!(!takes_seat(&[
            Role::Owner,
            Role::Admin,
            Role::QualityAnalyst
        ]));
        assert!(!takes_seat(&[]));
    }

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
        assert_eq!(
            scopes_from_text(&scopes_to_text(&[read.clone(), users_write.clone()])),
            vec![read, users_write]
        );
    }

    #[test]
    fn roles_round_trip_through_text() {
        let roles = vec![Role::Supervisor, Role::Agent, Role::Agent];
        assert_eq!(roles_to_text(&roles), "supervisor,agent");
        assert_eq!(
            roles_from_text("supervisor,agent"),
            vec![Role::Supervisor, Role::Agent]
        );
        assert!("root".parse::<Role>().is_err());
    }
}
