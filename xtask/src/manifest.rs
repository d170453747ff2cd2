//! Manifests: TOML files with an `[experiment]` table plus kind-specific tables.
//!
//! Parsing is two-stage: stage 1 reads only `[experiment]` (to pick the kind); stage 2 parses
//! the whole document into that kind's struct, with `deny_unknown_fields` everywhere.

use std::path::Path;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::validate::{bad_input, BadInput, Checker};

/// The `[experiment]` table every manifest starts with.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentHeader {
    /// Experiment name (also the default output directory name): `[A-Za-z0-9_-]+`.
    pub name: String,
    /// Which experiment module runs it (see `cargo xtask list`).
    pub kind: String,
    /// One line saying what the experiment shows.
    pub description: String,
    /// Master seed; every random stream is derived from it by name.
    pub seed: u64,
}

impl ExperimentHeader {
    /// Check the header's fields.
    pub fn check(&self, c: &mut Checker) {
        c.name("experiment.name", &self.name);
    }
}

#[derive(Debug, Deserialize)]
struct Stage1 {
    experiment: ExperimentHeader,
}

/// A manifest's text and its parsed `[experiment]` table.
#[derive(Debug, Clone)]
pub struct ManifestText {
    /// The path as shown in messages.
    pub display: String,
    /// The file's contents.
    pub text: String,
    /// The parsed header.
    pub header: ExperimentHeader,
}

/// Stage 1: read `path` and parse its `[experiment]` table. `display` is how the path is shown.
pub fn read(path: &Path, display: &str) -> Result<ManifestText> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(bad_input(format!("{display}: manifest not found")));
        }
        Err(e) => {
            return Err(anyhow::Error::new(BadInput(e.to_string())))
                .with_context(|| format!("{display}: cannot read manifest"))
        }
    };
    let stage1: Stage1 = toml::from_str(&text)
        .map_err(|e| anyhow::Error::new(BadInput(e.to_string())))
        .with_context(|| display.to_string())?;
    let mut c = Checker::new();
    stage1.experiment.check(&mut c);
    c.finish().with_context(|| display.to_string())?;
    Ok(ManifestText {
        display: display.to_string(),
        text,
        header: stage1.experiment,
    })
}

/// Stage 2: parse the whole document into a kind's manifest struct `T`.
pub fn parse_as<T: DeserializeOwned>(m: &ManifestText) -> Result<T> {
    toml::from_str(&m.text)
        .map_err(|e| anyhow::Error::new(BadInput(e.to_string())))
        .with_context(|| m.display.clone())
}
