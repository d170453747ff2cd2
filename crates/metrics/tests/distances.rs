//! Distances between sample sets: SciPy/NumPy references, closed forms and properties.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use smoluchowski_metrics::{energy_distance, sliced_wasserstein, wasserstein_1d, wasserstein_p_1d};

fn weyl(n: usize, alpha: f64, off: f64) -> Vec<f64> {
    (0..n)
        .map(|k| (off + (k as f64 + 1.0) * alpha) % 1.0)
        .collect()
}
const PHI: f64 = 0.6180339887498949;
const SQ2: f64 = 0.41421356237309515;

// Reference values computed once with SciPy 1.17.1 / NumPy by:
// import numpy as np
// from scipy import stats
// from scipy.spatial.distance import cdist
// PHI = 0.6180339887498949
// SQ2 = 0.41421356237309515
// def weyl(n, alpha, off):
//     return np.array([(off + (k + 1.0) * alpha) % 1.0 for k in range(n)])
// for n, m, c in [(7, 5, 1.5), (100, 80, 2.0), (1000, 1500, 1.2)]:
//     a = weyl(n, PHI, 0.1)
//     b = weyl(m, SQ2, 0.3) ** c
//     print(f"w1 ({n}, {m}, {c!r}, {float(stats.wasserstein_distance(a, b))!r}, {float(stats.energy_distance(a, b))!r}),")
// # 2-D energy distance: a_i = (u_i, v_i), b_j = (u'_j**c, v'_j + 0.2) with u,v Weyl sequences
// for n, m, c in [(30, 20, 1.5), (200, 150, 1.2)]:
//     a = np.stack([weyl(n, PHI, 0.1), weyl(n, SQ2, 0.7)], axis=1)
//     b = np.stack([weyl(m, SQ2, 0.3) ** c, weyl(m, PHI, 0.5) + 0.2], axis=1)
//     e = 2 * cdist(a, b).mean() - cdist(a, a).mean() - cdist(b, b).mean()
//     print(f"e2 ({n}, {m}, {c!r}, {float(e)!r}),")

/// `(n, m, c, scipy.stats.wasserstein_distance(a, b), scipy.stats.energy_distance(a, b))`.
const W1: &[(usize, usize, f64, f64, f64)] = &[
    (7, 5, 1.5, 0.14446592836661867, 0.23811766494907755),
    (100, 80, 2.0, 0.16707667632493853, 0.25942647997655516),
    (1000, 1500, 1.2, 0.04486251772308956, 0.06919036713126211),
];

/// `(n, m, c, 2·mean cdist(a,b) − mean cdist(a,a) − mean cdist(b,b))` in 2-D.
const E2: &[(usize, usize, f64, f64)] = &[
    (30, 20, 1.5, 0.08940419435194324),
    (200, 150, 1.2, 0.06357144472421705),
];

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

#[test]
fn wasserstein_1d_and_energy_match_scipy() {
    for &(n, m, c, w1, e) in W1 {
        let a = weyl(n, PHI, 0.1);
        let b: Vec<f64> = weyl(m, SQ2, 0.3).iter().map(|v| v.powf(c)).collect();
        let got_w = wasserstein_1d(&a, &b);
        assert!(rel(got_w, w1) < 1e-12, "W1 n={n} m={m}: {got_w} vs {w1}");
        // Ours is the E-statistic; SciPy's 1-D energy_distance is its square root.
        let got_e = energy_distance(&a, &b, 1);
        assert!(
            rel(got_e.sqrt(), e) < 1e-11,
            "energy n={n} m={m}: √{got_e} vs {e}"
        );
    }
}

#[test]
fn energy_distance_2d_matches_numpy() {
    for &(n, m, c, e) in E2 {
        let (u, v) = (weyl(n, PHI, 0.1), weyl(n, SQ2, 0.7));
        let (u2, v2) = (weyl(m, SQ2, 0.3), weyl(m, PHI, 0.5));
        let a: Vec<f64> = u.iter().zip(&v).flat_map(|(x, y)| [*x, *y]).collect();
        let b: Vec<f64> = u2
            .iter()
            .zip(&v2)
            .flat_map(|(x, y)| [x.powf(c), y + 0.2])
            .collect();
        let got = energy_distance(&a, &b, 2);
        assert!(rel(got, e) < 1e-12, "n={n} m={m}: {got} vs {e}");
        assert!(rel(energy_distance(&b, &a, 2), got) < 1e-12);
    }
}

fn gaussian(seed: u64, n: usize, dim: usize, mean0: f64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let g = Normal::new(0.0, 1.0).unwrap();
    (0..n * dim)
        .map(|k| g.sample(&mut rng) + if k % dim == 0 { mean0 } else { 0.0 })
        .collect()
}

#[test]
fn distances_vanish_on_identical_sets() {
    let a = gaussian(1, 500, 2, 0.0);
    assert_eq!(sliced_wasserstein(&a, &a, 2, 50, 9), 0.0);
    assert!(energy_distance(&a, &a, 2).abs() < 1e-13);
    let x = gaussian(2, 500, 1, 0.0);
    assert_eq!(wasserstein_1d(&x, &x), 0.0);
    assert!(energy_distance(&x, &x, 1) < 1e-13);
    // Same empirical law, different order and multiplicity: still zero.
    let mut y = x.clone();
    y.reverse();
    y.extend_from_slice(&x);
    assert_eq!(wasserstein_p_1d(&x, &y, 2.0), 0.0);
    assert!(energy_distance(&x, &y, 1) < 1e-12);
}

#[test]
fn w2_between_shifted_gaussians_is_the_shift() {
    // W₂(N(0,1), N(μ,1)) = |μ|. Empirically, with independent samples of n = 10⁵,
    // W₂² = μ² + 2μ(ȳ' − x̄) + O(log n / n), and sd(ȳ' − x̄) = √(2/n) ≈ 0.0045, so |W₂ − μ|
    // has sd ≈ 0.0045: tolerance 0.03 is > 6σ.
    let n = 100_000;
    let x = gaussian(10, n, 1, 0.0);
    for (seed, mu) in [(11u64, 0.5), (12, 1.0), (13, 3.0)] {
        let y = gaussian(seed, n, 1, mu);
        let w2 = wasserstein_p_1d(&x, &y, 2.0);
        assert!((w2 - mu).abs() < 0.03, "μ={mu}: W₂={w2}");
        let w1 = wasserstein_1d(&x, &y);
        assert!((w1 - mu).abs() < 0.03, "μ={mu}: W₁={w1}");
        // In 1-D sliced W₂ is the 1-D W₂ (directions ±1).
        let sw = sliced_wasserstein(&x, &y, 1, 3, 0);
        assert!((sw - w2).abs() < 1e-12);
    }
    // Exact on quantile-matched samples: b = a + μ gives W₂ = |μ| to rounding.
    let a: Vec<f64> = (0..1000)
        .map(|i| ((i as f64 + 0.5) / 1000.0).ln())
        .collect();
    let b: Vec<f64> = a.iter().map(|v| v - 0.7).collect();
    assert!((wasserstein_p_1d(&a, &b, 2.0) - 0.7).abs() < 1e-12);
}

#[test]
fn sliced_w2_of_shifted_2d_gaussians() {
    // b = a + μe₁ (a shifted copy of a N(0, I₂) cloud): along θ the projections differ by
    // exactly μθ₁, so W₂(θ·a, θ·b) = |μθ₁| and SW₂² = μ² · mean_k θ_{k,1}², whose expectation
    // is μ²/2. The only noise is the Monte Carlo over K = 1000 directions: sd of the mean of
    // cos²φ is √(1/8)/√K ≈ 0.0112, i.e. 2.2% relative. Tolerance 12% (> 5σ).
    let (n, mu) = (1000, 2.0);
    let a = gaussian(21, n, 2, 0.0);
    let b: Vec<f64> = a.chunks_exact(2).flat_map(|p| [p[0] + mu, p[1]]).collect();
    let sw = sliced_wasserstein(&a, &b, 2, 1000, 7);
    assert!((sw * sw / (mu * mu / 2.0) - 1.0).abs() < 0.12, "SW₂ = {sw}");
    // Independent samples, b ~ N(μe₁, I₂): close to the same value.
    let c = gaussian(22, 4000, 2, mu);
    let sw_ind = sliced_wasserstein(&a, &c, 2, 1000, 7);
    assert!(
        (sw_ind - sw).abs() < 0.1,
        "independent {sw_ind} vs shifted copy {sw}"
    );
    // Deterministic: same seed, same value; different seed, different value.
    assert_eq!(sw, sliced_wasserstein(&a, &b, 2, 1000, 7));
    assert_ne!(sw, sliced_wasserstein(&a, &b, 2, 1000, 8));
}

#[test]
fn distances_are_symmetric_and_grow_with_shift() {
    let a = gaussian(31, 2000, 2, 0.0);
    let mut prev = (0.0, 0.0, 0.0);
    for (k, shift) in [0.25, 0.5, 1.0, 2.0].into_iter().enumerate() {
        let b = gaussian(32 + k as u64, 1500, 2, shift);
        let sw = sliced_wasserstein(&a, &b, 2, 200, 5);
        let e = energy_distance(&a, &b, 2);
        assert!((sw - sliced_wasserstein(&b, &a, 2, 200, 5)).abs() < 1e-12);
        assert!((e - energy_distance(&b, &a, 2)).abs() < 1e-12);
        let xa: Vec<f64> = a.iter().step_by(2).copied().collect();
        let xb: Vec<f64> = b.iter().step_by(2).copied().collect();
        let w1 = wasserstein_1d(&xa, &xb);
        assert!((w1 - wasserstein_1d(&xb, &xa)).abs() < 1e-12);
        assert!(
            sw > prev.0 && e > prev.1 && w1 > prev.2,
            "shift {shift}: {sw} {e} {w1}"
        );
        prev = (sw, e, w1);
    }
}
