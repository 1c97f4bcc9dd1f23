//! Tests for the chunk encodings: round-trip proptests with edge-biased
//! inputs, corruption and truncation, golden files (rewritten when
//! `O11Y_BLESS_GOLDEN` is set), and size checks. Speed is measured by the
//! `chunks` criterion bench of `o11y-benches`, not here.

use super::*;
use proptest::prelude::*;
use proptest::sample::Index;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Prometheus's stale marker: a signalling-looking NaN with payload 2.
const STALE: f64 = f64::from_bits(0x7ff0_0000_0000_0002);

/// Samples as comparable bits, so NaN payloads and -0.0 count.
fn bits(samples: &[(i64, f64)]) -> Vec<(i64, u64)> {
    samples.iter().map(|&(t, v)| (t, v.to_bits())).collect()
}

fn decoded_bits(enc: Encoding, data: &[u8]) -> Result<Vec<(i64, u64)>, ChunkError> {
    decode_all(enc, data).map(|s| bits(&s))
}

// ---------------------------------------------------------------- strategies

const EDGE_F64: [f64; 21] = [
    f64::NAN,
    STALE,
    f64::from_bits(0xfff8_0000_0000_0000), // -NaN
    f64::from_bits(0x7ff8_dead_beef_0001), // NaN with payload
    f64::INFINITY,
    f64::NEG_INFINITY,
    0.0,
    -0.0,
    f64::MIN,
    f64::MAX,
    f64::MIN_POSITIVE,
    f64::from_bits(1),                     // smallest subnormal
    f64::from_bits(0x800f_ffff_ffff_ffff), // largest negative subnormal
    f64::EPSILON,
    1.0,
    -1.0,
    0.1,
    0.3,
    1e15,
    9_007_199_254_740_993.0, // 2^53 + 1 (rounds to 2^53)
    -9_223_372_036_854_775_808.0,
];

const EDGE_I64: [i64; 8] = [
    i64::MIN,
    i64::MAX,
    i64::MIN + 1,
    i64::MAX - 1,
    0,
    -1,
    1,
    1_700_000_000_000,
];

fn edge_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => prop::sample::select(&EDGE_F64[..]),
        2 => (-1000i64..1000).prop_map(|i| i as f64),
        2 => (-100_000i64..100_000).prop_map(|i| i as f64 / 100.0),
        2 => any::<u64>().prop_map(f64::from_bits),
        1 => proptest::num::f64::ANY,
    ]
}

fn edge_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        1 => prop::sample::select(&EDGE_I64[..]),
        1 => any::<i64>(),
    ]
}

/// Lengths biased to 0, 1, 2, 3 and a long chunk.
fn edge_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => Just(0usize),
        4 => Just(1usize),
        4 => Just(2usize),
        2 => Just(3usize),
        30 => 4usize..200,
        1 => Just(10_000usize),
    ]
}

fn timestamps(n: usize) -> impl Strategy<Value = Vec<i64>> {
    prop_oneof![
        // Scrape-like: start + i·step + jitter, wrapping.
        3 => (any::<i64>(), 1i64..100_000, prop::collection::vec(-5i64..=5, n)).prop_map(
            |(start, step, jitter)| {
                jitter
                    .iter()
                    .enumerate()
                    .map(|(i, j)| start.wrapping_add(step.wrapping_mul(i as i64)).wrapping_add(*j))
                    .collect()
            }
        ),
        // A scrape grid with a few late or early scrapes: sparse residuals.
        2 => (any::<i64>(), 1i64..100_000, prop::collection::vec((0u8..20, -30i64..=30), n))
            .prop_map(|(start, step, jitter)| {
                jitter
                    .iter()
                    .enumerate()
                    .map(|(i, &(p, j))| {
                        let t = start.wrapping_add(step.wrapping_mul(i as i64));
                        if p < 2 { t.wrapping_add(j) } else { t }
                    })
                    .collect()
            }),
        // Arbitrary order, extremes included.
        2 => prop::collection::vec(edge_i64(), n),
        // Non-decreasing with many equal timestamps.
        1 => (edge_i64(), prop::collection::vec(0i64..3, n)).prop_map(|(start, incs)| {
            incs.iter()
                .scan(start, |t, d| {
                    *t = t.wrapping_add(*d);
                    Some(*t)
                })
                .collect()
        }),
    ]
}

fn values(n: usize) -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        2 => prop::collection::vec(edge_f64(), n),
        // Few distinct values: exercises the XOR "same value" and window reuse.
        2 => (prop::collection::vec(edge_f64(), 1..4), prop::collection::vec(any::<Index>(), n))
            .prop_map(|(pool, idx)| idx.iter().map(|i| *i.get(&pool)).collect()),
        // Idle counters: rare jumps, long runs of equal values.
        2 => (0i64..1_000_000_000, prop::collection::vec((0u8..12, 1i64..1000), n), 0i32..3)
            .prop_map(|(start, jumps, k)| {
                let div = 10f64.powi(k);
                jumps
                    .iter()
                    .scan(start, |m, &(p, d)| {
                        if p == 0 {
                            *m += d;
                        }
                        Some(*m as f64 / div)
                    })
                    .collect()
            }),
        // Decimal counters with k = 0..=3 digits.
        2 => (0i64..1_000_000, prop::collection::vec(0i64..500, n), 0i32..4).prop_map(
            |(start, incs, k)| {
                let div = 10f64.powi(k);
                incs.iter()
                    .scan(start, |m, d| {
                        *m += d;
                        Some(*m as f64 / div)
                    })
                    .collect()
            }
        ),
    ]
}

fn samples() -> impl Strategy<Value = Vec<(i64, f64)>> {
    edge_len().prop_flat_map(|n| {
        (timestamps(n), values(n)).prop_map(|(ts, vs)| ts.into_iter().zip(vs).collect())
    })
}

/// Decimal-friendly samples: integers or fixed-point values with up to 6
/// decimals and |m| ≤ 2^53, which Decimal must accept.
fn decimal_samples() -> impl Strategy<Value = Vec<(i64, f64)>> {
    edge_len().prop_flat_map(|n| {
        let limit = 1i64 << 53;
        (
            timestamps(n),
            prop::collection::vec(-limit..=limit, n),
            0i32..=6,
            prop::bool::ANY,
        )
            .prop_map(move |(ts, ms, k, small)| {
                let div = 10f64.powi(k);
                let ms = ms.into_iter().map(|m| if small { m % 100_000 } else { m });
                ts.into_iter().zip(ms.map(|m| m as f64 / div)).collect()
            })
    })
}

// ---------------------------------------------------------------- round trips

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn xor_round_trip(s in samples()) {
        let data = encode(Encoding::Xor, &s).expect("xor always encodes");
        prop_assert_eq!(decoded_bits(Encoding::Xor, &data)?, bits(&s));
        let mut it = ChunkIter::new(Encoding::Xor, &data)?;
        prop_assert_eq!(it.num_samples(), s.len());
        prop_assert_eq!(it.size_hint(), (0, Some(s.len())));
        if !s.is_empty() {
            it.next();
            prop_assert_eq!(it.size_hint().1, Some(s.len() - 1));
        }
    }

    #[test]
    fn decimal_round_trip(s in samples()) {
        if let Some(data) = encode(Encoding::Decimal, &s) {
            prop_assert_eq!(decoded_bits(Encoding::Decimal, &data)?, bits(&s));
        } else {
            // Only values that are not decimals may be refused.
            prop_assert!(s.iter().any(|&(_, v)| !v.is_finite()
                || v.to_bits() == (-0.0f64).to_bits()
                || v.fract() != 0.0
                || v.abs() >= 9.2e18));
        }
    }

    #[test]
    fn decimal_accepts_decimals(s in decimal_samples()) {
        let data = encode(Encoding::Decimal, &s);
        prop_assert!(data.is_some(), "decimal refused {:?}", &s[..s.len().min(8)]);
        let data = data.unwrap_or_default();
        prop_assert_eq!(decoded_bits(Encoding::Decimal, &data)?, bits(&s));
    }

    #[test]
    fn encode_best_is_smallest(s in samples()) {
        let (enc, data) = encode_best(&s);
        prop_assert_eq!(decoded_bits(enc, &data)?, bits(&s));
        let xor = encode(Encoding::Xor, &s).unwrap_or_default();
        prop_assert!(data.len() <= xor.len());
        if let Some(dec) = encode(Encoding::Decimal, &s) {
            prop_assert!(data.len() <= dec.len());
        }
    }

    #[test]
    fn appender_matches_encode(s in samples(), split in any::<Index>()) {
        let mut a = XorAppender::new();
        prop_assert_eq!(a.bytes(), &[0u8, 0][..]);
        let check_every = s.len() <= 64;
        for (i, &(t, v)) in s.iter().enumerate() {
            a.append(t, v);
            prop_assert_eq!(a.num_samples(), i + 1);
            prop_assert_eq!(a.last_t(), Some(t));
            prop_assert_eq!(a.last_v().map(f64::to_bits), Some(v.to_bits()));
            prop_assert_eq!(a.first_t(), Some(s[0].0));
            prop_assert!(a.heap_bytes() >= a.bytes().len());
            if check_every {
                prop_assert_eq!(decoded_bits(Encoding::Xor, a.bytes())?, bits(&s[..=i]));
            }
        }
        let full = encode(Encoding::Xor, &s).unwrap_or_default();
        prop_assert_eq!(a.bytes(), &full[..]);

        // Restart in the middle: resume from the bytes and append the rest.
        let k = if s.is_empty() { 0 } else { split.index(s.len() + 1) };
        let mut head = XorAppender::new();
        for &(t, v) in &s[..k] {
            head.append(t, v);
        }
        let mut resumed = XorAppender::from_bytes(head.into_bytes())?;
        prop_assert_eq!(resumed.num_samples(), k);
        for &(t, v) in &s[k..] {
            resumed.append(t, v);
        }
        prop_assert_eq!(resumed.into_bytes(), full);
    }

    // ------------------------------------------------------------ corruption

    #[test]
    fn every_truncation_is_an_error(s in samples()) {
        let s = &s[..s.len().min(300)];
        let mut chunks = vec![(Encoding::Xor, encode(Encoding::Xor, s).unwrap_or_default())];
        if let Some(d) = encode(Encoding::Decimal, s) {
            chunks.push((Encoding::Decimal, d));
        }
        for (enc, data) in chunks {
            for cut in 0..data.len() {
                let res = decode_all(enc, &data[..cut]);
                prop_assert!(res.is_err(), "{:?} cut at {} of {} decoded", enc, cut, data.len());
            }
            let mut longer = data.clone();
            longer.push(0);
            prop_assert!(decode_all(enc, &longer).is_err(), "trailing byte accepted");
            prop_assert!(XorAppender::from_bytes(longer).is_err() || enc != Encoding::Xor);
        }
    }

    #[test]
    fn byte_flips_never_panic(
        s in samples(),
        flips in prop::collection::vec((any::<Index>(), 1u8..=255), 1..4),
    ) {
        let s = &s[..s.len().min(300)];
        let mut chunks = vec![(Encoding::Xor, encode(Encoding::Xor, s).unwrap_or_default())];
        if let Some(d) = encode(Encoding::Decimal, s) {
            chunks.push((Encoding::Decimal, d));
        }
        for (enc, mut data) in chunks {
            for (i, x) in &flips {
                let i = i.index(data.len());
                data[i] ^= x;
            }
            for enc in [enc, Encoding::Xor, Encoding::Decimal] {
                check_iteration(enc, &data)?;
            }
            let _ = XorAppender::from_bytes(data);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..96)) {
        check_iteration(Encoding::Xor, &data)?;
        check_iteration(Encoding::Decimal, &data)?;
        if let Ok(mut a) = XorAppender::from_bytes(data) {
            // A chunk that decodes must keep accepting samples.
            let n = a.num_samples();
            a.append(a.last_t().unwrap_or(0).wrapping_add(15_000), 1.0);
            prop_assert_eq!(decode_all(Encoding::Xor, a.bytes())?.len(), n + 1);
        }
    }
}

/// Iterates a possibly corrupt chunk; checks the iterator's own consistency.
fn check_iteration(enc: Encoding, data: &[u8]) -> Result<(), TestCaseError> {
    let Ok(mut it) = ChunkIter::new(enc, data) else {
        prop_assert!(decode_all(enc, data).is_err());
        return Ok(());
    };
    let declared = it.num_samples();
    // A corrupt Decimal header can declare billions of zero-bit samples.
    let limit = 1 << 20;
    let got = it.by_ref().take(limit).count();
    prop_assert!(got <= declared);
    if got < limit {
        prop_assert!(it.next().is_none(), "iterator not fused");
        if it.err().is_none() {
            prop_assert_eq!(got, declared);
        }
        if declared <= limit {
            match decode_all(enc, data) {
                Ok(v) => prop_assert!(it.err().is_none() && v.len() == got),
                Err(e) => prop_assert_eq!(Some(&e), it.err()),
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- edge cases

#[test]
fn empty_and_single_sample() {
    // Xor's count is a u16, Decimal's a uvarint.
    for (enc, empty) in [
        (Encoding::Xor, &[0u8, 0][..]),
        (Encoding::Decimal, &[0u8][..]),
    ] {
        assert_eq!(encode(enc, &[]).unwrap(), empty);
        assert_eq!(decode_all(enc, empty).unwrap(), []);
    }
    let a = XorAppender::new();
    assert_eq!((a.first_t(), a.last_t(), a.last_v()), (None, None, None));
    assert_eq!(a.heap_bytes(), 0);
    assert_eq!(a.into_bytes(), [0, 0]);

    let one = [(i64::MIN, STALE)];
    let data = encode(Encoding::Xor, &one).unwrap();
    assert_eq!(decoded_bits(Encoding::Xor, &data).unwrap(), bits(&one));
    assert_eq!(encode(Encoding::Decimal, &one), None);
    let one = [(-5, 1.25)];
    let data = encode(Encoding::Decimal, &one).unwrap();
    assert_eq!(decoded_bits(Encoding::Decimal, &data).unwrap(), bits(&one));
}

#[test]
fn extreme_timestamps_wrap() {
    let s = [
        (i64::MIN, 1.0),
        (i64::MAX, 2.0),
        (i64::MIN, 3.0),
        (0, 4.0),
        (0, 4.0),
        (i64::MAX, 5.0),
        (-1, 6.0),
    ];
    for enc in [Encoding::Xor, Encoding::Decimal] {
        let data = encode(enc, &s).unwrap();
        assert_eq!(decoded_bits(enc, &data).unwrap(), bits(&s), "{enc:?}");
    }
}

#[test]
fn decimal_refuses_non_decimals() {
    for v in [
        f64::NAN,
        STALE,
        f64::INFINITY,
        -0.0,
        f64::MAX,
        0.1 + 0.2,
        1.0 / 3.0,
        f64::from_bits(1),
    ] {
        assert_eq!(
            encode(Encoding::Decimal, &[(0, 1.0), (1, v)]),
            None,
            "{v:?}"
        );
    }
    for v in [
        0.0,
        1e18,
        -1e18,
        0.001,
        123.456,
        1e-15,
        -9.2e18,
        std::f64::consts::PI,
    ] {
        let s = [(0, 1.0), (1, v)];
        let data = encode(Encoding::Decimal, &s).unwrap();
        assert_eq!(
            decoded_bits(Encoding::Decimal, &data).unwrap(),
            bits(&s),
            "{v:?}"
        );
    }
}

#[test]
fn long_count_header() {
    // Xor counts ≥ 0xFFFF switch the header to 0xFFFF + uvarint; Decimal
    // counts are a uvarint (70_000 = 0xf0 0xa2 0x04).
    let n = 70_000;
    let s: Vec<(i64, f64)> = (0..n).map(|i| (i as i64 * 1000, (i % 7) as f64)).collect();
    for (enc, header) in [
        (Encoding::Xor, &[0xFF, 0xFF][..]),
        (Encoding::Decimal, &[0xf0, 0xa2, 0x04][..]),
    ] {
        let data = encode(enc, &s).unwrap();
        assert_eq!(&data[..header.len()], header);
        assert_eq!(decoded_bits(enc, &data).unwrap(), bits(&s));
    }
    let mut a = XorAppender::new();
    for &(t, v) in &s[..0xFFFE] {
        a.append(t, v);
    }
    let mut a = XorAppender::from_bytes(a.into_bytes()).unwrap();
    for &(t, v) in &s[0xFFFE..] {
        a.append(t, v);
    }
    assert_eq!(a.num_samples(), n);
    assert_eq!(a.first_t(), Some(0));
    assert_eq!(a.bytes(), &encode(Encoding::Xor, &s).unwrap()[..]);
    // Non-canonical long form is rejected.
    assert!(matches!(
        decode_all(Encoding::Xor, &[0xFF, 0xFF, 0x05]),
        Err(ChunkError::Corrupt { offset: 16, .. })
    ));
}

#[test]
fn errors_carry_offsets() {
    assert_eq!(Encoding::from_u8(1), Ok(Encoding::Xor));
    assert_eq!(Encoding::from_u8(2), Ok(Encoding::Decimal));
    assert_eq!(Encoding::from_u8(0), Err(ChunkError::UnknownEncoding(0)));
    assert_eq!(
        decode_all(Encoding::Xor, &[0]),
        Err(ChunkError::Truncated { offset: 0 })
    );
    // One declared sample, no data.
    let e = decode_all(Encoding::Xor, &[0, 1]).unwrap_err();
    assert_eq!(e, ChunkError::Truncated { offset: 16 });
    assert_eq!(
        e.to_string(),
        "chunk truncated: header field or sample at bit 16 (byte 2) runs past the end"
    );
    // Decimal: a count varint that ends early, one not in its shortest
    // form, one declared sample with no bits.
    assert_eq!(
        decode_all(Encoding::Decimal, &[0x80]),
        Err(ChunkError::Truncated { offset: 0 })
    );
    assert!(matches!(
        decode_all(Encoding::Decimal, &[0x81, 0x00]),
        Err(ChunkError::Corrupt { offset: 0, .. })
    ));
    assert_eq!(
        decode_all(Encoding::Decimal, &[0x01]),
        Err(ChunkError::Truncated { offset: 8 })
    );
    // A corrupt timestamp section length: see decimal::tests.
}

#[test]
fn appender_is_small() {
    assert!(std::mem::size_of::<XorAppender>() <= 48);
    let mut a = XorAppender::new();
    let mut t = 1_700_000_000_000i64;
    for i in 0..MAX_SAMPLES_PER_CHUNK {
        t += 15_000 + (i as i64 % 3) - 1;
        a.append(t, (i * 1024) as f64);
    }
    let used = a.bytes().len();
    assert!(
        a.heap_bytes() < used * 3 / 2 + 32,
        "{} for {used}",
        a.heap_bytes()
    );
    let out = a.into_bytes();
    assert_eq!(out.len(), used);
    assert_eq!(out.capacity(), used);
}

// ---------------------------------------------------------------- golden files

/// Xor golden samples: 15 s scrapes with jitter, a missed scrape and special
/// values.
const GOLDEN_XOR: [(i64, f64); 8] = [
    (1_700_000_000_000, 0.0),
    (1_700_000_015_000, 1.5),
    (1_700_000_030_002, 1.5),
    (1_700_000_045_001, 2.25),
    (1_700_000_060_001, STALE),
    (1_700_000_075_001, -0.0),
    (1_700_000_090_000, f64::INFINITY),
    (1_700_000_165_000, 42.0),
];

/// Decimal golden samples: an idle two-decimal counter scraped every 15 s,
/// one scrape 3 ms late. Both streams are sparse.
pub(crate) const GOLDEN_DECIMAL: [(i64, f64); 8] = [
    (1_700_000_000_000, 10.25),
    (1_700_000_015_000, 10.25),
    (1_700_000_030_000, 10.25),
    (1_700_000_045_000, 11.5),
    (1_700_000_060_000, 11.5),
    (1_700_000_075_003, 11.5),
    (1_700_000_090_000, 11.5),
    (1_700_000_105_000, 12.75),
];

/// Second Decimal golden: exact 15 s scrapes of a counter growing by about
/// 100 a scrape. Exact timestamps, dense values on a line.
const GOLDEN_DECIMAL_DENSE: [(i64, f64); 8] = [
    (1_700_000_000_000, 1000.0),
    (1_700_000_015_000, 1100.0),
    (1_700_000_030_000, 1205.0),
    (1_700_000_045_000, 1300.0),
    (1_700_000_060_000, 1398.0),
    (1_700_000_075_000, 1500.0),
    (1_700_000_090_000, 1601.0),
    (1_700_000_105_000, 1700.0),
];

fn golden_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/golden")
        .join(name)
}

/// Compares `data` with the committed golden file `name` and returns the
/// file. With `O11Y_BLESS_GOLDEN` set, rewrites the file first: only after an
/// intended format change, and then bump the format version wherever the
/// chunks are persisted.
fn check_golden(name: &str, data: &[u8]) -> Vec<u8> {
    let path = golden_path(name);
    if std::env::var_os("O11Y_BLESS_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_path("")).unwrap();
        std::fs::write(&path, data).unwrap();
    }
    let golden = std::fs::read(&path).unwrap();
    assert_eq!(
        data, golden,
        "{name}: chunk format changed (re-bless with O11Y_BLESS_GOLDEN=1)"
    );
    golden
}

/// Byte-exact format freeze of Xor chunks. Layout of `chunk_xor.bin`
/// (68 bytes; bit offsets from the start of the file):
///
/// ```text
/// bit   0  00 08                count = 8, u16 big-endian
/// bit  16  80 a0 ab fe f9 62    s0 t0: zigzag LEB128 of 1_700_000_000_000
/// bit  64  00 × 8               s0 v0: raw bits of 0.0
/// bit 128  b0 ea 01             s1 t1 - t0: zigzag LEB128 of 15000
/// bit 152  '11' 00010 001011 +11 bits   s1 value 1.5: new window, lead 2, sig 11
/// bit 176  '10' 00010           s2 dod +2 (jitter bucket, 5 bits)
/// bit 183  '0'                  s2 value unchanged (1.5)
/// bit 184  '10' 11101           s3 dod -3
/// bit 191  '11' 00001 001110 +14 bits   s3 value 2.25: new window, lead 1, sig 14
/// bit 218  '10' 00001           s4 dod +1
/// bit 225  '11' 00010 111101 +61 bits   s4 value stale NaN 0x7ff0000000000002
/// bit 299  '0'                  s5 dod 0
/// bit 300  '11' 00000 111111 +63 bits   s5 value -0.0: lead 0, sig 63
/// bit 376  '10' 11111           s6 dod -1
/// bit 383  '10' +63 bits        s6 value +Inf: reuses the window (lead 0, sig 63)
/// bit 448  '1110' +20 bits      s7 dod +60001 (four scrapes missed)
/// bit 472  '10' +63 bits        s7 value 42.0: reuses the window
/// bit 537  0000000              zero padding to the byte boundary (bit 544)
/// ```
#[test]
fn golden_xor_is_byte_exact() {
    let data = encode(Encoding::Xor, &GOLDEN_XOR).unwrap();
    let golden = check_golden("chunk_xor.bin", &data);
    assert_eq!(golden.len(), 68);
    assert_eq!(
        decoded_bits(Encoding::Xor, &golden).unwrap(),
        bits(&GOLDEN_XOR)
    );
    let mut a = XorAppender::new();
    for (t, v) in GOLDEN_XOR {
        a.append(t, v);
    }
    assert_eq!(a.bytes(), &golden[..]);
}

/// Byte-exact format freeze of Decimal chunks. Layout of `chunk_decimal.bin`
/// (23 bytes; bit offsets from the start of the file; "num" is the number
/// code: '0' for 0, else '1', width - 1 in 6 bits, the bits below the top
/// one). Values are m / 10^2 with m = 1025, 1025, 1025, 1150, 1150, 1150,
/// 1150, 1275:
///
/// ```text
/// bit   0  08                       count = 8, uvarint
/// bit   8  0010                     scale k = 2
/// bit  12  t params: mode '00' LINEAR
/// bit  14    slope: num '1' 001110 + 14 bits → zigzag 30000 → 15000
/// bit  35    off: num '0' → 0
/// bit  36    g - 1: num '1' 000001 '0' → 2, g = 3
/// bit  44    sparse '1', Rice parameter 0001, center num '0' → 0
/// bit  50    buckets - 1 '00', width 0000001 → one 1-bit bucket
/// bit  59  m params: mode '01' DELTA
/// bit  61    base: num '0' → 0
/// bit  62    g - 1: num '1' 000110 111100 → 124, g = 125
/// bit  75    sparse '1', Rice parameter 0001, center num '0' → 0
/// bit  81    buckets - 1 '00', width 0000001 → one 1-bit bucket
/// bit  90  t0: num '1' 101001 + 41 bits → zigzag of 1_700_000_000_000
/// bit 138  m0: num '1' 001011 + 11 bits → zigzag of 1025
/// bit 156  t section length: num '1' 000011 '000' → 8 bits
/// bit 166  t section: residuals 0 0 0 0 3 0 0 → q = 0 0 0 0 1 0 0
///          '00' '1' '0'  gap 4 (Rice: q 2 in unary, low bit 0)
///          '1'           value: zigzag(1) - 1 = 1 in the 1-bit bucket
///          '0' '1' '0'   gap 2, reaching the end: no value follows
/// bit 174  m section: deltas 0 0 125 0 0 0 125 → q = 0 0 1 0 0 0 1
///          '0' '1' '0'   gap 2        '1'  value q = 1
///          '0' '1' '1'   gap 3        '1'  value q = 1
/// bit 182  00                       zero padding to the byte boundary
/// ```
#[test]
fn golden_decimal_is_byte_exact() {
    let data = encode(Encoding::Decimal, &GOLDEN_DECIMAL).unwrap();
    let golden = check_golden("chunk_decimal.bin", &data);
    assert_eq!(golden.len(), 23);
    assert_eq!(
        decoded_bits(Encoding::Decimal, &golden).unwrap(),
        bits(&GOLDEN_DECIMAL)
    );
}

/// Byte-exact format freeze of a Decimal chunk with an EXACT and a dense
/// stream. Layout of `chunk_decimal_dense.bin` (20 bytes):
///
/// ```text
/// bit   0  08                       count = 8, uvarint
/// bit   8  0000                     scale k = 0
/// bit  12  t params: mode '11' EXACT, slope num '1' 001110 + 14 bits → 15000
/// bit  35  m params: mode '00' LINEAR, slope num '1' 000111 1001000 → 100,
///          off num '0', g - 1 num '0' (g = 1), sparse '0',
///          buckets - 1 '10', widths 0000000 0000010 0000100 → [0, 2, 4]
/// bit  77  t0: num '1' 101001 + 41 bits → zigzag of 1_700_000_000_000
/// bit 125  m0: num '1' 001010 + 10 bits → zigzag of 1000
///          (no t section length: the t stream has no elements)
/// bit 142  m section: residuals from 1000 + 100·i: 0 5 0 -2 0 1 0,
///          zigzag 0 10 0 3 0 2 0:
///          '0'  '11' 1010  '0'  '10' 11  '0'  '10' 10  '0'
/// bit 159  0                        zero padding to the byte boundary
/// ```
#[test]
fn golden_decimal_dense_is_byte_exact() {
    let data = encode(Encoding::Decimal, &GOLDEN_DECIMAL_DENSE).unwrap();
    let golden = check_golden("chunk_decimal_dense.bin", &data);
    assert_eq!(golden.len(), 20);
    assert_eq!(
        decoded_bits(Encoding::Decimal, &golden).unwrap(),
        bits(&GOLDEN_DECIMAL_DENSE)
    );
}

// ---------------------------------------------------------------- sizes

/// Synthetic series, 15 s scrapes with ±2 ms jitter (fixed seed).
fn synthetic(kind: &str, n: usize, rng: &mut SmallRng) -> Vec<(i64, f64)> {
    let mut t = 1_700_000_000_000i64;
    let mut ts = Vec::with_capacity(n);
    for _ in 0..n {
        ts.push(t + rng.gen_range(-2..=2));
        t += 15_000;
    }
    let mut acc = 0i64;
    let vs: Vec<f64> = (0..n)
        .map(|_| match kind {
            "constant" => 1.0,
            "counter" => {
                acc += 1000 + rng.gen_range(-50..=50);
                acc as f64
            }
            "gauge_4096" => {
                acc += 4096 * rng.gen_range(-8..=8);
                (1i64 << 30) as f64 + acc as f64
            }
            "counter_2dec" => {
                acc += 15 + rng.gen_range(-3..=3);
                (123_456_700 + acc) as f64 / 100.0
            }
            "small_int_gauge" => rng.gen_range(40..60) as f64,
            _ => rng.gen::<f64>(),
        })
        .collect();
    ts.into_iter().zip(vs).collect()
}

const KINDS: [&str; 6] = [
    "constant",
    "counter",
    "gauge_4096",
    "counter_2dec",
    "small_int_gauge",
    "random_float",
];

/// Decimal wins where it should, on 120-sample chunks, and `encode_best`
/// never loses to Xor. (Sizes and speeds are reported by
/// `cargo bench -p o11y-benches --bench chunks`.)
#[test]
fn decimal_beats_xor_on_decimal_data() {
    let mut rng = SmallRng::seed_from_u64(42);
    for kind in KINDS {
        let (mut xor, mut dec, mut best) = (0usize, Some(0usize), 0usize);
        for _ in 0..50 {
            let s = synthetic(kind, MAX_SAMPLES_PER_CHUNK, &mut rng);
            xor += encode(Encoding::Xor, &s).unwrap().len();
            if let Some(d) = encode(Encoding::Decimal, &s) {
                assert_eq!(decoded_bits(Encoding::Decimal, &d).unwrap(), bits(&s));
            }
            dec = dec
                .zip(encode(Encoding::Decimal, &s))
                .map(|(a, d)| a + d.len());
            best += encode_best(&s).1.len();
        }
        if kind == "random_float" {
            assert_eq!(dec, None);
        } else {
            let dec = dec.unwrap_or(usize::MAX);
            assert!(dec < xor, "{kind}: decimal {dec} vs xor {xor}");
        }
        assert!(best <= xor, "{kind}: best {best} vs xor {xor}");
    }
}
