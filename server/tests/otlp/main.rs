//! End-to-end tests of OTLP metrics ingest over real sockets: a tonic gRPC client on the OTLP
//! gRPC listener, HTTP posts on the OTLP HTTP listener and on the main port, answers read back
//! through the Prometheus query API; startup errors for taken OTLP ports; and the
//! OpenTelemetry Python SDK's own exporters (python.rs).

mod python;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use o11y_server::serve::{start, Running, ServeConfig};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

/// One HTTP/1.1 request over a fresh connection; returns (status, body).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: o11y\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&out[..split]).to_ascii_lowercase();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = out[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut b: &[u8] = &body;
        let mut plain = Vec::new();
        while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
            let n =
                usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            plain.extend_from_slice(&b[nl + 2..nl + 2 + n]);
            b = &b[nl + 2 + n + 2..];
        }
        body = plain;
    }
    (status, body)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs an instant query now and returns `data.result`.
pub fn query(addr: SocketAddr, q: &str) -> Vec<serde_json::Value> {
    let (status, body) = http(
        addr,
        "GET",
        &format!("/api/v1/query?query={}", urlencode(q)),
        &[],
        b"",
    );
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    assert_eq!(status, 200, "{q}: {v}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// The single value of an instant query that must return exactly one series.
pub fn one_value(addr: SocketAddr, q: &str) -> f64 {
    let r = query(addr, q);
    assert_eq!(r.len(), 1, "{q}: {r:?}");
    r[0]["value"][1].as_str().unwrap().parse().unwrap()
}

pub fn config(dir: &std::path::Path) -> ServeConfig {
    ServeConfig {
        data_dir: dir.to_path_buf(),
        http_listen: "127.0.0.1:0".into(),
        cluster_listen: "127.0.0.1:0".into(),
        otlp_grpc_listen: "127.0.0.1:0".into(),
        otlp_http_listen: "127.0.0.1:0".into(),
        ..ServeConfig::default()
    }
}

pub async fn started(dir: &std::path::Path) -> Running {
    let running = start(config(dir)).await.unwrap();
    running
        .node
        .wait_for_leader(Duration::from_secs(20))
        .await
        .unwrap();
    running
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        key_strindex: 0,
    }
}

fn num(t: u64, v: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: vec![kv("route", "/pay")],
        start_time_unix_nano: 0,
        time_unix_nano: t,
        exemplars: vec![],
        flags: 0,
        value: Some(number_data_point::Value::AsDouble(v)),
    }
}

fn metric(name: &str, unit: &str, data: metric::Data) -> Metric {
    Metric {
        name: name.into(),
        description: String::new(),
        unit: unit.into(),
        metadata: vec![],
        data: Some(data),
    }
}

/// A request from service "shop/checkout" instance "pod-7" on host "node-1".
fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "checkout"),
                    kv("service.namespace", "shop"),
                    kv("service.instance.id", "pod-7"),
                    kv("host.name", "node-1"),
                ],
                dropped_attributes_count: 0,
                entity_refs: vec![],
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: None,
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

const SEL: &str = r#"job="shop/checkout",instance="pod-7""#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_and_http_round_trip_to_promql() {
    let dir = tempfile::tempdir().unwrap();
    let running = started(dir.path()).await;
    let t = now_ns();

    // gRPC: a counter, a gauge and a histogram.
    let mut client = MetricsServiceClient::connect(format!("http://{}", running.otlp_grpc_addr))
        .await
        .unwrap();
    let req = request(vec![
        metric(
            "payments",
            "{payment}",
            metric::Data::Sum(Sum {
                data_points: vec![num(t, 42.0)],
                aggregation_temporality: 2,
                is_monotonic: true,
            }),
        ),
        metric(
            "memory.used",
            "By",
            metric::Data::Gauge(Gauge {
                data_points: vec![num(t, 1024.0)],
            }),
        ),
        metric(
            "pay.duration",
            "ms",
            metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes: vec![kv("route", "/pay")],
                    start_time_unix_nano: 0,
                    time_unix_nano: t,
                    count: 6,
                    sum: Some(321.0),
                    bucket_counts: vec![1, 2, 3],
                    explicit_bounds: vec![10.0, 100.0],
                    exemplars: vec![],
                    flags: 0,
                    min: None,
                    max: None,
                }],
                aggregation_temporality: 2,
            }),
        ),
    ]);
    let resp = client.export(req).await.unwrap().into_inner();
    assert_eq!(resp, ExportMetricsServiceResponse::default());

    // gRPC with gzip, and a delta sum: a partial success.
    let mut gz = client
        .clone()
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let req = request(vec![metric(
        "refunds",
        "",
        metric::Data::Sum(Sum {
            data_points: vec![num(t, 1.0), num(t, 2.0)],
            aggregation_temporality: 1,
            is_monotonic: true,
        }),
    )]);
    let ps = gz
        .export(req)
        .await
        .unwrap()
        .into_inner()
        .partial_success
        .unwrap();
    assert_eq!(ps.rejected_data_points, 2);
    assert!(ps.error_message.contains("DELTA"), "{}", ps.error_message);

    // A gzip bomb: small on the wire, over the limit once inflated.
    let mut bomb = num(t, 1.0);
    bomb.attributes
        .push(kv("pad", &"x".repeat(o11y_server::otlp::MAX_BODY_BYTES)));
    let err = gz
        .export(request(vec![metric(
            "bomb",
            "",
            metric::Data::Gauge(Gauge {
                data_points: vec![bomb],
            }),
        )]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");
    assert!(err.message().contains("size limit"), "{err}");

    // HTTP protobuf on the OTLP port; HTTP JSON on the main port.
    let addr = running.http_addr;
    let otlp_http = running.otlp_http_addr;
    let t2 = t + 1_000_000;
    tokio::task::spawn_blocking(move || {
        let req = request(vec![metric(
            "queue.depth",
            "",
            metric::Data::Gauge(Gauge {
                data_points: vec![num(t2, 7.0)],
            }),
        )]);
        let (status, body) = http(
            otlp_http,
            "POST",
            "/v1/metrics",
            &[("Content-Type", "application/x-protobuf")],
            &req.encode_to_vec(),
        );
        assert_eq!(status, 200);
        assert_eq!(
            ExportMetricsServiceResponse::decode(body.as_slice()).unwrap(),
            ExportMetricsServiceResponse::default()
        );
        let json = format!(
            r#"{{"resourceMetrics":[{{"resource":{{"attributes":[
                {{"key":"service.name","value":{{"stringValue":"checkout"}}}},
                {{"key":"service.namespace","value":{{"stringValue":"shop"}}}},
                {{"key":"service.instance.id","value":{{"stringValue":"pod-7"}}}}]}},
              "scopeMetrics":[{{"metrics":[{{"name":"cpu.utilization","unit":"1",
                "gauge":{{"dataPoints":[{{"timeUnixNano":"{t2}","asDouble":0.75}}]}}}}]}}]}}]}}"#
        );
        let (status, body) = http(
            addr,
            "POST",
            "/v1/metrics",
            &[("Content-Type", "application/json")],
            json.as_bytes(),
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(body, b"{}");
        // A wrong content type on the OTLP port.
        let (status, _) = http(
            otlp_http,
            "POST",
            "/v1/metrics",
            &[("Content-Type", "text/plain")],
            b"x",
        );
        assert_eq!(status, 415);

        // Everything is queryable with Prometheus names and job/instance.
        assert_eq!(one_value(addr, &format!("payments_total{{{SEL}}}")), 42.0);
        assert_eq!(
            one_value(addr, &format!("memory_used_bytes{{{SEL}}}")),
            1024.0
        );
        assert_eq!(one_value(addr, &format!("queue_depth{{{SEL}}}")), 7.0);
        assert_eq!(
            one_value(addr, &format!("cpu_utilization_ratio{{{SEL}}}")),
            0.75
        );
        for (le, v) in [("10", 1.0), ("100", 3.0), ("+Inf", 6.0)] {
            assert_eq!(
                one_value(
                    addr,
                    &format!("pay_duration_milliseconds_bucket{{{SEL},le=\"{le}\"}}")
                ),
                v
            );
        }
        assert_eq!(
            one_value(addr, &format!("pay_duration_milliseconds_count{{{SEL}}}")),
            6.0
        );
        assert_eq!(
            one_value(addr, &format!("pay_duration_milliseconds_sum{{{SEL}}}")),
            321.0
        );
        assert_eq!(
            one_value(
                addr,
                &format!("histogram_quantile(0.5, pay_duration_milliseconds_bucket{{{SEL}}})")
            ),
            100.0
        );
        assert_eq!(
            one_value(addr, &format!("target_info{{{SEL},host_name=\"node-1\"}}")),
            1.0
        );
        assert!(query(addr, "refunds_total").is_empty());
    })
    .await
    .unwrap();
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taken_otlp_ports_are_clear_startup_errors() {
    let dir = tempfile::tempdir().unwrap();
    let running = started(dir.path()).await;
    for (grpc, http_, flag) in [
        (
            running.otlp_grpc_addr.to_string(),
            "127.0.0.1:0".to_string(),
            "--otlp-grpc-listen",
        ),
        (
            "127.0.0.1:0".to_string(),
            running.otlp_http_addr.to_string(),
            "--otlp-http-listen",
        ),
    ] {
        let other = tempfile::tempdir().unwrap();
        let taken = if flag == "--otlp-grpc-listen" {
            grpc.clone()
        } else {
            http_.clone()
        };
        let err = match start(ServeConfig {
            otlp_grpc_listen: grpc,
            otlp_http_listen: http_,
            ..config(other.path())
        })
        .await
        {
            Ok(_) => panic!("a second server started on a taken OTLP port"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains(&taken) && err.contains(flag), "{err}");
    }
    running.shutdown().await.unwrap();
}
