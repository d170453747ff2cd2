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
//! `metrics::nearest_center_variance_ratio`.
//!
//! Chains run in fixed chunks with per-chunk ChaCha8 streams (`langevin_chains`), seeded per run
//! from `seeding::stream(seed, "<dataset>.<method>.eps<i>", 0)`: thread-count independent.

use std::collections::BTreeMap;

use anyhow::{anyhow, Result};
use plotters::style::RGBColor;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use smoluchowski::datasets::{GaussianMixture, Ring2d};
use smoluchowski::metrics::{
    ks_critical_asymptotic, ks_one_sample, nearest_center_variance_ratio, radii,
};
use smoluchowski::samplers::langevin::{
    langevin_chains, LangevinConfig, LangevinMethod, LangevinOutput, LogDensity, MixtureLogDensity,
};
use smoluchowski::samplers::langevin_init::{
    component_mean_states, ula_gaussian_variance_ratio, unit_circle_states,
};

use crate::figures::{self, palette, Legend, Line, Panel, Points};
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

const MAX_CHAINS: usize = 10_000_000;
const MAX_STEPS: usize = 16;
/// KS level of the report's "rejected?" column and of the critical-value line.
const ALPHA: f64 = 0.01;
/// Points per scatter panel.
const SCATTER: usize = 4000;

/// `[ring2d]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RingSpec {
    /// Gamma shape = rate `k` of the radius.
    pub scale: f64,
    /// Independent chains per run.
    pub n_chains: usize,
    /// Langevin time per chain; `n_steps = time / ε` must be whole.
    pub time: f64,
    /// Step sizes `ε`, increasing; ULA needs `ε k < 2` to be stable.
    pub steps: Vec<f64>,
}

/// `[mixture]`: `n_components` isotropic Gaussians of std `std` on the circle of radius `radius`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MixtureSpec {
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

/// The whole manifest of kind `langevin`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LangevinManifest {
    /// `[experiment]`.
    pub experiment: ExperimentHeader,
    /// `[ring2d]`.
    pub ring2d: RingSpec,
    /// `[mixture]`.
    pub mixture: MixtureSpec,
}

fn whole_steps(t: f64, dt: f64) -> Option<usize> {
    let k = (t / dt).round();
    ((k - t / dt).abs() <= 1e-9 * k.max(1.0) && (1.0..=1e7).contains(&k)).then_some(k as usize)
}

fn check_steps(c: &mut Checker, table: &str, steps: &[f64], time: f64, max_step: f64, why: &str) {
    c.count(
        &format!("length of {table}.steps"),
        steps.len(),
        1,
        MAX_STEPS,
    );
    for (i, &e) in steps.iter().enumerate() {
        let p = format!("{table}.steps[{i}]");
        c.positive(&p, e);
        if !(e.is_finite() && e > 0.0) {
            continue;
        }
        if i > 0 && steps[i - 1].is_finite() {
            c.require(
                e > steps[i - 1],
                &p,
                &format!("> {table}.steps[{}] = {}", i - 1, steps[i - 1]),
                e,
            );
        }
        if max_step.is_finite() {
            c.require(e < max_step, &p, &format!("< {max_step} ({why})"), e);
        }
        if time.is_finite() && time > 0.0 && whole_steps(time, e).is_none() {
            c.fail(format!(
                "{p} must divide {table}.time = {time} into whole steps (got time / step = {})",
                time / e
            ));
        }
    }
}

impl LangevinManifest {
    fn check(&self) -> Result<()> {
        let mut c = Checker::new();
        self.experiment.check(&mut c);
        let r = &self.ring2d;
        c.positive("ring2d.scale", r.scale);
        c.count("ring2d.n_chains", r.n_chains, 10, MAX_CHAINS);
        c.positive("ring2d.time", r.time);
        check_steps(
            &mut c,
            "ring2d",
            &r.steps,
            r.time,
            2.0 / r.scale,
            "2 / ring2d.scale: ULA stability",
        );
        let m = &self.mixture;
        c.count("mixture.n_components", m.n_components, 1, 1000);
        c.positive("mixture.radius", m.radius);
        c.positive("mixture.std", m.std);
        c.count("mixture.n_chains", m.n_chains, 10, MAX_CHAINS);
        c.positive("mixture.time", m.time);
        check_steps(
            &mut c,
            "mixture",
            &m.steps,
            m.time,
            2.0 * m.std * m.std,
            "2 mixture.std²: ULA stability",
        );
        Ok(c.finish()?)
    }

    fn mixture(&self) -> Result<GaussianMixture> {
        let m = &self.mixture;
        GaussianMixture::on_circle(m.n_components, m.radius, m.std)
            .map_err(|e| crate::validate::bad_input(format!("mixture: {e}")))
    }
}

fn load(m: &ManifestText) -> Result<Box<dyn Experiment>> {
    let parsed: LangevinManifest = manifest::parse_as(m)?;
    parsed.check().map_err(|e| e.context(m.display.clone()))?;
    parsed.mixture().map_err(|e| e.context(m.display.clone()))?;
    Ring2d::new(parsed.ring2d.scale)
        .map_err(|e| crate::validate::bad_input(format!("{}: ring2d: {e}", m.display)))?;
    Ok(Box::new(parsed))
}

const METHODS: [(&str, LangevinMethod); 2] =
    [("ula", LangevinMethod::Ula), ("mala", LangevinMethod::Mala)];

/// Sample variance (unbiased).
fn variance(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0)
}

/// Angles `atan2(y, x)` of 2-D rows.
fn angles(x: &[f64]) -> Vec<f64> {
    x.chunks_exact(2).map(|p| p[1].atan2(p[0])).collect()
}

/// The runs of one method in step order (`eps0`, `eps1`, ...).
fn in_order<T>(runs: &BTreeMap<String, T>) -> Vec<&T> {
    (0..runs.len()).map(|i| &runs[&format!("eps{i}")]).collect()
}

/// One run's final states and acceptance rate.
fn run_chains<T: LogDensity + Sync>(
    target: &T,
    init: &[f64],
    method: LangevinMethod,
    step: f64,
    n_steps: usize,
    seed: u64,
) -> Result<LangevinOutput> {
    let cfg = LangevinConfig::final_state(method, step, n_steps);
    langevin_chains(target, init, &cfg, seed).map_err(|e| anyhow!("{e}"))
}

fn run_seed(seed: u64, name: &str) -> u64 {
    seeding::stream(seed, name, 0).gen()
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

/// `(log₁₀ x, log₁₀ y)` points of a per-step series.
fn log_points(eps: &[f64], y: &[f64], floor: f64) -> Vec<(f64, f64)> {
    eps.iter()
        .zip(y)
        .map(|(e, v)| (e.log10(), v.max(floor).log10()))
        .collect()
}

/// A series as a line with dots.
fn series(pts: Vec<(f64, f64)>, color: RGBColor, label: String) -> (Line, Points) {
    (
        Line {
            points: pts.clone(),
            color,
            alpha: 1.0,
            width: 2,
            label: Some(label),
        },
        Points {
            points: pts,
            color,
            alpha: 1.0,
            radius: 4,
        },
    )
}

/// The horizontal KS critical-value line across the step range.
fn crit_line(eps: &[f64], crit: f64) -> Line {
    Line {
        points: vec![
            (eps[0].log10() - 0.1, crit.log10()),
            (eps[eps.len() - 1].log10() + 0.1, crit.log10()),
        ],
        color: palette::MARK,
        alpha: 1.0,
        width: 1,
        label: Some(format!("KS critical value, α = {ALPHA}")),
    }
}

/// A scatter panel of the first [`SCATTER`] 2-D states.
fn scatter(x: &[f64], title: String, lim: f64) -> Panel {
    Panel {
        title,
        x_label: "x₁".into(),
        y_label: "x₂".into(),
        points: vec![Points {
            points: x
                .chunks_exact(2)
                .take(SCATTER)
                .map(|p| (p[0], p[1]))
                .collect(),
            color: palette::DATA,
            alpha: 0.35,
            radius: 1,
        }],
        x_range: Some((-lim, lim)),
        y_range: Some((-lim, lim)),
        ..Default::default()
    }
}

impl LangevinManifest {
    /// Every (method, step) run on ring2d from uniform angles on the unit circle.
    fn ring_runs(&self, ctx: &mut RunContext<'_>) -> Result<(Sweep<RingRunStats>, Vec<Vec<f64>>)> {
        let (r, seed) = (&self.ring2d, ctx.seed);
        let ring = Ring2d::new(r.scale).map_err(|e| anyhow!("ring2d: {e}"))?;
        let init = unit_circle_states(&mut seeding::stream(seed, "ring2d.init", 0), r.n_chains);
        let mut stats = sweep::<RingRunStats>(r.steps.len());
        let mut last = Vec::new();
        for (i, &eps) in r.steps.iter().enumerate() {
            let n_steps = whole_steps(r.time, eps).unwrap_or(1);
            for (m, method) in METHODS {
                let key = format!("ring2d.{m}.eps{i}");
                let out = ctx.time(&key, || {
                    run_chains(&ring, &init, method, eps, n_steps, run_seed(seed, &key))
                })?;
                let rad = radii(&out.samples);
                let ang = angles(&out.samples);
                let s = RingRunStats {
                    ks_radius: ks_one_sample(&rad, |x| ring.radial_cdf(x)).into(),
                    ks_angle: ks_one_sample(&ang, |x| ring.angular_cdf(x)).into(),
                    radial_var_ratio: (variance(&rad) * r.scale).into(),
                    acceptance: out.acceptance_rate().into(),
                };
                stats
                    .get_mut(m)
                    .expect("method")
                    .insert(format!("eps{i}"), s);
                if i + 1 == r.steps.len() {
                    last.push(out.samples);
                }
            }
        }
        Ok((stats, last))
    }

    /// Every (method, step) run on the mixture from component means.
    fn mixture_runs(
        &self,
        ctx: &mut RunContext<'_>,
    ) -> Result<(Sweep<MixtureRunStats>, Vec<Vec<f64>>)> {
        let (mx, seed) = (&self.mixture, ctx.seed);
        let mixture = self.mixture()?;
        let target = MixtureLogDensity::new(&mixture);
        let mut rng = seeding::stream(seed, "mixture.init", 0);
        let init = component_mean_states(&mixture, &mut rng, mx.n_chains);
        let centers: Vec<f64> = (0..mixture.n_components())
            .flat_map(|c| [mixture.mean(c)[0], mixture.mean(c)[1]])
            .collect();
        let mut stats = sweep::<MixtureRunStats>(mx.steps.len());
        let mut last = Vec::new();
        for (i, &eps) in mx.steps.iter().enumerate() {
            let n_steps = whole_steps(mx.time, eps).unwrap_or(1);
            for (m, method) in METHODS {
                let key = format!("mixture.{m}.eps{i}");
                let out = ctx.time(&key, || {
                    run_chains(&target, &init, method, eps, n_steps, run_seed(seed, &key))
                })?;
                let xs: Vec<f64> = out.samples.chunks_exact(2).map(|p| p[0]).collect();
                let vr = nearest_center_variance_ratio(&out.samples, &centers, 2, mx.std * mx.std);
                let s = MixtureRunStats {
                    ks_x: ks_one_sample(&xs, |x| mixture.marginal_cdf(0, x)).into(),
                    var_ratio: vr.into(),
                    acceptance: out.acceptance_rate().into(),
                };
                stats
                    .get_mut(m)
                    .expect("method")
                    .insert(format!("eps{i}"), s);
                if i + 1 == mx.steps.len() {
                    last.push(out.samples);
                }
            }
        }
        Ok((stats, last))
    }

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
                files.push((
                    f,
                    format!(
                        "{data} final states of {} at ε = {eps_max} (float64, shape ({}, 2))",
                        m.to_uppercase(),
                        x.len() / 2
                    ),
                ));
            }
        }
        Ok(files)
    }

    /// KS D of ring2d's radius and angle per step, log-log.
    fn ring_ks_panel(&self, stats: &LangevinStats) -> Panel {
        let r = &self.ring2d;
        let grey = RGBColor(44, 160, 44);
        let purple = RGBColor(148, 103, 189);
        let mut panel = Panel {
            title: format!("ring2d (k = {}), n = {}", r.scale, r.n_chains),
            x_label: "log₁₀ ε".into(),
            y_label: "KS D".into(),
            y_log10: true,
            legend: Legend::UpperLeft,
            ..Default::default()
        };
        for ((m, what), color) in [
            (("ula", "radius"), palette::DATA),
            (("ula", "angle"), grey),
            (("mala", "radius"), palette::DATA2),
            (("mala", "angle"), purple),
        ] {
            let d: Vec<f64> = in_order(&stats.ring2d[m])
                .into_iter()
                .map(|s| match what {
                    "radius" => s.ks_radius.statistic,
                    _ => s.ks_angle.statistic,
                })
                .collect();
            let label = format!("{} {what}", m.to_uppercase());
            let (l, p) = series(log_points(&r.steps, &d, 1e-6), color, label);
            panel.lines.push(l);
            panel.points.push(p);
        }
        panel.lines.push(crit_line(
            &r.steps,
            ks_critical_asymptotic(ALPHA, r.n_chains),
        ));
        panel
    }

    /// KS D of the mixture's `x₁` per step, log-log.
    fn mixture_ks_panel(&self, stats: &LangevinStats) -> Panel {
        let mx = &self.mixture;
        let mut panel = Panel {
            title: format!(
                "{} Gaussians (s = {}), coordinate x₁",
                mx.n_components, mx.std
            ),
            x_label: "log₁₀ ε".into(),
            y_label: "KS D".into(),
            y_log10: true,
            legend: Legend::UpperLeft,
            ..Default::default()
        };
        for (m, color) in [("ula", palette::DATA), ("mala", palette::DATA2)] {
            let d: Vec<f64> = in_order(&stats.mixture[m])
                .iter()
                .map(|s| s.ks_x.statistic)
                .collect();
            let (l, p) = series(log_points(&mx.steps, &d, 1e-6), color, m.to_uppercase());
            panel.lines.push(l);
            panel.points.push(p);
        }
        panel.lines.push(crit_line(
            &mx.steps,
            ks_critical_asymptotic(ALPHA, mx.n_chains),
        ));
        panel
    }

    /// The mixture's within-mode variance ratio per step against ULA's exact value.
    fn ratio_panel(&self, stats: &LangevinStats) -> Panel {
        let mx = &self.mixture;
        let s2 = mx.std * mx.std;
        let mut panel = Panel {
            title: "8 Gaussians: within-mode variance / s²".into(),
            x_label: "log₁₀ ε".into(),
            y_label: "E|x − μ|² / (2 s²)".into(),
            legend: Legend::UpperLeft,
            y_log10: true,
            ..Default::default()
        };
        let lo = mx.steps[0].log10() - 0.1;
        let hi = mx.steps[mx.steps.len() - 1].log10() + 0.1;
        // The exact ULA curve diverges at ε = 2s²: stop it at 0.9 · 2s².
        let hi_curve = hi.min((1.8 * s2).log10());
        panel.lines.push(Line {
            points: figures::curve(lo, hi_curve, 200, |le| {
                ula_gaussian_variance_ratio(10f64.powf(le), s2).log10()
            }),
            color: palette::EXACT,
            alpha: 1.0,
            width: 2,
            label: Some("ULA exact 1/(1 − ε/(2s²))".into()),
        });
        panel.lines.push(Line {
            points: vec![(lo, 0.0), (hi, 0.0)],
            color: palette::EXACT2,
            alpha: 1.0,
            width: 1,
            label: Some("target: 1".into()),
        });
        for (m, color) in [("ula", palette::DATA), ("mala", palette::DATA2)] {
            let v: Vec<f64> = in_order(&stats.mixture[m])
                .iter()
                .map(|s| s.var_ratio.value)
                .collect();
            let pts = log_points(&mx.steps, &v, f64::MIN);
            panel.points.push(Points {
                points: pts.clone(),
                color,
                alpha: 1.0,
                radius: 5,
            });
            panel.lines.push(Line {
                points: pts,
                color,
                alpha: 0.6,
                width: 1,
                label: Some(format!("{} measured", m.to_uppercase())),
            });
        }
        panel
    }

    /// `ks_vs_step.png`.
    fn ks_figure(&self, stats: &LangevinStats, out: &OutputDir) -> Result<Figure> {
        let panels = [
            self.ring_ks_panel(stats),
            self.mixture_ks_panel(stats),
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
        let lim_r = 1.0 + 6.0 / r.scale.sqrt();
        let lim_m = mx.radius + 6.0 * mx.std;
        let panels = vec![
            scatter(
                &c.ring_last[0],
                format!("ring2d, ULA, ε = {eps_max_r}"),
                lim_r,
            ),
            scatter(
                &c.ring_last[1],
                format!("ring2d, MALA, ε = {eps_max_r}"),
                lim_r,
            ),
            scatter(
                &c.mix_last[0],
                format!("mixture, ULA, ε = {eps_max_m}"),
                lim_m,
            ),
            scatter(
                &c.mix_last[1],
                format!("mixture, MALA, ε = {eps_max_m}"),
                lim_m,
            ),
        ];
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
        let params_ring: Vec<_> = r
            .steps
            .iter()
            .map(|&eps| {
                json!({
                    "eps": eps,
                    "n_steps": whole_steps(r.time, eps).unwrap_or(1),
                    "ula_radial_var_ratio_approx": 1.0 / (1.0 - eps * r.scale / 2.0),
                })
            })
            .collect();
        let params_mix: Vec<_> = mx
            .steps
            .iter()
            .map(|&eps| {
                json!({
                    "eps": eps,
                    "n_steps": whole_steps(mx.time, eps).unwrap_or(1),
                    "ula_var_ratio_exact": ula_gaussian_variance_ratio(eps, s2),
                })
            })
            .collect();
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
        let how = report::fill(
            HOW_TO_READ,
            &[
                ("nr", r.n_chains.to_string()),
                ("nm", mx.n_chains.to_string()),
                ("alpha", ALPHA.to_string()),
                (
                    "cr",
                    format!("{:.4}", ks_critical_asymptotic(ALPHA, r.n_chains)),
                ),
                (
                    "cm",
                    format!("{:.4}", ks_critical_asymptotic(ALPHA, mx.n_chains)),
                ),
                ("se", format!("{:.4}", 1.0 / (mx.n_chains as f64).sqrt())),
            ],
        );
        let check = report::fill(
            CHECK_YOURSELF,
            &[
                ("k", r.scale.to_string()),
                ("ir", (r.steps.len() - 1).to_string()),
            ],
        );
        vec![
            ("How to read this".into(), how),
            ("Check it yourself (NumPy/SciPy)".into(), check),
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
        let (ring2d, ring_last) = self.ring_runs(ctx)?;
        let (mixture, mix_last) = self.mixture_runs(ctx)?;
        let computed = Computed {
            ring_last,
            mix_last,
        };
        Ok((LangevinStats { ring2d, mixture }, computed))
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
    fn whole_steps_requires_divisibility() {
        assert_eq!(whole_steps(0.5, 2.5e-4), Some(2000));
        assert_eq!(whole_steps(0.5, 3e-4), None);
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
