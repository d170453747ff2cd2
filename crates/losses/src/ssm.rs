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
use crate::optim::OptimSettings;
use crate::train::step_rng;
use crate::trainloop::{LoopSettings, Objective, StepReport, TrainError, TrainLoop};
use crate::OptimizerConfig;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use smoluchowski_core::{check_finite, streams, ParamError};
use smoluchowski_datasets::Dataset;
use smoluchowski_nets::{MlpWorkspace, NetOutput, ScoreNet, ScoreNetwork};

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
        crate::optim::lr_at(self.lr, self.lr_schedule, self.steps, k)
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
    /// Filled by [`SsmBatch::build`] (not by [`SsmBatch::draw`]).
    pub input: Vec<f32>,
    /// Projections (sliced, `m × d`) or the noise `ε` (denoising, `n × d`).
    pub v: Vec<f64>,
    x: Vec<f64>,
    pts: Vec<f32>,
    t: Vec<f64>,
    objective: Option<(ScoreObjective, f64)>,
}

impl SsmBatch {
    /// Draws a batch: `n` data points, `x̃ = x + σ ε`, then the projections (sliced) — all from
    /// `rng` in this order — and fills the MLP input rows [`SsmBatch::input`].
    pub fn build<D: Dataset + ?Sized, R: Rng + ?Sized>(
        &mut self,
        net: &ScoreNet,
        cfg: &SsmConfig,
        data: &D,
        n: usize,
        rng: &mut R,
    ) {
        let nc = net.config();
        self.draw(nc.dim, cfg, data, n, rng);
        let rows = self.pts.len() / nc.dim;
        self.input.resize(rows * nc.input_dim(), 0.0);
        nc.fill_input_rows(&self.pts, |_| cfg.time, &mut self.input);
    }

    /// [`SsmBatch::build`] for any network of row dimension `d`, without the network input: the
    /// rows are [`SsmBatch::rows`].
    pub fn draw<D: Dataset + ?Sized, R: Rng + ?Sized>(
        &mut self,
        d: usize,
        cfg: &SsmConfig,
        data: &D,
        n: usize,
        rng: &mut R,
    ) {
        self.objective = Some((cfg.objective, cfg.noise_std));
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
        self.t.clear();
        self.t.resize(self.pts.len() / d, cfg.time);
    }

    /// The network rows (`x̃ ± h v`, or `x̃`) and their (constant) times.
    pub fn rows(&self) -> (&[f32], &[f64]) {
        (&self.pts, &self.t)
    }

    /// The batch loss of the network outputs `out` (all input rows) and, with `grad`, its
    /// gradient with respect to `out`.
    pub fn loss(&self, cfg: &SsmConfig, out: &[f32], d: usize, grad: Option<&mut [f32]>) -> f64 {
        self.loss_of(cfg.objective, cfg.noise_std, out, d, grad)
    }

    fn loss_of(
        &self,
        objective: ScoreObjective,
        noise_std: f64,
        out: &[f32],
        d: usize,
        grad: Option<&mut [f32]>,
    ) -> f64 {
        match objective {
            ScoreObjective::SlicedFd { h, .. } => {
                let half = out.len() / 2;
                fd_ssm_terms(&self.v, &out[..half], &out[half..], d, h, grad)
            }
            ScoreObjective::Denoising => {
                let s = noise_std;
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
/// as the gradient of `Σ out ⊙ G`; this is [`ScoreNetwork::loss_and_grad`] of the MLP on
/// [`SsmBatch::input`]). Writes the gradient into `grad` (layout of [`ScoreNet::to_flat`]) and
/// returns the loss.
pub fn ssm_loss_and_grad(
    net: &ScoreNet,
    cfg: &SsmConfig,
    batch: &SsmBatch,
    grad: &mut [f32],
) -> f64 {
    let d = net.config().dim;
    net.loss_and_grad(
        &net.to_flat(),
        &batch.input,
        &mut |out, g| batch.loss(cfg, out, d, Some(g)),
        grad,
        &mut MlpWorkspace::default(),
    )
}

/// Score matching without a diffusion ([`ScoreObjective`] at the fixed level `noise_std`, one
/// constant network time) as an [`Objective`] of the one training loop: step `k` draws its
/// batch from [`step_rng`]`(seed, k)`; the loss goes through the network's general
/// [`ScoreNetwork::loss_and_grad`] with the output gradient of [`SsmBatch::loss`]. Plain Adam,
/// no clipping, no time buckets (all NaN).
pub struct SsmObjective<'a, D: Dataset> {
    cfg: SsmConfig,
    data: &'a D,
}

impl<'a, D: Dataset> SsmObjective<'a, D> {
    /// The objective of `cfg` (validated) on `data`.
    pub fn new(data: &'a D, cfg: SsmConfig) -> Result<Self, TrainError> {
        cfg.validate()?;
        Ok(SsmObjective { cfg, data })
    }

    /// The configuration.
    pub fn config(&self) -> &SsmConfig {
        &self.cfg
    }
}

impl<D: Dataset, N: ScoreNetwork> Objective<N> for SsmObjective<'_, D> {
    type Batch = SsmBatch;

    fn settings(&self) -> LoopSettings {
        let c = &self.cfg;
        LoopSettings {
            optim: OptimSettings {
                optimizer: OptimizerConfig::Adam,
                lr: c.lr,
                lr_schedule: c.lr_schedule,
                steps: c.steps,
                grad_clip: None,
                ema_decay: c.ema_decay,
            },
            checkpoint_every: None,
        }
    }

    fn config_json(&self) -> String {
        serde_json::to_string(&self.cfg).expect("serialises")
    }

    fn check_resume(&self, saved: &str) -> Result<(), String> {
        let saved: SsmConfig =
            serde_json::from_str(saved).map_err(|e| format!("train_config: {e}"))?;
        let normalise = |c: &SsmConfig| SsmConfig {
            steps: 0,
            ..c.clone()
        };
        if normalise(&saved) != normalise(&self.cfg) {
            return Err(format!(
                "training config differs from the checkpoint's: checkpoint {saved:?}, given {:?}",
                self.cfg
            ));
        }
        Ok(())
    }

    fn draw(&self, net: &N, k: usize, batch: &mut SsmBatch) {
        let mut rng = step_rng(self.cfg.seed, k);
        batch.draw(
            net.dim(),
            &self.cfg,
            self.data,
            self.cfg.batch_size,
            &mut rng,
        );
    }

    fn rows<'b>(&self, batch: &'b SsmBatch) -> (&'b [f32], &'b [f64]) {
        batch.rows()
    }

    fn loss_and_grad(
        net: &N,
        params: &[f32],
        batch: &SsmBatch,
        input: &N::Input,
        grad: &mut [f32],
        ws: &mut N::Workspace,
    ) -> (f64, [f64; NUM_TIME_BUCKETS]) {
        let (objective, noise_std) = batch.objective.expect("a drawn batch");
        let d = net.dim();
        let loss = net.loss_and_grad(
            params,
            input,
            &mut |out, g| batch.loss_of(objective, noise_std, out, d, Some(g)),
            grad,
            ws,
        );
        (loss, [f64::NAN; NUM_TIME_BUCKETS])
    }
}

/// Seeded Adam training of a [`ScoreNet`] (score output) by [`ScoreObjective`] on a dataset, in
/// the one training loop ([`TrainLoop`] with [`SsmObjective`]). Step `k` draws its batch from
/// `step_rng(seed, k)`, so runs are bit-identical.
pub struct SsmTrainer<'a, D: Dataset> {
    inner: TrainLoop<ScoreNet, SsmObjective<'a, D>>,
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
        let objective = SsmObjective::new(data, cfg)?;
        Ok(Self {
            inner: TrainLoop::with_objective(net, objective),
        })
    }

    /// Completed steps.
    pub fn step(&self) -> usize {
        self.inner.step()
    }

    /// The configuration.
    pub fn config(&self) -> &SsmConfig {
        self.inner.objective().config()
    }

    /// The network with the current weights.
    pub fn net(&self) -> &ScoreNet {
        self.inner.net()
    }

    /// EMA weights if kept, else the current weights.
    pub fn into_best_net(self) -> ScoreNet {
        self.inner.into_best_net()
    }

    /// The generic loop underneath (optimiser state, loss curve, checkpoints).
    pub fn inner(&self) -> &TrainLoop<ScoreNet, SsmObjective<'a, D>> {
        &self.inner
    }

    /// Runs all remaining steps; `progress` sees every step (`bucket_loss` is all NaN: no time
    /// buckets here). Stops with [`TrainError::NonFinite`] before updating on a NaN/inf loss.
    pub fn run(&mut self, progress: impl FnMut(&StepReport)) -> Result<(), TrainError> {
        let steps = self.config().steps;
        self.inner.run_until(steps, None, progress)
    }

    /// Runs until `stop` steps are complete, writing a checkpoint to `checkpoint` (if given) at
    /// the end (the loop's [`TrainLoop::run_until`]).
    pub fn run_until(
        &mut self,
        stop: usize,
        checkpoint: Option<&std::path::Path>,
        progress: impl FnMut(&StepReport),
    ) -> Result<(), TrainError> {
        self.inner.run_until(stop, checkpoint, progress)
    }

    /// Writes weights, EMA, Adam moments, step and both configurations to `path`.
    pub fn save_checkpoint(&self, path: &std::path::Path) -> Result<(), TrainError> {
        self.inner.save_checkpoint(path)
    }

    /// Restores a trainer from [`SsmTrainer::save_checkpoint`]'s file; `cfg` must equal the
    /// checkpoint's except for `steps`. Continues bit-identically.
    pub fn resume(path: &std::path::Path, data: &'a D, cfg: SsmConfig) -> Result<Self, TrainError> {
        let inner: TrainLoop<ScoreNet, _> =
            TrainLoop::resume_with(path, SsmObjective::new(data, cfg)?)?;
        let nc = inner.net().config();
        if nc.output != NetOutput::Score || nc.dim != data.dim() {
            return Err(TrainError::Checkpoint(
                path.to_path_buf(),
                format!(
                    "network {nc:?} is not a score network of dimension {}",
                    data.dim()
                ),
            ));
        }
        Ok(Self { inner })
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

/// A fresh `ChaCha8Rng` for evaluation draws: [`streams::seeded`]`(seed, u64::MAX)` (stream
/// `u64::MAX`, disjoint from training).
pub fn eval_rng(seed: u64) -> ChaCha8Rng {
    streams::seeded(seed, u64::MAX)
}
