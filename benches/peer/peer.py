#!/usr/bin/env python3
"""PyTorch (CPU) peer of the smoluchowski benchmarks: the notes' part-2 recipe, measured in one process.

Measures, with the same network (input (x, t) -> 5 hidden Linear(64)+ReLU -> Linear(2), "6x64"):
  (a) training steps/s: Adam lr 1e-3, batch 5000 fresh ring2d samples per step, t ~ U(0, T),
      VP SDE (beta_min 0.1, beta_max 20, T = 1), loss = mean((B(t) s(x_t, t) + eps)^2);
  (b) reverse-SDE Euler-Maruyama sample-steps/s at batch 1e5 (no_grad):
      x <- x + (1/2 beta x + beta s(x, t)) dt + sqrt(beta dt) z;
  (c) probability-flow ODE Heun steps/s at batch 1e5 (two network evaluations of
      dx/dt = -1/2 beta x - 1/2 beta s per Heun step), reported as batch * Heun steps / s.

Usage: python3 benches/peer/peer.py [--threads 2] [--json] [--compile]
Not part of CI and not a dependency of the Rust workspace.
"""
import argparse
import json
import os
import platform
import resource
import sys
import time

BETA_MIN, BETA_MAX, T_END = 0.1, 20.0, 1.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2, help="intra-op threads (torch.set_num_threads; OMP/MKL env)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--compile", action="store_true", help="wrap the network in torch.compile (off by default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-batch", type=int, default=5000)
    p.add_argument("--train-warmup", type=int, default=50)
    p.add_argument("--train-steps", type=int, default=300)
    p.add_argument("--sample-batch", type=int, default=100_000)
    p.add_argument("--sample-warmup", type=int, default=3)
    p.add_argument("--sample-steps", type=int, default=20, help="timed Euler-Maruyama steps")
    p.add_argument("--ode-steps", type=int, default=20, help="timed Heun steps")
    p.add_argument("--dt", type=float, default=5e-3, help="reverse time step (the notes' 5e-3)")
    p.add_argument("--ring-scale", type=float, default=200.0, help="ring2d radius ~ Gamma(scale, rate scale)")
    a = p.parse_args(argv)
    if a.threads < 1:
        p.error(f"--threads must be >= 1, got {a.threads}")
    for name in ("train_batch", "train_steps", "sample_batch", "sample_steps", "ode_steps"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(a, name)}")
    return a


def main(argv=None):
    args = parse_args(argv)
    # Thread pools are sized when torch is imported: set the environment first.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import torch
    from torch import nn

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    dtype = torch.float32

    def beta(t):
        """beta(t) = beta_min + (beta_max - beta_min) t / T."""
        return BETA_MIN + (BETA_MAX - BETA_MIN) * t / T_END

    def mean_std(t):
        """I(t) = beta_min t + (beta_max - beta_min) t^2 / (2T); A = exp(-I/2); B = sqrt(1 - A^2)."""
        integral = BETA_MIN * t + (BETA_MAX - BETA_MIN) * t * t / (2.0 * T_END)
        a = torch.exp(-0.5 * integral)
        return a, torch.sqrt(1.0 - a * a)

    gamma = torch.distributions.Gamma(
        torch.tensor(args.ring_scale, dtype=dtype), torch.tensor(args.ring_scale, dtype=dtype)
    )

    def ring2d(n):
        """u ~ U([-1, 1]^2), x = r u / |u| with r ~ Gamma(k = scale, rate = scale)."""
        u = torch.rand(n, 2, dtype=dtype) * 2.0 - 1.0
        r = gamma.sample((n, 1))
        return u / u.norm(dim=1, keepdim=True) * r

    class ScoreMlp(nn.Module):
        """s(x, t) = MLP([x, t]): Linear(3, 64) + 4 x Linear(64, 64), each followed by ReLU, then Linear(64, 2)."""

        def __init__(self, width=64, hidden=5):
            super().__init__()
            layers, d = [], 3
            for _ in range(hidden):
                layers += [nn.Linear(d, width), nn.ReLU()]
                d = width
            layers.append(nn.Linear(d, 2))
            self.net = nn.Sequential(*layers)

        def forward(self, x, t):
            return self.net(torch.cat([x, t], dim=1))

    model = ScoreMlp()
    net = torch.compile(model) if args.compile else model
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    # (a) training
    def train_step():
        x0 = ring2d(args.train_batch)
        t = torch.rand(args.train_batch, 1, dtype=dtype) * T_END
        eps = torch.randn_like(x0)
        a, b = mean_std(t)
        xt = a * x0 + b * eps
        loss = ((b * net(xt, t) + eps) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    for _ in range(args.train_warmup):
        train_step()
    t0 = time.perf_counter()
    for _ in range(args.train_steps):
        loss = train_step()
    final_loss = float(loss.item())  # forces completion (CPU ops are synchronous anyway)
    train_s = time.perf_counter() - t0
    train_sps = args.train_steps / train_s

    n = args.sample_batch
    dt = args.dt
    t_min = 1e-3

    def t_at(k):
        """k-th time on the reverse grid T, T - dt, ... (wraps before reaching t_min; speed does not depend on t)."""
        m = max(1, int((T_END - t_min) / dt))
        return T_END - (k % m) * dt

    # (b) reverse-SDE Euler-Maruyama
    def em_step(x, t):
        bt = beta(t)
        s = net(x, torch.full((n, 1), t, dtype=dtype))
        z = torch.randn_like(x)
        return x + (0.5 * bt * x + bt * s) * dt + (bt * dt) ** 0.5 * z

    with torch.no_grad():
        x = torch.randn(n, 2, dtype=dtype)
        for k in range(args.sample_warmup):
            x = em_step(x, t_at(k))
        t0 = time.perf_counter()
        for k in range(args.sample_steps):
            x = em_step(x, t_at(args.sample_warmup + k))
        em_s = time.perf_counter() - t0
        em_finite = bool(torch.isfinite(x).all())
    sample_sps = n * args.sample_steps / em_s

    # (c) probability-flow ODE, Heun (two network evaluations per step)
    def ode_f(x, t):
        bt = beta(t)
        return -0.5 * bt * x - 0.5 * bt * net(x, torch.full((n, 1), t, dtype=dtype))

    def heun_step(x, t):
        h = -dt
        d1 = ode_f(x, t)
        xe = x + h * d1
        d2 = ode_f(xe, t + h)
        return x + 0.5 * h * (d1 + d2)

    with torch.no_grad():
        x = torch.randn(n, 2, dtype=dtype)
        for k in range(args.sample_warmup):
            x = heun_step(x, t_at(k))
        t0 = time.perf_counter()
        for k in range(args.ode_steps):
            x = heun_step(x, t_at(args.sample_warmup + k))
        ode_s = time.perf_counter() - t0
        ode_finite = bool(torch.isfinite(x).all())
    ode_sps = n * args.ode_steps / ode_s

    # ru_maxrss is in KiB on Linux, bytes on macOS.
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_rss_mb = maxrss / (1024.0 * 1024.0) if sys.platform == "darwin" else maxrss / 1024.0

    result = {
        "train_steps_per_s": round(train_sps, 2),
        "sample_steps_per_s": round(sample_sps, 0),
        "ode_steps_per_s": round(ode_sps, 0),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
        "compile": args.compile,
        "seed": args.seed,
        "network": "MLP (x,t)->5x[Linear 64, ReLU]->Linear 2 (6x64), float32",
        "train_batch": args.train_batch,
        "train_warmup_steps": args.train_warmup,
        "train_timed_steps": args.train_steps,
        "train_seconds": round(train_s, 3),
        "train_final_loss": round(final_loss, 4),
        "sample_batch": n,
        "sample_timed_steps": args.sample_steps,
        "sample_seconds": round(em_s, 3),
        "ode_batch": n,
        "ode_timed_heun_steps": args.ode_steps,
        "ode_seconds": round(ode_s, 3),
        "dt": dt,
        "outputs_finite": em_finite and ode_finite,
    }
    if args.json:
        print(json.dumps(result))
    else:
        rows = [
            ("training (batch %d, Adam)" % args.train_batch, "%.1f steps/s" % train_sps),
            ("reverse-SDE Euler-Maruyama (batch %d)" % n, "%.3f M sample-steps/s" % (sample_sps / 1e6)),
            ("probability-flow ODE Heun (batch %d)" % n, "%.3f M Heun steps/s" % (ode_sps / 1e6)),
            ("peak resident memory", "%.0f MB" % peak_rss_mb),
        ]
        print("PyTorch %s on CPU, %d thread(s)%s" % (torch.__version__, result["threads"],
                                                 ", torch.compile" if args.compile else ""))
        w = max(len(r[0]) for r in rows)
        for name, val in rows:
            print(f"  {name:<{w}}  {val}")
    return result


if __name__ == "__main__":
    main()
