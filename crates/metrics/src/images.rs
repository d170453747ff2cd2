//! Statistics of generated images seen through a classifier (its class probabilities and its
//! penultimate features, computed elsewhere: this module takes plain slices), each next to its
//! **noise floor**, the same statistic for real held-out images.
//!
//! For `n` images with class probabilities `p_i ∈ Δ^{K−1}` and features `f_i ∈ ℝ^d`:
//! - confidence ([`confidence_stats`]): `mean_i max_k p_{ik}` and the share with
//!   `max_k p_{ik} ≥ 0.9` ([`CONFIDENT`]);
//! - class histogram `c_k = #{i : argmax p_i = k}` ([`predicted_class_counts`]) against the
//!   training label frequencies `π_k` by Pearson's test ([`chi_square_test`]):
//!   `χ² = Σ_k (c_k − n π_k)² / (n π_k)`, `K − 1` degrees of freedom, `p = P(χ²_{K−1} ≥ χ²)`;
//! - Fréchet distance of Gaussians fitted to the features and to the reference features
//!   ([`crate::frechet_distance`]);
//! - KID ([`kid`], Bińkowski et al. 2018): the unbiased `MMD²_u` with the cubic kernel
//!   `k(x, y) = (xᵀy/d + 1)³` over **all** pairs (no subsets: computed block-wise, it costs
//!   `O((n + m)² d)`, about a second for `n = 10⁴`, `m = 5·10³`, `d = 128`);
//! - precision and recall of the features against the reference (k-NN manifolds with
//!   `k = 3`, Kynkäänniemi et al. 2019, [`crate::manifold`]).
//!
//! The reference's moments and k-NN radii are computed once ([`ReferenceFeatures`]).
//!
//! [`evaluate_images`] puts them together: the statistics of the generated set and of the
//! first `min(n, n_held)` held-out real images (the floor), both against the same reference
//! features. When there are fewer held-out images than generated ones the floor is measured at
//! the smaller size (recorded in [`ImageEvaluation::floor`]`.n`); the Fréchet distance's bias
//! grows as the size shrinks, so such a floor is an upper bound of the floor at size `n`.

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};
use smoluchowski_core::ParamError;
use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::frechet::{frechet_distance, GaussianMoments};
use crate::manifold::{knn_radii, precision_recall_given, PrecisionRecall, PR_NEIGHBOURS};

/// Confidence threshold of [`ConfidenceStats::share_confident`].
pub const CONFIDENT: f64 = 0.9;

/// Rows per block of the kernel sums in [`kid`] (bounded memory: `KID_BLOCK × m` f64).
pub const KID_BLOCK: usize = 512;

/// How sure the classifier is about a set of images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceStats {
    /// `(1/n) Σ_i max_k p_{ik}`.
    pub mean_max_prob: f64,
    /// `(1/n) #{i : max_k p_{ik} ≥ 0.9}`.
    pub share_confident: f64,
}

/// Pearson's χ² test of class counts against expected frequencies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChiSquareTest {
    /// Observed counts `c_k`.
    pub counts: Vec<u64>,
    /// Expected counts `n π_k`.
    pub expected: Vec<f64>,
    /// `χ² = Σ_k (c_k − n π_k)² / (n π_k)`.
    pub statistic: f64,
    /// Degrees of freedom `K − 1`.
    pub dof: usize,
    /// `P(χ²_{K−1} ≥ χ²)`.
    pub pvalue: f64,
}

/// Every statistic of one image set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageStats {
    /// Number of images.
    pub n: usize,
    /// Confidence of the classifier.
    pub confidence: ConfidenceStats,
    /// Predicted-class histogram against the training label frequencies.
    pub classes: ChiSquareTest,
    /// Fréchet distance of the features to the reference features.
    pub frechet_distance: f64,
    /// KID (unbiased `MMD²_u`, cubic kernel) of the features to the reference features.
    pub kid: f64,
    /// Precision and recall of the features against the reference features.
    pub precision_recall: PrecisionRecall,
}

/// Real reference features (`n × dim`, `n > k`) with their fitted Gaussian moments and k-NN
/// radii (`k =` [`PR_NEIGHBOURS`]), computed once for every set compared with them.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceFeatures {
    /// Features, row-major.
    pub features: Vec<f64>,
    /// Feature dimension.
    pub dim: usize,
    /// Mean and covariance of the features.
    pub moments: GaussianMoments,
    /// `r_k` of each row within the set.
    pub knn_radii: Vec<f64>,
}

impl ReferenceFeatures {
    /// Fits the moments and the k-NN radii of `features` (`n × dim`, `n > PR_NEIGHBOURS`).
    pub fn new(features: Vec<f64>, dim: usize) -> Result<Self, ParamError> {
        rows("reference", &features, dim, PR_NEIGHBOURS + 1)?;
        let moments = GaussianMoments::of(&features, dim)?;
        let knn_radii = knn_radii(&features, dim, PR_NEIGHBOURS)?;
        Ok(Self {
            features,
            dim,
            moments,
            knn_radii,
        })
    }

    /// Number of reference rows.
    pub fn n(&self) -> usize {
        self.features.len() / self.dim
    }
}

/// Generated images next to their noise floor (held-out real images), against one reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageEvaluation {
    /// The generated images.
    pub generated: ImageStats,
    /// The first `min(n, n_held)` held-out real images: the values of a perfect generator.
    pub floor: ImageStats,
    /// Number of reference images (features for the Fréchet distance and KID).
    pub n_reference: usize,
}

/// A set of classified images: `n × classes` probabilities and `n × dim` features.
#[derive(Debug, Clone, Copy)]
pub struct ClassifiedImages<'a> {
    /// Class probabilities, row-major.
    pub probs: &'a [f64],
    /// Penultimate features, row-major.
    pub features: &'a [f64],
}

fn rows(name: &str, x: &[f64], width: usize, min: usize) -> Result<usize, ParamError> {
    if width == 0 || !x.len().is_multiple_of(width) || x.len() / width < min {
        return Err(ParamError::new(
            format!("{name} (length)"),
            x.len(),
            format!("a multiple of {width} with at least {min} rows"),
        ));
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(ParamError::new(
            format!("{name}[{}][{}]", i / width, i % width),
            x[i],
            "finite",
        ));
    }
    Ok(x.len() / width)
}

/// `argmax_k p_{ik}` (the lowest index on ties).
fn argmax(row: &[f64]) -> usize {
    row.iter()
        .enumerate()
        .fold(0, |b, (i, &v)| if v > row[b] { i } else { b })
}

/// [`ConfidenceStats`] of `probs` (`n × classes`, `n ≥ 1`).
pub fn confidence_stats(probs: &[f64], classes: usize) -> Result<ConfidenceStats, ParamError> {
    let n = rows("probs", probs, classes, 1)?;
    let (mut sum, mut sure) = (0.0, 0usize);
    for r in probs.chunks_exact(classes) {
        let m = r[argmax(r)];
        sum += m;
        sure += usize::from(m >= CONFIDENT);
    }
    Ok(ConfidenceStats {
        mean_max_prob: sum / n as f64,
        share_confident: sure as f64 / n as f64,
    })
}

/// `c_k = #{i : argmax p_i = k}` of `probs` (`n × classes`).
pub fn predicted_class_counts(probs: &[f64], classes: usize) -> Result<Vec<u64>, ParamError> {
    rows("probs", probs, classes, 1)?;
    let mut c = vec![0u64; classes];
    probs.chunks_exact(classes).for_each(|r| c[argmax(r)] += 1);
    Ok(c)
}

/// Training label frequencies `π_k = #{labels = k} / n` over `classes` classes (every class
/// must occur; a label `≥ classes` is an error naming it).
pub fn label_frequencies(labels: &[u8], classes: usize) -> Result<Vec<f64>, ParamError> {
    let mut c = vec![0usize; classes];
    for (i, &l) in labels.iter().enumerate() {
        if l as usize >= classes {
            return Err(ParamError::new(
                format!("labels[{i}]"),
                l,
                format!("< {classes}"),
            ));
        }
        c[l as usize] += 1;
    }
    if let Some(k) = c.iter().position(|&v| v == 0) {
        return Err(ParamError::new(
            format!("labels (class {k})"),
            0,
            "every class present",
        ));
    }
    Ok(c.iter().map(|&v| v as f64 / labels.len() as f64).collect())
}

/// Pearson's χ² test of `counts` against frequencies `freqs` (normalised to sum 1; each
/// positive and finite; at least 2 classes; total count ≥ 1). Matches
/// `scipy.stats.chisquare(counts, n · freqs / Σ freqs)`.
pub fn chi_square_test(counts: &[u64], freqs: &[f64]) -> Result<ChiSquareTest, ParamError> {
    if freqs.len() < 2 || counts.len() != freqs.len() {
        return Err(ParamError::new(
            "counts (length)",
            counts.len(),
            format!("as many classes as freqs ({}), at least 2", freqs.len()),
        ));
    }
    if let Some(k) = freqs.iter().position(|f| !(f.is_finite() && *f > 0.0)) {
        return Err(ParamError::new(
            format!("freqs[{k}]"),
            freqs[k],
            "positive and finite",
        ));
    }
    let n: u64 = counts.iter().sum();
    if n == 0 {
        return Err(ParamError::new("counts (total)", 0, ">= 1"));
    }
    let total: f64 = freqs.iter().sum();
    let expected: Vec<f64> = freqs.iter().map(|f| n as f64 * f / total).collect();
    let statistic: f64 = counts
        .iter()
        .zip(&expected)
        .map(|(&c, &e)| (c as f64 - e).powi(2) / e)
        .sum();
    let dof = freqs.len() - 1;
    let pvalue = ChiSquared::new(dof as f64)
        .map_err(|e| ParamError::new("dof", dof, e.to_string()))?
        .sf(statistic);
    Ok(ChiSquareTest {
        counts: counts.to_vec(),
        expected,
        statistic,
        dof,
        pvalue,
    })
}

/// `Σ_i Σ_j k(a_i, b_j)` with `k(x, y) = (xᵀy/d + 1)³`, over `b`'s rows `j ≥ from(i)`: the
/// kernel sums of [`kid`], [`KID_BLOCK`] rows of `a` at a time (Gram blocks by `nalgebra`),
/// row sums added in index order. `offdiag`: `a = b`, sum over `i ≠ j` only.
fn kernel_sum(a: &[f64], b: &[f64], d: usize, offdiag: bool) -> f64 {
    let bm = DMatrix::from_row_slice(b.len() / d, d, b);
    let mut total = 0.0;
    for (blk, ab) in a.chunks(KID_BLOCK * d).enumerate() {
        let r0 = blk * KID_BLOCK;
        let am = DMatrix::from_row_slice(ab.len() / d, d, ab);
        // Off-diagonal sums: only the columns from this block on; the pairs left of the block
        // were counted by earlier blocks (the Gram matrix is symmetric), hence the factor 2.
        let cols = if offdiag { r0 } else { 0 };
        let g = &am * bm.rows(cols, bm.nrows() - cols).transpose();
        for i in 0..g.nrows() {
            let mut row = 0.0;
            for j in 0..g.ncols() {
                let k = (g[(i, j)] / d as f64 + 1.0).powi(3);
                row += if !offdiag {
                    k
                } else if j < am.nrows() {
                    if j == i {
                        0.0
                    } else {
                        k
                    }
                } else {
                    2.0 * k
                };
            }
            total += row;
        }
    }
    total
}

/// Kernel inception distance of feature sets `x` (`n × d`) and `y` (`m × d`), `n, m ≥ 2`: the
/// unbiased `MMD²_u = Σ_{i≠j} k(x_i, x_j)/(n(n−1)) + Σ_{i≠j} k(y_i, y_j)/(m(m−1))
/// − 2 Σ_{i,j} k(x_i, y_j)/(nm)` with `k(x, y) = (xᵀy/d + 1)³` over all pairs. Unbiased, so it
/// can be slightly negative when the two laws agree.
pub fn kid(x: &[f64], y: &[f64], d: usize) -> Result<f64, ParamError> {
    let n = rows("x", x, d, 2)? as f64;
    let m = rows("y", y, d, 2)? as f64;
    let kxx = kernel_sum(x, x, d, true);
    let kyy = kernel_sum(y, y, d, true);
    let kxy = kernel_sum(x, y, d, false);
    Ok(kxx / (n * (n - 1.0)) + kyy / (m * (m - 1.0)) - 2.0 * kxy / (n * m))
}

/// Every [`ImageStats`] of `set` (more than [`PR_NEIGHBOURS`] images) against the reference
/// features and the training label frequencies.
pub fn image_stats(
    set: ClassifiedImages,
    classes: usize,
    train_freqs: &[f64],
    reference: &ReferenceFeatures,
) -> Result<ImageStats, ParamError> {
    let n = rows("probs", set.probs, classes, PR_NEIGHBOURS + 1)?;
    let d = reference.dim;
    let nf = rows("features", set.features, d, PR_NEIGHBOURS + 1)?;
    if nf != n {
        return Err(ParamError::length_mismatch("probs", n, "features", nf));
    }
    let counts = predicted_class_counts(set.probs, classes)?;
    Ok(ImageStats {
        n,
        confidence: confidence_stats(set.probs, classes)?,
        classes: chi_square_test(&counts, train_freqs)?,
        frechet_distance: frechet_distance(
            &GaussianMoments::of(set.features, d)?,
            &reference.moments,
        ),
        kid: kid(set.features, &reference.features, d)?,
        precision_recall: precision_recall_given(
            &reference.features,
            &reference.knn_radii,
            set.features,
            d,
            PR_NEIGHBOURS,
        )?,
    })
}

/// The statistics of `generated` and their noise floor: the same for the first
/// `min(n, n_held)` images of `held_out` (real images the classifier never trained on and not
/// in the reference), both against the `reference` features (real images) and `train_freqs`
/// (see the module docs).
pub fn evaluate_images(
    generated: ClassifiedImages,
    held_out: ClassifiedImages,
    reference: &ReferenceFeatures,
    classes: usize,
    train_freqs: &[f64],
) -> Result<ImageEvaluation, ParamError> {
    let dim = reference.dim;
    let n = rows("generated.probs", generated.probs, classes, 2)?;
    let n_held = rows("held_out.probs", held_out.probs, classes, 2)?;
    let nh_f = rows("held_out.features", held_out.features, dim, 2)?;
    if nh_f != n_held {
        return Err(ParamError::length_mismatch(
            "held_out.probs",
            n_held,
            "held_out.features",
            nh_f,
        ));
    }
    let n_reference = reference.n();
    let generated = image_stats(generated, classes, train_freqs, reference)
        .map_err(|e| e.under("generated"))?;
    let m = n.min(n_held);
    let floor_set = ClassifiedImages {
        probs: &held_out.probs[..m * classes],
        features: &held_out.features[..m * dim],
    };
    let floor =
        image_stats(floor_set, classes, train_freqs, reference).map_err(|e| e.under("held_out"))?;
    Ok(ImageEvaluation {
        generated,
        floor,
        n_reference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;
    use rand_distr::{Distribution, StandardNormal};

    /// The fixture of `tests/images_reference.py` (deterministic, no random numbers):
    /// `x[i][j] = sin(0.7 i + 1.3 j) + 0.1 j`, `y[i][j] = cos(0.4 i − 0.9 j) + 0.001 i`.
    fn fixture(n: usize, m: usize, d: usize) -> (Vec<f64>, Vec<f64>) {
        let x = (0..n * d)
            .map(|t| {
                let (i, j) = ((t / d) as f64, (t % d) as f64);
                (0.7 * i + 1.3 * j).sin() + 0.1 * j
            })
            .collect();
        let y = (0..m * d)
            .map(|t| {
                let (i, j) = ((t / d) as f64, (t % d) as f64);
                (0.4 * i - 0.9 * j).cos() + 0.001 * i
            })
            .collect();
        (x, y)
    }

    /// Against NumPy (`crates/metrics/tests/images_reference.py`, direct double sums).
    #[test]
    fn kid_matches_numpy() {
        let (x, y) = fixture(1300, 700, 5);
        let v = kid(&x, &y, 5).unwrap();
        let numpy = KID_NUMPY;
        assert!((v - numpy).abs() <= 1e-10 * numpy.abs(), "{v} vs {numpy}");
        let (x, y) = fixture(7, 4, 3);
        let v = kid(&x, &y, 3).unwrap();
        assert!(
            (v - KID_NUMPY_SMALL).abs() <= 1e-12 * KID_NUMPY_SMALL.abs(),
            "{v}"
        );
        // Symmetric in its arguments, and (unbiased) near 0 for two draws of one law.
        assert!((kid(&y, &x, 3).unwrap() - v).abs() < 1e-12 * v.abs());
        let mut rng = smoluchowski_core::streams::seeded(3, 0);
        let mut draw = |n: usize| -> Vec<f64> {
            (0..n * 4)
                .map(|_| StandardNormal.sample(&mut rng))
                .collect()
        };
        let (a, b) = (draw(600), draw(600));
        let same = kid(&a, &b, 4).unwrap();
        let shifted: Vec<f64> = b.iter().map(|v| v + 0.5).collect();
        let apart = kid(&a, &shifted, 4).unwrap();
        assert!(same.abs() < 0.02 && apart > 0.1, "{same} {apart}");
        let e = kid(&a, &b[..3], 4).unwrap_err().to_string();
        assert!(e.starts_with("y (length)"), "{e}");
    }

    // Printed by `python3 crates/metrics/tests/images_reference.py` (NumPy 2, SciPy).
    const KID_NUMPY: f64 = 0.48968664472285983;
    const KID_NUMPY_SMALL: f64 = 1.0317260373596668;
    const CHI2_SCIPY: (f64, f64) = (3.4272710666174526, 0.9449259505581811);

    /// Against `scipy.stats.chisquare` (`crates/metrics/tests/images_reference.py`).
    #[test]
    fn chi_square_matches_scipy() {
        let counts = [980u64, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];
        let freqs = [
            5923.0, 6742.0, 5958.0, 6131.0, 5842.0, 5421.0, 5918.0, 6265.0, 5851.0, 5949.0,
        ];
        let t = chi_square_test(&counts, &freqs).unwrap();
        assert_eq!(t.dof, 9);
        assert!(
            (t.statistic - CHI2_SCIPY.0).abs() < 1e-10,
            "{}",
            t.statistic
        );
        assert!((t.pvalue - CHI2_SCIPY.1).abs() < 1e-10, "{}", t.pvalue);
        assert!((t.expected.iter().sum::<f64>() - 10_000.0).abs() < 1e-9);
        // A skewed histogram is rejected.
        let skewed = [2000u64, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];
        assert!(chi_square_test(&skewed, &freqs).unwrap().pvalue < 1e-10);
        let e = chi_square_test(&counts, &[1.0; 9]).unwrap_err().to_string();
        assert!(e.starts_with("counts (length)"), "{e}");
        let mut bad = freqs;
        bad[3] = 0.0;
        let e = chi_square_test(&counts, &bad).unwrap_err().to_string();
        assert!(e.starts_with("freqs[3]"), "{e}");
        assert!(chi_square_test(&[0, 0], &[0.5, 0.5]).is_err());
    }

    #[test]
    fn confidence_counts_and_frequencies() {
        let probs = [0.95, 0.05, 0.5, 0.5, 0.2, 0.8, 0.05, 0.95];
        let c = confidence_stats(&probs, 2).unwrap();
        assert!((c.mean_max_prob - (0.95 + 0.5 + 0.8 + 0.95) / 4.0).abs() < 1e-15);
        assert_eq!(c.share_confident, 0.5);
        assert_eq!(predicted_class_counts(&probs, 2).unwrap(), vec![2, 2]);
        let e = confidence_stats(&[0.5, f64::NAN], 2)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("probs[0][1]"), "{e}");
        assert!(confidence_stats(&probs[..3], 2).is_err());
        assert_eq!(
            label_frequencies(&[0, 1, 1, 2], 3).unwrap(),
            [0.25, 0.5, 0.25]
        );
        let e = label_frequencies(&[0, 1, 3], 3).unwrap_err().to_string();
        assert!(e.starts_with("labels[2]"), "{e}");
        assert!(label_frequencies(&[0, 0], 2).is_err());
    }

    /// Real-like sets: the held-out draws of the reference law sit at the floor, a shifted
    /// generator is far above it; a floor with fewer held-out images than generated ones is
    /// measured at the smaller size.
    #[test]
    fn evaluation_puts_a_same_law_set_at_its_floor() {
        let (k, d) = (3, 4);
        let mut rng = smoluchowski_core::streams::seeded(9, 0);
        let mut set = |n: usize, shift: f64| -> (Vec<f64>, Vec<f64>) {
            let mut probs = Vec::new();
            let mut feats = Vec::new();
            for _ in 0..n {
                let c = rng.gen_range(0..k);
                let mut p = vec![0.02; k];
                p[c] = 1.0 - 0.02 * (k - 1) as f64;
                probs.extend(p);
                feats.extend((0..d).map(|j| {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    z + shift + if j == c { 1.0 } else { 0.0 }
                }));
            }
            (probs, feats)
        };
        let (_, reference) = set(800, 0.0);
        let (hp, hf) = set(500, 0.0);
        let (gp, gf) = set(700, 0.3);
        let freqs = [1.0 / 3.0; 3];
        let reference = ReferenceFeatures::new(reference, d).unwrap();
        let ev = evaluate_images(
            ClassifiedImages {
                probs: &gp,
                features: &gf,
            },
            ClassifiedImages {
                probs: &hp,
                features: &hf,
            },
            &reference,
            k,
            &freqs,
        )
        .unwrap();
        assert_eq!(
            (ev.generated.n, ev.floor.n, ev.n_reference),
            (700, 500, 800)
        );
        assert!(ev.floor.classes.pvalue > 1e-3, "{:?}", ev.floor.classes);
        assert!(
            ev.floor.frechet_distance < 0.1,
            "{}",
            ev.floor.frechet_distance
        );
        assert!(
            ev.generated.frechet_distance > 0.3,
            "{}",
            ev.generated.frechet_distance
        );
        assert!(ev.generated.kid > 10.0 * ev.floor.kid.abs(), "{ev:?}");
        assert_eq!(ev.floor.confidence.share_confident, 1.0);
        // Two draws of one law cover each other (a 0.3 shift in 4-D is too small for k-NN
        // manifolds to see: precision and recall are coarse; see manifold's tests).
        let pf = ev.floor.precision_recall;
        assert!(pf.precision > 0.85 && pf.recall > 0.85, "{pf:?}");
        let json = serde_json::to_string(&ev).unwrap();
        let back: ImageEvaluation = serde_json::from_str(&json).unwrap();
        assert_eq!(back.floor.classes.counts, ev.floor.classes.counts);
        assert_eq!(back.generated.n, 700);
        assert!((back.floor.kid - ev.floor.kid).abs() <= 1e-15, "{json}");
        let e = evaluate_images(
            ClassifiedImages {
                probs: &gp,
                features: &gf[..gf.len() - d],
            },
            ClassifiedImages {
                probs: &hp,
                features: &hf,
            },
            &reference,
            k,
            &freqs,
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("generated.features (length)"), "{e}");
    }
}
