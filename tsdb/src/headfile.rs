//! Head chunk files: where full head chunks go so that they live in the page cache, not the heap.
//!
//! When a series' open chunk reaches [`crate::chunk::MAX_SAMPLES_PER_CHUNK`] samples, the head
//! appends the encoded chunk here and keeps only a 24-byte reference. Reads go through a read-only
//! `mmap` of each segment. Segments are append-only; a record, once its reference is handed out,
//! never changes.
//!
//! ```text
//! segment file  head/chunks/<seq:08>
//! ┌──────────────┬─────────────┬───────────┬──────────┬──────────┬─────┐
//! │ magic (8 B)  │ version u16 │ pad (6 B) │ record 1 │ record 2 │ ... │
//! └──────────────┴─────────────┴───────────┴──────────┴──────────┴─────┘
//! record
//! ┌──────────────┬──────────────┬──────────────────┬────────────────────────────────────┐
//! │ len u32 (LE) │ encoding u8  │ chunk (len bytes) │ xxh3-64(encoding ‖ chunk) low 32 bits │
//! └──────────────┴──────────────┴──────────────────┴────────────────────────────────────┘
//! ```
//!
//! A reference packs the segment number (high 32 bits) and the record offset (low 32 bits).
//! The head checkpoint stores each live segment's committed length; on open, bytes past it
//! (written after the last checkpoint, before a crash) are truncated away, and segments the
//! checkpoint does not name are deleted. The checksum of a record is verified on every read.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use memmap2::{Mmap, MmapOptions};
use parking_lot::{Mutex, RwLock};
use xxhash_rust::xxh3::xxh3_64;

use crate::chunk::Encoding;
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"O11YHCHK";
const VERSION: u16 = 1;
const SEGMENT_HEADER_LEN: u64 = 16;
const RECORD_OVERHEAD: u64 = 4 + 1 + 4;

/// Largest size of one segment (the mmap length reserved for it).
#[cfg(not(test))]
pub(crate) const SEGMENT_SIZE: u64 = 128 << 20;
#[cfg(test)]
pub(crate) const SEGMENT_SIZE: u64 = 4 << 10;

/// One segment: the open file and a read-only mapping of its whole reserved length. Pages past
/// the written length are never touched.
pub(crate) struct Segment {
    pub(crate) seq: u32,
    path: PathBuf,
    file: File,
    map: Mmap,
    /// Bytes written and visible to readers.
    len: AtomicU64,
}

impl Segment {
    /// Reads and verifies the record at `offset`.
    pub(crate) fn chunk(&self, offset: u32) -> Result<(Encoding, &[u8])> {
        let off = u64::from(offset);
        let len = self.len.load(Ordering::Acquire);
        if off < SEGMENT_HEADER_LEN || off + RECORD_OVERHEAD > len {
            return Err(Error::corrupt(
                &self.path,
                off,
                format!("chunk reference past the written length {len}"),
            ));
        }
        let o = off as usize;
        let dlen = u64::from(u32::from_le_bytes(
            self.map[o..o + 4].try_into().expect("4 bytes"),
        ));
        if off + RECORD_OVERHEAD + dlen > len {
            return Err(Error::corrupt(
                &self.path,
                off,
                format!("chunk record of {dlen} bytes runs past the end"),
            ));
        }
        let body = &self.map[o + 4..o + 5 + dlen as usize];
        let stored = u32::from_le_bytes(
            self.map[o + 5 + dlen as usize..o + 9 + dlen as usize]
                .try_into()
                .expect("4"),
        );
        if xxh3_64(body) as u32 != stored {
            return Err(Error::corrupt(&self.path, off, "chunk checksum mismatch"));
        }
        let enc = Encoding::from_u8(body[0])
            .map_err(|e| Error::corrupt(&self.path, off + 4, e.to_string()))?;
        Ok((enc, &body[1..]))
    }
}

/// Packs a segment number and offset.
pub(crate) fn pack_ref(seq: u32, offset: u32) -> u64 {
    (u64::from(seq) << 32) | u64::from(offset)
}

pub(crate) fn unpack_ref(r: u64) -> (u32, u32) {
    ((r >> 32) as u32, r as u32)
}

/// The set of segments of one head, with the single writer position.
pub(crate) struct HeadFiles {
    dir: PathBuf,
    segments: RwLock<BTreeMap<u32, Arc<Segment>>>,
    writer: Mutex<()>,
}

impl HeadFiles {
    /// Opens `dir`, keeping exactly the segments in `committed` (seq → committed length),
    /// truncating each to its committed length and deleting every other segment file.
    pub(crate) fn open(dir: &Path, committed: &[(u32, u64)]) -> Result<HeadFiles> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let keep: BTreeMap<u32, u64> = committed.iter().copied().collect();
        for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let name = entry.file_name();
            let seq = name.to_str().and_then(|s| s.parse::<u32>().ok());
            if seq.is_none_or(|s| !keep.contains_key(&s)) {
                let p = entry.path();
                fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            }
        }
        let mut segments = BTreeMap::new();
        for (&seq, &len) in &keep {
            let path = dir.join(format!("{seq:08}"));
            // A segment deleted after the checkpoint was written had no references left;
            // the owner checks that every referenced segment exists.
            if !path.exists() {
                continue;
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            let actual = file.metadata().map_err(|e| Error::io(&path, e))?.len();
            if actual < len || len < SEGMENT_HEADER_LEN {
                return Err(Error::corrupt(
                    &path,
                    actual,
                    format!("segment shorter than its committed length {len}"),
                ));
            }
            let mut head = [0u8; SEGMENT_HEADER_LEN as usize];
            file.read_exact_at(&mut head, 0)
                .map_err(|e| Error::io(&path, e))?;
            crate::format::check_header(&path, &head, MAGIC, VERSION)?;
            if actual > len {
                file.set_len(len).map_err(|e| Error::io(&path, e))?;
            }
            segments.insert(seq, Arc::new(Self::map(path, file, seq, len)?));
        }
        Ok(HeadFiles {
            dir: dir.to_path_buf(),
            segments: RwLock::new(segments),
            writer: Mutex::new(()),
        })
    }

    fn map(path: PathBuf, file: File, seq: u32, len: u64) -> Result<Segment> {
        // SAFETY: the mapping is read-only; the file is only ever appended to by this process and
        // readers only look at bytes below `len`, which are never rewritten while mapped.
        let map = unsafe { MmapOptions::new().len(SEGMENT_SIZE as usize).map(&file) }
            .map_err(|e| Error::io(&path, e))?;
        Ok(Segment {
            seq,
            path,
            file,
            map,
            len: AtomicU64::new(len),
        })
    }

    fn new_segment(&self, seq: u32) -> Result<Arc<Segment>> {
        let path = self.dir.join(format!("{seq:08}"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let mut head = crate::format::header(MAGIC, VERSION);
        head.resize(SEGMENT_HEADER_LEN as usize, 0);
        file.write_all_at(&head, 0)
            .map_err(|e| Error::io(&path, e))?;
        crate::format::sync_dir(&self.dir)?;
        Ok(Arc::new(Self::map(path, file, seq, SEGMENT_HEADER_LEN)?))
    }

    /// Appends one chunk and returns its reference.
    pub(crate) fn append(&self, enc: Encoding, data: &[u8]) -> Result<u64> {
        let _w = self.writer.lock();
        let need = RECORD_OVERHEAD + data.len() as u64;
        let current = self.segments.read().values().next_back().cloned();
        let seg = match current {
            Some(s) if s.len.load(Ordering::Acquire) + need <= SEGMENT_SIZE => s,
            other => {
                let seq = other.map_or(1, |s| s.seq + 1);
                let s = self.new_segment(seq)?;
                self.segments.write().insert(seq, s.clone());
                s
            }
        };
        if SEGMENT_HEADER_LEN + need > SEGMENT_SIZE {
            return Err(Error::corrupt(
                &seg.path,
                0,
                format!("chunk of {} bytes exceeds the segment size", data.len()),
            ));
        }
        let off = seg.len.load(Ordering::Acquire);
        let mut rec = Vec::with_capacity(need as usize);
        rec.extend_from_slice(&(data.len() as u32).to_le_bytes());
        rec.push(enc as u8);
        rec.extend_from_slice(data);
        let sum = xxh3_64(&rec[4..]) as u32;
        rec.extend_from_slice(&sum.to_le_bytes());
        seg.file
            .write_all_at(&rec, off)
            .map_err(|e| Error::io(&seg.path, e))?;
        seg.len.store(off + need, Ordering::Release);
        Ok(pack_ref(seg.seq, off as u32))
    }

    pub(crate) fn segment(&self, seq: u32) -> Option<Arc<Segment>> {
        self.segments.read().get(&seq).cloned()
    }

    /// Fsyncs every segment and returns (seq, committed length) for the checkpoint.
    pub(crate) fn sync(&self) -> Result<Vec<(u32, u64)>> {
        let _w = self.writer.lock();
        let segs: Vec<Arc<Segment>> = self.segments.read().values().cloned().collect();
        let mut out = Vec::with_capacity(segs.len());
        for s in segs {
            s.file.sync_data().map_err(|e| Error::io(&s.path, e))?;
            out.push((s.seq, s.len.load(Ordering::Acquire)));
        }
        Ok(out)
    }

    /// Deletes segments numbered below `min_live`. The newest segment is kept unless
    /// `including_newest`: only a caller that excludes concurrent appends may pass true.
    pub(crate) fn remove_below(&self, min_live: u32, including_newest: bool) -> Result<()> {
        let _w = self.writer.lock();
        let mut segs = self.segments.write();
        let newest = segs
            .keys()
            .next_back()
            .copied()
            .filter(|_| !including_newest);
        let dead: Vec<u32> = segs
            .keys()
            .copied()
            .filter(|&s| s < min_live && Some(s) != newest)
            .collect();
        for s in dead {
            if let Some(seg) = segs.remove(&s) {
                fs::remove_file(&seg.path).map_err(|e| Error::io(&seg.path, e))?;
            }
        }
        Ok(())
    }

    /// Bytes written across segments.
    pub(crate) fn bytes(&self) -> u64 {
        self.segments
            .read()
            .values()
            .map(|s| s.len.load(Ordering::Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_read_reopen_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let hf = HeadFiles::open(dir.path(), &[]).unwrap();
        let mut refs = Vec::new();
        for i in 0..200u32 {
            let data = vec![i as u8; 40 + (i as usize % 7)];
            refs.push((hf.append(Encoding::Xor, &data).unwrap(), data));
        }
        // Crossed several 4 KiB test segments.
        assert!(unpack_ref(refs.last().unwrap().0).0 > 1);
        for (r, data) in &refs {
            let (seq, off) = unpack_ref(*r);
            let seg = hf.segment(seq).unwrap();
            let (enc, got) = seg.chunk(off).unwrap();
            assert_eq!(enc, Encoding::Xor);
            assert_eq!(got, &data[..]);
        }
        let committed = hf.sync().unwrap();
        // Written after the "checkpoint": must be gone after reopen.
        let late = hf.append(Encoding::Xor, &[1, 2, 3]).unwrap();
        drop(hf);
        let hf = HeadFiles::open(dir.path(), &committed).unwrap();
        let (seq, off) = unpack_ref(late);
        let seg = hf.segment(seq);
        assert!(seg.is_none_or(|s| s.chunk(off).is_err()));
        let (seq, off) = unpack_ref(refs[10].0);
        assert_eq!(
            hf.segment(seq).unwrap().chunk(off).unwrap().1,
            &refs[10].1[..]
        );
    }

    #[test]
    fn corrupt_record_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let hf = HeadFiles::open(dir.path(), &[]).unwrap();
        let r = hf.append(Encoding::Xor, &[9; 32]).unwrap();
        let committed = hf.sync().unwrap();
        drop(hf);
        let (seq, off) = unpack_ref(r);
        let path = dir.path().join(format!("{seq:08}"));
        let mut bytes = fs::read(&path).unwrap();
        bytes[off as usize + 10] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let hf = HeadFiles::open(dir.path(), &committed).unwrap();
        let err = hf.segment(seq).unwrap().chunk(off).unwrap_err().to_string();
        assert!(
            err.contains("checksum") && err.contains(&format!("{seq:08}")),
            "{err}"
        );
        // A reference beyond the written length is an error, not a panic.
        assert!(hf.segment(seq).unwrap().chunk(u32::MAX - 3).is_err());
    }

    /// Head chunk segment format version 1, frozen: header and one record.
    #[test]
    fn golden_segment_is_byte_exact() {
        let dir = tempfile::tempdir().unwrap();
        let hf = HeadFiles::open(dir.path(), &[]).unwrap();
        let r = hf.append(Encoding::Xor, &[0xde, 0xad, 0xbe, 0xef]).unwrap();
        assert_eq!(unpack_ref(r), (1, 16));
        hf.sync().unwrap();
        let got = fs::read(dir.path().join("00000001")).unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/golden/head_segment.bin");
        if std::env::var_os("O11Y_BLESS_GOLDEN").is_some() {
            fs::write(&path, &got).unwrap();
        }
        // magic "O11YHCHK" | version 1 | 6 zero bytes | record: len 4 (u32 LE) | encoding 1 |
        // de ad be ef | xxh3-64(01 de ad be ef) low 32 bits
        assert_eq!(
            got,
            fs::read(&path).unwrap(),
            "segment format changed: bump VERSION and re-bless"
        );
        assert_eq!(got.len(), 16 + 4 + 1 + 4 + 4);
    }
}
