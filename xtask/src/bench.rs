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
//! - `unet_train_images_per_s`: the notes' MNIST UNet ([`UNetConfig::notes_mnist`], 663 745
//!   parameters) trained as in `benches/peer/unet_peer.py`: per step a batch of
//!   [`UNET_BATCH`] images `x_t = √ᾱ x₀ + √(1−ᾱ) ε` at random times, loss
//!   `(1/n) Σ ‖ε_θ(x_t, t) − ε‖²`, forward + backward + Adam (lr 2e-4); images/s.
//! - `unet_sample_images_per_s`: one network evaluation per image (a sampler step) at batch
//!   [`UNET_SAMPLE_BATCH`]; images/s.
//! - `unet_gflops`: the training step's convolution and linear flops
//!   (`3 × UNet::forward_flops_per_image × batch`) per second.
//! - `gemm_gflops`: a [`GEMM_SIZE`]³ f32 product on our kernels (`smoluchowski::nets::matmul`,
//!   rows split over the rayon threads): the machine's GEMM rate with our best kernel;
//!   `unet_gemm_fraction = unet_gflops / gemm_gflops`.
//! - `kernel_level`: the kernel level in use (`portable`, `avx2`, `avx512`;
//!   `SMOLUCHOWSKI_KERNELS` caps it).
//!
//! With `SMOLUCHOWSKI_PROFILE=1` the timed UNet training steps also print, on stderr, their
//! time per operation and shape (`smoluchowski::nets::profile`): ms per step, share of the
//! step, calls per step and the achieved GFLOP/s of each product, then totals per kind
//! (`conv3x3 forward`, `conv3x3 weight gradient`, `groupnorm+silu`, …). Under load ≈ 8 (two
//! other engineers' builds) the convolutions' products took ~70 % of the step, GroupNorm + SiLU
//! ~15 %, the residual additions ~2 %; absolute times under such load are not meaningful.
//!
//! The compute floor of one training step is its GEMM work at the reference GEMM rate:
//! `2 n (3 Σ_l in_l out_l − in_1 out_1)` flops (forward, weight gradients, and input gradients
//! of every layer but the first) ≈ 0.50 GFLOP at n = 5000, i.e. ≈ 3.3 ms at
//! [`REFERENCE_GFLOPS`] = 153 GFLOP/s; `floor_fraction = 3.3 ms / measured step time`.

use anyhow::{anyhow, Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use smoluchowski::datasets::Ring2d;
use smoluchowski::losses::optim::{OptimSettings, Optimizer};
use smoluchowski::losses::{LrSchedule, OptimizerConfig};
use smoluchowski::losses::{TrainConfig, Trainer};
use smoluchowski::nets::{
    NetScore, ScoreNet, ScoreNetConfig, ScoreNetwork, UNet, UNetConfig, UNetInput,
};
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

/// Images per UNet training step (as `unet_peer.py --batch 64`).
pub const UNET_BATCH: usize = 64;
const UNET_WARMUP: usize = 2;
const UNET_STEPS: usize = 5;
/// Images per UNet inference batch (one network evaluation each).
pub const UNET_SAMPLE_BATCH: usize = 256;
const UNET_SAMPLE_REPS: usize = 2;
/// Side of the square GEMM of `gemm_gflops`.
pub const GEMM_SIZE: usize = 1024;
const GEMM_REPS: usize = 10;

/// The UNet part of the benchmark.
pub struct UNetBench {
    /// Training images/s.
    pub train_images_per_s: f64,
    /// Inference images/s.
    pub sample_images_per_s: f64,
    /// Training GFLOP/s.
    pub gflops: f64,
    /// Square-GEMM GFLOP/s on our kernels.
    pub gemm_gflops: f64,
    /// Seconds of the timed training steps.
    pub train_seconds: f64,
    /// Loss of the last timed step.
    pub last_loss: f64,
    /// Parameter count.
    pub params: usize,
}

/// Runs the UNet training steps, the inference batches and the square GEMM.
pub fn unet_bench() -> Result<UNetBench> {
    let net = UNet::new(UNetConfig::notes_mnist(), SEED).map_err(|e| anyhow!("UNet: {e}"))?;
    let d = net.dim();
    let params = net.init_params(SEED);
    let n_params = params.len();
    let settings = OptimSettings {
        optimizer: OptimizerConfig::Adam,
        lr: 2e-4,
        lr_schedule: LrSchedule::Constant,
        steps: UNET_WARMUP + UNET_STEPS,
        grad_clip: None,
        ema_decay: None,
    };
    let mut opt = Optimizer::new(settings, params);
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let x0: Vec<f32> = (0..UNET_BATCH * d)
        .map(|_| rng.gen_range(-1.0f32..1.0))
        .collect();
    let ones = vec![1.0f32; UNET_BATCH * d];
    let (mut xt, mut eps, mut t) = (
        vec![0.0f32; x0.len()],
        vec![0.0f32; x0.len()],
        vec![0.0; UNET_BATCH],
    );
    let (mut out, mut grad) = (vec![0.0f32; x0.len()], vec![0.0f32; n_params]);
    let mut input = UNetInput::default();
    let mut last_loss = f64::NAN;
    let mut step = |k: usize, rng: &mut ChaCha8Rng| {
        for (i, ti) in t.iter_mut().enumerate() {
            *ti = rng.gen_range(1..=200) as f64 / 200.0;
            // Any ᾱ gives the same arithmetic; this is the peer's e^{−10 t}.
            let ab = (-10.0 * *ti).exp();
            let (sa, sb) = (ab.sqrt() as f32, (1.0 - ab).sqrt() as f32);
            for j in i * d..(i + 1) * d {
                let e: f32 = rng.sample(rand_distr::StandardNormal);
                eps[j] = e;
                xt[j] = sa * x0[j] + sb * e;
            }
        }
        net.prepare_input(&xt, &t, &mut input);
        last_loss = net.weighted_sq_loss_and_grad(
            &opt.params,
            &input,
            &ones,
            &eps,
            &mut out,
            &mut grad,
            &mut (),
        );
        opt.step(k, &mut grad, 0.0);
    };
    for k in 0..UNET_WARMUP {
        step(k, &mut rng);
    }
    smoluchowski::nets::profile::take_profile();
    let t0 = Instant::now();
    for k in UNET_WARMUP..UNET_WARMUP + UNET_STEPS {
        step(k, &mut rng);
    }
    let train_seconds = t0.elapsed().as_secs_f64();
    if smoluchowski::nets::profile::profiling_enabled() {
        print_profile(
            &smoluchowski::nets::profile::take_profile(),
            UNET_STEPS,
            train_seconds,
        );
    }
    if !last_loss.is_finite() {
        return Err(anyhow!("UNet training loss is {last_loss}"));
    }
    let train_images_per_s = (UNET_STEPS * UNET_BATCH) as f64 / train_seconds;
    let gflops = 3.0 * net.forward_flops_per_image() * train_images_per_s / 1e9;

    // Inference: one evaluation per image at one time, as in a sampler step.
    let xs: Vec<f32> = (0..UNET_SAMPLE_BATCH * d)
        .map(|_| rng.sample(rand_distr::StandardNormal))
        .collect();
    let ts = vec![0.5; UNET_SAMPLE_BATCH];
    let mut ys = vec![0.0f32; xs.len()];
    net.forward_rows(&opt.params, &xs, &ts, &mut ys);
    let t0 = Instant::now();
    for _ in 0..UNET_SAMPLE_REPS {
        net.forward_rows(&opt.params, &xs, &ts, &mut ys);
    }
    let sample_images_per_s =
        (UNET_SAMPLE_REPS * UNET_SAMPLE_BATCH) as f64 / t0.elapsed().as_secs_f64();
    if !ys.iter().all(|v| v.is_finite()) {
        return Err(anyhow!("UNet outputs are not finite"));
    }

    // The machine's GEMM rate on our kernels.
    let g = GEMM_SIZE;
    let a: Vec<f32> = (0..g * g)
        .map(|i| ((i % 97) as f32 - 48.0) / 97.0)
        .collect();
    let b: Vec<f32> = (0..g * g)
        .map(|i| ((i % 89) as f32 - 44.0) / 89.0)
        .collect();
    let mut c = vec![0.0f32; g * g];
    smoluchowski::nets::matmul(g, g, g, &a, &b, &mut c).map_err(|e| anyhow!(e))?;
    let t0 = Instant::now();
    for _ in 0..GEMM_REPS {
        smoluchowski::nets::matmul(g, g, g, &a, &b, &mut c).map_err(|e| anyhow!(e))?;
    }
    let gemm_gflops = 2.0 * (g * g * g * GEMM_REPS) as f64 / t0.elapsed().as_secs_f64() / 1e9;
    Ok(UNetBench {
        train_images_per_s,
        sample_images_per_s,
        gflops,
        gemm_gflops,
        train_seconds,
        last_loss,
        params: n_params,
    })
}

/// Prints the operation breakdown of `steps` timed UNet training steps (`SMOLUCHOWSKI_PROFILE`)
/// to stderr: per record milliseconds per step, share of the step, calls per step and the
/// achieved GFLOP/s of the products; records sorted by time, then totals by kind.
fn print_profile(records: &[smoluchowski::nets::profile::OpTime], steps: usize, seconds: f64) {
    let step_ms = seconds * 1e3 / steps as f64;
    eprintln!("UNet training step: {step_ms:.1} ms ({steps} steps); per step:");
    let mut sorted: Vec<_> = records.iter().collect();
    sorted.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    let mut kinds: Vec<(String, f64, f64)> = Vec::new();
    for r in &sorted {
        let ms = r.seconds * 1e3 / steps as f64;
        let rate = if r.flops > 0.0 {
            format!("{:7.1} GFLOP/s", r.flops / r.seconds / 1e9)
        } else {
            String::new()
        };
        eprintln!(
            "  {ms:8.2} ms {:5.1}%  {:3} calls  {rate}  {}",
            100.0 * ms / step_ms,
            r.calls / steps as u64,
            r.label
        );
        if r.label.starts_with("unet ") {
            continue;
        }
        let kind = if r.label.starts_with("conv") {
            // `conv3x3 s1 28x28 64->32 weight gradient` → `conv3x3 weight gradient`
            let words: Vec<&str> = r.label.split(' ').collect();
            format!("{} {}", words[0], words[4..].join(" "))
        } else {
            r.label
                .split(|c: char| c.is_ascii_digit())
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        };
        match kinds.iter_mut().find(|k| k.0 == kind) {
            Some(k) => {
                k.1 += ms;
                k.2 += r.flops;
            }
            None => kinds.push((kind, ms, r.flops)),
        }
    }
    kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
    eprintln!("by kind:");
    for (kind, ms, flops) in kinds {
        let rate = flops / steps as f64 / (ms * 1e-3) / 1e9;
        eprintln!(
            "  {ms:8.2} ms {:5.1}%  {rate:7.1} GFLOP/s  {kind}",
            100.0 * ms / step_ms
        );
    }
}

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
    let level = smoluchowski::nets::kernel_level_from_env().map_err(|e| anyhow!("{e}"))?;
    let unet = unet_bench()?;
    let round2 = |x: f64| (x * 100.0).round() / 100.0;

    if json {
        let v = serde_json::json!({
            "train_steps_per_s": (train_sps * 100.0).round() / 100.0,
            "sample_steps_per_s": sample_sps.round(),
            "ode_steps_per_s": ode_sps.round(),
            "peak_rss_mb": (rss * 10.0).round() / 10.0,
            "implementation": "smoluchowski (Rust, AVX-512 / AVX2+FMA kernels by run-time dispatch, else gemm; rayon)",
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
            "kernel_level": level.name(),
            "unet_params": unet.params,
            "unet_batch": UNET_BATCH,
            "unet_timed_steps": UNET_STEPS,
            "unet_train_seconds": (unet.train_seconds * 1000.0).round() / 1000.0,
            "unet_train_final_loss": (unet.last_loss * 1e4).round() / 1e4,
            "unet_train_images_per_s": round2(unet.train_images_per_s),
            "unet_sample_batch": UNET_SAMPLE_BATCH,
            "unet_sample_images_per_s": round2(unet.sample_images_per_s),
            "unet_gflops": round2(unet.gflops),
            "gemm_size": GEMM_SIZE,
            "gemm_gflops": round2(unet.gemm_gflops),
            "unet_gemm_fraction": (unet.gflops / unet.gemm_gflops * 1000.0).round() / 1000.0,
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
            (
                format!("UNet training (batch {UNET_BATCH}, Adam)"),
                format!(
                    "{:.1} images/s  ({:.0} GFLOP/s, {:.0}% of the {GEMM_SIZE}³ GEMM's {:.0} GFLOP/s)",
                    unet.train_images_per_s,
                    unet.gflops,
                    100.0 * unet.gflops / unet.gemm_gflops,
                    unet.gemm_gflops
                ),
            ),
            (
                format!("UNet inference (batch {UNET_SAMPLE_BATCH})"),
                format!("{:.1} images/s", unet.sample_images_per_s),
            ),
            ("kernel level".to_string(), level.name().to_string()),
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
