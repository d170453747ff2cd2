//! Under the null hypothesis KS p-values are uniform on (0, 1) (exactly, for a continuous
//! statistic) or super-uniform with `P(p ≤ p_k) = p_k` at every attainable value `p_k` (for the
//! discrete two-sample statistic). Checked on repeated seeded draws at α = 1e-3, plus a power
//! check so the test can fail.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use smoluchowski_metrics::{ks_one_sample, ks_one_sample_sf, ks_two_sample};

const REPEATS: usize = 2000;
const ALPHA: f64 = 1e-3;

fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

fn draw(rng: &mut ChaCha8Rng, n: usize, shift: f64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let z: f64 = StandardNormal.sample(rng);
            shift + z
        })
        .collect()
}

fn one_sample_pvalues(seed: u64, n: usize, shift: f64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..REPEATS)
        .map(|_| ks_one_sample(&draw(&mut rng, n, shift), normal_cdf).pvalue)
        .collect()
}

/// KS p-value of the p-values against U(0, 1).
fn uniformity_p(p: &[f64]) -> f64 {
    ks_one_sample(p, |u| u.clamp(0.0, 1.0)).pvalue
}

/// For a discrete p-value, the sup of `|F_N(v) − v|` over the attained values `v` only;
/// under the null `P(p ≤ v) = v` there, so this is stochastically smaller than the continuous
/// KS statistic and `ks_one_sample_sf` of it is a conservative p-value.
fn discrete_uniformity_p(p: &[f64]) -> f64 {
    let mut s = p.to_vec();
    s.sort_unstable_by(f64::total_cmp);
    let n = s.len() as f64;
    let mut d = 0.0f64;
    let mut i = 0;
    while i < s.len() {
        let v = s[i];
        let mut j = i;
        while j < s.len() && s[j] == v {
            j += 1;
        }
        // F_N(v⁻) = i/N may also be compared with v only if v is the next atom after the
        // previous one; comparing F_N(v) (right limit) is always valid.
        d = d.max((j as f64 / n - v).abs());
        i = j;
    }
    ks_one_sample_sf(d, s.len())
}

#[test]
fn one_sample_pvalues_uniform_under_null_n50() {
    let p = one_sample_pvalues(20_261_122, 50, 0.0);
    assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
    let u = uniformity_p(&p);
    assert!(u > ALPHA, "p-values not uniform: KS p = {u:e}");
}

#[test]
fn one_sample_pvalues_uniform_under_null_n1000() {
    let p = one_sample_pvalues(7, 1000, 0.0);
    let u = uniformity_p(&p);
    assert!(u > ALPHA, "p-values not uniform: KS p = {u:e}");
}

#[test]
fn one_sample_pvalues_detect_a_shift() {
    // Power: a 0.3σ shift at n = 50 must be visible in the p-value distribution.
    let p = one_sample_pvalues(11, 50, 0.3);
    assert!(uniformity_p(&p) < 1e-10);
}

fn two_sample_pvalues(seed: u64, n1: usize, n2: usize, shift: f64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..REPEATS)
        .map(|_| {
            let a = draw(&mut rng, n1, 0.0);
            let b = draw(&mut rng, n2, shift);
            ks_two_sample(&a, &b).pvalue
        })
        .collect()
}

#[test]
fn two_sample_pvalues_uniform_under_null_equal_sizes() {
    let p = two_sample_pvalues(3, 50, 50, 0.0);
    let u = discrete_uniformity_p(&p);
    assert!(u > ALPHA, "p-values not uniform: KS p = {u:e}");
}

#[test]
fn two_sample_pvalues_uniform_under_null_unequal_sizes() {
    let p = two_sample_pvalues(5, 50, 37, 0.0);
    let u = discrete_uniformity_p(&p);
    assert!(u > ALPHA, "p-values not uniform: KS p = {u:e}");
    // Many attainable values here, so even the plain continuous check passes.
    assert!(uniformity_p(&p) > ALPHA);
}

#[test]
fn two_sample_pvalues_detect_a_shift() {
    let p = two_sample_pvalues(13, 50, 50, 0.5);
    assert!(discrete_uniformity_p(&p) < 1e-10);
}

#[test]
fn ks_is_invariant_under_permutation_and_nan_propagates() {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut a = draw(&mut rng, 200, 0.0);
    let r1 = ks_one_sample(&a, normal_cdf);
    // Shuffle (Fisher–Yates with the seeded stream).
    for i in (1..a.len()).rev() {
        let j = rng.gen_range(0..=i);
        a.swap(i, j);
    }
    let r2 = ks_one_sample(&a, normal_cdf);
    assert_eq!(r1, r2);
    a[17] = f64::NAN;
    let r3 = ks_one_sample(&a, normal_cdf);
    assert!(r3.statistic.is_nan() && r3.pvalue.is_nan());
    let r4 = ks_two_sample(&a, &[0.0, 1.0]);
    assert!(r4.statistic.is_nan() && r4.pvalue.is_nan());
    let r5 = ks_two_sample(&[], &[0.0, 1.0]);
    assert!(r5.pvalue.is_nan());
}
