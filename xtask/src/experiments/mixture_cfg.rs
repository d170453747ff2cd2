//! Kind `mixture-cfg`: class-conditional sampling and classifier-free guidance on a labelled
//! Gaussian mixture, against exact conditional laws (issue 12, item 3).
//!
//! A class-conditional MLP ([`ConditionalMlp`]) is trained by denoising score matching with label
//! dropout on a mixture of equal isotropic Gaussians on a circle (label = component). Under the
//! affine forward SDE the class law stays Gaussian, `p_t(x | c) = N(m μ_c, (m² s² + σ²) I)`, and
//! `p_t(x)` is the mixture ([`LabelledMixtureOracle`]), so the guided score
//! `(1 + w) ∇ log p_t(x | c) − w ∇ log p_t(x)` is exact at every `t`. Three measurements:
//!
//! - (a) `w = 0`: network samples of every class against the exact class law `N(μ_c, s² I)`: KS
//!   of the projections on `evaluation.projections` directions (Bonferroni over classes ×
//!   directions) and the energy distance against fresh class draws, next to its noise floor
//!   (two fresh draws); the exact-score sampler beside it (discretisation alone);
//! - (b) `w > 0`: network-guided against exact-score-guided samples of `guidance.label`, same
//!   sampler, same seed (so only the score differs): projection KS and energy distance against
//!   the floor of two independent exact-guided halves — network error, separated from guidance;
//! - (c) exact-guided samples against the tilted law `p₀(x | c)^{1+w} p₀(x)^{−w}`
//!   ([`TiltedMixture`], sampled by MALA on its exact density from the class law): guidance
//!   with the true scores does not sample the tilted law; the energy distance and the shift of
//!   the mean along `μ_c` measure by how much, against `w`.
//!
//! NFE: a guided step counts 2 network evaluations (conditional + unconditional).
//!
//! Seeds (by name from `experiment.seed`): `network_init`, `training`, `sampling` (one seed for
//! every sampler run: common random numbers), `sampling_second_half`, `reference`, `mala`.

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use smoluchowski::datasets::{draws_memory, CircleMixtureConfig, Dataset, GaussianMixture};
use smoluchowski::losses::LabelledDsmObjective;
use smoluchowski::metrics::{energy_distance, ks_one_sample, ks_two_sample};
use smoluchowski::nets::{
    ConditionalMlp, ConditionalMlpConfig, ConditionalNetScore, ScoreNetConfig,
};
use smoluchowski::samplers::langevin::{langevin_chains, LangevinConfig, LangevinMethod};
use smoluchowski::samplers::{
    sample, sample_memory_estimate, Guidance, Guided, SamplerConfig, TiltedMixture,
};
use smoluchowski::sde::{normal_cdf, ConditionalScore, LabelledMixtureOracle, Score};

use crate::figures::{self, scatter_panel};
use crate::harness::{Experiment, Figure, KindEntry, RunContext};
use crate::manifest::{self, ExperimentHeader, ManifestText};
use crate::output::write_npy;
use crate::report;
use crate::seeding::{self, derived_seed};
use crate::stats::{Ks, Rendered, TypedExperiment, Value};
use crate::tables::{check_model, SdeTable, TrainingTable};
use crate::training::{curve_csv, train_with_objective, CurveRow};
use crate::validate::Checker;

/// Registration of this kind.
pub const ENTRY: KindEntry = KindEntry {
    kind: "mixture-cfg",
    summary: "class-conditional MLP and classifier-free guidance on a labelled Gaussian mixture vs exact conditional and exact-guided laws, and the tilted-law gap of exact guidance",
    load,
};

const HOW_TO_READ: &str = include_str!("mixture_cfg/how_to_read.md");

/// `[conditioning]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConditioningTable {
    /// Probability that a training label is replaced by the null label.
    pub label_dropout: f64,
}

/// `[sampling]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingTable {
    /// The sampler of every run (network and exact, every `w`).
    pub sampler: SamplerConfig,
    /// Samples per class and per setting.
    pub n_per_class: usize,
}

/// `[guidance]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GuidanceTable {
    /// The class guided towards.
    pub label: usize,
    /// Guidance weights `w > 0` (the `w = 0` row is measured for every class).
    pub weights: Vec<f64>,
    /// Optional guidance interval `[t_lo, t_hi]`.
    #[serde(default)]
    pub interval: Option<[f64; 2]>,
}

/// `[tilted]`: MALA on the tilted law.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TiltedTable {
    /// MALA step `ε` (time step of `dx = ∇log q dt + √2 dW`).
    pub mala_step: f64,
    /// MALA steps per chain (one independent chain per sample, its final state kept).
    pub mala_steps: usize,
}

/// `[evaluation]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationTable {
    /// Projection directions `u_k = (cos kπ/P, sin kπ/P)`, `k < P`.
    pub projections: usize,
    /// Points per set in each energy distance (`2 ×` this must be `≤ n_per_class`).
    pub energy_subsample: usize,
}

/// The whole manifest of kind `mixture-cfg`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MixtureCfgManifest {
    /// `[experiment]`.
    pub experiment: ExperimentHeader,
    /// `[mixture]`: the labelled data law.
    pub mixture: CircleMixtureConfig,
    /// `[sde]`.
    pub sde: SdeTable,
    /// `[network]`: the MLP the label embedding is added to.
    pub network: ScoreNetConfig,
    /// `[conditioning]`.
    pub conditioning: ConditioningTable,
    /// `[training]`.
    pub training: TrainingTable,
    /// `[sampling]`.
    pub sampling: SamplingTable,
    /// `[guidance]`.
    pub guidance: GuidanceTable,
    /// `[tilted]`.
    pub tilted: TiltedTable,
    /// `[evaluation]`.
    pub evaluation: EvaluationTable,
}

/// Largest number of guidance weights.
const MAX_WEIGHTS: usize = 16;

impl MixtureCfgManifest {
    fn check(&self) -> Result<()> {
        let mut c = Checker::new();
        self.experiment.check(&mut c);
        self.mixture.check(&mut c, "mixture");
        self.sde.check(&mut c, "sde", false);
        check_model(&mut c, &self.network, &self.training.0, 2);
        let p = self.conditioning.label_dropout;
        c.require(
            (0.0..1.0).contains(&p) && p > 0.0,
            "conditioning.label_dropout",
            "in (0, 1) (the null label must be trained)",
            p,
        );
        if let Ok(sde) = self.sde.build() {
            if let Err(e) = self.sampling.sampler.time_grid(&sde) {
                c.fail(e.under("sampling.sampler").to_string());
            }
        }
        let n = self.sampling.n_per_class;
        c.count("sampling.n_per_class", n, 2, usize::MAX);
        c.memory("sampling", [sample_memory_estimate("n_per_class", n, 2)]);
        let g = &self.guidance;
        c.require(
            g.label < self.mixture.components,
            "guidance.label",
            &format!("< mixture.components = {}", self.mixture.components),
            g.label,
        );
        c.count(
            "guidance.weights (number of)",
            g.weights.len(),
            1,
            MAX_WEIGHTS,
        );
        for (i, &w) in g.weights.iter().enumerate() {
            c.require(
                w.is_finite() && w > 0.0,
                &format!("guidance.weights[{i}]"),
                "finite and > 0",
                w,
            );
            if let Err(e) = Guidance::new(w).validate("guidance") {
                c.fail(e.to_string());
            }
        }
        if let Some(iv) = g.interval {
            let gd = Guidance {
                weight: 1.0,
                interval: Some(iv),
            };
            if let Err(e) = gd.validate("guidance") {
                c.fail(e.to_string());
            }
        }
        c.positive("tilted.mala_step", self.tilted.mala_step);
        c.count("tilted.mala_steps", self.tilted.mala_steps, 1, 10_000_000);
        let e = &self.evaluation;
        c.count("evaluation.projections", e.projections, 1, 64);
        c.count("evaluation.energy_subsample", e.energy_subsample, 2, n / 2);
        c.memory(
            "evaluation",
            [draws_memory("energy_subsample", e.energy_subsample, 2 * 8)],
        );
        Ok(c.finish()?)
    }

    fn directions(&self) -> Vec<[f64; 2]> {
        let p = self.evaluation.projections;
        (0..p)
            .map(|k| {
                let a = std::f64::consts::PI * k as f64 / p as f64;
                [a.cos(), a.sin()]
            })
            .collect()
    }
}

fn load(m: &ManifestText) -> Result<Box<dyn Experiment>> {
    let mut parsed: MixtureCfgManifest = manifest::parse_as(m)?;
    parsed.check().map_err(|e| e.context(m.display.clone()))?;
    parsed.training.0.seed = derived_seed(parsed.experiment.seed, "training");
    Ok(Box::new(parsed))
}

/// Projection KS results against an exact law or another sample, summarised.
#[derive(Debug, Default, Serialize, Clone, Copy)]
pub struct ProjectionKs {
    /// Largest KS `D` over the projections (and classes).
    pub max_statistic: Value,
    /// Smallest p-value times the number of tests (Bonferroni; capped at 1).
    pub bonferroni_pvalue: Value,
}

/// An energy distance beside its noise floor.
#[derive(Debug, Default, Serialize, Clone, Copy)]
pub struct Energy {
    /// Energy distance of the comparison.
    pub distance: Value,
    /// Energy distance between two independent draws of the reference.
    pub floor: Value,
    /// `distance / floor`.
    pub ratio: Value,
}

/// `conditional.*`: `w = 0`, every class.
#[derive(Debug, Default, Serialize)]
pub struct ConditionalStats {
    /// Network samples vs `N(μ_c, s² I)`.
    pub network: ProjectionKs,
    /// Exact-score samples vs `N(μ_c, s² I)` (discretisation alone).
    pub exact: ProjectionKs,
    /// Largest energy ratio of the network's classes.
    pub network_energy_ratio_max: Value,
    /// Largest energy ratio of the exact sampler's classes.
    pub exact_energy_ratio_max: Value,
    /// KS of the network class-0 projection on `u_0` (the headline test, shown in full).
    pub network_class0_u0: Ks,
}

/// `guided.w_<w>.*`.
#[derive(Debug, Default, Serialize)]
pub struct GuidedStats {
    /// Network-guided vs exact-guided (same sampler and seed).
    pub network_vs_exact: ProjectionKs,
    /// Energy of network-guided vs exact-guided, floor = two exact-guided halves.
    pub network_vs_exact_energy: Energy,
    /// Exact-guided vs the tilted law (MALA).
    pub exact_vs_tilted: ProjectionKs,
    /// Energy of exact-guided vs tilted, floor = two MALA halves.
    pub exact_vs_tilted_energy: Energy,
    /// `(mean − μ_c) · μ_c/|μ_c|` of the exact-guided samples.
    pub exact_guided_radial_shift: Value,
    /// The same for the tilted law.
    pub tilted_radial_shift: Value,
    /// The same for the network-guided samples.
    pub network_guided_radial_shift: Value,
    /// MALA acceptance rate.
    pub mala_acceptance: Value,
    /// Network evaluations of one guided run.
    pub nfe: Value,
}

/// The statistics of a `mixture-cfg` run.
#[derive(Debug, Default, Serialize)]
pub struct MixtureCfgStats {
    /// `w = 0`.
    pub conditional: ConditionalStats,
    /// `w > 0`, keyed `w_<w>`.
    pub guided: std::collections::BTreeMap<String, GuidedStats>,
    /// Mean DSM loss of the last 10 % of training steps.
    pub final_loss: Value,
}

fn weight_key(w: f64) -> String {
    format!("w_{w}")
}

/// What compute hands to render.
pub struct Computed {
    curve: Vec<CurveRow>,
    net: ConditionalMlp,
    /// Network `w = 0` samples, class-major (`classes × n × 2`).
    conditional: Vec<f64>,
    /// Per weight, the samples of `guidance.label`.
    guided: Vec<GuidedSamples>,
}

/// The samples of one guidance weight (`n × 2` each).
pub struct GuidedSamples {
    weight: f64,
    network: Vec<f64>,
    exact: Vec<f64>,
    tilted: Vec<f64>,
}

fn to_f64(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| f64::from(v)).collect()
}

fn project(x: &[f64], u: [f64; 2]) -> Vec<f64> {
    x.chunks_exact(2)
        .map(|p| p[0] * u[0] + p[1] * u[1])
        .collect()
}

/// Summary of KS results over several tests.
fn summarise(results: &[smoluchowski::metrics::KsResult]) -> ProjectionKs {
    let max_d = results.iter().map(|r| r.statistic).fold(0.0, f64::max);
    let min_p = results.iter().map(|r| r.pvalue).fold(1.0, f64::min);
    ProjectionKs {
        max_statistic: max_d.into(),
        bonferroni_pvalue: (min_p * results.len() as f64).min(1.0).into(),
    }
}

fn energy(a: &[f64], b: &[f64], (r1, r2): (&[f64], &[f64]), m: usize) -> Energy {
    let d = energy_distance(&a[..2 * m], &b[..2 * m], 2);
    let floor = energy_distance(&r1[..2 * m], &r2[..2 * m], 2);
    Energy {
        distance: d.into(),
        floor: floor.into(),
        ratio: (d / floor).into(),
    }
}

fn radial_shift(x: &[f64], mu: &[f64]) -> f64 {
    let n = (x.len() / 2) as f64;
    let norm = mu[0].hypot(mu[1]);
    let (mx, my) = x
        .chunks_exact(2)
        .fold((0.0, 0.0), |(a, b), p| (a + p[0] / n, b + p[1] / n));
    ((mx - mu[0]) * mu[0] + (my - mu[1]) * mu[1]) / norm
}

/// One class's samples by `score` (exact or network), labelled with the run seed.
fn draw<M: Score>(
    sde: &smoluchowski::sde::Sde,
    model: &mut M,
    sampler: &SamplerConfig,
    n: usize,
    seed: u64,
) -> Result<(Vec<f64>, usize)> {
    let out = sample(sde, model, sampler, n, seed, None).map_err(|e| anyhow!("sampling: {e}"))?;
    Ok((to_f64(&out.samples), out.nfe))
}

/// The conditional score at a fixed class as a [`Score`] (guidance weight 0 without the wrapper).
struct AtClass<'m, M: ConditionalScore>(&'m mut M, usize);

impl<M: ConditionalScore> Score for AtClass<'_, M> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn score(&mut self, x: &[f32], t: f64, out: &mut [f32]) {
        self.0.conditional_score(x, t, Some(self.1), out)
    }
}

impl MixtureCfgManifest {
    /// (a): every class at `w = 0`, network and exact, against the class law.
    fn conditional(
        &self,
        sde: &smoluchowski::sde::Sde,
        data: &GaussianMixture,
        net: &ConditionalMlp,
        seed: u64,
    ) -> Result<(ConditionalStats, Vec<f64>)> {
        let (n, m) = (self.sampling.n_per_class, self.evaluation.energy_subsample);
        let sampler = &self.sampling.sampler;
        let dirs = self.directions();
        let s_seed = derived_seed(seed, "sampling");
        let mut exact = LabelledMixtureOracle::new(*sde, data.clone());
        let mut learned = ConditionalNetScore::new(net, sde);
        let (mut ks_net, mut ks_exact) = (Vec::new(), Vec::new());
        let (mut e_net, mut e_exact) = (0.0f64, 0.0f64);
        let mut all = Vec::with_capacity(data.n_components() * n * 2);
        let mut headline = Ks::default();
        for c in 0..data.n_components() {
            let (xn, _) = draw(sde, &mut AtClass(&mut learned, c), sampler, n, s_seed)?;
            let (xe, _) = draw(sde, &mut AtClass(&mut exact, c), sampler, n, s_seed)?;
            let law = data.component(c);
            let mut rng = seeding::stream(seed, "reference", c as u64);
            let r1 = law.sample(&mut rng, m);
            let r2 = law.sample(&mut rng, m);
            let (mu, s) = (law.mean(0), law.std(0));
            for (k, u) in dirs.iter().enumerate() {
                let centre = u[0] * mu[0] + u[1] * mu[1];
                let sd = (u[0] * s[0]).hypot(u[1] * s[1]);
                let cdf = |v: f64| normal_cdf((v - centre) / sd);
                let kn = ks_one_sample(&project(&xn, *u), cdf);
                if c == 0 && k == 0 {
                    headline = kn.into();
                }
                ks_net.push(kn);
                ks_exact.push(ks_one_sample(&project(&xe, *u), cdf));
            }
            e_net = e_net.max(energy(&xn, &r1, (&r1, &r2), m).ratio.value);
            e_exact = e_exact.max(energy(&xe, &r1, (&r1, &r2), m).ratio.value);
            all.extend_from_slice(&xn);
        }
        Ok((
            ConditionalStats {
                network: summarise(&ks_net),
                exact: summarise(&ks_exact),
                network_energy_ratio_max: e_net.into(),
                exact_energy_ratio_max: e_exact.into(),
                network_class0_u0: headline,
            },
            all,
        ))
    }

    /// (b) and (c) at weight `w`.
    #[allow(clippy::type_complexity)]
    fn guided(
        &self,
        sde: &smoluchowski::sde::Sde,
        data: &GaussianMixture,
        net: &ConditionalMlp,
        w: f64,
        seed: u64,
    ) -> Result<(GuidedStats, (Vec<f64>, Vec<f64>, Vec<f64>))> {
        let (n, m) = (self.sampling.n_per_class, self.evaluation.energy_subsample);
        let sampler = &self.sampling.sampler;
        let c = self.guidance.label;
        let guidance = Guidance {
            weight: w,
            interval: self.guidance.interval,
        };
        let s_seed = derived_seed(seed, "sampling");
        let s2_seed = derived_seed(seed, "sampling_second_half");
        let oracle = LabelledMixtureOracle::new(*sde, data.clone());
        let mut g_exact = Guided::new(oracle, c, guidance)?;
        let mut g_net = Guided::new(ConditionalNetScore::new(net, sde), c, guidance)?;
        let (xn, nfe) = draw(sde, &mut g_net, sampler, n, s_seed)?;
        let (xe, _) = draw(sde, &mut g_exact, sampler, n, s_seed)?;
        let (xe2, _) = draw(sde, &mut g_exact, sampler, n, s2_seed)?;
        // (c): MALA on the tilted law, one chain per sample from class-law draws.
        let tilted = TiltedMixture::new(data, c, w);
        let law = data.component(c);
        let init = law.sample(&mut seeding::stream(seed, "mala_init", w.to_bits()), 2 * n);
        let cfg = LangevinConfig::final_state(
            LangevinMethod::Mala,
            self.tilted.mala_step,
            self.tilted.mala_steps,
        );
        let mala_seed = derived_seed(seed, &format!("mala/{w}"));
        let chains =
            langevin_chains(&tilted, &init, &cfg, mala_seed).map_err(|e| anyhow!("MALA: {e}"))?;
        let (q1, q2) = chains.samples.split_at(2 * n);
        let dirs = self.directions();
        let (mut kb, mut kc) = (Vec::new(), Vec::new());
        for u in &dirs {
            let (pn, pe, pq) = (project(&xn, *u), project(&xe2, *u), project(q1, *u));
            kb.push(ks_two_sample(&pn, &pe));
            kc.push(ks_two_sample(&project(&xe, *u), &pq));
        }
        let mu = law.mean(0);
        let stats = GuidedStats {
            network_vs_exact: summarise(&kb),
            network_vs_exact_energy: energy(&xn, &xe2, (&xe, &xe2), m),
            exact_vs_tilted: summarise(&kc),
            exact_vs_tilted_energy: energy(&xe, q1, (q1, q2), m),
            exact_guided_radial_shift: radial_shift(&xe, mu).into(),
            tilted_radial_shift: radial_shift(q1, mu).into(),
            network_guided_radial_shift: radial_shift(&xn, mu).into(),
            mala_acceptance: chains.acceptance_rate().into(),
            nfe: (nfe as f64).into(),
        };
        Ok((stats, (xn, xe, q1.to_vec())))
    }
}

impl TypedExperiment for MixtureCfgManifest {
    type Stats = MixtureCfgStats;
    type Computed = Computed;

    fn header(&self) -> &ExperimentHeader {
        &self.experiment
    }

    fn declared(&self) -> MixtureCfgStats {
        let mut s = MixtureCfgStats::default();
        for &w in &self.guidance.weights {
            s.guided.insert(weight_key(w), GuidedStats::default());
        }
        s
    }

    fn compute(&self, ctx: &mut RunContext<'_>) -> Result<(MixtureCfgStats, Computed)> {
        let seed = ctx.seed;
        let data = self.mixture.build().map_err(|e| anyhow!("mixture: {e}"))?;
        let sde = self.sde.build()?;
        let training = &self.training.0;
        let cfg = ConditionalMlpConfig {
            network: self.network.clone(),
            classes: data.n_components(),
        };
        let init_seed = derived_seed(seed, "network_init");
        let init = ConditionalMlp::new(cfg, init_seed).map_err(|e| anyhow!("network: {e}"))?;
        let objective = LabelledDsmObjective::new(
            &sde,
            &data,
            training.clone(),
            &init,
            self.conditioning.label_dropout,
        )
        .map_err(|e| anyhow!("training: {e}"))?;
        let ckpts = ctx.checkpoints.clone();
        let trained = ctx.time("train", || {
            train_with_objective(
                "mixture-cfg",
                || Ok(init),
                objective,
                training,
                2,
                &ckpts,
                |_| {},
            )
        })?;
        let net = trained.net;
        let (conditional, samples) =
            ctx.time("conditional", || self.conditional(&sde, &data, &net, seed))?;
        let mut guided = std::collections::BTreeMap::new();
        let mut kept = Vec::new();
        for &w in &self.guidance.weights {
            let (st, (xn, xe, q)) = ctx.time(&format!("guided_w{w}"), || {
                self.guided(&sde, &data, &net, w, seed)
            })?;
            guided.insert(weight_key(w), st);
            kept.push(GuidedSamples {
                weight: w,
                network: xn,
                exact: xe,
                tilted: q,
            });
        }
        let tail = (trained.curve.len() / 10).max(1);
        let final_loss = trained.curve[trained.curve.len() - tail..]
            .iter()
            .map(|r| r.loss)
            .sum::<f64>()
            / tail as f64;
        Ok((
            MixtureCfgStats {
                conditional,
                guided,
                final_loss: final_loss.into(),
            },
            Computed {
                curve: trained.curve,
                net,
                conditional: samples,
                guided: kept,
            },
        ))
    }

    fn render(
        &self,
        stats: &MixtureCfgStats,
        c: &Computed,
        ctx: &mut RunContext<'_>,
    ) -> Result<Rendered> {
        let out = ctx.out;
        let n = self.sampling.n_per_class;
        let classes = self.mixture.components;
        write_npy(&out.file("samples.npy"), &[classes * n, 2], &c.conditional)?;
        let labels: Vec<f64> = (0..classes)
            .flat_map(|k| std::iter::repeat_n(k as f64, n))
            .collect();
        write_npy(&out.file("labels.npy"), &[classes * n], &labels)?;
        crate::output::write_text(&out.file("loss_curve.csv"), &curve_csv(&c.curve))?;
        let params = smoluchowski::nets::ScoreNetwork::params(&c.net);
        let json = smoluchowski::nets::ScoreNetwork::config_json(&c.net);
        crate::output::write_text(&out.file("model.json"), &json)?;
        write_npy(&out.file("model_params.npy"), &[params.len()], &params)?;
        let lim = self.mixture.radius + 5.0 * self.mixture.std;
        let mut panels = vec![scatter_panel(
            &c.conditional,
            4000,
            "network, w = 0, every class".into(),
            lim,
        )];
        for g in &c.guided {
            let w = g.weight;
            panels.push(scatter_panel(
                &g.network,
                2000,
                format!("network-guided, w = {w}"),
                lim,
            ));
            panels.push(scatter_panel(
                &g.exact,
                2000,
                format!("exact-guided, w = {w}"),
                lim,
            ));
            panels.push(scatter_panel(
                &g.tilted,
                2000,
                format!("tilted law (MALA), w = {w}"),
                lim,
            ));
        }
        figures::draw_row(&out.file("guidance.png"), &panels, (420, 420))?;
        let table = self.table(stats);
        let how = report::fill(
            HOW_TO_READ,
            &[
                ("n", n.to_string()),
                ("label", self.guidance.label.to_string()),
                ("m", self.evaluation.energy_subsample.to_string()),
            ],
        );
        Ok(Rendered {
            parameters: json!({
                "classes": classes,
                "network_parameters": params.len(),
                "sampler_nfe_rule": self.sampling.sampler.method.nfe_rule(),
                "training_seed": self.training.0.seed,
            }),
            figures: vec![Figure {
                file: "guidance.png".into(),
                caption: "Left: the conditional network's samples of every class at w = 0. Then per guidance \
                          weight: network-guided and exact-guided samples of the guided class (same sampler \
                          and seed) and the tilted law p₀(x|c)^{1+w} p₀(x)^{−w} sampled by MALA."
                    .into(),
            }],
            files: vec![
                ("samples.npy".into(), "network samples at w = 0, every class (class-major, n × 2)".into()),
                ("labels.npy".into(), "the class of each row of samples.npy".into()),
                ("model.json".into(), "the ConditionalMlpConfig".into()),
                ("model_params.npy".into(), "the trained flat parameters".into()),
                ("loss_curve.csv".into(), "step, loss, lr, grad norm".into()),
            ],
            sections: vec![
                ("Guidance against exact truth".into(), table),
                ("How to read this report".into(), how),
            ],
        })
    }
}

impl MixtureCfgManifest {
    fn table(&self, s: &MixtureCfgStats) -> String {
        let c = &s.conditional;
        let mut t = format!(
            "w = 0, every class (n = {} per class): network max KS D {:.4} (Bonferroni p {:.3}), \
             energy ratio ≤ {:.2}; exact score max KS D {:.4} (Bonferroni p {:.3}), energy ratio ≤ {:.2}.\n\n",
            self.sampling.n_per_class,
            c.network.max_statistic.value,
            c.network.bonferroni_pvalue.value,
            c.network_energy_ratio_max.value,
            c.exact.max_statistic.value,
            c.exact.bonferroni_pvalue.value,
            c.exact_energy_ratio_max.value,
        );
        t += "| w | net vs exact-guided: max D | energy ratio | exact-guided vs tilted: max D | energy ratio | radial shift: net / exact-guided / tilted | NFE |\n|---|---|---|---|---|---|---|\n";
        for &w in &self.guidance.weights {
            let g = &s.guided[&weight_key(w)];
            t += &format!(
                "| {w} | {:.4} | {:.2} | {:.4} | {:.2} | {:.4} / {:.4} / {:.4} | {} |\n",
                g.network_vs_exact.max_statistic.value,
                g.network_vs_exact_energy.ratio.value,
                g.exact_vs_tilted.max_statistic.value,
                g.exact_vs_tilted_energy.ratio.value,
                g.network_guided_radial_shift.value,
                g.exact_guided_radial_shift.value,
                g.tilted_radial_shift.value,
                g.nfe.value,
            );
        }
        t
    }
}
