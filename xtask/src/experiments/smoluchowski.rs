//! Kind `smoluchowski`: the figure of seed 000, checked against the exact Gaussian kernels.
//!
//! - Free diffusion `dx = √(2D) dW` from `x₀`: Euler–Maruyama to `t_check` then on to `t_end`;
//!   positions at `t` compared with the exact law `N(x₀, 2Dt)` (one-sample KS).
//! - Ornstein–Uhlenbeck `dx = −a x dt + √(2D) dW` from `x₀`: at `t_mid` against the exact kernel
//!   `N(x₀ e^{−at}, (D/a)(1 − e^{−2at}))`, at `t_end` against the stationary law `N(0, D/a)`.
//!
//! Particles are simulated by `sde::simulate_ensemble` in chunks of `sde::RELEASE_CHUNK`; chunk `c`
//! of sub-stream `name` uses `seeding::stream(seed, name, c)`, so the numbers do not depend on
//! the thread count; the drawn paths are chunk 0 replayed (`sde::ensemble_paths`).

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use smoluchowski::metrics::{ks_critical_asymptotic, ks_one_sample, mean_var};
use smoluchowski::sde::{normal_cdf, ForwardSde, FreeDiffusionRun, OuRun, OuSde, PointRelease};
use smoluchowski::sde::{Trajectories, RELEASE_CHUNK};

use crate::figures::{self, histograms_vs_densities, palette, Legend, Line, Series};
use crate::figures::{paths_panel, Panel};
use crate::harness::{Experiment, Figure, KindEntry, RunContext};
use crate::manifest::{self, ExperimentHeader, ManifestText};
use crate::output::write_npy;
use crate::report;
use crate::stats::{Ks, Rendered, TypedExperiment, Value};
use crate::validate::Checker;

/// Registration of this kind.
pub const ENTRY: KindEntry = KindEntry {
    kind: "smoluchowski",
    summary:
        "free diffusion and Ornstein–Uhlenbeck by Euler–Maruyama vs exact Gaussian kernels (KS)",
    load,
};

/// The whole manifest of kind `smoluchowski`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmoluchowskiManifest {
    /// `[experiment]`.
    pub experiment: ExperimentHeader,
    /// `[free_diffusion]`.
    pub free_diffusion: FreeDiffusionRun,
    /// `[ou]`.
    pub ou: OuRun,
}

impl SmoluchowskiManifest {
    fn check(&self) -> Result<()> {
        let mut c = Checker::new();
        self.experiment.check(&mut c);
        self.free_diffusion.check(&mut c, "free_diffusion");
        self.ou.check(&mut c, "ou");
        Ok(c.finish()?)
    }
}

fn load(m: &ManifestText) -> Result<Box<dyn Experiment>> {
    let parsed: SmoluchowskiManifest = manifest::parse_as(m)?;
    parsed.check().map_err(|e| e.context(m.display.clone()))?;
    Ok(Box::new(parsed))
}

/// A 1-D recording as `(times, positions, particles)`.
fn paths(t: &Trajectories) -> (&[f64], &[f64], usize) {
    (&t.times, &t.positions, t.particles)
}

/// Normal density `exp(−(x−μ)²/(2σ²)) / (σ√(2π))`.
fn normal_pdf(x: f64, mu: f64, sd: f64) -> f64 {
    let z = (x - mu) / sd;
    (-0.5 * z * z).exp() / (sd * (2.0 * std::f64::consts::PI).sqrt())
}

/// `free_diffusion.*`: the positions at `t_check` and `t_end` against `N(x₀, 2Dt)`.
#[derive(Debug, Default, Serialize)]
pub struct FreeDiffusionStats {
    /// KS of the positions at `t_check`.
    pub ks_t_check: Ks,
    /// KS of the positions at `t_end`.
    pub ks_t_end: Ks,
    /// Sample mean at `t_check`.
    pub mean_t_check: Value,
    /// Sample variance (n − 1) at `t_check`.
    pub var_t_check: Value,
}

/// `ou.*`: the kernel at `t_mid`, the stationary law at `t_end`.
#[derive(Debug, Default, Serialize)]
pub struct OuStats {
    /// KS at `t_mid` against `N(x₀e^{−at}, (D/a)(1 − e^{−2at}))`.
    pub ks_t_mid: Ks,
    /// KS at `t_end` against the stationary `N(0, D/a)`.
    pub ks_t_end_stationary: Ks,
    /// Sample mean at `t_mid`.
    pub mean_t_mid: Value,
    /// Sample variance at `t_end`.
    pub var_t_end: Value,
}

/// The statistics of a `smoluchowski` run.
#[derive(Debug, Default, Serialize)]
pub struct SmoluchowskiStats {
    /// Free diffusion.
    pub free_diffusion: FreeDiffusionStats,
    /// Ornstein–Uhlenbeck.
    pub ou: OuStats,
}

/// Both processes and their simulated releases.
pub struct Simulated {
    free: OuSde,
    ou: OuSde,
    /// Free diffusion at `t_check`, `t_end`, its drawn paths and stops.
    fr: PointRelease,
    /// OU at `t_mid`, `t_end`, its drawn paths and stops.
    or: PointRelease,
}

/// Report prose, next to the code (`{name}` placeholders, see [`report::fill`]).
const HOW_TO_READ: &str = include_str!("smoluchowski/how_to_read.md");
const CHECK_YOURSELF: &str = include_str!("smoluchowski/check_yourself.md");

impl TypedExperiment for SmoluchowskiManifest {
    type Stats = SmoluchowskiStats;
    type Computed = Simulated;

    fn header(&self) -> &ExperimentHeader {
        &self.experiment
    }

    fn declared(&self) -> SmoluchowskiStats {
        SmoluchowskiStats::default()
    }

    fn compute(&self, ctx: &mut RunContext<'_>) -> Result<(SmoluchowskiStats, Simulated)> {
        let (f, o, seed) = (&self.free_diffusion, &self.ou, ctx.seed);
        let free = f.sde().map_err(|e| anyhow!("free_diffusion: {e}"))?;
        let fr = ctx.time("free_diffusion", || {
            f.simulate(&free, seed, "free_diffusion")
        });
        let free_stats = ctx.time("free_diffusion_stats", || {
            let (m, v) = mean_var(&fr.first);
            FreeDiffusionStats {
                ks_t_check: ks_one_sample(&fr.first, |x| free.marginal_cdf(f.x0, f.t_check, x))
                    .into(),
                ks_t_end: ks_one_sample(&fr.last, |x| free.marginal_cdf(f.x0, f.t_end, x)).into(),
                mean_t_check: m.into(),
                var_t_check: v.into(),
            }
        });
        let ou = o.sde().map_err(|e| anyhow!("ou: {e}"))?;
        let or = ctx.time("ou", || o.simulate(&ou, seed, "ou"));
        let sd_stat = (o.diffusion / o.a).sqrt();
        let ou_stats = ctx.time("ou_stats", || OuStats {
            ks_t_mid: ks_one_sample(&or.first, |x| ou.marginal_cdf(o.x0, o.t_mid, x)).into(),
            ks_t_end_stationary: ks_one_sample(&or.last, |x| normal_cdf(x / sd_stat)).into(),
            mean_t_mid: mean_var(&or.first).0.into(),
            var_t_end: mean_var(&or.last).1.into(),
        });
        let stats = SmoluchowskiStats {
            free_diffusion: free_stats,
            ou: ou_stats,
        };
        Ok((stats, Simulated { free, ou, fr, or }))
    }

    fn render(
        &self,
        _stats: &SmoluchowskiStats,
        sim: &Simulated,
        ctx: &mut RunContext<'_>,
    ) -> Result<Rendered> {
        let (f, o, out) = (&self.free_diffusion, &self.ou, ctx.out);
        let figures = ctx.time("write", || -> Result<Vec<Figure>> {
            write_npy(
                &out.file("samples.npy"),
                &[sim.fr.first.len()],
                &sim.fr.first,
            )?;
            let both: Vec<f64> = sim
                .or
                .first
                .iter()
                .zip(&sim.or.last)
                .flat_map(|(a, b)| [*a, *b])
                .collect();
            write_npy(&out.file("ou_samples.npy"), &[sim.or.first.len(), 2], &both)?;
            let [free, ou] = self.panels(sim)?;
            figures::draw_row(&out.file("free_diffusion.png"), &free, (640, 480))?;
            figures::draw_row(&out.file("ou.png"), &ou, (640, 480))?;
            Ok(self.figures(sim))
        })?;
        let crit = ks_critical_asymptotic(1e-3, f.n_particles);
        let how = [
            ("n", f.n_particles.to_string()),
            (
                "typ",
                format!("{:.4}", 0.8687 / (f.n_particles as f64).sqrt()),
            ),
            ("crit", format!("{crit:.4}")),
            ("no", o.n_particles.to_string()),
            ("dt", o.dt.to_string()),
        ];
        let check = [
            ("n", f.n_particles.to_string()),
            ("t", f.t_check.to_string()),
            ("tm", o.t_mid.to_string()),
            ("te", o.t_end.to_string()),
            ("no", o.n_particles.to_string()),
            ("x0", f.x0.to_string()),
            ("d", f.diffusion.to_string()),
        ];
        Ok(Rendered {
            parameters: self.parameters(sim),
            figures,
            files: vec![
                (
                    "samples.npy".into(),
                    format!(
                        "free-diffusion positions at t = {} (float64, shape ({},))",
                        f.t_check, f.n_particles
                    ),
                ),
                (
                    "ou_samples.npy".into(),
                    format!(
                        "OU positions at t = {} and t = {} (float64, shape ({}, 2))",
                        o.t_mid, o.t_end, o.n_particles
                    ),
                ),
            ],
            sections: vec![
                ("How to read this".into(), report::fill(HOW_TO_READ, &how)),
                (
                    "Check it yourself (NumPy/SciPy)".into(),
                    report::fill(CHECK_YOURSELF, &check),
                ),
            ],
        })
    }
}

impl SmoluchowskiManifest {
    /// Free diffusion: paths, histogram at `t_check` vs `N(x₀, 2Dt)`; OU: paths with the exact
    /// mean, histograms at `t_mid`, `t_end` vs the exact kernel and the stationary law.
    fn panels(&self, sim: &Simulated) -> Result<[[Panel; 2]; 2]> {
        let (f, o) = (&self.free_diffusion, &self.ou);
        let sd = sim.free.marginal_std(f.t_check);
        let title = format!(
            "{} trajectories, free diffusion D = {}",
            sim.fr.paths.particles, f.diffusion
        );
        let free_paths = paths_panel(title, paths(&sim.fr.paths), f.t_check, f.t_end, vec![]);
        let pdf = |x: f64| normal_pdf(x, f.x0, sd);
        let free_hist = histograms_vs_densities(
            format!("positions at t = {} (N = {})", f.t_check, f.n_particles),
            &[Series::new(
                &sim.fr.first[..],
                palette::DATA,
                "Euler–Maruyama",
            )],
            &[Series::new(
                &pdf,
                palette::EXACT,
                format!("exact N({}, 2Dt = {:.3})", f.x0, sd * sd),
            )],
            (f.x0 - 4.5 * sd, f.x0 + 4.5 * sd),
            f.bins,
        )?;

        let (mu_mid, sd_mid) = (
            sim.ou.mean_coef(o.t_mid) * o.x0,
            sim.ou.marginal_std(o.t_mid),
        );
        let sd_stat = (o.diffusion / o.a).sqrt();
        let mean = Line {
            points: figures::curve(0.0, o.t_end, 400, |t| o.x0 * (-o.a * t).exp()),
            color: palette::EXACT,
            alpha: 1.0,
            width: 2,
            label: Some("exact mean x₀e^(−at)".into()),
        };
        let title = format!(
            "{} OU paths, a = {}, D = {}",
            sim.or.paths.particles, o.a, o.diffusion
        );
        let ou_paths = paths_panel(title, paths(&sim.or.paths), o.t_mid, o.t_end, vec![mean]);
        let kernel = |x: f64| normal_pdf(x, mu_mid, sd_mid);
        let stationary = |x: f64| normal_pdf(x, 0.0, sd_stat);
        let range = (
            (mu_mid - 4.5 * sd_mid).min(-4.5 * sd_stat),
            (mu_mid + 4.5 * sd_mid).max(4.5 * sd_stat),
        );
        let mut ou_hist = histograms_vs_densities(
            format!("positions at t = {} and t = {}", o.t_mid, o.t_end),
            &[
                Series::new(&sim.or.first[..], palette::DATA, format!("t = {}", o.t_mid)),
                Series::new(&sim.or.last[..], palette::DATA2, format!("t = {}", o.t_end)),
            ],
            &[
                Series::new(&kernel, palette::EXACT, "exact kernel"),
                Series::new(&stationary, palette::EXACT2, "stationary N(0, D/a)"),
            ],
            range,
            o.bins,
        )?;
        ou_hist.legend = Legend::UpperLeft;
        Ok([[free_paths, free_hist], [ou_paths, ou_hist]])
    }

    /// The captions of `free_diffusion.png` and `ou.png`.
    fn figures(&self, sim: &Simulated) -> Vec<Figure> {
        let (f, o) = (&self.free_diffusion, &self.ou);
        vec![
            Figure {
                file: "free_diffusion.png".into(),
                caption: format!(
                    "Left: {} free-diffusion paths (D = {}, x₀ = {}) by Euler–Maruyama, dt = {}; red line: t = {}. \
                     Right: histogram of all {} positions at t = {} against the exact density N(x₀, 2Dt).",
                    sim.fr.paths.particles, f.diffusion, f.x0, f.dt, f.t_check, f.n_particles, f.t_check
                ),
            },
            Figure {
                file: "ou.png".into(),
                caption: format!(
                    "Left: {} Ornstein–Uhlenbeck paths from x₀ = {} relaxing towards 0 (black: exact mean). \
                     Right: histograms at t = {} (blue) and t = {} (orange) against the exact kernel \
                     N(x₀e^(−at), (D/a)(1 − e^(−2at))) and the stationary law N(0, D/a).",
                    sim.or.paths.particles, o.x0, o.t_mid, o.t_end
                ),
            },
        ]
    }

    /// Derived parameters echoed in metrics.json (step counts, exact moments, critical values).
    fn parameters(&self, sim: &Simulated) -> serde_json::Value {
        let (f, o, ou) = (&self.free_diffusion, &self.ou, &sim.ou);
        let (fs, os) = (&sim.fr.stops, &sim.or.stops);
        let var = |sde: &OuSde, t: f64| sde.marginal_std(t) * sde.marginal_std(t);
        json!({
            "free_diffusion": {
                "n_steps_to_t_check": fs[0].1,
                "n_steps_to_t_end": fs[0].1 + fs[1].1,
                "exact_mean": f.x0,
                "exact_var_t_check": var(&sim.free, f.t_check),
                "exact_var_t_end": var(&sim.free, f.t_end),
                "ks_critical_value_alpha_1e-3": ks_critical_asymptotic(1e-3, f.n_particles),
            },
            "ou": {
                "n_steps_to_t_mid": os[0].1,
                "n_steps_to_t_end": os[0].1 + os[1].1,
                "exact_mean_t_mid": ou.mean_coef(o.t_mid) * o.x0,
                "exact_var_t_mid": var(ou, o.t_mid),
                "exact_mean_t_end": ou.mean_coef(o.t_end) * o.x0,
                "exact_var_t_end": ou.marginal_std(o.t_end).powi(2),
                "stationary_var": o.diffusion / o.a,
                "euler_maruyama_stationary_var": o.diffusion / o.a / (1.0 - o.a * o.dt / 2.0),
                "ks_critical_value_alpha_1e-3": ks_critical_asymptotic(1e-3, o.n_particles),
            },
            "chunk_size": RELEASE_CHUNK,
            "rng": "ChaCha8Rng::seed_from_u64(seed), stream = fnv1a64(\"<name>/<chunk>\")",
        })
    }
}
