//! Size bounds of the ring2d-family kinds: a sample count that cannot fit in memory is bad input
//! (exit 2) named with its value and its estimate, before any work.

mod common;

/// Runs `experiments/<name>.toml` with `old` replaced by `new` and returns (exit code, stderr).
fn run_modified(name: &str, old: &str, new: &str) -> (Option<i32>, String) {
    let (code, err, wrote) = common::run_modified(name, old, new);
    assert!(!wrote);
    (code, err)
}

fn expect_too_large(name: &str, old: &str, new: &str, field: &str, value: &str) {
    let (code, err) = run_modified(name, old, new);
    assert_eq!(code, Some(2), "{err}");
    let want = format!("{field} must be small enough to fit in memory: it needs about");
    assert!(err.contains(&want), "{err}");
    assert!(err.contains(&format!("(got {value})")), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn ring2d_part1_sample_count_is_bounded_by_memory() {
    expect_too_large(
        "ring2d-part1",
        "n_samples = 100_000",
        "n_samples = 1_000_000_000_000",
        "sampling.n_samples",
        "1000000000000",
    );
}

#[test]
fn ring2d_ddpm_sample_count_and_levels_are_bounded_by_memory() {
    expect_too_large(
        "ring2d-ddpm-ci",
        "n_samples = 20_000",
        "n_samples = 1_000_000_000_000",
        "sampling.n_samples",
        "1000000000000",
    );
    expect_too_large(
        "ring2d-ddpm-ci",
        "steps = 200 }",
        "steps = 4_000_000_000 }",
        "ddpm.schedule.steps",
        "4000000000",
    );
}
