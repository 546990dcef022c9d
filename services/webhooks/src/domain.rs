//! The rules of webhooks, without I/O: endpoint and delivery states, event
//! type subscriptions, input limits, the retry schedule; and in submodules
//! the SSRF address rules ([`target`]) and signing ([`signature`]).

pub mod signature;
pub mod target;

use std::time::Duration;

pub use switchboard_webhooks_api::{DeliveryStatus, EndpointStatus};

use crate::error::FieldError;

/// Subscribes an endpoint to every event type.
pub const ALL_EVENTS: &str = "*";
/// Longest endpoint URL accepted.
pub const MAX_URL_LENGTH: usize = 2048;
/// Longest description accepted, in characters.
pub const MAX_DESCRIPTION_LENGTH: usize = 500;
/// Endpoints one tenant may register.
pub const MAX_ENDPOINTS_PER_TENANT: u64 = 50;

/// Checks a subscription: at least one type, each one of `known` or `*`.
/// Answers the list to store, sorted and without duplicates (`["*"]` when
/// `*` is among them).
pub fn validate_event_types(types: &[String], known: &[&str]) -> Result<Vec<String>, FieldError> {
    if types.is_empty() {
        return Err(FieldError::new(
            "event_types",
            "at least one event type is required (or \"*\" for all)",
        ));
    }
    let mut checked = Vec::new();
    for name in types {
        if name == ALL_EVENTS {
            return Ok(vec![ALL_EVENTS.to_owned()]);
        }
        if !known.contains(&name.as_str()) {
            return Err(FieldError::new(
                "event_types",
                format!("unknown event type {name:?}; known: {}", known.join(", ")),
            ));
        }
        checked.push(name.clone());
    }
    checked.sort();
    checked.dedup();
    Ok(checked)
}

/// Whether an endpoint subscribed to `types` receives events of `event_type`.
pub fn subscribed(types: &[String], event_type: &str) -> bool {
    types
        .iter()
        .any(|name| name == ALL_EVENTS || name == event_type)
}

/// Checks a description: at most 500 characters, no control characters.
pub fn validate_description(text: &str) -> Result<String, FieldError> {
    let text = text.trim();
    if text.chars().count() > MAX_DESCRIPTION_LENGTH {
        return Err(FieldError::new(
            "description",
            format!("must be at most {MAX_DESCRIPTION_LENGTH} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(FieldError::new(
            "description",
            "must not contain control characters",
        ));
    }
    Ok(text.to_owned())
}

/// The retry schedule: exponential backoff from `initial`, doubling per
/// failed attempt, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delay after the `failures`-th failed attempt of a retry window
    /// (1 for the first): `initial × 2^(failures-1)`, at most `max`, before
    /// jitter.
    pub fn delay(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(30);
        self.initial
            .checked_mul(1u32 << exponent)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// [`Self::delay`] less up to 20 % (`jitter` in 0..=1), so endpoints
    /// that failed together are not retried in lockstep.
    pub fn delay_with_jitter(&self, failures: u32, jitter: f64) -> Duration {
        self.delay(failures)
            .mul_f64(1.0 - 0.2 * jitter.clamp(0.0, 1.0))
    }
}

/// What a failed attempt leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try again after this delay.
    Retry(Duration),
    /// Give up: the delivery fails and the endpoint is disabled.
    GiveUp,
}

/// Decides after a failed attempt: give up on `410 Gone` (the receiver
/// says the endpoint is gone for good) or once the retry window (since the
/// window's first attempt) has lasted `give_up_after`; otherwise retry on
/// the backoff schedule. `failures` counts the window's failed attempts,
/// this one included.
pub fn after_failure(
    status_code: Option<u16>,
    in_window: Duration,
    give_up_after: Duration,
    failures: u32,
    backoff: &Backoff,
    jitter: f64,
) -> AfterFailure {
    if status_code == Some(410) || in_window >= give_up_after {
        AfterFailure::GiveUp
    } else {
        AfterFailure::Retry(backoff.delay_with_jitter(failures, jitter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &["user.created", "user.deleted", "tenant.created"];

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn event_types_are_known_names_or_star() {
        assert_eq!(
            validate_event_types(
                &strings(&["user.deleted", "user.created", "user.created"]),
                KNOWN
            )
            .unwrap(),
            strings(&["user.created", "user.deleted"])
        );
        assert_eq!(
            validate_event_types(&strings(&["user.created", "*"]), KNOWN).unwrap(),
            strings(&["*"])
        );
        let error = validate_event_types(&strings(&["user.exploded"]), KNOWN).unwrap_err();
        assert_eq!(error.field, "event_types");
        assert!(error.message.contains("user.exploded"), "{}", error.message);
        assert_eq!(
            validate_event_types(&[], KNOWN).unwrap_err().field,
            "event_types"
        );
    }

    #[test]
    fn a_subscription_matches_its_types_or_everything() {
        assert!(subscribed(&strings(&["user.created"]), "user.created"));
        assert!(!subscribed(&strings(&["user.created"]), "user.deleted"));
        assert!(subscribed(&strings(&["*"]), "tenant.created"));
    }

    #[test]
    fn descriptions_are_bounded_and_printable() {
        assert_eq!(validate_description("  CRM sync ").unwrap(), "CRM sync");
        assert!(validate_description(&"x".repeat(501)).is_err());
        assert!(validate_description("a\u{0}b").is_err());
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for status in EndpointStatus::ALL {
            assert_eq!(status.as_str().parse::<EndpointStatus>().unwrap(), *status);
        }
        for status in DeliveryStatus::ALL {
            assert_eq!(status.as_str().parse::<DeliveryStatus>().unwrap(), *status);
        }
        assert!("paused".parse::<EndpointStatus>().is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let backoff = Backoff {
            initial: Duration::from_secs(30),
            max: Duration::from_secs(3600),
        };
        assert_eq!(backoff.delay(1), Duration::from_secs(30));
        assert_eq!(backoff.delay(2), Duration::from_secs(60));
        assert_eq!(backoff.delay(3), Duration::from_secs(120));
        assert_eq!(backoff.delay(7), Duration::from_secs(1920));
        assert_eq!(backoff.delay(8), Duration::from_secs(3600));
        assert_eq!(backoff.delay(1000), Duration::from_secs(3600));
        assert_eq!(backoff.delay_with_jitter(1, 1.0), Duration::from_secs(24));
        assert_eq!(backoff.delay_with_jitter(1, 0.0), Duration::from_secs(30));
    }

    #[test]
    fn failures_retry_until_the_window_closes_and_gone_gives_up_at_once() {
        let backoff = Backoff {
            initial: Duration::from_secs(30),
            max: Duration::from_secs(3600),
        };
        let day = Duration::from_secs(24 * 3600);
        assert_eq!(
            after_failure(Some(500), Duration::ZERO, day, 1, &backoff, 0.0),
            AfterFailure::Retry(Duration::from_secs(30))
        );
        assert_eq!(
            after_failure(None, Duration::from_secs(3600), day, 4, &backoff, 0.0),
            AfterFailure::Retry(Duration::from_secs(240))
        );
        assert_eq!(
            after_failure(Some(503), day, day, 30, &backoff, 0.0),
            AfterFailure::GiveUp
        );
        assert_eq!(
            after_failure(Some(410), Duration::ZERO, day, 1, &backoff, 0.0),
            AfterFailure::GiveUp
        );
    }
}
