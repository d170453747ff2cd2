//! The multistep DPM-Solver++ family (3M, 2M SDE, 3M SDE) and the truncated log-SNR grid, driven by
//! the EXACT score of Gaussian data (as in few_step.rs):
//! - each reproduces the exact law (one-sample KS per coordinate not rejected at α = 10⁻³,
//!   fixed seeds) with enough steps and is rejected with too few;
//! - DPM-Solver++(3M) converges to the exact flow map at third order;
//! - the truncated grid lands its first step on σ̂ = σ/m = sigma_max and is uniform in log-SNR
//!   after it;
//! - DPM-Solver++(2M/3M) SDE with η = 0 is DPM-Solver++(2M/3M), bit for bit;
//! - bad parameters are rejected with their name.
//!
//! Data x₀ ~ N(μ, diag(s²)), μ = (1, −0.5), s = (0.5, 0.8): p_t = N(m μ_j, m² s_j² + σ²), and the
//! probability-flow map from T to t_eps is x_{t_eps} = m(t_eps) μ + (x_T − m(T) μ) √(v(t_eps)/v(T)).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use smoluchowski_metrics::{ks_one_sample, KsResult};
use smoluchowski_samplers::{
    sample, sample_from, GridSpacing, Method, RecordSpec, SamplerConfig, TimeGrid,
};
use smoluchowski_sde::{ForwardSde, GaussianOracle, SubVpSde, VpSde};

const MU: [f64; 2] = [1.0, -0.5];
const S: [f64; 2] = [0.5, 0.8];
const N: usize = 20_000;
const ALPHA: f64 = 1e-3;
const T_EPS: f64 = 1e-3;
const TRUNC: GridSpacing = GridSpacing::TruncatedLogSnr { sigma_max: 5.0 };

fn oracle<S: ForwardSde>(sde: S) -> GaussianOracle<S> {
    GaussianOracle::new(sde, MU.to_vec(), S.to_vec()).unwrap()
}

/// KS of each coordinate of `method` on `grid` with `steps` steps against p_{t_eps}, started
/// from the exact p_T = N(m(T) μ, v(T)) (drawn from ChaCha8Rng(seed)), so that only the
/// sampler's own error is tested, not the prior's mismatch N(0, 1) ≠ p_T (m(T) μ ≈ 0.0066 in
/// the mean for Song's VP).
fn ks<S: ForwardSde + Clone>(
    sde: &S,
    method: Method,
    grid: GridSpacing,
    steps: usize,
    seed: u64,
) -> [KsResult; 2] {
    let config = SamplerConfig::new(method, steps, T_EPS).with_grid(grid);
    let mut o = oracle(sde.clone());
    let t_end = sde.t_end();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x_init: Vec<f32> = (0..2 * N)
        .map(|i| {
            let (j, z) = (i % 2, rng.sample::<f64, _>(StandardNormal));
            (o.marginal_mean(j, t_end) + o.marginal_var(j, t_end).sqrt() * z) as f32
        })
        .collect();
    let out = sample_from(sde, &mut o, &config, x_init, seed, None).unwrap();
    assert_eq!(Some(out.nfe), config.nfe(), "{method:?}");
    [0, 1].map(|j| {
        let col: Vec<f64> = out
            .samples
            .chunks_exact(2)
            .map(|r| f64::from(r[j]))
            .collect();
        let r = ks_one_sample(&col, |x| o.marginal_cdf(j, T_EPS, x));
        eprintln!(
            "{method:?} {grid:?} {steps} steps coord {j}: D = {:.5}, p = {:.4}",
            r.statistic, r.pvalue
        );
        r
    })
}

fn assert_accepts<S: ForwardSde + Clone>(
    sde: &S,
    method: Method,
    grid: GridSpacing,
    steps: usize,
    seed: u64,
) {
    for (j, r) in ks(sde, method, grid, steps, seed).iter().enumerate() {
        assert!(
            r.pvalue > ALPHA,
            "{method:?} on {grid:?}, {steps} steps, coord {j}: KS rejects the exact law: {r:?}"
        );
    }
}

/// Returns the largest D of the two coordinates.
fn assert_rejects<S: ForwardSde + Clone>(
    sde: &S,
    method: Method,
    grid: GridSpacing,
    steps: usize,
    seed: u64,
) -> f64 {
    let r = ks(sde, method, grid, steps, seed);
    let worst = r[0].pvalue.min(r[1].pvalue);
    assert!(
        worst < ALPHA,
        "{method:?} on {grid:?} with {steps} steps not rejected: {r:?}"
    );
    r[0].statistic.max(r[1].statistic)
}

/// Max |sampler output − exact flow map of its own prior draw| over 200 particles.
fn flow_map_error(sde: &VpSde, method: Method, grid: GridSpacing, steps: usize) -> f64 {
    let n = 200;
    let mut o = oracle(*sde);
    let t_end = sde.t_end();
    let record = RecordSpec {
        particles: n,
        times: Some(vec![t_end]),
    };
    let config = SamplerConfig::new(method, steps, T_EPS).with_grid(grid);
    let out = sample(sde, &mut o, &config, n, 5, Some(record)).unwrap();
    let x_t = out.trajectories.unwrap();
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
fn dpm_solver_pp_3m_reproduces_gaussian_data() {
    let sde = VpSde::song_default();
    let d5 = assert_rejects(&sde, Method::DpmSolverPp3M, GridSpacing::LogSnr, 5, 41);
    assert!(d5 > 0.05, "5 steps must be visibly wrong: D = {d5}");
    assert_accepts(&sde, Method::DpmSolverPp3M, GridSpacing::LogSnr, 30, 41);
    // Any affine SDE: sub-VP.
    let sub_vp = SubVpSde::new(0.1, 20.0, 1.0).unwrap();
    assert_accepts(&sub_vp, Method::DpmSolverPp3M, GridSpacing::LogSnr, 30, 42);
}

#[test]
fn dpm_solver_pp_3m_converges_to_the_flow_map_at_third_order() {
    // Doubling the steps divides the worst error by at least 2³ = 8 (measured 13.9 and 16.2:
    // the first-order start sits where x̂₀ barely moves, so higher-order terms still show),
    // while 2M divides it by ≈ 4; 3M is far ahead of 2M at equal NFE. With k-diffusion's
    // `− φ₃ d₂` in place of `− 2 φ₃ d₂` (κ = ½) the ratios are 7.3 and 5.4.
    let sde = VpSde::song_default();
    let e =
        [10, 20, 40].map(|n| flow_map_error(&sde, Method::DpmSolverPp3M, GridSpacing::LogSnr, n));
    let e2m = [20, 40].map(|n| flow_map_error(&sde, Method::DpmSolverPp2M, GridSpacing::LogSnr, n));
    let (r1, r2, r2m) = (e[0] / e[1], e[1] / e[2], e2m[0] / e2m[1]);
    eprintln!("3M: {e:?} (ratios {r1:.2}, {r2:.2}); 2M at 20, 40: {e2m:?} ({r2m:.2})");
    for r in [r1, r2] {
        assert!(
            (7.5..40.0).contains(&r),
            "3M: error ratio {r} per doubling, want ≥ 8"
        );
    }
    assert!((3.0..5.5).contains(&r2m), "2M: error ratio {r2m}, want ≈ 4");
    assert!(
        e[2] < 0.1 * e2m[1],
        "40 steps: 3M {} vs 2M {}",
        e[2],
        e2m[1]
    );
    // k-diffusion's weighting of the curvature term (κ = ½): between second and third order.
    let half = Method::DpmSolverPp3MSde {
        eta: 0.0,
        curvature: 0.5,
    };
    let h = [20, 40].map(|n| flow_map_error(&sde, half, GridSpacing::LogSnr, n));
    let rh = h[0] / h[1];
    eprintln!("3M with κ = ½: {h:?} (ratio {rh:.2})");
    assert!((4.0..7.5).contains(&rh), "κ = ½: error ratio {rh}");
    assert!(h[1] > 3.0 * e[2], "κ = ½ {} vs κ = 1 {}", h[1], e[2]);
}

#[test]
fn truncated_log_snr_grid_jumps_to_sigma_max_then_is_uniform_in_log_snr() {
    let sde = VpSde::song_default();
    let sigma_hat = |t: f64| sde.marginal_std(t) / sde.mean_coef(t);
    let g = TimeGrid::new(&sde, TRUNC, T_EPS, 6).unwrap();
    let t = g.times();
    assert_eq!((t[0], t[6], g.steps()), (1.0, T_EPS, 6));
    assert!(
        (sigma_hat(t[1]) - 5.0).abs() < 1e-9,
        "σ̂(t_1) = {}",
        sigma_hat(t[1])
    );
    // λ = −2 ln σ̂ even over t_1..t_6.
    let lambda: Vec<f64> = t[1..].iter().map(|&ti| -2.0 * sigma_hat(ti).ln()).collect();
    let d: Vec<f64> = lambda.windows(2).map(|w| w[1] - w[0]).collect();
    for &di in &d {
        assert!(di > 0.0 && (di - d[0]).abs() < 1e-9 * d[0], "{d:?}");
    }
    // With 2 steps: T → σ̂ = 5 → t_eps.
    let g2 = TimeGrid::new(&sde, TRUNC, T_EPS, 2).unwrap();
    assert!((sigma_hat(g2.times()[1]) - 5.0).abs() < 1e-9);
}

#[test]
fn truncated_log_snr_grid_samples_gaussian_data_in_few_steps() {
    // On the truncated grid 2M and 3M reproduce the law with 10 steps, where the full log-SNR
    // grid (which spends steps between σ̂(T) ≈ 150 and 5) still needs more.
    let sde = VpSde::song_default();
    assert_accepts(&sde, Method::DpmSolverPp2M, TRUNC, 10, 43);
    assert_accepts(&sde, Method::DpmSolverPp3M, TRUNC, 10, 44);
    // Deterministic error of the flow map at 5 and 10 steps: the truncated grid is ahead.
    for (method, steps) in [(Method::DpmSolverPp2M, 5), (Method::DpmSolverPp3M, 10)] {
        let full = flow_map_error(&sde, method, GridSpacing::LogSnr, steps);
        let trunc = flow_map_error(&sde, method, TRUNC, steps);
        eprintln!("{method:?}, {steps} steps: log-SNR grid {full:.3e}, truncated {trunc:.3e}");
        assert!(
            trunc < 0.5 * full,
            "{method:?}: truncated {trunc} vs full {full}"
        );
    }
}

#[test]
fn dpm_solver_pp_2m_sde_reproduces_gaussian_data() {
    let sde = VpSde::song_default();
    let m = Method::DpmSolverPp2MSde { eta: 1.0 };
    let d5 = assert_rejects(&sde, m, GridSpacing::LogSnr, 5, 46);
    let d15 = ks(&sde, m, GridSpacing::LogSnr, 15, 46);
    let d15 = d15[0].statistic.max(d15[1].statistic);
    assert!(d15 < 0.5 * d5, "D {d5} -> {d15}");
    assert_accepts(&sde, m, GridSpacing::LogSnr, 100, 46);
    assert_accepts(&sde, Method::DpmSolverPp2MSde { eta: 0.5 }, TRUNC, 100, 47);
    let sub_vp = SubVpSde::new(0.1, 20.0, 1.0).unwrap();
    assert_accepts(&sub_vp, m, GridSpacing::LogSnr, 100, 48);
}

#[test]
fn dpm_solver_pp_3m_sde_reproduces_gaussian_data() {
    let sde = VpSde::song_default();
    let m = Method::DpmSolverPp3MSde {
        eta: 0.5,
        curvature: 1.0,
    };
    let d5 = assert_rejects(&sde, m, GridSpacing::LogSnr, 5, 49);
    assert!(d5 > 0.02, "5 steps must be visibly wrong: D = {d5}");
    assert_accepts(&sde, m, TRUNC, 50, 49);
    assert_accepts(
        &sde,
        Method::DpmSolverPp3MSde {
            eta: 1.0,
            curvature: 0.5,
        },
        GridSpacing::LogSnr,
        100,
        50,
    );
}

#[test]
fn dpm_solver_pp_sde_with_eta_zero_is_the_ode_solver() {
    let sde = VpSde::song_default();
    let run = |method| {
        let config = SamplerConfig::new(method, 12, T_EPS).with_grid(TRUNC);
        sample(&sde, &mut oracle(sde), &config, 1000, 7, None)
            .unwrap()
            .samples
    };
    assert_eq!(
        run(Method::DpmSolverPp2MSde { eta: 0.0 }),
        run(Method::DpmSolverPp2M)
    );
    assert_eq!(
        run(Method::DpmSolverPp3MSde {
            eta: 0.0,
            curvature: 1.0
        }),
        run(Method::DpmSolverPp3M)
    );
    // η > 0 draws noise: same seed ⇒ same output, another seed ⇒ another output.
    let config = SamplerConfig::new(Method::DpmSolverPp2MSde { eta: 1.0 }, 12, T_EPS);
    let a = sample(&sde, &mut oracle(sde), &config, 1000, 7, None).unwrap();
    let b = sample(&sde, &mut oracle(sde), &config, 1000, 7, None).unwrap();
    let c = sample(&sde, &mut oracle(sde), &config, 1000, 8, None).unwrap();
    assert_eq!(a.samples, b.samples);
    assert_ne!(a.samples, c.samples);
}

#[test]
fn bad_multistep_parameters_are_named() {
    let sde = VpSde::song_default();
    let name = |grid: GridSpacing, steps: usize| {
        TimeGrid::new(&sde, grid, T_EPS, steps)
            .unwrap_err()
            .path()
            .to_string()
    };
    // σ̂(T) ≈ 157 for Song's VP, σ̂(1e-3) ≈ 0.01.
    for bad in [0.0, -1.0, 1e3, 1e-4, f64::NAN] {
        let e = TimeGrid::new(
            &sde,
            GridSpacing::TruncatedLogSnr { sigma_max: bad },
            T_EPS,
            5,
        )
        .unwrap_err();
        assert_eq!(e.path(), "grid.truncated_log_snr.sigma_max", "{bad}");
        assert!(e.to_string().contains("sigma_max"), "{e}");
    }
    assert_eq!(name(TRUNC, 1), "steps");
    assert_eq!(name(TRUNC, 0), "steps");
    for eta in [-0.1, f64::INFINITY, f64::NAN] {
        for m in [
            Method::DpmSolverPp2MSde { eta },
            Method::DpmSolverPp3MSde {
                eta,
                curvature: 1.0,
            },
        ] {
            let config = SamplerConfig::new(m, 10, T_EPS);
            let e = sample(&sde, &mut oracle(sde), &config, 10, 0, None).unwrap_err();
            assert_eq!(e.path(), "method.eta", "{m:?}");
        }
    }
    // TOML spellings.
    let m: Method = toml::from_str::<toml::Value>("m = { dpm_solver_pp_2m_sde = { eta = 1.0 } }")
        .unwrap()["m"]
        .clone()
        .try_into()
        .unwrap();
    assert_eq!(m, Method::DpmSolverPp2MSde { eta: 1.0 });
    let m: Method = toml::from_str::<toml::Value>("m = { dpm_solver_pp_3m_sde = { eta = 0.5 } }")
        .unwrap()["m"]
        .clone()
        .try_into()
        .unwrap();
    assert_eq!(
        m,
        Method::DpmSolverPp3MSde {
            eta: 0.5,
            curvature: 1.0
        }
    );
    for curvature in [-0.5, 1.5, f64::NAN] {
        let m = Method::DpmSolverPp3MSde {
            eta: 0.5,
            curvature,
        };
        let config = SamplerConfig::new(m, 10, T_EPS);
        let e = sample(&sde, &mut oracle(sde), &config, 10, 0, None).unwrap_err();
        assert_eq!(e.path(), "method.curvature", "{curvature}");
    }
    let g: GridSpacing =
        toml::from_str::<toml::Value>("g = { truncated_log_snr = { sigma_max = 5.0 } }").unwrap()
            ["g"]
            .clone()
            .try_into()
            .unwrap();
    assert_eq!(g, TRUNC);
}
