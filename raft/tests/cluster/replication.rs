//! Replication on a healthy network: every node applies the same entries; followers forward
//! writes; results come back in the caller's numbering; a new node catches up by snapshot;
//! membership changes asked of a follower go through the leader.

use o11y_raft::{Command, CommandResult, MembershipError};
use o11y_tsdb::labels::Label;
use o11y_tsdb::{Sample, SeriesSamples, WriteBatch, DEFAULT_TENANT};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_through_any_node_reach_every_node() {
    let c = Cluster::start(3, 10_000).await;
    let leader = c.wait_leader(&[1, 2, 3]).await;
    for key in 0..60u64 {
        // Round-robin over the nodes: followers forward to the leader.
        let via = c.node(key % 3 + 1);
        let r = propose_retry(&via, write(key, 1000 + key as i64)).await;
        assert_eq!(accepted(&r), 1, "write {key} via node {}", key % 3 + 1);
    }
    let state = c.wait_converged(&[1, 2, 3]).await;
    assert_eq!(state.len(), 60);
    assert_eq!(c.node(leader).status().role, "leader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_proposals_are_coalesced_and_answered_individually() {
    let c = Cluster::start(3, 10_000).await;
    let leader = c.wait_leader(&[1, 2, 3]).await;
    let before = c.node(leader).status().last_log_index;
    let tasks: Vec<_> = (0..200u64)
        .map(|k| {
            let n = c.node(leader);
            tokio::spawn(async move { (k, n.propose(vec![write(k, 5000)]).await.unwrap()) })
        })
        .collect();
    for t in tasks {
        let (k, r) = t.await.unwrap();
        assert_eq!(accepted(&r), 1, "proposal {k}");
    }
    let entries = c.node(leader).status().last_log_index - before;
    assert!(
        entries < 200,
        "200 proposals took {entries} entries: not coalesced"
    );
    assert_eq!(c.wait_converged(&[1, 2, 3]).await.len(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rejections_come_back_in_the_callers_numbering() {
    let c = Cluster::start(3, 10_000).await;
    c.wait_leader(&[1, 2, 3]).await;
    let s = |name: &str, t: i64, v: f64| SeriesSamples {
        labels: vec![Label::new("__name__", name)],
        samples: vec![Sample { t, v }],
    };
    let batch = WriteBatch {
        series: vec![
            s("ok_a", 10_000_000, 1.0),
            SeriesSamples {
                labels: vec![Label::new("no_name", "x")],
                samples: vec![Sample { t: 1, v: 1.0 }],
            },
            s("ok_b", 10_000_000, 2.0),
        ],
        received_ms: None,
    };
    let via = c.node(2);
    let r = propose_retry(
        &via,
        Command::Metrics {
            tenant: DEFAULT_TENANT.into(),
            batch,
        },
    )
    .await;
    // The engine rejects a sample at an existing timestamp with a different value.
    let dup = Command::Metrics {
        tenant: DEFAULT_TENANT.into(),
        batch: WriteBatch {
            series: vec![s("ok_a", 10_000_000, 5.0)],
            received_ms: None,
        },
    };
    let r2 = propose_retry(&via, dup).await;
    match (&r[0], &r2[0]) {
        (
            CommandResult::Written {
                samples_accepted: 2,
                rejections,
                ..
            },
            CommandResult::Written {
                samples_accepted: 0,
                rejections: r2,
                ..
            },
        ) => {
            assert_eq!(rejections.len(), 1);
            assert_eq!((rejections[0].series, rejections[0].sample), (1, None));
            assert!(
                rejections[0].reason.contains("invalid series"),
                "{}",
                rejections[0].reason
            );
            assert_eq!((r2[0].series, r2[0].sample), (0, Some(0)));
            assert!(r2[0].reason.contains("duplicate"), "{}", r2[0].reason);
        }
        other => panic!("unexpected results {other:?}"),
    }
    // An invalid tenant is refused before it reaches the log.
    let last = c.node(1).status().last_log_index;
    let r = via
        .propose(vec![Command::Metrics {
            tenant: "../x".into(),
            batch: WriteBatch::default(),
        }])
        .await
        .unwrap();
    assert!(matches!(&r[0], CommandResult::Refused { .. }), "{r:?}");
    assert_eq!(
        c.node(1).status().last_log_index,
        last,
        "nothing entered the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_node_catches_up_from_a_snapshot() {
    // Snapshots every 20 entries, so the log behind them is purged and node 4 needs one.
    let c = Cluster::start(3, 20).await;
    let leader = c.wait_leader(&[1, 2, 3]).await;
    for key in 0..150u64 {
        propose_retry(&c.node(leader), write(key, 1000 + key as i64)).await;
    }
    wait_until("the leader purged its log behind a snapshot", || {
        c.node(leader).raft().metrics().borrow().purged.is_some()
    })
    .await;
    c.open(4).await;
    c.node(leader).add_learner(4, "sim-4").await.unwrap();
    let state = c.wait_converged(&[1, 2, 3, 4]).await;
    assert_eq!(state.len(), 150);
    assert!(
        c.node(4).raft().metrics().borrow().snapshot.is_some(),
        "node 4 installed a snapshot"
    );
    // The learner keeps receiving the log after the snapshot.
    propose_retry(&c.node(leader), write(1000, 9999)).await;
    assert_eq!(c.wait_converged(&[1, 2, 3, 4]).await.len(), 151);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_linearizable_read_on_a_follower_sees_every_acknowledged_write() {
    let c = Cluster::start(3, 10_000).await;
    let leader = c.wait_leader(&[1, 2, 3]).await;
    let follower = c.node([1, 2, 3].into_iter().find(|i| *i != leader).unwrap());
    for key in 0..30u64 {
        propose_retry(&c.node(leader), write(key, 1000 + key as i64)).await;
        // Right after the acknowledgement: the read index makes the follower wait until it
        // has applied everything the leader had committed.
        follower.read_barrier().await.unwrap();
        assert_eq!(dump(&follower).len() as u64, key + 1, "after write {key}");
    }
    // Without a leader there is no read index: the read fails retriably.
    c.router.isolate(follower.id());
    let err = follower.read_barrier().await.unwrap_err();
    assert!(err.is_retriable(), "{err}");
    c.router.heal();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn removing_a_node_shrinks_the_cluster_and_writes_go_on() {
    let c = Cluster::start(3, 10_000).await;
    let leader = c.wait_leader(&[1, 2, 3]).await;
    propose_retry(&c.node(leader), write(1, 1000)).await;
    let gone = [1, 2, 3].into_iter().find(|i| *i != leader).unwrap();
    c.node(leader).remove_node(gone).await.unwrap();
    let st = c.node(leader).status();
    assert!(
        !st.voters.contains(&gone) && !st.learners.contains(&gone),
        "{st:?}"
    );
    assert_eq!(st.voters.len(), 2);
    // With the node gone (crashed for good), the two remaining voters still make a quorum.
    c.crash(gone).await;
    let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|i| *i != gone).collect();
    propose_retry(&c.node(leader), write(2, 2000)).await;
    assert_eq!(c.wait_converged(&rest).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metadata_is_replicated_kept_across_restarts_and_sent_in_snapshots() {
    use o11y_raft::MetadataEntry;
    let entry = |metric: &str, kind: &str, help: &str| MetadataEntry {
        metric: metric.into(),
        kind: kind.into(),
        help: help.into(),
        unit: String::new(),
    };
    // Snapshots every 20 entries: the metadata entries are purged from the log, so a restart
    // and a new node can only get them from the METADATA file and the snapshot.
    let c = Cluster::start(3, 20).await;
    let leader = c.wait_leader(&[1, 2, 3]).await;
    let follower = [1, 2, 3].into_iter().find(|i| *i != leader).unwrap();
    let meta = Command::Metadata {
        tenant: DEFAULT_TENANT.into(),
        entries: vec![
            entry("up", "gauge", "old help"),
            entry("up", "gauge", "1 if the target is up"),
            entry("http_requests_total", "counter", "requests"),
            entry("", "counter", "no family name"),
        ],
    };
    let r = propose_retry(&c.node(follower), meta).await;
    match &r[0] {
        CommandResult::Written { rejections, .. } => {
            assert_eq!(rejections.len(), 1, "{r:?}");
            assert_eq!(rejections[0].series, 3);
        }
        other => panic!("unexpected {other:?}"),
    }
    let want = vec![
        entry("http_requests_total", "counter", "requests"),
        entry("up", "gauge", "1 if the target is up"),
    ];
    for id in [1, 2, 3] {
        let n = c.node(id);
        wait_until("every node applied the metadata", || {
            n.metadata().list(DEFAULT_TENANT) == want
        })
        .await;
    }
    for key in 0..80u64 {
        propose_retry(&c.node(leader), write(key, 1000 + key as i64)).await;
    }
    wait_until("the leader purged its log behind a snapshot", || {
        c.node(leader).raft().metrics().borrow().purged.is_some()
    })
    .await;
    c.wait_converged(&[1, 2, 3]).await;
    c.crash(follower).await;
    let n = c.open(follower).await;
    wait_until("the restarted node has the metadata back", || {
        n.metadata().list(DEFAULT_TENANT) == want
    })
    .await;
    c.open(4).await;
    c.node(leader).add_learner(4, "sim-4").await.unwrap();
    c.wait_converged(&[1, 2, 3, 4]).await;
    assert!(c.node(4).raft().metrics().borrow().snapshot.is_some());
    assert_eq!(c.node(4).metadata().list(DEFAULT_TENANT), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn membership_changes_asked_of_a_follower_go_through_the_leader() {
    let c = Cluster::start(3, 10_000).await;
    let leader = c.wait_leader(&[1, 2, 3]).await;
    propose_retry(&c.node(leader), write(1, 1000)).await;
    let follower = c.node([1, 2, 3].into_iter().find(|i| *i != leader).unwrap());

    // A fourth node joins through a follower: learner, caught up, then voter.
    c.open(4).await;
    follower.add_voter(4, "sim-4").await.unwrap();
    let st = c.node(leader).status();
    assert_eq!(st.voters, vec![1, 2, 3, 4], "{st:?}");
    assert_eq!(c.wait_converged(&[1, 2, 3, 4]).await.len(), 1);
    // Again: a voter at the same address is left alone.
    follower.add_voter(4, "sim-4").await.unwrap();
    assert_eq!(c.node(leader).status().voters, vec![1, 2, 3, 4]);

    // Refusals say what is wrong and are not retriable.
    let refused = |r: Result<(), MembershipError>, want: &str| {
        let e = r.unwrap_err();
        assert!(!e.is_retriable(), "{e}");
        assert!(e.to_string().contains(want), "{e}");
    };
    refused(
        follower.add_voter(4, "sim-elsewhere").await,
        "already a member at sim-4",
    );
    refused(
        follower.add_voter(5, "sim-4").await,
        "already belongs to node 4",
    );
    refused(follower.add_voter(0, "sim-0").await, "at least 1");
    refused(follower.remove_member(9).await, "node 9 is not a member");

    // Removal through a follower, then the cluster still commits.
    follower.remove_member(4).await.unwrap();
    let st = c.node(leader).status();
    assert_eq!((st.voters, st.learners), (vec![1, 2, 3], vec![]));
    propose_retry(&follower, write(2, 2000)).await;
    assert_eq!(c.wait_converged(&[1, 2, 3]).await.len(), 2);

    // The leader itself can be removed (asked of a follower): the other two elect a leader.
    follower.remove_member(leader).await.unwrap();
    let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|i| *i != leader).collect();
    let new_leader = c.wait_leader(&rest).await;
    assert_ne!(new_leader, leader);
    assert_eq!(c.node(new_leader).status().voters, rest);
    propose_retry(&follower, write(3, 3000)).await;
    assert_eq!(c.wait_converged(&rest).await.len(), 3);

    // Without a leader a change fails retriably (asked of an isolated follower).
    let cut_off = c.node(rest.into_iter().find(|i| *i != new_leader).unwrap());
    c.router.isolate(cut_off.id());
    wait_until("the isolated follower loses its leader", || {
        cut_off.status().leader.is_none()
    })
    .await;
    let e = cut_off.add_voter(6, "sim-6").await.unwrap_err();
    assert!(e.is_retriable(), "{e}");
    c.router.heal();
}
