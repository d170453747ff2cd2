//! Variance-preserving (VP) and sub-VP SDEs with a linear β schedule.

use crate::error::{check, SdeError};
use crate::ForwardSde;

/// Linear noise schedule `β(t) = β_min + (β_max − β_min) t / T` shared by [`VpSde`] and
/// [`SubVpSde`].
#[derive(Debug, Clone, Copy, PartialEq)]
struct LinearBeta {
    beta_min: f64,
    beta_max: f64,
    t_end: f64,
}

impl LinearBeta {
    fn new(beta_min: f64, beta_max: f64, t_end: f64) -> Result<Self, SdeError> {
        check("beta_min", beta_min, "≥ 0", |v| v >= 0.0)?;
        check("beta_max", beta_max, "> 0", |v| v > 0.0)?;
        check(
            "beta_max",
            beta_max,
            &format!("≥ beta_min ({beta_min})"),
            |v| v >= beta_min,
        )?;
        check("t_end", t_end, "> 0", |v| v > 0.0)?;
        Ok(Self {
            beta_min,
            beta_max,
            t_end,
        })
    }
    #[inline]
    fn beta(&self, t: f64) -> f64 {
        self.beta_min + (self.beta_max - self.beta_min) * t / self.t_end
    }
    #[inline]
    fn integrated(&self, t: f64) -> f64 {
        self.beta_min * t + (self.beta_max - self.beta_min) * t * t / (2.0 * self.t_end)
    }
}

/// Variance-preserving SDE (Ho et al. 2020; Song et al. 2021):
/// `dx = −½ β(t) x dt + √β(t) dW` with `β(t) = β_min + (β_max − β_min) t / T`.
///
/// With `I(t) = ∫₀ᵗ β = β_min t + (β_max − β_min) t² / (2T)` the kernel is
/// `x_t | x_0 ~ N(m x_0, σ²)`, `m(t) = exp(−½ I(t))`, `σ(t) = √(1 − m²) = √(−expm1(−I(t)))`.
/// Prior: `N(0, 1)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VpSde {
    schedule: LinearBeta,
}

impl VpSde {
    /// VP SDE on `[0, t_end]`; requires `0 ≤ β_min ≤ β_max`, `β_max > 0`, `T > 0`, all finite.
    pub fn new(beta_min: f64, beta_max: f64, t_end: f64) -> Result<Self, SdeError> {
        Ok(Self {
            schedule: LinearBeta::new(beta_min, beta_max, t_end)?,
        })
    }

    /// Song et al.'s defaults: `β_min = 0.1`, `β_max = 20`, `T = 1`.
    pub fn song_default() -> Self {
        Self::new(0.1, 20.0, 1.0).expect("valid constants")
    }

    /// `β(t) = β_min + (β_max − β_min) t / T`.
    pub fn beta(&self, t: f64) -> f64 {
        self.schedule.beta(t)
    }

    /// `I(t) = ∫₀ᵗ β(s) ds = β_min t + (β_max − β_min) t² / (2T)`.
    pub fn integrated_beta(&self, t: f64) -> f64 {
        self.schedule.integrated(t)
    }

    /// `β_min`.
    pub fn beta_min(&self) -> f64 {
        self.schedule.beta_min
    }

    /// `β_max`.
    pub fn beta_max(&self) -> f64 {
        self.schedule.beta_max
    }
}

impl ForwardSde for VpSde {
    /// `−½ β(t)`.
    fn drift_coef(&self, t: f64) -> f64 {
        -0.5 * self.beta(t)
    }
    /// `√β(t)`.
    fn diffusion(&self, t: f64) -> f64 {
        self.beta(t).sqrt()
    }
    /// `exp(−½ I(t))`.
    fn mean_coef(&self, t: f64) -> f64 {
        (-0.5 * self.integrated_beta(t)).exp()
    }
    /// `√(1 − e^{−I(t)})`.
    fn marginal_std(&self, t: f64) -> f64 {
        (-(-self.integrated_beta(t)).exp_m1()).sqrt()
    }
    fn t_end(&self) -> f64 {
        self.schedule.t_end
    }
    /// `1`.
    fn prior_std(&self) -> f64 {
        1.0
    }
}

/// Sub-VP SDE (Song et al. 2021): `dx = −½ β(t) x dt + √(β(t)(1 − e^{−2 I(t)})) dW`, with the
/// same linear `β` and `I(t)` as [`VpSde`].
///
/// Kernel: `m(t) = exp(−½ I(t))`, `σ(t) = 1 − m(t)² = −expm1(−I(t))` (the kernel *standard
/// deviation*; the variance is `(1 − e^{−I})²`, always below the VP variance `1 − e^{−I}`).
/// Prior: `N(0, 1)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SubVpSde {
    schedule: LinearBeta,
}

impl SubVpSde {
    /// Sub-VP SDE on `[0, t_end]`; requires `0 ≤ β_min ≤ β_max`, `β_max > 0`, `T > 0`, all finite.
    pub fn new(beta_min: f64, beta_max: f64, t_end: f64) -> Result<Self, SdeError> {
        Ok(Self {
            schedule: LinearBeta::new(beta_min, beta_max, t_end)?,
        })
    }

    /// `β(t) = β_min + (β_max − β_min) t / T`.
    pub fn beta(&self, t: f64) -> f64 {
        self.schedule.beta(t)
    }

    /// `I(t) = ∫₀ᵗ β(s) ds = β_min t + (β_max − β_min) t² / (2T)`.
    pub fn integrated_beta(&self, t: f64) -> f64 {
        self.schedule.integrated(t)
    }

    /// `β_min`.
    pub fn beta_min(&self) -> f64 {
        self.schedule.beta_min
    }

    /// `β_max`.
    pub fn beta_max(&self) -> f64 {
        self.schedule.beta_max
    }
}

impl ForwardSde for SubVpSde {
    /// `−½ β(t)`.
    fn drift_coef(&self, t: f64) -> f64 {
        -0.5 * self.beta(t)
    }
    /// `g(t) = √(β(t) (1 − e^{−2 I(t)}))`.
    fn diffusion(&self, t: f64) -> f64 {
        (self.beta(t) * -(-2.0 * self.integrated_beta(t)).exp_m1()).sqrt()
    }
    /// `exp(−½ I(t))`.
    fn mean_coef(&self, t: f64) -> f64 {
        (-0.5 * self.integrated_beta(t)).exp()
    }
    /// `1 − e^{−I(t)}`.
    fn marginal_std(&self, t: f64) -> f64 {
        -(-self.integrated_beta(t)).exp_m1()
    }
    fn t_end(&self) -> f64 {
        self.schedule.t_end
    }
    /// `1`.
    fn prior_std(&self) -> f64 {
        1.0
    }
}
