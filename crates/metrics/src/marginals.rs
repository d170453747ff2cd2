//! Radial and angular marginals of 2-D point sets.

fn check_pairs(fname: &str, points: &[f64]) {
    assert!(
        points.len().is_multiple_of(2),
        "{fname}: points must be row-major n×2, got length {}",
        points.len()
    );
}

/// Radii `r_i = √(x_i² + y_i²)` (computed with `hypot`) of a row-major `n × 2` slice.
///
/// # Panics
/// If `points.len()` is odd.
pub fn radii(points: &[f64]) -> Vec<f64> {
    check_pairs("radii", points);
    points.chunks_exact(2).map(|p| p[0].hypot(p[1])).collect()
}

/// Angles `θ_i = atan2(y_i, x_i) ∈ (−π, π]` of a row-major `n × 2` slice
/// (`atan2(−0, x<0) = −π` is mapped to `+π` so the range is half-open as stated).
///
/// # Panics
/// If `points.len()` is odd.
pub fn angles(points: &[f64]) -> Vec<f64> {
    check_pairs("angles", points);
    points
        .chunks_exact(2)
        .map(|p| {
            let t = p[1].atan2(p[0]);
            if t == -std::f64::consts::PI {
                std::f64::consts::PI
            } else {
                t
            }
        })
        .collect()
}
