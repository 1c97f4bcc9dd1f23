//! PromQL functions (CONTRACT STUB: being implemented; see the signatures).
//!
//! Range-vector functions run per series and per step over one window of points; everything
//! else runs per step over the arguments' values at that step.

use o11y_tsdb::labels::Labels;

use super::ast::PosRange;
use super::error::QueryError;
use super::value::{Annotations, FPoint, Vector};

/// What a function sees besides its arguments at one evaluation step.
pub struct FnCtx<'a> {
    /// The evaluation timestamp (ms) of this step.
    pub ts: i64,
    /// Position of the whole call.
    pub call_pos: PosRange,
    /// Positions of the call's arguments, in order.
    pub arg_pos: &'a [PosRange],
    /// Where warnings and infos go.
    pub annotations: &'a mut Annotations,
}

/// An argument's value at one step.
#[derive(Clone, Debug, PartialEq)]
pub enum StepArg {
    Scalar(f64),
    String(String),
    Vector(Vector),
}

/// One window of a range vector for one series at one step.
pub struct Window<'a> {
    /// Float points with `range_start < t <= range_end`, ascending, stale markers removed.
    pub points: &'a [FPoint],
    /// Exclusive start of the window (ms): step time − offset − range.
    pub range_start: i64,
    /// Inclusive end of the window (ms): step time − offset.
    pub range_end: i64,
    /// The series' labels (name included).
    pub metric: &'a Labels,
}

/// A range-vector function: the value for one window, or `None` for no output at this step.
/// `scalars` are the call's scalar arguments in the order written (for example the `q` of
/// `quantile_over_time` or the two factors of `double_exponential_smoothing`).
pub type RangeFn = fn(&Window<'_>, &[f64], &mut FnCtx<'_>) -> Option<f64>;

/// The range-vector function called `name`, if it is one.
pub fn range_function(_name: &str) -> Option<RangeFn> {
    None
}

/// Evaluates a function that does not take a range vector, at one step.
pub fn call_instant(
    name: &str,
    _args: Vec<StepArg>,
    _ctx: &mut FnCtx<'_>,
) -> Result<Vector, QueryError> {
    Err(QueryError::Execution(format!(
        "function {name} is not available yet"
    )))
}
