//! The Rust side of the PyTorch weight round trip (`benches/peer/unet_peer.py --roundtrip DIR`).
//!
//! - `write DIR [--tiny]`: a UNet (the notes' MNIST config, or the tiny test config) with
//!   deterministic weights `p = init(seed 5) + 0.02 sin(0.37 i)` saved as
//!   `DIR/model.safetensors` (PyTorch `state_dict` names and layouts, config in the metadata),
//!   fixed inputs `DIR/x.npy` (`(n, side, side, channels)` f32, NHWC) and `DIR/t.npy` (`(n,)`
//!   f64), and its outputs `DIR/y.npy` (NHWC f32).
//! - `check DIR`: loads the PyTorch-written `DIR/torch_model.safetensors`, runs it on `x`, `t`
//!   and compares with PyTorch's outputs `DIR/torch_y.npy`; prints the max |Δ| and fails if it
//!   exceeds 1e-4.
//!
//! Usage: `cargo run --release -p smoluchowski-nets --example unet_interop -- write /tmp/rt`,
//! then `python3 benches/peer/unet_peer.py --roundtrip /tmp/rt`, then `... -- check /tmp/rt`.

use npyz::WriterBuilder;
use smoluchowski_nets::{NetOutput, ScoreNetwork, UNet, UNetConfig};
use std::error::Error;
use std::io::BufWriter;
use std::path::Path;

type Res<T> = Result<T, Box<dyn Error>>;

/// Tolerance on the max absolute output difference.
const TOL: f64 = 1e-4;

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

fn write_npy<T: npyz::Serialize + npyz::AutoSerialize + Copy>(
    path: &Path,
    shape: &[usize],
    data: &[T],
) -> Res<()> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    let shape: Vec<u64> = shape.iter().map(|&s| s as u64).collect();
    let mut w = npyz::WriteOptions::<T>::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut out)
        .begin_nd()?;
    w.extend(data.iter().copied())?;
    w.finish()?;
    Ok(())
}

fn read_npy<T: npyz::Deserialize>(path: &Path) -> Res<Vec<T>> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(npyz::NpyFile::new(&bytes[..])?.into_vec()?)
}

fn write(dir: &Path, config: UNetConfig) -> Res<()> {
    std::fs::create_dir_all(dir)?;
    let init = UNet::new(config.clone(), 5)?.params();
    let p: Vec<f32> = init
        .iter()
        .enumerate()
        .map(|(i, &v)| v + (0.02 * (0.37 * i as f64).sin()) as f32)
        .collect();
    let net = UNet::from_flat(config.clone(), &p)?;
    net.save_safetensors(&dir.join("model.safetensors"))?;
    let n = 4;
    let d = config.dim();
    let x: Vec<f32> = (0..n * d)
        .map(|j| (0.9 * (0.11 * j as f64).cos() + 0.3 * (0.013 * j as f64).sin()) as f32)
        .collect();
    let t = [0.02, 0.3, 0.71, 1.0];
    let mut y = vec![0.0f32; n * d];
    net.forward_rows(&p, &x, &t, &mut y);
    let shape = [n, config.side, config.side, config.channels];
    write_npy(&dir.join("x.npy"), &shape, &x)?;
    write_npy(&dir.join("t.npy"), &[n], &t)?;
    write_npy(&dir.join("y.npy"), &shape, &y)?;
    println!(
        "wrote {}/{{model.safetensors, x.npy, t.npy, y.npy}}: {} params, {n} images",
        dir.display(),
        net.num_params()
    );
    Ok(())
}

fn check(dir: &Path) -> Res<()> {
    let net = UNet::load_safetensors(&dir.join("torch_model.safetensors"))?;
    let x: Vec<f32> = read_npy(&dir.join("x.npy"))?;
    let t: Vec<f64> = read_npy(&dir.join("t.npy"))?;
    let want: Vec<f32> = read_npy(&dir.join("torch_y.npy"))?;
    if x.len() != t.len() * net.dim() || want.len() != x.len() {
        return Err(format!(
            "x.npy has {} values, t.npy {}, torch_y.npy {}: expected n·{} , n, n·{}",
            x.len(),
            t.len(),
            want.len(),
            net.dim(),
            net.dim()
        )
        .into());
    }
    let mut y = vec![0.0f32; x.len()];
    net.forward_rows(&net.params(), &x, &t, &mut y);
    let max = y
        .iter()
        .zip(&want)
        .map(|(a, b)| (*a as f64 - *b as f64).abs())
        .fold(0.0, f64::max);
    println!(
        "torch_model.safetensors loaded in Rust ({} params): max |y_rust - y_torch| = {max:.3e} over {} outputs (tol {TOL:.0e})",
        net.num_params(),
        y.len()
    );
    if max.is_nan() || max > TOL {
        return Err(format!("max abs difference {max:e} exceeds {TOL:e}").into());
    }
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["write", dir] => write(Path::new(dir), UNetConfig::notes_mnist()),
        ["write", dir, "--tiny"] => write(Path::new(dir), tiny()),
        ["check", dir] => check(Path::new(dir)),
        _ => Err("usage: unet_interop write DIR [--tiny] | check DIR".into()),
    }
}
