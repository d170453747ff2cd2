//! Denoising score matching and the seeded, resumable training loop.
//!
//! Loss: `L = E_t E_x₀ E_ε λ(t) ‖s_θ(m x₀ + σ ε, t) + ε/σ‖²`, `t ~ U(t_eps, T)`, for any
//! [`smoluchowski_sde::ForwardSde`] with kernel `N(m(t) x₀, σ(t)² I)`; the weighting `λ` is a
//! [`Weighting`]. With a noise-predicting network (`s_θ = −ε_θ/σ`) and `λ = σ²` this is
//! `‖ε_θ − ε‖²`.
//!
//! Discrete DDPM training: [`TimeSampling::Discrete`] with the chain's kernel [`DdpmKernel`].
//! Sliced score matching (finite differences) and fixed-σ denoising score matching without a
//! diffusion: [`SsmTrainer`] (see the `ssm` module docs on [`ScoreObjective`]).
//!
//! Training ([`Trainer`], [`train`]) draws the batch of step `k` from its own stream
//! ([`step_rng`]`(seed, k)`), so a run is reproducible and resuming from a checkpoint
//! continues it bit-identically.

mod config;
mod ddpm_kernel;
mod dsm;
pub mod optim;
mod ssm;
mod train;
mod trainloop;

pub use config::{
    DataMode, LrSchedule, OptimizerConfig, TimeSampling, TrainConfig, TrainConfigError, Weighting,
};
pub use ddpm_kernel::DdpmKernel;
pub use dsm::{dsm_loss, dsm_loss_with_time, DsmBatch, LossReport, NUM_TIME_BUCKETS};
pub use optim::{OptimSettings, Optimizer};
pub use ssm::{
    eval_rng, fd_ssm_terms, relative_score_error, sliced_score_matching_loss, ssm_loss_and_grad,
    Projection, ScoreObjective, SsmBatch, SsmConfig, SsmObjective, SsmTrainer,
};
pub use train::{step_rng, train, DsmObjective, Trainer};
pub use trainloop::{
    CurveRow, LoopSettings, Objective, StepReport, TrainError, TrainLoop, CHECKPOINT_FORMAT,
};
