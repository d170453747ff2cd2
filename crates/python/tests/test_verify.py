"""`verify` against SciPy: the same KS statistics and p-values, the same distances."""

import json
import os

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import cdist

import smoluchowski as sm
from conftest import ring_angular_cdf


def energy_distance_numpy(a, b):
    """Székely–Rizzo V-statistic: 2 E|a − b| − E|a − a'| − E|b − b'|."""
    return 2 * cdist(a, b).mean() - cdist(a, a).mean() - cdist(b, b).mean()


@pytest.mark.parametrize("n", [300, 20000])  # exact and asymptotic p-value regimes
def test_ring_ks_equals_scipy_kstest_and_ks_2samp(n):
    k = 200.0
    # A slightly wrong sampler: radius too wide, so p-values are not all 1.
    x = sm.draw("ring2d", n, seed=5) * np.array([1.003, 1.0])
    v = sm.verify(x, "ring2d", seed=9, reference_samples=1000, energy_subsample=200)
    r, th = np.hypot(x[:, 0], x[:, 1]), np.arctan2(x[:, 1], x[:, 0])
    # The KS algorithm: scipy.stats.kstest with the package's exact CDFs gives the same D and
    # p-value to 1e-12.
    for key, feature, marginal in [("radius_ks", r, "radius"), ("angle_ks", th, "angle")]:
        want = stats.kstest(feature, lambda u: sm.marginal_cdf("ring2d", marginal, u))
        assert abs(v[key]["statistic"] - want.statistic) < 1e-12, key
        assert abs(v[key]["pvalue"] - want.pvalue) < 1e-12, key
    # The CDFs: SciPy's Gamma(k, rate k) and the closed-form angular CDF give the same D to
    # 1e-12 (the p-value's slope in D at n = 2e4 turns the CDFs' ~1e-15 differences into ~1e-12).
    for key, want in [("radius_ks", stats.kstest(r, stats.gamma(k, scale=1 / k).cdf)),
                      ("angle_ks", stats.kstest(th, ring_angular_cdf))]:
        assert abs(v[key]["statistic"] - want.statistic) < 1e-12, key
        assert abs(v[key]["pvalue"] - want.pvalue) < 1e-9 * max(want.pvalue, 1e-3), key
    ref = sm.draw("ring2d", 1000, seed=9, stream="reference")
    rr, tr = np.hypot(ref[:, 0], ref[:, 1]), np.arctan2(ref[:, 1], ref[:, 0])
    for key, a, b in [("two_sample_ks_radius", r, rr), ("two_sample_ks_angle", th, tr)]:
        want = stats.ks_2samp(a, b)
        assert abs(v[key]["statistic"] - want.statistic) < 1e-12, key
        assert abs(v[key]["pvalue"] - want.pvalue) < 1e-12, key
    floor = sm.draw("ring2d", n, seed=9, stream="reference_floor")
    e = energy_distance_numpy(x[:200], ref[:200])
    assert abs(v["energy_distance"] - e) < 1e-12 * max(1, e) + 1e-13
    e0 = energy_distance_numpy(floor[:200], ref[:200])
    assert abs(v["energy_distance_noise_floor"] - e0) < 1e-12 + 1e-12 * e0
    assert v["energy_distance_ratio"] == v["energy_distance"] / v["energy_distance_noise_floor"]
    assert abs(v["mean_radius"] - r.mean()) < 1e-13 and abs(v["std_radius"] - r.std(ddof=1)) < 1e-13
    assert v["parameters"]["n"] == n


def test_mixture_marginals_and_float32_input():
    x = sm.draw("eight_gaussians", 2000, seed=1)
    v64 = sm.verify(x, "eight_gaussians", energy_subsample=300)
    x32 = x.astype(np.float32)
    v32 = sm.verify(x32, "eight_gaussians", energy_subsample=300)
    xs = x32.astype(np.float64)
    for j in range(2):
        grid_cdf = lambda u, j=j: sm.marginal_cdf("eight_gaussians", f"x{j}", u)
        want = stats.kstest(xs[:, j], grid_cdf)
        assert abs(v32[f"x{j}_ks"]["statistic"] - want.statistic) < 1e-12
        assert abs(v32[f"x{j}_ks"]["pvalue"] - want.pvalue) < 1e-12
        assert v64[f"x{j}_ks"]["pvalue"] > 1e-3  # exact draws (fixed seed) pass at α = 1e-3
    assert 0.3 < v64["sliced_wasserstein_ratio"] < 3
    # A sampler that misses half the modes is rejected.
    bad = x[(np.arctan2(x[:, 1], x[:, 0]) > 0)]
    vb = sm.verify(bad, "eight_gaussians", energy_subsample=300)
    assert vb["x1_ks"]["pvalue"] < 1e-6 and vb["energy_distance_ratio"] > 5


def test_verify_reproduces_a_ring2d_report(ring_run):
    """The run's samples.npy verified with its seed and [evaluation] sizes give its
    metrics.json statistics exactly (same code path, same seeded draws)."""
    with open(os.path.join(ring_run, "metrics.json")) as f:
        metrics = json.load(f)
    exp, stats_ = metrics["experiment"], metrics["statistics"]
    ev = exp["evaluation"]
    x = np.load(os.path.join(ring_run, "samples.npy"))
    v = sm.verify(x, {"kind": "ring2d", "scale": exp["dataset"]["scale"]},
                  seed=exp["experiment"]["seed"], reference_samples=ev["reference_samples"],
                  sliced_wasserstein_projections=ev["sliced_wasserstein_projections"],
                  energy_subsample=ev["energy_subsample"])
    for key in ["radius_ks", "angle_ks", "two_sample_ks_radius", "two_sample_ks_angle"]:
        assert v[key] == stats_[key], key
    for key in ["sliced_wasserstein", "sliced_wasserstein_noise_floor", "energy_distance",
                "energy_distance_noise_floor", "mean_radius", "std_radius"]:
        assert v[key] == stats_[key]["value"], key


def test_bad_verify_input_is_named():
    x = sm.draw("ring2d", 100)
    with pytest.raises(ValueError, match=r"samples.shape\[1\] must be = 2 .*\(got 3\)"):
        sm.verify(np.zeros((10, 3)), "ring2d")
    y = x.copy()
    y[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"samples\[4, 1\] must be finite \(got NaN\)"):
        sm.verify(y, "ring2d")
    with pytest.raises(ValueError, match=r"energy_subsample must be .*\(got 500\)"):
        sm.verify(x, "ring2d", energy_subsample=500)
    with pytest.raises(ValueError, match="reference_samples"):
        sm.verify(x, "ring2d", reference_samples=10**16)
    with pytest.raises(ValueError, match="samples must be a 2-D array"):
        sm.verify(np.zeros(10), "ring2d")
