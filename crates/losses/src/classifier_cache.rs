//! The project's image classifiers, cached like the data: [`cached_classifier`] returns the
//! classifier of a [`ClassifierRecipe`] (architecture, training settings, initial-weight seed)
//! trained on a data set named by `data_id` (e.g. the SHA-256s of the MNIST files), from
//! `<cache>/classifiers/<key>.safetensors` with
//! `key = SHA-256(JSON [CLASSIFIER_CACHE_FORMAT, recipe, data_id])` if that file is present and
//! valid, else by training it ([`crate::train_classifier`]), checking its test accuracy
//! `(1/n) #{i : argmax p_i = y_i} ≥ min_accuracy` and writing it atomically (temporary file,
//! then rename). A file that cannot be read, belongs to another recipe, or no longer reaches
//! the accuracy is replaced (the reason is returned in [`CachedClassifier::warning`]).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use smoluchowski_core::ParamError;
use smoluchowski_datasets::mnist::{Mnist, PixelScale, MNIST_FILES};
use smoluchowski_datasets::sha256_hex;
use smoluchowski_nets::{
    read_f32, tensors_to_bytes, write_atomic, ClassifierConfig, ImageClassifier,
};

use crate::classify::{train_classifier, ClassifierTraining};

/// Version of the cache layout and of the classifier's numerics; part of every key. Bump it when
/// the kernels change the trained weights' bits (2: the AVX-512 / vectorised SiLU and GroupNorm
/// kernels — a classifier cached before them differs from a fresh one in the last digits).
pub const CLASSIFIER_CACHE_FORMAT: u32 = 2;

/// Everything that determines a trained classifier besides its data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierRecipe {
    /// Architecture.
    pub config: ClassifierConfig,
    /// Training settings (with the batch seed).
    pub training: ClassifierTraining,
    /// Seed of the initial weights.
    pub init_seed: u64,
}

impl ClassifierRecipe {
    /// The MNIST yardstick: [`ClassifierConfig::mnist_flat`], [`ClassifierTraining::mnist`],
    /// initial weights from seed 0.
    pub fn mnist() -> Self {
        ClassifierRecipe {
            config: ClassifierConfig::mnist_flat(),
            training: ClassifierTraining::mnist(),
            init_seed: 0,
        }
    }

    /// The cache key: SHA-256 (hex) of the JSON `[CLASSIFIER_CACHE_FORMAT, recipe, data_id]`.
    pub fn key(&self, data_id: &str) -> String {
        let json = serde_json::to_string(&(CLASSIFIER_CACHE_FORMAT, self, data_id))
            .expect("a recipe serialises");
        sha256_hex(json.as_bytes())
    }
}

/// Labelled images (`n × dim` pixel values as the classifier sees them, `n` labels).
#[derive(Debug, Clone, Copy)]
pub struct LabelledImages<'a> {
    /// Pixels, row-major.
    pub images: &'a [f32],
    /// Labels.
    pub labels: &'a [u8],
}

/// Training and test data of a classifier, with the identity of the data in the cache key.
#[derive(Debug, Clone, Copy)]
pub struct ClassifierData<'a> {
    /// What the classifier is trained on.
    pub train: LabelledImages<'a>,
    /// What its accuracy is measured on.
    pub test: LabelledImages<'a>,
    /// Identity of the data (e.g. hashes of the data files).
    pub data_id: &'a str,
}

/// A training progress report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassifierProgress {
    /// 1-based step.
    pub step: usize,
    /// Number of steps.
    pub steps: usize,
    /// Mean cross-entropy of the step's batch.
    pub loss: f64,
    /// Batch accuracy before the update.
    pub accuracy: f64,
    /// Steps per second since the start (wall clock; for display only).
    pub steps_per_second: f64,
}

/// A classifier from [`cached_classifier`].
#[derive(Debug, Clone)]
pub struct CachedClassifier {
    /// The trained classifier.
    pub net: ImageClassifier,
    /// Its test accuracy, measured now.
    pub test_accuracy: f64,
    /// Its cache file.
    pub path: PathBuf,
    /// Whether it was trained by this call (else loaded).
    pub trained: bool,
    /// Why an existing cache file was not used, if one was there.
    pub warning: Option<String>,
}

/// Why [`cached_classifier`] failed.
#[derive(Debug)]
pub enum ClassifierCacheError {
    /// Bad recipe, data or threshold.
    Param(ParamError),
    /// File-system error, with the path.
    Io(PathBuf, std::io::Error),
    /// The freshly trained classifier misses the accuracy threshold (nothing was cached).
    BelowThreshold {
        /// Measured test accuracy.
        accuracy: f64,
        /// Required test accuracy.
        threshold: f64,
    },
}

impl fmt::Display for ClassifierCacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClassifierCacheError::Param(e) => write!(f, "{e}"),
            ClassifierCacheError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            ClassifierCacheError::BelowThreshold {
                accuracy,
                threshold,
            } => write!(
                f,
                "trained classifier reaches test accuracy {accuracy:.4}, below the required \
                 {threshold:.4}; not cached"
            ),
        }
    }
}

impl std::error::Error for ClassifierCacheError {}

impl From<ParamError> for ClassifierCacheError {
    fn from(e: ParamError) -> Self {
        ClassifierCacheError::Param(e)
    }
}

/// Test accuracy `(1/n) #{i : argmax p_i = y_i}` of `net` on labelled images (ties go to the
/// lowest class).
pub fn test_accuracy(net: &ImageClassifier, data: LabelledImages) -> Result<f64, ParamError> {
    let k = net.config().classes;
    let out = net.evaluate(data.images)?;
    if out.n != data.labels.len() {
        return Err(ParamError::length_mismatch(
            "images",
            out.n,
            "labels",
            data.labels.len(),
        ));
    }
    let right = out
        .probs
        .chunks_exact(k)
        .zip(data.labels)
        .filter(|(p, &y)| {
            p.iter()
                .enumerate()
                .fold(0, |b, (i, &v)| if v > p[b] { i } else { b })
                == y as usize
        })
        .count();
    Ok(right as f64 / out.n as f64)
}

/// Reads a cached classifier of `recipe` from `path`: `Ok(None)` if there is no file,
/// `Err(reason)` if it is unreadable or holds another recipe.
fn load(
    path: &Path,
    recipe: &ClassifierRecipe,
    key: &str,
) -> Result<Option<ImageClassifier>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| format!("{e:?}"))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    if meta.get("key").map(String::as_str) != Some(key) {
        return Err(format!(
            "metadata key {:?}, expected {key}",
            meta.get("key")
        ));
    }
    let st = SafeTensors::deserialize(&bytes).map_err(|e| format!("{e:?}"))?;
    let net =
        ImageClassifier::new(recipe.config.clone(), recipe.init_seed).map_err(|e| e.to_string())?;
    let params = read_f32(&st, "params", &[net.num_params()])?;
    if let Some(i) = params.iter().position(|v| !v.is_finite()) {
        return Err(format!("params[{i}] = {} is not finite", params[i]));
    }
    ImageClassifier::from_flat(recipe.config.clone(), &params)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// The classifier of `recipe` on `data` (see the module docs): loaded from
/// `<cache_dir>/classifiers/<key>.safetensors` if valid, else trained (reporting every step to
/// `progress`), checked (`test accuracy ≥ min_accuracy ∈ (0, 1]`) and cached.
pub fn cached_classifier(
    cache_dir: &Path,
    recipe: &ClassifierRecipe,
    data: ClassifierData,
    min_accuracy: f64,
    mut progress: impl FnMut(&ClassifierProgress),
) -> Result<CachedClassifier, ClassifierCacheError> {
    recipe.config.validate().map_err(|e| e.under("config"))?;
    recipe
        .training
        .validate()
        .map_err(|e| e.under("training"))?;
    if !(min_accuracy > 0.0 && min_accuracy <= 1.0) {
        return Err(ParamError::new("min_accuracy", min_accuracy, "in (0, 1]").into());
    }
    let key = recipe.key(data.data_id);
    let dir = cache_dir.join("classifiers");
    let path = dir.join(format!("{key}.safetensors"));
    let warning = match load(&path, recipe, &key) {
        Ok(Some(net)) => {
            let acc = test_accuracy(&net, data.test).map_err(|e| e.under("test"))?;
            if acc >= min_accuracy {
                return Ok(CachedClassifier {
                    net,
                    test_accuracy: acc,
                    path,
                    trained: false,
                    warning: None,
                });
            }
            Some(format!(
                "{}: cached classifier has test accuracy {acc:.4} < {min_accuracy}; retraining",
                path.display()
            ))
        }
        Ok(None) => None,
        Err(why) => Some(format!(
            "{}: unusable cached classifier ({why}); retraining",
            path.display()
        )),
    };
    let mut net = ImageClassifier::new(recipe.config.clone(), recipe.init_seed)?;
    let start = Instant::now();
    let steps = recipe.training.steps;
    train_classifier(
        &mut net,
        data.train.images,
        data.train.labels,
        &recipe.training,
        |r| {
            progress(&ClassifierProgress {
                step: r.step,
                steps,
                loss: r.loss,
                accuracy: r.accuracy,
                steps_per_second: r.step as f64 / start.elapsed().as_secs_f64().max(1e-9),
            })
        },
    )
    .map_err(|e| e.under("train"))?;
    let acc = test_accuracy(&net, data.test).map_err(|e| e.under("test"))?;
    if acc < min_accuracy {
        return Err(ClassifierCacheError::BelowThreshold {
            accuracy: acc,
            threshold: min_accuracy,
        });
    }
    let meta = HashMap::from([
        ("key".to_string(), key.clone()),
        (
            "recipe".to_string(),
            serde_json::to_string(recipe).expect("serialises"),
        ),
        ("data_id".to_string(), data.data_id.to_string()),
        ("test_accuracy".to_string(), acc.to_string()),
    ]);
    let bytes = tensors_to_bytes(
        &[("params".into(), vec![net.num_params()], net.params())],
        meta,
    )
    .map_err(|e| ClassifierCacheError::Io(path.clone(), std::io::Error::other(e)))?;
    std::fs::create_dir_all(&dir).map_err(|e| ClassifierCacheError::Io(dir.clone(), e))?;
    write_atomic(&path, &bytes).map_err(|e| ClassifierCacheError::Io(path.clone(), e))?;
    Ok(CachedClassifier {
        net,
        test_accuracy: acc,
        path,
        trained: true,
        warning,
    })
}

/// The identity of MNIST in cache keys: the SHA-256s of its four files, joined by `+`.
pub fn mnist_data_id() -> String {
    MNIST_FILES.map(|f| f.sha256).join("+")
}

/// MNIST grey levels as classifier input, `g/255 ∈ [0, 1]` (the scale of generated samples).
pub fn mnist_pixels(m: &Mnist) -> Vec<f32> {
    m.images
        .iter()
        .map(|&g| PixelScale::Unit.to_value(g) as f32)
        .collect()
}

/// [`cached_classifier`] on MNIST (`train`, `test`: the loaded splits; pixels in `[0, 1]`),
/// cached under `<cache_dir>/classifiers/`.
pub fn mnist_classifier(
    cache_dir: &Path,
    (train, test): (&Mnist, &Mnist),
    recipe: &ClassifierRecipe,
    min_accuracy: f64,
    progress: impl FnMut(&ClassifierProgress),
) -> Result<CachedClassifier, ClassifierCacheError> {
    let (tx, sx) = (mnist_pixels(train), mnist_pixels(test));
    let id = mnist_data_id();
    let data = ClassifierData {
        train: LabelledImages {
            images: &tx,
            labels: &train.labels,
        },
        test: LabelledImages {
            images: &sx,
            labels: &test.labels,
        },
        data_id: &id,
    };
    cached_classifier(cache_dir, recipe, data, min_accuracy, progress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;
    use smoluchowski_core::streams;

    /// Bright row (class 0) or column (class 1) on noise, 8 × 8.
    fn toy(n: usize, seed: u64) -> (Vec<f32>, Vec<u8>) {
        let mut rng = streams::seeded(seed, 0);
        let labels: Vec<u8> = (0..n).map(|i| (i % 2) as u8).collect();
        let mut x = vec![0.0f32; n * 64];
        for (img, &l) in x.chunks_exact_mut(64).zip(&labels) {
            let at = rng.gen_range(0..8);
            img.iter_mut().for_each(|v| *v = rng.gen_range(0.0..0.3));
            for j in 0..8 {
                img[if l == 0 { at * 8 + j } else { j * 8 + at }] += 0.7;
            }
        }
        (x, labels)
    }

    fn recipe() -> ClassifierRecipe {
        ClassifierRecipe {
            config: ClassifierConfig {
                side: 8,
                channels: 1,
                widths: [4, 8, 8],
                features: 8,
                classes: 2,
                groups: 2,
                pool: 2,
            },
            training: ClassifierTraining {
                steps: 60,
                batch_size: 16,
                lr: 1e-2,
                seed: 3,
                shift: 0,
            },
            init_seed: 1,
        }
    }

    #[test]
    fn trains_once_then_loads_and_replaces_a_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        let (x, y) = toy(200, 1);
        let (tx, ty) = toy(100, 2);
        let data = ClassifierData {
            train: LabelledImages {
                images: &x,
                labels: &y,
            },
            test: LabelledImages {
                images: &tx,
                labels: &ty,
            },
            data_id: "toy",
        };
        let r = recipe();
        let mut seen = 0;
        let first = cached_classifier(dir.path(), &r, data, 0.9, |p| {
            seen += 1;
            assert!(p.steps_per_second > 0.0 && p.steps == 60);
        })
        .unwrap();
        assert!(first.trained && first.warning.is_none() && seen == 60);
        assert!(first.test_accuracy >= 0.9, "{}", first.test_accuracy);
        assert_eq!(
            first.path,
            dir.path()
                .join(format!("classifiers/{}.safetensors", r.key("toy")))
        );
        let again =
            cached_classifier(dir.path(), &r, data, 0.9, |_| panic!("no training")).unwrap();
        assert!(!again.trained);
        assert_eq!(again.net.params(), first.net.params());
        assert_eq!(again.test_accuracy, first.test_accuracy);
        // Another seed or data set is another file.
        let other = ClassifierRecipe {
            init_seed: 2,
            ..r.clone()
        };
        assert_ne!(other.key("toy"), r.key("toy"));
        assert_ne!(r.key("toy2"), r.key("toy"));
        // A truncated file is replaced, with a warning, by the same (reproducible) classifier.
        let bytes = std::fs::read(&first.path).unwrap();
        std::fs::write(&first.path, &bytes[..bytes.len() / 2]).unwrap();
        let fixed = cached_classifier(dir.path(), &r, data, 0.9, |_| {}).unwrap();
        assert!(fixed.trained, "retrained");
        assert!(fixed
            .warning
            .unwrap()
            .contains("unusable cached classifier"));
        assert_eq!(fixed.net.params(), first.net.params());
        let reloaded = cached_classifier(dir.path(), &r, data, 0.9, |_| panic!("cached")).unwrap();
        assert_eq!(reloaded.net.params(), first.net.params());
        // Unreachable accuracy (two tiny steps from the initial weights): a clear error,
        // nothing cached.
        let untrained = ClassifierRecipe {
            training: ClassifierTraining {
                steps: 2,
                lr: 1e-7,
                ..r.training
            },
            ..r.clone()
        };
        let e = cached_classifier(dir.path(), &untrained, data, 0.99, |_| {}).unwrap_err();
        assert!(e.to_string().contains("below the required 0.99"), "{e}");
        let never = format!("classifiers/{}.safetensors", untrained.key("toy"));
        assert!(!dir.path().join(never).exists());
        let e = cached_classifier(dir.path(), &r, data, 0.0, |_| {}).unwrap_err();
        assert!(e.to_string().starts_with("min_accuracy"), "{e}");
        let bad = ClassifierRecipe {
            training: ClassifierTraining {
                batch_size: 0,
                ..r.training
            },
            ..r
        };
        let e = cached_classifier(dir.path(), &bad, data, 0.9, |_| {}).unwrap_err();
        assert!(e.to_string().starts_with("training.batch_size"), "{e}");
    }
}
