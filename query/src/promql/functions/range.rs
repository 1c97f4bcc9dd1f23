//! Range-vector functions: one value per series per step from the float points of one window.
//!
//! The engine selects the points with `range_start < t <= range_end` (stale markers removed),
//! calls the [`RangeFn`] from [`lookup`] with the call's scalar arguments, and turns `Some(v)`
//! into a point at the step time. Window bounds matter only to the extrapolating functions
//! (`rate`, `increase`, `delta`); `predict_linear` uses the step time (`ctx.ts`) as the
//! intercept. Sums use Kahan–Neumaier compensation as Prometheus does.

use super::util::{go_format_g, go_quote, kahan_inc, quantile};
use super::{FnCtx, RangeFn, Window};
use crate::promql::value::{Annotation, FPoint};

pub(super) fn lookup(name: &str) -> Option<RangeFn> {
    Some(match name {
        "rate" => rate,
        "increase" => increase,
        "delta" => delta,
        "irate" => irate,
        "idelta" => idelta,
        "deriv" => deriv,
        "predict_linear" => predict_linear,
        "double_exponential_smoothing" => double_exponential_smoothing,
        "changes" => changes,
        "resets" => resets,
        "avg_over_time" => avg_over_time,
        "sum_over_time" => sum_over_time,
        "count_over_time" => count_over_time,
        "min_over_time" => min_over_time,
        "max_over_time" => max_over_time,
        "last_over_time" => last_over_time,
        "first_over_time" => first_over_time,
        "present_over_time" => present_over_time,
        "absent_over_time" => present_over_time,
        "quantile_over_time" => quantile_over_time,
        "stddev_over_time" => stddev_over_time,
        "stdvar_over_time" => stdvar_over_time,
        "mad_over_time" => mad_over_time,
        "ts_of_first_over_time" => ts_of_first_over_time,
        "ts_of_last_over_time" => ts_of_last_over_time,
        "ts_of_max_over_time" => ts_of_max_over_time,
        "ts_of_min_over_time" => ts_of_min_over_time,
        _ => return None,
    })
}

fn rate(w: &Window<'_>, _: &[f64], ctx: &mut FnCtx<'_>) -> Option<f64> {
    let v = extrapolated_rate(w, true, true)?;
    possible_non_counter_info(w, ctx);
    Some(v)
}

fn increase(w: &Window<'_>, _: &[f64], ctx: &mut FnCtx<'_>) -> Option<f64> {
    let v = extrapolated_rate(w, true, false)?;
    possible_non_counter_info(w, ctx);
    Some(v)
}

fn delta(w: &Window<'_>, _: &[f64], _: &mut FnCtx<'_>) -> Option<f64> {
    extrapolated_rate(w, false, false)
}

/// Prometheus's engine adds this info for `rate`/`increase` over a named series that produced
/// at least one point and whose name lacks a counter suffix (at the range argument).
fn possible_non_counter_info(w: &Window<'_>, ctx: &mut FnCtx<'_>) {
    let Some(name) = w.metric.metric_name() else {
        return;
    };
    if name.is_empty()
        || ["_total", "_sum", "_count", "_bucket"]
            .iter()
            .any(|s| name.ends_with(s))
    {
        return;
    }
    let pos = ctx.pos(0);
    ctx.annotations.add(Annotation::info(
        format!(
            "metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {}",
            go_quote(name)
        ),
        pos,
    ));
}

/// Prometheus's `extrapolatedRate`: the difference between the last and first point (plus
/// the value before each counter reset), extrapolated towards the window bounds — all the way
/// if the gap is under 1.1 average sample intervals, else by half an interval — and for
/// counters never past the point where the counter would have been zero.
fn extrapolated_rate(w: &Window<'_>, is_counter: bool, is_rate: bool) -> Option<f64> {
    let pts = w.points;
    if pts.len() < 2 {
        return None;
    }
    let first = pts[0];
    let last = pts[pts.len() - 1];
    let mut result = last.f - first.f;
    if is_counter {
        for p in pts.windows(2) {
            if p[1].f < p[0].f {
                result += p[0].f;
            }
        }
    }
    let mut to_start = (first.t - w.range_start) as f64 / 1000.0;
    let mut to_end = (w.range_end - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg = sampled / (pts.len() - 1) as f64;
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if is_counter {
        let mut to_zero = to_start;
        if result > 0.0 && first.f >= 0.0 {
            to_zero = sampled * (first.f / result);
        }
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= (w.range_end - w.range_start) as f64 / 1000.0;
    }
    Some(result * factor)
}

fn irate(w: &Window<'_>, _: &[f64], _: &mut FnCtx<'_>) -> Option<f64> {
    instant_value(w.points, true)
}

fn idelta(w: &Window<'_>, _: &[f64], _: &mut FnCtx<'_>) -> Option<f64> {
    instant_value(w.points, false)
}

/// The last two points: their difference (for `irate` the last value alone after a counter
/// reset), per second for `irate`.
fn instant_value(pts: &[FPoint], is_rate: bool) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let prev = pts[pts.len() - 2];
    let last = pts[pts.len() - 1];
    let interval = last.t - prev.t;
    if interval == 0 {
        return None;
    }
    let mut v = last.f;
    if !is_rate || last.f >= prev.f || last.f.is_nan() || prev.f.is_nan() {
        v = last.f - prev.f;
    }
    if is_rate {
        v /= interval as f64 / 1000.0;
    }
    Some(v)
}

/// Least-squares fit of the points against time (seconds relative to `intercept_time`):
/// (slope, intercept at `intercept_time`). A constant series has slope 0 (NaN if infinite).
fn linear_regression(pts: &[FPoint], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = pts[0].f;
    let mut const_y = true;
    for (i, p) in pts.iter().enumerate() {
        if const_y && i > 0 && p.f != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (i128::from(p.t) - i128::from(intercept_time)) as f64 / 1e3;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(p.f, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * p.f, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

fn deriv(w: &Window<'_>, _: &[f64], _: &mut FnCtx<'_>) -> Option<f64> {
    if w.points.len() < 2 {
        return None;
    }
    Some(linear_regression(w.points, w.points[0].t).0)
}

fn predict_linear(w: &Window<'_>, s: &[f64], ctx: &mut FnCtx<'_>) -> Option<f64> {
    let duration = *s.first()?;
    if w.points.len() < 2 {
        return None;
    }
    let (slope, intercept) = linear_regression(w.points, ctx.ts);
    Some(slope * duration + intercept)
}

/// Holt's linear smoothing with smoothing factor `s[0]` and trend factor `s[1]` (checked by
/// [`super::validate_range_args`]); the last smoothed value.
fn double_exponential_smoothing(w: &Window<'_>, s: &[f64], _: &mut FnCtx<'_>) -> Option<f64> {
    let (sf, tf) = (*s.first()?, *s.get(1)?);
    if sf <= 0.0 || sf >= 1.0 || tf <= 0.0 || tf >= 1.0 {
        return None;
    }
    let pts = w.points;
    if pts.len() < 2 {
        return None;
    }
    let mut s0 = 0.0;
    let mut s1 = pts[0].f;
    let mut b = pts[1].f - pts[0].f;
    for (i, p) in pts.iter().enumerate().skip(1) {
        let x = sf * p.f;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

fn changes(w: &Window<'_>, _: &[f64], _: &mut FnCtx<'_>) -> Option<f64> {
    if w.points.is_empty() {
        return None;
    }
    let n = w
        .points
        .windows(2)
        .filter(|p| p[1].f != p[0].f && !(p[1].f.is_nan() && p[0].f.is_nan()))
        .count();
    Some(n as f64)
}

fn resets(w: &Window<'_>, _: &[f64], _: &mut FnCtx<'_>) -> Option<f64> {
    if w.points.is_empty() {
        return None;
    }
    let n = w.points.windows(2).filter(|p| p[1].f < p[0].f).count();
    Some(n as f64)
}

/// Mean by Kahan-compensated direct summation, switching to an incremental mean once the sum
/// would overflow.
fn avg_over_time(w: &Window<'_>, _: &[f64], _: &mut FnCtx<'_>) -> Option<f64> {
    let pts = w.points;
    let first = pts.first()?;
    let (mut sum, mut count) = (first.f, 1.0);
    let (mut mean, mut c) = (0.0, 0.0);
    let mut incremental = false;
    for (i, p) in pts.iter().enumerate().skip(1) {
        count = (i + 1) as f64;
        if !incremental {
            let (new_sum, new_c) = kahan_inc(p.f, sum, c);
            if !new_sum.is_infinite() {
                sum = new_sum;
                c = new_c;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(p.f / count, q * mean, q * c);
    }
    if incremental {
        Some(mean + c)
    } else {
        Some(sum / count + c / count)
    }
}

fn sum_over_time(w: &Window<'_>, _: &[f64], _: &mut FnCtx<'_>) -> Option<f64> {
    if w.points.is_empty() {
        return None;
    }
    let (mut sum, mut c) = (0.0, 0.0);
    for p in w.points {
        (sum, c) = kahan_inc(p.f, sum, c);
    }
    Some(if sum.is_infinite() { sum } else { sum + c })
}

fn count_over_time(w: &Window<'_>, _: &[f64], _: &mut FnCtx<'_>) -> Option<f64> {
    if w.points.is_empty() {
        return None;
    }
    Some(w.points.len() as f64)
}

/// The point picked by `better(candidate, best)` scanning in order, starting from the first
/// point; a NaN best is always replaced.
fn pick(pts: &[FPoint], better: impl Fn(f64, f64) -> bool) -> Option<FPoint> {
    let mut best = *pts.first()?;
    for p in pts {
        if better(p.f, best.f) || best.f.is_nan() {
            best = *p;
        }
    }
    Some(best)
}

fn min_over_time(w: &Window<'_>, _: &[f64], _: &mut FnCtx<'_>) -> Option<f64> {
    pick(w.points, |cur, best| cur < best).map(|p| p.f)
}

fn max_over_time(w: &Window<'_>, _: &[f64], _: &mut FnCtx<'_>) -> Option<f64> {
    pick(w.points, |cur, best| cur > best).map(|p| p.f)
}

fn ts_of_min_over_time(w: &Window<'_>, _: &[f64], _: &mut FnCtx<'_>) -> Option<f64> {
    pick(w.points, |cur, best| cur <= best).map(|p| p.t as f64 / 1000.0)
}

fn ts_of_max_over_time(w: &Window<'_>, _: &[f64], _: &mut FnCtx<'_>) -> Option<f64> {
    pick(w.points, |cur, best| cur >= best).map(|p| p.t as f64 / 1000.0)
}

fn last_over_time(w: &Window<'_>, _: &[f64], _: &mut FnCtx<'_>) -> Option<f64> {
    w.points.last().map(|p| p.f)
}

fn first_over_time(w: &Window<'_>, _: &[f64], _: &mut FnCtx<'_>) -> Option<f64> {
    w.points.first().map(|p| p.f)
}

fn ts_of_last_over_time(w: &Window<'_>, _: &[f64], _: &mut FnCtx<'_>) -> Option<f64> {
    w.points.last().map(|p| p.t as f64 / 1000.0)
}

fn ts_of_first_over_time(w: &Window<'_>, _: &[f64], _: &mut FnCtx<'_>) -> Option<f64> {
    w.points.first().map(|p| p.t as f64 / 1000.0)
}

fn present_over_time(w: &Window<'_>, _: &[f64], _: &mut FnCtx<'_>) -> Option<f64> {
    (!w.points.is_empty()).then_some(1.0)
}

/// `quantile_over_time(q, m)`: warns at `q`'s position when `q` is NaN or outside [0, 1].
fn quantile_over_time(w: &Window<'_>, s: &[f64], ctx: &mut FnCtx<'_>) -> Option<f64> {
    let q = *s.first()?;
    if w.points.is_empty() {
        return None;
    }
    if q.is_nan() || !(0.0..=1.0).contains(&q) {
        let pos = ctx.pos(0);
        ctx.annotations.add(Annotation::warning(
            format!(
                "quantile value should be between 0 and 1, got {}",
                go_format_g(q)
            ),
            pos,
        ));
    }
    let mut values: Vec<f64> = w.points.iter().map(|p| p.f).collect();
    Some(quantile(q, &mut values))
}

/// Population variance by Welford's method with Kahan-compensated mean and sum of squares.
fn variance(pts: &[FPoint]) -> Option<f64> {
    if pts.is_empty() {
        return None;
    }
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in pts {
        count += 1.0;
        let delta = p.f - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (p.f - (mean + c_mean)), aux, c_aux);
    }
    Some((aux + c_aux) / count)
}

fn stdvar_over_time(w: &Window<'_>, _: &[f64], _: &mut FnCtx<'_>) -> Option<f64> {
    variance(w.points)
}

fn stddev_over_time(w: &Window<'_>, _: &[f64], _: &mut FnCtx<'_>) -> Option<f64> {
    variance(w.points).map(f64::sqrt)
}

/// Median absolute deviation from the median; NaN if any point is NaN.
fn mad_over_time(w: &Window<'_>, _: &[f64], _: &mut FnCtx<'_>) -> Option<f64> {
    if w.points.is_empty() {
        return None;
    }
    if w.points.iter().any(|p| p.f.is_nan()) {
        return Some(f64::NAN);
    }
    let mut values: Vec<f64> = w.points.iter().map(|p| p.f).collect();
    let median = quantile(0.5, &mut values);
    let mut dev: Vec<f64> = w.points.iter().map(|p| (p.f - median).abs()).collect();
    Some(quantile(0.5, &mut dev))
}
