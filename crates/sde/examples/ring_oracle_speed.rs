//! Throughput of `Ring2dOracle::score` on 10⁵ points of `p_t` at several times.
//! `cargo run --release -p smoluchowski-sde --example ring_oracle_speed`

use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smoluchowski_datasets::{Dataset, Ring2d};
use smoluchowski_sde::{ForwardSde, Ring2dOracle, Score, VpSde};

fn main() {
    let sde = VpSde::song_default();
    let mut oracle = Ring2dOracle::new(sde, Ring2d::default()).expect("valid");
    let n = 100_000;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let x0 = Ring2d::default().sample(&mut rng, n);
    let mut total = 0.0;
    let mut evals = 0usize;
    for t in [1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0] {
        let mut xt = vec![0.0; 2 * n];
        sde.sample_marginal(&x0, t, &mut rng, &mut xt);
        let x32: Vec<f32> = xt.iter().map(|&v| v as f32).collect();
        let mut out = vec![0.0f32; 2 * n];
        let start = Instant::now();
        oracle.score(&x32, t, &mut out);
        let dt = start.elapsed().as_secs_f64();
        total += dt;
        evals += n;
        println!("t = {t:>6}: {:.3e} points/s", n as f64 / dt);
    }
    println!(
        "mean: {:.3e} points/s on {} threads",
        evals as f64 / total,
        rayon::current_num_threads()
    );
}
