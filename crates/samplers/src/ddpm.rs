//! The discrete DDPM chain (Ho et al. 2020; seeds 003/004) and its continuum limit, the VP SDE.
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
//! **Ancestral sampling** ([`sample_ddpm`]): from `x_N ~ N(0, I)`,
//! `x_{i−1} = (x_i − β_i/√(1 − ᾱ_i) ε̂(x_i, i)) / √(1 − β_i) + √β̃_i z`, where `β̃_i = β_i`
//! ([`DdpmVariance::Beta`]) or the posterior variance `β̃_i = (1 − ᾱ_{i−1})/(1 − ᾱ_i) β_i` of
//! `q(x_{i−1} | x_i, x_0)` ([`DdpmVariance::Posterior`]); the mean is the posterior mean with
//! `x̂_0` plugged in. With `ε̂ = −σ_i s` the `σ_i` cancels:
//! `x_{i−1} = (x_i + β_i s(x_i, t_i)) / √(1 − β_i) + √β̃_i z` (score_sde's ancestral predictor).
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

use serde::{Deserialize, Serialize};
use smoluchowski_sde::Score;

pub use smoluchowski_sde::ddpm::{DdpmSchedule, DdpmScheduleKind, COSINE_MAX_BETA};

use crate::error::SamplerError;
use crate::noise::{affine_and_noise, fill_scaled_normal, NoiseEvent};
use crate::{check_batch, RecordSpec, Recorder, SampleOutput};

/// The variance `β̃_i` of DDPM's ancestral step (Ho et al. found both about equally good).
///
/// In TOML: `variance = "beta"` or `variance = "posterior"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DdpmVariance {
    /// `β̃_i = β_i`, the forward step's variance (the upper bound; exact for `x_0 ~ N(0, I)`).
    Beta,
    /// `β̃_i = (1 − ᾱ_{i−1})/(1 − ᾱ_i) β_i`, the variance of `q(x_{i−1} | x_i, x_0)` (the lower
    /// bound; exact for `x_0` a point mass).
    Posterior,
}

/// DDPM ancestral sampling of `n` points through the discrete chain of `schedule`, from a
/// continuous-time score model (trained on the matching VP SDE, [`DdpmSchedule::to_vp_sde`]):
/// `x_N ~ N(0, I)`, then for `i = N, …, 1`
/// `x_{i−1} = (x_i + β_i s(x_i, t_i)) / √(1 − β_i) + √β̃_i z`, `t_i = i/N`, i.e. the
/// ε-form `(x_i − β_i/√(1 − ᾱ_i) ε̂)/√(1 − β_i)` with `ε̂ = −√(1 − ᾱ_i) s`. As in Ho et al.,
/// the last step (`i = 1`) adds no noise. Returns `x_0`; `N` score evaluations.
///
/// Noise: the prior is [`NoiseEvent::Prior`], the step from level `N − k` is
/// `NoiseEvent::step(k, 0)` (per row chunk, see [`noise`](crate::noise)), so output is
/// bit-identical for any thread count. Recorded frames are at `t_i = i/N` (`1` down to `0`).
pub fn sample_ddpm<M: Score + ?Sized>(
    schedule: &DdpmSchedule,
    variance: DdpmVariance,
    model: &mut M,
    n: usize,
    seed: u64,
    record: Option<RecordSpec>,
) -> Result<SampleOutput, SamplerError> {
    let dim = model.dim();
    let len = check_batch(dim, n)?;
    let mut x = vec![0.0f32; len];
    fill_scaled_normal(&mut x, 1.0, dim, seed, NoiseEvent::Prior);
    sample_ddpm_from(schedule, variance, model, x, seed, record)
}

/// [`sample_ddpm`] started from a given `x_N` (`n × dim`, row-major) instead of `N(0, I)`:
/// e.g. from the exact `p_N` (`√ᾱ_N x₀ + √(1 − ᾱ_N) ε` with data `x₀`), to separate the error
/// of a schedule whose `ᾱ_N` is not small (the chain does not reach `N(0, I)`) from the
/// network's. The step noise is the same as [`sample_ddpm`]'s for the same `seed`, so the two
/// differ only in their start.
pub fn sample_ddpm_from<M: Score + ?Sized>(
    schedule: &DdpmSchedule,
    variance: DdpmVariance,
    model: &mut M,
    mut x: Vec<f32>,
    seed: u64,
    record: Option<RecordSpec>,
) -> Result<SampleOutput, SamplerError> {
    let dim = model.dim();
    if dim == 0 || x.is_empty() || !x.len().is_multiple_of(dim) {
        return Err(SamplerError::new(
            "x_N",
            format!("{} values", x.len()),
            format!("a non-empty n × {dim} array"),
        ));
    }
    let n = x.len() / dim;
    let big_n = schedule.steps();
    let times: Vec<f64> = (0..=big_n).rev().map(|i| schedule.time(i)).collect();
    let mut recorder = record
        .map(|spec| Recorder::new(spec, &times, n, dim))
        .transpose()?;
    let (betas, alphas_bar) = (schedule.betas(), schedule.alphas_bar());
    let mut s = vec![0.0f32; x.len()];
    if let Some(r) = recorder.as_mut() {
        r.observe(0, &x);
    }
    for (k, i) in (1..=big_n).rev().enumerate() {
        model.score(&x, schedule.time(i), &mut s);
        let beta = betas[i];
        let a = 1.0 / (1.0 - beta).sqrt();
        let var = match variance {
            _ if i == 1 => 0.0,
            DdpmVariance::Beta => beta,
            DdpmVariance::Posterior => beta * (1.0 - alphas_bar[i - 1]) / (1.0 - alphas_bar[i]),
        };
        affine_and_noise(
            &mut x,
            &s,
            a,
            a * beta,
            var.sqrt(),
            dim,
            seed,
            NoiseEvent::step(k, 0),
        );
        if let Some(r) = recorder.as_mut() {
            r.observe(k + 1, &x);
        }
    }
    Ok(SampleOutput {
        samples: x,
        dim,
        nfe: big_n,
        trajectories: recorder.map(|r| r.out),
    })
}
