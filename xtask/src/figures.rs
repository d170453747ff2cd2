//! Figures come from the library crate `smoluchowski-figures`.
pub use smoluchowski::figures::*;
