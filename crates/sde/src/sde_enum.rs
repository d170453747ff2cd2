//! A closed sum of the SDEs in this crate, for code that picks one at run time.

use crate::{ForwardSde, OuSde, SubVpSde, VpSde};

/// One of the forward SDEs of this crate (chosen at run time, e.g. from a manifest).
/// Implements [`ForwardSde`] by delegation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sde {
    /// [`OuSde`].
    Ou(OuSde),
    /// [`VpSde`].
    Vp(VpSde),
    /// [`SubVpSde`].
    SubVp(SubVpSde),
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Sde::Ou($s) => $e,
            Sde::Vp($s) => $e,
            Sde::SubVp($s) => $e,
        }
    };
}

impl ForwardSde for Sde {
    fn drift_coef(&self, t: f64) -> f64 {
        delegate!(self, s => s.drift_coef(t))
    }
    fn diffusion(&self, t: f64) -> f64 {
        delegate!(self, s => s.diffusion(t))
    }
    fn mean_coef(&self, t: f64) -> f64 {
        delegate!(self, s => s.mean_coef(t))
    }
    fn marginal_std(&self, t: f64) -> f64 {
        delegate!(self, s => s.marginal_std(t))
    }
    fn t_end(&self) -> f64 {
        delegate!(self, s => s.t_end())
    }
    fn prior_std(&self) -> f64 {
        delegate!(self, s => s.prior_std())
    }
}

impl From<OuSde> for Sde {
    fn from(s: OuSde) -> Self {
        Sde::Ou(s)
    }
}
impl From<VpSde> for Sde {
    fn from(s: VpSde) -> Self {
        Sde::Vp(s)
    }
}
impl From<SubVpSde> for Sde {
    fn from(s: SubVpSde) -> Self {
        Sde::SubVp(s)
    }
}
