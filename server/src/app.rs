//! Shared server state and the HTTP router.
//!
//! [`AppState`] gives handlers the engine serving reads (per request: a snapshot install can
//! replace it), the PromQL engine and the write path (a Raft proposal). [`router`] assembles
//! the Prometheus API ([`crate::api`]), remote_write ([`crate::ingest`]) and health routes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use o11y_query::promql::Engine;
use o11y_raft::{Command, CommandResult, RaftNode};
use o11y_tsdb::Db;

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
    pub writer: Writer,
}

impl AppState {
    /// State over a Raft node: reads from its engines, writes through its log.
    pub fn for_node(node: Arc<RaftNode>, engine: Engine) -> AppState {
        let reader = node.clone();
        AppState {
            db: Arc::new(move || reader.db()),
            engine: Arc::new(engine),
            writer: Arc::new(move |commands| {
                let node = node.clone();
                Box::pin(async move {
                    node.propose(commands).await.map_err(|e| WriteError {
                        message: e.to_string(),
                        retriable: e.is_retriable(),
                    })
                })
            }),
        }
    }

    /// Commits `commands`.
    pub async fn write(&self, commands: Vec<Command>) -> Result<Vec<CommandResult>, WriteError> {
        (self.writer)(commands).await
    }
}

/// Every HTTP route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/api/v1/write",
            post(crate::ingest::write)
                .layer(DefaultBodyLimit::max(crate::ingest::MAX_BODY_BYTES)),
        )
        .route("/-/healthy", get(|| async { "O11y is Healthy.\n" }))
        .route("/-/ready", get(|| async { "O11y is Ready.\n" }))
        .with_state(state)
}
