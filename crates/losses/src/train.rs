//! The seeded, resumable training loop.

use crate::config::{DataMode, OptimizerConfig, TrainConfig, TrainConfigError};
use crate::dsm::{DsmBatch, LossReport, NUM_TIME_BUCKETS};
use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smoluchowski_core::ParamError;
use smoluchowski_datasets::Dataset;
use smoluchowski_nets::{
    mlp_loss_and_grad, read_f32, tensors_to_bytes, write_atomic, MlpWorkspace, ScoreNet,
    ScoreNetConfig,
};
use smoluchowski_sde::ForwardSde;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const ADAM_EPS: f32 = 1e-8;
const CHECKPOINT_FORMAT: &str = "smoluchowski-checkpoint-v1";

/// Progress of one step, passed to the callback.
#[derive(Debug, Clone, Copy)]
pub struct StepReport<'a> {
    /// Number of completed steps (1 after the first step).
    pub step: usize,
    /// Total steps of the run.
    pub total_steps: usize,
    /// Batch loss of this step.
    pub loss: f64,
    /// Learning rate used by this step.
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Steps per second since this `run_until` call started.
    pub steps_per_sec: f64,
    /// Batch loss per time bucket (NaN for an empty bucket).
    pub bucket_loss: &'a [f64; NUM_TIME_BUCKETS],
}

/// Why training stopped early.
#[derive(Debug)]
pub enum TrainError {
    /// Invalid configuration.
    Config(TrainConfigError),
    /// The loss or gradient became NaN/inf at this (0-based) step; parameters were not updated.
    NonFinite {
        /// 0-based index of the failing step.
        step: usize,
        /// The loss value.
        loss: f64,
        /// The gradient norm.
        grad_norm: f64,
    },
    /// File system error with the path.
    Io(PathBuf, std::io::Error),
    /// Malformed or incompatible checkpoint.
    Checkpoint(PathBuf, String),
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrainError::Config(e) => write!(f, "{e}"),
            TrainError::NonFinite {
                step,
                loss,
                grad_norm,
            } => write!(
                f,
                "non-finite training loss at step {step}: loss = {loss}, gradient norm = {grad_norm}; \
                 training stopped (the last checkpoint, if any, is intact)"
            ),
            TrainError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            TrainError::Checkpoint(p, e) => write!(f, "checkpoint {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for TrainError {}

impl From<TrainConfigError> for TrainError {
    fn from(e: TrainConfigError) -> Self {
        TrainError::Config(e)
    }
}

/// The random stream of step `k`: `ChaCha8Rng` seeded with `seed`, stream `k + 1`. A batch
/// never depends on history, so resuming is exact. (Stream 0 draws the fixed dataset.)
pub fn step_rng(seed: u64, step: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(step as u64 + 1);
    rng
}

/// Trains a [`ScoreNet`] by denoising score matching (see [`crate::DsmBatch`] for the loss)
/// with Adam/AdamW written over flat parameter vectors (so the moments can be checkpointed).
pub struct Trainer<'a, D: Dataset, S: ForwardSde + ?Sized> {
    cfg: TrainConfig,
    sde: &'a S,
    data: &'a D,
    net: ScoreNet,
    params: Vec<f32>,
    ema: Option<Vec<f32>>,
    m: Vec<f32>,
    v: Vec<f32>,
    grad: Vec<f32>,
    step: usize,
    fixed: Option<Vec<f64>>,
    batch: DsmBatch,
    /// The batch of step `prefetched` (drawn while the previous step's gradient ran).
    next_batch: DsmBatch,
    prefetched: Option<usize>,
    ws: MlpWorkspace,
}

/// The global gradient norm `‖g‖₂` (f64-accumulated), or [`TrainError::NonFinite`] naming
/// step `step` if it or the loss is NaN/inf. Shared by every trainer of the crate.
pub(crate) fn finite_grad_norm(step: usize, loss: f64, grad: &[f32]) -> Result<f64, TrainError> {
    let grad_norm = grad
        .iter()
        .map(|&g| (g as f64) * (g as f64))
        .sum::<f64>()
        .sqrt();
    if !loss.is_finite() || !grad_norm.is_finite() {
        return Err(TrainError::NonFinite {
            step,
            loss,
            grad_norm,
        });
    }
    Ok(grad_norm)
}

/// Rows from which a step draws the next step's batch concurrently with its own gradient.
const PREFETCH_MIN_ROWS: usize = 1024;

/// Draws the batch of step `k` into `batch`: every random number comes from
/// [`step_rng`]`(cfg.seed, k)`, so the batch does not depend on when it is drawn.
fn build_step_batch<D: Dataset, S: ForwardSde + ?Sized>(
    batch: &mut DsmBatch,
    ncfg: &ScoreNetConfig,
    cfg: &TrainConfig,
    sde: &S,
    data: &D,
    fixed: Option<&[f64]>,
    k: usize,
) {
    let mut rng = step_rng(cfg.seed, k);
    batch.build(
        ncfg,
        sde,
        cfg.weighting,
        cfg.t_eps,
        cfg.batch_size,
        &mut rng,
        |r, x0| match fixed {
            None => data.sample_into(r, x0),
            Some(pool) => {
                let d = ncfg.dim;
                let size = pool.len() / d;
                for row in x0.chunks_exact_mut(d) {
                    let i = r.gen_range(0..size);
                    row.copy_from_slice(&pool[i * d..(i + 1) * d]);
                }
            }
        },
    );
}

impl<'a, D: Dataset, S: ForwardSde + ?Sized> Trainer<'a, D, S> {
    /// A trainer starting at step 0 from `net`'s weights.
    pub fn new(
        net: ScoreNet,
        sde: &'a S,
        data: &'a D,
        cfg: TrainConfig,
    ) -> Result<Self, TrainError> {
        cfg.validate()?;
        if data.dim() != net.config().dim {
            return Err(TrainError::Config(ParamError::new(
                "network.dim",
                net.config().dim,
                format!("the dataset's dimension {}", data.dim()),
            )));
        }
        let params = net.to_flat();
        let p = params.len();
        let fixed = match cfg.data {
            DataMode::Fresh => None,
            DataMode::Fixed { size } => {
                let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
                rng.set_stream(0);
                Some(data.sample(&mut rng, size))
            }
        };
        Ok(Trainer {
            ema: cfg.ema_decay.map(|_| params.clone()),
            m: vec![0.0; p],
            v: vec![0.0; p],
            grad: vec![0.0; p],
            params,
            step: 0,
            fixed,
            batch: DsmBatch::with_time_sampling(cfg.time_sampling),
            next_batch: DsmBatch::with_time_sampling(cfg.time_sampling),
            prefetched: None,
            ws: MlpWorkspace::default(),
            cfg,
            sde,
            data,
            net,
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
        let bad = |e: String| TrainError::Checkpoint(path.to_path_buf(), e);
        let bytes = std::fs::read(path).map_err(|e| TrainError::Io(path.to_path_buf(), e))?;
        let (_, meta) =
            ::safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(format!("{e:?}")))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let get = |k: &str| {
            meta.get(k)
                .cloned()
                .ok_or_else(|| bad(format!("missing metadata {k:?}")))
        };
        if get("format")? != CHECKPOINT_FORMAT {
            return Err(bad(format!("unknown format {:?}", get("format")?)));
        }
        let net_cfg: ScoreNetConfig = serde_json::from_str(&get("net_config")?)
            .map_err(|e| bad(format!("net_config: {e}")))?;
        let saved: TrainConfig = serde_json::from_str(&get("train_config")?)
            .map_err(|e| bad(format!("train_config: {e}")))?;
        let normalise = |c: &TrainConfig| TrainConfig {
            steps: 0,
            checkpoint_every: None,
            ..c.clone()
        };
        if normalise(&saved) != normalise(&cfg) {
            return Err(bad(format!(
                "training config differs from the checkpoint's: checkpoint {saved:?}, given {cfg:?}"
            )));
        }
        let step: usize = get("step")?
            .parse()
            .map_err(|e| bad(format!("step: {e}")))?;
        let st =
            ::safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("{e:?}")))?;
        let p = net_cfg.num_params();
        let params = read_f32(&st, "params", &[p]).map_err(bad)?;
        let net = ScoreNet::from_flat(net_cfg, &params).map_err(|e| bad(e.to_string()))?;
        let mut t = Trainer::new(net, sde, data, cfg)?;
        t.m = read_f32(&st, "adam_m", &[p]).map_err(bad)?;
        t.v = read_f32(&st, "adam_v", &[p]).map_err(bad)?;
        if t.ema.is_some() {
            t.ema = Some(read_f32(&st, "ema", &[p]).map_err(bad)?);
        }
        t.step = step;
        Ok(t)
    }

    /// Writes weights, EMA weights, Adam moments, step and both configs to `path`
    /// (safetensors; atomic: temporary file + rename).
    pub fn save_checkpoint(&self, path: &Path) -> Result<(), TrainError> {
        let p = self.params.len();
        let mut tensors: Vec<(String, Vec<usize>, &[f32])> = vec![
            ("params".into(), vec![p], &self.params),
            ("adam_m".into(), vec![p], &self.m),
            ("adam_v".into(), vec![p], &self.v),
        ];
        if let Some(e) = &self.ema {
            tensors.push(("ema".into(), vec![p], e));
        }
        let meta = HashMap::from([
            ("format".to_string(), CHECKPOINT_FORMAT.to_string()),
            ("step".to_string(), self.step.to_string()),
            (
                "net_config".to_string(),
                serde_json::to_string(self.net.config()).expect("serialises"),
            ),
            (
                "train_config".to_string(),
                serde_json::to_string(&self.cfg).expect("serialises"),
            ),
        ]);
        let bytes = tensors_to_bytes(&tensors, meta)
            .map_err(|e| TrainError::Checkpoint(path.to_path_buf(), e))?;
        write_atomic(path, &bytes).map_err(|e| TrainError::Io(path.to_path_buf(), e))
    }

    /// Number of completed steps.
    pub fn step(&self) -> usize {
        self.step
    }

    /// The training configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// The network with the current weights.
    pub fn net(&self) -> &ScoreNet {
        &self.net
    }

    /// The network with the EMA weights (if `ema_decay` is set).
    pub fn ema_net(&self) -> Option<ScoreNet> {
        self.ema
            .as_ref()
            .map(|e| ScoreNet::from_flat(self.net.config().clone(), e).expect("same config"))
    }

    /// The network to sample with: EMA weights if present, else the current weights.
    pub fn into_best_net(self) -> ScoreNet {
        match self.ema {
            Some(e) => ScoreNet::from_flat(self.net.config().clone(), &e).expect("same config"),
            None => self.net,
        }
    }

    /// Current flat parameters (layout of [`ScoreNet::to_flat`]).
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// Runs all remaining steps (see [`Trainer::run_until`]).
    pub fn run(
        &mut self,
        checkpoint: Option<&Path>,
        progress: impl FnMut(&StepReport),
    ) -> Result<(), TrainError> {
        self.run_until(self.cfg.steps, checkpoint, progress)
    }

    /// Runs steps until `stop` steps are complete (at most `cfg.steps`). With a checkpoint path,
    /// writes a checkpoint every `checkpoint_every` steps and at the end. Stops with
    /// [`TrainError::NonFinite`] (without updating) if the loss or gradient is NaN/inf.
    pub fn run_until(
        &mut self,
        stop: usize,
        checkpoint: Option<&Path>,
        mut progress: impl FnMut(&StepReport),
    ) -> Result<(), TrainError> {
        let stop = stop.min(self.cfg.steps);
        let start = Instant::now();
        let first = self.step;
        while self.step < stop {
            let (loss, lr, grad_norm, buckets) = self.one_step()?;
            let elapsed = start.elapsed().as_secs_f64();
            progress(&StepReport {
                step: self.step,
                total_steps: self.cfg.steps,
                loss,
                lr,
                grad_norm,
                steps_per_sec: (self.step - first) as f64 / elapsed.max(1e-9),
                bucket_loss: &buckets,
            });
            if let (Some(path), Some(every)) = (checkpoint, self.cfg.checkpoint_every) {
                if self.step.is_multiple_of(every) {
                    self.save_checkpoint(path)?;
                }
            }
        }
        if let Some(path) = checkpoint {
            self.save_checkpoint(path)?;
        }
        Ok(())
    }

    fn one_step(&mut self) -> Result<(f64, f64, f64, [f64; NUM_TIME_BUCKETS]), TrainError> {
        let k = self.step;
        let lr = self.cfg.lr_at(k);
        let ncfg = self.net.config().clone();
        let (cfg, sde, data, fixed) = (&self.cfg, self.sde, self.data, self.fixed.as_deref());
        if self.prefetched != Some(k) {
            build_step_batch(&mut self.batch, &ncfg, cfg, sde, data, fixed, k);
        }
        let d = ncfg.dim;
        // Fused forward + backward over the flat parameters (matches dfdx autograd; see the
        // nets test `fused_loss_and_grad_match_dfdx_autograd`). For large batches the next
        // step's batch is drawn on this thread meanwhile (the gradient runs on the rayon pool
        // from a scoped thread): each batch comes from its own step_rng, so the numbers are
        // the same as drawing it at the start of the next step.
        let prefetch = k + 1 < cfg.steps && cfg.batch_size >= PREFETCH_MIN_ROWS;
        let (params, batch, grad, ws) = (&self.params, &self.batch, &mut self.grad, &mut self.ws);
        let next_batch = &mut self.next_batch;
        let mut gradient = || {
            mlp_loss_and_grad(&ncfg, params, &batch.input, &batch.a, &batch.b, grad, ws);
        };
        if prefetch {
            std::thread::scope(|scope| {
                let worker = scope.spawn(gradient);
                build_step_batch(next_batch, &ncfg, cfg, sde, data, fixed, k + 1);
                if let Err(panic) = worker.join() {
                    std::panic::resume_unwind(panic);
                }
            });
        } else {
            gradient();
        }
        let out = self.ws.prediction();
        let mut sums = [0.0; NUM_TIME_BUCKETS];
        let mut counts = [0; NUM_TIME_BUCKETS];
        let loss = self.batch.row_losses(out, d, &mut sums, &mut counts);
        let buckets = LossReport::from_sums(loss, &sums, &counts).bucket_means;
        let grad_norm = finite_grad_norm(k, loss, &self.grad)?;
        if let Some(c) = self.cfg.grad_clip {
            if grad_norm > c as f64 {
                let s = (c as f64 / grad_norm) as f32;
                self.grad.iter_mut().for_each(|g| *g *= s);
            }
        }
        self.adam_update(lr as f32, k + 1);
        self.net.set_flat(&self.params);
        if let (Some(ema), Some(decay)) = (self.ema.as_mut(), self.cfg.ema_decay) {
            for (e, &p) in ema.iter_mut().zip(&self.params) {
                *e = decay * *e + (1.0 - decay) * p;
            }
        }
        if prefetch {
            std::mem::swap(&mut self.batch, &mut self.next_batch);
            self.prefetched = Some(k + 1);
        }
        self.step += 1;
        Ok((loss, lr, grad_norm, buckets))
    }

    /// One Adam/AdamW update with bias corrections for step count `t ≥ 1`.
    fn adam_update(&mut self, lr: f32, t: usize) {
        let bc1 = 1.0 - BETA1.powi(t as i32);
        let bc2 = 1.0 - BETA2.powi(t as i32);
        let decay = match self.cfg.optimizer {
            OptimizerConfig::Adam => 1.0,
            OptimizerConfig::AdamW { weight_decay } => 1.0 - lr * weight_decay,
        };
        let step = lr / bc1;
        let inv_sqrt_bc2 = 1.0 / bc2.sqrt();
        for (((p, m), v), &g) in self
            .params
            .iter_mut()
            .zip(self.m.iter_mut())
            .zip(self.v.iter_mut())
            .zip(&self.grad)
        {
            *m = BETA1 * *m + (1.0 - BETA1) * g;
            *v = BETA2 * *v + (1.0 - BETA2) * g * g;
            *p = *p * decay - step * *m / ((*v).sqrt() * inv_sqrt_bc2 + ADAM_EPS);
        }
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
