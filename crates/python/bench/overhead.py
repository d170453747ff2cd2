"""Overhead of driving a sampler from a Python callable, against the same sampler in Rust.

    python crates/python/bench/overhead.py [--model DIR/model.safetensors] [--n 10000]
        [--steps 200] [--repeats 5] [--json]

Both paths run the same network (a ring2d model trained by `cargo xtask reproduce ring2d`,
default target/reproduce/ring2d/model.safetensors) for the same number of evaluations:

- Rust:   sample(model, ...)                     the network is a Rust `Score` inside the sampler;
- Python: sample(lambda x, t: model.score(x, t), ...)  every evaluation leaves the sampler for
          Python (GIL re-acquired, the f32 state copied into a new NumPy array, the callable
          called, its result checked and copied back) and the same Rust network runs inside.

The callable's own work is the network itself, identical in both paths, so
overhead = T_python / T_rust − 1 is exactly the cost of crossing into Python and back
(per call: (T_python − T_rust) / NFE). The samples of both paths are checked bit-identical.
Runs are interleaved; reported: the ratio of the best wall times, the median of the per-repeat
wall-time ratios, and the ratio of the best CPU times of the process (all threads: the
least sensitive to other jobs on a shared machine).
"""

import argparse
import json
import os
import sys
import time

import numpy as np

import smoluchowski as sm


def best(f, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = os.path.join(sm._native.workspace_root(), "target", "reproduce", "ring2d", "model.safetensors")
    p.add_argument("--model", default=default)
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    model = sm.load_model(a.model)
    rows = []
    for method in ["euler_maruyama", "probability_flow_heun"]:
        sampler = {"method": method, "steps": a.steps, "t_eps": 1e-3}
        rust_t, py_t, py_in, rust_cpu, py_cpu = [], [], [], [], []
        for _ in range(a.repeats):  # interleaved
            t0, c0 = time.perf_counter(), time.process_time()
            rust = sm.sample(model, a.n, seed=1, sampler=sampler)
            rust_t.append(time.perf_counter() - t0)
            rust_cpu.append(time.process_time() - c0)
            t0, c0 = time.perf_counter(), time.process_time()
            py = sm.sample(lambda x, t: model.score(x, t), a.n, seed=1, sampler=sampler, dim=2)
            py_t.append(time.perf_counter() - t0)
            py_cpu.append(time.process_time() - c0)
            py_in.append(py.score_seconds)
        if not np.array_equal(rust.samples, py.samples):
            sys.exit(f"{method}: the Python path's samples differ from the Rust path's")
        tr, tp = min(rust_t), min(py_t)
        rows.append({
            "method": method,
            "n": a.n,
            "nfe": rust.nfe,
            "rust_s": tr,
            "python_s": tp,
            "python_inside_callable_s": py_in[int(np.argmin(py_t))],
            "overhead": tp / tr - 1,
            "overhead_median_paired": float(np.median(np.array(py_t) / np.array(rust_t))) - 1,
            "rust_cpu_s": min(rust_cpu),
            "python_cpu_s": min(py_cpu),
            "overhead_cpu": min(py_cpu) / min(rust_cpu) - 1,
            "per_call_us": (tp - tr) / rust.nfe * 1e6,
        })
    # Pure crossing cost with a trivial callable (no network): µs per call.
    sampler = {"method": "probability_flow_euler", "steps": 2000, "t_eps": 1e-3}
    for n in [1, 10_000]:
        t, r = best(lambda: sm.sample(lambda x, t: x, n, sampler=sampler, dim=2), a.repeats)
        rows.append({"method": "trivial callable", "n": n, "nfe": r.nfe, "python_s": t,
                     "per_call_us": t / r.nfe * 1e6})
    if a.json:
        print(json.dumps(rows, indent=1))
        return
    for r in rows:
        if "rust_s" in r:
            print(f"{r['method']:>22} n={r['n']} NFE={r['nfe']}: Rust {r['rust_s']:.3f} s, "
                  f"Python callable {r['python_s']:.3f} s (inside the callable {r['python_inside_callable_s']:.3f} s): "
                  f"overhead {100 * r['overhead']:+.2f} % of the best times, {100 * r['overhead_median_paired']:+.2f} % median of paired runs "
                  f"({r['per_call_us']:.1f} µs per call); CPU time (all threads) {r['rust_cpu_s']:.3f} s vs {r['python_cpu_s']:.3f} s: "
                  f"{100 * r['overhead_cpu']:+.2f} %")
        else:
            print(f"{r['method']:>22} n={r['n']} NFE={r['nfe']}: {r['per_call_us']:.1f} µs per call (whole sampler step included)")


if __name__ == "__main__":
    main()
