//! `FokkerPlanck1d` against the analytic kernels: free diffusion, OU, VP and sub-VP on the
//! bimodal mixture (exact `p_t` from `MixtureOracle`); mass conservation; positivity;
//! time-convergence orders; bad grids.

use smoluchowski_datasets::GaussianMixture;
use smoluchowski_sde::{
    FokkerPlanck1d, MixtureOracle, OuSde, Sde, SdeError, SubVpSde, TimeScheme, VpSde,
};

fn gauss(x: f64, mu: f64, var: f64) -> f64 {
    (-(x - mu).powi(2) / (2.0 * var)).exp() / (std::f64::consts::TAU * var).sqrt()
}

/// Exact `p_t` of the mixture under `sde`, at the cell centres.
fn exact(fp: &FokkerPlanck1d, sde: Sde, mix: &GaussianMixture, t: f64) -> Vec<f64> {
    let pt = MixtureOracle::new(sde, mix.clone()).marginal(t);
    fp.project(|x| pt.log_density(&[x]).exp())
}

fn min(p: &[f64]) -> f64 {
    p.iter().cloned().fold(f64::INFINITY, f64::min)
}

fn grid() -> FokkerPlanck1d {
    FokkerPlanck1d::new(-6.0, 6.0, 1200).unwrap()
}

/// Free diffusion `dx = √(2D) dW` from `N(0, 0.1²)`: `p_t = N(0, 0.01 + 2Dt)`.
/// Crank–Nicolson is within 1e-4 in L¹ (measured 3.5e-5 at 100 steps); implicit Euler is
/// first order (halving Δt halves its error).
#[test]
fn free_diffusion_matches_heat_kernel() {
    let fp = grid();
    let sde = OuSde::free(0.5, 1.0).unwrap();
    let p0 = fp.project(|x| gauss(x, 0.0, 0.01));
    let q = fp.project(|x| gauss(x, 0.0, 0.01 + 1.0));
    let cn = fp.solve(&sde, &p0, 0.0, 1.0, 100);
    let e_cn = fp.l1_distance(&cn, &q);
    assert!(e_cn < 1e-4, "CN L1 {e_cn}");
    let ie = |steps| {
        let p = fp.solve_with(&sde, &p0, 0.0, 1.0, steps, TimeScheme::ImplicitEuler);
        fp.l1_distance(&p, &q)
    };
    let (e100, e200) = (ie(100), ie(200));
    assert!(e200 < 1e-2 && e100 > 10.0 * e_cn, "IE {e100} {e200}");
    let order = (e100 / e200).log2();
    assert!((order - 1.0).abs() < 0.1, "IE order {order}");
    // The Gaussian at a wrong time is far away: the comparison can fail.
    let wrong = fp.project(|x| gauss(x, 0.0, 0.01 + 1.1));
    assert!(fp.l1_distance(&cn, &wrong) > 1e-2);
}

/// OU `dx = −1.5 x dt + dW` (D = ½) from the bimodal mixture; also restarted mid-way from the
/// exact `p_{0.2}`.
#[test]
fn ou_matches_kernel() {
    let fp = grid();
    let mix = GaussianMixture::bimodal_1d();
    let sde: Sde = OuSde::new(1.5, 0.5, 1.0).unwrap().into();
    let p0 = exact(&fp, sde, &mix, 0.0);
    for t in [0.1, 0.5, 1.0] {
        let p = fp.solve(&sde, &p0, 0.0, t, 200);
        let e = fp.l1_distance(&p, &exact(&fp, sde, &mix, t));
        assert!(e < 2e-4, "t={t}: L1 {e}");
    }
    let p = fp.solve(&sde, &exact(&fp, sde, &mix, 0.2), 0.2, 0.7, 100);
    let e = fp.l1_distance(&p, &exact(&fp, sde, &mix, 0.7));
    assert!(e < 2e-4, "restart: L1 {e}");
    // A different rate gives a clearly different density.
    let other: Sde = OuSde::new(1.0, 0.5, 1.0).unwrap().into();
    let p = fp.solve(&other, &p0, 0.0, 0.5, 200);
    assert!(fp.l1_distance(&p, &exact(&fp, sde, &mix, 0.5)) > 1e-2);
}

/// VP and sub-VP (β ∈ [0.1, 20], T = 1) on `0.3 N(−2, 0.5²) + 0.7 N(1.5, 0.3²)` against the
/// exact mixture marginal: L¹ ≤ 1e-3 (measured ≤ 2.6e-5 for VP, ≤ 2.1e-4 for sub-VP whose
/// `g(t) → 0` at `t = 0` makes the early flux advection-dominated).
#[test]
fn vp_and_subvp_on_bimodal_match_mixture_oracle() {
    let fp = grid();
    let mix = GaussianMixture::bimodal_1d();
    let sdes: [Sde; 2] = [
        VpSde::song_default().into(),
        SubVpSde::new(0.1, 20.0, 1.0).unwrap().into(),
    ];
    for sde in sdes {
        let p0 = exact(&fp, sde, &mix, 0.0);
        for t in [0.1, 0.5, 1.0] {
            let p = fp.solve(&sde, &p0, 0.0, t, 200);
            let e = fp.l1_distance(&p, &exact(&fp, sde, &mix, t));
            assert!(e < 1e-3, "{sde:?} t={t}: L1 {e}");
        }
    }
    // Solving with VP but comparing with sub-VP's marginal fails clearly.
    let p0 = exact(&fp, sdes[0], &mix, 0.0);
    let p = fp.solve(&sdes[0], &p0, 0.0, 0.5, 200);
    assert!(fp.l1_distance(&p, &exact(&fp, sdes[1], &mix, 0.5)) > 1e-2);
}

/// Mass `h Σ p` is conserved to round-off by both schemes; implicit Euler never produces a
/// negative value, even from a one-cell spike with huge steps; Crank–Nicolson stays
/// non-negative on the smooth problems above.
#[test]
fn mass_is_conserved_and_density_stays_non_negative() {
    let fp = grid();
    let mix = GaussianMixture::bimodal_1d();
    let sdes: [Sde; 3] = [
        VpSde::song_default().into(),
        SubVpSde::new(0.1, 20.0, 1.0).unwrap().into(),
        OuSde::new(1.5, 0.5, 1.0).unwrap().into(),
    ];
    for sde in sdes {
        let p0 = exact(&fp, sde, &mix, 0.0);
        let m0 = fp.mass(&p0);
        for scheme in [TimeScheme::CrankNicolson, TimeScheme::ImplicitEuler] {
            for steps in [1, 7, 200] {
                let p = fp.solve_with(&sde, &p0, 0.0, 1.0, steps, scheme);
                assert!(
                    (fp.mass(&p) - m0).abs() < 1e-12,
                    "{sde:?} {scheme:?} {steps}: mass {} vs {m0}",
                    fp.mass(&p)
                );
                assert!(
                    min(&p) >= 0.0,
                    "{sde:?} {scheme:?} {steps}: min {}",
                    min(&p)
                );
            }
        }
    }
    // A one-cell spike: the harshest initial condition.
    let mut spike = vec![0.0; fp.cells()];
    spike[700] = 1.0 / fp.cell_width();
    for sde in sdes {
        for steps in [1, 3, 50] {
            let p = fp.solve_with(&sde, &spike, 0.0, 1.0, steps, TimeScheme::ImplicitEuler);
            assert!(min(&p) >= 0.0);
            assert!((fp.mass(&p) - 1.0).abs() < 1e-12);
        }
    }
    // Zero steps or an empty interval return the input.
    let p0 = exact(&fp, sdes[0], &mix, 0.0);
    assert_eq!(fp.solve(&sdes[0], &p0, 0.3, 0.3, 10), p0);
    assert_eq!(fp.solve(&sdes[0], &p0, 0.0, 0.3, 0), p0);
}

#[test]
fn grid_geometry_and_bad_parameters() {
    let fp = FokkerPlanck1d::new(-1.0, 3.0, 8).unwrap();
    assert_eq!(fp.cell_width(), 0.5);
    assert_eq!(
        fp.centers(),
        vec![-0.75, -0.25, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75]
    );
    assert_eq!((fp.lo(), fp.hi(), fp.cells()), (-1.0, 3.0, 8));
    assert_eq!(fp.mass(&[1.0; 8]), 4.0);
    let msg = |r: Result<FokkerPlanck1d, SdeError>| r.unwrap_err().to_string();
    assert_eq!(
        msg(FokkerPlanck1d::new(1.0, 1.0, 10)),
        "hi must be > lo (1) (got 1)"
    );
    assert_eq!(
        msg(FokkerPlanck1d::new(f64::NAN, 1.0, 10)),
        "lo must be finite (got NaN)"
    );
    assert_eq!(
        msg(FokkerPlanck1d::new(0.0, 1.0, 2)),
        "cells must be ≥ 3 (got 2)"
    );
}
