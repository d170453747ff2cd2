//! Kind `ring2d-ddpm`: the discrete DDPM chain of notes 003/004 on ring2d (issue 5, item 1).
//!
//! Train a noise-predicting network with Ho et al.'s ε-loss
//! `E_{i, x₀, ε} ‖ε − ε_θ(√ᾱ_i x₀ + √(1 − ᾱ_i) ε, i/N)‖²`, `i ~ U{1..N}` (the trainer's
//! `time_sampling = { kind = "discrete", levels = N }` with the chain's exact kernel
//! [`DdpmKernel`]), then sample the **same network** two ways:
//!
//! 1. DDPM ancestral sampling through the chain (`sample_ddpm`, N network evaluations);
//! 2. Euler–Maruyama on the reverse VP SDE the chain discretises (`DdpmSchedule::to_vp_sde`:
//!    `β_min = N β_start`, `β_max = N β_end`, `T = 1`), noise converted to score with the chain's
//!    `σ(t) = √(1 − ᾱ(t))` (the quantity the network was trained against).
//!
//! Both are KS-tested against ring2d's exact radial and angular laws.
//!
//! Seeds (by name from `experiment.seed`): `network_init`, `training`, `sampling_ddpm`,
//! `sampling_vp`.

use std::fmt::Write as _;

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use smoluchowski::core::{MemoryBudget, MemoryEstimate};
use smoluchowski::datasets::Ring2d;
use smoluchowski::losses::{DdpmKernel, TimeSampling, Weighting};
use smoluchowski::metrics::{angles, evaluate_planar, radii};
use smoluchowski::nets::{NetOutput, NetScore, ScoreNetConfig};
use smoluchowski::samplers::{
    sample_ddpm, sample_with_progress, DdpmSchedule, DdpmVariance, Method, SamplerConfig,
};
use smoluchowski::sde::{ddpm_vp_kernel_gap, ForwardSde, VpSde};

use super::ring2d::{
    check_model, check_planar_memory, check_ring, derived_seed, final_loss, notes_layout_panels,
    run_sampler, save_model_and_write, train_score_net, DatasetTable, TrainThroughput, Trained,
    TrainingTable,
};
use crate::figures::{self, palette, Line, Panel};
use crate::harness::{Experiment, Figure, KindEntry, RunContext};
use crate::manifest::{self, ExperimentHeader, ManifestText};
use crate::output::{write_npy, write_text, OutputDir};
use crate::report;
use crate::stats::{Ks, Rendered, TypedExperiment, Value};
use crate::validate::Checker;

/// Registration of this kind.
pub const ENTRY: KindEntry = KindEntry {
    kind: "ring2d-ddpm",
    summary: "discrete DDPM on ring2d: ε-loss training on the chain's levels, ancestral sampling vs the matching VP reverse SDE, KS against the exact marginals",
    load,
};

/// Bytes per chain level held by the schedule, its kernel and the sampler (β, ᾱ, times, …).
const BYTES_PER_LEVEL: u128 = 64;

/// `[ddpm]`: the chain and the variance of its ancestral step.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DdpmTable {
    /// The β schedule (`kind = { linear = { … } }`, `steps = N`); validated on parse.
    pub schedule: DdpmSchedule,
    /// `beta` or `posterior`.
    pub variance: DdpmVariance,
}

/// `[sampling]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingTable {
    /// Samples per sampler (the KS `n`).
    pub n_samples: usize,
    /// Euler–Maruyama steps of the VP reverse SDE.
    pub vp_steps: usize,
    /// Final time of the VP reverse SDE (Tweedie denoising applied there).
    pub vp_t_eps: f64,
}

/// The whole manifest of kind `ring2d-ddpm`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ring2dDdpmManifest {
    /// `[experiment]`.
    pub experiment: ExperimentHeader,
    /// `[dataset]`.
    pub dataset: DatasetTable,
    /// `[ddpm]`.
    pub ddpm: DdpmTable,
    /// `[network]` (must predict the noise).
    pub network: ScoreNetConfig,
    /// `[training]` (needs `time_sampling = { kind = "discrete", levels = ddpm.schedule.steps }`).
    pub training: TrainingTable,
    /// `[sampling]`.
    pub sampling: SamplingTable,
}

impl Ring2dDdpmManifest {
    fn check(&self) -> Result<()> {
        let mut c = Checker::new();
        self.experiment.check(&mut c);
        check_ring(&mut c, self.dataset.scale);
        let big_n = self.ddpm.schedule.steps();
        if self.ddpm.schedule.to_vp_sde().is_err() {
            c.fail("ddpm.schedule.kind must be linear (the VP comparison needs a linear-β SDE)");
        }
        let levels = MemoryEstimate::linear("ddpm.schedule.steps", big_n, BYTES_PER_LEVEL, 0);
        if MemoryBudget::of_this_machine().check(&levels).is_ok() {
            let last = self.ddpm.schedule.alphas_bar()[big_n];
            c.require(
                last <= 0.01,
                "ddpm.schedule",
                "such that ᾱ_N <= 0.01 (sampling starts from N(0, I))",
                format!("ᾱ_N = {last:.4}"),
            );
        }
        c.memory("", [levels]);
        let t = &self.training.0;
        check_model(&mut c, &self.network, t, 2);
        c.require(
            self.network.output == NetOutput::Noise,
            "network.output",
            "\"noise\" (the ε-prediction loss)",
            format!("{:?}", self.network.output),
        );
        c.require(
            t.time_sampling == (TimeSampling::Discrete { levels: big_n }),
            "training.time_sampling",
            &format!("{{ kind = \"discrete\", levels = {big_n} }} (ddpm.schedule.steps)"),
            format!("{:?}", t.time_sampling),
        );
        c.require(
            t.weighting == Weighting::Sigma2,
            "training.weighting",
            "\"sigma2\" (the ε-loss)",
            format!("{:?}", t.weighting),
        );
        let s = &self.sampling;
        c.count("sampling.n_samples", s.n_samples, 1, usize::MAX);
        // Two sample sets (DDPM and VP) are held and evaluated: the second one's 16 B per row.
        let second = MemoryEstimate::linear("sampling.n_samples", s.n_samples, 16, 0);
        let (n, steps) = (
            ("sampling.n_samples", s.n_samples),
            ("sampling.vp_steps", s.vp_steps),
        );
        check_planar_memory(&mut c, n, Some(steps), None, Some(second));
        c.count("sampling.vp_steps", s.vp_steps, 1, 100_000);
        c.open_interval("sampling.vp_t_eps", s.vp_t_eps, 0.0, 1.0);
        Ok(c.finish()?)
    }
}

fn load(m: &ManifestText) -> Result<Box<dyn Experiment>> {
    let mut parsed: Ring2dDdpmManifest = manifest::parse_as(m)?;
    parsed.check().map_err(|e| e.context(m.display.clone()))?;
    parsed.training.0.seed = derived_seed(parsed.experiment.seed, "training");
    Ok(Box::new(parsed))
}

/// The statistics of a `ring2d-ddpm` run (flat keys: `ddpm_*` the chain, `vp_*` the SDE).
#[derive(Debug, Default, Serialize)]
pub struct DdpmStats {
    /// KS of the DDPM samples' radius.
    pub ddpm_radius_ks: Ks,
    /// KS of the DDPM samples' angle.
    pub ddpm_angle_ks: Ks,
    /// KS of the VP samples' radius.
    pub vp_radius_ks: Ks,
    /// KS of the VP samples' angle.
    pub vp_angle_ks: Ks,
    /// Mean radius of the DDPM samples.
    pub ddpm_mean_radius: Value,
    /// Sd of the DDPM samples' radius.
    pub ddpm_std_radius: Value,
    /// Mean radius of the VP samples.
    pub vp_mean_radius: Value,
    /// Sd of the VP samples' radius.
    pub vp_std_radius: Value,
    /// Mean batch ε-loss of the last 100 steps.
    pub final_training_loss: Value,
    /// `ᾱ_N`.
    pub alpha_bar_n: Value,
    /// `max_i |√ᾱ_i − m_VP(i/N)|` ([`ddpm_vp_kernel_gap`]).
    pub max_vp_kernel_gap: Value,
    /// Throughput.
    pub throughput: TrainThroughput,
}

/// One sampler's output.
pub struct Sampled {
    /// `n × 2` samples (float64).
    samples: Vec<f64>,
    nfe: usize,
    wall_s: f64,
}

/// What compute hands to render.
pub struct DdpmRun {
    data: Ring2d,
    trained: Trained,
    vp: VpSde,
    ddpm: Sampled,
    vp_out: Sampled,
}

/// Report prose, next to the code (`{name}` placeholders, see [`report::fill`]).
const COMPARISON: &str = include_str!("ring2d_ddpm/comparison.md");
const HOW_TO_READ: &str = include_str!("ring2d_ddpm/how_to_read.md");

impl TypedExperiment for Ring2dDdpmManifest {
    type Stats = DdpmStats;
    type Computed = DdpmRun;

    fn header(&self) -> &ExperimentHeader {
        &self.experiment
    }

    fn declared(&self) -> DdpmStats {
        DdpmStats::default()
    }

    fn compute(&self, ctx: &mut RunContext<'_>) -> Result<(DdpmStats, DdpmRun)> {
        let seed = ctx.seed;
        let data = Ring2d::new(self.dataset.scale).map_err(|e| anyhow!("dataset: {e}"))?;
        let schedule = self.ddpm.schedule;
        let ab = schedule.alphas_bar();
        let kernel = DdpmKernel::new(&ab).map_err(|e| anyhow!("ddpm.schedule: {e}"))?;
        let bad_schedule = |e| anyhow!("ddpm.schedule: {e}");
        let vp = schedule.to_vp_sde().map_err(bad_schedule)?;
        let ckpts = ctx.checkpoints.clone();
        let trained = ctx.time("train", || {
            let (name, net, t) = (&self.experiment.name, &self.network, &self.training.0);
            train_score_net(name, net, t, &kernel, &data, seed, &ckpts)
        })?;
        let ddpm = ctx.time("sample_ddpm", || self.sample_ddpm(&trained, &kernel, seed))?;
        let vp_out = ctx.time("sample_vp", || self.sample_vp(&trained, &kernel, &vp, seed))?;
        let (d, v) = ctx.time("statistics", || {
            let eval = |x: &[f64]| {
                evaluate_planar(x, |r| data.radial_cdf(r), |t| data.angular_cdf(t), None)
            };
            (eval(&ddpm.samples), eval(&vp_out.samples))
        });
        let stats = DdpmStats {
            ddpm_radius_ks: d.radius_ks.into(),
            ddpm_angle_ks: d.angle_ks.into(),
            vp_radius_ks: v.radius_ks.into(),
            vp_angle_ks: v.angle_ks.into(),
            ddpm_mean_radius: d.mean_radius.into(),
            ddpm_std_radius: d.std_radius.into(),
            vp_mean_radius: v.mean_radius.into(),
            vp_std_radius: v.std_radius.into(),
            final_training_loss: final_loss(&trained.curve).0.into(),
            alpha_bar_n: ab[schedule.steps()].into(),
            max_vp_kernel_gap: ddpm_vp_kernel_gap(&schedule).map_err(bad_schedule)?.into(),
            throughput: TrainThroughput {
                train_steps_per_s: trained.steps_per_sec.into(),
            },
        };
        let run = DdpmRun {
            data,
            trained,
            vp,
            ddpm,
            vp_out,
        };
        Ok((stats, run))
    }

    fn render(
        &self,
        stats: &DdpmStats,
        run: &DdpmRun,
        ctx: &mut RunContext<'_>,
    ) -> Result<Rendered> {
        let n = self.sampling.n_samples;
        save_model_and_write(ctx, &run.trained, |out| {
            write_npy(&out.file("samples_ddpm.npy"), &[n, 2], &run.ddpm.samples)?;
            write_npy(&out.file("samples_vp.npy"), &[n, 2], &run.vp_out.samples)?;
            let mut csv = String::from("step,loss\n");
            for r in &run.trained.curve {
                let _ = writeln!(csv, "{},{}", r.step, r.loss);
            }
            write_text(&out.file("loss_curve.csv"), &csv)
        })?;
        let out = ctx.out;
        let figures = ctx.time("figures", || -> Result<Vec<Figure>> {
            Ok(vec![
                self.samples_figure(out, run, true)?,
                self.samples_figure(out, run, false)?,
                self.alpha_bar_figure(out, run, stats.max_vp_kernel_gap.value)?,
            ])
        })?;
        Ok(Rendered {
            parameters: self.parameters(run),
            figures,
            files: vec![
                (
                    "samples_ddpm.npy".into(),
                    format!("DDPM samples, float64 ({n}, 2)"),
                ),
                (
                    "samples_vp.npy".into(),
                    format!("VP reverse-SDE samples, float64 ({n}, 2)"),
                ),
                (
                    "model.safetensors".into(),
                    "the trained ε-network (config in model.json)".into(),
                ),
                ("loss_curve.csv".into(), "step, batch ε-loss".into()),
            ],
            sections: vec![
                (
                    "DDPM chain vs VP reverse SDE".into(),
                    self.comparison(stats, run),
                ),
                (
                    "How to read this report".into(),
                    report::fill(HOW_TO_READ, &[]),
                ),
            ],
        })
    }
}

/// The asymptotic KS critical value at `α = 10⁻³`, `1.9495/√n` (as quoted in the report; see
/// `metrics::ks_critical_asymptotic`).
fn ks_critical(n: usize) -> f64 {
    1.9495 / (n as f64).sqrt()
}

impl Ring2dDdpmManifest {
    /// DDPM ancestral sampling through the chain (seed `sampling_ddpm`).
    fn sample_ddpm(&self, trained: &Trained, kernel: &DdpmKernel, seed: u64) -> Result<Sampled> {
        let (ddpm, n) = (&self.ddpm, self.sampling.n_samples);
        let mut score = NetScore::new(&trained.net, kernel);
        let seed = derived_seed(seed, "sampling_ddpm");
        let (out, samples, wall_s) = run_sampler("DDPM sampling", ddpm.schedule.steps(), |_| {
            sample_ddpm(&ddpm.schedule, ddpm.variance, &mut score, n, seed, None)
        })?;
        let nfe = out.nfe;
        Ok(Sampled {
            samples,
            nfe,
            wall_s,
        })
    }

    /// The sampler config of the VP reverse SDE (Euler–Maruyama, Tweedie at `vp_t_eps`).
    fn vp_config(&self) -> SamplerConfig {
        let s = &self.sampling;
        SamplerConfig::new(Method::EulerMaruyama, s.vp_steps, s.vp_t_eps).with_final_denoise(true)
    }

    /// Euler–Maruyama on the VP reverse SDE of the same network (seed `sampling_vp`).
    fn sample_vp(
        &self,
        trained: &Trained,
        kernel: &DdpmKernel,
        vp: &VpSde,
        seed: u64,
    ) -> Result<Sampled> {
        let (cfg, n) = (self.vp_config(), self.sampling.n_samples);
        let mut score = NetScore::new(&trained.net, kernel);
        let seed = derived_seed(seed, "sampling_vp");
        let (out, samples, wall_s) = run_sampler("VP reverse SDE", cfg.steps, |p| {
            sample_with_progress(vp, &mut score, &cfg, n, seed, None, p)
        })?;
        let nfe = out.nfe;
        Ok(Sampled {
            samples,
            nfe,
            wall_s,
        })
    }

    fn parameters(&self, run: &DdpmRun) -> serde_json::Value {
        let (schedule, n) = (&self.ddpm.schedule, self.sampling.n_samples);
        json!({
            "levels": schedule.steps(),
            "alpha_bar_n": schedule.alphas_bar()[schedule.steps()],
            "vp_beta_min": run.vp.beta_min(),
            "vp_beta_max": run.vp.beta_max(),
            "n_samples": n,
            "ks_critical_value_alpha_1e-3": ks_critical(n),
            "ddpm_nfe": run.ddpm.nfe,
            "vp_nfe": run.vp_out.nfe,
            "ddpm_wall_time_s": run.ddpm.wall_s,
            "vp_wall_time_s": run.vp_out.wall_s,
            "resumed_from_step": run.trained.resumed_from,
            "training_seed": self.training.0.seed,
        })
    }

    fn comparison(&self, stats: &DdpmStats, run: &DdpmRun) -> String {
        let n = self.sampling.n_samples;
        let d = |k: &Ks| format!("{:.4}", k.statistic);
        report::fill(
            COMPARISON,
            &[
                ("variance", format!("{:?}", self.ddpm.variance)),
                ("ddpm_nfe", run.ddpm.nfe.to_string()),
                ("ddpm_r", d(&stats.ddpm_radius_ks)),
                ("ddpm_a", d(&stats.ddpm_angle_ks)),
                ("vp_nfe", run.vp_out.nfe.to_string()),
                ("vp_r", d(&stats.vp_radius_ks)),
                ("vp_a", d(&stats.vp_angle_ks)),
                ("crit", format!("{:.4}", ks_critical(n))),
                ("n", n.to_string()),
                ("levels", self.ddpm.schedule.steps().to_string()),
            ],
        )
    }

    /// The notes' layout of the DDPM (`ddpm`) or the VP reverse-SDE samples.
    fn samples_figure(&self, out: &OutputDir, run: &DdpmRun, ddpm: bool) -> Result<Figure> {
        let (n, big_n, cfg, vp) = (
            self.sampling.n_samples,
            self.ddpm.schedule.steps(),
            self.vp_config(),
            &run.vp,
        );
        let (file, x, title, label, caption) = if ddpm {
            let caption = format!(
                "DDPM ancestral sampling through the chain ({big_n} levels, variance {:?}): 2-D histogram, \
                 angle and radius against the exact ring2d laws.",
                self.ddpm.variance
            );
            let title = format!("DDPM ancestral, N = {big_n} (n = {n})");
            (
                "ddpm.png",
                &run.ddpm.samples,
                title,
                "DDPM samples",
                caption,
            )
        } else {
            let caption = format!(
                "The same network sampled by Euler–Maruyama on the VP SDE the chain discretises \
                 (β ∈ [{}, {}], T = 1, {} steps down to t = {}, Tweedie denoising at the end).",
                vp.beta_min(),
                vp.beta_max(),
                cfg.steps,
                cfg.t_eps
            );
            let title = format!("VP reverse SDE, {} EM steps (n = {n})", cfg.steps);
            ("vp.png", &run.vp_out.samples, title, "VP samples", caption)
        };
        let panels = notes_layout_panels(&run.data, x, &radii(x), &angles(x), title, label)?;
        figures::draw_row(&out.file(file), &panels, (600, 560))?;
        Ok(Figure {
            file: file.into(),
            caption,
        })
    }

    /// The chain's `ᾱ_i` against the VP kernel's `m(t_i)²`.
    fn alpha_bar_figure(&self, out: &OutputDir, run: &DdpmRun, gap: f64) -> Result<Figure> {
        let schedule = &self.ddpm.schedule;
        let ab = schedule.alphas_bar();
        let pts = |f: &dyn Fn(usize) -> f64| -> Vec<(f64, f64)> {
            (0..=schedule.steps())
                .map(|i| (schedule.time(i), f(i)))
                .collect()
        };
        let vp = pts(&|i| run.vp.mean_coef(schedule.time(i)).powi(2));
        let panel = Panel {
            title: "chain ᾱ_i vs the VP kernel m(t_i)²".into(),
            x_label: "t_i = i/N".into(),
            y_label: "ᾱ".into(),
            lines: vec![
                Line::solid(pts(&|i| ab[i]), palette::DATA, 3, Some("chain ᾱ_i".into())),
                Line::solid(vp, palette::EXACT, 1, Some("VP exp(−I(t_i))".into())),
            ],
            ..Default::default()
        };
        figures::draw_row(&out.file("alpha_bar.png"), &[panel], (800, 480))?;
        Ok(Figure {
            file: "alpha_bar.png".into(),
            caption: format!(
                "The chain's ᾱ_i and the VP kernel's m(t_i)² = exp(−I(t_i)) at the same times: they agree \
                 to O(1/N) (largest gap in √ᾱ: {gap:.2e})."
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(name: &str) -> Ring2dDdpmManifest {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../experiments")
            .join(format!("{name}.toml"));
        let m = manifest::read(&path, name).unwrap();
        manifest::parse_as(&m).unwrap()
    }

    #[test]
    fn declared_keys_are_the_golden_keys() {
        let m = manifest("ring2d-ddpm-ci");
        m.check().unwrap();
        let keys = crate::stats::kinds(&m.declared());
        let want = [
            "alpha_bar_n",
            "ddpm_angle_ks",
            "ddpm_mean_radius",
            "ddpm_radius_ks",
            "ddpm_std_radius",
            "final_training_loss",
            "max_vp_kernel_gap",
            "throughput.train_steps_per_s",
            "vp_angle_ks",
            "vp_mean_radius",
            "vp_radius_ks",
            "vp_std_radius",
        ];
        assert_eq!(keys.keys().collect::<Vec<_>>(), want);
    }

    #[test]
    fn report_templates_are_filled() {
        let m = manifest("ring2d-ddpm-ci");
        let stats = DdpmStats::default();
        let sampled = || Sampled {
            samples: vec![],
            nfe: 7,
            wall_s: 0.0,
        };
        let run = DdpmRun {
            data: Ring2d::new(m.dataset.scale).unwrap(),
            trained: Trained {
                net: smoluchowski::nets::ScoreNet::new(m.network.clone(), 1).unwrap(),
                curve: vec![],
                resumed_from: None,
                steps_per_sec: 0.0,
            },
            vp: m.ddpm.schedule.to_vp_sde().unwrap(),
            ddpm: sampled(),
            vp_out: sampled(),
        };
        let text = m.comparison(&stats, &run);
        assert!(
            text.contains("| 7 |") && !text.contains("{levels}"),
            "{text}"
        );
    }
}
