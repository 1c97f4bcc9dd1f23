//! Fuzzes the sample chunk encodings (`o11y_tsdb::chunk`).
//!
//! Run: `cargo +nightly fuzz run chunk_decode` from the repository root.
//!
//! ```text
//!   input: [mode: u8][rest …]
//!   1. rest as a chunk  → ChunkIter (Xor, Decimal), XorAppender::from_bytes:
//!                         must not panic; iteration must agree with the header
//!   2. rest as samples  → 16 bytes each: t (i64 LE), v (f64 bits LE);
//!                         mode bit 0 turns values into decimals m / 10^k so
//!                         the Decimal encoder is reached; mode bit 1 sorts
//!                         the timestamps. encode → decode must be bit-exact,
//!                         and the appender must produce encode's bytes.
//! ```

#![no_main]

use libfuzzer_sys::fuzz_target;
use o11y_tsdb::chunk::{decode_all, encode, encode_best, ChunkIter, Encoding, XorAppender};

/// Samples decoded at most per chunk: a corrupt Decimal header may declare
/// billions of samples that take no bits.
const MAX_ITER: usize = 1 << 20;

fn bits(samples: &[(i64, f64)]) -> Vec<(i64, u64)> {
    samples.iter().map(|&(t, v)| (t, v.to_bits())).collect()
}

fn decode_arbitrary(enc: Encoding, data: &[u8]) {
    let Ok(mut it) = ChunkIter::new(enc, data) else {
        assert!(decode_all(enc, data).is_err());
        return;
    };
    let declared = it.num_samples();
    let got = it.by_ref().take(MAX_ITER).count();
    assert!(got <= declared);
    if got < MAX_ITER {
        assert!(it.next().is_none());
        if it.err().is_none() {
            assert_eq!(got, declared);
        }
    }
}

fn samples_from(mode: u8, data: &[u8]) -> Vec<(i64, f64)> {
    let mut samples: Vec<(i64, f64)> = data
        .chunks_exact(16)
        .map(|c| {
            let mut t = [0u8; 8];
            let mut v = [0u8; 8];
            t.copy_from_slice(&c[..8]);
            v.copy_from_slice(&c[8..]);
            (i64::from_le_bytes(t), f64::from_bits(u64::from_le_bytes(v)))
        })
        .collect();
    if mode & 1 == 1 {
        let div = 10f64.powi(i32::from(mode >> 4) % 7);
        for s in &mut samples {
            s.1 = (s.1.to_bits() as i64 % 1_000_000_000) as f64 / div;
        }
    }
    if mode & 2 == 2 {
        samples.sort_by_key(|s| s.0);
    }
    samples
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };

    decode_arbitrary(Encoding::Xor, rest);
    decode_arbitrary(Encoding::Decimal, rest);
    if let Ok(mut a) = XorAppender::from_bytes(rest.to_vec()) {
        let n = a.num_samples();
        a.append(a.last_t().unwrap_or(0).wrapping_add(15_000), 1.0);
        assert_eq!(
            decode_all(Encoding::Xor, a.bytes()).map(|s| s.len()),
            Ok(n + 1)
        );
    }

    let samples = samples_from(mode, rest);
    let want = bits(&samples);
    let xor = encode(Encoding::Xor, &samples).expect("xor always encodes");
    assert_eq!(
        decode_all(Encoding::Xor, &xor).map(|s| bits(&s)),
        Ok(want.clone())
    );
    if let Some(dec) = encode(Encoding::Decimal, &samples) {
        assert_eq!(
            decode_all(Encoding::Decimal, &dec).map(|s| bits(&s)),
            Ok(want.clone())
        );
    }
    let (enc, best) = encode_best(&samples);
    assert!(best.len() <= xor.len());
    assert_eq!(decode_all(enc, &best).map(|s| bits(&s)), Ok(want));

    let mut a = XorAppender::new();
    for &(t, v) in &samples {
        a.append(t, v);
    }
    assert_eq!(a.bytes(), &xor[..]);
});
