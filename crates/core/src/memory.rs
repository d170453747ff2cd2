//! Memory estimates of size-like parameters, so an impossible request fails before any work.
//!
//! A config that allocates in proportion to one of its fields reports an estimate of the bytes
//! it will need ([`MemoryEstimate`]); the caller compares it with a [`MemoryBudget`] and, if it
//! cannot fit, reports a [`ParamError`] that names the field, its value and the estimate.

use std::cell::RefCell;

use crate::ParamError;

thread_local! {
    /// Estimates checked by [`MemoryBudget::check`] on this thread inside [`record_checked`].
    static RECORDED: RefCell<Option<Vec<MemoryEstimate>>> = const { RefCell::new(None) };
}

/// Runs `f` and returns, beside its result, every estimate that [`MemoryBudget::check`] saw on
/// this thread meanwhile (in order, each under its full field path) — e.g. validating a
/// manifest, to learn how much memory the run will ask for without running it (a scheduler's
/// `--mem`). Calls nest: an inner recording does not hide its estimates from an outer one.
pub fn record_checked<T>(f: impl FnOnce() -> T) -> (T, Vec<MemoryEstimate>) {
    let outer = RECORDED.with(|r| r.borrow_mut().replace(Vec::new()));
    let value = f();
    let mine = RECORDED.with(|r| r.borrow_mut().take()).unwrap_or_default();
    if let Some(mut outer) = outer {
        outer.extend(mine.iter().cloned());
        RECORDED.with(|r| *r.borrow_mut() = Some(outer));
    }
    (value, mine)
}

/// An estimate of the bytes a run needs, attributed to the field that drives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// The field path of the size (e.g. `batch_size`).
    pub path: String,
    /// Its value.
    pub value: u128,
    /// Estimated bytes (saturating: `u128` so that products of sizes do not overflow).
    pub bytes: u128,
}

impl MemoryEstimate {
    /// `bytes = value · bytes_per_unit + fixed`, saturating.
    pub fn linear(
        path: impl Into<String>,
        value: usize,
        bytes_per_unit: u128,
        fixed: u128,
    ) -> Self {
        let value = value as u128;
        Self {
            path: path.into(),
            value,
            bytes: value.saturating_mul(bytes_per_unit).saturating_add(fixed),
        }
    }

    /// The same estimate one level down (see [`ParamError::under`]).
    #[must_use]
    pub fn under(mut self, prefix: &str) -> Self {
        if !prefix.is_empty() {
            self.path = format!("{prefix}.{}", self.path);
        }
        self
    }
}

/// The memory a run may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    /// Bytes.
    pub bytes: u128,
}

impl MemoryBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: u128) -> Self {
        Self { bytes }
    }

    /// `MemTotal` of `/proc/meminfo` where it can be read (Linux), else 16 GiB.
    pub fn of_this_machine() -> Self {
        let total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<u128>().ok())
            })
            .map(|kb| kb * 1024);
        Self::new(total.unwrap_or(16 << 30))
    }

    /// `Ok` if `estimate` fits, else an error naming the field, the value and the estimate.
    pub fn check(&self, estimate: &MemoryEstimate) -> Result<(), ParamError> {
        RECORDED.with(|r| {
            if let Some(v) = r.borrow_mut().as_mut() {
                v.push(estimate.clone());
            }
        });
        if estimate.bytes <= self.bytes {
            Ok(())
        } else {
            Err(ParamError::new(
                estimate.path.clone(),
                estimate.value,
                format!(
                    "small enough to fit in memory: it needs about {} but this machine has {}",
                    human_bytes(estimate.bytes),
                    human_bytes(self.bytes)
                ),
            ))
        }
    }
}

/// `1.5 GiB`-style rendering of a byte count.
pub fn human_bytes(bytes: u128) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_estimates_are_recorded_and_nest() {
        let budget = MemoryBudget::new(1 << 20);
        let small = MemoryEstimate::linear("n", 10, 8, 0);
        let big = MemoryEstimate::linear("m", 1 << 30, 8, 0);
        assert!(budget.check(&small).is_ok()); // not recording: nothing kept
        let ((inner, ok), outer) = record_checked(|| {
            let ok = budget.check(&big).is_err();
            (record_checked(|| budget.check(&small).is_ok()), ok)
        });
        assert!(ok && inner.0);
        assert_eq!(inner.1, vec![small.clone()]);
        assert_eq!(outer, vec![big, small]);
        assert!(record_checked(|| ()).1.is_empty());
    }

    #[test]
    fn an_oversized_batch_is_named_with_its_estimate() {
        let e = MemoryEstimate::linear("batch_size", 1_000_000_000_000, 64, 0).under("training");
        let err = MemoryBudget::new(24 << 30).check(&e).unwrap_err();
        assert_eq!(err.path(), "training.batch_size");
        let msg = err.to_string();
        assert!(
            msg.contains("58.2 TiB") && msg.contains("24.0 GiB"),
            "{msg}"
        );
        assert!(msg.ends_with("(got 1000000000000)"), "{msg}");
        assert!(MemoryBudget::new(1 << 30)
            .check(&MemoryEstimate::linear("n", 1000, 8, 0))
            .is_ok());
        assert_eq!(
            MemoryEstimate::linear("n", usize::MAX, u128::MAX, 1).bytes,
            u128::MAX
        );
    }
}
