//! Size bounds of ring2d-samplers, ring2d-oracle and ring2d-likelihood: a count that cannot fit
//! in memory exits 2 naming the field, its value and the estimate, before any work.

mod common;

/// Runs `xtask run` on the CI manifest `name` with `old` replaced by `new`; returns stderr.
fn run_bad(name: &str, old: &str, new: &str) -> String {
    let (code, err, wrote) = common::run_modified(name, old, new);
    assert_eq!(code, Some(2), "{err}");
    assert!(!wrote && !err.contains("panicked"), "{err}");
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
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../experiments/ring2d-likelihood-ci.toml"
    ))
    .unwrap();
    let line = text.lines().find(|l| l.starts_with("n_points")).unwrap();
    let e = run_bad("ring2d-likelihood-ci", line, "n_points = 1_000_000_000_000");
    expect(&e, "likelihood.n_points");
}
