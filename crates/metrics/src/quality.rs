//! Summaries that go with [`evaluate_planar`](crate::evaluate_planar): its memory estimates and
//! the final-loss average of a training curve.

use smoluchowski_core::MemoryEstimate;

/// Bytes per sample row while [`evaluate_planar`](crate::evaluate_planar) runs with a
/// reference: the `f64` sample (16 B), the equally long floor draw (16 B), radii and angles
/// (16 B) and the sorted copies the KS tests make (16 B).
pub const PLANAR_BYTES_PER_SAMPLE: u128 = 64;

/// Bytes per reference row: the `f64` draw (16 B), its radii and angles (16 B) and their sorted
/// copies (16 B).
pub const PLANAR_BYTES_PER_REFERENCE: u128 = 48;

/// Memory of evaluating `n` planar samples (field `samples_path`) against a reference draw of
/// `m` rows (field `reference_path`, `None`: no reference, then `m` is ignored):
/// [`PLANAR_BYTES_PER_SAMPLE`] per sample and [`PLANAR_BYTES_PER_REFERENCE`] per reference row.
pub fn planar_evaluation_memory(
    samples_path: &str,
    n: usize,
    reference: Option<(&str, usize)>,
) -> Vec<MemoryEstimate> {
    let mut v = vec![MemoryEstimate::linear(
        samples_path,
        n,
        PLANAR_BYTES_PER_SAMPLE,
        0,
    )];
    if let Some((path, m)) = reference {
        v.push(MemoryEstimate::linear(
            path,
            m,
            PLANAR_BYTES_PER_REFERENCE,
            0,
        ));
    }
    v
}

/// Mean of the last `window` values (all of them if fewer; at least one) and the window
/// actually used: `(1/w) Σ_{i > len − w} x_i`, `w = clamp(window, 1, len)`. The
/// `final_training_loss` of a loss curve. `(NaN, 0)` for an empty slice.
pub fn trailing_mean(x: &[f64], window: usize) -> (f64, usize) {
    if x.is_empty() {
        return (f64::NAN, 0);
    }
    let w = window.min(x.len()).max(1);
    let tail = &x[x.len().saturating_sub(w)..];
    (tail.iter().sum::<f64>() / w as f64, w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_mean_averages_the_last_window() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(trailing_mean(&x, 2), (4.5, 2));
        assert_eq!(trailing_mean(&x, 100), (3.0, 5));
        assert!(trailing_mean(&[], 3).0.is_nan());
    }

    #[test]
    fn planar_memory_is_linear_in_both_sizes() {
        let v = planar_evaluation_memory("n", 1000, Some(("m", 10)));
        assert_eq!(v[0].bytes, 64_000);
        assert_eq!((v[1].path.as_str(), v[1].bytes), ("m", 480));
        assert_eq!(planar_evaluation_memory("n", 1, None).len(), 1);
    }
}
