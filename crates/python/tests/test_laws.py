"""Datasets and exact laws against SciPy / NumPy references."""

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import smoluchowski as sm
from conftest import ring_angular_cdf


def test_ring_marginal_cdfs_equal_scipy_and_the_closed_form():
    k = 200.0
    r = np.linspace(0.5, 1.5, 201)
    got = sm.marginal_cdf({"kind": "ring2d", "scale": k}, "radius", r)
    np.testing.assert_allclose(got, stats.gamma(k, scale=1 / k).cdf(r), rtol=0, atol=1e-12)
    th = np.linspace(-np.pi + 1e-9, np.pi, 1001)
    got = sm.marginal_cdf("ring2d", "angle", th)
    np.testing.assert_allclose(got, ring_angular_cdf(th), rtol=0, atol=1e-14)
    assert sm.marginals("ring2d") == ["radius", "angle"]


def test_ring_log_density_is_gamma_times_angle_over_r():
    k = 50.0
    x = sm.draw({"kind": "ring2d", "scale": k}, 500, seed=3)
    r, th = np.hypot(x[:, 0], x[:, 1]), np.arctan2(x[:, 1], x[:, 0])
    p_theta = 1 / (8 * np.maximum(np.cos(th) ** 2, np.sin(th) ** 2))
    want = stats.gamma(k, scale=1 / k).logpdf(r) + np.log(p_theta) - np.log(r)
    got = sm.log_density({"kind": "ring2d", "scale": k}, x)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_mixture_log_density_and_marginals_equal_scipy():
    spec = {"kind": "mixture", "means": [[0, 1], [2, -1], [-1, 0]],
            "stds": [[1, 0.5], [0.3, 0.7], [2, 1]], "weights": [0.2, 0.5, 0.3]}
    x = sm.draw(spec, 300, seed=1)
    comps = [stats.multivariate_normal(m, np.diag(np.square(s)))
             for m, s in zip(spec["means"], spec["stds"])]
    want = logsumexp([np.log(w) + c.logpdf(x) for w, c in zip(spec["weights"], comps)], axis=0)
    np.testing.assert_allclose(sm.log_density(spec, x), want, rtol=1e-12, atol=1e-12)
    v = np.linspace(-4, 4, 101)
    want = sum(w * stats.norm(m[1], s[1]).cdf(v)
               for w, m, s in zip(spec["weights"], spec["means"], spec["stds"]))
    np.testing.assert_allclose(sm.marginal_cdf(spec, "x1", v), want, atol=1e-14)


@pytest.mark.parametrize("dataset", ["ring2d", "eight_gaussians",
                                     {"kind": "gaussian", "mean": [1, 2, 3], "std": [1, 0.5, 2]}])
def test_data_scores_are_finite_differences_of_the_log_density(dataset):
    x = sm.draw(dataset, 50, seed=2)
    s = sm.score(dataset, x)
    h = 1e-6
    for j in range(x.shape[1]):
        e = np.zeros_like(x)
        e[:, j] = h
        fd = (sm.log_density(dataset, x + e) - sm.log_density(dataset, x - e)) / (2 * h)
        np.testing.assert_allclose(s[:, j], fd, rtol=1e-5, atol=1e-5 * np.abs(fd).max())


def test_draws_are_seeded_and_named():
    a = sm.draw("two_moons", 1000, seed=7)
    assert a.shape == (1000, 2) and a.dtype == np.float64
    np.testing.assert_array_equal(a, sm.draw("two_moons", 1000, seed=7))
    assert not np.array_equal(a, sm.draw("two_moons", 1000, seed=8))
    assert not np.array_equal(a, sm.draw("two_moons", 1000, seed=7, stream="reference"))
    # Exact moments of the moons: E x = 1/2, E y = 1/4 (5 standard errors).
    assert abs(a[:, 0].mean() - 0.5) < 5 * a[:, 0].std() / np.sqrt(1000)


def test_bad_datasets_name_the_field():
    with pytest.raises(ValueError, match=r"dataset.scale must be >= 2 \(got 1\)"):
        sm.draw({"kind": "ring2d", "scale": 1.0}, 10)
    with pytest.raises(ValueError, match="unknown field `scael`"):
        sm.draw({"kind": "ring2d", "scael": 3}, 10)
    with pytest.raises(ValueError, match="unknown variant `ring3d`"):
        sm.draw("ring3d", 10)
    with pytest.raises(ValueError, match=r"stds\[0\]\[1\]"):
        sm.draw({"kind": "mixture", "means": [[0, 0]], "stds": [[1, 0]]}, 10)
    with pytest.raises(ValueError, match="no closed-form log-density"):
        sm.log_density("swiss_roll", np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"x.shape\[1\] must be = 2"):
        sm.score("ring2d", np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"n must be small enough to fit in memory"):
        sm.draw("ring2d", 10**15)
