//! The reducing aggregations — `sum`, `avg`, `count`, `min`, `max`, `group`, `stddev`,
//! `stdvar`, `quantile` — which produce one series per group (Prometheus's `aggregation`).
//!
//! Each work unit (one group, one range of steps) holds one accumulator per step. The group's
//! series are visited in input order and each point is folded into the accumulator of its
//! step, so every step sees its values in the same order as Prometheus's per-step loop; that
//! order matters for Kahan summation and the incremental mean. Then each step with a value
//! yields one output point.

use o11y_tsdb::labels::Labels;

use super::super::ast::AggOp;
use super::super::error::QueryError;
use super::super::functions::util::{kahan_inc, quantile};
use super::super::value::{FPoint, Matrix, Series};
use super::{group_series, grouping_labels, total_points, Params, Plan, StepGrid};

/// Folds one step's values. `first` starts a step, `add` folds each further value (in input
/// order), `value` is the step's result.
trait Acc: Copy + Default + Send {
    fn first(f: f64) -> Self;
    fn add(&mut self, f: f64);
    fn value(&self) -> f64;
}

#[derive(Clone, Copy, Default)]
struct Sum {
    v: f64,
    c: f64,
}

impl Acc for Sum {
    #[inline]
    fn first(f: f64) -> Self {
        Sum { v: f, c: 0.0 }
    }
    #[inline]
    fn add(&mut self, f: f64) {
        (self.v, self.c) = kahan_inc(f, self.v, self.c);
    }
    fn value(&self) -> f64 {
        self.v + self.c
    }
}

/// Mean: a Kahan sum divided at the end, switching to an incremental mean from the first
/// value whose sum would overflow.
#[derive(Clone, Copy, Default)]
struct Avg {
    v: f64,
    c: f64,
    mean: f64,
    n: f64,
    incremental: bool,
}

impl Acc for Avg {
    #[inline]
    fn first(f: f64) -> Self {
        Avg {
            v: f,
            c: 0.0,
            mean: f,
            n: 1.0,
            incremental: false,
        }
    }
    #[inline]
    fn add(&mut self, f: f64) {
        self.n += 1.0;
        if !self.incremental {
            let (v, c) = kahan_inc(f, self.v, self.c);
            if !v.is_infinite() {
                self.v = v;
                self.c = c;
                return;
            }
            self.incremental = true;
            self.mean = self.v / (self.n - 1.0);
            self.c /= self.n - 1.0;
        }
        let q = (self.n - 1.0) / self.n;
        (self.mean, self.c) = kahan_inc(f / self.n, q * self.mean, q * self.c);
    }
    fn value(&self) -> f64 {
        if self.incremental {
            self.mean + self.c
        } else {
            self.v / self.n + self.c / self.n
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Count {
    n: f64,
}

impl Acc for Count {
    #[inline]
    fn first(_: f64) -> Self {
        Count { n: 1.0 }
    }
    #[inline]
    fn add(&mut self, _: f64) {
        self.n += 1.0;
    }
    fn value(&self) -> f64 {
        self.n
    }
}

#[derive(Clone, Copy, Default)]
struct Group;

impl Acc for Group {
    #[inline]
    fn first(_: f64) -> Self {
        Group
    }
    #[inline]
    fn add(&mut self, _: f64) {}
    fn value(&self) -> f64 {
        1.0
    }
}

/// `max`: a NaN is replaced by any later value.
#[derive(Clone, Copy, Default)]
struct Max {
    v: f64,
}

impl Acc for Max {
    #[inline]
    fn first(f: f64) -> Self {
        Max { v: f }
    }
    #[inline]
    fn add(&mut self, f: f64) {
        if self.v < f || self.v.is_nan() {
            self.v = f;
        }
    }
    fn value(&self) -> f64 {
        self.v
    }
}

/// `min`: a NaN is replaced by any later value.
#[derive(Clone, Copy, Default)]
struct Min {
    v: f64,
}

impl Acc for Min {
    #[inline]
    fn first(f: f64) -> Self {
        Min { v: f }
    }
    #[inline]
    fn add(&mut self, f: f64) {
        if self.v > f || self.v.is_nan() {
            self.v = f;
        }
    }
    fn value(&self) -> f64 {
        self.v
    }
}

/// Welford's running variance; a NaN or infinite first value makes the result NaN.
#[derive(Clone, Copy, Default)]
struct Var<const SQRT: bool> {
    n: f64,
    mean: f64,
    m2: f64,
}

impl<const SQRT: bool> Acc for Var<SQRT> {
    #[inline]
    fn first(f: f64) -> Self {
        Var {
            n: 1.0,
            mean: f,
            m2: if f.is_finite() { 0.0 } else { f64::NAN },
        }
    }
    #[inline]
    fn add(&mut self, f: f64) {
        self.n += 1.0;
        let delta = f - self.mean;
        self.mean += delta / self.n;
        self.m2 += delta * (f - self.mean);
    }
    fn value(&self) -> f64 {
        if SQRT {
            (self.m2 / self.n).sqrt()
        } else {
            self.m2 / self.n
        }
    }
}

/// Output of one work unit: the points of its steps that have a value, and the `drop_name`
/// state at the last of them.
type UnitOut = (Vec<FPoint>, Option<bool>);

/// Seen-flag and drop-name flag of one step.
const SEEN: u8 = 1;
const DROP: u8 = 2;

fn unit<A: Acc>(input: &Matrix, members: &[u32], grid: &StepGrid, s0: usize, s1: usize) -> UnitOut {
    let len = s1 - s0;
    let mut acc: Vec<A> = vec![A::default(); len];
    let mut state: Vec<u8> = vec![0; len];
    for &si in members {
        let s = &input[si as usize];
        let drop = if s.drop_name { DROP } else { 0 };
        let points = grid.slice(&s.floats, s0);
        grid.for_each_point(points, s0, s1, |idx, f| {
            let j = idx - s0;
            if state[j] & SEEN == 0 {
                acc[j] = A::first(f);
                state[j] = SEEN | drop;
            } else {
                acc[j].add(f);
                state[j] |= drop;
            }
        });
    }
    let mut out = Vec::with_capacity(state.iter().filter(|&&s| s & SEEN != 0).count());
    let mut last_drop = None;
    for j in 0..len {
        if state[j] & SEEN != 0 {
            out.push(FPoint {
                t: grid.time(s0 + j),
                f: acc[j].value(),
            });
            last_drop = Some(state[j] & DROP != 0);
        }
    }
    (out, last_drop)
}

fn quantile_unit(
    input: &Matrix,
    members: &[u32],
    grid: &StepGrid,
    params: &Params<'_>,
    s0: usize,
    s1: usize,
) -> UnitOut {
    // Values of step j at values[j*m ..][..counts[j]], in pieces of at most QUANTILE_BUF
    // values so that the buffer stays small whatever the group size.
    let m = members.len().max(1);
    let piece = (super::buffer_limit(QUANTILE_BUF) / m).max(1);
    let mut out = Vec::new();
    let mut last_drop = None;
    let mut a = s0;
    while a < s1 {
        let b = (a + piece).min(s1);
        let (p, d) = quantile_piece(input, members, grid, params, a, b);
        out.extend_from_slice(&p);
        if d.is_some() {
            last_drop = d;
        }
        a = b;
    }
    (out, last_drop)
}

/// Most values buffered at once by one quantile work unit.
const QUANTILE_BUF: usize = 1 << 20;

fn quantile_piece(
    input: &Matrix,
    members: &[u32],
    grid: &StepGrid,
    params: &Params<'_>,
    s0: usize,
    s1: usize,
) -> UnitOut {
    let len = s1 - s0;
    let m = members.len();
    let mut values: Vec<f64> = vec![0.0; len * m];
    let mut counts: Vec<usize> = vec![0; len];
    let mut state: Vec<u8> = vec![0; len];
    for &si in members {
        let s = &input[si as usize];
        let drop = if s.drop_name { DROP } else { 0 };
        let points = grid.slice(&s.floats, s0);
        grid.for_each_point(points, s0, s1, |idx, f| {
            let j = idx - s0;
            values[j * m + counts[j]] = f;
            counts[j] += 1;
            state[j] |= SEEN | drop;
        });
    }
    let mut out = Vec::new();
    let mut last_drop = None;
    for j in 0..len {
        if state[j] & SEEN != 0 {
            let vals = &mut values[j * m..j * m + counts[j]];
            out.push(FPoint {
                t: grid.time(s0 + j),
                f: quantile(params.at(s0 + j), vals),
            });
            last_drop = Some(state[j] & DROP != 0);
        }
    }
    (out, last_drop)
}

/// Runs a reducing aggregation over all steps.
pub(super) fn reduce(
    op: AggOp,
    grid: &StepGrid,
    grouping: &[String],
    without: bool,
    params: &Params<'_>,
    input: Matrix,
) -> Result<Matrix, QueryError> {
    let groups = group_series(&input, grouping, without);
    let n = grid.len();
    let plan = Plan::new(groups.len(), n, total_points(&input));
    let input_ref = &input;
    let groups_ref = &groups;
    macro_rules! run {
        ($acc:ty) => {
            plan.run(groups.len(), n, |g, s0, s1| {
                unit::<$acc>(input_ref, groups_ref.members(g), grid, s0, s1)
            })
        };
    }
    let outs: Vec<UnitOut> = match op {
        AggOp::Sum => run!(Sum),
        AggOp::Avg => run!(Avg),
        AggOp::Count => run!(Count),
        AggOp::Group => run!(Group),
        AggOp::Min => run!(Min),
        AggOp::Max => run!(Max),
        AggOp::Stddev => run!(Var<true>),
        AggOp::Stdvar => run!(Var<false>),
        AggOp::Quantile => plan.run(groups.len(), n, |g, s0, s1| {
            quantile_unit(input_ref, groups_ref.members(g), grid, params, s0, s1)
        }),
        _ => {
            return Err(QueryError::Execution(format!(
                "{op} is not a reducing aggregation"
            )))
        }
    };

    let mut result = Vec::with_capacity(groups.len());
    let mut outs = outs.into_iter();
    for g in 0..groups.len() {
        let mut points: Vec<FPoint> = Vec::new();
        let mut drop_name = false;
        for _ in 0..plan.chunks {
            let Some((p, d)) = outs.next() else { break };
            if points.is_empty() {
                points = p;
            } else {
                points.extend_from_slice(&p);
            }
            if let Some(d) = d {
                drop_name = d;
            }
        }
        if points.is_empty() {
            continue;
        }
        let metric = Labels::from_sorted_unchecked(grouping_labels(
            &input[groups.first(g)].metric,
            grouping,
            without,
            None,
        ));
        result.push(Series {
            metric,
            floats: points,
            drop_name,
        });
    }
    Ok(result)
}
