//! The Python package `smoluchowski` (PyO3 + maturin, an abi3 wheel): exact laws, oracle scores,
//! verification, every sampler driven by any score, and the experiments, from NumPy.
//!
//! The package is the Rust library's public API with arrays at the boundary; nothing is
//! re-implemented here. Everything except [`bindings`] is plain Rust, tested by `cargo test`
//! without Python; the PyO3 layer is compiled only with the `python` feature, which maturin
//! enables (`pyproject.toml`), so `cargo build --workspace` needs no Python.
//!
//! - [`law`]: datasets as `dict`s ([`law::DatasetSpec`]) and their exact laws: seeded draws
//!   (the harness's named streams), log-densities, scores, marginal CDFs.
//! - [`oracle`]: `∇ log p_t` and `log p_t` of those laws under OU / VP / sub-VP at any `t`.
//! - [`verify`]: the report's statistics (KS with p-values, two-sample KS, sliced W₂ and energy
//!   distance with noise floors) for any samples.
//! - [`sampling`]: the samplers with the oracle, a trained network or a callback score
//!   ([`sampling::CallbackScore`]: one call per batched evaluation, same seeds, same NFE).
//! - [`model`]: a network trained by the Rust side (`model.safetensors`).
//! - [`experiments`]: run a manifest, get its `metrics.json`.

pub mod experiments;
pub mod law;
pub mod model;
pub mod oracle;
pub mod sampling;
pub mod verify;

#[cfg(feature = "python")]
mod bindings;
