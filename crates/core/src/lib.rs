//! The types every smoluchowski crate shares, and nothing else:
//!
//! - [`ParamError`]: the one error for an invalid parameter. It names the parameter by its
//!   field path (`lr`, `method.eta`, `means[2]`), the requirement and the value; a caller that
//!   embeds a config in a larger one prefixes the path with [`ParamError::under`], so a manifest
//!   error reads `training.lr must be > 0 (got -1)` without any text substitution.
//! - [`streams`]: the named, seeded ChaCha8 streams every random number comes from.
//! - [`memory`]: byte estimates of size-like parameters, checked before any work.

pub mod memory;
mod memory_total;
pub mod streams;
pub mod validate;

mod error;

pub use error::{check_finite, ParamError};
pub use memory::{record_checked, MemoryBudget, MemoryEstimate};
pub use memory_total::sum_by_path;
