//! The samplers, k-diffusion style: each is one short loop over the grid built from the step
//! primitives of [`Stepper`]. Adding a sampler = one [`Method`] variant + one function here.

use rayon::prelude::*;
use smoluchowski_sde::{ForwardSde, Score};

use crate::config::Method;
use crate::dynamics::{probability_flow_drift, reverse_drift};
use crate::grid::TimeGrid;
use crate::noise::{add_scaled_and_noise, fill_scaled_normal, NoiseEvent, CHUNK_ROWS};

/// Called after every step with the 1-based index of the grid time just reached and the state.
pub(crate) type OnStep<'c> = dyn FnMut(usize, &[f32]) + 'c;

/// Runs `method` over `grid`, moving `x` from `t_0 = T` to `t_n = t_eps`.
pub(crate) fn run<S, M>(
    k: &mut Stepper<'_, S, M>,
    method: Method,
    x: &mut [f32],
    grid: &TimeGrid,
    on_step: &mut OnStep<'_>,
) where
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
    }
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
        let heun = matches!(method, Method::ProbabilityFlowHeun);
        let pc = matches!(method, Method::PredictorCorrector { .. });
        Self {
            sde,
            model,
            dim,
            seed,
            nfe: 0,
            drift: vec![0.0; len],
            drift2: if heun { vec![0.0; len] } else { Vec::new() },
            scratch: if heun || pc {
                vec![0.0; len]
            } else {
                Vec::new()
            },
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
