//! Kind `ring2d-likelihood`: exact log-likelihoods of a trained score network through the
//! probability-flow ODE, against ring2d's exact density and entropy.
//!
//! The network is trained with ring2d's recipe ([`train_score_net`]); on held-out ring2d points
//! `x_i` the run integrates the probability-flow ODE from `t_eps` to `T` jointly with
//! `∫ ∇·ṽ dt`, the divergence of the network's score taken **exactly** (forward-mode
//! differentiation through the MLP, `NetScore: ScoreDivergence`), so
//! `log p^θ_{t_eps}(x) = log N(x_T; 0, I) + ∫_{t_eps}^T [d a(t) − ½ g(t)² ∇·s_θ] dt`.
//!
//! Its mean `NLL = −(1/n) Σ log p^θ_{t_eps}(x_i)` estimates the cross-entropy `H(p₀, p^θ)`,
//! which is `H(p₀) + KL(p₀ ‖ p^θ) ≥ H(p₀)`; `H(p₀)` is ring2d's entropy in closed form
//! ([`Ring2d::entropy`], cross-checked by the Monte-Carlo mean of `−log p₀(x_i)`). The gap
//! `NLL − H` splits, per point and paired, into
//! - *t_eps smoothing*: `−log p_{t_eps}(x) + log p₀(x)`, with `p_{t_eps} = p₀ ∗ kernel` the exact
//!   diffused law (by quadrature, [`Ring2dOracle::log_density_batch`]): what even the exact
//!   score would give;
//! - *model*: `−log p^θ_{t_eps}(x) + log p_{t_eps}(x)` (network + ODE discretisation).
//!
//! Hutchinson's estimator (Rademacher probes, fixed per point along the trajectory) is compared
//! with the exact divergence on the same points (paired differences: unbiasedness and its
//! variance cost), and the ODE solver with half its steps and with an adaptive
//! Dormand–Prince reference.
//!
//! Random streams derive from the master seed by name: `network_init`, `training` (through
//! [`train_score_net`]), `held_out` (the points), `hutchinson` (the probes).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use smoluchowski::datasets::{Dataset, Ring2d};
use smoluchowski::metrics::{likelihood_gaps, mean_se, LikelihoodGaps, MeanSe};
use smoluchowski::nets::{NetScore, ScoreNetConfig};
use smoluchowski::samplers::{
    check_solver_accuracy, compare_hutchinson, likelihood_memory_estimate, log_likelihood_chunked,
    t_eps_scan, Divergence, HutchinsonComparison, LikelihoodConfig, OdeSolver, ScanRow,
    SolverCheck,
};
use smoluchowski::sde::{ForwardSde, Ring2dOracle, Sde};

use crate::figures::{self, nll_panels};
use crate::harness::{Experiment, Figure, KindEntry, RunContext};
use crate::manifest::{self, ExperimentHeader, ManifestText};
use crate::output::write_npy;
use crate::progress::Progress;
use crate::report;
use crate::seeding::{self, derived_seed};
use crate::stats::{Rendered, TypedExperiment, Value};
use crate::tables::{DatasetTable, SdeTable, TrainingTable};
use crate::training::{train_score_net, Trained};
use crate::validate::{fmt_f64, Checker};

/// Registration of this kind.
pub const ENTRY: KindEntry = KindEntry {
    kind: "ring2d-likelihood",
    summary: "trains the ring2d recipe, then held-out NLL through the probability-flow ODE with \
              the exact network divergence vs ring2d's exact entropy; Hutchinson vs exact",
    load,
};

/// Most Hutchinson probes per estimate.
const MAX_PROBES: usize = 64;
/// Points per call of the main likelihood integration (progress granularity). Fixed, so the
/// result does not depend on the machine (and for RK4 each row is independent anyway).
const CHUNK_POINTS: usize = 2048;

/// `[likelihood]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LikelihoodTable {
    /// Held-out ring2d points.
    pub n_points: usize,
    /// Start time `t_eps ∈ (0, T)` of the ODE (the likelihood is that of `p_{t_eps}`).
    pub t_eps: f64,
    /// The ODE solver of the main estimate.
    pub solver: OdeSolver,
    /// Reference solver of the accuracy check (e.g. tight Dormand–Prince).
    pub check_solver: OdeSolver,
    /// Leading points of the accuracy check (solver with half its steps, reference solver).
    pub check_points: usize,
    /// Probe counts `K` of the Hutchinson estimates compared with the exact divergence.
    pub hutchinson_probes: Vec<usize>,
    /// Leading points of the Hutchinson comparison.
    pub hutchinson_points: usize,
    /// Points drawn in the scatter figures.
    pub figure_points: usize,
    /// Further start times: on the `check_points` points, the model's NLL of `p^θ_t` against the
    /// exact cross-entropy of `p_t` at each (where along t the model's error lives).
    #[serde(default)]
    pub t_eps_scan: Vec<f64>,
}

/// The whole manifest of kind `ring2d-likelihood`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ring2dLikelihoodManifest {
    /// `[experiment]`.
    pub experiment: ExperimentHeader,
    /// `[dataset]`.
    pub dataset: DatasetTable,
    /// `[sde]`.
    pub sde: SdeTable,
    /// `[network]`.
    pub network: ScoreNetConfig,
    /// `[training]` (its seed derives from `experiment.seed`).
    pub training: TrainingTable,
    /// `[likelihood]`.
    pub likelihood: LikelihoodTable,
}

impl Ring2dLikelihoodManifest {
    fn check(&self) -> Result<()> {
        let mut c = Checker::new();
        self.experiment.check(&mut c);
        let k = self.dataset.scale;
        let range = ">= 2 (the quadrature oracle's range)";
        c.require(
            k.is_finite() && k >= 2.0,
            "dataset.scale",
            range,
            fmt_f64(k),
        );
        let sde = self.sde.build();
        if let Err(e) = &sde {
            c.fail(format!("{e}"));
        }
        crate::tables::check_model(&mut c, &self.network, &self.training.0, 2);
        let l = &self.likelihood;
        c.count("likelihood.n_points", l.n_points, 2, usize::MAX);
        c.memory(
            "likelihood",
            [likelihood_memory_estimate("n_points", l.n_points, 2)],
        );
        if let Ok(sde) = &sde {
            c.open_interval("likelihood.t_eps", l.t_eps, 0.0, sde.t_end());
        }
        l.solver.check(&mut c, "likelihood.solver");
        l.check_solver.check(&mut c, "likelihood.check_solver");
        let n = l.n_points.max(2);
        c.count("likelihood.check_points", l.check_points, 2, n);
        c.count("likelihood.hutchinson_points", l.hutchinson_points, 2, n);
        c.count(
            "likelihood.figure_points",
            l.figure_points,
            1,
            l.n_points.max(1),
        );
        let probes = &l.hutchinson_probes;
        c.count(
            "likelihood.hutchinson_probes (number of)",
            probes.len(),
            1,
            8,
        );
        for (i, &p) in probes.iter().enumerate() {
            c.count(
                &format!("likelihood.hutchinson_probes[{i}]"),
                p,
                1,
                MAX_PROBES,
            );
        }
        Ok(c.finish()?)
    }
}

fn load(m: &ManifestText) -> Result<Box<dyn Experiment>> {
    let parsed: Ring2dLikelihoodManifest = manifest::parse_as(m)?;
    parsed.check().map_err(|e| e.context(m.display.clone()))?;
    Ok(Box::new(parsed))
}

/// `ode.*`: the main solver against a coarser one and the reference solver.
#[derive(Debug, Default, Serialize)]
pub struct OdeStats {
    pub coarse_max_abs: Value,
    pub reference_max_abs: Value,
    pub reference_mean: Value,
}

/// `scan<i>.*`.
#[derive(Debug, Default, Serialize)]
pub struct ScanStats {
    pub gap_model: Value,
}

/// `hutchinson_k<K>.*`: Hutchinson − exact log-likelihood, paired per point.
#[derive(Debug, Default, Serialize)]
pub struct HutchinsonStats {
    pub diff_mean: Value,
    pub diff_se: Value,
    pub diff_z: Value,
    pub diff_sd: Value,
}

/// The statistics of a `ring2d-likelihood` run (nats): ring2d's entropy in closed form and by
/// Monte Carlo (`entropy_mc_z`: their z), the model's NLL and its paired gaps to it
/// (`gap_total` = `gap_teps` + `gap_model`, each ± SE), NFE per point, the solver checks
/// (`ode.*`), the model gap at each `t_eps_scan` time (`scan<i>`) and Hutchinson − exact
/// (`hutchinson_k<K>`).
#[derive(Debug, Default, Serialize)]
pub struct LikelihoodStats {
    pub entropy_exact: Value,
    pub entropy_mc: Value,
    pub entropy_mc_se: Value,
    pub entropy_mc_z: Value,
    pub nll_nats: Value,
    pub nll_se: Value,
    pub nll_bits_per_dim: Value,
    pub gap_total: Value,
    pub gap_total_se: Value,
    pub gap_teps: Value,
    pub gap_teps_se: Value,
    pub gap_model: Value,
    pub gap_model_se: Value,
    pub nfe: Value,
    pub ode: OdeStats,
    #[serde(flatten)]
    pub scan: BTreeMap<String, ScanStats>,
    #[serde(flatten)]
    pub hutchinson: BTreeMap<String, HutchinsonStats>,
}

/// What compute hands to render.
pub struct Computed {
    sde: Sde,
    trained: Trained,
    /// Held-out points (f64 values of the f32 inputs).
    x64: Vec<f64>,
    nll: Vec<f64>,
    neg_log_p0: Vec<f64>,
    log_pt: Vec<f64>,
    exact_wall: f64,
    nfe: usize,
    hutch: Vec<HutchinsonComparison>,
    ode: SolverCheck,
    scan: Vec<ScanRow>,
}

/// Report prose, next to the code (`{name}` placeholders, see [`report::fill`]).
const HOW_TO_READ: &str = include_str!("ring2d_likelihood/how_to_read.md");
const CHECK_YOURSELF: &str = include_str!("ring2d_likelihood/check_yourself.md");
const HUTCHINSON: &str = include_str!("ring2d_likelihood/hutchinson.md");

fn scan_key(i: usize) -> String {
    format!("scan{i}")
}

fn hutch_key(probes: usize) -> String {
    format!("hutchinson_k{probes}")
}

impl TypedExperiment for Ring2dLikelihoodManifest {
    type Stats = LikelihoodStats;
    type Computed = Computed;

    fn header(&self) -> &ExperimentHeader {
        &self.experiment
    }

    fn declared(&self) -> LikelihoodStats {
        let l = &self.likelihood;
        LikelihoodStats {
            scan: (0..l.t_eps_scan.len())
                .map(|i| (scan_key(i), ScanStats::default()))
                .collect(),
            hutchinson: l
                .hutchinson_probes
                .iter()
                .map(|&p| (hutch_key(p), HutchinsonStats::default()))
                .collect(),
            ..Default::default()
        }
    }

    fn compute(&self, ctx: &mut RunContext<'_>) -> Result<(LikelihoodStats, Computed)> {
        let seed = ctx.seed;
        let ckpts = ctx.checkpoints.clone();
        let sde: Sde = self.sde.build()?;
        let ring = Ring2d::new(self.dataset.scale).map_err(|e| anyhow!("dataset: {e}"))?;
        let l = &self.likelihood;
        let n = l.n_points;

        let (network, training, name) = (&self.network, &self.training.0, &self.experiment.name);
        let trained = ctx.time("train", || {
            train_score_net(name, network, training, &sde, &ring, seed, &ckpts)
        })?;

        // Held-out points (f32, as the network sees them; exact values at the same f32 points).
        let mut x64 = vec![0.0f64; 2 * n];
        ring.sample_into(&mut seeding::stream(seed, "held_out", 0), &mut x64);
        let x32: Vec<f32> = x64.iter().map(|&v| v as f32).collect();
        let x64: Vec<f64> = x32.iter().map(|&v| f64::from(v)).collect();

        // Exact truth: log p₀, entropy, log p_{t_eps} by quadrature.
        let log_p0: Vec<f64> = x64
            .chunks_exact(2)
            .map(|p| ring.log_density([p[0], p[1]]))
            .collect();
        let neg_log_p0: Vec<f64> = log_p0.iter().map(|v| -v).collect();
        let oracle = Ring2dOracle::new(sde, ring.clone()).map_err(|e| anyhow!("oracle: {e}"))?;
        let mut log_pt = vec![0.0f64; n];
        ctx.time("oracle_log_density", || {
            oracle.log_density_batch(&x64, l.t_eps, &mut log_pt)
        });

        // The model's likelihood, exact divergence.
        let cfg = LikelihoodConfig::new(l.t_eps, l.solver, Divergence::Exact);
        let mut score = NetScore::new(&trained.net, &sde);
        let start = Instant::now();
        let mut bar = Progress::new("likelihood", n as u64, "points");
        let res = ctx.time("likelihood_exact", || {
            log_likelihood_chunked(&sde, &mut score, &x32, &cfg, CHUNK_POINTS, |done| {
                bar.update(done as u64, String::new)
            })
        });
        bar.finish();
        let main = res.map_err(|e| anyhow!("likelihood: {e}"))?;
        let exact_wall = start.elapsed().as_secs_f64();
        let (gaps, nll) = likelihood_gaps(&main.nats, &log_p0, &log_pt);
        let h_exact = ring.entropy();
        eprintln!(
            "  NLL {:.5} ± {:.5} nats vs H = {h_exact:.5}: gap {:.5} ± {:.5} \
             (t_eps {:.2e}, model {:.5}); {exact_wall:.1} s",
            gaps.nll.mean,
            gaps.nll.se,
            gaps.total.mean,
            gaps.total.se,
            gaps.teps.mean,
            gaps.model.mean
        );

        let (mh, mc) = (l.hutchinson_points, l.check_points);
        let hutch_seed = derived_seed(ctx.seed, "hutchinson");
        let mut hutch = Vec::new();
        for &k in &l.hutchinson_probes {
            let (x, exact) = (&x32[..2 * mh], &main.nats[..mh]);
            let h = ctx
                .time(&format!("likelihood_hutchinson_k{k}"), || {
                    compare_hutchinson(
                        &sde,
                        &mut score,
                        x,
                        exact,
                        (l.t_eps, l.solver),
                        k,
                        hutch_seed,
                    )
                })
                .map_err(|e| anyhow!("likelihood (Hutchinson, {k} probes): {e}"))?;
            let (d, sd) = (h.diff, h.diff_sd);
            eprintln!(
                "  Hutchinson K = {k}: mean diff {:.2e} ± {:.2e} (z {:.2}), sd {sd:.4}",
                d.mean,
                d.se,
                d.z()
            );
            hutch.push(h);
        }
        let (x, main_sub) = (&x32[..2 * mc], &main.nats[..mc]);
        let solvers = (l.solver, l.check_solver);
        let ode = ctx
            .time("likelihood_ode_check", || {
                check_solver_accuracy(&sde, &mut score, x, main_sub, l.t_eps, solvers)
            })
            .map_err(|e| anyhow!("likelihood (ODE check): {e}"))?;
        eprintln!(
            "  ODE: coarse max |Δ| {:.2e}, reference max |Δ| {:.2e} (NFE {})",
            ode.coarse_max_abs, ode.reference_max_abs, ode.reference_nfe
        );
        let log_density = |t, out: &mut [f64]| oracle.log_density_batch(&x64[..2 * mc], t, out);
        let scan = ctx
            .time("likelihood_scan", || {
                t_eps_scan(&sde, &mut score, x, l.solver, &l.t_eps_scan, log_density)
            })
            .map_err(|e| anyhow!("likelihood (t_eps_scan): {e}"))?;

        let stats = likelihood_stats(
            h_exact,
            mean_se(&neg_log_p0),
            &gaps,
            main.nfe,
            &ode,
            &scan,
            &hutch,
        );
        let computed = Computed {
            sde,
            trained,
            x64,
            nll,
            neg_log_p0,
            log_pt,
            exact_wall,
            nfe: main.nfe,
            hutch,
            ode,
            scan,
        };
        Ok((stats, computed))
    }

    fn render(
        &self,
        stats: &LikelihoodStats,
        c: &Computed,
        ctx: &mut RunContext<'_>,
    ) -> Result<Rendered> {
        let out = ctx.out;
        let l = &self.likelihood;
        let n = l.n_points;
        ctx.time("save_model", || {
            c.trained.net.save(&out.file("model.safetensors"))
        })
        .map_err(|e| anyhow!("cannot save the model: {e}"))?;
        let per_point: Vec<f64> = (0..n)
            .flat_map(|i| [c.nll[i], -c.log_pt[i], c.neg_log_p0[i]])
            .collect();
        let h_exact = stats.entropy_exact.value;
        let figures = ctx.time("write", || -> Result<Vec<Figure>> {
            write_npy(&out.file("held_out.npy"), &[n, 2], &c.x64)?;
            write_npy(&out.file("nll.npy"), &[n, 3], &per_point)?;
            let per_point = (&c.nll[..], &c.neg_log_p0[..]);
            Ok(vec![nll_figure(
                out,
                &c.x64,
                per_point,
                l.figure_points,
                h_exact,
            )?])
        })?;
        Ok(Rendered {
            parameters: self.parameters(c),
            figures,
            files: vec![
                (
                    "model.safetensors".into(),
                    "the trained network (EMA weights if enabled) and its config (model.json)"
                        .into(),
                ),
                (
                    "held_out.npy".into(),
                    format!("the {n} held-out points (float64, shape ({n}, 2))"),
                ),
                (
                    "nll.npy".into(),
                    format!(
                        "per point: model NLL, exact −log p_t_eps, exact −log p₀ (float64, shape ({n}, 3))"
                    ),
                ),
            ],
            sections: vec![
                (
                    "Results: held-out NLL vs exact entropy".into(),
                    self.results_section(stats, c),
                ),
                (
                    "Hutchinson's estimator vs the exact divergence".into(),
                    self.hutchinson_section(c),
                ),
                ("ODE solver accuracy".into(), self.ode_section(stats, c)),
                (
                    "Where the model's error lives: the gap vs t".into(),
                    self.scan_section(stats, c),
                ),
                (
                    "How to read this".into(),
                    report::fill(
                        HOW_TO_READ,
                        &[
                            ("h_exact", format!("{h_exact:.5}")),
                            ("mc_z", format!("{:.2}", stats.entropy_mc_z.value)),
                            ("teps", fmt_f64(l.t_eps)),
                            ("gap_teps", format!("{:+.1e}", stats.gap_teps.value)),
                        ],
                    ),
                ),
                (
                    "Check it yourself (NumPy/SciPy)".into(),
                    report::fill(
                        CHECK_YOURSELF,
                        &[
                            ("n", n.to_string()),
                            ("k", self.dataset.scale.to_string()),
                        ],
                    ),
                ),
            ],
        })
    }
}

impl Ring2dLikelihoodManifest {
    fn results_section(&self, s: &LikelihoodStats, c: &Computed) -> String {
        let l = &self.likelihood;
        let mut results =
            String::from("| quantity | nats | ± SE | bits/dim |\n|---|---:|---:|---:|\n");
        let bits = |v: f64| v / (2.0 * std::f64::consts::LN_2);
        let mut row = |name: &str, v: f64, se: Option<f64>| {
            let _ = writeln!(
                results,
                "| {name} | {v:.5} | {} | {:.5} |",
                se.map_or("exact".into(), |s| format!("{s:.5}")),
                bits(v)
            );
        };
        let (h_mc, h_mc_se) = (s.entropy_mc.value, s.entropy_mc_se.value);
        row(
            "ring2d entropy H(p₀) (closed form)",
            s.entropy_exact.value,
            None,
        );
        row("Monte-Carlo mean of −log p₀(x_i)", h_mc, Some(h_mc_se));
        row(
            "exact cross-entropy E[−log p_{t_eps}(x_i)] (quadrature)",
            h_mc + s.gap_teps.value,
            Some(h_mc_se),
        );
        row(
            "**model NLL** E[−log p^θ_{t_eps}(x_i)]",
            s.nll_nats.value,
            Some(s.nll_se.value),
        );
        let _ = write!(
            results,
            "\n**Gap NLL − H = {:+.5} ± {:.5} nats** (paired per point: NLL_i + log p₀(x_i)), \
             of which\n\
             - t_eps smoothing (exact p_{{t_eps}} vs p₀): {:+.2e} ± {:.1e} nats;\n\
             - model (network + ODE solver): {:+.5} ± {:.5} nats.\n\n\
             The issue's bar is |gap| ≤ 0.05 nats. n = {} held-out points, t_eps = {}, solver: {} \
             ({} score+divergence evaluations per point, {:.1} s for all points).\n",
            s.gap_total.value,
            s.gap_total_se.value,
            s.gap_teps.value,
            s.gap_teps_se.value,
            s.gap_model.value,
            s.gap_model_se.value,
            l.n_points,
            fmt_f64(l.t_eps),
            l.solver.describe(),
            c.nfe,
            c.exact_wall,
        );
        results
    }

    fn hutchinson_section(&self, c: &Computed) -> String {
        let mut htable = String::from(
            "| probes K | mean (Hutchinson − exact) | ± SE | z | sd of the difference | sd of log p (Hutchinson / exact) | NFE | wall s |\n\
             |---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for h in &c.hutch {
            let _ = writeln!(
                htable,
                "| {} | {:+.2e} | {:.1e} | {:+.2} | {:.4} | {:.4} / {:.4} | {} | {:.1} |",
                h.probes,
                h.diff.mean,
                h.diff.se,
                h.diff.z(),
                h.diff_sd,
                h.sd_hutchinson,
                h.sd_exact,
                h.nfe,
                h.wall_s
            );
        }
        htable.push('\n');
        htable.push_str(&report::fill(
            HUTCHINSON,
            &[("mh", self.likelihood.hutchinson_points.to_string())],
        ));
        htable.push('\n');
        htable
    }

    fn ode_section(&self, s: &LikelihoodStats, c: &Computed) -> String {
        let l = &self.likelihood;
        format!(
            "On the first {} points, against the main solver ({}): the same with half the steps \
             ({}): max |Δ log p| = {:.2e} nats; reference {} ({} evaluations): \
             max |Δ log p| = {:.2e}, mean Δ = {:+.2e} nats. The solver error is \
             far below the 0.05-nat bar when these are.\n",
            l.check_points,
            l.solver.describe(),
            l.solver.coarser().describe(),
            s.ode.coarse_max_abs.value,
            l.check_solver.describe(),
            c.ode.reference_nfe,
            s.ode.reference_max_abs.value,
            s.ode.reference_mean.value,
        )
    }

    fn scan_section(&self, s: &LikelihoodStats, c: &Computed) -> String {
        let l = &self.likelihood;
        let mut scan_table = format!(
            "On the first {} points, the model's likelihood of p^θ_t started at larger t against the exact \
             cross-entropy E[−log p_t(x_i)] (quadrature), x_i drawn from p₀ (so these are cross-entropies \
             of p₀ under p_t, not entropies of p_t):\n\n\
             | t | σ(t) | exact E[−log p_t] | model gap (NLL − exact) | ± SE |\n|---:|---:|---:|---:|---:|\n\
             | {} (main) | {:.2e} | {:.4} | {:+.4} | {:.4} |\n",
            l.check_points,
            fmt_f64(l.t_eps),
            c.sde.marginal_std(l.t_eps),
            s.entropy_mc.value + s.gap_teps.value,
            s.gap_model.value,
            s.gap_model_se.value
        );
        for r in &c.scan {
            let _ = writeln!(
                scan_table,
                "| {} | {:.2e} | {:.4} | {:+.4} | {:.4} |",
                fmt_f64(r.t),
                c.sde.marginal_std(r.t),
                r.cross_entropy,
                r.gap.mean,
                r.gap.se
            );
        }
        scan_table
    }

    /// Derived parameters echoed in metrics.json.
    fn parameters(&self, c: &Computed) -> serde_json::Value {
        let l = &self.likelihood;
        json!({
            "n_points": l.n_points,
            "t_eps": l.t_eps,
            "sigma_t_eps": c.sde.marginal_std(l.t_eps),
            "solver": l.solver.describe(),
            "nfe": c.nfe,
            "likelihood_wall_time_s": c.exact_wall,
            "train_steps_per_s": c.trained.steps_per_sec,
            "resumed_from": c.trained.resumed_from,
            "hutchinson": c.hutch.iter().map(|h| json!({
                "probes": h.probes, "nfe": h.nfe, "wall_time_s": h.wall_s,
                "diff_mean": h.diff.mean, "diff_se": h.diff.se, "diff_sd": h.diff_sd,
            })).collect::<Vec<_>>(),
            "ode_reference_nfe": c.ode.reference_nfe,
            "ode_coarse_nfe": c.ode.coarse_nfe,
        })
    }
}

/// Per-point model NLL against the exact −log p₀ (with the diagonal), and both against the
/// radius (with the exact entropy level), for the first `m` points.
fn nll_figure(
    out: &crate::output::OutputDir,
    x: &[f64],
    (nll, exact): (&[f64], &[f64]),
    m: usize,
    h: f64,
) -> Result<Figure> {
    let m = m.min(nll.len());
    let radius: Vec<f64> = x[..2 * m]
        .chunks_exact(2)
        .map(|p| p[0].hypot(p[1]))
        .collect();
    let panels = nll_panels(&radius, exact, nll, h);
    figures::draw_row(&out.file("nll.png"), &panels, (640, 560))?;
    Ok(Figure {
        file: "nll.png".into(),
        caption: format!(
            "Left: per-point negative log-likelihood of the model (probability-flow ODE, exact divergence) \
             against ring2d's exact −log p₀ for {m} held-out points; on the diagonal the model is exact. \
             Right: both against the radius (grey: exact, orange: model), with the exact entropy H (red): \
             the NLL is lowest on the ring's crest and grows quadratically into its tails."
        ),
    })
}

/// The statistics struct of a run from its parts: the exact entropy, the Monte Carlo entropy of
/// the held-out points, the likelihood gaps, the main solve's NFE, the ODE check, the `t_eps`
/// scan and the Hutchinson comparisons.
fn likelihood_stats(
    h_exact: f64,
    h_mc: MeanSe,
    gaps: &LikelihoodGaps,
    nfe: usize,
    ode: &SolverCheck,
    scan: &[ScanRow],
    hutch: &[HutchinsonComparison],
) -> LikelihoodStats {
    LikelihoodStats {
        entropy_exact: h_exact.into(),
        entropy_mc: h_mc.mean.into(),
        entropy_mc_se: h_mc.se.into(),
        entropy_mc_z: ((h_mc.mean - h_exact) / h_mc.se).into(),
        nll_nats: gaps.nll.mean.into(),
        nll_se: gaps.nll.se.into(),
        nll_bits_per_dim: (gaps.nll.mean / (2.0 * std::f64::consts::LN_2)).into(),
        gap_total: gaps.total.mean.into(),
        gap_total_se: gaps.total.se.into(),
        gap_teps: gaps.teps.mean.into(),
        gap_teps_se: gaps.teps.se.into(),
        gap_model: gaps.model.mean.into(),
        gap_model_se: gaps.model.se.into(),
        nfe: (nfe as f64).into(),
        ode: OdeStats {
            coarse_max_abs: ode.coarse_max_abs.into(),
            reference_max_abs: ode.reference_max_abs.into(),
            reference_mean: ode.reference_mean.into(),
        },
        scan: (scan.iter().enumerate())
            .map(|(i, s)| {
                (
                    scan_key(i),
                    ScanStats {
                        gap_model: s.gap.mean.into(),
                    },
                )
            })
            .collect(),
        hutchinson: (hutch.iter())
            .map(|h| {
                let s = HutchinsonStats {
                    diff_mean: h.diff.mean.into(),
                    diff_se: h.diff.se.into(),
                    diff_z: h.diff.z().into(),
                    diff_sd: h.diff_sd.into(),
                };
                (hutch_key(h.probes), s)
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_parse_and_validate() {
        for name in ["ring2d-likelihood", "ring2d-likelihood-ci"] {
            let path = crate::harness::workspace_root()
                .join("experiments")
                .join(format!("{name}.toml"));
            let m = manifest::read(&path, name).unwrap();
            let parsed: Ring2dLikelihoodManifest = manifest::parse_as(&m).unwrap();
            parsed.check().unwrap();
        }
    }

    #[test]
    fn bad_input_names_the_field() {
        let path = crate::harness::workspace_root().join("experiments/ring2d-likelihood-ci.toml");
        let m = manifest::read(&path, "ci").unwrap();
        let mut parsed: Ring2dLikelihoodManifest = manifest::parse_as(&m).unwrap();
        parsed.likelihood.t_eps = 2.0;
        parsed.likelihood.hutchinson_probes = vec![0];
        let err = format!("{:#}", parsed.check().unwrap_err());
        assert!(err.contains("likelihood.t_eps"), "{err}");
        assert!(err.contains("likelihood.hutchinson_probes[0]"), "{err}");
    }
}
