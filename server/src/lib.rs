//! The `o11y` server: HTTP APIs over the Raft-replicated engines.
//!
//! ```text
//!   POST /api/v1/write ─► remote_write (decode) ─► RaftNode::propose ─► engines on every node
//!   GET|POST /api/v1/query… ─► api::prom ─► o11y-query Engine ─► tsdb (this node's copy)
//! ```
//!
//! Modules: [`remote_write`] (Prometheus remote_write 1.0/2.0 decoding), [`api`] (the
//! Prometheus HTTP API), [`ingest`] (the remote_write handler), [`app`] (shared state and the
//! router), [`serve`] (starting and stopping a node), [`cluster`] (membership: admin endpoints
//! and `--join`).

pub mod api;
pub mod app;
pub mod cluster;
pub mod ingest;
pub mod remote_write;
pub mod serve;
