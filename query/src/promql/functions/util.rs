//! Numeric helpers shared by the function families: Kahan–Neumaier summation as Prometheus's
//! `kahansum.Inc`, Go's `math.Max`/`math.Min` NaN rules, OpenMetrics float formatting (for
//! `histogram_quantiles` labels), Prometheus's `quantile`, `almost.Equal`, and a merge sort
//! that tolerates inconsistent comparators. Go float formatting lives in [`crate::promql::value`],
//! Go-quoting in the lexer; both are re-exported here for the function families.

pub(crate) use crate::promql::lexer::go_quote;
pub(crate) use crate::promql::value::{go_format_f6, go_format_g};

/// Prometheus's `kahanSumInc` (Kahan-Babuska-Neumaier): adds `inc` to `sum` with compensation
/// `c`; returns the new sum and compensation.
#[inline]
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    // Same arithmetic as Go's `switch`, written as selects: the magnitude comparison is
    // unpredictable on real data and a branch on it costs more than the whole update.
    let sum_bigger = sum.abs() >= inc.abs();
    let big = if sum_bigger { sum } else { inc };
    let small = if sum_bigger { inc } else { sum };
    let c = c + ((big - t) + small);
    (t, if t.is_infinite() { 0.0 } else { c })
}

/// Go's `math.Max`: +Inf wins over NaN, otherwise NaN wins; +0 beats −0.
pub(crate) fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        return f64::INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && x == y {
        return if x.is_sign_negative() { y } else { x };
    }
    if x > y {
        x
    } else {
        y
    }
}

/// Go's `math.Min`: −Inf wins over NaN, otherwise NaN wins; −0 beats +0.
pub(crate) fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && x == y {
        return if x.is_sign_negative() { x } else { y };
    }
    if x < y {
        x
    } else {
        y
    }
}

/// Prometheus's `labels.FormatOpenMetricsFloat`: `%g` form, with `.0` appended to integral
/// values (`1.0`, `0.25`, `1e-05`, `+Inf`, `NaN`).
pub(crate) fn format_openmetrics_float(f: f64) -> String {
    let s = go_format_g(f);
    if f.is_nan() || f.is_infinite() || s.contains(['e', '.']) {
        s
    } else {
        s + ".0"
    }
}

/// Prometheus's `maybeAddMetricName`: appends ` for metric name "<name>"` when the name is
/// known.
pub(crate) fn with_metric_name(msg: String, name: &str) -> String {
    if name.is_empty() {
        msg
    } else {
        format!("{msg} for metric name {}", go_quote(name))
    }
}

/// Stable merge sort by a "less" predicate. Unlike `slice::sort_by` it never panics when the
/// predicate is not a strict weak order (Prometheus's NaN and natural-order comparators are
/// not); the result is then some permutation, as with Go's sort.
pub(crate) fn merge_sort_by<T: Clone>(v: &mut [T], less: &impl Fn(&T, &T) -> bool) {
    let n = v.len();
    if n < 2 {
        return;
    }
    let mid = n / 2;
    merge_sort_by(&mut v[..mid], less);
    merge_sort_by(&mut v[mid..], less);
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, mid);
    while i < mid && j < n {
        if less(&v[j], &v[i]) {
            merged.push(v[j].clone());
            j += 1;
        } else {
            merged.push(v[i].clone());
            i += 1;
        }
    }
    merged.extend_from_slice(&v[i..mid]);
    merged.extend_from_slice(&v[j..n]);
    v.clone_from_slice(&merged);
}

/// Prometheus's `quantile`: NaN for no values or a NaN `q`, -Inf/+Inf for `q` below 0/above
/// 1, otherwise linear interpolation between the closest ranks, NaN sorting first.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // Only the values at two adjacent ranks are needed: select instead of sorting.
    let order = |a: &f64, b: &f64| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        (false, false) => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    };
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (n - 1.0).min(lower + 1.0);
    let weight = rank - rank.floor();
    let (li, ui) = (lower as usize, upper as usize);
    let (_, lv, rest) = values.select_nth_unstable_by(li, order);
    let lv = *lv;
    let uv = if ui == li {
        lv
    } else {
        // The next rank is the smallest of the values above.
        rest.iter().copied().min_by(order).unwrap_or(lv)
    };
    lv * (1.0 - weight) + uv * weight
}

/// Prometheus's `almost.Equal`: both NaN (any NaN, stale markers included), exactly equal, or
/// a difference below `epsilon` relative to the sum of magnitudes (absolute near zero).
pub fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let min_normal = f64::MIN_POSITIVE;
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < min_normal {
        return diff < epsilon * min_normal;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}
