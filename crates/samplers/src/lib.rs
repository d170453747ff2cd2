//! Samplers for score-based diffusion models, in the style of k-diffusion's `sampling.py`.
//!
//! Every sampler works for any forward SDE `dx = f(x,t) dt + g(t) dW`
//! ([`ForwardSde`]) and any batched score model `s(x,t) ≈ ∇ log p_t(x)` ([`Score`]); the state
//! is f32, coefficients are f64. Two dynamics are derived once from `(sde, score)`:
//! - the reverse SDE `dx = [f(x,t) − g(t)² s(x,t)] dt + g(t) dW̄`, from `T` down to `t_eps`
//!   ([`reverse_drift`]);
//! - the probability-flow ODE `dx/dt = f(x,t) − ½ g(t)² s(x,t)` ([`probability_flow_drift`]).
//!
//! [`sample`] starts from the prior `N(0, prior_std² I)` ([`sample_from`]: from a given state)
//! and walks a [`TimeGrid`] with the [`Method`] of a [`SamplerConfig`]: reverse-SDE
//! Euler–Maruyama, probability-flow Euler/Heun, predictor–corrector, and the few-step samplers
//! DDIM (η ≥ 0), DDPM ancestral, EDM Heun, DPM-Solver++(2M/3M, ODE and SDE), UniPC-2 and
//! adaptive Dormand–Prince 5(4). Grids ([`GridSpacing`]) are values: uniform, quadratic,
//! log-SNR, Karras. All noise is seeded per (seed, step, row chunk) (see [`noise`]), so
//! results are bit-identical for any number of threads.
//!
//! Each sampler is one file in [`solvers`] implementing [`Solver`]: it owns its state, checks
//! its parameters and reports its NFE rule ([`Solver::nfe`], [`Solver::steps_for_nfe`],
//! [`Solver::nfe_rule`]; also on [`Method`] and [`SamplerConfig`]). The loop over the grid
//! (callbacks, recording, NFE counting, final denoising) is written once. Adding a sampler =
//! one file in `solvers/` + one [`Method`] variant + one arm in [`Method::build`].
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

mod budgets;
mod config;
pub mod ddpm;
mod driver;
mod dynamics;
mod error;
mod grid;
pub mod guidance;
pub mod inpaint;
pub mod langevin;
pub mod langevin_init;
pub mod langevin_sweep;
mod likelihood;
mod likelihood_eval;
pub mod noise;
mod ode;
mod sample_memory;
pub mod solvers;
mod sweep;

use serde::{Deserialize, Serialize};
use smoluchowski_sde::{ForwardSde, Score};

pub use budgets::{configs_for_budgets, dormand_prince_configs};
pub use config::{Method, SamplerConfig};
pub use ddpm::{
    sample_ddpm, sample_ddpm_from, DdpmSchedule, DdpmScheduleKind, DdpmVariance, COSINE_MAX_BETA,
};
pub use dynamics::{probability_flow_drift, reverse_drift};
pub use error::SamplerError;
pub use grid::{GridSpacing, TimeGrid};
pub use guidance::{Guidance, Guided, TiltedMixture};
pub use inpaint::{InpaintMethod, Inpainting};
pub use likelihood::{
    hutchinson_divergence, log_likelihood, log_likelihood_exact, Divergence, LikelihoodConfig,
    LikelihoodOutput, OdeSolver, ScoreDivergence, FD_REL_STEP,
};
pub use likelihood_eval::{
    check_solver_accuracy, compare_hutchinson, likelihood_memory_estimate, log_likelihood_chunked,
    t_eps_scan, HutchinsonComparison, ScanRow, SolverCheck, MAX_ODE_STEPS,
};
pub use sample_memory::{sampling_memory, STATE_COPIES};
pub use solvers::Solver;
pub use sweep::{
    check_budgets, sample_memory_estimate, sample_planar, serde_name, PlanarLaw, PlanarRun,
    SamplerSpec, MAX_NFE,
};

use error::check;
use noise::{fill_scaled_normal, NoiseEvent};
use solvers::{SdeRef, StepContext};

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

/// Recorded positions: frame `k` holds the first `particles` rows at grid time `times[k]`
/// (decreasing; the state before any final denoising). The workspace's one trajectory type,
/// with the samplers' f32 state.
pub type Trajectories = smoluchowski_sde::Trajectories<f32>;

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
    progress: P,
) -> Result<SampleOutput, SamplerError>
where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
    P: FnMut(usize, usize),
{
    run_sampler(sde, model, config, Start::Prior(n), seed, record, progress)
}

/// Like [`sample`], but the reverse process starts from the given state `x_T = x_init`
/// (`n × dim` row-major, `n = x_init.len() / dim`) instead of a prior draw, e.g. from the
/// exact `p_T = m(T) x₀ + σ(T) ε` when the prior `N(0, prior_std² I)` is not reached at `T`.
///
/// Same code path as [`sample`]: the noise of every step comes from `(seed, step)` exactly as
/// there, so `sample_from(.., x_init = the prior draw of seed, seed, ..)` is bit-identical to
/// `sample(.., n, seed, ..)`. Errors name the invalid parameter (`x_init.len()` not a positive
/// multiple of `dim`, a non-finite `x_init`, or the config).
pub fn sample_from<S, M>(
    sde: &S,
    model: &mut M,
    config: &SamplerConfig,
    x_init: Vec<f32>,
    seed: u64,
    record: Option<RecordSpec>,
) -> Result<SampleOutput, SamplerError>
where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
{
    sample_from_with_progress(sde, model, config, x_init, seed, record, |_, _| {})
}

/// [`sample_from`] with a progress callback `progress(step, n_steps)`, called after each grid
/// step (`step = 1..=n_steps`).
pub fn sample_from_with_progress<S, M, P>(
    sde: &S,
    model: &mut M,
    config: &SamplerConfig,
    x_init: Vec<f32>,
    seed: u64,
    record: Option<RecordSpec>,
    progress: P,
) -> Result<SampleOutput, SamplerError>
where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
    P: FnMut(usize, usize),
{
    run_sampler(
        sde,
        model,
        config,
        Start::Given(x_init),
        seed,
        record,
        progress,
    )
}

/// Draws `n = inpainting.values.len() / dim` completions: the reverse process from the prior
/// with the known coordinates imposed after every step by `inpainting.method` (replacement or
/// RePaint, module [`inpaint`]), for any `config.method`. The known coordinates of the output
/// equal `inpainting.values` exactly. Same `seed` ⇒ bit-identical output for any thread count;
/// errors name the invalid parameter (`inpainting.known`, `inpainting.method.jump_length`, …).
pub fn sample_inpainted<S, M>(
    sde: &S,
    model: &mut M,
    config: &SamplerConfig,
    inpainting: &Inpainting,
    seed: u64,
) -> Result<SampleOutput, SamplerError>
where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
{
    let n = inpainting.validate(model.dim())?;
    run_sampler_with(
        sde,
        model,
        config,
        Start::Prior(n),
        seed,
        None,
        Some(inpainting),
        |_, _| {},
    )
}

/// Where the reverse process starts.
enum Start {
    /// `n` prior draws `N(0, prior_std² I)` from `(seed, NoiseEvent::Prior)`.
    Prior(usize),
    /// A given `n × dim` state.
    Given(Vec<f32>),
}

/// The code path of [`sample_with_progress`] and [`sample_from_with_progress`].
fn run_sampler<S, M, P>(
    sde: &S,
    model: &mut M,
    config: &SamplerConfig,
    start: Start,
    seed: u64,
    record: Option<RecordSpec>,
    progress: P,
) -> Result<SampleOutput, SamplerError>
where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
    P: FnMut(usize, usize),
{
    run_sampler_with(sde, model, config, start, seed, record, None, progress)
}

/// The one code path of every sampling entry point: the driver's loop ([`driver::run`]), or
/// its inpainting form ([`driver::run_inpainting`]) when `inpainting` is given.
#[allow(clippy::too_many_arguments)]
fn run_sampler_with<S, M, P>(
    sde: &S,
    model: &mut M,
    config: &SamplerConfig,
    start: Start,
    seed: u64,
    record: Option<RecordSpec>,
    inpainting: Option<&Inpainting>,
    mut progress: P,
) -> Result<SampleOutput, SamplerError>
where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
    P: FnMut(usize, usize),
{
    let grid = config.time_grid(sde)?;
    let dim = model.dim();
    let n = match &start {
        Start::Prior(n) => *n,
        Start::Given(x) => {
            if dim == 0 || x.len() % dim != 0 {
                return Err(crate::error::invalid(
                    "x_init.len()",
                    x.len(),
                    format!("a positive multiple of model.dim() = {dim}"),
                ));
            }
            if let Some(i) = x.iter().position(|v| !v.is_finite()) {
                return Err(crate::error::invalid(
                    format!("x_init[{i}]"),
                    x[i],
                    "finite",
                ));
            }
            x.len() / dim
        }
    };
    let len = check_batch(dim, n)?;
    if matches!(start, Start::Prior(_)) {
        check("sde.prior_std()", sde.prior_std(), "> 0", |v| v > 0.0)?;
    }
    if config.final_denoise {
        let m = sde.mean_coef(grid.t_final());
        check("mean_coef(t_eps) (for final_denoise)", m, "> 0", |v| {
            v > 0.0
        })?;
    }
    let mut recorder = record
        .map(|spec| Recorder::new(spec, grid.times(), n, dim))
        .transpose()?;

    let mut solver = config.method.build()?;
    let mut x = match start {
        Start::Prior(_) => {
            let mut x = vec![0.0f32; len];
            fill_scaled_normal(&mut x, sde.prior_std(), dim, seed, NoiseEvent::Prior);
            x
        }
        Start::Given(x) => x,
    };
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
    let coefficients = SdeRef(sde);
    let mut model = model;
    let mut ctx = StepContext::new(&coefficients, &mut model, dim, seed);
    match inpainting {
        None => driver::run(
            &mut ctx,
            solver.as_mut(),
            &mut x,
            &grid,
            config.final_denoise,
            &mut on_step,
        )?,
        Some(inpainting) => driver::run_inpainting(
            &mut ctx,
            solver.as_mut(),
            &mut x,
            &grid,
            config.final_denoise,
            inpainting,
            &mut on_step,
        )?,
    }
    let nfe = ctx.nfe();
    Ok(SampleOutput {
        samples: x,
        dim,
        nfe,
        trajectories: recorder.map(|r| r.out),
    })
}

/// Checks `dim ≥ 1`, `n ≥ 1` and that `n × dim` fits; returns `n × dim`.
pub(crate) fn check_batch(dim: usize, n: usize) -> Result<usize, SamplerError> {
    if dim == 0 {
        return Err(crate::error::invalid("model.dim()", dim, "≥ 1"));
    }
    if n == 0 {
        return Err(crate::error::invalid("n", n, "≥ 1"));
    }
    n.checked_mul(dim).ok_or_else(|| {
        crate::error::invalid("n", n, format!("such that n × dim ({dim}) fits in usize"))
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
            return Err(crate::error::invalid(
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

#[cfg(test)]
mod tests {
    use super::*;
    use noise::{chunk_rng, NoiseEvent, CHUNK_ROWS};
    use rand::Rng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;
    use smoluchowski_sde::{GaussianOracle, VpSde};

    const PC: Method = Method::PredictorCorrector {
        corrector_steps: 1,
        snr: 0.16,
    };

    /// The prior draw of `sample`, rebuilt independently from the documented noise layout:
    /// row chunk `c` of `NoiseEvent::Prior` is `chunk_rng(seed, Prior, c)`, row-major.
    fn prior_draw(n: usize, dim: usize, std: f64, seed: u64) -> Vec<f32> {
        let mut x = Vec::with_capacity(n * dim);
        for c in 0..n.div_ceil(CHUNK_ROWS) {
            let mut rng: ChaCha8Rng = chunk_rng(seed, NoiseEvent::Prior, c);
            let rows = CHUNK_ROWS.min(n - c * CHUNK_ROWS);
            for _ in 0..rows * dim {
                let z: f64 = rng.sample(StandardNormal);
                x.push((std * z) as f32);
            }
        }
        x
    }

    fn oracle(sde: VpSde) -> GaussianOracle<VpSde> {
        GaussianOracle::new(sde, vec![1.0, -0.5], vec![0.5, 0.8]).unwrap()
    }

    #[test]
    fn sample_from_the_prior_draw_equals_sample() {
        // n = 5000 spans two noise chunks; recording and final denoising included.
        let sde = VpSde::song_default();
        let n = 5000;
        for method in [Method::EulerMaruyama, PC, Method::ProbabilityFlowHeun] {
            let config = SamplerConfig::new(method, 25, 1e-3).with_final_denoise(true);
            let record = Some(RecordSpec {
                particles: 7,
                times: Some(vec![1.0, 0.5, 1e-3]),
            });
            let a = sample(&sde, &mut oracle(sde), &config, n, 11, record.clone()).unwrap();
            let x0 = prior_draw(n, 2, sde.prior_std(), 11);
            assert_eq!(&a.trajectories.as_ref().unwrap().positions[..14], &x0[..14]);
            let b = sample_from(&sde, &mut oracle(sde), &config, x0, 11, record).unwrap();
            assert_eq!(a, b, "{method:?}");
            // A different start changes the result (the start is really used).
            let shifted = prior_draw(n, 2, 1.1, 11);
            let c = sample_from(&sde, &mut oracle(sde), &config, shifted, 11, None).unwrap();
            assert_ne!(a.samples, c.samples, "{method:?}");
        }
    }

    #[test]
    fn sample_from_the_exact_p_t_recovers_the_data_when_the_prior_is_not_reached() {
        // VP with β ∈ [0.1, 1], T = 1: I(T) = 0.55, m(T) = 0.760, so p_T = N(m μ, m² s² + σ²)
        // is far from N(0, 1). Starting from exact draws of p_T, the probability-flow ODE
        // (Heun, 200 steps) maps p_T to the data law N(μ, s²) per coordinate.
        let sde = VpSde::new(0.1, 1.0, 1.0).unwrap();
        let (mu, s) = ([1.0, -0.5], [0.5, 0.8]);
        let n = 20_000;
        let (m, sig) = (sde.mean_coef(1.0), sde.marginal_std(1.0));
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        use rand::SeedableRng as _;
        let mut x = Vec::with_capacity(2 * n);
        for _ in 0..n {
            for j in 0..2 {
                let (a, b): (f64, f64) = (rng.sample(StandardNormal), rng.sample(StandardNormal));
                x.push((m * (mu[j] + s[j] * a) + sig * b) as f32);
            }
        }
        let config = SamplerConfig::new(Method::ProbabilityFlowHeun, 200, 1e-4);
        let out = sample_from(&sde, &mut oracle(sde), &config, x, 5, None).unwrap();
        for j in 0..2 {
            let col: Vec<f64> = out
                .samples
                .iter()
                .skip(j)
                .step_by(2)
                .map(|&v| v as f64)
                .collect();
            let mean = col.iter().sum::<f64>() / n as f64;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            // z-scores: mean error / (s/√n) and variance error / (s² √(2/n)); |z| < 4 has
            // probability 1 − 6e-5 under the truth.
            let z_mean = (mean - mu[j]) / (s[j] / (n as f64).sqrt());
            let z_var = (var - s[j] * s[j]) / (s[j] * s[j] * (2.0 / n as f64).sqrt());
            assert!(
                z_mean.abs() < 4.0,
                "coordinate {j}: mean {mean}, z {z_mean}"
            );
            assert!(z_var.abs() < 4.0, "coordinate {j}: var {var}, z {z_var}");
        }
        // The same start from N(0, 1) instead (the mistake of the notes' part 1) is visibly off:
        // the ODE maps N(0, 1) to N(μ', s'²) with a different scale.
        let wrong = sample(&sde, &mut oracle(sde), &config, n, 5, None).unwrap();
        let col: Vec<f64> = wrong.samples.iter().step_by(2).map(|&v| v as f64).collect();
        let mean = col.iter().sum::<f64>() / n as f64;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let z_var = (var - s[0] * s[0]) / (s[0] * s[0] * (2.0 / n as f64).sqrt());
        assert!(z_var.abs() > 10.0, "N(0, 1) start: var {var}");
    }

    #[test]
    fn sample_from_names_bad_starts() {
        let sde = VpSde::song_default();
        let config = SamplerConfig::new(Method::EulerMaruyama, 10, 1e-3);
        let e = sample_from(&sde, &mut oracle(sde), &config, vec![0.0; 5], 1, None).unwrap_err();
        assert_eq!(e.path(), "x_init.len()");
        assert!(e.to_string().contains("multiple of model.dim() = 2"), "{e}");
        let e = sample_from(&sde, &mut oracle(sde), &config, vec![], 1, None).unwrap_err();
        assert_eq!(e.path(), "n");
        let mut x = vec![0.0f32; 6];
        x[3] = f32::NAN;
        let e = sample_from(&sde, &mut oracle(sde), &config, x, 1, None).unwrap_err();
        assert_eq!(e.path(), "x_init[3]");
    }
}
