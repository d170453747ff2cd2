//! The network seam: what a score network must provide to be trained, checkpointed and sampled,
//! over flat `f32` parameter vectors.
//!
//! A network object carries its architecture (and a copy of its weights, for accessors and
//! sampling); every computation takes the parameters explicitly, so the optimiser owns the one
//! authoritative copy as a flat vector (moments, EMA and checkpoints are flat vectors too).
//!
//! Two training paths:
//! - [`ScoreNetwork::loss_and_grad`]: any objective given as a closure from the outputs to
//!   `(loss, ∂loss/∂outputs)`; the network back-propagates `∂loss/∂outputs` (sliced score
//!   matching, fixed-σ denoising);
//! - [`ScoreNetwork::weighted_sq_loss_and_grad`]: the weighted squared loss
//!   `L = (1/n) Σ_i ‖a_i ⊙ f_θ(x_i, t_i) − b_i‖²` of denoising score matching and of the DDPM
//!   ε-loss, with `∂L/∂f = (2/n) a ⊙ (a ⊙ f − b)`; a network with a fused pass overrides it, the
//!   default routes through [`ScoreNetwork::loss_and_grad`].

use crate::config::{NetOutput, ScoreNetConfig};
use crate::fused_train::{plan_loss_and_grad, MlpWorkspace};
use crate::net::ScoreNet;
use dfdx::prelude::*;

/// A score network `f_θ(x, t)`: rows `x ∈ ℝ^dim` and a time `t` to `dim` outputs whose meaning
/// is [`ScoreNetwork::output`], over flat `f32` parameters `θ` (length
/// [`ScoreNetwork::num_params`]).
///
/// Implement it for a new architecture; the trainers of `smoluchowski-losses` (one loop for every
/// objective), their optimiser and checkpoints then work unchanged.
pub trait ScoreNetwork: Clone + Send + Sync {
    /// The network's own form of a batch of rows `(x_i, t_i)` (for the MLP: the feature rows
    /// `(x_i, τ(t_i))`), built by [`ScoreNetwork::prepare_input`] — separately from the
    /// gradient, so a trainer can prepare the next batch while the current gradient runs.
    type Input: Default + Send + Sync;
    /// Reusable buffers of the training passes (kept by the trainer across steps).
    type Workspace: Default + Send;

    /// Row dimension of `x` and of the output.
    fn dim(&self) -> usize;
    /// Number of parameters.
    fn num_params(&self) -> usize;
    /// What the raw output means (score or noise).
    fn output(&self) -> NetOutput;
    /// The architecture as JSON (stored in checkpoints; read back by
    /// [`ScoreNetwork::from_config_json`]).
    fn config_json(&self) -> String;
    /// A network of the architecture `json` with the parameters `params`.
    fn from_config_json(json: &str, params: &[f32]) -> Result<Self, String>;
    /// An initial parameter vector drawn from `seed`.
    fn init_params(&self, seed: u64) -> Vec<f32>;
    /// The weights this object carries.
    fn params(&self) -> Vec<f32>;
    /// Overwrites the weights this object carries (panics on a wrong length).
    fn set_params(&mut self, params: &[f32]);
    /// This network with the weights `params`.
    fn with_params(&self, params: &[f32]) -> Self {
        let mut n = self.clone();
        n.set_params(params);
        n
    }

    /// Raw outputs `f_θ(x_i, t)` (`out`: `n × dim`) of the rows `x` (`n × dim`) at one common
    /// time `t` (inference; no gradient).
    fn forward(&self, params: &[f32], x: &[f32], t: f64, out: &mut [f32]);

    /// Raw outputs at one common time `t` into `out` and, per row, the trace of the
    /// input–output Jacobian `tr ∂f/∂x` into `trace` (length `n`) — for the exact divergence of
    /// the score (probability-flow likelihoods). Returns `false`, leaving the buffers alone, if
    /// the network has no such pass (the default).
    fn forward_with_jacobian_trace(
        &self,
        _params: &[f32],
        _x: &[f32],
        _t: f64,
        _out: &mut [f32],
        _trace: &mut [f64],
    ) -> bool {
        false
    }

    /// Builds the network input of the rows `x` (`n × dim`) at the per-row times `t` (`n`).
    fn prepare_input(&self, x: &[f32], t: &[f64], input: &mut Self::Input);

    /// Number of classes of a class-conditional network (labels `0..K`, plus a null label), or
    /// `None` (the default) for a network that takes no label.
    fn label_classes(&self) -> Option<usize> {
        None
    }

    /// [`ScoreNetwork::prepare_input`] with a label per row (`labels[i] ≥ K`, e.g.
    /// [`crate::NULL_LABEL`], is the null label). Only for networks with
    /// [`ScoreNetwork::label_classes`]; the default panics (objectives check `label_classes`
    /// before any batch).
    fn prepare_labelled_input(
        &self,
        _x: &[f32],
        _t: &[f64],
        _labels: &[u32],
        _input: &mut Self::Input,
    ) {
        panic!("this network takes no labels (ScoreNetwork::label_classes is None)")
    }

    /// Loss and parameter gradient of a general objective: computes the outputs `f = f_θ(input)`
    /// (`n × dim`), calls `objective(f, g)` which returns the loss and writes `g = ∂loss/∂f`
    /// (`g` is zeroed before the call), and back-propagates `g` (the gradient of `Σ f ⊙ g`) into
    /// `grad` (length [`ScoreNetwork::num_params`]). Returns the loss.
    fn loss_and_grad(
        &self,
        params: &[f32],
        input: &Self::Input,
        objective: &mut dyn FnMut(&[f32], &mut [f32]) -> f64,
        grad: &mut [f32],
        ws: &mut Self::Workspace,
    ) -> f64;

    /// The weighted squared loss `L = (1/n) Σ_i ‖a_i ⊙ f_θ(x_i, t_i) − b_i‖²` (`a`, `b`:
    /// `n × dim`) and its gradient into `grad`; writes the outputs into `out` (`n × dim`).
    /// Returns `L`. The default goes through [`ScoreNetwork::loss_and_grad`] with
    /// `∂L/∂f = (2/n) a ⊙ (a ⊙ f − b)`.
    #[allow(clippy::too_many_arguments)]
    fn weighted_sq_loss_and_grad(
        &self,
        params: &[f32],
        input: &Self::Input,
        a: &[f32],
        b: &[f32],
        out: &mut [f32],
        grad: &mut [f32],
        ws: &mut Self::Workspace,
    ) -> f64 {
        let mut objective = |f: &[f32], g: &mut [f32]| {
            let n = (f.len() / self.dim()).max(1);
            let scale = 2.0 / n as f32;
            let mut total = 0.0f64;
            for i in 0..f.len() {
                let r = a[i] * f[i] - b[i];
                total += (r as f64) * (r as f64);
                g[i] = scale * a[i] * r;
            }
            out.copy_from_slice(f);
            total / n as f64
        };
        self.loss_and_grad(params, input, &mut objective, grad, ws)
    }
}

/// The MLP: inputs are the feature rows `(x, τ(t))` of [`ScoreNetConfig::fill_input_rows`];
/// the general path is dfdx autograd (the reference), the weighted squared loss is the fused
/// [`crate::mlp_loss_and_grad`], inference and the Jacobian trace are the walks of the cached
/// [`crate::MlpPlan`] on the given parameters.
impl ScoreNetwork for ScoreNet {
    type Input = Vec<f32>;
    type Workspace = MlpWorkspace;

    fn dim(&self) -> usize {
        self.config().dim
    }

    fn num_params(&self) -> usize {
        self.config().num_params()
    }

    fn output(&self) -> NetOutput {
        self.config().output
    }

    fn config_json(&self) -> String {
        serde_json::to_string(self.config()).expect("serialises")
    }

    fn from_config_json(json: &str, params: &[f32]) -> Result<Self, String> {
        let cfg: ScoreNetConfig =
            serde_json::from_str(json).map_err(|e| format!("net_config: {e}"))?;
        ScoreNet::from_flat(cfg, params).map_err(|e| e.to_string())
    }

    fn init_params(&self, seed: u64) -> Vec<f32> {
        ScoreNet::new(self.config().clone(), seed)
            .expect("valid config")
            .to_flat()
    }

    fn params(&self) -> Vec<f32> {
        self.to_flat()
    }

    fn set_params(&mut self, params: &[f32]) {
        self.set_flat(params);
    }

    /// The inference walk of the cached [`crate::MlpPlan`] on `params`
    /// ([`crate::MlpPlan::forward_common_t`]; no copy of the weights).
    fn forward(&self, params: &[f32], x: &[f32], t: f64, out: &mut [f32]) {
        self.plan().forward_common_t(params, x, t, out);
    }

    /// Forward-mode differentiation ([`crate::MlpPlan::forward_with_jacobian_trace`]).
    fn forward_with_jacobian_trace(
        &self,
        params: &[f32],
        x: &[f32],
        t: f64,
        out: &mut [f32],
        trace: &mut [f64],
    ) -> bool {
        self.plan()
            .forward_with_jacobian_trace(params, x, t, out, trace);
        true
    }

    fn prepare_input(&self, x: &[f32], t: &[f64], input: &mut Vec<f32>) {
        let c = self.config();
        input.resize(x.len() / c.dim * c.input_dim(), 0.0);
        c.fill_input_rows(x, |i| t[i], input);
    }

    /// dfdx autograd: forward on a traced input, `g` from the objective, backward of
    /// `Σ f ⊙ g`.
    fn loss_and_grad(
        &self,
        params: &[f32],
        input: &Vec<f32>,
        objective: &mut dyn FnMut(&[f32], &mut [f32]) -> f64,
        grad: &mut [f32],
        _ws: &mut MlpWorkspace,
    ) -> f64 {
        let net = ScoreNet::from_flat(self.config().clone(), params).expect("parameter length");
        let nc = net.config();
        let (d, k) = (nc.dim, nc.input_dim());
        let rows = input.len() / k;
        let dev = net.device();
        let x = dev.tensor_from_vec(input.clone(), (rows, k));
        let out = net.forward(x.leaky_trace());
        let out_host = out.as_vec();
        let mut g = vec![0.0f32; rows * d];
        let loss = objective(&out_host, &mut g);
        let gt = dev.tensor_from_vec(g, (rows, d));
        let surrogate = (out * gt).sum::<Rank0, _>();
        let grads = surrogate.backward();
        net.grads_to_flat(&grads, grad);
        loss
    }

    /// The fused forward + backward [`crate::mlp_loss_and_grad`] (matches dfdx autograd; AVX2 kernels,
    /// bit-identical for any thread count).
    fn weighted_sq_loss_and_grad(
        &self,
        params: &[f32],
        input: &Vec<f32>,
        a: &[f32],
        b: &[f32],
        out: &mut [f32],
        grad: &mut [f32],
        ws: &mut MlpWorkspace,
    ) -> f64 {
        let loss = plan_loss_and_grad(self.plan(), params, input, a, b, grad, ws);
        out.copy_from_slice(ws.prediction());
        loss
    }
}

/// Any [`ScoreNetwork`] with fixed parameters plus its forward SDE, as a
/// [`smoluchowski_sde::Score`]: `f_θ(x, t)` converted by [`crate::output_to_score`]
/// (`s = −ε_θ/σ(t)` for noise output), and a [`smoluchowski_sde::ScoreDivergence`] if the
/// network has [`ScoreNetwork::forward_with_jacobian_trace`] (panics otherwise). Goes through
/// [`ScoreNetwork::forward`] (for the MLP, the walk of its cached [`crate::MlpPlan`] on
/// `params`: nothing is rebuilt per call; [`crate::NetScore`] is this type for the MLP).
pub struct NetworkScore<'a, N: ScoreNetwork, S: smoluchowski_sde::ForwardSde + ?Sized> {
    net: N,
    params: Vec<f32>,
    sde: &'a S,
}

impl<'a, N: ScoreNetwork, S: smoluchowski_sde::ForwardSde + ?Sized> NetworkScore<'a, N, S> {
    /// The network `net` at the parameters `params` with `sde`.
    pub fn new(net: N, params: Vec<f32>, sde: &'a S) -> Self {
        assert_eq!(params.len(), net.num_params(), "parameter length");
        NetworkScore { net, params, sde }
    }
}

impl<N: ScoreNetwork, S: smoluchowski_sde::ForwardSde + ?Sized> smoluchowski_sde::Score
    for NetworkScore<'_, N, S>
{
    fn dim(&self) -> usize {
        self.net.dim()
    }

    fn score(&mut self, x: &[f32], t: f64, out: &mut [f32]) {
        self.net.forward(&self.params, x, t, out);
        crate::output_to_score(self.net.output(), self.sde.marginal_std(t), out);
    }
}

impl<N: ScoreNetwork, S: smoluchowski_sde::ForwardSde + ?Sized> smoluchowski_sde::ScoreDivergence
    for NetworkScore<'_, N, S>
{
    /// `∇ₓ·s = tr ∂f/∂x` (score output) or `−tr ∂ε_θ/∂x / σ(t)` (noise output).
    fn score_and_divergence(
        &mut self,
        x: &[f32],
        t: f64,
        score_out: &mut [f32],
        div_out: &mut [f64],
    ) {
        assert!(
            self.net
                .forward_with_jacobian_trace(&self.params, x, t, score_out, div_out),
            "this network has no Jacobian-trace pass (ScoreNetwork::forward_with_jacobian_trace)"
        );
        let sigma = self.sde.marginal_std(t);
        crate::output_to_score(self.net.output(), sigma, score_out);
        if self.net.output() == NetOutput::Noise {
            let c = -1.0 / sigma;
            div_out.iter_mut().for_each(|v| *v *= c);
        }
    }
}
