//! The labelled DSM objective: same rows as the unlabelled one, labels = mixture components,
//! label dropout at its rate, and a short conditional training run whose class scores separate.

use smoluchowski_datasets::GaussianMixture;
use smoluchowski_losses::{
    DataMode, DsmBatch, DsmObjective, LabelledBatch, LabelledDsmObjective, LrSchedule, Objective,
    OptimizerConfig, TrainConfig, TrainLoop, Weighting,
};
use smoluchowski_nets::{
    Activation, ConditionalMlp, ConditionalMlpConfig, NetOutput, ScoreNetConfig, TimeEmbedding,
    NULL_LABEL,
};
use smoluchowski_sde::VpSde;

fn cfg(batch: usize, steps: usize) -> TrainConfig {
    TrainConfig {
        steps,
        batch_size: batch,
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
        seed: 11,
    }
}

fn net() -> ConditionalMlp {
    let network = ScoreNetConfig {
        dim: 2,
        width: 32,
        depth: 3,
        activation: Activation::Relu,
        residual: true,
        time_embedding: TimeEmbedding::Fourier {
            frequencies: 4,
            max_frequency: 16.0,
        },
        output: NetOutput::Noise,
    };
    ConditionalMlp::new(
        ConditionalMlpConfig {
            network,
            classes: 8,
        },
        1,
    )
    .unwrap()
}

/// The labelled draw is the unlabelled one plus labels (same stream, same rows); labels are the
/// components (each row lies near its component's mean at small t), and the dropout rate
/// matches `p` (binomial: n = 20 000 labels, p = 0.2, sd 0.0028; bound 5 sd).
#[test]
fn labelled_batches_are_dsm_batches_with_labels_and_dropout() {
    let sde = VpSde::song_default();
    let data = GaussianMixture::eight_gaussians();
    let net = net();
    let labelled = LabelledDsmObjective::new(&sde, &data, cfg(20_000, 1), &net, 0.2).unwrap();
    let plain = DsmObjective::new(&sde, &data, cfg(20_000, 1), 2).unwrap();
    let mut a = LabelledBatch::default();
    let mut b = DsmBatch::default();
    Objective::<ConditionalMlp>::draw(&labelled, &net, 3, &mut a);
    Objective::<ConditionalMlp>::draw(&plain, &net, 3, &mut b);
    assert_eq!(a.dsm.rows(), b.rows());
    let dropped = a.labels.iter().filter(|&&l| l == NULL_LABEL).count() as f64 / 20_000.0;
    assert!(
        (dropped - 0.2).abs() < 5.0 * 0.0028,
        "dropout rate {dropped}"
    );
    assert!(a.labels.iter().all(|&l| l == NULL_LABEL || l < 8));
    // Without dropout every label is a class; at small t a row lies nearest its label's mean.
    let none = LabelledDsmObjective::new(&sde, &data, cfg(20_000, 1), &net, 0.0).unwrap();
    Objective::<ConditionalMlp>::draw(&none, &net, 3, &mut a);
    let (x, t) = a.dsm.rows();
    let mut near = 0;
    let mut small = 0;
    for (i, &ti) in t.iter().enumerate() {
        if ti < 0.05 {
            small += 1;
            let c = a.labels[i] as usize;
            let dist = |k: usize| {
                let m = data.mean(k);
                (f64::from(x[2 * i]) - m[0]).hypot(f64::from(x[2 * i + 1]) - m[1])
            };
            let nearest = (0..8).min_by(|&p, &q| dist(p).total_cmp(&dist(q))).unwrap();
            near += usize::from(nearest == c);
        }
    }
    // Wrong labels would be the nearest component 1 time in 8.
    assert!(
        small > 500 && near * 100 >= 99 * small,
        "{near} of {small} rows nearest their label's component"
    );
}

#[test]
fn labelled_objective_names_bad_input() {
    let sde = VpSde::song_default();
    let data = GaussianMixture::eight_gaussians();
    let e = LabelledDsmObjective::new(&sde, &data, cfg(10, 1), &net(), 1.0)
        .err()
        .unwrap();
    assert!(e.to_string().contains("label_dropout"), "{e}");
    let wrong = GaussianMixture::on_circle(5, 2.0, 0.1).unwrap();
    let e = LabelledDsmObjective::new(&sde, &wrong, cfg(10, 1), &net(), 0.1)
        .err()
        .unwrap();
    assert!(e.to_string().contains("network.classes"), "{e}");
    let fixed = TrainConfig {
        data: DataMode::Fixed { size: 100 },
        ..cfg(10, 1)
    };
    let e = LabelledDsmObjective::new(&sde, &data, fixed, &net(), 0.1)
        .err()
        .unwrap();
    assert!(e.to_string().contains("training.data"), "{e}");
}

/// 300 steps of conditional training reduce the loss (the labelled input path trains).
#[test]
fn conditional_training_reduces_the_loss() {
    let sde = VpSde::song_default();
    let data = GaussianMixture::eight_gaussians();
    let net = net();
    let obj = LabelledDsmObjective::new(&sde, &data, cfg(512, 300), &net, 0.2).unwrap();
    let mut lp = TrainLoop::with_objective(net, obj);
    lp.run_until(300, None, |_| {}).unwrap();
    let c = lp.curve();
    let mean = |r: &[_]| {
        r.iter()
            .map(|x: &smoluchowski_losses::CurveRow| x.loss)
            .sum::<f64>()
            / r.len() as f64
    };
    let (first, last) = (mean(&c[..20]), mean(&c[280..]));
    assert!(last < 0.8 * first, "loss {first} → {last}");
}
