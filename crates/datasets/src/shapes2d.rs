//! The 2-D toy shapes users know: two moons, concentric circles, swiss roll, checkerboard.
//!
//! Each draws from the continuous law behind the usual generator (scikit-learn's
//! `make_moons` / `make_circles` / `make_swiss_roll` place points on an even grid of the curve
//! parameter, `linspace`; here the parameter is uniform, which is the law of that grid as it
//! becomes dense), with isotropic Gaussian noise added as scikit-learn does.

use rand::Rng;
use rand_distr::StandardNormal;
use std::f64::consts::PI;

use crate::error::{check_parameter as check, DatasetError};
use crate::Dataset;

fn check_rows(out: &[f64]) {
    assert!(
        out.len().is_multiple_of(2),
        "output length must be a multiple of 2"
    );
}

#[inline]
fn noise<R: Rng + ?Sized>(rng: &mut R, std: f64) -> f64 {
    if std > 0.0 {
        std * rng.sample::<f64, _>(StandardNormal)
    } else {
        0.0
    }
}

/// scikit-learn's `make_moons`: with probability ½ the upper moon `(cos θ, sin θ)`, else the
/// lower moon `(1 − cos θ, ½ − sin θ)`, `θ ~ U(0, π)`, plus `N(0, noise² I)`.
///
/// Exact moments: `E x = ½`, `E y = ¼`, `Var x = ¾ + noise²`, `Var y = 9/16 − 1/π + noise²`.
/// Noiseless `x` has CDF `F(x) = ½ A(x) + ½ A(x − 1)` with the arcsine law
/// `A(x) = 1 − arccos(clamp(x, −1, 1))/π` of `cos θ`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TwoMoons {
    noise: f64,
}

impl TwoMoons {
    /// Noise standard deviation `noise ≥ 0` (scikit-learn's `noise`).
    pub fn new(noise: f64) -> Result<Self, DatasetError> {
        check("noise", noise, "≥ 0", |v| v >= 0.0)?;
        Ok(Self { noise })
    }

    /// Exact mean `(½, ¼)`.
    pub fn mean(&self) -> [f64; 2] {
        [0.5, 0.25]
    }

    /// Exact coordinate variances `(¾ + noise², 9/16 − 1/π + noise²)`.
    pub fn variance(&self) -> [f64; 2] {
        let s2 = self.noise * self.noise;
        [0.75 + s2, 0.5625 - 1.0 / PI + s2]
    }

    /// CDF of the noiseless `x` coordinate: `½ A(x) + ½ A(x − 1)`, `A(u) = 1 − arccos(u)/π`.
    pub fn noiseless_x_cdf(x: f64) -> f64 {
        let a = |u: f64| 1.0 - u.clamp(-1.0, 1.0).acos() / PI;
        0.5 * a(x) + 0.5 * a(x - 1.0)
    }
}

impl Dataset for TwoMoons {
    fn dim(&self) -> usize {
        2
    }
    fn sample_into<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f64]) {
        check_rows(out);
        for p in out.chunks_exact_mut(2) {
            let upper = rng.gen::<bool>();
            let (s, c) = (PI * rng.gen::<f64>()).sin_cos();
            let (x, y) = if upper { (c, s) } else { (1.0 - c, 0.5 - s) };
            p[0] = x + noise(rng, self.noise);
            p[1] = y + noise(rng, self.noise);
        }
    }
}

/// scikit-learn's `make_circles`: with probability ½ the unit circle, else the circle of radius
/// `factor`, at a uniform angle, plus `N(0, noise² I)`.
///
/// Exact: the angle `atan2(y, x)` is uniform on `(−π, π]` for any noise (rotational symmetry);
/// noiseless radii are the two atoms `1` and `factor`; `E|x|² = ½(1 + factor²) + 2 noise²`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Circles {
    factor: f64,
    noise: f64,
}

impl Circles {
    /// Inner radius `factor ∈ [0, 1)` (scikit-learn's default 0.8) and `noise ≥ 0`.
    pub fn new(factor: f64, noise: f64) -> Result<Self, DatasetError> {
        check("factor", factor, "in [0, 1)", |v| (0.0..1.0).contains(&v))?;
        check("noise", noise, "≥ 0", |v| v >= 0.0)?;
        Ok(Self { factor, noise })
    }

    /// `E|x|² = ½(1 + factor²) + 2 noise²`.
    pub fn mean_square_radius(&self) -> f64 {
        0.5 * (1.0 + self.factor * self.factor) + 2.0 * self.noise * self.noise
    }
}

impl Dataset for Circles {
    fn dim(&self) -> usize {
        2
    }
    fn sample_into<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f64]) {
        check_rows(out);
        for p in out.chunks_exact_mut(2) {
            let r = if rng.gen::<bool>() { 1.0 } else { self.factor };
            let (s, c) = (2.0 * PI * rng.gen::<f64>()).sin_cos();
            p[0] = r * c + noise(rng, self.noise);
            p[1] = r * s + noise(rng, self.noise);
        }
    }
}

/// The 2-D swiss roll: `scale · (t cos t, t sin t) + N(0, noise² I)`, `t ~ U(3π/2, 9π/2)`:
/// scikit-learn's `make_swiss_roll` projected on its `(x, z)` plane (FFJORD's `swissroll` is
/// [`SwissRoll::ffjord`]: scale 1/5, noise 1/5).
///
/// Exact: noiseless radius `|x| = scale · t` is uniform on `[3π/2 scale, 9π/2 scale]`;
/// `E x = scale · (2, 2/(3π))` (from `∫ t cos t = t sin t + cos t`, `∫ t sin t = sin t − t cos t`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SwissRoll {
    scale: f64,
    noise: f64,
}

impl SwissRoll {
    /// `scale > 0`, `noise ≥ 0`.
    pub fn new(scale: f64, noise: f64) -> Result<Self, DatasetError> {
        check("scale", scale, "> 0", |v| v > 0.0)?;
        check("noise", noise, "≥ 0", |v| v >= 0.0)?;
        Ok(Self { scale, noise })
    }

    /// FFJORD's preset: `make_swiss_roll(noise = 1.0)[:, [0, 2]] / 5`.
    pub fn ffjord() -> Self {
        Self::new(0.2, 0.2).expect("valid preset")
    }

    /// Range `[3π/2, 9π/2] · scale` of the noiseless radius.
    pub fn radius_range(&self) -> (f64, f64) {
        (1.5 * PI * self.scale, 4.5 * PI * self.scale)
    }

    /// Exact mean `scale · (2, 2/(3π))`.
    pub fn mean(&self) -> [f64; 2] {
        [2.0 * self.scale, 2.0 * self.scale / (3.0 * PI)]
    }
}

impl Dataset for SwissRoll {
    fn dim(&self) -> usize {
        2
    }
    fn sample_into<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f64]) {
        check_rows(out);
        for p in out.chunks_exact_mut(2) {
            let t = 1.5 * PI * (1.0 + 2.0 * rng.gen::<f64>());
            let (s, c) = t.sin_cos();
            p[0] = self.scale * t * c + noise(rng, self.noise);
            p[1] = self.scale * t * s + noise(rng, self.noise);
        }
    }
}

/// Checkerboard: uniform on the "black" cells of an `n × n` board on `[−a, a]²` (cell `(i, j)`,
/// counted from the lower left, is black when `i + j` is even). FFJORD's `checkerboard` is
/// [`Checkerboard::ffjord`] (`n = 4`, `a = 4`). No scikit-learn equivalent.
///
/// Exact: both coordinates are marginally uniform on `[−a, a]` (every column and every row holds
/// `n/2` black cells); each of the `n²/2` black cells has probability `2/n²`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Checkerboard {
    cells: usize,
    half_width: f64,
}

impl Checkerboard {
    /// `cells ≥ 2` per side (even) and half-width `a > 0`.
    pub fn new(cells: usize, half_width: f64) -> Result<Self, DatasetError> {
        check("cells", cells as f64, "even and ≥ 2", |v| {
            v >= 2.0 && cells.is_multiple_of(2)
        })?;
        check("half_width", half_width, "> 0", |v| v > 0.0)?;
        Ok(Self { cells, half_width })
    }

    /// FFJORD's board: 4 × 4 cells on `[−4, 4]²`.
    pub fn ffjord() -> Self {
        Self::new(4, 4.0).expect("valid preset")
    }

    /// Cells per side.
    pub fn cells(&self) -> usize {
        self.cells
    }

    /// Half-width `a`.
    pub fn half_width(&self) -> f64 {
        self.half_width
    }

    /// Cell indices `(i, j)` of a point inside the board (`None` outside).
    pub fn cell_of(&self, x: &[f64]) -> Option<(usize, usize)> {
        let side = 2.0 * self.half_width / self.cells as f64;
        let idx = |v: f64| {
            let k = ((v + self.half_width) / side).floor();
            (k >= 0.0 && k < self.cells as f64).then_some(k as usize)
        };
        Some((idx(x[0])?, idx(x[1])?))
    }
}

impl Dataset for Checkerboard {
    fn dim(&self) -> usize {
        2
    }
    fn sample_into<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f64]) {
        check_rows(out);
        let n = self.cells;
        let side = 2.0 * self.half_width / n as f64;
        for p in out.chunks_exact_mut(2) {
            let i = rng.gen_range(0..n);
            let j = 2 * rng.gen_range(0..n / 2) + (i % 2);
            p[0] = -self.half_width + (i as f64 + rng.gen::<f64>()) * side;
            p[1] = -self.half_width + (j as f64 + rng.gen::<f64>()) * side;
        }
    }
}
