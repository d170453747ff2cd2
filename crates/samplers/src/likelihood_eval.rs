//! Likelihood evaluation over many points: fixed-size chunks (progress, bounded memory), and
//! the coarser solver of an accuracy check.

use smoluchowski_sde::{ForwardSde, ScoreDivergence};

use crate::{log_likelihood_exact, LikelihoodConfig, LikelihoodOutput, OdeSolver, SamplerError};

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
}
