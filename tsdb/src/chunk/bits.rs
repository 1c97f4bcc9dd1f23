//! Bit-level I/O shared by the chunk encodings, and the Xor chunk header.
//!
//! Bits are packed most-significant first: the first bit written is bit 7 of
//! byte 0. A value of `n` bits is written with its most significant bit first.
//! The final byte is padded with zero bits.
//!
//! ```text
//!   write(0b101, 3); write(0b1, 1); write(0xff, 8)
//!   byte 0: 1 0 1 1 1 1 1 1   byte 1: 1 1 1 1 0 0 0 0
//!           └─┬─┘ │ └───┬───┘         └──┬──┘ └─pad─┘
//!            101  1     0xff (first 4 bits) (last 4)
//! ```
//!
//! Varints (Xor) are LEB128 (7 data bits per group, high bit = "more
//! follows"), each 8-bit group written into the bit stream like any other
//! 8-bit field, so they need not be byte aligned. Signed integers are zigzag
//! mapped first.
//!
//! [`BitReader`] keeps a 64-bit accumulator, refilled eight bytes at a time,
//! so reading a field is a shift and a mask. Reads past the end of the data
//! yield zero bits instead of failing; the decoders compare
//! [`BitReader::bit_pos`] with the end of the data (or of a section) once per
//! sample or batch and report [`ChunkError::Truncated`] if a sample ran past
//! it. This keeps the per-field fast path free of error branches.
//!
//! Xor chunk header (Decimal chunks start with a plain uvarint count):
//!
//! ```text
//!   count < 0xFFFF:  [count: u16 big-endian]
//!   count ≥ 0xFFFF:  [0xFF 0xFF][count: uvarint (byte aligned)]
//! ```

use super::ChunkError;

/// Zigzag maps signed to unsigned so that small magnitudes get small codes:
/// 0 → 0, -1 → 1, 1 → 2, -2 → 3, …
#[inline(always)]
pub(crate) fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline(always)]
pub(crate) fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Number of significant bits of `u` (0 for 0, 64 for values with the top bit set).
#[inline(always)]
pub(crate) fn bit_width(u: u64) -> u32 {
    64 - u.leading_zeros()
}

/// Sign-extends the low `n` bits of `x` (1 ≤ n ≤ 64).
#[inline(always)]
pub(crate) fn sign_extend(x: u64, n: u32) -> i64 {
    let shift = 64 - n;
    ((x << shift) as i64) >> shift
}

/// Whether `x` fits in an `n`-bit two's complement field (1 ≤ n ≤ 63).
#[inline(always)]
pub(crate) fn fits_signed(x: i64, n: u32) -> bool {
    let half = 1i64 << (n - 1);
    (-half..half).contains(&x)
}

/// Number of bytes of the LEB128 encoding of `u`.
#[inline]
pub(crate) fn uvarint_len(u: u64) -> usize {
    (bit_width(u).max(1) as usize).div_ceil(7)
}

/// Appends the LEB128 encoding of `u` to `out`.
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut u: u64) {
    while u >= 0x80 {
        out.push((u as u8) | 0x80);
        u >>= 7;
    }
    out.push(u as u8);
}

/// ORs the low `n` bits of `value` (n ≤ 64) into `buf` starting at bit `pos`.
///
/// The destination bits must be zero and `buf` must hold `pos + n` bits; the
/// callers size their buffers first. Bits of `value` above `n` are ignored.
#[inline]
pub(crate) fn put_bits(buf: &mut [u8], pos: u64, value: u64, n: u32) {
    if n > 56 {
        put_bits(buf, pos, value >> 32, n - 32);
        put_bits(buf, pos + u64::from(n - 32), value, 32);
        return;
    }
    if n == 0 {
        return;
    }
    let value = value & (u64::MAX >> (64 - n));
    let idx = (pos >> 3) as usize;
    let used = (pos & 7) as u32;
    // Fast path: one 8-byte read-modify-write (used + n ≤ 63).
    if let Some(w) = buf.get_mut(idx..).and_then(|b| b.first_chunk_mut::<8>()) {
        let word = u64::from_be_bytes(*w) | (value << (64 - used - n));
        *w = word.to_be_bytes();
        return;
    }
    // Near the end of the buffer: byte by byte.
    let mut n = n;
    let mut pos = pos;
    while n > 0 {
        let idx = (pos >> 3) as usize;
        let used = (pos & 7) as u32;
        let room = 8 - used;
        let take = room.min(n);
        let bits = (value >> (n - take)) & ((1u64 << take) - 1);
        buf[idx] |= (bits as u8) << (room - take);
        n -= take;
        pos += u64::from(take);
    }
}

/// Header length in bytes for a chunk of `count` samples.
#[inline]
pub(crate) fn count_header_len(count: u64) -> usize {
    if count < 0xFFFF {
        2
    } else {
        2 + uvarint_len(count)
    }
}

/// Appends the count header (see the module doc) to `out`.
pub(crate) fn put_count(out: &mut Vec<u8>, count: u64) {
    if count < 0xFFFF {
        out.extend_from_slice(&(count as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&[0xFF, 0xFF]);
        put_uvarint(out, count);
    }
}

/// Parses the count header; returns `(count, header_len_bytes)`.
pub(crate) fn read_count(data: &[u8]) -> Result<(u64, usize), ChunkError> {
    let Some(&[hi, lo]) = data.first_chunk::<2>() else {
        return Err(ChunkError::Truncated { offset: 0 });
    };
    let short = u16::from_be_bytes([hi, lo]);
    if short != 0xFFFF {
        return Ok((u64::from(short), 2));
    }
    let mut count = 0u64;
    for i in 0..10usize {
        let Some(&b) = data.get(2 + i) else {
            return Err(ChunkError::Truncated {
                offset: (2 + i as u64) * 8,
            });
        };
        if i == 9 && b > 1 {
            return Err(ChunkError::Corrupt {
                offset: (2 + i as u64) * 8,
                reason: "sample count varint overflows 64 bits",
            });
        }
        count |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if count < 0xFFFF || count_header_len(count) != 2 + i + 1 {
                return Err(ChunkError::Corrupt {
                    offset: 16,
                    reason: "sample count not in its shortest form",
                });
            }
            return Ok((count, 2 + i + 1));
        }
    }
    Err(ChunkError::Corrupt {
        offset: 16,
        reason: "sample count varint longer than 10 bytes",
    })
}

/// Append-only bit writer over a growable `Vec<u8>`, used by the pure encoders.
pub(crate) struct BitWriter {
    buf: Vec<u8>,
    /// Number of bits written, including the bytes the writer started with.
    len: u64,
}

impl BitWriter {
    /// Starts writing after the (byte aligned) `prefix`.
    pub(crate) fn new(prefix: Vec<u8>) -> Self {
        let len = prefix.len() as u64 * 8;
        BitWriter { buf: prefix, len }
    }

    /// Writes the low `n` bits of `value` (n ≤ 64).
    #[inline]
    pub(crate) fn write(&mut self, value: u64, n: u32) {
        let end = self.len + u64::from(n);
        let need = end.div_ceil(8) as usize;
        if self.buf.len() < need {
            self.buf.resize(need, 0);
        }
        put_bits(&mut self.buf, self.len, value, n);
        self.len = end;
    }

    /// Number of bits written, including the starting prefix.
    pub(crate) fn bit_len(&self) -> u64 {
        self.len
    }

    /// Appends every bit written to `other`.
    pub(crate) fn append(&mut self, other: &BitWriter) {
        let mut left = other.len;
        let mut chunks = other.buf.chunks(7);
        while left > 0 {
            let chunk = chunks.next().unwrap_or_default();
            let mut word = [0u8; 8];
            word[1..=chunk.len()].copy_from_slice(chunk);
            let n = left.min(56) as u32;
            self.write(u64::from_be_bytes(word) >> (56 - n), n);
            left -= u64::from(n);
        }
    }

    /// Returns the bytes, the last one zero padded.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Fast MSB-first bit reader with a 64-bit accumulator.
///
/// Invariant: the top `avail` bits of `acc` are the next bits of the stream;
/// bits below them are either zero or the correct bits that follow (a refill
/// may load a partial byte early and ORs the same bits again later).
#[derive(Clone)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    acc: u64,
    avail: u32,
    /// Next byte of `data` to load. Past the end, zero bytes are loaded and
    /// `pos` keeps counting, so `bit_pos` stays exact.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// Reads `data` starting at byte `start`.
    pub(crate) fn new(data: &'a [u8], start: usize) -> Self {
        BitReader {
            data,
            acc: 0,
            avail: 0,
            pos: start,
        }
    }

    /// Reads `data` starting at bit `start` (≤ `data.len() * 8`).
    pub(crate) fn at_bit(data: &'a [u8], start: u64) -> Self {
        let mut r = BitReader::new(data, (start / 8) as usize);
        r.read((start % 8) as u32);
        r
    }

    /// Bit offset of the next unread bit, from the start of `data`.
    #[inline(always)]
    pub(crate) fn bit_pos(&self) -> u64 {
        self.pos as u64 * 8 - u64::from(self.avail)
    }

    /// Total number of bits in `data`.
    #[inline(always)]
    pub(crate) fn len_bits(&self) -> u64 {
        self.data.len() as u64 * 8
    }

    /// Whether some read went past the end of the data.
    #[inline(always)]
    pub(crate) fn overrun(&self) -> bool {
        self.bit_pos() > self.len_bits()
    }

    /// Bits from the read position to the end of the data (0 after an overrun).
    #[inline(always)]
    pub(crate) fn bits_left(&self) -> u64 {
        self.len_bits().saturating_sub(self.bit_pos())
    }

    /// Tops the accumulator up to at least 56 valid bits. Also correct when
    /// 56 or more bits are already available: it then loads no whole byte and
    /// ORs in only bits that are already there.
    #[inline(always)]
    pub(crate) fn refill(&mut self) {
        let word = match self.data.get(self.pos..).and_then(|s| s.first_chunk::<8>()) {
            Some(w) => u64::from_be_bytes(*w),
            None => self.tail_word(),
        };
        self.acc |= word >> self.avail;
        let bytes = (63 - self.avail) >> 3;
        self.pos += bytes as usize;
        self.avail += bytes * 8;
    }

    /// The next eight bytes, zero padded past the end of the data.
    #[cold]
    fn tail_word(&self) -> u64 {
        let mut tmp = [0u8; 8];
        if let Some(rest) = self.data.get(self.pos..) {
            let n = rest.len().min(8);
            tmp[..n].copy_from_slice(&rest[..n]);
        }
        u64::from_be_bytes(tmp)
    }

    /// Makes at least `n` (≤ 56) bits available for [`peek`](Self::peek).
    #[inline(always)]
    pub(crate) fn ensure(&mut self, n: u32) {
        if self.avail < n {
            self.refill();
        }
    }

    /// The next `n` bits (0 ≤ n ≤ 56) without consuming them; requires a prior
    /// `ensure(n)`.
    #[inline(always)]
    pub(crate) fn peek(&self, n: u32) -> u64 {
        // Two shifts so that n == 0 yields 0 instead of shifting by 64.
        (self.acc >> 1) >> (63 - n)
    }

    /// Number of zero bits at the read position, exact up to `n` after an
    /// `ensure(n)` (beyond it, bits not yet loaded count as zeros).
    #[inline(always)]
    pub(crate) fn leading_zeros(&self) -> u32 {
        self.acc.leading_zeros()
    }

    /// Consumes `n` bits; requires that they are available.
    #[inline(always)]
    pub(crate) fn skip(&mut self, n: u32) {
        self.acc <<= n;
        self.avail -= n;
    }

    /// Reads `n` bits, 0 ≤ n ≤ 56.
    #[inline(always)]
    pub(crate) fn read(&mut self, n: u32) -> u64 {
        self.ensure(n);
        let v = self.peek(n);
        self.skip(n);
        v
    }

    /// Reads `n` bits, 0 ≤ n ≤ 64.
    #[inline(always)]
    pub(crate) fn read_long(&mut self, n: u32) -> u64 {
        if n <= 56 {
            self.read(n)
        } else {
            let hi = self.read(n - 32);
            let lo = self.read(32);
            (hi << 32) | lo
        }
    }

    /// Reads a LEB128 value written by [`BitWriter::write_uvarint`].
    pub(crate) fn read_uvarint(&mut self) -> Result<u64, ChunkError> {
        let start = self.bit_pos();
        let mut u = 0u64;
        for i in 0..10u32 {
            let b = self.read(8);
            if i == 9 && b > 1 {
                return Err(ChunkError::Corrupt {
                    offset: start,
                    reason: "varint overflows 64 bits",
                });
            }
            u |= (b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(u);
            }
        }
        Err(ChunkError::Corrupt {
            offset: start,
            reason: "varint longer than 10 bytes",
        })
    }

    /// Reads a zigzag-mapped LEB128 value.
    pub(crate) fn read_varint(&mut self) -> Result<i64, ChunkError> {
        self.read_uvarint().map(unzigzag)
    }

    /// Checks that the stream ends here: only zero padding bits remain in the
    /// current byte and no bytes follow.
    pub(crate) fn check_end(&mut self) -> Result<(), ChunkError> {
        let pos = self.bit_pos();
        if pos > self.len_bits() {
            return Err(ChunkError::Truncated { offset: pos });
        }
        let rest = self.len_bits() - pos;
        if rest >= 8 {
            return Err(ChunkError::Corrupt {
                offset: pos,
                reason: "trailing bytes after the last sample",
            });
        }
        let rest = rest as u32;
        self.ensure(rest);
        if self.peek(rest) != 0 {
            return Err(ChunkError::Corrupt {
                offset: pos,
                reason: "non-zero padding bits after the last sample",
            });
        }
        Ok(())
    }
}
