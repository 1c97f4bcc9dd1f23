//! Starting and stopping a server: the Raft node (one-member cluster by default), its
//! node-to-node gRPC listener, the HTTP API, and the OTLP listeners (gRPC and HTTP).
//!
//! ```text
//!   ServeConfig ─► config::validate ─► check the data dir ─► bind all listeners (clear
//!     error if taken)
//!     ─► RaftNode::open (replays the log into the engines) ─► bootstrap when alone
//!     ─► cluster gRPC (o11y-raft) + HTTP (app::router + cluster::router) + OTLP gRPC
//!        (otlp::grpc) + OTLP HTTP (otlp::http::router)
//!     ─► with `join`: cluster::join in the background (Running::join_failure reports it)
//!     ─► Running::shutdown on SIGTERM
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
    /// HTTP base URLs of members to join through (`--join`, `cluster.join` in the config
    /// file); when set, the node never
    /// bootstraps and asks them to add it as a voter unless it already is one.
    pub join: Vec<String>,
    pub engine: EngineOptions,
    /// The metrics engine: retention, out-of-order window, block ranges, label limits.
    pub tsdb: o11y_tsdb::Options,
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
            join: Vec::new(),
            engine: EngineOptions::default(),
            tsdb: o11y_tsdb::Options::default(),
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
    join: Option<JoinHandle<Result<(), crate::cluster::JoinError>>>,
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
    let unspecified = advertise
        .parse::<SocketAddr>()
        .is_ok_and(|a| a.ip().is_unspecified());
    if unspecified && !cfg.join.is_empty() {
        anyhow::bail!(
            "--join needs --cluster-advertise: the cluster address {advertise} is not one \
             other nodes can reach"
        );
    }
    if unspecified {
        tracing::warn!(
            cluster_addr = %advertise,
            "the cluster address is unspecified; set --cluster-advertise before adding nodes"
        );
    }
    let mut node_cfg = NodeConfig::new(cfg.node_id, advertise.clone(), &cfg.data_dir);
    node_cfg.tsdb = cfg.tsdb.clone();
    let node = RaftNode::open(node_cfg, Transport::Grpc)
        .await
        .with_context(|| format!("opening the data in {}", cfg.data_dir.display()))?;
    if cfg.bootstrap && cfg.join.is_empty() {
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
    let router = app::router(state).merge(crate::cluster::router(node.clone()));
    let (stop_http, rx) = oneshot::channel::<()>();
    let http = tokio::spawn(async move {
        axum::serve(http_listener, router)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    let join = (!cfg.join.is_empty()).then(|| {
        let (node, urls, advertise) = (node.clone(), cfg.join.clone(), advertise.clone());
        tokio::spawn(async move {
            crate::cluster::join(node, &urls, &advertise, Default::default()).await
        })
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
        join,
    })
}

impl Running {
    /// Resolves when joining the cluster (`ServeConfig::join`) has failed for good; pending
    /// forever when there is nothing to join or the join succeeded.
    pub async fn join_failure(&mut self) -> crate::cluster::JoinError {
        if let Some(h) = self.join.as_mut() {
            match h.await {
                Ok(Err(e)) => {
                    self.join = None;
                    return e;
                }
                Ok(Ok(())) | Err(_) => self.join = None,
            }
        }
        std::future::pending().await
    }

    /// Stops accepting requests, lets in-flight ones finish, and checkpoints the engines.
    pub async fn shutdown(self) -> Result<()> {
        if let Some(j) = &self.join {
            j.abort();
        }
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
