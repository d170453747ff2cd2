//! The manifest tables that several experiment kinds share: `[dataset]` (ring2d), `[sde]` (OU,
//! VP, sub-VP), `[training]` (a `TrainConfig` whose seed comes from the master seed), and the
//! validation of a `[network]` + `[training]` pair.

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use smoluchowski::losses::{train_memory_estimates, TrainConfig};
use smoluchowski::nets::ScoreNetConfig;
use smoluchowski::sde::{ForwardSde, OuSde, Sde, SubVpSde, VpSde};

use crate::validate::{fmt_f64, Checker};

/// `[dataset]`: ring2d with radius `Gamma(scale, rate scale)`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetTable {
    /// The Gamma shape = rate `k` (the notes: 200).
    pub scale: f64,
}

/// Which forward SDE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SdeKind {
    /// Variance preserving: `dx = −½β x dt + √β dW`.
    Vp,
    /// Sub-VP: `dx = −½β x dt + √(β(1 − e^{−2I})) dW`.
    SubVp,
    /// Ornstein–Uhlenbeck (Smoluchowski): `dx = −a x dt + √(2D) dW`.
    Ou,
}

/// `[sde]`: `kind = "vp"` / `"sub_vp"` with `β(t) = β_min + (β_max − β_min) t/T`
/// (`beta_min`, `beta_max`), or `kind = "ou"` with `a` and `diffusion` (`D`); `t_end = T`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SdeTable {
    /// `vp`, `sub_vp` or `ou`.
    pub kind: SdeKind,
    /// `β_min ≥ 0` (VP, sub-VP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta_min: Option<f64>,
    /// `β_max ≥ β_min`, `> 0` (VP, sub-VP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta_max: Option<f64>,
    /// Drift rate `a > 0` (OU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a: Option<f64>,
    /// Diffusion constant `D > 0` (OU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diffusion: Option<f64>,
    /// End time `T > 0`.
    pub t_end: f64,
}

impl SdeTable {
    /// The same table with another linear-β kind (VP ↔ sub-VP with the same β).
    pub fn with_kind(&self, kind: SdeKind) -> SdeTable {
        SdeTable {
            kind,
            ..self.clone()
        }
    }

    /// Checks the parameters of its kind under `table` (e.g. `sde.beta_max`); with
    /// `prior_reached`, also that the kernel mean `m(T) ≤ 0.05` (samplers start from the prior).
    pub fn check(&self, c: &mut Checker, table: &str, prior_reached: bool) {
        let p = |f: &str| format!("{table}.{f}");
        c.positive(&p("t_end"), self.t_end);
        let (lin, ou) = (["beta_min", "beta_max"], ["a", "diffusion"]);
        let given = |f: &str| match f {
            "beta_min" => self.beta_min.is_some(),
            "beta_max" => self.beta_max.is_some(),
            "a" => self.a.is_some(),
            _ => self.diffusion.is_some(),
        };
        let (needed, foreign) = match self.kind {
            SdeKind::Vp | SdeKind::SubVp => (lin, ou),
            SdeKind::Ou => (ou, lin),
        };
        let kind = format!("{:?}", self.kind).to_lowercase();
        for f in needed {
            c.require(
                given(f),
                &p(f),
                &format!("given for kind = {kind}"),
                "nothing",
            );
        }
        for f in foreign {
            c.require(
                !given(f),
                &p(f),
                &format!("absent for kind = {kind}"),
                "a value",
            );
        }
        match self.kind {
            SdeKind::Vp | SdeKind::SubVp => {
                let (lo, hi) = (self.beta_min.unwrap_or(0.0), self.beta_max.unwrap_or(1.0));
                c.non_negative(&p("beta_min"), lo);
                c.positive(&p("beta_max"), hi);
                if lo.is_finite() && hi.is_finite() {
                    c.require(
                        hi >= lo,
                        &p("beta_max"),
                        &format!(">= {} = {}", p("beta_min"), fmt_f64(lo)),
                        fmt_f64(hi),
                    );
                }
            }
            SdeKind::Ou => {
                c.positive(&p("a"), self.a.unwrap_or(1.0));
                c.positive(&p("diffusion"), self.diffusion.unwrap_or(1.0));
            }
        }
        if let (true, Ok(sde)) = (prior_reached, self.build()) {
            let m = sde.mean_coef(sde.t_end());
            let params = match self.kind {
                SdeKind::Ou => "(a, t_end)",
                _ => "(beta_min, beta_max, t_end)",
            };
            c.require(
                m <= 0.05,
                &format!("{table} {params}"),
                "such that the kernel mean m(T) <= 0.05 (the prior must be reached)",
                format!("m(T) = {m:.4}"),
            );
        }
    }

    /// The SDE (errors name the parameter).
    pub fn build(&self) -> Result<Sde> {
        let missing = |f: &str| anyhow!("sde.{f} is required for kind = {:?}", self.kind);
        let beta = || -> Result<(f64, f64)> {
            Ok((
                self.beta_min.ok_or_else(|| missing("beta_min"))?,
                self.beta_max.ok_or_else(|| missing("beta_max"))?,
            ))
        };
        Ok(match self.kind {
            SdeKind::Vp => {
                let (lo, hi) = beta()?;
                Sde::Vp(VpSde::new(lo, hi, self.t_end).map_err(|e| anyhow!("sde: {e}"))?)
            }
            SdeKind::SubVp => {
                let (lo, hi) = beta()?;
                Sde::SubVp(SubVpSde::new(lo, hi, self.t_end).map_err(|e| anyhow!("sde: {e}"))?)
            }
            SdeKind::Ou => {
                let a = self.a.ok_or_else(|| missing("a"))?;
                let d = self.diffusion.ok_or_else(|| missing("diffusion"))?;
                Sde::Ou(OuSde::new(a, d, self.t_end).map_err(|e| anyhow!("sde: {e}"))?)
            }
        })
    }
}

/// `[training]`: a [`TrainConfig`] without its `seed`, which is derived from `experiment.seed`
/// (stream `training`) so the master seed is the one source of truth.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "toml::Table")]
pub struct TrainingTable(pub TrainConfig);

impl TryFrom<toml::Table> for TrainingTable {
    type Error = String;
    fn try_from(mut t: toml::Table) -> Result<Self, String> {
        if t.contains_key("seed") {
            return Err(
                "training.seed is not allowed: the training seed is derived from \
                        experiment.seed (the one source of truth)"
                    .into(),
            );
        }
        t.insert("seed".into(), toml::Value::Integer(0));
        toml::Value::Table(t)
            .try_into::<TrainConfig>()
            .map(TrainingTable)
            .map_err(|e| format!("in [training]: {}", e.message().trim_end()))
    }
}

/// The `[network]` and `[training]` tables of an experiment on `dim`-dimensional data: each
/// config's own validation (paths under `network.` / `training.`), the data dimension, and the
/// memory the training batch needs.
pub fn check_model(c: &mut Checker, network: &ScoreNetConfig, training: &TrainConfig, dim: usize) {
    if let Err(e) = network.validate() {
        c.fail(e.under("network").to_string());
    }
    c.require(
        network.dim == dim,
        "network.dim",
        &format!("{dim} (the data's dimension)"),
        network.dim,
    );
    match training.validate() {
        Err(e) => c.fail(e.under("training").to_string()),
        Ok(()) => c.memory("training", train_memory_estimates(training, network)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> SdeTable {
        toml::from_str(text).unwrap()
    }

    fn errors(t: &SdeTable) -> String {
        let mut c = Checker::new();
        t.check(&mut c, "sde", true);
        c.finish()
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn ou_is_selectable_and_each_kind_names_its_parameters() {
        let ou = table("kind = \"ou\"\na = 1.5\ndiffusion = 0.5\nt_end = 4.0");
        assert_eq!(errors(&ou), "");
        let sde = ou.build().unwrap();
        // OU: m(t) = e^{−at}, prior std σ(T) = √((D/a)(1 − e^{−2aT})).
        assert!((sde.mean_coef(4.0) - (-6.0f64).exp()).abs() < 1e-15);
        let want = (0.5f64 / 1.5 * (1.0 - (-12.0f64).exp())).sqrt();
        assert!((sde.prior_std() - want).abs() < 1e-15);

        let e = errors(&table("kind = \"ou\"\na = 1.5\nt_end = 4.0"));
        assert!(
            e.contains("sde.diffusion must be given for kind = ou"),
            "{e}"
        );
        let e = errors(&table(
            "kind = \"vp\"\nbeta_min = 0.1\nbeta_max = 20.0\na = 1.0\nt_end = 1.0",
        ));
        assert!(e.contains("sde.a must be absent for kind = vp"), "{e}");
        let e = errors(&table(
            "kind = \"ou\"\na = 0.1\ndiffusion = 1.0\nt_end = 1.0",
        ));
        assert!(
            e.contains("sde (a, t_end)") && e.contains("m(T) = 0.9048"),
            "{e}"
        );
        let e = errors(&table(
            "kind = \"sub_vp\"\nbeta_min = 1.0\nbeta_max = 0.5\nt_end = 1.0",
        ));
        assert!(
            e.contains("sde.beta_max must be >= sde.beta_min = 1 (got 0.5)"),
            "{e}"
        );
        assert!(toml::from_str::<SdeTable>("kind = \"ve\"\nt_end = 1.0").is_err());
    }
}
