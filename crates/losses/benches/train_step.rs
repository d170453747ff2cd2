//! Regression benchmark of one training step of the part-2 recipe through [`Trainer`]:
//! fresh ring2d batch of 5000 (drawing included), fused forward + backward, Adam.
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use smoluchowski_datasets::Ring2d;
use smoluchowski_losses::{TrainConfig, Trainer};
use smoluchowski_nets::{ScoreNet, ScoreNetConfig};
use smoluchowski_sde::VpSde;

fn bench(c: &mut Criterion) {
    let sde = VpSde::new(0.1, 20.0, 1.0).unwrap();
    let data = Ring2d::new(200.0).unwrap();
    let net = ScoreNet::new(ScoreNetConfig::part2(), 0).unwrap();
    let cfg = TrainConfig {
        steps: usize::MAX / 2,
        ..TrainConfig::part2()
    };
    let mut tr = Trainer::new(net, &sde, &data, cfg).unwrap();
    let mut g = c.benchmark_group("trainer");
    g.throughput(Throughput::Elements(1));
    g.bench_function("part2_step_batch_5000", |b| {
        b.iter(|| {
            let next = tr.step() + 1;
            tr.run_until(next, None, |_| {}).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
