//! The exact score of `ring2d` pushed through a forward SDE, by numerical quadrature.

use std::f64::consts::{FRAC_PI_2, FRAC_PI_4, PI};

use rayon::prelude::*;
use smoluchowski_datasets::Ring2d;
use statrs::distribution::ContinuousCDF;

use crate::error::SdeError;
use crate::quadrature::gauss_legendre;
use crate::{ForwardSde, Score};

/// Rows per rayon task (fixed; rows are independent, so results do not depend on the number
/// of threads).
const ROWS_PER_TASK: usize = 256;
/// Radial truncation: the prior's radius is restricted to `[F⁻¹(ε), F⁻¹(1 − ε)]`.
const RADIAL_TAIL: f64 = 1e-12;

/// Exact score and log-density of `p_t = ring2d ∗ kernel` for a forward SDE, by quadrature.
///
/// With `x_t | y ~ N(m y, σ² I)` (`m = m(t)`, `σ = σ(t)`) and `y = ρ (cos φ, sin φ)` distributed
/// as `ring2d` (`p₀(y) dy = p(ρ) p(φ) dρ dφ`, radius `ρ ~ Gamma(k, rate k)`,
/// `p(φ) = 1/(8 max(cos²φ, sin²φ))`):
///
/// - `p_t(x) = ∫∫ p(ρ) p(φ) N(x; m ρ e_φ, σ² I) dρ dφ`,
/// - `∇ log p_t(x) = −E[x − m y | x_t = x] / σ²` (Tweedie), the posterior expectation taken
///   with the same quadrature (`x − m y` is averaged directly, so there is no cancellation
///   when `σ` is small).
///
/// Quadrature (per point, nodes placed where the posterior `p(y | x)` lives):
/// - radius: the midpoint rule (spectrally accurate for a smooth integrand that vanishes at both
///   ends) with `n_radial` nodes on `[ρ* − L_r w, ρ* + L_r w] ∩ [F⁻¹(10⁻¹²), F⁻¹(1 − 10⁻¹²)]`,
///   `L_r = 9`, where `ρ*`, `w` are the Laplace mode and width of
///   `(k − 1) ln ρ − kρ − (mρ − |x|)² / (2σ²)`: the Gamma bulk when `σ/m` is large, a window
///   of width `~σ/m` around `|x|/m` when the kernel is narrower than the ring (small `t`);
/// - angle: Gauss–Legendre on the window `θ_x ± L_a / √κ`, `κ = m ρ_lo |x| / σ²`, `L_a = 8`
///   (the whole circle when that exceeds `±π`), split at the kinks of `p(φ)` at the diagonals
///   `±π/4, ±3π/4`; the window's node budget is shared out in proportion to the pieces'
///   lengths, with at least `⌈n_angular / 3⌉` per piece. The budget is `n_angular` times the
///   ratio `√(κ(ρ*)/κ(ρ_lo))` of the window to the posterior's angular width at the radial
///   mode (capped at 4×): 1.0–1.1 for the default thin ring, larger for thick rings whose
///   radial window reaches small radii.
/// - log-sum-exp over the `n_radial × n_angular`-ish nodes.
///
/// The radial truncation changes `p₀` by a total mass of `2·10⁻¹²`; far from the ring (where
/// `p_t` is below ~`10⁻¹²` of its peak) the score is that of the truncated prior. Designed
/// for thin rings (`scale ≳ 20`; the default 200 is what the tests check); requires
/// `scale ≥ 2`. At `σ(t) = 0` the data score `(k/r − k) x/r − 2 e_i / x_i`
/// (`i = argmax |x_i|`) is returned.
///
/// Accuracy (tests `ring_oracle_*`, VP `β ∈ [0.1, 20]`, `t ∈ [10⁻³, 1]`, points drawn from
/// `p_t`): against a 4× finer rule (80 × 160) the score differs by ≤ 2.6·10⁻¹⁰ ·
/// (|s| + 1/σ) and `log p_t` by ≤ 2.6·10⁻¹⁰ (worst at `t ≈ 10⁻²`); the score equals central
/// differences of `log p_t` to ~10⁻⁹ relative; `∫ p_t = 1` to < 10⁻⁸; a Monte-Carlo Tweedie
/// estimate agrees within its standard error. For `scale = 20` the error is ≤ 2.2·10⁻⁸.
///
/// Cost: 20 × 40–60 kernel evaluations per point (vectorised exp, AVX2 when available with
/// bit-identical results); ≈ 2.4·10⁵ points per CPU-second on the development machine
/// (example `ring_oracle_speed`), parallel over rows with rayon (results independent of the
/// thread count).
#[derive(Debug, Clone)]
pub struct Ring2dOracle<S: ForwardSde> {
    sde: S,
    ring: Ring2d,
    /// Gamma shape = rate `k`.
    k: f64,
    /// `k ln k − ln Γ(k)`.
    ln_norm_r: f64,
    rho_lo: f64,
    rho_hi: f64,
    n_radial: usize,
    n_angular: usize,
    n_angular_min: usize,
    /// Gauss–Legendre rules `(n, nodes, weights)` for the node counts of [`gl_ladder`].
    gl: Vec<(usize, Vec<f64>, Vec<f64>)>,
    /// Run the quadrature kernel compiled for AVX2 (detected at construction).
    use_avx2: bool,
}

/// Cap on the angular budget, in units of `n_angular`.
const MAX_BUDGET_FACTOR: usize = 4;
/// Half-width of the radial window in Laplace standard deviations.
const L_RADIAL: f64 = 9.0;
/// Half-width of the angular window in standard deviations `1/√κ`.
const L_ANGULAR: f64 = 8.0;

impl<S: ForwardSde + Sync> Ring2dOracle<S> {
    /// Default resolution: 24 radial × 32 angular nodes (≈ 770 – 1300 kernel evaluations
    /// per point).
    pub fn new(sde: S, ring: Ring2d) -> Result<Self, SdeError> {
        Self::with_resolution(sde, ring, 20, 40)
    }

    /// Custom resolution: `n_radial ≥ 4` midpoint nodes, an angular budget of `n_angular ≥ 6`
    /// Gauss–Legendre nodes per window. Requires `ring.scale() ≥ 2`.
    pub fn with_resolution(
        sde: S,
        ring: Ring2d,
        n_radial: usize,
        n_angular: usize,
    ) -> Result<Self, SdeError> {
        let k = ring.scale();
        if k.is_nan() || k < 2.0 {
            return Err(SdeError::new(
                "ring.scale",
                k,
                "≥ 2 for the ring quadrature",
            ));
        }
        if n_radial < 4 {
            return Err(SdeError::new("n_radial", n_radial as f64, "≥ 4"));
        }
        if n_angular < 6 {
            return Err(SdeError::new("n_angular", n_angular as f64, "≥ 6"));
        }
        let gamma = statrs::distribution::Gamma::new(k, k)
            .map_err(|_| SdeError::new("ring.scale", k, "give a valid Gamma(k, rate k)"))?;
        let rho_lo = gamma.inverse_cdf(RADIAL_TAIL);
        let rho_hi = gamma.inverse_cdf(1.0 - RADIAL_TAIL);
        let gl = gl_ladder(MAX_BUDGET_FACTOR * n_angular)
            .into_iter()
            .map(|n| {
                let (x, w) = gauss_legendre(n);
                (n, x, w)
            })
            .collect();
        Ok(Self {
            sde,
            ring,
            k,
            ln_norm_r: k * k.ln() - statrs::function::gamma::ln_gamma(k),
            rho_lo,
            rho_hi,
            n_radial,
            n_angular,
            n_angular_min: n_angular.div_ceil(3),
            gl,
            use_avx2: detect_avx2(),
        })
    }

    /// The forward SDE.
    pub fn sde(&self) -> &S {
        &self.sde
    }

    /// The data law.
    pub fn ring(&self) -> &Ring2d {
        &self.ring
    }

    /// The radial truncation `[F⁻¹(10⁻¹²), F⁻¹(1 − 10⁻¹²)]` of the prior's radius.
    pub fn radial_range(&self) -> (f64, f64) {
        (self.rho_lo, self.rho_hi)
    }

    /// `log p_t(x)` of one point (`p₀`'s own log-density when `σ(t) = 0`).
    pub fn log_density(&self, x: [f64; 2], t: f64) -> f64 {
        let sig = self.sde.marginal_std(t);
        if sig == 0.0 {
            return self.ring.log_density(x);
        }
        let mut scratch = Scratch::new(self);
        self.point(x, self.sde.mean_coef(t), sig, &mut scratch).2
    }

    /// Score and log-density of one point: `(∇ log p_t(x), log p_t(x))`.
    pub fn score_point(&self, x: [f64; 2], t: f64) -> ([f64; 2], f64) {
        let sig = self.sde.marginal_std(t);
        if sig == 0.0 {
            return (self.data_score(x), self.ring.log_density(x));
        }
        let mut scratch = Scratch::new(self);
        let (s0, s1, lp) = self.point(x, self.sde.mean_coef(t), sig, &mut scratch);
        ([s0, s1], lp)
    }

    /// `log p_t` of every point of `x` (`n × 2`, row-major) into `out` (length `n`), parallel
    /// over rows.
    pub fn log_density_batch(&self, x: &[f64], t: f64, out: &mut [f64]) {
        assert_eq!(
            x.len(),
            2 * out.len(),
            "log_density_batch: x must hold 2 values per output"
        );
        let m = self.sde.mean_coef(t);
        let sig = self.sde.marginal_std(t);
        x.par_chunks(2 * ROWS_PER_TASK)
            .zip(out.par_chunks_mut(ROWS_PER_TASK))
            .for_each(|(xc, oc)| {
                let mut scratch = Scratch::new(self);
                for (xr, o) in xc.chunks_exact(2).zip(oc.iter_mut()) {
                    let p = [xr[0], xr[1]];
                    *o = if sig == 0.0 {
                        self.ring.log_density(p)
                    } else {
                        self.point(p, m, sig, &mut scratch).2
                    };
                }
            });
    }

    /// Score in f64 of every point of `x` (`n × 2`, row-major) into `out`, parallel over rows.
    pub fn score_f64(&self, x: &[f64], t: f64, out: &mut [f64]) {
        self.score_buffers(x, t, out, |v| v, |v| v);
    }

    fn score_buffers<T: Copy + Send + Sync>(
        &self,
        x: &[T],
        t: f64,
        out: &mut [T],
        to_f64: impl Fn(T) -> f64 + Sync,
        from_f64: impl Fn(f64) -> T + Sync,
    ) {
        assert_eq!(
            x.len(),
            out.len(),
            "score: x and out must have equal length"
        );
        assert_eq!(x.len() % 2, 0, "score: buffer length must be even (d = 2)");
        let m = self.sde.mean_coef(t);
        let sig = self.sde.marginal_std(t);
        x.par_chunks(2 * ROWS_PER_TASK)
            .zip(out.par_chunks_mut(2 * ROWS_PER_TASK))
            .for_each(|(xc, oc)| {
                let mut scratch = Scratch::new(self);
                for (xr, or) in xc.chunks_exact(2).zip(oc.chunks_exact_mut(2)) {
                    let p = [to_f64(xr[0]), to_f64(xr[1])];
                    let s = if sig == 0.0 {
                        self.data_score(p)
                    } else {
                        let (a, b, _) = self.point(p, m, sig, &mut scratch);
                        [a, b]
                    };
                    or[0] = from_f64(s[0]);
                    or[1] = from_f64(s[1]);
                }
            });
    }

    /// `∇ log p₀(x) = (k/r − k) x/r − 2 e_i / x_i`, `i = argmax_j |x_j|`
    /// (from `ln p₀ = const + k ln r − k r − 2 ln max(|x₀|, |x₁|)`).
    fn data_score(&self, x: [f64; 2]) -> [f64; 2] {
        let r = x[0].hypot(x[1]);
        let c = (self.k / r - self.k) / r;
        let mut s = [c * x[0], c * x[1]];
        if x[0].abs() >= x[1].abs() {
            s[0] -= 2.0 / x[0];
        } else {
            s[1] -= 2.0 / x[1];
        }
        s
    }

    /// Quadrature for one point: `(score_x, score_y, log p_t(x))`.
    ///
    /// On x86-64 CPUs with AVX2 the same code is run compiled for AVX2 (4-lane vectors, no
    /// FMA): every lane performs the same IEEE operations in the same order, so the results
    /// are bit-identical to the baseline (SSE2) path.
    fn point(&self, x: [f64; 2], m: f64, sig: f64, sc: &mut Scratch) -> (f64, f64, f64) {
        #[cfg(target_arch = "x86_64")]
        if self.use_avx2 {
            // SAFETY: `use_avx2` is set only when the CPU reports AVX2.
            return unsafe { self.point_avx2(x, m, sig, sc) };
        }
        self.point_portable(x, m, sig, sc)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn point_avx2(
        &self,
        x: [f64; 2],
        m: f64,
        sig: f64,
        sc: &mut Scratch,
    ) -> (f64, f64, f64) {
        self.point_portable(x, m, sig, sc)
    }

    #[inline(always)]
    fn point_portable(&self, x: [f64; 2], m: f64, sig: f64, sc: &mut Scratch) -> (f64, f64, f64) {
        let k = self.k;
        let inv_s2 = 1.0 / (sig * sig);
        let half_inv_s2 = 0.5 * inv_s2;
        let r = x[0].hypot(x[1]);

        // Radial window from the Laplace approximation of
        // h(ρ) = (k − 1) ln ρ − kρ − (mρ − r)²/(2σ²): h'(ρ) = 0 ⇔ aρ² + bρ − (k − 1) = 0.
        let a = m * m * inv_s2;
        let b = k - m * r * inv_s2;
        let disc = (b * b + 4.0 * a * (k - 1.0)).sqrt();
        let mode = if b > 0.0 {
            2.0 * (k - 1.0) / (b + disc)
        } else {
            (disc - b) / (2.0 * a)
        };
        let w = 1.0 / ((k - 1.0) / (mode * mode) + a).sqrt();
        let mut lo = (mode - L_RADIAL * w).max(self.rho_lo);
        let mut hi = (mode + L_RADIAL * w).min(self.rho_hi);
        if hi <= lo {
            // The posterior piles up at an end of the truncated range (x far from the ring).
            if mode < self.rho_lo {
                lo = self.rho_lo;
                hi = (self.rho_lo + 2.0 * L_RADIAL * w).min(self.rho_hi);
            } else {
                hi = self.rho_hi;
                lo = (self.rho_hi - 2.0 * L_RADIAL * w).max(self.rho_lo);
            }
        }
        let nr = self.n_radial;
        let dr = (hi - lo) / nr as f64;
        let ln_dr = dr.ln();
        for i in 0..nr {
            let rho = lo + (i as f64 + 0.5) * dr;
            sc.mr[i] = m * rho;
            sc.lr[i] = ln_dr + self.ln_norm_r + (k - 1.0) * rho.ln() - k * rho;
        }

        // Angular window θ ± L_a/√κ, cut into pieces at the diagonals (the faces of the square).
        let kappa = m * lo * r * inv_s2;
        let kappa_mode = m * mode.clamp(lo, hi) * r * inv_s2;
        sc.budget = if kappa > 0.0 {
            ((self.n_angular as f64 * (kappa_mode / kappa).sqrt()).ceil() as usize)
                .clamp(self.n_angular, MAX_BUDGET_FACTOR * self.n_angular)
        } else {
            self.n_angular
        };
        let half = if kappa > 0.0 {
            L_ANGULAR / kappa.sqrt()
        } else {
            f64::INFINITY
        };
        sc.na = 0;
        if half >= PI {
            for face in 0..4 {
                self.push_piece(face, -FRAC_PI_4, FRAC_PI_4, 2.0 * PI, sc);
            }
        } else {
            let theta = x[1].atan2(x[0]);
            let (start, end) = (theta - half, theta + half);
            // Face f covers φ ∈ [f π/2 − π/4, f π/2 + π/4] (mod 2π); the window lies in
            // (−2π, 2π), so shifts by −2π, 0, 2π find every intersection.
            for shift in [-2.0 * PI, 0.0, 2.0 * PI] {
                for face in 0..4 {
                    let c = face as f64 * FRAC_PI_2 + shift;
                    let a0 = start.max(c - FRAC_PI_4);
                    let b0 = end.min(c + FRAC_PI_4);
                    if b0 > a0 {
                        self.push_piece(face, a0 - c, b0 - c, 2.0 * half, sc);
                    }
                }
            }
        }
        let na = sc.na;
        let e = &mut sc.e[..nr * na];
        let (ca, sa, wa) = (&sc.ca[..na], &sc.sa[..na], &sc.wa[..na]);

        // Pass 1: exponents E_ij = ln(w_i p(ρ_i)) − |x − m ρ_i e_j|²/(2σ²) (the angular
        // weights w_j p(φ_j) ∈ (0, 1) multiply e^{E − M} in pass 3).
        for i in 0..nr {
            let (mr, lr) = (sc.mr[i], sc.lr[i]);
            let row = &mut e[i * na..(i + 1) * na];
            for j in 0..na {
                let dx = x[0] - mr * ca[j];
                let dy = x[1] - mr * sa[j];
                row[j] = lr - (dx * dx + dy * dy) * half_inv_s2;
            }
        }
        let max = max_of(e);
        // Pass 2: weights e^{E − M} (vectorised exp).
        for v in e.iter_mut() {
            *v = exp_nonpositive(*v - max);
        }
        // Pass 3: Σ e^{E − M} and Σ e^{E − M} (x − m y).
        let (mut s, mut sx, mut sy) = (0.0, 0.0, 0.0);
        for i in 0..nr {
            let row = &e[i * na..(i + 1) * na];
            let (a, b, c) = weighted_sums(row, wa, ca, sa, x, sc.mr[i]);
            s += a;
            sx += b;
            sy += c;
        }
        let inv = 1.0 / s;
        let log_p = max + s.ln() - (std::f64::consts::TAU * sig * sig).ln();
        (-sx * inv * inv_s2, -sy * inv * inv_s2, log_p)
    }

    /// Append the Gauss–Legendre nodes of the face-local angles `[a, b] ⊂ [−π/4, π/4]` of face
    /// `face` (centre `fπ/2`; a share of the budget proportional to `b − a` within a window of
    /// length `total`), with the multiplicative weights `w_j p(φ_j)`,
    /// `p(φ) = 1/(8 max(cos²φ, sin²φ))`. `cos φ_j`, `sin φ_j` come from one `sin_cos` of the
    /// piece's midpoint rotated by the node offsets `u` (`|u| ≤ π/4`, Taylor polynomials).
    #[inline(always)]
    fn push_piece(&self, face: usize, a: f64, b: f64, total: f64, sc: &mut Scratch) {
        let len = b - a;
        if len <= 0.0 {
            return;
        }
        let want =
            ((sc.budget as f64 * len / total).ceil() as usize).clamp(self.n_angular_min, sc.budget);
        // The smallest tabulated rule with at least `want` nodes.
        let idx = self
            .gl
            .partition_point(|g| g.0 < want)
            .min(self.gl.len() - 1);
        let (n, xi, wi) = (self.gl[idx].0, &self.gl[idx].1, &self.gl[idx].2);
        let hw = 0.5 * len;
        let (sm, cm) = (face as f64 * FRAC_PI_2 + 0.5 * (a + b)).sin_cos();
        let j0 = sc.na;
        let ca = &mut sc.ca[j0..j0 + n];
        let sa = &mut sc.sa[j0..j0 + n];
        let wa = &mut sc.wa[j0..j0 + n];
        for j in 0..n {
            let (su, cu) = sin_cos_small(hw * xi[j]);
            let c = cm * cu - sm * su;
            let s = sm * cu + cm * su;
            ca[j] = c;
            sa[j] = s;
            let big = if c * c > s * s { c * c } else { s * s };
            wa[j] = hw * wi[j] / (8.0 * big);
        }
        sc.na += n;
    }
}

/// `max_i v_i` with four independent lanes (vectorisable; `v` non-empty, no NaN).
#[inline(always)]
fn max_of(v: &[f64]) -> f64 {
    let mut acc = [f64::NEG_INFINITY; 4];
    let chunks = v.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..4 {
            acc[l] = if c[l] > acc[l] { c[l] } else { acc[l] };
        }
    }
    let mut m = acc[0].max(acc[1]).max(acc[2].max(acc[3]));
    for &x in rest {
        m = m.max(x);
    }
    m
}

/// `(Σ_j e_j v_j, Σ_j e_j v_j (x₀ − mr c_j), Σ_j e_j v_j (x₁ − mr s_j))` with four lanes per
/// sum (fixed order, so deterministic; vectorisable).
#[inline(always)]
fn weighted_sums(
    e: &[f64],
    v: &[f64],
    c: &[f64],
    s: &[f64],
    x: [f64; 2],
    mr: f64,
) -> (f64, f64, f64) {
    let mut a = [0.0; 4];
    let mut bx = [0.0; 4];
    let mut by = [0.0; 4];
    let n4 = e.len() / 4 * 4;
    for k in (0..n4).step_by(4) {
        for l in 0..4 {
            let wk = e[k + l] * v[k + l];
            a[l] += wk;
            bx[l] += wk * (x[0] - mr * c[k + l]);
            by[l] += wk * (x[1] - mr * s[k + l]);
        }
    }
    for k in n4..e.len() {
        let wk = e[k] * v[k];
        a[0] += wk;
        bx[0] += wk * (x[0] - mr * c[k]);
        by[0] += wk * (x[1] - mr * s[k]);
    }
    (
        (a[0] + a[1]) + (a[2] + a[3]),
        (bx[0] + bx[1]) + (bx[2] + bx[3]),
        (by[0] + by[1]) + (by[2] + by[3]),
    )
}

/// `(sin u, cos u)` for `|u| ≤ π/4` by Taylor polynomials in `u²` (to `u¹⁷` and `u¹⁶`;
/// truncation `< (π/4)¹⁸/18! ≈ 2·10⁻¹⁸`), branch-free so loops over it vectorise.
#[inline(always)]
fn sin_cos_small(u: f64) -> (f64, f64) {
    let z = u * u;
    let mut s = -1.0 / 355_687_428_096_000.0; // −1/17!
    s = s * z + 1.0 / 1_307_674_368_000.0;
    s = s * z - 1.0 / 6_227_020_800.0;
    s = s * z + 1.0 / 39_916_800.0;
    s = s * z - 1.0 / 362_880.0;
    s = s * z + 1.0 / 5_040.0;
    s = s * z - 1.0 / 120.0;
    s = s * z + 1.0 / 6.0;
    let sin = u - u * z * s;
    let mut c = 1.0 / 20_922_789_888_000.0; // 1/16!
    c = c * z - 1.0 / 87_178_291_200.0;
    c = c * z + 1.0 / 479_001_600.0;
    c = c * z - 1.0 / 3_628_800.0;
    c = c * z + 1.0 / 40_320.0;
    c = c * z - 1.0 / 720.0;
    c = c * z + 1.0 / 24.0;
    c = c * z - 0.5;
    let cos = 1.0 + z * c;
    (sin, cos)
}

/// `eˣ` for `x ≤ 0`, branch-free so loops over it vectorise (inputs below −708 give
/// `e^{−708} ≈ 3·10⁻³⁰⁸` instead of a subnormal or 0).
///
/// `x = n ln 2 + r`, `|r| ≤ ½ ln 2` (Cody–Waite two-part `ln 2`), `n` by the round-to-nearest
/// trick `(y + 1.5·2⁵²) − 1.5·2⁵²`; `eʳ` by its Taylor polynomial to degree 13 (Estrin's scheme; truncation
/// `< 0.35¹⁴/14! ≈ 5·10⁻¹⁸`); `2ⁿ` assembled in the exponent bits. Relative error ≲ 2·10⁻¹⁶
/// (tested against `f64::exp`).
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 · 2⁵²
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let x = if x < -708.0 { -708.0 } else { x };
    let y = x * std::f64::consts::LOG2_E + MAGIC;
    let n = y - MAGIC;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    // Taylor coefficients 1/k!, Estrin's scheme (short dependency chains).
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let p01 = 1.0 + r;
    let p23 = 0.5 + r * (1.0 / 6.0);
    let p45 = 1.0 / 24.0 + r * (1.0 / 120.0);
    let p67 = 1.0 / 720.0 + r * (1.0 / 5_040.0);
    let p89 = 1.0 / 40_320.0 + r * (1.0 / 362_880.0);
    let p1011 = 1.0 / 3_628_800.0 + r * (1.0 / 39_916_800.0);
    let p1213 = 1.0 / 479_001_600.0 + r * (1.0 / 6_227_020_800.0);
    let p03 = p01 + r2 * p23;
    let p47 = p45 + r2 * p67;
    let p811 = p89 + r2 * p1011;
    let p07 = p03 + r4 * p47;
    let p813 = p811 + r4 * p1213;
    let p = p07 + r8 * p813;
    // y's low mantissa bits hold n (two's complement, |n| ≤ 1022).
    let k = y.to_bits().wrapping_sub(MAGIC.to_bits());
    let scale = f64::from_bits(k.wrapping_add(1023).wrapping_shl(52));
    p * scale
}

/// Tabulated Gauss–Legendre node counts up to `max` (and `max` itself): every `n ≤ 16`, then
/// steps of 4 to 64, of 16 to 256, of 64 beyond (a piece asking for `n` nodes gets the next
/// tabulated count, at most 25% more), so the tables cost `O(max²)`, not `O(max³)`.
fn gl_ladder(max: usize) -> Vec<usize> {
    let mut v = Vec::new();
    let mut n = 1;
    while n < max {
        v.push(n);
        n += match n {
            0..=15 => 1,
            16..=63 => 4,
            64..=255 => 16,
            _ => 64,
        };
    }
    v.push(max);
    v
}

fn detect_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Per-task scratch (allocated once per task of `ROWS_PER_TASK` rows, never per point).
struct Scratch {
    mr: Vec<f64>,
    lr: Vec<f64>,
    ca: Vec<f64>,
    sa: Vec<f64>,
    wa: Vec<f64>,
    na: usize,
    budget: usize,
    e: Vec<f64>,
}

impl Scratch {
    fn new<S: ForwardSde>(o: &Ring2dOracle<S>) -> Self {
        // At most 5 pieces (a window shorter than 2π crosses at most 4 kinks), each with at
        // most the largest tabulated rule.
        let max_na = 5 * o.gl.last().map_or(0, |g| g.0);
        Self {
            mr: vec![0.0; o.n_radial],
            lr: vec![0.0; o.n_radial],
            ca: vec![0.0; max_na],
            sa: vec![0.0; max_na],
            wa: vec![0.0; max_na],
            na: 0,
            budget: o.n_angular,
            e: vec![0.0; o.n_radial * max_na],
        }
    }
}

impl<S: ForwardSde + Sync> Score for Ring2dOracle<S> {
    fn dim(&self) -> usize {
        2
    }

    /// Quadrature score (computed in f64), parallel over rows.
    fn score(&mut self, x: &[f32], t: f64, out: &mut [f32]) {
        self.score_buffers(x, t, out, f64::from, |v| v as f32);
    }
}

#[cfg(test)]
mod tests {
    use super::{exp_nonpositive, max_of, weighted_sums, Ring2dOracle, Scratch};
    use crate::{ForwardSde, VpSde};
    use smoluchowski_datasets::Ring2d;

    /// The AVX2 build of the kernel gives bit-identical results to the portable one.
    #[test]
    fn simd_dispatch_is_bit_identical() {
        let sde = VpSde::song_default();
        let o = Ring2dOracle::new(sde, Ring2d::default()).unwrap();
        let mut sc = Scratch::new(&o);
        for t in [1e-3, 0.03, 0.2, 1.0] {
            let (m, s) = (sde.mean_coef(t), sde.marginal_std(t));
            for i in 0..50 {
                let a = 0.37 * i as f64;
                let x = [m * (0.9 + 0.004 * i as f64) * a.cos(), m * a.sin() + 0.01];
                let p = o.point(x, m, s, &mut sc);
                let q = o.point_portable(x, m, s, &mut sc);
                assert_eq!(p.0.to_bits(), q.0.to_bits());
                assert_eq!(p.1.to_bits(), q.1.to_bits());
                assert_eq!(p.2.to_bits(), q.2.to_bits());
            }
        }
    }

    #[test]
    fn fast_exp_matches_std() {
        let mut worst: f64 = 0.0;
        for i in 0..=200_000 {
            let x = -708.0 * (i as f64 / 200_000.0).powi(2);
            let e = x.exp();
            worst = worst.max((exp_nonpositive(x) - e).abs() / e);
        }
        assert!(worst < 5e-16, "relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1e6) > 0.0 && exp_nonpositive(-1e6) < 1e-307);
    }

    #[test]
    fn small_angle_sin_cos_match_std() {
        for i in -1000..=1000 {
            let u = std::f64::consts::FRAC_PI_4 * i as f64 / 1000.0;
            let (s, c) = super::sin_cos_small(u);
            assert!((s - u.sin()).abs() < 2e-16, "u={u}");
            assert!((c - u.cos()).abs() < 2e-16, "u={u}");
        }
    }

    #[test]
    fn lane_reductions_match_plain_sums() {
        let w: Vec<f64> = (0..11).map(|i| 0.1 * i as f64).collect();
        let c: Vec<f64> = (0..11).map(|i| (i as f64).cos()).collect();
        let s: Vec<f64> = (0..11).map(|i| (i as f64).sin()).collect();
        let ones = vec![1.0; 11];
        let (a, b, d) = weighted_sums(&w, &ones, &c, &s, [0.3, -0.2], 0.7);
        assert!((a - w.iter().sum::<f64>()).abs() < 1e-14);
        let bx: f64 = (0..11).map(|j| w[j] * (0.3 - 0.7 * c[j])).sum();
        let by: f64 = (0..11).map(|j| w[j] * (-0.2 - 0.7 * s[j])).sum();
        assert!((b - bx).abs() < 1e-14 && (d - by).abs() < 1e-14);
        assert_eq!(max_of(&c), c.iter().cloned().fold(f64::MIN, f64::max));
    }
}
