//! Panel builders from plain data: sample paths, histograms against exact densities, densities
//! evolving in time, log–log series, scatter plots, heat maps and quiver plots on a square.

use plotters::style::RGBColor;

use crate::{curve, density_histogram, palette, Bars, Cells, Line, Panel, Points, Result, VLine};

/// Colours of successive times / series (tab10's blue, orange, green, purple).
pub const SERIES_COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// One thin line per 1-D path: point `(times[k], positions[k · particles + p])` of path `p`
/// (the time-major layout of `smoluchowski_sde::Trajectories` with `dim = 1`).
pub fn path_lines(times: &[f64], positions: &[f64], particles: usize) -> Vec<Line> {
    (0..particles)
        .map(|p| Line {
            points: (0..times.len())
                .map(|k| (times[k], positions[k * particles + p]))
                .collect(),
            color: palette::DATA,
            alpha: 0.55,
            width: 1,
            label: None,
        })
        .collect()
}

/// A labelled 1-D sample or exact density with its colour.
pub struct Series<T> {
    /// Samples, or a density `x ↦ p(x)`.
    pub data: T,
    /// Colour.
    pub color: RGBColor,
    /// Legend label.
    pub label: String,
}

impl<T> Series<T> {
    /// `data` drawn in `color`, labelled `label`.
    pub fn new(data: T, color: RGBColor, label: impl Into<String>) -> Self {
        let label = label.into();
        Self { data, color, label }
    }
}

/// 1-D paths against time on `[0, t_end]` ([`path_lines`] plus `extra` lines) with a red
/// vertical marker at `t_mark`.
pub fn paths_panel(
    title: String,
    (times, positions, particles): (&[f64], &[f64], usize),
    t_mark: f64,
    t_end: f64,
    extra: Vec<Line>,
) -> Panel {
    let mut lines = path_lines(times, positions, particles);
    lines.extend(extra);
    let label = Some(format!("t = {t_mark}"));
    Panel {
        title,
        x_label: "t".into(),
        y_label: "x(t)".into(),
        lines,
        vlines: vec![VLine {
            x: t_mark,
            color: palette::MARK,
            label,
        }],
        x_range: Some((0.0, t_end)),
        ..Default::default()
    }
}

/// Density histograms (`bins` equal bins of `range`, see [`density_histogram`]) of each sample
/// against the exact densities (400-point curves), on `range`.
pub fn histograms_vs_densities(
    title: String,
    samples: &[Series<&[f64]>],
    exact: &[Series<&dyn Fn(f64) -> f64>],
    range: (f64, f64),
    bins: usize,
) -> Result<Panel> {
    let (lo, hi) = range;
    let mut bars = Vec::new();
    for s in samples {
        let (edges, heights) = density_histogram(s.data, lo, hi, bins)?;
        bars.push(Bars {
            edges,
            heights,
            color: s.color,
            alpha: 0.45,
            label: Some(s.label.clone()),
        });
    }
    let lines = exact
        .iter()
        .map(|e| Line {
            points: curve(lo, hi, 400, e.data),
            color: e.color,
            alpha: 1.0,
            width: 2,
            label: Some(e.label.clone()),
        })
        .collect();
    Ok(Panel {
        title,
        x_label: "x".into(),
        y_label: "density".into(),
        bars,
        lines,
        x_range: Some(range),
        ..Default::default()
    })
}

/// A density at several `times` on a grid of `centers`: per time (colour [`SERIES_COLORS`]`[i]`)
/// shaded bars `hist[i]` (densities on `edges`), a thick line `numeric[i]`, and a thin black
/// line `exact[i]`; the window is where any exact density exceeds `10⁻³` of its maximum.
pub fn evolving_density_panel(
    title: &str,
    centers: &[f64],
    edges: &[f64],
    times: &[f64],
    hist: &[Vec<f64>],
    numeric: &[Vec<f64>],
    exact: &[Vec<f64>],
) -> Panel {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for e in exact {
        let m = e.iter().cloned().fold(0.0, f64::max);
        for (x, _) in centers.iter().zip(e).filter(|(_, &v)| v > 1e-3 * m) {
            (lo, hi) = (lo.min(*x), hi.max(*x));
        }
    }
    let pts = |d: &[f64]| -> Vec<(f64, f64)> {
        let inside = centers
            .iter()
            .zip(d)
            .filter(|(x, _)| **x >= lo && **x <= hi);
        inside.map(|(&x, &v)| (x, v)).collect()
    };
    let mut panel = Panel {
        title: title.to_string(),
        x_label: "x".into(),
        y_label: "density p(x, t)".into(),
        x_range: Some((lo, hi)),
        ..Default::default()
    };
    for (i, &t) in times.iter().enumerate() {
        let color = SERIES_COLORS[i % SERIES_COLORS.len()];
        panel.bars.push(Bars {
            edges: edges.to_vec(),
            heights: hist[i].clone(),
            color,
            alpha: 0.25,
            label: None,
        });
        panel.lines.push(Line {
            points: pts(&numeric[i]),
            color,
            alpha: 1.0,
            width: 4,
            label: Some(format!("Fokker–Planck, t = {t}")),
        });
        panel.lines.push(Line {
            points: pts(&exact[i]),
            color: palette::EXACT,
            alpha: 1.0,
            width: 1,
            label: (i == 0).then(|| "exact".to_string()),
        });
    }
    panel
}

/// Series `(label, colour, y)` against `x` on log–log axes (`log₁₀ x`, `log₁₀ max(y, floor)`):
/// each a line with dots, plus a horizontal reference line at `reference = (y, label)`.
pub fn log_log_series(
    mut panel: Panel,
    x: &[f64],
    series: Vec<(String, RGBColor, Vec<f64>)>,
    floor: f64,
    reference: Option<(f64, String)>,
) -> Panel {
    for (label, color, y) in series {
        let pts: Vec<(f64, f64)> = x
            .iter()
            .zip(&y)
            .map(|(e, v)| (e.log10(), v.max(floor).log10()))
            .collect();
        panel.points.push(Points {
            points: pts.clone(),
            color,
            alpha: 1.0,
            radius: 4,
        });
        panel.lines.push(Line {
            points: pts,
            color,
            alpha: 1.0,
            width: 2,
            label: Some(label),
        });
    }
    if let (Some((y, label)), Some(first), Some(last)) = (reference, x.first(), x.last()) {
        panel.lines.push(Line {
            points: vec![
                (first.log10() - 0.1, y.log10()),
                (last.log10() + 0.1, y.log10()),
            ],
            color: palette::MARK,
            alpha: 1.0,
            width: 1,
            label: Some(label),
        });
    }
    panel
}

/// The first `max_points` rows `(x₁, x₂)` of `rows` as dots on `[−lim, lim]²`.
pub fn scatter_panel(rows: &[f64], max_points: usize, title: String, lim: f64) -> Panel {
    Panel {
        title,
        x_label: "x₁".into(),
        y_label: "x₂".into(),
        points: vec![Points {
            points: rows
                .chunks_exact(2)
                .take(max_points)
                .map(|p| (p[0], p[1]))
                .collect(),
            color: palette::DATA,
            alpha: 0.35,
            radius: 1,
        }],
        x_range: Some((-lim, lim)),
        y_range: Some((-lim, lim)),
        ..Default::default()
    }
}

/// The `n × n` cell centres of the square `[−half, half]²` as rows `(x, y)`, x-major: row
/// `i · n + j` is `(−half + (i + ½) w, −half + (j + ½) w)`, `w = 2 half / n`.
pub fn square_grid(half: f64, n: usize) -> Vec<f64> {
    let w = 2.0 * half / n as f64;
    (0..n * n)
        .flat_map(|k| {
            let (i, j) = (k / n, k % n);
            [-half + (i as f64 + 0.5) * w, -half + (j as f64 + 0.5) * w]
        })
        .collect()
}

/// A viridis heat map on the cells of [`square_grid`]`(half, n)`: cell `k` (x-major) coloured
/// [`crate::viridis`]`(scale(values[k]))`.
pub fn square_heatmap(half: f64, n: usize, values: &[f64], scale: impl Fn(f64) -> f64) -> Cells {
    let w = 2.0 * half / n as f64;
    let rects = values
        .iter()
        .enumerate()
        .map(|(k, &v)| {
            let (x0, y0) = (-half + (k / n) as f64 * w, -half + (k % n) as f64 * w);
            (x0, y0, x0 + w, y0 + w, crate::viridis(scale(v)))
        })
        .collect();
    Cells { rects }
}

/// A panel of the square `[−half, half]²` (axes `x`, `y`): heat-map `cells`, `arrows`, and a
/// small black dot at each row `(x, y)` of `dots`.
pub fn square_field_panel(
    title: String,
    half: f64,
    cells: Cells,
    arrows: Vec<Line>,
    dots: &[f64],
) -> Panel {
    let points = (!dots.is_empty()).then(|| Points {
        points: dots.chunks_exact(2).map(|p| (p[0], p[1])).collect(),
        color: palette::EXACT,
        alpha: 1.0,
        radius: 1,
    });
    Panel {
        title,
        x_label: "x".into(),
        y_label: "y".into(),
        cells,
        lines: arrows,
        points: points.into_iter().collect(),
        x_range: Some((-half, half)),
        y_range: Some((-half, half)),
        ..Default::default()
    }
}

/// Arrows from each row of `bases` along the matching row of `vectors`, of length
/// `0.9 · cell · tanh(|v| / v_ref)` (so long vectors saturate at 0.9 cells).
pub fn quiver(bases: &[f64], vectors: &[f64], cell: f64, v_ref: f64, color: RGBColor) -> Vec<Line> {
    bases
        .chunks_exact(2)
        .zip(vectors.chunks_exact(2))
        .map(|(p, v)| {
            let norm = v[0].hypot(v[1]).max(1e-12);
            let len = 0.9 * cell * (norm / v_ref).tanh();
            Line {
                points: vec![
                    (p[0], p[1]),
                    (p[0] + len * v[0] / norm, p[1] + len * v[1] / norm),
                ],
                color,
                alpha: 1.0,
                width: 2,
                label: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_heatmap_and_quiver_share_the_layout() {
        let g = square_grid(1.0, 2);
        assert_eq!(g, vec![-0.5, -0.5, -0.5, 0.5, 0.5, -0.5, 0.5, 0.5]);
        let cells = square_heatmap(1.0, 2, &[0.0, 1.0, 0.0, 0.0], |v| v);
        let r = cells.rects[1];
        assert_eq!(
            (r.0, r.1, r.2, r.3, r.4),
            (-1.0, 0.0, 0.0, 1.0, crate::viridis(1.0))
        );
        let p = square_field_panel("f".into(), 1.0, cells, vec![], &g);
        assert_eq!(
            (p.points[0].points.len(), p.y_range),
            (4, Some((-1.0, 1.0)))
        );
        let arrows = quiver(&g[..2], &[3.0, 4.0], 1.0, 1e-9, palette::DATA);
        let (x, y) = arrows[0].points[1];
        assert!((x + 0.5 - 0.54).abs() < 1e-12 && (y + 0.5 - 0.72).abs() < 1e-12);
    }

    #[test]
    fn panels_carry_their_data() {
        let p = paths_panel(
            "p".into(),
            (&[0.0, 1.0], &[1.0, 2.0, 3.0, 4.0], 2),
            0.5,
            1.0,
            vec![],
        );
        assert_eq!(p.lines[1].points, vec![(0.0, 2.0), (1.0, 4.0)]);
        assert_eq!(p.vlines[0].x, 0.5);
        let pdf = |x: f64| (-0.5 * x * x).exp();
        let s = [Series {
            data: &[0.0, 0.1][..],
            color: palette::DATA,
            label: "a".into(),
        }];
        let e = [Series {
            data: &pdf as &dyn Fn(f64) -> f64,
            color: palette::EXACT,
            label: "b".into(),
        }];
        let p = histograms_vs_densities("t".into(), &s, &e, (-1.0, 1.0), 4).unwrap();
        assert_eq!((p.bars[0].heights.len(), p.lines[0].points.len()), (4, 400));
        let p = log_log_series(
            Panel::default(),
            &[1.0, 10.0],
            vec![("s".into(), palette::DATA, vec![10.0, 0.0])],
            1e-6,
            Some((0.1, "r".into())),
        );
        assert_eq!(p.lines[0].points, vec![(0.0, 1.0), (1.0, -6.0)]);
        assert_eq!(p.lines[1].points, vec![(-0.1, -1.0), (1.1, -1.0)]);
        assert_eq!(
            scatter_panel(&[1.0, 2.0, 3.0, 4.0], 1, "s".into(), 2.0).points[0]
                .points
                .len(),
            1
        );
        let c = [0.0, 1.0, 2.0];
        let d = vec![vec![0.0, 1.0, 0.0]];
        let p = evolving_density_panel("f", &c, &[0.0, 3.0], &[0.5], &d, &d, &d);
        assert_eq!(
            (p.x_range, p.lines.len(), p.bars.len()),
            (Some((1.0, 1.0)), 2, 1)
        );
    }
}
