//! The full scan both `tsdb-bench` and the `tsdb-scan` example time: select every series of
//! the default tenant, then decode every sample through the public iterator.

use std::time::{Duration, Instant};

use o11y_tsdb::matcher::{MatchOp, Matcher};
use o11y_tsdb::{Db, Series, DEFAULT_TENANT};

/// What a full scan read and how long its parts took.
pub struct Scan {
    pub series: Vec<Series>,
    pub samples: u64,
    /// Time spent in `select`.
    pub select: Duration,
    /// Select plus decoding every sample.
    pub total: Duration,
}

/// Selects every series and decodes every sample (on the calling thread's rayon pool).
pub fn full_scan(db: &Db) -> o11y_tsdb::Result<Scan> {
    let all = Matcher::new(MatchOp::Regex, "__name__", ".+").expect("valid regex");
    let t0 = Instant::now();
    let series = db.select(
        DEFAULT_TENANT,
        std::slice::from_ref(&all),
        i64::MIN,
        i64::MAX,
    )?;
    let select = t0.elapsed();
    let mut samples = 0u64;
    let mut sum = 0.0f64;
    for s in &series {
        let mut it = s.iter();
        for (_, v) in &mut it {
            samples += 1;
            sum += v;
        }
        if let Some(e) = it.take_err() {
            return Err(e);
        }
    }
    let total = t0.elapsed();
    std::hint::black_box(sum);
    Ok(Scan {
        series,
        samples,
        select,
        total,
    })
}
