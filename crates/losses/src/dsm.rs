//! Denoising score matching: batch construction on the host and loss evaluation.

use crate::config::{TimeSampling, Weighting};
use rand::Rng;
use rand_distr::StandardNormal;
use smoluchowski_datasets::Dataset;
use smoluchowski_nets::{NetOutput, ScoreNet, ScoreNetConfig};
use smoluchowski_sde::ForwardSde;

/// Number of equal-width time buckets over `[t_eps, T]` in loss reports.
pub const NUM_TIME_BUCKETS: usize = 10;

/// Host buffers of one DSM batch, built once per step and copied to the device once.
///
/// Each row's loss is `w ‖c·out − y‖² = ‖a·out − b‖²` with `a = √w·c`, `b = √w·y`, where
/// `w = λ(t)/σ(t)²` and (Score output) `c = σ, y = −ε`, since `λ‖s + ε/σ‖² = w‖σ s + ε‖²`;
/// (Noise output, `s = −ε_θ/σ`) `c = 1, y = ε`, since then `σ s + ε = ε − ε_θ`.
#[derive(Debug, Clone, Default)]
pub struct DsmBatch {
    /// Network input `(x_t, time features of t)`, `n × input_dim`.
    pub input: Vec<f32>,
    /// Per-element scale `a`, `n × d`.
    pub a: Vec<f32>,
    /// Per-element target `b`, `n × d`.
    pub b: Vec<f32>,
    /// Time bucket of each row.
    pub bucket: Vec<u8>,
    /// How [`DsmBatch::build`] draws the times (default: `t ~ U(t_eps, T)`).
    pub time_sampling: TimeSampling,
    x0: Vec<f64>,
    xt: Vec<f32>,
    t: Vec<f64>,
}

impl DsmBatch {
    /// An empty batch whose times are drawn by `time_sampling`.
    pub fn with_time_sampling(time_sampling: TimeSampling) -> Self {
        DsmBatch {
            time_sampling,
            ..Default::default()
        }
    }

    /// Fills the batch from the clean points already in `x0` (or resampled by `fill_x0`):
    /// `t ~ U(t_eps, T)` (or the discrete levels of [`DsmBatch::time_sampling`]), `ε ~ N(0, I)`, `x_t = m(t) x₀ + σ(t) ε`. Draws all `t` first, then all `ε`.
    /// Also fills [`DsmBatch::input`], the MLP feature rows of `(x_t, t)`.
    #[allow(clippy::too_many_arguments)]
    pub fn build<S: ForwardSde + ?Sized, R: Rng + ?Sized>(
        &mut self,
        config: &ScoreNetConfig,
        sde: &S,
        weighting: Weighting,
        t_eps: f64,
        n: usize,
        rng: &mut R,
        fill_x0: impl FnOnce(&mut R, &mut [f64]),
    ) {
        self.draw(
            config.dim,
            config.output,
            sde,
            weighting,
            t_eps,
            n,
            rng,
            fill_x0,
        );
        self.input.resize(n * config.input_dim(), 0.0);
        let ts = &self.t;
        config.fill_input_rows(&self.xt, |i| ts[i], &mut self.input);
    }

    /// [`DsmBatch::build`] for any network of row dimension `dim` and output kind `output`,
    /// without the network input ([`DsmBatch::input`] is left alone; the rows are
    /// [`DsmBatch::rows`]).
    #[allow(clippy::too_many_arguments)]
    pub fn draw<S: ForwardSde + ?Sized, R: Rng + ?Sized>(
        &mut self,
        dim: usize,
        output: NetOutput,
        sde: &S,
        weighting: Weighting,
        t_eps: f64,
        n: usize,
        rng: &mut R,
        fill_x0: impl FnOnce(&mut R, &mut [f64]),
    ) {
        let d = dim;
        self.x0.resize(n * d, 0.0);
        self.xt.resize(n * d, 0.0);
        self.t.resize(n, 0.0);
        self.a.resize(n * d, 0.0);
        self.b.resize(n * d, 0.0);
        self.bucket.resize(n, 0);
        fill_x0(rng, &mut self.x0);
        let t_end = sde.t_end();
        match self.time_sampling {
            TimeSampling::Uniform => {
                for t in self.t.iter_mut() {
                    *t = t_eps + (t_end - t_eps) * rng.gen::<f64>();
                }
            }
            ts => {
                for t in self.t.iter_mut() {
                    *t = ts.draw(t_eps, t_end, rng);
                }
            }
        }
        for i in 0..n {
            let t = self.t[i];
            let m = sde.mean_coef(t);
            let s = sde.marginal_std(t);
            let w = weighting.lambda(m, s) / (s * s);
            let (c, ysign) = match output {
                NetOutput::Score => (s, -1.0),
                NetOutput::Noise => (1.0, 1.0),
            };
            let sw = w.sqrt();
            for j in 0..d {
                let e: f64 = rng.sample(StandardNormal);
                let idx = i * d + j;
                self.xt[idx] = (m * self.x0[idx] + s * e) as f32;
                self.a[idx] = (sw * c) as f32;
                self.b[idx] = (sw * ysign * e) as f32;
            }
            let u = ((t - t_eps) / (t_end - t_eps) * NUM_TIME_BUCKETS as f64) as usize;
            self.bucket[i] = u.min(NUM_TIME_BUCKETS - 1) as u8;
        }
    }

    /// The network rows `x_t` (`n × d`) and their times `t` (`n`).
    pub fn rows(&self) -> (&[f32], &[f64]) {
        (&self.xt, &self.t)
    }

    /// Per-row losses `‖a·out − b‖²` of the network output `out` (`n × d`), accumulated into
    /// `sums`/`counts` per time bucket; returns the batch mean.
    pub fn row_losses(
        &self,
        out: &[f32],
        d: usize,
        sums: &mut [f64; NUM_TIME_BUCKETS],
        counts: &mut [usize; NUM_TIME_BUCKETS],
    ) -> f64 {
        let mut total = 0.0f64;
        for (i, ((o, a), b)) in out
            .chunks_exact(d)
            .zip(self.a.chunks_exact(d))
            .zip(self.b.chunks_exact(d))
            .enumerate()
        {
            let mut r = 0.0f64;
            for j in 0..d {
                let e = (a[j] * o[j] - b[j]) as f64;
                r += e * e;
            }
            total += r;
            let k = self.bucket[i] as usize;
            sums[k] += r;
            counts[k] += 1;
        }
        total / (out.len() / d).max(1) as f64
    }
}

/// A loss estimate with its breakdown over [`NUM_TIME_BUCKETS`] equal time buckets of `[t_eps, T]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LossReport {
    /// Mean loss over all rows.
    pub mean: f64,
    /// Mean loss per bucket (NaN for an empty bucket).
    pub bucket_means: [f64; NUM_TIME_BUCKETS],
    /// Rows per bucket.
    pub bucket_counts: [usize; NUM_TIME_BUCKETS],
}

impl LossReport {
    pub(crate) fn from_sums(
        mean: f64,
        sums: &[f64; NUM_TIME_BUCKETS],
        counts: &[usize; NUM_TIME_BUCKETS],
    ) -> Self {
        let mut bucket_means = [f64::NAN; NUM_TIME_BUCKETS];
        for k in 0..NUM_TIME_BUCKETS {
            if counts[k] > 0 {
                bucket_means[k] = sums[k] / counts[k] as f64;
            }
        }
        LossReport {
            mean,
            bucket_means,
            bucket_counts: *counts,
        }
    }
}

/// Monte-Carlo estimate of the DSM loss `E_t E_x₀ E_ε λ(t)‖s_θ(m x₀ + σ ε, t) + ε/σ‖²`
/// over `n` rows (`t ~ U(t_eps, T)`), evaluated in chunks of 16 384 rows with the dfdx forward
/// pass (no tape). All randomness comes from `rng`.
pub fn dsm_loss<D: Dataset, S: ForwardSde + ?Sized, R: Rng>(
    net: &ScoreNet,
    sde: &S,
    data: &D,
    weighting: Weighting,
    t_eps: f64,
    n: usize,
    rng: &mut R,
) -> LossReport {
    dsm_loss_with_time(
        net,
        sde,
        data,
        weighting,
        TimeSampling::Uniform,
        t_eps,
        n,
        rng,
    )
}

/// [`dsm_loss`] with the times drawn by `time_sampling` (e.g. the discrete DDPM levels).
#[allow(clippy::too_many_arguments)]
pub fn dsm_loss_with_time<D: Dataset, S: ForwardSde + ?Sized, R: Rng>(
    net: &ScoreNet,
    sde: &S,
    data: &D,
    weighting: Weighting,
    time_sampling: TimeSampling,
    t_eps: f64,
    n: usize,
    rng: &mut R,
) -> LossReport {
    const CHUNK: usize = 16_384;
    let cfg = net.config();
    let mut batch = DsmBatch::with_time_sampling(time_sampling);
    let mut sums = [0.0; NUM_TIME_BUCKETS];
    let mut counts = [0; NUM_TIME_BUCKETS];
    let mut total = 0.0;
    let mut done = 0;
    while done < n {
        let rows = CHUNK.min(n - done);
        batch.build(cfg, sde, weighting, t_eps, rows, rng, |r, x0| {
            data.sample_into(r, x0)
        });
        let x = net
            .device()
            .tensor_from_vec(batch.input.clone(), (rows, cfg.input_dim()));
        let out = net.forward(x).as_vec();
        total += batch.row_losses(&out, cfg.dim, &mut sums, &mut counts) * rows as f64;
        done += rows;
    }
    LossReport::from_sums(total / n.max(1) as f64, &sums, &counts)
}

use smoluchowski_nets::dfdx::prelude::TensorFromVec;
