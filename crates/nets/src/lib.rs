//! Score networks (f32, CPU): the MLP on dfdx 0.13 and the image networks on our own ops.
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
//!   fused [`mlp_loss_and_grad`]; inference and Jacobian trace: walks of its [`MlpPlan`]).
//! - [`MlpPlan`]: the one description of the MLP's layer sequence ([`LayerSpec`]s of kind
//!   [`LayerKind`]: input features `(x, τ(t))`, dense layers with activation, residual blocks,
//!   the output head and its [`NetOutput`]), built once from a [`ScoreNetConfig`]. Three
//!   interpreters walk it on the kernels of `kernels.rs`: inference
//!   ([`MlpPlan::forward_common_t`]), forward with tangents
//!   ([`MlpPlan::forward_with_jacobian_trace`]) and forward + backward ([`mlp_loss_and_grad`]).
//! - [`Silu`]: `x · σ(x)` as a dfdx module.
//! - [`NetScore`]: a trained MLP plus its SDE as a [`smoluchowski_sde::Score`] and
//!   [`smoluchowski_sde::ScoreDivergence`] — [`NetworkScore`]`<ScoreNet, _>` under its MLP name;
//!   noise predictions become scores in one place, [`output_to_score`] (`s = −ε_θ/σ(t)`), and
//!   the exact divergence `∇·s` comes from forward-mode differentiation.
//!   [`DfdxNetScore`] is the dfdx reference; [`FusedMlp`] is a plan plus a weight copy.
//! - Save/load: [`ScoreNet::save`], [`ScoreNet::load`], [`ScoreNet::load_expecting`]; the UNet
//!   by PyTorch `state_dict` names and layouts ([`unet_io`]: [`UNet::save_safetensors`],
//!   [`UNet::load_safetensors`]), interchangeable with `benches/peer/unet_peer.py`.
//! - Kernels: [`KernelLevel`] (portable, AVX2 + FMA, AVX-512), picked at run time
//!   ([`kernel_level`]; `SMOLUCHOWSKI_KERNELS=portable|avx2|avx512` caps it, see
//!   [`KERNELS_ENV`]); the SIMD levels give bit-identical results.
//! - Images: [`conv`] (convolution, GroupNorm, upsampling; forward and backward, NHWC),
//!   [`UNet`] (the notes' MNIST score network, a [`ScoreNetwork`]) and [`ImageClassifier`]
//!   (the yardstick for generated images: confidence and Fréchet-distance features).
//! - [`profile`]: opt-in wall-clock breakdown of the image networks' operations
//!   (`SMOLUCHOWSKI_PROFILE=1`; printed by `cargo xtask bench`).

pub mod classifier;
mod conditional;
mod config;
pub mod conv;
mod divergence;
mod elementwise;
mod fused;
mod fused_train;
mod io;
mod kernels;
mod layers;
mod net;
mod network;
mod plan;
mod pool;
pub mod profile;
pub mod unet;
pub mod unet_io;

pub use classifier::{softmax, ClassifierConfig, ClassifierOutputs, ImageClassifier, EVAL_CHUNK};
pub use conditional::{
    ConditionalMlp, ConditionalMlpConfig, ConditionalNetScore, MAX_CLASSES, NULL_LABEL,
};
pub use config::{
    embed_time_with, Activation, ConfigError, NetOutput, ScoreNetConfig, TimeEmbedding,
};
pub use fused::{output_to_score, DfdxNetScore, FusedMlp, NetScore, FUSED_BLOCK_ROWS};
pub use fused_train::{mlp_loss_and_grad, MlpWorkspace, TRAIN_CHUNK_ROWS};
pub use io::{read_f32, sidecar_path, tensors_to_bytes, write_atomic, NetIoError};
pub use kernels::{
    kernel_level, kernel_level_from_env, matmul, KernelLevel, KernelLevelError, KERNELS_ENV,
};
pub use net::{activate, DenseLayer, Dev, Matrix, ScoreNet, Silu, Vector};
pub use network::{NetworkScore, ScoreNetwork};
pub use plan::{LayerKind, LayerSpec, MlpPlan};
pub use unet::{UNet, UNetConfig, UNetInput};
pub use unet_io::{unet_tensors, TensorLayout, UNetTensor, UNET_CONFIG_KEY};

/// Re-export of dfdx so downstream crates use the same version.
pub use dfdx;
