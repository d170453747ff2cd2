//! ODE integrators on f64 state shared by the adaptive sampler and the likelihood: adaptive
//! Dormand–Prince 5(4) and classic fixed-step RK4. The right-hand side is a closure
//! `rhs(t, y, out)`; the caller counts its score evaluations.

use crate::error::SamplerError;

/// Dormand–Prince 5(4) nodes `c_i`.
const C: [f64; 7] = [0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0];

/// Dormand–Prince 5(4) coupling coefficients `a_ij` (row `i` has `i` entries; row 6 is the
/// 5th-order weights `b`, so stage 7 is `f(t + h, y_{n+1})`, reused as the next stage 1).
const A: [&[f64]; 7] = [
    &[],
    &[1.0 / 5.0],
    &[3.0 / 40.0, 9.0 / 40.0],
    &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
    &[
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
    ],
    &[
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
    ],
    &[
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
    ],
];

/// Error weights `e = b − b̂` (5th minus embedded 4th order).
const E: [f64; 7] = [
    71.0 / 57600.0,
    0.0,
    -71.0 / 16695.0,
    71.0 / 1920.0,
    -17253.0 / 339200.0,
    22.0 / 525.0,
    -1.0 / 40.0,
];

/// Smallest step, relative to the length of the interval, before giving up.
const MIN_REL_STEP: f64 = 1e-12;

/// Adaptive Dormand–Prince 5(4) with FSAL, max-norm error control and preallocated stages.
///
/// A step `h` from `(t, y)` is accepted when
/// `err = max_i |h Σ_j e_j k_{j,i}| / (atol + rtol · max(|y_i|, |y'_i|)) ≤ 1`; the next step is
/// `h · clamp(0.9 · err^{−1/5}, 0.2, 10)` (at most `h` after a rejection). The first step
/// follows Hairer, Nørsett & Wanner (II.4, one extra evaluation).
pub(crate) struct DormandPrince {
    rtol: f64,
    atol: f64,
    k: [Vec<f64>; 7],
    y_stage: Vec<f64>,
    /// Magnitude of the next step, carried across calls.
    h: Option<f64>,
    /// `k[0] = f(t, y)` holds for the current `(t, y)` (first same as last).
    fsal: bool,
    /// Accepted and rejected steps so far.
    pub(crate) accepted: usize,
    pub(crate) rejected: usize,
}

impl DormandPrince {
    /// Integrator for states of length `len`.
    pub(crate) fn new(len: usize, rtol: f64, atol: f64) -> Self {
        Self {
            rtol,
            atol,
            k: std::array::from_fn(|_| vec![0.0; len]),
            y_stage: vec![0.0; len],
            h: None,
            fsal: false,
            accepted: 0,
            rejected: 0,
        }
    }

    /// Integrates `y` from `t0` to `t1` (either direction) in place. Consecutive calls must
    /// continue from where the last one ended (the FSAL stage and step size are reused).
    pub(crate) fn integrate<F>(
        &mut self,
        rhs: &mut F,
        y: &mut [f64],
        t0: f64,
        t1: f64,
    ) -> Result<(), SamplerError>
    where
        F: FnMut(f64, &[f64], &mut [f64]),
    {
        let span = (t1 - t0).abs();
        let dir = if t1 >= t0 { 1.0 } else { -1.0 };
        if span == 0.0 {
            return Ok(());
        }
        if !self.fsal {
            rhs(t0, y, &mut self.k[0]);
            self.fsal = true;
        }
        let mut h = match self.h {
            Some(h) => h,
            None => self.initial_step(rhs, y, t0, dir, span),
        };
        let mut t = t0;
        loop {
            let remaining = (t1 - t) * dir;
            if remaining <= 0.0 {
                break;
            }
            let last = h >= remaining;
            let hs = if last { remaining } else { h };
            let err = self.try_step(rhs, y, t, dir * hs);
            if err <= 1.0 {
                // Accept: y ← y', k_1 ← k_7.
                y.copy_from_slice(&self.y_stage);
                self.k.swap(0, 6);
                self.accepted += 1;
                t = if last { t1 } else { t + dir * hs };
                let grown = hs * (0.9 * err.powf(-0.2)).clamp(0.2, 10.0);
                h = if last { grown.max(h) } else { grown };
            } else {
                self.rejected += 1;
                h = hs * (0.9 * err.powf(-0.2)).clamp(0.2, 1.0);
                if h.is_nan() || h < MIN_REL_STEP * span {
                    return Err(crate::error::invalid(
                        "method",
                        format!(
                            "dormand_prince {{ rtol = {}, atol = {} }}",
                            self.rtol, self.atol
                        ),
                        format!(
                            "able to integrate the ODE: step size fell to {h:e} at t = {t} \
                             (error estimate {err:e}; non-finite score?)"
                        ),
                    ));
                }
            }
        }
        self.h = Some(h);
        Ok(())
    }

    /// One trial step of signed size `h` from `(t, y)`: stages into `k`, the 5th-order
    /// solution into `y_stage`; returns the scaled error norm (`∞` if not finite).
    fn try_step<F>(&mut self, rhs: &mut F, y: &[f64], t: f64, h: f64) -> f64
    where
        F: FnMut(f64, &[f64], &mut [f64]),
    {
        for s in 1..7 {
            let (done, rest) = self.k.split_at_mut(s);
            let a = A[s];
            for (i, ys) in self.y_stage.iter_mut().enumerate() {
                let mut acc = 0.0;
                for (j, &aj) in a.iter().enumerate() {
                    acc += aj * done[j][i];
                }
                *ys = y[i] + h * acc;
            }
            rhs(t + C[s] * h, &self.y_stage, &mut rest[0]);
        }
        // y_stage now holds the 5th-order solution (stage 7's argument).
        let mut err: f64 = 0.0;
        for (i, (&y0, &y1)) in y.iter().zip(&self.y_stage).enumerate() {
            let mut e = 0.0;
            for (j, &ej) in E.iter().enumerate() {
                e += ej * self.k[j][i];
            }
            let scale = self.atol + self.rtol * y0.abs().max(y1.abs());
            let r = (h * e).abs() / scale;
            err = if r.is_nan() {
                f64::INFINITY
            } else {
                err.max(r)
            };
        }
        err
    }

    /// Hairer's starting step: `h₀ = 0.01 d₀/d₁` (RMS norms of `y` and `f` scaled by
    /// `atol + rtol |y|`), refined with one Euler trial `d₂ = ‖f(t+h₀, y+h₀f) − f‖/h₀`:
    /// `h = min(100 h₀, (0.01 / max(d₁, d₂))^{1/5}, span)`.
    fn initial_step<F>(&mut self, rhs: &mut F, y: &[f64], t0: f64, dir: f64, span: f64) -> f64
    where
        F: FnMut(f64, &[f64], &mut [f64]),
    {
        let len = y.len().max(1) as f64;
        let scale = |v: f64| self.atol + self.rtol * v.abs();
        let rms = |it: &mut dyn Iterator<Item = f64>| (it.map(|v| v * v).sum::<f64>() / len).sqrt();
        let d0 = rms(&mut y.iter().map(|&v| v / scale(v)));
        let d1 = rms(&mut y.iter().zip(&self.k[0]).map(|(&v, &f)| f / scale(v)));
        let h0 = if d0 < 1e-5 || d1 < 1e-5 {
            1e-6 * span
        } else {
            (0.01 * d0 / d1).min(span)
        };
        for ((ys, &v), &f) in self.y_stage.iter_mut().zip(y).zip(&self.k[0]) {
            *ys = v + dir * h0 * f;
        }
        let (head, tail) = self.k.split_at_mut(1);
        rhs(t0 + dir * h0, &self.y_stage, &mut tail[0]);
        let d2 = rms(&mut y
            .iter()
            .zip(head[0].iter().zip(&tail[0]))
            .map(|(&v, (&f0, &f1))| (f1 - f0) / scale(v)))
            / h0;
        let dm = d1.max(d2);
        let h1 = if dm <= 1e-15 {
            (1e-6f64).max(h0 * 1e-3)
        } else {
            (0.01 / dm).powf(0.2)
        };
        (100.0 * h0).min(h1).min(span)
    }
}

/// Classic fixed-step RK4 from `t0` to `t1`:
/// `y ← y + h/6 (k₁ + 2k₂ + 2k₃ + k₄)`, `k₁ = f(t, y)`, `k₂ = f(t + h/2, y + h k₁/2)`,
/// `k₃ = f(t + h/2, y + h k₂/2)`, `k₄ = f(t + h, y + h k₃)`.
pub(crate) struct Rk4 {
    k: [Vec<f64>; 4],
    y_stage: Vec<f64>,
}

impl Rk4 {
    pub(crate) fn new(len: usize) -> Self {
        Self {
            k: std::array::from_fn(|_| vec![0.0; len]),
            y_stage: vec![0.0; len],
        }
    }

    /// One step from `t0` to `t1` (either direction).
    pub(crate) fn step<F>(&mut self, rhs: &mut F, y: &mut [f64], t0: f64, t1: f64)
    where
        F: FnMut(f64, &[f64], &mut [f64]),
    {
        let h = t1 - t0;
        rhs(t0, y, &mut self.k[0]);
        for s in 1..4 {
            let c = if s == 3 { 1.0 } else { 0.5 };
            for ((ys, &yi), &ki) in self.y_stage.iter_mut().zip(y.iter()).zip(&self.k[s - 1]) {
                *ys = yi + c * h * ki;
            }
            rhs(t0 + c * h, &self.y_stage, &mut self.k[s]);
        }
        let [k1, k2, k3, k4] = &self.k;
        for (i, yi) in y.iter_mut().enumerate() {
            *yi += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// y' = −2 t y (y(0) = 1): exact y = e^{−t²}; and the 2-d rotation y' = (−y₂, y₁).
    #[test]
    fn dormand_prince_meets_its_tolerance_and_refines() {
        let mut errs = Vec::new();
        for tol in [1e-4, 1e-7, 1e-10] {
            let mut nfe = 0usize;
            let mut rhs = |t: f64, y: &[f64], out: &mut [f64]| {
                nfe += 1;
                out[0] = -2.0 * t * y[0];
                out[1] = -y[2];
                out[2] = y[1];
            };
            let mut dp = DormandPrince::new(3, tol, tol);
            let mut y = vec![1.0, 1.0, 0.0];
            // Two consecutive intervals, as the sampler does between grid times.
            dp.integrate(&mut rhs, &mut y, 0.0, 1.0).unwrap();
            dp.integrate(&mut rhs, &mut y, 1.0, 3.0).unwrap();
            let e = (y[0] - (-9.0f64).exp())
                .abs()
                .max((y[1] - 3f64.cos()).abs())
                .max((y[2] - 3f64.sin()).abs());
            assert!(e < 50.0 * tol, "tol {tol}: error {e}");
            errs.push((e, nfe, dp.accepted, dp.rejected));
        }
        assert!(errs[0].1 < errs[1].1 && errs[1].1 < errs[2].1, "{errs:?}");
        // 1 + 1 (initial step) + 6 per attempted step.
        let (_, nfe, acc, rej) = errs[2];
        assert_eq!(nfe, 2 + 6 * (acc + rej));
        // Backwards in time: undo the rotation.
        let mut rhs = |_t: f64, y: &[f64], out: &mut [f64]| {
            out[0] = -y[1];
            out[1] = y[0];
        };
        let mut dp = DormandPrince::new(2, 1e-9, 1e-9);
        let mut y = vec![3f64.cos(), 3f64.sin()];
        dp.integrate(&mut rhs, &mut y, 3.0, 0.0).unwrap();
        assert!((y[0] - 1.0).abs() < 1e-7 && y[1].abs() < 1e-7, "{y:?}");
    }

    #[test]
    fn dormand_prince_reports_a_non_finite_rhs() {
        let mut rhs = |t: f64, _y: &[f64], out: &mut [f64]| {
            out[0] = if t > 0.5 { f64::NAN } else { 1.0 };
        };
        let mut dp = DormandPrince::new(1, 1e-6, 1e-6);
        let e = dp.integrate(&mut rhs, &mut [0.0], 0.0, 1.0).unwrap_err();
        assert_eq!(e.path(), "method");
        assert!(e.to_string().contains("step size"), "{e}");
    }

    #[test]
    fn rk4_is_fourth_order() {
        let run = |steps: usize| {
            let mut rk = Rk4::new(1);
            let mut y = vec![1.0];
            let mut rhs = |t: f64, y: &[f64], out: &mut [f64]| out[0] = -2.0 * t * y[0];
            for i in 0..steps {
                let (a, b) = (i as f64 / steps as f64, (i + 1) as f64 / steps as f64);
                rk.step(&mut rhs, &mut y, a, b);
            }
            (y[0] - (-1.0f64).exp()).abs()
        };
        let ratio = run(10) / run(20);
        assert!((13.0..19.0).contains(&ratio), "ratio {ratio}");
    }
}
