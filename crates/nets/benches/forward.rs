//! Regression benchmarks of the fused network passes (part 2's 6×64 ReLU network):
//! `NetScore` forward at batch 10⁵ (one sampler step's network evaluation) and the fused
//! loss + gradient at batch 5000 (one training step without batch drawing and Adam), on the
//! AVX2 + FMA kernels where the CPU has them and on the portable (`gemm`) path.
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use smoluchowski_nets::{mlp_loss_and_grad, MlpWorkspace, NetScore, ScoreNet, ScoreNetConfig};
use smoluchowski_sde::{Score, VpSde};

fn points(n: usize, seed: f32) -> Vec<f32> {
    (0..n).map(|i| ((i as f32) * 0.37 + seed).sin()).collect()
}

fn bench(c: &mut Criterion) {
    let cfg = ScoreNetConfig::part2();
    let net = ScoreNet::new(cfg.clone(), 1).unwrap();
    let sde = VpSde::new(0.1, 20.0, 1.0).unwrap();

    let n = 100_000;
    let x = points(n * cfg.dim, 0.0);
    let mut out = vec![0.0f32; x.len()];
    let mut score = NetScore::new(&net, &sde);
    let mut g = c.benchmark_group("net_score");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(20);
    g.bench_function("forward_part2_batch_1e5", |bch| {
        bch.iter(|| score.score(&x, 0.5, &mut out))
    });
    g.finish();

    let n = 5000;
    let input = points(n * cfg.input_dim(), 1.0);
    let a = vec![1.0f32; n * cfg.dim];
    let b = points(n * cfg.dim, 2.0);
    let params = net.to_flat();
    let mut grad = vec![0.0f32; params.len()];
    let mut ws = MlpWorkspace::default();
    let mut g = c.benchmark_group("mlp_loss_and_grad");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("part2_batch_5000", |bch| {
        bch.iter(|| mlp_loss_and_grad(&cfg, &params, &input, &a, &b, &mut grad, &mut ws))
    });
    let mut ws_portable = MlpWorkspace::default();
    ws_portable.set_portable(true);
    g.bench_function("part2_batch_5000_portable", |bch| {
        bch.iter(|| mlp_loss_and_grad(&cfg, &params, &input, &a, &b, &mut grad, &mut ws_portable))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
