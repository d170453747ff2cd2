//! Register-blocked f32 matrix-product kernels for the fused MLP passes
//! ([`crate::mlp_loss_and_grad`]) and the image networks' convolutions ([`crate::conv`]).
//!
//! `C (m × n) ← epilogue(A (m × k) · B (k × n))` with `A` strided (any row and column stride,
//! so `Aᵀ` costs nothing), `B` and `C` row-major with unit column stride. The level
//! ([`KernelLevel`], chosen at run time, capped by `SMOLUCHOWSKI_KERNELS`) picks the
//! microkernels:
//!
//! - AVX-512F: `MR × 32` tiles of `C` in `zmm` registers (`MR ≤ 12`: 24 accumulators), masked
//!   vectors for column remainders of 8, 16 or 24;
//! - AVX2 + FMA: `MR × 16` (or `MR × 8`) tiles (`MR ≤ 6`: 12 accumulators);
//!
//! both with the epilogue (bias, ReLU, ReLU mask) applied to the tile in registers, and `B`
//! copied into contiguous `k × 32` (`k × 16`) panels when it is larger than 16 KiB. Everything
//! else (the portable level, and every shape whose `n` is not a multiple of 8) goes through
//! `gemm` plus a scalar epilogue.
//!
//! `Kernels::matmul_packed` (AVX-512) runs one block of `k` of those chains on `B` packed
//! beforehand (`pack_panels`), starting from 0 or continuing from the partial sums stored in
//! `C`: the implicit-GEMM convolutions of [`crate::conv`] split each chain by kernel row.
//!
//! Numerical contract of the SIMD levels: each entry of `C` is summed over `k` in order
//! `0, 1, …, k − 1` with one FMA per term, starting from 0, then the epilogue is applied, so
//! the result depends only on the inputs (not on threads, tile shapes, packing or level):
//! AVX2 and AVX-512 give the same bits.

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

/// A kernel level: which microkernels run the products.
///
/// Chosen once per process ([`kernel_level`]): the fastest level this CPU supports
/// (`is_x86_feature_detected!`), capped by the environment variable
/// [`KERNELS_ENV`] (`SMOLUCHOWSKI_KERNELS=portable|avx2|avx512`) so that a lower path can be
/// forced (tests run every path the CPU has). The two SIMD levels give bit-identical results
/// (every entry is one FMA chain over `k` in order, see the module doc); the portable level
/// runs `gemm`, whose summation order differs (results agree to rounding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KernelLevel {
    /// `gemm` (its own SIMD, its own summation order) plus scalar epilogues.
    Portable,
    /// AVX2 + FMA microkernels (`MR × 16` register tiles of `C`).
    Avx2Fma,
    /// AVX-512F microkernels (`MR × 32` tiles in `zmm` registers); needs AVX2 + FMA too.
    Avx512,
}

impl KernelLevel {
    /// The level's name as [`KERNELS_ENV`] spells it: `portable`, `avx2`, `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            KernelLevel::Portable => "portable",
            KernelLevel::Avx2Fma => "avx2",
            KernelLevel::Avx512 => "avx512",
        }
    }

    /// Parses a [`KernelLevel::name`] (case-insensitive, surrounding blanks ignored).
    pub fn parse(s: &str) -> Result<Self, KernelLevelError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "portable" => Ok(KernelLevel::Portable),
            "avx2" => Ok(KernelLevel::Avx2Fma),
            "avx512" => Ok(KernelLevel::Avx512),
            _ => Err(KernelLevelError {
                value: s.to_string(),
            }),
        }
    }

    /// The fastest level this CPU supports.
    pub fn best_supported() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            if avx2 && is_x86_feature_detected!("avx512f") {
                return KernelLevel::Avx512;
            }
            if avx2 {
                return KernelLevel::Avx2Fma;
            }
        }
        KernelLevel::Portable
    }

    /// Every level this CPU supports, lowest first.
    pub fn supported() -> Vec<Self> {
        let best = Self::best_supported();
        [
            KernelLevel::Portable,
            KernelLevel::Avx2Fma,
            KernelLevel::Avx512,
        ]
        .into_iter()
        .filter(|&l| l <= best)
        .collect()
    }
}

impl std::fmt::Display for KernelLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown value of [`KERNELS_ENV`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelLevelError {
    /// The value given.
    pub value: String,
}

impl std::fmt::Display for KernelLevelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{KERNELS_ENV}={:?}: expected one of portable, avx2, avx512",
            self.value
        )
    }
}

impl std::error::Error for KernelLevelError {}

/// The environment variable that caps the kernel level (`portable`, `avx2` or `avx512`).
pub const KERNELS_ENV: &str = "SMOLUCHOWSKI_KERNELS";

/// The level given by [`KERNELS_ENV`] (read now): `min(requested, best supported)`, or the
/// best supported level if the variable is unset or empty; an unknown value is an error
/// naming the variable and the value.
pub fn kernel_level_from_env() -> Result<KernelLevel, KernelLevelError> {
    let best = KernelLevel::best_supported();
    match std::env::var(KERNELS_ENV) {
        Ok(v) if !v.trim().is_empty() => Ok(KernelLevel::parse(&v)?.min(best)),
        _ => Ok(best),
    }
}

/// The kernel level of this process: [`kernel_level_from_env`] read once (on first use). An
/// unknown value of [`KERNELS_ENV`] is reported once on stderr and the best supported level
/// is used (callers that must fail on it, such as the benchmark, call
/// [`kernel_level_from_env`] themselves).
pub fn kernel_level() -> KernelLevel {
    static LEVEL: std::sync::OnceLock<KernelLevel> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        kernel_level_from_env().unwrap_or_else(|e| {
            eprintln!("warning: {e}; using {}", KernelLevel::best_supported());
            KernelLevel::best_supported()
        })
    })
}

/// `C = A · B` for row-major `A` (`m × k`), `B` (`k × n`), `C` (`m × n`):
/// `C_ij = Σ_{p<k} A_ip B_pj` on this process's kernels ([`kernel_level`]), rows of `C` split
/// over rayon in blocks of 96 (each entry computed by one thread, so the same bits for any
/// thread count). For measuring the machine's GEMM rate (`cargo xtask bench`: `gemm_gflops`).
/// Wrong lengths are an error naming the operand.
pub fn matmul(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
) -> Result<(), String> {
    for (name, len, want) in [
        ("a", a.len(), m * k),
        ("b", b.len(), k * n),
        ("c", c.len(), m * n),
    ] {
        if len != want {
            return Err(format!(
                "matmul: {name} has {len} values, expected {want} ({m}×{n}×{k})"
            ));
        }
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        c.fill(0.0);
        return Ok(());
    }
    use rayon::prelude::*;
    const ROWS: usize = 96;
    let kern = Kernels::detect();
    c.par_chunks_mut(ROWS * n)
        .zip(a.par_chunks(ROWS * k))
        .for_each(|(cb, ab)| {
            let rows = cb.len() / n;
            let a = Strided {
                data: ab,
                rs: k,
                cs: 1,
            };
            kern.matmul(rows, n, k, a, b, n, cb, n, Epilogue::Store);
        });
    Ok(())
}

/// The kernel set in use: a [`KernelLevel`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Kernels {
    level: KernelLevel,
}

impl Kernels {
    /// The process's kernels ([`kernel_level`]).
    pub fn detect() -> Self {
        Kernels {
            level: kernel_level(),
        }
    }

    /// The portable kernels (`gemm` + scalar epilogues), whatever the CPU.
    pub fn portable() -> Self {
        Kernels {
            level: KernelLevel::Portable,
        }
    }

    /// The kernels of `level`, capped at what this CPU supports.
    #[cfg(test)]
    pub fn at(level: KernelLevel) -> Self {
        Kernels {
            level: level.min(KernelLevel::best_supported()),
        }
    }

    /// The level these kernels run at.
    #[allow(dead_code)]
    pub fn level(&self) -> KernelLevel {
        self.level
    }

    /// Whether the SIMD kernels serve a product with `n` columns.
    #[inline]
    pub fn simd_for(&self, n: usize) -> bool {
        self.level != KernelLevel::Portable && n.is_multiple_of(8)
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
            // SAFETY: the level's instruction sets were detected (`KernelLevel` is capped at
            // `best_supported`), and every index the kernels form is within the bounds
            // asserted above.
            unsafe {
                if self.level == KernelLevel::Avx512 {
                    x86::avx512::matmul(m, n, k, a, b, b_rs, c, c_rs, epi)
                } else {
                    x86::matmul(m, n, k, a, b, b_rs, c, c_rs, epi)
                }
            };
            return;
        }
        portable_matmul(m, n, k, a, b, b_rs, c, c_rs, epi);
    }

    /// Whether [`Kernels::matmul_packed`] runs at this level for `n` columns (AVX-512 and `n`
    /// a multiple of 8; other levels use [`Kernels::matmul`], which gives the same bits).
    #[inline]
    pub fn packed_for(&self, n: usize) -> bool {
        self.level == KernelLevel::Avx512 && n.is_multiple_of(8)
    }

    /// One block of `k` terms of the chains of `C ← epilogue(A·B)` (epilogue `Store` or `Bias`,
    /// or `Accumulate` when not `continued`), with `B` already packed
    /// ([`pack_panels`]: panel `q` of `k × 32` at `q·k·32`): `C_ij = epi(c_ij + Σ_{p<k} A_ip B_pj)`
    /// with `c_ij = C_ij` when `continued` (the exact partial sums a previous block stored with
    /// [`Epilogue::Store`]) and 0 otherwise. A chain split into blocks this way is the same FMA
    /// chain as one call over all of `k` (a stored `f32` accumulator reloads exactly), so the
    /// result is the same bits as [`Kernels::matmul`]. Row tiles are balanced (`m = 28` runs as
    /// 10 + 9 + 9 rows), for products with few rows per call. Only where
    /// [`Kernels::packed_for`] holds.
    #[allow(clippy::too_many_arguments)]
    pub fn matmul_packed(
        &self,
        m: usize,
        n: usize,
        k: usize,
        a: Strided<'_>,
        panels: &[f32],
        c: &mut [f32],
        c_rs: usize,
        epi: Epilogue<'_>,
        continued: bool,
    ) {
        assert!(
            self.packed_for(n),
            "matmul_packed at level {:?}",
            self.level
        );
        if m == 0 || k == 0 {
            return;
        }
        assert!((m - 1) * a.rs + (k - 1) * a.cs < a.data.len(), "A bounds");
        assert!(
            panels.len() >= n.div_ceil(PANEL) * k * PANEL,
            "panels length"
        );
        assert!((m - 1) * c_rs + n - 1 < c.len(), "C bounds");
        match epi {
            Epilogue::Bias(bias) => assert!(bias.len() >= n, "bias"),
            Epilogue::Store => {}
            Epilogue::Accumulate if !continued => {}
            _ => panic!("matmul_packed: epilogue {epi:?} (continued: {continued}) not supported"),
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F detected (`packed_for`); every index is within the bounds above.
        unsafe {
            x86::avx512::matmul_packed(m, n, k, a, panels, c, c_rs, epi, continued)
        };
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
        if self.level != KernelLevel::Portable && k.is_multiple_of(16) {
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

/// Columns of a packed panel of `B` ([`pack_panels`]).
pub(crate) const PANEL: usize = 32;

/// `B` (`k × n`, row stride `b_rs`) as `⌈n/32⌉` contiguous `k × 32` panels (panel `q` at
/// `q·k·32`, columns past `n` zero), the layout [`Kernels::matmul_packed`] reads.
pub(crate) fn pack_panels(b: &[f32], k: usize, n: usize, b_rs: usize) -> Vec<f32> {
    let panels = n.div_ceil(PANEL);
    let mut out = vec![0.0f32; panels * k * PANEL];
    for q in 0..panels {
        let (j0, w) = (q * PANEL, (n - q * PANEL).min(PANEL));
        for p in 0..k {
            let dst = (q * k + p) * PANEL;
            out[dst..dst + w].copy_from_slice(&b[p * b_rs + j0..p * b_rs + j0 + w]);
        }
    }
    out
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
    pub(super) enum Epi {
        Store,
        Accumulate,
        Bias(*const f32),
        BiasRelu(*const f32),
        ReluMask(*const f32, usize),
    }

    impl Epi {
        pub(super) fn new(epi: Epilogue<'_>) -> Self {
            match epi {
                Epilogue::Store => Epi::Store,
                Epilogue::Accumulate => Epi::Accumulate,
                Epilogue::Bias(b) => Epi::Bias(b.as_ptr()),
                Epilogue::BiasRelu(b) => Epi::BiasRelu(b.as_ptr()),
                Epilogue::ReluMask { mask, rs } => Epi::ReluMask(mask.as_ptr(), rs),
            }
        }
    }

    thread_local! {
        /// This thread's buffer for packed panels of `B` (reused, so no allocation per call).
        static PACKED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    /// Runs `f` on this thread's packing buffer, grown to at least `len` values.
    pub(super) fn with_pack_buffer<T>(len: usize, f: impl FnOnce(&mut [f32]) -> T) -> T {
        PACKED.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => {
                if buf.len() < len {
                    buf.resize(len, 0.0);
                }
                f(&mut buf[..len])
            }
            // Re-entered on this thread (not done by the kernels): a fresh buffer.
            Err(_) => f(&mut vec![0.0; len]),
        })
    }

    /// See [`super::Kernels::matmul`]; `n` is a multiple of 8, `k ≥ 1`.
    ///
    /// Loop order: when `B` is small (≤ 16 KiB, e.g. a 64 × 64 weight) the row blocks are
    /// outer (each `A` block is read once, `B` stays in L1). Otherwise (the weight gradient
    /// `Hᵀ G`, `k` = rows; the convolutions' long `k`) the column panels are outer and each
    /// `k × 16` panel of `B` is first copied into a contiguous buffer: read in place, its rows
    /// (one cache line each, 256 bytes apart for a 64-wide `B`) would fall into a quarter of the
    /// L1 sets and be evicted before the next row block reuses them. The panel holds all of `k`,
    /// so every entry is still one FMA chain over `k` (as on every SIMD path).
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
        let args = Args {
            k,
            a: a.data.as_ptr(),
            a_rs: a.rs,
            a_cs: a.cs,
            c: c.as_mut_ptr(),
            c_rs,
            epi: Epi::new(epi),
            load_c: false,
        };
        let bp = b.as_ptr();
        if k * n * 4 <= 16 * 1024 {
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
        with_pack_buffer(k * 16, |panel| {
            let pp = panel.as_mut_ptr();
            let mut j0 = 0;
            while j0 < n {
                let nv = if n - j0 >= 16 { 2 } else { 1 };
                let w = 8 * nv;
                for p in 0..k {
                    let src = bp.add(p * b_rs + j0);
                    for v in 0..nv {
                        _mm256_storeu_ps(pp.add(p * w + 8 * v), _mm256_loadu_ps(src.add(8 * v)));
                    }
                }
                let mut i0 = 0;
                while i0 < m {
                    let mr = (m - i0).min(MR);
                    tile_dispatch(&args, mr, nv, i0, j0, pp, w);
                    i0 += mr;
                }
                j0 += w;
            }
        });
    }

    #[derive(Clone, Copy)]
    pub(super) struct Args {
        pub(super) k: usize,
        pub(super) a: *const f32,
        pub(super) a_rs: usize,
        pub(super) a_cs: usize,
        pub(super) c: *mut f32,
        pub(super) c_rs: usize,
        pub(super) epi: Epi,
        /// Start the accumulators from `C` (the chain's partial sums of the previous `k`
        /// block, stored exactly) instead of 0 (AVX-512 `k` blocking only).
        pub(super) load_c: bool,
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

    /// The AVX-512F microkernels: `MR × 32` tiles of `C` in `zmm` registers (24
    /// accumulators), the same FMA chains as the AVX2 kernels (so the same bits).
    pub(super) mod avx512 {
        use super::{with_pack_buffer, Args, Epi};
        use crate::kernels::{Epilogue, Strided};
        use std::arch::x86_64::*;

        /// Largest row block of a tile (`12 × 32`: 24 accumulators, 2 `B` vectors).
        const MR: usize = 12;
        /// Columns of a packed panel of `B` (two `zmm` vectors).
        const NR: usize = 32;

        /// See [`crate::kernels::Kernels::matmul`]; `n` is a multiple of 8, `k ≥ 1`.
        ///
        /// `B` is read in place when small (≤ 16 KiB); otherwise it is first copied into
        /// `⌈n/32⌉` contiguous `k × 32` panels (all of `k`: one FMA chain per entry). Row
        /// blocks are outer (each `12 × k` block of `A` stays in L1 while every panel passes),
        /// panels inner. Column remainders of 8 or 16 (or 24) run on masked vectors.
        #[target_feature(enable = "avx512f,avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        pub(in crate::kernels) unsafe fn matmul(
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
            let args = Args {
                k,
                a: a.data.as_ptr(),
                a_rs: a.rs,
                a_cs: a.cs,
                c: c.as_mut_ptr(),
                c_rs,
                epi: Epi::new(epi),
                load_c: false,
            };
            let bp = b.as_ptr();
            let panels = n.div_ceil(NR);
            let run = |bq: &dyn Fn(usize) -> (*const f32, usize)| {
                let mut i0 = 0;
                while i0 < m {
                    let mr = (m - i0).min(MR);
                    for q in 0..panels {
                        let j0 = q * NR;
                        let w = (n - j0).min(NR);
                        let (pb, rs) = bq(q);
                        tile_dispatch(&args, mr, w, i0, j0, pb, rs);
                    }
                    i0 += mr;
                }
            };
            if k * n * 4 <= 16 * 1024 {
                run(&|q| (bp.add(q * NR), b_rs));
                return;
            }
            with_pack_buffer(panels * k * NR, |buf| {
                let pp = buf.as_mut_ptr();
                for q in 0..panels {
                    let j0 = q * NR;
                    let w = (n - j0).min(NR);
                    let (m0, m1) = masks(w);
                    let dst = pp.add(q * k * NR);
                    for p in 0..k {
                        let src = bp.add(p * b_rs + j0);
                        let d = dst.add(p * NR);
                        _mm512_storeu_ps(d, _mm512_maskz_loadu_ps(m0, src));
                        _mm512_storeu_ps(d.add(16), _mm512_maskz_loadu_ps(m1, src.add(16)));
                    }
                }
                let accumulate = matches!(args.epi, Epi::Accumulate);
                if k <= KC_MAX || accumulate {
                    run(&|q| (pp.add(q * k * NR) as *const f32, NR));
                    return;
                }
                // Long k: blocks of ≤ KC_MAX rows, so a block of a panel (≤ 40 KiB) stays in
                // L1 while every row block passes. Between blocks the accumulators go through
                // C exactly (Store, then loaded back), so each entry is still one FMA chain;
                // the epilogue is applied after the last block.
                let nb = k.div_ceil(KC);
                let kc = k.div_ceil(nb);
                let mut k0 = 0;
                while k0 < k {
                    let kl = kc.min(k - k0);
                    let last = k0 + kl == k;
                    let blk = Args {
                        k: kl,
                        a: args.a.add(k0 * args.a_cs),
                        epi: if last { args.epi } else { Epi::Store },
                        load_c: k0 > 0,
                        ..args
                    };
                    for q in 0..panels {
                        let j0 = q * NR;
                        let w = (n - j0).min(NR);
                        let pb = pp.add(q * k * NR + k0 * NR) as *const f32;
                        let mut i0 = 0;
                        while i0 < m {
                            let mr = (m - i0).min(MR);
                            tile_dispatch(&blk, mr, w, i0, j0, pb, NR);
                            i0 += mr;
                        }
                    }
                    k0 += kl;
                }
            });
        }

        /// See [`crate::kernels::Kernels::matmul_packed`]: panels outer (a `k × 32` block of
        /// a panel stays in L1 while the row tiles pass), `⌈m/12⌉` row tiles of balanced sizes.
        #[target_feature(enable = "avx512f,avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        pub(in crate::kernels) unsafe fn matmul_packed(
            m: usize,
            n: usize,
            k: usize,
            a: Strided<'_>,
            panels: &[f32],
            c: &mut [f32],
            c_rs: usize,
            epi: Epilogue<'_>,
            continued: bool,
        ) {
            let args = Args {
                k,
                a: a.data.as_ptr(),
                a_rs: a.rs,
                a_cs: a.cs,
                c: c.as_mut_ptr(),
                c_rs,
                epi: Epi::new(epi),
                load_c: continued,
            };
            let tiles = m.div_ceil(MR);
            for q in 0..n.div_ceil(NR) {
                let j0 = q * NR;
                let w = (n - j0).min(NR);
                let pb = panels.as_ptr().add(q * k * NR);
                let mut i0 = 0;
                for t in 0..tiles {
                    let mr = (m - i0).div_ceil(tiles - t);
                    tile_dispatch(&args, mr, w, i0, j0, pb, NR);
                    i0 += mr;
                }
            }
        }

        /// Target rows of a `k` block of `B` (a `256 × 32` panel block is 32 KiB).
        const KC: usize = 256;
        /// Longest `k` run without blocking (`320 × 32` floats = 40 KiB).
        const KC_MAX: usize = 320;

        /// Lane masks of the two vectors of a `w`-wide panel (`w ≤ 32`).
        #[inline]
        fn masks(w: usize) -> (__mmask16, __mmask16) {
            let bits = |x: usize| -> __mmask16 {
                if x >= 16 {
                    0xffff
                } else {
                    ((1u32 << x) - 1) as __mmask16
                }
            };
            (bits(w), bits(w.saturating_sub(16)))
        }

        /// Runs the `mr × w` tile at `(i0, j0)`; `b` points at `B[0, j0]`, rows `b_rs` apart.
        #[target_feature(enable = "avx512f,avx2,fma")]
        #[inline]
        unsafe fn tile_dispatch(
            args: &Args,
            mr: usize,
            w: usize,
            i0: usize,
            j0: usize,
            b: *const f32,
            b_rs: usize,
        ) {
            let (m0, m1) = masks(w);
            let t = (args, i0, j0, b, b_rs, m0, m1);
            macro_rules! rows {
                ($v:literal, $l:literal) => {
                    match mr {
                        12 => tile::<12, $v, $l>(t),
                        11 => tile::<11, $v, $l>(t),
                        10 => tile::<10, $v, $l>(t),
                        9 => tile::<9, $v, $l>(t),
                        8 => tile::<8, $v, $l>(t),
                        7 => tile::<7, $v, $l>(t),
                        6 => tile::<6, $v, $l>(t),
                        5 => tile::<5, $v, $l>(t),
                        4 => tile::<4, $v, $l>(t),
                        3 => tile::<3, $v, $l>(t),
                        2 => tile::<2, $v, $l>(t),
                        1 => tile::<1, $v, $l>(t),
                        _ => unreachable!("tile rows {mr}"),
                    }
                };
            }
            match (w > 16, args.load_c) {
                (true, false) => rows!(2, false),
                (false, false) => rows!(1, false),
                (true, true) => rows!(2, true),
                (false, true) => rows!(1, true),
            }
        }

        /// One `R × 16V` tile of `C` at `(i0, j0)` (lanes outside the masks untouched):
        /// `R·V` accumulators (from 0, or from `C` when `L`: a continued chain) over the `k`
        /// loop, then the epilogue.
        #[target_feature(enable = "avx512f,avx2,fma")]
        #[inline]
        #[allow(clippy::type_complexity)]
        unsafe fn tile<const R: usize, const V: usize, const L: bool>(
            (args, i0, j0, b, b_rs, m0, m1): (
                &Args,
                usize,
                usize,
                *const f32,
                usize,
                __mmask16,
                __mmask16,
            ),
        ) {
            let mask = [m0, m1];
            let a_rs = args.a_rs;
            let mut acc = [[_mm512_setzero_ps(); V]; R];
            if L {
                for (i, row) in acc.iter_mut().enumerate() {
                    let cr = args.c.add((i0 + i) * args.c_rs + j0);
                    for (v, x) in row.iter_mut().enumerate() {
                        *x = _mm512_maskz_loadu_ps(mask[v], cr.add(16 * v));
                    }
                }
            }
            let mut ap = args.a.add(i0 * a_rs);
            let mut bp = b;
            for _ in 0..args.k {
                let mut bv = [_mm512_setzero_ps(); V];
                for (v, x) in bv.iter_mut().enumerate() {
                    *x = _mm512_maskz_loadu_ps(mask[v], bp.add(16 * v));
                }
                for (i, row) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*ap.add(i * a_rs));
                    for (x, &y) in row.iter_mut().zip(&bv) {
                        *x = _mm512_fmadd_ps(av, y, *x);
                    }
                }
                ap = ap.add(args.a_cs);
                bp = bp.add(b_rs);
            }
            let zero = _mm512_setzero_ps();
            for (i, row) in acc.iter().enumerate() {
                let cr = args.c.add((i0 + i) * args.c_rs + j0);
                for (v, &p) in row.iter().enumerate() {
                    let (cp, mk) = (cr.add(16 * v), mask[v]);
                    let r = match args.epi {
                        Epi::Store => p,
                        Epi::Accumulate => _mm512_add_ps(_mm512_maskz_loadu_ps(mk, cp), p),
                        Epi::Bias(bb) => {
                            _mm512_add_ps(p, _mm512_maskz_loadu_ps(mk, bb.add(j0 + 16 * v)))
                        }
                        Epi::BiasRelu(bb) => _mm512_max_ps(
                            _mm512_add_ps(p, _mm512_maskz_loadu_ps(mk, bb.add(j0 + 16 * v))),
                            zero,
                        ),
                        Epi::ReluMask(mp, rs) => {
                            let mv = _mm512_maskz_loadu_ps(mk, mp.add((i0 + i) * rs + j0 + 16 * v));
                            let pos = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(mv, zero);
                            _mm512_maskz_mov_ps(pos, p)
                        }
                    };
                    _mm512_mask_storeu_ps(cp, mk, r);
                }
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

    /// Every epilogue, transposed and plain `A`, tile edges (`m` not a multiple of 6 or 12,
    /// `n` = 16q + 8 and 32q + 24), in-place and packed `B` (small and large `k`), on every
    /// level this CPU has: each matches an f64 reference to 1e-5 · (2 + k), untouched entries
    /// of `C` (row padding) stay untouched, and the SIMD levels give identical bits.
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
            (30, 56, 70),
            (25, 88, 300),
            (50, 32, 785),
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
                    let mut simd_bits: Option<Vec<f32>> = None;
                    for level in KernelLevel::supported() {
                        let kern = Kernels::at(level);
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
                        if level != KernelLevel::Portable {
                            match &simd_bits {
                                None => simd_bits = Some(c),
                                Some(first) => assert!(
                                    first
                                        .iter()
                                        .zip(&c)
                                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                                    "{level:?} differs from AVX2 bits, {m}x{n}x{k} {epi:?}"
                                ),
                            }
                        }
                    }
                }
            }
        }
    }

    /// The environment's level names parse (any case), unknown ones are errors naming the
    /// variable and the value, and `supported` is ordered with the best level last.
    #[test]
    fn kernel_levels_parse_and_order() {
        assert_eq!(KernelLevel::parse(" AVX512 "), Ok(KernelLevel::Avx512));
        assert_eq!(KernelLevel::parse("avx2"), Ok(KernelLevel::Avx2Fma));
        assert_eq!(KernelLevel::parse("portable"), Ok(KernelLevel::Portable));
        let e = KernelLevel::parse("sse9").unwrap_err().to_string();
        assert!(e.contains(KERNELS_ENV) && e.contains("sse9"), "{e}");
        let s = KernelLevel::supported();
        assert_eq!(s[0], KernelLevel::Portable);
        assert_eq!(*s.last().unwrap(), KernelLevel::best_supported());
        assert!(kernel_level() <= KernelLevel::best_supported());
    }

    /// `matmul_packed` over packed panels, its chains split into blocks of `k` (the first
    /// block from zero, the rest continued from `C`, the epilogue on the last) or in one call
    /// with `Accumulate`, gives the bits of one `matmul` call; shapes with `n` across the
    /// 32-column panels and `m` not a multiple of the tile rows. Only where AVX-512 runs.
    #[test]
    fn packed_blocks_give_the_bits_of_one_product() {
        let kern = Kernels::at(KernelLevel::Avx512);
        if !kern.packed_for(8) {
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for &(m, n, k, blocks) in &[
            (1, 8, 5, 1),
            (28, 32, 96, 3),
            (13, 40, 37, 2),
            (49, 64, 600, 3),
            (100, 72, 50, 4),
        ] {
            let a = rand_vec(m * k, &mut rng);
            let b = rand_vec(k * n, &mut rng);
            let bias = rand_vec(n, &mut rng);
            let c0 = rand_vec(m * n, &mut rng);
            let at = |p0: usize| Strided {
                data: &a[p0..],
                rs: k,
                cs: 1,
            };
            for last in [Epilogue::Bias(&bias), Epilogue::Store] {
                let mut want = vec![0.0f32; m * n];
                kern.matmul(m, n, k, at(0), &b, n, &mut want, n, last);
                let mut got = vec![0.0f32; m * n];
                let len = k.div_ceil(blocks);
                let mut p0 = 0;
                while p0 < k {
                    let kl = len.min(k - p0);
                    let panels = pack_panels(&b[p0 * n..], kl, n, n);
                    let epi = if p0 + kl == k { last } else { Epilogue::Store };
                    kern.matmul_packed(m, n, kl, at(p0), &panels, &mut got, n, epi, p0 > 0);
                    p0 += kl;
                }
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{m}x{n}x{k} in {blocks} blocks, {last:?}"
                );
            }
            let mut want = c0.clone();
            kern.matmul(m, n, k, at(0), &b, n, &mut want, n, Epilogue::Accumulate);
            let mut got = c0.clone();
            let panels = pack_panels(&b, k, n, n);
            kern.matmul_packed(
                m,
                n,
                k,
                at(0),
                &panels,
                &mut got,
                n,
                Epilogue::Accumulate,
                false,
            );
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{m}x{n}x{k} accumulated"
            );
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

    /// Single-thread GFLOP/s (thread CPU time) of the UNet's convolution products on every
    /// level: forward `im2col · W`, weight gradient `colᵀ · dY`, input gradient `dY · Wᵀ` at
    /// 28×28 / 32 channels and 14×14 / 64 channels, plus a 512³ square product (`cargo test
    /// --release -p smoluchowski-nets conv_kernel_timings -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn conv_kernel_timings() {
        let shapes = [
            ("fwd 28x28x32", 784, 32, 288, 288, 1, Epilogue::Store),
            ("wgrad 28x28x32", 288, 32, 784, 1, 288, Epilogue::Store),
            ("dgrad 28x28x32", 784, 288, 32, 32, 1, Epilogue::Store),
            ("fwd 14x14x64", 196, 64, 576, 576, 1, Epilogue::Store),
            ("wgrad 14x14x64", 576, 64, 196, 1, 576, Epilogue::Store),
            ("dgrad 14x14x64", 196, 576, 64, 64, 1, Epilogue::Store),
            ("square 512", 512, 512, 512, 512, 1, Epilogue::Store),
        ];
        for (name, m, n, k, rs, cs, epi) in shapes {
            let a: Vec<f32> = (0..m * k).map(|i| ((i as f32) * 0.37).sin()).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i as f32) * 0.11).cos()).collect();
            let mut c = vec![0.0f32; m * n];
            let flops = 2.0 * (m * n * k) as f64;
            let reps = (2e9 / flops).ceil() as usize;
            let mut line = format!("{name:>16}:");
            for level in KernelLevel::supported() {
                let kern = Kernels::at(level);
                let mut best = f64::INFINITY;
                for _ in 0..3 {
                    let c0 = thread_cpu();
                    for _ in 0..reps {
                        let a = Strided { data: &a, rs, cs };
                        kern.matmul(m, n, k, a, &b, n, &mut c, n, epi);
                    }
                    best = best.min((thread_cpu() - c0) / reps as f64);
                }
                line += &format!("  {level} {:.1}", flops / best / 1e9);
            }
            println!("{line} GFLOP/s");
        }
    }
}
