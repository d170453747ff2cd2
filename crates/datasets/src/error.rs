//! Errors for invalid parameters: the workspace's one [`ParamError`] (from `smoluchowski-core`).

pub use smoluchowski_core::ParamError;

/// The workspace's parameter error under its historical name.
pub type ParameterError = ParamError;

/// An invalid parameter given to a dataset constructor.
pub type DatasetError = ParamError;

/// `Ok(value)` if `value` is finite and `ok(value)`, else a [`ParamError`] naming `name`
/// (see [`smoluchowski_core::check_finite`]).
pub fn check_parameter(
    name: impl Into<String>,
    value: f64,
    requirement: &str,
    ok: impl Fn(f64) -> bool,
) -> Result<f64, ParamError> {
    smoluchowski_core::check_finite(name, value, requirement, ok)
}
