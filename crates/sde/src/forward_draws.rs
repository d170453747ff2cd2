//! Exact draws of a forward process's marginal from a sampleable dataset, and the gap between a
//! DDPM chain and the VP SDE it discretises.

use rand::Rng;
use rand_distr::StandardNormal;
use smoluchowski_datasets::Dataset;

use crate::ddpm::DdpmSchedule;
use crate::error::ParamError;
use crate::ForwardSde;

/// `n` exact draws of the forward marginal `p_t = m(t)·p_data ∗ N(0, σ(t)² I)`:
/// `x_t = m(t) x₀ + σ(t) ε` with `x₀ ~ data`, `ε ~ N(0, I)`, computed in `f64` and stored as
/// `f32` (a sampler's starting state), row-major `n × d`.
///
/// Exact whenever the data law can be sampled, so a reverse process can start from the true
/// `p_T` instead of the prior even when `p_T` is far from it. One stream, row by row: the row's
/// `x₀` (`data.sample_into` on a `d`-buffer) then its `d` normals.
pub fn forward_marginal_draws<S, D, R>(sde: &S, data: &D, t: f64, n: usize, rng: &mut R) -> Vec<f32>
where
    S: ForwardSde + ?Sized,
    D: Dataset + ?Sized,
    R: Rng,
{
    let (m, s) = (sde.mean_coef(t), sde.marginal_std(t));
    let mut x0 = vec![0.0f64; data.dim()];
    let mut out = Vec::with_capacity(data.dim() * n);
    for _ in 0..n {
        data.sample_into(rng, &mut x0);
        for &v in &x0 {
            let e: f64 = rng.sample(StandardNormal);
            out.push((m * v + s * e) as f32);
        }
    }
    out
}

/// Largest gap `max_{0 ≤ i ≤ N} |√ᾱ_i − m_VP(t_i)|`, `t_i = i/N`, between a linear DDPM chain's
/// mean coefficients and those of the VP SDE it discretises ([`DdpmSchedule::to_vp_sde`]): the
/// `O(1/N)` difference between the two processes' kernels. An error for a schedule without a
/// VP SDE (cosine).
pub fn ddpm_vp_kernel_gap(schedule: &DdpmSchedule) -> Result<f64, ParamError> {
    let vp = schedule.to_vp_sde()?;
    let ab = schedule.alphas_bar();
    Ok((0..=schedule.steps())
        .map(|i| (ab[i].sqrt() - vp.mean_coef(schedule.time(i))).abs())
        .fold(0.0, f64::max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DdpmSchedule, SubVpSde};
    use smoluchowski_datasets::Ring2d;

    #[test]
    fn forward_marginal_draws_have_the_kernel_second_moment() {
        // E|x_t|² = m² E r² + 2σ² with E r² = 1 + 1/k for ring2d (radius Gamma(k, rate k)).
        let sde = SubVpSde::new(1e-4, 0.02, 100.0).unwrap();
        let (m, s) = (sde.mean_coef(100.0), sde.marginal_std(100.0));
        let data = Ring2d::new(200.0).unwrap();
        let n = 50_000;
        let mut rng = smoluchowski_core::streams::seeded(7, 0);
        let x = forward_marginal_draws(&sde, &data, 100.0, n, &mut rng);
        assert_eq!(x.len(), 2 * n);
        let sq: Vec<f64> = x
            .chunks_exact(2)
            .map(|p| f64::from(p[0]).powi(2) + f64::from(p[1]).powi(2))
            .collect();
        let mean = sq.iter().sum::<f64>() / n as f64;
        let var = sq.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let want = m * m * (1.0 + 1.0 / 200.0) + 2.0 * s * s;
        let z = (mean - want) / (var.sqrt() / (n as f64).sqrt());
        assert!(z.abs() < 4.5, "mean |x_t|² {mean} vs {want} (z = {z})");
        let mut again = smoluchowski_core::streams::seeded(7, 0);
        assert_eq!(x, forward_marginal_draws(&sde, &data, 100.0, n, &mut again));
    }

    #[test]
    fn the_chain_vp_gap_shrinks_like_one_over_n() {
        let gap = |n: usize| {
            ddpm_vp_kernel_gap(&DdpmSchedule::linear(0.1 / n as f64, 20.0 / n as f64, n).unwrap())
                .unwrap()
        };
        let (g1, g2) = (gap(100), gap(1000));
        assert!(g1 > 0.0 && g2 > 0.0);
        assert!((g1 / g2 - 10.0).abs() < 3.0, "{g1} / {g2}");
        assert!(ddpm_vp_kernel_gap(&DdpmSchedule::cosine(0.008, 100).unwrap()).is_err());
    }
}
