//! Open, closed or holiday at an instant, and when that next changes.

use chrono::{DateTime, NaiveDateTime, NaiveTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::{first_reaching, latest_wall_clock};
use crate::schedule::{BusinessHours, DaySchedule};
use crate::time_of_day::TimeOfDay;

/// Whether a contact center takes calls at an instant.
///
/// In JSON: `{"status": "open"}`, `{"status": "closed"}`,
/// `{"status": "holiday", "name": "Christmas"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum HoursStatus {
    /// Within opening hours.
    Open,
    /// Outside opening hours: after hours, a day without weekly ranges, or
    /// outside a special day's own hours.
    Closed,
    /// Closed all day by a special day without hours, named `name`.
    Holiday { name: String },
}

impl HoursStatus {
    /// Whether this is [`HoursStatus::Open`].
    pub fn is_open(&self) -> bool {
        matches!(self, HoursStatus::Open)
    }
}

impl BusinessHours {
    /// How far [`BusinessHours::next_change`] looks ahead, in local days.
    pub const NEXT_CHANGE_SEARCH_DAYS: u32 = 400;

    /// The status at `at`: the local date and time of `at` in
    /// [`BusinessHours::time_zone`] tested against the ranges of that date
    /// (a special day's, else the weekday's). A range is open from its
    /// opening minute until just before its closing minute.
    ///
    /// During the second pass through a repeated hour (clocks going back)
    /// the status stays what it was just before the change, so that each
    /// opening and closing time happens once, at its first occurrence.
    ///
    /// Allocates only the name of a holiday; see
    /// [`BusinessHours::is_open`] for a check that never allocates.
    pub fn status_at(&self, at: DateTime<Utc>) -> HoursStatus {
        let local = latest_wall_clock(self.time_zone, at);
        match self.schedule_on(local.date()) {
            DaySchedule::Special(special) if special.hours.is_empty() => HoursStatus::Holiday {
                name: special.name.clone(),
            },
            schedule if schedule.is_open_at(minute_of_day(local)) => HoursStatus::Open,
            _ => HoursStatus::Closed,
        }
    }

    /// Whether [`BusinessHours::status_at`] is [`HoursStatus::Open`],
    /// without allocating.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let local = latest_wall_clock(self.time_zone, at);
        self.schedule_on(local.date())
            .is_open_at(minute_of_day(local))
    }

    /// The first instant strictly after `at` at which the contact center
    /// opens or closes, i.e. [`BusinessHours::is_open`] changes: "we open
    /// again at …" while closed, the closing time while open.
    ///
    /// Moving between [`HoursStatus::Closed`] and [`HoursStatus::Holiday`]
    /// is not a change. Ranges that meet at midnight (Monday 22:00–24:00,
    /// Tuesday 00:00–06:00) are one open period. An opening or closing time
    /// in a gap (clocks going forward) happens at the first instant after
    /// the gap; one in a repeated hour, at its first occurrence.
    ///
    /// `None` when nothing changes within
    /// [`BusinessHours::NEXT_CHANGE_SEARCH_DAYS`] local days: always open,
    /// never open, or next open only further ahead.
    pub fn next_change(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let zone = self.time_zone;
        let open = self.is_open(at);
        let mut date = latest_wall_clock(zone, at).date();
        // Minutes of the day at which openness may change: midnight (the
        // day's ranges take over) and each range's open and close.
        let mut boundaries: Vec<u16> = Vec::with_capacity(8);
        for _ in 0..=Self::NEXT_CHANGE_SEARCH_DAYS {
            boundaries.clear();
            boundaries.push(0);
            for range in self.schedule_on(date).ranges() {
                if range.open < range.close {
                    boundaries.push(range.open.minutes_since_midnight());
                    boundaries.push(range.close.minutes_since_midnight());
                }
            }
            boundaries.retain(|&minute| minute < TimeOfDay::END_OF_DAY.minutes_since_midnight());
            boundaries.sort_unstable();
            boundaries.dedup();
            for &minute in &boundaries {
                let time =
                    NaiveTime::from_hms_opt(u32::from(minute / 60), u32::from(minute % 60), 0)?;
                let Some(instant) = first_reaching(zone, date.and_time(time)) else {
                    continue;
                };
                if instant > at && self.is_open(instant) != open {
                    return Some(instant);
                }
            }
            date = date.succ_opt()?;
        }
        None
    }
}

fn minute_of_day(local: NaiveDateTime) -> u16 {
    // At most 23 * 60 + 59, which fits.
    (local.hour() * 60 + local.minute()) as u16
}

#[cfg(test)]
mod tests;
