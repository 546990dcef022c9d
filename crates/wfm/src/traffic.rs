//! Offered load, the one input every Erlang formula starts from.

use std::time::Duration;

use crate::error::{WfmError, invalid};

/// Offered load in Erlangs: arrival rate × average handle time (AHT).
///
/// One Erlang is one agent kept busy all the time; 100 calls in 30 minutes
/// with an AHT of 180 s offer 100 × 180 s / 1800 s = 10 Erlangs. A value is
/// always finite and in `0.0..=Traffic::MAX_ERLANGS`, so the formulas that
/// take one need no error path.
#[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd)]
pub struct Traffic(f64);

impl Traffic {
    /// No calls at all.
    pub const ZERO: Traffic = Traffic(0.0);

    /// The largest load accepted: far above any single contact-center
    /// queue, and low enough that every calculation, which costs about one
    /// step per agent, stays within milliseconds.
    pub const MAX_ERLANGS: f64 = 1_000_000.0;

    /// A load of `erlangs`, which must be finite, not negative and at most
    /// [`Traffic::MAX_ERLANGS`].
    pub fn new(erlangs: f64) -> Result<Self, WfmError> {
        if !(0.0..=Self::MAX_ERLANGS).contains(&erlangs) {
            return Err(invalid(
                "traffic",
                erlangs,
                "a number of Erlangs in [0, 1000000]",
            ));
        }
        // `-0.0` passes the range check; store it as `0.0`.
        Ok(Traffic(erlangs + 0.0))
    }

    /// The load of `calls_per_interval` arrivals per `interval`, each
    /// holding an agent for `aht` on average (talk + hold + wrap-up).
    pub fn from_rate(
        calls_per_interval: f64,
        interval: Duration,
        aht: Duration,
    ) -> Result<Self, WfmError> {
        if !(calls_per_interval.is_finite() && calls_per_interval >= 0.0) {
            return Err(invalid(
                "calls_per_interval",
                calls_per_interval,
                "a finite number of calls, not negative",
            ));
        }
        if interval.is_zero() {
            return Err(invalid("interval", 0.0, "longer than zero"));
        }
        Self::new(calls_per_interval * aht.as_secs_f64() / interval.as_secs_f64())
    }

    /// The load in Erlangs.
    pub fn erlangs(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Traffic {
    type Error = WfmError;

    fn try_from(erlangs: f64) -> Result<Self, WfmError> {
        Traffic::new(erlangs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_rate_is_arrivals_times_aht_over_interval() {
        // 100 calls per 30 minutes, AHT 180 s: 100 × 180 / 1800 = 10 Erlangs.
        let traffic = Traffic::from_rate(
            100.0,
            Duration::from_secs(30 * 60),
            Duration::from_secs(180),
        )
        .unwrap();
        assert_eq!(traffic.erlangs(), 10.0);

        // 36 calls an hour of 5 minutes each: 36 × 300 / 3600 = 3 Erlangs.
        let traffic =
            Traffic::from_rate(36.0, Duration::from_secs(3600), Duration::from_secs(300)).unwrap();
        assert_eq!(traffic.erlangs(), 3.0);

        // A zero AHT offers no load.
        let traffic = Traffic::from_rate(500.0, Duration::from_secs(60), Duration::ZERO).unwrap();
        assert_eq!(traffic, Traffic::ZERO);
    }

    #[test]
    fn rejects_traffic_that_is_negative_not_finite_or_too_large() {
        for erlangs in [
            -1.0,
            -f64::MIN_POSITIVE,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            Traffic::MAX_ERLANGS * 1.000_001,
            f64::MAX,
        ] {
            let err = Traffic::new(erlangs).unwrap_err();
            let WfmError::InvalidArgument { argument, .. } = err;
            assert_eq!(argument, "traffic", "{erlangs}");
        }
        assert_eq!(
            Traffic::new(-0.0).unwrap().erlangs().to_bits(),
            0.0f64.to_bits()
        );
        assert_eq!(
            Traffic::new(Traffic::MAX_ERLANGS).unwrap().erlangs(),
            Traffic::MAX_ERLANGS
        );
        assert_eq!(Traffic::try_from(2.5).unwrap().erlangs(), 2.5);
    }

    #[test]
    fn from_rate_names_the_bad_argument() {
        let minute = Duration::from_secs(60);
        let argument = |result: Result<Traffic, WfmError>| match result {
            Err(WfmError::InvalidArgument { argument, .. }) => argument,
            Ok(traffic) => panic!("accepted: {traffic:?}"),
        };
        for calls in [-1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                argument(Traffic::from_rate(calls, minute, minute)),
                "calls_per_interval"
            );
        }
        assert_eq!(
            argument(Traffic::from_rate(1.0, Duration::ZERO, minute)),
            "interval"
        );
        // Finite inputs whose product overflows the accepted range.
        assert_eq!(
            argument(Traffic::from_rate(
                f64::MAX,
                Duration::from_nanos(1),
                Duration::MAX
            )),
            "traffic"
        );
        assert_eq!(
            argument(Traffic::from_rate(
                1.0,
                Duration::from_nanos(1),
                Duration::from_secs(3600)
            )),
            "traffic"
        );
    }
}
