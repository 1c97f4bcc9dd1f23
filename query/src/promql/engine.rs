//! The PromQL evaluator (being implemented).

use std::time::Duration;

use o11y_tsdb::matcher::Matcher;
use o11y_tsdb::Db;

use super::error::QueryError;
use super::value::{Annotations, Value};

/// Where the engine reads series from.
pub trait Storage: Sync {
    /// Series matching all `matchers` with samples in `[mint, maxt]` (ms), sorted by labels.
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<o11y_tsdb::Series>, QueryError>;
}

/// One tenant of a tsdb [`Db`].
pub struct TenantStorage<'a> {
    pub db: &'a Db,
    pub tenant: &'a str,
}

impl Storage for TenantStorage<'_> {
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<o11y_tsdb::Series>, QueryError> {
        Ok(self.db.select(self.tenant, matchers, mint, maxt)?)
    }
}

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (Prometheus: 5m).
    pub lookback_delta_ms: i64,
    /// Step of subqueries written without one (Prometheus: the global evaluation interval, 1m).
    pub default_subquery_step_ms: i64,
    /// A query running longer fails with [`QueryError::Timeout`].
    pub timeout: Duration,
    /// Most samples held in memory at once by one query (Prometheus: 50,000,000).
    pub max_samples: usize,
    /// Most points per series a range query may return (Prometheus's API: 11,000).
    pub max_points_per_series: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta_ms: 5 * 60 * 1000,
            default_subquery_step_ms: 60 * 1000,
            timeout: Duration::from_secs(120),
            max_samples: 50_000_000,
            max_points_per_series: 11_000,
        }
    }
}

/// A query's value and its annotations.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    pub value: Value,
    pub annotations: Annotations,
}

/// The PromQL engine; cheap to share between threads.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    pub opts: EngineOptions,
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Engine {
        Engine { opts }
    }

    /// Evaluates `query` at `ts` (ms). Returns a vector, scalar, string, or (for a range
    /// selector) a matrix.
    pub fn instant_query(
        &self,
        _storage: &dyn Storage,
        query: &str,
        _ts: i64,
    ) -> Result<QueryResult, QueryError> {
        super::parser::parse(query)?;
        Err(QueryError::Execution("engine not available yet".into()))
    }

    /// Evaluates `query` at `start, start+step, ..., end` (ms). Returns a matrix sorted by
    /// labels.
    pub fn range_query(
        &self,
        _storage: &dyn Storage,
        query: &str,
        _start: i64,
        _end: i64,
        _step: i64,
    ) -> Result<QueryResult, QueryError> {
        super::parser::parse(query)?;
        Err(QueryError::Execution("engine not available yet".into()))
    }
}
