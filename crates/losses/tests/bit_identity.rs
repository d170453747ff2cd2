//! Pins the exact bits of training runs (final parameters, EMA parameters, loss/lr/grad-norm
//! sequence) so that refactors of the trainers, the optimiser and the network seam cannot change
//! a single number.
//!
//! The constants were recorded at commit 796830f (main before the `nets-seam` refactor) by
//! running this file with `PRINT_HASHES=1 cargo test -p smoluchowski-losses --test bit_identity
//! -- --nocapture` and copying the printed values; they must never be edited to make a change
//! pass.

use smoluchowski_core::streams::fnv1a64;
use smoluchowski_datasets::{Gaussian, GaussianMixture, Ring2d};
use smoluchowski_losses::{
    DataMode, DdpmKernel, LrSchedule, OptimizerConfig, Projection, ScoreObjective, SsmConfig,
    SsmTrainer, StepReport, TimeSampling, TrainConfig, Trainer, Weighting,
};
use smoluchowski_nets::{Activation, NetOutput, ScoreNet, ScoreNetConfig, TimeEmbedding};
use smoluchowski_sde::VpSde;

fn hash_f32(v: &[f32]) -> u64 {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect();
    fnv1a64(&bytes)
}

/// Loss, lr and grad-norm bits of every step, and the bucket losses.
#[derive(Default)]
struct Curve(Vec<u8>);

impl Curve {
    fn push(&mut self, r: &StepReport) {
        self.0.extend((r.step as u64).to_le_bytes());
        for v in [r.loss, r.lr, r.grad_norm] {
            self.0.extend(v.to_bits().to_le_bytes());
        }
        for v in r.bucket_loss {
            self.0.extend(v.to_bits().to_le_bytes());
        }
    }
    fn hash(&self) -> u64 {
        fnv1a64(&self.0)
    }
}

fn check(name: &str, got: [u64; 3], want: [u64; 3]) {
    if std::env::var_os("PRINT_HASHES").is_some() {
        println!(
            "{name}: [{:#018x}, {:#018x}, {:#018x}]",
            got[0], got[1], got[2]
        );
    }
    assert_eq!(
        got, want,
        "{name}: [params, ema, curve] hashes changed: got [{:#018x}, {:#018x}, {:#018x}]",
        got[0], got[1], got[2]
    );
}

fn mlp(output: NetOutput) -> ScoreNetConfig {
    ScoreNetConfig {
        dim: 2,
        width: 32,
        depth: 3,
        activation: Activation::Relu,
        residual: true,
        time_embedding: TimeEmbedding::Fourier {
            frequencies: 4,
            max_frequency: 8.0,
        },
        output,
    }
}

/// Part 2-like DSM run with every feature on: batch 1024 (prefetch), AdamW, cosine with warm-up,
/// grad clip, EMA, checkpoint every 10 steps.
fn dsm_cfg() -> TrainConfig {
    TrainConfig {
        steps: 60,
        batch_size: 1024,
        optimizer: OptimizerConfig::AdamW { weight_decay: 0.01 },
        lr: 3e-3,
        lr_schedule: LrSchedule::Cosine {
            warmup_steps: 10,
            final_lr: 1e-4,
        },
        grad_clip: Some(1.0),
        ema_decay: Some(0.95),
        t_eps: 1e-3,
        weighting: Weighting::Sigma2,
        time_sampling: TimeSampling::Uniform,
        data: DataMode::Fresh,
        checkpoint_every: Some(10),
        seed: 42,
    }
}

const DSM_RING2D: [u64; 3] = [0x1582cdbd46efe75a, 0x0f933443dcc821e3, 0xf373bd1e30df8ae9];
const DSM_DDPM: [u64; 3] = [0xc4e43514c7b0b8ba, 0x4b06c38bfe6d5e72, 0xe7af59f0b5753727];
const SSM_SLICED: [u64; 3] = [0x5eea0b143b289439, 0x192e7112d096406c, 0x2276acc7d86f15e7];
const SSM_DENOISING: [u64; 3] = [0xab270804e74ca0e4, 0x1ae3480577c8d7fe, 0x52f44c33526acd98];

#[test]
fn dsm_run_and_resume_are_pinned() {
    let sde = VpSde::song_default();
    let data = Ring2d::new(1.0).unwrap();
    let cfg = dsm_cfg();
    let net = ScoreNet::new(mlp(NetOutput::Noise), 3).unwrap();
    let mut curve = Curve::default();
    let mut tr = Trainer::new(net.clone(), &sde, &data, cfg.clone()).unwrap();
    tr.run(None, |r| curve.push(r)).unwrap();
    let ema = tr.ema_net().unwrap().to_flat();
    let got = [hash_f32(tr.params()), hash_f32(&ema), curve.hash()];
    check("DSM_RING2D", got, DSM_RING2D);

    // Checkpoint at 30 (run_until writes at the end), resume, finish: the same bits and the
    // same curve.
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck.safetensors");
    let mut curve2 = Curve::default();
    let mut first = Trainer::new(net, &sde, &data, cfg.clone()).unwrap();
    first.run_until(30, Some(&ck), |r| curve2.push(r)).unwrap();
    drop(first);
    let mut second = Trainer::resume(&ck, &sde, &data, cfg).unwrap();
    assert_eq!(second.step(), 30);
    second.run(None, |r| curve2.push(r)).unwrap();
    let ema2 = second.ema_net().unwrap().to_flat();
    let got2 = [hash_f32(second.params()), hash_f32(&ema2), curve2.hash()];
    check("DSM_RING2D (resumed)", got2, DSM_RING2D);
}

#[test]
fn ddpm_discrete_run_is_pinned() {
    let n = 100;
    let betas: Vec<f64> = (0..n)
        .map(|i| 1e-4 + (0.02 - 1e-4) * i as f64 / (n - 1) as f64)
        .collect();
    let mut ab = vec![1.0];
    let mut acc = 1.0;
    for b in betas {
        acc *= 1.0 - b;
        ab.push(acc);
    }
    let kernel = DdpmKernel::new(&ab).unwrap();
    let data = Gaussian::new(vec![1.0, -0.5], vec![0.5, 1.5]).unwrap();
    let cfg = TrainConfig {
        time_sampling: TimeSampling::Discrete { levels: n },
        optimizer: OptimizerConfig::Adam,
        lr_schedule: LrSchedule::Constant,
        grad_clip: None,
        batch_size: 512,
        data: DataMode::Fixed { size: 2000 },
        checkpoint_every: None,
        ..dsm_cfg()
    };
    let net = ScoreNet::new(mlp(NetOutput::Noise), 5).unwrap();
    let mut curve = Curve::default();
    let mut tr = Trainer::new(net, &kernel, &data, cfg).unwrap();
    tr.run(None, |r| curve.push(r)).unwrap();
    let ema = tr.ema_net().unwrap().to_flat();
    check(
        "DSM_DDPM",
        [hash_f32(tr.params()), hash_f32(&ema), curve.hash()],
        DSM_DDPM,
    );
}

fn mixture() -> GaussianMixture {
    GaussianMixture::new(
        vec![vec![-2.0, 0.0], vec![2.0, 0.0]],
        vec![vec![0.5, 0.5], vec![0.5, 0.5]],
        vec![1.0, 1.0],
    )
    .unwrap()
}

fn ssm_run(objective: ScoreObjective, noise_std: f64) -> [u64; 3] {
    let net_cfg = ScoreNetConfig {
        activation: Activation::Silu,
        residual: false,
        time_embedding: TimeEmbedding::Concat,
        ..mlp(NetOutput::Score)
    };
    let cfg = SsmConfig {
        objective,
        noise_std,
        time: 0.25,
        steps: 60,
        batch_size: 200,
        lr: 3e-3,
        lr_schedule: LrSchedule::Cosine {
            warmup_steps: 6,
            final_lr: 1e-4,
        },
        ema_decay: Some(0.9),
        seed: 13,
    };
    let data = mixture();
    let net = ScoreNet::new(net_cfg, 9).unwrap();
    let mut curve = Curve::default();
    let mut tr = SsmTrainer::new(net, &data, cfg).unwrap();
    tr.run(|r| curve.push(r)).unwrap();
    let params = tr.net().to_flat();
    let best = tr.into_best_net().to_flat();
    [hash_f32(&params), hash_f32(&best), curve.hash()]
}

#[test]
fn ssm_sliced_run_is_pinned() {
    let got = ssm_run(
        ScoreObjective::SlicedFd {
            projections: 2,
            h: 0.01,
            projection: Projection::Rademacher,
        },
        0.1,
    );
    check("SSM_SLICED", got, SSM_SLICED);
}

#[test]
fn ssm_denoising_run_is_pinned() {
    let got = ssm_run(ScoreObjective::Denoising, 0.3);
    check("SSM_DENOISING", got, SSM_DENOISING);
}
