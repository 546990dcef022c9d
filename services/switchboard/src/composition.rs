//! Which service calls which, and where each peer of a node is: hosted
//! here (called in process, no serialization) or at an address from
//! `[peers]` (called over gRPC with a service credential). `serve
//! --services X` refuses a set whose peers are neither hosted nor given,
//! naming what is missing and how to fix it; `dev` hosts everything.

use std::collections::BTreeMap;

use anyhow::bail;
use switchboard_config::PeersConfig;

/// The services each service calls, by name. A service absent here calls
/// none.
pub const NEEDS: &[(&str, &[&str])] = &[
    ("gateway", &["identity", "routing", "webhooks", "edge"]),
    ("routing", &["identity"]),
    ("edge", &["routing"]),
];

/// Where a peer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// Hosted by this node.
    Local,
    /// At these gRPC addresses (several: balanced across replicas).
    Remote(Vec<String>),
}

/// The peers a node needs, for the services it hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub peers: BTreeMap<&'static str, Peer>,
}

impl Plan {
    /// Where `service` is; `None` when no hosted service needs it.
    pub fn peer(&self, service: &str) -> Option<&Peer> {
        self.peers.get(service)
    }
}

/// The services `service` calls.
pub fn needs(service: &str) -> &'static [&'static str] {
    NEEDS
        .iter()
        .find(|(name, _)| *name == service)
        .map_or(&[], |(_, needs)| needs)
}

/// Resolves every peer the `hosted` services need: hosted here first, else
/// the address configured in `[peers]`, else an error naming each missing
/// peer, who needs it and the two ways to provide it.
pub fn plan(hosted: &[&str], peers: &PeersConfig) -> anyhow::Result<Plan> {
    let mut plan = Plan::default();
    let mut missing: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for service in hosted {
        for &peer in needs(service) {
            if hosted.contains(&peer) {
                plan.peers.insert(peer, Peer::Local);
            } else if let Some(addresses) = peers.address(peer) {
                let addresses: Vec<String> = addresses
                    .split(',')
                    .map(str::trim)
                    .filter(|address| !address.is_empty())
                    .map(str::to_owned)
                    .collect();
                plan.peers.insert(peer, Peer::Remote(addresses));
            } else {
                missing.entry(peer).or_default().push(service);
            }
        }
    }
    if !missing.is_empty() {
        let lines: Vec<String> = missing
            .iter()
            .map(|(peer, by)| {
                format!(
                    "{peer} (needed by {}): host it here (--services {},{peer}) or give its address: [peers] {peer} = \"http://{peer}:9090\" (env SWITCHBOARD_PEERS__{})",
                    by.join(", "),
                    hosted.join(","),
                    peer.to_uppercase()
                )
            })
            .collect();
        bail!(
            "--services {} cannot run: {} missing:\n  {}",
            hosted.join(","),
            if missing.len() == 1 {
                "a peer is"
            } else {
                "peers are"
            },
            lines.join("\n  ")
        );
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The edge's address is given whenever webhooks' is.
    fn peers(identity: Option<&str>, routing: Option<&str>, webhooks: Option<&str>) -> PeersConfig {
        PeersConfig {
            identity: identity.map(str::to_owned),
            routing: routing.map(str::to_owned),
            webhooks: webhooks.map(str::to_owned),
            edge: webhooks.map(|_| "http://edge:9090".to_owned()),
        }
    }

    #[test]
    fn everything_hosted_needs_no_address() {
        let all = [
            "system", "identity", "events", "webhooks", "routing", "edge", "gateway",
        ];
        let plan = plan(&all, &PeersConfig::default()).unwrap();
        assert_eq!(plan.peer("identity"), Some(&Peer::Local));
        assert_eq!(plan.peer("routing"), Some(&Peer::Local));
        assert_eq!(plan.peer("webhooks"), Some(&Peer::Local));
    }

    #[test]
    fn a_lone_gateway_names_every_missing_peer_and_the_fix() {
        let error = plan(
            &["gateway"],
            &peers(Some("http://identity:9090"), None, None),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("--services gateway cannot run"), "{error}");
        assert!(error.contains("routing (needed by gateway)"), "{error}");
        assert!(error.contains("webhooks (needed by gateway)"), "{error}");
        assert!(error.contains("edge (needed by gateway)"), "{error}");
        assert!(!error.contains("identity (needed"), "{error}");
        assert!(
            error.contains("[peers] routing = \"http://routing:9090\""),
            "{error}"
        );
        assert!(error.contains("--services gateway,routing"), "{error}");
    }

    #[test]
    fn peers_are_local_when_hosted_and_remote_when_given() {
        let plan = plan(
            &["gateway", "identity"],
            &peers(
                Some("http://elsewhere:1"),
                Some("http://r1:9090, http://r2:9090"),
                Some("http://webhooks:9090"),
            ),
        )
        .unwrap();
        assert_eq!(plan.peer("identity"), Some(&Peer::Local), "hosted wins");
        assert_eq!(
            plan.peer("routing"),
            Some(&Peer::Remote(vec![
                "http://r1:9090".into(),
                "http://r2:9090".into()
            ]))
        );
        assert_eq!(
            plan.peer("webhooks"),
            Some(&Peer::Remote(vec!["http://webhooks:9090".into()]))
        );
    }

    #[test]
    fn the_edge_alone_needs_routing() {
        let error = plan(&["edge"], &PeersConfig::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("routing (needed by edge)"), "{error}");
        let plan = plan(&["edge"], &peers(None, Some("http://routing:9090"), None)).unwrap();
        assert_eq!(
            plan.peer("routing"),
            Some(&Peer::Remote(vec!["http://routing:9090".into()]))
        );
    }

    #[test]
    fn routing_alone_needs_identity() {
        let error = plan(&["routing"], &PeersConfig::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("identity (needed by routing)"), "{error}");
        assert!(
            plan(
                &["routing"],
                &peers(Some("http://identity:9090"), None, None)
            )
            .is_ok()
        );
        assert!(plan(&["identity", "events", "webhooks"], &PeersConfig::default()).is_ok());
    }
}
