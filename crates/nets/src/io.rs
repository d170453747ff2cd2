//! Saving and loading weights (safetensors) with the config that produced them (JSON sidecar).

use crate::config::ScoreNetConfig;
use crate::net::ScoreNet;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Error while saving or loading a network.
#[derive(Debug)]
pub enum NetIoError {
    /// File system error, with the path.
    Io(PathBuf, std::io::Error),
    /// Malformed safetensors file or tensor.
    Format(PathBuf, String),
    /// The stored config differs from the expected one.
    ConfigMismatch {
        /// File whose config differs.
        path: PathBuf,
        /// Config found in the file.
        found: Box<ScoreNetConfig>,
        /// Config the caller expected.
        expected: Box<ScoreNetConfig>,
    },
}

impl fmt::Display for NetIoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetIoError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            NetIoError::Format(p, e) => write!(f, "{}: {e}", p.display()),
            NetIoError::ConfigMismatch {
                path,
                found,
                expected,
            } => write!(
                f,
                "{}: network config mismatch: file has {found:?}, expected {expected:?}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for NetIoError {}

/// The sidecar config path of a weights file: `model.safetensors` → `model.json`.
pub fn sidecar_path(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

/// Serialises named flat f32 tensors (with shapes) and string metadata into safetensors bytes.
pub fn tensors_to_bytes(
    tensors: &[(String, Vec<usize>, &[f32])],
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>, String> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            TensorView::new(Dtype::F32, shape.clone(), b)
                .map(|v| (name.clone(), v))
                .map_err(|e| format!("{e:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize(views, &Some(metadata)).map_err(|e| format!("{e:?}"))
}

/// Reads an f32 tensor `name` from deserialised safetensors, checking its shape.
pub fn read_f32(st: &SafeTensors, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
    let t = st
        .tensor(name)
        .map_err(|e| format!("tensor {name}: {e:?}"))?;
    if t.dtype() != Dtype::F32 {
        return Err(format!(
            "tensor {name}: dtype {:?}, expected F32",
            t.dtype()
        ));
    }
    if t.shape() != shape {
        return Err(format!(
            "tensor {name}: shape {:?}, expected {:?}",
            t.shape(),
            shape
        ));
    }
    Ok(t.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

impl ScoreNet {
    /// Named tensors `layers.{i}.weight` (`(in, out)`) and `layers.{i}.bias` of a flat
    /// parameter vector, in the layout of [`ScoreNet::to_flat`].
    pub fn named_shapes(config: &ScoreNetConfig) -> Vec<(String, Vec<usize>)> {
        let mut v = Vec::new();
        for (i, (a, b)) in config.layer_shapes().into_iter().enumerate() {
            v.push((format!("layers.{i}.weight"), vec![a, b]));
            v.push((format!("layers.{i}.bias"), vec![b]));
        }
        v
    }

    /// Saves the weights to `path` (safetensors, config also in its metadata under `"config"`)
    /// and the config to the JSON sidecar [`sidecar_path`]. Both writes are atomic.
    pub fn save(&self, path: &Path) -> Result<(), NetIoError> {
        let flat = self.to_flat();
        let cfg = serde_json::to_string_pretty(self.config()).expect("config serialises");
        let mut off = 0;
        let mut tensors = Vec::new();
        for (name, shape) in Self::named_shapes(self.config()) {
            let n: usize = shape.iter().product();
            tensors.push((name, shape, &flat[off..off + n]));
            off += n;
        }
        let meta = HashMap::from([("config".to_string(), cfg.clone())]);
        let bytes = tensors_to_bytes(&tensors, meta)
            .map_err(|e| NetIoError::Format(path.to_path_buf(), e))?;
        write_atomic(path, &bytes).map_err(|e| NetIoError::Io(path.to_path_buf(), e))?;
        let side = sidecar_path(path);
        write_atomic(&side, cfg.as_bytes()).map_err(|e| NetIoError::Io(side, e))
    }

    /// Loads a network saved by [`ScoreNet::save`], taking the config from the sidecar.
    pub fn load(path: &Path) -> Result<Self, NetIoError> {
        let side = sidecar_path(path);
        let text = std::fs::read_to_string(&side).map_err(|e| NetIoError::Io(side.clone(), e))?;
        let config: ScoreNetConfig = serde_json::from_str(&text)
            .map_err(|e| NetIoError::Format(side.clone(), format!("bad config JSON: {e}")))?;
        Self::load_weights(path, config)
    }

    /// Loads a network and checks that its sidecar config equals `expected`; a mismatch is a
    /// [`NetIoError::ConfigMismatch`] naming both configs.
    pub fn load_expecting(path: &Path, expected: &ScoreNetConfig) -> Result<Self, NetIoError> {
        let net = Self::load(path)?;
        if net.config() != expected {
            return Err(NetIoError::ConfigMismatch {
                path: path.to_path_buf(),
                found: Box::new(net.config().clone()),
                expected: Box::new(expected.clone()),
            });
        }
        Ok(net)
    }

    /// Loads weights from `path` into a network of the given config (shapes are checked).
    pub fn load_weights(path: &Path, config: ScoreNetConfig) -> Result<Self, NetIoError> {
        let fmt_err = |e: String| NetIoError::Format(path.to_path_buf(), e);
        config.validate().map_err(|e| fmt_err(e.to_string()))?;
        let bytes = std::fs::read(path).map_err(|e| NetIoError::Io(path.to_path_buf(), e))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| fmt_err(format!("{e:?}")))?;
        let mut flat = Vec::with_capacity(config.num_params());
        for (name, shape) in Self::named_shapes(&config) {
            flat.extend(read_f32(&st, &name, &shape).map_err(fmt_err)?);
        }
        ScoreNet::from_flat(config, &flat).map_err(|e| fmt_err(e.to_string()))
    }
}
