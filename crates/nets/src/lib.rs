//! Score networks on dfdx 0.13 (f32, CPU).
//!
//! - [`ScoreNetConfig`]: serde-embeddable architecture (width, depth, activation, residual,
//!   time embedding, score or noise output), with presets [`ScoreNetConfig::part2`] and
//!   [`ScoreNetConfig::default_2d`].
//! - [`ScoreNet`]: the dfdx model (runtime shapes, autograd through any tape).
//! - [`Silu`]: `x · σ(x)` as a dfdx module.
//! - [`NetScore`]: a trained network plus its SDE as a [`smoluchowski_sde::Score`]; the one
//!   place where a noise prediction becomes a score, `s = −ε_θ/σ(t)`. It runs a fused, forward-only
//!   copy of the network ([`FusedMlp`]); [`DfdxNetScore`] is the dfdx reference. It is also a
//!   [`smoluchowski_sde::ScoreDivergence`]: the exact divergence `∇·s` by forward-mode
//!   differentiation ([`FusedMlp::forward_with_jacobian_trace`]).
//! - Save/load: [`ScoreNet::save`], [`ScoreNet::load`], [`ScoreNet::load_expecting`].

mod config;
mod divergence;
mod fused;
mod fused_train;
mod io;
mod kernels;
mod net;
mod network;

pub use config::{
    embed_time_with, Activation, ConfigError, NetOutput, ScoreNetConfig, TimeEmbedding,
};
pub use fused::{output_to_score, DfdxNetScore, FusedMlp, NetScore, FUSED_BLOCK_ROWS};
pub use fused_train::{mlp_loss_and_grad, MlpWorkspace, TRAIN_CHUNK_ROWS};
pub use io::{read_f32, sidecar_path, tensors_to_bytes, write_atomic, NetIoError};
pub use net::{activate, DenseLayer, Dev, Matrix, ScoreNet, Silu, Vector};
pub use network::ScoreNetwork;

/// Re-export of dfdx so downstream crates use the same version.
pub use dfdx;
