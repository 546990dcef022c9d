//! Credentials of Switchboard: what proves who a caller is, how each is
//! made, stored and checked.
//!
//! | credential | what it is | standard | stored as |
//! |---|---|---|---|
//! | access token ([`jwt`]) | short-lived JWT carrying user, tenant, roles, clients, session | RFC 7519, HS256 (RFC 7518 §3.2), `kid` rotation (RFC 7515 §4.1.4) | nothing: verified by signature |
//! | password ([`password`]) | what a user types at login | Argon2id (RFC 9106), OWASP parameters, PHC string format | PHC string |
//! | API key ([`secrets`]) | `sk_live_…`/`sk_test_…`, for machine clients | 238 random bits, SHA-256 (FIPS 180-4) | SHA-256 hex + 12-character display prefix |
//! | service credential ([`service`]) | short-lived JWT one service shows another on every internal gRPC call: calling service, tenant, allowed clients, principal | RFC 7519, HS256, own audience, `kid` rotation | nothing: verified by signature |
//! | refresh, invitation, verification tokens ([`secrets`]) | `rt_…`, `inv_…`, `ver_…`, single-purpose opaque tokens | 256 random bits, base64url (RFC 4648 §5), SHA-256 | SHA-256 hex |
//!
//! [`throttle`] slows password guessing down: attempts bounded per account
//! and client address, per account and per address, counted in the shared
//! cache before the password is verified.
//!
//! The cryptography itself comes from well-kept crates (`jsonwebtoken`,
//! `argon2`, `sha2`, `subtle`, `rand`); this crate chooses parameters, keys
//! and checks. No type here prints a secret in its `Debug` output, and no
//! [`AuthError`] message contains one.

mod error;
pub mod jwt;
pub mod password;
pub mod secrets;
pub mod service;
pub mod throttle;

pub use error::AuthError;
pub use jwt::{AccessClaims, AccessSubject, SigningKey, TokenKeys, generate_secret};
pub use password::{
    DUMMY_HASH, check_password_strength, hash_password, hash_password_async, needs_rehash,
    verify_against_dummy, verify_against_dummy_async, verify_password, verify_password_async,
};
pub use secrets::{ApiKeySecret, OpaqueToken, constant_time_eq, hash_secret, looks_like_api_key};
pub use service::{SERVICE_AUDIENCE, SERVICE_TOKEN_TTL, ServiceClaims, ServiceKeys};
pub use throttle::{LoginThrottle, ThrottlePolicy};
