//! Exact marginals of `ring2d` and the `Gaussian` dataset: analytic identities, SciPy
//! reference values, and quadrature.

use std::f64::consts::{FRAC_PI_4, PI};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smoluchowski_datasets::{Dataset, Gaussian, Ring2d};

/// Composite Simpson rule on `[a, b]` with `n` (even) intervals.
fn simpson(f: impl Fn(f64) -> f64, a: f64, b: f64, n: usize) -> f64 {
    assert!(n.is_multiple_of(2));
    let h = (b - a) / n as f64;
    let mut s = f(a) + f(b);
    for i in 1..n {
        let w = if i % 2 == 1 { 4.0 } else { 2.0 };
        s += w * f(a + i as f64 * h);
    }
    s * h / 3.0
}

/// The face boundaries of the square's directions: `−π, −3π/4, …, π`.
fn face_edges() -> [f64; 9] {
    std::array::from_fn(|i| -PI + i as f64 * FRAC_PI_4)
}

#[test]
fn angular_pdf_integrates_to_one() {
    let ring = Ring2d::default();
    let e = face_edges();
    // p(θ) is smooth inside each octant (kinks only at the diagonals), so integrate piecewise.
    let total: f64 = e
        .windows(2)
        .map(|w| simpson(|t| ring.angular_pdf(t), w[0], w[1], 1000))
        .sum();
    assert!((total - 1.0).abs() < 1e-10, "∫p(θ)dθ = {total}");
    // Each face (a quarter turn centred on an axis) carries mass 1/4.
    let face = simpson(|t| ring.angular_pdf(t), -FRAC_PI_4, FRAC_PI_4, 400);
    assert!((face - 0.25).abs() < 1e-10, "face mass {face}");
    // Peaks 1/4 at the diagonals, 1/8 on the axes.
    assert!((ring.angular_pdf(FRAC_PI_4) - 0.25).abs() < 1e-12);
    assert!((ring.angular_pdf(0.0) - 0.125).abs() < 1e-12);
    assert!((ring.angular_pdf(PI / 2.0) - 0.125).abs() < 1e-12);
}

#[test]
fn angular_pdf_is_derivative_of_angular_cdf() {
    let ring = Ring2d::default();
    let h = 1e-6;
    let n = 2000;
    for i in 0..n {
        // Interior points of (−π, π), including points next to the face boundaries.
        let t = -PI + 2e-5 + (2.0 * PI - 4e-5) * i as f64 / (n - 1) as f64;
        let d = (ring.angular_cdf(t + h) - ring.angular_cdf(t - h)) / (2.0 * h);
        let p = ring.angular_pdf(t);
        assert!((d - p).abs() < 1e-6, "θ = {t}: dF/dθ = {d}, p(θ) = {p}");
    }
}

#[test]
fn angular_cdf_boundaries_and_continuity() {
    let ring = Ring2d::default();
    assert_eq!(ring.angular_cdf(-PI), 0.0);
    assert!((ring.angular_cdf(PI) - 1.0).abs() < 1e-15);
    assert_eq!(ring.angular_cdf(-4.0), 0.0);
    assert_eq!(ring.angular_cdf(4.0), 1.0);
    assert!(ring.angular_cdf(-PI + 1e-9) < 1e-9);
    assert!(ring.angular_cdf(PI - 1e-9) > 1.0 - 1e-9);
    // Continuity at the four inner face boundaries, with the exact values 1/8, 3/8, 5/8, 7/8.
    for (k, expect) in [(1, 0.125), (3, 0.375), (5, 0.625), (7, 0.875)] {
        let b = face_edges()[k];
        let below = ring.angular_cdf(b - 1e-12);
        let at = ring.angular_cdf(b);
        let above = ring.angular_cdf(b + 1e-12);
        for v in [below, at, above] {
            assert!((v - expect).abs() < 1e-11, "F near {b}: {v} vs {expect}");
        }
    }
    // Axes are at the middle of each face: F(−π/2) = 1/4, F(0) = 1/2, F(π/2) = 3/4.
    assert!((ring.angular_cdf(-PI / 2.0) - 0.25).abs() < 1e-15);
    assert!((ring.angular_cdf(0.0) - 0.5).abs() < 1e-15);
    assert!((ring.angular_cdf(PI / 2.0) - 0.75).abs() < 1e-15);
    // Monotone on a fine grid.
    let mut prev = 0.0;
    for i in 0..=10_000 {
        let t = -PI + 2.0 * PI * i as f64 / 10_000.0;
        let f = ring.angular_cdf(t);
        assert!(f >= prev, "F not monotone at {t}");
        prev = f;
    }
}

#[test]
fn radial_cdf_and_pdf_match_scipy() {
    let ring = Ring2d::default();
    // python3 -c "from scipy.stats import gamma; print(repr(gamma.cdf(1.05, a=200, scale=1/200)))"
    // -> 0.7639696745011542
    let cdf = ring.radial_cdf(1.05);
    assert!((cdf - 0.763_969_674_501_154_2).abs() < 1e-12, "cdf = {cdf}");
    // python3 -c "from scipy.stats import gamma; print(repr(gamma.pdf(1.05, a=200, scale=1/200)))"
    // -> 4.216671840356549
    let pdf = ring.radial_pdf(1.05);
    assert!((pdf - 4.216_671_840_356_549).abs() < 1e-10, "pdf = {pdf}");
    // python3 -c "from scipy.stats import gamma; print(repr(gamma.cdf(0.5, a=2.5, scale=1/2.5)))"
    // -> 0.22350492887667728
    let small = Ring2d::new(2.5).unwrap();
    let c = small.radial_cdf(0.5);
    assert!((c - 0.223_504_928_876_677_28).abs() < 1e-12, "cdf = {c}");
    assert_eq!(ring.radial_cdf(-1.0), 0.0);
    assert_eq!(ring.radial_pdf(-1.0), 0.0);
}

#[test]
fn radial_pdf_is_derivative_of_radial_cdf() {
    for scale in [2.5, 20.0, 200.0] {
        let ring = Ring2d::new(scale).unwrap();
        let h = 1e-6;
        for i in 1..200 {
            let r = 0.01 * i as f64;
            let d = (ring.radial_cdf(r + h) - ring.radial_cdf(r - h)) / (2.0 * h);
            let p = ring.radial_pdf(r);
            assert!(
                (d - p).abs() < 1e-5 * (1.0 + p),
                "k={scale} r={r}: {d} vs {p}"
            );
        }
    }
}

#[test]
fn log_density_integrates_to_one_over_the_plane() {
    // Cartesian midpoint rule, independent of the polar factorisation used to write the density.
    for (scale, half_width, n) in [(200.0, 1.5, 1500usize), (20.0, 2.5, 1200), (3.0, 6.0, 1600)] {
        let ring = Ring2d::new(scale).unwrap();
        let h = 2.0 * half_width / n as f64;
        let mut total = 0.0;
        for i in 0..n {
            let x = -half_width + (i as f64 + 0.5) * h;
            for j in 0..n {
                let y = -half_width + (j as f64 + 0.5) * h;
                total += ring.log_density([x, y]).exp();
            }
        }
        total *= h * h;
        assert!((total - 1.0).abs() < 2e-3, "k = {scale}: ∫p = {total}");
    }
    // Polar Simpson (tight): ∫∫ p(r cos θ, r sin θ) r dr dθ.
    let ring = Ring2d::default();
    let e = face_edges();
    let total: f64 = e
        .windows(2)
        .map(|w| {
            simpson(
                |t| {
                    simpson(
                        |r| ring.log_density([r * t.cos(), r * t.sin()]).exp() * r,
                        0.4,
                        1.8,
                        400,
                    )
                },
                w[0],
                w[1],
                200,
            )
        })
        .sum();
    assert!((total - 1.0).abs() < 1e-8, "polar ∫p = {total}");
}

#[test]
fn log_density_matches_factorised_formula() {
    let ring = Ring2d::default();
    for &(x, y) in &[
        (1.0, 0.0),
        (0.7, 0.7),
        (-0.3, 0.95),
        (-1.02, -0.1),
        (0.05, -0.98),
    ] {
        let r: f64 = f64::hypot(x, y);
        let th = f64::atan2(y, x);
        let expect = (ring.radial_pdf(r) * ring.angular_pdf(th) / r).ln();
        let got = ring.log_density([x, y]);
        assert!((got - expect).abs() < 1e-10, "({x},{y}): {got} vs {expect}");
    }
}

#[test]
fn entropy_matches_scipy_and_monte_carlo() {
    let ring = Ring2d::default();
    // python3 -c "from scipy.stats import gamma; from scipy.special import digamma; import numpy as np;
    //   k=200; print(repr(gamma.entropy(a=k, scale=1/k) + digamma(k)-np.log(k) + 2*np.log(2)+2-np.pi/2))"
    // -> 0.5811070495441601
    let h = ring.entropy();
    assert!((h - 0.581_107_049_544_160_1).abs() < 1e-9, "H = {h}");
    // Monte Carlo: H = E[−ln p(x)], n = 2·10⁵; accept within 5 standard errors.
    for scale in [3.0, 200.0] {
        let ring = Ring2d::new(scale).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let n = 200_000;
        let xs = ring.sample(&mut rng, n);
        let lp: Vec<f64> = xs
            .chunks_exact(2)
            .map(|p| -ring.log_density([p[0], p[1]]))
            .collect();
        let mean = lp.iter().sum::<f64>() / n as f64;
        let var = lp.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64;
        let se = (var / n as f64).sqrt();
        let h = ring.entropy();
        assert!(
            (mean - h).abs() < 5.0 * se,
            "k={scale}: MC {mean} ± {se} vs {h}"
        );
    }
}

#[test]
fn sampling_moments_and_determinism() {
    let ring = Ring2d::new(50.0).unwrap();
    let a = ring.sample(&mut ChaCha8Rng::seed_from_u64(3), 100_000);
    let b = ring.sample(&mut ChaCha8Rng::seed_from_u64(3), 100_000);
    assert_eq!(a, b, "same seed must give the same points");
    let c = ring.sample(&mut ChaCha8Rng::seed_from_u64(4), 100_000);
    assert_ne!(a, c);
    let n = a.len() / 2;
    let radii: Vec<f64> = a.chunks_exact(2).map(|p| p[0].hypot(p[1])).collect();
    let mean = radii.iter().sum::<f64>() / n as f64;
    let var = radii.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / (n - 1) as f64;
    // E r = 1, Var r = 1/k = 0.02; SE of the mean = √(0.02/n) ≈ 4.5e-4: 5 SE bounds.
    assert!(
        (mean - 1.0).abs() < 5.0 * (0.02 / n as f64).sqrt(),
        "mean r = {mean}"
    );
    assert!((var - 0.02).abs() < 0.02 * 0.05, "var r = {var}");
}

#[test]
fn constructors_reject_bad_parameters() {
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let e = Ring2d::new(bad).unwrap_err();
        assert!(e.to_string().starts_with("scale must be"), "{e}");
    }
    assert_eq!(
        Ring2d::new(-1.0).unwrap_err().to_string(),
        "scale must be > 0 (got -1)"
    );
    assert_eq!(Ring2d::default().scale(), 200.0);

    assert_eq!(
        Gaussian::new(vec![0.0, 1.0], vec![1.0, -2.0])
            .unwrap_err()
            .to_string(),
        "std[1] must be ≥ 0 (got -2)"
    );
    assert!(matches!(
        Gaussian::new(vec![0.0], vec![1.0, 1.0]),
        Err(ref e) if e.path() == "std (length)"
    ));
    assert!(matches!(
        Gaussian::new(vec![], vec![]),
        Err(ref e) if e.requirement() == "non-empty"
    ));
    assert!(Gaussian::new(vec![f64::NAN], vec![1.0]).is_err());
}

#[test]
fn gaussian_samples_have_the_right_moments() {
    let g = Gaussian::new(vec![1.0, -3.0, 0.0], vec![0.5, 2.0, 0.0]).unwrap();
    assert_eq!(g.dim(), 3);
    let n = 100_000;
    let xs = g.sample(&mut ChaCha8Rng::seed_from_u64(9), n);
    for j in 0..3 {
        let col: Vec<f64> = xs.iter().skip(j).step_by(3).copied().collect();
        let mean = col.iter().sum::<f64>() / n as f64;
        let var = col.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64;
        let (mu, s) = (g.mean()[j], g.std()[j]);
        assert!(
            (mean - mu).abs() <= 5.0 * s / (n as f64).sqrt(),
            "coord {j}: mean {mean}"
        );
        assert!(
            (var - s * s).abs() <= 5.0 * s * s * (2.0 / n as f64).sqrt(),
            "coord {j}: var {var}"
        );
    }
    // log density of N(1, 0.25) ⊗ N(−3, 4) at the mean: −ln(0.5) − ln 2 − ln(2π).
    let g2 = Gaussian::new(vec![1.0, -3.0], vec![0.5, 2.0]).unwrap();
    let expect = -(0.5f64).ln() - 2f64.ln() - (2.0 * PI).ln();
    assert!((g2.log_density(&[1.0, -3.0]) - expect).abs() < 1e-12);
}
