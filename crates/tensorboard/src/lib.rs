//! TensorBoard event files, so `tensorboard --logdir DIR` shows a live training run: scalars
//! (loss, learning rate, gradient norm, …) and images (e.g. a grid of samples).
//!
//! [`SummaryWriter`] appends to `DIR/events.out.tfevents.<unix secs>.<hostname>` a sequence of
//! TFRecords, each
//!
//! ```text
//! u64 LE length n | u32 LE masked_crc32c(length bytes) | n bytes data | u32 LE masked_crc32c(data)
//! ```
//!
//! with `masked_crc32c(b) = ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2³²)`, `c = CRC32C(b)`.
//! Each record's data is a serialised `tensorflow.Event` protobuf, encoded by hand (the few
//! fields used): the first `Event { wall_time, file_version: "brain.Event:2" }`, then
//! `Event { wall_time, step, summary: Summary { value: [Value { tag, simple_value | image }] } }`
//! with `image = Summary.Image { height, width, colorspace, encoded_image_string (PNG) }`.
//! Every write is flushed, so a running `tensorboard` sees it.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Error of a [`SummaryWriter`]: file system trouble (with the path) or bad input (naming it).
#[derive(Debug)]
pub enum TbError {
    /// Creating, writing or flushing the file at the path failed.
    Io(PathBuf, std::io::Error),
    /// An argument is invalid: the message names it and its value.
    Invalid(String),
}

impl fmt::Display for TbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TbError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            TbError::Invalid(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for TbError {}

/// `CRC32C` of `data`, masked as TFRecord does: `((c >> 15) | (c << 17)) + 0xa282ead8`.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    // (c >> 15) | (c << 17) on 32 bits is a right rotation by 15.
    crc32c::crc32c(data)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

/// One TFRecord: `len (u64 LE) | masked CRC of len | data | masked CRC of data`.
pub fn tf_record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

/// Protobuf wire encoding of the few messages used (proto3: zero scalars outside a `oneof`
/// are omitted, as the reference serialiser does).
mod proto {
    pub(crate) fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
        varint(out, ((field as u64) << 3) | wire as u64);
    }
    pub(crate) fn uint(out: &mut Vec<u8>, field: u32, v: u64) {
        if v != 0 {
            key(out, field, 0);
            varint(out, v);
        }
    }
    pub(crate) fn bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
        key(out, field, 2);
        varint(out, b.len() as u64);
        out.extend_from_slice(b);
    }
    pub(crate) fn double(out: &mut Vec<u8>, field: u32, v: f64) {
        if v != 0.0 {
            key(out, field, 1);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    /// A `float` inside a `oneof` (always written).
    pub(crate) fn float_oneof(out: &mut Vec<u8>, field: u32, v: f32) {
        key(out, field, 5);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// `tensorflow.Event { wall_time = 1, step = 2, file_version = 3 }` (the file header event).
pub fn file_version_event(wall_time: f64) -> Vec<u8> {
    let mut e = Vec::new();
    proto::double(&mut e, 1, wall_time);
    proto::bytes(&mut e, 3, b"brain.Event:2");
    e
}

/// `Event { wall_time = 1, step = 2, summary = 5 }` around one serialised `Summary.Value`.
fn summary_event(wall_time: f64, step: i64, value: &[u8]) -> Vec<u8> {
    let mut summary = Vec::new();
    proto::bytes(&mut summary, 1, value); // Summary.value (repeated)
    let mut e = Vec::new();
    proto::double(&mut e, 1, wall_time);
    proto::uint(&mut e, 2, step as u64); // int64: two's complement varint
    proto::bytes(&mut e, 5, &summary);
    e
}

/// The `Event` of a scalar: `Summary.Value { tag = 1, simple_value = 2 }`.
pub fn scalar_event(wall_time: f64, step: i64, tag: &str, value: f32) -> Vec<u8> {
    let mut v = Vec::new();
    proto::bytes(&mut v, 1, tag.as_bytes());
    proto::float_oneof(&mut v, 2, value);
    summary_event(wall_time, step, &v)
}

/// The `Event` of an image: `Summary.Value { tag = 1, image = 4 }`,
/// `Summary.Image { height = 1, width = 2, colorspace = 3, encoded_image_string = 4 }`.
pub fn image_event(
    wall_time: f64,
    step: i64,
    tag: &str,
    width: u32,
    height: u32,
    colorspace: u32,
    png: &[u8],
) -> Vec<u8> {
    let mut img = Vec::new();
    proto::uint(&mut img, 1, height as u64);
    proto::uint(&mut img, 2, width as u64);
    proto::uint(&mut img, 3, colorspace as u64);
    proto::bytes(&mut img, 4, png);
    let mut v = Vec::new();
    proto::bytes(&mut v, 1, tag.as_bytes());
    proto::bytes(&mut v, 4, &img);
    summary_event(wall_time, step, &v)
}

/// PNG bytes of 8-bit pixels, row-major, `channels` = 1 (gray), 3 (RGB) or 4 (RGBA) per pixel;
/// `pixels.len()` must be `width · height · channels`.
pub fn encode_png(
    width: u32,
    height: u32,
    channels: u32,
    pixels: &[u8],
) -> Result<Vec<u8>, TbError> {
    let color = match channels {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        4 => png::ColorType::Rgba,
        c => {
            return Err(TbError::Invalid(format!(
                "image channels {c}: must be 1, 3 or 4"
            )))
        }
    };
    if width == 0 || height == 0 {
        return Err(TbError::Invalid(format!(
            "image size {width}x{height}: width and height must be positive"
        )));
    }
    let want = width as usize * height as usize * channels as usize;
    if pixels.len() != want {
        return Err(TbError::Invalid(format!(
            "image pixels: {} bytes, expected width·height·channels = {width}·{height}·{channels} = {want}",
            pixels.len()
        )));
    }
    let mut buf = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut buf, width, height);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        let png_err = |e: png::EncodingError| TbError::Invalid(format!("PNG encoding: {e}"));
        let mut w = enc.write_header().map_err(png_err)?;
        w.write_image_data(pixels).map_err(png_err)?;
        w.finish().map_err(png_err)?;
    }
    Ok(buf)
}

/// A grid of square gray images for [`SummaryWriter::image_gray`]: `images` holds `n` images
/// of `side × side` values row-major, mapped linearly from `[lo, hi]` to `0..=255` (clamped);
/// `cols` per row, one pixel of black between them. Returns `(width, height, pixels)`.
pub fn gray_grid(
    images: &[f32],
    side: usize,
    cols: usize,
    lo: f32,
    hi: f32,
) -> Result<(u32, u32, Vec<u8>), TbError> {
    if side == 0 || cols == 0 || images.is_empty() || !images.len().is_multiple_of(side * side) {
        return Err(TbError::Invalid(format!(
            "gray_grid: {} values, side {side}, cols {cols}: need a positive multiple of side² and cols ≥ 1",
            images.len()
        )));
    }
    if !(lo.is_finite() && hi.is_finite() && hi > lo) {
        return Err(TbError::Invalid(format!(
            "gray_grid: range [{lo}, {hi}]: must be finite with hi > lo"
        )));
    }
    let n = images.len() / (side * side);
    let cols = cols.min(n);
    let rows = n.div_ceil(cols);
    let (w, h) = (cols * (side + 1) - 1, rows * (side + 1) - 1);
    let mut px = vec![0u8; w * h];
    for (k, img) in images.chunks(side * side).enumerate() {
        let (r0, c0) = ((k / cols) * (side + 1), (k % cols) * (side + 1));
        for (i, row) in img.chunks(side).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                let u = ((v - lo) / (hi - lo)).clamp(0.0, 1.0);
                let u = if u.is_nan() { 0.0 } else { u }; // NaN pixels show black
                px[(r0 + i) * w + c0 + j] = (u * 255.0).round() as u8;
            }
        }
    }
    Ok((w as u32, h as u32, px))
}

/// Writes a TensorBoard event file (like PyTorch's `SummaryWriter`): scalars and images,
/// each record flushed at once.
#[derive(Debug)]
pub struct SummaryWriter {
    path: PathBuf,
    file: File,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn hostname() -> String {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let h: String = h
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if h.is_empty() {
        "localhost".into()
    } else {
        h
    }
}

impl SummaryWriter {
    /// Creates `logdir` (and parents) and a new event file
    /// `events.out.tfevents.<unix secs>.<hostname>` in it (with `.<pid>.<k>` appended if that
    /// name is taken), starting with the file-version event.
    pub fn new(logdir: impl AsRef<Path>) -> Result<Self, TbError> {
        let dir = logdir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| TbError::Io(dir.to_path_buf(), e))?;
        let wall = now();
        let base = format!("events.out.tfevents.{}.{}", wall as u64, hostname());
        let mut k = 0u32;
        let (path, file) = loop {
            let name = if k == 0 {
                base.clone()
            } else {
                format!("{base}.{}.{k}", std::process::id())
            };
            let path = dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => break (path, f),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && k < 1000 => k += 1,
                Err(e) => return Err(TbError::Io(path, e)),
            }
        };
        let mut w = SummaryWriter { path, file };
        w.write_event(&file_version_event(wall))?;
        Ok(w)
    }

    /// The event file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one serialised `Event` as a TFRecord and flushes.
    pub fn write_event(&mut self, event: &[u8]) -> Result<(), TbError> {
        self.file
            .write_all(&tf_record(event))
            .and_then(|_| self.file.flush())
            .map_err(|e| TbError::Io(self.path.clone(), e))
    }

    /// Logs scalar `value` under `tag` at `step` (shown as a curve).
    pub fn scalar(&mut self, tag: &str, step: i64, value: f32) -> Result<(), TbError> {
        check_tag(tag)?;
        self.write_event(&scalar_event(now(), step, tag, value))
    }

    /// Logs a gray image of `width × height` 8-bit pixels (row-major) under `tag` at `step`.
    pub fn image_gray(
        &mut self,
        tag: &str,
        step: i64,
        width: u32,
        height: u32,
        pixels: &[u8],
    ) -> Result<(), TbError> {
        self.image(tag, step, width, height, 1, pixels)
    }

    /// Logs an RGB image of `width × height` pixels (row-major, `r, g, b` bytes per pixel).
    pub fn image_rgb(
        &mut self,
        tag: &str,
        step: i64,
        width: u32,
        height: u32,
        pixels: &[u8],
    ) -> Result<(), TbError> {
        self.image(tag, step, width, height, 3, pixels)
    }

    fn image(
        &mut self,
        tag: &str,
        step: i64,
        width: u32,
        height: u32,
        channels: u32,
        pixels: &[u8],
    ) -> Result<(), TbError> {
        check_tag(tag)?;
        let png = encode_png(width, height, channels, pixels)?;
        let ev = image_event(now(), step, tag, width, height, channels, &png);
        self.write_event(&ev)
    }

    /// Flushes the file (every write already does; for symmetry with PyTorch's writer).
    pub fn flush(&mut self) -> Result<(), TbError> {
        self.file
            .flush()
            .map_err(|e| TbError::Io(self.path.clone(), e))
    }
}

fn check_tag(tag: &str) -> Result<(), TbError> {
    if tag.is_empty() {
        return Err(TbError::Invalid("tag \"\": must not be empty".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// Known CRC32C test vector (RFC 3720 B.4: 32 bytes of zeros → 0x8a9136aa), and its mask
    /// by TensorBoard's `record_writer.masked_crc32c(bytes(32))` = 0x0fd7fffa.
    #[test]
    fn crc32c_matches_the_standard_vector() {
        assert_eq!(crc32c::crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(masked_crc32c(&[0u8; 32]), 0x0fd7_fffa);
    }

    /// Bytes of known records, computed once in Python with tensorboard 2.21.0's own protobuf
    /// (`event_pb2.Event(...).SerializeToString()`) and TFRecord writer
    /// (`tensorboard.summary.writer.record_writer.RecordWriter`); see
    /// `benches/peer/read_events.py --pin`.
    #[test]
    fn records_match_tensorboards_own_encoding() {
        assert_eq!(
            hex(&tf_record(&file_version_event(1.5))),
            PIN_VERSION,
            "file version record"
        );
        assert_eq!(
            hex(&tf_record(&scalar_event(1.5, 7, "loss", 0.25))),
            PIN_SCALAR,
            "scalar record"
        );
        assert_eq!(
            hex(&tf_record(&scalar_event(2.0, -3, "lr", -1e-3))),
            PIN_SCALAR_NEG,
            "scalar record, negative step"
        );
        assert_eq!(
            hex(&tf_record(&image_event(
                1.5, 300, "samples", 2, 1, 1, b"\x89PNG"
            ))),
            PIN_IMAGE,
            "image record"
        );
    }

    const PIN_VERSION: &str =
        "1800000000000000a37f4b2209000000000000f83f1a0d627261696e2e4576656e743a322a28646c";
    const PIN_SCALAR: &str =
        "1a00000000000000129bd82d09000000000000f83f10072a0d0a0b0a046c6f7373150000803ec9d07b8d";
    const PIN_SCALAR_NEG: &str = "2100000000000000017becf609000000000000004010fdffffffffffffffff012a0b0a090a026c72156f1283ba34818392";
    const PIN_IMAGE: &str = "2700000000000000bbe1b14609000000000000f83f10ac022a190a170a0773616d706c6573220c080110021801220489504e47c946979c";

    #[test]
    fn writer_creates_a_file_of_valid_records() {
        let dir = tempfile::tempdir().unwrap();
        let logdir = dir.path().join("run/a");
        let mut w = SummaryWriter::new(&logdir).unwrap();
        w.scalar("loss", 1, 0.5).unwrap();
        let (gw, gh, px) = gray_grid(&[0.0, 1.0, -1.0, 0.5], 2, 1, -1.0, 1.0).unwrap();
        assert_eq!((gw, gh), (2, 2));
        assert_eq!(px, vec![128, 255, 0, 191]);
        w.image_gray("grid", 1, gw, gh, &px).unwrap();
        w.image_rgb("rgb", 1, 1, 1, &[1, 2, 3]).unwrap();
        w.flush().unwrap();
        let name = w.path().file_name().unwrap().to_str().unwrap().to_owned();
        assert!(name.starts_with("events.out.tfevents."), "{name}");
        // A second writer in the same second gets another file.
        let w2 = SummaryWriter::new(&logdir).unwrap();
        assert_ne!(w2.path(), w.path());

        // Walk the records, checking both CRCs of each.
        let bytes = std::fs::read(w.path()).unwrap();
        let (mut i, mut n) = (0, 0);
        while i < bytes.len() {
            let len_b = &bytes[i..i + 8];
            let len = u64::from_le_bytes(len_b.try_into().unwrap()) as usize;
            let crc = u32::from_le_bytes(bytes[i + 8..i + 12].try_into().unwrap());
            assert_eq!(crc, masked_crc32c(len_b));
            let data = &bytes[i + 12..i + 12 + len];
            let crc = u32::from_le_bytes(bytes[i + 12 + len..i + 16 + len].try_into().unwrap());
            assert_eq!(crc, masked_crc32c(data));
            if n == 0 {
                assert!(data.ends_with(b"brain.Event:2"));
            }
            i += 16 + len;
            n += 1;
        }
        assert_eq!((i, n), (bytes.len(), 4));
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SummaryWriter::new(dir.path()).unwrap();
        let err = w.image_gray("g", 0, 3, 2, &[0; 5]).unwrap_err().to_string();
        assert!(err.contains("5 bytes") && err.contains("= 6"), "{err}");
        let err = w.image_gray("g", 0, 0, 2, &[]).unwrap_err().to_string();
        assert!(err.contains("0x2"), "{err}");
        let err = w.scalar("", 0, 1.0).unwrap_err().to_string();
        assert!(err.contains("tag"), "{err}");
        let err = gray_grid(&[0.0; 5], 2, 1, 0.0, 1.0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("5 values"), "{err}");
        let err = gray_grid(&[0.0; 4], 2, 1, 1.0, 1.0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("range [1, 1]"), "{err}");
        // A log directory that is a file: an I/O error naming the path.
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let err = SummaryWriter::new(&file).unwrap_err().to_string();
        assert!(err.contains(file.to_str().unwrap()), "{err}");
    }
}
