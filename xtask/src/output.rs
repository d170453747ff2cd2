//! Atomic output directories and the file writers every experiment uses.
//!
//! A run writes into a fresh sibling `<out>.tmp-<pid>`; [`OutputDir::commit`] swaps it into
//! place (`<out>` → `<out>.old-<pid>`, temp → `<out>`, delete old). A run that fails before
//! committing drops its `OutputDir`, which deletes the temp dir: the previous good `<out>` is
//! never touched.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use npyz::WriterBuilder;
use serde::Serialize;

/// A temp directory that becomes the output directory on [`commit`](Self::commit).
#[derive(Debug)]
pub struct OutputDir {
    final_path: PathBuf,
    tmp_path: PathBuf,
    committed: bool,
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "out".into());
    name.push(suffix);
    path.with_file_name(name)
}

impl OutputDir {
    /// Create the temp dir `<final_path>.tmp-<pid>` (and `final_path`'s parent if needed).
    pub fn create(final_path: &Path) -> Result<Self> {
        if let Some(parent) = final_path.parent() {
            if !parent.as_os_str().is_empty() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
        }
        let tmp_path = sibling(final_path, &format!(".tmp-{}", std::process::id()));
        if tmp_path.exists() {
            fs::remove_dir_all(&tmp_path)
                .with_context(|| format!("cannot remove stale {}", tmp_path.display()))?;
        }
        fs::create_dir(&tmp_path)
            .with_context(|| format!("cannot create {}", tmp_path.display()))?;
        Ok(Self {
            final_path: final_path.to_path_buf(),
            tmp_path,
            committed: false,
        })
    }

    /// Where files are written during the run (the temp dir).
    pub fn path(&self) -> &Path {
        &self.tmp_path
    }

    /// Where the results end up.
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Path of `name` inside the temp dir.
    pub fn file(&self, name: &str) -> PathBuf {
        self.tmp_path.join(name)
    }

    /// Swap the finished temp dir into place, replacing any previous results.
    pub fn commit(mut self) -> Result<PathBuf> {
        let old = sibling(&self.final_path, &format!(".old-{}", std::process::id()));
        let had_old = self.final_path.exists();
        if had_old {
            if old.exists() {
                fs::remove_dir_all(&old)
                    .with_context(|| format!("cannot remove stale {}", old.display()))?;
            }
            fs::rename(&self.final_path, &old).with_context(|| {
                format!(
                    "cannot move previous results {} aside",
                    self.final_path.display()
                )
            })?;
        }
        if let Err(e) = fs::rename(&self.tmp_path, &self.final_path) {
            if had_old {
                // Put the previous results back; the temp dir is removed on drop.
                let _ = fs::rename(&old, &self.final_path);
            }
            return Err(e).with_context(|| {
                format!("cannot move results into {}", self.final_path.display())
            });
        }
        self.committed = true;
        if had_old {
            fs::remove_dir_all(&old)
                .with_context(|| format!("cannot remove previous results {}", old.display()))?;
        }
        Ok(self.final_path.clone())
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.tmp_path);
        }
    }
}

/// Write `value` as pretty JSON (with a trailing newline).
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("cannot serialise JSON")?;
    text.push('\n');
    write_text(path, &text)
}

/// Write a text file.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Write a `.npy` array (float64 for `f64` data, float32 for `f32`) of the given `shape` (C order;
/// `data.len()` = product of `shape`).
///
/// `shape = [n]` gives a vector, `[n, d]` a row-major matrix: `np.load(path)` returns exactly that.
pub fn write_npy<T: npyz::AutoSerialize + Copy>(
    path: &Path,
    shape: &[usize],
    data: &[T],
) -> Result<()> {
    let expected: usize = shape.iter().product();
    anyhow::ensure!(
        expected == data.len(),
        "write_npy {}: shape {shape:?} needs {expected} values, got {}",
        path.display(),
        data.len()
    );
    let file =
        fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = BufWriter::new(file);
    let shape_u64: Vec<u64> = shape.iter().map(|&s| s as u64).collect();
    let mut writer = npyz::WriteOptions::<T>::new()
        .default_dtype()
        .shape(&shape_u64)
        .writer(&mut out)
        .begin_nd()
        .with_context(|| format!("cannot write {}", path.display()))?;
    writer
        .extend(data.iter().copied())
        .with_context(|| format!("cannot write {}", path.display()))?;
    writer
        .finish()
        .with_context(|| format!("cannot write {}", path.display()))?;
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_replaces_and_drop_cleans() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("res");
        fs::create_dir(&out).unwrap();
        fs::write(out.join("old.txt"), "old").unwrap();

        // A failed run: dropped without commit, old results untouched, temp gone.
        {
            let dir = OutputDir::create(&out).unwrap();
            write_text(&dir.file("new.txt"), "new").unwrap();
            assert!(dir.path().exists());
        }
        assert_eq!(fs::read_to_string(out.join("old.txt")).unwrap(), "old");
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1);

        // A good run replaces everything.
        let dir = OutputDir::create(&out).unwrap();
        write_text(&dir.file("new.txt"), "new").unwrap();
        dir.commit().unwrap();
        assert!(!out.join("old.txt").exists());
        assert_eq!(fs::read_to_string(out.join("new.txt")).unwrap(), "new");
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1);
    }

    #[test]
    fn npy_header_and_payload() {
        let root = tempfile::tempdir().unwrap();
        let p = root.path().join("a.npy");
        write_npy(&p, &[2, 3], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.5]).unwrap();
        let bytes = fs::read(&p).unwrap();
        assert_eq!(&bytes[..6], b"\x93NUMPY");
        let header = String::from_utf8_lossy(&bytes[10..]);
        assert!(header.contains("'descr': '<f8'"), "{header}");
        assert!(header.contains("'shape': (2, 3, )"), "{header}");
        assert!(header.contains("'fortran_order': False"), "{header}");
        let payload = &bytes[bytes.len() - 48..];
        assert_eq!(&payload[40..], &5.5f64.to_le_bytes());
        // Round trip through npyz's reader.
        let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
        assert_eq!(npy.shape(), &[2, 3]);
        let v: Vec<f64> = npy.into_vec().unwrap();
        assert_eq!(v, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.5]);
        assert!(write_npy(&p, &[2, 2], &[1.0]).is_err());
    }
}
