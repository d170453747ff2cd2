//! Forward stochastic differential equations with analytic transition kernels.
//!
//! Every process here has the affine form `dx = f(t) x dt + g(t) dW` (in the spirit of
//! `score_sde`'s `sde_lib`), so its transition kernel is Gaussian:
//! `p(x_t | x_0) = N(m(t) x_0, σ(t)² I)`.

use rand::Rng;

/// A forward SDE `dx = f(x, t) dt + g(t) dW` with linear drift `f(x, t) = drift_coef(t) · x`
/// and Gaussian kernel `x_t | x_0 ~ N(m(t) x_0, σ(t)² I)`.
pub trait ForwardSde {
    /// `a(t)` in `f(x, t) = a(t) x`.
    fn drift_coef(&self, t: f64) -> f64;
    /// Diffusion coefficient `g(t)`.
    fn diffusion(&self, t: f64) -> f64;
    /// Mean coefficient `m(t)` of the kernel: `E[x_t | x_0] = m(t) x_0`.
    fn mean_coef(&self, t: f64) -> f64;
    /// Standard deviation `σ(t)` of the kernel.
    fn marginal_std(&self, t: f64) -> f64;
    /// End time `T` of the forward process.
    fn t_end(&self) -> f64;
    /// Standard deviation of the (isotropic Gaussian, zero-mean) prior used to start sampling.
    fn prior_std(&self) -> f64;

    /// Drift `f(x, t) = a(t) x` of one coordinate.
    fn drift(&self, x: f64, t: f64) -> f64 {
        self.drift_coef(t) * x
    }
}

/// A score function `s(x, t) ≈ ∇ₓ log p_t(x)`, evaluated on a batch at one common time.
pub trait Score {
    /// Dimension `d` of one point.
    fn dim(&self) -> usize;
    /// Write `∇ₓ log p_t` at the `n` points of `x` (row-major `n × d`) into `out` (same shape).
    fn score(&mut self, x: &[f32], t: f64, out: &mut [f32]);
}

impl<S: Score + ?Sized> Score for &mut S {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn score(&mut self, x: &[f32], t: f64, out: &mut [f32]) {
        (**self).score(x, t, out)
    }
}

/// Helper used by samplers and tests: a standard-normal vector of `out.len()` values.
pub fn fill_standard_normal<R: Rng + ?Sized>(rng: &mut R, out: &mut [f64]) {
    use rand_distr::StandardNormal;
    for v in out.iter_mut() {
        *v = rng.sample(StandardNormal);
    }
}
