//! The one training loop, generic over the network ([`ScoreNetwork`]) and the objective
//! ([`Objective`]).

use crate::curve::{decode_curve, encode_curve};
use crate::dsm::NUM_TIME_BUCKETS;
use crate::optim::{grad_norm, OptimSettings, Optimizer};
use smoluchowski_nets::{tensors_to_bytes, write_atomic, ScoreNetwork};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The `format` metadata of a training checkpoint.
pub const CHECKPOINT_FORMAT: &str = "smoluchowski-checkpoint-v1";

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
    /// Batch loss per time bucket (NaN for an empty bucket, all NaN for objectives without
    /// time buckets).
    pub bucket_loss: &'a [f64; NUM_TIME_BUCKETS],
    /// The parameters after this step (e.g. to sample a preview with `with_params`).
    pub params: &'a [f32],
}

/// One row of the loss curve (see [`TrainLoop::curve`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurveRow {
    /// Completed steps after this one (1-based).
    pub step: usize,
    /// Batch loss.
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Batch loss per time bucket (NaN where empty / not applicable).
    pub bucket_loss: [f64; NUM_TIME_BUCKETS],
}

/// Why training stopped early.
#[derive(Debug)]
pub enum TrainError {
    /// Invalid configuration.
    Config(crate::TrainConfigError),
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

impl From<crate::TrainConfigError> for TrainError {
    fn from(e: crate::TrainConfigError) -> Self {
        TrainError::Config(e)
    }
}

/// The global gradient norm `‖g‖₂` (f64-accumulated), or [`TrainError::NonFinite`] naming
/// step `step` if it or the loss is NaN/inf.
pub(crate) fn finite_grad_norm(step: usize, loss: f64, grad: &[f32]) -> Result<f64, TrainError> {
    let grad_norm = grad_norm(grad);
    if !loss.is_finite() || !grad_norm.is_finite() {
        return Err(TrainError::NonFinite {
            step,
            loss,
            grad_norm,
        });
    }
    Ok(grad_norm)
}

/// Loop settings an objective's configuration provides.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoopSettings {
    /// Optimiser, schedule, clipping, EMA (its `steps` is the run length).
    pub optim: OptimSettings,
    /// Write a checkpoint every this many steps (when a path is given).
    pub checkpoint_every: Option<usize>,
}

/// A training objective: draws step `k`'s batch from its own seeded stream, and computes the
/// batch loss and parameter gradient through the network seam.
pub trait Objective<N: ScoreNetwork> {
    /// The objective's host batch (rows, times, targets).
    type Batch: Default + Send + Sync;

    /// Optimiser and checkpoint settings of the run.
    fn settings(&self) -> LoopSettings;
    /// The run configuration as JSON (stored in checkpoints).
    fn config_json(&self) -> String;
    /// `Ok` if a checkpoint written with configuration `saved` (JSON) may be resumed by this
    /// objective.
    fn check_resume(&self, saved: &str) -> Result<(), String>;
    /// Draws the batch of step `k` (0-based) from the step's own stream, so a batch never
    /// depends on when it is drawn.
    fn draw(&self, net: &N, k: usize, batch: &mut Self::Batch);
    /// The network rows `x` (`n × dim`) and per-row times `t` (`n`) of a drawn batch.
    fn rows<'b>(&self, batch: &'b Self::Batch) -> (&'b [f32], &'b [f64]);
    /// The per-row labels of a drawn batch for a class-conditional network
    /// ([`ScoreNetwork::prepare_labelled_input`]), or `None` (the default: no labels).
    fn labels<'b>(&self, _batch: &'b Self::Batch) -> Option<&'b [u32]> {
        None
    }
    /// Batch loss (and its per-time-bucket means, NaN where not applicable) and the parameter
    /// gradient at `params` (into `grad`). An associated function of the batch (which carries
    /// whatever the loss needs), so it can run on a worker thread without the objective (whose
    /// SDE and dataset need not be `Sync`) while the next batch is drawn.
    fn loss_and_grad(
        net: &N,
        params: &[f32],
        batch: &Self::Batch,
        input: &N::Input,
        grad: &mut [f32],
        ws: &mut N::Workspace,
    ) -> (f64, [f64; NUM_TIME_BUCKETS]);
    /// Whether step `k` should draw step `k + 1`'s batch while its gradient runs (worth it for
    /// large batches; the numbers do not depend on it).
    fn prefetch(&self, _k: usize) -> bool {
        false
    }
}

/// A drawn batch with the network's input prepared from it.
struct Prepared<N: ScoreNetwork, O: Objective<N>> {
    batch: O::Batch,
    input: N::Input,
}

impl<N: ScoreNetwork, O: Objective<N>> Default for Prepared<N, O> {
    fn default() -> Self {
        Prepared {
            batch: Default::default(),
            input: Default::default(),
        }
    }
}

fn prepare<N: ScoreNetwork, O: Objective<N>>(
    objective: &O,
    net: &N,
    k: usize,
    p: &mut Prepared<N, O>,
) {
    objective.draw(net, k, &mut p.batch);
    let (x, t) = objective.rows(&p.batch);
    match objective.labels(&p.batch) {
        None => net.prepare_input(x, t, &mut p.input),
        Some(labels) => net.prepare_labelled_input(x, t, labels, &mut p.input),
    }
}

/// The seeded, resumable training loop: step `k` draws its batch ([`Objective::draw`]),
/// computes loss and gradient, stops on a non-finite loss or gradient (naming the step, before
/// any update), clips, steps Adam/AdamW ([`Optimizer`]), updates the EMA, records the loss
/// curve, reports progress, and writes a checkpoint every `checkpoint_every` steps (weights,
/// EMA, moments, step, both configurations, the curve: resuming continues bit-identically).
pub struct TrainLoop<N: ScoreNetwork, O: Objective<N>> {
    objective: O,
    settings: LoopSettings,
    net: N,
    opt: Optimizer,
    grad: Vec<f32>,
    out_step: usize,
    cur: Prepared<N, O>,
    /// The batch of step `prefetched` (drawn while the previous step's gradient ran).
    next: Prepared<N, O>,
    prefetched: Option<usize>,
    ws: N::Workspace,
    curve: Vec<CurveRow>,
}

impl<N: ScoreNetwork, O: Objective<N>> TrainLoop<N, O> {
    /// A loop at step 0 from the weights `net` carries.
    pub fn with_objective(net: N, objective: O) -> Self {
        let settings = objective.settings();
        let params = net.params();
        let p = params.len();
        TrainLoop {
            opt: Optimizer::new(settings.optim, params),
            grad: vec![0.0; p],
            out_step: 0,
            cur: Prepared::default(),
            next: Prepared::default(),
            prefetched: None,
            ws: Default::default(),
            curve: Vec::new(),
            objective,
            settings,
            net,
        }
    }

    /// Restores a loop from a checkpoint written by [`TrainLoop::save_checkpoint`]; the
    /// objective decides whether the saved configuration is compatible
    /// ([`Objective::check_resume`]).
    pub fn resume_with(path: &Path, objective: O) -> Result<Self, TrainError> {
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
        let net_json = get("net_config")?;
        objective.check_resume(&get("train_config")?).map_err(bad)?;
        let step: usize = get("step")?
            .parse()
            .map_err(|e| bad(format!("step: {e}")))?;
        let st =
            ::safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("{e:?}")))?;
        // The length is checked against the architecture by `from_config_json`.
        let len = st
            .tensor("params")
            .map_err(|e| bad(format!("tensor \"params\": {e:?}")))?
            .shape()
            .iter()
            .product::<usize>();
        let params = smoluchowski_nets::read_f32(&st, "params", &[len]).map_err(bad)?;
        let net = N::from_config_json(&net_json, &params).map_err(bad)?;
        let mut t = TrainLoop::with_objective(net, objective);
        t.opt.load(&st).map_err(bad)?;
        t.out_step = step;
        // Checkpoints of older versions carry no curve: the loop then resumes with an empty one.
        if let Some(text) = meta.get("curve") {
            t.curve = decode_curve(text).map_err(bad)?;
            let covers =
                t.curve.len() == step && t.curve.iter().enumerate().all(|(i, r)| r.step == i + 1);
            if !covers {
                return Err(bad(format!(
                    "the loss curve does not cover steps 1..={step}"
                )));
            }
        }
        Ok(t)
    }

    /// Writes weights, EMA weights, Adam moments, step, both configurations and the loss curve
    /// to `path`
    /// (safetensors; atomic: temporary file + rename).
    pub fn save_checkpoint(&self, path: &Path) -> Result<(), TrainError> {
        let meta = HashMap::from([
            ("format".to_string(), CHECKPOINT_FORMAT.to_string()),
            ("step".to_string(), self.out_step.to_string()),
            ("net_config".to_string(), self.net.config_json()),
            ("train_config".to_string(), self.objective.config_json()),
            ("curve".to_string(), encode_curve(&self.curve)),
        ]);
        let bytes = tensors_to_bytes(&self.opt.tensors(), meta)
            .map_err(|e| TrainError::Checkpoint(path.to_path_buf(), e))?;
        write_atomic(path, &bytes).map_err(|e| TrainError::Io(path.to_path_buf(), e))
    }

    /// Number of completed steps.
    pub fn step(&self) -> usize {
        self.out_step
    }

    /// The objective.
    pub fn objective(&self) -> &O {
        &self.objective
    }

    /// The network with the current weights.
    pub fn net(&self) -> &N {
        &self.net
    }

    /// The network with the EMA weights (if kept).
    pub fn ema_net(&self) -> Option<N> {
        self.opt.ema.as_ref().map(|e| self.net.with_params(e))
    }

    /// EMA weights if kept, else the current weights.
    pub fn into_best_net(self) -> N {
        match &self.opt.ema {
            Some(e) => self.net.with_params(e),
            None => self.net,
        }
    }

    /// Current flat parameters.
    pub fn params(&self) -> &[f32] {
        &self.opt.params
    }

    /// The optimiser state.
    pub fn optimizer(&self) -> &Optimizer {
        &self.opt
    }

    /// The loss curve of every completed step (`curve()[k]` is step `k + 1`; restored by a
    /// resume, so a resumed run has the same curve as an uninterrupted one).
    pub fn curve(&self) -> &[CurveRow] {
        &self.curve
    }

    /// Runs steps until `stop` steps are complete (at most the run's `steps`). With a checkpoint
    /// path, writes a checkpoint every `checkpoint_every` steps and at the end. Stops with
    /// [`TrainError::NonFinite`] (without updating) if the loss or gradient is NaN/inf.
    pub fn run_until(
        &mut self,
        stop: usize,
        checkpoint: Option<&Path>,
        mut progress: impl FnMut(&StepReport),
    ) -> Result<(), TrainError> {
        let total = self.settings.optim.steps;
        let stop = stop.min(total);
        let start = Instant::now();
        let first = self.out_step;
        while self.out_step < stop {
            let row = self.one_step()?;
            let elapsed = start.elapsed().as_secs_f64();
            progress(&StepReport {
                step: row.step,
                total_steps: total,
                loss: row.loss,
                lr: row.lr,
                grad_norm: row.grad_norm,
                steps_per_sec: (self.out_step - first) as f64 / elapsed.max(1e-9),
                bucket_loss: &row.bucket_loss,
                params: &self.opt.params,
            });
            if let (Some(path), Some(every)) = (checkpoint, self.settings.checkpoint_every) {
                if self.out_step.is_multiple_of(every) {
                    self.save_checkpoint(path)?;
                }
            }
        }
        if let Some(path) = checkpoint {
            self.save_checkpoint(path)?;
        }
        Ok(())
    }

    fn one_step(&mut self) -> Result<CurveRow, TrainError> {
        let k = self.out_step;
        let (objective, net) = (&self.objective, &self.net);
        if self.prefetched != Some(k) {
            prepare(objective, net, k, &mut self.cur);
        }
        // For large batches the next step's batch is drawn on this thread while the gradient
        // runs (on the rayon pool, from a scoped thread): each batch comes from its own step
        // stream, so the numbers are the same as drawing it at the start of the next step.
        let prefetch = k + 1 < self.settings.optim.steps && objective.prefetch(k);
        let (params, cur, grad, ws) = (&self.opt.params, &self.cur, &mut self.grad, &mut self.ws);
        let next = &mut self.next;
        let mut result = (0.0, [f64::NAN; NUM_TIME_BUCKETS]);
        let res = &mut result;
        let mut gradient = move || {
            *res = O::loss_and_grad(net, params, &cur.batch, &cur.input, grad, ws);
        };
        if prefetch {
            std::thread::scope(|scope| {
                let worker = scope.spawn(gradient);
                prepare(objective, net, k + 1, next);
                if let Err(panic) = worker.join() {
                    std::panic::resume_unwind(panic);
                }
            });
        } else {
            gradient();
        }
        let (loss, bucket_loss) = result;
        let grad_norm = finite_grad_norm(k, loss, &self.grad)?;
        let lr = self.opt.step(k, &mut self.grad, grad_norm);
        self.net.set_params(&self.opt.params);
        if prefetch {
            std::mem::swap(&mut self.cur, &mut self.next);
            self.prefetched = Some(k + 1);
        }
        self.out_step += 1;
        let row = CurveRow {
            step: self.out_step,
            loss,
            lr,
            grad_norm,
            bucket_loss,
        };
        self.curve.push(row);
        Ok(row)
    }
}
