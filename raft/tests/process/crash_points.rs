//! Restarts after crashes inside snapshot install, snapshot build, log truncation and log
//! compaction (purge). The process aborts at a named point (`O11Y_CRASH_AT`), is restarted
//! normally, and must end identical to the others with every acknowledged write.

use crate::harness::*;
use std::collections::BTreeSet;

async fn write_keys(c: &o11y_raft::PeerClient, keys: std::ops::Range<u64>) -> BTreeSet<u64> {
    let mut acked = BTreeSet::new();
    for k in keys {
        retry("write", || async {
            if write(c, k).await {
                Ok(())
            } else {
                Err("not acknowledged")
            }
        })
        .await;
        acked.insert(k);
    }
    acked
}

fn assert_has(state: &Dump, acked: &BTreeSet<u64>) {
    let keys = state.keys();
    let lost: Vec<&u64> = acked.difference(&keys).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_during_snapshot_install_then_restart() {
    let mut c = Cluster::start(12, &["--snapshot-every", "20", "--keep-log", "0"]).await;
    let leader = c.leader().await;
    let lc = c.node(leader).client();
    let f = (1..=3).find(|i| *i != leader).unwrap();
    let mut acked = BTreeSet::new();
    for (round, point) in ["install-before-switch", "install-after-switch"]
        .iter()
        .enumerate()
    {
        c.node(f).kill9();
        let base = 1000 * round as u64;
        // Enough entries that the leader snapshots and purges what the follower misses.
        acked.extend(write_keys(&lc, base..base + 120).await);
        c.node(f).start(false, &[("O11Y_CRASH_AT", point)]);
        assert!(c.node(f).wait_exit(), "node {f} should abort at {point}");
        c.node(f).start(false, &[]);
        let state = c.converged().await;
        assert_has(&state, &acked);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_during_snapshot_build_and_log_purge_then_restart() {
    let mut c = Cluster::start(13, &["--snapshot-every", "20", "--keep-log", "0"]).await;
    let leader = c.leader().await;
    let lc = c.node(leader).client();
    let f = (1..=3).find(|i| *i != leader).unwrap();
    let mut acked = write_keys(&lc, 0..5).await;
    for (round, point) in ["snapshot-build", "purge-after-mark"].iter().enumerate() {
        c.node(f).kill9();
        c.node(f).start(false, &[("O11Y_CRASH_AT", point)]);
        let base = 1000 * (round as u64 + 1);
        // The follower applies these and builds a snapshot after 20 entries: it aborts there.
        let mut k = base;
        while c.node(f).running() && k < base + 500 {
            acked.extend(write_keys(&lc, k..k + 10).await);
            k += 10;
            if let Some(aborted) = c.node(f).try_exit() {
                assert!(aborted, "node {f} exited without aborting");
                break;
            }
        }
        assert!(!c.node(f).running(), "node {f} should abort at {point}");
        c.node(f).start(false, &[]);
        let state = c.converged().await;
        assert_has(&state, &acked);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_during_log_truncation_then_restart() {
    let mut c = Cluster::start(14, &[]).await;
    let old = c.leader().await;
    let oc = c.node(old).client();
    let mut acked = write_keys(&oc, 0..10).await;
    let followers: Vec<u64> = (1..=3).filter(|i| *i != old).collect();
    // The followers freeze; the leader appends entries it can never commit.
    for f in &followers {
        c.node(*f).signal("-STOP");
    }
    let before = oc.admin(status_req()).await.unwrap().last_log_index;
    for k in 500..505 {
        assert!(
            !write(&oc, k).await,
            "a write without a quorum must not be acknowledged"
        );
    }
    let after = oc.admin(status_req()).await.unwrap().last_log_index;
    assert!(after > before, "the leader appended uncommitted entries");
    c.node(old).kill9();
    for f in &followers {
        c.node(*f).signal("-CONT");
    }
    // The survivors elect a leader and commit new entries at the same indexes.
    let new = c.leader().await;
    let nc = c.node(new).client();
    acked.extend(write_keys(&nc, 20..40).await);
    // The old leader must remove its conflicting entries when it rejoins: crash right there.
    c.node(old).start(false, &[("O11Y_CRASH_AT", "truncate")]);
    assert!(
        c.node(old).wait_exit(),
        "node {old} should abort while truncating"
    );
    c.node(old).start(false, &[]);
    let state = c.converged().await;
    assert_has(&state, &acked);
    let keys = state.keys();
    assert!(
        (500..505).all(|k| !keys.contains(&k)),
        "unacknowledged entries were truncated"
    );
}
