//! The routing service as its callers see it.
//!
//! - [`config`]: [`RoutingConfigApi`](config::RoutingConfigApi), the
//!   routing configuration a tenant's admins manage (numbers, schedules,
//!   inbound rules, flows and their versions, queues, skills, agent
//!   profiles, …), its types and their validation, and
//!   [`RemoteRoutingConfig`](config::RemoteRoutingConfig), its tonic
//!   client (`switchboard.routing.v1.RoutingConfiguration`).
//!
//! - [`acd`]: [`RoutingApi`](acd::RoutingApi), a tenant's ACD (agents'
//!   and contacts' operations, reads, notices), and
//!   [`RemoteRouting`](acd::RemoteRouting), its tonic client
//!   (`switchboard.routing.v1.Acd`).
//!
//! - [`calls`]: [`CallRoutingApi`](calls::CallRoutingApi), inbound calls
//!   as the edge drives them (new call, flow reports, queue status, end),
//!   and [`RemoteCallRouting`](calls::RemoteCallRouting), its tonic client
//!   (`switchboard.routing.v1.CallRouting`).
//!
//! The routing crate implements the traits in process and serves them
//! over gRPC; callers hold an `Arc<dyn …>` and never know which one they
//! have. Errors are [`switchboard_rpc::ServiceError`]s (the ACD's:
//! [`RoutingError`](acd::RoutingError), which converts), the same either
//! way.

pub mod acd;
pub mod calls;
pub mod config;
