//! The telephony edge (issue 21): where phone calls enter Switchboard.
//!
//! - [`sip`]: SIP over UDP, TCP, TLS and WebSocket on tokio, driving the sans-IO
//!   transactions of `switchboard-sip` (RFC 3261 §17, §18): framing,
//!   retransmissions and their timers, the answers the transaction layer
//!   gives by itself (malformed requests, retransmissions, CANCEL, stray
//!   ACKs, unsupported methods, extensions and URI schemes), and a
//!   [`sip::TransactionUser`] that gets every new request once; digest
//!   authentication ([`sip::digest`]).
//! - [`registrar`]: agents' phones register to their tenant's SIP domain.
//! - [`accounts`]: the edge's tables: agents' SIP accounts and tenants'
//!   domains, kept in step with identity's events.
//! - [`trunks`]: tenants' carrier trunks, and the admission of carriers'
//!   requests by source address or digest, for the B2BUA.
//! - [`api`]: [`switchboard_edge_api::EdgeApi`] in process and over gRPC.
//! - [`calls`]: the B2BUA: calls from carriers' trunks through routing to
//!   agents' phones.
//! - [`signaling`]: what the edge answers over SIP.
//! - [`service`]: the edge as a node hosts it (`--services edge`).

pub mod accounts;
pub mod api;
pub mod calls;
pub mod limits;
pub mod registrar;
pub mod service;
pub mod signaling;
pub mod sip;
pub mod trunks;
