//! Size bounds of the ring2d-family kinds: a sample count that cannot fit in memory is bad input
//! (exit 2) named with its value and its estimate, before any work.

use std::path::Path;
use std::process::Command;

/// Runs `experiments/<name>.toml` with `old` replaced by `new` and returns (exit code, stderr).
fn run_modified(name: &str, old: &str, new: &str) -> (Option<i32>, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments");
    let text = std::fs::read_to_string(root.join(format!("{name}.toml"))).unwrap();
    assert!(text.contains(old), "{old}");
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join(format!("{name}.toml"));
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
    assert!(!out.exists());
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
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
