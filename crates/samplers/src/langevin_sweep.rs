//! A step-size sweep of independent Langevin chains at a fixed Langevin time: for each step `ε`
//! of an increasing list, `n_chains` chains run `n = time / ε` steps (a whole number) and only
//! their final states are kept, so every run samples the same diffusion time.

use smoluchowski_core::streams::derived_seed;
use smoluchowski_core::validate::Checker;
use smoluchowski_core::MemoryEstimate;
use smoluchowski_sde::{check_divides, whole_steps};

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
        let init = vec![1.0, 0.0].repeat(20);
        let a = sweep
            .run(&target, &init, LangevinMethod::Mala, 0, 3, "k")
            .unwrap();
        let b = sweep
            .run(&target, &init, LangevinMethod::Mala, 0, 3, "k")
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.proposals, 200);
    }
}
