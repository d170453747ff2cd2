//! `cargo xtask sweep`: expansion and its validation (exit 2 naming the axis, the value, or the
//! kind's message), seeds stable under added axis values, the sbatch script, task indices, and
//! `collect` with a missing task. No Slurm needed (`submit --dry-run`).

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

/// A small valid manifest of kind `smoluchowski` (runs in well under a second).
const BASE: &str = r#"
[experiment]
name = "small"
kind = "smoluchowski"
description = "test manifest"
seed = 7

[free_diffusion]
diffusion = 0.5
x0 = 0.0
n_particles = 2000
dt = 1e-2
t_check = 1.0
t_end = 2.0
n_drawn = 5
bins = 30

[ou]
a = 1.0
diffusion = 0.5
x0 = 3.0
n_particles = 2000
dt = 1e-2
t_mid = 0.5
t_end = 6.0
n_drawn = 5
bins = 30
"#;

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
        .output()
        .expect("cannot start xtask")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Writes the base manifest and a sweep file with `body` (axes etc.) into `dir`, expands it
/// into `dir/<out>`.
fn expand(dir: &Path, body: &str, out: &str) -> Output {
    fs::write(dir.join("base.toml"), BASE).unwrap();
    let sweep = dir.join(format!("{out}.sweep.toml"));
    fs::write(&sweep, format!("base = \"base.toml\"\n{body}")).unwrap();
    xtask(&[
        "sweep",
        "expand",
        sweep.to_str().unwrap(),
        "--out",
        dir.join(out).to_str().unwrap(),
    ])
}

fn index(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(dir.join("index.json")).unwrap()).unwrap()
}

fn seeds_by(ix: &serde_json::Value, axis: &str) -> Vec<(i64, u64)> {
    ix["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["axes"][axis].as_i64().unwrap(),
                t["seed"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn product_and_zip_write_one_manifest_per_task() {
    let d = tempfile::tempdir().unwrap();
    let o = expand(
        d.path(),
        "[axes]\n\"experiment.seed\" = [1, 2, 3]\n\"free_diffusion.n_drawn\" = [3, 4]\n",
        "p",
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for i in 0..6 {
        let m = fs::read_to_string(d.path().join(format!("p/tasks/{i}.toml"))).unwrap();
        assert!(m.contains(&format!("name = \"small-{i}\"")), "{m}");
    }
    assert!(!d.path().join("p/tasks/6.toml").exists());
    let ix = index(&d.path().join("p"));
    assert_eq!(ix["tasks"].as_array().unwrap().len(), 6);
    // The seed axis gives the seeds themselves.
    assert_eq!(ix["tasks"][5]["seed"], 3);
    assert_eq!(ix["tasks"][5]["axes"]["free_diffusion.n_drawn"], 4);
    let m5 = fs::read_to_string(d.path().join("p/tasks/5.toml")).unwrap();
    assert!(
        m5.contains("seed = 3") && m5.contains("n_drawn = 4"),
        "{m5}"
    );

    let o = expand(
        d.path(),
        "mode = \"zip\"\n[axes]\n\"experiment.seed\" = [1, 2, 3]\n\"free_diffusion.n_drawn\" = [3, 4, 5]\n",
        "z",
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        index(&d.path().join("z"))["tasks"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert!(d.path().join("z/tasks/2.toml").exists());
    assert!(!d.path().join("z/tasks/3.toml").exists());

    let o = expand(
        d.path(),
        "mode = \"zip\"\n[axes]\n\"experiment.seed\" = [1, 2, 3]\n\"free_diffusion.n_drawn\" = [3, 4]\n",
        "bad",
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("\"experiment.seed\" has 3") && t.contains("\"free_diffusion.n_drawn\" has 2"),
        "{t}"
    );
    assert!(
        !d.path().join("bad").exists(),
        "nothing is written on bad input"
    );

    // An existing expansion, or any non-empty --out, is never replaced.
    let o = expand(d.path(), "[axes]\n\"experiment.seed\" = [1]\n", "p");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("already holds an expanded sweep"),
        "{}",
        text(&o)
    );
    assert!(d.path().join("p/tasks/5.toml").exists());
    fs::create_dir_all(d.path().join("other/keep")).unwrap();
    let o = expand(d.path(), "[axes]\n\"experiment.seed\" = [1]\n", "other");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(d.path().join("other/keep").exists());
}

#[test]
fn unknown_path_and_wrong_type_are_exit_2_naming_them() {
    let d = tempfile::tempdir().unwrap();
    let o = expand(
        d.path(),
        "[axes]\n\"free_diffusion.n_particle\" = [10]\n",
        "a",
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("free_diffusion.n_particle"), "{t}");
    assert!(!t.contains("panicked"), "{t}");
    assert!(!d.path().join("a").exists());

    let o = expand(
        d.path(),
        "[axes]\n\"free_diffusion.dt\" = [0.01, \"fast\"]\n",
        "b",
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("free_diffusion.dt") && t.contains("\"fast\""),
        "{t}"
    );
    assert!(!d.path().join("b").exists());

    let o = expand(
        d.path(),
        "[axes]\n\"free_diffusion.n_drawn\" = [3.5]\n",
        "c",
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("free_diffusion.n_drawn") && t.contains("3.5"),
        "{t}"
    );
}

#[test]
fn a_value_the_kind_rejects_is_exit_2_with_its_message() {
    let d = tempfile::tempdir().unwrap();
    let o = expand(
        d.path(),
        "[axes]\n\"free_diffusion.dt\" = [0.01, -0.5]\n",
        "k",
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    // The task and its axis values, then the kind's own message naming the field and value.
    assert!(t.contains("task 1 (free_diffusion.dt = -0.5)"), "{t}");
    assert!(t.contains("free_diffusion.dt must be"), "{t}");
    assert!(
        !d.path().join("k").exists(),
        "nothing is written when a task is invalid"
    );
}

#[test]
fn adding_an_axis_value_keeps_the_other_tasks_seeds() {
    let d = tempfile::tempdir().unwrap();
    let o = expand(
        d.path(),
        "[axes]\n\"free_diffusion.n_drawn\" = [3, 5]\n",
        "two",
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = expand(
        d.path(),
        "[axes]\n\"free_diffusion.n_drawn\" = [3, 4, 5]\n",
        "three",
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let two = seeds_by(&index(&d.path().join("two")), "free_diffusion.n_drawn");
    let three = seeds_by(&index(&d.path().join("three")), "free_diffusion.n_drawn");
    assert_eq!(two.len(), 2);
    assert_eq!(three.len(), 3);
    assert_eq!(two[0], three[0]);
    assert_eq!(two[1], three[2]);
    assert_ne!(three[0].1, three[1].1);
    assert_ne!(three[1].1, three[2].1);
    assert_ne!(three[0].1, 7, "the seed is derived, not the base's");
}

#[test]
fn submit_dry_run_writes_the_array_script() {
    let d = tempfile::tempdir().unwrap();
    let o = expand(
        d.path(),
        "[axes]\n\"experiment.seed\" = [1, 2, 3, 4]\n",
        "s",
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let dir = d.path().join("s");
    let s = dir.to_str().unwrap();
    let o = xtask(&["sweep", "submit", s, "--dry-run"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "no scheduler chosen: {}",
        text(&o)
    );
    let o = xtask(&[
        "sweep",
        "submit",
        s,
        "--slurm",
        "--concurrency",
        "2",
        "--time",
        "00:10:00",
        "--dry-run",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let script = fs::read_to_string(dir.join("slurm/array.sbatch")).unwrap();
    assert!(
        script.lines().any(|l| l == "#SBATCH --array=0-3%2"),
        "{script}"
    );
    assert!(script.contains("#SBATCH --time=00:10:00"), "{script}");
    // --mem from the manifests' memory estimates (a few hundred KiB of particles here): the
    // 512 MiB process allowance × 1.25, rounded up to 256 MiB.
    assert!(script.contains("#SBATCH --mem=768M\n"), "{script}");
    assert!(
        script.contains("# --mem estimated from the manifests: largest task 0: ")
            && script.contains("free_diffusion.n_particles = 2000"),
        "{script}"
    );
    assert!(script.contains("/logs/%a.log"), "{script}");
    let exe = env!("CARGO_BIN_EXE_xtask");
    assert!(script.contains(&format!("'{exe}' sweep run")), "{script}");
    assert!(script.trim_end().ends_with("--resume"), "{script}");

    // Tasks 0 and 2 complete: --resubmit-failed submits 1 and 3 only.
    for i in [0, 2] {
        fs::create_dir_all(dir.join(format!("runs/{i}"))).unwrap();
        fs::write(dir.join(format!("runs/{i}/metrics.json")), "{}").unwrap();
    }
    let o = xtask(&[
        "sweep",
        "submit",
        s,
        "--slurm",
        "--resubmit-failed",
        "--dry-run",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let script = fs::read_to_string(dir.join("slurm/resubmit.sbatch")).unwrap();
    assert!(
        script.lines().any(|l| l == "#SBATCH --array=1,3"),
        "{script}"
    );
    let o = xtask(&["sweep", "submit", s, "--slurm", "--mem", "3G", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let script = fs::read_to_string(dir.join("slurm/array.sbatch")).unwrap();
    assert!(
        script.contains("#SBATCH --mem=3G\n# --mem given by --mem"),
        "{script}"
    );
}

#[test]
fn memory_estimate_grows_with_the_swept_size() {
    let d = tempfile::tempdir().unwrap();
    let o = expand(
        d.path(),
        "[axes]\n\"free_diffusion.n_particles\" = [2000, 20000000]\n",
        "s",
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let dir = d.path().join("s");
    let o = xtask(&[
        "sweep",
        "submit",
        dir.to_str().unwrap(),
        "--slurm",
        "--dry-run",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let script = fs::read_to_string(dir.join("slurm/array.sbatch")).unwrap();
    let mem: u64 = script
        .lines()
        .find_map(|l| l.strip_prefix("#SBATCH --mem="))
        .and_then(|m| m.strip_suffix('M'))
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("{script}"));
    // 2·10⁷ particles of f64 state and checkpoints: several hundred MiB above the allowance.
    assert!(mem > 1024, "{script}");
    assert!(script.contains("largest task 1: "), "{script}");
}

#[test]
fn regression_pins_are_left_out_of_task_golden_files() {
    let d = tempfile::tempdir().unwrap();
    let golden = r#"
[[check]]
stat = "free_diffusion.ks_t_check"
kind = "not_rejected"
alpha = 1e-3

[[check]]
stat = "free_diffusion.ks_t_check"
field = "statistic"
kind = "within"
expected = 0.0123
tol = 1e-6
note = "regression pin"
pin = true
"#;
    fs::write(d.path().join("base.golden.toml"), golden).unwrap();
    let o = expand(d.path(), "[axes]\n\"experiment.seed\" = [1, 2]\n", "s");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("leave out the base's 1 regression pin(s)"),
        "{}",
        text(&o)
    );
    let dir = d.path().join("s");
    assert_eq!(index(&dir)["dropped_pins"], 1);
    for i in 0..2 {
        let task: toml::Table = toml::from_str(
            &fs::read_to_string(dir.join(format!("tasks/{i}.golden.toml"))).unwrap(),
        )
        .unwrap();
        let checks = task["check"].as_array().unwrap();
        assert_eq!(checks.len(), 1, "{task}");
        assert_eq!(checks[0]["kind"].as_str(), Some("not_rejected"));
    }
    // A pin that is not a bool is a bad golden file: exit 2 naming the file.
    fs::write(
        d.path().join("base.golden.toml"),
        golden.replace("pin = true", "pin = \"yes\""),
    )
    .unwrap();
    let o = expand(d.path(), "[axes]\n\"experiment.seed\" = [1, 2]\n", "t");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("base.golden.toml"), "{}", text(&o));
}

#[test]
fn run_index_out_of_range_is_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let o = expand(d.path(), "[axes]\n\"experiment.seed\" = [1, 2]\n", "r");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let dir = d.path().join("r");
    let o = xtask(&["sweep", "run", dir.to_str().unwrap(), "--index", "2"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("--index = 2 is out of range"), "{t}");
    assert!(!dir.join("runs").exists());
    let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["sweep", "run", dir.to_str().unwrap()])
        .env("SLURM_ARRAY_TASK_ID", "5")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("SLURM_ARRAY_TASK_ID = 5"), "{}", text(&o));
}

#[test]
fn collect_lists_the_missing_task() {
    let d = tempfile::tempdir().unwrap();
    let o = expand(d.path(), "[axes]\n\"experiment.seed\" = [1, 2]\n", "c");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let dir = d.path().join("c");
    let s = dir.to_str().unwrap();
    let o = xtask(&["sweep", "run", s, "--index", "0"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(dir.join("runs/0/metrics.json").exists());
    let o = xtask(&[
        "sweep",
        "collect",
        s,
        "--plot",
        "ou.var_t_end",
        "--against",
        "experiment.seed",
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("1/2 task(s) complete"), "{t}");
    assert!(t.contains("MISSING or FAILED (1): [1]"), "{t}");
    assert!(
        t.contains(&format!("{}", dir.join("logs/1.log").display())),
        "{t}"
    );
    let csv = fs::read_to_string(dir.join("table.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].contains("ou.ks_t_mid.pvalue"), "{csv}");
    assert!(lines[1].starts_with("0,small-0,1,1,ok,"), "{csv}");
    assert!(lines[2].starts_with("1,small-1,2,2,missing,"), "{csv}");
    let md = fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("task 1: no result"), "{md}");
    assert!(dir.join("ou.var_t_end-vs-experiment.seed.png").exists());
    // An unknown statistic is bad input.
    let o = xtask(&[
        "sweep",
        "collect",
        s,
        "--plot",
        "nope",
        "--against",
        "experiment.seed",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn shipped_sweep_files_expand() {
    // experiments/*.sweep.toml and the CI's sweep expand (every task validated by its kind).
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    for dir in ["experiments", ".ci"] {
        for e in fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.to_string_lossy().ends_with(".sweep.toml") {
                files.push(p);
            }
        }
    }
    assert!(files.len() >= 3, "{files:?}");
    let d = tempfile::tempdir().unwrap();
    for (k, f) in files.iter().enumerate() {
        let out = d.path().join(k.to_string());
        let o = xtask(&[
            "sweep",
            "expand",
            f.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}: {}", f.display(), text(&o));
    }
    let seeds = root.join("experiments/ring2d-seeds.sweep.toml");
    let k = files.iter().position(|f| *f == seeds).unwrap();
    let ix = index(&d.path().join(k.to_string()));
    assert!(ix["tasks"].as_array().unwrap().len() >= 16);
}
