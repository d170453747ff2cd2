//! Empty: present only so that `[build-dependencies] syn` (feature unification with the Python
//! package's proc-macros, see Cargo.toml) takes part in the host graph.
fn main() {}
