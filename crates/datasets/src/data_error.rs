//! Errors of data files: each names the file and what was expected of it.

use std::fmt;
use std::path::{Path, PathBuf};

/// A data file that is missing, unreadable, truncated, corrupt, or could not be fetched.
#[derive(Debug)]
pub enum DataError {
    /// The file does not exist.
    Missing {
        /// The file looked for.
        path: PathBuf,
        /// Its expected SHA-256 (hex).
        sha256: String,
    },
    /// Reading or writing failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Shorter than its header says.
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes the header implies.
        expected: usize,
        /// Bytes found.
        got: usize,
    },
    /// The content's SHA-256 is not the expected one.
    HashMismatch {
        /// The file.
        path: PathBuf,
        /// Expected SHA-256 (hex).
        expected: String,
        /// SHA-256 of what was found (hex).
        got: String,
    },
    /// Not in the expected format.
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Fetching through the package registry failed.
    Fetch {
        /// The command or step that failed.
        what: String,
        /// Its message.
        detail: String,
    },
}

impl DataError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn format(path: &Path, what: impl Into<String>) -> Self {
        DataError::Format {
            path: path.to_path_buf(),
            what: what.into(),
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::Missing { path, sha256 } => write!(
                f,
                "{}: missing (expected a file with SHA-256 {sha256})",
                path.display()
            ),
            DataError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            DataError::Truncated {
                path,
                expected,
                got,
            } => write!(
                f,
                "{}: truncated: expected {expected} bytes, found {got}",
                path.display()
            ),
            DataError::HashMismatch {
                path,
                expected,
                got,
            } => write!(
                f,
                "{}: SHA-256 mismatch: expected {expected}, found {got} (corrupt or a different file)",
                path.display()
            ),
            DataError::Format { path, what } => write!(f, "{}: {what}", path.display()),
            DataError::Fetch { what, detail } => write!(f, "fetching {what} failed: {detail}"),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
