//! Errors of building and running a node.

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot listen on {addr} ({key}): {source}")]
    Bind {
        key: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Backend(#[from] switchboard_platform::Error),
    #[error("gRPC server: {0}")]
    Grpc(String),
    #[error("telemetry: {0}")]
    Telemetry(String),
}
