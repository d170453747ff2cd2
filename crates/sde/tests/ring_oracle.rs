//! `Ring2dOracle`: quadrature accuracy (4× finer rule, finite differences of its own
//! log-density, normalisation, Monte-Carlo Tweedie), the t = 0 data score, determinism and
//! parameter validation. VP with β ∈ [0.1, 20]: σ(10⁻³) ≈ 0.0105 (well below the ring's
//! width 0.0707), σ(1) ≈ 1.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smoluchowski_datasets::{Dataset, Ring2d};
use smoluchowski_sde::{ForwardSde, Ring2dOracle, Score, SdeError, VpSde};

const TIMES: [f64; 9] = [1e-3, 2e-3, 5e-3, 1e-2, 3e-2, 0.1, 0.3, 0.6, 1.0];

/// `n` points of `p_t`: ring2d samples pushed through the exact kernel.
fn points_of_pt(ring: &Ring2d, sde: &VpSde, t: f64, n: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x0 = ring.sample(&mut rng, n);
    let mut xt = vec![0.0; 2 * n];
    sde.sample_marginal(&x0, t, &mut rng, &mut xt);
    xt
}

/// Default rule (20 radial × 40 angular) vs a 4× finer one (80 × 160) at points of `p_t`:
/// score error ≤ 1e-8 · (|s| + 1/σ) and log-density error ≤ 1e-8 (measured ≤ 6.1e-10 and
/// ≤ 6.8e-10, worst at t ≈ 0.03 where the angular window spans several faces). Also for a
/// thicker ring (scale 20).
#[test]
fn ring_oracle_matches_finer_quadrature() {
    let sde = VpSde::song_default();
    for (scale, times, tol) in [
        (200.0, &TIMES[..], 1e-8),
        (20.0, &[1e-3, 0.03, 0.3][..], 1e-6),
    ] {
        let ring = Ring2d::new(scale).unwrap();
        let o = Ring2dOracle::new(sde, ring.clone()).unwrap();
        let fine = Ring2dOracle::with_resolution(sde, ring.clone(), 80, 160).unwrap();
        for (ti, &t) in times.iter().enumerate() {
            let sig = sde.marginal_std(t);
            let x = points_of_pt(&ring, &sde, t, 60, 10 + ti as u64);
            let (mut a, mut b) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            o.score_f64(&x, t, &mut a);
            fine.score_f64(&x, t, &mut b);
            let mut worst: f64 = 0.0;
            for i in 0..x.len() / 2 {
                let e = (a[2 * i] - b[2 * i]).hypot(a[2 * i + 1] - b[2 * i + 1]);
                let sn = b[2 * i].hypot(b[2 * i + 1]);
                assert!(
                    e <= tol * (sn + 1.0 / sig),
                    "scale {scale} t={t} point {i}: |Δs| = {e}, |s| = {sn}"
                );
                let p = [x[2 * i], x[2 * i + 1]];
                let dl = (o.log_density(p, t) - fine.log_density(p, t)).abs();
                assert!(dl < tol, "scale {scale} t={t}: Δ log p = {dl}");
                worst = worst.max(dl).max(e / (sn + 1.0 / sig));
            }
            println!("scale {scale} t={t}: worst relative error {worst:.2e}");
        }
    }
}

/// The score equals central differences (h = 10⁻³σ) of the oracle's own log-density to
/// 1e-6 · (|s| + 1/σ) (measured ≲ 1e-8).
#[test]
fn ring_oracle_score_is_gradient_of_its_log_density() {
    let sde = VpSde::song_default();
    let ring = Ring2d::default();
    let o = Ring2dOracle::new(sde, ring.clone()).unwrap();
    for (ti, &t) in TIMES.iter().enumerate() {
        let sig = sde.marginal_std(t);
        let x = points_of_pt(&ring, &sde, t, 40, 50 + ti as u64);
        for p in x.chunks_exact(2) {
            let p = [p[0], p[1]];
            let (s, lp) = o.score_point(p, t);
            assert_eq!(lp, o.log_density(p, t));
            let h = 1e-3 * sig;
            for j in 0..2 {
                let (mut xp, mut xm) = (p, p);
                xp[j] += h;
                xm[j] -= h;
                let fd = (o.log_density(xp, t) - o.log_density(xm, t)) / (2.0 * h);
                let sn = s[0].hypot(s[1]);
                assert!(
                    (fd - s[j]).abs() <= 1e-6 * (sn + 1.0 / sig),
                    "t={t} {p:?} j={j}: fd {fd} vs {}",
                    s[j]
                );
            }
        }
    }
}

/// `∫ p_t = 1`: midpoint rule on a Cartesian grid over the quadrant `[0, L]²` (× 4, `p_t` is
/// even in each coordinate, so the rule is spectrally accurate at the axes), spacing
/// `≈ σ_eff/2`, `L` past the support. Measured `|∫p − 1| < 1e-9`.
#[test]
fn ring_oracle_log_density_is_normalised() {
    let sde = VpSde::song_default();
    let o = Ring2dOracle::new(sde, Ring2d::default()).unwrap();
    for (t, l, n) in [(1e-3, 1.75, 250), (0.1, 3.0, 60), (1.0, 8.0, 40)] {
        let h = l / n as f64;
        let x: Vec<f64> = (0..n * n)
            .flat_map(|k| [(k / n) as f64 + 0.5, (k % n) as f64 + 0.5])
            .map(|v| v * h)
            .collect();
        let mut lp = vec![0.0; n * n];
        o.log_density_batch(&x, t, &mut lp);
        assert_eq!(lp[7], o.log_density([x[14], x[15]], t));
        let total = 4.0 * h * h * lp.iter().map(|v| v.exp()).sum::<f64>();
        assert!((total - 1.0).abs() < 1e-8, "t={t}: ∫p = {total}");
    }
}

/// Tweedie by self-normalised importance sampling from 2·10⁵ ring2d samples:
/// `E[x − m y | x] ≈ Σ_n w_n (x − m y_n) / Σ w_n`, `w_n = N(x; m y_n, σ²)`; the quadrature
/// score agrees within 5 Monte-Carlo standard errors (an independent check of the formula,
/// not of the quadrature rule).
#[test]
fn ring_oracle_tweedie_matches_monte_carlo() {
    let sde = VpSde::song_default();
    let ring = Ring2d::default();
    let o = Ring2dOracle::new(sde, ring.clone()).unwrap();
    let y = ring.sample(&mut ChaCha8Rng::seed_from_u64(77), 200_000);
    for t in [0.1, 0.3, 1.0] {
        let (m, sig) = (sde.mean_coef(t), sde.marginal_std(t));
        let pts = points_of_pt(&ring, &sde, t, 6, 88);
        for p in pts.chunks_exact(2) {
            let (s, _) = o.score_point([p[0], p[1]], t);
            for j in 0..2 {
                let (mut sw, mut sf, mut sw2) = (0.0, 0.0, 0.0);
                let w: Vec<f64> = y
                    .chunks_exact(2)
                    .map(|q| {
                        let (dx, dy) = (p[0] - m * q[0], p[1] - m * q[1]);
                        (-(dx * dx + dy * dy) / (2.0 * sig * sig)).exp()
                    })
                    .collect();
                for (q, &wn) in y.chunks_exact(2).zip(&w) {
                    sw += wn;
                    sf += wn * (p[j] - m * q[j]);
                }
                let mean = sf / sw;
                for (q, &wn) in y.chunks_exact(2).zip(&w) {
                    sw2 += (wn * (p[j] - m * q[j] - mean)).powi(2);
                }
                let se = sw2.sqrt() / sw / (sig * sig);
                let mc = -mean / (sig * sig);
                assert!(
                    (mc - s[j]).abs() < 5.0 * se + 1e-12,
                    "t={t} {p:?} j={j}: MC {mc} ± {se} vs quadrature {}",
                    s[j]
                );
            }
        }
    }
}

/// At σ(t) = 0 (t = 0) the oracle returns the data score, = central differences of
/// `Ring2d::log_density`, and its log-density.
#[test]
fn ring_oracle_data_score_at_t0() {
    let sde = VpSde::song_default();
    assert_eq!(sde.marginal_std(0.0), 0.0);
    let ring = Ring2d::default();
    let o = Ring2dOracle::new(sde, ring.clone()).unwrap();
    for p in [[1.0, 0.2], [-0.3, 0.95], [0.7, -0.72], [-1.1, -0.1]] {
        let (s, lp) = o.score_point(p, 0.0);
        assert_eq!(lp, ring.log_density(p));
        let h = 1e-6;
        for j in 0..2 {
            let (mut xp, mut xm) = (p, p);
            xp[j] += h;
            xm[j] -= h;
            let fd = (ring.log_density(xp) - ring.log_density(xm)) / (2.0 * h);
            assert!(
                (fd - s[j]).abs() < 1e-5 * (1.0 + s[j].abs()),
                "{p:?}: {fd} vs {}",
                s[j]
            );
        }
    }
}

/// Bit-identical on 1 and 2 threads; the f32 `Score` path equals the f64 one rounded.
#[test]
fn ring_oracle_is_deterministic_and_f32_path_agrees() {
    let sde = VpSde::song_default();
    let ring = Ring2d::default();
    let x = points_of_pt(&ring, &sde, 0.02, 2000, 5);
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let xr: Vec<f64> = x32.iter().map(|&v| f64::from(v)).collect();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut o = Ring2dOracle::new(sde, ring.clone()).unwrap();
        let mut out = vec![0.0f32; x32.len()];
        pool.install(|| o.score(&x32, 0.02, &mut out));
        out
    };
    let (a, b) = (run(1), run(2));
    assert!(a.iter().zip(&b).all(|(u, v)| u.to_bits() == v.to_bits()));
    let o = Ring2dOracle::new(sde, ring).unwrap();
    assert_eq!(o.dim(), 2);
    let mut s64 = vec![0.0; xr.len()];
    o.score_f64(&xr, 0.02, &mut s64);
    assert!(a.iter().zip(&s64).all(|(u, v)| *u == *v as f32));
}

#[test]
fn ring_oracle_rejects_bad_parameters() {
    let sde = VpSde::song_default();
    let msg = |r: Result<Ring2dOracle<VpSde>, SdeError>| r.unwrap_err().to_string();
    assert_eq!(
        msg(Ring2dOracle::new(sde, Ring2d::new(1.5).unwrap())),
        "ring.scale must be ≥ 2 for the ring quadrature (got 1.5)"
    );
    assert_eq!(
        msg(Ring2dOracle::with_resolution(sde, Ring2d::default(), 3, 40)),
        "n_radial must be ≥ 4 (got 3)"
    );
    assert_eq!(
        msg(Ring2dOracle::with_resolution(sde, Ring2d::default(), 20, 5)),
        "n_angular must be ≥ 6 (got 5)"
    );
    let o = Ring2dOracle::new(sde, Ring2d::default()).unwrap();
    let (lo, hi) = o.radial_range();
    // Gamma(200, rate 200) quantiles 1e-12 and 1 − 1e-12:
    // scipy.stats.gamma(200, scale=1/200).ppf([1e-12, 1 - 1e-12]) = [0.5802113, 1.5809294].
    assert!(
        (lo - 0.5802113).abs() < 1e-6 && (hi - 1.5809294).abs() < 1e-6,
        "{lo} {hi}"
    );
}
