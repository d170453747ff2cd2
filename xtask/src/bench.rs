//! `cargo xtask bench [--json]`: the project's speed benchmark, the Rust side of
//! `benches/peer/peer.py` (same recipe, same JSON keys), measured in one process:
//!
//! - `train_steps_per_s`: [`Trainer`] steps/s of the part-2 recipe ([`ScoreNetConfig::part2`]:
//!   `(x, t)` → 5 × (Linear 64 + ReLU) → Linear 2, [`TrainConfig::part2`]: Adam lr 1e-3, batch
//!   5000 fresh ring2d points per step, VP SDE β ∈ [0.1, 20], T = 1). Drawing the batch is part
//!   of the step.
//! - `sample_steps_per_s`: reverse-SDE Euler–Maruyama through [`sample`] with [`NetScore`] at
//!   batch 10⁵: batch × steps / s.
//! - `ode_steps_per_s`: probability-flow ODE Heun (2 network evaluations per step) at batch
//!   10⁵: batch × Heun steps / s.
//! - `peak_rss_mb`: `VmHWM` of `/proc/self/status` (peak resident set), in MiB.
//!
//! The compute floor of one training step is its GEMM work at the reference GEMM rate:
//! `2 n (3 Σ_l in_l out_l − in_1 out_1)` flops (forward, weight gradients, and input gradients
//! of every layer but the first) ≈ 0.50 GFLOP at n = 5000, i.e. ≈ 3.3 ms at
//! [`REFERENCE_GFLOPS`] = 153 GFLOP/s; `floor_fraction = 3.3 ms / measured step time`.

use anyhow::{anyhow, Context, Result};
use smoluchowski::datasets::Ring2d;
use smoluchowski::losses::{TrainConfig, Trainer};
use smoluchowski::nets::{NetScore, ScoreNet, ScoreNetConfig};
use smoluchowski::samplers::{sample, Method, SamplerConfig};
use smoluchowski::sde::VpSde;
use std::time::Instant;

/// GEMM rate (GFLOP/s, f32) of the 2-core reference machine for these shapes.
pub const REFERENCE_GFLOPS: f64 = 153.0;

const SEED: u64 = 0;
const TRAIN_BATCH: usize = 5000;
const TRAIN_WARMUP: usize = 50;
const TRAIN_STEPS: usize = 300;
const SAMPLE_BATCH: usize = 100_000;
const SAMPLE_WARMUP: usize = 3;
const SAMPLE_STEPS: usize = 20;
const ODE_STEPS: usize = 20;
/// Reverse time step of the notes (grid of `T − t_eps` / steps with this spacing).
const DT: f64 = 5e-3;

/// Flops of the GEMMs of one training step (forward + backward) at batch `n`.
pub fn train_step_flops(cfg: &ScoreNetConfig, n: usize) -> f64 {
    let shapes = cfg.layer_shapes();
    let s: usize = shapes.iter().map(|&(i, o)| i * o).sum();
    let first = shapes[0].0 * shapes[0].1;
    2.0 * n as f64 * (3 * s - first) as f64
}

/// Peak resident set size (`VmHWM`) of this process in MiB.
pub fn peak_rss_mb() -> Result<f64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or_else(|| anyhow!("no VmHWM line in /proc/self/status"))?;
    let kb: f64 = line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow!("malformed line {line:?}"))?
        .parse()
        .with_context(|| format!("parsing {line:?}"))?;
    Ok(kb / 1024.0)
}

/// Worker threads rayon uses (its own rule: `RAYON_NUM_THREADS`, else the available cores).
fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// 1-minute load average (`/proc/loadavg`), if readable.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Runs the benchmark; prints a table, or one JSON object with `json`.
pub fn run(json: bool) -> Result<()> {
    let sde = VpSde::new(0.1, 20.0, 1.0).map_err(|e| anyhow!("VpSde: {e}"))?;
    let data = Ring2d::new(200.0).map_err(|e| anyhow!("ring2d: {e}"))?;
    let net_cfg = ScoreNetConfig::part2();
    let net = ScoreNet::new(net_cfg.clone(), SEED).map_err(|e| anyhow!("ScoreNet: {e}"))?;

    // (a) training
    let cfg = TrainConfig {
        steps: TRAIN_WARMUP + TRAIN_STEPS,
        batch_size: TRAIN_BATCH,
        seed: SEED,
        ..TrainConfig::part2()
    };
    let mut trainer =
        Trainer::new(net, &sde, &data, cfg).map_err(|e| anyhow!("training setup: {e}"))?;
    let mut last_loss = f64::NAN;
    trainer
        .run_until(TRAIN_WARMUP, None, |_| {})
        .map_err(|e| anyhow!("training warm-up: {e}"))?;
    let t0 = Instant::now();
    trainer
        .run_until(TRAIN_WARMUP + TRAIN_STEPS, None, |r| last_loss = r.loss)
        .map_err(|e| anyhow!("training: {e}"))?;
    let train_s = t0.elapsed().as_secs_f64();
    let train_sps = TRAIN_STEPS as f64 / train_s;
    let flops = train_step_flops(&net_cfg, TRAIN_BATCH);
    let floor_s = flops / (REFERENCE_GFLOPS * 1e9);
    let step_s = train_s / TRAIN_STEPS as f64;
    let net = trainer.into_best_net();

    // Sampling grids with spacing DT: `steps` steps from T down to T − steps·DT.
    let t_end = 1.0;
    let grid =
        |steps: usize, method: Method| SamplerConfig::new(method, steps, t_end - steps as f64 * DT);
    let mut score = NetScore::new(&net, &sde);
    let mut timed = |method: Method, steps: usize| -> Result<(f64, bool)> {
        sample(
            &sde,
            &mut score,
            &grid(SAMPLE_WARMUP, method),
            SAMPLE_BATCH,
            SEED,
            None,
        )
        .map_err(|e| anyhow!("sampling warm-up: {e}"))?;
        let t0 = Instant::now();
        let out = sample(
            &sde,
            &mut score,
            &grid(steps, method),
            SAMPLE_BATCH,
            SEED,
            None,
        )
        .map_err(|e| anyhow!("sampling: {e}"))?;
        let s = t0.elapsed().as_secs_f64();
        Ok((s, out.samples.iter().all(|v| v.is_finite())))
    };
    // (b) reverse-SDE Euler–Maruyama, (c) probability-flow Heun.
    let (em_s, em_finite) = timed(Method::EulerMaruyama, SAMPLE_STEPS)?;
    let (ode_s, ode_finite) = timed(Method::ProbabilityFlowHeun, ODE_STEPS)?;
    let sample_sps = (SAMPLE_BATCH * SAMPLE_STEPS) as f64 / em_s;
    let ode_sps = (SAMPLE_BATCH * ODE_STEPS) as f64 / ode_s;
    let rss = peak_rss_mb()?;
    let threads = rayon_threads();

    if json {
        let v = serde_json::json!({
            "train_steps_per_s": (train_sps * 100.0).round() / 100.0,
            "sample_steps_per_s": sample_sps.round(),
            "ode_steps_per_s": ode_sps.round(),
            "peak_rss_mb": (rss * 10.0).round() / 10.0,
            "implementation": "smoluchowski (Rust, AVX2+FMA kernels where available else gemm, rayon)",
            "threads": threads,
            "load_average_1min": load_average(),
            "seed": SEED,
            "network": "MLP (x,t)->5x[Linear 64, ReLU]->Linear 2 (6x64), float32",
            "train_batch": TRAIN_BATCH,
            "train_warmup_steps": TRAIN_WARMUP,
            "train_timed_steps": TRAIN_STEPS,
            "train_seconds": (train_s * 1000.0).round() / 1000.0,
            "train_final_loss": (last_loss * 1e4).round() / 1e4,
            "train_step_gflop": flops / 1e9,
            "train_gflops": flops / step_s / 1e9,
            "train_floor_ms": floor_s * 1e3,
            "train_floor_fraction": floor_s / step_s,
            "sample_batch": SAMPLE_BATCH,
            "sample_timed_steps": SAMPLE_STEPS,
            "sample_seconds": (em_s * 1000.0).round() / 1000.0,
            "ode_batch": SAMPLE_BATCH,
            "ode_timed_heun_steps": ODE_STEPS,
            "ode_seconds": (ode_s * 1000.0).round() / 1000.0,
            "dt": DT,
            "outputs_finite": em_finite && ode_finite,
        });
        println!("{v}");
    } else {
        let rows = [
            (
                format!("training (batch {TRAIN_BATCH}, Adam)"),
                format!(
                    "{train_sps:.1} steps/s  ({:.2} ms/step, {:.0} GFLOP/s, {:.0}% of the {:.1} ms floor)",
                    step_s * 1e3,
                    flops / step_s / 1e9,
                    100.0 * floor_s / step_s,
                    floor_s * 1e3
                ),
            ),
            (
                format!("reverse-SDE Euler-Maruyama (batch {SAMPLE_BATCH})"),
                format!("{:.3} M sample-steps/s", sample_sps / 1e6),
            ),
            (
                format!("probability-flow ODE Heun (batch {SAMPLE_BATCH})"),
                format!("{:.3} M Heun steps/s", ode_sps / 1e6),
            ),
            ("peak resident memory".to_string(), format!("{rss:.0} MB")),
        ];
        let load = load_average().map_or("?".to_string(), |l| format!("{l:.2}"));
        println!("smoluchowski on CPU, {threads} rayon thread(s), load average {load}");
        let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        for (name, val) in rows {
            println!("  {name:<w$}  {val}");
        }
    }
    Ok(())
}
