//! Errors for invalid sampler parameters.

use std::fmt;

/// A sampler parameter (from a config, a time grid or a recording spec) was invalid.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerError {
    /// The parameter's name, e.g. `t_eps` or `method.snr`.
    pub name: String,
    /// The offending value, formatted.
    pub value: String,
    /// What the value must satisfy.
    pub requirement: String,
}

impl SamplerError {
    pub(crate) fn new(
        name: impl Into<String>,
        value: impl fmt::Debug,
        requirement: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            value: format!("{value:?}"),
            requirement: requirement.into(),
        }
    }
}

impl fmt::Display for SamplerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid sampler parameter `{}` = {}: must be {}",
            self.name, self.value, self.requirement
        )
    }
}

impl std::error::Error for SamplerError {}

/// `Ok(())` if `value` is finite and satisfies `ok`, else an error naming the parameter.
pub(crate) fn check(
    name: &str,
    value: f64,
    requirement: &str,
    ok: impl FnOnce(f64) -> bool,
) -> Result<(), SamplerError> {
    if value.is_finite() && ok(value) {
        Ok(())
    } else {
        Err(SamplerError::new(
            name,
            value,
            format!("finite and {requirement}"),
        ))
    }
}
