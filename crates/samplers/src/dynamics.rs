//! The two reverse-time dynamics every sampler is built on, written once over batches.

use smoluchowski_sde::{ForwardSde, Score};

/// Reverse-SDE drift `out = f(x,t) − g(t)² s(x,t)` of `dx = [f − g² s] dt + g dW̄`
/// (integrated from `T` down to `t_eps`). One score evaluation on the whole batch.
pub fn reverse_drift<S, M>(sde: &S, model: &mut M, x: &[f32], t: f64, out: &mut [f32])
where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
{
    model.score(x, t, out);
    let g = sde.diffusion(t);
    linear_plus_score(sde.drift_coef(t), -g * g, x, out);
}

/// Probability-flow ODE velocity `out = f(x,t) − ½ g(t)² s(x,t)` of `dx/dt = f − ½ g² s`.
/// One score evaluation on the whole batch.
pub fn probability_flow_drift<S, M>(sde: &S, model: &mut M, x: &[f32], t: f64, out: &mut [f32])
where
    S: ForwardSde + ?Sized,
    M: Score + ?Sized,
{
    model.score(x, t, out);
    let g = sde.diffusion(t);
    linear_plus_score(sde.drift_coef(t), -0.5 * g * g, x, out);
}

/// `out ← a · x + c · out` (with `out` holding the score), in f64 per element.
pub(crate) fn linear_plus_score(a: f64, c: f64, x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "x and out must have equal length");
    for (o, &xi) in out.iter_mut().zip(x) {
        *o = (a * f64::from(xi) + c * f64::from(*o)) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoluchowski_sde::{GaussianOracle, VpSde};

    #[test]
    fn drifts_match_their_formulas() {
        let sde = VpSde::song_default();
        let mut oracle = GaussianOracle::new(sde, vec![0.5], vec![0.3]).unwrap();
        let x = [0.7f32, -1.2];
        let t = 0.4;
        let (m, sig) = (sde.mean_coef(t), sde.marginal_std(t));
        let v = m * m * 0.09 + sig * sig;
        let beta = sde.beta(t);
        let mut rev = [0.0f32; 2];
        let mut pf = [0.0f32; 2];
        reverse_drift(&sde, &mut oracle, &x, t, &mut rev);
        probability_flow_drift(&sde, &mut oracle, &x, t, &mut pf);
        for i in 0..2 {
            let xi = f64::from(x[i]);
            let s = -(xi - m * 0.5) / v;
            let want_rev = -0.5 * beta * xi - beta * s;
            let want_pf = -0.5 * beta * xi - 0.5 * beta * s;
            assert!((f64::from(rev[i]) - want_rev).abs() < 1e-5 * want_rev.abs().max(1.0));
            assert!((f64::from(pf[i]) - want_pf).abs() < 1e-5 * want_pf.abs().max(1.0));
        }
    }
}
