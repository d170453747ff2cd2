//! Probability-flow likelihoods of a score *network* with its exact divergence
//! (`NetScore: ScoreDivergence`, forward-mode through the MLP) against the finite-difference
//! and Hutchinson divergences of `smoluchowski::samplers`.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smoluchowski::datasets::{Dataset, Ring2d};
use smoluchowski::losses::{TrainConfig, Trainer};
use smoluchowski::nets::{Activation, NetScore, ScoreNet, ScoreNetConfig};
use smoluchowski::samplers::{
    log_likelihood, log_likelihood_exact, Divergence, GridSpacing, LikelihoodConfig, OdeSolver,
};
use smoluchowski::sde::VpSde;

/// Ring2d points (k = 20, a thick ring, so that 300 quick training steps learn its shape).
fn points(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = vec![0.0f64; 2 * n];
    Ring2d::new(20.0).unwrap().sample_into(&mut rng, &mut x);
    x.iter().map(|&v| v as f32).collect()
}

/// A network trained for 300 steps (batch 512) on ring2d (k = 20): a score with structure.
fn trained(cfg: ScoreNetConfig, seed: u64, sde: &VpSde) -> ScoreNet {
    let data = Ring2d::new(20.0).unwrap();
    let net = ScoreNet::new(cfg, seed).unwrap();
    let tc = TrainConfig {
        steps: 300,
        batch_size: 512,
        seed,
        ..TrainConfig::part2()
    };
    let mut tr = Trainer::new(net, sde, &data, tc).unwrap();
    tr.run(None, |_| {}).unwrap();
    tr.into_best_net()
}

fn config(divergence: Divergence) -> LikelihoodConfig {
    LikelihoodConfig::new(
        1e-2,
        OdeSolver::Rk4 {
            steps: 40,
            grid: GridSpacing::LogSnr,
        },
        divergence,
    )
}

#[test]
fn exact_network_divergence_matches_finite_difference_likelihoods() {
    // Two architectures (ReLU residual, the default; SiLU plain), noise output: per point the
    // exact-divergence log-likelihood equals the central-difference one up to the latter's
    // O(h²) + f32-rounding error.
    let sde = VpSde::new(0.1, 20.0, 1.0).unwrap();
    let mut silu = ScoreNetConfig::default_2d();
    silu.activation = Activation::Silu;
    silu.residual = false;
    for (c, cfg) in [ScoreNetConfig::default_2d(), silu].into_iter().enumerate() {
        let net = trained(cfg.clone(), 31 + c as u64, &sde);
        let x = points(300, 5 + c as u64);
        let mut score = NetScore::new(&net, &sde);
        let exact = log_likelihood_exact(&sde, &mut score, &x, &config(Divergence::Exact)).unwrap();
        let fd =
            log_likelihood(&sde, &mut score, &x, &config(Divergence::FiniteDifference)).unwrap();
        assert_eq!(exact.nfe, 160, "one evaluation per right-hand side");
        assert_eq!(fd.nfe, 160 * 5);
        let worst = exact
            .nats
            .iter()
            .zip(&fd.nats)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f64, f64::max);
        let mean_abs = exact
            .nats
            .iter()
            .zip(&fd.nats)
            .map(|(a, b)| (a - b).abs())
            .sum::<f64>()
            / 300.0;
        let spread = exact
            .nats
            .iter()
            .map(|v| (v - exact.mean_nats).abs())
            .sum::<f64>()
            / 300.0;
        eprintln!("{:?}: worst |exact − fd| = {worst:e} nats, mean {mean_abs:e}, mean log p = {:.4}, spread {spread:.3}", cfg.activation, exact.mean_nats);
        // Smooth (SiLU) nets: the central difference is O(h²)-accurate, measured worst 1.7e-4
        // nats. ReLU nets are piecewise linear: a difference over ±h (h = 1e-3) that straddles
        // a kink averages two slopes, measured worst 5.6e-3, mean 1.2e-3 nats.
        let (worst_bar, mean_bar) = if cfg.activation == Activation::Relu {
            (2e-2, 3e-3)
        } else {
            (1e-3, 2e-4)
        };
        assert!(
            worst < worst_bar,
            "{cfg:?}: worst |exact − fd| = {worst:e} nats"
        );
        assert!(
            mean_abs < mean_bar,
            "{cfg:?}: mean |exact − fd| = {mean_abs:e} nats"
        );
        assert!(
            spread > 0.2,
            "the likelihoods must vary across points: {spread}"
        );
    }
}

#[test]
fn hutchinson_is_unbiased_for_the_exact_network_divergence() {
    // Probes are fixed per point, so the per-point differences (Hutchinson − exact) are
    // independent across points: their mean must be within 4 standard errors of 0
    // (two-sided p ≈ 6e-5); and the Hutchinson noise must be visible (sd > 0).
    let sde = VpSde::new(0.1, 20.0, 1.0).unwrap();
    let net = trained(ScoreNetConfig::default_2d(), 77, &sde);
    let n = 2000;
    let x = points(n, 78);
    let mut score = NetScore::new(&net, &sde);
    let exact = log_likelihood_exact(&sde, &mut score, &x, &config(Divergence::Exact)).unwrap();
    let hutch = log_likelihood(
        &sde,
        &mut score,
        &x,
        &config(Divergence::Hutchinson { probes: 1, seed: 9 }),
    )
    .unwrap();
    let diff: Vec<f64> = hutch
        .nats
        .iter()
        .zip(&exact.nats)
        .map(|(a, b)| a - b)
        .collect();
    let mean = diff.iter().sum::<f64>() / n as f64;
    let sd = (diff.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64).sqrt();
    let se = sd / (n as f64).sqrt();
    eprintln!(
        "hutchinson − exact: mean {mean:e}, sd {sd:e}, z = {}",
        mean / se
    );
    assert!(
        sd > 1e-3,
        "Hutchinson with one probe must be noisy: sd {sd:e}"
    );
    assert!(mean.abs() < 4.0 * se, "mean {mean:e}, SE {se:e}");
}

#[test]
fn probability_flow_likelihood_of_the_exact_ring2d_score_is_the_exact_density() {
    // The machinery end to end on ring2d itself: with the exact score of p_t (quadrature), the
    // probability-flow ODE likelihood is log p_{t_eps} — known independently by quadrature.
    use smoluchowski::sde::Ring2dOracle;
    let sde = VpSde::new(0.1, 20.0, 1.0).unwrap();
    let ring = Ring2d::new(200.0).unwrap();
    let mut oracle = Ring2dOracle::with_resolution(sde, ring.clone(), 14, 24).unwrap();
    let n = 64;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut x = vec![0.0f64; 2 * n];
    ring.sample_into(&mut rng, &mut x);
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let x64: Vec<f64> = x32.iter().map(|&v| f64::from(v)).collect();
    let t_eps = 1e-3;
    let cfg = LikelihoodConfig::new(
        t_eps,
        OdeSolver::Rk4 {
            steps: 100,
            grid: GridSpacing::LogSnr,
        },
        Divergence::FiniteDifference,
    );
    let r = log_likelihood(&sde, &mut oracle, &x32, &cfg).unwrap();
    let mut exact = vec![0.0f64; n];
    oracle.log_density_batch(&x64, t_eps, &mut exact);
    let worst = r
        .nats
        .iter()
        .zip(&exact)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f64, f64::max);
    eprintln!("worst |ODE − quadrature| = {worst:e}, mean {}", r.mean_nats);
    assert!(worst < 1e-2, "worst {worst}");
}
