//! Kind `fokker-planck`: the 1-D Fokker–Planck solver against the exact diffused density and
//! against Euler–Maruyama particles (the notes' Langevin ⇄ Fokker–Planck picture, seed 002).
//!
//! Data: a 1-D Gaussian mixture `p₀ = Σ_k w_k N(μ_k, s_k²)` (the bimodal preset by default),
//! pushed through three forward SDEs `dx = a(t) x dt + g(t) dW`:
//! free diffusion (`a = 0`, `g = √(2D)`), Ornstein–Uhlenbeck (`a = −θ`), VP (`a = −½β(t)`,
//! `g = √β(t)`). Every kernel is Gaussian, so `p_t = Σ_k w_k N(m(t) μ_k, m² s_k² + σ(t)²)` exactly
//! (`MixtureOracle`). At each checkpoint time:
//! - `l1_fp_exact`: `h Σ_i |p_i − p_t(x_i)|` of the Crank–Nicolson / Scharfetter–Gummel solution;
//! - `l1_particles_exact`: `Σ_b |n_b / n − P_b|` of the particle histogram against the exact
//!   bin masses `P_b = F_t(e_{b+1}) − F_t(e_b)`;
//! - `l1_particles_fp`: the same against the solver's bin masses `h Σ_{i ∈ b} p_i`;
//! - `ks_particles`: one-sample KS of the particles against the exact CDF `F_t`.
//!
//! Particles are simulated in fixed chunks of [`CHUNK`]; chunk `c` of process `name` uses
//! `seeding::stream(seed, name, c)` (initial draws, then Euler–Maruyama noise), so the numbers do
//! not depend on the thread count.

use std::collections::BTreeMap;

use anyhow::{anyhow, Result};
use plotters::style::RGBColor;
use serde::{Deserialize, Serialize};
use serde_json::json;
use smoluchowski::datasets::{Dataset, GaussianMixture};
use smoluchowski::metrics::ks_one_sample;
use smoluchowski::sde::{euler_maruyama, FokkerPlanck1d, ForwardSde, MixtureOracle, OuSde, VpSde};

use crate::figures::{self, Bars, Line, Panel};
use crate::harness::{Experiment, Figure, KindEntry, RunContext, RunResults, StatKind, Statistic};
use crate::manifest::{self, ExperimentHeader, ManifestText};
use crate::output::write_npy;
use crate::seeding;
use crate::validate::Checker;

/// Registration of this kind.
pub const ENTRY: KindEntry = KindEntry {
    kind: "fokker-planck",
    summary: "1-D Fokker–Planck solver vs exact diffused mixture density and Euler–Maruyama particles (free, OU, VP)",
    load,
};

/// Particles per random-stream chunk.
pub const CHUNK: usize = 8192;
const MAX_PARTICLES: usize = 10_000_000;
const MAX_CELLS: usize = 1_000_000;
const MAX_TIMES: usize = 8;

/// `[data]`: the 1-D mixture `p₀`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Data {
    /// Component means `μ_k`.
    pub means: Vec<f64>,
    /// Component standard deviations `s_k > 0`.
    pub stds: Vec<f64>,
    /// Weights `w_k ≥ 0` (normalised).
    pub weights: Vec<f64>,
}

/// `[grid]`: the solver's grid and time step.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    /// Left end.
    pub lo: f64,
    /// Right end (`> lo`).
    pub hi: f64,
    /// Number of cells.
    pub cells: usize,
    /// Crank–Nicolson time step; must divide every checkpoint time.
    pub fp_dt: f64,
}

/// `[particles]`: Euler–Maruyama particles and their histogram.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Particles {
    /// Number of particles per process.
    pub n: usize,
    /// Euler–Maruyama step; must divide every checkpoint time.
    pub dt: f64,
    /// Histogram bins on `[lo, hi]`; must divide `grid.cells`.
    pub bins: usize,
}

/// `[free]`: `dx = √(2D) dW`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Free {
    /// `D > 0`.
    pub diffusion: f64,
    /// Checkpoint times, increasing, `> 0`.
    pub times: Vec<f64>,
}

/// `[ou]`: `dx = −a x dt + √(2D) dW`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ou {
    /// `a > 0`.
    pub a: f64,
    /// `D > 0`.
    pub diffusion: f64,
    /// Checkpoint times, increasing, `> 0`.
    pub times: Vec<f64>,
}

/// `[vp]`: `dx = −½β(t) x dt + √β(t) dW`, `β` linear from `beta_min` to `beta_max` on `[0, t_end]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Vp {
    /// `β_min > 0`.
    pub beta_min: f64,
    /// `β_max ≥ β_min`.
    pub beta_max: f64,
    /// `T > 0`.
    pub t_end: f64,
    /// Checkpoint times, increasing, in `(0, T]`.
    pub times: Vec<f64>,
}

/// The whole manifest of kind `fokker-planck`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FokkerPlanckManifest {
    /// `[experiment]`.
    pub experiment: ExperimentHeader,
    /// `[data]`.
    pub data: Data,
    /// `[grid]`.
    pub grid: Grid,
    /// `[particles]`.
    pub particles: Particles,
    /// `[free]`.
    pub free: Free,
    /// `[ou]`.
    pub ou: Ou,
    /// `[vp]`.
    pub vp: Vp,
}

/// Number of steps of size `dt` in `t`, if `dt` divides `t` (to 1e-9 relative).
fn whole_steps(t: f64, dt: f64) -> Option<usize> {
    let k = (t / dt).round();
    ((k - t / dt).abs() <= 1e-9 * k.max(1.0) && (1.0..=1e8).contains(&k)).then_some(k as usize)
}

fn check_times(
    c: &mut Checker,
    table: &str,
    times: &[f64],
    t_max: Option<f64>,
    dts: &[(&str, f64)],
) {
    let path = format!("{table}.times");
    c.count(&format!("length of {path}"), times.len(), 1, MAX_TIMES);
    for (i, &t) in times.iter().enumerate() {
        let p = format!("{path}[{i}]");
        c.positive(&p, t);
        if !(t.is_finite() && t > 0.0) {
            continue;
        }
        if i > 0 && times[i - 1].is_finite() {
            c.require(
                t > times[i - 1],
                &p,
                &format!("> {path}[{}] = {}", i - 1, times[i - 1]),
                t,
            );
        }
        if let Some(tm) = t_max {
            c.require(t <= tm, &p, &format!("<= vp.t_end = {tm}"), t);
        }
        for &(name, dt) in dts {
            if dt.is_finite() && dt > 0.0 && whole_steps(t, dt).is_none() {
                c.fail(format!(
                    "{name} must divide {p} into whole steps (got {p} / {name} = {})",
                    t / dt
                ));
            }
        }
    }
}

impl FokkerPlanckManifest {
    fn check(&self) -> Result<()> {
        let mut c = Checker::new();
        self.experiment.check(&mut c);
        let d = &self.data;
        c.count("length of data.means", d.means.len(), 1, 64);
        c.require(
            d.stds.len() == d.means.len(),
            "length of data.stds",
            &format!("equal to the length of data.means ({})", d.means.len()),
            d.stds.len(),
        );
        c.require(
            d.weights.len() == d.means.len(),
            "length of data.weights",
            &format!("equal to the length of data.means ({})", d.means.len()),
            d.weights.len(),
        );
        for (i, &m) in d.means.iter().enumerate() {
            c.finite(&format!("data.means[{i}]"), m);
        }
        for (i, &s) in d.stds.iter().enumerate() {
            c.positive(&format!("data.stds[{i}]"), s);
        }
        for (i, &w) in d.weights.iter().enumerate() {
            c.non_negative(&format!("data.weights[{i}]"), w);
        }
        let total: f64 = d.weights.iter().sum();
        c.require(total > 0.0, "sum of data.weights", "> 0", total);

        let g = &self.grid;
        c.finite("grid.lo", g.lo);
        c.finite("grid.hi", g.hi);
        if g.lo.is_finite() && g.hi.is_finite() {
            c.require(
                g.hi > g.lo,
                "grid.hi",
                &format!("> grid.lo = {}", g.lo),
                g.hi,
            );
        }
        c.count("grid.cells", g.cells, 3, MAX_CELLS);
        c.positive("grid.fp_dt", g.fp_dt);

        let p = &self.particles;
        c.count("particles.n", p.n, 1, MAX_PARTICLES);
        c.positive("particles.dt", p.dt);
        c.count("particles.bins", p.bins, 2, 10_000);
        if p.bins >= 1 {
            c.require(
                g.cells.is_multiple_of(p.bins),
                "particles.bins",
                &format!("a divisor of grid.cells = {}", g.cells),
                p.bins,
            );
        }
        let dts = [("grid.fp_dt", g.fp_dt), ("particles.dt", p.dt)];

        c.positive("free.diffusion", self.free.diffusion);
        check_times(&mut c, "free", &self.free.times, None, &dts);
        c.positive("ou.a", self.ou.a);
        c.positive("ou.diffusion", self.ou.diffusion);
        check_times(&mut c, "ou", &self.ou.times, None, &dts);
        if self.ou.a.is_finite() && p.dt.is_finite() && p.dt > 0.0 {
            c.require(
                self.ou.a * p.dt <= 0.1,
                "particles.dt",
                &format!("<= 0.1 / ou.a = {}", 0.1 / self.ou.a),
                p.dt,
            );
        }
        let v = &self.vp;
        c.positive("vp.beta_min", v.beta_min);
        c.positive("vp.beta_max", v.beta_max);
        if v.beta_min.is_finite() && v.beta_max.is_finite() {
            c.require(
                v.beta_max >= v.beta_min,
                "vp.beta_max",
                &format!(">= vp.beta_min = {}", v.beta_min),
                v.beta_max,
            );
            if p.dt.is_finite() && p.dt > 0.0 {
                c.require(
                    0.5 * v.beta_max * p.dt <= 0.1,
                    "particles.dt",
                    &format!("<= 0.2 / vp.beta_max = {}", 0.2 / v.beta_max),
                    p.dt,
                );
            }
        }
        c.positive("vp.t_end", v.t_end);
        check_times(&mut c, "vp", &v.times, Some(v.t_end), &dts);
        c.finish()
    }

    fn mixture(&self) -> Result<GaussianMixture> {
        let d = &self.data;
        GaussianMixture::new(
            d.means.iter().map(|&m| vec![m]).collect(),
            d.stds.iter().map(|&s| vec![s]).collect(),
            d.weights.clone(),
        )
        .map_err(|e| crate::validate::bad_input(format!("data: {e}")))
    }

    /// `(process name, checkpoint times)` in report order.
    fn processes(&self) -> [(&'static str, &[f64]); 3] {
        [
            ("free", &self.free.times),
            ("ou", &self.ou.times),
            ("vp", &self.vp.times),
        ]
    }
}

fn load(m: &ManifestText) -> Result<Box<dyn Experiment>> {
    let parsed: FokkerPlanckManifest = manifest::parse_as(m)?;
    parsed.check().map_err(|e| e.context(m.display.clone()))?;
    parsed.mixture().map_err(|e| e.context(m.display.clone()))?;
    Ok(Box::new(parsed))
}

fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Positions of `n` particles drawn from `p0` at each stop `(t_i, steps_i)` (Euler–Maruyama
/// with `steps_i` steps from the previous stop); chunk `c` uses `seeding::stream(seed, name, c)`
/// for its initial draws and then its noise, spread over `threads` threads (no effect on the
/// result).
pub fn simulate<S: ForwardSde + Sync>(
    sde: &S,
    p0: &GaussianMixture,
    n: usize,
    stops: &[(f64, usize)],
    seed: u64,
    name: &str,
    threads: usize,
) -> Vec<Vec<f64>> {
    let n_chunks = n.div_ceil(CHUNK);
    let run_chunk = |c: usize| -> Vec<Vec<f64>> {
        let len = CHUNK.min(n - c * CHUNK);
        let mut rng = seeding::stream(seed, name, c as u64);
        let mut x = p0.sample(&mut rng, len);
        let mut t = 0.0;
        stops
            .iter()
            .map(|&(t_stop, steps)| {
                euler_maruyama(sde, &mut x, t, t_stop, steps, &mut rng, None);
                t = t_stop;
                x.clone()
            })
            .collect()
    };
    let per_chunk = seeding::run_chunks(n_chunks, threads, run_chunk);
    let mut out: Vec<Vec<f64>> = stops.iter().map(|_| Vec::with_capacity(n)).collect();
    for snaps in per_chunk {
        for (o, s) in out.iter_mut().zip(snaps) {
            o.extend_from_slice(&s);
        }
    }
    out
}

/// Everything measured for one process.
struct ProcessRun {
    times: Vec<f64>,
    /// Solver density at the cell centres, per time.
    fp: Vec<Vec<f64>>,
    /// Exact density at the cell centres, per time.
    exact: Vec<Vec<f64>>,
    /// Particle bin fractions `n_b / n`, per time.
    hist: Vec<Vec<f64>>,
    /// Largest `|h Σ p − 1|` over the times.
    mass_drift: f64,
}

/// `Σ_b |a_b − b_b|`.
fn l1(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum()
}

/// Expected `Σ_b |n_b/n − P_b|` from sampling alone: `Σ_b √(2 P_b (1 − P_b) / (π n))` (the
/// normal approximation to each binomial count).
fn expected_l1_noise(p: &[f64], n: usize) -> f64 {
    p.iter()
        .map(|&q| (2.0 * q * (1.0 - q) / (std::f64::consts::PI * n as f64)).sqrt())
        .sum()
}

impl FokkerPlanckManifest {
    #[allow(clippy::too_many_arguments)]
    fn run_process<S: ForwardSde + Sync + Clone>(
        &self,
        name: &str,
        sde: S,
        times: &[f64],
        fp: &FokkerPlanck1d,
        seed: u64,
        stats: &mut BTreeMap<String, Statistic>,
        params: &mut serde_json::Map<String, serde_json::Value>,
    ) -> Result<ProcessRun> {
        let p0 = self.mixture()?;
        let oracle = MixtureOracle::new(sde.clone(), p0.clone());
        let g = &self.grid;
        let pc = &self.particles;
        let per_bin = g.cells / pc.bins;
        let edges: Vec<f64> = (0..=pc.bins)
            .map(|b| g.lo + (b * per_bin) as f64 * fp.cell_width())
            .collect();

        // Solver, checkpoint to checkpoint.
        let density = |t: f64, x: f64| oracle.marginal(t).log_density(&[x]).exp();
        let mut p = fp.project(|x| density(0.0, x));
        let mut t_prev = 0.0;
        let mut fp_out = Vec::new();
        let mut exact_out = Vec::new();
        let mut mass_drift: f64 = (fp.mass(&p) - 1.0).abs();
        for &t in times {
            let steps = whole_steps(t - t_prev, g.fp_dt).unwrap_or(1);
            p = fp.solve(&sde, &p, t_prev, t, steps);
            mass_drift = mass_drift.max((fp.mass(&p) - 1.0).abs());
            let marg = oracle.marginal(t);
            exact_out.push(fp.project(|x| marg.log_density(&[x]).exp()));
            fp_out.push(p.clone());
            t_prev = t;
        }

        // Particles.
        let stops: Vec<(f64, usize)> = times
            .iter()
            .scan(0.0, |prev, &t| {
                let k = whole_steps(t - *prev, pc.dt).unwrap_or(1);
                *prev = t;
                Some((t, k))
            })
            .collect();
        let snaps = simulate(&sde, &p0, pc.n, &stops, seed, name, threads());

        let mut hist_out = Vec::new();
        let mut tparams = Vec::new();
        for (i, &t) in times.iter().enumerate() {
            let key = |s: &str| format!("{name}.t{}.{s}", i + 1);
            let x = &snaps[i];
            // Bin fractions (mass outside [lo, hi] is left out, as for the exact masses).
            let mut counts = vec![0usize; pc.bins];
            let w = (g.hi - g.lo) / pc.bins as f64;
            for &v in x {
                if v >= g.lo && v < g.hi {
                    let b = (((v - g.lo) / w) as usize).min(pc.bins - 1);
                    counts[b] += 1;
                }
            }
            let frac: Vec<f64> = counts.iter().map(|&c| c as f64 / pc.n as f64).collect();
            let exact_mass: Vec<f64> = edges
                .windows(2)
                .map(|e| oracle.marginal_cdf(0, t, e[1]) - oracle.marginal_cdf(0, t, e[0]))
                .collect();
            let fp_mass: Vec<f64> = fp_out[i]
                .chunks_exact(per_bin)
                .map(|c| fp.cell_width() * c.iter().sum::<f64>())
                .collect();
            stats.insert(
                key("l1_fp_exact"),
                Statistic::value(fp.l1_distance(&fp_out[i], &exact_out[i])),
            );
            stats.insert(
                key("l1_particles_exact"),
                Statistic::value(l1(&frac, &exact_mass)),
            );
            stats.insert(
                key("l1_particles_fp"),
                Statistic::value(l1(&frac, &fp_mass)),
            );
            stats.insert(
                key("ks_particles"),
                Statistic::from(ks_one_sample(x, |v| oracle.marginal_cdf(0, t, v))),
            );
            tparams.push(json!({
                "t": t,
                "fp_steps_from_previous": whole_steps(t - if i == 0 { 0.0 } else { times[i - 1] }, g.fp_dt),
                "em_steps_from_previous": stops[i].1,
                "mean_coef": sde.mean_coef(t),
                "kernel_std": sde.marginal_std(t),
                "l1_fp_exact_binned": l1(&fp_mass, &exact_mass),
                "expected_l1_particles_noise": expected_l1_noise(&exact_mass, pc.n),
            }));
            hist_out.push(frac);
        }
        stats.insert(format!("{name}.mass_drift"), Statistic::value(mass_drift));
        params.insert(name.to_string(), json!({ "checkpoints": tparams }));
        Ok(ProcessRun {
            times: times.to_vec(),
            fp: fp_out,
            exact: exact_out,
            hist: hist_out,
            mass_drift,
        })
    }
}

const TIME_COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

impl Experiment for FokkerPlanckManifest {
    fn header(&self) -> &ExperimentHeader {
        &self.experiment
    }

    fn manifest_echo(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    fn statistics(&self) -> BTreeMap<String, StatKind> {
        let mut m = BTreeMap::new();
        for (name, times) in self.processes() {
            m.insert(format!("{name}.mass_drift"), StatKind::Value);
            for i in 1..=times.len() {
                for (s, k) in [
                    ("l1_fp_exact", StatKind::Value),
                    ("l1_particles_exact", StatKind::Value),
                    ("l1_particles_fp", StatKind::Value),
                    ("ks_particles", StatKind::Ks),
                ] {
                    m.insert(format!("{name}.t{i}.{s}"), k);
                }
            }
        }
        m
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<RunResults> {
        let g = &self.grid;
        let fp = FokkerPlanck1d::new(g.lo, g.hi, g.cells).map_err(|e| anyhow!("grid: {e}"))?;
        let seed = ctx.seed;
        let mut stats = BTreeMap::new();
        let mut params = serde_json::Map::new();

        let free = OuSde::free(self.free.diffusion, *self.free.times.last().unwrap_or(&1.0))
            .map_err(|e| anyhow!("free: {e}"))?;
        let ou = OuSde::new(
            self.ou.a,
            self.ou.diffusion,
            *self.ou.times.last().unwrap_or(&1.0),
        )
        .map_err(|e| anyhow!("ou: {e}"))?;
        let vp = VpSde::new(self.vp.beta_min, self.vp.beta_max, self.vp.t_end)
            .map_err(|e| anyhow!("vp: {e}"))?;

        let runs = [
            ctx.time("free", || {
                self.run_process(
                    "free",
                    free,
                    &self.free.times,
                    &fp,
                    seed,
                    &mut stats,
                    &mut params,
                )
            })?,
            ctx.time("ou", || {
                self.run_process("ou", ou, &self.ou.times, &fp, seed, &mut stats, &mut params)
            })?,
            ctx.time("vp", || {
                self.run_process("vp", vp, &self.vp.times, &fp, seed, &mut stats, &mut params)
            })?,
        ];
        let titles = [
            format!("free diffusion, D = {}", self.free.diffusion),
            format!(
                "Ornstein–Uhlenbeck, a = {}, D = {}",
                self.ou.a, self.ou.diffusion
            ),
            format!(
                "VP, β ∈ [{}, {}], T = {}",
                self.vp.beta_min, self.vp.beta_max, self.vp.t_end
            ),
        ];

        // ---- files ----------------------------------------------------------------------
        let out = ctx.out;
        let mut figures = Vec::new();
        let mut files = Vec::new();
        let centers = fp.centers();
        ctx.time("write", || -> Result<()> {
            write_npy(&out.file("grid.npy"), &[centers.len()], &centers)?;
            files.push((
                "grid.npy".to_string(),
                format!("cell centres x_i (float64, shape ({},))", centers.len()),
            ));
            for ((name, _), run) in self.processes().iter().zip(&runs) {
                let flat: Vec<f64> = run.fp.concat();
                let file = format!("fp_{name}.npy");
                write_npy(&out.file(&file), &[run.times.len(), centers.len()], &flat)?;
                files.push((
                    file,
                    format!(
                        "solver density of `{name}` at t = {:?} (float64, shape ({}, {}))",
                        run.times,
                        run.times.len(),
                        centers.len()
                    ),
                ));
            }

            let pc = &self.particles;
            let bin_w = (g.hi - g.lo) / pc.bins as f64;
            let edges: Vec<f64> = (0..=pc.bins).map(|b| g.lo + b as f64 * bin_w).collect();
            let mut panels = Vec::new();
            for (run, title) in runs.iter().zip(&titles) {
                // Plot window: where any of the densities exceeds 1e-3 of its maximum.
                let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
                for e in &run.exact {
                    let m = e.iter().cloned().fold(0.0, f64::max);
                    for (x, &v) in centers.iter().zip(e) {
                        if v > 1e-3 * m {
                            lo = lo.min(*x);
                            hi = hi.max(*x);
                        }
                    }
                }
                let mut panel = Panel {
                    title: title.clone(),
                    x_label: "x".into(),
                    y_label: "density p(x, t)".into(),
                    x_range: Some((lo, hi)),
                    ..Default::default()
                };
                for (i, &t) in run.times.iter().enumerate() {
                    let color = TIME_COLORS[i % TIME_COLORS.len()];
                    panel.bars.push(Bars {
                        edges: edges.clone(),
                        heights: run.hist[i].iter().map(|f| f / bin_w).collect(),
                        color,
                        alpha: 0.25,
                        label: None,
                    });
                    let pts = |d: &[f64]| -> Vec<(f64, f64)> {
                        centers
                            .iter()
                            .zip(d)
                            .filter(|(x, _)| **x >= lo && **x <= hi)
                            .map(|(&x, &v)| (x, v))
                            .collect()
                    };
                    panel.lines.push(Line {
                        points: pts(&run.fp[i]),
                        color,
                        alpha: 1.0,
                        width: 4,
                        label: Some(format!("Fokker–Planck, t = {t}")),
                    });
                    panel.lines.push(Line {
                        points: pts(&run.exact[i]),
                        color: figures::palette::EXACT,
                        alpha: 1.0,
                        width: 1,
                        label: (i == 0).then(|| "exact".to_string()),
                    });
                }
                panels.push(panel);
            }
            figures::draw_row(&out.file("fokker_planck.png"), &panels, (560, 440))?;
            figures.push(Figure {
                file: "fokker_planck.png".into(),
                caption: format!(
                    "The bimodal p₀ pushed through free diffusion, Ornstein–Uhlenbeck and VP. Thick \
                     coloured lines: the Fokker–Planck solution ({} cells, Crank–Nicolson dt = {}); \
                     thin black lines: the exact density; shaded bars: histograms of {} \
                     Euler–Maruyama particles (dt = {}) at the same times.",
                    g.cells, g.fp_dt, pc.n, pc.dt
                ),
            });
            Ok(())
        })?;

        let parameters = json!({
            "cell_width": fp.cell_width(),
            "bin_width": (g.hi - g.lo) / self.particles.bins as f64,
            "processes": params,
            "mass_drift": runs.iter().map(|r| r.mass_drift).collect::<Vec<_>>(),
            "chunk_size": CHUNK,
            "rng": "ChaCha8Rng::seed_from_u64(seed), stream = fnv1a64(\"<process>/<chunk>\")",
        });
        let how_to_read = format!(
            "`l1_fp_exact` is h Σ|p_i − p_t(x_i)| between the solver and the exact density at the \
             cell centres: pure discretisation error (space h = {h:.4}, time dt = {dt}), no \
             randomness. `l1_particles_exact` is Σ_b |n_b/n − P_b| between the particles' bin \
             fractions and the exact bin masses (bins of width {bw:.4}); sampling alone gives \
             about Σ_b √(2 P_b(1 − P_b)/(π n)) (listed per checkpoint in `metrics.json` as \
             `expected_l1_particles_noise`). `l1_particles_fp` is the same against the solver's \
             bin masses: the two agree because the solver is ~100× closer to the truth than the \
             particles can resolve. `ks_particles` is the one-sample KS test of the n = {n} \
             particles against the exact CDF (Euler–Maruyama bias O(dt) is far below its \
             resolution). `mass_drift` is max |h Σ p − 1|: the scheme conserves mass to round-off \
             (the tails beyond [lo, hi] are below 1e-12).",
            h = fp.cell_width(),
            dt = g.fp_dt,
            bw = (g.hi - g.lo) / self.particles.bins as f64,
            n = self.particles.n,
        );
        let check_yourself = format!(
            "```python\n\
             import numpy as np\n\
             from scipy import stats\n\
             x = np.load(\"grid.npy\"); p = np.load(\"fp_vp.npy\")\n\
             w, mu, s = np.array({w:?}), np.array({mu:?}), np.array({s:?})\n\
             def vp(t, bmin={bmin}, bmax={bmax}, T={tend}):\n\
             \x20   m = np.exp(-0.5 * (bmin * t + 0.5 * (bmax - bmin) * t**2 / T)); return m, np.sqrt(1 - m**2)\n\
             for i, t in enumerate({vt:?}):\n\
             \x20   m, sig = vp(t)\n\
             \x20   exact = sum(wk * stats.norm.pdf(x, m * mk, np.hypot(m * sk, sig)) for wk, mk, sk in zip(w, mu, s))\n\
             \x20   print(t, (x[1] - x[0]) * np.abs(p[i] - exact).sum())  # = vp.t<i+1>.l1_fp_exact\n\
             ```\n",
            w = self.data.weights,
            mu = self.data.means,
            s = self.data.stds,
            bmin = self.vp.beta_min,
            bmax = self.vp.beta_max,
            tend = self.vp.t_end,
            vt = self.vp.times,
        );
        Ok(RunResults {
            parameters,
            statistics: stats,
            figures,
            files,
            sections: vec![
                ("How to read this".into(), how_to_read),
                ("Check it yourself (NumPy/SciPy)".into(), check_yourself),
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulate_is_independent_of_thread_count() {
        let sde = OuSde::new(1.0, 0.5, 1.0).unwrap();
        let p0 = GaussianMixture::bimodal_1d();
        let n = 2 * CHUNK + 10;
        let stops = [(0.1, 10), (0.2, 10)];
        let a = simulate(&sde, &p0, n, &stops, 3, "t", 1);
        let b = simulate(&sde, &p0, n, &stops, 3, "t", 3);
        assert_eq!(a, b);
        assert_eq!(a[1].len(), n);
        assert_ne!(a, simulate(&sde, &p0, n, &stops, 4, "t", 2));
    }

    #[test]
    fn expected_noise_matches_a_direct_binomial_sum() {
        // One bin of mass ½ with n = 100: E|B/n − ½| ≈ √(2·¼/(π·100)) = 0.0399.
        assert!((expected_l1_noise(&[0.5], 100) - 0.039_894).abs() < 1e-5);
    }
}
