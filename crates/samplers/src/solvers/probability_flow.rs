//! Euler and Heun on the probability-flow ODE `dx/dt = v(x,t) = f(x,t) − ½ g² s(x,t)`.

use super::{zeroed, GridStep, Solver, StepContext};
use crate::error::SamplerError;

/// Euler on the probability-flow ODE, 1 evaluation per step: `x ← x − v(x,t) Δt`.
#[derive(Debug, Clone, Default)]
pub struct ProbabilityFlowEuler {
    drift: Vec<f32>,
}

impl ProbabilityFlowEuler {
    /// The solver (no parameters).
    pub fn new() -> Self {
        Self::default()
    }
}

impl Solver for ProbabilityFlowEuler {
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
        let dt = step.t - step.t_next;
        ctx.probability_flow_drift(x, step.t, &mut self.drift);
        for (xi, &v) in x.iter_mut().zip(&self.drift) {
            *xi = (f64::from(*xi) - dt * f64::from(v)) as f32;
        }
        Ok(())
    }
}

/// Heun (trapezoidal predictor–corrector) on the probability-flow ODE, 2 evaluations per step:
/// `x̃ = x − v(x,t)Δt`, `x ← x − ½ [v(x,t) + v(x̃,t−Δt)] Δt`.
#[derive(Debug, Clone, Default)]
pub struct ProbabilityFlowHeun {
    drift: Vec<f32>,
    drift2: Vec<f32>,
    x_tilde: Vec<f32>,
}

impl ProbabilityFlowHeun {
    /// The solver (no parameters).
    pub fn new() -> Self {
        Self::default()
    }
}

impl Solver for ProbabilityFlowHeun {
    fn validate(&self) -> Result<(), SamplerError> {
        Ok(())
    }

    fn nfe_per_step(&self) -> Option<usize> {
        Some(2)
    }

    fn nfe_rule(&self) -> String {
        "2 per step".into()
    }

    fn start(&mut self, x: &[f32], _dim: usize) {
        for b in [&mut self.drift, &mut self.drift2, &mut self.x_tilde] {
            zeroed(b, x.len());
        }
    }

    fn step(
        &mut self,
        ctx: &mut StepContext<'_>,
        x: &mut [f32],
        step: GridStep,
    ) -> Result<(), SamplerError> {
        let dt = step.t - step.t_next;
        ctx.probability_flow_drift(x, step.t, &mut self.drift);
        for ((xt, &xi), &v) in self.x_tilde.iter_mut().zip(x.iter()).zip(&self.drift) {
            *xt = (f64::from(xi) - dt * f64::from(v)) as f32;
        }
        ctx.probability_flow_drift(&self.x_tilde, step.t_next, &mut self.drift2);
        let half = 0.5 * dt;
        for ((xi, &v1), &v2) in x.iter_mut().zip(&self.drift).zip(&self.drift2) {
            *xi = (f64::from(*xi) - half * (f64::from(v1) + f64::from(v2))) as f32;
        }
        Ok(())
    }
}
