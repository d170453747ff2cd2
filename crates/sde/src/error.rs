//! Errors for invalid SDE / oracle parameters: the workspace's one [`ParamError`].

pub use smoluchowski_core::ParamError;

/// The workspace's parameter error under its historical name.
pub type ParameterError = ParamError;

/// An invalid parameter given to a constructor in this crate. The message names the parameter
/// and the offending value, e.g. `beta_min must be ≥ 0 (got -1)`.
pub type SdeError = ParamError;

/// `Ok(value)` if `value` is finite and `ok(value)`, else a [`ParamError`] whose requirement
/// text is `"finite and {requirement}"` for NaN/±∞.
pub(crate) use smoluchowski_datasets::check_parameter as check;
