//! The rules of identity, without I/O: how roles, scopes and client
//! lists are stored, who takes a seat, what a key may be given. The
//! vocabulary (roles, permissions, scopes, statuses, input validation) is
//! in `switchboard_identity_api::domain`, re-exported here.

pub use switchboard_identity_api::domain::*;

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

/// Whether a user with these roles takes a seat.
pub fn takes_seat(roles: &[Role]) -> bool {
    roles.iter().any(|role| role.takes_seat())
}

pub fn scopes_to_text(scopes: &[ApiScope]) -> String {
    scopes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
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
