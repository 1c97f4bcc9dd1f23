//! Entries of several operations under one log index (`apply_ops`), and snapshots made of hard
//! links (`snapshot_to`) that open as an identical database.

use std::os::unix::fs::MetadataExt;

use o11y_tsdb::{Db, Op, OpOutcome, DEFAULT_TENANT};

use crate::common::*;

#[test]
fn ops_of_one_entry_share_its_index_and_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    let a = batch(vec![series(&[("__name__", "a")], &[(1000, 1.0)])]);
    let b = batch(vec![series(&[("__name__", "b")], &[(1000, 2.0)])]);
    let matchers = [eq("__name__", "a")];
    let ops = [
        Op::Write {
            tenant: DEFAULT_TENANT,
            batch: &a,
        },
        Op::Write {
            tenant: "../bad",
            batch: &b,
        },
        Op::Write {
            tenant: "t2",
            batch: &b,
        },
        Op::Delete {
            tenant: DEFAULT_TENANT,
            matchers: &matchers,
            mint: 0,
            maxt: 500,
        },
    ];
    let out = db.apply_ops(&ops, 7).unwrap();
    assert_eq!(out.len(), 4);
    assert!(matches!(&out[0], Ok(OpOutcome::Written(r)) if r.samples_accepted == 1));
    assert!(matches!(&out[1], Err(o11y_tsdb::Error::InvalidTenant(_))));
    assert!(matches!(&out[2], Ok(OpOutcome::Written(r)) if r.samples_accepted == 1));
    assert_eq!(out[3].as_ref().unwrap(), &OpOutcome::Deleted(1));
    assert_eq!(db.applied_index(), 7);
    // Replaying the same entry changes nothing.
    let again = db.apply_ops(&ops, 7).unwrap();
    assert!(again
        .iter()
        .all(|o| matches!(o, Ok(OpOutcome::AlreadyApplied))));
    assert_eq!(dump(&db, DEFAULT_TENANT)[0].1, vec![(1000, 1f64.to_bits())]);
    assert_eq!(dump(&db, "t2").len(), 1);
}

#[test]
fn snapshot_links_immutable_files_and_opens_identically() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("db"), small_opts()).unwrap();
    // 1 s samples, 60 s blocks: 200 s of data cuts blocks, the rest stays in the head.
    let idx = fill(&db, DEFAULT_TENANT, "m", 20, 0, 200, 1);
    db.compact().unwrap();
    let idx = fill(&db, DEFAULT_TENANT, "m", 20, 200_000, 30, idx);
    let before = dump(&db, DEFAULT_TENANT);
    assert!(
        !db.blocks(DEFAULT_TENANT).is_empty(),
        "the data spans blocks"
    );

    let snap = dir.path().join("snap");
    let (applied, files) = db.snapshot_to(&snap).unwrap();
    assert_eq!(applied, idx - 1);
    // Block files are the same inodes, not copies.
    let block_file = files
        .iter()
        .find(|f| f.path.starts_with("blocks"))
        .expect("a block file");
    let ino = |p: &std::path::Path| std::fs::metadata(p).unwrap().ino();
    assert_eq!(
        ino(&dir.path().join("db").join(&block_file.path)),
        ino(&snap.join(&block_file.path))
    );
    for f in &files {
        assert_eq!(
            std::fs::metadata(snap.join(&f.path)).unwrap().len(),
            f.len,
            "{:?}",
            f.path
        );
    }

    // The source keeps going; the copy does not see it.
    let idx = fill(&db, DEFAULT_TENANT, "m", 20, 230_000, 100, idx);
    db.compact().unwrap();
    let copy = Db::open(&snap, small_opts()).unwrap();
    assert_eq!(copy.persisted_index(), applied);
    assert_eq!(dump(&copy, DEFAULT_TENANT), before);
    // Opening the copy did not disturb the source.
    drop(db);
    let db = Db::open(dir.path().join("db"), small_opts()).unwrap();
    assert_eq!(db.persisted_index(), idx - 1);
}
