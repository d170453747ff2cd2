//! `verify(samples, dataset)`: the statistics an experiment report gives, for any samples.
//!
//! ring2d goes through the harness's own path ([`evaluate_planar`] with the same stream names,
//! reported as xtask's `SampleQuality`), so samples and seed of a ring2d run reproduce its
//! `metrics.json` statistics exactly. Other laws get the same tests coordinate-wise.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use smoluchowski::core::streams::derived_seed;
use smoluchowski::core::validate::{Checker, Invalid};
use smoluchowski::metrics::{
    energy_distance, evaluate_planar, ks_critical_asymptotic, ks_one_sample, ks_two_sample,
    sliced_wasserstein, KsResult, ReferenceDraws,
};
use xtask::experiments::ring2d::SampleQuality;

use crate::law::{Feature, Law};

/// Default number of sliced-Wasserstein directions (as in `experiments/ring2d.toml`).
pub const DEFAULT_PROJECTIONS: usize = 256;
/// Default (maximum) rows entering the quadratic-cost energy distance.
pub const DEFAULT_ENERGY_SUBSAMPLE: usize = 5000;
/// Upper bound on the sliced-Wasserstein directions.
pub const MAX_PROJECTIONS: usize = 100_000;

/// How to verify (in Python, keyword arguments of `verify`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyOptions {
    /// Master seed of the reference draws (`reference`, `reference_floor`) and of the
    /// sliced-Wasserstein directions (`derived_seed(seed, "sliced_wasserstein")`): an
    /// experiment's `experiment.seed` reproduces its report.
    #[serde(default)]
    pub seed: u64,
    /// Rows `m` of the fresh data draw (default: as many as the samples).
    #[serde(default)]
    pub reference_samples: Option<usize>,
    /// Directions `K` of the sliced Wasserstein-2 distance.
    #[serde(default = "default_projections")]
    pub sliced_wasserstein_projections: usize,
    /// Rows `s` of each set entering the energy distance (default `min(5000, n, m)`).
    #[serde(default)]
    pub energy_subsample: Option<usize>,
}

fn default_projections() -> usize {
    DEFAULT_PROJECTIONS
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            seed: 0,
            reference_samples: None,
            sliced_wasserstein_projections: DEFAULT_PROJECTIONS,
            energy_subsample: None,
        }
    }
}

/// Resolved sizes of one verification.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    n: usize,
    m: usize,
    s: usize,
}

impl VerifyOptions {
    /// Checks the options and the samples (`n × d` row-major, `d` = the law's dimension, every
    /// value finite, `n ≥ 2`); memory of the reference draws checked before any work.
    fn check(&self, samples: &[f64], d: usize, law: &Law) -> Result<Sizes, Invalid> {
        let mut c = Checker::new();
        c.require(
            d == law.dim(),
            "samples.shape[1]",
            &format!(
                "= {} (the dimension of dataset.kind = {})",
                law.dim(),
                law.kind()
            ),
            d,
        );
        let n = samples.len().checked_div(d).unwrap_or(0);
        c.count("samples.shape[0]", n, 2, usize::MAX);
        if let Some(i) = samples.iter().position(|v| !v.is_finite()) {
            c.fail(format!(
                "samples[{}, {}] must be finite (got {})",
                i / d.max(1),
                i % d.max(1),
                samples[i]
            ));
        }
        let m = self.reference_samples.unwrap_or(n);
        c.count("reference_samples", m, 2, usize::MAX);
        c.count(
            "sliced_wasserstein_projections",
            self.sliced_wasserstein_projections,
            1,
            MAX_PROJECTIONS,
        );
        let s = self
            .energy_subsample
            .unwrap_or(DEFAULT_ENERGY_SUBSAMPLE.min(n).min(m));
        c.count("energy_subsample", s, 1, n.min(m).max(1));
        c.memory(
            "",
            [
                law.draws_memory("reference_samples", m),
                law.draws_memory("samples.shape[0] (the noise-floor draw)", n),
            ],
        );
        c.finish()?;
        Ok(Sizes { n, m, s })
    }
}

fn ks(r: KsResult) -> Value {
    json!({"statistic": r.statistic, "pvalue": r.pvalue})
}

fn value(v: f64) -> Value {
    json!({ "value": v })
}

/// The statistics of `samples` (`n × d`, row-major) against `law`, as `metrics.json` writes
/// them: KS results `{"statistic": D, "pvalue": p}`, numbers `{"value": x}`.
///
/// With `r = |x|`, `θ = atan2(x₁, x₀)`, a fresh draw `ref` of `m` rows (stream `reference`)
/// and an independent floor draw `floor` of `n` rows (stream `reference_floor`):
/// - one-sample KS of each closed-form marginal (`<feature>_ks`: ring2d's `radius_ks`,
///   `angle_ks`; a mixture's `x<j>_ks`), SciPy's `kstest` algorithm and p-value;
/// - two-sample KS of the same features against `ref` (`two_sample_ks_<feature>`);
/// - `SW₂(x, ref)` and its floor `SW₂(floor, ref)` with the same `K` directions, and their
///   ratio; energy distance `E(x[..s], ref[..s])`, its floor `E(floor[..s], ref[..s])` and
///   their ratio (ratio ≈ 1: as close to the law as sampling noise allows);
/// - ring2d also `mean_radius`, `std_radius` (exact 1 and `1/√k`).
///
/// `parameters` holds the sizes, the seeds and the asymptotic KS critical value at
/// `α = 10⁻³`, `√(−ln(α/2)/2)/√n`.
pub fn verify(
    samples: &[f64],
    d: usize,
    law: &Law,
    opts: &VerifyOptions,
) -> Result<Value, Invalid> {
    let sizes = opts.check(samples, d, law)?;
    let Sizes { n, m, s } = sizes;
    let seed = opts.seed;
    let reference = law.sample(m, seed, "reference");
    let floor_draw = law.sample(n, seed, "reference_floor");
    let sw_seed = derived_seed(seed, "sliced_wasserstein");
    let k = opts.sliced_wasserstein_projections;
    let statistics = match law {
        Law::Ring(ring) => {
            let draws = ReferenceDraws {
                reference: &reference,
                floor_draw: &floor_draw,
                sw_projections: k,
                sw_seed,
                energy_subsample: s,
            };
            let e = evaluate_planar(
                samples,
                |r| ring.radial_cdf(r),
                |t| ring.angular_cdf(t),
                Some(draws),
            );
            serde_json::to_value(SampleQuality::from(&e)).expect("plain numbers")
        }
        _ => coordinatewise(samples, d, law, &reference, &floor_draw, sizes, k, sw_seed),
    };
    Ok(json!({
        "statistics": statistics,
        "parameters": {
            "n": n,
            "dim": d,
            "reference_samples": m,
            "energy_subsample": s,
            "sliced_wasserstein_projections": k,
            "seed": seed,
            "sliced_wasserstein_seed": sw_seed,
            "ks_critical_value_alpha_1e-3": ks_critical_asymptotic(1e-3, n),
            "dataset": law.kind(),
        },
    }))
}

/// The statistics of a law without the harness's planar report: every closed-form marginal,
/// two-sample KS of every coordinate, and both distances with floors.
#[allow(clippy::too_many_arguments)]
fn coordinatewise(
    samples: &[f64],
    d: usize,
    law: &Law,
    reference: &[f64],
    floor_draw: &[f64],
    sizes: Sizes,
    k: usize,
    sw_seed: u64,
) -> Value {
    let mut out = Map::new();
    for marginal in law.marginal_cdfs() {
        let x = marginal.feature.of_rows(samples, d);
        out.insert(
            format!("{}_ks", marginal.name),
            ks(ks_one_sample(&x, &marginal.cdf)),
        );
    }
    let mut features: Vec<(String, Feature)> = (0..d)
        .map(|j| (format!("x{j}"), Feature::Coordinate(j)))
        .collect();
    if d == 2 {
        features.push(("radius".into(), Feature::Radius));
        features.push(("angle".into(), Feature::Angle));
    }
    for (name, f) in features {
        let (a, b) = (f.of_rows(samples, d), f.of_rows(reference, d));
        out.insert(format!("two_sample_ks_{name}"), ks(ks_two_sample(&a, &b)));
    }
    let sw = sliced_wasserstein(samples, reference, d, k, sw_seed);
    let sw_floor = sliced_wasserstein(floor_draw, reference, d, k, sw_seed);
    let rows = sizes.s * d;
    let en = energy_distance(&samples[..rows], &reference[..rows], d);
    let en_floor = energy_distance(&floor_draw[..rows], &reference[..rows], d);
    for (key, v) in [
        ("sliced_wasserstein", sw),
        ("sliced_wasserstein_noise_floor", sw_floor),
        ("sliced_wasserstein_ratio", sw / sw_floor),
        ("energy_distance", en),
        ("energy_distance_noise_floor", en_floor),
        ("energy_distance_ratio", en / en_floor),
    ] {
        out.insert(key.into(), value(v));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::law::DatasetSpec;

    fn law(json: &str) -> Law {
        serde_json::from_str::<DatasetSpec>(json)
            .unwrap()
            .build()
            .unwrap()
    }

    /// Exact draws are not rejected at α = 10⁻³ (each test can fail with probability 10⁻³
    /// at most; fixed seeds make them deterministic) and their distance ratios are O(1).
    #[test]
    fn exact_draws_pass_every_test() {
        for (json, seed) in [
            (r#"{"kind": "ring2d"}"#, 11),
            (r#"{"kind": "eight_gaussians"}"#, 12),
            (r#"{"kind": "checkerboard"}"#, 13),
            (
                r#"{"kind": "gaussian", "mean": [1, 2, 3], "std": [1, 0.5, 2]}"#,
                14,
            ),
        ] {
            let l = law(json);
            let d = l.dim();
            let x = l.sample(3000, seed, "model");
            let opts = VerifyOptions {
                energy_subsample: Some(500),
                ..VerifyOptions::default()
            };
            let v = verify(&x, d, &l, &opts).unwrap();
            let stats = v["statistics"].as_object().unwrap();
            for (key, s) in stats {
                if let Some(p) = s.get("pvalue") {
                    assert!(p.as_f64().unwrap() > 1e-3, "{json} {key}: {s}");
                }
            }
            let ratio = stats["sliced_wasserstein_ratio"]["value"].as_f64().unwrap();
            assert!(ratio < 3.0, "{json}: {ratio}");
        }
    }

    /// The ring2d path is the harness's: the same numbers as `evaluate_planar` on the same
    /// draws; and a visibly wrong sample (radius scaled by 1.05) is rejected.
    #[test]
    fn ring_verification_is_the_reports_and_rejects_a_wrong_radius() {
        let l = law(r#"{"kind": "ring2d"}"#);
        let x: Vec<f64> = l
            .sample(4000, 1, "model")
            .iter()
            .map(|v| 1.05 * v)
            .collect();
        let v = verify(&x, 2, &l, &VerifyOptions::default()).unwrap();
        let p = v["statistics"]["radius_ks"]["pvalue"].as_f64().unwrap();
        assert!(p < 1e-10, "{p}");
        let Law::Ring(ring) = &l else { unreachable!() };
        let want = ks_one_sample(&smoluchowski::metrics::radii(&x), |r| ring.radial_cdf(r));
        assert_eq!(
            v["statistics"]["radius_ks"]["statistic"].as_f64(),
            Some(want.statistic)
        );
    }

    #[test]
    fn bad_input_is_named() {
        let l = law(r#"{"kind": "ring2d"}"#);
        let err = |x: &[f64], d, o: &VerifyOptions| verify(x, d, &l, o).unwrap_err().to_string();
        let e = err(&[0.0; 9], 3, &VerifyOptions::default());
        assert!(e.contains("samples.shape[1] must be = 2"), "{e}");
        let e = err(&[1.0, 0.0, f64::NAN, 1.0], 2, &VerifyOptions::default());
        assert!(e.contains("samples[1, 0] must be finite (got NaN)"), "{e}");
        let o = VerifyOptions {
            energy_subsample: Some(10),
            sliced_wasserstein_projections: 0,
            ..VerifyOptions::default()
        };
        let e = err(&[1.0; 8], 2, &o);
        assert!(
            e.contains("energy_subsample") && e.contains("(got 10)"),
            "{e}"
        );
        assert!(e.contains("sliced_wasserstein_projections"), "{e}");
        let o = VerifyOptions {
            reference_samples: Some(usize::MAX / 4),
            ..VerifyOptions::default()
        };
        let e = err(&[1.0; 8], 2, &o);
        assert!(e.contains("reference_samples"), "{e}");
    }
}
