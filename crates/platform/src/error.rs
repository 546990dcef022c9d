//! The one error type of the platform crate.

use std::fmt;

/// Which backend an error or a status is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    Database,
    Cache,
    Bus,
    Objects,
}

impl BackendKind {
    pub const ALL: [BackendKind; 4] = [Self::Database, Self::Cache, Self::Bus, Self::Objects];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Database => "database",
            Self::Cache => "cache",
            Self::Bus => "bus",
            Self::Objects => "objects",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong talking to a backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The backend cannot be reached (refused, timed out, connection lost).
    /// Callers answer 503 / `UNAVAILABLE` and retry later.
    #[error("{backend} unavailable: {detail}")]
    Unavailable {
        backend: BackendKind,
        detail: String,
    },
    /// The backend answered, with an error that retrying will not fix.
    #[error("{backend} error: {detail}")]
    Backend {
        backend: BackendKind,
        detail: String,
    },
    /// No such object / key / queue.
    #[error("not found: {0}")]
    NotFound(String),
    /// The caller passed something the backend cannot take (a bad key, an
    /// empty range, …).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl Error {
    pub fn unavailable(backend: BackendKind, detail: impl fmt::Display) -> Self {
        Self::Unavailable {
            backend,
            detail: detail.to_string(),
        }
    }

    pub fn backend(backend: BackendKind, detail: impl fmt::Display) -> Self {
        Self::Backend {
            backend,
            detail: detail.to_string(),
        }
    }

    /// True when retrying later may succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
