//! Tests of `POST /api/v1/read` (both response types, matchers, limits, bad input) and of
//! `GET /api/v1/metadata`, through the router over the fixture tsdb of `tests`.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use o11y_raft::MetadataEntry;
use o11y_tsdb::matcher::{MatchOp, Matcher};
use o11y_tsdb::{Options, DEFAULT_TENANT};
use prost::Message;
use tower::ServiceExt;

use super::read::{self, ReadOptions};
use super::router;
use super::tests::{fixture, send, state, T0};
use crate::remote_read::proto::{self, LabelMatcher, Query};
use crate::remote_read::{read_frames, xor, CONTENT_TYPE_STREAMED};
use crate::remote_write::compress;

fn m(t: i32, name: &str, value: &str) -> LabelMatcher {
    LabelMatcher {
        r#type: t,
        name: name.into(),
        value: value.into(),
    }
}

fn query(matchers: Vec<LabelMatcher>) -> Query {
    Query {
        start_timestamp_ms: T0,
        end_timestamp_ms: T0 + 3_600_000,
        matchers,
        hints: None,
    }
}

fn read_req(body: Vec<u8>) -> Request<Body> {
    Request::post("/api/v1/read")
        .header(header::CONTENT_TYPE, "application/x-protobuf")
        .header(header::CONTENT_ENCODING, "snappy")
        .body(Body::from(body))
        .unwrap()
}

fn encode(queries: Vec<Query>, accepted: Vec<i32>) -> Vec<u8> {
    compress(
        &proto::ReadRequest {
            queries,
            accepted_response_types: accepted,
        }
        .encode_to_vec(),
    )
}

async fn raw(
    app: &axum::Router,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes().to_vec();
    (parts.status, parts.headers, body)
}

/// The samples of each series the fixture db holds for the matchers, as the tsdb sees them.
fn expected(db: &o11y_tsdb::Db, ms: &[Matcher]) -> SeriesData {
    db.select(DEFAULT_TENANT, ms, T0, T0 + 3_600_000)
        .unwrap()
        .iter()
        .map(|s| (s.labels().to_string(), s.samples().unwrap()))
        .collect()
}

/// Series as (labels, samples).
type SeriesData = Vec<(String, Vec<(i64, f64)>)>;

fn labels_string(ls: &[crate::remote_write::proto::Label]) -> String {
    o11y_tsdb::labels::Labels::from_pairs(ls.iter().map(|l| (l.name.clone(), l.value.clone())))
        .to_string()
}

#[tokio::test]
async fn samples_responses_follow_every_matcher_type() {
    let fx = fixture(Options::default());
    let app = router(state(&fx.db));
    let body = encode(
        vec![
            query(vec![m(0, "__name__", "up"), m(1, "instance", "a")]),
            query(vec![m(2, "__name__", "http_.*"), m(3, "code", "5..")]),
            query(vec![m(0, "__name__", "nothing_here")]),
        ],
        vec![],
    );
    let (status, headers, body) = raw(&app, read_req(body)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers[header::CONTENT_TYPE], "application/x-protobuf");
    assert_eq!(headers[header::CONTENT_ENCODING], "snappy");
    let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
    let resp = proto::ReadResponse::decode(raw.as_slice()).unwrap();
    assert_eq!(resp.results.len(), 3);
    let want = [
        expected(
            &fx.db,
            &[
                Matcher::new(MatchOp::Equal, "__name__", "up").unwrap(),
                Matcher::new(MatchOp::NotEqual, "instance", "a").unwrap(),
            ],
        ),
        expected(
            &fx.db,
            &[
                Matcher::new(MatchOp::Regex, "__name__", "http_.*").unwrap(),
                Matcher::new(MatchOp::NotRegex, "code", "5..").unwrap(),
            ],
        ),
        Vec::new(),
    ];
    assert_eq!(want[0].len(), 1);
    assert_eq!(want[1].len(), 1);
    for (res, want) in resp.results.iter().zip(want) {
        let got: SeriesData = res
            .timeseries
            .iter()
            .map(|ts| {
                (
                    labels_string(&ts.labels),
                    ts.samples.iter().map(|s| (s.timestamp, s.value)).collect(),
                )
            })
            .collect();
        assert_eq!(got, want);
    }
}

#[tokio::test]
async fn streamed_responses_carry_xor_chunks_per_query() {
    let fx = fixture(Options::default());
    let app = router(state(&fx.db));
    let body = encode(
        vec![
            query(vec![m(0, "__name__", "up")]),
            query(vec![m(0, "__name__", "http_requests_total")]),
        ],
        vec![1, 0],
    );
    let (status, headers, body) = raw(&app, read_req(body)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers[header::CONTENT_TYPE], CONTENT_TYPE_STREAMED);
    assert!(headers.get(header::CONTENT_ENCODING).is_none());
    let frames = read_frames(&body, 1 << 20).unwrap();
    let mut got: Vec<SeriesData> = vec![Vec::new(), Vec::new()];
    for f in frames {
        for s in f.chunked_series {
            let mut samples = Vec::new();
            for c in &s.chunks {
                samples.extend(xor::decode(&c.data).unwrap());
            }
            got[f.query_index as usize].push((labels_string(&s.labels), samples));
        }
    }
    for (i, name) in ["up", "http_requests_total"].into_iter().enumerate() {
        let want = expected(
            &fx.db,
            &[Matcher::new(MatchOp::Equal, "__name__", name).unwrap()],
        );
        assert_eq!(want.len(), 2);
        assert_eq!(got[i], want, "query {i}");
    }
}

#[tokio::test]
async fn limits_and_bad_requests_are_400_with_a_message() {
    let fx = fixture(Options::default());
    let limited = read::router(
        state(&fx.db),
        ReadOptions {
            sample_limit: 100,
            ..ReadOptions::default()
        },
    );
    // Two `up` series of 61 samples each: 122 > 100.
    let (status, _, body) = raw(
        &limited,
        read_req(encode(vec![query(vec![m(0, "__name__", "up")])], vec![])),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        String::from_utf8_lossy(&body),
        "exceeded sample limit (100)"
    );
    // One series fits.
    let (status, _, _) = raw(
        &limited,
        read_req(encode(
            vec![query(vec![m(0, "__name__", "up"), m(0, "instance", "a")])],
            vec![],
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let app = router(state(&fx.db));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"definitely not snappy".to_vec(), "snappy"),
        (compress(b"\x0a\x09\x12"), "invalid protobuf"),
        (
            encode(vec![query(vec![m(2, "job", "a(")])], vec![]),
            "query 0, matcher 0",
        ),
        (
            encode(vec![query(vec![m(7, "job", "a")])], vec![]),
            "unknown matcher type 7",
        ),
        (
            encode(vec![query(vec![m(0, "job", "a")])], vec![4]),
            "does not support any of the requested response types",
        ),
    ];
    for (body, want) in cases {
        let (status, _, body) = raw(&app, read_req(body)).await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        assert!(text.contains(want), "{text:?} should mention {want:?}");
    }
}

fn entry(metric: &str, kind: &str, help: &str, unit: &str) -> MetadataEntry {
    MetadataEntry {
        metric: metric.into(),
        kind: kind.into(),
        help: help.into(),
        unit: unit.into(),
    }
}

#[tokio::test]
async fn metadata_endpoint_lists_what_was_replicated() {
    let fx = fixture(Options::default());
    let st = state(&fx.db);
    st.metadata.apply(
        DEFAULT_TENANT,
        &[
            entry("up", "gauge", "1 if up", ""),
            entry("http_requests_total", "counter", "Requests \"served\".", ""),
            entry("node_memory_MemTotal_bytes", "gauge", "Memory.", "bytes"),
        ],
    );
    st.metadata
        .apply("other-tenant", &[entry("secret", "gauge", "", "")]);
    let app = router(st);
    let get = |q: &str| {
        Request::get(format!("/api/v1/metadata{q}"))
            .body(Body::empty())
            .unwrap()
    };
    let (status, body) = send(&app, get("")).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["data"],
        serde_json::json!({
            "http_requests_total": [{"type": "counter", "help": "Requests \"served\".", "unit": ""}],
            "node_memory_MemTotal_bytes": [{"type": "gauge", "help": "Memory.", "unit": "bytes"}],
            "up": [{"type": "gauge", "help": "1 if up", "unit": ""}],
        })
    );
    let (_, body) = send(&app, get("?metric=up")).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["data"],
        serde_json::json!({"up": [{"type": "gauge", "help": "1 if up", "unit": ""}]})
    );
    let (_, body) = send(&app, get("?metric=absent")).await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["data"],
        serde_json::json!({})
    );
    let (_, body) = send(&app, get("?limit=2&limit_per_metric=1")).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"].as_object().unwrap().len(), 2);
    let (_, body) = send(&app, get("?limit=0")).await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["data"],
        serde_json::json!({})
    );
    let (_, body) = send(&app, get("?limit=-1")).await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["data"]
            .as_object()
            .unwrap()
            .len(),
        3
    );
    for (q, msg) in [
        ("?limit=x", "limit must be a number"),
        ("?limit_per_metric=1.5", "limit_per_metric must be a number"),
    ] {
        let (status, body) = send(&app, get(q)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["errorType"], "bad_data");
        assert_eq!(v["error"], msg);
    }
}
