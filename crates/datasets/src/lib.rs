//! Datasets with exact, known marginals.
//!
//! A [`Dataset`] draws `n` points of dimension `d` from a seeded random generator into a
//! row-major buffer (`out[i * d + j]` is coordinate `j` of point `i`).

use rand::Rng;

mod data_error;
mod error;
mod gaussian;
pub mod idx;
mod mixture;
mod mixture_config;
mod mixture_score;
pub mod mnist;
mod ring2d;
mod shapes2d;

pub use data_error::{sha256_hex, DataError};
pub use error::{check_parameter, DatasetError, ParamError, ParameterError};
pub use gaussian::Gaussian;
pub use mixture::GaussianMixture;
pub use mixture_config::{draws_memory, CircleMixtureConfig, Mixture1dConfig};
pub use mnist::{Mnist, MnistImages, MnistSource, MnistSplit, PixelScale};
pub use ring2d::{Ring2d, Ring2dConditional, ANGULAR_ENTROPY};
pub use shapes2d::{Checkerboard, Circles, SwissRoll, TwoMoons};

/// A distribution over `R^d` that can be sampled into a row-major buffer.
pub trait Dataset {
    /// Dimension `d` of one point.
    fn dim(&self) -> usize;

    /// Fill `out` (length `n * dim()`, row-major) with `n` independent points.
    ///
    /// Panics if `out.len()` is not a multiple of `dim()`.
    fn sample_into<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f64]);

    /// Draw `n` points into a fresh row-major buffer of length `n * dim()`.
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R, n: usize) -> Vec<f64> {
        let mut out = vec![0.0; n * self.dim()];
        self.sample_into(rng, &mut out);
        out
    }
}

/// A distribution over pairs `(x, c)`: points in `R^d` with a discrete label
/// `c ∈ {0, …, classes − 1}` (the condition of a class-conditional model).
pub trait LabelledDataset: Dataset {
    /// Number of classes.
    fn classes(&self) -> usize;

    /// Fill `out` (length `n * dim()`, row-major) with `n` independent points and `labels`
    /// (length `n`) with their labels.
    fn sample_labelled_into<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        out: &mut [f64],
        labels: &mut [u32],
    );
}
