//! Between instants and a zone's wall clock across daylight-saving changes.
//!
//! Opening hours are wall-clock times, and a wall clock is not a line:
//! when clocks go forward some local times never happen (a gap), and when
//! they go back some happen twice (an overlap). We give every local time
//! one instant, the first at which the clock shows it *or a later time*:
//!
//! - a time that happens once is that instant;
//! - a time that happens twice is its first occurrence;
//! - a time in a gap is the first instant after the gap.
//!
//! A boundary of a range (an opening or closing time) therefore happens
//! exactly once. The matching view from an instant is the latest wall-clock
//! time shown so far: the local time itself, except during the second pass
//! through a repeated hour, where the clock shows times it already passed
//! and the hours stay as they were just before the clocks went back.
//! chrono-tz holds the zone rules; this module only searches them.

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// The first instant at which the wall clock of `zone` shows `local` or a
/// later time; `None` only outside chrono's range of dates.
pub(crate) fn first_reaching(zone: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(at) => Some(at.to_utc()),
        LocalResult::Ambiguous(first, _) => Some(first.to_utc()),
        LocalResult::None => end_of_gap(zone, local),
    }
}

/// The latest wall-clock time `zone` has shown up to and including `at`:
/// the local time of `at`, except in the second pass through a repeated
/// hour, where it is the time shown just before the clocks went back.
pub(crate) fn latest_wall_clock(zone: Tz, at: DateTime<Utc>) -> NaiveDateTime {
    let local = at.with_timezone(&zone).naive_local();
    let LocalResult::Ambiguous(first, _) = zone.from_local_datetime(&local) else {
        return local;
    };
    if first.to_utc() >= at {
        return local;
    }
    // `at` is the second occurrence of `local`; the clocks went back at a
    // whole second in (first, at]. Find it: before it the offset is still
    // the one of `first`.
    let offset = offset_at(zone, at.timestamp());
    let (mut before, mut after) = (first.timestamp(), at.timestamp());
    while after - before > 1 {
        let middle = before + (after - before) / 2;
        if offset_at(zone, middle) == offset {
            after = middle;
        } else {
            before = middle;
        }
    }
    match DateTime::from_timestamp(after, 0) {
        Some(change) => (change - TimeDelta::nanoseconds(1))
            .with_timezone(&zone)
            .naive_local(),
        None => local,
    }
}

/// The instant the clocks jumped over `local`, which falls in a gap: the
/// first instant whose wall-clock time is `local` or later.
fn end_of_gap(zone: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let wall = local.and_utc().timestamp();
    // The offsets before and after the change; zones change by less than a
    // day at a time, and at most once within a day.
    let before = offset_at(zone, wall.checked_sub(86_400)?)?;
    let after = offset_at(zone, wall.checked_add(86_400)?)?;
    // The change happened at some instant t with t + before <= local <
    // t + after, so in (wall - after, wall - before].
    let (mut low, mut high) = (wall - i64::from(after), wall - i64::from(before));
    let reaches = |t: i64| {
        DateTime::from_timestamp(t, 0)
            .is_some_and(|at| at.with_timezone(&zone).naive_local() >= local)
    };
    if !reaches(high) {
        return DateTime::from_timestamp(high, 0);
    }
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if reaches(middle) {
            high = middle;
        } else {
            low = middle;
        }
    }
    DateTime::from_timestamp(high, 0)
}

/// The UTC offset of `zone` at the Unix time `timestamp`, in seconds.
fn offset_at(zone: Tz, timestamp: i64) -> Option<i32> {
    let at = DateTime::from_timestamp(timestamp, 0)?;
    Some(
        zone.offset_from_utc_datetime(&at.naive_utc())
            .fix()
            .local_minus_utc(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn local(text: &str) -> NaiveDateTime {
        text.parse().unwrap()
    }

    #[test]
    fn time_in_spring_forward_gap_is_reached_at_end_of_gap() {
        // Paris, 2024-03-31: 02:00 CET (01:00 UTC) became 03:00 CEST.
        let paris = chrono_tz::Europe::Paris;
        for time in [
            "2024-03-31T02:00:00",
            "2024-03-31T02:30:00",
            "2024-03-31T02:59:00",
        ] {
            assert_eq!(
                first_reaching(paris, local(time)),
                Some(utc("2024-03-31T01:00:00Z")),
                "{time}"
            );
        }
        assert_eq!(
            first_reaching(paris, local("2024-03-31T01:59:00")),
            Some(utc("2024-03-31T00:59:00Z"))
        );
        assert_eq!(
            first_reaching(paris, local("2024-03-31T03:00:00")),
            Some(utc("2024-03-31T01:00:00Z"))
        );
        // New York, 2024-03-10: 02:00 EST (07:00 UTC) became 03:00 EDT.
        assert_eq!(
            first_reaching(chrono_tz::America::New_York, local("2024-03-10T02:15:00")),
            Some(utc("2024-03-10T07:00:00Z"))
        );
    }

    #[test]
    fn repeated_time_is_reached_at_first_occurrence() {
        // Paris, 2024-10-27: 03:00 CEST (01:00 UTC) became 02:00 CET.
        let paris = chrono_tz::Europe::Paris;
        assert_eq!(
            first_reaching(paris, local("2024-10-27T02:30:00")),
            Some(utc("2024-10-27T00:30:00Z"))
        );
        assert_eq!(
            first_reaching(paris, local("2024-10-27T03:00:00")),
            Some(utc("2024-10-27T02:00:00Z"))
        );
    }

    #[test]
    fn latest_wall_clock_holds_during_second_pass_of_repeated_hour() {
        let paris = chrono_tz::Europe::Paris;
        // First pass: the local time itself.
        assert_eq!(
            latest_wall_clock(paris, utc("2024-10-27T00:30:00Z")),
            local("2024-10-27T02:30:00")
        );
        // Second pass: just before the clocks went back from 03:00 CEST.
        for at in [
            "2024-10-27T01:00:00Z",
            "2024-10-27T01:30:00Z",
            "2024-10-27T01:59:59.5Z",
        ] {
            assert_eq!(
                latest_wall_clock(paris, utc(at)),
                local("2024-10-27T02:59:59.999999999"),
                "{at}"
            );
        }
        // After the repeated hour the clock moves on again.
        assert_eq!(
            latest_wall_clock(paris, utc("2024-10-27T02:00:00Z")),
            local("2024-10-27T03:00:00")
        );
    }
}
