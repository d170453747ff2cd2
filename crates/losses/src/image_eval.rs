//! Generated images through the project's classifier ([`smoluchowski_nets::ImageClassifier`]):
//! its probabilities and penultimate features ([`smoluchowski_nets::ImageClassifier::evaluate`],
//! bounded-memory chunks, each layer parallel over images, thread-count independent) go into
//! [`smoluchowski_metrics::evaluate_images`] (confidence, χ² of the class histogram against the
//! training label frequencies, Fréchet distance and KID), next to their noise floor.
//!
//! The real images ([`RealImageSplit`]): the test set (never seen in training) is put in a
//! seeded random order (Fisher–Yates from `smoluchowski_core::streams::seeded(seed, 0)`) and
//! split into a **reference** half (the first `⌊m/2⌋` images of that order: the features the
//! generated and held-out sets are compared with) and a **held-out** half (the rest: the floor
//! is the statistics of its first `min(n, m − ⌊m/2⌋)` images, a uniform random subset). The
//! order matters: MNIST's first 5 000 test digits are cleaner than its last 5 000, so an
//! index-order split has a floor far above that of two draws of one law (measured: FD 54 and
//! KID 23 instead of ≈ 1 and ≈ 0). For MNIST that is 5 000 + 5 000: with
//! `n > 5 000` generated images the floor is measured at 5 000 (`floor.n` says so) and, the
//! Fréchet distance's bias decreasing with the size, is then an upper bound of the floor at `n`.
//! (Training images would give a same-size floor, but the classifier has fitted them, so their
//! confidence and features are not those of new real images.)

use rand::seq::SliceRandom;
use smoluchowski_core::{streams, ParamError};
use smoluchowski_metrics::{
    evaluate_images, label_frequencies, memorisation_check, ClassifiedImages, ImageEvaluation,
    MemorisationCheck, ReferenceFeatures,
};
use smoluchowski_nets::{ClassifierOutputs, ImageClassifier};

/// The classifier's view of the real images an evaluation compares with (see the module docs).
#[derive(Debug, Clone)]
pub struct RealImageSplit {
    /// Outputs of the reference images.
    pub reference: ClassifierOutputs,
    /// The reference features with their moments and k-NN radii (computed once).
    pub reference_features: ReferenceFeatures,
    /// Outputs of the held-out images.
    pub held_out: ClassifierOutputs,
    /// Test-set indices of the reference images, in order.
    pub reference_indices: Vec<usize>,
    /// Test-set indices of the held-out images, in order.
    pub held_out_indices: Vec<usize>,
    /// Training label frequencies `π_k`.
    pub train_freqs: Vec<f64>,
}

impl RealImageSplit {
    /// Classifies the test images (`m × dim`, `m ≥ 4`, the classifier's pixel scale) and
    /// splits them in the random order of `seed`; `train_labels` give the frequencies `π_k`
    /// (every class present).
    pub fn new(
        net: &ImageClassifier,
        test_images: &[f32],
        train_labels: &[u8],
        seed: u64,
    ) -> Result<Self, ParamError> {
        let c = net.config();
        let all = net.evaluate(test_images).map_err(|e| e.under("test"))?;
        if all.n < 4 {
            return Err(ParamError::new("test (images)", all.n, ">= 4"));
        }
        let mut order: Vec<usize> = (0..all.n).collect();
        order.shuffle(&mut streams::seeded(seed, 0));
        let held_out_indices = order.split_off(all.n / 2);
        let pick = |idx: &[usize]| ClassifierOutputs {
            n: idx.len(),
            probs: idx
                .iter()
                .flat_map(|&i| {
                    all.probs[i * c.classes..(i + 1) * c.classes]
                        .iter()
                        .copied()
                })
                .collect(),
            features: idx
                .iter()
                .flat_map(|&i| {
                    all.features[i * c.features..(i + 1) * c.features]
                        .iter()
                        .copied()
                })
                .collect(),
        };
        let reference = pick(&order);
        let reference_features = ReferenceFeatures::new(reference.features.clone(), c.features)
            .map_err(|e| e.under("reference"))?;
        Ok(RealImageSplit {
            reference,
            reference_features,
            held_out: pick(&held_out_indices),
            reference_indices: order,
            held_out_indices,
            train_freqs: label_frequencies(train_labels, c.classes)
                .map_err(|e| e.under("train"))?,
        })
    }
}

/// Every statistic of the `generated` images (`n × dim`, `n ≥ 2`, values in `[0, 1]`; a value
/// outside is an error naming image and pixel) and its noise floor (see the module docs).
pub fn evaluate_generated(
    net: &ImageClassifier,
    generated: &[f32],
    real: &RealImageSplit,
) -> Result<ImageEvaluation, ParamError> {
    let d = net.config().dim();
    if let Some(i) = generated.iter().position(|v| !(0.0..=1.0).contains(v)) {
        return Err(ParamError::new(
            format!("generated[{}][{}]", i / d, i % d),
            generated[i],
            "in [0, 1]",
        ));
    }
    let out = net.evaluate(generated).map_err(|e| e.under("generated"))?;
    let c = net.config();
    evaluate_images(
        ClassifiedImages {
            probs: &out.probs,
            features: &out.features,
        },
        ClassifiedImages {
            probs: &real.held_out.probs,
            features: &real.held_out.features,
        },
        &real.reference_features,
        c.classes,
        &real.train_freqs,
    )
}

/// The memorisation check ([`smoluchowski_metrics::manifold`]) of the first `n` `generated`
/// images against as many held-out test images of `real` (its held-out order), both searched
/// over all `train` images (`dim` pixels each, the same scale; `n` is capped by both sets).
pub fn memorisation(
    generated: &[f32],
    test: &[f32],
    train: &[f32],
    real: &RealImageSplit,
    dim: usize,
    n: usize,
) -> Result<MemorisationCheck, ParamError> {
    if dim == 0 {
        return Err(ParamError::new("dim", dim, ">= 1"));
    }
    let needed = real
        .held_out_indices
        .iter()
        .max()
        .map_or(0, |&i| (i + 1) * dim);
    if test.len() < needed {
        return Err(ParamError::new(
            "test (length)",
            test.len(),
            format!(">= {needed}: the test images the split was made from"),
        ));
    }
    let n = n
        .min(generated.len() / dim)
        .min(real.held_out_indices.len());
    let held: Vec<f32> = real.held_out_indices[..n]
        .iter()
        .flat_map(|&i| test[i * dim..(i + 1) * dim].iter().copied())
        .collect();
    memorisation_check(&generated[..n * dim], &held, train, dim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;
    use smoluchowski_core::streams;
    use smoluchowski_nets::ClassifierConfig;

    #[test]
    fn real_halves_sit_at_the_floor_and_bad_input_is_named() {
        let cfg = ClassifierConfig {
            side: 8,
            channels: 1,
            widths: [4, 8, 8],
            features: 6,
            classes: 3,
            groups: 2,
            pool: 1,
        };
        let net = ImageClassifier::new(cfg, 1).unwrap();
        let mut rng = streams::seeded(2, 0);
        let test: Vec<f32> = (0..200 * 64).map(|_| rng.gen_range(0.0..1.0)).collect();
        let labels: Vec<u8> = (0..300).map(|i| (i % 3) as u8).collect();
        let real = RealImageSplit::new(&net, &test, &labels, 4).unwrap();
        assert_eq!((real.reference.n, real.held_out.n), (100, 100));
        assert_eq!(real.train_freqs, vec![1.0 / 3.0; 3]);
        let mut all: Vec<usize> = real.reference_indices.clone();
        all.extend(&real.held_out_indices);
        assert_ne!(all, (0..200).collect::<Vec<_>>(), "shuffled");
        all.sort_unstable();
        assert_eq!(all, (0..200).collect::<Vec<_>>(), "a partition");
        // The held-out half itself as "generated": identical to its floor.
        let held: Vec<f32> = real
            .held_out_indices
            .iter()
            .flat_map(|&i| test[i * 64..(i + 1) * 64].iter().copied())
            .collect();
        let ev = evaluate_generated(&net, &held, &real).unwrap();
        assert_eq!(ev.generated, ev.floor);
        assert_eq!(ev.n_reference, 100);
        // Blank images are far from the real ones; the floor is measured on the 100 held-out.
        let dim = vec![0.0f32; 150 * 64];
        let ev = evaluate_generated(&net, &dim, &real).unwrap();
        assert_eq!((ev.generated.n, ev.floor.n), (150, 100));
        assert!(ev.generated.kid > 10.0 * ev.floor.kid.abs(), "{ev:?}");
        let fd = (ev.generated.frechet_distance, ev.floor.frechet_distance);
        assert!(fd.0 > 10.0 * fd.1, "{fd:?}");
        // Memorisation: the held-out images themselves are no closer to a training set than
        // held-out images are (the same distances: p = P(Z ≥ −½/s) ≈ 0.5); copies of training
        // images are caught.
        let train: Vec<f32> = (0..400 * 64).map(|_| rng.gen_range(0.0..1.0)).collect();
        let m = memorisation(&held, &test, &train, &real, 64, 1000).unwrap();
        assert_eq!((m.n_generated, m.n_held_out, m.n_train), (100, 100, 400));
        assert!(m.test.pvalue > 0.4, "{m:?}");
        let copies = &train[..100 * 64];
        let m = memorisation(copies, &test, &train, &real, 64, 50).unwrap();
        assert_eq!((m.n_generated, m.median_generated), (50, 0.0));
        assert!(m.test.pvalue < 1e-10 && m.near_copy_share == 1.0, "{m:?}");
        let e = memorisation(copies, &test[..64], &train, &real, 64, 50)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("test (length)"), "{e}");
        let mut bad = dim.clone();
        bad[64 * 3 + 5] = 1.5;
        let e = evaluate_generated(&net, &bad, &real)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("generated[3][5]"), "{e}");
        let e = RealImageSplit::new(&net, &test, &[0, 1, 1], 4)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("train.labels (class 2)"), "{e}");
    }
}
