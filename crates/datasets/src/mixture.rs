//! Gaussian mixtures with diagonal covariances: exact density and per-coordinate marginals.

use rand::Rng;
use rand_distr::StandardNormal;

use crate::error::{check_parameter as check, DatasetError};
use crate::{Dataset, LabelledDataset};

/// `ln √(2π)`.
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// Standard normal CDF `Φ(z) = ½ erfc(−z / √2)` (libm's `erfc`: accurate in both tails).
pub(crate) fn normal_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

/// A mixture of `K` axis-aligned Gaussians in `R^d`:
///
/// `p(x) = Σ_k w_k N(x; μ_k, diag(s_k²))`, `N(x; μ, diag(s²)) = Π_j exp(−(x_j − μ_j)² / (2 s_j²)) / (√(2π) s_j)`.
///
/// Covariances are diagonal (per component, per coordinate standard deviations `s_kj > 0`); a
/// full covariance is not supported. Weights are normalised to sum to 1 by the constructor.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianMixture {
    dim: usize,
    /// `K × d`, row-major.
    means: Vec<f64>,
    /// `K × d`, row-major.
    stds: Vec<f64>,
    /// Normalised `w_k`.
    weights: Vec<f64>,
    /// `Σ_{i ≤ k} w_i` (last entry forced to 1).
    cumulative: Vec<f64>,
}

impl GaussianMixture {
    /// Mixture with component means `means[k]` (each of length `d`), standard deviations
    /// `stds[k]` (length `d`, every entry finite and `> 0`) and weights `weights[k]` (finite,
    /// `≥ 0`, positive sum; normalised here to `w_k / Σ w`).
    ///
    /// Errors name the offending field and value, e.g. `stds[2][1] must be > 0 (got 0)`.
    pub fn new(
        means: Vec<Vec<f64>>,
        stds: Vec<Vec<f64>>,
        weights: Vec<f64>,
    ) -> Result<Self, DatasetError> {
        if means.is_empty() {
            return Err(DatasetError::empty("means"));
        }
        if stds.len() != means.len() {
            return Err(DatasetError::length_mismatch(
                "means",
                means.len(),
                "stds",
                stds.len(),
            ));
        }
        if weights.len() != means.len() {
            return Err(DatasetError::length_mismatch(
                "means",
                means.len(),
                "weights",
                weights.len(),
            ));
        }
        let dim = means[0].len();
        if dim == 0 {
            return Err(DatasetError::empty("means[0]"));
        }
        for (k, (m, s)) in means.iter().zip(&stds).enumerate() {
            if m.len() != dim {
                return Err(DatasetError::length_mismatch(
                    "means[0]",
                    dim,
                    &format!("means[{k}]"),
                    m.len(),
                ));
            }
            if s.len() != dim {
                return Err(DatasetError::length_mismatch(
                    &format!("means[{k}]"),
                    dim,
                    &format!("stds[{k}]"),
                    s.len(),
                ));
            }
            for (j, &v) in m.iter().enumerate() {
                check(format!("means[{k}][{j}]"), v, "finite", |_| true)?;
            }
            for (j, &v) in s.iter().enumerate() {
                check(format!("stds[{k}][{j}]"), v, "> 0", |v| v > 0.0)?;
            }
        }
        for (k, &w) in weights.iter().enumerate() {
            check(format!("weights[{k}]"), w, "≥ 0", |v| v >= 0.0)?;
        }
        let total: f64 = weights.iter().sum();
        check("sum of weights", total, "> 0 and finite", |v| v > 0.0)?;
        let weights: Vec<f64> = weights.iter().map(|w| w / total).collect();
        let mut cumulative: Vec<f64> = weights
            .iter()
            .scan(0.0, |acc, &w| {
                *acc += w;
                Some(*acc)
            })
            .collect();
        *cumulative.last_mut().expect("non-empty") = 1.0;
        Ok(Self {
            dim,
            means: means.concat(),
            stds: stds.concat(),
            weights,
            cumulative,
        })
    }

    /// `n` equally weighted isotropic components of standard deviation `std`, centred at
    /// `radius · (cos 2πk/n, sin 2πk/n)`, `k = 0..n`.
    pub fn on_circle(n: usize, radius: f64, std: f64) -> Result<Self, DatasetError> {
        if n == 0 {
            return Err(DatasetError::empty("n"));
        }
        check("radius", radius, "≥ 0", |v| v >= 0.0)?;
        let means = (0..n)
            .map(|k| {
                let (s, c) = (std::f64::consts::TAU * k as f64 / n as f64).sin_cos();
                vec![radius * c, radius * s]
            })
            .collect();
        Self::new(means, vec![vec![std; 2]; n], vec![1.0; n])
    }

    /// The "8 Gaussians" toy: 8 equal components on the circle of radius 2 at angles `2πk/8`
    /// (so `(±2, 0)`, `(0, ±2)`, `(±√2, ±√2)`), isotropic standard deviation `0.05`.
    ///
    /// (FFJORD's `8gaussians` uses the same 8 directions at radius `4/√2 ≈ 2.83` with std
    /// `0.5/√2`; this preset is thinner, a harder test of a sampler's score near `t = 0`. Use
    /// [`GaussianMixture::on_circle`] for other radii/widths.)
    pub fn eight_gaussians() -> Self {
        Self::on_circle(8, 2.0, 0.05).expect("valid preset")
    }

    /// One-dimensional bimodal mixture `0.3 N(−2, 0.5²) + 0.7 N(1.5, 0.3²)`.
    pub fn bimodal_1d() -> Self {
        Self::new(
            vec![vec![-2.0], vec![1.5]],
            vec![vec![0.5], vec![0.3]],
            vec![0.3, 0.7],
        )
        .expect("valid preset")
    }

    /// Number of components `K`.
    pub fn n_components(&self) -> usize {
        self.weights.len()
    }

    /// Mean `μ_k` of component `k` (length `d`).
    pub fn mean(&self, k: usize) -> &[f64] {
        &self.means[k * self.dim..(k + 1) * self.dim]
    }

    /// Standard deviations `s_k` of component `k` (length `d`).
    pub fn std(&self, k: usize) -> &[f64] {
        &self.stds[k * self.dim..(k + 1) * self.dim]
    }

    /// All means, `K × d` row-major.
    pub fn means(&self) -> &[f64] {
        &self.means
    }

    /// All standard deviations, `K × d` row-major.
    pub fn stds(&self) -> &[f64] {
        &self.stds
    }

    /// Normalised weights `w_k` (sum 1).
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// `ln p(x) = ln Σ_k exp(ln w_k + Σ_j [−(x_j − μ_kj)² / (2 s_kj²) − ln s_kj − ½ ln 2π])`,
    /// evaluated with the log-sum-exp shift (no overflow/underflow far from the data).
    ///
    /// Panics if `x.len() != d`.
    pub fn log_density(&self, x: &[f64]) -> f64 {
        assert_eq!(x.len(), self.dim, "log_density: x must have length d");
        let d = self.dim;
        let log_comp = |k: usize| -> f64 {
            let means = &self.means[k * d..(k + 1) * d];
            let stds = &self.stds[k * d..(k + 1) * d];
            let mut l = self.weights[k].ln();
            for ((&xj, &m), &s) in x.iter().zip(means).zip(stds) {
                let z = (xj - m) / s;
                l -= 0.5 * z * z + s.ln() + LN_SQRT_2PI;
            }
            l
        };
        let max = (0..self.n_components())
            .map(log_comp)
            .fold(f64::NEG_INFINITY, f64::max);
        if max == f64::NEG_INFINITY {
            return max;
        }
        let sum: f64 = (0..self.n_components())
            .map(|k| (log_comp(k) - max).exp())
            .sum();
        max + sum.ln()
    }

    /// Marginal CDF of coordinate `coord`: `F_j(x) = Σ_k w_k Φ((x − μ_kj) / s_kj)`.
    ///
    /// Panics if `coord ≥ d`.
    pub fn marginal_cdf(&self, coord: usize, x: f64) -> f64 {
        assert!(coord < self.dim, "marginal_cdf: coord {coord} ≥ d");
        let d = self.dim;
        let f: f64 = (0..self.n_components())
            .map(|k| {
                self.weights[k]
                    * normal_cdf((x - self.means[k * d + coord]) / self.stds[k * d + coord])
            })
            .sum();
        f.clamp(0.0, 1.0)
    }
}

impl GaussianMixture {
    /// Component `k` alone: the class law `p₀(x | c = k) = N(μ_k, diag(s_k²))` as a
    /// one-component mixture. Panics if `k ≥ n_components()`.
    pub fn component(&self, k: usize) -> GaussianMixture {
        GaussianMixture::new(
            vec![self.mean(k).to_vec()],
            vec![self.std(k).to_vec()],
            vec![1.0],
        )
        .expect("a component of a valid mixture is valid")
    }

    /// The draws of [`Dataset::sample_into`], reporting each row's component to `on_label`.
    fn sample_rows<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        out: &mut [f64],
        mut on_label: impl FnMut(usize, usize),
    ) {
        let d = self.dim;
        assert_eq!(
            out.len() % d,
            0,
            "sample_into: buffer length must be a multiple of dim"
        );
        for (i, row) in out.chunks_exact_mut(d).enumerate() {
            let u: f64 = rng.gen();
            let k = self
                .cumulative
                .partition_point(|&c| c <= u)
                .min(self.weights.len() - 1);
            on_label(i, k);
            for (j, x) in row.iter_mut().enumerate() {
                let e: f64 = rng.sample(StandardNormal);
                *x = self.means[k * d + j] + self.stds[k * d + j] * e;
            }
        }
    }
}

impl Dataset for GaussianMixture {
    fn dim(&self) -> usize {
        self.dim
    }

    /// Per point: component `k` with `P(k) = w_k` (one uniform draw, inverted through the
    /// cumulative weights), then `x_j = μ_kj + s_kj ε_j`, `ε_j ~ N(0, 1)`. No allocation.
    fn sample_into<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f64]) {
        self.sample_rows(rng, out, |_, _| {});
    }
}

/// A labelled Gaussian mixture: the label of a point is its component, so the class law is
/// `p₀(x | c) = N(μ_c, diag(s_c²))` and `P(c) = w_c`. The draws are those of
/// [`Dataset::sample_into`] (same stream, same points).
impl LabelledDataset for GaussianMixture {
    fn classes(&self) -> usize {
        self.n_components()
    }

    fn sample_labelled_into<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        out: &mut [f64],
        labels: &mut [u32],
    ) {
        assert_eq!(labels.len() * self.dim, out.len(), "one label per row");
        self.sample_rows(rng, out, |i, k| labels[i] = k as u32);
    }
}
