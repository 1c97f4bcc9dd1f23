//! Starting and stopping a server: the Raft node (one-member cluster by default), its
//! node-to-node gRPC listener, the HTTP API, and the OTLP listeners (gRPC and HTTP).
//!
//! ```text
//!   ServeConfig ─► config::validate ─► check the data dir ─► bind all listeners (clear
//!     error if taken)
//!     ─► RaftNode::open (replays the log into the engines) ─► bootstrap when alone
//!     ─► cluster gRPC (o11y-raft) + HTTP (app::router) + OTLP gRPC (otlp::grpc)
//!        + OTLP HTTP (otlp::http::router) ─► Running::shutdown on SIGTERM
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use o11y_query::promql::{Engine, EngineOptions};
use o11y_raft::{network, NodeConfig, RaftNode, Transport};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api::ServerInfo;
use crate::app::{self, AppState};
use crate::config::{self, LogConfig};

/// Everything `o11y serve` is configured with.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub node_id: u64,
    pub data_dir: PathBuf,
    /// HTTP API (Prometheus API, remote_write).
    pub http_listen: String,
    /// Node-to-node gRPC.
    pub cluster_listen: String,
    /// Address other nodes reach this node's gRPC on; defaults to `cluster_listen`.
    pub cluster_advertise: Option<String>,
    /// OTLP/gRPC metrics (`MetricsService/Export`).
    pub otlp_grpc_listen: String,
    /// OTLP/HTTP metrics (`POST /v1/metrics`; also served on `http_listen`).
    pub otlp_http_listen: String,
    /// Make this node a one-member cluster if it has never been part of one.
    pub bootstrap: bool,
    pub engine: EngineOptions,
    /// The metrics engine: retention, out-of-order window, block ranges, label limits.
    pub tsdb: o11y_tsdb::Options,
    /// Addresses of cluster members to join (`cluster.join` in the config file). Joining is
    /// not done by `start` yet: a non-empty list is logged as a warning.
    pub join: Vec<String>,
    /// Logging (applied by the binary; reported by the status API).
    pub log: LogConfig,
    /// The `--config` file these values came from, if any.
    pub config_file: Option<PathBuf>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            node_id: 1,
            data_dir: PathBuf::from("data"),
            http_listen: "0.0.0.0:9090".into(),
            cluster_listen: "0.0.0.0:9095".into(),
            cluster_advertise: None,
            otlp_grpc_listen: "0.0.0.0:4317".into(),
            otlp_http_listen: "0.0.0.0:4318".into(),
            bootstrap: true,
            engine: EngineOptions::default(),
            tsdb: o11y_tsdb::Options::default(),
            join: Vec::new(),
            log: LogConfig::default(),
            config_file: None,
        }
    }
}

/// A running server.
pub struct Running {
    pub node: Arc<RaftNode>,
    pub http_addr: SocketAddr,
    pub cluster_addr: SocketAddr,
    /// Bound OTLP/gRPC address.
    pub otlp_grpc_addr: SocketAddr,
    /// Bound OTLP/HTTP address.
    pub otlp_http_addr: SocketAddr,
    stop_otlp: Vec<oneshot::Sender<()>>,
    otlp_grpc: JoinHandle<Result<(), tonic::transport::Error>>,
    otlp_http: JoinHandle<std::io::Result<()>>,
    stop_http: oneshot::Sender<()>,
    stop_cluster: oneshot::Sender<()>,
    http: JoinHandle<std::io::Result<()>>,
    cluster: JoinHandle<Result<(), tonic_error::Error>>,
}

mod tonic_error {
    /// The cluster server's error type, named here so that the server crate does not need
    /// tonic as a direct dependency.
    pub type Error = Box<dyn std::error::Error + Send + Sync>;
}

/// Checks that `dir` exists (creating it) and is writable, with an error naming it.
fn check_data_dir(dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("data directory {} cannot be created", dir.display()))?;
    let probe = dir.join(".o11y-write-probe");
    std::fs::write(&probe, b"ok")
        .with_context(|| format!("data directory {} is not writable", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Starts a server and returns once both listeners accept connections.
pub async fn start(cfg: ServeConfig) -> Result<Running> {
    config::validate(&cfg).map_err(anyhow::Error::msg)?;
    check_data_dir(&cfg.data_dir)?;
    let http_listener = tokio::net::TcpListener::bind(&cfg.http_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen for HTTP on {} (--http-listen, server.http_listen)",
                cfg.http_listen
            )
        })?;
    let cluster_listener = tokio::net::TcpListener::bind(&cfg.cluster_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen for cluster traffic on {} (--cluster-listen, cluster.listen)",
                cfg.cluster_listen
            )
        })?;
    let otlp_grpc_listener = tokio::net::TcpListener::bind(&cfg.otlp_grpc_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen for OTLP gRPC on {} (--otlp-grpc-listen)",
                cfg.otlp_grpc_listen
            )
        })?;
    let otlp_http_listener = tokio::net::TcpListener::bind(&cfg.otlp_http_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen for OTLP HTTP on {} (--otlp-http-listen)",
                cfg.otlp_http_listen
            )
        })?;
    let otlp_grpc_addr = otlp_grpc_listener.local_addr()?;
    let otlp_http_addr = otlp_http_listener.local_addr()?;
    let http_addr = http_listener.local_addr()?;
    let cluster_addr = cluster_listener.local_addr()?;
    let advertise = cfg
        .cluster_advertise
        .clone()
        .unwrap_or_else(|| cluster_addr.to_string());
    let mut node_cfg = NodeConfig::new(cfg.node_id, advertise, &cfg.data_dir);
    node_cfg.tsdb = cfg.tsdb.clone();
    let node = RaftNode::open(node_cfg, Transport::Grpc)
        .await
        .with_context(|| format!("opening the data in {}", cfg.data_dir.display()))?;
    if cfg.bootstrap {
        node.bootstrap()
            .await
            .context("bootstrapping a one-node cluster")?;
    }

    let (stop_cluster, rx) = oneshot::channel::<()>();
    let cluster = tokio::spawn({
        let node = node.clone();
        async move {
            network::serve(node, cluster_listener, async {
                let _ = rx.await;
            })
            .await
            .map_err(|e| Box::new(e) as tonic_error::Error)
        }
    });

    if !cfg.join.is_empty() {
        tracing::warn!(join = ?cfg.join, "cluster.join is not acted on by this server yet");
    }
    let mut state = AppState::for_node(node.clone(), Engine::new(cfg.engine.clone()));
    state.info = Arc::new(ServerInfo {
        flags: config::flags(&cfg),
        config_yaml: config::effective(&cfg).to_yaml(),
        ..ServerInfo::default()
    });
    let (stop_otlp_grpc, rx) = oneshot::channel::<()>();
    let otlp_grpc = tokio::spawn(crate::otlp::grpc::serve(
        state.clone(),
        otlp_grpc_listener,
        async {
            let _ = rx.await;
        },
    ));
    let (stop_otlp_http, rx) = oneshot::channel::<()>();
    let otlp_router = crate::otlp::http::router(state.clone());
    let otlp_http = tokio::spawn(async move {
        axum::serve(otlp_http_listener, otlp_router)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    let router = app::router(state);
    let (stop_http, rx) = oneshot::channel::<()>();
    let http = tokio::spawn(async move {
        axum::serve(http_listener, router)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    Ok(Running {
        node,
        http_addr,
        cluster_addr,
        otlp_grpc_addr,
        otlp_http_addr,
        stop_otlp: vec![stop_otlp_grpc, stop_otlp_http],
        otlp_grpc,
        otlp_http,
        stop_http,
        stop_cluster,
        http,
        cluster,
    })
}

impl Running {
    /// Stops accepting requests, lets in-flight ones finish, and checkpoints the engines.
    pub async fn shutdown(self) -> Result<()> {
        for stop in self.stop_otlp {
            let _ = stop.send(());
        }
        let _ = self.otlp_grpc.await;
        let _ = self.otlp_http.await;
        let _ = self.stop_http.send(());
        let _ = self.http.await;
        let _ = self.stop_cluster.send(());
        let _ = self.cluster.await;
        self.node
            .shutdown()
            .await
            .context("shutting the node down")?;
        Ok(())
    }
}
