//! Which service owns each table (ARCHITECTURE.md: "a service reads and
//! writes only its own tables"). A service's code may name only its own
//! tables; what it needs of another's data comes through that service's
//! API or its events. `tests/ownership.rs` holds every service crate's
//! source to this map, and every table the migrations create to having an
//! owner here.

/// Who owns a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Owner {
    /// The node itself (`services/switchboard`: installation id, the
    /// migrator's bookkeeping).
    Platform,
    /// The event backbone (`crates/events`), which every service uses
    /// through its outbox, consumers and replay, never by table name.
    Events,
    Identity,
    Webhooks,
    Routing,
    Edge,
}

impl Owner {
    /// The owner's name: a service's directory under `services/`, or the
    /// backbone's crate.
    pub fn name(self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::Events => "events",
            Self::Identity => "identity",
            Self::Webhooks => "webhooks",
            Self::Routing => "routing",
            Self::Edge => "edge",
        }
    }

    /// The service crate under `services/` this owner's tables belong to,
    /// if it is one.
    pub fn service(self) -> Option<&'static str> {
        match self {
            Self::Platform | Self::Events => None,
            other => Some(other.name()),
        }
    }
}

/// Every table and its owner.
pub const TABLES: &[(&str, Owner)] = &[
    ("seaql_migrations", Owner::Platform),
    ("installation", Owner::Platform),
    // identity
    ("plans", Owner::Identity),
    ("tenants", Owner::Identity),
    ("tenant_slugs", Owner::Identity),
    ("credential_lookup", Owner::Identity),
    ("client_orgs", Owner::Identity),
    ("users", Owner::Identity),
    ("user_clients", Owner::Identity),
    ("api_keys", Owner::Identity),
    ("sessions", Owner::Identity),
    ("refresh_tokens", Owner::Identity),
    ("one_time_tokens", Owner::Identity),
    ("audit_events", Owner::Identity),
    ("seat_changes", Owner::Identity),
    // the event backbone
    ("event_log", Owner::Events),
    ("relay_leases", Owner::Events),
    ("relay_cursors", Owner::Events),
    ("processed_events", Owner::Events),
    ("event_redeliveries", Owner::Events),
    // webhooks
    ("webhook_endpoints", Owner::Webhooks),
    ("webhook_deliveries", Owner::Webhooks),
    ("webhook_attempts", Owner::Webhooks),
    // routing: configuration
    ("routing_skills", Owner::Routing),
    ("routing_reason_codes", Owner::Routing),
    ("routing_agent_groups", Owner::Routing),
    ("routing_schedules", Owner::Routing),
    ("routing_queues", Owner::Routing),
    ("routing_agent_profiles", Owner::Routing),
    ("routing_ring_groups", Owner::Routing),
    ("routing_voicemail_boxes", Owner::Routing),
    ("routing_flows", Owner::Routing),
    ("routing_inbound_rules", Owner::Routing),
    ("routing_numbers", Owner::Routing),
    ("routing_outbound_rules", Owner::Routing),
    ("routing_flow_versions", Owner::Routing),
    ("routing_references", Owner::Routing),
    ("routing_config_revisions", Owner::Routing),
    // routing: its projection of identity's events
    ("routing_directory_tenants", Owner::Routing),
    ("routing_directory_clients", Owner::Routing),
    ("routing_directory_users", Owner::Routing),
    // the edge
    ("edge_directory_tenants", Owner::Edge),
    ("edge_sip_accounts", Owner::Edge),
    ("edge_trunks", Owner::Edge),
];

/// The owner of `table`, if it is one of ours.
pub fn owner_of(table: &str) -> Option<Owner> {
    TABLES
        .iter()
        .find(|(name, _)| *name == table)
        .map(|(_, owner)| *owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_is_listed_once() {
        let mut names: Vec<&str> = TABLES.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "a table is listed twice");
        assert_eq!(owner_of("audit_events"), Some(Owner::Identity));
        assert_eq!(owner_of("routing_directory_users"), Some(Owner::Routing));
        assert_eq!(owner_of("nothing"), None);
    }
}
