//! Kind `ssm-mixture`: sliced score matching learns the score of a data distribution without any
//! noising kernel (issue 6, item 4).
//!
//! A score network (score output, constant time input) is trained on a 2-D Gaussian mixture by
//! finite-difference sliced score matching (`E_v[vᵀ(s(x+hv) − s(x−hv))/(2h) + ½(vᵀs̄)²]`,
//! Pang et al. 2020) and, for comparison, the same network by denoising score matching at one
//! small noise level σ (`E‖σ s(x + σε) + ε‖²`). Both are compared with the mixture's exact score
//! `∇ log p` (and DSM also with its own target, the exact score of `p ∗ N(0, σ²)`) by the relative
//! L2 error `√(Σ‖s_θ − s*‖² / Σ‖s*‖²)` on fresh data points.
//!
//! Seeds (by name from `experiment.seed`): `network_init`, `ssm`, `dsm`, `evaluation`.

use std::time::Instant;

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use smoluchowski::datasets::{draws_memory, CircleMixtureConfig, Dataset, GaussianMixture};
use smoluchowski::losses::{
    local_relative_score_error, relative_score_error, ssm_memory_estimates, ScoreObjective,
    SsmConfig, SsmTrainer,
};
use smoluchowski::nets::{NetOutput, ScoreNet, ScoreNetConfig};

use crate::figures::{self, palette, quiver, square_field_panel, square_grid, square_heatmap};
use crate::harness::{Experiment, Figure, KindEntry, RunContext};
use crate::manifest::{self, ExperimentHeader, ManifestText};
use crate::output::{write_text, OutputDir};
use crate::progress::Progress;
use crate::report;
use crate::seeding::{self, derived_seed};
use crate::stats::{Rendered, TypedExperiment, Value};
use crate::validate::Checker;

/// Registration of this kind.
pub const ENTRY: KindEntry = KindEntry {
    kind: "ssm-mixture",
    summary: "sliced score matching (finite differences) on a 2-D Gaussian mixture vs its exact score, with fixed-σ DSM for comparison",
    load,
};

/// An [`SsmConfig`] without its `seed` (derived from `experiment.seed`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "toml::Table")]
pub struct SsmTable(pub SsmConfig);

impl TryFrom<toml::Table> for SsmTable {
    type Error = String;
    fn try_from(mut t: toml::Table) -> Result<Self, String> {
        if t.contains_key("seed") {
            return Err("seed is not allowed here: it is derived from experiment.seed".into());
        }
        t.insert("seed".into(), toml::Value::Integer(0));
        toml::Value::Table(t)
            .try_into::<SsmConfig>()
            .map(SsmTable)
            .map_err(|e| e.message().trim_end().to_string())
    }
}

/// `[evaluation]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationTable {
    /// Fresh data points for the relative score errors.
    pub points: usize,
    /// Arrows per axis of the quiver figure.
    pub quiver_grid: usize,
}

/// The whole manifest of kind `ssm-mixture`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SsmManifest {
    /// `[experiment]`.
    pub experiment: ExperimentHeader,
    /// `[mixture]`.
    pub mixture: CircleMixtureConfig,
    /// `[network]` (must output the score).
    pub network: ScoreNetConfig,
    /// `[ssm]`: the sliced-score-matching run (`objective.kind = "sliced_fd"`).
    pub ssm: SsmTable,
    /// `[dsm]`: the comparison run (`objective.kind = "denoising"`).
    pub dsm: SsmTable,
    /// `[evaluation]`.
    pub evaluation: EvaluationTable,
}

impl SsmManifest {
    fn check(&self) -> Result<()> {
        let mut c = Checker::new();
        self.experiment.check(&mut c);
        self.mixture.check(&mut c, "mixture");
        if let Err(e) = self.network.validate() {
            c.fail(e.under("network").to_string());
        }
        c.require(self.network.dim == 2, "network.dim", "2", self.network.dim);
        c.require(
            self.network.output == NetOutput::Score,
            "network.output",
            "\"score\" (score matching fits the score itself)",
            format!("{:?}", self.network.output),
        );
        for (name, t, want_sliced) in [("ssm", &self.ssm.0, true), ("dsm", &self.dsm.0, false)] {
            match t.validate() {
                Err(e) => c.fail(e.under(name).to_string()),
                Ok(()) => c.memory(name, ssm_memory_estimates(t, &self.network)),
            }
            let is_sliced = matches!(t.objective, ScoreObjective::SlicedFd { .. });
            c.require(
                is_sliced == want_sliced,
                &format!("{name}.objective.kind"),
                if want_sliced {
                    "\"sliced_fd\""
                } else {
                    "\"denoising\""
                },
                format!("{:?}", t.objective),
            );
        }
        let e = &self.evaluation;
        c.count("evaluation.points", e.points, 1, usize::MAX);
        c.count("evaluation.quiver_grid", e.quiver_grid, 2, 100);
        // Points: the draw, the exact and the learned scores (2 · 8 bytes each), in f32 too.
        let points = draws_memory("points", e.points, 2 * 4);
        let grid = draws_memory("quiver_grid", e.quiver_grid * e.quiver_grid, 2 * 4);
        c.memory("evaluation", [points, grid]);
        Ok(c.finish()?)
    }
}

fn load(m: &ManifestText) -> Result<Box<dyn Experiment>> {
    let mut parsed: SsmManifest = manifest::parse_as(m)?;
    parsed.check().map_err(|e| e.context(m.display.clone()))?;
    parsed.ssm.0.seed = derived_seed(parsed.experiment.seed, "ssm");
    parsed.dsm.0.seed = derived_seed(parsed.experiment.seed, "dsm");
    Ok(Box::new(parsed))
}

/// `throughput.*` (not pinned: machine-dependent).
#[derive(Debug, Default, Serialize)]
pub struct Throughput {
    /// SSM training steps per second.
    pub ssm_steps_per_s: Value,
    /// DSM training steps per second.
    pub dsm_steps_per_s: Value,
}

/// The statistics of an `ssm-mixture` run.
#[derive(Debug, Default, Serialize)]
pub struct SsmStats {
    /// SSM network vs `∇ log p`, relative L2.
    pub ssm_relative_error: Value,
    /// SSM network vs the score of `p ∗ N(0, ssm.noise_std²)`.
    pub ssm_relative_error_vs_target: Value,
    /// DSM network vs `∇ log p`.
    pub dsm_relative_error: Value,
    /// DSM network vs the score of `p ∗ N(0, dsm.noise_std²)`.
    pub dsm_relative_error_vs_target: Value,
    /// The initial network vs `∇ log p`.
    pub untrained_relative_error: Value,
    /// Mean loss of SSM's last 100 steps.
    pub ssm_final_loss: Value,
    /// Mean loss of DSM's last 100 steps.
    pub dsm_final_loss: Value,
    /// Training speed.
    pub throughput: Throughput,
}

/// One trained network.
pub struct Run {
    net: ScoreNet,
    final_loss: f64,
    steps_per_sec: f64,
    wall_s: f64,
}

/// Both trained networks and the data law.
pub struct Trained {
    data: GaussianMixture,
    ssm: Run,
    dsm: Run,
}

/// Report prose, next to the code (`{name}` placeholders, see [`report::fill`]).
const ERRORS_TABLE: &str = include_str!("ssm/errors_table.md");
const HOW_TO_READ: &str = include_str!("ssm/how_to_read.md");

fn train(label: &str, net: ScoreNet, data: &GaussianMixture, cfg: &SsmConfig) -> Result<Run> {
    let start = Instant::now();
    let mut tr = SsmTrainer::new(net, data, cfg.clone()).map_err(|e| anyhow!("{label}: {e}"))?;
    let mut bar = Progress::new(label, cfg.steps as u64, "steps");
    let mut tail = Vec::new();
    let mut sps = 0.0;
    let window = 100.min(cfg.steps);
    tr.run(|r| {
        if r.step + window > r.total_steps {
            tail.push(r.loss);
        }
        sps = r.steps_per_sec;
        bar.update(r.step as u64, || {
            format!("loss {:.4} | {:.0} steps/s", r.loss, r.steps_per_sec)
        });
    })
    .map_err(|e| anyhow!("{label} training: {e}"))?;
    bar.finish();
    Ok(Run {
        net: tr.into_best_net(),
        final_loss: tail.iter().sum::<f64>() / tail.len().max(1) as f64,
        steps_per_sec: sps,
        wall_s: start.elapsed().as_secs_f64(),
    })
}

fn learned(net: &ScoreNet, grid: &[f64], t: f64) -> Vec<f64> {
    let gf: Vec<f32> = grid.iter().map(|&a| a as f32).collect();
    net.predict(&gf, t).iter().map(|&a| a as f64).collect()
}

impl SsmManifest {
    /// Half the side of the plotted square.
    fn half(&self) -> f64 {
        self.mixture.radius + 4.0 * self.mixture.std + 0.3
    }

    /// The relative score errors on fresh data points.
    fn evaluate(&self, t: &Trained, init: &ScoreNet, seed: u64) -> Result<SsmStats> {
        let (ssm_cfg, dsm_cfg, data) = (&self.ssm.0, &self.dsm.0, &t.data);
        let x = data.sample(
            &mut seeding::stream(seed, "evaluation", 0),
            self.evaluation.points,
        );
        let ssm_target = data
            .smoothed(ssm_cfg.noise_std)
            .map_err(|e| anyhow!("ssm.noise_std: {e}"))?;
        let dsm_target = data
            .smoothed(dsm_cfg.noise_std)
            .map_err(|e| anyhow!("dsm.noise_std: {e}"))?;
        let exact = |p: &[f64], o: &mut [f64]| data.score(p, o);
        let err = |net: &ScoreNet, time: f64, target: &GaussianMixture| -> Value {
            relative_score_error(net, time, &x, |p, o| target.score(p, o)).into()
        };
        Ok(SsmStats {
            ssm_relative_error: relative_score_error(&t.ssm.net, ssm_cfg.time, &x, exact).into(),
            ssm_relative_error_vs_target: err(&t.ssm.net, ssm_cfg.time, &ssm_target),
            dsm_relative_error: relative_score_error(&t.dsm.net, dsm_cfg.time, &x, exact).into(),
            dsm_relative_error_vs_target: err(&t.dsm.net, dsm_cfg.time, &dsm_target),
            untrained_relative_error: relative_score_error(init, ssm_cfg.time, &x, exact).into(),
            ssm_final_loss: t.ssm.final_loss.into(),
            dsm_final_loss: t.dsm.final_loss.into(),
            throughput: Throughput {
                ssm_steps_per_s: t.ssm.steps_per_sec.into(),
                dsm_steps_per_s: t.dsm.steps_per_sec.into(),
            },
        })
    }

    /// `score_quiver.png`: exact and learned score fields (arrows of length ∝ tanh(|s|·std))
    /// over the mixture's √density.
    fn quiver_figure(&self, t: &Trained, out: &OutputDir) -> Result<Figure> {
        let half = self.half();
        let fine = square_grid(half, 120);
        let dens: Vec<f64> = fine
            .chunks_exact(2)
            .map(|p| t.data.log_density(p).exp())
            .collect();
        let peak = dens.iter().cloned().fold(0.0, f64::max).max(1e-300);
        let cells = square_heatmap(half, 120, &dens, |d| 0.15 + 0.85 * (d / peak).sqrt());
        let g = self.evaluation.quiver_grid;
        let (cell, grid) = (2.0 * half / g as f64, square_grid(half, g));
        let mut exact = vec![0.0; grid.len()];
        t.data.score_rows(&grid, &mut exact);
        let s_ref = 1.0 / self.mixture.std;
        let panel = |title: String, s: &[f64], color| {
            let arrows = quiver(&grid, s, cell, s_ref, color);
            square_field_panel(title, half, cells.clone(), arrows, &grid)
        };
        let white = plotters::style::RGBColor(255, 255, 255);
        let (ssm, dsm) = (&self.ssm.0, &self.dsm.0);
        let (s_ssm, s_dsm) = (
            learned(&t.ssm.net, &grid, ssm.time),
            learned(&t.dsm.net, &grid, dsm.time),
        );
        let panels = [
            panel("exact ∇ log p".into(), &exact, white),
            panel(
                format!("sliced SM (σ = {})", ssm.noise_std),
                &s_ssm,
                palette::DATA2,
            ),
            panel(
                format!("denoising SM (σ = {})", dsm.noise_std),
                &s_dsm,
                palette::MARK,
            ),
        ];
        figures::draw_row(&out.file("score_quiver.png"), &panels, (560, 560))?;
        Ok(Figure {
            file: "score_quiver.png".into(),
            caption: format!(
                "Score fields over the mixture's √density (bright = dense): exact ∇ log p (white), learned by \
                 sliced score matching (orange) and by denoising score matching at σ = {} (red). Arrow length \
                 ∝ tanh(|s| · std); a dot marks each arrow's base.",
                dsm.noise_std
            ),
        })
    }

    /// `score_error.png`: `|s_θ − ∇ log p| / (|∇ log p| + 1/std)` on a fine grid.
    fn error_figure(&self, t: &Trained, out: &OutputDir) -> Result<Figure> {
        let (half, fb) = (self.half(), 80);
        let fine = square_grid(half, fb);
        let mut ex = vec![0.0; fine.len()];
        t.data.score_rows(&fine, &mut ex);
        let s_ref = 1.0 / self.mixture.std;
        let what = "|s_θ − ∇log p| / (|∇log p| + 1/std)";
        let errs = [
            ("sliced SM", &t.ssm.net, self.ssm.0.time),
            ("denoising SM", &t.dsm.net, self.dsm.0.time),
        ]
        .map(|(name, net, time)| {
            let rel = local_relative_score_error(net, time, &fine, &ex, s_ref);
            let cells = square_heatmap(half, fb, &rel, |r| r.min(1.0));
            square_field_panel(format!("{name}: {what}"), half, cells, vec![], &[])
        });
        figures::draw_row(&out.file("score_error.png"), &errs, (560, 560))?;
        Ok(Figure {
            file: "score_error.png".into(),
            caption: "Local error of each learned score, |s_θ − ∇ log p| / (|∇ log p| + 1/std), clipped at 1 \
                      (dark = accurate). Far from the data both networks extrapolate; the relative errors of \
                      the table are weighted by the data."
                .into(),
        })
    }

    /// The error table (report section and `errors.md`).
    fn errors_table(&self, s: &SsmStats, t: &Trained) -> String {
        let (ssm, dsm) = (&self.ssm.0, &self.dsm.0);
        let f4 = |v: Value| format!("{:.4}", v.value);
        report::fill(
            ERRORS_TABLE,
            &[
                ("ssm_sigma", ssm.noise_std.to_string()),
                ("ssm_err", f4(s.ssm_relative_error)),
                ("ssm_target", f4(s.ssm_relative_error_vs_target)),
                ("ssm_steps", ssm.steps.to_string()),
                ("ssm_wall", format!("{:.1}", t.ssm.wall_s)),
                ("dsm_sigma", dsm.noise_std.to_string()),
                ("dsm_err", f4(s.dsm_relative_error)),
                ("dsm_target", f4(s.dsm_relative_error_vs_target)),
                ("dsm_steps", dsm.steps.to_string()),
                ("dsm_wall", format!("{:.1}", t.dsm.wall_s)),
                ("untrained", f4(s.untrained_relative_error)),
            ],
        ) + "\n"
    }

    /// Derived parameters echoed in metrics.json.
    fn parameters(&self, t: &Trained) -> serde_json::Value {
        json!({
            "evaluation_points": self.evaluation.points,
            "mixture_components": self.mixture.components,
            "mixture_radius": self.mixture.radius,
            "mixture_std": self.mixture.std,
            "ssm_seed": self.ssm.0.seed,
            "dsm_seed": self.dsm.0.seed,
            "ssm_wall_time_s": t.ssm.wall_s,
            "dsm_wall_time_s": t.dsm.wall_s,
            "network_parameters": self.network.num_params(),
        })
    }
}

impl TypedExperiment for SsmManifest {
    type Stats = SsmStats;
    type Computed = Trained;

    fn header(&self) -> &ExperimentHeader {
        &self.experiment
    }

    fn declared(&self) -> SsmStats {
        SsmStats::default()
    }

    fn compute(&self, ctx: &mut RunContext<'_>) -> Result<(SsmStats, Trained)> {
        let seed = ctx.seed;
        let data = (self.mixture.build()).map_err(|e| anyhow!("mixture: {e}"))?;
        let init = ScoreNet::new(self.network.clone(), derived_seed(seed, "network_init"))
            .map_err(|e| anyhow!("network: {e}"))?;
        let (ssm_cfg, dsm_cfg) = (&self.ssm.0, &self.dsm.0);
        let ssm = ctx.time("train_ssm", || train("SSM", init.clone(), &data, ssm_cfg))?;
        let dsm = ctx.time("train_dsm", || train("DSM", init.clone(), &data, dsm_cfg))?;
        let trained = Trained { data, ssm, dsm };
        let stats = ctx.time("evaluate", || self.evaluate(&trained, &init, seed))?;
        Ok((stats, trained))
    }

    fn render(&self, stats: &SsmStats, t: &Trained, ctx: &mut RunContext<'_>) -> Result<Rendered> {
        let out = ctx.out;
        ctx.time("save_models", || -> Result<()> {
            t.ssm
                .net
                .save(&out.file("ssm_model.safetensors"))
                .map_err(|e| anyhow!("cannot save the SSM model: {e}"))?;
            t.dsm
                .net
                .save(&out.file("dsm_model.safetensors"))
                .map_err(|e| anyhow!("cannot save the DSM model: {e}"))
        })?;
        let figures = ctx.time("figures", || -> Result<Vec<Figure>> {
            Ok(vec![
                self.quiver_figure(t, out)?,
                self.error_figure(t, out)?,
            ])
        })?;
        let table = self.errors_table(stats, t);
        write_text(&out.file("errors.md"), &table)?;
        let how = report::fill(HOW_TO_READ, &[("n", self.evaluation.points.to_string())]);
        Ok(Rendered {
            parameters: self.parameters(t),
            figures,
            files: vec![
                (
                    "ssm_model.safetensors".into(),
                    "the SSM-trained score network (config in ssm_model.json)".into(),
                ),
                (
                    "dsm_model.safetensors".into(),
                    "the DSM-trained score network (config in dsm_model.json)".into(),
                ),
                ("errors.md".into(), "the error table of this report".into()),
            ],
            sections: vec![
                ("Learned score vs exact score".into(), table),
                ("How to read this report".into(), how),
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::kinds;

    #[test]
    fn declared_keys_are_the_previous_names() {
        let k = kinds(&SsmStats::default());
        let want = [
            "dsm_final_loss",
            "dsm_relative_error",
            "dsm_relative_error_vs_target",
            "ssm_final_loss",
            "ssm_relative_error",
            "ssm_relative_error_vs_target",
            "throughput.dsm_steps_per_s",
            "throughput.ssm_steps_per_s",
            "untrained_relative_error",
        ];
        assert_eq!(k.keys().map(String::as_str).collect::<Vec<_>>(), want);
    }
}
