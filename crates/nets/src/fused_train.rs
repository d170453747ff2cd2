//! Hand-fused forward + backward pass of the MLP for the weighted squared loss used by
//! denoising score matching, on the register-blocked kernels of [`crate::kernels`] (AVX2 + FMA
//! where available, `gemm` otherwise): the same numbers as dfdx's autograd, faster.

use crate::config::{Activation, ScoreNetConfig};
use crate::kernels::{Epilogue, Kernels, Strided};
use crate::plan::{hidden_layer, output_layer, rows_of, with_act, LayerKind, MlpPlan};
use rayon::prelude::*;
use std::sync::Mutex;

/// Rows per independent chunk of [`mlp_loss_and_grad`]. Fixed (not derived from the thread
/// count), so the per-chunk partial sums — and the result — are the same for any number of threads.
pub const TRAIN_CHUNK_ROWS: usize = 256;

/// Working buffers of one worker thread (reused for every chunk it runs, so they stay in its
/// cache): activations of every hidden layer, pre-activations when the derivative needs them,
/// the backward buffers.
#[derive(Debug, Default)]
struct Scratch {
    /// `h_l` for each hidden layer (`rows × width_l`).
    h: Vec<Vec<f32>>,
    /// `z_l` for each hidden layer, only if `act'` cannot be read off `h` (see `keeps_z`).
    z: Vec<Vec<f32>>,
    g: Vec<f32>,
    dh: Vec<f32>,
    ndh: Vec<f32>,
    /// A transposed weight gradient (narrow last layer).
    dwt: Vec<f32>,
}

/// What one row chunk contributes: its partial gradient and loss sum.
#[derive(Debug, Default, Clone)]
struct ChunkOut {
    grad: Vec<f32>,
    loss: f64,
}

/// Reusable buffers of [`mlp_loss_and_grad`] (no allocation after the first call at a size).
#[derive(Debug, Default)]
pub struct MlpWorkspace {
    chunks: Vec<ChunkOut>,
    /// One [`Scratch`] per rayon worker (indexed by `rayon::current_thread_index`).
    scratch: Vec<Mutex<Scratch>>,
    pred: Vec<f32>,
    /// `W_lᵀ` of every layer (`out_l × in_l`, row-major), packed once per call.
    wt: Vec<f32>,
    portable: bool,
}

impl Clone for MlpWorkspace {
    /// A workspace with the same settings (buffers are rebuilt on the next call).
    fn clone(&self) -> Self {
        MlpWorkspace {
            portable: self.portable,
            ..MlpWorkspace::default()
        }
    }
}

impl MlpWorkspace {
    /// The network output of the last call (`n × d`).
    pub fn prediction(&self) -> &[f32] {
        &self.pred
    }

    /// With `true`, later calls use the portable kernels (`gemm` + scalar loops) even where the
    /// AVX2 + FMA kernels are available — to test one against the other, or to compare speed.
    /// The two agree to float rounding, not bit for bit.
    pub fn set_portable(&mut self, portable: bool) {
        self.portable = portable;
    }
}

/// Whether the backward pass needs the pre-activations `z`: for a plain (non-residual) ReLU
/// layer `act'(z) = [h > 0]` is read off the activation itself.
fn keeps_z(plan: &MlpPlan) -> bool {
    plan.activation() != Activation::Relu || plan.residual()
}

/// Loss `L = (1/n) Σ_rows ‖a ⊙ f_θ(x̃) − b‖²` and its gradient `∂L/∂θ` (flat layout of
/// [`crate::ScoreNet::to_flat`]) for the MLP of `config` with parameters `params`, on the
/// network input `input` (`n × input_dim`). Forward pass stores pre-activations; backward is
/// `∂W_l = h_{l−1}ᵀ g_l`, `∂b_l = Σ_rows g_l`, `∂h_{l−1} = g_l W_lᵀ (+ ∂h_l if residual)`,
/// `g_{l−1} = ∂h_{l−1} ⊙ act'(z_{l−1})`. Returns `L` (f64-accumulated).
///
/// The rows are split into fixed chunks of [`TRAIN_CHUNK_ROWS`], each run forward and backward
/// on one thread (register-blocked products with bias, ReLU and the ReLU mask fused into their
/// epilogues, activations kept in cache); the per-chunk partial gradients and losses are then
/// summed in chunk order, so the result is bit-identical for any number of rayon threads.
pub fn mlp_loss_and_grad(
    config: &ScoreNetConfig,
    params: &[f32],
    input: &[f32],
    a: &[f32],
    b: &[f32],
    grad: &mut [f32],
    ws: &mut MlpWorkspace,
) -> f64 {
    plan_loss_and_grad(&MlpPlan::new(config), params, input, a, b, grad, ws)
}

/// [`mlp_loss_and_grad`] on a built [`MlpPlan`].
pub(crate) fn plan_loss_and_grad(
    plan: &MlpPlan,
    params: &[f32],
    input: &[f32],
    a: &[f32],
    b: &[f32],
    grad: &mut [f32],
    ws: &mut MlpWorkspace,
) -> f64 {
    let k0 = plan.input_dim();
    let n = input.len() / k0;
    let d = plan.dim();
    assert_eq!(params.len(), plan.num_params(), "params length");
    assert_eq!(grad.len(), params.len(), "grad length");
    assert_eq!(input.len(), n * k0, "input length");
    assert_eq!(a.len(), n * d);
    assert_eq!(b.len(), n * d);
    let chunk_rows = TRAIN_CHUNK_ROWS;
    let n_chunks = n.div_ceil(chunk_rows);
    if n_chunks == 0 {
        grad.fill(0.0);
        ws.pred.clear();
        return 0.0;
    }
    if ws.chunks.len() < n_chunks {
        ws.chunks.resize(n_chunks, ChunkOut::default());
    }
    let workers = rayon::current_num_threads().max(1);
    if ws.scratch.len() < workers {
        ws.scratch.resize_with(workers, Default::default);
    }
    ws.pred.resize(n * d, 0.0);
    // W_lᵀ at W_l's offset (the bias slots are unused).
    ws.wt.resize(params.len(), 0.0);
    for l in plan.layers() {
        let (i, o) = (l.inp, l.out);
        let wt = &mut ws.wt[l.w..l.w + i * o];
        for (r, row) in l.weight(params).chunks_exact(o).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                wt[c * i + r] = v;
            }
        }
    }
    let scale = 2.0 / n as f32;
    let ctx = Ctx {
        plan,
        wt: &ws.wt,
        params,
        scale,
        kern: if ws.portable {
            Kernels::portable()
        } else {
            Kernels::detect()
        },
    };
    let scratch = &ws.scratch;
    ws.chunks[..n_chunks]
        .par_iter_mut()
        .zip(input.par_chunks(chunk_rows * k0))
        .zip(a.par_chunks(chunk_rows * d))
        .zip(b.par_chunks(chunk_rows * d))
        .zip(ws.pred.par_chunks_mut(chunk_rows * d))
        .for_each(|((((co, x), a), b), pred)| {
            let i = rayon::current_thread_index().unwrap_or(0) % scratch.len();
            let mut sc = scratch[i].lock().unwrap_or_else(|e| e.into_inner());
            ctx.chunk(&mut sc, co, x, a, b, pred)
        });
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
    plan: &'a MlpPlan,
    /// `W_lᵀ` (`out_l × in_l`, row-major) at `W_l`'s offset.
    wt: &'a [f32],
    params: &'a [f32],
    scale: f32,
    kern: Kernels,
}

/// The transpose of a row-major `rows × cols` buffer as the `A` operand (`cols × rows`).
fn transposed(data: &[f32], cols: usize) -> Strided<'_> {
    Strided {
        data,
        rs: 1,
        cs: cols,
    }
}

impl Ctx<'_> {
    /// Forward and backward of one row chunk into `co.grad` (partial, unnormalised sum over the
    /// chunk's rows of the per-row gradient times `2/n`) and `co.loss` (sum of row losses), with
    /// `cb` as working memory.
    fn chunk(
        &self,
        cb: &mut Scratch,
        co: &mut ChunkOut,
        input: &[f32],
        a: &[f32],
        b: &[f32],
        pred: &mut [f32],
    ) {
        let plan = self.plan;
        let params = self.params;
        let kern = self.kern;
        let layers = plan.layers();
        let nl = layers.len();
        let k0 = plan.input_dim();
        let n = input.len() / k0;
        let act = plan.activation();
        let keep_z = keeps_z(plan);
        cb.h.resize(nl - 1, Vec::new());
        cb.z.resize(if keep_z { nl - 1 } else { 0 }, Vec::new());
        co.grad.resize(params.len(), 0.0);
        // Forward: h_l (and z_l) of every hidden layer kept for the backward pass.
        for (l, spec) in layers.iter().enumerate() {
            let (inp, out) = (spec.inp, spec.out);
            let (w, bias) = (spec.weight(params), spec.bias(params));
            let (done, rest) = cb.h.split_at_mut(l);
            let prev: &[f32] = if l == 0 { input } else { &done[l - 1] };
            if spec.kind == LayerKind::Output {
                let wt = &self.wt[spec.w..spec.w + inp * out];
                output_layer(kern, prev, inp, w, bias, Some(wt), pred);
                break;
            }
            let h = &mut rest[0];
            h.resize(n * out, 0.0);
            if keep_z {
                let mut z = std::mem::take(&mut cb.z[l]);
                z.resize(n * out, 0.0);
                hidden_layer(
                    kern,
                    act,
                    spec.residual(),
                    prev,
                    inp,
                    w,
                    bias,
                    Some(&mut z[..]),
                    h,
                );
                cb.z[l] = z;
            } else {
                hidden_layer(kern, act, false, prev, inp, w, bias, None, h);
            }
        }
        // Loss and ∂L/∂pred = (2/n) a (a·pred − b).
        let d = plan.dim();
        cb.g.resize(n * d, 0.0);
        let mut loss = 0.0f64;
        let scale = self.scale;
        for (((g, &p), &av), &bv) in cb.g.iter_mut().zip(pred.iter()).zip(a).zip(b) {
            let r = av * p - bv;
            loss += (r as f64) * (r as f64);
            *g = scale * av * r;
        }
        co.loss = loss;
        // Backward. `dh` holds ∂L/∂h_l of the layer above (for residual skips), `ndh` ∂L/∂h_{l−1}.
        let mut g = std::mem::take(&mut cb.g);
        let mut dh = std::mem::take(&mut cb.dh);
        let mut ndh = std::mem::take(&mut cb.ndh);
        for (l, spec) in layers.iter().enumerate().rev() {
            let (inp, out) = (spec.inp, spec.out);
            let prev: &[f32] = if l == 0 { input } else { &cb.h[l - 1] };
            // ∂W = prevᵀ (inp × n) · g (n × out).
            let gw = &mut co.grad[spec.w..spec.w + inp * out];
            if kern.simd_for(out) || !kern.simd_for(inp) {
                kern.matmul(
                    inp,
                    out,
                    n,
                    transposed(prev, inp),
                    &g,
                    out,
                    gw,
                    out,
                    Epilogue::Store,
                );
            } else {
                // Narrow output (the last layer): ∂Wᵀ = gᵀ (out × n) · prev (n × inp), on the
                // kernels' wide side, then transposed into place (`cb.dwt` as scratch).
                cb.dwt.resize(out * inp, 0.0);
                kern.matmul(
                    out,
                    inp,
                    n,
                    transposed(&g, out),
                    prev,
                    inp,
                    &mut cb.dwt,
                    inp,
                    Epilogue::Store,
                );
                for (c, col) in cb.dwt.chunks_exact(inp).enumerate() {
                    for (r, &v) in col.iter().enumerate() {
                        gw[r * out + c] = v;
                    }
                }
            }
            kern.col_sums(&g, &mut co.grad[spec.b..spec.b + out]);
            if spec.kind == LayerKind::Input {
                break;
            }
            // ∂h_{l−1} = g W_lᵀ, plus ∂h_l through the skip if layer l is residual.
            let wt = &self.wt[spec.w..spec.w + inp * out];
            ndh.resize(n * inp, 0.0);
            if !keep_z {
                // Plain ReLU: g_{l−1} = (g W_lᵀ) ⊙ [h_{l−1} > 0] in the kernel's epilogue.
                let mask = Epilogue::ReluMask {
                    mask: &cb.h[l - 1],
                    rs: inp,
                };
                kern.matmul(n, inp, out, rows_of(&g, out), wt, inp, &mut ndh, inp, mask);
                std::mem::swap(&mut g, &mut ndh);
                continue;
            }
            let epi = if spec.residual() {
                ndh.copy_from_slice(&dh[..n * inp]);
                Epilogue::Accumulate
            } else {
                Epilogue::Store
            };
            kern.matmul(n, inp, out, rows_of(&g, out), wt, inp, &mut ndh, inp, epi);
            // g_{l−1} = ∂h_{l−1} ⊙ act'(z_{l−1}).
            g.resize(n * inp, 0.0);
            let z = &cb.z[l - 1];
            with_act!(act, grad, f => {
                for ((gv, &dv), &zv) in g.iter_mut().zip(&ndh).zip(z) {
                    *gv = dv * f(zv);
                }
            });
            std::mem::swap(&mut dh, &mut ndh);
        }
        cb.g = g;
        cb.dh = dh;
        cb.ndh = ndh;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NetOutput, TimeEmbedding};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn configs() -> Vec<ScoreNetConfig> {
        let mut v = vec![ScoreNetConfig::part2(), ScoreNetConfig::default_2d()];
        // Widths 24 (a 16 + 8 column split) and 20 (not a multiple of 8: portable products),
        // every activation.
        for (width, act) in [
            (24, Activation::Gelu),
            (20, Activation::Tanh),
            (24, Activation::Silu),
            (24, Activation::Relu),
        ] {
            v.push(ScoreNetConfig {
                dim: 3,
                width,
                depth: 3,
                activation: act,
                residual: act != Activation::Relu,
                time_embedding: TimeEmbedding::Fourier {
                    frequencies: 1,
                    max_frequency: 1.0,
                },
                output: NetOutput::Score,
            });
        }
        v
    }

    fn rand_vec(n: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
        (0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
    }

    /// The SIMD kernels and the portable path give the same loss and gradient to float
    /// rounding (loss 1e-5 relative, gradient 1e-4 · (1 + max|∂|)), for every architecture
    /// kind; the SIMD result is bit-identical on a repeat and for 1, 2 and 3 threads; row
    /// counts that are not a multiple of the chunk or tile size (1, 7, 600) are covered.
    #[test]
    fn simd_and_portable_paths_agree_and_are_deterministic() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for cfg in configs() {
            let params = rand_vec(cfg.num_params(), &mut rng)
                .into_iter()
                .map(|v| v * 0.3)
                .collect::<Vec<_>>();
            for n in [1, 7, 600] {
                let input = rand_vec(n * cfg.input_dim(), &mut rng);
                let a = rand_vec(n * cfg.dim, &mut rng);
                let b = rand_vec(n * cfg.dim, &mut rng);
                let run = |portable: bool, threads: usize| {
                    let mut ws = MlpWorkspace::default();
                    ws.set_portable(portable);
                    let mut g = vec![0.0f32; params.len()];
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    let l = pool.install(|| {
                        mlp_loss_and_grad(&cfg, &params, &input, &a, &b, &mut g, &mut ws)
                    });
                    (l, g, ws.prediction().to_vec())
                };
                let (lp, gp, _) = run(true, 2);
                let (ls, gs, ps) = run(false, 2);
                assert!(
                    (lp - ls).abs() <= 1e-5 * lp.abs(),
                    "{cfg:?} n {n}: {lp} vs {ls}"
                );
                let gmax = gp.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                for (i, (x, y)) in gp.iter().zip(&gs).enumerate() {
                    assert!(
                        (x - y).abs() <= 1e-4 * (1.0 + gmax),
                        "{cfg:?} n {n} param {i}: {x} vs {y}"
                    );
                }
                for threads in [1, 3] {
                    let (l, g, p) = run(false, threads);
                    assert_eq!(l.to_bits(), ls.to_bits(), "{cfg:?} threads {threads}");
                    assert_eq!(g, gs, "{cfg:?} threads {threads}");
                    assert_eq!(p, ps, "{cfg:?} threads {threads}");
                }
            }
        }
    }
}
