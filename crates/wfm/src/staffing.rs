//! How many agents a forecast needs: the smallest N meeting a service
//! level, ASA or occupancy goal, and the headcount to schedule after
//! shrinkage.

use std::time::Duration;

use crate::erlang::{erlang_c, erlang_c_from_b, is_stable, next_erlang_b};
use crate::error::{WfmError, invalid};
use crate::kpi::{
    asa_from_c, average_speed_of_answer, occupancy, service_level, service_level_from_c,
};
use crate::traffic::Traffic;

/// A service level goal: `fraction` of calls answered within
/// `answer_within`, e.g. 80% within 20 s ("80/20").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceLevelTarget {
    fraction: f64,
    answer_within: Duration,
}

impl ServiceLevelTarget {
    /// `fraction` must be strictly between 0 and 1: every N meets 0, and no
    /// finite N meets 1.
    pub fn new(fraction: f64, answer_within: Duration) -> Result<Self, WfmError> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(invalid(
                "target_fraction",
                fraction,
                "strictly between 0 and 1",
            ));
        }
        Ok(Self {
            fraction,
            answer_within,
        })
    }

    /// The share of calls to answer in time, in (0, 1).
    pub fn fraction(self) -> f64 {
        self.fraction
    }

    /// The answer time the fraction is counted against.
    pub fn answer_within(self) -> Duration {
        self.answer_within
    }
}

/// The smallest number of agents whose [`service_level`] meets `target`
/// and, if given, whose [`occupancy`] is at most `max_occupancy` (in
/// (0, 1]). 0 when there is no traffic.
///
/// Steps the Erlang B recursion up from zero agents and tests each stable
/// N in turn (service level only rises with N), so it costs one step per
/// agent of the answer: about A + a few √A. The answer is checked with the
/// same arithmetic as [`service_level`], so `service_level(answer)` ≥ the
/// target exactly.
pub fn agents_for_service_level(
    traffic: Traffic,
    aht: Duration,
    target: ServiceLevelTarget,
    max_occupancy: Option<f64>,
) -> Result<u32, WfmError> {
    let min_agents = match max_occupancy {
        Some(max) => agents_for_occupancy(traffic, max)?,
        None => 0,
    };
    let a = traffic.erlangs();
    smallest_agents(traffic, min_agents, |n, c| {
        service_level_from_c(a, n, c, aht, target.answer_within) >= target.fraction
    })
}

/// The smallest number of agents whose [`average_speed_of_answer`] is at
/// most `target_asa` (above zero: no finite N reaches zero) and, if
/// given, whose [`occupancy`] is at most `max_occupancy`. 0 when there is
/// no traffic.
pub fn agents_for_asa(
    traffic: Traffic,
    aht: Duration,
    target_asa: Duration,
    max_occupancy: Option<f64>,
) -> Result<u32, WfmError> {
    if target_asa.is_zero() {
        return Err(invalid("target_asa", 0.0, "longer than zero"));
    }
    let min_agents = match max_occupancy {
        Some(max) => agents_for_occupancy(traffic, max)?,
        None => 0,
    };
    let a = traffic.erlangs();
    smallest_agents(traffic, min_agents, |n, c| {
        asa_from_c(a, n, c, aht).is_some_and(|asa| asa <= target_asa)
    })
}

/// The smallest number of agents whose [`occupancy`] A / N is at most
/// `max_occupancy`, which must be in (0, 1]. 0 when there is no traffic.
pub fn agents_for_occupancy(traffic: Traffic, max_occupancy: f64) -> Result<u32, WfmError> {
    if !(max_occupancy > 0.0 && max_occupancy <= 1.0) {
        return Err(invalid("max_occupancy", max_occupancy, "in (0, 1]"));
    }
    let a = traffic.erlangs();
    let too_many = || {
        invalid(
            "max_occupancy",
            max_occupancy,
            "large enough that traffic / max_occupancy fits in a u32 agent count",
        )
    };
    // Finite and not negative, or +∞ for a tiny `max_occupancy`.
    let estimate = (a / max_occupancy).ceil();
    if estimate > f64::from(u32::MAX) {
        return Err(too_many());
    }
    // The estimate is within one of the answer; settle it with the same
    // division `occupancy` reports, so the answer agrees with it exactly.
    let mut n = estimate as u32;
    let fits = |n: u32| a == 0.0 || (n > 0 && a / f64::from(n) <= max_occupancy);
    while n > 0 && fits(n - 1) {
        n -= 1;
    }
    while !fits(n) {
        n = n.checked_add(1).ok_or_else(too_many)?;
    }
    Ok(n)
}

/// The headcount to schedule so that `agents` remain on the phones after
/// `shrinkage` (the share of paid time lost to breaks, training, absence
/// …, in [0, 1)): ⌈agents / (1 − shrinkage)⌉.
///
/// A quotient within 1e-12 (relative) of a whole number counts as that
/// number: 1 − 0.9 is not exactly 0.1 in binary, and 1 agent at 90%
/// shrinkage should schedule 10, not 11.
pub fn scheduled_headcount(agents: u32, shrinkage: f64) -> Result<u32, WfmError> {
    check_shrinkage(shrinkage)?;
    let exact = f64::from(agents) / (1.0 - shrinkage);
    let nearest = exact.round();
    let headcount = if (exact - nearest).abs() <= exact * 1e-12 {
        nearest
    } else {
        exact.ceil()
    };
    if headcount > f64::from(u32::MAX) {
        return Err(invalid(
            "shrinkage",
            shrinkage,
            "small enough that the scheduled headcount fits in a u32",
        ));
    }
    Ok(headcount as u32)
}

/// A staffing plan for one interval: the agents needed to meet a service
/// level target, the headcount to schedule for them, and what callers can
/// expect with that many agents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Staffing {
    /// The offered load.
    pub traffic: Traffic,
    /// Agents on the phones needed to meet the target (before shrinkage).
    pub raw_agents: u32,
    /// Headcount to schedule so that `raw_agents` remain after shrinkage.
    pub scheduled_agents: u32,
    /// Erlang C with `raw_agents`: the share of calls that wait.
    pub probability_of_waiting: f64,
    /// Share of calls answered within the target time with `raw_agents`.
    pub service_level: f64,
    /// Average speed of answer with `raw_agents`.
    pub average_speed_of_answer: Duration,
    /// Occupancy of `raw_agents`.
    pub occupancy: f64,
}

impl Staffing {
    /// Plans for `calls_per_interval` arrivals per `interval` with an
    /// average handle time `aht`: the fewest agents meeting `target` (and
    /// `max_occupancy`, if given), scheduled up for `shrinkage` (in
    /// [0, 1)).
    pub fn plan(
        calls_per_interval: f64,
        interval: Duration,
        aht: Duration,
        target: ServiceLevelTarget,
        shrinkage: f64,
        max_occupancy: Option<f64>,
    ) -> Result<Self, WfmError> {
        let traffic = Traffic::from_rate(calls_per_interval, interval, aht)?;
        Self::for_traffic(traffic, aht, target, shrinkage, max_occupancy)
    }

    /// [`Staffing::plan`] for a load already in Erlangs.
    pub fn for_traffic(
        traffic: Traffic,
        aht: Duration,
        target: ServiceLevelTarget,
        shrinkage: f64,
        max_occupancy: Option<f64>,
    ) -> Result<Self, WfmError> {
        check_shrinkage(shrinkage)?;
        let raw_agents = agents_for_service_level(traffic, aht, target, max_occupancy)?;
        Ok(Staffing {
            traffic,
            raw_agents,
            scheduled_agents: scheduled_headcount(raw_agents, shrinkage)?,
            probability_of_waiting: erlang_c(traffic, raw_agents),
            service_level: service_level(traffic, raw_agents, aht, target.answer_within),
            // The search only returns stable agent counts, which have an ASA.
            average_speed_of_answer: average_speed_of_answer(traffic, raw_agents, aht)
                .unwrap_or(Duration::MAX),
            occupancy: occupancy(traffic, raw_agents),
        })
    }
}

fn check_shrinkage(shrinkage: f64) -> Result<(), WfmError> {
    if !(0.0..1.0).contains(&shrinkage) {
        return Err(invalid("shrinkage", shrinkage, "in [0, 1)"));
    }
    Ok(())
}

/// The smallest stable N ≥ `min_agents` for which `meets(N, C(N))` holds,
/// where `meets` only turns from false to true as N grows.
///
/// Carries B(N) along the recursion, exactly as `erlang_b` computes it, so
/// `meets` sees the same C that `erlang_c(traffic, N)` returns. It ends:
/// past the load C falls like a Poisson tail, below 1e-30 by
/// N ≈ A + 12√A + 30 for any accepted load, where SL rounds to 1 and ASA
/// to under a nanosecond for any AHT a `Duration` holds, which meets any
/// valid target.
fn smallest_agents(
    traffic: Traffic,
    min_agents: u32,
    meets: impl Fn(u32, f64) -> bool,
) -> Result<u32, WfmError> {
    let a = traffic.erlangs();
    let mut b = 1.0;
    let mut n = 0;
    while n < min_agents {
        if b == 0.0 {
            // Zero stays zero: skip the remaining steps.
            n = min_agents;
            break;
        }
        n += 1;
        b = next_erlang_b(a, b, n);
    }
    loop {
        if is_stable(traffic, n) && meets(n, erlang_c_from_b(a, n, b)) {
            return Ok(n);
        }
        let Some(next) = n.checked_add(1) else {
            // Unreachable for an accepted load (see above).
            return Err(invalid(
                "traffic",
                a,
                "small enough for the target to be met by a u32 agent count",
            ));
        };
        n = next;
        if b != 0.0 {
            b = next_erlang_b(a, b, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn traffic(erlangs: f64) -> Traffic {
        Traffic::new(erlangs).unwrap()
    }

    fn target(fraction: f64, seconds: u32) -> ServiceLevelTarget {
        ServiceLevelTarget::new(fraction, seconds * SECOND).unwrap()
    }

    #[track_caller]
    fn assert_invalid<T: std::fmt::Debug>(result: Result<T, WfmError>, expected: &str) {
        match result {
            Err(WfmError::InvalidArgument { argument, .. }) => assert_eq!(argument, expected),
            Ok(value) => panic!("accepted, gave {value:?}; expected an invalid {expected}"),
        }
    }

    #[test]
    fn published_example_needs_fourteen_agents_and_twenty_scheduled() {
        // 100 calls per 30 minutes, AHT 180 s: A = 10 Erlangs; 80/20.
        // Exact service levels (see kpi::tests::published_example_ten_erlangs):
        // 13 agents 0.79559478841778311910, 14 agents 0.88835001917946688425,
        // so 14 agents; 30% shrinkage schedules 14 / 0.7 = 20 (the published
        // walk-through's answers).
        let a = traffic(10.0);
        let aht = 180 * SECOND;
        assert_eq!(
            agents_for_service_level(a, aht, target(0.8, 20), None),
            Ok(14)
        );

        let plan =
            Staffing::plan(100.0, 30 * 60 * SECOND, aht, target(0.8, 20), 0.3, None).unwrap();
        assert_eq!(plan.traffic, a);
        assert_eq!(plan.raw_agents, 14);
        assert_eq!(plan.scheduled_agents, 20);
        assert!((plan.probability_of_waiting - 0.174_131_933_595_049_84).abs() < 1e-15);
        assert!((plan.service_level - 0.888_350_019_179_466_9).abs() < 1e-15);
        let asa = plan.average_speed_of_answer.as_secs_f64();
        assert!((asa - 7.835_937_011_777_243).abs() < 1e-9, "ASA = {asa}");
        assert_eq!(plan.occupancy, 10.0 / 14.0);

        // 85% max occupancy does not bind (10/14 = 71%); 70% does: 15.
        assert_eq!(
            agents_for_service_level(a, aht, target(0.8, 20), Some(0.85)),
            Ok(14)
        );
        assert_eq!(
            agents_for_service_level(a, aht, target(0.8, 20), Some(0.7)),
            Ok(15)
        );
        // SL(13) = 0.7956: an 79.5% target is met by 13.
        assert_eq!(
            agents_for_service_level(a, aht, target(0.795, 20), None),
            Ok(13)
        );
        // ASA: 12 agents 40.44 s, 13 agents 17.12 s, 14 agents 7.84 s.
        assert_eq!(agents_for_asa(a, aht, 20 * SECOND, None), Ok(13));
        assert_eq!(agents_for_asa(a, aht, 8 * SECOND, None), Ok(14));
        assert_eq!(agents_for_asa(a, aht, 7 * SECOND, None), Ok(15));
        assert_eq!(agents_for_asa(a, aht, 20 * SECOND, Some(0.7)), Ok(15));
    }

    #[test]
    fn large_loads_match_exact_references() {
        // Smallest N for the target, checked in Python with exact Erlang C
        // (`erlang_c` and `dec` from the script in erlang::tests) and
        // 40-digit decimals for the exponential, at N − 1 and N:
        //
        //   def sl(a, n, within_s, aht_s):
        //       c = dec(erlang_c(a, 1, n))
        //       return 1 - c * (-(n - a) * Decimal(within_s) / Decimal(aht_s)).exp()
        //   for a, aht, within, n in [(1000, 300, 20, 1015), (5000, 300, 20, 5019),
        //                             (5000, 240, 15, 5029)]:
        //       print(a, n - 1, sl(a, n - 1, within, aht), n, sl(a, n, within, aht))
        //
        //   A     AHT   target  N − 1: SL               N: SL
        //   1000  300s  80/20   1014: 0.78277053972679  1015: 0.80589747938571
        //   5000  300s  80/20   5018: 0.78390600895831  5019: 0.80170861260141
        //   5000  240s  90/15   5028: 0.89765768388039  5029: 0.90578782610692
        let cases = [
            (
                1000.0,
                300,
                target(0.8, 20),
                1015,
                0.782_770_539_726_789_4,
                0.805_897_479_385_710_5,
            ),
            (
                5000.0,
                300,
                target(0.8, 20),
                5019,
                0.783_906_008_958_314_9,
                0.801_708_612_601_414,
            ),
            (
                5000.0,
                240,
                target(0.9, 15),
                5029,
                0.897_657_683_880_392_5,
                0.905_787_826_106_919_3,
            ),
        ];
        for (erlangs, aht, target, agents, sl_below, sl_at) in cases {
            let a = traffic(erlangs);
            let aht = aht * SECOND;
            assert_eq!(agents_for_service_level(a, aht, target, None), Ok(agents));
            let within = target.answer_within();
            assert!((service_level(a, agents - 1, aht, within) - sl_below).abs() < 1e-11);
            assert!((service_level(a, agents, aht, within) - sl_at).abs() < 1e-11);
        }
    }

    #[test]
    fn the_answer_is_the_smallest_that_meets_the_target() {
        let loads = [0.001, 0.5, 1.0, 3.3, 10.0, 42.0, 199.9, 777.0, 2500.0];
        let ahts = [1, 30, 180, 600];
        let goals = [(0.5, 0), (0.8, 20), (0.9, 10), (0.95, 60), (0.999, 5)];
        for erlangs in loads {
            let a = traffic(erlangs);
            for aht in ahts {
                let aht = aht * SECOND;
                for (fraction, seconds) in goals {
                    let goal = target(fraction, seconds);
                    let within = goal.answer_within();
                    let n = agents_for_service_level(a, aht, goal, None).unwrap();
                    assert!(service_level(a, n, aht, within) >= fraction);
                    assert!(n > 0 && service_level(a, n - 1, aht, within) < fraction);

                    let asa_target = Duration::from_secs_f64(f64::from(seconds.max(1)) / 2.0);
                    let n = agents_for_asa(a, aht, asa_target, None).unwrap();
                    assert!(average_speed_of_answer(a, n, aht).unwrap() <= asa_target);
                    assert!(
                        n == 0
                            || average_speed_of_answer(a, n - 1, aht)
                                .is_none_or(|asa| asa > asa_target)
                    );
                }
            }
        }
    }

    #[test]
    fn occupancy_caps_add_agents_until_occupancy_fits() {
        for erlangs in [0.5, 8.5, 10.0, 99.0, 4321.25] {
            let a = traffic(erlangs);
            for max in [0.1, 0.5, 0.7, 0.85, 0.9, 0.95, 1.0] {
                let n = agents_for_occupancy(a, max).unwrap();
                assert!(occupancy(a, n) <= max, "{erlangs} / {n} > {max}");
                assert!(n == 0 || erlangs / f64::from(n - 1) > max);
                let with_cap =
                    agents_for_service_level(a, 180 * SECOND, target(0.8, 20), Some(max)).unwrap();
                let without =
                    agents_for_service_level(a, 180 * SECOND, target(0.8, 20), None).unwrap();
                assert_eq!(with_cap, without.max(n));
            }
        }
        // 8.5 / 10 rounds to exactly 0.85: 10 agents, not 11.
        assert_eq!(agents_for_occupancy(traffic(8.5), 0.85), Ok(10));
        assert_eq!(agents_for_occupancy(traffic(10.0), 1.0), Ok(10));
        assert_eq!(agents_for_occupancy(Traffic::ZERO, 0.5), Ok(0));
    }

    #[test]
    fn shrinkage_schedules_up_to_whole_agents() {
        assert_eq!(scheduled_headcount(14, 0.3), Ok(20));
        assert_eq!(scheduled_headcount(13, 0.3), Ok(19)); // 18.57
        assert_eq!(scheduled_headcount(10, 0.0), Ok(10));
        assert_eq!(scheduled_headcount(0, 0.5), Ok(0));
        // 1 / (1 − 0.9) is 10.000000000000002 in f64.
        assert_eq!(scheduled_headcount(1, 0.9), Ok(10));
        assert_eq!(scheduled_headcount(7, 0.9), Ok(70));
        assert_eq!(scheduled_headcount(3, 0.35), Ok(5)); // 4.6
        assert_eq!(scheduled_headcount(u32::MAX, 0.0), Ok(u32::MAX));
        for shrinkage in [-0.1, 1.0, 1.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_invalid(scheduled_headcount(10, shrinkage), "shrinkage");
        }
        // Representable but overflows the headcount.
        assert_invalid(scheduled_headcount(1_000_000, 1.0 - 1e-15), "shrinkage");
        assert_invalid(scheduled_headcount(u32::MAX, 0.5), "shrinkage");
    }

    #[test]
    fn no_traffic_needs_no_agents() {
        let a = Traffic::ZERO;
        assert_eq!(
            agents_for_service_level(a, 180 * SECOND, target(0.99, 0), None),
            Ok(0)
        );
        assert_eq!(
            agents_for_service_level(a, 180 * SECOND, target(0.8, 20), Some(0.5)),
            Ok(0)
        );
        assert_eq!(agents_for_asa(a, 180 * SECOND, SECOND, None), Ok(0));
        let plan =
            Staffing::plan(0.0, 1800 * SECOND, 180 * SECOND, target(0.8, 20), 0.3, None).unwrap();
        assert_eq!(
            plan,
            Staffing {
                traffic: Traffic::ZERO,
                raw_agents: 0,
                scheduled_agents: 0,
                probability_of_waiting: 0.0,
                service_level: 1.0,
                average_speed_of_answer: Duration::ZERO,
                occupancy: 0.0,
            }
        );
    }

    #[test]
    fn zero_aht_needs_just_a_stable_queue() {
        // With instant handling waits are instant too: any N > A meets a
        // target with a positive answer time.
        assert_eq!(
            agents_for_service_level(traffic(4.5), Duration::ZERO, target(0.99, 1), None),
            Ok(5)
        );
        assert_eq!(
            agents_for_asa(traffic(4.5), Duration::ZERO, SECOND, None),
            Ok(5)
        );
    }

    #[test]
    fn finishes_quickly_at_the_largest_loads() {
        // One recursion step per agent: ~1e6 steps at the largest load.
        let n = agents_for_service_level(
            traffic(Traffic::MAX_ERLANGS),
            300 * SECOND,
            target(0.8, 20),
            None,
        )
        .unwrap();
        assert!(n > 1_000_000 && n < 1_001_000, "{n}");
        // The strictest representable target still ends, well before
        // u32::MAX, and before C underflows.
        let strictest = ServiceLevelTarget::new(1.0 - f64::EPSILON / 2.0, Duration::ZERO).unwrap();
        let n = agents_for_service_level(traffic(5000.0), 300 * SECOND, strictest, None).unwrap();
        assert!(n > 5000 && n < 6000, "{n}");
        assert_eq!(
            agents_for_asa(traffic(5000.0), 300 * SECOND, Duration::from_nanos(1), None)
                .map(|n| n < 6000),
            Ok(true)
        );
        // A cap far above the load skips straight there.
        let n =
            agents_for_service_level(traffic(10.0), 180 * SECOND, target(0.8, 20), Some(2.5e-9))
                .unwrap();
        assert_eq!(n, 4_000_000_000);
    }

    #[test]
    fn invalid_inputs_name_the_argument() {
        for fraction in [0.0, 1.0, -0.5, 1.5, f64::NAN, f64::INFINITY] {
            assert_invalid(ServiceLevelTarget::new(fraction, SECOND), "target_fraction");
        }
        let a = traffic(10.0);
        let aht = 180 * SECOND;
        for max in [0.0, -0.1, 1.01, f64::NAN, f64::INFINITY] {
            assert_invalid(
                agents_for_service_level(a, aht, target(0.8, 20), Some(max)),
                "max_occupancy",
            );
            assert_invalid(agents_for_asa(a, aht, SECOND, Some(max)), "max_occupancy");
            assert_invalid(
                Staffing::for_traffic(a, aht, target(0.8, 20), 0.3, Some(max)),
                "max_occupancy",
            );
        }
        // Valid, but more agents than a u32 holds.
        assert_invalid(agents_for_occupancy(a, 1e-300), "max_occupancy");
        assert_invalid(agents_for_asa(a, aht, Duration::ZERO, None), "target_asa");

        let half_hour = 1800 * SECOND;
        for (arrivals, interval, shrinkage, argument) in [
            (-1.0, half_hour, 0.3, "calls_per_interval"),
            (f64::NAN, half_hour, 0.3, "calls_per_interval"),
            (f64::INFINITY, half_hour, 0.3, "calls_per_interval"),
            (100.0, Duration::ZERO, 0.3, "interval"),
            (1e300, half_hour, 0.3, "traffic"),
            (100.0, half_hour, 1.0, "shrinkage"),
            (100.0, half_hour, -0.01, "shrinkage"),
            (100.0, half_hour, f64::NAN, "shrinkage"),
        ] {
            assert_invalid(
                Staffing::plan(arrivals, interval, aht, target(0.8, 20), shrinkage, None),
                argument,
            );
        }
    }

    #[test]
    fn no_input_panics() {
        let floats = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            -0.0,
            0.0,
            f64::MIN_POSITIVE,
            1e-300,
            0.5,
            1.0 - f64::EPSILON,
            1.0,
            7.0,
            1e6,
            1e300,
            f64::MAX,
        ];
        let durations = [
            Duration::ZERO,
            Duration::from_nanos(1),
            SECOND,
            Duration::from_secs(86_400),
            Duration::MAX,
        ];
        for &x in &floats {
            for &d in &durations {
                let _ = Traffic::from_rate(x, d, d);
                let _ = Traffic::from_rate(x, SECOND, d);
                let _ = scheduled_headcount(7, x);
                let Ok(goal) = ServiceLevelTarget::new(x, d) else {
                    continue;
                };
                for &y in &floats {
                    for a in [0.0, 0.3, 12.0] {
                        let a = traffic(a);
                        let _ = agents_for_occupancy(a, y);
                        let _ = agents_for_service_level(a, d, goal, Some(y));
                        let _ = agents_for_asa(a, d, d, Some(y));
                        let _ = Staffing::for_traffic(a, d, goal, y, None);
                    }
                    let _ = Staffing::plan(y, SECOND, d, goal, 0.3, None);
                }
            }
        }
    }
}
