//! `cargo xtask`: the smoluchowski harness.
//!
//! ```text
//! cargo xtask reproduce <name> [--out DIR] [--resume]   # run experiments/<name>.toml
//! cargo xtask run <manifest.toml> [--out DIR] [--resume]
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
    /// Throughput of the part-2 recipe: training steps/s, reverse-SDE and probability-flow Heun
    /// sample-steps/s at batch 1e5, peak memory (compare with benches/peer/peer.py).
    Bench {
        /// Print one JSON object (same keys as the PyTorch peer) instead of a table.
        #[arg(long)]
        json: bool,
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
