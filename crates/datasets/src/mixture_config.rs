//! Serde configs of Gaussian mixtures with their validation (field paths named), as written in
//! manifests: components on a circle, or a 1-D mixture listed component by component.

use serde::{Deserialize, Serialize};
use smoluchowski_core::validate::Checker;
use smoluchowski_core::MemoryEstimate;

use crate::{DatasetError, GaussianMixture};

/// `components` equal isotropic 2-D Gaussians of standard deviation `std` with means
/// `radius · (cos 2πk/K, sin 2πk/K)` ([`GaussianMixture::on_circle`]).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CircleMixtureConfig {
    /// Number of components `K ≥ 1`.
    pub components: usize,
    /// Radius of the circle of means, `≥ 0`.
    pub radius: f64,
    /// Component standard deviation `> 0`.
    pub std: f64,
}

impl CircleMixtureConfig {
    /// Records every invalid field under `path` (`1 ≤ components ≤ 64`, radius, std).
    pub fn check(&self, c: &mut Checker, path: &str) {
        c.count(&format!("{path}.components"), self.components, 1, 64);
        c.non_negative(&format!("{path}.radius"), self.radius);
        c.positive(&format!("{path}.std"), self.std);
    }

    /// The mixture.
    pub fn build(&self) -> Result<GaussianMixture, DatasetError> {
        GaussianMixture::on_circle(self.components, self.radius, self.std)
    }
}

/// The 1-D mixture `Σ_k w_k N(μ_k, s_k²)` (weights normalised by [`GaussianMixture::new`]).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mixture1dConfig {
    /// Component means `μ_k`.
    pub means: Vec<f64>,
    /// Component standard deviations `s_k > 0`.
    pub stds: Vec<f64>,
    /// Weights `w_k ≥ 0`, not all zero.
    pub weights: Vec<f64>,
}

impl Mixture1dConfig {
    /// Records every invalid field under `path`: `1 ≤ K ≤ 64` means, as many stds and weights,
    /// finite means, positive stds, non-negative weights of positive sum.
    pub fn check(&self, c: &mut Checker, path: &str) {
        let k = self.means.len();
        c.count(&format!("length of {path}.means"), k, 1, 64);
        for (name, len) in [("stds", self.stds.len()), ("weights", self.weights.len())] {
            let want = format!("equal to the length of {path}.means ({k})");
            c.require(len == k, &format!("length of {path}.{name}"), &want, len);
        }
        for (i, &m) in self.means.iter().enumerate() {
            c.finite(&format!("{path}.means[{i}]"), m);
        }
        for (i, &s) in self.stds.iter().enumerate() {
            c.positive(&format!("{path}.stds[{i}]"), s);
        }
        for (i, &w) in self.weights.iter().enumerate() {
            c.non_negative(&format!("{path}.weights[{i}]"), w);
        }
        let total: f64 = self.weights.iter().sum();
        c.require(total > 0.0, &format!("sum of {path}.weights"), "> 0", total);
    }

    /// The mixture (1-D components).
    pub fn build(&self) -> Result<GaussianMixture, DatasetError> {
        GaussianMixture::new(
            self.means.iter().map(|&m| vec![m]).collect(),
            self.stds.iter().map(|&s| vec![s]).collect(),
            self.weights.clone(),
        )
    }
}

/// Memory of `n` draws of a `dim`-dimensional law kept as `f64` rows (field `path`):
/// `8 · dim` bytes per draw.
pub fn draws_memory(path: &str, n: usize, dim: usize) -> MemoryEstimate {
    MemoryEstimate::linear(path, n, 8 * dim as u128, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_build_and_name_bad_fields() {
        let circle = CircleMixtureConfig {
            components: 8,
            radius: 2.0,
            std: 0.3,
        };
        assert_eq!(circle.build().unwrap().n_components(), 8);
        let line = Mixture1dConfig {
            means: vec![-2.0, 1.5],
            stds: vec![0.5, 0.3],
            weights: vec![0.3, 0.7],
        };
        assert_eq!(line.build().unwrap(), GaussianMixture::bimodal_1d());
        let mut c = Checker::new();
        CircleMixtureConfig {
            components: 0,
            radius: 1.0,
            std: -1.0,
        }
        .check(&mut c, "m");
        Mixture1dConfig {
            means: vec![0.0],
            stds: vec![],
            weights: vec![0.0],
        }
        .check(&mut c, "d");
        let msg = c.finish().unwrap_err().to_string();
        for want in [
            "m.components must be >= 1",
            "m.std must be > 0",
            "length of d.stds",
            "sum of d.weights",
        ] {
            assert!(msg.contains(want), "{msg}");
        }
        assert_eq!(draws_memory("n", 10, 2).bytes, 160);
    }
}
