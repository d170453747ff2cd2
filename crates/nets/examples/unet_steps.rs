//! Times forward + backward passes of the notes' UNet at batch 64 (fixed inputs), for A/B
//! comparisons of kernel changes on a shared machine and for `perf record`:
//! `cargo run --release -p smoluchowski-nets --example unet_steps -- [steps]` prints images/s
//! of wall time, images per 2 CPU-seconds of the process's threads (less sensitive to other
//! jobs on the machine), the loss, and an FNV-1a hash of the outputs and parameter gradient
//! bits (equal hashes: a change kept the numbers bit for bit).
use smoluchowski_nets::{ScoreNetwork, UNet, UNetConfig, UNetInput};
/// CPU seconds of all this process's threads (`/proc/self/task/*/schedstat`).
fn cpu() -> f64 {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| {
            let s = std::fs::read_to_string(e.ok()?.path().join("schedstat")).ok()?;
            s.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum::<f64>()
        * 1e-9
}
fn main() {
    let steps: usize = std::env::args().nth(1).map_or(5, |s| s.parse().unwrap());
    let net = UNet::new(UNetConfig::notes_mnist(), 0).unwrap();
    let p = net.params();
    let (n, d) = (64, net.dim());
    let x: Vec<f32> = (0..n * d)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
        .collect();
    let t: Vec<f64> = (0..n).map(|i| (i as f64 + 0.5) / n as f64).collect();
    let mut input = UNetInput::default();
    net.prepare_input(&x, &t, &mut input);
    let ones = vec![1.0f32; n * d];
    let (mut g, mut out) = (vec![0.0; p.len()], vec![0.0; n * d]);
    net.weighted_sq_loss_and_grad(&p, &input, &ones, &x, &mut out, &mut g, &mut ());
    let (t0, c0) = (std::time::Instant::now(), cpu());
    let mut loss = 0.0;
    for _ in 0..steps {
        loss = net.weighted_sq_loss_and_grad(&p, &input, &ones, &x, &mut out, &mut g, &mut ());
    }
    let s = t0.elapsed().as_secs_f64();
    let cs = cpu() - c0;
    let h: u64 = g.iter().chain(&out).fold(0xcbf29ce484222325, |h, v| {
        (h ^ v.to_bits() as u64).wrapping_mul(0x100000001b3)
    });
    println!(
        "{:.1} images/s wall, {:.1} images per 2 CPU-s, loss {loss}, hash {h:016x}",
        (n * steps) as f64 / s,
        2.0 * (n * steps) as f64 / cs
    );
}
