//! Sample chunks: compressed runs of `(timestamp ms, f64 value)` samples of
//! one series.
//!
//! Two encodings, each starting with its sample count:
//!
//! * [`Encoding::Xor`] — Gorilla/Prometheus XOR chunks (see `xor.rs`). The
//!   head appends to one open [`XorAppender`] per series; its
//!   [`bytes`](XorAppender::bytes) are a decodable chunk after every append.
//! * [`Encoding::Decimal`] — values as integers scaled by 10^k, timestamps and
//!   values each with per-chunk tuned integer codes: timestamps on a grid,
//!   runs of zeros in a few bits (see `decimal.rs`). Only possible when every
//!   value round-trips bit-exactly; usually much smaller for counters and
//!   gauges.
//!
//! ```text
//!   scrape ──append──▶ XorAppender (head, ≤ MAX_SAMPLES_PER_CHUNK samples)
//!                          │ bytes(): queries read the open chunk
//!                          │ into_bytes(): chunk cut
//!                          ▼
//!                     Xor chunk ──decode_all──▶ samples ──encode_best──▶ block
//!                                                             (Xor or Decimal)
//!   block / head chunk ──ChunkIter::new(encoding, bytes)──▶ (t, v) samples
//! ```
//!
//! Invariants:
//! * Values round-trip bit for bit (NaN payloads, the stale marker, -0.0).
//! * Encoders accept timestamps in any order, including equal and extreme
//!   ones; arithmetic wraps and never panics.
//! * Decoders never panic and never read out of bounds on arbitrary bytes: a
//!   truncated or corrupt chunk yields [`ChunkError`] carrying the bit offset.
//!   A chunk must end exactly after its last sample (zero padding only).
//! * The encoding is not stored in the chunk; the caller keeps it beside the
//!   chunk (e.g. in the block index) and passes it to [`ChunkIter::new`].

mod bits;
mod decimal;
mod xor;

#[cfg(test)]
mod tests;

use std::iter::FusedIterator;

pub use xor::XorAppender;

use decimal::DecimalDecoder;
use xor::XorDecoder;

/// Number of samples at which the head cuts a chunk.
pub const MAX_SAMPLES_PER_CHUNK: usize = 120;

/// Chunk encoding, stored by the caller next to the chunk bytes.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Gorilla XOR chunks, as Prometheus's `chunkenc.XORChunk`.
    Xor = 1,
    /// Values as scaled decimal integers with adaptive integer codes.
    Decimal = 2,
}

impl Encoding {
    /// Parses the on-disk encoding byte.
    pub fn from_u8(b: u8) -> Result<Encoding, ChunkError> {
        match b {
            1 => Ok(Encoding::Xor),
            2 => Ok(Encoding::Decimal),
            other => Err(ChunkError::UnknownEncoding(other)),
        }
    }
}

/// Why a chunk could not be decoded. Offsets are in bits from the start of
/// the chunk bytes.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ChunkError {
    /// The chunk ended before its header or a sample was complete; `offset`
    /// is where the incomplete header field or sample starts.
    #[error("chunk truncated: header field or sample at bit {offset} (byte {}) runs past the end", offset / 8)]
    Truncated {
        /// Bit offset of the incomplete field or sample.
        offset: u64,
    },
    /// The encoding byte names no known encoding.
    #[error("unknown chunk encoding {0}")]
    UnknownEncoding(u8),
    /// The bytes cannot have been written by the encoder.
    #[error("corrupt chunk at bit {offset} (byte {}): {reason}", offset / 8)]
    Corrupt {
        /// Bit offset of the offending field (or of its sample).
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Encodes `samples` with `enc`.
///
/// Returns `None` when `enc` cannot represent the samples exactly: Decimal
/// needs every value to be `m / 10^k` for an integer `m` and `k ≤ 15` (so no
/// NaN, ±Inf or -0.0). Xor always succeeds.
pub fn encode(enc: Encoding, samples: &[(i64, f64)]) -> Option<Vec<u8>> {
    match enc {
        Encoding::Xor => Some(encode_xor(samples)),
        Encoding::Decimal => decimal::encode(samples),
    }
}

fn encode_xor(samples: &[(i64, f64)]) -> Vec<u8> {
    // ~2 bytes per sample is typical; the appender grows if needed.
    let mut a = XorAppender::with_capacity(16 + samples.len() * 2);
    for &(t, v) in samples {
        a.append(t, v);
    }
    a.into_bytes()
}

/// Encodes `samples` with whichever encoding gives the fewest bytes (Xor on
/// a tie, as it decodes slightly faster).
pub fn encode_best(samples: &[(i64, f64)]) -> (Encoding, Vec<u8>) {
    let xor = encode_xor(samples);
    match decimal::encode(samples) {
        Some(dec) if dec.len() < xor.len() => (Encoding::Decimal, dec),
        _ => (Encoding::Xor, xor),
    }
}

/// Decodes a whole chunk.
///
/// The header's sample count only sizes the first allocation up to 64 Ki
/// samples; a chunk claiming more grows the vector as samples decode.
pub fn decode_all(enc: Encoding, data: &[u8]) -> Result<Vec<(i64, f64)>, ChunkError> {
    let mut it = ChunkIter::new(enc, data)?;
    let mut out = Vec::with_capacity(it.num_samples().min(1 << 16));
    out.extend(&mut it);
    match it.err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

// The decoders live inline, not boxed, so that iterating a chunk allocates
// nothing; there is one iterator per chunk being read.
#[allow(clippy::large_enum_variant)]
enum Inner<'a> {
    Xor(XorDecoder<'a>),
    Decimal(DecimalDecoder<'a>),
    Done,
}

/// A chunk decoder without a buffer of its own: [`fill`](Self::fill) decodes
/// straight into the caller's slice. The series iterator uses it with a
/// buffer of a whole chunk, so a chunk of a block decodes in one call.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub(crate) enum BatchDecoder<'a> {
    Xor(XorDecoder<'a>),
    Decimal(DecimalDecoder<'a>),
}

impl<'a> BatchDecoder<'a> {
    /// Starts decoding `data`; fails if the header is truncated or corrupt.
    #[inline]
    pub(crate) fn new(enc: Encoding, data: &'a [u8]) -> Result<Self, ChunkError> {
        Ok(match enc {
            Encoding::Xor => BatchDecoder::Xor(XorDecoder::new(data)?),
            Encoding::Decimal => BatchDecoder::Decimal(DecimalDecoder::new(data)?),
        })
    }

    /// Decodes up to `out.len()` samples into `out`. Returns how many, and
    /// `Err` if decoding must stop after them. `(0, Ok(()))` means the chunk
    /// ended cleanly (its end was checked).
    #[inline]
    pub(crate) fn fill(&mut self, out: &mut [(i64, f64)]) -> (usize, Result<(), ChunkError>) {
        match self {
            BatchDecoder::Xor(d) => d.fill(out),
            BatchDecoder::Decimal(d) => d.fill(out),
        }
    }
}

/// Samples decoded per batch. The decoders run a tight loop over a batch with
/// their state in registers; `next` then only copies a sample out.
const BATCH: usize = 32;

/// Decoding iterator over a chunk's samples.
///
/// Never panics on arbitrary bytes. On corruption it stops, and
/// [`err`](Self::err) says why; a chunk that decodes fully but has bytes left
/// over also ends with an error. Samples are decoded in batches of 32 into a
/// buffer inside the iterator, so it allocates nothing.
pub struct ChunkIter<'a> {
    buf: [(i64, f64); BATCH],
    idx: usize,
    len: usize,
    inner: Inner<'a>,
    count: u64,
    /// Error to report once the buffered samples before it are consumed.
    pending: Option<ChunkError>,
    err: Option<ChunkError>,
}

impl<'a> ChunkIter<'a> {
    /// Starts decoding `data`; fails if the header is truncated or corrupt.
    pub fn new(enc: Encoding, data: &'a [u8]) -> Result<Self, ChunkError> {
        let (inner, count) = Self::start(enc, data)?;
        Ok(ChunkIter {
            buf: [(0, 0.0); BATCH],
            idx: 0,
            len: 0,
            inner,
            count,
            pending: None,
            err: None,
        })
    }

    /// Restarts this iterator on another chunk, reusing its buffer (cheaper than
    /// [`ChunkIter::new`] when walking many chunks). On error the iterator is left empty.
    pub fn reset(&mut self, enc: Encoding, data: &'a [u8]) -> Result<(), ChunkError> {
        self.idx = 0;
        self.len = 0;
        self.pending = None;
        self.err = None;
        match Self::start(enc, data) {
            Ok((inner, count)) => {
                self.inner = inner;
                self.count = count;
                Ok(())
            }
            Err(e) => {
                self.inner = Inner::Done;
                self.count = 0;
                Err(e)
            }
        }
    }

    fn start(enc: Encoding, data: &'a [u8]) -> Result<(Inner<'a>, u64), ChunkError> {
        Ok(match enc {
            Encoding::Xor => {
                let d = XorDecoder::new(data)?;
                let c = d.count();
                (Inner::Xor(d), c)
            }
            Encoding::Decimal => {
                let d = DecimalDecoder::new(data)?;
                let c = d.count();
                (Inner::Decimal(d), c)
            }
        })
    }

    /// Why decoding stopped early, if it did.
    pub fn err(&self) -> Option<&ChunkError> {
        self.err.as_ref()
    }

    /// Number of samples the header declares (saturating on 32-bit targets).
    pub fn num_samples(&self) -> usize {
        usize::try_from(self.count).unwrap_or(usize::MAX)
    }

    /// Decodes the next batch and returns its first sample.
    #[inline(never)]
    fn refill(&mut self) -> Option<(i64, f64)> {
        let (n, res) = match &mut self.inner {
            Inner::Xor(d) => d.fill(&mut self.buf),
            Inner::Decimal(d) => d.fill(&mut self.buf),
            Inner::Done => (0, Ok(())),
        };
        if let Err(e) = res {
            self.pending = Some(e);
            self.inner = Inner::Done;
        }
        if n == 0 {
            self.inner = Inner::Done;
            if let Some(e) = self.pending.take() {
                self.err = Some(e);
            }
            self.len = 0;
            self.idx = 0;
            return None;
        }
        self.len = n;
        self.idx = 1;
        Some(self.buf[0])
    }
}

impl Iterator for ChunkIter<'_> {
    type Item = (i64, f64);

    #[inline]
    fn next(&mut self) -> Option<(i64, f64)> {
        if let Some(&s) = self.buf[..self.len].get(self.idx) {
            self.idx += 1;
            return Some(s);
        }
        self.refill()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let decoder = match &self.inner {
            Inner::Xor(d) => d.remaining(),
            Inner::Decimal(d) => d.remaining(),
            Inner::Done => 0,
        };
        let buffered = (self.len - self.idx) as u64;
        // Corruption may end the iteration early, so the lower bound is only
        // what is already decoded.
        let upper = usize::try_from(decoder + buffered).ok();
        ((self.len - self.idx), upper)
    }
}

impl FusedIterator for ChunkIter<'_> {}
