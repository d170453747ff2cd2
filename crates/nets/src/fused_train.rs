//! Hand-fused forward + backward pass of the MLP for the weighted squared loss used by
//! denoising score matching, on `gemm` (the same numbers as dfdx's autograd, faster).

use crate::config::{Activation, ScoreNetConfig};

/// Derivative of the activation at pre-activation `z`.
#[inline(always)]
fn act_grad(act: Activation, z: f32) -> f32 {
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
            gemm::Parallelism::Rayon(rayon::current_num_threads()),
        );
    }
}

/// Reusable buffers of [`mlp_loss_and_grad`] (no allocation after the first call at a size).
#[derive(Debug, Default, Clone)]
pub struct MlpWorkspace {
    z: Vec<Vec<f32>>,
    h: Vec<Vec<f32>>,
    g: Vec<f32>,
    dh: Vec<f32>,
    dh2: Vec<f32>,
    pred: Vec<f32>,
}

impl MlpWorkspace {
    /// The network output of the last call (`n × d`).
    pub fn prediction(&self) -> &[f32] {
        &self.pred
    }
}

/// Loss `L = (1/n) Σ_rows ‖a ⊙ f_θ(x̃) − b‖²` and its gradient `∂L/∂θ` (flat layout of
/// [`crate::ScoreNet::to_flat`]) for the MLP of `config` with parameters `params`, on the
/// network input `input` (`n × input_dim`). Forward pass stores pre-activations; backward is
/// `∂W_l = h_{l−1}ᵀ g_l`, `∂b_l = Σ_rows g_l`, `∂h_{l−1} = g_l W_lᵀ (+ ∂h_l if residual)`,
/// `g_{l−1} = ∂h_{l−1} ⊙ act'(z_{l−1})`. Returns `L` (f64-accumulated).
pub fn mlp_loss_and_grad(
    config: &ScoreNetConfig,
    params: &[f32],
    input: &[f32],
    a: &[f32],
    b: &[f32],
    grad: &mut [f32],
    ws: &mut MlpWorkspace,
) -> f64 {
    let shapes = config.layer_shapes();
    let nl = shapes.len();
    let k0 = config.input_dim();
    let n = input.len() / k0;
    let d = config.dim;
    let act = config.activation;
    assert_eq!(params.len(), config.num_params(), "params length");
    assert_eq!(grad.len(), params.len(), "grad length");
    assert_eq!(a.len(), n * d);
    assert_eq!(b.len(), n * d);
    // Offsets of W_l and b_l in the flat vector.
    let mut offs = Vec::with_capacity(nl);
    let mut off = 0;
    for &(i, o) in &shapes {
        offs.push((off, off + i * o));
        off += i * o + o;
    }
    ws.z.resize(nl - 1, Vec::new());
    ws.h.resize(nl - 1, Vec::new());
    // Forward.
    for l in 0..nl {
        let (inp, out) = shapes[l];
        let (wo, bo) = offs[l];
        let w = &params[wo..wo + inp * out];
        let bias = &params[bo..bo + out];
        let mut z = if l + 1 == nl {
            std::mem::take(&mut ws.pred)
        } else {
            std::mem::take(&mut ws.z[l])
        };
        z.resize(n * out, 0.0);
        {
            let prev: &[f32] = if l == 0 { input } else { &ws.h[l - 1] };
            mm(n, out, inp, &mut z, false, prev, inp, 1, w, out, 1);
        }
        for row in z.chunks_exact_mut(out) {
            for (v, &bb) in row.iter_mut().zip(bias) {
                *v += bb;
            }
        }
        if l + 1 == nl {
            ws.pred = z;
        } else {
            let mut h = std::mem::take(&mut ws.h[l]);
            h.resize(n * out, 0.0);
            let residual = config.residual && l > 0;
            if residual {
                let prev = &ws.h[l - 1];
                for ((hv, &zv), &pv) in h.iter_mut().zip(&z).zip(prev) {
                    *hv = pv + act.apply(zv);
                }
            } else {
                for (hv, &zv) in h.iter_mut().zip(&z) {
                    *hv = act.apply(zv);
                }
            }
            ws.z[l] = z;
            ws.h[l] = h;
        }
    }
    // Loss and ∂L/∂pred = (2/n) a (a·pred − b).
    ws.g.resize(n * d, 0.0);
    let mut loss = 0.0f64;
    let scale = 2.0 / n as f32;
    for (((g, &p), &av), &bv) in ws.g.iter_mut().zip(&ws.pred).zip(a).zip(b) {
        let r = av * p - bv;
        loss += (r as f64) * (r as f64);
        *g = scale * av * r;
    }
    loss /= n as f64;
    // Backward. `dh` holds ∂L/∂h_l of the layer above (for residual skips), `ndh` ∂L/∂h_{l−1}.
    let mut g = std::mem::take(&mut ws.g);
    let mut dh = std::mem::take(&mut ws.dh);
    let mut ndh = std::mem::take(&mut ws.dh2);
    for l in (0..nl).rev() {
        let (inp, out) = shapes[l];
        let (wo, bo) = offs[l];
        let prev: &[f32] = if l == 0 { input } else { &ws.h[l - 1] };
        // ∂W = prevᵀ (inp × n) · g (n × out).
        mm(
            inp,
            out,
            n,
            &mut grad[wo..wo + inp * out],
            false,
            prev,
            1,
            inp,
            &g,
            out,
            1,
        );
        let gb = &mut grad[bo..bo + out];
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
        let z = &ws.z[l - 1];
        g.resize(n * inp, 0.0);
        for ((gv, &dv), &zv) in g.iter_mut().zip(&ndh).zip(z) {
            *gv = dv * act_grad(act, zv);
        }
        std::mem::swap(&mut dh, &mut ndh);
    }
    ws.g = g;
    ws.dh = dh;
    ws.dh2 = ndh;
    loss
}
