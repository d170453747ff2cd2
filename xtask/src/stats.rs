//! Typed statistics and the compute/render split of an experiment.
//!
//! An experiment declares its statistics as a struct (nested structs and maps allowed) whose
//! leaves are [`Ks`] (a Kolmogorov–Smirnov result) or [`Value`] (a number). Its serde form is
//! flattened into the dotted keys of `metrics.json` (`free_diffusion.ks_t_check`, ...): the
//! keys a golden file is checked against before the run come from [`TypedExperiment::declared`]
//! and the keys the run writes from the struct it returns — the same type, flattened by the
//! same function, so declared equals produced by construction (maps keyed by manifest names
//! are filled from the same manifest on both sides).

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use crate::harness::{Experiment, Figure, RunContext, RunResults, StatKind, Statistic};
use crate::manifest::ExperimentHeader;

/// A Kolmogorov–Smirnov result: `D` and its two-sided p-value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Ks {
    /// `D`.
    pub statistic: f64,
    /// Two-sided p-value.
    pub pvalue: f64,
}

impl From<smoluchowski::metrics::KsResult> for Ks {
    fn from(r: smoluchowski::metrics::KsResult) -> Self {
        Ks {
            statistic: r.statistic,
            pvalue: r.pvalue,
        }
    }
}

/// A plain number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Value {
    /// The number.
    pub value: f64,
}

impl From<f64> for Value {
    fn from(value: f64) -> Self {
        Value { value }
    }
}

/// Flattens a statistics struct into `metrics.json`'s dotted keys.
///
/// Panics if `stats` does not serialise to nested objects with [`Ks`] / [`Value`] leaves: that
/// is a programming error of the experiment's type, caught by its first test.
pub fn flatten<T: Serialize>(stats: &T) -> BTreeMap<String, Statistic> {
    let v = serde_json::to_value(stats).expect("statistics serialise");
    let mut out = BTreeMap::new();
    walk("", &v, &mut out);
    out
}

/// The keys and kinds of a statistics struct.
pub fn kinds<T: Serialize>(stats: &T) -> BTreeMap<String, StatKind> {
    flatten(stats)
        .into_iter()
        .map(|(k, s)| (k, s.kind()))
        .collect()
}

/// `null` is how serde_json writes a NaN.
fn number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Null => Some(f64::NAN),
        v => v.as_f64(),
    }
}

fn walk(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, Statistic>) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("statistic {prefix:?} is neither Ks, Value nor a group"));
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    let leaf = match keys.as_slice() {
        ["pvalue", "statistic"] => Some(Statistic::Ks {
            statistic: number(&obj["statistic"]).expect("number"),
            pvalue: number(&obj["pvalue"]).expect("number"),
        }),
        ["value"] => Some(Statistic::Value {
            value: number(&obj["value"]).expect("number"),
        }),
        _ => None,
    };
    match leaf {
        Some(s) if !prefix.is_empty() => {
            out.insert(prefix.to_string(), s);
        }
        _ => {
            for (k, child) in obj {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(&key, child, out);
            }
        }
    }
}

/// What rendering produces besides the files it writes: the report's material.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    /// Derived parameters, echoed in metrics.json.
    pub parameters: serde_json::Value,
    /// Figures, in report order.
    pub figures: Vec<Figure>,
    /// Other files `(name, description)`.
    pub files: Vec<(String, String)>,
    /// Report sections `(title, markdown)`.
    pub sections: Vec<(String, String)>,
}

/// An experiment written as compute (numbers, typed statistics) then render (files, figures,
/// report). Every `TypedExperiment` is an [`Experiment`] for the harness.
pub trait TypedExperiment: Serialize {
    /// The statistics struct.
    type Stats: Serialize;
    /// What compute hands to render (samples, curves, ...).
    type Computed;
    /// The `[experiment]` table.
    fn header(&self) -> &ExperimentHeader;
    /// The statistics this manifest produces, with placeholder values (their keys and kinds).
    fn declared(&self) -> Self::Stats;
    /// The numbers.
    fn compute(&self, ctx: &mut RunContext<'_>) -> Result<(Self::Stats, Self::Computed)>;
    /// Files, figures and report material from the numbers.
    fn render(
        &self,
        stats: &Self::Stats,
        computed: &Self::Computed,
        ctx: &mut RunContext<'_>,
    ) -> Result<Rendered>;
}

impl<T: TypedExperiment> Experiment for T {
    fn header(&self) -> &ExperimentHeader {
        TypedExperiment::header(self)
    }

    fn manifest_echo(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    fn statistics(&self) -> BTreeMap<String, StatKind> {
        kinds(&self.declared())
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<RunResults> {
        let (stats, computed) = self.compute(ctx)?;
        let r = self.render(&stats, &computed, ctx)?;
        Ok(RunResults {
            parameters: r.parameters,
            statistics: flatten(&stats),
            figures: r.figures,
            files: r.files,
            sections: r.sections,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Default)]
    struct Inner {
        ks: Ks,
        mean: Value,
    }

    #[derive(Serialize, Default)]
    struct Outer {
        a: Inner,
        runs: BTreeMap<String, Inner>,
        total: Value,
    }

    #[test]
    fn nested_structs_and_maps_flatten_to_dotted_keys() {
        let mut o = Outer::default();
        o.runs.insert("x".into(), Inner::default());
        o.total = f64::NAN.into();
        let k = kinds(&o);
        assert_eq!(
            k.keys().collect::<Vec<_>>(),
            ["a.ks", "a.mean", "runs.x.ks", "runs.x.mean", "total"]
        );
        assert_eq!(k["a.ks"], StatKind::Ks);
        assert_eq!(k["total"], StatKind::Value);
        assert!(flatten(&o)["total"].field("value").unwrap().is_nan());
    }
}
