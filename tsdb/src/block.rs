//! Immutable blocks: a time range of one tenant's series, written once, read through mmap.
//!
//! A block is a directory `blocks/<tenant>/<id:016x>/` with three files:
//!
//! ```text
//! meta      sealed (magic O11YBMTA, v1): id u64, tenant str, mint i64, maxt i64, level u32,
//!           num_series u64, num_chunks u64, num_samples u64, sources [u64]   + xxh3-64
//!
//! chunks    magic O11YBCHK, v1, pad to 16, then records:
//!           ┌─────────────┬────────────┬─────────────┬──────────────────────────────┐
//!           │ encoding u8 │ len uvarint│ chunk bytes │ xxh3-64(enc‖len‖chunk) low 32 │
//!           └─────────────┴────────────┴─────────────┴──────────────────────────────┘
//!           a chunk reference is the record's byte offset; its checksum is checked on every read;
//!           writers cut series into chunks of BLOCK_CHUNK_SAMPLES (240) samples, readers take
//!           chunks of any size
//!
//! index     magic O11YBIDX, v1, pad to 16, then five sections and a table of contents:
//!           symbols   count u32 | (count+1) × u32 offsets into the string area | strings
//!                     (sorted, unique: every label name and value of the block)
//!           series    one entry per series, in label order (series id = position):
//!                     uvarint #labels, (uvarint name sym, uvarint value sym)…,
//!                     uvarint #chunks, per chunk: varint mint (first relative to the
//!                     toc's base time, then to the previous maxt), uvarint maxt-mint,
//!                     uvarint ref (first absolute, then delta), uvarint #samples
//!           offsets   #series × u32: offset of each entry in the series section
//!           postings  roaring bitmaps (portable serialization), one per (name, value)
//!           table     sorted 20-byte rows: name sym u32, value sym u32, postings offset u64,
//!                     postings length u32 — binary-searched in place
//!           toc       5 × (offset u64, length u64, xxh3-64 u64), #series u64, #symbols u64,
//!                     base time i64, xxh3-64 of the toc (last 8 bytes of the file)
//! ```
//!
//! Opening an index verifies the header, the toc and every section's checksum, and that every
//! symbol is UTF-8; afterwards lookups are bounds-checked and never panic on bad references.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use roaring::RoaringBitmap;
use xxhash_rust::xxh3::xxh3_64;

use crate::chunk::{encode_best, Encoding, MAX_SAMPLES_PER_CHUNK};
use crate::error::{Error, Result};
use crate::format::{self, put_str, put_uvarint, put_varint, Decoder};
use crate::labels::{Label, Labels};
use crate::matcher::Matcher;
use crate::postings::{postings_for_matchers, PostingsSource};
use crate::series::{ChunkData, ChunkSource, Series};

const META_MAGIC: &[u8; 8] = b"O11YBMTA";
const CHUNKS_MAGIC: &[u8; 8] = b"O11YBCHK";
const INDEX_MAGIC: &[u8; 8] = b"O11YBIDX";
const VERSION: u16 = 1;
const FILE_HEADER_LEN: usize = 16;
const TOC_LEN: usize = 5 * 24 + 8 + 8 + 8 + 8;
const ROW_LEN: usize = 20;

/// Describes a block; stored in its `meta` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockMeta {
    pub id: u64,
    pub tenant: String,
    /// Smallest sample timestamp in the block.
    pub mint: i64,
    /// Largest sample timestamp in the block (inclusive).
    pub maxt: i64,
    /// 1 for blocks cut from the head, +1 per compaction generation.
    pub level: u32,
    pub num_series: u64,
    pub num_chunks: u64,
    pub num_samples: u64,
    /// Ids of the blocks this one was compacted from.
    pub sources: Vec<u64>,
}

impl BlockMeta {
    fn encode(&self) -> Vec<u8> {
        let mut b = format::header(META_MAGIC, VERSION);
        b.extend_from_slice(&self.id.to_le_bytes());
        put_str(&mut b, &self.tenant);
        b.extend_from_slice(&self.mint.to_le_bytes());
        b.extend_from_slice(&self.maxt.to_le_bytes());
        b.extend_from_slice(&self.level.to_le_bytes());
        b.extend_from_slice(&self.num_series.to_le_bytes());
        b.extend_from_slice(&self.num_chunks.to_le_bytes());
        b.extend_from_slice(&self.num_samples.to_le_bytes());
        put_uvarint(&mut b, self.sources.len() as u64);
        for s in &self.sources {
            b.extend_from_slice(&s.to_le_bytes());
        }
        format::seal(&mut b);
        b
    }

    fn decode(path: &Path, data: &[u8]) -> Result<BlockMeta> {
        let body = format::open_sealed(path, data, META_MAGIC, VERSION)?;
        let mut d = Decoder::new(path, body, format::HEADER_LEN as u64);
        let id = d.u64()?;
        let tenant = d.str()?.to_string();
        let mint = d.u64()? as i64;
        let maxt = d.u64()? as i64;
        let level = d.u32()?;
        let (num_series, num_chunks, num_samples) = (d.u64()?, d.u64()?, d.u64()?);
        let n = d.len(d.remaining() / 8)?;
        let sources = (0..n).map(|_| d.u64()).collect::<Result<Vec<_>>>()?;
        d.expect_end()?;
        Ok(BlockMeta {
            id,
            tenant,
            mint,
            maxt,
            level,
            num_series,
            num_chunks,
            num_samples,
            sources,
        })
    }
}

/// File bytes: an mmap, or owned bytes (tests and fuzzing).
pub(crate) enum Bytes {
    Map(Mmap),
    Owned(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Map(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

fn map_file(path: &Path) -> Result<Bytes> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    if len == 0 {
        return Ok(Bytes::Owned(Vec::new()));
    }
    // SAFETY: block files are immutable once their directory is renamed into place; the engine
    // never writes to them, and they are deleted (unlinked) only, never truncated.
    let m = unsafe { Mmap::map(&f) }.map_err(|e| Error::io(path, e))?;
    Ok(Bytes::Map(m))
}

/// A block's chunk file, read through mmap.
pub struct ChunkFile {
    path: PathBuf,
    data: Bytes,
}

impl ChunkFile {
    fn open(path: PathBuf) -> Result<ChunkFile> {
        let data = map_file(&path)?;
        format::check_header(&path, &data, CHUNKS_MAGIC, VERSION)?;
        Ok(ChunkFile { path, data })
    }

    /// Reads and verifies the record at `offset`.
    pub(crate) fn chunk(&self, offset: u64) -> Result<(Encoding, &[u8])> {
        let data: &[u8] = &self.data;
        let o = usize::try_from(offset).unwrap_or(usize::MAX);
        if o < FILE_HEADER_LEN || o >= data.len() {
            return Err(Error::corrupt(
                &self.path,
                offset,
                "chunk reference out of range",
            ));
        }
        let Some((len, n)) = format::uvarint(&data[o + 1..]) else {
            return Err(Error::corrupt(&self.path, offset, "bad chunk length"));
        };
        let end = (o + 1 + n)
            .checked_add(usize::try_from(len).unwrap_or(usize::MAX))
            .filter(|&e| e + 4 <= data.len());
        let Some(end) = end else {
            return Err(Error::corrupt(
                &self.path,
                offset,
                format!("chunk of {len} bytes runs past the end of the file"),
            ));
        };
        let stored = u32::from_le_bytes(data[end..end + 4].try_into().expect("4 bytes"));
        if xxh3_64(&data[o..end]) as u32 != stored {
            return Err(Error::corrupt(
                &self.path,
                offset,
                "chunk checksum mismatch",
            ));
        }
        let enc = Encoding::from_u8(data[o])
            .map_err(|e| Error::corrupt(&self.path, offset, e.to_string()))?;
        Ok((enc, &data[o + 1 + n..end]))
    }

    fn len(&self) -> u64 {
        self.data.len() as u64
    }
}

/// Metadata of one chunk in the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChunkMeta {
    pub mint: i64,
    pub maxt: i64,
    pub offset: u64,
    pub samples: u32,
}

struct Section {
    off: usize,
    len: usize,
}

/// A block index, verified at open.
pub(crate) struct Index {
    path: PathBuf,
    data: Bytes,
    /// Start of the symbol strings area and the offsets table.
    sym_offsets: usize,
    sym_strings: usize,
    nsymbols: usize,
    base_time: i64,
    series: Section,
    offsets: Section,
    postings: Section,
    table: Section,
    nseries: usize,
}

impl Index {
    pub(crate) fn open(path: PathBuf) -> Result<Index> {
        let data = map_file(&path)?;
        Index::from_bytes(path, data)
    }

    pub(crate) fn from_bytes(path: PathBuf, data: Bytes) -> Result<Index> {
        let bytes: &[u8] = &data;
        if bytes.len() < FILE_HEADER_LEN + TOC_LEN {
            return Err(Error::corrupt(
                &path,
                bytes.len() as u64,
                "index truncated: shorter than header and toc",
            ));
        }
        format::check_header(&path, bytes, INDEX_MAGIC, VERSION)?;
        let toc_at = bytes.len() - TOC_LEN;
        let toc = &bytes[toc_at..];
        let stored = u64::from_le_bytes(toc[TOC_LEN - 8..].try_into().expect("8"));
        if xxh3_64(&toc[..TOC_LEN - 8]) != stored {
            return Err(Error::corrupt(
                &path,
                toc_at as u64,
                "index toc checksum mismatch",
            ));
        }
        let mut d = Decoder::new(&path, &toc[..TOC_LEN - 8], toc_at as u64);
        let mut sections = Vec::with_capacity(5);
        for name in ["symbols", "series", "offsets", "postings", "table"] {
            let at = d.offset();
            let (off, len, sum) = (d.u64()?, d.u64()?, d.u64()?);
            let ok = off >= FILE_HEADER_LEN as u64
                && off.checked_add(len).is_some_and(|e| e <= toc_at as u64);
            if !ok {
                return Err(Error::corrupt(
                    &path,
                    at,
                    format!("{name} section [{off}, +{len}) out of bounds"),
                ));
            }
            let (off, len) = (off as usize, len as usize);
            if xxh3_64(&bytes[off..off + len]) != sum {
                return Err(Error::corrupt(
                    &path,
                    off as u64,
                    format!("{name} section checksum mismatch"),
                ));
            }
            sections.push(Section { off, len });
        }
        let nseries = d.u64()? as usize;
        let nsymbols = d.u64()? as usize;
        let base_time = d.u64()? as i64;
        let mut it = sections.into_iter();
        let (symbols, series, offsets, postings, table) = (
            it.next().expect("5"),
            it.next().expect("5"),
            it.next().expect("5"),
            it.next().expect("5"),
            it.next().expect("5"),
        );
        // Symbols: count, offsets, strings; all strings must be UTF-8.
        let err = |at: usize, r: &str| Error::corrupt(&path, at as u64, r.to_string());
        if symbols.len < 4
            || nsymbols
                .checked_add(1)
                .and_then(|n| n.checked_mul(4))
                .is_none_or(|n| n + 4 > symbols.len)
        {
            return Err(err(symbols.off, "symbol table does not fit its section"));
        }
        let count =
            u32::from_le_bytes(bytes[symbols.off..symbols.off + 4].try_into().expect("4")) as usize;
        if count != nsymbols {
            return Err(err(symbols.off, "symbol count disagrees with the toc"));
        }
        let sym_offsets = symbols.off + 4;
        let sym_strings = sym_offsets + (nsymbols + 1) * 4;
        let strings_len = symbols.off + symbols.len - sym_strings;
        let mut prev = 0usize;
        for i in 0..=nsymbols {
            let o = u32::from_le_bytes(
                bytes[sym_offsets + 4 * i..sym_offsets + 4 * i + 4]
                    .try_into()
                    .expect("4"),
            ) as usize;
            if o < prev || o > strings_len {
                return Err(err(
                    sym_offsets + 4 * i,
                    "symbol offsets not increasing or out of range",
                ));
            }
            if i > 0 && std::str::from_utf8(&bytes[sym_strings + prev..sym_strings + o]).is_err() {
                return Err(err(sym_strings + prev, "symbol is not valid UTF-8"));
            }
            prev = o;
        }
        if Some(offsets.len) != nseries.checked_mul(4) {
            return Err(err(
                offsets.off,
                "series offsets section size disagrees with the series count",
            ));
        }
        if table.len % ROW_LEN != 0 {
            return Err(err(
                table.off,
                "postings table size is not a whole number of rows",
            ));
        }
        Ok(Index {
            path,
            data,
            sym_offsets,
            sym_strings,
            nsymbols,
            base_time,
            series,
            offsets,
            postings,
            table,
            nseries,
        })
    }

    fn corrupt(&self, at: usize, reason: impl Into<String>) -> Error {
        Error::corrupt(&self.path, at as u64, reason)
    }

    fn u32_at(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.data[at..at + 4].try_into().expect("4 bytes"))
    }

    fn u64_at(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.data[at..at + 8].try_into().expect("8 bytes"))
    }

    /// The symbol with reference `r`.
    pub(crate) fn symbol(&self, r: u32) -> Result<&str> {
        let r = r as usize;
        if r >= self.nsymbols {
            return Err(self.corrupt(
                self.sym_offsets,
                format!("symbol reference {r} out of range"),
            ));
        }
        let a = self.u32_at(self.sym_offsets + 4 * r) as usize;
        let b = self.u32_at(self.sym_offsets + 4 * r + 4) as usize;
        let bytes = &self.data[self.sym_strings + a..self.sym_strings + b];
        // SAFETY: `from_bytes` checked that the offsets increase and that the bytes between
        // each pair of consecutive offsets are UTF-8; `data` never changes afterwards (an
        // immutable file's mmap, or owned bytes).
        Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
    }

    /// Binary search for a symbol's reference.
    fn symbol_ref(&self, s: &str) -> Result<Option<u32>> {
        let (mut lo, mut hi) = (0usize, self.nsymbols);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.symbol(mid as u32)?.cmp(s) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Some(mid as u32)),
            }
        }
        Ok(None)
    }

    fn rows(&self) -> usize {
        self.table.len / ROW_LEN
    }

    fn row(&self, i: usize) -> (u32, u32, u64, u32) {
        let at = self.table.off + i * ROW_LEN;
        (
            self.u32_at(at),
            self.u32_at(at + 4),
            self.u64_at(at + 8),
            self.u32_at(at + 16),
        )
    }

    /// Index of the first row with name sym ≥ `name`.
    fn lower_bound(&self, key: (u32, u32)) -> usize {
        let (mut lo, mut hi) = (0usize, self.rows());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let (n, v, _, _) = self.row(mid);
            if (n, v) < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    fn read_postings(&self, row: usize) -> Result<RoaringBitmap> {
        let (_, _, off, len) = self.row(row);
        let start = off as usize;
        let end = start
            .checked_add(len as usize)
            .filter(|&e| e <= self.postings.len);
        let Some(end) = end else {
            return Err(self.corrupt(
                self.table.off + row * ROW_LEN,
                "postings reference out of range",
            ));
        };
        let bytes = &self.data[self.postings.off + start..self.postings.off + end];
        RoaringBitmap::deserialize_from(bytes)
            .map_err(|e| self.corrupt(self.postings.off + start, format!("bad postings list: {e}")))
    }

    /// Rows `[a, b)` holding the values of label `name`.
    fn name_rows(&self, name: &str) -> Result<Option<(u32, usize, usize)>> {
        let Some(n) = self.symbol_ref(name)? else {
            return Ok(None);
        };
        let a = self.lower_bound((n, 0));
        let b = self.lower_bound((n.saturating_add(1), 0));
        Ok(Some((n, a, if n == u32::MAX { self.rows() } else { b })))
    }

    /// Label names present in the block, sorted.
    pub(crate) fn label_names(&self) -> Result<Vec<(String, usize, usize)>> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.rows() {
            let (n, ..) = self.row(i);
            let j = self.lower_bound((n.saturating_add(1), 0)).max(i + 1);
            out.push((self.symbol(n)?.to_string(), i, j));
            i = j;
        }
        Ok(out)
    }

    /// Values of `name` with the postings row of each.
    pub(crate) fn label_values(&self, name: &str) -> Result<Vec<(String, usize)>> {
        let Some((_, a, b)) = self.name_rows(name)? else {
            return Ok(Vec::new());
        };
        (a..b)
            .map(|i| Ok((self.symbol(self.row(i).1)?.to_string(), i)))
            .collect()
    }

    /// Labels and chunk metas of series `id`.
    pub(crate) fn series(&self, id: u32) -> Result<(Labels, Vec<ChunkMeta>)> {
        let mut chunks = Vec::new();
        let labels = self.read_series(id, &mut chunks)?;
        Ok((labels, chunks))
    }

    /// Labels of series `id`; its chunk metas replace the contents of `chunks` (a buffer the
    /// caller reuses across series).
    pub(crate) fn read_series(&self, id: u32, chunks: &mut Vec<ChunkMeta>) -> Result<Labels> {
        chunks.clear();
        let id = id as usize;
        if id >= self.nseries {
            return Err(self.corrupt(self.offsets.off, format!("series id {id} out of range")));
        }
        let off = self.u32_at(self.offsets.off + 4 * id) as usize;
        if off >= self.series.len {
            return Err(self.corrupt(self.offsets.off + 4 * id, "series offset out of range"));
        }
        let base = self.series.off + off;
        let mut d = Varints {
            data: &self.data[base..self.series.off + self.series.len],
            pos: 0,
        };
        let err = |d: &Varints<'_>, reason: &str| self.corrupt(base + d.pos, reason);
        let bad = |d: &Varints<'_>| err(d, "bad or truncated varint");
        let nl = d.uvarint().ok_or_else(|| bad(&d))?;
        // Each label takes at least two bytes.
        if nl > (d.data.len() / 2) as u64 {
            return Err(err(&d, "label count exceeds the series section"));
        }
        let mut labels = Vec::with_capacity(nl as usize);
        for _ in 0..nl {
            let n = d.uvarint().ok_or_else(|| bad(&d))?;
            let v = d.uvarint().ok_or_else(|| bad(&d))?;
            let (Ok(n), Ok(v)) = (u32::try_from(n), u32::try_from(v)) else {
                return Err(err(&d, "symbol reference too large"));
            };
            labels.push(Label {
                name: self.symbol(n)?.to_owned(),
                value: self.symbol(v)?.to_owned(),
            });
        }
        let nc = d.uvarint().ok_or_else(|| bad(&d))?;
        // Each chunk meta takes at least four bytes.
        if nc > (d.data.len() / 4) as u64 {
            return Err(err(&d, "chunk count exceeds the series section"));
        }
        chunks.reserve(nc as usize);
        let (mut prev_maxt, mut prev_ref) = (self.base_time, 0u64);
        for _ in 0..nc {
            let (Some(dmin), Some(span), Some(dref), Some(samples)) =
                (d.uvarint(), d.uvarint(), d.uvarint(), d.uvarint())
            else {
                return Err(bad(&d));
            };
            // The first chunk's mint is relative to the base time, later ones to the previous
            // maxt; the first reference is absolute, later ones deltas.
            let mint = prev_maxt.wrapping_add(unzigzag(dmin));
            let maxt = mint.wrapping_add(span as i64);
            let offset = prev_ref.wrapping_add(dref);
            let samples = u32::try_from(samples).map_err(|_| err(&d, "sample count too large"))?;
            chunks.push(ChunkMeta {
                mint,
                maxt,
                offset,
                samples,
            });
            prev_maxt = maxt;
            prev_ref = offset;
        }
        Ok(Labels::from_sorted_unchecked(labels))
    }

    pub(crate) fn num_series(&self) -> usize {
        self.nseries
    }

    pub(crate) fn len(&self) -> u64 {
        self.data.len() as u64
    }
}

impl PostingsSource for Index {
    fn all_postings(&self) -> Result<RoaringBitmap> {
        Ok((0..self.nseries as u32).collect())
    }

    fn postings(&self, name: &str, value: &str) -> Result<RoaringBitmap> {
        let (Some(n), Some(v)) = (self.symbol_ref(name)?, self.symbol_ref(value)?) else {
            return Ok(RoaringBitmap::new());
        };
        let i = self.lower_bound((n, v));
        if i < self.rows() && self.row(i).0 == n && self.row(i).1 == v {
            return self.read_postings(i);
        }
        Ok(RoaringBitmap::new())
    }

    fn postings_where(
        &self,
        name: &str,
        pred: &mut dyn FnMut(&str) -> bool,
    ) -> Result<RoaringBitmap> {
        let mut out = RoaringBitmap::new();
        if let Some((_, a, b)) = self.name_rows(name)? {
            for i in a..b {
                if pred(self.symbol(self.row(i).1)?) {
                    out |= self.read_postings(i)?;
                }
            }
        }
        Ok(out)
    }
}

/// A cursor over the varints of one series entry; `None` on a bad or truncated varint.
struct Varints<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Varints<'_> {
    #[inline]
    fn uvarint(&mut self) -> Option<u64> {
        // One-byte varints (most symbol references, counts and deltas) without a call.
        if let Some(&b) = self.data.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Some(u64::from(b));
            }
        }
        let (v, n) = format::uvarint(self.data.get(self.pos..)?)?;
        self.pos += n;
        Some(v)
    }
}

#[inline]
fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// One encoded chunk ready to be written.
pub(crate) struct EncodedChunk {
    pub enc: Encoding,
    pub data: Vec<u8>,
    pub mint: i64,
    pub maxt: i64,
    pub samples: u32,
}

/// Samples per chunk in blocks: twice the head's [`MAX_SAMPLES_PER_CHUNK`]. Block chunks are
/// written once, so a larger chunk spreads its fixed costs (record header and checksum, the
/// encoding's header and first sample, the index entry, starting a decoder) over more samples;
/// a query over a short range still decodes at most this many samples per series and block.
/// Readers accept chunks of any size, so this is a writer's choice, not part of the format.
pub(crate) const BLOCK_CHUNK_SAMPLES: usize = 2 * MAX_SAMPLES_PER_CHUNK;

/// Splits sorted samples into chunks of at most [`BLOCK_CHUNK_SAMPLES`] and encodes each with
/// the smallest encoding that represents it exactly.
pub(crate) fn encode_chunks(samples: &[(i64, f64)]) -> Vec<EncodedChunk> {
    encode_chunks_of(samples, BLOCK_CHUNK_SAMPLES)
}

/// [`encode_chunks`] with chunks of at most `per_chunk` samples.
fn encode_chunks_of(samples: &[(i64, f64)], per_chunk: usize) -> Vec<EncodedChunk> {
    samples
        .chunks(per_chunk)
        .map(|c| {
            let (enc, data) = encode_best(c);
            EncodedChunk {
                enc,
                data,
                mint: c[0].0,
                maxt: c[c.len() - 1].0,
                samples: c.len() as u32,
            }
        })
        .collect()
}

/// Writes a block into a temporary directory; [`BlockWriter::finish`] renames it into place.
pub(crate) struct BlockWriter {
    tmp: PathBuf,
    dir: PathBuf,
    chunks: BufWriter<File>,
    chunks_len: u64,
    symbols: HashMap<String, u32>,
    series: Vec<u8>,
    offsets: Vec<u8>,
    postings: BTreeMap<(u32, u32), RoaringBitmap>,
    meta: BlockMeta,
    last: Option<Labels>,
    base_time: Option<i64>,
}

impl BlockWriter {
    /// Starts block `meta.id` under `parent`. `symbols` must hold every label name and value of
    /// the series that will be added.
    pub(crate) fn new(
        parent: &Path,
        mut meta: BlockMeta,
        symbols: BTreeSet<String>,
    ) -> Result<BlockWriter> {
        let dir = parent.join(format!("{:016x}", meta.id));
        let tmp = parent.join(format!("{:016x}.tmp", meta.id));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let cpath = tmp.join("chunks");
        let mut chunks = BufWriter::with_capacity(
            1 << 20,
            File::create(&cpath).map_err(|e| Error::io(&cpath, e))?,
        );
        let mut head = format::header(CHUNKS_MAGIC, VERSION);
        head.resize(FILE_HEADER_LEN, 0);
        chunks.write_all(&head).map_err(|e| Error::io(&cpath, e))?;
        let symbols = symbols
            .into_iter()
            .enumerate()
            .map(|(i, s)| (s, i as u32))
            .collect();
        meta.mint = i64::MAX;
        meta.maxt = i64::MIN;
        meta.num_series = 0;
        meta.num_chunks = 0;
        meta.num_samples = 0;
        Ok(BlockWriter {
            tmp,
            dir,
            chunks,
            chunks_len: FILE_HEADER_LEN as u64,
            symbols,
            series: Vec::new(),
            offsets: Vec::new(),
            postings: BTreeMap::new(),
            meta,
            last: None,
            base_time: None,
        })
    }

    fn sym(&self, s: &str) -> Result<u32> {
        self.symbols
            .get(s)
            .copied()
            .ok_or_else(|| Error::InvalidOptions(format!("block writer: symbol {s:?} missing")))
    }

    /// Adds a series; calls must come in strictly increasing label order. Series without chunks
    /// are skipped.
    pub(crate) fn add_series(&mut self, labels: &Labels, chunks: &[EncodedChunk]) -> Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        if self.last.as_ref().is_some_and(|l| l >= labels) {
            return Err(Error::InvalidOptions(format!(
                "block writer: series {labels} out of order"
            )));
        }
        let id = self.meta.num_series as u32;
        let offset = u32::try_from(self.series.len()).map_err(|_| {
            Error::InvalidOptions(
                "block writer: series section exceeds 4 GiB; write smaller blocks".into(),
            )
        })?;
        self.offsets.extend_from_slice(&offset.to_le_bytes());
        put_uvarint(&mut self.series, labels.len() as u64);
        for l in labels.iter() {
            let (n, v) = (self.sym(&l.name)?, self.sym(&l.value)?);
            put_uvarint(&mut self.series, u64::from(n));
            put_uvarint(&mut self.series, u64::from(v));
            self.postings.entry((n, v)).or_default().insert(id);
        }
        put_uvarint(&mut self.series, chunks.len() as u64);
        let cpath = self.tmp.join("chunks");
        let (mut prev_maxt, mut prev_ref) = (0i64, 0u64);
        for (i, c) in chunks.iter().enumerate() {
            let offset = self.chunks_len;
            let mut rec = Vec::with_capacity(c.data.len() + 16);
            rec.push(c.enc as u8);
            put_uvarint(&mut rec, c.data.len() as u64);
            rec.extend_from_slice(&c.data);
            let sum = xxh3_64(&rec) as u32;
            rec.extend_from_slice(&sum.to_le_bytes());
            self.chunks
                .write_all(&rec)
                .map_err(|e| Error::io(&cpath, e))?;
            self.chunks_len += rec.len() as u64;
            if i == 0 {
                let base = *self.base_time.get_or_insert(c.mint);
                put_varint(&mut self.series, c.mint.wrapping_sub(base));
            } else {
                put_varint(&mut self.series, c.mint.wrapping_sub(prev_maxt));
            }
            put_uvarint(&mut self.series, c.maxt.wrapping_sub(c.mint) as u64);
            put_uvarint(
                &mut self.series,
                if i == 0 { offset } else { offset - prev_ref },
            );
            put_uvarint(&mut self.series, u64::from(c.samples));
            prev_maxt = c.maxt;
            prev_ref = offset;
            self.meta.mint = self.meta.mint.min(c.mint);
            self.meta.maxt = self.meta.maxt.max(c.maxt);
            self.meta.num_samples += u64::from(c.samples);
        }
        self.meta.num_chunks += chunks.len() as u64;
        self.meta.num_series += 1;
        self.last = Some(labels.clone());
        Ok(())
    }

    /// Writes the index and meta, fsyncs, and renames the directory into place.
    pub(crate) fn finish(mut self) -> Result<BlockMeta> {
        let cpath = self.tmp.join("chunks");
        self.chunks.flush().map_err(|e| Error::io(&cpath, e))?;
        self.chunks
            .get_ref()
            .sync_all()
            .map_err(|e| Error::io(&cpath, e))?;
        let mut syms: Vec<(&String, u32)> = self.symbols.iter().map(|(s, &i)| (s, i)).collect();
        syms.sort_by_key(|&(_, i)| i);
        let mut idx = format::header(INDEX_MAGIC, VERSION);
        idx.resize(FILE_HEADER_LEN, 0);
        let mut toc = Vec::with_capacity(TOC_LEN);
        let mut section = |idx: &mut Vec<u8>, body: &[u8]| {
            toc.extend_from_slice(&(idx.len() as u64).to_le_bytes());
            toc.extend_from_slice(&(body.len() as u64).to_le_bytes());
            toc.extend_from_slice(&xxh3_64(body).to_le_bytes());
            idx.extend_from_slice(body);
        };
        let mut sym = Vec::new();
        sym.extend_from_slice(&(syms.len() as u32).to_le_bytes());
        let mut o = 0u32;
        sym.extend_from_slice(&o.to_le_bytes());
        for (s, _) in &syms {
            o += s.len() as u32;
            sym.extend_from_slice(&o.to_le_bytes());
        }
        for (s, _) in &syms {
            sym.extend_from_slice(s.as_bytes());
        }
        section(&mut idx, &sym);
        section(&mut idx, &self.series);
        section(&mut idx, &self.offsets);
        let mut post = Vec::new();
        let mut table = Vec::with_capacity(self.postings.len() * ROW_LEN);
        for (&(n, v), bm) in &self.postings {
            let start = post.len() as u64;
            bm.serialize_into(&mut post)
                .map_err(|e| Error::io(&self.tmp, e))?;
            table.extend_from_slice(&n.to_le_bytes());
            table.extend_from_slice(&v.to_le_bytes());
            table.extend_from_slice(&start.to_le_bytes());
            table.extend_from_slice(&((post.len() as u64 - start) as u32).to_le_bytes());
        }
        section(&mut idx, &post);
        section(&mut idx, &table);
        toc.extend_from_slice(&self.meta.num_series.to_le_bytes());
        toc.extend_from_slice(&(syms.len() as u64).to_le_bytes());
        toc.extend_from_slice(&self.base_time.unwrap_or(0).to_le_bytes());
        let sum = xxh3_64(&toc);
        toc.extend_from_slice(&sum.to_le_bytes());
        idx.extend_from_slice(&toc);
        write_synced(&self.tmp.join("index"), &idx)?;
        write_synced(&self.tmp.join("meta"), &self.meta.encode())?;
        format::sync_dir(&self.tmp)?;
        fs::rename(&self.tmp, &self.dir).map_err(|e| Error::io(&self.dir, e))?;
        if let Some(p) = self.dir.parent() {
            format::sync_dir(p)?;
        }
        Ok(self.meta)
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

/// An open block.
pub struct Block {
    pub(crate) meta: BlockMeta,
    pub(crate) dir: PathBuf,
    pub(crate) index: Index,
    pub(crate) chunks: Arc<ChunkFile>,
}

impl Block {
    pub(crate) fn open(dir: PathBuf) -> Result<Block> {
        let mpath = dir.join("meta");
        let meta = BlockMeta::decode(&mpath, &format::read_file(&mpath)?)?;
        let index = Index::open(dir.join("index"))?;
        let chunks = Arc::new(ChunkFile::open(dir.join("chunks"))?);
        if index.num_series() as u64 != meta.num_series {
            return Err(Error::corrupt(
                dir.join("index"),
                0,
                "series count disagrees with meta",
            ));
        }
        Ok(Block {
            meta,
            dir,
            index,
            chunks,
        })
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// Bytes on disk.
    pub fn size(&self) -> u64 {
        self.index.len() + self.chunks.len()
    }

    /// Series matching `matchers` with their chunks overlapping `[mint, maxt]`, sorted by labels.
    /// `deleted` maps series ids to deleted intervals.
    pub(crate) fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        deleted: Option<&HashMap<u32, Vec<(i64, i64)>>>,
    ) -> Result<Vec<Series>> {
        let ids = postings_for_matchers(&self.index, matchers)?;
        let mut out = Vec::with_capacity(ids.len() as usize);
        let mut metas = Vec::new();
        for id in ids {
            let labels = self.index.read_series(id, &mut metas)?;
            let in_range = |c: &&ChunkMeta| c.maxt >= mint && c.mint <= maxt;
            let n = metas.iter().filter(in_range).count();
            if n == 0 {
                continue;
            }
            let mut sources = Vec::with_capacity(n);
            sources.extend(metas.iter().filter(in_range).map(|c| ChunkSource {
                mint: c.mint,
                maxt: c.maxt,
                data: ChunkData::Block {
                    file: self.chunks.clone(),
                    offset: c.offset,
                },
            }));
            let deleted = deleted
                .and_then(|d| d.get(&id))
                .cloned()
                .unwrap_or_default();
            out.push(Series {
                labels,
                sources,
                deleted,
                mint,
                maxt,
            });
        }
        Ok(out)
    }

    /// Every series of the block with its chunk metas, in label order (for compaction).
    pub(crate) fn all_series(
        &self,
    ) -> impl Iterator<Item = Result<(u32, Labels, Vec<ChunkMeta>)>> + '_ {
        (0..self.index.num_series() as u32)
            .map(move |id| self.index.series(id).map(|(l, c)| (id, l, c)))
    }

    /// Decodes one chunk of this block.
    pub(crate) fn decode_chunk(&self, meta: &ChunkMeta) -> Result<Vec<(i64, f64)>> {
        let (enc, bytes) = self.chunks.chunk(meta.offset)?;
        crate::chunk::decode_all(enc, bytes)
            .map_err(|e| Error::corrupt(self.dir.join("chunks"), meta.offset, e.to_string()))
    }

    /// Series ids matching `matchers`.
    pub(crate) fn postings(&self, matchers: &[Matcher]) -> Result<RoaringBitmap> {
        postings_for_matchers(&self.index, matchers)
    }
}

/// Checks an index file's bytes as [`Index::open`] would, then decodes every series; for fuzzing.
#[doc(hidden)]
pub fn fuzz_index(data: &[u8]) {
    if let Ok(idx) = Index::from_bytes(PathBuf::from("fuzz"), Bytes::Owned(data.to_vec())) {
        for id in 0..idx.num_series().min(10_000) as u32 {
            let _ = idx.series(id);
        }
        if let Ok(names) = idx.label_names() {
            for (n, ..) in names {
                let _ = idx.label_values(&n).map(|vals| {
                    vals.iter()
                        .for_each(|(_, row)| drop(idx.read_postings(*row)))
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Labels;
    use crate::matcher::{MatchOp, Matcher};

    fn golden_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/golden/block")
    }

    /// Writes the fixed two-series block used by the golden and corruption tests.
    fn write_fixture(parent: &Path) -> BlockMeta {
        let a = Labels::from_pairs([("__name__", "up"), ("job", "node")]);
        let b = Labels::from_pairs([("__name__", "up"), ("job", "prom"), ("zone", "eu")]);
        let mut symbols = BTreeSet::new();
        for l in a.iter().chain(b.iter()) {
            symbols.insert(l.name.clone());
            symbols.insert(l.value.clone());
        }
        let meta = BlockMeta {
            id: 1,
            tenant: "default".into(),
            mint: 0,
            maxt: 0,
            level: 1,
            num_series: 0,
            num_chunks: 0,
            num_samples: 0,
            sources: vec![],
        };
        let mut w = BlockWriter::new(parent, meta, symbols).unwrap();
        let sa: Vec<(i64, f64)> = (0..3).map(|i| (i * 15_000, 1.0)).collect();
        let sb: Vec<(i64, f64)> = (0..130).map(|i| (i * 15_000, i as f64 * 0.5)).collect();
        // The fixture keeps the 120-sample chunks it was frozen with (the chunk size is the
        // writer's choice; readers take any), so that series b spans two chunks.
        w.add_series(&a, &encode_chunks_of(&sa, MAX_SAMPLES_PER_CHUNK))
            .unwrap();
        w.add_series(&b, &encode_chunks_of(&sb, MAX_SAMPLES_PER_CHUNK))
            .unwrap();
        w.finish().unwrap()
    }

    /// Block format version 1, frozen: `meta`, `index` and `chunks` must stay byte-identical.
    /// Layout of each file is documented at the top of this module.
    #[test]
    fn golden_block_is_byte_exact() {
        let dir = tempfile::tempdir().unwrap();
        let meta = write_fixture(dir.path());
        let bdir = dir.path().join(format!("{:016x}", meta.id));
        for f in ["meta", "index", "chunks"] {
            let got = fs::read(bdir.join(f)).unwrap();
            let path = golden_dir().join(f);
            if std::env::var_os("O11Y_BLESS_GOLDEN").is_some() {
                fs::create_dir_all(golden_dir()).unwrap();
                fs::write(&path, &got).unwrap();
            }
            assert_eq!(
                got,
                fs::read(&path).unwrap(),
                "block file {f} changed: bump VERSION and re-bless"
            );
        }
        // The committed golden block opens and reads back.
        let copy = tempfile::tempdir().unwrap();
        for f in ["meta", "index", "chunks"] {
            fs::copy(golden_dir().join(f), copy.path().join(f)).unwrap();
        }
        let block = Block::open(copy.path().to_path_buf()).unwrap();
        assert_eq!(block.meta, meta);
        let m = Matcher::new(MatchOp::Equal, "job", "prom").unwrap();
        let s = block.select(&[m], i64::MIN, i64::MAX, None).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].samples().unwrap().len(), 130);
        assert_eq!(s[0].chunks().len(), 2);
    }

    #[test]
    fn every_index_byte_flip_is_detected_or_harmless() {
        let dir = tempfile::tempdir().unwrap();
        let meta = write_fixture(dir.path());
        let idx = fs::read(dir.path().join(format!("{:016x}", meta.id)).join("index")).unwrap();
        for i in 0..idx.len() {
            let mut bad = idx.clone();
            bad[i] ^= 0x21;
            let r = Index::from_bytes(PathBuf::from("index"), Bytes::Owned(bad));
            // Only the 6 header padding bytes are not covered by a checksum.
            assert!(
                r.is_err() || (10..16).contains(&i),
                "flip at {i} undetected"
            );
        }
        for n in 0..idx.len() {
            assert!(
                Index::from_bytes(PathBuf::from("index"), Bytes::Owned(idx[..n].to_vec())).is_err()
            );
        }
    }

    #[test]
    fn fuzz_entry_point_survives_garbage() {
        for seed in 0..200u64 {
            let data: Vec<u8> = (0..(seed * 7 % 300))
                .map(|i| (i.wrapping_mul(seed + 13) % 251) as u8)
                .collect();
            fuzz_index(&data);
        }
    }
}
