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

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use smoluchowski::core::MemoryEstimate;
use smoluchowski::datasets::Ring2d;
use smoluchowski::metrics::{angles, evaluate_planar, ks_one_sample_isf, radii, PlanarEvaluation};
use smoluchowski::nets::{NetOutput, NetScore, ScoreNetConfig, TimeEmbedding};
use smoluchowski::samplers::{sample_from_with_progress, sample_with_progress, SamplerConfig};
use smoluchowski::sde::{forward_marginal_draws, ForwardSde, Ring2dOracle, Score, Sde};

use super::ring2d::{
    check_planar_memory, check_ring, curve_csv, derived_seed, final_loss, ring_half_width,
    run_sampler, save_model_and_write, train_score_net, DatasetTable, SdeKind, SdeTable,
    TrainThroughput, Trained, TrainingTable,
};
use crate::figures::{self, Exact, Panel};
use crate::harness::{Experiment, Figure, KindEntry, RunContext};
use crate::manifest::{self, ExperimentHeader, ManifestText};
use crate::output::{write_npy, write_text};
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
        check_ring(&mut c, k);
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
        let n = ("sampling.n_samples", sp.n_samples);
        c.count(n.0, n.1, 1, usize::MAX);
        // Every variant's f64 samples are kept (16 B a row each), plus the f32 matched start.
        let kept = MemoryEstimate::linear(n.0, n.1, 16 * sp.variants.len() as u128 + 8, 0);
        check_planar_memory(&mut c, n, None, None, Some(kept));
        let n_variants = sp.variants.len();
        c.count("sampling.variants (number of)", n_variants, 1, MAX_VARIANTS);
        let mut seen = std::collections::BTreeSet::new();
        for (i, v) in sp.variants.iter().enumerate() {
            let at = format!("sampling.variants[{i}]");
            c.unique_name(&mut seen, &format!("{at}.name"), &v.name);
            let steps_path = format!("{at}.sampler.steps");
            c.count(&steps_path, v.sampler.steps, 1, MAX_STEPS);
            if v.score == ScoreSource::Oracle {
                c.require(
                    k.is_finite() && k >= 2.0,
                    "dataset.scale",
                    &format!(">= 2 for the oracle score of {at}"),
                    fmt_f64(k),
                );
            }
            let rev_path = format!("{at}.reverse_sde");
            c.require(
                v.reverse_sde != SdeKind::Ou,
                &rev_path,
                "vp or sub_vp",
                "ou",
            );
            let rev = self.sde.with_kind(v.reverse_sde).build();
            if let (Ok(rev), true) = (rev, v.sampler.steps <= MAX_STEPS) {
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
    eval: PlanarEvaluation,
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
const ATTRIBUTION: &str = include_str!("ring2d_part1/attribution.md");
const VARIANTS: &str = include_str!("ring2d_part1/variants.md");

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
            final_training_loss: final_loss(&trained.curve).0.into(),
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
        let (n, crit) = (self.sampling.n_samples, run.crit);
        let npy = run
            .measured
            .iter()
            .find(|m| m.variant.name == self.sampling.samples_npy)
            .ok_or_else(|| anyhow!("samples_npy names no variant"))?;
        save_model_and_write(ctx, &run.trained, |out| {
            write_npy(&out.file("samples.npy"), &[n, 2], &npy.samples)?;
            write_text(&out.file("loss_curve.csv"), &curve_csv(&run.trained.curve))
        })?;
        let out = ctx.out;
        let figures = ctx.time("figures", || -> Result<Vec<Figure>> {
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
            ks_radius: m.eval.radius_ks.into(),
            ks_angle: m.eval.angle_ks.into(),
            mean_radius: m.eval.mean_radius.into(),
            std_radius: m.eval.std_radius.into(),
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
        let rev = self.sde.with_kind(v.reverse_sde).build()?;
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
        let (cfg, label) = (&v.sampler, format!("sampling.variants {:?}", v.name));
        let (sampled, x, wall_s) = ctx.time(&format!("sample {}", v.name), || {
            run_sampler(&label, cfg.steps, |p| match v.start {
                Start::StandardNormal => {
                    sample_with_progress(&rev, score, cfg, n, sampling_seed, None, p)
                }
                Start::Matched => {
                    let x_t = matched.cloned().expect("drawn when a variant needs it");
                    sample_from_with_progress(&rev, score, cfg, x_t, sampling_seed, None, p)
                }
            })
        })?;
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
            eval: e,
            samples: x,
        })
    }

    fn parameters(&self, sde: &Sde, run: &Part1Run, seed: u64) -> Result<serde_json::Value> {
        let t_end = sde.t_end();
        let vp = self.sde.with_kind(SdeKind::Vp).build()?;
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
                "d_radius": m.eval.radius_ks.statistic,
                "d_angle": m.eval.angle_ks.statistic,
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
            m.eval.radius_ks.statistic,
            m.eval.angle_ks.statistic,
            m.variant.name,
            m.variant.sampler.steps
        ),
        None => "— (not run)".into(),
    };
    let at = |k, s| fmt(cell(k, s));
    report::fill(
        ATTRIBUTION,
        &[
            ("n", n.to_string()),
            ("vp_normal", at(SdeKind::Vp, Start::StandardNormal)),
            ("vp_matched", at(SdeKind::Vp, Start::Matched)),
            ("sub_normal", at(SdeKind::SubVp, Start::StandardNormal)),
            ("sub_matched", at(SdeKind::SubVp, Start::Matched)),
            ("alpha", ALPHA.to_string()),
            ("crit", format!("{crit:.4}")),
            ("typ", format!("{:.4}", 0.8687 / (n as f64).sqrt())),
        ],
    )
}

fn variant_table(measured: &[Measured], crit: f64, n: usize) -> String {
    let mut rows = String::new();
    for m in measured {
        let (v, e) = (&m.variant, &m.eval);
        let _ = writeln!(
            rows,
            "| {} | {:?} | {} | {} | {:?} (t_eps {}) | {} | {:.5} ({:.2e}) | {:.5} ({:.2e}) | {:.4} | {:.4} | {:.1} |",
            v.name,
            v.score,
            kind_name(v.reverse_sde),
            start_name(v.start),
            v.sampler.method,
            fmt_f64(v.sampler.t_eps),
            v.sampler.steps,
            e.radius_ks.statistic,
            e.radius_ks.pvalue,
            e.angle_ks.statistic,
            e.angle_ks.pvalue,
            e.mean_radius,
            e.std_radius,
            m.wall_s,
        );
    }
    let vars = [
        ("alpha", ALPHA.to_string()),
        ("n", n.to_string()),
        ("crit", format!("{crit:.5}")),
        ("rows", rows),
    ];
    report::fill(VARIANTS, &vars)
}

impl Part1Manifest {
    fn how_to_read(&self, sde: &Sde, n: usize, crit: f64) -> String {
        let t = sde.t_end();
        let (m, s) = (sde.mean_coef(t), sde.marginal_std(t));
        let vp_s = self
            .sde
            .with_kind(SdeKind::Vp)
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
        let (name, e) = (&m.variant.name, &m.eval);
        let (d_r, d_t) = (e.radius_ks.statistic, e.angle_ks.statistic);
        let title = format!("{name} (D_r {d_r:.3}, D_θ {d_t:.3})");
        panels.push(figures::density_heatmap(
            &m.samples,
            ring_half_width(data),
            140,
            title,
        )?);
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

/// Radius and angle histograms of every variant against the exact densities.
fn marginals_figure(
    out: &crate::output::OutputDir,
    data: &Ring2d,
    measured: &[Measured],
) -> Result<Figure> {
    let k = data.scale();
    let sd = 1.0 / k.sqrt();
    let pi = std::f64::consts::PI;
    let r: Vec<Vec<f64>> = measured.iter().map(|m| radii(&m.samples)).collect();
    let th: Vec<Vec<f64>> = measured.iter().map(|m| angles(&m.samples)).collect();
    // Radius range: the exact ±7 sd, widened to the variants' 0.5 % / 99.5 % quantiles.
    let r_sets: Vec<&[f64]> = r.iter().map(|x| x.as_slice()).collect();
    let exact_r = ((1.0 - 7.0 * sd).max(0.0), 1.0 + 7.0 * sd);
    let (r_lo, r_hi) = figures::widen_to_quantiles(exact_r, &r_sets, 0.005);
    fn series<'a>(
        measured: &[Measured],
        x: &'a [Vec<f64>],
        d: impl Fn(&Measured) -> f64,
    ) -> Vec<(String, &'a [f64])> {
        let label = |m: &Measured| format!("{} (D {:.3})", m.variant.name, d(m));
        let pairs = measured.iter().zip(x);
        pairs.map(|(m, x)| (label(m), x.as_slice())).collect()
    }
    let radial = Exact {
        pdf: &|r| data.radial_pdf(r),
        points: 800,
        label: format!("exact Gamma({k}, rate {k})"),
    };
    let angular = Exact {
        pdf: &|t| data.angular_pdf(t),
        points: 1200,
        label: "exact 1/(8 max(cos²θ, sin²θ))".into(),
    };
    let r_series = series(measured, &r, |m| m.eval.radius_ks.statistic);
    let a_series = series(measured, &th, |m| m.eval.angle_ks.statistic);
    let radius = Panel {
        title: "radius r = |x|".into(),
        x_label: "r".into(),
        ..figures::step_histograms_vs_exact(&r_series, (r_lo.max(0.0), r_hi), 120, &radial)?
    };
    let angle = Panel {
        title: "angle θ = atan2(y, x)".into(),
        x_label: "θ".into(),
        y_range: Some((0.0, 0.42)),
        legend: figures::Legend::UpperLeft,
        ..figures::step_histograms_vs_exact(&a_series, (-pi, pi), 120, &angular)?
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
                "{ method = \"euler_maruyama\", steps = 100, t_eps = 1e-3 }\n\n[[",
                "{ method = \"euler_maruyama\", steps = 0, t_eps = 1e-3 }\n\n[[",
                "sampling.variants[0].sampler.steps must be >= 1 (got 0)",
            ),
            (
                "{ method = \"euler_maruyama\", steps = 100, t_eps = 1e-3 }\n\n[[",
                "{ method = \"euler_maruyama\", steps = 100, t_eps = 100.0 }\n\n[[",
                "sampling.variants[0].sampler.t_eps",
            ),
            (
                "{ method = \"euler_maruyama\", steps = 100, t_eps = 1e-3 }\n\n[[",
                "{ method = \"euler_maruyama\", steps = 100, t_eps = 1e-3, final_denoise = true }\n\n[[",
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
