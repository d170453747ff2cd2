//! Euler–Maruyama on the reverse SDE.

use super::{zeroed, GridStep, Solver, StepContext};
use crate::error::SamplerError;
use crate::noise::NoiseEvent;

/// Euler–Maruyama on the reverse SDE, 1 evaluation per step, noise event `(step, 0)`:
/// `x ← x − [f(x,t) − g² s(x,t)] Δt + g(t) √Δt z`.
#[derive(Debug, Clone, Default)]
pub struct EulerMaruyama {
    drift: Vec<f32>,
}

impl EulerMaruyama {
    /// The solver (no parameters).
    pub fn new() -> Self {
        Self::default()
    }
}

/// One reverse-SDE Euler–Maruyama step from `t` to `t_next` with noise `event`, using `drift`
/// as the buffer of `f − g² s` (shared with the predictor–corrector's predictor).
pub(crate) fn euler_maruyama_step(
    ctx: &mut StepContext<'_>,
    x: &mut [f32],
    drift: &mut [f32],
    (t, t_next): (f64, f64),
    event: NoiseEvent,
) {
    let dt = t - t_next;
    ctx.reverse_drift(x, t, drift);
    let noise = ctx.diffusion(t) * dt.sqrt();
    ctx.add_scaled_and_noise(x, drift, -dt, noise, event);
}

impl Solver for EulerMaruyama {
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
        zeroed(&mut self.drift, x.len());
    }

    fn step(
        &mut self,
        ctx: &mut StepContext<'_>,
        x: &mut [f32],
        step: GridStep,
    ) -> Result<(), SamplerError> {
        euler_maruyama_step(
            ctx,
            x,
            &mut self.drift,
            (step.t, step.t_next),
            step.event(0),
        );
        Ok(())
    }
}
