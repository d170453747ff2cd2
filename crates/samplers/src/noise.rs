//! Seeded Gaussian noise, split into fixed row chunks so it is identical for any thread count.
//!
//! Noise event `e` (the prior draw, or stage `j` of step `i`) for row chunk `c` (rows
//! `c·CHUNK_ROWS .. (c+1)·CHUNK_ROWS`) comes from its own ChaCha8 generator keyed by
//! `(seed, e)` on stream `c`, filled in row-major order. Chunks are therefore independent of
//! how many threads fill them, and row `r`'s noise does not depend on the batch size `n`.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use smoluchowski_core::streams;

/// Rows per noise chunk (fixed: changing it changes every sample).
pub const CHUNK_ROWS: usize = 4096;

/// One draw of fresh noise for the whole batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoiseEvent {
    /// The initial draw `x_T ~ N(0, prior_std² I)`.
    Prior,
    /// Stage `stage` (e.g. corrector step) of grid step `step` (0-based).
    Step {
        /// Grid step index `i` (from `t_i` to `t_{i+1}`).
        step: u32,
        /// Stage within the step.
        stage: u32,
    },
}

impl NoiseEvent {
    /// Stage `stage` of grid step `step`; both must be below 2³² (checked by the config).
    pub fn step(step: usize, stage: usize) -> Self {
        NoiseEvent::Step {
            step: step as u32,
            stage: stage as u32,
        }
    }

    /// Injective 64-bit id: `u64::MAX` for the prior, `step · 2³² + stage` otherwise.
    pub fn id(self) -> u64 {
        match self {
            NoiseEvent::Prior => u64::MAX,
            NoiseEvent::Step { step, stage } => (u64::from(step) << 32) | u64::from(stage),
        }
    }
}

/// The generator of row chunk `chunk` of `event`: ChaCha8 with the 256-bit key
/// `(seed, event.id(), 0, 0)` (little-endian words) on stream `chunk`.
pub fn chunk_rng(seed: u64, event: NoiseEvent, chunk: usize) -> ChaCha8Rng {
    streams::keyed(seed, event.id().to_le_bytes(), 0, chunk as u64)
}

/// `x ← c · z`, `z ~ N(0, I)` from `(seed, event)`; `x` is row-major with `dim` columns.
pub(crate) fn fill_scaled_normal(x: &mut [f32], c: f64, dim: usize, seed: u64, event: NoiseEvent) {
    x.par_chunks_mut(CHUNK_ROWS * dim)
        .enumerate()
        .for_each(|(chunk, xs)| {
            let mut rng = chunk_rng(seed, event, chunk);
            for xi in xs {
                let z: f64 = rng.sample(StandardNormal);
                *xi = (c * z) as f32;
            }
        });
}

/// `x ← x + b · y + c · z`, `z ~ N(0, I)` from `(seed, event)`, computed in f64.
pub(crate) fn add_scaled_and_noise(
    x: &mut [f32],
    y: &[f32],
    b: f64,
    c: f64,
    dim: usize,
    seed: u64,
    event: NoiseEvent,
) {
    affine_and_noise(x, y, 1.0, b, c, dim, seed, event);
}

/// `x ← a · x + b · y + c · z`, `z ~ N(0, I)` from `(seed, event)`, computed in f64.
#[allow(clippy::too_many_arguments)]
pub(crate) fn affine_and_noise(
    x: &mut [f32],
    y: &[f32],
    a: f64,
    b: f64,
    c: f64,
    dim: usize,
    seed: u64,
    event: NoiseEvent,
) {
    debug_assert_eq!(x.len(), y.len());
    let rows = CHUNK_ROWS * dim;
    x.par_chunks_mut(rows)
        .zip(y.par_chunks(rows))
        .enumerate()
        .for_each(|(chunk, (xs, ys))| {
            let mut rng = chunk_rng(seed, event, chunk);
            for (xi, &yi) in xs.iter_mut().zip(ys) {
                let z: f64 = rng.sample(StandardNormal);
                *xi = (a * f64::from(*xi) + b * f64::from(yi) + c * z) as f32;
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_distinct_and_streams_differ() {
        assert_ne!(NoiseEvent::Prior.id(), NoiseEvent::step(0, 0).id());
        assert_ne!(NoiseEvent::step(1, 0).id(), NoiseEvent::step(0, 1).id());
        let draw = |seed, ev, c| chunk_rng(seed, ev, c).gen::<u64>();
        let a = draw(7, NoiseEvent::step(3, 0), 0);
        assert_eq!(a, draw(7, NoiseEvent::step(3, 0), 0));
        assert_ne!(a, draw(8, NoiseEvent::step(3, 0), 0));
        assert_ne!(a, draw(7, NoiseEvent::step(4, 0), 0));
        assert_ne!(a, draw(7, NoiseEvent::step(3, 1), 0));
        assert_ne!(a, draw(7, NoiseEvent::step(3, 0), 1));
    }

    #[test]
    fn scaled_normal_has_the_requested_scale() {
        // n = 10⁵ draws of 2·z: the sample mean has sd 2/√n ≈ 0.0063 and the sample variance
        // sd 4·√(2/n) ≈ 0.018; assert within 5 standard errors.
        let n = 100_000;
        let mut x = vec![0.0f32; n];
        fill_scaled_normal(&mut x, 2.0, 1, 1, NoiseEvent::Prior);
        let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
        let var = x
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        assert!(mean.abs() < 5.0 * 0.0063, "mean {mean}");
        assert!((var - 4.0).abs() < 5.0 * 0.018, "var {var}");
    }
}
