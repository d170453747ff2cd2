"""smoluchowski: exact truth and fast samplers for score-based diffusion models.

The Rust library (seeded, bit-reproducible, checked against analytic laws) from NumPy:

- datasets and their exact laws: :func:`draw`, :func:`log_density`, :func:`score`,
  :func:`marginals`, :func:`marginal_cdf`;
- oracles, the exact score of a dataset diffused by a forward SDE at any time:
  :func:`oracle_score`, :func:`oracle_log_density`;
- :func:`verify`: the statistics an experiment report gives, for any samples;
- :func:`sample`: every sampler, driven by the exact oracle, a network trained by the Rust side
  (:func:`load_model`) or any Python callable ``score(x, t)`` (e.g. a torch model);
- :func:`run` / :func:`reproduce`: run an experiment manifest, get its ``metrics.json``.

Datasets are dicts (or just the kind as a string): ``"ring2d"``, ``{"kind": "ring2d",
"scale": 200}``, ``"eight_gaussians"``, ``{"kind": "circle_mixture", "components": 8, "radius":
2, "std": 0.05}``, ``{"kind": "mixture", "means": [[0, 0], [2, 0]], "stds": [[1, 1], [0.5,
0.5]], "weights": [0.3, 0.7]}``, ``{"kind": "gaussian", "mean": [...], "std": [...]}``,
``"two_moons"``, ``"circles"``, ``"swiss_roll"``, ``"checkerboard"``.

SDEs are dicts as in a manifest's ``[sde]`` table: :data:`VP` (Song et al.'s defaults),
:data:`SUB_VP`, or ``{"kind": "ou", "a": 1.0, "diffusion": 1.0, "t_end": 5.0}``.

Samplers are dicts as in a manifest's ``[sampling]`` table: ``{"method": "euler_maruyama",
"steps": 1000, "t_eps": 1e-3}``; ``method`` is one of ``euler_maruyama``,
``probability_flow_euler``, ``probability_flow_heun``, ``edm_heun``, ``dpm_solver_pp_2m``,
``dpm_solver_pp_3m``, ``unipc``, or a one-key dict with parameters: ``{"ddim": {"eta": 0.0}}``,
``{"ddpm_ancestral": {"variance": "posterior"}}``, ``{"dpm_solver_pp_2m_sde": {"eta": 1.0}}``,
``{"predictor_corrector": {"corrector_steps": 1, "snr": 0.16}}``,
``{"dormand_prince": {"rtol": 1e-5, "atol": 1e-5}}``; optional ``grid`` (``"uniform"``,
``"quadratic"``, ``"log_snr"``, ``{"karras": {"rho": 7.0}}``) and ``final_denoise``. The
discrete DDPM chain is ``{"ddpm_chain": {"schedule": {"kind": {"linear": {"beta_start": 1e-4,
"beta_end": 0.02}}, "steps": 1000}, "variance": "beta"}}`` (its SDE is the schedule's VP limit
``β(t) = N β_lin(t)``, so ``sde`` is not given).

Bad input raises ``ValueError`` whose message names the field and its value (the same messages
as ``cargo xtask``); failures while running raise ``RuntimeError``. Long work releases the GIL.
"""

import json
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Union

import numpy as np

from . import _native
from ._native import TrainedModel

__version__: str = _native.__version__

Dataset = Union[str, Dict[str, Any]]
Config = Dict[str, Any]

#: The VP SDE with Song et al.'s defaults: ``β(t) = 0.1 + 19.9 t``, ``T = 1``.
VP: Config = {"kind": "vp", "beta_min": 0.1, "beta_max": 20.0, "t_end": 1.0}
#: The sub-VP SDE with the same ``β``.
SUB_VP: Config = {"kind": "sub_vp", "beta_min": 0.1, "beta_max": 20.0, "t_end": 1.0}
#: An Ornstein–Uhlenbeck SDE ``dx = −x dt + √2 dW`` up to ``T = 5`` (``m(T) = e⁻⁵``).
OU: Config = {"kind": "ou", "a": 1.0, "diffusion": 1.0, "t_end": 5.0}
#: The notes' sampler: Euler–Maruyama on the reverse SDE, 1000 steps down to ``t_eps = 1e-3``.
EULER_MARUYAMA: Config = {"method": "euler_maruyama", "steps": 1000, "t_eps": 1e-3}

__all__ = [
    "VP",
    "SUB_VP",
    "OU",
    "EULER_MARUYAMA",
    "SampleResult",
    "TrainedModel",
    "draw",
    "log_density",
    "score",
    "marginals",
    "marginal_cdf",
    "oracle_score",
    "oracle_log_density",
    "verify",
    "sample",
    "load_model",
    "run",
    "reproduce",
]


def _dataset(dataset: Dataset) -> str:
    if isinstance(dataset, str):
        return json.dumps({"kind": dataset})
    if isinstance(dataset, dict):
        return json.dumps(dataset)
    raise TypeError(f"dataset must be a kind name or a dict (got {type(dataset).__name__})")


def _config(what: str, value: Config) -> str:
    if not isinstance(value, dict):
        raise TypeError(f"{what} must be a dict (got {type(value).__name__})")
    return json.dumps(value)


def _rows(x: Any, name: str = "x", dtype: Any = np.float64) -> np.ndarray:
    """``x`` as a C-contiguous 2-D array of ``dtype`` (no copy when it already is one)."""
    a = np.ascontiguousarray(x, dtype=dtype)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, d) (got shape {a.shape})")
    return a


def draw(dataset: Dataset, n: int, seed: int = 0, *, stream: str = "data") -> np.ndarray:
    """Draw ``n`` points of ``dataset`` as a float64 array of shape ``(n, d)``.

    The draw is a pure function of ``(dataset, n, seed, stream)``: the seeded ChaCha8 stream
    ``core::streams::named(seed, stream, 0)``, the construction the experiment harness uses, so
    ``draw("ring2d", m, seed=<experiment seed>, stream="reference")`` is a ring2d run's
    reference draw.
    """
    return _native.dataset_sample(_dataset(dataset), int(n), int(seed), stream)


def log_density(dataset: Dataset, x: Any) -> np.ndarray:
    """Exact ``log p₀(x)`` of every row of ``x`` (shape ``(n, d)``) → shape ``(n,)``.

    ring2d: ``ln Gamma_pdf(r; k, rate k) + ln p(θ) − ln r`` with ``p(θ) = 1/(8 max(cos²θ,
    sin²θ))``; Gaussian mixtures: ``ln Σ_k w_k N(x; μ_k, diag s_k²)``. Other datasets have no
    closed form (``ValueError``).
    """
    return _native.dataset_log_density(_dataset(dataset), _rows(x))


def score(dataset: Dataset, x: Any) -> np.ndarray:
    """Exact data score ``∇ log p₀(x)`` of every row of ``x`` → shape ``(n, d)``.

    ring2d: ``(k/r − k) x/r − 2 e_i/x_i`` with ``i = argmax |x_i|``; mixtures: the
    responsibility-weighted component scores ``Σ_k r_k(x) (μ_k − x)/s_k²``.
    """
    return _native.dataset_score(_dataset(dataset), _rows(x))


def marginals(dataset: Dataset) -> List[str]:
    """Names of the marginals with a closed-form CDF: ``["radius", "angle"]`` for ring2d,
    ``["x0", "x1", ...]`` for mixtures and the checkerboard, ``["angle"]`` for circles."""
    return _native.dataset_marginals(_dataset(dataset))


def marginal_cdf(dataset: Dataset, marginal: str, values: Any) -> np.ndarray:
    """Exact CDF of the marginal ``marginal`` (see :func:`marginals`) at ``values`` (1-D).

    ring2d's radius is ``Gamma(k, rate k)``; its angle ``θ = atan2(y, x) ∈ (−π, π]`` has the
    piecewise-tan CDF of a uniform point of the square projected on the circle.
    """
    v = np.ascontiguousarray(values, dtype=np.float64).ravel()
    return _native.dataset_marginal_cdf(_dataset(dataset), marginal, v)


def _by_time(f: Callable[[np.ndarray, float], np.ndarray], x: np.ndarray, t: Any) -> np.ndarray:
    """``f(x, t)`` for a scalar ``t``, or row-wise for an array ``t`` of shape ``(n,)``
    (one call per distinct time)."""
    if np.ndim(t) == 0:
        return f(x, float(t))
    ts = np.asarray(t, dtype=np.float64).ravel()
    if ts.shape[0] != x.shape[0]:
        raise ValueError(f"t must be a number or have shape ({x.shape[0]},) (got {np.shape(t)})")
    out: Optional[np.ndarray] = None
    for tv in np.unique(ts):
        rows = np.nonzero(ts == tv)[0]
        part = f(np.ascontiguousarray(x[rows]), float(tv))
        if out is None:
            out = np.empty((x.shape[0],) + part.shape[1:], dtype=part.dtype)
        out[rows] = part
    if out is None:  # no rows
        return f(x, 0.0)
    return out


def oracle_score(dataset: Dataset, x: Any, t: Any, sde: Config = VP) -> np.ndarray:
    """The exact score ``∇ₓ log p_t(x)`` of ``dataset`` diffused by ``sde``, at every row of ``x``.

    With the kernel ``x_t | x₀ ~ N(m(t) x₀, σ(t)² I)``, ``p_t = p₀ ∗ kernel``. Gaussian
    mixtures in closed form (``Σ_k r_k(x) (m μ_k − x)/(m² s_k² + σ²)``); ring2d by quadrature
    (Tweedie: ``−E[x − m y | x_t = x]/σ²``, relative error ≤ 3e-10). ``t`` is a number in
    ``[0, T]`` or an array of shape ``(n,)`` (one time per row, e.g. a training batch), so a
    network's output can be compared with the truth point by point. Float64 ``(n, d)``.
    """
    xs = _rows(x)
    d, s = _dataset(dataset), _config("sde", sde)
    return _by_time(lambda a, tv: _native.oracle_score(d, s, a, tv), xs, t)


def oracle_log_density(dataset: Dataset, x: Any, t: Any, sde: Config = VP) -> np.ndarray:
    """The exact ``log p_t(x)`` of ``dataset`` diffused by ``sde`` (see :func:`oracle_score`)
    → shape ``(n,)``."""
    xs = _rows(x)
    d, s = _dataset(dataset), _config("sde", sde)
    return _by_time(lambda a, tv: _native.oracle_log_density(d, s, a, tv), xs, t)


def _flatten(statistics: Dict[str, Any]) -> Dict[str, Any]:
    return {k: (v["value"] if set(v) == {"value"} else v) for k, v in statistics.items()}


def verify(
    samples: Any,
    dataset: Dataset,
    *,
    seed: int = 0,
    reference_samples: Optional[int] = None,
    sliced_wasserstein_projections: int = 256,
    energy_subsample: Optional[int] = None,
) -> Dict[str, Any]:
    """Check ``samples`` (shape ``(n, d)``, any float dtype, e.g.
    ``model_samples.cpu().numpy()``) against the exact law of ``dataset``.

    Returns the statistics an experiment report gives, as a dict:

    - ``<marginal>_ks``: one-sample Kolmogorov–Smirnov test of each closed-form marginal
      (ring2d: ``radius_ks``, ``angle_ks``; mixtures: ``x0_ks``, ...), ``{"statistic": D,
      "pvalue": p}``, equal to ``scipy.stats.kstest`` (exact p-values for small n,
      SciPy's asymptotics for large n);
    - ``two_sample_ks_<feature>``: two-sample KS against a fresh data draw of
      ``reference_samples`` rows (``scipy.stats.ks_2samp``);
    - ``sliced_wasserstein`` (SW₂ over ``sliced_wasserstein_projections`` random directions)
      and ``energy_distance`` (Székely–Rizzo, first ``energy_subsample`` rows, default
      ``min(5000, n, m)``), each with its ``_noise_floor`` (the same distance between two
      independent data draws of the same sizes) and ``_ratio`` (≈ 1: as close to the law as
      sampling noise allows);
    - ring2d also ``mean_radius`` and ``std_radius`` (exact: 1 and ``1/√k``);
    - ``parameters``: sizes, seeds and the KS critical value at α = 1e-3.

    ``seed`` seeds the reference draws and the projection directions exactly as the harness
    does from an experiment's ``experiment.seed``: a ring2d run's ``samples.npy`` verified
    with its seed and ``[evaluation]`` sizes gives its ``metrics.json`` statistics.
    """
    xs = _rows(samples, "samples")
    options: Dict[str, Any] = {
        "seed": int(seed),
        "sliced_wasserstein_projections": int(sliced_wasserstein_projections),
    }
    if reference_samples is not None:
        options["reference_samples"] = int(reference_samples)
    if energy_subsample is not None:
        options["energy_subsample"] = int(energy_subsample)
    result = json.loads(_native.verify(xs, _dataset(dataset), json.dumps(options)))
    out = _flatten(result["statistics"])
    out["parameters"] = result["parameters"]
    return out


class SampleResult(NamedTuple):
    """What :func:`sample` returns."""

    #: float32 array ``(n, d)``.
    samples: np.ndarray
    #: Batched score evaluations (the sampler's NFE).
    nfe: int
    #: Seconds spent inside a Python callable score (``None`` for the Rust paths).
    score_seconds: Optional[float]


ScoreLike = Union[Dataset, TrainedModel, Callable[[np.ndarray, float], Any]]


def sample(
    score: ScoreLike,
    n: int,
    seed: int = 0,
    *,
    sde: Optional[Config] = None,
    sampler: Config = EULER_MARUYAMA,
    dim: Optional[int] = None,
) -> SampleResult:
    """Draw ``n`` samples with any sampler of the library, from ``N(0, prior_std² I)`` at ``T``
    down to ``sampler["t_eps"]``.

    ``score`` is one of

    - a dataset (``"ring2d"``, a dict): its exact oracle score (Rust path);
    - a :class:`TrainedModel` from :func:`load_model` (Rust path);
    - any callable ``score(x, t) -> array``: ``x`` is a float32 array ``(n, d)`` (the whole
      batch), ``t`` a float; it returns ``∇ log p_t(x)`` with the same shape (any float dtype).
      It is called once per network evaluation, so NFE counts as for a Rust model; ``dim``
      is required. A torch model: ``lambda x, t: net(torch.from_numpy(x), t).numpy()``.

    ``sde`` is the forward SDE (default: the model's own for a :class:`TrainedModel`, else
    :data:`VP`). ``seed`` seeds the prior draw and every step's noise: the same seed and the same score
    values give bit-identical samples whichever path drives them, on any thread count.
    Exceptions raised by the callable propagate unchanged and stop the sampler at once.
    """
    if isinstance(sampler, dict) and "ddpm_chain" in sampler and sde is not None:
        raise ValueError("sde must not be given with sampler.ddpm_chain (its SDE is the schedule's VP limit)")
    if sde is None:
        sde = json.loads(score.sde_json) if isinstance(score, TrainedModel) else VP
    s, cfg = _config("sde", sde), _config("sampler", sampler)
    if isinstance(score, (str, dict)):
        arr, nfe = _native.sample_oracle(_dataset(score), s, cfg, int(n), int(seed))
        return SampleResult(arr, nfe, None)
    if isinstance(score, TrainedModel):
        arr, nfe = score.sample(s, cfg, int(n), int(seed))
        return SampleResult(arr, nfe, None)
    if callable(score):
        if dim is None:
            raise ValueError("dim must be given for a callable score (got None)")
        arr, nfe, _calls, seconds = _native.sample_callable(score, int(dim), s, cfg, int(n), int(seed))
        return SampleResult(arr, nfe, seconds)
    raise TypeError(
        f"score must be a dataset, a TrainedModel or a callable (got {type(score).__name__})"
    )


def load_model(path: str, sde: Optional[Config] = None) -> TrainedModel:
    """Load a network trained by the Rust side (``model.safetensors`` with its ``model.json``).

    ``sde`` is the forward SDE it was trained for; by default it is read from the
    ``metrics.json`` next to the model (the run's manifest echo, ``experiment.sde``).
    ``model.score(x, t)`` evaluates it on float32 rows; ``sample(model, ...)`` samples with it.
    """
    if sde is None:
        import os

        metrics = os.path.join(os.path.dirname(os.path.abspath(path)), "metrics.json")
        try:
            with open(metrics) as f:
                sde = json.load(f)["experiment"]["sde"]
        except (OSError, KeyError, ValueError) as e:
            raise ValueError(
                f"sde must be given: no experiment.sde in {metrics} ({e})"
            ) from None
    return TrainedModel.load(str(path), _config("sde", sde))


def run(manifest: str, out: Optional[str] = None, resume: bool = False) -> Dict[str, Any]:
    """Run an experiment manifest (``cargo xtask run``) and return its ``metrics.json``.

    Outputs go to ``out`` (default ``<workspace>/target/reproduce/<name>``), replaced
    atomically. ``metrics["golden"]["passed"]`` says whether the golden checks passed. A bad
    manifest raises ``ValueError`` with the CLI's message (e.g. ``experiments/x.toml:
    free_diffusion.diffusion must be > 0 (got -0.5)``); a failed run raises ``RuntimeError``.
    """
    text, _passed, _out = _native.run_manifest(str(manifest), None if out is None else str(out), resume)
    return json.loads(text)


def reproduce(name: str, out: Optional[str] = None, resume: bool = False) -> Dict[str, Any]:
    """Run ``experiments/<name>.toml`` of the checkout this package was built from
    (``cargo xtask reproduce``) and return its ``metrics.json`` (see :func:`run`)."""
    text, _passed, _out = _native.reproduce(name, None if out is None else str(out), resume)
    return json.loads(text)
