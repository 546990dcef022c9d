//! Building blocks of Switchboard's public REST API, shared by every
//! service's `http.rs`:
//!
//! - [`problem`]: every error is an RFC 9457 problem document
//!   (`application/problem+json`) with a stable type URI.
//! - [`json`]: strict JSON bodies ([`ApiJson`]) with a size limit and
//!   errors that name the line, column or field.
//! - [`pagination`]: cursor pages ([`PageRequest`], [`Page`]) with opaque
//!   keyset cursors.
//! - [`rate_limit`]: token-bucket limits shared through the cache, with the
//!   `RateLimit-*` headers of draft-ietf-httpapi-ratelimit-headers.
//! - [`idempotency`]: safe `POST` retries with `Idempotency-Key`
//!   (draft-ietf-httpapi-idempotency-key-header).
//!
//! Status codes and their meaning follow RFC 9110.

pub mod idempotency;
pub mod json;
pub mod pagination;
pub mod problem;
pub mod rate_limit;

pub use idempotency::{IdempotencyScope, IdempotencyStore, RevealsSecret, idempotency};
pub use json::{ApiJson, BodyLimit};
pub use pagination::{Page, PageQuery, PageRequest};
pub use problem::{FieldError, Problem};
pub use rate_limit::{Limit, RateDecision, RateLimiter};
