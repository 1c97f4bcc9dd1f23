//! Small files replaced atomically and checked whole: the log's vote and purge point, the
//! state machine's `CURRENT`, `APPLIED` and snapshot `META`.
//!
//! ```text
//! magic (8) · version u16 LE · payload · xxh3-64(everything before) u64 LE
//! ```
//!
//! Written to `<name>.tmp`, fsync'd, renamed over the old file, and the directory fsync'd, so a
//! crash leaves either the old or the new file.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64;

const VERSION: u16 = 1;

/// Why a sealed file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SealedError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: corrupt at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SealedError + '_ {
    move |source| SealedError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Replaces `path` with a sealed file holding `payload`.
pub fn write(path: &Path, magic: &[u8; 8], payload: &[u8]) -> Result<(), SealedError> {
    let mut b = Vec::with_capacity(payload.len() + 18);
    b.extend_from_slice(magic);
    b.extend_from_slice(&VERSION.to_le_bytes());
    b.extend_from_slice(payload);
    let sum = xxh3_64(&b);
    b.extend_from_slice(&sum.to_le_bytes());
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(&b).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// The payload of the sealed file at `path`, `None` when it does not exist.
pub fn read(path: &Path, magic: &[u8; 8]) -> Result<Option<Vec<u8>>, SealedError> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    let bad = |offset: usize, reason: &str| SealedError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason: reason.to_string(),
    };
    if data.len() < 18 || &data[..8] != magic {
        return Err(bad(0, "bad magic or short file"));
    }
    if u16::from_le_bytes([data[8], data[9]]) != VERSION {
        return Err(bad(8, "unsupported version"));
    }
    let (body, sum) = data.split_at(data.len() - 8);
    if xxh3_64(body) != u64::from_le_bytes(sum.try_into().expect("8 bytes")) {
        return Err(bad(body.len(), "checksum mismatch"));
    }
    Ok(Some(body[10..].to_vec()))
}

/// fsyncs a directory (after creating, renaming or removing entries in it).
pub fn sync_dir(dir: &Path) -> Result<(), SealedError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_flipped_byte_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        assert!(read(&p, b"O11YTEST").unwrap().is_none());
        write(&p, b"O11YTEST", b"hello").unwrap();
        assert_eq!(read(&p, b"O11YTEST").unwrap().unwrap(), b"hello");
        let good = fs::read(&p).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 1;
            fs::write(&p, &bad).unwrap();
            assert!(
                matches!(read(&p, b"O11YTEST"), Err(SealedError::Corrupt { .. })),
                "byte {i}"
            );
        }
        fs::write(&p, &good[..good.len() - 1]).unwrap();
        assert!(read(&p, b"O11YTEST").is_err());
    }
}
