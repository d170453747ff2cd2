//! Kind `ring2d-samplers`: every sampler against its number of score evaluations (NFE), on ONE
//! trained ring2d model, next to the same samplers driven by the exact ring2d score.
//!
//! 1. Train a score network with the ring2d recipe ([`super::ring2d::train_score_net`]: same
//!    checkpoints, `--resume`, progress).
//! 2. For each `[[sampling.samplers]]` family (method, grid, `t_eps`, final denoising) and each
//!    NFE budget of `sampling.nfe`, the largest step count whose NFE fits the budget
//!    ([`SamplerConfig::steps_for_nfe`], the solver's own rule); the adaptive Dormand–Prince runs once per tolerance instead and reports
//!    the NFE it used. Each run draws `n_samples` points; their radius and angle are KS-tested
//!    against ring2d's exact marginals and their sliced Wasserstein-2 distance to a fresh data
//!    draw is measured.
//! 3. The network-free floor: the same families driven by [`Ring2dOracle`] (the exact score by
//!    quadrature; ~4 µs per point and evaluation, so a smaller `floor.n_samples` and its own
//!    `floor.nfe` list).
//! 4. The acceptance statistic: among the model's runs with NFE ≤ `sampling.few_step_nfe`, the
//!    one minimising `max(D_r / D_r^ref, D_θ / D_θ^ref)`, where `ref` is sampler
//!    `sampling.reference` at its largest NFE (Euler–Maruyama at 1000 steps).
//!
//! Streams (from the master seed, by name): `training`, `network_init`, `sampling` (one prior
//! draw shared by every run: common random numbers), `floor_sampling`, `reference` (fresh
//! data), `reference_floor`, `sliced_wasserstein`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use smoluchowski::datasets::{Dataset, Ring2d};
use smoluchowski::metrics::{
    angles, ks_one_sample_isf, radii, reference_memory_estimate, sliced_wasserstein_noise_floor,
};
use smoluchowski::nets::{NetScore, ScoreNetConfig};
use smoluchowski::samplers::{
    check_budgets, sample_memory_estimate, sample_planar, PlanarLaw, PlanarRun, SamplerConfig,
    SamplerSpec,
};
use smoluchowski::sde::{ForwardSde, Ring2dOracle, Score, Sde};

use crate::figures::{self, nfe_panel, NfeStyle};
use crate::harness::{Experiment, Figure, KindEntry, RunContext};
use crate::manifest::{self, ExperimentHeader, ManifestText};
use crate::output::{write_npy, OutputDir};
use crate::progress::Progress;
use crate::report;
use crate::seeding::derived_seed;
use crate::stats::{Ks, Rendered, TypedExperiment, Value};
use crate::tables::{DatasetTable, SdeTable, TrainingTable};
use crate::training::{train_score_net, Trained};
use crate::validate::{fmt_f64, Checker};

/// Registration of this kind.
pub const ENTRY: KindEntry = KindEntry {
    kind: "ring2d-samplers",
    summary: "one trained ring2d model, every sampler at NFE 5..1000: KS of radius and angle and \
              sliced W2 vs NFE, beside the same samplers driven by the exact score",
    load,
};

/// Most sampler families per manifest.
const MAX_SAMPLERS: usize = 16;
/// Level of the KS critical value quoted in the report.
pub const ALPHA: f64 = 0.01;

/// `[sampling]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingTable {
    /// Samples per run (model).
    pub n_samples: usize,
    /// NFE budgets.
    pub nfe: Vec<usize>,
    /// The yardstick: this sampler at its largest budget (Euler–Maruyama, 1000 steps).
    pub reference: String,
    /// Acceptance: the best run with NFE ≤ this is compared with the yardstick.
    pub few_step_nfe: usize,
    /// The sampler families.
    pub samplers: Vec<SamplerSpec>,
}

/// `[floor]`: the same samplers with the exact score ([`Ring2dOracle`]).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FloorTable {
    /// Samples per run (the oracle is ~100× slower than the network per point).
    pub n_samples: usize,
    /// NFE budgets.
    pub nfe: Vec<usize>,
    /// Dormand–Prince tolerances with the oracle (default: those of `[sampling]`).
    #[serde(default)]
    pub tolerances: Option<Vec<f64>>,
    /// Radial midpoint nodes of the quadrature (default 14).
    #[serde(default = "default_radial")]
    pub n_radial: usize,
    /// Angular Gauss–Legendre budget per window (default 24).
    #[serde(default = "default_angular")]
    pub n_angular: usize,
}

fn default_radial() -> usize {
    14
}

fn default_angular() -> usize {
    24
}

/// `[evaluation]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationTable {
    /// Fresh data points the sliced Wasserstein distances are measured against.
    pub reference_samples: usize,
    /// Random directions of the sliced Wasserstein distance.
    pub sliced_wasserstein_projections: usize,
}

/// The whole manifest of kind `ring2d-samplers`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ring2dSamplersManifest {
    /// `[experiment]`.
    pub experiment: ExperimentHeader,
    /// `[dataset]`.
    pub dataset: DatasetTable,
    /// `[sde]`.
    pub sde: SdeTable,
    /// `[network]`.
    pub network: ScoreNetConfig,
    /// `[training]` (seed derived from `experiment.seed`).
    pub training: TrainingTable,
    /// `[sampling]`.
    pub sampling: SamplingTable,
    /// `[floor]` (optional: without it no oracle runs).
    #[serde(default)]
    pub floor: Option<FloorTable>,
    /// `[evaluation]`.
    pub evaluation: EvaluationTable,
}

/// One planned run: sampler index, label (`nfe20`, `tol1e-3`), config.
type Plan = (usize, String, SamplerConfig);

impl Ring2dSamplersManifest {
    fn floor_spec(&self, s: &SamplerSpec) -> SamplerSpec {
        let mut s = s.clone();
        if let Some(t) = self.floor.as_ref().and_then(|f| f.tolerances.clone()) {
            s.tolerances = t;
        }
        s
    }

    fn plans(&self, floor: bool) -> Vec<Plan> {
        let nfe = match (&self.floor, floor) {
            (Some(f), true) => &f.nfe,
            (None, true) => return Vec::new(),
            _ => &self.sampling.nfe,
        };
        let mut out = Vec::new();
        for (i, s) in self.sampling.samplers.iter().enumerate() {
            let s = if floor { self.floor_spec(s) } else { s.clone() };
            let runs = s.runs(nfe).unwrap_or_default().into_iter();
            out.extend(runs.map(|(label, config)| (i, label, config)));
        }
        out
    }

    fn check(&self) -> Result<()> {
        let mut c = Checker::new();
        self.experiment.check(&mut c);
        let k = self.dataset.scale;
        c.require(
            k.is_finite() && k >= 2.0,
            "dataset.scale",
            ">= 2",
            fmt_f64(k),
        );
        let sde = self.sde.build();
        if let Err(e) = &sde {
            c.fail(format!("{e}"));
        }
        crate::tables::check_model(&mut c, &self.network, &self.training.0, 2);
        let sp = &self.sampling;
        c.count("sampling.n_samples", sp.n_samples, 1, usize::MAX);
        c.memory(
            "sampling",
            [sample_memory_estimate("n_samples", sp.n_samples, 2)],
        );
        check_budgets(&mut c, "sampling.nfe", &sp.nfe);
        let n_samplers = sp.samplers.len();
        c.count("sampling.samplers (number of)", n_samplers, 1, MAX_SAMPLERS);
        if let Some(f) = &self.floor {
            c.count("floor.n_samples", f.n_samples, 1, usize::MAX);
            c.memory(
                "floor",
                [sample_memory_estimate("n_samples", f.n_samples, 2)],
            );
            check_budgets(&mut c, "floor.nfe", &f.nfe);
            c.count("floor.n_radial", f.n_radial, 4, 1000);
            c.count("floor.n_angular", f.n_angular, 6, 1000);
            for (i, &t) in f.tolerances.iter().flatten().enumerate() {
                c.positive(&format!("floor.tolerances[{i}]"), t);
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        let sde = sde.as_ref().ok();
        for (i, s) in sp.samplers.iter().enumerate() {
            let at = format!("sampling.samplers[{i}]");
            s.check(&mut c, &at, &mut seen, ("sampling.nfe", &sp.nfe), sde);
            let reserved = RESERVED.contains(&s.name.as_str());
            let name = format!("{:?}", s.name);
            c.require(
                !reserved,
                &format!("{at}.name"),
                &format!("none of {RESERVED:?}"),
                name,
            );
            if let Some(f) = &self.floor {
                self.floor_spec(s)
                    .check_runs(&mut c, &at, ("floor.nfe", &f.nfe), sde);
            }
        }
        match sp.samplers.iter().find(|s| s.name == sp.reference) {
            None => c.fail(format!(
                "sampling.reference must be the name of one of sampling.samplers (got {:?})",
                sp.reference
            )),
            Some(s) => c.require(
                !s.adaptive(),
                "sampling.reference",
                "a fixed-step sampler (not dormand_prince)",
                format!("{:?}", sp.reference),
            ),
        }
        c.require(
            sp.nfe.iter().any(|&b| b <= sp.few_step_nfe),
            "sampling.few_step_nfe",
            &format!(">= the smallest budget of sampling.nfe {:?}", sp.nfe),
            sp.few_step_nfe,
        );
        let ev = &self.evaluation;
        c.count(
            "evaluation.reference_samples",
            ev.reference_samples,
            1,
            usize::MAX,
        );
        let refs = reference_memory_estimate("reference_samples", ev.reference_samples, 2);
        c.memory("evaluation", [refs]);
        let k_sw = ev.sliced_wasserstein_projections;
        c.count("evaluation.sliced_wasserstein_projections", k_sw, 1, 10_000);
        Ok(c.finish()?)
    }
}

fn load(m: &ManifestText) -> Result<Box<dyn Experiment>> {
    let mut parsed: Ring2dSamplersManifest = manifest::parse_as(m)?;
    parsed.check().map_err(|e| e.context(m.display.clone()))?;
    parsed.training.0.seed = derived_seed(parsed.experiment.seed, "training");
    Ok(Box::new(parsed))
}

/// Samples one run with a progress bar (`key`) and measures it ([`sample_planar`]).
pub(crate) fn measure_run<M: Score + ?Sized>(
    ctx: &mut RunContext<'_>,
    key: &str,
    sde: &Sde,
    score: &mut M,
    config: &SamplerConfig,
    n_seed: (usize, u64),
    law: &PlanarLaw<'_>,
) -> Result<(PlanarRun, Vec<f64>)> {
    let mut bar = Progress::new(key, config.steps as u64, "steps");
    let out = ctx.time(&format!("sample {key}"), || {
        sample_planar(sde, score, config, n_seed, law, |i| {
            bar.update(i as u64, String::new)
        })
    });
    bar.finish();
    let (r, x) = out.map_err(|e| anyhow!("{key}: {e}"))?;
    let (dr, da) = (r.radius_ks.statistic, r.angle_ks.statistic);
    eprintln!(
        "  {key}: {} steps, NFE {}, D_radius {dr:.5}, D_angle {da:.5}, SW2 {:.5}, {:.1} s",
        r.steps, r.nfe, r.sliced_wasserstein, r.wall_s
    );
    Ok((r, x))
}

/// `<prefix>.<sampler>.<label>.*`: one run.
#[derive(Debug, Default, Serialize)]
pub struct RunStats {
    pub ks_radius: Ks,
    pub ks_angle: Ks,
    pub sliced_wasserstein: Value,
    pub nfe: Value,
}

/// Runs keyed by sampler name, then by label (`nfe20`, `tol1e-3`).
pub type Runs = BTreeMap<String, BTreeMap<String, RunStats>>;

/// `floor.*`: the runs with the exact score and their own yardsticks.
#[derive(Debug, Default, Serialize)]
pub struct FloorStats {
    #[serde(flatten)]
    pub runs: Runs,
    pub ks_critical_value: Value,
    pub sliced_wasserstein_noise_floor: Value,
}

/// `reference.*`: the yardstick's D values.
#[derive(Debug, Default, Serialize)]
pub struct ReferenceStats {
    pub ks_radius: Value,
    pub ks_angle: Value,
}

/// `best_few_step.*`.
#[derive(Debug, Default, Serialize)]
pub struct BestStats {
    pub nfe: Value,
    pub ks_radius: Value,
    pub ks_angle: Value,
}

/// The statistics of a `ring2d-samplers` run.
#[derive(Debug, Default, Serialize)]
pub struct SamplersStats {
    pub model: Runs,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<FloorStats>,
    pub ks_critical_value: Value,
    pub sliced_wasserstein_noise_floor: Value,
    pub reference: ReferenceStats,
    pub best_few_step: BestStats,
    pub best_few_step_ratio_radius: Value,
    pub best_few_step_ratio_angle: Value,
    pub best_few_step_ratio: Value,
    pub final_training_loss: Value,
}

/// The floor: its size, runs (in `plans(true)` order), critical value and SW2 noise floor.
struct Floor {
    n: usize,
    runs: Vec<PlanarRun>,
    crit: f64,
    sw_floor: f64,
}

/// What compute hands to render; `model` is in `plans(false)` order.
pub struct Computed {
    sde: Sde,
    ring: Ring2d,
    trained: Trained,
    final_loss: f64,
    sampling_seed: u64,
    model: Vec<PlanarRun>,
    /// Positions of the yardstick and of the best few-step run in `model`.
    ref_pos: usize,
    best_pos: usize,
    best_x: Vec<f64>,
    crit: f64,
    sw_floor: f64,
    floor: Option<Floor>,
}

/// Report prose, next to the code (`{name}` placeholders, see [`report::fill`]).
const HOW_TO_READ: &str = include_str!("ring2d_samplers/how_to_read.md");
const CHECK_YOURSELF: &str = include_str!("ring2d_samplers/check_yourself.md");
const HEADLINE: &str = include_str!("ring2d_samplers/headline.md");
const SAMPLERS_NOTE: &str = include_str!("ring2d_samplers/samplers_note.md");

/// Top-level names under `floor.` a sampler may not take.
const RESERVED: [&str; 2] = ["ks_critical_value", "sliced_wasserstein_noise_floor"];

impl Ring2dSamplersManifest {
    /// The runs of `plans` keyed by sampler and label: `runs[i]` or placeholders.
    fn runs_stats(&self, plans: &[Plan], runs: Option<&[PlanarRun]>) -> Runs {
        let mut out = Runs::new();
        for (i, (s, label, _)) in plans.iter().enumerate() {
            let stats = runs.map_or_else(RunStats::default, |r| RunStats {
                ks_radius: r[i].radius_ks.into(),
                ks_angle: r[i].angle_ks.into(),
                sliced_wasserstein: r[i].sliced_wasserstein.into(),
                nfe: (r[i].nfe as f64).into(),
            });
            let name = self.sampling.samplers[*s].name.clone();
            out.entry(name).or_default().insert(label.clone(), stats);
        }
        out
    }

    /// `<sampler>.<label>` of plan `i` of the model.
    fn run_name(&self, plans: &[Plan], i: usize) -> String {
        format!("{}.{}", self.sampling.samplers[plans[i].0].name, plans[i].1)
    }
}

impl TypedExperiment for Ring2dSamplersManifest {
    type Stats = SamplersStats;
    type Computed = Computed;

    fn header(&self) -> &ExperimentHeader {
        &self.experiment
    }

    fn declared(&self) -> SamplersStats {
        SamplersStats {
            model: self.runs_stats(&self.plans(false), None),
            floor: self.floor.as_ref().map(|_| FloorStats {
                runs: self.runs_stats(&self.plans(true), None),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn compute(&self, ctx: &mut RunContext<'_>) -> Result<(SamplersStats, Computed)> {
        let seed = ctx.seed;
        let sde = self.sde.build()?;
        let ring = Ring2d::new(self.dataset.scale).map_err(|e| anyhow!("dataset: {e}"))?;
        let ev = &self.evaluation;
        let n = self.sampling.n_samples;
        let ckpts = ctx.checkpoints.clone();
        let (network, training, name) = (&self.network, &self.training.0, &self.experiment.name);
        let trained = ctx.time("train", || {
            train_score_net(name, network, training, &sde, &ring, seed, &ckpts)
        })?;
        let tail = trained.curve.len().saturating_sub(100);
        let final_loss = trained.curve[tail..].iter().map(|r| r.loss).sum::<f64>()
            / (trained.curve.len() - tail).max(1) as f64;
        let reference = ctx.time("reference", || {
            let mut r = vec![0.0; 2 * ev.reference_samples];
            ring.sample_into(&mut crate::seeding::stream(seed, "reference", 0), &mut r);
            r
        });
        let sw = (
            ev.sliced_wasserstein_projections,
            derived_seed(seed, "sliced_wasserstein"),
        );
        let (radial, angular) = (|v| ring.radial_cdf(v), |v| ring.angular_cdf(v));
        let law = PlanarLaw {
            radial_cdf: &radial,
            angular_cdf: &angular,
            reference: Some((&reference, sw.0, sw.1)),
        };
        let sw_floor = |n: usize| {
            let draw = |x: &mut [f64]| {
                ring.sample_into(
                    &mut crate::seeding::stream(seed, "reference_floor", n as u64),
                    x,
                )
            };
            sliced_wasserstein_noise_floor(draw, n, &reference, 2, sw)
        };
        let sampling_seed = derived_seed(seed, "sampling");
        let mut score = NetScore::new(&trained.net, &sde);
        let plans = self.plans(false);
        let (model, ref_pos, best_pos, best_x) =
            self.model_sweep(ctx, (&sde, &mut score), &plans, sampling_seed, &law)?;
        let floor = self.floor_sweep(ctx, (&sde, &ring), &law, &sw_floor)?;
        let crit = ks_one_sample_isf(ALPHA, n);
        let sw_floor = ctx.time("sw_floor", || sw_floor(n));

        let (yard, best) = (&model[ref_pos], &model[best_pos]);
        let (ref_r, ref_a) = (yard.radius_ks.statistic, yard.angle_ks.statistic);
        let (br, ba) = (best.radius_ks.statistic, best.angle_ks.statistic);
        let stats = SamplersStats {
            model: self.runs_stats(&plans, Some(&model)),
            floor: floor.as_ref().map(|f| FloorStats {
                runs: self.runs_stats(&self.plans(true), Some(&f.runs)),
                ks_critical_value: f.crit.into(),
                sliced_wasserstein_noise_floor: f.sw_floor.into(),
            }),
            ks_critical_value: crit.into(),
            sliced_wasserstein_noise_floor: sw_floor.into(),
            reference: ReferenceStats {
                ks_radius: ref_r.into(),
                ks_angle: ref_a.into(),
            },
            best_few_step: BestStats {
                nfe: (best.nfe as f64).into(),
                ks_radius: br.into(),
                ks_angle: ba.into(),
            },
            best_few_step_ratio_radius: (br / ref_r).into(),
            best_few_step_ratio_angle: (ba / ref_a).into(),
            best_few_step_ratio: (br / ref_r).max(ba / ref_a).into(),
            final_training_loss: final_loss.into(),
        };
        let computed = Computed {
            sde,
            ring,
            trained,
            final_loss,
            sampling_seed,
            model,
            ref_pos,
            best_pos,
            best_x,
            crit,
            sw_floor,
            floor,
        };
        Ok((stats, computed))
    }

    fn render(
        &self,
        stats: &SamplersStats,
        c: &Computed,
        ctx: &mut RunContext<'_>,
    ) -> Result<Rendered> {
        let sp = &self.sampling;
        let n = sp.n_samples;
        let out = ctx.out;
        let best_name = self.run_name(&self.plans(false), c.best_pos);
        let figures = ctx.time("write", || -> Result<Vec<Figure>> {
            c.trained
                .net
                .save(&out.file("model.safetensors"))
                .map_err(|e| anyhow!("cannot save the model: {e}"))?;
            write_npy(&out.file("samples.npy"), &[n, 2], &c.best_x)?;
            self.figures(out, c, &best_name)
        })?;
        let mut sections = vec![
            ("Headline".to_string(), self.headline(stats, c, &best_name)),
            ("Samplers".to_string(), self.samplers_section()),
            (
                "Results: trained model".to_string(),
                self.results_table(&self.plans(false), &c.model, (c.crit, c.sw_floor, n)),
            ),
        ];
        if let Some(f) = &c.floor {
            sections.push((
                "Results: exact score (the network-free floor)".to_string(),
                self.results_table(&self.plans(true), &f.runs, (f.crit, f.sw_floor, f.n)),
            ));
        }
        sections.push(("How to read this".into(), self.how_to_read(c)));
        sections.push((
            "Check it yourself (NumPy/SciPy)".into(),
            report::fill(
                CHECK_YOURSELF,
                &[
                    ("best_name", best_name.clone()),
                    ("k", self.dataset.scale.to_string()),
                    ("alpha", ALPHA.to_string()),
                    ("n", n.to_string()),
                ],
            ),
        ));
        Ok(Rendered {
            parameters: self.parameters(c, &best_name),
            figures,
            files: vec![
                (
                    "samples.npy".into(),
                    format!("the {n} samples of the best few-step run `{best_name}` (float64, shape ({n}, 2))"),
                ),
                (
                    "model.safetensors".into(),
                    "the trained network (EMA weights if enabled)".into(),
                ),
            ],
            sections,
        })
    }
}

impl Ring2dSamplersManifest {
    /// Every plan on the trained model in manifest order; returns the runs, the positions of
    /// the yardstick (`sampling.reference` at its most steps) and of the best run with NFE ≤
    /// `few_step_nfe` (smallest `max(D_r / D_r^ref, D_θ / D_θ^ref)`), and the best run's
    /// samples (drawn again: same seed, same samples).
    fn model_sweep<M: Score + ?Sized>(
        &self,
        ctx: &mut RunContext<'_>,
        (sde, score): (&Sde, &mut M),
        plans: &[Plan],
        seed: u64,
        law: &PlanarLaw<'_>,
    ) -> Result<(Vec<PlanarRun>, usize, usize, Vec<f64>)> {
        let sp = &self.sampling;
        let n_seed = (sp.n_samples, seed);
        let mut runs = Vec::with_capacity(plans.len());
        for (i, p) in plans.iter().enumerate() {
            let key = format!("model.{}", self.run_name(plans, i));
            runs.push(measure_run(ctx, &key, sde, score, &p.2, n_seed, law)?.0);
        }
        let ref_idx = sp.samplers.iter().position(|s| s.name == sp.reference);
        let ref_pos = (0..plans.len())
            .filter(|&i| Some(plans[i].0) == ref_idx)
            .max_by_key(|&i| plans[i].2.steps)
            .ok_or_else(|| anyhow!("no reference run"))?;
        let (ref_r, ref_a) = (
            runs[ref_pos].radius_ks.statistic,
            runs[ref_pos].angle_ks.statistic,
        );
        let ratio =
            |r: &PlanarRun| (r.radius_ks.statistic / ref_r).max(r.angle_ks.statistic / ref_a);
        let mut best: Option<(usize, f64)> = None;
        for (i, r) in runs.iter().enumerate() {
            let v = ratio(r);
            if i != ref_pos && r.nfe <= sp.few_step_nfe && best.is_none_or(|b| v < b.1) {
                best = Some((i, v));
            }
        }
        let (best_pos, _) =
            best.ok_or_else(|| anyhow!("no run with NFE <= sampling.few_step_nfe"))?;
        let key = format!("model.{} (again)", self.run_name(plans, best_pos));
        let (_, best_x) = measure_run(ctx, &key, sde, score, &plans[best_pos].2, n_seed, law)?;
        Ok((runs, ref_pos, best_pos, best_x))
    }

    /// The same samplers with the exact score ([`Ring2dOracle`]), if `[floor]` is given.
    fn floor_sweep(
        &self,
        ctx: &mut RunContext<'_>,
        (sde, ring): (&Sde, &Ring2d),
        law: &PlanarLaw<'_>,
        sw_floor: &dyn Fn(usize) -> f64,
    ) -> Result<Option<Floor>> {
        let Some(f) = &self.floor else {
            return Ok(None);
        };
        let mut oracle = Ring2dOracle::with_resolution(*sde, ring.clone(), f.n_radial, f.n_angular)
            .map_err(|e| anyhow!("floor: {e}"))?;
        let plans = self.plans(true);
        let n_seed = (f.n_samples, derived_seed(ctx.seed, "floor_sampling"));
        let mut runs = Vec::with_capacity(plans.len());
        for (s, label, config) in &plans {
            let key = format!("floor.{}.{label}", self.sampling.samplers[*s].name);
            runs.push(measure_run(ctx, &key, sde, &mut oracle, config, n_seed, law)?.0);
        }
        Ok(Some(Floor {
            n: f.n_samples,
            runs,
            crit: ks_one_sample_isf(ALPHA, f.n_samples),
            sw_floor: sw_floor(f.n_samples),
        }))
    }

    fn figures(&self, out: &OutputDir, c: &Computed, best_name: &str) -> Result<Vec<Figure>> {
        let sp = &self.sampling;
        let mut figs = vec![self.nfe_figure(
            out,
            ("ks_vs_nfe_model.png", "trained model"),
            (&self.plans(false), &c.model),
            (c.crit, c.sw_floor),
            sp.n_samples,
        )?];
        if let Some(f) = &c.floor {
            figs.push(self.nfe_figure(
                out,
                ("ks_vs_nfe_floor.png", "exact score (Ring2dOracle)"),
                (&self.plans(true), &f.runs),
                (f.crit, f.sw_floor),
                f.n,
            )?);
        }
        let n = c.best_x.len() / 2;
        let caption = format!(
            "The best few-step run on the trained model ({best_name}) in the notes' layout: 2-D \
             histogram of the {n} samples, the angle histogram against the exact angular density, \
             the radius histogram against the exact Gamma(k, rate k) density, k = {}.",
            c.ring.scale()
        );
        let titles = (
            format!("{best_name} (n = {n}), 2-D histogram"),
            "samples (trained model)",
        );
        let file = ("ring2d_best_few_step.png", caption);
        figs.push(best_figure(out, &c.ring, &c.best_x, file, titles)?);
        Ok(figs)
    }

    fn headline(&self, s: &SamplersStats, c: &Computed, best_name: &str) -> String {
        let sp = &self.sampling;
        let (ref_r, ref_a) = (s.reference.ks_radius.value, s.reference.ks_angle.value);
        let (br, ba) = (
            s.best_few_step.ks_radius.value,
            s.best_few_step.ks_angle.value,
        );
        let verdict = if s.best_few_step_ratio.value <= 1.5 {
            "**reached**"
        } else {
            "**not reached**"
        };
        let plans = self.plans(false);
        let (yard, best) = (&c.model[c.ref_pos], &c.model[c.best_pos]);
        report::fill(
            HEADLINE,
            &[
                ("ref_name", self.run_name(&plans, c.ref_pos)),
                ("ref_steps", yard.steps.to_string()),
                ("ref_nfe", yard.nfe.to_string()),
                ("ref_r", format!("{ref_r:.5}")),
                ("ref_a", format!("{ref_a:.5}")),
                ("few", sp.few_step_nfe.to_string()),
                ("best_name", best_name.to_string()),
                ("bs", best.steps.to_string()),
                ("bn", best.nfe.to_string()),
                ("br", format!("{br:.5}")),
                ("rr", format!("{:.2}", br / ref_r)),
                ("ba", format!("{ba:.5}")),
                ("ra", format!("{:.2}", ba / ref_a)),
                ("verdict", verdict.to_string()),
            ],
        )
    }

    fn samplers_section(&self) -> String {
        let mut samplers_md = String::from(
            "| sampler | method, grid, t_eps | NFE as a function of the steps |\n|---|---|---|\n",
        );
        for s in &self.sampling.samplers {
            let _ = writeln!(
                samplers_md,
                "| {} | {} | {} |",
                s.name,
                s.describe(),
                s.nfe_rule()
            );
        }
        samplers_md.push('\n');
        samplers_md.push_str(&report::fill(SAMPLERS_NOTE, &[]));
        samplers_md
    }

    fn results_table(
        &self,
        plans: &[Plan],
        runs: &[PlanarRun],
        (crit, swf, nn): (f64, f64, usize),
    ) -> String {
        let sp = &self.sampling;
        let mut t = String::from(
            "| sampler | budget | steps | NFE | D radius (p) | D angle (p) | SW₂ | wall s |\n\
             |---|---|---:|---:|---|---|---:|---:|\n",
        );
        for ((s, label, _), r) in plans.iter().zip(runs) {
            let mark = |d: f64| if d < crit { "" } else { " *" };
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {:.5}{} ({:.3}) | {:.5}{} ({:.3}) | {:.5} | {:.1} |",
                sp.samplers[*s].name,
                label,
                r.steps,
                r.nfe,
                r.radius_ks.statistic,
                mark(r.radius_ks.statistic),
                r.radius_ks.pvalue,
                r.angle_ks.statistic,
                mark(r.angle_ks.statistic),
                r.angle_ks.pvalue,
                r.sliced_wasserstein,
                r.wall_s
            );
        }
        let _ = write!(
            t,
            "\nn = {nn} per run. `*`: D above the KS critical value {crit:.5} (α = {ALPHA}), i.e. \
             distinguishable from ring2d at this n. SW₂ noise floor (two independent data \
             draws of these sizes): {swf:.5}."
        );
        t
    }

    fn how_to_read(&self, c: &Computed) -> String {
        let f = self.floor.as_ref();
        let sde = &c.sde;
        report::fill(
            HOW_TO_READ,
            &[
                ("steps", self.training.0.steps.to_string()),
                ("final_loss", format!("{:.4}", c.final_loss)),
                ("k", self.dataset.scale.to_string()),
                (
                    "k_sw",
                    self.evaluation.sliced_wasserstein_projections.to_string(),
                ),
                ("nref", self.evaluation.reference_samples.to_string()),
                ("nr", f.map_or(0, |f| f.n_radial).to_string()),
                ("na", f.map_or(0, |f| f.n_angular).to_string()),
                ("fnn", f.map_or(0, |f| f.n_samples).to_string()),
                (
                    "fnfe",
                    format!("{:?}", f.map(|f| f.nfe.clone()).unwrap_or_default()),
                ),
                ("s0", format!("{:.4}", 1.0 / self.dataset.scale.sqrt())),
                (
                    "smax",
                    format!(
                        "{:.0}",
                        sde.marginal_std(sde.t_end()) / sde.mean_coef(sde.t_end())
                    ),
                ),
            ],
        )
    }

    /// Derived parameters echoed in metrics.json.
    fn parameters(&self, c: &Computed, best_name: &str) -> serde_json::Value {
        let sp = &self.sampling;
        let run_json = |plans: Vec<Plan>, runs: &[PlanarRun]| {
            (plans.iter().zip(runs))
                .map(|((s, label, _), r)| {
                    json!({
                        "sampler": sp.samplers[*s].name,
                        "family": sp.samplers[*s].describe(),
                        "label": label,
                        "steps": r.steps,
                        "nfe": r.nfe,
                        "wall_time_s": r.wall_s,
                        "d_radius": r.radius_ks.statistic,
                        "d_angle": r.angle_ks.statistic,
                        "sliced_wasserstein": r.sliced_wasserstein,
                    })
                })
                .collect::<Vec<_>>()
        };
        json!({
            "ks_alpha": ALPHA,
            "ks_critical_value": c.crit,
            "sampling_seed": c.sampling_seed,
            "training_seed": self.training.0.seed,
            "resumed_from_step": c.trained.resumed_from,
            "train_steps_per_s": c.trained.steps_per_sec,
            "best_few_step_run": best_name,
            "model_runs": run_json(self.plans(false), &c.model),
            "floor_runs": c.floor.as_ref().map(|f| run_json(self.plans(true), &f.runs)),
        })
    }

    /// KS D (radius, angle) and SW₂ against NFE, log–log, one curve per sampler family, with
    /// the KS critical value and the SW₂ noise floor `(crit, sw_floor)`.
    fn nfe_figure(
        &self,
        out: &OutputDir,
        (file, what): (&str, &str),
        (plans, runs): (&[Plan], &[PlanarRun]),
        (crit, sw_floor): (f64, f64),
        n: usize,
    ) -> Result<Figure> {
        let style = NfeStyle {
            x_pad: 0.1,
            y_pad: (0.1, 0.5),
            radius: 3,
            viridis_max: 0.95,
        };
        let panel = |labels: (&str, &str), bar: (f64, String), pick: &dyn Fn(&PlanarRun) -> f64| {
            let curves: Vec<(String, Vec<(usize, f64)>)> = (self.sampling.samplers.iter())
                .enumerate()
                .map(|(i, s)| {
                    let pts = plans.iter().zip(runs).filter(|(p, _)| p.0 == i);
                    (s.name.clone(), pts.map(|(_, m)| (m.nfe, pick(m))).collect())
                })
                .collect();
            nfe_panel(labels, &curves, bar, &style)
        };
        let ks_bar = || (crit, format!("KS critical value, α = {ALPHA}"));
        let panels = [
            panel(("radius: KS D vs NFE", "KS D"), ks_bar(), &|m| {
                m.radius_ks.statistic
            }),
            panel(("angle: KS D vs NFE", "KS D"), ks_bar(), &|m| {
                m.angle_ks.statistic
            }),
            panel(
                ("2-D: sliced W₂ vs NFE", "SW₂"),
                (sw_floor, "noise floor (data vs data)".into()),
                &|m| m.sliced_wasserstein,
            ),
        ];
        figures::draw_row(&out.file(file), &panels, (640, 540))?;
        Ok(Figure {
            file: file.into(),
            caption: format!(
                "Samplers driven by the {what} (n = {n} per run): one-sample KS distance of the radius \
                 (left) and the angle (middle), and the sliced Wasserstein-2 distance to fresh data \
                 (right), against the number of score evaluations (log₁₀ NFE; y log-scaled). One curve \
                 per sampler; black: the KS critical value at α = {ALPHA} (left, middle) and the SW₂ \
                 of two independent data draws (right)."
            ),
        })
    }
}

/// The notes' layout for one run's samples `x`: 2-D histogram | angle histogram vs exact |
/// radius histogram vs exact, written to `file` with `caption`; `(histogram title, label of
/// the samples)`.
pub(crate) fn best_figure(
    out: &OutputDir,
    ring: &Ring2d,
    x: &[f64],
    (file, caption): (&str, String),
    (title, label): (String, &str),
) -> Result<Figure> {
    let panels = super::ring2d::notes_layout_panels(ring, x, &radii(x), &angles(x), title, label)?;
    figures::draw_row(&out.file(file), &panels, (600, 560))?;
    Ok(Figure {
        file: file.into(),
        caption,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_text(text: &str) -> ManifestText {
        let header = ExperimentHeader {
            name: "t".into(),
            kind: "ring2d-samplers".into(),
            description: "d".into(),
            seed: 1,
        };
        ManifestText {
            display: "t.toml".into(),
            text: text.into(),
            header,
        }
    }

    const GOOD: &str = r#"
[experiment]
name = "t"
kind = "ring2d-samplers"
description = "d"
seed = 1
[dataset]
scale = 200
[sde]
kind = "vp"
beta_min = 0.1
beta_max = 20.0
t_end = 1.0
[network]
dim = 2
width = 16
depth = 2
activation = "relu"
time_embedding = { fourier = { frequencies = 4, max_frequency = 16.0 } }
output = "noise"
[training]
steps = 10
batch_size = 16
optimizer = { kind = "adam" }
lr = 1e-3
lr_schedule = { kind = "constant" }
t_eps = 1e-5
weighting = "sigma2"
data = { kind = "fresh" }
[sampling]
n_samples = 100
nfe = [5, 10]
reference = "em"
few_step_nfe = 10
[[sampling.samplers]]
name = "em"
method = "euler_maruyama"
t_eps = 1e-3
[[sampling.samplers]]
name = "dp"
method = { dormand_prince = { rtol = 1e-3, atol = 1e-3 } }
t_eps = 1e-3
tolerances = [1e-2, 1e-3]
[floor]
n_samples = 10
nfe = [5]
[evaluation]
reference_samples = 100
sliced_wasserstein_projections = 4
"#;

    fn load_err(text: &str) -> String {
        match load(&manifest_text(text)) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn a_good_manifest_loads_and_declares_its_statistics() {
        let m: Ring2dSamplersManifest = manifest::parse_as(&manifest_text(GOOD)).unwrap();
        m.check().unwrap();
        let s = crate::harness::Experiment::statistics(&m);
        for k in [
            "model.em.nfe5.ks_radius",
            "model.em.nfe10.ks_angle",
            "model.dp.tol1e-2.nfe",
            "model.dp.tol1e-3.sliced_wasserstein",
            "floor.em.nfe5.ks_radius",
            "floor.dp.tol1e-3.ks_radius",
            "best_few_step_ratio_radius",
            "best_few_step_ratio_angle",
        ] {
            assert!(s.contains_key(k), "{k} missing from {:?}", s.keys());
        }
        assert!(!s.contains_key("floor.em.nfe10.ks_radius"));
    }

    #[test]
    fn unknown_key_is_rejected_with_its_name() {
        let e = load_err(&GOOD.replace("few_step_nfe = 10", "few_step_nfe = 10\nfew_steps = 3"));
        assert!(e.contains("few_steps"), "{e}");
    }

    #[test]
    fn nfe_zero_is_rejected_with_field_and_value() {
        let e = load_err(&GOOD.replace("nfe = [5, 10]", "nfe = [0, 10]"));
        assert!(e.contains("sampling.nfe[0]") && e.contains('0'), "{e}");
    }

    #[test]
    fn unknown_method_is_rejected() {
        let e = load_err(&GOOD.replace("\"euler_maruyama\"", "\"runge_kutta_9\""));
        assert!(e.contains("runge_kutta_9"), "{e}");
    }

    #[test]
    fn other_bad_values_name_the_field() {
        let e = load_err(&GOOD.replace("reference = \"em\"", "reference = \"ddim\""));
        assert!(
            e.contains("sampling.reference") && e.contains("ddim"),
            "{e}"
        );
        let e = load_err(&GOOD.replace("nfe = [5, 10]", "nfe = [10, 5]"));
        assert!(e.contains("strictly increasing"), "{e}");
        // A Heun budget of 1 fits no step.
        let e = load_err(&GOOD.replace(
            "method = \"euler_maruyama\"\nt_eps = 1e-3",
            "method = \"euler_maruyama\"\nt_eps = 1e-3\n[[sampling.samplers]]\nname = \"h\"\nmethod = \"probability_flow_heun\"\nt_eps = 1e-3",
        ).replace("nfe = [5]", "nfe = [1]"));
        assert!(e.contains("floor.nfe budget 1"), "{e}");
        let e = load_err(&GOOD.replace("tolerances = [1e-2, 1e-3]", "tolerances = [-1.0]"));
        assert!(e.contains("tolerances[0]"), "{e}");
    }

    #[test]
    fn max_nfe_limits_the_budgets_of_one_sampler() {
        let text = GOOD.replace(
            "method = \"euler_maruyama\"\nt_eps = 1e-3",
            "method = \"euler_maruyama\"\nt_eps = 1e-3\n[[sampling.samplers]]\nname = \"sde3\"\nmethod = { dpm_solver_pp_3m_sde = { eta = 0.3, curvature = 0.5 } }\nt_eps = 3e-3\ngrid = { truncated_log_snr = { sigma_max = 30.0 } }\nmax_nfe = 5",
        );
        let m: Ring2dSamplersManifest = manifest::parse_as(&manifest_text(&text)).unwrap();
        m.check().unwrap();
        let s = crate::harness::Experiment::statistics(&m);
        assert!(s.contains_key("model.sde3.nfe5.ks_radius"));
        assert!(s.contains_key("floor.sde3.nfe5.ks_angle"));
        assert!(!s.contains_key("model.sde3.nfe10.ks_radius"));
        assert!(s.contains_key("model.em.nfe10.ks_radius"));
        // A max_nfe below every budget leaves the sampler nothing to run.
        let e = load_err(&text.replace("max_nfe = 5", "max_nfe = 4"));
        assert!(
            e.contains("sampling.samplers[1].max_nfe") && e.contains('4'),
            "{e}"
        );
        // The sampler's own parameters are checked with their names.
        let e = load_err(&text.replace("curvature = 0.5", "curvature = 2.0"));
        assert!(e.contains("method.curvature") && e.contains('2'), "{e}");
    }
}
