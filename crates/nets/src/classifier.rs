//! A small convolutional image classifier, the project's own yardstick for generated images:
//! its class probabilities give confidence and class histograms, its penultimate features the
//! Fréchet distance (`smoluchowski_metrics::frechet_distance`).
//!
//! Architecture ([`ClassifierConfig`], NHWC images): `conv₃(C → w₀)`, GN, SiLU;
//! `conv₃ stride 2 (w₀ → w₁)`, GN, SiLU; `conv₃ stride 2 (w₁ → w₂)`, GN, SiLU; global mean pool;
//! `features = SiLU(W₁ pool + b₁)`; `logits = W₂ features + b₂`. Loss: mean cross-entropy
//! `−(1/n) Σ log softmax(z_i)_{y_i}`, with `∂L/∂z_i = (softmax(z_i) − e_{y_i})/n`.

use serde::{Deserialize, Serialize};
use smoluchowski_core::ParamError;

use crate::conv::GroupNormStats;
use crate::layers::{
    conv_backward, conv_forward, gn_backward, gn_forward, lin_backward, lin_forward, silu,
    silu_backward, Cv, Gn, Lin, ParamBuilder,
};

/// Architecture of an [`ImageClassifier`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    /// Image side (divisible by 4).
    pub side: usize,
    /// Image channels.
    pub channels: usize,
    /// Channels of the three convolutions.
    pub widths: [usize; 3],
    /// Width of the feature layer (the Fréchet-distance features).
    pub features: usize,
    /// Number of classes.
    pub classes: usize,
    /// GroupNorm groups (divides every width).
    pub groups: usize,
}

impl ClassifierConfig {
    /// For MNIST: widths 32/64/64, 128 features, 10 classes, 8 groups.
    pub fn mnist() -> Self {
        ClassifierConfig {
            side: 28,
            channels: 1,
            widths: [32, 64, 64],
            features: 128,
            classes: 10,
            groups: 8,
        }
    }

    /// Checks every field (paths relative to this table).
    pub fn validate(&self) -> Result<(), ParamError> {
        let bad = |p: &str, v: String, r: &str| Err(ParamError::new(p, v, r));
        if self.side == 0 || !self.side.is_multiple_of(4) || self.side > 1024 {
            return bad("side", self.side.to_string(), "a multiple of 4 in 4..=1024");
        }
        if self.channels == 0 || self.channels > 16 {
            return bad("channels", self.channels.to_string(), "in 1..=16");
        }
        if self
            .widths
            .iter()
            .any(|&w| w == 0 || w > 1024 || self.groups == 0 || !w.is_multiple_of(self.groups))
        {
            return bad(
                "widths",
                format!("{:?}", self.widths),
                "in 1..=1024 and multiples of groups",
            );
        }
        if self.features == 0 || self.features > 4096 {
            return bad("features", self.features.to_string(), "in 1..=4096");
        }
        if self.classes < 2 || self.classes > 1000 {
            return bad("classes", self.classes.to_string(), "in 2..=1000");
        }
        Ok(())
    }

    /// Pixel values per image.
    pub fn dim(&self) -> usize {
        self.side * self.side * self.channels
    }
}

#[derive(Debug, Clone)]
struct Plan {
    convs: [Cv; 3],
    gns: [Gn; 3],
    hw: [usize; 3],
    l1: Lin,
    l2: Lin,
    len: usize,
    init: Vec<(usize, usize, usize)>,
    gammas: Vec<(usize, usize)>,
}

impl Plan {
    fn new(c: &ClassifierConfig) -> Plan {
        let mut b = ParamBuilder::default();
        let [w0, w1, w2] = c.widths;
        let c0 = b.conv(c.side, c.channels, w0, 3, 1);
        let g0 = b.gn(w0);
        let c1 = b.conv(c.side, w0, w1, 3, 2);
        let g1 = b.gn(w1);
        let c2 = b.conv(c.side / 2, w1, w2, 3, 2);
        let g2 = b.gn(w2);
        let l1 = b.lin(w2, c.features);
        let l2 = b.lin(c.features, c.classes);
        let s = |d: usize| (c.side / d) * (c.side / d);
        Plan {
            convs: [c0, c1, c2],
            gns: [g0, g1, g2],
            hw: [s(1), s(2), s(4)],
            l1,
            l2,
            len: b.len,
            init: b.init,
            gammas: b.gammas,
        }
    }
}

/// What the backward pass needs: per stage the conv input, GroupNorm input/stats/output;
/// the pooled vector, the feature pre-activation and the features.
struct Tape {
    inputs: Vec<Vec<f32>>,
    conv_out: Vec<Vec<f32>>,
    stats: Vec<GroupNormStats>,
    normed: Vec<Vec<f32>>,
    pooled: Vec<f32>,
    pre: Vec<f32>,
    features: Vec<f32>,
}

/// The classifier: configuration, layer plan, weights.
#[derive(Debug, Clone)]
pub struct ImageClassifier {
    config: ClassifierConfig,
    plan: Plan,
    params: Vec<f32>,
}

impl ImageClassifier {
    /// A classifier of `config` with weights drawn from `seed` (PyTorch's default
    /// initialisation).
    pub fn new(config: ClassifierConfig, seed: u64) -> Result<Self, ParamError> {
        config.validate()?;
        let plan = Plan::new(&config);
        let params = ParamBuilder::init_params(&plan.init, &plan.gammas, plan.len, seed);
        Ok(ImageClassifier {
            config,
            plan,
            params,
        })
    }

    /// A classifier of `config` with the given weights.
    pub fn from_flat(config: ClassifierConfig, params: &[f32]) -> Result<Self, ParamError> {
        config.validate()?;
        let plan = Plan::new(&config);
        if params.len() != plan.len {
            return Err(ParamError::new(
                "params",
                params.len(),
                format!("{} values", plan.len),
            ));
        }
        Ok(ImageClassifier {
            config,
            plan,
            params: params.to_vec(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClassifierConfig {
        &self.config
    }

    /// The weights.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// Replaces the weights (panics on a wrong length).
    pub fn set_params(&mut self, params: &[f32]) {
        assert_eq!(params.len(), self.plan.len, "parameter length");
        self.params.copy_from_slice(params);
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.plan.len
    }

    fn forward_tape(&self, p: &[f32], x: &[f32]) -> (Vec<f32>, Tape) {
        let pl = &self.plan;
        let g = self.config.groups;
        let (mut inputs, mut conv_out, mut stats, mut normed) = (vec![], vec![], vec![], vec![]);
        let mut h = x.to_vec();
        for k in 0..3 {
            let y = conv_forward(&pl.convs[k], p, &h);
            let mut st = GroupNormStats::default();
            let a = gn_forward(&pl.gns[k], pl.hw[k], g, p, &y, &mut st);
            let mut s = Vec::new();
            silu(&a, &mut s);
            inputs.push(std::mem::replace(&mut h, s));
            conv_out.push(y);
            stats.push(st);
            normed.push(a);
        }
        let c = pl.gns[2].c;
        let hw = pl.hw[2];
        let pooled: Vec<f32> = h
            .chunks_exact(hw * c)
            .flat_map(|img| {
                let mut s = vec![0.0f32; c];
                for px in img.chunks_exact(c) {
                    s.iter_mut().zip(px).for_each(|(a, b)| *a += b);
                }
                s.into_iter().map(move |v| v / hw as f32)
            })
            .collect();
        inputs.push(h);
        let (mut pre, mut features, mut logits) = (Vec::new(), Vec::new(), Vec::new());
        lin_forward(&pl.l1, p, &pooled, &mut pre);
        silu(&pre, &mut features);
        lin_forward(&pl.l2, p, &features, &mut logits);
        (
            logits,
            Tape {
                inputs,
                conv_out,
                stats,
                normed,
                pooled,
                pre,
                features,
            },
        )
    }

    /// Class logits (`n × classes`) of the images `x` (`n × dim`).
    pub fn logits(&self, x: &[f32]) -> Vec<f32> {
        self.chunked(x, self.config.classes, |t| t.0)
    }

    /// Penultimate features (`n × features`) of the images `x`, for Fréchet distances.
    pub fn features(&self, x: &[f32]) -> Vec<f32> {
        self.chunked(x, self.config.features, |t| t.1.features)
    }

    fn chunked(
        &self,
        x: &[f32],
        width: usize,
        pick: impl Fn((Vec<f32>, Tape)) -> Vec<f32>,
    ) -> Vec<f32> {
        let d = self.config.dim();
        let mut out = Vec::with_capacity(x.len() / d * width);
        for xc in x.chunks(256 * d) {
            out.extend(pick(self.forward_tape(&self.params, xc)));
        }
        out
    }

    /// Mean cross-entropy of the images `x` with labels `y` at the parameters `p`, its gradient
    /// into `grad` (overwritten), and the number of correct predictions (argmax).
    pub fn loss_and_grad(&self, p: &[f32], x: &[f32], y: &[u8], grad: &mut [f32]) -> (f64, usize) {
        let pl = &self.plan;
        let k = self.config.classes;
        let n = y.len();
        let (z, tp) = self.forward_tape(p, x);
        let (mut loss, mut correct) = (0.0f64, 0usize);
        let mut dz = vec![0.0f32; z.len()];
        for ((zr, dr), &label) in z.chunks_exact(k).zip(dz.chunks_exact_mut(k)).zip(y) {
            let m = zr.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let sum: f64 = zr.iter().map(|&v| ((v - m) as f64).exp()).sum();
            loss += sum.ln() - (zr[label as usize] - m) as f64;
            let argmax = zr
                .iter()
                .enumerate()
                .fold(0, |best, (i, &v)| if v > zr[best] { i } else { best });
            correct += usize::from(argmax == label as usize);
            for (i, (d, &v)) in dr.iter_mut().zip(zr).enumerate() {
                let prob = ((v - m) as f64).exp() / sum;
                *d = ((prob - f64::from(u8::from(i == label as usize))) / n as f64) as f32;
            }
        }
        grad.fill(0.0);
        let mut dfeat = Vec::new();
        lin_backward(&pl.l2, p, &tp.features, &dz, grad, Some(&mut dfeat));
        silu_backward(&tp.pre, &mut dfeat);
        let mut dpool = Vec::new();
        lin_backward(&pl.l1, p, &tp.pooled, &dfeat, grad, Some(&mut dpool));
        let (c, hw) = (pl.gns[2].c, pl.hw[2]);
        let mut dh: Vec<f32> = dpool
            .chunks_exact(c)
            .flat_map(|dp| (0..hw).flat_map(move |_| dp.iter().map(move |v| v / hw as f32)))
            .collect();
        for s in (0..3).rev() {
            silu_backward(&tp.normed[s], &mut dh);
            let dy = gn_backward(
                &pl.gns[s],
                pl.hw[s],
                self.config.groups,
                p,
                &tp.conv_out[s],
                &tp.stats[s],
                &dh,
                grad,
            );
            dh = conv_backward(&pl.convs[s], p, &tp.inputs[s], &dy, grad, s > 0);
        }
        (loss / n as f64, correct)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn tiny() -> ClassifierConfig {
        ClassifierConfig {
            side: 8,
            channels: 1,
            widths: [4, 8, 8],
            features: 6,
            classes: 3,
            groups: 2,
        }
    }

    #[test]
    fn gradient_matches_directional_differences() {
        let net = ImageClassifier::new(tiny(), 3).unwrap();
        let p = net.params().to_vec();
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let n = 5;
        let x: Vec<f32> = (0..n * 64).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        let y: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        let mut grad = vec![0.0; p.len()];
        let (l0, _) = net.loss_and_grad(&p, &x, &y, &mut grad);
        assert!(l0 > 0.5 && l0 < 2.0, "{l0}");
        let loss = |q: &[f32]| {
            let mut g = vec![0.0; q.len()];
            net.loss_and_grad(q, &x, &y, &mut g).0
        };
        let (init, gammas) = (&net.plan.init, &net.plan.gammas);
        crate::layers::assert_layer_gradients(init, gammas, &p, &grad, loss, &mut rng, 5e-3, 2e-4);
    }

    #[test]
    fn logits_and_features_have_their_shapes() {
        let net = ImageClassifier::new(tiny(), 1).unwrap();
        let x = vec![0.5f32; 3 * 64];
        assert_eq!(net.logits(&x).len(), 9);
        assert_eq!(net.features(&x).len(), 18);
        let bad = ClassifierConfig {
            widths: [4, 7, 8],
            ..tiny()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("widths"));
    }
}
