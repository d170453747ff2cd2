//! Errors for invalid parameters: one type for the whole workspace (`smoluchowski-sde` re-exports it).

use std::fmt;

/// An invalid parameter given to a constructor (datasets, SDEs, oracles).
///
/// The message names the parameter and the offending value, e.g. `scale must be > 0, got -1`.
#[derive(Debug, Clone, PartialEq)]
pub enum ParameterError {
    /// A scalar parameter violated its requirement.
    InvalidParameter {
        /// Name of the parameter (`"scale"`, `"std[2]"`).
        name: String,
        /// What it must satisfy, e.g. `"must be > 0"`.
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

impl fmt::Display for ParameterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParameterError::InvalidParameter {
                name,
                requirement,
                value,
            } => write!(f, "{name} {requirement}, got {value}"),
            ParameterError::LengthMismatch {
                first,
                first_len,
                second,
                second_len,
            } => write!(
                f,
                "{first} and {second} must have the same length, got {first_len} and {second_len}"
            ),
            ParameterError::Empty { name } => write!(f, "{name} must not be empty"),
        }
    }
}

impl std::error::Error for ParameterError {}

/// An invalid parameter given to a dataset constructor.
pub type DatasetError = ParameterError;

/// `Ok(value)` if `value` is finite and `ok(value)`, else an invalid-parameter error.
pub fn check_parameter(
    name: impl Into<String>,
    value: f64,
    requirement: &str,
    ok: impl Fn(f64) -> bool,
) -> Result<f64, ParameterError> {
    if value.is_finite() && ok(value) {
        Ok(value)
    } else {
        let requirement = if value.is_finite() {
            format!("must be {requirement}")
        } else {
            format!("must be finite and {requirement}")
        };
        Err(ParameterError::InvalidParameter {
            name: name.into(),
            requirement,
            value,
        })
    }
}
