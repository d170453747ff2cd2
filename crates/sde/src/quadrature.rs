//! Gauss–Legendre quadrature nodes.

/// Gauss–Legendre rule with `n ≥ 1` nodes on `[−1, 1]`: `∫₋₁¹ f ≈ Σ_i w_i f(ξ_i)`, exact for
/// polynomials of degree `≤ 2n − 1`.
///
/// Nodes are the roots of the Legendre polynomial `P_n`, found by Newton's method from
/// Tricomi's initial guess `cos(π (i + ¾) / (n + ½))`; weights `w_i = 2 / ((1 − ξ_i²) P_n'(ξ_i)²)`.
/// Returned in increasing order of `ξ`.
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    assert!(n >= 1, "gauss_legendre: need n ≥ 1");
    let mut x = vec![0.0; n];
    let mut w = vec![0.0; n];
    let nf = n as f64;
    for i in 0..n.div_ceil(2) {
        let mut z = (std::f64::consts::PI * (i as f64 + 0.75) / (nf + 0.5)).cos();
        let mut dp = 0.0;
        for _ in 0..100 {
            // P_n(z) and P_n'(z) by the three-term recurrence.
            let (mut p0, mut p1) = (1.0, z);
            for k in 2..=n {
                let kf = k as f64;
                let p2 = ((2.0 * kf - 1.0) * z * p1 - (kf - 1.0) * p0) / kf;
                p0 = p1;
                p1 = p2;
            }
            let pn = if n == 1 { z } else { p1 };
            let pm = if n == 1 { 1.0 } else { p0 };
            dp = nf * (z * pn - pm) / (z * z - 1.0);
            let dz = pn / dp;
            z -= dz;
            if dz.abs() < 1e-16 {
                break;
            }
        }
        let wi = 2.0 / ((1.0 - z * z) * dp * dp);
        x[i] = -z;
        x[n - 1 - i] = z;
        w[i] = wi;
        w[n - 1 - i] = wi;
    }
    if n % 2 == 1 {
        x[n / 2] = 0.0;
    }
    (x, w)
}

#[cfg(test)]
mod tests {
    use super::gauss_legendre;

    #[test]
    fn exact_for_polynomials() {
        for n in 1..40 {
            let (x, w) = gauss_legendre(n);
            assert!((w.iter().sum::<f64>() - 2.0).abs() < 1e-13, "n={n}");
            for deg in 0..(2 * n) {
                let q: f64 = x
                    .iter()
                    .zip(&w)
                    .map(|(&x, &w)| w * x.powi(deg as i32))
                    .sum();
                let exact = if deg % 2 == 1 {
                    0.0
                } else {
                    2.0 / (deg as f64 + 1.0)
                };
                assert!((q - exact).abs() < 1e-13, "n={n} deg={deg}: {q} vs {exact}");
            }
            assert!(x.windows(2).all(|p| p[0] < p[1]));
        }
    }
}
