//! Head cutting, block merging, retention and tombstones.

use o11y_tsdb::matcher::MatchOp;
use o11y_tsdb::{Db, Options};

use crate::common::*;

#[test]
fn head_is_cut_into_aligned_blocks_and_data_survives() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    // 5 minutes of 1 s data for 3 series with 1 minute blocks.
    fill(&db, "t", "m", 3, 0, 300, 1);
    let before = dump(&db, "t");
    let r = db.compact().unwrap();
    assert!(r.blocks_cut >= 3, "{r:?}");
    for b in db.blocks("t") {
        // Cut blocks cover one 1-minute range; merged ones one aligned 3^(level-1)-minute range.
        let r = 60_000 * 3i64.pow(b.level - 1);
        assert_eq!(
            b.mint / r,
            b.maxt / r,
            "block {b:?} crosses a range boundary"
        );
    }
    assert_eq!(dump(&db, "t"), before);
    // Samples older than the cut are now rejected.
    let old = batch(vec![series(
        &[("__name__", "m"), ("id", "new"), ("job", "test")],
        &[(1_000, 1.0)],
    )]);
    let rep = db.apply("t", &old, 1000).unwrap();
    assert_eq!(rep.rejections.len(), 1);
    // Reopen: same data.
    drop(db);
    let db = Db::open(dir.path(), small_opts()).unwrap();
    assert_eq!(dump(&db, "t"), before);
}

#[test]
fn complete_ranges_are_merged_into_larger_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    // 12 minutes: cuts of 1 minute, merged into 3-minute and 9-minute ranges.
    let mut idx = 1;
    for minute in 0..12 {
        idx = fill(&db, "t", "m", 2, minute * 60_000, 60, idx);
        db.compact().unwrap();
    }
    let before = dump(&db, "t");
    db.compact().unwrap();
    let blocks = db.blocks("t");
    assert!(
        blocks
            .iter()
            .any(|b| b.level >= 2 && b.maxt - b.mint >= 3 * 60_000 - 1000),
        "{blocks:?}"
    );
    assert!(blocks.len() < 10, "{blocks:?}");
    assert_eq!(dump(&db, "t"), before);
    // Merged blocks never overlap.
    for w in blocks.windows(2) {
        assert!(w[0].maxt < w[1].mint, "{blocks:?}");
    }
    drop(db);
    let db = Db::open(dir.path(), small_opts()).unwrap();
    assert_eq!(dump(&db, "t"), before);
}

#[test]
fn out_of_order_data_is_merged_at_read_time_and_by_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    let s = &[("__name__", "m")];
    let in_order: Vec<(i64, f64)> = (0..50).map(|i| (100_000 + i * 2000, i as f64)).collect();
    db.apply("t", &batch(vec![series(s, &in_order)]), 1)
        .unwrap();
    // Odd seconds, late, within the window of the newest sample (198 s).
    let late: Vec<(i64, f64)> = (0..5).map(|i| (190_001 + i * 2000, -1.0)).collect();
    let r = db.apply("t", &batch(vec![series(s, &late)]), 2).unwrap();
    assert!(r.rejections.is_empty(), "{:?}", r.rejections);
    let got = dump(&db, "t");
    assert_eq!(got[0].1.len(), 55);
    assert!(got[0].1.windows(2).all(|w| w[0].0 < w[1].0));
    db.flush_head().unwrap();
    db.compact().unwrap();
    assert_eq!(dump(&db, "t"), got);
}

#[test]
fn retention_by_time_and_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        retention_ms: Some(120_000),
        ..small_opts()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    fill(&db, "t", "m", 2, 0, 600, 1);
    db.compact().unwrap();
    let blocks = db.blocks("t");
    let newest = 599_000;
    assert!(
        blocks.iter().all(|b| b.maxt >= newest - 120_000),
        "{blocks:?}"
    );
    assert!(dump(&db, "t")[0].1[0].0 >= newest - 180_000);
    drop(db);

    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            retention_bytes: Some(1),
            ..small_opts()
        },
    )
    .unwrap();
    fill(&db, "t", "m", 2, 0, 300, 1);
    db.compact().unwrap();
    assert!(
        db.blocks("t").is_empty(),
        "every block exceeds a 1-byte budget"
    );
    // Head data is still there.
    assert!(!dump(&db, "t").is_empty());
}

#[test]
fn delete_series_hides_data_and_clean_tombstones_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    fill(&db, "t", "m", 3, 0, 200, 1);
    db.compact().unwrap();
    assert!(!db.blocks("t").is_empty());
    // Delete id=1 between 30 s and 150 s: spans blocks and head.
    let n = db
        .delete_series("t", &[eq("id", "1")], 30_000, 150_000, 500)
        .unwrap();
    assert!(n >= 2);
    let check = |db: &Db| {
        let got = dump(db, "t");
        let s1 = &got.iter().find(|(l, _)| l.contains(r#"id="1""#)).unwrap().1;
        assert!(s1.iter().all(|&(t, _)| !(30_000..=150_000).contains(&t)));
        assert_eq!(s1.len(), 200 - 121);
        let s0 = &got.iter().find(|(l, _)| l.contains(r#"id="0""#)).unwrap().1;
        assert_eq!(s0.len(), 200);
    };
    check(&db);
    db.checkpoint().unwrap();
    drop(db);
    let db = Db::open(dir.path(), small_opts()).unwrap();
    check(&db);
    let cleaned = db.clean_tombstones().unwrap();
    assert!(cleaned >= 1);
    check(&db);
    let matcher = m(MatchOp::Equal, "id", "1");
    let total: u64 = db.blocks("t").iter().map(|b| b.num_samples).sum();
    assert!(total < 3 * 200);
    let _ = matcher;
}
