//! Size bounds of ring2d-samplers, ring2d-oracle and ring2d-likelihood: a count that cannot fit
//! in memory exits 2 naming the field, its value and the estimate, before any work.

use std::fs;
use std::process::Command;

/// Runs `xtask run` on the CI manifest `name` with `old` replaced by `new`; returns stderr.
fn run_bad(name: &str, old: &str, new: &str) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = fs::read_to_string(format!("{root}/../experiments/{name}.toml")).unwrap();
    assert!(text.contains(old), "{old}");
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("m.toml");
    fs::write(&manifest, text.replacen(old, new, 1)).unwrap();
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
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(!out.exists() && !err.contains("panicked"), "{err}");
    err
}

fn expect(err: &str, field: &str) {
    for n in [
        field,
        "must be small enough to fit in memory",
        "(got 1000000000000)",
    ] {
        assert!(err.contains(n), "expected {n:?} in:\n{err}");
    }
}

#[test]
fn ring2d_samplers_sizes_are_bounded_by_memory() {
    let e = run_bad(
        "ring2d-samplers-ci",
        "n_samples = 10_000",
        "n_samples = 1_000_000_000_000",
    );
    expect(&e, "sampling.n_samples");
    let e = run_bad(
        "ring2d-samplers-ci",
        "reference_samples = 20_000",
        "reference_samples = 1_000_000_000_000",
    );
    expect(&e, "evaluation.reference_samples");
    let e = run_bad(
        "ring2d-samplers-ci",
        "n_samples = 2_000",
        "n_samples = 1_000_000_000_000",
    );
    expect(&e, "floor.n_samples");
}

#[test]
fn ring2d_oracle_sample_count_is_bounded_by_memory() {
    let e = run_bad(
        "ring2d-oracle-ci",
        "n_samples = 20_000",
        "n_samples = 1_000_000_000_000",
    );
    expect(&e, "sampling.n_samples");
}

#[test]
fn ring2d_likelihood_point_count_is_bounded_by_memory() {
    let text = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../experiments/ring2d-likelihood-ci.toml"
    ))
    .unwrap();
    let line = text.lines().find(|l| l.starts_with("n_points")).unwrap();
    let e = run_bad("ring2d-likelihood-ci", line, "n_points = 1_000_000_000_000");
    expect(&e, "likelihood.n_points");
}
