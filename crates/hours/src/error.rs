use chrono::{Datelike, NaiveDate, Weekday};
use thiserror::Error;

use crate::schedule::weekday_name;
use crate::time_of_day::{TimeOfDay, TimeRange};

/// Why a [`BusinessHours`](crate::BusinessHours) is not valid.
///
/// Every variant is the client's mistake (HTTP 400, gRPC
/// `INVALID_ARGUMENT`). [`HoursError::field`] names the offending element
/// as a path into the JSON document (`weekly[3]`,
/// `special_days[4].hours[1]`), and the message starts with it:
/// `weekly[3]: closes at 09:00, before it opens at 17:00`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HoursError {
    /// A list has more entries than allowed.
    #[error("{field}: {count} entries, at most {max} allowed")]
    TooMany {
        field: String,
        count: usize,
        max: usize,
    },
    /// A range closes at or before the time it opens.
    #[error("{field}: {}", inverted_message(*open, *close))]
    InvertedRange {
        field: String,
        open: TimeOfDay,
        close: TimeOfDay,
    },
    /// Two ranges of the same day share some minutes; `field` is the one
    /// listed later.
    #[error(
        "{field} ({}) overlaps {other_field} ({})",
        describe(*day, *range),
        describe(*day, *other)
    )]
    OverlappingRanges {
        field: String,
        /// The weekday, for weekly ranges.
        day: Option<Weekday>,
        range: TimeRange,
        other_field: String,
        other: TimeRange,
    },
    /// Two special days of the same kind (both dated or both annual) fall
    /// on the same date; `field` is the one listed later.
    #[error("{field}: {} is already listed at {other_field}", describe_date(*date, *annual))]
    DuplicateSpecialDay {
        field: String,
        date: NaiveDate,
        annual: bool,
        other_field: String,
    },
    /// A special day's name is empty or only blanks.
    #[error("{field}: must not be empty")]
    EmptyName { field: String },
    /// A special day's name is longer than allowed.
    #[error("{field}: {chars} characters, at most {max} allowed")]
    NameTooLong {
        field: String,
        chars: usize,
        max: usize,
    },
}

impl HoursError {
    /// The offending element as a path into the JSON document, e.g.
    /// `weekly[3]`, `special_days[4].name` or `special_days` (for a count).
    pub fn field(&self) -> &str {
        match self {
            HoursError::TooMany { field, .. }
            | HoursError::InvertedRange { field, .. }
            | HoursError::OverlappingRanges { field, .. }
            | HoursError::DuplicateSpecialDay { field, .. }
            | HoursError::EmptyName { field }
            | HoursError::NameTooLong { field, .. } => field,
        }
    }
}

fn inverted_message(open: TimeOfDay, close: TimeOfDay) -> String {
    if open == close {
        format!("opens and closes at {open}, an empty range")
    } else {
        format!("closes at {close}, before it opens at {open}")
    }
}

fn describe(day: Option<Weekday>, range: TimeRange) -> String {
    match day {
        Some(day) => format!("{} {range}", weekday_name(day)),
        None => range.to_string(),
    }
}

fn describe_date(date: NaiveDate, annual: bool) -> String {
    if annual {
        format!("annual {:02}-{:02}", date.month(), date.day())
    } else {
        date.format("%Y-%m-%d").to_string()
    }
}
