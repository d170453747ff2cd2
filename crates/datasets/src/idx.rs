//! The IDX format of MNIST (LeCun et al.): a big-endian header — two zero bytes, the element
//! type (`0x08` = unsigned byte, the only type read here), the number of dimensions `k` — then
//! `k` big-endian `u32` sizes, then `∏ sizes` bytes in row-major order. Files may be gzipped
//! (detected by the gzip magic `1f 8b`).

use std::io::Read;
use std::path::Path;

use crate::data_error::DataError;

/// An IDX array of unsigned bytes: its sizes and row-major data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Sizes, outermost first (e.g. `[60000, 28, 28]`).
    pub dims: Vec<usize>,
    /// `∏ dims` bytes, row-major.
    pub data: Vec<u8>,
}

/// The file's bytes, gunzipped if they start with the gzip magic.
pub fn read_maybe_gzipped(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| DataError::format(path, format!("not a valid gzip stream: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses IDX bytes (`path` only names the source in errors): the header must be an unsigned
/// byte array and the data exactly `∏ dims` bytes (a shorter file is reported as truncated).
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray, DataError> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(DataError::format(path, "not an IDX file (bad magic)"));
    }
    if bytes[2] != 0x08 {
        return Err(DataError::format(
            path,
            format!(
                "IDX element type 0x{:02x}; only unsigned bytes (0x08) are read",
                bytes[2]
            ),
        ));
    }
    let k = bytes[3] as usize;
    let header = 4 + 4 * k;
    if bytes.len() < header {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected: header,
            got: bytes.len(),
        });
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| DataError::format(path, format!("IDX sizes {dims:?} overflow")))?;
    let expected = header + n;
    if bytes.len() != expected {
        return Err(if bytes.len() < expected {
            DataError::Truncated {
                path: path.to_path_buf(),
                expected,
                got: bytes.len(),
            }
        } else {
            DataError::format(
                path,
                format!(
                    "{} bytes after the data of sizes {dims:?}",
                    bytes.len() - expected
                ),
            )
        });
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// The IDX array in `path` (raw or gzipped).
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    parse_idx(&read_maybe_gzipped(path)?, path)
}

/// IDX bytes of an unsigned-byte array (the inverse of [`parse_idx`]).
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn round_trips_raw_and_gzipped() {
        let data: Vec<u8> = (0..24).collect();
        let bytes = encode_idx(&[2, 3, 4], &data);
        assert_eq!(bytes.len(), 4 + 12 + 24);
        let a = parse_idx(&bytes, Path::new("x")).unwrap();
        assert_eq!(a.dims, vec![2, 3, 4]);
        assert_eq!(a.data, data);

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes).unwrap();
        std::fs::write(&p, gz.finish().unwrap()).unwrap();
        assert_eq!(read_idx(&p).unwrap(), a);
    }

    #[test]
    fn truncated_and_foreign_files_are_named_errors() {
        let bytes = encode_idx(&[10, 28, 28], &[7; 10 * 784]);
        let e = parse_idx(&bytes[..500], Path::new("d/train-images")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "d/train-images: truncated: expected 7856 bytes, found 500"
        );
        let e = parse_idx(b"PK\x03\x04rest", Path::new("f")).unwrap_err();
        assert!(e.to_string().contains("f: not an IDX file"), "{e}");
        let mut float = bytes.clone();
        float[2] = 0x0d;
        let e = parse_idx(&float, Path::new("f")).unwrap_err();
        assert!(e.to_string().contains("element type 0x0d"), "{e}");
        let mut long = bytes.clone();
        long.push(0);
        assert!(parse_idx(&long, Path::new("f")).is_err());
    }
}
