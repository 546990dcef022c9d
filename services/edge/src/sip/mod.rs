//! SIP on tokio: the transports ([`transport`]) hand every message they
//! frame to the [`Endpoint`], which keeps the server transactions (RFC
//! 3261 §17.2) and their timers, answers what the transaction layer
//! answers by itself, and gives each new request to the
//! [`TransactionUser`] once.

pub mod digest;
mod endpoint;
pub mod flood;
pub mod transport;

pub use endpoint::{
    ClientEvent, Endpoint, EndpointOptions, IncomingRequest, MALFORMED_METRIC, OutgoingRequest,
    OutgoingResponse, Peer, SendError, TransactionId, TransactionUser, allow_header,
};
