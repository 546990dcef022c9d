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
pub mod host;
pub mod metrics;
pub mod ops;
pub mod runtime;

pub use host::{EngineHost, HostError, HostOptions, HostStats};
pub use ops::{Answer, Operation, Query, QueueFigures, Refusal, RefusalKind};
pub use runtime::{Notice, NoticeEvent, Routing, RoutingError, RoutingOptions, Running};
