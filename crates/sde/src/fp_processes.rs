//! Serde configs of the processes and particles of a Fokker–Planck study: free diffusion,
//! Ornstein–Uhlenbeck and VP, each with its checkpoint times, and the Euler–Maruyama particles
//! histogrammed on the solver's grid; with validation (field paths, memory) and the SDEs.

use serde::{Deserialize, Serialize};
use smoluchowski_core::validate::Checker;
use smoluchowski_core::MemoryEstimate;

use crate::{check_times, ensemble_memory, OuSde, SdeError, VpSde};

/// Most checkpoint times of one process.
pub const MAX_CHECKPOINTS: usize = 8;

/// `dx = √(2D) dW` observed at `times`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FreeTimes {
    /// `D > 0`.
    pub diffusion: f64,
    /// Checkpoint times, increasing, `> 0`.
    pub times: Vec<f64>,
}

/// `dx = −a x dt + √(2D) dW` observed at `times`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OuTimes {
    /// `a > 0`.
    pub a: f64,
    /// `D > 0`.
    pub diffusion: f64,
    /// Checkpoint times, increasing, `> 0`.
    pub times: Vec<f64>,
}

/// `dx = −½β(t) x dt + √β(t) dW`, `β` linear from `beta_min` to `beta_max` on `[0, t_end]`,
/// observed at `times`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VpTimes {
    /// `β_min > 0`.
    pub beta_min: f64,
    /// `β_max ≥ β_min`.
    pub beta_max: f64,
    /// `T > 0`.
    pub t_end: f64,
    /// Checkpoint times, increasing, in `(0, T]`.
    pub times: Vec<f64>,
}

/// Euler–Maruyama particles and their histogram on the solver's `[lo, hi]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FpParticles {
    /// Number of particles per process.
    pub n: usize,
    /// Euler–Maruyama step; must divide every checkpoint time.
    pub dt: f64,
    /// Histogram bins on `[lo, hi]`, `2 ..= 10 000`; must divide the grid's cells.
    pub bins: usize,
}

/// `dt` (at `dt_path`) is `≤ 0.1 / rate` (named `rate_name`), when both are valid.
fn check_rate(c: &mut Checker, (dt_path, dt): (&str, f64), rate_name: &str, rate: f64) {
    if rate.is_finite() && rate > 0.0 && dt.is_finite() && dt > 0.0 {
        let want = format!("<= 0.1 / {rate_name} = {}", 0.1 / rate);
        c.require(rate * dt <= 0.1, dt_path, &want, dt);
    }
}

impl FreeTimes {
    /// Records every invalid field under `path`; every step of `dts` must divide every time.
    pub fn check(&self, c: &mut Checker, path: &str, dts: &[(&str, f64)]) {
        c.positive(&format!("{path}.diffusion"), self.diffusion);
        let times = format!("{path}.times");
        check_times(c, &times, &self.times, MAX_CHECKPOINTS, None, dts);
    }

    /// The SDE, ending at the last time.
    pub fn sde(&self) -> Result<OuSde, SdeError> {
        OuSde::free(self.diffusion, *self.times.last().unwrap_or(&1.0))
    }
}

impl OuTimes {
    /// As [`FreeTimes::check`], and the particle step `em_dt` (path, value) `≤ 0.1 / a`.
    pub fn check(&self, c: &mut Checker, path: &str, dts: &[(&str, f64)], em_dt: (&str, f64)) {
        c.positive(&format!("{path}.a"), self.a);
        c.positive(&format!("{path}.diffusion"), self.diffusion);
        let times = format!("{path}.times");
        check_times(c, &times, &self.times, MAX_CHECKPOINTS, None, dts);
        check_rate(c, em_dt, &format!("{path}.a"), self.a);
    }

    /// The SDE, ending at the last time.
    pub fn sde(&self) -> Result<OuSde, SdeError> {
        OuSde::new(self.a, self.diffusion, *self.times.last().unwrap_or(&1.0))
    }
}

impl VpTimes {
    /// As [`FreeTimes::check`] with times `≤ t_end`, `β_max ≥ β_min`, and the particle step
    /// `em_dt` (path, value) `≤ 0.2 / β_max` (the drift rate is `½β`).
    pub fn check(&self, c: &mut Checker, path: &str, dts: &[(&str, f64)], em_dt: (&str, f64)) {
        let (lo, hi) = (self.beta_min, self.beta_max);
        c.positive(&format!("{path}.beta_min"), lo);
        c.positive(&format!("{path}.beta_max"), hi);
        c.positive(&format!("{path}.t_end"), self.t_end);
        let (times, t_end) = (format!("{path}.times"), format!("{path}.t_end"));
        let t_max = Some((t_end.as_str(), self.t_end));
        check_times(c, &times, &self.times, MAX_CHECKPOINTS, t_max, dts);
        if lo.is_finite() && hi.is_finite() {
            let want = format!(">= {path}.beta_min = {lo}");
            c.require(hi >= lo, &format!("{path}.beta_max"), &want, hi);
            check_rate(c, em_dt, &format!("½ {path}.beta_max"), 0.5 * hi);
        }
    }

    /// The SDE.
    pub fn sde(&self) -> Result<VpSde, SdeError> {
        VpSde::new(self.beta_min, self.beta_max, self.t_end)
    }
}

impl FpParticles {
    /// Records every invalid field under `path`: `n` against memory (`checkpoints` snapshots,
    /// see [`ensemble_memory`]), `dt > 0`, `bins` a divisor of the grid's `cells`.
    pub fn check(&self, c: &mut Checker, path: &str, cells: usize, checkpoints: usize) {
        c.count(&format!("{path}.n"), self.n, 1, usize::MAX);
        c.positive(&format!("{path}.dt"), self.dt);
        let bins = format!("{path}.bins");
        c.count(&bins, self.bins, 2, 10_000);
        if self.bins >= 1 {
            let want = format!("a divisor of the grid's cells = {cells}");
            c.require(cells.is_multiple_of(self.bins), &bins, &want, self.bins);
        }
        let per_bin = 24 * checkpoints as u128;
        let hist = MemoryEstimate::linear("bins", self.bins, per_bin, 0);
        c.memory(path, [ensemble_memory("n", self.n, checkpoints), hist]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_configs_check_and_build() {
        let dts = [("dt", 1e-3)];
        let mut c = Checker::new();
        FreeTimes {
            diffusion: 0.5,
            times: vec![0.1, 0.05],
        }
        .check(&mut c, "free", &dts);
        let ou = OuTimes {
            a: 200.0,
            diffusion: 0.5,
            times: vec![0.1],
        };
        ou.check(&mut c, "ou", &dts, ("particles.dt", 1e-3));
        let vp = VpTimes {
            beta_min: 0.1,
            beta_max: 20.0,
            t_end: 1.0,
            times: vec![2.0],
        };
        vp.check(&mut c, "vp", &dts, ("particles.dt", 1e-3));
        let p = FpParticles {
            n: 10,
            dt: 1e-3,
            bins: 7,
        };
        p.check(&mut c, "particles", 4000, 3);
        let msg = c.finish().unwrap_err().to_string();
        for want in [
            "free.times[1] must be > free.times[0] = 0.1",
            "particles.dt must be <= 0.1 / ou.a = 0.0005",
            "vp.times[0] must be <= vp.t_end = 1",
            "particles.bins must be a divisor of the grid's cells = 4000",
        ] {
            assert!(msg.contains(want), "{msg}");
        }
        assert!(ou.sde().is_ok() && vp.sde().is_ok());
    }
}
