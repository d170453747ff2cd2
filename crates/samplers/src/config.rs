//! Serde-embeddable sampler configuration.

use serde::{Deserialize, Serialize};
use smoluchowski_sde::ForwardSde;

use crate::ddpm::DdpmVariance;
use crate::error::SamplerError;
use crate::grid::{GridSpacing, TimeGrid};
use crate::solvers::{self, Solver};

/// Which integrator walks the time grid.
///
/// In TOML: `method = "euler_maruyama"`, `method = { ddim = { eta = 0.0 } }`,
/// `method = "edm_heun"`, `method = "dpm_solver_pp_2m"`, `method = "dpm_solver_pp_3m"`,
/// `method = { dpm_solver_pp_2m_sde = { eta = 1.0 } }`,
/// `method = { dpm_solver_pp_3m_sde = { eta = 1.0, curvature = 0.5 } }`,
/// `method = { ddpm_ancestral = { variance = "posterior" } }`,
/// `method = { dormand_prince = { rtol = 1e-5, atol = 1e-5 } }`,
/// `method = { predictor_corrector = { corrector_steps = 1, snr = 0.16 } }` or
/// `method = "unipc"`.
///
/// Each variant is the serde form of one solver in [`solvers`](crate::solvers) (one file
/// each, owning its state, validation and NFE rule), built by [`Method::build`]. Adding a
/// sampler = one file in `solvers/` implementing [`Solver`] + one variant here + one arm in
/// [`Method::build`].
///
/// The few-step samplers (DDIM, EDM Heun, DPM-Solver++) are written in the kernel's own
/// variables: with `x_t = m(t) x₀ + σ(t) ε`, the data and noise predictions of a score are
/// `x̂₀ = (x + σ² s)/m` and `ε̂ = −σ s`, the VE-equivalent noise level is `σ̂ = σ/m`, and in the
/// scaled state `y = x/m` the probability-flow ODE reads `dy/dσ̂ = ε̂` (Karras et al.'s EDM
/// form with `σ(t) = t`, `s(t) = 1`, for any affine forward SDE).
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
    /// DDIM (Song, Meng & Ermon) for the kernel `(m, σ)`, 1 evaluation per step, from `t` to
    /// `t'` (primes: values at `t'`):
    /// `x' = m' x̂₀ + √(σ'² − c²) ε̂ + c z`, `c = η σ' √(1 − (m σ' / (m' σ))²)`.
    ///
    /// `c²` is `η²` times the variance of the forward posterior `q(x_{t'} | x_t, x₀)`
    /// (`x_t | x_{t'} ~ N((m/m') x_{t'}, σ² − (m/m')² σ'²)`), so `η = 1` is ancestral (DDPM)
    /// sampling and every `η ∈ [0, 1]` keeps `q(x_{t'} | x₀) = N(m' x₀, σ'²)`. For VP
    /// (`σ² = 1 − m²`) `c` is DDIM's `η √((1−ᾱ')/(1−ᾱ)) √(1 − ᾱ/ᾱ')` with `ᾱ = m²`.
    /// `η = 0` is deterministic and is exactly Euler on `dy/dσ̂ = ε̂`:
    /// `x'/m' = x/m + (σ̂' − σ̂) ε̂`.
    Ddim {
        /// Stochasticity `η ∈ [0, 1]` (0: deterministic DDIM, 1: DDPM ancestral).
        eta: f64,
    },
    /// DDPM ancestral sampling on the grid, with the discrete schedule the grid induces on the
    /// kernel: from `t` to `t'` the forward transition is `x_t | x_{t'} ~ N(a x_{t'}, b²)`,
    /// `a = m/m'`, `b² = σ² − a² σ'²` (for VP, `a = √(1 − β_i)` and `b² = β_i` with
    /// `ᾱ ≡ m²`), and the step is the posterior mean plus noise:
    /// `x' = (x + b² s(x,t)) / a + √β̃ z`, `β̃ = b²` ([`DdpmVariance::Beta`]) or
    /// `β̃ = b² σ'²/σ²` ([`DdpmVariance::Posterior`]). 1 evaluation per step.
    ///
    /// With `Posterior` this is algebraically DDIM with `η = 1`. For the exact discrete chain
    /// of a DDPM schedule (`ᾱ_i = ∏(1 − β_j)`, which differs from `m(t_i)²` by `O(1/N)`) use
    /// [`sample_ddpm`](crate::sample_ddpm) instead.
    DdpmAncestral {
        /// `β̃`: the forward variance or the posterior variance.
        variance: DdpmVariance,
    },
    /// Karras et al.'s (EDM) deterministic sampler: Heun's 2nd-order method on
    /// `dy/dσ̂ = ε̂(x, t)` (`y = x/m`, `σ̂ = σ/m`), with `Δ = σ̂' − σ̂`:
    /// `d = ε̂(x,t)`, `x̃ = m'(x/m + Δ d)`, `x' = m'(x/m + ½ Δ (d + ε̂(x̃,t')))`;
    /// the last step is the Euler step `x̃` (as in EDM, where it avoids evaluating at `σ = 0`).
    /// `2n − 1` evaluations for `n` steps. Pair it with [`GridSpacing::Karras`].
    ///
    /// [`GridSpacing::Karras`]: crate::GridSpacing::Karras
    EdmHeun,
    /// DPM-Solver++(2M) (Lu et al. 2022, multistep, data prediction), 1 evaluation per step,
    /// in `λ = ln(m/σ)`: with `h_i = λ_{i+1} − λ_i`,
    /// `x_{i+1} = (σ_{i+1}/σ_i) x_i − m_{i+1} (e^{−h_i} − 1) D_i`, where `D_0 = x̂₀(x_0, t_0)` and
    /// `D_i = (1 + 1/(2r_i)) x̂₀(x_i, t_i) − (1/(2r_i)) x̂₀(x_{i−1}, t_{i−1})`,
    /// `r_i = h_{i−1}/h_i`. Second order in `h`.
    #[serde(rename = "dpm_solver_pp_2m")]
    DpmSolverPp2M,
    /// DPM-Solver++(3M) (Lu et al. 2022), multistep, data prediction, 1 evaluation per step.
    /// In `λ = ln(m/σ)`, with `h = λ_{i+1} − λ_i`, `φ₁ = 1 − e^{−h}`, `φ₂ = 1 − φ₁/h`,
    /// `φ₃ = φ₂/h − ½`, and `D_i = x̂₀(x_i, t_i)`:
    /// `x_{i+1} = (σ_{i+1}/σ_i) x_i + m_{i+1} [φ₁ D_i + φ₂ d₁ − 2 φ₃ d₂]`, where, with
    /// `r₀ = h_{i−1}/h`, `r₁ = h_{i−2}/h`, `δ₀ = (D_i − D_{i−1})/r₀`,
    /// `δ₁ = (D_{i−1} − D_{i−2})/r₁`: `d₁ = δ₀ + (δ₀ − δ₁) r₀/(r₀ + r₁)`,
    /// `d₂ = (δ₀ − δ₁)/(r₀ + r₁)`; the first step is first order (`d₁ = d₂ = 0`) and the
    /// second is second order (`d₁ = δ₀`, `d₂ = 0`).
    ///
    /// Why `2 φ₃`: the exact step is `x_{i+1} = (σ_{i+1}/σ_i) x_i + m_{i+1} ∫₀ʰ e^{u−h} x̂₀(λ_i + u) du`,
    /// and with `d₁ ≈ h x̂₀'`, `d₂ ≈ h² x̂₀''/2` the Taylor terms are `φ₁ D`, `φ₂ d₁` and
    /// `(h²/2 − h + φ₁) x̂₀'' = −h² φ₃ x̂₀'' ≈ −2 φ₃ d₂`: the update is exact for quadratic
    /// `x̂₀(λ)` (third order). k-diffusion's `sample_dpmpp_3m_sde` writes `− φ₃ d₂`, which
    /// halves the second-derivative term (its error ratio per step doubling, measured on
    /// Gaussian data: 5.4 instead of ≥ 8).
    #[serde(rename = "dpm_solver_pp_3m")]
    DpmSolverPp3M,
    /// DPM-Solver++(2M) SDE (Lu et al. 2022; k-diffusion's `sample_dpmpp_2m_sde`, midpoint
    /// form), multistep, data prediction, 1 evaluation per step. With `λ = ln(m/σ)`,
    /// `h = λ_{i+1} − λ_i`, `D_i = x̂₀(x_i, t_i)`, `r_i = h_{i−1}/h_i`:
    /// `x_{i+1} = (σ_{i+1}/σ_i) e^{−ηh} x_i + m_{i+1} (1 − e^{−(1+η)h}) [D_i + (D_i − D_{i−1})/(2r_i)]
    ///  + σ_{i+1} √(1 − e^{−2ηh}) z` (no correction term on the first step). `η = 0` is
    /// [`Method::DpmSolverPp2M`]; `η = 1` is the discretisation of the reverse SDE (the noise
    /// re-equilibrates errors of the score that a deterministic ODE solver carries to the end).
    /// Noise event `(step, 0)`.
    #[serde(rename = "dpm_solver_pp_2m_sde")]
    DpmSolverPp2MSde {
        /// Stochasticity `η ≥ 0` (0: the ODE solver, 1: the reverse SDE).
        eta: f64,
    },
    /// DPM-Solver++(3M) SDE (after k-diffusion's `sample_dpmpp_3m_sde`), 1 evaluation per
    /// step: [`Method::DpmSolverPp3M`]'s update with `φ₁, φ₂, φ₃` taken at `h_η = (1 + η) h`,
    /// `x_i` scaled by `(σ_{i+1}/σ_i) e^{−ηh}`, the curvature term weighted by `κ` = `curvature`,
    /// plus noise:
    /// `x_{i+1} = (σ_{i+1}/σ_i) e^{−ηh} x_i + m_{i+1} [φ₁ D_i + φ₂ d₁ − 2κ φ₃ d₂]`
    /// `+ σ_{i+1} √(1 − e^{−2ηh}) z`.
    /// With `κ = 1` the drift part integrates a quadratic `x̂₀(λ)` exactly against the kernel
    /// `(1 + η) e^{−(1+η)(h−u)}` (third order; `η = 0, κ = 1` is [`Method::DpmSolverPp3M`] bit
    /// for bit); `κ = ½` is k-diffusion's `− φ₃ d₂` (second order plus half the curvature
    /// term), which extrapolates a network's errors less and was the better few-step sampler
    /// of ring2d's trained model (see ring2d-samplers.toml). Noise event `(step, 0)`.
    #[serde(rename = "dpm_solver_pp_3m_sde")]
    DpmSolverPp3MSde {
        /// Stochasticity `η ≥ 0` (0: the ODE solver, 1: the reverse SDE).
        eta: f64,
        /// Weight `κ ∈ [0, 1]` of the curvature term (default 1: third order; ½: k-diffusion).
        #[serde(default = "one")]
        curvature: f64,
    },
    /// Adaptive Dormand–Prince 5(4) (FSAL, 6 evaluations per attempted step) on the
    /// probability-flow ODE `dx/dt = f − ½ g² s`, between consecutive grid times (so with
    /// `steps = 1` it is purely adaptive from `T` to `t_eps`; more grid times only add output
    /// and recording points). The state is integrated in f64. A step is accepted when
    /// `max_i |err_i| / (atol + rtol · max(|x_i|, |x'_i|)) ≤ 1` (max over the whole batch,
    /// which shares one step size); step factor `0.9 · err^{−1/5}` clamped to `[0.2, 10]`.
    /// The evaluations used are reported in [`SampleOutput::nfe`](crate::SampleOutput::nfe).
    DormandPrince {
        /// Relative tolerance (`> 0`).
        rtol: f64,
        /// Absolute tolerance (`> 0`).
        atol: f64,
    },
    /// UniPC-2, variant bh2 (Zhao et al. 2023; diffusers' `UniPCMultistepScheduler` with
    /// `predict_x0`, `solver_type = "bh2"`, `solver_order = 2`): multistep data prediction in
    /// `λ = ln(m/σ)`, predictor UniP-2 (DPM-Solver++(2M)'s step) and corrector UniC-2 that
    /// reuses the next step's evaluation, so 1 evaluation per step; first step first order, no
    /// corrector after the last step. Formulas in [`UniPc`](crate::solvers::UniPc).
    /// In TOML: `method = "unipc"`.
    #[serde(rename = "unipc")]
    UniPc,
}

impl Method {
    /// The solver for this method with its parameters checked (errors name the field, e.g.
    /// `method.eta`), its buffers not yet allocated (see [`Solver::start`]).
    ///
    /// This and serde are the only places that list every variant: adding a sampler = one
    /// file in `solvers/` implementing [`Solver`] + one variant here + one arm below.
    pub fn build(&self) -> Result<Box<dyn Solver>, SamplerError> {
        let solver = self.solver();
        solver.validate()?;
        Ok(solver)
    }

    /// The solver, unchecked (for the NFE rules, which do not depend on validity).
    fn solver(&self) -> Box<dyn Solver> {
        match *self {
            Method::EulerMaruyama => Box::new(solvers::EulerMaruyama::new()),
            Method::ProbabilityFlowEuler => Box::new(solvers::ProbabilityFlowEuler::new()),
            Method::ProbabilityFlowHeun => Box::new(solvers::ProbabilityFlowHeun::new()),
            Method::PredictorCorrector {
                corrector_steps,
                snr,
            } => Box::new(solvers::PredictorCorrector::new(corrector_steps, snr)),
            Method::Ddim { eta } => Box::new(solvers::Ddim::new(eta)),
            Method::DdpmAncestral { variance } => Box::new(solvers::DdpmAncestral::new(variance)),
            Method::EdmHeun => Box::new(solvers::EdmHeun::new()),
            Method::DpmSolverPp2M => Box::new(solvers::DpmSolverPp2M::new(0.0)),
            Method::DpmSolverPp3M => Box::new(solvers::DpmSolverPp3M::new(0.0, 1.0)),
            Method::DpmSolverPp2MSde { eta } => Box::new(solvers::DpmSolverPp2M::new(eta)),
            Method::DpmSolverPp3MSde { eta, curvature } => {
                Box::new(solvers::DpmSolverPp3M::new(eta, curvature))
            }
            Method::DormandPrince { rtol, atol } => {
                Box::new(solvers::DormandPrince::new(rtol, atol))
            }
            Method::UniPc => Box::new(solvers::UniPc::new()),
        }
    }

    /// Score evaluations used by one step, if fixed (`None` for [`Method::DormandPrince`]);
    /// the most any step uses ([`Method::EdmHeun`] uses 2 per step except the last, see
    /// [`Method::nfe`]). Delegates to [`Solver::nfe_per_step`].
    pub fn nfe_per_step(&self) -> Option<usize> {
        self.solver().nfe_per_step()
    }

    /// Score evaluations of `steps` grid steps, final denoising not included (`None` if
    /// adaptive). Delegates to [`Solver::nfe`].
    pub fn nfe(&self, steps: usize) -> Option<usize> {
        self.solver().nfe(steps)
    }

    /// The largest step count `n ≥ 1` whose NFE (final denoising not included) is `≤ budget`;
    /// `None` if there is none or the method is adaptive. Delegates to
    /// [`Solver::steps_for_nfe`]; see [`SamplerConfig::steps_for_nfe`] for the budget of a
    /// whole config.
    pub fn steps_for_nfe(&self, budget: usize) -> Option<usize> {
        self.solver().steps_for_nfe(budget)
    }

    /// The NFE rule in words, e.g. `"1 per step"` (final denoising not included). Delegates
    /// to [`Solver::nfe_rule`].
    pub fn nfe_rule(&self) -> String {
        self.solver().nfe_rule()
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
        self.method.build()?;
        if self.steps >= u32::MAX as usize {
            return Err(crate::error::invalid("steps", self.steps, "< 2³²"));
        }
        Ok(())
    }

    /// The validated time grid for `sde`.
    pub fn time_grid<S: ForwardSde + ?Sized>(&self, sde: &S) -> Result<TimeGrid, SamplerError> {
        self.validate_method()?;
        TimeGrid::new(sde, self.grid, self.t_eps, self.steps)
    }

    /// Score evaluations of one run, if known in advance: [`Method::nfe`] of `steps`
    /// (`steps × nfe_per_step`, `2·steps − 1` for [`Method::EdmHeun`]), `+1` if
    /// `final_denoise`; `None` for the adaptive [`Method::DormandPrince`] (its count is in
    /// [`SampleOutput::nfe`](crate::SampleOutput::nfe)).
    pub fn nfe(&self) -> Option<usize> {
        Some(self.method.nfe(self.steps)? + usize::from(self.final_denoise))
    }

    /// The largest step count whose whole-run NFE ([`SamplerConfig::nfe`], final denoising
    /// included) is `≤ budget`, for this config's method and `final_denoise`; `None` if there
    /// is none or the method is adaptive.
    pub fn steps_for_nfe(&self, budget: usize) -> Option<usize> {
        let budget = budget.checked_sub(usize::from(self.final_denoise))?;
        self.method.steps_for_nfe(budget)
    }
}

/// Serde default `1.0`.
fn one() -> f64 {
    1.0
}
