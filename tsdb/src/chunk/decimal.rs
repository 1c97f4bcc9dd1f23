//! Decimal chunks: values stored as integers scaled by 10^k, chosen for
//! immutable blocks when smaller than Xor.
//!
//! Many series hold integers (byte counters, memory gauges) or fixed-point
//! decimals (cpu seconds with two decimals). Each value `v` is stored as the
//! integer `m` with `v == m as f64 / 10^k` bit for bit. `k` is the smallest
//! scale in `0..=15` that works for every sample of the chunk; if none does
//! (NaN, ±Inf, -0.0, |v| ≥ 2^63 · 10^-k, or too many digits) the encoder
//! returns `None` and the chunk stays Xor. Decoding divides by an exactly
//! representable power of ten, so for |m| ≤ 2^53 `m / 10^k` is the correctly
//! rounded value of the decimal, i.e. what parsing its text gives; the encoder
//! checks every value bit for bit regardless.
//!
//! Timestamps and the integers `m` are each encoded as an *integer stream*
//! whose parameters are chosen per chunk to minimise the size:
//!
//! ```text
//!  ┌────────┬──────────────┬────────────────────────────────────────────────┐
//!  │ count  │ kkkk 0000    │ bit stream (MSB first, zero padded to a byte)  │
//!  │ u16 BE │ scale k, rsv │                                                │
//!  └────────┴──────────────┴────────────────────────────────────────────────┘
//!  count: as in Xor (0xFFFF escape + uvarint). Nothing follows when count == 0.
//!
//!  bit stream:
//!    [t stream params][m stream params]     only when count ≥ 2
//!    [t0: zigzag varint][m0: zigzag varint]
//!    sample i ≥ 1: [t element i][m element i]
//!
//!  stream params:
//!    mode: 2 bits   0 = FOR    e[i] = x[i] - x[0]
//!                   1 = DELTA  e[i] = (x[i] - x[i-1]) - base
//!                   2 = DOD    e[1] = x[1] - x[0] is a zigzag varint,
//!                              e[i] = (x[i] - x[i-1]) - (x[i-1] - x[i-2])
//!    base: zigzag varint                      (DELTA only)
//!    g - 1: uvarint      every e[i] (except DOD's e[1]) is g · q[i]
//!    buckets - 1: 2 bits, then one 7-bit width (0..=64) per bucket
//!
//!  element: zigzag(q[i]) in the first bucket wide enough, coded as
//!    bucket j < last: j one bits, a zero bit, then width[j] bits
//!    last bucket:     (buckets - 1) one bits, then width[last] bits
//!    e.g. widths [0, 5, 64]: '0' → 0, '10'+5 bits, '11'+64 bits;
//!         widths [0]: every element is 0 and takes no bits at all.
//! ```
//!
//! The encoder tries FOR, DELTA with base 0 and with the median delta, and
//! DOD, takes the common divisor `g` of each (4096 for page-sized memory
//! gauges), picks the cheapest bucket widths for the resulting histogram, and
//! keeps the smallest. A constant series with a fixed scrape interval costs no
//! bits per sample; a counter growing at a noisy rate costs the bits of its
//! noise. All arithmetic is exact in i128 while planning and wraps in i64
//! while decoding, which agree modulo 2^64, so any i64 timestamps work.

use super::bits::{bit_width, put_count, read_count, uvarint_bits, zigzag, BitReader, BitWriter};
use super::ChunkError;

/// Largest decimal scale `k`.
pub(crate) const MAX_SCALE: usize = 15;

/// Exact powers of ten (all below 2^53).
static POW10: [f64; MAX_SCALE + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Most bits a sample after the second can take: two elements of at most
/// 3 prefix bits and 64 value bits.
const MAX_SAMPLE_BITS: u64 = 2 * (3 + 64);

/// The value a scaled integer decodes to.
#[inline(always)]
fn unscale(m: i64, div: f64) -> f64 {
    m as f64 / div
}

/// `m` with `unscale(m, 10^k)` bit-identical to `v`, if there is one.
#[inline]
fn to_scaled(v: f64, k: usize) -> Option<i64> {
    let div = POW10[k];
    let x = v * div;
    // Below 2^63 the integer fits an i64; NaN and ±Inf are refused.
    if x.is_nan() || x.abs() >= 9_223_372_036_854_775_808.0 {
        return None;
    }
    let m = x.round() as i64;
    // `v * div` is itself rounded, so the integer may be one off.
    [m, m.saturating_sub(1), m.saturating_add(1)]
        .into_iter()
        .find(|&m| unscale(m, div).to_bits() == v.to_bits())
}

/// Scales every value by the smallest workable `k`; `None` if there is none.
fn scale_all(samples: &[(i64, f64)]) -> Option<(usize, Vec<i64>)> {
    let mut k = 0usize;
    for &(_, v) in samples {
        while to_scaled(v, k).is_none() {
            k += 1;
            if k > MAX_SCALE {
                return None;
            }
        }
    }
    // A larger k can (rarely) fail for an earlier value whose scaled integer
    // no longer converts exactly; try the next scales before giving up.
    'scale: for k in k..=MAX_SCALE {
        let mut ms = Vec::with_capacity(samples.len());
        for &(_, v) in samples {
            match to_scaled(v, k) {
                Some(m) => ms.push(m),
                None => continue 'scale,
            }
        }
        return Some((k, ms));
    }
    None
}

/// How an integer stream turns values into elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    For = 0,
    Delta = 1,
    Dod = 2,
}

/// Bucket widths of the element code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Table {
    n: u32,
    widths: [u32; 4],
}

impl Table {
    /// Prefix length of bucket `j`.
    #[inline(always)]
    fn prefix_len(n: u32, j: u32) -> u32 {
        if j + 1 < n {
            j + 1
        } else {
            n - 1
        }
    }

    /// Total bits for `hist` (count of codes per bit width), with `cum` its
    /// prefix sums.
    fn cost(cum: &[u64; 65], widths: &[u32]) -> u64 {
        let n = widths.len() as u32;
        let mut lo = 0u64;
        let mut cost = 0u64;
        for (j, &w) in widths.iter().enumerate() {
            let upto = cum[w as usize];
            cost += (upto - lo) * u64::from(Self::prefix_len(n, j as u32) + w);
            lo = upto;
        }
        cost
    }

    /// The cheapest table (up to four buckets) for a histogram of code widths.
    fn best(hist: &[u64; 65]) -> (Table, u64) {
        let mut cum = [0u64; 65];
        let mut acc = 0;
        for (c, h) in cum.iter_mut().zip(hist) {
            acc += h;
            *c = acc;
        }
        let present: Vec<u32> = (0..=64u32).filter(|&w| hist[w as usize] > 0).collect();
        let Some((&max, cands)) = present.split_last() else {
            return (
                Table {
                    n: 1,
                    widths: [0; 4],
                },
                0,
            );
        };
        let mut best = ([max, 0, 0, 0], 1usize, Self::cost(&cum, &[max]));
        let mut consider = |ws: &[u32]| {
            let c = Self::cost(&cum, ws);
            if c < best.2 {
                let mut arr = [0; 4];
                arr[..ws.len()].copy_from_slice(ws);
                best = (arr, ws.len(), c);
            }
        };
        for (i, &a) in cands.iter().enumerate() {
            consider(&[a, max]);
            for (j, &b) in cands.iter().enumerate().skip(i + 1) {
                consider(&[a, b, max]);
                for &c in &cands[j + 1..] {
                    consider(&[a, b, c, max]);
                }
            }
        }
        let (widths, n, cost) = best;
        (
            Table {
                n: n as u32,
                widths,
            },
            cost,
        )
    }

    fn header_bits(&self) -> u64 {
        2 + 7 * u64::from(self.n)
    }
}

/// An integer stream's chosen parameters and its element codes.
#[derive(Debug)]
struct Plan {
    mode: Mode,
    base: i64,
    g: u64,
    table: Table,
    /// DOD: the first delta, written as a varint at sample 1.
    first: i64,
    /// `zigzag(q[i])` in sample order (DOD: from sample 2).
    codes: Vec<u64>,
    bits: u64,
}

impl Plan {
    /// Plans a stream of ≥ 2 values.
    fn new(xs: &[i64]) -> Plan {
        let x0 = i128::from(xs[0]);
        let deltas: Vec<i128> = xs
            .windows(2)
            .map(|w| i128::from(w[1]) - i128::from(w[0]))
            .collect();

        let fors: Vec<i128> = xs[1..].iter().map(|&x| i128::from(x) - x0).collect();
        let mut best = Plan::build(Mode::For, 0, 0, &fors);

        let mut consider = |p: Plan| {
            if p.bits < best.bits {
                best = p;
            }
        };
        consider(Plan::build(Mode::Delta, 0, 0, &deltas));

        let mut sorted = deltas.clone();
        let mid = sorted.len() / 2;
        let median = *sorted.select_nth_unstable(mid).1;
        if let Ok(base) = i64::try_from(median) {
            if base != 0 {
                let shifted: Vec<i128> = deltas.iter().map(|&d| d - median).collect();
                consider(Plan::build(Mode::Delta, base, 0, &shifted));
            }
        }

        let dods: Vec<i128> = deltas.windows(2).map(|w| w[1] - w[0]).collect();
        consider(Plan::build(Mode::Dod, 0, deltas[0] as i64, &dods));
        best
    }

    fn build(mode: Mode, base: i64, first: i64, elems: &[i128]) -> Plan {
        let mut g = 0u128;
        for &e in elems {
            let a = e.unsigned_abs();
            // Most elements are multiples of the divisor so far; checking
            // that is much cheaper than a full GCD.
            let divides = match (u64::try_from(g), u64::try_from(a)) {
                (Ok(g), Ok(a)) => g != 0 && a % g == 0,
                _ => g != 0 && a % g == 0,
            };
            if !divides {
                g = gcd(g, a);
                if g == 1 {
                    break;
                }
            }
        }
        let g = i64::try_from(g).ok().filter(|&g| g > 1);
        let quotients: Option<Vec<i64>> = g.and_then(|g| {
            elems
                .iter()
                .map(|&e| match i64::try_from(e) {
                    Ok(e) => Some(e / g),
                    Err(_) => i64::try_from(e / i128::from(g)).ok(),
                })
                .collect()
        });
        let (g, codes): (u64, Vec<u64>) = match (g, quotients) {
            (Some(g), Some(q)) => (g as u64, q.into_iter().map(zigzag).collect()),
            // Exact when every element fits an i64; otherwise correct modulo
            // 2^64, which is all the wrapping decoder needs.
            _ => (1, elems.iter().map(|&e| zigzag(e as i64)).collect()),
        };
        // Four interleaved histograms: consecutive increments of one counter
        // would otherwise wait on each other through memory.
        let mut hists = [[0u64; 65]; 4];
        for (i, &c) in codes.iter().enumerate() {
            hists[i & 3][bit_width(c) as usize] += 1;
        }
        let mut hist = hists[0];
        for h in &hists[1..] {
            for (a, b) in hist.iter_mut().zip(h) {
                *a += b;
            }
        }
        let (table, elem_bits) = Table::best(&hist);
        let mut bits = 2 + uvarint_bits(g - 1) + table.header_bits() + elem_bits;
        match mode {
            Mode::Delta => bits += uvarint_bits(zigzag(base)),
            Mode::Dod => bits += uvarint_bits(zigzag(first)),
            Mode::For => {}
        }
        Plan {
            mode,
            base,
            g,
            table,
            first,
            codes,
            bits,
        }
    }

    fn write_header(&self, w: &mut BitWriter) {
        w.write(self.mode as u64, 2);
        if self.mode == Mode::Delta {
            w.write_varint(self.base);
        }
        w.write_uvarint(self.g - 1);
        w.write(u64::from(self.table.n - 1), 2);
        for &width in &self.table.widths[..self.table.n as usize] {
            w.write(u64::from(width), 7);
        }
    }

    /// Writes the element of sample `i` (≥ 1).
    fn write_element(&self, w: &mut BitWriter, i: usize) {
        let code = match self.mode {
            Mode::Dod if i == 1 => return w.write_varint(self.first),
            Mode::Dod => self.codes[i - 2],
            Mode::For | Mode::Delta => self.codes[i - 1],
        };
        let need = bit_width(code);
        let t = &self.table;
        let mut j = 0;
        while j + 1 < t.n && t.widths[j as usize] < need {
            j += 1;
        }
        let prefix_len = Table::prefix_len(t.n, j);
        // j ones, then a zero unless this is the last bucket.
        let prefix = ((1u64 << j) - 1) << (prefix_len - j);
        w.write(prefix, prefix_len);
        w.write(code, t.widths[j as usize]);
    }
}

/// Greatest common divisor; binary GCD on u64 when both fit (the common
/// case), Euclid on u128 otherwise.
fn gcd(a: u128, b: u128) -> u128 {
    if let (Ok(mut a), Ok(mut b)) = (u64::try_from(a), u64::try_from(b)) {
        if a == 0 || b == 0 {
            return u128::from(a | b);
        }
        let shift = (a | b).trailing_zeros();
        a >>= a.trailing_zeros();
        loop {
            b >>= b.trailing_zeros();
            if a > b {
                (a, b) = (b, a);
            }
            b -= a;
            if b == 0 {
                return u128::from(a << shift);
            }
        }
    }
    let (mut a, mut b) = (a, b);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Encodes `samples` as a Decimal chunk, or `None` if some value is not a
/// decimal with at most [`MAX_SCALE`] digits after the point.
pub(crate) fn encode(samples: &[(i64, f64)]) -> Option<Vec<u8>> {
    let n = samples.len();
    let mut out = Vec::with_capacity(16 + n);
    put_count(&mut out, n as u64);
    if n == 0 {
        return Some(out);
    }
    let (k, ms) = scale_all(samples)?;
    out.push((k as u8) << 4);
    let mut w = BitWriter::new(out);
    let ts: Vec<i64> = samples.iter().map(|s| s.0).collect();
    let plans = (n >= 2).then(|| (Plan::new(&ts), Plan::new(&ms)));
    if let Some((tp, mp)) = &plans {
        tp.write_header(&mut w);
        mp.write_header(&mut w);
    }
    w.write_varint(ts[0]);
    w.write_varint(ms[0]);
    if let Some((tp, mp)) = &plans {
        for i in 1..n {
            tp.write_element(&mut w, i);
            mp.write_element(&mut w, i);
        }
    }
    Some(w.finish())
}

/// Decoding state of one integer stream.
#[derive(Clone, Debug)]
struct Stream {
    mode: Mode,
    base: i64,
    g: i64,
    /// Indexed by the next three bits: (prefix + width, width) of the
    /// bucket they select.
    codes: [(u32, u32); 8],
    x0: i64,
    x: i64,
    d: i64,
}

impl Stream {
    fn single() -> Stream {
        Stream {
            mode: Mode::For,
            base: 0,
            g: 1,
            codes: [(0, 0); 8],
            x0: 0,
            x: 0,
            d: 0,
        }
    }

    fn read_header(r: &mut BitReader<'_>) -> Result<Stream, ChunkError> {
        let start = r.bit_pos();
        let mode = match r.read(2) {
            0 => Mode::For,
            1 => Mode::Delta,
            2 => Mode::Dod,
            _ => {
                return Err(ChunkError::Corrupt {
                    offset: start,
                    reason: "unknown integer stream mode",
                })
            }
        };
        let base = if mode == Mode::Delta {
            r.read_varint()?
        } else {
            0
        };
        let g = r
            .read_uvarint()?
            .checked_add(1)
            .ok_or(ChunkError::Corrupt {
                offset: start,
                reason: "integer stream divisor overflows",
            })?;
        let n = r.read(2) as u32 + 1;
        let mut buckets = [(0, 0); 4];
        for (j, b) in buckets.iter_mut().enumerate().take(n as usize) {
            let width = r.read(7) as u32;
            if width > 64 {
                return Err(ChunkError::Corrupt {
                    offset: r.bit_pos() - 7,
                    reason: "bucket wider than 64 bits",
                });
            }
            *b = (Table::prefix_len(n, j as u32) + width, width);
        }
        // Leading one bits of each 3-bit pattern, capped at n - 1.
        const ONES: [u32; 8] = [0, 0, 0, 0, 1, 1, 2, 3];
        let codes = ONES.map(|ones| buckets[ones.min(n - 1) as usize]);
        if r.overrun() {
            return Err(ChunkError::Truncated { offset: start });
        }
        Ok(Stream {
            mode,
            base,
            g: g as i64,
            codes,
            x0: 0,
            x: 0,
            d: 0,
        })
    }

    #[inline(always)]
    fn read_code(&self, r: &mut BitReader<'_>) -> i64 {
        r.ensure(3);
        let (total, width) = self.codes[r.peek(3) as usize];
        let u = if total <= 56 {
            // Prefix and payload in one read; the payload is the low bits.
            r.ensure(total);
            let x = r.peek(total) & ((1u64 << width) - 1);
            r.skip(total);
            x
        } else {
            r.skip(total - width);
            r.read_long(width)
        };
        ((u >> 1) as i64) ^ -((u & 1) as i64)
    }

    /// Decodes element `i` (≥ 1) and returns the value.
    fn next(&mut self, r: &mut BitReader<'_>, i: u64) -> Result<i64, ChunkError> {
        if self.mode == Mode::Dod && i == 1 {
            self.d = r.read_varint()?;
            self.x = self.x.wrapping_add(self.d);
            return Ok(self.x);
        }
        Ok(self.next_fast(r))
    }

    /// Decodes an element other than DOD's first one.
    #[inline(always)]
    fn next_fast(&mut self, r: &mut BitReader<'_>) -> i64 {
        let q = self.read_code(r);
        let e = self.g.wrapping_mul(q);
        match self.mode {
            Mode::For => self.x = self.x0.wrapping_add(e),
            Mode::Delta => self.x = self.x.wrapping_add(self.base.wrapping_add(e)),
            Mode::Dod => {
                self.d = self.d.wrapping_add(e);
                self.x = self.x.wrapping_add(self.d);
            }
        }
        self.x
    }
}

/// Decoder for Decimal chunks; [`ChunkIter`](super::ChunkIter) drives it.
#[derive(Clone)]
pub(crate) struct DecimalDecoder<'a> {
    r: BitReader<'a>,
    count: u64,
    i: u64,
    div: f64,
    t: Stream,
    m: Stream,
}

impl<'a> DecimalDecoder<'a> {
    /// Parses the header and the stream parameters.
    pub(crate) fn new(data: &'a [u8]) -> Result<Self, ChunkError> {
        let (count, header) = read_count(data)?;
        let mut dec = DecimalDecoder {
            r: BitReader::new(data, header),
            count,
            i: 0,
            div: 1.0,
            t: Stream::single(),
            m: Stream::single(),
        };
        if count == 0 {
            return Ok(dec);
        }
        let Some(&scale) = data.get(header) else {
            return Err(ChunkError::Truncated {
                offset: header as u64 * 8,
            });
        };
        if scale & 0x0f != 0 {
            return Err(ChunkError::Corrupt {
                offset: header as u64 * 8,
                reason: "reserved bits of the scale byte are set",
            });
        }
        dec.div = POW10[usize::from(scale >> 4)];
        dec.r = BitReader::new(data, header + 1);
        if count >= 2 {
            dec.t = Stream::read_header(&mut dec.r)?;
            dec.m = Stream::read_header(&mut dec.r)?;
        }
        Ok(dec)
    }

    /// Sample count from the header.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Samples not yet decoded.
    pub(crate) fn remaining(&self) -> u64 {
        self.count - self.i
    }

    /// Decodes the next sample; `Ok(None)` after the last one, once the end of
    /// the chunk has been checked. General path for the first two samples and
    /// the end of the chunk.
    fn next_sample(&mut self) -> Result<Option<(i64, f64)>, ChunkError> {
        if self.i >= self.count {
            self.r.check_end()?;
            return Ok(None);
        }
        let start = self.r.bit_pos();
        let (t, m) = if self.i == 0 {
            let t = self.r.read_varint()?;
            let m = self.r.read_varint()?;
            (self.t.x0, self.m.x0) = (t, m);
            (self.t.x, self.m.x) = (t, m);
            (t, m)
        } else {
            let t = self.t.next(&mut self.r, self.i)?;
            let m = self.m.next(&mut self.r, self.i)?;
            (t, m)
        };
        if self.r.overrun() {
            return Err(ChunkError::Truncated { offset: start });
        }
        self.i += 1;
        Ok(Some((t, unscale(m, self.div))))
    }

    /// Decodes up to `out.len()` samples into `out`. Returns how many, and
    /// `Err` if decoding must stop after them. `(0, Ok(()))` means the chunk
    /// ended cleanly.
    #[inline(never)]
    pub(crate) fn fill(&mut self, out: &mut [(i64, f64)]) -> (usize, Result<(), ChunkError>) {
        let mut n = 0;
        while self.i < 2 || self.i >= self.count {
            let Some(slot) = out.get_mut(n) else {
                return (n, Ok(()));
            };
            match self.next_sample() {
                Ok(Some(s)) => *slot = s,
                Ok(None) => return (n, Ok(())),
                Err(e) => return (n, Err(e)),
            }
            n += 1;
        }
        let want = (self.count - self.i).min((out.len() - n) as u64) as usize;
        let slots = &mut out[n..n + want];
        // Integers (k = 0) skip the division; `x / 1.0 == x`, but the
        // compiler cannot drop a division by a runtime value.
        let (done, res) = if self.div == 1.0 {
            self.fill_hot::<false>(slots)
        } else {
            self.fill_hot::<true>(slots)
        };
        (n + done, res)
    }

    /// The hot loop of [`fill`](Self::fill), from the third sample on.
    #[inline(always)]
    fn fill_hot<const SCALED: bool>(
        &mut self,
        slots: &mut [(i64, f64)],
    ) -> (usize, Result<(), ChunkError>) {
        let value = |m: i64, div: f64| if SCALED { unscale(m, div) } else { m as f64 };
        // State in locals so it stays in registers. While MAX_SAMPLE_BITS
        // remain, no sample can run past the end, so the loop needs no
        // truncation check.
        let mut r = self.r.clone();
        let (mut ts, mut ms) = (self.t.clone(), self.m.clone());
        let div = self.div;
        let mut res = Ok(());
        let mut done = 0;
        let want = slots.len();
        while done < want && r.bits_left() >= MAX_SAMPLE_BITS {
            r.refill();
            let t = ts.next_fast(&mut r);
            let m = ms.next_fast(&mut r);
            slots[done] = (t, value(m, div));
            done += 1;
        }
        while done < want {
            let start = r.bit_pos();
            let t = ts.next_fast(&mut r);
            let m = ms.next_fast(&mut r);
            if r.overrun() {
                res = Err(ChunkError::Truncated { offset: start });
                break;
            }
            slots[done] = (t, value(m, div));
            done += 1;
        }
        self.r = r;
        (self.t, self.m) = (ts, ms);
        self.i += done as u64;
        (done, res)
    }
}
