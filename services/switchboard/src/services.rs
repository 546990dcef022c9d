//! The services this binary can host, and `--services` parsing.

use anyhow::bail;

/// Every service that exists, with what it does. The node itself always
/// serves health, readiness, metrics and `system` (node info).
pub const KNOWN: &[(&str, &str)] = &[
    ("system", "node info over gRPC: version, services, backends"),
    (
        "identity",
        "tenants, users, credentials over gRPC (switchboard.identity.v1)",
    ),
    (
        "events",
        "the outbox relay: publishes every service's events to the bus, sends replays",
    ),
    (
        "webhooks",
        "delivers events to tenants' webhook endpoints: signed, retried for 24 h",
    ),
    (
        "routing",
        "calls from the edge over gRPC (switchboard.routing.v1) and the ACD: agent states, queues, offers; one owner per tenant (leases in the cache), events to the outbox",
    ),
    (
        "edge",
        "SIP on UDP and TCP: agents' phones register to their tenant's domain (digest auth); calls come with the B2BUA",
    ),
    (
        "gateway",
        "the public REST API /v1 (signup, auth, tenant, users, API keys, webhooks, audit, agents, queues) and its WebSockets, with identity, webhooks and routing in process",
    ),
];

/// `--services`' help: every known service with what it does.
pub fn help() -> String {
    let mut help = String::from("Comma-separated services to run, or `all`:\n");
    for (name, what) in KNOWN {
        help.push_str(&format!("  {name:<9} {what}\n"));
    }
    help
}

/// Every known service (`dev`, `--services all`).
pub fn all() -> Vec<&'static str> {
    KNOWN.iter().map(|(name, _)| *name).collect()
}

/// Parses `--services a,b` (or `all`); an unknown name is an error listing
/// the known ones.
pub fn select(names: &[String]) -> anyhow::Result<Vec<&'static str>> {
    let mut selected = Vec::new();
    for name in names
        .iter()
        .map(|name| name.trim())
        .filter(|name| !name.is_empty())
    {
        if name == "all" {
            return Ok(all());
        }
        match KNOWN.iter().find(|(known, _)| *known == name) {
            Some((known, _)) if !selected.contains(known) => selected.push(*known),
            Some(_) => {}
            None => bail!(
                "unknown service `{name}` in --services; known: all, {}",
                all().join(", ")
            ),
        }
    }
    if selected.is_empty() {
        bail!(
            "--services names no service; known: all, {}",
            all().join(", ")
        );
    }
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_selects_every_known_service() {
        assert_eq!(select(&["all".into()]).unwrap(), all());
    }

    #[test]
    fn duplicates_and_blanks_are_ignored() {
        assert_eq!(
            select(&["system".into(), " system ".into(), "".into()]).unwrap(),
            vec!["system"]
        );
    }

    #[test]
    fn unknown_service_is_named() {
        let error = select(&["system".into(), "rooting".into()])
            .unwrap_err()
            .to_string();
        assert!(error.contains("`rooting`"), "{error}");
        assert!(
            error.contains("system") && error.contains("gateway") && error.contains("identity"),
            "{error}"
        );
    }
}
