//! Storage tests: openraft's storage suite against our log store and state machine, and the
//! segment log's crash recovery (torn tails, corruption, truncation, purge).

mod recovery;

use o11y_raft::{LogOptions, LogStore, StateMachine, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use tempfile::TempDir;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("tempdir");
        // Tiny segments so the suite's few entries cross segment boundaries.
        let (log, _) = LogStore::open(dir.path().join("log"), LogOptions { segment_bytes: 256 })
            .expect("open log");
        let sm = StateMachine::open(dir.path().join("sm"), o11y_tsdb::Options::default())
            .expect("open state machine");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).expect("storage suite");
}

#[test]
fn the_state_machine_checkpoints_between_snapshots() {
    use o11y_raft::{CheckpointPolicy, Command, Request};
    use o11y_tsdb::labels::Label;
    use o11y_tsdb::{Sample, SeriesSamples, WriteBatch};
    use openraft::storage::RaftStateMachine;
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};

    let dir = tempfile::tempdir().unwrap();
    let mut sm = StateMachine::open(dir.path(), o11y_tsdb::Options::default()).unwrap();
    sm.set_checkpoint_policy(CheckpointPolicy {
        every_entries: 5,
        every_bytes: u64::MAX,
        every: std::time::Duration::from_secs(3600),
    });
    let durable = sm.durable_index();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        for i in 1..=12u64 {
            let cmd = Command::Metrics {
                tenant: "default".into(),
                batch: WriteBatch {
                    series: vec![SeriesSamples {
                        labels: vec![Label::new("__name__", "m")],
                        samples: vec![Sample {
                            t: i as i64 * 1000,
                            v: 1.0,
                        }],
                    }],
                    received_ms: None,
                },
            };
            let e = Entry {
                log_id: LogId::new(CommittedLeaderId::new(1, 1), i),
                payload: EntryPayload::Normal(Request::encode(&[cmd])),
            };
            sm.apply([e]).await.unwrap();
        }
    });
    // Checkpoints after entries 5 and 10: the engine and APPLIED hold index 10.
    assert_eq!(sm.db().persisted_index(), 10);
    assert_eq!(*durable.borrow(), 10);
    drop(sm);
    let sm = StateMachine::open(dir.path(), o11y_tsdb::Options::default()).unwrap();
    assert_eq!(sm.last_applied().unwrap().index, 10);
}
