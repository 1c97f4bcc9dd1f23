//! PromQL functions with Prometheus 3 semantics.
//!
//! Two entry points, matching how the engine evaluates calls:
//!
//! ```text
//!  f(range vector, scalars...)  ─► range_function(name) ─► RangeFn(window, scalars, ctx)
//!      once per series per step; `None` = no point             (module `range`)
//!  everything else              ─► call_instant(name, args, ctx) ─► Vector
//!      once per step with each argument's value at that step  (modules `instant`,
//!                                                              `labels`, `histogram`)
//! ```
//!
//! Functions never strip `__name__` themselves (Prometheus 3's delayed name removal): they set
//! [`Sample::drop_name`] where Prometheus would drop the name and the engine strips flagged
//! names at the end. [`drops_name`] tells which functions do that. Scalar-returning functions
//! (`time`, `pi`, `scalar`) return a one-element vector with empty labels holding the value.
//! Warnings and infos go to `ctx.annotations` at the argument position Prometheus uses.
//!
//! What the engine does around these functions:
//! - name dropping for range functions (all but `last_over_time`/`first_over_time`; see
//!   [`drops_name`]) and the final removal of flagged names plus the duplicate-labelset check;
//! - [`validate_range_args`] before calling a [`RangeFn`] (fails the query for bad
//!   `double_exponential_smoothing` factors);
//! - `absent_over_time`'s 0-or-1 output series; `absent` via [`absent_vector`] and
//!   [`absent_labels`]; `info` via [`InfoPlan`];
//! - `timestamp`: pass samples whose `t` is the raw sample time (for selector arguments);
//! - `predict_linear` reads the step time (`ctx.ts`), so like Prometheus the engine must not
//!   treat it as step-invariant under `@` (it is in Prometheus's `AtModifierUnsafeFunctions`).
//!
//! Submodules: `range` (rate, increase, delta, irate, idelta, deriv, predict_linear,
//! double_exponential_smoothing, changes, resets, *_over_time, ts_of_*_over_time), `instant`
//! (math, clamp, round, date/time, sort, vector/scalar/pi/time, timestamp, absent), `labels`
//! (label_replace, label_join, sort_by_label, sort_by_label_desc), `histogram`
//! (histogram_quantile(s) and histogram_fraction over classic `le` buckets; native-histogram
//! functions yield nothing since only floats are stored), `info` (the experimental `info()`:
//! [`InfoPlan`]), `util` (Kahan summation, Go number formatting, Go min/max).

mod histogram;
mod info;
mod instant;
mod labels;
mod range;
pub(crate) mod util;

use o11y_tsdb::labels::{Labels, METRIC_NAME};
use o11y_tsdb::matcher::MatchOp;

use super::ast::{Expr, PosRange};
use super::error::QueryError;
use super::value::{Annotations, FPoint, Sample, Vector};

pub use super::value::go_format_g;
pub use info::InfoPlan;

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

impl FnCtx<'_> {
    /// Position of argument `i` (the call's position if the engine did not pass it).
    pub(crate) fn pos(&self, i: usize) -> PosRange {
        self.arg_pos.get(i).copied().unwrap_or(self.call_pos)
    }
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
///
/// `absent_over_time` is included (it returns 1 for every non-empty window, like Prometheus's
/// `funcAbsentOverTime`), but the engine has to build its 0-or-1 output series itself.
pub fn range_function(name: &str) -> Option<RangeFn> {
    range::lookup(name)
}

/// Checks a range function's scalar arguments at one step; call it before the [`RangeFn`]
/// whenever the function is about to be called (a series has points in its window).
/// Prometheus fails the query for `double_exponential_smoothing` with a smoothing or trend
/// factor outside (0, 1); everything else is accepted.
pub fn validate_range_args(name: &str, scalars: &[f64]) -> Result<(), QueryError> {
    if name == "double_exponential_smoothing" {
        let sf = scalars.first().copied().unwrap_or(f64::NAN);
        let tf = scalars.get(1).copied().unwrap_or(f64::NAN);
        // As in Prometheus, NaN factors pass the check (and give NaN).
        if sf <= 0.0 || sf >= 1.0 {
            return Err(QueryError::Execution(format!(
                "invalid smoothing factor. Expected: 0 < sf < 1, got: {}",
                util::go_format_f6(sf)
            )));
        }
        if tf <= 0.0 || tf >= 1.0 {
            return Err(QueryError::Execution(format!(
                "invalid trend factor. Expected: 0 < tf < 1, got: {}",
                util::go_format_f6(tf)
            )));
        }
    }
    Ok(())
}

/// Whether the function's output has `drop_name` set (Prometheus drops `__name__`).
///
/// Range functions: all except `last_over_time` and `first_over_time` (the engine sets the
/// flag for those). Instant functions: math (`abs`, `ln`, trig, ...), `round`, `clamp*`,
/// `timestamp`, the date functions, `histogram_*`. Not: `sort*`, `label_*` (they keep the
/// input's flag), `absent`, `vector`, `scalar`, `pi`, `time`.
pub fn drops_name(name: &str) -> bool {
    if range::lookup(name).is_some() {
        return !matches!(name, "last_over_time" | "first_over_time");
    }
    simple_float_fn(name).is_some()
        || instant::is_date_fn(name)
        || matches!(
            name,
            "round"
                | "clamp"
                | "clamp_min"
                | "clamp_max"
                | "timestamp"
                | "histogram_quantile"
                | "histogram_quantiles"
                | "histogram_fraction"
                | "histogram_avg"
                | "histogram_count"
                | "histogram_sum"
                | "histogram_stddev"
                | "histogram_stdvar"
        )
}

/// The elementwise float function behind a one-argument math function (`abs`, `ceil`, `exp`,
/// `ln`, `sqrt`, the trig functions, `deg`, `rad`, `sgn`, ...). Output samples of these have
/// `drop_name` set.
pub fn simple_float_fn(name: &str) -> Option<fn(f64) -> f64> {
    instant::simple_float_fn(name)
}

/// Prometheus's `createLabelsForAbsentFunction`: the labels `absent`/`absent_over_time` give
/// their output, taken from the equality matchers of a selector argument (parentheses are
/// looked through). A label named by more than one matcher, or by a non-equality matcher, is
/// left out; `__name__` is always left out. Anything but a selector gives no labels.
pub fn absent_labels(expr: &Expr) -> Labels {
    let mut e = expr;
    while let Expr::Paren { expr, .. } = e {
        e = expr;
    }
    let matchers = match e {
        Expr::VectorSelector(vs) => &vs.matchers,
        Expr::MatrixSelector(ms) => &ms.vs.matchers,
        _ => return Labels::default(),
    };
    let mut out: Vec<(String, String)> = Vec::new();
    let mut has: Vec<&str> = Vec::new();
    for m in matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if m.op == MatchOp::Equal && !has.contains(&m.name.as_str()) {
            out.retain(|(n, _)| n != &m.name);
            out.push((m.name.clone(), m.value.clone()));
            has.push(&m.name);
        } else {
            out.retain(|(n, _)| n != &m.name);
        }
    }
    Labels::from_pairs(out)
}

/// `absent(arg)` at one step with the labels of [`absent_labels`] for the call's argument
/// expression: empty if `arg` has samples, else one sample of value 1.
pub fn absent_vector(arg: &Vector, labels: Labels, ts: i64) -> Vector {
    if !arg.is_empty() {
        return Vec::new();
    }
    vec![Sample {
        metric: labels,
        t: ts,
        f: 1.0,
        drop_name: false,
    }]
}

/// Evaluates a function that does not take a range vector, at one step.
///
/// `absent` here has no access to the argument expression and labels its output with an
/// empty label set; the engine should use [`absent_vector`] with [`absent_labels`] instead.
/// `info` is not evaluated here: it needs storage access; see [`InfoPlan`].
pub fn call_instant(
    name: &str,
    args: Vec<StepArg>,
    ctx: &mut FnCtx<'_>,
) -> Result<Vector, QueryError> {
    if let Some(f) = simple_float_fn(name) {
        let v = args::vector(&args, 0, name)?;
        return Ok(instant::map_floats(v, ctx.ts, f));
    }
    match name {
        "round" | "clamp" | "clamp_min" | "clamp_max" | "timestamp" | "time" | "pi" | "vector"
        | "scalar" | "absent" | "sort" | "sort_desc" | "min_of" | "max_of" => {
            instant::call(name, args, ctx)
        }
        n if instant::is_date_fn(n) => instant::call(name, args, ctx),
        "label_replace" => labels::label_replace(args, ctx),
        "label_join" => labels::label_join(args, ctx),
        "sort_by_label" => labels::sort_by_label(args, false),
        "sort_by_label_desc" => labels::sort_by_label(args, true),
        "histogram_quantile" => histogram::histogram_quantile(args, ctx),
        "histogram_quantiles" => histogram::histogram_quantiles(args, ctx),
        "histogram_fraction" => histogram::histogram_fraction(args, ctx),
        // Native-histogram functions: only float samples exist, and Prometheus processes
        // only histogram samples here, so the result is always empty.
        "histogram_avg" | "histogram_count" | "histogram_sum" | "histogram_stddev"
        | "histogram_stdvar" => {
            args::vector(&args, 0, name)?;
            Ok(Vec::new())
        }
        "info" => Err(QueryError::Execution(
            "function info is evaluated through InfoPlan, not call_instant".into(),
        )),
        _ if range::lookup(name).is_some() => Err(QueryError::Execution(format!(
            "function {name} takes a range vector and is evaluated by range_function"
        ))),
        _ => Err(QueryError::Execution(format!(
            "function {name} is not supported by call_instant"
        ))),
    }
}

/// Argument extraction with an execution error on a type mismatch (the parser type-checks
/// calls, so these only fire on an engine bug).
mod args {
    use super::{QueryError, StepArg, Vector};

    fn mismatch(name: &str, i: usize, want: &str) -> QueryError {
        QueryError::Execution(format!(
            "function {name}: argument {} must be a {want}",
            i + 1
        ))
    }

    pub(super) fn vector<'a>(
        args: &'a [StepArg],
        i: usize,
        name: &str,
    ) -> Result<&'a Vector, QueryError> {
        match args.get(i) {
            Some(StepArg::Vector(v)) => Ok(v),
            _ => Err(mismatch(name, i, "instant vector")),
        }
    }

    pub(super) fn take_vector(
        args: &mut [StepArg],
        i: usize,
        name: &str,
    ) -> Result<Vector, QueryError> {
        match args.get_mut(i) {
            Some(StepArg::Vector(v)) => Ok(std::mem::take(v)),
            _ => Err(mismatch(name, i, "instant vector")),
        }
    }

    pub(super) fn scalar(args: &[StepArg], i: usize, name: &str) -> Result<f64, QueryError> {
        match args.get(i) {
            Some(StepArg::Scalar(f)) => Ok(*f),
            _ => Err(mismatch(name, i, "scalar")),
        }
    }

    pub(super) fn string<'a>(
        args: &'a [StepArg],
        i: usize,
        name: &str,
    ) -> Result<&'a str, QueryError> {
        match args.get(i) {
            Some(StepArg::String(s)) => Ok(s),
            _ => Err(mismatch(name, i, "string")),
        }
    }
}

#[cfg(test)]
mod tests;
