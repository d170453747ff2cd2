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
