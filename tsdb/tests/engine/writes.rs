//! The write API: validation, per-item rejections, duplicates, out-of-order, stale markers,
//! tenants.

use o11y_tsdb::matcher::MatchOp;
use o11y_tsdb::{Db, Options, RejectReason, DEFAULT_TENANT, STALE_NAN_BITS};

use crate::common::*;

#[test]
fn bad_items_are_rejected_and_the_rest_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let b = batch(vec![
        series(
            &[("__name__", "ok"), ("a", "1")],
            &[(1000, 1.0), (2000, 2.0)],
        ),
        series(&[("a", "no name")], &[(1000, 1.0)]),
        series(
            &[("__name__", "dup"), ("x", "1"), ("x", "2")],
            &[(1000, 1.0)],
        ),
        // Unsorted labels and an empty-valued label are fine (canonicalized).
        series(
            &[("z", "1"), ("__name__", "unsorted"), ("empty", "")],
            &[(1000, 5.0)],
        ),
    ]);
    let r = db.apply(DEFAULT_TENANT, &b, 1).unwrap();
    assert_eq!(r.samples_accepted, 3);
    assert_eq!(r.rejections.len(), 2);
    assert_eq!((r.rejections[0].series, r.rejections[0].sample), (1, None));
    assert_eq!((r.rejections[1].series, r.rejections[1].sample), (2, None));
    let got = dump(&db, DEFAULT_TENANT);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, r#"ok{a="1"}"#);
    assert_eq!(got[1].0, r#"unsorted{z="1"}"#);
}

#[test]
fn duplicates_out_of_order_and_too_old() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    let s = &[("__name__", "m")];
    db.apply(
        "t",
        &batch(vec![series(s, &[(100_000, 1.0), (101_000, 2.0)])]),
        1,
    )
    .unwrap();
    let r = db
        .apply(
            "t",
            &batch(vec![series(
                s,
                &[
                    (101_000, 2.0), // exact duplicate: accepted, no change
                    (101_000, 3.0), // same timestamp, other value
                    (95_000, 7.0),  // out of order, inside the 10 s window
                    (95_000, 8.0),  // now a duplicate of the OOO sample
                    (90_000, 9.0),  // older than the window
                    (102_000, 4.0),
                ],
            )]),
            2,
        )
        .unwrap();
    let reasons: Vec<(Option<usize>, RejectReason)> = r
        .rejections
        .iter()
        .map(|x| (x.sample, x.reason.clone()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (Some(1), RejectReason::DuplicateTimestamp { t: 101_000 }),
            (Some(3), RejectReason::DuplicateTimestamp { t: 95_000 }),
            (
                Some(4),
                RejectReason::TooOld {
                    t: 90_000,
                    min_valid: 91_000
                }
            ),
        ]
    );
    assert_eq!(r.samples_accepted, 3);
    let got = dump(&db, "t");
    let samples: Vec<(i64, f64)> = got[0]
        .1
        .iter()
        .map(|&(t, b)| (t, f64::from_bits(b)))
        .collect();
    assert_eq!(
        samples,
        vec![
            (95_000, 7.0),
            (100_000, 1.0),
            (101_000, 2.0),
            (102_000, 4.0)
        ]
    );
}

#[test]
fn special_values_round_trip_bit_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    let vals = [
        f64::from_bits(STALE_NAN_BITS),
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        f64::MIN_POSITIVE / 2.0,
        f64::MAX,
    ];
    let samples: Vec<(i64, f64)> = vals
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as i64 * 1000, v))
        .collect();
    db.apply("t", &batch(vec![series(&[("__name__", "m")], &samples)]), 1)
        .unwrap();
    let check = |db: &Db| {
        let got = dump(db, "t");
        let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(got[0].1, want);
    };
    check(&db);
    // And from a block.
    db.flush_head().unwrap();
    assert_eq!(db.blocks("t").len(), 1);
    check(&db);
}

#[test]
fn tenants_are_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    fill(&db, "a", "m", 2, 0, 3, 1);
    fill(&db, "b", "m", 5, 0, 3, 10);
    assert_eq!(dump(&db, "a").len(), 2);
    assert_eq!(dump(&db, "b").len(), 5);
    assert!(dump(&db, "c").is_empty());
    assert!(db.apply("../etc", &batch(vec![]), 0).is_err());
    assert_eq!(
        db.label_values("a", "id", &[], i64::MIN, i64::MAX).unwrap(),
        vec!["0", "1"]
    );
}

#[test]
fn replayed_indexes_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    let b = batch(vec![series(&[("__name__", "m")], &[(1000, 1.0)])]);
    assert!(!db.apply("t", &b, 5).unwrap().already_applied);
    assert!(db.apply("t", &b, 5).unwrap().already_applied);
    assert!(db.apply("t", &b, 3).unwrap().already_applied);
    assert_eq!(db.applied_index(), 5);
}

#[test]
fn label_names_values_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    db.apply(
        "t",
        &batch(vec![
            series(
                &[("__name__", "up"), ("job", "a"), ("instance", "x")],
                &[(1000, 1.0)],
            ),
            series(
                &[("__name__", "up"), ("job", "b"), ("zone", "eu")],
                &[(1000, 1.0)],
            ),
            series(&[("__name__", "down"), ("job", "b")], &[(1000, 0.0)]),
        ]),
        1,
    )
    .unwrap();
    assert_eq!(
        db.label_names("t", &[], i64::MIN, i64::MAX).unwrap(),
        vec!["__name__", "instance", "job", "zone"]
    );
    assert_eq!(
        db.label_names("t", &[eq("job", "b")], i64::MIN, i64::MAX)
            .unwrap(),
        vec!["__name__", "job", "zone"]
    );
    assert_eq!(
        db.label_values("t", "job", &[eq("__name__", "up")], i64::MIN, i64::MAX)
            .unwrap(),
        vec!["a", "b"]
    );
    assert_eq!(
        db.label_values("t", "__name__", &[eq("job", "b")], i64::MIN, i64::MAX)
            .unwrap(),
        vec!["down", "up"]
    );
    // Out of the time range: nothing.
    assert!(db.label_names("t", &[], 5000, 6000).unwrap().is_empty());
    let st = db.stats("t", 10).unwrap();
    assert_eq!(st.num_series, 3);
    assert_eq!(db.head_series("t"), 3);
    assert_eq!(db.head_series("no-such-tenant"), 0);
    assert_eq!(
        st.series_count_by_metric_name,
        vec![("up".to_string(), 2), ("down".to_string(), 1)]
    );
    assert_eq!(
        st.label_value_count_by_label_name[0],
        ("__name__".to_string(), 2)
    );
    assert_eq!((st.min_time, st.max_time), (1000, 1000));
    // The same answers once the data sits in a block.
    db.flush_head().unwrap();
    assert_eq!(
        db.label_names("t", &[eq("job", "b")], i64::MIN, i64::MAX)
            .unwrap(),
        vec!["__name__", "job", "zone"]
    );
    assert_eq!(
        db.label_values("t", "job", &[eq("__name__", "up")], i64::MIN, i64::MAX)
            .unwrap(),
        vec!["a", "b"]
    );
    assert_eq!(
        db.label_values("t", "zone", &[], i64::MIN, i64::MAX)
            .unwrap(),
        vec!["eu"]
    );
}

#[test]
fn select_skips_chunks_outside_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    // 600 samples → 5 chunks of 120.
    let samples: Vec<(i64, f64)> = (0..600).map(|i| (i * 1000, i as f64)).collect();
    db.apply("t", &batch(vec![series(&[("__name__", "m")], &samples)]), 1)
        .unwrap();
    let s = db
        .select("t", &[eq("__name__", "m")], 250_000, 260_000)
        .unwrap();
    assert_eq!(
        s[0].chunks().len(),
        1,
        "only the chunk covering [250s, 260s] is kept"
    );
    let got = s[0].samples().unwrap();
    assert_eq!(got.first(), Some(&(250_000, 250.0)));
    assert_eq!(got.len(), 11);
    db.flush_head().unwrap();
    let s = db
        .select("t", &[eq("__name__", "m")], 250_000, 260_000)
        .unwrap();
    assert_eq!(s[0].chunks().len(), 1);
    assert_eq!(s[0].samples().unwrap().len(), 11);
    // Blocks hold chunks of up to 240 samples.
    let all = db
        .select("t", &[eq("__name__", "m")], i64::MIN, i64::MAX)
        .unwrap();
    let ranges: Vec<_> = all[0].chunks().iter().map(|c| c.time_range()).collect();
    assert_eq!(
        ranges,
        vec![(0, 239_000), (240_000, 479_000), (480_000, 599_000)]
    );
    assert_eq!(all[0].samples().unwrap(), samples);
    let _ = MatchOp::Equal;
}

#[test]
fn samples_too_far_ahead_of_the_batch_time_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let mut b = batch(vec![series(
        &[("__name__", "m")],
        &[(1_000_000, 1.0), (1_000_000 + 11 * 60_000, 2.0)],
    )]);
    b.received_ms = Some(1_000_000);
    let r = db.apply("t", &b, 1).unwrap();
    assert_eq!(r.samples_accepted, 1);
    assert_eq!(
        r.rejections[0].reason,
        RejectReason::TooFarInFuture {
            t: 1_660_000,
            max_valid: 1_600_000
        }
    );
}

#[test]
fn sparse_samples_years_apart_cut_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let s = &[("__name__", "m")];
    // 2h blocks; ~140 million empty ranges lie between these samples.
    db.apply(
        "t",
        &batch(vec![series(s, &[(0, 1.0), (1_000_000_000_000_000, 2.0)])]),
        1,
    )
    .unwrap();
    db.flush_head().unwrap();
    assert_eq!(db.blocks("t").len(), 2);
    assert_eq!(dump(&db, "t")[0].1.len(), 2);
}
