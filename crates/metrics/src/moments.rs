//! Sample moments.

/// Sample mean and unbiased variance `Σ (x − x̄)² / max(n − 1, 1)` (two passes).
pub fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var)
}

#[cfg(test)]
mod tests {
    #[test]
    fn mean_var_is_unbiased() {
        assert_eq!(super::mean_var(&[1.0, 2.0, 3.0, 6.0]), (3.0, 14.0 / 3.0));
    }
}
