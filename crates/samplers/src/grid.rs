//! Time grids: the decreasing list of times `T = t_0 > t_1 > … > t_n = t_eps` a sampler walks.

use serde::{Deserialize, Serialize};
use smoluchowski_sde::ForwardSde;

use crate::error::{check, SamplerError};

/// How a [`TimeGrid`] is spaced between `T` and `t_eps` (`i = 0..=n`).
///
/// In TOML: `grid = "uniform"`, `"quadratic"`, `"log_snr"`, `grid = { karras = { rho = 7.0 } }`
/// or `grid = { truncated_log_snr = { sigma_max = 5.0 } }`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum GridSpacing {
    /// `t_i = T − (i/n)(T − t_eps)`.
    #[default]
    Uniform,
    /// `t_i = t_eps + (1 − i/n)² (T − t_eps)`: fine steps near `t_eps` (DDIM's "quadratic").
    Quadratic,
    /// Uniform in the log signal-to-noise ratio `λ(t) = ln(m(t)² / σ(t)²)`:
    /// `λ(t_i) = λ(T) + (i/n)(λ(t_eps) − λ(T))`.
    LogSnr,
    /// Karras et al.'s (EDM) grid in the VE-equivalent noise level `σ̂(t) = σ(t)/m(t)`:
    /// `σ̂(t_i) = (σ̂_max^{1/ρ} + (i/n)(σ̂_min^{1/ρ} − σ̂_max^{1/ρ}))^ρ` with
    /// `σ̂_max = σ̂(T)`, `σ̂_min = σ̂(t_eps)`; each `t_i` is found by bisection (σ̂ must
    /// increase in t). EDM's default is `ρ = 7`; `ρ = 1` is uniform in `σ̂`.
    Karras {
        /// Exponent `ρ > 0` (larger: finer steps at low noise).
        rho: f64,
    },
    /// One step from `T` straight to the VE-equivalent noise level `σ̂ = sigma_max`
    /// (`σ̂ = σ/m`), then `n − 1` steps uniform in `λ = ln(m²/σ²) = −2 ln σ̂` down to `t_eps`:
    /// `λ(t_i) = λ_max + ((i − 1)/(n − 1))(λ(t_eps) − λ_max)`, `λ_max = −2 ln sigma_max`,
    /// `i = 1..=n`. Far above the data's scale the flow is nearly linear (`x̂₀ ≈ E[x₀]`), so
    /// one first-order step crosses it and the remaining steps go where the data's structure
    /// forms. Needs `σ̂(t_eps) < sigma_max < σ̂(T)` and `n ≥ 2`.
    TruncatedLogSnr {
        /// `σ̂` reached by the first step (`> 0`).
        sigma_max: f64,
    },
}

/// A validated time grid `T = t_0 > t_1 > … > t_n = t_eps > 0` (strictly decreasing, finite).
///
/// The grid is plain data: samplers only walk [`TimeGrid::times`], so any spacing can be added
/// as another constructor.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeGrid {
    times: Vec<f64>,
}

impl TimeGrid {
    /// Any strictly decreasing list of at least two finite times ending above 0.
    pub fn from_times(times: Vec<f64>) -> Result<Self, SamplerError> {
        if times.len() < 2 {
            return Err(crate::error::invalid(
                "times.len()",
                times.len(),
                "≥ 2 (one step needs two times)",
            ));
        }
        for (i, &t) in times.iter().enumerate() {
            check(&format!("times[{i}]"), t, "> 0", |v| v > 0.0)?;
            if i > 0 && t >= times[i - 1] {
                return Err(crate::error::invalid(
                    format!("times[{i}]"),
                    t,
                    format!(
                        "< times[{}] = {} (strictly decreasing)",
                        i - 1,
                        times[i - 1]
                    ),
                ));
            }
        }
        Ok(Self { times })
    }

    /// Uniform grid `t_i = T − (i/n)(T − t_eps)`, `i = 0..=n`.
    pub fn uniform(t_end: f64, t_eps: f64, steps: usize) -> Result<Self, SamplerError> {
        check_ends(t_end, t_eps, steps)?;
        let h = (t_end - t_eps) / steps as f64;
        Self::from_times(endpoints(steps, t_end, t_eps, |i| t_end - i as f64 * h))
    }

    /// Quadratic grid `t_i = t_eps + (1 − i/n)² (T − t_eps)`: steps shrink towards `t_eps`.
    pub fn quadratic(t_end: f64, t_eps: f64, steps: usize) -> Result<Self, SamplerError> {
        check_ends(t_end, t_eps, steps)?;
        let n = steps as f64;
        Self::from_times(endpoints(steps, t_end, t_eps, |i| {
            let u = 1.0 - i as f64 / n;
            t_eps + u * u * (t_end - t_eps)
        }))
    }

    /// Grid uniform in `λ(t) = ln(m(t)² / σ(t)²)` between `λ(T)` and `λ(t_eps)`; each `t_i`
    /// solves `λ(t_i) = λ(T) + (i/n)(λ(t_eps) − λ(T))` by bisection (λ must decrease in t).
    pub fn log_snr<S: ForwardSde + ?Sized>(
        sde: &S,
        t_eps: f64,
        steps: usize,
    ) -> Result<Self, SamplerError> {
        let t_end = sde.t_end();
        check_ends(t_end, t_eps, steps)?;
        let (l_hi, l_lo) = lambda_range(sde, t_eps, "log_snr")?;
        let n = steps as f64;
        Self::from_times(endpoints(steps, t_end, t_eps, |i| {
            invert_lambda(sde, t_eps, l_lo + i as f64 / n * (l_hi - l_lo))
        }))
    }

    /// Karras et al.'s grid (see [`GridSpacing::Karras`]): uniform in `σ̂^{1/ρ}`,
    /// `σ̂ = σ/m`, from `σ̂(T)` down to `σ̂(t_eps)`, mapped back to `t` by bisection.
    pub fn karras<S: ForwardSde + ?Sized>(
        sde: &S,
        t_eps: f64,
        steps: usize,
        rho: f64,
    ) -> Result<Self, SamplerError> {
        let t_end = sde.t_end();
        check_ends(t_end, t_eps, steps)?;
        check("grid.karras.rho", rho, "> 0", |v| v > 0.0)?;
        // σ̂ = e^{−λ/2} with λ = ln(m²/σ²).
        let (l_hi, l_lo) = lambda_range(sde, t_eps, "karras")?;
        let (a, b) = ((-l_lo / (2.0 * rho)).exp(), (-l_hi / (2.0 * rho)).exp());
        let n = steps as f64;
        Self::from_times(endpoints(steps, t_end, t_eps, |i| {
            let root = a + i as f64 / n * (b - a); // σ̂_i^{1/ρ}
            invert_lambda(sde, t_eps, -2.0 * rho * root.ln())
        }))
    }

    /// One step from `T` to `σ̂ = sigma_max`, then `steps − 1` steps uniform in log-SNR down to
    /// `t_eps` (see [`GridSpacing::TruncatedLogSnr`]).
    pub fn truncated_log_snr<S: ForwardSde + ?Sized>(
        sde: &S,
        t_eps: f64,
        steps: usize,
        sigma_max: f64,
    ) -> Result<Self, SamplerError> {
        let t_end = sde.t_end();
        check_ends(t_end, t_eps, steps)?;
        if steps < 2 {
            return Err(crate::error::invalid(
                "steps",
                steps,
                "≥ 2 (truncated_log_snr: one step to sigma_max, then at least one more)",
            ));
        }
        let (l_hi, l_lo) = lambda_range(sde, t_eps, "truncated_log_snr")?;
        let (s_lo, s_hi) = ((-0.5 * l_hi).exp(), (-0.5 * l_lo).exp());
        check(
            "grid.truncated_log_snr.sigma_max",
            sigma_max,
            &format!("in (σ̂(t_eps) = {s_lo:.4e}, σ̂(T) = {s_hi:.4e}) (σ̂ = σ/m)"),
            |v| v > s_lo && v < s_hi,
        )?;
        let l_max = -2.0 * sigma_max.ln();
        let n = (steps - 1) as f64;
        Self::from_times(endpoints(steps, t_end, t_eps, |i| {
            invert_lambda(sde, t_eps, l_max + (i - 1) as f64 / n * (l_hi - l_max))
        }))
    }

    /// The grid of `spacing` with `steps` steps from `sde.t_end()` down to `t_eps`.
    pub fn new<S: ForwardSde + ?Sized>(
        sde: &S,
        spacing: GridSpacing,
        t_eps: f64,
        steps: usize,
    ) -> Result<Self, SamplerError> {
        match spacing {
            GridSpacing::Uniform => Self::uniform(sde.t_end(), t_eps, steps),
            GridSpacing::Quadratic => Self::quadratic(sde.t_end(), t_eps, steps),
            GridSpacing::LogSnr => Self::log_snr(sde, t_eps, steps),
            GridSpacing::Karras { rho } => Self::karras(sde, t_eps, steps, rho),
            GridSpacing::TruncatedLogSnr { sigma_max } => {
                Self::truncated_log_snr(sde, t_eps, steps, sigma_max)
            }
        }
    }

    /// The times, decreasing from `T` to `t_eps` (`steps() + 1` values).
    pub fn times(&self) -> &[f64] {
        &self.times
    }

    /// Number of steps `n` (one fewer than the number of times).
    pub fn steps(&self) -> usize {
        self.times.len() - 1
    }

    /// First time `T`.
    pub fn t_start(&self) -> f64 {
        self.times[0]
    }

    /// Last time `t_eps`.
    pub fn t_final(&self) -> f64 {
        self.times[self.times.len() - 1]
    }
}

fn check_ends(t_end: f64, t_eps: f64, steps: usize) -> Result<(), SamplerError> {
    check("t_end", t_end, "> 0", |v| v > 0.0)?;
    check("t_eps", t_eps, &format!("in (0, T = {t_end})"), |v| {
        v > 0.0 && v < t_end
    })?;
    if steps == 0 {
        return Err(crate::error::invalid("steps", steps, "≥ 1"));
    }
    Ok(())
}

/// Log-SNR `λ(t) = ln(m(t)² / σ(t)²) = 2 (ln m − ln σ)`.
fn lambda<S: ForwardSde + ?Sized>(sde: &S, t: f64) -> f64 {
    2.0 * (sde.mean_coef(t).ln() - sde.marginal_std(t).ln())
}

/// `(λ(t_eps), λ(T))`, checked finite and decreasing (`λ(t_eps) > λ(T)`).
fn lambda_range<S: ForwardSde + ?Sized>(
    sde: &S,
    t_eps: f64,
    spacing: &str,
) -> Result<(f64, f64), SamplerError> {
    let (l_hi, l_lo) = (lambda(sde, t_eps), lambda(sde, sde.t_end()));
    if l_hi.is_finite() && l_lo.is_finite() && l_hi > l_lo {
        Ok((l_hi, l_lo))
    } else {
        Err(crate::error::invalid(
            "grid",
            spacing,
            format!(
                "used with an SDE whose log-SNR λ = ln(m²/σ²) is finite and decreasing \
                 (λ(t_eps) = {l_hi}, λ(T) = {l_lo})"
            ),
        ))
    }
}

/// The `t ∈ [t_eps, T]` with `λ(t) = target` (bisection to machine precision; λ decreasing).
fn invert_lambda<S: ForwardSde + ?Sized>(sde: &S, t_eps: f64, target: f64) -> f64 {
    let (mut lo, mut hi) = (t_eps, sde.t_end()); // λ(lo) ≥ target ≥ λ(hi)
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if lambda(sde, mid) > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// `n + 1` times with the end points set exactly to `T` and `t_eps`.
fn endpoints(steps: usize, t_end: f64, t_eps: f64, f: impl Fn(usize) -> f64) -> Vec<f64> {
    (0..=steps)
        .map(|i| match i {
            0 => t_end,
            i if i == steps => t_eps,
            i => f(i),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoluchowski_sde::VpSde;

    #[test]
    fn uniform_grid_has_equal_steps_and_exact_ends() {
        let g = TimeGrid::uniform(1.0, 1e-3, 4).unwrap();
        assert_eq!(g.steps(), 4);
        assert_eq!(g.t_start(), 1.0);
        assert_eq!(g.t_final(), 1e-3);
        let h: Vec<f64> = g.times().windows(2).map(|w| w[0] - w[1]).collect();
        for &hi in &h {
            assert!((hi - (1.0 - 1e-3) / 4.0).abs() < 1e-15, "{h:?}");
        }
    }

    #[test]
    fn quadratic_grid_steps_shrink_towards_t_eps() {
        let g = TimeGrid::quadratic(1.0, 1e-3, 10).unwrap();
        let h: Vec<f64> = g.times().windows(2).map(|w| w[0] - w[1]).collect();
        assert!(h.windows(2).all(|w| w[1] < w[0]), "{h:?}");
        // last step = (T − t_eps)/n².
        assert!((h[9] - 0.999 / 100.0).abs() < 1e-12);
    }

    #[test]
    fn log_snr_grid_is_uniform_in_lambda() {
        let sde = VpSde::song_default();
        let g = TimeGrid::log_snr(&sde, 1e-3, 8).unwrap();
        let lambda: Vec<f64> = g
            .times()
            .iter()
            .map(|&t| 2.0 * (sde.mean_coef(t).ln() - sde.marginal_std(t).ln()))
            .collect();
        let d: Vec<f64> = lambda.windows(2).map(|w| w[1] - w[0]).collect();
        for &di in &d {
            assert!((di - d[0]).abs() < 1e-9 * d[0].abs(), "{d:?}");
            assert!(di > 0.0);
        }
    }

    #[test]
    fn karras_grid_is_uniform_in_sigma_hat_to_the_one_over_rho() {
        let sde = VpSde::song_default();
        let rho = 7.0;
        let g = TimeGrid::new(&sde, GridSpacing::Karras { rho }, 1e-3, 12).unwrap();
        assert_eq!((g.t_start(), g.t_final(), g.steps()), (1.0, 1e-3, 12));
        let root: Vec<f64> = g
            .times()
            .iter()
            .map(|&t| (sde.marginal_std(t) / sde.mean_coef(t)).powf(1.0 / rho))
            .collect();
        let d: Vec<f64> = root.windows(2).map(|w| w[1] - w[0]).collect();
        for &di in &d {
            assert!((di - d[0]).abs() < 1e-9 * d[0].abs(), "{d:?}");
            assert!(di < 0.0);
        }
        // ρ = 7 refines the low-noise end: the last step in t is much shorter than the first.
        let h: Vec<f64> = g.times().windows(2).map(|w| w[0] - w[1]).collect();
        assert!(h[11] < 0.3 * h[0], "{h:?}");
        let e = TimeGrid::new(&sde, GridSpacing::Karras { rho: 0.0 }, 1e-3, 5).unwrap_err();
        assert_eq!(e.path(), "grid.karras.rho");
    }

    #[test]
    fn bad_grids_are_rejected_with_the_parameter_named() {
        let e = TimeGrid::uniform(1.0, 0.0, 10).unwrap_err();
        assert_eq!(e.path(), "t_eps");
        let e = TimeGrid::uniform(1.0, 2.0, 10).unwrap_err();
        assert!(e.to_string().contains("t_eps"), "{e}");
        assert_eq!(TimeGrid::uniform(1.0, 0.1, 0).unwrap_err().path(), "steps");
        assert_eq!(
            TimeGrid::uniform(f64::NAN, 0.1, 3).unwrap_err().path(),
            "t_end"
        );
        let e = TimeGrid::from_times(vec![1.0, 0.5, 0.5]).unwrap_err();
        assert_eq!(e.path(), "times[2]");
        assert_eq!(
            TimeGrid::from_times(vec![1.0]).unwrap_err().path(),
            "times.len()"
        );
        assert_eq!(
            TimeGrid::from_times(vec![1.0, -0.5]).unwrap_err().path(),
            "times[1]"
        );
    }
}
