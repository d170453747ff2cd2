//! Panels of 2-D samples against an exact planar law, and of training curves.
//!
//! The exact law enters through its polar marginals as closures ([`PlanarLaw`]): this crate
//! knows no dataset. [`planar_panels`] is the notes' three-panel layout (2-D histogram | angle
//! histogram against the exact angular density | radius histogram against the exact radial
//! density); [`step_histograms_vs_exact`] overlays several sample sets on one exact density;
//! [`loss_curve`] draws a training loss with its moving average on a log axis.

use plotters::style::RGBColor;
use smoluchowski_metrics::Histogram2d;

use crate::{
    curve, density_histogram, palette, viridis, Bars, Cells, FigureError, Legend, Line, Panel,
    Points, Result,
};

impl Line {
    /// An opaque polyline of `width` pixels.
    pub fn solid(
        points: Vec<(f64, f64)>,
        color: RGBColor,
        width: u32,
        label: Option<String>,
    ) -> Self {
        Line {
            points,
            color,
            alpha: 1.0,
            width,
            label,
        }
    }
}

/// An exact 1-D density drawn over histograms: `points` evaluations of `pdf` on the window.
pub struct Exact<'a> {
    /// The density.
    pub pdf: &'a dyn Fn(f64) -> f64,
    /// Number of points of the drawn curve.
    pub points: usize,
    /// Legend label.
    pub label: String,
}

/// A 2-D law known through its polar marginals, with the windows to draw it on.
pub struct PlanarLaw<'a> {
    /// Density of `r = |x|`, drawn on `radius_range`.
    pub radial: Exact<'a>,
    /// Window of the radius histogram.
    pub radius_range: (f64, f64),
    /// Density of `θ = atan2(y, x)` on `[−π, π]`.
    pub angular: Exact<'a>,
    /// Top of the angle panel's y axis.
    pub angular_max: f64,
    /// The 2-D histogram covers `[−half_width, half_width]²`.
    pub half_width: f64,
}

/// 2-D histogram of row-major `n × 2` samples on `[−half, half]²` with `bins × bins` cells,
/// coloured `viridis(√(density / peak))`: the square root shows faint tails next to a dense
/// mode.
pub fn density_heatmap(samples: &[f64], half: f64, bins: usize, title: String) -> Result<Panel> {
    let mut h2 = Histogram2d::new(-half, half, bins, -half, half, bins)
        .map_err(|e| FigureError(format!("2-D histogram: {e}")))?;
    h2.fill(samples);
    let dens = h2.density();
    let peak = dens.iter().cloned().fold(0.0, f64::max).max(1e-300);
    let (wx, wy) = h2.bin_widths();
    let mut rects = Vec::with_capacity(bins * bins);
    for i in 0..bins {
        for j in 0..bins {
            let d = dens[i * bins + j];
            let (x0, y0) = (-half + i as f64 * wx, -half + j as f64 * wy);
            let c = viridis(if d > 0.0 { (d / peak).sqrt() } else { 0.0 });
            rects.push((x0, y0, x0 + wx, y0 + wy, c));
        }
    }
    Ok(Panel {
        title,
        x_label: "x".into(),
        y_label: "y".into(),
        cells: Cells { rects },
        x_range: Some((-half, half)),
        y_range: Some((-half, half)),
        ..Default::default()
    })
}

/// Density histogram of `x` on `range` (`bins` bars, translucent) against the exact density
/// (black), titled `title` with x axis `x_label`.
pub fn histogram_vs_exact(
    (title, x_label): (&str, &str),
    x: &[f64],
    range: (f64, f64),
    bins: usize,
    sample_label: &str,
    exact: &Exact<'_>,
) -> Result<Panel> {
    let (edges, heights) = density_histogram(x, range.0, range.1, bins)?;
    Ok(Panel {
        title: title.into(),
        x_label: x_label.into(),
        y_label: "density".into(),
        bars: vec![Bars {
            edges,
            heights,
            color: palette::DATA,
            alpha: 0.5,
            label: Some(sample_label.into()),
        }],
        lines: vec![Line::solid(
            curve(range.0, range.1, exact.points, exact.pdf),
            palette::EXACT,
            2,
            Some(exact.label.clone()),
        )],
        x_range: Some(range),
        ..Default::default()
    })
}

/// The notes' layout for row-major `n × 2` samples with radii `r` and angles `theta`: the 2-D
/// histogram ([`density_heatmap`], 140 × 140 cells), the angle histogram (120 bins on
/// `[−π, π]`) and the radius histogram (100 bins on `law.radius_range`), each against `law`.
pub fn planar_panels(
    samples: &[f64],
    (r, theta): (&[f64], &[f64]),
    law: &PlanarLaw<'_>,
    hist_title: String,
    sample_label: &str,
) -> Result<[Panel; 3]> {
    let pi = std::f64::consts::PI;
    let angle = histogram_vs_exact(
        ("angle θ = atan2(y, x)", "θ"),
        theta,
        (-pi, pi),
        120,
        sample_label,
        &law.angular,
    )?;
    let radius = histogram_vs_exact(
        ("radius r = |x|", "r"),
        r,
        law.radius_range,
        100,
        sample_label,
        &law.radial,
    )?;
    Ok([
        density_heatmap(samples, law.half_width, 140, hist_title)?,
        Panel {
            y_range: Some((0.0, law.angular_max)),
            legend: Legend::UpperLeft,
            ..angle
        },
        radius,
    ])
}

/// Colour `i` of `n` categories: red, orange, blue, grey for `n ≤ 4`, else viridis steps.
pub fn categorical(i: usize, n: usize) -> RGBColor {
    const FIXED: [RGBColor; 4] = [
        palette::MARK,
        palette::DATA2,
        palette::DATA,
        palette::EXACT2,
    ];
    if n <= FIXED.len() {
        FIXED[i]
    } else {
        viridis(i as f64 / (n - 1) as f64 * 0.9)
    }
}

/// Density histogram of `x` on `[lo, hi]` as a step curve (two points per bin).
pub fn step_curve(x: &[f64], lo: f64, hi: f64, bins: usize) -> Result<Vec<(f64, f64)>> {
    let (edges, dens) = density_histogram(x, lo, hi, bins)?;
    Ok(dens
        .iter()
        .enumerate()
        .flat_map(|(i, &d)| [(edges[i], d), (edges[i + 1], d)])
        .collect())
}

/// Several sample sets `(label, values)` as density step curves ([`step_curve`], colours
/// [`categorical`]) on `range`, against the exact density (black).
pub fn step_histograms_vs_exact(
    series: &[(String, &[f64])],
    range: (f64, f64),
    bins: usize,
    exact: &Exact<'_>,
) -> Result<Panel> {
    let mut lines = Vec::with_capacity(series.len() + 1);
    for (i, (label, x)) in series.iter().enumerate() {
        lines.push(Line {
            alpha: 0.9,
            ..Line::solid(
                step_curve(x, range.0, range.1, bins)?,
                categorical(i, series.len()),
                2,
                Some(label.clone()),
            )
        });
    }
    lines.push(Line::solid(
        curve(range.0, range.1, exact.points, exact.pdf),
        palette::EXACT,
        2,
        Some(exact.label.clone()),
    ));
    Ok(Panel {
        y_label: "density".into(),
        lines,
        x_range: Some(range),
        ..Default::default()
    })
}

/// `[lo, hi]` widened to contain the `q` and `1 − q` quantiles (`x[⌊(len − 1) p⌋]` of the
/// sorted values) of every non-empty set.
pub fn widen_to_quantiles(range: (f64, f64), sets: &[&[f64]], q: f64) -> (f64, f64) {
    let (mut lo, mut hi) = range;
    for x in sets.iter().filter(|x| !x.is_empty()) {
        let mut s = x.to_vec();
        s.sort_by(f64::total_cmp);
        let at = |p: f64| s[((s.len() - 1) as f64 * p) as usize];
        lo = lo.min(at(q));
        hi = hi.max(at(1.0 - q));
    }
    (lo, hi)
}

/// Trailing moving average with window `w` (at least 1): `y_i = mean(x_{i−w+1..=i})`, over the
/// available prefix for `i < w − 1`.
pub fn moving_average(x: &[f64], w: usize) -> Vec<f64> {
    let w = w.max(1);
    let mut out = Vec::with_capacity(x.len());
    let mut sum = 0.0;
    for i in 0..x.len() {
        sum += x[i];
        if i >= w {
            sum -= x[i - w];
        }
        out.push(sum / (i + 1).min(w) as f64);
    }
    out
}

/// A training loss against the step on a log axis: the batch losses (light) and their trailing
/// moving average over `w = clamp(len/50, 1, 500)` steps, each thinned to at most ~4000 points
/// (non-positive and non-finite losses skipped). Returns the panel and `w`.
pub fn loss_curve(steps: &[usize], losses: &[f64], title: String, y_label: &str) -> (Panel, usize) {
    let w = (losses.len() / 50).clamp(1, 500);
    let smooth = moving_average(losses, w);
    let stride = losses.len().div_ceil(4000).max(1);
    let log_pts = |v: &[f64]| -> Vec<(f64, f64)> {
        steps
            .iter()
            .zip(v)
            .step_by(stride)
            .filter(|(_, &l)| l > 0.0 && l.is_finite())
            .map(|(&s, &l)| (s as f64, l.log10()))
            .collect()
    };
    let raw = Line {
        alpha: 0.25,
        ..Line::solid(log_pts(losses), palette::DATA, 1, Some("batch loss".into()))
    };
    let avg = format!("moving average ({w} steps)");
    let panel = Panel {
        title,
        x_label: "step".into(),
        y_label: y_label.into(),
        lines: vec![
            raw,
            Line::solid(log_pts(&smooth), palette::DATA2, 2, Some(avg)),
        ],
        y_log10: true,
        ..Default::default()
    };
    (panel, w)
}

/// A scatter of row-major `n × 2` `f32` points on `[−half, half]²`.
pub fn scatter(points: &[f32], half: f64, title: String) -> Panel {
    let pts = points
        .chunks_exact(2)
        .map(|p| (p[0] as f64, p[1] as f64))
        .collect();
    Panel {
        title,
        x_label: "x".into(),
        y_label: "y".into(),
        points: vec![Points {
            points: pts,
            color: palette::DATA,
            alpha: 0.6,
            radius: 2,
        }],
        x_range: Some((-half, half)),
        y_range: Some((-half, half)),
        ..Default::default()
    }
}

/// Bars of `heights` on `edges` (a non-finite height draws as 0).
pub fn bar_chart(
    (title, x_label, y_label): (String, &str, &str),
    edges: Vec<f64>,
    heights: &[f64],
) -> Panel {
    let heights = heights
        .iter()
        .map(|v| if v.is_finite() { *v } else { 0.0 })
        .collect();
    Panel {
        title,
        x_label: x_label.into(),
        y_label: y_label.into(),
        bars: vec![Bars {
            edges,
            heights,
            color: palette::DATA,
            alpha: 0.7,
            label: None,
        }],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_average_is_trailing() {
        assert_eq!(
            moving_average(&[1.0, 3.0, 5.0, 7.0], 2),
            vec![1.0, 2.0, 4.0, 6.0]
        );
    }

    #[test]
    fn step_curve_and_quantile_window() {
        let x = [0.25, 0.75, 0.8, 0.9];
        let c = step_curve(&x, 0.0, 1.0, 2).unwrap();
        assert_eq!(c, vec![(0.0, 0.5), (0.5, 0.5), (0.5, 1.5), (1.0, 1.5)]);
        let v: Vec<f64> = (0..=100).map(|i| i as f64).collect();
        assert_eq!(
            widen_to_quantiles((10.0, 20.0), &[&v, &[]], 0.05),
            (5.0, 95.0)
        );
    }

    #[test]
    fn planar_panels_draw_against_the_exact_law() {
        let pdf_r = |r: f64| if (0.5..1.5).contains(&r) { 1.0 } else { 0.0 };
        let pdf_t = |_t: f64| 1.0 / (2.0 * std::f64::consts::PI);
        let law = PlanarLaw {
            radial: Exact {
                pdf: &pdf_r,
                points: 50,
                label: "exact r".into(),
            },
            radius_range: (0.0, 2.0),
            angular: Exact {
                pdf: &pdf_t,
                points: 50,
                label: "exact θ".into(),
            },
            angular_max: 0.3,
            half_width: 2.0,
        };
        let samples = [1.0, 0.0, 0.0, 1.0, -1.0, 0.0, 0.0, -0.9];
        let r = smoluchowski_metrics::radii(&samples);
        let th = smoluchowski_metrics::angles(&samples);
        let panels = planar_panels(&samples, (&r, &th), &law, "h".into(), "s").unwrap();
        assert_eq!(panels[0].cells.rects.len(), 140 * 140);
        assert_eq!(panels[1].y_range, Some((0.0, 0.3)));
        assert_eq!(panels[2].bars[0].heights.len(), 100);
        let dir = tempfile::tempdir().unwrap();
        crate::draw_row(&dir.path().join("p.png"), &panels, (300, 300)).unwrap();
        let (panel, w) = loss_curve(&[1, 2, 3], &[1.0, 0.5, 0.25], "l".into(), "loss");
        assert_eq!((w, panel.lines.len()), (1, 2));
        assert_eq!(categorical(5, 6), viridis(0.9));
    }
}
