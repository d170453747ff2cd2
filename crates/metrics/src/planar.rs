//! Evaluation of 2-D samples against an exact law known through its polar marginals.
//!
//! [`evaluate_planar`] bundles what every "does this sampler reproduce the data law?" check of
//! a 2-D experiment computes: one-sample KS tests of the radius and the angle against the exact
//! CDFs, the sample mean and standard deviation of the radius and, when a fresh reference draw
//! of the data is supplied, two-sample KS tests of the same marginals plus the sliced
//! Wasserstein-2 and energy distances to the reference, each next to its noise floor (the same
//! distance between two independent draws of the data of the same sizes).
//!
//! The exact law enters only through closures (this crate knows no dataset): pass e.g.
//! `|r| ring.radial_cdf(r)` and `|t| ring.angular_cdf(t)`.

use crate::distance::{energy_distance, sliced_wasserstein};
use crate::ks::{ks_one_sample, ks_two_sample, KsResult};
use crate::marginals::{angles, radii};

/// Sample mean and unbiased standard deviation:
/// `x̄ = (1/n) Σ x_i`, `s = √(Σ (x_i − x̄)² / max(n − 1, 1))`. NaN mean for an empty slice.
pub fn mean_std(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

/// A fresh draw of the data to compare against, and how.
#[derive(Debug, Clone, Copy)]
pub struct ReferenceDraws<'a> {
    /// Row-major `m × 2` draw of the data law (two-sample KS and both distances).
    pub reference: &'a [f64],
    /// A second, independent draw of the data with as many rows as the samples: the noise
    /// floors are the distances from it to `reference`.
    pub floor_draw: &'a [f64],
    /// Random directions `K` of the sliced Wasserstein distance.
    pub sw_projections: usize,
    /// Seed of the directions (the same directions for the distance and its floor).
    pub sw_seed: u64,
    /// Rows `s` of each set entering the (quadratic-cost) energy distance: the first `s`.
    pub energy_subsample: usize,
}

/// Distances between samples and a reference draw, with their noise floors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReferenceDistances {
    /// Two-sample KS of the radii (samples vs reference).
    pub two_sample_ks_radius: KsResult,
    /// Two-sample KS of the angles.
    pub two_sample_ks_angle: KsResult,
    /// `SW₂(samples, reference)` over `K` directions.
    pub sliced_wasserstein: f64,
    /// `SW₂(floor_draw, reference)`, same directions.
    pub sliced_wasserstein_noise_floor: f64,
    /// Energy distance `E(samples[..s], reference[..s])`.
    pub energy_distance: f64,
    /// `E(floor_draw[..s], reference[..s])`.
    pub energy_distance_noise_floor: f64,
}

impl ReferenceDistances {
    /// `SW₂ / floor`: about 1 when the samples are indistinguishable from data at this size.
    pub fn sliced_wasserstein_ratio(&self) -> f64 {
        self.sliced_wasserstein / self.sliced_wasserstein_noise_floor
    }

    /// `E / floor`.
    pub fn energy_distance_ratio(&self) -> f64 {
        self.energy_distance / self.energy_distance_noise_floor
    }
}

/// What [`evaluate_planar`] measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanarEvaluation {
    /// One-sample KS of `r = |x|` against the exact radial CDF.
    pub radius_ks: KsResult,
    /// One-sample KS of `θ = atan2(y, x)` against the exact angular CDF.
    pub angle_ks: KsResult,
    /// Sample mean of the radius.
    pub mean_radius: f64,
    /// Sample standard deviation (n − 1) of the radius.
    pub std_radius: f64,
    /// Comparison with a reference draw, when one was given.
    pub reference: Option<ReferenceDistances>,
}

/// Evaluates row-major `n × 2` samples against an exact 2-D law.
///
/// With `r_i = |x_i|` and `θ_i = atan2(y_i, x_i)` ([`radii`], [`angles`]):
/// - `radius_ks = KS(r, radial_cdf)`, `angle_ks = KS(θ, angular_cdf)` ([`ks_one_sample`]);
/// - `mean_radius`, `std_radius` = [`mean_std`]`(r)`;
/// - with `reference = Some(d)`: `KS₂(r, r_ref)`, `KS₂(θ, θ_ref)` ([`ks_two_sample`]),
///   `SW₂(x, ref)` and `SW₂(floor, ref)` with the same `K` directions ([`sliced_wasserstein`],
///   seed `d.sw_seed`), and `E(x[..s], ref[..s])`, `E(floor[..s], ref[..s])`
///   ([`energy_distance`], `s = d.energy_subsample` rows).
///
/// Deterministic: the only randomness is the seeded SW directions.
///
/// # Panics
/// If a slice length is odd, `d.sw_projections = 0`, or `s` exceeds the rows of `samples`,
/// `reference` or `floor_draw`.
pub fn evaluate_planar(
    samples: &[f64],
    radial_cdf: impl Fn(f64) -> f64,
    angular_cdf: impl Fn(f64) -> f64,
    reference: Option<ReferenceDraws<'_>>,
) -> PlanarEvaluation {
    let r = radii(samples);
    let th = angles(samples);
    let (mean_radius, std_radius) = mean_std(&r);
    PlanarEvaluation {
        radius_ks: ks_one_sample(&r, radial_cdf),
        angle_ks: ks_one_sample(&th, angular_cdf),
        mean_radius,
        std_radius,
        reference: reference.map(|d| compare_with_reference(samples, &r, &th, &d)),
    }
}

fn compare_with_reference(
    samples: &[f64],
    r: &[f64],
    th: &[f64],
    d: &ReferenceDraws<'_>,
) -> ReferenceDistances {
    let (k, seed) = (d.sw_projections, d.sw_seed);
    let m = 2 * d.energy_subsample;
    ReferenceDistances {
        two_sample_ks_radius: ks_two_sample(r, &radii(d.reference)),
        two_sample_ks_angle: ks_two_sample(th, &angles(d.reference)),
        sliced_wasserstein: sliced_wasserstein(samples, d.reference, 2, k, seed),
        sliced_wasserstein_noise_floor: sliced_wasserstein(d.floor_draw, d.reference, 2, k, seed),
        energy_distance: energy_distance(&samples[..m], &d.reference[..m], 2),
        energy_distance_noise_floor: energy_distance(&d.floor_draw[..m], &d.reference[..m], 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, StandardNormal};

    fn gaussian(n: usize, seed: u64, scale: f64) -> Vec<f64> {
        let mut rng = smoluchowski_core::streams::seeded(seed, 0);
        (0..2 * n)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut rng);
                scale * z
            })
            .collect()
    }

    // N(0, I₂): r is Rayleigh, F(r) = 1 − e^{−r²/2}; θ is uniform on (−π, π].
    fn rayleigh(r: f64) -> f64 {
        if r <= 0.0 {
            0.0
        } else {
            1.0 - (-r * r / 2.0).exp()
        }
    }
    fn uniform_angle(t: f64) -> f64 {
        ((t + std::f64::consts::PI) / (2.0 * std::f64::consts::PI)).clamp(0.0, 1.0)
    }

    #[test]
    fn mean_std_is_the_unbiased_pair() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        assert!((s - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
    }

    #[test]
    fn exact_draws_pass_and_match_the_parts() {
        let n = 4000;
        let (x, reference, floor) = (
            gaussian(n, 1, 1.0),
            gaussian(n, 2, 1.0),
            gaussian(n, 3, 1.0),
        );
        let d = ReferenceDraws {
            reference: &reference,
            floor_draw: &floor,
            sw_projections: 16,
            sw_seed: 9,
            energy_subsample: 500,
        };
        let e = evaluate_planar(&x, rayleigh, uniform_angle, Some(d));
        // The bundle equals its parts.
        assert_eq!(e.radius_ks, ks_one_sample(&radii(&x), rayleigh));
        assert_eq!(e.angle_ks, ks_one_sample(&angles(&x), uniform_angle));
        let c = e.reference.unwrap();
        assert_eq!(
            c.sliced_wasserstein,
            sliced_wasserstein(&x, &reference, 2, 16, 9)
        );
        assert_eq!(
            c.energy_distance,
            energy_distance(&x[..1000], &reference[..1000], 2)
        );
        // Exact draws: nothing rejected at 1e-3, mean radius √(π/2), ratios of order 1.
        assert!(e.radius_ks.pvalue > 1e-3 && e.angle_ks.pvalue > 1e-3);
        assert!(c.two_sample_ks_radius.pvalue > 1e-3 && c.two_sample_ks_angle.pvalue > 1e-3);
        assert!((e.mean_radius - std::f64::consts::FRAC_PI_2.sqrt()).abs() < 0.05);
        assert!(c.sliced_wasserstein_ratio() < 3.0 && c.energy_distance_ratio() < 5.0);
        assert!(evaluate_planar(&x, rayleigh, uniform_angle, None)
            .reference
            .is_none());
    }

    #[test]
    fn a_wrong_scale_is_seen_by_every_statistic() {
        let n = 4000;
        let (x, reference, floor) = (
            gaussian(n, 1, 1.3),
            gaussian(n, 2, 1.0),
            gaussian(n, 3, 1.0),
        );
        let d = ReferenceDraws {
            reference: &reference,
            floor_draw: &floor,
            sw_projections: 16,
            sw_seed: 9,
            energy_subsample: 500,
        };
        let e = evaluate_planar(&x, rayleigh, uniform_angle, Some(d));
        let c = e.reference.unwrap();
        assert!(e.radius_ks.pvalue < 1e-10 && c.two_sample_ks_radius.pvalue < 1e-10);
        let (sw, ed) = (c.sliced_wasserstein_ratio(), c.energy_distance_ratio());
        assert!(sw > 3.0 && ed > 3.0, "SW ratio {sw}, energy ratio {ed}");
        // The angle of an isotropic law stays uniform.
        assert!(e.angle_ks.pvalue > 1e-3);
    }
}
