//! Same batch (5000 rows, part 2's network): dfdx autograd loss+grad vs the fused
//! `mlp_loss_and_grad`, interleaved so machine load affects both alike.
use smoluchowski_nets::dfdx::prelude::*;
use smoluchowski_nets::{mlp_loss_and_grad, MlpWorkspace, ScoreNet, ScoreNetConfig};
use std::time::Instant;

fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    let cfg = if which == "default" {
        ScoreNetConfig::default_2d()
    } else {
        ScoreNetConfig::part2()
    };
    let net = ScoreNet::new(cfg.clone(), 1).unwrap();
    let n = 5000;
    let (d, k) = (cfg.dim, cfg.input_dim());
    let input: Vec<f32> = (0..n * k).map(|i| ((i as f32) * 0.37).sin()).collect();
    let a = vec![1.0f32; n * d];
    let b: Vec<f32> = (0..n * d).map(|i| ((i as f32) * 0.11).cos()).collect();
    let params = net.to_flat();
    let mut grad = vec![0.0f32; params.len()];
    let mut ws = MlpWorkspace::default();
    let dev = net.device().clone();
    let (mut t_dfdx, mut t_fused) = (0.0, 0.0);
    for _ in 0..10 {
        let t0 = Instant::now();
        for _ in 0..10 {
            let x = dev.tensor_from_vec(input.clone(), (n, k));
            let at = dev.tensor_from_vec(a.clone(), (n, d));
            let bt = dev.tensor_from_vec(b.clone(), (n, d));
            let pred = net.forward(x.traced(Gradients::leaky()));
            let loss = ((pred * at) - bt).square().sum::<Rank0, _>() * (1.0 / n as f32);
            let g = loss.backward();
            net.grads_to_flat(&g, &mut grad);
        }
        t_dfdx += t0.elapsed().as_secs_f64();
        let t0 = Instant::now();
        for _ in 0..10 {
            mlp_loss_and_grad(&cfg, &params, &input, &a, &b, &mut grad, &mut ws);
        }
        t_fused += t0.elapsed().as_secs_f64();
    }
    println!(
        "loss+grad, batch {n}: dfdx {:.2} ms, fused {:.2} ms (x{:.2})",
        t_dfdx * 10.0,
        t_fused * 10.0,
        t_dfdx / t_fused
    );
}
