//! Validation of user input (manifests, configs): [`Checker`] collects every failed field
//! check, so the user sees all problems at once, each naming the field path and the value.

use std::fmt;

/// Every failed check of one [`Checker`]: one message reads
/// `<path> must be <requirement> (got <value>)`; several are listed under
/// `<n> invalid values:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub Vec<String>);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => f.write_str(one),
            many => write!(
                f,
                "{} invalid values:\n  - {}",
                many.len(),
                many.join("\n  - ")
            ),
        }
    }
}

impl std::error::Error for Invalid {}

/// Collects every failed field check of a manifest, so the user sees all problems at once.
///
/// Messages read `<path> must be <requirement> (got <value>)`, e.g.
/// `free_diffusion.diffusion must be > 0 (got -0.5)`.
#[derive(Debug, Default)]
pub struct Checker {
    errors: Vec<String>,
}

impl Checker {
    /// An empty checker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record a failure for `path` unless `ok`.
    pub fn require(&mut self, ok: bool, path: &str, requirement: &str, got: impl fmt::Display) {
        if !ok {
            self.errors
                .push(format!("{path} must be {requirement} (got {got})"));
        }
    }

    /// `v` finite (rejects NaN and ±inf).
    pub fn finite(&mut self, path: &str, v: f64) {
        self.require(v.is_finite(), path, "a finite number", fmt_f64(v));
    }

    /// `v` finite and `> 0`.
    pub fn positive(&mut self, path: &str, v: f64) {
        if !v.is_finite() {
            self.finite(path, v);
        } else {
            self.require(v > 0.0, path, "> 0", fmt_f64(v));
        }
    }

    /// `v` finite and `≥ 0`.
    pub fn non_negative(&mut self, path: &str, v: f64) {
        if !v.is_finite() {
            self.finite(path, v);
        } else {
            self.require(v >= 0.0, path, ">= 0", fmt_f64(v));
        }
    }

    /// `v` finite and `lo < v < hi`.
    pub fn open_interval(&mut self, path: &str, v: f64, lo: f64, hi: f64) {
        if !v.is_finite() {
            self.finite(path, v);
        } else {
            self.require(
                v > lo && v < hi,
                path,
                &format!("in ({lo}, {hi})"),
                fmt_f64(v),
            );
        }
    }

    /// Integer count within `[min, max]`.
    pub fn count(&mut self, path: &str, v: usize, min: usize, max: usize) {
        if v < min {
            self.require(false, path, &format!(">= {min}"), v);
        } else if v > max {
            self.require(false, path, &format!("<= {max}"), v);
        }
    }

    /// A name used in file names and statistic keys: non-empty, made of `[A-Za-z0-9_-]`.
    pub fn name(&mut self, path: &str, name: &str) {
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-');
        self.require(
            ok,
            path,
            "non-empty and made of [A-Za-z0-9_-]",
            format!("{name:?}"),
        );
    }

    /// [`Checker::name`], and unique among the names already in `seen` (which it joins).
    pub fn unique_name(
        &mut self,
        seen: &mut std::collections::BTreeSet<String>,
        path: &str,
        name: &str,
    ) {
        self.name(path, name);
        self.require(
            seen.insert(name.to_string()),
            path,
            "unique",
            format!("{name:?}"),
        );
    }

    /// Record a free-form failure (already phrased as a full sentence about `path`).
    pub fn fail(&mut self, msg: impl Into<String>) {
        self.errors.push(msg.into());
    }

    /// Each estimate (paths relative to the table `table`) must fit in this machine's memory
    /// ([`MemoryBudget::of_this_machine`]): a request that cannot fit is bad input, named with
    /// its value and its estimate, before any work.
    pub fn memory(
        &mut self,
        table: &str,
        estimates: impl IntoIterator<Item = crate::memory::MemoryEstimate>,
    ) {
        let budget = crate::memory::MemoryBudget::of_this_machine();
        for e in estimates {
            if let Err(err) = budget.check(&e.under(table)) {
                self.fail(err.to_string());
            }
        }
    }

    /// `Ok` if every check passed, else [`Invalid`] listing every failure.
    pub fn finish(self) -> Result<(), Invalid> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Invalid(self.errors))
        }
    }
}

/// `NaN`, `inf`, `-inf` or the shortest round-trip form of `v`.
pub fn fmt_f64(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checker_names_path_and_value() {
        let mut c = Checker::new();
        c.positive("free_diffusion.diffusion", -0.5);
        let err = c.finish().unwrap_err();
        assert_eq!(
            format!("{err}"),
            "free_diffusion.diffusion must be > 0 (got -0.5)"
        );
    }

    #[test]
    fn checker_rejects_nan_and_lists_all() {
        let mut c = Checker::new();
        c.positive("a.x", f64::NAN);
        c.count("a.n", 0, 1, 10);
        c.non_negative("a.y", 0.0);
        let msg = c.finish().unwrap_err().to_string();
        assert!(msg.contains("2 invalid values"), "{msg}");
        assert!(
            msg.contains("a.x must be a finite number (got NaN)"),
            "{msg}"
        );
        assert!(msg.contains("a.n must be >= 1 (got 0)"), "{msg}");
    }
}
