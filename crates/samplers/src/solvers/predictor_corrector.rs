//! Song et al.'s predictor–corrector sampler.

use rayon::prelude::*;

use super::euler_maruyama::euler_maruyama_step;
use super::{zeroed, GridStep, Solver, StepContext};
use crate::error::{check, SamplerError};
use crate::noise::{NoiseEvent, CHUNK_ROWS};

/// Song et al.'s predictor–corrector: at each grid time `t`, `corrector_steps` Langevin
/// corrector steps (score_sde's `LangevinCorrector`, noise events `(step, j)`), then one
/// reverse-SDE Euler–Maruyama predictor step to `t'` (noise event `(step, corrector_steps)`);
/// `corrector_steps + 1` evaluations per step.
///
/// Corrector: `x ← x + ε s(x,t) + √(2ε) z` with `ε = 2 α (r ‖z‖ / ‖s‖)²`, where `‖·‖` are
/// per-row Euclidean norms averaged over the batch and `α = (m(t) / m(t'))²` (`1 − β(t)Δt` to
/// first order for VP/sub-VP, `1` for VE). If the mean score norm is 0, `ε = 0`.
#[derive(Debug, Clone)]
pub struct PredictorCorrector {
    corrector_steps: usize,
    snr: f64,
    drift: Vec<f32>,
    z: Vec<f32>,
    partials: Vec<[f64; 2]>,
}

impl PredictorCorrector {
    /// `corrector_steps` Langevin steps of target signal-to-noise ratio `snr` per grid time.
    pub fn new(corrector_steps: usize, snr: f64) -> Self {
        Self {
            corrector_steps,
            snr,
            drift: Vec::new(),
            z: Vec::new(),
            partials: Vec::new(),
        }
    }

    /// The Langevin corrector at `t` (see the type's doc).
    fn langevin_correct(
        &mut self,
        ctx: &mut StepContext<'_>,
        x: &mut [f32],
        (t, t_next): (f64, f64),
        event: NoiseEvent,
    ) {
        ctx.score(x, t, &mut self.drift);
        ctx.fill_noise(&mut self.z, 1.0, event);
        let (dim, rows) = (ctx.dim(), CHUNK_ROWS * ctx.dim());
        self.partials
            .par_iter_mut()
            .zip(self.drift.par_chunks(rows).zip(self.z.par_chunks(rows)))
            .for_each(|(p, (s, z))| {
                *p = [row_norm_sum(s, dim), row_norm_sum(z, dim)];
            });
        // Summed in chunk order: the same for any thread count.
        let (sum_s, sum_z) = self
            .partials
            .iter()
            .fold((0.0, 0.0), |(a, b), p| (a + p[0], b + p[1]));
        let ratio = ctx.mean_coef(t) / ctx.mean_coef(t_next);
        let alpha = ratio * ratio;
        let eps = if sum_s > 0.0 {
            let r = self.snr * sum_z / sum_s;
            2.0 * alpha * r * r
        } else {
            0.0
        };
        let c = (2.0 * eps).sqrt();
        for ((xi, &s), &z) in x.iter_mut().zip(&self.drift).zip(&self.z) {
            *xi = (f64::from(*xi) + eps * f64::from(s) + c * f64::from(z)) as f32;
        }
    }
}

impl Solver for PredictorCorrector {
    fn validate(&self) -> Result<(), SamplerError> {
        check("method.snr", self.snr, "> 0", |v| v > 0.0)?;
        if self.corrector_steps >= u32::MAX as usize {
            return Err(crate::error::invalid(
                "method.corrector_steps",
                self.corrector_steps,
                "< 2³²",
            ));
        }
        Ok(())
    }

    fn nfe_per_step(&self) -> Option<usize> {
        Some(self.corrector_steps + 1)
    }

    fn nfe_rule(&self) -> String {
        format!(
            "{} per step ({} corrector + 1 predictor)",
            self.corrector_steps + 1,
            self.corrector_steps
        )
    }

    fn start(&mut self, x: &[f32], dim: usize) {
        zeroed(&mut self.drift, x.len());
        zeroed(&mut self.z, x.len());
        self.partials = vec![[0.0; 2]; (x.len() / dim).div_ceil(CHUNK_ROWS)];
    }

    fn step(
        &mut self,
        ctx: &mut StepContext<'_>,
        x: &mut [f32],
        step: GridStep,
    ) -> Result<(), SamplerError> {
        let times = (step.t, step.t_next);
        for j in 0..self.corrector_steps {
            self.langevin_correct(ctx, x, times, step.event(j));
        }
        let event = step.event(self.corrector_steps);
        euler_maruyama_step(ctx, x, &mut self.drift, times, event);
        Ok(())
    }
}

/// `Σ_rows ‖row‖₂` of a row-major block with `dim` columns, in f64.
fn row_norm_sum(block: &[f32], dim: usize) -> f64 {
    block
        .chunks_exact(dim)
        .map(|row| {
            row.iter()
                .map(|&v| f64::from(v) * f64::from(v))
                .sum::<f64>()
                .sqrt()
        })
        .sum()
}
