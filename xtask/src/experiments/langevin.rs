//! Kind `langevin`: Langevin MCMC from exact log-densities (seed 002), unadjusted (ULA) vs
//! Metropolis-adjusted (MALA), on `ring2d` and the 8-Gaussians mixture, over several steps `ε`.
//!
//! ULA `x ← x + ε ∇log q(x) + √(2ε) z` is biased by `O(ε)`; MALA accepts the same proposal with
//! the Metropolis–Hastings probability and is exact for every `ε`. Each run uses `n_chains`
//! independent chains (so the final states are i.i.d.) run for the same Langevin time
//! `time = n_steps · ε`, and compares their final states with the exact marginals by KS:
//! - `ring2d`: radius against `Gamma(k, rate k)`, angle `atan2(y, x)` against
//!   `p(θ) = 1/(8 max(cos²θ, sin²θ))`. Chains start on the unit circle at uniform angles (wrong
//!   radial law, wrong angular law).
//! - mixture: coordinate `x₁` against `Σ_k w_k Φ((x − μ_k1)/s)`. Langevin chains cannot cross
//!   between modes this far apart in any feasible time, so they start at a component mean drawn
//!   with the mixture's weights and must relax the within-mode shape. Closed form: ULA on an
//!   isolated `N(μ, s² I)` has stationary variance `s² / (1 − ε/(2s²))` per coordinate, so the
//!   mean squared distance to the nearest mean over `2 s²` (`var_ratio`) is `1/(1 − ε/(2s²))`
//!   for ULA and `1` for MALA.
//!
//! Initial states: `samplers::langevin_init::{unit_circle_states, component_mean_states}`;
//! ULA's exact bias `samplers::langevin_init::ula_gaussian_variance_ratio`; the within-mode ratio
//! `metrics::nearest_center_variance_ratio`; the tables, their validation (memory included) and
//! the runs `samplers::langevin_sweep::{RingSweepConfig, MixtureSweepConfig, StepSweep}`.
//!
//! Chains run in fixed chunks with per-chunk ChaCha8 streams (`langevin_chains`), seeded per run
//! from `seeding::stream(seed, "<dataset>.<method>.eps<i>", 0)`: thread-count independent.

use std::collections::BTreeMap;

use anyhow::{anyhow, Result};
use plotters::style::RGBColor;
use serde::{Deserialize, Serialize};
use serde_json::json;
use smoluchowski::metrics::{
    angles, ks_critical_asymptotic, ks_one_sample, mean_var, nearest_center_variance_ratio, radii,
};
use smoluchowski::samplers::langevin::{LangevinOutput, LogDensity, MixtureLogDensity};
use smoluchowski::samplers::langevin_init::{
    component_mean_states, ula_gaussian_variance_ratio, unit_circle_states,
};
use smoluchowski::samplers::langevin_sweep::{
    MixtureSweepConfig, RingSweepConfig, StepSweep, METHODS,
};

use crate::figures::{self, log_log_series, palette, scatter_panel, Legend, Line, Panel};
use crate::harness::{Experiment, Figure, KindEntry, RunContext};
use crate::manifest::{self, ExperimentHeader, ManifestText};
use crate::output::{write_npy, OutputDir};
use crate::report;
use crate::seeding;
use crate::stats::{Ks, Rendered, TypedExperiment, Value};
use crate::validate::Checker;

/// Registration of this kind.
pub const ENTRY: KindEntry = KindEntry {
    kind: "langevin",
    summary:
        "ULA vs MALA from exact log-densities (ring2d, 8 Gaussians): O(ε) bias, KS, acceptance",
    load,
};

/// KS level of the report's "rejected?" column and of the critical-value line.
const ALPHA: f64 = 0.01;
/// Points per scatter panel.
const SCATTER: usize = 4000;

/// The whole manifest of kind `langevin`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LangevinManifest {
    /// `[experiment]`.
    pub experiment: ExperimentHeader,
    /// `[ring2d]`.
    pub ring2d: RingSweepConfig,
    /// `[mixture]`.
    pub mixture: MixtureSweepConfig,
}

impl LangevinManifest {
    fn check(&self) -> Result<()> {
        let mut c = Checker::new();
        self.experiment.check(&mut c);
        self.ring2d.check(&mut c, "ring2d");
        self.mixture.check(&mut c, "mixture");
        Ok(c.finish()?)
    }
}

fn load(m: &ManifestText) -> Result<Box<dyn Experiment>> {
    let parsed: LangevinManifest = manifest::parse_as(m)?;
    parsed.check().map_err(|e| e.context(m.display.clone()))?;
    let bad = |what: &str, e| crate::validate::bad_input(format!("{}: {what}: {e}", m.display));
    parsed.mixture.build().map_err(|e| bad("mixture", e))?;
    parsed.ring2d.build().map_err(|e| bad("ring2d", e))?;
    Ok(Box::new(parsed))
}

/// The runs of one method in step order (`eps0`, `eps1`, ...).
fn in_order<T>(runs: &BTreeMap<String, T>) -> Vec<&T> {
    (0..runs.len()).map(|i| &runs[&format!("eps{i}")]).collect()
}

/// `ring2d.<method>.eps<i>.*`.
#[derive(Debug, Default, Serialize)]
pub struct RingRunStats {
    /// KS of the radii against `Gamma(k, rate k)`.
    pub ks_radius: Ks,
    /// KS of the angles against the exact angular law.
    pub ks_angle: Ks,
    /// Radius sample variance times `k`.
    pub radial_var_ratio: Value,
    /// Metropolis–Hastings acceptance rate (1 for ULA).
    pub acceptance: Value,
}

/// `mixture.<method>.eps<i>.*`.
#[derive(Debug, Default, Serialize)]
pub struct MixtureRunStats {
    /// KS of `x₁` against the exact marginal.
    pub ks_x: Ks,
    /// Mean squared distance to the nearest mean over `2s²`.
    pub var_ratio: Value,
    /// Metropolis–Hastings acceptance rate (1 for ULA).
    pub acceptance: Value,
}

/// Method (`ula`, `mala`) → `eps<i>` → run.
pub type Sweep<T> = BTreeMap<String, BTreeMap<String, T>>;

/// The statistics of a `langevin` run.
#[derive(Debug, Default, Serialize)]
pub struct LangevinStats {
    /// The ring2d sweep.
    pub ring2d: Sweep<RingRunStats>,
    /// The mixture sweep.
    pub mixture: Sweep<MixtureRunStats>,
}

/// The final states of both methods at the largest step (ULA, MALA).
pub struct Computed {
    ring_last: Vec<Vec<f64>>,
    mix_last: Vec<Vec<f64>>,
}

/// Report prose, next to the code (`{name}` placeholders, see [`report::fill`]).
const HOW_TO_READ: &str = include_str!("langevin/how_to_read.md");
const CHECK_YOURSELF: &str = include_str!("langevin/check_yourself.md");

fn sweep<T: Default>(n_steps: usize) -> Sweep<T> {
    METHODS
        .iter()
        .map(|(m, _)| {
            let runs = (0..n_steps).map(|i| (format!("eps{i}"), T::default()));
            (m.to_string(), runs.collect())
        })
        .collect()
}

/// Every (step, method) run of `sweep` on `target` from `init`, summarised by `stats`; the
/// final states at the largest step (ULA, MALA).
fn run_sweep<T: LogDensity + Sync, S: Default>(
    ctx: &mut RunContext<'_>,
    data: &str,
    sweep: StepSweep<'_>,
    (target, init): (&T, &[f64]),
    stats: impl Fn(&LangevinOutput) -> S,
) -> Result<(Sweep<S>, Vec<Vec<f64>>)> {
    let seed = ctx.seed;
    let (mut all, mut last) = (self::sweep::<S>(sweep.steps.len()), Vec::new());
    for i in 0..sweep.steps.len() {
        for (m, method) in METHODS {
            let key = format!("{data}.{m}.eps{i}");
            let out = ctx.time(&key, || sweep.run(target, init, method, i, seed, &key));
            let out = out.map_err(|e| anyhow!("{e}"))?;
            let runs = all.get_mut(m).expect("method");
            runs.insert(format!("eps{i}"), stats(&out));
            if i + 1 == sweep.steps.len() {
                last.push(out.samples);
            }
        }
    }
    Ok((all, last))
}

/// A log–log panel of per-step statistics against `ε`, with the KS critical value for `n`.
fn ks_panel(
    title: String,
    steps: &[f64],
    series: Vec<(String, RGBColor, Vec<f64>)>,
    n: usize,
) -> Panel {
    let panel = Panel {
        title,
        x_label: "log₁₀ ε".into(),
        y_label: "KS D".into(),
        y_log10: true,
        legend: Legend::UpperLeft,
        ..Default::default()
    };
    let crit = (
        ks_critical_asymptotic(ALPHA, n),
        format!("KS critical value, α = {ALPHA}"),
    );
    log_log_series(panel, steps, series, 1e-6, Some(crit))
}

impl LangevinManifest {
    /// `ring2d_<method>.npy`, `mixture_<method>.npy`; their descriptions.
    fn write_arrays(&self, c: &Computed, out: &OutputDir) -> Result<Vec<(String, String)>> {
        let mut files = Vec::new();
        for (data, last, steps) in [
            ("ring2d", &c.ring_last, &self.ring2d.steps),
            ("mixture", &c.mix_last, &self.mixture.steps),
        ] {
            let eps_max = steps[steps.len() - 1];
            for ((m, _), x) in METHODS.iter().zip(last) {
                let f = format!("{data}_{m}.npy");
                write_npy(&out.file(&f), &[x.len() / 2, 2], x)?;
                let (method, n) = (m.to_uppercase(), x.len() / 2);
                let what = format!(
                    "{data} final states of {method} at ε = {eps_max} (float64, shape ({n}, 2))"
                );
                files.push((f, what));
            }
        }
        Ok(files)
    }

    /// The mixture's within-mode variance ratio per step against ULA's exact value.
    fn ratio_panel(&self, stats: &LangevinStats) -> Panel {
        let mx = &self.mixture;
        let s2 = mx.std * mx.std;
        let lo = mx.steps[0].log10() - 0.1;
        let hi = mx.steps[mx.steps.len() - 1].log10() + 0.1;
        // The exact ULA curve diverges at ε = 2s²: stop it at 0.9 · 2s².
        let hi_curve = hi.min((1.8 * s2).log10());
        let line = |points, color, width, label: &str| Line {
            points,
            color,
            alpha: 1.0,
            width,
            label: Some(label.into()),
        };
        let exact = figures::curve(lo, hi_curve, 200, |le| {
            ula_gaussian_variance_ratio(10f64.powf(le), s2).log10()
        });
        let panel = Panel {
            title: "8 Gaussians: within-mode variance / s²".into(),
            x_label: "log₁₀ ε".into(),
            y_label: "E|x − μ|² / (2 s²)".into(),
            legend: Legend::UpperLeft,
            y_log10: true,
            lines: vec![
                line(exact, palette::EXACT, 2, "ULA exact 1/(1 − ε/(2s²))"),
                line(vec![(lo, 0.0), (hi, 0.0)], palette::EXACT2, 1, "target: 1"),
            ],
            ..Default::default()
        };
        let series = [("ula", palette::DATA), ("mala", palette::DATA2)].map(|(m, color)| {
            let v = in_order(&stats.mixture[m])
                .iter()
                .map(|s| s.var_ratio.value)
                .collect();
            (format!("{} measured", m.to_uppercase()), color, v)
        });
        log_log_series(panel, &mx.steps, series.into(), f64::MIN, None)
    }

    /// `ks_vs_step.png`.
    fn ks_figure(&self, stats: &LangevinStats, out: &OutputDir) -> Result<Figure> {
        let (r, mx) = (&self.ring2d, &self.mixture);
        let ring = [
            ("ula", "radius", palette::DATA),
            ("ula", "angle", RGBColor(44, 160, 44)),
            ("mala", "radius", palette::DATA2),
            ("mala", "angle", RGBColor(148, 103, 189)),
        ]
        .map(|(m, what, color)| {
            let runs = in_order(&stats.ring2d[m]);
            let pick = |s: &&RingRunStats| match what {
                "radius" => s.ks_radius.statistic,
                _ => s.ks_angle.statistic,
            };
            (
                format!("{} {what}", m.to_uppercase()),
                color,
                runs.iter().map(pick).collect(),
            )
        });
        let mix = [("ula", palette::DATA), ("mala", palette::DATA2)].map(|(m, color)| {
            let d = in_order(&stats.mixture[m])
                .iter()
                .map(|s| s.ks_x.statistic)
                .collect();
            (m.to_uppercase(), color, d)
        });
        let panels = [
            ks_panel(
                format!("ring2d (k = {}), n = {}", r.scale, r.n_chains),
                &r.steps,
                ring.into(),
                r.n_chains,
            ),
            ks_panel(
                format!(
                    "{} Gaussians (s = {}), coordinate x₁",
                    mx.n_components, mx.std
                ),
                &mx.steps,
                mix.into(),
                mx.n_chains,
            ),
            self.ratio_panel(stats),
        ];
        figures::draw_row(&out.file("ks_vs_step.png"), &panels, (560, 440))?;
        Ok(Figure {
            file: "ks_vs_step.png".into(),
            caption: format!(
                "KS statistic D of the final states of independent chains against the exact \
                 marginals, per step size ε (equal Langevin time per chain), log-log; red: the \
                 KS critical value at α = {ALPHA}. ULA's D grows with ε (its O(ε) bias); MALA \
                 stays at the sampling-noise level. Right: the 8-Gaussians' within-mode \
                 variance ratio against ULA's exact stationary value 1/(1 − ε/(2s²))."
            ),
        })
    }

    /// `samples.png`: final states at the largest step.
    fn samples_figure(&self, c: &Computed, out: &OutputDir) -> Result<Figure> {
        let (r, mx) = (&self.ring2d, &self.mixture);
        let eps_max_r = r.steps[r.steps.len() - 1];
        let eps_max_m = mx.steps[mx.steps.len() - 1];
        let (lim_r, lim_m) = (1.0 + 6.0 / r.scale.sqrt(), mx.radius + 6.0 * mx.std);
        let panels: Vec<Panel> = [
            (&c.ring_last, "ring2d", eps_max_r, lim_r),
            (&c.mix_last, "mixture", eps_max_m, lim_m),
        ]
        .into_iter()
        .flat_map(|(last, data, eps, lim)| {
            (last.iter().zip(["ULA", "MALA"])).map(move |(x, m)| {
                scatter_panel(x, SCATTER, format!("{data}, {m}, ε = {eps}"), lim)
            })
        })
        .collect();
        figures::draw_row(&out.file("samples.png"), &panels, (420, 420))?;
        Ok(Figure {
            file: "samples.png".into(),
            caption: format!(
                "{SCATTER} final states at the largest step: ULA's ring is visibly too thick \
                 (radial variance ×{:.2}) and its mixture modes too wide; MALA's are not.",
                1.0 / (1.0 - eps_max_r * r.scale / 2.0)
            ),
        })
    }

    /// Derived parameters echoed in metrics.json.
    fn parameters(&self) -> serde_json::Value {
        let (r, mx) = (&self.ring2d, &self.mixture);
        let s2 = mx.std * mx.std;
        let runs = |sweep: StepSweep<'_>, key: &str, ratio: &dyn Fn(f64) -> f64| {
            let run =
                |&eps: &f64| json!({"eps": eps, "n_steps": sweep.n_steps(eps), (key): ratio(eps)});
            sweep.steps.iter().map(run).collect::<Vec<_>>()
        };
        let ring_ratio = |eps: f64| 1.0 / (1.0 - eps * r.scale / 2.0);
        let params_ring = runs(r.sweep(), "ula_radial_var_ratio_approx", &ring_ratio);
        let mix_ratio = |eps: f64| ula_gaussian_variance_ratio(eps, s2);
        let params_mix = runs(mx.sweep(), "ula_var_ratio_exact", &mix_ratio);
        json!({
            "ring2d": {
                "runs": params_ring,
                "ks_critical_value_alpha_0.01": ks_critical_asymptotic(ALPHA, r.n_chains),
                "init": "unit circle, angle uniform in (−π, π)",
            },
            "mixture": {
                "runs": params_mix,
                "ks_critical_value_alpha_0.01": ks_critical_asymptotic(ALPHA, mx.n_chains),
                "init": "component mean, component drawn with the weights",
                "var_ratio_standard_error": 1.0 / (mx.n_chains as f64).sqrt(),
            },
            "rng": "per run: langevin_chains seed = first u64 of seeding::stream(seed, \"<dataset>.<method>.eps<i>\", 0); per chunk of 256 chains: ChaCha8 keyed (seed, \"langevin\"), stream = chunk",
        })
    }

    /// "How to read this" and "Check it yourself".
    fn sections(&self) -> Vec<(String, String)> {
        let (r, mx) = (&self.ring2d, &self.mixture);
        let crit = |n| format!("{:.4}", ks_critical_asymptotic(ALPHA, n));
        let how = [
            ("nr", r.n_chains.to_string()),
            ("nm", mx.n_chains.to_string()),
            ("alpha", ALPHA.to_string()),
            ("cr", crit(r.n_chains)),
            ("cm", crit(mx.n_chains)),
            ("se", format!("{:.4}", 1.0 / (mx.n_chains as f64).sqrt())),
        ];
        let check = [
            ("k", r.scale.to_string()),
            ("ir", (r.steps.len() - 1).to_string()),
        ];
        vec![
            ("How to read this".into(), report::fill(HOW_TO_READ, &how)),
            (
                "Check it yourself (NumPy/SciPy)".into(),
                report::fill(CHECK_YOURSELF, &check),
            ),
        ]
    }
}

impl TypedExperiment for LangevinManifest {
    type Stats = LangevinStats;
    type Computed = Computed;

    fn header(&self) -> &ExperimentHeader {
        &self.experiment
    }

    fn declared(&self) -> LangevinStats {
        LangevinStats {
            ring2d: sweep(self.ring2d.steps.len()),
            mixture: sweep(self.mixture.steps.len()),
        }
    }

    fn compute(&self, ctx: &mut RunContext<'_>) -> Result<(LangevinStats, Computed)> {
        let (r, mx, seed) = (&self.ring2d, &self.mixture, ctx.seed);
        let ring = r.build().map_err(|e| anyhow!("ring2d: {e}"))?;
        let init = unit_circle_states(&mut seeding::stream(seed, "ring2d.init", 0), r.n_chains);
        let (ring2d, ring_last) = run_sweep(ctx, "ring2d", r.sweep(), (&ring, &init), |out| {
            let (rad, ang) = (radii(&out.samples), angles(&out.samples));
            RingRunStats {
                ks_radius: ks_one_sample(&rad, |x| ring.radial_cdf(x)).into(),
                ks_angle: ks_one_sample(&ang, |x| ring.angular_cdf(x)).into(),
                radial_var_ratio: (mean_var(&rad).1 * r.scale).into(),
                acceptance: out.acceptance_rate().into(),
            }
        })?;
        let mixture = mx.build().map_err(|e| anyhow!("mixture: {e}"))?;
        let target = MixtureLogDensity::new(&mixture);
        let mut rng = seeding::stream(seed, "mixture.init", 0);
        let init = component_mean_states(&mixture, &mut rng, mx.n_chains);
        let centers: Vec<f64> = (0..mixture.n_components())
            .flat_map(|c| [mixture.mean(c)[0], mixture.mean(c)[1]])
            .collect();
        let (mix, mix_last) = run_sweep(ctx, "mixture", mx.sweep(), (&target, &init), |out| {
            let xs: Vec<f64> = out.samples.chunks_exact(2).map(|p| p[0]).collect();
            let vr = nearest_center_variance_ratio(&out.samples, &centers, 2, mx.std * mx.std);
            MixtureRunStats {
                ks_x: ks_one_sample(&xs, |x| mixture.marginal_cdf(0, x)).into(),
                var_ratio: vr.into(),
                acceptance: out.acceptance_rate().into(),
            }
        })?;
        let stats = LangevinStats {
            ring2d,
            mixture: mix,
        };
        Ok((
            stats,
            Computed {
                ring_last,
                mix_last,
            },
        ))
    }

    fn render(
        &self,
        stats: &LangevinStats,
        c: &Computed,
        ctx: &mut RunContext<'_>,
    ) -> Result<Rendered> {
        let out = ctx.out;
        let (files, figures) = ctx.time("write", || -> Result<_> {
            let files = self.write_arrays(c, out)?;
            let figures = vec![self.ks_figure(stats, out)?, self.samples_figure(c, out)?];
            Ok((files, figures))
        })?;
        Ok(Rendered {
            parameters: self.parameters(),
            figures,
            files,
            sections: self.sections(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::kinds;

    fn manifest() -> LangevinManifest {
        toml::from_str(include_str!("../../../experiments/langevin.toml")).unwrap()
    }

    #[test]
    fn declared_keys_cover_the_golden_names() {
        let m = manifest();
        let k = kinds(&m.declared());
        let n = 2 * (4 * m.ring2d.steps.len() + 3 * m.mixture.steps.len());
        assert_eq!(k.len(), n);
        assert_eq!(k["ring2d.mala.eps0.ks_angle"], crate::harness::StatKind::Ks);
        assert_eq!(
            k["mixture.ula.eps0.var_ratio"],
            crate::harness::StatKind::Value
        );
        let golden = include_str!("../../../experiments/langevin.golden.toml");
        for line in golden.lines().filter(|l| l.starts_with("stat = ")) {
            let name = line.trim_start_matches("stat = ").trim_matches('"');
            assert!(k.contains_key(name), "{name}");
        }
    }

    #[test]
    fn report_templates_fill() {
        let s = manifest().sections();
        assert!(s[0].1.contains("α = 0.01"));
        assert!(s[1].1.contains("ks_angle"));
    }
}
