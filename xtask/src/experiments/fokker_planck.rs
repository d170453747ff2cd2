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
//! Particles are simulated by `smoluchowski::sde::simulate_ensemble` in fixed chunks of
//! [`CHUNK`]; chunk `c` of process `name` uses `seeding::stream(seed, name, c)` (initial draws,
//! then Euler–Maruyama noise), so the numbers do not depend on the thread count. The solver runs
//! checkpoint to checkpoint (`FokkerPlanck1d::solve_checkpoints`); the binned comparisons and
//! their noise floor are `smoluchowski::metrics::{bin_fractions, bin_masses, l1_distance,
//! binomial_l1_noise}`.

use std::collections::BTreeMap;

use anyhow::{anyhow, Result};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use smoluchowski::datasets::{Dataset, Mixture1dConfig};
use smoluchowski::metrics::{
    bin_fractions, bin_masses, binomial_l1_noise, ks_one_sample, l1_distance,
};
use smoluchowski::sde::{simulate_ensemble, stops_every, whole_steps, MAX_CHECKPOINTS};
use smoluchowski::sde::{FokkerPlanck1d, ForwardSde, FpGridConfig, FpParticles, MixtureOracle};
use smoluchowski::sde::{FreeTimes, OuTimes, VpTimes};

use crate::figures::{self, evolving_density_panel, Panel};
use crate::harness::{Experiment, Figure, KindEntry, RunContext};
use crate::manifest::{self, ExperimentHeader, ManifestText};
use crate::output::{write_npy, OutputDir};
use crate::report;
use crate::stats::{Ks, Rendered, TypedExperiment, Value};
use crate::validate::Checker;

/// Registration of this kind.
pub const ENTRY: KindEntry = KindEntry {
    kind: "fokker-planck",
    summary: "1-D Fokker–Planck solver vs exact diffused mixture density and Euler–Maruyama particles (free, OU, VP)",
    load,
};

/// Particles per random-stream chunk.
pub const CHUNK: usize = 8192;

/// The whole manifest of kind `fokker-planck`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FokkerPlanckManifest {
    /// `[experiment]`.
    pub experiment: ExperimentHeader,
    /// `[data]`.
    pub data: Mixture1dConfig,
    /// `[grid]`.
    pub grid: FpGridConfig,
    /// `[particles]`.
    pub particles: FpParticles,
    /// `[free]`.
    pub free: FreeTimes,
    /// `[ou]`.
    pub ou: OuTimes,
    /// `[vp]`.
    pub vp: VpTimes,
}

impl FokkerPlanckManifest {
    fn check(&self) -> Result<()> {
        let mut c = Checker::new();
        self.experiment.check(&mut c);
        self.data.check(&mut c, "data");
        let (g, p) = (&self.grid, &self.particles);
        let n_times = self.processes().iter().map(|(_, t)| t.len()).sum::<usize>();
        g.check(&mut c, "grid", 2 * n_times);
        p.check(&mut c, "particles", g.cells, MAX_CHECKPOINTS);
        let dts = [("grid.fp_dt", g.fp_dt), ("particles.dt", p.dt)];
        self.free.check(&mut c, "free", &dts);
        self.ou.check(&mut c, "ou", &dts, ("particles.dt", p.dt));
        self.vp.check(&mut c, "vp", &dts, ("particles.dt", p.dt));
        Ok(c.finish()?)
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
    (parsed.data.build())
        .map_err(|e| crate::validate::bad_input(format!("{}: data: {e}", m.display)))?;
    Ok(Box::new(parsed))
}

/// `<process>.t<i>.*`: one checkpoint.
#[derive(Debug, Default, Serialize)]
pub struct CheckpointStats {
    /// `h Σ_i |p_i − p_t(x_i)|`: solver vs exact density.
    pub l1_fp_exact: Value,
    /// `Σ_b |n_b/n − P_b|`: particle histogram vs exact bin masses.
    pub l1_particles_exact: Value,
    /// The same against the solver's bin masses.
    pub l1_particles_fp: Value,
    /// One-sample KS of the particles against the exact CDF.
    pub ks_particles: Ks,
}

/// `<process>.*`: the mass drift and the checkpoints `t1`, `t2`, ...
#[derive(Debug, Default, Serialize)]
pub struct ProcessStats {
    /// `max |h Σ p − 1|` over the checkpoints.
    pub mass_drift: Value,
    /// Keyed `t1`, `t2`, ... in checkpoint order.
    #[serde(flatten)]
    pub checkpoints: BTreeMap<String, CheckpointStats>,
}

/// The statistics of a `fokker-planck` run, keyed by process (`free`, `ou`, `vp`).
pub type FokkerPlanckStats = BTreeMap<String, ProcessStats>;

/// Everything measured for one process.
pub struct ProcessRun {
    times: Vec<f64>,
    /// Solver density at the cell centres, per time.
    fp: Vec<Vec<f64>>,
    /// Exact density at the cell centres, per time.
    exact: Vec<Vec<f64>>,
    /// Particle bin fractions `n_b / n`, per time.
    hist: Vec<Vec<f64>>,
    /// Largest `|h Σ p − 1|` over the times.
    mass_drift: f64,
    /// Per-checkpoint derived parameters.
    params: Vec<serde_json::Value>,
}

/// The solver grid and the three processes' runs (report order).
pub struct Computed {
    fp: FokkerPlanck1d,
    runs: Vec<ProcessRun>,
}

/// Report prose, next to the code (`{name}` placeholders, see [`report::fill`]).
const HOW_TO_READ: &str = include_str!("fokker_planck/how_to_read.md");
const CHECK_YOURSELF: &str = include_str!("fokker_planck/check_yourself.md");

impl FokkerPlanckManifest {
    /// Solver and particles for one process; its statistics and what the figure needs.
    fn run_process<S: ForwardSde + Sync + Clone>(
        &self,
        name: &str,
        sde: S,
        times: &[f64],
        fp: &FokkerPlanck1d,
        seed: u64,
    ) -> Result<(ProcessStats, ProcessRun)> {
        let p0 = self.data.build().map_err(|e| anyhow!("data: {e}"))?;
        let oracle = MixtureOracle::new(sde.clone(), p0.clone());
        let (g, pc) = (&self.grid, &self.particles);
        let per_bin = g.cells / pc.bins;
        let edges = fp.coarse_edges(per_bin);

        let density = |t: f64, x: f64| oracle.marginal(t).log_density(&[x]).exp();
        let fp_stops = stops_every(times, g.fp_dt);
        let solved = fp.solve_checkpoints(&sde, &fp.project(|x| density(0.0, x)), &fp_stops);
        let exact: Vec<Vec<f64>> = times
            .iter()
            .map(|&t| {
                let marg = oracle.marginal(t);
                fp.project(|x| marg.log_density(&[x]).exp())
            })
            .collect();
        let em_stops = stops_every(times, pc.dt);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let init = |rng: &mut ChaCha8Rng, len: usize| p0.sample(rng, len);
        let snaps = simulate_ensemble(&sde, init, pc.n, CHUNK, &em_stops, seed, name, threads);

        let mut stats = ProcessStats {
            mass_drift: solved.mass_drift.into(),
            checkpoints: BTreeMap::new(),
        };
        let (mut hist, mut params) = (Vec::new(), Vec::new());
        for (i, &t) in times.iter().enumerate() {
            let x = &snaps[i];
            let frac = bin_fractions(x, g.lo, g.hi, pc.bins);
            let exact_mass = bin_masses(&edges, |v| oracle.marginal_cdf(0, t, v));
            let fp_mass = fp.coarse_masses(&solved.densities[i], per_bin);
            let cp = CheckpointStats {
                l1_fp_exact: fp.l1_distance(&solved.densities[i], &exact[i]).into(),
                l1_particles_exact: l1_distance(&frac, &exact_mass).into(),
                l1_particles_fp: l1_distance(&frac, &fp_mass).into(),
                ks_particles: ks_one_sample(x, |v| oracle.marginal_cdf(0, t, v)).into(),
            };
            stats.checkpoints.insert(format!("t{}", i + 1), cp);
            params.push(json!({
                "t": t,
                "fp_steps_from_previous": whole_steps(t - if i == 0 { 0.0 } else { times[i - 1] }, g.fp_dt),
                "em_steps_from_previous": em_stops[i].1,
                "mean_coef": sde.mean_coef(t),
                "kernel_std": sde.marginal_std(t),
                "l1_fp_exact_binned": l1_distance(&fp_mass, &exact_mass),
                "expected_l1_particles_noise": binomial_l1_noise(&exact_mass, pc.n),
            }));
            hist.push(frac);
        }
        let run = ProcessRun {
            times: times.to_vec(),
            fp: solved.densities,
            exact,
            hist,
            mass_drift: solved.mass_drift,
            params,
        };
        Ok((stats, run))
    }

    /// Panel titles in report order.
    fn titles(&self) -> [String; 3] {
        [
            format!("free diffusion, D = {}", self.free.diffusion),
            format!(
                "Ornstein–Uhlenbeck, a = {}, D = {}",
                self.ou.a, self.ou.diffusion
            ),
            format!(
                "VP, β ∈ [{}, {}], T = {}",
                self.vp.beta_min, self.vp.beta_max, self.vp.t_end
            ),
        ]
    }

    /// `grid.npy` and `fp_<process>.npy`; their descriptions.
    fn write_arrays(&self, c: &Computed, out: &OutputDir) -> Result<Vec<(String, String)>> {
        let centers = c.fp.centers();
        write_npy(&out.file("grid.npy"), &[centers.len()], &centers)?;
        let mut files = vec![(
            "grid.npy".to_string(),
            format!("cell centres x_i (float64, shape ({},))", centers.len()),
        )];
        for ((name, _), run) in self.processes().iter().zip(&c.runs) {
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
        Ok(files)
    }

    /// `fokker_planck.png`: the three processes side by side.
    fn density_figure(&self, c: &Computed, out: &OutputDir) -> Result<Figure> {
        let (centers, pc, g) = (c.fp.centers(), &self.particles, &self.grid);
        let bin_w = (g.hi - g.lo) / pc.bins as f64;
        let edges: Vec<f64> = (0..=pc.bins).map(|b| g.lo + b as f64 * bin_w).collect();
        let panels: Vec<Panel> = (c.runs.iter().zip(&self.titles()))
            .map(|(run, title)| {
                let hist: Vec<Vec<f64>> = (run.hist.iter())
                    .map(|h| h.iter().map(|f| f / bin_w).collect())
                    .collect();
                let (t, fp, ex) = (&run.times, &run.fp, &run.exact);
                evolving_density_panel(title, &centers, &edges, t, &hist, fp, ex)
            })
            .collect();
        figures::draw_row(&out.file("fokker_planck.png"), &panels, (560, 440))?;
        Ok(Figure {
            file: "fokker_planck.png".into(),
            caption: format!(
                "The bimodal p₀ pushed through free diffusion, Ornstein–Uhlenbeck and VP. Thick \
                 coloured lines: the Fokker–Planck solution ({} cells, Crank–Nicolson dt = {}); \
                 thin black lines: the exact density; shaded bars: histograms of {} \
                 Euler–Maruyama particles (dt = {}) at the same times.",
                g.cells, g.fp_dt, pc.n, pc.dt
            ),
        })
    }

    /// Derived parameters echoed in metrics.json.
    fn parameters(&self, c: &Computed) -> serde_json::Value {
        let g = &self.grid;
        let processes: serde_json::Map<String, serde_json::Value> = self
            .processes()
            .iter()
            .zip(&c.runs)
            .map(|((name, _), run)| (name.to_string(), json!({ "checkpoints": run.params })))
            .collect();
        json!({
            "cell_width": c.fp.cell_width(),
            "bin_width": (g.hi - g.lo) / self.particles.bins as f64,
            "processes": processes,
            "mass_drift": c.runs.iter().map(|r| r.mass_drift).collect::<Vec<_>>(),
            "chunk_size": CHUNK,
            "rng": "ChaCha8Rng::seed_from_u64(seed), stream = fnv1a64(\"<process>/<chunk>\")",
        })
    }

    /// "How to read this" and "Check it yourself".
    fn sections(&self, c: &Computed) -> Vec<(String, String)> {
        let g = &self.grid;
        let how = report::fill(
            HOW_TO_READ,
            &[
                ("h", format!("{:.4}", c.fp.cell_width())),
                ("dt", g.fp_dt.to_string()),
                (
                    "bw",
                    format!("{:.4}", (g.hi - g.lo) / self.particles.bins as f64),
                ),
                ("n", self.particles.n.to_string()),
            ],
        );
        let check = report::fill(
            CHECK_YOURSELF,
            &[
                ("w", format!("{:?}", self.data.weights)),
                ("mu", format!("{:?}", self.data.means)),
                ("s", format!("{:?}", self.data.stds)),
                ("bmin", self.vp.beta_min.to_string()),
                ("bmax", self.vp.beta_max.to_string()),
                ("tend", self.vp.t_end.to_string()),
                ("vt", format!("{:?}", self.vp.times)),
            ],
        );
        vec![
            ("How to read this".into(), how),
            ("Check it yourself (NumPy/SciPy)".into(), check),
        ]
    }
}

impl TypedExperiment for FokkerPlanckManifest {
    type Stats = FokkerPlanckStats;
    type Computed = Computed;

    fn header(&self) -> &ExperimentHeader {
        &self.experiment
    }

    fn declared(&self) -> FokkerPlanckStats {
        self.processes()
            .iter()
            .map(|(name, times)| {
                let checkpoints = (1..=times.len())
                    .map(|i| (format!("t{i}"), CheckpointStats::default()))
                    .collect();
                let p = ProcessStats {
                    mass_drift: Value::default(),
                    checkpoints,
                };
                (name.to_string(), p)
            })
            .collect()
    }

    fn compute(&self, ctx: &mut RunContext<'_>) -> Result<(FokkerPlanckStats, Computed)> {
        let g = &self.grid;
        let fp = g.build().map_err(|e| anyhow!("grid: {e}"))?;
        let seed = ctx.seed;
        let free = self.free.sde().map_err(|e| anyhow!("free: {e}"))?;
        let ou = self.ou.sde().map_err(|e| anyhow!("ou: {e}"))?;
        let vp = self.vp.sde().map_err(|e| anyhow!("vp: {e}"))?;
        let results = [
            ctx.time("free", || {
                self.run_process("free", free, &self.free.times, &fp, seed)
            })?,
            ctx.time("ou", || {
                self.run_process("ou", ou, &self.ou.times, &fp, seed)
            })?,
            ctx.time("vp", || {
                self.run_process("vp", vp, &self.vp.times, &fp, seed)
            })?,
        ];
        let mut stats = BTreeMap::new();
        let mut runs = Vec::new();
        for ((name, _), (s, r)) in self.processes().iter().zip(results) {
            stats.insert(name.to_string(), s);
            runs.push(r);
        }
        Ok((stats, Computed { fp, runs }))
    }

    fn render(
        &self,
        _stats: &FokkerPlanckStats,
        c: &Computed,
        ctx: &mut RunContext<'_>,
    ) -> Result<Rendered> {
        let out = ctx.out;
        let (files, figure) = ctx.time("write", || -> Result<_> {
            Ok((self.write_arrays(c, out)?, self.density_figure(c, out)?))
        })?;
        Ok(Rendered {
            parameters: self.parameters(c),
            figures: vec![figure],
            files,
            sections: self.sections(c),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::kinds;

    fn manifest() -> FokkerPlanckManifest {
        let text = include_str!("../../../experiments/fokker-planck.toml");
        toml::from_str(text).unwrap()
    }

    #[test]
    fn declared_keys_are_the_golden_names() {
        let k = kinds(&manifest().declared());
        assert_eq!(k.len(), 3 * (1 + 3 * 4));
        assert_eq!(k["vp.mass_drift"], crate::harness::StatKind::Value);
        assert_eq!(k["ou.t3.ks_particles"], crate::harness::StatKind::Ks);
        assert!(k.contains_key("free.t2.l1_particles_fp"));
        let golden = include_str!("../../../experiments/fokker-planck.golden.toml");
        for line in golden.lines().filter(|l| l.starts_with("stat = ")) {
            let name = line.trim_start_matches("stat = ").trim_matches('"');
            assert!(k.contains_key(name), "{name}");
        }
    }

    #[test]
    fn report_templates_fill() {
        let m = manifest();
        let fp = FokkerPlanck1d::new(m.grid.lo, m.grid.hi, m.grid.cells).unwrap();
        let s = m.sections(&Computed { fp, runs: vec![] });
        assert!(s[0].1.contains("n = 100000"));
        assert!(s[1].1.contains("enumerate([0.05, 0.2, 1.0])"));
    }
}
