//! Shared by the size-bound tests: run a shipped manifest with one edit.

use std::process::Command;

/// Runs `xtask run` on `experiments/<name>.toml` with the first `old` replaced by `new`, into a
/// temporary folder. Returns the exit code, stderr, and whether an output folder was written.
pub fn run_modified(name: &str, old: &str, new: &str) -> (Option<i32>, String, bool) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../experiments/");
    let text = std::fs::read_to_string(format!("{root}{name}.toml")).unwrap();
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
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    (o.status.code(), err, out.exists())
}
