//! Reverse-SDE Euler–Maruyama at batch 10⁵ (d = 2) with the exact Gaussian score: measures the
//! sampler's own cost (noise, drift, update), not a network's. Throughput is reported in
//! sample-steps (`n × steps`) per second.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use smoluchowski_samplers::{sample, Method, SamplerConfig};
use smoluchowski_sde::{GaussianOracle, VpSde};

fn reverse_sde_em(c: &mut Criterion) {
    let (n, steps) = (100_000usize, 20usize);
    let sde = VpSde::song_default();
    let mut oracle = GaussianOracle::new(sde, vec![0.5, -1.0], vec![0.3, 0.7]).unwrap();
    let config = SamplerConfig::new(Method::EulerMaruyama, steps, 1e-3);
    let mut group = c.benchmark_group("reverse_sde_euler_maruyama");
    group.throughput(Throughput::Elements((n * steps) as u64));
    group.sample_size(20);
    group.bench_function("vp_gaussian_oracle_n1e5_d2_20steps", |b| {
        b.iter(|| sample(&sde, &mut oracle, &config, n, 1, None).unwrap())
    });
    group.finish();
}

criterion_group!(benches, reverse_sde_em);
criterion_main!(benches);
