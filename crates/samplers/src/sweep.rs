//! NFE sweeps of sampler families, measured against an exact planar law.
//!
//! A [`SamplerSpec`] is a sampler family (method, grid, `t_ε`, final denoising) run at a list
//! of budgets of score evaluations ([`SamplerSpec::runs`]); [`sample_planar`] draws one run and
//! measures it against exact radial and angular CDFs ([`evaluate_planar`]) and, optionally,
//! by its sliced Wasserstein-2 distance to a fresh draw of the data.

use std::collections::BTreeSet;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use smoluchowski_core::validate::{fmt_f64, Checker};
use smoluchowski_core::MemoryEstimate;
use smoluchowski_metrics::{evaluate_planar, sliced_wasserstein, KsResult};
use smoluchowski_sde::{ForwardSde, Score};

use crate::{
    configs_for_budgets, dormand_prince_configs, sample_with_progress, GridSpacing, Method,
    SamplerConfig, SamplerError,
};

/// Largest NFE budget [`check_budgets`] accepts.
pub const MAX_NFE: usize = 100_000;

/// A sampler family run at every budget of an NFE list (a `[[sampling.samplers]]` table).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerSpec {
    /// Name used in statistic keys (`model.<name>.nfe20.ks_radius`): `[A-Za-z0-9_-]+`, unique.
    pub name: String,
    /// The integrator.
    pub method: Method,
    /// Final time `t_eps`.
    pub t_eps: f64,
    /// Tweedie's denoiser after the last step (one more evaluation).
    #[serde(default)]
    pub final_denoise: bool,
    /// Time grid (default uniform).
    #[serde(default)]
    pub grid: GridSpacing,
    /// Dormand–Prince only: one run per tolerance, `rtol = atol = tol` (empty: the method's own
    /// `rtol`/`atol`, one run). The NFE budgets do not apply to it: it reports its NFE.
    #[serde(default)]
    pub tolerances: Vec<f64>,
    /// Only the budgets up to this one (default: all).
    #[serde(default)]
    pub max_nfe: Option<usize>,
}

impl SamplerSpec {
    /// Whether the method is adaptive (Dormand–Prince: no step count to choose).
    pub fn adaptive(&self) -> bool {
        matches!(self.method, Method::DormandPrince { .. })
    }

    /// The family's configuration with one step (the budgets choose the steps).
    pub fn base(&self) -> SamplerConfig {
        SamplerConfig {
            method: self.method,
            steps: 1,
            t_eps: self.t_eps,
            final_denoise: self.final_denoise,
            grid: self.grid,
        }
    }

    /// `(label, config)` of every run at the budgets `nfe` (those `≤ max_nfe`): label
    /// `nfe<B>` with the largest step count whose NFE is `≤ B` ([`configs_for_budgets`]); for
    /// Dormand–Prince `tol<tol>` per tolerance ([`dormand_prince_configs`]) or one run
    /// `rtol<rtol>` without tolerances. `Err(B)`: the first budget no step count fits.
    pub fn runs(&self, nfe: &[usize]) -> Result<Vec<(String, SamplerConfig)>, usize> {
        if let Method::DormandPrince { rtol, .. } = self.method {
            if self.tolerances.is_empty() {
                return Ok(vec![(format!("rtol{rtol:e}"), self.base())]);
            }
            return Ok(dormand_prince_configs(&self.base(), &self.tolerances)
                .into_iter()
                .map(|(tol, c)| (format!("tol{tol:e}"), c))
                .collect());
        }
        let budgets: Vec<usize> = nfe
            .iter()
            .copied()
            .filter(|&b| self.max_nfe.is_none_or(|m| b <= m))
            .collect();
        Ok(configs_for_budgets(&self.base(), &budgets)?
            .into_iter()
            .map(|(b, c)| (format!("nfe{b}"), c))
            .collect())
    }

    /// The NFE rule in words (the solver's own, [`Method::nfe_rule`]) plus ` + 1 (denoise)`.
    pub fn nfe_rule(&self) -> String {
        let d = if self.final_denoise {
            " + 1 (denoise)"
        } else {
            ""
        };
        format!("{}{d}", self.method.nfe_rule())
    }

    /// `method, grid, t_eps[, denoised][, budgets ≤ max_nfe]`, e.g.
    /// `ddim(eta=0.0), log_snr grid, t_eps 0.001, denoised`.
    pub fn describe(&self) -> String {
        let method = match self.method {
            Method::DormandPrince { .. } => "dormand_prince".into(),
            m => serde_name(&m),
        };
        format!(
            "{method}, {} grid, t_eps {}{}{}",
            serde_name(&self.grid),
            fmt_f64(self.t_eps),
            if self.final_denoise { ", denoised" } else { "" },
            self.max_nfe
                .map(|m| format!(", budgets ≤ {m}"))
                .unwrap_or_default()
        )
    }

    /// Checks the family at `path` (name unique in `seen`, tolerances only for Dormand–Prince
    /// and positive, `max_nfe` leaves a budget of `nfe`) and its runs at `nfe`
    /// ([`SamplerSpec::check_runs`]).
    pub fn check<S: ForwardSde + ?Sized>(
        &self,
        c: &mut Checker,
        path: &str,
        seen: &mut BTreeSet<String>,
        (nfe_path, nfe): (&str, &[usize]),
        sde: Option<&S>,
    ) {
        c.unique_name(seen, &format!("{path}.name"), &self.name);
        c.require(
            self.tolerances.is_empty() || self.adaptive(),
            &format!("{path}.tolerances"),
            "empty unless method is dormand_prince",
            format!("{:?}", self.tolerances),
        );
        for (j, &t) in self.tolerances.iter().enumerate() {
            c.positive(&format!("{path}.tolerances[{j}]"), t);
        }
        if let Some(mx) = self.max_nfe {
            c.require(
                self.adaptive() || nfe.iter().any(|&b| b <= mx),
                &format!("{path}.max_nfe"),
                &format!(">= the smallest budget of {nfe_path} {nfe:?}"),
                mx,
            );
        }
        self.check_runs(c, path, (nfe_path, nfe), sde);
    }

    /// Every budget of `nfe` must fit one step (plus the final denoising), and each run's
    /// time grid must be valid on `sde` (the method's own parameters included).
    pub fn check_runs<S: ForwardSde + ?Sized>(
        &self,
        c: &mut Checker,
        path: &str,
        (nfe_path, nfe): (&str, &[usize]),
        sde: Option<&S>,
    ) {
        match (self.runs(nfe), sde) {
            (Err(b), _) => c.fail(format!(
                "{path} ({:?}): {nfe_path} budget {b} is too small for one step of its method{}",
                self.name,
                if self.final_denoise {
                    " plus the final denoising"
                } else {
                    ""
                }
            )),
            (Ok(runs), Some(sde)) => {
                for (label, cfg) in runs {
                    if let Err(e) = cfg.time_grid(sde) {
                        let (name, steps) = (&self.name, cfg.steps);
                        c.fail(format!("{path} ({name:?}, {label} = {steps} steps): {e}"));
                    }
                }
            }
            (Ok(_), None) => {}
        }
    }
}

/// An NFE list at `path`: 1 to 32 budgets, each in `1..=MAX_NFE`, strictly increasing.
pub fn check_budgets(c: &mut Checker, path: &str, nfe: &[usize]) {
    c.count(&format!("{path} (number of)"), nfe.len(), 1, 32);
    for (i, &b) in nfe.iter().enumerate() {
        c.count(&format!("{path}[{i}]"), b, 1, MAX_NFE);
    }
    c.require(
        nfe.windows(2).all(|w| w[0] < w[1]),
        path,
        "strictly increasing",
        format!("{nfe:?}"),
    );
}

/// Short name of a serde enum value: `"euler_maruyama"`, or `"ddim(eta=0.0)"` for a struct
/// variant (`variant(field=value, ...)`).
pub fn serde_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Object(map)) => map
            .iter()
            .map(|(k, v)| {
                let inner = match v {
                    serde_json::Value::Object(fields) => fields
                        .iter()
                        .map(|(f, x)| format!("{f}={x}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    other => other.to_string(),
                };
                format!("{k}({inner})")
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ => "?".into(),
    }
}

/// The exact planar law a sweep is measured against: its radial and angular CDFs and,
/// optionally, a fresh data draw for the sliced Wasserstein distance.
#[derive(Clone, Copy)]
pub struct PlanarLaw<'a> {
    /// CDF of `|x|`.
    pub radial_cdf: &'a dyn Fn(f64) -> f64,
    /// CDF of `atan2(y, x)` on `(−π, π]`.
    pub angular_cdf: &'a dyn Fn(f64) -> f64,
    /// `(reference draw (m × 2, row-major), directions K, seed)` of `SW₂`.
    pub reference: Option<(&'a [f64], usize, u64)>,
}

/// One sampling run measured against a [`PlanarLaw`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanarRun {
    /// Grid steps.
    pub steps: usize,
    /// Score evaluations the sampler used.
    pub nfe: usize,
    /// Wall time of the sampling alone (seconds).
    pub wall_s: f64,
    /// One-sample KS of the radius.
    pub radius_ks: KsResult,
    /// One-sample KS of the angle.
    pub angle_ks: KsResult,
    /// `SW₂(samples, reference)` (NaN without a reference).
    pub sliced_wasserstein: f64,
}

impl PlanarRun {
    /// `max(D_radius, D_angle)`.
    pub fn worst_d(&self) -> f64 {
        self.radius_ks.statistic.max(self.angle_ks.statistic)
    }
}

/// Draws `n` points with `config` from `seed` ([`sample_with_progress`]; `progress(step)`)
/// and measures them: KS of radius and angle against the exact CDFs ([`evaluate_planar`]),
/// and `SW₂` to the reference draw with `K` directions from its seed ([`sliced_wasserstein`]).
/// Returns the measurements and the samples (f64, row-major `n × 2`).
pub fn sample_planar<S, M>(
    sde: &S,
    score: &mut M,
    config: &SamplerConfig,
    (n, seed): (usize, u64),
    law: &PlanarLaw<'_>,
    mut progress: impl FnMut(usize),
) -> Result<(PlanarRun, Vec<f64>), SamplerError>
where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
{
    let start = Instant::now();
    let out = sample_with_progress(sde, score, config, n, seed, None, |i, _| progress(i))?;
    let wall_s = start.elapsed().as_secs_f64();
    let x: Vec<f64> = out.samples.iter().map(|&v| f64::from(v)).collect();
    let e = evaluate_planar(&x, law.radial_cdf, law.angular_cdf, None);
    let sw = law.reference.map_or(f64::NAN, |(reference, k, sw_seed)| {
        sliced_wasserstein(&x, reference, 2, k, sw_seed)
    });
    let run = PlanarRun {
        steps: config.steps,
        nfe: out.nfe,
        wall_s,
        radius_ks: e.radius_ks,
        angle_ks: e.angle_ks,
        sliced_wasserstein: sw,
    };
    Ok((run, x))
}

/// Memory of [`sample_planar`] drawing `n` points of dimension `dim` (at `path`): up to eight
/// `n × dim` f32 sampler buffers (state, score, noise, multistep history, output), the f64
/// copy, and four f64 per point for the radii, angles and their sorted copies.
pub fn sample_memory_estimate(path: &str, n: usize, dim: usize) -> MemoryEstimate {
    let d = dim as u128;
    MemoryEstimate::linear(path, n, 8 * 4 * d + 8 * d + 4 * 8, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoluchowski_core::MemoryBudget;
    use smoluchowski_sde::{GaussianOracle, VpSde};

    fn spec(text: &str) -> SamplerSpec {
        toml::from_str(&format!("name = \"s\"\nt_eps = 1e-3\n{text}")).unwrap()
    }

    #[test]
    fn runs_label_budgets_and_tolerances() {
        let heun = spec("method = \"probability_flow_heun\"\nmax_nfe = 10");
        let runs = heun.runs(&[5, 10, 20]).unwrap();
        let labels: Vec<_> = runs.iter().map(|r| (r.0.as_str(), r.1.steps)).collect();
        assert_eq!(labels, [("nfe5", 2), ("nfe10", 5)]);
        assert_eq!(heun.runs(&[1]), Err(1));
        let dp =
            spec("method = { dormand_prince = { rtol = 1e-3, atol = 1e-3 } }\ntolerances = [1e-2]");
        assert_eq!(dp.runs(&[5]).unwrap()[0].0, "tol1e-2");
        assert!(dp.adaptive() && !heun.adaptive());
        assert_eq!(dp.describe(), "dormand_prince, uniform grid, t_eps 0.001");
        let ddim = spec("method = { ddim = { eta = 0.0 } }\nfinal_denoise = true");
        assert_eq!(
            ddim.describe(),
            "ddim(eta=0.0), uniform grid, t_eps 0.001, denoised"
        );
        assert!(ddim.nfe_rule().ends_with(" + 1 (denoise)"));
    }

    #[test]
    fn check_names_the_field() {
        let sde = VpSde::new(0.1, 20.0, 1.0).unwrap();
        let mut c = Checker::new();
        let mut seen = BTreeSet::new();
        let s = spec("method = \"euler_maruyama\"\ntolerances = [-1.0]\nmax_nfe = 2");
        s.check(&mut c, "samplers[0]", &mut seen, ("nfe", &[5]), Some(&sde));
        check_budgets(&mut c, "nfe", &[10, 5, 0]);
        let e = c.finish().unwrap_err().to_string();
        for needle in [
            "samplers[0].tolerances",
            "samplers[0].tolerances[0]",
            "samplers[0].max_nfe",
            "nfe[2]",
            "strictly increasing",
        ] {
            assert!(e.contains(needle), "{needle} in {e}");
        }
    }

    #[test]
    fn sample_planar_measures_an_exact_gaussian() {
        // N(0, I) data: the exact score sampler reproduces a Rayleigh radius.
        let sde = VpSde::new(0.1, 20.0, 1.0).unwrap();
        let mut score = GaussianOracle::new(sde, vec![0.0, 0.0], vec![1.0, 1.0]).unwrap();
        let cfg = spec("method = \"euler_maruyama\"").runs(&[200]).unwrap()[0]
            .1
            .clone();
        let rayleigh = |r: f64| 1.0 - (-r * r / 2.0).exp();
        let uniform = |t: f64| (t + std::f64::consts::PI) / (2.0 * std::f64::consts::PI);
        let reference: Vec<f64> =
            sample_with_progress(&sde, &mut score, &cfg, 500, 9, None, |_, _| {})
                .unwrap()
                .samples
                .iter()
                .map(|&v| f64::from(v))
                .collect();
        let law = PlanarLaw {
            radial_cdf: &rayleigh,
            angular_cdf: &uniform,
            reference: Some((&reference, 8, 3)),
        };
        let mut steps = 0;
        let (run, x) =
            sample_planar(&sde, &mut score, &cfg, (2000, 1), &law, |i| steps = i).unwrap();
        assert_eq!((x.len(), run.nfe, steps), (4000, 200, 200));
        assert!(
            run.radius_ks.pvalue > 1e-3 && run.angle_ks.pvalue > 1e-3,
            "{run:?}"
        );
        assert!(run.sliced_wasserstein.is_finite() && run.worst_d() < 0.05);
    }

    #[test]
    fn a_huge_sample_count_does_not_fit() {
        let e = sample_memory_estimate("n_samples", 1_000_000_000_000, 2);
        assert!(MemoryBudget::new(1 << 40).check(&e).is_err());
        assert!(MemoryBudget::new(1 << 40)
            .check(&sample_memory_estimate("n_samples", 10_000, 2))
            .is_ok());
    }
}
