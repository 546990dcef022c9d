//! Business hours of a contact center: when it takes calls, in its own
//! time zone, with holidays and days of their own hours.
//!
//! The routing service asks [`BusinessHours::status_at`] (or the
//! allocation-free [`BusinessHours::is_open`]) for every inbound call to
//! pick the open, closed or holiday treatment, and
//! [`BusinessHours::next_change`] to announce "we open again at …" or to
//! schedule a callback. Ticketing SLA timers are meant to build on the
//! same answers.
//!
//! # Model
//!
//! A [`BusinessHours`] is an IANA time zone, weekly opening ranges
//! ([`WeeklyRange`], e.g. Monday 09:00–17:00) and special days
//! ([`SpecialDay`]) whose hours replace the weekly ones on their date:
//! none for a holiday, or their own ranges (Christmas Eve 09:00–13:00).
//! A special day is dated or repeats every year (`annual`); a dated entry
//! wins over an annual one on the same date. Times are wall-clock minutes
//! ([`TimeOfDay`], "HH:MM", with "24:00" for the end of the day); a range
//! is open from its opening minute up to, not including, its closing
//! minute. Nights are two ranges meeting at midnight, and count as one
//! open period. The JSON form is shown on [`BusinessHours`];
//! [`BusinessHours::validate`] checks a value as a whole and reports the
//! offending element ([`HoursError::field`]).
//!
//! # Daylight saving time
//!
//! An instant is converted to the zone's wall clock, which is always
//! unambiguous, and its local date and time tested against that date's
//! ranges. Where the wall clock is not a line, each opening or closing
//! time happens exactly once: a time skipped when clocks go forward takes
//! effect at the first instant after the gap, and a time shown twice when
//! they go back takes effect at its first occurrence. So during the
//! second pass through a repeated hour the status stays as it was just
//! before the clocks went back. Zone rules come from `chrono-tz`.
//!
//! # Why our own code
//!
//! The rules are small, and we want to own their conventions (special
//! days, validation messages an API can return, the DST choices above)
//! and the JSON shape tenants configure. The `opening-hours` crate
//! evaluates OpenStreetMap `opening_hours` expressions, a text syntax
//! with its own holiday and DST handling that we would still have to
//! generate and validate field by field; time-zone rules, the part that
//! is hard to get right, come from `chrono-tz`.
//!
//! # Example
//!
//! ```
//! use switchboard_hours::{BusinessHours, HoursStatus};
//!
//! let hours: BusinessHours = serde_json::from_str(
//!     r#"{
//!         "time_zone": "Europe/Paris",
//!         "weekly": [{ "day": "mon", "open": "09:00", "close": "17:00" }],
//!         "special_days": [{ "date": "2024-12-25", "name": "Christmas", "annual": true }]
//!     }"#,
//! )?;
//! hours.validate()?;
//!
//! // Monday 2024-12-23 at 08:30 UTC is 09:30 in Paris.
//! let at = "2024-12-23T08:30:00Z".parse()?;
//! assert_eq!(hours.status_at(at), HoursStatus::Open);
//! assert_eq!(hours.next_change(at), Some("2024-12-23T16:00:00Z".parse()?));
//! // Christmas 2028 is a Monday.
//! let christmas = "2028-12-25T10:00:00Z".parse()?;
//! assert_eq!(
//!     hours.status_at(christmas),
//!     HoursStatus::Holiday { name: "Christmas".into() }
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod clock;
mod error;
mod schedule;
mod status;
mod time_of_day;
mod validate;

pub use error::HoursError;
pub use schedule::{BusinessHours, SpecialDay, WeeklyRange};
pub use status::HoursStatus;
pub use time_of_day::{ParseTimeOfDayError, TimeOfDay, TimeRange};

/// Re-exported so callers can name the zone and weekday types without
/// depending on the same versions of `chrono` and `chrono-tz` themselves.
pub use chrono::Weekday;
pub use chrono_tz::Tz;
