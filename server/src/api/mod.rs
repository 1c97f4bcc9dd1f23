//! The Prometheus HTTP API (`/api/v1/...`), compatible with Grafana's Prometheus datasource
//! and `promtool`.
//!
//! ```text
//!   GET|POST /api/v1/query, query_range ─► params ─► spawn_blocking(Engine over this node's
//!            tsdb, DEFAULT_TENANT) ─► json (QueryData, warnings/infos from annotations)
//!   GET|POST /api/v1/series, labels; GET label/{name}/values ─► Db::select/label_names/values
//!   GET      /api/v1/metadata ─► AppState::metadata (replicated through Raft from
//!            remote_write metadata; `limit`, `limit_per_metric`, `metric`)
//!   GET      /api/v1/status/{buildinfo,flags,runtimeinfo,tsdb,config,walreplay},
//!            targets, rules, alerts, alertmanagers; GET|POST query_exemplars, format_query
//!   POST     /api/v1/read ─► read (remote read: SAMPLES or STREAMED_XOR_CHUNKS)
//!   POST|PUT /api/v1/admin/tsdb/delete_series ─► AppState::deleter (a replicated write)
//!            /api/v1/admin/tsdb/clean_tombstones ─► Db::clean_tombstones (local rewrite)
//! ```
//!
//! Modules: [`params`] (form values, times, durations, `limit`, `match[]`), [`json`]
//! (envelopes, errors, value encoding), `prom` (the handlers), [`read`] (remote read).
//!
//! Wiring: build an [`AppState`] (`AppState::new(db, engine)` gives a read-only API), set
//! `deleter` to a [`Deleter`] that proposes `DeleteSeries` through Raft to enable the admin
//! API, optionally replace `info` ([`ServerInfo`]: build info, start time, extra flags), and
//! merge [`router`] into the server's router. Queries run on tokio's blocking pool; there is
//! no limit on concurrent queries here (Prometheus's `--query.max-concurrency`).
//!
//! Differences from Prometheus: no `stats=all` query statistics, no native histograms in
//! results (the engine has none), `format_query` prints the one-line form rather than
//! `Pretty`, exemplars, targets (and their metadata), rules and alerts are always empty, and
//! metric metadata holds one entry per family (the last one received; Prometheus lists each
//! distinct entry its targets expose).

pub mod json;
pub mod params;
mod prom;
pub mod read;
#[cfg(test)]
mod read_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use o11y_tsdb::matcher::Matcher;

use crate::app::AppState;

pub use json::{ApiError, ErrorType};

/// A series deletion requested through `/api/v1/admin/tsdb/delete_series`: the series of
/// `tenant` matching all `matchers`, samples in `[mint, maxt]` (ms, inclusive).
#[derive(Clone, Debug)]
pub struct DeleteRequest {
    pub tenant: String,
    pub matchers: Vec<Matcher>,
    pub mint: i64,
    pub maxt: i64,
}

/// Performs a [`DeleteRequest`] and returns the number of series affected. Deletes are writes:
/// in a cluster this must propose a `DeleteSeries` command through Raft (so every replica
/// deletes the same data at the same log index) and resolve once it is applied. Errors carry
/// their API type, e.g. [`ErrorType::Unavailable`] when there is no leader.
pub type Deleter = Arc<
    dyn Fn(DeleteRequest) -> Pin<Box<dyn Future<Output = Result<u64, ApiError>> + Send>>
        + Send
        + Sync,
>;

/// Build information reported by `/api/v1/status/buildinfo` (Prometheus's field names).
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    /// The Prometheus version whose API this server implements: Grafana picks features by it.
    pub version: String,
    pub revision: String,
    pub branch: String,
    pub build_user: String,
    pub build_date: String,
    pub go_version: String,
}

impl Default for BuildInfo {
    fn default() -> Self {
        BuildInfo {
            version: "3.0.0".into(),
            revision: format!("o11y-{}", env!("CARGO_PKG_VERSION")),
            branch: String::new(),
            build_user: String::new(),
            build_date: String::new(),
            go_version: "none (o11y is written in Rust)".into(),
        }
    }
}

/// What the status endpoints report about this server.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    pub build: BuildInfo,
    /// Start time of the process (ms since the epoch), for `runtimeinfo`.
    pub start_time_ms: i64,
    /// Command-line flags for `/api/v1/status/flags`, on top of those derived from the engine
    /// and database options (`query.lookback-delta`, `query.timeout`, ...).
    pub flags: BTreeMap<String, String>,
    /// The effective configuration as YAML, for `/api/v1/status/config` (`o11y serve` fills
    /// it from [`crate::config`]).
    pub config_yaml: String,
}

impl Default for ServerInfo {
    fn default() -> Self {
        ServerInfo {
            build: BuildInfo::default(),
            start_time_ms: prom::now_ms(),
            flags: BTreeMap::new(),
            config_yaml: String::new(),
        }
    }
}

/// The Prometheus API routes, with `state` (remote read with its default limits).
pub fn router(state: AppState) -> Router {
    let remote_read = read::router(state.clone(), read::ReadOptions::default());
    Router::new()
        .route("/api/v1/query", get(prom::query).post(prom::query))
        .route(
            "/api/v1/query_range",
            get(prom::query_range).post(prom::query_range),
        )
        .route(
            "/api/v1/query_exemplars",
            get(prom::query_exemplars).post(prom::query_exemplars),
        )
        .route(
            "/api/v1/format_query",
            get(prom::format_query).post(prom::format_query),
        )
        .route("/api/v1/series", get(prom::series).post(prom::series))
        .route("/api/v1/labels", get(prom::labels).post(prom::labels))
        .route("/api/v1/label/{name}/values", get(prom::label_values))
        .route("/api/v1/metadata", get(prom::metadata))
        .route("/api/v1/targets", get(prom::targets))
        .route("/api/v1/targets/metadata", get(prom::targets_metadata))
        .route("/api/v1/rules", get(prom::rules))
        .route("/api/v1/alerts", get(prom::alerts))
        .route("/api/v1/alertmanagers", get(prom::alertmanagers))
        .route("/api/v1/status/buildinfo", get(prom::buildinfo))
        .route("/api/v1/status/flags", get(prom::flags))
        .route("/api/v1/status/runtimeinfo", get(prom::runtimeinfo))
        .route("/api/v1/status/tsdb", get(prom::tsdb_status))
        .route("/api/v1/status/config", get(prom::config))
        .route("/api/v1/status/walreplay", get(prom::walreplay))
        .route(
            "/api/v1/admin/tsdb/delete_series",
            post(prom::delete_series).put(prom::delete_series),
        )
        .route(
            "/api/v1/admin/tsdb/clean_tombstones",
            post(prom::clean_tombstones).put(prom::clean_tombstones),
        )
        .with_state(state)
        .merge(remote_read)
}
