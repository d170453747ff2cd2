//! The Fréchet distance between Gaussians fitted to two sets of feature vectors (the "FID" of
//! Heusel et al. 2017 when the features come from a classifier):
//! `FD = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2})`,
//! the squared 2-Wasserstein distance between `N(μ₁, Σ₁)` and `N(μ₂, Σ₂)`. The matrix square
//! roots come from symmetric eigendecompositions (`nalgebra`), so no complex `sqrtm` of the
//! non-symmetric `Σ₁Σ₂` is needed: `tr((Σ₁Σ₂)^{1/2}) = tr((Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2})`.

use nalgebra::{DMatrix, DVector, SymmetricEigen};
use smoluchowski_core::ParamError;

/// Mean and (unbiased, `n − 1`) covariance of feature rows.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianMoments {
    /// `μ` (length `d`).
    pub mean: Vec<f64>,
    /// `Σ`, row-major `d × d`.
    pub cov: Vec<f64>,
    /// Number of rows.
    pub n: usize,
}

impl GaussianMoments {
    /// The moments of `rows` (`n × d`, row-major; `n ≥ 2`).
    pub fn of(rows: &[f64], d: usize) -> Result<Self, ParamError> {
        if d == 0 || !rows.len().is_multiple_of(d) {
            return Err(ParamError::new(
                "rows (length)",
                rows.len(),
                format!("a multiple of d = {d}"),
            ));
        }
        let n = rows.len() / d;
        if n < 2 {
            return Err(ParamError::new("rows (count)", n, ">= 2"));
        }
        let mut mean = vec![0.0; d];
        for r in rows.chunks_exact(d) {
            mean.iter_mut().zip(r).for_each(|(m, v)| *m += v);
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut cov = vec![0.0; d * d];
        let mut c = vec![0.0; d];
        for r in rows.chunks_exact(d) {
            c.iter_mut()
                .zip(r)
                .zip(&mean)
                .for_each(|((c, v), m)| *c = v - m);
            for i in 0..d {
                for j in i..d {
                    cov[i * d + j] += c[i] * c[j];
                }
            }
        }
        for i in 0..d {
            for j in i..d {
                let v = cov[i * d + j] / (n - 1) as f64;
                cov[i * d + j] = v;
                cov[j * d + i] = v;
            }
        }
        Ok(GaussianMoments { mean, cov, n })
    }

    fn dim(&self) -> usize {
        self.mean.len()
    }
}

/// `A^{1/2}` of a symmetric positive semi-definite `A` (negative eigenvalues from rounding are
/// clamped to 0).
fn sym_sqrt(a: DMatrix<f64>) -> DMatrix<f64> {
    let e = SymmetricEigen::new(a);
    let s = DVector::from_iterator(
        e.eigenvalues.len(),
        e.eigenvalues.iter().map(|l| l.max(0.0).sqrt()),
    );
    &e.eigenvectors * DMatrix::from_diagonal(&s) * e.eigenvectors.transpose()
}

/// `FD(N(μ₁, Σ₁), N(μ₂, Σ₂))` (see the module docs). Panics if the dimensions differ.
pub fn frechet_distance(a: &GaussianMoments, b: &GaussianMoments) -> f64 {
    let d = a.dim();
    assert_eq!(d, b.dim(), "feature dimensions differ");
    let mean2: f64 = a
        .mean
        .iter()
        .zip(&b.mean)
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    let s1 = DMatrix::from_row_slice(d, d, &a.cov);
    let s2 = DMatrix::from_row_slice(d, d, &b.cov);
    let r = sym_sqrt(s1.clone());
    let mut m = &r * &s2 * &r;
    m = (&m + m.transpose()) * 0.5; // symmetric up to rounding
    let cross: f64 = SymmetricEigen::new(m)
        .eigenvalues
        .iter()
        .map(|l| l.max(0.0).sqrt())
        .sum();
    (mean2 + s1.trace() + s2.trace() - 2.0 * cross).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(mean: &[f64], cov: &[f64]) -> GaussianMoments {
        GaussianMoments {
            mean: mean.to_vec(),
            cov: cov.to_vec(),
            n: 0,
        }
    }

    #[test]
    fn one_dimension_is_the_wasserstein_formula() {
        // W₂²(N(μ₁, σ₁²), N(μ₂, σ₂²)) = (μ₁ − μ₂)² + (σ₁ − σ₂)².
        let fd = frechet_distance(&moments(&[1.0], &[4.0]), &moments(&[-0.5], &[0.25]));
        assert!((fd - (2.25 + 2.25)).abs() < 1e-12, "{fd}");
    }

    /// A non-commuting pair against SciPy 1.17.1:
    /// `sum((m1-m2)**2) + trace(A + B - 2 sqrtm(A @ B).real)` = 4.246510876578633.
    #[test]
    fn matches_scipy_sqrtm_for_non_commuting_covariances() {
        let a = moments(
            &[0.3, -1.0, 2.0],
            &[2.0, 0.3, -0.4, 0.3, 1.0, 0.2, -0.4, 0.2, 0.5],
        );
        let b = moments(
            &[-0.2, 0.5, 1.0],
            &[1.0, -0.6, 0.1, -0.6, 1.5, 0.0, 0.1, 0.0, 0.3],
        );
        let fd = frechet_distance(&a, &b);
        assert!((fd - 4.246510876578633).abs() < 1e-10, "{fd}");
        assert!((frechet_distance(&b, &a) - fd).abs() < 1e-10, "symmetric");
        assert!(frechet_distance(&a, &a).abs() < 1e-10);
    }

    #[test]
    fn moments_are_the_unbiased_estimates() {
        let rows = [1.0, 2.0, 3.0, 6.0, 5.0, 4.0];
        let m = GaussianMoments::of(&rows, 2).unwrap();
        assert_eq!(m.mean, vec![3.0, 4.0]);
        // deviations (−2, −2), (0, 2), (2, 0): Σ = [[8, 4], [4, 8]] / 2
        assert_eq!(m.cov, vec![4.0, 2.0, 2.0, 4.0]);
        assert!(GaussianMoments::of(&rows[..2], 2).is_err());
        assert!(GaussianMoments::of(&rows[..5], 2).is_err());
    }
}
