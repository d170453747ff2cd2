//! Denoising score matching for class-conditional networks, with label dropout: one network
//! learns `s(x, t, c)` and `s(x, t, ∅)` at once (classifier-free guidance, Ho & Salimans 2022).
//!
//! A batch is the [`DsmObjective`]'s (same step stream, same `t`, `ε`, `x_t`: the data are
//! drawn with their labels by [`LabelledDataset::sample_labelled_into`]); then each label is
//! replaced by the null label [`NULL_LABEL`] with probability `p` (`label_dropout`), from the
//! stream [`smoluchowski_core::streams::named`]`(seed, "label_dropout", k)` of step `k`. The
//! loss per row is DSM's `λ(t)‖s_θ(x_t, t, c̃) + ε/σ(t)‖²`, whose minimiser is
//! `∇ log p_t(x | c)` for rows with a label and `∇ log p_t(x)` for null rows.

use rand::Rng;
use smoluchowski_core::{streams, ParamError};
use smoluchowski_datasets::LabelledDataset;
use smoluchowski_nets::{ScoreNetwork, NULL_LABEL};
use smoluchowski_sde::ForwardSde;

use crate::config::{DataMode, TrainConfig};
use crate::dsm::{DsmBatch, NUM_TIME_BUCKETS};
use crate::train::{step_rng, DsmObjective};
use crate::trainloop::{LoopSettings, Objective, TrainError};

/// A DSM batch with a label per row (`NULL_LABEL` for dropped labels).
#[derive(Debug, Default, Clone)]
pub struct LabelledBatch {
    /// The DSM rows, times and targets.
    pub dsm: DsmBatch,
    /// The label of each row after dropout.
    pub labels: Vec<u32>,
}

/// The labelled DSM objective (module docs).
pub struct LabelledDsmObjective<'a, D: LabelledDataset, S: ForwardSde + ?Sized> {
    inner: DsmObjective<'a, D, S>,
    data: &'a D,
    sde: &'a S,
    label_dropout: f64,
}

impl<'a, D: LabelledDataset, S: ForwardSde + ?Sized> LabelledDsmObjective<'a, D, S> {
    /// The objective of `cfg` on `sde` and `data` for `net` (whose [`ScoreNetwork::label_classes`]
    /// must equal the dataset's classes), each label dropped with probability `label_dropout`
    /// (in `[0, 1)`). Fresh data only (`training.data = "fresh"`).
    pub fn new<N: ScoreNetwork>(
        sde: &'a S,
        data: &'a D,
        cfg: TrainConfig,
        net: &N,
        label_dropout: f64,
    ) -> Result<Self, TrainError> {
        if net.label_classes() != Some(data.classes()) {
            return Err(TrainError::Config(ParamError::debug(
                "network.classes",
                net.label_classes(),
                format!("Some({}) (the dataset's classes)", data.classes()),
            )));
        }
        if !(0.0..1.0).contains(&label_dropout) {
            return Err(TrainError::Config(ParamError::new(
                "label_dropout",
                label_dropout,
                "in [0, 1)",
            )));
        }
        if cfg.data != DataMode::Fresh {
            return Err(TrainError::Config(ParamError::debug(
                "training.data",
                cfg.data,
                "fresh (a labelled objective draws fresh labelled data)",
            )));
        }
        Ok(LabelledDsmObjective {
            inner: DsmObjective::new(sde, data, cfg, net.dim())?,
            data,
            sde,
            label_dropout,
        })
    }
}

impl<D: LabelledDataset, S: ForwardSde + ?Sized, N: ScoreNetwork> Objective<N>
    for LabelledDsmObjective<'_, D, S>
{
    type Batch = LabelledBatch;

    fn settings(&self) -> LoopSettings {
        <DsmObjective<'_, D, S> as Objective<N>>::settings(&self.inner)
    }

    fn config_json(&self) -> String {
        <DsmObjective<'_, D, S> as Objective<N>>::config_json(&self.inner)
    }

    fn check_resume(&self, saved: &str) -> Result<(), String> {
        <DsmObjective<'_, D, S> as Objective<N>>::check_resume(&self.inner, saved)
    }

    /// The DSM draw of step `k` with the labels, then the dropout draws.
    fn draw(&self, net: &N, k: usize, batch: &mut LabelledBatch) {
        let cfg = self.inner.config();
        let mut rng = step_rng(cfg.seed, k);
        let LabelledBatch { dsm, labels } = batch;
        labels.resize(cfg.batch_size, 0);
        dsm.time_sampling = cfg.time_sampling;
        dsm.draw(
            net.dim(),
            net.output(),
            self.sde,
            cfg.weighting,
            cfg.t_eps,
            cfg.batch_size,
            &mut rng,
            |r, x0| self.data.sample_labelled_into(r, x0, labels),
        );
        let mut drop = streams::named(cfg.seed, "label_dropout", k as u64);
        for l in labels.iter_mut() {
            if drop.gen::<f64>() < self.label_dropout {
                *l = NULL_LABEL;
            }
        }
    }

    fn rows<'b>(&self, batch: &'b LabelledBatch) -> (&'b [f32], &'b [f64]) {
        batch.dsm.rows()
    }

    fn labels<'b>(&self, batch: &'b LabelledBatch) -> Option<&'b [u32]> {
        Some(&batch.labels)
    }

    fn loss_and_grad(
        net: &N,
        params: &[f32],
        batch: &LabelledBatch,
        input: &N::Input,
        grad: &mut [f32],
        ws: &mut N::Workspace,
    ) -> (f64, [f64; NUM_TIME_BUCKETS]) {
        <DsmObjective<'_, D, S> as Objective<N>>::loss_and_grad(
            net, params, &batch.dsm, input, grad, ws,
        )
    }

    fn prefetch(&self, k: usize) -> bool {
        <DsmObjective<'_, D, S> as Objective<N>>::prefetch(&self.inner, k)
    }
}
