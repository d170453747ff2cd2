//! Langevin Markov chain Monte Carlo from an exact log-density or a learned score (seed 002).
//!
//! - Unadjusted Langevin (ULA): `x ← x + ε ∇log q(x) + √(2ε) z`, `z ~ N(0, I)`. Its stationary
//!   law is `q` only as `ε → 0`: the bias is `O(ε)` (for `q = N(0, 1)` the chain is the AR(1)
//!   `x ← (1 − ε) x + √(2ε) z` with stationary variance exactly `1 / (1 − ε/2)`).
//! - MALA (Metropolis-adjusted Langevin): the same proposal `y = x + ε ∇log q(x) + √(2ε) z`,
//!   accepted with probability `min(1, q(y) k(x | y) / (q(x) k(y | x)))`,
//!   `k(y | x) = N(y; x + ε ∇log q(x), 2ε I)`. Then `q` is exactly stationary for every `ε`.
//! - Annealed Langevin (Song & Ermon, 2019) from any [`Score`]: ULA at a decreasing sequence of
//!   noise levels `σ_1 > … > σ_L` (here the perturbation kernels `σ_i = σ(t_i)` of a forward
//!   SDE, the score taken at `t_i`) with steps `α_i = ε σ_i² / σ_L²`, `T` iterations each.
//!
//! [`langevin_chains`] runs many independent chains in parallel, in fixed chunks of
//! [`CHAINS_PER_CHUNK`] chains; chunk `c` draws from its own ChaCha8 stream keyed by
//! `(seed, c)`, so the output is bit-identical for any number of threads.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use smoluchowski_datasets::{GaussianMixture, Ring2d};
use smoluchowski_sde::{ForwardSde, Score};

use crate::error::{check, SamplerError};
use crate::noise::{self, NoiseEvent};

/// Chains per random-stream chunk (fixed: changing it changes every sample).
pub const CHAINS_PER_CHUNK: usize = 256;

/// `ln √(2π)`.
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// A (possibly unnormalised) log-density `log q(x)` on `R^d` with its gradient, for one point.
pub trait LogDensity {
    /// Dimension `d`.
    fn dim(&self) -> usize;
    /// Return `log q(x)` and write `∇ log q(x)` into `grad` (both of length `d`).
    ///
    /// Where `q(x) = 0` return `−∞` (the gradient is then ignored).
    fn log_density_and_grad(&self, x: &[f64], grad: &mut [f64]) -> f64;
}

impl<T: LogDensity + ?Sized> LogDensity for &T {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn log_density_and_grad(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        (**self).log_density_and_grad(x, grad)
    }
}

/// `ring2d`'s exact density in the plane (normalised):
///
/// `log p(x) = ln p(r) + ln p(θ) − ln r = C + k ln r − k r − 2 ln max(|x₁|, |x₂|)`,
/// `C = k ln k − ln Γ(k) − ln 8`, `r = |x|`,
///
/// `∇ log p(x) = (k / r − k) x / r − 2 sign(x_j) e_j / |x_j|`, `j = argmax_i |x_i|`.
///
/// The density is continuous; its gradient jumps across the diagonals `|x₁| = |x₂|` (the
/// corners of the square of directions), where the component of the larger coordinate is used
/// (`j = 0` on ties). MALA's correction makes this harmless. `log p = −∞` at the origin.
impl LogDensity for Ring2d {
    fn dim(&self) -> usize {
        2
    }

    fn log_density_and_grad(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        let k = self.scale();
        let r = x[0].hypot(x[1]);
        if r == 0.0 || !r.is_finite() {
            grad[0] = 0.0;
            grad[1] = 0.0;
            return f64::NEG_INFINITY;
        }
        let radial = (k / r - k) / r;
        grad[0] = radial * x[0];
        grad[1] = radial * x[1];
        let j = usize::from(x[1].abs() > x[0].abs());
        grad[j] -= 2.0 / x[j];
        self.log_density([x[0], x[1]])
    }
}

/// A Gaussian mixture's exact log-density with cached per-component constants:
///
/// `log p(x) = log Σ_k exp(c_k − ½ Σ_j (x_j − μ_kj)² / s_kj²)`, `c_k = ln w_k − Σ_j (ln s_kj + ½ ln 2π)`,
///
/// `∇ log p(x) = Σ_k r_k(x) (μ_k − x) / s_k²`, `r_k = w_k N_k(x) / p(x)` (streaming
/// log-sum-exp: finite and accurate far from the data).
#[derive(Debug, Clone, PartialEq)]
pub struct MixtureLogDensity {
    dim: usize,
    means: Vec<f64>,
    inv_var: Vec<f64>,
    log_norm: Vec<f64>,
}

impl MixtureLogDensity {
    /// The log-density of `mixture`.
    pub fn new(mixture: &GaussianMixture) -> Self {
        let dim = mixture.means().len() / mixture.n_components();
        let inv_var = mixture.stds().iter().map(|s| 1.0 / (s * s)).collect();
        let log_norm = (0..mixture.n_components())
            .map(|k| {
                mixture.weights()[k].ln()
                    - mixture
                        .std(k)
                        .iter()
                        .map(|s| s.ln() + LN_SQRT_2PI)
                        .sum::<f64>()
            })
            .collect();
        Self {
            dim,
            means: mixture.means().to_vec(),
            inv_var,
            log_norm,
        }
    }
}

impl From<&GaussianMixture> for MixtureLogDensity {
    fn from(m: &GaussianMixture) -> Self {
        Self::new(m)
    }
}

impl LogDensity for MixtureLogDensity {
    fn dim(&self) -> usize {
        self.dim
    }

    fn log_density_and_grad(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        let d = self.dim;
        grad.iter_mut().for_each(|g| *g = 0.0);
        let mut max = f64::NEG_INFINITY;
        let mut sum = 0.0;
        for (k, &c) in self.log_norm.iter().enumerate() {
            let mu = &self.means[k * d..(k + 1) * d];
            let iv = &self.inv_var[k * d..(k + 1) * d];
            let mut l = c;
            for j in 0..d {
                let u = x[j] - mu[j];
                l -= 0.5 * u * u * iv[j];
            }
            if l == f64::NEG_INFINITY {
                continue;
            }
            if l > max {
                // Rescale what was accumulated relative to the new maximum.
                let f = (max - l).exp();
                sum *= f;
                grad.iter_mut().for_each(|g| *g *= f);
                max = l;
            }
            let e = (l - max).exp();
            sum += e;
            for j in 0..d {
                grad[j] += e * (mu[j] - x[j]) * iv[j];
            }
        }
        if sum == 0.0 {
            return f64::NEG_INFINITY;
        }
        let inv = 1.0 / sum;
        grad.iter_mut().for_each(|g| *g *= inv);
        max + sum.ln()
    }
}

/// Which Langevin chain to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LangevinMethod {
    /// Unadjusted Langevin `x ← x + ε ∇log q(x) + √(2ε) z` (biased by `O(ε)`).
    Ula,
    /// Metropolis-adjusted Langevin: the ULA proposal accepted with probability
    /// `min(1, exp(log q(y) − log q(x) − |x − y − ε∇log q(y)|²/(4ε) + |y − x − ε∇log q(x)|²/(4ε)))`.
    Mala,
}

/// Length and thinning of every chain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LangevinConfig {
    /// ULA or MALA.
    pub method: LangevinMethod,
    /// Step `ε > 0` (the time step of the Langevin diffusion `dx = ∇log q dt + √2 dW`).
    pub step: f64,
    /// Steps before the first recorded state.
    pub burn_in: usize,
    /// States recorded per chain, `≥ 1`: after `burn_in + j · thin` steps, `j = 0..samples_per_chain`.
    pub samples_per_chain: usize,
    /// Steps between recorded states, `≥ 1`.
    pub thin: usize,
}

impl LangevinConfig {
    /// One recorded state per chain, after `n_steps` steps (independent chains ⇒ independent
    /// samples).
    pub fn final_state(method: LangevinMethod, step: f64, n_steps: usize) -> Self {
        Self {
            method,
            step,
            burn_in: n_steps,
            samples_per_chain: 1,
            thin: 1,
        }
    }

    /// Steps per chain: `burn_in + (samples_per_chain − 1) · thin`.
    pub fn total_steps(&self) -> usize {
        self.burn_in + self.samples_per_chain.saturating_sub(1) * self.thin
    }
}

/// Samples and acceptance counts of [`langevin_chains`].
#[derive(Debug, Clone, PartialEq)]
pub struct LangevinOutput {
    /// `n_chains × samples_per_chain × dim`, chain-major.
    pub samples: Vec<f64>,
    /// Dimension of a sample.
    pub dim: usize,
    /// Number of chains.
    pub n_chains: usize,
    /// Recorded states per chain.
    pub samples_per_chain: usize,
    /// Proposals made, over all chains and steps (burn-in included).
    pub proposals: u64,
    /// Proposals accepted (every proposal for ULA).
    pub accepted: u64,
}

impl LangevinOutput {
    /// `accepted / proposals` (1 for ULA; NaN with no proposals).
    pub fn acceptance_rate(&self) -> f64 {
        self.accepted as f64 / self.proposals as f64
    }
}

/// The random stream of chain chunk `chunk`: ChaCha8 keyed by `(seed, "langevin")` on stream
/// `chunk`.
fn chunk_rng(seed: u64, chunk: usize) -> ChaCha8Rng {
    smoluchowski_core::streams::keyed(seed, *b"langevin", 0, chunk as u64)
}

/// Runs one independent chain per row of `init` (`n × d`, row-major, `d = target.dim()`) with
/// the [`LangevinConfig`]; returns the recorded states and the acceptance counts.
///
/// Chains are processed in chunks of [`CHAINS_PER_CHUNK`] rows, chunk `c` with its own
/// ChaCha8 stream `(seed, c)` (rows in order, `d` normals per step, then one uniform per MALA
/// step): same seed ⇒ bit-identical output for any number of threads.
///
/// Errors: `step` not finite and `> 0`, `samples_per_chain` or `thin` zero, `init` empty or not
/// a multiple of `d`, or a starting point with `log q = −∞` / NaN (named by its row).
pub fn langevin_chains<T: LogDensity + Sync + ?Sized>(
    target: &T,
    init: &[f64],
    config: &LangevinConfig,
    seed: u64,
) -> Result<LangevinOutput, SamplerError> {
    let d = target.dim();
    if d == 0 {
        return Err(crate::error::invalid("target.dim()", d, "≥ 1"));
    }
    check("step", config.step, "> 0", |v| v > 0.0)?;
    if config.samples_per_chain == 0 {
        return Err(crate::error::invalid("samples_per_chain", 0, "≥ 1"));
    }
    if config.thin == 0 {
        return Err(crate::error::invalid("thin", 0, "≥ 1"));
    }
    if init.is_empty() || !init.len().is_multiple_of(d) {
        return Err(crate::error::invalid(
            "init.len()",
            init.len(),
            format!("a positive multiple of target.dim() = {d}"),
        ));
    }
    let n = init.len() / d;
    let mut grad = vec![0.0; d];
    for (row, x) in init.chunks_exact(d).enumerate() {
        let lp = target.log_density_and_grad(x, &mut grad);
        if lp.is_nan() || lp == f64::NEG_INFINITY || grad.iter().any(|g| !g.is_finite()) {
            return Err(crate::error::invalid(
                format!("init[{row}]"),
                x,
                "a point where log q is finite and has a finite gradient",
            ));
        }
    }
    let s = config.samples_per_chain;
    let mut samples = vec![0.0; n * s * d];
    let (proposals, accepted) = init
        .par_chunks(CHAINS_PER_CHUNK * d)
        .zip(samples.par_chunks_mut(CHAINS_PER_CHUNK * s * d))
        .enumerate()
        .map(|(chunk, (xs, out))| run_chunk(target, xs, out, config, chunk_rng(seed, chunk)))
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    Ok(LangevinOutput {
        samples,
        dim: d,
        n_chains: n,
        samples_per_chain: s,
        proposals,
        accepted,
    })
}

/// The chains of one chunk, one after the other; returns `(proposals, accepted)`.
fn run_chunk<T: LogDensity + ?Sized>(
    target: &T,
    init: &[f64],
    out: &mut [f64],
    config: &LangevinConfig,
    mut rng: ChaCha8Rng,
) -> (u64, u64) {
    let d = target.dim();
    let eps = config.step;
    let noise_scale = (2.0 * eps).sqrt();
    let inv_4eps = 1.0 / (4.0 * eps);
    let total = config.total_steps();
    let s = config.samples_per_chain;
    // Scratch, once per chunk.
    let mut x = vec![0.0; d];
    let mut gx = vec![0.0; d];
    let mut y = vec![0.0; d];
    let mut gy = vec![0.0; d];
    let mut accepted = 0u64;
    for (x0, rec) in init.chunks_exact(d).zip(out.chunks_exact_mut(s * d)) {
        x.copy_from_slice(x0);
        let mut lx = target.log_density_and_grad(&x, &mut gx);
        let mut next_record = config.burn_in;
        let mut recorded = 0;
        for step in 0..=total {
            if step == next_record {
                rec[recorded * d..(recorded + 1) * d].copy_from_slice(&x);
                recorded += 1;
                next_record += config.thin;
            }
            if step == total {
                break;
            }
            match config.method {
                LangevinMethod::Ula => {
                    for j in 0..d {
                        let z: f64 = rng.sample(StandardNormal);
                        x[j] += eps * gx[j] + noise_scale * z;
                    }
                    target.log_density_and_grad(&x, &mut gx);
                    accepted += 1;
                }
                LangevinMethod::Mala => {
                    // log k(y | x) = −|z|²/2 + const, since y − x − ε∇log q(x) = √(2ε) z.
                    let mut fwd = 0.0;
                    for j in 0..d {
                        let z: f64 = rng.sample(StandardNormal);
                        y[j] = x[j] + eps * gx[j] + noise_scale * z;
                        fwd += 0.5 * z * z;
                    }
                    let ly = target.log_density_and_grad(&y, &mut gy);
                    let u: f64 = rng.gen();
                    if ly.is_nan() || ly == f64::NEG_INFINITY {
                        continue;
                    }
                    let mut bwd = 0.0;
                    for j in 0..d {
                        let v = x[j] - y[j] - eps * gy[j];
                        bwd += v * v;
                    }
                    let log_alpha = ly - lx - bwd * inv_4eps + fwd;
                    if u.ln() < log_alpha {
                        std::mem::swap(&mut x, &mut y);
                        std::mem::swap(&mut gx, &mut gy);
                        lx = ly;
                        accepted += 1;
                    }
                }
            }
        }
    }
    let proposals = (init.len() / d) as u64 * total as u64;
    (proposals, accepted)
}

/// Noise levels and steps of [`annealed_langevin`].
#[derive(Debug, Clone, PartialEq)]
pub struct AnnealedLangevinConfig {
    /// Times `t_1 > t_2 > … > t_L` in `(0, T]`: level `i` targets `p_{t_i}` with noise
    /// `σ_i = sde.marginal_std(t_i)`.
    pub times: Vec<f64>,
    /// Base step `ε > 0`: level `i` uses `α_i = ε σ_i² / σ_L²` (so `α_L = ε`).
    pub step: f64,
    /// Langevin iterations per level, `T ≥ 1`.
    pub steps_per_level: usize,
}

impl AnnealedLangevinConfig {
    /// `levels` times geometric in `σ`: `σ_i` from `σ(t_max)` down to `σ(t_min)` (found by
    /// bisection on the increasing `σ(t)`), `T = steps_per_level`.
    pub fn geometric<S: ForwardSde + ?Sized>(
        sde: &S,
        t_max: f64,
        t_min: f64,
        levels: usize,
        step: f64,
        steps_per_level: usize,
    ) -> Result<Self, SamplerError> {
        check("t_min", t_min, "> 0", |v| v > 0.0)?;
        check("t_max", t_max, &format!("> t_min = {t_min}"), |v| v > t_min)?;
        if levels < 2 {
            return Err(crate::error::invalid("levels", levels, "≥ 2"));
        }
        let (s_hi, s_lo) = (sde.marginal_std(t_max), sde.marginal_std(t_min));
        check("sde.marginal_std(t_min)", s_lo, "> 0", |v| v > 0.0)?;
        check("sde.marginal_std(t_max)", s_hi, "> σ(t_min)", |v| v > s_lo)?;
        let times = (0..levels)
            .map(|i| {
                let f = i as f64 / (levels - 1) as f64;
                let target = s_hi * (s_lo / s_hi).powf(f);
                let (mut a, mut b) = (t_min, t_max);
                for _ in 0..100 {
                    let m = 0.5 * (a + b);
                    if sde.marginal_std(m) < target {
                        a = m;
                    } else {
                        b = m;
                    }
                }
                0.5 * (a + b)
            })
            .collect::<Vec<_>>();
        let mut times = times;
        times[0] = t_max;
        times[levels - 1] = t_min;
        Ok(Self {
            times,
            step,
            steps_per_level,
        })
    }
}

/// Annealed Langevin dynamics (Song & Ermon, 2019) from a batched score, in place on `x`
/// (`n × d`, f32, row-major; e.g. prior draws):
///
/// for `i = 1..L`, `α_i = ε σ_i² / σ_L²`, repeat `T` times:
/// `x ← x + α_i s(x, t_i) + √(2 α_i) z`, `z ~ N(0, I)`.
///
/// (Song & Ermon write `x + (α/2) s + √α z`: their `α` is `2α_i` here.) Each level is ULA on
/// `p_{t_i}`, so the output carries ULA's `O(α_L)` bias at the last level. Noise of iteration
/// `k` of level `i` is [`NoiseEvent::step`]`(i, k)` of `seed` (per row chunk, any thread count).
/// Returns the number of batched score evaluations `L · T`.
pub fn annealed_langevin<S, M>(
    sde: &S,
    model: &mut M,
    x: &mut [f32],
    config: &AnnealedLangevinConfig,
    seed: u64,
) -> Result<usize, SamplerError>
where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
{
    let d = model.dim();
    if d == 0 {
        return Err(crate::error::invalid("model.dim()", d, "≥ 1"));
    }
    if x.is_empty() || !x.len().is_multiple_of(d) {
        return Err(crate::error::invalid(
            "x.len()",
            x.len(),
            format!("a positive multiple of model.dim() = {d}"),
        ));
    }
    check("step", config.step, "> 0", |v| v > 0.0)?;
    if config.steps_per_level == 0 {
        return Err(crate::error::invalid("steps_per_level", 0, "≥ 1"));
    }
    let times = &config.times;
    if times.is_empty() {
        return Err(crate::error::invalid("times", times, "non-empty"));
    }
    let t_end = sde.t_end();
    for (i, &t) in times.iter().enumerate() {
        check(
            &format!("times[{i}]"),
            t,
            &format!("in (0, T = {t_end}]"),
            |v| v > 0.0 && v <= t_end,
        )?;
        if i > 0 && t >= times[i - 1] {
            return Err(crate::error::invalid(
                format!("times[{i}]"),
                t,
                format!("< times[{}] = {} (decreasing)", i - 1, times[i - 1]),
            ));
        }
        check(
            &format!("sde.marginal_std(times[{i}])"),
            sde.marginal_std(t),
            "> 0",
            |v| v > 0.0,
        )?;
    }
    let sigma_l = sde.marginal_std(times[times.len() - 1]);
    let mut score = vec![0.0f32; x.len()];
    let mut nfe = 0;
    for (i, &t) in times.iter().enumerate() {
        let sigma = sde.marginal_std(t);
        let alpha = config.step * (sigma / sigma_l).powi(2);
        let c = (2.0 * alpha).sqrt();
        for k in 0..config.steps_per_level {
            model.score(x, t, &mut score);
            nfe += 1;
            noise::add_scaled_and_noise(x, &score, alpha, c, d, seed, NoiseEvent::step(i, k));
        }
    }
    Ok(nfe)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central differences of `log q` against the analytic gradient.
    fn check_gradient<T: LogDensity>(target: &T, x: &[f64], tol: f64) {
        let d = target.dim();
        let mut g = vec![0.0; d];
        let mut scratch = vec![0.0; d];
        target.log_density_and_grad(x, &mut g);
        for j in 0..d {
            let h = 1e-6 * (1.0 + x[j].abs());
            let mut xp = x.to_vec();
            let mut xm = x.to_vec();
            xp[j] += h;
            xm[j] -= h;
            let fd = (target.log_density_and_grad(&xp, &mut scratch)
                - target.log_density_and_grad(&xm, &mut scratch))
                / (2.0 * h);
            assert!(
                (fd - g[j]).abs() <= tol * (1.0 + fd.abs()),
                "x = {x:?}, j = {j}: analytic {} vs finite difference {fd}",
                g[j]
            );
        }
    }

    #[test]
    fn ring2d_gradient_matches_finite_differences_off_the_diagonals() {
        let ring = Ring2d::default();
        for x in [
            [1.0, 0.3],
            [-0.2, 0.97],
            [0.5, -0.6],
            [-1.1, -0.2],
            [0.02, 0.9],
        ] {
            check_gradient(&ring, &x, 1e-6);
        }
        // The value is the dataset's exact log-density.
        let mut g = [0.0; 2];
        assert_eq!(
            ring.log_density_and_grad(&[0.3, 0.8], &mut g),
            ring.log_density([0.3, 0.8])
        );
        assert_eq!(
            ring.log_density_and_grad(&[0.0, 0.0], &mut g),
            f64::NEG_INFINITY
        );
    }

    #[test]
    fn mixture_log_density_and_gradient_are_exact() {
        let m = GaussianMixture::eight_gaussians();
        let q = MixtureLogDensity::new(&m);
        let mut g = [0.0; 2];
        for x in [
            [2.0, 0.01],
            [1.3, 1.5],
            [0.0, 0.0],
            [-1.9, 0.2],
            [30.0, -40.0],
        ] {
            let l = q.log_density_and_grad(&x, &mut g);
            let want = m.log_density(&x);
            assert!(
                (l - want).abs() <= 1e-12 * (1.0 + want.abs()),
                "{l} vs {want}"
            );
            check_gradient(&q, &x, 1e-5);
        }
        let b = GaussianMixture::bimodal_1d();
        let qb = MixtureLogDensity::new(&b);
        for x in [-3.0, -2.0, 0.0, 1.5, 2.5] {
            check_gradient(&qb, &[x], 1e-6);
        }
    }
}
