//! Langevin MCMC against exact laws: ULA's closed-form bias, MALA's exactness, annealed
//! Langevin from an exact score, determinism for any thread count.
//!
//! Every sample set is the final state of many independent chains (so the KS test's i.i.d.
//! assumption holds); all assertions use α = 10⁻³ or ±5 standard errors.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use smoluchowski_datasets::{GaussianMixture, Ring2d};
use smoluchowski_metrics::ks_one_sample;
use smoluchowski_samplers::langevin::{
    annealed_langevin, langevin_chains, AnnealedLangevinConfig, LangevinConfig, LangevinMethod,
    MixtureLogDensity,
};
use smoluchowski_sde::{normal_cdf, ForwardSde, MixtureOracle, VpSde};

const ALPHA: f64 = 1e-3;

fn standard_normal() -> MixtureLogDensity {
    let g = GaussianMixture::new(vec![vec![0.0]], vec![vec![1.0]], vec![1.0]).unwrap();
    MixtureLogDensity::new(&g)
}

fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    (
        m,
        x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0),
    )
}

/// ULA on N(0, 1) is the AR(1) chain x ← (1 − ε) x + √(2ε) z, whose stationary law is
/// N(0, 2ε / (1 − (1 − ε)²)) = N(0, 1 / (1 − ε/2)) exactly. With ε = 0.5: variance 4/3.
#[test]
fn ula_on_standard_normal_has_variance_one_over_one_minus_half_step() {
    let n = 20_000;
    let eps = 0.5;
    let cfg = LangevinConfig::final_state(LangevinMethod::Ula, eps, 60); // 0.5⁶⁰: converged
    let out = langevin_chains(&standard_normal(), &vec![0.0; n], &cfg, 1).unwrap();
    assert_eq!(out.acceptance_rate(), 1.0);
    let exact_var = 1.0 / (1.0 - eps / 2.0);
    let (m, v) = mean_var(&out.samples);
    // Standard errors: sd/√n for the mean, var·√(2/n) for the variance.
    assert!(m.abs() <= 5.0 * (exact_var / n as f64).sqrt(), "mean {m}");
    let se_v = exact_var * (2.0 / n as f64).sqrt();
    assert!(
        (v - exact_var).abs() <= 5.0 * se_v,
        "var {v} vs {exact_var}"
    );
    assert!(
        (v - 1.0).abs() > 5.0 * se_v,
        "ULA bias not visible: var {v}"
    );
    let sd = exact_var.sqrt();
    let ks_exact = ks_one_sample(&out.samples, |x| normal_cdf(x / sd));
    assert!(ks_exact.pvalue >= ALPHA, "{ks_exact:?}");
    let ks_target = ks_one_sample(&out.samples, normal_cdf);
    assert!(
        ks_target.pvalue < ALPHA,
        "ULA unexpectedly unbiased: {ks_target:?}"
    );
}

/// MALA with the same large step is exact: N(0, 1), variance 1.
#[test]
fn mala_with_the_same_large_step_is_unbiased() {
    let n = 20_000;
    let cfg = LangevinConfig::final_state(LangevinMethod::Mala, 0.5, 200);
    let out = langevin_chains(&standard_normal(), &vec![0.0; n], &cfg, 2).unwrap();
    let acc = out.acceptance_rate();
    assert!(acc > 0.5 && acc < 1.0, "acceptance {acc}");
    let (_, v) = mean_var(&out.samples);
    assert!((v - 1.0).abs() <= 5.0 * (2.0 / n as f64).sqrt(), "var {v}");
    let ks = ks_one_sample(&out.samples, normal_cdf);
    assert!(ks.pvalue >= ALPHA, "{ks:?}");
}

/// MALA on N(1, 2²) from a far start x₀ = −6, thinned: 8 states per chain, 25 steps apart
/// (lag-25 autocorrelation is negligible at this step), 2500 chains.
#[test]
fn mala_on_a_shifted_gaussian_from_a_far_start() {
    let g = GaussianMixture::new(vec![vec![1.0]], vec![vec![2.0]], vec![1.0]).unwrap();
    let q = MixtureLogDensity::new(&g);
    let cfg = LangevinConfig {
        method: LangevinMethod::Mala,
        step: 2.0,
        burn_in: 200,
        samples_per_chain: 8,
        thin: 25,
    };
    let out = langevin_chains(&q, &vec![-6.0; 2500], &cfg, 3).unwrap();
    assert_eq!(out.samples.len(), 2500 * 8);
    assert_eq!(out.proposals, 2500 * (200 + 7 * 25));
    let ks = ks_one_sample(&out.samples, |x| normal_cdf((x - 1.0) / 2.0));
    assert!(ks.pvalue >= ALPHA, "{ks:?}");
}

/// Bimodal 0.3 N(−2, 0.5²) + 0.7 N(1.5, 0.3²): no Langevin chain crosses between the modes in
/// reasonable time, so chains start at a component mean drawn with the mixture weights; the
/// within-mode shape must then relax to the truth. ε = 0.05: MALA is exact; ULA's variance in
/// the narrow mode is inflated by ≈ 1/(1 − ε/(2 · 0.09)) ≈ 1.4, which KS sees.
#[test]
fn mala_samples_the_bimodal_mixture_and_ula_with_the_same_step_does_not() {
    let mix = GaussianMixture::bimodal_1d();
    let q = MixtureLogDensity::new(&mix);
    let n = 20_000;
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let init: Vec<f64> = (0..n)
        .map(|_| {
            let u: f64 = rand::Rng::gen(&mut rng);
            if u < 0.3 {
                -2.0
            } else {
                1.5
            }
        })
        .collect();
    let cdf = |x: f64| mix.marginal_cdf(0, x);
    let mala = langevin_chains(
        &q,
        &init,
        &LangevinConfig::final_state(LangevinMethod::Mala, 0.05, 300),
        5,
    )
    .unwrap();
    let ks = ks_one_sample(&mala.samples, cdf);
    assert!(ks.pvalue >= ALPHA, "MALA {ks:?}");
    let ula = langevin_chains(
        &q,
        &init,
        &LangevinConfig::final_state(LangevinMethod::Ula, 0.05, 300),
        5,
    )
    .unwrap();
    let ks = ks_one_sample(&ula.samples, cdf);
    assert!(ks.pvalue < ALPHA, "ULA {ks:?}");
}

/// MALA on ring2d from the unit circle at uniform angles (wrong radius law, wrong angle law):
/// after Langevin time 0.5 the radius and angle pass KS against the exact marginals.
#[test]
fn mala_samples_ring2d_radius_and_angle() {
    let ring = Ring2d::default();
    let n = 10_000;
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let mut init = Vec::with_capacity(2 * n);
    for _ in 0..n {
        let th: f64 = rand::Rng::gen_range(&mut rng, -std::f64::consts::PI..std::f64::consts::PI);
        init.extend_from_slice(&[th.cos(), th.sin()]);
    }
    let cfg = LangevinConfig::final_state(LangevinMethod::Mala, 2e-3, 250);
    let out = langevin_chains(&ring, &init, &cfg, 7).unwrap();
    let r: Vec<f64> = out
        .samples
        .chunks_exact(2)
        .map(|p| p[0].hypot(p[1]))
        .collect();
    let th: Vec<f64> = out
        .samples
        .chunks_exact(2)
        .map(|p| p[1].atan2(p[0]))
        .collect();
    let ks_r = ks_one_sample(&r, |x| ring.radial_cdf(x));
    let ks_t = ks_one_sample(&th, |x| ring.angular_cdf(x));
    assert!(ks_r.pvalue >= ALPHA, "radius {ks_r:?}");
    assert!(ks_t.pvalue >= ALPHA, "angle {ks_t:?}");
    assert!(out.acceptance_rate() > 0.5, "{}", out.acceptance_rate());
}

#[test]
fn chains_are_identical_for_any_thread_count_and_depend_on_the_seed() {
    let q = MixtureLogDensity::new(&GaussianMixture::eight_gaussians());
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let init: Vec<f64> = (0..2 * 1000)
        .map(|_| {
            let z: f64 = StandardNormal.sample(&mut rng);
            2.0 * z
        })
        .collect();
    let cfg = LangevinConfig {
        method: LangevinMethod::Mala,
        step: 1e-3,
        burn_in: 5,
        samples_per_chain: 3,
        thin: 2,
    };
    let run = |threads: usize, seed: u64| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| langevin_chains(&q, &init, &cfg, seed).unwrap())
    };
    let a = run(1, 9);
    assert_eq!(a, run(3, 9));
    assert_ne!(a.samples, run(1, 10).samples);
}

#[test]
fn bad_parameters_are_named() {
    let ring = Ring2d::default();
    let cfg = LangevinConfig::final_state(LangevinMethod::Mala, 1e-3, 10);
    let e = langevin_chains(&ring, &[1.0, 0.0, 0.0, 0.0], &cfg, 0).unwrap_err();
    assert_eq!(e.path(), "init[1]", "{e}");
    let bad = LangevinConfig { step: -1.0, ..cfg };
    assert_eq!(
        langevin_chains(&ring, &[1.0, 0.0], &bad, 0)
            .unwrap_err()
            .path(),
        "step"
    );
    assert_eq!(
        langevin_chains(&ring, &[1.0], &cfg, 0).unwrap_err().path(),
        "init.len()"
    );
    let zero = LangevinConfig { thin: 0, ..cfg };
    assert_eq!(
        langevin_chains(&ring, &[1.0, 0.0], &zero, 0)
            .unwrap_err()
            .path(),
        "thin"
    );
}

/// Annealed Langevin with the exact score of the bimodal mixture under the VP SDE, from
/// N(0, 1) prior draws, 12 levels geometric in σ from t = 1 down to σ_L = 0.1: the output
/// matches the exact marginal p_{t_L} (ULA bias at α_L = ε = 5e-4 is ≈ 0.3 % in the narrow
/// mode's variance, invisible at n = 4000).
#[test]
fn annealed_langevin_with_the_exact_score_reaches_the_last_level() {
    let sde = VpSde::song_default();
    let mut oracle = MixtureOracle::new(sde, GaussianMixture::bimodal_1d());
    // t with σ(t) = 0.1: β_min t + ½(β_max − β_min) t² = −ln(1 − 0.01).
    let cfg = AnnealedLangevinConfig::geometric(&sde, 1.0, 0.0494, 12, 5e-4, 150).unwrap();
    let t_last = *cfg.times.last().unwrap();
    let n = 4000;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut x: Vec<f32> = (0..n)
        .map(|_| StandardNormal.sample(&mut rng))
        .map(|z: f64| z as f32)
        .collect();
    let nfe = annealed_langevin(&sde, &mut oracle, &mut x, &cfg, 12).unwrap();
    assert_eq!(nfe, 12 * 150);
    let xs: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let ks = ks_one_sample(&xs, |v| oracle.marginal_cdf(0, t_last, v));
    assert!(
        ks.pvalue >= ALPHA,
        "σ_L = {}: {ks:?}",
        sde.marginal_std(t_last)
    );
}
