//! Layers over flat `f32` parameters for the image networks ([`crate::UNet`] and the MNIST
//! classifier): a layer records the offsets of its weight and bias in the flat vector; its
//! forward and backward passes read the parameters and add their gradients at those offsets.
//! Images are NHWC rows (see [`crate::conv`]).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::conv::{
    group_norm_backward, group_norm_forward, group_norm_silu_backward, group_norm_silu_forward,
    Conv2d, GroupNormStats,
};

/// GroupNorm's `ε`.
pub(crate) const GN_EPS: f32 = 1e-5;

/// A linear map `y = x W + b` on rows (`W`: `i × o` row-major at offset `w`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lin {
    pub(crate) i: usize,
    pub(crate) o: usize,
    pub(crate) w: usize,
    pub(crate) b: usize,
}

/// A GroupNorm over `c` channels (`γ` at `gamma`, `β` at `beta`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gn {
    pub(crate) c: usize,
    pub(crate) gamma: usize,
    pub(crate) beta: usize,
}

impl Gn {
    /// `(γ, β)`: the scale and shift in the flat parameters `p`.
    fn params<'a>(&self, p: &'a [f32]) -> (&'a [f32], &'a [f32]) {
        (
            &p[self.gamma..self.gamma + self.c],
            &p[self.beta..self.beta + self.c],
        )
    }

    /// `(∂γ, ∂β)`: their gradients in the flat gradient `g` (β stored after γ).
    fn grads<'a>(&self, g: &'a mut [f32]) -> (&'a mut [f32], &'a mut [f32]) {
        let (gg, rest) = g[self.gamma..].split_at_mut(self.c);
        (gg, &mut rest[self.beta - self.gamma - self.c..][..self.c])
    }
}

/// A convolution (weights at `w`, bias at `b`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cv {
    pub(crate) s: Conv2d,
    pub(crate) w: usize,
    pub(crate) b: usize,
}

/// Lays out parameters: each layer takes the next slots of the flat vector (weight, then
/// bias) and records how to initialise them.
#[derive(Debug, Default)]
pub(crate) struct ParamBuilder {
    /// Parameters so far.
    pub(crate) len: usize,
    /// `(offset, len, fan_in)`: weight and bias drawn `U(−1/√fan_in, 1/√fan_in)`.
    pub(crate) init: Vec<(usize, usize, usize)>,
    /// `(offset, c)`: GroupNorm scales, initialised to 1 (shifts to 0).
    pub(crate) gammas: Vec<(usize, usize)>,
}

impl ParamBuilder {
    pub(crate) fn take(&mut self, n: usize) -> usize {
        self.len += n;
        self.len - n
    }
    pub(crate) fn lin(&mut self, i: usize, o: usize) -> Lin {
        let w = self.take(i * o);
        let b = self.take(o);
        self.init.push((w, i * o + o, i));
        Lin { i, o, w, b }
    }
    pub(crate) fn gn(&mut self, c: usize) -> Gn {
        let gamma = self.take(c);
        let beta = self.take(c);
        self.gammas.push((gamma, c));
        Gn { c, gamma, beta }
    }
    pub(crate) fn conv(
        &mut self,
        side: usize,
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
    ) -> Cv {
        let s = Conv2d {
            h: side,
            w: side,
            c_in,
            c_out,
            k,
            stride,
        };
        let w = self.take(s.weight_len());
        let b = self.take(c_out);
        self.init.push((w, s.weight_len() + c_out, s.patch()));
        Cv { s, w, b }
    }
}

impl ParamBuilder {
    /// Initial parameters drawn from `seed`: PyTorch's default initialisation (every weight and
    /// bias `U(−1/√fan_in, 1/√fan_in)`; GroupNorm `γ = 1`, `β = 0`).
    pub(crate) fn init_params(
        init: &[(usize, usize, usize)],
        gammas: &[(usize, usize)],
        len: usize,
        seed: u64,
    ) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut p = vec![0.0f32; len];
        for &(off, n, fan_in) in init {
            let bound = 1.0 / (fan_in as f32).sqrt();
            for v in &mut p[off..off + n] {
                *v = rng.gen_range(-bound..bound);
            }
        }
        for &(off, c) in gammas {
            p[off..off + c].fill(1.0);
        }
        p
    }
}

pub(crate) use crate::elementwise::{silu, silu_backward};

pub(crate) fn lin_forward(l: &Lin, p: &[f32], x: &[f32], y: &mut Vec<f32>) {
    let n = x.len() / l.i;
    y.clear();
    y.resize(n * l.o, 0.0);
    let (w, b) = (&p[l.w..l.w + l.i * l.o], &p[l.b..l.b + l.o]);
    for (xr, yr) in x.chunks_exact(l.i).zip(y.chunks_exact_mut(l.o)) {
        yr.copy_from_slice(b);
        for (k, &xv) in xr.iter().enumerate() {
            for (yv, &wv) in yr.iter_mut().zip(&w[k * l.o..(k + 1) * l.o]) {
                *yv += xv * wv;
            }
        }
    }
}

/// Adds `∂W = xᵀ dy`, `∂b = Σ dy` into `g`; writes `dx = dy Wᵀ` if asked.
pub(crate) fn lin_backward(
    l: &Lin,
    p: &[f32],
    x: &[f32],
    dy: &[f32],
    g: &mut [f32],
    dx: Option<&mut Vec<f32>>,
) {
    for (xr, gr) in x.chunks_exact(l.i).zip(dy.chunks_exact(l.o)) {
        for (k, &xv) in xr.iter().enumerate() {
            for (gw, &gv) in g[l.w + k * l.o..l.w + (k + 1) * l.o].iter_mut().zip(gr) {
                *gw += xv * gv;
            }
        }
        for (gb, &gv) in g[l.b..l.b + l.o].iter_mut().zip(gr) {
            *gb += gv;
        }
    }
    if let Some(dx) = dx {
        let w = &p[l.w..l.w + l.i * l.o];
        dx.clear();
        dx.extend(dy.chunks_exact(l.o).flat_map(|gr| {
            (0..l.i).map(move |k| {
                gr.iter()
                    .zip(&w[k * l.o..(k + 1) * l.o])
                    .map(|(a, b)| a * b)
                    .sum::<f32>()
            })
        }));
    }
}

pub(crate) fn conv_forward(c: &Cv, p: &[f32], x: &[f32]) -> Vec<f32> {
    let n = x.len() / c.s.in_len();
    // Every entry is written by the product's bias epilogue.
    let mut y = crate::pool::overwritten(n * c.s.out_len());
    c.s.forward(
        x,
        &p[c.w..c.w + c.s.weight_len()],
        &p[c.b..c.b + c.s.c_out],
        &mut y,
    );
    y
}

pub(crate) fn conv_backward(
    c: &Cv,
    p: &[f32],
    x: &[f32],
    dy: &[f32],
    g: &mut [f32],
    want_dx: bool,
) -> Vec<f32> {
    let mut dx = if want_dx {
        // Every entry is written (`Conv2d::backward` stores or zero-fills then adds).
        crate::pool::overwritten(x.len())
    } else {
        Vec::new()
    };
    let (gw, rest) = g[c.w..].split_at_mut(c.s.weight_len());
    let gb = &mut rest[c.b - c.w - c.s.weight_len()..][..c.s.c_out];
    c.s.backward(
        x,
        &p[c.w..c.w + c.s.weight_len()],
        dy,
        want_dx.then_some(dx.as_mut_slice()),
        gw,
        gb,
    );
    dx
}

pub(crate) fn gn_forward(
    gn: &Gn,
    hw: usize,
    groups: usize,
    p: &[f32],
    x: &[f32],
    stats: &mut GroupNormStats,
) -> Vec<f32> {
    // Every entry is written.
    let mut y = crate::pool::overwritten(x.len());
    let (gamma, beta) = gn.params(p);
    let label = || format!("groupnorm {hw}px {}ch forward", gn.c);
    crate::profile::timed(label, 0.0, || {
        group_norm_forward(x, hw, gn.c, groups, gamma, beta, GN_EPS, &mut y, stats)
    });
    y
}

/// `∂L/∂x` of `s = SiLU(GroupNorm(x))` given `a = GroupNorm(x)` and `ds = ∂L/∂s` (overwritten
/// with `∂L/∂a`); adds the GroupNorm's parameter gradients into `g`
/// ([`crate::conv::group_norm_silu_backward`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gn_silu_backward(
    gn: &Gn,
    hw: usize,
    groups: usize,
    p: &[f32],
    x: &[f32],
    a: &[f32],
    stats: &GroupNormStats,
    ds: &mut [f32],
    g: &mut [f32],
) -> Vec<f32> {
    // Every entry is written.
    let mut dx = crate::pool::overwritten(x.len());
    let (gg, gb) = gn.grads(g);
    let gamma = gn.params(p).0;
    let label = || format!("groupnorm+silu {hw}px {}ch backward", gn.c);
    crate::profile::timed(label, 0.0, || {
        group_norm_silu_backward(x, a, hw, gn.c, groups, gamma, stats, ds, &mut dx, gg, gb)
    });
    dx
}

/// `(a, s)` with `a = GroupNorm(x)` and `s = SiLU(a)`, in one pass
/// ([`crate::conv::group_norm_silu_forward`]).
pub(crate) fn gn_silu_forward(
    gn: &Gn,
    hw: usize,
    groups: usize,
    p: &[f32],
    x: &[f32],
    stats: &mut GroupNormStats,
) -> (Vec<f32>, Vec<f32>) {
    // Every entry of both is written.
    let mut y = crate::pool::overwritten(x.len());
    let mut s = crate::pool::overwritten(x.len());
    let (gamma, beta) = gn.params(p);
    let label = || format!("groupnorm+silu {hw}px {}ch forward", gn.c);
    crate::profile::timed(label, 0.0, || {
        group_norm_silu_forward(
            x, hw, gn.c, groups, gamma, beta, GN_EPS, &mut y, &mut s, stats,
        )
    });
    (y, s)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn gn_backward(
    gn: &Gn,
    hw: usize,
    groups: usize,
    p: &[f32],
    x: &[f32],
    stats: &GroupNormStats,
    dy: &[f32],
    g: &mut [f32],
) -> Vec<f32> {
    // Every entry is written.
    let mut dx = crate::pool::overwritten(x.len());
    let (gg, gb) = gn.grads(g);
    let gamma = gn.params(p).0;
    let label = || format!("groupnorm {hw}px {}ch backward", gn.c);
    crate::profile::timed(label, 0.0, || {
        group_norm_backward(x, hw, gn.c, groups, gamma, stats, dy, &mut dx, gg, gb)
    });
    dx
}

/// Channel concatenation of NHWC tensors with `ca` and `cb` channels.
/// Pixels per parallel block of [`concat`] and [`split`] (pure copies: any blocking gives
/// the same result).
const COPY_PIXELS: usize = 256;

pub(crate) fn concat(a: &[f32], ca: usize, b: &[f32], cb: usize) -> Vec<f32> {
    // Every entry is written below.
    let mut y = crate::pool::overwritten(a.len() + b.len());
    y.par_chunks_mut(COPY_PIXELS * (ca + cb))
        .zip(a.par_chunks(COPY_PIXELS * ca))
        .zip(b.par_chunks(COPY_PIXELS * cb))
        .for_each(|((yb, ab), bb)| {
            for ((py, pa), pb) in yb
                .chunks_exact_mut(ca + cb)
                .zip(ab.chunks_exact(ca))
                .zip(bb.chunks_exact(cb))
            {
                py[..ca].copy_from_slice(pa);
                py[ca..].copy_from_slice(pb);
            }
        });
    y
}

pub(crate) fn split(dy: &[f32], ca: usize, cb: usize) -> (Vec<f32>, Vec<f32>) {
    let px = dy.len() / (ca + cb);
    // Every entry is written below.
    let (mut a, mut b) = (
        crate::pool::overwritten(px * ca),
        crate::pool::overwritten(px * cb),
    );
    dy.par_chunks(COPY_PIXELS * (ca + cb))
        .zip(a.par_chunks_mut(COPY_PIXELS * ca))
        .zip(b.par_chunks_mut(COPY_PIXELS * cb))
        .for_each(|((db, ab), bb)| {
            for ((p, pa), pb) in db
                .chunks_exact(ca + cb)
                .zip(ab.chunks_exact_mut(ca))
                .zip(bb.chunks_exact_mut(cb))
            {
                pa.copy_from_slice(&p[..ca]);
                pb.copy_from_slice(&p[ca..]);
            }
        });
    (a, b)
}

/// Test helper for the image networks: for each layer's parameter block (the weights and biases
/// of `init`, the GroupNorm scale+shift of `gammas`) and a random direction `v` on it, the
/// Richardson-extrapolated central difference `(4 D(h/2) − D(h))/3`, `h = 10⁻²`, of `loss`
/// equals `⟨grad, v⟩` to `rel · (|fd| + |an|) + abs`.
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn assert_layer_gradients(
    init: &[(usize, usize, usize)],
    gammas: &[(usize, usize)],
    p: &[f32],
    grad: &[f32],
    loss: impl Fn(&[f32]) -> f64,
    rng: &mut ChaCha8Rng,
    rel: f64,
    abs: f64,
) {
    let mut groups: Vec<(usize, usize)> = init.iter().map(|&(o, l, _)| (o, l)).collect();
    groups.extend(gammas.iter().map(|&(o, c)| (o, 2 * c)));
    for (off, len) in groups {
        let v: Vec<f32> = (0..len).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        let shifted = |s: f32| {
            let mut q = p.to_vec();
            q[off..off + len]
                .iter_mut()
                .zip(&v)
                .for_each(|(a, b)| *a += s * b);
            loss(&q)
        };
        let fdh = |h: f32| (shifted(h) - shifted(-h)) / (2.0 * h as f64);
        let fd = (4.0 * fdh(5e-3) - fdh(1e-2)) / 3.0;
        let an: f64 = grad[off..off + len]
            .iter()
            .zip(&v)
            .map(|(g, v)| *g as f64 * *v as f64)
            .sum();
        assert!(
            (fd - an).abs() < rel * (fd.abs() + an.abs()) + abs,
            "params {off}..{}: fd {fd} vs analytic {an}",
            off + len
        );
    }
}
