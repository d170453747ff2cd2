//! DPM-Solver++(2M), ODE (`η = 0`) and SDE (`η > 0`).

use super::{log_snr_step, x0_hat, zeroed, GridStep, Solver, StepContext};
use crate::error::{check, SamplerError};

/// DPM-Solver++(2M) (Lu et al. 2022; SDE form after k-diffusion's `sample_dpmpp_2m_sde`,
/// midpoint), multistep, data prediction, 1 evaluation per step, noise event `(step, 0)` when
/// `η > 0`. With `λ = ln(m/σ)`, `h = λ' − λ`, `D = x̂₀(x, t)`:
/// `x' = (σ'/σ) e^{−ηh} x + m' (1 − e^{−(1+η)h}) D̃ + σ' √(1 − e^{−2ηh}) z`,
/// `D̃ = D` (first step) or `(1 + 1/(2r)) D − 1/(2r) D₋₁`, `r = h₋₁/h`; with `η = 0` the ODE
/// step `x' = (σ'/σ) x − m' (e^{−h} − 1) D̃` (no noise drawn). The solver keeps `D₋₁` (f32,
/// one per batch element) and `h₋₁`. See [`Method::DpmSolverPp2M`](crate::Method::DpmSolverPp2M)
/// and [`Method::DpmSolverPp2MSde`](crate::Method::DpmSolverPp2MSde).
#[derive(Debug, Clone)]
pub struct DpmSolverPp2M {
    eta: f64,
    score: Vec<f32>,
    noise: Vec<f32>,
    /// `x̂₀` of the previous step.
    prev_x0: Vec<f32>,
    /// `h` of the previous step (`None` before the first).
    h_prev: Option<f64>,
}

impl DpmSolverPp2M {
    /// Stochasticity `eta ≥ 0` (0: the ODE solver).
    pub fn new(eta: f64) -> Self {
        Self {
            eta,
            score: Vec::new(),
            noise: Vec::new(),
            prev_x0: Vec::new(),
            h_prev: None,
        }
    }
}

impl Solver for DpmSolverPp2M {
    fn validate(&self) -> Result<(), SamplerError> {
        check("method.eta", self.eta, "finite and ≥ 0", |v| {
            v.is_finite() && v >= 0.0
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
        zeroed(&mut self.prev_x0, x.len());
        zeroed(&mut self.noise, if self.eta > 0.0 { x.len() } else { 0 });
        self.h_prev = None;
    }

    fn step(
        &mut self,
        ctx: &mut StepContext<'_>,
        x: &mut [f32],
        step: GridStep,
    ) -> Result<(), SamplerError> {
        let ((m, sig), (m2, sig2)) = (ctx.kernel(step.t), ctx.kernel(step.t_next));
        let h = log_snr_step((m, sig), (m2, sig2));
        ctx.score(x, step.t, &mut self.score);
        let (var, inv_m) = (sig * sig, 1.0 / m);
        let eta_h = self.eta * h;
        let a = sig2 / sig * (-eta_h).exp();
        let c = -m2 * (-h - eta_h).exp_m1();
        let noise = sig2 * (-(-2.0 * eta_h).exp_m1()).max(0.0).sqrt();
        // D̃ = w_now x̂₀ + w_prev x̂₀_prev.
        let (w_now, w_prev) = match self.h_prev {
            None => (1.0, 0.0),
            Some(hp) => {
                let half_inv_r = 0.5 * h / hp;
                (1.0 + half_inv_r, -half_inv_r)
            }
        };
        let noisy = noise > 0.0;
        if noisy {
            ctx.fill_noise(&mut self.noise, noise, step.event(0));
        }
        for (r, ((xi, &s), prev)) in x
            .iter_mut()
            .zip(&self.score)
            .zip(self.prev_x0.iter_mut())
            .enumerate()
        {
            let xv = f64::from(*xi);
            let x0 = x0_hat(xv, f64::from(s), var, inv_m);
            let d = w_now * x0 + w_prev * f64::from(*prev);
            *prev = x0 as f32;
            let mut v = a * xv + c * d;
            if noisy {
                v += f64::from(self.noise[r]);
            }
            *xi = v as f32;
        }
        self.h_prev = Some(h);
        Ok(())
    }
}
