//! Training configuration (serde, `deny_unknown_fields`) and its validation.

use serde::{Deserialize, Serialize};
use smoluchowski_core::{check_finite, ParamError};

/// Time weighting `λ(t)` of the denoising score-matching loss
/// `L = E_t E_x₀ E_ε λ(t) ‖s_θ(m x₀ + σ ε, t) + ε/σ‖²`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weighting {
    /// `λ = σ(t)²`: the ε-prediction form `‖σ s_θ + ε‖²` of part 2 (with Noise output,
    /// `‖ε_θ − ε‖²`).
    Sigma2,
    /// `λ = √(1 − c)` with `c = m(t)²`, as written in part 1's prose. (Part 1's *code* instead
    /// minimised `‖(1 − c) s_θ + ε‖²`, i.e. `λ = (1 − c)²` = σ² of the sub-VP kernel it sampled
    /// from — the [`Weighting::Sigma2`] form for that process.)
    Part1,
    /// `λ = 1`: the plain score-matching loss `‖s_θ + ε/σ‖²` (large at small `t`).
    None,
}

impl Weighting {
    /// `λ(t)` from the kernel's `m(t)` and `σ(t)`.
    pub fn lambda(self, m: f64, sigma: f64) -> f64 {
        match self {
            Weighting::Sigma2 => sigma * sigma,
            Weighting::Part1 => (1.0 - m * m).max(0.0).sqrt(),
            Weighting::None => 1.0,
        }
    }
}

/// Optimiser (both use β₁ = 0.9, β₂ = 0.999, ε = 1e-8, PyTorch's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", tag = "kind")]
pub enum OptimizerConfig {
    /// Adam: `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `θ ← θ − lr m̂/(√v̂ + ε)` with bias
    /// corrections `m̂ = m/(1−β₁ᵏ)`, `v̂ = v/(1−β₂ᵏ)`.
    Adam,
    /// AdamW: Adam plus decoupled weight decay `θ ← θ(1 − lr·weight_decay)` before the step.
    AdamW {
        /// Decoupled weight-decay coefficient.
        weight_decay: f32,
    },
}

/// Learning-rate schedule over the `steps` of a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", tag = "kind")]
pub enum LrSchedule {
    /// `lr(k) = lr`.
    Constant,
    /// Linear warm-up `lr (k+1)/warmup_steps` for `k < warmup_steps`, then cosine decay
    /// `final_lr + ½(lr − final_lr)(1 + cos(π p))`, `p = (k − warmup)/(steps − warmup)`.
    Cosine {
        /// Warm-up length in steps.
        warmup_steps: usize,
        /// Learning rate reached at the last step.
        final_lr: f64,
    },
}

/// Where the clean samples `x₀` come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", tag = "kind")]
pub enum DataMode {
    /// A fresh batch from the dataset at every step.
    Fresh,
    /// One dataset of `size` points drawn once; batches resample it with replacement.
    Fixed {
        /// Number of points.
        size: usize,
    },
}

/// How the training time of each row is drawn.
///
/// In TOML: `time_sampling = { kind = "uniform" }` (the default when absent) or
/// `time_sampling = { kind = "discrete", levels = 1000 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", tag = "kind")]
pub enum TimeSampling {
    /// `t ~ U(t_eps, T)` (continuous-time denoising score matching).
    #[default]
    Uniform,
    /// The discrete DDPM levels: `i ~ U{1, …, N}`, `t = t_i = i T/N` (network time input `i/N`
    /// for `T = 1`); `t_eps` is unused. With the kernel of the chain (e.g. [`crate::DdpmKernel`],
    /// `m(t_i) = √ᾱ_i`, `σ(t_i) = √(1 − ᾱ_i)`) and `λ = σ²` with noise output this is Ho et al.'s
    /// ε-prediction loss `E_{i, x₀, ε} ‖ε − ε_θ(√ᾱ_i x₀ + √(1 − ᾱ_i) ε, t_i)‖²`.
    Discrete {
        /// Number of levels `N ≥ 1`.
        levels: usize,
    },
}

impl TimeSampling {
    /// Draws one training time in `[t_eps, t_end]` (uniform) or on the grid `i t_end / N`.
    #[inline]
    pub fn draw<R: rand::Rng + ?Sized>(self, t_eps: f64, t_end: f64, rng: &mut R) -> f64 {
        match self {
            TimeSampling::Uniform => t_eps + (t_end - t_eps) * rng.gen::<f64>(),
            TimeSampling::Discrete { levels } => {
                rng.gen_range(1..=levels) as f64 * t_end / levels as f64
            }
        }
    }
}

/// Everything that defines a training run. With the same config (and network seed) a run is
/// bit-identical, and resuming from a checkpoint continues it bit-identically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Total number of optimisation steps.
    pub steps: usize,
    /// Rows per step.
    pub batch_size: usize,
    /// Optimiser.
    pub optimizer: OptimizerConfig,
    /// Peak learning rate.
    pub lr: f64,
    /// Learning-rate schedule.
    pub lr_schedule: LrSchedule,
    /// Clip the global gradient norm to this value.
    #[serde(default)]
    pub grad_clip: Option<f32>,
    /// Exponential moving average of the weights with this decay.
    #[serde(default)]
    pub ema_decay: Option<f32>,
    /// Smallest training time: `t ~ U(t_eps, T)`.
    pub t_eps: f64,
    /// Loss weighting `λ(t)`.
    pub weighting: Weighting,
    /// Continuous (`t ~ U(t_eps, T)`, the default) or discrete DDPM time levels.
    #[serde(default, skip_serializing_if = "is_uniform")]
    pub time_sampling: TimeSampling,
    /// Fresh or fixed data.
    pub data: DataMode,
    /// Write a checkpoint every this many steps (if a checkpoint path is given).
    #[serde(default)]
    pub checkpoint_every: Option<usize>,
    /// Seed of every random stream of the run.
    pub seed: u64,
}

/// An invalid training configuration: the workspace's [`ParamError`], its path relative to the
/// config (e.g. `lr_schedule.warmup_steps`).
pub type TrainConfigError = ParamError;

/// `v ≥ 1`, else an error naming `path`.
pub(crate) fn at_least_one(path: &str, v: usize) -> Result<(), ParamError> {
    if v == 0 {
        return Err(ParamError::new(path, v, "≥ 1"));
    }
    Ok(())
}

/// The learning-rate schedule of a run of `steps` steps.
pub(crate) fn validate_schedule(schedule: LrSchedule, steps: usize) -> Result<(), ParamError> {
    if let LrSchedule::Cosine {
        warmup_steps,
        final_lr,
    } = schedule
    {
        check_finite("lr_schedule.final_lr", final_lr, "≥ 0", |v| v >= 0.0)?;
        if warmup_steps >= steps {
            return Err(ParamError::new(
                "lr_schedule.warmup_steps",
                warmup_steps,
                format!("< steps = {steps}"),
            ));
        }
    }
    Ok(())
}

/// An EMA decay in `[0, 1)`.
pub(crate) fn validate_ema(ema_decay: Option<f32>) -> Result<(), ParamError> {
    if let Some(e) = ema_decay {
        if !(0.0..1.0).contains(&e) {
            return Err(ParamError::new("ema_decay", e, "in [0, 1)"));
        }
    }
    Ok(())
}

fn is_uniform(t: &TimeSampling) -> bool {
    *t == TimeSampling::Uniform
}

impl TrainConfig {
    /// Part 2's recipe: Adam lr 1e-3 (constant), batch 5000 fresh samples, 20 000 steps,
    /// λ = σ², no EMA, no clipping. (`t_eps` = 1e-5 instead of 0 to keep σ > 0.)
    pub fn part2() -> Self {
        TrainConfig {
            steps: 20_000,
            batch_size: 5000,
            optimizer: OptimizerConfig::Adam,
            lr: 1e-3,
            lr_schedule: LrSchedule::Constant,
            grad_clip: None,
            ema_decay: None,
            t_eps: 1e-5,
            weighting: Weighting::Sigma2,
            time_sampling: TimeSampling::Uniform,
            data: DataMode::Fresh,
            checkpoint_every: None,
            seed: 0,
        }
    }

    /// Checks every field; the error names the field path (relative to this config) and its
    /// value.
    pub fn validate(&self) -> Result<(), TrainConfigError> {
        at_least_one("steps", self.steps)?;
        at_least_one("batch_size", self.batch_size)?;
        check_finite("lr", self.lr, "> 0", |v| v > 0.0)?;
        if let OptimizerConfig::AdamW { weight_decay } = self.optimizer {
            check_finite(
                "optimizer.weight_decay",
                f64::from(weight_decay),
                "≥ 0",
                |v| v >= 0.0,
            )?;
        }
        validate_schedule(self.lr_schedule, self.steps)?;
        if let Some(c) = self.grad_clip {
            check_finite("grad_clip", f64::from(c), "> 0", |v| v > 0.0)?;
        }
        validate_ema(self.ema_decay)?;
        check_finite("t_eps", self.t_eps, "> 0", |v| v > 0.0)?;
        if let TimeSampling::Discrete { levels } = self.time_sampling {
            at_least_one("time_sampling.levels", levels)?;
        }
        if let DataMode::Fixed { size } = self.data {
            at_least_one("data.size", size)?;
        }
        if let Some(every) = self.checkpoint_every {
            at_least_one("checkpoint_every", every)?;
        }
        Ok(())
    }

    /// Learning rate at step `k` (0-based).
    pub fn lr_at(&self, k: usize) -> f64 {
        crate::optim::lr_at(self.lr, self.lr_schedule, self.steps, k)
    }
}
