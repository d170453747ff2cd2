//! The exact score `∇ log p` of a [`GaussianMixture`] and its Gaussian smoothing.

use crate::error::{check_parameter as check, DatasetError};
use crate::GaussianMixture;

impl GaussianMixture {
    /// Exact score of the mixture at one point `x` (length `d`), written into `out`:
    ///
    /// `∇ log p(x) = Σ_k r_k(x) · (−(x − μ_k) / s_k²)` (coordinate-wise), with responsibilities
    /// `r_k(x) = w_k N(x; μ_k, diag s_k²) / p(x)` computed by log-sum-exp (stable far from
    /// every component).
    ///
    /// Panics if `x.len()` or `out.len()` differ from the dimension.
    pub fn score(&self, x: &[f64], out: &mut [f64]) {
        let d = self.means().len() / self.n_components();
        assert!(
            x.len() == d && out.len() == d,
            "score: buffers must have length {d}"
        );
        let k = self.n_components();
        let mut best = f64::NEG_INFINITY;
        let mut logs = [0.0f64; 64];
        let mut heap;
        let logs: &mut [f64] = if k <= 64 {
            &mut logs[..k]
        } else {
            heap = vec![0.0; k];
            &mut heap
        };
        for (c, l) in logs.iter_mut().enumerate() {
            let (mu, s) = (self.mean(c), self.std(c));
            let mut v = self.weights()[c].ln();
            for j in 0..d {
                let z = (x[j] - mu[j]) / s[j];
                v -= 0.5 * z * z + s[j].ln();
            }
            *l = v;
            best = best.max(v);
        }
        let mut norm = 0.0;
        out.iter_mut().for_each(|o| *o = 0.0);
        for (c, l) in logs.iter().enumerate() {
            let r = (l - best).exp();
            norm += r;
            let (mu, s) = (self.mean(c), self.std(c));
            for j in 0..d {
                out[j] -= r * (x[j] - mu[j]) / (s[j] * s[j]);
            }
        }
        out.iter_mut().for_each(|o| *o /= norm);
    }

    /// Exact scores of `n` points (row-major `n × d` in and out).
    pub fn score_rows(&self, x: &[f64], out: &mut [f64]) {
        let d = self.means().len() / self.n_components();
        for (p, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            self.score(p, o);
        }
    }

    /// The law of `x + σ ε`, `ε ~ N(0, I)`: the same mixture with `s_kj² → s_kj² + σ²`.
    /// Requires `σ ≥ 0` (errors name `sigma`).
    pub fn smoothed(&self, sigma: f64) -> Result<Self, DatasetError> {
        check("sigma", sigma, "≥ 0", |v| v >= 0.0)?;
        let k = self.n_components();
        let means = (0..k).map(|c| self.mean(c).to_vec()).collect();
        let stds = (0..k)
            .map(|c| self.std(c).iter().map(|s| s.hypot(sigma)).collect())
            .collect();
        Self::new(means, stds, self.weights().to_vec())
    }
}
