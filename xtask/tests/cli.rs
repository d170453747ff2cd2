//! End-to-end tests of the `xtask` binary: bad input is reported clearly (exit 2, no panic, the
//! previous results untouched), runs write every file, and runs are reproducible.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A small valid manifest of kind `smoluchowski` (runs in well under a second).
const SMALL: &str = r#"
[experiment]
name = "small"
kind = "smoluchowski"
description = "test manifest"
seed = 7

[free_diffusion]
diffusion = 0.5
x0 = 0.0
n_particles = 3000
dt = 1e-2
t_check = 1.0
t_end = 2.0
n_drawn = 5
bins = 30

[ou]
a = 1.0
diffusion = 0.5
x0 = 3.0
n_particles = 3000
dt = 1e-2
t_mid = 0.5
t_end = 6.0
n_drawn = 5
bins = 30
"#;

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("cannot start xtask")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A temp dir holding `name` with `text`, and a pre-existing "good" output dir.
struct Setup {
    dir: tempfile::TempDir,
    manifest: PathBuf,
    out: PathBuf,
}

impl Setup {
    fn new(text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("small.toml");
        fs::write(&manifest, text).unwrap();
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        fs::write(out.join("metrics.json"), "previous good results").unwrap();
        Self { dir, manifest, out }
    }

    fn run(&self) -> Output {
        xtask(&[
            "run",
            self.manifest.to_str().unwrap(),
            "--out",
            self.out.to_str().unwrap(),
        ])
    }

    /// The previous results are intact and nothing else was left next to them.
    fn assert_untouched(&self) {
        let entries: Vec<_> = fs::read_dir(&self.out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(entries, vec![std::ffi::OsString::from("metrics.json")]);
        assert_eq!(
            fs::read_to_string(self.out.join("metrics.json")).unwrap(),
            "previous good results"
        );
        let siblings = fs::read_dir(self.dir.path()).unwrap().count();
        assert_eq!(
            siblings,
            2,
            "temp dirs left behind in {}",
            self.dir.path().display()
        );
    }
}

/// Runs `text`, expects exit code `code`, a message containing every `needles`, no panic.
fn expect_bad(text: &str, code: i32, needles: &[&str]) {
    let s = Setup::new(text);
    let o = s.run();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.to_lowercase().contains("backtrace"), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected {n:?} in stderr:\n{err}");
    }
    s.assert_untouched();
}

fn with(old: &str, new: &str) -> String {
    assert!(SMALL.contains(old), "{old}");
    SMALL.replacen(old, new, 1)
}

#[test]
fn unknown_key_is_named() {
    expect_bad(
        &with("bins = 30\n", "bins = 30\nbogus_key = 1\n"),
        2,
        &["small.toml", "unknown field `bogus_key`", "line"],
    );
    expect_bad(
        &format!("{SMALL}\n[extra_table]\nx = 1\n"),
        2,
        &["unknown field `extra_table`"],
    );
}

#[test]
fn wrong_type_is_named() {
    expect_bad(
        &with("n_particles = 3000", "n_particles = \"many\""),
        2,
        &[
            "small.toml",
            "invalid type: string \"many\", expected usize",
            "line 11",
            "n_particles = \"many\"",
        ],
    );
}

#[test]
fn impossible_values_are_named_with_their_value() {
    expect_bad(
        &with("diffusion = 0.5", "diffusion = -0.5"),
        2,
        &["small.toml: free_diffusion.diffusion must be > 0 (got -0.5)"],
    );
    expect_bad(
        &with("n_particles = 3000", "n_particles = 0"),
        2,
        &["free_diffusion.n_particles must be >= 1 (got 0)"],
    );
    expect_bad(
        &with("diffusion = 0.5", "diffusion = nan"),
        2,
        &["free_diffusion.diffusion must be a finite number (got NaN)"],
    );
    expect_bad(
        &with("t_end = 2.0", "t_end = 0.5"),
        2,
        &["free_diffusion.t_end must be > free_diffusion.t_check = 1 (got 0.5)"],
    );
    expect_bad(
        &with("dt = 1e-2", "dt = 0.3"),
        2,
        &["free_diffusion.dt must divide free_diffusion.t_check into whole steps"],
    );
    // Several problems are reported together.
    expect_bad(
        &with("a = 1.0", "a = -1.0").replacen("n_drawn = 5", "n_drawn = 5000", 1),
        2,
        &[
            "2 invalid values",
            "ou.a must be > 0 (got -1)",
            "free_diffusion.n_drawn must be <= 1000 (got 5000)",
        ],
    );
    expect_bad(
        &with("seed = 7", "seed = -7"),
        2,
        &["line 6", "seed = -7", "expected u64"],
    );
}

#[test]
fn truncated_file_reports_line_and_column() {
    let cut = SMALL.find("diffusion = 0.5").unwrap() + "diffusion = ".len();
    expect_bad(&SMALL[..cut], 2, &["small.toml", "line 9, column 13"]);
    let cut = SMALL.find("[ou]").unwrap() + 2;
    expect_bad(&SMALL[..cut], 2, &["small.toml", "line"]);
}

#[test]
fn missing_manifest_and_unknown_names() {
    let s = Setup::new(SMALL);
    let missing = s.dir.path().join("nope.toml");
    let o = xtask(&[
        "run",
        missing.to_str().unwrap(),
        "--out",
        s.out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("nope.toml: manifest not found"),
        "{}",
        stderr(&o)
    );
    s.assert_untouched();

    let o = xtask(&[
        "reproduce",
        "no_such_experiment",
        "--out",
        s.out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no experiment `no_such_experiment`"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("smoluchowski"), "{}", stderr(&o));
    s.assert_untouched();

    expect_bad(
        &with("kind = \"smoluchowski\"", "kind = \"nope\""),
        2,
        &[
            "experiment.kind: unknown kind \"nope\"",
            "known: smoluchowski",
        ],
    );
}

#[test]
fn golden_file_errors_are_bad_input() {
    let s = Setup::new(SMALL);
    fs::write(
        s.dir.path().join("small.golden.toml"),
        "[[check]]\nstat = \"free_diffusion.ks_t9\"\nkind = \"not_rejected\"\nalpha = 1e-3\n",
    )
    .unwrap();
    let o = s.run();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unknown stat `free_diffusion.ks_t9`"),
        "{}",
        stderr(&o)
    );
    // The golden file sits in the temp dir too: 3 entries, output untouched.
    let entries: Vec<_> = fs::read_dir(&s.out).unwrap().collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        fs::read_to_string(s.out.join("metrics.json")).unwrap(),
        "previous good results"
    );
}

fn statistics(out: &Path) -> serde_json::Value {
    let m: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    m["statistics"].clone()
}

#[test]
fn run_writes_everything_and_is_reproducible() {
    let s = Setup::new(SMALL);
    let o = s.run();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for f in [
        "metrics.json",
        "report.md",
        "free_diffusion.png",
        "ou.png",
        "samples.npy",
        "ou_samples.npy",
    ] {
        assert!(s.out.join(f).is_file(), "{f} missing");
    }
    // Only the output dir and the manifest remain: no temp or old dirs.
    assert_eq!(fs::read_dir(s.dir.path()).unwrap().count(), 2);

    let m: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(s.out.join("metrics.json")).unwrap()).unwrap();
    for key in [
        "experiment",
        "parameters",
        "statistics",
        "wall_time_s",
        "golden",
        "version",
    ] {
        assert!(m.get(key).is_some(), "metrics.json lacks {key}");
    }
    assert_eq!(m["experiment"]["experiment"]["seed"], 7);
    let ks = &m["statistics"]["free_diffusion.ks_t_check"];
    let d = ks["statistic"].as_f64().unwrap();
    let p = ks["pvalue"].as_f64().unwrap();
    assert!(d > 0.0 && d < 0.05 && p > 1e-3, "{ks}");
    assert!(m["statistics"]["ou.var_t_end"]["value"].as_f64().is_some());

    // samples.npy: float64, shape (3000,), little-endian payload.
    let npy = fs::read(s.out.join("samples.npy")).unwrap();
    assert_eq!(&npy[..6], b"\x93NUMPY");
    let header = String::from_utf8_lossy(&npy[..128]);
    assert!(
        header.contains("'descr': '<f8'") && header.contains("'shape': (3000,"),
        "{header}"
    );
    let report = fs::read_to_string(s.out.join("report.md")).unwrap();
    assert!(
        report.contains("![free_diffusion.png](free_diffusion.png)"),
        "{report}"
    );
    assert!(report.contains("stats.kstest"), "{report}");

    let first = statistics(&s.out);
    let o = s.run();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(first, statistics(&s.out));

    // --resume on a complete run of the same manifest does not recompute.
    let o = xtask(&[
        "run",
        s.manifest.to_str().unwrap(),
        "--out",
        s.out.to_str().unwrap(),
        "--resume",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("already holds a complete run"),
        "{}",
        stdout(&o)
    );

    // A different seed gives different numbers.
    fs::write(&s.manifest, with("seed = 7", "seed = 8")).unwrap();
    let o = s.run();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_ne!(first, statistics(&s.out));
}

#[test]
fn failed_golden_checks_exit_1_and_keep_results() {
    let s = Setup::new(SMALL);
    fs::write(
        s.dir.path().join("small.golden.toml"),
        r#"
[[check]]
stat = "free_diffusion.ks_t_check"
kind = "not_rejected"
alpha = 1e-3

[[check]]
stat = "free_diffusion.var_t_check"
kind = "within"
expected = 5.0
tol = 0.1
"#,
    )
    .unwrap();
    let o = s.run();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("1 golden check(s) failed"), "{err}");
    assert!(err.contains("free_diffusion.var_t_check.value"), "{err}");
    assert!(
        stdout(&o).contains("PASS  free_diffusion.ks_t_check.pvalue"),
        "{}",
        stdout(&o)
    );
    let m: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(s.out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["golden"]["passed"], false);
    assert_eq!(m["golden"]["checks"][0]["pass"], true);
    assert_eq!(m["golden"]["checks"][1]["pass"], false);
    let report = fs::read_to_string(s.out.join("report.md")).unwrap();
    assert!(
        report.contains("**FAIL**") && report.contains("1/2 passed"),
        "{report}"
    );
}

#[test]
fn list_shows_the_experiments() {
    let o = xtask(&["list"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("smoluchowski"), "{out}");
    assert!(!out.contains("invalid manifest"), "{out}");
}

#[test]
fn shipped_manifests_and_golden_files_are_valid() {
    // Every experiments/*.toml parses and validates, and so does its golden file, against the
    // statistics its kind declares (through the library, without running the experiment).
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for e in fs::read_dir(root.join("experiments")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        // Sweep files are checked in tests/sweep.rs.
        if !name.ends_with(".toml")
            || name.ends_with(".golden.toml")
            || name.ends_with(".sweep.toml")
        {
            continue;
        }
        let shown = format!("experiments/{name}");
        let m = xtask::manifest::read(&p, &shown).unwrap();
        let entry = xtask::experiments::KINDS
            .iter()
            .find(|k| k.kind == m.header.kind)
            .unwrap_or_else(|| panic!("{shown}: unknown kind"));
        let exp = (entry.load)(&m).unwrap_or_else(|e| panic!("{e:#}"));
        let golden = xtask::golden::Golden::load(&xtask::harness::golden_path(&p)).unwrap();
        golden.validate_against(&exp.statistics()).unwrap();
        assert!(!golden.checks.is_empty(), "{shown} has no golden checks");
    }
}
