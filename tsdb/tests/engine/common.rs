//! Helpers shared by the engine tests.

use o11y_tsdb::labels::Label;
use o11y_tsdb::matcher::{MatchOp, Matcher};
use o11y_tsdb::{Db, Options, Sample, SeriesSamples, WriteBatch};

pub fn labels(pairs: &[(&str, &str)]) -> Vec<Label> {
    pairs
        .iter()
        .map(|(n, v)| Label {
            name: n.to_string(),
            value: v.to_string(),
        })
        .collect()
}

pub fn series(pairs: &[(&str, &str)], samples: &[(i64, f64)]) -> SeriesSamples {
    SeriesSamples {
        labels: labels(pairs),
        samples: samples.iter().map(|&(t, v)| Sample { t, v }).collect(),
    }
}

pub fn batch(s: Vec<SeriesSamples>) -> WriteBatch {
    WriteBatch {
        series: s,
        received_ms: None,
    }
}

pub fn m(op: MatchOp, name: &str, value: &str) -> Matcher {
    Matcher::new(op, name, value).unwrap()
}

pub fn eq(name: &str, value: &str) -> Matcher {
    m(MatchOp::Equal, name, value)
}

/// Small blocks so tests cross block boundaries quickly: 1 minute blocks, 10 s OOO window.
pub fn small_opts() -> Options {
    Options {
        block_range_ms: 60_000,
        ooo_window_ms: 10_000,
        retention_ms: None,
        ..Options::default()
    }
}

/// Every series of a tenant as (labels text, samples), for whole-state comparisons.
pub fn dump(db: &Db, tenant: &str) -> Vec<(String, Vec<(i64, u64)>)> {
    let all = m(MatchOp::Regex, "__name__", ".+");
    db.select(tenant, &[all], i64::MIN, i64::MAX)
        .unwrap()
        .iter()
        .map(|s| {
            (
                s.labels().to_string(),
                s.samples()
                    .unwrap()
                    .into_iter()
                    .map(|(t, v)| (t, v.to_bits()))
                    .collect(),
            )
        })
        .collect()
}

/// Writes `n` samples at 1 s intervals for `series` series named `metric`, one batch per
/// timestamp, log indexes from `first_index`.
pub fn fill(
    db: &Db,
    tenant: &str,
    metric: &str,
    series: usize,
    from_t: i64,
    n: usize,
    first_index: u64,
) -> u64 {
    let mut idx = first_index;
    for i in 0..n {
        let t = from_t + i as i64 * 1000;
        let b = batch(
            (0..series)
                .map(|s| {
                    let id = s.to_string();
                    series_of(metric, &id, t, (i * 10 + s) as f64)
                })
                .collect(),
        );
        let r = db.apply(tenant, &b, idx).unwrap();
        assert!(r.rejections.is_empty(), "{:?}", r.rejections);
        idx += 1;
    }
    idx
}

fn series_of(metric: &str, id: &str, t: i64, v: f64) -> SeriesSamples {
    series(
        &[("__name__", metric), ("id", id), ("job", "test")],
        &[(t, v)],
    )
}
