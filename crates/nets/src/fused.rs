//! Forward-only fused MLP over the same weights as [`ScoreNet`], on `gemm`, for sampling.

use crate::config::{embed_time_with, Activation, NetOutput, ScoreNetConfig};
use crate::fused_train::with_act;
use crate::net::ScoreNet;
use dfdx::shapes::HasShape;
use rayon::prelude::*;
use smoluchowski_sde::{ForwardSde, Score};

/// Rows per independent block. Fixed, so every row's arithmetic (and thus the output) is the
/// same for any number of threads.
pub const FUSED_BLOCK_ROWS: usize = 512;

#[derive(Debug, Clone)]
pub(crate) struct HostLayer {
    pub(crate) inp: usize,
    pub(crate) out: usize,
    /// Row-major `(in, out)`.
    pub(crate) w: Vec<f32>,
    pub(crate) b: Vec<f32>,
}

/// A forward-only copy of a [`ScoreNet`]: the same formula, evaluated by `gemm` on blocks of
/// [`FUSED_BLOCK_ROWS`] rows in parallel (rayon), bias and activation fused into one pass, and
/// the time features of a common `t` folded into the first layer's bias:
/// `x̃ W_1 + b_1 = x W_1[:d] + (b_1 + τ(t) W_1[d:])`.
#[derive(Debug, Clone)]
pub struct FusedMlp {
    pub(crate) config: ScoreNetConfig,
    pub(crate) freqs: Vec<f64>,
    pub(crate) layers: Vec<HostLayer>,
}

impl FusedMlp {
    /// Copies the weights of `net`.
    pub fn from_net(net: &ScoreNet) -> Self {
        let config = net.config().clone();
        let layers = net
            .layers()
            .iter()
            .map(|l| {
                let (inp, out) = *l.weight.shape();
                HostLayer {
                    inp,
                    out,
                    w: l.weight.as_vec(),
                    b: l.bias.as_vec(),
                }
            })
            .collect();
        FusedMlp {
            freqs: config.angular_frequencies(),
            config,
            layers,
        }
    }

    /// A fused network of `config` with the flat parameters `flat` (layout of
    /// [`ScoreNet::to_flat`]); the same weights as `ScoreNet::from_flat(config, flat)`.
    ///
    /// Panics if the length is wrong.
    pub fn from_flat(config: &ScoreNetConfig, flat: &[f32]) -> Self {
        assert_eq!(flat.len(), config.num_params(), "flat parameter length");
        let mut off = 0;
        let layers = config
            .layer_shapes()
            .into_iter()
            .map(|(inp, out)| {
                let w = flat[off..off + inp * out].to_vec();
                off += inp * out;
                let b = flat[off..off + out].to_vec();
                off += out;
                HostLayer { inp, out, w, b }
            })
            .collect();
        FusedMlp {
            freqs: config.angular_frequencies(),
            config: config.clone(),
            layers,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ScoreNetConfig {
        &self.config
    }

    /// The first layer's effective bias at time `t`, with the time features `φ(t)` folded in:
    /// `b₀ + Σ_k φ_k(t) W₀[d + k, ·]` (the time features do not depend on `x`).
    pub(crate) fn first_layer_bias_at(&self, t: f64) -> Vec<f32> {
        let d = self.config.dim;
        let first = &self.layers[0];
        let mut tf = vec![0.0f32; self.config.time_features()];
        embed_time_with(&self.freqs, t, &mut tf);
        let mut b0 = first.b.clone();
        for (k, &f) in tf.iter().enumerate() {
            let row = &first.w[(d + k) * first.out..(d + k + 1) * first.out];
            for (b, &w) in b0.iter_mut().zip(row) {
                *b += f * w;
            }
        }
        b0
    }

    /// Raw network output for `n` points `x` (`n × d`) at one common time `t`, into `out` (`n × d`).
    pub fn forward_common_t(&self, x: &[f32], t: f64, out: &mut [f32]) {
        let d = self.config.dim;
        assert_eq!(
            x.len() % d,
            0,
            "x length {} is not a multiple of dim {d}",
            x.len()
        );
        assert_eq!(out.len(), x.len(), "out length must equal x length");
        let b0 = self.first_layer_bias_at(t);
        let max_w = self.layers.iter().map(|l| l.out).max().unwrap_or(1);
        x.par_chunks(FUSED_BLOCK_ROWS * d)
            .zip(out.par_chunks_mut(FUSED_BLOCK_ROWS * d))
            .for_each_init(
                || {
                    (
                        vec![0.0f32; FUSED_BLOCK_ROWS * max_w],
                        vec![0.0f32; FUSED_BLOCK_ROWS * max_w],
                    )
                },
                |(ha, hb), (xb, ob)| self.block(xb, ob, &b0, ha, hb),
            );
    }

    fn block(&self, x: &[f32], out: &mut [f32], b0: &[f32], ha: &mut [f32], hb: &mut [f32]) {
        let d = self.config.dim;
        let n = x.len() / d;
        let act = self.config.activation;
        let last = self.layers.len() - 1;
        let (mut cur, mut nxt) = (ha, hb);
        for (i, l) in self.layers.iter().enumerate() {
            let (input, k): (&[f32], usize) = if i == 0 {
                (x, d)
            } else {
                (&cur[..n * l.inp], l.inp)
            };
            let bias: &[f32] = if i == 0 { b0 } else { &l.b };
            let dst: &mut [f32] = if i == last {
                &mut *out
            } else {
                &mut nxt[..n * l.out]
            };
            // dst (n × out) = input (n × k) · W[..k] (k × out); row-major strides.
            unsafe {
                gemm::gemm(
                    n,
                    l.out,
                    k,
                    dst.as_mut_ptr(),
                    1,
                    l.out as isize,
                    false,
                    input.as_ptr(),
                    1,
                    k as isize,
                    l.w.as_ptr(),
                    1,
                    l.out as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
            if i == last {
                for row in dst.chunks_exact_mut(l.out) {
                    for (z, &b) in row.iter_mut().zip(bias) {
                        *z += b;
                    }
                }
            } else if self.config.residual && i > 0 {
                with_act!(act, apply, f => {
                    for (row, hrow) in dst.chunks_exact_mut(l.out).zip(cur.chunks_exact(l.inp)) {
                        for ((z, &b), &h) in row.iter_mut().zip(bias).zip(hrow) {
                            *z = h + f(*z + b);
                        }
                    }
                });
            } else {
                with_act!(act, apply, f => {
                    for row in dst.chunks_exact_mut(l.out) {
                        for (z, &b) in row.iter_mut().zip(bias) {
                            *z = f(*z + b);
                        }
                    }
                });
            }
            if i != last {
                std::mem::swap(&mut cur, &mut nxt);
            }
        }
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
/// `−ε_θ(x, t)/σ(t)` (Noise output). Evaluated by the fused forward pass ([`FusedMlp`]), no tape.
/// With Noise output, `t` must be > 0 (σ(0) = 0).
pub struct NetScore<'a, S: ForwardSde + ?Sized> {
    pub(crate) sde: &'a S,
    pub(crate) mlp: FusedMlp,
}

impl<'a, S: ForwardSde + ?Sized> NetScore<'a, S> {
    /// Snapshot of `net`'s weights with the SDE whose `σ(t)` converts noise to score.
    pub fn new(net: &ScoreNet, sde: &'a S) -> Self {
        NetScore {
            sde,
            mlp: FusedMlp::from_net(net),
        }
    }
}

impl<S: ForwardSde + ?Sized> Score for NetScore<'_, S> {
    fn dim(&self) -> usize {
        self.mlp.config.dim
    }

    fn score(&mut self, x: &[f32], t: f64, out: &mut [f32]) {
        self.mlp.forward_common_t(x, t, out);
        output_to_score(self.mlp.config.output, self.sde.marginal_std(t), out);
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
