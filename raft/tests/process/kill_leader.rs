//! kill -9 of the leader, twenty times, under continuous write load.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_leader_twenty_times_loses_no_acknowledged_write() {
    let mut c = Cluster::start(11, &[]).await;
    let clients: Vec<_> = c.nodes.iter().map(|n| n.client()).collect();
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let acks = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let clients = clients.clone();
            let (acked, acks, stop) = (acked.clone(), acks.clone(), stop.clone());
            tokio::spawn(async move {
                let end = Instant::now() + Duration::from_secs(600);
                for seq in 0..1_000_000u64 {
                    if stop.load(Ordering::Relaxed) || Instant::now() > end {
                        break;
                    }
                    let key = w * 10_000_000 + seq;
                    // Spread over the nodes; a dead node fails fast and the next key goes elsewhere.
                    let client = &clients[((seq + w) % 3) as usize];
                    if write(client, key).await {
                        acked.lock().unwrap().insert(key);
                        acks.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    let mut failovers = Vec::new();
    for round in 0..20 {
        let leader = c.leader().await;
        // Some acknowledged load under this leader first.
        let base = acks.load(Ordering::Relaxed);
        wait_until_async("writes under the current leader", || {
            let acks = acks.clone();
            async move { acks.load(Ordering::Relaxed) >= base + 5 }
        })
        .await;
        let killed_at = Instant::now();
        c.node(leader).kill9();
        let base = acks.load(Ordering::Relaxed);
        let others: Vec<_> = c
            .nodes
            .iter()
            .filter(|n| n.id != leader)
            .map(|n| n.client())
            .collect();
        wait_until_async("a new leader", || {
            let others = others.clone();
            async move {
                for o in &others {
                    if o.admin(status_req())
                        .await
                        .is_ok_and(|s| s.role == "leader")
                    {
                        return true;
                    }
                }
                false
            }
        })
        .await;
        let elected = killed_at.elapsed();
        wait_until_async("a write acknowledged after the kill", || {
            let acks = acks.clone();
            async move { acks.load(Ordering::Relaxed) > base }
        })
        .await;
        failovers.push(killed_at.elapsed());
        c.node(leader).start(false, &[]);
        let restarted = c.node(leader).client();
        wait_until_async("the restarted node rejoins", || {
            let r = restarted.clone();
            async move { r.admin(status_req()).await.is_ok_and(|s| s.leader_id != 0) }
        })
        .await;
        eprintln!(
            "round {round}: killed leader {leader}, new leader after {elected:?}, writes resumed after {:?}",
            failovers[round]
        );
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let state = c.converged().await;
    let keys = state.keys();
    let acked = acked.lock().unwrap().clone();
    let lost: Vec<&u64> = acked.difference(&keys).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert!(
        acked.len() > 100,
        "only {} writes acknowledged",
        acked.len()
    );
    failovers.sort();
    eprintln!(
        "acknowledged {} writes; failover median {:?}, max {:?}",
        acked.len(),
        failovers[failovers.len() / 2],
        failovers[failovers.len() - 1]
    );
}
