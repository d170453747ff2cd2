//! Pointwise error maps of a learned score against an exact one.

use smoluchowski_nets::ScoreNet;

/// Local relative error `‖s_θ(x_i) − s*(x_i)‖ / (‖s*(x_i)‖ + floor)` of the network's score at
/// the constant `time`, one value per point `x_i` (rows of `x`, `n × d`); `exact` holds the exact
/// scores `s*(x_i)` in the same layout. The `floor` (e.g. `1/std` of the data) keeps the ratio
/// finite where the exact score vanishes. Norms are evaluated as chained `hypot`s.
///
/// Panics if `exact.len() != x.len()`.
pub fn local_relative_score_error(
    net: &ScoreNet,
    time: f64,
    x: &[f64],
    exact: &[f64],
    floor: f64,
) -> Vec<f64> {
    assert_eq!(
        exact.len(),
        x.len(),
        "local_relative_score_error: shapes differ"
    );
    let d = net.config().dim;
    let xf: Vec<f32> = x.iter().map(|&a| a as f32).collect();
    let got = net.predict(&xf, time);
    let norm = |v: &mut dyn Iterator<Item = f64>| v.fold(0.0f64, |a, b| a.hypot(b));
    got.chunks_exact(d)
        .zip(exact.chunks_exact(d))
        .map(|(g, e)| {
            let err = norm(&mut g.iter().zip(e).map(|(&a, &b)| a as f64 - b));
            err / (norm(&mut e.iter().copied()) + floor)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoluchowski_nets::{NetOutput, ScoreNetConfig};

    #[test]
    fn map_matches_the_definition_pointwise() {
        let mut cfg = ScoreNetConfig::default_2d();
        cfg.output = NetOutput::Score;
        let net = ScoreNet::new(cfg, 3).unwrap();
        let x = [0.1, -0.2, 1.0, 0.5];
        let exact = [1.0, 0.0, -0.5, 2.0];
        let got = net.predict(&x.map(|a| a as f32), 0.3);
        let map = local_relative_score_error(&net, 0.3, &x, &exact, 2.0);
        assert_eq!(map.len(), 2);
        for i in 0..2 {
            let (e0, e1) = (
                got[2 * i] as f64 - exact[2 * i],
                got[2 * i + 1] as f64 - exact[2 * i + 1],
            );
            let want = e0.hypot(e1) / (exact[2 * i].hypot(exact[2 * i + 1]) + 2.0);
            assert_eq!(map[i], want);
        }
        // A perfect score has zero error.
        let perfect: Vec<f64> = got.iter().map(|&a| a as f64).collect();
        assert!(local_relative_score_error(&net, 0.3, &x, &perfect, 1.0)
            .iter()
            .all(|&e| e == 0.0));
    }
}
