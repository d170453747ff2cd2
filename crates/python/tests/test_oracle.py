"""Oracle scores: finite differences of the exact log-density, and an independent NumPy form."""

import numpy as np
import pytest

import smoluchowski as sm
from conftest import EIGHT_MEANS, mixture_score_numpy

SDES = [sm.VP, sm.SUB_VP, sm.OU]


@pytest.mark.parametrize("sde", SDES, ids=["vp", "sub_vp", "ou"])
@pytest.mark.parametrize("dataset", ["ring2d", "eight_gaussians"])
def test_oracle_score_is_the_gradient_of_the_oracle_log_density(dataset, sde):
    x0 = sm.draw(dataset, 40, seed=4)
    for frac in [0.003, 0.05, 0.3, 1.0]:
        t = frac * sde["t_end"]
        # Points where p_t lives: the data pushed through the kernel, roughly.
        x = x0 * 0.9 + 0.05
        s = sm.oracle_score(dataset, x, t, sde=sde)
        h = 1e-5
        for j in range(2):
            e = np.zeros_like(x)
            e[:, j] = h
            fd = (sm.oracle_log_density(dataset, x + e, t, sde=sde)
                  - sm.oracle_log_density(dataset, x - e, t, sde=sde)) / (2 * h)
            scale = np.abs(s).max() + 1
            np.testing.assert_allclose(s[:, j], fd, rtol=0, atol=2e-5 * scale)


def test_mixture_oracle_equals_an_independent_numpy_closed_form():
    x = np.random.default_rng(0).normal(size=(200, 2)) * 2
    for t in [1e-3, 0.1, 0.5, 1.0]:
        want = mixture_score_numpy(x, t, EIGHT_MEANS, 0.05)
        np.testing.assert_allclose(sm.oracle_score("eight_gaussians", x, t), want,
                                   rtol=1e-9, atol=1e-9 * np.abs(want).max())


def test_per_row_times_equal_scalar_calls():
    x = sm.draw("ring2d", 30, seed=1)
    t = np.repeat([0.01, 0.2, 0.7], 10)
    got = sm.oracle_score("ring2d", x, t)
    for tv in [0.01, 0.2, 0.7]:
        rows = t == tv
        np.testing.assert_array_equal(got[rows], sm.oracle_score("ring2d", x[rows], tv))


def test_bad_oracle_input_is_named():
    with pytest.raises(ValueError, match=r"t must be in \[0, sde.t_end = 1\] \(got 2\)"):
        sm.oracle_score("ring2d", np.zeros((1, 2)), 2.0)
    with pytest.raises(ValueError, match="sde.beta_max must be > 0"):
        sm.oracle_score("ring2d", np.zeros((1, 2)), 0.5, sde={"kind": "vp", "beta_min": 0, "beta_max": -1, "t_end": 1})
    with pytest.raises(ValueError, match="no exact score under an SDE"):
        sm.oracle_score("two_moons", np.zeros((1, 2)), 0.5)
