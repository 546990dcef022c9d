//! The business-hours model as configured by a tenant and exchanged as
//! JSON: a time zone, weekly opening ranges and special days.

use chrono::{Datelike, NaiveDate, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::time_of_day::{TimeOfDay, TimeRange};

/// When a contact center is open: weekly ranges in a local time zone,
/// overridden on special days (holidays, shortened days).
///
/// Deserialising checks the shape of each field (zone name, "HH:MM",
/// "YYYY-MM-DD", weekday names, no unknown fields); call
/// [`BusinessHours::validate`] before storing a value to check that it
/// makes sense as a whole (no inverted or overlapping ranges, no duplicate
/// dates, within limits).
///
/// ```json
/// {
///   "time_zone": "Europe/Paris",
///   "weekly": [
///     { "day": "mon", "open": "09:00", "close": "17:00" },
///     { "day": "fri", "open": "22:00", "close": "24:00" },
///     { "day": "sat", "open": "00:00", "close": "06:00" }
///   ],
///   "special_days": [
///     { "date": "2025-12-25", "name": "Christmas", "annual": true, "hours": [] },
///     { "date": "2025-12-24", "name": "Christmas Eve", "annual": true,
///       "hours": [{ "open": "09:00", "close": "13:00" }] }
///   ]
/// }
/// ```
///
/// `special_days` may be left out (none); in a special day, `annual`
/// defaults to `false` and `hours` to `[]` (closed all day).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    /// The zone whose wall clock all times and dates are in, as an IANA
    /// name ("Europe/Paris") in JSON.
    #[serde(with = "zone_name")]
    pub time_zone: Tz,
    /// The usual opening ranges, by weekday.
    pub weekly: Vec<WeeklyRange>,
    /// Dates whose hours replace the weekly ones.
    #[serde(default)]
    pub special_days: Vec<SpecialDay>,
}

/// One opening range on a weekday, e.g. Monday 09:00–17:00.
///
/// A range ends at `close` on the same day at the latest (24:00); a period
/// through the night is two ranges, e.g. Friday 22:00–24:00 and Saturday
/// 00:00–06:00, and counts as one continuous open period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklyRange {
    /// The weekday, `"mon"` to `"sun"` in JSON.
    #[serde(with = "weekday_name")]
    pub day: Weekday,
    /// The first minute open.
    pub open: TimeOfDay,
    /// The first minute closed again; 24:00 for midnight.
    pub close: TimeOfDay,
}

impl WeeklyRange {
    /// The opening hours of the range, without the weekday.
    pub fn range(&self) -> TimeRange {
        TimeRange {
            open: self.open,
            close: self.close,
        }
    }
}

/// A date whose hours replace the weekly ones: a holiday (closed all day)
/// or a day with its own hours (Christmas Eve 09:00–13:00).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecialDay {
    /// The date, `"YYYY-MM-DD"` in JSON. For an annual entry only its month
    /// and day count.
    #[serde(with = "iso_date")]
    pub date: NaiveDate,
    /// What the day is, e.g. "Christmas"; reported in
    /// [`HoursStatus::Holiday`](crate::HoursStatus::Holiday).
    pub name: String,
    /// Whether the entry repeats every year on the same month and day. An
    /// annual 29 February applies in leap years only. On a date with both
    /// a dated and an annual entry, the dated one applies.
    #[serde(default)]
    pub annual: bool,
    /// The day's opening hours; empty means closed all day.
    #[serde(default)]
    pub hours: Vec<TimeRange>,
}

impl SpecialDay {
    /// Whether this entry applies on `date`: the same date, or for an
    /// annual entry the same month and day in any year.
    pub fn falls_on(&self, date: NaiveDate) -> bool {
        if self.annual {
            self.date.month() == date.month() && self.date.day() == date.day()
        } else {
            self.date == date
        }
    }
}

/// The opening ranges that apply on one local date.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DaySchedule<'a> {
    /// The weekly ranges of this weekday.
    Weekly(&'a [WeeklyRange], Weekday),
    /// A special day's own hours (none: closed all day).
    Special(&'a SpecialDay),
}

impl<'a> DaySchedule<'a> {
    /// The opening ranges of the day, in the order they were configured.
    pub(crate) fn ranges(self) -> impl Iterator<Item = TimeRange> + 'a {
        let (weekly, day, special): (&'a [WeeklyRange], _, &'a [TimeRange]) = match self {
            DaySchedule::Weekly(weekly, day) => (weekly, Some(day), &[]),
            DaySchedule::Special(special) => (&[], None, &special.hours),
        };
        weekly
            .iter()
            .filter(move |range| Some(range.day) == day)
            .map(WeeklyRange::range)
            .chain(special.iter().copied())
    }

    /// Whether the minute `minute_of_day` (0 to 1439) is open.
    pub(crate) fn is_open_at(self, minute_of_day: u16) -> bool {
        self.ranges()
            .any(|range| range.contains_minute(minute_of_day))
    }
}

impl BusinessHours {
    /// The ranges that apply on the local date `date`: a dated special day,
    /// else an annual one, else the weekly ranges of its weekday. Among
    /// duplicates (which [`BusinessHours::validate`] rejects) the first
    /// listed wins.
    pub(crate) fn schedule_on(&self, date: NaiveDate) -> DaySchedule<'_> {
        let mut annual = None;
        for special in &self.special_days {
            if !special.annual && special.date == date {
                return DaySchedule::Special(special);
            }
            if annual.is_none() && special.annual && special.falls_on(date) {
                annual = Some(special);
            }
        }
        match annual {
            Some(special) => DaySchedule::Special(special),
            None => DaySchedule::Weekly(&self.weekly, date.weekday()),
        }
    }
}

/// An IANA zone name as a string, rejecting unknown names.
mod zone_name {
    use chrono_tz::Tz;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(zone: &Tz, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(zone.name())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Tz, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(|_| {
            serde::de::Error::custom(format_args!(
                "unknown time zone {name:?}: expected an IANA name such as \"Europe/Paris\""
            ))
        })
    }
}

/// A weekday as `"mon"` to `"sun"`.
mod weekday_name {
    use chrono::Weekday;
    use serde::{Deserialize, Deserializer, Serializer};

    const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    const DAYS: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    pub(crate) fn name(day: Weekday) -> &'static str {
        NAMES[day.num_days_from_monday() as usize]
    }

    pub(super) fn serialize<S: Serializer>(
        day: &Weekday,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(name(*day))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Weekday, D::Error> {
        let text = String::deserialize(deserializer)?;
        let index = NAMES
            .iter()
            .position(|name| *name == text)
            .ok_or_else(|| serde::de::Error::unknown_variant(&text, &NAMES))?;
        Ok(DAYS[index])
    }
}

pub(crate) use weekday_name::name as weekday_name;

/// A date as exactly `"YYYY-MM-DD"`.
mod iso_date {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        date: &NaiveDate,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&date.format("%Y-%m-%d"))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<NaiveDate, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format_args!(
                "invalid date {text:?}: expected an existing date \"YYYY-MM-DD\""
            ))
        })
    }

    fn parse(text: &str) -> Option<NaiveDate> {
        let number = |part: &[u8]| {
            part.iter().try_fold(0u32, |acc, b| {
                b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
            })
        };
        let [y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2] = text.as_bytes() else {
            return None;
        };
        let year = number(&[*y1, *y2, *y3, *y4])?;
        NaiveDate::from_ymd_opt(
            i32::try_from(year).ok()?,
            number(&[*m1, *m2])?,
            number(&[*d1, *d2])?,
        )
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, Weekday};
    use serde_json::{Value, json};

    use super::*;

    fn parse(value: Value) -> Result<BusinessHours, String> {
        serde_json::from_value(value).map_err(|error| error.to_string())
    }

    #[test]
    fn json_round_trip_fills_defaults() {
        let text = r#"{
            "time_zone": "Europe/Paris",
            "weekly": [
                { "day": "mon", "open": "09:00", "close": "17:00" },
                { "day": "sun", "open": "22:00", "close": "24:00" }
            ],
            "special_days": [
                { "date": "2024-12-25", "name": "Christmas", "annual": true },
                { "date": "2024-12-24", "name": "Christmas Eve",
                  "hours": [{ "open": "09:00", "close": "13:00" }] }
            ]
        }"#;
        let hours: BusinessHours = serde_json::from_str(text).unwrap();
        assert_eq!(
            hours,
            BusinessHours {
                time_zone: chrono_tz::Europe::Paris,
                weekly: vec![
                    WeeklyRange {
                        day: Weekday::Mon,
                        open: TimeOfDay::new(9, 0).unwrap(),
                        close: TimeOfDay::new(17, 0).unwrap(),
                    },
                    WeeklyRange {
                        day: Weekday::Sun,
                        open: TimeOfDay::new(22, 0).unwrap(),
                        close: TimeOfDay::END_OF_DAY,
                    },
                ],
                special_days: vec![
                    SpecialDay {
                        date: NaiveDate::from_ymd_opt(2024, 12, 25).unwrap(),
                        name: "Christmas".into(),
                        annual: true,
                        hours: vec![],
                    },
                    SpecialDay {
                        date: NaiveDate::from_ymd_opt(2024, 12, 24).unwrap(),
                        name: "Christmas Eve".into(),
                        annual: false,
                        hours: vec![TimeRange {
                            open: TimeOfDay::new(9, 0).unwrap(),
                            close: TimeOfDay::new(13, 0).unwrap(),
                        }],
                    },
                ],
            }
        );
        let value = serde_json::to_value(&hours).unwrap();
        assert_eq!(
            value,
            json!({
                "time_zone": "Europe/Paris",
                "weekly": [
                    { "day": "mon", "open": "09:00", "close": "17:00" },
                    { "day": "sun", "open": "22:00", "close": "24:00" },
                ],
                "special_days": [
                    { "date": "2024-12-25", "name": "Christmas", "annual": true, "hours": [] },
                    { "date": "2024-12-24", "name": "Christmas Eve", "annual": false,
                      "hours": [{ "open": "09:00", "close": "13:00" }] },
                ],
            })
        );
        assert_eq!(parse(value), Ok(hours));
    }

    #[test]
    fn every_weekday_name_round_trips() {
        let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let weekly: Vec<Value> = names
            .iter()
            .map(|day| json!({ "day": day, "open": "00:00", "close": "24:00" }))
            .collect();
        let hours = parse(json!({ "time_zone": "UTC", "weekly": weekly })).unwrap();
        let days: Vec<Weekday> = hours.weekly.iter().map(|range| range.day).collect();
        assert_eq!(
            days,
            [
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
                Weekday::Sat,
                Weekday::Sun
            ]
        );
        assert_eq!(hours.special_days, []);
        let value = serde_json::to_value(&hours).unwrap();
        assert_eq!(value["weekly"], json!(weekly));
        assert_eq!(value["special_days"], json!([]));
    }

    fn with_weekly(range: Value) -> Value {
        json!({ "time_zone": "Europe/Paris", "weekly": [range] })
    }

    #[test]
    fn rejects_unknown_time_zone() {
        assert_eq!(
            parse(json!({ "time_zone": "Europe/Pariss", "weekly": [] })),
            Err(
                "unknown time zone \"Europe/Pariss\": expected an IANA name such as \"Europe/Paris\""
                    .into()
            )
        );
        assert_eq!(
            parse(json!({ "time_zone": "CEST", "weekly": [] })),
            Err(
                "unknown time zone \"CEST\": expected an IANA name such as \"Europe/Paris\"".into()
            )
        );
    }

    #[test]
    fn rejects_bad_times_and_weekdays() {
        assert_eq!(
            parse(with_weekly(
                json!({ "day": "mon", "open": "09:00", "close": "25:00" })
            )),
            Err("invalid time of day \"25:00\": expected \"HH:MM\" from 00:00 to 24:00".into())
        );
        assert_eq!(
            parse(with_weekly(
                json!({ "day": "mon", "open": "9:00", "close": "17:00" })
            )),
            Err("invalid time of day \"9:00\": expected \"HH:MM\" from 00:00 to 24:00".into())
        );
        assert_eq!(
            parse(with_weekly(
                json!({ "day": "mnd", "open": "09:00", "close": "17:00" })
            )),
            Err(
                "unknown variant `mnd`, expected one of `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`"
                    .into()
            )
        );
        assert_eq!(
            parse(with_weekly(
                json!({ "day": "Mon", "open": "09:00", "close": "17:00" })
            )),
            Err(
                "unknown variant `Mon`, expected one of `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`"
                    .into()
            )
        );
        assert_eq!(
            parse(with_weekly(
                json!({ "day": "mon", "open": 900, "close": "17:00" })
            )),
            Err("invalid type: integer `900`, expected a string".into())
        );
    }

    #[test]
    fn rejects_bad_dates_and_unknown_fields() {
        let special = |day: Value| json!({ "time_zone": "Europe/Paris", "weekly": [], "special_days": [day] });
        for date in [
            "2024-02-30",
            "2023-02-29",
            "24-12-25",
            "2024-12-25T00:00",
            " 2024-12-25",
            "2024/12/25",
        ] {
            assert_eq!(
                parse(special(json!({ "date": date, "name": "Holiday" }))),
                Err(format!(
                    "invalid date {date:?}: expected an existing date \"YYYY-MM-DD\""
                ))
            );
        }
        // A misspelt "hours" must not silently make a holiday.
        assert_eq!(
            parse(special(json!({
                "date": "2024-12-24", "name": "Christmas Eve",
                "hour": [{ "open": "09:00", "close": "13:00" }],
            }))),
            Err("unknown field `hour`, expected one of `date`, `name`, `annual`, `hours`".into())
        );
        assert_eq!(
            parse(with_weekly(
                json!({ "day": "mon", "open": "09:00", "close": "17:00", "closed": true })
            )),
            Err("unknown field `closed`, expected one of `day`, `open`, `close`".into())
        );
        assert_eq!(
            parse(json!({ "weekly": [] })),
            Err("missing field `time_zone`".into())
        );
    }

    #[test]
    fn annual_special_day_falls_on_same_month_and_day_every_year() {
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let mut day = SpecialDay {
            date: date(2024, 2, 29),
            name: "Leap day".into(),
            annual: true,
            hours: vec![],
        };
        assert!(day.falls_on(date(2028, 2, 29)));
        assert!(!day.falls_on(date(2027, 2, 28)));
        assert!(!day.falls_on(date(2027, 3, 1)));
        day.annual = false;
        assert!(day.falls_on(date(2024, 2, 29)));
        assert!(!day.falls_on(date(2028, 2, 29)));
    }
}
