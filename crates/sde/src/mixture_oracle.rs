//! The exact score of a Gaussian mixture pushed through a forward SDE.

use rand::Rng;
use rayon::prelude::*;
use smoluchowski_datasets::{Dataset, GaussianMixture};

use crate::{normal_cdf, ConditionalScore, ForwardSde, Score};

/// Rows per rayon task (fixed, so the work split never depends on the thread count; rows are
/// independent, so results are bit-identical for any number of threads anyway).
const ROWS_PER_TASK: usize = 512;

/// Exact marginals and score of `x₀ ~ Σ_k w_k N(μ_k, diag(s_k²))` diffused by `sde`.
///
/// The kernel `x_t | x₀ ~ N(m(t) x₀, σ(t)² I)` maps each component to a Gaussian, so
///
/// `p_t(x) = Σ_k w_k N(x; m μ_k, diag(v_k))`, `v_kj(t) = m(t)² s_kj² + σ(t)²`,
///
/// and the score is the responsibility-weighted sum of the component scores:
///
/// `∇ log p_t(x) = Σ_k r_k(x) · (−(x − m μ_k) / v_k)`, `r_k = w_k N_k(x) / Σ_i w_i N_i(x)`,
///
/// with the responsibilities evaluated by a (streaming) log-sum-exp, so the score is finite
/// and accurate arbitrarily far from the data.
#[derive(Debug, Clone)]
pub struct MixtureOracle<S: ForwardSde> {
    sde: S,
    mixture: GaussianMixture,
    /// Time the scratch below was prepared for.
    prepared: Option<f64>,
    /// `m μ_kj`, `K × d`.
    centre: Vec<f64>,
    /// `1 / v_kj`, `K × d`.
    inv_var: Vec<f64>,
    /// `ln w_k − ½ Σ_j ln(2π v_kj)`.
    log_norm: Vec<f64>,
}

impl<S: ForwardSde + Sync> MixtureOracle<S> {
    /// Oracle for the data law `mixture` diffused by `sde` (both already validated).
    pub fn new(sde: S, mixture: GaussianMixture) -> Self {
        let kd = mixture.means().len();
        let k = mixture.n_components();
        Self {
            sde,
            mixture,
            prepared: None,
            centre: vec![0.0; kd],
            inv_var: vec![0.0; kd],
            log_norm: vec![0.0; k],
        }
    }

    /// The forward SDE.
    pub fn sde(&self) -> &S {
        &self.sde
    }

    /// The data law `p₀`.
    pub fn mixture(&self) -> &GaussianMixture {
        &self.mixture
    }

    /// `p_t` itself as a mixture: same weights, means `m(t) μ_k`, standard deviations
    /// `√(m(t)² s_kj² + σ(t)²)`.
    pub fn marginal(&self, t: f64) -> GaussianMixture {
        let m = self.sde.mean_coef(t);
        let sig = self.sde.marginal_std(t);
        let d = self.mixture.dim();
        let k = self.mixture.n_components();
        let means = (0..k)
            .map(|c| self.mixture.mean(c).iter().map(|&mu| m * mu).collect())
            .collect();
        let stds = (0..k)
            .map(|c| {
                self.mixture
                    .std(c)
                    .iter()
                    .map(|&s| (m * s).hypot(sig))
                    .collect()
            })
            .collect();
        debug_assert!(d > 0);
        GaussianMixture::new(means, stds, self.mixture.weights().to_vec())
            .expect("a valid mixture stays valid under the kernel")
    }

    /// Marginal CDF of coordinate `coord` at time `t`:
    /// `F_j(x, t) = Σ_k w_k Φ((x − m μ_kj) / √(m² s_kj² + σ²))`.
    pub fn marginal_cdf(&self, coord: usize, t: f64, x: f64) -> f64 {
        let d = self.mixture.dim();
        assert!(coord < d, "marginal_cdf: coord {coord} ≥ d");
        let m = self.sde.mean_coef(t);
        let sig = self.sde.marginal_std(t);
        let f: f64 = (0..self.mixture.n_components())
            .map(|k| {
                let mu = m * self.mixture.mean(k)[coord];
                let sd = (m * self.mixture.std(k)[coord]).hypot(sig);
                self.mixture.weights()[k] * normal_cdf((x - mu) / sd)
            })
            .sum();
        f.clamp(0.0, 1.0)
    }

    /// `log p_t(x) = ln Σ_k w_k Π_j N(x_j; m μ_kj, v_kj)` of one point (log-sum-exp; builds
    /// [`MixtureOracle::marginal`] each call, so not meant for hot loops).
    pub fn log_density(&self, x: &[f64], t: f64) -> f64 {
        self.marginal(t).log_density(x)
    }

    /// Draw `n` points of `p_t` into `out` (`n × d`): component `k ~ w`, then
    /// `x_j = m μ_kj + √v_kj ε_j`.
    pub fn sample_marginal<R: Rng + ?Sized>(&self, t: f64, rng: &mut R, out: &mut [f64]) {
        self.marginal(t).sample_into(rng, out);
    }

    /// Exact score in f64 for every point of the row-major buffer `x` (`n × d`), parallel
    /// over rows (deterministic: rows are independent).
    pub fn score_f64(&mut self, x: &[f64], t: f64, out: &mut [f64]) {
        self.prepare(t);
        let d = self.mixture.dim();
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
        let this = &*self;
        x.par_chunks(ROWS_PER_TASK * d)
            .zip(out.par_chunks_mut(ROWS_PER_TASK * d))
            .for_each(|(xc, oc)| {
                for (xr, or) in xc.chunks_exact(d).zip(oc.chunks_exact_mut(d)) {
                    this.score_row(xr, or);
                }
            });
    }

    fn prepare(&mut self, t: f64) {
        if self.prepared == Some(t) {
            return;
        }
        let m = self.sde.mean_coef(t);
        let sig = self.sde.marginal_std(t);
        let d = self.mixture.dim();
        for k in 0..self.mixture.n_components() {
            let mut ln = self.mixture.weights()[k].ln();
            for j in 0..d {
                let s = self.mixture.std(k)[j];
                let v = m * m * s * s + sig * sig;
                self.centre[k * d + j] = m * self.mixture.mean(k)[j];
                self.inv_var[k * d + j] = 1.0 / v;
                ln -= 0.5 * (std::f64::consts::TAU * v).ln();
            }
            self.log_norm[k] = ln;
        }
        self.prepared = Some(t);
    }

    /// Streaming log-sum-exp over components: keeps the running maximum `M` of the
    /// log-terms, the sum `Σ e^{l_k − M}` and the weighted score sum in `out` (rescaled when `M`
    /// grows). No allocation.
    #[inline]
    fn score_row(&self, x: &[f64], out: &mut [f64]) {
        let d = x.len();
        out.fill(0.0);
        let mut max = f64::NEG_INFINITY;
        let mut sum = 0.0;
        for k in 0..self.log_norm.len() {
            let c = &self.centre[k * d..(k + 1) * d];
            let iv = &self.inv_var[k * d..(k + 1) * d];
            let mut l = self.log_norm[k];
            for j in 0..d {
                let z = x[j] - c[j];
                l -= 0.5 * z * z * iv[j];
            }
            if l > max {
                let scale = (max - l).exp();
                sum *= scale;
                for o in out.iter_mut() {
                    *o *= scale;
                }
                max = l;
            }
            let e = (l - max).exp();
            sum += e;
            for j in 0..d {
                out[j] += e * (c[j] - x[j]) * iv[j];
            }
        }
        let inv = 1.0 / sum;
        for o in out.iter_mut() {
            *o *= inv;
        }
    }
}

impl<S: ForwardSde + Sync> Score for MixtureOracle<S> {
    fn dim(&self) -> usize {
        self.mixture.dim()
    }

    /// `Σ_k r_k(x) (m μ_k − x) / v_k`, computed in f64 (parallel over rows).
    fn score(&mut self, x: &[f32], t: f64, out: &mut [f32]) {
        self.prepare(t);
        let d = self.mixture.dim();
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
        let this = &*self;
        x.par_chunks(ROWS_PER_TASK * d)
            .zip(out.par_chunks_mut(ROWS_PER_TASK * d))
            .for_each(|(xc, oc)| {
                let mut xr = vec![0.0; d];
                let mut or = vec![0.0; d];
                for (xs, os) in xc.chunks_exact(d).zip(oc.chunks_exact_mut(d)) {
                    for (a, &b) in xr.iter_mut().zip(xs) {
                        *a = f64::from(b);
                    }
                    this.score_row(&xr, &mut or);
                    for (a, &b) in os.iter_mut().zip(&or) {
                        *a = b as f32;
                    }
                }
            });
    }
}

/// Exact class-conditional and unconditional scores of a labelled Gaussian mixture (label =
/// component) diffused by an affine forward SDE, as a [`ConditionalScore`].
///
/// Under the kernel `x_t | x₀ ~ N(m(t) x₀, σ(t)² I)` the class law `N(μ_c, diag(s_c²))` stays
/// Gaussian: `p_t(x | c) = N(x; m μ_c, diag(m² s_c² + σ² ))`, so
/// `∇ log p_t(x | c) = −(x − m μ_c) / (m² s_c² + σ²)` exactly, and `p_t(x) = Σ_c w_c p_t(x | c)`
/// is the mixture of [`MixtureOracle`]. Every guided score `(1 + w) ∇ log p_t(x | c) − w ∇ log
/// p_t(x)` is therefore exact at every `t`.
#[derive(Debug, Clone)]
pub struct LabelledMixtureOracle<S: ForwardSde + Clone> {
    unconditional: MixtureOracle<S>,
    /// One single-component oracle per class.
    classes: Vec<MixtureOracle<S>>,
}

impl<S: ForwardSde + Clone + Sync> LabelledMixtureOracle<S> {
    /// The oracle of `mixture` (labels = its components) diffused by `sde`.
    pub fn new(sde: S, mixture: GaussianMixture) -> Self {
        let classes = (0..mixture.n_components())
            .map(|c| MixtureOracle::new(sde.clone(), mixture.component(c)))
            .collect();
        LabelledMixtureOracle {
            unconditional: MixtureOracle::new(sde, mixture),
            classes,
        }
    }

    /// The unconditional oracle of `p_t`.
    pub fn unconditional(&mut self) -> &mut MixtureOracle<S> {
        &mut self.unconditional
    }

    /// The oracle of class `c` alone (`p_t(x | c)`). Panics if `c ≥ classes`.
    pub fn class(&mut self, c: usize) -> &mut MixtureOracle<S> {
        &mut self.classes[c]
    }
}

impl<S: ForwardSde + Clone + Sync> ConditionalScore for LabelledMixtureOracle<S> {
    fn dim(&self) -> usize {
        self.unconditional.dim()
    }

    fn classes(&self) -> usize {
        self.classes.len()
    }

    /// `−(x − m μ_c)/(m² s_c² + σ²)` for a class, the mixture score of [`MixtureOracle`] for
    /// `None`. Panics if `label ≥ classes`.
    fn conditional_score(&mut self, x: &[f32], t: f64, label: Option<usize>, out: &mut [f32]) {
        match label {
            None => self.unconditional.score(x, t, out),
            Some(c) => self.classes[c].score(x, t, out),
        }
    }
}
