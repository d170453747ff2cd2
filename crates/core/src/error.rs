//! The workspace's one parameter-error type.

use std::fmt;

/// An invalid parameter: its field path, what it must satisfy and the value given.
///
/// Displays as `<path> must be <requirement> (got <value>)`, e.g.
/// `lr_schedule.warmup_steps must be < steps = 100 (got 200)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    path: String,
    requirement: String,
    value: String,
}

impl ParamError {
    /// `path` must satisfy `requirement` (without a leading "must be") but is `value`.
    pub fn new(
        path: impl Into<String>,
        value: impl fmt::Display,
        requirement: impl Into<String>,
    ) -> Self {
        Self {
            path: path.into(),
            requirement: requirement.into(),
            value: value.to_string(),
        }
    }

    /// As [`ParamError::new`], with the value shown by its `Debug` form (floats in full,
    /// structured values such as a grid kind with their fields).
    pub fn debug(
        path: impl Into<String>,
        value: impl fmt::Debug,
        requirement: impl Into<String>,
    ) -> Self {
        Self::new(path, format!("{value:?}"), requirement)
    }

    /// `Ok(())` if `value` is finite and satisfies `ok`, else a [`ParamError::debug`] for `path`
    /// requiring `finite and <requirement>` (the samplers' and DDPM schedules' convention).
    pub fn check_finite_debug(
        path: &str,
        value: f64,
        requirement: &str,
        ok: impl FnOnce(f64) -> bool,
    ) -> Result<(), Self> {
        if value.is_finite() && ok(value) {
            Ok(())
        } else {
            Err(Self::debug(
                path,
                value,
                format!("finite and {requirement}"),
            ))
        }
    }

    /// `second` must have as many elements as `first` (`first_len`) but has `second_len`.
    pub fn length_mismatch(first: &str, first_len: usize, second: &str, second_len: usize) -> Self {
        Self::new(
            format!("{second} (length)"),
            second_len,
            format!("the length of {first} = {first_len}"),
        )
    }

    /// `path` must not be empty.
    pub fn empty(path: impl Into<String>) -> Self {
        Self::new(path, "empty", "non-empty")
    }

    /// The same error one level down: `path` becomes `<prefix>.<path>` (for a config embedded
    /// in a larger one, e.g. a `TrainConfig` under a manifest's `[training]` table).
    #[must_use]
    pub fn under(mut self, prefix: &str) -> Self {
        if !prefix.is_empty() {
            self.path = format!("{prefix}.{}", self.path);
        }
        self
    }

    /// The field path, e.g. `method.eta`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What the value must satisfy, e.g. `> 0`.
    pub fn requirement(&self) -> &str {
        &self.requirement
    }

    /// The value given, formatted.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} must be {} (got {})",
            self.path, self.requirement, self.value
        )
    }
}

impl std::error::Error for ParamError {}

/// `Ok(value)` if `value` is finite and `ok(value)`, else a [`ParamError`] for `path` whose
/// requirement is `requirement` (`finite and <requirement>` when `value` is NaN or ±∞, unless
/// the requirement is `finite` itself).
pub fn check_finite(
    path: impl Into<String>,
    value: f64,
    requirement: &str,
    ok: impl FnOnce(f64) -> bool,
) -> Result<f64, ParamError> {
    if value.is_finite() && ok(value) {
        Ok(value)
    } else if value.is_finite() || requirement == "finite" {
        Err(ParamError::new(path, value, requirement))
    } else {
        Err(ParamError::new(
            path,
            value,
            format!("finite and {requirement}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_path_and_the_value() {
        let e = check_finite("lr", -1.0, "> 0", |v| v > 0.0).unwrap_err();
        assert_eq!(e.to_string(), "lr must be > 0 (got -1)");
        assert_eq!(
            e.under("training").to_string(),
            "training.lr must be > 0 (got -1)"
        );
        let e = check_finite("eta", f64::NAN, ">= 0", |v| v >= 0.0).unwrap_err();
        assert_eq!(e.to_string(), "eta must be finite and >= 0 (got NaN)");
        assert_eq!(
            ParamError::length_mismatch("means", 3, "stds", 2).to_string(),
            "stds (length) must be the length of means = 3 (got 2)"
        );
        assert_eq!(ParamError::empty("means").under("").path(), "means");
    }
}
