//! Ornstein–Uhlenbeck (Smoluchowski) process, including free diffusion.

use crate::error::{check, SdeError};
use crate::ForwardSde;

/// Ornstein–Uhlenbeck / Smoluchowski process `dx = −a x dt + √(2D) dW` on `[0, T]`.
///
/// Kernel: `x_t | x_0 ~ N(m(t) x_0, σ(t)²)` with
/// - `m(t) = e^{−a t}`,
/// - `σ(t)² = (D / a) (1 − e^{−2 a t})`, computed as `−D·expm1(−2 a t) / a` (accurate for small
///   `a t`); for `a = 0` (free diffusion) `σ(t)² = 2 D t`.
///
/// Prior: `N(0, σ(T)²)`, i.e. the time-`T` marginal of a process started at `x_0 = 0`; as
/// `T → ∞` (with `a > 0`) it tends to the stationary law `N(0, D / a)`. For data that is not
/// centred at 0 or not negligible against `σ(T)` this prior is only an approximation of `p_T`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OuSde {
    a: f64,
    diffusion: f64,
    t_end: f64,
    /// `√(2D)`, cached.
    g: f64,
}

impl OuSde {
    /// `dx = −a x dt + √(2D) dW` on `[0, t_end]`; requires `a ≥ 0`, `D > 0`, `T > 0`, all finite.
    pub fn new(a: f64, diffusion: f64, t_end: f64) -> Result<Self, SdeError> {
        check("a", a, "≥ 0", |v| v >= 0.0)?;
        check("diffusion", diffusion, "> 0", |v| v > 0.0)?;
        check("t_end", t_end, "> 0", |v| v > 0.0)?;
        Ok(Self {
            a,
            diffusion,
            t_end,
            g: (2.0 * diffusion).sqrt(),
        })
    }

    /// Free diffusion `dx = √(2D) dW` (`a = 0`): `σ(t)² = 2 D t`.
    pub fn free(diffusion: f64, t_end: f64) -> Result<Self, SdeError> {
        Self::new(0.0, diffusion, t_end)
    }

    /// Relaxation rate `a`.
    pub fn rate(&self) -> f64 {
        self.a
    }

    /// Diffusion constant `D` (so `g = √(2D)`).
    pub fn diffusion_constant(&self) -> f64 {
        self.diffusion
    }

    /// Kernel variance `σ(t)² = (D/a)(1 − e^{−2at})`, or `2Dt` when `a = 0`.
    pub fn marginal_var(&self, t: f64) -> f64 {
        if self.a == 0.0 {
            2.0 * self.diffusion * t
        } else {
            -self.diffusion * (-2.0 * self.a * t).exp_m1() / self.a
        }
    }
}

impl ForwardSde for OuSde {
    /// `−a`.
    fn drift_coef(&self, _t: f64) -> f64 {
        -self.a
    }
    /// `√(2D)`.
    fn diffusion(&self, _t: f64) -> f64 {
        self.g
    }
    /// `e^{−a t}`.
    fn mean_coef(&self, t: f64) -> f64 {
        (-self.a * t).exp()
    }
    /// `√((D/a)(1 − e^{−2at}))`, or `√(2Dt)` when `a = 0`.
    fn marginal_std(&self, t: f64) -> f64 {
        self.marginal_var(t).sqrt()
    }
    fn t_end(&self) -> f64 {
        self.t_end
    }
    /// `σ(T)`: the marginal at `T` of the process started at 0.
    fn prior_std(&self) -> f64 {
        self.marginal_std(self.t_end)
    }
}
