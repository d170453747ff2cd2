//! A step-size sweep of independent Langevin chains at a fixed Langevin time: for each step `ε`
//! of an increasing list, `n_chains` chains run `n = time / ε` steps (a whole number) and only
//! their final states are kept, so every run samples the same diffusion time.

use serde::{Deserialize, Serialize};
use smoluchowski_core::streams::derived_seed;
use smoluchowski_core::validate::Checker;
use smoluchowski_core::MemoryEstimate;
use smoluchowski_sde::{check_divides, whole_steps};

use smoluchowski_datasets::{DatasetError, GaussianMixture, Ring2d};

use crate::langevin::{
    langevin_chains, LangevinConfig, LangevinMethod, LangevinOutput, LogDensity,
};
use crate::SamplerError;

/// Both methods with their names, ULA first.
pub const METHODS: [(&str, LangevinMethod); 2] =
    [("ula", LangevinMethod::Ula), ("mala", LangevinMethod::Mala)];

/// Most step sizes in one sweep.
pub const MAX_SWEEP_STEPS: usize = 16;

/// One sweep's sizes (borrowed from a manifest table).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepSweep<'a> {
    /// Independent chains per run, `≥ 10`.
    pub n_chains: usize,
    /// Langevin time per chain, `> 0`.
    pub time: f64,
    /// Step sizes `ε`, increasing, each dividing `time` and `< max_step` (stability).
    pub steps: &'a [f64],
}

impl StepSweep<'_> {
    /// Records every invalid field under `path` (`<path>.n_chains`, `.time`, `.steps[i]`);
    /// `max_step` bounds the steps for the reason `why` (e.g. ULA's stability `ε < 2s²`). The
    /// chain count is bounded by [`StepSweep::memory_estimates`], not here.
    pub fn check(&self, c: &mut Checker, path: &str, dim: usize, max_step: f64, why: &str) {
        c.count(&format!("{path}.n_chains"), self.n_chains, 10, usize::MAX);
        c.positive(&format!("{path}.time"), self.time);
        let steps = self.steps;
        c.count(
            &format!("length of {path}.steps"),
            steps.len(),
            1,
            MAX_SWEEP_STEPS,
        );
        for (i, &e) in steps.iter().enumerate() {
            let p = format!("{path}.steps[{i}]");
            c.positive(&p, e);
            if !(e.is_finite() && e > 0.0) {
                continue;
            }
            if i > 0 && steps[i - 1].is_finite() {
                let prev = steps[i - 1];
                c.require(
                    e > prev,
                    &p,
                    &format!("> {path}.steps[{}] = {prev}", i - 1),
                    e,
                );
            }
            if max_step.is_finite() {
                c.require(e < max_step, &p, &format!("< {max_step} ({why})"), e);
            }
            check_divides(c, &p, e, &format!("{path}.time"), self.time);
        }
        c.memory(path, self.memory_estimates(dim));
    }

    /// `n_chains`: the initial states, one run's output and the two kept final states (ULA and
    /// MALA at the largest step), `4 · 8 · dim` bytes per chain.
    pub fn memory_estimates(&self, dim: usize) -> Vec<MemoryEstimate> {
        vec![MemoryEstimate::linear(
            "n_chains",
            self.n_chains,
            32 * dim as u128,
            0,
        )]
    }

    /// Steps per chain at `eps`: `time / eps` (1 if it does not divide; see `check`).
    pub fn n_steps(&self, eps: f64) -> usize {
        whole_steps(self.time, eps).unwrap_or(1)
    }

    /// Run `i` of `method` from `init` on `target`: [`langevin_chains`] with
    /// [`LangevinConfig::final_state`]`(method, steps[i], n_steps)` and the chain seed
    /// `derived_seed(seed, key)` (the first `u64` of the named stream `key`).
    pub fn run<T: LogDensity + Sync + ?Sized>(
        &self,
        target: &T,
        init: &[f64],
        method: LangevinMethod,
        i: usize,
        seed: u64,
        key: &str,
    ) -> Result<LangevinOutput, SamplerError> {
        let eps = self.steps[i];
        let cfg = LangevinConfig::final_state(method, eps, self.n_steps(eps));
        langevin_chains(target, init, &cfg, derived_seed(seed, key))
    }
}

/// A sweep on `ring2d` of scale `k` (radius `Gamma(k, rate k)`): ULA is stable for `ε k < 2`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RingSweepConfig {
    /// Gamma shape = rate `k` of the radius.
    pub scale: f64,
    /// Independent chains per run.
    pub n_chains: usize,
    /// Langevin time per chain; `n_steps = time / ε` must be whole.
    pub time: f64,
    /// Step sizes `ε`, increasing; ULA needs `ε k < 2` to be stable.
    pub steps: Vec<f64>,
}

impl RingSweepConfig {
    /// The sweep's sizes.
    pub fn sweep(&self) -> StepSweep<'_> {
        StepSweep {
            n_chains: self.n_chains,
            time: self.time,
            steps: &self.steps,
        }
    }

    /// Records every invalid field under `path` (steps `< 2 / scale`).
    pub fn check(&self, c: &mut Checker, path: &str) {
        c.positive(&format!("{path}.scale"), self.scale);
        let why = format!("2 / {path}.scale: ULA stability");
        self.sweep().check(c, path, 2, 2.0 / self.scale, &why);
    }

    /// The target.
    pub fn build(&self) -> Result<Ring2d, DatasetError> {
        Ring2d::new(self.scale)
    }
}

/// A sweep on `n_components` isotropic Gaussians of std `std` on the circle of radius `radius`
/// ([`GaussianMixture::on_circle`]): ULA is stable for `ε < 2 s²`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MixtureSweepConfig {
    /// Number of components (8: the 8-Gaussians toy).
    pub n_components: usize,
    /// Radius of the circle of means.
    pub radius: f64,
    /// Component standard deviation `s`.
    pub std: f64,
    /// Independent chains per run.
    pub n_chains: usize,
    /// Langevin time per chain; `n_steps = time / ε` must be whole.
    pub time: f64,
    /// Step sizes `ε`, increasing; ULA needs `ε < 2 s²` to be stable.
    pub steps: Vec<f64>,
}

impl MixtureSweepConfig {
    /// The sweep's sizes.
    pub fn sweep(&self) -> StepSweep<'_> {
        StepSweep {
            n_chains: self.n_chains,
            time: self.time,
            steps: &self.steps,
        }
    }

    /// Records every invalid field under `path` (`1 ≤ n_components ≤ 1000`, steps `< 2 std²`).
    pub fn check(&self, c: &mut Checker, path: &str) {
        c.count(&format!("{path}.n_components"), self.n_components, 1, 1000);
        c.positive(&format!("{path}.radius"), self.radius);
        c.positive(&format!("{path}.std"), self.std);
        let why = format!("2 {path}.std²: ULA stability");
        let max_step = 2.0 * self.std * self.std;
        self.sweep().check(c, path, 2, max_step, &why);
    }

    /// The target mixture.
    pub fn build(&self) -> Result<GaussianMixture, DatasetError> {
        GaussianMixture::on_circle(self.n_components, self.radius, self.std)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::langevin::MixtureLogDensity;
    use smoluchowski_datasets::GaussianMixture;

    #[test]
    fn sweep_checks_and_runs() {
        let sweep = StepSweep {
            n_chains: 20,
            time: 0.01,
            steps: &[1e-3, 3e-3, 2e-3],
        };
        let mut c = Checker::new();
        sweep.check(&mut c, "s", 2, 2.5e-3, "stability");
        let msg = c.finish().unwrap_err().to_string();
        assert!(
            msg.contains("s.steps[1] must be < 0.0025 (stability)"),
            "{msg}"
        );
        assert!(
            msg.contains("s.steps[1] must divide s.time into whole steps"),
            "{msg}"
        );
        assert!(
            msg.contains("s.steps[2] must be > s.steps[1] = 0.003"),
            "{msg}"
        );
        assert_eq!(sweep.n_steps(1e-3), 10);
        let m = GaussianMixture::on_circle(2, 1.0, 0.5).unwrap();
        let target = MixtureLogDensity::new(&m);
        let init = [1.0, 0.0].repeat(20);
        let a = sweep
            .run(&target, &init, LangevinMethod::Mala, 0, 3, "k")
            .unwrap();
        let b = sweep
            .run(&target, &init, LangevinMethod::Mala, 0, 3, "k")
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.proposals, 200);
    }

    #[test]
    fn configs_name_their_fields() {
        let ring = RingSweepConfig {
            scale: 200.0,
            n_chains: 10,
            time: 0.1,
            steps: vec![0.02],
        };
        let mix = MixtureSweepConfig {
            n_components: 8,
            radius: 2.0,
            std: 0.05,
            n_chains: 5,
            time: 0.06,
            steps: vec![1e-3],
        };
        let mut c = Checker::new();
        ring.check(&mut c, "ring2d");
        mix.check(&mut c, "mixture");
        let msg = c.finish().unwrap_err().to_string();
        assert!(
            msg.contains("ring2d.steps[0] must be < 0.01 (2 / ring2d.scale: ULA stability)"),
            "{msg}"
        );
        assert!(
            msg.contains("mixture.n_chains must be >= 10 (got 5)"),
            "{msg}"
        );
        assert_eq!(mix.build().unwrap().n_components(), 8);
        assert!(ring.build().is_ok());
    }
}
