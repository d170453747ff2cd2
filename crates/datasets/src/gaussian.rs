//! Axis-aligned Gaussian data, mainly for tests against exact scores.

use rand::Rng;
use rand_distr::StandardNormal;

use crate::error::{check_parameter as check, DatasetError};
use crate::Dataset;

/// `N(μ, diag(s²))`: independent coordinates `x_j = μ_j + s_j ε_j`, `ε_j ~ N(0, 1)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Gaussian {
    mean: Vec<f64>,
    std: Vec<f64>,
}

impl Gaussian {
    /// `N(mean, diag(std²))`; `mean`, `std` non-empty, equal length, finite, `std ≥ 0`.
    pub fn new(mean: Vec<f64>, std: Vec<f64>) -> Result<Self, DatasetError> {
        if mean.is_empty() {
            return Err(DatasetError::empty("mean"));
        }
        if mean.len() != std.len() {
            return Err(DatasetError::length_mismatch(
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
        Ok(Self { mean, std })
    }

    /// Isotropic `N(0, s² I_d)`.
    pub fn isotropic(dim: usize, std: f64) -> Result<Self, DatasetError> {
        Self::new(vec![0.0; dim], vec![std; dim])
    }

    /// `μ`.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// `s`.
    pub fn std(&self) -> &[f64] {
        &self.std
    }

    /// `log p(x) = Σ_j [−(x_j − μ_j)² / (2 s_j²) − ln s_j − ½ ln 2π]` for one point `x`.
    pub fn log_density(&self, x: &[f64]) -> f64 {
        assert_eq!(
            x.len(),
            self.mean.len(),
            "log_density: x must have length d"
        );
        x.iter()
            .zip(&self.mean)
            .zip(&self.std)
            .map(|((&x, &m), &s)| {
                let z = (x - m) / s;
                -0.5 * z * z - s.ln() - 0.5 * std::f64::consts::TAU.ln()
            })
            .sum()
    }
}

impl Dataset for Gaussian {
    fn dim(&self) -> usize {
        self.mean.len()
    }

    fn sample_into<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f64]) {
        let d = self.mean.len();
        assert_eq!(
            out.len() % d,
            0,
            "sample_into: buffer length must be a multiple of dim"
        );
        for row in out.chunks_exact_mut(d) {
            for ((x, &m), &s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                let e: f64 = rng.sample(StandardNormal);
                *x = m + s * e;
            }
        }
    }
}
