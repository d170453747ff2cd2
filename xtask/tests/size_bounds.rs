//! Size-like manifest fields of the `smoluchowski`, `fokker-planck`, `langevin` and
//! `ssm-mixture` kinds are checked against an estimate of the memory they need before any work:
//! an impossible value exits with code 2, naming the field, its value and the estimate.

use std::process::Command;

/// Runs the shipped manifest `name` with `old` replaced by `new`; expects exit 2 and a message
/// naming `field` with the value 10¹² and a memory estimate in TiB.
fn expect_too_large(name: &str, old: &str, new: &str, field: &str) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../experiments/");
    let text = std::fs::read_to_string(format!("{root}{name}.toml")).unwrap();
    assert!(text.contains(old), "{old}");
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("big.toml");
    std::fs::write(&manifest, text.replacen(old, new, 1)).unwrap();
    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "run",
            manifest.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for want in [
        &format!("{field} must be small enough to fit in memory") as &str,
        "TiB",
        "(got 1000000000000)",
    ] {
        assert!(err.contains(want), "expected {want:?} in:\n{err}");
    }
    assert!(!out.exists(), "no output for a rejected manifest");
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
