//! Sweeps: seeded grids of one base manifest, run as Slurm job arrays (or locally) and collected
//! into tables.
//!
//! ```toml
//! base = "ring2d.toml"              # a manifest path, relative to this file or absolute
//! mode = "product"                  # or "zip"; product is the default
//! [axes]
//! "experiment.seed" = [1, 2, 3, 4]
//! "sampling.steps" = [100, 1000]
//! ```
//!
//! Axes are taken in key order (sorted; in `product` mode the last key varies fastest). Every
//! axis names a field of the base manifest by dotted path; the field must exist and each value
//! must have its TOML type. Each task's manifest is the base with the axis values set, named
//! `<base name>-<i>`, and validated by its kind's own loader (and the base's golden file, copied
//! next to it) before anything is written.
//!
//! Seeds: when `experiment.seed` is an axis, its value is the task's seed. Otherwise the task's
//! seed is `derived_seed(base seed, "sweep/<path>=<value>/…")` over the task's axis values (top
//! bit cleared so that it fits a TOML integer): adding an axis value never changes the other
//! tasks' seeds.
//!
//! Layout of a sweep directory: `index.json`, `tasks/<i>.toml` (+ `<i>.golden.toml`),
//! `runs/<i>/` (each run's atomic output; checkpoints in `runs/<i>.checkpoints/`),
//! `logs/<i>.log`, `slurm/array.sbatch`, `table.csv`, `summary.csv`, `report.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::golden::Golden;
use crate::harness::{self, Metrics, Outcome, Statistic};
use crate::output::{write_json, write_text};
use crate::seeding::derived_seed;
use crate::validate::{bad_input, BadInput};

/// The axis whose values are the tasks' seeds.
pub const SEED_AXIS: &str = "experiment.seed";

/// How axes combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Every combination of the axes' values.
    #[default]
    Product,
    /// The i-th values of all axes together (all axes must have the same length).
    Zip,
}

/// A sweep file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    /// The base manifest, relative to the sweep file or absolute.
    pub base: String,
    /// `product` (default) or `zip`.
    #[serde(default)]
    pub mode: Mode,
    /// Dotted manifest path → list of values.
    pub axes: toml::Table,
}

/// One task of an expanded sweep, as listed in `index.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskEntry {
    /// Index (the array task id).
    pub index: usize,
    /// The task's experiment name.
    pub name: String,
    /// Axis path → value (JSON).
    pub axes: BTreeMap<String, serde_json::Value>,
    /// The task's `experiment.seed`.
    pub seed: u64,
    /// Its manifest, relative to the sweep directory.
    pub manifest: String,
}

/// `index.json` of a sweep directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Index {
    /// The sweep file as given.
    pub sweep: String,
    /// The base manifest (absolute).
    pub base: String,
    /// The base's experiment name.
    pub base_name: String,
    /// The base's kind.
    pub kind: String,
    /// How the axes were combined.
    pub mode: Mode,
    /// Axis paths, in expansion order.
    pub axes: Vec<String>,
    /// The tasks.
    pub tasks: Vec<TaskEntry>,
    /// Regression pins (`pin = true` golden checks) of the base left out of every task's golden
    /// file: they hold for the base manifest's exact numbers only.
    #[serde(default)]
    pub dropped_pins: usize,
}

fn type_name(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "string",
        toml::Value::Integer(_) => "integer",
        toml::Value::Float(_) => "float",
        toml::Value::Boolean(_) => "bool",
        toml::Value::Datetime(_) => "datetime",
        toml::Value::Array(_) => "array",
        toml::Value::Table(_) => "table",
    }
}

/// A value as shown in messages and seed keys (inline TOML).
fn show(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("{s:?}"),
        toml::Value::Table(t) => {
            let inner: Vec<String> = t
                .iter()
                .map(|(k, v)| format!("{k} = {}", show(v)))
                .collect();
            format!("{{ {} }}", inner.join(", "))
        }
        toml::Value::Array(a) => {
            format!("[{}]", a.iter().map(show).collect::<Vec<_>>().join(", "))
        }
        other => other.to_string(),
    }
}

fn lookup<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut parts = path.split('.');
    let mut cur = table.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_table()?.get(p)?;
    }
    Some(cur)
}

fn set(table: &mut toml::Table, path: &str, value: toml::Value) {
    let parts: Vec<&str> = path.split('.').collect();
    let mut cur = table;
    for p in &parts[..parts.len() - 1] {
        cur = cur
            .get_mut(*p)
            .and_then(toml::Value::as_table_mut)
            .expect("path checked before");
    }
    cur.insert(parts[parts.len() - 1].to_string(), value);
}

/// The seed of a task without a seed axis: the base seed mixed with the axis values by name.
pub fn task_seed(base_seed: u64, values: &[(String, toml::Value)]) -> u64 {
    let key: Vec<String> = values
        .iter()
        .map(|(p, v)| format!("{p}={}", show(v)))
        .collect();
    derived_seed(base_seed, &format!("sweep/{}", key.join("/"))) >> 1
}

fn read_sweep(path: &Path) -> Result<SweepFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return Err(bad_input(format!(
                "{}: cannot read sweep file: {e}",
                path.display()
            )))
        }
    };
    toml::from_str(&text)
        .map_err(|e| anyhow::Error::new(BadInput(e.to_string())))
        .with_context(|| path.display().to_string())
}

/// The tasks' axis values: `(path, value)` lists, in task order.
fn combinations(
    shown: &str,
    mode: Mode,
    axes: &[(String, Vec<toml::Value>)],
) -> Result<Vec<Vec<(String, toml::Value)>>> {
    if axes.is_empty() {
        return Err(bad_input(format!(
            "{shown}: axes: a sweep needs at least one axis"
        )));
    }
    match mode {
        Mode::Zip => {
            let n = axes[0].1.len();
            if axes.iter().any(|(_, v)| v.len() != n) {
                let lens: Vec<String> = axes
                    .iter()
                    .map(|(p, v)| format!("\"{p}\" has {}", v.len()))
                    .collect();
                return Err(bad_input(format!(
                    "{shown}: mode = \"zip\" needs axes of equal length: {}",
                    lens.join(", ")
                )));
            }
            Ok((0..n)
                .map(|i| {
                    axes.iter()
                        .map(|(p, v)| (p.clone(), v[i].clone()))
                        .collect()
                })
                .collect())
        }
        Mode::Product => {
            let mut out: Vec<Vec<(String, toml::Value)>> = vec![Vec::new()];
            for (p, values) in axes {
                out = out
                    .into_iter()
                    .flat_map(|prefix| {
                        values.iter().map(move |v| {
                            let mut t = prefix.clone();
                            t.push((p.clone(), v.clone()));
                            t
                        })
                    })
                    .collect();
            }
            Ok(out)
        }
    }
}

fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// `sweep expand`: validate the sweep and every task, then write `out` (atomically).
pub fn expand(sweep_path: &Path, out: &Path) -> Result<Outcome> {
    let shown = sweep_path.display().to_string();
    let sweep = read_sweep(sweep_path)?;
    let base_path = {
        let b = PathBuf::from(&sweep.base);
        if b.is_absolute() {
            b
        } else {
            sweep_path.parent().unwrap_or(Path::new(".")).join(b)
        }
    };
    let base_text = std::fs::read_to_string(&base_path).map_err(|e| {
        bad_input(format!(
            "{shown}: base = {:?}: cannot read {}: {e}",
            sweep.base,
            base_path.display()
        ))
    })?;
    let base: toml::Table = toml::from_str(&base_text)
        .map_err(|e| anyhow::Error::new(BadInput(e.to_string())))
        .with_context(|| base_path.display().to_string())?;
    let header = crate::manifest::read(&base_path, &base_path.display().to_string())?.header;

    // Axes: existing paths, non-empty lists of values of the field's type.
    let mut axes: Vec<(String, Vec<toml::Value>)> = Vec::new();
    for (path, values) in &sweep.axes {
        let existing = lookup(&base, path).ok_or_else(|| {
            bad_input(format!(
                "{shown}: axes.\"{path}\": no field `{path}` in the base manifest {}",
                base_path.display()
            ))
        })?;
        let values = match values {
            toml::Value::Array(a) if !a.is_empty() => a.clone(),
            other => {
                return Err(bad_input(format!(
                    "{shown}: axes.\"{path}\": expected a non-empty list of values, got {}",
                    show(other)
                )))
            }
        };
        for v in &values {
            if type_name(v) != type_name(existing) {
                return Err(bad_input(format!(
                    "{shown}: axes.\"{path}\": value {} is a {} but `{path}` is a {} in the base manifest",
                    show(v),
                    type_name(v),
                    type_name(existing)
                )));
            }
            if path == SEED_AXIS && v.as_integer().is_some_and(|s| s < 0) {
                return Err(bad_input(format!(
                    "{shown}: axes.\"{path}\": value {} is not a valid seed (must be >= 0)",
                    show(v)
                )));
            }
        }
        if path == "experiment.name" || path == "experiment.kind" {
            return Err(bad_input(format!(
                "{shown}: axes.\"{path}\": cannot be swept (tasks are named <base name>-<i>, and all share the base's kind)"
            )));
        }
        axes.push((path.clone(), values));
    }
    let combos = combinations(&shown, sweep.mode, &axes)?;

    // Build and validate every task in a temp dir, then move it into place.
    if out.join("index.json").exists() {
        return Err(bad_input(format!(
            "--out {}: already holds an expanded sweep (index.json); choose another directory or remove it",
            out.display()
        )));
    }
    // The directory is created atomically: never replace one that holds anything.
    if std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(bad_input(format!(
            "--out {}: exists and is not empty; choose a new directory",
            out.display()
        )));
    }
    let golden = harness::golden_path(&base_path);
    let staging = crate::output::OutputDir::create(out)?;
    let tasks_dir = staging.path().join("tasks");
    std::fs::create_dir_all(&tasks_dir)
        .with_context(|| format!("cannot create {}", tasks_dir.display()))?;
    let mut tasks = Vec::new();
    let mut dropped_pins = 0;
    for (i, values) in combos.iter().enumerate() {
        let mut table = base.clone();
        let non_seed: Vec<(String, toml::Value)> = values
            .iter()
            .filter(|(p, _)| p != SEED_AXIS)
            .cloned()
            .collect();
        for (p, v) in values {
            set(&mut table, p, v.clone());
        }
        let seed = match values.iter().find(|(p, _)| p == SEED_AXIS) {
            Some((_, v)) => v.as_integer().unwrap_or_default() as u64,
            None => task_seed(header.seed, &non_seed),
        };
        let name = format!("{}-{i}", header.name);
        set(
            &mut table,
            "experiment.seed",
            toml::Value::Integer(seed as i64),
        );
        set(
            &mut table,
            "experiment.name",
            toml::Value::String(name.clone()),
        );
        let text = toml::to_string(&table).context("cannot serialise a task manifest")?;
        let rel = format!("tasks/{i}.toml");
        let path = staging.path().join(&rel);
        let described: Vec<String> = values
            .iter()
            .map(|(p, v)| format!("{p} = {}", show(v)))
            .collect();
        let text = format!(
            "# Task {i} of sweep {shown} (base {}): {}\n{text}",
            base_path.display(),
            described.join(", ")
        );
        write_text(&path, &text)?;
        if golden.exists() {
            let header = format!(
                "The checks of {} for task {i} of sweep {shown}, without its regression pins\n\
                 (`pin = true`: they hold for the base manifest's exact numbers only).",
                golden.display()
            );
            match Golden::without_pins(&golden, &header)? {
                Some((text, dropped)) => {
                    write_text(&harness::golden_path(&path), &text)?;
                    dropped_pins = dropped;
                }
                None => {
                    std::fs::copy(&golden, harness::golden_path(&path))
                        .with_context(|| format!("cannot copy {}", golden.display()))?;
                }
            }
        }
        harness::validate_manifest(&path, Path::new(&rel))
            .with_context(|| format!("{shown}: task {i} ({})", described.join(", ")))?;
        tasks.push(TaskEntry {
            index: i,
            name,
            axes: values
                .iter()
                .map(|(p, v)| (p.clone(), toml_to_json(v)))
                .collect(),
            seed,
            manifest: rel,
        });
    }
    let index = Index {
        sweep: shown.clone(),
        base: std::fs::canonicalize(&base_path)
            .unwrap_or(base_path.clone())
            .display()
            .to_string(),
        base_name: header.name.clone(),
        kind: header.kind.clone(),
        mode: sweep.mode,
        axes: axes.iter().map(|(p, _)| p.clone()).collect(),
        tasks,
        dropped_pins,
    };
    write_json(&staging.path().join("index.json"), &index)?;
    let n = index.tasks.len();
    let final_path = staging.commit()?;
    println!(
        "{shown}: {n} task(s) ({} of {}) written to {} (tasks/<i>.toml, index.json)",
        match sweep.mode {
            Mode::Product => "product",
            Mode::Zip => "zip",
        },
        index.axes.join(", "),
        final_path.display()
    );
    if dropped_pins > 0 {
        println!(
            "{shown}: the tasks' golden files leave out the base's {dropped_pins} regression pin(s) \
             (`pin = true`: they hold for the base manifest's exact numbers only)"
        );
    }
    Ok(Outcome::Success)
}

/// Read `DIR/index.json`.
pub fn read_index(dir: &Path) -> Result<Index> {
    let p = dir.join("index.json");
    let text = std::fs::read_to_string(&p).map_err(|e| {
        bad_input(format!(
            "{}: not an expanded sweep ({} : {e}); run `cargo xtask sweep expand` first",
            dir.display(),
            p.display()
        ))
    })?;
    serde_json::from_str(&text)
        .map_err(|e| anyhow::Error::new(BadInput(e.to_string())))
        .with_context(|| p.display().to_string())
}

/// The task index: `--index`, else `SLURM_ARRAY_TASK_ID`, else `JOB_COMPLETION_INDEX`.
fn task_index(given: Option<usize>, n: usize) -> Result<usize> {
    let (i, source) = match given {
        Some(i) => (i, "--index".to_string()),
        None => {
            let mut found = None;
            for var in ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"] {
                if let Ok(v) = std::env::var(var) {
                    let i = v
                        .trim()
                        .parse::<usize>()
                        .map_err(|_| bad_input(format!("{var} = {v:?} is not a task index")))?;
                    found = Some((i, var.to_string()));
                    break;
                }
            }
            found.ok_or_else(|| {
                bad_input(
                    "no task index: give --index I (or set SLURM_ARRAY_TASK_ID / JOB_COMPLETION_INDEX)",
                )
            })?
        }
    };
    if i >= n {
        return Err(bad_input(format!(
            "{source} = {i} is out of range: the sweep has {n} task(s) (0..={})",
            n.saturating_sub(1)
        )));
    }
    Ok(i)
}

/// `sweep run DIR [--index I] [--resume]`: run one task into `DIR/runs/<i>/`.
pub fn run(dir: &Path, index: Option<usize>, resume: bool) -> Result<Outcome> {
    let idx = read_index(dir)?;
    let i = task_index(index, idx.tasks.len())?;
    let task = &idx.tasks[i];
    let manifest = dir.join(&task.manifest);
    println!(
        "sweep task {i}/{}: {} (seed {}, {})",
        idx.tasks.len(),
        task.name,
        task.seed,
        axes_text(task)
    );
    // A killed earlier attempt (scancel, time limit) leaves its `<i>.tmp-<pid>` behind; a task
    // runs once at a time, so such leftovers are stale.
    let runs = dir.join("runs");
    if let Ok(entries) = std::fs::read_dir(&runs) {
        let prefix = format!("{i}.tmp-");
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    harness::run_manifest(&manifest, &manifest, Some(runs.join(i.to_string())), resume)
}

fn axes_text(task: &TaskEntry) -> String {
    task.axes
        .iter()
        .map(|(p, v)| format!("{p} = {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `sweep local DIR -j N`: every task here, N at a time, as child processes of this binary.
pub fn local(dir: &Path, jobs: usize, resume: bool) -> Result<Outcome> {
    if jobs == 0 {
        return Err(bad_input("-j 0: need at least one job"));
    }
    let idx = read_index(dir)?;
    let exe = std::env::current_exe().context("cannot locate the xtask binary")?;
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    // Results do not depend on the thread count; split the cores among the jobs.
    let threads = std::env::var("RAYON_NUM_THREADS").ok().unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / jobs).max(1).to_string()
    });
    let start = Instant::now();
    let mut pending: Vec<usize> = (0..idx.tasks.len()).rev().collect();
    let mut running: Vec<(usize, Child, Instant)> = Vec::new();
    let mut failed = Vec::new();
    while !pending.is_empty() || !running.is_empty() {
        while running.len() < jobs {
            let Some(i) = pending.pop() else { break };
            let log_path = logs.join(format!("{i}.log"));
            let log = std::fs::File::create(&log_path)
                .with_context(|| format!("cannot create {}", log_path.display()))?;
            let mut cmd = Command::new(&exe);
            cmd.arg("sweep")
                .arg("run")
                .arg(dir)
                .arg("--index")
                .arg(i.to_string())
                .env("RAYON_NUM_THREADS", &threads)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log);
            if resume {
                cmd.arg("--resume");
            }
            let child = cmd
                .spawn()
                .with_context(|| format!("cannot start {}", exe.display()))?;
            println!("task {i}: started (log {})", log_path.display());
            running.push((i, child, Instant::now()));
        }
        std::thread::sleep(Duration::from_millis(100));
        let mut k = 0;
        while k < running.len() {
            if let Some(status) = running[k].1.try_wait()? {
                let (i, _, t0) = running.swap_remove(k);
                let secs = t0.elapsed().as_secs_f64();
                match status.code() {
                    Some(0) => println!("task {i}: done in {secs:.1} s"),
                    Some(1) if has_result(dir, i) => {
                        println!("task {i}: done in {secs:.1} s, but golden checks FAILED (see its report.md)");
                        failed.push(i);
                    }
                    code => {
                        println!(
                            "task {i}: FAILED (exit {}) after {secs:.1} s; see {}",
                            code.map_or("signal".into(), |c| c.to_string()),
                            logs.join(format!("{i}.log")).display()
                        );
                        failed.push(i);
                    }
                }
            } else {
                k += 1;
            }
        }
    }
    failed.sort_unstable();
    println!(
        "{} task(s) in {:.1} s; {} failed (error or golden checks){}",
        idx.tasks.len(),
        start.elapsed().as_secs_f64(),
        failed.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(": {failed:?}")
        }
    );
    Ok(if failed.is_empty() {
        Outcome::Success
    } else {
        Outcome::GoldenFailed
    })
}

/// Options of `sweep submit`.
#[derive(Debug, Clone, Default)]
pub struct SubmitOptions {
    /// At most this many array tasks at once (`%K`).
    pub concurrency: Option<usize>,
    /// `--time` (default by kind).
    pub time: Option<String>,
    /// `--mem` (default: estimated from the tasks' manifests).
    pub mem: Option<String>,
    /// `--cpus-per-task` (default by kind).
    pub cpus: Option<usize>,
    /// `--partition`.
    pub partition: Option<String>,
    /// Only the tasks without `runs/<i>/metrics.json`.
    pub resubmit_failed: bool,
    /// Write the script, do not call sbatch.
    pub dry_run: bool,
}

/// Default `(time, cpus)` of a kind: the network-training kinds need more (memory is estimated
/// from the manifests, [`estimated_mem_mib`]).
fn default_resources(kind: &str) -> (&'static str, usize) {
    match kind {
        "smoluchowski" | "langevin" | "fokker_planck" | "fokker-planck" | "ring2d_oracle"
        | "ring2d-oracle" => ("00:30:00", 1),
        k if k.contains("mnist") => ("12:00:00", 2),
        _ => ("04:00:00", 2),
    }
}

/// Memory of the process itself beside what its manifest sizes: the binary, thread stacks,
/// data sets read whole (MNIST: 0.2 GiB), figure buffers.
const PROCESS_MIB: u128 = 512;

/// `--mem` estimated from the tasks' manifests, in MiB: for each task the memory estimates its
/// validation checks against this machine (the same estimates that reject an oversized field,
/// [`harness::memory_estimates`]) added up, as if every sized allocation were live at once,
/// plus [`PROCESS_MIB`], times 1.25, rounded up to 256 MiB; the largest task sets the array's
/// request. Returns the MiB and a one-line account naming that task's largest fields.
fn estimated_mem_mib(dir: &Path, idx: &Index, indices: &[usize]) -> Result<(u128, String)> {
    let mut best: Option<(u128, usize, Vec<smoluchowski::core::MemoryEstimate>)> = None;
    for &i in indices {
        let task = &idx.tasks[i];
        let path = dir.join(&task.manifest);
        let estimates = harness::memory_estimates(&path, Path::new(&task.manifest))
            .with_context(|| format!("task {i}: {}", path.display()))?;
        let bytes: u128 = estimates
            .iter()
            .map(|e| e.bytes)
            .fold(0, u128::saturating_add);
        if best.as_ref().is_none_or(|b| bytes > b.0) {
            best = Some((bytes, i, estimates));
        }
    }
    let (bytes, i, mut estimates) = best.unwrap_or((0, 0, Vec::new()));
    let mib = (bytes.div_ceil(1 << 20) + PROCESS_MIB)
        .saturating_mul(5)
        .div_ceil(4);
    let mib = mib.div_ceil(256).saturating_mul(256);
    estimates = smoluchowski::core::sum_by_path(estimates);
    estimates.sort_by_key(|e| std::cmp::Reverse(e.bytes));
    let largest: Vec<String> = estimates
        .iter()
        .take(3)
        .map(|e| {
            format!(
                "{} = {} ({})",
                e.path,
                e.value,
                smoluchowski::core::memory::human_bytes(e.bytes)
            )
        })
        .collect();
    let account = format!(
        "largest task {i}: {} estimated ({}) + {PROCESS_MIB} MiB for the process, x 1.25",
        smoluchowski::core::memory::human_bytes(bytes),
        if largest.is_empty() {
            "no sized fields".to_string()
        } else {
            largest.join(", ")
        }
    );
    Ok((mib, account))
}

/// Indices without a complete result (`runs/<i>/metrics.json` missing).
pub fn incomplete(dir: &Path, idx: &Index) -> Vec<usize> {
    idx.tasks
        .iter()
        .filter(|t| {
            !dir.join("runs")
                .join(t.index.to_string())
                .join("metrics.json")
                .exists()
        })
        .map(|t| t.index)
        .collect()
}

/// The sbatch `--array` value for `indices` (a range when contiguous from 0).
pub fn array_spec(indices: &[usize], concurrency: Option<usize>) -> String {
    let contiguous = indices.iter().enumerate().all(|(k, &i)| k == i);
    let mut s = if contiguous && !indices.is_empty() {
        format!("0-{}", indices.len() - 1)
    } else {
        indices
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    if let Some(k) = concurrency {
        let _ = write!(s, "%{k}");
    }
    s
}

/// `sweep submit DIR --slurm`: write `DIR/slurm/array.sbatch` and submit it with sbatch.
pub fn submit(dir: &Path, opts: &SubmitOptions) -> Result<Outcome> {
    if opts.concurrency == Some(0) {
        return Err(bad_input("--concurrency 0: need at least 1"));
    }
    if opts.cpus == Some(0) {
        return Err(bad_input("--cpus 0: need at least 1"));
    }
    let idx = read_index(dir)?;
    let dir = std::fs::canonicalize(dir).with_context(|| format!("{}", dir.display()))?;
    let indices: Vec<usize> = if opts.resubmit_failed {
        incomplete(&dir, &idx)
    } else {
        (0..idx.tasks.len()).collect()
    };
    if indices.is_empty() {
        println!(
            "{}: every task has a complete result; nothing to resubmit",
            dir.display()
        );
        return Ok(Outcome::Success);
    }
    let (time, cpus) = default_resources(&idx.kind);
    let time = opts.time.clone().unwrap_or(time.to_string());
    let (mem, mem_account) = match &opts.mem {
        Some(m) => (m.clone(), "given by --mem".to_string()),
        None => {
            let (mib, account) = estimated_mem_mib(&dir, &idx, &indices)?;
            (
                format!("{mib}M"),
                format!("estimated from the manifests: {account}"),
            )
        }
    };
    let cpus = opts.cpus.unwrap_or(cpus);
    let exe = std::env::current_exe().context("cannot locate the xtask binary")?;
    let logs = dir.join("logs");
    let slurm = dir.join("slurm");
    for d in [&logs, &slurm] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let mut script = String::from("#!/bin/bash\n");
    let _ = writeln!(
        script,
        "# Sweep {} ({} task(s)); written by `cargo xtask sweep submit`.",
        idx.sweep,
        idx.tasks.len()
    );
    let _ = writeln!(script, "#SBATCH --job-name={}", idx.base_name);
    let _ = writeln!(
        script,
        "#SBATCH --array={}",
        array_spec(&indices, opts.concurrency)
    );
    let _ = writeln!(script, "#SBATCH --output={}/%a.log", logs.display());
    let _ = writeln!(script, "#SBATCH --open-mode=append");
    let _ = writeln!(script, "#SBATCH --time={time}");
    let _ = writeln!(script, "#SBATCH --mem={mem}");
    let _ = writeln!(script, "# --mem {mem_account}");
    let _ = writeln!(script, "#SBATCH --cpus-per-task={cpus}");
    if let Some(p) = &opts.partition {
        let _ = writeln!(script, "#SBATCH --partition={p}");
    }
    script.push_str("set -euo pipefail\n");
    script.push_str("export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"\n");
    script.push_str("echo \"== $(date -u +%FT%TZ) job ${SLURM_JOB_ID:-?} task ${SLURM_ARRAY_TASK_ID:-?} on $(hostname)\"\n");
    let _ = writeln!(
        script,
        "exec '{}' sweep run '{}' --resume",
        exe.display(),
        dir.display()
    );
    let name = if opts.resubmit_failed {
        "resubmit.sbatch"
    } else {
        "array.sbatch"
    };
    let path = slurm.join(name);
    write_text(&path, &script)?;
    println!(
        "wrote {} ({} task(s): --array={})",
        path.display(),
        indices.len(),
        array_spec(&indices, opts.concurrency)
    );
    if opts.dry_run {
        println!(
            "--dry-run: not submitted (sbatch --parsable {})",
            path.display()
        );
        return Ok(Outcome::Success);
    }
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(&path)
        .output()
        .map_err(|e| {
            anyhow::anyhow!("cannot run sbatch ({e}); is Slurm installed and SLURM_CONF set?")
        })?;
    if !out.status.success() {
        anyhow::bail!(
            "sbatch failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let job = String::from_utf8_lossy(&out.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut jobs = std::fs::read_to_string(slurm.join("jobs.txt")).unwrap_or_default();
    let _ = writeln!(
        jobs,
        "{job} {name} --array={}",
        array_spec(&indices, opts.concurrency)
    );
    write_text(&slurm.join("jobs.txt"), &jobs)?;
    println!("submitted job {job}");
    println!("{job}");
    Ok(Outcome::Success)
}

/// A numeric column of the table: a statistic's field.
fn stat_columns(m: &Metrics) -> Vec<(String, f64)> {
    let mut cols = Vec::new();
    for (k, s) in &m.statistics {
        match s {
            Statistic::Ks { statistic, pvalue } => {
                cols.push((format!("{k}.statistic"), *statistic));
                cols.push((format!("{k}.pvalue"), *pvalue));
            }
            Statistic::Value { value } => cols.push((k.clone(), *value)),
        }
    }
    cols
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn num(v: f64) -> String {
    if v.is_nan() {
        String::new()
    } else {
        format!("{v:.6e}")
    }
}

/// One task's collected row.
struct Row<'a> {
    task: &'a TaskEntry,
    metrics: Option<Metrics>,
    values: BTreeMap<String, f64>,
}

/// `sweep collect DIR [--plot STAT --against AXIS]`.
pub fn collect(dir: &Path, plot: Option<(&str, &str)>) -> Result<Outcome> {
    let idx = read_index(dir)?;
    let mut rows = Vec::new();
    for t in &idx.tasks {
        let p = dir
            .join("runs")
            .join(t.index.to_string())
            .join("metrics.json");
        let metrics: Option<Metrics> = std::fs::read_to_string(&p)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok());
        let values = metrics
            .as_ref()
            .map(|m| stat_columns(m).into_iter().collect())
            .unwrap_or_default();
        rows.push(Row {
            task: t,
            metrics,
            values,
        });
    }
    let columns: BTreeSet<String> = rows.iter().flat_map(|r| r.values.keys().cloned()).collect();
    // Validate --plot before writing anything.
    if let Some((stat, axis)) = plot {
        if !idx.axes.iter().any(|a| a == axis) {
            return Err(bad_input(format!(
                "--against {axis:?}: not an axis of this sweep (axes: {})",
                idx.axes.join(", ")
            )));
        }
        if !columns.contains(stat) && !rows.iter().all(|r| r.metrics.is_none()) {
            return Err(bad_input(format!(
                "--plot {stat:?}: no such statistic (known: {})",
                columns.iter().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        if idx.tasks.iter().any(|t| {
            t.axes
                .get(axis)
                .and_then(serde_json::Value::as_f64)
                .is_none()
        }) {
            return Err(bad_input(format!(
                "--against {axis:?}: the axis's values are not numbers"
            )));
        }
    }

    // Per-task table.
    let mut header: Vec<String> = vec!["index".into(), "name".into()];
    header.extend(idx.axes.iter().cloned());
    header.extend(["seed", "status", "golden_passed", "wall_time_s"].map(String::from));
    header.extend(columns.iter().cloned());
    let mut table: Vec<Vec<String>> = Vec::new();
    let mut missing = Vec::new();
    for r in &rows {
        let mut row = vec![r.task.index.to_string(), r.task.name.clone()];
        row.extend(
            idx.axes
                .iter()
                .map(|a| r.task.axes.get(a).map(json_text).unwrap_or_default()),
        );
        row.push(r.task.seed.to_string());
        match &r.metrics {
            Some(m) => {
                let passed = m.golden.checks.iter().filter(|c| c.pass).count();
                row.push(
                    if m.golden.passed {
                        "ok"
                    } else {
                        "golden-failed"
                    }
                    .into(),
                );
                row.push(format!("{passed}/{}", m.golden.checks.len()));
                row.push(
                    m.wall_time_s
                        .get("total")
                        .map(|t| format!("{t:.1}"))
                        .unwrap_or_default(),
                );
            }
            None => {
                missing.push(r.task.index);
                row.extend(["missing".to_string(), String::new(), String::new()]);
            }
        }
        row.extend(
            columns
                .iter()
                .map(|c| r.values.get(c).map_or(String::new(), |v| num(*v))),
        );
        table.push(row);
    }
    let mut csv = String::new();
    for row in std::iter::once(&header).chain(&table) {
        csv.push_str(
            &row.iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        csv.push('\n');
    }
    write_text(&dir.join("table.csv"), &csv)?;

    // Summaries over seeds: group by the non-seed axes.
    let group_axes: Vec<&String> = idx.axes.iter().filter(|a| *a != SEED_AXIS).collect();
    let mut groups: BTreeMap<Vec<String>, Vec<&Row>> = BTreeMap::new();
    for r in &rows {
        let key = group_axes
            .iter()
            .map(|a| r.task.axes.get(*a).map(json_text).unwrap_or_default())
            .collect();
        groups.entry(key).or_default().push(r);
    }
    let mut summary_header: Vec<String> = group_axes.iter().map(|a| (*a).clone()).collect();
    summary_header.extend(
        [
            "tasks",
            "complete",
            "golden_all_passed",
            "statistic",
            "n",
            "mean",
            "sd",
            "min",
            "max",
        ]
        .map(String::from),
    );
    let mut summary: Vec<Vec<String>> = Vec::new();
    for (key, members) in &groups {
        let done: Vec<&&Row> = members.iter().filter(|r| r.metrics.is_some()).collect();
        let (checks_passed, checks_total) = done.iter().fold((0, 0), |(p, t), r| {
            let c = r.metrics.as_ref().map_or(&[][..], |m| &m.golden.checks[..]);
            (p + c.iter().filter(|c| c.pass).count(), t + c.len())
        });
        let all_passed = done
            .iter()
            .filter(|r| r.metrics.as_ref().is_some_and(|m| m.golden.passed))
            .count();
        for c in &columns {
            let xs: Vec<f64> = done
                .iter()
                .filter_map(|r| r.values.get(c).copied())
                .collect();
            let n = xs.len();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let sd = if n > 1 {
                (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
            } else {
                f64::NAN
            };
            let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
            let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut row = key.clone();
            row.extend([
                members.len().to_string(),
                done.len().to_string(),
                format!("{all_passed}/{}", done.len()),
                format!("{checks_passed}/{checks_total}"),
                c.clone(),
                n.to_string(),
                if n > 0 { num(mean) } else { String::new() },
                num(sd),
                if n > 0 { num(min) } else { String::new() },
                if n > 0 { num(max) } else { String::new() },
            ]);
            summary.push(row);
        }
    }
    let mut scsv = String::new();
    for row in std::iter::once(&summary_header).chain(&summary) {
        scsv.push_str(
            &row.iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        scsv.push('\n');
    }
    write_text(&dir.join("summary.csv"), &scsv)?;

    // Figure.
    let mut figure = None;
    if let Some((stat, axis)) = plot {
        let pts: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| {
                let x = r.task.axes.get(axis)?.as_f64()?;
                Some((x, *r.values.get(stat)?))
            })
            .collect();
        let mut by_x: BTreeMap<u64, (f64, f64, usize)> = BTreeMap::new();
        for &(x, y) in &pts {
            let e = by_x.entry(x.to_bits()).or_insert((x, 0.0, 0));
            e.1 += y;
            e.2 += 1;
        }
        let mut means: Vec<(f64, f64)> =
            by_x.values().map(|&(x, s, n)| (x, s / n as f64)).collect();
        means.sort_by(|a, b| a.0.total_cmp(&b.0));
        let file = format!(
            "{}-vs-{}.png",
            stat.replace(
                |c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '_',
                "_"
            ),
            axis.replace(
                |c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '_',
                "_"
            )
        );
        let panel = smoluchowski::figures::Panel {
            title: format!("{stat} against {axis} ({} task(s))", pts.len()),
            x_label: axis.to_string(),
            y_label: stat.to_string(),
            points: vec![smoluchowski::figures::Points {
                points: pts.clone(),
                color: smoluchowski::figures::palette::DATA,
                alpha: 0.8,
                radius: 4,
            }],
            lines: vec![smoluchowski::figures::Line {
                points: means,
                color: smoluchowski::figures::palette::EXACT,
                alpha: 1.0,
                width: 2,
                label: Some("mean over tasks".into()),
            }],
            ..Default::default()
        };
        smoluchowski::figures::draw_row(&dir.join(&file), &[panel], (800, 560))
            .with_context(|| format!("cannot draw {file}"))?;
        figure = Some(file);
    }

    // Markdown.
    let mut md = format!(
        "# Sweep {} ({} task(s), base {}, {} of {})\n\n",
        idx.sweep,
        idx.tasks.len(),
        idx.base,
        match idx.mode {
            Mode::Product => "product",
            Mode::Zip => "zip",
        },
        idx.axes.join(", ")
    );
    let _ = writeln!(
        md,
        "{} of {} task(s) complete; tables also in `table.csv` and `summary.csv`.\n",
        idx.tasks.len() - missing.len(),
        idx.tasks.len()
    );
    if idx.dropped_pins > 0 {
        let _ = writeln!(
            md,
            "`golden_passed` counts the base's golden checks without its {} regression pin(s) \
             (`pin = true`), which hold for the base manifest's exact numbers only.\n",
            idx.dropped_pins
        );
    }
    md_table(&mut md, &header, &table);
    md.push_str("\n## Summaries over seeds\n\n");
    let _ = writeln!(
        md,
        "Grouped by {}: mean, sample sd, min and max of each statistic over the group's complete tasks.\n",
        if group_axes.is_empty() {
            "nothing (one group)".to_string()
        } else {
            group_axes.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
        }
    );
    md_table(&mut md, &summary_header, &summary);
    if let Some(f) = &figure {
        let _ = writeln!(md, "\n## Figure\n\n![{f}]({f})");
    }
    md.push_str("\n## Missing or failed tasks\n\n");
    if missing.is_empty() {
        md.push_str("None.\n");
    } else {
        for i in &missing {
            let _ = writeln!(
                md,
                "- task {i}: no result; log `{}`",
                log_path(dir, *i).display()
            );
        }
    }
    write_text(&dir.join("report.md"), &md)?;

    let complete = idx.tasks.len() - missing.len();
    let golden_ok = rows
        .iter()
        .filter(|r| r.metrics.as_ref().is_some_and(|m| m.golden.passed))
        .count();
    println!(
        "{}: {complete}/{} task(s) complete, {golden_ok}/{complete} passed their golden checks; wrote table.csv, summary.csv, report.md{}",
        dir.display(),
        idx.tasks.len(),
        figure.map(|f| format!(", {f}")).unwrap_or_default()
    );
    if !missing.is_empty() {
        println!("MISSING or FAILED ({}): {:?}", missing.len(), missing);
        for i in &missing {
            let log = log_path(dir, *i);
            let last = std::fs::read_to_string(&log).ok().and_then(|s| {
                s.lines()
                    .rev()
                    .find(|l| l.contains("error"))
                    .map(str::to_string)
            });
            println!(
                "  task {i}: log {}{}",
                log.display(),
                match last {
                    Some(l) => format!(" ({})", l.trim()),
                    None if !log.exists() => " (no log: not started)".to_string(),
                    None => String::new(),
                }
            );
        }
    }
    Ok(Outcome::Success)
}

fn has_result(dir: &Path, i: usize) -> bool {
    dir.join("runs")
        .join(i.to_string())
        .join("metrics.json")
        .exists()
}

fn log_path(dir: &Path, i: usize) -> PathBuf {
    dir.join("logs").join(format!("{i}.log"))
}

fn md_table(md: &mut String, header: &[String], rows: &[Vec<String>]) {
    let esc = |s: &str| s.replace('|', "\\|");
    let _ = writeln!(
        md,
        "| {} |",
        header
            .iter()
            .map(|h| esc(h))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(md, "|{}", "---|".repeat(header.len()));
    for r in rows {
        let _ = writeln!(
            md,
            "| {} |",
            r.iter().map(|h| esc(h)).collect::<Vec<_>>().join(" | ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_specs() {
        assert_eq!(array_spec(&[0, 1, 2, 3], Some(2)), "0-3%2");
        assert_eq!(array_spec(&[0, 1, 2], None), "0-2");
        assert_eq!(array_spec(&[1, 3], None), "1,3");
    }

    #[test]
    fn seeds_depend_on_values_not_positions() {
        let a = vec![("x.y".to_string(), toml::Value::Integer(1))];
        let b = vec![("x.y".to_string(), toml::Value::Integer(2))];
        assert_eq!(task_seed(5, &a), task_seed(5, &a));
        assert_ne!(task_seed(5, &a), task_seed(5, &b));
        assert!(task_seed(5, &a) <= i64::MAX as u64);
    }
}
