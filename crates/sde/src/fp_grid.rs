//! The serde config of a [`FokkerPlanck1d`] grid and its time step, with validation and the
//! memory it needs.

use serde::{Deserialize, Serialize};
use smoluchowski_core::validate::Checker;
use smoluchowski_core::MemoryEstimate;

use crate::{FokkerPlanck1d, SdeError};

/// `cells` finite-volume cells on `[lo, hi]` and the Crank–Nicolson step `fp_dt`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FpGridConfig {
    /// Left end.
    pub lo: f64,
    /// Right end (`> lo`).
    pub hi: f64,
    /// Number of cells, `≥ 3`.
    pub cells: usize,
    /// Crank–Nicolson time step `> 0` (must divide the checkpoint times it steps to).
    pub fp_dt: f64,
}

impl FpGridConfig {
    /// Records every invalid field under `path`; `densities` is the number of densities kept
    /// on the grid (see [`FpGridConfig::memory_estimates`]).
    pub fn check(&self, c: &mut Checker, path: &str, densities: usize) {
        c.finite(&format!("{path}.lo"), self.lo);
        c.finite(&format!("{path}.hi"), self.hi);
        if self.lo.is_finite() && self.hi.is_finite() {
            let want = format!("> {path}.lo = {}", self.lo);
            c.require(self.hi > self.lo, &format!("{path}.hi"), &want, self.hi);
        }
        c.count(&format!("{path}.cells"), self.cells, 3, usize::MAX);
        c.positive(&format!("{path}.fp_dt"), self.fp_dt);
        c.memory(path, self.memory_estimates(densities));
    }

    /// `cells`: `densities` kept densities plus the solver's work arrays (about 8 vectors),
    /// `8 · (densities + 8)` bytes per cell.
    pub fn memory_estimates(&self, densities: usize) -> Vec<MemoryEstimate> {
        let per_cell = 8 * (densities as u128 + 8);
        vec![MemoryEstimate::linear("cells", self.cells, per_cell, 0)]
    }

    /// The solver on this grid.
    pub fn build(&self) -> Result<FokkerPlanck1d, SdeError> {
        FokkerPlanck1d::new(self.lo, self.hi, self.cells)
    }
}

impl FokkerPlanck1d {
    /// Edges of the coarse bins of `per_bin` cells each: `lo + b · per_bin · h`,
    /// `b = 0 ..= cells / per_bin` (histograms comparable with [`FokkerPlanck1d::coarse_masses`]).
    pub fn coarse_edges(&self, per_bin: usize) -> Vec<f64> {
        let bins = self.cells() / per_bin;
        (0..=bins)
            .map(|b| self.lo() + (b * per_bin) as f64 * self.cell_width())
            .collect()
    }

    /// The mass of the density `p` (at the centres) in each coarse bin: `h Σ_{i ∈ b} p_i`.
    pub fn coarse_masses(&self, p: &[f64], per_bin: usize) -> Vec<f64> {
        let h = self.cell_width();
        p.chunks_exact(per_bin)
            .map(|c| h * c.iter().sum::<f64>())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_config_builds_and_names_bad_fields() {
        let g = FpGridConfig {
            lo: -1.0,
            hi: 1.0,
            cells: 10,
            fp_dt: 1e-3,
        };
        assert_eq!(g.build().unwrap().cells(), 10);
        assert_eq!(g.memory_estimates(2)[0].bytes, 800);
        let fp = g.build().unwrap();
        assert_eq!(fp.coarse_edges(5), vec![-1.0, 0.0, 1.0]);
        let m = fp.coarse_masses(&[0.5; 10], 5);
        assert!(m.iter().all(|v| (v - 0.5).abs() < 1e-12), "{m:?}");
        let mut c = Checker::new();
        FpGridConfig {
            lo: 1.0,
            hi: 0.0,
            cells: usize::MAX / 2,
            fp_dt: 0.0,
        }
        .check(&mut c, "grid", 2);
        let msg = c.finish().unwrap_err().to_string();
        for want in [
            "grid.hi must be > grid.lo = 1",
            "grid.fp_dt must be > 0",
            "grid.cells must be small enough",
        ] {
            assert!(msg.contains(want), "{msg}");
        }
    }
}
