//! The routing service: what to do with each contact, and which agent
//! gets it.
//!
//! At its core: [`host`], which runs each tenant's ACD engine
//! ([`switchboard_acd::Engine`]) in exactly one instance at a time, behind
//! a lease in the cache, persisting what operations changed with writes
//! fenced by that lease (grouped: one write per round trip). Numbers, business hours, IVR flows, the
//! configuration API, the edge's gRPC and the agents' WebSockets build on
//! it.

pub mod calls;
pub mod config;
pub mod events;
pub mod grpc;
pub mod grpc_acd;
pub mod grpc_config;
pub mod host;
pub mod metrics;
pub mod runtime;
pub mod service;

pub use host::{EngineHost, HostError, HostOptions, HostStats};
pub use runtime::{Routing, RoutingOptions, Running};
pub use switchboard_routing_api::acd::{
    Answer, Notice, NoticeEvent, Notices, Operation, Query, QueueFigures, Refusal, RefusalKind,
    RemoteRouting, RoutingApi, RoutingError, ops,
};
