//! Kind `ring2d-oracle`: ring2d sampled with its *exact* score, so that what is left is
//! discretisation error only.
//!
//! The score is [`Ring2dOracle`]: `∇ log p_t` of `p_t = ring2d ∗ N(m(t)·, σ(t)² I)` by
//! quadrature (Tweedie's `∇ log p_t(x) = −E[x − m y | x_t = x] / σ²`). Every configuration of
//! `[sampling]` (any [`SamplerConfig`]: method, steps, grid, `t_eps`, final denoising) draws
//! `n_samples` points with it; the radius `|x|` and the angle `atan2(y, x)` of the samples are
//! compared with ring2d's exact marginal CDFs by one-sample KS. A network-trained run
//! (`ring2d`) with the same sampler then splits its error into network + discretisation: the
//! discretisation part is what this experiment measures.
//!
//! All configurations share one sampling seed (common random numbers: the same prior draw
//! `x_T`, so the deterministic samplers differ only by their discretisation).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{anyhow, Result};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use smoluchowski::datasets::{Dataset, Ring2d};
use smoluchowski::metrics::ks_one_sample_isf;
use smoluchowski::samplers::{
    sample_memory_estimate, serde_name, PlanarLaw, PlanarRun, SamplerConfig,
};
use smoluchowski::sde::{
    ring_radius_floor, score_relative_error, time_at_marginal_std, ForwardSde, Ring2dOracle, Sde,
};

use super::ring2d_samplers::{best_figure, measure_run};
use crate::figures::{self, nfe_panel, NfeStyle};
use crate::harness::{Experiment, Figure, KindEntry, RunContext};
use crate::manifest::{self, ExperimentHeader, ManifestText};
use crate::output::write_npy;
use crate::report;
use crate::seeding;
use crate::stats::{Ks, Rendered, TypedExperiment, Value};
use crate::tables::{DatasetTable, SdeTable};
use crate::validate::{fmt_f64, Checker};

/// Registration of this kind.
pub const ENTRY: KindEntry = KindEntry {
    kind: "ring2d-oracle",
    summary: "ring2d sampled with its exact (quadrature) score: KS of radius and angle vs steps \
              for each sampler, i.e. the discretisation error alone",
    load,
};

/// Most sampler configurations per manifest.
const MAX_RUNS: usize = 64;
/// Most grid steps per configuration (the oracle costs ~4 µs per point and step).
const MAX_STEPS: usize = 100_000;
/// Level of the KS critical value quoted in the report.
pub const ALPHA: f64 = 0.01;
/// Points per probe time of the oracle-resolution check.
const PROBE_POINTS: usize = 1000;
/// Probe times of the oracle-resolution check (log-spaced from the smallest `t_eps` to `T`).
const PROBE_TIMES: usize = 8;

/// `[oracle]`: quadrature resolution of [`Ring2dOracle::with_resolution`].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OracleTable {
    /// Radial midpoint nodes (`≥ 4`; default 20).
    #[serde(default = "default_radial")]
    pub n_radial: usize,
    /// Angular Gauss–Legendre budget per window (`≥ 6`; default 40).
    #[serde(default = "default_angular")]
    pub n_angular: usize,
}

fn default_radial() -> usize {
    20
}

fn default_angular() -> usize {
    40
}

impl Default for OracleTable {
    fn default() -> Self {
        Self {
            n_radial: default_radial(),
            n_angular: default_angular(),
        }
    }
}

/// One `[[sampling.runs]]` entry: a named sampler configuration.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// Name used in statistic keys (`<name>.ks_radius`): `[A-Za-z0-9_-]+`, unique.
    pub name: String,
    /// The sampler.
    pub sampler: SamplerConfig,
}

/// `[sampling]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingTable {
    /// Samples per configuration.
    pub n_samples: usize,
    /// Name of the run whose samples go to `samples.npy`.
    pub samples_npy: String,
    /// The configurations compared.
    pub runs: Vec<RunSpec>,
}

/// The whole manifest of kind `ring2d-oracle`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ring2dOracleManifest {
    /// `[experiment]`.
    pub experiment: ExperimentHeader,
    /// `[dataset]`.
    pub dataset: DatasetTable,
    /// `[sde]`.
    pub sde: SdeTable,
    /// `[oracle]` (optional).
    #[serde(default)]
    pub oracle: OracleTable,
    /// `[sampling]`.
    pub sampling: SamplingTable,
}

impl Ring2dOracleManifest {
    fn check(&self) -> Result<()> {
        let mut c = Checker::new();
        self.experiment.check(&mut c);
        let k = self.dataset.scale;
        c.require(
            k.is_finite() && k >= 2.0,
            "dataset.scale",
            ">= 2",
            fmt_f64(k),
        );
        self.sde.check(&mut c, "sde", false);
        let sde = self.sde.build();
        c.count("oracle.n_radial", self.oracle.n_radial, 4, 1000);
        c.count("oracle.n_angular", self.oracle.n_angular, 6, 1000);
        let sp = &self.sampling;
        c.count("sampling.n_samples", sp.n_samples, 1, usize::MAX);
        c.memory(
            "sampling",
            [sample_memory_estimate("n_samples", sp.n_samples, 2)],
        );
        c.count("sampling.runs (number of)", sp.runs.len(), 1, MAX_RUNS);
        let mut seen = std::collections::BTreeSet::new();
        for (i, r) in sp.runs.iter().enumerate() {
            let at = format!("sampling.runs[{i}]");
            c.unique_name(&mut seen, &format!("{at}.name"), &r.name);
            let reserved = RESERVED.contains(&r.name.as_str());
            let name = format!("{:?}", r.name);
            c.require(
                !reserved,
                &format!("{at}.name"),
                &format!("none of {RESERVED:?}"),
                name,
            );
            c.count(
                &format!("{at}.sampler.steps"),
                r.sampler.steps,
                1,
                MAX_STEPS,
            );
            if let Some(Err(e)) = sde.as_ref().ok().map(|sde| r.sampler.time_grid(sde)) {
                c.fail(format!("{at}.sampler: {e}"));
            }
        }
        c.require(
            sp.runs.iter().any(|r| r.name == sp.samples_npy),
            "sampling.samples_npy",
            "the name of one of sampling.runs",
            format!("{:?}", sp.samples_npy),
        );
        Ok(c.finish()?)
    }
}

fn load(m: &ManifestText) -> Result<Box<dyn Experiment>> {
    let parsed: Ring2dOracleManifest = manifest::parse_as(m)?;
    parsed.check().map_err(|e| e.context(m.display.clone()))?;
    Ok(Box::new(parsed))
}

/// Everything about a configuration except its step count (the curves of the KS-vs-NFE plot).
fn family(c: &SamplerConfig) -> String {
    format!(
        "{}, {} grid, t_eps {}{}",
        serde_name(&c.method),
        serde_name(&c.grid),
        fmt_f64(c.t_eps),
        if c.final_denoise { ", denoised" } else { "" }
    )
}

/// Max over probe points of `|s_res − s_ref| / (|s_ref| + 1/σ)` between the manifest's
/// resolution and a 2× finer reference (at least the default 20 × 40), at
/// [`PROBE_TIMES`] times log-spaced on `[t_min, T]`, points drawn from `p_t`
/// ([`score_relative_error`]).
fn oracle_resolution_error(
    (sde, ring): (&Sde, &Ring2d),
    oracle: &Ring2dOracle<Sde>,
    reference: &Ring2dOracle<Sde>,
    t_min: f64,
    seed: u64,
) -> f64 {
    let t_end = sde.t_end();
    let mut worst = 0.0f64;
    for j in 0..PROBE_TIMES {
        let u = j as f64 / (PROBE_TIMES - 1) as f64;
        let t = t_min * (t_end / t_min).powf(u);
        let mut rng = seeding::stream(seed, "oracle_probe", j as u64);
        let mut y = vec![0.0f64; 2 * PROBE_POINTS];
        ring.sample_into(&mut rng, &mut y);
        let mut x = vec![0.0f64; y.len()];
        sde.sample_marginal(&y, t, &mut rng, &mut x);
        worst = worst.max(score_relative_error(oracle, reference, &x, t));
    }
    worst
}

/// `<run>.*`: one configuration against ring2d's exact marginals.
#[derive(Debug, Default, Serialize)]
pub struct RunStats {
    pub ks_radius: Ks,
    pub ks_angle: Ks,
    pub nfe: Value,
}

/// `oracle.*`.
#[derive(Debug, Default, Serialize)]
pub struct OracleStats {
    pub resolution_error: Value,
}

/// The statistics of a `ring2d-oracle` run.
#[derive(Debug, Default, Serialize)]
pub struct Ring2dOracleStats {
    #[serde(flatten)]
    pub runs: BTreeMap<String, RunStats>,
    pub ks_critical_value: Value,
    pub oracle: OracleStats,
}

/// What compute hands to render: one measurement per `sampling.runs` entry (same order).
pub struct Computed {
    sde: Sde,
    ring: Ring2d,
    measured: Vec<PlanarRun>,
    npy_samples: Vec<f64>,
    best_idx: usize,
    best_x: Vec<f64>,
    crit: f64,
    t_min: f64,
    sampling_seed: u64,
}

/// Report prose, next to the code (`{name}` placeholders, see [`report::fill`]).
const HOW_TO_READ: &str = include_str!("ring2d_oracle/how_to_read.md");
const CHECK_YOURSELF: &str = include_str!("ring2d_oracle/check_yourself.md");

/// Reserved top-level statistic names a run may not take.
const RESERVED: [&str; 2] = ["ks_critical_value", "oracle"];

impl TypedExperiment for Ring2dOracleManifest {
    type Stats = Ring2dOracleStats;
    type Computed = Computed;

    fn header(&self) -> &ExperimentHeader {
        &self.experiment
    }

    fn declared(&self) -> Ring2dOracleStats {
        let runs = self.sampling.runs.iter();
        Ring2dOracleStats {
            runs: runs
                .map(|r| (r.name.clone(), RunStats::default()))
                .collect(),
            ..Default::default()
        }
    }

    fn compute(&self, ctx: &mut RunContext<'_>) -> Result<(Ring2dOracleStats, Computed)> {
        let sde = self.sde.build()?;
        let ring = Ring2d::new(self.dataset.scale).map_err(|e| anyhow!("dataset: {e}"))?;
        let n = self.sampling.n_samples;
        let (mut oracle, reference) = self.oracles(sde, &ring)?;
        let runs = &self.sampling.runs;
        let t_min = runs
            .iter()
            .map(|r| r.sampler.t_eps)
            .fold(f64::INFINITY, f64::min);
        let seed = ctx.seed;
        let resolution_error = ctx.time("oracle_probe", || {
            oracle_resolution_error((&sde, &ring), &oracle, &reference, t_min, seed)
        });
        let sampling_seed = seeding::stream(seed, "sampling", 0).next_u64();
        let (radial, angular) = (|v| ring.radial_cdf(v), |v| ring.angular_cdf(v));
        let law = PlanarLaw {
            radial_cdf: &radial,
            angular_cdf: &angular,
            reference: None,
        };
        let (mut measured, mut npy_samples) = (Vec::new(), Vec::new());
        // (index, worst D, samples) of the run with the smallest max(D_radius, D_angle).
        let mut best: Option<(usize, f64, Vec<f64>)> = None;
        for r in runs {
            let key = format!("sampling.runs {:?}", r.name);
            let n_seed = (n, sampling_seed);
            let (m, x) = measure_run(ctx, &key, &sde, &mut oracle, &r.sampler, n_seed, &law)?;
            if r.name == self.sampling.samples_npy {
                npy_samples = x.clone();
            }
            if best.as_ref().is_none_or(|b| m.worst_d() < b.1) {
                best = Some((measured.len(), m.worst_d(), x));
            }
            measured.push(m);
        }
        let crit = ks_one_sample_isf(ALPHA, n);
        let stats = Ring2dOracleStats {
            runs: (runs.iter().zip(&measured))
                .map(|(r, m)| {
                    let s = RunStats {
                        ks_radius: m.radius_ks.into(),
                        ks_angle: m.angle_ks.into(),
                        nfe: (m.nfe as f64).into(),
                    };
                    (r.name.clone(), s)
                })
                .collect(),
            ks_critical_value: crit.into(),
            oracle: OracleStats {
                resolution_error: resolution_error.into(),
            },
        };
        let (best_idx, _, best_x) = best.ok_or_else(|| anyhow!("no sampling runs"))?;
        let computed = Computed {
            sde,
            ring,
            measured,
            npy_samples,
            best_idx,
            best_x,
            crit,
            t_min,
            sampling_seed,
        };
        Ok((stats, computed))
    }

    fn render(
        &self,
        stats: &Ring2dOracleStats,
        c: &Computed,
        ctx: &mut RunContext<'_>,
    ) -> Result<Rendered> {
        let n = self.sampling.n_samples;
        let out = ctx.out;
        let best_name = &self.sampling.runs[c.best_idx].name;
        let figures = ctx.time("write", || -> Result<Vec<Figure>> {
            write_npy(&out.file("samples.npy"), &[n, 2], &c.npy_samples)?;
            let caption = format!(
                "The notes' layout for the run with the smallest KS distances ({best_name}). Left: \
                 2-D histogram of the {n} samples (colour ∝ √density). Middle: angle histogram \
                 against the exact angular density. Right: radius histogram against the exact \
                 Gamma(k, rate k) density, k = {}.",
                c.ring.scale()
            );
            Ok(vec![
                self.ks_vs_nfe_figure(out, c)?,
                best_figure(
                    out,
                    &c.ring,
                    &c.best_x,
                    ("ring2d_best.png", caption),
                    (
                        format!("run {best_name} (n = {n}), 2-D histogram"),
                        "samples (exact score)",
                    ),
                )?,
            ])
        })?;
        let npy = &self.sampling.samples_npy;
        let check = [
            ("n", n.to_string()),
            ("npy", npy.clone()),
            ("k", self.dataset.scale.to_string()),
            ("alpha", ALPHA.to_string()),
        ];
        Ok(Rendered {
            parameters: self.parameters(c),
            figures,
            files: vec![(
                "samples.npy".into(),
                format!("the {n} samples of run `{npy}` (float64, shape ({n}, 2))"),
            )],
            sections: vec![
                ("Results".into(), self.results_table(c)),
                ("How to read this".into(), self.how_to_read(stats, c)),
                (
                    "Check it yourself (NumPy/SciPy)".into(),
                    report::fill(CHECK_YOURSELF, &check),
                ),
            ],
        })
    }
}

impl Ring2dOracleManifest {
    /// The oracle at the manifest's resolution and the 2× finer reference.
    fn oracles(&self, sde: Sde, ring: &Ring2d) -> Result<(Ring2dOracle<Sde>, Ring2dOracle<Sde>)> {
        let o = &self.oracle;
        let oracle = Ring2dOracle::with_resolution(sde, ring.clone(), o.n_radial, o.n_angular)
            .map_err(|e| anyhow!("oracle: {e}"))?;
        let [rr, ra] = reference_resolution(o);
        let reference = Ring2dOracle::with_resolution(sde, ring.clone(), rr, ra)
            .map_err(|e| anyhow!("oracle: {e}"))?;
        Ok((oracle, reference))
    }

    /// The results table, one row per configuration, with the critical value.
    fn results_table(&self, c: &Computed) -> String {
        let (n, crit) = (self.sampling.n_samples, c.crit);
        let mut table = String::from(
            "| run | sampler | steps | t_eps | denoise | NFE | D radius (p) | D angle (p) | verdict | wall s |\n\
             |---|---|---:|---:|:---:|---:|---|---|---|---:|\n",
        );
        for (r, m) in self.sampling.runs.iter().zip(&c.measured) {
            let s = &r.sampler;
            let verdict = if m.worst_d() < crit {
                "indistinguishable"
            } else {
                "**distinguishable**"
            };
            let (kr, ka) = (m.radius_ks, m.angle_ks);
            let _ = writeln!(
                table,
                "| {} | {} ({} grid) | {} | {} | {} | {} | {:.5} ({:.3}) | {:.5} ({:.3}) | {} | {:.1} |",
                r.name,
                serde_name(&s.method),
                serde_name(&s.grid),
                s.steps,
                fmt_f64(s.t_eps),
                if s.final_denoise { "yes" } else { "no" },
                m.nfe,
                kr.statistic,
                kr.pvalue,
                ka.statistic,
                ka.pvalue,
                verdict,
                m.wall_s,
            );
        }
        let _ = write!(
            table,
            "\nKS critical value at α = {ALPHA} for n = {n}: D = {crit:.5} (asymptotic 1.6276/√n = {:.5}). \
             \"indistinguishable\": both D below it (both p-values above {ALPHA}).",
            1.6276 / (n as f64).sqrt()
        );
        table
    }

    /// "How to read this", with the t_eps floors ([`ring_radius_floor`]) and the time the
    /// noise reaches the ring's width ([`time_at_marginal_std`]).
    fn how_to_read(&self, stats: &Ring2dOracleStats, c: &Computed) -> String {
        let (sde, n) = (&c.sde, self.sampling.n_samples);
        let k = self.dataset.scale;
        let s0 = 1.0 / k.sqrt();
        let mut floors = String::new();
        let mut t_epss: Vec<f64> = self.sampling.runs.iter().map(|r| r.sampler.t_eps).collect();
        t_epss.sort_by(f64::total_cmp);
        t_epss.dedup();
        for t in &t_epss {
            let f = ring_radius_floor(sde, s0, *t);
            let _ = writeln!(
                floors,
                "- t_eps = {}: m = {:.6}, σ = {:.3e}; radius sd inflated by {:.3}%, mean shifted by {:.1e} sd \
                 ⇒ D_radius floor ≈ {:.4} without denoising.",
                fmt_f64(*t),
                f.m,
                f.sigma,
                100.0 * f.scale_err,
                f.mean_err,
                f.d_radius,
            );
        }
        let t_ring = time_at_marginal_std(sde, s0);
        report::fill(
            HOW_TO_READ,
            &[
                ("n", n.to_string()),
                ("k", k.to_string()),
                ("s0", format!("{s0:.4}")),
                ("nr", self.oracle.n_radial.to_string()),
                ("na", self.oracle.n_angular.to_string()),
                ("pp", PROBE_POINTS.to_string()),
                ("pt", PROBE_TIMES.to_string()),
                ("t_min", fmt_f64(c.t_min)),
                (
                    "resolution_error",
                    format!("{:.1e}", stats.oracle.resolution_error.value),
                ),
                ("typ", format!("{:.5}", 0.8276 / (n as f64).sqrt())),
                ("crit", format!("{:.5}", c.crit)),
                ("alpha", ALPHA.to_string()),
                ("t_ring", format!("{t_ring:.4}")),
                ("t_end", fmt_f64(sde.t_end())),
                ("frac", format!("{:.4}", t_ring / sde.t_end())),
                ("floors", floors),
            ],
        )
    }

    /// Derived parameters echoed in metrics.json.
    fn parameters(&self, c: &Computed) -> serde_json::Value {
        let runs = self.sampling.runs.iter().zip(&c.measured);
        json!({
            "ks_alpha": ALPHA,
            "ks_critical_value": c.crit,
            "sampling_seed": c.sampling_seed,
            "oracle_resolution": [self.oracle.n_radial, self.oracle.n_angular],
            "oracle_reference_resolution": reference_resolution(&self.oracle),
            "best_run": self.sampling.runs[c.best_idx].name,
            "runs": runs.map(|(r, m)| json!({
                "name": r.name,
                "family": family(&r.sampler),
                "nfe": m.nfe,
                "wall_time_s": m.wall_s,
                "d_radius": m.radius_ks.statistic,
                "d_angle": m.angle_ks.statistic,
            })).collect::<Vec<_>>(),
        })
    }

    /// KS D against NFE (both log-scaled), one curve per sampler family, radius and angle
    /// panels, with the critical value.
    fn ks_vs_nfe_figure(&self, out: &crate::output::OutputDir, c: &Computed) -> Result<Figure> {
        let n = self.sampling.n_samples;
        let runs: Vec<(String, &PlanarRun)> = (self.sampling.runs.iter().zip(&c.measured))
            .map(|(r, m)| (family(&r.sampler), m))
            .collect();
        let mut families: Vec<&String> = Vec::new();
        for (f, _) in &runs {
            if !families.contains(&f) {
                families.push(f);
            }
        }
        let style = NfeStyle {
            x_pad: 0.15,
            y_pad: (0.15, 0.35),
            radius: 4,
            viridis_max: 0.9,
        };
        let panel = |title: &str, pick: &dyn Fn(&PlanarRun) -> f64| {
            let curves: Vec<(String, Vec<(usize, f64)>)> = (families.iter())
                .map(|&f| {
                    let pts = runs.iter().filter(|r| &r.0 == f);
                    (f.clone(), pts.map(|(_, m)| (m.nfe, pick(m))).collect())
                })
                .collect();
            let bar = (c.crit, format!("KS critical value, α = {ALPHA}"));
            nfe_panel((title, "KS D"), &curves, bar, &style)
        };
        let left = panel("radius |x|: KS D vs NFE", &|m| m.radius_ks.statistic);
        let right = panel("angle atan2(y, x): KS D vs NFE", &|m| m.angle_ks.statistic);
        figures::draw_row(&out.file("ks_vs_nfe.png"), &[left, right], (720, 540))?;
        Ok(Figure {
            file: "ks_vs_nfe.png".into(),
            caption: format!(
                "One-sample KS distance of the radius (left) and angle (right) of n = {n} samples drawn with the \
                 exact score, against the number of score evaluations (x-axis: log₁₀ NFE; y log-scaled). One curve \
                 per sampler (method, grid, t_eps, final denoising); black: the KS critical value at α = {ALPHA}. \
                 Below it the samples are statistically indistinguishable from ring2d at this n."
            ),
        })
    }
}

/// The reference quadrature: 2× the manifest's, at least the default 20 × 40.
fn reference_resolution(o: &OracleTable) -> [usize; 2] {
    [(2 * o.n_radial).max(20), (2 * o.n_angular).max(40)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks_critical_matches_scipy() {
        // scipy.stats.kstwo.isf(0.01, 100000) = 0.005145321961471824,
        // scipy.stats.kstwo.isf(0.01, 20000) = 0.011500601261353029
        // (the asymptotic 1.6276/√n gives 0.005147 and 0.011509).
        let d = ks_one_sample_isf(0.01, 100_000);
        assert!((d - 0.005145321961471824).abs() < 1e-7, "{d}");
        let d = ks_one_sample_isf(0.01, 20_000);
        assert!((d - 0.011500601261353029).abs() < 1e-7, "{d}");
    }
}
