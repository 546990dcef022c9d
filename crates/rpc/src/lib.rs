//! What every internal gRPC call of Switchboard shares.
//!
//! - [`credential`]: the service credential. A caller signs one per call
//!   with the cluster's internal key ([`Credentials`]); a service wraps its
//!   gRPC server in [`Authenticated`], which refuses calls without a valid
//!   one and hands the verified [`Caller`] (calling service, tenant,
//!   allowed clients, end-user principal) to the handlers.
//! - [`error`]: [`ServiceError`], the one error of every service API, and
//!   [`ERROR_TABLE`], the one table from error kinds to HTTP statuses and
//!   gRPC codes.
//! - [`peer`]: channels to services on other nodes.

pub mod credential;
pub mod error;
pub mod peer;

pub use credential::{Authenticated, CallContext, Caller, Credentials};
pub use error::{ERROR_TABLE, ErrorKind, ErrorMapping, FieldError, ServiceError};
pub use peer::{connect_balanced, connect_lazy};
pub use switchboard_auth::ServiceKeys;
