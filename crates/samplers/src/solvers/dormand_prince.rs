//! Adaptive Dormand–Prince 5(4) on the probability-flow ODE (the integrator is in `ode.rs`).

use std::fmt;

use super::{GridStep, Solver, StepContext};
use crate::error::{check, SamplerError};
use crate::ode::DormandPrince as Dp45;

/// Adaptive Dormand–Prince 5(4) (FSAL, 6 evaluations per attempted step) on the
/// probability-flow ODE `dx/dt = a(t) x − ½ g(t)² s(x, t)`, through every grid time in turn.
/// The state is integrated in f64 (kept by the solver across grid steps; `x` receives its f32
/// cast after each one), the score is evaluated at the f32 cast of the stage states, and the
/// step size and FSAL stage carry over from one grid step to the next.
/// See [`Method::DormandPrince`](crate::Method::DormandPrince).
pub struct DormandPrince {
    rtol: f64,
    atol: f64,
    /// The f64 state.
    y: Vec<f64>,
    /// f32 cast of a stage state, and its score.
    xf: Vec<f32>,
    sf: Vec<f32>,
    dp: Option<Dp45>,
}

impl DormandPrince {
    /// Tolerances `rtol > 0`, `atol > 0`.
    pub fn new(rtol: f64, atol: f64) -> Self {
        Self {
            rtol,
            atol,
            y: Vec::new(),
            xf: Vec::new(),
            sf: Vec::new(),
            dp: None,
        }
    }
}

impl fmt::Debug for DormandPrince {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DormandPrince")
            .field("rtol", &self.rtol)
            .field("atol", &self.atol)
            .finish_non_exhaustive()
    }
}

impl Solver for DormandPrince {
    fn validate(&self) -> Result<(), SamplerError> {
        check("method.rtol", self.rtol, "> 0", |v| v > 0.0)?;
        check("method.atol", self.atol, "> 0", |v| v > 0.0)
    }

    fn nfe(&self, _steps: usize) -> Option<usize> {
        None
    }

    fn nfe_per_step(&self) -> Option<usize> {
        None
    }

    fn steps_for_nfe(&self, _budget: usize) -> Option<usize> {
        None
    }

    fn nfe_rule(&self) -> String {
        "adaptive: 6 per attempted step (FSAL), as reported".into()
    }

    fn start(&mut self, x: &[f32], _dim: usize) {
        let len = x.len();
        self.y = x.iter().map(|&v| f64::from(v)).collect();
        self.xf = vec![0.0; len];
        self.sf = vec![0.0; len];
        self.dp = Some(Dp45::new(len, self.rtol, self.atol));
    }

    /// Takes over the entries of `x` that differ from the f32 cast of the f64 state (the others
    /// keep their f64 precision); the step-size controller is kept.
    fn state_overwritten(&mut self, x: &[f32]) {
        for (yi, &xi) in self.y.iter_mut().zip(x) {
            if *yi as f32 != xi {
                *yi = f64::from(xi);
            }
        }
    }

    fn step(
        &mut self,
        ctx: &mut StepContext<'_>,
        x: &mut [f32],
        step: GridStep,
    ) -> Result<(), SamplerError> {
        let Self { y, xf, sf, dp, .. } = self;
        let dp = dp.as_mut().expect("start() before step()");
        // v(x, t) = a(t) x − ½ g(t)² s(x, t), the score evaluated at the f32 cast of the state.
        let mut rhs = |t: f64, y: &[f64], out: &mut [f64]| {
            for (a, &b) in xf.iter_mut().zip(y) {
                *a = b as f32;
            }
            ctx.score(xf, t, sf);
            let (a, g) = (ctx.drift_coef(t), ctx.diffusion(t));
            let c = -0.5 * g * g;
            for ((o, &yi), &si) in out.iter_mut().zip(y).zip(sf.iter()) {
                *o = a * yi + c * f64::from(si);
            }
        };
        dp.integrate(&mut rhs, y, step.t, step.t_next)?;
        for (xi, &yi) in x.iter_mut().zip(y.iter()) {
            *xi = yi as f32;
        }
        Ok(())
    }
}
