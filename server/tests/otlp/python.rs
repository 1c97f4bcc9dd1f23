//! The OpenTelemetry Python SDK's OTLP exporters (gRPC, and HTTP/protobuf with gzip) against a
//! running server: `tests/clients/otel_metrics.py` exports a counter, an up-down counter, a
//! gauge and a histogram; the translated series are then read back with PromQL.
//!
//! Needs `python3` with `opentelemetry-sdk`, `opentelemetry-exporter-otlp-proto-grpc` and
//! `opentelemetry-exporter-otlp-proto-http` (scripts/test-all.sh installs them). Without them
//! the test prints SKIP and passes, unless `O11Y_REQUIRE_CLIENTS=1`, when it fails.

use std::time::Duration;

use super::{one_value, query, started};

const MODULES: &str = "import opentelemetry.sdk.metrics, \
    opentelemetry.exporter.otlp.proto.grpc.metric_exporter, \
    opentelemetry.exporter.otlp.proto.http.metric_exporter";

/// True when the Python client can run; otherwise SKIP (or fail when clients are required).
fn python_client_available() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", MODULES])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        let msg = "python3 with opentelemetry-sdk and the OTLP exporters is not installed \
                   (python3 -m pip install opentelemetry-sdk \
                   opentelemetry-exporter-otlp-proto-grpc opentelemetry-exporter-otlp-proto-http)";
        if std::env::var("O11Y_REQUIRE_CLIENTS").as_deref() == Ok("1") {
            panic!("O11Y_REQUIRE_CLIENTS=1 but {msg}");
        }
        println!("SKIP otel_python_sdk_exporters: {msg}");
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_python_sdk_exporters() {
    if !python_client_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let running = started(dir.path()).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/otel_metrics.py");
    let child = tokio::process::Command::new("python3")
        .arg(script)
        .arg("--grpc")
        .arg(running.otlp_grpc_addr.to_string())
        .arg("--http")
        .arg(format!("http://{}/v1/metrics", running.otlp_http_addr))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), child)
        .await
        .expect("the Python client finished within 120 s")
        .unwrap();
    assert!(
        out.status.success(),
        "python client failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let addr = running.http_addr;
    tokio::task::spawn_blocking(move || {
        for inst in ["py-grpc", "py-http"] {
            let sel = format!(r#"job="demo/pyshop",instance="{inst}""#);
            let v = |q: &str| one_value(addr, q);
            // Monotonic counter: _total; the {order} annotation adds no unit suffix.
            assert_eq!(v(&format!(r#"orders_total{{{sel},region="eu"}}"#)), 5.0);
            // Up-down counter: a gauge without suffix.
            assert_eq!(v(&format!(r#"inflight{{{sel},region="eu"}}"#)), 2.0);
            // Gauge with a unit: the unit suffix.
            assert_eq!(v(&format!(r#"temperature_celsius{{{sel},room="lab"}}"#)), 21.5);
            // Histogram: classic buckets with the SDK's default bounds (0, 5, 10, 25, 50, …).
            let h = |suffix: &str, extra: &str| {
                v(&format!(
                    r#"latency_milliseconds_{suffix}{{{sel},route="/pay"{extra}}}"#
                ))
            };
            assert_eq!(h("bucket", r#",le="5""#), 0.0);
            assert_eq!(h("bucket", r#",le="10""#), 1.0);
            assert_eq!(h("bucket", r#",le="50""#), 2.0);
            assert_eq!(h("bucket", r#",le="250""#), 3.0);
            assert_eq!(h("bucket", r#",le="+Inf""#), 3.0);
            assert_eq!(h("count", ""), 3.0);
            assert_eq!(h("sum", ""), 157.0);
            // Resource attributes besides the identifying ones: target_info.
            assert_eq!(
                v(&format!(
                    r#"target_info{{{sel},deployment_environment="test",telemetry_sdk_language="python"}}"#
                )),
                1.0
            );
        }
        // Scope name and version are not labels (Prometheus's default).
        assert!(query(addr, r#"{otel_scope_name!=""}"#).is_empty());
    })
    .await
    .unwrap();
    running.shutdown().await.unwrap();
}
