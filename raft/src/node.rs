//! A running Raft node: the log store, the state machine and openraft, plus what clients call —
//! proposals (validated, coalesced, forwarded to the leader), reads (local or linearizable) and
//! membership changes.
//!
//! ```text
//! propose(commands) ─► validate ─► encode once ─► leader? ──yes──► coalescer ─► client_write
//!                                        │ no                        (merges queued requests
//!                                        ▼                            into one entry, up to
//!                              forward to leader (Propose RPC)        max_entry_bytes)
//! ```
//!
//! A proposal returns after its entry is committed on a quorum (fsync'd there) and applied
//! here or on the leader, with the engine's per-item results mapped back to the caller's
//! numbering. Without a leader, or on a leader that has not heard from a quorum within an
//! election timeout (a minority partition), it fails with a retriable [`ProposeError`].
//!
//! Membership: [`RaftNode::add_voter`] (learner, wait until it has the log, then voter) and
//! [`RaftNode::remove_member`] run on the leader, one at a time; asked of another node they
//! are forwarded to the leader (gRPC `Admin`), failing with a [`MembershipError`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use o11y_tsdb::Db;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, Raft, ServerState};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::command::{validate, Command, CommandResult, Request, Response, Validated};
use crate::log_store::{LogOptions, LogStore};
use crate::network::{Network, Transport};
use crate::state_machine::StateMachine;
use crate::TypeConfig;

/// Node configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: u64,
    /// Address other nodes reach this node's gRPC on (`host:port`).
    pub addr: String,
    /// Data directory: `log/` and `sm/` below it.
    pub dir: PathBuf,
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    /// Build a snapshot (and purge the log behind it) after this many entries.
    pub snapshot_every_entries: u64,
    /// When the engine is checkpointed between snapshots (bounds the replay after a crash).
    pub checkpoint: crate::state_machine::CheckpointPolicy,
    /// Entries kept in the log behind a snapshot, so that a briefly lagging follower catches
    /// up from the log instead of a snapshot.
    pub keep_log_after_snapshot: u64,
    /// Coalesced entries grow up to this size.
    pub max_entry_bytes: usize,
    /// Entries in flight from the coalescer at once.
    pub max_inflight: usize,
    /// How long a proposal may take before it fails as retriable.
    pub propose_timeout: Duration,
    /// Timeout of one node-to-node RPC (snapshots get ten times this per chunk stream).
    pub rpc_timeout: Duration,
    /// How long the leader waits for a joining node to catch up (as a learner) before it
    /// gives up on promoting it to voter ([`RaftNode::add_voter`]; the joiner retries).
    pub join_catch_up_timeout: Duration,
    pub tsdb: o11y_tsdb::Options,
    pub log: LogOptions,
}

impl NodeConfig {
    pub fn new(id: u64, addr: impl Into<String>, dir: impl Into<PathBuf>) -> NodeConfig {
        NodeConfig {
            id,
            addr: addr.into(),
            dir: dir.into(),
            // A follower starts an election after the leader lease (election_max) plus a random
            // election timeout without heartbeats: 0.75–1 s, up to 2.5 s when the survivors'
            // logs differ (openraft waits 2 × election_max more for the shorter log).
            // openraft also bounds every AppendEntries call by the heartbeat interval: at 50 ms
            // a three-node cluster on two shared cores under remote_write load timed out its
            // appends (which include the follower's fsync) and backed off for 1.6 s at a time
            // (ingest-bench: 14–48k samples/s with 503s); at 100 ms it runs 133k/s, no errors.
            heartbeat_ms: 100,
            election_min_ms: 250,
            election_max_ms: 500,
            snapshot_every_entries: 20_000,
            keep_log_after_snapshot: 1000,
            checkpoint: Default::default(),
            max_entry_bytes: 1 << 20,
            max_inflight: 64,
            propose_timeout: Duration::from_secs(5),
            rpc_timeout: Duration::from_secs(5),
            join_catch_up_timeout: Duration::from_secs(60),
            tsdb: o11y_tsdb::Options::default(),
            log: LogOptions::default(),
        }
    }
}

/// Why a proposal or read failed. All but `Fatal` are worth retrying (HTTP 503).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ProposeError {
    #[error("no leader (election in progress or this node is in a minority partition)")]
    NoLeader,
    #[error("the leader has lost contact with a quorum")]
    NoQuorum,
    #[error("timed out after {0:?} waiting for the entry to commit")]
    Timeout(Duration),
    #[error("forwarding to the leader failed: {0}")]
    Forward(String),
    #[error("fatal: {0}")]
    Fatal(String),
}

impl ProposeError {
    /// True when a retry (after a short backoff) may succeed.
    pub fn is_retriable(&self) -> bool {
        !matches!(self, ProposeError::Fatal(_))
    }
}

/// Errors opening a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Log(#[from] crate::log_store::LogError),
    #[error(transparent)]
    StateMachine(#[from] crate::state_machine::SmError),
    #[error("raft: {0}")]
    Raft(String),
}

/// Why a membership change ([`RaftNode::add_voter`], [`RaftNode::remove_member`]) failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum MembershipError {
    /// No leader, no quorum, the leader unreachable: retry.
    #[error(transparent)]
    Unavailable(ProposeError),
    /// An earlier change is not committed yet: retry.
    #[error("another membership change is in progress")]
    InProgress,
    /// The joining node did not receive the log in time; it stays a learner until a retry
    /// promotes it.
    #[error("node {id} has not caught up with the leader's log within {waited:?}; it stays a learner until the join is retried")]
    CatchUp { id: u64, waited: Duration },
    /// The change cannot succeed as asked (conflicting address, unknown node, last voter).
    #[error("{0}")]
    Refused(String),
    #[error("fatal: {0}")]
    Fatal(String),
}

impl MembershipError {
    /// True when a retry (after a short backoff) may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            MembershipError::Unavailable(e) => e.is_retriable(),
            MembershipError::InProgress | MembershipError::CatchUp { .. } => true,
            MembershipError::Refused(_) | MembershipError::Fatal(_) => false,
        }
    }
}

impl From<ProposeError> for MembershipError {
    fn from(e: ProposeError) -> Self {
        match e {
            ProposeError::Fatal(m) => MembershipError::Fatal(m),
            other => MembershipError::Unavailable(other),
        }
    }
}

/// One member of the cluster as the membership config names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: u64,
    /// Its node-to-node gRPC address.
    pub addr: String,
    /// A voter (else a learner).
    pub voter: bool,
}

struct Pending {
    req: Request,
    commands: usize,
    tx: oneshot::Sender<Result<Response, ProposeError>>,
}

/// A node's view of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub id: u64,
    pub role: String,
    pub term: u64,
    pub leader: Option<u64>,
    pub leader_addr: Option<String>,
    pub last_log_index: u64,
    pub applied_index: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    pub membership: String,
}

/// A running node.
pub struct RaftNode {
    cfg: NodeConfig,
    raft: Raft<TypeConfig>,
    sm: StateMachine,
    log: LogStore,
    transport: Transport,
    coalescer: mpsc::Sender<Pending>,
    forward_clients: Mutex<HashMap<String, crate::network::PeerClient>>,
    /// Serializes membership changes started on this node (openraft refuses a change while
    /// the previous one is uncommitted).
    membership_lock: tokio::sync::Mutex<()>,
}

impl RaftNode {
    /// Opens the node's storage and starts openraft. The node serves nothing until the caller
    /// starts its gRPC server (`network::serve`) or registers it with a simulated router.
    pub async fn open(cfg: NodeConfig, transport: Transport) -> Result<Arc<RaftNode>, NodeError> {
        let (log, report) = LogStore::open(cfg.dir.join("log"), cfg.log.clone())?;
        if let Some((path, at)) = &report.truncated_tail {
            tracing::warn!(path = %path.display(), offset = at, "raft log: torn tail truncated");
        }
        let sm = StateMachine::open(cfg.dir.join("sm"), cfg.tsdb.clone())?;
        log.set_purge_gate(sm.durable_index());
        sm.set_checkpoint_policy(cfg.checkpoint);
        let rcfg = openraft::Config {
            cluster_name: "o11y".into(),
            heartbeat_interval: cfg.heartbeat_ms,
            election_timeout_min: cfg.election_min_ms,
            election_timeout_max: cfg.election_max_ms,
            install_snapshot_timeout: cfg.rpc_timeout.as_millis() as u64 * 10,
            max_payload_entries: 256,
            replication_lag_threshold: cfg.snapshot_every_entries,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(cfg.snapshot_every_entries),
            max_in_snapshot_log_to_keep: cfg.keep_log_after_snapshot,
            purge_batch_size: (cfg.snapshot_every_entries / 4).clamp(1, 256),
            ..Default::default()
        };
        let rcfg = Arc::new(
            rcfg.validate()
                .map_err(|e| NodeError::Raft(e.to_string()))?,
        );
        let net = Network::new(cfg.id, transport.clone(), cfg.rpc_timeout);
        let raft = Raft::new(cfg.id, rcfg, net, log.clone(), sm.clone())
            .await
            .map_err(|e| NodeError::Raft(e.to_string()))?;
        let (tx, rx) = mpsc::channel(4096);
        let node = Arc::new(RaftNode {
            cfg,
            raft,
            sm,
            log,
            transport,
            coalescer: tx,
            forward_clients: Mutex::new(HashMap::new()),
            membership_lock: tokio::sync::Mutex::new(()),
        });
        tokio::spawn(coalesce(
            node.raft.clone(),
            rx,
            node.cfg.max_entry_bytes,
            node.cfg.max_inflight,
        ));
        Ok(node)
    }

    pub fn id(&self) -> u64 {
        self.cfg.id
    }

    pub fn config(&self) -> &NodeConfig {
        &self.cfg
    }

    /// The openraft handle (RPC handlers use it).
    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    pub fn state_machine(&self) -> &StateMachine {
        &self.sm
    }

    pub fn log_store(&self) -> &LogStore {
        &self.log
    }

    /// The local metrics engine, for local (possibly stale) reads.
    pub fn db(&self) -> Arc<Db> {
        self.sm.db()
    }

    /// The replicated metric metadata of this node's state machine.
    pub fn metadata(&self) -> Arc<crate::metadata::MetadataStore> {
        self.sm.metadata()
    }

    /// Makes this node a one-member cluster if it has never been initialized. Idempotent.
    pub async fn bootstrap(&self) -> Result<(), NodeError> {
        if self
            .raft
            .is_initialized()
            .await
            .map_err(|e| NodeError::Raft(e.to_string()))?
        {
            return Ok(());
        }
        let mut m = BTreeMap::new();
        m.insert(self.cfg.id, BasicNode::new(self.cfg.addr.clone()));
        match self.raft.initialize(m).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(NodeError::Raft(e.to_string())),
        }
    }

    /// Proposes commands; returns one result per command once they are committed and applied.
    pub async fn propose(
        &self,
        commands: Vec<Command>,
    ) -> Result<Vec<CommandResult>, ProposeError> {
        let mut validated: Vec<Validated> = commands
            .into_iter()
            .map(|c| validate(c, &self.cfg.tsdb.limits))
            .collect();
        let has: Vec<bool> = validated.iter().map(|v| v.command.is_some()).collect();
        let valid: Vec<Command> = validated
            .iter_mut()
            .filter_map(|v| v.command.take())
            .collect();
        let resp = if valid.is_empty() {
            Response::default()
        } else {
            self.propose_request(Request::encode(&valid)).await?
        };
        let mut results = resp.results.into_iter();
        let mut out = Vec::with_capacity(validated.len());
        for (v, has) in validated.into_iter().zip(has) {
            if let Some(reason) = v.refused {
                out.push(CommandResult::Refused { reason });
                continue;
            }
            let r = if has { results.next() } else { None };
            out.push(match r {
                Some(CommandResult::Written {
                    samples_accepted,
                    series_created,
                    rejections,
                }) => {
                    let mut all = v.rejections;
                    all.extend(rejections.into_iter().map(|mut x| {
                        x.series = v.kept.get(x.series as usize).copied().unwrap_or(x.series);
                        x
                    }));
                    all.sort_by_key(|x| (x.series, x.sample));
                    CommandResult::Written {
                        samples_accepted,
                        series_created,
                        rejections: all,
                    }
                }
                Some(other) => other,
                None => CommandResult::Written {
                    samples_accepted: 0,
                    series_created: 0,
                    rejections: v.rejections,
                },
            });
        }
        Ok(out)
    }

    /// Proposes an encoded, validated request: locally when this node leads, else through the
    /// leader. Waits for a leader for up to the propose timeout.
    pub async fn propose_request(&self, req: Request) -> Result<Response, ProposeError> {
        let deadline = tokio::time::Instant::now() + self.cfg.propose_timeout;
        let mut last_err;
        loop {
            let (leader, leader_addr) = self.leader();
            let attempt = match leader {
                Some(l) if l == self.cfg.id => self.propose_local(req.clone()).await,
                Some(l) => match leader_addr {
                    Some(addr) => self.forward(l, &addr, req.clone()).await,
                    None => Err(ProposeError::NoLeader),
                },
                None => Err(ProposeError::NoLeader),
            };
            match attempt {
                Ok(r) => return Ok(r),
                Err(e) if !e.is_retriable() => return Err(e),
                Err(ProposeError::Timeout(d)) => return Err(ProposeError::Timeout(d)),
                Err(e) => last_err = e,
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(last_err);
            }
            // Wait for a (new) leader, bounded by the deadline.
            let wait = (deadline - now).min(Duration::from_millis(self.cfg.election_max_ms));
            let current = leader;
            let _ = self
                .raft
                .wait(Some(wait))
                .metrics(
                    |m| m.current_leader.is_some() && m.current_leader != current,
                    "leader change",
                )
                .await;
            if tokio::time::Instant::now() >= deadline {
                return Err(last_err);
            }
        }
    }

    /// Proposes on this node, which must lead. Used by followers' forwarded proposals.
    pub async fn propose_local(&self, req: Request) -> Result<Response, ProposeError> {
        {
            let m = self.raft.metrics().borrow().clone();
            if m.current_leader != Some(self.cfg.id) {
                return Err(ProposeError::NoLeader);
            }
            // A leader cut off from its quorum (minority side of a partition) refuses writes
            // rather than letting them hang until the partition heals.
            let voters = m.membership_config.membership().voter_ids().count();
            if voters > 1
                && m.millis_since_quorum_ack
                    .is_none_or(|ms| ms > self.cfg.election_max_ms)
            {
                return Err(ProposeError::NoQuorum);
            }
        }
        let commands = req.len().map_err(|e| ProposeError::Fatal(e.to_string()))?;
        let (tx, rx) = oneshot::channel();
        self.coalescer
            .send(Pending { req, commands, tx })
            .await
            .map_err(|_| ProposeError::Fatal("node is shutting down".into()))?;
        match tokio::time::timeout(self.cfg.propose_timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(ProposeError::Fatal("node is shutting down".into())),
            Err(_) => Err(ProposeError::Timeout(self.cfg.propose_timeout)),
        }
    }

    async fn forward(
        &self,
        leader: u64,
        addr: &str,
        req: Request,
    ) -> Result<Response, ProposeError> {
        match &self.transport {
            Transport::Sim(router) => router.forward(self.cfg.id, leader, req).await,
            Transport::Grpc => {
                let client = {
                    let mut c = self.forward_clients.lock();
                    c.entry(addr.to_string())
                        .or_insert_with(|| {
                            crate::network::PeerClient::new(addr, self.cfg.rpc_timeout)
                        })
                        .clone()
                };
                client.propose(req, self.cfg.propose_timeout).await
            }
        }
    }

    /// The current leader and its address, as this node knows them.
    pub fn leader(&self) -> (Option<u64>, Option<String>) {
        let m = self.raft.metrics().borrow().clone();
        let addr = m.current_leader.and_then(|l| {
            m.membership_config
                .membership()
                .get_node(&l)
                .map(|n| n.addr.clone())
        });
        (m.current_leader, addr)
    }

    /// Waits (event-driven, no polling) until some node is leader, at most `timeout`.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<u64, ProposeError> {
        self.raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "a leader")
            .await
            .ok()
            .and_then(|m| m.current_leader)
            .ok_or(ProposeError::NoLeader)
    }

    /// Waits until a read issued now would see every write acknowledged before it
    /// (read index): the leader confirms its leadership with a quorum and this node applies
    /// up to the leader's commit index.
    pub async fn read_barrier(&self) -> Result<(), ProposeError> {
        let index = match self.leader() {
            (Some(l), _) if l == self.cfg.id => self.read_index_local().await?,
            (Some(l), Some(addr)) => match &self.transport {
                Transport::Sim(router) => router.read_index(self.cfg.id, l).await?,
                Transport::Grpc => {
                    let client = crate::network::PeerClient::new(&addr, self.cfg.rpc_timeout);
                    client.read_index().await?
                }
            },
            _ => return Err(ProposeError::NoLeader),
        };
        self.raft
            .wait(Some(self.cfg.propose_timeout))
            .applied_index_at_least(Some(index), "read index")
            .await
            .map_err(|_| ProposeError::Timeout(self.cfg.propose_timeout))?;
        Ok(())
    }

    /// On the leader: the commit index a linearizable read must wait for.
    pub async fn read_index_local(&self) -> Result<u64, ProposeError> {
        match self.raft.get_read_log_id().await {
            Ok((read, _)) => Ok(read.map_or(0, |l| l.index)),
            Err(RaftError::APIError(_)) => Err(ProposeError::NoLeader),
            Err(RaftError::Fatal(f)) => Err(ProposeError::Fatal(f.to_string())),
        }
    }

    /// Adds a node as a learner (it receives the log but does not vote) and waits until it has
    /// caught up.
    pub async fn add_learner(&self, id: u64, addr: &str) -> Result<(), ProposeError> {
        self.raft
            .add_learner(id, BasicNode::new(addr), true)
            .await
            .map(|_| ())
            .map_err(write_err)
    }

    /// Sets the voters (joint consensus). Nodes leaving the voter set stay as learners when
    /// `keep_learners`.
    pub async fn change_membership(
        &self,
        voters: BTreeSet<u64>,
        keep_learners: bool,
    ) -> Result<(), ProposeError> {
        self.raft
            .change_membership(voters, keep_learners)
            .await
            .map(|_| ())
            .map_err(write_err)
    }

    /// Removes a node: from the voters if it votes, then from the learners.
    pub async fn remove_node(&self, id: u64) -> Result<(), ProposeError> {
        let m = self.raft.metrics().borrow().membership_config.clone();
        let voters: BTreeSet<u64> = m.membership().voter_ids().collect();
        if voters.contains(&id) {
            let rest: BTreeSet<u64> = voters.iter().copied().filter(|v| *v != id).collect();
            self.change_membership(rest, false).await?;
        }
        let mut set = BTreeSet::new();
        set.insert(id);
        match self
            .raft
            .change_membership(ChangeMembers::RemoveNodes(set), false)
            .await
        {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
                // Already gone.
                tracing::debug!(%e, "remove node");
                Ok(())
            }
            Err(e) => Err(write_err(e)),
        }
    }

    /// The members (voters and learners) with their addresses, as this node knows them.
    pub fn members(&self) -> Vec<Member> {
        let m = self.raft.metrics().borrow().membership_config.clone();
        let mem = m.membership();
        let voters: BTreeSet<u64> = mem.voter_ids().collect();
        mem.nodes()
            .map(|(id, n)| Member {
                id: *id,
                addr: n.addr.clone(),
                voter: voters.contains(id),
            })
            .collect()
    }

    /// Makes node `id` (reachable at `addr`) a voter: on the leader directly, from any other
    /// node through the leader. Idempotent: a voter at the same address is left alone.
    pub async fn add_voter(&self, id: u64, addr: &str) -> Result<(), MembershipError> {
        if id == 0 || addr.is_empty() {
            return Err(MembershipError::Refused(
                "a node to add needs an id of at least 1 and an address".into(),
            ));
        }
        match self.leader() {
            (Some(l), _) if l == self.cfg.id => self.add_voter_local(id, addr).await,
            (Some(l), Some(leader_addr)) => match &self.transport {
                Transport::Sim(router) => {
                    router
                        .reach(self.cfg.id, l)
                        .await?
                        .add_voter_local(id, addr)
                        .await
                }
                Transport::Grpc => {
                    let client =
                        crate::network::PeerClient::new(&leader_addr, self.cfg.rpc_timeout);
                    client
                        .add_voter(
                            id,
                            addr,
                            self.cfg.join_catch_up_timeout + self.cfg.rpc_timeout,
                        )
                        .await
                }
            },
            _ => Err(MembershipError::Unavailable(ProposeError::NoLeader)),
        }
    }

    /// On the leader: adds `id` as a learner, waits (up to `join_catch_up_timeout`) until it
    /// has the log up to that change, then makes it a voter.
    pub async fn add_voter_local(&self, id: u64, addr: &str) -> Result<(), MembershipError> {
        if id == 0 || addr.is_empty() {
            return Err(MembershipError::Refused(
                "a node to add needs an id of at least 1 and an address".into(),
            ));
        }
        let _serial = self.membership_lock.lock().await;
        self.ensure_leader()?;
        let members = self.members();
        if let Some(m) = members.iter().find(|m| m.id == id) {
            if m.addr != addr {
                return Err(MembershipError::Refused(format!(
                    "node {id} is already a member at {}; remove it first to change its address",
                    m.addr
                )));
            }
            if m.voter {
                return Ok(());
            }
        }
        if let Some(m) = members.iter().find(|m| m.addr == addr && m.id != id) {
            return Err(MembershipError::Refused(format!(
                "address {addr} already belongs to node {}",
                m.id
            )));
        }
        let resp = self
            .raft
            .add_learner(id, BasicNode::new(addr), false)
            .await
            .map_err(membership_err)?;
        let at = resp.log_id.index;
        let waited = self.cfg.join_catch_up_timeout;
        let caught_up = self
            .raft
            .wait(Some(waited))
            .metrics(
                |m| {
                    // Stop waiting as soon as this node no longer leads.
                    m.current_leader != Some(self.cfg.id)
                        || m.replication
                            .as_ref()
                            .and_then(|r| r.get(&id))
                            .and_then(|l| l.as_ref())
                            .is_some_and(|l| l.index >= at)
                },
                "the new learner has the log",
            )
            .await;
        self.ensure_leader()?;
        if caught_up.is_err() {
            return Err(MembershipError::CatchUp { id, waited });
        }
        let mut voters: BTreeSet<u64> = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .collect();
        voters.insert(id);
        self.raft
            .change_membership(voters, true)
            .await
            .map_err(membership_err)?;
        tracing::info!(node = id, %addr, "node joined the cluster as a voter");
        Ok(())
    }

    /// Removes node `id` from the cluster (voter or learner): on the leader directly, from
    /// any other node through the leader. Refuses unknown nodes and the last voter.
    pub async fn remove_member(&self, id: u64) -> Result<(), MembershipError> {
        match self.leader() {
            (Some(l), _) if l == self.cfg.id => self.remove_member_local(id).await,
            (Some(l), Some(leader_addr)) => match &self.transport {
                Transport::Sim(router) => {
                    router
                        .reach(self.cfg.id, l)
                        .await?
                        .remove_member_local(id)
                        .await
                }
                Transport::Grpc => {
                    let client =
                        crate::network::PeerClient::new(&leader_addr, self.cfg.rpc_timeout);
                    client.remove_member(id, self.cfg.propose_timeout * 2).await
                }
            },
            _ => Err(MembershipError::Unavailable(ProposeError::NoLeader)),
        }
    }

    /// On the leader: [`RaftNode::remove_member`].
    pub async fn remove_member_local(&self, id: u64) -> Result<(), MembershipError> {
        let _serial = self.membership_lock.lock().await;
        self.ensure_leader()?;
        let members = self.members();
        let Some(m) = members.iter().find(|m| m.id == id) else {
            let ids: Vec<String> = members.iter().map(|m| m.id.to_string()).collect();
            return Err(MembershipError::Refused(format!(
                "node {id} is not a member of the cluster (members: {})",
                ids.join(", ")
            )));
        };
        if m.voter && members.iter().filter(|m| m.voter).count() == 1 {
            return Err(MembershipError::Refused(format!(
                "node {id} is the only voter; the last voter cannot be removed"
            )));
        }
        if m.voter {
            let rest: BTreeSet<u64> = members
                .iter()
                .filter(|x| x.voter && x.id != id)
                .map(|x| x.id)
                .collect();
            self.raft
                .change_membership(rest, false)
                .await
                .map_err(membership_err)?;
        } else {
            self.raft
                .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
                .await
                .map_err(membership_err)?;
        }
        tracing::info!(node = id, "node removed from the cluster");
        Ok(())
    }

    fn ensure_leader(&self) -> Result<(), MembershipError> {
        if self.raft.metrics().borrow().current_leader == Some(self.cfg.id) {
            Ok(())
        } else {
            Err(MembershipError::Unavailable(ProposeError::NoLeader))
        }
    }

    /// This node's view of the cluster.
    pub fn status(&self) -> Status {
        let m = self.raft.metrics().borrow().clone();
        let mem = m.membership_config.membership();
        let leader_addr = m
            .current_leader
            .and_then(|l| mem.get_node(&l).map(|n| n.addr.clone()));
        Status {
            id: m.id,
            role: match m.state {
                ServerState::Leader => "leader",
                ServerState::Follower => "follower",
                ServerState::Candidate => "candidate",
                ServerState::Learner => "learner",
                ServerState::Shutdown => "shutdown",
            }
            .to_string(),
            term: m.current_term,
            leader: m.current_leader,
            leader_addr,
            last_log_index: m.last_log_index.unwrap_or(0),
            applied_index: m.last_applied.map_or(0, |l| l.index),
            voters: mem.voter_ids().collect(),
            learners: mem.learner_ids().collect(),
            membership: mem.to_string(),
        }
    }

    /// Stops Raft and checkpoints the engine so that the next start replays little.
    pub async fn shutdown(&self) -> Result<(), NodeError> {
        let _ = self.raft.shutdown().await;
        self.sm.checkpoint()?;
        Ok(())
    }
}

fn write_err(e: RaftError<u64, ClientWriteError<u64, BasicNode>>) -> ProposeError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => ProposeError::NoLeader,
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            ProposeError::Fatal(e.to_string())
        }
        RaftError::Fatal(f) => ProposeError::Fatal(f.to_string()),
    }
}

fn membership_err(e: RaftError<u64, ClientWriteError<u64, BasicNode>>) -> MembershipError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => {
            MembershipError::Unavailable(ProposeError::NoLeader)
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(
            openraft::error::ChangeMembershipError::InProgress(_),
        )) => MembershipError::InProgress,
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            MembershipError::Refused(e.to_string())
        }
        RaftError::Fatal(f) => MembershipError::Fatal(f.to_string()),
    }
}

/// Merges queued proposals into entries of up to `max_bytes` and writes them through Raft,
/// with at most `max_inflight` entries outstanding; splits each entry's response back.
async fn coalesce(
    raft: Raft<TypeConfig>,
    mut rx: mpsc::Receiver<Pending>,
    max_bytes: usize,
    max_inflight: usize,
) {
    let inflight = Arc::new(Semaphore::new(max_inflight));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = inflight.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        let mut bytes = batch[0].req.as_bytes().len();
        while bytes < max_bytes {
            match rx.try_recv() {
                Ok(p) => {
                    bytes += p.req.as_bytes().len();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            let parts: Vec<Request> = batch.iter().map(|p| p.req.clone()).collect();
            let res = match Request::concat(&parts) {
                Ok(req) => raft.client_write(req).await.map_err(write_err),
                Err(e) => Err(ProposeError::Fatal(e.to_string())),
            };
            drop(permit);
            match res {
                Ok(resp) => {
                    let mut results = resp.data.results.into_iter();
                    for p in batch {
                        let results: Vec<CommandResult> =
                            results.by_ref().take(p.commands).collect();
                        let _ = p.tx.send(Ok(Response { results }));
                    }
                }
                Err(e) => {
                    for p in batch {
                        let _ = p.tx.send(Err(e.clone()));
                    }
                }
            }
        });
    }
}
