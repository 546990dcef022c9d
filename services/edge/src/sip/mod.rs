//! SIP on tokio: the transports ([`transport`]) hand every message they
//! frame to the [`Endpoint`], which keeps the server transactions (RFC
//! 3261 §17.2) and their timers, answers what the transaction layer
//! answers by itself, and gives each new request to the
//! [`TransactionUser`] once.

pub mod digest;
mod endpoint;
pub mod transport;

pub use endpoint::{
    Endpoint, EndpointOptions, IncomingRequest, MALFORMED_METRIC, OutgoingResponse, Peer,
    TransactionId, TransactionUser, allow_header,
};
