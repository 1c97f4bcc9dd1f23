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
//! whose parameters are chosen per chunk to minimise the size. The elements of
//! the two streams are stored one section after the other, so that the
//! decoder runs one tight loop per stream:
//!
//! ```text
//!  ┌──────────────────┬─────────────────────────────────────────────────────┐
//!  │ count            │ bit stream (MSB first, zero padded to a byte)       │
//!  │ uvarint (LEB128) │                                                     │
//!  └──────────────────┴─────────────────────────────────────────────────────┘
//!  Nothing follows when count == 0.
//!
//!  bit stream:
//!    scale k: 4 bits
//!    [t stream params][m stream params]   only when count ≥ 2
//!    t0: snum, m0: snum                   the first sample
//!    t section length in bits: num        only when both streams have
//!                                         elements (neither is EXACT)
//!    t section: t elements 1..count
//!    m section: m elements 1..count
//!
//!  num: '0' for 0; else '1', then n - 1 in 6 bits for the bit width n of the
//!       value, then its n - 1 bits below the top one (1 to 70 bits)
//!  snum: num of the zigzag-mapped signed value (0 → 0, -1 → 1, 1 → 2, …)
//!
//!  stream params: mode, 2 bits, and its parameters; element e[i] (i ≥ 1) is
//!    0 = LINEAR  slope: snum, off: snum   e[i] = x[i] - (x[0] + off + i·slope)
//!    1 = DELTA   base: snum               e[i] = (x[i] - x[i-1]) - base
//!    2 = DOD     base: snum               e[i] = (x[i] - x[i-1]) - (x[i-1] - x[i-2]),
//!                                         with x[0] - x[-1] taken as base
//!    3 = EXACT   slope: snum              x[i] = x[0] + i·slope; nothing more
//!                                         follows and elements take no bits
//!    then (not EXACT):
//!    g - 1: num                  every e[i] is g · q[i]
//!    sparse: 1 bit; when set, the Rice parameter r (4 bits) and center c (snum)
//!    buckets - 1: 2 bits, then one 7-bit width (0..=64) per bucket
//!
//!  dense stream: each element is the value code of zigzag(q[i])
//!  sparse stream: the elements are cut into units: a gap code G (how many
//!    zero elements come next) and, unless those zeros reach the end of the
//!    chunk, the value code of the non-zero element after them:
//!    zigzag(q - c), minus one when c = 0 (q = 0 cannot occur then).
//!    A unit starts at element 1 and right after each value code.
//!
//!  value code: the first bucket wide enough for the code, then the code
//!    bucket j < last: j one bits, a zero bit, then width[j] bits
//!    last bucket:     (buckets - 1) one bits, then width[last] bits
//!    e.g. widths [0, 5, 64]: '0' → 0, '10'+5 bits, '11'+64 bits;
//!         widths [0]: every code is 0 and takes no bits at all.
//!  gap code (Rice): q = G >> r as q zero bits and a one bit (no one bit when
//!    q is 32, the most allowed), then the low r bits of G.
//! ```
//!
//! LINEAR with the median interval as its slope puts timestamps on a grid: a
//! scrape that comes a few ms late costs one non-zero element, where deltas
//! cost two and delta-of-deltas three; `off` absorbs a late first scrape.
//! Sparse streams make runs of zeros cheap (on-grid timestamps, idle
//! counters): a gap code of a few bits covers a run, and the jumps of an idle
//! counter are coded around their median `c`.
//!
//! The encoder tries EXACT when every delta is equal, otherwise LINEAR around
//! the median level and on the median slope, DELTA with base 0 and with the
//! median delta, and DOD from the first delta; takes the common divisor `g` of
//! each (4096 for page-sized memory gauges); picks the cheapest bucket widths,
//! and sparse coding (with the best Rice parameter and center) only when it
//! saves at least a bit per unit, since each unit costs the decoder a
//! hard-to-predict branch; and keeps the smallest plan. A constant series with
//! a fixed scrape interval costs no bits per sample. All arithmetic is exact in
//! i128 while planning and wraps in i64 while decoding, which agree modulo
//! 2^64, so any i64 timestamps work.
//!
//! Decoding never fails inside a section: every bit pattern is a valid code.
//! A section that runs past its end (the stored length, or the chunk end) is
//! [`ChunkError::Corrupt`] or [`ChunkError::Truncated`] at the element that
//! does; after the last sample the timestamp section must end exactly at its
//! stored length and only zero padding may follow.

use super::bits::{bit_width, put_uvarint, unzigzag, zigzag, BitReader, BitWriter};
use super::ChunkError;

/// Largest decimal scale `k`.
pub(crate) const MAX_SCALE: usize = 15;

/// Exact powers of ten (all below 2^53).
static POW10: [f64; MAX_SCALE + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Longest unary part of a gap code; it then has no terminating one bit.
const MAX_UNARY: u32 = 32;

/// Largest Rice parameter (a 4-bit field).
const MAX_RICE: u32 = 15;

/// Most bits a gap code takes.
const MAX_GAP_BITS: u32 = MAX_UNARY + MAX_RICE;

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

/// How an integer stream predicts each value from the previous ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Linear = 0,
    Delta = 1,
    Dod = 2,
    Exact = 3,
}

/// Bucket widths of the value code.
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

    /// Total bits for a histogram of code widths given as prefix sums `cum`.
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

    /// The cheapest table (up to four buckets) for a histogram of code
    /// widths, and the bits of all the codes.
    fn best(hist: &[u64; 65]) -> (Table, u64) {
        let mut cum = [0u64; 65];
        let mut acc = 0;
        for (c, h) in cum.iter_mut().zip(hist) {
            acc += h;
            *c = acc;
        }
        let mut present = [0u32; 65];
        let mut np = 0;
        for w in 0..=64u32 {
            if hist[w as usize] > 0 {
                present[np] = w;
                np += 1;
            }
        }
        let Some((&max, cands)) = present[..np].split_last() else {
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

    /// Writes `code` with the bucket that takes it.
    fn write(&self, w: &mut BitWriter, code: u64) {
        let need = bit_width(code);
        let mut j = 0;
        while j + 1 < self.n && self.widths[j as usize] < need {
            j += 1;
        }
        let prefix_len = Self::prefix_len(self.n, j);
        // j ones, then a zero unless this is the last bucket.
        let prefix = ((1u64 << j) - 1) << (prefix_len - j);
        w.write(prefix, prefix_len);
        w.write(code, self.widths[j as usize]);
    }
}

/// Histogram of the bit widths of `codes`.
fn width_hist(codes: impl Iterator<Item = u64>) -> [u64; 65] {
    let mut hist = [0u64; 65];
    for c in codes {
        hist[bit_width(c) as usize] += 1;
    }
    hist
}

/// Bits of the gap code of `gap` with Rice parameter `r`, if representable.
#[inline]
fn gap_bits(gap: u64, r: u32) -> Option<u64> {
    let q = gap >> r;
    match q.cmp(&u64::from(MAX_UNARY)) {
        std::cmp::Ordering::Less => Some(q + 1 + u64::from(r)),
        std::cmp::Ordering::Equal => Some(q + u64::from(r)),
        std::cmp::Ordering::Greater => None,
    }
}

/// Writes the gap code of `gap` (representable with `r`).
fn write_gap(w: &mut BitWriter, gap: u64, r: u32) {
    let q = (gap >> r) as u32;
    if q < MAX_UNARY {
        // q zero bits, then a one.
        w.write(1, q + 1);
    } else {
        w.write(0, MAX_UNARY);
    }
    w.write(gap, r);
}

/// Reads a gap code with Rice parameter `r` (≤ [`MAX_RICE`]). Every bit
/// pattern is a valid code.
#[inline(always)]
fn read_gap(r: &mut BitReader<'_>, rice: u32) -> u64 {
    r.ensure(MAX_GAP_BITS);
    let q = r.leading_zeros().min(MAX_UNARY);
    r.skip(q + u32::from(q < MAX_UNARY));
    let low = r.peek(rice);
    r.skip(rice);
    (u64::from(q) << rice) | low
}

/// The gaps of a sparse stream's units (see the module doc): for each unit
/// the number of zero elements it starts with.
fn sparse_gaps(q: &[i64]) -> Vec<u64> {
    let mut gaps = Vec::new();
    let mut i = 0;
    while i < q.len() {
        let run = q[i..].iter().take_while(|&&q| q == 0).count();
        gaps.push(run as u64);
        // The zeros, then the non-zero element (if any) that ends the unit.
        i += run + 1;
    }
    gaps
}

/// The code of a non-zero quotient `q` in a sparse stream with center `c`.
#[inline]
fn sparse_code(q: i64, c: i64) -> u64 {
    // With c = 0, q = 0 never occurs, so zigzag(q) ≥ 1.
    zigzag(q.wrapping_sub(c)) - u64::from(c == 0)
}

/// Bits of the number code of `u` (see the module doc).
fn num_bits(u: u64) -> u64 {
    if u == 0 {
        1
    } else {
        6 + u64::from(bit_width(u))
    }
}

/// Bits of the number code of `zigzag(x)`.
fn snum_bits(x: i64) -> u64 {
    num_bits(zigzag(x))
}

/// Writes the number code of `u`: '0' for 0; otherwise '1', the bit width
/// n of `u` minus one in 6 bits, and the n - 1 bits below the top one.
fn write_num(w: &mut BitWriter, u: u64) {
    if u == 0 {
        w.write(0, 1);
    } else {
        let n = bit_width(u);
        w.write(1, 1);
        w.write(u64::from(n - 1), 6);
        w.write(u, n - 1);
    }
}

/// Writes the number code of `zigzag(x)`.
fn write_snum(w: &mut BitWriter, x: i64) {
    write_num(w, zigzag(x));
}

/// Reads a number code; every bit pattern is valid.
fn read_num(r: &mut BitReader<'_>) -> u64 {
    if r.read(1) == 0 {
        return 0;
    }
    let n = r.read(6) as u32 + 1;
    (1 << (n - 1)) | r.read_long(n - 1)
}

/// Reads the number code of a zigzag-mapped signed integer.
fn read_snum(r: &mut BitReader<'_>) -> i64 {
    unzigzag(read_num(r))
}

/// The median of `xs` (the upper one for an even length); `xs` is reordered.
fn median<T: Ord + Copy>(xs: &mut [T]) -> T {
    let mid = xs.len() / 2;
    *xs.select_nth_unstable(mid).1
}

/// How a stream's elements are coded (see the module doc).
#[derive(Clone, Copy, Debug)]
struct Coding {
    table: Table,
    /// Sparse streams: the Rice parameter of the gap code, and the center
    /// that non-zero quotients are coded around.
    sparse: Option<(u32, i64)>,
    /// What the planner minimises: the bits of the sparse and table header
    /// fields and of every element, plus one per unit of a sparse stream
    /// (see [`Coding::choose`]).
    cost: u64,
}

impl Coding {
    /// The cheapest coding of the quotients `q`.
    fn choose(q: &[i64]) -> Coding {
        let (table, elem_bits) = Table::best(&width_hist(q.iter().map(|&q| zigzag(q))));
        let bits = 1 + table.header_bits() + elem_bits;
        let mut best = Coding {
            table,
            sparse: None,
            cost: bits,
        };
        if elem_bits == 0 || !q.contains(&0) {
            return best;
        }
        let gaps = sparse_gaps(q);
        // Every unit costs at least two bits (its gap code, and the penalty
        // below); no use going on when that is already more than dense.
        if 2 * gaps.len() as u64 >= best.cost {
            return best;
        }
        let max_gap = gaps.iter().copied().max().unwrap_or(0);
        let Some(r_min) = (0..=MAX_RICE).find(|&r| gap_bits(max_gap, r).is_some()) else {
            return best;
        };
        // The best Rice parameter is near log2 of the mean gap.
        let mean = gaps.iter().sum::<u64>() / gaps.len() as u64;
        let lo = bit_width(mean).saturating_sub(2).clamp(r_min, MAX_RICE);
        let Some((rice, gap_bits_total)) = (lo..=(lo + 3).min(MAX_RICE))
            .map(|r| {
                let total: u64 = gaps.iter().filter_map(|&g| gap_bits(g, r)).sum();
                (r, total)
            })
            .min_by_key(|&(_, total)| total)
        else {
            return best;
        };
        let mut nonzero: Vec<i64> = q.iter().copied().filter(|&q| q != 0).collect();
        let mid = if nonzero.is_empty() {
            0
        } else {
            median(&mut nonzero)
        };
        let centers = if mid == 0 { &[0][..] } else { &[0, mid][..] };
        for &center in centers {
            let (t, value_bits) =
                Table::best(&width_hist(nonzero.iter().map(|&q| sparse_code(q, center))));
            let bits = 1 + 4 + snum_bits(center) + t.header_bits() + value_bits + gap_bits_total;
            // A unit costs the decoder a hard-to-predict branch or two; when
            // zeros are short and frequent, dense codes are almost as small
            // and much faster to decode. Sparse must save a bit per unit.
            let cost = bits + gaps.len() as u64;
            if cost <= best.cost {
                best = Coding {
                    table: t,
                    sparse: Some((rice, center)),
                    cost,
                };
            }
        }
        best
    }

    fn write_header(&self, w: &mut BitWriter) {
        match self.sparse {
            None => w.write(0, 1),
            Some((rice, center)) => {
                w.write(1, 1);
                w.write(u64::from(rice), 4);
                write_snum(w, center);
            }
        }
        w.write(u64::from(self.table.n - 1), 2);
        for &width in &self.table.widths[..self.table.n as usize] {
            w.write(u64::from(width), 7);
        }
    }
}

/// An integer stream's chosen parameters and its elements.
#[derive(Debug)]
struct Plan {
    mode: Mode,
    /// LINEAR, EXACT: the slope; DELTA: the base; DOD: the delta before x[1].
    base: i64,
    /// LINEAR: offset of the line from x[0].
    off: i64,
    g: u64,
    coding: Coding,
    /// Quotients q of elements 1.., at index i - 1 (EXACT: all zero).
    q: Vec<i64>,
    /// What the planner minimises: the bits of the stream's parameters and
    /// elements, plus [`Coding::cost`]'s penalty for sparse units.
    cost: u64,
}

impl Plan {
    /// Plans a stream of ≥ 2 values.
    fn new(xs: &[i64]) -> Plan {
        let x0 = i128::from(xs[0]);
        let deltas: Vec<i128> = xs
            .windows(2)
            .map(|w| i128::from(w[1]) - i128::from(w[0]))
            .collect();
        if deltas.iter().all(|&d| d == deltas[0]) {
            // Wrapping is fine: the decoder only needs the slope modulo 2^64.
            let slope = deltas[0] as i64;
            return Plan {
                mode: Mode::Exact,
                base: slope,
                off: 0,
                g: 1,
                coding: Coding {
                    table: Table {
                        n: 1,
                        widths: [0; 4],
                    },
                    sparse: None,
                    cost: 0,
                },
                q: vec![0; deltas.len()],
                cost: 2 + snum_bits(slope),
            };
        }
        let median_delta = median(&mut deltas.clone());

        let linear = |slope: i128, off: i128| -> Vec<i128> {
            xs.iter()
                .enumerate()
                .skip(1)
                .map(|(i, &x)| i128::from(x) - x0 - off - i as i128 * slope)
                .collect()
        };

        let mut best = Plan::build(Mode::Delta, 0, 0, &deltas);
        let mut consider = |p: Option<Plan>| {
            if let Some(p) = p {
                if p.cost < best.cost {
                    best = p;
                }
            }
        };
        // LINEAR around the median level, and on the median slope (a grid).
        let slopes = if median_delta == 0 {
            &[0][..]
        } else {
            &[0, median_delta][..]
        };
        for &slope in slopes {
            let Ok(s) = i64::try_from(slope) else {
                continue;
            };
            let off = i64::try_from(median(&mut linear(slope, 0))).unwrap_or(0);
            let elems = linear(slope, i128::from(off));
            consider(Some(Plan::build(Mode::Linear, s, off, &elems)));
        }
        if median_delta != 0 {
            if let Ok(base) = i64::try_from(median_delta) {
                let shifted: Vec<i128> = deltas.iter().map(|&d| d - median_delta).collect();
                consider(Some(Plan::build(Mode::Delta, base, 0, &shifted)));
            }
        }
        // DOD starting from the first delta, so that e[1] = 0.
        let first = deltas[0];
        let dods: Vec<i128> = std::iter::once(0)
            .chain(deltas.windows(2).map(|w| w[1] - w[0]))
            .collect();
        // Wrapping is fine: the decoder only needs the delta modulo 2^64.
        consider(Some(Plan::build(Mode::Dod, first as i64, 0, &dods)));
        best
    }

    fn build(mode: Mode, base: i64, off: i64, elems: &[i128]) -> Plan {
        let mut g = 0u128;
        for &e in elems {
            let a = e.unsigned_abs();
            // Most elements are zero or multiples of the divisor so far;
            // checking that is much cheaper than a full GCD.
            let divides = a == 0
                || match (u64::try_from(g), u64::try_from(a)) {
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
        let (g, q): (u64, Vec<i64>) = match (g, quotients) {
            (Some(g), Some(q)) => (g as u64, q),
            // Exact when every element fits an i64; otherwise correct modulo
            // 2^64, which is all the wrapping decoder needs.
            _ => (1, elems.iter().map(|&e| e as i64).collect()),
        };
        let coding = Coding::choose(&q);
        let mut params = 2 + num_bits(g - 1) + snum_bits(base);
        if mode == Mode::Linear {
            params += snum_bits(off);
        }
        Plan {
            mode,
            base,
            off,
            g,
            coding,
            q,
            cost: params + coding.cost,
        }
    }

    fn write_header(&self, w: &mut BitWriter) {
        w.write(self.mode as u64, 2);
        write_snum(w, self.base);
        match self.mode {
            Mode::Exact => return,
            Mode::Linear => write_snum(w, self.off),
            Mode::Delta | Mode::Dod => {}
        }
        write_num(w, self.g - 1);
        self.coding.write_header(w);
    }

    /// What to write at each element, in element order: an optional gap
    /// and an optional value code.
    fn actions(&self) -> Vec<(Option<u64>, Option<u64>)> {
        if self.mode == Mode::Exact {
            return vec![(None, None); self.q.len()];
        }
        let Some((_, center)) = self.coding.sparse else {
            return self.q.iter().map(|&q| (None, Some(zigzag(q)))).collect();
        };
        let mut out = vec![(None, None); self.q.len()];
        let mut i = 0;
        while i < self.q.len() {
            let run = self.q[i..].iter().take_while(|&&q| q == 0).count();
            out[i].0 = Some(run as u64);
            if let Some(&q) = self.q.get(i + run) {
                out[i + run].1 = Some(sparse_code(q, center));
            }
            i += run + 1;
        }
        out
    }

    /// Writes every element.
    fn write_elements(&self, w: &mut BitWriter) {
        for action in self.actions() {
            self.write_element(w, action);
        }
    }

    /// Writes one element's action.
    fn write_element(&self, w: &mut BitWriter, action: (Option<u64>, Option<u64>)) {
        if let (Some(gap), Some((rice, _))) = (action.0, self.coding.sparse) {
            write_gap(w, gap, rice);
        }
        if let Some(code) = action.1 {
            self.coding.table.write(w, code);
        }
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
    put_uvarint(&mut out, n as u64);
    if n == 0 {
        return Some(out);
    }
    let (k, ms) = scale_all(samples)?;
    let mut w = BitWriter::new(out);
    w.write(k as u64, 4);
    let ts: Vec<i64> = samples.iter().map(|s| s.0).collect();
    if n == 1 {
        write_snum(&mut w, ts[0]);
        write_snum(&mut w, ms[0]);
        return Some(w.finish());
    }
    let (tp, mp) = (Plan::new(&ts), Plan::new(&ms));
    tp.write_header(&mut w);
    mp.write_header(&mut w);
    write_snum(&mut w, ts[0]);
    write_snum(&mut w, ms[0]);
    let mut t_section = BitWriter::new(Vec::new());
    tp.write_elements(&mut t_section);
    if tp.mode != Mode::Exact && mp.mode != Mode::Exact {
        write_num(&mut w, t_section.bit_len());
    }
    w.append(&t_section);
    mp.write_elements(&mut w);
    Some(w.finish())
}

/// Parses the sample count: a canonical LEB128 uvarint at the start of the
/// chunk. Returns `(count, length in bytes)`.
fn read_count(data: &[u8]) -> Result<(u64, usize), ChunkError> {
    let mut count = 0u64;
    for i in 0..10usize {
        let Some(&b) = data.get(i) else {
            return Err(ChunkError::Truncated { offset: 0 });
        };
        if i == 9 && b > 1 {
            return Err(ChunkError::Corrupt {
                offset: 0,
                reason: "sample count varint overflows 64 bits",
            });
        }
        count |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(ChunkError::Corrupt {
                    offset: 0,
                    reason: "sample count not in its shortest form",
                });
            }
            return Ok((count, i + 1));
        }
    }
    Err(ChunkError::Corrupt {
        offset: 0,
        reason: "sample count varint longer than 10 bytes",
    })
}

/// Which loop decodes a stream's elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Every element is zero and takes no bits.
    Zero,
    Dense,
    Sparse,
}

/// [`Kind`]s as const generic parameters of [`Stream::run`].
const ZERO: u8 = 0;
const DENSE: u8 = 1;
const SPARSE: u8 = 2;

/// Decoding state of one integer stream.
///
/// The modes share one update, selected by masks (all ones or zero):
/// `d += e & dod; p += d + (e & delta); x = p + (e & linear)`, with `p`
/// starting at `x[0] + off` and `d` at the mode's base (EXACT: its slope,
/// with every element zero).
#[derive(Clone, Debug)]
struct Stream {
    mode: Mode,
    kind: Kind,
    /// Indexed by the next three bits: (prefix + width, width) of the
    /// bucket they select.
    codes: [(u32, u32); 8],
    g: i64,
    rice: u32,
    /// Sparse streams: non-zero quotients are `center + unzigzag(code + adj)`.
    center: i64,
    adj: u64,
    /// Zero elements left before the next code (sparse streams).
    zeros: u64,
    /// Whether a value code follows the current run of zeros.
    value_follows: bool,
    mask_dod: i64,
    mask_delta: i64,
    mask_linear: i64,
    off: i64,
    d: i64,
    p: i64,
}

impl Stream {
    /// A stream of one value, or one whose every element is zero.
    fn exact(slope: i64) -> Stream {
        Stream {
            mode: Mode::Exact,
            kind: Kind::Zero,
            codes: [(0, 0); 8],
            g: 1,
            rice: 0,
            center: 0,
            adj: 0,
            zeros: 0,
            value_follows: false,
            mask_dod: 0,
            mask_delta: 0,
            mask_linear: 0,
            off: 0,
            d: slope,
            p: 0,
        }
    }

    fn read_header(r: &mut BitReader<'_>) -> Result<Stream, ChunkError> {
        let start = r.bit_pos();
        let mode = match r.read(2) {
            0 => Mode::Linear,
            1 => Mode::Delta,
            2 => Mode::Dod,
            _ => Mode::Exact,
        };
        let base = read_snum(r);
        if mode == Mode::Exact {
            if r.overrun() {
                return Err(ChunkError::Truncated { offset: start });
            }
            return Ok(Stream::exact(base));
        }
        let off = if mode == Mode::Linear {
            read_snum(r)
        } else {
            0
        };
        // g ≥ 1; a corrupt g of 2^64 wraps to 0, which decodes to garbage but
        // cannot fail.
        let g = read_num(r).wrapping_add(1);
        let sparse = r.read(1) == 1;
        let (rice, center) = if sparse {
            (r.read(4) as u32, read_snum(r))
        } else {
            (0, 0)
        };
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
        if r.overrun() {
            return Err(ChunkError::Truncated { offset: start });
        }
        // Leading one bits of each 3-bit pattern, capped at n - 1.
        const ONES: [u32; 8] = [0, 0, 0, 0, 1, 1, 2, 3];
        let codes = ONES.map(|ones| buckets[ones.min(n - 1) as usize]);
        let mask = |m: Mode| if mode == m { -1 } else { 0 };
        let kind = if sparse {
            Kind::Sparse
        } else if n == 1 && buckets[0].1 == 0 {
            Kind::Zero
        } else {
            Kind::Dense
        };
        Ok(Stream {
            mode,
            kind,
            codes,
            g: g as i64,
            rice,
            center,
            adj: u64::from(center == 0),
            zeros: 0,
            value_follows: false,
            mask_dod: mask(Mode::Dod),
            mask_delta: mask(Mode::Delta),
            mask_linear: mask(Mode::Linear),
            off,
            d: base,
            p: 0,
        })
    }

    /// Starts the stream at its first value.
    fn start(&mut self, x0: i64) {
        self.p = x0.wrapping_add(self.off);
    }

    /// Reads a value code.
    #[inline(always)]
    fn read_code(&self, r: &mut BitReader<'_>) -> u64 {
        r.ensure(3);
        let (total, width) = self.codes[r.peek(3) as usize];
        if total <= 56 {
            // Prefix and payload in one read; the payload is the low bits.
            r.ensure(total);
            let x = r.peek(total) & ((1u64 << width) - 1);
            r.skip(total);
            x
        } else {
            r.skip(total - width);
            r.read_long(width)
        }
    }

    /// Reads the next quotient of a sparse stream.
    #[inline(always)]
    fn sparse_q(&self, r: &mut BitReader<'_>, zeros: &mut u64, value_follows: &mut bool) -> i64 {
        if *zeros > 0 {
            *zeros -= 1;
            return 0;
        }
        if !*value_follows {
            let gap = read_gap(r, self.rice);
            if gap > 0 {
                *zeros = gap - 1;
                *value_follows = true;
                return 0;
            }
        }
        *value_follows = false;
        unzigzag(self.read_code(r).wrapping_add(self.adj)).wrapping_add(self.center)
    }

    /// Decodes one element per slot and stores each value with `put`. With
    /// `CHECK`, stops before the first element that ends past bit `limit` and
    /// returns its index and start; without, decodes every slot whatever the
    /// bits are.
    #[inline(always)]
    fn run<const CHECK: bool, const KIND: u8>(
        &mut self,
        r: &mut BitReader<'_>,
        slots: &mut [(i64, f64)],
        limit: u64,
        put: &impl Fn(&mut (i64, f64), i64),
    ) -> Option<(usize, u64)> {
        // State in locals so that it stays in registers.
        let (mut d, mut p) = (self.d, self.p);
        let (mask_dod, mask_delta, mask_linear) =
            (self.mask_dod, self.mask_delta, self.mask_linear);
        let g = self.g;
        let (mut zeros, mut value_follows) = (self.zeros, self.value_follows);
        let mut stop = None;
        for (j, slot) in slots.iter_mut().enumerate() {
            let start = r.bit_pos();
            let q = match KIND {
                ZERO => 0,
                DENSE => unzigzag(self.read_code(r)),
                _ => self.sparse_q(r, &mut zeros, &mut value_follows),
            };
            if CHECK && r.bit_pos() > limit {
                stop = Some((j, start));
                break;
            }
            let e = g.wrapping_mul(q);
            d = d.wrapping_add(e & mask_dod);
            p = p.wrapping_add(d).wrapping_add(e & mask_delta);
            put(slot, p.wrapping_add(e & mask_linear));
        }
        (self.d, self.p) = (d, p);
        (self.zeros, self.value_follows) = (zeros, value_follows);
        stop
    }

    /// Decodes one element per slot, none ending past bit `limit`, storing
    /// each value with `put`. Returns how many were decoded and, if fewer than
    /// the slots, where the next starts.
    #[inline(always)]
    fn decode(
        &mut self,
        r: &mut BitReader<'_>,
        slots: &mut [(i64, f64)],
        limit: u64,
        put: impl Fn(&mut (i64, f64), i64),
    ) -> (usize, Option<u64>) {
        let saved = (r.clone(), self.clone());
        // One loop per kind, so each is tight; bounds are checked afterwards.
        match self.kind {
            Kind::Zero => self.run::<false, ZERO>(r, slots, limit, &put),
            Kind::Dense => self.run::<false, DENSE>(r, slots, limit, &put),
            Kind::Sparse => self.run::<false, SPARSE>(r, slots, limit, &put),
        };
        if r.bit_pos() <= limit {
            return (slots.len(), None);
        }
        // Some element ran past the limit: decode again, checking each.
        (*r, *self) = saved;
        let stop = match self.kind {
            Kind::Zero => self.run::<true, ZERO>(r, slots, limit, &put),
            Kind::Dense => self.run::<true, DENSE>(r, slots, limit, &put),
            Kind::Sparse => self.run::<true, SPARSE>(r, slots, limit, &put),
        };
        match stop {
            Some((done, start)) => (done, Some(start)),
            None => (slots.len(), None),
        }
    }
}

/// Decoder for Decimal chunks; [`ChunkIter`](super::ChunkIter) drives it.
#[derive(Clone)]
pub(crate) struct DecimalDecoder<'a> {
    /// Reader of the timestamp elements.
    rt: BitReader<'a>,
    /// Reader of the value elements; the end of the chunk is checked on it
    /// unless the timestamp section runs to the end.
    rm: BitReader<'a>,
    /// Where the timestamp section ends, when its length is stored.
    t_end: Option<u64>,
    /// Whether the timestamp section runs to the end of the chunk.
    t_last: bool,
    count: u64,
    i: u64,
    div: f64,
    first: (i64, i64),
    t: Stream,
    m: Stream,
}

impl<'a> DecimalDecoder<'a> {
    /// Parses the header and the stream parameters.
    pub(crate) fn new(data: &'a [u8]) -> Result<Self, ChunkError> {
        let (count, header) = read_count(data)?;
        let mut r = BitReader::new(data, header);
        let mut dec = DecimalDecoder {
            rt: r.clone(),
            rm: r.clone(),
            t_end: None,
            t_last: false,
            count,
            i: 0,
            div: 1.0,
            first: (0, 0),
            t: Stream::exact(0),
            m: Stream::exact(0),
        };
        if count == 0 {
            return Ok(dec);
        }
        dec.div = POW10[r.read(4) as usize];
        if r.overrun() {
            return Err(ChunkError::Truncated {
                offset: header as u64 * 8,
            });
        }
        if count >= 2 {
            dec.t = Stream::read_header(&mut r)?;
            dec.m = Stream::read_header(&mut r)?;
        }
        let fields = r.bit_pos();
        dec.first = (read_snum(&mut r), read_snum(&mut r));
        dec.t.start(dec.first.0);
        dec.m.start(dec.first.1);
        let (has_t, has_m) = (dec.t.mode != Mode::Exact, dec.m.mode != Mode::Exact);
        let t_bits = if has_t && has_m {
            Some(read_num(&mut r))
        } else {
            None
        };
        if r.overrun() {
            return Err(ChunkError::Truncated { offset: fields });
        }
        if let Some(t_bits) = t_bits {
            let end = r.bit_pos().saturating_add(t_bits);
            if end > r.len_bits() {
                return Err(ChunkError::Truncated {
                    offset: r.bit_pos(),
                });
            }
            dec.t_end = Some(end);
        }
        dec.rt = BitReader::at_bit(data, r.bit_pos());
        dec.rm = BitReader::at_bit(data, dec.t_end.unwrap_or(r.bit_pos()));
        dec.t_last = has_t && !has_m;
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

    /// Checks, after the last sample, that both sections ended where they
    /// should and that only zero padding follows.
    fn check_end(&mut self) -> Result<(), ChunkError> {
        if let Some(end) = self.t_end {
            let pos = self.rt.bit_pos();
            if pos != end {
                return Err(ChunkError::Corrupt {
                    offset: pos,
                    reason: "timestamp section shorter than its stored length",
                });
            }
        }
        if self.t_last {
            self.rt.check_end()
        } else {
            self.rm.check_end()
        }
    }

    /// Decodes up to `out.len()` samples into `out`. Returns how many, and
    /// `Err` if decoding must stop after them. `(0, Ok(()))` means the chunk
    /// ended cleanly.
    #[inline(never)]
    pub(crate) fn fill(&mut self, out: &mut [(i64, f64)]) -> (usize, Result<(), ChunkError>) {
        if out.is_empty() {
            return (0, Ok(()));
        }
        if self.i >= self.count {
            return (0, self.check_end());
        }
        let mut n = 0;
        if self.i == 0 {
            out[0] = (self.first.0, unscale(self.first.1, self.div));
            (n, self.i) = (1, 1);
        }
        let want = (self.count - self.i).min((out.len() - n) as u64) as usize;
        let slots = &mut out[n..n + want];

        let len_bits = self.rm.len_bits();
        let t_limit = self.t_end.unwrap_or(len_bits);
        let (done_t, t_stop) = self
            .t
            .decode(&mut self.rt, slots, t_limit, |slot, t| slot.0 = t);
        let slots = &mut slots[..done_t];
        let div = self.div;
        // Integers (k = 0) skip the division; `x / 1.0 == x`, but the
        // compiler cannot drop a division by a runtime value.
        let (done, m_stop) = if div == 1.0 {
            self.m
                .decode(&mut self.rm, slots, len_bits, |slot, m| slot.1 = m as f64)
        } else {
            self.m.decode(&mut self.rm, slots, len_bits, |slot, m| {
                slot.1 = unscale(m, div)
            })
        };
        self.i += done as u64;
        let res = match (m_stop, t_stop) {
            (Some(offset), _) => Err(ChunkError::Truncated { offset }),
            (None, Some(offset)) if self.t_end.is_some() => Err(ChunkError::Corrupt {
                offset,
                reason: "timestamp element runs past its section",
            }),
            (None, Some(offset)) => Err(ChunkError::Truncated { offset }),
            (None, None) => Ok(()),
        };
        (n + done, res)
    }
}

#[cfg(test)]
mod tests {
    //! The planner's choices and the corner cases of the codes; round trips,
    //! corruption and golden files are in `chunk::tests`.

    use super::*;

    fn plan(xs: &[i64]) -> Plan {
        Plan::new(xs)
    }

    /// Deterministic noise in `0..n` (a 64-bit LCG).
    fn noise(seed: &mut u64, n: i64) -> i64 {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (*seed >> 33) as i64 % n
    }

    /// A 15 s scrape grid with a few late or early scrapes (also the first).
    fn scrapes() -> Vec<i64> {
        (0..120)
            .map(|i| {
                let jitter = match i % 11 {
                    0 => 7,
                    5 => -20,
                    _ => 0,
                };
                1_700_000_000_000 + i * 15_000 + jitter
            })
            .collect()
    }

    #[test]
    fn planner_picks_the_mode_that_fits() {
        // Constant values and exact intervals: no elements at all.
        let p = plan(&[42; 120]);
        assert_eq!((p.mode, p.base, p.cost), (Mode::Exact, 0, 3));
        let exact: Vec<i64> = (0..120).map(|i| 1000 + i * 15_000).collect();
        assert_eq!(
            (plan(&exact).mode, plan(&exact).base),
            (Mode::Exact, 15_000)
        );

        // Scrapes on a grid: LINEAR on the median interval, sparse residuals,
        // the jittered first sample absorbed by the offset.
        let p = plan(&scrapes());
        assert_eq!((p.mode, p.base, p.off), (Mode::Linear, 15_000, -7));
        assert!(p.coding.sparse.is_some());
        // 22 of the 119 residuals are non-zero; under 2 bits an element.
        assert!(p.coding.cost < 2 * 119, "{p:?}");

        // An idle counter: sparse deltas, non-zero ones around their median.
        let mut x = 5_000_000;
        let idle: Vec<i64> = (0..120)
            .map(|i| {
                if i % 7 == 3 {
                    x += 120 + i % 5;
                }
                x
            })
            .collect();
        let p = plan(&idle);
        assert_eq!((p.mode, p.base), (Mode::Delta, 0));
        assert_eq!(p.coding.sparse.map(|(_, c)| c), Some(122));

        // A busy counter: dense deltas around the median rate.
        let (mut x, mut seed) = (0, 1);
        let busy: Vec<i64> = (0..120)
            .map(|_| {
                x += 3_000 + noise(&mut seed, 101) - 50;
                x
            })
            .collect();
        let p = plan(&busy);
        assert_eq!(p.mode, Mode::Delta);
        assert!((2_990..=3_010).contains(&p.base), "{p:?}");
        assert!(p.coding.sparse.is_none());

        // Page-sized gauge steps: the common divisor.
        let mut x = 1 << 30;
        let pages: Vec<i64> = (0..120)
            .map(|_| {
                x += 4096 * (noise(&mut seed, 17) - 8);
                x
            })
            .collect();
        assert_eq!(plan(&pages).g, 4096);

        // Noise around a level: LINEAR with slope 0 around the median.
        let level: Vec<i64> = (0..120).map(|_| 44 + noise(&mut seed, 3)).collect();
        let p = plan(&level);
        assert_eq!((p.mode, p.base), (Mode::Linear, 0));

        // Steadily accelerating: delta-of-deltas.
        let accel: Vec<i64> = (0..120).map(|i| i * i * 1000 + i % 2).collect();
        assert_eq!(plan(&accel).mode, Mode::Dod);
    }

    #[test]
    fn sparse_is_not_chosen_for_short_frequent_runs() {
        // Every other element zero, the others ±1: sparse codes would be a
        // little smaller (a 2-bit gap and a 1-bit value per pair, against
        // about 4 bits dense) but cost a hard-to-predict branch per pair.
        let q: Vec<i64> = (0..120)
            .map(|i| match (i % 2, i / 2 % 3) {
                (0, _) => 0,
                (_, 0) => -1,
                _ => 1,
            })
            .collect();
        let c = Coding::choose(&q);
        assert!(c.sparse.is_none(), "{c:?}");
    }

    #[test]
    fn sparse_falls_back_to_dense_when_a_gap_is_too_long() {
        // The longest gap code covers (MAX_UNARY + 1) · 2^MAX_RICE - 1 zeros.
        let longest = ((u64::from(MAX_UNARY) + 1) << MAX_RICE) - 1;
        assert_eq!(gap_bits(longest, MAX_RICE), Some(u64::from(MAX_GAP_BITS)));
        assert_eq!(gap_bits(longest + 1, MAX_RICE), None);
        let mut q = vec![0i64; longest as usize + 1];
        q.push(3);
        let c = Coding::choose(&q);
        assert!(c.sparse.is_none(), "{c:?}");
        q.remove(0);
        assert!(Coding::choose(&q).sparse.is_some());
    }

    #[test]
    fn gap_codes_round_trip_and_every_pattern_is_valid() {
        for rice in [0, 1, 5, MAX_RICE] {
            let mut w = BitWriter::new(Vec::new());
            let gaps: Vec<u64> = (0..=(u64::from(MAX_UNARY) + 1) << rice)
                .filter(|g| g % 7 == 0 || *g < 70)
                .filter(|&g| gap_bits(g, rice).is_some())
                .collect();
            let mut total = 0;
            for &g in &gaps {
                write_gap(&mut w, g, rice);
                total += gap_bits(g, rice).unwrap();
            }
            assert_eq!(w.bit_len(), total);
            let data = w.finish();
            let mut r = BitReader::new(&data, 0);
            for &g in &gaps {
                assert_eq!(read_gap(&mut r, rice), g);
            }
            assert_eq!(r.bit_pos(), total);
        }
        // All zero bits: the longest unary part, with no terminating one.
        let zeros = [0u8; 16];
        let mut r = BitReader::new(&zeros, 0);
        assert_eq!(read_gap(&mut r, 3), u64::from(MAX_UNARY) << 3);
        assert_eq!(r.bit_pos(), u64::from(MAX_UNARY) + 3);
    }

    #[test]
    fn number_codes_round_trip() {
        let values = [
            0,
            1,
            2,
            3,
            127,
            128,
            30_000,
            1 << 41,
            u64::MAX >> 1,
            u64::MAX,
        ];
        let mut w = BitWriter::new(Vec::new());
        for &u in &values {
            let before = w.bit_len();
            write_num(&mut w, u);
            assert_eq!(w.bit_len() - before, num_bits(u), "{u}");
            write_snum(&mut w, u as i64);
        }
        let data = w.finish();
        let mut r = BitReader::new(&data, 0);
        for &u in &values {
            assert_eq!(read_num(&mut r), u);
            assert_eq!(read_snum(&mut r), u as i64);
        }
    }

    /// `data` with the bits `from..to` replaced by what `insert` writes.
    fn splice(data: &[u8], from: u64, to: u64, insert: impl FnOnce(&mut BitWriter)) -> Vec<u8> {
        let mut w = BitWriter::new(Vec::new());
        let mut r = BitReader::new(data, 0);
        for _ in 0..from {
            w.write(r.read(1), 1);
        }
        insert(&mut w);
        let mut r = BitReader::at_bit(data, to);
        while r.bits_left() > 0 {
            w.write(r.read(1), 1);
        }
        // Drop whole zero bytes that the shorter field left at the end.
        let mut out = w.finish();
        while out.len() > data.len() && out.last() == Some(&0) {
            out.pop();
        }
        out
    }

    #[test]
    fn corrupt_timestamp_section_length_is_an_error() {
        // The golden chunk's samples: both streams are sparse, so the section length is set.
        let golden = crate::chunk::tests::GOLDEN_DECIMAL.to_vec();
        let data = encode(&golden).unwrap();
        // The 8-bit t section length sits at bits 156..166 (see the golden
        // test in chunk::tests); the t section at 166..174, m at 174..182.
        let with_len = |len: u64| splice(&data, 156, 166, |w| write_num(w, len));
        assert_eq!(with_len(8), data);
        let decode = |d: &[u8]| super::super::decode_all(super::super::Encoding::Decimal, d);
        assert_eq!(decode(&data).unwrap().len(), 8);
        // One bit short: the last gap code of the t section runs past it.
        let e = decode(&with_len(7)).unwrap_err();
        assert_eq!(
            e,
            ChunkError::Corrupt {
                offset: 170,
                reason: "timestamp element runs past its section"
            },
            "{e}"
        );
        // Past the end of the chunk.
        let e = decode(&with_len(1000)).unwrap_err();
        assert_eq!(e, ChunkError::Truncated { offset: 172 }, "{e}");
        // Longer than what the elements take.
        assert!(decode(&with_len(9)).is_err());
    }
}
