//! Denoising score matching and the seeded, resumable training loop.
//!
//! Loss: `L = E_t E_x₀ E_ε λ(t) ‖s_θ(m x₀ + σ ε, t) + ε/σ‖²`, `t ~ U(t_eps, T)`, for any
//! [`smoluchowski_sde::ForwardSde`] with kernel `N(m(t) x₀, σ(t)² I)`; the weighting `λ` is a
//! [`Weighting`]. With a noise-predicting network (`s_θ = −ε_θ/σ`) and `λ = σ²` this is
//! `‖ε_θ − ε‖²`.
//!
//! Training ([`Trainer`], [`train`]) draws the batch of step `k` from its own stream
//! ([`step_rng`]`(seed, k)`), so a run is reproducible and resuming from a checkpoint
//! continues it bit-identically.

mod config;
mod dsm;
mod train;

pub use config::{DataMode, LrSchedule, OptimizerConfig, TrainConfig, TrainConfigError, Weighting};
pub use dsm::{dsm_loss, DsmBatch, LossReport, NUM_TIME_BUCKETS};
pub use train::{step_rng, train, StepReport, TrainError, Trainer};
