//! The NFE rules every solver reports through `Method`: `steps_for_nfe` inverts `nfe`, and
//! `nfe_rule` describes it.

use smoluchowski_samplers::{DdpmVariance, Method, SamplerConfig};

fn methods() -> Vec<Method> {
    vec![
        Method::EulerMaruyama,
        Method::ProbabilityFlowEuler,
        Method::ProbabilityFlowHeun,
        Method::PredictorCorrector {
            corrector_steps: 2,
            snr: 0.16,
        },
        Method::Ddim { eta: 0.5 },
        Method::DdpmAncestral {
            variance: DdpmVariance::Beta,
        },
        Method::EdmHeun,
        Method::DpmSolverPp2M,
        Method::DpmSolverPp3M,
        Method::DpmSolverPp2MSde { eta: 1.0 },
        Method::DpmSolverPp3MSde {
            eta: 1.0,
            curvature: 0.5,
        },
        Method::UniPc,
    ]
}

#[test]
fn steps_for_nfe_is_the_largest_step_count_within_the_budget() {
    for m in methods() {
        assert!(m.build().is_ok(), "{m:?}");
        assert!(!m.nfe_rule().is_empty());
        for denoise in [false, true] {
            let config = SamplerConfig::new(m, 1, 1e-3).with_final_denoise(denoise);
            for budget in 0..40 {
                let nfe = |steps| {
                    SamplerConfig::new(m, steps, 1e-3)
                        .with_final_denoise(denoise)
                        .nfe()
                        .unwrap()
                };
                match config.steps_for_nfe(budget) {
                    Some(n) => assert!(
                        n >= 1 && nfe(n) <= budget && nfe(n + 1) > budget,
                        "{m:?} denoise {denoise} budget {budget}: {n}"
                    ),
                    None => assert!(nfe(1) > budget, "{m:?} budget {budget}"),
                }
            }
        }
    }
    let dp = Method::DormandPrince {
        rtol: 1e-5,
        atol: 1e-5,
    };
    assert_eq!((dp.nfe(10), dp.steps_for_nfe(100)), (None, None));
    assert!(dp.nfe_rule().starts_with("adaptive"));
    assert_eq!(Method::EdmHeun.nfe_rule(), "2 per step, last step 1");
    assert_eq!(Method::EdmHeun.nfe(5), Some(9));
}

#[test]
fn build_names_the_bad_parameter() {
    let e = Method::DpmSolverPp3MSde {
        eta: 0.0,
        curvature: 2.0,
    }
    .build()
    .unwrap_err();
    assert_eq!(e.path(), "method.curvature");
    let e = Method::Ddim { eta: -0.1 }.build().unwrap_err();
    assert_eq!(e.path(), "method.eta");
}
