//! Raft replication: every write is a batch proposed to a Raft log (openraft) and applied to
//! the engines on every node. The replicated log is the write-ahead log.
//!
//! ```text
//!  client ─► RaftNode::propose ─► validate ─► coalesce ─► Raft::client_write (leader)
//!              │ (follower: forward to the leader over gRPC)        │
//!              ▼                                                    ▼
//!         Response ◄─ StateMachine::apply (Db::apply_ops) ◄─ commit ◄─ LogStore::append
//!                                                           (quorum)   (segments, group fsync)
//! ```
//!
//! - [`command`]: the typed write commands, their binary encoding and validation.
//! - [`codec`]: the binary encoding of openraft's types and RPCs.
//! - [`log_store`]: the segment log (`RaftLogStorage`).
//! - [`state_machine`]: applies entries to the engines; snapshots from hard links.
//! - [`metadata`]: replicated metric metadata (type, help, unit per family).
//! - [`network`]: tonic gRPC between nodes (append-entries, vote, snapshot streaming,
//!   forwarded proposals, admin).
//! - [`node`]: a running node: open, bootstrap, join, propose, read, membership, shutdown.
//! - [`sim`]: an in-process network with fault injection, for cluster tests.

pub mod codec;
pub mod command;
pub mod log_store;
pub mod metadata;
pub mod network;
pub mod node;
pub mod sealed;
pub mod sim;
pub mod state_machine;

pub use command::{BatchPool, Command, CommandResult, ItemRejection, Request, Response};
pub use log_store::{LogError, LogOptions, LogStore, OpenReport};
pub use metadata::{MetadataEntry, MetadataStore};
pub use network::{PeerClient, Transport};
pub use node::{Member, MembershipError, NodeConfig, NodeError, ProposeError, RaftNode, Status};
pub use sim::SimRouter;
pub use state_machine::{CheckpointPolicy, SmError, SnapshotFileInfo, SnapshotFiles, StateMachine};

openraft::declare_raft_types!(
    /// Type configuration of O11y's Raft group.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = SnapshotFiles,
        AsyncRuntime = openraft::TokioRuntime,
);

/// Generated gRPC code (`proto/raft.proto`).
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("o11y.raft.v1");
}
