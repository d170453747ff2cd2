//! Kind `ring2d`: the project's main job. Train a score network on `ring2d` by denoising score
//! matching, sample it with a reverse-time sampler, and measure with exact statistics how close
//! the samples are to the data law.
//!
//! - Radius `r = |x|` against the exact `Gamma(k, rate k)` and angle `θ = atan2(y, x)` against the
//!   exact `p(θ) = 1/(8 max(cos²θ, sin²θ))`: one-sample Kolmogorov–Smirnov.
//! - The same marginals against a fresh draw of the data (two-sample KS), and the sliced
//!   Wasserstein-2 and energy distances between samples and data, each next to its noise floor
//!   (the same distance between two independent draws of the data of the same sizes).
//!
//! Every random stream derives from the master seed by name (`seeding::stream`): network
//! initialisation `network_init`, the trainer's seed `training`, the evaluation batch
//! `eval_loss`, the sampler `sampling`, the reference draws `reference` / `reference_floor`,
//! the sliced-Wasserstein directions `sliced_wasserstein`.

use std::time::Instant;

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use smoluchowski::core::{sum_by_path, MemoryBudget, MemoryEstimate};
use smoluchowski::datasets::{Dataset, Ring2d};
use smoluchowski::losses::{dsm_loss, LossReport, NUM_TIME_BUCKETS};
use smoluchowski::metrics::{
    angles, evaluate_planar, ks_critical_asymptotic, planar_evaluation_memory, radii,
    trailing_mean, PlanarEvaluation, ReferenceDraws,
};
use smoluchowski::nets::{NetScore, ScoreNet, ScoreNetConfig};
use smoluchowski::samplers::{
    sample_with_progress, sampling_memory, RecordSpec, SampleOutput, SamplerConfig, Trajectories,
};
use smoluchowski::sde::{ForwardSde, Sde};

use crate::figures::{self, Exact, Panel, PlanarLaw};
use crate::harness::{Experiment, Figure, KindEntry, RunContext};
use crate::manifest::{self, ExperimentHeader, ManifestText};
use crate::output::{write_npy, write_text, OutputDir};
use crate::progress::Progress;
use crate::report;
use crate::seeding;
use crate::stats::{Ks, Rendered, TypedExperiment, Value};
use crate::validate::{fmt_f64, Checker};

/// Registration of this kind.
pub const ENTRY: KindEntry = KindEntry {
    kind: "ring2d",
    summary: "trains a score network on ring2d, samples the reverse process, KS-tests the radial and angular marginals against the exact laws",
    load,
};

/// Largest evaluation-loss batch accepted (chunked, so a time bound, not a memory bound).
const MAX_EVAL_LOSS: usize = 10_000_000;
/// Largest energy-distance subsample (the cost is quadratic).
const MAX_ENERGY_SUBSAMPLE: usize = 20_000;
/// Most recorded reverse-process particles.
const MAX_RECORDED: usize = 5000;
/// Batch losses averaged into `final_training_loss` (the last this many steps).
const FINAL_LOSS_WINDOW: usize = 100;
/// The level of the KS critical values quoted in the report and the parameters.
const KS_ALPHA: f64 = 1e-3;

/// `[sampling]`: a [`SamplerConfig`] plus the sample count and the recorded particles.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "toml::Table")]
pub struct SamplingTable {
    /// The sampler.
    #[serde(flatten)]
    pub sampler: SamplerConfig,
    /// Number of samples drawn (the statistics' `n`).
    pub n_samples: usize,
    /// Particles whose reverse-process positions are recorded for the strip figure (0: none).
    pub record_particles: usize,
}

fn take<T: serde::de::DeserializeOwned>(t: &mut toml::Table, key: &str) -> Result<T, String> {
    let v = t
        .remove(key)
        .ok_or_else(|| format!("missing field `{key}` in [sampling]"))?;
    v.try_into::<T>()
        .map_err(|e| format!("sampling.{key}: {}", e.message().trim_end()))
}

impl TryFrom<toml::Table> for SamplingTable {
    type Error = String;
    fn try_from(mut t: toml::Table) -> Result<Self, String> {
        let n_samples = take(&mut t, "n_samples")?;
        let record_particles = take(&mut t, "record_particles")?;
        let sampler = toml::Value::Table(t)
            .try_into::<SamplerConfig>()
            .map_err(|e| format!("in [sampling]: {}", e.message().trim_end()))?;
        Ok(Self {
            sampler,
            n_samples,
            record_particles,
        })
    }
}

/// `[evaluation]`: sizes of the reference draws and of the distance computations.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationTable {
    /// Size of the fresh data draw for the two-sample KS tests and the distances.
    pub reference_samples: usize,
    /// Random directions of the sliced Wasserstein distance.
    pub sliced_wasserstein_projections: usize,
    /// Points per set of the (quadratic-cost) energy distance.
    pub energy_subsample: usize,
    /// Rows of the fixed evaluation batch of the DSM loss (total and per time bucket).
    pub eval_loss_samples: usize,
    /// Times of the reverse-process strip figure (each in `[sampling.t_eps, sde.t_end]`).
    pub strip_times: Vec<f64>,
}

/// The whole manifest of kind `ring2d`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ring2dManifest {
    /// `[experiment]`.
    pub experiment: ExperimentHeader,
    /// `[dataset]`.
    pub dataset: DatasetTable,
    /// `[sde]`.
    pub sde: SdeTable,
    /// `[network]`.
    pub network: ScoreNetConfig,
    /// `[training]` (its `seed` is filled in from the master seed at load time).
    pub training: TrainingTable,
    /// `[sampling]`.
    pub sampling: SamplingTable,
    /// `[evaluation]`.
    pub evaluation: EvaluationTable,
}

pub use crate::seeding::derived_seed;
pub use crate::tables::{check_model, DatasetTable, SdeKind, SdeTable, TrainingTable};
pub use crate::training::{curve_csv, train_score_net, CurveRow, Trained, ABORT_ENV};

/// `dataset.scale`: a valid ring2d scale `k > 0`.
pub fn check_ring(c: &mut Checker, scale: f64) {
    c.positive("dataset.scale", scale);
    if scale.is_finite() && scale > 0.0 {
        if let Err(e) = Ring2d::new(scale) {
            c.fail(format!("dataset.scale: {e}"));
        }
    }
}

/// Memory of drawing `(path, n)` planar samples with a sampler of `(path, steps)` and then
/// evaluating them ([`evaluate_planar`]) against `reference` draws, added up per field and
/// checked by `c` (the estimates of one field must fit together).
pub fn check_planar_memory(
    c: &mut Checker,
    (path, n): (&str, usize),
    steps: Option<(&str, usize)>,
    reference: Option<(&str, usize)>,
    extra: Option<MemoryEstimate>,
) {
    let mut v = sampling_memory(path, n, 2, steps);
    v.extend(planar_evaluation_memory(path, n, reference));
    v.extend(extra);
    c.memory("", sum_by_path(v));
}

impl Ring2dManifest {
    fn check(&self) -> Result<()> {
        let mut c = Checker::new();
        self.experiment.check(&mut c);
        check_ring(&mut c, self.dataset.scale);
        self.sde.check(&mut c, "sde", true);
        let sde = self.sde.build().ok();
        check_model(&mut c, &self.network, &self.training.0, 2);
        let (sm, e) = (&self.sampling, &self.evaluation);
        c.count("sampling.n_samples", sm.n_samples, 1, usize::MAX);
        let n_ref = ("evaluation.reference_samples", e.reference_samples);
        c.count(n_ref.0, n_ref.1, 1, usize::MAX);
        let steps = ("sampling.steps", sm.sampler.steps);
        let n = ("sampling.n_samples", sm.n_samples);
        check_planar_memory(&mut c, n, Some(steps), Some(n_ref), None);
        // The time grid is built below only when it fits.
        let grid = MemoryEstimate::linear(steps.0, steps.1, 16, 16);
        let sde = sde.filter(|_| MemoryBudget::of_this_machine().check(&grid).is_ok());
        if sm.n_samples >= 1 {
            let most = MAX_RECORDED.min(sm.n_samples);
            c.count("sampling.record_particles", sm.record_particles, 0, most);
        }
        if let Some(sde) = &sde {
            match sm.sampler.time_grid(sde) {
                Err(e) => c.fail(e.under("sampling").to_string()),
                Ok(_) => {
                    let (lo, hi) = (sm.sampler.t_eps, sde.t_end());
                    for (i, &st) in e.strip_times.iter().enumerate() {
                        c.require(
                            st.is_finite() && st >= lo && st <= hi,
                            &format!("evaluation.strip_times[{i}]"),
                            &format!("in [sampling.t_eps = {lo}, sde.t_end = {hi}]"),
                            fmt_f64(st),
                        );
                    }
                }
            }
        }
        let projections = (
            "evaluation.sliced_wasserstein_projections",
            e.sliced_wasserstein_projections,
        );
        c.count(projections.0, projections.1, 1, 100_000);
        let energy_max = MAX_ENERGY_SUBSAMPLE
            .min(sm.n_samples)
            .min(e.reference_samples)
            .max(2);
        c.count(
            "evaluation.energy_subsample",
            e.energy_subsample,
            2,
            energy_max,
        );
        c.count(
            "evaluation.eval_loss_samples",
            e.eval_loss_samples,
            1,
            MAX_EVAL_LOSS,
        );
        c.count(
            "evaluation.strip_times (length)",
            e.strip_times.len(),
            0,
            12,
        );
        if sm.record_particles == 0 && !e.strip_times.is_empty() {
            c.fail(
                "evaluation.strip_times needs sampling.record_particles >= 1 (got 0); \
                 set strip_times = [] to skip the strip",
            );
        }
        Ok(c.finish()?)
    }
}

fn load(m: &ManifestText) -> Result<Box<dyn Experiment>> {
    let mut parsed: Ring2dManifest = manifest::parse_as(m)?;
    parsed.check().map_err(|e| e.context(m.display.clone()))?;
    parsed.training.0.seed = derived_seed(parsed.experiment.seed, "training");
    Ok(Box::new(parsed))
}

/// The notes' layout for ring2d samples (row-major `n × 2`, with their radii and angles):
/// [`figures::planar_panels`] against ring2d's exact angular density `1/(8 max(cos²θ, sin²θ))`
/// and radial Gamma(k, rate k) density, on windows of ±7 radial sd.
pub fn notes_layout_panels(
    data: &Ring2d,
    samples: &[f64],
    r_s: &[f64],
    th_s: &[f64],
    hist_title: String,
    sample_label: &str,
) -> Result<[Panel; 3]> {
    let (k, sd) = (data.scale(), 1.0 / data.scale().sqrt());
    let law = PlanarLaw {
        radial: Exact {
            pdf: &|r| data.radial_pdf(r),
            points: 600,
            label: format!("exact Gamma({k}, rate {k})"),
        },
        radius_range: ((1.0 - 7.0 * sd).max(0.0), 1.0 + 7.0 * sd),
        angular: Exact {
            pdf: &|t| data.angular_pdf(t),
            points: 1200,
            label: "exact 1/(8 max(cos²θ, sin²θ))".into(),
        },
        angular_max: 0.36,
        half_width: ring_half_width(data),
    };
    let panels = figures::planar_panels(samples, (r_s, th_s), &law, hist_title, sample_label)?;
    Ok(panels)
}

/// Half-width of the 2-D histograms of ring2d samples: the ring plus 7 radial sd (at most 0.7)
/// and a margin of 0.3.
pub fn ring_half_width(data: &Ring2d) -> f64 {
    1.0 + 7.0 * (1.0 / data.scale().sqrt()).min(0.1) + 0.3
}

/// Mean batch loss of the last [`FINAL_LOSS_WINDOW`] training steps (all of them if fewer)
/// and the window actually used ([`trailing_mean`]): the `final_training_loss` of every kind
/// that trains a model.
pub fn final_loss(curve: &[CurveRow]) -> (f64, usize) {
    let losses: Vec<f64> = curve.iter().map(|r| r.loss).collect();
    trailing_mean(&losses, FINAL_LOSS_WINDOW)
}

/// `f32` samples as `f64`, refusing non-finite coordinates (a diverged network or sampler).
pub fn finite_f64(what: &str, x: &[f32]) -> Result<Vec<f64>> {
    let x: Vec<f64> = x.iter().map(|&a| f64::from(a)).collect();
    let bad = x.iter().filter(|v| !v.is_finite()).count();
    anyhow::ensure!(
        bad == 0,
        "{what} produced {bad} non-finite coordinates (the network or sampler diverged)"
    );
    Ok(x)
}

/// Runs a sampler under a progress bar of `steps` steps labelled `label`: its output, the
/// samples as finite `f64` ([`finite_f64`]) and the wall time in seconds.
pub fn run_sampler<E: std::fmt::Display>(
    label: &str,
    steps: usize,
    run: impl FnOnce(&mut dyn FnMut(usize, usize)) -> Result<SampleOutput, E>,
) -> Result<(SampleOutput, Vec<f64>, f64)> {
    let start = Instant::now();
    let mut bar = Progress::new(label, steps as u64, "steps");
    let out = run(&mut |i, _| bar.update(i as u64, String::new));
    bar.finish();
    let out = out.map_err(|e| anyhow!("{label}: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    let x = finite_f64(label, &out.samples)?;
    Ok((out, x, secs))
}

/// The shared start of `render`: saves the trained network (`model.safetensors` and its
/// `model.json`), then writes the kind's data files with `write`, both timed.
pub fn save_model_and_write(
    ctx: &mut RunContext<'_>,
    trained: &Trained,
    write: impl FnOnce(&OutputDir) -> Result<()>,
) -> Result<()> {
    let out = ctx.out;
    ctx.time("save_model", || {
        trained.net.save(&out.file("model.safetensors"))
    })
    .map_err(|e| anyhow!("cannot save the model: {e}"))?;
    ctx.time("write", || write(out))
}

/// Sample quality against the exact law and a fresh data draw (the flat keys `radius_ks`,
/// `two_sample_ks_*`, `sliced_wasserstein*`, `energy_distance*`, `mean_radius`, `std_radius`),
/// from [`evaluate_planar`]. Reusable by every kind that reports these keys.
#[derive(Debug, Default, Serialize)]
pub struct SampleQuality {
    /// One-sample KS of the radius against the exact radial law.
    pub radius_ks: Ks,
    /// One-sample KS of the angle against the exact angular law.
    pub angle_ks: Ks,
    /// Two-sample KS of the radii against the reference draw.
    pub two_sample_ks_radius: Ks,
    /// Two-sample KS of the angles against the reference draw.
    pub two_sample_ks_angle: Ks,
    /// `SW₂(samples, reference)`.
    pub sliced_wasserstein: Value,
    /// `SW₂(floor draw, reference)`.
    pub sliced_wasserstein_noise_floor: Value,
    /// Their ratio.
    pub sliced_wasserstein_ratio: Value,
    /// Energy distance to the reference.
    pub energy_distance: Value,
    /// Its noise floor.
    pub energy_distance_noise_floor: Value,
    /// Their ratio.
    pub energy_distance_ratio: Value,
    /// Sample mean of the radius (exact: 1).
    pub mean_radius: Value,
    /// Sample sd of the radius (exact: 1/√k).
    pub std_radius: Value,
}

impl From<&PlanarEvaluation> for SampleQuality {
    fn from(e: &PlanarEvaluation) -> Self {
        let nan = Ks {
            statistic: f64::NAN,
            pvalue: f64::NAN,
        };
        let r = e.reference.as_ref();
        let v = |f: &dyn Fn(&smoluchowski::metrics::ReferenceDistances) -> f64| -> Value {
            r.map_or(f64::NAN, f).into()
        };
        SampleQuality {
            radius_ks: e.radius_ks.into(),
            angle_ks: e.angle_ks.into(),
            two_sample_ks_radius: r.map_or(nan, |d| d.two_sample_ks_radius.into()),
            two_sample_ks_angle: r.map_or(nan, |d| d.two_sample_ks_angle.into()),
            sliced_wasserstein: v(&|d| d.sliced_wasserstein),
            sliced_wasserstein_noise_floor: v(&|d| d.sliced_wasserstein_noise_floor),
            sliced_wasserstein_ratio: v(&|d| d.sliced_wasserstein_ratio()),
            energy_distance: v(&|d| d.energy_distance),
            energy_distance_noise_floor: v(&|d| d.energy_distance_noise_floor),
            energy_distance_ratio: v(&|d| d.energy_distance_ratio()),
            mean_radius: e.mean_radius.into(),
            std_radius: e.std_radius.into(),
        }
    }
}

/// `throughput.*` (machine-dependent, never golden-checked).
#[derive(Debug, Default, Serialize)]
pub struct Throughput {
    /// Training steps per second.
    pub train_steps_per_s: Value,
    /// Score evaluations × samples per second of the sampler.
    pub sampler_sample_steps_per_s: Value,
}

/// `throughput.*` of a kind that reports only training throughput.
#[derive(Debug, Default, Serialize)]
pub struct TrainThroughput {
    /// Training steps per second.
    pub train_steps_per_s: Value,
}

/// The statistics of a `ring2d` run.
#[derive(Debug, Default, Serialize)]
pub struct Ring2dStats {
    /// The samples against the exact law and the data.
    #[serde(flatten)]
    pub quality: SampleQuality,
    /// Mean batch loss of the last [`FINAL_LOSS_WINDOW`] steps.
    pub final_training_loss: Value,
    /// DSM loss on the fixed evaluation batch.
    pub eval_loss: Value,
    /// Throughput.
    pub throughput: Throughput,
}

/// What compute hands to render.
pub struct Ring2dRun {
    sde: Sde,
    data: Ring2d,
    trained: Trained,
    eval: LossReport,
    /// `n × 2` samples (float64).
    samples: Vec<f64>,
    trajectories: Option<Trajectories>,
    nfe: usize,
    sample_secs: f64,
    window: usize,
}

/// Report prose, next to the code (`{name}` placeholders, see [`report::fill`]).
const HOW_TO_READ: &str = include_str!("ring2d/how_to_read.md");
const CHECK_YOURSELF: &str = include_str!("ring2d/check_yourself.md");

impl TypedExperiment for Ring2dManifest {
    type Stats = Ring2dStats;
    type Computed = Ring2dRun;

    fn header(&self) -> &ExperimentHeader {
        &self.experiment
    }

    fn declared(&self) -> Ring2dStats {
        Ring2dStats::default()
    }

    fn compute(&self, ctx: &mut RunContext<'_>) -> Result<(Ring2dStats, Ring2dRun)> {
        let seed = ctx.seed;
        let sde = self.sde.build()?;
        let data = Ring2d::new(self.dataset.scale).map_err(|e| anyhow!("dataset: {e}"))?;
        let ckpts = ctx.checkpoints.clone();
        let trained = ctx.time("train", || {
            let (name, net, t) = (&self.experiment.name, &self.network, &self.training.0);
            train_score_net(name, net, t, &sde, &data, seed, &ckpts)
        })?;
        let eval: LossReport = ctx.time("eval_loss", || {
            let mut rng = seeding::stream(seed, "eval_loss", 0);
            let t = &self.training.0;
            let n = self.evaluation.eval_loss_samples;
            dsm_loss(&trained.net, &sde, &data, t.weighting, t.t_eps, n, &mut rng)
        });
        let (sampled, samples, sample_secs) =
            ctx.time("sample", || self.sample(&trained.net, &sde, seed))?;
        let evaluation = ctx.time("statistics", || self.evaluate(seed, &data, &samples));
        let (final_training_loss, window) = final_loss(&trained.curve);
        let n = self.sampling.n_samples;
        let sample_steps = self.sampling.sampler.nfe().unwrap_or(sampled.nfe) as f64 * n as f64;
        let stats = Ring2dStats {
            quality: SampleQuality::from(&evaluation),
            final_training_loss: final_training_loss.into(),
            eval_loss: eval.mean.into(),
            throughput: Throughput {
                train_steps_per_s: trained.steps_per_sec.into(),
                sampler_sample_steps_per_s: (sample_steps / sample_secs.max(1e-9)).into(),
            },
        };
        let run = Ring2dRun {
            sde,
            data,
            trained,
            eval,
            samples,
            trajectories: sampled.trajectories,
            nfe: sampled.nfe,
            sample_secs,
            window,
        };
        Ok((stats, run))
    }

    fn render(
        &self,
        _stats: &Ring2dStats,
        run: &Ring2dRun,
        ctx: &mut RunContext<'_>,
    ) -> Result<Rendered> {
        let n = self.sampling.n_samples;
        save_model_and_write(ctx, &run.trained, |out| {
            write_npy(&out.file("samples.npy"), &[n, 2], &run.samples)?;
            write_text(&out.file("loss_curve.csv"), &curve_csv(&run.trained.curve))
        })?;
        let out = ctx.out;
        let figures = ctx.time("figures", || -> Result<Vec<Figure>> {
            let mut figs = vec![self.notes_figure(out, run)?, self.loss_figure(out, run)?];
            figs.extend(self.strip_figure(out, run)?);
            figs.push(self.buckets_figure(out, run)?);
            Ok(figs)
        })?;
        Ok(Rendered {
            parameters: self.parameters(run, ctx.seed),
            figures,
            files: vec![
                ("samples.npy".into(), format!("the {n} samples, float64, shape ({n}, 2)")),
                (
                    "model.safetensors".into(),
                    "the trained network (EMA weights if enabled), safetensors; its config is in model.json (reload: ScoreNet::load)".into(),
                ),
                ("model.json".into(), "the network's ScoreNetConfig (sidecar of model.safetensors)".into()),
                (
                    "loss_curve.csv".into(),
                    "step, batch loss, learning rate, gradient norm of every training step".into(),
                ),
            ],
            sections: vec![
                ("How to read this report".to_string(), self.how_to_read()),
                (
                    "Check it yourself".to_string(),
                    report::fill(CHECK_YOURSELF, &[("k", self.dataset.scale.to_string())]),
                ),
            ],
        })
    }
}

/// The one- and two-sample KS critical values at [`KS_ALPHA`] for sizes `n` and (`n`, `m`):
/// `c/√n` and `c·√((n + m)/(n m))`, `c = √(−ln(α/2)/2)`.
fn ks_criticals(n: usize, m: usize) -> (f64, f64) {
    let c = ks_critical_asymptotic(KS_ALPHA, 1);
    let two = c * ((n + m) as f64 / (n * m) as f64).sqrt();
    (ks_critical_asymptotic(KS_ALPHA, n), two)
}

/// Left edges `t_eps + (T − t_eps) i / B`, `i = 0..=B`, of the evaluation-loss time buckets.
fn bucket_edges(t_eps: f64, t_end: f64) -> Vec<f64> {
    (0..=NUM_TIME_BUCKETS)
        .map(|i| t_eps + (t_end - t_eps) * i as f64 / NUM_TIME_BUCKETS as f64)
        .collect()
}

impl Ring2dManifest {
    /// The reverse-time sampler of `[sampling]` on the trained network.
    fn sample(
        &self,
        net: &ScoreNet,
        sde: &Sde,
        seed: u64,
    ) -> Result<(SampleOutput, Vec<f64>, f64)> {
        let (sm, ev) = (&self.sampling, &self.evaluation);
        let record = (sm.record_particles > 0 && !ev.strip_times.is_empty()).then(|| RecordSpec {
            particles: sm.record_particles,
            times: Some(ev.strip_times.clone()),
        });
        let mut score = NetScore::new(net, sde);
        let seed = derived_seed(seed, "sampling");
        run_sampler("sampling", sm.sampler.steps, |p| {
            sample_with_progress(sde, &mut score, &sm.sampler, sm.n_samples, seed, record, p)
        })
    }

    /// The samples against the exact marginals and fresh data draws (streams `reference`,
    /// `reference_floor`, `sliced_wasserstein`).
    fn evaluate(&self, seed: u64, data: &Ring2d, samples: &[f64]) -> PlanarEvaluation {
        let ev = &self.evaluation;
        let draw = |name: &str, n: usize| data.sample(&mut seeding::stream(seed, name, 0), n);
        let reference = draw("reference", ev.reference_samples);
        let floor_draw = draw("reference_floor", self.sampling.n_samples);
        let draws = ReferenceDraws {
            reference: &reference,
            floor_draw: &floor_draw,
            sw_projections: ev.sliced_wasserstein_projections,
            sw_seed: derived_seed(seed, "sliced_wasserstein"),
            energy_subsample: ev.energy_subsample,
        };
        let (radial, angular) = (|r| data.radial_cdf(r), |t| data.angular_cdf(t));
        evaluate_planar(samples, radial, angular, Some(draws))
    }

    fn parameters(&self, run: &Ring2dRun, seed: u64) -> serde_json::Value {
        let (n, n_ref) = (self.sampling.n_samples, self.evaluation.reference_samples);
        let (sde, tcfg, eval) = (&run.sde, &self.training.0, &run.eval);
        let means = eval.bucket_means.iter();
        let (crit, crit2) = ks_criticals(n, n_ref);
        json!({
            "n_samples": n,
            "reference_samples": n_ref,
            "exact_mean_radius": 1.0,
            "exact_std_radius": 1.0 / self.dataset.scale.sqrt(),
            "ks_critical_value_alpha_1e-3": crit,
            "two_sample_ks_critical_value_alpha_1e-3": crit2,
            "sde_mean_coef_at_T": sde.mean_coef(sde.t_end()),
            "sde_marginal_std_at_T": sde.marginal_std(sde.t_end()),
            "network_parameters": self.network.num_params(),
            "training_seed": tcfg.seed,
            "network_init_seed": derived_seed(seed, "network_init"),
            "sampler_seed": derived_seed(seed, "sampling"),
            "resumed_from_step": run.trained.resumed_from,
            "final_training_loss_window": run.window,
            "sampler_nfe": run.nfe,
            "sampler_wall_time_s": run.sample_secs,
            "eval_loss_bucket_edges_t": bucket_edges(tcfg.t_eps, sde.t_end()),
            "eval_loss_bucket_means": means.map(|v| if v.is_finite() { json!(v) } else { json!(null) }).collect::<Vec<_>>(),
            "strip_times_recorded": run.trajectories.as_ref().map(|t| t.times.clone()),
        })
    }

    fn how_to_read(&self) -> String {
        let (n, n_ref) = (self.sampling.n_samples, self.evaluation.reference_samples);
        let (crit, crit2) = ks_criticals(n, n_ref);
        report::fill(
            HOW_TO_READ,
            &[
                ("n", n.to_string()),
                ("typ", format!("{:.4}", 0.8687 / (n as f64).sqrt())),
                ("crit", format!("{crit:.4}")),
                ("n_ref", n_ref.to_string()),
                ("crit2", format!("{crit2:.4}")),
                ("sd", format!("{:.4}", 1.0 / self.dataset.scale.sqrt())),
            ],
        )
    }

    /// (a) The notes' layout: 2-D histogram | angle | radius.
    fn notes_figure(&self, out: &OutputDir, run: &Ring2dRun) -> Result<Figure> {
        let (n, k) = (self.sampling.n_samples, self.dataset.scale);
        let (x, title) = (&run.samples, format!("samples (n = {n}), 2-D histogram"));
        let panels = notes_layout_panels(
            &run.data,
            x,
            &radii(x),
            &angles(x),
            title,
            "learned (samples)",
        )?;
        figures::draw_row(&out.file("ring2d.png"), &panels, (600, 560))?;
        Ok(Figure {
            file: "ring2d.png".into(),
            caption: format!(
                "The notes' layout. Left: 2-D histogram of the {n} samples (colour ∝ √density). \
                 Middle: histogram of the angle atan2(y, x) against the exact angular density (peaks 1/4 \
                 on the diagonals, 1/8 on the axes). Right: histogram of the radius against the exact \
                 Gamma(k, rate k) density, k = {k} (mean 1, sd {:.4}).",
                1.0 / k.sqrt()
            ),
        })
    }

    /// (b) The loss curve, log-y, smoothed.
    fn loss_figure(&self, out: &OutputDir, run: &Ring2dRun) -> Result<Figure> {
        let c = &run.trained.curve;
        let steps: Vec<usize> = c.iter().map(|r| r.step).collect();
        let losses: Vec<f64> = c.iter().map(|r| r.loss).collect();
        let batch = self.training.0.batch_size;
        let title = format!("training loss ({} steps, batch {batch})", c.len());
        let (panel, w) = figures::loss_curve(&steps, &losses, title, "DSM loss (log scale)");
        figures::draw_row(&out.file("loss.png"), &[panel], (900, 520))?;
        Ok(Figure {
            file: "loss.png".into(),
            caption: format!(
                "Denoising score-matching loss of each training batch (light) and its {w}-step moving average, log scale. \
                 Its floor is not 0: the irreducible part of the DSM loss is the conditional variance of ε given x_t."
            ),
        })
    }

    /// (c) The reverse-process strip (none without recorded particles).
    fn strip_figure(&self, out: &OutputDir, run: &Ring2dRun) -> Result<Option<Figure>> {
        let Some(tr) = run.trajectories.as_ref().filter(|t| t.frames() > 0) else {
            return Ok(None);
        };
        let sde = &run.sde;
        let panels: Vec<Panel> = (0..tr.frames())
            .map(|f| {
                let t = tr.times[f];
                let h = (1.4 * sde.mean_coef(t) + 3.5 * sde.marginal_std(t)).max(1.5);
                figures::scatter(tr.frame(f), h, format!("t = {t:.3}"))
            })
            .collect();
        figures::draw_row(&out.file("reverse_process.png"), &panels, (380, 380))?;
        Ok(Some(Figure {
            file: "reverse_process.png".into(),
            caption: format!(
                "{} particles along the reverse process, from the prior at t = T (left) to t_eps (right), \
                 at the grid times nearest to evaluation.strip_times (before any final denoising step).",
                tr.particles
            ),
        }))
    }

    /// (d) The evaluation loss per diffusion-time bucket.
    fn buckets_figure(&self, out: &OutputDir, run: &Ring2dRun) -> Result<Figure> {
        let (t_end, eval) = (run.sde.t_end(), &run.eval);
        let rows = self.evaluation.eval_loss_samples;
        let title = format!(
            "evaluation loss by diffusion time ({rows} rows, mean {:.4})",
            eval.mean
        );
        let edges = bucket_edges(self.training.0.t_eps, t_end);
        let panel = figures::bar_chart(
            (title, "t", "mean DSM loss in bucket"),
            edges,
            &eval.bucket_means,
        );
        let panel = Panel {
            x_range: Some((0.0, t_end)),
            ..panel
        };
        figures::draw_row(&out.file("loss_by_time.png"), &[panel], (900, 480))?;
        Ok(Figure {
            file: "loss_by_time.png".into(),
            caption: format!(
                "DSM loss of the trained network on a fixed evaluation batch, per time bucket of [t_eps, T] \
                 ({NUM_TIME_BUCKETS} equal buckets; λ(t) = {:?}). Large values at small t are expected (the \
                 noise is hard to identify when there is little of it); large values elsewhere point to undertraining.",
                self.training.0.weighting
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(name: &str) -> Ring2dManifest {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../experiments")
            .join(format!("{name}.toml"));
        let m = manifest::read(&path, name).unwrap();
        manifest::parse_as(&m).unwrap()
    }

    #[test]
    fn declared_keys_are_the_golden_keys() {
        let keys = crate::stats::kinds(&manifest("ring2d").declared());
        let want = [
            "angle_ks",
            "energy_distance",
            "energy_distance_noise_floor",
            "energy_distance_ratio",
            "eval_loss",
            "final_training_loss",
            "mean_radius",
            "radius_ks",
            "sliced_wasserstein",
            "sliced_wasserstein_noise_floor",
            "sliced_wasserstein_ratio",
            "std_radius",
            "throughput.sampler_sample_steps_per_s",
            "throughput.train_steps_per_s",
            "two_sample_ks_angle",
            "two_sample_ks_radius",
        ];
        assert_eq!(keys.keys().collect::<Vec<_>>(), want);
        assert_eq!(keys["radius_ks"], crate::harness::StatKind::Ks);
        assert_eq!(keys["std_radius"], crate::harness::StatKind::Value);
    }

    #[test]
    fn report_templates_are_filled() {
        let m = manifest("ring2d");
        let text = m.how_to_read();
        assert!(text.contains(&m.evaluation.reference_samples.to_string()));
        assert!(!text.contains("{crit"));
        let snippet = report::fill(CHECK_YOURSELF, &[("k", "7".into())]);
        assert!(snippet.contains("k = 7") && snippet.contains("layers.{i}.weight"));
    }

    #[test]
    fn final_loss_averages_the_whole_short_curve() {
        let rows: Vec<CurveRow> = (1..=5)
            .map(|i| CurveRow {
                step: i,
                loss: i as f64,
                lr: 0.0,
                grad_norm: 0.0,
                bucket_loss: [f64::NAN; smoluchowski::losses::NUM_TIME_BUCKETS],
            })
            .collect();
        assert_eq!(final_loss(&rows), (3.0, 5));
    }

    #[test]
    fn derived_seeds_differ_by_name() {
        assert_eq!(derived_seed(1, "a"), derived_seed(1, "a"));
        assert_ne!(derived_seed(1, "a"), derived_seed(1, "b"));
        assert_ne!(derived_seed(1, "a"), derived_seed(2, "a"));
    }
}
