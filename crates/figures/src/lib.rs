//! PNG figures with `plotters`' bitmap backend and an embedded font (DejaVu Sans, see
//! `crates/figures/assets/DejaVuSans-LICENSE.txt`): no system fonts are needed.
//!
//! A figure is a row of [`Panel`]s; a panel holds histogram bars, line series and vertical
//! markers on continuous axes. Experiments build panels from their data and call [`draw_row`].

mod fields;

pub use fields::{
    evolving_density_panel, histograms_vs_densities, log_log_series, path_lines, paths_panel,
    quiver, scatter_panel, square_field_panel, square_grid, square_heatmap, Series, SERIES_COLORS,
};

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

mod planar;
pub use planar::{
    bar_chart, categorical, density_heatmap, histogram_vs_exact, loss_curve, moving_average,
    planar_panels, scatter, step_curve, step_histograms_vs_exact, widen_to_quantiles, Exact,
    PlanarLaw,
};
mod images;
pub use images::{gray_level, image_grid, tile_gray, GrayCanvas, GridLabels};
mod sweeps;
pub use sweeps::{nfe_panel, nll_panels, NfeStyle};

/// A figure that could not be drawn or written (the message names the file or the panel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FigureError(pub String);

impl std::fmt::Display for FigureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FigureError {}

/// Result of drawing a figure.
pub type Result<T> = std::result::Result<T, FigureError>;

/// The embedded font, registered as plotters' `sans-serif` family.
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            if plotters::style::register_font("sans-serif", style, FONT).is_err() {
                eprintln!("warning: the embedded font could not be loaded; figures have no text");
            }
        }
    });
}

/// Colours used across figures.
pub mod palette {
    use plotters::style::RGBColor;
    /// Blue for simulated data.
    pub const DATA: RGBColor = RGBColor(31, 119, 180);
    /// Orange for a second data set.
    pub const DATA2: RGBColor = RGBColor(255, 127, 14);
    /// Black for exact curves.
    pub const EXACT: RGBColor = RGBColor(0, 0, 0);
    /// Red for markers.
    pub const MARK: RGBColor = RGBColor(214, 39, 40);
    /// Grey for a second exact curve.
    pub const EXACT2: RGBColor = RGBColor(90, 90, 90);
}

/// A polyline.
#[derive(Debug, Clone)]
pub struct Line {
    /// The points `(x, y)` in order.
    pub points: Vec<(f64, f64)>,
    /// Colour.
    pub color: RGBColor,
    /// Opacity in `[0, 1]`.
    pub alpha: f64,
    /// Stroke width in pixels.
    pub width: u32,
    /// Legend label (none: not in the legend).
    pub label: Option<String>,
}

/// Histogram bars given by `edges` (len `k + 1`) and `heights` (len `k`).
#[derive(Debug, Clone)]
pub struct Bars {
    /// Bin edges, increasing.
    pub edges: Vec<f64>,
    /// Bar heights (e.g. densities).
    pub heights: Vec<f64>,
    /// Colour.
    pub color: RGBColor,
    /// Opacity in `[0, 1]`.
    pub alpha: f64,
    /// Legend label.
    pub label: Option<String>,
}

/// A vertical marker line at `x`.
#[derive(Debug, Clone)]
pub struct VLine {
    /// Position on the x axis.
    pub x: f64,
    /// Colour.
    pub color: RGBColor,
    /// Legend label.
    pub label: Option<String>,
}

/// Filled axis-aligned rectangles (a 2-D histogram heat map): `(x0, y0, x1, y1, colour)`.
#[derive(Debug, Clone, Default)]
pub struct Cells {
    /// The rectangles.
    pub rects: Vec<(f64, f64, f64, f64, RGBColor)>,
}

/// A scatter of small dots.
#[derive(Debug, Clone)]
pub struct Points {
    /// The points `(x, y)`.
    pub points: Vec<(f64, f64)>,
    /// Colour.
    pub color: RGBColor,
    /// Opacity in `[0, 1]`.
    pub alpha: f64,
    /// Dot radius in pixels.
    pub radius: u32,
}

/// One chart of a figure.
#[derive(Debug, Clone, Default)]
pub struct Panel {
    /// Caption above the chart.
    pub title: String,
    /// x-axis description.
    pub x_label: String,
    /// y-axis description.
    pub y_label: String,
    /// Histogram layers (drawn first).
    pub bars: Vec<Bars>,
    /// Line layers.
    pub lines: Vec<Line>,
    /// Vertical markers.
    pub vlines: Vec<VLine>,
    /// Fixed x range (default: the data's range).
    pub x_range: Option<(f64, f64)>,
    /// Fixed y range (default: the data's range, padded).
    pub y_range: Option<(f64, f64)>,
    /// Where the legend goes.
    pub legend: Legend,
    /// Heat-map cells (drawn first, below everything).
    pub cells: Cells,
    /// Scatter layers (drawn after bars, before lines).
    pub points: Vec<Points>,
    /// The y data are `log₁₀` of the plotted quantity: tick labels show `10^y` (a log-y axis).
    pub y_log10: bool,
}

/// Legend position inside a panel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Legend {
    /// Upper right corner.
    #[default]
    UpperRight,
    /// Upper left corner.
    UpperLeft,
}

impl Panel {
    fn data_ranges(&self) -> ((f64, f64), (f64, f64)) {
        let mut xs = (f64::INFINITY, f64::NEG_INFINITY);
        let mut ys = (f64::INFINITY, f64::NEG_INFINITY);
        let mut take = |x: f64, y: f64| {
            if x.is_finite() && y.is_finite() {
                xs = (xs.0.min(x), xs.1.max(x));
                ys = (ys.0.min(y), ys.1.max(y));
            }
        };
        for b in &self.bars {
            for (i, &h) in b.heights.iter().enumerate() {
                take(b.edges[i], 0.0);
                take(b.edges[i + 1], h);
            }
        }
        for l in &self.lines {
            for &(x, y) in &l.points {
                take(x, y);
            }
        }
        for p in &self.points {
            for &(x, y) in &p.points {
                take(x, y);
            }
        }
        for &(x0, y0, x1, y1, _) in &self.cells.rects {
            take(x0, y0);
            take(x1, y1);
        }
        let fix = |r: (f64, f64)| {
            if !(r.0.is_finite() && r.1.is_finite()) {
                (0.0, 1.0)
            } else if r.1 - r.0 <= 0.0 {
                (r.0 - 0.5, r.1 + 0.5)
            } else {
                r
            }
        };
        let xs = fix(xs);
        let ys = fix(ys);
        let pad = 0.05 * (ys.1 - ys.0);
        let ys = if self.bars.is_empty() {
            (ys.0 - pad, ys.1 + pad)
        } else {
            (ys.0.min(0.0), ys.1 + pad)
        };
        (self.x_range.unwrap_or(xs), self.y_range.unwrap_or(ys))
    }
}

fn err<E: std::fmt::Display>(e: E) -> FigureError {
    FigureError(format!("plotting failed: {e}"))
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    p: &Panel,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let ((x0, x1), (y0, y1)) = p.data_ranges();
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(58)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    let log_label = |v: &f64| {
        let x = 10f64.powf(*v);
        if (1e-3..1e4).contains(&x.abs()) {
            format!("{x:.3}")
        } else {
            format!("{x:.1e}")
        }
    };
    let plain_label = |v: &f64| {
        let a = v.abs();
        if a == 0.0 || (1e-3..1e5).contains(&a) {
            let s = format!("{v:.3}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            if s == "-0" {
                "0".to_string()
            } else {
                s.to_string()
            }
        } else {
            format!("{v:.1e}")
        }
    };
    let y_fmt: &dyn Fn(&f64) -> String = if p.y_log10 { &log_label } else { &plain_label };
    chart
        .configure_mesh()
        .x_desc(&p.x_label)
        .y_desc(&p.y_label)
        .y_label_formatter(y_fmt)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(
            p.cells
                .rects
                .iter()
                .map(|&(x0, y0, x1, y1, c)| Rectangle::new([(x0, y0), (x1, y1)], c.filled())),
        )
        .map_err(err)?;
    let mut any_label = false;
    for b in &p.bars {
        let style = b.color.mix(b.alpha).filled();
        let series = chart
            .draw_series(
                b.heights
                    .iter()
                    .enumerate()
                    .map(|(i, &h)| Rectangle::new([(b.edges[i], 0.0), (b.edges[i + 1], h)], style)),
            )
            .map_err(err)?;
        if let Some(label) = &b.label {
            any_label = true;
            series
                .label(label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], style));
        }
    }
    for s in &p.points {
        let style = s.color.mix(s.alpha).filled();
        let r = s.radius;
        chart
            .draw_series(
                s.points
                    .iter()
                    .filter(|&&(x, y)| (x0..=x1).contains(&x) && (y0..=y1).contains(&y))
                    .map(|&(x, y)| Circle::new((x, y), r, style)),
            )
            .map_err(err)?;
    }
    for l in &p.lines {
        let style = l.color.mix(l.alpha).stroke_width(l.width);
        let series = chart
            .draw_series(LineSeries::new(l.points.iter().copied(), style))
            .map_err(err)?;
        if let Some(label) = &l.label {
            any_label = true;
            series
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], style));
        }
    }
    for v in &p.vlines {
        let style = v.color.stroke_width(2);
        let series = chart
            .draw_series(LineSeries::new(vec![(v.x, y0), (v.x, y1)], style))
            .map_err(err)?;
        if let Some(label) = &v.label {
            any_label = true;
            series
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], style));
        }
    }
    if any_label {
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .position(match p.legend {
                Legend::UpperRight => SeriesLabelPosition::UpperRight,
                Legend::UpperLeft => SeriesLabelPosition::UpperLeft,
            })
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// Draw `panels` side by side into a PNG of `panel_size` pixels per panel.
pub fn draw_row(path: &Path, panels: &[Panel], panel_size: (u32, u32)) -> Result<()> {
    register_font();
    if panels.is_empty() {
        return Err(FigureError("a figure needs at least one panel".into()));
    }
    let width = panel_size.0 * panels.len() as u32;
    let root = BitMapBackend::new(path, (width, panel_size.1)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let areas = root.split_evenly((1, panels.len()));
    for (area, panel) in areas.iter().zip(panels) {
        draw_panel(area, panel)?;
    }
    root.present()
        .map_err(|e| FigureError(format!("cannot write {}: {e}", path.display())))?;
    Ok(())
}

/// Viridis-like colour map: `v ∈ [0, 1]` → colour (linear between 6 anchor colours of viridis).
pub fn viridis(v: f64) -> RGBColor {
    const ANCHORS: [(f64, f64, f64); 6] = [
        (68.0, 1.0, 84.0),
        (65.0, 68.0, 135.0),
        (42.0, 120.0, 142.0),
        (34.0, 168.0, 132.0),
        (122.0, 209.0, 81.0),
        (253.0, 231.0, 37.0),
    ];
    let v = if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = v * (ANCHORS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(ANCHORS.len() - 2);
    let f = pos - i as f64;
    let (a, b) = (ANCHORS[i], ANCHORS[i + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * f).round().clamp(0.0, 255.0) as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// `(x, pdf(x))` at `n` evenly spaced points of `[lo, hi]`.
pub fn curve(lo: f64, hi: f64, n: usize, f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
    let n = n.max(2);
    (0..n)
        .map(|i| {
            let x = lo + (hi - lo) * i as f64 / (n - 1) as f64;
            (x, f(x))
        })
        .collect()
}

/// Density histogram of `samples` on `bins` equal bins of `[lo, hi]` (via
/// `smoluchowski_metrics::Histogram1d`): returns `(edges, densities)` with
/// `density_k = count_k / (n · width)`, `n` counting every sample (so mass outside `[lo, hi]`
/// is missing from the bars, as it is from an exact curve drawn on the same window).
pub fn density_histogram(
    samples: &[f64],
    lo: f64,
    hi: f64,
    bins: usize,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let mut h = smoluchowski_metrics::Histogram1d::new(lo, hi, bins)
        .map_err(|e| FigureError(format!("histogram on [{lo}, {hi}] with {bins} bins: {e}")))?;
    h.fill(samples);
    Ok((h.edges(), h.density()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_png_with_text() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.png");
        let panel = Panel {
            title: "σ test".into(),
            x_label: "x".into(),
            y_label: "density".into(),
            bars: vec![Bars {
                edges: vec![0.0, 1.0, 2.0],
                heights: vec![0.5, 0.5],
                color: palette::DATA,
                alpha: 0.5,
                label: Some("bars".into()),
            }],
            lines: vec![Line {
                points: curve(0.0, 2.0, 10, |x| x / 4.0),
                color: palette::EXACT,
                alpha: 1.0,
                width: 2,
                label: Some("exact".into()),
            }],
            vlines: vec![VLine {
                x: 1.0,
                color: palette::MARK,
                label: None,
            }],
            ..Default::default()
        };
        draw_row(&p, &[panel.clone(), panel], (300, 200)).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(bytes.len() > 2000);
    }

    #[test]
    fn density_histogram_integrates_to_inside_mass() {
        let xs = [0.1, 0.2, 0.6, 0.9, 1.5, -3.0];
        let (e, d) = density_histogram(&xs, 0.0, 1.0, 2).unwrap();
        assert_eq!(e, vec![0.0, 0.5, 1.0]);
        // 2 of 6 in [0, .5), 2 of 6 in [.5, 1): density = 2 / (6 · 0.5)
        assert_eq!(d, vec![2.0 / 3.0, 2.0 / 3.0]);
    }
}
