//! Running an experiment manifest from a library call: xtask's harness unchanged (validation,
//! golden checks, atomic outputs), with its `metrics.json` handed back and its errors carrying
//! the CLI's messages and its bad-input / runtime distinction (exit 2 / exit 1).

use std::path::{Path, PathBuf};

use xtask::harness::{self, Outcome};

/// A finished run.
#[derive(Debug, Clone)]
pub struct ExperimentRun {
    /// The output directory.
    pub out: PathBuf,
    /// Its `metrics.json` (experiment, parameters, statistics, golden, wall times, version).
    pub metrics_json: String,
    /// Every golden check passed (the CLI's exit 0; `false` is its exit 1).
    pub golden_passed: bool,
}

/// A run that did not finish.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentError {
    /// The CLI's message (`error: <this>`), naming the field and value for bad input.
    pub message: String,
    /// Bad input (manifest, golden file, name): the CLI's exit code 2.
    pub bad_input: bool,
}

fn error(err: anyhow::Error) -> ExperimentError {
    ExperimentError {
        message: format!("{err:#}").trim_end().to_string(),
        bad_input: harness::is_bad_input(&err),
    }
}

/// The harness's default output directory of a manifest: `<workspace>/target/reproduce/<name>`.
fn default_out(manifest: &Path) -> Result<PathBuf, ExperimentError> {
    let m = xtask::manifest::read(manifest, &manifest.display().to_string()).map_err(error)?;
    Ok(harness::workspace_root()
        .join("target")
        .join("reproduce")
        .join(&m.header.name))
}

fn finish(
    outcome: anyhow::Result<Outcome>,
    out: PathBuf,
) -> Result<ExperimentRun, ExperimentError> {
    let outcome = outcome.map_err(error)?;
    let metrics = out.join("metrics.json");
    let metrics_json = std::fs::read_to_string(&metrics).map_err(|e| ExperimentError {
        message: format!("cannot read {}: {e}", metrics.display()),
        bad_input: false,
    })?;
    Ok(ExperimentRun {
        out,
        metrics_json,
        golden_passed: outcome == Outcome::Success,
    })
}

/// `cargo xtask run <manifest> [--out DIR] [--resume]`.
pub fn run_manifest(
    manifest: &Path,
    out: Option<PathBuf>,
    resume: bool,
) -> Result<ExperimentRun, ExperimentError> {
    let out = match out {
        Some(o) => o,
        None => default_out(manifest)?,
    };
    finish(
        harness::run_manifest(manifest, manifest, Some(out.clone()), resume),
        out,
    )
}

/// `cargo xtask reproduce <name> [--out DIR] [--resume]` (`experiments/<name>.toml` of the
/// workspace this package was built from).
pub fn reproduce(
    name: &str,
    out: Option<PathBuf>,
    resume: bool,
) -> Result<ExperimentRun, ExperimentError> {
    let manifest = harness::workspace_root()
        .join("experiments")
        .join(format!("{name}.toml"));
    let out = match out {
        Some(o) => o,
        // An unknown name: let the harness name the known experiments.
        None if !manifest.exists() => {
            return Err(error(harness::reproduce(name, None, resume).unwrap_err()))
        }
        None => default_out(&manifest)?,
    };
    finish(harness::reproduce(name, Some(out.clone()), resume), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_manifests_are_bad_input_with_the_clis_message() {
        let dir = std::env::temp_dir().join(format!("smoluchowski-python-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.toml");
        let text = std::fs::read_to_string(
            harness::workspace_root().join("experiments/smoluchowski.toml"),
        )
        .unwrap()
        .replace("diffusion = 0.5", "diffusion = -0.5");
        std::fs::write(&path, text).unwrap();
        let e = run_manifest(&path, Some(dir.join("out")), false).unwrap_err();
        assert!(e.bad_input, "{e:?}");
        assert!(
            e.message
                .contains("free_diffusion.diffusion must be > 0 (got -0.5)"),
            "{e:?}"
        );
        let e = reproduce("no-such-experiment", None, false).unwrap_err();
        assert!(
            e.bad_input && e.message.contains("no experiment `no-such-experiment`"),
            "{e:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
