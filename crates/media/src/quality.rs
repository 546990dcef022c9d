//! A listening-quality estimate by the ITU-T G.107 E-model, simplified as
//! the relay can measure it: packet loss and one-way delay on a G.711 leg.
//!
//! `R = R0 − Is − Id − Ie,eff + A` with
//! - `R0 − Is = 93.2`: G.107's default values (R0 = 94.77, Is = 1.41, with
//!   the default noise floors and loudness ratings);
//! - `Id = Idd`: the delay impairment of G.107 §7.2 for an absolute delay
//!   `Ta` above `mT = 100 ms` (`sT = 1`); the echo terms Idte and Idle are
//!   taken as 0 (echo cancelled, as on a VoIP leg);
//! - `Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl / BurstR + Bpl)` (G.107 §7.4)
//!   with random loss (`BurstR = 1`) and G.711's `Ie = 0` and `Bpl` of
//!   ITU-T G.113 Appendix I: 25.1 with packet-loss concealment, 4.3
//!   without;
//! - `A = 0` (no advantage of access);
//!
//! and R mapped to a MOS by G.107 Annex B.

/// R0 − Is with G.107's default parameters.
pub const R_DEFAULT: f64 = 93.2;

/// G.113 Appendix I's packet-loss robustness of G.711.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concealment {
    /// G.711 with packet-loss concealment (G.711 Appendix I): Bpl = 25.1.
    Plc,
    /// G.711 without concealment: Bpl = 4.3.
    None,
}

impl Concealment {
    fn bpl(self) -> f64 {
        match self {
            Self::Plc => 25.1,
            Self::None => 4.3,
        }
    }
}

/// Delay impairment Idd (G.107 §7.2) for a one-way absolute delay in ms.
pub fn delay_impairment(one_way_delay_ms: f64) -> f64 {
    const MT: f64 = 100.0;
    if one_way_delay_ms.is_nan() || one_way_delay_ms <= MT {
        return 0.0;
    }
    let x = (one_way_delay_ms / MT).log2();
    let sixth = |v: f64| v.powf(1.0 / 6.0);
    25.0 * (sixth(1.0 + x.powi(6)) - 3.0 * sixth(1.0 + (x / 3.0).powi(6)) + 2.0)
}

/// Effective equipment impairment Ie,eff of G.711 (Ie = 0) at a random
/// packet loss, given as a fraction (0.01 = 1 %).
pub fn loss_impairment(loss_fraction: f64, concealment: Concealment) -> f64 {
    let ppl = (loss_fraction * 100.0).clamp(0.0, 100.0);
    if ppl.is_nan() {
        return 0.0;
    }
    let ie = 0.0;
    ie + (95.0 - ie) * ppl / (ppl + concealment.bpl())
}

/// The transmission rating R for a G.711 leg.
pub fn r_factor(loss_fraction: f64, one_way_delay_ms: f64, concealment: Concealment) -> f64 {
    R_DEFAULT - delay_impairment(one_way_delay_ms) - loss_impairment(loss_fraction, concealment)
}

/// G.107 Annex B: R to the estimated mean opinion score (1 to 4.5).
/// The polynomial dips just below 1 for 0 < R < 6.5 (0.99 at R = 2); the
/// result is held at the scale's floor of 1 there.
pub fn mos_from_r(r: f64) -> f64 {
    if r.is_nan() || r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        (1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7.0e-6).max(1.0)
    }
}

/// The MOS estimate of a G.711 leg from its loss and one-way delay.
pub fn mos(loss_fraction: f64, one_way_delay_ms: f64, concealment: Concealment) -> f64 {
    mos_from_r(r_factor(loss_fraction, one_way_delay_ms, concealment))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn annex_b_known_points() {
        assert!(close(mos_from_r(93.2), 4.41, 0.005), "{}", mos_from_r(93.2));
        assert_eq!(mos_from_r(0.0), 1.0);
        assert_eq!(mos_from_r(-20.0), 1.0);
        assert_eq!(mos_from_r(100.0), 4.5);
        assert_eq!(mos_from_r(130.0), 4.5);
        // By hand: 1 + 0.035·50 + 50·(−10)·50·7e-6 = 2.575.
        assert!(close(mos_from_r(50.0), 2.575, 1e-9));
        // 1 + 0.035·80 + 80·20·20·7e-6 = 4.024.
        assert!(close(mos_from_r(80.0), 4.024, 1e-9));
    }

    #[test]
    fn a_clean_short_leg_rates_the_default_r() {
        assert_eq!(r_factor(0.0, 20.0, Concealment::Plc), 93.2);
        assert!(close(mos(0.0, 20.0, Concealment::None), 4.41, 0.005));
    }

    #[test]
    fn delay_impairment_by_hand() {
        assert_eq!(delay_impairment(100.0), 0.0);
        // Ta = 200: X = 1; 25·(2^(1/6) − 3·(1 + 3^-6)^(1/6) + 2) = 3.0444.
        assert!(
            close(delay_impairment(200.0), 3.0444, 0.001),
            "{}",
            delay_impairment(200.0)
        );
        // Ta = 150: X = log2 1.5 = 0.58496; 25·(1.006573 − 3.0000275 + 2) = 0.1636.
        assert!(
            close(delay_impairment(150.0), 0.1636, 0.001),
            "{}",
            delay_impairment(150.0)
        );
        // Ta = 400: X = 2; 25·(65^(1/6) − 3·(1 + (2/3)^6)^(1/6) + 2) = 24.07.
        assert!(
            close(delay_impairment(400.0), 24.07, 0.01),
            "{}",
            delay_impairment(400.0)
        );
        assert!(delay_impairment(300.0) > delay_impairment(250.0));
    }

    #[test]
    fn loss_impairment_by_hand_with_and_without_plc() {
        // 95·1/(1 + 25.1) = 3.6398; 95·5/(5 + 25.1) = 15.781; 95·1/(1 + 4.3) = 17.925.
        assert!(close(
            loss_impairment(0.01, Concealment::Plc),
            3.6398,
            0.0005
        ));
        assert!(close(
            loss_impairment(0.05, Concealment::Plc),
            15.781,
            0.0005
        ));
        assert!(close(
            loss_impairment(0.01, Concealment::None),
            17.925,
            0.0005
        ));
        assert_eq!(loss_impairment(0.0, Concealment::None), 0.0);
        // R = 93.2 − 15.781 = 77.419 → MOS 1 + 2.70966 + 77.419·17.419·22.581·7e-6 = 3.9228.
        assert!(
            close(mos(0.05, 0.0, Concealment::Plc), 3.9228, 0.0005),
            "{}",
            mos(0.05, 0.0, Concealment::Plc)
        );
    }

    #[test]
    fn everything_lost_is_the_floor() {
        // R = 93.2 − 95·100/104.3 = 2.1166, where the polynomial gives 0.990.
        assert!(close(r_factor(1.0, 0.0, Concealment::None), 2.1166, 0.0001));
        assert_eq!(mos(1.0, 0.0, Concealment::None), 1.0);
        assert_eq!(mos(1.0, 600.0, Concealment::None), 1.0);
        // Above the dip the formula applies: R = 10 → 1 + 0.35 − 0.315 = 1.035.
        assert!(close(
            mos_from_r(10.0),
            1.0 + 0.35 + 10.0 * -50.0 * 90.0 * 7e-6,
            1e-12
        ));
    }
}
