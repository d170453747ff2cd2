//! Every sampler, driven by the EXACT score of Gaussian data, reproduces the exact law it
//! should (one-sample KS per coordinate, not rejected at α = 10⁻³), and is measurably biased
//! with too few steps.
//!
//! Data: x₀ ~ N(μ, diag(s²)) with μ = (1, −0.5), s = (0.5, 0.8). Under the kernel
//! N(m x₀, σ²) the marginal is p_t = N(m μ_j, v_j), v_j = m² s_j² + σ², and the exact score is
//! −(x − m μ)/v (`GaussianOracle`). Truth at the end of the grid is p_{t_eps} itself (no
//! final denoising) or, with Tweedie's x̂₀ = (x + σ² s)/m = μ + (x − m μ) m s²/v, the law
//! N(μ_j, m² s_j⁴ / v_j). The prior N(0, prior_std²) differs from p_T by m(T) ≈ 0.0066 (VP,
//! sub-VP) or e^{−6} ≈ 0.0025 (OU) in the mean: a KS shift far below what n = 2·10⁴ resolves.

use smoluchowski_metrics::{ks_one_sample, KsResult};
use smoluchowski_samplers::{sample, Method, SamplerConfig};
use smoluchowski_sde::{normal_cdf, ForwardSde, GaussianOracle, OuSde, SubVpSde, VpSde};

const MU: [f64; 2] = [1.0, -0.5];
const S: [f64; 2] = [0.5, 0.8];
const N: usize = 20_000;
const ALPHA: f64 = 1e-3;

const METHODS: [Method; 4] = [
    Method::EulerMaruyama,
    Method::ProbabilityFlowEuler,
    Method::ProbabilityFlowHeun,
    Method::PredictorCorrector {
        corrector_steps: 1,
        snr: 0.1,
    },
];

/// KS of coordinate `j` of the samples against N(mean_j, sd_j²), per coordinate.
fn ks_per_coordinate(samples: &[f32], mean: [f64; 2], sd: [f64; 2]) -> [KsResult; 2] {
    [0, 1].map(|j| {
        let col: Vec<f64> = samples.chunks_exact(2).map(|r| f64::from(r[j])).collect();
        ks_one_sample(&col, |x| normal_cdf((x - mean[j]) / sd[j]))
    })
}

/// Exact law of the sampler output at `t_eps`: p_{t_eps}, or Tweedie's law if denoised.
fn target_law<S: ForwardSde>(sde: &S, t_eps: f64, denoised: bool) -> ([f64; 2], [f64; 2]) {
    let (m, sig) = (sde.mean_coef(t_eps), sde.marginal_std(t_eps));
    let v = [0, 1].map(|j| m * m * S[j] * S[j] + sig * sig);
    if denoised {
        (MU, [0, 1].map(|j| (m * m * S[j].powi(4) / v[j]).sqrt()))
    } else {
        ([0, 1].map(|j| m * MU[j]), v.map(f64::sqrt))
    }
}

fn run<S: ForwardSde + Clone>(sde: &S, config: &SamplerConfig, seed: u64) -> [KsResult; 2] {
    let mut oracle = GaussianOracle::new(sde.clone(), MU.to_vec(), S.to_vec()).unwrap();
    let out = sample(sde, &mut oracle, config, N, seed, None).unwrap();
    assert_eq!(Some(out.nfe), config.nfe());
    let (mean, sd) = target_law(sde, config.t_eps, config.final_denoise);
    ks_per_coordinate(&out.samples, mean, sd)
}

fn assert_accepts<S: ForwardSde + Clone>(
    name: &str,
    sde: &S,
    method: Method,
    steps: usize,
    seed: u64,
) {
    let config = SamplerConfig::new(method, steps, 1e-3);
    let ks = run(sde, &config, seed);
    for (j, r) in ks.iter().enumerate() {
        eprintln!(
            "{name} {method:?} coord {j}: D = {:.5}, p = {:.4}",
            r.statistic, r.pvalue
        );
        assert!(
            r.pvalue > ALPHA,
            "{name} {method:?} coord {j}: KS rejects the exact law (D = {}, p = {})",
            r.statistic,
            r.pvalue
        );
    }
}

fn vp() -> VpSde {
    VpSde::song_default()
}

fn sub_vp() -> SubVpSde {
    SubVpSde::new(0.1, 20.0, 1.0).unwrap()
}

/// dx = −x dt + √2 dW on [0, 6]: stationary law N(0, 1), m(T) = e^{−6}. Near t = 0 the
/// reverse drift's slope reaches 2D/v ≈ 8 (s = 0.5), hence the finer grid.
fn ou() -> OuSde {
    OuSde::new(1.0, 1.0, 6.0).unwrap()
}

/// One test per (SDE, sampler): `name(sde constructor, method index, steps)`.
macro_rules! accepts {
    ($($test:ident: $sde:ident, $m:expr, $steps:expr;)*) => {$(
        #[test]
        fn $test() {
            assert_accepts(stringify!($sde), &$sde(), METHODS[$m], $steps, 100 + $m as u64);
        }
    )*};
}

accepts! {
    vp_euler_maruyama_reproduces_gaussian_data: vp, 0, 500;
    vp_probability_flow_euler_reproduces_gaussian_data: vp, 1, 500;
    vp_probability_flow_heun_reproduces_gaussian_data: vp, 2, 500;
    vp_predictor_corrector_reproduces_gaussian_data: vp, 3, 500;
    sub_vp_euler_maruyama_reproduces_gaussian_data: sub_vp, 0, 500;
    sub_vp_probability_flow_euler_reproduces_gaussian_data: sub_vp, 1, 500;
    sub_vp_probability_flow_heun_reproduces_gaussian_data: sub_vp, 2, 500;
    sub_vp_predictor_corrector_reproduces_gaussian_data: sub_vp, 3, 500;
    ou_euler_maruyama_reproduces_gaussian_data: ou, 0, 1200;
    ou_probability_flow_euler_reproduces_gaussian_data: ou, 1, 1200;
    ou_probability_flow_heun_reproduces_gaussian_data: ou, 2, 1200;
    ou_predictor_corrector_reproduces_gaussian_data: ou, 3, 1200;
}

#[test]
fn few_step_samplers_are_measurably_biased() {
    // With 5 steps on VP the integrators are far from the truth: KS must reject. This is
    // what makes the acceptance tests above able to fail.
    let sde = VpSde::song_default();
    for method in [Method::EulerMaruyama, Method::ProbabilityFlowEuler] {
        let ks = run(&sde, &SamplerConfig::new(method, 5, 1e-3), 7);
        let worst = ks.iter().map(|r| r.pvalue).fold(1.0, f64::min);
        eprintln!(
            "5-step {method:?}: D = {:.4} / {:.4}, min p = {worst:e}",
            ks[0].statistic, ks[1].statistic
        );
        assert!(
            worst < ALPHA,
            "{method:?} with 5 steps not rejected: {ks:?}"
        );
    }
}

#[test]
fn final_denoise_yields_tweedie_law_not_p_t_eps() {
    // At t_eps = 0.1 (VP) Tweedie's law N(μ, m² s⁴/v) is visibly narrower than p_{t_eps}
    // (sd 0.413 vs 0.573 for s = 0.5): accept the former, reject the latter.
    let sde = VpSde::song_default();
    let config = SamplerConfig::new(Method::ProbabilityFlowHeun, 200, 0.1).with_final_denoise(true);
    let mut oracle = GaussianOracle::new(sde, MU.to_vec(), S.to_vec()).unwrap();
    let out = sample(&sde, &mut oracle, &config, N, 3, None).unwrap();
    assert_eq!(out.nfe, 401);
    let (mean, sd) = target_law(&sde, 0.1, true);
    for r in ks_per_coordinate(&out.samples, mean, sd) {
        assert!(
            r.pvalue > ALPHA,
            "denoised output rejected vs Tweedie law: {r:?}"
        );
    }
    let (mean, sd) = target_law(&sde, 0.1, false);
    for r in ks_per_coordinate(&out.samples, mean, sd) {
        assert!(
            r.pvalue < ALPHA,
            "denoised output not distinguishable from p_t_eps: {r:?}"
        );
    }
}

#[test]
fn probability_flow_integrators_converge_at_their_order() {
    // For Gaussian data the probability-flow ODE is linear, so its exact flow map is known:
    // x_{t_eps} = m(t_eps) μ + (x_T − m(T) μ) · √v(t_eps) / √v(T). Starting from the recorded
    // prior draw, the worst error must halve (Euler, order 1) or quarter (Heun, order 2) when
    // the number of steps doubles; Heun must beat Euler.
    use smoluchowski_samplers::RecordSpec;
    let sde = VpSde::song_default();
    let (n, t_eps) = (500, 1e-3);
    let max_error = |method: Method, steps: usize| {
        let mut oracle = GaussianOracle::new(sde, MU.to_vec(), S.to_vec()).unwrap();
        let record = RecordSpec {
            particles: n,
            times: Some(vec![1.0]),
        };
        let config = SamplerConfig::new(method, steps, t_eps);
        let out = sample(&sde, &mut oracle, &config, n, 5, Some(record)).unwrap();
        let x_t = out.trajectories.unwrap();
        assert_eq!(x_t.times, vec![1.0]);
        let mut worst = 0.0f64;
        for (row_t, row) in x_t
            .frame(0)
            .chunks_exact(2)
            .zip(out.samples.chunks_exact(2))
        {
            for j in 0..2 {
                let exact = oracle.marginal_mean(j, t_eps)
                    + (f64::from(row_t[j]) - oracle.marginal_mean(j, 1.0))
                        * (oracle.marginal_var(j, t_eps) / oracle.marginal_var(j, 1.0)).sqrt();
                worst = worst.max((f64::from(row[j]) - exact).abs());
            }
        }
        worst
    };
    let (e1, e2) = (
        max_error(Method::ProbabilityFlowEuler, 100),
        max_error(Method::ProbabilityFlowEuler, 200),
    );
    let (h1, h2) = (
        max_error(Method::ProbabilityFlowHeun, 100),
        max_error(Method::ProbabilityFlowHeun, 200),
    );
    eprintln!("max error: Euler {e1:.3e} -> {e2:.3e} (ratio {:.2}); Heun {h1:.3e} -> {h2:.3e} (ratio {:.2})", e1 / e2, h1 / h2);
    assert!(h1 < e1 && h2 < e2);
    assert!(
        (1.7..2.3).contains(&(e1 / e2)),
        "Euler order ratio {}",
        e1 / e2
    );
    assert!(
        (3.4..4.6).contains(&(h1 / h2)),
        "Heun order ratio {}",
        h1 / h2
    );
}
