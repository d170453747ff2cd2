//! The harness's training adapter: one shared function that trains a score network with the
//! harness's checkpoint, `--resume`, abort-hook and progress-bar conventions (the training loop
//! itself is the library's `smoluchowski::losses::TrainLoop`).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use smoluchowski::datasets::Dataset;
use smoluchowski::losses::{TrainConfig, TrainError, Trainer};
use smoluchowski::nets::{ScoreNet, ScoreNetConfig};
use smoluchowski::sde::ForwardSde;

use crate::output::write_text;
use crate::progress::Progress;
use crate::seeding::derived_seed;

/// Testing hook: stop training right after the checkpoint of this step (exit code 1), as if
/// the process had been killed there; `--resume` then continues from that checkpoint.
pub const ABORT_ENV: &str = "SMOLUCHOWSKI_ABORT_AFTER_STEP";

/// Checkpoint file names inside the harness's checkpoint directory.
const TRAINER_CKPT: &str = "trainer.safetensors";
const CURVE_CKPT: &str = "loss_curve.csv";

/// One row of the loss curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurveRow {
    /// Step number (1-based).
    pub step: usize,
    /// Training loss of the step's batch.
    pub loss: f64,
    /// Learning rate of the step.
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

/// The loss curve as CSV (`step,loss,lr,grad_norm`, shortest round-trip floats).
pub fn curve_csv(rows: &[CurveRow]) -> String {
    let mut s = String::with_capacity(40 * rows.len() + 32);
    s.push_str("step,loss,lr,grad_norm\n");
    for r in rows {
        // `{}` prints the shortest round-trip form: reading it back gives the same f64.
        let _ = writeln!(s, "{},{},{},{}", r.step, r.loss, r.lr, r.grad_norm);
    }
    s
}

fn parse_curve(text: &str, path: &Path) -> Result<Vec<CurveRow>> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let bad = || {
            anyhow!(
                "{}: line {}: malformed loss-curve row {line:?}",
                path.display(),
                i + 1
            )
        };
        if f.len() != 4 {
            return Err(bad());
        }
        rows.push(CurveRow {
            step: f[0].parse().map_err(|_| bad())?,
            loss: f[1].parse().map_err(|_| bad())?,
            lr: f[2].parse().map_err(|_| bad())?,
            grad_norm: f[3].parse().map_err(|_| bad())?,
        });
    }
    Ok(rows)
}

/// Write `text` to `path` atomically (temporary file + rename).
fn write_atomic_text(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("csv.tmp");
    write_text(&tmp, text)?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// What training hands on.
pub struct Trained {
    /// The trained network (the EMA weights when the recipe keeps an EMA).
    pub net: ScoreNet,
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
    {
        let cfg = training.clone();
        let total = cfg.steps;
        let ckpt_path = ckpts.save_path(TRAINER_CKPT)?;
        let curve_path = ckpts.save_path(CURVE_CKPT)?;
        let (mut trainer, mut rows, resumed_from) = match ckpts.resumable(TRAINER_CKPT) {
            Some(p) => {
                let tr = Trainer::resume(&p, sde, data, cfg.clone())
                    .map_err(|e| anyhow!("cannot resume from {}: {e}", p.display()))?;
                let step = tr.step();
                let text = std::fs::read_to_string(&curve_path).with_context(|| {
                    format!(
                        "--resume: checkpoint at step {step} but no loss curve {}; run without --resume",
                        curve_path.display()
                    )
                })?;
                let mut rows = parse_curve(&text, &curve_path)?;
                rows.retain(|r| r.step <= step);
                anyhow::ensure!(
                    rows.len() == step && rows.iter().enumerate().all(|(i, r)| r.step == i + 1),
                    "--resume: the loss curve {} does not cover steps 1..={step}; run without --resume",
                    curve_path.display()
                );
                println!(
                    "{name}: resuming training from step {step}/{total} ({})",
                    p.display()
                );
                (tr, rows, Some(step))
            }
            None => {
                let net = ScoreNet::new(network.clone(), derived_seed(seed, "network_init"))
                    .map_err(|e| anyhow!("network: {e}"))?;
                let tr = Trainer::new(net, sde, data, cfg.clone())
                    .map_err(|e| anyhow!("training: {e}"))?;
                (tr, Vec::with_capacity(total), None)
            }
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
        let mut io_error: Option<anyhow::Error> = None;
        let result = trainer.run_until(stop, Some(&ckpt_path), |r| {
            rows.push(CurveRow {
                step: r.step,
                loss: r.loss,
                lr: r.lr,
                grad_norm: r.grad_norm,
            });
            steps_per_sec = r.steps_per_sec;
            bar.update(r.step as u64, || {
                format!("loss {:.4} | {:.0} steps/s", r.loss, r.steps_per_sec)
            });
            // The trainer writes its checkpoint right after this callback: the curve first.
            if every.is_some_and(|k| r.step.is_multiple_of(k)) || r.step == stop {
                if let Err(e) = write_atomic_text(&curve_path, &curve_csv(&rows)) {
                    io_error.get_or_insert(e);
                }
                last_ckpt = Some(r.step);
            }
        });
        bar.finish();
        if let Some(e) = io_error {
            return Err(e.context("cannot write the loss-curve checkpoint"));
        }
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
            net: trainer.into_best_net(),
            curve: rows,
            resumed_from,
            steps_per_sec,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_csv_round_trips_exactly() {
        let rows = vec![
            CurveRow {
                step: 1,
                loss: 0.1 + 0.2,
                lr: 2e-3 / 3.0,
                grad_norm: 1.0e-7,
            },
            CurveRow {
                step: 2,
                loss: f64::MIN_POSITIVE,
                lr: 1.0,
                grad_norm: 12345.678,
            },
        ];
        let back = parse_curve(&curve_csv(&rows), Path::new("x.csv")).unwrap();
        assert_eq!(back, rows);
    }
}
