//! Size-like manifest fields of the `smoluchowski`, `fokker-planck`, `langevin` and
//! `ssm-mixture` kinds are checked against an estimate of the memory they need before any work:
//! an impossible value exits with code 2, naming the field, its value and the estimate.

mod common;

/// Runs the shipped manifest `name` with `old` replaced by `new`; expects exit 2 and a message
/// naming `field` with the value 10¹² and a memory estimate in TiB.
fn expect_too_large(name: &str, old: &str, new: &str, field: &str) {
    let (code, err, wrote) = common::run_modified(name, old, new);
    assert_eq!(code, Some(2), "{err}");
    for want in [
        &format!("{field} must be small enough to fit in memory") as &str,
        "TiB",
        "(got 1000000000000)",
    ] {
        assert!(err.contains(want), "expected {want:?} in:\n{err}");
    }
    assert!(!wrote, "no output for a rejected manifest");
}

#[test]
fn smoluchowski_particle_count_is_bounded_by_memory() {
    let (old, new) = ("n_particles = 100_000", "n_particles = 1_000_000_000_000");
    expect_too_large("smoluchowski", old, new, "free_diffusion.n_particles");
}

#[test]
fn fokker_planck_particle_count_is_bounded_by_memory() {
    let (old, new) = ("n = 100_000", "n = 1_000_000_000_000");
    expect_too_large("fokker-planck", old, new, "particles.n");
}

#[test]
fn fokker_planck_grid_is_bounded_by_memory() {
    let (old, new) = ("cells = 4000", "cells = 1_000_000_000_000");
    expect_too_large("fokker-planck", old, new, "grid.cells");
}

#[test]
fn langevin_chain_count_is_bounded_by_memory() {
    let (old, new) = ("n_chains = 10_000", "n_chains = 1_000_000_000_000");
    expect_too_large("langevin", old, new, "ring2d.n_chains");
}

#[test]
fn ssm_evaluation_points_are_bounded_by_memory() {
    let (old, new) = ("points = 100_000", "points = 1_000_000_000_000");
    expect_too_large("ssm-mixture", old, new, "evaluation.points");
}
