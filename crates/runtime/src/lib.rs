//! The runtime every Switchboard service runs in.
//!
//! A [`Node`] is one process: it connects the backends, binds the HTTP and
//! gRPC listeners, and hosts the services it is given. It follows the
//! options → service → handle pattern: [`NodeOptions`] (what to run) →
//! [`Node::build`] (bound, not yet serving) → [`Node::start`] →
//! [`NodeHandle`] (running; [`NodeHandle::shutdown`] drains it).
//!
//! Every node serves `/healthz` (the process is up), `/readyz` (every
//! backend answers), Prometheus `/metrics`, gRPC health
//! (`grpc.health.v1`), gRPC reflection and `switchboard.system.v1`. While a
//! backend is down, `/readyz` and gRPC health say so and requests to the
//! services get 503 / `UNAVAILABLE`, until the backend is back.

mod error;
mod grpc;
mod http;
pub mod metrics;
mod node;
mod readiness;
pub mod telemetry;

pub use error::RuntimeError;
pub use node::{Node, NodeHandle, NodeOptions, ServiceParts, Worker};
pub use readiness::{Readiness, ReadinessState};
