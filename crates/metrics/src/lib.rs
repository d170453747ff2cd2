//! Statistics for checking samples against exact truth: histograms, radial and angular
//! marginals, Kolmogorov–Smirnov tests and distances between sample sets.
//!
//! (Interface stub: bodies are being written.)

/// Result of a Kolmogorov–Smirnov test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsResult {
    /// The KS statistic `D`.
    pub statistic: f64,
    /// Two-sided p-value.
    pub pvalue: f64,
}

/// One-sample KS test of `samples` against a continuous CDF: `D_n = sup_x |F_n(x) − F(x)|`.
pub fn ks_one_sample(samples: &[f64], cdf: impl Fn(f64) -> f64) -> KsResult {
    let _ = (samples, cdf(0.0));
    todo!()
}

/// Two-sample KS test: `D = sup_x |F_n(x) − G_m(x)|`.
pub fn ks_two_sample(a: &[f64], b: &[f64]) -> KsResult {
    let _ = (a, b);
    todo!()
}
