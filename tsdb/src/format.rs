//! Byte-level building blocks shared by every file format of the engine.
//!
//! Every persisted file starts with an 8-byte magic and a 2-byte little-endian format version.
//! Small files (manifest, block meta, head checkpoint, tombstones) are *sealed*: the whole file
//! is followed by an 8-byte xxh3-64 checksum of everything before it, verified before a single
//! field is decoded:
//!
//! ```text
//! ┌──────────────┬─────────────┬──────────────────────┬────────────────────┐
//! │ magic (8 B)  │ version u16 │ body (format-specific)│ xxh3-64(all before)│
//! └──────────────┴─────────────┴──────────────────────┴────────────────────┘
//! ```
//!
//! Large files (block index, chunk files) use the same header and checksum their sections or
//! records individually; see their modules. [`Decoder`] reads fields with bounds checks and turns
//! every overrun into [`Error::Corrupt`] with the file path and absolute offset.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use xxhash_rust::xxh3::xxh3_64;

use crate::error::{Error, Result};

/// Length of the magic + version header.
pub(crate) const HEADER_LEN: usize = 10;
/// Length of a trailing checksum.
pub(crate) const CHECKSUM_LEN: usize = 8;

pub(crate) fn checksum(data: &[u8]) -> u64 {
    xxh3_64(data)
}

/// Starts a buffer with the magic and version.
pub(crate) fn header(magic: &[u8; 8], version: u16) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(magic);
    buf.extend_from_slice(&version.to_le_bytes());
    buf
}

/// Verifies magic and version of `data`.
pub(crate) fn check_header(path: &Path, data: &[u8], magic: &[u8; 8], version: u16) -> Result<()> {
    if data.len() < HEADER_LEN {
        return Err(Error::corrupt(
            path,
            data.len() as u64,
            "file shorter than its header",
        ));
    }
    if &data[..8] != magic {
        return Err(Error::corrupt(
            path,
            0,
            format!(
                "bad magic {:?}, expected {:?}",
                String::from_utf8_lossy(&data[..8]),
                String::from_utf8_lossy(magic)
            ),
        ));
    }
    let v = u16::from_le_bytes([data[8], data[9]]);
    if v != version {
        return Err(Error::UnsupportedVersion {
            path: path.to_path_buf(),
            version: v,
            supported: version,
        });
    }
    Ok(())
}

/// Appends the checksum of everything in `buf`.
pub(crate) fn seal(buf: &mut Vec<u8>) {
    let sum = checksum(buf);
    buf.extend_from_slice(&sum.to_le_bytes());
}

/// Verifies a sealed file and returns its body (between header and checksum).
pub(crate) fn open_sealed<'a>(
    path: &Path,
    data: &'a [u8],
    magic: &[u8; 8],
    version: u16,
) -> Result<&'a [u8]> {
    if data.len() < HEADER_LEN + CHECKSUM_LEN {
        return Err(Error::corrupt(
            path,
            data.len() as u64,
            "file truncated: shorter than header and checksum",
        ));
    }
    check_header(path, data, magic, version)?;
    let split = data.len() - CHECKSUM_LEN;
    let want = u64::from_le_bytes(data[split..].try_into().expect("8 bytes"));
    let got = checksum(&data[..split]);
    if want != got {
        return Err(Error::corrupt(
            path,
            split as u64,
            format!("checksum mismatch: stored {want:#018x}, computed {got:#018x}"),
        ));
    }
    Ok(&data[HEADER_LEN..split])
}

/// Writes `bytes` to `path` atomically: temporary file, fsync, rename, fsync of the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Fsyncs a directory so that renames and creations in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Reads a whole file.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| Error::io(path, e))
}

pub(crate) fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

pub(crate) fn put_varint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

pub(crate) fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

pub(crate) fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

/// Decodes a uvarint from the front of `data`, returning the value and its length.
pub(crate) fn uvarint(data: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &b) in data.iter().enumerate().take(10) {
        if i == 9 && b > 1 {
            return None;
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some((v, i + 1));
        }
    }
    None
}

/// A bounds-checked cursor over a file's bytes. Errors name the file and the absolute offset.
pub(crate) struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
    path: &'a Path,
}

impl<'a> Decoder<'a> {
    /// `base` is the absolute file offset of `data[0]`.
    pub(crate) fn new(path: &'a Path, data: &'a [u8], base: u64) -> Self {
        Decoder {
            data,
            pos: 0,
            base,
            path,
        }
    }

    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub(crate) fn err(&self, reason: impl Into<String>) -> Error {
        Error::corrupt(self.path, self.offset(), reason)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(self.err(format!(
                "truncated: need {n} bytes, {} left",
                self.remaining()
            )));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.bytes(4)?.try_into().expect("4 bytes"),
        ))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.bytes(8)?.try_into().expect("8 bytes"),
        ))
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64> {
        match uvarint(&self.data[self.pos..]) {
            Some((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            None => Err(self.err("bad or truncated varint")),
        }
    }

    pub(crate) fn varint(&mut self) -> Result<i64> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A uvarint that must fit in `usize` and not exceed `max` (guards allocations).
    pub(crate) fn len(&mut self, max: usize) -> Result<usize> {
        let v = self.uvarint()?;
        if v > max as u64 {
            return Err(self.err(format!("length {v} exceeds limit {max}")));
        }
        Ok(v as usize)
    }

    pub(crate) fn byte_str(&mut self) -> Result<&'a [u8]> {
        let n = self.len(self.remaining())?;
        self.bytes(n)
    }

    pub(crate) fn str(&mut self) -> Result<&'a str> {
        let at = self.offset();
        let b = self.byte_str()?;
        std::str::from_utf8(b)
            .map_err(|_| Error::corrupt(self.path, at, "string is not valid UTF-8"))
    }

    pub(crate) fn expect_end(&self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(self.err(format!("{} unexpected trailing bytes", self.remaining())));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(u in any::<u64>(), i in any::<i64>()) {
            let mut buf = Vec::new();
            put_uvarint(&mut buf, u);
            put_varint(&mut buf, i);
            let p = Path::new("t");
            let mut d = Decoder::new(p, &buf, 0);
            prop_assert_eq!(d.uvarint().unwrap(), u);
            prop_assert_eq!(d.varint().unwrap(), i);
            prop_assert!(d.expect_end().is_ok());
        }

        #[test]
        fn decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let p = Path::new("t");
            let mut d = Decoder::new(p, &data, 0);
            while d.remaining() > 0 {
                if d.str().is_err() { break; }
            }
        }
    }

    #[test]
    fn sealed_file_detects_every_single_byte_flip() {
        let mut buf = header(b"O11YTEST", 1);
        buf.extend_from_slice(b"hello world");
        seal(&mut buf);
        let p = Path::new("x");
        assert_eq!(
            open_sealed(p, &buf, b"O11YTEST", 1).unwrap(),
            b"hello world"
        );
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            assert!(
                open_sealed(p, &bad, b"O11YTEST", 1).is_err(),
                "flip at {i} undetected"
            );
        }
        for n in 0..buf.len() {
            assert!(
                open_sealed(p, &buf[..n], b"O11YTEST", 1).is_err(),
                "truncation to {n} undetected"
            );
        }
    }
}
