//! Step bookkeeping, validation, memory estimates and recorded paths of particle ensembles
//! ([`crate::simulate_ensemble`]) and Fokker–Planck runs stepping through checkpoint times.

use rand_chacha::ChaCha8Rng;
use smoluchowski_core::streams;
use smoluchowski_core::validate::Checker;
use smoluchowski_core::MemoryEstimate;

use crate::{euler_maruyama, ForwardSde, Stop, Trajectories};

/// `k = t / dt` if `dt` divides `t` into `1 ≤ k ≤ 10⁹` whole steps (to `10⁻⁹ k` relative).
pub fn whole_steps(t: f64, dt: f64) -> Option<usize> {
    let k = (t / dt).round();
    ((k - t / dt).abs() <= 1e-9 * k.max(1.0) && (1.0..=1e9).contains(&k)).then_some(k as usize)
}

/// The stops `(t_i, k_i)` of increasing `times`: `k_i = (t_i − t_{i−1}) / dt` whole steps from
/// the previous time (`t_0 = 0`); 1 where `dt` does not divide (validate with [`check_divides`]).
pub fn stops_every(times: &[f64], dt: f64) -> Vec<Stop> {
    let mut prev = 0.0;
    times
        .iter()
        .map(|&t| {
            let k = whole_steps(t - prev, dt).unwrap_or(1);
            prev = t;
            (t, k)
        })
        .collect()
}

/// Records `<dt_path> must divide <t_path> into whole steps (got t / dt)` unless [`whole_steps`]
/// accepts `(t, dt)`; silent when either is not a finite positive number (checked elsewhere).
pub fn check_divides(c: &mut Checker, dt_path: &str, dt: f64, t_path: &str, t: f64) {
    let valid = |v: f64| v.is_finite() && v > 0.0;
    if valid(dt) && valid(t) && whole_steps(t, dt).is_none() {
        c.fail(format!(
            "{dt_path} must divide {t_path} into whole steps (got {t_path} / {dt_path} = {})",
            t / dt
        ));
    }
}

/// Checks a list of checkpoint times at `path`: `1 ≤ len ≤ max_len`, each `> 0`, strictly
/// increasing, `≤ t_max` (`(name, value)`) if given, and divided by every step of `dts`.
pub fn check_times(
    c: &mut Checker,
    path: &str,
    times: &[f64],
    max_len: usize,
    t_max: Option<(&str, f64)>,
    dts: &[(&str, f64)],
) {
    c.count(&format!("length of {path}"), times.len(), 1, max_len);
    for (i, &t) in times.iter().enumerate() {
        let p = format!("{path}[{i}]");
        c.positive(&p, t);
        if !(t.is_finite() && t > 0.0) {
            continue;
        }
        if i > 0 && times[i - 1].is_finite() {
            let prev = times[i - 1];
            c.require(t > prev, &p, &format!("> {path}[{}] = {prev}", i - 1), t);
        }
        if let Some((name, tm)) = t_max {
            c.require(t <= tm, &p, &format!("<= {name} = {tm}"), t);
        }
        for &(name, dt) in dts {
            check_divides(c, name, dt, &p, t);
        }
    }
}

/// Memory of an ensemble of `n` 1-D particles kept at `snapshots` stops (field `path`): the
/// working positions and one `f64` copy per snapshot, `8 · (snapshots + 1)` bytes per particle.
pub fn ensemble_memory(path: &str, n: usize, snapshots: usize) -> MemoryEstimate {
    MemoryEstimate::linear(path, n, 8 * (snapshots as u128 + 1), 0)
}

/// The paths of the first `n_drawn` particles of [`crate::simulate_ensemble`]`(sde, init, n,
/// chunk, stops, seed, name, _)`: its chunk 0 replayed with a recorder, so the paths end exactly
/// at that ensemble's positions (frame 0 at `t = 0`, then one frame per Euler–Maruyama step).
#[allow(clippy::too_many_arguments)]
pub fn ensemble_paths<S: ForwardSde>(
    sde: &S,
    init: impl Fn(&mut ChaCha8Rng, usize) -> Vec<f64>,
    n: usize,
    chunk: usize,
    stops: &[Stop],
    n_drawn: usize,
    seed: u64,
    name: &str,
) -> Trajectories {
    let len = chunk.min(n);
    let mut rng = streams::named(seed, name, 0);
    let mut x = init(&mut rng, len);
    let mut rec = Trajectories::new(n_drawn.min(len), 1);
    let mut t = 0.0;
    for &(t_stop, steps) in stops {
        euler_maruyama(sde, &mut x, t, t_stop, steps, &mut rng, Some(&mut rec));
        t = t_stop;
    }
    rec
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{simulate_ensemble, OuSde};

    #[test]
    fn whole_steps_requires_divisibility() {
        assert_eq!(whole_steps(1.0, 1e-3), Some(1000));
        assert_eq!(whole_steps(0.5, 5e-3), Some(100));
        assert_eq!(whole_steps(1.0, 0.3), None);
        assert_eq!(whole_steps(0.1, 1.0), None);
        assert_eq!(
            stops_every(&[0.1, 0.5, 1.0], 1e-3),
            vec![(0.1, 100), (0.5, 400), (1.0, 500)]
        );
    }

    #[test]
    fn checks_name_the_fields() {
        let mut c = Checker::new();
        check_divides(&mut c, "a.dt", 0.3, "a.t", 1.0);
        check_times(
            &mut c,
            "b.times",
            &[0.5, 0.2, 3.0],
            8,
            Some(("b.t_end", 2.0)),
            &[],
        );
        let msg = c.finish().unwrap_err().to_string();
        assert!(
            msg.contains("a.dt must divide a.t into whole steps"),
            "{msg}"
        );
        assert!(
            msg.contains("b.times[1] must be > b.times[0] = 0.5"),
            "{msg}"
        );
        assert!(msg.contains("b.times[2] must be <= b.t_end = 2"), "{msg}");
        assert_eq!(ensemble_memory("n", 10, 2).bytes, 240);
    }

    #[test]
    fn paths_end_at_the_ensemble_positions() {
        let sde = OuSde::new(1.0, 0.5, 1.0).unwrap();
        let stops = [(0.25, 5), (0.5, 5)];
        let init = |_: &mut ChaCha8Rng, len: usize| vec![3.0; len];
        let snaps = simulate_ensemble(&sde, init, 300, 128, &stops, 11, "t", 2);
        let paths = ensemble_paths(&sde, init, 300, 128, &stops, 4, 11, "t");
        assert_eq!((paths.particles, paths.frames()), (4, 11));
        assert_eq!(paths.get(0, 0, 0), 3.0);
        assert_eq!(paths.frame(10), &snaps[1][..4]);
    }
}
