//! The few-step samplers (DDIM η = 0 and η = 1, EDM Heun, DPM-Solver++(2M), adaptive
//! Dormand–Prince) driven by the EXACT score of Gaussian data: they reproduce the exact law
//! (one-sample KS per coordinate not rejected at α = 10⁻³) at NFE ≤ 100 (DDIM: 200), they are
//! measurably wrong at NFE ≈ 5–10, and the deterministic ones converge to the exact flow map at
//! their order.
//!
//! Data x₀ ~ N(μ, diag(s²)), μ = (1, −0.5), s = (0.5, 0.8): p_t = N(m μ_j, v_j),
//! v_j = m² s_j² + σ² (see gaussian_truth.rs). For this data the probability-flow ODE is linear
//! and its flow map from T to t_eps is x_{t_eps} = m(t_eps) μ + (x_T − m(T) μ) √(v(t_eps)/v(T)).

use smoluchowski_datasets::GaussianMixture;
use smoluchowski_metrics::{ks_one_sample, KsResult};
use smoluchowski_samplers::{sample, GridSpacing, Method, RecordSpec, SamplerConfig};
use smoluchowski_sde::{ForwardSde, GaussianOracle, MixtureOracle, OuSde, Score, SubVpSde, VpSde};

const MU: [f64; 2] = [1.0, -0.5];
const S: [f64; 2] = [0.5, 0.8];
const N: usize = 20_000;
const ALPHA: f64 = 1e-3;
const T_EPS: f64 = 1e-3;
const KARRAS: GridSpacing = GridSpacing::Karras { rho: 7.0 };

fn oracle<S: ForwardSde>(sde: S) -> GaussianOracle<S> {
    GaussianOracle::new(sde, MU.to_vec(), S.to_vec()).unwrap()
}

/// KS of each coordinate of `out` against p_{t_eps}.
fn ks_vs_truth<S: ForwardSde + Clone>(sde: &S, samples: &[f32]) -> [KsResult; 2] {
    let o = oracle(sde.clone());
    [0, 1].map(|j| {
        let col: Vec<f64> = samples.chunks_exact(2).map(|r| f64::from(r[j])).collect();
        ks_one_sample(&col, |x| o.marginal_cdf(j, T_EPS, x))
    })
}

/// Runs `method` on `grid` with `steps` steps; returns (KS per coordinate, NFE).
fn run<S: ForwardSde + Clone>(
    sde: &S,
    method: Method,
    grid: GridSpacing,
    steps: usize,
    seed: u64,
) -> ([KsResult; 2], usize) {
    let config = SamplerConfig::new(method, steps, T_EPS).with_grid(grid);
    let out = sample(sde, &mut oracle(sde.clone()), &config, N, seed, None).unwrap();
    if let Some(nfe) = config.nfe() {
        assert_eq!(out.nfe, nfe, "{method:?}");
    }
    (ks_vs_truth(sde, &out.samples), out.nfe)
}

fn assert_accepts<S: ForwardSde + Clone>(
    sde: &S,
    method: Method,
    grid: GridSpacing,
    steps: usize,
    seed: u64,
) -> usize {
    let (ks, nfe) = run(sde, method, grid, steps, seed);
    for (j, r) in ks.iter().enumerate() {
        eprintln!(
            "{method:?} {grid:?} NFE {nfe} coord {j}: D = {:.5}, p = {:.4}",
            r.statistic, r.pvalue
        );
        assert!(
            r.pvalue > ALPHA,
            "{method:?} on {grid:?}, NFE {nfe}, coord {j}: KS rejects the exact law: {r:?}"
        );
    }
    nfe
}

fn assert_rejects<S: ForwardSde + Clone>(
    sde: &S,
    method: Method,
    grid: GridSpacing,
    steps: usize,
    seed: u64,
) -> f64 {
    let (ks, nfe) = run(sde, method, grid, steps, seed);
    let worst = ks.iter().map(|r| r.pvalue).fold(1.0, f64::min);
    let d = ks.iter().map(|r| r.statistic).fold(0.0, f64::max);
    eprintln!("{method:?} {grid:?} NFE {nfe}: max D = {d:.5}, min p = {worst:e}");
    assert!(
        worst < ALPHA,
        "{method:?} on {grid:?} with NFE {nfe} not rejected: {ks:?}"
    );
    d
}

#[test]
fn ddim_deterministic_reproduces_gaussian_data_and_is_biased_with_few_steps() {
    let sde = VpSde::song_default();
    let ddim = Method::Ddim { eta: 0.0 };
    let d5 = assert_rejects(&sde, ddim, GridSpacing::Quadratic, 5, 21);
    let d20 = assert_rejects(&sde, ddim, GridSpacing::Quadratic, 20, 21);
    assert!(d20 < 0.5 * d5, "D {d5} -> {d20}");
    assert_accepts(&sde, ddim, GridSpacing::Quadratic, 200, 21);
}

#[test]
fn ddim_stochastic_reproduces_gaussian_data_and_is_biased_with_few_steps() {
    let sde = VpSde::song_default();
    let ddpm = Method::Ddim { eta: 1.0 };
    let d10 = assert_rejects(&sde, ddpm, GridSpacing::Quadratic, 10, 22);
    let d50 = assert_rejects(&sde, ddpm, GridSpacing::Quadratic, 50, 22);
    assert!(d50 < 0.5 * d10, "D {d10} -> {d50}");
    assert_accepts(&sde, ddpm, GridSpacing::Quadratic, 200, 22);
    // Half-way stochasticity on sub-VP.
    assert_accepts(
        &SubVpSde::new(0.1, 20.0, 1.0).unwrap(),
        Method::Ddim { eta: 0.5 },
        GridSpacing::Quadratic,
        200,
        23,
    );
}

#[test]
fn edm_heun_on_the_karras_grid_reproduces_gaussian_data() {
    let sde = VpSde::song_default();
    let d9 = assert_rejects(&sde, Method::EdmHeun, KARRAS, 5, 24);
    let d19 = assert_rejects(&sde, Method::EdmHeun, KARRAS, 10, 24);
    assert!(d19 < 0.5 * d9, "D {d9} -> {d19}");
    assert_eq!(assert_accepts(&sde, Method::EdmHeun, KARRAS, 50, 24), 99);
    // Any affine SDE: OU on [0, 6].
    let ou = OuSde::new(1.0, 1.0, 6.0).unwrap();
    assert_accepts(&ou, Method::EdmHeun, KARRAS, 50, 25);
}

#[test]
fn dpm_solver_pp_2m_reproduces_gaussian_data_at_fifty_evaluations() {
    let sde = VpSde::song_default();
    assert_rejects(&sde, Method::DpmSolverPp2M, GridSpacing::LogSnr, 5, 26);
    assert_accepts(&sde, Method::DpmSolverPp2M, GridSpacing::LogSnr, 50, 26);
    let sub_vp = SubVpSde::new(0.1, 20.0, 1.0).unwrap();
    assert_accepts(&sub_vp, Method::DpmSolverPp2M, GridSpacing::LogSnr, 50, 27);
}

#[test]
fn adaptive_dormand_prince_reproduces_gaussian_data_and_reports_its_nfe() {
    let sde = VpSde::song_default();
    let loose = Method::DormandPrince {
        rtol: 0.1,
        atol: 0.1,
    };
    assert_rejects(&sde, loose, GridSpacing::Uniform, 1, 28);
    let tight = Method::DormandPrince {
        rtol: 1e-3,
        atol: 1e-3,
    };
    let nfe = assert_accepts(&sde, tight, GridSpacing::Uniform, 1, 28);
    assert!((8..=100).contains(&nfe), "NFE {nfe}");
    // The reported NFE is the number of score calls.
    let mut counter = Counting(oracle(sde), 0);
    let config = SamplerConfig::new(tight, 1, T_EPS);
    assert_eq!(config.nfe(), None);
    let out = sample(&sde, &mut counter, &config, 100, 0, None).unwrap();
    assert_eq!(out.nfe, counter.1);
}

/// Counts calls to the wrapped score.
struct Counting<M>(M, usize);

impl<M: Score> Score for Counting<M> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn score(&mut self, x: &[f32], t: f64, out: &mut [f32]) {
        self.1 += 1;
        self.0.score(x, t, out)
    }
}

/// Max |sampler output − exact flow map of its own prior draw| over 200 particles.
fn flow_map_error(
    sde: &VpSde,
    std: [f64; 2],
    method: Method,
    grid: GridSpacing,
    steps: usize,
) -> f64 {
    let n = 200;
    let mut o = GaussianOracle::new(*sde, MU.to_vec(), std.to_vec()).unwrap();
    let record = RecordSpec {
        particles: n,
        times: Some(vec![sde.t_end()]),
    };
    let config = SamplerConfig::new(method, steps, T_EPS).with_grid(grid);
    let out = sample(sde, &mut o, &config, n, 5, Some(record)).unwrap();
    let x_t = out.trajectories.unwrap();
    let t_end = sde.t_end();
    let mut worst = 0.0f64;
    for (row_t, row) in x_t
        .frame(0)
        .chunks_exact(2)
        .zip(out.samples.chunks_exact(2))
    {
        for j in 0..2 {
            let exact = o.marginal_mean(j, T_EPS)
                + (f64::from(row_t[j]) - o.marginal_mean(j, t_end))
                    * (o.marginal_var(j, T_EPS) / o.marginal_var(j, t_end)).sqrt();
            worst = worst.max((f64::from(row[j]) - exact).abs());
        }
    }
    worst
}

#[test]
fn deterministic_few_step_samplers_converge_to_the_flow_map_at_their_order() {
    // Doubling the steps must halve (DDIM η = 0: Euler in σ̂ = σ/m) or quarter (EDM Heun,
    // DPM-Solver++(2M)) the worst error. Measured ratios: 1.97, 4.1, 3.9.
    let sde = VpSde::song_default();
    for (method, grid, order) in [
        (Method::Ddim { eta: 0.0 }, GridSpacing::LogSnr, 1),
        (Method::EdmHeun, KARRAS, 2),
        (Method::DpmSolverPp2M, GridSpacing::LogSnr, 2),
    ] {
        let e1 = flow_map_error(&sde, S, method, grid, 40);
        let e2 = flow_map_error(&sde, S, method, grid, 80);
        let ratio = e1 / e2;
        eprintln!("{method:?}: {e1:.3e} -> {e2:.3e} (ratio {ratio:.2})");
        let want = (1 << order) as f64;
        assert!(
            (0.85 * want..1.15 * want).contains(&ratio),
            "{method:?}: error ratio {ratio}, want ≈ {want}"
        );
    }
}

#[test]
fn ddim_deterministic_matches_the_exact_flow_map() {
    // With many steps DDIM (η = 0) follows the exact flow map (first-order error ≈ 6/n here).
    let sde = VpSde::song_default();
    let e = flow_map_error(
        &sde,
        S,
        Method::Ddim { eta: 0.0 },
        GridSpacing::LogSnr,
        3000,
    );
    assert!(e < 3e-3, "max flow-map error {e}");
    // For point-mass data (s = 0) ε̂ is constant along the flow, so DDIM is exact in a single
    // step from T to t_eps: x_{t_eps} = m' μ + (x_T − m μ) σ'/σ, up to the f32 rounding of
    // the score amplified by m'/m(T) ≈ 150 in x̂₀ = (x + σ² s)/m (measured 1.8·10⁻⁵).
    let e1 = flow_map_error(
        &sde,
        [0.0, 0.0],
        Method::Ddim { eta: 0.0 },
        GridSpacing::Uniform,
        1,
    );
    assert!(e1 < 1e-4, "one-step DDIM on point-mass data: error {e1}");
}

#[test]
fn adaptive_dormand_prince_error_tracks_its_tolerance() {
    let sde = VpSde::song_default();
    let mut prev_nfe = 0;
    for tol in [1e-3, 1e-5] {
        let method = Method::DormandPrince {
            rtol: tol,
            atol: tol,
        };
        let e = flow_map_error(&sde, S, method, GridSpacing::Uniform, 1);
        let config = SamplerConfig::new(method, 1, T_EPS);
        let nfe = sample(&sde, &mut oracle(sde), &config, 200, 5, None)
            .unwrap()
            .nfe;
        eprintln!("tol {tol:e}: error {e:.3e}, NFE {nfe}");
        assert!(e < 20.0 * tol, "tol {tol}: error {e}");
        assert!(nfe > prev_nfe);
        prev_nfe = nfe;
    }
}

#[test]
fn few_step_samplers_reproduce_a_bimodal_mixture() {
    // x₀ ~ ½ N((−1.5, 0), 0.3²) + ½ N((1.5, 0.5), (0.4, 0.3)²): marginal CDFs of p_{t_eps}
    // from MixtureOracle. NFE ≤ 100 for the deterministic samplers, 200 for DDPM.
    let sde = VpSde::song_default();
    let mixture = GaussianMixture::new(
        vec![vec![-1.5, 0.0], vec![1.5, 0.5]],
        vec![vec![0.3, 0.3], vec![0.4, 0.3]],
        vec![0.5, 0.5],
    )
    .unwrap();
    for (method, grid, steps, seed) in [
        (Method::DpmSolverPp2M, GridSpacing::LogSnr, 100, 31),
        (Method::EdmHeun, KARRAS, 50, 32),
        (Method::Ddim { eta: 1.0 }, GridSpacing::Quadratic, 200, 33),
        (
            Method::DormandPrince {
                rtol: 1e-3,
                atol: 1e-3,
            },
            GridSpacing::Uniform,
            1,
            34,
        ),
    ] {
        let mut o = MixtureOracle::new(sde, mixture.clone());
        let config = SamplerConfig::new(method, steps, T_EPS).with_grid(grid);
        let out = sample(&sde, &mut o, &config, N, seed, None).unwrap();
        for j in 0..2 {
            let col: Vec<f64> = out
                .samples
                .chunks_exact(2)
                .map(|r| f64::from(r[j]))
                .collect();
            let r = ks_one_sample(&col, |x| o.marginal_cdf(j, T_EPS, x));
            eprintln!(
                "mixture {method:?} NFE {} coord {j}: D = {:.5}, p = {:.4}",
                out.nfe, r.statistic, r.pvalue
            );
            assert!(r.pvalue > ALPHA, "mixture, {method:?}, coord {j}: {r:?}");
        }
        // Bimodality: the fraction of x-coordinates left of 0 is ½ ± 5 standard errors.
        let left = out.samples.chunks_exact(2).filter(|r| r[0] < 0.0).count() as f64 / N as f64;
        assert!(
            (left - 0.5).abs() < 5.0 * (0.25 / N as f64).sqrt(),
            "{method:?}: {left}"
        );
    }
    // Too few steps: rejected.
    let mut o = MixtureOracle::new(sde, mixture.clone());
    let config =
        SamplerConfig::new(Method::Ddim { eta: 1.0 }, 5, T_EPS).with_grid(GridSpacing::Quadratic);
    let out = sample(&sde, &mut o, &config, N, 35, None).unwrap();
    let col: Vec<f64> = out
        .samples
        .chunks_exact(2)
        .map(|r| f64::from(r[0]))
        .collect();
    let r = ks_one_sample(&col, |x| o.marginal_cdf(0, T_EPS, x));
    assert!(
        r.pvalue < ALPHA,
        "5-step DDPM on the mixture not rejected: {r:?}"
    );
}
