//! Prometheus's XOR chunk encoding (the `XOR` chunks of remote read's streamed responses and
//! of Prometheus's TSDB), written from its format description: an encoder and a checking
//! decoder. This is not o11y's internal chunk format; it is produced only for clients.
//!
//! ```text
//! bytes 0..2   number of samples, u16 big-endian
//! bitstream    (most significant bit first; the last byte is zero-padded)
//!   sample 0   t: signed varint (zig-zag) · v: 64 raw bits
//!   sample 1   Δt = t1 − t0: unsigned varint · value as below
//!   sample n   Δ²t = Δt_n − Δt_{n−1}:
//!                0                       Δ²t = 0
//!                10   + 14 bits          −(2¹³−1) ≤ Δ²t ≤ 2¹³   (two's complement, low bits)
//!                110  + 17 bits          −(2¹⁶−1) ≤ Δ²t ≤ 2¹⁶
//!                1110 + 20 bits          −(2¹⁹−1) ≤ Δ²t ≤ 2¹⁹
//!                1111 + 64 bits          anything else
//!              value: x = bits(v) XOR bits(previous v)
//!                0                       x = 0
//!                10 + significant bits   x fits the previous leading/trailing-zero window
//!                11 + 5 bits leading zeros (at most 31) + 6 bits significant-bit count
//!                   (64 written as 0) + the significant bits; this becomes the window
//! ```
//!
//! Both varints start on a byte boundary (after the header; after a whole-byte varint and 64
//! bits), so their bytes appear in the chunk as is.

/// Most samples one chunk holds (Prometheus cuts chunks at 120 samples).
pub const MAX_SAMPLES_PER_CHUNK: usize = 120;

/// Why an XOR chunk could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XorError {
    #[error("XOR chunk shorter than its 2-byte header")]
    NoHeader,
    #[error("XOR chunk ends at bit {bit} while reading sample {sample} of {total}")]
    Truncated { bit: usize, sample: u16, total: u16 },
    #[error("XOR chunk sample {sample}: varint too long")]
    BadVarint { sample: u16 },
}

struct BitWriter {
    buf: Vec<u8>,
    /// Bits used in the last byte of `buf` (0: the last byte is full or there is none).
    used: u8,
}

impl BitWriter {
    fn bit(&mut self, b: bool) {
        if self.used == 0 {
            self.buf.push(0);
        }
        if b {
            *self.buf.last_mut().expect("pushed above") |= 0x80 >> self.used;
        }
        self.used = (self.used + 1) % 8;
    }

    /// The low `n` bits of `v`, most significant first.
    fn bits(&mut self, v: u64, n: u32) {
        for i in (0..n).rev() {
            self.bit((v >> i) & 1 == 1);
        }
    }

    fn byte(&mut self, b: u8) {
        self.bits(u64::from(b), 8);
    }
}

fn uvarint_bytes(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encodes up to [`MAX_SAMPLES_PER_CHUNK`] (at most 65535) samples, in time order, as one
/// Prometheus XOR chunk. Values are kept bit-exact (NaN payloads, stale markers, `-0.0`).
pub struct XorEncoder {
    w: BitWriter,
    n: u16,
    t: i64,
    v: u64,
    t_delta: u64,
    /// Leading/trailing zeros of the current value window; `leading == 0xff`: none yet.
    leading: u8,
    trailing: u8,
}

impl Default for XorEncoder {
    fn default() -> Self {
        XorEncoder::new()
    }
}

impl XorEncoder {
    pub fn new() -> XorEncoder {
        XorEncoder {
            w: BitWriter {
                buf: vec![0, 0],
                used: 0,
            },
            n: 0,
            t: 0,
            v: 0,
            t_delta: 0,
            leading: 0xff,
            trailing: 0,
        }
    }

    /// Samples appended so far.
    pub fn len(&self) -> usize {
        usize::from(self.n)
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Appends a sample (timestamps must not decrease; the caller's series are sorted).
    pub fn append(&mut self, t: i64, v: f64) {
        let vb = v.to_bits();
        let mut tmp = Vec::with_capacity(10);
        match self.n {
            0 => {
                // Signed varint: zig-zag, then unsigned varint.
                uvarint_bytes(((t << 1) ^ (t >> 63)) as u64, &mut tmp);
                for b in tmp {
                    self.w.byte(b);
                }
                self.w.bits(vb, 64);
            }
            1 => {
                self.t_delta = t.wrapping_sub(self.t) as u64;
                uvarint_bytes(self.t_delta, &mut tmp);
                for b in tmp {
                    self.w.byte(b);
                }
                self.put_value(vb);
            }
            _ => {
                let delta = t.wrapping_sub(self.t) as u64;
                let dod = delta.wrapping_sub(self.t_delta) as i64;
                if dod == 0 {
                    self.w.bit(false);
                } else if fits(dod, 14) {
                    self.w.bits(0b10, 2);
                    self.w.bits(dod as u64, 14);
                } else if fits(dod, 17) {
                    self.w.bits(0b110, 3);
                    self.w.bits(dod as u64, 17);
                } else if fits(dod, 20) {
                    self.w.bits(0b1110, 4);
                    self.w.bits(dod as u64, 20);
                } else {
                    self.w.bits(0b1111, 4);
                    self.w.bits(dod as u64, 64);
                }
                self.t_delta = delta;
                self.put_value(vb);
            }
        }
        self.t = t;
        self.v = vb;
        self.n += 1;
        self.w.buf[..2].copy_from_slice(&self.n.to_be_bytes());
    }

    fn put_value(&mut self, vb: u64) {
        let x = vb ^ self.v;
        if x == 0 {
            self.w.bit(false);
            return;
        }
        self.w.bit(true);
        let leading = (x.leading_zeros() as u8).min(31);
        let trailing = x.trailing_zeros() as u8;
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            self.w.bit(false);
            self.w.bits(
                x >> self.trailing,
                64 - u32::from(self.leading) - u32::from(self.trailing),
            );
        } else {
            self.leading = leading;
            self.trailing = trailing;
            self.w.bit(true);
            self.w.bits(u64::from(leading), 5);
            let sig = 64 - u32::from(leading) - u32::from(trailing);
            // 64 does not fit in 6 bits; it is written as 0 (0 never occurs: x != 0).
            self.w.bits(u64::from(sig) & 0x3f, 6);
            self.w.bits(x >> trailing, sig);
        }
    }

    /// The chunk bytes (header + bitstream).
    pub fn finish(self) -> Vec<u8> {
        self.w.buf
    }
}

/// Whether `x` is in the range the `nbits` delta-of-delta bucket covers.
fn fits(x: i64, nbits: u32) -> bool {
    -((1i64 << (nbits - 1)) - 1) <= x && x <= 1i64 << (nbits - 1)
}

struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn bit(&mut self) -> Option<bool> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = byte & (0x80 >> (self.pos % 8)) != 0;
        self.pos += 1;
        Some(b)
    }

    fn bits(&mut self, n: u32) -> Option<u64> {
        if self.pos + n as usize > self.data.len() * 8 {
            return None;
        }
        let mut v = 0u64;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        Some(v)
    }

    /// `None` at the end of data; `Some(None)` for a varint longer than 10 bytes.
    fn uvarint(&mut self) -> Option<Option<u64>> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.bits(8)?;
            v |= (b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Some(Some(v));
            }
        }
        Some(None)
    }
}

/// Decodes a Prometheus XOR chunk into its samples, checking every read against the data.
pub fn decode(chunk: &[u8]) -> Result<Vec<(i64, f64)>, XorError> {
    if chunk.len() < 2 {
        return Err(XorError::NoHeader);
    }
    let total = u16::from_be_bytes([chunk[0], chunk[1]]);
    let mut r = BitReader {
        data: &chunk[2..],
        pos: 0,
    };
    let mut out = Vec::with_capacity(usize::from(total));
    let (mut t, mut v, mut t_delta) = (0i64, 0u64, 0u64);
    let (mut leading, mut trailing) = (0u32, 0u32);
    for i in 0..total {
        let truncated = |r: &BitReader<'_>| XorError::Truncated {
            bit: r.pos,
            sample: i,
            total,
        };
        match i {
            0 => {
                let z = r
                    .uvarint()
                    .ok_or_else(|| truncated(&r))?
                    .ok_or(XorError::BadVarint { sample: i })?;
                t = ((z >> 1) as i64) ^ -((z & 1) as i64);
                v = r.bits(64).ok_or_else(|| truncated(&r))?;
                out.push((t, f64::from_bits(v)));
                continue;
            }
            1 => {
                t_delta = r
                    .uvarint()
                    .ok_or_else(|| truncated(&r))?
                    .ok_or(XorError::BadVarint { sample: i })?;
            }
            _ => {
                let mut prefix = 0u32;
                while prefix < 4 {
                    if !r.bit().ok_or_else(|| truncated(&r))? {
                        break;
                    }
                    prefix += 1;
                }
                let dod: i64 = match prefix {
                    0 => 0,
                    4 => r.bits(64).ok_or_else(|| truncated(&r))? as i64,
                    p => {
                        let sz = [14, 17, 20][p as usize - 1];
                        let raw = r.bits(sz).ok_or_else(|| truncated(&r))?;
                        if raw > 1 << (sz - 1) {
                            raw as i64 - (1i64 << sz)
                        } else {
                            raw as i64
                        }
                    }
                };
                t_delta = t_delta.wrapping_add(dod as u64);
            }
        }
        t = t.wrapping_add(t_delta as i64);
        if r.bit().ok_or_else(|| truncated(&r))? {
            if r.bit().ok_or_else(|| truncated(&r))? {
                leading = r.bits(5).ok_or_else(|| truncated(&r))? as u32;
                let mut sig = r.bits(6).ok_or_else(|| truncated(&r))? as u32;
                if sig == 0 {
                    sig = 64;
                }
                trailing = 64u32.saturating_sub(leading + sig);
            }
            let sig = 64 - leading - trailing;
            let x = r.bits(sig).ok_or_else(|| truncated(&r))?;
            v ^= x.checked_shl(trailing).unwrap_or(0);
        }
        out.push((t, f64::from_bits(v)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
        let mut e = XorEncoder::new();
        for &(t, v) in samples {
            e.append(t, v);
        }
        e.finish()
    }

    fn same(a: &[(i64, f64)], b: &[(i64, f64)]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x.0 == y.0 && x.1.to_bits() == y.1.to_bits())
    }

    /// A chunk worked out by hand from the format description: two samples at t=1000 and
    /// t=2000 with values 1.0 and 1.0.
    #[test]
    fn matches_a_hand_worked_chunk() {
        let got = encode(&[(1000, 1.0), (2000, 1.0)]);
        let mut want = vec![0x00, 0x02];
        // zig-zag(1000) = 2000 = varint d0 0f
        want.extend_from_slice(&[0xd0, 0x0f]);
        // 1.0 = 0x3ff0000000000000
        want.extend_from_slice(&1.0f64.to_bits().to_be_bytes());
        // Δt = 1000 = varint e8 07; value unchanged: one 0 bit, padded.
        want.extend_from_slice(&[0xe8, 0x07, 0x00]);
        assert_eq!(got, want);
        assert!(same(&decode(&got).unwrap(), &[(1000, 1.0), (2000, 1.0)]));
    }

    #[test]
    fn every_delta_of_delta_bucket_and_value_case_round_trips() {
        let mut s = vec![(-5, 0.0), (0, -0.0), (15, 1.5), (30, 1.5)];
        let mut t = 30i64;
        for (i, d) in [
            15i64,
            15 + 8192,
            15 - 8191,
            15 + 65536,
            15 - 65535,
            15 + 524288,
            15 - 524287,
            15 + (1 << 40),
            1,
            0,
        ]
        .into_iter()
        .enumerate()
        {
            t += d;
            s.push((
                t,
                [f64::NAN, f64::INFINITY, 2.0, 2.5, f64::MIN_POSITIVE][i % 5],
            ));
        }
        s.push((t + 1, f64::from_bits(o11y_tsdb::STALE_NAN_BITS)));
        s.push((t + 2, f64::from_bits(1)));
        s.push((t + 3, f64::from_bits(u64::MAX)));
        assert!(same(&decode(&encode(&s)).unwrap(), &s));
    }

    #[test]
    fn truncated_and_empty_chunks_are_errors() {
        let c = encode(&[(1, 1.0), (2, 2.0), (3, 3.5)]);
        for n in 0..c.len() - 1 {
            assert!(decode(&c[..n]).is_err(), "cut at {n}");
        }
        assert_eq!(decode(&[0, 0]).unwrap(), vec![]);
        assert_eq!(decode(&[0]), Err(XorError::NoHeader));
    }

    fn arb_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::from_bits(o11y_tsdb::STALE_NAN_BITS)),
            Just(0.0),
            Just(-0.0),
            (0u32..1000).prop_map(f64::from),
        ]
    }

    proptest! {
        #[test]
        fn round_trips(
            start in any::<i64>().prop_map(|t| t / 4),
            steps in proptest::collection::vec(
                prop_oneof![Just(0i64), Just(15_000), 0i64..100_000, 0i64..(1 << 40)],
                0..MAX_SAMPLES_PER_CHUNK,
            ),
            values in proptest::collection::vec(arb_f64(), MAX_SAMPLES_PER_CHUNK),
        ) {
            let mut t = start;
            let mut s = Vec::new();
            for (i, d) in steps.iter().enumerate() {
                t = t.saturating_add(*d);
                s.push((t, values[i]));
            }
            prop_assert!(same(&decode(&encode(&s)).unwrap(), &s));
        }

        #[test]
        fn garbage_is_an_error_not_a_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&data);
        }
    }
}
