//! Nearest-neighbour statistics of image sets: **precision and recall** of a generated set
//! against real data (Kynkäänniemi et al. 2019, in a classifier's feature space) and a
//! **memorisation check** (are generated images closer to the training images than new real
//! images are?).
//!
//! *Precision and recall.* For a set `Φ` and `k ≥ 1`, the k-NN manifold is the union of the
//! balls `B(φ, r_k(φ))`, `r_k(φ)` = distance from `φ` to its k-th nearest neighbour in
//! `Φ \ {φ}` ([`knn_radii`]). With real features `Φ_r` and generated features `Φ_g`:
//! `precision = (1/|Φ_g|) #{g ∈ Φ_g : ∃ r ∈ Φ_r, ‖g − r‖ ≤ r_k(r)}` (generated images that
//! look real) and `recall = (1/|Φ_r|) #{r ∈ Φ_r : ∃ g ∈ Φ_g, ‖r − g‖ ≤ r_k(g)}` (real images
//! the generator covers). Both lie in `[0, 1]`; for two draws of one law both are near 1 and
//! depend on `k` and the set sizes, hence the noise floor (held-out real images in place of
//! the generated ones).
//!
//! *Memorisation.* `d(x) = min_j ‖x − t_j‖` over the training images `t_j` ([`nearest_distances`],
//! Euclidean, exact). A generator that copies its training data gives generated `d` values
//! stochastically **smaller** than those of held-out real images, which the training set never
//! contained; [`memorisation_check`] tests that one-sided alternative with the Mann–Whitney U
//! test ([`mann_whitney_less`], SciPy's `mannwhitneyu(x, y, alternative="less")` with the
//! normal approximation, tie and continuity corrections) and reports the share of generated
//! images closer than the held-out images' 1 % quantile (near copies; ≈ 1 % without copying).
//!
//! Every row's result is independent of the others, so the row-parallel loops give the same
//! numbers for any thread count.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use smoluchowski_core::ParamError;
use statrs::distribution::{ContinuousCDF, Normal};

/// `k` of the k-NN manifolds in [`ImageStats`](crate::ImageStats) (Kynkäänniemi et al.'s
/// default).
pub const PR_NEIGHBOURS: usize = 3;

/// Quantile of the held-out distances below which a generated image counts as a near copy.
pub const NEAR_COPY_QUANTILE: f64 = 0.01;

/// Precision and recall of a generated set against real data (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PrecisionRecall {
    /// Neighbours of the k-NN radii.
    pub k: usize,
    /// Share of generated points inside the real k-NN manifold.
    pub precision: f64,
    /// Share of real points inside the generated k-NN manifold.
    pub recall: f64,
}

/// `x` holds at least `min` rows of `d` finite values: the row count, else an error naming the
/// length or the first non-finite entry.
fn check_rows<T: Copy + Into<f64>>(
    name: &str,
    x: &[T],
    d: usize,
    min: usize,
) -> Result<usize, ParamError> {
    if d == 0 || !x.len().is_multiple_of(d) || x.len() / d < min {
        return Err(ParamError::new(
            format!("{name} (length)"),
            x.len(),
            format!("a multiple of {d} with at least {min} rows"),
        ));
    }
    if let Some(i) = x.iter().position(|&v| !v.into().is_finite()) {
        return Err(ParamError::new(
            format!("{name}[{}][{}]", i / d, i % d),
            x[i].into(),
            "finite",
        ));
    }
    Ok(x.len() / d)
}

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// `r_k(x_i)`: the distance from each row of `x` (`n × d`, `n > k ≥ 1`) to its k-th nearest
/// neighbour among the other rows (ties count with multiplicity).
pub fn knn_radii(x: &[f64], d: usize, k: usize) -> Result<Vec<f64>, ParamError> {
    if k == 0 {
        return Err(ParamError::new("k", k, ">= 1"));
    }
    let n = check_rows("x", x, d, k + 1)?;
    Ok((0..n)
        .into_par_iter()
        .map(|i| {
            let xi = &x[i * d..(i + 1) * d];
            // The k smallest squared distances so far, ascending.
            let mut best = vec![f64::INFINITY; k];
            for (j, xj) in x.chunks_exact(d).enumerate() {
                if j == i {
                    continue;
                }
                let s = sq_dist(xi, xj);
                if s < best[k - 1] {
                    let at = best.partition_point(|&b| b <= s);
                    best.insert(at, s);
                    best.pop();
                }
            }
            best[k - 1].sqrt()
        })
        .collect())
}

/// Share of the rows of `queries` inside the k-NN manifold of `(points, radii)`: some point `p`
/// with `‖q − p‖ ≤ r(p)`.
fn share_inside(queries: &[f64], points: &[f64], radii: &[f64], d: usize) -> f64 {
    let inside = queries
        .par_chunks_exact(d)
        .filter(|q| {
            points
                .chunks_exact(d)
                .zip(radii)
                .any(|(p, r)| sq_dist(q, p) <= r * r)
        })
        .count();
    inside as f64 / (queries.len() / d) as f64
}

/// Precision and recall (see the module docs) of `generated` (`m × d`) against `real`
/// (`n × d`), both with more than `k` rows.
pub fn precision_recall(
    real: &[f64],
    generated: &[f64],
    d: usize,
    k: usize,
) -> Result<PrecisionRecall, ParamError> {
    let r_real = knn_radii(real, d, k).map_err(|e| e.under("real"))?;
    precision_recall_given(real, &r_real, generated, d, k)
}

/// [`precision_recall`] with the real set's radii `r_real = knn_radii(real, d, k)` computed
/// once (one reference, many generated sets).
pub fn precision_recall_given(
    real: &[f64],
    r_real: &[f64],
    generated: &[f64],
    d: usize,
    k: usize,
) -> Result<PrecisionRecall, ParamError> {
    let n = check_rows("real", real, d, k + 1)?;
    if r_real.len() != n {
        return Err(ParamError::length_mismatch(
            "real",
            n,
            "r_real",
            r_real.len(),
        ));
    }
    let r_gen = knn_radii(generated, d, k).map_err(|e| e.under("generated"))?;
    Ok(PrecisionRecall {
        k,
        precision: share_inside(generated, real, r_real, d),
        recall: share_inside(real, generated, &r_gen, d),
    })
}

/// `min_j ‖q − b_j‖` for each row `q` of `queries` (`n × d`) over the rows `b_j` of `base`
/// (`m × d`, `m ≥ 1`), exactly (f32 inputs, f64 sums; a row stops accumulating once it
/// exceeds the best distance so far, which does not change the minimum).
pub fn nearest_distances(queries: &[f32], base: &[f32], d: usize) -> Result<Vec<f64>, ParamError> {
    check_rows("queries", queries, d, 1)?;
    check_rows("base", base, d, 1)?;
    const BLOCK: usize = 112;
    Ok(queries
        .par_chunks_exact(d)
        .map(|q| {
            let mut best = f64::INFINITY;
            for b in base.chunks_exact(d) {
                let mut s = 0.0f64;
                for (qc, bc) in q.chunks(BLOCK).zip(b.chunks(BLOCK)) {
                    let part: f32 = qc.iter().zip(bc).map(|(x, y)| (x - y) * (x - y)).sum();
                    s += part as f64;
                    if s >= best {
                        break;
                    }
                }
                best = best.min(s);
            }
            best.sqrt()
        })
        .collect())
}

/// The one-sided Mann–Whitney U test of "`x` is stochastically smaller than `y`".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MannWhitney {
    /// `U₁ = R₁ − n₁(n₁ + 1)/2`, `R₁` the sum of the (mid-)ranks of `x` in the pooled sample
    /// (SciPy's returned statistic).
    pub u: f64,
    /// `z = (U₂ − n₁n₂/2 − ½)/s` with `U₂ = n₁n₂ − U₁` and
    /// `s² = n₁n₂/12 · ((n + 1) − Σ(t³ − t)/(n(n − 1)))` over tie groups of size `t`.
    pub z: f64,
    /// `P(Z ≥ z)`: small when `x` tends to be smaller than `y`.
    pub pvalue: f64,
}

/// Mann–Whitney U test of `x` against `y` (both non-empty, finite) with the alternative
/// "`x` stochastically smaller" — `scipy.stats.mannwhitneyu(x, y, alternative="less",
/// method="asymptotic")` (see [`MannWhitney`] for the formulas).
pub fn mann_whitney_less(x: &[f64], y: &[f64]) -> Result<MannWhitney, ParamError> {
    check_rows("x", x, 1, 1)?;
    check_rows("y", y, 1, 1)?;
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let mut pooled: Vec<(f64, bool)> = x
        .iter()
        .map(|&v| (v, true))
        .chain(y.iter().map(|&v| (v, false)))
        .collect();
    pooled.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut r1, mut ties) = (0.0, 0.0);
    let mut i = 0;
    while i < pooled.len() {
        let mut j = i;
        while j + 1 < pooled.len() && pooled[j + 1].0 == pooled[i].0 {
            j += 1;
        }
        let t = (j - i + 1) as f64;
        let mid_rank = (i + j) as f64 / 2.0 + 1.0;
        r1 += mid_rank * pooled[i..=j].iter().filter(|p| p.1).count() as f64;
        ties += t * t * t - t;
        i = j + 1;
    }
    let n = n1 + n2;
    let u1 = r1 - n1 * (n1 + 1.0) / 2.0;
    let u2 = n1 * n2 - u1;
    let s = (n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)))).sqrt();
    let z = (u2 - n1 * n2 / 2.0 - 0.5) / s;
    let normal = Normal::new(0.0, 1.0).expect("the standard normal");
    Ok(MannWhitney {
        u: u1,
        z,
        pvalue: normal.sf(z),
    })
}

/// The memorisation check of a generated set (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemorisationCheck {
    /// Generated images checked.
    pub n_generated: usize,
    /// Held-out real images checked.
    pub n_held_out: usize,
    /// Training images searched.
    pub n_train: usize,
    /// Median nearest-training distance of the generated images.
    pub median_generated: f64,
    /// Median nearest-training distance of the held-out images.
    pub median_held_out: f64,
    /// Mann–Whitney test of "generated distances smaller".
    pub test: MannWhitney,
    /// Share of generated images nearer than the held-out distances' 1 % quantile.
    pub near_copy_share: f64,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

/// The memorisation check (see the module docs) of `generated` against `held_out` real images
/// (each `≥ 1` row of `d` values), both searched over `train` (the generator's training
/// images, never containing the held-out ones).
pub fn memorisation_check(
    generated: &[f32],
    held_out: &[f32],
    train: &[f32],
    d: usize,
) -> Result<MemorisationCheck, ParamError> {
    let d_gen = nearest_distances(generated, train, d).map_err(|e| e.under("generated"))?;
    let d_held = nearest_distances(held_out, train, d).map_err(|e| e.under("held_out"))?;
    memorisation_from_distances(&d_gen, &d_held, train.len() / d)
}

/// [`memorisation_check`] from the nearest-training distances of the generated (`d_gen`) and
/// held-out (`d_held`) images; `n_train` is recorded.
pub fn memorisation_from_distances(
    d_gen: &[f64],
    d_held: &[f64],
    n_train: usize,
) -> Result<MemorisationCheck, ParamError> {
    let test = mann_whitney_less(d_gen, d_held)?;
    let mut sorted = d_held.to_vec();
    sorted.sort_by(f64::total_cmp);
    // The empirical quantile at NEAR_COPY_QUANTILE (lower order statistic).
    let q = sorted[((NEAR_COPY_QUANTILE * sorted.len() as f64) as usize).min(sorted.len() - 1)];
    let near = d_gen.iter().filter(|&&v| v < q).count();
    Ok(MemorisationCheck {
        n_generated: d_gen.len(),
        n_held_out: d_held.len(),
        n_train,
        median_generated: median(d_gen),
        median_held_out: median(d_held),
        test,
        near_copy_share: near as f64 / d_gen.len() as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, StandardNormal};

    /// `python3 crates/metrics/tests/images_reference.py` (brute force NumPy / SciPy).
    const PR_NUMPY: (f64, f64) = (0.935, 0.64);
    const MWU_SCIPY: (f64, f64) = (776.0, 0.0073747302574558235);
    const MWU_SCIPY_TIES: (f64, f64) = (776.5, 0.007032707257074464);

    fn fixture(n: usize, d: usize, a: f64, b: f64, c: f64) -> Vec<f64> {
        (0..n * d)
            .map(|t| {
                let (i, j) = ((t / d) as f64, (t % d) as f64);
                (a * i + b * j).sin() + c * j
            })
            .collect()
    }

    #[test]
    fn precision_recall_matches_numpy() {
        let real = fixture(300, 4, 0.7, 1.3, 0.1);
        let gen = fixture(200, 4, 0.9, 1.3, 0.1);
        let pr = precision_recall(&real, &gen, 4, 3).unwrap();
        assert_eq!((pr.precision, pr.recall), PR_NUMPY, "{pr:?}");
        // Brute-force radii by sorting all distances.
        let r = knn_radii(&real, 4, 3).unwrap();
        for i in [0, 17, 299] {
            let mut ds: Vec<f64> = (0..300)
                .filter(|&j| j != i)
                .map(|j| sq_dist(&real[i * 4..i * 4 + 4], &real[j * 4..j * 4 + 4]).sqrt())
                .collect();
            ds.sort_by(f64::total_cmp);
            assert_eq!(r[i], ds[2]);
        }
    }

    #[test]
    fn two_draws_of_one_law_cover_each_other_and_a_collapsed_set_does_not() {
        let mut rng = smoluchowski_core::streams::seeded(11, 0);
        let mut draw = |n: usize, scale: f64| -> Vec<f64> {
            (0..n * 3)
                .map(|_| {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    scale * z
                })
                .collect::<Vec<f64>>()
        };
        let (a, b) = (draw(1500, 1.0), draw(1500, 1.0));
        let same = precision_recall(&a, &b, 3, 3).unwrap();
        assert!(same.precision > 0.9 && same.recall > 0.9, "{same:?}");
        // Mode collapse: every generated point near the origin — precise, no recall.
        let collapsed = draw(1500, 0.1);
        let pr = precision_recall(&a, &collapsed, 3, 3).unwrap();
        assert!(pr.precision > 0.8 && pr.recall < 0.05, "{pr:?}");
        // Off the data: neither.
        let off: Vec<f64> = b.iter().map(|v| v + 5.0).collect();
        let pr = precision_recall(&a, &off, 3, 3).unwrap();
        assert!(pr.precision < 0.05 && pr.recall < 0.05, "{pr:?}");
        let e = precision_recall(&a[..9], &b, 3, 3).unwrap_err().to_string();
        assert!(e.starts_with("real.x (length)"), "{e}");
        assert!(knn_radii(&a, 3, 0).is_err());
    }

    #[test]
    fn mann_whitney_matches_scipy() {
        let x: Vec<f64> = (0..40)
            .map(|i| ((i as f64) * 0.73).sin() * 2.0 + 0.1 * i as f64)
            .collect();
        let y: Vec<f64> = (0..55)
            .map(|i| ((i as f64) * 0.41).cos() * 2.0 + 0.12 * i as f64)
            .collect();
        let t = mann_whitney_less(&x, &y).unwrap();
        assert!((t.u - MWU_SCIPY.0).abs() < 1e-9, "{t:?}");
        assert!((t.pvalue - MWU_SCIPY.1).abs() < 1e-12, "{t:?}");
        // With ties: rounded values.
        let xr: Vec<f64> = x.iter().map(|v| v.round()).collect();
        let yr: Vec<f64> = y.iter().map(|v| v.round()).collect();
        let t = mann_whitney_less(&xr, &yr).unwrap();
        assert!((t.u - MWU_SCIPY_TIES.0).abs() < 1e-9, "{t:?}");
        assert!((t.pvalue - MWU_SCIPY_TIES.1).abs() < 1e-12, "{t:?}");
        let e = mann_whitney_less(&[], &y).unwrap_err().to_string();
        assert!(e.starts_with("x (length)"), "{e}");
    }

    #[test]
    fn copies_of_training_images_are_caught() {
        let mut rng = smoluchowski_core::streams::seeded(12, 0);
        let d = 20;
        let mut draw = |n: usize| -> Vec<f32> {
            (0..n * d)
                .map(|_| StandardNormal.sample(&mut rng))
                .collect::<Vec<f32>>()
        };
        let train = draw(2000);
        let held = draw(300);
        let fresh = draw(300);
        // Exact nearest distances against brute force.
        let dh = nearest_distances(&held, &train, d).unwrap();
        for i in [0, 150, 299] {
            let brute = train
                .chunks_exact(d)
                .map(|t| {
                    t.iter()
                        .zip(&held[i * d..(i + 1) * d])
                        .map(|(a, b)| ((a - b) as f64).powi(2))
                        .sum::<f64>()
                })
                .fold(f64::INFINITY, f64::min)
                .sqrt();
            assert!((dh[i] - brute).abs() < 1e-5 * brute, "{} {brute}", dh[i]);
        }
        let honest = memorisation_check(&fresh, &held, &train, d).unwrap();
        assert_eq!(
            (honest.n_generated, honest.n_held_out, honest.n_train),
            (300, 300, 2000)
        );
        assert!(honest.test.pvalue > 1e-3, "{honest:?}");
        // Half the "generated" images are training images plus a little noise.
        let mut copied = fresh.clone();
        for (i, v) in copied.iter_mut().enumerate().take(150 * d) {
            *v = train[i] + 0.01 * *v;
        }
        let dc = nearest_distances(&copied, &train, d).unwrap();
        let caught = memorisation_from_distances(&dc, &dh, 2000).unwrap();
        assert!(caught.test.pvalue < 1e-6, "{caught:?}");
        assert!(caught.near_copy_share >= 0.5, "{caught:?}");
        assert!(caught.median_generated < honest.median_generated);
        let e = memorisation_check(&held[..5], &held, &train, d)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("generated.queries (length)"), "{e}");
    }
}
