//! Denoising score matching (continuous DSM and the discrete DDPM ε-loss) as an [`Objective`]
//! of the one training loop, and its trainer [`Trainer`].

use crate::config::{DataMode, TrainConfig};
use crate::dsm::{DsmBatch, LossReport, NUM_TIME_BUCKETS};
use crate::optim::OptimSettings;
use crate::trainloop::{LoopSettings, Objective, StepReport, TrainError, TrainLoop};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use smoluchowski_core::{streams, ParamError};
use smoluchowski_datasets::Dataset;
use smoluchowski_nets::{ScoreNet, ScoreNetwork};
use smoluchowski_sde::ForwardSde;
use std::path::Path;

/// The random stream of step `k`: [`streams::seeded`]`(seed, k + 1)` (`ChaCha8Rng` seeded with
/// `seed`, stream `k + 1`). A batch never depends on history, so resuming is exact. (Stream 0
/// draws the fixed dataset.)
pub fn step_rng(seed: u64, step: usize) -> ChaCha8Rng {
    streams::seeded(seed, step as u64 + 1)
}

/// Rows from which a step draws the next step's batch concurrently with its own gradient.
const PREFETCH_MIN_ROWS: usize = 1024;

/// The denoising score-matching objective on a forward SDE (or the discrete DDPM chain's kernel
/// with [`crate::TimeSampling::Discrete`]): each row's loss is
/// `λ(t)‖s_θ(x_t, t) + ε/σ(t)‖² = ‖a ⊙ f_θ(x_t, t) − b‖²`, `x_t = m(t) x₀ + σ(t) ε` (see
/// [`DsmBatch`] for `a`, `b`), so the batch loss is the network's weighted squared loss
/// [`ScoreNetwork::weighted_sq_loss_and_grad`]. Reports the loss per time bucket.
pub struct DsmObjective<'a, D: Dataset, S: ForwardSde + ?Sized> {
    cfg: TrainConfig,
    sde: &'a S,
    data: &'a D,
    /// The fixed dataset ([`DataMode::Fixed`]), drawn once from stream 0.
    fixed: Option<Vec<f64>>,
}

impl<'a, D: Dataset, S: ForwardSde + ?Sized> DsmObjective<'a, D, S> {
    /// The objective of `cfg` (validated) on `sde` and `data` for a network of dimension `dim`.
    pub fn new(sde: &'a S, data: &'a D, cfg: TrainConfig, dim: usize) -> Result<Self, TrainError> {
        cfg.validate()?;
        if data.dim() != dim {
            return Err(TrainError::Config(ParamError::new(
                "network.dim",
                dim,
                format!("the dataset's dimension {}", data.dim()),
            )));
        }
        let fixed = match cfg.data {
            DataMode::Fresh => None,
            DataMode::Fixed { size } => Some(data.sample(&mut streams::seeded(cfg.seed, 0), size)),
        };
        Ok(DsmObjective {
            cfg,
            sde,
            data,
            fixed,
        })
    }

    /// The training configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }
}

impl<D: Dataset, S: ForwardSde + ?Sized, N: ScoreNetwork> Objective<N> for DsmObjective<'_, D, S> {
    type Batch = DsmBatch;

    fn settings(&self) -> LoopSettings {
        let c = &self.cfg;
        LoopSettings {
            optim: OptimSettings {
                optimizer: c.optimizer,
                lr: c.lr,
                lr_schedule: c.lr_schedule,
                steps: c.steps,
                grad_clip: c.grad_clip,
                ema_decay: c.ema_decay,
            },
            checkpoint_every: c.checkpoint_every,
        }
    }

    fn config_json(&self) -> String {
        serde_json::to_string(&self.cfg).expect("serialises")
    }

    fn check_resume(&self, saved: &str) -> Result<(), String> {
        let saved: TrainConfig =
            serde_json::from_str(saved).map_err(|e| format!("train_config: {e}"))?;
        let normalise = |c: &TrainConfig| TrainConfig {
            steps: 0,
            checkpoint_every: None,
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

    /// Every random number of step `k` comes from [`step_rng`]`(seed, k)`.
    fn draw(&self, net: &N, k: usize, batch: &mut DsmBatch) {
        let cfg = &self.cfg;
        let d = net.dim();
        let mut rng = step_rng(cfg.seed, k);
        batch.time_sampling = cfg.time_sampling;
        batch.draw(
            d,
            net.output(),
            self.sde,
            cfg.weighting,
            cfg.t_eps,
            cfg.batch_size,
            &mut rng,
            |r, x0| match self.fixed.as_deref() {
                None => self.data.sample_into(r, x0),
                Some(pool) => {
                    let size = pool.len() / d;
                    for row in x0.chunks_exact_mut(d) {
                        let i = r.gen_range(0..size);
                        row.copy_from_slice(&pool[i * d..(i + 1) * d]);
                    }
                }
            },
        );
    }

    fn rows<'b>(&self, batch: &'b DsmBatch) -> (&'b [f32], &'b [f64]) {
        batch.rows()
    }

    /// The weighted squared loss through the network; the reported loss and bucket means are
    /// recomputed from the outputs in f64 ([`DsmBatch::row_losses`]).
    fn loss_and_grad(
        net: &N,
        params: &[f32],
        batch: &DsmBatch,
        input: &N::Input,
        grad: &mut [f32],
        ws: &mut N::Workspace,
    ) -> (f64, [f64; NUM_TIME_BUCKETS]) {
        let mut out = vec![0.0f32; batch.a.len()];
        net.weighted_sq_loss_and_grad(params, input, &batch.a, &batch.b, &mut out, grad, ws);
        let mut sums = [0.0; NUM_TIME_BUCKETS];
        let mut counts = [0; NUM_TIME_BUCKETS];
        let loss = batch.row_losses(&out, net.dim(), &mut sums, &mut counts);
        (
            loss,
            LossReport::from_sums(loss, &sums, &counts).bucket_means,
        )
    }

    fn prefetch(&self, _k: usize) -> bool {
        self.cfg.batch_size >= PREFETCH_MIN_ROWS
    }
}

/// Trains a [`ScoreNet`] by denoising score matching ([`DsmObjective`]) in the one training
/// loop ([`TrainLoop`]: Adam/AdamW over flat parameters, schedule, clipping, EMA, checkpoints).
pub struct Trainer<'a, D: Dataset, S: ForwardSde + ?Sized> {
    inner: TrainLoop<ScoreNet, DsmObjective<'a, D, S>>,
}

impl<'a, D: Dataset, S: ForwardSde + ?Sized> Trainer<'a, D, S> {
    /// A trainer starting at step 0 from `net`'s weights.
    pub fn new(
        net: ScoreNet,
        sde: &'a S,
        data: &'a D,
        cfg: TrainConfig,
    ) -> Result<Self, TrainError> {
        let objective = DsmObjective::new(sde, data, cfg, net.config().dim)?;
        Ok(Trainer {
            inner: TrainLoop::with_objective(net, objective),
        })
    }

    /// Restores a trainer from a checkpoint written by [`Trainer::save_checkpoint`]. `cfg` must
    /// equal the checkpoint's config except for `steps` and `checkpoint_every`.
    pub fn resume(
        path: &Path,
        sde: &'a S,
        data: &'a D,
        cfg: TrainConfig,
    ) -> Result<Self, TrainError> {
        cfg.validate()?;
        // The dimension check needs the network: validate it after loading.
        let objective = DsmObjective::new(sde, data, cfg, data.dim())?;
        let inner: TrainLoop<ScoreNet, _> = TrainLoop::resume_with(path, objective)?;
        if inner.net().config().dim != data.dim() {
            return Err(TrainError::Config(ParamError::new(
                "network.dim",
                inner.net().config().dim,
                format!("the dataset's dimension {}", data.dim()),
            )));
        }
        Ok(Trainer { inner })
    }

    /// Writes weights, EMA weights, Adam moments, step and both configs to `path`
    /// (safetensors; atomic: temporary file + rename).
    pub fn save_checkpoint(&self, path: &Path) -> Result<(), TrainError> {
        self.inner.save_checkpoint(path)
    }

    /// Number of completed steps.
    pub fn step(&self) -> usize {
        self.inner.step()
    }

    /// The training configuration.
    pub fn config(&self) -> &TrainConfig {
        self.inner.objective().config()
    }

    /// The network with the current weights.
    pub fn net(&self) -> &ScoreNet {
        self.inner.net()
    }

    /// The network with the EMA weights (if `ema_decay` is set).
    pub fn ema_net(&self) -> Option<ScoreNet> {
        self.inner.ema_net()
    }

    /// The network to sample with: EMA weights if present, else the current weights.
    pub fn into_best_net(self) -> ScoreNet {
        self.inner.into_best_net()
    }

    /// Current flat parameters (layout of [`ScoreNet::to_flat`]).
    pub fn params(&self) -> &[f32] {
        self.inner.params()
    }

    /// The generic loop underneath (optimiser state, loss curve).
    pub fn inner(&self) -> &TrainLoop<ScoreNet, DsmObjective<'a, D, S>> {
        &self.inner
    }

    /// Runs all remaining steps (see [`Trainer::run_until`]).
    pub fn run(
        &mut self,
        checkpoint: Option<&Path>,
        progress: impl FnMut(&StepReport),
    ) -> Result<(), TrainError> {
        let steps = self.config().steps;
        self.inner.run_until(steps, checkpoint, progress)
    }

    /// Runs steps until `stop` steps are complete (at most `cfg.steps`). With a checkpoint path,
    /// writes a checkpoint every `checkpoint_every` steps and at the end. Stops with
    /// [`TrainError::NonFinite`] (without updating) if the loss or gradient is NaN/inf.
    pub fn run_until(
        &mut self,
        stop: usize,
        checkpoint: Option<&Path>,
        progress: impl FnMut(&StepReport),
    ) -> Result<(), TrainError> {
        self.inner.run_until(stop, checkpoint, progress)
    }
}

/// Trains `net` for `cfg.steps` steps (see [`Trainer`]) and returns the trainer (its
/// [`Trainer::net`], [`Trainer::ema_net`]).
pub fn train<'a, D: Dataset, S: ForwardSde + ?Sized>(
    net: ScoreNet,
    sde: &'a S,
    data: &'a D,
    cfg: TrainConfig,
    checkpoint: Option<&Path>,
    progress: impl FnMut(&StepReport),
) -> Result<Trainer<'a, D, S>, TrainError> {
    let mut t = Trainer::new(net, sde, data, cfg)?;
    t.run(checkpoint, progress)?;
    Ok(t)
}
