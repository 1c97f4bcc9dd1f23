//! Errors of parsing and evaluating PromQL.
//!
//! [`ParseError`] carries the position of the problem; [`QueryError`] separates the kinds the
//! HTTP API maps to Prometheus's `errorType`s: `bad_data` (parse and type errors, invalid
//! parameters), `execution` (the query is valid but its result is not, e.g. duplicate series),
//! `timeout`, and resource limits.

use super::ast::PosRange;

/// A syntax or type error at a position of the query text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: parse error: {msg}")]
pub struct ParseError {
    pub pos: PosRange,
    /// 1-based line of `pos.start`.
    pub line: usize,
    /// 1-based column (in bytes) of `pos.start`.
    pub col: usize,
    pub msg: String,
}

impl ParseError {
    /// Builds an error at `pos` of `query`, computing line and column.
    pub fn new(query: &str, pos: PosRange, msg: impl Into<String>) -> ParseError {
        let (line, col) = pos.line_col(query);
        ParseError {
            pos,
            line,
            col,
            msg: msg.into(),
        }
    }
}

/// Why a query failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The query does not parse or does not type-check (`bad_data`).
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A parameter or argument is invalid at evaluation time (`bad_data`), e.g.
    /// `Parameter value is NaN`.
    #[error("{0}")]
    BadData(String),
    /// The query is valid but its result is not (`execution`), e.g. `vector cannot contain
    /// metrics with the same labelset`.
    #[error("{0}")]
    Execution(String),
    /// The query ran longer than the configured timeout (`timeout`).
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    /// The query would hold more samples in memory than allowed (`execution`).
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(&'static str),
    /// A range query would return more points per series than allowed (`bad_data`).
    #[error("exceeded maximum resolution of {max} points per timeseries. Try decreasing the query resolution (?step=XX)")]
    TooManyPoints { max: usize },
    /// The storage failed to read (`internal`).
    #[error("storage error: {0}")]
    Storage(String),
}

impl QueryError {
    /// Prometheus's API `errorType` for this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            QueryError::Parse(_) | QueryError::BadData(_) | QueryError::TooManyPoints { .. } => {
                "bad_data"
            }
            QueryError::Execution(_) | QueryError::TooManySamples(_) => "execution",
            QueryError::Timeout(_) => "timeout",
            QueryError::Storage(_) => "internal",
        }
    }
}

impl From<o11y_tsdb::Error> for QueryError {
    fn from(e: o11y_tsdb::Error) -> QueryError {
        QueryError::Storage(e.to_string())
    }
}
