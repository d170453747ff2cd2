//! Throughput of ring2d sampling (10⁶ points).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smoluchowski_datasets::{Dataset, Ring2d};

const N: usize = 1_000_000;

fn ring2d_sampling(c: &mut Criterion) {
    let ring = Ring2d::default();
    let mut out = vec![0.0; 2 * N];
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut g = c.benchmark_group("ring2d");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(20);
    g.bench_function("sample_into_1e6", |b| {
        b.iter(|| {
            ring.sample_into(&mut rng, &mut out);
            black_box(&out);
        })
    });
    g.finish();
}

criterion_group!(benches, ring2d_sampling);
criterion_main!(benches);
