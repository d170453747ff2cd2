//! The UNet behind the network seam, end to end: Ho et al.'s DDPM ε-loss in the one training
//! loop (checkpoint and resume bit-identical), then DDPM ancestral sampling through
//! `NetworkScore` — no UNet-specific code outside `nets::unet`.

use rand::Rng;
use smoluchowski::datasets::Dataset;
use smoluchowski::losses::{
    DataMode, DsmObjective, LrSchedule, OptimizerConfig, TimeSampling, TrainConfig, TrainLoop,
    Weighting,
};
use smoluchowski::nets::{NetOutput, NetworkScore, ScoreNetwork, UNet, UNetConfig};
use smoluchowski::samplers::{sample_ddpm, DdpmVariance};
use smoluchowski::sde::{DdpmSchedule, DdpmScheduleKind};

/// 8×8 one-channel images: a 3×3 bright square (value 1) at a uniform position on a −1
/// background.
struct Squares;

impl Dataset for Squares {
    fn dim(&self) -> usize {
        64
    }
    fn sample_into<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f64]) {
        for img in out.chunks_exact_mut(64) {
            img.fill(-1.0);
            let (i, j) = (rng.gen_range(0..6), rng.gen_range(0..6));
            for u in 0..3 {
                for v in 0..3 {
                    img[(i + u) * 8 + j + v] = 1.0;
                }
            }
        }
    }
}

fn unet() -> UNet {
    UNet::new(
        UNetConfig {
            side: 8,
            channels: 1,
            base: 8,
            mults: vec![1, 2],
            time_features: 8,
            time_scale: 1000.0,
            groups: 4,
            output: NetOutput::Noise,
        },
        7,
    )
    .unwrap()
}

#[test]
fn unet_trains_on_the_ddpm_loss_resumes_and_samples() {
    let schedule = DdpmSchedule::new(
        DdpmScheduleKind::Linear {
            beta_start: 1e-4,
            beta_end: 0.2,
        },
        50,
    )
    .unwrap();
    let kernel = schedule.kernel().unwrap();
    let cfg = TrainConfig {
        steps: 60,
        batch_size: 24,
        optimizer: OptimizerConfig::Adam,
        lr: 3e-3,
        lr_schedule: LrSchedule::Constant,
        grad_clip: Some(1.0),
        ema_decay: None,
        t_eps: 1e-3,
        weighting: Weighting::Sigma2,
        time_sampling: TimeSampling::Discrete { levels: 50 },
        data: DataMode::Fresh,
        checkpoint_every: Some(30),
        seed: 11,
    };
    let obj = || DsmObjective::new(&kernel, &Squares, cfg.clone(), 64).unwrap();
    let mut straight = TrainLoop::with_objective(unet(), obj());
    straight.run_until(60, None, |_| {}).unwrap();
    let curve = straight.curve();
    let mean = |r: &[smoluchowski::losses::CurveRow]| {
        r.iter().map(|r| r.loss).sum::<f64>() / r.len() as f64
    };
    let (first, last) = (mean(&curve[..10]), mean(&curve[50..]));
    assert!(last < 0.7 * first, "ε-loss {first} → {last}");

    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("unet.safetensors");
    let mut a = TrainLoop::with_objective(unet(), obj());
    a.run_until(30, Some(&ck), |_| {}).unwrap();
    let mut b: TrainLoop<UNet, _> = TrainLoop::resume_with(&ck, obj()).unwrap();
    b.run_until(60, None, |_| {}).unwrap();
    assert_eq!(b.params(), straight.params(), "resume is bit-identical");
    // Debug text compares NaN bucket losses (empty time buckets) as equal.
    let text = |c: &[smoluchowski::losses::CurveRow]| format!("{c:?}");
    assert!(
        text(b.curve()) == text(straight.curve()),
        "resumed curve differs"
    );

    let net = straight.net().clone();
    let mut score = NetworkScore::new(net.clone(), net.params(), &kernel);
    let out = sample_ddpm(&schedule, DdpmVariance::Beta, &mut score, 6, 3, None).unwrap();
    assert_eq!((out.dim, out.samples.len(), out.nfe), (64, 6 * 64, 50));
    assert!(out.samples.iter().all(|v| v.is_finite()));
}
