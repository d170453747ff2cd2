//! Kind `ring2d-inpaint`: inpainting (imputation of a known coordinate) on ring2d against its
//! exact conditional law (issue 12, item 4).
//!
//! The x-coordinate is given (`x = a`), the sampler completes y. ring2d's conditional law
//! `p(y | x = a) ∝ p(a, y)` is exact up to one 1-D normalising quadrature
//! ([`Ring2dConditional`]). For every `a` (`inpainting.condition_x`, the headline, and
//! `inpainting.also_x`), each method — replacement (Song et al. 2021) and RePaint (Lugmayr et al.
//! 2022, `inpainting.repaint`) — runs with the trained network and with the exact score
//! ([`Ring2dOracle`]); the KS test of the completions against `p(y | x = a)` then separates the
//! method's own bias (exact score) from the network's error. The sampler is any
//! [`SamplerConfig`]; the inpainting lives in the library's driver, so every sampler has it.
//!
//! Seeds (by name from `experiment.seed`): `network_init`, `training`, `inpainting` (one seed for
//! every run: common random numbers across methods and scores).

use std::collections::BTreeMap;

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use smoluchowski::datasets::{Ring2d, Ring2dConditional};
use smoluchowski::metrics::ks_one_sample;
use smoluchowski::nets::NetScore;
use smoluchowski::samplers::{
    inpaint::MAX_RESAMPLE_COUNT, sample_inpainted, sample_memory_estimate, InpaintMethod,
    Inpainting, SamplerConfig,
};
use smoluchowski::sde::{Ring2dOracle, Score};

use crate::figures::{self, step_histograms_vs_exact, Exact};
use crate::harness::{Experiment, Figure, KindEntry, RunContext};
use crate::manifest::{self, ExperimentHeader, ManifestText};
use crate::output::write_npy;
use crate::report;
use crate::seeding::derived_seed;
use crate::stats::{Ks, Rendered, TypedExperiment, Value};
use crate::tables::{check_model, DatasetTable, SdeTable, TrainingTable};
use crate::training::train_score_net;
use crate::validate::Checker;

/// Registration of this kind.
pub const ENTRY: KindEntry = KindEntry {
    kind: "ring2d-inpaint",
    summary: "inpainting on ring2d (x given, y completed) by replacement and RePaint, with the network and the exact score, KS vs the exact conditional p(y | x = a)",
    load,
};

const HOW_TO_READ: &str = include_str!("ring2d_inpaint/how_to_read.md");

/// `[oracle]`: quadrature resolution of the exact score.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OracleTable {
    /// Radial midpoint nodes (≥ 4).
    pub n_radial: usize,
    /// Angular Gauss–Legendre budget (≥ 6).
    pub n_angular: usize,
}

/// `[sampling]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingTable {
    /// The sampler of every run.
    pub sampler: SamplerConfig,
    /// Completions per (a, method, score).
    pub n_samples: usize,
}

/// `[inpainting]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InpaintingTable {
    /// The headline conditioning value `a` (its RePaint network completions are `samples.npy`).
    pub condition_x: f64,
    /// Further values of `a` (e.g. the centre and near the ring's edge).
    #[serde(default)]
    pub also_x: Vec<f64>,
    /// RePaint's `resample_count` and `jump_length`.
    pub repaint: RepaintTable,
    /// RePaint's bias floor: the exact-score RePaint at `condition_x` for each of these
    /// `resample_count`s (`jump_length` as in `repaint`); `1` is replacement.
    #[serde(default)]
    pub floor_resample_counts: Vec<usize>,
}

/// RePaint's settings.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RepaintTable {
    /// Passes over each block.
    pub resample_count: usize,
    /// Steps per block.
    pub jump_length: usize,
}

/// `[evaluation]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationTable {
    /// Nodes of the normalising quadrature of `p(y | x = a)`.
    pub quadrature_nodes: usize,
}

/// The whole manifest of kind `ring2d-inpaint`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ring2dInpaintManifest {
    /// `[experiment]`.
    pub experiment: ExperimentHeader,
    /// `[dataset]`.
    pub dataset: DatasetTable,
    /// `[sde]`.
    pub sde: SdeTable,
    /// `[network]`.
    pub network: smoluchowski::nets::ScoreNetConfig,
    /// `[training]`.
    pub training: TrainingTable,
    /// `[oracle]`.
    pub oracle: OracleTable,
    /// `[sampling]`.
    pub sampling: SamplingTable,
    /// `[inpainting]`.
    pub inpainting: InpaintingTable,
    /// `[evaluation]`.
    pub evaluation: EvaluationTable,
}

/// Most conditioning values.
const MAX_X: usize = 8;

impl Ring2dInpaintManifest {
    fn check(&self) -> Result<()> {
        let mut c = Checker::new();
        self.experiment.check(&mut c);
        c.require(
            self.dataset.scale >= 2.0 && self.dataset.scale.is_finite(),
            "dataset.scale",
            "finite and ≥ 2 (the exact score's quadrature)",
            self.dataset.scale,
        );
        self.sde.check(&mut c, "sde", false);
        check_model(&mut c, &self.network, &self.training.0, 2);
        c.count("oracle.n_radial", self.oracle.n_radial, 4, 1000);
        c.count("oracle.n_angular", self.oracle.n_angular, 6, 1000);
        if let Ok(sde) = self.sde.build() {
            if let Err(e) = self.sampling.sampler.time_grid(&sde) {
                c.fail(e.under("sampling.sampler").to_string());
            }
        }
        let n = self.sampling.n_samples;
        c.count("sampling.n_samples", n, 2, usize::MAX);
        c.memory("sampling", [sample_memory_estimate("n_samples", n, 2)]);
        let ip = &self.inpainting;
        c.count("inpainting.also_x (number of)", ip.also_x.len(), 0, MAX_X);
        let ring_max = 1.0 + 6.0 / self.dataset.scale.max(1.0).sqrt();
        for (path, a) in std::iter::once(("inpainting.condition_x".to_string(), ip.condition_x))
            .chain(
                ip.also_x
                    .iter()
                    .enumerate()
                    .map(|(i, &a)| (format!("inpainting.also_x[{i}]"), a)),
            )
        {
            c.require(
                a.is_finite() && a.abs() < ring_max,
                &path,
                &format!(
                    "finite with |a| < 1 + 6/√scale = {ring_max:.3} (inside the ring's support)"
                ),
                a,
            );
        }
        if let Err(e) = self.repaint().validate("inpainting.repaint") {
            c.fail(e.to_string());
        }
        c.count(
            "inpainting.floor_resample_counts (number of)",
            ip.floor_resample_counts.len(),
            0,
            MAX_X,
        );
        for (i, &u) in ip.floor_resample_counts.iter().enumerate() {
            let m = InpaintMethod::Repaint {
                resample_count: u,
                jump_length: ip.repaint.jump_length,
            };
            if m.validate("inpainting").is_err() {
                c.count(
                    &format!("inpainting.floor_resample_counts[{i}]"),
                    u,
                    1,
                    MAX_RESAMPLE_COUNT,
                );
            }
        }
        c.count(
            "evaluation.quadrature_nodes",
            self.evaluation.quadrature_nodes,
            1001,
            10_000_000,
        );
        Ok(c.finish()?)
    }

    fn repaint(&self) -> InpaintMethod {
        let r = self.inpainting.repaint;
        InpaintMethod::Repaint {
            resample_count: r.resample_count,
            jump_length: r.jump_length,
        }
    }

    fn xs(&self) -> Vec<f64> {
        let mut v = vec![self.inpainting.condition_x];
        v.extend_from_slice(&self.inpainting.also_x);
        v
    }
}

fn load(m: &ManifestText) -> Result<Box<dyn Experiment>> {
    let mut parsed: Ring2dInpaintManifest = manifest::parse_as(m)?;
    parsed.check().map_err(|e| e.context(m.display.clone()))?;
    parsed.training.0.seed = derived_seed(parsed.experiment.seed, "training");
    Ok(Box::new(parsed))
}

/// KS of one (method, score) pair's completions.
#[derive(Debug, Default, Serialize, Clone, Copy)]
pub struct ByScore {
    /// With the trained network.
    pub network: Ks,
    /// With the exact score.
    pub exact: Ks,
}

/// KS results at one `a`.
#[derive(Debug, Default, Serialize, Clone, Copy)]
pub struct ByMethod {
    /// Replacement.
    pub replacement: ByScore,
    /// RePaint.
    pub repaint: ByScore,
}

/// The statistics of a `ring2d-inpaint` run.
#[derive(Debug, Default, Serialize)]
pub struct InpaintStats {
    /// KS of the y-completions against `p(y | x = a)`, keyed `x_<a>`.
    pub ks: BTreeMap<String, ByMethod>,
    /// The exact-score RePaint at `condition_x` against `resample_count`, keyed `u_<U>`.
    pub repaint_floor: BTreeMap<String, Ks>,
    /// Network evaluations of one replacement run.
    pub nfe_replacement: Value,
    /// Network evaluations of one RePaint run.
    pub nfe_repaint: Value,
    /// Mean DSM loss of the last 100 training steps.
    pub final_loss: Value,
}

fn x_key(a: f64) -> String {
    format!("x_{a}")
}

/// What compute hands to render: per `a`, the y-completions of (method, score) in the order
/// replacement/network, replacement/exact, RePaint/network, RePaint/exact.
pub struct Computed {
    completions: Vec<(f64, [Vec<f64>; 4])>,
    headline: Vec<f64>,
}

fn complete<M: Score>(
    sde: &smoluchowski::sde::Sde,
    model: &mut M,
    sampler: &SamplerConfig,
    (a, n): (f64, usize),
    method: InpaintMethod,
    seed: u64,
) -> Result<(Vec<f64>, usize)> {
    let spec = Inpainting {
        known: vec![true, false],
        values: (0..n).flat_map(|_| [a as f32, 0.0]).collect(),
        method,
    };
    let out = sample_inpainted(sde, model, sampler, &spec, seed)
        .map_err(|e| anyhow!("inpainting at x = {a}: {e}"))?;
    Ok((out.samples.iter().map(|&v| f64::from(v)).collect(), out.nfe))
}

impl TypedExperiment for Ring2dInpaintManifest {
    type Stats = InpaintStats;
    type Computed = Computed;

    fn header(&self) -> &ExperimentHeader {
        &self.experiment
    }

    fn declared(&self) -> InpaintStats {
        let mut s = InpaintStats::default();
        for a in self.xs() {
            s.ks.insert(x_key(a), ByMethod::default());
        }
        for &u in &self.inpainting.floor_resample_counts {
            s.repaint_floor.insert(format!("u_{u}"), Ks::default());
        }
        s
    }

    fn compute(&self, ctx: &mut RunContext<'_>) -> Result<(InpaintStats, Computed)> {
        let seed = ctx.seed;
        let sde = self.sde.build()?;
        let ring = Ring2d::new(self.dataset.scale).map_err(|e| anyhow!("dataset: {e}"))?;
        let ckpts = ctx.checkpoints.clone();
        let (network, training, name) = (&self.network, &self.training.0, &self.experiment.name);
        let trained = ctx.time("train", || {
            train_score_net(name, network, training, &sde, &ring, seed, &ckpts)
        })?;
        let mut net_score = NetScore::new(&trained.net, &sde);
        let mut oracle = Ring2dOracle::with_resolution(
            sde,
            ring.clone(),
            self.oracle.n_radial,
            self.oracle.n_angular,
        )
        .map_err(|e| anyhow!("oracle: {e}"))?;
        let (sampler, n) = (&self.sampling.sampler, self.sampling.n_samples);
        let run_seed = derived_seed(seed, "inpainting");
        let mut stats = InpaintStats::default();
        let mut completions = Vec::new();
        let mut headline = Vec::new();
        for a in self.xs() {
            let law = Ring2dConditional::new(&ring, a, self.evaluation.quadrature_nodes)
                .ok_or_else(|| anyhow!("p(a, ·) vanishes at a = {a}"))?;
            let mut ys: [Vec<f64>; 4] = Default::default();
            let mut ks = [Ks::default(); 4];
            for (k, method) in [InpaintMethod::Replacement, self.repaint()]
                .into_iter()
                .enumerate()
            {
                let (xn, nfe) = ctx.time(&format!("x{a}_m{k}_network"), || {
                    complete(&sde, &mut net_score, sampler, (a, n), method, run_seed)
                })?;
                let (xe, _) = ctx.time(&format!("x{a}_m{k}_exact"), || {
                    complete(&sde, &mut oracle, sampler, (a, n), method, run_seed)
                })?;
                match k {
                    0 => stats.nfe_replacement = (nfe as f64).into(),
                    _ => stats.nfe_repaint = (nfe as f64).into(),
                }
                if k == 1 && a == self.inpainting.condition_x {
                    headline = xn.clone();
                }
                for (j, x) in [xn, xe].into_iter().enumerate() {
                    let y: Vec<f64> = x.iter().skip(1).step_by(2).copied().collect();
                    ks[2 * k + j] = ks_one_sample(&y, |v| law.cdf(v)).into();
                    ys[2 * k + j] = y;
                }
            }
            let by = |i: usize| ByScore {
                network: ks[i],
                exact: ks[i + 1],
            };
            stats.ks.insert(
                x_key(a),
                ByMethod {
                    replacement: by(0),
                    repaint: by(2),
                },
            );
            completions.push((a, ys));
        }
        let a = self.inpainting.condition_x;
        let law = Ring2dConditional::new(&ring, a, self.evaluation.quadrature_nodes)
            .ok_or_else(|| anyhow!("p(a, ·) vanishes at a = {a}"))?;
        for &u in &self.inpainting.floor_resample_counts {
            let method = InpaintMethod::Repaint {
                resample_count: u,
                jump_length: self.inpainting.repaint.jump_length,
            };
            let (xe, _) = ctx.time(&format!("floor_u{u}"), || {
                complete(&sde, &mut oracle, sampler, (a, n), method, run_seed)
            })?;
            let y: Vec<f64> = xe.iter().skip(1).step_by(2).copied().collect();
            stats
                .repaint_floor
                .insert(format!("u_{u}"), ks_one_sample(&y, |v| law.cdf(v)).into());
        }
        let tail = trained.curve.len().saturating_sub(100);
        let last = &trained.curve[tail..];
        stats.final_loss =
            (last.iter().map(|r| r.loss).sum::<f64>() / last.len().max(1) as f64).into();
        Ok((
            stats,
            Computed {
                completions,
                headline,
            },
        ))
    }

    fn render(
        &self,
        stats: &InpaintStats,
        c: &Computed,
        ctx: &mut RunContext<'_>,
    ) -> Result<Rendered> {
        let out = ctx.out;
        let n = self.sampling.n_samples;
        write_npy(&out.file("samples.npy"), &[n, 2], &c.headline)?;
        let ring = Ring2d::new(self.dataset.scale).map_err(|e| anyhow!("dataset: {e}"))?;
        let mut panels = Vec::new();
        for (a, ys) in &c.completions {
            let law = Ring2dConditional::new(&ring, *a, self.evaluation.quadrature_nodes)
                .ok_or_else(|| anyhow!("p(a, ·) vanishes at a = {a}"))?;
            let pdf = |y: f64| law.pdf(y);
            let labels = [
                "replacement, network",
                "replacement, exact",
                "RePaint, network",
                "RePaint, exact",
            ];
            let series: Vec<(String, &[f64])> = labels
                .iter()
                .zip(ys.iter())
                .map(|(l, y)| (l.to_string(), y.as_slice()))
                .collect();
            let exact = Exact {
                pdf: &pdf,
                points: 2000,
                label: "exact p(y | x = a)".into(),
            };
            let mut p = step_histograms_vs_exact(&series, (-1.5, 1.5), 120, &exact)?;
            p.title = format!("completions of y given x = {a}");
            p.x_label = "y".into();
            panels.push(p);
        }
        figures::draw_row(&out.file("inpainting.png"), &panels, (620, 460))?;
        let mut table = "| x = a | replacement: network D (p) | replacement: exact D (p) | RePaint: network D (p) | RePaint: exact D (p) |\n|---|---|---|---|---|\n".to_string();
        let f = |k: Ks| format!("{:.4} ({:.2e})", k.statistic, k.pvalue);
        for a in self.xs() {
            let s = &stats.ks[&x_key(a)];
            table += &format!(
                "| {a} | {} | {} | {} | {} |\n",
                f(s.replacement.network),
                f(s.replacement.exact),
                f(s.repaint.network),
                f(s.repaint.exact)
            );
        }
        if !stats.repaint_floor.is_empty() {
            table += &format!(
                "\nRePaint's bias floor (exact score, x = {}, jump length {}):\n\n| resample count U | D (p) |\n|---|---|\n",
                self.inpainting.condition_x, self.inpainting.repaint.jump_length
            );
            for &u in &self.inpainting.floor_resample_counts {
                table += &format!("| {u} | {} |\n", f(stats.repaint_floor[&format!("u_{u}")]));
            }
        }
        let r = self.inpainting.repaint;
        let how = report::fill(
            HOW_TO_READ,
            &[
                ("n", n.to_string()),
                ("u", r.resample_count.to_string()),
                ("j", r.jump_length.to_string()),
                ("nfe_r", stats.nfe_replacement.value.to_string()),
                ("nfe_rp", stats.nfe_repaint.value.to_string()),
            ],
        );
        Ok(Rendered {
            parameters: json!({
                "condition_x": self.xs(),
                "sampler_nfe_rule": self.sampling.sampler.method.nfe_rule(),
                "training_seed": self.training.0.seed,
                "ks_critical_d_alpha_1e-3": 1.949 / (n as f64).sqrt(),
            }),
            figures: vec![Figure {
                file: "inpainting.png".into(),
                caption: "Density of the completed y given x = a for each method and score, against the exact \
                          conditional p(y | x = a) (black)."
                    .into(),
            }],
            files: vec![(
                "samples.npy".into(),
                "the completed points (n, 2) of the headline setting: RePaint with the network at x = condition_x".into(),
            )],
            sections: vec![
                ("Completions against the exact conditional".into(), table),
                ("How to read this report".into(), how),
            ],
        })
    }
}
