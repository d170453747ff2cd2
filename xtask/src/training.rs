//! The harness's training adapter: one shared function that trains a score network with the
//! harness's checkpoint, `--resume`, abort-hook and progress-bar conventions (the training loop
//! itself is the library's `smoluchowski::losses::TrainLoop`).

use std::path::Path;

use anyhow::{anyhow, Result};
use smoluchowski::datasets::Dataset;
pub use smoluchowski::losses::{curve_csv, CurveRow};
use smoluchowski::losses::{
    DsmObjective, Objective, StepReport, TrainConfig, TrainError, TrainLoop,
};
use smoluchowski::nets::{ScoreNet, ScoreNetConfig, ScoreNetwork};
use smoluchowski::sde::ForwardSde;

use crate::progress::Progress;
use crate::seeding::derived_seed;

/// Testing hook: stop training right after the checkpoint of this step (exit code 1), as if
/// the process had been killed there; `--resume` then continues from that checkpoint.
pub const ABORT_ENV: &str = "SMOLUCHOWSKI_ABORT_AFTER_STEP";

/// The trainer's checkpoint file inside the harness's checkpoint directory (it carries the
/// loss curve too).
const TRAINER_CKPT: &str = "trainer.safetensors";

/// What training hands on.
pub struct Trained<N = ScoreNet> {
    /// The trained network (the EMA weights when the recipe keeps an EMA).
    pub net: N,
    /// The loss curve, one row per step.
    pub curve: Vec<CurveRow>,
    /// The step a `--resume` continued from.
    pub resumed_from: Option<usize>,
    /// Training throughput at the last step.
    pub steps_per_sec: f64,
}

/// Train a score network with the checkpoint, resume, abort-hook and progress-bar conventions
/// of the harness: `name` labels the messages, the network is initialised from
/// `derived_seed(seed, "network_init")`, the trainer's checkpoint and loss curve live in `ckpts`
/// (so `--resume` continues bit-identically). Shared by every experiment that trains a model.
pub fn train_score_net<D: Dataset, S: ForwardSde + ?Sized>(
    name: &str,
    network: &ScoreNetConfig,
    training: &TrainConfig,
    sde: &S,
    data: &D,
    seed: u64,
    ckpts: &crate::harness::Checkpoints,
) -> Result<Trained> {
    let init = || {
        ScoreNet::new(network.clone(), derived_seed(seed, "network_init"))
            .map_err(|e| anyhow!("network: {e}"))
    };
    train_network(name, init, training, sde, data, ckpts, |_| {})
}

/// [`train_score_net`] for any network behind the seam ([`ScoreNetwork`], e.g. the UNet): `init`
/// builds the fresh network (unused on `--resume`), `on_step` sees every step's report (after
/// the progress bar), e.g. to log it.
pub fn train_network<N: ScoreNetwork, D: Dataset, S: ForwardSde + ?Sized>(
    name: &str,
    init: impl FnOnce() -> Result<N>,
    training: &TrainConfig,
    sde: &S,
    data: &D,
    ckpts: &crate::harness::Checkpoints,
    mut on_step: impl FnMut(&StepReport),
) -> Result<Trained<N>> {
    let objective = DsmObjective::new(sde, data, training.clone(), data.dim())
        .map_err(|e| anyhow!("training: {e}"))?;
    train_with_objective(
        name,
        init,
        objective,
        training,
        data.dim(),
        ckpts,
        &mut on_step,
    )
}

/// [`train_network`] with any objective of the library's loop (e.g. the labelled DSM objective
/// of a class-conditional network); `training` gives the step count and checkpoint interval,
/// `dim` the data dimension a resumed network must have.
pub fn train_with_objective<N: ScoreNetwork, O: Objective<N>>(
    name: &str,
    init: impl FnOnce() -> Result<N>,
    objective: O,
    training: &TrainConfig,
    dim: usize,
    ckpts: &crate::harness::Checkpoints,
    mut on_step: impl FnMut(&StepReport),
) -> Result<Trained<N>> {
    let cfg = training.clone();
    let total = cfg.steps;
    let ckpt_path = ckpts.save_path(TRAINER_CKPT)?;
    let (mut trainer, resumed_from) = match ckpts.resumable(TRAINER_CKPT) {
        Some(p) => {
            let tr: TrainLoop<N, _> = TrainLoop::resume_with(&p, objective)
                .map_err(|e| anyhow!("cannot resume from {}: {e}", p.display()))?;
            let step = tr.step();
            anyhow::ensure!(
                tr.net().dim() == dim,
                "--resume: the checkpoint {} holds a network of dimension {}, the data has {dim}",
                p.display(),
                tr.net().dim(),
            );
            anyhow::ensure!(
                tr.curve().len() == step,
                "--resume: the checkpoint {} (step {step}) has no loss curve (written by an \
                 older version); run without --resume",
                p.display()
            );
            println!(
                "{name}: resuming training from step {step}/{total} ({})",
                p.display()
            );
            (tr, Some(step))
        }
        None => (TrainLoop::with_objective(init()?, objective), None),
    };
    let abort_at = match std::env::var(ABORT_ENV) {
        Ok(v) => Some(v.trim().parse::<usize>().map_err(|_| {
            crate::validate::bad_input(format!("{ABORT_ENV} must be a step number (got {v:?})"))
        })?),
        Err(_) => None,
    };
    let stop = abort_at
        .filter(|&a| a > trainer.step() && a < total)
        .unwrap_or(total);

    let every = cfg.checkpoint_every;
    let mut last_ckpt = resumed_from;
    let mut bar = Progress::new("training", total as u64, "steps");
    let mut steps_per_sec = 0.0;
    let result = trainer.run_until(stop, Some(&ckpt_path), |r| {
        steps_per_sec = r.steps_per_sec;
        bar.update(r.step as u64, || {
            format!("loss {:.4} | {:.1} steps/s", r.loss, r.steps_per_sec)
        });
        on_step(r);
        if every.is_some_and(|k| r.step.is_multiple_of(k)) || r.step == stop {
            last_ckpt = Some(r.step);
        }
    });
    bar.finish();
    if let Err(e) = result {
        let kept = match last_ckpt {
            Some(s) if matches!(e, TrainError::NonFinite { .. }) => format!(
                "; the last good checkpoint (step {s}) is kept in {} (fix the recipe and run again; --resume would replay the same steps)",
                ckpt_path.parent().unwrap_or(Path::new(".")).display()
            ),
            _ => String::new(),
        };
        return Err(anyhow!("training failed: {e}{kept}"));
    }
    if stop < total {
        return Err(anyhow!(
            "training aborted right after the checkpoint of step {stop} because {ABORT_ENV} = {stop} \
             (testing hook); continue with --resume"
        ));
    }
    Ok(Trained {
        curve: trainer.curve().to_vec(),
        net: trainer.into_best_net(),
        resumed_from,
        steps_per_sec,
    })
}
