//! Corrupt and truncated files are detected (by checksum) and reported with their path.

use std::fs;
use std::path::{Path, PathBuf};

use o11y_tsdb::Db;

use crate::common::*;

fn build(dir: &Path) {
    let db = Db::open(dir, small_opts()).unwrap();
    fill(&db, "t", "m", 4, 0, 200, 1);
    db.flush_head().unwrap();
    fill(&db, "t", "m", 4, 200_000, 150, 1000);
    db.checkpoint().unwrap();
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every series' labels and its samples (timestamp, value bits).
type SeriesData = Vec<(String, Vec<(i64, u64)>)>;

/// Opening and reading everything either succeeds with the right data or fails with an error
/// naming a file; it never panics.
fn open_and_read(dir: &Path) -> Result<SeriesData, String> {
    let db = Db::open(dir, small_opts()).map_err(|e| e.to_string())?;
    let all = m(o11y_tsdb::matcher::MatchOp::Regex, "__name__", ".+");
    let series = db
        .select("t", &[all], i64::MIN, i64::MAX)
        .map_err(|e| e.to_string())?;
    series
        .iter()
        .map(|s| {
            s.samples()
                .map(|v| {
                    (
                        s.labels().to_string(),
                        v.into_iter().map(|(t, x)| (t, x.to_bits())).collect(),
                    )
                })
                .map_err(|e| e.to_string())
        })
        .collect()
}

#[test]
fn every_file_detects_a_flipped_byte() {
    let src = tempfile::tempdir().unwrap();
    build(src.path());
    let good = open_and_read(src.path()).unwrap();
    for f in files(src.path()) {
        let len = fs::metadata(&f).unwrap().len() as usize;
        for pos in [0, 9, len / 3, len / 2, len.saturating_sub(20), len - 1] {
            let dst = tempfile::tempdir().unwrap();
            copy_tree(src.path(), dst.path());
            let target = dst.path().join(f.strip_prefix(src.path()).unwrap());
            let mut bytes = fs::read(&target).unwrap();
            bytes[pos] ^= 0x5a;
            fs::write(&target, &bytes).unwrap();
            match open_and_read(dst.path()) {
                Err(e) => assert!(
                    e.contains("corrupt") || e.contains("version") || e.contains("checksum"),
                    "{}: {e}",
                    f.display()
                ),
                Ok(got) => {
                    // Bytes past a segment's committed length are legitimately ignored.
                    assert_eq!(
                        got,
                        good,
                        "undetected corruption in {} at {pos}",
                        f.display()
                    );
                }
            }
        }
    }
}

#[test]
fn truncated_files_are_errors_not_panics() {
    let src = tempfile::tempdir().unwrap();
    build(src.path());
    for f in files(src.path()) {
        let len = fs::metadata(&f).unwrap().len();
        for keep in [0, 5, len / 2, len.saturating_sub(1)] {
            let dst = tempfile::tempdir().unwrap();
            copy_tree(src.path(), dst.path());
            let target = dst.path().join(f.strip_prefix(src.path()).unwrap());
            fs::OpenOptions::new()
                .write(true)
                .open(&target)
                .unwrap()
                .set_len(keep)
                .unwrap();
            if let Err(e) = open_and_read(dst.path()) {
                assert!(!e.is_empty());
            }
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            fs::create_dir_all(&t).unwrap();
            copy_tree(&p, &t);
        } else {
            fs::copy(&p, &t).unwrap();
        }
    }
}
