//! An in-process network for cluster tests: nodes call each other's Raft handles directly
//! through a router that injects faults — dropped messages, delays, isolated nodes and
//! partitions — and that nodes leave when they crash and rejoin when they restart.
//!
//! ```text
//! node A ─ Peer(Sim) ─► SimRouter::deliver(from, to) ─ fault check ─► node B's Raft
//!                          blocked / isolated: Unreachable    drop: NetworkError
//!                          delay: the message waits before delivery
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use openraft::error::{Fatal, NetworkError, RPCError, RaftError, StreamingError, Unreachable};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use parking_lot::Mutex;

use crate::command::{Request, Response};
use crate::network::{deliver_snapshot, RpcResult};
use crate::node::{ProposeError, RaftNode};
use crate::pb;
use crate::TypeConfig;

/// Why a simulated message was not delivered.
#[derive(Debug, thiserror::Error)]
#[error("simulated network: {0}")]
pub struct SimError(pub String);

#[derive(Default)]
struct Faults {
    /// Nodes cut off from everyone.
    isolated: HashSet<u64>,
    /// Directed links that drop everything.
    blocked: HashSet<(u64, u64)>,
    /// Probability (per mille) that a message is dropped.
    drop_per_mille: u32,
    delay: Duration,
    rng: u64,
}

/// The router. Register nodes after opening them with `Transport::Sim(router)`.
#[derive(Default)]
pub struct SimRouter {
    nodes: Mutex<HashMap<u64, Arc<RaftNode>>>,
    faults: Mutex<Faults>,
}

impl SimRouter {
    pub fn new() -> Arc<SimRouter> {
        let r = SimRouter::default();
        r.faults.lock().rng = 0x9e37_79b9_7f4a_7c15;
        Arc::new(r)
    }

    pub fn register(&self, node: Arc<RaftNode>) {
        self.nodes.lock().insert(node.id(), node);
    }

    /// Removes a node (it crashed or was stopped): messages to it fail as unreachable.
    pub fn unregister(&self, id: u64) -> Option<Arc<RaftNode>> {
        self.nodes.lock().remove(&id)
    }

    pub fn node(&self, id: u64) -> Option<Arc<RaftNode>> {
        self.nodes.lock().get(&id).cloned()
    }

    /// Cuts `id` off from every other node (both directions).
    pub fn isolate(&self, id: u64) {
        self.faults.lock().isolated.insert(id);
    }

    /// Splits the nodes into groups that cannot reach each other.
    pub fn partition(&self, groups: &[&[u64]]) {
        let mut f = self.faults.lock();
        for (i, a) in groups.iter().enumerate() {
            for (j, b) in groups.iter().enumerate() {
                if i != j {
                    for x in a.iter() {
                        for y in b.iter() {
                            f.blocked.insert((*x, *y));
                        }
                    }
                }
            }
        }
    }

    /// Removes isolation and partitions (drops and delays stay).
    pub fn heal(&self) {
        let mut f = self.faults.lock();
        f.isolated.clear();
        f.blocked.clear();
    }

    /// Drops each message with probability `per_mille`/1000.
    pub fn set_drop_rate(&self, per_mille: u32) {
        self.faults.lock().drop_per_mille = per_mille.min(1000);
    }

    /// Delays every message by `d`.
    pub fn set_delay(&self, d: Duration) {
        self.faults.lock().delay = d;
    }

    /// Checks the faults for a message `from` → `to`, waits out the delay, and returns the
    /// target.
    async fn route(&self, from: u64, to: u64) -> Result<Arc<RaftNode>, (bool, SimError)> {
        let delay = {
            let mut f = self.faults.lock();
            if f.isolated.contains(&from)
                || f.isolated.contains(&to)
                || f.blocked.contains(&(from, to))
            {
                return Err((true, SimError(format!("{from} cannot reach {to}"))));
            }
            // xorshift64
            let mut x = f.rng;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            f.rng = x;
            if (x % 1000) < u64::from(f.drop_per_mille) {
                return Err((false, SimError(format!("message {from} → {to} dropped"))));
            }
            f.delay
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.node(to)
            .ok_or_else(|| (true, SimError(format!("node {to} is down"))))
    }

    fn rpc_err<E: std::error::Error>(
        (unreachable, e): (bool, SimError),
    ) -> RPCError<u64, openraft::BasicNode, RaftError<u64, E>> {
        if unreachable {
            RPCError::Unreachable(Unreachable::new(&e))
        } else {
            RPCError::Network(NetworkError::new(&e))
        }
    }

    pub(crate) async fn append_entries(
        &self,
        from: u64,
        to: u64,
        rpc: AppendEntriesRequest<TypeConfig>,
    ) -> RpcResult<AppendEntriesResponse<u64>> {
        let n = self.route(from, to).await.map_err(Self::rpc_err)?;
        n.raft()
            .append_entries(rpc)
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }

    pub(crate) async fn vote(
        &self,
        from: u64,
        to: u64,
        rpc: VoteRequest<u64>,
    ) -> RpcResult<VoteResponse<u64>> {
        let n = self.route(from, to).await.map_err(Self::rpc_err)?;
        n.raft()
            .vote(rpc)
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }

    pub(crate) async fn snapshot<S>(
        &self,
        from: u64,
        to: u64,
        chunks: S,
    ) -> Result<SnapshotResponse<u64>, StreamingError<TypeConfig, Fatal<u64>>>
    where
        S: Stream<Item = std::io::Result<pb::SnapshotChunk>> + Send,
    {
        let n = self.route(from, to).await.map_err(|(u, e)| {
            if u {
                StreamingError::Unreachable(Unreachable::new(&e))
            } else {
                StreamingError::Network(NetworkError::new(&e))
            }
        })?;
        deliver_snapshot(&n, Box::pin(chunks)).await
    }

    /// A follower's proposal forwarded to the leader.
    pub(crate) async fn forward(
        &self,
        from: u64,
        to: u64,
        req: Request,
    ) -> Result<Response, ProposeError> {
        let n = self
            .route(from, to)
            .await
            .map_err(|(_, e)| ProposeError::Forward(e.to_string()))?;
        n.propose_local(req).await
    }

    /// The node `to` as reached from `from` (faults apply), for membership changes a follower
    /// hands to the leader.
    pub(crate) async fn reach(&self, from: u64, to: u64) -> Result<Arc<RaftNode>, ProposeError> {
        self.route(from, to)
            .await
            .map_err(|(_, e)| ProposeError::Forward(e.to_string()))
    }

    pub(crate) async fn read_index(&self, from: u64, to: u64) -> Result<u64, ProposeError> {
        let n = self
            .route(from, to)
            .await
            .map_err(|(_, e)| ProposeError::Forward(e.to_string()))?;
        n.read_index_local().await
    }
}

/// The write the cluster tests and the node binary's client use: series `w{key="KEY"}` of the
/// default tenant with one sample (`t`, value `key`). Each key is a distinct series, so a
/// checker can tell exactly which acknowledged writes a node holds.
pub fn key_write(key: u64, t: i64) -> crate::command::Command {
    use o11y_tsdb::labels::Label;
    use o11y_tsdb::{Sample, SeriesSamples, WriteBatch, DEFAULT_TENANT};
    crate::command::Command::Metrics {
        tenant: DEFAULT_TENANT.into(),
        batch: WriteBatch {
            series: vec![SeriesSamples {
                labels: vec![
                    Label::new("__name__", "w"),
                    Label::new("key", key.to_string()),
                ],
                samples: vec![Sample { t, v: key as f64 }],
            }],
            received_ms: None,
        },
    }
}
