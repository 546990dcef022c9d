//! Figures of a run: latency percentiles, per-second counts, the CPU the
//! machine, this process and Redis used, Redis's own time per script, and
//! the `RESULT` line `run.sh` reads.

use std::fmt::Write as _;
use std::time::Duration;

/// Latencies (µs) and completion times (µs since the run's start) of what
/// was measured.
#[derive(Default)]
pub struct Samples {
    /// (done at, latency), both in µs.
    pub done: Vec<(u64, u32)>,
}

impl Samples {
    pub fn push(&mut self, done_us: u64, latency: Duration) {
        let latency = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        self.done.push((done_us, latency));
    }

    pub fn extend(&mut self, other: Samples) {
        self.done.extend(other.done);
    }

    /// The samples done in `[from_us, to_us)`.
    pub fn window(&self, from_us: u64, to_us: u64) -> Window {
        let seconds = (to_us.saturating_sub(from_us).max(1)) as f64 / 1e6;
        let mut per_second = vec![0_u64; ((to_us.saturating_sub(from_us)) / 1_000_000) as usize];
        let mut latencies = Vec::new();
        for &(at, latency) in &self.done {
            if at < from_us || at >= to_us {
                continue;
            }
            latencies.push(latency);
            if let Some(slot) = per_second.get_mut(((at - from_us) / 1_000_000) as usize) {
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

/// What was done in a measured window.
pub struct Window {
    pub seconds: f64,
    pub per_second: Vec<u64>,
    /// Sorted, µs.
    pub latencies: Vec<u32>,
}

impl Window {
    pub fn count(&self) -> u64 {
        self.latencies.len() as u64
    }

    pub fn rate(&self) -> f64 {
        self.count() as f64 / self.seconds
    }

    /// The slowest whole second of the window.
    pub fn min_second(&self) -> u64 {
        self.per_second.iter().copied().min().unwrap_or(0)
    }

    /// The `p`-th percentile (nearest rank), in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        percentile(&self.latencies, p) / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.latencies
            .last()
            .map_or(0.0, |&max| f64::from(max) / 1000.0)
    }

    /// `per_s`, `min_1s_per_s`, `p50_ms`, `p99_ms`, `max_ms`, `count`.
    pub fn fields(&self, prefix: &str) -> Vec<(String, String)> {
        vec![
            (format!("{prefix}per_s"), format!("{:.0}", self.rate())),
            (
                format!("{prefix}min_1s_per_s"),
                self.min_second().to_string(),
            ),
            (
                format!("{prefix}p50_ms"),
                format!("{:.3}", self.percentile_ms(50.0)),
            ),
            (
                format!("{prefix}p99_ms"),
                format!("{:.3}", self.percentile_ms(99.0)),
            ),
            (format!("{prefix}max_ms"), format!("{:.3}", self.max_ms())),
            (format!("{prefix}count"), self.count().to_string()),
        ]
    }
}

/// The `p`-th percentile (nearest rank) of sorted values.
pub fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Prints `RESULT scenario=<scenario> key=value …` on stdout.
pub fn result(scenario: &str, fields: &[(String, String)]) {
    let mut line = format!("RESULT scenario={scenario}");
    for (key, value) in fields {
        let _ = write!(line, " {key}={value}");
    }
    println!("{line}");
}

/// CPU time so far (seconds): the whole machine busy, this process, and
/// Redis (`redis-server`, found in /proc). Linux only; zeros elsewhere.
#[derive(Clone, Copy, Default)]
pub struct Cpu {
    machine_busy: f64,
    this: f64,
    redis: f64,
    at: Option<std::time::Instant>,
}

/// CLK_TCK: 100 on the Linux kernels this runs on (USER_HZ).
const TICKS: f64 = 100.0;

fn process_seconds(stat: &str) -> Option<f64> {
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    Some((fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?) / TICKS)
}

fn redis_pid() -> Option<String> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.bytes().all(|b| b.is_ascii_digit())
            && std::fs::read_to_string(entry.path().join("comm"))
                .is_ok_and(|comm| comm.trim() == "redis-server")
        {
            return Some(name);
        }
    }
    None
}

impl Cpu {
    pub fn now() -> Self {
        let machine_busy = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|stat| {
                let line = stat.lines().next()?.to_owned();
                let values: Vec<f64> = line
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|v| v.parse().ok())
                    .collect();
                // user nice system idle iowait irq softirq steal …
                let idle = values.get(3)? + values.get(4).unwrap_or(&0.0);
                let total: f64 = values.iter().take(8).sum();
                Some((total - idle) / TICKS)
            })
            .unwrap_or(0.0);
        let this = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| process_seconds(&s))
            .unwrap_or(0.0);
        let redis = redis_pid()
            .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
            .and_then(|s| process_seconds(&s))
            .unwrap_or(0.0);
        Cpu {
            machine_busy,
            this,
            redis,
            at: Some(std::time::Instant::now()),
        }
    }

    /// Cores busy between `self` and `later`: `cpu_machine`, `cpu_this`,
    /// `cpu_redis`.
    pub fn fields(&self, later: &Cpu) -> Vec<(String, String)> {
        let seconds = match (self.at, later.at) {
            (Some(a), Some(b)) => b.duration_since(a).as_secs_f64().max(1e-3),
            _ => 1.0,
        };
        vec![
            (
                "cpu_machine".into(),
                format!("{:.2}", (later.machine_busy - self.machine_busy) / seconds),
            ),
            (
                "cpu_this".into(),
                format!("{:.2}", (later.this - self.this) / seconds),
            ),
            (
                "cpu_redis".into(),
                format!("{:.2}", (later.redis - self.redis) / seconds),
            ),
        ]
    }
}

/// Redis's own count and time of script calls (`INFO commandstats`,
/// `evalsha` and `eval`), over a separate connection.
pub struct RedisStats {
    connection: redis::aio::MultiplexedConnection,
}

#[derive(Clone, Copy, Default)]
pub struct ScriptTime {
    pub calls: u64,
    pub usec: u64,
}

impl RedisStats {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        Ok(Self {
            connection: client.get_multiplexed_async_connection().await?,
        })
    }

    /// Script calls so far (all clients of this Redis).
    pub async fn scripts(&mut self) -> ScriptTime {
        let info: String = match redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut self.connection)
            .await
        {
            Ok(info) => info,
            Err(_) => return ScriptTime::default(),
        };
        let mut total = ScriptTime::default();
        for line in info.lines() {
            let Some(rest) = line
                .strip_prefix("cmdstat_evalsha:")
                .or_else(|| line.strip_prefix("cmdstat_eval:"))
            else {
                continue;
            };
            for pair in rest.split(',') {
                match pair.split_once('=') {
                    Some(("calls", v)) => total.calls += v.parse::<u64>().unwrap_or(0),
                    Some(("usec", v)) => total.usec += v.parse::<u64>().unwrap_or(0),
                    _ => {}
                }
            }
        }
        total
    }
}

impl ScriptTime {
    /// `redis_scripts_per_s`, `redis_us_per_script` between `self` and
    /// `later` over `seconds`.
    pub fn fields(&self, later: &ScriptTime, seconds: f64) -> Vec<(String, String)> {
        let calls = later.calls.saturating_sub(self.calls);
        let usec = later.usec.saturating_sub(self.usec);
        vec![
            (
                "redis_scripts_per_s".into(),
                format!("{:.0}", calls as f64 / seconds.max(1e-3)),
            ),
            (
                "redis_us_per_script".into(),
                format!(
                    "{:.1}",
                    if calls > 0 {
                        usec as f64 / calls as f64
                    } else {
                        0.0
                    }
                ),
            ),
            (
                "redis_script_busy".into(),
                format!("{:.2}", usec as f64 / 1e6 / seconds.max(1e-3)),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_rates_and_percentiles() {
        let mut samples = Samples::default();
        for ms in 1..=100_u64 {
            samples.push(1_000_000, Duration::from_millis(ms));
        }
        for _ in 0..50 {
            samples.push(2_500_000, Duration::from_millis(1));
        }
        samples.push(500_000, Duration::ZERO);
        samples.push(3_000_000, Duration::ZERO);
        let window = samples.window(1_000_000, 3_000_000);
        assert_eq!(window.count(), 150);
        assert_eq!(window.per_second, vec![100, 50]);
        assert_eq!(window.min_second(), 50);
        assert!((window.rate() - 75.0).abs() < 1e-9);
        assert!((window.max_ms() - 100.0).abs() < 1e-9);
        assert!((window.percentile_ms(50.0) - 25.0).abs() < 1e-9);
        assert!((window.percentile_ms(99.0) - 99.0).abs() < 1e-9);
    }
}
