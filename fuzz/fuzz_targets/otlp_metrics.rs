//! Fuzzes OTLP metrics ingest's pure parts (`o11y_server::otlp`): body decoding (protobuf and
//! OTLP/JSON, plain and gzip) and the translation to Prometheus series.
//!
//! Run: `cargo +nightly fuzz run otlp_metrics` from the repository root.
//!
//! ```text
//!   input: any bytes
//!   1. decode_body as protobuf and as JSON, identity and gzip, 1 MiB limit
//!      any Ok or Err is fine, a panic or hang is not
//!   2. every decoded request is translated; the translation must account for itself:
//!      origins parallel to samples, every series named, every label name valid,
//!      no point both rejected and written, every point number below the point count
//! ```

#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use o11y_server::otlp::http::{decode_body, Encoding, Format};
use o11y_server::otlp::{translate, Options};
use o11y_tsdb::labels::is_valid_legacy_label_name;

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    for format in [Format::Protobuf, Format::Json] {
        for encoding in [Encoding::Identity, Encoding::Gzip] {
            let Ok(req) = decode_body(format, encoding, data, LIMIT) else {
                continue;
            };
            let tr = translate(&req, &Options::default());
            assert_eq!(tr.origins.len(), tr.batch.series.len());
            let mut written = BTreeSet::new();
            for (s, o) in tr.batch.series.iter().zip(&tr.origins) {
                assert_eq!(s.samples.len(), o.len());
                assert!(s
                    .labels
                    .iter()
                    .any(|l| l.name == "__name__" && !l.value.is_empty()));
                assert!(s.labels.iter().all(|l| is_valid_legacy_label_name(&l.name)));
                written.extend(o.iter().flatten().copied());
            }
            let rejected: BTreeSet<u32> = tr.rejections.iter().map(|r| r.point).collect();
            assert!(written.is_disjoint(&rejected));
            assert!(written
                .iter()
                .chain(&rejected)
                .all(|p| u64::from(*p) < tr.points));
        }
    }
});
