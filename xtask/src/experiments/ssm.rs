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

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use smoluchowski::datasets::{Dataset, GaussianMixture};
use smoluchowski::losses::{
    relative_score_error, ssm_memory_estimates, ScoreObjective, SsmConfig, SsmTrainer,
};
use smoluchowski::nets::{NetOutput, ScoreNet, ScoreNetConfig};

use super::ring2d::derived_seed;
use crate::figures::{self, palette, viridis, Cells, Line, Panel, Points};
use crate::harness::{Experiment, Figure, KindEntry, RunContext, RunResults, StatKind, Statistic};
use crate::manifest::{self, ExperimentHeader, ManifestText};
use crate::output::write_text;
use crate::progress::Progress;
use crate::seeding;
use crate::validate::Checker;

/// Registration of this kind.
pub const ENTRY: KindEntry = KindEntry {
    kind: "ssm-mixture",
    summary: "sliced score matching (finite differences) on a 2-D Gaussian mixture vs its exact score, with fixed-σ DSM for comparison",
    load,
};

/// `[mixture]`: `components` equal isotropic Gaussians of standard deviation `std` on the circle
/// of radius `radius` (`GaussianMixture::on_circle`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MixtureTable {
    /// Number of components `K ≥ 1`.
    pub components: usize,
    /// Radius of the circle of means.
    pub radius: f64,
    /// Component standard deviation `> 0`.
    pub std: f64,
}

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
    pub mixture: MixtureTable,
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
        let m = &self.mixture;
        c.count("mixture.components", m.components, 1, 64);
        c.non_negative("mixture.radius", m.radius);
        c.positive("mixture.std", m.std);
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
        c.count("evaluation.points", self.evaluation.points, 1, 10_000_000);
        c.count(
            "evaluation.quiver_grid",
            self.evaluation.quiver_grid,
            2,
            100,
        );
        c.finish()
    }

    fn mixture(&self) -> Result<GaussianMixture> {
        GaussianMixture::on_circle(
            self.mixture.components,
            self.mixture.radius,
            self.mixture.std,
        )
        .map_err(|e| anyhow!("mixture: {e}"))
    }
}

fn load(m: &ManifestText) -> Result<Box<dyn Experiment>> {
    let mut parsed: SsmManifest = manifest::parse_as(m)?;
    parsed.check().map_err(|e| e.context(m.display.clone()))?;
    parsed.ssm.0.seed = derived_seed(parsed.experiment.seed, "ssm");
    parsed.dsm.0.seed = derived_seed(parsed.experiment.seed, "dsm");
    Ok(Box::new(parsed))
}

fn stat_names() -> Vec<(&'static str, StatKind)> {
    vec![
        ("ssm_relative_error", StatKind::Value),
        ("ssm_relative_error_vs_target", StatKind::Value),
        ("dsm_relative_error", StatKind::Value),
        ("dsm_relative_error_vs_target", StatKind::Value),
        ("untrained_relative_error", StatKind::Value),
        ("ssm_final_loss", StatKind::Value),
        ("dsm_final_loss", StatKind::Value),
        ("throughput.ssm_steps_per_s", StatKind::Value),
        ("throughput.dsm_steps_per_s", StatKind::Value),
    ]
}

struct Run {
    net: ScoreNet,
    final_loss: f64,
    steps_per_sec: f64,
}

fn train(label: &str, net: ScoreNet, data: &GaussianMixture, cfg: &SsmConfig) -> Result<Run> {
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
    })
}

impl Experiment for SsmManifest {
    fn header(&self) -> &ExperimentHeader {
        &self.experiment
    }

    fn manifest_echo(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    fn statistics(&self) -> BTreeMap<String, StatKind> {
        stat_names()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    fn run(&self, ctx: &mut RunContext<'_>) -> Result<RunResults> {
        let seed = ctx.seed;
        let out = ctx.out;
        let data = self.mixture()?;
        let init = ScoreNet::new(self.network.clone(), derived_seed(seed, "network_init"))
            .map_err(|e| anyhow!("network: {e}"))?;
        let (ssm_cfg, dsm_cfg) = (&self.ssm.0, &self.dsm.0);
        let t0 = Instant::now();
        let ssm = ctx.time("train_ssm", || train("SSM", init.clone(), &data, ssm_cfg))?;
        let ssm_secs = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let dsm = ctx.time("train_dsm", || train("DSM", init.clone(), &data, dsm_cfg))?;
        let dsm_secs = t1.elapsed().as_secs_f64();

        let n = self.evaluation.points;
        let x = data.sample(&mut seeding::stream(seed, "evaluation", 0), n);
        let ssm_target = data
            .smoothed(ssm_cfg.noise_std)
            .map_err(|e| anyhow!("ssm.noise_std: {e}"))?;
        let dsm_target = data
            .smoothed(dsm_cfg.noise_std)
            .map_err(|e| anyhow!("dsm.noise_std: {e}"))?;
        let mut stats = BTreeMap::new();
        ctx.time("evaluate", || {
            let mut put = |k: &str, v: f64| {
                stats.insert(k.to_string(), Statistic::value(v));
            };
            let exact = |p: &[f64], o: &mut [f64]| data.score(p, o);
            put(
                "ssm_relative_error",
                relative_score_error(&ssm.net, ssm_cfg.time, &x, exact),
            );
            put(
                "ssm_relative_error_vs_target",
                relative_score_error(&ssm.net, ssm_cfg.time, &x, |p, o| ssm_target.score(p, o)),
            );
            put(
                "dsm_relative_error",
                relative_score_error(&dsm.net, dsm_cfg.time, &x, exact),
            );
            put(
                "dsm_relative_error_vs_target",
                relative_score_error(&dsm.net, dsm_cfg.time, &x, |p, o| dsm_target.score(p, o)),
            );
            put(
                "untrained_relative_error",
                relative_score_error(&init, ssm_cfg.time, &x, exact),
            );
            put("ssm_final_loss", ssm.final_loss);
            put("dsm_final_loss", dsm.final_loss);
            put("throughput.ssm_steps_per_s", ssm.steps_per_sec);
            put("throughput.dsm_steps_per_s", dsm.steps_per_sec);
        });
        ctx.time("save_models", || -> Result<()> {
            ssm.net
                .save(&out.file("ssm_model.safetensors"))
                .map_err(|e| anyhow!("cannot save the SSM model: {e}"))?;
            dsm.net
                .save(&out.file("dsm_model.safetensors"))
                .map_err(|e| anyhow!("cannot save the DSM model: {e}"))
        })?;
        let figs = ctx.time("figures", || self.figures(out, &data, &ssm.net, &dsm.net))?;
        let v = |k: &str| match stats.get(k) {
            Some(Statistic::Value { value }) => *value,
            _ => f64::NAN,
        };
        let table = format!(
            "| objective | relative L2 error vs ∇ log p | vs its own target | steps | wall time |\n|---|---|---|---|---|\n\
             | sliced SM (finite differences, σ = {}) | {:.4} | {:.4} | {} | {:.1} s |\n\
             | denoising SM at σ = {} | {:.4} | {:.4} | {} | {:.1} s |\n\
             | untrained network | {:.4} | | | |\n",
            ssm_cfg.noise_std,
            v("ssm_relative_error"),
            v("ssm_relative_error_vs_target"),
            ssm_cfg.steps,
            ssm_secs,
            dsm_cfg.noise_std,
            v("dsm_relative_error"),
            v("dsm_relative_error_vs_target"),
            dsm_cfg.steps,
            dsm_secs,
            v("untrained_relative_error"),
        );
        write_text(&out.file("errors.md"), &table)?;
        Ok(RunResults {
            parameters: json!({
                "evaluation_points": n,
                "mixture_components": self.mixture.components,
                "mixture_radius": self.mixture.radius,
                "mixture_std": self.mixture.std,
                "ssm_seed": ssm_cfg.seed,
                "dsm_seed": dsm_cfg.seed,
                "ssm_wall_time_s": ssm_secs,
                "dsm_wall_time_s": dsm_secs,
                "network_parameters": self.network.num_params(),
            }),
            statistics: stats,
            figures: figs,
            files: vec![
                ("ssm_model.safetensors".into(), "the SSM-trained score network (config in ssm_model.json)".into()),
                ("dsm_model.safetensors".into(), "the DSM-trained score network (config in dsm_model.json)".into()),
                ("errors.md".into(), "the error table of this report".into()),
            ],
            sections: vec![
                ("Learned score vs exact score".into(), table),
                (
                    "How to read this report".into(),
                    format!(
                        "Sliced score matching needs only samples of the data: no noising kernel, no σ. Its loss \
                         E_v[vᵀ∇s v + ½(vᵀs)²] equals ½E‖s − ∇ log p‖² up to a constant; dfdx has no second \
                         derivatives, so vᵀ∇s v is the central difference vᵀ(s(x+hv) − s(x−hv))/(2h). \
                         `ssm_relative_error` = √(Σ‖s_θ − ∇log p‖² / Σ‖∇log p‖²) over {n} fresh data points (the \
                         mixture's score is exact and closed-form). Denoising score matching at a fixed σ learns the \
                         score of the smoothed law p ∗ N(0, σ²) instead (`dsm_relative_error_vs_target`), and its \
                         regression target ε/σ has variance 1/σ², so at small σ it is noisy; at large σ it is biased. \
                         `untrained_relative_error` is the starting point."
                    ),
                ),
            ],
        })
    }
}

impl SsmManifest {
    fn figures(
        &self,
        out: &crate::output::OutputDir,
        data: &GaussianMixture,
        ssm: &ScoreNet,
        dsm: &ScoreNet,
    ) -> Result<Vec<Figure>> {
        let half = self.mixture.radius + 4.0 * self.mixture.std + 0.3;
        // Background: √density heat map.
        let bins = 120;
        let w = 2.0 * half / bins as f64;
        let mut dens = Vec::with_capacity(bins * bins);
        for i in 0..bins {
            for j in 0..bins {
                let p = [-half + (i as f64 + 0.5) * w, -half + (j as f64 + 0.5) * w];
                dens.push(data.log_density(&p).exp());
            }
        }
        let peak = dens.iter().cloned().fold(0.0, f64::max).max(1e-300);
        let mut rects = Vec::with_capacity(bins * bins);
        for i in 0..bins {
            for j in 0..bins {
                let (x0, y0) = (-half + i as f64 * w, -half + j as f64 * w);
                let c = viridis(0.15 + 0.85 * (dens[i * bins + j] / peak).sqrt());
                rects.push((x0, y0, x0 + w, y0 + w, c));
            }
        }
        // Quiver: arrows of length ∝ tanh(|s|/s_ref) on a grid.
        let g = self.evaluation.quiver_grid;
        let cell = 2.0 * half / g as f64;
        let grid: Vec<f64> = (0..g * g)
            .flat_map(|k| {
                let (i, j) = (k / g, k % g);
                [
                    -half + (i as f64 + 0.5) * cell,
                    -half + (j as f64 + 0.5) * cell,
                ]
            })
            .collect();
        let mut exact = vec![0.0; grid.len()];
        data.score_rows(&grid, &mut exact);
        let gf: Vec<f32> = grid.iter().map(|&a| a as f32).collect();
        let learned = |net: &ScoreNet, t: f64| -> Vec<f64> {
            net.predict(&gf, t).iter().map(|&a| a as f64).collect()
        };
        let s_ref = 1.0 / self.mixture.std;
        let arrows = |s: &[f64], color| -> Vec<Line> {
            grid.chunks_exact(2)
                .zip(s.chunks_exact(2))
                .map(|(p, v)| {
                    let norm = v[0].hypot(v[1]).max(1e-12);
                    let len = 0.9 * cell * (norm / s_ref).tanh();
                    Line {
                        points: vec![
                            (p[0], p[1]),
                            (p[0] + len * v[0] / norm, p[1] + len * v[1] / norm),
                        ],
                        color,
                        alpha: 1.0,
                        width: 2,
                        label: None,
                    }
                })
                .collect()
        };
        let bases = Points {
            points: grid.chunks_exact(2).map(|p| (p[0], p[1])).collect(),
            color: palette::EXACT,
            alpha: 1.0,
            radius: 1,
        };
        let panel = |title: String, s: &[f64], color| Panel {
            title,
            x_label: "x".into(),
            y_label: "y".into(),
            cells: Cells {
                rects: rects.clone(),
            },
            lines: arrows(s, color),
            points: vec![bases.clone()],
            x_range: Some((-half, half)),
            y_range: Some((-half, half)),
            ..Default::default()
        };
        let white = plotters::style::RGBColor(255, 255, 255);
        let panels = [
            panel("exact ∇ log p".into(), &exact, white),
            panel(
                format!("sliced SM (σ = {})", self.ssm.0.noise_std),
                &learned(ssm, self.ssm.0.time),
                palette::DATA2,
            ),
            panel(
                format!("denoising SM (σ = {})", self.dsm.0.noise_std),
                &learned(dsm, self.dsm.0.time),
                palette::MARK,
            ),
        ];
        figures::draw_row(&out.file("score_quiver.png"), &panels, (560, 560))?;

        // Error heat maps |s_θ − ∇ log p| / (|∇ log p| + 1/std) on a fine grid.
        let fb = 80;
        let fw = 2.0 * half / fb as f64;
        let fine: Vec<f64> = (0..fb * fb)
            .flat_map(|k| {
                let (i, j) = (k / fb, k % fb);
                [-half + (i as f64 + 0.5) * fw, -half + (j as f64 + 0.5) * fw]
            })
            .collect();
        let mut ex = vec![0.0; fine.len()];
        data.score_rows(&fine, &mut ex);
        let ff: Vec<f32> = fine.iter().map(|&a| a as f32).collect();
        let err_panel = |title: String, net: &ScoreNet, t: f64| {
            let got = net.predict(&ff, t);
            let mut rects = Vec::with_capacity(fb * fb);
            for k in 0..fb * fb {
                let (e0, e1) = (
                    got[2 * k] as f64 - ex[2 * k],
                    got[2 * k + 1] as f64 - ex[2 * k + 1],
                );
                let rel = e0.hypot(e1) / (ex[2 * k].hypot(ex[2 * k + 1]) + s_ref);
                let (x0, y0) = (fine[2 * k] - 0.5 * fw, fine[2 * k + 1] - 0.5 * fw);
                rects.push((x0, y0, x0 + fw, y0 + fw, viridis(rel.min(1.0))));
            }
            Panel {
                title,
                x_label: "x".into(),
                y_label: "y".into(),
                cells: Cells { rects },
                x_range: Some((-half, half)),
                y_range: Some((-half, half)),
                ..Default::default()
            }
        };
        let errs = [
            err_panel(
                "sliced SM: |s_θ − ∇log p| / (|∇log p| + 1/std)".into(),
                ssm,
                self.ssm.0.time,
            ),
            err_panel(
                "denoising SM: |s_θ − ∇log p| / (|∇log p| + 1/std)".into(),
                dsm,
                self.dsm.0.time,
            ),
        ];
        figures::draw_row(&out.file("score_error.png"), &errs, (560, 560))?;
        Ok(vec![
            Figure {
                file: "score_quiver.png".into(),
                caption: format!(
                    "Score fields over the mixture's √density (bright = dense): exact ∇ log p (white), learned by \
                     sliced score matching (orange) and by denoising score matching at σ = {} (red). Arrow length \
                     ∝ tanh(|s| · std); a dot marks each arrow's base.",
                    self.dsm.0.noise_std
                ),
            },
            Figure {
                file: "score_error.png".into(),
                caption: "Local error of each learned score, |s_θ − ∇ log p| / (|∇ log p| + 1/std), clipped at 1 \
                          (dark = accurate). Far from the data both networks extrapolate; the relative errors of \
                          the table are weighted by the data."
                    .into(),
            },
        ])
    }
}
