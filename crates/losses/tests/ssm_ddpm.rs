//! Sliced score matching (finite differences), fixed-σ DSM, and discrete DDPM training.

use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use smoluchowski_datasets::{Dataset, GaussianMixture};
use smoluchowski_losses::{
    eval_rng, fd_ssm_terms, relative_score_error, sliced_score_matching_loss, ssm_loss_and_grad,
    DataMode, DdpmKernel, DsmBatch, LrSchedule, OptimizerConfig, Projection, ScoreObjective,
    SsmBatch, SsmConfig, SsmTrainer, TimeSampling, TrainConfig, Trainer, Weighting,
};
use smoluchowski_nets::dfdx::prelude::TensorFromVec;
use smoluchowski_nets::{Activation, NetOutput, ScoreNet, ScoreNetConfig, TimeEmbedding};
use smoluchowski_sde::ForwardSde;

fn score_net(width: usize, depth: usize) -> ScoreNetConfig {
    ScoreNetConfig {
        dim: 2,
        width,
        depth,
        activation: Activation::Silu,
        residual: false,
        time_embedding: TimeEmbedding::Concat,
        output: NetOutput::Score,
    }
}

fn sliced(projections: usize, h: f64) -> ScoreObjective {
    ScoreObjective::SlicedFd {
        projections,
        h,
        projection: Projection::Rademacher,
    }
}

fn ssm_cfg(objective: ScoreObjective, noise_std: f64, steps: usize) -> SsmConfig {
    SsmConfig {
        objective,
        noise_std,
        time: 0.0,
        steps,
        batch_size: 256,
        lr: 3e-3,
        lr_schedule: LrSchedule::Cosine {
            warmup_steps: steps / 10,
            final_lr: 1e-4,
        },
        ema_decay: None,
        seed: 11,
    }
}

/// Two well-separated components, `σ = 0.5`: `½ N((−2, 0), 0.5²) + ½ N((2, 0), 0.5²)`.
fn bimodal() -> GaussianMixture {
    GaussianMixture::new(
        vec![vec![-2.0, 0.0], vec![2.0, 0.0]],
        vec![vec![0.5, 0.5], vec![0.5, 0.5]],
        vec![1.0, 1.0],
    )
    .unwrap()
}

/// For a linear score `s = A x` on `x ~ N(0, diag(1, 4))` the finite-difference SSM integrand
/// is exact, `ℓ = vᵀ A v + ½ (vᵀ A x)²`, and `E ℓ = tr A + ½ tr(A Σ Aᵀ)`.
/// A = [[−0.5, 0.3], [0.1, −1.2]], Σ = diag(1, 4): tr A = −1.7,
/// A Σ Aᵀ diagonal = (0.25 + 0.09·4, 0.01 + 1.44·4) = (0.61, 5.77), so E ℓ = −1.7 + 3.19 = 1.49.
/// The Monte-Carlo mean (n = 2·10⁵) must be within 4.5 standard errors (two-sided α ≈ 7e-6),
/// and equal the mean of the exact integrand to f32 rounding.
#[test]
fn fd_ssm_loss_of_linear_score_equals_analytic_objective() {
    let a = [[-0.5, 0.3], [0.1, -1.2]];
    let n = 200_000;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut x = vec![0.0; 2 * n];
    for p in x.chunks_exact_mut(2) {
        p[0] = rng.sample::<f64, _>(StandardNormal);
        p[1] = 2.0 * rng.sample::<f64, _>(StandardNormal);
    }
    for projection in [Projection::Rademacher, Projection::Gaussian] {
        let mut v = vec![0.0; 2 * n];
        projection.fill(&mut rng, &mut v);
        let lin = |x: &[f64], out: &mut [f64]| {
            for (p, o) in x.chunks_exact(2).zip(out.chunks_exact_mut(2)) {
                o[0] = a[0][0] * p[0] + a[0][1] * p[1];
                o[1] = a[1][0] * p[0] + a[1][1] * p[1];
            }
        };
        let loss = sliced_score_matching_loss(lin, &x, &v, 2, 1e-2);
        let vals: Vec<f64> = x
            .chunks_exact(2)
            .zip(v.chunks_exact(2))
            .map(|(p, v)| {
                let av = [
                    a[0][0] * v[0] + a[0][1] * v[1],
                    a[1][0] * v[0] + a[1][1] * v[1],
                ];
                let ax = [
                    a[0][0] * p[0] + a[0][1] * p[1],
                    a[1][0] * p[0] + a[1][1] * p[1],
                ];
                let q = v[0] * ax[0] + v[1] * ax[1];
                v[0] * av[0] + v[1] * av[1] + 0.5 * q * q
            })
            .collect();
        let mean = vals.iter().sum::<f64>() / n as f64;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let se = (var / n as f64).sqrt();
        assert!(
            (loss - mean).abs() < 1e-4,
            "{projection:?}: FD {loss} vs exact integrand {mean}"
        );
        assert!(
            (loss - 1.49).abs() < 4.5 * se,
            "{projection:?}: {loss} vs 1.49 (se {se})"
        );
    }
}

/// The batch loss of `ssm_loss_and_grad` is the generic FD-SSM loss of the network's score, and
/// its gradient (dfdx autograd through both evaluations) matches central differences in the
/// parameters; the same for the denoising objective.
#[test]
fn ssm_and_dsm_gradients_match_parameter_finite_differences() {
    let data = bimodal();
    let net = ScoreNet::new(score_net(16, 2), 5).unwrap();
    for objective in [sliced(2, 0.05), ScoreObjective::Denoising] {
        let cfg = SsmConfig {
            batch_size: 64,
            ..ssm_cfg(objective, 0.3, 10)
        };
        let mut batch = SsmBatch::default();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        batch.build(&net, &cfg, &data, 64, &mut rng);
        let mut grad = vec![0.0f32; net.num_params()];
        let loss = ssm_loss_and_grad(&net, &cfg, &batch, &mut grad);
        let loss_at = |flat: &[f32]| -> f64 {
            let n2 = ScoreNet::from_flat(net.config().clone(), flat).unwrap();
            let out = n2
                .forward(
                    n2.device()
                        .tensor_from_vec(batch.input.clone(), (batch.input.len() / 3, 3)),
                )
                .as_vec();
            batch.loss(&cfg, &out, 2, None)
        };
        assert!((loss_at(&net.to_flat()) - loss).abs() < 1e-9);
        let flat = net.to_flat();
        let gmax = grad.iter().fold(0.0f32, |m, g| m.max(g.abs())) as f64;
        for i in (0..flat.len()).step_by(7) {
            let eps = 1e-2f32;
            let (mut p, mut m) = (flat.clone(), flat.clone());
            p[i] += eps;
            m[i] -= eps;
            let fd = (loss_at(&p) - loss_at(&m)) / (2.0 * eps as f64);
            assert!(
                (fd - grad[i] as f64).abs() < 2e-2 * gmax + 1e-3,
                "{objective:?} param {i}: autograd {} vs FD {fd} (max |g| {gmax})",
                grad[i]
            );
        }
    }
    // The SSM batch loss equals the generic FD-SSM loss of the same score function.
    let cfg = ssm_cfg(sliced(3, 0.02), 0.0, 10);
    let mut batch = SsmBatch::default();
    batch.build(&net, &cfg, &data, 50, &mut ChaCha8Rng::seed_from_u64(4));
    let mut grad = vec![0.0f32; net.num_params()];
    let got = ssm_loss_and_grad(&net, &cfg, &batch, &mut grad);
    // Recover the points from the input rows: x = (x₊ + x₋)/2.
    let m = batch.v.len() / 2;
    // Point p owns projection rows 3p..3p+3; row r has input width 3 (x, y, t).
    let x: Vec<f64> = (0..m / 3)
        .flat_map(|p| (0..2).map(move |j| (3 * p, j)))
        .map(|(r, j)| 0.5 * (batch.input[r * 3 + j] as f64 + batch.input[(m + r) * 3 + j] as f64))
        .collect();
    let want = sliced_score_matching_loss(
        |p, o| {
            let pf: Vec<f32> = p.iter().map(|&a| a as f32).collect();
            for (a, b) in o.iter_mut().zip(net.predict(&pf, 0.0)) {
                *a = b as f64;
            }
        },
        &x,
        &batch.v,
        2,
        0.02,
    );
    assert!(
        (got - want).abs() < 2e-3 * (1.0 + want.abs()),
        "{got} vs {want}"
    );
}

/// `fd_ssm_terms`'s output gradient is the derivative of its loss (checked by central
/// differences in the outputs, in f64 arithmetic on f32-representable values).
#[test]
fn fd_ssm_output_gradient_is_exact() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (m, d, h) = (5, 2, 0.25);
    let mut v = vec![0.0; m * d];
    Projection::Gaussian.fill(&mut rng, &mut v);
    let out: Vec<f32> = (0..2 * m * d).map(|_| rng.gen_range(-2.0..2.0)).collect();
    let mut g = vec![0.0f32; 2 * m * d];
    fd_ssm_terms(&v, &out[..m * d], &out[m * d..], d, h, Some(&mut g));
    for i in 0..2 * m * d {
        let e = 1.0 / 64.0;
        let (mut p, mut q) = (out.clone(), out.clone());
        p[i] += e;
        q[i] -= e;
        let f = |o: &[f32]| fd_ssm_terms(&v, &o[..m * d], &o[m * d..], d, h, None);
        let fd = (f(&p) - f(&q)) / (2.0 * e as f64);
        assert!((fd - g[i] as f64).abs() < 1e-5, "{i}: {fd} vs {}", g[i]);
    }
}

/// Training by FD sliced score matching alone (no noise, no kernel) on a well-separated bimodal
/// mixture brings the network's score to within 15 % relative L2 error of the exact `∇ log p` on
/// 20 000 fresh data points; fixed-σ DSM (σ = 0.1, against the exact score of `p ∗ N(0, σ²)`)
/// within 30 %. Measured (2 × 32 SiLU, 1500 steps, batch 128): SSM 0.086, DSM 0.141; a network
/// that outputs the score of a single N(0, diag(2.25+0.25, 0.25)) would be at ≈ 0.9.
#[test]
fn ssm_training_learns_the_mixture_score() {
    const STEPS: usize = 1500;
    let data = bimodal();
    let mut x = vec![0.0; 2 * 20_000];
    data.sample_into(&mut eval_rng(1), &mut x);
    for (objective, sigma, tol) in [
        (sliced(2, 1e-2), 0.0, 0.15),
        (ScoreObjective::Denoising, 0.1, 0.3),
    ] {
        let net = ScoreNet::new(score_net(32, 2), 2).unwrap();
        let cfg = SsmConfig {
            batch_size: 128,
            lr: 1e-2,
            ..ssm_cfg(objective, sigma, STEPS)
        };
        let mut tr = SsmTrainer::new(net, &data, cfg).unwrap();
        tr.run(|_| {}).unwrap();
        let target = data.smoothed(sigma).unwrap();
        let err = relative_score_error(tr.net(), 0.0, &x, |p, o| target.score(p, o));
        assert!(err < tol, "{objective:?}: relative score error {err}");
        eprintln!("{objective:?}: relative score error {err:.4}");
    }
}

/// Same config ⇒ bit-identical weights; a different seed ⇒ different weights.
#[test]
fn ssm_training_is_deterministic() {
    let data = bimodal();
    let run = |seed: u64| {
        let net = ScoreNet::new(score_net(16, 2), 1).unwrap();
        let mut tr = SsmTrainer::new(
            net,
            &data,
            SsmConfig {
                seed,
                ..ssm_cfg(sliced(2, 1e-2), 0.1, 20)
            },
        )
        .unwrap();
        tr.run(|_| {}).unwrap();
        tr.net().to_flat()
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

/// Bad SSM parameters are rejected naming the field; a noise-output network is refused.
#[test]
fn bad_ssm_configs_are_rejected_with_the_field_named() {
    let data = bimodal();
    let cases = [
        (ssm_cfg(sliced(0, 1e-2), 0.0, 10), "projections"),
        (ssm_cfg(sliced(1, 0.0), 0.0, 10), "objective.h"),
        (ssm_cfg(sliced(1, 1e-2), -1.0, 10), "noise_std"),
        (ssm_cfg(ScoreObjective::Denoising, 0.0, 10), "noise_std"),
        (ssm_cfg(sliced(1, 1e-2), 0.0, 0), "steps"),
    ];
    for (cfg, field) in cases {
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains(field), "{e}");
    }
    let noise = ScoreNetConfig {
        output: NetOutput::Noise,
        ..score_net(8, 1)
    };
    let e = SsmTrainer::new(
        ScoreNet::new(noise, 0).unwrap(),
        &data,
        ssm_cfg(sliced(1, 1e-2), 0.0, 10),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("output"), "{e}");
}

/// The mixture's exact score equals the gradient of its log-density (central differences).
#[test]
fn mixture_score_is_the_gradient_of_the_log_density() {
    let g = GaussianMixture::eight_gaussians().smoothed(0.3).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for _ in 0..50 {
        let x = [rng.gen_range(-3.0..3.0), rng.gen_range(-3.0..3.0)];
        let mut s = [0.0; 2];
        g.score(&x, &mut s);
        for j in 0..2 {
            let (mut p, mut m) = (x, x);
            p[j] += 1e-5;
            m[j] -= 1e-5;
            let fd = (g.log_density(&p) - g.log_density(&m)) / 2e-5;
            assert!(
                (fd - s[j]).abs() < 1e-5 * (1.0 + fd.abs()),
                "{x:?}: {fd} vs {}",
                s[j]
            );
        }
    }
}

// ---- discrete DDPM --------------------------------------------------------------------------

/// Ho et al.'s linear schedule `β_i = β_start + (β_end − β_start)(i − 1)/(N − 1)` and
/// `ᾱ_i = Π_{j ≤ i} (1 − β_j)`.
fn linear_alphas_bar(n: usize) -> Vec<f64> {
    let mut ab = vec![1.0];
    for i in 1..=n {
        let b = 1e-4 + (0.02 - 1e-4) * (i - 1) as f64 / (n - 1) as f64;
        ab.push(ab[i - 1] * (1.0 - b));
    }
    ab
}

/// The kernel is the chain's at every level (`m² = ᾱ_i`, `σ² = 1 − ᾱ_i`) and is the kernel of its
/// own SDE: `d ln m/dt = a(t)` inside each cell, `σ² = 1 − m²` (VP), `g² = −2a`.
#[test]
fn ddpm_kernel_is_exact_at_the_levels_and_consistent_with_its_sde() {
    let ab = linear_alphas_bar(200);
    let k = DdpmKernel::new(&ab).unwrap();
    assert_eq!(k.levels(), 200);
    for (i, &a) in ab.iter().enumerate() {
        let t = i as f64 / 200.0;
        assert!((k.mean_coef(t).powi(2) - a).abs() < 1e-13, "{i}");
        assert!((k.marginal_std(t).powi(2) - (1.0 - a)).abs() < 1e-13, "{i}");
    }
    for c in [0usize, 17, 199] {
        let t = (c as f64 + 0.5) / 200.0;
        let e = 1e-4 / 200.0;
        let dlnm = (k.mean_coef(t + e).ln() - k.mean_coef(t - e).ln()) / (2.0 * e);
        assert!(
            (dlnm - k.drift_coef(t)).abs() < 1e-8 * (1.0 + dlnm.abs()),
            "{c}"
        );
        assert!((k.diffusion(t).powi(2) + 2.0 * k.drift_coef(t)).abs() < 1e-10);
    }
    assert!(DdpmKernel::new(&[1.0]).is_err());
    let e = DdpmKernel::new(&[1.0, 0.5, 0.6]).unwrap_err().to_string();
    assert!(e.contains("alphas_bar[2]"), "{e}");
}

/// With `TimeSampling::Discrete`, the kernel of the chain, λ = σ² and noise output, each row of a
/// DSM batch is Ho et al.'s ε-loss: the time is a level `i/N` (uniform over the N levels: χ² test,
/// df = 9, critical value 27.88 at α = 1e-3, scipy.stats.chi2.isf(1e-3, 9)), the input is
/// `√ᾱ_i x₀ + √(1 − ᾱ_i) ε` and the row loss is `‖ε_θ − ε‖²` (a = 1, b = ε).
#[test]
fn discrete_batches_are_the_ddpm_epsilon_loss() {
    let n_levels = 10;
    let ab = linear_alphas_bar(n_levels);
    let kernel = DdpmKernel::new(&ab).unwrap();
    let cfg = ScoreNetConfig {
        output: NetOutput::Noise,
        ..score_net(8, 1)
    };
    let mut batch = DsmBatch::with_time_sampling(TimeSampling::Discrete { levels: n_levels });
    let rows = 20_000;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x0_val = [0.7, -1.3];
    batch.build(
        &cfg,
        &kernel,
        Weighting::Sigma2,
        1e-3,
        rows,
        &mut rng,
        |_, x0| {
            for p in x0.chunks_exact_mut(2) {
                p.copy_from_slice(&x0_val);
            }
        },
    );
    let mut counts = vec![0usize; n_levels + 1];
    for r in 0..rows {
        let t = batch.input[r * 3 + 2] as f64;
        let i = (t * n_levels as f64).round() as usize;
        assert!((1..=n_levels).contains(&i) && (t - i as f64 / n_levels as f64).abs() < 1e-6);
        counts[i] += 1;
        let (m, s) = (ab[i].sqrt(), (1.0 - ab[i]).sqrt());
        for (j, &x0j) in x0_val.iter().enumerate() {
            assert!((batch.a[r * 2 + j] - 1.0).abs() < 1e-6);
            let eps = batch.b[r * 2 + j] as f64;
            let want = m * x0j + s * eps;
            assert!((batch.input[r * 3 + j] as f64 - want).abs() < 1e-5);
        }
    }
    let e = rows as f64 / n_levels as f64;
    let chi2: f64 = counts[1..]
        .iter()
        .map(|&c| (c as f64 - e).powi(2) / e)
        .sum();
    assert!(chi2 < 27.88, "chi2 = {chi2}");
}

/// A discrete training run works end to end and resumes bit-identically, and the TOML form
/// `time_sampling = { kind = "discrete", levels = N }` parses (levels = 0 is rejected by name).
#[test]
fn discrete_training_runs_resumes_and_parses() {
    let ab = linear_alphas_bar(50);
    let kernel = DdpmKernel::new(&ab).unwrap();
    let data = bimodal();
    let cfg = TrainConfig {
        steps: 20,
        batch_size: 128,
        optimizer: OptimizerConfig::Adam,
        lr: 1e-3,
        lr_schedule: LrSchedule::Constant,
        grad_clip: None,
        ema_decay: None,
        t_eps: 1e-3,
        weighting: Weighting::Sigma2,
        time_sampling: TimeSampling::Discrete { levels: 50 },
        data: DataMode::Fresh,
        checkpoint_every: Some(10),
        seed: 3,
    };
    let net_cfg = ScoreNetConfig {
        output: NetOutput::Noise,
        ..score_net(16, 2)
    };
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("c.safetensors");
    let mut full = Trainer::new(
        ScoreNet::new(net_cfg.clone(), 1).unwrap(),
        &kernel,
        &data,
        cfg.clone(),
    )
    .unwrap();
    full.run(None, |_| {}).unwrap();
    let mut part = Trainer::new(
        ScoreNet::new(net_cfg, 1).unwrap(),
        &kernel,
        &data,
        cfg.clone(),
    )
    .unwrap();
    part.run_until(10, Some(&ckpt), |_| {}).unwrap();
    let mut resumed = Trainer::resume(&ckpt, &kernel, &data, cfg.clone()).unwrap();
    resumed.run(None, |_| {}).unwrap();
    assert_eq!(resumed.params(), full.params());
    // Continuous sampling is a different run: the checkpoint refuses it.
    let cont = TrainConfig {
        time_sampling: TimeSampling::Uniform,
        ..cfg.clone()
    };
    assert!(Trainer::resume(&ckpt, &kernel, &data, cont).is_err());

    let toml_text = r#"
        steps = 10
        batch_size = 8
        optimizer = { kind = "adam" }
        lr = 1e-3
        lr_schedule = { kind = "constant" }
        t_eps = 1e-3
        weighting = "sigma2"
        time_sampling = { kind = "discrete", levels = 1000 }
        data = { kind = "fresh" }
        seed = 1
    "#;
    let parsed: TrainConfig = toml::from_str(toml_text).unwrap();
    assert_eq!(
        parsed.time_sampling,
        TimeSampling::Discrete { levels: 1000 }
    );
    let bad = TrainConfig {
        time_sampling: TimeSampling::Discrete { levels: 0 },
        ..parsed
    };
    assert!(bad
        .validate()
        .unwrap_err()
        .to_string()
        .contains("time_sampling.levels"));
}
