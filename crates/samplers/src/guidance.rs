//! Classifier-free guidance (Ho & Salimans 2022) as a score model, so every sampler gets it.
//!
//! Convention: with a conditional model `s(x, t, c)` and its null-condition output
//! `s(x, t, ∅)` (one network trained with label dropout, or exact scores), the guided score of
//! guidance weight `w ≥ 0` is
//!
//! `s_w(x, t, c) = (1 + w) s(x, t, c) − w s(x, t, ∅)`,
//!
//! i.e. the score of `p_t(x | c)^{1+w} p_t(x)^{−w}` at every `t` (which is *not* the diffused
//! tilted law: the experiments measure the difference). `w = 0` is plain conditional sampling.
//! diffusers' `guidance_scale` is `1 + w` (`ε = ε_∅ + g (ε_c − ε_∅)`; the same combination of
//! noise predictions, which are `−σ` times the scores).
//!
//! An optional guidance interval `[t_lo, t_hi]` (Kynkäänniemi et al. 2024) applies the guided
//! score only for `t_lo ≤ t ≤ t_hi` and the conditional score elsewhere.
//!
//! NFE accounting: a guided call inside the interval evaluates the model twice (conditional and
//! unconditional) and reports 2 network evaluations ([`Score::network_evaluations`]); outside
//! the interval, or for `w = 0`, it evaluates once and reports 1. So a sampler's
//! [`SampleOutput::nfe`](crate::SampleOutput::nfe) counts network evaluations.

use serde::{Deserialize, Serialize};
use smoluchowski_datasets::GaussianMixture;
use smoluchowski_sde::{ConditionalScore, Score};

use crate::error::{invalid, SamplerError};
use crate::langevin::{LogDensity, MixtureLogDensity};

/// Guidance settings (serde, embeddable in a manifest).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guidance {
    /// Guidance weight `w ≥ 0` (diffusers' `guidance_scale` is `1 + w`).
    pub weight: f64,
    /// Guide only for `t` in `[t_lo, t_hi]` (`None`: at every `t`).
    #[serde(default)]
    pub interval: Option<[f64; 2]>,
}

impl Guidance {
    /// Guidance of weight `w` at every `t`.
    pub fn new(weight: f64) -> Self {
        Guidance {
            weight,
            interval: None,
        }
    }

    /// Checks `weight` (finite, `≥ 0`) and the interval (`0 ≤ t_lo ≤ t_hi`, finite); errors
    /// name the field under `path`.
    pub fn validate(&self, path: &str) -> Result<(), SamplerError> {
        if !(self.weight.is_finite() && self.weight >= 0.0) {
            return Err(invalid(
                format!("{path}.weight"),
                self.weight,
                "finite and ≥ 0",
            ));
        }
        if let Some([lo, hi]) = self.interval {
            if !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo <= hi) {
                return Err(invalid(
                    format!("{path}.interval"),
                    [lo, hi],
                    "finite [t_lo, t_hi] with 0 ≤ t_lo ≤ t_hi",
                ));
            }
        }
        Ok(())
    }

    /// Whether `t` is guided (`w > 0` and `t` in the interval).
    pub fn active(&self, t: f64) -> bool {
        self.weight > 0.0 && self.interval.is_none_or(|[lo, hi]| (lo..=hi).contains(&t))
    }
}

/// A conditional model guided towards the class `label`: a [`Score`] whose value is
/// `(1 + w) s(x, t, c) − w s(x, t, ∅)` where [`Guidance::active`], `s(x, t, c)` elsewhere.
pub struct Guided<M: ConditionalScore> {
    model: M,
    label: usize,
    guidance: Guidance,
    /// The unconditional evaluation (scratch).
    uncond: Vec<f32>,
}

impl<M: ConditionalScore> Guided<M> {
    /// `model` guided towards `label` with `guidance`; errors name a bad label or setting.
    pub fn new(model: M, label: usize, guidance: Guidance) -> Result<Self, SamplerError> {
        guidance.validate("guidance")?;
        if label >= model.classes() {
            return Err(invalid(
                "label",
                label,
                format!("< classes = {}", model.classes()),
            ));
        }
        Ok(Guided {
            model,
            label,
            guidance,
            uncond: Vec::new(),
        })
    }

    /// The wrapped model.
    pub fn into_inner(self) -> M {
        self.model
    }
}

impl<M: ConditionalScore> Score for Guided<M> {
    fn dim(&self) -> usize {
        self.model.dim()
    }

    /// `(1 + w) s_c − w s_∅`, combined per element in f64.
    fn score(&mut self, x: &[f32], t: f64, out: &mut [f32]) {
        self.model.conditional_score(x, t, Some(self.label), out);
        if !self.guidance.active(t) {
            return;
        }
        self.uncond.resize(out.len(), 0.0);
        self.model.conditional_score(x, t, None, &mut self.uncond);
        let w = self.guidance.weight;
        for (o, &u) in out.iter_mut().zip(&self.uncond) {
            *o = ((1.0 + w) * f64::from(*o) - w * f64::from(u)) as f32;
        }
    }

    fn network_evaluations(&self, t: f64) -> usize {
        if self.guidance.active(t) {
            2
        } else {
            1
        }
    }
}

/// The tilted law guidance is often said to sample: `q_w(x) ∝ p₀(x | c)^{1+w} p₀(x)^{−w}` for a
/// labelled Gaussian mixture (label = component), as a [`LogDensity`] for MALA:
///
/// `log q_w = (1 + w) log N(x; μ_c, diag(s_c²)) − w log Σ_k w_k N(x; μ_k, diag(s_k²))` (up to a
/// constant), `∇ log q_w = (1 + w) ∇ log p₀(x | c) − w ∇ log p₀(x)`.
///
/// Normalisable when every component has the same covariance (the quadratic terms cancel to
/// `−|x|²/(2s²)` far out). Guided sampling with the *exact* scores of `p_t(x | c)` and `p_t(x)`
/// follows `(1 + w) ∇ log p_t(x | c) − w ∇ log p_t(x)` at every `t`, which is not the score of
/// the diffused `q_w`, so it does not sample `q_w` (Chidambaram et al. 2024); the
/// `mixture-cfg` experiment measures by how much.
pub struct TiltedMixture {
    class: MixtureLogDensity,
    all: MixtureLogDensity,
    weight: f64,
}

impl TiltedMixture {
    /// The tilted law of component `label` of `mixture` with guidance weight `weight ≥ 0`.
    pub fn new(mixture: &GaussianMixture, label: usize, weight: f64) -> Self {
        TiltedMixture {
            class: MixtureLogDensity::new(&mixture.component(label)),
            all: MixtureLogDensity::new(mixture),
            weight,
        }
    }
}

impl LogDensity for TiltedMixture {
    fn dim(&self) -> usize {
        self.all.dim()
    }

    fn log_density_and_grad(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        let mut g_all = vec![0.0; x.len()];
        let lc = self.class.log_density_and_grad(x, grad);
        let la = self.all.log_density_and_grad(x, &mut g_all);
        let w = self.weight;
        for (g, a) in grad.iter_mut().zip(&g_all) {
            *g = (1.0 + w) * *g - w * a;
        }
        (1.0 + w) * lc - w * la
    }
}
