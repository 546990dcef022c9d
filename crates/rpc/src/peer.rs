//! Channels to services on other nodes (`[peers]` in the config).

use std::time::Duration;

use tokio::sync::mpsc::Sender;
use tonic::transport::channel::Change;
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

/// How often each replica of a balanced peer is probed.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);

/// A channel to a peer's replicas: one address is [`connect_lazy`];
/// several are balanced (power of two choices), and a replica that stops
/// accepting connections is left out while it does: every [`PROBE_EVERY`]
/// each address is probed (a TCP connect), and only those that accept
/// take calls. If none accepts, all stay in, so calls fail `UNAVAILABLE`
/// rather than wait. Must be called inside a tokio runtime (the prober is
/// a task; it ends when the channel is dropped).
pub fn connect_balanced(addresses: &[String]) -> Result<Channel, String> {
    match addresses {
        [] => Err("no peer address given".to_owned()),
        [one] => connect_lazy(one),
        many => {
            let endpoints = many
                .iter()
                .map(|url| endpoint(url))
                .collect::<Result<Vec<_>, _>>()?;
            let (channel, changes) = Channel::balance_channel(endpoints.len());
            tokio::spawn(keep_replicas(endpoints, changes));
            Ok(channel)
        }
    }
}

/// Keeps the balancer's set of replicas to those accepting connections
/// (all of them when none does).
async fn keep_replicas(endpoints: Vec<Endpoint>, changes: Sender<Change<usize, Endpoint>>) {
    let mut taking_calls = vec![false; endpoints.len()];
    let mut probes = tokio::time::interval(PROBE_EVERY);
    probes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        probes.tick().await;
        let mut accepting = Vec::with_capacity(endpoints.len());
        for endpoint in &endpoints {
            accepting.push(accepts_connections(endpoint).await);
        }
        if !accepting.contains(&true) {
            accepting.fill(true);
        }
        for (index, endpoint) in endpoints.iter().enumerate() {
            let change = match (accepting[index], taking_calls[index]) {
                (true, false) => Change::Insert(index, endpoint.clone()),
                (false, true) => {
                    tracing::warn!(peer = %endpoint.uri(), "peer replica refuses connections; left out");
                    Change::Remove(index)
                }
                _ => continue,
            };
            if changes.send(change).await.is_err() {
                // The channel is gone.
                return;
            }
            taking_calls[index] = accepting[index];
        }
    }
}

/// Whether `endpoint`'s host accepts a TCP connection within the connect
/// timeout.
async fn accepts_connections(endpoint: &Endpoint) -> bool {
    let uri = endpoint.uri();
    let Some(host) = uri.host() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    });
    matches!(
        tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect((host, port))
        )
        .await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A balanced channel leaves a replica that refuses connections out,
    /// and takes it back once it accepts them again.
    #[tokio::test]
    async fn a_replica_that_refuses_connections_takes_no_calls() {
        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead_addr = dead.local_addr().unwrap();
        drop(dead);
        let endpoints = vec![
            endpoint(&format!("http://{}", live.local_addr().unwrap())).unwrap(),
            endpoint(&format!("http://{dead_addr}")).unwrap(),
        ];
        let (sender, mut changes) = tokio::sync::mpsc::channel(8);
        tokio::spawn(keep_replicas(endpoints, sender));
        let Some(Change::Insert(0, _)) = changes.recv().await else {
            panic!("the live replica was not taken in")
        };
        assert!(
            tokio::time::timeout(PROBE_EVERY * 3, changes.recv())
                .await
                .is_err(),
            "the refusing replica was taken in"
        );
        // It comes back on the same address: taken in again.
        let _back = tokio::net::TcpListener::bind(dead_addr).await.unwrap();
        let Some(Change::Insert(1, _)) = changes.recv().await else {
            panic!("the replica that came back was not taken in")
        };
        // The live one goes away: left out.
        drop(live);
        let Some(Change::Remove(0)) = changes.recv().await else {
            panic!("the replica that went away was not left out")
        };
    }

    /// With no replica accepting, all are kept so calls fail at once.
    #[tokio::test]
    async fn with_no_replica_up_all_stay_in() {
        let mut addresses = Vec::new();
        for _ in 0..2 {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addresses.push(listener.local_addr().unwrap());
        }
        let endpoints = addresses
            .iter()
            .map(|addr| endpoint(&format!("http://{addr}")).unwrap())
            .collect();
        let (sender, mut changes) = tokio::sync::mpsc::channel(8);
        tokio::spawn(keep_replicas(endpoints, sender));
        let mut inserted = Vec::new();
        for _ in 0..2 {
            match changes.recv().await {
                Some(Change::Insert(index, _)) => inserted.push(index),
                _ => panic!("not an insert"),
            }
        }
        inserted.sort();
        assert_eq!(inserted, vec![0, 1]);
    }
}
