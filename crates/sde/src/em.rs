//! Euler–Maruyama simulation of a forward SDE.

use rand::Rng;
use rand_distr::StandardNormal;

use crate::ForwardSde;

/// Recorded paths of the first `particles` particles (rows of dimension `dim`), one frame per
/// recorded time: the workspace's one trajectory type (`f64` positions from [`euler_maruyama`],
/// `f32` from the samplers crate).
///
/// Time-major: `positions[(k · particles + p) · dim + j]` is coordinate `j` of particle `p` at
/// `times[k]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trajectories<T = f64> {
    /// Recorded times (frame `k` at `times[k]`).
    pub times: Vec<f64>,
    /// Rows per frame.
    pub particles: usize,
    /// Dimension of a row.
    pub dim: usize,
    /// `frames × particles × dim`, time-major (see the type's docs).
    pub positions: Vec<T>,
}

impl<T: Copy> Trajectories<T> {
    /// Empty recorder for the first `particles` rows of dimension `dim`.
    pub fn new(particles: usize, dim: usize) -> Self {
        Self {
            times: Vec::new(),
            particles,
            dim,
            positions: Vec::new(),
        }
    }

    /// Number of frames (recorded times).
    pub fn frames(&self) -> usize {
        self.times.len()
    }

    /// Frame `k`: the `particles × dim` positions at `times[k]`.
    pub fn frame(&self, k: usize) -> &[T] {
        let len = self.particles * self.dim;
        &self.positions[k * len..(k + 1) * len]
    }

    /// Coordinate `coord` of particle `particle` in frame `k`.
    pub fn get(&self, k: usize, particle: usize, coord: usize) -> T {
        self.positions[(k * self.particles + particle) * self.dim + coord]
    }

    /// Appends a frame at `t`: the first `particles` rows of `x`.
    pub fn push(&mut self, t: f64, x: &[T]) {
        self.times.push(t);
        self.positions
            .extend_from_slice(&x[..self.particles * self.dim]);
    }
}

/// Euler–Maruyama for `dx = a(t) x dt + g(t) dW` from `t0` to `t1 ≥ t0` in `n_steps` equal steps
/// `Δt = (t1 − t0) / n_steps`, in place on every coordinate of `x`:
///
/// `x ← x + a(t_k) x Δt + g(t_k) √Δt z = (1 + a(t_k) Δt) x + g(t_k) √Δt z`,
/// `t_k = t0 + k Δt`, `z ~ N(0, 1)` i.i.d. (one draw per coordinate per step, in buffer order).
///
/// If `record` is given, the first `record.particles` particles (rows of `record.dim`
/// values) are appended at `t0` and after every step; `t0` is not repeated if the recorder
/// already ends at `t0` (so consecutive calls produce one continuous path).
///
/// Panics if `t1 < t0`, if `t0`/`t1` are not finite, or if `x` holds fewer than
/// `record.particles · record.dim` values.
pub fn euler_maruyama<S: ForwardSde, R: Rng + ?Sized>(
    sde: &S,
    x: &mut [f64],
    t0: f64,
    t1: f64,
    n_steps: usize,
    rng: &mut R,
    mut record: Option<&mut Trajectories>,
) {
    assert!(
        t0.is_finite() && t1.is_finite() && t1 >= t0,
        "euler_maruyama: need finite t0 ≤ t1, got t0 = {t0}, t1 = {t1}"
    );
    if let Some(rec) = record.as_deref_mut() {
        assert!(
            x.len() >= rec.particles * rec.dim,
            "euler_maruyama: x has {} values, fewer than the {} × {} to record",
            x.len(),
            rec.particles,
            rec.dim
        );
        if rec.times.last() != Some(&t0) {
            rec.push(t0, x);
        }
    }
    if n_steps == 0 {
        return;
    }
    let dt = (t1 - t0) / n_steps as f64;
    let sqrt_dt = dt.sqrt();
    for k in 0..n_steps {
        let t = t0 + k as f64 * dt;
        let c_x = 1.0 + sde.drift_coef(t) * dt;
        let c_z = sde.diffusion(t) * sqrt_dt;
        for v in x.iter_mut() {
            let z: f64 = rng.sample(StandardNormal);
            *v = c_x * *v + c_z * z;
        }
        if let Some(rec) = record.as_deref_mut() {
            let t_next = if k + 1 == n_steps {
                t1
            } else {
                t0 + (k + 1) as f64 * dt
            };
            rec.push(t_next, x);
        }
    }
}
