//! Tests of remote_write decoding: negotiation, v1/v2 round trips (proptest), hand-built v2
//! requests, per-series problems next to good series, every error path, and speed.

use super::proto::{self, RequestV2, TimeSeriesV2};
use super::*;
use o11y_tsdb::STALE_NAN_BITS;
use proptest::prelude::*;
use prost::Message;

const MAX: usize = 64 << 20;

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> SeriesSamples {
    SeriesSamples {
        labels: labels.iter().map(|(n, v)| Label::new(*n, *v)).collect(),
        samples: samples.iter().map(|&(t, v)| Sample { t, v }).collect(),
    }
}

/// A series with its values as bits.
type BitsSeries = (Vec<Label>, Vec<(i64, u64)>);

/// Batches compared with float values as bits (NaN == NaN, stale marker preserved).
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

fn v2_body(req: &RequestV2) -> Vec<u8> {
    compress(&req.encode_to_vec())
}

fn v1_body(req: &proto::WriteRequest) -> Vec<u8> {
    compress(&req.encode_to_vec())
}

fn sample(t: i64, v: f64) -> proto::Sample {
    proto::Sample {
        value: v,
        timestamp: t,
    }
}

fn ts_v2(refs: &[u32], samples: &[(i64, f64)]) -> TimeSeriesV2 {
    TimeSeriesV2 {
        labels_refs: refs.to_vec(),
        samples: samples.iter().map(|&(t, v)| sample(t, v)).collect(),
        ..Default::default()
    }
}

fn symbols(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

// ---------------------------------------------------------------- negotiation

#[test]
fn negotiate_follows_the_spec() {
    let ok = |ct: Option<&str>, ce: Option<&str>| negotiate(ct, ce, Some("2.0.0"));
    assert_eq!(
        ok(Some("application/x-protobuf"), Some("snappy")),
        Ok(Version::V1)
    );
    assert_eq!(
        ok(
            Some("application/x-protobuf;proto=prometheus.WriteRequest"),
            Some("snappy")
        ),
        Ok(Version::V1)
    );
    assert_eq!(ok(Some(CONTENT_TYPE_V2), Some("snappy")), Ok(Version::V2));
    assert_eq!(
        ok(
            Some("Application/X-Protobuf ; Proto=\"io.prometheus.write.v2.Request\""),
            Some("SNAPPY")
        ),
        Ok(Version::V2)
    );
    assert_eq!(ok(None, None), Ok(Version::V1));
    assert_eq!(ok(Some(""), None), Ok(Version::V1));
    assert_eq!(
        ok(Some("application/x-protobuf; charset=utf-8"), None),
        Ok(Version::V1)
    );
    assert_eq!(
        negotiate(Some(CONTENT_TYPE_V2), None, None),
        Ok(Version::V2)
    );

    for bad in [
        "application/json",
        "application/x-protobuf;proto=io.prometheus.write.v3.Request",
        "application/x-protobuf;proto=prometheus.writerequest",
        "application/x-protobuf;garbage",
        "text/plain;proto=prometheus.WriteRequest",
    ] {
        let e = ok(Some(bad), Some("snappy")).unwrap_err();
        assert!(matches!(e, DecodeError::UnsupportedContentType(_)), "{bad}");
        assert!(e.is_unsupported_media_type());
    }
    for bad in ["gzip", "zstd", "identity", ""] {
        let e = ok(Some(CONTENT_TYPE_V1), Some(bad)).unwrap_err();
        assert!(
            matches!(e, DecodeError::UnsupportedContentEncoding(_)),
            "{bad}"
        );
        assert!(e.is_unsupported_media_type());
    }
}

#[test]
fn error_messages_are_bounded() {
    let huge = format!("application/x-protobuf;proto={}", "x".repeat(1 << 20));
    let e = negotiate(Some(&huge), None, None).unwrap_err();
    assert!(e.to_string().len() < 400, "{}", e.to_string().len());
    let e = negotiate(None, Some(&"y".repeat(1 << 20)), None).unwrap_err();
    assert!(e.to_string().len() < 400);
    let dup = "n".repeat(10_000);
    let body = encode_v1(&WriteBatch {
        series: vec![series(&[(&dup, "a"), (&dup, "b")], &[(1, 1.0)])],
        received_ms: None,
    });
    let d = decode(Version::V1, &body, MAX).unwrap();
    assert!(d.rejections[0].reason.to_string().len() < 200);
}

// ---------------------------------------------------------------- round trips

fn arb_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        Just(f64::NAN),
        Just(f64::from_bits(STALE_NAN_BITS)),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        any::<f64>(),
    ]
}

fn arb_series() -> impl Strategy<Value = SeriesSamples> {
    (
        prop::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,8}|\\PC{1,6}", "\\PC{0,10}", 1..6)
            .prop_map(|m| m.into_iter().collect::<Vec<_>>())
            .prop_shuffle(),
        prop::collection::vec((any::<i64>(), arb_value()), 1..8),
    )
        .prop_map(|(labels, samples)| SeriesSamples {
            labels: labels.into_iter().map(|(n, v)| Label::new(n, v)).collect(),
            samples: samples.into_iter().map(|(t, v)| Sample { t, v }).collect(),
        })
}

fn arb_batch() -> impl Strategy<Value = WriteBatch> {
    prop::collection::vec(arb_series(), 0..12).prop_map(|series| WriteBatch {
        series,
        received_ms: None,
    })
}

proptest! {
    #[test]
    fn v1_round_trip(batch in arb_batch()) {
        let d = decode(Version::V1, &encode_v1(&batch), MAX).unwrap();
        prop_assert_eq!(bits(&d.batch), bits(&batch));
        prop_assert!(d.rejections.is_empty());
        prop_assert_eq!(d.kept, (0..batch.series.len() as u32).collect::<Vec<_>>());
        prop_assert_eq!(d.samples, batch.series.iter().map(|s| s.samples.len() as u64).sum::<u64>());
    }

    #[test]
    fn v2_round_trip(batch in arb_batch()) {
        let d = decode(Version::V2, &encode_v2(&batch), MAX).unwrap();
        prop_assert_eq!(bits(&d.batch), bits(&batch));
        prop_assert!(d.rejections.is_empty());
    }

    /// Our hand-written encoders agree with prost's reading of the schema.
    #[test]
    fn encoders_agree_with_prost(batch in arb_batch()) {
        let raw = decompress(&encode_v1(&batch), MAX).unwrap();
        let req = proto::WriteRequest::decode(raw.as_slice()).unwrap();
        let got: Vec<_> = req.timeseries.iter().map(|ts| (
            ts.labels.iter().map(|l| Label::new(&l.name, &l.value)).collect::<Vec<_>>(),
            ts.samples.iter().map(|s| (s.timestamp, s.value.to_bits())).collect::<Vec<_>>(),
        )).collect();
        prop_assert_eq!(got, bits(&batch));

        let raw = decompress(&encode_v2(&batch), MAX).unwrap();
        let req = RequestV2::decode(raw.as_slice()).unwrap();
        prop_assert_eq!(req.symbols.first().map(String::as_str), Some(""));
        let got: Vec<_> = req.timeseries.iter().map(|ts| (
            ts.labels_refs.chunks(2).map(|p| Label::new(
                &req.symbols[p[0] as usize], &req.symbols[p[1] as usize])).collect::<Vec<_>>(),
            ts.samples.iter().map(|s| (s.timestamp, s.value.to_bits())).collect::<Vec<_>>(),
        )).collect();
        prop_assert_eq!(got, bits(&batch));
    }

    /// What the fuzz target checks, on valid requests with a few bytes overwritten: no
    /// panic, a self-consistent result, and decode → encode → decode is the identity.
    #[test]
    fn mutated_requests_stay_consistent(
        batch in arb_batch(),
        v2 in any::<bool>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut raw = if v2 { encode::request_v2(&batch) } else { encode::write_request_v1(&batch) };
        if !raw.is_empty() {
            for (i, b) in edits {
                let i = i.index(raw.len());
                raw[i] = b;
            }
        }
        for v in [Version::V1, Version::V2] {
            if let Ok(d) = decode_uncompressed(v, &raw) {
                prop_assert_eq!(d.kept.len(), d.batch.series.len());
                prop_assert!(d.kept.windows(2).all(|w| w[0] < w[1]));
                prop_assert_eq!(
                    d.samples,
                    d.batch.series.iter().map(|s| s.samples.len() as u64).sum::<u64>()
                );
                for (v, body) in [(Version::V1, encode_v1(&d.batch)), (Version::V2, encode_v2(&d.batch))] {
                    let again = decode(v, &body, MAX).unwrap();
                    prop_assert!(again.rejections.is_empty());
                    prop_assert_eq!(bits(&again.batch), bits(&d.batch));
                }
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..256)) {
        for v in [Version::V1, Version::V2] {
            let _ = decode_uncompressed(v, &raw);
            let _ = decode(v, &raw, 1 << 16);
            let _ = decode(v, &compress(&raw), 1 << 16);
        }
    }
}

#[test]
fn special_values_are_bit_exact() {
    let vals = [
        f64::NAN,
        f64::from_bits(STALE_NAN_BITS),
        f64::from_bits(0x7ff8_0000_0000_0001),
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        f64::MIN_POSITIVE / 2.0,
    ];
    let samples: Vec<(i64, f64)> = vals
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as i64 - 3, v))
        .collect();
    let batch = WriteBatch {
        series: vec![series(&[("__name__", "x")], &samples)],
        received_ms: None,
    };
    for (v, body) in [
        (Version::V1, encode_v1(&batch)),
        (Version::V2, encode_v2(&batch)),
    ] {
        let d = decode(v, &body, MAX).unwrap();
        assert_eq!(bits(&d.batch), bits(&batch));
        assert_eq!(d.batch.series[0].samples[0].t, -3);
    }
}

// ---------------------------------------------------------------- v1 specifics

#[test]
fn v1_metadata_exemplars_and_histograms() {
    let req = proto::WriteRequest {
        timeseries: vec![
            proto::TimeSeries {
                labels: vec![proto::Label {
                    name: "__name__".into(),
                    value: "req_total".into(),
                }],
                samples: vec![sample(1, 2.0)],
                exemplars: vec![proto::Exemplar {
                    labels: vec![],
                    value: 1.0,
                    timestamp: 1,
                }],
                histograms: vec![],
            },
            proto::TimeSeries {
                labels: vec![proto::Label {
                    name: "__name__".into(),
                    value: "lat".into(),
                }],
                samples: vec![],
                exemplars: vec![],
                histograms: vec![proto::Histogram::default(), proto::Histogram::default()],
            },
        ],
        metadata: vec![proto::MetricMetadata {
            r#type: 1,
            metric_family_name: "req_total".into(),
            help: "Requests.".into(),
            unit: "".into(),
        }],
    };
    let d = decode(Version::V1, &v1_body(&req), MAX).unwrap();
    assert_eq!(d.batch.series.len(), 1);
    assert_eq!(d.kept, vec![0]);
    assert_eq!(d.samples, 1);
    assert_eq!(d.exemplars, 1);
    assert_eq!(d.histograms_dropped, 2);
    assert_eq!(
        d.rejections,
        vec![ItemProblem {
            index: 1,
            reason: ProblemReason::HistogramsUnsupported { count: 2 },
            samples: 0
        }]
    );
    assert!(!d.rejections[0].reason.series_dropped());
    assert_eq!(
        d.metadata,
        vec![MetricMetadata {
            metric_family: "req_total".into(),
            metric_type: MetricType::Counter,
            help: "Requests.".into(),
            unit: "".into(),
        }]
    );
}

/// A `prometheus.Label` whose strings may be any bytes (prost's `String` cannot hold them).
#[derive(Clone, PartialEq, prost::Message)]
struct RawLabel {
    #[prost(bytes = "vec", tag = "1")]
    name: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RawSeries {
    #[prost(message, repeated, tag = "1")]
    labels: Vec<RawLabel>,
    #[prost(message, repeated, tag = "2")]
    samples: Vec<proto::Sample>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RawRequest {
    #[prost(message, repeated, tag = "1")]
    timeseries: Vec<RawSeries>,
}

fn raw_series(labels: &[(&[u8], &[u8])], t: i64) -> RawSeries {
    RawSeries {
        labels: labels
            .iter()
            .map(|(n, v)| RawLabel {
                name: n.to_vec(),
                value: v.to_vec(),
            })
            .collect(),
        samples: vec![sample(t, t as f64)],
    }
}

#[test]
fn v1_bad_series_are_left_out_and_good_ones_kept() {
    let req = RawRequest {
        timeseries: vec![
            raw_series(&[(b"__name__", b"good0")], 0),
            raw_series(&[(b"__name__", b"bad\xff")], 1),
            raw_series(&[(b"__name__", b"a"), (b"", b"x")], 2),
            raw_series(&[(b"job", b"a"), (b"__name__", b"b"), (b"job", b"c")], 3),
            raw_series(&[], 4),
            // Unsorted but unique, empty value: structure is fine, the engine decides.
            raw_series(&[(b"z", b""), (b"__name__", b"good5")], 5),
        ],
    };
    let d = decode(Version::V1, &compress(&req.encode_to_vec()), MAX).unwrap();
    assert_eq!(d.kept, vec![0, 5]);
    assert_eq!(
        d.batch.series[1].labels,
        vec![Label::new("z", ""), Label::new("__name__", "good5")]
    );
    let reasons: Vec<(u32, ProblemReason, u64)> = d
        .rejections
        .iter()
        .map(|p| (p.index, p.reason.clone(), p.samples))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (1, ProblemReason::InvalidUtf8, 1),
            (2, ProblemReason::EmptyLabelName, 1),
            (3, ProblemReason::DuplicateLabelName("job".into()), 1),
            (4, ProblemReason::NoLabels, 1),
        ]
    );
    assert!(d.rejections.iter().all(|p| p.reason.series_dropped()));
    assert_eq!(d.samples, 2);
}

// ---------------------------------------------------------------- v2 specifics

#[test]
fn v2_hand_built_request() {
    let req = RequestV2 {
        symbols: symbols(&[
            "",
            "__name__",
            "http_requests_total",
            "job",
            "api",
            "Requests served.",
            "requests",
            "trace_id",
            "abc",
        ]),
        timeseries: vec![
            TimeSeriesV2 {
                labels_refs: vec![1, 2, 3, 4],
                samples: vec![sample(1000, 1.0), sample(2000, 2.0)],
                exemplars: vec![proto::ExemplarV2 {
                    labels_refs: vec![7, 8],
                    value: 1.0,
                    timestamp: 1000,
                }],
                metadata: Some(proto::MetadataV2 {
                    r#type: 1,
                    help_ref: 5,
                    unit_ref: 6,
                }),
                created_timestamp: 500,
                ..Default::default()
            },
            // Same family again with different metadata: the first one wins.
            TimeSeriesV2 {
                labels_refs: vec![1, 2, 3, 2],
                samples: vec![sample(1000, 3.0)],
                metadata: Some(proto::MetadataV2 {
                    r#type: 2,
                    help_ref: 0,
                    unit_ref: 0,
                }),
                ..Default::default()
            },
            // Histograms only: nothing to write, reported.
            TimeSeriesV2 {
                labels_refs: vec![1, 4],
                histograms: vec![proto::Histogram::default()],
                metadata: Some(proto::MetadataV2::default()),
                ..Default::default()
            },
        ],
    };
    let d = decode(Version::V2, &v2_body(&req), MAX).unwrap();
    assert_eq!(
        d.batch.series,
        vec![
            series(
                &[("__name__", "http_requests_total"), ("job", "api")],
                &[(1000, 1.0), (2000, 2.0)]
            ),
            series(
                &[
                    ("__name__", "http_requests_total"),
                    ("job", "http_requests_total")
                ],
                &[(1000, 3.0)]
            ),
        ]
    );
    assert_eq!(d.kept, vec![0, 1]);
    assert_eq!(
        d.metadata,
        vec![MetricMetadata {
            metric_family: "http_requests_total".into(),
            metric_type: MetricType::Counter,
            help: "Requests served.".into(),
            unit: "requests".into(),
        }]
    );
    assert_eq!(d.samples, 3);
    assert_eq!(d.exemplars, 1);
    assert_eq!(d.histograms_dropped, 1);
    assert_eq!(
        d.rejections,
        vec![ItemProblem {
            index: 2,
            reason: ProblemReason::HistogramsUnsupported { count: 1 },
            samples: 0
        }]
    );
}

#[test]
fn v2_symbols_after_series_and_unpacked_refs() {
    // Hand-written wire bytes: timeseries (field 5) before symbols (field 4), labels_refs
    // unpacked (one varint field 1 per ref).
    let mut ts = Vec::new();
    for r in [1u8, 2] {
        ts.extend_from_slice(&[0x08, r]); // field 1, varint
    }
    let s = sample(7, 1.5).encode_to_vec();
    ts.push(0x12); // field 2, bytes
    ts.push(s.len() as u8);
    ts.extend_from_slice(&s);
    let mut req = vec![0x2a, ts.len() as u8];
    req.extend_from_slice(&ts);
    for sym in ["", "__name__", "up"] {
        req.push(0x22); // field 4, bytes
        req.push(sym.len() as u8);
        req.extend_from_slice(sym.as_bytes());
    }
    let d = decode(Version::V2, &compress(&req), MAX).unwrap();
    assert_eq!(
        d.batch.series,
        vec![series(&[("__name__", "up")], &[(7, 1.5)])]
    );
}

#[test]
fn v2_bad_series_are_left_out_and_good_ones_kept() {
    let req = RequestV2 {
        symbols: symbols(&["", "__name__", "up", "job", "x"]),
        timeseries: vec![
            ts_v2(&[1, 2], &[(1, 1.0)]),
            ts_v2(&[1, 2, 3], &[(1, 1.0)]),
            ts_v2(&[1, 2, 3, 99], &[(1, 1.0), (2, 2.0)]),
            ts_v2(&[1, 2, 0, 4], &[(1, 1.0)]),
            ts_v2(&[1, 2, 1, 4], &[(1, 1.0)]),
            ts_v2(&[], &[(1, 1.0)]),
            TimeSeriesV2 {
                metadata: Some(proto::MetadataV2 {
                    r#type: 1,
                    help_ref: 77,
                    unit_ref: 0,
                }),
                ..ts_v2(&[1, 2], &[(1, 1.0)])
            },
            ts_v2(&[1, 2, 3, 4], &[(5, 5.0)]),
        ],
    };
    let d = decode(Version::V2, &v2_body(&req), MAX).unwrap();
    assert_eq!(d.kept, vec![0, 7]);
    assert_eq!(
        d.batch.series[1],
        series(&[("__name__", "up"), ("job", "x")], &[(5, 5.0)])
    );
    let reasons: Vec<(u32, ProblemReason, u64)> = d
        .rejections
        .iter()
        .map(|p| (p.index, p.reason.clone(), p.samples))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (1, ProblemReason::OddLabelRefs, 1),
            (
                2,
                ProblemReason::SymbolOutOfRange {
                    reference: 99,
                    symbols: 5
                },
                2
            ),
            (3, ProblemReason::EmptyLabelName, 1),
            (4, ProblemReason::DuplicateLabelName("__name__".into()), 1),
            (5, ProblemReason::NoLabels, 1),
            (
                6,
                ProblemReason::SymbolOutOfRange {
                    reference: 77,
                    symbols: 5
                },
                1
            ),
        ]
    );
}

#[test]
fn v2_invalid_utf8_symbol_rejects_only_series_using_it() {
    let mut req = Vec::new();
    for sym in [&b""[..], b"__name__", b"up", b"bad\xc3"] {
        req.push(0x22);
        req.push(sym.len() as u8);
        req.extend_from_slice(sym);
    }
    for refs in [[1u8, 2], [1, 3]] {
        let ts = TimeSeriesV2 {
            labels_refs: refs.iter().map(|&r| r as u32).collect(),
            samples: vec![sample(1, 1.0)],
            ..Default::default()
        }
        .encode_to_vec();
        req.push(0x2a);
        req.push(ts.len() as u8);
        req.extend_from_slice(&ts);
    }
    let d = decode(Version::V2, &compress(&req), MAX).unwrap();
    assert_eq!(d.kept, vec![0]);
    assert_eq!(d.rejections[0].index, 1);
    assert_eq!(d.rejections[0].reason, ProblemReason::InvalidUtf8);
}

#[test]
fn v1_body_read_as_v2_is_empty_and_vice_versa_is_harmless() {
    let batch = WriteBatch {
        series: vec![series(&[("__name__", "up")], &[(1, 1.0)])],
        received_ms: None,
    };
    // 2.0 reserves fields 1–3 so a 1.0 message decodes as an empty 2.0 request.
    let d = decode(Version::V2, &encode_v1(&batch), MAX).unwrap();
    assert_eq!(d, Decoded::default());
    // A 2.0 message has no 1.0 fields (4 and 5 are unknown there).
    let d = decode(Version::V1, &encode_v2(&batch), MAX).unwrap();
    assert_eq!(d, Decoded::default());
}

#[test]
fn v2_label_expansion_is_capped() {
    let big = "v".repeat(1 << 20);
    let req = RequestV2 {
        symbols: vec![String::new(), "__name__".into(), big],
        timeseries: (0..100).map(|_| ts_v2(&[1, 2], &[(1, 1.0)])).collect(),
    };
    let e = decode(Version::V2, &v2_body(&req), MAX).unwrap_err();
    assert!(matches!(e, DecodeError::LabelsTooLarge { .. }), "{e}");
    // The same symbol used a few times is fine.
    let req = RequestV2 {
        timeseries: (0..4).map(|_| ts_v2(&[1, 2], &[(1, 1.0)])).collect(),
        ..req
    };
    assert_eq!(
        decode(Version::V2, &v2_body(&req), MAX)
            .unwrap()
            .batch
            .series
            .len(),
        4
    );
}

// ---------------------------------------------------------------- errors

#[test]
fn snappy_errors() {
    let body = encode_v1(&WriteBatch {
        series: vec![series(&[("__name__", "up"), ("job", "a")], &[(1, 1.0); 50])],
        received_ms: None,
    });
    for v in [Version::V1, Version::V2] {
        for cut in [0, 1, body.len() / 2, body.len() - 1] {
            let e = decode(v, &body[..cut], MAX).unwrap_err();
            assert!(matches!(e, DecodeError::Snappy(_)), "cut {cut}: {e}");
            assert!(!e.is_unsupported_media_type());
        }
        let e = decode(v, &[0xff; 32], MAX).unwrap_err();
        assert!(matches!(e, DecodeError::Snappy(_)), "{e}");
    }
    // The framed format is not the block format.
    let mut framed = Vec::new();
    {
        use std::io::Write;
        let mut w = snap::write::FrameEncoder::new(&mut framed);
        w.write_all(b"hello").unwrap();
    }
    assert!(decode(Version::V1, &framed, MAX).is_err());
}

#[test]
fn too_large_is_refused_before_allocating() {
    // A 5-byte body declaring 2^32-1 decoded bytes.
    let body = [0xff, 0xff, 0xff, 0xff, 0x0f];
    assert_eq!(
        decode(Version::V1, &body, 1 << 20).unwrap_err(),
        DecodeError::TooLarge {
            declared: u32::MAX as u64,
            limit: 1 << 20
        }
    );
    let body = encode_v1(&WriteBatch {
        series: vec![series(&[("__name__", "up")], &[(1, 1.0); 100])],
        received_ms: None,
    });
    let len = snap::raw::decompress_len(&body).unwrap();
    assert!(matches!(
        decode(Version::V1, &body, len - 1),
        Err(DecodeError::TooLarge { .. })
    ));
    assert!(decode(Version::V1, &body, len).is_ok());
}

#[test]
fn protobuf_errors() {
    let cases: &[(&[u8], &str)] = &[
        (
            &[0x0a, 0x05, 0x01],
            "length-delimited field runs past the end",
        ),
        (&[0x0a], "truncated varint"),
        (&[0x08, 0xff, 0xff], "truncated varint"),
        (&[0x00, 0x00], "invalid field number"),
        (&[0x0b], "unsupported wire type (groups or invalid)"),
        (&[0x09, 1, 2, 3], "truncated fixed64"),
        (&[0x0d, 1, 2], "truncated fixed32"),
        (
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ],
            "varint overflows 64 bits",
        ),
        // timeseries as a varint
        (
            &[0x08, 0x01],
            "wrong wire type for a length-delimited field",
        ),
    ];
    for (raw, what) in cases {
        let e = decode(Version::V1, &compress(raw), MAX).unwrap_err();
        match e {
            DecodeError::Protobuf { what: w, .. } => assert_eq!(&w, what, "{raw:?}"),
            other => panic!("{raw:?}: {other}"),
        }
    }
    // Nested: a sample whose value has the wrong wire type.
    let ts = [0x12, 0x02, 0x08, 0x01]; // samples { 1: varint 1 }
    let mut req = vec![0x0a, ts.len() as u8];
    req.extend_from_slice(&ts);
    let e = decode(Version::V1, &compress(&req), MAX).unwrap_err();
    assert_eq!(
        e,
        DecodeError::Protobuf {
            message: "prometheus.Sample",
            what: "wrong wire type for a double field"
        }
    );
    assert_eq!(
        e.to_string(),
        "invalid protobuf in prometheus.Sample: wrong wire type for a double field"
    );
    // v2: bad packed refs.
    let ts = [0x0a, 0x01, 0x80]; // labels_refs packed, truncated varint
    let mut req = vec![0x2a, ts.len() as u8];
    req.extend_from_slice(&ts);
    let e = decode(Version::V2, &compress(&req), MAX).unwrap_err();
    assert!(matches!(e, DecodeError::Protobuf { .. }), "{e}");
}

#[test]
fn empty_request_is_fine() {
    for v in [Version::V1, Version::V2] {
        assert_eq!(decode(v, &compress(&[]), MAX).unwrap(), Decoded::default());
    }
}

// ---------------------------------------------------------------- speed

fn big_batch(target_bytes: usize) -> WriteBatch {
    let mut batch = WriteBatch::default();
    let mut i = 0u64;
    let mut size = 0;
    while size < target_bytes {
        let s = series(
            &[
                ("__name__", "http_requests_total"),
                ("instance", &format!("host-{}:9100", i % 1000)),
                ("job", "node"),
                ("method", ["GET", "POST", "PUT"][(i % 3) as usize]),
                ("path", &format!("/api/v1/item/{i}")),
            ],
            &[(1_700_000_000_000 + i as i64, i as f64 * 0.5)],
        );
        size += 120;
        i += 1;
        batch.series.push(s);
    }
    batch
}

#[test]
fn ten_megabytes_decode_fast() {
    let batch = big_batch(10 << 20);
    for (v, body) in [
        (Version::V1, encode_v1(&batch)),
        (Version::V2, encode_v2(&batch)),
    ] {
        let raw_len = snap::raw::decompress_len(&body).unwrap();
        let start = std::time::Instant::now();
        let d = decode(v, &body, 64 << 20).unwrap();
        let took = start.elapsed();
        eprintln!(
            "{v:?}: {raw_len} decoded bytes, {} series in {took:?}",
            d.batch.series.len()
        );
        assert_eq!(d.batch.series.len(), batch.series.len());
        assert!(took < std::time::Duration::from_secs(1), "{v:?}: {took:?}");
    }
}
