"""Shared helpers: independent NumPy/SciPy references for the laws the package computes."""

import os

import numpy as np
import pytest

import smoluchowski as sm


def ring_angular_cdf(theta):
    """ring2d's angular CDF, per face of the square (docs: shared NOTES), in NumPy."""
    t = np.asarray(theta, dtype=np.float64)
    pi = np.pi
    return np.select(
        [t < -3 * pi / 4, t < -pi / 4, t < pi / 4, t < 3 * pi / 4],
        [
            np.tan(t + pi) / 8,
            1 / 8 + (np.tan(t + pi / 2) + 1) / 8,
            3 / 8 + (np.tan(t) + 1) / 8,
            5 / 8 + (np.tan(t - pi / 2) + 1) / 8,
        ],
        7 / 8 + (np.tan(t - pi) + 1) / 8,
    )


def vp_kernel(t, beta_min=0.1, beta_max=20.0, t_end=1.0):
    """VP kernel (m(t), σ(t)): I(t) = β_min t + (β_max − β_min) t²/(2T), m = e^{−I/2}, σ = √(1 − m²)."""
    i = beta_min * t + (beta_max - beta_min) * t * t / (2 * t_end)
    m = np.exp(-0.5 * i)
    return m, np.sqrt(1 - m * m)


def mixture_score_numpy(x, t, means, std):
    """Exact score of an isotropic equal-weight mixture diffused by VP, in float64 NumPy:
    Σ_k r_k (m μ_k − x)/v, v = m² s² + σ²."""
    m, s = vp_kernel(t)
    v = m * m * std * std + s * s
    diff = m * means[None, :, :] - x[:, None, :]  # (n, K, d)
    logw = -0.5 * (diff**2).sum(-1) / v
    logw -= logw.max(axis=1, keepdims=True)
    r = np.exp(logw)
    r /= r.sum(axis=1, keepdims=True)
    return (r[:, :, None] * diff).sum(1) / v


EIGHT_MEANS = np.array(
    [[2 * np.cos(2 * np.pi * k / 8), 2 * np.sin(2 * np.pi * k / 8)] for k in range(8)]
)


def find_run(name):
    """A finished run directory of experiment `name`: $SMOLUCHOWSKI_RUNS/<name>, else the
    checkout's target/reproduce/<name> (CI runs the experiments before this suite)."""
    roots = [os.environ.get("SMOLUCHOWSKI_RUNS"), os.path.join(sm._native.workspace_root(), "target", "reproduce")]
    for root in roots:
        if root and os.path.exists(os.path.join(root, name, "metrics.json")):
            return os.path.join(root, name)
    return None


@pytest.fixture
def ring_run():
    d = find_run("ring2d")
    if d is None:
        pytest.skip("no finished ring2d run (cargo xtask reproduce ring2d)")
    return d
