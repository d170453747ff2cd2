//! Errors for invalid SDE / oracle parameters.

use std::fmt;

/// An invalid parameter given to a constructor in this crate.
///
/// The message names the parameter and the offending value, e.g.
/// `beta_min must be ≥ 0, got -1`.
#[derive(Debug, Clone, PartialEq)]
pub enum SdeError {
    /// A scalar parameter violated its requirement (`requirement` reads e.g. `"must be ≥ 0"`).
    InvalidParameter {
        /// Name of the parameter, as in the constructor's signature (`"beta_min"`, `"std[3]"`).
        name: String,
        /// What the parameter must satisfy, e.g. `"must be finite and > 0"`.
        requirement: String,
        /// The value that was given.
        value: f64,
    },
    /// Two vector parameters that must have equal lengths do not.
    LengthMismatch {
        /// Name of the first parameter.
        first: &'static str,
        /// Its length.
        first_len: usize,
        /// Name of the second parameter.
        second: &'static str,
        /// Its length.
        second_len: usize,
    },
    /// A vector parameter that must be non-empty is empty.
    Empty {
        /// Name of the parameter.
        name: &'static str,
    },
}

impl fmt::Display for SdeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SdeError::InvalidParameter {
                name,
                requirement,
                value,
            } => write!(f, "{name} {requirement}, got {value}"),
            SdeError::LengthMismatch {
                first,
                first_len,
                second,
                second_len,
            } => write!(
                f,
                "{first} and {second} must have the same length, got {first_len} and {second_len}"
            ),
            SdeError::Empty { name } => write!(f, "{name} must not be empty"),
        }
    }
}

impl std::error::Error for SdeError {}

/// `Ok(value)` if `value` is finite and `ok(value)`, else an [`SdeError::InvalidParameter`]
/// whose requirement text is `"must be finite and {requirement}"` (or `"must be finite"` if
/// the value is NaN/±∞ and `requirement` is empty).
pub(crate) fn check(
    name: impl Into<String>,
    value: f64,
    requirement: &str,
    ok: impl Fn(f64) -> bool,
) -> Result<f64, SdeError> {
    if value.is_finite() && ok(value) {
        Ok(value)
    } else {
        let requirement = if value.is_finite() {
            format!("must be {requirement}")
        } else {
            format!("must be finite and {requirement}")
        };
        Err(SdeError::InvalidParameter {
            name: name.into(),
            requirement,
            value,
        })
    }
}
