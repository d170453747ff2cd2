//! The samplers, k-diffusion style: each is one short loop over the grid built from the step
//! primitives of [`Stepper`]. Adding a sampler = one [`Method`] variant + one function here.

use rayon::prelude::*;
use smoluchowski_sde::{ForwardSde, Score};

use crate::config::Method;
use crate::ddpm::DdpmVariance;
use crate::dynamics::{probability_flow_drift, reverse_drift};
use crate::error::SamplerError;
use crate::grid::TimeGrid;
use crate::noise::{
    add_scaled_and_noise, affine_and_noise, fill_scaled_normal, NoiseEvent, CHUNK_ROWS,
};
use crate::ode::DormandPrince;

/// Called after every step with the 1-based index of the grid time just reached and the state.
pub(crate) type OnStep<'c> = dyn FnMut(usize, &[f32]) + 'c;

/// Runs `method` over `grid`, moving `x` from `t_0 = T` to `t_n = t_eps`.
pub(crate) fn run<S, M>(
    k: &mut Stepper<'_, S, M>,
    method: Method,
    x: &mut [f32],
    grid: &TimeGrid,
    on_step: &mut OnStep<'_>,
) -> Result<(), SamplerError>
where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
{
    match method {
        Method::EulerMaruyama => euler_maruyama(k, x, grid, on_step),
        Method::ProbabilityFlowEuler => probability_flow_euler(k, x, grid, on_step),
        Method::ProbabilityFlowHeun => probability_flow_heun(k, x, grid, on_step),
        Method::PredictorCorrector {
            corrector_steps,
            snr,
        } => predictor_corrector(k, x, grid, corrector_steps, snr, on_step),
        Method::Ddim { eta } => ddim(k, x, grid, eta, on_step),
        Method::DdpmAncestral { variance } => ddpm_ancestral(k, x, grid, variance, on_step),
        Method::EdmHeun => edm_heun(k, x, grid, on_step),
        Method::DpmSolverPp2M => dpm_solver_pp_2m(k, x, grid, 0.0, on_step),
        Method::DpmSolverPp3M => dpm_solver_pp_3m(k, x, grid, 0.0, 1.0, on_step),
        Method::DpmSolverPp3MSde { eta, curvature } => {
            dpm_solver_pp_3m(k, x, grid, eta, curvature, on_step)
        }
        Method::DpmSolverPp2MSde { eta } => dpm_solver_pp_2m(k, x, grid, eta, on_step),
        Method::DormandPrince { rtol, atol } => {
            return dormand_prince(k, x, grid, rtol, atol, on_step)
        }
    }
    Ok(())
}

/// Euler–Maruyama on the reverse SDE.
fn euler_maruyama<S, M>(
    k: &mut Stepper<'_, S, M>,
    x: &mut [f32],
    grid: &TimeGrid,
    on_step: &mut OnStep<'_>,
) where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
{
    for (i, w) in grid.times().windows(2).enumerate() {
        k.euler_maruyama_step(x, w[0], w[1], NoiseEvent::step(i, 0));
        on_step(i + 1, x);
    }
}

/// Euler on the probability-flow ODE.
fn probability_flow_euler<S, M>(
    k: &mut Stepper<'_, S, M>,
    x: &mut [f32],
    grid: &TimeGrid,
    on_step: &mut OnStep<'_>,
) where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
{
    for (i, w) in grid.times().windows(2).enumerate() {
        k.probability_flow_euler_step(x, w[0], w[1]);
        on_step(i + 1, x);
    }
}

/// Heun on the probability-flow ODE.
fn probability_flow_heun<S, M>(
    k: &mut Stepper<'_, S, M>,
    x: &mut [f32],
    grid: &TimeGrid,
    on_step: &mut OnStep<'_>,
) where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
{
    for (i, w) in grid.times().windows(2).enumerate() {
        k.probability_flow_heun_step(x, w[0], w[1]);
        on_step(i + 1, x);
    }
}

/// Song et al.'s predictor–corrector: Langevin corrector steps at `t_i`, then an
/// Euler–Maruyama predictor step to `t_{i+1}`.
fn predictor_corrector<S, M>(
    k: &mut Stepper<'_, S, M>,
    x: &mut [f32],
    grid: &TimeGrid,
    corrector_steps: usize,
    snr: f64,
    on_step: &mut OnStep<'_>,
) where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
{
    for (i, w) in grid.times().windows(2).enumerate() {
        for j in 0..corrector_steps {
            k.langevin_correct(x, w[0], w[1], snr, NoiseEvent::step(i, j));
        }
        k.euler_maruyama_step(x, w[0], w[1], NoiseEvent::step(i, corrector_steps));
        on_step(i + 1, x);
    }
}

/// DDIM with stochasticity `eta` (noise event `(step, 0)` when `eta > 0`).
fn ddim<S, M>(
    k: &mut Stepper<'_, S, M>,
    x: &mut [f32],
    grid: &TimeGrid,
    eta: f64,
    on_step: &mut OnStep<'_>,
) where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
{
    for (i, w) in grid.times().windows(2).enumerate() {
        k.ddim_step(x, w[0], w[1], eta, NoiseEvent::step(i, 0));
        on_step(i + 1, x);
    }
}

/// DDPM ancestral sampling with the grid's kernel-induced schedule (noise event `(step, 0)`).
fn ddpm_ancestral<S, M>(
    k: &mut Stepper<'_, S, M>,
    x: &mut [f32],
    grid: &TimeGrid,
    variance: DdpmVariance,
    on_step: &mut OnStep<'_>,
) where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
{
    for (i, w) in grid.times().windows(2).enumerate() {
        k.ddpm_step(x, w[0], w[1], variance, NoiseEvent::step(i, 0));
        on_step(i + 1, x);
    }
}

/// EDM: Heun in `(y = x/m, σ̂ = σ/m)` on every step but the last, which is Euler.
fn edm_heun<S, M>(
    k: &mut Stepper<'_, S, M>,
    x: &mut [f32],
    grid: &TimeGrid,
    on_step: &mut OnStep<'_>,
) where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
{
    let n = grid.steps();
    for (i, w) in grid.times().windows(2).enumerate() {
        k.edm_heun_step(x, w[0], w[1], i + 1 < n);
        on_step(i + 1, x);
    }
}

/// DPM-Solver++(2M) (SDE if `eta > 0`, noise event `(step, 0)`): first-order first step,
/// then the two-step data-prediction update.
fn dpm_solver_pp_2m<S, M>(
    k: &mut Stepper<'_, S, M>,
    x: &mut [f32],
    grid: &TimeGrid,
    eta: f64,
    on_step: &mut OnStep<'_>,
) where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
{
    let mut h_prev = None;
    for (i, w) in grid.times().windows(2).enumerate() {
        h_prev = Some(k.dpm_solver_pp_2m_step(x, w[0], w[1], eta, h_prev, NoiseEvent::step(i, 0)));
        on_step(i + 1, x);
    }
}

/// DPM-Solver++(3M) (SDE if `eta > 0`, noise event `(step, 0)`; curvature term weighted by
/// `curvature`): first- then second-order start, then the three-step update.
fn dpm_solver_pp_3m<S, M>(
    k: &mut Stepper<'_, S, M>,
    x: &mut [f32],
    grid: &TimeGrid,
    eta: f64,
    curvature: f64,
    on_step: &mut OnStep<'_>,
) where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
{
    let mut hs: [Option<f64>; 2] = [None, None];
    for (i, w) in grid.times().windows(2).enumerate() {
        let h =
            k.dpm_solver_pp_3m_step(x, w[0], w[1], hs, (eta, curvature), NoiseEvent::step(i, 0));
        hs = [Some(h), hs[0]];
        on_step(i + 1, x);
    }
}

/// Adaptive Dormand–Prince 5(4) on the probability-flow ODE, f64 state, through every grid
/// time in turn.
fn dormand_prince<S, M>(
    k: &mut Stepper<'_, S, M>,
    x: &mut [f32],
    grid: &TimeGrid,
    rtol: f64,
    atol: f64,
    on_step: &mut OnStep<'_>,
) -> Result<(), SamplerError>
where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
{
    let len = x.len();
    let mut y: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let (mut xf, mut sf) = (vec![0.0f32; len], vec![0.0f32; len]);
    let (sde, model) = (k.sde, &mut *k.model);
    let mut nfe = 0;
    // v(x, t) = a(t) x − ½ g(t)² s(x, t), the score evaluated at the f32 cast of the state.
    let mut rhs = |t: f64, y: &[f64], out: &mut [f64]| {
        for (a, &b) in xf.iter_mut().zip(y) {
            *a = b as f32;
        }
        model.score(&xf, t, &mut sf);
        nfe += 1;
        let (a, g) = (sde.drift_coef(t), sde.diffusion(t));
        let c = -0.5 * g * g;
        for ((o, &yi), &si) in out.iter_mut().zip(y).zip(&sf) {
            *o = a * yi + c * f64::from(si);
        }
    };
    let mut dp = DormandPrince::new(len, rtol, atol);
    let mut result = Ok(());
    for (i, w) in grid.times().windows(2).enumerate() {
        result = dp.integrate(&mut rhs, &mut y, w[0], w[1]);
        if result.is_err() {
            break;
        }
        for (xi, &yi) in x.iter_mut().zip(&y) {
            *xi = yi as f32;
        }
        on_step(i + 1, x);
    }
    k.nfe += nfe;
    result
}

/// Step primitives with preallocated batch buffers (no allocation per step).
pub(crate) struct Stepper<'a, S: ?Sized, M: ?Sized> {
    sde: &'a S,
    model: &'a mut M,
    dim: usize,
    seed: u64,
    /// Score evaluations so far.
    pub(crate) nfe: usize,
    drift: Vec<f32>,
    drift2: Vec<f32>,
    scratch: Vec<f32>,
    /// The `x̂₀` of two steps back (DPM-Solver++(3M) only).
    scratch2: Vec<f32>,
    partials: Vec<[f64; 2]>,
}

impl<'a, S, M> Stepper<'a, S, M>
where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
{
    /// Buffers for `n` rows of dimension `dim`, sized for `method`.
    pub(crate) fn new(
        sde: &'a S,
        model: &'a mut M,
        method: Method,
        n: usize,
        dim: usize,
        seed: u64,
    ) -> Self {
        let len = n * dim;
        let heun = matches!(method, Method::ProbabilityFlowHeun | Method::EdmHeun);
        let three = matches!(
            method,
            Method::DpmSolverPp3M | Method::DpmSolverPp3MSde { .. }
        );
        // The noise buffer of the stochastic DPM-Solver++ steps (zeros for 3M).
        let sde2m = three || matches!(method, Method::DpmSolverPp2MSde { .. });
        let pc = three
            || sde2m
            || matches!(
                method,
                Method::PredictorCorrector { .. } | Method::DpmSolverPp2M
            );
        Self {
            sde,
            model,
            dim,
            seed,
            nfe: 0,
            drift: vec![0.0; len],
            drift2: if heun || sde2m {
                vec![0.0; len]
            } else {
                Vec::new()
            },
            scratch: if heun || pc {
                vec![0.0; len]
            } else {
                Vec::new()
            },
            scratch2: if three { vec![0.0; len] } else { Vec::new() },
            partials: if pc {
                vec![[0.0; 2]; n.div_ceil(CHUNK_ROWS)]
            } else {
                Vec::new()
            },
        }
    }

    /// `x ← prior_std · z`, the start `x_T ~ N(0, prior_std² I)`.
    pub(crate) fn draw_prior(&mut self, x: &mut [f32]) {
        fill_scaled_normal(
            x,
            self.sde.prior_std(),
            self.dim,
            self.seed,
            NoiseEvent::Prior,
        );
    }

    /// Reverse-SDE Euler–Maruyama from `t` to `t_next = t − Δt`:
    /// `x ← x − [f(x,t) − g² s(x,t)] Δt + g(t) √Δt z`.
    pub(crate) fn euler_maruyama_step(
        &mut self,
        x: &mut [f32],
        t: f64,
        t_next: f64,
        event: NoiseEvent,
    ) {
        let dt = t - t_next;
        reverse_drift(self.sde, self.model, x, t, &mut self.drift);
        self.nfe += 1;
        let noise = self.sde.diffusion(t) * dt.sqrt();
        add_scaled_and_noise(x, &self.drift, -dt, noise, self.dim, self.seed, event);
    }

    /// Probability-flow Euler: `x ← x − v(x,t) Δt`.
    pub(crate) fn probability_flow_euler_step(&mut self, x: &mut [f32], t: f64, t_next: f64) {
        let dt = t - t_next;
        probability_flow_drift(self.sde, self.model, x, t, &mut self.drift);
        self.nfe += 1;
        for (xi, &v) in x.iter_mut().zip(&self.drift) {
            *xi = (f64::from(*xi) - dt * f64::from(v)) as f32;
        }
    }

    /// Probability-flow Heun: `x̃ = x − v(x,t)Δt`, `x ← x − ½ [v(x,t) + v(x̃,t−Δt)] Δt`.
    pub(crate) fn probability_flow_heun_step(&mut self, x: &mut [f32], t: f64, t_next: f64) {
        let dt = t - t_next;
        probability_flow_drift(self.sde, self.model, x, t, &mut self.drift);
        for ((xt, &xi), &v) in self.scratch.iter_mut().zip(x.iter()).zip(&self.drift) {
            *xt = (f64::from(xi) - dt * f64::from(v)) as f32;
        }
        probability_flow_drift(
            self.sde,
            self.model,
            &self.scratch,
            t_next,
            &mut self.drift2,
        );
        self.nfe += 2;
        let half = 0.5 * dt;
        for ((xi, &v1), &v2) in x.iter_mut().zip(&self.drift).zip(&self.drift2) {
            *xi = (f64::from(*xi) - half * (f64::from(v1) + f64::from(v2))) as f32;
        }
    }

    /// `(m, σ)` at `t`.
    fn kernel(&self, t: f64) -> (f64, f64) {
        (self.sde.mean_coef(t), self.sde.marginal_std(t))
    }

    /// DDIM from `t` to `t'`: with `x̂₀ = (x + σ² s)/m`, `ε̂ = −σ s`,
    /// `x' = m' x̂₀ + √(σ'² − c²) ε̂ + c z`, `c = η σ' √(1 − (m σ'/(m' σ))²)`; i.e.
    /// `x' = (m'/m) x + (m' σ²/m − σ √(σ'² − c²)) s + c z`.
    pub(crate) fn ddim_step(
        &mut self,
        x: &mut [f32],
        t: f64,
        t_next: f64,
        eta: f64,
        event: NoiseEvent,
    ) {
        self.model.score(x, t, &mut self.drift);
        self.nfe += 1;
        let ((m, sig), (m2, sig2)) = (self.kernel(t), self.kernel(t_next));
        let r = (m * sig2) / (m2 * sig);
        let c = eta * sig2 * (1.0 - r * r).max(0.0).sqrt();
        let dir = (sig2 * sig2 - c * c).max(0.0).sqrt();
        let (a, b) = (m2 / m, m2 * sig * sig / m - sig * dir);
        if c > 0.0 {
            affine_and_noise(x, &self.drift, a, b, c, self.dim, self.seed, event);
        } else {
            for (xi, &s) in x.iter_mut().zip(&self.drift) {
                *xi = (a * f64::from(*xi) + b * f64::from(s)) as f32;
            }
        }
    }

    /// DDPM ancestral step from `t` to `t'`: with `a = m/m'`, `b² = σ² − a² σ'²`,
    /// `x' = (x + b² s(x,t)) / a + √β̃ z`, `β̃ = b²` or `b² σ'²/σ²`.
    pub(crate) fn ddpm_step(
        &mut self,
        x: &mut [f32],
        t: f64,
        t_next: f64,
        variance: DdpmVariance,
        event: NoiseEvent,
    ) {
        self.model.score(x, t, &mut self.drift);
        self.nfe += 1;
        let ((m, sig), (m2, sig2)) = (self.kernel(t), self.kernel(t_next));
        let a = m / m2;
        let b2 = (sig * sig - a * a * sig2 * sig2).max(0.0);
        let var = match variance {
            DdpmVariance::Beta => b2,
            DdpmVariance::Posterior => b2 * (sig2 * sig2) / (sig * sig),
        };
        affine_and_noise(
            x,
            &self.drift,
            1.0 / a,
            b2 / a,
            var.sqrt(),
            self.dim,
            self.seed,
            event,
        );
    }

    /// EDM step from `t` to `t'` in `y = x/m`, `σ̂ = σ/m`, `Δ = σ̂' − σ̂`: `d = ε̂(x,t) = −σ s`,
    /// `x̃ = m'(x/m + Δ d)`; if `heun`, `x' = m'(x/m + ½Δ(d + ε̂(x̃,t')))`, else `x' = x̃`.
    pub(crate) fn edm_heun_step(&mut self, x: &mut [f32], t: f64, t_next: f64, heun: bool) {
        let ((m, sig), (m2, sig2)) = (self.kernel(t), self.kernel(t_next));
        let delta = sig2 / m2 - sig / m;
        self.model.score(x, t, &mut self.drift);
        self.nfe += 1;
        // x̃ = (m'/m) x − m' Δ σ s.
        let (a, b1) = (m2 / m, -m2 * delta * sig);
        if !heun {
            for (xi, &s) in x.iter_mut().zip(&self.drift) {
                *xi = (a * f64::from(*xi) + b1 * f64::from(s)) as f32;
            }
            return;
        }
        for ((xt, &xi), &s) in self.scratch.iter_mut().zip(x.iter()).zip(&self.drift) {
            *xt = (a * f64::from(xi) + b1 * f64::from(s)) as f32;
        }
        self.model.score(&self.scratch, t_next, &mut self.drift2);
        self.nfe += 1;
        let b2 = -m2 * delta * sig2;
        for ((xi, &s1), &s2) in x.iter_mut().zip(&self.drift).zip(&self.drift2) {
            *xi = (a * f64::from(*xi) + 0.5 * (b1 * f64::from(s1) + b2 * f64::from(s2))) as f32;
        }
    }

    /// DPM-Solver++(2M) step from `t` to `t'` with `h = λ' − λ`, `λ = ln(m/σ)`, and
    /// stochasticity `eta` (see [`Method::DpmSolverPp2M`] and [`Method::DpmSolverPp2MSde`]),
    /// given the previous step's `h_prev` (`None` on the first step; the previous `x̂₀` is kept
    /// in `scratch`):
    /// `x' = (σ'/σ) e^{−ηh} x + m' (1 − e^{−(1+η)h}) D + σ' √(1 − e^{−2ηh}) z`,
    /// `D = x̂₀` (first step) or `(1 + 1/(2r)) x̂₀ − 1/(2r) x̂₀_prev`, `r = h_prev/h`; with
    /// `η = 0` the ODE step `x' = (σ'/σ) x − m' (e^{−h} − 1) D` (no noise drawn). Returns `h`.
    pub(crate) fn dpm_solver_pp_2m_step(
        &mut self,
        x: &mut [f32],
        t: f64,
        t_next: f64,
        eta: f64,
        h_prev: Option<f64>,
        event: NoiseEvent,
    ) -> f64 {
        let ((m, sig), (m2, sig2)) = (self.kernel(t), self.kernel(t_next));
        let h = (m2.ln() - sig2.ln()) - (m.ln() - sig.ln());
        self.model.score(x, t, &mut self.drift);
        self.nfe += 1;
        let (var, inv_m) = (sig * sig, 1.0 / m);
        let eta_h = eta * h;
        let a = sig2 / sig * (-eta_h).exp();
        let c = -m2 * (-h - eta_h).exp_m1();
        let noise = sig2 * (-(-2.0 * eta_h).exp_m1()).max(0.0).sqrt();
        // D = w_now x̂₀ + w_prev x̂₀_prev.
        let (w_now, w_prev) = match h_prev {
            None => (1.0, 0.0),
            Some(hp) => {
                let half_inv_r = 0.5 * h / hp;
                (1.0 + half_inv_r, -half_inv_r)
            }
        };
        let noisy = noise > 0.0;
        if noisy {
            fill_scaled_normal(&mut self.drift2, noise, self.dim, self.seed, event);
        }
        for (r, ((xi, &s), prev)) in x
            .iter_mut()
            .zip(&self.drift)
            .zip(self.scratch.iter_mut())
            .enumerate()
        {
            let xv = f64::from(*xi);
            let x0 = (xv + var * f64::from(s)) * inv_m;
            let d = w_now * x0 + w_prev * f64::from(*prev);
            *prev = x0 as f32;
            let mut v = a * xv + c * d;
            if noisy {
                v += f64::from(self.drift2[r]);
            }
            *xi = v as f32;
        }
        h
    }

    /// DPM-Solver++(3M) step from `t` to `t'` with stochasticity `eta` and curvature weight
    /// `curvature` (see [`Method::DpmSolverPp3M`] and, for
    /// `eta > 0` or `curvature ≠ 1`, [`Method::DpmSolverPp3MSde`]) given the previous two steps' `h`
    /// (`[h_{i−1}, h_{i−2}]`, `None` before the start; the previous `x̂₀`s are kept in
    /// `scratch` and `scratch2`). Returns `h`.
    pub(crate) fn dpm_solver_pp_3m_step(
        &mut self,
        x: &mut [f32],
        t: f64,
        t_next: f64,
        h_prev: [Option<f64>; 2],
        (eta, curvature): (f64, f64),
        event: NoiseEvent,
    ) -> f64 {
        let ((m, sig), (m2, sig2)) = (self.kernel(t), self.kernel(t_next));
        let h = (m2.ln() - sig2.ln()) - (m.ln() - sig.ln());
        self.model.score(x, t, &mut self.drift);
        self.nfe += 1;
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
        let (c0, c1, c2) = match h_prev {
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
            fill_scaled_normal(&mut self.drift2, noise, self.dim, self.seed, event);
        } else {
            self.drift2.fill(0.0);
        }
        for ((((xi, &s), p1), p2), &z) in x
            .iter_mut()
            .zip(&self.drift)
            .zip(self.scratch.iter_mut())
            .zip(self.scratch2.iter_mut())
            .zip(&self.drift2)
        {
            let xv = f64::from(*xi);
            let x0 = (xv + var * f64::from(s)) * inv_m;
            let (d1, d2) = (f64::from(*p1), f64::from(*p2));
            *p2 = *p1;
            *p1 = x0 as f32;
            *xi = (a * xv + c0 * x0 + c1 * d1 + c2 * d2 + f64::from(z)) as f32;
        }
        h
    }

    /// Langevin corrector at `t` (score_sde's `LangevinCorrector`):
    /// `x ← x + ε s(x,t) + √(2ε) z` with `ε = 2 α (r ‖z‖ / ‖s‖)²`, where `‖·‖` are per-row
    /// Euclidean norms averaged over the batch and `α = (m(t) / m(t_next))²` (`1 − β(t)Δt` to
    /// first order for VP/sub-VP, `1` for VE). If the mean score norm is 0, `ε = 0`.
    pub(crate) fn langevin_correct(
        &mut self,
        x: &mut [f32],
        t: f64,
        t_next: f64,
        snr: f64,
        event: NoiseEvent,
    ) {
        self.model.score(x, t, &mut self.drift);
        self.nfe += 1;
        fill_scaled_normal(&mut self.scratch, 1.0, self.dim, self.seed, event);
        let (dim, rows) = (self.dim, CHUNK_ROWS * self.dim);
        self.partials
            .par_iter_mut()
            .zip(
                self.drift
                    .par_chunks(rows)
                    .zip(self.scratch.par_chunks(rows)),
            )
            .for_each(|(p, (s, z))| {
                *p = [row_norm_sum(s, dim), row_norm_sum(z, dim)];
            });
        // Summed in chunk order: the same for any thread count.
        let (sum_s, sum_z) = self
            .partials
            .iter()
            .fold((0.0, 0.0), |(a, b), p| (a + p[0], b + p[1]));
        let ratio = self.sde.mean_coef(t) / self.sde.mean_coef(t_next);
        let alpha = ratio * ratio;
        let eps = if sum_s > 0.0 {
            let r = snr * sum_z / sum_s;
            2.0 * alpha * r * r
        } else {
            0.0
        };
        let c = (2.0 * eps).sqrt();
        for ((xi, &s), &z) in x.iter_mut().zip(&self.drift).zip(&self.scratch) {
            *xi = (f64::from(*xi) + eps * f64::from(s) + c * f64::from(z)) as f32;
        }
    }

    /// Tweedie's denoiser at `t`: `x ← (x + σ(t)² s(x,t)) / m(t)` (`E[x₀ | x_t]` for the
    /// exact score).
    pub(crate) fn tweedie_denoise(&mut self, x: &mut [f32], t: f64) {
        self.model.score(x, t, &mut self.drift);
        self.nfe += 1;
        let sig = self.sde.marginal_std(t);
        let (var, inv_m) = (sig * sig, 1.0 / self.sde.mean_coef(t));
        for (xi, &s) in x.iter_mut().zip(&self.drift) {
            *xi = ((f64::from(*xi) + var * f64::from(s)) * inv_m) as f32;
        }
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
