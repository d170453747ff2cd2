//! Exact log-likelihoods through the probability-flow ODE, checked against closed-form
//! Gaussian log-densities; Hutchinson's divergence estimator checked for unbiasedness.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smoluchowski_samplers::{
    hutchinson_divergence, log_likelihood, log_likelihood_exact, Divergence, GridSpacing,
    LikelihoodConfig, OdeSolver, ScoreDivergence,
};
use smoluchowski_sde::{fill_standard_normal, ForwardSde, GaussianOracle, OuSde, Score, VpSde};

const MU: [f64; 2] = [1.0, -0.5];
const S: [f64; 2] = [0.5, 0.8];
const T_EPS: f64 = 1e-5;

/// VP with β_max = 40: m(T) = e^{−10.05} ≈ 4·10⁻⁵, so the prior N(0, 1) equals p_T to
/// ≈ m(T)|μ||x| ≲ 2·10⁻⁴ nats and the ODE likelihood is exact up to the solver.
fn vp() -> VpSde {
    VpSde::new(0.1, 40.0, 1.0).unwrap()
}

fn dopri(tol: f64) -> OdeSolver {
    OdeSolver::DormandPrince {
        rtol: tol,
        atol: tol,
    }
}

/// `n` points of N(μ, diag(s²)) (as f32) from `seed`.
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut z = vec![0.0; 2 * n];
    fill_standard_normal(&mut rng, &mut z);
    z.chunks_exact(2)
        .flat_map(|r| [0, 1].map(|j| (MU[j] + S[j] * r[j]) as f32))
        .collect()
}

/// `log N(x; μ, diag(s²))`, the data density at t = 0.
fn log_p0(x: &[f64]) -> f64 {
    (0..2)
        .map(|j| {
            let z = (x[j] - MU[j]) / S[j];
            -0.5 * z * z - (S[j] * (std::f64::consts::TAU).sqrt()).ln()
        })
        .sum()
}

#[test]
fn ode_likelihood_matches_the_exact_gaussian_log_density() {
    // log p_{t_eps}(x) from the ODE vs the closed form N(m μ, m² s² + σ²) at t_eps = 10⁻⁵,
    // and vs log N(x; μ, s²) at t = 0 (which differs by ≲ σ(t_eps)²/s² ≈ 10⁻⁵), on VP and
    // OU, with adaptive Dormand–Prince and with RK4 on a log-SNR grid.
    let x0 = data(200, 1);
    let ou = OuSde::new(1.0, 1.0, 12.0).unwrap(); // m(T) = e^{−12}
    for (name, solver) in [
        ("dopri 1e-6", dopri(1e-6)),
        (
            "rk4 ×100 log-snr",
            OdeSolver::Rk4 {
                steps: 100,
                grid: GridSpacing::LogSnr,
            },
        ),
    ] {
        let config = LikelihoodConfig::new(T_EPS, solver, Divergence::Exact);
        let mut o = GaussianOracle::new(vp(), MU.to_vec(), S.to_vec()).unwrap();
        let vp_out = log_likelihood_exact(&vp(), &mut o, &x0, &config).unwrap();
        let mut o = GaussianOracle::new(ou, MU.to_vec(), S.to_vec()).unwrap();
        let ou_out = log_likelihood_exact(&ou, &mut o, &x0, &config).unwrap();
        for (sde_name, out) in [("vp", &vp_out), ("ou", &ou_out)] {
            let (mut worst_t, mut worst_0) = (0.0f64, 0.0f64);
            for (row, &ll) in x0.chunks_exact(2).zip(&out.nats) {
                let x = [f64::from(row[0]), f64::from(row[1])];
                worst_t = worst_t.max((ll - o_log_density(sde_name, &x)).abs());
                worst_0 = worst_0.max((ll - log_p0(&x)).abs());
            }
            eprintln!(
                "{name} {sde_name}: NFE {}, max |Δ| vs p_t_eps {worst_t:.2e}, vs p_0 {worst_0:.2e}, \
                 mean {:.5} nats, {:.5} bits/dim",
                out.nfe, out.mean_nats, out.bits_per_dim
            );
            assert!(worst_t < 1e-3, "{name} {sde_name}: {worst_t}");
            assert!(worst_0 < 1e-3, "{name} {sde_name}: {worst_0}");
            let mean = out.nats.iter().sum::<f64>() / out.nats.len() as f64;
            assert!((out.mean_nats - mean).abs() < 1e-12);
            let bpd = -mean / (2.0 * std::f64::consts::LN_2);
            assert!((out.bits_per_dim - bpd).abs() < 1e-12);
        }
    }
}

/// Closed-form `log p_{t_eps}` under the named SDE.
fn o_log_density(sde: &str, x: &[f64]) -> f64 {
    match sde {
        "vp" => GaussianOracle::new(vp(), MU.to_vec(), S.to_vec())
            .unwrap()
            .log_density(x, T_EPS),
        _ => GaussianOracle::new(OuSde::new(1.0, 1.0, 12.0).unwrap(), MU.to_vec(), S.to_vec())
            .unwrap()
            .log_density(x, T_EPS),
    }
}

/// Correlated 2-d Gaussian data `N(μ, Σ)`, `Σ = [[a², ρab], [ρab, b²]]`, diffused by `sde`:
/// `p_t = N(m μ, C)`, `C = m² Σ + σ² I`, score `−C⁻¹(x − m μ)`, divergence `−tr C⁻¹`
/// (its Jacobian is not diagonal, so Hutchinson's estimator has positive variance).
struct Correlated<S> {
    sde: S,
    mu: [f64; 2],
    a: f64,
    b: f64,
    rho: f64,
}

impl<S: ForwardSde> Correlated<S> {
    /// `(centre m μ, C⁻¹ as [p11, p12, p22], ln det C)` at `t`.
    fn at(&self, t: f64) -> ([f64; 2], [f64; 3], f64) {
        let (m, sig) = (self.sde.mean_coef(t), self.sde.marginal_std(t));
        let (m2, s2) = (m * m, sig * sig);
        let c11 = m2 * self.a * self.a + s2;
        let c22 = m2 * self.b * self.b + s2;
        let c12 = m2 * self.rho * self.a * self.b;
        let det = c11 * c22 - c12 * c12;
        (
            [m * self.mu[0], m * self.mu[1]],
            [c22 / det, -c12 / det, c11 / det],
            det.ln(),
        )
    }

    fn log_density(&self, x: &[f64], t: f64) -> f64 {
        let (c, p, ln_det) = self.at(t);
        let (u, v) = (x[0] - c[0], x[1] - c[1]);
        -0.5 * (p[0] * u * u + 2.0 * p[1] * u * v + p[2] * v * v)
            - 0.5 * ln_det
            - (std::f64::consts::TAU).ln()
    }
}

impl<S: ForwardSde> Score for Correlated<S> {
    fn dim(&self) -> usize {
        2
    }
    fn score(&mut self, x: &[f32], t: f64, out: &mut [f32]) {
        let (c, p, _) = self.at(t);
        for (xr, or) in x.chunks_exact(2).zip(out.chunks_exact_mut(2)) {
            let (u, v) = (f64::from(xr[0]) - c[0], f64::from(xr[1]) - c[1]);
            or[0] = (-(p[0] * u + p[1] * v)) as f32;
            or[1] = (-(p[1] * u + p[2] * v)) as f32;
        }
    }
}

impl<S: ForwardSde> ScoreDivergence for Correlated<S> {
    fn score_and_divergence(&mut self, x: &[f32], t: f64, s: &mut [f32], div: &mut [f64]) {
        self.score(x, t, s);
        let (_, p, _) = self.at(t);
        div.fill(-(p[0] + p[2]));
    }
}

fn correlated() -> Correlated<VpSde> {
    Correlated {
        sde: vp(),
        mu: [0.5, -1.0],
        a: 0.6,
        b: 1.2,
        rho: 0.8,
    }
}

#[test]
fn exact_and_finite_difference_divergences_give_the_correlated_gaussian_density() {
    let x0 = data(100, 2);
    let mut model = correlated();
    for (div, tol) in [
        (Divergence::Exact, 1e-3),
        (Divergence::FiniteDifference, 2e-3),
    ] {
        let config = LikelihoodConfig::new(T_EPS, dopri(1e-6), div);
        let out = log_likelihood_exact(&vp(), &mut model, &x0, &config).unwrap();
        let worst = x0
            .chunks_exact(2)
            .zip(&out.nats)
            .map(|(r, &ll)| {
                let x = [f64::from(r[0]), f64::from(r[1])];
                (ll - model.log_density(&x, T_EPS)).abs()
            })
            .fold(0.0, f64::max);
        eprintln!("{div:?}: NFE {}, max |Δ| {worst:.2e}", out.nfe);
        assert!(worst < tol, "{div:?}: {worst}");
    }
    // A plain Score (no closed-form divergence) through log_likelihood: same numbers as the
    // finite-difference run above.
    struct Plain(Correlated<VpSde>);
    impl Score for Plain {
        fn dim(&self) -> usize {
            2
        }
        fn score(&mut self, x: &[f32], t: f64, out: &mut [f32]) {
            self.0.score(x, t, out)
        }
    }
    let config = LikelihoodConfig::new(T_EPS, dopri(1e-6), Divergence::FiniteDifference);
    let a = log_likelihood(&vp(), &mut Plain(correlated()), &x0, &config).unwrap();
    let b = log_likelihood_exact(&vp(), &mut correlated(), &x0, &config).unwrap();
    assert_eq!(a, b);
    let exact = LikelihoodConfig::new(T_EPS, dopri(1e-6), Divergence::Exact);
    let e = log_likelihood(&vp(), &mut Plain(correlated()), &x0, &exact).unwrap_err();
    assert_eq!(e.path(), "divergence");
}

/// A nonlinear score in d = 3: `s(x) = −x + sin(Bx)` (elementwise sine), Jacobian
/// `−I + diag(cos(Bx)) B`, divergence `−3 + Σ_j cos((Bx)_j) B_jj`.
struct Wavy;

const B: [[f64; 3]; 3] = [[1.2, -0.7, 0.4], [0.9, 0.8, -1.1], [-0.5, 1.3, 0.6]];

impl Score for Wavy {
    fn dim(&self) -> usize {
        3
    }
    fn score(&mut self, x: &[f32], _t: f64, out: &mut [f32]) {
        for (xr, or) in x.chunks_exact(3).zip(out.chunks_exact_mut(3)) {
            for j in 0..3 {
                let bx: f64 = (0..3).map(|k| B[j][k] * f64::from(xr[k])).sum();
                or[j] = (-f64::from(xr[j]) + bx.sin()) as f32;
            }
        }
    }
}

#[test]
fn hutchinson_divergence_is_unbiased_within_its_standard_error() {
    // n = 20 000 copies of one point, each row with its own Rademacher probe: the mean of the
    // estimates must be within 4.5 standard errors of the exact divergence (|z| > 4.5 has
    // probability 7·10⁻⁶), and the estimator must actually vary (Jacobian not diagonal).
    let x = [0.3f32, -0.8, 1.1];
    let n = 20_000;
    let xs: Vec<f32> = x.iter().copied().cycle().take(3 * n).collect();
    let bx: Vec<f64> = (0..3)
        .map(|j| (0..3).map(|k| B[j][k] * f64::from(x[k])).sum())
        .collect();
    let exact: f64 = -3.0 + (0..3).map(|j| bx[j].cos() * B[j][j]).sum::<f64>();
    for probes in [1, 4] {
        let mut div = vec![0.0; n];
        let nfe = hutchinson_divergence(&mut Wavy, &xs, 0.5, probes, 7, &mut div);
        assert_eq!(nfe, 2 * probes);
        let mean = div.iter().sum::<f64>() / n as f64;
        let sd = (div.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
        let se = sd / (n as f64).sqrt();
        eprintln!(
            "K = {probes}: mean {mean:.5}, exact {exact:.5}, sd {sd:.4}, z {:.2}",
            (mean - exact) / se
        );
        assert!(sd > 0.1, "estimator has no variance: sd {sd}");
        assert!(
            (mean - exact).abs() < 4.5 * se,
            "biased: mean {mean}, exact {exact}, se {se}"
        );
        // Same seed ⇒ same probes ⇒ same estimates.
        let mut again = vec![0.0; n];
        hutchinson_divergence(&mut Wavy, &xs, 0.5, probes, 7, &mut again);
        assert_eq!(div, again);
    }
}

#[test]
fn hutchinson_likelihood_is_unbiased_within_its_standard_error() {
    // 4000 copies of one data point; each row's probe is fixed along its trajectory. The mean
    // log-likelihood must be within 4.5 standard errors of the exact log p_{t_eps}, the
    // estimates must vary, and 4 probes must shrink their standard deviation ≈ 2×.
    let x = [0.9f32, 0.1];
    let n = 4000;
    let xs: Vec<f32> = x.iter().copied().cycle().take(2 * n).collect();
    let model = correlated();
    let exact = model.log_density(&[f64::from(x[0]), f64::from(x[1])], T_EPS);
    let mut sds = Vec::new();
    for probes in [1, 4] {
        let config = LikelihoodConfig::new(
            T_EPS,
            dopri(1e-6),
            Divergence::Hutchinson { probes, seed: 3 },
        );
        let out = log_likelihood(&vp(), &mut correlated(), &xs, &config).unwrap();
        let mean = out.mean_nats;
        let sd = (out.nats.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
        let se = sd / (n as f64).sqrt();
        eprintln!(
            "K = {probes}: NFE {}, mean {mean:.5}, exact {exact:.5}, sd {sd:.4}, z {:.2}",
            out.nfe,
            (mean - exact) / se
        );
        assert!(sd > 0.05, "no variance: {sd}");
        assert!(
            (mean - exact).abs() < 4.5 * se,
            "mean {mean}, exact {exact}, se {se}"
        );
        sds.push(sd);
    }
    let ratio = sds[0] / sds[1];
    assert!((1.7..2.3).contains(&ratio), "sd ratio K=1/K=4: {ratio}");
}

#[test]
fn likelihood_config_round_trips_and_bad_input_is_named() {
    let text = r#"
        t_eps = 1e-5
        solver = { rk4 = { steps = 50 } }
        divergence = { hutchinson = { probes = 2, seed = 9 } }
    "#;
    let config: LikelihoodConfig = toml::from_str(text).unwrap();
    assert_eq!(
        config,
        LikelihoodConfig::new(
            1e-5,
            OdeSolver::Rk4 {
                steps: 50,
                grid: GridSpacing::LogSnr
            },
            Divergence::Hutchinson { probes: 2, seed: 9 }
        )
    );
    let back: LikelihoodConfig = toml::from_str(&toml::to_string(&config).unwrap()).unwrap();
    assert_eq!(back, config);
    let bad = toml::from_str::<LikelihoodConfig>(
        "t_eps = 1e-5\nsolver = { dormand_prince = { rtol = 1e-5, atol = 1e-5, tol = 1 } }\ndivergence = \"exact\"",
    );
    assert!(bad.unwrap_err().to_string().contains("tol"));

    let sde = vp();
    let mut o = GaussianOracle::new(sde, MU.to_vec(), S.to_vec()).unwrap();
    let ok = LikelihoodConfig::new(T_EPS, dopri(1e-5), Divergence::Exact);
    let err = |o: &mut GaussianOracle<VpSde>, x: &[f32], c: &LikelihoodConfig| {
        log_likelihood_exact(&sde, o, x, c)
            .unwrap_err()
            .path()
            .to_string()
    };
    assert_eq!(err(&mut o, &[1.0, 2.0, 3.0], &ok), "x0.len()");
    assert_eq!(err(&mut o, &[], &ok), "x0.len()");
    assert_eq!(err(&mut o, &[1.0, f32::NAN], &ok), "x0[1]");
    let mut c = ok.clone();
    c.t_eps = 1.0;
    assert_eq!(err(&mut o, &[1.0, 2.0], &c), "t_eps");
    c = ok.clone();
    c.solver = dopri(0.0);
    assert_eq!(err(&mut o, &[1.0, 2.0], &c), "solver.dormand_prince.rtol");
    c.solver = OdeSolver::Rk4 {
        steps: 0,
        grid: GridSpacing::Uniform,
    };
    assert_eq!(err(&mut o, &[1.0, 2.0], &c), "solver.rk4.steps");
    c = ok.clone();
    c.divergence = Divergence::Hutchinson { probes: 0, seed: 1 };
    assert_eq!(err(&mut o, &[1.0, 2.0], &c), "divergence.hutchinson.probes");
}
