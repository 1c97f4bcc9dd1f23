//! Builders of OTLP requests shared by the otlp tests, and tests of [`super::write`]'s
//! accounting over a real single-node Raft write path.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use o11y_query::promql::Engine;
use o11y_raft::{NodeConfig, RaftNode, Transport};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, summary_data_point, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::*;
use crate::app::AppState;

pub const CUMULATIVE: i32 = 2;
pub const DELTA: i32 = 1;
/// 2023-11-14T22:13:20Z in nanoseconds.
pub const T0: u64 = 1_700_000_000_000_000_000;

pub fn kv(k: &str, v: &str) -> KeyValue {
    any(k, any_value::Value::StringValue(v.into()))
}

pub fn any(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        key_strindex: 0,
    }
}

pub fn request(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource,
                dropped_attributes_count: 0,
                entity_refs: vec![],
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "test.scope".into(),
                    version: "1.2.3".into(),
                    attributes: vec![],
                    dropped_attributes_count: 0,
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// The resource most tests use: job "shop/checkout", instance "i-1", one other attribute.
pub fn service() -> Vec<KeyValue> {
    vec![
        kv("service.name", "checkout"),
        kv("service.namespace", "shop"),
        kv("service.instance.id", "i-1"),
        kv("host.name", "box"),
    ]
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

pub fn num(t: u64, v: f64, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: 0,
        time_unix_nano: t,
        exemplars: vec![],
        flags: 0,
        value: Some(number_data_point::Value::AsDouble(v)),
    }
}

pub fn gauge(name: &str, unit: &str, points: Vec<NumberDataPoint>) -> Metric {
    metric(
        name,
        unit,
        metric::Data::Gauge(Gauge {
            data_points: points,
        }),
    )
}

pub fn sum(
    name: &str,
    unit: &str,
    monotonic: bool,
    temporality: i32,
    points: Vec<NumberDataPoint>,
) -> Metric {
    metric(
        name,
        unit,
        metric::Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: temporality,
            is_monotonic: monotonic,
        }),
    )
}

pub fn hpoint(t: u64, sum: Option<f64>, bounds: &[f64], counts: &[u64]) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes: vec![],
        start_time_unix_nano: 0,
        time_unix_nano: t,
        count: counts.iter().sum(),
        sum,
        bucket_counts: counts.to_vec(),
        explicit_bounds: bounds.to_vec(),
        exemplars: vec![],
        flags: 0,
        min: None,
        max: None,
    }
}

pub fn histogram(
    name: &str,
    unit: &str,
    temporality: i32,
    points: Vec<HistogramDataPoint>,
) -> Metric {
    metric(
        name,
        unit,
        metric::Data::Histogram(Histogram {
            data_points: points,
            aggregation_temporality: temporality,
        }),
    )
}

pub fn summary(name: &str, t: u64, count: u64, total: f64, quantiles: &[(f64, f64)]) -> Metric {
    metric(
        name,
        "",
        metric::Data::Summary(Summary {
            data_points: vec![SummaryDataPoint {
                attributes: vec![],
                start_time_unix_nano: 0,
                time_unix_nano: t,
                count,
                sum: total,
                quantile_values: quantiles
                    .iter()
                    .map(|&(quantile, value)| summary_data_point::ValueAtQuantile {
                        quantile,
                        value,
                    })
                    .collect(),
                flags: 0,
            }],
        }),
    )
}

/// The batch as `name{a="b", …}` ─► samples (value bits kept via `f64::to_bits` where it
/// matters to the caller).
pub fn rendered(tr: &Translation) -> BTreeMap<String, Vec<(i64, f64)>> {
    tr.batch
        .series
        .iter()
        .map(|s| {
            let mut labels = s.labels.clone();
            labels.sort();
            let name = labels
                .iter()
                .find(|l| l.name == "__name__")
                .map(|l| l.value.clone())
                .unwrap_or_default();
            let rest: Vec<String> = labels
                .iter()
                .filter(|l| l.name != "__name__")
                .map(|l| format!("{}={:?}", l.name, l.value))
                .collect();
            (
                format!("{name}{{{}}}", rest.join(", ")),
                s.samples.iter().map(|x| (x.t, x.v)).collect(),
            )
        })
        .collect()
}

/// A bootstrapped single-node Raft node and the state over it (the real write path).
pub async fn node_state() -> (tempfile::TempDir, Arc<RaftNode>, AppState) {
    let dir = tempfile::tempdir().unwrap();
    let node = RaftNode::open(
        NodeConfig::new(1, "127.0.0.1:1", dir.path()),
        Transport::Grpc,
    )
    .await
    .unwrap();
    node.bootstrap().await.unwrap();
    node.wait_for_leader(Duration::from_secs(20)).await.unwrap();
    let state = AppState::for_node(node.clone(), Engine::default());
    (dir, node, state)
}

/// Samples of the series whose labels are exactly `labels` (plus `__name__`), read from the
/// node's engine.
pub fn stored(node: &RaftNode, name: &str, labels: &[(&str, &str)]) -> Vec<(i64, f64)> {
    use o11y_tsdb::matcher::{MatchOp, Matcher};
    let db = node.db();
    let m = [Matcher::new(MatchOp::Equal, "__name__", name).unwrap()];
    let series = db
        .select(o11y_tsdb::DEFAULT_TENANT, &m, i64::MIN, i64::MAX)
        .unwrap();
    for s in series {
        let got: Vec<(String, String)> = s
            .labels()
            .iter()
            .filter(|l| l.name != "__name__")
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        let mut want: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        want.sort();
        if got == want {
            return s.samples().unwrap().into_iter().collect();
        }
    }
    Vec::new()
}

#[tokio::test]
async fn ingest_writes_and_counts_engine_rejections_per_point() {
    let (_dir, node, state) = node_state().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let req = request(
        service(),
        vec![
            gauge("temp", "Cel", vec![num(now, 21.5, vec![kv("room", "a")])]),
            // Far in the future: the engine rejects this point.
            gauge(
                "temp",
                "Cel",
                vec![num(now + 3_600_000_000_000, 1.0, vec![kv("room", "b")])],
            ),
            sum("sent", "By", true, DELTA, vec![num(now, 1.0, vec![])]),
        ],
    );
    let out = ingest(&state, req).await.unwrap();
    assert_eq!(out.points, 3);
    // One delta point (translation) + one future point (engine).
    assert_eq!(out.rejected_points, 2, "{}", out.message);
    assert!(
        out.message.contains("aggregation temporality DELTA"),
        "{}",
        out.message
    );
    assert!(out.message.contains("temp_celsius{"), "{}", out.message);
    let resp = out.response();
    let ps = resp.partial_success.unwrap();
    assert_eq!(ps.rejected_data_points, 2);
    assert_eq!(ps.error_message, out.message);
    let ms = (now / 1_000_000) as i64;
    assert_eq!(
        stored(
            &node,
            "temp_celsius",
            &[("job", "shop/checkout"), ("instance", "i-1"), ("room", "a")]
        ),
        vec![(ms, 21.5)]
    );
    // target_info spans every point of the resource, the rejected future one included, every
    // 2.5 minutes; the engine keeps the samples within its future grace (10 minutes).
    let ti = stored(
        &node,
        "target_info",
        &[
            ("job", "shop/checkout"),
            ("instance", "i-1"),
            ("host_name", "box"),
        ],
    );
    assert_eq!(ti[0], (ms, 1.0));
    assert!(ti.len() >= 4, "{ti:?}");
    for (i, (t, v)) in ti.iter().enumerate() {
        assert_eq!((*t, *v), (ms + i as i64 * 150_000, 1.0));
    }
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn fully_accepted_request_has_no_partial_success() {
    let (_dir, node, state) = node_state().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let out = ingest(
        &state,
        request(
            vec![kv("service.name", "svc")],
            vec![gauge("g", "", vec![num(now, 1.0, vec![])])],
        ),
    )
    .await
    .unwrap();
    assert_eq!(out.rejected_points, 0);
    assert_eq!(out.samples_written, 1);
    assert!(out.response().partial_success.is_none());
    // Only service.name: no target_info.
    assert!(stored(&node, "target_info", &[("job", "svc")]).is_empty());
    assert_eq!(stored(&node, "g", &[("job", "svc")]).len(), 1);
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn read_only_state_is_an_internal_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(o11y_tsdb::Db::open(dir.path(), Default::default()).unwrap());
    let state = AppState::new(Arc::new(move || db.clone()), Arc::new(Engine::default()));
    let err = ingest(
        &state,
        request(service(), vec![gauge("g", "", vec![num(T0, 1.0, vec![])])]),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, IngestError::Internal(ref m) if m.contains("read-only")),
        "{err:?}"
    );
}
