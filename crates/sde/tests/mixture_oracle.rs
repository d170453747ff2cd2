//! `MixtureOracle`: score = gradient of log p_t, marginal CDF vs simulation (KS), agreement
//! with `GaussianOracle` for one component, far-field stability, determinism.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smoluchowski_datasets::{Dataset, GaussianMixture};
use smoluchowski_metrics::ks_one_sample;
use smoluchowski_sde::{
    ForwardSde, GaussianOracle, MixtureOracle, OuSde, Score, Sde, SubVpSde, VpSde,
};

fn sdes() -> [Sde; 3] {
    [
        VpSde::song_default().into(),
        SubVpSde::new(0.1, 20.0, 1.0).unwrap().into(),
        OuSde::new(1.3, 0.7, 2.0).unwrap().into(),
    ]
}

/// Central differences of `log_density` (h = 1e-5) agree with the score to 1e-5 relative, for
/// the 2-D eight-Gaussians and the 1-D bimodal mixture, at points between and on the modes.
#[test]
fn score_is_gradient_of_log_density() {
    for sde in sdes() {
        for mix in [
            GaussianMixture::eight_gaussians(),
            GaussianMixture::bimodal_1d(),
        ] {
            let d = mix.dim();
            let mut oracle = MixtureOracle::new(sde, mix.clone());
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            for t in [1e-3, 0.01, 0.1, 0.5, 1.0] {
                let mut x = oracle.mixture().sample(&mut rng, 20);
                // Half the points pushed off the data, between modes.
                for v in x.iter_mut().take(10 * d) {
                    *v *= 0.8;
                }
                let mut s = vec![0.0; x.len()];
                oracle.score_f64(&x, t, &mut s);
                let scale = 1.0 / (sde.marginal_std(t).powi(2) + 0.0025);
                for (i, row) in x.chunks_exact(d).enumerate() {
                    for j in 0..d {
                        let h = 1e-5 * sde.marginal_std(t).max(0.05);
                        let mut xp = row.to_vec();
                        let mut xm = row.to_vec();
                        xp[j] += h;
                        xm[j] -= h;
                        let fd =
                            (oracle.log_density(&xp, t) - oracle.log_density(&xm, t)) / (2.0 * h);
                        let sc = s[i * d + j];
                        assert!(
                            (fd - sc).abs() < 1e-5 * (sc.abs() + scale.sqrt()),
                            "{sde:?} d={d} t={t}: fd {fd} vs score {sc}"
                        );
                    }
                }
            }
        }
    }
}

/// One component: identical to `GaussianOracle` (score, CDF, log-density).
#[test]
fn single_component_equals_gaussian_oracle() {
    let sde = VpSde::song_default();
    let mix = GaussianMixture::new(vec![vec![1.5, -0.5]], vec![vec![0.3, 1.0]], vec![2.0]).unwrap();
    let mut mo = MixtureOracle::new(sde, mix);
    let mut go = GaussianOracle::new(sde, vec![1.5, -0.5], vec![0.3, 1.0]).unwrap();
    let x = [0.2, 0.1, -0.4, 1.7, 3.0, -2.0];
    for t in [0.01, 0.3, 1.0] {
        let (mut a, mut b) = (vec![0.0; 6], vec![0.0; 6]);
        mo.score_f64(&x, t, &mut a);
        go.score_f64(&x, t, &mut b);
        for (u, v) in a.iter().zip(&b) {
            assert!((u - v).abs() < 1e-12 * (1.0 + v.abs()), "t={t}: {u} vs {v}");
        }
        for j in 0..2 {
            assert!((mo.marginal_cdf(j, t, 0.7) - go.marginal_cdf(j, t, 0.7)).abs() < 1e-15);
        }
        assert!((mo.log_density(&x[..2], t) - go.log_density(&x[..2], t)).abs() < 1e-12);
    }
}

/// Data samples pushed through the exact kernel (`x_t = m x₀ + σ ε`) pass KS against
/// `marginal_cdf` per coordinate (n = 20 000, α = 1e-4); at small t the data law itself
/// (the t = 0 marginal) is rejected, so the check has power.
#[test]
fn marginal_cdf_matches_simulation() {
    let n = 20_000;
    for (si, sde) in sdes().into_iter().enumerate() {
        for mix in [
            GaussianMixture::eight_gaussians(),
            GaussianMixture::bimodal_1d(),
        ] {
            let d = mix.dim();
            let oracle = MixtureOracle::new(sde, mix.clone());
            let mut rng = ChaCha8Rng::seed_from_u64(100 + si as u64);
            for t in [0.05, 0.3, 1.0] {
                let x0 = mix.sample(&mut rng, n);
                let mut xt = vec![0.0; x0.len()];
                sde.sample_marginal(&x0, t, &mut rng, &mut xt);
                for j in 0..d {
                    let col: Vec<f64> = xt.iter().skip(j).step_by(d).cloned().collect();
                    let ks = ks_one_sample(&col, |v| oracle.marginal_cdf(j, t, v));
                    assert!(ks.pvalue > 1e-4, "{sde:?} d={d} t={t} j={j}: {ks:?}");
                    if t == 0.05 {
                        let ks0 = ks_one_sample(&col, |v| mix.marginal_cdf(j, v));
                        assert!(ks0.pvalue < 1e-6, "{sde:?} t={t}: data law accepted");
                    }
                }
            }
        }
    }
}

/// Far from every component the responsibilities stay finite (log-sum-exp) and the score
/// tends to that of the widest/nearest component; the f32 `Score` path agrees with f64;
/// results are bit-identical on 1 and 2 threads.
#[test]
fn far_field_f32_path_and_thread_determinism() {
    let sde = VpSde::song_default();
    let mut oracle = MixtureOracle::new(sde, GaussianMixture::eight_gaussians());
    let t = 1e-3;
    let mut s = [0.0; 2];
    oracle.score_f64(&[300.0, 0.0], t, &mut s);
    // Nearest component: (2, 0), variance v = m²·0.05² + σ².
    let m = sde.mean_coef(t);
    let v = m * m * 0.0025 + sde.marginal_std(t).powi(2);
    assert!(
        (s[0] + (300.0 - 2.0 * m) / v).abs() < 1e-9 * s[0].abs(),
        "{s:?}"
    );
    assert!(s[1].abs() < 1e-6 * s[0].abs());

    let x = GaussianMixture::eight_gaussians().sample(&mut ChaCha8Rng::seed_from_u64(9), 3000);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut o = MixtureOracle::new(sde, GaussianMixture::eight_gaussians());
        let mut out = vec![0.0; x.len()];
        pool.install(|| o.score_f64(&x, 0.05, &mut out));
        out
    };
    let (a, b) = (run(1), run(2));
    assert!(a.iter().zip(&b).all(|(u, v)| u.to_bits() == v.to_bits()));
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let xr: Vec<f64> = x32.iter().map(|&v| f64::from(v)).collect();
    let mut s64 = vec![0.0; x.len()];
    oracle.score_f64(&xr, 0.05, &mut s64);
    let mut s32 = vec![0.0f32; x.len()];
    oracle.score(&x32, 0.05, &mut s32);
    assert_eq!(oracle.dim(), 2);
    for (u, v) in s32.iter().zip(&s64) {
        assert!((f64::from(*u) - v).abs() <= 1e-6 * v.abs().max(1.0));
    }
}
