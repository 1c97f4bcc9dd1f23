//! Fuzzes the Prometheus remote_write decoder (`o11y_server::remote_write`).
//!
//! Run: `cargo +nightly fuzz run remote_write` from the repository root.
//!
//! ```text
//!   input: any bytes
//!   1. as uncompressed protobuf, as a 1.0 and a 2.0 request   (decode_uncompressed)
//!   2. as a snappy body, same two versions, 1 MiB limit         (decode)
//!      any Ok or Err is fine, a panic or hang is not
//!   3. every Ok result must be self-consistent (kept indices ascending and matching the
//!      batch, sample count right), and must survive a round trip: encode_v1 and
//!      encode_v2 of its batch decode back to the same batch (values bit-exact) with no
//!      problems, since a decoded batch only holds structurally valid series
//! ```

#![no_main]

use libfuzzer_sys::fuzz_target;
use o11y_server::remote_write::{
    decode, decode_uncompressed, encode_v1, encode_v2, Decoded, Version,
};
use o11y_tsdb::labels::Label;
use o11y_tsdb::WriteBatch;

const LIMIT: usize = 1 << 20;

type BitsSeries = (Vec<Label>, Vec<(i64, u64)>);

fn bits(b: &WriteBatch) -> Vec<BitsSeries> {
    b.series
        .iter()
        .map(|s| {
            (
                s.labels.clone(),
                s.samples.iter().map(|x| (x.t, x.v.to_bits())).collect(),
            )
        })
        .collect()
}

fn check(d: &Decoded) {
    assert_eq!(d.kept.len(), d.batch.series.len());
    assert!(d.kept.windows(2).all(|w| w[0] < w[1]));
    assert!(d.rejections.windows(2).all(|w| w[0].index <= w[1].index));
    let samples: u64 = d.batch.series.iter().map(|s| s.samples.len() as u64).sum();
    assert_eq!(d.samples, samples);
    assert!(d.batch.series.iter().all(|s| !s.samples.is_empty()));
    for (v, body) in [
        (Version::V1, encode_v1(&d.batch)),
        (Version::V2, encode_v2(&d.batch)),
    ] {
        let again = decode(v, &body, usize::MAX).expect("re-encoded batch must decode");
        assert!(again.rejections.is_empty(), "{v:?}: {:?}", again.rejections);
        assert_eq!(bits(&again.batch), bits(&d.batch), "{v:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    for v in [Version::V1, Version::V2] {
        if let Ok(d) = decode_uncompressed(v, data) {
            check(&d);
        }
        if let Ok(d) = decode(v, data, LIMIT) {
            check(&d);
        }
    }
});
