//! The experiment kinds. Adding one = one new module here plus one line in [`KINDS`].

use crate::harness::KindEntry;

pub mod fokker_planck;
pub mod langevin;
pub mod mixture_cfg;
pub mod mnist_ddpm;
pub mod ring2d;
pub mod ring2d_ddpm;
pub mod ring2d_inpaint;
pub mod ring2d_likelihood;
pub mod ring2d_oracle;
pub mod ring2d_part1;
pub mod ring2d_samplers;
pub mod smoluchowski;
pub mod ssm;

/// Every registered experiment kind, selected by a manifest's `experiment.kind`.
pub const KINDS: &[KindEntry] = &[
    smoluchowski::ENTRY,
    ring2d::ENTRY,
    fokker_planck::ENTRY,
    langevin::ENTRY,
    ring2d_oracle::ENTRY,
    ring2d_samplers::ENTRY,
    ring2d_part1::ENTRY,
    ring2d_likelihood::ENTRY,
    ring2d_ddpm::ENTRY,
    ssm::ENTRY,
    mnist_ddpm::ENTRY,
    mixture_cfg::ENTRY,
    ring2d_inpaint::ENTRY,
];
