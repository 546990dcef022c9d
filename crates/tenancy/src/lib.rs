//! Who a request acts for: typed ids and the tenant context every store
//! method takes first.
//!
//! A [`Tenant`] is (tenant id, allowed client organizations). It is built
//! only from a verified credential (JWT or API key) at the gateway, carried
//! to services in gRPC metadata, and never taken from a request path or
//! body. An outsourcer (BPO) tenant holds client organizations; a user
//! scoped to some clients sees only resources of those clients (resources
//! with no client belong to the tenant as a whole and are visible to
//! users with [`ClientScope::All`] only).

mod ids;

use std::collections::BTreeSet;

pub use ids::{
    AgentId, ApiKeyId, ClientId, ContactId, ParseIdError, QueueId, RingGroupId, SessionId, SkillId,
    TenantId, TrunkId, UserId, VoicemailBoxId,
};

/// Which client organizations of its tenant a principal may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientScope {
    /// Every client, and tenant-wide resources.
    All,
    /// Only resources of these clients.
    Only(BTreeSet<ClientId>),
}

impl ClientScope {
    /// Whether a resource with this client scope (`None`: tenant-wide) is
    /// visible.
    pub fn allows(&self, client: Option<ClientId>) -> bool {
        match (self, client) {
            (ClientScope::All, _) => true,
            (ClientScope::Only(allowed), Some(client)) => allowed.contains(&client),
            (ClientScope::Only(_), None) => false,
        }
    }

    /// The allowed clients, or `None` for all.
    pub fn as_list(&self) -> Option<Vec<ClientId>> {
        match self {
            ClientScope::All => None,
            ClientScope::Only(clients) => Some(clients.iter().copied().collect()),
        }
    }

    /// The clients both scopes allow.
    pub fn within(&self, other: &ClientScope) -> ClientScope {
        match (self, other) {
            (ClientScope::All, scope) | (scope, ClientScope::All) => scope.clone(),
            (ClientScope::Only(mine), ClientScope::Only(theirs)) => {
                ClientScope::Only(mine.intersection(theirs).copied().collect())
            }
        }
    }

    /// Whether everything this scope allows, `other` allows too.
    pub fn is_within(&self, other: &ClientScope) -> bool {
        match (self, other) {
            (_, ClientScope::All) => true,
            (ClientScope::All, ClientScope::Only(_)) => false,
            (ClientScope::Only(mine), ClientScope::Only(theirs)) => mine.is_subset(theirs),
        }
    }

    pub fn from_list(list: Option<Vec<ClientId>>) -> Self {
        match list {
            None => ClientScope::All,
            Some(clients) => ClientScope::Only(clients.into_iter().collect()),
        }
    }
}

/// The tenant a piece of work acts for. Every store method that touches
/// tenant data takes one first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    id: TenantId,
    clients: ClientScope,
}

impl Tenant {
    /// A context for the whole tenant (every client).
    pub fn whole(id: TenantId) -> Self {
        Self {
            id,
            clients: ClientScope::All,
        }
    }

    /// A context limited to some client organizations.
    pub fn scoped(id: TenantId, clients: ClientScope) -> Self {
        Self { id, clients }
    }

    pub fn id(&self) -> TenantId {
        self.id
    }

    pub fn clients(&self) -> &ClientScope {
        &self.clients
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_scope_limits_what_is_visible() {
        let a = ClientId::new();
        let b = ClientId::new();
        assert!(ClientScope::All.allows(None));
        assert!(ClientScope::All.allows(Some(a)));
        let only_a = ClientScope::Only([a].into());
        assert!(only_a.allows(Some(a)));
        assert!(!only_a.allows(Some(b)));
        assert!(
            !only_a.allows(None),
            "tenant-wide resources are not a client's"
        );
    }

    #[test]
    fn scopes_intersect_and_nest() {
        let a = ClientId::new();
        let b = ClientId::new();
        let c = ClientId::new();
        let ab = ClientScope::Only([a, b].into());
        let bc = ClientScope::Only([b, c].into());
        assert_eq!(ab.within(&bc), ClientScope::Only([b].into()));
        assert_eq!(ClientScope::All.within(&ab), ab);
        assert_eq!(ab.within(&ClientScope::All), ab);
        assert_eq!(ClientScope::All.within(&ClientScope::All), ClientScope::All);
        assert!(ClientScope::Only([a].into()).is_within(&ab));
        assert!(!ab.is_within(&bc));
        assert!(!ClientScope::All.is_within(&ab));
        assert!(ab.is_within(&ClientScope::All));
        assert!(
            ClientScope::Only([].into()).is_within(&ab),
            "nothing is within anything"
        );
    }
}
