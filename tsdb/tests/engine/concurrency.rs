//! Appends, queries and compaction at the same time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use o11y_tsdb::Db;

use crate::common::*;

#[test]
fn queries_see_whole_batches_while_appends_and_compaction_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), small_opts()).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    const SERIES: usize = 20;
    const BATCHES: usize = 400;
    let writer = {
        let db = db.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            // Every batch writes the same value to all series at one timestamp.
            for i in 0..BATCHES {
                let t = i as i64 * 1000;
                let b = batch(
                    (0..SERIES)
                        .map(|s| {
                            series(
                                &[("__name__", "c"), ("s", &s.to_string())],
                                &[(t, i as f64)],
                            )
                        })
                        .collect(),
                );
                let r = db.apply("t", &b, i as u64 + 1).unwrap();
                assert!(r.rejections.is_empty());
            }
            done.store(true, Ordering::Release);
        })
    };
    let compactor = {
        let db = db.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut runs = 0;
            while !done.load(Ordering::Acquire) {
                db.compact().unwrap();
                runs += 1;
            }
            runs
        })
    };
    let mut checks = 0;
    while !done.load(Ordering::Acquire) || checks == 0 {
        let all = db
            .select("t", &[eq("__name__", "c")], i64::MIN, i64::MAX)
            .unwrap();
        if all.is_empty() {
            continue;
        }
        // A consistent snapshot: every series has the same number of samples and the same last one.
        let views: Vec<Vec<(i64, f64)>> = all.iter().map(|s| s.samples().unwrap()).collect();
        assert_eq!(all.len(), SERIES);
        for v in &views {
            assert_eq!(
                v.len(),
                views[0].len(),
                "a query saw a partly applied batch"
            );
            assert_eq!(v.last(), views[0].last());
            assert!(v.windows(2).all(|w| w[0].0 < w[1].0));
        }
        checks += 1;
    }
    writer.join().unwrap();
    compactor.join().unwrap();
    let all = dump(&db, "t");
    assert_eq!(all.len(), SERIES);
    assert!(all.iter().all(|(_, s)| s.len() == BATCHES));
    assert!(checks > 0);
}
