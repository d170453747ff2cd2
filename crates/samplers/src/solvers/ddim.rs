//! DDIM for the kernel `(m, σ)`.

use super::{zeroed, GridStep, Solver, StepContext};
use crate::error::{check, SamplerError};

/// DDIM (Song, Meng & Ermon) from `t` to `t'`, 1 evaluation per step, noise event `(step, 0)`
/// when `c > 0`: with `x̂₀ = (x + σ² s)/m`, `ε̂ = −σ s`,
/// `x' = m' x̂₀ + √(σ'² − c²) ε̂ + c z`, `c = η σ' √(1 − (m σ'/(m' σ))²)`; i.e.
/// `x' = (m'/m) x + (m' σ²/m − σ √(σ'² − c²)) s + c z`. See [`Method::Ddim`](crate::Method::Ddim).
#[derive(Debug, Clone)]
pub struct Ddim {
    eta: f64,
    score: Vec<f32>,
}

impl Ddim {
    /// DDIM with stochasticity `eta ∈ [0, 1]`.
    pub fn new(eta: f64) -> Self {
        Self {
            eta,
            score: Vec::new(),
        }
    }
}

impl Solver for Ddim {
    fn validate(&self) -> Result<(), SamplerError> {
        check("method.eta", self.eta, "in [0, 1]", |v| {
            (0.0..=1.0).contains(&v)
        })
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
        let r = (m * sig2) / (m2 * sig);
        let c = self.eta * sig2 * (1.0 - r * r).max(0.0).sqrt();
        let dir = (sig2 * sig2 - c * c).max(0.0).sqrt();
        let (a, b) = (m2 / m, m2 * sig * sig / m - sig * dir);
        if c > 0.0 {
            ctx.affine_and_noise(x, &self.score, (a, b, c), step.event(0));
        } else {
            for (xi, &s) in x.iter_mut().zip(&self.score) {
                *xi = (a * f64::from(*xi) + b * f64::from(s)) as f32;
            }
        }
        Ok(())
    }
}
