//! Shared server state and the HTTP router.
//!
//! [`AppState`] gives handlers the engine serving reads (per request: a snapshot install can
//! replace it), the PromQL engine, and the write paths (Raft proposals for samples and for
//! deletions). [`router`] assembles the Prometheus API ([`crate::api`]), remote_write
//! ([`crate::ingest`]), OTLP/HTTP `POST /v1/metrics` ([`crate::otlp::http`]), the health routes
//! and `/metrics` ([`crate::telemetry`]), and counts and times every request with
//! [`crate::telemetry::track_http`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use o11y_query::promql::Engine;
use o11y_raft::{Command, CommandResult, MetadataStore, RaftNode};
use o11y_tsdb::Db;

use crate::api::{ApiError, Deleter, ErrorType, ServerInfo};
use crate::telemetry::{self, Telemetry};

/// Gives the engine currently serving reads: a snapshot install can replace it, so handlers
/// ask for it per request instead of keeping one.
pub type DbSource = Arc<dyn Fn() -> Arc<Db> + Send + Sync>;

/// Why a write could not be committed.
#[derive(Clone, Debug)]
pub struct WriteError {
    pub message: String,
    /// A retry may succeed (no leader, no quorum, timeout): HTTP 503.
    pub retriable: bool,
}

/// A boxed future returned by [`Writer`].
pub type WriteFuture = Pin<Box<dyn Future<Output = Result<Vec<CommandResult>, WriteError>> + Send>>;

/// Commits commands (through the Raft log) and returns their results once applied.
pub type Writer = Arc<dyn Fn(Vec<Command>) -> WriteFuture + Send + Sync>;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: DbSource,
    pub engine: Arc<Engine>,
    /// Commits writes; see [`AppState::for_node`].
    pub writer: Writer,
    /// Performs `/api/v1/admin/tsdb/delete_series`. Deletes are writes: on a node this
    /// proposes a `DeleteSeries` command through Raft and resolves once applied. `None`
    /// disables the admin API (`delete_series` and `clean_tombstones` answer 503 "admin APIs
    /// disabled"), as Prometheus does without `--web.enable-admin-api`.
    pub deleter: Option<Deleter>,
    /// Build information, start time and flags reported by `/api/v1/status/*`.
    pub info: Arc<ServerInfo>,
    /// Metric metadata (replicated by the Raft state machine; empty for a read-only state).
    pub metadata: Arc<MetadataStore>,
    /// The server's own metrics (`/metrics`); ingest paths count samples through it.
    pub telemetry: Arc<Telemetry>,
}

impl AppState {
    /// A read-only state: queries are served, writes are refused (HTTP 500, not retriable)
    /// and the admin API is disabled.
    pub fn new(db: DbSource, engine: Arc<Engine>) -> AppState {
        let telemetry = Arc::new(Telemetry::default());
        telemetry.register("tsdb", telemetry::tsdb_collector(db.clone()));
        AppState {
            db,
            engine,
            writer: Arc::new(|_| {
                Box::pin(async {
                    Err(WriteError {
                        message: "this server is read-only".into(),
                        retriable: false,
                    })
                })
            }),
            deleter: None,
            info: Arc::new(ServerInfo::default()),
            metadata: Arc::new(MetadataStore::new()),
            telemetry,
        }
    }

    /// State over a Raft node: reads from its engines, writes and deletes through its log.
    /// Its telemetry reports the node's Raft status, engine and data directory, and (when
    /// called inside a tokio runtime) counts leader changes.
    pub fn for_node(node: Arc<RaftNode>, engine: Engine) -> AppState {
        let reader = node.clone();
        let writer_node = node.clone();
        let writer: Writer = Arc::new(move |commands| {
            let node = writer_node.clone();
            Box::pin(async move {
                node.propose(commands).await.map_err(|e| WriteError {
                    message: e.to_string(),
                    retriable: e.is_retriable(),
                })
            })
        });
        let delete_writer = writer.clone();
        let deleter: Deleter = Arc::new(move |req| {
            let writer = delete_writer.clone();
            Box::pin(async move {
                let command = Command::DeleteSeries {
                    tenant: req.tenant,
                    matchers: req
                        .matchers
                        .into_iter()
                        .map(|m| (m.op, m.name, m.value))
                        .collect(),
                    mint: req.mint,
                    maxt: req.maxt,
                };
                match writer(vec![command]).await {
                    Ok(results) => match results.into_iter().next() {
                        Some(CommandResult::Deleted { series }) => Ok(series),
                        Some(CommandResult::Refused { reason }) => Err(ApiError::bad_data(reason)),
                        other => Err(ApiError::new(
                            ErrorType::Internal,
                            format!("unexpected result of a deletion: {other:?}"),
                        )),
                    },
                    Err(e) if e.retriable => Err(ApiError::new(ErrorType::Unavailable, e.message)),
                    Err(e) => Err(ApiError::new(ErrorType::Internal, e.message)),
                }
            })
        });
        let db: DbSource = Arc::new(move || reader.db());
        let telemetry = Arc::new(Telemetry::default());
        telemetry.register("raft", telemetry::raft_collector(node.clone()));
        telemetry.register("tsdb", telemetry::tsdb_collector(db.clone()));
        telemetry.register("disk", telemetry::disk_collector(node.config().dir.clone()));
        if tokio::runtime::Handle::try_current().is_ok() {
            telemetry.watch_raft(&node);
        }
        AppState {
            db,
            engine: Arc::new(engine),
            writer,
            deleter: Some(deleter),
            info: Arc::new(ServerInfo::default()),
            metadata: node.metadata(),
            telemetry,
        }
    }

    /// Commits `commands`.
    pub async fn write(&self, commands: Vec<Command>) -> Result<Vec<CommandResult>, WriteError> {
        (self.writer)(commands).await
    }
}

/// Every HTTP route.
pub fn router(state: AppState) -> Router {
    let own = Router::new()
        .route(
            "/api/v1/write",
            post(crate::ingest::write).layer(DefaultBodyLimit::max(crate::ingest::MAX_BODY_BYTES)),
        )
        .route("/-/healthy", get(|| async { "O11y is Healthy.\n" }))
        .route("/-/ready", get(|| async { "O11y is Ready.\n" }))
        .with_state(state.clone());
    let metrics = Router::new()
        .route("/metrics", get(telemetry::metrics_handler))
        .with_state(state.telemetry.clone());
    let tracked = state.telemetry.clone();
    crate::api::router(state.clone())
        .merge(own)
        .merge(crate::otlp::http::router(state))
        .merge(metrics)
        .layer(middleware::from_fn_with_state(
            tracked,
            telemetry::track_http,
        ))
}
