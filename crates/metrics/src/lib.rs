//! Statistics for checking samples against exact truth: histograms, radial and angular
//! marginals, Kolmogorov–Smirnov tests and distances between sample sets, and the
//! classifier-based statistics of generated images with their noise floors ([`images`]).
//!
//! Everything is plain `f64` numerics. KS tests match SciPy's defaults
//! (`scipy.stats.kstest` / `ks_2samp` with `method='auto'`); see [`ks_one_sample`] and
//! [`ks_two_sample`] for the exact algorithms. All randomness (only the projection
//! directions of [`sliced_wasserstein`]) comes from a seeded `ChaCha8Rng`.
//!
//! ```
//! use smoluchowski_metrics::{ks_one_sample, ks_two_sample};
//! // Midpoint quantiles of U(0, 1): D = 1/(2n), p-value 1.
//! let x: Vec<f64> = (0..100).map(|i| (i as f64 + 0.5) / 100.0).collect();
//! let r = ks_one_sample(&x, |t| t.clamp(0.0, 1.0));
//! assert!((r.statistic - 0.005).abs() < 1e-15 && r.pvalue == 1.0);
//! let shifted: Vec<f64> = x.iter().map(|v| v + 0.5).collect();
//! assert!(ks_two_sample(&x, &shifted).pvalue < 1e-10);
//! ```

mod binned;
mod distance;
mod error;
mod frechet;
mod hist;
pub mod images;
mod kolmogorov;
mod ks;
pub mod manifold;
mod marginals;
mod moments;
mod noise_floor;
mod paired;
mod planar;
mod quality;

pub use binned::{
    bin_fractions, bin_masses, binomial_l1_noise, ks_critical_asymptotic, l1_distance,
    nearest_center_variance_ratio,
};
pub use distance::{energy_distance, sliced_wasserstein, wasserstein_1d, wasserstein_p_1d};
pub use error::MetricsError;
pub use frechet::{frechet_distance, GaussianMoments};
pub use hist::{Histogram1d, Histogram2d};
pub use images::{
    chi_square_test, confidence_stats, evaluate_images, image_stats, kid, label_frequencies,
    predicted_class_counts, ChiSquareTest, ClassifiedImages, ConfidenceStats, ImageEvaluation,
    ImageStats, ReferenceFeatures,
};
pub use kolmogorov::{kolmogorov_sf, ks_one_sample_isf, ks_one_sample_sf, ks_one_sided_sf};
pub use ks::{ks_one_sample, ks_two_sample, KsResult, KS_TWO_SAMPLE_EXACT_MAX_N};
pub use manifold::{
    knn_radii, mann_whitney_less, memorisation_check, memorisation_from_distances,
    nearest_distances, precision_recall, precision_recall_given, MannWhitney, MemorisationCheck,
    PrecisionRecall, PR_NEIGHBOURS,
};
pub use marginals::{angles, radii};
pub use moments::mean_var;
pub use noise_floor::{reference_memory_estimate, sliced_wasserstein_noise_floor};
pub use paired::{
    likelihood_gaps, max_abs_diff, mean_se, paired_differences, paired_mean_se, sample_sd,
    LikelihoodGaps, MeanSe,
};
pub use planar::{evaluate_planar, mean_std, PlanarEvaluation, ReferenceDistances, ReferenceDraws};
pub use quality::{
    planar_evaluation_memory, trailing_mean, PLANAR_BYTES_PER_REFERENCE, PLANAR_BYTES_PER_SAMPLE,
};
