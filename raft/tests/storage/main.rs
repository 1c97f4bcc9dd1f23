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
