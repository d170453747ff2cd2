//! Score networks on dfdx 0.13 (f32, CPU).
//!
//! - [`ScoreNetwork`]: the seam every score network implements, over flat `f32` parameters
//!   (dimension, parameter count, output kind, config JSON for checkpoints, initial parameters,
//!   inference `forward`, a general loss-and-gradient with an output-gradient callback, and the
//!   weighted squared loss `(1/n) Σ ‖a ⊙ f_θ(x_i, t_i) − b_i‖²` with a default through the
//!   callback). A new network implements the trait; training (`smoluchowski-losses`' one loop
//!   for every objective), checkpoints and sampling ([`NetworkScore`]) are written once.
//! - [`ScoreNetConfig`]: serde-embeddable MLP architecture (width, depth, activation, residual,
//!   time embedding, score or noise output), with presets [`ScoreNetConfig::part2`] and
//!   [`ScoreNetConfig::default_2d`].
//! - [`ScoreNet`]: the dfdx MLP (runtime shapes, autograd through any tape); implements
//!   [`ScoreNetwork`] (general loss: dfdx autograd, the reference; weighted squared loss: the
//!   fused [`mlp_loss_and_grad`]; inference: [`FusedMlp`]).
//! - [`Silu`]: `x · σ(x)` as a dfdx module.
//! - [`NetScore`]: a trained MLP plus its SDE as a [`smoluchowski_sde::Score`]; noise predictions
//!   become scores in one place, [`output_to_score`] (`s = −ε_θ/σ(t)`). It runs a fused,
//!   forward-only copy of the network ([`FusedMlp`]); [`DfdxNetScore`] is the dfdx reference;
//!   [`NetworkScore`] is the same for any [`ScoreNetwork`]. [`NetScore`] is also a
//!   [`smoluchowski_sde::ScoreDivergence`]: the exact divergence `∇·s` by forward-mode
//!   differentiation ([`FusedMlp::forward_with_jacobian_trace`]; MLP-specific, not yet on the
//!   trait).
//! - Save/load: [`ScoreNet::save`], [`ScoreNet::load`], [`ScoreNet::load_expecting`].

pub mod classifier;
mod config;
pub mod conv;
mod divergence;
mod fused;
mod fused_train;
mod io;
mod kernels;
mod layers;
mod net;
mod network;
pub mod unet;

pub use classifier::{ClassifierConfig, ImageClassifier};
pub use config::{
    embed_time_with, Activation, ConfigError, NetOutput, ScoreNetConfig, TimeEmbedding,
};
pub use fused::{output_to_score, DfdxNetScore, FusedMlp, NetScore, FUSED_BLOCK_ROWS};
pub use fused_train::{mlp_loss_and_grad, MlpWorkspace, TRAIN_CHUNK_ROWS};
pub use io::{read_f32, sidecar_path, tensors_to_bytes, write_atomic, NetIoError};
pub use net::{activate, DenseLayer, Dev, Matrix, ScoreNet, Silu, Vector};
pub use network::{NetworkScore, ScoreNetwork};
pub use unet::{UNet, UNetConfig, UNetInput};

/// Re-export of dfdx so downstream crates use the same version.
pub use dfdx;
