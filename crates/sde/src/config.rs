//! Forward SDEs as config tables: [`SdeConfig`] (`kind = "vp" | "sub_vp" | "ou"` with that
//! kind's parameters), validated with field paths and built into an [`Sde`].

use serde::{Deserialize, Serialize};
use smoluchowski_core::validate::{fmt_f64, Checker};
use smoluchowski_core::ParamError;

use crate::{ForwardSde, OuSde, Sde, SubVpSde, VpSde};

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

/// A forward SDE as a config table (e.g. a manifest's `[sde]`): `kind = "vp"` / `"sub_vp"` with `β(t) = β_min + (β_max − β_min) t/T`
/// (`beta_min`, `beta_max`), or `kind = "ou"` with `a` and `diffusion` (`D`); `t_end = T`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SdeConfig {
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

impl SdeConfig {
    /// The same table with another linear-β kind (VP ↔ sub-VP with the same β).
    pub fn with_kind(&self, kind: SdeKind) -> SdeConfig {
        SdeConfig {
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

    /// The SDE. Errors name the parameter (paths relative to this table; prefix them with
    /// [`ParamError::under`]); [`SdeConfig::check`] reports the same problems all at once.
    pub fn build(&self) -> Result<Sde, ParamError> {
        let kind = format!("{:?}", self.kind).to_lowercase();
        let get = |v: Option<f64>, f: &str| {
            v.ok_or_else(|| ParamError::new(f, "nothing", format!("given for kind = {kind}")))
        };
        Ok(match self.kind {
            SdeKind::Vp => Sde::Vp(VpSde::new(
                get(self.beta_min, "beta_min")?,
                get(self.beta_max, "beta_max")?,
                self.t_end,
            )?),
            SdeKind::SubVp => Sde::SubVp(SubVpSde::new(
                get(self.beta_min, "beta_min")?,
                get(self.beta_max, "beta_max")?,
                self.t_end,
            )?),
            SdeKind::Ou => Sde::Ou(OuSde::new(
                get(self.a, "a")?,
                get(self.diffusion, "diffusion")?,
                self.t_end,
            )?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> SdeConfig {
        toml::from_str(text).unwrap()
    }

    fn errors(t: &SdeConfig) -> String {
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
        assert!(toml::from_str::<SdeConfig>("kind = \"ve\"\nt_end = 1.0").is_err());
    }
}
