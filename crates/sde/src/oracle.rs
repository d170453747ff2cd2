//! The exact score of Gaussian data pushed through a forward SDE.

use rand::Rng;
use rand_distr::StandardNormal;

use crate::error::{check, SdeError};
use crate::{normal_cdf, ForwardSde, Score};

/// Exact score for data `x₀ ~ N(μ, diag(s²))` (independent coordinates) diffused by `sde`.
///
/// Under the kernel `x_t | x₀ ~ N(m(t) x₀, σ(t)²)` the marginal is, per coordinate `j`,
/// `p_t = N(m(t) μ_j, v_j(t))` with `v_j(t) = m(t)² s_j² + σ(t)²`, so the score is
/// `∇ log p_t(x)_j = −(x_j − m(t) μ_j) / v_j(t)`.
///
/// `s_j = 0` is allowed (a point mass at `μ_j`); then `v_j(0) = 0` and the score at `t = 0`
/// is infinite/NaN: evaluate at `t > 0`.
#[derive(Debug, Clone)]
pub struct GaussianOracle<S: ForwardSde> {
    sde: S,
    mean: Vec<f64>,
    std: Vec<f64>,
    /// Per-coordinate `m μ_j` at the last evaluated time (scratch, reused across calls).
    centre: Vec<f64>,
    /// Per-coordinate `1 / v_j` at the last evaluated time (scratch).
    inv_var: Vec<f64>,
}

impl<S: ForwardSde> GaussianOracle<S> {
    /// Oracle for `x₀ ~ N(mean, diag(std²))`; `mean` and `std` must be non-empty, of equal
    /// length, finite, with `std ≥ 0`.
    pub fn new(sde: S, mean: Vec<f64>, std: Vec<f64>) -> Result<Self, SdeError> {
        if mean.is_empty() {
            return Err(SdeError::empty("mean"));
        }
        if mean.len() != std.len() {
            return Err(SdeError::length_mismatch(
                "mean",
                mean.len(),
                "std",
                std.len(),
            ));
        }
        for (j, &m) in mean.iter().enumerate() {
            check(format!("mean[{j}]"), m, "finite", |_| true)?;
        }
        for (j, &s) in std.iter().enumerate() {
            check(format!("std[{j}]"), s, "≥ 0", |v| v >= 0.0)?;
        }
        let d = mean.len();
        Ok(Self {
            sde,
            mean,
            std,
            centre: vec![0.0; d],
            inv_var: vec![0.0; d],
        })
    }

    /// The forward SDE.
    pub fn sde(&self) -> &S {
        &self.sde
    }

    /// Data mean `μ`.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Data standard deviations `s`.
    pub fn std(&self) -> &[f64] {
        &self.std
    }

    /// Marginal mean of coordinate `coord` at time `t`: `m(t) μ_j`.
    pub fn marginal_mean(&self, coord: usize, t: f64) -> f64 {
        self.sde.mean_coef(t) * self.mean[coord]
    }

    /// Marginal variance of coordinate `coord` at time `t`: `v_j(t) = m(t)² s_j² + σ(t)²`.
    pub fn marginal_var(&self, coord: usize, t: f64) -> f64 {
        let m = self.sde.mean_coef(t);
        let sig = self.sde.marginal_std(t);
        m * m * self.std[coord] * self.std[coord] + sig * sig
    }

    /// CDF of coordinate `coord` of `p_t`: `Φ((x − m(t) μ_j) / √v_j(t))`.
    pub fn marginal_cdf(&self, coord: usize, t: f64, x: f64) -> f64 {
        let sd = self.marginal_var(coord, t).sqrt();
        normal_cdf((x - self.marginal_mean(coord, t)) / sd)
    }

    /// `log p_t(x)` of one point `x` (length `d`):
    /// `Σ_j [−(x_j − m μ_j)² / (2 v_j) − ½ ln(2π v_j)]`.
    pub fn log_density(&self, x: &[f64], t: f64) -> f64 {
        assert_eq!(
            x.len(),
            self.mean.len(),
            "log_density: x must have length d"
        );
        (0..x.len())
            .map(|j| {
                let v = self.marginal_var(j, t);
                let z = x[j] - self.marginal_mean(j, t);
                -0.5 * z * z / v - 0.5 * (std::f64::consts::TAU * v).ln()
            })
            .sum()
    }

    /// Exact score in f64: `out_j = −(x_j − m μ_j) / v_j` for every point of the row-major
    /// buffer `x` (`n × d`).
    pub fn score_f64(&mut self, x: &[f64], t: f64, out: &mut [f64]) {
        self.prepare(t);
        let d = self.mean.len();
        assert_eq!(
            x.len(),
            out.len(),
            "score: x and out must have equal length"
        );
        assert_eq!(
            x.len() % d,
            0,
            "score: buffer length must be a multiple of d"
        );
        for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            for j in 0..d {
                or[j] = (self.centre[j] - xr[j]) * self.inv_var[j];
            }
        }
    }

    /// Draw `n` points of `p_t` into the row-major buffer `out` (`n × d`):
    /// `x_j = m μ_j + √v_j ε`.
    pub fn sample_marginal<R: Rng + ?Sized>(&self, t: f64, rng: &mut R, out: &mut [f64]) {
        let d = self.mean.len();
        assert_eq!(
            out.len() % d,
            0,
            "sample_marginal: buffer length must be a multiple of d"
        );
        let m = self.sde.mean_coef(t);
        let sd: Vec<f64> = (0..d).map(|j| self.marginal_var(j, t).sqrt()).collect();
        for row in out.chunks_exact_mut(d) {
            for j in 0..d {
                let e: f64 = rng.sample(StandardNormal);
                row[j] = m * self.mean[j] + sd[j] * e;
            }
        }
    }

    fn prepare(&mut self, t: f64) {
        let m = self.sde.mean_coef(t);
        let sig = self.sde.marginal_std(t);
        for j in 0..self.mean.len() {
            self.centre[j] = m * self.mean[j];
            self.inv_var[j] = 1.0 / (m * m * self.std[j] * self.std[j] + sig * sig);
        }
    }
}

impl<S: ForwardSde> Score for GaussianOracle<S> {
    fn dim(&self) -> usize {
        self.mean.len()
    }

    /// `out_j = −(x_j − m(t) μ_j) / (m(t)² s_j² + σ(t)²)`, computed in f64.
    fn score(&mut self, x: &[f32], t: f64, out: &mut [f32]) {
        self.prepare(t);
        let d = self.mean.len();
        assert_eq!(
            x.len(),
            out.len(),
            "score: x and out must have equal length"
        );
        assert_eq!(
            x.len() % d,
            0,
            "score: buffer length must be a multiple of d"
        );
        for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            for j in 0..d {
                or[j] = ((self.centre[j] - f64::from(xr[j])) * self.inv_var[j]) as f32;
            }
        }
    }
}
