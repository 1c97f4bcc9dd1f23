//! Aggregation operators: `sum`, `avg`, `count`, `min`, `max`, `group`, `stddev`, `stdvar`,
//! `quantile`, `topk`, `bottomk`, `limitk`, `limit_ratio` and `count_values`, with Prometheus
//! 3.x semantics (`promql/engine.go`: `rangeEvalAgg`, `aggregation`, `aggregationK`,
//! `aggregationCountValues`).
//!
//! This module owns the contract ([`AggregateCall`], [`aggregate`]), the grouping of input
//! series, the parameter checks (errors and warnings) and the split of the work into units.
//!
//! ```text
//!   Matrix (one point per step per series)
//!     │ group_series: one grouping key per series, computed once (not per step)
//!     ▼
//!   groups (first-appearance order) × step chunks  = work units, run on rayon when large
//!     │ reduce::reduce   sum/avg/count/min/max/group/stddev/stdvar/quantile: per-step
//!     │                  accumulators, series visited in input order (Kahan order matches)
//!     │ select::select   topk/bottomk/limitk/limit_ratio: per-step Go-style heaps
//!     │ count_values     step-major, one output per (group, value)
//!     ▼
//!   Matrix: one series per group (per selected input series for the k operators)
//! ```
//!
//! Ordering: for an instant query (`start == end`) the returned order is Prometheus's:
//! groups in order of their first input series, and within a group `topk` descending,
//! `bottomk` ascending (NaN last), `limitk`/`limit_ratio` in Go heap order. For range
//! queries the order is unspecified (the engine sorts by labels).
//!
//! `drop_name`: reductions set it when any series of the group carried it at the group's
//! last step with a value (Prometheus 3's delayed name removal); the k operators keep the
//! input series' flag; `count_values` outputs never carry it.
//!
//! Errors are [`QueryError::Execution`] with Prometheus's messages (its API reports
//! `ev.errorf` failures as `execution`): `Parameter value is NaN`, `Scalar value 1e+20
//! overflows int64`, `Ratio value is NaN`, `invalid label name "..."`. Warnings (quantile and
//! ratio out of range) are placed at the parameter.
//!
//! Known deviation: `topk`/`bottomk` with more than 12 results per group order tied values
//! by a stable sort, where Go's pdqsort may order ties differently.

mod count_values;
mod reduce;
mod select;
#[cfg(test)]
mod tests;

use o11y_tsdb::labels::{Label, Labels, METRIC_NAME};
use rayon::prelude::*;

use super::ast::{AggOp, PosRange};
use super::error::QueryError;
use super::functions::util::{go_max, go_min};
use super::value::{go_format_g, Annotations, Matrix};

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
    input: Matrix,
    annotations: &mut Annotations,
) -> Result<Matrix, QueryError> {
    let grid = StepGrid::new(call.steps)?;
    let mut grouping: Vec<String> = call.grouping.to_vec();
    grouping.sort();
    grouping.dedup();
    let param_pos = call.param_pos.unwrap_or(call.pos);
    match call.op {
        AggOp::CountValues => {
            let AggParam::String(label) = &call.param else {
                return Err(QueryError::Execution(
                    "count_values expects a string parameter".into(),
                ));
            };
            count_values::count_values(&grid, &grouping, call.without, label, input)
        }
        AggOp::Topk | AggOp::Bottomk | AggOp::Limitk | AggOp::LimitRatio => {
            let params = Params::new(call.op, &call.param)?;
            select::select(
                call.op,
                &grid,
                &grouping,
                call.without,
                &params,
                param_pos,
                input,
                annotations,
            )
        }
        AggOp::Quantile => {
            let params = Params::new(call.op, &call.param)?;
            params.quantile_warnings(param_pos, annotations);
            reduce::reduce(call.op, &grid, &grouping, call.without, &params, input)
        }
        op => {
            let params = Params::none();
            reduce::reduce(op, &grid, &grouping, call.without, &params, input)
        }
    }
}

/// Most steps one evaluation may have (far above any API limit; guards allocations).
const MAX_STEPS: i128 = 1 << 26;

/// The step timestamps `start + i*step`, and the inverse mapping of a timestamp to its step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StepGrid {
    start: i64,
    step: i64,
    n: usize,
}

impl StepGrid {
    fn new(s: Steps) -> Result<StepGrid, QueryError> {
        if s.end <= s.start || s.step <= 0 {
            return Ok(StepGrid {
                start: s.start,
                step: s.step.max(1),
                n: 1,
            });
        }
        let n = (i128::from(s.end) - i128::from(s.start)) / i128::from(s.step) + 1;
        if n > MAX_STEPS {
            return Err(QueryError::Execution(format!(
                "aggregation over too many steps ({n})"
            )));
        }
        Ok(StepGrid {
            start: s.start,
            step: s.step,
            // Bounded by MAX_STEPS above.
            n: n as usize,
        })
    }

    /// Number of steps.
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// The timestamp of step `i` (`i < len()`).
    pub(crate) fn time(&self, i: usize) -> i64 {
        self.start.wrapping_add((i as i64).wrapping_mul(self.step))
    }

    /// The step whose timestamp is `t`, if any.
    #[inline]
    pub(crate) fn index(&self, t: i64) -> Option<usize> {
        if self.n == 1 {
            return (t == self.start).then_some(0);
        }
        // i64 arithmetic only (an i128 division is a slow library call).
        let d = t.checked_sub(self.start)?;
        if d < 0 || d % self.step != 0 {
            return None;
        }
        let i = (d / self.step) as u64;
        (i < self.n as u64).then_some(i as usize)
    }

    /// Iterates `(step index, value)` over `points` (ascending timestamps) restricted to the
    /// steps `[s0, s1)`, skipping points that are not on a step and repeated steps.
    #[inline]
    pub(crate) fn for_each_point(
        &self,
        points: &[super::value::FPoint],
        s0: usize,
        s1: usize,
        mut f: impl FnMut(usize, f64),
    ) {
        if s1 <= s0 {
            return;
        }
        let t_last = self.time(s1 - 1);
        let mut next = s0;
        // Timestamp of step `next`, kept in step with it (dense series hit it every time).
        let mut t_next = self.time(s0);
        for p in points {
            let t = p.t;
            if t > t_last {
                break;
            }
            let idx = if t == t_next {
                next
            } else {
                match self.index(t) {
                    Some(i) if i >= next && i < s1 => i,
                    _ => continue,
                }
            };
            f(idx, p.f);
            next = idx + 1;
            t_next = t.wrapping_add(self.step);
        }
    }

    /// Keeps the points (on a step, first per step) for whose step `keep` is true.
    pub(crate) fn retain_points(
        &self,
        points: &mut Vec<super::value::FPoint>,
        mut keep: impl FnMut(usize) -> bool,
    ) {
        let mut next = 0;
        let mut kept = 0;
        for i in 0..points.len() {
            let p = points[i];
            let idx = if next < self.n && p.t == self.time(next) {
                next
            } else {
                match self.index(p.t) {
                    Some(x) if x >= next => x,
                    _ => continue,
                }
            };
            next = idx + 1;
            if keep(idx) {
                points[kept] = p;
                kept += 1;
            }
        }
        points.truncate(kept);
    }

    /// The points from step `s0` on (callers stop at their own end step). Dense series have
    /// their point for step `s0` at a predictable index, so the start is found by galloping
    /// from that guess: O(1) for gap-free series instead of a binary search over cold memory.
    pub(crate) fn slice<'p>(
        &self,
        points: &'p [super::value::FPoint],
        s0: usize,
    ) -> &'p [super::value::FPoint] {
        let Some(first) = points.first() else {
            return points;
        };
        let t0 = self.time(s0);
        if s0 == 0 || first.t >= t0 {
            return points;
        }
        let n = points.len();
        let guess = ((i128::from(t0) - i128::from(first.t)) / i128::from(self.step))
            .clamp(0, (n - 1) as i128) as usize;
        let before = |i: usize| points[i].t < t0;
        // Invariant: the answer `a` satisfies before(i) for i < a and !before(i) for i >= a.
        let (lo, hi) = if before(guess) {
            // a > guess: gallop forward.
            let (mut lo, mut step) = (guess, 1usize);
            loop {
                let i = lo.saturating_add(step);
                if i >= n {
                    break (lo, n);
                }
                if !before(i) {
                    break (lo, i);
                }
                lo = i;
                step = step.saturating_mul(2);
            }
        } else {
            // a <= guess: gallop backward.
            let (mut hi, mut step) = (guess, 1usize);
            loop {
                if hi == 0 {
                    return points;
                }
                let i = hi.saturating_sub(step);
                if before(i) {
                    break (i, hi);
                }
                hi = i;
                step = step.saturating_mul(2);
            }
        };
        // before(lo) holds and !before(hi) (or hi == n): search strictly between.
        let a = lo + 1 + points[lo + 1..hi].partition_point(|p| p.t < t0);
        &points[a..]
    }
}

/// The per-step parameter of `topk`, `bottomk`, `limitk`, `limit_ratio` and `quantile`, with
/// the summary Prometheus checks before evaluating (`fParams`: min, max, any NaN — folded
/// with Go's `math.Min`/`math.Max`, which propagate NaN).
pub(crate) struct Params<'a> {
    values: &'a [f64],
    min: f64,
    max: f64,
    any_nan: bool,
}

impl<'a> Params<'a> {
    fn none() -> Params<'static> {
        Params {
            values: &[],
            min: 0.0,
            max: 0.0,
            any_nan: false,
        }
    }

    fn new(op: AggOp, p: &'a AggParam) -> Result<Params<'a>, QueryError> {
        let AggParam::Scalars(values) = p else {
            return Err(QueryError::Execution(format!(
                "{op} expects a number parameter"
            )));
        };
        if values.is_empty() {
            // Go's zero-valued fParams: min = max = 0.
            return Ok(Params {
                values,
                min: 0.0,
                max: 0.0,
                any_nan: false,
            });
        }
        let mut min = f64::MAX;
        let mut max = -f64::MAX;
        let mut any_nan = false;
        for &v in values.iter() {
            max = go_max(max, v);
            min = go_min(min, v);
            any_nan |= v.is_nan();
        }
        Ok(Params {
            values,
            min,
            max,
            any_nan,
        })
    }

    /// The value at step `i` (0 past the end, as Go's `fParams.Next`).
    pub(crate) fn at(&self, i: usize) -> f64 {
        self.values.get(i).copied().unwrap_or(0.0)
    }

    fn quantile_warnings(&self, pos: PosRange, annotations: &mut Annotations) {
        let warn = |q: f64, a: &mut Annotations| {
            a.add(super::value::Annotation::warning(
                format!(
                    "quantile value should be between 0 and 1, got {}",
                    go_format_g(q)
                ),
                pos,
            ))
        };
        if self.any_nan {
            warn(f64::NAN, annotations);
        }
        if self.max > 1.0 {
            warn(self.max, annotations);
        }
        if self.min < 0.0 {
            warn(self.min, annotations);
        }
    }
}

/// Input series assigned to groups; groups are numbered in order of their first series.
pub(crate) struct Groups {
    /// Per group, its series in input order (CSR layout: `members[offsets[g]..offsets[g+1]]`).
    offsets: Vec<usize>,
    members: Vec<u32>,
}

impl Groups {
    pub(crate) fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub(crate) fn members(&self, g: usize) -> &[u32] {
        &self.members[self.offsets[g]..self.offsets[g + 1]]
    }

    /// The first series of group `g` (groups are never empty).
    pub(crate) fn first(&self, g: usize) -> usize {
        self.members[self.offsets[g]] as usize
    }
}

/// Whether the label `name` is part of the grouping: listed in `by (grouping)`, or for
/// `without` neither listed nor `__name__`; never the `skip` label. `grouping` is sorted.
fn groups_by(name: &str, grouping: &[String], without: bool, skip: Option<&str>) -> bool {
    if skip == Some(name) {
        return false;
    }
    let listed = grouping.binary_search_by(|g| g.as_str().cmp(name)).is_ok();
    if without {
        !listed && name != METRIC_NAME
    } else {
        listed
    }
}

/// Appends the grouping key of `labels` to `buf`: the `name 0xff value 0xff` bytes of the
/// labels kept by `by (grouping)`, or of all labels but `grouping` and `__name__` for
/// `without`. `skip` names one more label to leave out (the `count_values` label).
pub(crate) fn grouping_key(
    labels: &Labels,
    grouping: &[String],
    without: bool,
    skip: Option<&str>,
    buf: &mut Vec<u8>,
) {
    for l in labels.iter() {
        if groups_by(&l.name, grouping, without, skip) {
            buf.extend_from_slice(l.name.as_bytes());
            buf.push(0xff);
            buf.extend_from_slice(l.value.as_bytes());
            buf.push(0xff);
        }
    }
}

/// The output labels of a group whose first series has `labels` (Prometheus's
/// `generateGroupingLabels`): `by` keeps the listed labels, `without` drops them and
/// `__name__`.
pub(crate) fn grouping_labels(
    labels: &Labels,
    grouping: &[String],
    without: bool,
    skip: Option<&str>,
) -> Vec<Label> {
    labels
        .iter()
        .filter(|l| groups_by(&l.name, grouping, without, skip))
        .cloned()
        .collect()
}

/// Assigns every series of `input` to its group, computing each series' key once.
pub(crate) fn group_series(input: &Matrix, grouping: &[String], without: bool) -> Groups {
    let mut series_group: Vec<u32> = Vec::with_capacity(input.len());
    let mut n_groups: u32 = 0;
    if !without && grouping.is_empty() {
        // `sum(x)`: one group.
        series_group.resize(input.len(), 0);
        n_groups = u32::from(!input.is_empty());
    } else {
        let mut index: std::collections::HashMap<Box<[u8]>, u32> = std::collections::HashMap::new();
        let mut buf = Vec::with_capacity(256);
        for s in input {
            buf.clear();
            grouping_key(&s.metric, grouping, without, None, &mut buf);
            let g = match index.get(buf.as_slice()) {
                Some(&g) => g,
                None => {
                    let g = n_groups;
                    n_groups += 1;
                    index.insert(buf.as_slice().into(), g);
                    g
                }
            };
            series_group.push(g);
        }
    }
    // Counting sort into CSR, keeping input order within each group.
    let mut offsets = vec![0usize; n_groups as usize + 1];
    for &g in &series_group {
        offsets[g as usize + 1] += 1;
    }
    for i in 1..offsets.len() {
        offsets[i] += offsets[i - 1];
    }
    let mut fill = offsets.clone();
    let mut members = vec![0u32; series_group.len()];
    for (si, &g) in series_group.iter().enumerate() {
        members[fill[g as usize]] = si as u32;
        fill[g as usize] += 1;
    }
    Groups { offsets, members }
}

/// How the work is split: `chunks` step ranges per group; run on rayon when `parallel`.
pub(crate) struct Plan {
    pub(crate) chunks: usize,
    pub(crate) parallel: bool,
}

/// Below this many input points the work runs on the calling thread.
const PARALLEL_MIN_POINTS: usize = 32 * 1024;

impl Plan {
    pub(crate) fn new(n_groups: usize, n_steps: usize, total_points: usize) -> Plan {
        let threads = rayon::current_num_threads().max(1);
        let parallel = threads > 1 && total_points >= PARALLEL_MIN_POINTS;
        let chunks = if !parallel || n_groups >= threads * 4 {
            1
        } else {
            (threads * 4)
                .div_ceil(n_groups.max(1))
                .min(n_steps / 16)
                .max(1)
        };
        Plan { chunks, parallel }
    }

    /// Step range `[s0, s1)` of chunk `c`.
    pub(crate) fn chunk(&self, c: usize, n_steps: usize) -> (usize, usize) {
        (c * n_steps / self.chunks, (c + 1) * n_steps / self.chunks)
    }

    /// Runs `f(group, s0, s1)` for every (group, chunk) unit; results in (group, chunk) order.
    pub(crate) fn run<T: Send>(
        &self,
        n_groups: usize,
        n_steps: usize,
        f: impl Fn(usize, usize, usize) -> T + Sync,
    ) -> Vec<T> {
        let units = n_groups * self.chunks;
        let unit = |u: usize| {
            let (s0, s1) = self.chunk(u % self.chunks, n_steps);
            f(u / self.chunks, s0, s1)
        };
        if self.parallel {
            (0..units).into_par_iter().map(unit).collect()
        } else {
            (0..units).map(unit).collect()
        }
    }
}

/// Under test, work buffers are tiny so that the piece-wise paths run (the timing test
/// turns this off).
#[cfg(test)]
pub(crate) static SMALL_BUFFERS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(true);

/// `n`, or a tiny limit under test (see `SMALL_BUFFERS`).
pub(crate) fn buffer_limit(n: usize) -> usize {
    #[cfg(test)]
    if SMALL_BUFFERS.load(std::sync::atomic::Ordering::Relaxed) {
        return 64;
    }
    n
}

/// Total number of points of `input`.
pub(crate) fn total_points(input: &Matrix) -> usize {
    input.iter().map(|s| s.floats.len()).sum()
}
