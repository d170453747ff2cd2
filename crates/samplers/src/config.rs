//! Serde-embeddable sampler configuration.

use serde::{Deserialize, Serialize};
use smoluchowski_sde::ForwardSde;

use crate::error::{check, SamplerError};
use crate::grid::{GridSpacing, TimeGrid};

/// Which integrator walks the time grid.
///
/// In TOML: `method = "euler_maruyama"` or
/// `method = { predictor_corrector = { corrector_steps = 1, snr = 0.16 } }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Method {
    /// Euler–Maruyama on the reverse SDE (the notes' sampler), 1 score evaluation per step:
    /// `x ← x − [f(x,t) − g² s(x,t)] Δt + g √Δt z`.
    EulerMaruyama,
    /// Euler on the probability-flow ODE, 1 evaluation per step: `x ← x − v(x,t) Δt`,
    /// `v = f − ½ g² s`.
    ProbabilityFlowEuler,
    /// Heun (trapezoidal predictor–corrector) on the probability-flow ODE, 2 evaluations per
    /// step: `x̃ = x − v(x,t)Δt`, `x ← x − ½[v(x,t) + v(x̃,t−Δt)]Δt`.
    ProbabilityFlowHeun,
    /// Song et al.'s predictor–corrector: at each grid time, `corrector_steps` Langevin
    /// corrector steps `x ← x + ε s + √(2ε) z` with `ε = 2 α (snr ‖z‖/‖s‖)²` (norms averaged
    /// over the batch, `α = (m(t)/m(t−Δt))²`), then one Euler–Maruyama predictor step.
    PredictorCorrector {
        /// Langevin corrector steps per grid time (score_sde's `n_steps`).
        corrector_steps: usize,
        /// Target signal-to-noise ratio `r` of the corrector.
        snr: f64,
    },
}

impl Method {
    /// Score evaluations used by one step.
    pub fn nfe_per_step(&self) -> usize {
        match *self {
            Method::EulerMaruyama | Method::ProbabilityFlowEuler => 1,
            Method::ProbabilityFlowHeun => 2,
            Method::PredictorCorrector {
                corrector_steps, ..
            } => corrector_steps + 1,
        }
    }
}

/// A complete sampler: integrator, grid and final denoising.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerConfig {
    /// The integrator.
    pub method: Method,
    /// Number of grid steps `n` from `T` down to `t_eps`.
    pub steps: usize,
    /// Final time `t_eps ∈ (0, T)` (the score is singular at 0).
    pub t_eps: f64,
    /// After the last step, apply Tweedie's denoiser `x̂₀ = (x + σ(t)² s(x,t)) / m(t)` at
    /// `t = t_eps` (one more score evaluation).
    #[serde(default)]
    pub final_denoise: bool,
    /// Grid spacing (default uniform).
    #[serde(default)]
    pub grid: GridSpacing,
}

impl SamplerConfig {
    /// `method` on a uniform grid of `steps` steps down to `t_eps`, without final denoising.
    pub fn new(method: Method, steps: usize, t_eps: f64) -> Self {
        Self {
            method,
            steps,
            t_eps,
            final_denoise: false,
            grid: GridSpacing::Uniform,
        }
    }

    /// Same config with `final_denoise` set.
    pub fn with_final_denoise(mut self, final_denoise: bool) -> Self {
        self.final_denoise = final_denoise;
        self
    }

    /// Same config with grid spacing `grid`.
    pub fn with_grid(mut self, grid: GridSpacing) -> Self {
        self.grid = grid;
        self
    }

    /// Checks the method's parameters (the grid is checked by [`SamplerConfig::time_grid`]).
    pub fn validate_method(&self) -> Result<(), SamplerError> {
        if let Method::PredictorCorrector {
            corrector_steps,
            snr,
        } = self.method
        {
            check("method.snr", snr, "> 0", |v| v > 0.0)?;
            if corrector_steps >= u32::MAX as usize {
                return Err(SamplerError::new(
                    "method.corrector_steps",
                    corrector_steps,
                    "< 2³²",
                ));
            }
        }
        if self.steps >= u32::MAX as usize {
            return Err(SamplerError::new("steps", self.steps, "< 2³²"));
        }
        Ok(())
    }

    /// The validated time grid for `sde`.
    pub fn time_grid<S: ForwardSde + ?Sized>(&self, sde: &S) -> Result<TimeGrid, SamplerError> {
        self.validate_method()?;
        TimeGrid::new(sde, self.grid, self.t_eps, self.steps)
    }

    /// Score evaluations of one run: `steps × nfe_per_step (+1 if final_denoise)`.
    pub fn nfe(&self) -> usize {
        self.steps * self.method.nfe_per_step() + usize::from(self.final_denoise)
    }
}
