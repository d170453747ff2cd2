//! Samplers for score-based diffusion models, in the style of k-diffusion's `sampling.py`.
//!
//! Every sampler works for any forward SDE `dx = f(x,t) dt + g(t) dW`
//! ([`ForwardSde`]) and any batched score model `s(x,t) ≈ ∇ log p_t(x)` ([`Score`]); the state
//! is f32, coefficients are f64. Two dynamics are derived once from `(sde, score)`:
//! - the reverse SDE `dx = [f(x,t) − g(t)² s(x,t)] dt + g(t) dW̄`, from `T` down to `t_eps`
//!   ([`reverse_drift`]);
//! - the probability-flow ODE `dx/dt = f(x,t) − ½ g(t)² s(x,t)` ([`probability_flow_drift`]).
//!
//! [`sample`] starts from the prior `N(0, prior_std² I)` and walks a [`TimeGrid`] with the
//! [`Method`] of a [`SamplerConfig`]: reverse-SDE Euler–Maruyama, probability-flow Euler/Heun,
//! predictor–corrector, and the few-step samplers DDIM (η ≥ 0), EDM Heun, DPM-Solver++(2M)
//! and adaptive Dormand–Prince 5(4). Grids ([`GridSpacing`]) are values: uniform, quadratic,
//! log-SNR, Karras. All noise is seeded per (seed, step, row chunk) (see [`noise`]), so
//! results are bit-identical for any number of threads.
//!
//! [`sample_ddpm`] runs the discrete DDPM chain of a [`DdpmSchedule`] (linear or cosine β) by
//! ancestral sampling from any score; [`ddpm`] documents its exact correspondence with the VP
//! SDE (`β(t) = N β_lin(t)`, `ᾱ_i = m(i/N)² + O(1/N)`).
//!
//! [`log_likelihood`] / [`log_likelihood_exact`] integrate the probability-flow ODE from
//! `t_eps` to `T` jointly with `∫ ∇·ṽ dt` for exact log-likelihoods
//! `log p_{t_eps}(x) = log p_T(x_T) + ∫_{t_eps}^T ∇·ṽ(x_t, t) dt`, with the divergence in closed
//! form ([`ScoreDivergence`]), by finite differences along the axes, or by Hutchinson's
//! estimator.

mod config;
pub mod ddpm;
mod dynamics;
mod error;
mod grid;
pub mod langevin;
mod likelihood;
mod methods;
pub mod noise;
mod ode;

use serde::{Deserialize, Serialize};
use smoluchowski_sde::{ForwardSde, Score};

pub use config::{Method, SamplerConfig};
pub use ddpm::{sample_ddpm, DdpmSchedule, DdpmScheduleKind, DdpmVariance, COSINE_MAX_BETA};
pub use dynamics::{probability_flow_drift, reverse_drift};
pub use error::SamplerError;
pub use grid::{GridSpacing, TimeGrid};
pub use likelihood::{
    hutchinson_divergence, log_likelihood, log_likelihood_exact, Divergence, LikelihoodConfig,
    LikelihoodOutput, OdeSolver, ScoreDivergence, FD_REL_STEP,
};

use error::check;
use methods::Stepper;

/// What to record along the way: the first `particles` rows of the state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordSpec {
    /// Number of leading rows (particles) to record, `1 ≤ particles ≤ n`.
    pub particles: usize,
    /// Times to record at, each snapped to the nearest grid time (must lie in `[t_eps, T]`);
    /// `None` records every grid time, `T` included.
    #[serde(default)]
    pub times: Option<Vec<f64>>,
}

/// Recorded positions: frame `k` holds the first `particles` rows at grid time `times[k]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectories {
    /// Grid times of the frames, decreasing (the state before any final denoising).
    pub times: Vec<f64>,
    /// Rows per frame.
    pub particles: usize,
    /// Dimension of a row.
    pub dim: usize,
    /// `frames × particles × dim`, row-major.
    pub positions: Vec<f32>,
}

impl Trajectories {
    /// Number of frames.
    pub fn frames(&self) -> usize {
        self.times.len()
    }

    /// Frame `k`: `particles × dim` positions at `times[k]`.
    pub fn frame(&self, k: usize) -> &[f32] {
        let len = self.particles * self.dim;
        &self.positions[k * len..(k + 1) * len]
    }
}

/// Result of [`sample`].
#[derive(Debug, Clone, PartialEq)]
pub struct SampleOutput {
    /// `n × dim` samples, row-major.
    pub samples: Vec<f32>,
    /// Dimension of a sample.
    pub dim: usize,
    /// Number of (batched) score evaluations.
    pub nfe: usize,
    /// Recorded trajectories, if a [`RecordSpec`] was given.
    pub trajectories: Option<Trajectories>,
}

/// Draws `n` samples: `x_T ~ N(0, prior_std² I)`, then `config.method` over the grid from
/// `T` to `t_eps` (then Tweedie's `x̂₀ = (x + σ² s)/m` if `config.final_denoise`).
///
/// The score is evaluated on the whole batch at once. Same `seed` ⇒ bit-identical output,
/// for any rayon thread count. Errors name the invalid parameter.
pub fn sample<S, M>(
    sde: &S,
    model: &mut M,
    config: &SamplerConfig,
    n: usize,
    seed: u64,
    record: Option<RecordSpec>,
) -> Result<SampleOutput, SamplerError>
where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
{
    sample_with_progress(sde, model, config, n, seed, record, |_, _| {})
}

/// [`sample`] with a progress callback `progress(step, n_steps)`, called after each grid step
/// (`step = 1..=n_steps`).
pub fn sample_with_progress<S, M, P>(
    sde: &S,
    model: &mut M,
    config: &SamplerConfig,
    n: usize,
    seed: u64,
    record: Option<RecordSpec>,
    mut progress: P,
) -> Result<SampleOutput, SamplerError>
where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
    P: FnMut(usize, usize),
{
    let grid = config.time_grid(sde)?;
    let dim = model.dim();
    let len = check_batch(dim, n)?;
    check("sde.prior_std()", sde.prior_std(), "> 0", |v| v > 0.0)?;
    if config.final_denoise {
        let m = sde.mean_coef(grid.t_final());
        check("mean_coef(t_eps) (for final_denoise)", m, "> 0", |v| {
            v > 0.0
        })?;
    }
    let mut recorder = record
        .map(|spec| Recorder::new(spec, grid.times(), n, dim))
        .transpose()?;

    let mut x = vec![0.0f32; len];
    let mut k = Stepper::new(sde, model, config.method, n, dim, seed);
    k.draw_prior(&mut x);
    if let Some(r) = recorder.as_mut() {
        r.observe(0, &x);
    }
    let n_steps = grid.steps();
    let mut on_step = |i: usize, x: &[f32]| {
        if let Some(r) = recorder.as_mut() {
            r.observe(i, x);
        }
        progress(i, n_steps);
    };
    methods::run(&mut k, config.method, &mut x, &grid, &mut on_step)?;
    if config.final_denoise {
        k.tweedie_denoise(&mut x, grid.t_final());
    }
    Ok(SampleOutput {
        samples: x,
        dim,
        nfe: k.nfe,
        trajectories: recorder.map(|r| r.out),
    })
}

/// Checks `dim ≥ 1`, `n ≥ 1` and that `n × dim` fits; returns `n × dim`.
pub(crate) fn check_batch(dim: usize, n: usize) -> Result<usize, SamplerError> {
    if dim == 0 {
        return Err(SamplerError::new("model.dim()", dim, "≥ 1"));
    }
    if n == 0 {
        return Err(SamplerError::new("n", n, "≥ 1"));
    }
    n.checked_mul(dim).ok_or_else(|| {
        SamplerError::new("n", n, format!("such that n × dim ({dim}) fits in usize"))
    })
}

/// Copies the leading rows at the selected grid indices into a preallocated buffer.
pub(crate) struct Recorder {
    /// `want[i]`: record at grid index `i`.
    want: Vec<bool>,
    grid_times: Vec<f64>,
    pub(crate) out: Trajectories,
}

impl Recorder {
    /// `times`: the decreasing times of the states passed to [`Recorder::observe`].
    pub(crate) fn new(
        spec: RecordSpec,
        times: &[f64],
        n: usize,
        dim: usize,
    ) -> Result<Self, SamplerError> {
        if spec.particles == 0 || spec.particles > n {
            return Err(SamplerError::new(
                "record.particles",
                spec.particles,
                format!("in 1..=n (n = {n})"),
            ));
        }
        let mut want = vec![spec.times.is_none(); times.len()];
        for (j, &t) in spec.times.iter().flatten().enumerate() {
            let (lo, hi) = (times[times.len() - 1], times[0]);
            check(
                &format!("record.times[{j}]"),
                t,
                &format!("in [t_eps = {lo}, T = {hi}]"),
                |v| (lo..=hi).contains(&v),
            )?;
            let nearest = (0..times.len())
                .min_by(|&a, &b| (times[a] - t).abs().total_cmp(&(times[b] - t).abs()))
                .expect("grid has ≥ 2 times");
            want[nearest] = true;
        }
        let frames = want.iter().filter(|&&w| w).count();
        Ok(Self {
            out: Trajectories {
                times: Vec::with_capacity(frames),
                particles: spec.particles,
                dim,
                positions: Vec::with_capacity(frames * spec.particles * dim),
            },
            want,
            grid_times: times.to_vec(),
        })
    }

    pub(crate) fn observe(&mut self, grid_index: usize, x: &[f32]) {
        if self.want[grid_index] {
            let len = self.out.particles * self.out.dim;
            self.out.positions.extend_from_slice(&x[..len]);
            self.out.times.push(self.grid_times[grid_index]);
        }
    }
}
