//! The `o11y` server: HTTP APIs over the Raft-replicated engines.
//!
//! ```text
//!   POST /api/v1/write ─► remote_write (decode) ─► RaftNode::propose ─► engines on every node
//!   OTLP gRPC :4317, POST /v1/metrics ─► otlp (decode, translate) ─► RaftNode::propose
//!   GET|POST /api/v1/query… ─► api::prom ─► o11y-query Engine ─► tsdb (this node's copy)
//!   POST /api/v1/read ─► api::read ─► tsdb (this node's copy) ─► samples or XOR chunk frames
//! ```
//!
//! Modules: [`remote_write`] (Prometheus remote_write 1.0/2.0 decoding), [`remote_read`]
//! (remote read requests and responses, XOR chunks), [`api`] (the Prometheus HTTP API),
//! [`ingest`] (the remote_write handler), [`otlp`] (OTLP metrics over gRPC and HTTP, translated
//! as Prometheus's OTLP receiver does), [`app`] (shared state and the router), [`serve`]
//! (starting and stopping a node), [`config`] (the `--config` file), [`telemetry`] (the
//! server's own metrics on `/metrics`), [`cluster`] (membership: admin endpoints and `--join`).

pub mod api;
pub mod app;
pub mod cluster;
pub mod config;
pub mod ingest;
pub mod otlp;
pub mod remote_read;
pub mod remote_write;
pub mod serve;
pub mod telemetry;
