//! Kind `smoluchowski`: the figure of seed 000, checked against the exact Gaussian kernels.
//!
//! - Free diffusion `dx = √(2D) dW` from `x₀`: Euler–Maruyama to `t_check` then on to `t_end`;
//!   positions at `t` compared with the exact law `N(x₀, 2Dt)` (one-sample KS).
//! - Ornstein–Uhlenbeck `dx = −a x dt + √(2D) dW` from `x₀`: at `t_mid` against the exact kernel
//!   `N(x₀ e^{−at}, (D/a)(1 − e^{−2at}))`, at `t_end` against the stationary law `N(0, D/a)`.
//!
//! Particles are simulated in fixed chunks of [`CHUNK`]; chunk `c` of sub-stream `name` uses
//! `seeding::stream(seed, name, c)`, so the numbers do not depend on the thread count.

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::json;
use smoluchowski::metrics::ks_one_sample;
use smoluchowski::sde::{euler_maruyama, ForwardSde, OuSde, Trajectories};

use crate::figures::{self, curve, density_histogram, palette, Bars, Legend, Line, Panel, VLine};
use crate::harness::{Experiment, Figure, KindEntry, RunContext};
use crate::manifest::{self, ExperimentHeader, ManifestText};
use crate::output::{write_npy, OutputDir};
use crate::report;
use crate::seeding;
use crate::stats::{Ks, Rendered, TypedExperiment, Value};
use crate::validate::Checker;

/// Registration of this kind.
pub const ENTRY: KindEntry = KindEntry {
    kind: "smoluchowski",
    summary:
        "free diffusion and Ornstein–Uhlenbeck by Euler–Maruyama vs exact Gaussian kernels (KS)",
    load,
};

/// Particles per random-stream chunk.
pub const CHUNK: usize = 8192;
/// Largest particle count accepted (memory: a few f64 per particle and checkpoint time).
const MAX_PARTICLES: usize = 50_000_000;
/// Most drawn trajectories.
const MAX_DRAWN: usize = 1000;

/// `[free_diffusion]`: `dx = √(2D) dW`, `x(0) = x0`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FreeDiffusion {
    /// Diffusion constant `D > 0`.
    pub diffusion: f64,
    /// Start position `x₀`.
    pub x0: f64,
    /// Number of simulated particles.
    pub n_particles: usize,
    /// Euler–Maruyama step; must divide `t_check` and `t_end`.
    pub dt: f64,
    /// Time of the histogram / KS check / `samples.npy` (seed 000: 1).
    pub t_check: f64,
    /// End of the drawn trajectories (seed 000: 2), `> t_check`.
    pub t_end: f64,
    /// Number of drawn trajectories.
    pub n_drawn: usize,
    /// Histogram bins.
    pub bins: usize,
}

/// `[ou]`: `dx = −a x dt + √(2D) dW`, `x(0) = x0`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ou {
    /// Relaxation rate `a > 0`.
    pub a: f64,
    /// Diffusion constant `D > 0`.
    pub diffusion: f64,
    /// Start position `x₀`.
    pub x0: f64,
    /// Number of simulated particles.
    pub n_particles: usize,
    /// Euler–Maruyama step; must divide `t_mid` and `t_end`.
    pub dt: f64,
    /// Intermediate time, checked against the exact kernel.
    pub t_mid: f64,
    /// Final time, checked against the stationary law `N(0, D/a)`; `> t_mid`.
    pub t_end: f64,
    /// Number of drawn trajectories.
    pub n_drawn: usize,
    /// Histogram bins.
    pub bins: usize,
}

/// The whole manifest of kind `smoluchowski`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmoluchowskiManifest {
    /// `[experiment]`.
    pub experiment: ExperimentHeader,
    /// `[free_diffusion]`.
    pub free_diffusion: FreeDiffusion,
    /// `[ou]`.
    pub ou: Ou,
}

/// Number of Euler–Maruyama steps of size `dt` in `t`, if `dt` divides `t` (to 1e-9 relative).
fn whole_steps(t: f64, dt: f64) -> Option<usize> {
    let k = (t / dt).round();
    ((k - t / dt).abs() <= 1e-9 * k.max(1.0) && (1.0..=1e9).contains(&k)).then_some(k as usize)
}

fn check_steps(c: &mut Checker, table: &str, dt: f64, times: &[(&str, f64)]) {
    if !(dt.is_finite() && dt > 0.0) {
        return;
    }
    for &(name, t) in times {
        if t.is_finite() && t > 0.0 && whole_steps(t, dt).is_none() {
            c.fail(format!(
                "{table}.dt must divide {table}.{name} into whole steps (got {name} / dt = {})",
                t / dt
            ));
        }
    }
}

impl SmoluchowskiManifest {
    fn check(&self) -> Result<()> {
        let mut c = Checker::new();
        self.experiment.check(&mut c);
        let f = &self.free_diffusion;
        c.positive("free_diffusion.diffusion", f.diffusion);
        c.finite("free_diffusion.x0", f.x0);
        c.count(
            "free_diffusion.n_particles",
            f.n_particles,
            1,
            MAX_PARTICLES,
        );
        c.positive("free_diffusion.dt", f.dt);
        c.positive("free_diffusion.t_check", f.t_check);
        c.positive("free_diffusion.t_end", f.t_end);
        if f.t_check.is_finite() && f.t_end.is_finite() && f.t_check > 0.0 {
            c.require(
                f.t_end > f.t_check,
                "free_diffusion.t_end",
                &format!("> free_diffusion.t_check = {}", f.t_check),
                f.t_end,
            );
        }
        check_steps(
            &mut c,
            "free_diffusion",
            f.dt,
            &[("t_check", f.t_check), ("t_end", f.t_end)],
        );
        if f.n_particles >= 1 {
            c.count(
                "free_diffusion.n_drawn",
                f.n_drawn,
                0,
                MAX_DRAWN.min(f.n_particles),
            );
        }
        c.count("free_diffusion.bins", f.bins, 5, 1000);

        let o = &self.ou;
        c.positive("ou.a", o.a);
        c.positive("ou.diffusion", o.diffusion);
        c.finite("ou.x0", o.x0);
        c.count("ou.n_particles", o.n_particles, 1, MAX_PARTICLES);
        c.positive("ou.dt", o.dt);
        c.positive("ou.t_mid", o.t_mid);
        c.positive("ou.t_end", o.t_end);
        if o.t_mid.is_finite() && o.t_end.is_finite() && o.t_mid > 0.0 {
            c.require(
                o.t_end > o.t_mid,
                "ou.t_end",
                &format!("> ou.t_mid = {}", o.t_mid),
                o.t_end,
            );
        }
        check_steps(
            &mut c,
            "ou",
            o.dt,
            &[("t_mid", o.t_mid), ("t_end", o.t_end)],
        );
        if o.a.is_finite() && o.a > 0.0 && o.dt.is_finite() && o.dt > 0.0 {
            // Euler–Maruyama for OU is stable only for a·dt < 2; keep it accurate.
            c.require(
                o.a * o.dt <= 0.1,
                "ou.dt",
                &format!("<= 0.1 / a = {}", 0.1 / o.a),
                o.dt,
            );
        }
        if o.n_particles >= 1 {
            c.count("ou.n_drawn", o.n_drawn, 0, MAX_DRAWN.min(o.n_particles));
        }
        c.count("ou.bins", o.bins, 5, 1000);
        Ok(c.finish()?)
    }
}

fn load(m: &ManifestText) -> Result<Box<dyn Experiment>> {
    let parsed: SmoluchowskiManifest = manifest::parse_as(m)?;
    parsed.check().map_err(|e| e.context(m.display.clone()))?;
    Ok(Box::new(parsed))
}

/// One chunk's positions at each stop, and (chunk 0 only) its recorded paths.
type ChunkResult = (Vec<Vec<f64>>, Option<Trajectories>);

/// Positions of `n` particles started at `x0` at each stop time, plus the first `n_drawn`
/// particles' paths; Euler–Maruyama with `steps[i]` steps from `stops[i−1]` (or 0) to `stops[i]`.
///
/// Chunk `c` (particles `c·CHUNK ..`) draws from `seeding::stream(seed, name, c)`; chunks are
/// spread over `threads` threads, which changes nothing in the result.
#[allow(clippy::too_many_arguments)]
pub fn simulate(
    sde: &OuSde,
    x0: f64,
    n: usize,
    stops: &[(f64, usize)],
    n_drawn: usize,
    seed: u64,
    name: &str,
    threads: usize,
) -> (Vec<Vec<f64>>, Trajectories) {
    let n_chunks = n.div_ceil(CHUNK);
    let run_chunk = |c: usize| -> ChunkResult {
        let len = CHUNK.min(n - c * CHUNK);
        let mut rng = seeding::stream(seed, name, c as u64);
        let mut x = vec![x0; len];
        let mut rec = (c == 0).then(|| Trajectories::new(n_drawn.min(len), 1));
        let mut snaps = Vec::with_capacity(stops.len());
        let mut t = 0.0;
        for &(t_stop, steps) in stops {
            euler_maruyama(sde, &mut x, t, t_stop, steps, &mut rng, rec.as_mut());
            snaps.push(x.clone());
            t = t_stop;
        }
        (snaps, rec)
    };
    let per_chunk = seeding::run_chunks(n_chunks, threads, run_chunk);
    let mut out: Vec<Vec<f64>> = stops.iter().map(|_| Vec::with_capacity(n)).collect();
    let mut traj = Trajectories::new(0, 1);
    for (snaps, rec) in per_chunk {
        for (o, s) in out.iter_mut().zip(snaps) {
            o.extend_from_slice(&s);
        }
        if let Some(r) = rec {
            traj = r;
        }
    }
    (out, traj)
}

fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Sample mean and (unbiased) variance.
fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var)
}

/// Normal density `exp(−(x−μ)²/(2σ²)) / (σ√(2π))`.
fn normal_pdf(x: f64, mu: f64, sd: f64) -> f64 {
    let z = (x - mu) / sd;
    (-0.5 * z * z).exp() / (sd * (2.0 * std::f64::consts::PI).sqrt())
}

fn trajectory_lines(traj: &Trajectories) -> Vec<Line> {
    (0..traj.particles)
        .map(|p| Line {
            points: (0..traj.frames())
                .map(|k| (traj.times[k], traj.get(k, p, 0)))
                .collect(),
            color: palette::DATA,
            alpha: 0.55,
            width: 1,
            label: None,
        })
        .collect()
}

fn critical_value(n: usize) -> f64 {
    // Asymptotic KS critical value at α = 1e-3: sqrt(−ln(α/2)/2)/√n = 1.9495/√n.
    (-(0.5e-3f64).ln() / 2.0).sqrt() / (n as f64).sqrt()
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

/// The simulated positions and paths.
pub struct Simulated {
    free: OuSde,
    ou: OuSde,
    /// Free diffusion at `t_check`; its drawn paths.
    x_check: Vec<f64>,
    traj_free: Trajectories,
    /// OU at `t_mid`, `t_end`; its drawn paths.
    y_mid: Vec<f64>,
    y_end: Vec<f64>,
    traj_ou: Trajectories,
    /// Euler–Maruyama steps to `t_check`, then to `t_end` (free); to `t_mid`, then `t_end` (OU).
    steps: [usize; 4],
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
        let free = OuSde::free(f.diffusion, f.t_end)
            .map_err(|e| anyhow::anyhow!("free_diffusion: {e}"))?;
        let steps_check = whole_steps(f.t_check, f.dt).unwrap_or(1);
        let steps_end = whole_steps(f.t_end, f.dt).unwrap_or(1) - steps_check;
        let stops = [(f.t_check, steps_check), (f.t_end, steps_end)];
        let (mut snaps, traj_free) = ctx.time("free_diffusion", || {
            simulate(
                &free,
                f.x0,
                f.n_particles,
                &stops,
                f.n_drawn,
                seed,
                "free_diffusion",
                threads(),
            )
        });
        let (x_end, x_check) = (
            snaps.pop().unwrap_or_default(),
            snaps.pop().unwrap_or_default(),
        );
        let free_stats = ctx.time("free_diffusion_stats", || {
            let (m, v) = mean_var(&x_check);
            FreeDiffusionStats {
                ks_t_check: ks_one_sample(&x_check, |x| free.marginal_cdf(f.x0, f.t_check, x))
                    .into(),
                ks_t_end: ks_one_sample(&x_end, |x| free.marginal_cdf(f.x0, f.t_end, x)).into(),
                mean_t_check: m.into(),
                var_t_check: v.into(),
            }
        });

        let ou = OuSde::new(o.a, o.diffusion, o.t_end).map_err(|e| anyhow::anyhow!("ou: {e}"))?;
        let steps_mid = whole_steps(o.t_mid, o.dt).unwrap_or(1);
        let steps_rest = whole_steps(o.t_end, o.dt).unwrap_or(1) - steps_mid;
        let stops = [(o.t_mid, steps_mid), (o.t_end, steps_rest)];
        let (mut snaps, traj_ou) = ctx.time("ou", || {
            simulate(
                &ou,
                o.x0,
                o.n_particles,
                &stops,
                o.n_drawn,
                seed,
                "ou",
                threads(),
            )
        });
        let (y_end, y_mid) = (
            snaps.pop().unwrap_or_default(),
            snaps.pop().unwrap_or_default(),
        );
        let sd_stat = (o.diffusion / o.a).sqrt();
        let ou_stats = ctx.time("ou_stats", || OuStats {
            ks_t_mid: ks_one_sample(&y_mid, |x| ou.marginal_cdf(o.x0, o.t_mid, x)).into(),
            ks_t_end_stationary: ks_one_sample(&y_end, |x| {
                smoluchowski::sde::normal_cdf(x / sd_stat)
            })
            .into(),
            mean_t_mid: mean_var(&y_mid).0.into(),
            var_t_end: mean_var(&y_end).1.into(),
        });
        let stats = SmoluchowskiStats {
            free_diffusion: free_stats,
            ou: ou_stats,
        };
        let sim = Simulated {
            free,
            ou,
            x_check,
            traj_free,
            y_mid,
            y_end,
            traj_ou,
            steps: [steps_check, steps_end, steps_mid, steps_rest],
        };
        Ok((stats, sim))
    }

    fn render(
        &self,
        _stats: &SmoluchowskiStats,
        sim: &Simulated,
        ctx: &mut RunContext<'_>,
    ) -> Result<Rendered> {
        let (f, o, out) = (&self.free_diffusion, &self.ou, ctx.out);
        let figures = ctx.time("write", || -> Result<Vec<Figure>> {
            write_npy(&out.file("samples.npy"), &[sim.x_check.len()], &sim.x_check)?;
            let both: Vec<f64> = sim
                .y_mid
                .iter()
                .zip(&sim.y_end)
                .flat_map(|(a, b)| [*a, *b])
                .collect();
            write_npy(&out.file("ou_samples.npy"), &[sim.y_mid.len(), 2], &both)?;
            Ok(vec![
                self.free_diffusion_figure(sim, out)?,
                self.ou_figure(sim, out)?,
            ])
        })?;
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
                (
                    "How to read this".into(),
                    report::fill(
                        HOW_TO_READ,
                        &[
                            ("n", f.n_particles.to_string()),
                            (
                                "typ",
                                format!("{:.4}", 0.8687 / (f.n_particles as f64).sqrt()),
                            ),
                            ("crit", format!("{:.4}", critical_value(f.n_particles))),
                            ("no", o.n_particles.to_string()),
                            ("dt", o.dt.to_string()),
                        ],
                    ),
                ),
                (
                    "Check it yourself (NumPy/SciPy)".into(),
                    report::fill(
                        CHECK_YOURSELF,
                        &[
                            ("n", f.n_particles.to_string()),
                            ("t", f.t_check.to_string()),
                            ("tm", o.t_mid.to_string()),
                            ("te", o.t_end.to_string()),
                            ("no", o.n_particles.to_string()),
                            ("x0", f.x0.to_string()),
                            ("d", f.diffusion.to_string()),
                        ],
                    ),
                ),
            ],
        })
    }
}

impl SmoluchowskiManifest {
    /// Left: drawn free-diffusion paths; right: the histogram at `t_check` against `N(x₀, 2Dt)`.
    fn free_diffusion_figure(&self, sim: &Simulated, out: &OutputDir) -> Result<Figure> {
        let f = &self.free_diffusion;
        let (x_check, traj_free) = (&sim.x_check, &sim.traj_free);
        let sd_check = sim.free.marginal_std(f.t_check);
        let mut figures = Vec::new();
        let lo = f.x0 - 4.5 * sd_check;
        let hi = f.x0 + 4.5 * sd_check;
        let (edges, dens) = density_histogram(x_check, lo, hi, f.bins)?;
        let left = Panel {
            title: format!(
                "{} trajectories, free diffusion D = {}",
                traj_free.particles, f.diffusion
            ),
            x_label: "t".into(),
            y_label: "x(t)".into(),
            lines: trajectory_lines(traj_free),
            vlines: vec![VLine {
                x: f.t_check,
                color: palette::MARK,
                label: Some(format!("t = {}", f.t_check)),
            }],
            x_range: Some((0.0, f.t_end)),
            ..Default::default()
        };
        let right = Panel {
            title: format!("positions at t = {} (N = {})", f.t_check, f.n_particles),
            x_label: "x".into(),
            y_label: "density".into(),
            bars: vec![Bars {
                edges,
                heights: dens,
                color: palette::DATA,
                alpha: 0.45,
                label: Some("Euler–Maruyama".into()),
            }],
            lines: vec![Line {
                points: curve(lo, hi, 400, |x| normal_pdf(x, f.x0, sd_check)),
                color: palette::EXACT,
                alpha: 1.0,
                width: 2,
                label: Some(format!(
                    "exact N({}, 2Dt = {:.3})",
                    f.x0,
                    sd_check * sd_check
                )),
            }],
            x_range: Some((lo, hi)),
            ..Default::default()
        };
        figures::draw_row(&out.file("free_diffusion.png"), &[left, right], (640, 480))?;
        figures.push(Figure {
            file: "free_diffusion.png".into(),
            caption: format!(
                "Left: {} free-diffusion paths (D = {}, x₀ = {}) by Euler–Maruyama, dt = {}; red line: t = {}. \
                 Right: histogram of all {} positions at t = {} against the exact density N(x₀, 2Dt).",
                traj_free.particles, f.diffusion, f.x0, f.dt, f.t_check, f.n_particles, f.t_check
            ),
        });

        Ok(figures.pop().expect("pushed"))
    }

    /// Left: OU paths and the exact mean; right: histograms at `t_mid`, `t_end` against the
    /// exact kernel and the stationary law.
    fn ou_figure(&self, sim: &Simulated, out: &OutputDir) -> Result<Figure> {
        let o = &self.ou;
        let (y_mid, y_end, traj_ou) = (&sim.y_mid, &sim.y_end, &sim.traj_ou);
        let mu_mid = sim.ou.mean_coef(o.t_mid) * o.x0;
        let sd_mid = sim.ou.marginal_std(o.t_mid);
        let sd_stat = (o.diffusion / o.a).sqrt();
        let mut figures = Vec::new();
        let lo2 = (mu_mid - 4.5 * sd_mid).min(-4.5 * sd_stat);
        let hi2 = (mu_mid + 4.5 * sd_mid).max(4.5 * sd_stat);
        let (e_mid, d_mid) = density_histogram(y_mid, lo2, hi2, o.bins)?;
        let (e_end, d_end) = density_histogram(y_end, lo2, hi2, o.bins)?;
        let left = Panel {
            title: format!(
                "{} OU paths, a = {}, D = {}",
                traj_ou.particles, o.a, o.diffusion
            ),
            x_label: "t".into(),
            y_label: "x(t)".into(),
            lines: {
                let mut l = trajectory_lines(traj_ou);
                l.push(Line {
                    points: curve(0.0, o.t_end, 400, |t| o.x0 * (-o.a * t).exp()),
                    color: palette::EXACT,
                    alpha: 1.0,
                    width: 2,
                    label: Some("exact mean x₀e^(−at)".into()),
                });
                l
            },
            vlines: vec![VLine {
                x: o.t_mid,
                color: palette::MARK,
                label: Some(format!("t = {}", o.t_mid)),
            }],
            x_range: Some((0.0, o.t_end)),
            ..Default::default()
        };
        let right = Panel {
            title: format!("positions at t = {} and t = {}", o.t_mid, o.t_end),
            x_label: "x".into(),
            y_label: "density".into(),
            bars: vec![
                Bars {
                    edges: e_mid,
                    heights: d_mid,
                    color: palette::DATA,
                    alpha: 0.45,
                    label: Some(format!("t = {}", o.t_mid)),
                },
                Bars {
                    edges: e_end,
                    heights: d_end,
                    color: palette::DATA2,
                    alpha: 0.45,
                    label: Some(format!("t = {}", o.t_end)),
                },
            ],
            lines: vec![
                Line {
                    points: curve(lo2, hi2, 400, |x| normal_pdf(x, mu_mid, sd_mid)),
                    color: palette::EXACT,
                    alpha: 1.0,
                    width: 2,
                    label: Some("exact kernel".into()),
                },
                Line {
                    points: curve(lo2, hi2, 400, |x| normal_pdf(x, 0.0, sd_stat)),
                    color: palette::EXACT2,
                    alpha: 1.0,
                    width: 2,
                    label: Some("stationary N(0, D/a)".into()),
                },
            ],
            x_range: Some((lo2, hi2)),
            legend: Legend::UpperLeft,
            ..Default::default()
        };
        figures::draw_row(&out.file("ou.png"), &[left, right], (640, 480))?;
        figures.push(Figure {
            file: "ou.png".into(),
            caption: format!(
                "Left: {} Ornstein–Uhlenbeck paths from x₀ = {} relaxing towards 0 (black: exact mean). \
                 Right: histograms at t = {} (blue) and t = {} (orange) against the exact kernel \
                 N(x₀e^(−at), (D/a)(1 − e^(−2at))) and the stationary law N(0, D/a).",
                traj_ou.particles, o.x0, o.t_mid, o.t_end
            ),
        });
        Ok(figures.pop().expect("pushed"))
    }

    /// Derived parameters echoed in metrics.json (step counts, exact moments, critical values).
    fn parameters(&self, sim: &Simulated) -> serde_json::Value {
        let (f, o, ou) = (&self.free_diffusion, &self.ou, &sim.ou);
        let [steps_check, steps_end, steps_mid, steps_rest] = sim.steps;
        let (sd_check, sd_end) = (
            sim.free.marginal_std(f.t_check),
            sim.free.marginal_std(f.t_end),
        );
        let (mu_mid, sd_mid) = (ou.mean_coef(o.t_mid) * o.x0, ou.marginal_std(o.t_mid));
        json!({
            "free_diffusion": {
                "n_steps_to_t_check": steps_check,
                "n_steps_to_t_end": steps_check + steps_end,
                "exact_mean": f.x0,
                "exact_var_t_check": sd_check * sd_check,
                "exact_var_t_end": sd_end * sd_end,
                "ks_critical_value_alpha_1e-3": critical_value(f.n_particles),
            },
            "ou": {
                "n_steps_to_t_mid": steps_mid,
                "n_steps_to_t_end": steps_mid + steps_rest,
                "exact_mean_t_mid": mu_mid,
                "exact_var_t_mid": sd_mid * sd_mid,
                "exact_mean_t_end": ou.mean_coef(o.t_end) * o.x0,
                "exact_var_t_end": ou.marginal_std(o.t_end).powi(2),
                "stationary_var": o.diffusion / o.a,
                "euler_maruyama_stationary_var": o.diffusion / o.a / (1.0 - o.a * o.dt / 2.0),
                "ks_critical_value_alpha_1e-3": critical_value(o.n_particles),
            },
            "chunk_size": CHUNK,
            "rng": "ChaCha8Rng::seed_from_u64(seed), stream = fnv1a64(\"<name>/<chunk>\")",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulate_is_independent_of_thread_count() {
        let sde = OuSde::new(1.0, 0.5, 1.0).unwrap();
        let n = 2 * CHUNK + 100;
        let stops = [(0.25, 5), (0.5, 5)];
        let (a, ta) = simulate(&sde, 3.0, n, &stops, 4, 11, "t", 1);
        let (b, tb) = simulate(&sde, 3.0, n, &stops, 4, 11, "t", 3);
        assert_eq!(a, b);
        assert_eq!(ta, tb);
        assert_eq!(a[0].len(), n);
        assert_eq!(ta.particles, 4);
        assert_eq!(ta.frames(), 11);
        assert_eq!(ta.get(0, 0, 0), 3.0);
        // The recorded path ends where the ensemble is.
        assert_eq!(ta.frame(10), &a[1][..4]);
        let (c, _) = simulate(&sde, 3.0, n, &stops, 4, 12, "t", 2);
        assert_ne!(a, c);
    }

    #[test]
    fn whole_steps_requires_divisibility() {
        assert_eq!(whole_steps(1.0, 1e-3), Some(1000));
        assert_eq!(whole_steps(2.0, 1e-3), Some(2000));
        assert_eq!(whole_steps(0.5, 5e-3), Some(100));
        assert_eq!(whole_steps(1.0, 0.3), None);
        assert_eq!(whole_steps(0.1, 1.0), None);
    }
}
