//! Errors for invalid SDE / oracle parameters: the workspace's one parameter-error type,
//! defined in `smoluchowski-datasets`.

pub use smoluchowski_datasets::ParameterError;

/// An invalid parameter given to a constructor in this crate. The message names the parameter
/// and the offending value, e.g. `beta_min must be ≥ 0, got -1`.
pub type SdeError = ParameterError;

/// `Ok(value)` if `value` is finite and `ok(value)`, else an [`SdeError::InvalidParameter`]
/// whose requirement text is `"must be finite and {requirement}"` for NaN/±∞.
pub(crate) use smoluchowski_datasets::check_parameter as check;
