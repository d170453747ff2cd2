//! Grids of grey-scale images (sample grids, noising and reverse-process strips).
//!
//! [`tile_gray`] lays `rows × cols` images of `side × side` pixels (values in `[0, 1]`, row-major
//! per image, images in row-major grid order) into one 8-bit canvas with `pad` pixels of
//! separation — the raw tile a TensorBoard image summary or a PNG writer takes.
//! [`image_grid`] draws that canvas into a PNG with a title and optional row and column labels.

use std::path::Path;

use plotters::prelude::*;

use crate::{err, register_font, FigureError, Result};

/// An 8-bit grey-scale canvas: `pixels[y·width + x]`, 0 = black, 255 = white.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrayCanvas {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major pixels.
    pub pixels: Vec<u8>,
}

/// The 8-bit grey level of a value in `[0, 1]`: `round(255·clamp(v, 0, 1))` (NaN → 0).
pub fn gray_level(v: f32) -> u8 {
    if v.is_nan() {
        return 0;
    }
    (255.0 * v.clamp(0.0, 1.0)).round() as u8
}

/// Tiles `rows × cols` images (`side × side` each, values in `[0, 1]`, clamped; the `r·cols + c`-th
/// image at grid cell `(r, c)`; missing images stay blank) into one canvas with `pad` pixels of
/// mid-grey (128) between and around cells: `width = cols·(side + pad) + pad`,
/// `height = rows·(side + pad) + pad`.
pub fn tile_gray(images: &[f32], side: usize, rows: usize, cols: usize, pad: usize) -> GrayCanvas {
    let width = cols * (side + pad) + pad;
    let height = rows * (side + pad) + pad;
    let mut pixels = vec![128u8; width * height];
    let per = side * side;
    for (k, img) in images
        .chunks_exact(per.max(1))
        .enumerate()
        .take(rows * cols)
    {
        let (r, c) = (k / cols, k % cols);
        let (y0, x0) = (pad + r * (side + pad), pad + c * (side + pad));
        for (i, row) in img.chunks_exact(side).enumerate() {
            let at = (y0 + i) * width + x0;
            for (p, &v) in pixels[at..at + side].iter_mut().zip(row) {
                *p = gray_level(v);
            }
        }
    }
    GrayCanvas {
        width,
        height,
        pixels,
    }
}

/// Labels around an image grid.
#[derive(Debug, Clone, Default)]
pub struct GridLabels {
    /// Figure title (top).
    pub title: String,
    /// One label per row (left), or empty.
    pub rows: Vec<String>,
    /// One label per column (top), or empty.
    pub cols: Vec<String>,
}

/// Draws a `rows × cols` grid of images (see [`tile_gray`]) into a PNG at `path`, each image
/// pixel as a `scale × scale` block, with the labels of `labels`.
#[allow(clippy::too_many_arguments)]
pub fn image_grid(
    path: &Path,
    images: &[f32],
    side: usize,
    rows: usize,
    cols: usize,
    scale: usize,
    labels: &GridLabels,
) -> Result<()> {
    register_font();
    if side == 0 || rows == 0 || cols == 0 || scale == 0 {
        return Err(FigureError(format!(
            "{}: an image grid needs side, rows, cols and scale ≥ 1",
            path.display()
        )));
    }
    let canvas = tile_gray(images, side, rows, cols, 2);
    let left = if labels.rows.is_empty() { 8 } else { 110 };
    let top = 40 + if labels.cols.is_empty() { 0 } else { 24 };
    let (w, h) = (canvas.width * scale, canvas.height * scale);
    let size = ((left + w + 8) as u32, (top + h + 8) as u32);
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    root.draw_text(
        &labels.title,
        &("sans-serif", 20).into_font().color(&BLACK),
        (8, 8),
    )
    .map_err(err)?;
    let area = root.margin(top as u32, 8, left as u32, 8);
    for y in 0..canvas.height {
        for x in 0..canvas.width {
            let g = canvas.pixels[y * canvas.width + x];
            let (px, py) = ((x * scale) as i32, (y * scale) as i32);
            let s = scale as i32;
            area.draw(&Rectangle::new(
                [(px, py), (px + s, py + s)],
                RGBColor(g, g, g).filled(),
            ))
            .map_err(err)?;
        }
    }
    let font = ("sans-serif", 15).into_font().color(&BLACK);
    let cell = ((side + 2) * scale) as i32;
    for (c, label) in labels.cols.iter().enumerate().take(cols) {
        let x = left as i32 + 2 * scale as i32 + c as i32 * cell;
        root.draw_text(label, &font, (x, top as i32 - 20))
            .map_err(err)?;
    }
    for (r, label) in labels.rows.iter().enumerate().take(rows) {
        let y = top as i32 + r as i32 * cell + cell / 2 - 8;
        root.draw_text(label, &font, (8, y)).map_err(err)?;
    }
    root.present()
        .map_err(|e| FigureError(format!("cannot write {}: {e}", path.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_images_in_grid_order_with_padding() {
        // Two 2×2 images in a 1×3 grid (third cell blank), pad 1.
        let imgs = [0.0, 1.0, 0.5, 2.0, 1.0, 1.0, 1.0, f32::NAN];
        let c = tile_gray(&imgs, 2, 1, 3, 1);
        assert_eq!((c.width, c.height), (10, 4));
        let row1: Vec<u8> = c.pixels[10..20].to_vec();
        assert_eq!(row1, vec![128, 0, 255, 128, 255, 255, 128, 128, 128, 128]);
        let row2: Vec<u8> = c.pixels[20..30].to_vec();
        assert_eq!(row2, vec![128, 128, 255, 128, 255, 0, 128, 128, 128, 128]);
        assert!(c.pixels[..10].iter().all(|&p| p == 128));
    }

    #[test]
    fn writes_a_png_grid() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("grid.png");
        let imgs: Vec<f32> = (0..4 * 9).map(|i| (i % 7) as f32 / 6.0).collect();
        let labels = GridLabels {
            title: "test".into(),
            rows: vec!["a".into(), "b".into()],
            cols: vec!["t=0".into(), "t=1".into()],
        };
        image_grid(&p, &imgs, 3, 2, 2, 4, &labels).unwrap();
        assert!(std::fs::metadata(&p).unwrap().len() > 100);
        let bad = image_grid(&p, &imgs, 0, 2, 2, 4, &labels).unwrap_err();
        assert!(bad.0.contains("grid.png"), "{bad}");
    }
}
