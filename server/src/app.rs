//! Shared server state and the HTTP router (being built).

use std::sync::Arc;

use o11y_query::promql::Engine;
use o11y_tsdb::Db;

use crate::api::{Deleter, ServerInfo};

/// Gives the engine currently serving reads: a snapshot install can replace it, so handlers
/// ask for it per request instead of keeping one.
pub type DbSource = Arc<dyn Fn() -> Arc<Db> + Send + Sync>;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: DbSource,
    pub engine: Arc<Engine>,
    /// Performs `/api/v1/admin/tsdb/delete_series`. Deletes are writes: wire this to propose a
    /// `DeleteSeries` command through Raft and resolve once applied. `None` disables the admin
    /// API (`delete_series` and `clean_tombstones` answer 503 "admin APIs disabled"), as
    /// Prometheus does without `--web.enable-admin-api`.
    pub deleter: Option<Deleter>,
    /// Build information, start time and flags reported by `/api/v1/status/*`.
    pub info: Arc<ServerInfo>,
}

impl AppState {
    /// State with the admin API disabled and default server information.
    pub fn new(db: DbSource, engine: Arc<Engine>) -> AppState {
        AppState {
            db,
            engine,
            deleter: None,
            info: Arc::new(ServerInfo::default()),
        }
    }
}
