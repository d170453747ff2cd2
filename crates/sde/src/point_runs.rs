//! Serde configs of particle ensembles released from a point `x₀` — free diffusion and
//! Ornstein–Uhlenbeck — checked at two times, with validation (memory included) and the
//! simulation itself ([`crate::simulate_ensemble`] plus the drawn paths of [`ensemble_paths`]).

use serde::{Deserialize, Serialize};
use smoluchowski_core::validate::Checker;
use smoluchowski_core::MemoryEstimate;

use crate::{
    check_divides, ensemble_memory, ensemble_paths, simulate_ensemble, stops_every, OuSde,
    SdeError, Stop, Trajectories,
};

/// Particles per random-stream chunk of [`FreeDiffusionRun::simulate`] / [`OuRun::simulate`].
pub const RELEASE_CHUNK: usize = 8192;
/// Most drawn paths of a release.
pub const MAX_DRAWN: usize = 1000;

/// `dx = √(2D) dW` from `x(0) = x0`, positions checked at `t_check` and `t_end`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FreeDiffusionRun {
    /// Diffusion constant `D > 0`.
    pub diffusion: f64,
    /// Start position `x₀`.
    pub x0: f64,
    /// Number of simulated particles.
    pub n_particles: usize,
    /// Euler–Maruyama step; must divide `t_check` and `t_end`.
    pub dt: f64,
    /// First checkpoint (seed 000: 1).
    pub t_check: f64,
    /// Second checkpoint and end of the drawn paths (seed 000: 2), `> t_check`.
    pub t_end: f64,
    /// Number of drawn paths, `≤ min(1000, n_particles)`.
    pub n_drawn: usize,
    /// Histogram bins, `5 ..= 1000`.
    pub bins: usize,
}

/// `dx = −a x dt + √(2D) dW` from `x(0) = x0`, positions checked at `t_mid` and `t_end`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OuRun {
    /// Relaxation rate `a > 0`.
    pub a: f64,
    /// Diffusion constant `D > 0`.
    pub diffusion: f64,
    /// Start position `x₀`.
    pub x0: f64,
    /// Number of simulated particles.
    pub n_particles: usize,
    /// Euler–Maruyama step, `a · dt ≤ 0.1`; must divide `t_mid` and `t_end`.
    pub dt: f64,
    /// First checkpoint.
    pub t_mid: f64,
    /// Second checkpoint and end of the drawn paths, `> t_mid`.
    pub t_end: f64,
    /// Number of drawn paths, `≤ min(1000, n_particles)`.
    pub n_drawn: usize,
    /// Histogram bins, `5 ..= 1000`.
    pub bins: usize,
}

/// The simulated release: positions at both checkpoints and the drawn paths.
#[derive(Debug, Clone, PartialEq)]
pub struct PointRelease {
    /// Positions at the first checkpoint.
    pub first: Vec<f64>,
    /// Positions at the second checkpoint.
    pub last: Vec<f64>,
    /// The first `n_drawn` particles' paths (frame 0 at `t = 0`, one frame per step).
    pub paths: Trajectories,
    /// The Euler–Maruyama stops `(t, steps from the previous stop)`.
    pub stops: Vec<Stop>,
}

/// The fields both runs share, for their checks.
struct Release<'a> {
    path: &'a str,
    diffusion: f64,
    x0: f64,
    n: usize,
    dt: f64,
    times: [(&'a str, f64); 2],
    n_drawn: usize,
    bins: usize,
}

impl Release<'_> {
    /// Every field under `path`; sizes against memory: `n_particles` ([`ensemble_memory`], two
    /// snapshots), `n_drawn` (`8` bytes per recorded frame), `bins` (`32` bytes each).
    fn check(&self, c: &mut Checker) {
        let (p, dt) = (self.path, self.dt);
        c.positive(&format!("{p}.diffusion"), self.diffusion);
        c.finite(&format!("{p}.x0"), self.x0);
        c.count(&format!("{p}.n_particles"), self.n, 1, usize::MAX);
        c.positive(&format!("{p}.dt"), dt);
        let [(n1, t1), (n2, t2)] = self.times;
        for (name, t) in self.times {
            c.positive(&format!("{p}.{name}"), t);
            check_divides(c, &format!("{p}.dt"), dt, &format!("{p}.{name}"), t);
        }
        if t1.is_finite() && t2.is_finite() && t1 > 0.0 {
            c.require(
                t2 > t1,
                &format!("{p}.{n2}"),
                &format!("> {p}.{n1} = {t1}"),
                t2,
            );
        }
        if self.n >= 1 {
            c.count(
                &format!("{p}.n_drawn"),
                self.n_drawn,
                0,
                MAX_DRAWN.min(self.n),
            );
        }
        c.count(&format!("{p}.bins"), self.bins, 5, 1000);
        let frames = if dt > 0.0 {
            (t2 / dt).min(1e12) as u128 + 1
        } else {
            1
        };
        let drawn = MemoryEstimate::linear("n_drawn", self.n_drawn, 8 * frames, 0);
        let bins = MemoryEstimate::linear("bins", self.bins, 32, 0);
        c.memory(p, [ensemble_memory("n_particles", self.n, 2), drawn, bins]);
    }

    /// The release simulated with `sde` on `streams::named(seed, name, chunk)`.
    fn simulate(&self, sde: &OuSde, seed: u64, name: &str) -> PointRelease {
        let stops = stops_every(&[self.times[0].1, self.times[1].1], self.dt);
        let x0 = self.x0;
        let init = |_: &mut _, len: usize| vec![x0; len];
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (n, ch) = (self.n, RELEASE_CHUNK);
        let mut snaps = simulate_ensemble(sde, init, n, ch, &stops, seed, name, threads);
        let paths = ensemble_paths(sde, init, n, ch, &stops, self.n_drawn, seed, name);
        let last = snaps.pop().unwrap_or_default();
        let first = snaps.pop().unwrap_or_default();
        PointRelease {
            first,
            last,
            paths,
            stops,
        }
    }
}

impl FreeDiffusionRun {
    fn release<'a>(&self, path: &'a str) -> Release<'a> {
        Release {
            path,
            diffusion: self.diffusion,
            x0: self.x0,
            n: self.n_particles,
            dt: self.dt,
            times: [("t_check", self.t_check), ("t_end", self.t_end)],
            n_drawn: self.n_drawn,
            bins: self.bins,
        }
    }

    /// Records every invalid field under `path` (sizes against this machine's memory).
    pub fn check(&self, c: &mut Checker, path: &str) {
        self.release(path).check(c);
    }

    /// The process, `OuSde::free(D, t_end)`.
    pub fn sde(&self) -> Result<OuSde, SdeError> {
        OuSde::free(self.diffusion, self.t_end)
    }

    /// Euler–Maruyama from `x₀` to `t_check` and `t_end`; chunk `c` of [`RELEASE_CHUNK`]
    /// particles on `streams::named(seed, name, c)` (thread-count independent).
    pub fn simulate(&self, sde: &OuSde, seed: u64, name: &str) -> PointRelease {
        self.release(name).simulate(sde, seed, name)
    }
}

impl OuRun {
    fn release<'a>(&self, path: &'a str) -> Release<'a> {
        Release {
            path,
            diffusion: self.diffusion,
            x0: self.x0,
            n: self.n_particles,
            dt: self.dt,
            times: [("t_mid", self.t_mid), ("t_end", self.t_end)],
            n_drawn: self.n_drawn,
            bins: self.bins,
        }
    }

    /// Records every invalid field under `path` (sizes against this machine's memory), and
    /// `a · dt ≤ 0.1` (Euler–Maruyama is stable for `a · dt < 2`; this keeps it accurate).
    pub fn check(&self, c: &mut Checker, path: &str) {
        c.positive(&format!("{path}.a"), self.a);
        self.release(path).check(c);
        let (a, dt) = (self.a, self.dt);
        if a.is_finite() && a > 0.0 && dt.is_finite() && dt > 0.0 {
            let want = format!("<= 0.1 / a = {}", 0.1 / a);
            c.require(a * dt <= 0.1, &format!("{path}.dt"), &want, dt);
        }
    }

    /// The process, `OuSde::new(a, D, t_end)`.
    pub fn sde(&self) -> Result<OuSde, SdeError> {
        OuSde::new(self.a, self.diffusion, self.t_end)
    }

    /// Euler–Maruyama from `x₀` to `t_mid` and `t_end` (streams as [`FreeDiffusionRun::simulate`]).
    pub fn simulate(&self, sde: &OuSde, seed: u64, name: &str) -> PointRelease {
        self.release(name).simulate(sde, seed, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ou() -> OuRun {
        OuRun {
            a: 1.0,
            diffusion: 0.5,
            x0: 3.0,
            n_particles: RELEASE_CHUNK + 100,
            dt: 0.05,
            t_mid: 0.25,
            t_end: 0.5,
            n_drawn: 4,
            bins: 10,
        }
    }

    #[test]
    fn runs_check_their_fields() {
        let mut c = Checker::new();
        let mut bad = ou();
        (bad.dt, bad.n_drawn, bad.n_particles) = (0.3, 5000, usize::MAX / 2);
        bad.check(&mut c, "ou");
        let msg = c.finish().unwrap_err().to_string();
        for want in [
            "ou.dt must divide ou.t_mid into whole steps",
            "ou.dt must be <= 0.1 / a = 0.1 (got 0.3)",
            "ou.n_drawn must be <= 1000 (got 5000)",
            "ou.n_particles must be small enough to fit in memory",
        ] {
            assert!(msg.contains(want), "{msg}");
        }
        let mut c = Checker::new();
        ou().check(&mut c, "ou");
        assert!(c.finish().is_ok());
    }

    #[test]
    fn release_paths_end_at_the_positions() {
        let run = ou();
        let r = run.simulate(&run.sde().unwrap(), 11, "t");
        assert_eq!(r.stops, vec![(0.25, 5), (0.5, 5)]);
        assert_eq!(
            (r.first.len(), r.last.len()),
            (run.n_particles, run.n_particles)
        );
        assert_eq!((r.paths.particles, r.paths.frames()), (4, 11));
        assert_eq!(r.paths.frame(10), &r.last[..4]);
        assert_eq!(r.paths.frame(5), &r.first[..4]);
    }
}
