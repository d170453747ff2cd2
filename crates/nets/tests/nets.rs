use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smoluchowski_nets::dfdx::prelude::*;
use smoluchowski_nets::{
    Activation, DfdxNetScore, FusedMlp, NetIoError, NetOutput, NetScore, ScoreNet, ScoreNetConfig,
    Silu, TimeEmbedding,
};
use smoluchowski_sde::{ForwardSde, Score, VpSde};

fn random_points(n: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * d).map(|_| rng.gen_range(-2.0f32..2.0)).collect()
}

fn configs() -> Vec<ScoreNetConfig> {
    let mut v = vec![ScoreNetConfig::part2(), ScoreNetConfig::default_2d()];
    for act in [Activation::Gelu, Activation::Tanh] {
        v.push(ScoreNetConfig {
            dim: 3,
            width: 24,
            depth: 3,
            activation: act,
            residual: true,
            time_embedding: TimeEmbedding::Fourier {
                frequencies: 1,
                max_frequency: 1.0,
            },
            output: NetOutput::Score,
        });
    }
    v
}

/// silu(x) = x σ(x); d/dx = σ(x)(1 + x(1 − σ(x))). Autograd vs the analytic derivative and
/// vs central finite differences in f64.
#[test]
fn silu_value_and_gradient_match_finite_differences() {
    let dev = Cpu::default();
    let xs: Vec<f32> = vec![-6.0, -2.5, -1.0, -0.3, 0.0, 0.2, 0.9, 1.7, 4.0, 8.0];
    let x = dev.tensor_from_vec(xs.clone(), (xs.len(),));
    let y = Silu.forward(x.leaky_trace());
    let vals = y.as_vec();
    let g = y.sum::<Rank0, _>().backward();
    let grad = g.get(&x).as_vec();
    let silu = |x: f64| x / (1.0 + (-x).exp());
    for (i, &xi) in xs.iter().enumerate() {
        let x64 = xi as f64;
        assert!((vals[i] as f64 - silu(x64)).abs() < 1e-6, "value at {xi}");
        let h = 1e-5;
        let fd = (silu(x64 + h) - silu(x64 - h)) / (2.0 * h);
        assert!(
            (grad[i] as f64 - fd).abs() < 1e-5,
            "grad at {xi}: {} vs {fd}",
            grad[i]
        );
    }
}

/// The whole network's autograd (including the residual tape merge) against central finite
/// differences of the f64-accumulated loss, for a few parameters of every layer.
#[test]
fn network_gradient_matches_finite_differences() {
    for cfg in [
        ScoreNetConfig {
            dim: 2,
            width: 8,
            depth: 3,
            activation: Activation::Silu,
            residual: true,
            time_embedding: TimeEmbedding::Concat,
            output: NetOutput::Noise,
        },
        ScoreNetConfig {
            width: 8,
            depth: 2,
            activation: Activation::Tanh,
            residual: false,
            ..ScoreNetConfig::default_2d()
        },
    ] {
        let net = ScoreNet::new(cfg.clone(), 3).unwrap();
        let x = random_points(16, 2, 4);
        let input = net.input_common_t(&x, 0.4);
        let loss_of = |n: &ScoreNet| -> f64 {
            n.forward(input.clone())
                .as_vec()
                .iter()
                .map(|&v| (v as f64).powi(2))
                .sum::<f64>()
        };
        let out = net.forward(input.leaky_trace());
        let g = out.square().sum::<Rank0, _>().backward();
        let mut grad = vec![0.0f32; net.num_params()];
        net.grads_to_flat(&g, &mut grad);
        let flat = net.to_flat();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..12 {
            let i = rng.gen_range(0..flat.len());
            let h = 1e-2f32;
            let mut p = flat.clone();
            p[i] += h;
            let up = loss_of(&ScoreNet::from_flat(cfg.clone(), &p).unwrap());
            p[i] -= 2.0 * h;
            let down = loss_of(&ScoreNet::from_flat(cfg.clone(), &p).unwrap());
            let fd = (up - down) / (2.0 * h as f64);
            let tol = 2e-3 + 2e-2 * fd.abs();
            assert!(
                (grad[i] as f64 - fd).abs() < tol,
                "param {i}: autograd {} vs fd {fd}",
                grad[i]
            );
        }
    }
}

/// The fused forward pass equals the dfdx forward pass to 1e-5 (relative to 1 + |y|), for
/// every activation, residual or not, Concat or Fourier, with a partial last block.
#[test]
fn fused_forward_matches_dfdx() {
    for (c, cfg) in configs().into_iter().enumerate() {
        let net = ScoreNet::new(cfg.clone(), 10 + c as u64).unwrap();
        let n = 1237;
        let x = random_points(n, cfg.dim, 7);
        let fused = FusedMlp::from_net(&net);
        for &t in &[1e-3, 0.37, 1.0] {
            let want = net.predict(&x, t);
            let mut got = vec![0.0f32; x.len()];
            fused.forward_common_t(&x, t, &mut got);
            for (a, b) in got.iter().zip(&want) {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "{cfg:?} t={t}: {a} vs {b}"
                );
            }
        }
    }
}

/// Same numbers for 1 and 2 threads (fixed row blocks).
#[test]
fn fused_forward_is_thread_count_independent() {
    let net = ScoreNet::new(ScoreNetConfig::default_2d(), 1).unwrap();
    let x = random_points(5000, 2, 8);
    let fused = FusedMlp::from_net(&net);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut out = vec![0.0f32; x.len()];
        pool.install(|| fused.forward_common_t(&x, 0.5, &mut out));
        out
    };
    let a = run(1);
    let b = run(2);
    assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()));
}

/// NetScore converts a noise prediction to a score as s = −ε_θ/σ(t), a score output is passed
/// through, and it agrees with the dfdx reference DfdxNetScore (chunked).
#[test]
fn net_score_converts_noise_to_score() {
    let sde = VpSde::song_default();
    for cfg in configs() {
        let net = ScoreNet::new(cfg.clone(), 2).unwrap();
        let x = random_points(700, cfg.dim, 9);
        let t = 0.25;
        let raw = net.predict(&x, t);
        let mut s = vec![0.0f32; x.len()];
        let mut ns = NetScore::new(&net, &sde);
        assert_eq!(ns.dim(), cfg.dim);
        ns.score(&x, t, &mut s);
        let mut s_ref = vec![0.0f32; x.len()];
        DfdxNetScore::new(&net, &sde, 256).score(&x, t, &mut s_ref);
        let sigma = sde.marginal_std(t) as f32;
        for i in 0..x.len() {
            let want = match cfg.output {
                NetOutput::Noise => -raw[i] / sigma,
                NetOutput::Score => raw[i],
            };
            assert!(
                (s[i] - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "{} vs {}",
                s[i],
                want
            );
            assert!((s_ref[i] - want).abs() <= 1e-6 * (1.0 + want.abs()));
        }
    }
}

#[test]
fn same_seed_same_weights_different_seed_different_weights() {
    let a = ScoreNet::new(ScoreNetConfig::part2(), 42)
        .unwrap()
        .to_flat();
    let b = ScoreNet::new(ScoreNetConfig::part2(), 42)
        .unwrap()
        .to_flat();
    let c = ScoreNet::new(ScoreNetConfig::part2(), 43)
        .unwrap()
        .to_flat();
    assert_eq!(a, b);
    assert_ne!(a, c);
    // Part 2's net: 3→64, 4 × 64→64, 64→2.
    assert_eq!(a.len(), 3 * 64 + 64 + 4 * (64 * 64 + 64) + 64 * 2 + 2);
}

#[test]
fn save_load_round_trip_and_config_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let cfg = ScoreNetConfig::default_2d();
    let net = ScoreNet::new(cfg.clone(), 11).unwrap();
    net.save(&path).unwrap();
    assert!(smoluchowski_nets::sidecar_path(&path).exists());
    let back = ScoreNet::load(&path).unwrap();
    assert_eq!(back.config(), &cfg);
    assert_eq!(back.to_flat(), net.to_flat());
    let x = random_points(10, 2, 1);
    assert_eq!(back.predict(&x, 0.3), net.predict(&x, 0.3));
    assert!(ScoreNet::load_expecting(&path, &cfg).is_ok());

    let other = ScoreNetConfig {
        width: 32,
        ..cfg.clone()
    };
    let err = ScoreNet::load_expecting(&path, &other).unwrap_err();
    assert!(matches!(err, NetIoError::ConfigMismatch { .. }));
    assert!(err.to_string().contains("config mismatch"), "{err}");
    // Weights of one architecture loaded into another: a shape error naming the tensor.
    let err = ScoreNet::load_weights(&path, other)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("layers.0.weight") && err.contains("shape"),
        "{err}"
    );
    // Missing file: the error names the path.
    let err = ScoreNet::load(&dir.path().join("nope.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn bad_configs_give_errors_naming_field_and_value() {
    let cases: Vec<(ScoreNetConfig, &str)> = vec![
        (
            ScoreNetConfig {
                width: 0,
                ..ScoreNetConfig::part2()
            },
            "width",
        ),
        (
            ScoreNetConfig {
                depth: 0,
                ..ScoreNetConfig::part2()
            },
            "depth",
        ),
        (
            ScoreNetConfig {
                dim: 0,
                ..ScoreNetConfig::part2()
            },
            "dim",
        ),
        (
            ScoreNetConfig {
                time_embedding: TimeEmbedding::Fourier {
                    frequencies: 4,
                    max_frequency: f64::NAN,
                },
                ..ScoreNetConfig::part2()
            },
            "max_frequency must be finite and ≥ 1 (got NaN)",
        ),
        (
            ScoreNetConfig {
                time_embedding: TimeEmbedding::Fourier {
                    frequencies: 0,
                    max_frequency: 4.0,
                },
                ..ScoreNetConfig::part2()
            },
            "frequencies must be ≥ 1 (got 0)",
        ),
    ];
    for (cfg, needle) in cases {
        let e = ScoreNet::new(cfg, 0).unwrap_err().to_string();
        assert!(e.contains(needle), "{e}");
    }
    let e = ScoreNet::from_flat(ScoreNetConfig::part2(), &[0.0; 3])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("parameters (length)") && e.ends_with("(got 3)"),
        "{e}"
    );
}

#[test]
fn config_serde_round_trip_and_unknown_fields_rejected() {
    for cfg in configs() {
        let s = toml::to_string(&cfg).unwrap();
        let back: ScoreNetConfig = toml::from_str(&s).unwrap();
        assert_eq!(back, cfg);
    }
    let text = r#"
        dim = 2
        width = 64
        depth = 5
        activation = "relu"
        time_embedding = "concat"
        output = "noise"
        widht = 3
    "#;
    let e = toml::from_str::<ScoreNetConfig>(text)
        .unwrap_err()
        .to_string();
    assert!(e.contains("widht"), "{e}");
    let ok = text.replace("widht = 3", "");
    assert_eq!(
        toml::from_str::<ScoreNetConfig>(&ok).unwrap(),
        ScoreNetConfig::part2()
    );
    let fourier = r#"
        dim = 2
        width = 64
        depth = 4
        activation = "relu"
        residual = true
        output = "noise"
        [time_embedding.fourier]
        frequencies = 8
        max_frequency = 32.0
    "#;
    assert_eq!(
        toml::from_str::<ScoreNetConfig>(fourier).unwrap(),
        ScoreNetConfig::default_2d()
    );
}

/// The hand-fused forward/backward (`mlp_loss_and_grad`) equals dfdx's autograd of
/// `(1/n) Σ ‖a ⊙ f(x̃) − b‖²`: loss to 1e-5 relative, every gradient entry to
/// 1e-4 · (1 + max|∂|), for every activation, residual or not; and it is thread-count independent.
#[test]
fn fused_loss_and_grad_match_dfdx_autograd() {
    use smoluchowski_nets::{mlp_loss_and_grad, MlpWorkspace};
    for (c, cfg) in configs().into_iter().enumerate() {
        let net = ScoreNet::new(cfg.clone(), 20 + c as u64).unwrap();
        let n = 777;
        let d = cfg.dim;
        let k = cfg.input_dim();
        let input = random_points(n, k, 30 + c as u64);
        let a = random_points(n, d, 31);
        let b = random_points(n, d, 32);
        let dev = net.device().clone();
        let x = dev.tensor_from_vec(input.clone(), (n, k));
        let at = dev.tensor_from_vec(a.clone(), (n, d));
        let bt = dev.tensor_from_vec(b.clone(), (n, d));
        let pred = net.forward(x.leaky_trace());
        let loss = ((pred * at) - bt).square().sum::<Rank0, _>() * (1.0 / n as f32);
        let want_loss = loss.array() as f64;
        let g = loss.backward();
        let mut want = vec![0.0f32; net.num_params()];
        net.grads_to_flat(&g, &mut want);

        let mut ws = MlpWorkspace::default();
        let mut got = vec![0.0f32; net.num_params()];
        let params = net.to_flat();
        // Twice through the same workspace: buffers are reused correctly.
        for _ in 0..2 {
            let l = mlp_loss_and_grad(&cfg, &params, &input, &a, &b, &mut got, &mut ws);
            assert!(
                (l - want_loss).abs() <= 1e-5 * want_loss.abs(),
                "{cfg:?}: {l} vs {want_loss}"
            );
            let gmax = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for (i, (p, q)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (p - q).abs() <= 1e-4 * (1.0 + gmax),
                    "{cfg:?} param {i}: {p} vs {q}"
                );
            }
        }
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut gr = vec![0.0f32; params.len()];
            pool.install(|| {
                mlp_loss_and_grad(
                    &cfg,
                    &params,
                    &input,
                    &a,
                    &b,
                    &mut gr,
                    &mut MlpWorkspace::default(),
                )
            });
            gr
        };
        assert_eq!(run(1), run(2));
    }
}
