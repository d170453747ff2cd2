//! Score-matching objectives and the one seeded, resumable training loop.
//!
//! **Objectives** ([`Objective`]: draw step `k`'s batch from its own stream, compute loss and
//! parameter gradient through the network seam [`smoluchowski_nets::ScoreNetwork`]):
//! - [`DsmObjective`], denoising score matching
//!   `L = E_t E_x₀ E_ε λ(t) ‖s_θ(m x₀ + σ ε, t) + ε/σ‖²`, `t ~ U(t_eps, T)`, for any
//!   [`smoluchowski_sde::ForwardSde`] with kernel `N(m(t) x₀, σ(t)² I)`; the weighting `λ` is a
//!   [`Weighting`]. With a noise-predicting network (`s_θ = −ε_θ/σ`) and `λ = σ²` this is
//!   `‖ε_θ − ε‖²`. Per row `‖a ⊙ f_θ − b‖²` (see [`DsmBatch`]): the network's weighted squared
//!   loss. Discrete DDPM training (Ho et al.'s ε-loss
//!   `E_{i, x₀, ε} ‖ε − ε_θ(√ᾱ_i x₀ + √(1 − ᾱ_i) ε, t_i)‖²`): [`TimeSampling::Discrete`] with the
//!   chain's kernel [`DdpmKernel`].
//! - [`SsmObjective`], sliced score matching by finite differences
//!   `E_x E_v [vᵀ(s₊ − s₋)/(2h) + ½ (vᵀ(s₊ + s₋)/2)²]` and fixed-σ denoising score matching
//!   `E ‖σ s_θ(x + σ ε) + ε‖²`, without a diffusion (see [`ScoreObjective`]); through the
//!   network's general loss-and-gradient with an output-gradient callback.
//!
//! **One loop** ([`TrainLoop`]): batch, loss and gradient, stop on a non-finite loss naming the
//! step (no update), clip, Adam/AdamW ([`optim`]: `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
//! `θ ← θ(1 − lr·wd) − lr m̂/(√v̂ + ε)`), EMA, loss curve, progress callback, checkpoints with
//! bit-exact resume. [`Trainer`] (DSM) and [`SsmTrainer`] are thin wrappers over it for the MLP
//! [`smoluchowski_nets::ScoreNet`]; [`train`] runs a [`Trainer`].
//!
//! A new network implements [`smoluchowski_nets::ScoreNetwork`]; training (every objective, the
//! optimiser, EMA, clipping) and checkpoints are written once here, and sampling goes through
//! [`smoluchowski_nets::NetworkScore`].
//!
//! **Image classifier** (the yardstick for generated images): [`train_classifier`] (mean
//! cross-entropy, Adam, warm-up + cosine, optional ±s-pixel shifts), [`cached_classifier`] /
//! [`mnist_classifier`] (trained once per recipe, seed and data, cached as
//! `<cache>/classifiers/<sha256>.safetensors`, test accuracy checked), and
//! [`evaluate_generated`]: confidence, χ² class histogram, Fréchet distance, KID, precision and
//! recall of generated images next to their noise floor on held-out real images, and
//! [`memorisation`] (nearest training images) ([`image_eval`]).
//!
//! Step `k` draws its batch from its own stream ([`step_rng`]`(seed, k)` =
//! `smoluchowski_core::streams::seeded(seed, k + 1)`), so a run is reproducible and resuming from
//! a checkpoint continues it bit-identically.

pub mod classifier_cache;
pub mod classify;
mod conditional;
mod config;
mod curve;
mod dsm;
pub mod image_eval;
mod memory;
pub mod optim;
mod score_map;
mod ssm;
mod train;
mod trainloop;

pub use classifier_cache::{
    cached_classifier, mnist_classifier, mnist_data_id, mnist_pixels, test_accuracy,
    CachedClassifier, ClassifierCacheError, ClassifierData, ClassifierProgress, ClassifierRecipe,
    LabelledImages, CLASSIFIER_CACHE_FORMAT,
};
pub use classify::{train_classifier, ClassifierStep, ClassifierTraining};
pub use conditional::{LabelledBatch, LabelledDsmObjective};
pub use config::{
    DataMode, LrSchedule, OptimizerConfig, TimeSampling, TrainConfig, TrainConfigError, Weighting,
};
pub use curve::curve_csv;
pub use dsm::{dsm_loss, dsm_loss_with_time, DsmBatch, LossReport, NUM_TIME_BUCKETS};
pub use image_eval::{evaluate_generated, memorisation, RealImageSplit};
pub use memory::{ssm_memory_estimates, train_memory_estimates};
pub use optim::{OptimSettings, Optimizer};
pub use score_map::local_relative_score_error;
pub use smoluchowski_sde::DdpmKernel;
pub use ssm::{
    eval_rng, fd_ssm_terms, relative_score_error, sliced_score_matching_loss, ssm_loss_and_grad,
    Projection, ScoreObjective, SsmBatch, SsmConfig, SsmObjective, SsmTrainer,
};
pub use train::{step_rng, train, DsmObjective, Trainer};
pub use trainloop::{
    CurveRow, LoopSettings, Objective, StepReport, TrainError, TrainLoop, CHECKPOINT_FORMAT,
};
