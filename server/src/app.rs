//! Shared server state and the HTTP router (being built).

use std::sync::Arc;

use o11y_query::promql::Engine;
use o11y_tsdb::Db;

/// Gives the engine currently serving reads: a snapshot install can replace it, so handlers
/// ask for it per request instead of keeping one.
pub type DbSource = Arc<dyn Fn() -> Arc<Db> + Send + Sync>;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: DbSource,
    pub engine: Arc<Engine>,
}
