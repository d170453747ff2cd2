//! The samplers, one file per solver. A solver is built from its [`Method`](crate::Method)
//! parameters by [`Method::build`](crate::Method::build), owns its per-batch state (buffers,
//! the `x̂₀` history of the multistep methods, the f64 state of Dormand–Prince), performs one
//! grid step `t → t'` at a time, and reports its own NFE rule. The loop over the grid
//! (callbacks, recording, NFE counting, final denoising) is written once, in the driver.
//!
//! Adding a sampler = one file here implementing [`Solver`] + one `Method` variant + one arm
//! in `Method::build`.
//!
//! Shared step helpers live in this module: [`StepContext`] (the score with NFE counting, the
//! kernel `(m, σ)`, the two drifts, the seeded noise of the crate's layout), [`x0_hat`] and
//! [`log_snr_step`].

use std::fmt;

use smoluchowski_sde::{ForwardSde, Score};

use crate::dynamics::linear_plus_score;
use crate::error::SamplerError;
use crate::noise::{add_scaled_and_noise, affine_and_noise, fill_scaled_normal, NoiseEvent};

mod ddim;
mod ddpm_ancestral;
mod dormand_prince;
mod dpm_solver_pp_2m;
mod dpm_solver_pp_3m;
mod edm_heun;
mod euler_maruyama;
mod predictor_corrector;
mod probability_flow;
mod unipc;

pub use ddim::Ddim;
pub use ddpm_ancestral::DdpmAncestral;
pub use dormand_prince::DormandPrince;
pub use dpm_solver_pp_2m::DpmSolverPp2M;
pub use dpm_solver_pp_3m::DpmSolverPp3M;
pub use edm_heun::EdmHeun;
pub use euler_maruyama::EulerMaruyama;
pub use predictor_corrector::PredictorCorrector;
pub use probability_flow::{ProbabilityFlowEuler, ProbabilityFlowHeun};
pub use unipc::UniPc;

/// One step of the grid: from `t = t_index` to `t_next = t_{index+1}`, of `steps` in all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GridStep {
    /// 0-based step index `i` (the `step` of its [`NoiseEvent`]s).
    pub index: usize,
    /// Number of steps of the grid.
    pub steps: usize,
    /// Start time `t_i`.
    pub t: f64,
    /// End time `t_{i+1} < t_i`.
    pub t_next: f64,
}

impl GridStep {
    /// Whether this is the last step (ending at `t_eps`).
    pub fn is_last(&self) -> bool {
        self.index + 1 == self.steps
    }

    /// Noise event of stage `stage` of this step.
    pub fn event(&self, stage: usize) -> NoiseEvent {
        NoiseEvent::step(self.index, stage)
    }
}

/// An integrator over the time grid, with its own state for one batch.
///
/// The driver calls [`Solver::start`] once with the initial state, then [`Solver::step`] for
/// every grid step in order. Arithmetic is f64 per element on an f32 state.
pub trait Solver: fmt::Debug {
    /// Checks the parameters; errors name the field, e.g. `method.eta`.
    fn validate(&self) -> Result<(), SamplerError>;

    /// Score evaluations used by `steps` grid steps (final denoising not included), or `None`
    /// for an adaptive solver. Default: `steps × nfe_per_step`.
    fn nfe(&self, steps: usize) -> Option<usize> {
        Some(steps * self.nfe_per_step()?)
    }

    /// The most score evaluations any one step uses, or `None` if adaptive.
    fn nfe_per_step(&self) -> Option<usize>;

    /// The inverse of [`Solver::nfe`]: the largest step count `n ≥ 1` with
    /// `nfe(n) ≤ budget` (final denoising not included: subtract it from the budget first);
    /// `None` if even one step exceeds the budget, or if adaptive.
    /// Default: `⌊budget / nfe_per_step⌋`.
    fn steps_for_nfe(&self, budget: usize) -> Option<usize> {
        let steps = budget / self.nfe_per_step()?;
        (steps >= 1).then_some(steps)
    }

    /// The NFE rule in words, e.g. `"1 per step"`, `"2 per step, last step 1"`, `"adaptive"`.
    fn nfe_rule(&self) -> String;

    /// Allocates the state for a run from the initial batch `x` (`n × dim`, row-major) and
    /// resets any history.
    fn start(&mut self, x: &[f32], dim: usize);

    /// Moves `x` from `step.t` to `step.t_next`.
    fn step(
        &mut self,
        ctx: &mut StepContext<'_>,
        x: &mut [f32],
        step: GridStep,
    ) -> Result<(), SamplerError>;

    /// The driver overwrote some entries of `x` between steps (inpainting's replacement of the
    /// known coordinates): a solver that keeps its own copy of the state takes the changed
    /// entries over. Default: nothing (the solvers that step `x` itself; their multistep
    /// histories of `x̂₀` are kept, as in every inpainting implementation).
    fn state_overwritten(&mut self, _x: &[f32]) {}
}

/// The forward SDE's coefficients as the solvers use them (object safe).
pub(crate) trait Coefficients {
    fn drift_coef(&self, t: f64) -> f64;
    fn diffusion(&self, t: f64) -> f64;
    fn mean_coef(&self, t: f64) -> f64;
    fn marginal_std(&self, t: f64) -> f64;
}

/// Any `&S: ForwardSde` (sized or not) as [`Coefficients`].
pub(crate) struct SdeRef<'a, S: ?Sized>(pub(crate) &'a S);

impl<S: ForwardSde + ?Sized> Coefficients for SdeRef<'_, S> {
    fn drift_coef(&self, t: f64) -> f64 {
        self.0.drift_coef(t)
    }
    fn diffusion(&self, t: f64) -> f64 {
        self.0.diffusion(t)
    }
    fn mean_coef(&self, t: f64) -> f64 {
        self.0.mean_coef(t)
    }
    fn marginal_std(&self, t: f64) -> f64 {
        self.0.marginal_std(t)
    }
}

/// What a step may use: the score (every evaluation counted), the SDE's coefficients and the
/// run's seeded noise.
pub struct StepContext<'a> {
    sde: &'a dyn Coefficients,
    model: &'a mut dyn Score,
    dim: usize,
    seed: u64,
    nfe: usize,
}

impl<'a> StepContext<'a> {
    pub(crate) fn new(
        sde: &'a dyn Coefficients,
        model: &'a mut dyn Score,
        dim: usize,
        seed: u64,
    ) -> Self {
        Self {
            sde,
            model,
            dim,
            seed,
            nfe: 0,
        }
    }

    /// Dimension of a row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Score evaluations so far.
    pub fn nfe(&self) -> usize {
        self.nfe
    }

    /// `out = s(x, t)` on the whole batch (one call; counted as the model's
    /// [`Score::network_evaluations`], 1 for a plain score, 2 for a guided one inside its
    /// guidance interval).
    pub fn score(&mut self, x: &[f32], t: f64, out: &mut [f32]) {
        self.model.score(x, t, out);
        self.nfe += self.model.network_evaluations(t);
    }

    /// Replaces the seed of the run's noise (RePaint's later passes over a block of steps draw
    /// fresh noise under a derived seed).
    pub(crate) fn set_seed(&mut self, seed: u64) {
        self.seed = seed;
    }

    /// The seed of the run's noise.
    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }

    /// `(m, σ)` at `t`: the kernel `x_t = m(t) x₀ + σ(t) ε`.
    pub fn kernel(&self, t: f64) -> (f64, f64) {
        (self.sde.mean_coef(t), self.sde.marginal_std(t))
    }

    /// `m(t)`.
    pub fn mean_coef(&self, t: f64) -> f64 {
        self.sde.mean_coef(t)
    }

    /// `σ(t)`.
    pub fn marginal_std(&self, t: f64) -> f64 {
        self.sde.marginal_std(t)
    }

    /// Linear drift coefficient `a(t)` (`f(x, t) = a(t) x`).
    pub fn drift_coef(&self, t: f64) -> f64 {
        self.sde.drift_coef(t)
    }

    /// Diffusion `g(t)`.
    pub fn diffusion(&self, t: f64) -> f64 {
        self.sde.diffusion(t)
    }

    /// `out = f(x,t) − g² s(x,t)` (one evaluation), as [`reverse_drift`](crate::reverse_drift).
    pub fn reverse_drift(&mut self, x: &[f32], t: f64, out: &mut [f32]) {
        self.score(x, t, out);
        let g = self.sde.diffusion(t);
        linear_plus_score(self.sde.drift_coef(t), -g * g, x, out);
    }

    /// `out = f(x,t) − ½ g² s(x,t)` (one evaluation), as
    /// [`probability_flow_drift`](crate::probability_flow_drift).
    pub fn probability_flow_drift(&mut self, x: &[f32], t: f64, out: &mut [f32]) {
        self.score(x, t, out);
        let g = self.sde.diffusion(t);
        linear_plus_score(self.sde.drift_coef(t), -0.5 * g * g, x, out);
    }

    /// `buf ← c · z`, `z ~ N(0, I)` from `(seed, event)`.
    pub fn fill_noise(&self, buf: &mut [f32], c: f64, event: NoiseEvent) {
        fill_scaled_normal(buf, c, self.dim, self.seed, event);
    }

    /// `x ← x + b · y + c · z`, `z ~ N(0, I)` from `(seed, event)`, in f64.
    pub fn add_scaled_and_noise(&self, x: &mut [f32], y: &[f32], b: f64, c: f64, e: NoiseEvent) {
        add_scaled_and_noise(x, y, b, c, self.dim, self.seed, e);
    }

    /// `x ← a · x + b · y + c · z`, `z ~ N(0, I)` from `(seed, event)`, in f64.
    pub fn affine_and_noise(
        &self,
        x: &mut [f32],
        y: &[f32],
        (a, b, c): (f64, f64, f64),
        event: NoiseEvent,
    ) {
        affine_and_noise(x, y, a, b, c, self.dim, self.seed, event);
    }

    /// Tweedie's denoiser at `t` (one evaluation, into `buf`): `x ← (x + σ(t)² s(x,t)) / m(t)`.
    pub(crate) fn tweedie_denoise(&mut self, x: &mut [f32], t: f64, buf: &mut [f32]) {
        self.score(x, t, buf);
        let sig = self.sde.marginal_std(t);
        let (var, inv_m) = (sig * sig, 1.0 / self.sde.mean_coef(t));
        for (xi, &s) in x.iter_mut().zip(buf.iter()) {
            *xi = x0_hat(f64::from(*xi), f64::from(s), var, inv_m) as f32;
        }
    }
}

/// The data prediction `x̂₀ = (x + σ² s) · (1/m)`, given `var = σ²` and `inv_m = 1/m`.
#[inline]
pub fn x0_hat(x: f64, s: f64, var: f64, inv_m: f64) -> f64 {
    (x + var * s) * inv_m
}

/// `h = λ' − λ` with `λ = ln(m/σ)`, from the kernels `(m, σ)` at `t` and `(m', σ')` at `t'`.
#[inline]
pub fn log_snr_step((m, sig): (f64, f64), (m2, sig2): (f64, f64)) -> f64 {
    (m2.ln() - sig2.ln()) - (m.ln() - sig.ln())
}

/// A zeroed buffer of `len` elements, reusing `buf`'s allocation.
pub(crate) fn zeroed(buf: &mut Vec<f32>, len: usize) {
    buf.clear();
    buf.resize(len, 0.0);
}
