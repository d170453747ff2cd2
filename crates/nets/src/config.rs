//! Network configuration (serde, embeddable in TOML manifests).

use serde::{Deserialize, Serialize};
use smoluchowski_core::{check_finite, ParamError};

/// How the diffusion time `t` enters the network.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum TimeEmbedding {
    /// The notes' form: the input is `(x, t)` concatenated (one extra feature).
    Concat,
    /// `(x, t, sin(π ω_k t), cos(π ω_k t))` for `k = 0..frequencies`, with geometrically spaced
    /// `ω_k = max_frequency^{k/(K−1)}` (so `ω_0 = 1`, `ω_{K−1} = max_frequency`); `1 + 2K` extra features.
    Fourier {
        /// Number `K` of frequencies.
        frequencies: usize,
        /// Largest frequency `ω_{K−1}` (in units of π per unit time).
        max_frequency: f64,
    },
}

/// Hidden-layer nonlinearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `max(0, x)`.
    Relu,
    /// `x · σ(x) = x / (1 + e^{−x})`.
    Silu,
    /// tanh approximation `½ x (1 + tanh(√(2/π)(x + 0.044715 x³)))` (dfdx `fast_gelu`).
    Gelu,
    /// `tanh(x)`.
    Tanh,
}

impl Activation {
    /// The activation applied to one value (the same formula as the dfdx path).
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Relu => x.max(0.0),
            Activation::Silu => x / (1.0 + (-x).exp()),
            Activation::Gelu => {
                let a = x + 0.044715 * x * x * x;
                0.5 * x * (1.0 + (std::f32::consts::FRAC_2_PI.sqrt() * a).tanh())
            }
            Activation::Tanh => x.tanh(),
        }
    }
}

/// What the network's output means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetOutput {
    /// The output is the score `s_θ(x, t) ≈ ∇ₓ log p_t(x)`.
    Score,
    /// The output is the noise `ε_θ(x, t)`; the score is `s = −ε_θ / σ(t)`.
    Noise,
}

/// Architecture of a score network: an MLP on `(x, time features)`.
///
/// Layers: `input → width` (act), then `depth − 1` hidden `width → width` layers (act, or
/// `h + act(W h + b)` if `residual`), then a linear `width → dim` output layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreNetConfig {
    /// Data dimension `d`.
    pub dim: usize,
    /// Hidden width.
    pub width: usize,
    /// Number of hidden layers (≥ 1).
    pub depth: usize,
    /// Hidden nonlinearity.
    pub activation: Activation,
    /// Residual hidden blocks `h + act(W h + b)` (all hidden layers but the first).
    #[serde(default)]
    pub residual: bool,
    /// How `t` enters.
    pub time_embedding: TimeEmbedding,
    /// Meaning of the output.
    pub output: NetOutput,
}

/// An invalid network configuration: the workspace's [`ParamError`], its path relative to the
/// [`ScoreNetConfig`] (e.g. `width`).
pub type ConfigError = ParamError;

impl ScoreNetConfig {
    /// Part 2's network: `(x, t)` → 5 hidden layers of 64 with ReLU → `d = 2` outputs
    /// (the notes' "n_layers = 6"), predicting the noise (the loss `‖B(t) s_θ + ε‖²` is the
    /// ε-prediction loss with `ε_θ = −B s_θ`).
    pub fn part2() -> Self {
        ScoreNetConfig {
            dim: 2,
            width: 64,
            depth: 5,
            activation: Activation::Relu,
            residual: false,
            time_embedding: TimeEmbedding::Concat,
            output: NetOutput::Noise,
        }
    }

    /// The recommended 2-D default: 4 hidden layers of 64, ReLU, residual, Fourier time
    /// features (8 frequencies up to 32), noise prediction. ReLU keeps the hidden layers cheap
    /// (SiLU/GELU/tanh cost a transcendental per unit, which dominates at width 64).
    pub fn default_2d() -> Self {
        ScoreNetConfig {
            dim: 2,
            width: 64,
            depth: 4,
            activation: Activation::Relu,
            residual: true,
            time_embedding: TimeEmbedding::Fourier {
                frequencies: 8,
                max_frequency: 32.0,
            },
            output: NetOutput::Noise,
        }
    }

    /// Checks every field; the error names the field path (relative to this config) and its value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (path, v) in [
            ("dim", self.dim),
            ("width", self.width),
            ("depth", self.depth),
        ] {
            if v == 0 {
                return Err(ParamError::new(path, v, "≥ 1"));
            }
        }
        if let TimeEmbedding::Fourier {
            frequencies,
            max_frequency,
        } = self.time_embedding
        {
            if frequencies == 0 {
                return Err(ParamError::new(
                    "time_embedding.frequencies",
                    frequencies,
                    "≥ 1",
                ));
            }
            check_finite(
                "time_embedding.max_frequency",
                max_frequency,
                "≥ 1",
                |v| v >= 1.0,
            )?;
        }
        Ok(())
    }

    /// Number of time features appended to `x`.
    pub fn time_features(&self) -> usize {
        match self.time_embedding {
            TimeEmbedding::Concat => 1,
            TimeEmbedding::Fourier { frequencies, .. } => 1 + 2 * frequencies,
        }
    }

    /// Network input width `d + time_features()`.
    pub fn input_dim(&self) -> usize {
        self.dim + self.time_features()
    }

    /// Layer shapes `(in, out)` in order.
    pub fn layer_shapes(&self) -> Vec<(usize, usize)> {
        let mut v = vec![(self.input_dim(), self.width)];
        for _ in 1..self.depth {
            v.push((self.width, self.width));
        }
        v.push((self.width, self.dim));
        v
    }

    /// Total number of parameters.
    pub fn num_params(&self) -> usize {
        self.layer_shapes().iter().map(|&(i, o)| i * o + o).sum()
    }

    /// The angular frequencies `π ω_k` of the Fourier embedding (empty for Concat).
    pub fn angular_frequencies(&self) -> Vec<f64> {
        match self.time_embedding {
            TimeEmbedding::Concat => Vec::new(),
            TimeEmbedding::Fourier {
                frequencies,
                max_frequency,
            } => (0..frequencies)
                .map(|k| {
                    let e = if frequencies > 1 {
                        k as f64 / (frequencies - 1) as f64
                    } else {
                        0.0
                    };
                    std::f64::consts::PI * max_frequency.powf(e)
                })
                .collect(),
        }
    }

    /// Writes the time features of `t` into `out` (length `time_features()`):
    /// `t` (Concat) or `(t, sin(π ω_k t), cos(π ω_k t))` (Fourier).
    pub fn embed_time(&self, t: f64, out: &mut [f32]) {
        embed_time_with(&self.angular_frequencies(), t, out)
    }

    /// Fills the row-major network input (`n × input_dim()`) from `n` points `x` (`n × d`)
    /// and per-row times `t_of_row(i)`.
    pub fn fill_input_rows(&self, x: &[f32], t_of_row: impl Fn(usize) -> f64, out: &mut [f32]) {
        let d = self.dim;
        let k = self.input_dim();
        let n = x.len() / d;
        assert_eq!(out.len(), n * k, "input buffer has the wrong length");
        let freqs = self.angular_frequencies();
        for (i, row) in out.chunks_exact_mut(k).enumerate() {
            row[..d].copy_from_slice(&x[i * d..(i + 1) * d]);
            embed_time_with(&freqs, t_of_row(i), &mut row[d..]);
        }
    }
}

/// Time features `(t, sin(w_k t), cos(w_k t))` for precomputed angular frequencies `w_k`.
#[inline]
pub fn embed_time_with(freqs: &[f64], t: f64, out: &mut [f32]) {
    out[0] = t as f32;
    for (k, &w) in freqs.iter().enumerate() {
        let (s, c) = (w * t).sin_cos();
        out[1 + 2 * k] = s as f32;
        out[2 + 2 * k] = c as f32;
    }
}
