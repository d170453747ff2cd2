//! Throughput of exact kernel sampling and Euler–Maruyama steps on 10⁶ particles.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smoluchowski_sde::{euler_maruyama, ForwardSde, VpSde};

const N: usize = 1_000_000;

fn kernel_sampling(c: &mut Criterion) {
    let sde = VpSde::song_default();
    let x0: Vec<f64> = (0..N).map(|i| (i % 7) as f64 * 0.1).collect();
    let mut out = vec![0.0; N];
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut g = c.benchmark_group("vp_kernel");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(20);
    g.bench_function("sample_marginal_1e6", |b| {
        b.iter(|| {
            sde.sample_marginal(&x0, 0.5, &mut rng, &mut out);
            black_box(&out);
        })
    });
    g.finish();
}

fn em_steps(c: &mut Criterion) {
    let sde = VpSde::song_default();
    let mut x = vec![0.5; N];
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let steps = 10;
    let mut g = c.benchmark_group("vp_euler_maruyama");
    g.throughput(Throughput::Elements((N * steps) as u64));
    g.sample_size(10);
    g.bench_function("10_steps_1e6_particles", |b| {
        b.iter(|| {
            euler_maruyama(&sde, &mut x, 0.0, 0.01, steps, &mut rng, None);
            black_box(&x);
        })
    });
    g.finish();
}

criterion_group!(benches, kernel_sampling, em_steps);
criterion_main!(benches);
