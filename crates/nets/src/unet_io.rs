//! [`UNet`] weights by name, interoperable with PyTorch: the parameter names, shapes and
//! layouts of `state_dict()` of the PyTorch peer module in `benches/peer/unet_peer.py`, saved
//! as safetensors with the [`UNetConfig`] (JSON) in the file's metadata under `"config"`.
//!
//! A Rust-saved `model.safetensors` loads into the PyTorch module with
//! `load_state_dict(safetensors.torch.load_file(path), strict=True)`, and a
//! `safetensors.torch.save_file(module.state_dict(), path, metadata={"config": ...})` loads
//! here ([`UNet::load_safetensors`]); both give the same outputs to float32 rounding.
//!
//! Layouts (the flat Rust vector is unchanged; only the named view converts):
//! - convolution weight: PyTorch `(C_out, C_in, k, k)`, `W_t[o, i, a, b] = W_r[a, b, i, o]`
//!   with the Rust `(k, k, C_in, C_out)` row-major segment `W_r`;
//! - linear weight: PyTorch `(out, in)`, `W_t[o, i] = W_r[i, o]` with Rust `(in, out)`;
//! - biases and GroupNorm `weight` (γ) / `bias` (β): vectors, copied as they are.
//!
//! Names, in the flat order (`l` = level, `i` = up-path block index from the lowest level):
//! `t1`, `t2` (time MLP), `conv_in`, `down.{l}.*` (a residual block: `gn1`, `c1`, `proj`,
//! `gn2`, `c2`, and `skip` when the channel count changes), `downsample.{l}` (all but the last
//! level), `mid.*`, `up.{i}.*`, `upconv.{i}` (all but level 0), `gn_out`, `conv_out`; each with
//! `.weight` then `.bias`.

use crate::io::{read_f32, tensors_to_bytes, write_atomic, NetIoError};
use crate::network::ScoreNetwork;
use crate::unet::{UNet, UNetConfig};
use safetensors::tensor::SafeTensors;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Metadata key holding the [`UNetConfig`] as JSON.
pub const UNET_CONFIG_KEY: &str = "config";

/// How a named tensor's PyTorch layout maps onto its segment of the flat Rust vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorLayout {
    /// Convolution weight: PyTorch `(c_out, c_in, k, k)` ↔ Rust `(k, k, c_in, c_out)`.
    Conv {
        /// Kernel side `k`.
        k: usize,
        /// Input channels.
        c_in: usize,
        /// Output channels.
        c_out: usize,
    },
    /// Linear weight: PyTorch `(o, i)` ↔ Rust `(i, o)`.
    Linear {
        /// Input features.
        i: usize,
        /// Output features.
        o: usize,
    },
    /// A vector (bias, GroupNorm γ or β) of `n` values: the same on both sides.
    Vector {
        /// Length.
        n: usize,
    },
}

impl TensorLayout {
    /// The PyTorch shape.
    pub fn torch_shape(&self) -> Vec<usize> {
        match *self {
            TensorLayout::Conv { k, c_in, c_out } => vec![c_out, c_in, k, k],
            TensorLayout::Linear { i, o } => vec![o, i],
            TensorLayout::Vector { n } => vec![n],
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.torch_shape().iter().product()
    }

    /// Whether the tensor holds no values (never, for a valid config).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The Rust flat segment `src` in PyTorch's row-major layout.
    pub fn to_torch(&self, src: &[f32]) -> Vec<f32> {
        match *self {
            TensorLayout::Conv { k, c_in, c_out } => {
                let mut out = vec![0.0; src.len()];
                for a in 0..k {
                    for b in 0..k {
                        for i in 0..c_in {
                            for o in 0..c_out {
                                out[((o * c_in + i) * k + a) * k + b] =
                                    src[((a * k + b) * c_in + i) * c_out + o];
                            }
                        }
                    }
                }
                out
            }
            TensorLayout::Linear { i, o } => transpose(src, i, o),
            TensorLayout::Vector { .. } => src.to_vec(),
        }
    }

    /// PyTorch's row-major values `src` as the Rust flat segment (inverse of
    /// [`TensorLayout::to_torch`]).
    pub fn from_torch(&self, src: &[f32]) -> Vec<f32> {
        match *self {
            TensorLayout::Conv { k, c_in, c_out } => {
                let mut out = vec![0.0; src.len()];
                for a in 0..k {
                    for b in 0..k {
                        for i in 0..c_in {
                            for o in 0..c_out {
                                out[((a * k + b) * c_in + i) * c_out + o] =
                                    src[((o * c_in + i) * k + a) * k + b];
                            }
                        }
                    }
                }
                out
            }
            TensorLayout::Linear { i, o } => transpose(src, o, i),
            TensorLayout::Vector { .. } => src.to_vec(),
        }
    }
}

/// Row-major `(r, c)` → row-major `(c, r)`.
fn transpose(src: &[f32], r: usize, c: usize) -> Vec<f32> {
    let mut out = vec![0.0; src.len()];
    for i in 0..r {
        for j in 0..c {
            out[j * r + i] = src[i * c + j];
        }
    }
    out
}

/// One parameter tensor of a [`UNet`]: its PyTorch `state_dict` name, layout, and offset in
/// the flat Rust parameter vector (segment `offset .. offset + layout.len()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UNetTensor {
    /// PyTorch `state_dict` key, e.g. `down.1.c1.weight`.
    pub name: String,
    /// Layout conversion (and shape).
    pub layout: TensorLayout,
    /// Start in the flat vector.
    pub offset: usize,
}

/// Builds the list in flat order (mirrors the layer construction order of `unet.rs`).
struct Names {
    out: Vec<UNetTensor>,
    len: usize,
}

impl Names {
    fn push(&mut self, name: String, layout: TensorLayout) {
        let n = layout.len();
        self.out.push(UNetTensor {
            name,
            layout,
            offset: self.len,
        });
        self.len += n;
    }
    fn lin(&mut self, p: &str, i: usize, o: usize) {
        self.push(format!("{p}.weight"), TensorLayout::Linear { i, o });
        self.push(format!("{p}.bias"), TensorLayout::Vector { n: o });
    }
    fn conv(&mut self, p: &str, c_in: usize, c_out: usize, k: usize) {
        self.push(format!("{p}.weight"), TensorLayout::Conv { k, c_in, c_out });
        self.push(format!("{p}.bias"), TensorLayout::Vector { n: c_out });
    }
    fn gn(&mut self, p: &str, c: usize) {
        self.push(format!("{p}.weight"), TensorLayout::Vector { n: c });
        self.push(format!("{p}.bias"), TensorLayout::Vector { n: c });
    }
    fn res(&mut self, p: &str, cin: usize, cout: usize, emb: usize) {
        self.gn(&format!("{p}.gn1"), cin);
        self.conv(&format!("{p}.c1"), cin, cout, 3);
        self.lin(&format!("{p}.proj"), emb, cout);
        self.gn(&format!("{p}.gn2"), cout);
        self.conv(&format!("{p}.c2"), cout, cout, 3);
        if cin != cout {
            self.conv(&format!("{p}.skip"), cin, cout, 1);
        }
    }
}

/// The parameter tensors of a UNet of `config`, in the order of the flat vector; their
/// lengths sum to [`ScoreNetwork::num_params`].
pub fn unet_tensors(config: &UNetConfig) -> Vec<UNetTensor> {
    let mut b = Names {
        out: Vec::new(),
        len: 0,
    };
    let emb = 4 * config.base;
    let ch: Vec<usize> = config.mults.iter().map(|m| config.base * m).collect();
    let levels = ch.len();
    b.lin("t1", config.time_features, emb);
    b.lin("t2", emb, emb);
    b.conv("conv_in", config.channels, ch[0], 3);
    let mut cur = ch[0];
    for (l, &c_l) in ch.iter().enumerate() {
        b.res(&format!("down.{l}"), cur, c_l, emb);
        cur = c_l;
        if l + 1 < levels {
            b.conv(&format!("downsample.{l}"), cur, cur, 3);
        }
    }
    b.res("mid", cur, cur, emb);
    for (i, l) in (0..levels).rev().enumerate() {
        b.res(&format!("up.{i}"), cur + ch[l], ch[l], emb);
        cur = ch[l];
        if l > 0 {
            b.conv(&format!("upconv.{i}"), cur, ch[l - 1], 3);
            cur = ch[l - 1];
        }
    }
    b.gn("gn_out", ch[0]);
    b.conv("conv_out", ch[0], config.channels, 3);
    b.out
}

impl UNet {
    /// The weights as named tensors `(name, PyTorch shape, row-major values)` in the layout
    /// of the PyTorch peer's `state_dict()` (see the [module docs](crate::unet_io)).
    pub fn state_dict(&self) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let flat = self.params();
        unet_tensors(self.config())
            .into_iter()
            .map(|t| {
                let seg = &flat[t.offset..t.offset + t.layout.len()];
                (t.name, t.layout.torch_shape(), t.layout.to_torch(seg))
            })
            .collect()
    }

    /// A UNet of `config` from named tensors in PyTorch layout (inverse of
    /// [`UNet::state_dict`]). Like PyTorch's `load_state_dict(strict=True)`: a missing or
    /// unexpected name, or a wrong shape, is an error naming the tensor.
    pub fn from_state_dict(
        config: UNetConfig,
        tensors: &HashMap<String, (Vec<usize>, Vec<f32>)>,
    ) -> Result<Self, String> {
        config.validate().map_err(|e| format!("config: {e}"))?;
        let names = unet_tensors(&config);
        let mut flat = Vec::with_capacity(names.iter().map(|t| t.layout.len()).sum());
        for t in &names {
            let (shape, values) = tensors
                .get(&t.name)
                .ok_or_else(|| format!("missing tensor {}", t.name))?;
            let want = t.layout.torch_shape();
            if *shape != want || values.len() != t.layout.len() {
                return Err(format!(
                    "tensor {}: shape {shape:?} ({} values), expected {want:?}",
                    t.name,
                    values.len()
                ));
            }
            flat.extend(t.layout.from_torch(values));
        }
        check_unexpected(&names, tensors.keys())?;
        UNet::from_flat(config, &flat).map_err(|e| e.to_string())
    }

    /// Saves the weights to `path` as safetensors in the PyTorch peer's `state_dict` names
    /// and layouts, with the config (JSON) in the metadata under [`UNET_CONFIG_KEY`]. Atomic.
    pub fn save_safetensors(&self, path: &Path) -> Result<(), NetIoError> {
        let fmt_err = |e: String| NetIoError::Format(path.to_path_buf(), e);
        let cfg = serde_json::to_string(self.config()).map_err(|e| fmt_err(e.to_string()))?;
        let sd = self.state_dict();
        let tensors: Vec<(String, Vec<usize>, &[f32])> = sd
            .iter()
            .map(|(n, s, v)| (n.clone(), s.clone(), v.as_slice()))
            .collect();
        let meta = HashMap::from([(UNET_CONFIG_KEY.to_string(), cfg)]);
        let bytes = tensors_to_bytes(&tensors, meta).map_err(fmt_err)?;
        write_atomic(path, &bytes).map_err(|e| NetIoError::Io(path.to_path_buf(), e))
    }

    /// Loads a UNet saved by [`UNet::save_safetensors`] or by PyTorch
    /// (`safetensors.torch.save_file(state_dict, path, metadata={"config": json})`), taking
    /// the config from the metadata. Names, dtypes (F32) and shapes are checked; a missing or
    /// unexpected tensor is an error naming it.
    pub fn load_safetensors(path: &Path) -> Result<Self, NetIoError> {
        Self::load_safetensors_impl(path, None)
    }

    /// As [`UNet::load_safetensors`], checking that the file's config equals `expected` (a
    /// mismatch is an error showing both); a file without a config in its metadata (e.g. a
    /// plain `save_file(module.state_dict(), path)`) is read with `expected`.
    pub fn load_safetensors_expecting(
        path: &Path,
        expected: &UNetConfig,
    ) -> Result<Self, NetIoError> {
        Self::load_safetensors_impl(path, Some(expected))
    }

    fn load_safetensors_impl(
        path: &Path,
        expected: Option<&UNetConfig>,
    ) -> Result<Self, NetIoError> {
        let fmt_err = |e: String| NetIoError::Format(path.to_path_buf(), e);
        let bytes = std::fs::read(path).map_err(|e| NetIoError::Io(path.to_path_buf(), e))?;
        let (_, header) =
            SafeTensors::read_metadata(&bytes).map_err(|e| fmt_err(format!("{e:?}")))?;
        let stored = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(UNET_CONFIG_KEY));
        let config = match (stored, expected) {
            (Some(json), _) => {
                let found: UNetConfig = serde_json::from_str(json).map_err(|e| {
                    fmt_err(format!(
                        "metadata \"{UNET_CONFIG_KEY}\": bad UNet config: {e}"
                    ))
                })?;
                if let Some(want) = expected {
                    if &found != want {
                        return Err(fmt_err(format!(
                            "UNet config mismatch: file has {found:?}, expected {want:?}"
                        )));
                    }
                }
                found
            }
            (None, Some(want)) => want.clone(),
            (None, None) => {
                return Err(fmt_err(format!(
                    "no UNet config in the metadata (key \"{UNET_CONFIG_KEY}\"); \
                     pass the expected config"
                )))
            }
        };
        config
            .validate()
            .map_err(|e| fmt_err(format!("UNet config: {e}")))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| fmt_err(format!("{e:?}")))?;
        let names = unet_tensors(&config);
        let mut flat = Vec::with_capacity(names.iter().map(|t| t.layout.len()).sum());
        for t in &names {
            let values = read_f32(&st, &t.name, &t.layout.torch_shape()).map_err(|e| {
                if st.tensor(&t.name).is_err() {
                    fmt_err(format!("missing tensor {}", t.name))
                } else {
                    fmt_err(e)
                }
            })?;
            flat.extend(t.layout.from_torch(&values));
        }
        check_unexpected(&names, st.names().into_iter()).map_err(fmt_err)?;
        UNet::from_flat(config, &flat).map_err(|e| fmt_err(e.to_string()))
    }
}

/// An error naming the tensors in `found` that the UNet does not have.
fn check_unexpected<'a>(
    names: &[UNetTensor],
    found: impl Iterator<Item = &'a String>,
) -> Result<(), String> {
    let known: HashSet<&str> = names.iter().map(|t| t.name.as_str()).collect();
    let mut extra: Vec<&str> = found
        .map(String::as_str)
        .filter(|n| !known.contains(n))
        .collect();
    if extra.is_empty() {
        return Ok(());
    }
    extra.sort_unstable();
    Err(format!("unexpected tensor(s) {}", extra.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NetOutput;

    fn tiny() -> UNetConfig {
        UNetConfig {
            side: 8,
            channels: 1,
            base: 8,
            mults: vec![1, 2],
            time_features: 8,
            time_scale: 1000.0,
            groups: 4,
            output: NetOutput::Noise,
        }
    }

    #[test]
    fn names_cover_the_flat_vector_in_order() {
        for cfg in [tiny(), UNetConfig::notes_mnist()] {
            let net = UNet::new(cfg.clone(), 1).unwrap();
            let ts = unet_tensors(&cfg);
            let mut off = 0;
            for t in &ts {
                assert_eq!(t.offset, off, "{}", t.name);
                off += t.layout.len();
            }
            assert_eq!(off, net.num_params());
            let names: HashSet<&str> = ts.iter().map(|t| t.name.as_str()).collect();
            assert_eq!(names.len(), ts.len(), "names are unique");
        }
        // The tiny net has 5 residual blocks, 3 of them with a 1x1 skip.
        assert_eq!(unet_tensors(&tiny()).len(), 6 + 5 * 10 + 3 * 2 + 2 * 2 + 4);
    }

    #[test]
    fn layout_conversions_invert_and_move_the_right_entries() {
        let conv = TensorLayout::Conv {
            k: 3,
            c_in: 2,
            c_out: 5,
        };
        let src: Vec<f32> = (0..conv.len()).map(|i| i as f32).collect();
        let t = conv.to_torch(&src);
        // torch[o=4, i=1, a=2, b=0] = rust[a=2, b=0, i=1, o=4].
        assert_eq!(t[((4 * 2 + 1) * 3 + 2) * 3], src[((2 * 3) * 2 + 1) * 5 + 4]);
        assert_eq!(conv.from_torch(&t), src);
        let lin = TensorLayout::Linear { i: 3, o: 4 };
        let src: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let t = lin.to_torch(&src);
        assert_eq!(t[2 * 3 + 1], src[4 + 2]); // torch[o=2, i=1] = rust[i=1, o=2]
        assert_eq!(lin.from_torch(&t), src);
    }

    /// Named tensors of the PyTorch peer for the reference flat parameters
    /// `p_i = 0.2 sin(0.37 i + 0.1)` (`unet_peer.py --reference-names`, torch 2.15.0):
    /// per tensor its shape and `Σ_k (k + 1) v_k` over its row-major values; the same names.
    #[test]
    fn names_and_layouts_match_the_pytorch_state_dict() {
        let cfg = tiny();
        let n = unet_tensors(&cfg)
            .iter()
            .map(|t| t.layout.len())
            .sum::<usize>();
        let p: Vec<f32> = (0..n)
            .map(|i| (0.2 * (0.37 * i as f64 + 0.1).sin()) as f32)
            .collect();
        let net = UNet::from_flat(cfg, &p).unwrap();
        let sd: HashMap<String, (Vec<usize>, Vec<f32>)> = net
            .state_dict()
            .into_iter()
            .map(|(n, s, v)| (n, (s, v)))
            .collect();
        let checksum = |v: &[f32]| -> f64 {
            v.iter()
                .enumerate()
                .map(|(k, &x)| (k + 1) as f64 * x as f64)
                .sum()
        };
        assert_eq!(sd.len(), PINNED.len(), "number of state_dict entries");
        for (name, shape, want) in PINNED {
            let (s, v) = sd.get(*name).unwrap_or_else(|| panic!("no tensor {name}"));
            assert_eq!(s.as_slice(), *shape, "{name}");
            let got = checksum(v);
            assert!(
                (got - want).abs() < 1e-8 * want.abs().max(1.0),
                "{name}: checksum {got} vs PyTorch {want}"
            );
        }
    }

    /// `unet_peer.py --reference-names`: every `state_dict` entry of the reference net.
    #[rustfmt::skip]
    const PINNED: &[(&str, &[usize], f64)] = &[
    ("t1.weight", &[32, 8], 9.0468731248e+01),
    ("t1.bias", &[32], -1.7441767906e+01),
    ("t2.weight", &[32, 32], 1.2853563742e+03),
    ("t2.bias", &[32], -1.2391259085e+01),
    ("conv_in.weight", &[8, 1, 3, 3], 2.7082008008e+01),
    ("conv_in.bias", &[8], -4.9821001496e+00),
    ("down.0.gn1.weight", &[8], 4.4897871390e+00),
    ("down.0.gn1.bias", &[8], -3.8498255201e+00),
    ("down.0.c1.weight", &[8, 8, 3, 3], 8.1197796836e+01),
    ("down.0.c1.bias", &[8], 4.9099563435e-01),
    ("down.0.proj.weight", &[8, 32], 3.2199754010e+01),
    ("down.0.proj.bias", &[8], -2.0332195237e+00),
    ("down.0.gn2.weight", &[8], 1.0815608185e+00),
    ("down.0.gn2.bias", &[8], -9.4334390014e-02),
    ("down.0.c2.weight", &[8, 8, 3, 3], 9.8819750740e+01),
    ("down.0.c2.bias", &[8], -3.4118733332e+00),
    ("down.1.gn1.weight", &[8], -5.4739398062e+00),
    ("down.1.gn1.bias", &[8], 5.4102809597e+00),
    ("down.1.c1.weight", &[16, 8, 3, 3], 3.0289612661e+02),
    ("down.1.c1.bias", &[16], -4.6572181508e+00),
    ("down.1.proj.weight", &[16, 32], 1.6692123321e+02),
    ("down.1.proj.bias", &[16], 4.8434184119e-01),
    ("down.1.gn2.weight", &[16], -2.8224044261e+00),
    ("down.1.gn2.bias", &[16], -5.7609397545e+00),
    ("down.1.c2.weight", &[16, 16, 3, 3], -5.6925708107e+03),
    ("down.1.c2.bias", &[16], -6.5788896382e-01),
    ("down.1.skip.weight", &[16, 8, 1, 1], 4.0299719870e+02),
    ("down.1.skip.bias", &[16], -5.1443258487e-01),
    ("downsample.0.weight", &[8, 8, 3, 3], -6.7248910572e+01),
    ("downsample.0.bias", &[8], 5.3575862490e+00),
    ("mid.gn1.weight", &[16], -3.7554497835e+00),
    ("mid.gn1.bias", &[16], -6.5065308772e+00),
    ("mid.c1.weight", &[16, 16, 3, 3], -5.4694888481e+03),
    ("mid.c1.bias", &[16], 3.4073894098e-01),
    ("mid.proj.weight", &[16, 32], 1.8660656120e+02),
    ("mid.proj.bias", &[16], -4.7807651479e+00),
    ("mid.gn2.weight", &[16], -1.6632561237e+00),
    ("mid.gn2.bias", &[16], 1.6712410487e+00),
    ("mid.c2.weight", &[16, 16, 3, 3], 5.8473637083e+03),
    ("mid.c2.bias", &[16], 4.9286596980e+00),
    ("up.0.gn1.weight", &[32], -2.8071312811e+00),
    ("up.0.gn1.bias", &[32], -1.4196644750e+01),
    ("up.0.c1.weight", &[16, 32, 3, 3], -5.6168508068e+02),
    ("up.0.c1.bias", &[16], 7.5839722846e+00),
    ("up.0.proj.weight", &[16, 32], -6.9153732938e+02),
    ("up.0.proj.bias", &[16], 9.2289074436e+00),
    ("up.0.gn2.weight", &[16], 8.5432424308e+00),
    ("up.0.gn2.bias", &[16], 6.7430254137e+00),
    ("up.0.c2.weight", &[16, 16, 3, 3], -2.1948716158e+03),
    ("up.0.c2.bias", &[16], -9.2317058425e+00),
    ("up.0.skip.weight", &[16, 32, 1, 1], 6.9578869651e+02),
    ("up.0.skip.bias", &[16], -7.7494669892e+00),
    ("up.1.gn1.weight", &[16], 5.0901219379e+00),
    ("up.1.gn1.bias", &[16], 2.0219754092e+00),
    ("up.1.c1.weight", &[8, 16, 3, 3], -3.4493198473e+02),
    ("up.1.c1.bias", &[8], 2.1955513665e+00),
    ("up.1.proj.weight", &[8, 32], -2.5379688236e+01),
    ("up.1.proj.bias", &[8], -6.6599439271e-01),
    ("up.1.gn2.weight", &[8], 1.6366263945e+00),
    ("up.1.gn2.bias", &[8], -2.5534374360e+00),
    ("up.1.c2.weight", &[8, 8, 3, 3], -7.9824068350e+01),
    ("up.1.c2.bias", &[8], 5.0525496267e+00),
    ("up.1.skip.weight", &[8, 16, 1, 1], -7.1629335515e+01),
    ("up.1.skip.bias", &[8], 4.9300039932e+00),
    ("upconv.0.weight", &[8, 16, 3, 3], -2.0467502059e+02),
    ("upconv.0.bias", &[8], 5.4664249569e+00),
    ("gn_out.weight", &[8], -5.2793657789e+00),
    ("gn_out.bias", &[8], 5.4551136307e+00),
    ("conv_out.weight", &[1, 8, 3, 3], -1.8870077059e+01),
    ("conv_out.bias", &[1], -1.8745647371e-01),
    ];

    fn save_tiny(dir: &Path) -> (UNet, std::path::PathBuf) {
        let net = UNet::new(tiny(), 7).unwrap();
        let path = dir.join("model.safetensors");
        net.save_safetensors(&path).unwrap();
        (net, path)
    }

    #[test]
    fn save_load_round_trip_is_bit_identical() {
        let dir = tempfile::tempdir().unwrap();
        let (net, path) = save_tiny(dir.path());
        let back = UNet::load_safetensors(&path).unwrap();
        assert_eq!(back.config(), net.config());
        let (a, b) = (net.params(), back.params());
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
        assert_eq!(a.len(), b.len());
        let again = UNet::load_safetensors_expecting(&path, &tiny()).unwrap();
        assert_eq!(again.params(), a);
        // In memory too.
        let sd: HashMap<_, _> = net
            .state_dict()
            .into_iter()
            .map(|(n, s, v)| (n, (s, v)))
            .collect();
        assert_eq!(UNet::from_state_dict(tiny(), &sd).unwrap().params(), a);
    }

    /// Rewrites the tiny net's file with `edit` applied to its named tensors and `meta`.
    fn write_edited(
        path: &Path,
        edit: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<f32>)>),
        meta: HashMap<String, String>,
    ) {
        let mut sd = UNet::new(tiny(), 7).unwrap().state_dict();
        edit(&mut sd);
        let views: Vec<(String, Vec<usize>, &[f32])> = sd
            .iter()
            .map(|(n, s, v)| (n.clone(), s.clone(), v.as_slice()))
            .collect();
        write_atomic(path, &tensors_to_bytes(&views, meta).unwrap()).unwrap();
    }

    fn tiny_meta() -> HashMap<String, String> {
        HashMap::from([(
            UNET_CONFIG_KEY.to_string(),
            serde_json::to_string(&tiny()).unwrap(),
        )])
    }

    #[test]
    fn wrong_shape_missing_or_extra_tensor_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.safetensors");
        let load = || UNet::load_safetensors(&path).unwrap_err().to_string();

        write_edited(
            &path,
            |sd| {
                let t = sd.iter_mut().find(|t| t.0 == "down.1.c1.weight").unwrap();
                t.1 = vec![t.1[1], t.1[0], 3, 3]; // (C_in, C_out, k, k): a transposed export
            },
            tiny_meta(),
        );
        let err = load();
        assert!(
            err.contains("down.1.c1.weight") && err.contains("shape [8, 16, 3, 3]"),
            "{err}"
        );

        write_edited(
            &path,
            |sd| sd.retain(|t| t.0 != "mid.gn2.bias"),
            tiny_meta(),
        );
        let err = load();
        assert!(err.contains("missing tensor mid.gn2.bias"), "{err}");

        write_edited(
            &path,
            |sd| sd.push(("w".into(), vec![4], vec![1.0; 4])),
            tiny_meta(),
        );
        let err = load();
        assert!(err.contains("unexpected tensor(s) w"), "{err}");
    }

    #[test]
    fn wrong_or_missing_config_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (_, path) = save_tiny(dir.path());
        let other = UNetConfig {
            groups: 2,
            ..tiny()
        };
        let err = UNet::load_safetensors_expecting(&path, &other)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("UNet config mismatch") && err.contains("groups: 4"),
            "{err}"
        );

        // No config in the metadata: needs the expected one; a wrong one gives a shape error.
        let bare = dir.path().join("bare.safetensors");
        write_edited(&bare, |_| {}, HashMap::new());
        let err = UNet::load_safetensors(&bare).unwrap_err().to_string();
        assert!(err.contains("no UNet config"), "{err}");
        assert!(UNet::load_safetensors_expecting(&bare, &tiny()).is_ok());
        let wider = UNetConfig { base: 16, ..tiny() };
        let err = UNet::load_safetensors_expecting(&bare, &wider)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tensor t1.weight: shape"), "{err}");

        // An invalid config in the metadata is named.
        let mut meta = tiny_meta();
        meta.insert(
            UNET_CONFIG_KEY.into(),
            serde_json::to_string(&UNetConfig {
                groups: 3,
                ..tiny()
            })
            .unwrap(),
        );
        write_edited(&bare, |_| {}, meta);
        let err = UNet::load_safetensors(&bare).unwrap_err().to_string();
        assert!(err.contains("groups") && err.contains('3'), "{err}");

        let err = UNet::load_safetensors(&dir.path().join("none.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("none.safetensors"), "{err}");
    }
}
