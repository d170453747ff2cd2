//! KS throughput: one-sample KS of 10⁶ points against the normal CDF, two-sample 10⁶ vs 10⁶.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use smoluchowski_metrics::{ks_one_sample, ks_two_sample};

const N: usize = 1_000_000;

fn normal_samples(seed: u64, n: usize) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| StandardNormal.sample(&mut rng)).collect()
}

fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

fn bench_ks(c: &mut Criterion) {
    let a = normal_samples(1, N);
    let b = normal_samples(2, N);
    let mut g = c.benchmark_group("ks");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("one_sample_1e6_normal", |bch| {
        bch.iter(|| ks_one_sample(std::hint::black_box(&a), normal_cdf))
    });
    g.throughput(Throughput::Elements(2 * N as u64));
    g.bench_function("two_sample_1e6_vs_1e6", |bch| {
        bch.iter(|| ks_two_sample(std::hint::black_box(&a), std::hint::black_box(&b)))
    });
    g.finish();
}

criterion_group!(benches, bench_ks);
criterion_main!(benches);
