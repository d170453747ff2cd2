//! DPM-Solver++(3M), ODE (`η = 0`, `κ = 1`) and SDE.

use super::{log_snr_step, x0_hat, zeroed, GridStep, Solver, StepContext};
use crate::error::{check, SamplerError};

/// DPM-Solver++(3M) (Lu et al. 2022; SDE form after k-diffusion's `sample_dpmpp_3m_sde`),
/// 1 evaluation per step, noise event `(step, 0)` when `η > 0`. In `λ = ln(m/σ)`, with
/// `h = λ' − λ`, `φ₁, φ₂, φ₃` at `h_η = (1 + η) h` and `D = x̂₀(x, t)`:
/// `x' = (σ'/σ) e^{−ηh} x + m' [φ₁ D + φ₂ d₁ − 2κ φ₃ d₂] + σ' √(1 − e^{−2ηh}) z`, `d₁, d₂`
/// the divided differences of `(D, D₋₁, D₋₂)` (first step first order, second step second
/// order). The solver keeps `D₋₁`, `D₋₂` (f32) and `h₋₁`, `h₋₂`. See
/// [`Method::DpmSolverPp3M`](crate::Method::DpmSolverPp3M) and
/// [`Method::DpmSolverPp3MSde`](crate::Method::DpmSolverPp3MSde) for the formulas.
#[derive(Debug, Clone)]
pub struct DpmSolverPp3M {
    eta: f64,
    curvature: f64,
    score: Vec<f32>,
    /// The noise of the step (zeros when `η = 0`).
    noise: Vec<f32>,
    /// `x̂₀` one and two steps back.
    prev_x0: [Vec<f32>; 2],
    /// `[h₋₁, h₋₂]` (`None` before the start).
    h_prev: [Option<f64>; 2],
}

impl DpmSolverPp3M {
    /// Stochasticity `eta ≥ 0` and curvature weight `curvature ∈ [0, 1]` (`(0, 1)`: the ODE
    /// solver).
    pub fn new(eta: f64, curvature: f64) -> Self {
        Self {
            eta,
            curvature,
            score: Vec::new(),
            noise: Vec::new(),
            prev_x0: [Vec::new(), Vec::new()],
            h_prev: [None, None],
        }
    }
}

impl Solver for DpmSolverPp3M {
    fn validate(&self) -> Result<(), SamplerError> {
        check("method.eta", self.eta, "finite and ≥ 0", |v| {
            v.is_finite() && v >= 0.0
        })?;
        check("method.curvature", self.curvature, "in [0, 1]", |v| {
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
        let [p1, p2] = &mut self.prev_x0;
        for b in [&mut self.score, &mut self.noise, p1, p2] {
            zeroed(b, x.len());
        }
        self.h_prev = [None, None];
    }

    fn step(
        &mut self,
        ctx: &mut StepContext<'_>,
        x: &mut [f32],
        step: GridStep,
    ) -> Result<(), SamplerError> {
        let (eta, curvature) = (self.eta, self.curvature);
        let ((m, sig), (m2, sig2)) = (ctx.kernel(step.t), ctx.kernel(step.t_next));
        let h = log_snr_step((m, sig), (m2, sig2));
        ctx.score(x, step.t, &mut self.score);
        let (var, inv_m) = (sig * sig, 1.0 / m);
        // φ's at h_η = (1 + η) h; the divided differences below stay in units of h.
        let h_eta = (1.0 + eta) * h;
        let a = sig2 / sig * (-eta * h).exp();
        let noise = sig2 * (-(-2.0 * eta * h).exp_m1()).max(0.0).sqrt();
        let phi1 = -(-h_eta).exp_m1();
        let phi2 = (-h_eta).exp_m1() / h_eta + 1.0;
        let phi3 = phi2 / h_eta - 0.5;
        // x' = a x + m' [φ₁ D + φ₂ d₁ − 2κ φ₃ d₂], d₁ and d₂ linear in (D, D₋₁, D₋₂):
        // x' = a x + m' [c0 D + c1 D₋₁ + c2 D₋₂].
        let (c0, c1, c2) = match self.h_prev {
            [None, _] => (phi1, 0.0, 0.0),
            [Some(h1), None] => {
                // d₁ = (D − D₋₁)/r₀.
                let q = phi2 * h / h1;
                (phi1 + q, -q, 0.0)
            }
            [Some(h1), Some(h2)] => {
                let (r0, r1) = (h1 / h, h2 / h);
                // δ₀ = (D − D₋₁)/r₀, δ₁ = (D₋₁ − D₋₂)/r₁; as coefficients of (D, D₋₁, D₋₂):
                let d0 = [1.0 / r0, -1.0 / r0, 0.0];
                let d1 = [0.0, 1.0 / r1, -1.0 / r1];
                let w = r0 / (r0 + r1);
                let u = 1.0 / (r0 + r1);
                let c = |j: usize| {
                    let diff = d0[j] - d1[j];
                    phi2 * (d0[j] + diff * w) - 2.0 * curvature * phi3 * diff * u
                };
                (phi1 + c(0), c(1), c(2))
            }
        };
        let (c0, c1, c2) = (m2 * c0, m2 * c1, m2 * c2);
        if noise > 0.0 {
            ctx.fill_noise(&mut self.noise, noise, step.event(0));
        } else {
            self.noise.fill(0.0);
        }
        let [prev1, prev2] = &mut self.prev_x0;
        for ((((xi, &s), p1), p2), &z) in x
            .iter_mut()
            .zip(&self.score)
            .zip(prev1.iter_mut())
            .zip(prev2.iter_mut())
            .zip(&self.noise)
        {
            let xv = f64::from(*xi);
            let x0 = x0_hat(xv, f64::from(s), var, inv_m);
            let (d1, d2) = (f64::from(*p1), f64::from(*p2));
            *p2 = *p1;
            *p1 = x0 as f32;
            *xi = (a * xv + c0 * x0 + c1 * d1 + c2 * d2 + f64::from(z)) as f32;
        }
        self.h_prev = [Some(h), self.h_prev[0]];
        Ok(())
    }
}
