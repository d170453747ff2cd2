//! Forward stochastic differential equations with analytic transition kernels.
//!
//! Every process here has the affine form `dx = f(t) x dt + g(t) dW` (in the spirit of
//! `score_sde`'s `sde_lib`), so its transition kernel is Gaussian:
//! `p(x_t | x_0) = N(m(t) x_0, σ(t)² I)`.
//!
//! Exact oracles for the diffused data law `p_t = p₀ ∗ kernel`:
//! [`GaussianOracle`] (Gaussian data), [`MixtureOracle`] (Gaussian mixtures, closed form),
//! [`Ring2dOracle`] (`ring2d`, by quadrature). [`fokker_planck`] solves the 1-D
//! Fokker–Planck equation of any of the SDEs numerically, for data without a closed form.

use rand::Rng;
use rand_distr::StandardNormal;

mod config;
pub mod ddpm;
mod em;
pub mod ensemble;
mod error;
pub mod fokker_planck;
mod forward_draws;
mod fp_grid;
mod fp_processes;
mod mixture_oracle;
mod oracle;
mod ou;
mod particles;
mod point_runs;
mod quadrature;
mod ring_checks;
mod ring_oracle;
mod sde_enum;
mod vp;

pub use config::{SdeConfig, SdeKind};
pub use ddpm::{DdpmKernel, DdpmSchedule, DdpmScheduleKind, COSINE_MAX_BETA};
pub use em::{euler_maruyama, Trajectories};
pub use ensemble::{run_chunks, simulate_ensemble, FpCheckpoints, Stop};
pub use error::{ParamError, ParameterError, SdeError};
pub use fokker_planck::{FokkerPlanck1d, TimeScheme};
pub use forward_draws::{ddpm_vp_kernel_gap, forward_marginal_draws};
pub use fp_grid::FpGridConfig;
pub use fp_processes::{FpParticles, FreeTimes, OuTimes, VpTimes, MAX_CHECKPOINTS};
pub use mixture_oracle::{LabelledMixtureOracle, MixtureOracle};
pub use oracle::GaussianOracle;
pub use ou::OuSde;
pub use particles::{
    check_divides, check_times, ensemble_memory, ensemble_paths, stops_every, whole_steps,
};
pub use point_runs::{FreeDiffusionRun, OuRun, PointRelease, MAX_DRAWN, RELEASE_CHUNK};
pub use quadrature::gauss_legendre;
pub use ring_checks::{ring_radius_floor, score_relative_error, time_at_marginal_std, RadiusFloor};
pub use ring_oracle::Ring2dOracle;
pub use sde_enum::Sde;
pub use vp::{SubVpSde, VpSde};

/// `ln √(2π)`.
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// Standard normal CDF `Φ(z) = ½ erfc(−z / √2)` (libm's `erfc`, accurate to ~1 ulp in both
/// tails; statrs' `erfc` is off by ~1e-11 relative in the far tail).
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

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

    /// Exact kernel sample, coordinate-wise: `out_i = m(t) x0_i + σ(t) ε_i`, `ε_i ~ N(0, 1)`.
    ///
    /// Panics if `x0.len() != out.len()`.
    fn sample_marginal<R: Rng + ?Sized>(&self, x0: &[f64], t: f64, rng: &mut R, out: &mut [f64])
    where
        Self: Sized,
    {
        assert_eq!(
            x0.len(),
            out.len(),
            "sample_marginal: x0 and out must have equal length"
        );
        let m = self.mean_coef(t);
        let s = self.marginal_std(t);
        for (o, &x) in out.iter_mut().zip(x0) {
            let e: f64 = rng.sample(StandardNormal);
            *o = m * x + s * e;
        }
    }

    /// One-dimensional kernel CDF `P(x_t ≤ x | x_0) = Φ((x − m(t) x_0) / σ(t))`
    /// (a unit step at `m x_0` when `σ(t) = 0`).
    fn marginal_cdf(&self, x0: f64, t: f64, x: f64) -> f64 {
        let mu = self.mean_coef(t) * x0;
        let s = self.marginal_std(t);
        if s > 0.0 {
            normal_cdf((x - mu) / s)
        } else if x >= mu {
            1.0
        } else {
            0.0
        }
    }

    /// Kernel log-density `log p(x_t = x | x_0) = Σ_i [−(x_i − m x0_i)² / (2σ²) − ln σ − ½ ln 2π]`
    /// summed over all coordinates of the buffers (the log-density of one point when `x` holds
    /// one point; the joint log-density of all points otherwise).
    ///
    /// Panics if `x.len() != x0.len()`.
    fn marginal_log_density(&self, x: &[f64], x0: &[f64], t: f64) -> f64 {
        assert_eq!(
            x.len(),
            x0.len(),
            "marginal_log_density: x and x0 must have equal length"
        );
        let m = self.mean_coef(t);
        let s = self.marginal_std(t);
        let inv = 1.0 / s;
        let ss: f64 = x
            .iter()
            .zip(x0)
            .map(|(&x, &x0)| {
                let z = (x - m * x0) * inv;
                z * z
            })
            .sum();
        -0.5 * ss - x.len() as f64 * (s.ln() + LN_SQRT_2PI)
    }

    /// Fill `out` with i.i.d. prior draws `N(0, prior_std()²)`.
    fn sample_prior<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f64])
    where
        Self: Sized,
    {
        let s = self.prior_std();
        for o in out.iter_mut() {
            let e: f64 = rng.sample(StandardNormal);
            *o = s * e;
        }
    }

    /// Prior log-density `Σ_i [−x_i² / (2 s²) − ln s − ½ ln 2π]`, `s = prior_std()`, summed over
    /// all coordinates of `x` (the log-density of one point when `x` holds one point).
    fn prior_log_density(&self, x: &[f64]) -> f64 {
        let s = self.prior_std();
        let inv = 1.0 / s;
        let ss: f64 = x.iter().map(|&v| (v * inv) * (v * inv)).sum();
        -0.5 * ss - x.len() as f64 * (s.ln() + LN_SQRT_2PI)
    }
}

/// A score function `s(x, t) ≈ ∇ₓ log p_t(x)`, evaluated on a batch at one common time.
pub trait Score {
    /// Dimension `d` of one point.
    fn dim(&self) -> usize;
    /// Write `∇ₓ log p_t` at the `n` points of `x` (row-major `n × d`) into `out` (same shape).
    fn score(&mut self, x: &[f32], t: f64, out: &mut [f32]);
    /// Network evaluations one [`Score::score`] call at `t` costs, for NFE accounting: 1 (the
    /// default); 2 for a classifier-free-guided score inside its guidance interval (the
    /// conditional and the unconditional evaluation, counted as 2 even when batched together,
    /// the usual convention).
    fn network_evaluations(&self, _t: f64) -> usize {
        1
    }
}

impl<S: Score + ?Sized> Score for &mut S {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn score(&mut self, x: &[f32], t: f64, out: &mut [f32]) {
        (**self).score(x, t, out)
    }
    fn network_evaluations(&self, t: f64) -> usize {
        (**self).network_evaluations(t)
    }
}

/// A score model that takes a discrete condition: `s(x, t, c) ≈ ∇ₓ log p_t(x | c)` for a class
/// `c ∈ {0, …, classes − 1}`, and `s(x, t, ∅) ≈ ∇ₓ log p_t(x)` for the null condition
/// (`label = None`). A conditional network trained with label dropout provides both from one
/// set of weights; the exact Gaussian-mixture oracle provides both in closed form.
pub trait ConditionalScore {
    /// Dimension `d` of one point.
    fn dim(&self) -> usize;
    /// Number of classes (labels `0..classes`).
    fn classes(&self) -> usize;
    /// Writes `s(x, t, label)` (`label = None`: the unconditional score) at the `n` points of
    /// `x` (row-major `n × d`) into `out`.
    fn conditional_score(&mut self, x: &[f32], t: f64, label: Option<usize>, out: &mut [f32]);
}

impl<S: ConditionalScore + ?Sized> ConditionalScore for &mut S {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn classes(&self) -> usize {
        (**self).classes()
    }
    fn conditional_score(&mut self, x: &[f32], t: f64, label: Option<usize>, out: &mut [f32]) {
        (**self).conditional_score(x, t, label, out)
    }
}

/// A score that also knows its divergence `∇·s = Σ_j ∂s_j/∂x_j = tr ∇ₓs` exactly (closed form
/// or forward-mode differentiation), for exact probability-flow likelihoods.
pub trait ScoreDivergence: Score {
    /// Writes `s(x, t)` for the `n` rows of `x` (row-major `n × d`) into `score_out`
    /// (same shape) and `∇ₓ·s(x_r, t)` of each row `r` into `div_out` (length `n`).
    fn score_and_divergence(
        &mut self,
        x: &[f32],
        t: f64,
        score_out: &mut [f32],
        div_out: &mut [f64],
    );
}

impl<T: ScoreDivergence + ?Sized> ScoreDivergence for &mut T {
    fn score_and_divergence(
        &mut self,
        x: &[f32],
        t: f64,
        score_out: &mut [f32],
        div_out: &mut [f64],
    ) {
        (**self).score_and_divergence(x, t, score_out, div_out)
    }
}

impl<S: ForwardSde> ScoreDivergence for GaussianOracle<S> {
    /// The score `−(x_j − m μ_j)/v_j` is linear with Jacobian `diag(−1/v_j)`, so
    /// `∇·s = −Σ_j 1/v_j(t)`, `v_j = m(t)² s_j² + σ(t)²`, the same for every row.
    fn score_and_divergence(
        &mut self,
        x: &[f32],
        t: f64,
        score_out: &mut [f32],
        div_out: &mut [f64],
    ) {
        self.score(x, t, score_out);
        let div: f64 = -(0..self.dim())
            .map(|j| 1.0 / self.marginal_var(j, t))
            .sum::<f64>();
        div_out.fill(div);
    }
}

/// Helper used by samplers and tests: a standard-normal vector of `out.len()` values.
pub fn fill_standard_normal<R: Rng + ?Sized>(rng: &mut R, out: &mut [f64]) {
    for v in out.iter_mut() {
        *v = rng.sample(StandardNormal);
    }
}
