//! Hand-fused forward + backward pass of the MLP for the weighted squared loss used by
//! denoising score matching, on `gemm` (the same numbers as dfdx's autograd, faster).

use crate::config::{Activation, ScoreNetConfig};
use rayon::prelude::*;

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

/// Row-major `dst (m × n) [= dst +] lhs · rhs` with explicit strides (row stride, column stride).
#[allow(clippy::too_many_arguments)]
#[inline]
fn mm(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    lhs_rs: usize,
    lhs_cs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    rhs_cs: usize,
) {
    assert!(dst.len() >= m * n);
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Rows per independent chunk of [`mlp_loss_and_grad`]. Fixed (not derived from the thread
/// count), so the per-chunk partial sums — and the result — are the same for any number of threads.
pub const TRAIN_CHUNK_ROWS: usize = 256;

/// Buffers of one row chunk: activations of every hidden layer, pre-activations when the
/// derivative needs them, the two backward buffers and the chunk's partial gradient.
#[derive(Debug, Default, Clone)]
struct ChunkBuffers {
    /// `h_l` for each hidden layer (`rows × width_l`).
    h: Vec<Vec<f32>>,
    /// `z_l` for each hidden layer, only if `act'` cannot be read off `h` (see `keeps_z`).
    z: Vec<Vec<f32>>,
    g: Vec<f32>,
    dh: Vec<f32>,
    ndh: Vec<f32>,
    grad: Vec<f32>,
    loss: f64,
}

/// Reusable buffers of [`mlp_loss_and_grad`] (no allocation after the first call at a size).
#[derive(Debug, Default, Clone)]
pub struct MlpWorkspace {
    chunks: Vec<ChunkBuffers>,
    pred: Vec<f32>,
}

impl MlpWorkspace {
    /// The network output of the last call (`n × d`).
    pub fn prediction(&self) -> &[f32] {
        &self.pred
    }
}

/// Whether the backward pass needs the pre-activations `z`: for a plain (non-residual) ReLU
/// layer `act'(z) = [h > 0]` is read off the activation itself.
fn keeps_z(config: &ScoreNetConfig) -> bool {
    config.activation != Activation::Relu || config.residual
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
                let $f = |z: f32| act_grad(Activation::Relu, z);
                $body
            }
            Activation::Silu => {
                let $f = |z: f32| act_grad(Activation::Silu, z);
                $body
            }
            Activation::Gelu => {
                let $f = |z: f32| act_grad(Activation::Gelu, z);
                $body
            }
            Activation::Tanh => {
                let $f = |z: f32| act_grad(Activation::Tanh, z);
                $body
            }
        }
    };
}
pub(crate) use with_act;

/// Loss `L = (1/n) Σ_rows ‖a ⊙ f_θ(x̃) − b‖²` and its gradient `∂L/∂θ` (flat layout of
/// [`crate::ScoreNet::to_flat`]) for the MLP of `config` with parameters `params`, on the
/// network input `input` (`n × input_dim`). Forward pass stores pre-activations; backward is
/// `∂W_l = h_{l−1}ᵀ g_l`, `∂b_l = Σ_rows g_l`, `∂h_{l−1} = g_l W_lᵀ (+ ∂h_l if residual)`,
/// `g_{l−1} = ∂h_{l−1} ⊙ act'(z_{l−1})`. Returns `L` (f64-accumulated).
///
/// The rows are split into fixed chunks of [`TRAIN_CHUNK_ROWS`], each run forward and backward
/// on one thread (single-threaded GEMMs, bias and activation fused into one pass, activations
/// kept in cache); the per-chunk partial gradients and losses are then summed in chunk order,
/// so the result is bit-identical for any number of rayon threads.
pub fn mlp_loss_and_grad(
    config: &ScoreNetConfig,
    params: &[f32],
    input: &[f32],
    a: &[f32],
    b: &[f32],
    grad: &mut [f32],
    ws: &mut MlpWorkspace,
) -> f64 {
    let k0 = config.input_dim();
    let n = input.len() / k0;
    let d = config.dim;
    assert_eq!(params.len(), config.num_params(), "params length");
    assert_eq!(grad.len(), params.len(), "grad length");
    assert_eq!(input.len(), n * k0, "input length");
    assert_eq!(a.len(), n * d);
    assert_eq!(b.len(), n * d);
    let shapes = config.layer_shapes();
    // Offsets of W_l and b_l in the flat vector.
    let mut offs = Vec::with_capacity(shapes.len());
    let mut off = 0;
    for &(i, o) in &shapes {
        offs.push((off, off + i * o));
        off += i * o + o;
    }
    let n_chunks = n.div_ceil(TRAIN_CHUNK_ROWS);
    if n_chunks == 0 {
        grad.fill(0.0);
        ws.pred.clear();
        return 0.0;
    }
    if ws.chunks.len() < n_chunks {
        ws.chunks.resize(n_chunks, ChunkBuffers::default());
    }
    ws.pred.resize(n * d, 0.0);
    let scale = 2.0 / n as f32;
    let ctx = Ctx {
        config,
        shapes: &shapes,
        offs: &offs,
        params,
        scale,
    };
    ws.chunks[..n_chunks]
        .par_iter_mut()
        .zip(input.par_chunks(TRAIN_CHUNK_ROWS * k0))
        .zip(a.par_chunks(TRAIN_CHUNK_ROWS * d))
        .zip(b.par_chunks(TRAIN_CHUNK_ROWS * d))
        .zip(ws.pred.par_chunks_mut(TRAIN_CHUNK_ROWS * d))
        .for_each(|((((cb, x), a), b), pred)| ctx.chunk(cb, x, a, b, pred));
    // Sum the partials in chunk order (parallel over parameter blocks).
    let chunks = &ws.chunks[..n_chunks];
    grad.par_chunks_mut(1024).enumerate().for_each(|(j, gs)| {
        let (lo, len) = (j * 1024, gs.len());
        gs.copy_from_slice(&chunks[0].grad[lo..lo + len]);
        for c in &chunks[1..] {
            for (g, &v) in gs.iter_mut().zip(&c.grad[lo..lo + len]) {
                *g += v;
            }
        }
    });
    chunks.iter().map(|c| c.loss).sum::<f64>() / n as f64
}

struct Ctx<'a> {
    config: &'a ScoreNetConfig,
    shapes: &'a [(usize, usize)],
    offs: &'a [(usize, usize)],
    params: &'a [f32],
    scale: f32,
}

impl Ctx<'_> {
    /// Forward and backward of one row chunk into `cb.grad` (partial, unnormalised sum over the
    /// chunk's rows of the per-row gradient times `2/n`) and `cb.loss` (sum of row losses).
    fn chunk(&self, cb: &mut ChunkBuffers, input: &[f32], a: &[f32], b: &[f32], pred: &mut [f32]) {
        let config = self.config;
        let shapes = self.shapes;
        let params = self.params;
        let nl = shapes.len();
        let k0 = config.input_dim();
        let n = input.len() / k0;
        let act = config.activation;
        let keep_z = keeps_z(config);
        cb.h.resize(nl - 1, Vec::new());
        cb.z.resize(if keep_z { nl - 1 } else { 0 }, Vec::new());
        cb.grad.resize(params.len(), 0.0);
        // Forward.
        for (l, (&(inp, out), &(wo, bo))) in shapes.iter().zip(self.offs).enumerate() {
            let w = &params[wo..wo + inp * out];
            let bias = &params[bo..bo + out];
            if l + 1 == nl {
                mm(n, out, inp, pred, false, &cb.h[l - 1], inp, 1, w, out, 1);
                for row in pred.chunks_exact_mut(out) {
                    for (v, &bb) in row.iter_mut().zip(bias) {
                        *v += bb;
                    }
                }
                break;
            }
            let mut h = std::mem::take(&mut cb.h[l]);
            h.resize(n * out, 0.0);
            {
                let prev: &[f32] = if l == 0 { input } else { &cb.h[l - 1] };
                mm(n, out, inp, &mut h, false, prev, inp, 1, w, out, 1);
            }
            let residual = config.residual && l > 0;
            if keep_z {
                let mut z = std::mem::take(&mut cb.z[l]);
                z.resize(n * out, 0.0);
                with_act!(act, apply, f => {
                    if residual {
                        let prev = &cb.h[l - 1];
                        for ((hr, zr), pr) in h
                            .chunks_exact_mut(out)
                            .zip(z.chunks_exact_mut(out))
                            .zip(prev.chunks_exact(inp))
                        {
                            for (((hv, zv), &pv), &bb) in
                                hr.iter_mut().zip(zr.iter_mut()).zip(pr).zip(bias)
                            {
                                let zz = *hv + bb;
                                *zv = zz;
                                *hv = pv + f(zz);
                            }
                        }
                    } else {
                        for (hr, zr) in h.chunks_exact_mut(out).zip(z.chunks_exact_mut(out)) {
                            for ((hv, zv), &bb) in hr.iter_mut().zip(zr.iter_mut()).zip(bias) {
                                let zz = *hv + bb;
                                *zv = zz;
                                *hv = f(zz);
                            }
                        }
                    }
                });
                cb.z[l] = z;
            } else {
                // Plain ReLU: h = max(z + b, 0) in place.
                for hr in h.chunks_exact_mut(out) {
                    for (hv, &bb) in hr.iter_mut().zip(bias) {
                        *hv = (*hv + bb).max(0.0);
                    }
                }
            }
            cb.h[l] = h;
        }
        // Loss and ∂L/∂pred = (2/n) a (a·pred − b).
        let d = config.dim;
        cb.g.resize(n * d, 0.0);
        let mut loss = 0.0f64;
        let scale = self.scale;
        for (((g, &p), &av), &bv) in cb.g.iter_mut().zip(pred.iter()).zip(a).zip(b) {
            let r = av * p - bv;
            loss += (r as f64) * (r as f64);
            *g = scale * av * r;
        }
        cb.loss = loss;
        // Backward. `dh` holds ∂L/∂h_l of the layer above (for residual skips), `ndh` ∂L/∂h_{l−1}.
        let mut g = std::mem::take(&mut cb.g);
        let mut dh = std::mem::take(&mut cb.dh);
        let mut ndh = std::mem::take(&mut cb.ndh);
        for l in (0..nl).rev() {
            let (inp, out) = shapes[l];
            let (wo, bo) = self.offs[l];
            let prev: &[f32] = if l == 0 { input } else { &cb.h[l - 1] };
            // ∂W = prevᵀ (inp × n) · g (n × out).
            mm(
                inp,
                out,
                n,
                &mut cb.grad[wo..wo + inp * out],
                false,
                prev,
                1,
                inp,
                &g,
                out,
                1,
            );
            let gb = &mut cb.grad[bo..bo + out];
            gb.iter_mut().for_each(|v| *v = 0.0);
            for row in g.chunks_exact(out) {
                for (s, &v) in gb.iter_mut().zip(row) {
                    *s += v;
                }
            }
            if l == 0 {
                break;
            }
            // ∂h_{l−1} = g W_lᵀ, plus ∂h_l through the skip if layer l is residual.
            let w = &params[wo..wo + inp * out];
            let residual_here = config.residual && l + 1 < nl;
            ndh.resize(n * inp, 0.0);
            if residual_here {
                ndh.copy_from_slice(&dh[..n * inp]);
            }
            mm(n, inp, out, &mut ndh, residual_here, &g, out, 1, w, 1, out);
            // g_{l−1} = ∂h_{l−1} ⊙ act'(z_{l−1}).
            g.resize(n * inp, 0.0);
            if keep_z {
                let z = &cb.z[l - 1];
                with_act!(act, grad, f => {
                    for ((gv, &dv), &zv) in g.iter_mut().zip(&ndh).zip(z) {
                        *gv = dv * f(zv);
                    }
                });
            } else {
                // ReLU: act'(z) = [z > 0] = [h > 0] (h = max(z, 0)).
                let h = &cb.h[l - 1];
                for ((gv, &dv), &hv) in g.iter_mut().zip(&ndh).zip(h) {
                    *gv = if hv > 0.0 { dv } else { 0.0 };
                }
            }
            std::mem::swap(&mut dh, &mut ndh);
        }
        cb.g = g;
        cb.dh = dh;
        cb.ndh = ndh;
    }
}
