//! Fuzzes the PromQL parser and evaluator (`o11y_query::promql`).
//!
//! Run: `cargo +nightly fuzz run promql` from the repository root.
//!
//! ```text
//!   input: UTF-8 text (anything else is skipped)
//!   1. parse: must return Ok or a ParseError whose position lies inside the input
//!   2. if it parses: evaluate as an instant query and as a short range query against
//!      a small real tsdb (counters, gauges, a classic histogram, a stale marker);
//!      any Ok or Err is fine, a panic or hang is not (the engine's limits are small)
//! ```

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use o11y_query::promql::engine::TenantStorage;
use o11y_query::promql::{parse, Engine, EngineOptions};
use o11y_tsdb::labels::Label;
use o11y_tsdb::{Db, Options, Sample, SeriesSamples, WriteBatch, DEFAULT_TENANT, STALE_NAN_BITS};

struct Fixture {
    _dir: tempfile::TempDir,
    db: Db,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), Options::default()).expect("open db");
        let mut batch = WriteBatch::default();
        let mut add = |labels: &[(&str, &str)], f: &dyn Fn(i64) -> f64| {
            batch.series.push(SeriesSamples {
                labels: labels.iter().map(|(n, v)| Label::new(*n, *v)).collect(),
                samples: (0..40).map(|i| Sample { t: i * 15_000, v: f(i) }).collect(),
            });
        };
        add(&[("__name__", "http_requests_total"), ("job", "api"), ("instance", "a")], &|i| (i * 10) as f64);
        add(&[("__name__", "http_requests_total"), ("job", "api"), ("instance", "b")], &|i| ((i % 7) * 3) as f64);
        add(&[("__name__", "temp"), ("room", "x")], &|i| (i as f64).sin() * 20.0);
        add(&[("__name__", "gone"), ("room", "x")], &|i| if i == 20 { f64::from_bits(STALE_NAN_BITS) } else { 1.0 });
        for le in ["0.1", "1", "+Inf"] {
            add(&[("__name__", "lat_bucket"), ("le", le)], &|i| (i as f64) * le.len() as f64);
        }
        db.apply(DEFAULT_TENANT, &batch, 1).expect("load fixture");
        Fixture { _dir: dir, db }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    match parse(q) {
        Err(e) => assert!(e.pos.start <= q.len(), "error position {:?} outside input", e.pos),
        Ok(expr) => {
            let f = fixture();
            let engine = Engine::new(EngineOptions {
                timeout: Duration::from_secs(2),
                max_samples: 1_000_000,
                max_points_per_series: 1000,
                ..EngineOptions::default()
            });
            let storage = TenantStorage { db: &f.db, tenant: DEFAULT_TENANT };
            let _ = engine.eval_instant(&storage, &expr, 300_000);
            let _ = engine.eval_range(&storage, &expr, 0, 600_000, 30_000);
        }
    }
});
