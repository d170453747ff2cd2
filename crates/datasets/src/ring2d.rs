//! `ring2d`: the toy 2-D dataset of the original notes, with exact marginals.

use std::f64::consts::{FRAC_PI_2, FRAC_PI_4, PI};

use rand::Rng;
use rand_distr::Distribution;
use statrs::distribution::{Continuous, ContinuousCDF};
use statrs::statistics::Distribution as _;

use crate::error::{check_parameter as check, DatasetError};
use crate::Dataset;

/// `ring2d`: `x = r · u / |u|` with `u` uniform in the square `[−1, 1]²` and an independent
/// radius `r ~ Gamma(shape k, rate k)`, `k = scale` (mean 1, standard deviation `1/√k`).
///
/// Exact marginals (polar coordinates `r = |x|`, `θ = atan2(y, x) ∈ (−π, π]`, independent):
/// - radius: `p(r) = k^k r^{k−1} e^{−k r} / Γ(k)`;
/// - angle: `p(θ) = 1 / (8 max(cos²θ, sin²θ))` (mass ¼ on each face of the square);
/// - joint: `p(x) = p(r) p(θ) / r`.
#[derive(Debug, Clone)]
pub struct Ring2d {
    scale: f64,
    sampler: rand_distr::Gamma<f64>,
    radial: statrs::distribution::Gamma,
}

impl Default for Ring2d {
    /// `scale = 200`, as in the notes.
    fn default() -> Self {
        Self::new(200.0).expect("valid default scale")
    }
}

impl PartialEq for Ring2d {
    fn eq(&self, other: &Self) -> bool {
        self.scale == other.scale
    }
}

impl Ring2d {
    /// `ring2d` with radius `Gamma(shape = scale, rate = scale)`; `scale` must be finite and `> 0`.
    pub fn new(scale: f64) -> Result<Self, DatasetError> {
        check("scale", scale, "> 0", |v| v > 0.0)?;
        let sampler = rand_distr::Gamma::new(scale, 1.0 / scale)
            .map_err(|_| DatasetError::new("scale", scale, "give a valid Gamma(scale, 1/scale)"))?;
        let radial = statrs::distribution::Gamma::new(scale, scale).map_err(|_| {
            DatasetError::new("scale", scale, "give a valid Gamma(scale, rate scale)")
        })?;
        Ok(Self {
            scale,
            sampler,
            radial,
        })
    }

    /// The Gamma shape = rate `k`.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Radial density `p(r) = k^k r^{k−1} e^{−k r} / Γ(k)` (`0` for `r < 0`).
    pub fn radial_pdf(&self, r: f64) -> f64 {
        if r < 0.0 {
            0.0
        } else {
            self.radial.pdf(r)
        }
    }

    /// Radial log-density `ln p(r)` (`−∞` for `r ≤ 0` when `k > 1`).
    pub fn radial_ln_pdf(&self, r: f64) -> f64 {
        if r < 0.0 {
            f64::NEG_INFINITY
        } else {
            self.radial.ln_pdf(r)
        }
    }

    /// Radial CDF `P(|x| ≤ r) = γ(k, k r) / Γ(k)` (regularised lower incomplete gamma).
    pub fn radial_cdf(&self, r: f64) -> f64 {
        if r <= 0.0 {
            0.0
        } else {
            self.radial.cdf(r)
        }
    }

    /// Angular density `p(θ) = 1 / (8 max(cos²θ, sin²θ))`, `θ = atan2(y, x)`; `2π`-periodic.
    pub fn angular_pdf(&self, theta: f64) -> f64 {
        let (s, c) = theta.sin_cos();
        1.0 / (8.0 * (c * c).max(s * s))
    }

    /// Angular CDF `F(θ) = P(atan2(y, x) ≤ θ)` on `(−π, π]` (0 below −π, 1 above π); per face:
    /// - `θ < −3π/4`: `tan(θ + π) / 8`;
    /// - `θ < −π/4`: `1/8 + (tan(θ + π/2) + 1) / 8`;
    /// - `θ < π/4`: `3/8 + (tan θ + 1) / 8`;
    /// - `θ < 3π/4`: `5/8 + (tan(θ − π/2) + 1) / 8`;
    /// - else: `7/8 + (tan(θ − π) + 1) / 8`.
    ///
    /// (`tan(θ + π/2)` is written `−cot θ` etc. so each branch is evaluated without a pole.)
    pub fn angular_cdf(&self, theta: f64) -> f64 {
        angular_cdf(theta)
    }

    /// `ln p(x) = ln p(r) + ln p(θ) − ln r` for the point `x = (r cos θ, r sin θ)`.
    pub fn log_density(&self, x: [f64; 2]) -> f64 {
        let r = x[0].hypot(x[1]);
        if r == 0.0 {
            return if self.scale > 1.0 {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            };
        }
        // p(θ) = 1 / (8 max(cos², sin²)) with cos = x/r, sin = y/r.
        let m = x[0].abs().max(x[1].abs()) / r;
        self.radial.ln_pdf(r) - (8.0 * m * m).ln() - r.ln()
    }

    /// Differential entropy of the joint law in the plane, in nats (closed form):
    ///
    /// `H = H(r) + H(θ) + E[ln r]` with `H(r) = k − ln k + ln Γ(k) + (1 − k) ψ(k)` (Gamma entropy),
    /// `E[ln r] = ψ(k) − ln k`, and `H(θ) = −∫ p ln p dθ = 2 ln 2 + 2 − π/2`.
    ///
    /// (From `ln p(x) = ln p(r) + ln p(θ) − ln r` and `dx = r dr dθ`; the angular integral is
    /// `8 ∫₀^{π/4} sec²θ/8 · ln(8 cos²θ) dθ` with `∫ sec²θ ln cos θ dθ = tan θ ln cos θ + tan θ − θ`.)
    pub fn entropy(&self) -> f64 {
        let k = self.scale;
        let h_r = self.radial.entropy().unwrap_or_else(|| {
            k - k.ln()
                + statrs::function::gamma::ln_gamma(k)
                + (1.0 - k) * statrs::function::gamma::digamma(k)
        });
        let e_ln_r = statrs::function::gamma::digamma(k) - k.ln();
        h_r + ANGULAR_ENTROPY + e_ln_r
    }
}

/// `H(θ) = 2 ln 2 + 2 − π/2`: differential entropy of the angular law.
pub const ANGULAR_ENTROPY: f64 = 2.0 * std::f64::consts::LN_2 + 2.0 - FRAC_PI_2;

fn angular_cdf(theta: f64) -> f64 {
    if theta.is_nan() {
        return f64::NAN;
    }
    if theta <= -PI {
        return 0.0;
    }
    if theta >= PI {
        return 1.0;
    }
    let (s, c) = theta.sin_cos();
    let f = if theta < -3.0 * FRAC_PI_4 {
        // tan(θ + π) = tan θ.
        (s / c) / 8.0
    } else if theta < -FRAC_PI_4 {
        // tan(θ + π/2) = −cot θ.
        0.125 + (1.0 - c / s) / 8.0
    } else if theta < FRAC_PI_4 {
        0.375 + (s / c + 1.0) / 8.0
    } else if theta < 3.0 * FRAC_PI_4 {
        // tan(θ − π/2) = −cot θ.
        0.625 + (1.0 - c / s) / 8.0
    } else {
        // tan(θ − π) = tan θ.
        0.875 + (s / c + 1.0) / 8.0
    };
    f.clamp(0.0, 1.0)
}

impl Dataset for Ring2d {
    fn dim(&self) -> usize {
        2
    }

    /// Per point: `u` uniform in `[−1, 1]²` (redrawn if exactly `0`), `r ~ Gamma(k, 1/k)`,
    /// `x = r u / |u|`. No allocation.
    fn sample_into<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f64]) {
        assert_eq!(out.len() % 2, 0, "sample_into: buffer length must be even");
        for p in out.chunks_exact_mut(2) {
            let (ux, uy, n) = loop {
                let ux: f64 = rng.gen_range(-1.0..=1.0);
                let uy: f64 = rng.gen_range(-1.0..=1.0);
                // |u| ≤ √2: no overflow/underflow risk, so skip `hypot`'s scaling.
                let n = (ux * ux + uy * uy).sqrt();
                if n > 0.0 {
                    break (ux, uy, n);
                }
            };
            let r = self.sampler.sample(rng) / n;
            p[0] = r * ux;
            p[1] = r * uy;
        }
    }
}

/// The exact conditional law of one coordinate of ring2d given the other, `p(y | x = a) =
/// p(a, y) / ∫ p(a, y') dy'` (the law inpainting with a known `x = a` must sample), tabulated by
/// one 1-D quadrature: the joint density `p(a, y)` ([`Ring2d::log_density`]) on a uniform grid
/// of `y ∈ [−R, R]`, `R = 1 + 14/√k` (the radius's mean 1 plus 14 standard deviations: the
/// mass beyond is below 1e-40), integrated by the trapezoidal rule and normalised; the CDF
/// between nodes is linear. By the symmetry `(x, y) → (y, x)` it is also `p(x | y = a)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ring2dConditional {
    a: f64,
    ys: Vec<f64>,
    cdf: Vec<f64>,
}

impl Ring2dConditional {
    /// The law of `y` given `x = a` on `nodes ≥ 3` quadrature nodes (e.g. 200 001: the density's
    /// peaks have width `~1/√k`, resolved by thousands of nodes each). `None` if `p(a, ·) = 0`
    /// (`|a| ≥ R`).
    pub fn new(ring: &Ring2d, a: f64, nodes: usize) -> Option<Self> {
        assert!(nodes >= 3, "nodes ≥ 3");
        let r = 1.0 + 14.0 / ring.scale().sqrt();
        let h = 2.0 * r / (nodes - 1) as f64;
        let ys: Vec<f64> = (0..nodes).map(|i| -r + h * i as f64).collect();
        let dens: Vec<f64> = ys
            .iter()
            .map(|&y| {
                let l = ring.log_density([a, y]);
                if l.is_finite() {
                    l.exp()
                } else {
                    0.0
                }
            })
            .collect();
        let mut cdf = Vec::with_capacity(nodes);
        let mut acc = 0.0;
        cdf.push(0.0);
        for w in dens.windows(2) {
            acc += 0.5 * h * (w[0] + w[1]);
            cdf.push(acc);
        }
        if acc.is_nan() || acc <= 0.0 {
            return None;
        }
        cdf.iter_mut().for_each(|c| *c /= acc);
        Some(Ring2dConditional { a, ys, cdf })
    }

    /// The conditioning value `a`.
    pub fn a(&self) -> f64 {
        self.a
    }

    /// The density `p(y | x = a)` as the centred difference of the tabulated CDF over one node
    /// spacing (for figures).
    pub fn pdf(&self, y: f64) -> f64 {
        let h = self.ys[1] - self.ys[0];
        (self.cdf(y + h) - self.cdf(y - h)) / (2.0 * h)
    }

    /// `P(Y ≤ y | x = a)`.
    pub fn cdf(&self, y: f64) -> f64 {
        let (lo, hi) = (self.ys[0], self.ys[self.ys.len() - 1]);
        if y <= lo {
            return 0.0;
        }
        if y >= hi {
            return 1.0;
        }
        let h = self.ys[1] - self.ys[0];
        let i = (((y - lo) / h) as usize).min(self.ys.len() - 2);
        let f = (y - self.ys[i]) / h;
        self.cdf[i] + f * (self.cdf[i + 1] - self.cdf[i])
    }
}

#[cfg(test)]
mod conditional_tests {
    use super::*;

    /// Against simulation: ring2d points with `|x − a| < 0.004` (rejection from 4·10⁶ draws),
    /// their `y` against the tabulated CDF by KS (α = 1e-3; the window's own bias is a shift of
    /// the conditional by at most ~0.004 in `a`, far below the KS resolution at this n).
    #[test]
    fn conditional_cdf_matches_rejection_sampling() {
        let ring = Ring2d::new(200.0).unwrap();
        let mut rng = smoluchowski_core::streams::seeded(5, 0);
        let pts = ring.sample(&mut rng, 4_000_000);
        for a in [0.0, 0.6, 0.95] {
            let law = Ring2dConditional::new(&ring, a, 200_001).unwrap();
            assert!(law.cdf(0.0) > 0.49 && law.cdf(0.0) < 0.51, "symmetric in y");
            let mut ys: Vec<f64> = pts
                .chunks_exact(2)
                .filter(|p| (p[0] - a).abs() < 0.004)
                .map(|p| p[1])
                .collect();
            assert!(ys.len() > 1000, "{} points near x = {a}", ys.len());
            ys.sort_by(f64::total_cmp);
            let n = ys.len() as f64;
            let d = ys
                .iter()
                .enumerate()
                .map(|(i, &y)| {
                    let c = law.cdf(y);
                    (c - i as f64 / n).abs().max(((i + 1) as f64 / n - c).abs())
                })
                .fold(0.0, f64::max);
            // Kolmogorov's asymptotic critical value at α = 1e-3: 1.949/√n.
            assert!(d < 1.949 / n.sqrt(), "a = {a}: D = {d}, n = {n}");
        }
        assert!(Ring2dConditional::new(&ring, 100.0, 1001).is_none());
    }
}
