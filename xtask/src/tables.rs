//! The manifest tables that several experiment kinds share: `[dataset]` (ring2d), `[sde]`
//! (the library's `SdeConfig`: OU, VP, sub-VP), `[training]` (a `TrainConfig` whose seed comes from the master seed), and the
//! validation of a `[network]` + `[training]` pair.

use serde::{Deserialize, Serialize};
use smoluchowski::losses::{train_memory_estimates, TrainConfig};
use smoluchowski::nets::ScoreNetConfig;
pub use smoluchowski::sde::{SdeConfig as SdeTable, SdeKind};

use crate::validate::Checker;

/// `[dataset]`: ring2d with radius `Gamma(scale, rate scale)`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetTable {
    /// The Gamma shape = rate `k` (the notes: 200).
    pub scale: f64,
}

/// `[training]`: a [`TrainConfig`] without its `seed`, which is derived from `experiment.seed`
/// (stream `training`) so the master seed is the one source of truth.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "toml::Table")]
pub struct TrainingTable(pub TrainConfig);

impl TryFrom<toml::Table> for TrainingTable {
    type Error = String;
    fn try_from(mut t: toml::Table) -> Result<Self, String> {
        if t.contains_key("seed") {
            return Err(
                "training.seed is not allowed: the training seed is derived from \
                        experiment.seed (the one source of truth)"
                    .into(),
            );
        }
        t.insert("seed".into(), toml::Value::Integer(0));
        toml::Value::Table(t)
            .try_into::<TrainConfig>()
            .map(TrainingTable)
            .map_err(|e| format!("in [training]: {}", e.message().trim_end()))
    }
}

/// The `[network]` and `[training]` tables of an experiment on `dim`-dimensional data: each
/// config's own validation (paths under `network.` / `training.`), the data dimension, and the
/// memory the training batch needs.
pub fn check_model(c: &mut Checker, network: &ScoreNetConfig, training: &TrainConfig, dim: usize) {
    if let Err(e) = network.validate() {
        c.fail(e.under("network").to_string());
    }
    c.require(
        network.dim == dim,
        "network.dim",
        &format!("{dim} (the data's dimension)"),
        network.dim,
    );
    match training.validate() {
        Err(e) => c.fail(e.under("training").to_string()),
        Ok(()) => c.memory("training", train_memory_estimates(training, network)),
    }
}
