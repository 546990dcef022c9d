//! The one error type of the auth crate.
//!
//! Every message is safe to show to the user who caused it: none contains a
//! secret, a password, a token or a hash. Details meant for operators only
//! stay in the source error (`Backend`) and go to the logs.

use std::time::Duration;

/// What went wrong checking or issuing a credential.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token is malformed, has a bad signature, uses another algorithm
    /// than HS256, or names another issuer or audience.
    #[error("invalid token: {0}")]
    InvalidToken(String),

    /// The token was valid but its `exp` has passed: the client refreshes it.
    #[error("token expired")]
    ExpiredToken,

    /// The token's `kid` names no key this service knows (a key removed
    /// after rotation, or a forged header). Holds the `kid` as sent, cut to
    /// 64 characters.
    #[error("token signed with unknown key {0:?}")]
    UnknownKey(String),

    /// The password is refused at sign-up or change; the text says why, in
    /// words meant for the user.
    #[error("weak password: {0}")]
    WeakPassword(String),

    /// Too many failed attempts: try again after `retry_after`.
    #[error("too many attempts; retry in {} s", retry_after_secs(*retry_after))]
    Throttled { retry_after: Duration },

    /// A backend (cache, database) failed; the source says which and how.
    #[error("backend error")]
    Backend(#[from] switchboard_platform::Error),

    /// A bug or a misconfiguration on our side (a key too short, a task that
    /// panicked). The text never contains a secret.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AuthError {
    /// The HTTP status this error answers with (the one place that decides
    /// it): 401 for token problems, 422 for a weak password, 429 when
    /// throttled, 503 when a backend is down, 500 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::InvalidToken(_) | Self::ExpiredToken | Self::UnknownKey(_) => 401,
            Self::WeakPassword(_) => 422,
            Self::Throttled { .. } => 429,
            Self::Backend(error) if error.is_unavailable() => 503,
            Self::Backend(_) | Self::Internal(_) => 500,
        }
    }
}

/// Whole seconds, rounded up: "retry in 0 s" would invite an immediate retry.
fn retry_after_secs(retry_after: Duration) -> u64 {
    retry_after
        .as_secs()
        .saturating_add(u64::from(retry_after.subsec_nanos() > 0))
}

#[cfg(test)]
mod tests {
    use switchboard_platform::BackendKind;

    use super::*;

    #[test]
    fn throttled_message_rounds_retry_after_up_to_whole_seconds() {
        let error = AuthError::Throttled {
            retry_after: Duration::from_millis(1500),
        };
        assert_eq!(error.to_string(), "too many attempts; retry in 2 s");
        let error = AuthError::Throttled {
            retry_after: Duration::from_secs(4),
        };
        assert_eq!(error.to_string(), "too many attempts; retry in 4 s");
    }

    #[test]
    fn backend_message_hides_backend_details() {
        let error = AuthError::from(switchboard_platform::Error::unavailable(
            BackendKind::Cache,
            "redis://secret-host:6379 refused",
        ));
        assert_eq!(error.to_string(), "backend error");
        assert_eq!(error.http_status(), 503);
    }

    #[test]
    fn each_variant_maps_to_one_http_status() {
        assert_eq!(AuthError::InvalidToken("x".into()).http_status(), 401);
        assert_eq!(AuthError::ExpiredToken.http_status(), 401);
        assert_eq!(AuthError::UnknownKey("k".into()).http_status(), 401);
        assert_eq!(AuthError::WeakPassword("x".into()).http_status(), 422);
        let throttled = AuthError::Throttled {
            retry_after: Duration::from_secs(1),
        };
        assert_eq!(throttled.http_status(), 429);
        assert_eq!(AuthError::Internal("x".into()).http_status(), 500);
    }
}
