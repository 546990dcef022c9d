//! Per-source rate limiting of what the edge receives, against floods and
//! scanners (sipvicious-style OPTIONS and REGISTER sweeps): every request
//! from one address takes a token from that address's bucket; past the
//! bucket it is dropped unanswered, before it is parsed, so a flood costs
//! the edge a map lookup per datagram and the scanner learns nothing.
//! Responses (to requests the edge sent) are never limited. A legitimate
//! phone that exceeds the rate briefly loses nothing: its transaction
//! retransmits.
//!
//! The buckets live in this process (an edge replica sees the traffic a
//! load balancer sends it), bounded in number: when full, buckets idle
//! for a while are forgotten, and a new address beyond that is not
//! tracked (and not limited) rather than evicting active ones.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Requests refused by the per-source limit.
pub const THROTTLED_METRIC: &str = "switchboard_edge_sip_throttled_total";

/// A token bucket per source address.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceLimit {
    /// Requests at once.
    pub burst: u32,
    /// Requests per second over time.
    pub per_second: f64,
    /// Addresses tracked at most.
    pub max_sources: usize,
}

impl Default for SourceLimit {
    fn default() -> Self {
        Self {
            burst: 100,
            per_second: 50.0,
            max_sources: 100_000,
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every source.
pub(crate) struct Flood {
    limit: SourceLimit,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// A bucket idle this long is full again, so it can be forgotten.
fn refill_time(limit: &SourceLimit) -> Duration {
    Duration::from_secs_f64((f64::from(limit.burst) / limit.per_second.max(0.001)).min(3600.0))
}

impl Flood {
    pub(crate) fn new(limit: SourceLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a request from `source` may be taken now.
    pub(crate) fn admit(&self, source: IpAddr, now: Instant) -> bool {
        let limit = &self.limit;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !buckets.contains_key(&source) && buckets.len() >= limit.max_sources {
            let idle = refill_time(limit);
            buckets.retain(|_, bucket| now.duration_since(bucket.at) < idle);
            if buckets.len() >= limit.max_sources {
                return true;
            }
        }
        let bucket = buckets.entry(source).or_insert(Bucket {
            tokens: f64::from(limit.burst),
            at: now,
        });
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * limit.per_second).min(f64::from(limit.burst));
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn a_source_gets_its_burst_then_its_rate_and_others_are_untouched() {
        let flood = Flood::new(SourceLimit {
            burst: 3,
            per_second: 10.0,
            max_sources: 10,
        });
        let start = Instant::now();
        let admitted = (0..5).filter(|_| flood.admit(address(1), start)).count();
        assert_eq!(admitted, 3);
        assert!(
            flood.admit(address(2), start),
            "another source has its own bucket"
        );
        assert!(!flood.admit(address(1), start + Duration::from_millis(50)));
        assert!(
            flood.admit(address(1), start + Duration::from_millis(100)),
            "one token per 100 ms"
        );
        assert!(!flood.admit(address(1), start + Duration::from_millis(110)));
    }

    #[test]
    fn the_table_stays_bounded_and_forgets_idle_sources_first() {
        let flood = Flood::new(SourceLimit {
            burst: 1,
            per_second: 1.0,
            max_sources: 2,
        });
        let start = Instant::now();
        assert!(flood.admit(address(1), start));
        assert!(flood.admit(address(2), start));
        assert!(!flood.admit(address(1), start), "address 1 spent its token");
        // A third address while both are active: not tracked, not limited.
        assert!(flood.admit(address(3), start));
        assert!(flood.admit(address(3), start));
        // Later both are idle (full again): forgotten to make room.
        let later = start + Duration::from_secs(2);
        assert!(flood.admit(address(3), later));
        assert!(!flood.admit(address(3), later), "now tracked");
        assert_eq!(flood.buckets.lock().unwrap().len(), 1);
    }
}
