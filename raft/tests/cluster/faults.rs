//! Faults: a crashed leader, a partitioned leader, a lossy and slow network. No acknowledged
//! write is lost, and the nodes end identical.

use std::time::Duration;

use o11y_raft::ProposeError;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_crash_elects_a_new_leader_and_the_old_one_catches_up() {
    let c = Cluster::start(3, 10_000).await;
    let old = c.wait_leader(&[1, 2, 3]).await;
    for key in 0..20u64 {
        propose_retry(&c.node(old), write(key, 1000 + key as i64)).await;
    }
    c.crash(old).await;
    let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|i| *i != old).collect();
    let new = c.wait_leader(&rest).await;
    assert_ne!(new, old);
    for key in 20..40u64 {
        propose_retry(&c.node(rest[0]), write(key, 1000 + key as i64)).await;
    }
    c.open(old).await;
    let state = c.wait_converged(&[1, 2, 3]).await;
    assert_eq!(state.len(), 40, "every acknowledged write is on every node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_leader_refuses_writes_and_catches_up_after_healing() {
    let c = Cluster::start(3, 10_000).await;
    let old = c.wait_leader(&[1, 2, 3]).await;
    propose_retry(&c.node(old), write(0, 1000)).await;
    c.router.isolate(old);
    // The minority side refuses (retriably) instead of acknowledging.
    let err = c.node(old).propose(vec![write(1, 1001)]).await.unwrap_err();
    assert!(err.is_retriable(), "{err}");
    assert!(
        matches!(
            err,
            ProposeError::NoQuorum | ProposeError::NoLeader | ProposeError::Timeout(_)
        ),
        "{err:?}"
    );
    let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|i| *i != old).collect();
    let new = c.wait_leader(&rest).await;
    assert_ne!(new, old);
    for key in 2..12u64 {
        propose_retry(&c.node(new), write(key, 1000 + key as i64)).await;
    }
    c.router.heal();
    let state = c.wait_converged(&[1, 2, 3]).await;
    let keys: Vec<&str> = state.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(state.len(), 11, "{keys:?}");
    assert!(
        !keys.iter().any(|k| k.contains("key=\"1\"")),
        "the refused write is nowhere"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lossy_slow_network_loses_no_acknowledged_write() {
    let c = Cluster::start(3, 10_000).await;
    c.wait_leader(&[1, 2, 3]).await;
    c.router.set_drop_rate(100);
    c.router.set_delay(Duration::from_millis(3));
    for key in 0..40u64 {
        propose_retry(&c.node(key % 3 + 1), write(key, 1000 + key as i64)).await;
    }
    c.router.set_drop_rate(0);
    c.router.set_delay(Duration::ZERO);
    let state = c.wait_converged(&[1, 2, 3]).await;
    assert_eq!(state.len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_node_replays_its_log_into_the_same_state() {
    let c = Cluster::start(3, 10_000).await;
    let leader = c.wait_leader(&[1, 2, 3]).await;
    for key in 0..30u64 {
        propose_retry(&c.node(leader), write(key, 1000 + key as i64)).await;
    }
    let before = c.wait_converged(&[1, 2, 3]).await;
    // Crash a follower without a checkpoint: its engine state comes back from the log.
    let f = [1, 2, 3].into_iter().find(|i| *i != leader).unwrap();
    c.crash(f).await;
    let n = c.open(f).await;
    wait_until("the restarted node re-applies its log", || {
        dump(&n) == before
    })
    .await;
}
