//! The training loop with a network that is not the MLP: a linear score `s(x) = W x + c`
//! implementing `ScoreNetwork` (only the general loss; the weighted squared loss of DSM uses the
//! trait's default). Checks it against exact analytic truth, and the optimiser's arithmetic.

use smoluchowski_datasets::Gaussian;
use smoluchowski_losses::{
    optim, DataMode, DsmObjective, LrSchedule, Objective, OptimizerConfig, ScoreObjective,
    SsmConfig, SsmObjective, TrainConfig, TrainLoop, Weighting,
};
use smoluchowski_nets::{NetOutput, ScoreNetwork};
use smoluchowski_sde::VpSde;

/// `s(x) = W x + c` in `d` dimensions; parameters `W` (row-major `d × d`) then `c`.
#[derive(Clone, Debug)]
struct Linear {
    d: usize,
    params: Vec<f32>,
}

impl ScoreNetwork for Linear {
    type Input = Vec<f32>;
    type Workspace = ();

    fn dim(&self) -> usize {
        self.d
    }
    fn num_params(&self) -> usize {
        self.d * self.d + self.d
    }
    fn output(&self) -> NetOutput {
        NetOutput::Score
    }
    fn config_json(&self) -> String {
        format!("{{\"linear\":{}}}", self.d)
    }
    fn from_config_json(json: &str, params: &[f32]) -> Result<Self, String> {
        let v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let d = v["linear"].as_u64().ok_or("not a linear config")? as usize;
        if params.len() != d * d + d {
            return Err(format!("{} parameters for d = {d}", params.len()));
        }
        Ok(Linear {
            d,
            params: params.to_vec(),
        })
    }
    fn init_params(&self, _seed: u64) -> Vec<f32> {
        vec![0.0; self.num_params()]
    }
    fn params(&self) -> Vec<f32> {
        self.params.clone()
    }
    fn set_params(&mut self, params: &[f32]) {
        self.params.copy_from_slice(params);
    }
    fn forward(&self, params: &[f32], x: &[f32], _t: f64, out: &mut [f32]) {
        let d = self.d;
        for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            for i in 0..d {
                let mut s = params[d * d + i];
                for j in 0..d {
                    s += params[i * d + j] * xr[j];
                }
                or[i] = s;
            }
        }
    }
    fn prepare_input(&self, x: &[f32], _t: &[f64], input: &mut Vec<f32>) {
        input.clear();
        input.extend_from_slice(x);
    }
    fn loss_and_grad(
        &self,
        params: &[f32],
        input: &Vec<f32>,
        objective: &mut dyn FnMut(&[f32], &mut [f32]) -> f64,
        grad: &mut [f32],
        _ws: &mut (),
    ) -> f64 {
        let d = self.d;
        let mut out = vec![0.0f32; input.len()];
        self.forward(params, input, 0.0, &mut out);
        let mut g = vec![0.0f32; out.len()];
        let loss = objective(&out, &mut g);
        grad.fill(0.0);
        for (xr, gr) in input.chunks_exact(d).zip(g.chunks_exact(d)) {
            for i in 0..d {
                for j in 0..d {
                    grad[i * d + j] += gr[i] * xr[j];
                }
                grad[d * d + i] += gr[i];
            }
        }
        loss
    }
}

/// Fixed-σ denoising score matching of `N(μ, diag s²)` has the linear minimiser
/// `s(x) = −(x − μ)/(s² + σ²)`, the score of `p ∗ N(0, σ²I)`: with μ = (1, −0.5), s = (0.5, 1),
/// σ = 0.5 the exact `W = diag(−2, −0.8)`, `c = (2, −0.4)`. 1500 Adam steps of 1024 points;
/// the minimiser of the last batches fluctuates by O(1/√1024) relative, so 5% is loose but
/// would catch a wrong objective or update.
#[test]
fn linear_network_learns_the_exact_smoothed_gaussian_score() {
    let data = Gaussian::new(vec![1.0, -0.5], vec![0.5, 1.0]).unwrap();
    let cfg = SsmConfig {
        objective: ScoreObjective::Denoising,
        noise_std: 0.5,
        time: 0.0,
        steps: 1500,
        batch_size: 1024,
        lr: 2e-2,
        lr_schedule: LrSchedule::Cosine {
            warmup_steps: 50,
            final_lr: 1e-4,
        },
        ema_decay: Some(0.99),
        seed: 5,
    };
    let net = Linear {
        d: 2,
        params: vec![0.0; 6],
    };
    let mut tr = TrainLoop::with_objective(net, SsmObjective::new(&data, cfg).unwrap());
    tr.run_until(usize::MAX, None, |_| {}).unwrap();
    assert_eq!(tr.step(), 1500);
    assert_eq!(tr.curve().len(), 1500);
    let p = tr.into_best_net().params;
    let want = [-2.0, 0.0, 0.0, -0.8, 2.0, -0.4];
    for (i, (&g, &w)) in p.iter().zip(&want).enumerate() {
        assert!(
            (g as f64 - w).abs() <= 0.05 * (1.0f64).max(w.abs()),
            "param {i}: {g} vs {w} (all {p:?})"
        );
    }
}

/// DSM (the trait's default weighted squared loss) through the generic loop: a checkpoint at
/// step 20 and a resume give the same bits as the straight run, and a foreign configuration
/// is refused.
#[test]
fn generic_dsm_loop_resumes_bit_identically() {
    let sde = VpSde::song_default();
    let data = Gaussian::new(vec![0.3, 0.0], vec![0.5, 1.0]).unwrap();
    let cfg = TrainConfig {
        steps: 40,
        batch_size: 1500,
        optimizer: OptimizerConfig::AdamW { weight_decay: 0.01 },
        lr: 1e-2,
        lr_schedule: LrSchedule::Cosine {
            warmup_steps: 5,
            final_lr: 1e-3,
        },
        grad_clip: Some(0.5),
        ema_decay: Some(0.9),
        t_eps: 1e-3,
        weighting: Weighting::Sigma2,
        time_sampling: Default::default(),
        data: DataMode::Fixed { size: 3000 },
        checkpoint_every: Some(7),
        seed: 3,
    };
    let net = Linear {
        d: 2,
        params: vec![0.1; 6],
    };
    let obj = || DsmObjective::new(&sde, &data, cfg.clone(), 2).unwrap();
    let mut straight = TrainLoop::with_objective(net.clone(), obj());
    straight.run_until(40, None, |_| {}).unwrap();
    let first_loss = straight.curve()[0].loss;
    let last_loss = straight.curve()[39].loss;
    assert!(last_loss < first_loss, "{first_loss} → {last_loss}");
    assert!(straight.curve()[0]
        .bucket_loss
        .iter()
        .all(|v| v.is_finite()));

    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("lin.safetensors");
    let mut a = TrainLoop::with_objective(net, obj());
    a.run_until(20, Some(&ck), |_| {}).unwrap();
    drop(a);
    let mut b: TrainLoop<Linear, _> = TrainLoop::resume_with(&ck, obj()).unwrap();
    assert_eq!(b.step(), 20);
    b.run_until(40, None, |_| {}).unwrap();
    assert_eq!(b.params(), straight.params());
    assert_eq!(b.optimizer().ema, straight.optimizer().ema);
    // The checkpoint carries the curve: the resumed loop has the whole curve, bit for bit.
    assert_eq!(straight.curve(), b.curve());

    let other = DsmObjective::new(
        &sde,
        &data,
        TrainConfig {
            lr: 0.5,
            ..cfg.clone()
        },
        2,
    )
    .unwrap();
    let e = TrainLoop::<Linear, _>::resume_with(&ck, other)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("differs"), "{e}");
    // The objective reports the settings it was given.
    let s = Objective::<Linear>::settings(&obj());
    assert_eq!(s.optim.steps, 40);
    assert_eq!(s.checkpoint_every, Some(7));
}

/// Adam's first step moves every parameter by `lr · g/(|g| + ε)` (bias corrections cancel
/// `1 − β`), AdamW also multiplies by `1 − lr·wd`; the cosine schedule hits its end points;
/// clipping rescales to the given norm.
#[test]
fn optimiser_arithmetic() {
    let g = [0.5f32, -2.0, 1e-3];
    for (opt, decay) in [
        (OptimizerConfig::Adam, 1.0f32),
        (
            OptimizerConfig::AdamW { weight_decay: 0.1 },
            1.0 - 0.01 * 0.1,
        ),
    ] {
        let mut p = [1.0f32, 1.0, 1.0];
        let (mut m, mut v) = ([0.0f32; 3], [0.0f32; 3]);
        optim::adam_update(opt, &mut p, &mut m, &mut v, &g, 0.01, 1);
        for i in 0..3 {
            let want = decay - 0.01 * g[i] / (g[i].abs() + 1e-8);
            assert!(
                (p[i] - want).abs() < 1e-6,
                "{opt:?} {i}: {} vs {want}",
                p[i]
            );
        }
    }
    let cos = LrSchedule::Cosine {
        warmup_steps: 10,
        final_lr: 1e-4,
    };
    assert_eq!(optim::lr_at(1e-2, cos, 110, 0), 1e-3);
    assert_eq!(optim::lr_at(1e-2, cos, 110, 10), 1e-2);
    assert!((optim::lr_at(1e-2, cos, 110, 110) - 1e-4).abs() < 1e-15);
    let mut gr = [3.0f32, 4.0];
    let n = optim::grad_norm(&gr);
    assert_eq!(n, 5.0);
    optim::clip_grad(&mut gr, n, 1.0);
    assert!((optim::grad_norm(&gr) - 1.0).abs() < 1e-6);
    let mut e = [1.0f32];
    optim::ema_update(&mut e, &[0.0], 0.9);
    assert!((e[0] - 0.9).abs() < 1e-7);
}

/// The SSM trainer gets checkpoints from the shared loop: 25 steps, checkpoint, resume, 50 steps
/// equal the straight run bit for bit.
#[test]
fn ssm_trainer_resumes_bit_identically() {
    use smoluchowski_losses::{Projection, SsmTrainer};
    use smoluchowski_nets::{Activation, ScoreNet, ScoreNetConfig, TimeEmbedding};
    let data = Gaussian::new(vec![0.0, 1.0], vec![1.0, 0.5]).unwrap();
    let net = ScoreNet::new(
        ScoreNetConfig {
            dim: 2,
            width: 16,
            depth: 2,
            activation: Activation::Tanh,
            residual: false,
            time_embedding: TimeEmbedding::Concat,
            output: NetOutput::Score,
        },
        1,
    )
    .unwrap();
    let cfg = SsmConfig {
        objective: ScoreObjective::SlicedFd {
            projections: 1,
            h: 0.02,
            projection: Projection::Gaussian,
        },
        noise_std: 0.1,
        time: 0.0,
        steps: 50,
        batch_size: 128,
        lr: 1e-2,
        lr_schedule: LrSchedule::Constant,
        ema_decay: Some(0.9),
        seed: 2,
    };
    let mut straight = SsmTrainer::new(net.clone(), &data, cfg.clone()).unwrap();
    straight.run(|_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ssm.safetensors");
    let mut a = SsmTrainer::new(net, &data, cfg.clone()).unwrap();
    a.run_until(25, Some(&ck), |_| {}).unwrap();
    let mut b = SsmTrainer::resume(&ck, &data, cfg).unwrap();
    assert_eq!(b.step(), 25);
    b.run(|_| {}).unwrap();
    assert_eq!(b.net().to_flat(), straight.net().to_flat());
    assert_eq!(
        b.into_best_net().to_flat(),
        straight.into_best_net().to_flat()
    );
}
