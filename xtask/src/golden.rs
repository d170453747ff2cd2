//! Golden statistics: `experiments/<name>.golden.toml`, a list of `[[check]]` tables.
//!
//! ```toml
//! [[check]]
//! stat = "free_diffusion.ks_t1"   # key into the run's statistics
//! kind = "not_rejected"           # KS test not rejected at level alpha: p-value >= alpha
//! alpha = 1e-3
//!
//! [[check]]
//! stat = "free_diffusion.ks_t1"
//! field = "statistic"             # "statistic" | "pvalue" for KS results, "value" otherwise
//! kind = "within"                 # |x - expected| <= tol
//! expected = 0.00123
//! tol = 0.002
//!
//! [[check]]
//! stat = "free_diffusion.ks_t1"
//! field = "statistic"
//! kind = "at_most"                # x <= bound   (and "at_least": x >= bound)
//! bound = 0.0062
//! note = "critical value of the KS test at alpha = 1e-3, n = 1e5"
//!
//! [[check]]
//! stat = "free_diffusion.ks_t1"
//! field = "statistic"
//! kind = "within"
//! expected = 0.0016137296604505358
//! tol = 1e-6
//! pin = true                      # a regression pin of this manifest's exact numbers
//! ```
//! A `pin = true` check holds only for the manifest as committed (its seed, its sizes): the run
//! is bit-reproducible, so a pinned value that moves means the streams or the numerics changed.
//! A sweep task differs from its base manifest by its seed or an axis value, so `cargo xtask
//! sweep expand` drops the pins from the golden file it copies next to each task (and says so);
//! the other checks (tests against exact laws, bounds) hold for any seed and stay.
//! The whole file is validated against the statistics an experiment declares before any work.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::harness::{StatKind, Statistic};
use crate::validate::{bad_input, fmt_f64, BadInput};

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct GoldenFile {
    #[serde(default)]
    check: Vec<CheckSpec>,
}

/// What a check asserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// KS test not rejected at level `alpha`: `pvalue >= alpha`.
    NotRejected,
    /// `|x − expected| ≤ tol`.
    Within,
    /// `x ≤ bound`.
    AtMost,
    /// `x ≥ bound`.
    AtLeast,
}

impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckKind::NotRejected => "not_rejected",
            CheckKind::Within => "within",
            CheckKind::AtMost => "at_most",
            CheckKind::AtLeast => "at_least",
        })
    }
}

/// One `[[check]]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// Statistic name, e.g. `free_diffusion.ks_t1`.
    pub stat: String,
    /// Field of the statistic: `statistic` / `pvalue` (KS) or `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The kind of check.
    pub kind: CheckKind,
    /// Level of `not_rejected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// Expected value of `within`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<f64>,
    /// Tolerance of `within`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tol: Option<f64>,
    /// Bound of `at_most` / `at_least`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<f64>,
    /// Free text shown in the report (where a number comes from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// A regression pin of this manifest's exact numbers (dropped in sweep tasks).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pin: bool,
}

/// The checks of one golden file (empty when there is none).
#[derive(Debug, Clone)]
pub struct Golden {
    /// The file, if it exists.
    pub path: Option<PathBuf>,
    /// Its checks, in file order.
    pub checks: Vec<CheckSpec>,
}

/// Outcome of one check.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckResult {
    /// Statistic name.
    pub stat: String,
    /// Field checked.
    pub field: String,
    /// Kind of check.
    pub kind: CheckKind,
    /// The requirement in words, e.g. `pvalue >= 0.001`.
    pub requirement: String,
    /// The measured value.
    pub value: f64,
    /// Whether the requirement holds.
    pub pass: bool,
    /// The check's note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Golden {
    /// Read `path`; a missing file means "no checks".
    pub fn load(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Ok(Self {
                path: None,
                checks: Vec::new(),
            });
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read golden file {}", path.display()))?;
        let file: GoldenFile = toml::from_str(&text)
            .map_err(|e| anyhow::Error::new(BadInput(e.to_string())))
            .with_context(|| path.display().to_string())?;
        let golden = Self {
            path: Some(path.to_path_buf()),
            checks: file.check,
        };
        golden
            .validate_shape()
            .with_context(|| path.display().to_string())?;
        Ok(golden)
    }

    /// The golden file at `path` without its `pin = true` checks, as TOML text headed by
    /// `header` (comment lines), and the number of pins dropped; `None` if it has no pins (copy
    /// it as it is). For sweep tasks, which differ from the manifest the pins were measured on.
    pub fn without_pins(path: &Path, header: &str) -> Result<Option<(String, usize)>> {
        let golden = Self::load(path)?;
        let before = golden.checks.len();
        let check: Vec<CheckSpec> = golden.checks.into_iter().filter(|c| !c.pin).collect();
        let dropped = before - check.len();
        if dropped == 0 {
            return Ok(None);
        }
        let body = toml::to_string(&GoldenFile { check })
            .with_context(|| format!("cannot serialise the checks of {}", path.display()))?;
        let comments: String = header.lines().map(|l| format!("# {l}\n")).collect();
        Ok(Some((format!("{comments}\n{body}"), dropped)))
    }

    /// Every check has exactly the keys its kind needs, with sensible values.
    fn validate_shape(&self) -> Result<()> {
        let mut errors = Vec::new();
        for (i, c) in self.checks.iter().enumerate() {
            let at = format!("check[{i}] ({}, {})", c.stat, c.kind);
            let mut need = |name: &str, v: Option<f64>, ok: fn(f64) -> bool, req: &str| match v {
                None => errors.push(format!("{at}: missing key `{name}`")),
                Some(v) if !ok(v) => {
                    errors.push(format!("{at}: {name} must be {req} (got {})", fmt_f64(v)))
                }
                Some(_) => {}
            };
            let (alpha, expected, tol, bound) = match c.kind {
                CheckKind::NotRejected => {
                    need("alpha", c.alpha, |a| a > 0.0 && a < 1.0, "in (0, 1)");
                    (true, false, false, false)
                }
                CheckKind::Within => {
                    need("expected", c.expected, f64::is_finite, "finite");
                    need(
                        "tol",
                        c.tol,
                        |t| t.is_finite() && t >= 0.0,
                        "finite and >= 0",
                    );
                    (false, true, true, false)
                }
                CheckKind::AtMost | CheckKind::AtLeast => {
                    need("bound", c.bound, f64::is_finite, "finite");
                    (false, false, false, true)
                }
            };
            for (name, allowed, present) in [
                ("alpha", alpha, c.alpha.is_some()),
                ("expected", expected, c.expected.is_some()),
                ("tol", tol, c.tol.is_some()),
                ("bound", bound, c.bound.is_some()),
            ] {
                if present && !allowed {
                    errors.push(format!(
                        "{at}: key `{name}` does not apply to kind {}",
                        c.kind
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(bad_input(errors.join("\n  ")))
        }
    }

    /// Every check names a declared statistic and a field that statistic has.
    pub fn validate_against(&self, declared: &BTreeMap<String, StatKind>) -> Result<()> {
        let mut errors = Vec::new();
        for (i, c) in self.checks.iter().enumerate() {
            let at = format!("check[{i}]");
            let Some(&kind) = declared.get(&c.stat) else {
                let known: Vec<&str> = declared.keys().map(String::as_str).collect();
                errors.push(format!(
                    "{at}: unknown stat `{}` (this experiment has: {})",
                    c.stat,
                    known.join(", ")
                ));
                continue;
            };
            if let Err(e) = resolve_field(c, kind) {
                errors.push(format!("{at} ({}): {e}", c.stat));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            let file = self
                .path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            Err(bad_input(errors.join("\n  "))).with_context(|| file)
        }
    }

    /// Evaluate every check on `stats` (names were validated before the run).
    pub fn evaluate(&self, stats: &BTreeMap<String, Statistic>) -> Result<Vec<CheckResult>> {
        self.checks
            .iter()
            .map(|c| {
                let stat = stats.get(&c.stat).with_context(|| {
                    format!("the run produced no statistic `{}` (golden file)", c.stat)
                })?;
                let field = resolve_field(c, stat.kind()).map_err(anyhow::Error::msg)?;
                let value = stat.field(&field).unwrap_or(f64::NAN);
                let (requirement, pass) = match c.kind {
                    CheckKind::NotRejected => {
                        let a = c.alpha.unwrap_or(f64::NAN);
                        (format!("pvalue >= alpha = {}", fmt_f64(a)), value >= a)
                    }
                    CheckKind::Within => {
                        let (e, t) = (c.expected.unwrap_or(f64::NAN), c.tol.unwrap_or(f64::NAN));
                        (
                            format!("abs({field} - {}) <= {}", fmt_f64(e), fmt_f64(t)),
                            (value - e).abs() <= t,
                        )
                    }
                    CheckKind::AtMost => {
                        let b = c.bound.unwrap_or(f64::NAN);
                        (format!("{field} <= {}", fmt_f64(b)), value <= b)
                    }
                    CheckKind::AtLeast => {
                        let b = c.bound.unwrap_or(f64::NAN);
                        (format!("{field} >= {}", fmt_f64(b)), value >= b)
                    }
                };
                Ok(CheckResult {
                    stat: c.stat.clone(),
                    field,
                    kind: c.kind,
                    requirement,
                    value,
                    pass,
                    note: c.note.clone(),
                })
            })
            .collect()
    }
}

/// The field a check reads, given the statistic's kind.
fn resolve_field(c: &CheckSpec, kind: StatKind) -> Result<String, String> {
    let allowed: &[&str] = match kind {
        StatKind::Ks => &["statistic", "pvalue"],
        StatKind::Value => &["value"],
    };
    let field = match (&c.field, c.kind, kind) {
        (Some(f), _, _) => f.clone(),
        (None, CheckKind::NotRejected, _) => "pvalue".into(),
        (None, _, StatKind::Value) => "value".into(),
        (None, _, StatKind::Ks) => {
            return Err(format!(
                "a KS result needs `field = \"statistic\"` or `\"pvalue\"` for kind {}",
                c.kind
            ))
        }
    };
    if !allowed.contains(&field.as_str()) {
        return Err(format!(
            "unknown field `{field}` (expected one of: {})",
            allowed.join(", ")
        ));
    }
    if c.kind == CheckKind::NotRejected && (kind != StatKind::Ks || field != "pvalue") {
        return Err("kind not_rejected applies to the pvalue of a KS result".into());
    }
    Ok(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golden(text: &str) -> Result<Golden> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.golden.toml");
        std::fs::write(&p, text).unwrap();
        Golden::load(&p)
    }

    fn declared() -> BTreeMap<String, StatKind> {
        [
            ("a.ks".to_string(), StatKind::Ks),
            ("a.mean".to_string(), StatKind::Value),
        ]
        .into_iter()
        .collect()
    }

    fn stats() -> BTreeMap<String, Statistic> {
        [
            (
                "a.ks".to_string(),
                Statistic::Ks {
                    statistic: 0.004,
                    pvalue: 0.3,
                },
            ),
            ("a.mean".to_string(), Statistic::Value { value: 0.01 }),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn evaluates_every_kind() {
        let g = golden(
            r#"
[[check]]
stat = "a.ks"
kind = "not_rejected"
alpha = 1e-3
[[check]]
stat = "a.ks"
field = "statistic"
kind = "at_most"
bound = 0.003
[[check]]
stat = "a.mean"
kind = "within"
expected = 0.0
tol = 0.02
[[check]]
stat = "a.mean"
kind = "at_least"
bound = 0.02
"#,
        )
        .unwrap();
        g.validate_against(&declared()).unwrap();
        let r = g.evaluate(&stats()).unwrap();
        let pass: Vec<bool> = r.iter().map(|c| c.pass).collect();
        assert_eq!(pass, vec![true, false, true, false]);
        assert_eq!(r[0].field, "pvalue");
        assert_eq!(r[0].value, 0.3);
        assert_eq!(r[1].value, 0.004);
    }

    #[test]
    fn rejects_unknown_stat_field_and_keys() {
        let g =
            golden("[[check]]\nstat = \"a.nope\"\nkind = \"within\"\nexpected = 1.0\ntol = 0.1\n")
                .unwrap();
        let msg = format!("{:#}", g.validate_against(&declared()).unwrap_err());
        assert!(msg.contains("unknown stat `a.nope`"), "{msg}");

        let g =
            golden("[[check]]\nstat = \"a.ks\"\nfield = \"p\"\nkind = \"at_most\"\nbound = 1.0\n")
                .unwrap();
        let msg = format!("{:#}", g.validate_against(&declared()).unwrap_err());
        assert!(msg.contains("unknown field `p`"), "{msg}");

        let msg =
            format!(
            "{:#}",
            golden("[[check]]\nstat = \"a.ks\"\nkind = \"not_rejected\"\nalpha = 1e-3\ntol = 1.0\n")
                .unwrap_err()
        );
        assert!(msg.contains("key `tol` does not apply"), "{msg}");

        let msg = format!(
            "{:#}",
            golden("[[check]]\nstat = \"a.ks\"\nkind = \"not_rejected\"\nalfa = 1e-3\n")
                .unwrap_err()
        );
        assert!(msg.contains("unknown field `alfa`"), "{msg}");

        let msg = format!(
            "{:#}",
            golden("[[check]]\nstat = \"a.ks\"\nkind = \"not_rejected\"\nalpha = 2.0\n")
                .unwrap_err()
        );
        assert!(msg.contains("alpha must be in (0, 1) (got 2)"), "{msg}");
    }
}
