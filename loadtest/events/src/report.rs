//! What a scenario measured: events done per second and their latencies
//! over the measured window, and the `RESULT` line `run.sh` reads.

use std::fmt::Write as _;
use std::sync::Mutex;

use chrono::Utc;

/// Microseconds since the Unix epoch, the clock every timestamp here uses
/// (the events' `occurred_at` included).
pub fn now_us() -> i64 {
    Utc::now().timestamp_micros()
}

/// Every event done (consumed, or its effect committed): when, and how
/// long after it occurred.
#[derive(Default)]
pub struct Recorder {
    done: Mutex<Vec<(i64, u32)>>,
}

impl Recorder {
    /// Events that occurred at `occurred_us` and are done at `done_us`.
    pub fn record(&self, done_us: i64, occurred_us: impl IntoIterator<Item = i64>) {
        let mut done = self
            .done
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for occurred in occurred_us {
            let latency = u32::try_from((done_us - occurred).max(0)).unwrap_or(u32::MAX);
            done.push((done_us, latency));
        }
    }

    /// How many events are done so far.
    pub fn count(&self) -> u64 {
        self.done
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len() as u64
    }

    /// The events done in `[from_us, to_us)`.
    pub fn window(&self, from_us: i64, to_us: i64) -> Window {
        let done = self
            .done
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let seconds = ((to_us - from_us).max(1) as f64) / 1e6;
        let mut per_second =
            vec![0_u64; usize::try_from((to_us - from_us) / 1_000_000).unwrap_or(0)];
        let mut latencies = Vec::new();
        for &(at, latency) in done.iter() {
            if at < from_us || at >= to_us {
                continue;
            }
            latencies.push(latency);
            if let Some(slot) = usize::try_from((at - from_us) / 1_000_000)
                .ok()
                .and_then(|second| per_second.get_mut(second))
            {
                *slot += 1;
            }
        }
        latencies.sort_unstable();
        Window {
            seconds,
            per_second,
            latencies,
        }
    }
}

/// The measured window of a run.
pub struct Window {
    pub seconds: f64,
    /// Events done in each whole second of the window.
    pub per_second: Vec<u64>,
    /// Sorted, in microseconds.
    latencies: Vec<u32>,
}

impl Window {
    pub fn events(&self) -> u64 {
        self.latencies.len() as u64
    }

    pub fn rate(&self) -> f64 {
        self.events() as f64 / self.seconds
    }

    /// The slowest whole second of the window (events done in it).
    pub fn min_second(&self) -> u64 {
        self.per_second.iter().copied().min().unwrap_or(0)
    }

    /// The `p`-th percentile latency (nearest rank), in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.latencies.len()) - 1;
        f64::from(self.latencies[index]) / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.latencies
            .last()
            .map_or(0.0, |&max| f64::from(max) / 1000.0)
    }

    /// `events_per_s`, `min_1s_per_s`, `p50_ms`, `p99_ms`, `max_ms`.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("events_per_s", format!("{:.0}", self.rate())),
            ("min_1s_per_s", self.min_second().to_string()),
            ("p50_ms", format!("{:.2}", self.percentile_ms(50.0))),
            ("p99_ms", format!("{:.2}", self.percentile_ms(99.0))),
            ("max_ms", format!("{:.2}", self.max_ms())),
            ("measured_events", self.events().to_string()),
            ("seconds", format!("{:.1}", self.seconds)),
        ]
    }
}

/// Prints `RESULT scenario=<scenario> key=value …` on stdout.
pub fn result(scenario: &str, fields: &[(&str, String)]) {
    let mut line = format!("RESULT scenario={scenario}");
    for (key, value) in fields {
        let _ = write!(line, " {key}={value}");
    }
    println!("{line}");
}

/// Reads a process's CPU time (user + system, seconds) from /proc, for
/// the profile; `None` off Linux.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // CLK_TCK is 100 on the Linux kernels this runs on (USER_HZ).
    Some(ticks / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_rates_and_percentiles() {
        let recorder = Recorder::default();
        // 100 events done in second 0 (latencies 1..=100 ms), 50 in second 1,
        // and some outside the window.
        for latency_ms in 1..=100_i64 {
            recorder.record(1_000_000, [1_000_000 - latency_ms * 1000]);
        }
        recorder.record(2_500_000, (0..50).map(|_| 2_499_000));
        recorder.record(500_000, [0]);
        recorder.record(3_000_000, [0]);
        let window = recorder.window(1_000_000, 3_000_000);
        assert_eq!(window.events(), 150);
        assert_eq!(window.per_second, vec![100, 50]);
        assert_eq!(window.min_second(), 50);
        assert!((window.rate() - 75.0).abs() < 1e-9);
        assert!((window.max_ms() - 100.0).abs() < 1e-9);
        // 50 at 1 ms, then 1..=100 ms: the 50th percentile is the 75th value.
        assert!((window.percentile_ms(50.0) - 25.0).abs() < 1e-9);
        assert!((window.percentile_ms(99.0) - 99.0).abs() < 1e-9);
    }
}
