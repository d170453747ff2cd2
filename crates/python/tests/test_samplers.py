"""Samplers driven by Python callables: the same samples as the Rust paths for the same seed."""

import numpy as np
import pytest

import smoluchowski as sm
from conftest import EIGHT_MEANS, find_run, mixture_score_numpy

METHODS = [
    "euler_maruyama",
    "probability_flow_heun",
    {"ddim": {"eta": 0.5}},
    "edm_heun",
    "dpm_solver_pp_3m",
    {"dpm_solver_pp_2m_sde": {"eta": 1.0}},
    "unipc",
    {"predictor_corrector": {"corrector_steps": 1, "snr": 0.16}},
    {"dormand_prince": {"rtol": 1e-4, "atol": 1e-4}},
]


@pytest.mark.parametrize("method", METHODS, ids=str)
def test_callable_oracle_equals_the_rust_oracle_path_bit_for_bit(method):
    sampler = {"method": method, "steps": 12, "t_eps": 1e-3, "final_denoise": True}
    calls = []

    def score(x, t):
        assert x.dtype == np.float32 and x.flags.c_contiguous and x.shape == (500, 2)
        calls.append(t)
        # The oracle's Rust f32 path computes in f64 from the f32 state and rounds once.
        return sm.oracle_score("ring2d", x.astype(np.float64), t).astype(np.float32)

    rust = sm.sample("ring2d", 500, seed=11, sampler=sampler)
    py = sm.sample(score, 500, seed=11, sampler=sampler, dim=2)
    np.testing.assert_array_equal(py.samples, rust.samples)
    assert py.nfe == rust.nfe == len(calls) and py.score_seconds > 0


def test_numpy_mixture_score_callable_matches_the_rust_path():
    """A pure-NumPy float64 score (independent code) agrees with the Rust oracle path to f32
    rounding on a deterministic sampler, and both draws pass verify."""
    sampler = {"method": "dpm_solver_pp_2m", "steps": 40, "t_eps": 1e-3}
    rust = sm.sample("eight_gaussians", 4000, seed=3, sampler=sampler)
    py = sm.sample(lambda x, t: mixture_score_numpy(x.astype(np.float64), t, EIGHT_MEANS, 0.05),
                   4000, seed=3, sampler=sampler, dim=2)
    assert np.abs(py.samples - rust.samples).max() < 1e-4
    v = sm.verify(py.samples, "eight_gaussians", energy_subsample=500)
    assert v["x0_ks"]["pvalue"] > 1e-3 and v["x1_ks"]["pvalue"] > 1e-3


def test_callable_errors_propagate_and_stop_the_run():
    n = []

    def failing(x, t):
        n.append(t)
        if len(n) == 3:
            raise ZeroDivisionError("my model broke")
        return -x

    with pytest.raises(ZeroDivisionError, match="my model broke"):
        sm.sample(failing, 10, sampler={"method": "euler_maruyama", "steps": 100, "t_eps": 1e-3}, dim=2)
    assert len(n) == 3
    with pytest.raises(ValueError, match=r"must return an array of shape \(10, 2\)"):
        sm.sample(lambda x, t: x[:5], 10, dim=2)
    with pytest.raises(ValueError, match="dim must be given"):
        sm.sample(lambda x, t: x, 10)


def test_float64_and_non_contiguous_returns_are_accepted():
    sampler = {"method": "probability_flow_euler", "steps": 5, "t_eps": 1e-3}
    a = sm.sample(lambda x, t: -x.astype(np.float64), 20, sampler=sampler, dim=2)
    b = sm.sample(lambda x, t: np.asfortranarray(-x), 20, sampler=sampler, dim=2)
    np.testing.assert_array_equal(a.samples, b.samples)


def test_bad_sampler_configs_are_named():
    with pytest.raises(ValueError, match=r"sampler.steps must be"):
        sm.sample("ring2d", 10, sampler={"method": "euler_maruyama", "steps": 0, "t_eps": 1e-3})
    with pytest.raises(ValueError, match=r"sampler: unknown field `stesp`"):
        sm.sample("ring2d", 10, sampler={"method": "euler_maruyama", "stesp": 5, "t_eps": 1e-3})
    with pytest.raises(ValueError, match=r"m\(T\)"):
        sm.sample("ring2d", 10, sde={"kind": "vp", "beta_min": 0.1, "beta_max": 0.2, "t_end": 1})
    with pytest.raises(ValueError, match="eta"):
        sm.sample("ring2d", 10, sampler={"method": {"ddim": {"eta": 2.0}}, "steps": 5, "t_eps": 1e-3})


def test_trained_model_through_a_callable_equals_the_rust_model_path():
    run = find_run("ring2d") or find_run("ring2d-samplers-ci")
    if run is None:
        pytest.skip("no trained ring2d model (cargo xtask reproduce ring2d)")
    model = sm.load_model(f"{run}/model.safetensors")
    assert model.dim == 2
    sampler = {"method": "euler_maruyama", "steps": 50, "t_eps": 1e-3}
    rust = sm.sample(model, 2000, seed=4, sampler=sampler)
    py = sm.sample(model.score, 2000, seed=4, sampler=sampler, dim=2)
    np.testing.assert_array_equal(py.samples, rust.samples)
    assert py.nfe == rust.nfe == 50


def test_ddpm_chain_from_a_callable_equals_the_rust_path():
    chain = {"ddpm_chain": {"schedule": {"kind": {"linear": {"beta_start": 1e-3, "beta_end": 0.1}},
                                         "steps": 200}, "variance": "posterior"}}
    rust = sm.sample("eight_gaussians", 3000, seed=6, sampler=chain)
    # The chain's SDE is the schedule's VP limit: β(t) = N β_lin(t), here β ∈ [0.2, 20], T = 1.
    vp = {"kind": "vp", "beta_min": 0.2, "beta_max": 20.0, "t_end": 1.0}
    py = sm.sample(lambda x, t: sm.oracle_score("eight_gaussians", x.astype(np.float64), t, sde=vp)
                   .astype(np.float32), 3000, seed=6, sampler=chain, dim=2)
    np.testing.assert_array_equal(py.samples, rust.samples)
    assert py.nfe == rust.nfe == 200
    v = sm.verify(rust.samples, "eight_gaussians", energy_subsample=500)
    assert v["energy_distance_ratio"] < 5
    with pytest.raises(ValueError, match="sde must not be given"):
        sm.sample("eight_gaussians", 10, sampler=chain, sde=sm.VP)
    bad = {"ddpm_chain": {"schedule": {"kind": {"linear": {"beta_start": 0.5, "beta_end": 0.02}}, "steps": 10}}}
    with pytest.raises(ValueError, match=r"sampler.ddpm_chain: .*beta"):
        sm.sample("eight_gaussians", 10, sampler=bad)
