//! Typed errors of the engine.
//!
//! [`Error`] is what the engine's operations return: I/O and corruption errors carry the file path
//! and byte offset; nothing here panics on bad bytes. Per-item problems of a write batch are not
//! errors of the call: they are reported as [`Rejection`]s in the [`crate::ApplyReport`], and the
//! rest of the batch is applied.

use std::path::PathBuf;

use crate::labels::LabelError;
use crate::matcher::MatcherError;

/// Errors of engine operations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system error on a file or directory.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file's bytes do not decode: bad magic, checksum mismatch, truncation, out-of-range reference.
    #[error("corrupt file {path} at offset {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// A file written by a format version this build does not read.
    #[error(
        "unsupported format version {version} of {path} (this build reads version {supported})"
    )]
    UnsupportedVersion {
        path: PathBuf,
        version: u16,
        supported: u16,
    },
    /// A tenant name that is not allowed.
    #[error("invalid tenant name {0:?}: use 1 to 150 characters of [A-Za-z0-9!_.*'()-], not \".\" or \"..\"")]
    InvalidTenant(String),
    /// A label matcher that does not compile.
    #[error(transparent)]
    Matcher(#[from] MatcherError),
    /// Options that contradict each other.
    #[error("invalid options: {0}")]
    InvalidOptions(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Error {
        Error::Corrupt {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }

    /// True for errors that a retry cannot fix (corruption, bad configuration).
    pub fn is_fatal(&self) -> bool {
        !matches!(self, Error::InvalidTenant(_) | Error::Matcher(_))
    }
}

/// Shorthand for engine results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why one series or one sample of a batch was not written.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum RejectReason {
    /// The series' label set is invalid; none of its samples were written.
    #[error("invalid series: {0}")]
    InvalidLabels(#[from] LabelError),
    /// A sample older than the out-of-order window (or than data already cut into blocks).
    #[error("sample at {t} is too old: oldest accepted timestamp is {min_valid}")]
    TooOld { t: i64, min_valid: i64 },
    /// A sample too far ahead of the time the batch was received.
    #[error("sample at {t} is too far in the future: newest accepted timestamp is {max_valid}")]
    TooFarInFuture { t: i64, max_valid: i64 },
    /// A sample at a timestamp the series already has, with a different value.
    #[error("duplicate sample for timestamp {t} with a different value")]
    DuplicateTimestamp { t: i64 },
}

/// One rejected item of a batch: `sample` is `None` when the whole series was rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// Index of the series in the batch.
    pub series: usize,
    /// Index of the sample in that series, or `None` for the whole series.
    pub sample: Option<usize>,
    pub reason: RejectReason,
}
