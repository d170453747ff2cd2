use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smoluchowski_datasets::{Dataset, Gaussian};
use smoluchowski_losses::{
    dsm_loss, DataMode, LrSchedule, OptimizerConfig, TrainConfig, TrainError, Trainer, Weighting,
};
use smoluchowski_nets::{Activation, NetOutput, NetScore, ScoreNet, ScoreNetConfig, TimeEmbedding};
use smoluchowski_sde::{ForwardSde, GaussianOracle, Score, VpSde};
use std::cell::Cell;

fn small_net() -> ScoreNetConfig {
    ScoreNetConfig {
        dim: 2,
        width: 32,
        depth: 2,
        activation: Activation::Silu,
        residual: true,
        time_embedding: TimeEmbedding::Fourier {
            frequencies: 3,
            max_frequency: 4.0,
        },
        output: NetOutput::Noise,
    }
}

fn small_train(steps: usize) -> TrainConfig {
    TrainConfig {
        steps,
        batch_size: 256,
        optimizer: OptimizerConfig::Adam,
        lr: 3e-3,
        lr_schedule: LrSchedule::Constant,
        grad_clip: None,
        ema_decay: None,
        t_eps: 1e-3,
        weighting: Weighting::Sigma2,
        time_sampling: Default::default(),
        data: DataMode::Fresh,
        checkpoint_every: None,
        seed: 7,
    }
}

/// A zero network predicting noise has loss E‖ε‖² = d under λ = σ² (and so does a zero
/// score network: ‖σ·0 + ε‖²). n = 2·10⁵ rows, Var‖ε‖² = 2d, so the standard error is
/// √(2d/n) = 0.0045; the bound 0.025 is 5.6 standard errors (two-sided α ≈ 2e-8).
#[test]
fn zero_network_loss_is_dimension() {
    let sde = VpSde::song_default();
    let data = Gaussian::new(vec![1.0, -2.0], vec![0.3, 0.5]).unwrap();
    for output in [NetOutput::Noise, NetOutput::Score] {
        let cfg = ScoreNetConfig {
            output,
            ..small_net()
        };
        let net = ScoreNet::from_flat(cfg.clone(), &vec![0.0; cfg.num_params()]).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let r = dsm_loss(
            &net,
            &sde,
            &data,
            Weighting::Sigma2,
            1e-3,
            200_000,
            &mut rng,
        );
        assert!((r.mean - 2.0).abs() < 0.025, "{output:?}: {}", r.mean);
        assert_eq!(r.bucket_counts.iter().sum::<usize>(), 200_000);
        for m in r.bucket_means {
            // Each bucket has ≈ 2·10⁴ rows: standard error 0.014, bound 0.08 ≈ 5.6 s.e.
            assert!((m - 2.0).abs() < 0.08, "bucket mean {m}");
        }
    }
}

/// Training on Gaussian data lowers the loss and brings the learned score close to the exact
/// one, `∇log p_t(x) = −(x − mμ)/(m²s² + σ²)`, measured as the relative error
/// E‖σ(s_θ − s)‖² / E‖σ s‖² over x ~ p_t at several t (the initial network is ≈ 1 or worse).
#[test]
fn training_learns_the_exact_gaussian_score() {
    let sde = VpSde::song_default();
    let mean = vec![1.0, -0.5];
    let std = vec![0.5, 0.8];
    let data = Gaussian::new(mean.clone(), std.clone()).unwrap();
    let cfg = small_train(400);
    let net = ScoreNet::new(small_net(), 3).unwrap();
    let eval = |net: &ScoreNet| {
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        dsm_loss(net, &sde, &data, Weighting::Sigma2, 1e-3, 20_000, &mut rng).mean
    };
    let before = eval(&net);
    let mut losses = Vec::new();
    let mut tr = Trainer::new(net.clone(), &sde, &data, cfg).unwrap();
    tr.run(None, |r| losses.push(r.loss)).unwrap();
    assert_eq!(losses.len(), 400);
    let after = eval(tr.net());
    assert!(after < 0.8 * before, "loss {before} -> {after}");

    let mut oracle = GaussianOracle::new(sde, mean, std).unwrap();
    let rel_err = |net: &ScoreNet, oracle: &mut GaussianOracle<VpSde>, t: f64| {
        let n = 4000;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut x = vec![0.0f64; 2 * n];
        oracle.sample_marginal(t, &mut rng, &mut x);
        let mut exact = vec![0.0f64; 2 * n];
        oracle.score_f64(&x, t, &mut exact);
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let mut s = vec![0.0f32; 2 * n];
        NetScore::new(net, &sde).score(&xf, t, &mut s);
        let (mut num, mut den) = (0.0, 0.0);
        for i in 0..2 * n {
            num += (s[i] as f64 - exact[i]).powi(2);
            den += exact[i].powi(2);
        }
        num / den
    };
    for t in [0.1, 0.3, 0.6, 0.9] {
        let e0 = rel_err(&net, &mut oracle, t);
        let e1 = rel_err(tr.net(), &mut oracle, t);
        assert!(
            e1 < 0.05 && e1 < 0.2 * e0,
            "t = {t}: relative score error {e0} -> {e1}"
        );
    }
}

/// N steps straight equals N/2 steps + checkpoint + resume + N/2 steps, bit for bit (weights,
/// EMA weights), with AdamW, cosine schedule, clipping, EMA and a fixed dataset.
/// Batches of ≥ 1024 rows are drawn one step ahead, concurrently with the gradient; a resumed
/// trainer draws its first batch in place. Both must give the same bits.
#[test]
fn prefetched_batches_equal_batches_drawn_in_place() {
    let sde = VpSde::song_default();
    let data = Gaussian::new(vec![0.5, 0.0], vec![0.2, 1.0]).unwrap();
    let cfg = TrainConfig {
        steps: 4,
        batch_size: 1500,
        checkpoint_every: Some(1),
        ..small_train(4)
    };
    let net = ScoreNet::new(small_net(), 9).unwrap();
    let mut straight = Trainer::new(net.clone(), &sde, &data, cfg.clone()).unwrap();
    straight.run(None, |_| {}).unwrap();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for split in 1..4 {
        let dir = tempfile::tempdir().unwrap();
        let ck = dir.path().join("ck.safetensors");
        let mut first = Trainer::new(net.clone(), &sde, &data, cfg.clone()).unwrap();
        first.run_until(split, Some(&ck), |_| {}).unwrap();
        drop(first);
        let mut second = Trainer::resume(&ck, &sde, &data, cfg.clone()).unwrap();
        second.run(None, |_| {}).unwrap();
        assert_eq!(
            bits(straight.params()),
            bits(second.params()),
            "split {split}"
        );
    }
}

#[test]
fn resume_is_bit_identical() {
    let sde = VpSde::song_default();
    let data = Gaussian::new(vec![0.5, 0.0], vec![0.2, 1.0]).unwrap();
    let cfg = TrainConfig {
        steps: 24,
        batch_size: 128,
        optimizer: OptimizerConfig::AdamW { weight_decay: 0.01 },
        lr_schedule: LrSchedule::Cosine {
            warmup_steps: 5,
            final_lr: 1e-4,
        },
        grad_clip: Some(0.5),
        ema_decay: Some(0.9),
        data: DataMode::Fixed { size: 1000 },
        checkpoint_every: Some(5),
        ..small_train(24)
    };
    let net = ScoreNet::new(small_net(), 8).unwrap();
    let mut straight = Trainer::new(net.clone(), &sde, &data, cfg.clone()).unwrap();
    straight.run(None, |_| {}).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck.safetensors");
    let mut first = Trainer::new(net, &sde, &data, cfg.clone()).unwrap();
    first.run_until(12, Some(&ck), |_| {}).unwrap();
    assert_eq!(first.step(), 12);
    drop(first);
    let mut second = Trainer::resume(&ck, &sde, &data, cfg.clone()).unwrap();
    assert_eq!(second.step(), 12);
    second.run(None, |_| {}).unwrap();
    assert_eq!(second.step(), 24);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(straight.params()), bits(second.params()));
    assert_eq!(
        bits(&straight.ema_net().unwrap().to_flat()),
        bits(&second.ema_net().unwrap().to_flat())
    );
    assert_ne!(
        bits(straight.params()),
        bits(&straight.ema_net().unwrap().to_flat())
    );

    // A different training config is refused with a clear error.
    let other = TrainConfig { lr: 1e-2, ..cfg };
    let e = Trainer::resume(&ck, &sde, &data, other)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("differs"), "{e}");
}

/// The same run inside 1-thread and 2-thread pools gives identical weights.
#[test]
fn training_is_thread_count_independent() {
    let sde = VpSde::song_default();
    let data = Gaussian::new(vec![0.5, 0.0], vec![0.2, 1.0]).unwrap();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let net = ScoreNet::new(ScoreNetConfig::part2(), 1).unwrap();
            let cfg = TrainConfig {
                batch_size: 2000,
                ..small_train(4)
            };
            let mut t = Trainer::new(net, &sde, &data, cfg).unwrap();
            t.run(None, |_| {}).unwrap();
            t.params().to_vec()
        })
    };
    assert_eq!(run(1), run(2));
}

/// A dataset that starts returning NaN after `good_calls` batches.
struct Poisoned {
    inner: Gaussian,
    calls: Cell<usize>,
    good_calls: usize,
}

impl Dataset for Poisoned {
    fn dim(&self) -> usize {
        2
    }
    fn sample_into<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f64]) {
        self.inner.sample_into(rng, out);
        let c = self.calls.get();
        self.calls.set(c + 1);
        if c >= self.good_calls {
            out[0] = f64::NAN;
        }
    }
}

/// A NaN loss stops training with an error naming the step; the last good checkpoint stays.
#[test]
fn non_finite_loss_stops_with_step_and_keeps_checkpoint() {
    let sde = VpSde::song_default();
    let data = Poisoned {
        inner: Gaussian::new(vec![0.0, 0.0], vec![1.0, 1.0]).unwrap(),
        calls: Cell::new(0),
        good_calls: 7,
    };
    let cfg = TrainConfig {
        checkpoint_every: Some(3),
        ..small_train(20)
    };
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck.safetensors");
    let mut t = Trainer::new(
        ScoreNet::new(small_net(), 1).unwrap(),
        &sde,
        &data,
        cfg.clone(),
    )
    .unwrap();
    let err = t.run(Some(&ck), |_| {}).unwrap_err();
    assert!(
        matches!(err, TrainError::NonFinite { step: 7, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("step 7"), "{err}");
    assert_eq!(t.step(), 7);
    let resumed = Trainer::resume(&ck, &sde, &data, cfg).unwrap();
    assert_eq!(resumed.step(), 6);
}

#[test]
fn bad_train_configs_give_errors_naming_field_and_value() {
    let base = small_train(10);
    let cases: Vec<(TrainConfig, &str)> = vec![
        (
            TrainConfig {
                lr: f64::NAN,
                ..base.clone()
            },
            "lr must be finite and > 0 (got NaN)",
        ),
        (
            TrainConfig {
                lr: -1e-3,
                ..base.clone()
            },
            "lr must be > 0 (got -0.001)",
        ),
        (
            TrainConfig {
                batch_size: 0,
                ..base.clone()
            },
            "batch_size must be ≥ 1 (got 0)",
        ),
        (
            TrainConfig {
                steps: 0,
                ..base.clone()
            },
            "steps must be ≥ 1 (got 0)",
        ),
        (
            TrainConfig {
                t_eps: 0.0,
                ..base.clone()
            },
            "t_eps must be > 0 (got 0)",
        ),
        (
            TrainConfig {
                ema_decay: Some(1.0),
                ..base.clone()
            },
            "ema_decay must be in [0, 1) (got 1)",
        ),
        (
            TrainConfig {
                grad_clip: Some(-1.0),
                ..base.clone()
            },
            "grad_clip must be > 0 (got -1)",
        ),
        (
            TrainConfig {
                optimizer: OptimizerConfig::AdamW {
                    weight_decay: f32::NAN,
                },
                ..base.clone()
            },
            "weight_decay must be finite and ≥ 0 (got NaN)",
        ),
        (
            TrainConfig {
                lr_schedule: LrSchedule::Cosine {
                    warmup_steps: 10,
                    final_lr: 0.0,
                },
                ..base.clone()
            },
            "warmup_steps must be < steps = 10 (got 10)",
        ),
        (
            TrainConfig {
                data: DataMode::Fixed { size: 0 },
                ..base.clone()
            },
            "data.size must be ≥ 1 (got 0)",
        ),
        (
            TrainConfig {
                checkpoint_every: Some(0),
                ..base.clone()
            },
            "checkpoint_every must be ≥ 1 (got 0)",
        ),
    ];
    let sde = VpSde::song_default();
    let data = Gaussian::new(vec![0.0, 0.0], vec![1.0, 1.0]).unwrap();
    for (cfg, needle) in cases {
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains(needle), "{e} (wanted {needle})");
        let net = ScoreNet::new(small_net(), 0).unwrap();
        assert!(Trainer::new(net, &sde, &data, cfg).is_err());
    }
    let data3 = Gaussian::new(vec![0.0; 3], vec![1.0; 3]).unwrap();
    let e = Trainer::new(ScoreNet::new(small_net(), 0).unwrap(), &sde, &data3, base)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("dimension 3"), "{e}");
}

#[test]
fn train_config_toml_round_trip_and_unknown_field() {
    let cfg = TrainConfig {
        optimizer: OptimizerConfig::AdamW { weight_decay: 0.01 },
        lr_schedule: LrSchedule::Cosine {
            warmup_steps: 100,
            final_lr: 1e-5,
        },
        grad_clip: Some(1.0),
        ema_decay: Some(0.999),
        data: DataMode::Fixed { size: 10_000 },
        checkpoint_every: Some(1000),
        ..TrainConfig::part2()
    };
    let s = toml::to_string(&cfg).unwrap();
    assert_eq!(toml::from_str::<TrainConfig>(&s).unwrap(), cfg);
    let bad = s.replace("steps = 20000", "steps = 20000\nstpes = 3");
    let e = toml::from_str::<TrainConfig>(&bad).unwrap_err().to_string();
    assert!(e.contains("stpes"), "{e}");
}

/// Cosine schedule: linear warm-up to lr, then lr at the start of decay and → final_lr.
#[test]
fn cosine_schedule_values() {
    let cfg = TrainConfig {
        steps: 110,
        lr: 1e-3,
        lr_schedule: LrSchedule::Cosine {
            warmup_steps: 10,
            final_lr: 1e-5,
        },
        ..small_train(110)
    };
    assert!((cfg.lr_at(0) - 1e-4).abs() < 1e-15);
    assert!((cfg.lr_at(9) - 1e-3).abs() < 1e-15);
    assert!((cfg.lr_at(10) - 1e-3).abs() < 1e-15);
    assert!((cfg.lr_at(60) - (1e-5 + 0.5 * (1e-3 - 1e-5))).abs() < 1e-12);
    assert!((cfg.lr_at(110) - 1e-5).abs() < 1e-15);
    assert_eq!(small_train(5).lr_at(3), 3e-3);
}

/// λ(t) of each weighting, on the VP kernel (σ² = 1 − m²): σ², √(1 − m²) = σ, 1.
#[test]
fn weighting_lambdas() {
    let sde = VpSde::song_default();
    let t = 0.3;
    let (m, s) = (sde.mean_coef(t), sde.marginal_std(t));
    assert!((Weighting::Sigma2.lambda(m, s) - s * s).abs() < 1e-15);
    assert!((Weighting::Part1.lambda(m, s) - s).abs() < 1e-12);
    assert_eq!(Weighting::None.lambda(m, s), 1.0);
}
