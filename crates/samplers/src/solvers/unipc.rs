//! UniPC (Zhao, Bai, Rao, Zhou & Lu 2023), order 2, variant bh2, data prediction.

use super::{log_snr_step, x0_hat, zeroed, GridStep, Solver, StepContext};
use crate::error::SamplerError;

/// UniPC-2 with `B(h) = e^{−h} − 1` ("bh2"; Zhao et al. 2023, "UniPC: A Unified
/// Predictor-Corrector Framework for Fast Sampling of Diffusion Models"; diffusers'
/// `UniPCMultistepScheduler` with `predict_x0 = True`, `solver_type = "bh2"`,
/// `solver_order = 2`), multistep data prediction in `λ = ln(m/σ)` for any affine forward SDE
/// `x_t = m(t) x₀ + σ(t) ε`, 1 evaluation per step, deterministic.
///
/// With `h_i = λ_{i+1} − λ_i`, `φ(h) = e^{−h} − 1` (`= B(h)` for bh2, so the `φ` and `B`
/// below are the same number), `x̃_i` the predicted state at `t_i` (`x̃_0 = x_0`) and
/// `D_i = x̂₀(x̃_i, t_i) = (x̃_i + σ_i² s(x̃_i, t_i))/m_i` (the one evaluation of step `i`):
///
/// - **UniC** (corrector, at the start of step `i ≥ 1`, reusing `D_i`): the corrected state
///   `x_i = (σ_i/σ_{i−1}) x_{i−1} − m_i φ(h) D_{i−1} − m_i B(h) [ρ₁ (D_{i−2} − D_{i−1})/r + ρ₂ (D_i − D_{i−1})]`,
///   `h = h_{i−1}`, `r = −h_{i−2}/h_{i−1}`, with `(ρ₁, ρ₂)` solving
///   `ρ₁ + ρ₂ = b₁`, `r ρ₁ + ρ₂ = b₂`, `b₁ = ψ₁/B(h)`, `b₂ = 2ψ₂/B(h)`,
///   `ψ₁ = φ(h)/(−h) − 1`, `ψ₂ = ψ₁/(−h) − ½` (UniC-2: `ρ → (1/12, 5/12)` as `h → 0` on an
///   even grid, Adams–Moulton's `(5, 8, −1)/12`). At `i = 1` (the previous predictor was first
///   order) UniC-1: `ρ₂ = ½` and no `D_{i−2}` term (the trapezoidal rule).
/// - **UniP** (predictor, from the corrected `x_i`): UniP-2 with diffusers' `ρ = ½`,
///   `x̃_{i+1} = (σ_{i+1}/σ_i) x_i − m_{i+1} φ(h_i) [D_i + (D_i − D_{i−1}) h_i/(2h_{i−1})]`,
///   which is DPM-Solver++(2M)'s step; the first step is UniP-1,
///   `x̃_1 = (σ_1/σ_0) x_0 − m_1 φ(h_0) D_0` (DDIM).
///
/// What this does at the ends, exactly: the first step is first order (diffusers' warm-up);
/// every later step, the last included, uses UniP-2 (diffusers' default `lower_order_final`
/// would drop the last predictor to first order; the UniPC reference code does that only below
/// 10 steps; we never do). The state after the last step is the predictor's `x̃_n`: a
/// corrector would need one more evaluation at `t_n`, so none is applied (in diffusers the
/// corrector of `x̃_n` would run in a step that never comes). Recorded frames and progress
/// likewise see the predicted states `x̃_{i+1}`. `final_denoise` evaluates Tweedie at `x̃_n`.
///
/// The corrector raises the order of accuracy by one (UniC-p is order p + 1), so the global
/// error is second order at least; the solver keeps `x_{i−1}`, `D_{i−1}`, `D_{i−2}` (f32) and
/// `σ_{i−1}`, `h_{i−1}`, `h_{i−2}`.
#[derive(Debug, Clone, Default)]
pub struct UniPc {
    score: Vec<f32>,
    /// The corrected state `x_{i−1}` at the start of the previous step.
    prev_x: Vec<f32>,
    /// `[D_{i−1}, D_{i−2}]`.
    prev_d: [Vec<f32>; 2],
    /// `σ_{i−1}`, `[h_{i−1}, h_{i−2}]`.
    prev_sig: f64,
    prev_h: [Option<f64>; 2],
}

impl UniPc {
    /// UniPC-2, bh2 (no parameters).
    pub fn new() -> Self {
        Self::default()
    }
}

/// Corrector coefficients `(e₀, e₁, e₂)` of `(D_i, D_{i−1}, D_{i−2})`, to be multiplied by
/// `m_i`: `x_i = (σ_i/σ_{i−1}) x_{i−1} + m_i (e₀ D_i + e₁ D_{i−1} + e₂ D_{i−2})`, for
/// `h = h_{i−1}` and, for UniC-2, `h₋₁ = h_{i−2}`.
fn corrector_coefficients(h: f64, h_before: Option<f64>) -> [f64; 3] {
    let hh = -h;
    let phi = hh.exp_m1();
    let b_h = phi;
    match h_before {
        None => [-b_h * 0.5, -(phi - b_h * 0.5), 0.0],
        Some(hb) => {
            let r = -hb / h;
            let psi1 = phi / hh - 1.0;
            let psi2 = psi1 / hh - 0.5;
            let (b1, b2) = (psi1 / b_h, 2.0 * psi2 / b_h);
            let rho1 = (b1 - b2) / (1.0 - r);
            let rho2 = b1 - rho1;
            // −[φ D₋₁ + B (ρ₁ (D₋₂ − D₋₁)/r + ρ₂ (D − D₋₁))].
            [
                -b_h * rho2,
                -(phi - b_h * rho1 / r - b_h * rho2),
                -b_h * rho1 / r,
            ]
        }
    }
}

impl Solver for UniPc {
    fn validate(&self) -> Result<(), SamplerError> {
        Ok(())
    }

    fn nfe_per_step(&self) -> Option<usize> {
        Some(1)
    }

    fn nfe_rule(&self) -> String {
        "1 per step (the corrector reuses the next step's evaluation)".into()
    }

    fn start(&mut self, x: &[f32], _dim: usize) {
        let [d1, d2] = &mut self.prev_d;
        for b in [&mut self.score, &mut self.prev_x, d1, d2] {
            zeroed(b, x.len());
        }
        self.prev_sig = f64::NAN;
        self.prev_h = [None, None];
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
        // Corrector: x_i = a_c x_{i−1} + c0 D_i + c1 D_{i−1} + c2 D_{i−2} (not on step 0).
        let correct = self.prev_h[0].map(|hp| {
            let e = corrector_coefficients(hp, self.prev_h[1]);
            (sig / self.prev_sig, m * e[0], m * e[1], m * e[2])
        });
        // Predictor: x̃_{i+1} = a_p x_i + p0 D_i + p1 D_{i−1}.
        let phi = (-h).exp_m1();
        let a_p = sig2 / sig;
        let (p0, p1) = match self.prev_h[0] {
            None => (-m2 * phi, 0.0),
            Some(hp) => {
                let half_inv_r = 0.5 * h / hp;
                (-m2 * phi * (1.0 + half_inv_r), m2 * phi * half_inv_r)
            }
        };
        let [prev1, prev2] = &mut self.prev_d;
        for ((((xi, &s), xp), d1), d2) in x
            .iter_mut()
            .zip(&self.score)
            .zip(self.prev_x.iter_mut())
            .zip(prev1.iter_mut())
            .zip(prev2.iter_mut())
        {
            let xv = f64::from(*xi);
            let d = x0_hat(xv, f64::from(s), var, inv_m);
            let (dm1, dm2) = (f64::from(*d1), f64::from(*d2));
            let xc = match correct {
                None => *xi,
                Some((a_c, c0, c1, c2)) => {
                    (a_c * f64::from(*xp) + c0 * d + c1 * dm1 + c2 * dm2) as f32
                }
            };
            *xp = xc;
            *d2 = *d1;
            *d1 = d as f32;
            *xi = (a_p * f64::from(xc) + p0 * d + p1 * dm1) as f32;
        }
        self.prev_sig = sig;
        self.prev_h = [Some(h), self.prev_h[0]];
        Ok(())
    }
}
