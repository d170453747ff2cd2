//! `cargo xtask`: the smoluchowski harness.
//!
//! ```text
//! cargo xtask reproduce <name> [--out DIR] [--resume]   # run experiments/<name>.toml
//! cargo xtask run <manifest.toml> [--out DIR] [--resume]
//! cargo xtask sweep expand SWEEP --out DIR | run | local | submit | collect   # grids
//! cargo xtask list                                       # experiments and what they do
//! cargo xtask bench                                      # (slot: benchmarks come later)
//! ```
//!
//! Exit codes: 0 success, 1 runtime error or failed golden checks, 2 bad input (manifest,
//! golden file, command line).

use std::path::PathBuf;
use std::process::ExitCode;
use xtask::harness;

use clap::{Parser, Subcommand};

/// The smoluchowski harness: runs experiment manifests, writes reports, checks golden statistics.
#[derive(Parser, Debug)]
#[command(name = "cargo xtask", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a manifest (TOML) and check it against `<manifest stem>.golden.toml` next to it.
    Run {
        /// Path to the manifest, e.g. experiments/smoluchowski.toml.
        manifest: PathBuf,
        #[command(flatten)]
        opts: RunOpts,
    },
    /// Run `experiments/<name>.toml` of this workspace (works from any directory).
    Reproduce {
        /// Experiment name (see `cargo xtask list`).
        name: String,
        #[command(flatten)]
        opts: RunOpts,
    },
    /// List the experiments in `experiments/` with one-line descriptions.
    List,
    /// Seeded grids of one manifest: expand, run (here or as a Slurm job array), collect.
    Sweep {
        #[command(subcommand)]
        command: SweepCommand,
    },
    /// Throughput of the part-2 recipe: training steps/s, reverse-SDE and probability-flow Heun
    /// sample-steps/s at batch 1e5, peak memory (compare with benches/peer/peer.py).
    Bench {
        /// Print one JSON object (same keys as the PyTorch peer) instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum SweepCommand {
    /// Validate a sweep file and write DIR/tasks/<i>.toml and DIR/index.json.
    Expand {
        /// The sweep file, e.g. experiments/ring2d-seeds.sweep.toml.
        sweep: PathBuf,
        /// The sweep directory to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Run one task into DIR/runs/<i>/ (index: --index, else SLURM_ARRAY_TASK_ID, else
    /// JOB_COMPLETION_INDEX).
    Run {
        /// The expanded sweep directory.
        dir: PathBuf,
        /// The task index.
        #[arg(long)]
        index: Option<usize>,
        /// Continue from checkpoints; skip a task whose result is complete.
        #[arg(long)]
        resume: bool,
    },
    /// Run every task on this machine, N at a time (logs in DIR/logs/<i>.log).
    Local {
        /// The expanded sweep directory.
        dir: PathBuf,
        /// Tasks at once.
        #[arg(short = 'j', long = "jobs", default_value_t = 1)]
        jobs: usize,
        /// Continue from checkpoints; skip tasks whose result is complete.
        #[arg(long)]
        resume: bool,
    },
    /// Write DIR/slurm/array.sbatch (one array element per task) and submit it with sbatch.
    Submit {
        /// The expanded sweep directory.
        dir: PathBuf,
        /// Submit to Slurm (the only backend so far).
        #[arg(long)]
        slurm: bool,
        /// At most K array tasks at once (--array=...%K).
        #[arg(long)]
        concurrency: Option<usize>,
        /// Wall-time limit per task, e.g. 04:00:00 (default by experiment kind).
        #[arg(long)]
        time: Option<String>,
        /// Memory per task, e.g. 4G (default by experiment kind).
        #[arg(long)]
        mem: Option<String>,
        /// CPUs per task (default by experiment kind; sets RAYON_NUM_THREADS).
        #[arg(long)]
        cpus: Option<usize>,
        /// Slurm partition (default: the cluster's default).
        #[arg(long)]
        partition: Option<String>,
        /// Submit only tasks without DIR/runs/<i>/metrics.json (they resume from checkpoints).
        #[arg(long)]
        resubmit_failed: bool,
        /// Write the script, do not submit it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Tabulate every task's statistics (DIR/table.csv, summary.csv, report.md).
    Collect {
        /// The expanded sweep directory.
        dir: PathBuf,
        /// Plot this statistic (a table column, e.g. radial.ks.statistic) ...
        #[arg(long, requires = "against")]
        plot: Option<String>,
        /// ... against this axis (e.g. sampling.steps).
        #[arg(long, requires = "plot")]
        against: Option<String>,
    },
}

#[derive(clap::Args, Debug)]
struct RunOpts {
    /// Output directory (default: <workspace>/target/reproduce/<name>/). Replaced atomically.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Reuse checkpoints of an interrupted run of the same manifest, and skip the run
    /// entirely when the output directory already holds a complete run of it.
    #[arg(long)]
    resume: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { manifest, opts } => {
            harness::run_manifest(&manifest, &manifest, opts.out, opts.resume)
        }
        Command::Reproduce { name, opts } => harness::reproduce(&name, opts.out, opts.resume),
        Command::List => harness::list().map(|()| harness::Outcome::Success),
        Command::Sweep { command } => sweep(command),
        Command::Bench { json } => xtask::bench::run(json).map(|()| harness::Outcome::Success),
    };
    match result {
        Ok(harness::Outcome::Success) => ExitCode::SUCCESS,
        Ok(harness::Outcome::GoldenFailed) => ExitCode::from(1),
        Err(err) => {
            eprintln!("error: {}", format!("{err:#}").trim_end());
            if harness::is_bad_input(&err) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn sweep(command: SweepCommand) -> anyhow::Result<harness::Outcome> {
    use xtask::sweep;
    match command {
        SweepCommand::Expand { sweep: file, out } => sweep::expand(&file, &out),
        SweepCommand::Run { dir, index, resume } => sweep::run(&dir, index, resume),
        SweepCommand::Local { dir, jobs, resume } => sweep::local(&dir, jobs, resume),
        SweepCommand::Submit {
            dir,
            slurm,
            concurrency,
            time,
            mem,
            cpus,
            partition,
            resubmit_failed,
            dry_run,
        } => {
            if !slurm {
                return Err(xtask::validate::bad_input(
                    "sweep submit: choose a scheduler (--slurm)",
                ));
            }
            sweep::submit(
                &dir,
                &sweep::SubmitOptions {
                    concurrency,
                    time,
                    mem,
                    cpus,
                    partition,
                    resubmit_failed,
                    dry_run,
                },
            )
        }
        SweepCommand::Collect { dir, plot, against } => {
            sweep::collect(&dir, plot.as_deref().zip(against.as_deref()))
        }
    }
}
