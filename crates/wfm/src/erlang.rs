//! Erlang B (blocking) and Erlang C (probability of waiting).

use crate::traffic::Traffic;

/// Erlang B: the probability that an arrival finds all `servers` busy in a
/// loss system (M/M/c/c) offered `traffic`, i.e. the share of calls
/// blocked when there is no queue.
///
/// Computed by the recursion B(0) = 1, B(n) = A·B(n−1) / (n + A·B(n−1)):
/// every term is positive and at most A, so nothing overflows or cancels.
/// One step per server; stops early once B has underflowed to zero.
pub fn erlang_b(traffic: Traffic, servers: u32) -> f64 {
    let a = traffic.erlangs();
    let mut b = 1.0;
    for n in 1..=servers {
        if b == 0.0 {
            break;
        }
        b = next_erlang_b(a, b, n);
    }
    b
}

/// Erlang C: the probability that a call has to wait (is not answered at
/// once) in an M/M/c queue with `agents` agents offered `traffic`.
///
/// C = N·B / (N − A·(1 − B)) with B = [`erlang_b`]. When `agents` ≤
/// `traffic` the queue is unstable (it grows without bound) and every call
/// waits: 1.0. With no traffic nobody waits: 0.0, even with no agents.
pub fn erlang_c(traffic: Traffic, agents: u32) -> f64 {
    let a = traffic.erlangs();
    if !is_stable(traffic, agents) {
        return 1.0;
    }
    erlang_c_from_b(a, agents, erlang_b(traffic, agents))
}

/// Whether `agents` can keep up with `traffic`: more agents than Erlangs
/// offered, or no traffic at all. Waiting time, ASA and queue length are
/// finite only then.
pub fn is_stable(traffic: Traffic, agents: u32) -> bool {
    let a = traffic.erlangs();
    a == 0.0 || f64::from(agents) > a
}

/// One step of the Erlang B recursion: B(n) from B(n−1).
pub(crate) fn next_erlang_b(a: f64, previous: f64, n: u32) -> f64 {
    let ab = a * previous;
    ab / (f64::from(n) + ab)
}

/// Erlang C from Erlang B for the same load and agent count.
pub(crate) fn erlang_c_from_b(a: f64, agents: u32, b: f64) -> f64 {
    if a == 0.0 {
        return 0.0;
    }
    let n = f64::from(agents);
    if n <= a {
        return 1.0;
    }
    // n − a > 0 and a·b ≥ 0, so the denominator is positive.
    (n * b / (n - a * (1.0 - b))).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic(erlangs: f64) -> Traffic {
        Traffic::new(erlangs).unwrap()
    }

    /// `actual` is within `tolerance` of `expected`, relative to `expected`.
    #[track_caller]
    fn assert_close(actual: f64, expected: f64, tolerance: f64, what: &str) {
        let error = ((actual - expected) / expected).abs();
        assert!(
            error <= tolerance,
            "{what}: got {actual:e}, expected {expected:e} (relative error {error:e})"
        );
    }

    #[test]
    fn hand_computed_small_cases() {
        // A = 1, N = 1: B(1) = 1·1 / (1 + 1·1) = 1/2. N ≤ A: unstable, C = 1.
        assert_eq!(erlang_b(traffic(1.0), 1), 0.5);
        assert_eq!(erlang_c(traffic(1.0), 1), 1.0);

        // A = 1, N = 2: B(2) = (1·1/2) / (2 + 1/2) = (1/2)/(5/2) = 1/5.
        // C = N·B / (N − A·(1 − B)) = (2/5) / (2 − 4/5) = (2/5)/(6/5) = 1/3.
        // Directly: terms A^k/k! = 1, 1, 1/2; C = (1/2 · 2/(2−1)) / (1 + 1 + 1) = 1/3.
        assert_close(erlang_b(traffic(1.0), 2), 0.2, 1e-15, "B(1, 2)");
        assert_close(erlang_c(traffic(1.0), 2), 1.0 / 3.0, 1e-15, "C(1, 2)");

        // A = 2, N = 3: B(1) = 2/3; B(2) = (4/3)/(2 + 4/3) = 2/5;
        // B(3) = (4/5)/(3 + 4/5) = 4/19.
        // C = (12/19) / (3 − 2·15/19) = (12/19)/(27/19) = 4/9.
        // Directly: terms 1, 2, 2, 4/3; C = (4/3 · 3/(3−2)) / (1 + 2 + 2 + 4) = 4/9.
        assert_close(erlang_b(traffic(2.0), 3), 4.0 / 19.0, 1e-15, "B(2, 3)");
        assert_close(erlang_c(traffic(2.0), 3), 4.0 / 9.0, 1e-15, "C(2, 3)");

        // A = 1/2, N = 1: B(1) = (1/2)/(3/2) = 1/3; C = (1/3)/(1 − (1/2)(2/3)) = 1/2.
        assert_close(erlang_b(traffic(0.5), 1), 1.0 / 3.0, 1e-15, "B(0.5, 1)");
        assert_close(erlang_c(traffic(0.5), 1), 0.5, 1e-15, "C(0.5, 1)");
    }

    #[test]
    fn matches_the_closed_forms_for_one_and_two_agents() {
        // M/M/1 (A < 1): C = ρ = A. M/M/2 (A < 2): B = A²/(2 + 2A + A²)
        // and C = A²/(2 + A) (insert B into C = 2B/(2 − A(1 − B)) and
        // simplify).
        for i in 1..200 {
            let a = f64::from(i) / 100.0;
            if a < 1.0 {
                assert_close(erlang_c(traffic(a), 1), a, 1e-14, "C(A, 1)");
            }
            assert_close(
                erlang_b(traffic(a), 2),
                a * a / (2.0 + 2.0 * a + a * a),
                1e-14,
                "B(A, 2)",
            );
            assert_close(erlang_c(traffic(a), 2), a * a / (2.0 + a), 1e-14, "C(A, 2)");
        }
    }

    /// Erlang B and C for A = p/q by exact integer arithmetic. Scaling the
    /// terms A^k/k! by q^N·N! makes them integers t_k = p^k·q^(N−k)·N!/k!:
    /// B = t_N / Σ_{k≤N} t_k and, since N/(N − A) = Nq/(Nq − p),
    /// C = t_N·Nq / (Σ_{k<N} t_k·(Nq − p) + t_N·Nq).
    /// Returns (numerator, denominator) pairs.
    fn exact_erlang(p: u128, q: u128, n: u32) -> ((u128, u128), Option<(u128, u128)>) {
        let n128 = u128::from(n);
        let mut terms = Vec::with_capacity(n as usize + 1);
        let mut t = q.pow(n) * (1..=n128).product::<u128>();
        terms.push(t);
        for k in 1..=n128 {
            let scaled = t.checked_mul(p).expect("u128 overflow");
            assert_eq!(scaled % (q * k), 0, "t_k must be an integer");
            t = scaled / (q * k);
            terms.push(t);
        }
        let t_n = terms[n as usize];
        let below: u128 = terms[..n as usize].iter().sum();
        let b = (t_n, below + t_n);
        let c = (n128 * q > p).then(|| {
            let top = t_n * n128 * q;
            (
                top,
                below.checked_mul(n128 * q - p).expect("u128 overflow") + top,
            )
        });
        (b, c)
    }

    fn ratio((numerator, denominator): (u128, u128)) -> f64 {
        // Each conversion and the division round once: within 2 ulp.
        numerator as f64 / denominator as f64
    }

    #[test]
    fn matches_exact_rational_arithmetic_for_small_sizes() {
        let mut worst = 0.0f64;
        for q in [1u128, 2, 4, 10] {
            for p in 1..=12 * q {
                for n in 1..=12u32 {
                    let a = p as f64 / q as f64;
                    let (b, c) = exact_erlang(p, q, n);
                    let expected_b = ratio(b);
                    let got_b = erlang_b(traffic(a), n);
                    worst = worst.max(((got_b - expected_b) / expected_b).abs());
                    assert_close(got_b, expected_b, 1e-14, &format!("B({p}/{q}, {n})"));
                    match c {
                        Some(c) => {
                            let expected_c = ratio(c);
                            let got_c = erlang_c(traffic(a), n);
                            worst = worst.max(((got_c - expected_c) / expected_c).abs());
                            assert_close(got_c, expected_c, 1e-14, &format!("C({p}/{q}, {n})"));
                        }
                        None => assert_eq!(erlang_c(traffic(a), n), 1.0, "C({p}/{q}, {n})"),
                    }
                }
            }
        }
        assert!(worst < 1e-14, "worst relative error {worst:e}");
    }

    /// Erlang B and C by direct summation of the Poisson terms in log
    /// space, independent of the recursion: ln(A^k/k!) = k·ln A − ln k!
    /// with ln k! summed (compensated) term by term, and the sums taken as
    /// log-sum-exp relative to their largest term.
    fn log_space_erlang(a: f64, n: u32) -> (f64, Option<f64>) {
        let mut ln_terms = Vec::with_capacity(n as usize + 1);
        let (mut ln_factorial, mut compensation) = (0.0f64, 0.0f64);
        ln_terms.push(0.0);
        for k in 1..=n {
            // Neumaier summation of ln k! = Σ ln i.
            let x = f64::from(k).ln();
            let sum = ln_factorial + x;
            compensation += if ln_factorial.abs() >= x.abs() {
                (ln_factorial - sum) + x
            } else {
                (x - sum) + ln_factorial
            };
            ln_factorial = sum;
            ln_terms.push(f64::from(k) * a.ln() - (ln_factorial + compensation));
        }
        let log_sum_exp = |logs: &[f64]| {
            let max = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            max + logs.iter().map(|l| (l - max).exp()).sum::<f64>().ln()
        };
        let ln_last = ln_terms[n as usize];
        let b = (ln_last - log_sum_exp(&ln_terms)).exp();
        let c = (f64::from(n) > a).then(|| {
            let ln_top = ln_last + (f64::from(n) / (f64::from(n) - a)).ln();
            let mut logs = ln_terms[..n as usize].to_vec();
            logs.push(ln_top);
            (ln_top - log_sum_exp(&logs)).exp()
        });
        (b, c)
    }

    #[test]
    fn matches_direct_log_space_summation_over_a_grid() {
        // The reference itself carries up to ~2e-15·N of rounding (from
        // ln k! and k·ln A), hence the size-scaled tolerance; the recursion
        // is closer than that to the exact values (see the tests above and
        // below).
        let loads = [
            0.01, 0.3, 1.0, 2.5, 7.3, 10.0, 33.3, 99.9, 250.5, 1000.0, 2718.28, 5000.0,
        ];
        for a in loads {
            let start = (a as u32).saturating_sub(20).max(1);
            let mut agents: Vec<u32> = (start..=a as u32 + 60).collect();
            agents.extend([(a * 1.2) as u32 + 1, (a * 2.0) as u32 + 1, 10_000]);
            for n in agents {
                let tolerance = 1e-14 * f64::from(n).max(10.0);
                let (expected_b, expected_c) = log_space_erlang(a, n);
                let got_b = erlang_b(traffic(a), n);
                if expected_b > 1e-290 {
                    assert_close(got_b, expected_b, tolerance, &format!("B({a}, {n})"));
                } else {
                    assert!(got_b < 1e-280, "B({a}, {n}) = {got_b:e}");
                }
                let got_c = erlang_c(traffic(a), n);
                match expected_c {
                    Some(c) if c > 1e-290 => {
                        assert_close(got_c, c, tolerance, &format!("C({a}, {n})"))
                    }
                    Some(_) => assert!(got_c < 1e-280, "C({a}, {n}) = {got_c:e}"),
                    None => assert_eq!(got_c, 1.0, "C({a}, {n})"),
                }
            }
        }
    }

    #[test]
    fn matches_exact_big_integer_references_at_large_sizes() {
        // Computed exactly with Python's integers (same scaled terms as
        // `exact_erlang`), printed to 25 digits:
        //
        //   from fractions import Fraction as F
        //   from decimal import Decimal, getcontext
        //   import math
        //   getcontext().prec = 40
        //   def terms(p, q, n):
        //       t = [q**n * math.factorial(n)]
        //       for k in range(1, n + 1):
        //           t.append(t[-1] * p // (q * k))  # exact: divisible
        //       return t
        //   def erlang_b(p, q, n):
        //       t = terms(p, q, n); return F(t[n], sum(t))
        //   def erlang_c(p, q, n):
        //       t = terms(p, q, n); top = t[n] * n * q
        //       return F(top, sum(t[:n]) * (n * q - p) + top)
        //   dec = lambda f: Decimal(f.numerator) / Decimal(f.denominator)
        //   for p, q, n in [(1000, 1, 1050), (5000, 1, 5001), (5000, 1, 5100),
        //                   (5000, 1, 5200), (17285, 4, 4400), (9876, 1, 10000),
        //                   (39999, 4, 10000)]:
        //       print(p, q, n, f"{dec(erlang_b(p, q, n)):.25E}", f"{dec(erlang_c(p, q, n)):.25E}")
        //   print(f"{dec(erlang_b(5000, 1, 5000)):.25E}")
        let cases = [
            (
                1000.0,
                1050,
                3.813_135_984_540_154_7e-3,
                7.440_177_403_742_838e-2,
            ),
            (
                5000.0,
                5001,
                1.107_313_168_318_380_3e-2,
                9.824_551_527_275_778e-1,
            ),
            (
                5000.0,
                5100,
                2.243_579_295_560_524_7e-3,
                1.028_814_136_009_340_3e-1,
            ),
            (
                5000.0,
                5200,
                1.070_237_459_714_974_7e-4,
                2.775_192_108_876_870_6e-3,
            ),
            (
                4321.25,
                4400,
                3.327_247_646_221_871e-3,
                1.572_020_257_488_562_5e-1,
            ),
            (
                9876.0,
                10_000,
                2.053_825_819_287_358e-3,
                1.423_464_655_728_531e-1,
            ),
            (
                9999.75,
                10_000,
                7.920_822_435_980_523e-3,
                9.968_785_361_423_618e-1,
            ),
        ];
        // Measured: within 4e-15 of every one of them.
        for (a, n, b, c) in cases {
            assert_close(erlang_b(traffic(a), n), b, 1e-13, &format!("B({a}, {n})"));
            assert_close(erlang_c(traffic(a), n), c, 1e-13, &format!("C({a}, {n})"));
        }
        assert_close(
            erlang_b(traffic(5000.0), 5000),
            1.119_935_827_850_548_6e-2,
            1e-13,
            "B(5000, 5000)",
        );
    }

    #[test]
    fn no_traffic_means_nobody_waits_or_is_blocked() {
        for n in [0, 1, 2, 10, 10_000, u32::MAX] {
            assert_eq!(erlang_c(Traffic::ZERO, n), 0.0, "C(0, {n})");
            assert!(is_stable(Traffic::ZERO, n));
        }
        // With no servers every arrival is blocked, whatever the load.
        assert_eq!(erlang_b(Traffic::ZERO, 0), 1.0);
        assert_eq!(erlang_b(traffic(3.0), 0), 1.0);
        assert_eq!(erlang_b(Traffic::ZERO, 1), 0.0);
    }

    #[test]
    fn too_few_agents_means_every_call_waits() {
        for (a, n) in [
            (1.0, 0),
            (1.0, 1),
            (10.0, 10),
            (10.5, 10),
            (5000.0, 4999),
            (1e6, 1000),
        ] {
            assert_eq!(erlang_c(traffic(a), n), 1.0, "C({a}, {n})");
            assert!(!is_stable(traffic(a), n));
        }
        assert!(is_stable(traffic(10.0), 11));
        assert!(!is_stable(traffic(1e-9), 0));
    }

    #[test]
    fn waiting_probability_falls_as_agents_are_added() {
        for a in [0.2f64, 1.0, 9.5, 10.0, 57.0, 480.0, 5000.0] {
            let mut previous_b = 1.0;
            let mut previous_c = 1.0;
            // Up to where C has long underflowed (A + 40√A + 40).
            for n in 1..=(a + 40.0 * a.sqrt()) as u32 + 40 {
                let b = erlang_b(traffic(a), n);
                let c = erlang_c(traffic(a), n);
                // Strictly while B is a normal number; among subnormals a
                // step can round back to the same value.
                assert!(b <= previous_b, "B({a}, {n}) = {b:e} > {previous_b:e}");
                assert!(
                    b < previous_b || b < f64::MIN_POSITIVE,
                    "B({a}, {n}) did not fall"
                );
                assert!(c <= previous_c, "C({a}, {n}) = {c} > {previous_c}");
                if is_stable(traffic(a), n) && c >= f64::MIN_POSITIVE {
                    assert!(c < previous_c, "C({a}, {n}) did not fall");
                }
                // A call that is blocked in the loss system would wait here.
                assert!(c >= b, "C({a}, {n}) = {c} < B = {b}");
                (previous_b, previous_c) = (b, c);
            }
        }
    }

    #[test]
    fn waiting_probability_rises_with_traffic() {
        for n in [1, 2, 5, 20, 300] {
            let mut previous = 0.0;
            for i in 0..(f64::from(n) * 10.0) as u32 {
                let c = erlang_c(traffic(f64::from(i) / 10.0), n);
                assert!(c >= previous, "C({}, {n}) fell", f64::from(i) / 10.0);
                previous = c;
            }
        }
    }

    #[test]
    fn stays_finite_and_in_range_at_extreme_sizes() {
        let loads = [
            f64::MIN_POSITIVE,
            1e-300,
            1e-9,
            0.999_999_999,
            4_999.999_999,
            5000.0,
            123_456.7,
            Traffic::MAX_ERLANGS,
        ];
        let agents = [
            0,
            1,
            2,
            4999,
            5000,
            5001,
            10_000,
            1_000_001,
            2_000_000,
            u32::MAX,
        ];
        for a in loads {
            for n in agents {
                let b = erlang_b(traffic(a), n);
                let c = erlang_c(traffic(a), n);
                assert!((0.0..=1.0).contains(&b), "B({a}, {n}) = {b}");
                assert!((0.0..=1.0).contains(&c), "C({a}, {n}) = {c}");
            }
        }
        // Far above the load, waiting becomes vanishingly rare (underflows).
        assert_eq!(erlang_c(traffic(5000.0), 10_000), 0.0);
        assert_eq!(erlang_c(traffic(1e-300), 2), 0.0);
        // Just above the load almost everyone waits.
        assert!(erlang_c(traffic(Traffic::MAX_ERLANGS), 1_000_001) > 0.99);
    }
}
