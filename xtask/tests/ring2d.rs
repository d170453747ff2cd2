//! End-to-end tests of the `ring2d` experiment kind on a tiny manifest (a few seconds each):
//! every file is written, runs are reproducible, an interrupted run resumed from its
//! checkpoint ends with the same statistics, bad manifests are named, and training helps.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A tiny ring2d manifest: 300 steps of batch 512, 2000 samples, 50 sampler steps.
const TINY: &str = r#"
[experiment]
name = "tiny"
kind = "ring2d"
description = "tiny ring2d run for tests"
seed = 11

[dataset]
scale = 200

[sde]
kind = "vp"
beta_min = 0.1
beta_max = 20.0
t_end = 1.0

[network]
dim = 2
width = 32
depth = 3
activation = "silu"
residual = true
time_embedding = { fourier = { frequencies = 4, max_frequency = 16.0 } }
output = "noise"

[training]
steps = 300
batch_size = 512
optimizer = { kind = "adam" }
lr = 3e-3
lr_schedule = { kind = "constant" }
t_eps = 1e-5
weighting = "sigma2"
data = { kind = "fresh" }
checkpoint_every = 100

[sampling]
method = "euler_maruyama"
steps = 50
t_eps = 1e-3
final_denoise = true
n_samples = 2000
record_particles = 50

[evaluation]
reference_samples = 2000
sliced_wasserstein_projections = 32
energy_subsample = 300
eval_loss_samples = 4096
strip_times = [1.0, 0.3, 0.001]
"#;

const ABORT_ENV: &str = "SMOLUCHOWSKI_ABORT_AFTER_STEP";

fn xtask(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove(ABORT_ENV);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("cannot start xtask")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn with(old: &str, new: &str) -> String {
    assert!(TINY.contains(old), "{old}");
    TINY.replacen(old, new, 1)
}

/// A manifest in a temp dir and an output path next to it.
struct Setup {
    dir: tempfile::TempDir,
    manifest: PathBuf,
}

impl Setup {
    fn new(text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("tiny.toml");
        fs::write(&manifest, text).unwrap();
        Self { dir, manifest }
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, out: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let out = self.out(out);
        let mut args = vec![
            "run",
            self.manifest.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        xtask(&args, env)
    }
}

fn metrics(out: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap()
}

/// The statistics without the machine-dependent `throughput.*` entries.
fn statistics(out: &Path) -> serde_json::Map<String, serde_json::Value> {
    let m = metrics(out);
    let mut s = m["statistics"].as_object().unwrap().clone();
    s.retain(|k, _| !k.starts_with("throughput."));
    s
}

fn stat(s: &serde_json::Map<String, serde_json::Value>, name: &str, field: &str) -> f64 {
    s[name][field]
        .as_f64()
        .unwrap_or_else(|| panic!("{name}.{field} in {s:?}"))
}

#[test]
fn ring2d_writes_every_file_and_is_reproducible() {
    let s = Setup::new(TINY);
    let o = s.run("a", &[], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let a = s.out("a");
    for f in [
        "metrics.json",
        "report.md",
        "samples.npy",
        "model.safetensors",
        "model.json",
        "loss_curve.csv",
        "ring2d.png",
        "loss.png",
        "reverse_process.png",
        "loss_by_time.png",
    ] {
        assert!(a.join(f).is_file(), "{f} missing");
    }
    // No temp dirs and no checkpoints left after a successful run.
    let mut left: Vec<String> = fs::read_dir(s.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, vec!["a", "tiny.toml"]);

    let npy = fs::read(a.join("samples.npy")).unwrap();
    let header = String::from_utf8_lossy(&npy[..128]);
    assert!(
        header.contains("'descr': '<f8'") && header.contains("'shape': (2000, 2, )"),
        "{header}"
    );
    let curve = fs::read_to_string(a.join("loss_curve.csv")).unwrap();
    assert_eq!(curve.lines().count(), 301, "header + one row per step");

    let m = metrics(&a);
    for k in ["train", "sample", "statistics", "figures", "total"] {
        assert!(m["wall_time_s"][k].as_f64().is_some(), "wall_time_s.{k}");
    }
    let st = statistics(&a);
    for k in [
        "radius_ks",
        "angle_ks",
        "two_sample_ks_radius",
        "two_sample_ks_angle",
    ] {
        let d = stat(&st, k, "statistic");
        assert!(d > 0.0 && d <= 1.0, "{k}: {d}");
    }
    for k in [
        "sliced_wasserstein",
        "sliced_wasserstein_noise_floor",
        "energy_distance",
        "energy_distance_noise_floor",
        "final_training_loss",
        "eval_loss",
    ] {
        let v = stat(&st, k, "value");
        assert!(v.is_finite() && v > 0.0, "{k}: {v}");
    }
    assert!(
        m["statistics"]["throughput.train_steps_per_s"]["value"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    let report = fs::read_to_string(a.join("report.md")).unwrap();
    for needle in [
        "![ring2d.png](ring2d.png)",
        "radius_ks",
        "stats.kstest",
        "How to read this report",
    ] {
        assert!(report.contains(needle), "{needle} not in report");
    }

    // The saved network reloads with the manifest's architecture.
    let net = smoluchowski::nets::ScoreNet::load(&a.join("model.safetensors")).unwrap();
    assert_eq!(net.config().width, 32);
    assert_eq!(net.config().depth, 3);

    // Same manifest, same numbers.
    let o = s.run("b", &[], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(st, statistics(&s.out("b")));
    assert_eq!(
        fs::read(a.join("samples.npy")).unwrap(),
        fs::read(s.out("b").join("samples.npy")).unwrap()
    );
}

#[test]
fn ring2d_resume_after_interruption_matches_uninterrupted_run() {
    let s = Setup::new(TINY);
    // Interrupted right after the checkpoint of step 150 (not a multiple of checkpoint_every).
    let o = s.run("out", &[], &[(ABORT_ENV, "150")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("step 150"), "{}", stderr(&o));
    assert!(
        !s.out("out").exists(),
        "an interrupted run must not write results"
    );
    let ckpt = s.out("out.checkpoints");
    assert!(ckpt.join("trainer.safetensors").is_file());
    assert!(
        !ckpt.join("loss_curve.csv").exists(),
        "the loss curve travels inside the trainer checkpoint"
    );

    let o = s.run("out", &["--resume"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("resuming training from step 150/300"),
        "{}",
        stdout(&o)
    );
    assert!(
        !ckpt.exists(),
        "checkpoints are removed after a successful run"
    );
    assert_eq!(
        metrics(&s.out("out"))["parameters"]["resumed_from_step"],
        150
    );

    let o = s.run("straight", &[], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(statistics(&s.out("out")), statistics(&s.out("straight")));
    assert_eq!(
        fs::read(s.out("out").join("loss_curve.csv")).unwrap(),
        fs::read(s.out("straight").join("loss_curve.csv")).unwrap()
    );
    assert_eq!(
        fs::read(s.out("out").join("model.safetensors")).unwrap(),
        fs::read(s.out("straight").join("model.safetensors")).unwrap()
    );

    // Without --resume, a stale checkpoint is ignored (and cleared).
    let o = s.run("fresh", &[], &[(ABORT_ENV, "100")]);
    assert_eq!(o.status.code(), Some(1));
    let o = s.run("fresh", &[], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stdout(&o).contains("resuming"), "{}", stdout(&o));
    assert_eq!(statistics(&s.out("fresh")), statistics(&s.out("straight")));
}

fn expect_bad(text: &str, needles: &[&str]) {
    let s = Setup::new(text);
    let o = s.run("out", &[], &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected {n:?} in stderr:\n{err}");
    }
    assert!(!s.out("out").exists());
}

#[test]
fn bad_ring2d_manifests_exit_2_naming_the_field() {
    expect_bad(
        &with("depth = 3\n", "depth = 3\nbogus = 1\n"),
        &[
            "tiny.toml",
            "line 21",
            "unknown field `bogus`, expected one of `dim`, `width`",
        ],
    );
    expect_bad(&with("lr = 3e-3", "lr = nan"), &["training.lr", "NaN"]);
    expect_bad(
        &with("n_samples = 2000", "n_samples = 0"),
        &["sampling.n_samples must be >= 1 (got 0)"],
    );
    expect_bad(
        &with("kind = \"vp\"", "kind = \"ve\""),
        &["unknown variant `ve`", "vp", "sub_vp"],
    );
    expect_bad(
        &with("lr_schedule", "seed = 3\nlr_schedule"),
        &["training.seed is not allowed"],
    );
    expect_bad(
        &with(
            "record_particles = 50\n",
            "record_particles = 50\nextra = 2\n",
        ),
        &["in [sampling]", "unknown field `extra`"],
    );
    expect_bad(&with("t_eps = 1e-3", "t_eps = 2.0"), &["sampling.t_eps"]);
    expect_bad(
        &with("width = 32", "width = 0"),
        &["network.width must be ≥ 1 (got 0)"],
    );
    expect_bad(&with("beta_max = 20.0", "beta_max = 1.0"), &["m(T)"]);
    // A batch that cannot fit in memory is named with its estimate before any work.
    expect_bad(
        &with("batch_size = 512", "batch_size = 1_000_000_000_000"),
        &[
            "training.batch_size must be small enough to fit in memory",
            "TiB",
            "(got 1000000000000)",
        ],
    );
    expect_bad(
        &with("n_samples = 2000", "n_samples = 1_000_000_000_000"),
        &[
            "sampling.n_samples must be small enough to fit in memory",
            "TiB",
            "(got 1000000000000)",
        ],
    );
    expect_bad(
        &with("steps = 50\n", "steps = 1_000_000_000_000\n"),
        &[
            "sampling.steps must be small enough to fit in memory",
            "(got 1000000000000)",
        ],
    );
    expect_bad(
        &with(
            "strip_times = [1.0, 0.3, 0.001]",
            "strip_times = [1.0, 3.0]",
        ),
        &["evaluation.strip_times[1]"],
    );
}

#[test]
fn ring2d_non_finite_loss_stops_with_the_step_and_keeps_the_checkpoint() {
    // An absurd learning rate blows the weights up within a few steps.
    let s = Setup::new(&with("lr = 3e-3", "lr = 1e35").replacen(
        "checkpoint_every = 100",
        "checkpoint_every = 1",
        1,
    ));
    let o = s.run("out", &[], &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("non-finite training loss at step"), "{err}");
    assert!(err.contains("last good checkpoint"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(s
        .out("out.checkpoints")
        .join("trainer.safetensors")
        .is_file());
    assert!(!s.out("out").exists());
}

#[test]
fn ring2d_short_training_lowers_the_loss_and_moves_samples_to_the_ring() {
    // The same manifest with (effectively) no training: one step at a negligible rate.
    let untrained = with("steps = 300", "steps = 1").replacen("lr = 3e-3", "lr = 1e-12", 1);
    let s = Setup::new(&untrained);
    let o = s.run("untrained", &[], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let before = statistics(&s.out("untrained"));
    fs::write(&s.manifest, TINY).unwrap();
    let o = s.run("trained", &[], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let after = statistics(&s.out("trained"));

    // Same evaluation batch (same master seed): the loss must drop clearly.
    let (l0, l1) = (
        stat(&before, "eval_loss", "value"),
        stat(&after, "eval_loss", "value"),
    );
    assert!(l1 < 0.8 * l0, "eval loss {l0} -> {l1}");
    let (r0, r1) = (
        stat(&before, "mean_radius", "value"),
        stat(&after, "mean_radius", "value"),
    );
    assert!(
        (r1 - 1.0).abs() < 0.5 * (r0 - 1.0).abs(),
        "mean radius {r0} -> {r1}"
    );
    let (d0, d1) = (
        stat(&before, "radius_ks", "statistic"),
        stat(&after, "radius_ks", "statistic"),
    );
    assert!(d1 < d0, "radius KS {d0} -> {d1}");
    let (w0, w1) = (
        stat(&before, "sliced_wasserstein", "value"),
        stat(&after, "sliced_wasserstein", "value"),
    );
    assert!(w1 < 0.5 * w0, "sliced W2 {w0} -> {w1}");
}
