//! Checks and closed forms around ring2d under a forward SDE: how well a quadrature oracle is
//! resolved, when the noise reaches the ring's width, and the KS floor a final time `t_ε > 0`
//! leaves on the radius.

use crate::{ForwardSde, Ring2dOracle};

/// The largest relative score error of `oracle` against a finer `reference` on the points `x`
/// (row-major `n × 2`) at time `t`:
/// `maxᵢ |s(xᵢ) − s_ref(xᵢ)| / (|s_ref(xᵢ)| + 1/σ(t))`, `σ(t)` the kernel's std (the `1/σ`
/// term keeps the ratio meaningful where the score vanishes). 0 for no points.
pub fn score_relative_error<S: ForwardSde + Sync>(
    oracle: &Ring2dOracle<S>,
    reference: &Ring2dOracle<S>,
    x: &[f64],
    t: f64,
) -> f64 {
    let sig = oracle.sde().marginal_std(t);
    let mut a = vec![0.0f64; x.len()];
    let mut b = vec![0.0f64; x.len()];
    oracle.score_f64(x, t, &mut a);
    reference.score_f64(x, t, &mut b);
    let mut worst = 0.0f64;
    for (pa, pb) in a.chunks_exact(2).zip(b.chunks_exact(2)) {
        let diff = (pa[0] - pb[0]).hypot(pa[1] - pb[1]);
        let scale = pb[0].hypot(pb[1]) + 1.0 / sig;
        worst = worst.max(diff / scale);
    }
    worst
}

/// The time `t ∈ [0, T]` at which the kernel's std `σ(t)` equals `s` (σ increases in `t`), by
/// 100 bisection steps; `T` if `σ(T) < s`, 0 if `s ≤ σ(0)`.
pub fn time_at_marginal_std<S: ForwardSde + ?Sized>(sde: &S, s: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, sde.t_end());
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if sde.marginal_std(mid) < s {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The KS floor on ring2d's radius left by stopping a sampler at `t_ε` without denoising.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RadiusFloor {
    /// Kernel mean coefficient `m(t_ε)`.
    pub m: f64,
    /// Kernel std `σ(t_ε)`.
    pub sigma: f64,
    /// Relative inflation of the radius sd, `|√(m² s₀² + σ²)/s₀ − 1|`.
    pub scale_err: f64,
    /// Shift of the radius mean in units of its sd, `|1 − m|/s₀`.
    pub mean_err: f64,
    /// First-order KS distance `D ≈ φ(1)·scale_err + φ(0)·mean_err`
    /// `= 0.2420·scale_err + mean_err/√(2π)`.
    pub d_radius: f64,
}

/// [`RadiusFloor`] of ring2d with radial sd `s₀` (scale `k`: `s₀ = 1/√k`) at `t_ε`.
///
/// The samples are draws of `x_{t_ε} = m y + σ z`, not of `y`. For a thin ring the radius is
/// `≈ m r + σ z_r`, a normal-like law whose sd grows to `√(m² s₀² + σ²)` and whose mean moves
/// by `m − 1`; the KS distance between `N(0, 1)` and `N(μ, (1 + δ)²)` is, to first order,
/// `φ(0)|μ| + φ(1)|δ|` (the largest CDF gaps of a shift and of a scale change).
pub fn ring_radius_floor<S: ForwardSde + ?Sized>(sde: &S, s0: f64, t_eps: f64) -> RadiusFloor {
    let (m, sigma) = (sde.mean_coef(t_eps), sde.marginal_std(t_eps));
    let scale_err = ((m * m * s0 * s0 + sigma * sigma).sqrt() / s0 - 1.0).abs();
    let mean_err = (1.0 - m).abs() / s0;
    let d_radius = 0.2420 * scale_err + mean_err / (2.0 * std::f64::consts::PI).sqrt();
    RadiusFloor {
        m,
        sigma,
        scale_err,
        mean_err,
        d_radius,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VpSde;
    use smoluchowski_datasets::Ring2d;

    #[test]
    fn bisection_inverts_the_marginal_std() {
        let sde = VpSde::new(0.1, 20.0, 1.0).unwrap();
        let t = time_at_marginal_std(&sde, 0.3);
        assert!((sde.marginal_std(t) - 0.3).abs() < 1e-12, "{t}");
        assert_eq!(time_at_marginal_std(&sde, 10.0), sde.t_end());
    }

    #[test]
    fn radius_floor_vanishes_at_zero_and_grows() {
        let sde = VpSde::new(0.1, 20.0, 1.0).unwrap();
        let s0 = 1.0 / 200f64.sqrt();
        let a = ring_radius_floor(&sde, s0, 1e-5);
        let b = ring_radius_floor(&sde, s0, 1e-3);
        assert!(a.d_radius < b.d_radius && a.d_radius < 1e-3, "{a:?} {b:?}");
        // The first-order formula: φ(1) = 0.2420, φ(0) = 1/√(2π).
        assert!(
            (b.d_radius - (0.2420 * b.scale_err + b.mean_err * 0.3989422804014327)).abs() < 1e-9
        );
    }

    #[test]
    fn an_oracle_agrees_with_itself() {
        let sde = VpSde::new(0.1, 20.0, 1.0).unwrap();
        let ring = Ring2d::new(50.0).unwrap();
        let o = Ring2dOracle::new(sde, ring.clone()).unwrap();
        let coarse = Ring2dOracle::with_resolution(sde, ring, 6, 8).unwrap();
        let x = [1.0, 0.1, -0.3, 0.9, 0.2, -1.1];
        assert_eq!(score_relative_error(&o, &o, &x, 0.05), 0.0);
        let e = score_relative_error(&coarse, &o, &x, 0.05);
        assert!(e > 0.0 && e.is_finite(), "{e}");
    }
}
