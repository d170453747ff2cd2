//! A small UNet score network for images (Ho et al. 2020, scaled down), implementing
//! [`ScoreNetwork`] with its own forward and backward passes on the image ops of
//! [`crate::conv`].
//!
//! Architecture ([`UNetConfig`], images `side × side × channels` in NHWC rows, levels
//! `l = 0..L` with `C_l = base · mults[l]` channels at side `side / 2^l`):
//! - time: `τ(t) = [sin(s t ω_k), cos(s t ω_k)]`, `ω_k = 10000^{−k/(F/2)}` (`F` =
//!   `time_features`, `s` = `time_scale`), then `emb = W₂ SiLU(W₁ τ + b₁) + b₂` (width
//!   `4·base`); every residual block reads `SiLU(emb)` through its own linear map;
//! - `conv_in` (3×3, `channels → C_0`);
//! - down path: per level a residual block (`→ C_l`, its output kept as a skip), then a 3×3
//!   stride-2 convolution except at the last level;
//! - middle: one residual block at the lowest resolution;
//! - up path: per level (from the lowest) a residual block on `[h, skip_l]` (channel concat,
//!   `→ C_l`), then nearest ×2 upsampling and a 3×3 convolution `C_l → C_{l−1}` except at
//!   level 0;
//! - out: GroupNorm, SiLU, 3×3 convolution `C_0 → channels`.
//!
//! A residual block `x ↦ conv₂(SiLU(GN₂(conv₁(SiLU(GN₁(x))) + P·SiLU(emb)))) + skip(x)`, with
//! `skip` the identity or a 1×1 convolution when the channel count changes.
//!
//! Training passes run on fixed chunks of [`UNET_CHUNK`] images, one after the other (the ops
//! inside run in parallel over images), so the gradient is the same for any thread count.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use smoluchowski_core::ParamError;

use crate::config::NetOutput;
use crate::conv::{upsample2_backward, upsample2_forward, GroupNormStats};
use crate::elementwise::{add_assign, add_per_channel};
use crate::layers::{
    concat, conv_backward, conv_forward, gn_silu_backward, gn_silu_forward, lin_backward,
    lin_forward, silu, silu_backward, split, Cv, Gn, Lin, ParamBuilder,
};
use crate::network::ScoreNetwork;

/// Images per chunk of the training passes (part of the arithmetic: fixed).
pub const UNET_CHUNK: usize = 32;

/// Architecture of a [`UNet`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UNetConfig {
    /// Image side (height = width), divisible by `2^(levels − 1)`.
    pub side: usize,
    /// Image channels (1 for MNIST).
    pub channels: usize,
    /// Base channel count `c` (the notes: 32).
    pub base: usize,
    /// Channel multipliers per level (`len` = number of resolutions; the notes' depth 3).
    pub mults: Vec<usize>,
    /// Size `F` of the sinusoidal time encoding (even; the notes' `Tc = 16`).
    pub time_features: usize,
    /// Time scale `s` of the encoding (1000: `t ∈ [0, 1]` spans DDPM's step indices).
    pub time_scale: f64,
    /// GroupNorm groups (divides every level's channels).
    pub groups: usize,
    /// What the output means.
    pub output: NetOutput,
}

impl UNetConfig {
    /// The notes' UNet for MNIST (seed 004): `c = 32`, `Tc = 16`, depth 3 (28, 14, 7), channel
    /// multipliers (1, 2, 2), 8 groups, noise output.
    pub fn notes_mnist() -> Self {
        UNetConfig {
            side: 28,
            channels: 1,
            base: 32,
            mults: vec![1, 2, 2],
            time_features: 16,
            time_scale: 1000.0,
            groups: 8,
            output: NetOutput::Noise,
        }
    }

    /// Row dimension `side² · channels`.
    pub fn dim(&self) -> usize {
        self.side * self.side * self.channels
    }

    /// Checks every field (paths relative to this table).
    pub fn validate(&self) -> Result<(), ParamError> {
        let err = |p: &str, v: &dyn std::fmt::Display, r: String| Err(ParamError::new(p, v, r));
        if self.channels == 0 || self.channels > 16 {
            return err("channels", &self.channels, "in 1..=16".into());
        }
        if self.base == 0 || self.base > 512 {
            return err("base", &self.base, "in 1..=512".into());
        }
        if self.mults.is_empty() || self.mults.len() > 6 || self.mults.contains(&0) {
            return err(
                "mults",
                &format!("{:?}", self.mults),
                "1 to 6 positive multipliers".into(),
            );
        }
        let div = 1usize << (self.mults.len() - 1);
        if self.side == 0 || self.side > 1024 || !self.side.is_multiple_of(div) {
            return err(
                "side",
                &self.side,
                format!("in 1..=1024 and divisible by {div}"),
            );
        }
        if self.time_features < 2
            || !self.time_features.is_multiple_of(2)
            || self.time_features > 1024
        {
            return err(
                "time_features",
                &self.time_features,
                "even, in 2..=1024".into(),
            );
        }
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return err("time_scale", &self.time_scale, "> 0".into());
        }
        for m in &self.mults {
            if self.groups == 0 || !(self.base * m).is_multiple_of(self.groups) {
                return err(
                    "groups",
                    &self.groups,
                    format!("a divisor of every level's channels ({})", self.base * m),
                );
            }
        }
        Ok(())
    }
}

/// A residual block on `hw` pixels.
#[derive(Debug, Clone, Copy)]
struct Res {
    hw: usize,
    gn1: Gn,
    c1: Cv,
    proj: Lin,
    gn2: Gn,
    c2: Cv,
    skip: Option<Cv>,
}

/// The layer sequence with each layer's parameter offsets (the flat layout: layers in the
/// order they are built, each weight then bias).
#[derive(Debug, Clone)]
struct Plan {
    t1: Lin,
    t2: Lin,
    conv_in: Cv,
    down: Vec<Res>,
    downsample: Vec<Cv>,
    mid: Res,
    up: Vec<Res>,
    upconv: Vec<Cv>,
    gn_out: Gn,
    conv_out: Cv,
    len: usize,
    /// Weight tensors `(offset, len, fan_in)` for initialisation; GroupNorm scales listed apart.
    init: Vec<(usize, usize, usize)>,
    gammas: Vec<(usize, usize)>,
}

fn res(b: &mut ParamBuilder, side: usize, cin: usize, cout: usize, emb: usize) -> Res {
    Res {
        hw: side * side,
        gn1: b.gn(cin),
        c1: b.conv(side, cin, cout, 3, 1),
        proj: b.lin(emb, cout),
        gn2: b.gn(cout),
        c2: b.conv(side, cout, cout, 3, 1),
        skip: (cin != cout).then(|| b.conv(side, cin, cout, 1, 1)),
    }
}

impl Plan {
    fn new(c: &UNetConfig) -> Plan {
        let mut b = ParamBuilder::default();
        let emb = 4 * c.base;
        let ch: Vec<usize> = c.mults.iter().map(|m| c.base * m).collect();
        let side = |l: usize| c.side >> l;
        let levels = ch.len();
        let t1 = b.lin(c.time_features, emb);
        let t2 = b.lin(emb, emb);
        let conv_in = b.conv(c.side, c.channels, ch[0], 3, 1);
        let (mut down, mut downsample) = (Vec::new(), Vec::new());
        let mut cur = ch[0];
        for (l, &c_l) in ch.iter().enumerate() {
            down.push(res(&mut b, side(l), cur, c_l, emb));
            cur = c_l;
            if l + 1 < levels {
                downsample.push(b.conv(side(l), cur, cur, 3, 2));
            }
        }
        let mid = res(&mut b, side(levels - 1), cur, cur, emb);
        let (mut up, mut upconv) = (Vec::new(), Vec::new());
        for l in (0..levels).rev() {
            up.push(res(&mut b, side(l), cur + ch[l], ch[l], emb));
            cur = ch[l];
            if l > 0 {
                upconv.push(b.conv(side(l - 1), cur, ch[l - 1], 3, 1));
                cur = ch[l - 1];
            }
        }
        let gn_out = b.gn(ch[0]);
        let conv_out = b.conv(c.side, ch[0], c.channels, 3, 1);
        Plan {
            t1,
            t2,
            conv_in,
            down,
            downsample,
            mid,
            up,
            upconv,
            gn_out,
            conv_out,
            len: b.len,
            init: b.init,
            gammas: b.gammas,
        }
    }
}

/// What a residual block keeps for its backward pass.
struct ResTape {
    x: Vec<f32>,
    st1: GroupNormStats,
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    st2: GroupNormStats,
    d: Vec<f32>,
    e: Vec<f32>,
}

/// What the time embedding keeps: `τ`, `h₁ = W₁τ + b₁`, `SiLU(h₁)`, `emb`, `SiLU(emb)`.
struct TimeTape {
    tau: Vec<f32>,
    h1: Vec<f32>,
    s1: Vec<f32>,
    emb: Vec<f32>,
    semb: Vec<f32>,
}

impl Drop for ResTape {
    /// The activations go back to the buffer pool (see `pool.rs`).
    fn drop(&mut self) {
        for v in [
            &mut self.x,
            &mut self.a,
            &mut self.b,
            &mut self.c,
            &mut self.d,
            &mut self.e,
        ] {
            crate::pool::recycle(std::mem::take(v));
        }
    }
}

/// Everything the backward pass needs, in forward order.
struct Tape {
    time: TimeTape,
    x0: Vec<f32>,
    down: Vec<ResTape>,
    skips: Vec<Vec<f32>>,
    mid: ResTape,
    up: Vec<ResTape>,
    upsampled: Vec<Vec<f32>>,
    last: Vec<f32>,
    st_out: GroupNormStats,
    a_out: Vec<f32>,
    s_out: Vec<f32>,
}

impl Drop for Tape {
    /// The activations go back to the buffer pool (see `pool.rs`); the residual blocks'
    /// tapes recycle theirs when dropped.
    fn drop(&mut self) {
        let vecs = [
            std::mem::take(&mut self.x0),
            std::mem::take(&mut self.last),
            std::mem::take(&mut self.a_out),
            std::mem::take(&mut self.s_out),
        ];
        let lists = std::mem::take(&mut self.skips)
            .into_iter()
            .chain(std::mem::take(&mut self.upsampled));
        vecs.into_iter().chain(lists).for_each(crate::pool::recycle);
    }
}

/// The UNet: its configuration, layer plan and weights.
#[derive(Debug, Clone)]
pub struct UNet {
    config: UNetConfig,
    plan: Plan,
    params: Vec<f32>,
}

/// A batch prepared for training: images (NHWC rows) and their times.
#[derive(Debug, Clone, Default)]
pub struct UNetInput {
    /// `n · dim` pixel values.
    pub x: Vec<f32>,
    /// `n` times.
    pub t: Vec<f64>,
}

impl UNet {
    /// A UNet of `config` with weights drawn from `seed` ([`ScoreNetwork::init_params`]).
    pub fn new(config: UNetConfig, seed: u64) -> Result<Self, ParamError> {
        config.validate()?;
        let plan = Plan::new(&config);
        let mut net = UNet {
            params: vec![0.0; plan.len],
            plan,
            config,
        };
        net.params = net.init_params(seed);
        Ok(net)
    }

    /// A UNet of `config` with the given flat weights.
    pub fn from_flat(config: UNetConfig, params: &[f32]) -> Result<Self, ParamError> {
        config.validate()?;
        let plan = Plan::new(&config);
        if params.len() != plan.len {
            return Err(ParamError::new(
                "params",
                params.len(),
                format!("{} values", plan.len),
            ));
        }
        Ok(UNet {
            params: params.to_vec(),
            plan,
            config,
        })
    }

    /// Multiply–add FLOPs (2 per multiply–add) of the convolutions and linear maps for one
    /// image's forward pass, `Σ 2 · pixels_out · k² C_in · C_out`; the backward pass costs
    /// twice that (input and weight gradients). The measure of a training step's GEMM work.
    pub fn forward_flops_per_image(&self) -> f64 {
        let pl = &self.plan;
        let conv = |c: &Cv| 2.0 * (c.s.out_h() * c.s.out_w() * c.s.patch() * c.s.c_out) as f64;
        let lin = |l: &Lin| 2.0 * (l.i * l.o) as f64;
        let res =
            |r: &Res| conv(&r.c1) + conv(&r.c2) + r.skip.as_ref().map_or(0.0, conv) + lin(&r.proj);
        lin(&pl.t1)
            + lin(&pl.t2)
            + conv(&pl.conv_in)
            + pl.down.iter().map(res).sum::<f64>()
            + pl.downsample.iter().map(conv).sum::<f64>()
            + res(&pl.mid)
            + pl.up.iter().map(res).sum::<f64>()
            + pl.upconv.iter().map(conv).sum::<f64>()
            + conv(&pl.conv_out)
    }

    /// The configuration.
    pub fn config(&self) -> &UNetConfig {
        &self.config
    }

    /// `τ(t)` for each time: `[sin(s t ω_k)]_k ++ [cos(s t ω_k)]_k`, `ω_k = 10000^{−k/(F/2)}`.
    fn time_features(&self, t: &[f64]) -> Vec<f32> {
        let half = self.config.time_features / 2;
        let mut out = Vec::with_capacity(t.len() * 2 * half);
        for &ti in t {
            let st = self.config.time_scale * ti;
            let w = |k: usize| (-(10000f64.ln()) * k as f64 / half as f64).exp();
            out.extend((0..half).map(|k| (st * w(k)).sin() as f32));
            out.extend((0..half).map(|k| (st * w(k)).cos() as f32));
        }
        out
    }

    fn res_forward(&self, r: &Res, p: &[f32], x: Vec<f32>, semb: &[f32]) -> (Vec<f32>, ResTape) {
        let groups = self.config.groups;
        let mut st1 = GroupNormStats::default();
        let (a, b) = gn_silu_forward(&r.gn1, r.hw, groups, p, &x, &mut st1);
        let mut c = conv_forward(&r.c1, p, &b);
        let mut proj = Vec::new();
        lin_forward(&r.proj, p, semb, &mut proj);
        let co = r.proj.o;
        add_per_channel(&mut c, &proj, co);
        let mut st2 = GroupNormStats::default();
        let (d, e) = gn_silu_forward(&r.gn2, r.hw, groups, p, &c, &mut st2);
        let mut out = conv_forward(&r.c2, p, &e);
        match &r.skip {
            Some(s) => {
                let sk = conv_forward(s, p, &x);
                add_assign(&mut out, &sk);
                crate::pool::recycle(sk);
            }
            None => add_assign(&mut out, &x),
        }
        (
            out,
            ResTape {
                x,
                st1,
                a,
                b,
                c,
                st2,
                d,
                e,
            },
        )
    }

    /// Back-propagates `dout` through a residual block: adds parameter gradients into `g` and
    /// `∂/∂SiLU(emb)` into `dsemb`; returns `∂/∂x`.
    #[allow(clippy::too_many_arguments)]
    fn res_backward(
        &self,
        r: &Res,
        p: &[f32],
        tp: &ResTape,
        semb: &[f32],
        dout: &[f32],
        g: &mut [f32],
        dsemb: &mut [f32],
    ) -> Vec<f32> {
        let groups = self.config.groups;
        let mut de = conv_backward(&r.c2, p, &tp.e, dout, g, true);
        let dc = gn_silu_backward(&r.gn2, r.hw, groups, p, &tp.c, &tp.d, &tp.st2, &mut de, g);
        crate::pool::recycle(de);
        let co = r.proj.o;
        // Per image (in parallel), the sum over its pixels in order.
        let mut dproj = vec![0.0f32; dc.len() / r.hw];
        dproj
            .par_chunks_exact_mut(co)
            .zip(dc.par_chunks_exact(r.hw * co))
            .for_each(|(s, img)| {
                for px in img.chunks_exact(co) {
                    s.iter_mut().zip(px).for_each(|(a, b)| *a += b);
                }
            });
        let mut ds = Vec::new();
        lin_backward(&r.proj, p, semb, &dproj, g, Some(&mut ds));
        dsemb.iter_mut().zip(&ds).for_each(|(a, b)| *a += b);
        let mut db = conv_backward(&r.c1, p, &tp.b, &dc, g, true);
        crate::pool::recycle(dc);
        let mut dx = gn_silu_backward(&r.gn1, r.hw, groups, p, &tp.x, &tp.a, &tp.st1, &mut db, g);
        crate::pool::recycle(db);
        match &r.skip {
            Some(s) => {
                let d2 = conv_backward(s, p, &tp.x, dout, g, true);
                add_assign(&mut dx, &d2);
                crate::pool::recycle(d2);
            }
            None => add_assign(&mut dx, dout),
        }
        dx
    }

    /// Forward pass of a chunk, keeping what the backward pass needs.
    fn forward_tape(&self, p: &[f32], x: &[f32], t: &[f64]) -> (Vec<f32>, Tape) {
        let pl = &self.plan;
        let tau = self.time_features(t);
        let (mut h1, mut s1, mut emb, mut semb) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        lin_forward(&pl.t1, p, &tau, &mut h1);
        silu(&h1, &mut s1);
        lin_forward(&pl.t2, p, &s1, &mut emb);
        silu(&emb, &mut semb);
        let mut h = conv_forward(&pl.conv_in, p, x);
        let (mut down, mut skips) = (Vec::new(), Vec::new());
        for (l, r) in pl.down.iter().enumerate() {
            let (o, tp) = self.res_forward(r, p, h, &semb);
            down.push(tp);
            h = match pl.downsample.get(l) {
                Some(ds) => conv_forward(ds, p, &o),
                None => o.clone(),
            };
            skips.push(o);
        }
        let (o, mid) = self.res_forward(&pl.mid, p, h, &semb);
        h = o;
        let (mut up, mut upsampled) = (Vec::new(), Vec::new());
        for (i, r) in pl.up.iter().enumerate() {
            let skip = &skips[skips.len() - 1 - i];
            let c_skip = skip.len() / (x.len() / self.config.dim()) / r.hw;
            let c_h = r.gn1.c - c_skip;
            let cat = concat(&h, c_h, skip, c_skip);
            let (o, tp) = self.res_forward(r, p, cat, &semb);
            up.push(tp);
            h = match pl.upconv.get(i) {
                Some(uc) => {
                    let side = (r.hw as f64).sqrt() as usize;
                    let co = r.proj.o;
                    // Every entry is written by the upsampling.
                    let mut u = crate::pool::overwritten(4 * o.len());
                    upsample2_forward(&o, side, side, co, &mut u);
                    let y = conv_forward(uc, p, &u);
                    upsampled.push(u);
                    y
                }
                None => o,
            };
        }
        let mut st_out = GroupNormStats::default();
        let (a_out, s_out) = gn_silu_forward(
            &pl.gn_out,
            self.config.side * self.config.side,
            self.config.groups,
            p,
            &h,
            &mut st_out,
        );
        let y = conv_forward(&pl.conv_out, p, &s_out);
        let time = TimeTape {
            tau,
            h1,
            s1,
            emb,
            semb,
        };
        (
            y,
            Tape {
                time,
                x0: x.to_vec(),
                down,
                skips,
                mid,
                up,
                upsampled,
                last: h,
                st_out,
                a_out,
                s_out,
            },
        )
    }

    /// Backward pass of a chunk: adds `∂(Σ f ⊙ dy)/∂θ` into `g`.
    fn backward_tape(&self, p: &[f32], tp: &Tape, dy: &[f32], g: &mut [f32]) {
        let pl = &self.plan;
        let n = tp.x0.len() / self.config.dim();
        let mut dsemb = vec![0.0f32; n * pl.t2.o];
        let semb = &tp.time.semb;
        let mut ds = conv_backward(&pl.conv_out, p, &tp.s_out, dy, g, true);
        let mut dh = gn_silu_backward(
            &pl.gn_out,
            self.config.side * self.config.side,
            self.config.groups,
            p,
            &tp.last,
            &tp.a_out,
            &tp.st_out,
            &mut ds,
            g,
        );
        let levels = pl.down.len();
        let mut dskips: Vec<Vec<f32>> = vec![Vec::new(); levels];
        for i in (0..pl.up.len()).rev() {
            let r = &pl.up[i];
            if let Some(uc) = pl.upconv.get(i) {
                let du = conv_backward(uc, p, &tp.upsampled[i], &dh, g, true);
                let side = (r.hw as f64).sqrt() as usize;
                // Zero-filled by the upsampling's adjoint.
                let mut d = crate::pool::overwritten(du.len() / 4);
                upsample2_backward(&du, side, side, r.proj.o, &mut d);
                crate::pool::recycle(du);
                crate::pool::recycle(std::mem::replace(&mut dh, d));
            }
            let dcat = self.res_backward(r, p, &tp.up[i], semb, &dh, g, &mut dsemb);
            let skip_level = levels - 1 - i;
            let c_skip = tp.skips[skip_level].len() / n / r.hw;
            let (a, b) = split(&dcat, r.gn1.c - c_skip, c_skip);
            crate::pool::recycle(dcat);
            crate::pool::recycle(std::mem::replace(&mut dh, a));
            dskips[skip_level] = b;
        }
        let dmid = self.res_backward(&pl.mid, p, &tp.mid, semb, &dh, g, &mut dsemb);
        crate::pool::recycle(std::mem::replace(&mut dh, dmid));
        for l in (0..levels).rev() {
            let mut dout = match pl.downsample.get(l) {
                Some(dsc) => conv_backward(dsc, p, &tp.skips[l], &dh, g, true),
                None => dh.clone(),
            };
            add_assign(&mut dout, &dskips[l]);
            let dx = self.res_backward(&pl.down[l], p, &tp.down[l], semb, &dout, g, &mut dsemb);
            crate::pool::recycle(dout);
            crate::pool::recycle(std::mem::replace(&mut dh, dx));
        }
        conv_backward(&pl.conv_in, p, &tp.x0, &dh, g, false);
        crate::pool::recycle(dh);
        let t = &tp.time;
        silu_backward(&t.emb, &mut dsemb);
        let mut ds1 = Vec::new();
        lin_backward(&pl.t2, p, &t.s1, &dsemb, g, Some(&mut ds1));
        silu_backward(&t.h1, &mut ds1);
        lin_backward(&pl.t1, p, &t.tau, &ds1, g, None);
    }

    /// Outputs for rows `x` at per-row times `t`.
    pub fn forward_rows(&self, params: &[f32], x: &[f32], t: &[f64], out: &mut [f32]) {
        let d = self.config.dim();
        for ((xc, tc), oc) in x
            .chunks(UNET_CHUNK * d)
            .zip(t.chunks(UNET_CHUNK))
            .zip(out.chunks_mut(UNET_CHUNK * d))
        {
            let (y, _) = self.forward_tape(params, xc, tc);
            oc.copy_from_slice(&y);
        }
    }
}

impl ScoreNetwork for UNet {
    type Input = UNetInput;
    type Workspace = ();

    fn dim(&self) -> usize {
        self.config.dim()
    }

    fn num_params(&self) -> usize {
        self.plan.len
    }

    fn output(&self) -> NetOutput {
        self.config.output
    }

    fn config_json(&self) -> String {
        serde_json::to_string(&self.config).expect("serialises")
    }

    fn from_config_json(json: &str, params: &[f32]) -> Result<Self, String> {
        let cfg: UNetConfig = serde_json::from_str(json).map_err(|e| format!("net_config: {e}"))?;
        UNet::from_flat(cfg, params).map_err(|e| e.to_string())
    }

    /// PyTorch's default initialisation: every weight and bias `U(−1/√fan_in, 1/√fan_in)`;
    /// GroupNorm `γ = 1`, `β = 0`.
    fn init_params(&self, seed: u64) -> Vec<f32> {
        ParamBuilder::init_params(&self.plan.init, &self.plan.gammas, self.plan.len, seed)
    }

    fn params(&self) -> Vec<f32> {
        self.params.clone()
    }

    fn set_params(&mut self, params: &[f32]) {
        assert_eq!(params.len(), self.plan.len, "parameter length");
        self.params.copy_from_slice(params);
    }

    fn forward(&self, params: &[f32], x: &[f32], t: f64, out: &mut [f32]) {
        let n = x.len() / self.dim();
        self.forward_rows(params, x, &vec![t; n], out);
    }

    fn prepare_input(&self, x: &[f32], t: &[f64], input: &mut UNetInput) {
        input.x.clear();
        input.x.extend_from_slice(x);
        input.t.clear();
        input.t.extend_from_slice(t);
    }

    /// Forward over all chunks, the objective, then per chunk a taped forward and the backward
    /// pass (one extra forward, so only the outputs of the whole batch are held at once).
    fn loss_and_grad(
        &self,
        params: &[f32],
        input: &UNetInput,
        objective: &mut dyn FnMut(&[f32], &mut [f32]) -> f64,
        grad: &mut [f32],
        _ws: &mut (),
    ) -> f64 {
        let d = self.dim();
        let mut f = vec![0.0f32; input.x.len()];
        self.forward_rows(params, &input.x, &input.t, &mut f);
        let mut g = vec![0.0f32; f.len()];
        let loss = objective(&f, &mut g);
        grad.fill(0.0);
        for ((xc, tc), gc) in input
            .x
            .chunks(UNET_CHUNK * d)
            .zip(input.t.chunks(UNET_CHUNK))
            .zip(g.chunks(UNET_CHUNK * d))
        {
            let (_, tape) = self.forward_tape(params, xc, tc);
            self.backward_tape(params, &tape, gc, grad);
        }
        loss
    }

    /// Per chunk: taped forward, the chunk's rows of `∂L/∂f = (2/n) a ⊙ (a ⊙ f − b)`, backward.
    fn weighted_sq_loss_and_grad(
        &self,
        params: &[f32],
        input: &UNetInput,
        a: &[f32],
        b: &[f32],
        out: &mut [f32],
        grad: &mut [f32],
        _ws: &mut (),
    ) -> f64 {
        let d = self.dim();
        let n = (input.x.len() / d).max(1);
        self.weighted_sq_chunks(params, input, a, b, out, grad) / n as f64
    }
}

impl UNet {
    /// The body of [`ScoreNetwork::weighted_sq_loss_and_grad`]: returns `Σ (a ⊙ f − b)²`.
    fn weighted_sq_chunks(
        &self,
        params: &[f32],
        input: &UNetInput,
        a: &[f32],
        b: &[f32],
        out: &mut [f32],
        grad: &mut [f32],
    ) -> f64 {
        let d = self.dim();
        let n = (input.x.len() / d).max(1);
        let scale = 2.0 / n as f32;
        let mut total = 0.0f64;
        grad.fill(0.0);
        let chunk = UNET_CHUNK * d;
        for (k, (xc, tc)) in input
            .x
            .chunks(chunk)
            .zip(input.t.chunks(UNET_CHUNK))
            .enumerate()
        {
            let (f, tape) = crate::profile::timed(
                || "unet chunk forward (total)".into(),
                0.0,
                || self.forward_tape(params, xc, tc),
            );
            let r0 = k * chunk;
            let mut g = vec![0.0f32; f.len()];
            for i in 0..f.len() {
                let r = a[r0 + i] * f[i] - b[r0 + i];
                total += (r as f64) * (r as f64);
                g[i] = scale * a[r0 + i] * r;
            }
            out[r0..r0 + f.len()].copy_from_slice(&f);
            crate::profile::timed(
                || "unet chunk backward (total)".into(),
                0.0,
                || self.backward_tape(params, &tape, &g, grad),
            );
            crate::profile::timed(|| "unet tape drop".into(), 0.0, || drop(tape));
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn tiny() -> UNetConfig {
        UNetConfig {
            side: 8,
            channels: 1,
            base: 8,
            mults: vec![1, 2],
            time_features: 4,
            time_scale: 10.0,
            groups: 2,
            output: NetOutput::Noise,
        }
    }

    #[test]
    fn notes_unet_has_the_documented_size() {
        let net = UNet::new(UNetConfig::notes_mnist(), 0).unwrap();
        assert_eq!(net.dim(), 784);
        let n = net.num_params();
        assert!(n > 500_000 && n < 3_000_000, "{n}");
        let bad = UNetConfig {
            groups: 5,
            ..UNetConfig::notes_mnist()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("groups must be a divisor"));
        let bad = UNetConfig {
            side: 30,
            ..UNetConfig::notes_mnist()
        };
        assert!(bad.validate().is_err());
    }

    /// Directional derivatives: for random directions `v` restricted to each layer group, the
    /// central difference of the loss equals `⟨∇L, v⟩`.
    #[test]
    fn gradient_matches_directional_differences() {
        let net = UNet::new(tiny(), 1).unwrap();
        let p = net.params();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let n = 3;
        let d = net.dim();
        let x: Vec<f32> = (0..n * d).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        let t: Vec<f64> = (0..n).map(|_| rng.gen_range(0.0..1.0)).collect();
        let a: Vec<f32> = (0..n * d).map(|_| rng.gen_range(0.5f32..1.5)).collect();
        let b: Vec<f32> = (0..n * d).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        let mut input = UNetInput::default();
        net.prepare_input(&x, &t, &mut input);
        let loss = |q: &[f32]| -> f64 {
            let mut f = vec![0.0; n * d];
            net.forward_rows(q, &x, &t, &mut f);
            f.iter()
                .zip(&a)
                .zip(&b)
                .map(|((f, a), b)| ((a * f - b) as f64).powi(2))
                .sum::<f64>()
                / n as f64
        };
        let mut grad = vec![0.0; p.len()];
        let mut out = vec![0.0; n * d];
        let l0 = net.weighted_sq_loss_and_grad(&p, &input, &a, &b, &mut out, &mut grad, &mut ());
        assert!((l0 - loss(&p)).abs() < 1e-4 * l0);
        let mut general = vec![0.0; p.len()];
        let mut obj = |f: &[f32], g: &mut [f32]| {
            let mut s = 0.0;
            for i in 0..f.len() {
                let r = a[i] * f[i] - b[i];
                s += (r as f64).powi(2);
                g[i] = 2.0 / n as f32 * a[i] * r;
            }
            s / n as f64
        };
        net.loss_and_grad(&p, &input, &mut obj, &mut general, &mut ());
        assert_eq!(general, grad, "general and fused paths agree bit for bit");
        // Each weight tensor of the plan, plus the GroupNorm scales.
        let (init, gammas) = (&net.plan.init, &net.plan.gammas);
        crate::layers::assert_layer_gradients(init, gammas, &p, &grad, loss, &mut rng, 3e-3, 1e-3);
    }

    #[test]
    fn training_pass_is_bit_identical_for_any_thread_count() {
        let net = UNet::new(tiny(), 2).unwrap();
        let p = net.params();
        let mut rng = ChaCha8Rng::seed_from_u64(10);
        let n = UNET_CHUNK + 5;
        let d = net.dim();
        let x: Vec<f32> = (0..n * d).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        let t: Vec<f64> = (0..n).map(|_| rng.gen_range(0.0..1.0)).collect();
        let mut input = UNetInput::default();
        net.prepare_input(&x, &t, &mut input);
        let ones = vec![1.0f32; n * d];
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let (mut g, mut out) = (vec![0.0; p.len()], vec![0.0; n * d]);
                let l =
                    net.weighted_sq_loss_and_grad(&p, &input, &ones, &x, &mut out, &mut g, &mut ());
                (l.to_bits(), g, out)
            })
        };
        assert_eq!(run(1), run(3));
    }

    /// Time of one training step of the notes' UNet (`cargo test --release -p
    /// smoluchowski-nets unet_step_time -- --ignored --nocapture`); speed is measured by
    /// `cargo xtask bench`, this only prints.
    #[test]
    #[ignore = "timing printout"]
    fn unet_step_time() {
        let net = UNet::new(UNetConfig::notes_mnist(), 0).unwrap();
        let p = net.params();
        let n = 64;
        let d = net.dim();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let x: Vec<f32> = (0..n * d).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        let t: Vec<f64> = (0..n).map(|_| rng.gen_range(0.0..1.0)).collect();
        let mut input = UNetInput::default();
        net.prepare_input(&x, &t, &mut input);
        let ones = vec![1.0f32; n * d];
        let (mut g, mut out) = (vec![0.0; p.len()], vec![0.0; n * d]);
        // CPU time of all this process's threads (ns), from /proc/self/task/*/schedstat: with
        // other jobs on the machine, `2 cores × images / CPU-s` estimates the unloaded rate.
        let cpu = || -> f64 {
            std::fs::read_dir("/proc/self/task")
                .map(|dir| {
                    dir.filter_map(|e| {
                        let s = std::fs::read_to_string(e.ok()?.path().join("schedstat")).ok()?;
                        s.split_whitespace().next()?.parse::<f64>().ok()
                    })
                    .sum::<f64>()
                        * 1e-9
                })
                .unwrap_or(f64::NAN)
        };
        net.weighted_sq_loss_and_grad(&p, &input, &ones, &x, &mut out, &mut g, &mut ());
        let steps = 3;
        let (start, c0) = (std::time::Instant::now(), cpu());
        for _ in 0..steps {
            net.weighted_sq_loss_and_grad(&p, &input, &ones, &x, &mut out, &mut g, &mut ());
        }
        let dt = start.elapsed().as_secs_f64() / steps as f64;
        let dc = (cpu() - c0) / steps as f64;
        let flops = 3.0 * net.forward_flops_per_image() * n as f64;
        let threads = rayon::current_num_threads();
        println!(
            "{} params; batch {n}, {} kernels: {dt:.3} s per step, {:.1} images/s, {:.1} GFLOP/s; \
             CPU {dc:.3} s per step: {:.1} images per {threads} CPU-s",
            p.len(),
            crate::kernel_level(),
            n as f64 / dt,
            flops / dt / 1e9,
            n as f64 * threads as f64 / dc
        );
    }

    /// The same architecture and flat layout as PyTorch: outputs of `benches/peer/unet_peer.py
    /// --reference` (torch 2.15.0, CPU, float32; computed once, pinned here) for deterministic
    /// parameters `p_i = 0.2 sin(0.37 i + 0.1)` and inputs `x_j = 0.9 cos(0.11 j)`.
    #[test]
    fn matches_pytorch_reference_outputs() {
        let cfg = UNetConfig {
            side: 8,
            channels: 1,
            base: 8,
            mults: vec![1, 2],
            time_features: 8,
            time_scale: 1000.0,
            groups: 4,
            output: NetOutput::Noise,
        };
        let n_params = Plan::new(&cfg).len;
        assert_eq!(n_params, 24449, "PyTorch's parameter count");
        let p: Vec<f32> = (0..n_params)
            .map(|i| (0.2 * (0.37 * i as f64 + 0.1).sin()) as f32)
            .collect();
        let net = UNet::from_flat(cfg, &p).unwrap();
        let x: Vec<f32> = (0..128)
            .map(|j| (0.9 * (0.11 * j as f64).cos()) as f32)
            .collect();
        let mut y = vec![0.0f32; 128];
        net.forward_rows(&p, &x, &[0.3, 0.71], &mut y);
        let torch = [
            -2.2980648e-01,
            -2.4698228e-01,
            -1.6293831e-01,
            -2.6478365e-01,
            -2.3719490e-01,
            -1.7196976e-01,
            -2.5524735e-01,
            -2.7956155e-01,
            -2.9975551e-01,
            -2.4680960e-01,
            -2.0976011e-01,
            -7.1602181e-02,
            -2.1028902e-01,
            -2.1469641e-01,
            -2.4616407e-01,
            -2.2132455e-01,
            -1.6522512e-01,
            -2.4072000e-01,
            -2.0546278e-01,
        ];
        for (k, &want) in torch.iter().enumerate() {
            let got = y[7 * k] as f64;
            assert!(
                (got - want).abs() < 1e-4,
                "output {}: {got} vs PyTorch {want}",
                7 * k
            );
        }
    }
}
