//! Errors of the event backbone.

use sea_orm::DbErr;

pub type Result<T, E = EventsError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// The database failed (connection, statement).
    #[error("event store: {0}")]
    Database(#[from] DbErr),
    /// The bus failed.
    #[error("event bus: {0}")]
    Bus(#[from] switchboard_platform::Error),
    /// Bytes that are not an event envelope, or one missing a field.
    #[error("malformed event: {0}")]
    Malformed(String),
    /// A request that cannot be carried out (unknown consumer, bad time).
    #[error("{0}")]
    Invalid(String),
}
