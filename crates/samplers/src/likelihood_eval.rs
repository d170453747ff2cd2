//! Likelihood evaluation over many points: fixed-size chunks (progress, bounded memory), the
//! coarser solver of an accuracy check, and the paired summaries of a likelihood study
//! (Hutchinson against the exact divergence, solver accuracy, a scan over the start time).

use std::time::Instant;

use smoluchowski_core::validate::Checker;
use smoluchowski_core::MemoryEstimate;
use smoluchowski_metrics::{
    max_abs_diff, mean_se, paired_differences, paired_mean_se, sample_sd, MeanSe,
};
use smoluchowski_sde::{ForwardSde, ScoreDivergence};

use crate::{
    log_likelihood, log_likelihood_exact, Divergence, LikelihoodConfig, LikelihoodOutput,
    OdeSolver, SamplerError,
};

/// Most RK4 steps [`OdeSolver::check`] accepts.
pub const MAX_ODE_STEPS: usize = 100_000;

/// [`log_likelihood_exact`] over the rows of `x0` (`n × d`, row-major) in chunks of
/// `chunk_rows` rows, calling `progress(rows_done)` after each chunk.
///
/// Each row's ODE is integrated independently for a fixed-step solver (RK4), so the result does
/// not depend on `chunk_rows`; an adaptive solver controls its error over a chunk's whole
/// state, so keep `chunk_rows` fixed for reproducible numbers. `nfe` is the largest over the
/// chunks (equal for fixed-step solvers); `mean_nats` and `bits_per_dim` are over all rows.
pub fn log_likelihood_chunked<S, M>(
    sde: &S,
    model: &mut M,
    x0: &[f32],
    config: &LikelihoodConfig,
    chunk_rows: usize,
    mut progress: impl FnMut(usize),
) -> Result<LikelihoodOutput, SamplerError>
where
    S: ForwardSde + ?Sized,
    M: ScoreDivergence + ?Sized,
{
    let d = model.dim().max(1);
    let mut nats = Vec::with_capacity(x0.len() / d);
    let mut nfe = 0;
    for chunk in x0.chunks(d * chunk_rows.max(1)) {
        let r = log_likelihood_exact(sde, model, chunk, config)?;
        nfe = nfe.max(r.nfe);
        nats.extend_from_slice(&r.nats);
        progress(nats.len());
    }
    let mean_nats = nats.iter().sum::<f64>() / nats.len() as f64;
    Ok(LikelihoodOutput {
        nats,
        mean_nats,
        bits_per_dim: -mean_nats / (d as f64 * std::f64::consts::LN_2),
        nfe,
    })
}

impl OdeSolver {
    /// The same solver at lower accuracy, for a convergence check: RK4 with half the steps
    /// (at least 1), Dormand–Prince with 10× looser tolerances.
    pub fn coarser(&self) -> OdeSolver {
        match *self {
            OdeSolver::Rk4 { steps, grid } => OdeSolver::Rk4 {
                steps: (steps / 2).max(1),
                grid,
            },
            OdeSolver::DormandPrince { rtol, atol } => OdeSolver::DormandPrince {
                rtol: 10.0 * rtol,
                atol: 10.0 * atol,
            },
        }
    }

    /// A short description, e.g. `RK4, 100 steps (LogSnr grid)`.
    pub fn describe(&self) -> String {
        match *self {
            OdeSolver::Rk4 { steps, grid } => format!("RK4, {steps} steps ({grid:?} grid)"),
            OdeSolver::DormandPrince { rtol, atol } => {
                format!("Dormand–Prince 5(4), rtol {rtol:e}, atol {atol:e}")
            }
        }
    }
}

impl OdeSolver {
    /// Checks the solver at `path`: RK4 with `2..=MAX_ODE_STEPS` steps (`<path>.rk4.steps`),
    /// Dormand–Prince with positive `rtol` and `atol`.
    pub fn check(&self, c: &mut Checker, path: &str) {
        match *self {
            OdeSolver::Rk4 { steps, .. } => {
                c.count(&format!("{path}.rk4.steps"), steps, 2, MAX_ODE_STEPS)
            }
            OdeSolver::DormandPrince { rtol, atol } => {
                c.positive(&format!("{path}.dormand_prince.rtol"), rtol);
                c.positive(&format!("{path}.dormand_prince.atol"), atol);
            }
        }
    }
}

/// Memory of a likelihood study of `n` points of dimension `dim` (at `path`): the points in
/// f64 (twice) and f32, and a dozen f64 per point (per-point log-likelihoods, exact log
/// densities, their paired differences and the per-point table). The ODE state itself is
/// bounded by the chunk size of [`log_likelihood_chunked`].
pub fn likelihood_memory_estimate(path: &str, n: usize, dim: usize) -> MemoryEstimate {
    MemoryEstimate::linear(path, n, dim as u128 * (8 + 8 + 4) + 12 * 8, 0)
}

/// Hutchinson's estimate against the exact divergence on the same points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HutchinsonComparison {
    /// Probes `K` per estimate.
    pub probes: usize,
    /// Mean ± SE of the paired differences `log p_H(x_i) − log p_exact(x_i)`.
    pub diff: MeanSe,
    /// Sample sd of those differences (the variance Hutchinson's probes add).
    pub diff_sd: f64,
    /// Sample sd of the Hutchinson log-likelihoods.
    pub sd_hutchinson: f64,
    /// Sample sd of the exact log-likelihoods.
    pub sd_exact: f64,
    /// Score evaluations per point of the Hutchinson run.
    pub nfe: usize,
    /// Its wall time (seconds).
    pub wall_s: f64,
}

/// [`log_likelihood`] with [`Divergence::Hutchinson`] (`probes` Rademacher probes from `seed`)
/// on the rows of `x0`, paired with the exact-divergence values `exact` of the same rows
/// (same `t_eps` and `solver`): unbiasedness (`diff.mean ≈ 0` within `diff.se`) and cost.
#[allow(clippy::too_many_arguments)]
pub fn compare_hutchinson<S, M>(
    sde: &S,
    model: &mut M,
    x0: &[f32],
    exact: &[f64],
    (t_eps, solver): (f64, OdeSolver),
    probes: usize,
    seed: u64,
) -> Result<HutchinsonComparison, SamplerError>
where
    S: ForwardSde + ?Sized,
    M: ScoreDivergence + ?Sized,
{
    let cfg = LikelihoodConfig::new(t_eps, solver, Divergence::Hutchinson { probes, seed });
    let start = Instant::now();
    let r = log_likelihood(sde, model, x0, &cfg)?;
    let diff = paired_differences(&r.nats, exact);
    Ok(HutchinsonComparison {
        probes,
        diff: mean_se(&diff),
        diff_sd: sample_sd(&diff),
        sd_hutchinson: sample_sd(&r.nats),
        sd_exact: sample_sd(exact),
        nfe: r.nfe,
        wall_s: start.elapsed().as_secs_f64(),
    })
}

/// The main solver's likelihoods `main` against the same with [`OdeSolver::coarser`] and with
/// a reference solver, on the same rows (exact divergence).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SolverCheck {
    /// `max_i |log p_coarse(x_i) − log p_main(x_i)|`.
    pub coarse_max_abs: f64,
    /// `max_i |log p_ref(x_i) − log p_main(x_i)|`.
    pub reference_max_abs: f64,
    /// `(1/n) Σ_i (log p_main(x_i) − log p_ref(x_i))`.
    pub reference_mean: f64,
    /// NFE per point of the coarse solver.
    pub coarse_nfe: usize,
    /// NFE per point of the reference solver.
    pub reference_nfe: usize,
}

/// [`SolverCheck`] of `solver` (whose likelihoods of the rows of `x0` are `main`) against its
/// coarser self and `reference` ([`log_likelihood_exact`] at `t_eps`).
pub fn check_solver_accuracy<S, M>(
    sde: &S,
    model: &mut M,
    x0: &[f32],
    main: &[f64],
    t_eps: f64,
    (solver, reference): (OdeSolver, OdeSolver),
) -> Result<SolverCheck, SamplerError>
where
    S: ForwardSde + ?Sized,
    M: ScoreDivergence + ?Sized,
{
    let coarse_cfg = LikelihoodConfig::new(t_eps, solver.coarser(), Divergence::Exact);
    let ref_cfg = LikelihoodConfig::new(t_eps, reference, Divergence::Exact);
    let coarse = log_likelihood_exact(sde, model, x0, &coarse_cfg)?;
    let r = log_likelihood_exact(sde, model, x0, &ref_cfg)?;
    let diff_sum = paired_differences(main, &r.nats).iter().sum::<f64>();
    Ok(SolverCheck {
        coarse_max_abs: max_abs_diff(&coarse.nats, main),
        reference_max_abs: max_abs_diff(&r.nats, main),
        reference_mean: diff_sum / main.len() as f64,
        coarse_nfe: coarse.nfe,
        reference_nfe: r.nfe,
    })
}

/// One start time of [`t_eps_scan`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScanRow {
    /// The start time `t`.
    pub t: f64,
    /// Exact cross-entropy `−(1/n) Σ_i log p_t(x_i)`.
    pub cross_entropy: f64,
    /// Paired model gap `mean_i (log p_t(x_i) − log p^θ_t(x_i))` ± SE.
    pub gap: MeanSe,
}

/// Where a model's likelihood error lives along `t`: for each `t` of `times`, the model's
/// [`log_likelihood_exact`] of the rows of `x0` started at `t`, paired with the exact
/// `log p_t` that `log_density(t, out)` writes (one value per row).
pub fn t_eps_scan<S, M>(
    sde: &S,
    model: &mut M,
    x0: &[f32],
    solver: OdeSolver,
    times: &[f64],
    mut log_density: impl FnMut(f64, &mut [f64]),
) -> Result<Vec<ScanRow>, SamplerError>
where
    S: ForwardSde + ?Sized,
    M: ScoreDivergence + ?Sized,
{
    let mut rows = Vec::with_capacity(times.len());
    for &t in times {
        let r = log_likelihood_exact(
            sde,
            model,
            x0,
            &LikelihoodConfig::new(t, solver, Divergence::Exact),
        )?;
        let mut lpt = vec![0.0f64; r.nats.len()];
        log_density(t, &mut lpt);
        rows.push(ScanRow {
            t,
            cross_entropy: -lpt.iter().sum::<f64>() / lpt.len() as f64,
            gap: paired_mean_se(&lpt, &r.nats),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Divergence, GridSpacing};
    use smoluchowski_sde::{GaussianOracle, VpSde};

    #[test]
    fn coarser_halves_steps_or_loosens_tolerances() {
        let rk = OdeSolver::Rk4 {
            steps: 101,
            grid: GridSpacing::LogSnr,
        };
        assert_eq!(
            rk.coarser(),
            OdeSolver::Rk4 {
                steps: 50,
                grid: GridSpacing::LogSnr
            }
        );
        let dp = OdeSolver::DormandPrince {
            rtol: 1e-5,
            atol: 1e-6,
        };
        match dp.coarser() {
            OdeSolver::DormandPrince { rtol, atol } => {
                assert!((rtol - 1e-4).abs() < 1e-18 && (atol - 1e-5).abs() < 1e-19);
            }
            other => panic!("{other:?}"),
        }
        assert!(rk.describe().starts_with("RK4, 101 steps"));
    }

    #[test]
    fn chunks_do_not_change_rk4_likelihoods() {
        let sde = VpSde::new(0.1, 20.0, 1.0).unwrap();
        let mut model = GaussianOracle::new(sde, vec![0.2, -0.1], vec![0.5, 0.7]).unwrap();
        let x: Vec<f32> = (0..14).map(|i| (i as f32 * 0.37).sin()).collect();
        let cfg = LikelihoodConfig::new(
            1e-3,
            OdeSolver::Rk4 {
                steps: 20,
                grid: GridSpacing::LogSnr,
            },
            Divergence::Exact,
        );
        let whole = log_likelihood_exact(&sde, &mut model, &x, &cfg).unwrap();
        let mut seen = Vec::new();
        let chunked =
            log_likelihood_chunked(&sde, &mut model, &x, &cfg, 3, |n| seen.push(n)).unwrap();
        assert_eq!(seen, vec![3, 6, 7]);
        assert_eq!(whole.nats, chunked.nats);
        assert_eq!(whole.nfe, chunked.nfe);
        assert!((whole.mean_nats - chunked.mean_nats).abs() < 1e-12);
    }

    #[test]
    fn summaries_of_an_exact_model() {
        // The Gaussian oracle's exact log p_t is known: the scan's model gap is the solver's
        // error only, Hutchinson is unbiased, and the coarse/reference solvers agree.
        let sde = VpSde::new(0.1, 20.0, 1.0).unwrap();
        let (mu, sd) = (vec![0.2, -0.1], vec![0.5, 0.7]);
        let mut model = GaussianOracle::new(sde, mu.clone(), sd.clone()).unwrap();
        let x: Vec<f32> = (0..40).map(|i| (i as f32 * 0.37).sin()).collect();
        let rk = OdeSolver::Rk4 {
            steps: 40,
            grid: GridSpacing::LogSnr,
        };
        let cfg = LikelihoodConfig::new(1e-3, rk, Divergence::Exact);
        let main = log_likelihood_exact(&sde, &mut model, &x, &cfg)
            .unwrap()
            .nats;
        let dp = OdeSolver::DormandPrince {
            rtol: 1e-8,
            atol: 1e-8,
        };
        let chk = check_solver_accuracy(&sde, &mut model, &x, &main, 1e-3, (rk, dp)).unwrap();
        assert!(
            chk.reference_max_abs < 1e-3 && chk.coarse_max_abs < 1e-2,
            "{chk:?}"
        );
        assert!(chk.reference_mean.abs() <= chk.reference_max_abs);
        let h = compare_hutchinson(&sde, &mut model, &x, &main, (1e-3, rk), 4, 7).unwrap();
        assert!(
            h.diff.mean.abs() < 4.0 * h.diff.se + 1e-9 && h.nfe > 0,
            "{h:?}"
        );
        let log_pt = |t: f64, out: &mut [f64]| {
            let (m, s) = (sde.mean_coef(t), sde.marginal_std(t));
            for (o, p) in out.iter_mut().zip(x.chunks_exact(2)) {
                *o = (0..2)
                    .map(|j| {
                        let v = (m * sd[j]).powi(2) + s * s;
                        let z = f64::from(p[j]) - m * mu[j];
                        -0.5 * (z * z / v + (2.0 * std::f64::consts::PI * v).ln())
                    })
                    .sum();
            }
        };
        let scan = t_eps_scan(&sde, &mut model, &x, rk, &[1e-2, 0.1], log_pt).unwrap();
        assert_eq!(scan.len(), 2);
        assert!(scan
            .iter()
            .all(|r| r.gap.mean.abs() < 1e-3 && r.cross_entropy.is_finite()));
    }

    #[test]
    fn solver_checks_and_memory_name_the_field() {
        let mut c = Checker::new();
        OdeSolver::Rk4 {
            steps: 1,
            grid: GridSpacing::LogSnr,
        }
        .check(&mut c, "solver");
        OdeSolver::DormandPrince {
            rtol: -1.0,
            atol: 1e-3,
        }
        .check(&mut c, "ref");
        let e = c.finish().unwrap_err().to_string();
        assert!(
            e.contains("solver.rk4.steps") && e.contains("ref.dormand_prince.rtol"),
            "{e}"
        );
        let m = likelihood_memory_estimate("n_points", 1_000_000_000_000, 2);
        assert!(smoluchowski_core::MemoryBudget::new(1 << 40)
            .check(&m)
            .is_err());
    }
}
