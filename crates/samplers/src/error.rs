//! Errors for invalid sampler parameters: the workspace's one [`ParamError`].

use std::fmt;

pub use smoluchowski_core::ParamError;

/// A sampler parameter (from a config, a time grid or a recording spec) was invalid; its path
/// is relative to the [`SamplerConfig`](crate::SamplerConfig) (e.g. `method.snr`, `t_eps`).
pub type SamplerError = ParamError;

/// A [`ParamError`] for `path` with the value shown by its `Debug` form ([`ParamError::debug`]).
pub(crate) fn invalid(
    path: impl Into<String>,
    value: impl fmt::Debug,
    requirement: impl Into<String>,
) -> ParamError {
    ParamError::debug(path, value, requirement)
}

/// `Ok(())` if `value` is finite and satisfies `ok`, else an error naming the parameter
/// ([`ParamError::check_finite_debug`]).
pub(crate) fn check(
    name: &str,
    value: f64,
    requirement: &str,
    ok: impl FnOnce(f64) -> bool,
) -> Result<(), SamplerError> {
    ParamError::check_finite_debug(name, value, requirement, ok)
}
