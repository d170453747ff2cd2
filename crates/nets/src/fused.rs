//! The inference interpreter of [`MlpPlan`]: forward-only, blocks of rows in parallel, for
//! sampling ([`MlpPlan::forward_common_t`], [`FusedMlp`], [`NetScore`]).

use crate::config::{NetOutput, ScoreNetConfig};
use crate::kernels::Kernels;
use crate::net::ScoreNet;
use crate::network::NetworkScore;
use crate::plan::{hidden_layer, output_layer, LayerKind, MlpPlan};
use rayon::prelude::*;
use smoluchowski_sde::{ForwardSde, Score, ScoreDivergence};

/// Rows per independent block. Fixed, so every row's arithmetic (and thus the output) is the
/// same for any number of threads.
pub const FUSED_BLOCK_ROWS: usize = 512;

/// Per-block buffers of the forward walk (allocated once per rayon task, never per row).
pub(crate) struct BlockBuffers {
    /// Pre-activations `z` (rows × width).
    z: Vec<f32>,
    /// Activations `h` (rows × width), current and next.
    h: Vec<f32>,
    hn: Vec<f32>,
    /// Tangents `J` ((rows·d) × width), current and next (empty without tangents).
    j: Vec<f32>,
    jn: Vec<f32>,
}

impl BlockBuffers {
    pub(crate) fn new(rows: usize, width: usize, tangent_rows: usize) -> Self {
        BlockBuffers {
            z: vec![0.0; rows * width],
            h: vec![0.0; rows * width],
            hn: vec![0.0; rows * width],
            j: vec![0.0; tangent_rows * width],
            jn: vec![0.0; tangent_rows * width],
        }
    }
}

/// The tangent side of a block ([`MlpPlan::forward_with_jacobian_trace`]): the rows' traces
/// and the output weights by output unit (`w_last_t[i·k + p] = W_L[p, i]`, f64).
pub(crate) struct Tangents<'a> {
    pub(crate) trace: &'a mut [f64],
    pub(crate) w_last_t: &'a [f64],
}

impl MlpPlan {
    /// Raw network output for `n` points `x` (`n × d`) at one common time `t`, into `out`
    /// (`n × d`), with the flat parameters `params`: blocks of [`FUSED_BLOCK_ROWS`] rows in
    /// parallel (rayon), each walking the layers on the portable kernel (`gemm`), bias and
    /// activation in one pass, the time features folded into the first layer's bias
    /// (`x̃ W_1 + b_1 = x W_1[:d] + (b_1 + τ(t) W_1[d:])`).
    pub fn forward_common_t(&self, params: &[f32], x: &[f32], t: f64, out: &mut [f32]) {
        let d = self.check_rows(params, x, out);
        let b0 = self.first_layer_bias_at(params, t);
        let width = self.max_width();
        x.par_chunks(FUSED_BLOCK_ROWS * d)
            .zip(out.par_chunks_mut(FUSED_BLOCK_ROWS * d))
            .for_each_init(
                || BlockBuffers::new(FUSED_BLOCK_ROWS, width, 0),
                |bufs, (xb, ob)| self.forward_block(params, &b0, xb, ob, bufs, None),
            );
    }

    /// Checks the buffer lengths of a forward pass; returns `d`.
    pub(crate) fn check_rows(&self, params: &[f32], x: &[f32], out: &[f32]) -> usize {
        let d = self.dim();
        assert_eq!(params.len(), self.num_params(), "flat parameter length");
        assert_eq!(
            x.len() % d,
            0,
            "x length {} is not a multiple of dim {d}",
            x.len()
        );
        assert_eq!(out.len(), x.len(), "out length must equal x length");
        d
    }

    /// One block of rows through the sequence: the value path (`z`, `h`, output) and, with
    /// `tangents`, the forward-mode tangents alongside (see `divergence.rs`). The value path is
    /// the same operations with or without tangents.
    pub(crate) fn forward_block(
        &self,
        params: &[f32],
        b0: &[f32],
        x: &[f32],
        out: &mut [f32],
        bufs: &mut BlockBuffers,
        mut tangents: Option<Tangents<'_>>,
    ) {
        let kern = Kernels::portable();
        let d = self.dim();
        let n = x.len() / d;
        let act = self.activation();
        let BlockBuffers { z, h, hn, j, jn } = bufs;
        for spec in self.layers() {
            let (k, o) = (spec.inp, spec.out);
            let w = spec.weight(params);
            match spec.kind {
                LayerKind::Input => {
                    let (zs, hs) = (&mut z[..n * o], &mut h[..n * o]);
                    if tangents.is_some() {
                        hidden_layer(kern, act, false, x, d, w, b0, Some(&mut *zs), hs);
                        crate::divergence::input_tangents(act, d, o, w, zs, &mut j[..n * d * o]);
                    } else {
                        hidden_layer(kern, act, false, x, d, w, b0, None, hs);
                    }
                }
                LayerKind::Hidden { residual } => {
                    let zs = &mut z[..n * o];
                    let bias = spec.bias(params);
                    let (hs, hns) = (&h[..n * k], &mut hn[..n * o]);
                    if tangents.is_none() {
                        hidden_layer(kern, act, residual, hs, k, w, bias, None, hns);
                    } else {
                        hidden_layer(kern, act, residual, hs, k, w, bias, Some(&mut *zs), hns);
                        let (js, jns) = (&j[..n * d * k], &mut jn[..n * d * o]);
                        crate::divergence::hidden_tangents(
                            kern,
                            act,
                            residual,
                            d,
                            (k, o),
                            w,
                            zs,
                            js,
                            jns,
                        );
                    }
                    std::mem::swap(h, hn);
                    std::mem::swap(j, jn);
                }
                LayerKind::Output => {
                    let hs = &h[..n * k];
                    output_layer(kern, hs, k, w, spec.bias(params), None, out);
                    if let Some(tan) = tangents.as_mut() {
                        crate::divergence::output_trace(d, k, &j[..n * d * k], tan);
                    }
                }
            }
        }
    }
}

/// A forward-only copy of a [`ScoreNet`]: its [`MlpPlan`] and flat parameters, evaluated by
/// [`MlpPlan::forward_common_t`] (and [`MlpPlan::forward_with_jacobian_trace`]).
#[derive(Debug, Clone)]
pub struct FusedMlp {
    pub(crate) config: ScoreNetConfig,
    pub(crate) plan: MlpPlan,
    pub(crate) params: Vec<f32>,
}

impl FusedMlp {
    /// Copies the weights of `net`.
    pub fn from_net(net: &ScoreNet) -> Self {
        FusedMlp {
            config: net.config().clone(),
            plan: net.plan().clone(),
            params: net.to_flat(),
        }
    }

    /// A fused network of `config` with the flat parameters `flat` (layout of
    /// [`ScoreNet::to_flat`]); the same weights as `ScoreNet::from_flat(config, flat)`.
    ///
    /// Panics if the length is wrong.
    pub fn from_flat(config: &ScoreNetConfig, flat: &[f32]) -> Self {
        assert_eq!(flat.len(), config.num_params(), "flat parameter length");
        FusedMlp {
            config: config.clone(),
            plan: MlpPlan::new(config),
            params: flat.to_vec(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ScoreNetConfig {
        &self.config
    }

    /// Raw network output for `n` points `x` (`n × d`) at one common time `t`, into `out` (`n × d`).
    pub fn forward_common_t(&self, x: &[f32], t: f64, out: &mut [f32]) {
        self.plan.forward_common_t(&self.params, x, t, out);
    }

    /// Raw output and per-row Jacobian trace ([`MlpPlan::forward_with_jacobian_trace`]).
    pub fn forward_with_jacobian_trace(
        &self,
        x: &[f32],
        t: f64,
        out: &mut [f32],
        trace: &mut [f64],
    ) {
        self.plan
            .forward_with_jacobian_trace(&self.params, x, t, out, trace);
    }
}

/// Converts raw network outputs to scores in place — the ONE place where `s = −ε/σ(t)` lives:
/// [`NetOutput::Score`]: unchanged; [`NetOutput::Noise`]: `s = −ε_θ / σ(t)` (σ > 0 required).
pub fn output_to_score(output: NetOutput, sigma: f64, out: &mut [f32]) {
    if output == NetOutput::Noise {
        let c = (-1.0 / sigma) as f32;
        for v in out.iter_mut() {
            *v *= c;
        }
    }
}

/// A trained network plus its forward SDE, as a [`Score`]: `s_θ(x, t)` (Score output) or
/// `−ε_θ(x, t)/σ(t)` (Noise output), and a [`ScoreDivergence`]. The seam's path:
/// [`NetworkScore`]`<ScoreNet, S>` under its MLP name (inference by
/// [`MlpPlan::forward_common_t`], no tape). With Noise output, `t` must be > 0 (σ(0) = 0).
pub struct NetScore<'a, S: ForwardSde + ?Sized>(NetworkScore<'a, ScoreNet, S>);

impl<'a, S: ForwardSde + ?Sized> NetScore<'a, S> {
    /// Snapshot of `net`'s weights with the SDE whose `σ(t)` converts noise to score.
    pub fn new(net: &ScoreNet, sde: &'a S) -> Self {
        NetScore(NetworkScore::new(net.clone(), net.to_flat(), sde))
    }
}

impl<S: ForwardSde + ?Sized> Score for NetScore<'_, S> {
    fn dim(&self) -> usize {
        self.0.dim()
    }

    fn score(&mut self, x: &[f32], t: f64, out: &mut [f32]) {
        self.0.score(x, t, out);
    }
}

impl<S: ForwardSde + ?Sized> ScoreDivergence for NetScore<'_, S> {
    /// See [`NetworkScore`]'s: `s` as [`Score::score`] (bit-identical) and `∇ₓ·s`.
    fn score_and_divergence(
        &mut self,
        x: &[f32],
        t: f64,
        score_out: &mut [f32],
        div_out: &mut [f64],
    ) {
        self.0.score_and_divergence(x, t, score_out, div_out);
    }
}

/// The same [`Score`] through the dfdx forward pass, in chunks of `chunk_rows` rows
/// (reference for [`NetScore`], and usable for any model the fused path does not cover).
pub struct DfdxNetScore<'a, S: ForwardSde + ?Sized> {
    sde: &'a S,
    net: &'a ScoreNet,
    chunk_rows: usize,
}

impl<'a, S: ForwardSde + ?Sized> DfdxNetScore<'a, S> {
    /// Wraps `net` and `sde`; evaluates at most `chunk_rows` rows per forward pass (e.g. 16 384).
    pub fn new(net: &'a ScoreNet, sde: &'a S, chunk_rows: usize) -> Self {
        DfdxNetScore {
            sde,
            net,
            chunk_rows: chunk_rows.max(1),
        }
    }
}

impl<S: ForwardSde + ?Sized> Score for DfdxNetScore<'_, S> {
    fn dim(&self) -> usize {
        self.net.config().dim
    }

    fn score(&mut self, x: &[f32], t: f64, out: &mut [f32]) {
        let d = self.net.config().dim;
        for (xc, oc) in x
            .chunks(self.chunk_rows * d)
            .zip(out.chunks_mut(self.chunk_rows * d))
        {
            let y = self.net.predict(xc, t);
            oc.copy_from_slice(&y);
        }
        output_to_score(self.net.config().output, self.sde.marginal_std(t), out);
    }
}
