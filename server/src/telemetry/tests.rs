use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use o11y_query::promql::Engine;
use o11y_raft::{NodeConfig, RaftNode, Transport};
use o11y_tsdb::labels::{Label, LabelError};
use o11y_tsdb::{RejectReason, Sample, SeriesSamples, WriteBatch};
use tower::ServiceExt;

use super::*;
use crate::app::{router, AppState};

/// Checks the text format the way a scraper reads it: every sample belongs to the family
/// announced by the last `# TYPE` line (histograms through `_bucket`/`_sum`/`_count`), no
/// family appears twice, label values are quoted, and values parse. Returns the samples as
/// `name{labels}` → value.
fn check_exposition(text: &str) -> HashMap<String, f64> {
    let mut families = HashSet::new();
    let mut current: Option<(String, String)> = None;
    let mut samples = HashMap::new();
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(is_metric_name(name), "{line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let (name, kind) = (it.next().unwrap(), it.next().unwrap());
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(families.insert(name.to_string()), "family {name} twice");
            current = Some((name.to_string(), kind.to_string()));
            continue;
        }
        assert!(!line.starts_with('#'), "{line}");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let name = series.split('{').next().unwrap();
        let (fam, kind) = current.as_ref().expect("sample before any # TYPE");
        let ok = match kind.as_str() {
            "histogram" => [
                format!("{fam}_bucket"),
                format!("{fam}_sum"),
                format!("{fam}_count"),
            ]
            .contains(&name.to_string()),
            _ => name == fam,
        };
        assert!(ok, "sample {name} under family {fam}");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
                assert!(labels.ends_with("\"}"), "{line}");
            }
        }
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        assert!(
            samples.insert(series.to_string(), v).is_none(),
            "{series} twice"
        );
    }
    samples
}

#[test]
fn escaping_follows_the_text_format() {
    let mut enc = Encoder::new();
    enc.family(
        "o11y_x_total",
        MetricType::Counter,
        "Help with \\ backslash\nand newline \"quotes\" kept.",
    );
    enc.sample_int(
        "o11y_x_total",
        &[("a", "back\\slash \"quoted\"\nline"), ("b", "é")],
        7,
    );
    let text = enc.finish();
    assert_eq!(
        text,
        "# HELP o11y_x_total Help with \\\\ backslash\\nand newline \"quotes\" kept.\n\
         # TYPE o11y_x_total counter\n\
         o11y_x_total{a=\"back\\\\slash \\\"quoted\\\"\\nline\",b=\"é\"} 7\n"
    );
}

#[test]
fn special_and_large_values() {
    let mut enc = Encoder::new();
    enc.family("g", MetricType::Gauge, "g");
    enc.sample("g", &[("k", "nan")], f64::NAN);
    enc.sample("g", &[("k", "inf")], f64::INFINITY);
    enc.sample("g", &[("k", "-inf")], f64::NEG_INFINITY);
    enc.sample("g", &[("k", "small")], 1.5e-7);
    enc.sample("g", &[("k", "int")], 3.0);
    enc.sample_int("g", &[("k", "u64")], u64::MAX);
    let text = enc.finish();
    let s = check_exposition(&text);
    assert!(s["g{k=\"nan\"}"].is_nan());
    assert_eq!(s["g{k=\"inf\"}"], f64::INFINITY);
    assert_eq!(s["g{k=\"-inf\"}"], f64::NEG_INFINITY);
    assert_eq!(s["g{k=\"small\"}"], 1.5e-7);
    assert!(text.contains("g{k=\"int\"} 3\n"), "{text}");
    assert!(
        text.contains(&format!("g{{k=\"u64\"}} {}\n", u64::MAX)),
        "{text}"
    );
}

#[test]
fn histogram_buckets_are_cumulative_and_le_inclusive() {
    static BOUNDS: &[f64] = &[0.1, 1.0, 2.5];
    let h = Histogram::new(BOUNDS);
    for v in [0.05, 0.1, 0.5, 1.0, 5.0, 7.0] {
        h.observe(v);
    }
    let (counts, sum) = h.snapshot();
    assert_eq!(counts, vec![2, 2, 0, 2]);
    assert!((sum - 13.65).abs() < 1e-9);
    let mut enc = Encoder::new();
    enc.family("lat_seconds", MetricType::Histogram, "Latency.");
    enc.histogram("lat_seconds", &[("h", "q")], BOUNDS, &counts, sum);
    let text = enc.finish();
    let want = "# HELP lat_seconds Latency.\n\
                # TYPE lat_seconds histogram\n\
                lat_seconds_bucket{h=\"q\",le=\"0.1\"} 2\n\
                lat_seconds_bucket{h=\"q\",le=\"1\"} 4\n\
                lat_seconds_bucket{h=\"q\",le=\"2.5\"} 4\n\
                lat_seconds_bucket{h=\"q\",le=\"+Inf\"} 6\n\
                lat_seconds_sum{h=\"q\"} 13.65\n\
                lat_seconds_count{h=\"q\"} 6\n";
    assert_eq!(text, want);
    check_exposition(&text);
}

#[test]
fn counters_add_up_across_threads() {
    let t = Arc::new(Telemetry::default());
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let t = t.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    t.samples_received(OTLP, 2);
                    t.samples_rejected(OTLP, if i % 2 == 0 { "too_old" } else { "other" }, 1);
                    t.observe_query("query", Duration::from_millis(3));
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    assert_eq!(t.samples_received_count(OTLP), 8000);
    assert_eq!(t.samples_rejected_count(OTLP, "too_old"), 2000);
    assert_eq!(t.samples_rejected_count(OTLP, "other"), 2000);
    assert_eq!(t.query_count("query"), 4000);
    // Zero rejections create no series.
    t.samples_rejected(OTLP, "duplicate_timestamp", 0);
    let s = check_exposition(&t.render());
    assert_eq!(s["o11y_samples_received_total{protocol=\"otlp\"}"], 8000.0);
    assert!(!s.contains_key(
        "o11y_samples_rejected_total{protocol=\"otlp\",reason=\"duplicate_timestamp\"}"
    ));
    assert_eq!(
        s["o11y_query_duration_seconds_bucket{endpoint=\"query\",le=\"0.005\"}"],
        4000.0
    );
    assert_eq!(
        s["o11y_query_duration_seconds_bucket{endpoint=\"query\",le=\"0.0025\"}"],
        0.0
    );
}

#[test]
fn rejection_reasons_cover_every_engine_reason() {
    let cases = [
        (
            RejectReason::InvalidLabels(LabelError::MissingMetricName),
            "invalid_labels",
        ),
        (
            RejectReason::InvalidLabels(LabelError::TooManyLabels {
                count: 70,
                limit: 64,
            }),
            "invalid_labels",
        ),
        (RejectReason::TooOld { t: 1, min_valid: 2 }, "too_old"),
        (
            RejectReason::TooFarInFuture { t: 5, max_valid: 2 },
            "too_far_in_future",
        ),
        (
            RejectReason::DuplicateTimestamp { t: 1 },
            "duplicate_timestamp",
        ),
    ];
    for (r, want) in cases {
        assert_eq!(rejection_reason(&r.to_string()), want, "{r}");
    }
    assert_eq!(rejection_reason("something new"), "other");
}

#[test]
fn process_metrics_are_read_from_proc() {
    let s = check_exposition(&Telemetry::default().render());
    if std::path::Path::new("/proc/self/stat").exists() {
        assert!(s["process_resident_memory_bytes"] > 0.0);
        assert!(s["process_open_fds"] >= 3.0);
        assert!(s["process_cpu_seconds_total"] >= 0.0);
        assert!(s["process_threads"] >= 1.0);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let start = s["process_start_time_seconds"];
    assert!(
        start <= now + 1.0 && start > now - 86_400.0,
        "{start} vs {now}"
    );
}

#[test]
fn disk_usage_counts_hard_links_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("log")).unwrap();
    std::fs::create_dir_all(dir.path().join("sm/snap")).unwrap();
    std::fs::write(dir.path().join("log/1.seg"), vec![7u8; 64 * 1024]).unwrap();
    std::fs::write(dir.path().join("sm/data"), vec![7u8; 32 * 1024]).unwrap();
    std::fs::hard_link(dir.path().join("sm/data"), dir.path().join("sm/snap/data")).unwrap();
    std::fs::write(dir.path().join("top"), b"x").unwrap();
    let u: HashMap<String, u64> = disk_usage(dir.path()).into_iter().collect();
    assert!(u["log"] >= 64 * 1024, "{u:?}");
    assert!(
        u["sm"] >= 32 * 1024 && u["sm"] < 64 * 1024,
        "hard link counted once: {u:?}"
    );
    assert!(u.contains_key("."), "{u:?}");
    assert!(disk_usage(&dir.path().join("missing")).is_empty());
}

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> SeriesSamples {
    SeriesSamples {
        labels: labels.iter().map(|(k, v)| Label::new(*k, *v)).collect(),
        samples: samples.iter().map(|&(t, v)| Sample { t, v }).collect(),
    }
}

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, String, String) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ct, String::from_utf8(body.to_vec()).unwrap())
}

/// Waits until `f` holds, polling, at most `limit`.
async fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}

/// remote_write and a query through the router of a real one-node Raft cluster, then
/// `/metrics` shows the counts, the Raft gauges and the engine's head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_a_write_and_a_query() {
    let dir = tempfile::tempdir().unwrap();
    let node = RaftNode::open(
        NodeConfig::new(1, "127.0.0.1:1", dir.path()),
        Transport::Grpc,
    )
    .await
    .unwrap();
    node.bootstrap().await.unwrap();
    node.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let state = AppState::for_node(node.clone(), Engine::default());
    let tm = state.telemetry.clone();
    let app = router(state);

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let batch = WriteBatch {
        series: vec![
            // Two samples written, one an hour ahead: too far in the future.
            series(
                &[("__name__", "up"), ("job", "a")],
                &[(now - 2000, 1.0), (now - 1000, 1.0), (now + 3_600_000, 1.0)],
            ),
            // No metric name: the whole series (two samples) is invalid.
            series(&[("job", "b")], &[(now - 2000, 1.0), (now - 1000, 1.0)]),
        ],
        received_ms: None,
    };
    let req = Request::post("/api/v1/write")
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(Body::from(crate::remote_write::encode_v1(&batch)))
        .unwrap();
    let (status, _, body) = call(&app, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.starts_with("2 samples written"), "{body}");

    let (status, _, body) = call(
        &app,
        Request::get("/api/v1/query?query=up")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = call(
        &app,
        Request::get("/no/such/route").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    assert!(
        wait_until(Duration::from_secs(10), || tm.leader_changes() >= 1).await,
        "the leader watcher saw the leader"
    );
    let (status, ct, text) =
        call(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct, CONTENT_TYPE);
    let s = check_exposition(&text);
    let v = |k: &str| *s.get(k).unwrap_or_else(|| panic!("{k} missing:\n{text}"));
    assert_eq!(
        v("o11y_samples_received_total{protocol=\"remote_write_v1\"}"),
        5.0
    );
    assert_eq!(
        v("o11y_samples_written_total{protocol=\"remote_write_v1\"}"),
        2.0
    );
    assert_eq!(
        v("o11y_samples_rejected_total{protocol=\"remote_write_v1\",reason=\"too_far_in_future\"}"),
        1.0
    );
    assert_eq!(
        v("o11y_samples_rejected_total{protocol=\"remote_write_v1\",reason=\"invalid_labels\"}"),
        2.0
    );
    assert_eq!(
        v("o11y_http_requests_total{handler=\"/api/v1/write\",code=\"400\"}"),
        1.0
    );
    assert_eq!(
        v("o11y_http_requests_total{handler=\"/api/v1/query\",code=\"200\"}"),
        1.0
    );
    assert_eq!(
        v("o11y_http_requests_total{handler=\"unmatched\",code=\"404\"}"),
        1.0
    );
    assert_eq!(
        v("o11y_http_request_duration_seconds_count{handler=\"/api/v1/query\"}"),
        1.0
    );
    assert_eq!(
        v("o11y_query_duration_seconds_count{endpoint=\"query\"}"),
        1.0
    );
    assert!(v("o11y_query_duration_seconds_sum{endpoint=\"query\"}") > 0.0);
    assert!(v("o11y_raft_term") >= 1.0);
    assert_eq!(v("o11y_raft_is_leader"), 1.0);
    assert_eq!(v("o11y_raft_role{role=\"leader\"}"), 1.0);
    assert_eq!(v("o11y_raft_role{role=\"follower\"}"), 0.0);
    assert_eq!(v("o11y_raft_voters"), 1.0);
    assert!(
        v("o11y_raft_applied_index") >= 2.0,
        "membership + one write"
    );
    assert_eq!(
        v("o11y_raft_apply_lag_entries"),
        v("o11y_raft_last_log_index") - v("o11y_raft_applied_index")
    );
    assert!(v("o11y_raft_leader_changes_total") >= 1.0);
    assert_eq!(v("o11y_tsdb_head_series{tenant=\"default\"}"), 1.0);
    assert!(v("o11y_disk_usage_bytes{dir=\"log\"}") > 0.0);
    assert!(s.contains_key("o11y_tsdb_storage_bytes"));
    assert_eq!(
        v(&format!(
            "o11y_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );

    node.shutdown().await.unwrap();
}

#[test]
fn write_outcomes_are_counted_by_reason() {
    use crate::app::WriteError;
    use o11y_raft::{CommandResult, ItemRejection};
    let t = Telemetry::default();
    let sizes = [3u64, 4, 5];
    let too_old = RejectReason::TooOld { t: 1, min_valid: 2 }.to_string();
    let invalid = RejectReason::InvalidLabels(LabelError::MissingMetricName).to_string();
    t.record_write(
        OTLP,
        &Ok(vec![CommandResult::Written {
            samples_accepted: 6,
            series_created: 2,
            rejections: vec![
                ItemRejection {
                    series: 0,
                    sample: Some(2),
                    reason: too_old,
                },
                ItemRejection {
                    series: 2,
                    sample: None,
                    reason: invalid,
                },
            ],
        }]),
        &sizes,
    );
    assert_eq!(t.samples_written_count(OTLP), 6);
    assert_eq!(t.samples_rejected_count(OTLP, "too_old"), 1);
    assert_eq!(t.samples_rejected_count(OTLP, "invalid_labels"), 5);
    t.record_write(
        OTLP,
        &Ok(vec![CommandResult::Refused {
            reason: "bad tenant".into(),
        }]),
        &sizes,
    );
    assert_eq!(t.samples_rejected_count(OTLP, "refused"), 12);
    for (retriable, reason) in [(true, "unavailable"), (false, "write_error")] {
        t.record_write(
            OTLP,
            &Err(WriteError {
                message: "x".into(),
                retriable,
            }),
            &sizes,
        );
        assert_eq!(t.samples_rejected_count(OTLP, reason), 12);
    }
    assert_eq!(t.samples_written_count(OTLP), 6);
}
