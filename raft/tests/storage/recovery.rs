//! Crash recovery of the segment log: what survives a torn write, what is reported as
//! corruption, and that truncation and purge persist.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use o11y_raft::{LogError, LogOptions, LogStore, Request, TypeConfig};
use openraft::storage::RaftLogStorage;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader, Vote};

fn entry(index: u64, payload: &[u8]) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Request::from_encoded(Bytes::copy_from_slice(payload))),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Appends entries `from..=to` and waits for their fsync.
async fn append(log: &mut LogStore, from: u64, to: u64) {
    let entries: Vec<_> = (from..=to)
        .map(|i| entry(i, format!("payload-{i}").as_bytes()))
        .collect();
    openraft::storage::RaftLogStorageExt::blocking_append(log, entries)
        .await
        .unwrap();
}

async fn indexes(log: &mut LogStore) -> Vec<u64> {
    log.try_get_log_entries(0..u64::MAX)
        .await
        .unwrap()
        .iter()
        .map(|e| e.log_id.index)
        .collect()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

fn small() -> LogOptions {
    LogOptions { segment_bytes: 200 }
}

#[test]
fn entries_vote_and_committed_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let (mut log, _) = LogStore::open(dir.path(), small()).unwrap();
        append(&mut log, 1, 30).await;
        log.save_vote(&Vote::new_committed(3, 2)).await.unwrap();
        let c = Some(LogId::new(CommittedLeaderId::new(1, 1), 25));
        log.save_committed(c).await.unwrap();
        append(&mut log, 31, 31).await;
        assert!(log.segment_count() > 3, "small segments rotate");
        drop(log);
        let (mut log, report) = LogStore::open(dir.path(), small()).unwrap();
        assert_eq!(report.entries, 31);
        assert_eq!(report.truncated_tail, None);
        assert_eq!(indexes(&mut log).await, (1..=31).collect::<Vec<_>>());
        assert_eq!(
            log.read_vote().await.unwrap(),
            Some(Vote::new_committed(3, 2))
        );
        assert_eq!(log.read_committed().await.unwrap(), c);
        let e = log.try_get_log_entries(7..8).await.unwrap();
        match &e[0].payload {
            EntryPayload::Normal(r) => assert_eq!(&r.as_bytes()[..], b"payload-7"),
            p => panic!("unexpected payload {p:?}"),
        }
    });
}

#[test]
fn torn_tail_is_truncated_and_the_log_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let (mut log, _) = LogStore::open(dir.path(), LogOptions::default()).unwrap();
        append(&mut log, 1, 10).await;
        drop(log);
        // A crash in the middle of writing entry 11: half a record at the end.
        let seg = segments(dir.path()).pop().unwrap();
        let len = fs::metadata(&seg).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[40, 0, 0, 0, 1, 9, 9]).unwrap();
        drop(f);
        let (mut log, report) = LogStore::open(dir.path(), LogOptions::default()).unwrap();
        assert_eq!(report.truncated_tail, Some((seg.clone(), len)));
        assert_eq!(fs::metadata(&seg).unwrap().len(), len);
        assert_eq!(indexes(&mut log).await, (1..=10).collect::<Vec<_>>());
        append(&mut log, 11, 12).await;
        drop(log);
        let (mut log, _) = LogStore::open(dir.path(), LogOptions::default()).unwrap();
        assert_eq!(indexes(&mut log).await, (1..=12).collect::<Vec<_>>());
    });
}

#[test]
fn a_flipped_bit_in_the_last_record_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let (mut log, _) = LogStore::open(dir.path(), LogOptions::default()).unwrap();
        append(&mut log, 1, 5).await;
        drop(log);
        let seg = segments(dir.path()).pop().unwrap();
        let mut data = fs::read(&seg).unwrap();
        let n = data.len();
        data[n - 10] ^= 0x40;
        fs::write(&seg, &data).unwrap();
        let (mut log, report) = LogStore::open(dir.path(), LogOptions::default()).unwrap();
        assert!(report.truncated_tail.is_some());
        assert_eq!(indexes(&mut log).await, vec![1, 2, 3, 4]);
    });
}

#[test]
fn corruption_in_an_older_segment_is_an_error_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let (mut log, _) = LogStore::open(dir.path(), small()).unwrap();
        append(&mut log, 1, 20).await;
        drop(log);
        let first = segments(dir.path()).remove(0);
        let mut data = fs::read(&first).unwrap();
        data[30] ^= 0xff;
        fs::write(&first, &data).unwrap();
        match LogStore::open(dir.path(), small()) {
            Err(LogError::Corrupt {
                path,
                offset,
                reason,
            }) => {
                assert_eq!(path, first);
                assert_eq!(
                    offset, 16,
                    "the first record starts after the 16-byte header"
                );
                assert!(reason.contains("checksum"), "{reason}");
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("corruption not detected"),
        }
    });
}

#[test]
fn truncation_and_purge_persist() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let (mut log, _) = LogStore::open(dir.path(), small()).unwrap();
        append(&mut log, 1, 40).await;
        let before = segments(dir.path()).len();
        log.truncate(LogId::new(CommittedLeaderId::new(1, 1), 33))
            .await
            .unwrap();
        assert_eq!(indexes(&mut log).await, (1..=32).collect::<Vec<_>>());
        // Conflicting entries from a new leader replace the removed ones.
        let e: Vec<_> = (33..=35)
            .map(|i| Entry {
                log_id: LogId::new(CommittedLeaderId::new(2, 3), i),
                payload: EntryPayload::Blank,
            })
            .collect();
        openraft::storage::RaftLogStorageExt::blocking_append(&mut log, e)
            .await
            .unwrap();
        log.purge(LogId::new(CommittedLeaderId::new(1, 1), 20))
            .await
            .unwrap();
        assert!(
            segments(dir.path()).len() < before,
            "purged segments are deleted"
        );
        drop(log);
        let (mut log, _) = LogStore::open(dir.path(), small()).unwrap();
        assert_eq!(indexes(&mut log).await, (21..=35).collect::<Vec<_>>());
        let st = log.get_log_state().await.unwrap();
        assert_eq!(st.last_purged_log_id.unwrap().index, 20);
        assert_eq!(
            st.last_log_id.unwrap(),
            LogId::new(CommittedLeaderId::new(2, 3), 35)
        );
        // Purging past the end (after a snapshot install) restarts the log after the point.
        let far = LogId::new(CommittedLeaderId::new(4, 1), 100);
        log.purge(far).await.unwrap();
        assert_eq!(indexes(&mut log).await, Vec::<u64>::new());
        append(&mut log, 101, 103).await;
        drop(log);
        let (mut log, _) = LogStore::open(dir.path(), small()).unwrap();
        assert_eq!(indexes(&mut log).await, vec![101, 102, 103]);
        assert_eq!(
            log.get_log_state().await.unwrap().last_purged_log_id,
            Some(far)
        );
    });
}

#[test]
fn concurrent_appends_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let (log, _) = LogStore::open(dir.path(), LogOptions::default()).unwrap();
        let before = log.fsyncs();
        // Each task appends (synchronously, in spawn order) then waits for its fsync; all 200
        // appends are queued while the first fsync is still running.
        let tasks: Vec<_> = (1..=200u64)
            .map(|i| {
                let mut l = log.clone();
                tokio::spawn(async move {
                    openraft::storage::RaftLogStorageExt::blocking_append(&mut l, [entry(i, b"x")])
                        .await
                        .unwrap()
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let fsyncs = log.fsyncs() - before;
        assert!((1..50).contains(&fsyncs), "{fsyncs} fsyncs for 200 appends");
        drop(log);
        let (mut log, _) = LogStore::open(dir.path(), LogOptions::default()).unwrap();
        assert_eq!(indexes(&mut log).await, (1..=200).collect::<Vec<_>>());
    });
}
