//! Exact log-likelihoods through the probability-flow ODE.
//!
//! Along the probability-flow ODE `dx/dt = ṽ(x,t) = f(x,t) − ½ g(t)² s(x,t)` the marginals obey
//! the continuity equation, so `d/dt log p_t(x_t) = −∇·ṽ(x_t, t)` and
//! `log p_{t_eps}(x) = log p_T(x_T) + ∫_{t_eps}^T ∇·ṽ(x_t, t) dt`, with `x_{t_eps} = x` and
//! `∇·ṽ = d · a(t) − ½ g(t)² ∇·s` for the affine drift `f = a(t) x`. The integral is carried
//! as one more state component per sample, `p_T` is the prior `N(0, prior_std² I)`, and the
//! whole state is f64 (the score is called on its f32 cast).

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use smoluchowski_sde::{ForwardSde, Score};

use crate::error::{check, SamplerError};
use crate::grid::{GridSpacing, TimeGrid};
use crate::noise::CHUNK_ROWS;
use crate::ode::{DormandPrince, Rk4};

/// Re-export: the trait lives in `smoluchowski_sde` (next to [`Score`]) so that models in
/// crates that do not depend on the samplers (e.g. the networks) can implement it.
pub use smoluchowski_sde::ScoreDivergence;

/// How `∇·s` is computed along the ODE.
///
/// In TOML: `divergence = "exact"`, `"finite_difference"` or
/// `divergence = { hutchinson = { probes = 1, seed = 0 } }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Divergence {
    /// Closed form from [`ScoreDivergence`] (only with [`log_likelihood_exact`]).
    Exact,
    /// The trace of the Jacobian by central differences along each of the `d` axes,
    /// `Σ_j [s_j(x + h e_j) − s_j(x − h e_j)] / (2h)`: deterministic, `2d` extra evaluations
    /// per right-hand side (cheap in low dimension). `h` as in [`FD_REL_STEP`].
    FiniteDifference,
    /// Hutchinson's estimator `∇·s ≈ (1/K) Σ_k v_kᵀ (∇s) v_k` with Rademacher probes `v_k`
    /// (`E[v vᵀ] = I`, so unbiased), each Jacobian–vector product by the central difference
    /// `(∇s) v ≈ [s(x + h v) − s(x − h v)] / (2h)`: `2K` extra evaluations per right-hand side.
    /// The probes of each sample are drawn once from `(seed, probe, row chunk)` and kept for
    /// the whole trajectory (as in FFJORD), so the ODE stays smooth and the log-likelihood
    /// estimate is unbiased up to the finite-difference error.
    Hutchinson {
        /// Number of probes `K ≥ 1`.
        probes: usize,
        /// Seed of the probes.
        seed: u64,
    },
}

/// ODE solver for the likelihood (state and accumulated divergence, integrated in f64).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum OdeSolver {
    /// Classic RK4 over a [`TimeGrid`] of `steps` steps walked from `t_eps` up to `T`
    /// (4 right-hand sides per step).
    Rk4 {
        /// Number of steps `≥ 1`.
        steps: usize,
        /// Spacing of the grid (default log-SNR, which resolves the fast dynamics near
        /// `t_eps`).
        #[serde(default = "log_snr")]
        grid: GridSpacing,
    },
    /// Adaptive Dormand–Prince 5(4), max-norm error control over the whole state (see
    /// [`Method::DormandPrince`](crate::Method::DormandPrince)).
    DormandPrince {
        /// Relative tolerance (`> 0`).
        rtol: f64,
        /// Absolute tolerance (`> 0`).
        atol: f64,
    },
}

fn log_snr() -> GridSpacing {
    GridSpacing::LogSnr
}

/// Configuration of [`log_likelihood`] / [`log_likelihood_exact`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LikelihoodConfig {
    /// Start time `t_eps ∈ (0, T)`: the data is taken as `x_{t_eps}` and the result is
    /// `log p_{t_eps}(x)` of the model's marginal at `t_eps`.
    pub t_eps: f64,
    /// The ODE solver.
    pub solver: OdeSolver,
    /// How the divergence is computed.
    pub divergence: Divergence,
}

impl LikelihoodConfig {
    /// Config from its three parts.
    pub fn new(t_eps: f64, solver: OdeSolver, divergence: Divergence) -> Self {
        Self {
            t_eps,
            solver,
            divergence,
        }
    }
}

/// Result of [`log_likelihood`].
#[derive(Debug, Clone, PartialEq)]
pub struct LikelihoodOutput {
    /// `log p_{t_eps}(x_r)` of each sample `r`, in nats.
    pub nats: Vec<f64>,
    /// Mean of `nats`.
    pub mean_nats: f64,
    /// Negative log-likelihood in bits per dimension: `−mean_nats / (d ln 2)`.
    pub bits_per_dim: f64,
    /// Batched score evaluations used (each divergence probe counts its two evaluations).
    pub nfe: usize,
}

/// Relative finite-difference step: `h = FD_REL_STEP · max(1, rms(x_r))` for row `r`.
///
/// The central difference has truncation error `h²/6 · |∂³s|` and, because the perturbed
/// points `x ± h v` are rounded to f32 (unit roundoff `u = 2⁻²⁴ ≈ 6·10⁻⁸`) and the score is
/// f32, a rounding error of about `u (|x| ‖∇s‖ + |s|) / h` in each Jacobian–vector product:
/// at `h = 10⁻³` roughly `10⁻⁴` relative to `‖∇s‖` for `|x|, |s|/‖∇s‖ ≲ 1` (the optimum
/// `h ≈ u^{1/3} ≈ 4·10⁻³` balances both terms).
pub const FD_REL_STEP: f64 = 1e-3;

/// Hutchinson's divergence estimate for each row of `x` (see [`Divergence::Hutchinson`]):
/// `div_out[r] = (1/K) Σ_k v_{k,r}ᵀ [s(x_r + h v_{k,r}) − s(x_r − h v_{k,r})] / (2h)`,
/// `h = FD_REL_STEP · max(1, rms(x_r))`. Returns the number of score evaluations (`2K`).
/// The probes depend only on `(seed, k, row)`, so repeated calls reuse them.
pub fn hutchinson_divergence<M: Score + ?Sized>(
    model: &mut M,
    x: &[f32],
    t: f64,
    probes: usize,
    seed: u64,
    div_out: &mut [f64],
) -> usize {
    let d = model.dim();
    let n = x.len() / d;
    assert_eq!(x.len(), n * d, "x must hold whole rows");
    assert_eq!(div_out.len(), n, "div_out must have one entry per row");
    let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let mut est = FdDivergence::new(n, d, Divergence::Hutchinson { probes, seed });
    est.divergence(model, &x64, t, div_out)
}

/// Finite-difference divergence (axes or Rademacher probes) with preallocated buffers.
struct FdDivergence {
    n: usize,
    d: usize,
    /// Rademacher probes `K × n × d` (±1), empty for the axis version.
    probes: Vec<f32>,
    /// Number of directions: `K` or `d`.
    directions: usize,
    step: Vec<f64>,
    xp: Vec<f32>,
    xm: Vec<f32>,
    sp: Vec<f32>,
    sm: Vec<f32>,
}

impl FdDivergence {
    fn new(n: usize, d: usize, kind: Divergence) -> Self {
        let len = n * d;
        let (probes, directions) = match kind {
            Divergence::Hutchinson { probes, seed } => {
                let mut v = vec![0.0f32; probes * len];
                for (k, vk) in v.chunks_mut(len.max(1)).enumerate() {
                    for (c, block) in vk.chunks_mut(CHUNK_ROWS * d).enumerate() {
                        let mut rng = probe_rng(seed, k, c);
                        for vi in block {
                            *vi = if rng.gen::<bool>() { 1.0 } else { -1.0 };
                        }
                    }
                }
                (v, probes)
            }
            _ => (Vec::new(), d),
        };
        Self {
            n,
            d,
            probes,
            directions,
            step: vec![0.0; n],
            xp: vec![0.0; len],
            xm: vec![0.0; len],
            sp: vec![0.0; len],
            sm: vec![0.0; len],
        }
    }

    /// `div_out[r] ≈ ∇·s(x_r, t)`; returns the score evaluations used.
    fn divergence<M: Score + ?Sized>(
        &mut self,
        model: &mut M,
        x: &[f64],
        t: f64,
        div_out: &mut [f64],
    ) -> usize {
        let d = self.d;
        for (h, row) in self.step.iter_mut().zip(x.chunks_exact(d)) {
            let ms = row.iter().map(|v| v * v).sum::<f64>() / d as f64;
            *h = FD_REL_STEP * ms.sqrt().max(1.0);
        }
        div_out.fill(0.0);
        let len = self.n * d;
        let hutchinson = !self.probes.is_empty();
        for k in 0..self.directions {
            for r in 0..self.n {
                let h = self.step[r];
                for j in 0..d {
                    let i = r * d + j;
                    let v = if hutchinson {
                        f64::from(self.probes[k * len + i])
                    } else if j == k {
                        1.0
                    } else {
                        0.0
                    };
                    self.xp[i] = (x[i] + h * v) as f32;
                    self.xm[i] = (x[i] - h * v) as f32;
                }
            }
            model.score(&self.xp, t, &mut self.sp);
            model.score(&self.xm, t, &mut self.sm);
            for (r, div) in div_out.iter_mut().enumerate() {
                let inv_2h = 0.5 / self.step[r];
                let mut acc = 0.0;
                if hutchinson {
                    for i in r * d..(r + 1) * d {
                        let v = f64::from(self.probes[k * len + i]);
                        acc += v * (f64::from(self.sp[i]) - f64::from(self.sm[i]));
                    }
                } else {
                    let i = r * d + k;
                    acc = f64::from(self.sp[i]) - f64::from(self.sm[i]);
                }
                *div += acc * inv_2h;
            }
        }
        if hutchinson {
            let inv_k = 1.0 / self.directions as f64;
            div_out.iter_mut().for_each(|v| *v *= inv_k);
        }
        2 * self.directions
    }
}

/// Probe generator of probe `k`, row chunk `chunk`: ChaCha8 keyed by
/// `(seed, "hutchins", k, 0)` (little-endian 64-bit words) on stream `chunk`.
fn probe_rng(seed: u64, k: usize, chunk: usize) -> ChaCha8Rng {
    smoluchowski_core::streams::keyed(seed, *b"hutchins", k as u64, chunk as u64)
}

/// Log-likelihood `log p_{t_eps}(x)` of each row of `x0` (row-major `n × d`) under the
/// probability-flow ODE of `(sde, model)`:
/// `log p_{t_eps}(x) = log N(x_T; 0, prior_std² I) + ∫_{t_eps}^T [d·a(t) − ½ g(t)² ∇·s] dt`.
///
/// For any [`Score`]: `config.divergence` must be [`Divergence::FiniteDifference`] or
/// [`Divergence::Hutchinson`] (use [`log_likelihood_exact`] for [`Divergence::Exact`]).
/// Errors name the invalid parameter.
pub fn log_likelihood<S, M>(
    sde: &S,
    model: &mut M,
    x0: &[f32],
    config: &LikelihoodConfig,
) -> Result<LikelihoodOutput, SamplerError>
where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
{
    if config.divergence == Divergence::Exact {
        return Err(crate::error::invalid(
            "divergence",
            config.divergence,
            "finite_difference or hutchinson for a model without a closed-form divergence \
             (log_likelihood_exact takes a ScoreDivergence model)",
        ));
    }
    let (n, d) = validate(model.dim(), x0, config)?;
    let mut fd = FdDivergence::new(n, d, config.divergence);
    integrate(sde, x0, n, d, config, |x, xf, t, s, div| {
        model.score(xf, t, s);
        1 + fd.divergence(model, x, t, div)
    })
}

/// [`log_likelihood`] for a model with a closed-form divergence: any `config.divergence`,
/// with [`Divergence::Exact`] calling [`ScoreDivergence::score_and_divergence`] (one
/// evaluation per right-hand side).
pub fn log_likelihood_exact<S, M>(
    sde: &S,
    model: &mut M,
    x0: &[f32],
    config: &LikelihoodConfig,
) -> Result<LikelihoodOutput, SamplerError>
where
    S: ForwardSde + ?Sized,
    M: ScoreDivergence + ?Sized,
{
    if config.divergence != Divergence::Exact {
        return log_likelihood(sde, model, x0, config);
    }
    let (n, d) = validate(model.dim(), x0, config)?;
    integrate(sde, x0, n, d, config, |_, xf, t, s, div| {
        model.score_and_divergence(xf, t, s, div);
        1
    })
}

/// Checks the model, data and config; returns `(n, d)`.
fn validate(
    d: usize,
    x0: &[f32],
    config: &LikelihoodConfig,
) -> Result<(usize, usize), SamplerError> {
    if d == 0 {
        return Err(crate::error::invalid("model.dim()", d, "≥ 1"));
    }
    if x0.is_empty() || !x0.len().is_multiple_of(d) {
        return Err(crate::error::invalid(
            "x0.len()",
            x0.len(),
            format!("a positive multiple of the model's dimension {d}"),
        ));
    }
    if let Some(i) = x0.iter().position(|v| !v.is_finite()) {
        return Err(crate::error::invalid(format!("x0[{i}]"), x0[i], "finite"));
    }
    match config.solver {
        OdeSolver::Rk4 { steps, .. } if steps == 0 || steps >= u32::MAX as usize => {
            return Err(crate::error::invalid(
                "solver.rk4.steps",
                steps,
                "in 1..2³²",
            ));
        }
        OdeSolver::DormandPrince { rtol, atol } => {
            check("solver.dormand_prince.rtol", rtol, "> 0", |v| v > 0.0)?;
            check("solver.dormand_prince.atol", atol, "> 0", |v| v > 0.0)?;
        }
        OdeSolver::Rk4 { .. } => {}
    }
    if let Divergence::Hutchinson { probes, .. } = config.divergence {
        if probes == 0 {
            return Err(crate::error::invalid(
                "divergence.hutchinson.probes",
                probes,
                "≥ 1",
            ));
        }
    }
    Ok((x0.len() / d, d))
}

/// Integrates `[x | ℓ]` from `t_eps` to `T` with `ẋ = a x − ½g² s`, `ℓ̇ = d a − ½g² ∇·s`, then
/// adds the prior log-density of `x_T`. `eval(x, x_f32, t, score_out, div_out)` returns the
/// score evaluations it used.
fn integrate<S, E>(
    sde: &S,
    x0: &[f32],
    n: usize,
    d: usize,
    config: &LikelihoodConfig,
    mut eval: E,
) -> Result<LikelihoodOutput, SamplerError>
where
    S: ForwardSde + ?Sized,
    E: FnMut(&[f64], &[f32], f64, &mut [f32], &mut [f64]) -> usize,
{
    let t_end = sde.t_end();
    check("sde.prior_std()", sde.prior_std(), "> 0", |v| v > 0.0)?;
    check(
        "t_eps",
        config.t_eps,
        &format!("in (0, T = {t_end})"),
        |v| v > 0.0 && v < t_end,
    )?;
    let len = n * d;
    let mut y = vec![0.0f64; len + n];
    for (yi, &xi) in y.iter_mut().zip(x0) {
        *yi = f64::from(xi);
    }
    let (mut xf, mut s, mut div) = (vec![0.0f32; len], vec![0.0f32; len], vec![0.0f64; n]);
    let mut nfe = 0;
    let dim = d as f64;
    let mut rhs = |t: f64, y: &[f64], out: &mut [f64]| {
        let (x, _) = y.split_at(len);
        for (a, &b) in xf.iter_mut().zip(x) {
            *a = b as f32;
        }
        nfe += eval(x, &xf, t, &mut s, &mut div);
        let (a, g) = (sde.drift_coef(t), sde.diffusion(t));
        let c = -0.5 * g * g;
        let (ox, ol) = out.split_at_mut(len);
        for ((o, &xi), &si) in ox.iter_mut().zip(x).zip(&s) {
            *o = a * xi + c * f64::from(si);
        }
        for (o, &dv) in ol.iter_mut().zip(&div) {
            *o = dim * a + c * dv;
        }
    };
    match config.solver {
        OdeSolver::Rk4 { steps, grid } => {
            let grid = TimeGrid::new(sde, grid, config.t_eps, steps)?;
            let mut rk = Rk4::new(y.len());
            for w in grid.times().windows(2).rev() {
                rk.step(&mut rhs, &mut y, w[1], w[0]);
            }
        }
        OdeSolver::DormandPrince { rtol, atol } => {
            let mut dp = DormandPrince::new(y.len(), rtol, atol);
            dp.integrate(&mut rhs, &mut y, config.t_eps, t_end)?;
        }
    }
    let (x_t, ell) = y.split_at(len);
    let nats: Vec<f64> = x_t
        .chunks_exact(d)
        .zip(ell)
        .map(|(row, &l)| sde.prior_log_density(row) + l)
        .collect();
    let mean_nats = nats.iter().sum::<f64>() / n as f64;
    Ok(LikelihoodOutput {
        nats,
        mean_nats,
        bits_per_dim: -mean_nats / (dim * std::f64::consts::LN_2),
        nfe,
    })
}
