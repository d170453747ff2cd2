//! Inpainting (imputation of known coordinates) for every sampler, in the driver.
//!
//! Given known values `x₀[K]` on a set `K` of coordinates of each row, the reverse process is
//! run on the whole state and, after every grid step to `t'`, the known coordinates are
//! replaced by a fresh draw of the forward kernel,
//!
//! `x[K] ← m(t') x₀[K] + σ(t') ε`, `ε ~ N(0, I)`
//!
//! (replacement-based imputation, Song et al. 2021, appendix I.2). The unknown coordinates then
//! follow the reverse dynamics of the joint model driven by the replaced state; the method is
//! known to be biased (the unknown coordinates do not see the known ones' future), which the
//! exact-score experiments measure.
//!
//! RePaint (Lugmayr et al. 2022) adds resampling: the grid is cut into blocks of
//! `jump_length` steps; each block is traversed `resample_count` times, and between two passes
//! the whole state is carried back from the block's end `t_b` to its start `t_a > t_b` by the
//! exact forward transition of the SDE,
//!
//! `x_{t_a} = (m(t_a)/m(t_b)) x_{t_b} + √(σ(t_a)² − (m(t_a)/m(t_b))² σ(t_b)²) z`,
//!
//! (the known coordinates are then replaced afresh at `t_a`). `resample_count = 1` is plain
//! replacement. The jump back only uses the forward kernel, so RePaint is defined for every
//! sampler, deterministic ones included: a deterministic sampler (probability-flow ODE, DDIM
//! η = 0, DPM-Solver++, UniPC, Dormand–Prince) re-noised this way becomes a stochastic
//! harmonisation scheme whose only randomness is the forward re-noising and the replacement.
//! After a jump back the solver is restarted ([`Solver::start`](crate::Solver::start)), so the
//! multistep solvers begin the block again with their first-order step.
//!
//! Noise: the replacement and jump-back draws come from the seed
//! `derived_seed(seed, "inpainting")` (events `(step, 0)` for the replacement after step
//! `step`, `(block start, 1)` for a jump back); pass `p ≥ 1` of a block runs the solver and these
//! draws under `derived_seed(seed, "repaint/pass/<p>")`, so each pass draws fresh noise. At the
//! end (after any final denoising) the known coordinates are set to `x₀[K]` exactly.

use serde::{Deserialize, Serialize};
use smoluchowski_core::streams::derived_seed;

use crate::error::{invalid, SamplerError};
use crate::noise::{fill_scaled_normal, NoiseEvent};

/// How the known coordinates are imposed. In TOML: `method = "replacement"` or
/// `method = { repaint = { resample_count = 10, jump_length = 10 } }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum InpaintMethod {
    /// Replacement after every step (Song et al. 2021).
    Replacement,
    /// Replacement plus RePaint's resampling (Lugmayr et al. 2022).
    Repaint {
        /// Passes `U ≥ 1` over each block (`U − 1` jumps back per block).
        resample_count: usize,
        /// Grid steps `J ≥ 1` per block (the length of a jump back).
        jump_length: usize,
    },
}

impl InpaintMethod {
    /// Checks the counts; errors name the field under `path`.
    pub fn validate(&self, path: &str) -> Result<(), SamplerError> {
        if let InpaintMethod::Repaint {
            resample_count,
            jump_length,
        } = *self
        {
            if resample_count == 0 || resample_count > MAX_RESAMPLE_COUNT {
                return Err(invalid(
                    format!("{path}.resample_count"),
                    resample_count,
                    format!("in 1..={MAX_RESAMPLE_COUNT}"),
                ));
            }
            if jump_length == 0 {
                return Err(invalid(format!("{path}.jump_length"), jump_length, "≥ 1"));
            }
        }
        Ok(())
    }

    /// `(passes per block, steps per block)` over a grid of `steps` steps.
    fn blocks(&self, steps: usize) -> (usize, usize) {
        match *self {
            InpaintMethod::Replacement => (1, steps.max(1)),
            InpaintMethod::Repaint {
                resample_count,
                jump_length,
            } => (resample_count, jump_length),
        }
    }

    /// Grid steps taken over a grid of `steps` steps (`U · steps` for RePaint: every block is
    /// traversed `U` times, the last one included).
    pub fn steps_taken(&self, steps: usize) -> usize {
        self.blocks(steps).0 * steps
    }
}

/// Upper bound of `resample_count` (RePaint uses 10–20).
pub const MAX_RESAMPLE_COUNT: usize = 1000;

/// What to impose: a mask of known coordinates (`known[j]` for `j < dim`), the known values of
/// every row (`values`, `n × dim` row-major; only the known coordinates are read) and the
/// method. `n = values.len() / dim` rows are sampled.
#[derive(Debug, Clone, PartialEq)]
pub struct Inpainting {
    /// `known[j]`: coordinate `j` is given.
    pub known: Vec<bool>,
    /// `n × dim` rows holding the known values `x₀[K]`.
    pub values: Vec<f32>,
    /// Replacement or RePaint.
    pub method: InpaintMethod,
}

impl Inpainting {
    /// Checks the mask, the values and the method against the row dimension `dim`.
    pub(crate) fn validate(&self, dim: usize) -> Result<usize, SamplerError> {
        if self.known.len() != dim {
            return Err(invalid(
                "inpainting.known.len()",
                self.known.len(),
                format!("= model.dim() = {dim}"),
            ));
        }
        if !self.known.iter().any(|&k| k) || self.known.iter().all(|&k| k) {
            return Err(invalid(
                "inpainting.known",
                &self.known,
                "at least one known and one unknown coordinate",
            ));
        }
        if self.values.is_empty() || !self.values.len().is_multiple_of(dim) {
            return Err(invalid(
                "inpainting.values.len()",
                self.values.len(),
                format!("a positive multiple of model.dim() = {dim}"),
            ));
        }
        if let Some(i) = self.values.iter().position(|v| !v.is_finite()) {
            return Err(invalid(
                format!("inpainting.values[{i}]"),
                self.values[i],
                "finite",
            ));
        }
        self.method.validate("inpainting.method")?;
        Ok(self.values.len() / dim)
    }
}

/// The seeds of pass `pass` of a block: `(solver noise, inpainting noise)`.
pub(crate) fn pass_seeds(seed: u64, pass: usize) -> (u64, u64) {
    let solver = if pass == 0 {
        seed
    } else {
        derived_seed(seed, &format!("repaint/pass/{pass}"))
    };
    (solver, derived_seed(solver, "inpainting"))
}

/// The block structure of a run: `(passes per block, steps per block)`.
pub(crate) fn block_layout(inpainting: &Inpainting, steps: usize) -> (usize, usize) {
    inpainting.method.blocks(steps)
}

/// `x[K] ← m x₀[K] + σ z` with `z` from `(seed, event)`; `noise` is scratch of `x.len()`.
pub(crate) fn replace_known(
    inpainting: &Inpainting,
    x: &mut [f32],
    (m, sigma): (f64, f64),
    seed: u64,
    event: NoiseEvent,
    noise: &mut [f32],
) {
    let dim = inpainting.known.len();
    fill_scaled_normal(noise, sigma, dim, seed, event);
    for ((row, known), z) in x
        .chunks_exact_mut(dim)
        .zip(inpainting.values.chunks_exact(dim))
        .zip(noise.chunks_exact(dim))
    {
        for j in 0..dim {
            if inpainting.known[j] {
                row[j] = (m * f64::from(known[j]) + f64::from(z[j])) as f32;
            }
        }
    }
}

/// `x[K] ← x₀[K]` exactly.
pub(crate) fn set_known(inpainting: &Inpainting, x: &mut [f32]) {
    let dim = inpainting.known.len();
    for (row, known) in x
        .chunks_exact_mut(dim)
        .zip(inpainting.values.chunks_exact(dim))
    {
        for j in 0..dim {
            if inpainting.known[j] {
                row[j] = known[j];
            }
        }
    }
}

/// The forward transition from `t_b` back up to `t_a > t_b` on the whole state:
/// `x ← a x + √(σ_a² − a² σ_b²) z`, `a = m(t_a)/m(t_b)`, given the kernels `(m, σ)` at both.
pub(crate) fn jump_back(
    x: &mut [f32],
    (m_a, sig_a): (f64, f64),
    (m_b, sig_b): (f64, f64),
    dim: usize,
    seed: u64,
    event: NoiseEvent,
    noise: &mut [f32],
) {
    let a = m_a / m_b;
    let c = (sig_a * sig_a - a * a * sig_b * sig_b).max(0.0).sqrt();
    fill_scaled_normal(noise, c, dim, seed, event);
    for (xi, &z) in x.iter_mut().zip(noise.iter()) {
        *xi = (a * f64::from(*xi) + f64::from(z)) as f32;
    }
}
