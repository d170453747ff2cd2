//! DDPM ancestral sampling with the schedule the grid induces on the kernel.

use super::{zeroed, GridStep, Solver, StepContext};
use crate::ddpm::DdpmVariance;
use crate::error::SamplerError;

/// DDPM ancestral step from `t` to `t'`, 1 evaluation per step, noise event `(step, 0)`: with
/// `a = m/m'`, `b² = σ² − a² σ'²`, `x' = (x + b² s(x,t)) / a + √β̃ z`, `β̃ = b²` or
/// `b² σ'²/σ²`. See [`Method::DdpmAncestral`](crate::Method::DdpmAncestral).
#[derive(Debug, Clone)]
pub struct DdpmAncestral {
    variance: DdpmVariance,
    score: Vec<f32>,
}

impl DdpmAncestral {
    /// Ancestral sampling with reverse variance `variance`.
    pub fn new(variance: DdpmVariance) -> Self {
        Self {
            variance,
            score: Vec::new(),
        }
    }
}

impl Solver for DdpmAncestral {
    fn validate(&self) -> Result<(), SamplerError> {
        Ok(())
    }

    fn nfe_per_step(&self) -> Option<usize> {
        Some(1)
    }

    fn nfe_rule(&self) -> String {
        "1 per step".into()
    }

    fn start(&mut self, x: &[f32], _dim: usize) {
        zeroed(&mut self.score, x.len());
    }

    fn step(
        &mut self,
        ctx: &mut StepContext<'_>,
        x: &mut [f32],
        step: GridStep,
    ) -> Result<(), SamplerError> {
        ctx.score(x, step.t, &mut self.score);
        let ((m, sig), (m2, sig2)) = (ctx.kernel(step.t), ctx.kernel(step.t_next));
        let a = m / m2;
        let b2 = (sig * sig - a * a * sig2 * sig2).max(0.0);
        let var = match self.variance {
            DdpmVariance::Beta => b2,
            DdpmVariance::Posterior => b2 * (sig2 * sig2) / (sig * sig),
        };
        ctx.affine_and_noise(x, &self.score, (1.0 / a, b2 / a, var.sqrt()), step.event(0));
        Ok(())
    }
}
