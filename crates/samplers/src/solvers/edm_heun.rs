//! Karras et al.'s (EDM) deterministic Heun sampler.

use super::{zeroed, GridStep, Solver, StepContext};
use crate::error::SamplerError;

/// EDM step from `t` to `t'` in `y = x/m`, `σ̂ = σ/m`, `Δ = σ̂' − σ̂`: `d = ε̂(x,t) = −σ s`,
/// `x̃ = m'(x/m + Δ d)`; on every step but the last `x' = m'(x/m + ½Δ(d + ε̂(x̃,t')))`
/// (2 evaluations), on the last `x' = x̃` (1 evaluation): `2n − 1` for `n` steps.
/// See [`Method::EdmHeun`](crate::Method::EdmHeun).
#[derive(Debug, Clone, Default)]
pub struct EdmHeun {
    s1: Vec<f32>,
    s2: Vec<f32>,
    x_tilde: Vec<f32>,
}

impl EdmHeun {
    /// The solver (no parameters).
    pub fn new() -> Self {
        Self::default()
    }
}

impl Solver for EdmHeun {
    fn validate(&self) -> Result<(), SamplerError> {
        Ok(())
    }

    fn nfe(&self, steps: usize) -> Option<usize> {
        Some((2 * steps).saturating_sub(1))
    }

    fn nfe_per_step(&self) -> Option<usize> {
        Some(2)
    }

    /// `2n − 1 ≤ budget` ⇔ `n ≤ ⌈budget/2⌉`.
    fn steps_for_nfe(&self, budget: usize) -> Option<usize> {
        let steps = budget.div_ceil(2);
        (steps >= 1).then_some(steps)
    }

    fn nfe_rule(&self) -> String {
        "2 per step, last step 1".into()
    }

    fn start(&mut self, x: &[f32], _dim: usize) {
        for b in [&mut self.s1, &mut self.s2, &mut self.x_tilde] {
            zeroed(b, x.len());
        }
    }

    fn step(
        &mut self,
        ctx: &mut StepContext<'_>,
        x: &mut [f32],
        step: GridStep,
    ) -> Result<(), SamplerError> {
        let (t, t_next) = (step.t, step.t_next);
        let ((m, sig), (m2, sig2)) = (ctx.kernel(t), ctx.kernel(t_next));
        let delta = sig2 / m2 - sig / m;
        ctx.score(x, t, &mut self.s1);
        // x̃ = (m'/m) x − m' Δ σ s.
        let (a, b1) = (m2 / m, -m2 * delta * sig);
        if step.is_last() {
            for (xi, &s) in x.iter_mut().zip(&self.s1) {
                *xi = (a * f64::from(*xi) + b1 * f64::from(s)) as f32;
            }
            return Ok(());
        }
        for ((xt, &xi), &s) in self.x_tilde.iter_mut().zip(x.iter()).zip(&self.s1) {
            *xt = (a * f64::from(xi) + b1 * f64::from(s)) as f32;
        }
        ctx.score(&self.x_tilde, t_next, &mut self.s2);
        let b2 = -m2 * delta * sig2;
        for ((xi, &s1), &s2) in x.iter_mut().zip(&self.s1).zip(&self.s2) {
            *xi = (a * f64::from(*xi) + 0.5 * (b1 * f64::from(s1) + b2 * f64::from(s2))) as f32;
        }
        Ok(())
    }
}
