//! The forward kernel of a discrete DDPM chain as a [`ForwardSde`], exact at the chain's levels.

use crate::config::TrainConfigError;
use smoluchowski_core::ParamError;
use smoluchowski_sde::ForwardSde;

/// The VP-type process whose marginals equal the DDPM chain's **exactly** at `t_i = i/N`.
///
/// Given `ᾱ_0 = 1 > ᾱ_1 > … > ᾱ_N > 0` (e.g. `DdpmSchedule::alphas_bar()` of the samplers crate),
/// `ln ᾱ(t)` is interpolated linearly between the levels, i.e. the VP SDE
/// `dx = −½ β(t) x dt + √β(t) dW` on `[0, 1]` with the piecewise-constant rate
/// `β(t) = −N ln(1 − β_i) = N (ln ᾱ_{i−1} − ln ᾱ_i)` on `((i−1)/N, i/N]`. Its kernel is
/// `x_t | x_0 ~ N(m(t) x_0, σ(t)² I)` with `m = √ᾱ(t)`, `σ = √(1 − ᾱ(t))`, so
/// `m(t_i) = √ᾱ_i` and `σ(t_i) = √(1 − ᾱ_i)`: DSM with this kernel,
/// [`crate::TimeSampling::Discrete`] and `λ = σ²` is the ε-prediction loss of the chain, and a
/// network trained on it converts noise to score by `s = −ε_θ/√(1 − ᾱ_i)` exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct DdpmKernel {
    /// `ln ᾱ_i`, `i = 0..=N`.
    log_alpha_bar: Vec<f64>,
}

impl DdpmKernel {
    /// From the table `[ᾱ_0, …, ᾱ_N]` (`N ≥ 1`, `ᾱ_0 = 1`, strictly decreasing, `ᾱ_N > 0`);
    /// errors name the offending entry.
    pub fn new(alphas_bar: &[f64]) -> Result<Self, TrainConfigError> {
        if alphas_bar.len() < 2 {
            return Err(ParamError::new(
                "alphas_bar (length)",
                alphas_bar.len(),
                "N + 1 ≥ 2",
            ));
        }
        if alphas_bar[0] != 1.0 {
            return Err(ParamError::new("alphas_bar[0]", alphas_bar[0], "1"));
        }
        for i in 1..alphas_bar.len() {
            let (a, b) = (alphas_bar[i - 1], alphas_bar[i]);
            if !(b.is_finite() && b > 0.0 && b < a) {
                return Err(ParamError::new(
                    format!("alphas_bar[{i}]"),
                    b,
                    format!("in (0, alphas_bar[{}] = {a})", i - 1),
                ));
            }
        }
        Ok(Self {
            log_alpha_bar: alphas_bar.iter().map(|a| a.ln()).collect(),
        })
    }

    /// Number of levels `N`.
    pub fn levels(&self) -> usize {
        self.log_alpha_bar.len() - 1
    }

    /// `ᾱ_i` of level `i`.
    pub fn alpha_bar(&self, i: usize) -> f64 {
        self.log_alpha_bar[i].exp()
    }

    /// Cell `i − 1` containing `t` and the fraction of the way through it.
    #[inline]
    fn cell(&self, t: f64) -> (usize, f64) {
        let n = self.levels();
        let u = (t.clamp(0.0, 1.0) * n as f64).max(0.0);
        let i = (u.floor() as usize).min(n - 1);
        (i, u - i as f64)
    }

    /// `ln ᾱ(t)`, linear between the levels.
    #[inline]
    pub fn log_alpha_bar_at(&self, t: f64) -> f64 {
        let (i, f) = self.cell(t);
        let (a, b) = (self.log_alpha_bar[i], self.log_alpha_bar[i + 1]);
        a + (b - a) * f
    }

    /// `β(t) = N (ln ᾱ_{i−1} − ln ᾱ_i)` on cell `i`.
    pub fn beta(&self, t: f64) -> f64 {
        let (i, _) = self.cell(t);
        self.levels() as f64 * (self.log_alpha_bar[i] - self.log_alpha_bar[i + 1])
    }
}

impl ForwardSde for DdpmKernel {
    /// `a(t) = −½ β(t)`.
    fn drift_coef(&self, t: f64) -> f64 {
        -0.5 * self.beta(t)
    }
    /// `g(t) = √β(t)`.
    fn diffusion(&self, t: f64) -> f64 {
        self.beta(t).sqrt()
    }
    /// `m(t) = √ᾱ(t) = exp(½ ln ᾱ(t))`.
    fn mean_coef(&self, t: f64) -> f64 {
        (0.5 * self.log_alpha_bar_at(t)).exp()
    }
    /// `σ(t) = √(1 − ᾱ(t))` (computed as `√(−expm1(ln ᾱ))`).
    fn marginal_std(&self, t: f64) -> f64 {
        (-self.log_alpha_bar_at(t).exp_m1()).max(0.0).sqrt()
    }
    fn t_end(&self) -> f64 {
        1.0
    }
    fn prior_std(&self) -> f64 {
        1.0
    }
}
