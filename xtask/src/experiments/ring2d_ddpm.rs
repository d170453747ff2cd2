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

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use smoluchowski::datasets::Ring2d;
use smoluchowski::losses::{train_memory_estimates, DdpmKernel, TimeSampling};
use smoluchowski::metrics::{angles, ks_one_sample, radii};
use smoluchowski::nets::{NetOutput, NetScore, ScoreNetConfig};
use smoluchowski::samplers::{
    sample_ddpm, sample_with_progress, DdpmSchedule, DdpmVariance, Method, SamplerConfig,
};
use smoluchowski::sde::ForwardSde;

use super::ring2d::{
    derived_seed, notes_layout_panels, train_score_net, DatasetTable, TrainingTable,
};
use crate::figures::{self, palette, Line, Panel};
use crate::harness::{Experiment, Figure, KindEntry, RunContext, RunResults, StatKind, Statistic};
use crate::manifest::{self, ExperimentHeader, ManifestText};
use crate::output::{write_npy, write_text};
use crate::progress::Progress;
use crate::validate::Checker;

/// Registration of this kind.
pub const ENTRY: KindEntry = KindEntry {
    kind: "ring2d-ddpm",
    summary: "discrete DDPM on ring2d: ε-loss training on the chain's levels, ancestral sampling vs the matching VP reverse SDE, KS against the exact marginals",
    load,
};

const MAX_SAMPLES: usize = 10_000_000;

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
        c.positive("dataset.scale", self.dataset.scale);
        if self.dataset.scale.is_finite() && self.dataset.scale > 0.0 {
            if let Err(e) = Ring2d::new(self.dataset.scale) {
                c.fail(format!("dataset.scale: {e}"));
            }
        }
        let big_n = self.ddpm.schedule.steps();
        if self.ddpm.schedule.to_vp_sde().is_err() {
            c.fail("ddpm.schedule.kind must be linear (the VP comparison needs a linear-β SDE)");
        }
        let ab = self.ddpm.schedule.alphas_bar();
        let last = ab[big_n];
        c.require(
            last <= 0.01,
            "ddpm.schedule",
            "such that ᾱ_N <= 0.01 (sampling starts from N(0, I))",
            format!("ᾱ_N = {last:.4}"),
        );
        if let Err(e) = self.network.validate() {
            c.fail(e.under("network").to_string());
        }
        c.require(self.network.dim == 2, "network.dim", "2", self.network.dim);
        c.require(
            self.network.output == NetOutput::Noise,
            "network.output",
            "\"noise\" (the ε-prediction loss)",
            format!("{:?}", self.network.output),
        );
        let t = &self.training.0;
        match t.validate() {
            Err(e) => c.fail(e.under("training").to_string()),
            Ok(()) => c.memory("training", train_memory_estimates(t, &self.network)),
        }
        c.require(
            t.time_sampling == (TimeSampling::Discrete { levels: big_n }),
            "training.time_sampling",
            &format!("{{ kind = \"discrete\", levels = {big_n} }} (ddpm.schedule.steps)"),
            format!("{:?}", t.time_sampling),
        );
        c.require(
            t.weighting == smoluchowski::losses::Weighting::Sigma2,
            "training.weighting",
            "\"sigma2\" (the ε-loss)",
            format!("{:?}", t.weighting),
        );
        let s = &self.sampling;
        c.count("sampling.n_samples", s.n_samples, 1, MAX_SAMPLES);
        c.count("sampling.vp_steps", s.vp_steps, 1, 100_000);
        c.open_interval("sampling.vp_t_eps", s.vp_t_eps, 0.0, 1.0);
        c.finish()
    }
}

fn load(m: &ManifestText) -> Result<Box<dyn Experiment>> {
    let mut parsed: Ring2dDdpmManifest = manifest::parse_as(m)?;
    parsed.check().map_err(|e| e.context(m.display.clone()))?;
    parsed.training.0.seed = derived_seed(parsed.experiment.seed, "training");
    Ok(Box::new(parsed))
}

fn stat_names() -> Vec<(&'static str, StatKind)> {
    vec![
        ("ddpm_radius_ks", StatKind::Ks),
        ("ddpm_angle_ks", StatKind::Ks),
        ("vp_radius_ks", StatKind::Ks),
        ("vp_angle_ks", StatKind::Ks),
        ("ddpm_mean_radius", StatKind::Value),
        ("ddpm_std_radius", StatKind::Value),
        ("vp_mean_radius", StatKind::Value),
        ("vp_std_radius", StatKind::Value),
        ("final_training_loss", StatKind::Value),
        ("alpha_bar_n", StatKind::Value),
        ("max_vp_kernel_gap", StatKind::Value),
        ("throughput.train_steps_per_s", StatKind::Value),
    ]
}

fn mean_std(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let v = x.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, v.sqrt())
}

impl Experiment for Ring2dDdpmManifest {
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
        let ckpts = ctx.checkpoints.clone();
        let data = Ring2d::new(self.dataset.scale).map_err(|e| anyhow!("dataset: {e}"))?;
        let schedule = self.ddpm.schedule;
        let big_n = schedule.steps();
        let ab = schedule.alphas_bar();
        let kernel = DdpmKernel::new(&ab).map_err(|e| anyhow!("ddpm.schedule: {e}"))?;
        let vp = schedule
            .to_vp_sde()
            .map_err(|e| anyhow!("ddpm.schedule: {e}"))?;
        let n = self.sampling.n_samples;

        // ---- 1. training on the chain's levels --------------------------------------------
        let trained = ctx.time("train", || {
            train_score_net(
                &self.experiment.name,
                &self.network,
                &self.training.0,
                &kernel,
                &data,
                seed,
                &ckpts,
            )
        })?;
        let net = &trained.net;
        ctx.time("save_model", || net.save(&out.file("model.safetensors")))
            .map_err(|e| anyhow!("cannot save the model: {e}"))?;

        // ---- 2. DDPM ancestral sampling ------------------------------------------------------
        let t0 = Instant::now();
        let ddpm = ctx
            .time("sample_ddpm", || {
                let mut score = NetScore::new(net, &kernel);
                sample_ddpm(
                    &schedule,
                    self.ddpm.variance,
                    &mut score,
                    n,
                    derived_seed(seed, "sampling_ddpm"),
                    None,
                )
            })
            .map_err(|e| anyhow!("DDPM sampling: {e}"))?;
        let ddpm_secs = t0.elapsed().as_secs_f64();

        // ---- 3. the VP reverse SDE of the same network ---------------------------------------
        let cfg = SamplerConfig::new(
            Method::EulerMaruyama,
            self.sampling.vp_steps,
            self.sampling.vp_t_eps,
        )
        .with_final_denoise(true);
        let t1 = Instant::now();
        let vp_out = ctx
            .time("sample_vp", || {
                let mut score = NetScore::new(net, &kernel);
                let mut bar = Progress::new("VP reverse SDE", cfg.steps as u64, "steps");
                let r = sample_with_progress(
                    &vp,
                    &mut score,
                    &cfg,
                    n,
                    derived_seed(seed, "sampling_vp"),
                    None,
                    |i, _| bar.update(i as u64, || format!("n = {n}")),
                );
                bar.finish();
                r
            })
            .map_err(|e| anyhow!("VP sampling: {e}"))?;
        let vp_secs = t1.elapsed().as_secs_f64();

        let to64 = |v: &[f32]| -> Vec<f64> { v.iter().map(|&a| a as f64).collect() };
        let (xd, xv) = (to64(&ddpm.samples), to64(&vp_out.samples));
        for (name, x) in [("DDPM", &xd), ("VP reverse SDE", &xv)] {
            let bad = x.iter().filter(|v| !v.is_finite()).count();
            anyhow::ensure!(
                bad == 0,
                "{name} sampling produced {bad} non-finite coordinates"
            );
        }

        // ---- 4. statistics ---------------------------------------------------------------
        let mut stats = BTreeMap::new();
        let (rd, thd, rv, thv) = ctx.time("statistics", || {
            let (rd, thd, rv, thv) = (radii(&xd), angles(&xd), radii(&xv), angles(&xv));
            let mut put = |k: &str, s: Statistic| {
                stats.insert(k.to_string(), s);
            };
            put(
                "ddpm_radius_ks",
                ks_one_sample(&rd, |r| data.radial_cdf(r)).into(),
            );
            put(
                "ddpm_angle_ks",
                ks_one_sample(&thd, |t| data.angular_cdf(t)).into(),
            );
            put(
                "vp_radius_ks",
                ks_one_sample(&rv, |r| data.radial_cdf(r)).into(),
            );
            put(
                "vp_angle_ks",
                ks_one_sample(&thv, |t| data.angular_cdf(t)).into(),
            );
            let (m, s) = mean_std(&rd);
            put("ddpm_mean_radius", Statistic::value(m));
            put("ddpm_std_radius", Statistic::value(s));
            let (m, s) = mean_std(&rv);
            put("vp_mean_radius", Statistic::value(m));
            put("vp_std_radius", Statistic::value(s));
            (rd, thd, rv, thv)
        });
        let w = 100.min(trained.curve.len()).max(1);
        let final_loss = trained.curve[trained.curve.len() - w..]
            .iter()
            .map(|r| r.loss)
            .sum::<f64>()
            / w as f64;
        stats.insert("final_training_loss".into(), Statistic::value(final_loss));
        stats.insert("alpha_bar_n".into(), Statistic::value(ab[big_n]));
        // Largest |√ᾱ_i − m_VP(t_i)| over the levels: the O(1/N) gap between chain and SDE.
        let gap = (0..=big_n)
            .map(|i| (ab[i].sqrt() - vp.mean_coef(schedule.time(i))).abs())
            .fold(0.0, f64::max);
        stats.insert("max_vp_kernel_gap".into(), Statistic::value(gap));
        stats.insert(
            "throughput.train_steps_per_s".into(),
            Statistic::value(trained.steps_per_sec),
        );

        // ---- 5. files and figures -----------------------------------------------------------
        ctx.time("write", || -> Result<()> {
            write_npy(&out.file("samples_ddpm.npy"), &[n, 2], &xd)?;
            write_npy(&out.file("samples_vp.npy"), &[n, 2], &xv)?;
            let mut csv = String::from("step,loss\n");
            for r in &trained.curve {
                csv.push_str(&format!("{},{}\n", r.step, r.loss));
            }
            write_text(&out.file("loss_curve.csv"), &csv)
        })?;
        let mut figs = Vec::new();
        ctx.time("figures", || -> Result<()> {
            let [h, a, r] = notes_layout_panels(
                &data,
                &xd,
                &rd,
                &thd,
                format!("DDPM ancestral, N = {big_n} (n = {n})"),
                "DDPM samples",
            )?;
            figures::draw_row(&out.file("ddpm.png"), &[h, a, r], (600, 560))?;
            figs.push(Figure {
                file: "ddpm.png".into(),
                caption: format!(
                    "DDPM ancestral sampling through the chain ({big_n} levels, variance {:?}): 2-D histogram, \
                     angle and radius against the exact ring2d laws.",
                    self.ddpm.variance
                ),
            });
            let [h, a, r] = notes_layout_panels(
                &data,
                &xv,
                &rv,
                &thv,
                format!("VP reverse SDE, {} EM steps (n = {n})", cfg.steps),
                "VP samples",
            )?;
            figures::draw_row(&out.file("vp.png"), &[h, a, r], (600, 560))?;
            figs.push(Figure {
                file: "vp.png".into(),
                caption: format!(
                    "The same network sampled by Euler–Maruyama on the VP SDE the chain discretises \
                     (β ∈ [{}, {}], T = 1, {} steps down to t = {}, Tweedie denoising at the end).",
                    vp.beta_min(),
                    vp.beta_max(),
                    cfg.steps,
                    cfg.t_eps
                ),
            });
            let pts = |f: &dyn Fn(usize) -> f64| -> Vec<(f64, f64)> {
                (0..=big_n).map(|i| (schedule.time(i), f(i))).collect()
            };
            let panel = Panel {
                title: "chain ᾱ_i vs the VP kernel m(t_i)²".into(),
                x_label: "t_i = i/N".into(),
                y_label: "ᾱ".into(),
                lines: vec![
                    Line {
                        points: pts(&|i| ab[i]),
                        color: palette::DATA,
                        alpha: 1.0,
                        width: 3,
                        label: Some("chain ᾱ_i".into()),
                    },
                    Line {
                        points: pts(&|i| vp.mean_coef(schedule.time(i)).powi(2)),
                        color: palette::EXACT,
                        alpha: 1.0,
                        width: 1,
                        label: Some("VP exp(−I(t_i))".into()),
                    },
                ],
                ..Default::default()
            };
            figures::draw_row(&out.file("alpha_bar.png"), &[panel], (800, 480))?;
            figs.push(Figure {
                file: "alpha_bar.png".into(),
                caption: format!(
                    "The chain's ᾱ_i and the VP kernel's m(t_i)² = exp(−I(t_i)) at the same times: they agree \
                     to O(1/N) (largest gap in √ᾱ: {gap:.2e})."
                ),
            });
            Ok(())
        })?;

        let parameters = json!({
            "levels": big_n,
            "alpha_bar_n": ab[big_n],
            "vp_beta_min": vp.beta_min(),
            "vp_beta_max": vp.beta_max(),
            "n_samples": n,
            "ks_critical_value_alpha_1e-3": 1.9495 / (n as f64).sqrt(),
            "ddpm_nfe": ddpm.nfe,
            "vp_nfe": vp_out.nfe,
            "ddpm_wall_time_s": ddpm_secs,
            "vp_wall_time_s": vp_secs,
            "resumed_from_step": trained.resumed_from,
            "training_seed": self.training.0.seed,
        });
        let ks = |k: &str| match stats.get(k) {
            Some(Statistic::Ks { statistic, .. }) => *statistic,
            _ => f64::NAN,
        };
        let table = format!(
            "| sampler | NFE | KS D radius | KS D angle |\n|---|---|---|---|\n\
             | DDPM ancestral ({:?} variance) | {} | {:.4} | {:.4} |\n\
             | VP reverse SDE, Euler–Maruyama | {} | {:.4} | {:.4} |\n\n\
             Critical value at α = 10⁻³: {:.4} (n = {n}). Both samplers use the same network, trained only at \
             the chain's {big_n} levels; the VP sampler queries it between levels too (t on its own grid).",
            self.ddpm.variance,
            ddpm.nfe,
            ks("ddpm_radius_ks"),
            ks("ddpm_angle_ks"),
            vp_out.nfe,
            ks("vp_radius_ks"),
            ks("vp_angle_ks"),
            1.9495 / (n as f64).sqrt()
        );
        Ok(RunResults {
            parameters,
            statistics: stats,
            figures: figs,
            files: vec![
                ("samples_ddpm.npy".into(), format!("DDPM samples, float64 ({n}, 2)")),
                ("samples_vp.npy".into(), format!("VP reverse-SDE samples, float64 ({n}, 2)")),
                ("model.safetensors".into(), "the trained ε-network (config in model.json)".into()),
                ("loss_curve.csv".into(), "step, batch ε-loss".into()),
            ],
            sections: vec![
                ("DDPM chain vs VP reverse SDE".into(), table),
                (
                    "How to read this report".into(),
                    "The network is trained with the discrete ε-loss ‖ε − ε_θ(√ᾱ_i x₀ + √(1 − ᾱ_i) ε, i/N)‖², i uniform \
                     in 1..N (Ho et al.), then sampled by the chain itself and by the continuous VP SDE the chain \
                     converges to. `*_radius_ks` / `*_angle_ks` are one-sample KS tests against ring2d's exact radial \
                     Gamma(k, rate k) and angular laws; `max_vp_kernel_gap` is the largest |√ᾱ_i − m_VP(i/N)|, the \
                     O(1/N) difference between the two processes' kernels."
                        .into(),
                ),
            ],
        })
    }
}
