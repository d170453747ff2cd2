//! Fixed-width histograms in one and two dimensions.

use crate::error::MetricsError;

fn check_range(name_lo: &str, lo: f64, name_hi: &str, hi: f64) -> Result<(), MetricsError> {
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(MetricsError(format!(
            "histogram range needs finite {name_lo} < {name_hi}, got {name_lo} = {lo}, {name_hi} = {hi}"
        )));
    }
    Ok(())
}

fn check_bins(name: &str, bins: usize) -> Result<(), MetricsError> {
    if bins == 0 {
        return Err(MetricsError(format!(
            "{name} must be at least 1, got {name} = 0"
        )));
    }
    Ok(())
}

/// Bin index of `x` in `bins` equal bins over `[lo, hi]`: bin `i` is `[lo + iw, lo + (i+1)w)`,
/// the last bin also holds `x = hi` (as NumPy). `None` for out-of-range or NaN.
#[inline]
fn bin_index(x: f64, lo: f64, hi: f64, bins: usize) -> Option<usize> {
    if !(x >= lo && x <= hi) {
        return None;
    }
    let i = ((x - lo) / (hi - lo) * bins as f64) as usize;
    Some(i.min(bins - 1))
}

/// Histogram with `bins` equal-width bins over `[lo, hi]`.
///
/// Bin `i` covers `[lo + i·w, lo + (i+1)·w)` with `w = (hi − lo)/bins`; the last bin is
/// closed on the right. Values below `lo`, above `hi`, or NaN are counted in
/// [`Histogram1d::outside`] so that [`Histogram1d::density`] is normalised by the total
/// number of values filled.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram1d {
    /// Lower edge of the first bin.
    pub lo: f64,
    /// Upper edge of the last bin.
    pub hi: f64,
    /// In-range counts per bin.
    pub counts: Vec<u64>,
    /// Number of values filled that fell outside `[lo, hi]` (including NaN).
    pub outside: u64,
}

impl Histogram1d {
    /// Empty histogram; errors unless `lo < hi` are finite and `bins ≥ 1`.
    pub fn new(lo: f64, hi: f64, bins: usize) -> Result<Self, MetricsError> {
        check_range("lo", lo, "hi", hi)?;
        check_bins("bins", bins)?;
        Ok(Self {
            lo,
            hi,
            counts: vec![0; bins],
            outside: 0,
        })
    }

    /// Number of bins.
    pub fn bins(&self) -> usize {
        self.counts.len()
    }

    /// Bin width `w = (hi − lo)/bins`.
    pub fn bin_width(&self) -> f64 {
        (self.hi - self.lo) / self.bins() as f64
    }

    /// Adds every value of `values`.
    pub fn fill(&mut self, values: &[f64]) {
        let bins = self.bins();
        for &x in values {
            match bin_index(x, self.lo, self.hi, bins) {
                Some(i) => self.counts[i] += 1,
                None => self.outside += 1,
            }
        }
    }

    /// Total number of values filled (in range and outside).
    pub fn total(&self) -> u64 {
        self.counts.iter().sum::<u64>() + self.outside
    }

    /// Density estimate `ρ_i = c_i / (N · w)` with `N` = all values filled (including those
    /// outside), so `Σ ρ_i w = (in-range count)/N`. All zeros if nothing was filled.
    pub fn density(&self) -> Vec<f64> {
        let total = self.total();
        if total == 0 {
            return vec![0.0; self.bins()];
        }
        let norm = 1.0 / (total as f64 * self.bin_width());
        self.counts.iter().map(|&c| c as f64 * norm).collect()
    }

    /// Bin centres `lo + (i + ½)·w`.
    pub fn centers(&self) -> Vec<f64> {
        let w = self.bin_width();
        (0..self.bins())
            .map(|i| self.lo + (i as f64 + 0.5) * w)
            .collect()
    }

    /// Bin edges `lo + i·w`, `i = 0..=bins` (the last is exactly `hi`).
    pub fn edges(&self) -> Vec<f64> {
        let w = self.bin_width();
        let mut e: Vec<f64> = (0..self.bins()).map(|i| self.lo + i as f64 * w).collect();
        e.push(self.hi);
        e
    }
}

/// Histogram over the rectangle `[x_lo, x_hi] × [y_lo, y_hi]` with `x_bins × y_bins` equal
/// cells. `counts` is row-major with rows indexed by the x bin: the cell `(i, j)` (x bin `i`,
/// y bin `j`) is `counts[i · y_bins + j]` (NumPy's `histogram2d(x, y)[0]` layout).
/// Points with either coordinate outside its range, or NaN, are counted in `outside`.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram2d {
    /// Lower edge in x.
    pub x_lo: f64,
    /// Upper edge in x.
    pub x_hi: f64,
    /// Lower edge in y.
    pub y_lo: f64,
    /// Upper edge in y.
    pub y_hi: f64,
    /// Number of bins in x (rows).
    pub x_bins: usize,
    /// Number of bins in y (columns).
    pub y_bins: usize,
    /// In-range counts, row-major `x_bins × y_bins`.
    pub counts: Vec<u64>,
    /// Number of points outside the rectangle (including NaN coordinates).
    pub outside: u64,
}

impl Histogram2d {
    /// Empty histogram; errors unless both ranges are finite and increasing and both bin
    /// counts are at least 1.
    pub fn new(
        x_lo: f64,
        x_hi: f64,
        x_bins: usize,
        y_lo: f64,
        y_hi: f64,
        y_bins: usize,
    ) -> Result<Self, MetricsError> {
        check_range("x_lo", x_lo, "x_hi", x_hi)?;
        check_range("y_lo", y_lo, "y_hi", y_hi)?;
        check_bins("x_bins", x_bins)?;
        check_bins("y_bins", y_bins)?;
        Ok(Self {
            x_lo,
            x_hi,
            y_lo,
            y_hi,
            x_bins,
            y_bins,
            counts: vec![0; x_bins * y_bins],
            outside: 0,
        })
    }

    /// Cell widths `(w_x, w_y)`.
    pub fn bin_widths(&self) -> (f64, f64) {
        (
            (self.x_hi - self.x_lo) / self.x_bins as f64,
            (self.y_hi - self.y_lo) / self.y_bins as f64,
        )
    }

    /// Adds the points of a row-major `n × 2` slice `[x₀, y₀, x₁, y₁, …]`.
    ///
    /// # Panics
    /// If `points.len()` is odd.
    pub fn fill(&mut self, points: &[f64]) {
        assert!(
            points.len().is_multiple_of(2),
            "Histogram2d::fill: points must be row-major n×2, got length {}",
            points.len()
        );
        for p in points.chunks_exact(2) {
            match (
                bin_index(p[0], self.x_lo, self.x_hi, self.x_bins),
                bin_index(p[1], self.y_lo, self.y_hi, self.y_bins),
            ) {
                (Some(i), Some(j)) => self.counts[i * self.y_bins + j] += 1,
                _ => self.outside += 1,
            }
        }
    }

    /// Total number of points filled (in range and outside).
    pub fn total(&self) -> u64 {
        self.counts.iter().sum::<u64>() + self.outside
    }

    /// Density `ρ_ij = c_ij / (N · w_x · w_y)` with `N` = all points filled, so
    /// `Σ ρ_ij w_x w_y` is the in-range fraction. Row-major like `counts`.
    pub fn density(&self) -> Vec<f64> {
        let total = self.total();
        if total == 0 {
            return vec![0.0; self.counts.len()];
        }
        let (wx, wy) = self.bin_widths();
        let norm = 1.0 / (total as f64 * wx * wy);
        self.counts.iter().map(|&c| c as f64 * norm).collect()
    }

    /// Cell centres as a row-major `(x_bins·y_bins) × 2` slice `[x, y, …]`, same order as
    /// `counts`.
    pub fn centers(&self) -> Vec<f64> {
        let (wx, wy) = self.bin_widths();
        let mut out = Vec::with_capacity(2 * self.counts.len());
        for i in 0..self.x_bins {
            for j in 0..self.y_bins {
                out.push(self.x_lo + (i as f64 + 0.5) * wx);
                out.push(self.y_lo + (j as f64 + 0.5) * wy);
            }
        }
        out
    }

    /// Centres of the x bins.
    pub fn x_centers(&self) -> Vec<f64> {
        let (wx, _) = self.bin_widths();
        (0..self.x_bins)
            .map(|i| self.x_lo + (i as f64 + 0.5) * wx)
            .collect()
    }

    /// Centres of the y bins.
    pub fn y_centers(&self) -> Vec<f64> {
        let (_, wy) = self.bin_widths();
        (0..self.y_bins)
            .map(|j| self.y_lo + (j as f64 + 0.5) * wy)
            .collect()
    }
}
