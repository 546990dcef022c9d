//! Switchboard's SIP stack (RFC 3261), written here because the Rust SIP
//! crates fail basic cases of RFC 4475's torture tests: a closed `Method`
//! enum (no 501 for an extension method), `SIP/7.0` accepted (must be
//! 505), a negative or huge Content-Length taken as 0, a header line
//! without a colon silently dropped, line folding rejected.
//!
//! - [`parse`]: a strict, zero-copy parser of one message from a datagram
//!   or a stream, answering what RFC 3261 and RFC 4475 say a malformed
//!   message deserves (a 400, 505 or 413 response, or a silent drop), with
//!   a stable reason for the malformed-message metric.
//! - [`build`]: responses written from a request's own headers (the
//!   answer to a malformed or refused request).
//! - [`dialog`]: dialogs (RFC 3261 §12) on either side: ids, CSeq
//!   counters, remote target and route set.
//! - [`headers`]: header names, their compact forms (RFC 3261 §7.3.3 and
//!   the later RFCs that assign one).
//! - [`matching`]: the keys of transactions and dialogs (RFC 3261 §17.1.3,
//!   §17.2.3, §12).
//! - [`transaction`]: sans-IO transactions (RFC 3261 §17) driven by the
//!   caller's clock: so far the non-INVITE client and server.
//! - [`uri`]: SIP and SIPS URIs (RFC 3261 §19.1) read in place.
//! - [`values`]: the header values transactions and dialogs read: Via,
//!   and the name-addr form of From, To and Contact with their tags.

pub mod build;
pub mod dialog;
pub mod headers;
pub mod matching;
mod message;
mod parse;
pub mod transaction;
pub mod uri;
pub mod values;

pub use message::{Header, Message, Method, StartLine, Version};
pub use parse::{Limits, Malformed, Refusal, Transport, parse};
