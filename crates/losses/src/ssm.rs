//! Sliced score matching by finite differences (for data whose noising kernel is not known),
//! and denoising score matching at one fixed noise level, on the dfdx [`ScoreNet`].
//!
//! **Sliced score matching** (Song et al. 2019): up to a constant independent of `θ`,
//! `E_x ½‖s_θ(x) − ∇ log p(x)‖² = J(θ) + C` with
//! `J(θ) = E_x E_v [vᵀ ∇ₓs_θ(x) v + ½ (vᵀ s_θ(x))²]` for projections `v` with `E[v vᵀ] = I`
//! (Rademacher or standard normal). dfdx has no second derivatives, so the directional
//! derivative is a central difference (Pang et al. 2020, "Efficient learning of generative models
//! via finite-difference score matching"): with `s_± = s_θ(x ± h v)`,
//!
//! `ℓ(x, v) = vᵀ(s₊ − s₋)/(2h) + ½ (vᵀ(s₊ + s₋)/2)²`,
//!
//! which equals the integrand of `J` up to `O(h²)` (exactly for a score linear in `x`) and costs
//! two network evaluations per `(x, v)`. Its gradient is taken by dfdx autograd through both
//! evaluations. Noise-conditional variant: `x` is replaced by `x̃ = x + σ ε`, so the minimiser is
//! the score of the smoothed law `p_σ = p ∗ N(0, σ² I)`.
//!
//! **Denoising score matching at fixed σ** (Vincent 2011), for comparison:
//! `L(θ) = E_{x, ε} ‖σ s_θ(x + σ ε) + ε‖²`, whose minimiser is also the score of `p_σ`.
//!
//! The network is fed one constant time `time` (its time input is otherwise unused here) and must
//! predict the score directly (`NetOutput::Score`).

use crate::config::{at_least_one, validate_ema, validate_schedule, LrSchedule, TrainConfigError};
use crate::dsm::NUM_TIME_BUCKETS;
use crate::train::{step_rng, StepReport, TrainError};
use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use smoluchowski_core::{check_finite, ParamError};
use smoluchowski_datasets::Dataset;
use smoluchowski_nets::dfdx::prelude::*;
use smoluchowski_nets::{NetOutput, ScoreNet};
use std::time::Instant;

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const ADAM_EPS: f32 = 1e-8;
const NUM_TIME_BUCKETS_NAN: [f64; NUM_TIME_BUCKETS] = [f64::NAN; NUM_TIME_BUCKETS];

/// Distribution of the projection vectors `v` (both have `E[v vᵀ] = I`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Projection {
    /// `v_j = ±1` with probability ½ each (lowest variance of the trace term).
    Rademacher,
    /// `v ~ N(0, I)`.
    Gaussian,
}

impl Projection {
    /// Fills `v` with independent projection coordinates.
    pub fn fill<R: Rng + ?Sized>(self, rng: &mut R, v: &mut [f64]) {
        match self {
            Projection::Rademacher => {
                for x in v.iter_mut() {
                    *x = if rng.gen::<bool>() { 1.0 } else { -1.0 };
                }
            }
            Projection::Gaussian => {
                for x in v.iter_mut() {
                    *x = rng.sample(StandardNormal);
                }
            }
        }
    }
}

/// The score-matching objective of an [`SsmTrainer`].
///
/// In TOML: `objective = { kind = "sliced_fd", projections = 4, h = 0.01, projection = "rademacher" }`
/// or `objective = { kind = "denoising" }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", tag = "kind")]
pub enum ScoreObjective {
    /// Finite-difference sliced score matching
    /// `E_x E_v [vᵀ(s₊ − s₋)/(2h) + ½ (vᵀ(s₊ + s₋)/2)²]`, `s_± = s_θ(x̃ ± h v)`.
    SlicedFd {
        /// Projections `v` per point (`≥ 1`).
        projections: usize,
        /// Central-difference step `h > 0`.
        h: f64,
        /// Distribution of `v`.
        projection: Projection,
    },
    /// Denoising score matching at the fixed level `noise_std = σ > 0`:
    /// `E ‖σ s_θ(x + σ ε) + ε‖²`.
    Denoising,
}

/// A score-matching run without a diffusion: everything that defines it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsmConfig {
    /// The objective.
    pub objective: ScoreObjective,
    /// Perturbation `σ ≥ 0` of the data (`x̃ = x + σ ε`); the minimiser is the score of
    /// `p ∗ N(0, σ² I)`. Must be `> 0` for [`ScoreObjective::Denoising`].
    pub noise_std: f64,
    /// Constant time fed to the network's time input.
    #[serde(default)]
    pub time: f64,
    /// Optimisation steps.
    pub steps: usize,
    /// Data points per step (each with `projections` directions for sliced score matching).
    pub batch_size: usize,
    /// Adam's peak learning rate.
    pub lr: f64,
    /// Learning-rate schedule.
    pub lr_schedule: LrSchedule,
    /// Exponential moving average of the weights with this decay.
    #[serde(default)]
    pub ema_decay: Option<f32>,
    /// Seed of every random stream of the run (step `k` draws from `step_rng(seed, k)`).
    pub seed: u64,
}

impl SsmConfig {
    /// Checks every field; the error names the field path (relative to this config) and its
    /// value.
    pub fn validate(&self) -> Result<(), TrainConfigError> {
        match self.objective {
            ScoreObjective::SlicedFd { projections, h, .. } => {
                at_least_one("objective.projections", projections)?;
                check_finite("objective.h", h, "> 0", |v| v > 0.0)?;
                check_finite("noise_std", self.noise_std, "≥ 0", |v| v >= 0.0)?;
            }
            ScoreObjective::Denoising => {
                check_finite(
                    "noise_std",
                    self.noise_std,
                    "> 0 for the denoising objective",
                    |v| v > 0.0,
                )?;
            }
        }
        check_finite("time", self.time, "finite", |_| true)?;
        at_least_one("steps", self.steps)?;
        at_least_one("batch_size", self.batch_size)?;
        check_finite("lr", self.lr, "> 0", |v| v > 0.0)?;
        validate_schedule(self.lr_schedule, self.steps)?;
        validate_ema(self.ema_decay)?;
        Ok(())
    }

    /// Learning rate at step `k` (0-based), as [`crate::TrainConfig::lr_at`].
    pub fn lr_at(&self, k: usize) -> f64 {
        crate::config::lr_at(self.lr, self.lr_schedule, self.steps, k)
    }
}

/// The finite-difference SSM loss of one batch and its gradient with respect to the network
/// outputs.
///
/// `v` holds `m` projection vectors (`m × d`), `s_plus`/`s_minus` the scores at `x ± h v`.
/// Returns `(1/m) Σ_r [v_rᵀ(s₊ − s₋)_r/(2h) + ½ (v_rᵀ(s₊ + s₋)_r/2)²]`; with `grad` given, writes
/// `∂loss/∂s₊` into `grad[..m d]` and `∂loss/∂s₋` into `grad[m d..]`:
/// `∂/∂s_± = (±1/(2h) + ½ vᵀs̄) v / m`, `s̄ = (s₊ + s₋)/2`.
pub fn fd_ssm_terms(
    v: &[f64],
    s_plus: &[f32],
    s_minus: &[f32],
    d: usize,
    h: f64,
    mut grad: Option<&mut [f32]>,
) -> f64 {
    let m = v.len() / d;
    let inv_m = 1.0 / m.max(1) as f64;
    let inv_2h = 0.5 / h;
    let mut total = 0.0;
    for r in 0..m {
        let (mut diff, mut mean) = (0.0f64, 0.0f64);
        for j in 0..d {
            let i = r * d + j;
            diff += v[i] * (s_plus[i] as f64 - s_minus[i] as f64);
            mean += v[i] * 0.5 * (s_plus[i] as f64 + s_minus[i] as f64);
        }
        total += diff * inv_2h + 0.5 * mean * mean;
        if let Some(g) = grad.as_deref_mut() {
            let (gp, gm) = (
                (inv_2h + 0.5 * mean) * inv_m,
                (-inv_2h + 0.5 * mean) * inv_m,
            );
            for j in 0..d {
                let i = r * d + j;
                g[i] = (gp * v[i]) as f32;
                g[m * d + i] = (gm * v[i]) as f32;
            }
        }
    }
    total * inv_m
}

/// Monte-Carlo finite-difference sliced score-matching objective of any score function
/// `score(x, out)` (row-major `n × d` in, `n × d` out, `f64`): for each row of `x` and each of
/// its `v` rows (`v` has `projections` rows per point, point-major),
/// `ℓ = vᵀ(s(x + hv) − s(x − hv))/(2h) + ½(vᵀ(s(x + hv) + s(x − hv))/2)²`, averaged.
/// For a linear score `s = A x` this is exact: `E ℓ = tr A + ½ E(vᵀ A x)²`.
pub fn sliced_score_matching_loss(
    mut score: impl FnMut(&[f64], &mut [f64]),
    x: &[f64],
    v: &[f64],
    d: usize,
    h: f64,
) -> f64 {
    let n = x.len() / d;
    let m = v.len() / d;
    let k = m / n.max(1);
    let (mut xp, mut xm) = (vec![0.0; m * d], vec![0.0; m * d]);
    for r in 0..m {
        let p = r / k;
        for j in 0..d {
            xp[r * d + j] = x[p * d + j] + h * v[r * d + j];
            xm[r * d + j] = x[p * d + j] - h * v[r * d + j];
        }
    }
    let (mut sp, mut sm) = (vec![0.0; m * d], vec![0.0; m * d]);
    score(&xp, &mut sp);
    score(&xm, &mut sm);
    let sp: Vec<f32> = sp.iter().map(|&a| a as f32).collect();
    let sm: Vec<f32> = sm.iter().map(|&a| a as f32).collect();
    fd_ssm_terms(v, &sp, &sm, d, h, None)
}

/// Host buffers of one SSM/DSM batch.
#[derive(Debug, Clone, Default)]
pub struct SsmBatch {
    /// Network input rows (`rows × input_dim`): `x̃ + h v` then `x̃ − h v` (sliced), or `x̃`.
    pub input: Vec<f32>,
    /// Projections (sliced, `m × d`) or the noise `ε` (denoising, `n × d`).
    pub v: Vec<f64>,
    x: Vec<f64>,
    pts: Vec<f32>,
}

impl SsmBatch {
    /// Draws a batch: `n` data points, `x̃ = x + σ ε`, then the projections (sliced) — all from
    /// `rng` in this order.
    pub fn build<D: Dataset + ?Sized, R: Rng + ?Sized>(
        &mut self,
        net: &ScoreNet,
        cfg: &SsmConfig,
        data: &D,
        n: usize,
        rng: &mut R,
    ) {
        let nc = net.config();
        let d = nc.dim;
        self.x.resize(n * d, 0.0);
        data.sample_into(rng, &mut self.x);
        let s = cfg.noise_std;
        let mut eps = vec![0.0f64; n * d];
        if s > 0.0 {
            for (x, e) in self.x.iter_mut().zip(eps.iter_mut()) {
                *e = rng.sample(StandardNormal);
                *x += s * *e;
            }
        }
        match cfg.objective {
            ScoreObjective::SlicedFd {
                projections: k,
                h,
                projection,
            } => {
                let m = n * k;
                self.v.resize(m * d, 0.0);
                projection.fill(rng, &mut self.v);
                self.pts.resize(2 * m * d, 0.0);
                for r in 0..m {
                    let p = r / k;
                    for j in 0..d {
                        let (x, v) = (self.x[p * d + j], self.v[r * d + j]);
                        self.pts[r * d + j] = (x + h * v) as f32;
                        self.pts[(m + r) * d + j] = (x - h * v) as f32;
                    }
                }
            }
            ScoreObjective::Denoising => {
                self.v = eps;
                self.pts.clear();
                self.pts.extend(self.x.iter().map(|&a| a as f32));
            }
        }
        let rows = self.pts.len() / d;
        self.input.resize(rows * nc.input_dim(), 0.0);
        nc.fill_input_rows(&self.pts, |_| cfg.time, &mut self.input);
    }

    /// The batch loss of the network outputs `out` (all input rows) and, with `grad`, its
    /// gradient with respect to `out`.
    pub fn loss(&self, cfg: &SsmConfig, out: &[f32], d: usize, grad: Option<&mut [f32]>) -> f64 {
        match cfg.objective {
            ScoreObjective::SlicedFd { h, .. } => {
                let half = out.len() / 2;
                fd_ssm_terms(&self.v, &out[..half], &out[half..], d, h, grad)
            }
            ScoreObjective::Denoising => {
                let s = cfg.noise_std;
                let n = (out.len() / d).max(1) as f64;
                let mut total = 0.0;
                let mut g = grad;
                for (i, (&o, &e)) in out.iter().zip(&self.v).enumerate() {
                    let r = s * o as f64 + e;
                    total += r * r;
                    if let Some(g) = g.as_deref_mut() {
                        g[i] = (2.0 * s * r / n) as f32;
                    }
                }
                total / n
            }
        }
    }
}

/// The objective's loss and its parameter gradient (dfdx autograd through every network
/// evaluation of the batch: the host gradient `G = ∂L/∂out` is pulled back through the network
/// as the gradient of `Σ out ⊙ G`). Writes the gradient into `grad` (layout of
/// [`ScoreNet::to_flat`]) and returns the loss.
pub fn ssm_loss_and_grad(
    net: &ScoreNet,
    cfg: &SsmConfig,
    batch: &SsmBatch,
    grad: &mut [f32],
) -> f64 {
    let nc = net.config();
    let (d, k) = (nc.dim, nc.input_dim());
    let rows = batch.input.len() / k;
    let dev = net.device();
    let x = dev.tensor_from_vec(batch.input.clone(), (rows, k));
    let out = net.forward(x.leaky_trace());
    let out_host = out.as_vec();
    let mut g = vec![0.0f32; rows * d];
    let loss = batch.loss(cfg, &out_host, d, Some(&mut g));
    let gt = dev.tensor_from_vec(g, (rows, d));
    let surrogate = (out * gt).sum::<Rank0, _>();
    let grads = surrogate.backward();
    net.grads_to_flat(&grads, grad);
    loss
}

/// Seeded Adam training of a [`ScoreNet`] (score output) by [`ScoreObjective`] on a dataset.
/// Step `k` draws its batch from `step_rng(seed, k)`, so runs are bit-identical. (No
/// checkpoints: these runs are short.)
pub struct SsmTrainer<'a, D: Dataset> {
    cfg: SsmConfig,
    data: &'a D,
    net: ScoreNet,
    params: Vec<f32>,
    ema: Option<Vec<f32>>,
    m: Vec<f32>,
    v: Vec<f32>,
    grad: Vec<f32>,
    step: usize,
    batch: SsmBatch,
}

impl<'a, D: Dataset> SsmTrainer<'a, D> {
    /// A trainer at step 0 from `net`'s weights; the network must output the score and match the
    /// dataset's dimension.
    pub fn new(net: ScoreNet, data: &'a D, cfg: SsmConfig) -> Result<Self, TrainError> {
        cfg.validate()?;
        let nc = net.config();
        if nc.output != NetOutput::Score {
            return Err(TrainError::Config(ParamError::new(
                "network.output",
                format!("{:?}", nc.output),
                "score (score matching learns the score itself)",
            )));
        }
        if data.dim() != nc.dim {
            return Err(TrainError::Config(ParamError::new(
                "network.dim",
                nc.dim,
                format!("the dataset's dimension {}", data.dim()),
            )));
        }
        let params = net.to_flat();
        let p = params.len();
        Ok(Self {
            ema: cfg.ema_decay.map(|_| params.clone()),
            m: vec![0.0; p],
            v: vec![0.0; p],
            grad: vec![0.0; p],
            params,
            step: 0,
            batch: SsmBatch::default(),
            cfg,
            data,
            net,
        })
    }

    /// Completed steps.
    pub fn step(&self) -> usize {
        self.step
    }

    /// The configuration.
    pub fn config(&self) -> &SsmConfig {
        &self.cfg
    }

    /// The network with the current weights.
    pub fn net(&self) -> &ScoreNet {
        &self.net
    }

    /// EMA weights if kept, else the current weights.
    pub fn into_best_net(self) -> ScoreNet {
        match self.ema {
            Some(e) => ScoreNet::from_flat(self.net.config().clone(), &e).expect("same config"),
            None => self.net,
        }
    }

    /// Runs all remaining steps; `progress` sees every step (`bucket_loss` is all NaN: no time
    /// buckets here). Stops with [`TrainError::NonFinite`] before updating on a NaN/inf loss.
    pub fn run(&mut self, mut progress: impl FnMut(&StepReport)) -> Result<(), TrainError> {
        let start = Instant::now();
        let first = self.step;
        while self.step < self.cfg.steps {
            let k = self.step;
            let lr = self.cfg.lr_at(k);
            let mut rng = step_rng(self.cfg.seed, k);
            self.batch.build(
                &self.net,
                &self.cfg,
                self.data,
                self.cfg.batch_size,
                &mut rng,
            );
            let loss = ssm_loss_and_grad(&self.net, &self.cfg, &self.batch, &mut self.grad);
            let grad_norm = crate::train::finite_grad_norm(k, loss, &self.grad)?;
            adam(
                &mut self.params,
                &mut self.m,
                &mut self.v,
                &self.grad,
                lr as f32,
                k + 1,
            );
            self.net.set_flat(&self.params);
            if let (Some(ema), Some(decay)) = (self.ema.as_mut(), self.cfg.ema_decay) {
                for (e, &p) in ema.iter_mut().zip(&self.params) {
                    *e = decay * *e + (1.0 - decay) * p;
                }
            }
            self.step += 1;
            progress(&StepReport {
                step: self.step,
                total_steps: self.cfg.steps,
                loss,
                lr,
                grad_norm,
                steps_per_sec: (self.step - first) as f64 / start.elapsed().as_secs_f64().max(1e-9),
                bucket_loss: &NUM_TIME_BUCKETS_NAN,
            });
        }
        Ok(())
    }
}

/// Adam (β₁ = 0.9, β₂ = 0.999, ε = 1e-8) with bias corrections for step count `t ≥ 1`.
fn adam(params: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], lr: f32, t: usize) {
    let bc1 = 1.0 - BETA1.powi(t as i32);
    let inv_sqrt_bc2 = 1.0 / (1.0 - BETA2.powi(t as i32)).sqrt();
    let step = lr / bc1;
    for (((p, m), v), &g) in params.iter_mut().zip(m).zip(v).zip(g) {
        *m = BETA1 * *m + (1.0 - BETA1) * g;
        *v = BETA2 * *v + (1.0 - BETA2) * g * g;
        *p -= step * *m / ((*v).sqrt() * inv_sqrt_bc2 + ADAM_EPS);
    }
}

/// Relative L2 error `√(Σ_i ‖s_θ(x_i) − s*(x_i)‖² / Σ_i ‖s*(x_i)‖²)` of the network's score (at
/// the constant `time`) against `exact` over the points `x` (`n × d`).
pub fn relative_score_error(
    net: &ScoreNet,
    time: f64,
    x: &[f64],
    mut exact: impl FnMut(&[f64], &mut [f64]),
) -> f64 {
    let d = net.config().dim;
    let xf: Vec<f32> = x.iter().map(|&a| a as f32).collect();
    let mut num = 0.0;
    let mut den = 0.0;
    let mut want = vec![0.0; d];
    for (chunk, xc) in xf.chunks(16_384 * d).zip(x.chunks(16_384 * d)) {
        let got = net.predict(chunk, time);
        for (g, p) in got.chunks_exact(d).zip(xc.chunks_exact(d)) {
            exact(p, &mut want);
            for j in 0..d {
                let e = g[j] as f64 - want[j];
                num += e * e;
                den += want[j] * want[j];
            }
        }
    }
    (num / den.max(1e-300)).sqrt()
}

/// A fresh `ChaCha8Rng` for evaluation draws (`seed`, stream `u64::MAX`, disjoint from training).
pub fn eval_rng(seed: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(u64::MAX);
    r
}
