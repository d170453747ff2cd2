//! Image operations for convolutional score networks, forward and backward, on `f32` tensors in
//! NHWC layout (`x[((b·H + i)·W + j)·C + c]`): so an image batch is a row-major
//! `(B·H·W) × C` matrix and a convolution is one matrix product per image on the kernel layer
//! (`crate::kernels`, run-time CPU dispatch).
//!
//! - [`Conv2d`]: `k × k` convolution (`k` odd), stride 1 or 2, zero padding `(k − 1)/2`:
//!   `y[b, i, j, o] = bias_o + Σ_{u, v < k} Σ_c x[b, s·i + u − p, s·j + v − p, c] · W[(u·k + v)·C_in + c, o]`
//!   (out-of-range pixels are 0). Computed as `im2col(x_b) · W` per image; on AVX-512 the
//!   stride-1 layers skip the patch matrix (implicit GEMM on the zero-padded input, the same
//!   FMA chains: see `impl Conv2d` "Implicit GEMM").
//! - [`group_norm_forward`] / [`group_norm_backward`]: GroupNorm (Wu & He 2018).
//! - [`upsample2_forward`] / [`upsample2_backward`]: nearest-neighbour ×2.
//!
//! Determinism: images are processed independently in parallel; parameter gradients are summed
//! per image and then over images in index order, so results do not depend on the number of
//! threads.

use std::cell::RefCell;

use rayon::prelude::*;

use crate::elementwise::multiversion;
use crate::kernels::{pack_panels, Epilogue, Kernels, Strided, PANEL};

/// A 2-D convolution layer's shape: input `H × W × C_in`, `k × k` kernel (odd `k`), stride
/// 1 or 2, zero padding `p = (k − 1)/2`, `C_out` output channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2d {
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel size (odd).
    pub k: usize,
    /// Stride (1 or 2).
    pub stride: usize,
}

impl Conv2d {
    /// Zero padding `(k − 1)/2`.
    pub fn pad(&self) -> usize {
        (self.k - 1) / 2
    }

    /// Output height `⌊(H + 2p − k)/s⌋ + 1`.
    pub fn out_h(&self) -> usize {
        (self.h + 2 * self.pad() - self.k) / self.stride + 1
    }

    /// Output width `⌊(W + 2p − k)/s⌋ + 1`.
    pub fn out_w(&self) -> usize {
        (self.w + 2 * self.pad() - self.k) / self.stride + 1
    }

    /// Rows of the weight matrix, `k² · C_in`.
    pub fn patch(&self) -> usize {
        self.k * self.k * self.c_in
    }

    /// Weight count `k² · C_in · C_out` (row-major `(k²·C_in) × C_out`, row `(u·k + v)·C_in + c`).
    pub fn weight_len(&self) -> usize {
        self.patch() * self.c_out
    }

    /// Input values per image.
    pub fn in_len(&self) -> usize {
        self.h * self.w * self.c_in
    }

    /// Output values per image.
    pub fn out_len(&self) -> usize {
        self.out_h() * self.out_w() * self.c_out
    }

    /// A short description for the profile (`conv3x3 s1 28x28 32->64`).
    fn label(&self) -> String {
        let (k, s) = (self.k, self.stride);
        format!(
            "conv{k}x{k} s{s} {}x{} {}->{}",
            self.h, self.w, self.c_in, self.c_out
        )
    }

    /// Flops of the product of one pass (forward, weight or input gradient) over `n` images.
    fn pass_flops(&self, n: usize) -> f64 {
        2.0 * (n * self.out_h() * self.out_w() * self.patch() * self.c_out) as f64
    }

    /// Whether the layer reads its input directly (1×1, stride 1: no patch matrix).
    fn pointwise(&self) -> bool {
        self.k == 1 && self.stride == 1
    }

    /// Calls `f(r, tap, pixel)` for every output pixel `r = i·W_out + j` and kernel tap
    /// `tap = u·k + v` in order, with `pixel` the input pixel `(s·i + u − p, s·j + v − p)` as an
    /// index into the image, or `None` where it falls in the zero padding: the one walk that
    /// [`Conv2d::im2col`] and its adjoint [`Conv2d::col2im`] share.
    #[inline]
    fn for_each_tap(&self, mut f: impl FnMut(usize, usize, Option<usize>)) {
        let (p, s) = (self.pad() as isize, self.stride as isize);
        let (oh, ow) = (self.out_h(), self.out_w());
        for r in 0..oh * ow {
            let (i, j) = ((r / ow) as isize, (r % ow) as isize);
            for u in 0..self.k {
                let yi = s * i + u as isize - p;
                for v in 0..self.k {
                    let xj = s * j + v as isize - p;
                    let inside = yi >= 0 && xj >= 0 && yi < self.h as isize && xj < self.w as isize;
                    let pixel = inside.then(|| yi as usize * self.w + xj as usize);
                    f(r, u * self.k + v, pixel);
                }
            }
        }
    }

    /// The patch matrix of one image: row `i·W_out + j` holds the `k² · C_in` inputs under the
    /// kernel at output pixel `(i, j)` (zeros outside the image).
    fn im2col(&self, x: &[f32], col: &mut [f32]) {
        let (c, patch) = (self.c_in, self.patch());
        if self.stride == 1 {
            // The k taps of a kernel row are k adjacent pixels: one copy of up to k·C values.
            let (p, k, w) = (self.pad(), self.k, self.w);
            for (r, row) in col.chunks_exact_mut(patch).enumerate() {
                let (i, j) = (r / w, r % w);
                for (u, seg) in row.chunks_exact_mut(k * c).enumerate() {
                    let yi = i + u;
                    if yi < p || yi - p >= self.h {
                        seg.fill(0.0);
                        continue;
                    }
                    // Taps v with 0 ≤ j + v − p < W.
                    let v0 = p.saturating_sub(j);
                    let v1 = k.min(w + p - j);
                    seg[..v0 * c].fill(0.0);
                    let src = ((yi - p) * w + j + v0 - p) * c;
                    seg[v0 * c..v1 * c].copy_from_slice(&x[src..src + (v1 - v0) * c]);
                    seg[v1 * c..].fill(0.0);
                }
            }
            return;
        }
        self.for_each_tap(|r, tap, pixel| {
            let dst = &mut col[r * patch + tap * c..r * patch + (tap + 1) * c];
            match pixel {
                Some(q) => dst.copy_from_slice(&x[q * c..(q + 1) * c]),
                None => dst.fill(0.0),
            }
        });
    }

    /// Adds the patch-matrix gradient `dcol` back onto the image gradient `dx` (the adjoint of
    /// [`Conv2d::im2col`]), in a fixed order.
    fn col2im(&self, dcol: &[f32], dx: &mut [f32]) {
        let (c, patch) = (self.c_in, self.patch());
        self.for_each_tap(|r, tap, pixel| {
            if let Some(q) = pixel {
                let src = &dcol[r * patch + tap * c..r * patch + (tap + 1) * c];
                for (d, &g) in dx[q * c..(q + 1) * c].iter_mut().zip(src) {
                    *d += g;
                }
            }
        });
    }

    /// `y ← conv(x) + bias` for a batch (`x`: `n · in_len()`, `y`: `n · out_len()`).
    pub fn forward(&self, x: &[f32], weight: &[f32], bias: &[f32], y: &mut [f32]) {
        let kern = Kernels::detect();
        let (il, ol) = (self.in_len(), self.out_len());
        assert_eq!(weight.len(), self.weight_len(), "weight length");
        assert_eq!(bias.len(), self.c_out, "bias length");
        assert_eq!(x.len() / il, y.len() / ol, "batch sizes of x and y");
        let label = || format!("{} forward", self.label());
        crate::profile::timed(label, self.pass_flops(x.len() / il), || {
            self.forward_images(&kern, x, weight, bias, y)
        });
    }

    /// The images of [`Conv2d::forward`], in parallel.
    fn forward_images(
        &self,
        kern: &Kernels,
        x: &[f32],
        weight: &[f32],
        bias: &[f32],
        y: &mut [f32],
    ) {
        if self.implicit(kern) {
            self.forward_implicit(kern, x, weight, Epilogue::Bias(bias), y);
            return;
        }
        let (il, ol, patch, rows) = (
            self.in_len(),
            self.out_len(),
            self.patch(),
            self.out_h() * self.out_w(),
        );
        x.par_chunks_exact(il)
            .zip(y.par_chunks_exact_mut(ol))
            .for_each(|(xb, yb)| {
                let mut run = |a: &[f32]| {
                    let a = Strided {
                        data: a,
                        rs: patch,
                        cs: 1,
                    };
                    kern.matmul(
                        rows,
                        self.c_out,
                        patch,
                        a,
                        weight,
                        self.c_out,
                        yb,
                        self.c_out,
                        Epilogue::Bias(bias),
                    );
                };
                if self.pointwise() {
                    run(xb);
                } else {
                    with_scratch(&SCRATCH, rows * patch, |col| {
                        self.im2col(xb, col);
                        run(col);
                    });
                }
            });
    }

    /// Backward pass for a batch: given `dy = ∂L/∂y`, adds `∂L/∂W = Σ_b im2col(x_b)ᵀ dy_b`
    /// (summed per group of 8 consecutive images, then over groups, in order) to
    /// `dw` and `∂L/∂bias = Σ_{b,i,j} dy` to `db`, and (if given) writes
    /// `dx = col2im(dy_b Wᵀ)`.
    pub fn backward(
        &self,
        x: &[f32],
        weight: &[f32],
        dy: &[f32],
        dx: Option<&mut [f32]>,
        dw: &mut [f32],
        db: &mut [f32],
    ) {
        let kern = Kernels::detect();
        let (il, ol) = (self.in_len(), self.out_len());
        let n = x.len() / il;
        assert_eq!(dy.len(), n * ol, "dy length");
        assert_eq!(dw.len(), self.weight_len(), "dw length");
        let flops = self.pass_flops(n);
        crate::profile::timed(
            || format!("{} weight gradient", self.label()),
            flops,
            || self.weight_gradient(&kern, x, dy, dw),
        );
        crate::profile::timed(
            || format!("{} bias gradient", self.label()),
            0.0,
            || {
                // Per-image bias gradients (column sums, in parallel), added in image order.
                let mut bias_sums = vec![0.0f32; n * self.c_out];
                dy.par_chunks_exact(ol)
                    .zip(bias_sums.par_chunks_exact_mut(self.c_out))
                    .for_each(|(gb, s)| kern.col_sums(gb, s));
                for s in bias_sums.chunks_exact(self.c_out) {
                    for (d, &v) in db.iter_mut().zip(s) {
                        *d += v;
                    }
                }
            },
        );
        if let Some(dx) = dx {
            assert_eq!(dx.len(), n * il, "dx length");
            crate::profile::timed(
                || format!("{} input gradient", self.label()),
                flops,
                || self.input_gradient(&kern, weight, dy, dx),
            );
        }
    }

    /// Adds `∂L/∂W = Σ_b im2col(x_b)ᵀ dy_b` to `dw`: per fixed group of [`WGRAD_GROUP`]
    /// consecutive images (each image's product summed over pixels in order, added onto the
    /// group's sum in image order by the Accumulate epilogue) in one reused buffer, then the
    /// groups summed in index order (in parallel over blocks of entries): the same bits for
    /// any thread count.
    fn weight_gradient(&self, kern: &Kernels, x: &[f32], dy: &[f32], dw: &mut [f32]) {
        let (il, ol, patch, rows) = (
            self.in_len(),
            self.out_len(),
            self.patch(),
            self.out_h() * self.out_w(),
        );
        let n = x.len() / il;
        let wl = self.weight_len();
        let groups = n.div_ceil(WGRAD_GROUP);
        // Implicit GEMM where the 2p extra columns of the widened pixels cost little.
        let implicit = self.implicit(kern) && self.w >= IMPLICIT_WGRAD_MIN_W;
        with_scratch(&GRADS, groups * wl, |per_group| {
            x.par_chunks(WGRAD_GROUP * il)
                .zip(dy.par_chunks(WGRAD_GROUP * ol))
                .zip(per_group.par_chunks_exact_mut(wl))
                .for_each(|((xg, gg), g)| {
                    for (b, (xb, gb)) in xg.chunks_exact(il).zip(gg.chunks_exact(ol)).enumerate() {
                        let epi = if b == 0 {
                            Epilogue::Store
                        } else {
                            Epilogue::Accumulate
                        };
                        if implicit {
                            self.weight_gradient_implicit(kern, xb, gb, g, epi);
                            continue;
                        }
                        let mut run = |a: &[f32]| {
                            let at = Strided {
                                data: a,
                                rs: 1,
                                cs: patch,
                            };
                            kern.matmul(
                                patch, self.c_out, rows, at, gb, self.c_out, g, self.c_out, epi,
                            );
                        };
                        if self.pointwise() {
                            run(xb);
                        } else {
                            with_scratch(&SCRATCH, rows * patch, |col| {
                                self.im2col(xb, col);
                                run(col);
                            });
                        }
                    }
                });
            let per_group = &*per_group;
            dw.par_chunks_mut(SUM_BLOCK)
                .enumerate()
                .for_each(|(blk, d)| {
                    let o = blk * SUM_BLOCK;
                    for g in per_group.chunks_exact(wl) {
                        for (a, &v) in d.iter_mut().zip(&g[o..]) {
                            *a += v;
                        }
                    }
                });
        });
    }

    /// Writes `dx = col2im(dy_b Wᵀ)` per image (stride-1 `k > 1`: as a convolution of `dy`,
    /// [`Conv2d::input_gradient_as_conv`]).
    fn input_gradient(&self, kern: &Kernels, weight: &[f32], dy: &[f32], dx: &mut [f32]) {
        let (il, ol, patch, rows) = (
            self.in_len(),
            self.out_len(),
            self.patch(),
            self.out_h() * self.out_w(),
        );
        if self.stride == 1 && self.k > 1 {
            self.input_gradient_as_conv(kern, weight, dy, dx);
            return;
        }
        let wt = transpose(weight, patch, self.c_out);
        dx.par_chunks_exact_mut(il)
            .zip(dy.par_chunks_exact(ol))
            .for_each(|(dxb, gb)| {
                let a = Strided {
                    data: gb,
                    rs: self.c_out,
                    cs: 1,
                };
                if self.pointwise() {
                    kern.matmul(
                        rows,
                        patch,
                        self.c_out,
                        a,
                        &wt,
                        patch,
                        dxb,
                        patch,
                        Epilogue::Store,
                    );
                } else {
                    with_scratch(&SCRATCH, rows * patch, |dcol| {
                        kern.matmul(
                            rows,
                            patch,
                            self.c_out,
                            a,
                            &wt,
                            patch,
                            dcol,
                            patch,
                            Epilogue::Store,
                        );
                        dxb.fill(0.0);
                        self.col2im(dcol, dxb);
                    });
                }
            });
    }
}

/// Implicit GEMM for stride-1 convolutions (AVX-512): no patch matrix. With the input
/// zero-padded to `x̃` (`(H + 2p) × (W + 2p) × C_in`, `W̃ = W + 2p`), row `i·W + j` of the patch
/// matrix is, for kernel row `u`, the `k·C_in` consecutive values of `x̃` from pixel
/// `(i + u, j)`: the patch matrix restricted to the columns of kernel row `u`
/// (`u·k·C_in ..< (u + 1)·k·C_in`) and to the pixels of output row `i` is the strided matrix
/// `x̃[((i + u)·W̃ + j)·C_in + r]` (row stride `C_in`, column stride 1). The product is then
/// `k` blocks of its chains (one per kernel row, in order, each over the output rows), each
/// entry one FMA chain over the patch index in order, with the same operands (zeros included)
/// as `im2col(x)·W`: the same bits as the patch-matrix path, which the other levels run.
impl Conv2d {
    /// Whether the products run as implicit GEMM here (stride 1, `k > 1`, AVX-512).
    fn implicit(&self, kern: &Kernels) -> bool {
        self.stride == 1 && self.k > 1 && kern.packed_for(self.c_out)
    }

    /// Width `W̃ = W + 2p` of the padded input.
    fn padded_w(&self) -> usize {
        self.w + 2 * self.pad()
    }

    /// Values of the padded input `x̃` plus `(k − 1)·C_in` zeros of slack (read, times zero
    /// rows of `dỹ`, by the last pixels of [`Conv2d::weight_gradient_implicit`]).
    fn padded_len(&self) -> usize {
        ((self.h + 2 * self.pad()) * self.padded_w() + self.k - 1) * self.c_in
    }

    /// Writes the zero-padded image `x̃` of one image `x` into `xp` ([`Conv2d::padded_len`]).
    fn pad_into(&self, x: &[f32], xp: &mut [f32]) {
        let (p, c, wp) = (self.pad(), self.c_in, self.padded_w());
        // Zeros only where no pixel goes: the top and bottom p rows (and the slack), the p
        // pixels left and right of each row.
        xp[..p * wp * c].fill(0.0);
        xp[(self.h + p) * wp * c..].fill(0.0);
        for (i, row) in x.chunks_exact(self.w * c).enumerate() {
            let start = (i + p) * wp * c;
            let (left, rest) = xp[start..start + wp * c].split_at_mut(p * c);
            left.fill(0.0);
            rest[..row.len()].copy_from_slice(row);
            rest[row.len()..].fill(0.0);
        }
    }

    /// `y = epi(im2col(x_b)·W)` per image by implicit GEMM; `epi` is `Bias` or `Store`.
    fn forward_implicit(
        &self,
        kern: &Kernels,
        x: &[f32],
        weight: &[f32],
        epi: Epilogue<'_>,
        y: &mut [f32],
    ) {
        let (c, co, k) = (self.c_in, self.c_out, self.k);
        let (seg, wp, w) = (k * c, self.padded_w(), self.w);
        // The weight rows of each kernel row, packed once for all images.
        let panels: Vec<Vec<f32>> = (0..k)
            .map(|u| pack_panels(&weight[u * seg * co..], seg, co, co))
            .collect();
        x.par_chunks_exact(self.in_len())
            .zip(y.par_chunks_exact_mut(self.out_len()))
            .for_each(|(xb, yb)| {
                with_scratch(&SCRATCH, self.padded_len(), |xp| {
                    self.pad_into(xb, xp);
                    for (u, pu) in panels.iter().enumerate() {
                        let last = u + 1 == k;
                        for i in 0..self.h {
                            let a = Strided {
                                data: &xp[(i + u) * wp * c..],
                                rs: c,
                                cs: 1,
                            };
                            let e = if last { epi } else { Epilogue::Store };
                            let out = &mut yb[i * w * co..(i + 1) * w * co];
                            kern.matmul_packed(w, co, seg, a, pu, out, co, e, u > 0);
                        }
                    }
                });
            });
    }

    /// One image's `∂L/∂W` (Store) or its sum with `g` (Accumulate) by implicit GEMM: with
    /// `dỹ` the output gradient widened to `W̃` columns (zeros in the `2p` extra ones), block
    /// `u` of `im2col(x_b)ᵀ dy_b` is `Σ_q x̃[(q + u·W̃)·C_in + r] dỹ[q, o]` over the widened pixels
    /// `q = i·W̃ + j` in order: the patch-matrix chain (pixels in order) with exact zero terms
    /// `x̃ · 0` inserted, which leave an FMA chain started from `+0` unchanged for finite `x`.
    fn weight_gradient_implicit(
        &self,
        kern: &Kernels,
        xb: &[f32],
        gb: &[f32],
        g: &mut [f32],
        epi: Epilogue<'_>,
    ) {
        let (c, co, k) = (self.c_in, self.c_out, self.k);
        let (seg, wp, w) = (k * c, self.padded_w(), self.w);
        let q = self.h * wp;
        let panels = co.div_ceil(PANEL);
        with_scratch(&SCRATCH, self.padded_len() + panels * q * PANEL, |buf| {
            let (xp, dyp) = buf.split_at_mut(self.padded_len());
            self.pad_into(xb, xp);
            // dỹ packed as the product reads it (`pack_panels` of the widened rows, written
            // directly): panel `p`, widened pixel `i·W̃ + j`, 32 lanes.
            dyp.fill(0.0);
            for p in 0..panels {
                let (j0, lanes) = (p * PANEL, (co - p * PANEL).min(PANEL));
                for (r, src) in gb.chunks_exact(co).enumerate() {
                    let dst = (p * q + (r / w) * wp + r % w) * PANEL;
                    dyp[dst..dst + lanes].copy_from_slice(&src[j0..j0 + lanes]);
                }
            }
            for u in 0..k {
                let at = Strided {
                    data: &xp[u * wp * c..],
                    rs: 1,
                    cs: c,
                };
                let gu = &mut g[u * seg * co..(u + 1) * seg * co];
                kern.matmul_packed(seg, co, q, at, dyp, gu, co, epi, false);
            }
        });
    }
}

impl Conv2d {
    /// The input gradient of a stride-1 convolution as a convolution of `dy`:
    /// `dx[i, j, c] = Σ_{u', v'} Σ_o dy[i + u' − p, j + v' − p, o] · W'[(u'k + v')·C_out + o, c]`
    /// with the flipped, transposed kernel `W'[(u'k + v')·C_out + o, c] = W[(k² − 1 − u'k − v')·C_in + c, o]`
    /// (out-of-range pixels are 0), i.e. `im2col(dy_b) · W'` per image: a product of the
    /// forward kind (long `k² C_out`, `C_in` columns) written straight into `dx`, instead of
    /// `dy_b Wᵀ` (short `C_out`) plus the scatter `col2im`.
    fn input_gradient_as_conv(&self, kern: &Kernels, weight: &[f32], dy: &[f32], dx: &mut [f32]) {
        let (ci, co, kk) = (self.c_in, self.c_out, self.k * self.k);
        let t = Conv2d {
            h: self.h,
            w: self.w,
            c_in: co,
            c_out: ci,
            k: self.k,
            stride: 1,
        };
        let mut wf = vec![0.0f32; self.weight_len()];
        for tap in 0..kk {
            for o in 0..co {
                for c in 0..ci {
                    wf[(tap * co + o) * ci + c] = weight[((kk - 1 - tap) * ci + c) * co + o];
                }
            }
        }
        if t.implicit(kern) {
            t.forward_implicit(kern, dy, &wf, Epilogue::Store, dx);
            return;
        }
        let (rows, patch) = (self.h * self.w, t.patch());
        dx.par_chunks_exact_mut(self.in_len())
            .zip(dy.par_chunks_exact(self.out_len()))
            .for_each(|(dxb, gb)| {
                with_scratch(&SCRATCH, rows * patch, |col| {
                    t.im2col(gb, col);
                    let a = Strided {
                        data: col,
                        rs: patch,
                        cs: 1,
                    };
                    kern.matmul(rows, ci, patch, a, &wf, ci, dxb, ci, Epilogue::Store);
                });
            });
    }
}

/// Narrowest image whose weight gradient runs as implicit GEMM (the widened pixels add
/// `2p/W` of the work: 14 % at `W = 14`).
const IMPLICIT_WGRAD_MIN_W: usize = 14;

/// Images per group of the weight gradient (fixed: part of the arithmetic).
const WGRAD_GROUP: usize = 8;

/// Entries of `∂L/∂W` per parallel block of the sum over image groups.
const SUM_BLOCK: usize = 4096;

thread_local! {
    /// A worker's patch matrix (`im2col`) or its gradient: reused, so the convolutions do not
    /// allocate (and fault in) fresh pages per image.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// The calling thread's per-image weight gradients of [`Conv2d::backward`].
    static GRADS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on the first `len` values of this thread's buffer `key` (grown as needed; the
/// contents are whatever the last user left: `f` overwrites what it reads). A buffer already
/// in use on this thread (re-entry) is replaced by a fresh one.
fn with_scratch<T>(
    key: &'static std::thread::LocalKey<RefCell<Vec<f32>>>,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> T,
) -> T {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        }
        Err(_) => f(&mut vec![0.0; len]),
    })
}

/// The transpose of the row-major `rows × cols` matrix `m` (row-major `cols × rows`).
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; m.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

/// GroupNorm statistics kept for the backward pass: per image and group, the mean and
/// `1/√(var + ε)`.
#[derive(Debug, Clone, Default)]
pub struct GroupNormStats {
    /// `μ_{b,g}`, index `b·G + g`.
    pub mean: Vec<f32>,
    /// `1/√(σ²_{b,g} + ε)`.
    pub rstd: Vec<f32>,
}

/// GroupNorm over NHWC images of `hw` pixels and `c` channels in `groups` groups of `c/groups`
/// consecutive channels: `y = γ_c (x − μ_{b,g}) / √(σ²_{b,g} + ε) + β_c`, with `μ`, `σ²` the
/// mean and (biased) variance over the group's `hw · c/groups` values of image `b` (sums in
/// `f64`).
#[allow(clippy::too_many_arguments)]
pub fn group_norm_forward(
    x: &[f32],
    hw: usize,
    c: usize,
    groups: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    y: &mut [f32],
    stats: &mut GroupNormStats,
) {
    assert!(
        c.is_multiple_of(groups),
        "channels must be a multiple of groups"
    );
    let per = hw * c;
    let n = x.len() / per;
    stats.mean.resize(n * groups, 0.0);
    stats.rstd.resize(n * groups, 0.0);
    x.par_chunks_exact(per)
        .zip(y.par_chunks_exact_mut(per))
        .zip(
            stats
                .mean
                .par_chunks_exact_mut(groups)
                .zip(stats.rstd.par_chunks_exact_mut(groups)),
        )
        .for_each(|((xb, yb), (mb, rb))| {
            gn_forward_image(xb, c, gamma, beta, eps, yb, &mut [], mb, rb);
        });
}

/// [`group_norm_forward`] and `s = SiLU(y)` in one pass over each image (the SiLU of each
/// pixel computed right after its `y`, with the same arithmetic as [`crate::elementwise`]'s
/// SiLU: the same bits as the two operations one after the other).
#[allow(clippy::too_many_arguments)]
pub(crate) fn group_norm_silu_forward(
    x: &[f32],
    hw: usize,
    c: usize,
    groups: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    y: &mut [f32],
    s: &mut [f32],
    stats: &mut GroupNormStats,
) {
    assert!(
        c.is_multiple_of(groups),
        "channels must be a multiple of groups"
    );
    assert_eq!(s.len(), y.len(), "SiLU output length");
    let per = hw * c;
    let n = x.len() / per;
    stats.mean.resize(n * groups, 0.0);
    stats.rstd.resize(n * groups, 0.0);
    x.par_chunks_exact(per)
        .zip(y.par_chunks_exact_mut(per).zip(s.par_chunks_exact_mut(per)))
        .zip(
            stats
                .mean
                .par_chunks_exact_mut(groups)
                .zip(stats.rstd.par_chunks_exact_mut(groups)),
        )
        .for_each(|((xb, (yb, sb)), (mb, rb))| {
            gn_forward_image(xb, c, gamma, beta, eps, yb, sb, mb, rb);
        });
}

multiversion! {
    #[allow(clippy::too_many_arguments)]
    /// One image of [`group_norm_forward`]: per-channel `f64` sums over pixels (in pixel
    /// order), added over a group's channels in order; then the same for the squared
    /// deviations; then `y = γ ((x − μ) r) + β` per channel, and `SiLU(y)` into `sb` unless
    /// it is empty.
    fn gn_forward_image(
        xb: &[f32],
        c: usize,
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
        yb: &mut [f32],
        sb: &mut [f32],
        mb: &mut [f32],
        rb: &mut [f32],
    ) {
        let groups = mb.len();
        let cg = c / groups;
        let cnt = (xb.len() / c * cg) as f64;
        let mut s = vec![0.0f64; c];
        channel_sums(xb, c, &mut s, None);
        let mut mean_c = vec![0.0f64; c];
        for g in 0..groups {
            let m = s[g * cg..(g + 1) * cg].iter().sum::<f64>() / cnt;
            mean_c[g * cg..(g + 1) * cg].fill(m);
        }
        channel_sums(xb, c, &mut s, Some(&mean_c));
        let (mut mu, mut r) = (vec![0.0f32; c], vec![0.0f32; c]);
        for g in 0..groups {
            let var = s[g * cg..(g + 1) * cg].iter().sum::<f64>() / cnt;
            mb[g] = mean_c[g * cg] as f32;
            rb[g] = (1.0 / (var + eps as f64).sqrt()) as f32;
            mu[g * cg..(g + 1) * cg].fill(mb[g]);
            r[g * cg..(g + 1) * cg].fill(rb[g]);
        }
        let (gamma, beta) = (&gamma[..c], &beta[..c]);
        let with_silu = !sb.is_empty();
        for (p, (px, py)) in xb.chunks_exact(c).zip(yb.chunks_exact_mut(c)).enumerate() {
            for ((((o, &xv), &g), &b), (&m, &rr)) in py
                .iter_mut()
                .zip(px)
                .zip(gamma)
                .zip(beta)
                .zip(mu.iter().zip(&r))
            {
                *o = g * ((xv - m) * rr) + b;
            }
            if with_silu {
                for (o, &v) in sb[p * c..(p + 1) * c].iter_mut().zip(py.iter()) {
                    *o = v * crate::elementwise::sigmoid_f32(v);
                }
            }
        }
    }
}

/// `s_ch = Σ_px x[px, ch]` (no `center`) or `Σ_px (x[px, ch] − center_ch)²` over the pixels
/// of one NHWC image in pixel order, in `f64`. Channels in blocks of 32 whose sums stay in
/// registers over the pixel loop (sums kept in memory cost a store-to-load round trip per
/// pixel); each channel's terms are added in the same order either way.
#[inline(always)]
fn channel_sums(xb: &[f32], c: usize, s: &mut [f64], center: Option<&[f64]>) {
    const BLOCK: usize = 32;
    let mut c0 = 0;
    while c0 + BLOCK <= c {
        let mut acc = [0.0f64; BLOCK];
        match center {
            None => {
                for px in xb.chunks_exact(c) {
                    let px: &[f32; BLOCK] = px[c0..c0 + BLOCK].try_into().expect("block");
                    for (a, &v) in acc.iter_mut().zip(px) {
                        *a += v as f64;
                    }
                }
            }
            Some(m) => {
                let m: [f64; BLOCK] = m[c0..c0 + BLOCK].try_into().expect("block");
                for px in xb.chunks_exact(c) {
                    let px: &[f32; BLOCK] = px[c0..c0 + BLOCK].try_into().expect("block");
                    for ((a, &v), &mc) in acc.iter_mut().zip(px).zip(&m) {
                        let d = v as f64 - mc;
                        *a += d * d;
                    }
                }
            }
        }
        s[c0..c0 + BLOCK].copy_from_slice(&acc);
        c0 += BLOCK;
    }
    if c0 < c {
        s[c0..].fill(0.0);
        for px in xb.chunks_exact(c) {
            for (j, (a, &v)) in s[c0..].iter_mut().zip(&px[c0..]).enumerate() {
                *a += match center {
                    None => v as f64,
                    Some(m) => (v as f64 - m[c0 + j]) * (v as f64 - m[c0 + j]),
                };
            }
        }
    }
}

/// Backward pass of [`group_norm_forward`]: with `x̂ = (x − μ)·r`,
/// `∂L/∂γ_c += Σ dy·x̂`, `∂L/∂β_c += Σ dy`, and per group
/// `dx = r (γ dy − mean(γ dy) − x̂ · mean(γ dy · x̂))`.
#[allow(clippy::too_many_arguments)]
pub fn group_norm_backward(
    x: &[f32],
    hw: usize,
    c: usize,
    groups: usize,
    gamma: &[f32],
    stats: &GroupNormStats,
    dy: &[f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    let per = hw * c;
    assert!(
        c.is_multiple_of(groups),
        "channels must be a multiple of groups"
    );
    let partial: Vec<(Vec<f64>, Vec<f64>)> = x
        .par_chunks_exact(per)
        .zip(dy.par_chunks_exact(per))
        .zip(dx.par_chunks_exact_mut(per))
        .zip(
            stats
                .mean
                .par_chunks_exact(groups)
                .zip(stats.rstd.par_chunks_exact(groups)),
        )
        .map(|(((xb, gb), dxb), (mb, rb))| gn_backward_image(xb, gb, c, gamma, mb, rb, dxb))
        .collect();
    for (dg, dbt) in &partial {
        for ch in 0..c {
            dgamma[ch] += dg[ch] as f32;
            dbeta[ch] += dbt[ch] as f32;
        }
    }
}

/// `SiLU` backward then [`group_norm_backward`], per image in one parallel loop: with `a` the
/// GroupNorm's output (the SiLU's input) and `ds` the gradient of the SiLU's output, first
/// `ds ← ds ⊙ SiLU'(a)` in place (the arithmetic of [`crate::elementwise`]'s SiLU backward),
/// then the GroupNorm backward of that image while it is in cache: the same bits as the two
/// operations one after the other.
#[allow(clippy::too_many_arguments)]
pub(crate) fn group_norm_silu_backward(
    x: &[f32],
    a: &[f32],
    hw: usize,
    c: usize,
    groups: usize,
    gamma: &[f32],
    stats: &GroupNormStats,
    ds: &mut [f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    let per = hw * c;
    assert!(
        c.is_multiple_of(groups),
        "channels must be a multiple of groups"
    );
    assert_eq!(a.len(), x.len(), "SiLU input length");
    let partial: Vec<(Vec<f64>, Vec<f64>)> = x
        .par_chunks_exact(per)
        .zip(a.par_chunks_exact(per).zip(ds.par_chunks_exact_mut(per)))
        .zip(dx.par_chunks_exact_mut(per))
        .zip(
            stats
                .mean
                .par_chunks_exact(groups)
                .zip(stats.rstd.par_chunks_exact(groups)),
        )
        .map(|(((xb, (ab, gb)), dxb), (mb, rb))| {
            crate::elementwise::silu_backward_block(ab, gb);
            gn_backward_image(xb, gb, c, gamma, mb, rb, dxb)
        })
        .collect();
    for (dg, dbt) in &partial {
        for ch in 0..c {
            dgamma[ch] += dg[ch] as f32;
            dbeta[ch] += dbt[ch] as f32;
        }
    }
}

multiversion! {
    /// One image of [`group_norm_backward`]: per channel (`f64`, pixel order)
    /// `Σ dy·x̂` and `Σ dy`; per group `mean(γ dy) = Σ_c γ_c Σ dy / cnt` and
    /// `mean(γ dy x̂) = Σ_c γ_c Σ dy·x̂ / cnt` (channels in order); then `dx` per pixel.
    /// Returns the image's `(∂L/∂γ, ∂L/∂β)`.
    fn gn_backward_image(
        xb: &[f32],
        gb: &[f32],
        c: usize,
        gamma: &[f32],
        mb: &[f32],
        rb: &[f32],
        dxb: &mut [f32],
    ) -> (Vec<f64>, Vec<f64>) {
        let groups = mb.len();
        let cg = c / groups;
        let cnt = (xb.len() / c * cg) as f64;
        let (mut mu, mut r) = (vec![0.0f32; c], vec![0.0f32; c]);
        for g in 0..groups {
            mu[g * cg..(g + 1) * cg].fill(mb[g]);
            r[g * cg..(g + 1) * cg].fill(rb[g]);
        }
        let (mut dg, mut dbt) = (vec![0.0f64; c], vec![0.0f64; c]);
        for (px, pg) in xb.chunks_exact(c).zip(gb.chunks_exact(c)) {
            for ((((a, bt), &xv), &gv), (&m, &rr)) in dg
                .iter_mut()
                .zip(dbt.iter_mut())
                .zip(px)
                .zip(pg)
                .zip(mu.iter().zip(&r))
            {
                let xh = ((xv - m) * rr) as f64;
                let d = gv as f64;
                *a += d * xh;
                *bt += d;
            }
        }
        let (mut m1, mut m2, mut r64) = (vec![0.0f64; c], vec![0.0f64; c], vec![0.0f64; c]);
        let g64: Vec<f64> = gamma[..c].iter().map(|&v| v as f64).collect();
        for g in 0..groups {
            let (mut a, mut b) = (0.0f64, 0.0f64);
            for ch in g * cg..(g + 1) * cg {
                a += g64[ch] * dbt[ch];
                b += g64[ch] * dg[ch];
            }
            m1[g * cg..(g + 1) * cg].fill(a / cnt);
            m2[g * cg..(g + 1) * cg].fill(b / cnt);
            r64[g * cg..(g + 1) * cg].fill(rb[g] as f64);
        }
        for ((px, pg), pdx) in xb
            .chunks_exact(c)
            .zip(gb.chunks_exact(c))
            .zip(dxb.chunks_exact_mut(c))
        {
            for ((((o, &xv), &gv), (&m, &rr)), (((&g6, &a1), &a2), &r6)) in pdx
                .iter_mut()
                .zip(px)
                .zip(pg)
                .zip(mu.iter().zip(&r))
                .zip(g64.iter().zip(&m1).zip(&m2).zip(&r64))
            {
                let xh = ((xv - m) * rr) as f64;
                let gd = g6 * gv as f64;
                *o = (r6 * (gd - a1 - xh * a2)) as f32;
            }
        }
        (dg, dbt)
    }
}

/// Nearest-neighbour ×2 upsampling of NHWC images `h × w × c`: `y[b, i, j] = x[b, ⌊i/2⌋, ⌊j/2⌋]`.
pub fn upsample2_forward(x: &[f32], h: usize, w: usize, c: usize, y: &mut [f32]) {
    let (per_in, per_out) = (h * w * c, 4 * h * w * c);
    x.par_chunks_exact(per_in)
        .zip(y.par_chunks_exact_mut(per_out))
        .for_each(|(xb, yb)| {
            for i in 0..2 * h {
                for j in 0..2 * w {
                    let src = ((i / 2) * w + j / 2) * c;
                    let dst = (i * 2 * w + j) * c;
                    yb[dst..dst + c].copy_from_slice(&xb[src..src + c]);
                }
            }
        });
}

/// Backward of [`upsample2_forward`]: `dx[b, i, j] = Σ` of the four `dy` it was copied to.
pub fn upsample2_backward(dy: &[f32], h: usize, w: usize, c: usize, dx: &mut [f32]) {
    let (per_in, per_out) = (h * w * c, 4 * h * w * c);
    dx.par_chunks_exact_mut(per_in)
        .zip(dy.par_chunks_exact(per_out))
        .for_each(|(dxb, gb)| {
            dxb.fill(0.0);
            for i in 0..2 * h {
                for j in 0..2 * w {
                    let d = ((i / 2) * w + j / 2) * c;
                    let s = (i * 2 * w + j) * c;
                    for ch in 0..c {
                        dxb[d + ch] += gb[s + ch];
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn rand_vec(n: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
        (0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
    }

    /// Direct-loop f64 convolution (the definition in the module docs).
    fn conv_ref(s: &Conv2d, x: &[f32], w: &[f32], b: &[f32], n: usize) -> Vec<f64> {
        let (oh, ow, p) = (s.out_h(), s.out_w(), s.pad() as isize);
        let mut y = vec![0.0; n * s.out_len()];
        for bi in 0..n {
            for i in 0..oh {
                for j in 0..ow {
                    for o in 0..s.c_out {
                        let mut acc = b[o] as f64;
                        for u in 0..s.k {
                            for v in 0..s.k {
                                let yi = (s.stride * i + u) as isize - p;
                                let xj = (s.stride * j + v) as isize - p;
                                if yi < 0 || xj < 0 || yi >= s.h as isize || xj >= s.w as isize {
                                    continue;
                                }
                                for c in 0..s.c_in {
                                    let xv = x[bi * s.in_len()
                                        + (yi as usize * s.w + xj as usize) * s.c_in
                                        + c];
                                    acc += xv as f64
                                        * w[((u * s.k + v) * s.c_in + c) * s.c_out + o] as f64;
                                }
                            }
                        }
                        y[bi * s.out_len() + (i * ow + j) * s.c_out + o] = acc;
                    }
                }
            }
        }
        y
    }

    fn shapes() -> Vec<Conv2d> {
        vec![
            Conv2d {
                h: 7,
                w: 7,
                c_in: 3,
                c_out: 16,
                k: 3,
                stride: 1,
            },
            Conv2d {
                h: 8,
                w: 6,
                c_in: 5,
                c_out: 8,
                k: 3,
                stride: 2,
            },
            Conv2d {
                h: 7,
                w: 7,
                c_in: 4,
                c_out: 3,
                k: 3,
                stride: 2,
            },
            Conv2d {
                h: 5,
                w: 5,
                c_in: 16,
                c_out: 8,
                k: 1,
                stride: 1,
            },
            Conv2d {
                h: 4,
                w: 4,
                c_in: 2,
                c_out: 1,
                k: 3,
                stride: 1,
            },
        ]
    }

    #[test]
    fn conv_forward_matches_the_definition() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for s in shapes() {
            let n = 3;
            let x = rand_vec(n * s.in_len(), &mut rng);
            let w = rand_vec(s.weight_len(), &mut rng);
            let b = rand_vec(s.c_out, &mut rng);
            let mut y = vec![0.0; n * s.out_len()];
            s.forward(&x, &w, &b, &mut y);
            for (a, r) in y.iter().zip(conv_ref(&s, &x, &w, &b, n)) {
                assert!(
                    (*a as f64 - r).abs() < 1e-5 * (1.0 + r.abs()),
                    "{s:?}: {a} vs {r}"
                );
            }
        }
    }

    /// The loss `L = Σ y ⊙ g` for a fixed `g`: its gradients are `backward(dy = g)`; checked
    /// against central differences of the f64 reference (exact for a linear map up to rounding).
    #[test]
    fn conv_backward_matches_differences_of_the_definition() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for s in shapes() {
            let n = 2;
            let x = rand_vec(n * s.in_len(), &mut rng);
            let w = rand_vec(s.weight_len(), &mut rng);
            let b = rand_vec(s.c_out, &mut rng);
            let g = rand_vec(n * s.out_len(), &mut rng);
            let loss = |x: &[f32], w: &[f32], b: &[f32]| -> f64 {
                conv_ref(&s, x, w, b, n)
                    .iter()
                    .zip(&g)
                    .map(|(y, &g)| y * g as f64)
                    .sum()
            };
            let (mut dx, mut dw, mut db) =
                (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; b.len()]);
            s.backward(&x, &w, &g, Some(&mut dx), &mut dw, &mut db);
            let h = 0.5f32; // L is linear in each argument: any step is exact up to rounding
            let check = |name: &str, got: &[f32], f: &dyn Fn(usize, f32) -> f64| {
                for i in (0..got.len()).step_by(1 + got.len() / 40) {
                    let fd = (f(i, h) - f(i, -h)) / (2.0 * h as f64);
                    assert!(
                        (got[i] as f64 - fd).abs() < 1e-4 * (1.0 + fd.abs()),
                        "{s:?} {name}[{i}]: {} vs {fd}",
                        got[i]
                    );
                }
            };
            check("dx", &dx, &|i, e| {
                let mut x = x.clone();
                x[i] += e;
                loss(&x, &w, &b)
            });
            check("dw", &dw, &|i, e| {
                let mut w = w.clone();
                w[i] += e;
                loss(&x, &w, &b)
            });
            check("db", &db, &|i, e| {
                let mut b = b.clone();
                b[i] += e;
                loss(&x, &w, &b)
            });
        }
    }

    /// The implicit-GEMM path (AVX-512: forward, input gradient, and the weight gradient of
    /// images at least `IMPLICIT_WGRAD_MIN_W` wide) gives the bits of the patch-matrix path
    /// of the AVX2 level, on shapes with and without it (channel counts across the 32-column
    /// panels, a 1×1 and a stride-2 layer, a 5×5 kernel); where the CPU has no AVX-512 both
    /// sides run the same path.
    #[test]
    fn implicit_gemm_gives_the_bits_of_the_patch_matrix() {
        use crate::kernels::KernelLevel;
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let conv = |h, c_in, c_out, k, stride| Conv2d {
            h,
            w: h,
            c_in,
            c_out,
            k,
            stride,
        };
        for s in [
            conv(14, 8, 40, 3, 1),
            conv(16, 24, 16, 3, 1),
            conv(7, 16, 64, 3, 1),
            conv(15, 3, 8, 5, 1),
            conv(14, 16, 8, 1, 1),
            conv(14, 8, 16, 3, 2),
        ] {
            let n = 3;
            let x = rand_vec(n * s.in_len(), &mut rng);
            let w = rand_vec(s.weight_len(), &mut rng);
            let b = rand_vec(s.c_out, &mut rng);
            let g = rand_vec(n * s.out_len(), &mut rng);
            let run = |level: KernelLevel| {
                let kern = Kernels::at(level);
                let mut y = vec![0.0; n * s.out_len()];
                s.forward_images(&kern, &x, &w, &b, &mut y);
                let mut dw = vec![0.0; s.weight_len()];
                s.weight_gradient(&kern, &x, &g, &mut dw);
                let mut dx = vec![0.0; x.len()];
                s.input_gradient(&kern, &w, &g, &mut dx);
                let bits = |v: Vec<f32>| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                (bits(y), bits(dw), bits(dx))
            };
            let (y5, dw5, dx5) = run(KernelLevel::Avx512);
            let (y2, dw2, dx2) = run(KernelLevel::Avx2Fma);
            assert!(y5 == y2, "{s:?}: forward");
            assert!(dw5 == dw2, "{s:?}: weight gradient");
            assert!(dx5 == dx2, "{s:?}: input gradient");
        }
    }

    #[test]
    fn conv_is_bit_identical_for_any_thread_count() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let s = Conv2d {
            h: 14,
            w: 14,
            c_in: 8,
            c_out: 16,
            k: 3,
            stride: 1,
        };
        let n = 9;
        let x = rand_vec(n * s.in_len(), &mut rng);
        let w = rand_vec(s.weight_len(), &mut rng);
        let g = rand_vec(n * s.out_len(), &mut rng);
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    let (mut dx, mut dw, mut db) =
                        (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; 16]);
                    s.backward(&x, &w, &g, Some(&mut dx), &mut dw, &mut db);
                    (dx, dw, db)
                })
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn group_norm_matches_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let (n, hw, c, groups) = (2, 6, 8, 4);
        let x = rand_vec(n * hw * c, &mut rng);
        let gamma: Vec<f32> = rand_vec(c, &mut rng)
            .iter()
            .map(|v| 1.0 + 0.5 * v)
            .collect();
        let beta = rand_vec(c, &mut rng);
        let g = rand_vec(x.len(), &mut rng);
        let f = |x: &[f32], gamma: &[f32], beta: &[f32]| -> (Vec<f32>, GroupNormStats) {
            let mut y = vec![0.0; x.len()];
            let mut st = GroupNormStats::default();
            group_norm_forward(x, hw, c, groups, gamma, beta, 1e-5, &mut y, &mut st);
            (y, st)
        };
        let (y, st) = f(&x, &gamma, &beta);
        // Each group of each image has mean β̄-free zero and unit variance before the affine map.
        let xh0: Vec<f32> = (0..hw).map(|p| (y[p * c] - beta[0]) / gamma[0]).collect();
        let xh1: Vec<f32> = (0..hw)
            .map(|p| (y[p * c + 1] - beta[1]) / gamma[1])
            .collect();
        let all: Vec<f32> = xh0.iter().chain(&xh1).copied().collect();
        let mean = all.iter().sum::<f32>() / all.len() as f32;
        let var = all.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / all.len() as f32;
        assert!(
            mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-3,
            "{mean} {var}"
        );
        let loss = |x: &[f32], gm: &[f32], bt: &[f32]| -> f64 {
            f(x, gm, bt)
                .0
                .iter()
                .zip(&g)
                .map(|(y, &g)| *y as f64 * g as f64)
                .sum()
        };
        let (mut dx, mut dg, mut db) = (vec![0.0; x.len()], vec![0.0; c], vec![0.0; c]);
        group_norm_backward(
            &x, hw, c, groups, &gamma, &st, &g, &mut dx, &mut dg, &mut db,
        );
        let h = 1e-2f32;
        for i in 0..x.len() {
            let mut xp = x.clone();
            xp[i] += h;
            let mut xm = x.clone();
            xm[i] -= h;
            let fd = (loss(&xp, &gamma, &beta) - loss(&xm, &gamma, &beta)) / (2.0 * h as f64);
            assert!(
                (dx[i] as f64 - fd).abs() < 2e-3 * (1.0 + fd.abs()),
                "dx[{i}] {} vs {fd}",
                dx[i]
            );
        }
        for ch in 0..c {
            let mut gp = gamma.clone();
            gp[ch] += h;
            let mut gm = gamma.clone();
            gm[ch] -= h;
            let fd = (loss(&x, &gp, &beta) - loss(&x, &gm, &beta)) / (2.0 * h as f64);
            assert!(
                (dg[ch] as f64 - fd).abs() < 2e-3 * (1.0 + fd.abs()),
                "dgamma[{ch}]"
            );
            let want: f64 = (0..n * hw).map(|p| g[p * c + ch] as f64).sum();
            assert!((db[ch] as f64 - want).abs() < 1e-4, "dbeta[{ch}]");
        }
    }

    /// GroupNorm + SiLU fused (forward and backward) gives the bits of GroupNorm and SiLU one
    /// after the other.
    #[test]
    fn fused_group_norm_silu_gives_the_bits_of_the_two_ops() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let (n, hw, c, groups) = (3, 10, 16, 4);
        let x: Vec<f32> = rand_vec(n * hw * c, &mut rng)
            .iter()
            .map(|v| 3.0 * v + 0.5)
            .collect();
        let gamma: Vec<f32> = rand_vec(c, &mut rng).iter().map(|v| 1.0 + v).collect();
        let beta = rand_vec(c, &mut rng);
        let ds = rand_vec(x.len(), &mut rng);
        let (mut a, mut st) = (vec![0.0; x.len()], GroupNormStats::default());
        group_norm_forward(&x, hw, c, groups, &gamma, &beta, 1e-5, &mut a, &mut st);
        let mut s = Vec::new();
        crate::elementwise::silu(&a, &mut s);
        let (mut a2, mut s2, mut st2) = (vec![0.0; x.len()], vec![0.0; x.len()], st.clone());
        group_norm_silu_forward(
            &x, hw, c, groups, &gamma, &beta, 1e-5, &mut a2, &mut s2, &mut st2,
        );
        assert_eq!(
            (&a, &s, &st.mean, &st.rstd),
            (&a2, &s2, &st2.mean, &st2.rstd)
        );
        let mut da = ds.clone();
        crate::elementwise::silu_backward(&a, &mut da);
        let (mut dx, mut dg, mut db) = (vec![0.0; x.len()], vec![0.0; c], vec![0.0; c]);
        group_norm_backward(
            &x, hw, c, groups, &gamma, &st, &da, &mut dx, &mut dg, &mut db,
        );
        let (mut ds2, mut dx2) = (ds.clone(), vec![0.0; x.len()]);
        let (mut dg2, mut db2) = (vec![0.0; c], vec![0.0; c]);
        group_norm_silu_backward(
            &x, &a, hw, c, groups, &gamma, &st, &mut ds2, &mut dx2, &mut dg2, &mut db2,
        );
        assert_eq!((&da, &dx, &dg, &db), (&ds2, &dx2, &dg2, &db2));
    }

    #[test]
    fn upsample_backward_is_the_adjoint() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (n, h, w, c) = (2, 3, 4, 5);
        let x = rand_vec(n * h * w * c, &mut rng);
        let g = rand_vec(4 * x.len(), &mut rng);
        let mut y = vec![0.0; 4 * x.len()];
        upsample2_forward(&x, h, w, c, &mut y);
        let mut dx = vec![0.0; x.len()];
        upsample2_backward(&g, h, w, c, &mut dx);
        // ⟨up(x), g⟩ = ⟨x, up*(g)⟩
        let lhs: f64 = y.iter().zip(&g).map(|(a, b)| *a as f64 * *b as f64).sum();
        let rhs: f64 = x.iter().zip(&dx).map(|(a, b)| *a as f64 * *b as f64).sum();
        assert!((lhs - rhs).abs() < 1e-4, "{lhs} vs {rhs}");
        assert_eq!(y[(2 * 2 * w + 3) * c + 1], x[(w + 1) * c + 1]);
    }
}
