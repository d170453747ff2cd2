//! Register-blocked f32 matrix-product kernels for the fused MLP passes ([`crate::mlp_loss_and_grad`]).
//!
//! `C (m × n) ← epilogue(A (m × k) · B (k × n))` with `A` strided (any row and column stride,
//! so `Aᵀ` costs nothing), `B` and `C` row-major with unit column stride. On x86_64 with
//! AVX2 + FMA (detected at run time) the product runs on microkernels holding an
//! `MR × 16` (or `MR × 8`) tile of `C` in registers (`MR ≤ 6`: 12 accumulators), with no
//! packing (the 64-wide operands fit in L1/L2) and the epilogue (bias, ReLU, ReLU mask)
//! applied to the tile in registers; everything else (and every shape whose `n` is not a
//! multiple of 8) goes through the portable path on `gemm` plus a scalar epilogue.
//!
//! Each entry of `C` is summed over `k` in order `0, 1, …, k − 1` with one FMA per term, so the
//! result depends only on the inputs (not on threads or on tile order).

/// What happens to the product `P = A·B` on its way into `C` (`bias` per column, length ≥ n).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Epilogue<'a> {
    /// `C = P`.
    Store,
    /// `C = C + P`.
    Accumulate,
    /// `C = P + bias`.
    Bias(&'a [f32]),
    /// `C = max(P + bias, 0)` (ReLU layer).
    BiasRelu(&'a [f32]),
    /// `C = P ⊙ [mask > 0]` with `mask` (`m × n`, row stride `rs`): the ReLU derivative read
    /// off the layer's activation.
    ReluMask { mask: &'a [f32], rs: usize },
}

/// A strided read-only matrix: element `(i, j)` is `data[i·rs + j·cs]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Strided<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

/// The kernel set in use: AVX2 + FMA microkernels or the portable path.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Kernels {
    simd: bool,
}

impl Kernels {
    /// The fastest kernels this CPU supports.
    pub fn detect() -> Self {
        Kernels {
            simd: simd_available(),
        }
    }

    /// The portable kernels (`gemm` + scalar epilogues), whatever the CPU.
    pub fn portable() -> Self {
        Kernels { simd: false }
    }

    /// Whether the SIMD kernels serve a product with `n` columns.
    #[inline]
    pub fn simd_for(&self, n: usize) -> bool {
        self.simd && n.is_multiple_of(8)
    }

    /// `C ← epilogue(A·B)`: `A` is `m × k` (strided), `B` is `k × n` with row stride `b_rs`,
    /// `C` is `m × n` with row stride `c_rs`. `C_ij = epi(Σ_{p<k} A_ip B_pj)`.
    #[allow(clippy::too_many_arguments)]
    pub fn matmul(
        &self,
        m: usize,
        n: usize,
        k: usize,
        a: Strided<'_>,
        b: &[f32],
        b_rs: usize,
        c: &mut [f32],
        c_rs: usize,
        epi: Epilogue<'_>,
    ) {
        if m == 0 || n == 0 {
            return;
        }
        // Bounds of every access (the kernels below index raw pointers).
        if k > 0 {
            assert!((m - 1) * a.rs + (k - 1) * a.cs < a.data.len(), "A bounds");
            assert!((k - 1) * b_rs + n - 1 < b.len(), "B bounds");
        }
        assert!((m - 1) * c_rs + n - 1 < c.len(), "C bounds");
        match epi {
            Epilogue::Bias(bias) | Epilogue::BiasRelu(bias) => assert!(bias.len() >= n, "bias"),
            Epilogue::ReluMask { mask, rs } => {
                assert!((m - 1) * rs + n - 1 < mask.len(), "mask bounds")
            }
            Epilogue::Store | Epilogue::Accumulate => {}
        }
        #[cfg(target_arch = "x86_64")]
        if self.simd_for(n) && k > 0 {
            // SAFETY: AVX2 + FMA were detected (`simd`), and every index the kernel forms is
            // within the bounds asserted above.
            unsafe { x86::matmul(m, n, k, a, b, b_rs, c, c_rs, epi) };
            return;
        }
        portable_matmul(m, n, k, a, b, b_rs, c, c_rs, epi);
    }

    /// Column sums `out_j = Σ_r g_rj` of the row-major `g` (`rows × out.len()`), each summed
    /// over rows in order (the same numbers on every path).
    pub fn col_sums(&self, g: &[f32], out: &mut [f32]) {
        let n = out.len();
        assert!(n > 0 && g.len().is_multiple_of(n), "g length");
        #[cfg(target_arch = "x86_64")]
        if self.simd_for(n) {
            // SAFETY: AVX2 detected; lengths checked above.
            unsafe { x86::col_sums(g, out) };
            return;
        }
        out.fill(0.0);
        for row in g.chunks_exact(n) {
            for (s, &v) in out.iter_mut().zip(row) {
                *s += v;
            }
        }
    }

    /// `out_rj = bias_j + Σ_p h_rp W_pj` for the `rows × k` row-major `h` and a narrow
    /// output (`n = out.len() / rows` columns), given `wt = Wᵀ` (`n × k`, row-major): one dot
    /// product per output, in 8-lane partial sums (used for the last layer, `n` = data dim).
    pub fn narrow_output(&self, h: &[f32], k: usize, wt: &[f32], bias: &[f32], out: &mut [f32]) {
        let n = bias.len();
        let rows = out.len() / n;
        assert_eq!(out.len(), rows * n, "out length");
        assert_eq!(h.len(), rows * k, "h length");
        assert_eq!(wt.len(), n * k, "wt length");
        #[cfg(target_arch = "x86_64")]
        if self.simd && k.is_multiple_of(16) {
            // SAFETY: AVX2 + FMA detected; lengths checked above.
            unsafe { x86::narrow_output(h, k, wt, bias, out) };
            return;
        }
        for (hr, or) in h.chunks_exact(k).zip(out.chunks_exact_mut(n)) {
            for ((o, wr), &bj) in or.iter_mut().zip(wt.chunks_exact(k)).zip(bias) {
                let mut s = [0.0f32; 8];
                let mut hc = hr.chunks_exact(8);
                let mut wc = wr.chunks_exact(8);
                for (hh, ww) in (&mut hc).zip(&mut wc) {
                    for l in 0..8 {
                        s[l] += hh[l] * ww[l];
                    }
                }
                let mut t = (s[0] + s[4]) + (s[1] + s[5]) + ((s[2] + s[6]) + (s[3] + s[7]));
                for (&hh, &ww) in hc.remainder().iter().zip(wc.remainder()) {
                    t += hh * ww;
                }
                *o = t + bj;
            }
        }
    }
}

/// Whether this CPU runs the AVX2 + FMA kernels.
pub(crate) fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The portable path: `gemm` (single-threaded) then the epilogue as a scalar pass.
#[allow(clippy::too_many_arguments)]
fn portable_matmul(
    m: usize,
    n: usize,
    k: usize,
    a: Strided<'_>,
    b: &[f32],
    b_rs: usize,
    c: &mut [f32],
    c_rs: usize,
    epi: Epilogue<'_>,
) {
    let accumulate = matches!(epi, Epilogue::Accumulate);
    // SAFETY: bounds asserted by the caller (`Kernels::matmul`).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            c_rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.as_ptr(),
            1,
            b_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    let rows = c.chunks_mut(c_rs).take(m);
    match epi {
        Epilogue::Store | Epilogue::Accumulate => {}
        Epilogue::Bias(bias) => {
            for row in rows {
                for (v, &bb) in row[..n].iter_mut().zip(bias) {
                    *v += bb;
                }
            }
        }
        Epilogue::BiasRelu(bias) => {
            for row in rows {
                for (v, &bb) in row[..n].iter_mut().zip(bias) {
                    *v = (*v + bb).max(0.0);
                }
            }
        }
        Epilogue::ReluMask { mask, rs } => {
            for (row, mr) in rows.zip(mask.chunks(rs)) {
                for (v, &mv) in row[..n].iter_mut().zip(mr) {
                    if mv <= 0.0 || mv.is_nan() {
                        *v = 0.0;
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Epilogue, Strided};
    use std::arch::x86_64::*;

    /// Largest row block of a tile (`MR × 16` tile: 12 accumulators, 2 `B` vectors, 1 broadcast).
    const MR: usize = 6;

    /// The epilogue with raw pointers (offsets added per tile).
    #[derive(Clone, Copy)]
    enum Epi {
        Store,
        Accumulate,
        Bias(*const f32),
        BiasRelu(*const f32),
        ReluMask(*const f32, usize),
    }

    /// Rows of `B` per packed panel (a `PACK_K × 16` panel is 16 KiB).
    const PACK_K: usize = 256;

    /// A 32-byte aligned `PACK_K × 16` buffer for one packed panel of `B`.
    #[repr(align(32))]
    struct Panel([f32; PACK_K * 16]);

    /// See [`super::Kernels::matmul`]; `n` is a multiple of 8, `k ≥ 1`.
    ///
    /// Loop order: when `B` is small (≤ 16 KiB, e.g. a 64 × 64 weight) the row blocks are
    /// outer (each `A` block is read once, `B` stays in L1). Otherwise (the weight gradient
    /// `Hᵀ G`, `k` = rows) the column panels are outer and each `k × 16` panel of `B` is first
    /// copied into a contiguous buffer: read in place, its rows (one cache line each, 256 bytes
    /// apart for a 64-wide `B`) would fall into a quarter of the L1 sets and be evicted before
    /// the next row block reuses them.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn matmul(
        m: usize,
        n: usize,
        k: usize,
        a: Strided<'_>,
        b: &[f32],
        b_rs: usize,
        c: &mut [f32],
        c_rs: usize,
        epi: Epilogue<'_>,
    ) {
        let epi = match epi {
            Epilogue::Store => Epi::Store,
            Epilogue::Accumulate => Epi::Accumulate,
            Epilogue::Bias(b) => Epi::Bias(b.as_ptr()),
            Epilogue::BiasRelu(b) => Epi::BiasRelu(b.as_ptr()),
            Epilogue::ReluMask { mask, rs } => Epi::ReluMask(mask.as_ptr(), rs),
        };
        let args = Args {
            k,
            a: a.data.as_ptr(),
            a_rs: a.rs,
            a_cs: a.cs,
            c: c.as_mut_ptr(),
            c_rs,
            epi,
        };
        let bp = b.as_ptr();
        // Packing splits k into blocks, so only epilogues that can be applied per block.
        let pack =
            k * n * 4 > 16 * 1024 && (k <= PACK_K || matches!(epi, Epi::Store | Epi::Accumulate));
        if !pack {
            let mut i0 = 0;
            while i0 < m {
                let mr = (m - i0).min(MR);
                let mut j0 = 0;
                while j0 < n {
                    let nv = if n - j0 >= 16 { 2 } else { 1 };
                    tile_dispatch(&args, mr, nv, i0, j0, bp.add(j0), b_rs);
                    j0 += 8 * nv;
                }
                i0 += mr;
            }
            return;
        }
        let mut panel = Panel([0.0; PACK_K * 16]);
        let pp = panel.0.as_mut_ptr();
        let mut j0 = 0;
        while j0 < n {
            let nv = if n - j0 >= 16 { 2 } else { 1 };
            let w = 8 * nv;
            let mut k0 = 0;
            while k0 < k {
                let kl = (k - k0).min(PACK_K);
                for p in 0..kl {
                    let src = bp.add((k0 + p) * b_rs + j0);
                    for v in 0..nv {
                        _mm256_store_ps(pp.add(p * w + 8 * v), _mm256_loadu_ps(src.add(8 * v)));
                    }
                }
                let blk = Args {
                    k: kl,
                    a: args.a.add(k0 * args.a_cs),
                    epi: if k0 == 0 { epi } else { Epi::Accumulate },
                    ..args
                };
                let mut i0 = 0;
                while i0 < m {
                    let mr = (m - i0).min(MR);
                    tile_dispatch(&blk, mr, nv, i0, j0, pp, w);
                    i0 += mr;
                }
                k0 += kl;
            }
            j0 += w;
        }
    }

    #[derive(Clone, Copy)]
    struct Args {
        k: usize,
        a: *const f32,
        a_rs: usize,
        a_cs: usize,
        c: *mut f32,
        c_rs: usize,
        epi: Epi,
    }

    /// Runs the `mr × 8nv` tile at `(i0, j0)`; `b` points at `B[0, j0]`, rows `b_rs` apart.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile_dispatch(
        args: &Args,
        mr: usize,
        nv: usize,
        i0: usize,
        j0: usize,
        b: *const f32,
        b_rs: usize,
    ) {
        let t = (args, i0, j0, b, b_rs);
        match (mr, nv) {
            (6, 2) => tile::<6, 2>(t),
            (5, 2) => tile::<5, 2>(t),
            (4, 2) => tile::<4, 2>(t),
            (3, 2) => tile::<3, 2>(t),
            (2, 2) => tile::<2, 2>(t),
            (1, 2) => tile::<1, 2>(t),
            (6, 1) => tile::<6, 1>(t),
            (5, 1) => tile::<5, 1>(t),
            (4, 1) => tile::<4, 1>(t),
            (3, 1) => tile::<3, 1>(t),
            (2, 1) => tile::<2, 1>(t),
            (1, 1) => tile::<1, 1>(t),
            _ => unreachable!("tile {mr} x {nv}"),
        }
    }

    /// One `R × 8V` tile of `C` at `(i0, j0)`: `R·V` accumulators over the whole `k` loop
    /// (per step: `V` loads of `B`, `R` broadcasts of `A`, `R·V` FMAs), then the epilogue.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile<const R: usize, const V: usize>(
        (args, i0, j0, b, b_rs): (&Args, usize, usize, *const f32, usize),
    ) {
        let a_rs = args.a_rs;
        let mut acc = [[_mm256_setzero_ps(); V]; R];
        let mut ap = args.a.add(i0 * a_rs);
        let mut bp = b;
        for _ in 0..args.k {
            let mut bv = [_mm256_setzero_ps(); V];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = _mm256_loadu_ps(bp.add(8 * v));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*ap.add(i * a_rs));
                for (x, &y) in row.iter_mut().zip(&bv) {
                    *x = _mm256_fmadd_ps(av, y, *x);
                }
            }
            ap = ap.add(args.a_cs);
            bp = bp.add(b_rs);
        }
        let zero = _mm256_setzero_ps();
        for (i, row) in acc.iter().enumerate() {
            let cr = args.c.add((i0 + i) * args.c_rs + j0);
            for (v, &p) in row.iter().enumerate() {
                let cp = cr.add(8 * v);
                let r = match args.epi {
                    Epi::Store => p,
                    Epi::Accumulate => _mm256_add_ps(_mm256_loadu_ps(cp), p),
                    Epi::Bias(b) => _mm256_add_ps(p, _mm256_loadu_ps(b.add(j0 + 8 * v))),
                    Epi::BiasRelu(b) => {
                        _mm256_max_ps(_mm256_add_ps(p, _mm256_loadu_ps(b.add(j0 + 8 * v))), zero)
                    }
                    Epi::ReluMask(mask, rs) => {
                        let mv = _mm256_loadu_ps(mask.add((i0 + i) * rs + j0 + 8 * v));
                        _mm256_and_ps(p, _mm256_cmp_ps::<_CMP_GT_OQ>(mv, zero))
                    }
                };
                _mm256_storeu_ps(cp, r);
            }
        }
    }

    /// See [`super::Kernels::col_sums`]; `out.len()` is a multiple of 8. Blocks of 64 columns
    /// in 8 register accumulators.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn col_sums(g: &[f32], out: &mut [f32]) {
        let n = out.len();
        let rows = g.len() / n;
        let gp = g.as_ptr();
        let mut j0 = 0;
        while j0 < n {
            let nv = ((n - j0) / 8).min(8);
            let mut acc = [_mm256_setzero_ps(); 8];
            for r in 0..rows {
                let row = gp.add(r * n + j0);
                for (v, a) in acc.iter_mut().enumerate().take(nv) {
                    *a = _mm256_add_ps(*a, _mm256_loadu_ps(row.add(8 * v)));
                }
            }
            for (v, a) in acc.iter().enumerate().take(nv) {
                _mm256_storeu_ps(out.as_mut_ptr().add(j0 + 8 * v), *a);
            }
            j0 += 8 * nv;
        }
    }

    /// See [`super::Kernels::narrow_output`]; `k` is a multiple of 16. Per output: two 8-lane
    /// accumulators (even and odd 8-blocks of `k`), added, then reduced as
    /// `((s0+s4)+(s1+s5)) + ((s2+s6)+(s3+s7))`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn narrow_output(
        h: &[f32],
        k: usize,
        wt: &[f32],
        bias: &[f32],
        out: &mut [f32],
    ) {
        let n = bias.len();
        for (hr, or) in h.chunks_exact(k).zip(out.chunks_exact_mut(n)) {
            for ((o, wr), &bj) in or.iter_mut().zip(wt.chunks_exact(k)).zip(bias) {
                let (hp, wp) = (hr.as_ptr(), wr.as_ptr());
                let mut s0 = _mm256_setzero_ps();
                let mut s1 = _mm256_setzero_ps();
                let mut p = 0;
                while p < k {
                    s0 =
                        _mm256_fmadd_ps(_mm256_loadu_ps(hp.add(p)), _mm256_loadu_ps(wp.add(p)), s0);
                    s1 = _mm256_fmadd_ps(
                        _mm256_loadu_ps(hp.add(p + 8)),
                        _mm256_loadu_ps(wp.add(p + 8)),
                        s1,
                    );
                    p += 16;
                }
                let s = _mm256_add_ps(s0, s1);
                // (s0+s4, s1+s5, s2+s6, s3+s7)
                let q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
                // (q0+q1, q2+q3) via a horizontal add of pairs, then their sum.
                let pairs = _mm_hadd_ps(q, q);
                let t = _mm_cvtss_f32(pairs) + _mm_cvtss_f32(_mm_shuffle_ps::<1>(pairs, pairs));
                *o = t + bj;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn rand_vec(n: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
        (0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
    }

    /// Naive f64 reference of `epi(A·B)`.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        m: usize,
        n: usize,
        k: usize,
        a: Strided<'_>,
        b: &[f32],
        b_rs: usize,
        c0: &[f32],
        c_rs: usize,
        epi: Epilogue<'_>,
    ) -> Vec<f64> {
        let mut out = vec![0.0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for p in 0..k {
                    s += a.data[i * a.rs + p * a.cs] as f64 * b[p * b_rs + j] as f64;
                }
                out[i * n + j] = match epi {
                    Epilogue::Store => s,
                    Epilogue::Accumulate => s + c0[i * c_rs + j] as f64,
                    Epilogue::Bias(bb) => s + bb[j] as f64,
                    Epilogue::BiasRelu(bb) => (s + bb[j] as f64).max(0.0),
                    Epilogue::ReluMask { mask, rs } => {
                        if mask[i * rs + j] > 0.0 {
                            s
                        } else {
                            0.0
                        }
                    }
                };
            }
        }
        out
    }

    /// Every epilogue, transposed and plain `A`, tile edges (`m` not a multiple of 6, `n` =
    /// 16q + 8), both loop orders (small and large `k`): SIMD and portable kernels match an
    /// f64 reference to 1e-5 · (1 + Σ|terms|), and untouched entries of `C` (row padding)
    /// stay untouched.
    #[test]
    fn matmul_matches_f64_reference_for_every_epilogue_and_shape() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for &(m, n, k) in &[
            (1, 8, 1),
            (7, 16, 3),
            (13, 24, 64),
            (64, 64, 64),
            (64, 64, 300),
            (5, 40, 2),
            (257, 64, 64),
        ] {
            let (a_t, a_n) = (rand_vec(m * k, &mut rng), rand_vec(m * k, &mut rng));
            let b_rs = n + 3;
            let b = rand_vec(k * b_rs, &mut rng);
            let c_rs = n + 5;
            let c0 = rand_vec(m * c_rs, &mut rng);
            let bias = rand_vec(n, &mut rng);
            let mask = rand_vec(m * c_rs, &mut rng);
            let a_views = [
                Strided {
                    data: &a_n,
                    rs: k,
                    cs: 1,
                },
                Strided {
                    data: &a_t,
                    rs: 1,
                    cs: m,
                },
            ];
            let epis = [
                Epilogue::Store,
                Epilogue::Accumulate,
                Epilogue::Bias(&bias),
                Epilogue::BiasRelu(&bias),
                Epilogue::ReluMask {
                    mask: &mask,
                    rs: c_rs,
                },
            ];
            for a in a_views {
                for epi in epis {
                    let want = reference(m, n, k, a, &b, b_rs, &c0, c_rs, epi);
                    for kern in [Kernels::detect(), Kernels::portable()] {
                        let mut c = c0.clone();
                        kern.matmul(m, n, k, a, &b, b_rs, &mut c, c_rs, epi);
                        for i in 0..m {
                            for j in 0..c_rs {
                                let got = c[i * c_rs + j] as f64;
                                if j >= n {
                                    assert_eq!(c[i * c_rs + j], c0[i * c_rs + j], "padding");
                                    continue;
                                }
                                let w = want[i * n + j];
                                let tol = 1e-5 * (2.0 + k as f64);
                                assert!(
                                    (got - w).abs() <= tol,
                                    "{kern:?} {m}x{n}x{k} {epi:?} ({i},{j}): {got} vs {w}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// Column sums: SIMD and portable paths give the same bits (same order of additions).
    #[test]
    fn col_sums_simd_and_portable_agree_bitwise() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for n in [8, 24, 64, 72, 3] {
            let g = rand_vec(37 * n, &mut rng);
            let mut x = vec![1.0f32; n];
            let mut y = vec![2.0f32; n];
            Kernels::detect().col_sums(&g, &mut x);
            Kernels::portable().col_sums(&g, &mut y);
            assert_eq!(x, y);
            let want: f64 = (0..37).map(|r| g[r * n] as f64).sum();
            assert!((x[0] as f64 - want).abs() < 1e-5);
        }
    }

    /// The narrow last-layer product matches an f64 reference (SIMD and portable).
    #[test]
    fn narrow_output_matches_f64_reference() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        for &(rows, k, n) in &[(37, 64, 2), (5, 32, 3), (9, 24, 2), (3, 7, 1)] {
            let h = rand_vec(rows * k, &mut rng);
            let wt = rand_vec(n * k, &mut rng);
            let bias = rand_vec(n, &mut rng);
            for kern in [Kernels::detect(), Kernels::portable()] {
                let mut out = vec![0.0f32; rows * n];
                kern.narrow_output(&h, k, &wt, &bias, &mut out);
                for r in 0..rows {
                    for j in 0..n {
                        let want: f64 = bias[j] as f64
                            + (0..k)
                                .map(|p| h[r * k + p] as f64 * wt[j * k + p] as f64)
                                .sum::<f64>();
                        let got = out[r * n + j] as f64;
                        assert!((got - want).abs() <= 1e-5 * k as f64, "{got} vs {want}");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// CPU time of this thread (s), from `/proc/thread-self/schedstat`.
    fn thread_cpu() -> f64 {
        let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
        s.split_whitespace().next().unwrap().parse::<f64>().unwrap() * 1e-9
    }

    /// Shape timings of the three products of a 64-wide layer on a 256-row chunk (run with
    /// `cargo test --release -p smoluchowski-nets kernel_timings -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn kernel_timings() {
        let rows = 256;
        let h: Vec<f32> = (0..rows * 64).map(|i| ((i as f32) * 0.37).sin()).collect();
        let g: Vec<f32> = (0..rows * 64).map(|i| ((i as f32) * 0.11).cos()).collect();
        let w: Vec<f32> = (0..64 * 64)
            .map(|i| ((i as f32) * 0.7).sin() * 0.1)
            .collect();
        let bias = vec![0.01f32; 64];
        let mut out = vec![0.0f32; rows * 64];
        let mut dw = vec![0.0f32; 64 * 64];
        let kern = Kernels::detect();
        let reps = 4000;
        let flops = 2.0 * (rows * 64 * 64) as f64;
        let time = |name: &str, f: &mut dyn FnMut()| {
            let mut best = f64::INFINITY;
            for _ in 0..5 {
                let c0 = thread_cpu();
                for _ in 0..reps {
                    f();
                }
                best = best.min((thread_cpu() - c0) / reps as f64);
            }
            println!(
                "{name}: {:.2} us, {:.1} GFLOP/s",
                best * 1e6,
                flops / best / 1e9
            );
        };
        time("forward BiasRelu", &mut || {
            kern.matmul(
                rows,
                64,
                64,
                Strided {
                    data: &h,
                    rs: 64,
                    cs: 1,
                },
                &w,
                64,
                &mut out,
                64,
                Epilogue::BiasRelu(&bias),
            )
        });
        time("dH ReluMask", &mut || {
            kern.matmul(
                rows,
                64,
                64,
                Strided {
                    data: &g,
                    rs: 64,
                    cs: 1,
                },
                &w,
                64,
                &mut out,
                64,
                Epilogue::ReluMask { mask: &h, rs: 64 },
            )
        });
        time("dW = Hᵀ G", &mut || {
            kern.matmul(
                64,
                64,
                rows,
                Strided {
                    data: &h,
                    rs: 1,
                    cs: 64,
                },
                &g,
                64,
                &mut dw,
                64,
                Epilogue::Store,
            )
        });
    }
}
