//! Starting states for Langevin chain studies and the closed-form ULA bias on a Gaussian.
//!
//! ULA `x ← x + ε ∇log q(x) + √(2ε) z` on `N(μ, s² I)` is the AR(1) chain
//! `x − μ ← (1 − ε/s²)(x − μ) + √(2ε) z`, whose stationary variance per coordinate is
//! `2ε / (1 − (1 − ε/s²)²) = s² / (1 − ε/(2s²))` ([`ula_gaussian_variance_ratio`] is the ratio to
//! `s²`); MALA's Metropolis correction removes that bias.

use rand::Rng;
use smoluchowski_datasets::GaussianMixture;

/// `n` points on the unit circle at i.i.d. uniform angles `θ ∈ [−π, π)`, as rows `(cos θ, sin θ)`
/// (one `f64` draw per point, in order).
pub fn unit_circle_states<R: Rng + ?Sized>(rng: &mut R, n: usize) -> Vec<f64> {
    (0..n)
        .flat_map(|_| {
            let th: f64 = rng.gen_range(-std::f64::consts::PI..std::f64::consts::PI);
            [th.cos(), th.sin()]
        })
        .collect()
}

/// `n` copies of 2-D component means, the component drawn with the mixture's weights by
/// inversion (`k` = first index with cumulative weight `> u`, `u ~ U[0, 1)`, one draw per point).
///
/// Panics if the mixture is not 2-D.
pub fn component_mean_states<R: Rng + ?Sized>(
    mixture: &GaussianMixture,
    rng: &mut R,
    n: usize,
) -> Vec<f64> {
    assert_eq!(
        mixture.mean(0).len(),
        2,
        "component_mean_states: 2-D mixtures only"
    );
    let cum: Vec<f64> = mixture
        .weights()
        .iter()
        .scan(0.0, |a, &w| {
            *a += w;
            Some(*a)
        })
        .collect();
    (0..n)
        .flat_map(|_| {
            let u: f64 = rng.gen();
            let k = cum.partition_point(|&c| c <= u).min(cum.len() - 1);
            [mixture.mean(k)[0], mixture.mean(k)[1]]
        })
        .collect()
}

/// ULA's stationary variance on `N(μ, s²)` over `s²`: `1 / (1 − ε/(2s²))` (stable for `ε < 2s²`).
pub fn ula_gaussian_variance_ratio(eps: f64, s2: f64) -> f64 {
    1.0 / (1.0 - eps / (2.0 * s2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn initial_states_lie_where_they_should() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let x = unit_circle_states(&mut rng, 50);
        assert_eq!(x.len(), 100);
        assert!(x
            .chunks_exact(2)
            .all(|p| (p[0].hypot(p[1]) - 1.0).abs() < 1e-12));
        let m = GaussianMixture::on_circle(4, 2.0, 0.1).unwrap();
        let y = component_mean_states(&m, &mut rng, 200);
        assert!(y
            .chunks_exact(2)
            .all(|p| (p[0].hypot(p[1]) - 2.0).abs() < 1e-12));
        // All four components are drawn (weights ¼ each).
        let distinct = (0..4)
            .filter(|&k| y.chunks_exact(2).any(|p| p == m.mean(k)))
            .count();
        assert_eq!(distinct, 4);
    }

    #[test]
    fn ula_variance_ratio_matches_the_ar1_stationary_variance() {
        // AR(1) x ← ρx + √(2ε)z has variance 2ε/(1 − ρ²), ρ = 1 − ε/s².
        let (eps, s2) = (0.01f64, 0.09f64);
        let rho = 1.0 - eps / s2;
        let ar1 = 2.0 * eps / (1.0 - rho * rho) / s2;
        assert!((ula_gaussian_variance_ratio(eps, s2) - ar1).abs() < 1e-12);
    }
}
