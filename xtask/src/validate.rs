//! Input validation: the `BadInput` error marker (exit code 2); the field-check collector
//! [`Checker`] lives in `smoluchowski::core::validate` (its [`Invalid`] also exits 2).

pub use smoluchowski::core::validate::{fmt_f64, Checker, Invalid};
use std::fmt;

/// Marks an error as caused by bad user input (manifest, golden file, arguments): exit code 2.
///
/// Wrap it into an `anyhow::Error` (it may then get `.context(...)` added); the harness finds it
/// anywhere in the error chain.
#[derive(Debug)]
pub struct BadInput(pub String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// A bad-input `anyhow::Error` with the given message.
pub fn bad_input(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadInput(msg.into()))
}
