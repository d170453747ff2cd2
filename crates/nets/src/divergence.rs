//! Exact divergence of a score network by forward-mode differentiation through the MLP.
//!
//! For the network `y = F(x, τ(t))` (hidden layers `h_l = act(z_l)` or `h_{l−1} + act(z_l)`,
//! `z_l = h_{l−1} W_l + b_l`, linear output `y = h_{L−1} W_L + b_L`), the tangents
//! `J_l = ∂h_l/∂x_j` of every input direction `e_j` (`j = 1..d`) are carried alongside the
//! activations:
//!
//! - first layer: `J_0 = act'(z_0) ⊙ W_0[j, :]` (the time features `τ(t)` do not depend on `x`);
//! - hidden layers: `J_l = act'(z_l) ⊙ (J_{l−1} W_l)` (`+ J_{l−1}` for a residual block);
//! - output: `∂y_i/∂x_j = J_{L−1} W_L[:, i]`, and the trace `tr ∂y/∂x = Σ_j (J_{L−1} W_L)[j, j]`.
//!
//! The `d` tangents of a block of rows are one `(rows·d) × width` matrix, so each layer costs one
//! more product of `d` times the rows of the forward pass (3× the forward cost for `d = 2`). This
//! is the inference walk of [`MlpPlan`] (`MlpPlan::forward_block`) with tangents on: the value
//! path is the same operations (bit-identical output); the final trace is accumulated in f64.

use crate::config::Activation;
use crate::fused::{BlockBuffers, Tangents, FUSED_BLOCK_ROWS};
use crate::kernels::{Epilogue, Kernels};
use crate::plan::{rows_of, with_act, LayerKind, MlpPlan};
use rayon::prelude::*;

impl MlpPlan {
    /// Raw network output `y = F(x, τ(t))` for the `n` rows of `x` (`n × d`) at one common `t`
    /// into `out` (`n × d`, the same numbers as [`MlpPlan::forward_common_t`]), and the trace
    /// of each row's input–output Jacobian `tr ∂y/∂x = Σ_j ∂y_j/∂x_j` into `trace` (length `n`),
    /// by forward-mode differentiation (module docs). Blocks of [`FUSED_BLOCK_ROWS`] rows run in
    /// parallel; every row's arithmetic is independent of the thread count.
    ///
    /// Panics if the buffer lengths do not match.
    pub fn forward_with_jacobian_trace(
        &self,
        params: &[f32],
        x: &[f32],
        t: f64,
        out: &mut [f32],
        trace: &mut [f64],
    ) {
        let d = self.check_rows(params, x, out);
        assert_eq!(
            trace.len(),
            x.len() / d,
            "trace must have one entry per row"
        );
        // First-layer bias with the time features folded in, exactly as forward_common_t.
        let b0 = self.first_layer_bias_at(params, t);
        // Output weights by output unit: w_last_t[i][k] = W_L[k, i].
        let last = self.layers().last().expect("an MLP has layers");
        debug_assert_eq!(last.kind, LayerKind::Output);
        let wl = last.weight(params);
        let mut w_last_t = vec![0.0f64; last.out * last.inp];
        for k in 0..last.inp {
            for i in 0..last.out {
                w_last_t[i * last.inp + k] = f64::from(wl[k * last.out + i]);
            }
        }
        let width = self.max_width();
        x.par_chunks(FUSED_BLOCK_ROWS * d)
            .zip(out.par_chunks_mut(FUSED_BLOCK_ROWS * d))
            .zip(trace.par_chunks_mut(FUSED_BLOCK_ROWS))
            .for_each_init(
                || BlockBuffers::new(FUSED_BLOCK_ROWS, width, FUSED_BLOCK_ROWS * d),
                |bufs, ((xb, ob), tb)| {
                    let tan = Tangents {
                        trace: tb,
                        w_last_t: &w_last_t,
                    };
                    self.forward_block(params, &b0, xb, ob, bufs, Some(tan))
                },
            );
    }
}

/// First layer: `J_0[r, j, :] = act'(z_0[r]) ⊙ W_0[j, :]` for the rows of `z` (`n × w`) into
/// `j` (`(n·d) × w`); `w0` is `W_0` (row-major, `w` columns; the time features do not depend
/// on `x`, so only its first `d` rows enter).
pub(crate) fn input_tangents(
    act: Activation,
    d: usize,
    w: usize,
    w0: &[f32],
    z: &[f32],
    j: &mut [f32],
) {
    with_act!(act, grad, g => {
        for (zr, jr) in z.chunks_exact(w).zip(j.chunks_exact_mut(d * w)) {
            for (jj, jrow) in jr.chunks_exact_mut(w).enumerate() {
                let wrow = &w0[jj * w..(jj + 1) * w];
                for ((jv, &zv), &wv) in jrow.iter_mut().zip(zr).zip(wrow) {
                    *jv = g(zv) * wv;
                }
            }
        }
    });
}

/// Hidden layer: `J_l = act'(z_l) ⊙ (J_{l−1} W_l)`, plus `J_{l−1}` for a residual block, into
/// `jn` (`(n·d) × w`), from `jp = J_{l−1}` (`(n·d) × k`), `W_l` (row-major `k × w`) and `z_l`
/// (`n × w`); the product on `kern`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn hidden_tangents(
    kern: Kernels,
    act: Activation,
    residual: bool,
    d: usize,
    (k, w): (usize, usize),
    wl: &[f32],
    z: &[f32],
    jp: &[f32],
    jn: &mut [f32],
) {
    let rows = jn.len() / w;
    kern.matmul(rows, w, k, rows_of(jp, k), wl, w, jn, w, Epilogue::Store);
    with_act!(act, grad, g => {
        for ((zr, jr), jpr) in z
            .chunks_exact(w)
            .zip(jn.chunks_exact_mut(d * w))
            .zip(jp.chunks_exact(d * k))
        {
            for (jrow, jprow) in jr.chunks_exact_mut(w).zip(jpr.chunks_exact(k)) {
                if residual {
                    for ((jv, &zv), &jpv) in jrow.iter_mut().zip(zr).zip(jprow) {
                        *jv = jpv + g(zv) * *jv;
                    }
                } else {
                    for (jv, &zv) in jrow.iter_mut().zip(zr) {
                        *jv *= g(zv);
                    }
                }
            }
        }
    });
}

/// Output layer: `tr ∂y/∂x = Σ_j Σ_p J[r, j, p] W_L[p, j]` per row (f64), from the last hidden
/// tangents `j` (`(n·d) × k`).
pub(crate) fn output_trace(d: usize, k: usize, j: &[f32], tan: &mut Tangents<'_>) {
    for (tr, jr) in tan.trace.iter_mut().zip(j.chunks_exact(d * k)) {
        let mut acc = 0.0f64;
        for (jj, jrow) in jr.chunks_exact(k).enumerate() {
            let wcol = &tan.w_last_t[jj * k..(jj + 1) * k];
            acc += jrow
                .iter()
                .zip(wcol)
                .map(|(&a, &b)| f64::from(a) * b)
                .sum::<f64>();
        }
        *tr = acc;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NetOutput, ScoreNetConfig, TimeEmbedding};
    use crate::fused::{FusedMlp, NetScore};
    use crate::net::ScoreNet;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use smoluchowski_sde::{ForwardSde, Score, ScoreDivergence, VpSde};

    /// The same network in f64 (weights cast from f32), one row at a time: the reference.
    fn forward_f64(mlp: &FusedMlp, x: &[f64], t: f64) -> Vec<f64> {
        forward_f64_kink(mlp, x, t).0
    }

    /// [`forward_f64`] and the smallest `|z|` over all hidden pre-activations (the distance to
    /// the nearest ReLU kink).
    fn forward_f64_kink(mlp: &FusedMlp, x: &[f64], t: f64) -> (Vec<f64>, f64) {
        let mut min_z = f64::INFINITY;
        let c = &mlp.config;
        let tf = mlp.plan.time_features_at(t);
        let mut h: Vec<f64> = x
            .iter()
            .copied()
            .chain(tf.iter().map(|&v| f64::from(v)))
            .collect();
        let a = |v: f64| -> f64 {
            match c.activation {
                Activation::Relu => v.max(0.0),
                Activation::Silu => v / (1.0 + (-v).exp()),
                Activation::Gelu => {
                    let b = (2.0 / std::f64::consts::PI).sqrt();
                    0.5 * v * (1.0 + (b * (v + 0.044715 * v * v * v)).tanh())
                }
                Activation::Tanh => v.tanh(),
            }
        };
        for l in mlp.plan.layers() {
            let (w, b) = (l.weight(&mlp.params), l.bias(&mlp.params));
            let z: Vec<f64> = (0..l.out)
                .map(|o| {
                    f64::from(b[o])
                        + (0..l.inp)
                            .map(|k| h[k] * f64::from(w[k * l.out + o]))
                            .sum::<f64>()
                })
                .collect();
            if l.kind == LayerKind::Output {
                return (z, min_z);
            }
            min_z = z.iter().fold(min_z, |m, v| m.min(v.abs()));
            h = if l.residual() {
                z.iter().zip(&h).map(|(&zv, &hv)| hv + a(zv)).collect()
            } else {
                z.iter().map(|&zv| a(zv)).collect()
            };
        }
        unreachable!("the output layer returns")
    }

    /// `Σ_j [F_j(x + h e_j) − F_j(x − h e_j)] / (2h)` of the f64 reference: `h = 10⁻⁵` (rounding
    /// ~10⁻¹¹, truncation ~10⁻¹⁰ |F‴|), or `h = 10⁻⁷` for ReLU (piecewise linear: no truncation
    /// error; rows within reach of a kink are skipped by the caller).
    fn fd_trace(mlp: &FusedMlp, x: &[f64], t: f64) -> f64 {
        let h = if mlp.config.activation == Activation::Relu {
            1e-7
        } else {
            1e-5
        };
        let mut tr = 0.0;
        for j in 0..x.len() {
            let mut xp = x.to_vec();
            let mut xm = x.to_vec();
            xp[j] += h;
            xm[j] -= h;
            tr += (forward_f64(mlp, &xp, t)[j] - forward_f64(mlp, &xm, t)[j]) / (2.0 * h);
        }
        tr
    }

    /// relu/silu/gelu/tanh × residual on/off × noise/score output; d = 2 or 3; Concat time for
    /// the plain nets, Fourier for the residual ones.
    fn configs() -> Vec<ScoreNetConfig> {
        let mut v = Vec::new();
        let acts = [
            Activation::Relu,
            Activation::Silu,
            Activation::Gelu,
            Activation::Tanh,
        ];
        for (i, act) in acts.into_iter().enumerate() {
            for residual in [false, true] {
                for output in [NetOutput::Noise, NetOutput::Score] {
                    v.push(ScoreNetConfig {
                        dim: 2 + (i + usize::from(residual)) % 2,
                        width: 24,
                        depth: 3,
                        activation: act,
                        residual,
                        time_embedding: if residual {
                            TimeEmbedding::Fourier {
                                frequencies: 4,
                                max_frequency: 16.0,
                            }
                        } else {
                            TimeEmbedding::Concat
                        },
                        output,
                    });
                }
            }
        }
        v
    }

    fn points(d: usize, n: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n * d).map(|_| rng.gen_range(-2.0f32..2.0)).collect()
    }

    #[test]
    fn jacobian_trace_matches_f64_central_differences() {
        // 16 architectures, 600 rows each (two blocks), t spread over (0.01, 1).
        for (c, cfg) in configs().into_iter().enumerate() {
            let net = ScoreNet::new(cfg.clone(), 100 + c as u64).unwrap();
            // Weights × 2 so that the Jacobian is far from trivial (fresh inits are near-linear).
            let mut mlp = FusedMlp::from_net(&net);
            for l in mlp.plan.layers() {
                mlp.params[l.w..l.b].iter_mut().for_each(|w| *w *= 2.0);
            }
            let d = cfg.dim;
            let n = 600;
            let x = points(d, n, 7 + c as u64);
            let t = 0.01 + 0.99 * (c as f64 / 16.0);
            let mut out = vec![0.0f32; n * d];
            let mut tr = vec![0.0f64; n];
            mlp.forward_with_jacobian_trace(&x, t, &mut out, &mut tr);
            let mut worst = 0.0f64;
            let mut spread = 0.0f64;
            let mut skipped = 0;
            for r in 0..n {
                let xr: Vec<f64> = x[r * d..(r + 1) * d]
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect();
                // ReLU rows with a pre-activation within 1e-5 of a kink (≈ 1 % of rows): f32
                // rounding or the FD step may switch a unit there, so the two derivatives
                // legitimately differ.
                if cfg.activation == Activation::Relu && forward_f64_kink(&mlp, &xr, t).1 < 1e-5 {
                    skipped += 1;
                    continue;
                }
                let reference = fd_trace(&mlp, &xr, t);
                spread += reference.abs() / n as f64;
                worst = worst.max((tr[r] - reference).abs() / (1.0 + reference.abs()));
                let y = forward_f64(&mlp, &xr, t);
                for j in 0..d {
                    let e = (f64::from(out[r * d + j]) - y[j]).abs() / (1.0 + y[j].abs());
                    assert!(e < 1e-5, "{cfg:?}: row {r}: {} vs {}", out[r * d + j], y[j]);
                }
            }
            // f32 forward mode: measured ≤ 3.8e-7 over the 16 architectures.
            assert!(
                worst < 3e-6,
                "{cfg:?}: worst relative trace error {worst:e}"
            );
            assert!(skipped < 30, "{cfg:?}: {skipped} rows near a ReLU kink");
            // The test must see a non-trivial Jacobian.
            assert!(
                spread > 0.1,
                "{cfg:?}: mean |trace| {spread:e} too small to test"
            );
        }
    }

    #[test]
    fn value_path_is_the_fused_forward_pass_bit_for_bit() {
        for (c, cfg) in configs().into_iter().enumerate() {
            let net = ScoreNet::new(cfg.clone(), 300 + c as u64).unwrap();
            let mlp = FusedMlp::from_net(&net);
            let d = cfg.dim;
            let n = 1100;
            let x = points(d, n, 40 + c as u64);
            let (mut a, mut b) = (vec![0.0f32; n * d], vec![0.0f32; n * d]);
            let mut tr = vec![0.0f64; n];
            mlp.forward_common_t(&x, 0.37, &mut a);
            mlp.forward_with_jacobian_trace(&x, 0.37, &mut b, &mut tr);
            assert!(
                a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()),
                "{cfg:?}"
            );
        }
    }

    #[test]
    fn net_score_divergence_converts_noise_to_score() {
        // ∇·s = −tr(∂ε/∂x)/σ(t) for Noise output, tr(∂s/∂x) for Score output; the score itself
        // equals NetScore::score bit for bit.
        let sde = VpSde::new(0.1, 20.0, 1.0).unwrap();
        for (c, cfg) in configs().into_iter().enumerate() {
            let net = ScoreNet::new(cfg.clone(), 500 + c as u64).unwrap();
            let mlp = FusedMlp::from_net(&net);
            let d = cfg.dim;
            let n = 300;
            let x = points(d, n, 90 + c as u64);
            let t = 0.05;
            let mut score = NetScore::new(&net, &sde);
            let (mut s1, mut s2) = (vec![0.0f32; n * d], vec![0.0f32; n * d]);
            let mut div = vec![0.0f64; n];
            score.score(&x, t, &mut s1);
            score.score_and_divergence(&x, t, &mut s2, &mut div);
            assert!(s1.iter().zip(&s2).all(|(p, q)| p.to_bits() == q.to_bits()));
            let mut raw = vec![0.0f32; n * d];
            let mut tr = vec![0.0f64; n];
            mlp.forward_with_jacobian_trace(&x, t, &mut raw, &mut tr);
            let factor = match cfg.output {
                NetOutput::Noise => -1.0 / sde.marginal_std(t),
                NetOutput::Score => 1.0,
            };
            for r in 0..n {
                assert_eq!(div[r], tr[r] * factor, "{cfg:?} row {r}");
            }
        }
    }

    #[test]
    fn trace_is_independent_of_the_thread_count() {
        let net = ScoreNet::new(ScoreNetConfig::default_2d(), 11).unwrap();
        let mlp = FusedMlp::from_net(&net);
        let n = 3000;
        let x = points(2, n, 12);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut out = vec![0.0f32; 2 * n];
            let mut tr = vec![0.0f64; n];
            pool.install(|| mlp.forward_with_jacobian_trace(&x, 0.2, &mut out, &mut tr));
            (out, tr)
        };
        let (o1, t1) = run(1);
        let (o3, t3) = run(3);
        assert!(o1.iter().zip(&o3).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert!(t1.iter().zip(&t3).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}
