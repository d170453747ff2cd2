//! Datasets as config values ([`DatasetSpec`], what a Python `dict` deserialises into) and the
//! exact laws behind them ([`Law`]): seeded draws, log-densities, scores and marginal CDFs where
//! the library knows them in closed form.

use serde::{Deserialize, Serialize};
use smoluchowski::core::validate::Checker;
use smoluchowski::core::MemoryEstimate;
use smoluchowski::datasets::{
    draws_memory, Checkerboard, Circles, Dataset, GaussianMixture, Ring2d, SwissRoll, TwoMoons,
};
use smoluchowski::sde::{Ring2dOracle, VpSde};

/// A dataset as a config table (in Python a `dict`, e.g. `{"kind": "ring2d", "scale": 200}`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DatasetSpec {
    /// `ring2d`: radius `r ~ Gamma(k, rate k)`, angle of a uniform point of the square
    /// (`p(θ) = 1/(8 max(cos²θ, sin²θ))`), `k = scale` (default 200).
    Ring2d {
        /// Gamma shape = rate `k ≥ 2` (sd of the radius `1/√k`).
        #[serde(default = "default_ring_scale")]
        scale: f64,
    },
    /// Eight Gaussians of sd 0.05 with means on the circle of radius 2
    /// ([`GaussianMixture::eight_gaussians`]).
    EightGaussians,
    /// `components` equal isotropic Gaussians of sd `std` with means on a circle of `radius`.
    CircleMixture {
        /// `1 ≤ K ≤ 64`.
        components: usize,
        /// `≥ 0`.
        radius: f64,
        /// `> 0`.
        std: f64,
    },
    /// `Σ_k w_k N(μ_k, diag s_k²)` in any dimension (weights default to equal).
    Mixture {
        /// `means[k]`, each of length `d`.
        means: Vec<Vec<f64>>,
        /// `stds[k]`, each of length `d`, entries `> 0`.
        stds: Vec<Vec<f64>>,
        /// `w_k ≥ 0` (normalised); default equal weights.
        #[serde(default)]
        weights: Option<Vec<f64>>,
    },
    /// `N(mean, diag std²)` (a one-component mixture).
    Gaussian {
        /// Length `d`.
        mean: Vec<f64>,
        /// Length `d`, entries `> 0`.
        std: Vec<f64>,
    },
    /// scikit-learn's `make_moons` law (default noise 0.05).
    TwoMoons {
        /// `≥ 0`.
        #[serde(default = "default_noise")]
        noise: f64,
    },
    /// scikit-learn's `make_circles` law (defaults factor 0.8, noise 0.05).
    Circles {
        /// Inner radius in `[0, 1)`.
        #[serde(default = "default_factor")]
        factor: f64,
        /// `≥ 0`.
        #[serde(default = "default_noise")]
        noise: f64,
    },
    /// FFJORD's swiss roll (defaults scale 0.2, noise 0.2).
    SwissRoll {
        /// `> 0`.
        #[serde(default = "default_roll")]
        scale: f64,
        /// `≥ 0`.
        #[serde(default = "default_roll")]
        noise: f64,
    },
    /// FFJORD's checkerboard (defaults 4 × 4 cells on `[−4, 4]²`).
    Checkerboard {
        /// Even, `≥ 2`.
        #[serde(default = "default_cells")]
        cells: usize,
        /// `> 0`.
        #[serde(default = "default_half_width")]
        half_width: f64,
    },
}

fn default_ring_scale() -> f64 {
    200.0
}
fn default_noise() -> f64 {
    0.05
}
fn default_factor() -> f64 {
    0.8
}
fn default_roll() -> f64 {
    0.2
}
fn default_cells() -> usize {
    4
}
fn default_half_width() -> f64 {
    4.0
}

/// The exact law of a [`DatasetSpec`].
#[derive(Debug, Clone)]
pub enum Law {
    /// `ring2d`.
    Ring(Ring2d),
    /// Gaussian mixtures (and single Gaussians).
    Mixture(GaussianMixture),
    /// Two moons.
    Moons(TwoMoons),
    /// Concentric circles.
    Circles(Circles),
    /// Swiss roll.
    SwissRoll(SwissRoll),
    /// Checkerboard.
    Checkerboard(Checkerboard),
}

/// What a law does not provide (e.g. the log-density of the swiss roll): a bad-input error.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsupported(pub String);

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unsupported {}

impl DatasetSpec {
    /// Records every invalid field under `path` (e.g. `dataset.scale must be >= 2 (got 1)`).
    pub fn check(&self, c: &mut Checker, path: &str) {
        let p = |f: &str| format!("{path}.{f}");
        if let Err(e) = self.build() {
            c.fail(format!("{path}.{e}"));
        }
        if let DatasetSpec::Ring2d { scale } = self {
            c.require(*scale >= 2.0, &p("scale"), ">= 2", scale);
        }
    }

    /// The law; errors name the field relative to this table (e.g. `stds[2][1] must be > 0`).
    pub fn build(&self) -> Result<Law, String> {
        let s = |e: smoluchowski::datasets::DatasetError| e.to_string();
        Ok(match self {
            DatasetSpec::Ring2d { scale } => Law::Ring(Ring2d::new(*scale).map_err(s)?),
            DatasetSpec::EightGaussians => Law::Mixture(GaussianMixture::eight_gaussians()),
            DatasetSpec::CircleMixture {
                components,
                radius,
                std,
            } => {
                if !(1..=64).contains(components) {
                    return Err(format!("components must be in [1, 64] (got {components})"));
                }
                Law::Mixture(GaussianMixture::on_circle(*components, *radius, *std).map_err(s)?)
            }
            DatasetSpec::Mixture {
                means,
                stds,
                weights,
            } => {
                let w = weights.clone().unwrap_or_else(|| vec![1.0; means.len()]);
                Law::Mixture(GaussianMixture::new(means.clone(), stds.clone(), w).map_err(s)?)
            }
            DatasetSpec::Gaussian { mean, std } => Law::Mixture(
                GaussianMixture::new(vec![mean.clone()], vec![std.clone()], vec![1.0])
                    .map_err(s)?,
            ),
            DatasetSpec::TwoMoons { noise } => Law::Moons(TwoMoons::new(*noise).map_err(s)?),
            DatasetSpec::Circles { factor, noise } => {
                Law::Circles(Circles::new(*factor, *noise).map_err(s)?)
            }
            DatasetSpec::SwissRoll { scale, noise } => {
                Law::SwissRoll(SwissRoll::new(*scale, *noise).map_err(s)?)
            }
            DatasetSpec::Checkerboard { cells, half_width } => {
                Law::Checkerboard(Checkerboard::new(*cells, *half_width).map_err(s)?)
            }
        })
    }
}

/// The exact CDF of one scalar feature of a law (`radius`, `angle`, or coordinate `x<j>`).
pub struct MarginalCdf<'a> {
    /// `radius`, `angle`, `x0`, `x1`, ...
    pub name: String,
    /// The scalar feature of one row.
    pub feature: Feature,
    /// `F(v)`.
    pub cdf: Box<dyn Fn(f64) -> f64 + 'a>,
}

/// A scalar feature of a row: its radius `|x|`, its angle `atan2(x₁, x₀)` or a coordinate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Feature {
    /// `|x|`.
    Radius,
    /// `atan2(x₁, x₀) ∈ (−π, π]`.
    Angle,
    /// `x_j`.
    Coordinate(usize),
}

impl Law {
    /// Dimension `d` of one point.
    pub fn dim(&self) -> usize {
        match self {
            Law::Mixture(m) => m.dim(),
            _ => 2,
        }
    }

    /// Memory of `n` draws (bytes), for the size check before any work.
    pub fn draws_memory(&self, path: &str, n: usize) -> MemoryEstimate {
        draws_memory(path, n, self.dim())
    }

    /// `n` points, row-major `n × d`, from the seeded stream
    /// `core::streams::named(seed, stream, 0)`: the harness draws its data the same way, so
    /// `stream = "reference"` with an experiment's seed gives that run's reference draw.
    pub fn sample(&self, n: usize, seed: u64, stream: &str) -> Vec<f64> {
        let mut rng = smoluchowski::core::streams::named(seed, stream, 0);
        match self {
            Law::Ring(d) => d.sample(&mut rng, n),
            Law::Mixture(d) => d.sample(&mut rng, n),
            Law::Moons(d) => d.sample(&mut rng, n),
            Law::Circles(d) => d.sample(&mut rng, n),
            Law::SwissRoll(d) => d.sample(&mut rng, n),
            Law::Checkerboard(d) => d.sample(&mut rng, n),
        }
    }

    fn unsupported(&self, what: &str) -> Unsupported {
        Unsupported(format!(
            "dataset.kind = {}: no closed-form {what} (available for ring2d, Gaussian mixtures and Gaussians)",
            self.kind()
        ))
    }

    /// The serde name of the kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Law::Ring(_) => "ring2d",
            Law::Mixture(_) => "mixture",
            Law::Moons(_) => "two_moons",
            Law::Circles(_) => "circles",
            Law::SwissRoll(_) => "swiss_roll",
            Law::Checkerboard(_) => "checkerboard",
        }
    }

    /// `log p₀(x)` of each row of `x` (`n × d`) into `out` (length `n`): ring2d's
    /// `ln Gamma_pdf(r) + ln p(θ) − ln r`, a mixture's log-sum-exp of its components.
    pub fn log_density(&self, x: &[f64], out: &mut [f64]) -> Result<(), Unsupported> {
        let d = self.dim();
        match self {
            Law::Ring(ring) => {
                for (row, o) in x.chunks_exact(d).zip(out.iter_mut()) {
                    *o = ring.log_density([row[0], row[1]]);
                }
            }
            Law::Mixture(m) => {
                for (row, o) in x.chunks_exact(d).zip(out.iter_mut()) {
                    *o = m.log_density(row);
                }
            }
            _ => return Err(self.unsupported("log-density")),
        }
        Ok(())
    }

    /// `∇ log p₀(x)` of each row of `x` into `out` (both `n × d`). ring2d: the data score
    /// `(k/r − k) x/r − 2 e_i/x_i`, `i = argmax |x_i|` (the oracle's `σ = 0` case); a
    /// mixture: the responsibility-weighted component scores.
    pub fn score(&self, x: &[f64], out: &mut [f64]) -> Result<(), Unsupported> {
        match self {
            Law::Ring(ring) => {
                // VP at t = 0 has σ(0) = 0: the oracle returns the data score itself.
                let oracle = Ring2dOracle::new(VpSde::song_default(), ring.clone())
                    .map_err(|e| Unsupported(e.to_string()))?;
                for (row, o) in x.chunks_exact(2).zip(out.chunks_exact_mut(2)) {
                    let (s, _) = oracle.score_point([row[0], row[1]], 0.0);
                    o.copy_from_slice(&s);
                }
            }
            Law::Mixture(m) => m.score_rows(x, out),
            _ => return Err(self.unsupported("score")),
        }
        Ok(())
    }

    /// The exact marginal CDFs the law has in closed form: ring2d's radius and angle, every
    /// coordinate of a mixture, the (uniform) angle of `circles`, both (uniform) coordinates of
    /// the checkerboard; none for two moons and the swiss roll (their noise makes them
    /// convolutions without a closed form).
    pub fn marginal_cdfs(&self) -> Vec<MarginalCdf<'_>> {
        use std::f64::consts::PI;
        let uniform = |lo: f64, hi: f64| move |v: f64| ((v - lo) / (hi - lo)).clamp(0.0, 1.0);
        match self {
            Law::Ring(ring) => vec![
                MarginalCdf {
                    name: "radius".into(),
                    feature: Feature::Radius,
                    cdf: Box::new(|r| ring.radial_cdf(r)),
                },
                MarginalCdf {
                    name: "angle".into(),
                    feature: Feature::Angle,
                    cdf: Box::new(|t| ring.angular_cdf(t)),
                },
            ],
            Law::Mixture(m) => (0..m.dim())
                .map(|j| MarginalCdf {
                    name: format!("x{j}"),
                    feature: Feature::Coordinate(j),
                    cdf: Box::new(move |v| m.marginal_cdf(j, v)),
                })
                .collect(),
            Law::Circles(_) => vec![MarginalCdf {
                name: "angle".into(),
                feature: Feature::Angle,
                cdf: Box::new(uniform(-PI, PI)),
            }],
            Law::Checkerboard(b) => (0..2)
                .map(|j| MarginalCdf {
                    name: format!("x{j}"),
                    feature: Feature::Coordinate(j),
                    cdf: Box::new(uniform(-b.half_width(), b.half_width())),
                })
                .collect(),
            Law::Moons(_) | Law::SwissRoll(_) => Vec::new(),
        }
    }
}

impl Feature {
    /// The feature of every row of `x` (`n × d`).
    pub fn of_rows(&self, x: &[f64], d: usize) -> Vec<f64> {
        x.chunks_exact(d)
            .map(|row| match *self {
                Feature::Radius => row[0].hypot(row[1]),
                Feature::Angle => row[1].atan2(row[0]),
                Feature::Coordinate(j) => row[j],
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> DatasetSpec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn specs_parse_with_defaults_and_reject_unknown_fields() {
        assert_eq!(
            spec(r#"{"kind": "ring2d"}"#),
            DatasetSpec::Ring2d { scale: 200.0 }
        );
        let e = serde_json::from_str::<DatasetSpec>(r#"{"kind": "ring2d", "scael": 3}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `scael`"), "{e}");
        let e = serde_json::from_str::<DatasetSpec>(r#"{"kind": "ring3d"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `ring3d`"), "{e}");
    }

    #[test]
    fn bad_values_are_named_with_their_path() {
        let mut c = Checker::new();
        spec(r#"{"kind": "ring2d", "scale": 1.0}"#).check(&mut c, "dataset");
        let e = c.finish().unwrap_err().to_string();
        assert!(e.contains("dataset.scale must be >= 2 (got 1)"), "{e}");
        let mut c = Checker::new();
        spec(r#"{"kind": "mixture", "means": [[0, 0]], "stds": [[1, 0]]}"#)
            .check(&mut c, "dataset");
        let e = c.finish().unwrap_err().to_string();
        assert!(e.contains("dataset.stds[0][1]"), "{e}");
    }

    /// The ring2d score equals central differences of its exact log-density.
    #[test]
    fn ring_score_is_the_gradient_of_the_log_density() {
        let law = spec(r#"{"kind": "ring2d", "scale": 50}"#).build().unwrap();
        let x = law.sample(64, 3, "data");
        let mut s = vec![0.0; x.len()];
        law.score(&x, &mut s).unwrap();
        let h = 1e-6;
        for (i, row) in x.chunks_exact(2).enumerate() {
            for j in 0..2 {
                let (mut a, mut b) = (row.to_vec(), row.to_vec());
                a[j] += h;
                b[j] -= h;
                let (mut la, mut lb) = ([0.0], [0.0]);
                law.log_density(&a, &mut la).unwrap();
                law.log_density(&b, &mut lb).unwrap();
                let fd = (la[0] - lb[0]) / (2.0 * h);
                let tol = 1e-5 * (1.0 + fd.abs());
                assert!((fd - s[2 * i + j]).abs() < tol, "{fd} vs {}", s[2 * i + j]);
            }
        }
    }

    #[test]
    fn draws_are_seeded_by_stream_name() {
        let law = spec(r#"{"kind": "eight_gaussians"}"#).build().unwrap();
        assert_eq!(law.sample(10, 1, "data"), law.sample(10, 1, "data"));
        assert_ne!(law.sample(10, 1, "data"), law.sample(10, 1, "reference"));
        let moons = spec(r#"{"kind": "two_moons"}"#).build().unwrap();
        assert!(moons.log_density(&[0.0, 0.0], &mut [0.0]).is_err());
        assert!(moons.marginal_cdfs().is_empty());
    }
}
