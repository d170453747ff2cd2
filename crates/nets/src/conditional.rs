//! The class-conditional MLP: a discrete label enters through a learned embedding added to the
//! time embedding, with a null label for classifier-free guidance.
//!
//! Input features `x̃ = (x, τ(t), e_c)` with `e_c` the one-hot vector of the label in
//! `K + 1` columns (`c ∈ {0, …, K − 1}`, column `K` = the null label `∅`). The first layer is
//!
//! `z₀ = x W_x + τ(t) W_τ + E[c] + b₀`, `E = W₀[d + T :]` (`(K + 1) × width`),
//!
//! so `E[c]` is a learned label embedding added to the (first-layer projection of the) time
//! embedding `τ(t) W_τ` — the form the UNet takes too (an `nn.Embedding(K + 1, temb_dim)` added
//! to its time embedding). Trained with label dropout (each label replaced by `∅` with
//! probability `p`), one set of weights is both `s(x, t, c)` and `s(x, t, ∅)`.
//!
//! At a fixed label the network *is* an unconditional MLP with the first-layer bias
//! `b₀ + E[c]` ([`ConditionalMlp::label_view`]): inference, divergence and sampling reuse the
//! unconditional passes unchanged. The unconditional [`crate::ScoreNet`] (its configuration,
//! parameter layout and outputs) is untouched by this type.

use rand::Rng;
use serde::{Deserialize, Serialize};
use smoluchowski_core::ParamError;
use smoluchowski_sde::{ConditionalScore, ForwardSde, Score};

use crate::config::{NetOutput, ScoreNetConfig};
use crate::fused::NetScore;
use crate::fused_train::{plan_loss_and_grad, MlpWorkspace};
use crate::net::ScoreNet;
use crate::network::ScoreNetwork;
use crate::plan::MlpPlan;

/// The label value of the null condition `∅` in a batch of labels (any value `≥ classes` is
/// treated as `∅`).
pub const NULL_LABEL: u32 = u32::MAX;

/// Architecture of a [`ConditionalMlp`]: the unconditional MLP's plus the number of classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionalMlpConfig {
    /// The MLP (its `dim`, width, depth, activation, time embedding, output).
    pub network: ScoreNetConfig,
    /// Number of classes `K ≥ 1` (labels `0..K`; the null label is one more embedding row).
    pub classes: usize,
}

impl ConditionalMlpConfig {
    /// Checks the MLP and `classes ≥ 1`; errors name the field (`network.width`, `classes`).
    pub fn validate(&self) -> Result<(), ParamError> {
        self.network.validate().map_err(|e| e.under("network"))?;
        if self.classes == 0 || self.classes > MAX_CLASSES {
            return Err(ParamError::new(
                "classes",
                self.classes,
                format!("in 1..={MAX_CLASSES}"),
            ));
        }
        Ok(())
    }

    /// One-hot label columns `K + 1`.
    pub fn label_features(&self) -> usize {
        self.classes + 1
    }

    /// Number of parameters (the MLP's plus `(K + 1) × width` embedding rows).
    pub fn num_params(&self) -> usize {
        self.network.num_params() + self.label_features() * self.network.width
    }
}

/// Upper bound of `classes` (the embedding has `(K + 1) × width` parameters).
pub const MAX_CLASSES: usize = 100_000;

/// A class-conditional MLP (module docs): flat parameters in the MLP's layout with
/// `K + 1` more rows of the first weight matrix.
#[derive(Debug, Clone)]
pub struct ConditionalMlp {
    config: ConditionalMlpConfig,
    plan: MlpPlan,
    params: Vec<f32>,
}

impl ConditionalMlp {
    /// A network of `config` (validated) with PyTorch's default initialisation
    /// (`U(−1/√in, 1/√in)` for every weight and bias of a layer with `in` inputs), drawn from
    /// [`smoluchowski_core::streams::seeded`]`(seed, 0)` in the flat layout's order.
    pub fn new(config: ConditionalMlpConfig, seed: u64) -> Result<Self, ParamError> {
        config.validate()?;
        let plan = MlpPlan::with_label_features(&config.network, config.label_features());
        let mut rng = smoluchowski_core::streams::seeded(seed, 0);
        let mut params = Vec::with_capacity(plan.num_params());
        for l in plan.layers() {
            let b = 1.0 / (l.inp as f32).sqrt();
            for _ in 0..(l.inp * l.out + l.out) {
                params.push(rng.gen_range(-b..b));
            }
        }
        Ok(ConditionalMlp {
            config,
            plan,
            params,
        })
    }

    /// A network of `config` with the flat parameters `params`.
    pub fn from_flat(config: ConditionalMlpConfig, params: &[f32]) -> Result<Self, ParamError> {
        config.validate()?;
        let plan = MlpPlan::with_label_features(&config.network, config.label_features());
        if params.len() != plan.num_params() {
            return Err(ParamError::new(
                "parameters (length)",
                params.len(),
                format!("the config's parameter count {}", plan.num_params()),
            ));
        }
        Ok(ConditionalMlp {
            config,
            plan,
            params: params.to_vec(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ConditionalMlpConfig {
        &self.config
    }

    /// The layer sequence (first layer with the label columns).
    pub fn plan(&self) -> &MlpPlan {
        &self.plan
    }

    /// The network at the fixed label `label` (`None`: `∅`) as an unconditional
    /// [`ScoreNet`] of the MLP's configuration: the first weight matrix without the label rows,
    /// the first bias `b₀ + E[c]` (exact: the one-hot product is that one row).
    pub fn label_view(&self, label: Option<usize>) -> ScoreNet {
        let slot = label.map_or(self.config.classes, |c| {
            assert!(c < self.config.classes, "label {c} ≥ classes");
            c
        });
        let first = &self.plan.layers()[0];
        let base_rows = first.inp - self.config.label_features();
        let w = first.weight(&self.params);
        let mut view = Vec::with_capacity(self.config.network.num_params());
        view.extend_from_slice(&w[..base_rows * first.out]);
        let row = &w[(base_rows + slot) * first.out..(base_rows + slot + 1) * first.out];
        view.extend(first.bias(&self.params).iter().zip(row).map(|(b, e)| b + e));
        view.extend_from_slice(&self.params[first.b + first.out..]);
        ScoreNet::from_flat(self.config.network.clone(), &view).expect("the MLP's layout")
    }

    /// Fills the rows `(x, τ(t_i), e_{c_i})` (`n × input_dim`) for labels `labels`
    /// (`≥ classes`, e.g. [`NULL_LABEL`]: the null label).
    fn fill_rows(&self, x: &[f32], t: &[f64], labels: Option<&[u32]>, input: &mut Vec<f32>) {
        let net = &self.config.network;
        let (base, k) = (net.input_dim(), self.plan.input_dim());
        let n = x.len() / net.dim;
        let mut rows = vec![0.0f32; n * base];
        net.fill_input_rows(x, |i| t[i], &mut rows);
        input.clear();
        input.resize(n * k, 0.0);
        let classes = self.config.classes;
        for (i, (out, row)) in input
            .chunks_exact_mut(k)
            .zip(rows.chunks_exact(base))
            .enumerate()
        {
            out[..base].copy_from_slice(row);
            let c = labels.map_or(classes, |l| (l[i] as usize).min(classes));
            out[base + c] = 1.0;
        }
    }
}

impl ScoreNetwork for ConditionalMlp {
    type Input = Vec<f32>;
    type Workspace = MlpWorkspace;

    fn dim(&self) -> usize {
        self.config.network.dim
    }

    fn num_params(&self) -> usize {
        self.plan.num_params()
    }

    fn output(&self) -> NetOutput {
        self.config.network.output
    }

    fn config_json(&self) -> String {
        serde_json::to_string(&self.config).expect("serialises")
    }

    fn from_config_json(json: &str, params: &[f32]) -> Result<Self, String> {
        let cfg: ConditionalMlpConfig =
            serde_json::from_str(json).map_err(|e| format!("net_config: {e}"))?;
        ConditionalMlp::from_flat(cfg, params).map_err(|e| e.to_string())
    }

    fn init_params(&self, seed: u64) -> Vec<f32> {
        ConditionalMlp::new(self.config.clone(), seed)
            .expect("valid config")
            .params
    }

    fn params(&self) -> Vec<f32> {
        self.params.clone()
    }

    fn set_params(&mut self, params: &[f32]) {
        assert_eq!(params.len(), self.params.len(), "parameter length");
        self.params.copy_from_slice(params);
    }

    /// The null-label output (the plan folds `E[∅]` into the first bias).
    fn forward(&self, params: &[f32], x: &[f32], t: f64, out: &mut [f32]) {
        self.plan.forward_common_t(params, x, t, out);
    }

    /// The null-label output and its Jacobian trace.
    fn forward_with_jacobian_trace(
        &self,
        params: &[f32],
        x: &[f32],
        t: f64,
        out: &mut [f32],
        trace: &mut [f64],
    ) -> bool {
        self.plan
            .forward_with_jacobian_trace(params, x, t, out, trace);
        true
    }

    /// Rows with the null label.
    fn prepare_input(&self, x: &[f32], t: &[f64], input: &mut Vec<f32>) {
        self.fill_rows(x, t, None, input);
    }

    fn label_classes(&self) -> Option<usize> {
        Some(self.config.classes)
    }

    fn prepare_labelled_input(&self, x: &[f32], t: &[f64], labels: &[u32], input: &mut Vec<f32>) {
        assert_eq!(labels.len(), t.len(), "one label per row");
        self.fill_rows(x, t, Some(labels), input);
    }

    /// A general objective through the fused pass: the outputs `f` of a first pass
    /// (`a = 1`, `b = 0`), `g = objective(f)`, then the weighted squared loss with `a = 1`,
    /// `b = f − (n/2) g`, whose gradient `(2/n)(f − b) = g` is back-propagated (up to the f32
    /// rounding of `f − b`).
    fn loss_and_grad(
        &self,
        params: &[f32],
        input: &Vec<f32>,
        objective: &mut dyn FnMut(&[f32], &mut [f32]) -> f64,
        grad: &mut [f32],
        ws: &mut MlpWorkspace,
    ) -> f64 {
        let n = input.len() / self.plan.input_dim();
        let ones = vec![1.0f32; n * self.dim()];
        let zeros = vec![0.0f32; n * self.dim()];
        plan_loss_and_grad(&self.plan, params, input, &ones, &zeros, grad, ws);
        let f = ws.prediction().to_vec();
        let mut g = vec![0.0f32; f.len()];
        let loss = objective(&f, &mut g);
        let half_n = 0.5 * n as f32;
        let b: Vec<f32> = f.iter().zip(&g).map(|(fi, gi)| fi - half_n * gi).collect();
        plan_loss_and_grad(&self.plan, params, input, &ones, &b, grad, ws);
        loss
    }

    fn weighted_sq_loss_and_grad(
        &self,
        params: &[f32],
        input: &Vec<f32>,
        a: &[f32],
        b: &[f32],
        out: &mut [f32],
        grad: &mut [f32],
        ws: &mut MlpWorkspace,
    ) -> f64 {
        let loss = plan_loss_and_grad(&self.plan, params, input, a, b, grad, ws);
        out.copy_from_slice(ws.prediction());
        loss
    }
}

/// A trained [`ConditionalMlp`] plus its SDE as a [`ConditionalScore`]: one unconditional
/// [`NetScore`] per label and one for `∅` ([`ConditionalMlp::label_view`]), built once.
pub struct ConditionalNetScore<'a, S: ForwardSde + ?Sized> {
    /// `views[c]` for `c < K`, `views[K]` = `∅`.
    views: Vec<NetScore<'a, S>>,
}

impl<'a, S: ForwardSde + ?Sized> ConditionalNetScore<'a, S> {
    /// The label views of `net` with `sde` (whose `σ(t)` converts noise to score).
    pub fn new(net: &ConditionalMlp, sde: &'a S) -> Self {
        let k = net.config().classes;
        let views = (0..=k)
            .map(|c| NetScore::new(&net.label_view((c < k).then_some(c)), sde))
            .collect();
        ConditionalNetScore { views }
    }
}

impl<S: ForwardSde + ?Sized> ConditionalScore for ConditionalNetScore<'_, S> {
    fn dim(&self) -> usize {
        self.views[0].dim()
    }

    fn classes(&self) -> usize {
        self.views.len() - 1
    }

    fn conditional_score(&mut self, x: &[f32], t: f64, label: Option<usize>, out: &mut [f32]) {
        let k = self.views.len() - 1;
        let slot = label.map_or(k, |c| {
            assert!(c < k, "label {c} ≥ classes {k}");
            c
        });
        self.views[slot].score(x, t, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Activation, TimeEmbedding};

    fn config() -> ConditionalMlpConfig {
        ConditionalMlpConfig {
            network: ScoreNetConfig {
                dim: 2,
                width: 16,
                depth: 3,
                activation: Activation::Silu,
                residual: true,
                time_embedding: TimeEmbedding::Fourier {
                    frequencies: 3,
                    max_frequency: 8.0,
                },
                output: NetOutput::Noise,
            },
            classes: 4,
        }
    }

    /// The label view (first bias `b₀ + E[c]`) against the full input `(x, τ(t), e_c)` through
    /// the training pass, for every label and the null label; the unlabelled forward is `∅`.
    #[test]
    fn label_views_equal_the_one_hot_input() {
        let net = ConditionalMlp::new(config(), 3).unwrap();
        assert_eq!(net.num_params(), net.config().num_params());
        let n = 37;
        let x: Vec<f32> = (0..2 * n)
            .map(|i| ((i * 7919) % 97) as f32 / 40.0 - 1.2)
            .collect();
        let t = 0.37;
        let ts = vec![t; n];
        let p = net.params();
        for label in [Some(0), Some(3), None] {
            let labels = vec![label.map_or(NULL_LABEL, |c| c as u32); n];
            let mut input = Vec::new();
            net.prepare_labelled_input(&x, &ts, &labels, &mut input);
            let (ones, zeros) = (vec![1.0f32; 2 * n], vec![0.0f32; 2 * n]);
            let mut grad = vec![0.0f32; p.len()];
            let mut ws = MlpWorkspace::default();
            let mut full = vec![0.0f32; 2 * n];
            net.weighted_sq_loss_and_grad(&p, &input, &ones, &zeros, &mut full, &mut grad, &mut ws);
            let view = net.label_view(label);
            let mut viewed = vec![0.0f32; 2 * n];
            ScoreNetwork::forward(&view, &view.params(), &x, t, &mut viewed);
            for (a, b) in full.iter().zip(&viewed) {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + a.abs()),
                    "{label:?}: {a} vs {b}"
                );
            }
            if label.is_none() {
                let mut null = vec![0.0f32; 2 * n];
                net.forward(&p, &x, t, &mut null);
                for (a, b) in null.iter().zip(&viewed) {
                    assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()), "∅: {a} vs {b}");
                }
            }
        }
        // Different labels give different outputs (the embedding is used).
        let (mut a, mut b) = (vec![0.0f32; 2 * n], vec![0.0f32; 2 * n]);
        let (v0, v1) = (net.label_view(Some(0)), net.label_view(Some(1)));
        ScoreNetwork::forward(&v0, &v0.params(), &x, t, &mut a);
        ScoreNetwork::forward(&v1, &v1.params(), &x, t, &mut b);
        assert_ne!(a, b);
    }

    /// The general objective (through two fused passes) back-propagates the objective's output
    /// gradient: against central differences of the loss in a few parameters.
    #[test]
    fn general_objective_gradient_matches_finite_differences() {
        let net = ConditionalMlp::new(config(), 5).unwrap();
        let n = 9;
        let x: Vec<f32> = (0..2 * n).map(|i| (i as f32 * 0.37).sin()).collect();
        let ts: Vec<f64> = (0..n).map(|i| 0.1 + 0.08 * i as f64).collect();
        let labels: Vec<u32> = (0..n as u32)
            .map(|i| if i % 3 == 0 { NULL_LABEL } else { i % 4 })
            .collect();
        let mut input = Vec::new();
        net.prepare_labelled_input(&x, &ts, &labels, &mut input);
        // loss = Σ f³ / 3 (a non-quadratic objective): g = f².
        let mut objective = |f: &[f32], g: &mut [f32]| {
            let mut l = 0.0f64;
            for (gi, &fi) in g.iter_mut().zip(f) {
                *gi = fi * fi;
                l += f64::from(fi).powi(3) / 3.0;
            }
            l
        };
        let p = net.params();
        let mut grad = vec![0.0f32; p.len()];
        let mut ws = MlpWorkspace::default();
        net.loss_and_grad(&p, &input, &mut objective, &mut grad, &mut ws);
        let emb = net.plan().layers()[0].w + 2 * 16 + 7 * 16 + 5; // a label-embedding weight
        for &i in &[0usize, 40, emb, p.len() - 1] {
            let h = 1e-2f32;
            let (mut pp, mut pm) = (p.clone(), p.clone());
            pp[i] += h;
            pm[i] -= h;
            let mut g = vec![0.0f32; p.len()];
            let lp = net.loss_and_grad(&pp, &input, &mut objective, &mut g, &mut ws);
            let lm = net.loss_and_grad(&pm, &input, &mut objective, &mut g, &mut ws);
            let fd = (lp - lm) / (2.0 * f64::from(h));
            let tol = 2e-3 * (1.0 + fd.abs());
            assert!(
                (fd - f64::from(grad[i])).abs() < tol,
                "param {i}: fd {fd} vs {}",
                grad[i]
            );
        }
    }

    #[test]
    fn bad_configs_name_the_field() {
        let mut c = config();
        c.classes = 0;
        assert_eq!(ConditionalMlp::new(c, 1).unwrap_err().path(), "classes");
        let mut c = config();
        c.network.width = 0;
        assert_eq!(
            ConditionalMlp::new(c, 1).unwrap_err().path(),
            "network.width"
        );
    }
}
