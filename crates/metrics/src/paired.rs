//! Means with standard errors, and paired per-point comparisons: the summaries of per-point
//! evaluations (held-out log-likelihoods against exact log-densities, one estimator against
//! another on the same points, one ODE solver against another).

/// A sample mean and its standard error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanSe {
    /// `x̄ = (1/n) Σ xᵢ`.
    pub mean: f64,
    /// `s/√n` with `s² = Σ (xᵢ − x̄)² / (n − 1)` (`n − 1` floored at 1).
    pub se: f64,
}

impl MeanSe {
    /// The sample standard deviation `s = se·√n` of the `n` values summarised.
    pub fn sd(&self, n: usize) -> f64 {
        self.se * (n as f64).sqrt()
    }

    /// `mean / se`: the z-score of the mean against 0.
    pub fn z(&self) -> f64 {
        self.mean / self.se
    }
}

/// Mean and standard error of `x`: `x̄ = Σxᵢ/n`, `se = √(s²/n)`,
/// `s² = Σ(xᵢ − x̄)²/max(n − 1, 1)`. NaN for an empty slice.
pub fn mean_se(x: &[f64]) -> MeanSe {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0).max(1.0);
    MeanSe {
        mean,
        se: (var / n).sqrt(),
    }
}

/// Sample standard deviation `s = √(Σ(xᵢ − x̄)²/(n − 1))` (as [`mean_se`]'s `se·√n`).
pub fn sample_sd(x: &[f64]) -> f64 {
    mean_se(x).sd(x.len())
}

/// The paired differences `aᵢ − bᵢ` (over the shorter length).
pub fn paired_differences(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(p, q)| p - q).collect()
}

/// Mean and standard error of the paired differences `aᵢ − bᵢ`: the SE of a paired comparison
/// is that of the differences, usually far smaller than either sample's when they are
/// correlated.
pub fn paired_mean_se(a: &[f64], b: &[f64]) -> MeanSe {
    mean_se(&paired_differences(a, b))
}

/// `maxᵢ |aᵢ − bᵢ|` (0 for empty slices).
pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0f64, f64::max)
}

/// The decomposition of a model's held-out negative log-likelihood against an exact density.
///
/// With per-point model log-likelihoods `ℓᵢ = log p^θ_{t_ε}(xᵢ)`, exact `log p₀(xᵢ)` and exact
/// `log p_{t_ε}(xᵢ)` (the data law smoothed by the forward kernel at `t_ε`), `xᵢ ~ p₀`:
/// - `nll`: `−ℓᵢ`, whose mean estimates the cross-entropy `H(p₀, p^θ) = H(p₀) + KL(p₀‖p^θ)`;
/// - `total`: `−ℓᵢ + log p₀(xᵢ)`, mean `→ KL(p₀ ‖ p^θ_{t_ε}) ≥ 0`;
/// - `teps`: `log p₀(xᵢ) − log p_{t_ε}(xᵢ)`, what the smoothing by `t_ε` alone costs;
/// - `model`: `−ℓᵢ + log p_{t_ε}(xᵢ)`, the model's own part; `total = teps + model` per point.
///
/// Each is a paired mean over the same points, so its SE is that of the per-point differences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LikelihoodGaps {
    /// Mean negative log-likelihood (nats).
    pub nll: MeanSe,
    /// `NLL − H(p₀)`, paired.
    pub total: MeanSe,
    /// The `t_ε`-smoothing part.
    pub teps: MeanSe,
    /// The model part.
    pub model: MeanSe,
}

/// [`LikelihoodGaps`] of per-point model log-likelihoods `model_ll` against exact `log_p0` and
/// `log_pt` (all of one length). Also returns the per-point NLL `−ℓᵢ`.
pub fn likelihood_gaps(
    model_ll: &[f64],
    log_p0: &[f64],
    log_pt: &[f64],
) -> (LikelihoodGaps, Vec<f64>) {
    let nll: Vec<f64> = model_ll.iter().map(|v| -v).collect();
    let total: Vec<f64> = nll.iter().zip(log_p0).map(|(a, b)| a + b).collect();
    let teps: Vec<f64> = log_p0.iter().zip(log_pt).map(|(a, b)| a - b).collect();
    let model: Vec<f64> = nll.iter().zip(log_pt).map(|(a, b)| a + b).collect();
    let gaps = LikelihoodGaps {
        nll: mean_se(&nll),
        total: mean_se(&total),
        teps: mean_se(&teps),
        model: mean_se(&model),
    };
    (gaps, nll)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_se_matches_numpy() {
        // np.mean([1, 2, 4, 7]) = 3.5; np.std([1, 2, 4, 7], ddof=1) / 2 = 1.3228756555322954
        let m = mean_se(&[1.0, 2.0, 4.0, 7.0]);
        assert_eq!(m.mean, 3.5);
        assert!((m.se - 1.3228756555322954).abs() < 1e-15);
        assert!((sample_sd(&[1.0, 2.0, 4.0, 7.0]) - 2.6457513110645907).abs() < 1e-15);
        assert!((m.z() - 3.5 / 1.3228756555322954).abs() < 1e-12);
    }

    #[test]
    fn paired_comparisons() {
        let a = [1.0, 2.0, 3.0];
        let b = [0.5, 2.5, 3.0];
        assert_eq!(paired_differences(&a, &b), vec![0.5, -0.5, 0.0]);
        assert_eq!(max_abs_diff(&a, &b), 0.5);
        assert_eq!(paired_mean_se(&a, &b).mean, 0.0);
        assert_eq!(max_abs_diff(&[], &[]), 0.0);
    }

    #[test]
    fn likelihood_gaps_add_up() {
        let ll = [-1.0, -2.0, -0.5, -1.5];
        let lp0 = [-0.9, -1.8, -0.7, -1.2];
        let lpt = [-0.95, -1.85, -0.65, -1.25];
        let (g, nll) = likelihood_gaps(&ll, &lp0, &lpt);
        assert_eq!(nll, vec![1.0, 2.0, 0.5, 1.5]);
        assert!((g.nll.mean - 1.25).abs() < 1e-15);
        assert!((g.total.mean - (g.teps.mean + g.model.mean)).abs() < 1e-12);
        assert!((g.teps.mean - 0.025).abs() < 1e-12);
    }
}
