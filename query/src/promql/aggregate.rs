//! Aggregation operators (CONTRACT STUB: being implemented; see the signature).

use super::ast::{AggOp, PosRange};
use super::error::QueryError;
use super::value::{Annotations, Matrix};

/// The parameter of `topk`, `bottomk`, `quantile`, `limitk`, `limit_ratio` (a number per
/// step) or `count_values` (a string).
#[derive(Clone, Debug, PartialEq)]
pub enum AggParam {
    None,
    /// One value per step, in step order.
    Scalars(Vec<f64>),
    String(String),
}

/// The steps of an evaluation: `start, start+step, ..., end` (one step when `start == end`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Steps {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

/// Inputs of one aggregation.
pub struct AggregateCall<'a> {
    pub op: AggOp,
    pub param: AggParam,
    pub grouping: &'a [String],
    pub without: bool,
    pub steps: Steps,
    /// Position of the whole aggregation expression.
    pub pos: PosRange,
    /// Position of the parameter, if any.
    pub param_pos: Option<PosRange>,
    /// Position of the aggregated expression.
    pub expr_pos: PosRange,
}

/// Aggregates `input` (one point per step where the series has a value) into one series per
/// group; the result has at most one point per step per output series.
pub fn aggregate(
    call: &AggregateCall<'_>,
    _input: Matrix,
    _annotations: &mut Annotations,
) -> Result<Matrix, QueryError> {
    Err(QueryError::Execution(format!(
        "aggregation {} is not available yet",
        call.op
    )))
}
