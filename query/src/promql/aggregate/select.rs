//! The selecting aggregations — `topk`, `bottomk`, `limitk`, `limit_ratio` — which return
//! input series (full labels, own `drop_name`) rather than one series per group
//! (Prometheus's `aggregationK`).
//!
//! The parameter is checked over all steps first (Prometheus's `rangeEvalAgg`): `k` below 1
//! at every step gives nothing, a NaN fails, values beyond int64 fail; a ratio of 0 at every
//! step gives nothing, NaN fails, beyond ±1 warns (and is capped).
//!
//! Per work unit (group × step range) every step keeps a heap like Go's `container/heap`
//! (same sift order and comparator, NaN "smaller" than everything), filled by visiting the
//! group's series in input order; so an instant query returns exactly Prometheus's order:
//! `topk`/`bottomk` sort their heap as Go's `sort.Sort` does (insertion sort up to 12
//! elements; beyond, a stable sort, which can order ties differently), `limitk` and
//! `limit_ratio` keep heap order. A range `limit_ratio` needs no heap: each series is kept at
//! the steps where its label hash falls in the ratio.

use super::super::ast::{AggOp, PosRange};
use super::super::error::QueryError;
use super::super::value::{go_format_g, Annotation, Annotations, FPoint, Matrix};
use super::{group_series, total_points, Params, Plan, StepGrid};

/// One heap element: a value and the input series it comes from.
#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    f: f64,
    si: u32,
}

/// Go's `vectorByValueHeap.Less`: NaN is less than everything (itself included).
#[inline]
fn less_value(a: &Entry, b: &Entry) -> bool {
    a.f.is_nan() || a.f < b.f
}

/// Go's `vectorByReverseValueHeap.Less`.
#[inline]
fn less_reverse(a: &Entry, b: &Entry) -> bool {
    a.f.is_nan() || a.f > b.f
}

/// Go's `container/heap` `up`.
fn heap_up(h: &mut [Entry], mut j: usize, less: fn(&Entry, &Entry) -> bool) {
    while j > 0 {
        let i = (j - 1) / 2;
        if !less(&h[j], &h[i]) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

/// Go's `container/heap` `down`; true if the element moved.
fn heap_down(h: &mut [Entry], i0: usize, less: fn(&Entry, &Entry) -> bool) -> bool {
    let n = h.len();
    let mut i = i0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        let j2 = j1 + 1;
        if j2 < n && less(&h[j2], &h[j1]) {
            j = j2;
        }
        if !less(&h[j], &h[i]) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
    i > i0
}

/// Go's `heap.Fix`.
fn heap_fix(h: &mut [Entry], i: usize, less: fn(&Entry, &Entry) -> bool) {
    if !heap_down(h, i, less) {
        heap_up(h, i, less);
    }
}

/// Go's `sort.Sort(sort.Reverse(h))` for a heap with comparator `less`: insertion sort (what
/// Go's pdqsort does for up to 12 elements); beyond that a stable sort putting greater
/// values (per `less`) first, NaN last.
fn sort_reverse(h: &mut [Entry], less: fn(&Entry, &Entry) -> bool) {
    if h.len() <= 12 {
        for i in 1..h.len() {
            let mut j = i;
            // Reverse's Less(j, j-1) is less(h[j-1], h[j]).
            while j > 0 && less(&h[j - 1], &h[j]) {
                h.swap(j, j - 1);
                j -= 1;
            }
        }
        return;
    }
    h.sort_by(|a, b| match (a.f.is_nan(), b.f.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        (false, false) => {
            if less(b, a) {
                std::cmp::Ordering::Less
            } else if less(a, b) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        }
    });
}

/// Largest float that converts to int64 without overflow (Prometheus's `maxInt64`).
const MAX_INT64: f64 = 9_223_372_036_854_774_784.0;
/// Smallest int64 as a float (Prometheus's `minInt64`).
const MIN_INT64: f64 = -9_223_372_036_854_775_808.0;

/// `k` at one step: truncated, capped at the number of input series; 0 means "no output".
fn step_k(param: f64, n_input: usize) -> usize {
    // Range checked beforehand; `as` truncates toward zero.
    let k = (param as i64).min(n_input as i64);
    if k < 1 {
        0
    } else {
        k as usize
    }
}

/// The ratio at one step, capped to [-1, 1]; `None` for 0 ("no output").
fn step_ratio(param: f64) -> Option<f64> {
    if param == 0.0 {
        None
    } else {
        Some(param.clamp(-1.0, 1.0))
    }
}

/// Prometheus's `HashRatioSampler.sampleOffset`: the series' `labels.Hash()` (XXH64 over
/// `name 0xff value 0xff ...`) scaled to [0, 1].
fn sample_offset(labels: &o11y_tsdb::labels::Labels) -> f64 {
    let mut h = xxhash_rust::xxh64::Xxh64::new(0);
    for l in labels.iter() {
        h.update(l.name.as_bytes());
        h.update(&[0xff]);
        h.update(l.value.as_bytes());
        h.update(&[0xff]);
    }
    h.digest() as f64 / u64::MAX as f64
}

/// Prometheus's `AddRatioSample`.
#[inline]
fn ratio_keeps(offset: f64, r: f64) -> bool {
    (r >= 0.0 && offset < r) || (r < 0.0 && offset >= 1.0 + r)
}

/// Checks the parameter over all steps. `Ok(false)`: the result is empty.
fn check_params(
    op: AggOp,
    params: &Params<'_>,
    pos: PosRange,
    annotations: &mut Annotations,
) -> Result<bool, QueryError> {
    match op {
        AggOp::LimitRatio => {
            if params.max == 0.0 && params.min == 0.0 {
                return Ok(false);
            }
            if params.any_nan {
                return Err(QueryError::Execution("Ratio value is NaN".into()));
            }
            let warn = |got: f64, cap: f64, a: &mut Annotations| {
                a.add(Annotation::warning(
                    format!(
                        "ratio value should be between -1 and 1, got {}, capping to {}",
                        go_format_g(got),
                        go_format_g(cap)
                    ),
                    pos,
                ))
            };
            if params.max > 1.0 {
                warn(params.max, 1.0, annotations);
            }
            if params.min < -1.0 {
                warn(params.min, -1.0, annotations);
            }
            Ok(true)
        }
        _ => {
            if params.max < 1.0 {
                return Ok(false);
            }
            if params.any_nan {
                return Err(QueryError::Execution("Parameter value is NaN".into()));
            }
            if params.min <= MIN_INT64 {
                return Err(QueryError::Execution(format!(
                    "Scalar value {} underflows int64",
                    go_format_g(params.min)
                )));
            }
            if params.max >= MAX_INT64 {
                return Err(QueryError::Execution(format!(
                    "Scalar value {} overflows int64",
                    go_format_g(params.max)
                )));
            }
            Ok(true)
        }
    }
}

/// Runs a selecting aggregation over all steps.
#[allow(clippy::too_many_arguments)]
pub(super) fn select(
    op: AggOp,
    grid: &StepGrid,
    grouping: &[String],
    without: bool,
    params: &Params<'_>,
    param_pos: PosRange,
    mut input: Matrix,
    annotations: &mut Annotations,
) -> Result<Matrix, QueryError> {
    if !check_params(op, params, param_pos, annotations)? {
        return Ok(Vec::new());
    }
    let n = grid.len();
    let instant = n == 1;

    if op == AggOp::LimitRatio && !instant {
        // Membership depends only on the series' hash and the step's ratio.
        let ratios: Vec<Option<f64>> = (0..n).map(|s| step_ratio(params.at(s))).collect();
        let keep_series = |s: &mut super::super::value::Series| {
            let offset = sample_offset(&s.metric);
            grid.retain_points(&mut s.floats, |idx| {
                ratios[idx].is_some_and(|r| ratio_keeps(offset, r))
            });
        };
        if Plan::new(1, n, total_points(&input)).parallel {
            use rayon::prelude::*;
            input.par_iter_mut().for_each(keep_series);
        } else {
            input.iter_mut().for_each(keep_series);
        }
        input.retain(|s| !s.floats.is_empty());
        return Ok(input);
    }

    let groups = group_series(&input, grouping, without);
    let plan = Plan::new(groups.len(), n, total_points(&input));
    let offsets: Vec<f64> = if op == AggOp::LimitRatio {
        input.iter().map(|s| sample_offset(&s.metric)).collect()
    } else {
        Vec::new()
    };
    let n_input = input.len();
    let input_ref = &input;
    let groups_ref = &groups;
    let offsets_ref = &offsets;
    let outs: Vec<Vec<(u32, FPoint)>> = plan.run(groups.len(), n, |g, s0, s1| {
        unit(
            op,
            input_ref,
            groups_ref.members(g),
            grid,
            params,
            offsets_ref,
            n_input,
            instant,
            s0,
            s1,
        )
    });

    if instant {
        // Emission order is Prometheus's result order; each series appears at most once.
        let mut result = Vec::with_capacity(outs.iter().map(Vec::len).sum());
        for (si, p) in outs.into_iter().flatten() {
            let s = &mut input[si as usize];
            result.push(super::super::value::Series {
                metric: std::mem::take(&mut s.metric),
                floats: vec![p],
                drop_name: s.drop_name,
            });
        }
        return Ok(result);
    }
    // Range: refill each input series with its selected points (never more than it had);
    // units of one group come in step order, so the points stay sorted.
    for s in input.iter_mut() {
        s.floats.clear();
    }
    for (si, p) in outs.into_iter().flatten() {
        input[si as usize].floats.push(p);
    }
    input.retain(|s| !s.floats.is_empty());
    Ok(input)
}

/// One group over the steps `[s0, s1)`: a heap per step, filled in input order.
#[allow(clippy::too_many_arguments)]
fn unit(
    op: AggOp,
    input: &Matrix,
    members: &[u32],
    grid: &StepGrid,
    params: &Params<'_>,
    offsets: &[f64],
    n_input: usize,
    instant: bool,
    s0: usize,
    s1: usize,
) -> Vec<(u32, FPoint)> {
    // Bound the heaps' memory: at most SELECT_BUF entries per piece of steps.
    let cap = (s0..s1)
        .map(|s| {
            if op == AggOp::LimitRatio {
                members.len()
            } else {
                step_k(params.at(s), n_input)
            }
        })
        .max()
        .unwrap_or(0)
        .min(members.len())
        .max(1);
    let piece_len = (super::buffer_limit(SELECT_BUF) / cap).max(1);
    let mut out = Vec::new();
    let mut a = s0;
    while a < s1 {
        let b = (a + piece_len).min(s1);
        let p = piece(
            op, input, members, grid, params, offsets, n_input, instant, a, b,
        );
        if out.is_empty() {
            out = p;
        } else {
            out.extend_from_slice(&p);
        }
        a = b;
    }
    out
}

/// Most heap entries one work unit holds at once.
const SELECT_BUF: usize = 1 << 20;

/// [`unit`] over the steps `[s0, s1)`.
#[allow(clippy::too_many_arguments)]
fn piece(
    op: AggOp,
    input: &Matrix,
    members: &[u32],
    grid: &StepGrid,
    params: &Params<'_>,
    offsets: &[f64],
    n_input: usize,
    instant: bool,
    s0: usize,
    s1: usize,
) -> Vec<(u32, FPoint)> {
    let len = s1 - s0;
    // Per step: k (or, for limit_ratio, the ratio) and the heap capacity.
    let mut ks = vec![0usize; len];
    let mut ratios = vec![0.0f64; len];
    for j in 0..len {
        let p = params.at(s0 + j);
        if op == AggOp::LimitRatio {
            if let Some(r) = step_ratio(p) {
                ratios[j] = r;
                ks[j] = members.len();
            }
        } else {
            ks[j] = step_k(p, n_input);
        }
    }
    let cap = ks.iter().copied().max().unwrap_or(0).min(members.len());
    if cap == 0 {
        return Vec::new();
    }
    if op == AggOp::Limitk && !instant {
        // Range limitk: the first k series with a point at each step; no order needed.
        let mut counts = vec![0usize; len];
        let mut out = Vec::new();
        // Steps still taking series; once none is, the remaining series cannot matter.
        let mut open = ks.iter().filter(|&&k| k > 0).count();
        for &si in members {
            if open == 0 {
                break;
            }
            let points = grid.slice(&input[si as usize].floats, s0);
            grid.for_each_point(points, s0, s1, |idx, f| {
                let j = idx - s0;
                if counts[j] < ks[j] {
                    counts[j] += 1;
                    if counts[j] == ks[j] {
                        open -= 1;
                    }
                    out.push((
                        si,
                        FPoint {
                            t: grid.time(idx),
                            f,
                        },
                    ));
                }
            });
        }
        return out;
    }
    let mut heaps = vec![Entry::default(); len * cap];
    let mut lens = vec![0usize; len];
    let mut roots = vec![0.0f64; len];
    let mut state = HeapState {
        heaps: &mut heaps,
        lens: &mut lens,
        roots: &mut roots,
        ks: &ks,
        ratios: &ratios,
        cap,
    };
    for &si in members {
        let points = grid.slice(&input[si as usize].floats, s0);
        match op {
            AggOp::Topk => fill_top_bottom::<true>(&mut state, points, si, grid, s0, s1),
            AggOp::Bottomk => fill_top_bottom::<false>(&mut state, points, si, grid, s0, s1),
            _ => fill_limit(&mut state, op, points, si, offsets, grid, s0, s1),
        }
    }
    let mut out = Vec::with_capacity(lens.iter().sum());
    for j in 0..len {
        let heap = &mut heaps[j * cap..j * cap + lens[j]];
        if instant {
            match op {
                AggOp::Topk => sort_reverse(heap, less_value),
                AggOp::Bottomk => sort_reverse(heap, less_reverse),
                _ => {}
            }
        }
        let t = grid.time(s0 + j);
        out.extend(heap.iter().map(|e| (e.si, FPoint { t, f: e.f })));
    }
    out
}

/// The per-step heaps of one work unit.
struct HeapState<'a> {
    heaps: &'a mut [Entry],
    lens: &'a mut [usize],
    /// Value at each full heap's root: most values are rejected against it alone.
    roots: &'a mut [f64],
    ks: &'a [usize],
    ratios: &'a [f64],
    cap: usize,
}

/// Folds one series into the `topk` (`TOP`) or `bottomk` heaps.
fn fill_top_bottom<const TOP: bool>(
    st: &mut HeapState<'_>,
    points: &[FPoint],
    si: u32,
    grid: &StepGrid,
    s0: usize,
    s1: usize,
) {
    let less = if TOP { less_value } else { less_reverse };
    let cap = st.cap;
    grid.for_each_point(points, s0, s1, |idx, f| {
        let j = idx - s0;
        let (Some(&k), Some(&n), Some(&root)) = (st.ks.get(j), st.lens.get(j), st.roots.get(j))
        else {
            return;
        };
        if k == 0 {
            return;
        }
        if n >= k {
            let displaces = if TOP {
                root < f || (root.is_nan() && !f.is_nan())
            } else {
                root > f || (root.is_nan() && !f.is_nan())
            };
            if !displaces {
                return;
            }
        }
        let heap = &mut st.heaps[j * cap..j * cap + cap];
        let e = Entry { f, si };
        if n < k {
            heap[n] = e;
            st.lens[j] = n + 1;
            heap_up(&mut heap[..n + 1], n, less);
        } else {
            // Known to displace the root (checked above).
            heap[0] = e;
            if k > 1 {
                heap_fix(&mut heap[..n], 0, less);
            }
        }
        st.roots[j] = heap[0].f;
    });
}

/// Folds one series into the `limitk` or `limit_ratio` heaps.
#[allow(clippy::too_many_arguments)]
fn fill_limit(
    st: &mut HeapState<'_>,
    op: AggOp,
    points: &[FPoint],
    si: u32,
    offsets: &[f64],
    grid: &StepGrid,
    s0: usize,
    s1: usize,
) {
    let cap = st.cap;
    let offset = offsets.get(si as usize).copied().unwrap_or(1.0);
    grid.for_each_point(points, s0, s1, |idx, f| {
        let j = idx - s0;
        let k = st.ks[j];
        let n = st.lens[j];
        let take = match op {
            AggOp::Limitk => n < k,
            _ => k > 0 && n < cap && ratio_keeps(offset, st.ratios[j]),
        };
        if take {
            let heap = &mut st.heaps[j * cap..j * cap + cap];
            heap[n] = Entry { f, si };
            st.lens[j] = n + 1;
            heap_up(&mut heap[..n + 1], n, less_value);
        }
    });
}
