//! Exact scores `∇ log p_t` and log-densities `log p_t` of the datasets diffused by a forward
//! SDE, for any `t`: the library's [`Ring2dOracle`] (quadrature) and [`MixtureOracle`] (closed
//! form) behind one type that is also a sampler [`Score`].

use smoluchowski::sde::{ForwardSde, MixtureOracle, Ring2dOracle, Score, Sde};

use crate::law::{Law, Unsupported};

/// The exact diffused law `p_t = p₀ ∗ N(m(t) ·, σ(t)² I)` of a [`Law`] under an [`Sde`].
///
/// - ring2d: `∇ log p_t(x) = −E[x − m y | x_t = x] / σ²` (Tweedie) by quadrature over the
///   exact ring density (error ≤ 3·10⁻¹⁰ relative, see [`Ring2dOracle`]);
/// - Gaussian mixtures: `p_t = Σ_k w_k N(m μ_k, m² s_k² + σ²)` and
///   `∇ log p_t(x) = Σ_k r_k(x) (m μ_k − x)/v_k` in closed form.
#[derive(Debug, Clone)]
pub enum Oracle {
    /// ring2d by quadrature.
    Ring(Box<Ring2dOracle<Sde>>),
    /// Mixtures in closed form.
    Mixture(Box<MixtureOracle<Sde>>),
}

impl Oracle {
    /// The oracle of `law` under `sde`; laws without a closed-form density have none.
    pub fn new(law: &Law, sde: Sde) -> Result<Self, Unsupported> {
        match law {
            Law::Ring(ring) => Ring2dOracle::new(sde, ring.clone())
                .map(|o| Oracle::Ring(Box::new(o)))
                .map_err(|e| Unsupported(format!("dataset.{e}"))),
            Law::Mixture(m) => Ok(Oracle::Mixture(Box::new(MixtureOracle::new(sde, m.clone())))),
            other => Err(Unsupported(format!(
                "dataset.kind = {}: no exact score under an SDE (oracles exist for ring2d and Gaussian mixtures)",
                other.kind()
            ))),
        }
    }

    /// The forward SDE.
    pub fn sde(&self) -> &Sde {
        match self {
            Oracle::Ring(o) => o.sde(),
            Oracle::Mixture(o) => o.sde(),
        }
    }

    /// `∇ log p_t` of every row of `x` (`n × d`, f64) into `out` (same shape), parallel over
    /// rows (bit-identical for any thread count).
    pub fn score_f64(&mut self, x: &[f64], t: f64, out: &mut [f64]) {
        match self {
            Oracle::Ring(o) => o.score_f64(x, t, out),
            Oracle::Mixture(o) => o.score_f64(x, t, out),
        }
    }

    /// `log p_t` of every row of `x` into `out` (length `n`).
    pub fn log_density(&self, x: &[f64], t: f64, out: &mut [f64]) {
        match self {
            Oracle::Ring(o) => o.log_density_batch(x, t, out),
            Oracle::Mixture(o) => {
                let marginal = o.marginal(t);
                let d = marginal.means().len() / marginal.n_components();
                for (row, v) in x.chunks_exact(d).zip(out.iter_mut()) {
                    *v = marginal.log_density(row);
                }
            }
        }
    }

    /// `t ∈ [0, T]` (the kernel is defined there).
    pub fn check_time(&self, t: f64) -> Result<(), String> {
        let t_end = self.sde().t_end();
        if t.is_finite() && (0.0..=t_end).contains(&t) {
            Ok(())
        } else {
            Err(format!("t must be in [0, sde.t_end = {t_end}] (got {t})"))
        }
    }
}

impl Score for Oracle {
    fn dim(&self) -> usize {
        match self {
            Oracle::Ring(o) => o.dim(),
            Oracle::Mixture(o) => o.dim(),
        }
    }

    /// The library oracles' own f32 path (computed in f64 from the f32 state).
    fn score(&mut self, x: &[f32], t: f64, out: &mut [f32]) {
        match self {
            Oracle::Ring(o) => o.score(x, t, out),
            Oracle::Mixture(o) => o.score(x, t, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::law::DatasetSpec;
    use smoluchowski::sde::{SdeConfig, SdeKind};

    fn sde(kind: SdeKind) -> Sde {
        let (beta, ou) = (Some(0.1), Some(1.0));
        SdeConfig {
            kind,
            beta_min: if kind == SdeKind::Ou { None } else { beta },
            beta_max: if kind == SdeKind::Ou {
                None
            } else {
                Some(20.0)
            },
            a: if kind == SdeKind::Ou { ou } else { None },
            diffusion: if kind == SdeKind::Ou { ou } else { None },
            t_end: 1.0,
        }
        .build()
        .unwrap()
    }

    /// For every SDE kind and both oracle families, the score equals central differences of
    /// `log p_t` (the two are computed by different code: quadrature weights vs Tweedie means,
    /// responsibilities vs log-sum-exp).
    #[test]
    fn oracle_scores_are_gradients_of_oracle_log_densities() {
        for kind in [SdeKind::Vp, SdeKind::SubVp, SdeKind::Ou] {
            for data in [r#"{"kind": "ring2d"}"#, r#"{"kind": "eight_gaussians"}"#] {
                let law = serde_json::from_str::<DatasetSpec>(data)
                    .unwrap()
                    .build()
                    .unwrap();
                let mut o = Oracle::new(&law, sde(kind)).unwrap();
                let x = law.sample(16, 5, "data");
                for t in [0.01, 0.1, 0.5] {
                    let mut s = vec![0.0; x.len()];
                    o.score_f64(&x, t, &mut s);
                    let h = 1e-5;
                    for j in 0..x.len() {
                        let (mut a, mut b) = (x.clone(), x.clone());
                        a[j] += h;
                        b[j] -= h;
                        let (mut la, mut lb) = (vec![0.0; 16], vec![0.0; 16]);
                        o.log_density(&a, t, &mut la);
                        o.log_density(&b, t, &mut lb);
                        let fd = (la[j / 2] - lb[j / 2]) / (2.0 * h);
                        let tol = 1e-4 * (1.0 + s[j].abs());
                        assert!(
                            (fd - s[j]).abs() < tol,
                            "{kind:?} {data} t={t}: {fd} vs {}",
                            s[j]
                        );
                    }
                }
            }
        }
    }
}
