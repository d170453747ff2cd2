//! Two moons, circles, swiss roll, checkerboard: exact statistics with fixed seeds (α ≤ 1e-3).

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smoluchowski_datasets::{Checkerboard, Circles, Dataset, SwissRoll, TwoMoons};
use smoluchowski_metrics::ks_one_sample;
use std::f64::consts::PI;

const N: usize = 100_000;

fn draw<D: Dataset>(d: &D, seed: u64) -> Vec<f64> {
    d.sample(&mut ChaCha8Rng::seed_from_u64(seed), N)
}

fn coord(x: &[f64], j: usize) -> Vec<f64> {
    x.chunks_exact(2).map(|p| p[j]).collect()
}

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        v.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / (n - 1.0),
    )
}

/// |sample mean − exact| within 4.5 standard errors √(var/n) (two-sided α ≈ 7e-6).
fn assert_mean(v: &[f64], want: f64, var: f64, what: &str) {
    let (m, _) = mean_var(v);
    let se = (var / v.len() as f64).sqrt();
    assert!(
        (m - want).abs() < 4.5 * se,
        "{what}: mean {m} vs {want} (se {se})"
    );
}

#[test]
fn two_moons_match_exact_moments_and_the_noiseless_x_law() {
    let moons = TwoMoons::new(0.1).unwrap();
    let x = draw(&moons, 1);
    let [vx, vy] = moons.variance();
    assert_mean(&coord(&x, 0), moons.mean()[0], vx, "x");
    assert_mean(&coord(&x, 1), moons.mean()[1], vy, "y");
    // Variance of the sample variance ≈ (μ₄ − σ⁴)/n ≤ 2σ⁴/n·(kurtosis margin 3): tolerance 6·σ²·√(3/n).
    for (j, v) in [(0, vx), (1, vy)] {
        let (_, s2) = mean_var(&coord(&x, j));
        assert!(
            (s2 - v).abs() < 6.0 * v * (3.0 / N as f64).sqrt(),
            "var {j}: {s2} vs {v}"
        );
    }
    let clean = draw(&TwoMoons::new(0.0).unwrap(), 2);
    let ks = ks_one_sample(&coord(&clean, 0), TwoMoons::noiseless_x_cdf);
    assert!(ks.pvalue > 1e-3, "{ks:?}");
    // The test has power: the x of the points with y > ½ (upper moon only) is rejected.
    let upper: Vec<f64> = clean
        .chunks_exact(2)
        .filter(|p| p[1] > 0.5)
        .map(|p| p[0])
        .collect();
    let ks_bad = ks_one_sample(&upper, TwoMoons::noiseless_x_cdf);
    assert!(ks_bad.pvalue < 1e-3, "{ks_bad:?}");
    assert_eq!(
        TwoMoons::new(-0.1).unwrap_err().to_string(),
        "noise must be ≥ 0 (got -0.1)"
    );
}

#[test]
fn circles_have_uniform_angle_two_radii_and_exact_mean_square_radius() {
    let c = Circles::new(0.5, 0.05).unwrap();
    let x = draw(&c, 3);
    let th: Vec<f64> = x.chunks_exact(2).map(|p| p[1].atan2(p[0])).collect();
    let ks = ks_one_sample(&th, |t| ((t + PI) / (2.0 * PI)).clamp(0.0, 1.0));
    assert!(ks.pvalue > 1e-3, "{ks:?}");
    let r2: Vec<f64> = x
        .chunks_exact(2)
        .map(|p| p[0] * p[0] + p[1] * p[1])
        .collect();
    let (_, var) = mean_var(&r2);
    assert_mean(&r2, c.mean_square_radius(), var, "|x|²");
    let clean = draw(&Circles::new(0.5, 0.0).unwrap(), 4);
    let outer = clean
        .chunks_exact(2)
        .filter(|p| (p[0].hypot(p[1]) - 1.0).abs() < 1e-12)
        .count();
    let inner = clean
        .chunks_exact(2)
        .filter(|p| (p[0].hypot(p[1]) - 0.5).abs() < 1e-12)
        .count();
    assert_eq!(outer + inner, N);
    // Binomial(N, ½): 4.5 sd = 4.5·√N/2.
    assert!((outer as f64 - N as f64 / 2.0).abs() < 4.5 * (N as f64).sqrt() / 2.0);
    assert!(Circles::new(1.0, 0.0)
        .unwrap_err()
        .to_string()
        .contains("factor"));
}

#[test]
fn swiss_roll_radius_is_uniform_and_its_mean_is_exact() {
    let s = SwissRoll::new(0.2, 0.0).unwrap();
    let x = draw(&s, 5);
    let (lo, hi) = s.radius_range();
    let r: Vec<f64> = x.chunks_exact(2).map(|p| p[0].hypot(p[1])).collect();
    let ks = ks_one_sample(&r, |v| ((v - lo) / (hi - lo)).clamp(0.0, 1.0));
    assert!(ks.pvalue > 1e-3, "{ks:?}");
    for j in 0..2 {
        let c = coord(&x, j);
        let (_, var) = mean_var(&c);
        assert_mean(&c, s.mean()[j], var, "swiss roll mean");
    }
    // Noise adds only variance: the mean is unchanged.
    let noisy = draw(&SwissRoll::ffjord(), 6);
    let c = coord(&noisy, 0);
    let (_, var) = mean_var(&c);
    assert_mean(&c, SwissRoll::ffjord().mean()[0], var, "noisy mean x");
    assert!(SwissRoll::new(0.0, 0.1)
        .unwrap_err()
        .to_string()
        .contains("scale"));
}

#[test]
fn checkerboard_is_uniform_on_the_black_cells() {
    let b = Checkerboard::ffjord();
    let x = draw(&b, 7);
    let a = b.half_width();
    for j in 0..2 {
        let ks = ks_one_sample(&coord(&x, j), |v| ((v + a) / (2.0 * a)).clamp(0.0, 1.0));
        assert!(ks.pvalue > 1e-3, "coordinate {j}: {ks:?}");
    }
    let n = b.cells();
    let mut counts = vec![0usize; n * n];
    for p in x.chunks_exact(2) {
        let (i, j) = b.cell_of(p).expect("inside the board");
        assert_eq!((i + j) % 2, 0, "white cell ({i}, {j}) at {p:?}");
        counts[i * n + j] += 1;
    }
    // χ² over the 8 black cells, df = 7: scipy.stats.chi2.isf(1e-3, 7) = 24.32.
    let e = N as f64 / (n * n / 2) as f64;
    let chi2: f64 = counts
        .iter()
        .enumerate()
        .filter(|(k, _)| (k / n + k % n).is_multiple_of(2))
        .map(|(_, &c)| (c as f64 - e).powi(2) / e)
        .sum();
    assert!(chi2 < 24.32, "chi2 = {chi2}");
    // Within a cell the position is uniform: KS of the fractional x offset.
    let side = 2.0 * a / n as f64;
    let frac: Vec<f64> = x
        .chunks_exact(2)
        .map(|p| ((p[0] + a) / side).fract())
        .collect();
    assert!(ks_one_sample(&frac, |u| u.clamp(0.0, 1.0)).pvalue > 1e-3);
    assert!(Checkerboard::new(3, 1.0)
        .unwrap_err()
        .to_string()
        .contains("cells"));
}

#[test]
fn shapes_are_deterministic_per_seed() {
    assert_eq!(
        draw(&TwoMoons::new(0.1).unwrap(), 9),
        draw(&TwoMoons::new(0.1).unwrap(), 9)
    );
    assert_ne!(
        draw(&Checkerboard::ffjord(), 9),
        draw(&Checkerboard::ffjord(), 10)
    );
}
