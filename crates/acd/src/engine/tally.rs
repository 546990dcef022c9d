//! A queue's figures for the current day (midnight to midnight in the
//! queue's time zone), kept with the queue so they survive a takeover:
//! what entered, was answered (and within the service-level threshold),
//! abandoned (and within it: short abandons), and handle times.
//!
//! Service level is the common contact-center definition that leaves
//! short abandons out: answered within the threshold ÷ (answered +
//! abandoned after the threshold). Average speed of answer is the mean
//! wait of answered contacts; average handle time is talk time plus the
//! queue's after-contact work time, per handled contact.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{Ctx, Engine};
use crate::ids::QueueId;

/// Counts of one queue for one local day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayTally {
    /// The local date counted; `None` before the first contact.
    pub day: Option<NaiveDate>,
    /// Contacts that entered the queue.
    pub entered: u32,
    pub answered: u32,
    /// Answered within the service-level threshold.
    pub answered_within_threshold: u32,
    pub abandoned: u32,
    /// Abandoned within the threshold (short abandons).
    pub abandoned_within_threshold: u32,
    /// Sent to the overflow step after the queue's maximum wait.
    #[serde(default)]
    pub overflowed: u32,
    /// Sum of the answered contacts' waits, in ms.
    pub answered_wait_ms: u64,
    /// Contacts that ended after being answered.
    pub handled: u32,
    /// Sum of their talk plus after-contact work times, in ms.
    pub handle_ms: u64,
}

impl DayTally {
    /// Answered within the threshold ÷ (answered + abandoned after it);
    /// `None` with nothing to count.
    pub fn service_level(&self) -> Option<f64> {
        let counted = u64::from(self.answered)
            + u64::from(
                self.abandoned
                    .saturating_sub(self.abandoned_within_threshold),
            );
        (counted > 0).then(|| f64::from(self.answered_within_threshold) / counted as f64)
    }

    /// Mean wait of answered contacts.
    pub fn average_speed_of_answer(&self) -> Option<Duration> {
        (self.answered > 0)
            .then(|| Duration::from_millis(self.answered_wait_ms / u64::from(self.answered)))
    }

    /// Mean handle time (talk plus after-contact work).
    pub fn average_handle_time(&self) -> Option<Duration> {
        (self.handled > 0).then(|| Duration::from_millis(self.handle_ms / u64::from(self.handled)))
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Engine {
    /// Updates the queue's day figures at `at`, starting a new day when
    /// `at` is past the counted one; `update` gets the tally and the
    /// queue's threshold.
    pub(super) fn count(
        &mut self,
        queue: QueueId,
        ctx: &mut Ctx,
        update: impl FnOnce(&mut DayTally, Option<Duration>),
    ) {
        let at = ctx.at;
        if let Some(record) = self.state.queues.get_mut(&queue) {
            let day = at.with_timezone(&record.config.zone()).date_naive();
            if record.today.day != Some(day) {
                record.today = DayTally {
                    day: Some(day),
                    ..DayTally::default()
                };
            }
            update(&mut record.today, record.config.service_level);
            ctx.out.changed.queues.insert(queue);
        }
    }

    /// The queue's figures for the day of `at` (zeros if nothing counted
    /// yet that day).
    pub(super) fn today(&self, queue: QueueId, at: DateTime<Utc>) -> DayTally {
        match self.state.queues.get(&queue) {
            Some(record) => {
                let day = at.with_timezone(&record.config.zone()).date_naive();
                if record.today.day == Some(day) {
                    record.today.clone()
                } else {
                    DayTally {
                        day: Some(day),
                        ..DayTally::default()
                    }
                }
            }
            None => DayTally::default(),
        }
    }
}

/// Counts an answered contact that waited `wait`.
pub(super) fn answered(tally: &mut DayTally, threshold: Option<Duration>, wait: Duration) {
    tally.answered += 1;
    tally.answered_wait_ms += millis(wait);
    if threshold.is_some_and(|threshold| wait <= threshold) {
        tally.answered_within_threshold += 1;
    }
}

/// Counts an abandoned contact that waited `wait`.
pub(super) fn abandoned(tally: &mut DayTally, threshold: Option<Duration>, wait: Duration) {
    tally.abandoned += 1;
    if threshold.is_some_and(|threshold| wait <= threshold) {
        tally.abandoned_within_threshold += 1;
    }
}

/// Counts a handled contact: talk time plus after-contact work.
pub(super) fn handled(tally: &mut DayTally, handle: Duration) {
    tally.handled += 1;
    tally.handle_ms += millis(handle);
}
