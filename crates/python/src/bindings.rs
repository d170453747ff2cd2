//! The PyO3 layer: `smoluchowski._native`. Configs cross as JSON text (the Python side
//! `json.dumps` its `dict`s, serde rejects unknown fields), arrays as NumPy arrays (C-contiguous
//! inputs are read in place; results are moved into NumPy without a copy). Long work runs with
//! the GIL released; a Python score callable re-acquires it once per batched evaluation.
//! Bad input raises `ValueError` with the library's message naming the field; runtime failures
//! raise `RuntimeError`.

use std::path::{Path, PathBuf};

use numpy::ndarray::{Array1, Array2};
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use serde::de::DeserializeOwned;
use smoluchowski::samplers::{SampleOutput, SamplerConfig};
use smoluchowski::sde::{Sde, SdeConfig};

use crate::experiments::{self, ExperimentError, ExperimentRun};
use crate::law::{DatasetSpec, Law};
use crate::model::TrainedNet;
use crate::oracle::Oracle;
use crate::sampling::{
    run_with_callback, CallbackFailure, DdpmChainConfig, DdpmPlan, Plan, SamplingPlan,
};
use crate::verify::{verify, VerifyOptions};

fn bad(msg: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(msg.to_string())
}

/// `what` parsed from JSON; a wrong key or type is a `ValueError` naming `what`.
fn parse<T: DeserializeOwned>(what: &str, json: &str) -> PyResult<T> {
    serde_json::from_str(json).map_err(|e| bad(format!("{what}: {e}")))
}

fn law(spec: &str) -> PyResult<Law> {
    let spec: DatasetSpec = parse("dataset", spec)?;
    let mut c = smoluchowski::core::validate::Checker::new();
    spec.check(&mut c, "dataset");
    c.finish().map_err(bad)?;
    spec.build().map_err(bad)
}

fn sde(json: &str) -> PyResult<Sde> {
    let config: SdeConfig = parse("sde", json)?;
    let mut c = smoluchowski::core::validate::Checker::new();
    config.check(&mut c, "sde", false);
    c.finish().map_err(bad)?;
    config.build().map_err(|e| bad(e.under("sde")))
}

/// The rows of a C-contiguous `(n, d)` array, read in place.
fn rows<'a, T: numpy::Element>(x: &'a PyReadonlyArray2<'_, T>) -> PyResult<(&'a [T], usize)> {
    let d = x.shape()[1];
    // `as_slice` also accepts Fortran order; rows need C order.
    let s = x
        .as_slice()
        .ok()
        .filter(|_| x.is_c_contiguous())
        .ok_or_else(|| bad("x must be C-contiguous (np.ascontiguousarray)"))?;
    Ok((s, d))
}

fn check_dim(law: &Law, d: usize) -> PyResult<()> {
    if d == law.dim() {
        Ok(())
    } else {
        Err(bad(format!(
            "x.shape[1] must be = {} (the dimension of dataset.kind = {}) (got {d})",
            law.dim(),
            law.kind()
        )))
    }
}

fn matrix<T: numpy::Element>(py: Python<'_>, v: Vec<T>, d: usize) -> Bound<'_, PyArray2<T>> {
    let n = v.len() / d.max(1);
    Array2::from_shape_vec((n, d), v)
        .expect("n × d values")
        .into_pyarray(py)
}

/// `n` seeded draws of a dataset (stream `core::streams::named(seed, stream, 0)`).
#[pyfunction]
fn dataset_sample<'py>(
    py: Python<'py>,
    dataset: &str,
    n: usize,
    seed: u64,
    stream: &str,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let law = law(dataset)?;
    let mut c = smoluchowski::core::validate::Checker::new();
    c.memory("", [law.draws_memory("n", n)]);
    c.finish().map_err(bad)?;
    let v = py.detach(|| law.sample(n, seed, stream));
    Ok(matrix(py, v, law.dim()))
}

/// `log p₀` of every row.
#[pyfunction]
fn dataset_log_density<'py>(
    py: Python<'py>,
    dataset: &str,
    x: PyReadonlyArray2<'py, f64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let law = law(dataset)?;
    let (xs, d) = rows(&x)?;
    check_dim(&law, d)?;
    let mut out = vec![0.0; x.shape()[0]];
    py.detach(|| law.log_density(xs, &mut out)).map_err(bad)?;
    Ok(Array1::from_vec(out).into_pyarray(py))
}

/// `∇ log p₀` of every row.
#[pyfunction]
fn dataset_score<'py>(
    py: Python<'py>,
    dataset: &str,
    x: PyReadonlyArray2<'py, f64>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let law = law(dataset)?;
    let (xs, d) = rows(&x)?;
    check_dim(&law, d)?;
    let mut out = vec![0.0; xs.len()];
    py.detach(|| law.score(xs, &mut out)).map_err(bad)?;
    Ok(matrix(py, out, d))
}

/// Names of the closed-form marginal CDFs of a dataset.
#[pyfunction]
fn dataset_marginals(dataset: &str) -> PyResult<Vec<String>> {
    Ok(law(dataset)?
        .marginal_cdfs()
        .into_iter()
        .map(|m| m.name)
        .collect())
}

/// The exact CDF of the marginal `name` at every value of `v`.
#[pyfunction]
fn dataset_marginal_cdf<'py>(
    py: Python<'py>,
    dataset: &str,
    name: &str,
    v: PyReadonlyArray1<'py, f64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let law = law(dataset)?;
    let cdfs = law.marginal_cdfs();
    let known: Vec<&str> = cdfs.iter().map(|m| m.name.as_str()).collect();
    let m = cdfs.iter().find(|m| m.name == name).ok_or_else(|| {
        bad(format!(
            "marginal must be one of {known:?} for dataset.kind = {} (got {name:?})",
            law.kind()
        ))
    })?;
    let v = v.as_array();
    Ok(v.mapv(|x| (m.cdf)(x)).into_pyarray(py))
}

fn oracle(dataset: &str, sde_json: &str, t: f64) -> PyResult<Oracle> {
    let o = Oracle::new(&law(dataset)?, sde(sde_json)?).map_err(bad)?;
    o.check_time(t).map_err(bad)?;
    Ok(o)
}

/// `∇ log p_t` of every row under the SDE.
#[pyfunction]
fn oracle_score<'py>(
    py: Python<'py>,
    dataset: &str,
    sde: &str,
    x: PyReadonlyArray2<'py, f64>,
    t: f64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let mut o = oracle(dataset, sde, t)?;
    let (xs, d) = rows(&x)?;
    check_dim(&law(dataset)?, d)?;
    let mut out = vec![0.0; xs.len()];
    py.detach(|| o.score_f64(xs, t, &mut out));
    Ok(matrix(py, out, d))
}

/// `log p_t` of every row under the SDE.
#[pyfunction]
fn oracle_log_density<'py>(
    py: Python<'py>,
    dataset: &str,
    sde: &str,
    x: PyReadonlyArray2<'py, f64>,
    t: f64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let o = oracle(dataset, sde, t)?;
    let (xs, d) = rows(&x)?;
    check_dim(&law(dataset)?, d)?;
    let mut out = vec![0.0; x.shape()[0]];
    py.detach(|| o.log_density(xs, t, &mut out));
    Ok(Array1::from_vec(out).into_pyarray(py))
}

/// The report's statistics as JSON text.
#[pyfunction]
#[pyo3(name = "verify")]
fn verify_samples(
    py: Python<'_>,
    samples: PyReadonlyArray2<'_, f64>,
    dataset: &str,
    options: &str,
) -> PyResult<String> {
    let law = law(dataset)?;
    let opts: VerifyOptions = parse("verify options", options)?;
    let (xs, d) = rows(&samples)?;
    let v = py.detach(|| verify(xs, d, &law, &opts)).map_err(bad)?;
    Ok(v.to_string())
}

/// A grid sampler (`sampler` = a `[sampling]` table) or the discrete DDPM chain
/// (`sampler = {"ddpm_chain": {...}}`, whose SDE is its schedule's VP limit).
fn plan(
    sde: &str,
    sampler: &str,
    n: usize,
    dim: usize,
    seed: u64,
) -> PyResult<Box<dyn Plan + Send + Sync>> {
    let table: serde_json::Value = parse("sampler", sampler)?;
    if let Some(chain) = table.get("ddpm_chain") {
        if table.as_object().map_or(0, |o| o.len()) != 1 {
            return Err(bad("sampler: {\"ddpm_chain\": ...} takes no other keys"));
        }
        let chain: DdpmChainConfig = serde_json::from_value(chain.clone())
            .map_err(|e| bad(format!("sampler.ddpm_chain: {e}")))?;
        return Ok(Box::new(DdpmPlan::new(chain, n, dim, seed).map_err(bad)?));
    }
    let sde: SdeConfig = parse("sde", sde)?;
    let sampler: SamplerConfig = parse("sampler", sampler)?;
    Ok(Box::new(
        SamplingPlan::new(&sde, &sampler, n, dim, seed).map_err(bad)?,
    ))
}

type Sampled<'py> = (Bound<'py, PyArray2<f32>>, usize);

fn sampled(py: Python<'_>, out: SampleOutput) -> Sampled<'_> {
    let dim = out.dim;
    (matrix(py, out.samples, dim), out.nfe)
}

/// Samples with the exact oracle score (Rust path).
#[pyfunction]
fn sample_oracle<'py>(
    py: Python<'py>,
    dataset: &str,
    sde: &str,
    sampler: &str,
    n: usize,
    seed: u64,
) -> PyResult<Sampled<'py>> {
    let law = law(dataset)?;
    let plan = plan(sde, sampler, n, law.dim(), seed)?;
    let mut o = Oracle::new(&law, plan.sde()).map_err(bad)?;
    let out = py.detach(|| plan.run(&mut o)).map_err(bad)?;
    Ok(sampled(py, out))
}

/// One batched evaluation of a Python score callable: `x` (copied into a fresh float32
/// `(n, d)` array) and `t` in, a float32 `(n, d)` array out (other dtypes / layouts converted
/// by `numpy.ascontiguousarray`).
fn call_score(
    py: Python<'_>,
    score: &Py<PyAny>,
    x: &[f32],
    t: f64,
    out: &mut [f32],
    dim: usize,
) -> PyResult<()> {
    let n = x.len() / dim;
    let arr = PyArray1::from_slice(py, x).reshape([n, dim])?;
    let res = score.bind(py).call1((arr, t))?;
    let copy_from = |a: &PyReadonlyArray2<'_, f32>, out: &mut [f32]| -> PyResult<bool> {
        if a.shape() != [n, dim] {
            return Err(bad(format!(
                "score(x, t) must return an array of shape {:?} like x (got {:?})",
                (n, dim),
                a.shape()
            )));
        }
        match a.as_slice().ok().filter(|_| a.is_c_contiguous()) {
            Some(s) => {
                out.copy_from_slice(s);
                Ok(true)
            }
            None => Ok(false),
        }
    };
    if let Ok(a) = res.extract::<PyReadonlyArray2<'_, f32>>() {
        if copy_from(&a, out)? {
            return Ok(());
        }
    }
    let np = py.import("numpy")?;
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("dtype", np.getattr("float32")?)?;
    let conv = np
        .getattr("ascontiguousarray")?
        .call((res,), Some(&kwargs))?;
    let a = conv.extract::<PyReadonlyArray2<'_, f32>>().map_err(|_| {
        bad(format!(
            "score(x, t) must return a 2-D array of shape {:?}",
            (n, dim)
        ))
    })?;
    copy_from(&a, out).map(|_| ())
}

/// Samples with a Python callable `score(x, t)` (one call per batched evaluation); also
/// returns the number of calls and the seconds spent inside the callable.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn sample_callable<'py>(
    py: Python<'py>,
    score: Py<PyAny>,
    dim: usize,
    sde: &str,
    sampler: &str,
    n: usize,
    seed: u64,
) -> PyResult<(Bound<'py, PyArray2<f32>>, usize, usize, f64)> {
    let plan = plan(sde, sampler, n, dim, seed)?;
    let f = |x: &[f32], t: f64, out: &mut [f32]| {
        Python::attach(|py| call_score(py, &score, x, t, out, dim))
    };
    match py.detach(|| run_with_callback(&*plan, f)) {
        Ok((out, stats)) => {
            let (arr, nfe) = sampled(py, out);
            Ok((arr, nfe, stats.calls, stats.seconds))
        }
        Err(CallbackFailure::Sampler(e)) => Err(bad(e)),
        Err(CallbackFailure::Callback(e)) => Err(e),
    }
}

/// A score network trained by the Rust side (`model.safetensors` + `model.json`), with the
/// forward SDE it was trained for.
#[pyclass(module = "smoluchowski._native", frozen)]
struct TrainedModel {
    net: TrainedNet,
    path: PathBuf,
    sde_json: String,
}

#[pymethods]
impl TrainedModel {
    /// Loads `path` (`model.safetensors`, config from the `model.json` beside it).
    #[staticmethod]
    fn load(path: &str, sde_json: &str) -> PyResult<Self> {
        let sde = sde(sde_json)?;
        let net = TrainedNet::load(Path::new(path), sde).map_err(|e| bad(format!("model: {e}")))?;
        Ok(Self {
            net,
            path: PathBuf::from(path),
            sde_json: sde_json.to_string(),
        })
    }

    /// Dimension `d` of a point.
    #[getter]
    fn dim(&self) -> usize {
        self.net.net().config().dim
    }

    /// The forward SDE the model was loaded with, as JSON text.
    #[getter]
    fn sde_json(&self) -> String {
        self.sde_json.clone()
    }

    /// The network's config (`model.json`) as JSON text.
    #[getter]
    fn config_json(&self) -> String {
        serde_json::to_string(self.net.net().config()).expect("plain config")
    }

    /// `s_θ(x, t)` of every row (float32 `(n, d)`), GIL released.
    fn score<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
        t: f64,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let (xs, d) = rows(&x)?;
        if d != self.dim() {
            return Err(bad(format!(
                "x.shape[1] must be = {} (the model's dim) (got {d})",
                self.dim()
            )));
        }
        let mut out = vec![0.0f32; xs.len()];
        py.detach(|| self.net.score_into(xs, t, &mut out));
        Ok(matrix(py, out, d))
    }

    /// Samples with this network (Rust path).
    fn sample<'py>(
        &self,
        py: Python<'py>,
        sde: &str,
        sampler: &str,
        n: usize,
        seed: u64,
    ) -> PyResult<Sampled<'py>> {
        let plan = plan(sde, sampler, n, self.dim(), seed)?;
        let mut net = self.net.clone();
        let out = py.detach(|| plan.run(&mut net)).map_err(bad)?;
        Ok(sampled(py, out))
    }

    fn __repr__(&self) -> String {
        format!(
            "TrainedModel({:?}, dim={}, params={})",
            self.path.display().to_string(),
            self.dim(),
            self.net.net().config().num_params()
        )
    }
}

fn experiment_result(
    r: Result<ExperimentRun, ExperimentError>,
) -> PyResult<(String, bool, String)> {
    match r {
        Ok(run) => Ok((
            run.metrics_json,
            run.golden_passed,
            run.out.display().to_string(),
        )),
        Err(e) if e.bad_input => Err(PyValueError::new_err(e.message)),
        Err(e) => Err(PyRuntimeError::new_err(e.message)),
    }
}

/// `cargo xtask run`: (metrics.json text, golden passed, output directory).
#[pyfunction]
#[pyo3(signature = (manifest, out=None, resume=false))]
fn run_manifest(
    py: Python<'_>,
    manifest: &str,
    out: Option<String>,
    resume: bool,
) -> PyResult<(String, bool, String)> {
    let r = py
        .detach(|| experiments::run_manifest(Path::new(manifest), out.map(PathBuf::from), resume));
    experiment_result(r)
}

/// `cargo xtask reproduce`: (metrics.json text, golden passed, output directory).
#[pyfunction]
#[pyo3(signature = (name, out=None, resume=false))]
fn reproduce(
    py: Python<'_>,
    name: &str,
    out: Option<String>,
    resume: bool,
) -> PyResult<(String, bool, String)> {
    let r = py.detach(|| experiments::reproduce(name, out.map(PathBuf::from), resume));
    experiment_result(r)
}

/// The workspace this package was built from (experiments live in its `experiments/`).
#[pyfunction]
fn workspace_root() -> String {
    xtask::harness::workspace_root().display().to_string()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(dataset_sample, m)?)?;
    m.add_function(wrap_pyfunction!(dataset_log_density, m)?)?;
    m.add_function(wrap_pyfunction!(dataset_score, m)?)?;
    m.add_function(wrap_pyfunction!(dataset_marginals, m)?)?;
    m.add_function(wrap_pyfunction!(dataset_marginal_cdf, m)?)?;
    m.add_function(wrap_pyfunction!(oracle_score, m)?)?;
    m.add_function(wrap_pyfunction!(oracle_log_density, m)?)?;
    m.add_function(wrap_pyfunction!(verify_samples, m)?)?;
    m.add_function(wrap_pyfunction!(sample_oracle, m)?)?;
    m.add_function(wrap_pyfunction!(sample_callable, m)?)?;
    m.add_function(wrap_pyfunction!(run_manifest, m)?)?;
    m.add_function(wrap_pyfunction!(reproduce, m)?)?;
    m.add_function(wrap_pyfunction!(workspace_root, m)?)?;
    m.add_class::<TrainedModel>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
