//! Wall-clock times of day ("HH:MM", up to "24:00") and the ranges built
//! from them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const MINUTES_PER_DAY: u16 = 24 * 60;

/// A local wall-clock time with minute precision, from 00:00 to 24:00.
///
/// 24:00 is the end of the day, so a range can close at midnight without
/// spilling into the next day. In JSON it is the string `"HH:MM"` (two
/// digits each); seconds are not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay(u16);

impl TimeOfDay {
    /// 00:00, the start of the day.
    pub const MIDNIGHT: TimeOfDay = TimeOfDay(0);
    /// 24:00, the end of the day.
    pub const END_OF_DAY: TimeOfDay = TimeOfDay(MINUTES_PER_DAY);

    /// `hour:minute`, or `None` unless it is between 00:00 and 24:00.
    pub const fn new(hour: u8, minute: u8) -> Option<Self> {
        if minute > 59 || hour > 24 || (hour == 24 && minute > 0) {
            return None;
        }
        Some(TimeOfDay(hour as u16 * 60 + minute as u16))
    }

    /// The hour, 0 to 24 (24 only for [`TimeOfDay::END_OF_DAY`]).
    pub const fn hour(self) -> u8 {
        (self.0 / 60) as u8
    }

    /// The minute within the hour, 0 to 59.
    pub const fn minute(self) -> u8 {
        (self.0 % 60) as u8
    }

    /// Minutes since 00:00, 0 to 1440.
    pub const fn minutes_since_midnight(self) -> u16 {
        self.0
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour(), self.minute())
    }
}

/// A string that is not a time of day "HH:MM" between 00:00 and 24:00.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid time of day {input:?}: expected \"HH:MM\" from 00:00 to 24:00")]
pub struct ParseTimeOfDayError {
    input: String,
}

impl FromStr for TimeOfDay {
    type Err = ParseTimeOfDayError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || ParseTimeOfDayError {
            input: s.to_owned(),
        };
        let &[h1, h2, b':', m1, m2] = s.as_bytes() else {
            return Err(invalid());
        };
        let digit = |b: u8| b.is_ascii_digit().then(|| b - b'0').ok_or_else(invalid);
        let hour = digit(h1)? * 10 + digit(h2)?;
        let minute = digit(m1)? * 10 + digit(m2)?;
        TimeOfDay::new(hour, minute).ok_or_else(invalid)
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Opening hours within one day: open from `open` (inclusive) until
/// `close` (exclusive), e.g. 09:00–13:00.
///
/// A valid range closes after it opens; see [`crate::BusinessHours::validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    /// The first minute open.
    pub open: TimeOfDay,
    /// The first minute closed again; [`TimeOfDay::END_OF_DAY`] for midnight.
    pub close: TimeOfDay,
}

impl TimeRange {
    /// Whether the minute `minute_of_day` (0 to 1439) is within the range.
    pub(crate) fn contains_minute(self, minute_of_day: u16) -> bool {
        self.open.0 <= minute_of_day && minute_of_day < self.close.0
    }

    /// Whether the two ranges share at least one minute; ranges that only
    /// touch (09:00–12:00 and 12:00–17:00) do not.
    pub(crate) fn overlaps(self, other: TimeRange) -> bool {
        self.open < other.close && other.open < self.close
    }
}

impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}–{}", self.open, self.close)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_hh_mm() {
        for (text, minutes) in [
            ("00:00", 0),
            ("09:05", 545),
            ("23:59", 1439),
            ("24:00", 1440),
        ] {
            let time: TimeOfDay = text.parse().unwrap();
            assert_eq!(time.minutes_since_midnight(), minutes);
            assert_eq!(time.to_string(), text);
        }
        let time = TimeOfDay::new(17, 30).unwrap();
        assert_eq!((time.hour(), time.minute()), (17, 30));
    }

    #[test]
    fn rejects_anything_but_hh_mm_up_to_24_00() {
        for text in [
            "25:00", "24:01", "12:60", "9:00", "09:0", "0900", "09-00", "09:00:00", " 09:00",
            "+9:00", "", "１2:00",
        ] {
            let err = text.parse::<TimeOfDay>().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid time of day {text:?}: expected \"HH:MM\" from 00:00 to 24:00")
            );
        }
        assert_eq!(TimeOfDay::new(24, 1), None);
        assert_eq!(TimeOfDay::new(23, 60), None);
        assert_eq!(TimeOfDay::new(24, 0), Some(TimeOfDay::END_OF_DAY));
    }

    #[test]
    fn range_contains_open_minute_but_not_close_minute() {
        let range = TimeRange {
            open: TimeOfDay::new(9, 0).unwrap(),
            close: TimeOfDay::new(17, 0).unwrap(),
        };
        assert!(!range.contains_minute(539));
        assert!(range.contains_minute(540));
        assert!(range.contains_minute(1019));
        assert!(!range.contains_minute(1020));
    }

    #[test]
    fn touching_ranges_do_not_overlap() {
        let range = |open: u8, close: u8| TimeRange {
            open: TimeOfDay::new(open, 0).unwrap(),
            close: TimeOfDay::new(close, 0).unwrap(),
        };
        assert!(!range(9, 12).overlaps(range(12, 17)));
        assert!(!range(12, 17).overlaps(range(9, 12)));
        assert!(range(9, 13).overlaps(range(12, 17)));
        assert!(range(9, 17).overlaps(range(10, 11)));
        assert_eq!(range(9, 24).to_string(), "09:00–24:00");
    }
}
