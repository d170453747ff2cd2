//! The discrete DDPM forward chain (Ho et al. 2020; seeds 003/004): its schedule
//! ([`DdpmSchedule`]) and its exact kernel as a forward SDE ([`DdpmKernel`]), next to each other.
//!
//! **Forward chain.** With a schedule `0 < β_1, …, β_N < 1` ([`DdpmSchedule`]),
//! `x_i = √(1 − β_i) x_{i−1} + √β_i z_i`, `z_i ~ N(0, I)`, `i = 1..N`. Composing the steps,
//! `x_i | x_0 ~ N(√ᾱ_i x_0, (1 − ᾱ_i) I)` with `ᾱ_i = ∏_{j ≤ i} (1 − β_j)` (`ᾱ_0 = 1`), so
//! `x_i = √ᾱ_i x_0 + √(1 − ᾱ_i) ε` in one jump.
//!
//! **ε-prediction objective.** `L(θ) = E_{i, x_0, ε} ‖ε − ε_θ(√ᾱ_i x_0 + √(1 − ᾱ_i) ε, i)‖²`.
//! Since the kernel score is `∇ log q(x_i | x_0) = −ε / σ_i`, `σ_i = √(1 − ᾱ_i)`, the
//! parametrisation `ε_θ = −σ_i s_θ` turns it into denoising score matching with weight `σ_i²`:
//! `‖ε − ε_θ‖² = σ_i² ‖s_θ − ∇ log q(x_i | x_0)‖²`. Conversely a score model gives
//! `ε̂ = −σ_i s(x, t_i)`.
//!
//! **Continuum limit.** Put `t_i = i/N`, `Δt = 1/N` and `β_i = β(t_i) Δt`, i.e.
//! `β(t) = N β_lin(t)` where `β_lin(t) = β_start + (β_end − β_start) t` interpolates the linear
//! schedule. Then `√(1 − β_i) = 1 − ½ β(t_i) Δt + O(Δt²)` and `√β_i z = √β(t_i) √Δt z`: one
//! chain step is one Euler–Maruyama step of the VP SDE `dx = −½ β(t) x dt + √β(t) dW` with
//! `β_min = N β_start`, `β_max = N β_end`, `T = 1` ([`DdpmSchedule::to_vp_sde`]; DDPM's
//! `1e-4 → 0.02` at `N = 1000` is Song et al.'s `β ∈ [0.1, 20]`). The marginals agree to
//! `O(1/N)`: `ln ᾱ_i = Σ_j ln(1 − β_j) = −Σ_j β_j − ½ Σ_j β_j² − …`, and with
//! `I(t) = ∫₀ᵗ β = β_min t + (β_max − β_min) t²/2`,
//! `ln ᾱ_i + I(t_i) = (β_max − β_min) i (N − i) / (2 N² (N − 1)) − (1/2N) ∫₀^{t_i} β² + O(N⁻²)`,
//! so `ᾱ_i → m(t_i)² = exp(−I(t_i))` with error `O(1/N)`.

//!
//! Ancestral sampling of the chain is in the samplers crate (`sample_ddpm`), DSM training on
//! [`DdpmKernel`] in the losses crate.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::{ForwardSde, ParamError, VpSde};

use ParamError as E;

/// See [`ParamError::debug`].
fn invalid(path: impl Into<String>, value: impl fmt::Debug, requirement: impl Into<String>) -> E {
    E::debug(path, value, requirement)
}

/// See [`ParamError::check_finite_debug`].
fn check(name: &str, value: f64, requirement: &str, ok: impl FnOnce(f64) -> bool) -> Result<(), E> {
    E::check_finite_debug(name, value, requirement, ok)
}

/// Nichol & Dhariwal's cap on the cosine schedule's `β_i` (the last step would be `β_N = 1`).
pub const COSINE_MAX_BETA: f64 = 0.999;

/// The shape of a DDPM noise schedule.
///
/// In TOML: `kind = { linear = { beta_start = 1e-4, beta_end = 0.02 } }` or
/// `kind = { cosine = { s = 0.008 } }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DdpmScheduleKind {
    /// Ho et al.'s linear schedule `β_i = β_start + (β_end − β_start) (i − 1)/(N − 1)`
    /// (`β_1 = β_start` when `N = 1`); requires `0 < β_start ≤ β_end < 1`.
    Linear {
        /// `β_1`.
        beta_start: f64,
        /// `β_N`.
        beta_end: f64,
    },
    /// Nichol & Dhariwal's cosine schedule: `ᾱ(t) = f(t)/f(0)`,
    /// `f(t) = cos²(((t + s)/(1 + s)) π/2)`, `β_i = min(1 − ᾱ(t_i)/ᾱ(t_{i−1}), 0.999)`,
    /// `t_i = i/N`; requires `s ≥ 0` (their default `s = 0.008`).
    Cosine {
        /// Offset `s` keeping `β_1` away from 0.
        s: f64,
    },
}

/// A validated DDPM schedule of `steps = N` noise levels (see the [module docs](crate::ddpm)).
///
/// Serde-embeddable (`kind = …`, `steps = N`); deserialisation validates like
/// [`DdpmSchedule::new`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawDdpmSchedule", into = "RawDdpmSchedule")]
pub struct DdpmSchedule {
    kind: DdpmScheduleKind,
    steps: usize,
}

/// The unvalidated serde form of [`DdpmSchedule`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDdpmSchedule {
    kind: DdpmScheduleKind,
    steps: usize,
}

impl TryFrom<RawDdpmSchedule> for DdpmSchedule {
    type Error = ParamError;
    fn try_from(raw: RawDdpmSchedule) -> Result<Self, ParamError> {
        DdpmSchedule::new(raw.kind, raw.steps)
    }
}

impl From<DdpmSchedule> for RawDdpmSchedule {
    fn from(s: DdpmSchedule) -> Self {
        Self {
            kind: s.kind,
            steps: s.steps,
        }
    }
}

impl DdpmSchedule {
    /// A schedule of `steps ≥ 1` levels; errors name the invalid parameter.
    pub fn new(kind: DdpmScheduleKind, steps: usize) -> Result<Self, ParamError> {
        if steps == 0 || steps >= u32::MAX as usize {
            return Err(invalid("steps", steps, "in 1..2³²"));
        }
        match kind {
            DdpmScheduleKind::Linear {
                beta_start,
                beta_end,
            } => {
                check("kind.linear.beta_start", beta_start, "in (0, 1)", |v| {
                    v > 0.0 && v < 1.0
                })?;
                check(
                    "kind.linear.beta_end",
                    beta_end,
                    &format!("in [beta_start = {beta_start}, 1)"),
                    |v| v >= beta_start && v < 1.0,
                )?;
            }
            DdpmScheduleKind::Cosine { s } => {
                check("kind.cosine.s", s, "≥ 0", |v| v >= 0.0)?;
            }
        }
        Ok(Self { kind, steps })
    }

    /// Linear schedule `β_start → β_end` over `steps` levels.
    pub fn linear(beta_start: f64, beta_end: f64, steps: usize) -> Result<Self, ParamError> {
        Self::new(
            DdpmScheduleKind::Linear {
                beta_start,
                beta_end,
            },
            steps,
        )
    }

    /// Cosine schedule with offset `s` over `steps` levels.
    pub fn cosine(s: f64, steps: usize) -> Result<Self, ParamError> {
        Self::new(DdpmScheduleKind::Cosine { s }, steps)
    }

    /// The discrete chain whose continuum limit is `sde` (which must have `T = 1`):
    /// the linear schedule `β_start = β_min/N`, `β_end = β_max/N`. Requires `β_min > 0` and
    /// `β_max/N < 1` (e.g. `N > 20` for Song et al.'s `β_max = 20`).
    pub fn matching_vp_sde(sde: &VpSde, steps: usize) -> Result<Self, ParamError> {
        check("sde.t_end()", sde.t_end(), "= 1", |v| v == 1.0)?;
        let n = steps.max(1) as f64;
        Self::linear(sde.beta_min() / n, sde.beta_max() / n, steps)
    }

    /// The chain's exact kernel as a forward SDE ([`DdpmKernel`] of [`DdpmSchedule::alphas_bar`]):
    /// `m(t_i) = √ᾱ_i`, `σ(t_i) = √(1 − ᾱ_i)` at every level `t_i = i/N`.
    pub fn kernel(&self) -> Result<DdpmKernel, ParamError> {
        DdpmKernel::new(&self.alphas_bar())
    }

    /// The schedule's shape.
    pub fn kind(&self) -> DdpmScheduleKind {
        self.kind
    }

    /// Number of levels `N`.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Continuous time of level `i`: `t_i = i/N`.
    pub fn time(&self, i: usize) -> f64 {
        i as f64 / self.steps as f64
    }

    /// `[β_0, β_1, …, β_N]` (`N + 1` values, `β_0 = 0` by convention so that `betas()[i] = β_i`).
    pub fn betas(&self) -> Vec<f64> {
        let n = self.steps;
        let mut betas = Vec::with_capacity(n + 1);
        betas.push(0.0);
        match self.kind {
            DdpmScheduleKind::Linear {
                beta_start,
                beta_end,
            } => {
                let denom = (n.max(2) - 1) as f64;
                betas.extend(
                    (1..=n).map(|i| beta_start + (beta_end - beta_start) * (i - 1) as f64 / denom),
                );
            }
            DdpmScheduleKind::Cosine { s } => {
                let f = |i: usize| {
                    let u = (self.time(i) + s) / (1.0 + s) * std::f64::consts::FRAC_PI_2;
                    u.cos().powi(2)
                };
                betas.extend((1..=n).map(|i| (1.0 - f(i) / f(i - 1)).min(COSINE_MAX_BETA)));
            }
        }
        betas
    }

    /// `[ᾱ_0, …, ᾱ_N]`, `ᾱ_i = ∏_{j ≤ i} (1 − β_j)`, `ᾱ_0 = 1` (computed as `exp Σ ln_1p(−β_j)`).
    pub fn alphas_bar(&self) -> Vec<f64> {
        let mut log = 0.0;
        self.betas()
            .iter()
            .map(|&b| {
                log += (-b).ln_1p();
                log.exp()
            })
            .collect()
    }

    /// The VP SDE this chain discretises (see the [module docs](crate::ddpm)): for the linear schedule,
    /// `dx = −½ β(t) x dt + √β(t) dW` on `[0, 1]` with `β_min = N β_start`, `β_max = N β_end`
    /// (`β(t_i) Δt = β_i` up to the `O(1/N)` index shift `i/N` vs `(i−1)/(N−1)`). The cosine
    /// schedule has no linear-β SDE: an error naming `kind`.
    pub fn to_vp_sde(&self) -> Result<VpSde, ParamError> {
        match self.kind {
            DdpmScheduleKind::Linear {
                beta_start,
                beta_end,
            } => {
                let n = self.steps as f64;
                VpSde::new(n * beta_start, n * beta_end, 1.0)
                    .map_err(|e| invalid("kind", self.kind, e.to_string()))
            }
            DdpmScheduleKind::Cosine { .. } => Err(invalid(
                "kind",
                self.kind,
                "linear (the cosine schedule has no linear-β VP SDE)",
            )),
        }
    }
}

/// The VP-type process whose marginals equal the DDPM chain's **exactly** at `t_i = i/N`.
///
/// Given `ᾱ_0 = 1 > ᾱ_1 > … > ᾱ_N > 0` (e.g. [`DdpmSchedule::alphas_bar`]),
/// `ln ᾱ(t)` is interpolated linearly between the levels, i.e. the VP SDE
/// `dx = −½ β(t) x dt + √β(t) dW` on `[0, 1]` with the piecewise-constant rate
/// `β(t) = −N ln(1 − β_i) = N (ln ᾱ_{i−1} − ln ᾱ_i)` on `((i−1)/N, i/N]`. Its kernel is
/// `x_t | x_0 ~ N(m(t) x_0, σ(t)² I)` with `m = √ᾱ(t)`, `σ = √(1 − ᾱ(t))`, so
/// `m(t_i) = √ᾱ_i` and `σ(t_i) = √(1 − ᾱ_i)`: DSM with this kernel,
/// `TimeSampling::Discrete` (losses crate) and `λ = σ²` is the ε-prediction loss of the chain, and a
/// network trained on it converts noise to score by `s = −ε_θ/√(1 − ᾱ_i)` exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct DdpmKernel {
    /// `ln ᾱ_i`, `i = 0..=N`.
    log_alpha_bar: Vec<f64>,
}

impl DdpmKernel {
    /// From the table `[ᾱ_0, …, ᾱ_N]` (`N ≥ 1`, `ᾱ_0 = 1`, strictly decreasing, `ᾱ_N > 0`);
    /// errors name the offending entry.
    pub fn new(alphas_bar: &[f64]) -> Result<Self, ParamError> {
        if alphas_bar.len() < 2 {
            return Err(ParamError::new(
                "alphas_bar (length)",
                alphas_bar.len(),
                "N + 1 ≥ 2",
            ));
        }
        if alphas_bar[0] != 1.0 {
            return Err(ParamError::new("alphas_bar[0]", alphas_bar[0], "1"));
        }
        for i in 1..alphas_bar.len() {
            let (a, b) = (alphas_bar[i - 1], alphas_bar[i]);
            if !(b.is_finite() && b > 0.0 && b < a) {
                return Err(ParamError::new(
                    format!("alphas_bar[{i}]"),
                    b,
                    format!("in (0, alphas_bar[{}] = {a})", i - 1),
                ));
            }
        }
        Ok(Self {
            log_alpha_bar: alphas_bar.iter().map(|a| a.ln()).collect(),
        })
    }

    /// Number of levels `N`.
    pub fn levels(&self) -> usize {
        self.log_alpha_bar.len() - 1
    }

    /// `ᾱ_i` of level `i`.
    pub fn alpha_bar(&self, i: usize) -> f64 {
        self.log_alpha_bar[i].exp()
    }

    /// Cell `i − 1` containing `t` and the fraction of the way through it.
    #[inline]
    fn cell(&self, t: f64) -> (usize, f64) {
        let n = self.levels();
        let u = (t.clamp(0.0, 1.0) * n as f64).max(0.0);
        let i = (u.floor() as usize).min(n - 1);
        (i, u - i as f64)
    }

    /// `ln ᾱ(t)`, linear between the levels.
    #[inline]
    pub fn log_alpha_bar_at(&self, t: f64) -> f64 {
        let (i, f) = self.cell(t);
        let (a, b) = (self.log_alpha_bar[i], self.log_alpha_bar[i + 1]);
        a + (b - a) * f
    }

    /// `β(t) = N (ln ᾱ_{i−1} − ln ᾱ_i)` on cell `i`.
    pub fn beta(&self, t: f64) -> f64 {
        let (i, _) = self.cell(t);
        self.levels() as f64 * (self.log_alpha_bar[i] - self.log_alpha_bar[i + 1])
    }
}

impl ForwardSde for DdpmKernel {
    /// `a(t) = −½ β(t)`.
    fn drift_coef(&self, t: f64) -> f64 {
        -0.5 * self.beta(t)
    }
    /// `g(t) = √β(t)`.
    fn diffusion(&self, t: f64) -> f64 {
        self.beta(t).sqrt()
    }
    /// `m(t) = √ᾱ(t) = exp(½ ln ᾱ(t))`.
    fn mean_coef(&self, t: f64) -> f64 {
        (0.5 * self.log_alpha_bar_at(t)).exp()
    }
    /// `σ(t) = √(1 − ᾱ(t))` (computed as `√(−expm1(ln ᾱ))`).
    fn marginal_std(&self, t: f64) -> f64 {
        (-self.log_alpha_bar_at(t).exp_m1()).max(0.0).sqrt()
    }
    fn t_end(&self) -> f64 {
        1.0
    }
    fn prior_std(&self) -> f64 {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_of_a_schedule_is_exact_at_its_levels() {
        let s = DdpmSchedule::linear(1e-4, 0.02, 200).unwrap();
        let (k, ab) = (s.kernel().unwrap(), s.alphas_bar());
        for i in [0, 1, 7, 100, 200] {
            let t = i as f64 / 200.0;
            let (m, sig) = (k.mean_coef(t), k.marginal_std(t));
            assert!((m * m - ab[i]).abs() < 1e-13, "{i}");
            assert!((sig * sig - (1.0 - ab[i])).abs() < 1e-13, "{i}");
        }
    }

    #[test]
    fn linear_betas_and_alphas_bar_match_their_formulas() {
        let s = DdpmSchedule::linear(1e-4, 0.02, 200).unwrap();
        let (b, ab) = (s.betas(), s.alphas_bar());
        assert_eq!((b.len(), ab.len()), (201, 201));
        assert_eq!((b[0], ab[0]), (0.0, 1.0));
        assert!((b[1] - 1e-4).abs() < 1e-18 && (b[200] - 0.02).abs() < 1e-15);
        let mut prod = 1.0;
        for i in 1..=200 {
            prod *= 1.0 - b[i];
            assert!((ab[i] - prod).abs() < 1e-13 * prod.max(1e-3), "{i}");
        }
        // Seed 004's T = 200 schedule; reference from NumPy:
        // python3 -c "import numpy as np; print(np.prod(1-np.linspace(1e-4,0.02,200)))"
        assert!(
            (ab[200] - 0.132_182_754_250_617_93).abs() < 1e-13,
            "{}",
            ab[200]
        );
    }

    #[test]
    fn cosine_alphas_bar_follow_the_cosine_and_the_last_beta_is_capped() {
        let s = DdpmSchedule::cosine(0.008, 100).unwrap();
        let (b, ab) = (s.betas(), s.alphas_bar());
        let f = |t: f64| {
            ((t + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2)
                .cos()
                .powi(2)
        };
        for (i, &got) in ab.iter().enumerate().take(100) {
            let want = f(i as f64 / 100.0) / f(0.0);
            assert!((got - want).abs() < 1e-12, "{i}: {got} vs {want}");
        }
        assert_eq!(b[100], COSINE_MAX_BETA);
        assert!(b.iter().all(|&v| (0.0..1.0).contains(&v)));
    }

    #[test]
    fn bad_schedules_are_rejected_with_the_parameter_named() {
        let e = DdpmSchedule::linear(0.0, 0.02, 10).unwrap_err();
        assert_eq!(e.path(), "kind.linear.beta_start");
        let e = DdpmSchedule::linear(0.02, 0.01, 10).unwrap_err();
        assert_eq!(e.path(), "kind.linear.beta_end");
        let e = DdpmSchedule::linear(1e-4, 1.0, 10).unwrap_err();
        assert_eq!(e.path(), "kind.linear.beta_end");
        assert_eq!(
            DdpmSchedule::linear(1e-4, 0.02, 0).unwrap_err().path(),
            "steps"
        );
        assert_eq!(
            DdpmSchedule::cosine(-0.1, 10).unwrap_err().path(),
            "kind.cosine.s"
        );
        let e = DdpmSchedule::cosine(0.008, 10)
            .unwrap()
            .to_vp_sde()
            .unwrap_err();
        assert_eq!(e.path(), "kind");
        // β_max/N = 20/10 ≥ 1.
        let e = DdpmSchedule::matching_vp_sde(&VpSde::song_default(), 10).unwrap_err();
        assert_eq!(e.path(), "kind.linear.beta_end");
    }

    #[test]
    fn linear_schedule_maps_to_song_vp_sde() {
        let sde = DdpmSchedule::linear(1e-4, 0.02, 1000)
            .unwrap()
            .to_vp_sde()
            .unwrap();
        assert!((sde.beta_min() - 0.1).abs() < 1e-12 && (sde.beta_max() - 20.0).abs() < 1e-12);
        let back = DdpmSchedule::matching_vp_sde(&sde, 1000).unwrap();
        assert_eq!(back.steps(), 1000);
        match back.kind() {
            DdpmScheduleKind::Linear {
                beta_start,
                beta_end,
            } => assert!((beta_start - 1e-4).abs() < 1e-15 && (beta_end - 0.02).abs() < 1e-15),
            k => panic!("{k:?}"),
        }
    }
}
