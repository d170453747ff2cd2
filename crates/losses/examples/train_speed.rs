//! Measures training steps/s and `NetScore` sample-steps/s on ring2d, and the DSM loss reached.
//! `cargo run --release -p smoluchowski-losses --example train_speed -- [part2|default] [steps] [batch] [const|cosine]`
use rand_chacha::rand_core::SeedableRng;
use smoluchowski_datasets::Ring2d;
use smoluchowski_losses::{dsm_loss, train, LrSchedule, TrainConfig, Weighting};
use smoluchowski_nets::{DfdxNetScore, NetScore, ScoreNet, ScoreNetConfig};
use smoluchowski_sde::{Score, VpSde};
use std::time::Instant;

fn round3(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| (x * 1000.0).round() / 1000.0).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map(String::as_str).unwrap_or("part2");
    let steps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(300);
    let batch: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5000);
    let ncfg = if which == "part2" {
        ScoreNetConfig::part2()
    } else {
        ScoreNetConfig::default_2d()
    };
    let sde = VpSde::song_default();
    let data = Ring2d::new(200.0).unwrap();
    let mut cfg = TrainConfig {
        steps,
        batch_size: batch,
        ..TrainConfig::part2()
    };
    if args.get(4).map(String::as_str) == Some("cosine") {
        cfg.lr = 2e-3;
        cfg.lr_schedule = LrSchedule::Cosine {
            warmup_steps: steps / 20,
            final_lr: 1e-5,
        };
        cfg.ema_decay = Some(0.999);
    }
    let net = ScoreNet::new(ncfg, 1).unwrap();
    let t0 = Instant::now();
    let mut last = 0.0;
    let tr = train(net, &sde, &data, cfg, None, |r| {
        if r.step % (steps / 5).max(1) == 0 {
            println!(
                "step {} loss {:.4} lr {:.2e} {:.1} steps/s",
                r.step, r.loss, r.lr, r.steps_per_sec
            );
        }
        last = r.steps_per_sec;
    })
    .unwrap();
    let secs = t0.elapsed().as_secs_f64();
    println!("{which}: {steps} steps in {secs:.2}s = {last:.1} steps/s");
    let net = tr.ema_net().unwrap_or_else(|| tr.net().clone());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12345);
    let r = dsm_loss(
        &net,
        &sde,
        &data,
        Weighting::Sigma2,
        1e-5,
        200_000,
        &mut rng,
    );
    println!(
        "eval loss {:.4} buckets {:?}",
        r.mean,
        round3(&r.bucket_means)
    );

    let n = 100_000;
    let x: Vec<f32> = (0..2 * n).map(|i| ((i as f32) * 0.37).sin()).collect();
    let mut out = vec![0.0f32; 2 * n];
    let mut s = NetScore::new(&net, &sde);
    let reps = 20;
    let t0 = Instant::now();
    for k in 0..reps {
        s.score(&x, 0.5 + 0.01 * k as f64, &mut out);
    }
    let el = t0.elapsed().as_secs_f64();
    println!(
        "NetScore fused: {:.2} M sample-steps/s",
        (reps * n) as f64 / el / 1e6
    );
    let mut s2 = DfdxNetScore::new(&net, &sde, 16_384);
    let t0 = Instant::now();
    for k in 0..5 {
        s2.score(&x, 0.5 + 0.01 * k as f64, &mut out);
    }
    let el = t0.elapsed().as_secs_f64();
    println!(
        "DfdxNetScore: {:.2} M sample-steps/s",
        (5 * n) as f64 / el / 1e6
    );
}
