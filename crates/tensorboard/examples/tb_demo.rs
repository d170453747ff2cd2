//! Writes a small known run for `benches/peer/read_events.py LOGDIR --expect-demo`: for steps
//! `s = 0..50` the scalars `loss = 1/(1+s)`, `lr = 2e-4`, `grad_norm = √(s+1)` (f32), and every
//! 10 steps a gray grid `samples` of 4 images 28×28 (pixel `(i + j + 8k + s) mod 256` of image
//! `k`, one black pixel between images, 2 per row) and a 3×2 RGB image `rgb`.
//!
//! Usage: `cargo run --release -p smoluchowski-tensorboard --example tb_demo -- LOGDIR`.

use smoluchowski_tensorboard::{gray_grid, SummaryWriter};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let logdir = std::env::args().nth(1).ok_or("usage: tb_demo LOGDIR")?;
    let mut w = SummaryWriter::new(&logdir)?;
    for s in 0..50i64 {
        w.scalar("loss", s, 1.0 / (1.0 + s as f32))?;
        w.scalar("lr", s, 2e-4)?;
        w.scalar("grad_norm", s, ((s + 1) as f32).sqrt())?;
        if s % 10 == 0 {
            let imgs: Vec<f32> = (0..4 * 28 * 28)
                .map(|p| {
                    let (k, i, j) = (p / 784, (p % 784) / 28, p % 28);
                    ((i + j + 8 * k + s as usize) % 256) as f32
                })
                .collect();
            let (gw, gh, px) = gray_grid(&imgs, 28, 2, 0.0, 255.0)?;
            w.image_gray("samples", s, gw, gh, &px)?;
            let rgb: Vec<u8> = (0..18).map(|v| (v * 14) as u8).collect();
            w.image_rgb("rgb", s, 3, 2, &rgb)?;
        }
    }
    w.flush()?;
    println!("{}", w.path().display());
    Ok(())
}
