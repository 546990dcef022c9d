//! How the edge reaches a carrier's trunk: the address of its host, over
//! UDP from the edge's socket or over a connection the edge opens (TCP,
//! TLS checked against the host name), and the SIP URIs that name it
//! (RFC 3261 §19.1.1: the port when it is not 5060, `;transport=` when it
//! is not UDP). Shared by outbound calls and registrations.

use super::OutboundTarget;
use super::spec::OutboundTransport;
use crate::sip::transport::Connector;
use crate::sip::{Endpoint, Peer};

/// Where and how to send requests to `target`.
pub async fn reach(
    endpoint: &Endpoint,
    connector: Option<&Connector>,
    target: &OutboundTarget,
) -> Result<Peer, String> {
    let address = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|error| format!("trunk {:?}: {}: {error}", target.trunk, target.host))?
        .next()
        .ok_or_else(|| format!("trunk {:?}: {} has no address", target.trunk, target.host))?;
    match target.transport {
        OutboundTransport::Udp => endpoint
            .udp_peer(address)
            .ok_or_else(|| "the edge has no UDP socket".to_owned()),
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
            connector.connect(address, server).await.map_err(|error| {
                format!(
                    "trunk {:?}: connecting to {address} over {}: {error}",
                    target.trunk,
                    target.transport.as_str()
                )
            })
        }
    }
}

/// The trunk's `host[:port]`, as its URIs write it.
pub fn authority(target: &OutboundTarget) -> String {
    if target.port == 5060 {
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
