//! The dfdx score network (runtime width/depth) and the `Silu` module.

use crate::config::{Activation, ConfigError, ScoreNetConfig};
use crate::plan::MlpPlan;
use dfdx::prelude::*;
use rand::Rng;
use smoluchowski_core::ParamError;

/// The f32 CPU device used throughout.
pub type Dev = Cpu;
/// A row-major matrix with runtime shape.
pub type Matrix<T = NoneTape> = Tensor<(usize, usize), f32, Dev, T>;
/// A vector with runtime length.
pub type Vector<T = NoneTape> = Tensor<(usize,), f32, Dev, T>;

/// SiLU ("swish") `silu(x) = x · σ(x) = x / (1 + e^{−x})`, derivative `σ(x)(1 + x(1 − σ(x)))`.
/// dfdx 0.13 has no SiLU layer; this one composes `sigmoid` and `mul`, so autograd works.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silu;

impl dfdx::nn::ZeroSizedModule for Silu {}
impl dfdx::nn::NonMutableModule for Silu {}

impl<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>> Module<Tensor<S, E, D, T>> for Silu {
    type Output = Tensor<S, E, D, T>;
    type Error = D::Err;

    fn try_forward(&self, x: Tensor<S, E, D, T>) -> Result<Self::Output, D::Err> {
        let s = x.with_empty_tape().try_sigmoid()?;
        x.try_mul(s)
    }
}

/// Applies `act` to a tensor with any tape (the dfdx path of [`Activation::apply`]).
pub fn activate<T: Tape<f32, Dev>>(act: Activation, x: Matrix<T>) -> Matrix<T> {
    match act {
        Activation::Relu => x.relu(),
        Activation::Silu => Silu.forward(x),
        Activation::Gelu => x.fast_gelu(),
        Activation::Tanh => x.tanh(),
    }
}

/// One affine layer `y = x W + b` with `W` stored as `(in, out)` row-major.
#[derive(Debug, Clone)]
pub struct DenseLayer {
    /// Weight, shape `(in, out)`.
    pub weight: Matrix,
    /// Bias, shape `(out,)`.
    pub bias: Vector,
}

/// MLP score network on dfdx tensors with runtime width and depth.
///
/// `h_1 = act(x̃ W_1 + b_1)`, `h_{l+1} = [h_l +] act(h_l W_{l+1} + b_{l+1})`, output `h_L W_o + b_o`,
/// where `x̃ = (x, time features)` (see [`ScoreNetConfig`]).
#[derive(Debug, Clone)]
pub struct ScoreNet {
    config: ScoreNetConfig,
    /// The layer sequence of `config`, for the fast passes (built once).
    plan: MlpPlan,
    dev: Dev,
    layers: Vec<DenseLayer>,
}

impl ScoreNet {
    /// A network with PyTorch's default initialisation (weights and biases
    /// `U(−1/√in, 1/√in)`), drawn from [`smoluchowski_core::streams::seeded`]`(seed, 0)`
    /// (= `ChaCha8Rng::seed_from_u64(seed)`).
    pub fn new(config: ScoreNetConfig, seed: u64) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut rng = smoluchowski_core::streams::seeded(seed, 0);
        let shapes = config.layer_shapes();
        let mut flat = Vec::with_capacity(config.num_params());
        for &(i, o) in &shapes {
            let b = 1.0 / (i as f32).sqrt();
            for _ in 0..(i * o + o) {
                flat.push(rng.gen_range(-b..b));
            }
        }
        Self::from_flat(config, &flat)
    }

    /// A network with the given flat parameters (layout of [`ScoreNet::to_flat`]).
    pub fn from_flat(config: ScoreNetConfig, flat: &[f32]) -> Result<Self, ConfigError> {
        config.validate()?;
        if flat.len() != config.num_params() {
            return Err(ParamError::new(
                "parameters (length)",
                flat.len(),
                format!("the config's parameter count {}", config.num_params()),
            ));
        }
        let dev = Dev::default();
        let mut layers = Vec::new();
        let mut off = 0;
        for (i, o) in config.layer_shapes() {
            let weight = dev.tensor_from_vec(flat[off..off + i * o].to_vec(), (i, o));
            off += i * o;
            let bias = dev.tensor_from_vec(flat[off..off + o].to_vec(), (o,));
            off += o;
            layers.push(DenseLayer { weight, bias });
        }
        Ok(ScoreNet {
            plan: MlpPlan::new(&config),
            config,
            dev,
            layers,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ScoreNetConfig {
        &self.config
    }

    /// The layer sequence of the fast passes ([`MlpPlan`]).
    pub fn plan(&self) -> &MlpPlan {
        &self.plan
    }

    /// The dfdx device.
    pub fn device(&self) -> &Dev {
        &self.dev
    }

    /// The layers (hidden layers then the output layer).
    pub fn layers(&self) -> &[DenseLayer] {
        &self.layers
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.config.num_params()
    }

    /// All parameters in one vector: for each layer, `W` (row-major `(in, out)`) then `b`.
    pub fn to_flat(&self) -> Vec<f32> {
        let mut v = Vec::with_capacity(self.num_params());
        for l in &self.layers {
            v.extend_from_slice(&l.weight.as_vec());
            v.extend_from_slice(&l.bias.as_vec());
        }
        v
    }

    /// Overwrites all parameters from a flat vector (layout of [`ScoreNet::to_flat`]).
    ///
    /// Panics if the length is wrong.
    pub fn set_flat(&mut self, flat: &[f32]) {
        assert_eq!(flat.len(), self.num_params(), "flat parameter length");
        let mut off = 0;
        for l in &mut self.layers {
            let nw = l.weight.shape().num_elements();
            l.weight.copy_from(&flat[off..off + nw]);
            off += nw;
            let nb = l.bias.shape().num_elements();
            l.bias.copy_from(&flat[off..off + nb]);
            off += nb;
        }
    }

    /// Copies the gradients of all parameters into `out` (layout of [`ScoreNet::to_flat`]).
    pub fn grads_to_flat(&self, grads: &Gradients<f32, Dev>, out: &mut [f32]) {
        assert_eq!(out.len(), self.num_params(), "flat gradient length");
        let mut off = 0;
        for l in &self.layers {
            let gw = grads.get(&l.weight).as_vec();
            out[off..off + gw.len()].copy_from_slice(&gw);
            off += gw.len();
            let gb = grads.get(&l.bias).as_vec();
            out[off..off + gb.len()].copy_from_slice(&gb);
            off += gb.len();
        }
    }

    /// Forward pass on a prepared input `x̃` of shape `(n, input_dim)`, with or without a tape.
    pub fn forward<T: Tape<f32, Dev>>(&self, x: Matrix<T>) -> Matrix<T> {
        let act = self.config.activation;
        let last = self.layers.len() - 1;
        let mut h = x;
        for (i, l) in self.layers.iter().enumerate() {
            let n = h.shape().0;
            let o = l.bias.shape().0;
            let residual = self.config.residual && i > 0 && i < last;
            let (z, skip) = if residual {
                (h.with_empty_tape().matmul(l.weight.retaped::<T>()), Some(h))
            } else {
                (h.matmul(l.weight.retaped::<T>()), None)
            };
            let z = z + l.bias.retaped::<T>().broadcast_like::<_, Axis<0>>(&(n, o));
            h = if i == last {
                z
            } else if let Some(skip) = skip {
                activate(act, z) + skip
            } else {
                activate(act, z)
            };
        }
        h
    }

    /// Builds the input `(x, time features of t)` for a batch at one common `t`.
    pub fn input_common_t(&self, x: &[f32], t: f64) -> Matrix {
        let n = x.len() / self.config.dim;
        let mut buf = vec![0.0f32; n * self.config.input_dim()];
        self.config.fill_input_rows(x, |_| t, &mut buf);
        self.dev.tensor_from_vec(buf, (n, self.config.input_dim()))
    }

    /// Raw network output (no tape) for points `x` (`n × d`) at one common time `t`.
    pub fn predict(&self, x: &[f32], t: f64) -> Vec<f32> {
        self.forward(self.input_common_t(x, t)).as_vec()
    }
}
