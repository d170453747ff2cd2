#!/usr/bin/env python3
"""PyTorch (CPU) peer of smoluchowski's UNet (`smoluchowski::nets::UNet`, the notes' MNIST net).

The same architecture, layer for layer (see crates/nets/src/unet.rs):
  time: tau(t) = [sin(s t w_k), cos(s t w_k)], w_k = 10000^(-k/(F/2)); emb = L2(SiLU(L1(tau)));
  conv_in 3x3; per level a residual block (GN, SiLU, conv3, + Linear(SiLU(emb)), GN, SiLU,
  conv3, + skip: identity or 1x1 conv), a 3x3 stride-2 conv except at the last level; a middle
  block; per level from the lowest a block on cat([h, skip]) then nearest x2 + conv3 except at
  level 0; GN, SiLU, conv3 out.

Measures the DDPM epsilon-loss training step (Adam, lr 2e-4) on a batch of random 28x28
images (the arithmetic does not depend on the pixel values), images/s, eager or compiled.

The flat parameter vector of the Rust UNet lists, per layer in construction order, the weight
then the bias; a conv weight is (k, k, C_in, C_out) row-major (PyTorch: (C_out, C_in, k, k)), a
linear weight (in, out) (PyTorch: (out, in)); GroupNorm gamma then beta. `to_flat` /
`load_flat` below convert (used for the weight round trip).

Named weights: the module's state_dict() names and shapes are those of Rust's
`UNet::save_safetensors` (model.safetensors, config JSON in the metadata); `--roundtrip DIR`
checks both directions against `cargo run -p smoluchowski-nets --example unet_interop`.

Also measures inference (one network evaluation per image at batch --sample-batch, no_grad),
the training step's conv + linear GFLOP/s (3 x forward flops, counted by hooks) and a square
f32 GEMM (torch.mm, --gemm-size): the same JSON keys as `cargo xtask bench --json`
(unet_train_images_per_s, unet_sample_images_per_s, unet_gflops, gemm_gflops,
unet_gemm_fraction, kernel_level = torch's CPU capability).

Usage: python3 benches/peer/unet_peer.py [--threads 2] [--batch 64] [--steps 5] [--compile] [--json]
       python3 benches/peer/unet_peer.py --roundtrip DIR | --reference | --reference-names
Not part of CI and not a dependency of the Rust workspace.
"""
import argparse
import json
import math
import os
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument("--sample-batch", type=int, default=256,
                   help="images per inference batch (one network evaluation each)")
    p.add_argument("--sample-reps", type=int, default=2)
    p.add_argument("--gemm-size", type=int, default=1024)
    p.add_argument("--gemm-reps", type=int, default=10)
    p.add_argument("--reference", action="store_true",
                   help="print the reference outputs pinned in crates/nets/src/unet.rs's test "
                        "`matches_pytorch_reference_outputs` and exit")
    p.add_argument("--reference-names", action="store_true",
                   help="print state_dict names, shapes and checksums sum_k (k+1) v_k of the --reference "
                        "net (pinned in crates/nets/src/unet_io.rs) and exit")
    p.add_argument("--roundtrip", metavar="DIR",
                   help="weight round trip with Rust (examples/unet_interop.rs): load DIR/model.safetensors "
                        "(strict), compare outputs on DIR/x.npy, t.npy with DIR/y.npy to 1e-4; write "
                        "DIR/torch_model.safetensors and DIR/torch_y.npy for the Rust check")
    return p.parse_args(argv)


def reference(torch, nn):
    """Tiny UNet (side 8, base 8, mults (1, 2), F = 8, s = 1000, 4 groups) with the flat
    parameters p_i = 0.2 sin(0.37 i + 0.1), inputs x_j = 0.9 cos(0.11 j) (2 images) at
    t = (0.3, 0.71): outputs at every 7th index, in the Rust flat layout."""
    torch.set_default_dtype(torch.float32)
    net = build(torch, nn, side=8, channels=1, base=8, mults=(1, 2), time_features=8,
                time_scale=1000.0, groups=4)
    n = sum(p.numel() for p in net.parameters())
    i = torch.arange(n, dtype=torch.float64)
    load_flat(torch, net, (0.2 * torch.sin(0.37 * i + 0.1)).float())
    j = torch.arange(2 * 64, dtype=torch.float64)
    x = (0.9 * torch.cos(0.11 * j)).float().reshape(2, 8, 8, 1).permute(0, 3, 1, 2)
    with torch.no_grad():
        y = net(x, torch.tensor([0.3, 0.71], dtype=torch.float64))
    flat = y.permute(0, 2, 3, 1).reshape(-1)
    print(f"params {n}")
    print(", ".join(f"{v:.7e}" for v in flat[::7].tolist()))


def reference_net(torch, nn):
    """The --reference net with its deterministic flat parameters loaded."""
    torch.set_default_dtype(torch.float32)
    net = build(torch, nn, side=8, channels=1, base=8, mults=(1, 2), time_features=8,
                time_scale=1000.0, groups=4)
    n = sum(p.numel() for p in net.parameters())
    i = torch.arange(n, dtype=torch.float64)
    load_flat(torch, net, (0.2 * torch.sin(0.37 * i + 0.1)).float())
    return net


def reference_names(torch, nn):
    """Per state_dict tensor: name, shape, sum_k (k+1) v_k over its row-major values (float64)."""
    for name, v in reference_net(torch, nn).state_dict().items():
        flat = v.reshape(-1).double()
        c = ((torch.arange(flat.numel(), dtype=torch.float64) + 1) * flat).sum().item()
        print(f'("{name}", &{list(v.shape)}, {c:.10e}),')


def build_from_config(torch, nn, cfg):
    """The module for a Rust `UNetConfig` (the JSON in model.safetensors' metadata "config")."""
    return build(torch, nn, side=cfg["side"], channels=cfg["channels"], base=cfg["base"],
                 mults=tuple(cfg["mults"]), time_features=cfg["time_features"],
                 time_scale=float(cfg["time_scale"]), groups=cfg["groups"])


def roundtrip(torch, nn, d, tol=1e-4):
    """Rust -> torch: load model.safetensors strictly, compare with Rust's outputs y.npy.
    torch -> Rust: save a freshly initialised module (GroupNorm affine perturbed too) as
    torch_model.safetensors with the same config and its outputs as torch_y.npy."""
    import numpy as np
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    torch.set_default_dtype(torch.float32)
    path = os.path.join(d, "model.safetensors")
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
    cfg = json.loads(meta["config"])
    net = build_from_config(torch, nn, cfg)
    net.load_state_dict(load_file(path), strict=True)
    x_nhwc = torch.from_numpy(np.load(os.path.join(d, "x.npy")))
    t = torch.from_numpy(np.load(os.path.join(d, "t.npy")))

    def run(m):
        with torch.no_grad():
            return m(x_nhwc.permute(0, 3, 1, 2).contiguous(), t).permute(0, 2, 3, 1).contiguous()

    y = run(net)
    y_rust = torch.from_numpy(np.load(os.path.join(d, "y.npy")))
    diff = (y - y_rust).abs().max().item()
    print(f"Rust -> torch: model.safetensors ({len(net.state_dict())} tensors, "
          f"{sum(p.numel() for p in net.parameters())} params) loaded with strict=True; "
          f"max |y_torch - y_rust| = {diff:.3e} over {y.numel()} outputs (tol {tol:.0e})")
    ok = diff <= tol

    torch.manual_seed(123)
    other = build_from_config(torch, nn, cfg)
    with torch.no_grad():
        for name, p in other.named_parameters():
            if ".gn" in name or name.startswith("gn_out"):
                p.add_(0.1 * torch.randn_like(p))
    save_file(other.state_dict(), os.path.join(d, "torch_model.safetensors"),
              metadata={"config": meta["config"]})
    np.save(os.path.join(d, "torch_y.npy"), run(other).numpy())
    print(f"torch -> Rust: wrote torch_model.safetensors and torch_y.npy (seed 123); "
          f"check with: cargo run --release -p smoluchowski-nets --example unet_interop -- check {d}")
    if not ok:
        raise SystemExit(f"FAIL: max abs difference {diff:e} exceeds {tol:e}")


def build(torch, nn, side=28, channels=1, base=32, mults=(1, 2, 2), time_features=16,
          time_scale=1000.0, groups=8):
    F = nn.functional

    class Res(nn.Module):
        def __init__(self, cin, cout, emb):
            super().__init__()
            self.gn1 = nn.GroupNorm(groups, cin, eps=1e-5)
            self.c1 = nn.Conv2d(cin, cout, 3, padding=1)
            self.proj = nn.Linear(emb, cout)
            self.gn2 = nn.GroupNorm(groups, cout, eps=1e-5)
            self.c2 = nn.Conv2d(cout, cout, 3, padding=1)
            self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

        def forward(self, x, semb):
            h = self.c1(F.silu(self.gn1(x))) + self.proj(semb)[:, :, None, None]
            h = self.c2(F.silu(self.gn2(h)))
            return h + (self.skip(x) if self.skip is not None else x)

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            emb = 4 * base
            ch = [base * m for m in mults]
            self.t1 = nn.Linear(time_features, emb)
            self.t2 = nn.Linear(emb, emb)
            self.conv_in = nn.Conv2d(channels, ch[0], 3, padding=1)
            self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
            cur = ch[0]
            for l, c in enumerate(ch):
                self.down.append(Res(cur, c, emb))
                cur = c
                if l + 1 < len(ch):
                    self.downsample.append(nn.Conv2d(cur, cur, 3, stride=2, padding=1))
            self.mid = Res(cur, cur, emb)
            self.up, self.upconv = nn.ModuleList(), nn.ModuleList()
            for l in reversed(range(len(ch))):
                self.up.append(Res(cur + ch[l], ch[l], emb))
                cur = ch[l]
                if l > 0:
                    self.upconv.append(nn.Conv2d(cur, ch[l - 1], 3, padding=1))
                    cur = ch[l - 1]
            self.gn_out = nn.GroupNorm(groups, ch[0], eps=1e-5)
            self.conv_out = nn.Conv2d(ch[0], channels, 3, padding=1)
            half = time_features // 2
            # Not persistent: a function of the config, so state_dict() holds exactly the
            # parameters (the names Rust's model.safetensors uses).
            self.register_buffer("w", torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half),
                                 persistent=False)

        def forward(self, x, t):
            st = time_scale * t.double()[:, None] * self.w[None, :]
            tau = torch.cat([torch.sin(st), torch.cos(st)], dim=1).float()
            semb = F.silu(self.t2(F.silu(self.t1(tau))))
            h = self.conv_in(x)
            skips = []
            for l, r in enumerate(self.down):
                o = r(h, semb)
                skips.append(o)
                h = self.downsample[l](o) if l < len(self.downsample) else o
            h = self.mid(h, semb)
            for i, r in enumerate(self.up):
                h = r(torch.cat([h, skips[-1 - i]], dim=1), semb)
                if i < len(self.upconv):
                    h = self.upconv[i](F.interpolate(h, scale_factor=2, mode="nearest"))
            return self.conv_out(F.silu(self.gn_out(h)))

    return UNet()


def layers_in_rust_order(net):
    """(kind, module) in the Rust plan's construction order."""
    out = [("lin", net.t1), ("lin", net.t2), ("conv", net.conv_in)]

    def res(r):
        return [("gn", r.gn1), ("conv", r.c1), ("lin", r.proj), ("gn", r.gn2), ("conv", r.c2)] + (
            [("conv", r.skip)] if r.skip is not None else [])

    for l, r in enumerate(net.down):
        out += res(r)
        if l < len(net.downsample):
            out.append(("conv", net.downsample[l]))
    out += res(net.mid)
    for i, r in enumerate(net.up):
        out += res(r)
        if i < len(net.upconv):
            out.append(("conv", net.upconv[i]))
    return out + [("gn", net.gn_out), ("conv", net.conv_out)]


def to_flat(torch, net):
    parts = []
    for kind, m in layers_in_rust_order(net):
        if kind == "conv":
            parts += [m.weight.detach().permute(2, 3, 1, 0).reshape(-1), m.bias.detach()]
        elif kind == "lin":
            parts += [m.weight.detach().t().reshape(-1), m.bias.detach()]
        else:
            parts += [m.weight.detach(), m.bias.detach()]
    return torch.cat([p.reshape(-1) for p in parts])


def load_flat(torch, net, flat):
    i = 0
    with torch.no_grad():
        for kind, m in layers_in_rust_order(net):
            w = m.weight
            n = w.numel()
            chunk = flat[i:i + n]
            if kind == "conv":
                co, ci, k, _ = w.shape
                w.copy_(chunk.reshape(k, k, ci, co).permute(3, 2, 0, 1))
            elif kind == "lin":
                w.copy_(chunk.reshape(w.shape[1], w.shape[0]).t())
            else:
                w.copy_(chunk)
            i += n
            m.bias.copy_(flat[i:i + m.bias.numel()])
            i += m.bias.numel()
    assert i == flat.numel(), (i, flat.numel())


def main(argv=None):
    a = parse_args(argv)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(a.threads)
    import torch
    from torch import nn

    torch.set_num_threads(a.threads)
    if a.reference:
        return reference(torch, nn)
    if a.reference_names:
        return reference_names(torch, nn)
    if a.roundtrip:
        return roundtrip(torch, nn, a.roundtrip)
    torch.manual_seed(0)
    net = build(torch, nn)
    n_params = sum(p.numel() for p in net.parameters())
    model = torch.compile(net) if a.compile else net
    opt = torch.optim.Adam(net.parameters(), lr=2e-4)
    x0 = torch.rand(a.batch, 1, 28, 28) * 2 - 1

    def step():
        t = torch.randint(1, 201, (a.batch,)).double() / 200
        eps = torch.randn_like(x0)
        ab = torch.exp(-10 * t).float()[:, None, None, None]  # any alpha-bar: same arithmetic
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        loss = ((model(xt, t) - eps) ** 2).sum(dim=(1, 2, 3)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    start = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = time.perf_counter() - start
    train_ips = a.steps * a.batch / dt
    fwd_flops = forward_flops_per_image(torch, nn, net)
    gflops = 3 * fwd_flops * train_ips / 1e9

    # Inference: one evaluation per image (a sampler step), no_grad.
    xs = torch.randn(a.sample_batch, 1, 28, 28)
    ts = torch.full((a.sample_batch,), 0.5, dtype=torch.float64)
    with torch.no_grad():
        model(xs, ts)
        start = time.perf_counter()
        for _ in range(a.sample_reps):
            model(xs, ts)
        sample_ips = a.sample_reps * a.sample_batch / (time.perf_counter() - start)

    # The machine's square-GEMM rate on torch's kernels.
    g = a.gemm_size
    ga, gb = torch.rand(g, g), torch.rand(g, g)
    torch.mm(ga, gb)
    start = time.perf_counter()
    for _ in range(a.gemm_reps):
        torch.mm(ga, gb)
    gemm_gflops = 2 * g ** 3 * a.gemm_reps / (time.perf_counter() - start) / 1e9

    try:
        level = torch.backends.cpu.get_cpu_capability()
    except AttributeError:
        level = "unknown"
    res = {"torch": torch.__version__, "compile": a.compile, "threads": a.threads, "batch": a.batch,
           "params": n_params, "steps_per_sec": a.steps / dt, "images_per_sec": train_ips,
           "kernel_level": level,
           "unet_params": n_params, "unet_batch": a.batch, "unet_timed_steps": a.steps,
           "unet_train_seconds": dt, "unet_train_images_per_s": round(train_ips, 2),
           "unet_sample_batch": a.sample_batch, "unet_sample_images_per_s": round(sample_ips, 2),
           "unet_gflops": round(gflops, 2), "gemm_size": g, "gemm_gflops": round(gemm_gflops, 2),
           "unet_gemm_fraction": round(gflops / gemm_gflops, 3),
           "load_average_1min": os.getloadavg()[0]}
    print(json.dumps(res) if a.json else
          f"torch {res['torch']} compile={a.compile}: {n_params} params, batch {a.batch}: "
          f"{res['steps_per_sec']:.3f} steps/s, {train_ips:.1f} images/s ({gflops:.0f} GFLOP/s, "
          f"{100 * gflops / gemm_gflops:.0f}% of the {g}^3 GEMM's {gemm_gflops:.0f} GFLOP/s); "
          f"inference {sample_ips:.1f} images/s at batch {a.sample_batch}; {level}")


def forward_flops_per_image(torch, nn, net):
    """Multiply-add flops (2 per multiply-add) of the convolutions and linear maps for one
    image's forward pass, as `UNet::forward_flops_per_image`: sum of 2 * out_pixels * k^2 C_in C_out
    and 2 * in * out, counted by forward hooks on a one-image pass."""
    total = [0]

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1]
            total[0] += 2 * out.shape[2] * out.shape[3] * k * m.in_channels * m.out_channels
        else:
            total[0] += 2 * m.in_features * m.out_features

    hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        net(torch.zeros(1, 1, 28, 28), torch.tensor([0.5], dtype=torch.float64))
    for h in hs:
        h.remove()
    return total[0]


if __name__ == "__main__":
    main()
