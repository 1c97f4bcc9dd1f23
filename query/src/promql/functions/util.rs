//! Numeric helpers shared by the function families: Kahan–Neumaier summation as Prometheus's
//! `kahansum.Inc`, Go's `math.Max`/`math.Min` NaN rules, Go's `%g`/`%f` float formatting (for
//! annotation and error texts), OpenMetrics float formatting (for `histogram_quantiles`
//! labels), Go-quoting, and a merge sort that tolerates inconsistent comparators.

/// One step of Kahan–Neumaier summation: adds `inc` to `sum` with compensation `c`.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
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

/// Shortest decimal digits and decimal exponent of a finite, non-zero `f`: `f = 0.d1d2... ×
/// 10^(exp+1)`, i.e. `exp` is the exponent of the first digit.
fn shortest_digits(f: f64) -> (String, i32) {
    let s = format!("{:e}", f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    (digits, exp.parse().unwrap_or(0))
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` (also what `%g` prints): shortest digits,
/// exponent form (`1e+06`, `1.5e-05`) when the decimal exponent is < −4 or ≥ 6.
pub fn go_format_g(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let (digits, exp) = shortest_digits(f);
    let mut out = String::new();
    if f < 0.0 {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        out.push_str(&e.to_string());
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

/// Go's `%f` (six decimals), with Go's spellings of NaN and infinities.
pub(crate) fn go_format_f6(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "+Inf".into()
    } else if f == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{f:.6}")
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

/// Go's `%q` of a string.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = o11y_tsdb::labels::write_go_quoted(&mut out, s);
    out
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

/// Prometheus's `quantile`: the φ-quantile of `values` (sorted here, NaN first), with linear
/// interpolation between neighbours; NaN for no values or NaN `q`, ∓Inf for `q` < 0 / > 1.
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
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        (false, false) => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Prometheus's `almost.Equal`: relative comparison with `epsilon`.
pub(crate) fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
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
