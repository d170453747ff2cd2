//! `report.md`: what was run, statistics vs golden checks, figures, how to read and check it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::golden::CheckResult;
use crate::harness::{RunResults, Statistic};
use crate::manifest::ExperimentHeader;

/// Everything the report shows.
pub struct ReportInput<'a> {
    /// The `[experiment]` table.
    pub header: &'a ExperimentHeader,
    /// The manifest path as given.
    pub manifest: &'a Path,
    /// The run's results.
    pub results: &'a RunResults,
    /// Golden check outcomes.
    pub checks: &'a [CheckResult],
    /// The golden file, if any.
    pub golden_file: Option<&'a str>,
    /// Wall times.
    pub wall_time_s: &'a BTreeMap<String, f64>,
}

fn fmt_num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e5) {
        format!("{v:.4e}")
    } else {
        format!("{v:.6}")
    }
}

fn reproduce_command(manifest: &Path, name: &str) -> String {
    let canonical = Path::new("experiments").join(format!("{name}.toml"));
    if manifest == canonical {
        format!("cargo xtask reproduce {name}")
    } else {
        format!("cargo xtask run {}", manifest.display())
    }
}

/// Render the report as Markdown.
pub fn render(r: &ReportInput<'_>) -> String {
    let h = r.header;
    let mut s = String::new();
    let _ = writeln!(s, "# {}\n", h.name);
    let _ = writeln!(s, "{}\n", h.description);
    let _ = writeln!(
        s,
        "- manifest: `{}` (kind `{}`, master seed {})",
        r.manifest.display(),
        h.kind,
        h.seed
    );
    let _ = writeln!(
        s,
        "- reproduce: `{}` (same seed ⇒ same numbers, for any thread count)",
        reproduce_command(r.manifest, &h.name)
    );
    let total = r.wall_time_s.get("total").copied().unwrap_or(f64::NAN);
    let _ = writeln!(s, "- wall time: {total:.2} s (per phase in `metrics.json`)");
    let passed = r.checks.iter().filter(|c| c.pass).count();
    match r.golden_file {
        Some(f) => {
            let _ = writeln!(
                s,
                "- golden checks (`{f}`): **{passed}/{} passed**{}",
                r.checks.len(),
                if passed == r.checks.len() {
                    ""
                } else {
                    " — FAILED"
                }
            );
        }
        None => {
            let _ = writeln!(
                s,
                "- golden checks: none (no golden file next to the manifest)"
            );
        }
    }

    let _ = writeln!(s, "\n## Statistics\n");
    let _ = writeln!(s, "| statistic | value | p-value | golden check | result |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for (name, stat) in &r.results.statistics {
        let (value, p) = match stat {
            Statistic::Ks { statistic, pvalue } => {
                (format!("D = {}", fmt_num(*statistic)), fmt_num(*pvalue))
            }
            Statistic::Value { value } => (fmt_num(*value), String::new()),
        };
        let mine: Vec<&CheckResult> = r.checks.iter().filter(|c| &c.stat == name).collect();
        if mine.is_empty() {
            let _ = writeln!(s, "| `{name}` | {value} | {p} | — | |");
        }
        for (i, c) in mine.iter().enumerate() {
            let note = c
                .note
                .as_deref()
                .map(|n| format!(" — {}", n.replace('|', "\\|")))
                .unwrap_or_default();
            let (v, pp) = if i == 0 {
                (value.as_str(), p.as_str())
            } else {
                ("″", "″")
            };
            let _ = writeln!(
                s,
                "| `{name}` | {v} | {pp} | `{}`{note} | {} |",
                c.requirement,
                if c.pass { "pass" } else { "**FAIL**" }
            );
        }
    }

    if !r.results.figures.is_empty() {
        let _ = writeln!(s, "\n## Figures\n");
        for f in &r.results.figures {
            let _ = writeln!(s, "![{}]({})\n\n*{}*\n", f.file, f.file, f.caption);
        }
    }

    for (title, body) in &r.results.sections {
        let _ = writeln!(s, "\n## {title}\n\n{}", body.trim_end());
    }

    let _ = writeln!(s, "\n## Files\n");
    let _ = writeln!(s, "- `report.md`: this report");
    let _ = writeln!(
        s,
        "- `metrics.json`: manifest echo, derived parameters, statistics, golden outcomes, wall times, versions"
    );
    for f in &r.results.figures {
        let _ = writeln!(s, "- `{}`: figure", f.file);
    }
    for (name, desc) in &r.results.files {
        let _ = writeln!(s, "- `{name}`: {desc}");
    }

    let _ = writeln!(s, "\n## Parameters\n");
    let _ = writeln!(
        s,
        "```json\n{}\n```",
        serde_json::to_string_pretty(&r.results.parameters).unwrap_or_default()
    );
    s
}

/// Fills a report template: every `{name}` of `vars` is replaced by its value (other braces are
/// left alone). Panics if a named placeholder is missing from the template — a template and its
/// call site disagree, which the experiment's tests catch.
pub fn fill(template: &str, vars: &[(&str, String)]) -> String {
    let mut s = template.trim_end().to_string();
    for (name, value) in vars {
        let key = format!("{{{name}}}");
        assert!(s.contains(&key), "template has no placeholder {key}");
        s = s.replace(&key, value);
    }
    s
}
