//! The one description of the MLP's layer sequence ([`MlpPlan`]), and the layer steps its fast
//! passes share.
//!
//! The network `y = F(x, τ(t))` of a [`ScoreNetConfig`], on the input features
//! `x̃ = (x, τ(t))` (`dim + time_features` columns, [`ScoreNetConfig::fill_input_rows`]):
//!
//! - [`LayerKind::Input`]: `z_0 = x̃ W_0 + b_0`, `h_0 = act(z_0)`;
//! - [`LayerKind::Hidden`]: `z_l = h_{l−1} W_l + b_l`, `h_l = act(z_l)`, or
//!   `h_l = h_{l−1} + act(z_l)` for a residual block;
//! - [`LayerKind::Output`]: `y = h_{L−1} W_L + b_L` (linear; its meaning is [`NetOutput`]).
//!
//! The parameters are one flat vector (layout of [`crate::ScoreNet::to_flat`]: per layer `W_l`
//! row-major `(in, out)`, then `b_l`); each [`LayerSpec`] holds its offsets.
//!
//! Three interpreters walk the sequence, all on the products of [`crate::kernels`]:
//! - inference, [`MlpPlan::forward_common_t`] (`fused.rs`): blocks of rows at one common `t`,
//!   the time features folded into the first layer's bias ([`MlpPlan::first_layer_bias_at`]);
//! - forward with tangents, [`MlpPlan::forward_with_jacobian_trace`] (`divergence.rs`): the
//!   same walk carrying `∂h_l/∂x_j` alongside, for the exact divergence;
//! - forward + backward, [`crate::mlp_loss_and_grad`] (`fused_train.rs`): the weighted squared
//!   loss and its parameter gradient.
//!
//! The hidden-layer step ([`hidden_layer`]) and the output step ([`output_layer`]) are shared
//! by all three. The dfdx [`crate::ScoreNet::forward`] stays the independent reference.

use crate::config::{embed_time_with, Activation, NetOutput, ScoreNetConfig};
use crate::kernels::{Epilogue, Kernels, Strided};

/// What a layer of the sequence does (formulas in the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// The first layer, on the input features `(x, τ(t))`: `h_0 = act(x̃ W_0 + b_0)`.
    Input,
    /// `h_l = act(h_{l−1} W_l + b_l)`, plus `h_{l−1}` if `residual`.
    Hidden {
        /// Whether the block adds its input (skip connection).
        residual: bool,
    },
    /// The linear output head `y = h_{L−1} W_L + b_L`.
    Output,
}

/// One affine layer of the sequence: shape and offsets in the flat parameter vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSpec {
    /// Input width (`W` has this many rows).
    pub inp: usize,
    /// Output width (`W` has this many columns).
    pub out: usize,
    /// Offset of `W` (row-major `inp × out`) in the flat parameters.
    pub w: usize,
    /// Offset of `b` (length `out`) in the flat parameters.
    pub b: usize,
    /// What the layer does.
    pub kind: LayerKind,
}

impl LayerSpec {
    /// `W` (row-major `inp × out`) in the flat parameters.
    #[inline]
    pub fn weight<'p>(&self, params: &'p [f32]) -> &'p [f32] {
        &params[self.w..self.w + self.inp * self.out]
    }

    /// `b` in the flat parameters.
    #[inline]
    pub fn bias<'p>(&self, params: &'p [f32]) -> &'p [f32] {
        &params[self.b..self.b + self.out]
    }

    /// Whether the layer is a residual block.
    #[inline]
    pub fn residual(&self) -> bool {
        matches!(self.kind, LayerKind::Hidden { residual: true })
    }
}

/// The MLP's layer sequence, built once from a [`ScoreNetConfig`]: the input features, the
/// layers with their kinds and parameter offsets, the activation and the output kind. Holds no
/// weights: every pass takes the flat parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct MlpPlan {
    dim: usize,
    input_dim: usize,
    activation: Activation,
    /// The config's residual flag (every `Hidden` layer's).
    residual: bool,
    output: NetOutput,
    /// Angular frequencies of the time features ([`ScoreNetConfig::angular_frequencies`]).
    freqs: Vec<f64>,
    layers: Vec<LayerSpec>,
    num_params: usize,
    /// Label features after the time features (`0` unconditional; `classes + 1` one-hot
    /// columns for a conditional MLP, the last one the null label).
    label_features: usize,
}

impl MlpPlan {
    /// The sequence of `config`: `Input`, `depth − 1` × `Hidden { residual }`, `Output`.
    pub fn new(config: &ScoreNetConfig) -> Self {
        Self::with_label_features(config, 0)
    }

    /// The sequence of `config` with `label_features` more input columns after the time
    /// features, `x̃ = (x, τ(t), e)`: the one-hot label columns of a conditional MLP
    /// ([`crate::ConditionalMlp`]; the last column is the null label). `0` is [`MlpPlan::new`].
    pub fn with_label_features(config: &ScoreNetConfig, label_features: usize) -> Self {
        let mut shapes = config.layer_shapes();
        shapes[0].0 += label_features;
        let last = shapes.len() - 1;
        let mut off = 0;
        let layers = shapes
            .iter()
            .enumerate()
            .map(|(l, &(inp, out))| {
                let kind = if l == 0 {
                    LayerKind::Input
                } else if l == last {
                    LayerKind::Output
                } else {
                    LayerKind::Hidden {
                        residual: config.residual,
                    }
                };
                let spec = LayerSpec {
                    inp,
                    out,
                    w: off,
                    b: off + inp * out,
                    kind,
                };
                off += inp * out + out;
                spec
            })
            .collect();
        MlpPlan {
            dim: config.dim,
            input_dim: config.input_dim() + label_features,
            activation: config.activation,
            residual: config.residual,
            output: config.output,
            freqs: config.angular_frequencies(),
            layers,
            num_params: off,
            label_features,
        }
    }

    /// Label columns after the time features (`0` for an unconditional MLP).
    pub fn label_features(&self) -> usize {
        self.label_features
    }

    /// Row dimension of `x` and of the output.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Width of the input features `(x, τ(t))`.
    pub fn input_dim(&self) -> usize {
        self.input_dim
    }

    /// The hidden-layer activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// Whether the hidden blocks are residual.
    pub fn residual(&self) -> bool {
        self.residual
    }

    /// What the output means.
    pub fn output(&self) -> NetOutput {
        self.output
    }

    /// The layers in order (`Input`, `Hidden`…, `Output`).
    pub fn layers(&self) -> &[LayerSpec] {
        &self.layers
    }

    /// Length of the flat parameter vector.
    pub fn num_params(&self) -> usize {
        self.num_params
    }

    /// The widest layer output.
    pub(crate) fn max_width(&self) -> usize {
        self.layers.iter().map(|l| l.out).max().unwrap_or(1)
    }

    /// The first layer's effective bias at time `t`, with the time features `τ(t)` folded in:
    /// `b₀ + Σ_k τ_k(t) W₀[d + k, ·]` (they do not depend on `x`, so
    /// `x̃ W₀ + b₀ = x W₀[:d] + (b₀ + τ(t) W₀[d:])`). With label features, the null label's
    /// one-hot column is folded in too (the passes without labels are the null condition).
    pub(crate) fn first_layer_bias_at(&self, params: &[f32], t: f64) -> Vec<f32> {
        let d = self.dim;
        let first = &self.layers[0];
        let w = first.weight(params);
        let mut tf = vec![0.0f32; self.input_dim - d];
        embed_time_with(&self.freqs, t, &mut tf);
        if self.label_features > 0 {
            tf[self.input_dim - d - 1] = 1.0;
        }
        let mut b0 = first.bias(params).to_vec();
        for (k, &f) in tf.iter().enumerate() {
            let row = &w[(d + k) * first.out..(d + k + 1) * first.out];
            for (b, &wv) in b0.iter_mut().zip(row) {
                *b += f * wv;
            }
        }
        b0
    }

    /// The time features of `t` (for references that rebuild the input `x̃`).
    #[cfg(test)]
    pub(crate) fn time_features_at(&self, t: f64) -> Vec<f32> {
        let mut tf = vec![0.0f32; self.input_dim - self.dim];
        embed_time_with(&self.freqs, t, &mut tf);
        tf
    }
}

/// Derivative of the activation at pre-activation `z`.
#[inline(always)]
pub(crate) fn act_grad(act: Activation, z: f32) -> f32 {
    match act {
        Activation::Relu => {
            if z > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::Silu => {
            let s = 1.0 / (1.0 + (-z).exp());
            s * (1.0 + z * (1.0 - s))
        }
        Activation::Gelu => {
            let beta = std::f32::consts::FRAC_2_PI.sqrt();
            let kappa = 0.044715f32;
            let th = (beta * (z + kappa * z * z * z)).tanh();
            0.5 * (1.0 + th) + 0.5 * z * (1.0 - th * th) * beta * (1.0 + 3.0 * kappa * z * z)
        }
        Activation::Tanh => {
            let t = z.tanh();
            1.0 - t * t
        }
    }
}

/// Runs `$body` with `$f` bound to a closure computing `$act`'s function (`apply`) or
/// derivative (`grad`), so the element-wise loops are monomorphised per activation and vectorise.
macro_rules! with_act {
    ($act:expr, apply, $f:ident => $body:expr) => {
        match $act {
            Activation::Relu => {
                let $f = |z: f32| Activation::Relu.apply(z);
                $body
            }
            Activation::Silu => {
                let $f = |z: f32| Activation::Silu.apply(z);
                $body
            }
            Activation::Gelu => {
                let $f = |z: f32| Activation::Gelu.apply(z);
                $body
            }
            Activation::Tanh => {
                let $f = |z: f32| Activation::Tanh.apply(z);
                $body
            }
        }
    };
    ($act:expr, grad, $f:ident => $body:expr) => {
        match $act {
            Activation::Relu => {
                let $f = |z: f32| $crate::plan::act_grad(Activation::Relu, z);
                $body
            }
            Activation::Silu => {
                let $f = |z: f32| $crate::plan::act_grad(Activation::Silu, z);
                $body
            }
            Activation::Gelu => {
                let $f = |z: f32| $crate::plan::act_grad(Activation::Gelu, z);
                $body
            }
            Activation::Tanh => {
                let $f = |z: f32| $crate::plan::act_grad(Activation::Tanh, z);
                $body
            }
        }
    };
}
pub(crate) use with_act;

/// Row-major view of a `rows × cols` buffer as the `A` operand.
#[inline]
pub(crate) fn rows_of(data: &[f32], cols: usize) -> Strided<'_> {
    Strided {
        data,
        rs: cols,
        cs: 1,
    }
}

/// One `Input` or `Hidden` layer on the `n = h.len() / out` rows of `input` (`n × k`, row-major):
/// `z = input · W[..k] + bias`, `h = act(z)`, or `h = input + act(z)` if `residual` (then
/// `k = out`). `w` is row-major with `out` columns; only its first `k` rows are read (the first
/// layer at a common `t` reads the `x` rows, its bias having the time features folded in).
///
/// `z` keeps the pre-activations for the passes that read `act'(z)`; with `None` they are not
/// kept: a plain (non-residual) ReLU layer on the SIMD kernels gets `h = max(input · W + bias, 0)`
/// from the kernel's epilogue, any other layer is activated in place in `h` (measured faster
/// than the portable kernel's scalar epilogue). Otherwise the bias is added in the kernel's epilogue where the SIMD
/// kernels serve `out` columns, and in the activation pass where they do not: the same f32 sum
/// `(input · W)_ij + b_j` either way, so the numbers depend only on the product's kernel.
#[allow(clippy::too_many_arguments)]
pub(crate) fn hidden_layer(
    kern: Kernels,
    act: Activation,
    residual: bool,
    input: &[f32],
    k: usize,
    w: &[f32],
    bias: &[f32],
    z: Option<&mut [f32]>,
    h: &mut [f32],
) {
    let out = bias.len();
    let n = h.len() / out;
    let Some(z) = z else {
        if act == Activation::Relu && !residual && kern.simd_for(out) {
            let epi = Epilogue::BiasRelu(bias);
            kern.matmul(n, out, k, rows_of(input, k), w, out, h, out, epi);
        } else {
            activate_in_place(kern, act, residual, input, k, w, bias, h);
        }
        return;
    };
    let bias_in_kernel = kern.simd_for(out);
    let epi = if bias_in_kernel {
        Epilogue::Bias(bias)
    } else {
        Epilogue::Store
    };
    kern.matmul(n, out, k, rows_of(input, k), w, out, z, out, epi);
    with_act!(act, apply, f => {
        match (bias_in_kernel, residual) {
            (true, false) => {
                for (hv, &zv) in h.iter_mut().zip(z.iter()) {
                    *hv = f(zv);
                }
            }
            (true, true) => {
                for ((hv, &zv), &pv) in h.iter_mut().zip(z.iter()).zip(input) {
                    *hv = pv + f(zv);
                }
            }
            (false, false) => {
                for (zr, hr) in z.chunks_exact_mut(out).zip(h.chunks_exact_mut(out)) {
                    for ((zv, &b), hv) in zr.iter_mut().zip(bias).zip(hr) {
                        *zv += b;
                        *hv = f(*zv);
                    }
                }
            }
            (false, true) => {
                for ((zr, hr), pr) in z
                    .chunks_exact_mut(out)
                    .zip(h.chunks_exact_mut(out))
                    .zip(input.chunks_exact(k))
                {
                    for (((zv, &b), hv), &pv) in zr.iter_mut().zip(bias).zip(hr).zip(pr) {
                        *zv += b;
                        *hv = pv + f(*zv);
                    }
                }
            }
        }
    });
}

/// The `z = None` case of [`hidden_layer`] for a layer whose activation is not fused into the
/// kernel: the product computed in `h`, then `h ← act(h + b)` (or `input + act(h + b)`) in
/// place — the same f32 operations as keeping `z`, one buffer fewer to write and read.
#[allow(clippy::too_many_arguments)]
fn activate_in_place(
    kern: Kernels,
    act: Activation,
    residual: bool,
    input: &[f32],
    k: usize,
    w: &[f32],
    bias: &[f32],
    h: &mut [f32],
) {
    let out = bias.len();
    let n = h.len() / out;
    let bias_in_kernel = kern.simd_for(out);
    let epi = if bias_in_kernel {
        Epilogue::Bias(bias)
    } else {
        Epilogue::Store
    };
    kern.matmul(n, out, k, rows_of(input, k), w, out, h, out, epi);
    with_act!(act, apply, f => {
        match (bias_in_kernel, residual) {
            (true, false) => h.iter_mut().for_each(|hv| *hv = f(*hv)),
            (true, true) => {
                for (hv, &pv) in h.iter_mut().zip(input) {
                    *hv = pv + f(*hv);
                }
            }
            (false, false) => {
                for hr in h.chunks_exact_mut(out) {
                    for (hv, &b) in hr.iter_mut().zip(bias) {
                        *hv = f(*hv + b);
                    }
                }
            }
            (false, true) => {
                for (hr, pr) in h.chunks_exact_mut(out).zip(input.chunks_exact(k)) {
                    for ((hv, &b), &pv) in hr.iter_mut().zip(bias).zip(pr) {
                        *hv = pv + f(*hv + b);
                    }
                }
            }
        }
    });
}

/// The `Output` layer on the rows of `h` (`n × k`): `y = h W + b` into `out` (`n × b.len()`).
/// With `wt = Some(Wᵀ)` (`b.len() × k`, row-major) and an output too narrow for the SIMD
/// kernels, one dot product per output ([`Kernels::narrow_output`], the training pass);
/// otherwise the kernel product with the bias in its epilogue.
pub(crate) fn output_layer(
    kern: Kernels,
    h: &[f32],
    k: usize,
    w: &[f32],
    bias: &[f32],
    wt: Option<&[f32]>,
    out: &mut [f32],
) {
    let o = bias.len();
    match wt {
        Some(wt) if !kern.simd_for(o) => kern.narrow_output(h, k, wt, bias, out),
        _ => kern.matmul(
            out.len() / o,
            o,
            k,
            rows_of(h, k),
            w,
            o,
            out,
            o,
            Epilogue::Bias(bias),
        ),
    }
}
