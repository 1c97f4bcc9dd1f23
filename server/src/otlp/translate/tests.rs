//! Translation tests: every metric type, names, labels, target_info, job/instance, staleness,
//! rejected temporalities and types, and a property test over arbitrary requests.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValueList};
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point, metric, Exemplar, ExponentialHistogram,
    ExponentialHistogramDataPoint,
};

use super::*;
use super::{CUMULATIVE, DELTA};
use crate::otlp::tests::*;
use opentelemetry_proto::tonic::metrics::v1::NumberDataPoint;

const MS0: i64 = 1_700_000_000_000;

fn run(req: &ExportMetricsServiceRequest) -> Translation {
    translate(req, &Options::default())
}

fn job_instance(rest: &str) -> String {
    if rest.is_empty() {
        "instance=\"i-1\", job=\"shop/checkout\"".into()
    } else {
        format!("{rest}, instance=\"i-1\", job=\"shop/checkout\"")
    }
}

#[test]
fn gauge_with_job_instance_and_target_info() {
    let tr = run(&request(
        service(),
        vec![gauge(
            "room.temperature",
            "Cel",
            vec![num(T0 + 123_456_789, 21.5, vec![kv("room", "kitchen")])],
        )],
    ));
    let got = rendered(&tr);
    let want = [
        (
            "room_temperature_celsius{instance=\"i-1\", job=\"shop/checkout\", room=\"kitchen\"}"
                .to_string(),
            // ns to ms by integer division.
            vec![(MS0 + 123, 21.5)],
        ),
        (
            format!("target_info{{host_name=\"box\", {}}}", job_instance("")),
            vec![(MS0 + 123, 1.0)],
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);
    assert_eq!(tr.points, 1);
    assert!(tr.rejections.is_empty() && tr.warnings.is_empty());
    assert_eq!(tr.origins, vec![vec![Some(0)], vec![None]]);
}

#[test]
fn sums_counters_and_gauges() {
    let tr = run(&request(
        vec![kv("service.name", "api")],
        vec![
            sum(
                "http.server.requests",
                "{request}",
                true,
                CUMULATIVE,
                vec![num(T0, 7.0, vec![])],
            ),
            sum(
                "process.cpu.time",
                "s",
                true,
                CUMULATIVE,
                vec![num(T0, 1.5, vec![])],
            ),
            // Non-monotonic: a gauge, no _total, and no _ratio even for unit "1".
            sum(
                "queue.depth",
                "1",
                false,
                CUMULATIVE,
                vec![num(T0, -3.0, vec![])],
            ),
            gauge("cpu.utilization", "1", vec![num(T0, 0.25, vec![])]),
        ],
    ));
    let got = rendered(&tr);
    let keys: Vec<&str> = got.keys().map(|s| s.as_str()).collect();
    assert_eq!(
        keys,
        [
            "cpu_utilization_ratio{job=\"api\"}",
            "http_server_requests_total{job=\"api\"}",
            "process_cpu_time_seconds_total{job=\"api\"}",
            "queue_depth{job=\"api\"}",
        ]
    );
    assert_eq!(got["queue_depth{job=\"api\"}"], vec![(MS0, -3.0)]);
    // service.name alone: no target_info.
    assert!(!got.keys().any(|k| k.starts_with("target_info")));
}

#[test]
fn integer_values() {
    let mut p = num(T0, 0.0, vec![]);
    p.value = Some(number_data_point::Value::AsInt(-42));
    let mut none = num(T0 + 1_000_000, 0.0, vec![kv("k", "v")]);
    none.value = None;
    let tr = run(&request(vec![], vec![gauge("g", "", vec![p, none])]));
    let got = rendered(&tr);
    assert_eq!(got["g{}"], vec![(MS0, -42.0)]);
    assert_eq!(got["g{k=\"v\"}"], vec![(MS0 + 1, 0.0)]);
}

#[test]
fn histogram_to_classic_buckets() {
    let tr = run(&request(
        service(),
        vec![histogram(
            "http.server.request.duration",
            "s",
            CUMULATIVE,
            vec![hpoint(T0, Some(12.5), &[0.005, 1.0, 10.0], &[1, 2, 3, 4])],
        )],
    ));
    let got = rendered(&tr);
    let n = "http_server_request_duration_seconds";
    // Labels render sorted: instance, job, le.
    let b =
        |le: &str| format!("{n}_bucket{{instance=\"i-1\", job=\"shop/checkout\", le=\"{le}\"}}");
    assert_eq!(got[&b("0.005")], vec![(MS0, 1.0)]);
    assert_eq!(got[&b("1")], vec![(MS0, 3.0)]);
    assert_eq!(got[&b("10")], vec![(MS0, 6.0)]);
    assert_eq!(got[&b("+Inf")], vec![(MS0, 10.0)]);
    assert_eq!(
        got[&format!("{n}_count{{{}}}", job_instance(""))],
        vec![(MS0, 10.0)]
    );
    assert_eq!(
        got[&format!("{n}_sum{{{}}}", job_instance(""))],
        vec![(MS0, 12.5)]
    );
    // 4 buckets + count + sum + target_info.
    assert_eq!(got.len(), 7);
    // Every sample of the histogram comes from point 0.
    for (s, o) in tr.batch.series.iter().zip(&tr.origins) {
        let is_target = s.labels.iter().any(|l| l.value == "target_info");
        assert_eq!(o, &vec![if is_target { None } else { Some(0) }]);
    }
}

#[test]
fn histogram_without_sum_and_with_mismatched_buckets() {
    // No sum: no _sum series. Fewer counts than bounds + 1: only paired bounds are written.
    let mut p = hpoint(T0, None, &[1.0, 2.0, 3.0], &[5]);
    p.count = 9;
    let tr = run(&request(
        vec![],
        vec![histogram("h", "", CUMULATIVE, vec![p])],
    ));
    let got = rendered(&tr);
    let keys: Vec<&str> = got.keys().map(|s| s.as_str()).collect();
    assert_eq!(
        keys,
        ["h_bucket{le=\"+Inf\"}", "h_bucket{le=\"1\"}", "h_count{}"]
    );
    assert_eq!(got["h_bucket{le=\"+Inf\"}"], vec![(MS0, 9.0)]);
}

#[test]
fn summary_to_quantiles() {
    let tr = run(&request(
        vec![],
        vec![summary(
            "rpc.latency",
            T0,
            100,
            55.5,
            &[(0.5, 0.2), (0.99, 1.7), (1.0, 3.0)],
        )],
    ));
    let got = rendered(&tr);
    assert_eq!(got["rpc_latency{quantile=\"0.5\"}"], vec![(MS0, 0.2)]);
    assert_eq!(got["rpc_latency{quantile=\"0.99\"}"], vec![(MS0, 1.7)]);
    assert_eq!(got["rpc_latency{quantile=\"1\"}"], vec![(MS0, 3.0)]);
    assert_eq!(got["rpc_latency_count{}"], vec![(MS0, 100.0)]);
    assert_eq!(got["rpc_latency_sum{}"], vec![(MS0, 55.5)]);
}

#[test]
fn delta_and_unspecified_temporality_are_rejected_per_point() {
    let tr = run(&request(
        service(),
        vec![
            gauge("ok", "", vec![num(T0, 1.0, vec![])]),
            sum(
                "delta.sum",
                "",
                true,
                DELTA,
                vec![num(T0, 1.0, vec![]), num(T0, 2.0, vec![kv("a", "b")])],
            ),
            histogram("delta.hist", "", DELTA, vec![hpoint(T0, None, &[], &[1])]),
            sum("unspecified", "", false, 0, vec![num(T0, 1.0, vec![])]),
        ],
    ));
    let points: Vec<u32> = tr.rejections.iter().map(|r| r.point).collect();
    assert_eq!(points, [1, 2, 3, 4]);
    assert_eq!(
        tr.rejections[0].reason,
        "metric \"delta.sum\" point 0: aggregation temporality DELTA is not supported, only \
         CUMULATIVE (convert deltas to cumulative before sending, e.g. with the collector's \
         deltatocumulative processor)"
    );
    assert!(tr.rejections[1]
        .reason
        .starts_with("metric \"delta.sum\" point 1:"));
    assert!(tr.rejections[3].reason.contains("UNSPECIFIED"));
    let got = rendered(&tr);
    assert_eq!(got.len(), 2, "{got:?}"); // ok + target_info
    assert_eq!(tr.points, 5);
}

#[test]
fn exponential_histograms_are_rejected_per_point() {
    let p = ExponentialHistogramDataPoint {
        attributes: vec![],
        start_time_unix_nano: 0,
        time_unix_nano: T0,
        count: 1,
        sum: Some(1.0),
        scale: 0,
        zero_count: 0,
        positive: Some(exponential_histogram_data_point::Buckets {
            offset: 0,
            bucket_counts: vec![1],
        }),
        negative: None,
        flags: 0,
        exemplars: vec![],
        min: None,
        max: None,
        zero_threshold: 0.0,
    };
    let m = Metric {
        name: "latency".into(),
        description: String::new(),
        unit: "ms".into(),
        metadata: vec![],
        data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![p.clone(), p],
            aggregation_temporality: CUMULATIVE,
        })),
    };
    let tr = run(&request(service(), vec![m]));
    assert_eq!(tr.rejections.len(), 2);
    assert!(tr.rejections[0]
        .reason
        .contains("exponential histograms are not supported"));
    // Prometheus still writes target_info for the resource (its timestamps count).
    assert_eq!(rendered(&tr).len(), 1);
}

#[test]
fn no_recorded_value_is_the_stale_marker() {
    let mut g = num(T0, 5.0, vec![]);
    g.flags = 1;
    let mut h = hpoint(T0, Some(3.0), &[1.0], &[1, 1]);
    h.flags = 1;
    let tr = run(&request(
        vec![],
        vec![
            gauge("g", "", vec![g]),
            histogram("h", "", CUMULATIVE, vec![h]),
            sum("c", "", true, CUMULATIVE, vec![num(T0, 1.0, vec![])]),
        ],
    ));
    for s in &tr.batch.series {
        let name = &s
            .labels
            .iter()
            .find(|l| l.name == "__name__")
            .unwrap()
            .value;
        let bits = s.samples[0].v.to_bits();
        if name == "c_total" {
            assert_eq!(s.samples[0].v, 1.0);
        } else {
            assert_eq!(bits, STALE_NAN_BITS, "{name}");
        }
    }
    assert_eq!(tr.batch.series.len(), 6); // g, h: le=1, +Inf, count, sum; c_total
}

#[test]
fn label_sanitizing_and_collisions() {
    let tr = run(&request(
        vec![],
        vec![gauge(
            "g",
            "",
            vec![num(
                T0,
                1.0,
                vec![
                    kv("a_b", "second"),
                    kv("a.b", "first"),
                    kv("0day", "x"),
                    kv("_private", "y"),
                    kv("__meta__", "z"),
                    kv("le", "ignored-by-gauge-but-kept"),
                ],
            )],
        )],
    ));
    let got = rendered(&tr);
    let keys: Vec<&str> = got.keys().map(|s| s.as_str()).collect();
    // "a.b" sorts before "a_b": its value comes first.
    assert_eq!(
        keys,
        ["g{__meta__=\"z\", a_b=\"first;second\", key_0day=\"x\", key_private=\"y\", le=\"ignored-by-gauge-but-kept\"}"]
    );
}

#[test]
fn reserved_labels_are_overridden() {
    // A point attribute named job loses to service.name; __name__ loses to the metric name;
    // le on a histogram point loses to the bucket bound.
    let mut h = hpoint(T0, None, &[], &[2]);
    h.attributes = vec![kv("le", "attr"), kv("__name__", "attr")];
    let tr = run(&request(
        vec![kv("service.name", "svc")],
        vec![
            gauge(
                "g",
                "",
                vec![num(T0, 1.0, vec![kv("job", "mine"), kv("__name__", "x")])],
            ),
            histogram("h", "", CUMULATIVE, vec![h]),
        ],
    ));
    let got = rendered(&tr);
    let keys: Vec<&str> = got.keys().map(|s| s.as_str()).collect();
    assert_eq!(
        keys,
        [
            "g{job=\"svc\"}",
            "h_bucket{job=\"svc\", le=\"+Inf\"}",
            "h_count{job=\"svc\", le=\"attr\"}",
        ]
    );
}

#[test]
fn job_without_namespace_and_instance_without_job() {
    let tr = run(&request(
        vec![kv("service.instance.id", "host:9100"), kv("region", "eu")],
        vec![gauge("g", "", vec![num(T0, 1.0, vec![])])],
    ));
    let keys: Vec<String> = rendered(&tr).into_keys().collect();
    assert_eq!(
        keys,
        [
            "g{instance=\"host:9100\"}",
            "target_info{instance=\"host:9100\", region=\"eu\"}"
        ]
    );
    // Neither job nor instance: no target_info even with attributes.
    let tr = run(&request(
        vec![kv("region", "eu")],
        vec![gauge("g", "", vec![num(T0, 1.0, vec![])])],
    ));
    let keys: Vec<String> = rendered(&tr).into_keys().collect();
    assert_eq!(keys, ["g{}"]);
}

#[test]
fn scope_is_not_a_label_by_default() {
    let tr = run(&request(
        service(),
        vec![gauge("g", "", vec![num(T0, 1.0, vec![])])],
    ));
    for s in &tr.batch.series {
        assert!(!s.labels.iter().any(|l| l.name.starts_with("otel_scope")));
    }
}

#[test]
fn target_info_spans_the_resource_points() {
    let min = 60_000_000_000u64;
    let tr = run(&request(
        service(),
        vec![
            gauge("a", "", vec![num(T0 + 6 * min, 1.0, vec![])]),
            gauge("b", "", vec![num(T0, 1.0, vec![])]),
        ],
    ));
    let got = rendered(&tr);
    let ti = &got[&format!("target_info{{host_name=\"box\", {}}}", job_instance(""))];
    let m = 60_000;
    assert_eq!(
        ti,
        &vec![
            (MS0, 1.0),
            (MS0 + 5 * m / 2, 1.0),
            (MS0 + 5 * m, 1.0),
            (MS0 + 6 * m, 1.0)
        ]
    );
    // The interval follows the lookback delta.
    let tr = translate(
        &request(
            service(),
            vec![
                gauge("a", "", vec![num(T0 + 2 * min, 1.0, vec![])]),
                gauge("b", "", vec![num(T0, 1.0, vec![])]),
            ],
        ),
        &Options {
            lookback_delta_ms: 120_000,
        },
    );
    let got = rendered(&tr);
    let ti = &got[&format!("target_info{{host_name=\"box\", {}}}", job_instance(""))];
    assert_eq!(ti, &vec![(MS0, 1.0), (MS0 + m, 1.0), (MS0 + 2 * m, 1.0)]);
}

#[test]
fn target_info_is_bounded() {
    let tr = run(&request(
        service(),
        vec![
            gauge("a", "", vec![num(0, 1.0, vec![])]),
            gauge("b", "", vec![num(u64::MAX, 1.0, vec![])]),
        ],
    ));
    let ti = tr
        .batch
        .series
        .iter()
        .find(|s| s.labels.iter().any(|l| l.value == "target_info"))
        .unwrap();
    assert!(
        ti.samples.len() <= MAX_TARGET_INFO_SAMPLES,
        "{}",
        ti.samples.len()
    );
    assert!(tr
        .warnings
        .iter()
        .any(|w| w.contains("target_info written for the last")));
}

#[test]
fn attribute_values_are_spelled_like_pdata() {
    use any_value::Value::*;
    let arr = opentelemetry_proto::tonic::common::v1::ArrayValue {
        values: vec![
            AnyValue {
                value: Some(IntValue(1)),
            },
            AnyValue {
                value: Some(StringValue("x".into())),
            },
            AnyValue {
                value: Some(DoubleValue(2.5)),
            },
            AnyValue { value: None },
        ],
    };
    let map = KeyValueList {
        values: vec![kv("z", "last"), any("a", BoolValue(true))],
    };
    let tr = run(&request(
        vec![],
        vec![gauge(
            "g",
            "",
            vec![num(
                T0,
                1.0,
                vec![
                    any("int", IntValue(-7)),
                    any("dbl", DoubleValue(0.1)),
                    any("big", DoubleValue(1e21)),
                    any("tiny", DoubleValue(1e-7)),
                    any("whole", DoubleValue(3.0)),
                    any("bool", BoolValue(false)),
                    any("bytes", BytesValue(b"hi".to_vec())),
                    any("arr", ArrayValue(arr)),
                    any("map", KvlistValue(map)),
                    any("nan", DoubleValue(f64::NAN)),
                ],
            )],
        )],
    ));
    let s = &tr.batch.series[0];
    let get = |k: &str| s.labels.iter().find(|l| l.name == k).unwrap().value.clone();
    assert_eq!(get("int"), "-7");
    assert_eq!(get("dbl"), "0.1");
    assert_eq!(get("big"), "1e+21");
    assert_eq!(get("tiny"), "1e-7");
    assert_eq!(get("whole"), "3");
    assert_eq!(get("bool"), "false");
    assert_eq!(get("bytes"), "aGk=");
    assert_eq!(get("arr"), "[1,\"x\",2.5,null]");
    assert_eq!(get("map"), "{\"a\":true,\"z\":\"last\"}");
    assert_eq!(get("nan"), "json: unsupported value: NaN");
}

#[test]
fn float_label_values() {
    assert_eq!(format_float(0.005), "0.005");
    assert_eq!(format_float(1.0), "1");
    assert_eq!(format_float(1e-10), "0.0000000001");
    assert_eq!(format_float(2.5e20), "250000000000000000000");
    assert_eq!(format_float(f64::INFINITY), "+Inf");
    assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
    assert_eq!(format_float(f64::NAN), "NaN");
    assert_eq!(format_float(-0.5), "-0.5");
}

#[test]
fn warnings_and_bad_names() {
    let mut no_data = gauge("x", "", vec![]);
    no_data.data = None;
    let tr = run(&request(
        vec![],
        vec![
            gauge("empty", "", vec![]),
            no_data,
            gauge("...", "", vec![num(T0, 1.0, vec![])]),
            gauge("g", "", vec![num(T0, 1.0, vec![kv("", "v")])]),
            gauge("g", "", vec![num(T0, 1.0, vec![kv("..", "v")])]),
        ],
    ));
    assert_eq!(
        tr.warnings,
        [
            "metric \"empty\": empty data points, the metric is dropped",
            "metric \"x\" has no data and is dropped"
        ]
    );
    let reasons: Vec<&str> = tr.rejections.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "metric \"...\" point 0: metric name \"...\" normalizes to an empty name",
            "metric \"g\" point 0: attribute key \"\" normalizes to an empty label name",
            "metric \"g\" point 0: attribute key \"..\" normalizes to the invalid label name \"__\"",
        ]
    );
    assert!(tr.batch.series.is_empty());
    assert_eq!(tr.points, 3);
}

#[test]
fn equal_label_sets_share_a_series_and_exemplars_are_counted() {
    let mut p = num(T0 + 1_000_000, 2.0, vec![]);
    p.exemplars = vec![Exemplar::default(), Exemplar::default()];
    let tr = run(&request(
        vec![],
        vec![
            gauge("g", "", vec![num(T0, 1.0, vec![])]),
            gauge("g", "", vec![p]),
        ],
    ));
    assert_eq!(tr.batch.series.len(), 1);
    assert_eq!(tr.batch.series[0].samples.len(), 2);
    assert_eq!(tr.origins, vec![vec![Some(0), Some(1)]]);
    assert_eq!(tr.exemplars_dropped, 2);
}

#[test]
fn points_are_numbered_across_resources() {
    let mut req = request(service(), vec![gauge("a", "", vec![num(T0, 1.0, vec![])])]);
    let other = request(
        vec![kv("service.name", "other")],
        vec![sum("b", "", true, DELTA, vec![num(T0, 1.0, vec![])])],
    );
    req.resource_metrics.extend(other.resource_metrics);
    let tr = run(&req);
    assert_eq!(tr.points, 2);
    assert_eq!(tr.rejections[0].point, 1);
}

mod props {
    use proptest::prelude::{
        any as arb, prop, prop_assert, prop_assert_eq, prop_oneof, proptest, Just, ProptestConfig,
        Strategy,
    };

    use super::*;

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z][a-z.]{0,12}",
            "\\PC{0,10}",
            Just(String::new()),
            Just("_".to_string())
        ]
    }

    fn unit() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("1".to_string()),
            Just("s".to_string()),
            Just("By/s".to_string()),
            Just("{req}".to_string()),
            "\\PC{0,6}"
        ]
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            arb::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(0.0),
            Just(-0.0)
        ]
    }

    fn point() -> impl Strategy<Value = NumberDataPoint> {
        (
            arb::<u64>(),
            value(),
            prop::collection::vec((name(), name()), 0..3),
            0u32..3,
        )
            .prop_map(|(t, v, attrs, flags)| {
                let mut p = num(t, v, attrs.iter().map(|(k, v)| kv(k, v)).collect());
                p.flags = flags;
                p
            })
    }

    fn any_metric() -> impl Strategy<Value = Metric> {
        (
            name(),
            unit(),
            0u8..5,
            0i32..4,
            prop::collection::vec(point(), 0..4),
            prop::collection::vec(value(), 0..4),
        )
            .prop_map(|(n, u, kind, temporality, points, bounds)| match kind {
                0 => gauge(&n, &u, points),
                1 => sum(&n, &u, true, temporality, points),
                2 => sum(&n, &u, false, temporality, points),
                3 => histogram(
                    &n,
                    &u,
                    temporality,
                    points
                        .iter()
                        .map(|p| {
                            let counts: Vec<u64> = (0..=bounds.len())
                                .map(|i| i as u64 + p.flags as u64)
                                .collect();
                            let mut h = hpoint(p.time_unix_nano, Some(1.0), &bounds, &counts);
                            h.attributes = p.attributes.clone();
                            h.flags = p.flags;
                            h
                        })
                        .collect(),
                ),
                _ => summary(
                    &n,
                    points.first().map_or(0, |p| p.time_unix_nano),
                    3,
                    1.0,
                    &[(0.5, 1.0)],
                ),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Any request translates without panicking; every point is either rejected or has
        /// produced samples; every series carries a metric name; origins mirror samples.
        #[test]
        fn translation_accounts_for_every_point(
            res in prop::collection::vec((name(), name()), 0..4),
            metrics in prop::collection::vec(any_metric(), 0..5),
        ) {
            let req = request(res.iter().map(|(k, v)| kv(k, v)).collect(), metrics);
            let tr = run(&req);
            let mut produced = std::collections::BTreeSet::new();
            prop_assert_eq!(tr.origins.len(), tr.batch.series.len());
            for (s, o) in tr.batch.series.iter().zip(&tr.origins) {
                prop_assert_eq!(s.samples.len(), o.len());
                prop_assert!(s.labels.iter().any(|l| l.name == "__name__" && !l.value.is_empty()));
                for l in &s.labels {
                    prop_assert!(o11y_tsdb::labels::is_valid_legacy_label_name(&l.name), "{:?}", l.name);
                }
                produced.extend(o.iter().flatten().copied());
            }
            let rejected: std::collections::BTreeSet<u32> =
                tr.rejections.iter().map(|r| r.point).collect();
            prop_assert!(produced.is_disjoint(&rejected));
            prop_assert_eq!(rejected.len(), tr.rejections.len());
            for p in produced.iter().chain(&rejected) {
                prop_assert!(u64::from(*p) < tr.points);
            }
        }
    }
}
