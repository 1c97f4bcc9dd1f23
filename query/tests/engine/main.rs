//! Engine tests over a real tsdb: limits, and that a range query agrees with instant queries
//! at each of its steps (the property Prometheus's own test runner checks).

use std::time::Duration;

use o11y_query::promql::engine::TenantStorage;
use o11y_query::promql::value::Value;
use o11y_query::promql::{Engine, EngineOptions, QueryError};
use o11y_tsdb::labels::Label;
use o11y_tsdb::{Db, Options, Sample, SeriesSamples, WriteBatch, DEFAULT_TENANT, STALE_NAN_BITS};

struct Fixture {
    _dir: tempfile::TempDir,
    db: Db,
}

/// Counters, gauges and a histogram over 30 minutes at 15 s, half of it flushed into a block.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            retention_ms: None,
            ..Options::default()
        },
    )
    .unwrap();
    let mut series = Vec::new();
    let mut add = |labels: &[(&str, &str)], f: &dyn Fn(i64) -> Option<f64>| {
        series.push(SeriesSamples {
            labels: labels.iter().map(|(n, v)| Label::new(*n, *v)).collect(),
            samples: (0..120)
                .filter_map(|i| f(i).map(|v| Sample { t: i * 15_000, v }))
                .collect(),
        });
    };
    for inst in ["a", "b", "c"] {
        let k = inst.as_bytes()[0] as i64 - 96;
        add(
            &[
                ("__name__", "req_total"),
                ("instance", inst),
                ("job", "api"),
            ],
            &move |i| Some(((i * k) % 50 + i * 3) as f64),
        );
        add(
            &[
                ("__name__", "temp_celsius"),
                ("instance", inst),
                ("job", "api"),
            ],
            &move |i| Some(20.0 + ((i + k) as f64 / 7.0).sin() * 5.0),
        );
        for le in ["0.1", "0.5", "1", "+Inf"] {
            let w: f64 = if le == "+Inf" {
                10.0
            } else {
                le.parse::<f64>().unwrap() * 8.0
            };
            add(
                &[("__name__", "lat_bucket"), ("instance", inst), ("le", le)],
                &move |i| Some((i as f64 * w * k as f64).floor()),
            );
        }
    }
    add(&[("__name__", "flappy"), ("job", "x")], &|i| {
        if (40..60).contains(&i) {
            None
        } else if i == 60 {
            Some(f64::from_bits(STALE_NAN_BITS))
        } else {
            Some(i as f64)
        }
    });
    let (first, second): (Vec<_>, Vec<_>) = series
        .into_iter()
        .map(|s| {
            let (a, b): (Vec<Sample>, Vec<Sample>) = s.samples.iter().partition(|x| x.t < 900_000);
            (
                SeriesSamples {
                    labels: s.labels.clone(),
                    samples: a,
                },
                SeriesSamples {
                    labels: s.labels,
                    samples: b,
                },
            )
        })
        .unzip();
    db.apply(
        DEFAULT_TENANT,
        &WriteBatch {
            series: first,
            received_ms: None,
        },
        1,
    )
    .unwrap();
    db.flush_head().unwrap();
    db.apply(
        DEFAULT_TENANT,
        &WriteBatch {
            series: second,
            received_ms: None,
        },
        2,
    )
    .unwrap();
    Fixture { _dir: dir, db }
}

const EXPRS: &[&str] = &[
    "req_total",
    "rate(req_total[2m])",
    "sum by (job) (rate(req_total[5m]))",
    "histogram_quantile(0.9, sum by (le) (rate(lat_bucket[5m])))",
    "topk(2, temp_celsius)",
    "temp_celsius > 21",
    "req_total / on(instance) group_left temp_celsius",
    "avg_over_time(temp_celsius[3m:30s])",
    "flappy",
    "absent(flappy)",
    "req_total @ 600 - req_total offset 1m",
    "max_over_time(deriv(temp_celsius[2m])[4m:1m])",
    "time() - timestamp(flappy)",
    "count(req_total) or vector(0)",
];

fn bits(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

#[test]
fn range_query_agrees_with_instant_queries_at_each_step() {
    let f = fixture();
    let st = TenantStorage {
        db: &f.db,
        tenant: DEFAULT_TENANT,
    };
    let engine = Engine::default();
    let (start, end, step) = (0, 1_800_000, 45_000);
    for q in EXPRS {
        let r = engine
            .range_query(&st, q, start, end, step)
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        let Value::Matrix(m) = r.value else {
            panic!("{q}: not a matrix")
        };
        assert!(!m.is_empty(), "{q}: empty range result");
        let mut t = start;
        while t <= end {
            let inst = engine
                .instant_query(&st, q, t)
                .unwrap_or_else(|e| panic!("{q} @ {t}: {e}"));
            let mut got: Vec<(String, u64)> = match inst.value {
                Value::Vector(v) => v
                    .into_iter()
                    .map(|s| (s.metric.to_string(), bits(s.f)))
                    .collect(),
                Value::Scalar { v, .. } => vec![("{}".into(), bits(v))],
                other => panic!("{q}: unexpected {other:?}"),
            };
            let mut want: Vec<(String, u64)> = m
                .iter()
                .filter_map(|s| {
                    s.floats
                        .iter()
                        .find(|p| p.t == t)
                        .map(|p| (s.metric.to_string(), bits(p.f)))
                })
                .collect();
            got.sort();
            want.sort();
            assert_eq!(got, want, "{q} at {t}");
            t += step;
        }
    }
}

#[test]
fn limits_are_clear_errors() {
    let f = fixture();
    let st = TenantStorage {
        db: &f.db,
        tenant: DEFAULT_TENANT,
    };
    let small = Engine::new(EngineOptions {
        max_samples: 10,
        ..EngineOptions::default()
    });
    assert!(matches!(
        small.instant_query(&st, "rate(req_total[10m])", 900_000),
        Err(QueryError::TooManySamples(_))
    ));
    let points = Engine::new(EngineOptions {
        max_points_per_series: 100,
        ..EngineOptions::default()
    });
    let e = points
        .range_query(&st, "req_total", 0, 1_800_000, 1000)
        .unwrap_err();
    assert!(matches!(e, QueryError::TooManyPoints { max: 100 }), "{e}");
    assert_eq!(e.error_type(), "bad_data");
    let slow = Engine::new(EngineOptions {
        timeout: Duration::ZERO,
        ..EngineOptions::default()
    });
    let e = slow
        .range_query(&st, "sum(rate(req_total[5m]))", 0, 1_800_000, 15_000)
        .unwrap_err();
    assert!(matches!(e, QueryError::Timeout(_)), "{e}");
    // Subqueries with absurd resolution hit the sample limit instead of allocating.
    let e = small
        .instant_query(&st, "max_over_time(req_total[1y:1ms])", 900_000)
        .unwrap_err();
    assert!(matches!(e, QueryError::TooManySamples(_)), "{e}");
}

#[test]
fn type_errors_are_bad_data_with_position() {
    let f = fixture();
    let st = TenantStorage {
        db: &f.db,
        tenant: DEFAULT_TENANT,
    };
    let engine = Engine::default();
    let e = engine.instant_query(&st, "rate(req_total)", 0).unwrap_err();
    assert_eq!(e.error_type(), "bad_data");
    assert!(e.to_string().starts_with("1:"), "{e}");
    let e = engine
        .range_query(&st, "req_total[5m]", 0, 60_000, 15_000)
        .unwrap_err();
    assert_eq!(e.error_type(), "bad_data");
    assert!(e.to_string().contains("range vector"), "{e}");
}
