//! Channels to services on other nodes (`[peers]` in the config).

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// How long connecting to a peer may take before the call fails
/// `UNAVAILABLE`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The endpoint of one peer address (`http://identity:9090`), with the
/// connection settings every peer channel uses.
fn endpoint(url: &str) -> Result<Endpoint, String> {
    Ok(Endpoint::from_shared(url.to_owned())
        .map_err(|error| format!("`{url}` is not a gRPC address: {error}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true))
}

/// A channel to the peer at `url`, connected on first use and reconnected
/// after a failure, so a node starts whatever order its peers come up in.
/// Fails only on a malformed address.
pub fn connect_lazy(url: &str) -> Result<Channel, String> {
    Ok(endpoint(url)?.connect_lazy())
}

/// A channel to a peer's replicas: one address is [`connect_lazy`];
/// several are balanced (power of two choices), a replica that stops
/// answering is left out while it does.
pub fn connect_balanced(addresses: &[String]) -> Result<Channel, String> {
    match addresses {
        [] => Err("no peer address given".to_owned()),
        [one] => connect_lazy(one),
        many => {
            let endpoints = many
                .iter()
                .map(|url| endpoint(url))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Channel::balance_list(endpoints.into_iter()))
        }
    }
}
