//! The PromQL evaluator: turns a syntax tree into values, the way Prometheus's engine does.
//!
//! ```text
//!   Engine::{instant,range}_query ─► parse ─► Evaluator over steps start..=end
//!     VectorSelector ─► Storage::select ─► per series (in parallel): last sample in
//!                       (t − lookback, t] per step, stale markers end the series
//!     f(range) ─────► raw samples or a subquery's points ─► per series (in parallel) one
//!                       window (t − range, t] per step, slid forward, never re-read
//!     Binary / Aggregate / Call ─► per step over the argument values
//!   ─► cleanup: delayed `__name__` removal, duplicate check ─► Value
//! ```
//!
//! A range query evaluates every node once for all steps ("matrix at a time"): a series
//! is decoded once and its samples are reused by every step. An instant query is a range
//! query of one step. Sub-expressions that do not depend on the step (`@` modifiers,
//! literals) are evaluated once and copied to every step.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use o11y_tsdb::labels::{Label, Labels, METRIC_NAME};
use o11y_tsdb::matcher::Matcher;
use o11y_tsdb::{Db, STALE_NAN_BITS};
use rayon::prelude::*;

use super::aggregate::{self, AggParam, AggregateCall, Steps};
use super::ast::{
    AggregateExpr, AtModifier, BinOp, BinaryExpr, Call, Cardinality, Expr, PosRange, SubqueryExpr,
    ValueType, VectorMatching, VectorSelector,
};
use super::error::QueryError;
use super::functions::{self, FnCtx, StepArg, Window};
use super::value::{labels_string, Annotation, Annotations, FPoint, Matrix, Sample, Series, Value};

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
    /// selector or subquery) a matrix.
    pub fn instant_query(
        &self,
        storage: &dyn Storage,
        query: &str,
        ts: i64,
    ) -> Result<QueryResult, QueryError> {
        let expr = super::parser::parse(query)?;
        self.eval_instant(storage, &expr, ts)
    }

    /// Evaluates a parsed `expr` at `ts`. Annotations carry positions into the text `expr`
    /// was parsed from; render them with [`Annotation::render`].
    pub fn eval_instant(
        &self,
        storage: &dyn Storage,
        expr: &Expr,
        ts: i64,
    ) -> Result<QueryResult, QueryError> {
        let shared = Shared::new(storage, &self.opts, ts, ts, 0);
        let ev = Evaluator {
            sh: &shared,
            range: StepRange {
                start: ts,
                end: ts,
                interval: 1,
            },
        };
        let value = match ev.eval(expr)? {
            Val::Scalar(v) => Value::Scalar { t: ts, v: v[0] },
            Val::String(s) => Value::String { t: ts, s },
            Val::Vector(m) => {
                let m = cleanup_names(m)?;
                Value::Vector(
                    m.into_iter()
                        .filter_map(|s| {
                            s.floats.first().map(|p| Sample {
                                metric: s.metric,
                                t: ts,
                                f: p.f,
                                drop_name: false,
                            })
                        })
                        .collect(),
                )
            }
            Val::Matrix(m) => {
                let mut m = cleanup_names(m)?;
                m.sort_by(|a, b| a.metric.cmp(&b.metric));
                Value::Matrix(m)
            }
        };
        Ok(QueryResult {
            value,
            annotations: shared.take_annotations(),
        })
    }

    /// Evaluates `query` at `start, start+step, ..., end` (ms). Returns a matrix sorted by
    /// labels.
    pub fn range_query(
        &self,
        storage: &dyn Storage,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult, QueryError> {
        let expr = super::parser::parse(query)?;
        self.eval_range(storage, &expr, start, end, step)
    }

    /// Evaluates a parsed `expr` as a range query.
    pub fn eval_range(
        &self,
        storage: &dyn Storage,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult, QueryError> {
        if step <= 0 {
            return Err(QueryError::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end < start {
            return Err(QueryError::BadData(
                "end timestamp must not be before start time".into(),
            ));
        }
        let points = (end - start) / step + 1;
        if points as u128 > self.opts.max_points_per_series as u128 {
            return Err(QueryError::TooManyPoints {
                max: self.opts.max_points_per_series,
            });
        }
        match expr.value_type() {
            ValueType::Scalar | ValueType::Vector => {}
            t => {
                return Err(QueryError::BadData(format!(
                "invalid expression type \"{t}\" for range query, must be Scalar or instant Vector"
            )))
            }
        }
        let shared = Shared::new(storage, &self.opts, start, end, step);
        let ev = Evaluator {
            sh: &shared,
            range: StepRange {
                start,
                end,
                interval: step,
            },
        };
        let mut m = match ev.eval(expr)? {
            Val::Scalar(v) => vec![Series {
                metric: Labels::default(),
                floats: v
                    .into_iter()
                    .enumerate()
                    .map(|(i, f)| FPoint {
                        t: ev.range.ts(i),
                        f,
                    })
                    .collect(),
                drop_name: false,
            }],
            Val::Vector(m) => cleanup_names(m)?,
            Val::String(_) | Val::Matrix(_) => {
                return Err(QueryError::BadData(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                expr.value_type()
            )))
            }
        };
        m.sort_by(|a, b| a.metric.cmp(&b.metric));
        Ok(QueryResult {
            value: Value::Matrix(m),
            annotations: shared.take_annotations(),
        })
    }
}

/// State shared by all evaluators of one query (subqueries get their own step range).
struct Shared<'a> {
    storage: &'a dyn Storage,
    opts: &'a EngineOptions,
    /// Start and end of the whole query, for `@ start()` and `@ end()`.
    query_start: i64,
    query_end: i64,
    /// Step of a range query; 0 for an instant query.
    query_step: i64,
    deadline: Instant,
    annotations: Mutex<Annotations>,
}

impl<'a> Shared<'a> {
    fn new(
        storage: &'a dyn Storage,
        opts: &'a EngineOptions,
        query_start: i64,
        query_end: i64,
        query_step: i64,
    ) -> Shared<'a> {
        Shared {
            storage,
            opts,
            query_start,
            query_end,
            query_step,
            deadline: Instant::now() + opts.timeout,
            annotations: Mutex::new(Annotations::default()),
        }
    }

    fn take_annotations(&self) -> Annotations {
        std::mem::take(&mut *self.annotations.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn annotate(&self, a: Annotation) {
        self.annotations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(a);
    }

    fn merge_annotations(&self, a: Annotations) {
        if !a.is_empty() {
            self.annotations
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .merge(a);
        }
    }

    fn check_deadline(&self, stage: &'static str) -> Result<(), QueryError> {
        if Instant::now() > self.deadline {
            Err(QueryError::Timeout(stage))
        } else {
            Ok(())
        }
    }

    fn check_samples(&self, n: usize) -> Result<(), QueryError> {
        if n > self.opts.max_samples {
            Err(QueryError::TooManySamples("query execution"))
        } else {
            Ok(())
        }
    }

    fn resolve_at(&self, at: AtModifier) -> i64 {
        match at {
            AtModifier::At(t) => t,
            AtModifier::Start => self.query_start,
            AtModifier::End => self.query_end,
        }
    }
}

/// The steps an evaluator produces values for.
#[derive(Clone, Copy, Debug)]
struct StepRange {
    start: i64,
    end: i64,
    interval: i64,
}

impl StepRange {
    fn len(&self) -> usize {
        ((self.end - self.start) / self.interval + 1) as usize
    }

    fn ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.interval
    }

    fn index(&self, t: i64) -> usize {
        ((t - self.start) / self.interval) as usize
    }

    fn steps(&self) -> Steps {
        Steps {
            start: self.start,
            end: self.end,
            step: self.interval,
        }
    }
}

/// A value during evaluation: scalars have one value per step; instant vectors are a matrix
/// with at most one point per series per step (at the step's timestamp).
enum Val {
    Scalar(Vec<f64>),
    String(String),
    Vector(Matrix),
    /// A range vector: only the result of an instant query (`x[5m]`, `x[5m:1m]`).
    Matrix(Matrix),
}

fn is_stale(f: f64) -> bool {
    f.to_bits() == STALE_NAN_BITS
}

/// Functions whose value depends on the evaluation time even when their arguments do not.
fn at_modifier_unsafe(name: &str) -> bool {
    matches!(
        name,
        "days_in_month"
            | "day_of_month"
            | "day_of_week"
            | "day_of_year"
            | "hour"
            | "minute"
            | "month"
            | "year"
            | "predict_linear"
            | "time"
            | "timestamp"
    )
}

/// Whether `e` evaluates to the same value at every step (Prometheus's step-invariance:
/// only selectors pinned by `@` and literals).
fn step_invariant(e: &Expr) -> bool {
    match e {
        Expr::NumberLiteral { .. } | Expr::StringLiteral { .. } => true,
        Expr::VectorSelector(vs) => vs.at.is_some(),
        Expr::MatrixSelector(ms) => ms.vs.at.is_some(),
        Expr::Subquery(sq) => sq.at.is_some(),
        Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => step_invariant(expr),
        Expr::Aggregate(a) => step_invariant(&a.expr),
        Expr::Binary(b) => step_invariant(&b.lhs) && step_invariant(&b.rhs),
        Expr::Call(c) => !at_modifier_unsafe(c.func.name) && c.args.iter().all(step_invariant),
    }
}

fn unwrap_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren { expr, .. } => unwrap_parens(expr),
        e => e,
    }
}

/// Collects per-step outputs into series, keyed by labels, in first-seen order.
struct SeriesBuilder {
    index: HashMap<Labels, usize>,
    series: Matrix,
}

impl SeriesBuilder {
    fn new() -> SeriesBuilder {
        SeriesBuilder {
            index: HashMap::new(),
            series: Vec::new(),
        }
    }

    /// Adds a point; a second point for the same labels at the same step is the error
    /// Prometheus reports for duplicate output series.
    fn push(&mut self, metric: Labels, drop_name: bool, t: i64, f: f64) -> Result<(), QueryError> {
        match self.index.get(&metric) {
            Some(&i) => {
                let s = &mut self.series[i];
                if s.floats.last().is_some_and(|p| p.t == t) {
                    return Err(dup_labelset());
                }
                s.drop_name |= drop_name;
                s.floats.push(FPoint { t, f });
            }
            None => {
                self.index.insert(metric.clone(), self.series.len());
                self.series.push(Series {
                    metric,
                    floats: vec![FPoint { t, f }],
                    drop_name,
                });
            }
        }
        Ok(())
    }

    fn finish(self) -> Matrix {
        self.series
    }
}

fn dup_labelset() -> QueryError {
    QueryError::Execution("vector cannot contain metrics with the same labelset".into())
}

/// Removes `__name__` from series flagged for it, then merges series that became equal when
/// their points do not collide (a collision is Prometheus's duplicate-labelset error).
fn cleanup_names(m: Matrix) -> Result<Matrix, QueryError> {
    if !m.iter().any(|s| s.drop_name) {
        return Ok(m);
    }
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut out: Matrix = Vec::with_capacity(m.len());
    for mut s in m {
        if s.drop_name {
            s.metric = s.metric.without_metric_name();
            s.drop_name = false;
        }
        match index.get(&s.metric) {
            None => {
                index.insert(s.metric.clone(), out.len());
                out.push(s);
            }
            Some(&i) => {
                let dst = &mut out[i];
                let mut merged = Vec::with_capacity(dst.floats.len() + s.floats.len());
                let (mut a, mut b) = (dst.floats.iter().peekable(), s.floats.iter().peekable());
                loop {
                    match (a.peek(), b.peek()) {
                        (Some(x), Some(y)) => {
                            if x.t == y.t {
                                return Err(dup_labelset());
                            } else if x.t < y.t {
                                merged.push(**x);
                                a.next();
                            } else {
                                merged.push(**y);
                                b.next();
                            }
                        }
                        (Some(x), None) => {
                            merged.push(**x);
                            a.next();
                        }
                        (None, Some(y)) => {
                            merged.push(**y);
                            b.next();
                        }
                        (None, None) => break,
                    }
                }
                dst.floats = merged;
            }
        }
    }
    Ok(out)
}

/// Per step, the (series index, value) pairs of a matrix with points on the step grid.
fn by_step(m: &Matrix, range: &StepRange) -> Vec<Vec<(u32, f64)>> {
    let mut out = vec![Vec::new(); range.len()];
    for (i, s) in m.iter().enumerate() {
        for p in &s.floats {
            out[range.index(p.t)].push((i as u32, p.f));
        }
    }
    out
}

struct Evaluator<'a> {
    sh: &'a Shared<'a>,
    range: StepRange,
}

impl Evaluator<'_> {
    fn with_range(&self, range: StepRange) -> Evaluator<'_> {
        Evaluator { sh: self.sh, range }
    }

    fn eval(&self, e: &Expr) -> Result<Val, QueryError> {
        self.sh.check_deadline("query evaluation")?;
        let n = self.range.len();
        if n > 1
            && !matches!(
                e,
                Expr::NumberLiteral { .. }
                    | Expr::StringLiteral { .. }
                    | Expr::MatrixSelector(_)
                    | Expr::Subquery(_)
            )
            && step_invariant(e)
        {
            return self.eval_once_and_broadcast(e);
        }
        match e {
            Expr::NumberLiteral { val, .. } => Ok(Val::Scalar(vec![*val; n])),
            Expr::StringLiteral { val, .. } => Ok(Val::String(val.clone())),
            Expr::Paren { expr, .. } => self.eval(expr),
            Expr::Unary { op, expr, .. } => {
                let v = self.eval(expr)?;
                if *op != BinOp::Sub {
                    return Ok(v);
                }
                Ok(match v {
                    Val::Scalar(mut s) => {
                        s.iter_mut().for_each(|x| *x = -*x);
                        Val::Scalar(s)
                    }
                    Val::Vector(mut m) => {
                        for s in &mut m {
                            s.floats.iter_mut().for_each(|p| p.f = -p.f);
                            s.drop_name = true;
                        }
                        Val::Vector(m)
                    }
                    other => other,
                })
            }
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.eval_vector_selector(vs, false)?)),
            Expr::MatrixSelector(ms) => {
                let ends = self.window_ends(ms.vs.at, ms.vs.offset_ms);
                let loaded = self.load_range(&ms.vs, ms.range_ms, &ends)?;
                Ok(Val::Matrix(self.windows_as_matrix(
                    loaded,
                    ms.range_ms,
                    &ends,
                )))
            }
            Expr::Subquery(sq) => {
                let (series, ends) = self.eval_subquery(sq)?;
                Ok(Val::Matrix(self.windows_as_matrix(
                    series,
                    sq.range_ms,
                    &ends,
                )))
            }
            Expr::Binary(b) => self.eval_binary(b),
            Expr::Aggregate(a) => self.eval_aggregate(a),
            Expr::Call(c) => self.eval_call(c),
        }
    }

    /// Evaluates a step-invariant expression at the first step and copies it to all steps.
    fn eval_once_and_broadcast(&self, e: &Expr) -> Result<Val, QueryError> {
        let one = self.with_range(StepRange {
            start: self.range.start,
            end: self.range.start,
            interval: self.range.interval,
        });
        let n = self.range.len();
        Ok(match one.eval(e)? {
            Val::Scalar(v) => Val::Scalar(vec![v[0]; n]),
            Val::Vector(m) => {
                let total = m.len() * n;
                self.sh.check_samples(total)?;
                Val::Vector(
                    m.into_iter()
                        .filter_map(|s| {
                            let f = s.floats.first()?.f;
                            Some(Series {
                                metric: s.metric,
                                floats: (0..n)
                                    .map(|i| FPoint {
                                        t: self.range.ts(i),
                                        f,
                                    })
                                    .collect(),
                                drop_name: s.drop_name,
                            })
                        })
                        .collect(),
                )
            }
            other => other,
        })
    }

    /// The evaluation time of each step for a selector with `at` and `offset`.
    fn window_ends(&self, at: Option<AtModifier>, offset: i64) -> Vec<i64> {
        let n = self.range.len();
        match at {
            Some(a) => vec![self.sh.resolve_at(a).saturating_sub(offset); n],
            None => (0..n)
                .map(|i| self.range.ts(i).saturating_sub(offset))
                .collect(),
        }
    }

    /// The series matching `vs` with samples in any of the windows `(end − window, end]`.
    fn select_windows(
        &self,
        vs: &VectorSelector,
        ends: &[i64],
        window_ms: i64,
    ) -> Result<Vec<o11y_tsdb::Series>, QueryError> {
        let lo = ends.iter().copied().min().unwrap_or(0);
        let hi = ends.iter().copied().max().unwrap_or(0);
        self.sh
            .storage
            .select(&vs.matchers, lo.saturating_sub(window_ms) + 1, hi)
    }

    /// Instant vector selector: per step the newest sample in `(t − lookback, t]`, unless it
    /// is a stale marker. With `raw_ts` the value is the sample's timestamp in seconds (for
    /// `timestamp()`).
    fn eval_vector_selector(
        &self,
        vs: &VectorSelector,
        raw_ts: bool,
    ) -> Result<Matrix, QueryError> {
        let ends = self.window_ends(vs.at, vs.offset_ms);
        let lookback = self.sh.opts.lookback_delta_ms;
        let selected = self.select_windows(vs, &ends, lookback)?;
        let range = self.range;
        let out: Vec<Result<Option<Series>, QueryError>> = selected
            .par_iter()
            .map(|series| {
                let mut it = series.iter();
                let mut floats = Vec::new();
                let mut prev: Option<(i64, f64)> = None;
                let mut next = it.next();
                for (i, &end) in ends.iter().enumerate() {
                    while let Some((t, v)) = next {
                        if t > end {
                            break;
                        }
                        prev = Some((t, v));
                        next = it.next();
                    }
                    if let Some((t, v)) = prev {
                        if t > end - lookback && !is_stale(v) {
                            floats.push(FPoint {
                                t: range.ts(i),
                                f: if raw_ts { t as f64 / 1000.0 } else { v },
                            });
                        }
                    }
                }
                if let Some(e) = it.take_err() {
                    return Err(QueryError::from(e));
                }
                Ok((!floats.is_empty()).then(|| Series {
                    metric: series.labels().clone(),
                    floats,
                    drop_name: raw_ts,
                }))
            })
            .collect();
        let mut m = Vec::with_capacity(out.len());
        let mut total = 0;
        for s in out {
            if let Some(s) = s? {
                total += s.floats.len();
                m.push(s);
            }
        }
        self.sh.check_samples(total)?;
        Ok(m)
    }

    /// Raw samples (stale markers removed) of the series matching `vs` in the windows
    /// `(end − range, end]` for all `ends`.
    fn load_range(
        &self,
        vs: &VectorSelector,
        range_ms: i64,
        ends: &[i64],
    ) -> Result<Matrix, QueryError> {
        let selected = self.select_windows(vs, ends, range_ms)?;
        let out: Vec<Result<Series, QueryError>> = selected
            .par_iter()
            .map(|series| {
                let mut it = series.iter();
                let floats: Vec<FPoint> = (&mut it)
                    .filter(|&(_, v)| !is_stale(v))
                    .map(|(t, f)| FPoint { t, f })
                    .collect();
                if let Some(e) = it.take_err() {
                    return Err(QueryError::from(e));
                }
                Ok(Series {
                    metric: series.labels().clone(),
                    floats,
                    drop_name: false,
                })
            })
            .collect();
        let mut m = Vec::with_capacity(out.len());
        let mut total = 0;
        for s in out {
            let s = s?;
            total += s.floats.len();
            m.push(s);
        }
        self.sh.check_samples(total)?;
        Ok(m)
    }

    /// A subquery's points and the end of its window at each step of this evaluator.
    fn eval_subquery(&self, sq: &SubqueryExpr) -> Result<(Matrix, Vec<i64>), QueryError> {
        let ends = self.window_ends(sq.at, sq.offset_ms);
        let interval = sq
            .step_ms
            .filter(|&s| s > 0)
            .unwrap_or(self.sh.opts.default_subquery_step_ms)
            .max(1);
        let lo = ends
            .iter()
            .copied()
            .min()
            .unwrap_or(0)
            .saturating_sub(sq.range_ms);
        let hi = ends.iter().copied().max().unwrap_or(0);
        // The first step-aligned timestamp after `lo` (Go's truncating division).
        let mut start = interval * (lo / interval);
        if start <= lo {
            start = start.saturating_add(interval);
        }
        if start > hi {
            return Ok((Vec::new(), ends));
        }
        let steps = ((hi as i128 - start as i128) / interval as i128 + 1) as u128;
        if steps > self.sh.opts.max_samples as u128 {
            return Err(QueryError::TooManySamples("subquery evaluation"));
        }
        let inner = self.with_range(StepRange {
            start,
            end: hi,
            interval,
        });
        let m = match inner.eval(&sq.expr)? {
            Val::Vector(m) => m,
            Val::Scalar(v) => vec![Series {
                metric: Labels::default(),
                floats: v
                    .into_iter()
                    .enumerate()
                    .map(|(i, f)| FPoint {
                        t: inner.range.ts(i),
                        f,
                    })
                    .collect(),
                drop_name: false,
            }],
            _ => {
                return Err(QueryError::BadData(
                    "subquery is only allowed on instant vector".into(),
                ))
            }
        };
        Ok((m, ends))
    }

    /// The window of a single-step evaluation as a range-vector value (instant queries of
    /// `x[5m]` or `x[5m:1m]`).
    fn windows_as_matrix(&self, m: Matrix, range_ms: i64, ends: &[i64]) -> Matrix {
        let end = ends.first().copied().unwrap_or(0);
        m.into_iter()
            .filter_map(|mut s| {
                s.floats.retain(|p| p.t > end - range_ms && p.t <= end);
                (!s.floats.is_empty()).then_some(s)
            })
            .collect()
    }

    fn eval_scalar_arg(&self, e: &Expr) -> Result<Vec<f64>, QueryError> {
        match self.eval(e)? {
            Val::Scalar(v) => Ok(v),
            _ => Err(QueryError::BadData(format!(
                "expected scalar, got {}",
                e.value_type()
            ))),
        }
    }

    fn eval_vector_arg(&self, e: &Expr) -> Result<Matrix, QueryError> {
        match self.eval(e)? {
            Val::Vector(m) => Ok(m),
            _ => Err(QueryError::BadData(format!(
                "expected instant vector, got {}",
                e.value_type()
            ))),
        }
    }

    // ---- function calls ----

    fn eval_call(&self, c: &Call) -> Result<Val, QueryError> {
        let n = self.range.len();
        let name = c.func.name;
        if matches!(
            name,
            "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc"
        ) && self.sh.query_start != self.sh.query_end
        {
            self.sh.annotate(Annotation::warning(
                "sort is ineffective for range queries since results are always ordered by labels",
                c.pos,
            ));
        }
        match name {
            "time" => {
                return Ok(Val::Scalar(
                    (0..n).map(|i| self.range.ts(i) as f64 / 1000.0).collect(),
                ))
            }
            "pi" => return Ok(Val::Scalar(vec![std::f64::consts::PI; n])),
            // Duration-expression functions: properties of the whole query.
            "start" | "end" | "range" | "step" => {
                let ms = match name {
                    "start" => self.sh.query_start,
                    "end" => self.sh.query_end,
                    "range" => self.sh.query_end - self.sh.query_start,
                    _ => self.sh.query_step,
                };
                return Ok(Val::Scalar(vec![ms as f64 / 1000.0; n]));
            }
            "scalar" => {
                let m = self.eval_vector_arg(&c.args[0])?;
                let mut out = vec![f64::NAN; n];
                let mut count = vec![0u32; n];
                for s in &m {
                    for p in &s.floats {
                        let i = self.range.index(p.t);
                        count[i] += 1;
                        out[i] = p.f;
                    }
                }
                for (o, c) in out.iter_mut().zip(count) {
                    if c != 1 {
                        *o = f64::NAN;
                    }
                }
                return Ok(Val::Scalar(out));
            }
            "vector" => {
                let v = self.eval_scalar_arg(&c.args[0])?;
                return Ok(Val::Vector(vec![Series {
                    metric: Labels::default(),
                    floats: v
                        .into_iter()
                        .enumerate()
                        .map(|(i, f)| FPoint {
                            t: self.range.ts(i),
                            f,
                        })
                        .collect(),
                    drop_name: false,
                }]));
            }
            "timestamp" => {
                if let Expr::VectorSelector(vs) = unwrap_parens(&c.args[0]) {
                    return Ok(Val::Vector(self.eval_vector_selector(vs, true)?));
                }
                let mut m = self.eval_vector_arg(&c.args[0])?;
                for s in &mut m {
                    s.floats.iter_mut().for_each(|p| p.f = p.t as f64 / 1000.0);
                    s.drop_name = true;
                }
                return Ok(Val::Vector(m));
            }
            "absent" => {
                let m = self.eval_vector_arg(&c.args[0])?;
                let mut present = vec![false; n];
                for s in &m {
                    for p in &s.floats {
                        present[self.range.index(p.t)] = true;
                    }
                }
                return Ok(Val::Vector(self.absent_series(&c.args[0], &present)));
            }
            _ => {}
        }
        // A range-vector argument makes this a range function.
        if let Some(mi) = c
            .args
            .iter()
            .position(|a| a.value_type() == ValueType::Matrix)
        {
            return self.eval_range_call(c, mi);
        }
        self.eval_instant_call(c)
    }

    /// One series with value 1 at the steps where `present` is false.
    fn absent_series(&self, arg: &Expr, present: &[bool]) -> Matrix {
        let floats: Vec<FPoint> = present
            .iter()
            .enumerate()
            .filter(|(_, &p)| !p)
            .map(|(i, _)| FPoint {
                t: self.range.ts(i),
                f: 1.0,
            })
            .collect();
        if floats.is_empty() {
            return Vec::new();
        }
        vec![Series {
            metric: functions::absent_labels(arg),
            floats,
            drop_name: false,
        }]
    }

    fn eval_range_call(&self, c: &Call, mi: usize) -> Result<Val, QueryError> {
        let n = self.range.len();
        // Scalar arguments, per step.
        let mut scalars: Vec<Vec<f64>> = Vec::new();
        for (i, a) in c.args.iter().enumerate() {
            if i != mi {
                scalars.push(self.eval_scalar_arg(a)?);
            }
        }
        let arg = unwrap_parens(&c.args[mi]);
        let name = c.func.name;
        let f = if name == "absent_over_time" {
            None
        } else {
            let Some(f) = functions::range_function(name) else {
                return Err(QueryError::BadData(format!(
                    "function \"{name}\" is not supported"
                )));
            };
            for i in 0..n {
                let at_step: Vec<f64> = scalars.iter().map(|v| v[i]).collect();
                functions::validate_range_args(name, &at_step)?;
            }
            Some(f)
        };
        let arg_pos: Vec<PosRange> = c.args.iter().map(|a| a.pos()).collect();
        let wf = WindowFn {
            f,
            scalars: &scalars,
            keep_name: matches!(name, "last_over_time" | "first_over_time"),
            arg_pos: &arg_pos,
            call_pos: c.pos,
            range: self.range,
        };
        let results: Vec<Result<WindowOut, QueryError>> = match arg {
            Expr::MatrixSelector(ms) => {
                // Samples stream from the chunks: only the current window is held.
                let ends = self.window_ends(ms.vs.at, ms.vs.offset_ms);
                let selected = self.select_windows(&ms.vs, &ends, ms.range_ms)?;
                selected
                    .par_iter()
                    .map(|series| {
                        let mut it = series.iter();
                        let points = (&mut it)
                            .filter(|&(_, v)| !is_stale(v))
                            .map(|(t, f)| FPoint { t, f });
                        let out = wf.run(series.labels(), false, points, &ends, ms.range_ms);
                        match it.take_err() {
                            Some(e) => Err(QueryError::from(e)),
                            None => Ok(out),
                        }
                    })
                    .collect()
            }
            Expr::Subquery(sq) => {
                let (m, ends) = self.eval_subquery(sq)?;
                m.par_iter()
                    .map(|s| {
                        Ok(wf.run(
                            &s.metric,
                            s.drop_name,
                            s.floats.iter().copied(),
                            &ends,
                            sq.range_ms,
                        ))
                    })
                    .collect()
            }
            other => {
                return Err(QueryError::BadData(format!(
                    "expected range vector argument to {name}, got {}",
                    other.value_type()
                )))
            }
        };
        let mut m = Vec::with_capacity(results.len());
        let mut present = vec![false; n];
        let mut held = 0usize;
        for r in results {
            let r = r?;
            held += r.peak_window;
            self.sh.merge_annotations(r.annotations);
            for (p, q) in present.iter_mut().zip(&r.present) {
                *p |= *q;
            }
            if let Some(s) = r.series {
                m.push(s);
            }
        }
        self.sh.check_samples(held)?;
        if f.is_none() {
            return Ok(Val::Vector(self.absent_series(arg, &present)));
        }
        Ok(Val::Vector(m))
    }

    fn eval_instant_call(&self, c: &Call) -> Result<Val, QueryError> {
        let n = self.range.len();
        // Elementwise math: map the points in place, no per-step vectors.
        if let (Some(f), [arg]) = (functions::simple_float_fn(c.func.name), c.args.as_slice()) {
            let mut m = self.eval_vector_arg(arg)?;
            for s in &mut m {
                s.floats.iter_mut().for_each(|p| p.f = f(p.f));
                s.drop_name = true;
            }
            return Ok(Val::Vector(m));
        }
        enum Arg {
            Scalar(Vec<f64>),
            String(String),
            Vector(Matrix, Vec<Vec<(u32, f64)>>),
        }
        let mut args = Vec::with_capacity(c.args.len());
        for a in &c.args {
            args.push(match self.eval(a)? {
                Val::Scalar(v) => Arg::Scalar(v),
                Val::String(s) => Arg::String(s),
                Val::Vector(m) => {
                    let idx = by_step(&m, &self.range);
                    Arg::Vector(m, idx)
                }
                Val::Matrix(_) => {
                    return Err(QueryError::BadData(format!(
                        "unexpected range vector argument to {}",
                        c.func.name
                    )))
                }
            });
        }
        let arg_pos: Vec<PosRange> = c.args.iter().map(|a| a.pos()).collect();
        let mut ann = Annotations::default();
        let mut out = SeriesBuilder::new();
        for i in 0..n {
            if i % 256 == 0 {
                self.sh.check_deadline("query evaluation")?;
            }
            let t = self.range.ts(i);
            let step_args: Vec<StepArg> = args
                .iter()
                .map(|a| match a {
                    Arg::Scalar(v) => StepArg::Scalar(v[i]),
                    Arg::String(s) => StepArg::String(s.clone()),
                    Arg::Vector(m, idx) => StepArg::Vector(
                        idx[i]
                            .iter()
                            .map(|&(si, f)| {
                                let s = &m[si as usize];
                                Sample {
                                    metric: s.metric.clone(),
                                    t,
                                    f,
                                    drop_name: s.drop_name,
                                }
                            })
                            .collect(),
                    ),
                })
                .collect();
            let mut ctx = FnCtx {
                ts: t,
                call_pos: c.pos,
                arg_pos: &arg_pos,
                annotations: &mut ann,
            };
            let res = functions::call_instant(c.func.name, step_args, &mut ctx)?;
            for s in res {
                out.push(s.metric, s.drop_name, t, s.f)?;
            }
        }
        self.sh.merge_annotations(ann);
        Ok(Val::Vector(out.finish()))
    }

    // ---- aggregations ----

    fn eval_aggregate(&self, a: &AggregateExpr) -> Result<Val, QueryError> {
        let param = match &a.param {
            None => AggParam::None,
            Some(p) => match self.eval(p)? {
                Val::Scalar(v) => AggParam::Scalars(v),
                Val::String(s) => AggParam::String(s),
                _ => {
                    return Err(QueryError::BadData(format!(
                        "expected scalar or string parameter for {}",
                        a.op
                    )))
                }
            },
        };
        let input = self.eval_vector_arg(&a.expr)?;
        let call = AggregateCall {
            op: a.op,
            param,
            grouping: &a.grouping,
            without: a.without,
            steps: self.range.steps(),
            pos: a.pos,
            param_pos: a.param.as_ref().map(|p| p.pos()),
            expr_pos: a.expr.pos(),
        };
        let mut ann = Annotations::default();
        let out = aggregate::aggregate(&call, input, &mut ann)?;
        self.sh.merge_annotations(ann);
        Ok(Val::Vector(out))
    }

    // ---- binary operators ----

    fn eval_binary(&self, b: &BinaryExpr) -> Result<Val, QueryError> {
        let lhs = self.eval(&b.lhs)?;
        let rhs = self.eval(&b.rhs)?;
        match (lhs, rhs) {
            (Val::Scalar(l), Val::Scalar(r)) => Ok(Val::Scalar(
                l.iter()
                    .zip(&r)
                    .map(|(&x, &y)| {
                        let (v, keep) = elem_binop(b.op, x, y);
                        if b.op.is_comparison() {
                            if keep {
                                1.0
                            } else {
                                0.0
                            }
                        } else {
                            v
                        }
                    })
                    .collect(),
            )),
            (Val::Vector(m), Val::Scalar(s)) => {
                Ok(Val::Vector(self.vector_scalar(b, m, &s, false)))
            }
            (Val::Scalar(s), Val::Vector(m)) => Ok(Val::Vector(self.vector_scalar(b, m, &s, true))),
            (Val::Vector(l), Val::Vector(r)) => {
                let default = VectorMatching {
                    card: if b.op.is_set() {
                        Cardinality::ManyToMany
                    } else {
                        Cardinality::OneToOne
                    },
                    matching_labels: Vec::new(),
                    on: false,
                    include: Vec::new(),
                };
                let matching = b.matching.as_ref().unwrap_or(&default);
                Ok(Val::Vector(match b.op {
                    BinOp::And | BinOp::Or | BinOp::Unless => {
                        self.vector_set(b.op, l, r, matching)?
                    }
                    _ => self.vector_vector(b, l, r, matching)?,
                }))
            }
            _ => Err(QueryError::BadData(
                "binary expression must contain only scalar and instant vector types".into(),
            )),
        }
    }

    fn vector_scalar(&self, b: &BinaryExpr, mut m: Matrix, s: &[f64], swap: bool) -> Matrix {
        let drop = should_drop_name(b.op) || b.return_bool;
        let range = self.range;
        m.retain_mut(|series| {
            series.floats.retain_mut(|p| {
                let sv = s[range.index(p.t)];
                let (l, r) = if swap { (sv, p.f) } else { (p.f, sv) };
                let (mut v, keep) = elem_binop(b.op, l, r);
                if b.op.is_comparison() && swap {
                    v = r;
                }
                if b.return_bool {
                    p.f = if keep { 1.0 } else { 0.0 };
                    true
                } else if keep {
                    p.f = v;
                    true
                } else {
                    false
                }
            });
            if drop {
                series.drop_name = true;
            }
            !series.floats.is_empty()
        });
        m
    }

    fn vector_set(
        &self,
        op: BinOp,
        l: Matrix,
        r: Matrix,
        matching: &VectorMatching,
    ) -> Result<Matrix, QueryError> {
        let mut sigs = SigInterner::default();
        let lsig: Vec<u32> = l.iter().map(|s| sigs.id(&s.metric, matching)).collect();
        let rsig: Vec<u32> = r.iter().map(|s| sigs.id(&s.metric, matching)).collect();
        let lidx = by_step(&l, &self.range);
        let ridx = by_step(&r, &self.range);
        // `stamp[sig] == step + 1`: the signature is present on that side at this step.
        let mut rstamp = vec![0usize; sigs.len()];
        let mut lstamp = vec![0usize; sigs.len()];
        let mut lout: Vec<Vec<FPoint>> = vec![Vec::new(); l.len()];
        let mut rout: Vec<Vec<FPoint>> = vec![Vec::new(); r.len()];
        for i in 0..self.range.len() {
            let (stamp, t) = (i + 1, self.range.ts(i));
            for &(ri, _) in &ridx[i] {
                rstamp[rsig[ri as usize] as usize] = stamp;
            }
            for &(li, f) in &lidx[i] {
                let sig = lsig[li as usize] as usize;
                lstamp[sig] = stamp;
                let keep = match op {
                    BinOp::And => rstamp[sig] == stamp,
                    BinOp::Unless => rstamp[sig] != stamp,
                    _ => true,
                };
                if keep {
                    lout[li as usize].push(FPoint { t, f });
                }
            }
            if op == BinOp::Or {
                for &(ri, f) in &ridx[i] {
                    if lstamp[rsig[ri as usize] as usize] != stamp {
                        rout[ri as usize].push(FPoint { t, f });
                    }
                }
            }
        }
        let mut out: Matrix = Vec::with_capacity(l.len());
        for (s, floats) in l.into_iter().zip(lout) {
            if !floats.is_empty() {
                out.push(Series { floats, ..s });
            }
        }
        if op == BinOp::Or {
            // A series on both sides (same labels) continues as one series.
            let mut index: HashMap<Labels, usize> = out
                .iter()
                .enumerate()
                .map(|(i, s)| (s.metric.clone(), i))
                .collect();
            for (s, floats) in r.into_iter().zip(rout) {
                if floats.is_empty() {
                    continue;
                }
                match index.get(&s.metric) {
                    Some(&i) => {
                        let dst = &mut out[i];
                        dst.floats.extend(floats);
                        dst.floats.sort_by_key(|p| p.t);
                        dst.drop_name |= s.drop_name;
                    }
                    None => {
                        index.insert(s.metric.clone(), out.len());
                        out.push(Series { floats, ..s });
                    }
                }
            }
        }
        Ok(out)
    }

    fn vector_vector(
        &self,
        b: &BinaryExpr,
        l: Matrix,
        r: Matrix,
        matching: &VectorMatching,
    ) -> Result<Matrix, QueryError> {
        let swapped = matching.card == Cardinality::OneToMany;
        let (lhs, rhs) = if swapped { (&r, &l) } else { (&l, &r) };
        let mut sigs = SigInterner::default();
        let lsig: Vec<u32> = lhs.iter().map(|s| sigs.id(&s.metric, matching)).collect();
        let rsig: Vec<u32> = rhs.iter().map(|s| sigs.id(&s.metric, matching)).collect();
        let nsig = sigs.len();
        let lidx = by_step(lhs, &self.range);
        let ridx = by_step(rhs, &self.range);
        let drop = should_drop_name(b.op) || b.return_bool;
        // Per signature: the right-hand match at the current step (stamp, series, value).
        let mut right: Vec<(usize, u32, f64)> = vec![(0, 0, 0.0); nsig];
        // Per signature: when it was last matched, and (many-to-one) the outputs it made.
        let mut matched_stamp = vec![0usize; nsig];
        let mut matched_outs: Vec<Vec<u32>> = vec![Vec::new(); nsig];
        // Output series: interned by labels; each left series remembers its last pairing.
        let mut outs: Matrix = Vec::new();
        let mut out_stamp: Vec<usize> = Vec::new();
        let mut out_by_labels: HashMap<Labels, u32> = HashMap::new();
        let mut last_pair: Vec<(u32, u32)> = vec![(u32::MAX, 0); lhs.len()];
        for i in 0..self.range.len() {
            if i % 256 == 0 {
                self.sh.check_deadline("query evaluation")?;
            }
            if lidx[i].is_empty() || ridx[i].is_empty() {
                continue;
            }
            let (stamp, t) = (i + 1, self.range.ts(i));
            for &(ri, f) in &ridx[i] {
                let sg = rsig[ri as usize] as usize;
                if right[sg].0 == stamp {
                    let one_side = if swapped { "left" } else { "right" };
                    return Err(QueryError::Execution(format!(
                        "found duplicate series for the match group {} on the {one_side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                        labels_string(sigs.labels(sg)),
                        labels_string(&rhs[right[sg].1 as usize].metric),
                        labels_string(&rhs[ri as usize].metric),
                    )));
                }
                right[sg] = (stamp, ri, f);
            }
            for &(li, lf) in &lidx[i] {
                let sg = lsig[li as usize] as usize;
                let (st, ri, rf) = right[sg];
                if st != stamp {
                    continue;
                }
                let out = match last_pair[li as usize] {
                    (r, o) if r == ri => o,
                    _ => {
                        let metric = result_metric(
                            &lhs[li as usize].metric,
                            &rhs[ri as usize].metric,
                            matching,
                        );
                        let o = *out_by_labels.entry(metric).or_insert_with_key(|m| {
                            outs.push(Series {
                                metric: m.clone(),
                                floats: Vec::new(),
                                drop_name: false,
                            });
                            out_stamp.push(0);
                            (outs.len() - 1) as u32
                        });
                        last_pair[li as usize] = (ri, o);
                        o
                    }
                };
                // Duplicate matches are errors even when the comparison filters them out.
                if matching.card == Cardinality::OneToOne {
                    if matched_stamp[sg] == stamp {
                        return Err(QueryError::Execution(
                            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                        ));
                    }
                    matched_stamp[sg] = stamp;
                } else {
                    if matched_stamp[sg] != stamp {
                        matched_stamp[sg] = stamp;
                        matched_outs[sg].clear();
                    }
                    if matched_outs[sg].contains(&out) {
                        return Err(QueryError::Execution(
                            "multiple matches for labels: grouping labels must ensure unique matches"
                                .into(),
                        ));
                    }
                    matched_outs[sg].push(out);
                }
                let (x, y) = if swapped { (rf, lf) } else { (lf, rf) };
                let (mut v, keep) = elem_binop(b.op, x, y);
                if b.return_bool {
                    v = if keep { 1.0 } else { 0.0 };
                } else if !keep {
                    continue;
                }
                let o = out as usize;
                if out_stamp[o] == stamp {
                    return Err(dup_labelset());
                }
                out_stamp[o] = stamp;
                outs[o].floats.push(FPoint { t, f: v });
                outs[o].drop_name |= drop || lhs[li as usize].drop_name;
            }
        }
        outs.retain(|s| !s.floats.is_empty());
        Ok(outs)
    }
}

/// Numbers the distinct matching signatures of a binary operation's inputs, so that per-step
/// matching indexes arrays instead of hashing label sets.
#[derive(Default)]
struct SigInterner {
    ids: HashMap<Labels, u32>,
    labels: Vec<Labels>,
}

impl SigInterner {
    fn id(&mut self, metric: &Labels, m: &VectorMatching) -> u32 {
        let sig = signature(metric, m);
        if let Some(&id) = self.ids.get(&sig) {
            return id;
        }
        let id = self.labels.len() as u32;
        self.ids.insert(sig.clone(), id);
        self.labels.push(sig);
        id
    }

    fn len(&self) -> usize {
        self.labels.len()
    }

    fn labels(&self, id: usize) -> &Labels {
        &self.labels[id]
    }
}

/// What a range function produces for one series.
struct WindowOut {
    series: Option<Series>,
    annotations: Annotations,
    /// For `absent_over_time`: whether the window at each step had a point.
    present: Vec<bool>,
    /// Most points held at once (the largest window), for the sample limit.
    peak_window: usize,
}

/// A range function applied to the windows `(end − range, end]` of one series at each step.
struct WindowFn<'a> {
    /// `None` for `absent_over_time`, which only records which windows had points.
    f: Option<functions::RangeFn>,
    scalars: &'a [Vec<f64>],
    keep_name: bool,
    arg_pos: &'a [PosRange],
    call_pos: PosRange,
    range: StepRange,
}

impl WindowFn<'_> {
    /// Slides the window over `points` (ascending) as the ends advance, holding only the
    /// points of the current window (plus a little slack before compacting the buffer).
    fn run(
        &self,
        metric: &Labels,
        drop_name: bool,
        mut points: impl Iterator<Item = FPoint>,
        ends: &[i64],
        range_ms: i64,
    ) -> WindowOut {
        let mut ann = Annotations::default();
        let mut floats = Vec::new();
        let mut present = if self.f.is_none() {
            vec![false; ends.len()]
        } else {
            Vec::new()
        };
        let mut buf: Vec<FPoint> = Vec::new();
        let mut lo = 0usize;
        let mut pending = points.next();
        let mut peak = 0usize;
        let mut sc = vec![0.0; self.scalars.len()];
        for (i, &end) in ends.iter().enumerate() {
            let start = end.saturating_sub(range_ms);
            while let Some(p) = pending {
                if p.t > end {
                    break;
                }
                buf.push(p);
                pending = points.next();
            }
            while lo < buf.len() && buf[lo].t <= start {
                lo += 1;
            }
            if lo > 64 && lo * 2 > buf.len() {
                buf.drain(..lo);
                lo = 0;
            }
            let window = &buf[lo..];
            peak = peak.max(window.len());
            let Some(f) = self.f else {
                present[i] = !window.is_empty();
                continue;
            };
            for (k, v) in self.scalars.iter().enumerate() {
                sc[k] = v[i];
            }
            let w = Window {
                points: window,
                range_start: start,
                range_end: end,
                metric,
            };
            let mut ctx = FnCtx {
                ts: self.range.ts(i),
                call_pos: self.call_pos,
                arg_pos: self.arg_pos,
                annotations: &mut ann,
            };
            if let Some(v) = f(&w, &sc, &mut ctx) {
                floats.push(FPoint {
                    t: self.range.ts(i),
                    f: v,
                });
            }
        }
        WindowOut {
            series: (!floats.is_empty()).then(|| Series {
                metric: metric.clone(),
                floats,
                drop_name: drop_name || !self.keep_name,
            }),
            annotations: ann,
            present,
            peak_window: peak,
        }
    }
}

/// Whether an operator's result loses the metric name (arithmetic does, comparisons do not).
fn should_drop_name(op: BinOp) -> bool {
    matches!(
        op,
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod | BinOp::Pow | BinOp::Atan2
    )
}

/// The labels two series are matched on: the `on` labels, or all but the `ignoring` labels
/// and the metric name.
fn signature(l: &Labels, m: &VectorMatching) -> Labels {
    let v: Vec<Label> = if m.on {
        l.iter()
            .filter(|x| m.matching_labels.contains(&x.name))
            .cloned()
            .collect()
    } else {
        l.iter()
            .filter(|x| x.name != METRIC_NAME && !m.matching_labels.contains(&x.name))
            .cloned()
            .collect()
    };
    Labels::from_sorted_unchecked(v)
}

/// The labels of a vector-vector result: the left (or "many") side's labels, reduced to the
/// matching labels for one-to-one `on`, without the `ignoring` labels for one-to-one, plus
/// the `group_x` labels taken from the "one" side.
fn result_metric(lhs: &Labels, rhs: &Labels, m: &VectorMatching) -> Labels {
    let mut v: Vec<Label> = lhs.iter().cloned().collect();
    if m.card == Cardinality::OneToOne {
        if m.on {
            v.retain(|x| m.matching_labels.contains(&x.name));
        } else {
            v.retain(|x| !m.matching_labels.contains(&x.name));
        }
    }
    for name in &m.include {
        v.retain(|x| x.name != *name);
        if let Some(val) = rhs.get(name) {
            if !val.is_empty() {
                v.push(Label::new(name.clone(), val));
            }
        }
    }
    v.sort();
    Labels::from_sorted_unchecked(v)
}

/// Applies `op` to two floats: the value and, for comparisons, whether it holds.
fn elem_binop(op: BinOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinOp::Add => (l + r, true),
        BinOp::Sub => (l - r, true),
        BinOp::Mul => (l * r, true),
        BinOp::Div => (l / r, true),
        BinOp::Pow => (l.powf(r), true),
        BinOp::Mod => (l % r, true),
        BinOp::Atan2 => (l.atan2(r), true),
        BinOp::Eql => (l, l == r),
        BinOp::Neq => (l, l != r),
        BinOp::Gtr => (l, l > r),
        BinOp::Lss => (l, l < r),
        BinOp::Gte => (l, l >= r),
        BinOp::Lte => (l, l <= r),
        BinOp::And | BinOp::Or | BinOp::Unless => (l, true),
    }
}
