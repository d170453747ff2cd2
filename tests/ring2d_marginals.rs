//! Property tests: sampled `ring2d` radii and angles against the exact marginals.
//!
//! Every proptest runs `CASES = 16` cases from a fixed proptest seed, each with its own ChaCha8
//! stream; a case fails only at `p < P_REJECT = 1e-3 / 16`, so the family-wise false-rejection
//! probability is ≤ 1e-3.

use std::f64::consts::PI;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smoluchowski::datasets::{Dataset, Ring2d};
use smoluchowski::metrics::{ks_one_sample, ks_two_sample};

const CASES: u32 = 16;
const P_REJECT: f64 = 1e-3 / CASES as f64;
const N: usize = 20_000;

fn config(seed: u64) -> Config {
    Config {
        cases: CASES,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_iters: 0,
        ..Config::default()
    }
}

fn polar(xs: &[f64]) -> (Vec<f64>, Vec<f64>) {
    xs.chunks_exact(2)
        .map(|p| (p[0].hypot(p[1]), p[1].atan2(p[0])))
        .unzip()
}

proptest! {
    #![proptest_config(config(0x0a11_0001))]
    /// Radius ~ Gamma(k, rate k) and angle ~ p(θ) = 1/(8 max(cos², sin²)), for scales
    /// log-uniform in [1, 1000].
    #[test]
    fn ring2d_radius_and_angle_match_exact_marginals(
        log_scale in 0.0f64..(1000f64).ln(),
        seed in any::<u64>(),
    ) {
        let ring = Ring2d::new(log_scale.exp()).unwrap();
        let xs = ring.sample(&mut ChaCha8Rng::seed_from_u64(seed), N);
        let (r, th) = polar(&xs);
        let ks_r = ks_one_sample(&r, |v| ring.radial_cdf(v));
        prop_assert!(ks_r.pvalue >= P_REJECT, "k={}: radius {ks_r:?}", ring.scale());
        let ks_t = ks_one_sample(&th, |v| ring.angular_cdf(v));
        prop_assert!(ks_t.pvalue >= P_REJECT, "k={}: angle {ks_t:?}", ring.scale());
    }
}

/// At the default scale with `n = 10⁵`: the marginals pass, radius and angle are independent
/// (radii of points near the diagonals vs near the axes have the same law), and the tests
/// have power: a uniform angle, the notes' folded `arctan(y/x)`, and a 10 % wrong Gamma scale
/// are all rejected.
#[test]
fn ring2d_default_marginals_independence_and_power() {
    let ring = Ring2d::default();
    let n = 100_000;
    let xs = ring.sample(&mut ChaCha8Rng::seed_from_u64(20_260_101), n);
    let (r, th) = polar(&xs);

    let ks_r = ks_one_sample(&r, |v| ring.radial_cdf(v));
    let ks_t = ks_one_sample(&th, |v| ring.angular_cdf(v));
    assert!(ks_r.pvalue > 1e-3, "radius {ks_r:?}");
    assert!(ks_t.pvalue > 1e-3, "angle {ks_t:?}");

    // Independence of r and θ: radii in diagonal sectors vs axis sectors.
    let near_diag = |t: f64| ((t.rem_euclid(PI / 2.0)) - PI / 4.0).abs() < PI / 8.0;
    let (mut rd, mut ra) = (Vec::new(), Vec::new());
    for (&ri, &ti) in r.iter().zip(&th) {
        if near_diag(ti) {
            rd.push(ri);
        } else {
            ra.push(ri);
        }
    }
    let ks_ind = ks_two_sample(&rd, &ra);
    assert!(ks_ind.pvalue > 1e-3, "r depends on θ? {ks_ind:?}");
    // The sector split itself follows p(θ): the mass of |θ mod π/2 − π/4| < π/8 is
    // 4·[F(3π/8) − F(π/8)] (4-sigma binomial bound).
    let p_diag = 4.0 * (ring.angular_cdf(3.0 * PI / 8.0) - ring.angular_cdf(PI / 8.0));
    let frac = rd.len() as f64 / n as f64;
    let se = (p_diag * (1.0 - p_diag) / n as f64).sqrt();
    assert!(
        (frac - p_diag).abs() < 4.0 * se,
        "diagonal fraction {frac} vs {p_diag}"
    );

    // Power.
    let uniform = ks_one_sample(&th, |v| ((v + PI) / (2.0 * PI)).clamp(0.0, 1.0));
    assert!(uniform.pvalue < 1e-6, "uniform angle accepted: {uniform:?}");
    let folded: Vec<f64> = xs.chunks_exact(2).map(|p| (p[1] / p[0]).atan()).collect();
    let ks_fold = ks_one_sample(&folded, |v| ring.angular_cdf(v));
    assert!(
        ks_fold.pvalue < 1e-6,
        "folded arctan(y/x) accepted: {ks_fold:?}"
    );
    // Gamma(250, rate 250) has the same mean but a 10.6 % narrower spread.
    let wrong = Ring2d::new(250.0).unwrap();
    let ks_wrong = ks_one_sample(&r, |v| wrong.radial_cdf(v));
    assert!(ks_wrong.pvalue < 1e-6, "Gamma(250) accepted: {ks_wrong:?}");
    println!(
        "n = 10⁵: radius D={:.4} p={:.3}; angle D={:.4} p={:.3}; r⊥θ p={:.3}; \
         uniform-angle D={:.3}; folded D={:.3}; Gamma(250) D={:.4} p={:.1e}",
        ks_r.statistic,
        ks_r.pvalue,
        ks_t.statistic,
        ks_t.pvalue,
        ks_ind.pvalue,
        uniform.statistic,
        ks_fold.statistic,
        ks_wrong.statistic,
        ks_wrong.pvalue
    );
}
