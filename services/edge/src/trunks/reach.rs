//! How the edge reaches a carrier's trunk: its servers' addresses
//! ([`Locator`], RFC 3263 §4), over UDP from the edge's socket or over a
//! connection the edge opens (TCP, TLS checked against the host name), and
//! the SIP URIs that name it (RFC 3261 §19.1.1: the port when it is given
//! and not 5060, `;transport=` when it is not UDP). Shared by outbound
//! calls and registrations.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use rand::Rng;

use super::OutboundTarget;
use super::spec::OutboundTransport;
use crate::sip::transport::Connector;
use crate::sip::{Endpoint, Peer};

/// Finds a trunk's servers (RFC 3263 §4.2; the transport is always the
/// trunk's own, so NAPTR is skipped): an IP address is itself; a host name
/// with a port is looked up for A and AAAA records; a host name with port
/// 0 is looked up for SRV records of the transport's service (`_sip._udp`,
/// `_sip._tcp`, `_sips._tcp`), ordered by priority and, within one, by
/// RFC 2782's weighted random pick, each target's addresses in turn; with
/// no SRV record, the host's addresses at the transport's default port.
///
/// Written on hickory-resolver: the system resolver (`getaddrinfo`) knows
/// no SRV records. Cheap to clone.
#[derive(Clone)]
pub struct Locator {
    resolver: Option<Arc<TokioResolver>>,
}

impl Default for Locator {
    /// The system's name servers (`/etc/resolv.conf`); without them, host
    /// names are resolved by the system alone and SRV is not looked up.
    fn default() -> Self {
        match TokioResolver::builder_tokio().and_then(|builder| builder.build()) {
            Ok(resolver) => Self {
                resolver: Some(Arc::new(resolver)),
            },
            Err(error) => {
                tracing::warn!(%error, "no DNS configuration: trunks' SRV records are not looked up");
                Self { resolver: None }
            }
        }
    }
}

impl Locator {
    /// Asks the name server at `address` only (a test's, or a site's own).
    pub fn with_name_server(address: SocketAddr) -> Self {
        let mut connection = ConnectionConfig::udp();
        connection.port = address.port();
        let server = NameServerConfig::new(address.ip(), true, vec![connection]);
        let config = ResolverConfig::from_name_servers(vec![server]);
        let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .build()
            .expect("a resolver of one name server builds");
        Self {
            resolver: Some(Arc::new(resolver)),
        }
    }

    /// The addresses of `target`'s servers, in the order to try them.
    pub async fn addresses(&self, target: &OutboundTarget) -> Result<Vec<SocketAddr>, String> {
        let default_port = match target.transport {
            OutboundTransport::Tls => 5061,
            OutboundTransport::Udp | OutboundTransport::Tcp => 5060,
        };
        if let Ok(ip) = target.host.parse::<IpAddr>() {
            let port = if target.port == 0 {
                default_port
            } else {
                target.port
            };
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let found = if target.port != 0 {
            self.host_addresses(&target.host, target.port).await?
        } else {
            match self.by_srv(target).await? {
                found if !found.is_empty() => found,
                _ => self.host_addresses(&target.host, default_port).await?,
            }
        };
        if found.is_empty() {
            return Err(format!(
                "trunk {:?}: {} has no address",
                target.trunk, target.host
            ));
        }
        Ok(found)
    }

    async fn host_addresses(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        match &self.resolver {
            Some(resolver) => Ok(resolver
                .lookup_ip(host)
                .await
                .map_err(|error| format!("{host}: {error}"))?
                .iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect()),
            None => Ok(tokio::net::lookup_host((host, port))
                .await
                .map_err(|error| format!("{host}: {error}"))?
                .collect()),
        }
    }

    /// The addresses the SRV records of `target`'s host point to; none
    /// when it has no such records.
    async fn by_srv(&self, target: &OutboundTarget) -> Result<Vec<SocketAddr>, String> {
        let Some(resolver) = &self.resolver else {
            return Ok(Vec::new());
        };
        let service = match target.transport {
            OutboundTransport::Udp => "_sip._udp",
            OutboundTransport::Tcp => "_sip._tcp",
            OutboundTransport::Tls => "_sips._tcp",
        };
        let name = format!("{service}.{}.", target.host.trim_end_matches('.'));
        let Ok(lookup) = resolver.lookup(name.as_str(), RecordType::SRV).await else {
            // No records (or no answer): the host itself, as §4.2 says.
            return Ok(Vec::new());
        };
        let records: Vec<(u16, u16, u16, String)> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::SRV(srv) => {
                    Some((srv.priority, srv.weight, srv.port, srv.target.to_ascii()))
                }
                _ => None,
            })
            // "." says the service is not offered here (RFC 2782).
            .filter(|(_, _, _, host)| host != ".")
            .collect();
        let ordered = srv_order(records);
        let mut addresses = Vec::new();
        for (port, host) in ordered {
            match self.host_addresses(host.trim_end_matches('.'), port).await {
                Ok(found) => addresses.extend(found),
                Err(why) => tracing::debug!(why, "an SRV target has no address"),
            }
        }
        Ok(addresses)
    }
}

/// SRV records (priority, weight, port, target) in the order to try
/// them (RFC 2782): by priority, then within one priority by running sums
/// of weights over a random pick, zero weights first in the list so they
/// are picked rarely.
fn srv_order(mut records: Vec<(u16, u16, u16, String)>) -> Vec<(u16, String)> {
    records.sort_by_key(|(priority, ..)| *priority);
    let mut ordered = Vec::new();
    let mut rng = rand::rng();
    while !records.is_empty() {
        let priority = records[0].0;
        let mut group: Vec<_> = records
            .iter()
            .filter(|record| record.0 == priority)
            .cloned()
            .collect();
        records.retain(|record| record.0 != priority);
        group.sort_by_key(|record| record.1 != 0);
        while !group.is_empty() {
            let total: u32 = group.iter().map(|record| u32::from(record.1)).sum();
            let pick = rng.random_range(0..=total);
            let mut sum = 0;
            let index = group
                .iter()
                .position(|record| {
                    sum += u32::from(record.1);
                    sum >= pick
                })
                .unwrap_or(0);
            let (_, _, port, host) = group.remove(index);
            ordered.push((port, host));
        }
    }
    ordered
}

/// Where and how to send requests to `target`: over UDP, its first
/// server; over TCP or TLS, the first server that takes the connection
/// (RFC 3263 §4.3).
pub async fn reach(
    endpoint: &Endpoint,
    connector: Option<&Connector>,
    target: &OutboundTarget,
) -> Result<Peer, String> {
    Ok(reach_with_spares(endpoint, connector, target).await?.0)
}

/// As [`reach`], with the servers left to fail over to, in order: over
/// UDP, the others after the first, for a caller to try when the first
/// times out or answers 503 (RFC 3263 §4.3); over TCP or TLS none, since
/// a server that refuses the connection is passed over here already.
pub async fn reach_with_spares(
    endpoint: &Endpoint,
    connector: Option<&Connector>,
    target: &OutboundTarget,
) -> Result<(Peer, Vec<SocketAddr>), String> {
    let locator = connector
        .map(Connector::locator)
        .cloned()
        .unwrap_or_default();
    let mut addresses = locator.addresses(target).await?;
    match target.transport {
        OutboundTransport::Udp => {
            let first = addresses.remove(0);
            Ok((udp_peer(endpoint, first)?, addresses))
        }
        OutboundTransport::Tcp | OutboundTransport::Tls => {
            let connector = connector.ok_or("the edge makes no connections")?;
            let server = match target.transport {
                OutboundTransport::Tls => Some(
                    rustls::pki_types::ServerName::try_from(target.host.clone()).map_err(|_| {
                        format!(
                            "trunk {:?}: {:?} is no TLS server name",
                            target.trunk, target.host
                        )
                    })?,
                ),
                _ => None,
            };
            let mut failures = Vec::new();
            for address in addresses {
                match connector.connect(address, server.clone()).await {
                    Ok(peer) => return Ok((peer, Vec::new())),
                    Err(error) => failures.push(format!("{address}: {error}")),
                }
            }
            Err(format!(
                "trunk {:?}: no connection over {}: {}",
                target.trunk,
                target.transport.as_str(),
                failures.join("; ")
            ))
        }
    }
}

/// The edge's UDP socket, sending to `address`.
pub fn udp_peer(endpoint: &Endpoint, address: SocketAddr) -> Result<Peer, String> {
    endpoint
        .udp_peer(address)
        .ok_or_else(|| "the edge has no UDP socket".to_owned())
}

/// The trunk's `host[:port]`, as its URIs write it (no port when it is
/// found in DNS SRV records).
pub fn authority(target: &OutboundTarget) -> String {
    if target.port == 5060 || target.port == 0 {
        target.host.clone()
    } else {
        format!("{}:{}", target.host, target.port)
    }
}

/// `;transport=tcp` or `;transport=tls`; nothing for UDP.
pub fn transport_param(transport: OutboundTransport) -> String {
    match transport {
        OutboundTransport::Udp => String::new(),
        other => format!(";transport={}", other.as_str()),
    }
}
