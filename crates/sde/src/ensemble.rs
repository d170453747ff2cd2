//! Deterministic, chunked particle ensembles and Fokker–Planck checkpoints.
//!
//! [`simulate_ensemble`] pushes `n` particles through a forward SDE by Euler–Maruyama and records
//! their positions at a list of stop times. Particles are split into fixed chunks of `chunk`;
//! chunk `c` draws its initial positions and then all its noise from
//! `streams::named(seed, name, c)`, so the result is a function of `(seed, name, chunk)` only —
//! never of the number of threads the chunks are spread over.
//!
//! [`FokkerPlanck1d::solve_checkpoints`] is the deterministic counterpart: the density evolved
//! from checkpoint to checkpoint, with the largest mass drift `max |h Σ p − 1|` on the way.

use rand_chacha::ChaCha8Rng;
use smoluchowski_core::streams;

use crate::{euler_maruyama, FokkerPlanck1d, ForwardSde};

/// A stop of an ensemble run: `(t, steps)` = run to time `t` in `steps` Euler–Maruyama steps
/// from the previous stop (or from 0).
pub type Stop = (f64, usize);

/// Positions of `n` particles at each stop, one `Vec` (length `n`) per stop.
///
/// Chunk `c` (particles `c·chunk .. min((c+1)·chunk, n)`) uses the stream
/// `streams::named(seed, name, c)`: first `init(rng, len)` for its `len` initial positions
/// (1-D), then the Euler–Maruyama noise `x ← x + a(t)x dt + g(t)√dt z` of every stop in order.
/// Chunks run on `threads` scoped threads (round-robin); the output does not depend on it.
///
/// Panics if `chunk == 0` or if `init` returns a vector of another length.
#[allow(clippy::too_many_arguments)]
pub fn simulate_ensemble<S, I>(
    sde: &S,
    init: I,
    n: usize,
    chunk: usize,
    stops: &[Stop],
    seed: u64,
    name: &str,
    threads: usize,
) -> Vec<Vec<f64>>
where
    S: ForwardSde + Sync,
    I: Fn(&mut ChaCha8Rng, usize) -> Vec<f64> + Sync,
{
    assert!(chunk > 0, "simulate_ensemble: chunk must be positive");
    let run_chunk = |c: usize| -> Vec<Vec<f64>> {
        let len = chunk.min(n - c * chunk);
        let mut rng = streams::named(seed, name, c as u64);
        let mut x = init(&mut rng, len);
        assert_eq!(
            x.len(),
            len,
            "simulate_ensemble: init returned a wrong length"
        );
        let mut t = 0.0;
        stops
            .iter()
            .map(|&(t_stop, steps)| {
                euler_maruyama(sde, &mut x, t, t_stop, steps, &mut rng, None);
                t = t_stop;
                x.clone()
            })
            .collect()
    };
    let per_chunk = run_chunks(n.div_ceil(chunk), threads, run_chunk);
    let mut out: Vec<Vec<f64>> = stops.iter().map(|_| Vec::with_capacity(n)).collect();
    for snaps in per_chunk {
        for (o, s) in out.iter_mut().zip(snaps) {
            o.extend_from_slice(&s);
        }
    }
    out
}

/// `run_chunk(c)` for `c in 0..n_chunks` on `threads` scoped threads (round-robin), returned
/// in chunk order. With per-chunk random streams the result does not depend on `threads`. A
/// worker's panic is re-raised.
pub fn run_chunks<T: Send>(
    n_chunks: usize,
    threads: usize,
    run_chunk: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    let threads = threads.clamp(1, n_chunks.max(1));
    let mut per_chunk: Vec<Option<T>> = (0..n_chunks).map(|_| None).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|w| {
                let run_chunk = &run_chunk;
                s.spawn(move || {
                    (w..n_chunks)
                        .step_by(threads)
                        .map(|c| (c, run_chunk(c)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            let done = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            for (c, r) in done {
                per_chunk[c] = Some(r);
            }
        }
    });
    per_chunk.into_iter().flatten().collect()
}

/// The solver's densities at a list of checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct FpCheckpoints {
    /// Density at the cell centres, one per stop.
    pub densities: Vec<Vec<f64>>,
    /// `max |h Σ_i p_i − 1|` over the start and every stop.
    pub mass_drift: f64,
}

impl FokkerPlanck1d {
    /// Evolves `p0` (density at the centres) through the stops `(t_k, steps_k)` with
    /// [`FokkerPlanck1d::solve`] (Crank–Nicolson, `steps_k` equal steps from `t_{k−1}`, `t_0 = 0`)
    /// and records the density at each stop and the largest mass drift `max |h Σ p − 1|`
    /// (including that of `p0`).
    pub fn solve_checkpoints<S: ForwardSde>(
        &self,
        sde: &S,
        p0: &[f64],
        stops: &[Stop],
    ) -> FpCheckpoints {
        let mut p = p0.to_vec();
        let mut mass_drift: f64 = (self.mass(&p) - 1.0).abs();
        let mut t_prev = 0.0;
        let mut densities = Vec::with_capacity(stops.len());
        for &(t, steps) in stops {
            p = self.solve(sde, &p, t_prev, t, steps);
            mass_drift = mass_drift.max((self.mass(&p) - 1.0).abs());
            densities.push(p.clone());
            t_prev = t;
        }
        FpCheckpoints {
            densities,
            mass_drift,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OuSde;
    use rand_distr::{Distribution, StandardNormal};

    fn normal_init(rng: &mut ChaCha8Rng, len: usize) -> Vec<f64> {
        (0..len).map(|_| StandardNormal.sample(rng)).collect()
    }

    #[test]
    fn ensemble_is_independent_of_thread_count_and_keeps_the_stationary_law() {
        // OU with a = 1, D = 1 started from its stationary law N(0, 1) stays there.
        let sde = OuSde::new(1.0, 1.0, 1.0).unwrap();
        let n = 2 * 1000 + 37;
        let stops = [(0.1, 10), (0.5, 40)];
        let a = simulate_ensemble(&sde, normal_init, n, 1000, &stops, 5, "t", 1);
        let b = simulate_ensemble(&sde, normal_init, n, 1000, &stops, 5, "t", 3);
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].len(), n);
        let c = simulate_ensemble(&sde, normal_init, n, 1000, &stops, 6, "t", 2);
        assert_ne!(a, c);
        let var = a[1].iter().map(|x| x * x).sum::<f64>() / n as f64;
        assert!((var - 1.0).abs() < 0.1, "var {var}");
    }

    #[test]
    fn checkpoints_follow_the_exact_free_diffusion_kernel() {
        // Free diffusion D = ½ from N(0, 1): p_t = N(0, 1 + t).
        let sde = OuSde::free(0.5, 1.0).unwrap();
        let fp = FokkerPlanck1d::new(-12.0, 12.0, 2400).unwrap();
        let pdf =
            |v: f64, x: f64| (-x * x / (2.0 * v)).exp() / (2.0 * std::f64::consts::PI * v).sqrt();
        let p0 = fp.project(|x| pdf(1.0, x));
        let r = fp.solve_checkpoints(&sde, &p0, &[(0.5, 50), (1.0, 50)]);
        assert_eq!(r.densities.len(), 2);
        assert!(r.mass_drift < 1e-9, "{}", r.mass_drift);
        let exact = fp.project(|x| pdf(2.0, x));
        assert!(fp.l1_distance(&r.densities[1], &exact) < 1e-3);
    }
}
