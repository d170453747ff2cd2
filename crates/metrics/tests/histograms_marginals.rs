//! Histograms and 2-D marginals.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma, StandardNormal};
use smoluchowski_metrics::{angles, ks_one_sample, radii, Histogram1d, Histogram2d};
use std::f64::consts::{FRAC_PI_2, FRAC_PI_4, PI};

#[test]
fn histogram_constructors_reject_bad_parameters() {
    let e = Histogram1d::new(1.0, 1.0, 10).unwrap_err().to_string();
    assert!(e.contains("lo = 1") && e.contains("hi = 1"), "{e}");
    let e = Histogram1d::new(0.0, f64::NAN, 10).unwrap_err().to_string();
    assert!(e.contains("hi = NaN"), "{e}");
    let e = Histogram1d::new(0.0, 1.0, 0).unwrap_err().to_string();
    assert!(e.contains("bins"), "{e}");
    let e = Histogram2d::new(0.0, 1.0, 4, 2.0, -2.0, 4)
        .unwrap_err()
        .to_string();
    assert!(e.contains("y_lo = 2") && e.contains("y_hi = -2"), "{e}");
    let e = Histogram2d::new(0.0, 1.0, 4, 0.0, 1.0, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("y_bins"), "{e}");
}

#[test]
fn histogram1d_bins_edges_and_outside() {
    let mut h = Histogram1d::new(0.0, 4.0, 4).unwrap();
    h.fill(&[0.0, 0.5, 1.0, 3.999, 4.0, -0.1, 4.1, f64::NAN, 2.0]);
    assert_eq!(h.counts, vec![2, 1, 1, 2]); // x = hi belongs to the last bin
    assert_eq!(h.outside, 3);
    assert_eq!(h.total(), 9);
    assert_eq!(h.centers(), vec![0.5, 1.5, 2.5, 3.5]);
    assert_eq!(h.edges(), vec![0.0, 1.0, 2.0, 3.0, 4.0]);
    let integral: f64 = h.density().iter().map(|d| d * h.bin_width()).sum();
    assert!((integral - 6.0 / 9.0).abs() < 1e-15);
    // Empty histogram: zero density, not NaN.
    let e = Histogram1d::new(0.0, 1.0, 3).unwrap();
    assert_eq!(e.density(), vec![0.0; 3]);
}

#[test]
fn histogram1d_density_matches_normal_pdf() {
    // N = 2·10⁵ standard normal draws, 40 bins on [−3, 3]. Each count is Binomial(N, p_i);
    // we require |c_i − N p_i| < 5 sd for every bin (family-wise α ≈ 40 · 5.7e-7 < 1e-4),
    // and the in-range fraction equals the integral of the density.
    let n = 200_000;
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let x: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
    let mut h = Histogram1d::new(-3.0, 3.0, 40).unwrap();
    h.fill(&x[..n / 2]);
    h.fill(&x[n / 2..]); // filling in pieces accumulates
    let phi = |t: f64| 0.5 * libm::erfc(-t / std::f64::consts::SQRT_2);
    let edges = h.edges();
    for (i, &c) in h.counts.iter().enumerate() {
        let p = phi(edges[i + 1]) - phi(edges[i]);
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (c as f64 - n as f64 * p).abs() < 5.0 * sd,
            "bin {i}: {c} vs {}",
            n as f64 * p
        );
    }
    let inside = h.counts.iter().sum::<u64>() as f64 / n as f64;
    let integral: f64 = h.density().iter().map(|d| d * h.bin_width()).sum();
    assert!((integral - inside).abs() < 1e-12);
    let p_in = phi(3.0) - phi(-3.0);
    assert!((inside - p_in).abs() < 5.0 * (p_in * (1.0 - p_in) / n as f64).sqrt());
}

#[test]
fn histogram2d_layout_and_density() {
    let mut h = Histogram2d::new(0.0, 2.0, 2, 0.0, 3.0, 3).unwrap();
    // (x bin, y bin): (0,0), (1,2), (1,2), (0,1); then two outside points and a NaN.
    h.fill(&[
        0.1,
        0.1,
        1.5,
        2.5,
        2.0,
        3.0,
        0.9,
        1.2,
        -1.0,
        0.5,
        0.5,
        3.5,
        f64::NAN,
        1.0,
    ]);
    assert_eq!(h.counts, vec![1, 1, 0, 0, 0, 2]);
    assert_eq!(h.outside, 3);
    let c = h.centers();
    assert_eq!(&c[..4], &[0.5, 0.5, 0.5, 1.5]);
    assert_eq!(&c[10..], &[1.5, 2.5]);
    let (wx, wy) = h.bin_widths();
    let integral: f64 = h.density().iter().map(|d| d * wx * wy).sum();
    assert!((integral - 4.0 / 7.0).abs() < 1e-15);
    assert_eq!(h.x_centers(), vec![0.5, 1.5]);
    assert_eq!(h.y_centers(), vec![0.5, 1.5, 2.5]);
}

#[test]
fn radii_and_angles_of_known_points() {
    let pts = [
        1.0, 0.0, 0.0, 1.0, -1.0, 0.0, -1.0, -0.0, 0.0, -1.0, 3.0, 4.0, -1.0, -1.0,
    ];
    let r = radii(&pts);
    assert_eq!(r, vec![1.0, 1.0, 1.0, 1.0, 1.0, 5.0, 2f64.sqrt()]);
    let a = angles(&pts);
    assert_eq!(a[0], 0.0);
    assert_eq!(a[1], FRAC_PI_2);
    assert_eq!(a[2], PI);
    assert_eq!(a[3], PI); // atan2(−0, −1) = −π is reported as +π: range (−π, π]
    assert_eq!(a[4], -FRAC_PI_2);
    assert!((a[6] + 3.0 * FRAC_PI_4).abs() < 1e-15);
    assert!(angles(&[]).is_empty());
}

/// CDF of θ = atan2(y, x) for u uniform in the square [−1, 1]² (NOTES.md, ring2d):
/// per face, F(θ) = F(face start) + (tan(θ − face centre) + 1)/8.
fn square_angle_cdf(t: f64) -> f64 {
    if t < -3.0 * FRAC_PI_4 {
        (t + PI).tan() / 8.0
    } else if t < -FRAC_PI_4 {
        1.0 / 8.0 + ((t + FRAC_PI_2).tan() + 1.0) / 8.0
    } else if t < FRAC_PI_4 {
        3.0 / 8.0 + (t.tan() + 1.0) / 8.0
    } else if t < 3.0 * FRAC_PI_4 {
        5.0 / 8.0 + ((t - FRAC_PI_2).tan() + 1.0) / 8.0
    } else {
        7.0 / 8.0 + ((t - PI).tan() + 1.0) / 8.0
    }
}

#[test]
fn ring2d_marginals_pass_ks_against_their_exact_laws() {
    // ring2d: direction of u ~ U([−1,1]²) times r ~ Gamma(k, rate k), k = 200.
    let n = 20_000;
    let k = 200.0;
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let gamma = Gamma::new(k, 1.0 / k).unwrap();
    let mut pts = Vec::with_capacity(2 * n);
    for _ in 0..n {
        let (ux, uy): (f64, f64) = (rng.gen_range(-1.0..1.0), rng.gen_range(-1.0..1.0));
        let norm = ux.hypot(uy);
        let r: f64 = gamma.sample(&mut rng);
        pts.push(r * ux / norm);
        pts.push(r * uy / norm);
    }
    let th = angles(&pts);
    assert!(th.iter().all(|t| *t > -PI && *t <= PI));
    let ka = ks_one_sample(&th, square_angle_cdf);
    assert!(ka.pvalue > 1e-3, "angles: {ka:?}");
    use statrs::distribution::{ContinuousCDF, Gamma as GammaLaw};
    let law = GammaLaw::new(k, k).unwrap();
    let kr = ks_one_sample(&radii(&pts), |x| law.cdf(x));
    assert!(kr.pvalue > 1e-3, "radii: {kr:?}");
    // Power: the folded arctan(y/x) of the original notes is not the angle law.
    let folded: Vec<f64> = pts.chunks_exact(2).map(|p| (p[1] / p[0]).atan()).collect();
    assert!(ks_one_sample(&folded, square_angle_cdf).pvalue < 1e-10);
}
