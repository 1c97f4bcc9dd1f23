//! End-to-end tests of `o11y serve` over real sockets: remote_write in, Prometheus API out,
//! bad input, and a restart that replays the Raft log.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use o11y_server::remote_write::encode_v1;
use o11y_server::serve::{start, ServeConfig};
use o11y_tsdb::labels::Label;
use o11y_tsdb::{Sample, SeriesSamples, WriteBatch};

mod observability;

/// One HTTP/1.1 request over a fresh connection; returns (status, headers, body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
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
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = out[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, head, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + n]);
        b = &b[nl + 2 + n + 2..];
    }
}

fn series(name: &str, inst: &str, samples: &[(i64, f64)]) -> SeriesSamples {
    SeriesSamples {
        labels: vec![
            Label::new("__name__", name),
            Label::new("instance", inst),
            Label::new("job", "e2e"),
        ],
        samples: samples.iter().map(|&(t, v)| Sample { t, v }).collect(),
    }
}

const RW1: [(&str, &str); 3] = [
    ("Content-Type", "application/x-protobuf"),
    ("Content-Encoding", "snappy"),
    ("X-Prometheus-Remote-Write-Version", "0.1.0"),
];

fn config(dir: &std::path::Path) -> ServeConfig {
    ServeConfig {
        data_dir: dir.to_path_buf(),
        http_listen: "127.0.0.1:0".into(),
        cluster_listen: "127.0.0.1:0".into(),
        otlp_grpc_listen: "127.0.0.1:0".into(),
        otlp_http_listen: "127.0.0.1:0".into(),
        ..ServeConfig::default()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// An instant query that must return `want` results. Writes are applied before their 204,
/// and callers pass a read barrier after a restart, so no retry is needed.
fn query_expect(addr: SocketAddr, q: &str, t_s: f64, want: usize) -> serde_json::Value {
    let path = format!("/api/v1/query?query={}&time={t_s}", urlencode(q));
    let (status, _, body) = http(addr, "GET", &path, &[], b"");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    assert_eq!(status, 200, "{q}: {v}");
    assert_eq!(
        v["data"]["result"].as_array().map(Vec::len),
        Some(want),
        "{q}: {v}"
    );
    v
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

fn post_write(addr: SocketAddr, body: &[u8]) -> (u16, String) {
    let (status, _, resp) = http(addr, "POST", "/api/v1/write", &RW1, body);
    (status, String::from_utf8_lossy(&resp).to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_then_query_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = now_ms() - 60_000;
    let running = start(config(dir.path())).await.unwrap();
    running
        .node
        .wait_for_leader(Duration::from_secs(20))
        .await
        .unwrap();
    let addr = running.http_addr;
    let batch = WriteBatch {
        series: vec![
            series("e2e_requests_total", "a", &[(t0, 1.0), (t0 + 15_000, 2.0)]),
            series(
                "e2e_requests_total",
                "b",
                &[(t0, 10.0), (t0 + 15_000, f64::INFINITY)],
            ),
        ],
        received_ms: None,
    };
    let body = encode_v1(&batch);
    let t_query = (t0 + 20_000) as f64 / 1000.0;
    let res = tokio::task::spawn_blocking(move || {
        let (status, msg) = post_write(addr, &body);
        assert_eq!(status, 204, "{msg}");
        // The same request again (a sender's retry) is accepted and changes nothing.
        let (status, msg) = post_write(addr, &body);
        assert_eq!(status, 204, "{msg}");
        query_expect(addr, "e2e_requests_total", t_query, 2)
    })
    .await
    .unwrap();
    let mut values: Vec<String> = res["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"][1].as_str().unwrap().to_string())
        .collect();
    values.sort();
    assert_eq!(values, vec!["+Inf", "2"]);

    // Bad input: clear errors, nothing else lost.
    let res = tokio::task::spawn_blocking(move || {
        let (status, _, msg) = http(
            addr,
            "POST",
            "/api/v1/write",
            &RW1,
            b"\xff\xff\xff\xff\x0fgarbage",
        );
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(&msg));
        let (status, _, _) = http(
            addr,
            "POST",
            "/api/v1/write",
            &[("Content-Type", "application/json")],
            b"{}",
        );
        assert_eq!(status, 415);
        // One series with an empty label name next to a good one: 400, the good one written.
        let mixed = WriteBatch {
            series: vec![
                SeriesSamples {
                    labels: vec![Label::new("__name__", "e2e_bad"), Label::new("", "x")],
                    samples: vec![Sample { t: t0, v: 1.0 }],
                },
                series("e2e_good", "c", &[(t0, 5.0)]),
            ],
            received_ms: None,
        };
        let (status, msg) = post_write(addr, &encode_v1(&mixed));
        assert_eq!(status, 400, "{msg}");
        assert!(msg.contains("series 0"), "{msg}");
        query_expect(addr, "e2e_good", t_query, 1);
    })
    .await;
    res.unwrap();

    running.shutdown().await.unwrap();

    // Restart on the same directory: everything acknowledged is still there.
    let running = start(config(dir.path())).await.unwrap();
    running
        .node
        .wait_for_leader(Duration::from_secs(20))
        .await
        .unwrap();
    running.node.read_barrier().await.unwrap();
    let addr = running.http_addr;
    tokio::task::spawn_blocking(move || {
        query_expect(addr, "e2e_requests_total", t_query, 2);
        query_expect(addr, "e2e_good", t_query, 1);
    })
    .await
    .unwrap();
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(config(dir.path())).await.unwrap();
    let taken = running.http_addr.to_string();
    let other = tempfile::tempdir().unwrap();
    let err = match start(ServeConfig {
        http_listen: taken.clone(),
        ..config(other.path())
    })
    .await
    {
        Ok(_) => panic!("a second server started on a taken port"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains(&taken) && err.contains("--http-listen"),
        "{err}"
    );
    running.shutdown().await.unwrap();

    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = match start(config(&file)).await {
        Ok(_) => panic!("started on a file"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("not-a-dir"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_from_remote_write_1_and_2_survives_a_restart() {
    use o11y_server::remote_write::{compress, proto, CONTENT_TYPE_V2};
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let t0 = now_ms() - 60_000;
    let running = start(config(dir.path())).await.unwrap();
    running
        .node
        .wait_for_leader(Duration::from_secs(20))
        .await
        .unwrap();
    let addr = running.http_addr;
    // 1.0: a metadata-only request, as Prometheus sends them.
    let v1 = compress(
        &proto::WriteRequest {
            timeseries: vec![],
            metadata: vec![proto::MetricMetadata {
                r#type: 1,
                metric_family_name: "e2e_v1_total".into(),
                help: "Requests seen.".into(),
                unit: String::new(),
            }],
        }
        .encode_to_vec(),
    );
    // 2.0: metadata on a series.
    let v2 = compress(
        &proto::RequestV2 {
            symbols: ["", "__name__", "e2e_v2_seconds", "Time spent.", "seconds"]
                .map(String::from)
                .to_vec(),
            timeseries: vec![proto::TimeSeriesV2 {
                labels_refs: vec![1, 2],
                samples: vec![proto::Sample {
                    value: 1.5,
                    timestamp: t0,
                }],
                histograms: vec![],
                exemplars: vec![],
                metadata: Some(proto::MetadataV2 {
                    r#type: 2,
                    help_ref: 3,
                    unit_ref: 4,
                }),
                created_timestamp: 0,
            }],
        }
        .encode_to_vec(),
    );
    let want = serde_json::json!({
        "e2e_v1_total": [{"type": "counter", "help": "Requests seen.", "unit": ""}],
        "e2e_v2_seconds": [{"type": "gauge", "help": "Time spent.", "unit": "seconds"}],
    });
    let node = running.node.clone();
    let (w, v1c) = (want.clone(), v1.clone());
    tokio::task::spawn_blocking(move || {
        let (status, msg) = post_write(addr, &v1c);
        assert_eq!(status, 204, "{msg}");
        let v2_headers = [
            ("Content-Type", CONTENT_TYPE_V2),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "2.0.0"),
        ];
        let (status, _, msg) = http(addr, "POST", "/api/v1/write", &v2_headers, &v2);
        assert_eq!(status, 204, "{}", String::from_utf8_lossy(&msg));
        let (status, _, body) = http(addr, "GET", "/api/v1/metadata", &[], b"");
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["data"], w);
        // Known metadata is not proposed again: the log does not grow.
        let before = node.status().last_log_index;
        let (status, msg) = post_write(addr, &v1c);
        assert_eq!(status, 204, "{msg}");
        assert_eq!(node.status().last_log_index, before);
    })
    .await
    .unwrap();
    running.shutdown().await.unwrap();

    let running = start(config(dir.path())).await.unwrap();
    running
        .node
        .wait_for_leader(Duration::from_secs(20))
        .await
        .unwrap();
    running.node.read_barrier().await.unwrap();
    let addr = running.http_addr;
    tokio::task::spawn_blocking(move || {
        let (status, _, body) = http(
            addr,
            "GET",
            "/api/v1/metadata?metric=e2e_v2_seconds",
            &[],
            b"",
        );
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["data"]["e2e_v2_seconds"], want["e2e_v2_seconds"]);
    })
    .await
    .unwrap();
    running.shutdown().await.unwrap();
}
