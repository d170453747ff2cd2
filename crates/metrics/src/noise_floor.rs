//! Sampling-noise floors of distances between point sets.

use smoluchowski_core::MemoryEstimate;

use crate::distance::sliced_wasserstein;

/// The sliced Wasserstein-2 distance between two independent draws of the data law: `draw`
/// fills a fresh `n × dim` draw (row-major) and the floor is
/// `SW₂(draw, reference)` over `k` directions from `seed` ([`sliced_wasserstein`]).
///
/// With the same `k` and `seed` as a measured `SW₂(samples, reference)` for `n` samples, it
/// is the value that distance takes for samples indistinguishable from the data at this size.
pub fn sliced_wasserstein_noise_floor(
    draw: impl FnOnce(&mut [f64]),
    n: usize,
    reference: &[f64],
    dim: usize,
    (k, seed): (usize, u64),
) -> f64 {
    let mut x = vec![0.0; dim * n];
    draw(&mut x);
    sliced_wasserstein(&x, reference, dim, k, seed)
}

/// Memory of a reference draw of `m` rows of dimension `dim` (at `path`) compared by
/// [`sliced_wasserstein`] and KS tests: the `m × dim` f64 draw plus four f64 per row (its
/// projections, sorted copy, radius and angle).
pub fn reference_memory_estimate(path: &str, m: usize, dim: usize) -> MemoryEstimate {
    MemoryEstimate::linear(path, m, 8 * dim as u128 + 4 * 8, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, StandardNormal};

    fn normal(x: &mut [f64], seed: u64) {
        let mut rng = smoluchowski_core::streams::seeded(seed, 0);
        x.iter_mut()
            .for_each(|v| *v = StandardNormal.sample(&mut rng));
    }

    #[test]
    fn the_floor_shrinks_with_the_draw_and_is_the_plain_distance() {
        let mut reference = vec![0.0; 2 * 20_000];
        normal(&mut reference, 1);
        let floor = |n| sliced_wasserstein_noise_floor(|x| normal(x, 2), n, &reference, 2, (16, 5));
        let (small, large) = (floor(200), floor(20_000));
        assert!(large < small && large < 0.05, "{small} {large}");
        let mut x = vec![0.0; 400];
        normal(&mut x, 2);
        assert_eq!(small, sliced_wasserstein(&x, &reference, 2, 16, 5));
        let e = reference_memory_estimate("reference_samples", 1_000_000_000_000, 2);
        assert!(smoluchowski_core::MemoryBudget::new(1 << 40)
            .check(&e)
            .is_err());
    }
}
