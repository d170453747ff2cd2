//! Error type for constructors that take user parameters.

use std::fmt;

/// Invalid parameter passed to a metrics constructor; the message names the parameter and
/// the offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsError(pub String);

impl fmt::Display for MetricsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MetricsError {}
