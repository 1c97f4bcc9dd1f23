//! A cluster of in-process nodes on a `SimRouter`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use o11y_raft::{Command, CommandResult, NodeConfig, RaftNode, SimRouter, Transport};
use o11y_tsdb::matcher::{MatchOp, Matcher};
use o11y_tsdb::DEFAULT_TENANT;
use tempfile::TempDir;

pub const DEADLINE: Duration = Duration::from_secs(30);

pub struct Cluster {
    pub router: Arc<SimRouter>,
    pub dir: TempDir,
    pub snapshot_every: u64,
}

pub fn config(dir: &std::path::Path, id: u64, snapshot_every: u64) -> NodeConfig {
    let mut c = NodeConfig::new(id, format!("sim-{id}"), dir.join(format!("n{id}")));
    c.heartbeat_ms = 50;
    c.election_min_ms = 300;
    c.election_max_ms = 600;
    c.snapshot_every_entries = snapshot_every;
    c.keep_log_after_snapshot = snapshot_every.min(5);
    c.propose_timeout = Duration::from_secs(5);
    c
}

impl Cluster {
    /// Starts `n` nodes: node 1 bootstraps, the others join as learners and are promoted.
    pub async fn start(n: u64, snapshot_every: u64) -> Cluster {
        let c = Cluster {
            router: SimRouter::new(),
            dir: tempfile::tempdir().unwrap(),
            snapshot_every,
        };
        let first = c.open(1).await;
        first.bootstrap().await.unwrap();
        wait_until("node 1 leads", || first.status().role == "leader").await;
        for id in 2..=n {
            c.open(id).await;
            first.add_learner(id, &format!("sim-{id}")).await.unwrap();
        }
        if n > 1 {
            first
                .change_membership((1..=n).collect::<BTreeSet<_>>(), false)
                .await
                .unwrap();
        }
        c
    }

    /// Opens (or reopens after a crash) node `id` and connects it to the router.
    pub async fn open(&self, id: u64) -> Arc<RaftNode> {
        let node = RaftNode::open(
            config(self.dir.path(), id, self.snapshot_every),
            Transport::Sim(self.router.clone()),
        )
        .await
        .unwrap();
        self.router.register(node.clone());
        node
    }

    pub fn node(&self, id: u64) -> Arc<RaftNode> {
        self.router
            .node(id)
            .unwrap_or_else(|| panic!("node {id} is down"))
    }

    /// Crashes a node: it leaves the network and stops; its files stay.
    pub async fn crash(&self, id: u64) {
        let n = self.router.unregister(id).expect("node up");
        n.raft().shutdown().await.unwrap();
    }

    /// The leader as every live node in `among` agrees on it.
    pub async fn wait_leader(&self, among: &[u64]) -> u64 {
        let mut leader = 0;
        wait_until("a leader that every live node knows", || {
            let views: Vec<Option<u64>> = among
                .iter()
                .map(|i| self.node(*i).status().leader)
                .collect();
            match views[0] {
                Some(l) if among.contains(&l) && views.iter().all(|v| *v == Some(l)) => {
                    leader = l;
                    self.node(l).status().role == "leader"
                }
                _ => false,
            }
        })
        .await;
        leader
    }

    /// Waits until the nodes have applied the same index and hold the same data.
    pub async fn wait_converged(&self, ids: &[u64]) -> Vec<(String, Vec<(i64, u64)>)> {
        let mut state = Vec::new();
        wait_until("nodes converge", || {
            let applied: Vec<u64> = ids
                .iter()
                .map(|i| self.node(*i).status().applied_index)
                .collect();
            let last: Vec<u64> = ids
                .iter()
                .map(|i| self.node(*i).status().last_log_index)
                .collect();
            if applied.iter().any(|a| *a != applied[0]) || last.iter().any(|l| *l != applied[0]) {
                return false;
            }
            let dumps: Vec<_> = ids.iter().map(|i| dump(&self.node(*i))).collect();
            if dumps.iter().all(|d| *d == dumps[0]) {
                state = dumps[0].clone();
                true
            } else {
                false
            }
        })
        .await;
        state
    }
}

/// Polls `cond` every 10 ms until it holds; panics naming `what` after the deadline.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every series of the default tenant: labels text and (t, value bits).
pub fn dump(node: &RaftNode) -> Vec<(String, Vec<(i64, u64)>)> {
    let all = Matcher::new(MatchOp::Regex, "__name__", ".+").unwrap();
    node.db()
        .select(DEFAULT_TENANT, &[all], i64::MIN, i64::MAX)
        .unwrap()
        .iter()
        .map(|s| {
            (
                s.labels().to_string(),
                s.samples()
                    .unwrap()
                    .into_iter()
                    .map(|(t, v)| (t, v.to_bits()))
                    .collect(),
            )
        })
        .collect()
}

/// One write: series `w{key}` with one sample at `t`.
pub fn write(key: u64, t: i64) -> Command {
    o11y_raft::sim::key_write(key, t)
}

/// Proposes through `node`, retrying retriable errors until the deadline.
pub async fn propose_retry(node: &RaftNode, c: Command) -> Vec<CommandResult> {
    let end = Instant::now() + DEADLINE;
    loop {
        match node.propose(vec![c.clone()]).await {
            Ok(r) => return r,
            // Client backoff before retrying (as a remote_write sender would).
            Err(e) if e.is_retriable() && Instant::now() < end => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("proposal failed: {e}"),
        }
    }
}

pub fn accepted(r: &[CommandResult]) -> u64 {
    r.iter()
        .map(|x| match x {
            CommandResult::Written {
                samples_accepted, ..
            } => *samples_accepted,
            _ => 0,
        })
        .sum()
}
