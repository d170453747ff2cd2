//! Binned comparisons of samples with exact laws and their sampling-noise floors.
//!
//! For `n` samples and bins `b` of exact mass `P_b`, the bin fractions `n_b / n` differ from `P_b`
//! by sampling noise alone; [`binomial_l1_noise`] is the expected size of that noise in the `L¹`
//! sum [`l1_distance`], so a measured `Σ_b |n_b/n − P_b|` can be read against it.

/// `Σ_b |a_b − b_b|` (pairs up to the shorter slice).
pub fn l1_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum()
}

/// Fractions `n_b / n` of the `n = x.len()` samples in `bins` equal bins of `[lo, hi)`
/// (bin `⌊(x − lo)/w⌋`, `w = (hi − lo)/bins`, clamped to the last bin). Samples outside
/// `[lo, hi)` are counted in `n` but in no bin, so the fractions sum to the mass inside.
///
/// Panics if `bins == 0`.
pub fn bin_fractions(x: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    assert!(bins > 0, "bin_fractions: bins must be positive");
    let mut counts = vec![0usize; bins];
    let w = (hi - lo) / bins as f64;
    for &v in x {
        if v >= lo && v < hi {
            let b = (((v - lo) / w) as usize).min(bins - 1);
            counts[b] += 1;
        }
    }
    counts.iter().map(|&c| c as f64 / x.len() as f64).collect()
}

/// Exact bin masses `P_b = F(e_{b+1}) − F(e_b)` of a CDF `F` over the edges `e_0 < … < e_B`.
pub fn bin_masses(edges: &[f64], cdf: impl Fn(f64) -> f64) -> Vec<f64> {
    edges.windows(2).map(|e| cdf(e[1]) - cdf(e[0])).collect()
}

/// Expected `Σ_b |n_b/n − P_b|` from sampling alone: `Σ_b √(2 P_b (1 − P_b) / (π n))`, the normal
/// approximation `E|N(0, v)| = √(2v/π)` to each binomial count (`v = P_b(1 − P_b)/n`).
pub fn binomial_l1_noise(p: &[f64], n: usize) -> f64 {
    p.iter()
        .map(|&q| (2.0 * q * (1.0 - q) / (std::f64::consts::PI * n as f64)).sqrt())
        .sum()
}

/// Asymptotic one-sample KS critical value at level `α`: `√(−ln(α/2)/2) / √n` (Kolmogorov's
/// limit law; [`crate::ks_one_sample_isf`] is the exact finite-`n` value).
pub fn ks_critical_asymptotic(alpha: f64, n: usize) -> f64 {
    (-(0.5 * alpha).ln() / 2.0).sqrt() / (n as f64).sqrt()
}

/// Mean squared distance of `d`-dimensional points (rows of `points`) to the nearest of the
/// centres (rows of `centers`), over `d·s²`: `(1/n) Σ_i min_k ‖x_i − μ_k‖² / (d s²)`.
///
/// For well-separated isotropic components `N(μ_k, s² I)` this is 1; a sampler whose
/// per-coordinate within-mode variance is `v` gives `v / s²`.
pub fn nearest_center_variance_ratio(points: &[f64], centers: &[f64], d: usize, s2: f64) -> f64 {
    let sum: f64 = points
        .chunks_exact(d)
        .map(|p| {
            centers
                .chunks_exact(d)
                .map(|m| p.iter().zip(m).map(|(a, b)| (a - b).powi(2)).sum::<f64>())
                .fold(f64::INFINITY, f64::min)
        })
        .sum();
    sum / (points.len() / d) as f64 / (d as f64 * s2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l1_of_fractions_against_masses() {
        // 4 samples, two bins of [0, 2): fractions ¼, ½ (one sample outside).
        let f = bin_fractions(&[0.5, 1.0, 1.5, 3.0], 0.0, 2.0, 2);
        assert_eq!(f, vec![0.25, 0.5]);
        let m = bin_masses(&[0.0, 1.0, 2.0], |x| x / 2.0);
        assert_eq!(m, vec![0.5, 0.5]);
        assert_eq!(l1_distance(&f, &m), 0.25);
    }

    #[test]
    fn noise_floor_matches_a_direct_binomial_value() {
        // One bin of mass ½ with n = 100: E|B/n − ½| ≈ √(2·¼/(π·100)) = 0.0399.
        assert!((binomial_l1_noise(&[0.5], 100) - 0.039_894).abs() < 1e-5);
    }

    #[test]
    fn ks_critical_value_matches_the_asymptotic_formula() {
        // √(−ln(0.005)/2) = 1.6276 (SciPy: kstwobign.isf(0.01) = 1.6276).
        assert!((ks_critical_asymptotic(0.01, 1) - 1.627_58).abs() < 1e-4);
        assert!((ks_critical_asymptotic(0.01, 100) - 0.162_758).abs() < 1e-5);
    }

    #[test]
    fn nearest_center_ratio_of_points_at_known_offsets() {
        // Points at distance 1 from the nearest of two centres, d = 2, s² = ½: ratio 1.
        let centers = [0.0, 0.0, 10.0, 0.0];
        let points = [1.0, 0.0, 10.0, 1.0, 9.0, 0.0];
        assert_eq!(
            nearest_center_variance_ratio(&points, &centers, 2, 0.5),
            1.0
        );
    }
}
