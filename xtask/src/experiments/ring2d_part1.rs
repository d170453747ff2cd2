//! Kind `ring2d-part1`: the notes' part 1 reproduced, and its two mistakes attributed.
//!
//! Part 1 trains a score network with the kernel `x_t = √c x₀ + (1 − c) ε`, `c = e^{−I(t)}`,
//! which is exactly the **sub-VP** kernel (`m = e^{−I/2}`, `σ = 1 − m²`), then samples with the
//! **VP** reverse SDE, and starts that sampler from `N(0, I)` although with `T = 100`,
//! `β ∈ [1e-4, 0.02]` the forward process ends at `I(T) = 1.005`, `m(T) = 0.605`: `p_T` is far
//! from `N(0, I)`. One network is trained with the manifest's `[sde]` (the kernel) and then
//! sampled by every `[[sampling.variants]]` entry, each choosing
//! - the reverse SDE it integrates (`vp` or `sub_vp`, with `[sde]`'s β schedule and `T`),
//! - the start `x_T`: `standard_normal` (`N(0, I)`, the notes) or `matched` (exact draws of the
//!   trained kernel's `p_T`: `x_T = m(T) x₀ + σ(T) ε` with fresh `x₀ ~ ring2d`, exact because
//!   ring2d is sampleable),
//! - the score: the trained `network`, or the exact ring2d score of the trained kernel
//!   (`oracle`, quadrature) to separate network error from the two mistakes,
//! - the sampler (method, steps, t_eps).
//!
//! Each variant's radius and angle are KS-tested (one-sample) against ring2d's exact marginals.
//! The report's 2×2 table {VP, sub-VP reverse SDE} × {N(0, I), matched p_T} switches each
//! mistake on alone.
//!
//! Streams derived from the master seed: `network_init`, `training` (as kind `ring2d`),
//! `sampling` (one sampler seed shared by every variant: common random numbers) and
//! `matched_prior` (the x₀ and ε of the matched start, shared by every matched variant).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use smoluchowski::datasets::Ring2d;
use smoluchowski::metrics::{angles, evaluate_planar, ks_one_sample_isf, radii, KsResult};
use smoluchowski::nets::{NetOutput, NetScore, ScoreNetConfig, TimeEmbedding};
use smoluchowski::samplers::{sample_from_with_progress, sample_with_progress, SamplerConfig};
use smoluchowski::sde::{forward_marginal_draws, ForwardSde, Ring2dOracle, Score, Sde};

use super::ring2d::{
    curve_csv, derived_seed, final_loss, notes_layout_panels, train_score_net, DatasetTable,
    SdeKind, SdeTable, TrainThroughput, Trained, TrainingTable,
};
use crate::figures::{self, curve, palette, viridis, Line, Panel};
use crate::harness::{Experiment, Figure, KindEntry, RunContext};
use crate::manifest::{self, ExperimentHeader, ManifestText};
use crate::output::{write_npy, write_text};
use crate::progress::Progress;
use crate::report;
use crate::seeding;
use crate::stats::{Ks, Rendered, TypedExperiment, Value};
use crate::validate::{fmt_f64, Checker};

/// Registration of this kind.
pub const ENTRY: KindEntry = KindEntry {
    kind: "ring2d-part1",
    summary:
        "the notes' part 1 (sub-VP kernel sampled by the VP reverse SDE from N(0, I)) and its \
              fixes, from one trained network: KS of radius and angle per variant, 2x2 attribution",
    load,
};

/// Largest sample count accepted.
const MAX_SAMPLES: usize = 10_000_000;
/// Most variants per manifest.
const MAX_VARIANTS: usize = 16;
/// Most grid steps per variant.
const MAX_STEPS: usize = 100_000;
/// Level of the KS critical value quoted in the report.
pub const ALPHA: f64 = 0.01;

/// Where the reverse process starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    /// `x_T ~ N(0, I)` (the notes' part 1).
    StandardNormal,
    /// `x_T = m(T) x₀ + σ(T) ε`, `x₀ ~ ring2d`, `ε ~ N(0, I)`: exact draws of the trained
    /// kernel's `p_T`.
    Matched,
}

/// Which score drives the sampler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreSource {
    /// The trained network.
    #[default]
    Network,
    /// The exact `∇ log p_t` of ring2d under the trained kernel (`Ring2dOracle`, quadrature).
    Oracle,
}

/// One `[[sampling.variants]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Name used in statistic keys (`<name>.ks_radius`): `[A-Za-z0-9_-]+`, unique.
    pub name: String,
    /// The reverse SDE integrated (same β schedule and `T` as `[sde]`).
    pub reverse_sde: SdeKind,
    /// The start `x_T`.
    pub start: Start,
    /// The score (default `network`).
    #[serde(default)]
    pub score: ScoreSource,
    /// The sampler.
    pub sampler: SamplerConfig,
}

/// `[sampling]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingTable {
    /// Samples per variant (the KS statistics' `n`).
    pub n_samples: usize,
    /// Name of the variant whose samples go to `samples.npy`.
    pub samples_npy: String,
    /// The variants.
    pub variants: Vec<Variant>,
}

/// The whole manifest of kind `ring2d-part1`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Part1Manifest {
    /// `[experiment]`.
    pub experiment: ExperimentHeader,
    /// `[dataset]`.
    pub dataset: DatasetTable,
    /// `[sde]`: the forward process whose kernel the network is trained on.
    pub sde: SdeTable,
    /// `[network]`.
    pub network: ScoreNetConfig,
    /// `[training]` (its `seed` is derived from `experiment.seed`).
    pub training: TrainingTable,
    /// `[sampling]`.
    pub sampling: SamplingTable,
}

/// `[sde]` with its kind replaced (the reverse SDE of a variant).
fn with_kind(s: &SdeTable, kind: SdeKind) -> SdeTable {
    s.with_kind(kind)
}

fn kind_name(k: SdeKind) -> &'static str {
    match k {
        SdeKind::Vp => "VP",
        SdeKind::SubVp => "sub-VP",
        SdeKind::Ou => "OU",
    }
}

fn start_name(s: Start) -> &'static str {
    match s {
        Start::StandardNormal => "N(0, I)",
        Start::Matched => "exact p_T",
    }
}

impl Part1Manifest {
    fn check(&self) -> Result<()> {
        let mut c = Checker::new();
        self.experiment.check(&mut c);
        let k = self.dataset.scale;
        c.positive("dataset.scale", k);
        if k.is_finite() && k > 0.0 {
            if let Err(e) = Ring2d::new(k) {
                c.fail(format!("dataset.scale: {e}"));
            }
        }
        self.sde.check(&mut c, "sde", false);
        c.require(
            self.sde.kind != SdeKind::Ou,
            "sde.kind",
            "vp or sub_vp (part 1 trains one and samples the other)",
            "ou",
        );
        let sde = self.sde.build();
        crate::tables::check_model(&mut c, &self.network, &self.training.0, 2);
        if let Ok(sde) = &sde {
            let t = self.training.0.t_eps;
            c.require(
                t < sde.t_end(),
                "training.t_eps",
                &format!("< sde.t_end = {}", fmt_f64(sde.t_end())),
                fmt_f64(t),
            );
        }

        let sp = &self.sampling;
        c.count("sampling.n_samples", sp.n_samples, 1, MAX_SAMPLES);
        c.count(
            "sampling.variants (number of)",
            sp.variants.len(),
            1,
            MAX_VARIANTS,
        );
        let mut seen = std::collections::BTreeSet::new();
        for (i, v) in sp.variants.iter().enumerate() {
            let at = format!("sampling.variants[{i}]");
            c.unique_name(&mut seen, &format!("{at}.name"), &v.name);
            c.count(
                &format!("{at}.sampler.steps"),
                v.sampler.steps,
                1,
                MAX_STEPS,
            );
            if v.score == ScoreSource::Oracle {
                c.require(
                    k.is_finite() && k >= 2.0,
                    "dataset.scale",
                    &format!(">= 2 for the oracle score of {at}"),
                    fmt_f64(k),
                );
            }
            c.require(
                v.reverse_sde != SdeKind::Ou,
                &format!("{at}.reverse_sde"),
                "vp or sub_vp",
                "ou",
            );
            if let Ok(rev) = with_kind(&self.sde, v.reverse_sde).build() {
                if let Err(e) = v.sampler.time_grid(&rev) {
                    c.fail(e.under(&format!("{at}.sampler")).to_string());
                }
                if v.sampler.final_denoise {
                    c.fail(format!(
                        "{at}.sampler.final_denoise must be false (got true): Tweedie's denoiser \
                         uses the reverse SDE's kernel, which is not the trained one for a VP variant"
                    ));
                }
            }
        }
        c.require(
            sp.variants.iter().any(|v| v.name == sp.samples_npy),
            "sampling.samples_npy",
            "the name of one of sampling.variants",
            format!("{:?}", sp.samples_npy),
        );
        Ok(c.finish()?)
    }
}

fn load(m: &ManifestText) -> Result<Box<dyn Experiment>> {
    let mut parsed: Part1Manifest = manifest::parse_as(m)?;
    parsed.check().map_err(|e| e.context(m.display.clone()))?;
    parsed.training.0.seed = derived_seed(parsed.experiment.seed, "training");
    Ok(Box::new(parsed))
}

/// One variant's measurements.
#[derive(Debug, Clone)]
struct Measured {
    variant: Variant,
    nfe: usize,
    wall_s: f64,
    ks_radius: KsResult,
    ks_angle: KsResult,
    mean_radius: f64,
    std_radius: f64,
    samples: Vec<f64>,
}

/// `<variant>.*`: one variant's samples against ring2d's exact marginals.
#[derive(Debug, Default, Serialize)]
pub struct VariantStats {
    /// One-sample KS of the radius.
    pub ks_radius: Ks,
    /// One-sample KS of the angle.
    pub ks_angle: Ks,
    /// Sample mean of the radius.
    pub mean_radius: Value,
    /// Sample sd of the radius.
    pub std_radius: Value,
}

/// `kernel.*`: the trained kernel at `T`.
#[derive(Debug, Default, Serialize)]
pub struct KernelStats {
    /// `m(T)`.
    #[serde(rename = "mean_coef_at_T")]
    pub mean_coef_at_t: Value,
    /// `σ(T)`.
    #[serde(rename = "std_at_T")]
    pub std_at_t: Value,
}

/// The statistics of a `ring2d-part1` run.
#[derive(Debug, Default, Serialize)]
pub struct Part1Stats {
    /// Per variant, keyed by `sampling.variants[].name`.
    #[serde(flatten)]
    pub variants: BTreeMap<String, VariantStats>,
    /// KS critical value at [`ALPHA`] for `n_samples`.
    pub ks_critical_value: Value,
    /// The kernel at `T`.
    pub kernel: KernelStats,
    /// Mean batch loss of the last 100 steps.
    pub final_training_loss: Value,
    /// Throughput.
    pub throughput: TrainThroughput,
}

/// What compute hands to render.
pub struct Part1Run {
    data: Ring2d,
    trained: Trained,
    measured: Vec<Measured>,
    crit: f64,
}

/// Report prose, next to the code (`{name}` placeholders, see [`report::fill`]).
const HOW_TO_READ: &str = include_str!("ring2d_part1/how_to_read.md");
const CHECK_YOURSELF: &str = include_str!("ring2d_part1/check_yourself.md");

impl TypedExperiment for Part1Manifest {
    type Stats = Part1Stats;
    type Computed = Part1Run;

    fn header(&self) -> &ExperimentHeader {
        &self.experiment
    }

    fn declared(&self) -> Part1Stats {
        let variants = self.sampling.variants.iter();
        Part1Stats {
            variants: variants
                .map(|v| (v.name.clone(), VariantStats::default()))
                .collect(),
            ..Default::default()
        }
    }

    fn compute(&self, ctx: &mut RunContext<'_>) -> Result<(Part1Stats, Part1Run)> {
        let seed = ctx.seed;
        let sde: Sde = self.sde.build()?;
        let data = Ring2d::new(self.dataset.scale).map_err(|e| anyhow!("dataset: {e}"))?;
        let n = self.sampling.n_samples;
        let ckpts = ctx.checkpoints.clone();
        let trained = ctx.time("train", || {
            let (name, net, t) = (&self.experiment.name, &self.network, &self.training.0);
            train_score_net(name, net, t, &sde, &data, seed, &ckpts)
        })?;
        let variants = &self.sampling.variants;
        let matched = variants.iter().any(|v| v.start == Start::Matched).then(|| {
            ctx.time("matched_start", || {
                let mut rng = seeding::stream(seed, "matched_prior", 0);
                forward_marginal_draws(&sde, &data, sde.t_end(), n, &mut rng)
            })
        });
        let mut oracle = None;
        let mut measured = Vec::new();
        for v in variants {
            let m = self.measure(ctx, v, &trained, &sde, &data, matched.as_ref(), &mut oracle)?;
            measured.push(m);
        }
        let crit = ks_one_sample_isf(ALPHA, n);
        let t_end = sde.t_end();
        let stats = Part1Stats {
            variants: measured
                .iter()
                .map(|m| (m.variant.name.clone(), VariantStats::from(m)))
                .collect(),
            ks_critical_value: crit.into(),
            kernel: KernelStats {
                mean_coef_at_t: sde.mean_coef(t_end).into(),
                std_at_t: sde.marginal_std(t_end).into(),
            },
            final_training_loss: final_loss(&trained.curve, 100).0.into(),
            throughput: TrainThroughput {
                train_steps_per_s: trained.steps_per_sec.into(),
            },
        };
        let run = Part1Run {
            data,
            trained,
            measured,
            crit,
        };
        Ok((stats, run))
    }

    fn render(
        &self,
        _stats: &Part1Stats,
        run: &Part1Run,
        ctx: &mut RunContext<'_>,
    ) -> Result<Rendered> {
        let (out, n, crit) = (ctx.out, self.sampling.n_samples, run.crit);
        ctx.time("save_model", || {
            run.trained.net.save(&out.file("model.safetensors"))
        })
        .map_err(|e| anyhow!("cannot save the model: {e}"))?;
        let npy = run
            .measured
            .iter()
            .find(|m| m.variant.name == self.sampling.samples_npy)
            .ok_or_else(|| anyhow!("samples_npy names no variant"))?;
        let figures = ctx.time("write", || -> Result<Vec<Figure>> {
            write_npy(&out.file("samples.npy"), &[n, 2], &npy.samples)?;
            write_text(&out.file("loss_curve.csv"), &curve_csv(&run.trained.curve))?;
            Ok(vec![
                samples_figure(out, &run.data, &run.measured)?,
                marginals_figure(out, &run.data, &run.measured)?,
            ])
        })?;
        let sde = self.sde.build()?;
        let sections = vec![
            (
                "Attribution: each mistake alone".into(),
                attribution(&run.measured, crit, n),
            ),
            (
                "Every variant".into(),
                variant_table(&run.measured, crit, n),
            ),
            ("How to read this".into(), self.how_to_read(&sde, n, crit)),
            ("Check it yourself (NumPy/SciPy)".into(), self.snippet(n)),
        ];
        Ok(Rendered {
            parameters: self.parameters(&sde, run, ctx.seed)?,
            figures,
            files: vec![
                (
                    "samples.npy".into(),
                    format!(
                        "the {n} samples of variant `{}` (float64, shape ({n}, 2))",
                        self.sampling.samples_npy
                    ),
                ),
                (
                    "model.safetensors".into(),
                    "the trained network (reload: ScoreNet::load; config in model.json)".into(),
                ),
                ("model.json".into(), "the network's ScoreNetConfig".into()),
                (
                    "loss_curve.csv".into(),
                    "step, batch loss, learning rate, gradient norm of every training step".into(),
                ),
            ],
            sections,
        })
    }
}

impl From<&Measured> for VariantStats {
    fn from(m: &Measured) -> Self {
        VariantStats {
            ks_radius: m.ks_radius.into(),
            ks_angle: m.ks_angle.into(),
            mean_radius: m.mean_radius.into(),
            std_radius: m.std_radius.into(),
        }
    }
}

impl Part1Manifest {
    /// Samples one variant (from `N(0, I)` or the `matched` draw, with the network or the
    /// lazily built oracle score; sampler seed `sampling` for every variant) and measures it.
    #[allow(clippy::too_many_arguments)]
    fn measure(
        &self,
        ctx: &mut RunContext<'_>,
        v: &Variant,
        trained: &Trained,
        sde: &Sde,
        data: &Ring2d,
        matched: Option<&Vec<f32>>,
        oracle: &mut Option<Ring2dOracle<Sde>>,
    ) -> Result<Measured> {
        let n = self.sampling.n_samples;
        let sampling_seed = derived_seed(ctx.seed, "sampling");
        let rev = with_kind(&self.sde, v.reverse_sde).build()?;
        let mut net_score;
        let score: &mut dyn Score = match v.score {
            ScoreSource::Network => {
                net_score = NetScore::new(&trained.net, sde);
                &mut net_score
            }
            ScoreSource::Oracle => {
                if oracle.is_none() {
                    let o = Ring2dOracle::new(*sde, data.clone());
                    *oracle = Some(o.map_err(|e| anyhow!("oracle: {e}"))?);
                }
                oracle.as_mut().expect("just set")
            }
        };
        let mut bar = Progress::new(&v.name, v.sampler.steps as u64, "steps");
        let start = Instant::now();
        let sampled = ctx.time(&format!("sample {}", v.name), || {
            let progress = |i: usize, _: usize| bar.update(i as u64, String::new);
            match v.start {
                Start::StandardNormal => {
                    sample_with_progress(&rev, score, &v.sampler, n, sampling_seed, None, progress)
                }
                Start::Matched => sample_from_with_progress(
                    &rev,
                    score,
                    &v.sampler,
                    matched.cloned().expect("drawn when a variant needs it"),
                    sampling_seed,
                    None,
                    progress,
                ),
            }
        });
        bar.finish();
        let sampled = sampled.map_err(|e| anyhow!("sampling.variants {:?}: {e}", v.name))?;
        let wall_s = start.elapsed().as_secs_f64();
        let x: Vec<f64> = sampled.samples.iter().map(|&s| f64::from(s)).collect();
        let n_bad = x.iter().filter(|s| !s.is_finite()).count();
        anyhow::ensure!(
            n_bad == 0,
            "variant {:?}: {n_bad} non-finite coordinates (the sampler diverged)",
            v.name
        );
        let e = ctx.time(&format!("ks {}", v.name), || {
            evaluate_planar(&x, |s| data.radial_cdf(s), |s| data.angular_cdf(s), None)
        });
        eprintln!(
            "  {}: D_radius {:.5}, D_angle {:.5}, mean r {:.4}, sd r {:.4}, {:.1} s",
            v.name,
            e.radius_ks.statistic,
            e.angle_ks.statistic,
            e.mean_radius,
            e.std_radius,
            wall_s
        );
        Ok(Measured {
            variant: v.clone(),
            nfe: sampled.nfe,
            wall_s,
            ks_radius: e.radius_ks,
            ks_angle: e.angle_ks,
            mean_radius: e.mean_radius,
            std_radius: e.std_radius,
            samples: x,
        })
    }

    fn parameters(&self, sde: &Sde, run: &Part1Run, seed: u64) -> Result<serde_json::Value> {
        let t_end = sde.t_end();
        let vp = with_kind(&self.sde, SdeKind::Vp).build()?;
        Ok(json!({
            "n_samples": self.sampling.n_samples,
            "ks_alpha": ALPHA,
            "ks_critical_value": run.crit,
            "kernel": format!("{:?}", self.sde.kind),
            "kernel_mean_coef_at_T": sde.mean_coef(t_end),
            "kernel_std_at_T": sde.marginal_std(t_end),
            "vp_std_at_T": vp.marginal_std(t_end),
            "integrated_beta_at_T": -2.0 * sde.mean_coef(t_end).ln(),
            "network_parameters": self.network.num_params(),
            "training_seed": self.training.0.seed,
            "network_init_seed": derived_seed(seed, "network_init"),
            "sampler_seed": derived_seed(seed, "sampling"),
            "resumed_from_step": run.trained.resumed_from,
            "variants": run.measured.iter().map(|m| json!({
                "name": m.variant.name,
                "reverse_sde": kind_name(m.variant.reverse_sde),
                "start": start_name(m.variant.start),
                "score": format!("{:?}", m.variant.score),
                "steps": m.variant.sampler.steps,
                "nfe": m.nfe,
                "wall_time_s": m.wall_s,
                "d_radius": m.ks_radius.statistic,
                "d_angle": m.ks_angle.statistic,
            })).collect::<Vec<_>>(),
        }))
    }
}

/// The 2×2 table {VP, sub-VP} × {N(0, I), exact p_T}: for each cell the first network-score
/// variant (manifest order) with that reverse SDE and start.
fn attribution(measured: &[Measured], crit: f64, n: usize) -> String {
    let cell = |k: SdeKind, s: Start| {
        measured.iter().find(|m| {
            m.variant.score == ScoreSource::Network
                && m.variant.reverse_sde == k
                && m.variant.start == s
        })
    };
    let fmt = |m: Option<&Measured>| match m {
        Some(m) => format!(
            "{:.4} / {:.4} (`{}`, {} steps)",
            m.ks_radius.statistic, m.ks_angle.statistic, m.variant.name, m.variant.sampler.steps
        ),
        None => "— (not run)".into(),
    };
    let mut s = format!(
        "KS D of the radius / the angle (one-sample, n = {n}, against ring2d's exact marginals), the \
         same trained network in every cell. Rows: the reverse SDE integrated; columns: the start x_T.\n\n\
         | reverse SDE \\ start | N(0, I) (the notes) | exact p_T of the trained kernel |\n|---|---|---|\n"
    );
    for k in [SdeKind::Vp, SdeKind::SubVp] {
        let _ = writeln!(
            s,
            "| {}{} | {} | {} |",
            kind_name(k),
            if k == SdeKind::Vp {
                " (the notes)"
            } else {
                " (matches the kernel)"
            },
            fmt(cell(k, Start::StandardNormal)),
            fmt(cell(k, Start::Matched)),
        );
    }
    let _ = write!(
        s,
        "\nTop left is part 1 as written (both mistakes), bottom right the consistent sampler (neither); \
         top right has only the sampler mistake, bottom left only the prior mistake. KS critical value at \
         α = {ALPHA}: {crit:.4}; exact samples give D ≈ {:.4} on average.",
        0.8687 / (n as f64).sqrt()
    );
    s
}

fn variant_table(measured: &[Measured], crit: f64, n: usize) -> String {
    let mut t = String::from(
        "| variant | score | reverse SDE | start | sampler | steps | D radius (p) | D angle (p) | mean r | sd r | wall s |\n\
         |---|---|---|---|---|---:|---|---|---:|---:|---:|\n",
    );
    for m in measured {
        let v = &m.variant;
        let _ = writeln!(
            t,
            "| {} | {:?} | {} | {} | {:?} (t_eps {}) | {} | {:.5} ({:.2e}) | {:.5} ({:.2e}) | {:.4} | {:.4} | {:.1} |",
            v.name,
            v.score,
            kind_name(v.reverse_sde),
            start_name(v.start),
            v.sampler.method,
            fmt_f64(v.sampler.t_eps),
            v.sampler.steps,
            m.ks_radius.statistic,
            m.ks_radius.pvalue,
            m.ks_angle.statistic,
            m.ks_angle.pvalue,
            m.mean_radius,
            m.std_radius,
            m.wall_s,
        );
    }
    let _ = write!(
        t,
        "\nKS critical value at α = {ALPHA} for n = {n}: {crit:.5} (scipy.stats.kstwo.isf). NFE = steps \
         (Euler–Maruyama, one score evaluation per step)."
    );
    t
}

impl Part1Manifest {
    fn how_to_read(&self, sde: &Sde, n: usize, crit: f64) -> String {
        let t = sde.t_end();
        let (m, s) = (sde.mean_coef(t), sde.marginal_std(t));
        let vp_s = with_kind(&self.sde, SdeKind::Vp)
            .build()
            .map(|v| v.marginal_std(t))
            .unwrap_or(f64::NAN);
        let net = &self.network;
        let time_in = match net.time_embedding {
            TimeEmbedding::Concat => "the raw t concatenated to x".to_string(),
            TimeEmbedding::Fourier { frequencies, .. } => {
                format!("Fourier features of t ({frequencies} frequencies)")
            }
        };
        let out_kind = match net.output {
            NetOutput::Score => "the score itself",
            NetOutput::Noise => "the noise ε (score = −ε/σ)",
        };
        let teps = self.sampling.variants.first();
        report::fill(
            HOW_TO_READ,
            &[
                ("depth", net.depth.to_string()),
                ("width", net.width.to_string()),
                ("act", format!("{:?}", net.activation)),
                ("time_in", time_in),
                ("out_kind", out_kind.to_string()),
                ("params", net.num_params().to_string()),
                ("kernel", format!("{:?}", self.sde.kind)),
                ("bmin", fmt_f64(self.sde.beta_min.unwrap_or(f64::NAN))),
                ("bmax", fmt_f64(self.sde.beta_max.unwrap_or(f64::NAN))),
                ("t", fmt_f64(t)),
                ("w", format!("{:?}", self.training.0.weighting)),
                ("steps", self.training.0.steps.to_string()),
                ("batch", self.training.0.batch_size.to_string()),
                ("n", n.to_string()),
                ("it", format!("{:.4}", -2.0 * m.ln())),
                ("m4", format!("{m:.4}")),
                ("s", format!("{s:.4}")),
                ("vp_s", format!("{vp_s:.4}")),
                ("m2", format!("{m:.2}")),
                ("k", self.dataset.scale.to_string()),
                ("crit", format!("{crit:.4}")),
                ("alpha", ALPHA.to_string()),
                ("typ", format!("{:.4}", 0.8687 / (n as f64).sqrt())),
                (
                    "teps",
                    teps.map(|v| fmt_f64(v.sampler.t_eps)).unwrap_or_default(),
                ),
            ],
        )
    }

    fn snippet(&self, n: usize) -> String {
        report::fill(
            CHECK_YOURSELF,
            &[
                ("n", n.to_string()),
                ("npy", self.sampling.samples_npy.clone()),
                ("k", self.dataset.scale.to_string()),
                ("b0", fmt_f64(self.sde.beta_min.unwrap_or(f64::NAN))),
                ("b1", fmt_f64(self.sde.beta_max.unwrap_or(f64::NAN))),
                ("t", fmt_f64(self.sde.t_end)),
            ],
        )
    }
}

/// Colour of variant `i` of `n`.
fn variant_color(i: usize, n: usize) -> plotters::style::RGBColor {
    const FIXED: [plotters::style::RGBColor; 4] = [
        palette::MARK,
        palette::DATA2,
        palette::DATA,
        palette::EXACT2,
    ];
    if n <= FIXED.len() {
        FIXED[i]
    } else {
        viridis(i as f64 / (n - 1) as f64 * 0.9)
    }
}

fn label(m: &Measured) -> String {
    let v = &m.variant;
    format!(
        "{}: {} from {}{}, {} steps",
        v.name,
        kind_name(v.reverse_sde),
        start_name(v.start),
        if v.score == ScoreSource::Oracle {
            " (exact score)"
        } else {
            ""
        },
        v.sampler.steps
    )
}

/// One 2-D histogram per variant (the notes' left panel).
fn samples_figure(
    out: &crate::output::OutputDir,
    data: &Ring2d,
    measured: &[Measured],
) -> Result<Figure> {
    let mut panels = Vec::new();
    for m in measured {
        let r = radii(&m.samples);
        let th = angles(&m.samples);
        let [hist2, _, _] = notes_layout_panels(
            data,
            &m.samples,
            &r,
            &th,
            format!(
                "{} (D_r {:.3}, D_θ {:.3})",
                m.variant.name, m.ks_radius.statistic, m.ks_angle.statistic
            ),
            "samples",
        )?;
        panels.push(hist2);
    }
    figures::draw_row(&out.file("variants.png"), &panels, (460, 460))?;
    let legend = measured.iter().map(label).collect::<Vec<_>>().join("; ");
    Ok(Figure {
        file: "variants.png".into(),
        caption: format!(
            "2-D histograms (colour ∝ √density) of the samples of each variant, all from the same trained \
             network and sampler seed: {legend}. The exact ring has radius 1 and sd 1/√k; its angular \
             density peaks on the diagonals."
        ),
    })
}

/// Histogram of `x` on `[lo, hi]` as a step curve.
fn step_curve(x: &[f64], lo: f64, hi: f64, bins: usize) -> Result<Vec<(f64, f64)>> {
    let (edges, dens) = figures::density_histogram(x, lo, hi, bins)?;
    let mut pts = Vec::with_capacity(2 * dens.len());
    for (i, d) in dens.iter().enumerate() {
        pts.push((edges[i], *d));
        pts.push((edges[i + 1], *d));
    }
    Ok(pts)
}

/// Radius and angle histograms of every variant against the exact densities.
fn marginals_figure(
    out: &crate::output::OutputDir,
    data: &Ring2d,
    measured: &[Measured],
) -> Result<Figure> {
    let k = data.scale();
    let sd = 1.0 / k.sqrt();
    let pi = std::f64::consts::PI;
    // Radius range: the exact ±7 sd, widened to the variants' 0.5 % / 99.5 % quantiles.
    let (mut r_lo, mut r_hi) = ((1.0 - 7.0 * sd).max(0.0), 1.0 + 7.0 * sd);
    let mut radii_all = Vec::new();
    for m in measured {
        let mut r = radii(&m.samples);
        r.sort_by(f64::total_cmp);
        let q = |p: f64| r[((r.len() - 1) as f64 * p) as usize];
        r_lo = r_lo.min(q(0.005));
        r_hi = r_hi.max(q(0.995));
        radii_all.push(r);
    }
    r_lo = r_lo.max(0.0);
    let nv = measured.len();
    let mut r_lines = Vec::new();
    let mut a_lines = Vec::new();
    for (i, (m, r)) in measured.iter().zip(&radii_all).enumerate() {
        let color = variant_color(i, nv);
        r_lines.push(Line {
            points: step_curve(r, r_lo, r_hi, 120)?,
            color,
            alpha: 0.9,
            width: 2,
            label: Some(format!(
                "{} (D {:.3})",
                m.variant.name, m.ks_radius.statistic
            )),
        });
        a_lines.push(Line {
            points: step_curve(&angles(&m.samples), -pi, pi, 120)?,
            color,
            alpha: 0.9,
            width: 2,
            label: Some(format!(
                "{} (D {:.3})",
                m.variant.name, m.ks_angle.statistic
            )),
        });
    }
    r_lines.push(Line {
        points: curve(r_lo, r_hi, 800, |r| data.radial_pdf(r)),
        color: palette::EXACT,
        alpha: 1.0,
        width: 2,
        label: Some(format!("exact Gamma({k}, rate {k})")),
    });
    a_lines.push(Line {
        points: curve(-pi, pi, 1200, |t| data.angular_pdf(t)),
        color: palette::EXACT,
        alpha: 1.0,
        width: 2,
        label: Some("exact 1/(8 max(cos²θ, sin²θ))".into()),
    });
    let radius = Panel {
        title: "radius r = |x|".into(),
        x_label: "r".into(),
        y_label: "density".into(),
        lines: r_lines,
        x_range: Some((r_lo, r_hi)),
        ..Default::default()
    };
    let angle = Panel {
        title: "angle θ = atan2(y, x)".into(),
        x_label: "θ".into(),
        y_label: "density".into(),
        lines: a_lines,
        x_range: Some((-pi, pi)),
        y_range: Some((0.0, 0.42)),
        legend: figures::Legend::UpperLeft,
        ..Default::default()
    };
    figures::draw_row(&out.file("marginals.png"), &[radius, angle], (760, 560))?;
    Ok(Figure {
        file: "marginals.png".into(),
        caption: format!(
            "Histograms (step curves, density) of the radius (left) and the angle (right) of every variant's \
             samples against the exact densities (black), with each variant's one-sample KS D. Variants: {}.",
            measured.iter().map(label).collect::<Vec<_>>().join("; ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[experiment]
name = "t"
kind = "ring2d-part1"
description = "test"
seed = 1

[dataset]
scale = 200

[sde]
kind = "sub_vp"
beta_min = 1e-4
beta_max = 0.02
t_end = 100.0

[network]
dim = 2
width = 64
depth = 3
activation = "silu"
time_embedding = "concat"
output = "score"

[training]
steps = 10
batch_size = 16
optimizer = { kind = "adam_w", weight_decay = 0.01 }
lr = 0.01
lr_schedule = { kind = "constant" }
t_eps = 1e-3
weighting = "sigma2"
data = { kind = "fresh" }

[sampling]
n_samples = 100
samples_npy = "as_written"

[[sampling.variants]]
name = "as_written"
reverse_sde = "vp"
start = "standard_normal"
sampler = { method = "euler_maruyama", steps = 100, t_eps = 1e-3 }

[[sampling.variants]]
name = "fixed"
reverse_sde = "sub_vp"
start = "matched"
sampler = { method = "euler_maruyama", steps = 100, t_eps = 1e-3 }
"#;

    fn load_text(text: &str) -> Result<Box<dyn Experiment>> {
        let m = ManifestText {
            display: "test.toml".into(),
            text: text.into(),
            header: toml::from_str::<toml::Table>(text)
                .ok()
                .and_then(|t| t.get("experiment").cloned())
                .and_then(|e| e.try_into().ok())
                .expect("header"),
        };
        load(&m)
    }

    fn err_of(from: &str, to: &str) -> String {
        assert!(GOOD.contains(from), "{from}");
        let text = GOOD.replacen(from, to, 1);
        match load_text(&text) {
            Ok(_) => panic!("accepted {to:?}"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn the_good_manifest_loads_and_declares_per_variant_statistics() {
        let e = load_text(GOOD).unwrap();
        let s = e.statistics();
        for k in [
            "as_written.ks_radius",
            "fixed.ks_angle",
            "fixed.std_radius",
            "kernel.mean_coef_at_T",
            "ks_critical_value",
        ] {
            assert!(s.contains_key(k), "{k}");
        }
    }

    #[test]
    fn bad_values_are_named() {
        let cases = [
            (
                "scale = 200",
                "scale = -1",
                "dataset.scale must be > 0 (got -1)",
            ),
            ("t_end = 100.0", "t_end = 0.0", "t_end"),
            ("beta_max = 0.02", "beta_max = 0.00001", "beta_max"),
            ("depth = 3", "depth = 0", "network.depth"),
            ("dim = 2", "dim = 3", "network.dim must be 2"),
            ("lr = 0.01", "lr = -0.01", "training.lr"),
            (
                "t_eps = 1e-3\nweighting",
                "t_eps = 200.0\nweighting",
                "training.t_eps must be < sde.t_end = 100 (got 200)",
            ),
            (
                "n_samples = 100",
                "n_samples = 0",
                "sampling.n_samples must be >= 1 (got 0)",
            ),
            (
                "samples_npy = \"as_written\"",
                "samples_npy = \"nope\"",
                "sampling.samples_npy must be the name of one of sampling.variants (got \"nope\")",
            ),
            (
                "name = \"fixed\"",
                "name = \"as_written\"",
                "sampling.variants[1].name must be unique",
            ),
            (
                "name = \"fixed\"",
                "name = \"a b\"",
                "sampling.variants[1].name must be non-empty",
            ),
            (
                "steps = 100, t_eps = 1e-3 }\n\n[[",
                "steps = 0, t_eps = 1e-3 }\n\n[[",
                "sampling.variants[0].sampler.steps must be >= 1 (got 0)",
            ),
            (
                "steps = 100, t_eps = 1e-3 }\n\n[[",
                "steps = 100, t_eps = 100.0 }\n\n[[",
                "sampling.variants[0].sampler.t_eps",
            ),
            (
                "steps = 100, t_eps = 1e-3 }\n\n[[",
                "steps = 100, t_eps = 1e-3, final_denoise = true }\n\n[[",
                "sampling.variants[0].sampler.final_denoise must be false",
            ),
        ];
        for (from, to, want) in cases {
            let msg = err_of(from, to);
            assert!(msg.contains(want), "{to:?}: {msg}");
        }
    }

    #[test]
    fn unknown_fields_and_kinds_are_rejected() {
        let msg = err_of("start = \"matched\"", "start = \"uniform\"");
        assert!(msg.contains("uniform"), "{msg}");
        let msg = err_of("reverse_sde = \"vp\"", "reverse_sde = \"ve\"");
        assert!(msg.contains("ve"), "{msg}");
        let msg = err_of("[training]", "[training]\nseed = 3");
        assert!(msg.contains("training.seed is not allowed"), "{msg}");
        let msg = err_of("start = \"matched\"", "start = \"matched\"\ncolour = 1");
        assert!(msg.contains("colour"), "{msg}");
    }

    /// The matched start of [`Part1Manifest::compute`]: exact draws of the kernel's `p_T`.
    fn matched_start<R: rand::Rng>(sde: &Sde, data: &Ring2d, n: usize, rng: &mut R) -> Vec<f32> {
        forward_marginal_draws(sde, data, sde.t_end(), n, rng)
    }

    #[test]
    fn matched_start_has_the_kernel_moments_at_t() {
        // x_T = m x₀ + σ ε: E|x_T|² = m² E r² + 2σ² with E r² = 1 + 1/k (Gamma(k, rate k)), and
        // the sub-VP kernel at T = 100, β ∈ [1e-4, 0.02]: I = 1.005, m = e^{−0.5025},
        // σ = 1 − e^{−1.005}.
        let sde = SdeTable {
            kind: SdeKind::SubVp,
            beta_min: Some(1e-4),
            beta_max: Some(0.02),
            a: None,
            diffusion: None,
            t_end: 100.0,
        }
        .build()
        .unwrap();
        let m = (-0.5025f64).exp();
        let s = 1.0 - (-1.005f64).exp();
        assert!((sde.mean_coef(100.0) - m).abs() < 1e-12);
        assert!((sde.marginal_std(100.0) - s).abs() < 1e-12);
        let data = Ring2d::new(200.0).unwrap();
        let n = 50_000;
        let x = matched_start(&sde, &data, n, &mut seeding::stream(7, "t", 0));
        assert_eq!(x.len(), 2 * n);
        let sq: Vec<f64> = x
            .chunks_exact(2)
            .map(|p| f64::from(p[0]).powi(2) + f64::from(p[1]).powi(2))
            .collect();
        let (mean, sd) = smoluchowski::metrics::mean_std(&sq);
        let want = m * m * (1.0 + 1.0 / 200.0) + 2.0 * s * s;
        // 4.5 standard errors: false alarm probability < 1e-5.
        let z = (mean - want) / (sd / (n as f64).sqrt());
        assert!(z.abs() < 4.5, "mean |x_T|² {mean} vs {want} (z = {z})");
        // Deterministic in the stream, different across streams.
        assert_eq!(
            x,
            matched_start(&sde, &data, n, &mut seeding::stream(7, "t", 0))
        );
        assert_ne!(
            x,
            matched_start(&sde, &data, n, &mut seeding::stream(8, "t", 0))
        );
    }
}
