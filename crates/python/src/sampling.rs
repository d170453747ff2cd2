//! Every sampler of the samplers crate driven by any batched score: the library oracles, a
//! trained network, or a foreign callback (a Python callable) through [`CallbackScore`].
//!
//! A callback sees exactly what a Rust score model sees — the whole `n × d` f32 state at one
//! time `t`, once per network evaluation — so the same seed gives the same noise, the same
//! grid and the same NFE count; if it returns the same numbers as a Rust model, the samples
//! are bit-identical.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::Instant;

use serde::Deserialize;
use smoluchowski::core::validate::{Checker, Invalid};
use smoluchowski::samplers::{
    sample, sample_ddpm, sampling_memory, DdpmSchedule, DdpmVariance, SampleOutput, SamplerConfig,
    SamplerError,
};
use smoluchowski::sde::{Score, Sde, SdeConfig};

/// A validated run of one of the library's samplers with a score model chosen later.
pub trait Plan {
    /// Dimension `d` the score model must have.
    fn dim(&self) -> usize;
    /// The forward SDE whose score the model must return (what an oracle is built for).
    fn sde(&self) -> Sde;
    /// Samples with `model`.
    fn run(&self, model: &mut dyn Score) -> Result<SampleOutput, SamplerError>;
}

/// A validated sampling run: SDE, sampler, batch size and the sampler's seed.
#[derive(Debug, Clone)]
pub struct SamplingPlan {
    /// The forward SDE (samples start from its prior `N(0, prior_std² I)` at `T`).
    pub sde: Sde,
    /// Method, grid, `t_eps`, final denoising.
    pub config: SamplerConfig,
    /// Rows `n`.
    pub n: usize,
    /// Dimension `d`.
    pub dim: usize,
    /// Seed of the prior draw and of every step's noise (`samplers::noise`).
    pub seed: u64,
}

impl SamplingPlan {
    /// Checks everything before any work, naming fields: the SDE under `sde` (its prior must be
    /// reached, `m(T) ≤ 0.05`), the method and grid under `sampler`, `n ≥ 1`, `dim ≥ 1`, and the
    /// memory of `n × dim` against this machine.
    pub fn new(
        sde: &SdeConfig,
        config: &SamplerConfig,
        n: usize,
        dim: usize,
        seed: u64,
    ) -> Result<Self, Invalid> {
        let mut c = Checker::new();
        sde.check(&mut c, "sde", true);
        c.count("n", n, 1, usize::MAX);
        c.count("dim", dim, 1, usize::MAX);
        c.memory(
            "",
            sampling_memory("n", n, dim, Some(("sampler.steps", config.steps))),
        );
        let built = sde.build();
        if let Ok(s) = &built {
            if let Err(e) = config.time_grid(s) {
                c.fail(e.under("sampler").to_string());
            }
        }
        c.finish()?;
        Ok(Self {
            sde: built.expect("checked above"),
            config: config.clone(),
            n,
            dim,
            seed,
        })
    }

    /// [`smoluchowski::samplers::sample`] with `model` (no recording).
    pub fn run<M: Score + ?Sized>(&self, model: &mut M) -> Result<SampleOutput, SamplerError> {
        if model.dim() != self.dim {
            return Err(SamplerError::new(
                "dim",
                model.dim(),
                format!("= {}", self.dim),
            ));
        }
        sample(&self.sde, model, &self.config, self.n, self.seed, None)
    }
}

impl Plan for SamplingPlan {
    fn dim(&self) -> usize {
        self.dim
    }
    fn sde(&self) -> Sde {
        self.sde
    }
    fn run(&self, model: &mut dyn Score) -> Result<SampleOutput, SamplerError> {
        SamplingPlan::run(self, model)
    }
}

/// The discrete DDPM chain as a sampler table (`{"ddpm_chain": {...}}` in Python): a
/// schedule (`kind = {linear = {beta_start, beta_end}}` or `{cosine = {s}}`, `steps = N`) and
/// the ancestral variance (`beta`, default, or `posterior`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DdpmChainConfig {
    /// `β_1..β_N` (validated on parsing, errors name the field).
    pub schedule: DdpmSchedule,
    /// `β̃_i`.
    #[serde(default = "default_variance")]
    pub variance: DdpmVariance,
}

fn default_variance() -> DdpmVariance {
    DdpmVariance::Beta
}

/// [`smoluchowski::samplers::sample_ddpm`]: `x_N ~ N(0, I)`, then
/// `x_{i−1} = (x_i + β_i s(x_i, t_i))/√(1 − β_i) + √β̃_i z`, `t_i = i/N`, `N` evaluations of a
/// score for the schedule's VP limit `β(t) = N β_lin(t)` ([`DdpmSchedule::to_vp_sde`]).
#[derive(Debug, Clone)]
pub struct DdpmPlan {
    /// The chain.
    pub chain: DdpmChainConfig,
    /// Its continuum limit (the oracle's SDE).
    pub sde: Sde,
    /// Rows `n`.
    pub n: usize,
    /// Dimension `d`.
    pub dim: usize,
    /// Seed of the prior and of every step's noise.
    pub seed: u64,
}

impl DdpmPlan {
    /// Checks `n`, `dim` and memory (`n` rows, `schedule.steps` coefficients) before any work.
    pub fn new(chain: DdpmChainConfig, n: usize, dim: usize, seed: u64) -> Result<Self, Invalid> {
        let mut c = Checker::new();
        c.count("n", n, 1, usize::MAX);
        c.count("dim", dim, 1, usize::MAX);
        c.memory(
            "",
            sampling_memory(
                "n",
                n,
                dim,
                Some(("sampler.ddpm_chain.schedule.steps", chain.schedule.steps())),
            ),
        );
        let sde = match chain.schedule.to_vp_sde() {
            Ok(s) => Some(s),
            Err(e) => {
                c.fail(e.under("sampler.ddpm_chain.schedule").to_string());
                None
            }
        };
        c.finish()?;
        Ok(Self {
            chain,
            sde: Sde::Vp(sde.expect("checked above")),
            n,
            dim,
            seed,
        })
    }
}

impl Plan for DdpmPlan {
    fn dim(&self) -> usize {
        self.dim
    }
    fn sde(&self) -> Sde {
        self.sde
    }
    fn run(&self, model: &mut dyn Score) -> Result<SampleOutput, SamplerError> {
        if model.dim() != self.dim {
            return Err(SamplerError::new(
                "dim",
                model.dim(),
                format!("= {}", self.dim),
            ));
        }
        sample_ddpm(
            &self.chain.schedule,
            self.chain.variance,
            model,
            self.n,
            self.seed,
            None,
        )
    }
}

/// Time spent in a callback score, and how often it was called.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CallbackStats {
    /// Calls (one per batched network evaluation: equals the run's NFE).
    pub calls: usize,
    /// Wall seconds inside the callback (what the caller's own model costs).
    pub seconds: f64,
}

/// A [`Score`] that hands each batched evaluation to a fallible callback
/// `f(x, t, out) -> Result<(), E>` (`x`, `out`: `n × d` row-major f32).
///
/// A callback error stops the sampler at once: it is stored and the run unwinds with a private
/// payload (no panic message), which [`run_with_callback`] turns back into the error.
pub struct CallbackScore<F, E> {
    dim: usize,
    f: F,
    error: Option<E>,
    stats: CallbackStats,
}

/// The unwind payload of a failed callback.
struct CallbackAborted;

impl<F, E> Score for CallbackScore<F, E>
where
    F: FnMut(&[f32], f64, &mut [f32]) -> Result<(), E>,
{
    fn dim(&self) -> usize {
        self.dim
    }

    fn score(&mut self, x: &[f32], t: f64, out: &mut [f32]) {
        let start = Instant::now();
        let result = (self.f)(x, t, out);
        self.stats.seconds += start.elapsed().as_secs_f64();
        self.stats.calls += 1;
        if let Err(e) = result {
            self.error = Some(e);
            resume_unwind(Box::new(CallbackAborted));
        }
    }
}

/// Why a callback-driven run failed.
#[derive(Debug)]
pub enum CallbackFailure<E> {
    /// The sampler rejected its input (a named parameter).
    Sampler(SamplerError),
    /// The callback failed (its own error, unchanged).
    Callback(E),
}

/// Runs `plan` with the score `f` (see [`CallbackScore`]); returns the samples and the time
/// spent inside `f`.
pub fn run_with_callback<F, E>(
    plan: &dyn Plan,
    f: F,
) -> Result<(SampleOutput, CallbackStats), CallbackFailure<E>>
where
    F: FnMut(&[f32], f64, &mut [f32]) -> Result<(), E>,
{
    let mut score = CallbackScore {
        dim: plan.dim(),
        f,
        error: None,
        stats: CallbackStats::default(),
    };
    match catch_unwind(AssertUnwindSafe(|| plan.run(&mut score))) {
        Ok(Ok(out)) => Ok((out, score.stats)),
        Ok(Err(e)) => Err(CallbackFailure::Sampler(e)),
        Err(payload) if payload.is::<CallbackAborted>() => Err(CallbackFailure::Callback(
            score
                .error
                .take()
                .expect("an aborted callback stored its error"),
        )),
        Err(payload) => resume_unwind(payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::law::DatasetSpec;
    use crate::oracle::Oracle;
    use smoluchowski::samplers::Method;

    fn vp() -> SdeConfig {
        serde_json::from_str(r#"{"kind": "vp", "beta_min": 0.1, "beta_max": 20, "t_end": 1}"#)
            .unwrap()
    }

    fn oracle() -> Oracle {
        let law = serde_json::from_str::<DatasetSpec>(r#"{"kind": "eight_gaussians"}"#)
            .unwrap()
            .build()
            .unwrap();
        Oracle::new(&law, vp().build().unwrap()).unwrap()
    }

    /// A callback that returns the oracle's numbers gives the oracle path's samples bit for bit
    /// and the same NFE, for a stochastic, a multistep and an adaptive sampler.
    #[test]
    fn callback_path_equals_the_rust_path() {
        let methods = [
            Method::EulerMaruyama,
            Method::DpmSolverPp2M,
            serde_json::from_str::<Method>(r#"{"dormand_prince": {"rtol": 1e-4, "atol": 1e-4}}"#)
                .unwrap(),
        ];
        for method in methods {
            let config = SamplerConfig::new(method, 20, 1e-3);
            let plan = SamplingPlan::new(&vp(), &config, 300, 2, 7).unwrap();
            let direct = plan.run(&mut oracle()).unwrap();
            let mut inner = oracle();
            let (via, stats) = run_with_callback(&plan, |x: &[f32], t, out: &mut [f32]| {
                inner.score(x, t, out);
                Ok::<(), String>(())
            })
            .unwrap();
            assert_eq!(direct, via, "{method:?}");
            assert_eq!(stats.calls, direct.nfe);
            assert!(direct.nfe >= 20);
        }
    }

    /// The DDPM chain through a callback equals the chain with the oracle of its VP limit.
    #[test]
    fn ddpm_chain_callback_equals_the_rust_path() {
        let chain: DdpmChainConfig = serde_json::from_str(
            r#"{"schedule": {"kind": {"linear": {"beta_start": 1e-4, "beta_end": 0.02}}, "steps": 100}}"#,
        )
        .unwrap();
        let plan = DdpmPlan::new(chain, 200, 2, 5).unwrap();
        let law = serde_json::from_str::<DatasetSpec>(r#"{"kind": "eight_gaussians"}"#)
            .unwrap()
            .build()
            .unwrap();
        let mut direct_oracle = Oracle::new(&law, plan.sde()).unwrap();
        let direct = Plan::run(&plan, &mut direct_oracle).unwrap();
        let mut inner = Oracle::new(&law, plan.sde()).unwrap();
        let (via, stats) = run_with_callback(&plan, |x: &[f32], t, out: &mut [f32]| {
            inner.score(x, t, out);
            Ok::<(), String>(())
        })
        .unwrap();
        assert_eq!(direct, via);
        assert_eq!((direct.nfe, stats.calls), (100, 100));
        let bad = serde_json::from_str::<DdpmChainConfig>(
            r#"{"schedule": {"kind": {"linear": {"beta_start": 0.5, "beta_end": 0.02}}, "steps": 100}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(bad.contains("beta_end"), "{bad}");
    }

    /// A failing callback stops the run at that call and its error comes back unchanged.
    #[test]
    fn callback_errors_stop_the_run() {
        let config = SamplerConfig::new(Method::EulerMaruyama, 50, 1e-3);
        let plan = SamplingPlan::new(&vp(), &config, 10, 2, 1).unwrap();
        let mut calls = 0;
        let r = run_with_callback(&plan, |_: &[f32], _, _: &mut [f32]| {
            calls += 1;
            if calls == 3 {
                Err("boom at call 3")
            } else {
                Ok(())
            }
        });
        assert!(matches!(
            r,
            Err(CallbackFailure::Callback("boom at call 3"))
        ));
        assert_eq!(calls, 3);
    }

    #[test]
    fn bad_plans_name_their_fields() {
        let bad = SamplerConfig::new(Method::EulerMaruyama, 0, 1e-3);
        let e = SamplingPlan::new(&vp(), &bad, 10, 2, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sampler.steps"), "{e}");
        let ok = SamplerConfig::new(Method::EulerMaruyama, 10, 1e-3);
        let e = SamplingPlan::new(&vp(), &ok, 0, 2, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("n must be"), "{e}");
        let e = SamplingPlan::new(&vp(), &ok, usize::MAX / 8, 2, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("n must be small enough to fit in memory"), "{e}");
        let mut sde = vp();
        sde.beta_max = Some(0.2);
        let e = SamplingPlan::new(&sde, &ok, 10, 2, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("m(T)"), "{e}");
    }
}
