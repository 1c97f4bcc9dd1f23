//! `POST /v1/metrics` through the full router (no socket) over a real single-node Raft
//! write path: protobuf, JSON, gzip, partial success, bad bodies, content negotiation, size
//! limits, retriable failures.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use o11y_query::promql::Engine;
use o11y_raft::{NodeConfig, RaftNode, Transport};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use tower::ServiceExt;

use super::*;
use crate::otlp::tests::*;

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

async fn post(
    app: &Router,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, Option<String>, Vec<u8>) {
    let mut req = Request::post(PATH);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, ct, body)
}

const PB: (&str, &str) = ("content-type", "application/x-protobuf");
const JSON: (&str, &str) = ("content-type", "application/json");
const GZIP: (&str, &str) = ("content-encoding", "gzip");

fn job() -> [(&'static str, &'static str); 3] {
    [("job", "shop/checkout"), ("instance", "i-1"), ("kind", "x")]
}

#[tokio::test]
async fn protobuf_and_gzip_protobuf() {
    let (_dir, node, state) = node_state().await;
    let app = crate::app::router(state);
    let t = now_ns();
    let req = request(
        service(),
        vec![sum(
            "orders",
            "",
            true,
            CUMULATIVE,
            vec![num(t, 3.0, vec![kv("kind", "x")])],
        )],
    );
    let (status, ct, body) = post(&app, &[PB], req.encode_to_vec()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ct.as_deref(), Some("application/x-protobuf"));
    let resp = ExportMetricsServiceResponse::decode(body.as_slice()).unwrap();
    assert_eq!(resp.partial_success, None);
    let ms = (t / 1_000_000) as i64;
    assert_eq!(stored(&node, "orders_total", &job()), vec![(ms, 3.0)]);

    let req = request(
        service(),
        vec![sum(
            "orders",
            "",
            true,
            CUMULATIVE,
            vec![num(t + 1_000_000_000, 5.0, vec![kv("kind", "x")])],
        )],
    );
    let (status, _, _) = post(
        &app,
        &[("content-type", "application/x-protobuf"), GZIP],
        gzip(&req.encode_to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        stored(&node, "orders_total", &job()),
        vec![(ms, 3.0), (ms + 1000, 5.0)]
    );
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn json_and_gzip_json() {
    let (_dir, node, state) = node_state().await;
    let app = crate::app::router(state);
    let t = now_ns();
    let body = format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[
            {{"key":"service.name","value":{{"stringValue":"checkout"}}}},
            {{"key":"service.namespace","value":{{"stringValue":"shop"}}}},
            {{"key":"service.instance.id","value":{{"stringValue":"i-1"}}}}]}},
          "scopeMetrics":[{{"metrics":[
            {{"name":"queue.size","unit":"{{item}}","sum":{{"aggregationTemporality":"AGGREGATION_TEMPORALITY_CUMULATIVE",
              "dataPoints":[{{"timeUnixNano":"{t}","asInt":"12","attributes":[{{"key":"kind","value":{{"stringValue":"x"}}}}]}}]}}}}
          ]}}]}}]}}"#
    );
    let (status, ct, resp) = post(
        &app,
        &[("content-type", "application/json; charset=utf-8")],
        body.clone().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&resp));
    assert_eq!(ct.as_deref(), Some("application/json"));
    assert_eq!(resp, b"{}");
    let ms = (t / 1_000_000) as i64;
    assert_eq!(stored(&node, "queue_size", &job()), vec![(ms, 12.0)]);

    let later = body.replace(&t.to_string(), &(t + 2_000_000_000).to_string());
    let (status, _, _) = post(&app, &[JSON, GZIP], gzip(later.as_bytes())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        stored(&node, "queue_size", &job()),
        vec![(ms, 12.0), (ms + 2000, 12.0)]
    );
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn partial_success_in_both_encodings() {
    let (_dir, node, state) = node_state().await;
    let app = crate::app::router(state);
    let t = now_ns();
    let req = request(
        service(),
        vec![
            gauge("ok", "", vec![num(t, 1.0, vec![])]),
            sum(
                "d",
                "",
                true,
                DELTA,
                vec![num(t, 1.0, vec![]), num(t, 2.0, vec![])],
            ),
        ],
    );
    let (status, _, body) = post(&app, &[PB], req.encode_to_vec()).await;
    assert_eq!(status, StatusCode::OK);
    let ps = ExportMetricsServiceResponse::decode(body.as_slice())
        .unwrap()
        .partial_success
        .unwrap();
    assert_eq!(ps.rejected_data_points, 2);
    assert!(ps
        .error_message
        .contains("metric \"d\" point 0: aggregation temporality DELTA"));
    assert!(ps.error_message.contains("metric \"d\" point 1:"));

    let json = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[
        {"name":"d","sum":{"aggregationTemporality":1,"dataPoints":[{"asDouble":1}]}}]}]}]}"#;
    let (status, _, body) = post(&app, &[JSON], json.as_bytes().to_vec()).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["partialSuccess"]["rejectedDataPoints"], "1");
    assert!(v["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("DELTA"));
    assert_eq!(
        stored(
            &node,
            "ok",
            &[("job", "shop/checkout"), ("instance", "i-1")]
        )
        .len(),
        1
    );
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_bodies_are_400_with_a_status_in_the_request_encoding() {
    let (_dir, node, state) = node_state().await;
    let app = crate::app::router(state);
    let (status, ct, body) = post(&app, &[PB], vec![0xff, 0xff, 0xff]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(ct.as_deref(), Some("application/x-protobuf"));
    let st = RpcStatus::decode(body.as_slice()).unwrap();
    assert_eq!(st.code, 3);
    assert!(
        st.message
            .starts_with("invalid protobuf ExportMetricsServiceRequest:"),
        "{}",
        st.message
    );

    let (status, ct, body) = post(
        &app,
        &[JSON],
        br#"{"resourceMetrics":[{"scopeMetrics":"nope"}]}"#.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(ct.as_deref(), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], 3);
    assert_eq!(
        v["message"],
        "invalid OTLP/JSON at resourceMetrics[0].scopeMetrics: expected an array, found a string"
    );

    let (status, _, body) = post(&app, &[JSON], b"{\"resourceMetrics\": [".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("invalid JSON"));

    let (status, _, body) = post(&app, &[PB, GZIP], b"not gzip at all".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let st = RpcStatus::decode(body.as_slice()).unwrap();
    assert!(
        st.message.starts_with("invalid gzip body"),
        "{}",
        st.message
    );

    // An empty protobuf body is a valid empty request.
    let (status, _, _) = post(&app, &[PB], Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn unsupported_media_types_are_415() {
    let (_dir, node, state) = node_state().await;
    let app = crate::app::router(state);
    let body = request(vec![], vec![]).encode_to_vec();
    for headers in [
        vec![("content-type", "text/plain")],
        vec![],
        vec![
            (
                "content-type",
                "application/x-protobuf;proto=prometheus.WriteRequest",
            ),
            ("content-encoding", "snappy"),
        ],
        vec![PB, ("content-encoding", "zstd")],
    ] {
        let (status, _, msg) = post(&app, &headers, body.clone()).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{headers:?}");
        let msg = String::from_utf8(msg).unwrap();
        assert!(
            msg.contains("unsupported") || msg.contains("missing"),
            "{msg}"
        );
    }
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn body_limits_hold_before_and_after_decompression() {
    let (_dir, node, state) = node_state().await;
    let app = crate::app::router(state);
    // Raw body over the limit: refused by the body limit before decoding.
    let (status, _, _) = post(&app, &[PB], vec![0u8; MAX_BODY_BYTES + 1]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // A gzip bomb: a small body inflating past the limit.
    let bomb = gzip(&vec![0u8; MAX_BODY_BYTES + 4096]);
    assert!(bomb.len() < 1 << 20);
    let (status, ct, body) = post(&app, &[PB, GZIP], bomb).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(ct.as_deref(), Some("application/x-protobuf"));
    let st = RpcStatus::decode(body.as_slice()).unwrap();
    assert_eq!(
        st.message,
        format!("request body exceeds {MAX_BODY_BYTES} bytes after decompression")
    );
    node.shutdown().await.unwrap();
}

#[test]
fn decode_body_limits_exactly() {
    let req = request(service(), vec![gauge("g", "", vec![num(T0, 1.0, vec![])])]);
    let raw = req.encode_to_vec();
    let n = raw.len();
    assert_eq!(
        decode_body(Format::Protobuf, Encoding::Identity, &raw, n).unwrap(),
        req
    );
    assert_eq!(
        decode_body(Format::Protobuf, Encoding::Gzip, &gzip(&raw), n).unwrap(),
        req
    );
    assert_eq!(
        decode_body(Format::Protobuf, Encoding::Identity, &raw, n - 1),
        Err(DecodeError::TooLarge { limit: n - 1 })
    );
    assert_eq!(
        decode_body(Format::Protobuf, Encoding::Gzip, &gzip(&raw), n - 1),
        Err(DecodeError::TooLarge { limit: n - 1 })
    );
    // Concatenated gzip members are one body.
    let mut two = gzip(&raw[..n / 2]);
    two.extend(gzip(&raw[n / 2..]));
    assert_eq!(
        decode_body(Format::Protobuf, Encoding::Gzip, &two, n).unwrap(),
        req
    );
}

#[tokio::test]
async fn no_leader_is_503_and_read_only_is_500() {
    // A node that was never bootstrapped has no leader: the write is retriable.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = NodeConfig::new(1, "127.0.0.1:1", dir.path());
    cfg.propose_timeout = Duration::from_millis(300);
    let node = RaftNode::open(cfg, Transport::Grpc).await.unwrap();
    let app = crate::app::router(AppState::for_node(node.clone(), Engine::default()));
    let req = request(
        service(),
        vec![gauge("g", "", vec![num(now_ns(), 1.0, vec![])])],
    );
    let (status, _, body) = post(&app, &[PB], req.encode_to_vec()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let st = RpcStatus::decode(body.as_slice()).unwrap();
    assert_eq!(st.code, 14);
    assert!(!st.message.is_empty());
    node.shutdown().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(o11y_tsdb::Db::open(dir.path(), Default::default()).unwrap());
    let app = crate::app::router(AppState::new(
        Arc::new(move || db.clone()),
        Arc::new(Engine::default()),
    ));
    let (status, ct, body) = post(&app, &[JSON], b"{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"g\",\"gauge\":{\"dataPoints\":[{\"asDouble\":1}]}}]}]}]}".to_vec()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(ct.as_deref(), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], 13);
    assert_eq!(v["message"], "this server is read-only");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// Arbitrary bytes in any format and encoding: an answer, never a panic; whatever decodes
    /// translates.
    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        for format in [Format::Protobuf, Format::Json] {
            for encoding in [Encoding::Identity, Encoding::Gzip] {
                if let Ok(req) = decode_body(format, encoding, &body, 1 << 16) {
                    let tr = crate::otlp::translate(&req, &Default::default());
                    proptest::prop_assert_eq!(tr.origins.len(), tr.batch.series.len());
                }
            }
        }
    }
}
