//! Wire-level tests of remote read: request parsing and its errors, both response encodings
//! read back with an independent decoder (prost + xor::decode + read_frames).

use o11y_tsdb::labels::Labels;
use prost::Message;

use super::proto::{self, LabelMatcher, Query};
use super::*;

fn body(req: &proto::ReadRequest) -> Vec<u8> {
    remote_write::compress(&req.encode_to_vec())
}

fn matcher(t: i32, name: &str, value: &str) -> LabelMatcher {
    LabelMatcher {
        r#type: t,
        name: name.into(),
        value: value.into(),
    }
}

fn request(matchers: Vec<LabelMatcher>, accepted: Vec<i32>) -> proto::ReadRequest {
    proto::ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: 1000,
            end_timestamp_ms: 2000,
            matchers,
            hints: Some(proto::ReadHints {
                step_ms: 15_000,
                func: "rate".into(),
                ..Default::default()
            }),
        }],
        accepted_response_types: accepted,
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

#[test]
fn crc32c_check_value() {
    // The standard check value of CRC-32C.
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c(b""), 0);
}

#[test]
fn negotiation_follows_the_clients_order() {
    assert_eq!(negotiate(&[]).unwrap(), ResponseType::Samples);
    assert_eq!(negotiate(&[1, 0]).unwrap(), ResponseType::StreamedXorChunks);
    assert_eq!(negotiate(&[7, 0]).unwrap(), ResponseType::Samples);
    assert!(matches!(
        negotiate(&[7]),
        Err(ReadError::NoSupportedResponseType(_))
    ));
}

#[test]
fn requests_parse_with_all_four_matcher_types() {
    let r = parse_request(
        &body(&request(
            vec![
                matcher(0, "__name__", "up"),
                matcher(1, "job", "x"),
                matcher(2, "instance", "a.*"),
                matcher(3, "env", "prod|dev"),
            ],
            vec![1],
        )),
        1 << 20,
    )
    .unwrap();
    assert_eq!(r.response_type, ResponseType::StreamedXorChunks);
    let q = &r.queries[0];
    assert_eq!((q.start_ms, q.end_ms), (1000, 2000));
    let ops: Vec<MatchOp> = q.matchers.iter().map(|m| m.op).collect();
    assert_eq!(
        ops,
        vec![
            MatchOp::Equal,
            MatchOp::NotEqual,
            MatchOp::Regex,
            MatchOp::NotRegex
        ]
    );
    assert!(q.matchers[2].matches("a1") && !q.matchers[2].matches("ba"));
}

#[test]
fn bad_requests_are_clear_errors() {
    let e = parse_request(b"\xffnot snappy", 1 << 20).unwrap_err();
    assert!(e.to_string().contains("snappy"), "{e}");
    let e = parse_request(&remote_write::compress(b"\x0a\x05ab"), 1 << 20).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("invalid protobuf in prometheus.ReadRequest"),
        "{e}"
    );
    let e =
        parse_request(&body(&request(vec![matcher(9, "a", "b")], vec![])), 1 << 20).unwrap_err();
    assert_eq!(e.to_string(), "query 0, matcher 0: unknown matcher type 9");
    let e = parse_request(
        &body(&request(
            vec![matcher(0, "a", "b"), matcher(2, "a", "(")],
            vec![],
        )),
        1 << 20,
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("query 0, matcher 1: "), "{e}");
    let e = parse_request(&body(&request(vec![], vec![5, 6])), 1 << 20).unwrap_err();
    assert!(e.to_string().contains("[5, 6]"), "{e}");
    let big = request(vec![matcher(0, "a", &"x".repeat(4096))], vec![]);
    let e = parse_request(&body(&big), 1024).unwrap_err();
    assert!(e.to_string().contains("exceeds the limit"), "{e}");
}

#[test]
fn samples_responses_decode_with_prost_and_keep_bits() {
    let a = labels(&[("__name__", "up"), ("job", "a")]);
    let b = labels(&[("__name__", "up"), ("job", "b")]);
    let mut r = SamplesResponse::new(10);
    r.add_series(&a, &[(0, -0.0), (1000, 1.0), (-5, f64::NAN)])
        .unwrap();
    r.add_series(&b, &[(2000, 0.0)]).unwrap();
    r.end_query();
    r.end_query(); // a second query with no series
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&r.finish())
        .unwrap();
    let resp = proto::ReadResponse::decode(raw.as_slice()).unwrap();
    assert_eq!(resp.results.len(), 2);
    assert!(resp.results[1].timeseries.is_empty());
    let ts = &resp.results[0].timeseries;
    assert_eq!(ts.len(), 2);
    assert_eq!(ts[0].labels[1].value, "a");
    let got: Vec<(i64, u64)> = ts[0]
        .samples
        .iter()
        .map(|s| (s.timestamp, s.value.to_bits()))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, (-0.0f64).to_bits()),
            (1000, 1.0f64.to_bits()),
            (-5, f64::NAN.to_bits())
        ]
    );
    assert_eq!(ts[1].samples[0].value.to_bits(), 0);
}

#[test]
fn the_sample_limit_is_per_query() {
    let a = labels(&[("__name__", "up")]);
    let mut r = SamplesResponse::new(3);
    r.add_series(&a, &[(1, 1.0), (2, 2.0)]).unwrap();
    assert_eq!(
        r.add_series(&a, &[(3, 1.0), (4, 2.0)]),
        Err(ReadError::SampleLimit(3))
    );
    let mut r = SamplesResponse::new(3);
    r.add_series(&a, &[(1, 1.0), (2, 2.0)]).unwrap();
    r.end_query();
    r.add_series(&a, &[(1, 1.0), (2, 2.0), (3, 3.0)]).unwrap();
    assert_eq!(
        ReadError::SampleLimit(3).to_string(),
        "exceeded sample limit (3)"
    );
}

/// Series read back from frames: (query index, labels, samples).
type Decoded = Vec<(i64, Vec<String>, Vec<(i64, f64)>)>;

fn decode_series(frames: &[proto::ChunkedReadResponse]) -> Decoded {
    let mut out: Decoded = Vec::new();
    for f in frames {
        assert_eq!(f.chunked_series.len(), 1, "one series per frame");
        let s = &f.chunked_series[0];
        let names: Vec<String> = s
            .labels
            .iter()
            .map(|l| format!("{}={}", l.name, l.value))
            .collect();
        let mut samples = Vec::new();
        for c in &s.chunks {
            assert_eq!(c.r#type, CHUNK_XOR);
            let d = xor::decode(&c.data).unwrap();
            assert!(!d.is_empty() && d.len() <= xor::MAX_SAMPLES_PER_CHUNK);
            assert_eq!((c.min_time_ms, c.max_time_ms), (d[0].0, d[d.len() - 1].0));
            samples.extend(d);
        }
        match out.last_mut() {
            Some(last) if last.0 == f.query_index && last.1 == names => last.2.extend(samples),
            _ => out.push((f.query_index, names, samples)),
        }
    }
    out
}

#[test]
fn streamed_chunks_round_trip_through_frames() {
    let a = labels(&[("__name__", "node_cpu_seconds_total"), ("mode", "idle")]);
    let samples: Vec<(i64, f64)> = (0..1000)
        .map(|i| (1_000_000 + i * 15_000 + (i % 7), (i as f64) * 0.25))
        .collect();
    let mut body = Vec::new();
    series_frames(3, &a, &samples, DEFAULT_MAX_BYTES_IN_FRAME, |f| {
        body.extend(f)
    });
    let frames = read_frames(&body, DEFAULT_MAX_BYTES_IN_FRAME).unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].chunked_series[0].chunks.len(), 9); // 1000 / 120, rounded up
    let got = decode_series(&frames);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, 3);
    assert_eq!(got[0].2, samples);

    // A small frame budget splits the series over frames that each repeat its labels.
    let mut body = Vec::new();
    let mut sizes = Vec::new();
    series_frames(0, &a, &samples, 600, |f| {
        sizes.push(f.len());
        body.extend(f)
    });
    assert!(sizes.len() > 2, "{sizes:?}");
    let frames = read_frames(&body, 1 << 20).unwrap();
    assert!(frames.iter().all(|f| f.query_index == 0));
    assert_eq!(decode_series(&frames)[0].2, samples);
}

#[test]
fn damaged_streams_are_detected() {
    let a = labels(&[("__name__", "up")]);
    let mut body = Vec::new();
    series_frames(0, &a, &[(1, 1.0), (2, 2.0)], 1 << 20, |f| body.extend(f));
    assert!(read_frames(&body, 1 << 20).is_ok());
    for i in 0..body.len() {
        let mut bad = body.clone();
        bad[i] ^= 0x10;
        assert!(read_frames(&bad, 1 << 20).is_err(), "flipped byte {i}");
    }
    assert!(matches!(
        read_frames(&body[..body.len() - 1], 1 << 20),
        Err(FrameError::Truncated { offset: 0 })
    ));
    assert!(matches!(
        read_frames(&body, 4),
        Err(FrameError::TooLarge { .. })
    ));
}
