//! `GaussianMixture`: density and CDF against SciPy, normalisation, sampling (KS), presets,
//! parameter validation.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smoluchowski_datasets::{Dataset, DatasetError, GaussianMixture};
use smoluchowski_metrics::ks_one_sample;

/// SciPy reference, `0.3 N(−2, 0.5²) + 0.7 N(1.5, 0.3²)`:
/// ```python
/// from scipy.stats import norm; import numpy as np
/// for x in [-3.0, -2.0, -0.5, 1.0, 1.5, 2.5]:
///     print(x, 0.3*norm.cdf(x,-2,0.5) + 0.7*norm.cdf(x,1.5,0.3),
///           np.log(0.3*norm.pdf(x,-2,0.5) + 0.7*norm.pdf(x,1.5,0.3)))
/// ```
const BIMODAL_REF: [(f64, f64, f64); 6] = [
    (-3.0, 0.006825039584453759, -3.429764156970663),
    (-2.0, 0.15, -1.4297641569706634),
    (-0.5, 0.2995950305996697, -5.929764078778685),
    (1.0, 0.33345324629499395, -1.4605295460005399),
    (1.5, 0.649999999999616, -0.0716406728115812),
    (2.5, 0.9996996577667623, -5.627196228373025),
];

#[test]
fn bimodal_cdf_and_density_match_scipy() {
    let mix = GaussianMixture::bimodal_1d();
    assert_eq!(mix.dim(), 1);
    assert_eq!(mix.weights(), &[0.3, 0.7]);
    for (x, cdf, logp) in BIMODAL_REF {
        assert!((mix.marginal_cdf(0, x) - cdf).abs() < 1e-14, "cdf at {x}");
        assert!((mix.log_density(&[x]) - logp).abs() < 1e-12, "log p at {x}");
    }
}

/// ```python
/// from scipy.stats import multivariate_normal as mvn; import numpy as np
/// c = [(2*np.cos(2*np.pi*k/8), 2*np.sin(2*np.pi*k/8)) for k in range(8)]
/// np.log(sum(mvn.pdf([1.9, 0.3], mean=m, cov=0.05**2) for m in c) / 8)
/// ```
#[test]
fn eight_gaussians_preset_and_density() {
    let mix = GaussianMixture::eight_gaussians();
    assert_eq!((mix.dim(), mix.n_components()), (2, 8));
    for k in 0..8 {
        let m = mix.mean(k);
        assert!((m[0].hypot(m[1]) - 2.0).abs() < 1e-15);
        assert_eq!(mix.std(k), &[0.05, 0.05]);
    }
    assert!((mix.log_density(&[1.9, 0.3]) - -17.9258540609812).abs() < 1e-10);
    // Far from every component: finite (log-sum-exp), not −∞.
    let far = mix.log_density(&[1e3, -1e3]);
    assert!(far.is_finite() && far < -1e8);
    // ∫ p = 1 on a grid covering the circle (midpoint rule, h = 0.01 ≪ std).
    let h = 0.01;
    let mut total = 0.0;
    for i in 0..560 {
        for j in 0..560 {
            let x = [-2.8 + (i as f64 + 0.5) * h, -2.8 + (j as f64 + 0.5) * h];
            total += mix.log_density(&x).exp() * h * h;
        }
    }
    assert!((total - 1.0).abs() < 1e-6, "∫p = {total}");
}

/// Samples pass KS against each coordinate's marginal CDF (α = 1e-4, n = 20 000); the same
/// test rejects a mixture with the weights swapped. Same seed ⇒ same samples.
#[test]
fn samples_follow_the_marginal_cdfs() {
    let n = 20_000;
    let bimodal = GaussianMixture::bimodal_1d();
    let x = bimodal.sample(&mut ChaCha8Rng::seed_from_u64(5), n);
    assert_eq!(x, bimodal.sample(&mut ChaCha8Rng::seed_from_u64(5), n));
    let ks = ks_one_sample(&x, |v| bimodal.marginal_cdf(0, v));
    assert!(ks.pvalue > 1e-4, "{ks:?}");
    let swapped = GaussianMixture::new(
        vec![vec![-2.0], vec![1.5]],
        vec![vec![0.5], vec![0.3]],
        vec![0.7, 0.3],
    )
    .unwrap();
    assert!(ks_one_sample(&x, |v| swapped.marginal_cdf(0, v)).pvalue < 1e-6);

    let eight = GaussianMixture::eight_gaussians();
    let x = eight.sample(&mut ChaCha8Rng::seed_from_u64(6), n);
    for j in 0..2 {
        let col: Vec<f64> = x.iter().skip(j).step_by(2).cloned().collect();
        let ks = ks_one_sample(&col, |v| eight.marginal_cdf(j, v));
        assert!(ks.pvalue > 1e-4, "coord {j}: {ks:?}");
    }
    // Component frequencies of an unequal mixture (weights 1:3, normalised to 0.25/0.75).
    let uneq = GaussianMixture::new(
        vec![vec![-10.0], vec![10.0]],
        vec![vec![1.0], vec![1.0]],
        vec![1.0, 3.0],
    )
    .unwrap();
    assert_eq!(uneq.weights(), &[0.25, 0.75]);
    let x = uneq.sample(&mut ChaCha8Rng::seed_from_u64(7), n);
    let frac = x.iter().filter(|&&v| v < 0.0).count() as f64 / n as f64;
    // Binomial sd = √(0.25·0.75/n) ≈ 0.0031; 5 sd.
    assert!((frac - 0.25).abs() < 0.0155, "fraction {frac}");
}

#[test]
fn constructor_rejects_bad_parameters() {
    let msg = |r: Result<GaussianMixture, DatasetError>| r.unwrap_err().to_string();
    let m = || vec![vec![0.0, 1.0], vec![2.0, 3.0]];
    let s = || vec![vec![1.0, 1.0], vec![1.0, 1.0]];
    assert_eq!(
        msg(GaussianMixture::new(
            m(),
            vec![vec![1.0, 1.0], vec![1.0, 0.0]],
            vec![1.0, 1.0]
        )),
        "stds[1][1] must be > 0 (got 0)"
    );
    assert_eq!(
        msg(GaussianMixture::new(m(), s(), vec![1.0, -0.5])),
        "weights[1] must be ≥ 0 (got -0.5)"
    );
    assert_eq!(
        msg(GaussianMixture::new(m(), s(), vec![0.0, 0.0])),
        "sum of weights must be > 0 and finite (got 0)"
    );
    assert_eq!(
        msg(GaussianMixture::new(
            vec![vec![0.0, f64::NAN], vec![0.0, 0.0]],
            s(),
            vec![1.0, 1.0]
        )),
        "means[0][1] must be finite (got NaN)"
    );
    assert_eq!(
        msg(GaussianMixture::new(m(), s(), vec![1.0])),
        "weights (length) must be the length of means = 2 (got 1)"
    );
    assert_eq!(
        msg(GaussianMixture::new(vec![], vec![], vec![])),
        "means must be non-empty (got empty)"
    );
    assert!(GaussianMixture::new(vec![vec![0.0], vec![0.0, 1.0]], s(), vec![1.0, 1.0]).is_err());
    assert!(GaussianMixture::on_circle(0, 1.0, 0.1).is_err());
    assert!(GaussianMixture::on_circle(3, 1.0, -0.1).is_err());
}
