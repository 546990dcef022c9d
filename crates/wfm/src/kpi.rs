//! What callers experience with a given number of agents: service level,
//! average speed of answer, occupancy and queue length.

use std::time::Duration;

use crate::erlang::{erlang_c, is_stable};
use crate::traffic::Traffic;

/// The fraction of calls answered within `answer_within` (e.g. 20 s for an
/// "80/20" target), in `0.0..=1.0`:
/// SL(t) = 1 − C·e^(−(N − A)·t / AHT).
///
/// Calls that do not wait count as answered within any `t`, so
/// `answer_within` zero gives 1 − C. An unstable queue (`agents` ≤
/// `traffic` > 0) gives 0; no traffic gives 1. A zero `aht` means calls
/// that wait are answered instantly: 1 for any `answer_within` above zero.
pub fn service_level(traffic: Traffic, agents: u32, aht: Duration, answer_within: Duration) -> f64 {
    service_level_from_c(
        traffic.erlangs(),
        agents,
        erlang_c(traffic, agents),
        aht,
        answer_within,
    )
}

/// The mean time from queueing to answer over all calls, those answered
/// at once included: ASA = C·AHT / (N − A).
///
/// `None` when the queue is unstable (`agents` ≤ `traffic` > 0): waits
/// grow without bound. Zero when there is no traffic. Saturates at
/// [`Duration::MAX`].
pub fn average_speed_of_answer(traffic: Traffic, agents: u32, aht: Duration) -> Option<Duration> {
    asa_from_c(traffic.erlangs(), agents, erlang_c(traffic, agents), aht)
}

/// The share of logged-in agent time spent handling calls: A / N, capped
/// at 1.0 (an unstable queue keeps every agent busy). 0.0 with no traffic.
pub fn occupancy(traffic: Traffic, agents: u32) -> f64 {
    let a = traffic.erlangs();
    if a == 0.0 {
        return 0.0;
    }
    if agents == 0 {
        return 1.0;
    }
    (a / f64::from(agents)).min(1.0)
}

/// The mean number of calls waiting in queue (not yet answered):
/// Lq = C·A / (N − A), which by Little's law is the arrival rate × ASA.
/// `None` when the queue is unstable; zero with no traffic.
pub fn average_queue_length(traffic: Traffic, agents: u32) -> Option<f64> {
    let a = traffic.erlangs();
    if a == 0.0 {
        return Some(0.0);
    }
    if !is_stable(traffic, agents) {
        return None;
    }
    Some(erlang_c(traffic, agents) * a / (f64::from(agents) - a))
}

/// [`service_level`] given C = `erlang_c(traffic, agents)`, so a search
/// that steps C along can reuse it.
pub(crate) fn service_level_from_c(
    a: f64,
    agents: u32,
    c: f64,
    aht: Duration,
    answer_within: Duration,
) -> f64 {
    if c == 0.0 {
        return 1.0;
    }
    let n = f64::from(agents);
    if n <= a {
        return 0.0;
    }
    if answer_within.is_zero() {
        return 1.0 - c;
    }
    if aht.is_zero() {
        return 1.0;
    }
    let exponent = -(n - a) * (answer_within.as_secs_f64() / aht.as_secs_f64());
    (1.0 - c * exponent.exp()).clamp(0.0, 1.0)
}

/// [`average_speed_of_answer`] given C = `erlang_c(traffic, agents)`.
pub(crate) fn asa_from_c(a: f64, agents: u32, c: f64, aht: Duration) -> Option<Duration> {
    if a == 0.0 {
        return Some(Duration::ZERO);
    }
    let n = f64::from(agents);
    if n <= a {
        return None;
    }
    // c ∈ [0, 1], aht ≥ 0 and n − a > 0: never negative or NaN; only too
    // large for a Duration when n − a is tiny and aht huge.
    let seconds = c * aht.as_secs_f64() / (n - a);
    Some(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::erlang::erlang_c;

    fn traffic(erlangs: f64) -> Traffic {
        Traffic::new(erlangs).unwrap()
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[track_caller]
    fn assert_close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance * expected.abs(),
            "got {actual}, expected {expected}"
        );
    }

    #[test]
    fn hand_computed_one_erlang_on_two_agents() {
        // A = 1, N = 2: C = 1/3 (see erlang::tests). With AHT = 180 s:
        // SL(0) = 1 − 1/3 = 2/3;
        // SL(180 s) = 1 − (1/3)·e^(−(2 − 1)·180/180) = 1 − e^(−1)/3;
        // ASA = (1/3)·180 s / (2 − 1) = 60 s; Lq = (1/3)·1/(2 − 1) = 1/3;
        // occupancy = 1/2.
        let a = traffic(1.0);
        let aht = 180 * SECOND;
        assert_close(service_level(a, 2, aht, Duration::ZERO), 2.0 / 3.0, 1e-15);
        assert_close(
            service_level(a, 2, aht, aht),
            1.0 - (-1.0f64).exp() / 3.0,
            1e-15,
        );
        let asa = average_speed_of_answer(a, 2, aht).unwrap();
        assert!((asa.as_secs_f64() - 60.0).abs() <= 1e-9, "ASA = {asa:?}");
        assert_close(average_queue_length(a, 2).unwrap(), 1.0 / 3.0, 1e-15);
        assert_eq!(occupancy(a, 2), 0.5);
    }

    #[test]
    fn published_example_ten_erlangs() {
        // The classic worked example: 100 calls per 30 minutes, AHT 180 s,
        // A = 10 Erlangs, target 80% answered within 20 s. Published values
        // (callcentrehelper.com's Erlang C walk-through; the R package
        // ErlangC reproduces them): 11 agents: C = 0.6821182, SL = 0.3896138;
        // 14 agents: C = 0.1741319, SL = 0.88835, ASA = 7.835937 s.
        //
        // Checked independently with exact arithmetic in Python (C as an
        // exact fraction, then 40-digit decimals for the exponential):
        //
        //   from fractions import Fraction as F
        //   from decimal import Decimal, getcontext
        //   import math
        //   getcontext().prec = 40
        //   def erlang_c(a, n):  # integer a
        //       terms = [F(a**k, math.factorial(k)) for k in range(n)]
        //       top = F(a**n, math.factorial(n)) * F(n, n - a)
        //       return top / (sum(terms) + top)
        //   dec = lambda f: Decimal(f.numerator) / Decimal(f.denominator)
        //   for n in range(11, 16):
        //       c = dec(erlang_c(10, n))
        //       sl = 1 - c * (-(n - 10) * Decimal(20) / Decimal(180)).exp()
        //       print(n, c, sl, c * 180 / (n - 10), c * 10 / (n - 10))
        //
        // N   C                       SL                      ASA (s)                 Lq
        // 11  0.68211820468933237413  0.38961381172915337724  122.78127684407982734  6.8211820468933237413
        // 12  0.44938822429827086858  0.64015804037400657413  40.444940186844378172  2.2469411214913543429
        // 13  0.28527045303649293634  0.79559478841778311910  17.116227182189576180  0.95090151012164312113
        // 14  0.17413193359504984264  0.88835001917946688425  7.8359370117772429190  0.43532983398762460661
        // 15  0.10204236700798800614  0.94145284286902232567  3.6735252122875682209  0.20408473401597601227
        let a = Traffic::from_rate(100.0, 30 * 60 * SECOND, 180 * SECOND).unwrap();
        assert_eq!(a.erlangs(), 10.0);
        let aht = 180 * SECOND;
        let within = 20 * SECOND;
        let expected = [
            (
                11,
                0.682_118_204_689_332_4,
                0.389_613_811_729_153_4,
                122.781_276_844_079_83,
                6.821_182_046_893_324,
            ),
            (
                12,
                0.449_388_224_298_270_9,
                0.640_158_040_374_006_6,
                40.444_940_186_844_38,
                2.246_941_121_491_354_3,
            ),
            (
                13,
                0.285_270_453_036_492_94,
                0.795_594_788_417_783_1,
                17.116_227_182_189_576,
                0.950_901_510_121_643_1,
            ),
            (
                14,
                0.174_131_933_595_049_84,
                0.888_350_019_179_466_9,
                7.835_937_011_777_243,
                0.435_329_833_987_624_6,
            ),
            (
                15,
                0.102_042_367_007_988_01,
                0.941_452_842_869_022_3,
                3.673_525_212_287_568,
                0.204_084_734_015_976,
            ),
        ];
        for (n, c, sl, asa, lq) in expected {
            assert_close(erlang_c(a, n), c, 1e-14);
            assert_close(service_level(a, n, aht, within), sl, 1e-14);
            let got_asa = average_speed_of_answer(a, n, aht).unwrap().as_secs_f64();
            // A Duration holds whole nanoseconds.
            assert!(
                (got_asa - asa).abs() <= 1e-9,
                "ASA({n}) = {got_asa}, expected {asa}"
            );
            assert_close(average_queue_length(a, n).unwrap(), lq, 1e-14);
            assert_eq!(occupancy(a, n), 10.0 / f64::from(n));
        }
        // The published figures, to their printed precision.
        assert!((erlang_c(a, 14) - 0.174_131_9).abs() < 5e-8);
        assert!((service_level(a, 14, aht, within) - 0.888_35).abs() < 5e-6);
        assert!((erlang_c(a, 11) - 0.682_118_2).abs() < 5e-8);
        assert!((service_level(a, 11, aht, within) - 0.389_613_8).abs() < 5e-8);
    }

    #[test]
    fn no_traffic_is_perfect_service() {
        for n in [0, 1, 7, u32::MAX] {
            for within in [Duration::ZERO, SECOND, Duration::MAX] {
                assert_eq!(service_level(Traffic::ZERO, n, 180 * SECOND, within), 1.0);
            }
            assert_eq!(
                average_speed_of_answer(Traffic::ZERO, n, 180 * SECOND),
                Some(Duration::ZERO)
            );
            assert_eq!(average_queue_length(Traffic::ZERO, n), Some(0.0));
            assert_eq!(occupancy(Traffic::ZERO, n), 0.0);
        }
    }

    #[test]
    fn an_unstable_queue_has_no_service_and_no_asa() {
        for (a, n) in [(1.0, 0), (1.0, 1), (10.0, 10), (10.0, 3), (5000.0, 4999)] {
            let a = traffic(a);
            for within in [Duration::ZERO, 20 * SECOND, Duration::MAX] {
                assert_eq!(service_level(a, n, 180 * SECOND, within), 0.0);
            }
            assert_eq!(average_speed_of_answer(a, n, 180 * SECOND), None);
            assert_eq!(average_queue_length(a, n), None);
            assert_eq!(occupancy(a, n), 1.0);
        }
    }

    #[test]
    fn answer_within_zero_is_the_share_answered_at_once() {
        for (a, n) in [(0.5, 1), (1.0, 2), (10.0, 14), (480.0, 500), (5000.0, 5100)] {
            let a = traffic(a);
            assert_eq!(
                service_level(a, n, 300 * SECOND, Duration::ZERO),
                1.0 - erlang_c(a, n)
            );
        }
    }

    #[test]
    fn zero_aht_answers_every_waiting_call_at_once() {
        let a = traffic(3.0);
        assert_eq!(service_level(a, 4, Duration::ZERO, SECOND), 1.0);
        assert_eq!(
            service_level(a, 4, Duration::ZERO, Duration::ZERO),
            1.0 - erlang_c(a, 4)
        );
        assert_eq!(
            average_speed_of_answer(a, 4, Duration::ZERO),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn service_level_rises_and_asa_falls_as_agents_are_added() {
        for (erlangs, aht, within) in [
            (0.7, 120, 10),
            (10.0, 180, 20),
            (97.3, 240, 30),
            (5000.0, 300, 20),
        ] {
            let a = traffic(erlangs);
            let (aht, within) = (aht * SECOND, within * SECOND);
            let mut previous_sl = 0.0;
            let mut previous_asa = Duration::MAX;
            let first = erlangs as u32 + 1;
            for n in first..first + 300 {
                let sl = service_level(a, n, aht, within);
                let asa = average_speed_of_answer(a, n, aht).unwrap();
                assert!((0.0..=1.0).contains(&sl));
                assert!(sl >= previous_sl, "SL({erlangs}, {n}) fell");
                assert!(asa <= previous_asa, "ASA({erlangs}, {n}) rose");
                (previous_sl, previous_asa) = (sl, asa);
            }
            assert!(previous_sl > 0.999_99, "SL({erlangs}) = {previous_sl}");
        }
    }

    #[test]
    fn longer_answer_windows_never_lower_the_service_level() {
        let a = traffic(10.0);
        let mut previous = 0.0;
        for seconds in 0..600 {
            let sl = service_level(a, 12, 180 * SECOND, seconds * SECOND);
            assert!(sl >= previous);
            previous = sl;
        }
    }

    #[test]
    fn extreme_durations_stay_finite() {
        let a = traffic(Traffic::MAX_ERLANGS - 1e-6);
        let n = Traffic::MAX_ERLANGS as u32;
        // N − A is 1e-6 Erlangs: ASA = C·AHT·1e6, beyond a Duration.
        assert_eq!(
            average_speed_of_answer(a, n, Duration::MAX),
            Some(Duration::MAX)
        );
        for aht in [
            Duration::ZERO,
            Duration::from_nanos(1),
            SECOND,
            Duration::MAX,
        ] {
            for within in [Duration::ZERO, Duration::from_nanos(1), Duration::MAX] {
                let sl = service_level(a, n, aht, within);
                assert!((0.0..=1.0).contains(&sl), "SL = {sl}");
                let sl = service_level(traffic(2.0), 3, aht, within);
                assert!((0.0..=1.0).contains(&sl), "SL = {sl}");
            }
        }
    }
}
