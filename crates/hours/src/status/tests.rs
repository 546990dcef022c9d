//! Status and next change, with instants computed by hand from the zone
//! rules (Paris: CET = UTC+1, CEST = UTC+2; New York: EST = UTC−5,
//! EDT = UTC−4; Tokyo: UTC+9 all year).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::{BusinessHours, HoursStatus};

fn hours(value: Value) -> BusinessHours {
    let hours: BusinessHours = serde_json::from_value(value).unwrap();
    hours.validate().unwrap();
    hours
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn weekdays_nine_to_five(zone: &str) -> Value {
    let weekly = ["mon", "tue", "wed", "thu", "fri"]
        .map(|day| json!({ "day": day, "open": "09:00", "close": "17:00" }));
    json!({ "time_zone": zone, "weekly": weekly })
}

fn with_special_days(mut hours: Value, special_days: Value) -> Value {
    hours["special_days"] = special_days;
    hours
}

fn on_sunday(zone: &str, open: &str, close: &str) -> BusinessHours {
    hours(json!({
        "time_zone": zone,
        "weekly": [{ "day": "sun", "open": open, "close": close }],
    }))
}

fn change(hours: &BusinessHours, from: &str) -> Option<DateTime<Utc>> {
    hours.next_change(at(from))
}

use HoursStatus::{Closed, Open};

fn holiday(name: &str) -> HoursStatus {
    HoursStatus::Holiday {
        name: name.to_owned(),
    }
}

// Monday 2024-01-15, Paris in winter (UTC+1): 09:00–17:00 is 08:00Z–16:00Z.

#[test]
fn weekday_opens_at_opening_minute_and_closes_at_closing_minute() {
    let hours = hours(weekdays_nine_to_five("Europe/Paris"));
    assert_eq!(hours.status_at(at("2024-01-15T07:59:59Z")), Closed);
    assert_eq!(hours.status_at(at("2024-01-15T08:00:00Z")), Open);
    assert_eq!(hours.status_at(at("2024-01-15T15:59:59.999Z")), Open);
    assert_eq!(hours.status_at(at("2024-01-15T16:00:00Z")), Closed);
    assert!(hours.is_open(at("2024-01-15T12:00:00Z")));
    assert!(!hours.is_open(at("2024-01-15T16:00:00Z")));
    // Saturday.
    assert_eq!(hours.status_at(at("2024-01-20T10:00:00Z")), Closed);
}

#[test]
fn next_change_is_strictly_after_the_given_instant() {
    let hours = hours(weekdays_nine_to_five("Europe/Paris"));
    assert_eq!(
        change(&hours, "2024-01-15T07:00:00Z"),
        Some(at("2024-01-15T08:00:00Z"))
    );
    assert_eq!(
        change(&hours, "2024-01-15T08:00:00Z"),
        Some(at("2024-01-15T16:00:00Z"))
    );
    assert_eq!(
        change(&hours, "2024-01-15T16:00:00Z"),
        Some(at("2024-01-16T08:00:00Z"))
    );
    // Friday evening: open again on Monday.
    assert_eq!(
        change(&hours, "2024-01-19T16:00:00Z"),
        Some(at("2024-01-22T08:00:00Z"))
    );
}

#[test]
fn same_instant_is_open_in_new_york_and_closed_in_tokyo() {
    // 15:00Z is Monday 10:00 in New York and Tuesday 00:00 in Tokyo.
    let instant = at("2024-01-15T15:00:00Z");
    let new_york = hours(weekdays_nine_to_five("America/New_York"));
    let tokyo = hours(weekdays_nine_to_five("Asia/Tokyo"));
    assert_eq!(new_york.status_at(instant), Open);
    assert_eq!(tokyo.status_at(instant), Closed);
    assert_eq!(
        new_york.next_change(instant),
        Some(at("2024-01-15T22:00:00Z"))
    );
    // Tuesday 09:00 in Tokyo.
    assert_eq!(tokyo.next_change(instant), Some(at("2024-01-16T00:00:00Z")));
}

// Paris, Sunday 2024-03-31: at 01:00Z, 02:00 CET became 03:00 CEST.

#[test]
fn paris_spring_forward_closes_at_the_jump_past_closing_time() {
    let hours = on_sunday("Europe/Paris", "01:00", "03:00");
    assert_eq!(hours.status_at(at("2024-03-30T23:59:59Z")), Closed);
    assert_eq!(hours.status_at(at("2024-03-31T00:00:00Z")), Open);
    assert_eq!(hours.status_at(at("2024-03-31T00:59:59Z")), Open);
    assert_eq!(hours.status_at(at("2024-03-31T01:00:00Z")), Closed);
    assert_eq!(
        change(&hours, "2024-03-30T23:30:00Z"),
        Some(at("2024-03-31T00:00:00Z"))
    );
    // One hour open, not two.
    assert_eq!(
        change(&hours, "2024-03-31T00:00:00Z"),
        Some(at("2024-03-31T01:00:00Z"))
    );
    // The next Sunday 01:00 is in summer time.
    assert_eq!(
        change(&hours, "2024-03-31T01:00:00Z"),
        Some(at("2024-04-06T23:00:00Z"))
    );
}

#[test]
fn paris_opening_time_in_spring_gap_opens_right_after_the_gap() {
    let hours = on_sunday("Europe/Paris", "02:30", "05:00");
    assert_eq!(hours.status_at(at("2024-03-31T00:59:59Z")), Closed);
    assert_eq!(hours.status_at(at("2024-03-31T01:00:00Z")), Open);
    assert_eq!(
        change(&hours, "2024-03-31T00:00:00Z"),
        Some(at("2024-03-31T01:00:00Z"))
    );
    // 05:00 CEST.
    assert_eq!(
        change(&hours, "2024-03-31T01:00:00Z"),
        Some(at("2024-03-31T03:00:00Z"))
    );
}

// Paris, Sunday 2024-10-27: at 01:00Z, 03:00 CEST became 02:00 CET, so
// 02:00–02:59 is shown twice (00:00Z–00:59Z and 01:00Z–01:59Z).

#[test]
fn paris_fall_back_stays_open_through_the_repeated_hour() {
    let hours = on_sunday("Europe/Paris", "01:00", "03:00");
    assert_eq!(hours.status_at(at("2024-10-26T22:59:59Z")), Closed);
    assert_eq!(hours.status_at(at("2024-10-26T23:00:00Z")), Open);
    assert_eq!(hours.status_at(at("2024-10-27T00:30:00Z")), Open);
    assert_eq!(hours.status_at(at("2024-10-27T01:30:00Z")), Open);
    assert_eq!(hours.status_at(at("2024-10-27T01:59:59Z")), Open);
    assert_eq!(hours.status_at(at("2024-10-27T02:00:00Z")), Closed);
    assert_eq!(
        change(&hours, "2024-10-26T22:00:00Z"),
        Some(at("2024-10-26T23:00:00Z"))
    );
    // Three hours open: closes at 03:00 CET, not at the first 03:00.
    assert_eq!(
        change(&hours, "2024-10-26T23:00:00Z"),
        Some(at("2024-10-27T02:00:00Z"))
    );
}

#[test]
fn paris_opening_time_in_repeated_hour_uses_first_occurrence() {
    let hours = on_sunday("Europe/Paris", "02:30", "05:00");
    assert_eq!(hours.status_at(at("2024-10-27T00:29:59Z")), Closed);
    assert_eq!(hours.status_at(at("2024-10-27T00:30:00Z")), Open);
    // Second pass through 02:00–02:30: still open.
    assert_eq!(hours.status_at(at("2024-10-27T01:00:00Z")), Open);
    assert_eq!(hours.status_at(at("2024-10-27T01:15:00Z")), Open);
    assert_eq!(
        change(&hours, "2024-10-27T00:00:00Z"),
        Some(at("2024-10-27T00:30:00Z"))
    );
    // 05:00 CET.
    assert_eq!(
        change(&hours, "2024-10-27T00:30:00Z"),
        Some(at("2024-10-27T04:00:00Z"))
    );
}

#[test]
fn paris_closing_time_in_repeated_hour_closes_once() {
    let hours = on_sunday("Europe/Paris", "00:00", "02:30");
    assert_eq!(hours.status_at(at("2024-10-27T00:29:59Z")), Open);
    assert_eq!(hours.status_at(at("2024-10-27T00:30:00Z")), Closed);
    // Second pass through 02:00–02:30: stays closed.
    assert_eq!(hours.status_at(at("2024-10-27T01:15:00Z")), Closed);
    // Next Sunday 00:00 CET.
    assert_eq!(
        change(&hours, "2024-10-27T00:30:00Z"),
        Some(at("2024-11-02T23:00:00Z"))
    );
}

// New York 2024: Sunday 03-10 at 07:00Z, 02:00 EST became 03:00 EDT;
// Sunday 11-03 at 06:00Z, 02:00 EDT became 01:00 EST.

#[test]
fn new_york_spring_forward_skips_the_missing_hour() {
    let hours = on_sunday("America/New_York", "01:00", "03:00");
    assert_eq!(hours.status_at(at("2024-03-10T05:59:59Z")), Closed);
    assert_eq!(hours.status_at(at("2024-03-10T06:00:00Z")), Open);
    assert_eq!(hours.status_at(at("2024-03-10T06:59:59Z")), Open);
    assert_eq!(hours.status_at(at("2024-03-10T07:00:00Z")), Closed);
    assert_eq!(
        change(&hours, "2024-03-10T06:00:00Z"),
        Some(at("2024-03-10T07:00:00Z"))
    );
    let late = on_sunday("America/New_York", "02:15", "04:00");
    assert_eq!(
        change(&late, "2024-03-10T05:00:00Z"),
        Some(at("2024-03-10T07:00:00Z"))
    );
}

#[test]
fn new_york_fall_back_opens_at_first_occurrence_and_closes_after_repeat() {
    let hours = on_sunday("America/New_York", "01:00", "03:00");
    assert_eq!(hours.status_at(at("2024-11-03T04:59:59Z")), Closed);
    assert_eq!(hours.status_at(at("2024-11-03T05:00:00Z")), Open);
    // 01:30 EST, the second 01:30.
    assert_eq!(hours.status_at(at("2024-11-03T06:30:00Z")), Open);
    assert_eq!(hours.status_at(at("2024-11-03T07:59:59Z")), Open);
    assert_eq!(hours.status_at(at("2024-11-03T08:00:00Z")), Closed);
    assert_eq!(
        change(&hours, "2024-11-03T04:00:00Z"),
        Some(at("2024-11-03T05:00:00Z"))
    );
    assert_eq!(
        change(&hours, "2024-11-03T05:00:00Z"),
        Some(at("2024-11-03T08:00:00Z"))
    );
}

#[test]
fn holiday_is_closed_all_day_and_skipped_by_next_change() {
    // Wednesday 2024-05-01, Paris in summer (UTC+2).
    let hours = hours(with_special_days(
        weekdays_nine_to_five("Europe/Paris"),
        json!([{ "date": "2024-05-01", "name": "Labour Day" }]),
    ));
    assert_eq!(hours.status_at(at("2024-04-30T21:59:59Z")), Closed);
    assert_eq!(
        hours.status_at(at("2024-04-30T22:00:00Z")),
        holiday("Labour Day")
    );
    assert_eq!(
        hours.status_at(at("2024-05-01T10:00:00Z")),
        holiday("Labour Day")
    );
    assert_eq!(
        hours.status_at(at("2024-05-01T21:59:59Z")),
        holiday("Labour Day")
    );
    assert_eq!(hours.status_at(at("2024-05-01T22:00:00Z")), Closed);
    assert!(!hours.is_open(at("2024-05-01T10:00:00Z")));
    // Tuesday after closing: open again on Thursday 09:00.
    assert_eq!(
        change(&hours, "2024-04-30T15:00:00Z"),
        Some(at("2024-05-02T07:00:00Z"))
    );
}

#[test]
fn special_day_with_own_hours_replaces_weekly_hours() {
    // Christmas Eve 2024 is a Tuesday, Paris in winter (UTC+1).
    let hours = hours(with_special_days(
        weekdays_nine_to_five("Europe/Paris"),
        json!([
            { "date": "2024-12-24", "name": "Christmas Eve",
              "hours": [{ "open": "09:00", "close": "13:00" }] },
            { "date": "2024-12-25", "name": "Christmas", "annual": true },
            { "date": "2024-12-21", "name": "Saturday before Christmas",
              "hours": [{ "open": "10:00", "close": "14:00" }] },
        ]),
    ));
    assert_eq!(hours.status_at(at("2024-12-24T07:59:59Z")), Closed);
    assert_eq!(hours.status_at(at("2024-12-24T08:00:00Z")), Open);
    assert_eq!(hours.status_at(at("2024-12-24T11:59:59Z")), Open);
    assert_eq!(hours.status_at(at("2024-12-24T12:00:00Z")), Closed);
    // 16:00, open on a normal Tuesday.
    assert_eq!(hours.status_at(at("2024-12-24T15:00:00Z")), Closed);
    assert_eq!(
        change(&hours, "2024-12-24T08:00:00Z"),
        Some(at("2024-12-24T12:00:00Z"))
    );
    // Christmas is a holiday: open again on Thursday the 26th.
    assert_eq!(
        change(&hours, "2024-12-24T12:00:00Z"),
        Some(at("2024-12-26T08:00:00Z"))
    );
    // A Saturday with its own hours.
    assert_eq!(hours.status_at(at("2024-12-21T09:00:00Z")), Open);
    assert_eq!(
        change(&hours, "2024-12-20T16:00:00Z"),
        Some(at("2024-12-21T09:00:00Z"))
    );
}

#[test]
fn annual_holiday_recurs_in_later_years() {
    let hours = hours(with_special_days(
        weekdays_nine_to_five("Europe/Paris"),
        json!([
            { "date": "2020-12-25", "name": "Christmas", "annual": true },
            { "date": "2024-02-29", "name": "Leap day", "annual": true },
        ]),
    ));
    // Thursday 2031-12-25.
    assert_eq!(
        hours.status_at(at("2031-12-25T10:00:00Z")),
        holiday("Christmas")
    );
    // Tuesday 2028-02-29; Monday 2027-03-01 is a normal day.
    assert_eq!(
        hours.status_at(at("2028-02-29T10:00:00Z")),
        holiday("Leap day")
    );
    assert_eq!(hours.status_at(at("2027-03-01T10:00:00Z")), Open);
    assert_eq!(hours.status_at(at("2027-02-28T10:00:00Z")), Closed);
}

#[test]
fn dated_special_day_overrides_annual_one_whatever_the_order() {
    let annual = json!({ "date": "2020-12-25", "name": "Christmas", "annual": true });
    let dated = json!({ "date": "2025-12-25", "name": "Christmas on call",
                        "hours": [{ "open": "10:00", "close": "12:00" }] });
    for special_days in [json!([annual, dated]), json!([dated, annual])] {
        let hours = hours(with_special_days(
            weekdays_nine_to_five("Europe/Paris"),
            special_days,
        ));
        // Thursday 2025-12-25 (UTC+1): 09:00 closed, 10:30 open.
        assert_eq!(hours.status_at(at("2025-12-25T08:00:00Z")), Closed);
        assert_eq!(hours.status_at(at("2025-12-25T09:30:00Z")), Open);
        assert_eq!(hours.status_at(at("2025-12-25T11:00:00Z")), Closed);
        assert_eq!(
            hours.status_at(at("2026-12-25T10:00:00Z")),
            holiday("Christmas")
        );
    }
}

#[test]
fn overnight_ranges_meeting_at_midnight_are_one_open_period() {
    // Monday 2024-01-15, Paris (UTC+1).
    let hours = hours(json!({
        "time_zone": "Europe/Paris",
        "weekly": [
            { "day": "mon", "open": "22:00", "close": "24:00" },
            { "day": "tue", "open": "00:00", "close": "06:00" },
        ],
    }));
    assert_eq!(hours.status_at(at("2024-01-15T20:59:59Z")), Closed);
    assert_eq!(hours.status_at(at("2024-01-15T21:00:00Z")), Open);
    assert_eq!(hours.status_at(at("2024-01-15T22:59:59Z")), Open);
    assert_eq!(hours.status_at(at("2024-01-15T23:00:00Z")), Open);
    assert_eq!(hours.status_at(at("2024-01-16T05:00:00Z")), Closed);
    assert_eq!(
        change(&hours, "2024-01-15T21:00:00Z"),
        Some(at("2024-01-16T05:00:00Z"))
    );
    assert_eq!(
        change(&hours, "2024-01-16T05:00:00Z"),
        Some(at("2024-01-22T21:00:00Z"))
    );
}

#[test]
fn range_closing_at_24_00_closes_at_midnight() {
    let hours = hours(json!({
        "time_zone": "Europe/Paris",
        "weekly": [{ "day": "mon", "open": "22:00", "close": "24:00" }],
    }));
    assert_eq!(hours.status_at(at("2024-01-15T22:59:59Z")), Open);
    assert_eq!(hours.status_at(at("2024-01-15T23:00:00Z")), Closed);
    assert_eq!(
        change(&hours, "2024-01-15T21:00:00Z"),
        Some(at("2024-01-15T23:00:00Z"))
    );
}

#[test]
fn always_open_and_never_open_never_change() {
    let all_week = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .map(|day| json!({ "day": day, "open": "00:00", "close": "24:00" }));
    let always = hours(json!({ "time_zone": "Europe/Paris", "weekly": all_week }));
    assert_eq!(always.status_at(at("2024-03-31T01:00:00Z")), Open);
    assert_eq!(change(&always, "2024-03-30T12:00:00Z"), None);
    assert_eq!(change(&always, "2024-10-26T12:00:00Z"), None);

    let never = hours(json!({
        "time_zone": "Europe/Paris",
        "weekly": [],
        "special_days": [{ "date": "2024-05-01", "name": "Labour Day" }],
    }));
    assert_eq!(never.status_at(at("2024-04-30T10:00:00Z")), Closed);
    assert_eq!(
        never.status_at(at("2024-05-01T10:00:00Z")),
        holiday("Labour Day")
    );
    // Closed to holiday and back is no opening.
    assert_eq!(change(&never, "2024-04-30T10:00:00Z"), None);
}

#[test]
fn always_open_closes_for_a_holiday() {
    let all_week = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .map(|day| json!({ "day": day, "open": "00:00", "close": "24:00" }));
    let hours = hours(json!({
        "time_zone": "America/New_York",
        "weekly": all_week,
        "special_days": [{ "date": "2024-07-04", "name": "Independence Day" }],
    }));
    // Midnight EDT (UTC−4) on either side.
    assert_eq!(
        change(&hours, "2024-07-01T00:00:00Z"),
        Some(at("2024-07-04T04:00:00Z"))
    );
    assert_eq!(
        change(&hours, "2024-07-04T04:00:00Z"),
        Some(at("2024-07-05T04:00:00Z"))
    );
}

#[test]
fn next_change_gives_up_after_the_search_horizon() {
    // Open on one date only, more than 400 days ahead.
    let hours = hours(json!({
        "time_zone": "UTC",
        "weekly": [],
        "special_days": [{ "date": "2026-03-01", "name": "Open day",
                           "hours": [{ "open": "09:00", "close": "10:00" }] }],
    }));
    assert_eq!(change(&hours, "2024-01-01T00:00:00Z"), None);
    assert_eq!(
        change(&hours, "2025-03-01T00:00:00Z"),
        Some(at("2026-03-01T09:00:00Z"))
    );
}

#[test]
fn status_serialises_with_a_status_tag() {
    assert_eq!(
        serde_json::to_value(Open).unwrap(),
        json!({ "status": "open" })
    );
    assert_eq!(
        serde_json::to_value(Closed).unwrap(),
        json!({ "status": "closed" })
    );
    assert_eq!(
        serde_json::to_value(holiday("Christmas")).unwrap(),
        json!({ "status": "holiday", "name": "Christmas" })
    );
    assert!(Open.is_open());
    assert!(!holiday("Christmas").is_open());
}

/// Checks `next_change` against `is_open` evaluated minute by minute over
/// three days around a clock change, in zones whose changes are an hour at
/// 02:00 (Paris, New York), half an hour (Lord Howe) or at midnight
/// (Santiago), and where a range meets midnight.
#[test]
fn next_change_agrees_with_status_minute_by_minute_across_clock_changes() {
    let ranges = [
        ("00:00", "00:30"),
        ("01:00", "02:15"),
        ("02:30", "03:00"),
        ("05:00", "05:01"),
        ("22:00", "24:00"),
    ];
    let weekly: Vec<Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .flat_map(|day| {
            ranges.map(|(open, close)| json!({ "day": day, "open": open, "close": close }))
        })
        .collect();
    let cases = [
        ("Europe/Paris", "2024-03-30T12:00:00Z"),
        ("Europe/Paris", "2024-10-26T12:00:00Z"),
        ("America/New_York", "2024-03-09T12:00:00Z"),
        ("America/New_York", "2024-11-02T12:00:00Z"),
        // 02:00 → 02:30 on 2024-10-06, 02:00 → 01:30 on 2024-04-07.
        ("Australia/Lord_Howe", "2024-10-05T00:00:00Z"),
        ("Australia/Lord_Howe", "2024-04-06T00:00:00Z"),
        // 24:00 → 23:00 on 2024-04-06, 24:00 → 01:00 on 2024-09-08.
        ("America/Santiago", "2024-04-06T00:00:00Z"),
        ("America/Santiago", "2024-09-07T00:00:00Z"),
    ];
    for (zone, start) in cases {
        let hours = hours(json!({ "time_zone": zone, "weekly": weekly }));
        let start = at(start);
        let minutes: Vec<DateTime<Utc>> = (0..3 * 24 * 60)
            .map(|minute| start + chrono::TimeDelta::minutes(minute))
            .collect();
        let open: Vec<bool> = minutes.iter().map(|&t| hours.is_open(t)).collect();
        let mut changes = 0;
        for (i, &t) in minutes.iter().enumerate() {
            assert_eq!(hours.status_at(t).is_open(), open[i], "{zone} {t}");
            let Some(later) = (i + 1..minutes.len()).find(|&j| open[j] != open[i]) else {
                continue;
            };
            changes += usize::from(later == i + 1);
            assert_eq!(
                hours.next_change(t),
                Some(minutes[later]),
                "{zone} from {t}"
            );
        }
        // Eight changes a day (22:00–00:30 is one period), give or take
        // the ends of the window and ranges a clock change skips.
        assert!((18..=26).contains(&changes), "{zone}: {changes} changes");
    }
}
