//! A small convolutional image classifier, the project's own yardstick for generated images:
//! its class probabilities give confidence and class histograms, its penultimate features the
//! Fréchet distance (`smoluchowski_metrics::frechet_distance`).
//!
//! Architecture ([`ClassifierConfig`], NHWC images): `conv₃(C → w₀)`, GN, SiLU;
//! `conv₃ stride 2 (w₀ → w₁)`, GN, SiLU; `conv₃ stride 2 (w₁ → w₂)`, GN, SiLU; mean pool of the
//! `s × s` map (`s = side/4`) onto a `p × p` grid (`p = pool`; `p = 1` is the global mean pool,
//! `p = s` keeps every position, i.e. flattens):
//! `pool[a, b, c] = (1/q²) Σ_{i, j < q} h[q a + i, q b + j, c]`, `q = s/p`;
//! `features = SiLU(W₁ vec(pool) + b₁)`; `logits = W₂ features + b₂`. Loss: mean cross-entropy
//! `−(1/n) Σ log softmax(z_i)_{y_i}`, with `∂L/∂z_i = (softmax(z_i) − e_{y_i})/n`.
//!
//! Evaluation ([`ImageClassifier::evaluate`]): class probabilities `softmax(z)` (in `f64`) and
//! the penultimate features, in chunks of [`EVAL_CHUNK`] images (bounded memory).

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
    /// Side `p` of the pooled grid (divides `side/4`): 1 = global mean pool (the default),
    /// `side/4` = flatten the last feature map.
    #[serde(default = "one")]
    pub pool: usize,
}

fn one() -> usize {
    1
}

impl ClassifierConfig {
    /// For MNIST: widths 32/64/64, 128 features, 10 classes, 8 groups, global mean pool.
    pub fn mnist() -> Self {
        ClassifierConfig {
            side: 28,
            channels: 1,
            widths: [32, 64, 64],
            features: 128,
            classes: 10,
            groups: 8,
            pool: 1,
        }
    }

    /// The project's MNIST yardstick ([`ClassifierConfig::mnist`] with the `7 × 7` map
    /// flattened, `pool = 7`): ≥ 99 % test accuracy with `losses::ClassifierTraining::mnist`.
    pub fn mnist_flat() -> Self {
        ClassifierConfig {
            pool: 7,
            ..Self::mnist()
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
        if self.pool == 0 || !(self.side / 4).is_multiple_of(self.pool) {
            return bad(
                "pool",
                self.pool.to_string(),
                &format!("a divisor of side/4 = {}", self.side / 4),
            );
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
        let l1 = b.lin(w2 * c.pool * c.pool, c.features);
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
        let pooled = pool_forward(&h, self.config.side / 4, pl.gns[2].c, self.config.pool);
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

    /// Class probabilities and penultimate features of the images `x` (`n × dim`), computed
    /// [`EVAL_CHUNK`] images at a time (each layer parallel over the chunk's images, every
    /// image's numbers independent of the thread count); errors if `x` is not whole images or
    /// holds a non-finite value.
    pub fn evaluate(&self, x: &[f32]) -> Result<ClassifierOutputs, ParamError> {
        let d = self.config.dim();
        if x.is_empty() || !x.len().is_multiple_of(d) {
            return Err(ParamError::new(
                "images (length)",
                x.len(),
                format!("a positive multiple of {d} (whole images)"),
            ));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(ParamError::new(
                format!("images[{}][{}]", i / d, i % d),
                x[i],
                "finite",
            ));
        }
        let (k, f) = (self.config.classes, self.config.features);
        let n = x.len() / d;
        let mut out = ClassifierOutputs {
            n,
            probs: Vec::with_capacity(n * k),
            features: Vec::with_capacity(n * f),
        };
        for xc in x.chunks(EVAL_CHUNK * d) {
            let (z, tape) = self.forward_tape(&self.params, xc);
            out.probs.extend(z.chunks_exact(k).flat_map(softmax));
            out.features
                .extend(tape.features.iter().map(|&v| f64::from(v)));
        }
        Ok(out)
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
        for xc in x.chunks(EVAL_CHUNK * d) {
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
        let mut dh = pool_backward(&dpool, self.config.side / 4, pl.gns[2].c, self.config.pool);
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

/// Mean pool of `s × s × c` maps (NHWC rows) onto `p × p` grids (see the module docs).
fn pool_forward(h: &[f32], s: usize, c: usize, p: usize) -> Vec<f32> {
    let q = s / p;
    let mut out = vec![0.0f32; h.len() / (s * s) * p * p];
    for (img, o) in h
        .chunks_exact(s * s * c)
        .zip(out.chunks_exact_mut(p * p * c))
    {
        for (pos, px) in img.chunks_exact(c).enumerate() {
            let cell = (pos / s / q) * p + (pos % s) / q;
            let oc = &mut o[cell * c..(cell + 1) * c];
            oc.iter_mut().zip(px).for_each(|(a, b)| *a += b);
        }
    }
    let area = (q * q) as f32;
    out.iter_mut().for_each(|v| *v /= area);
    out
}

/// Adjoint of [`pool_forward`]: `∂h[q a + i, q b + j, c] = ∂pool[a, b, c] / q²`.
fn pool_backward(dpool: &[f32], s: usize, c: usize, p: usize) -> Vec<f32> {
    let q = s / p;
    let area = (q * q) as f32;
    let mut dh = vec![0.0f32; dpool.len() / (p * p) * s * s];
    for (img, dp) in dh
        .chunks_exact_mut(s * s * c)
        .zip(dpool.chunks_exact(p * p * c))
    {
        for (pos, px) in img.chunks_exact_mut(c).enumerate() {
            let cell = (pos / s / q) * p + (pos % s) / q;
            px.iter_mut()
                .zip(&dp[cell * c..(cell + 1) * c])
                .for_each(|(a, b)| *a = b / area);
        }
    }
    dh
}

/// Images per forward pass in [`ImageClassifier::evaluate`], [`ImageClassifier::logits`] and
/// [`ImageClassifier::features`].
pub const EVAL_CHUNK: usize = 256;

/// What the classifier says about `n` images: class probabilities and penultimate features.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifierOutputs {
    /// Number of images.
    pub n: usize,
    /// `softmax(z)` per image (`n × classes`, row-major, `f64`).
    pub probs: Vec<f64>,
    /// Penultimate features `SiLU(W₁ vec(pool) + b₁)` per image (`n × features`).
    pub features: Vec<f64>,
}

impl ClassifierOutputs {
    /// Rows `range` (images `range.start..range.end`) as a new set of outputs.
    pub fn rows(&self, range: std::ops::Range<usize>, classes: usize, features: usize) -> Self {
        ClassifierOutputs {
            n: range.len(),
            probs: self.probs[range.start * classes..range.end * classes].to_vec(),
            features: self.features[range.start * features..range.end * features].to_vec(),
        }
    }
}

/// `softmax(z)_i = exp(z_i − max z) / Σ_j exp(z_j − max z)` in `f64`.
pub fn softmax(z: &[f32]) -> Vec<f64> {
    let m = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let e: Vec<f64> = z.iter().map(|&v| (v as f64 - m).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
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
            pool: 1,
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
    fn gradient_matches_directional_differences_with_a_pooled_grid() {
        let cfg = ClassifierConfig { pool: 2, ..tiny() };
        let net = ImageClassifier::new(cfg, 5).unwrap();
        let p = net.params().to_vec();
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let n = 4;
        let x: Vec<f32> = (0..n * 64).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        let y: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        let mut grad = vec![0.0; p.len()];
        net.loss_and_grad(&p, &x, &y, &mut grad);
        let loss = |q: &[f32]| {
            let mut g = vec![0.0; q.len()];
            net.loss_and_grad(q, &x, &y, &mut g).0
        };
        let (init, gammas) = (&net.plan.init, &net.plan.gammas);
        crate::layers::assert_layer_gradients(init, gammas, &p, &grad, loss, &mut rng, 5e-3, 2e-4);
    }

    /// A 4 × 4 map of 1 channel pooled onto 2 × 2: each cell is its block's mean; the backward
    /// pass spreads a cell's gradient evenly over its block.
    #[test]
    fn pooling_averages_blocks() {
        let h: Vec<f32> = (0..16).map(|v| v as f32).collect();
        assert_eq!(pool_forward(&h, 4, 1, 2), vec![2.5, 4.5, 10.5, 12.5]);
        assert_eq!(pool_forward(&h, 4, 1, 1), vec![7.5]);
        assert_eq!(pool_forward(&h, 4, 1, 4), h);
        let dh = pool_backward(&[4.0, 8.0, 0.0, 0.0], 4, 1, 2);
        assert_eq!(&dh[..8], &[1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0]);
        assert!(dh[8..].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn evaluate_gives_probabilities_and_the_features_chunk_by_chunk() {
        let net = ImageClassifier::new(tiny(), 2).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let n = EVAL_CHUNK + 3;
        let x: Vec<f32> = (0..n * 64).map(|_| rng.gen_range(0.0f32..1.0)).collect();
        let out = net.evaluate(&x).unwrap();
        assert_eq!(
            (out.n, out.probs.len(), out.features.len()),
            (n, 3 * n, 6 * n)
        );
        for row in out.probs.chunks_exact(3) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        let feats: Vec<f64> = net.features(&x).iter().map(|&v| f64::from(v)).collect();
        assert_eq!(out.features, feats);
        // The last image alone gives the same numbers as inside the batch.
        let last = net.evaluate(&x[(n - 1) * 64..]).unwrap();
        assert_eq!(last.probs, out.probs[3 * (n - 1)..]);
        let mut bad = x.clone();
        bad[70] = f32::NAN;
        let e = net.evaluate(&bad).unwrap_err().to_string();
        assert!(e.starts_with("images[1][6]"), "{e}");
        assert!(net.evaluate(&x[..63]).is_err());
        let e = ClassifierConfig { pool: 3, ..tiny() }
            .validate()
            .unwrap_err();
        assert!(e.to_string().starts_with("pool"), "{e}");
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
