//! Errors for invalid sampler parameters: the workspace's one [`ParamError`].

use std::fmt;

pub use smoluchowski_core::ParamError;

/// A sampler parameter (from a config, a time grid or a recording spec) was invalid; its path
/// is relative to the [`SamplerConfig`](crate::SamplerConfig) (e.g. `method.snr`, `t_eps`).
pub type SamplerError = ParamError;

/// A [`ParamError`] for `path` with the value shown by its `Debug` form (so floats print in
/// full and structured values such as a grid kind print with their fields).
pub(crate) fn invalid(
    path: impl Into<String>,
    value: impl fmt::Debug,
    requirement: impl Into<String>,
) -> ParamError {
    ParamError::new(path, format!("{value:?}"), requirement)
}

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
        Err(invalid(name, value, format!("finite and {requirement}")))
    }
}
