//! Analytic identities of the SDE kernels, the Gaussian oracle, Euler–Maruyama bookkeeping
//! and parameter validation.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smoluchowski_metrics::ks_one_sample;
use smoluchowski_sde::{
    euler_maruyama, normal_cdf, ForwardSde, GaussianOracle, OuSde, Score, Sde, SdeError, SubVpSde,
    Trajectories, VpSde,
};

fn all_sdes() -> Vec<Sde> {
    vec![
        OuSde::new(1.3, 0.7, 2.0).unwrap().into(),
        OuSde::new(0.0, 0.5, 2.0).unwrap().into(),
        OuSde::new(1e-9, 0.5, 2.0).unwrap().into(),
        VpSde::new(0.1, 20.0, 1.0).unwrap().into(),
        VpSde::new(1e-4, 0.02, 100.0).unwrap().into(),
        SubVpSde::new(0.1, 20.0, 1.0).unwrap().into(),
        SubVpSde::new(1e-4, 0.02, 100.0).unwrap().into(),
    ]
}

/// The kernel solves the moment ODEs of `dx = a(t) x dt + g(t) dW`:
/// `m' = a m`, `(σ²)' = 2 a σ² + g²`, with `m(0) = 1`, `σ(0) = 0`.
#[test]
fn kernels_solve_the_moment_odes() {
    for sde in all_sdes() {
        let t_end = sde.t_end();
        assert!((sde.mean_coef(0.0) - 1.0).abs() < 1e-15);
        assert!(sde.marginal_std(0.0).abs() < 1e-15);
        for i in 1..100 {
            let t = t_end * i as f64 / 100.0;
            let h = 1e-5 * t_end;
            let dm = (sde.mean_coef(t + h) - sde.mean_coef(t - h)) / (2.0 * h);
            let v = |t: f64| sde.marginal_std(t).powi(2);
            let dv = (v(t + h) - v(t - h)) / (2.0 * h);
            let a = sde.drift_coef(t);
            let g = sde.diffusion(t);
            let m = sde.mean_coef(t);
            assert!(
                (dm - a * m).abs() < 1e-7 * (1.0 + (a * m).abs()),
                "{sde:?} t={t}: m'={dm} vs {}",
                a * m
            );
            let rhs = 2.0 * a * v(t) + g * g;
            assert!(
                (dv - rhs).abs() < 1e-6 * (1.0 + rhs.abs()),
                "{sde:?} t={t}: v'={dv} vs {rhs}"
            );
        }
    }
}

#[test]
fn vp_and_subvp_closed_forms() {
    let vp = VpSde::new(0.1, 20.0, 1.0).unwrap();
    let sub = SubVpSde::new(0.1, 20.0, 1.0).unwrap();
    for i in 0..=50 {
        let t = i as f64 / 50.0;
        let m = vp.mean_coef(t);
        // VP preserves variance: m² + σ² = 1.
        assert!((m * m + vp.marginal_std(t).powi(2) - 1.0).abs() < 1e-14);
        // sub-VP: σ = 1 − m², same m.
        assert_eq!(sub.mean_coef(t), m);
        assert!((sub.marginal_std(t) - (1.0 - m * m)).abs() < 1e-14);
        assert!(sub.marginal_std(t) <= vp.marginal_std(t) + 1e-15);
        // I(t) = ∫₀ᵗ β by Simpson.
        let n = 200;
        let h = t / n as f64;
        let simpson: f64 = (0..=n)
            .map(|k| {
                let w = if k == 0 || k == n {
                    1.0
                } else if k % 2 == 1 {
                    4.0
                } else {
                    2.0
                };
                w * vp.beta(k as f64 * h)
            })
            .sum::<f64>()
            * h
            / 3.0;
        assert!((vp.integrated_beta(t) - simpson).abs() < 1e-12);
    }
    assert_eq!(vp.beta(0.0), 0.1);
    assert_eq!(vp.beta(1.0), 20.0);
    // Small-t accuracy of −expm1: σ(t)² ≈ I(t) for tiny t.
    let t = 1e-12;
    let s2 = vp.marginal_std(t).powi(2);
    assert!((s2 / vp.integrated_beta(t) - 1.0).abs() < 1e-9, "σ² = {s2}");
    assert!((sub.marginal_std(t) / sub.integrated_beta(t) - 1.0).abs() < 1e-9);
    assert_eq!(vp.prior_std(), 1.0);
    assert_eq!(sub.prior_std(), 1.0);
}

#[test]
fn ou_small_rate_limit_and_prior() {
    // σ² = (D/a)(1 − e^{−2at}) → 2Dt as a → 0; expm1 keeps full precision at tiny a·t.
    let free = OuSde::new(0.0, 0.5, 2.0).unwrap();
    let tiny = OuSde::new(1e-12, 0.5, 2.0).unwrap();
    for t in [1e-8, 0.1, 1.0, 2.0] {
        let exact_free = 2.0 * 0.5 * t;
        assert!((free.marginal_var(t) - exact_free).abs() <= 1e-15 * exact_free);
        assert!((tiny.marginal_var(t) / exact_free - 1.0).abs() < 1e-10);
    }
    // Free diffusion from x₀ = 0 at t = 1 with D = 0.5: p ∝ exp(−x²/4Dt) = N(0, 2Dt = 1).
    assert!((free.marginal_cdf(0.0, 1.0, 1.3) - 0.903_199_515_414_389_7).abs() < 1e-14);
    let ou = OuSde::new(2.0, 3.0, 50.0).unwrap();
    // Prior N(0, σ(T)²) → stationary N(0, D/a) for large T.
    assert!((ou.prior_std().powi(2) - 1.5).abs() < 1e-12);
    assert!((ou.marginal_var(0.7) - 1.5 * (1.0 - (-2.8f64).exp())).abs() < 1e-14);
}

#[test]
fn normal_cdf_matches_scipy() {
    // python3 -c "from scipy.stats import norm; print(repr(norm.cdf(-7.5)), repr(norm.cdf(1.3)))"
    // -> 3.1908916729108844e-14 0.9031995154143897
    assert!((normal_cdf(-7.5) / 3.190_891_672_910_884_4e-14 - 1.0).abs() < 1e-12);
    assert!((normal_cdf(1.3) - 0.903_199_515_414_389_7).abs() < 1e-15);
}

#[test]
fn log_densities_match_closed_forms() {
    let sde = VpSde::new(0.1, 20.0, 1.0).unwrap();
    let t = 0.3;
    let (m, s) = (sde.mean_coef(t), sde.marginal_std(t));
    let x0 = [0.4, -1.2, 2.0];
    let x = [0.1, 0.0, 1.5];
    let expect: f64 = x
        .iter()
        .zip(&x0)
        .map(|(&x, &x0)| {
            let z = (x - m * x0) / s;
            (-0.5 * z * z).exp() / (s * (2.0 * std::f64::consts::PI).sqrt())
        })
        .map(f64::ln)
        .sum();
    assert!((sde.marginal_log_density(&x, &x0, t) - expect).abs() < 1e-12);
    // The 1-D kernel CDF's derivative is the kernel density.
    let h = 1e-6;
    let d = (sde.marginal_cdf(0.4, t, 0.1 + h) - sde.marginal_cdf(0.4, t, 0.1 - h)) / (2.0 * h);
    assert!((d - sde.marginal_log_density(&[0.1], &[0.4], t).exp()).abs() < 1e-7);
    // Prior N(0, σ_p²) with σ_p = √(2·0.5·2) = √2 for free diffusion up to T = 2.
    let ou = OuSde::new(0.0, 0.5, 2.0).unwrap();
    let lp = ou.prior_log_density(&[1.0, -1.0]);
    let expect = 2.0 * (-0.25 - 0.5 * (2.0 * std::f64::consts::PI * 2.0).ln());
    assert!((lp - expect).abs() < 1e-12);
    // σ = 0 at t = 0: the CDF is a unit step at x₀.
    assert_eq!(sde.marginal_cdf(0.4, 0.0, 0.39), 0.0);
    assert_eq!(sde.marginal_cdf(0.4, 0.0, 0.41), 1.0);
}

#[test]
fn oracle_score_is_gradient_of_log_density() {
    let sde = VpSde::new(0.1, 20.0, 1.0).unwrap();
    let mut oracle = GaussianOracle::new(sde, vec![1.5, -0.5, 0.0], vec![0.3, 1.0, 0.0]).unwrap();
    assert_eq!(oracle.dim(), 3);
    let pts = [0.2, 0.1, -0.4, 1.7, -2.0, 0.9];
    for t in [0.01, 0.2, 0.7, 1.0] {
        let mut out = vec![0.0; 6];
        oracle.score_f64(&pts, t, &mut out);
        let x32: Vec<f32> = pts.iter().map(|&v| v as f32).collect();
        let mut out32 = vec![0.0f32; 6];
        oracle.score(&x32, t, &mut out32);
        for p in 0..2 {
            for j in 0..3 {
                let h = 1e-5;
                let mut xp = pts[p * 3..p * 3 + 3].to_vec();
                let mut xm = xp.clone();
                xp[j] += h;
                xm[j] -= h;
                let fd = (oracle.log_density(&xp, t) - oracle.log_density(&xm, t)) / (2.0 * h);
                let s = out[p * 3 + j];
                assert!(
                    (fd - s).abs() < 1e-5 * (1.0 + s.abs()),
                    "t={t} p={p} j={j}: {fd} vs {s}"
                );
                assert!((f64::from(out32[p * 3 + j]) - s).abs() < 1e-5 * (1.0 + s.abs()));
            }
        }
    }
    // Closed form: −(x − m μ)/(m² s² + σ²).
    let t = 0.2;
    let m = sde.mean_coef(t);
    let v = m * m * 0.09 + sde.marginal_std(t).powi(2);
    let mut out = [0.0; 3];
    oracle.score_f64(&pts[..3], t, &mut out);
    assert!((out[0] + (0.2 - m * 1.5) / v).abs() < 1e-14);
}

/// Two-stage simulation `x₀ ~ N(μ, s²)`, `x_t = m x₀ + σ ε` matches `GaussianOracle::marginal_cdf`.
#[test]
fn oracle_marginal_cdf_matches_simulation() {
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let sde = SubVpSde::new(0.1, 20.0, 1.0).unwrap();
    let (mu, s) = (2.0, 0.5);
    let oracle = GaussianOracle::new(sde, vec![mu], vec![s]).unwrap();
    let n = 20_000;
    for t in [0.05, 0.3, 1.0] {
        let x0: Vec<f64> = (0..n)
            .map(|_| {
                mu + s * rand_distr::Distribution::<f64>::sample(
                    &rand_distr::StandardNormal,
                    &mut rng,
                )
            })
            .collect();
        let mut xt = vec![0.0; n];
        sde.sample_marginal(&x0, t, &mut rng, &mut xt);
        let ks = ks_one_sample(&xt, |x| oracle.marginal_cdf(0, t, x));
        assert!(ks.pvalue > 1e-4, "t={t}: {ks:?}");
        // The same test must reject the marginal of a different data law (s → 2s).
        let wrong = GaussianOracle::new(sde, vec![mu], vec![2.0 * s]).unwrap();
        if t < 0.5 {
            let ks = ks_one_sample(&xt, |x| wrong.marginal_cdf(0, t, x));
            assert!(ks.pvalue < 1e-6, "t={t}: wrong law accepted {ks:?}");
        }
        // And the oracle's own sampler agrees.
        let mut direct = vec![0.0; n];
        oracle.sample_marginal(t, &mut rng, &mut direct);
        let ks = ks_one_sample(&direct, |x| oracle.marginal_cdf(0, t, x));
        assert!(ks.pvalue > 1e-4, "t={t}: {ks:?}");
    }
}

#[test]
fn euler_maruyama_records_and_is_deterministic() {
    let sde = OuSde::new(1.0, 0.5, 1.0).unwrap();
    let run = |seed: u64| {
        let mut x = vec![1.0; 10 * 2];
        let mut rec = Trajectories::new(3, 2);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        euler_maruyama(&sde, &mut x, 0.0, 0.5, 5, &mut rng, Some(&mut rec));
        euler_maruyama(&sde, &mut x, 0.5, 1.0, 5, &mut rng, Some(&mut rec));
        (x, rec)
    };
    let (x, rec) = run(5);
    assert_eq!(
        rec.frames(),
        11,
        "t0 of the second call must not be repeated"
    );
    assert_eq!(rec.positions.len(), 11 * 3 * 2);
    for (k, &t) in rec.times.iter().enumerate() {
        assert!((t - 0.1 * k as f64).abs() < 1e-12, "times[{k}] = {t}");
    }
    assert_eq!(rec.frame(0), &[1.0; 6]);
    assert_eq!(rec.frame(10), &x[..6]);
    assert_eq!(rec.get(10, 2, 1), x[5]);
    assert_eq!(run(5).0, x);
    assert_ne!(run(6).0, x);

    // One step by hand: x ← (1 + aΔt) x + g √Δt z with the same normal stream.
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut x = vec![2.0, -1.0];
    euler_maruyama(&sde, &mut x, 0.0, 0.25, 1, &mut rng, None);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut z = [0.0; 2];
    smoluchowski_sde::fill_standard_normal(&mut rng, &mut z);
    let g = 1.0f64; // √(2D) = 1
    assert!((x[0] - (0.75 * 2.0 + g * 0.5 * z[0])).abs() < 1e-15);
    assert!((x[1] - (-0.75 + g * 0.5 * z[1])).abs() < 1e-15);

    // Zero steps: nothing moves, t0 is recorded.
    let mut x = vec![3.0];
    let mut rec = Trajectories::new(1, 1);
    euler_maruyama(&sde, &mut x, 0.2, 0.2, 0, &mut rng, Some(&mut rec));
    assert_eq!((x[0], rec.times.clone()), (3.0, vec![0.2]));
}

#[test]
fn sde_enum_delegates() {
    let vp = VpSde::new(0.1, 20.0, 1.0).unwrap();
    let e = Sde::from(vp);
    for t in [0.0, 0.3, 1.0] {
        assert_eq!(e.mean_coef(t), vp.mean_coef(t));
        assert_eq!(e.marginal_std(t), vp.marginal_std(t));
        assert_eq!(e.drift_coef(t), vp.drift_coef(t));
        assert_eq!(e.diffusion(t), vp.diffusion(t));
    }
    assert_eq!(e.t_end(), 1.0);
    assert_eq!(e.prior_std(), 1.0);
}

#[test]
fn constructors_reject_bad_parameters() {
    let msg = |e: SdeError| e.to_string();
    assert_eq!(
        msg(VpSde::new(-1.0, 20.0, 1.0).unwrap_err()),
        "beta_min must be ≥ 0 (got -1)"
    );
    assert_eq!(
        msg(VpSde::new(0.1, 0.0, 1.0).unwrap_err()),
        "beta_max must be > 0 (got 0)"
    );
    assert_eq!(
        msg(SubVpSde::new(5.0, 1.0, 1.0).unwrap_err()),
        "beta_max must be ≥ beta_min (5) (got 1)"
    );
    assert_eq!(
        msg(VpSde::new(0.1, 20.0, 0.0).unwrap_err()),
        "t_end must be > 0 (got 0)"
    );
    assert_eq!(
        msg(VpSde::new(f64::NAN, 20.0, 1.0).unwrap_err()),
        "beta_min must be finite and ≥ 0 (got NaN)"
    );
    assert!(SubVpSde::new(0.1, f64::INFINITY, 1.0).is_err());
    assert_eq!(
        msg(OuSde::new(-0.5, 1.0, 1.0).unwrap_err()),
        "a must be ≥ 0 (got -0.5)"
    );
    assert_eq!(
        msg(OuSde::new(1.0, 0.0, 1.0).unwrap_err()),
        "diffusion must be > 0 (got 0)"
    );
    assert!(OuSde::new(1.0, 1.0, f64::NEG_INFINITY).is_err());
    let vp = VpSde::new(0.1, 20.0, 1.0).unwrap();
    assert_eq!(
        msg(GaussianOracle::new(vp, vec![0.0, 1.0], vec![1.0]).unwrap_err()),
        "std (length) must be the length of mean = 2 (got 1)"
    );
    assert_eq!(
        msg(GaussianOracle::new(vp, vec![0.0], vec![-1.0]).unwrap_err()),
        "std[0] must be ≥ 0 (got -1)"
    );
    assert_eq!(
        msg(GaussianOracle::new(vp, vec![], vec![]).unwrap_err()),
        "mean must be non-empty (got empty)"
    );
    assert!(GaussianOracle::new(vp, vec![f64::NAN], vec![1.0]).is_err());
}
