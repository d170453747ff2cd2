//! Element-wise and per-channel operations of the image networks, compiled once per kernel
//! level ([`multiversion!`]: the same Rust body built for AVX-512, AVX2 + FMA and the baseline,
//! picked by [`crate::kernel_level`]), so the compiler vectorises them at the machine's width.
//! The bodies use only IEEE `+ − × ÷ √` and conversions (no fused multiply–add contraction, no
//! reassociation), so every level gives the same bits; parallel loops split the data into
//! fixed blocks, so any thread count gives the same bits too.
//!
//! - [`exp_f32`]: `eˣ` by `x = n ln 2 + r`, `|r| ≤ ln 2 / 2`, `eʳ` from its degree-7 Taylor
//!   polynomial (relative error ≤ 5·10⁻⁹ before rounding, so within 2 ulp of `eˣ`),
//!   `2ⁿ` from the exponent bits; inputs clamped to `[−87, 88]`.
//! - [`silu`]: `SiLU(x) = x σ(x)`, `σ(x) = 1/(1 + e^{−x})`.
//! - [`silu_backward`]: `dx = dy · σ(x)(1 + x(1 − σ(x)))`.

use rayon::prelude::*;

/// Defines `fn name(args) -> ret { body }` built three times (AVX-512F, AVX2 + FMA, baseline)
/// and dispatched on [`crate::kernel_level`] at run time. The body must not take generic
/// parameters.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])* $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn inner($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v512($($arg: $ty),*) $(-> $ret)? { inner($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v256($($arg: $ty),*) $(-> $ret)? { inner($($arg),*) }
                match $crate::kernels::kernel_level() {
                    // SAFETY: the level is capped at what this CPU supports.
                    $crate::kernels::KernelLevel::Avx512 => return unsafe { v512($($arg),*) },
                    // SAFETY: as above.
                    $crate::kernels::KernelLevel::Avx2Fma => return unsafe { v256($($arg),*) },
                    $crate::kernels::KernelLevel::Portable => {}
                }
            }
            inner($($arg),*)
        }
    };
}
pub(crate) use multiversion;

/// Values per parallel block of the element-wise maps (fixed: results do not depend on it).
const BLOCK: usize = 1 << 14;

/// `eˣ` (see the module doc): `n = round(x / ln 2)` (by the `1.5·2²³` shift), `r = x − n ln 2`
/// (`ln 2` split in two parts), `eʳ ≈ Σ_{j ≤ 7} rʲ/j!` (Horner), times `2ⁿ`.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const SHIFT: f32 = 12_582_912.0; // 1.5 · 2²³
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + SHIFT;
    let n = t - SHIFT;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let ni = t.to_bits() as i32 - SHIFT.to_bits() as i32;
    p * f32::from_bits(((ni + 127) as u32) << 23)
}

/// `σ(x) = 1/(1 + e^{−x})`.
#[inline(always)]
pub(crate) fn sigmoid_f32(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-x))
}

multiversion! {
    /// `y_i = x_i σ(x_i)` on one block.
    fn silu_block(x: &[f32], y: &mut [f32]) {
        for (o, &v) in y.iter_mut().zip(x) {
            *o = v * sigmoid_f32(v);
        }
    }
}

multiversion! {
    /// `dy_i ← dy_i σ(x_i)(1 + x_i(1 − σ(x_i)))` on one block.
    pub(crate) fn silu_backward_block(x: &[f32], dy: &mut [f32]) {
        for (g, &v) in dy.iter_mut().zip(x) {
            let s = sigmoid_f32(v);
            *g *= s * (1.0 + v * (1.0 - s));
        }
    }
}

multiversion! {
    /// `a_i ← a_i + b_i` on one block.
    fn add_block(a: &mut [f32], b: &[f32]) {
        for (x, &y) in a.iter_mut().zip(b) {
            *x += y;
        }
    }
}

/// `a ← a + b` element-wise (in parallel over fixed blocks).
pub(crate) fn add_assign(a: &mut [f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "add_assign: lengths");
    let len = a.len();
    crate::profile::timed(
        || format!("add {len}"),
        0.0,
        || {
            a.par_chunks_mut(BLOCK)
                .zip(b.par_chunks(BLOCK))
                .for_each(|(x, y)| add_block(x, y))
        },
    );
}

multiversion! {
    /// `img[px, c] += v[c]` for every pixel of one image.
    fn add_per_channel_block(img: &mut [f32], v: &[f32]) {
        for px in img.chunks_exact_mut(v.len()) {
            for (x, &y) in px.iter_mut().zip(v) {
                *x += y;
            }
        }
    }
}

/// `x[b, px, c] += v[b, c]`: a per-image, per-channel vector added to every pixel of NHWC
/// images (`v`: `n × C`; images in parallel).
pub(crate) fn add_per_channel(x: &mut [f32], v: &[f32], c: usize) {
    let n = v.len() / c;
    assert_eq!(v.len(), n * c, "add_per_channel: v length");
    if n == 0 {
        return;
    }
    let per = x.len() / n;
    assert_eq!(per * n, x.len(), "add_per_channel: x length");
    let len = x.len();
    crate::profile::timed(
        || format!("add per channel {len}"),
        0.0,
        || {
            x.par_chunks_exact_mut(per)
                .zip(v.par_chunks_exact(c))
                .for_each(|(img, vb)| add_per_channel_block(img, vb))
        },
    );
}

/// `SiLU(x) = x σ(x)` into `y` (resized to `x.len()`).
pub(crate) fn silu(x: &[f32], y: &mut Vec<f32>) {
    if y.capacity() < x.len() {
        // Every entry is written below.
        crate::pool::recycle(std::mem::replace(y, crate::pool::overwritten(x.len())));
    }
    y.resize(x.len(), 0.0);
    y.truncate(x.len());
    crate::profile::timed(
        || format!("silu {}", x.len()),
        0.0,
        || {
            x.par_chunks(BLOCK)
                .zip(y.par_chunks_mut(BLOCK))
                .for_each(|(xb, yb)| silu_block(xb, yb))
        },
    );
}

/// `dx = dy ⊙ SiLU'(x)`, `SiLU'(x) = σ(x)(1 + x(1 − σ(x)))`, in place on `dy`.
pub(crate) fn silu_backward(x: &[f32], dy: &mut [f32]) {
    assert_eq!(x.len(), dy.len(), "silu_backward: x and dy lengths");
    crate::profile::timed(
        || format!("silu backward {}", x.len()),
        0.0,
        || {
            x.par_chunks(BLOCK)
                .zip(dy.par_chunks_mut(BLOCK))
                .for_each(|(xb, gb)| silu_backward_block(xb, gb))
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `exp_f32` is within 2 ulp (relative 2.4·10⁻⁷) of the f64 exponential on a dense grid of
    /// `[−87, 88]`, and saturates (finite, positive) beyond.
    #[test]
    fn exp_matches_f64_to_two_ulp() {
        let mut worst = 0.0f64;
        for i in 0..=1_750_000 {
            let x = -87.0 + i as f32 * 1e-4;
            let want = (x as f64).exp();
            let got = exp_f32(x) as f64;
            worst = worst.max((got - want).abs() / want);
        }
        assert!(worst < 2.4e-7, "worst relative error {worst}");
        assert!(exp_f32(-1000.0) > 0.0 && exp_f32(1000.0).is_finite());
    }

    /// SiLU and its derivative: the same bits on every kernel level this CPU has (each block
    /// run through the level's build), and close to the f64 formulas.
    #[test]
    fn silu_is_accurate_and_the_same_on_every_level() {
        let x: Vec<f32> = (0..40_000)
            .map(|i| (i as f32 * 0.0137).sin() * 30.0)
            .collect();
        let mut y = Vec::new();
        silu(&x, &mut y);
        let mut d = vec![1.0f32; x.len()];
        silu_backward(&x, &mut d);
        for ((&v, &yv), &dv) in x.iter().zip(&y).zip(&d) {
            let s = 1.0 / (1.0 + (-(v as f64)).exp());
            assert!((yv as f64 - v as f64 * s).abs() <= 1e-6 * (1.0 + (v as f64).abs()));
            let ds = s * (1.0 + v as f64 * (1.0 - s));
            assert!((dv as f64 - ds).abs() <= 1e-6 * (1.0 + (v as f64).abs()));
        }
        // The baseline body, called directly, gives the dispatched level's bits.
        let mut y2 = vec![0.0f32; x.len()];
        for (xb, yb) in x.chunks(BLOCK).zip(y2.chunks_mut(BLOCK)) {
            for (o, &v) in yb.iter_mut().zip(xb) {
                *o = v * sigmoid_f32(v);
            }
        }
        assert!(y.iter().zip(&y2).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}
