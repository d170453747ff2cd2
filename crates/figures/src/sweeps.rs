//! Panels of sweeps: a statistic against the number of score evaluations (NFE), one curve per
//! sampler family, and per-point likelihoods against their exact values.

use crate::{palette, viridis, Line, Panel, Points};

/// Looks of an [`nfe_panel`]: x padding (log₁₀ units), y padding (below, above), dot radius,
/// and the top of the viridis range used when there are more than four curves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NfeStyle {
    /// Padding of the x range on both sides (log₁₀ NFE).
    pub x_pad: f64,
    /// Padding of the y range (below, above; log₁₀ units).
    pub y_pad: (f64, f64),
    /// Dot radius (pixels).
    pub radius: u32,
    /// Top of the viridis range of the curves' colours (more than four curves).
    pub viridis_max: f64,
}

/// A log–log panel of one statistic against NFE: one curve `(label, [(nfe, value)])` per
/// family (points sorted by NFE; values floored at `1e-6`, NFE at 1) and a horizontal bar
/// `(value, label)` across the x range (a critical value or a noise floor). Up to four curves
/// take fixed palette colours, more take viridis colours on `[0, viridis_max]`. Axes are
/// `log₁₀ NFE` and `log₁₀ value` (`y_log10` ticks).
pub fn nfe_panel(
    (title, y_label): (&str, &str),
    curves: &[(String, Vec<(usize, f64)>)],
    bar: (f64, String),
    s: &NfeStyle,
) -> Panel {
    const FIXED: [plotters::style::RGBColor; 4] = [
        palette::DATA,
        palette::DATA2,
        palette::MARK,
        palette::EXACT2,
    ];
    let all = || curves.iter().flat_map(|c| c.1.iter());
    let nfe_max = all().map(|p| p.0).max().unwrap_or(1).max(2) as f64;
    let nfe_min = all().map(|p| p.0).min().unwrap_or(1).max(1) as f64;
    let (x0, x1) = (nfe_min.log10() - s.x_pad, nfe_max.log10() + s.x_pad);
    let (mut lines, mut points) = (Vec::new(), Vec::new());
    for (i, (label, pts)) in curves.iter().enumerate() {
        let mut pts: Vec<(f64, f64)> = pts
            .iter()
            .map(|&(n, v)| ((n.max(1) as f64).log10(), v.max(1e-6).log10()))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let color = if curves.len() <= FIXED.len() {
            FIXED[i]
        } else {
            viridis(i as f64 / (curves.len() - 1) as f64 * s.viridis_max)
        };
        points.push(Points {
            points: pts.clone(),
            color,
            alpha: 1.0,
            radius: s.radius,
        });
        lines.push(Line {
            points: pts,
            color,
            alpha: 1.0,
            width: 2,
            label: Some(label.clone()),
        });
    }
    let yb = bar.0.log10();
    lines.push(Line {
        points: vec![(x0, yb), (x1, yb)],
        color: palette::EXACT,
        alpha: 0.8,
        width: 1,
        label: Some(bar.1),
    });
    let (ylo, yhi) = all()
        .map(|p| p.1.max(1e-6).log10())
        .chain([yb])
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
            (a.min(y), b.max(y))
        });
    Panel {
        title: title.into(),
        x_label: "NFE (log₁₀)".into(),
        y_label: y_label.into(),
        lines,
        points,
        x_range: Some((x0, x1)),
        y_range: Some((ylo - s.y_pad.0, yhi + s.y_pad.1)),
        y_log10: true,
        ..Default::default()
    }
}

/// Min and max of `v` (`(∞, −∞)` if empty).
fn extent(v: impl Iterator<Item = f64>) -> (f64, f64) {
    v.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    })
}

/// Two panels of per-point negative log-likelihoods of the first `m` points: the model's
/// `model[i]` against the exact `exact[i]` with the diagonal `y = x` (left), and both against
/// `radius[i]` with the exact entropy `h` as a level (right). Both share the y range.
pub fn nll_panels(radius: &[f64], exact: &[f64], model: &[f64], h: f64) -> [Panel; 2] {
    let m = radius.len().min(exact.len()).min(model.len());
    let pairs: Vec<(f64, f64)> = (0..m).map(|i| (exact[i], model[i])).collect();
    let (lo, hi) = extent(pairs.iter().flat_map(|p| [p.0, p.1]));
    let dots = |points: Vec<(f64, f64)>, color| Points {
        points,
        color,
        alpha: 0.35,
        radius: 2,
    };
    let key = |color, label: &str| Line {
        points: vec![],
        color,
        alpha: 1.0,
        width: 3,
        label: Some(label.into()),
    };
    let scatter = Panel {
        title: format!("per-point NLL: model vs exact ({m} held-out points)"),
        x_label: "exact −log p₀(x) (nats)".into(),
        y_label: "model −log p^θ(x) (nats)".into(),
        points: vec![dots(pairs, palette::DATA)],
        lines: vec![Line {
            points: vec![(lo, lo), (hi, hi)],
            color: palette::EXACT,
            alpha: 0.9,
            width: 1,
            label: Some("y = x".into()),
        }],
        x_range: Some((lo, hi)),
        y_range: Some((lo, hi)),
        ..Default::default()
    };
    let (rlo, rhi) = extent(radius[..m].iter().copied());
    let against_r = |v: &[f64]| radius[..m].iter().zip(v).map(|(&r, &v)| (r, v)).collect();
    let by_radius = Panel {
        title: "NLL vs radius".into(),
        x_label: "radius |x|".into(),
        y_label: "−log p (nats)".into(),
        points: vec![
            dots(against_r(exact), palette::EXACT2),
            dots(against_r(model), palette::DATA2),
        ],
        lines: vec![
            Line {
                points: vec![(rlo, h), (rhi, h)],
                color: palette::MARK,
                alpha: 0.9,
                width: 2,
                label: Some(format!("exact entropy H = {h:.4}")),
            },
            key(palette::EXACT2, "exact −log p₀"),
            key(palette::DATA2, "model NLL"),
        ],
        x_range: Some((rlo, rhi)),
        y_range: Some((lo, hi)),
        ..Default::default()
    };
    [scatter, by_radius]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfe_panel_is_log_log_with_its_bar() {
        let curves = vec![
            ("a".to_string(), vec![(100, 0.01), (10, 0.1)]),
            ("b".to_string(), vec![(10, 0.0)]),
        ];
        let s = NfeStyle {
            x_pad: 0.1,
            y_pad: (0.1, 0.5),
            radius: 3,
            viridis_max: 0.95,
        };
        let p = nfe_panel(("t", "D"), &curves, (0.05, "crit".into()), &s);
        assert_eq!(p.lines.len(), 3);
        assert_eq!(p.lines[0].points, vec![(1.0, -1.0), (2.0, -2.0)]);
        assert_eq!(p.lines[1].points, vec![(1.0, -6.0)]);
        let (x0, x1) = p.x_range.unwrap();
        assert!((x0 - 0.9).abs() < 1e-12 && (x1 - 2.1).abs() < 1e-12);
        assert_eq!(p.y_range.unwrap(), (-6.1, 0.05f64.log10().max(-1.0) + 0.5));
        assert!(p.y_log10);
    }

    #[test]
    fn nll_panels_share_the_range_and_draw() {
        let [a, b] = nll_panels(&[1.0, 2.0, 3.0], &[0.5, 1.0, 2.0], &[0.6, 0.9, 2.5], 1.2);
        assert_eq!(a.x_range, Some((0.5, 2.5)));
        assert_eq!(b.y_range, Some((0.5, 2.5)));
        assert_eq!(b.x_range, Some((1.0, 3.0)));
        assert_eq!(b.points[1].points[2], (3.0, 2.5));
        let dir = tempfile::tempdir().unwrap();
        crate::draw_row(&dir.path().join("n.png"), &[a, b], (200, 200)).unwrap();
    }
}
