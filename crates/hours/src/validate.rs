//! Whether a [`BusinessHours`] makes sense as a whole, with an error that
//! names the offending element.

use chrono::Datelike;

use crate::error::HoursError;
use crate::schedule::BusinessHours;
use crate::time_of_day::TimeRange;

impl BusinessHours {
    /// The most weekly ranges accepted: one per hour of the week.
    pub const MAX_WEEKLY_RANGES: usize = 7 * 24;
    /// The most special days accepted.
    pub const MAX_SPECIAL_DAYS: usize = 1000;
    /// The most opening ranges accepted on one special day.
    pub const MAX_SPECIAL_DAY_RANGES: usize = 24;
    /// The longest special-day name accepted, in characters.
    pub const MAX_NAME_CHARS: usize = 200;

    /// Checks that the hours make sense: every range closes after it opens,
    /// ranges of the same weekday or special day do not overlap (touching
    /// is fine), no two dated or two annual special days share a date,
    /// names are not blank, and lists stay within the `MAX_*` limits.
    ///
    /// Reports the first problem in document order. The other methods give
    /// defined answers for invalid hours too (overlapping ranges act as
    /// their union, an inverted range is never open, the first of duplicate
    /// special days wins), but an API should store only valid ones.
    pub fn validate(&self) -> Result<(), HoursError> {
        check_count("weekly", self.weekly.len(), Self::MAX_WEEKLY_RANGES)?;
        check_count(
            "special_days",
            self.special_days.len(),
            Self::MAX_SPECIAL_DAYS,
        )?;

        for (i, range) in self.weekly.iter().enumerate() {
            let field = || format!("weekly[{i}]");
            check_order(range.range(), field)?;
            let earlier = self.weekly[..i]
                .iter()
                .enumerate()
                .find(|(_, other)| other.day == range.day && other.range().overlaps(range.range()));
            if let Some((j, other)) = earlier {
                return Err(HoursError::OverlappingRanges {
                    field: field(),
                    day: Some(range.day),
                    range: range.range(),
                    other_field: format!("weekly[{j}]"),
                    other: other.range(),
                });
            }
        }

        for (i, special) in self.special_days.iter().enumerate() {
            let field = format!("special_days[{i}]");
            let chars = special.name.chars().count();
            if special.name.trim().is_empty() {
                return Err(HoursError::EmptyName {
                    field: format!("{field}.name"),
                });
            }
            if chars > Self::MAX_NAME_CHARS {
                return Err(HoursError::NameTooLong {
                    field: format!("{field}.name"),
                    chars,
                    max: Self::MAX_NAME_CHARS,
                });
            }
            let duplicate = self.special_days[..i].iter().position(|other| {
                other.annual == special.annual
                    && if special.annual {
                        (other.date.month(), other.date.day())
                            == (special.date.month(), special.date.day())
                    } else {
                        other.date == special.date
                    }
            });
            if let Some(j) = duplicate {
                return Err(HoursError::DuplicateSpecialDay {
                    field,
                    date: special.date,
                    annual: special.annual,
                    other_field: format!("special_days[{j}]"),
                });
            }
            check_count(
                &format!("{field}.hours"),
                special.hours.len(),
                Self::MAX_SPECIAL_DAY_RANGES,
            )?;
            for (k, range) in special.hours.iter().enumerate() {
                check_order(*range, || format!("{field}.hours[{k}]"))?;
                let earlier = special.hours[..k]
                    .iter()
                    .position(|other| other.overlaps(*range));
                if let Some(j) = earlier {
                    return Err(HoursError::OverlappingRanges {
                        field: format!("{field}.hours[{k}]"),
                        day: None,
                        range: *range,
                        other_field: format!("{field}.hours[{j}]"),
                        other: special.hours[j],
                    });
                }
            }
        }
        Ok(())
    }
}

fn check_count(field: &str, count: usize, max: usize) -> Result<(), HoursError> {
    if count > max {
        return Err(HoursError::TooMany {
            field: field.to_owned(),
            count,
            max,
        });
    }
    Ok(())
}

fn check_order(range: TimeRange, field: impl FnOnce() -> String) -> Result<(), HoursError> {
    if range.close <= range.open {
        return Err(HoursError::InvertedRange {
            field: field(),
            open: range.open,
            close: range.close,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::{BusinessHours, HoursError};

    fn check(weekly: Value, special_days: Value) -> Result<(), HoursError> {
        let hours: BusinessHours = serde_json::from_value(json!({
            "time_zone": "Europe/Paris",
            "weekly": weekly,
            "special_days": special_days,
        }))
        .unwrap();
        hours.validate()
    }

    fn range(day: &str, open: &str, close: &str) -> Value {
        json!({ "day": day, "open": open, "close": close })
    }

    fn holiday(date: &str, annual: bool) -> Value {
        json!({ "date": date, "name": "Holiday", "annual": annual })
    }

    #[track_caller]
    fn assert_error(result: Result<(), HoursError>, field: &str, message: &str) {
        let error = result.unwrap_err();
        assert_eq!(error.field(), field);
        assert_eq!(error.to_string(), message);
    }

    #[test]
    fn accepts_touching_ranges_and_same_hours_on_other_days() {
        let weekly = json!([
            range("mon", "09:00", "12:00"),
            range("mon", "12:00", "17:00"),
            range("tue", "09:00", "17:00"),
            range("mon", "22:00", "24:00"),
            range("tue", "00:00", "06:00"),
        ]);
        assert_eq!(check(weekly, json!([])), Ok(()));
    }

    #[test]
    fn rejects_inverted_and_empty_weekly_ranges() {
        let weekly = json!([
            range("mon", "09:00", "17:00"),
            range("tue", "09:00", "17:00"),
            range("wed", "09:00", "17:00"),
            range("thu", "17:00", "09:00"),
        ]);
        assert_error(
            check(weekly, json!([])),
            "weekly[3]",
            "weekly[3]: closes at 09:00, before it opens at 17:00",
        );
        assert_error(
            check(json!([range("fri", "09:00", "09:00")]), json!([])),
            "weekly[0]",
            "weekly[0]: opens and closes at 09:00, an empty range",
        );
        assert_error(
            check(json!([range("fri", "24:00", "24:00")]), json!([])),
            "weekly[0]",
            "weekly[0]: opens and closes at 24:00, an empty range",
        );
    }

    #[test]
    fn rejects_overlapping_weekly_ranges_naming_both() {
        let weekly = json!([
            range("mon", "09:00", "17:00"),
            range("tue", "09:00", "11:00"),
            range("tue", "10:00", "12:00"),
        ]);
        let error = check(weekly, json!([])).unwrap_err();
        assert_eq!(error.field(), "weekly[2]");
        assert_eq!(
            error.to_string(),
            "weekly[2] (tue 10:00–12:00) overlaps weekly[1] (tue 09:00–11:00)"
        );
        assert!(matches!(error, HoursError::OverlappingRanges { .. }));
        // A range inside another one.
        assert_error(
            check(
                json!([
                    range("sun", "00:00", "24:00"),
                    range("sun", "12:00", "13:00")
                ]),
                json!([]),
            ),
            "weekly[1]",
            "weekly[1] (sun 12:00–13:00) overlaps weekly[0] (sun 00:00–24:00)",
        );
    }

    #[test]
    fn rejects_bad_special_day_hours() {
        let special_days = json!([{
            "date": "2024-12-24", "name": "Christmas Eve",
            "hours": [{ "open": "09:00", "close": "11:00" }, { "open": "10:00", "close": "12:00" }],
        }]);
        assert_error(
            check(json!([]), special_days),
            "special_days[0].hours[1]",
            "special_days[0].hours[1] (10:00–12:00) overlaps special_days[0].hours[0] (09:00–11:00)",
        );
        let special_days = json!([
            holiday("2024-12-25", false),
            { "date": "2024-12-24", "name": "Christmas Eve",
              "hours": [{ "open": "13:00", "close": "09:00" }] },
        ]);
        assert_error(
            check(json!([]), special_days),
            "special_days[1].hours[0]",
            "special_days[1].hours[0]: closes at 09:00, before it opens at 13:00",
        );
    }

    #[test]
    fn rejects_two_special_days_of_the_same_kind_on_one_date() {
        let special_days = json!([
            holiday("2024-12-25", false),
            holiday("2024-12-26", false),
            holiday("2024-12-25", false),
        ]);
        assert_error(
            check(json!([]), special_days),
            "special_days[2]",
            "special_days[2]: 2024-12-25 is already listed at special_days[0]",
        );
        // Annual entries clash on month and day, whatever the year.
        let special_days = json!([holiday("2020-12-25", true), holiday("2024-12-25", true)]);
        assert_error(
            check(json!([]), special_days),
            "special_days[1]",
            "special_days[1]: annual 12-25 is already listed at special_days[0]",
        );
    }

    #[test]
    fn accepts_dated_and_annual_on_one_date_and_annual_29_february() {
        let special_days = json!([
            holiday("2020-12-25", true),
            holiday("2025-12-25", false),
            holiday("2024-02-29", true),
            holiday("2024-02-28", true),
        ]);
        assert_eq!(check(json!([]), special_days), Ok(()));
    }

    #[test]
    fn rejects_blank_and_overlong_names() {
        let special_days = json!([
            holiday("2024-12-25", false),
            { "date": "2024-12-26", "name": " \t" },
        ]);
        assert_error(
            check(json!([]), special_days),
            "special_days[1].name",
            "special_days[1].name: must not be empty",
        );
        let name = "x".repeat(201);
        assert_error(
            check(json!([]), json!([{ "date": "2024-12-26", "name": name }])),
            "special_days[0].name",
            "special_days[0].name: 201 characters, at most 200 allowed",
        );
        let name = "é".repeat(200);
        assert_eq!(
            check(json!([]), json!([{ "date": "2024-12-26", "name": name }])),
            Ok(())
        );
    }

    #[test]
    fn limits_the_number_of_entries() {
        let hourly: Vec<Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .iter()
            .flat_map(|day| {
                (0..24).map(move |hour| {
                    range(
                        day,
                        &format!("{hour:02}:00"),
                        &format!("{:02}:00", hour + 1),
                    )
                })
            })
            .collect();
        assert_eq!(hourly.len(), 168);
        assert_eq!(check(json!(hourly), json!([])), Ok(()));
        let mut too_many = hourly.clone();
        too_many.push(range("mon", "09:00", "10:00"));
        assert_error(
            check(json!(too_many), json!([])),
            "weekly",
            "weekly: 169 entries, at most 168 allowed",
        );

        let first = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        let days: Vec<Value> = first
            .iter_days()
            .take(1001)
            .map(|date| holiday(&date.to_string(), false))
            .collect();
        assert_eq!(check(json!([]), json!(days[..1000])), Ok(()));
        assert_error(
            check(json!([]), json!(days)),
            "special_days",
            "special_days: 1001 entries, at most 1000 allowed",
        );

        let hours: Vec<Value> = (0..25)
            .map(|minute| json!({ "open": format!("09:{minute:02}"), "close": format!("09:{:02}", minute + 1) }))
            .collect();
        assert_error(
            check(
                json!([]),
                json!([{ "date": "2024-12-24", "name": "Busy", "hours": hours }]),
            ),
            "special_days[0].hours",
            "special_days[0].hours: 25 entries, at most 24 allowed",
        );
    }
}
