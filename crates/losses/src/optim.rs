//! The one optimiser of the crate: Adam/AdamW over flat `f32` parameters, learning-rate
//! schedules, gradient clipping, EMA of the weights, and the state's checkpoint tensors.

use crate::config::{LrSchedule, OptimizerConfig};
use safetensors::SafeTensors;
use smoluchowski_nets::read_f32;

/// Adam's `β₁`.
pub const BETA1: f32 = 0.9;
/// Adam's `β₂`.
pub const BETA2: f32 = 0.999;
/// Adam's `ε`.
pub const ADAM_EPS: f32 = 1e-8;

/// Learning rate at step `k` (0-based) of a run of `steps` steps with peak `lr`:
/// [`LrSchedule::Constant`] `lr`; [`LrSchedule::Cosine`] linear warm-up `lr (k+1)/W` for
/// `k < W`, then `final + ½(lr − final)(1 + cos(π p))`, `p = min(1, (k − W)/max(1, steps − W))`.
pub fn lr_at(lr: f64, schedule: LrSchedule, steps: usize, k: usize) -> f64 {
    match schedule {
        LrSchedule::Constant => lr,
        LrSchedule::Cosine {
            warmup_steps,
            final_lr,
        } => {
            if k < warmup_steps {
                lr * (k + 1) as f64 / warmup_steps as f64
            } else {
                let span = (steps - warmup_steps).max(1) as f64;
                let p = ((k - warmup_steps) as f64 / span).min(1.0);
                final_lr + 0.5 * (lr - final_lr) * (1.0 + (std::f64::consts::PI * p).cos())
            }
        }
    }
}

/// The global gradient norm `‖g‖₂`, accumulated in f64.
pub fn grad_norm(grad: &[f32]) -> f64 {
    grad.iter()
        .map(|&g| (g as f64) * (g as f64))
        .sum::<f64>()
        .sqrt()
}

/// Clips to global norm `clip`: if `norm > clip`, `g ← g · (clip/norm)` (the factor rounded to
/// f32 once).
pub fn clip_grad(grad: &mut [f32], norm: f64, clip: f32) {
    if norm > clip as f64 {
        let s = (clip as f64 / norm) as f32;
        grad.iter_mut().for_each(|g| *g *= s);
    }
}

/// One Adam/AdamW update in f32 for step count `t ≥ 1`:
/// `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
/// `θ ← θ·(1 − lr·wd) − (lr/(1−β₁ᵗ)) · m / (√v · (1/√(1−β₂ᵗ)) + ε)`
/// (`= θ(1 − lr·wd) − lr m̂/(√v̂ + ε)` with `m̂ = m/(1−β₁ᵗ)`, `v̂ = v/(1−β₂ᵗ)`; `wd = 0` for Adam,
/// where the factor is exactly 1).
pub fn adam_update(
    optimizer: OptimizerConfig,
    params: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    grad: &[f32],
    lr: f32,
    t: usize,
) {
    let bc1 = 1.0 - BETA1.powi(t as i32);
    let bc2 = 1.0 - BETA2.powi(t as i32);
    let decay = match optimizer {
        OptimizerConfig::Adam => 1.0,
        OptimizerConfig::AdamW { weight_decay } => 1.0 - lr * weight_decay,
    };
    let step = lr / bc1;
    let inv_sqrt_bc2 = 1.0 / bc2.sqrt();
    for (((p, m), v), &g) in params.iter_mut().zip(m).zip(v).zip(grad) {
        *m = BETA1 * *m + (1.0 - BETA1) * g;
        *v = BETA2 * *v + (1.0 - BETA2) * g * g;
        *p = *p * decay - step * *m / ((*v).sqrt() * inv_sqrt_bc2 + ADAM_EPS);
    }
}

/// EMA of the weights: `e ← decay · e + (1 − decay) · θ`.
pub fn ema_update(ema: &mut [f32], params: &[f32], decay: f32) {
    for (e, &p) in ema.iter_mut().zip(params) {
        *e = decay * *e + (1.0 - decay) * p;
    }
}

/// Everything that defines the optimiser of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimSettings {
    /// Adam or AdamW.
    pub optimizer: OptimizerConfig,
    /// Peak learning rate.
    pub lr: f64,
    /// Learning-rate schedule.
    pub lr_schedule: LrSchedule,
    /// Total steps of the run (the schedule's horizon).
    pub steps: usize,
    /// Clip the global gradient norm to this value.
    pub grad_clip: Option<f32>,
    /// EMA decay of the weights.
    pub ema_decay: Option<f32>,
}

impl OptimSettings {
    /// Learning rate at step `k` (0-based).
    pub fn lr_at(&self, k: usize) -> f64 {
        lr_at(self.lr, self.lr_schedule, self.steps, k)
    }
}

/// The optimiser state: parameters, Adam moments, EMA weights. The step count lives with the
/// training loop (bias corrections use `k + 1` for 0-based step `k`).
#[derive(Debug, Clone)]
pub struct Optimizer {
    /// Settings.
    pub settings: OptimSettings,
    /// Current parameters.
    pub params: Vec<f32>,
    /// First moments.
    pub m: Vec<f32>,
    /// Second moments.
    pub v: Vec<f32>,
    /// EMA weights (if `ema_decay` is set).
    pub ema: Option<Vec<f32>>,
}

impl Optimizer {
    /// Fresh state at `params` (zero moments, EMA = `params`).
    pub fn new(settings: OptimSettings, params: Vec<f32>) -> Self {
        let p = params.len();
        Optimizer {
            ema: settings.ema_decay.map(|_| params.clone()),
            m: vec![0.0; p],
            v: vec![0.0; p],
            params,
            settings,
        }
    }

    /// Step `k` (0-based) with gradient `grad` of norm `norm`: clip (if set), Adam/AdamW at
    /// `lr_at(k)` with bias corrections for `k + 1`, EMA (if set). Returns the learning rate.
    pub fn step(&mut self, k: usize, grad: &mut [f32], norm: f64) -> f64 {
        let s = self.settings;
        let lr = s.lr_at(k);
        if let Some(c) = s.grad_clip {
            clip_grad(grad, norm, c);
        }
        adam_update(
            s.optimizer,
            &mut self.params,
            &mut self.m,
            &mut self.v,
            grad,
            lr as f32,
            k + 1,
        );
        if let (Some(ema), Some(decay)) = (self.ema.as_mut(), s.ema_decay) {
            ema_update(ema, &self.params, decay);
        }
        lr
    }

    /// The checkpoint tensors: `params`, `adam_m`, `adam_v` and `ema` (if kept), each `[p]`.
    pub fn tensors(&self) -> Vec<(String, Vec<usize>, &[f32])> {
        let p = self.params.len();
        let mut t: Vec<(String, Vec<usize>, &[f32])> = vec![
            ("params".into(), vec![p], &self.params),
            ("adam_m".into(), vec![p], &self.m),
            ("adam_v".into(), vec![p], &self.v),
        ];
        if let Some(e) = &self.ema {
            t.push(("ema".into(), vec![p], e));
        }
        t
    }

    /// Restores moments and EMA (and parameters) from checkpoint tensors written by
    /// [`Optimizer::tensors`].
    pub fn load(&mut self, st: &SafeTensors) -> Result<(), String> {
        let p = self.params.len();
        self.params = read_f32(st, "params", &[p])?;
        self.m = read_f32(st, "adam_m", &[p])?;
        self.v = read_f32(st, "adam_v", &[p])?;
        if self.ema.is_some() {
            self.ema = Some(read_f32(st, "ema", &[p])?);
        }
        Ok(())
    }
}
