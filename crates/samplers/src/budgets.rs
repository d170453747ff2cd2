//! NFE sweeps: one sampler family (method, grid, `t_ε`, final denoising) at a list of budgets of
//! score evaluations, each budget spent on the largest step count that fits it.

use crate::{Method, SamplerConfig};

/// `(budget, config)` for each budget `B` of `budgets`: `base` with the largest step count
/// whose whole-run NFE (final denoising included, [`SamplerConfig::steps_for_nfe`]) is `≤ B`;
/// or `Err(B)` for the first budget no step count fits (or any budget, for an adaptive
/// method, which has no step count to choose).
///
/// E.g. probability-flow Heun (2 evaluations per step) at `B = 5` takes 2 steps (NFE 4).
pub fn configs_for_budgets(
    base: &SamplerConfig,
    budgets: &[usize],
) -> Result<Vec<(usize, SamplerConfig)>, usize> {
    budgets
        .iter()
        .map(|&b| {
            base.steps_for_nfe(b)
                .map(|steps| {
                    (
                        b,
                        SamplerConfig {
                            steps,
                            ..base.clone()
                        },
                    )
                })
                .ok_or(b)
        })
        .collect()
}

/// `(tol, config)` for each tolerance: `base` with Dormand–Prince at `rtol = atol = tol`
/// (one grid step: the adaptive solver chooses its own). The NFE of each run is what the
/// solver used.
pub fn dormand_prince_configs(
    base: &SamplerConfig,
    tolerances: &[f64],
) -> Vec<(f64, SamplerConfig)> {
    tolerances
        .iter()
        .map(|&tol| {
            (
                tol,
                SamplerConfig {
                    method: Method::DormandPrince {
                        rtol: tol,
                        atol: tol,
                    },
                    steps: 1,
                    ..base.clone()
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GridSpacing;

    fn base(method: Method, final_denoise: bool) -> SamplerConfig {
        SamplerConfig {
            method,
            steps: 1,
            t_eps: 1e-3,
            final_denoise,
            grid: GridSpacing::default(),
        }
    }

    #[test]
    fn budgets_take_the_largest_fitting_step_count() {
        let heun = base(Method::ProbabilityFlowHeun, false);
        let c = configs_for_budgets(&heun, &[5, 10]).unwrap();
        assert_eq!(c[0].0, 5);
        assert_eq!(c[0].1.steps, heun.steps_for_nfe(5).unwrap());
        assert!(c[0].1.nfe().unwrap() <= 5);
        let em = base(Method::EulerMaruyama, true);
        let c = configs_for_budgets(&em, &[20]).unwrap();
        assert_eq!(c[0].1.steps, 19);
        assert!(c[0].1.final_denoise);
        assert_eq!(configs_for_budgets(&heun, &[5, 1]), Err(1));
    }

    #[test]
    fn dormand_prince_runs_once_per_tolerance() {
        let dp = base(
            Method::DormandPrince {
                rtol: 1e-3,
                atol: 1e-3,
            },
            false,
        );
        let c = dormand_prince_configs(&dp, &[1e-2, 1e-4]);
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[1].1.method,
            Method::DormandPrince {
                rtol: 1e-4,
                atol: 1e-4
            }
        );
        assert!(configs_for_budgets(&dp, &[10]).is_err());
    }
}
