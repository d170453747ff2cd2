//! # smoluchowski
//!
//! Score-based diffusion models in Rust, seeded and checked against exact, analytic truth.
//! This facade re-exports the workspace's crates:
//!
//! - [`core`]: the one parameter error (with field paths), seed streams, memory estimates;
//! - [`datasets`]: datasets with exact marginals (ring2d, ...);
//! - [`sde`]: forward SDEs with analytic kernels (Ornstein–Uhlenbeck, VP, sub-VP);
//! - [`metrics`]: histograms, marginals, Kolmogorov–Smirnov tests, sample distances;
//! - [`nets`]: time-conditioned score networks on dfdx;
//! - [`losses`]: denoising score matching;
//! - [`samplers`]: reverse SDE, probability-flow ODE, predictor–corrector;
//! - [`figures`]: PNG figures; [`tensorboard`]: TensorBoard event files.

pub use smoluchowski_core as core;
pub use smoluchowski_datasets as datasets;
pub use smoluchowski_figures as figures;
pub use smoluchowski_losses as losses;
pub use smoluchowski_metrics as metrics;
pub use smoluchowski_nets as nets;
pub use smoluchowski_samplers as samplers;
pub use smoluchowski_sde as sde;
pub use smoluchowski_tensorboard as tensorboard;
