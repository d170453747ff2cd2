//! The harness: the [`Experiment`] interface, the run driver (validate → run → write →
//! golden checks → atomic commit), `list`, and exit-code classification.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::experiments;
use crate::golden::{CheckResult, Golden};
use crate::manifest::{self, ExperimentHeader, ManifestText};
use crate::output::{write_json, write_text, OutputDir};
use crate::report;
use crate::seeding::fnv1a64;
use crate::validate::{bad_input, BadInput};

/// The workspace root (the parent of xtask's manifest directory, fixed at compile time).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Kind of a statistic: a KS test result or a plain number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatKind {
    /// `{statistic, pvalue}`.
    Ks,
    /// `{value}`.
    Value,
}

/// One statistic of a run, as written into `metrics.json`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Statistic {
    /// A Kolmogorov–Smirnov result.
    Ks {
        /// `D`.
        statistic: f64,
        /// Two-sided p-value.
        pvalue: f64,
    },
    /// A number.
    Value {
        /// The number.
        value: f64,
    },
}

impl Statistic {
    /// Its kind.
    pub fn kind(&self) -> StatKind {
        match self {
            Statistic::Ks { .. } => StatKind::Ks,
            Statistic::Value { .. } => StatKind::Value,
        }
    }

    /// The named field (`statistic`, `pvalue` or `value`).
    pub fn field(&self, name: &str) -> Option<f64> {
        match (self, name) {
            (Statistic::Ks { statistic, .. }, "statistic") => Some(*statistic),
            (Statistic::Ks { pvalue, .. }, "pvalue") => Some(*pvalue),
            (Statistic::Value { value }, "value") => Some(*value),
            _ => None,
        }
    }

    /// A plain number.
    pub fn value(value: f64) -> Self {
        Statistic::Value { value }
    }
}

impl From<smoluchowski::metrics::KsResult> for Statistic {
    fn from(r: smoluchowski::metrics::KsResult) -> Self {
        Statistic::Ks {
            statistic: r.statistic,
            pvalue: r.pvalue,
        }
    }
}

/// A figure written by a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figure {
    /// File name inside the output directory, e.g. `trajectories.png`.
    pub file: String,
    /// What it shows.
    pub caption: String,
}

/// What an experiment's run returns to the harness (files are already written).
#[derive(Debug, Clone, Default)]
pub struct RunResults {
    /// Derived parameters (step counts, exact variances, ...), echoed in metrics.json.
    pub parameters: serde_json::Value,
    /// Every declared statistic.
    pub statistics: BTreeMap<String, Statistic>,
    /// Figures, in report order.
    pub figures: Vec<Figure>,
    /// Other files `(name, description)`, e.g. `samples.npy`.
    pub files: Vec<(String, String)>,
    /// Extra report sections `(title, markdown)`: how to read it, how to check it independently.
    pub sections: Vec<(String, String)>,
}

/// Checkpoints that survive a failed run: `<out>.checkpoints/`, tagged with the manifest's
/// fingerprint. Without `--resume` the directory is cleared before the run; after a successful
/// run it is removed.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    dir: PathBuf,
    fingerprint: String,
    resume: bool,
}

impl Checkpoints {
    const TAG: &'static str = "fingerprint";

    /// A checkpoint written by an interrupted run of the same manifest, if `--resume` was given.
    pub fn resumable(&self, name: &str) -> Option<PathBuf> {
        let tag = std::fs::read_to_string(self.dir.join(Self::TAG)).ok()?;
        let path = self.dir.join(name);
        (self.resume && tag.trim() == self.fingerprint && path.exists()).then_some(path)
    }

    /// Where to write checkpoint `name` (creates the directory and its fingerprint tag).
    pub fn save_path(&self, name: &str) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        write_text(&self.dir.join(Self::TAG), &self.fingerprint)?;
        Ok(self.dir.join(name))
    }
}

/// Everything a run may use: the seed, the output directory, checkpoints, phase timers.
pub struct RunContext<'a> {
    /// The manifest's master seed.
    pub seed: u64,
    /// The (temporary) output directory.
    pub out: &'a OutputDir,
    /// Checkpoints for long runs.
    pub checkpoints: Checkpoints,
    timings: Vec<(String, f64)>,
}

impl RunContext<'_> {
    /// Run `f`, recording its wall time under `phase` (in metrics.json's `wall_time_s`).
    pub fn time<T>(&mut self, phase: &str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.timings
            .push((phase.to_string(), start.elapsed().as_secs_f64()));
        out
    }
}

/// An experiment kind's validated manifest, ready to run.
pub trait Experiment {
    /// The `[experiment]` table.
    fn header(&self) -> &ExperimentHeader;
    /// The whole manifest, echoed into metrics.json (and fingerprinted for `--resume`).
    fn manifest_echo(&self) -> serde_json::Value;
    /// The statistics the run produces (golden files are checked against these before the run).
    fn statistics(&self) -> BTreeMap<String, StatKind>;
    /// Do the work: write files into `ctx.out`, return statistics and report material.
    fn run(&self, ctx: &mut RunContext<'_>) -> Result<RunResults>;
}

/// A registered experiment kind (see `experiments::KINDS`).
pub struct KindEntry {
    /// The `experiment.kind` value that selects it.
    pub kind: &'static str,
    /// One line for `cargo xtask list`.
    pub summary: &'static str,
    /// Stage-2 parse + validation of a manifest of this kind.
    pub load: fn(&ManifestText) -> Result<Box<dyn Experiment>>,
}

/// How a run ended when it did not hit an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything passed.
    Success,
    /// Results were written, but golden checks failed.
    GoldenFailed,
}

/// True if the error (anywhere in its chain) is bad user input: exit code 2.
pub fn is_bad_input(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|e| e.is::<BadInput>() || e.is::<crate::validate::Invalid>())
}

/// `experiments/<name>.toml` of the workspace.
pub fn reproduce(name: &str, out: Option<PathBuf>, resume: bool) -> Result<Outcome> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return Err(bad_input(format!(
            "experiment name must be made of [A-Za-z0-9_-] (got {name:?}); see `cargo xtask list`"
        )));
    }
    let rel = PathBuf::from("experiments").join(format!("{name}.toml"));
    let path = workspace_root().join(&rel);
    if !path.exists() {
        let known = manifests()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect::<Vec<_>>();
        return Err(bad_input(format!(
            "no experiment `{name}` ({} not found; known: {})",
            rel.display(),
            known.join(", ")
        )));
    }
    run_manifest(&path, &rel, out, resume)
}

/// The golden file next to a manifest: `x.toml` → `x.golden.toml`.
pub fn golden_path(manifest: &Path) -> PathBuf {
    let stem = manifest
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    manifest.with_file_name(format!("{stem}.golden.toml"))
}

fn find_kind(kind: &str) -> Option<&'static KindEntry> {
    experiments::KINDS.iter().find(|k| k.kind == kind)
}

/// Validate everything a run needs: manifest, kind, golden file.
fn prepare(path: &Path, display: &Path) -> Result<(Box<dyn Experiment>, Golden)> {
    let m = manifest::read(path, &display.display().to_string())?;
    let entry = find_kind(&m.header.kind).ok_or_else(|| {
        let known: Vec<&str> = experiments::KINDS.iter().map(|k| k.kind).collect();
        bad_input(format!(
            "{}: experiment.kind: unknown kind {:?} (known: {})",
            m.display,
            m.header.kind,
            known.join(", ")
        ))
    })?;
    let exp = (entry.load)(&m)?;
    let golden = Golden::load(&golden_path(path))?;
    golden.validate_against(&exp.statistics())?;
    Ok((exp, golden))
}

/// Validate a manifest (kind loader, golden file against its statistics) exactly as a run would,
/// without running it. `display` is how the path is shown in messages.
pub fn validate_manifest(path: &Path, display: &Path) -> Result<()> {
    prepare(path, display).map(|_| ())
}

/// Validate a manifest as [`validate_manifest`] does and return the memory estimates its checks
/// compared with this machine's memory (field path, value, bytes; see
/// [`smoluchowski::core::record_checked`]).
pub fn memory_estimates(
    path: &Path,
    display: &Path,
) -> Result<Vec<smoluchowski::core::MemoryEstimate>> {
    let (prepared, estimates) = smoluchowski::core::record_checked(|| prepare(path, display));
    prepared.map(|_| estimates)
}

/// The JSON written as metrics.json.
#[derive(Debug, Serialize, Deserialize)]
pub struct Metrics {
    /// The manifest, echoed.
    pub experiment: serde_json::Value,
    /// Path of the manifest as given.
    pub manifest: String,
    /// FNV-1a 64 of the manifest echo and harness version (what `--resume` compares).
    pub fingerprint: String,
    /// Derived parameters.
    pub parameters: serde_json::Value,
    /// The statistics.
    pub statistics: BTreeMap<String, Statistic>,
    /// Wall time of each phase, seconds.
    pub wall_time_s: BTreeMap<String, f64>,
    /// Golden check outcome.
    pub golden: GoldenSummary,
    /// Versions.
    pub version: Version,
}

/// Golden outcome in metrics.json.
#[derive(Debug, Serialize, Deserialize)]
pub struct GoldenSummary {
    /// The golden file (none: no checks).
    pub file: Option<String>,
    /// All checks passed.
    pub passed: bool,
    /// Each check.
    pub checks: Vec<CheckResult>,
}

/// Versions in metrics.json.
#[derive(Debug, Serialize, Deserialize)]
pub struct Version {
    /// smoluchowski's version.
    pub smoluchowski: String,
    /// `git describe --always --dirty` of the workspace, when available.
    pub git: Option<String>,
}

fn git_describe() -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(workspace_root())
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn print_checks(golden: &Golden, checks: &[CheckResult]) {
    match &golden.path {
        None => println!("golden checks: none (no golden file)"),
        Some(p) => {
            let shown = p.strip_prefix(workspace_root()).unwrap_or(p);
            println!("golden checks ({}):", shown.display());
            for c in checks {
                println!(
                    "  {}  {:<34} {:>14}   {}",
                    if c.pass { "PASS" } else { "FAIL" },
                    format!("{}.{}", c.stat, c.field),
                    format!("{:.6}", c.value),
                    c.requirement
                );
            }
        }
    }
}

fn finish(golden: &Golden, checks: &[CheckResult]) -> Outcome {
    print_checks(golden, checks);
    let misses: Vec<&CheckResult> = checks.iter().filter(|c| !c.pass).collect();
    if misses.is_empty() {
        Outcome::Success
    } else {
        eprintln!("error: {} golden check(s) failed:", misses.len());
        for c in misses {
            eprintln!(
                "  {}.{} = {} does not satisfy {}",
                c.stat, c.field, c.value, c.requirement
            );
        }
        Outcome::GoldenFailed
    }
}

/// Run the manifest at `path` (`display` is how it is shown and echoed).
pub fn run_manifest(
    path: &Path,
    display: &Path,
    out: Option<PathBuf>,
    resume: bool,
) -> Result<Outcome> {
    let total = Instant::now();
    let (exp, golden) = prepare(path, display)?;
    let header = exp.header().clone();
    let out_path = out.unwrap_or_else(|| {
        workspace_root()
            .join("target")
            .join("reproduce")
            .join(&header.name)
    });
    let echo = exp.manifest_echo();
    let version = env!("CARGO_PKG_VERSION");
    let fingerprint = format!("{:016x}", fnv1a64(format!("{version}\n{echo}").as_bytes()));

    // --resume with a complete run of the same manifest: re-check, do not recompute.
    if resume {
        if let Ok(text) = std::fs::read_to_string(out_path.join("metrics.json")) {
            if let Ok(prev) = serde_json::from_str::<Metrics>(&text) {
                if prev.fingerprint == fingerprint {
                    println!(
                        "{}: {} already holds a complete run of this manifest (--resume); re-checking it",
                        header.name,
                        out_path.display()
                    );
                    let checks = golden.evaluate(&prev.statistics)?;
                    if checks != prev.golden.checks {
                        println!("note: the golden file changed since that run; run without --resume to refresh report.md");
                    }
                    return Ok(finish(&golden, &checks));
                }
            }
        }
    }

    let ckpt_dir = {
        let mut name = out_path.file_name().unwrap_or_default().to_os_string();
        name.push(".checkpoints");
        out_path.with_file_name(name)
    };
    if !resume && ckpt_dir.exists() {
        std::fs::remove_dir_all(&ckpt_dir)
            .with_context(|| format!("cannot clear {}", ckpt_dir.display()))?;
    }

    println!("{}: running ({})", header.name, display.display());
    let dir = OutputDir::create(&out_path)?;
    let mut ctx = RunContext {
        seed: header.seed,
        out: &dir,
        checkpoints: Checkpoints {
            dir: ckpt_dir.clone(),
            fingerprint: fingerprint.clone(),
            resume,
        },
        timings: Vec::new(),
    };
    let results = exp
        .run(&mut ctx)
        .with_context(|| format!("experiment {} failed", header.name))?;
    let declared = exp.statistics();
    let produced: Vec<&String> = results.statistics.keys().collect();
    anyhow::ensure!(
        declared.keys().collect::<Vec<_>>() == produced,
        "internal error: experiment {} declared statistics {:?} but produced {:?}",
        header.name,
        declared.keys().collect::<Vec<_>>(),
        produced
    );
    let checks = golden.evaluate(&results.statistics)?;
    let passed = checks.iter().all(|c| c.pass);

    let mut wall_time_s: BTreeMap<String, f64> = ctx.timings.iter().cloned().collect();
    wall_time_s.insert("total".into(), total.elapsed().as_secs_f64());
    let golden_file = golden.path.as_ref().map(|p| {
        p.strip_prefix(workspace_root())
            .unwrap_or(p)
            .display()
            .to_string()
    });
    let metrics = Metrics {
        experiment: echo,
        manifest: display.display().to_string(),
        fingerprint,
        parameters: results.parameters.clone(),
        statistics: results.statistics.clone(),
        wall_time_s,
        golden: GoldenSummary {
            file: golden_file.clone(),
            passed,
            checks: checks.clone(),
        },
        version: Version {
            smoluchowski: version.to_string(),
            git: git_describe(),
        },
    };
    write_json(&dir.file("metrics.json"), &metrics)?;
    let md = report::render(&report::ReportInput {
        header: &header,
        manifest: display,
        results: &results,
        checks: &checks,
        golden_file: golden_file.as_deref(),
        wall_time_s: &metrics.wall_time_s,
    });
    write_text(&dir.file("report.md"), &md)?;
    let final_path = dir.commit()?;
    if ckpt_dir.exists() {
        let _ = std::fs::remove_dir_all(&ckpt_dir);
    }

    println!(
        "{}: wrote {} (report.md, metrics.json{}) in {:.1} s",
        header.name,
        final_path.display(),
        results
            .figures
            .iter()
            .map(|f| f.file.as_str())
            .chain(results.files.iter().map(|f| f.0.as_str()))
            .fold(String::new(), |acc, f| acc + ", " + f),
        total.elapsed().as_secs_f64()
    );
    Ok(finish(&golden, &checks))
}

/// Manifests in `experiments/` (not golden files), sorted.
fn manifests() -> Result<Vec<PathBuf>> {
    let dir = workspace_root().join("experiments");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            name.ends_with(".toml")
                && !name.ends_with(".golden.toml")
                && !name.ends_with(".sweep.toml")
        })
        .collect();
    paths.sort();
    Ok(paths)
}

/// `cargo xtask list`.
pub fn list() -> Result<()> {
    println!("experiments (cargo xtask reproduce <name>):");
    for path in manifests()? {
        let stem = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let rel = Path::new("experiments").join(path.file_name().unwrap_or_default());
        match manifest::read(&path, &rel.display().to_string()) {
            Ok(m) => println!(
                "  {:<16} [{}] {}",
                stem, m.header.kind, m.header.description
            ),
            Err(e) => println!("  {stem:<16} (invalid manifest: {e:#})"),
        }
    }
    println!("\nexperiment kinds:");
    for k in experiments::KINDS {
        println!("  {:<16} {}", k.kind, k.summary);
    }
    Ok(())
}
