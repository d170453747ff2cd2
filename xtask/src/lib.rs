//! The smoluchowski harness as a library: manifests, golden checks, atomic outputs, figures,
//! reports and the experiment kinds. The `xtask` binary (`cargo xtask ...`) is a thin CLI on top.
//!
//! Adding an experiment kind: write `experiments/<kind>.rs` implementing
//! [`harness::Experiment`] with a [`harness::KindEntry`], and list it in [`experiments::KINDS`].

pub mod bench;
pub mod experiments;
pub mod figures;
pub mod golden;
pub mod harness;
pub mod manifest;
pub mod output;
pub mod progress;
pub mod report;
pub mod seeding;
pub mod stats;
pub mod sweep;
pub mod tables;
pub mod training;
pub mod validate;
